//! FTGO adapters and Lambda handlers.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
