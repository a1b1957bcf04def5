//! The local stack's offline checks, in one test binary (`make lint` runs it): the template's
//! hardening policy (`template_policy`) and the repository's own rules (`repository`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test's set-up stops the test loudly"
)]

mod repository;
mod template_policy;
