//! `ftgo`: the local stack's command-line tool.
#![forbid(unsafe_code)]

fn main() {}
