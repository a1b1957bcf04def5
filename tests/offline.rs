//! The checks of the repository that need no emulator (part of `make lint`), in one test binary:
//! the structure rules (`structure`), the calls list against the code (`aws_calls`), the
//! template as SAM's translator deploys it (`deployed_template`) and the local build of the
//! functions reusing the workspace's (`feature_set`). Each is a module, the file of
//! its name beside this one; `cargo test -p ftgo-tests --test offline deployed_template::` runs
//! one. A new offline check: its file here, and `mod <file>;` below.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

// Fixtures several suites share, compiled once (`use crate::<fixture>;` in a suite).
#[path = "fixtures/aws_calls.rs"]
mod calls;

mod aws_calls;
mod deployed_template;
mod feature_set;
mod structure;
