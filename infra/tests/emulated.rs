//! The local stack's parts against emulators, in one test binary (one link, the tests side by
//! side, each on its own moto or fake function on free ports):
//!
//! * `bridge_moto`, `bridge_moto_cancelled`: the event-source bridge on moto server;
//! * `gateway_http`: the local API gateway in front of a fake function.
//!
//! `ftgo run` end to end (`e2e_local_stack`, `e2e_archive_backfill`, `soak_local_stack`,
//! `schemathesis`) is tested in `tests/` (the `emulated` binary), beside the other suites: one
//! test binary for every long test, so that they run concurrently.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test's set-up stops the test loudly"
)]

mod bridge;
#[path = "common/required.rs"]
mod required;

mod bridge_moto;
mod bridge_moto_cancelled;
mod gateway_http;
