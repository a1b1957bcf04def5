//! The API document against the running API: `ftgo run` on free ports, a valid token, and
//! schemathesis (pinned in `infra/requirements.txt`, installed by `make .venv`) generating
//! requests from `openapi.yaml` — its examples, the boundaries of every schema, random
//! inputs, and sequences that follow the document's OpenAPI links (create → get, approve,
//! pick up, …), so that generated requests reach the handlers' logic with real ids and tokens.
//!
//! Passes only when no answer is a 5xx and every answer (status, content type, headers, body)
//! is one `openapi.yaml` documents. The run is bounded (examples per operation, a fixed seed)
//! to stay well under two minutes once the functions are built; a failure prints
//! schemathesis's report with a `curl` line to reproduce each finding.
//!
//! Not skipped without the tools: `make test` installs them first, and a missing tool fails.
use crate::local_stack;

use std::process::Command;
use std::time::Duration;

use local_stack::{Running, free_port, root};

/// Test cases per operation and phase.
const MAX_EXAMPLES: &str = "12";
/// The seed, so that a run (and its failures) can be repeated.
const SEED: &str = "20261207";

/// Everything `openapi.yaml` promises about an answer.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";

#[test]
fn every_answer_to_generated_requests_is_documented_and_none_is_a_5xx() {
    let root = root();
    let schemathesis = root.join(".venv/bin/schemathesis");
    for tool in [
        schemathesis.clone(),
        root.join(".venv/bin/moto_server"),
        root.join(".venv/bin/cargo-lambda"),
    ] {
        assert!(
            tool.is_file(),
            "{} is missing: run `make .venv` (infra/requirements.txt pins it)",
            tool.display()
        );
    }
    let (api, aws, functions) = (free_port(), free_port(), free_port());
    let mut stack = Running::start_with(api, aws, functions, 2, "schemathesis");
    stack.wait_ready(Duration::from_secs(1500));

    // c-1 in group `admin`: every route reaches its logic (creating for any consumerId too).
    let token =
        ftgo_infra::token::issue_with_groups("c-1", &[], &["admin"], Duration::from_secs(3600))
            .expect("token");
    let output = Command::new(&schemathesis)
        .current_dir(&root)
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .args([
            "run",
            "openapi.yaml",
            "--url",
            &format!("http://127.0.0.1:{api}"),
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            SEED,
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--no-color",
        ])
        .output()
        .expect("schemathesis runs");
    stack.stop();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found answers openapi.yaml does not document:\n{report}"
    );
}
