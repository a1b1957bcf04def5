//! Every suite that runs against the emulators (moto server and, when Java is here, AWS's DynamoDB
//! Local), in one test binary: it is linked once, and libtest runs the tests of all suites
//! concurrently, sharing one moto server and one DynamoDB Local (`ftgo_tests::Emulator`). Tests
//! that need empty resources take a fresh stack of their own; the others use unique ids.
//!
//! Each suite is a module, the file of its name beside this one (its fixtures and submodules as
//! before: `#[path]` modules, `super::` between them). One suite or one test:
//! `cargo test -p ftgo-tests --test emulated faults::` or `... --test emulated <test name>`.
//! A new suite: its file here, and `mod <file>;` below (keep the list sorted).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

// Fixtures several suites share, compiled once (`use crate::<fixture>;` in a suite).
#[path = "fixtures/archive_side.rs"]
mod archive_side;
#[path = "fixtures/command_costs.rs"]
mod costs;
#[path = "fixtures/in_process.rs"]
mod in_process;
#[path = "fixtures/local_stack.rs"]
mod local_stack;
#[path = "fixtures/read_side.rs"]
mod read_side;
#[path = "fixtures/write_side.rs"]
mod write_side;
// What a local-stack test needs and cannot find: a failure in CI, a visible skip elsewhere
// (shared with the local-stack crate's and the CLI's tests).
#[path = "../infra/tests/common/required.rs"]
mod required;

mod access;
mod archive_backfill;
mod archive_rebuild;
mod archive_replay;
mod archive_verify;
mod archive_write;
mod command_costs;
mod command_handlers;
mod command_retries;
mod dlq;
mod e2e_archive_backfill;
mod e2e_local_stack;
mod event_store;
mod event_store_commands;
mod event_store_loading;
mod faults;
mod hostile_input;
mod openapi;
mod order_history;
mod projector;
mod projector_dead_letters;
mod projector_parallel;
mod projector_property;
mod provision;
mod query;
mod query_page_tokens;
mod query_validation;
mod schemathesis;
mod soak_local_stack;
mod status;
