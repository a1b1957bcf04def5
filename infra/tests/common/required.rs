//! What a test needs and cannot find: a failure in CI, a visible skip elsewhere.
//!
//! CI must never go green by skipping (issue 15): when `CI` is set (as `.ci/run` runs) or
//! `FTGO_REQUIRE_LOCAL_STACK=1`, a missing tool fails the test. Elsewhere (a contributor
//! without `make .venv`), the test says SKIPPED straight to the terminal, past libtest's output
//! capture, and returns.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::Path;

/// Set to `1` to make a missing local-stack tool a failure (implied by `CI`).
pub const REQUIRE_LOCAL_STACK_ENV: &str = "FTGO_REQUIRE_LOCAL_STACK";

/// Whether a missing tool fails the test: `CI` set (and not `false`/`0`), or
/// [`REQUIRE_LOCAL_STACK_ENV`] is `1`.
pub fn required() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    ci || std::env::var(REQUIRE_LOCAL_STACK_ENV).is_ok_and(|v| v == "1")
}

/// Whether every one of `tools` (paths below `root`) exists; when one does not, panics where
/// [`required`], else reports `what` as skipped (past the output capture) and answers false.
pub fn tools_present(root: &Path, tools: &[&str], what: &str) -> bool {
    match tools.iter().find(|tool| !root.join(tool).exists()) {
        None => true,
        Some(tool) => {
            missing(&format!(
                "{tool} is missing (run `make .venv`); {what} did not run"
            ));
            false
        }
    }
}

/// Reports that something a test needs is missing: a panic where [`required`], else
/// `SKIPPED: <reason>` on the terminal.
pub fn missing(reason: &str) {
    assert!(
        !required(),
        "{reason}, and CI (or {REQUIRE_LOCAL_STACK_ENV}=1) requires it"
    );
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "SKIPPED: {reason}");
}
