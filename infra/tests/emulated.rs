//! The local stack's tests against emulators, in one test binary (one link, and the tests run
//! side by side: each starts its own moto, or its own `ftgo run`, on free ports):
//!
//! * `bridge_moto`, `bridge_moto_cancelled`: the event-source bridge on moto server;
//! * `gateway_http`: the local API gateway in front of a fake function;
//! * `e2e_local_stack`, `e2e_archive_backfill`, `soak_local_stack`, `schemathesis`: `ftgo run`
//!   end to end (they need `make .venv`'s tools, and say SKIPPED without them unless
//!   `FTGO_REQUIRE_LOCAL_STACK` is set, as in CI).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test's set-up stops the test loudly"
)]

mod bridge;
mod local_stack;
#[path = "common/required.rs"]
mod required;

mod bridge_moto;
mod bridge_moto_cancelled;
mod e2e_archive_backfill;
mod e2e_local_stack;
mod gateway_http;
mod schemathesis;
mod soak_local_stack;
