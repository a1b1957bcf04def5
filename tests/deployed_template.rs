//! The template as AWS deploys it (part of `make lint`): `infra/sam_translate.py` runs SAM's own
//! translator (the pinned `aws-sam-cli`'s `samtranslator`, offline) on `template.yaml`, and the
//! CloudFormation it produces must keep these rules (tests/deployed_template/rules.rs):
//!
//! * each function's execution role allows every call of the calls list
//!   (`shared/aws/src/lambda/aws-calls.yaml`), on the resource it names;
//! * each event-source mapping's on-failure destination is writable by the function's role
//!   (SAM adds `sqs:SendMessage` only for a destination that says `Type: SQS`), and the role
//!   has SAM's managed policy to read the source;
//! * each queue a function consumes has a `VisibilityTimeout` of at least 6 × its `Timeout`;
//! * each function with an on-failure destination has an alarm on `DestinationDeliveryFailures`,
//!   and each dead-letter queue an alarm.
//!
//! `FTGO_TEMPLATE=<path>` checks another template (e.g. `git show main:template.yaml`). The
//! mutation tests break one thing each in the translation (or, for `Type: SQS`, in the SAM
//! template) and expect the rule to name it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly"
)]

#[allow(dead_code, reason = "the fixture serves two test targets")]
use crate::calls;
#[path = "deployed_template/rules.rs"]
mod rules;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

fn template_path() -> PathBuf {
    std::env::var_os("FTGO_TEMPLATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| calls::repository().join("template.yaml"))
}

/// SAM's translation of the template at `path`.
fn translate(path: &Path) -> Value {
    let root = calls::repository();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{}: missing; `make .venv` installs SAM's translator",
        python.display()
    );
    let output = std::process::Command::new(python)
        .arg(root.join("infra/sam_translate.py"))
        .arg(path)
        .output()
        .expect("the translator runs");
    assert!(
        output.status.success(),
        "SAM's translator rejects {}:\n{}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the translator prints JSON")
}

/// The template's translation, made once for every test here.
fn deployed() -> &'static Value {
    static DEPLOYED: OnceLock<Value> = OnceLock::new();
    DEPLOYED.get_or_init(|| translate(&template_path()))
}

fn violations(template: &Value) -> Vec<String> {
    rules::Deployed::new(template).violations(&calls::load())
}

/// The violations of a copy of the translation changed by `change`.
fn violations_after(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<String> {
    let mut template = deployed().clone();
    change(template["Resources"].as_object_mut().unwrap());
    violations(&template)
}

fn assert_reported(found: &[String], expected: &[&str]) {
    assert!(
        found
            .iter()
            .any(|line| expected.iter().all(|part| line.contains(part))),
        "no violation naming {expected:?} in {found:#?}"
    );
}

#[test]
fn the_deployed_template_keeps_every_rule() {
    let found = violations(deployed());
    assert!(
        found.is_empty(),
        "{} as SAM deploys it:\n{}",
        template_path().display(),
        found.join("\n")
    );
}

#[test]
fn a_role_missing_an_action_of_the_list_is_reported() {
    let found = violations_after(|resources| {
        let policies = &mut resources["EventArchiverFunctionRole"]["Properties"]["Policies"];
        for policy in policies.as_array_mut().unwrap() {
            for statement in policy["PolicyDocument"]["Statement"]
                .as_array_mut()
                .unwrap()
            {
                if let Some(actions) = statement["Action"].as_array_mut() {
                    actions.retain(|a| a != "s3:PutObject");
                }
            }
        }
    });
    assert_reported(
        &found,
        &[
            "event-archiver",
            "does not allow s3:PutObject",
            "EventArchiveBucket/*",
        ],
    );
}

#[test]
fn a_grant_on_another_resource_does_not_count() {
    let found = violations_after(|resources| {
        let policies = &mut resources["OrderHistoryQueryFunctionRole"]["Properties"]["Policies"];
        for policy in policies.as_array_mut().unwrap() {
            for statement in policy["PolicyDocument"]["Statement"]
                .as_array_mut()
                .unwrap()
            {
                if statement["Sid"] == "PageTokenKey" {
                    statement["Resource"] =
                        serde_json::json!({"Fn::GetAtt": ["EventsTable", "Arn"]});
                }
            }
        }
    });
    assert_reported(
        &found,
        &[
            "order-history-query",
            "secretsmanager:GetSecretValue on PageTokenKey",
        ],
    );
}

#[test]
fn an_on_failure_destination_without_type_sqs_is_reported() {
    // Remove `Type: SQS` from the archiver's OnFailure in the SAM template, translate again.
    let source = std::fs::read_to_string(template_path()).unwrap();
    let lines: Vec<&str> = source.lines().collect();
    let at = lines
        .iter()
        .position(|line| line.trim() == "Destination: !GetAtt ArchiverDlq.Arn")
        .expect("the archiver's on-failure destination");
    let typed = lines[at - 1].trim() == "Type: SQS"
        || lines.get(at + 1).is_some_and(|l| l.trim() == "Type: SQS");
    assert!(typed, "the archiver's OnFailure says Type: SQS");
    let mutated: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, line)| !((*i + 1 == at || *i == at + 1) && line.trim() == "Type: SQS"))
        .map(|(_, line)| *line)
        .collect();
    let path = std::env::temp_dir().join(format!("ftgo-template-{}.yaml", std::process::id()));
    std::fs::write(&path, mutated.join("\n")).unwrap();
    let translated = translate(&path);
    std::fs::remove_file(&path).unwrap();
    assert_reported(
        &violations(&translated),
        &[
            "EventArchiverFunction",
            "ArchiverDlq is not writable",
            "sqs:SendMessage",
        ],
    );
}

#[test]
fn a_short_visibility_timeout_is_reported() {
    let found = violations_after(|resources| {
        resources["ReplayQueue"]["Properties"]["VisibilityTimeout"] = Value::from(600);
    });
    assert_reported(
        &found,
        &[
            "ReplayQueue: VisibilityTimeout 600 s",
            "ArchiveReplayerFunction's Timeout 300 s",
        ],
    );
}

#[test]
fn a_missing_delivery_failure_alarm_is_reported() {
    let found = violations_after(|resources| {
        resources.retain(|_, r| {
            !(r["Properties"]["MetricName"] == "DestinationDeliveryFailures"
                && r["Properties"]["Dimensions"][0]["Value"]["Ref"] == "EventArchiverFunction")
        });
    });
    assert_reported(
        &found,
        &["EventArchiverFunction: no alarm on DestinationDeliveryFailures"],
    );
}

#[test]
fn a_dead_letter_queue_without_an_alarm_is_reported() {
    let found = violations_after(|resources| {
        resources
            .remove("ReplayDlqNotEmptyAlarm")
            .expect("the replay DLQ's alarm");
    });
    assert_reported(&found, &["ReplayDlq: a dead-letter queue without an alarm"]);
}

#[test]
fn a_missing_source_read_policy_is_reported() {
    let found = violations_after(|resources| {
        let arns =
            &mut resources["ArchiveBackfillerFunctionRole"]["Properties"]["ManagedPolicyArns"];
        arns.as_array_mut()
            .unwrap()
            .retain(|arn| !arn.to_string().contains("AWSLambdaSQSQueueExecutionRole"));
    });
    assert_reported(
        &found,
        &["ArchiveBackfillerFunctionRole lacks service-role/AWSLambdaSQSQueueExecutionRole"],
    );
}
