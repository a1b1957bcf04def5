//! The hardening policy of `template.yaml`, checked offline (part of `make lint`).
//!
//! Generic over whatever the template declares, so that a resource added later is judged too:
//!
//! * **IAM**: no `Allow` statement anywhere (function policies, roles, resource policies) with a
//!   wildcard action (`*`, `dynamodb:*`, `s3:Get*`), `Resource: "*"`, `Principal: "*"`,
//!   `NotAction` or `NotResource`; no managed policy or SAM policy template in a function's
//!   `Policies` (their grants are not written here, so they cannot be reviewed here). `Deny`
//!   statements may use wildcards: they take rights away.
//! * **Tables**: `SSESpecification.SSEEnabled`, `DeletionProtectionEnabled` (true, or a parameter
//!   defaulting to true), and point-in-time recovery — unless `Metadata.NoPointInTimeRecovery`
//!   says why the table can do without (rebuilt from the event log). A table that needs PITR
//!   is the source of truth: `DeletionPolicy` and `UpdateReplacePolicy` `Retain` — or
//!   `!If [<condition>, Retain, …]` whose condition holds for the parameters' defaults (a deploy
//!   that sets nothing keeps the data; an environment may opt out, as dev does) under the
//!   `AWS::LanguageExtensions` transform (without it CloudFormation takes no intrinsic there).
//! * **Buckets**: versioning, every public-access block, default encryption, `Retain` (as for
//!   tables), and a
//!   bucket policy denying any request without `aws:SecureTransport`.
//! * **Queues**: encrypted (`SqsManagedSseEnabled` or a KMS key).
//! * **HTTP APIs**: default route throttling and JSON access logs; no route on SAM's implicit
//!   API (which would have neither).
//! * **Secrets**: no `NoEcho` parameter with a `Default`, no literal `SecretString`.
mod conditions;

use conditions::{condition_by_default, intrinsic, retained};
use ftgo_infra::template::{Stack, Template, default_template_path};
use serde_yaml_ng::{Mapping, Value};

/// Everything the template breaks, one line each (empty: it holds).
fn violations(document: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let parameters = document.get("Parameters").and_then(Value::as_mapping);
    let empty = Mapping::new();
    let resources = document
        .get("Resources")
        .and_then(Value::as_mapping)
        .unwrap_or(&empty);
    for (name, parameter) in parameters.into_iter().flatten() {
        if is_true(parameter.get("NoEcho")) && parameter.get("Default").is_some() {
            found.push(format!(
                "Parameters.{}: a NoEcho parameter has a Default (a secret in the repository)",
                text(name)
            ));
        }
    }
    for (id, resource) in resources {
        let id = text(id);
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
        let props = resource.get("Properties").unwrap_or(&Value::Null);
        let mut fail = |what: &str| found.push(format!("{id} ({kind}): {what}"));
        // Every policy document anywhere in the resource's properties.
        let mut documents = Vec::new();
        policy_documents(props, "Properties", &mut documents);
        for (at, doc) in documents {
            let key_policy = kind == "AWS::KMS::Key" && at.starts_with("Properties.KeyPolicy");
            for problem in statement_problems(doc, key_policy) {
                fail(&format!("{at}: {problem}"));
            }
        }
        match kind {
            "AWS::Serverless::Function" => {
                for policy in one_or_many(props.get("Policies")) {
                    match policy {
                        Value::Mapping(m) if m.contains_key("Statement") => {}
                        Value::Mapping(m) => fail(&format!(
                            "Policies: SAM policy template {:?} (write the statements out)",
                            m.keys().map(text).collect::<Vec<_>>()
                        )),
                        other => fail(&format!(
                            "Policies: managed policy {} (write the statements out)",
                            scalar(other)
                        )),
                    }
                }
                for (event, definition) in props
                    .get("Events")
                    .and_then(Value::as_mapping)
                    .into_iter()
                    .flatten()
                {
                    let is_http = definition.get("Type").and_then(Value::as_str) == Some("HttpApi");
                    if is_http
                        && definition
                            .get("Properties")
                            .and_then(|p| p.get("ApiId"))
                            .is_none()
                    {
                        fail(&format!(
                            "Events.{}: a route on SAM's implicit HTTP API (no throttling, no access logs); set ApiId",
                            text(event)
                        ));
                    }
                }
            }
            "AWS::IAM::Role" | "AWS::IAM::User" | "AWS::IAM::Group"
                if !one_or_many(props.get("ManagedPolicyArns")).is_empty() =>
            {
                fail("ManagedPolicyArns: managed policies cannot be reviewed here");
            }
            "AWS::DynamoDB::Table" => {
                if !is_true(
                    props
                        .get("SSESpecification")
                        .and_then(|s| s.get("SSEEnabled")),
                ) {
                    fail("no SSESpecification.SSEEnabled: true");
                }
                if !is_true_or_parameter_true(props.get("DeletionProtectionEnabled"), parameters) {
                    fail("no DeletionProtectionEnabled: true (or a parameter defaulting to true)");
                }
                let exempt = resource
                    .get("Metadata")
                    .and_then(|m| m.get("NoPointInTimeRecovery"))
                    .and_then(Value::as_str)
                    .is_some_and(|why| !why.trim().is_empty());
                if !exempt {
                    if !is_true(
                        props
                            .get("PointInTimeRecoverySpecification")
                            .and_then(|p| p.get("PointInTimeRecoveryEnabled")),
                    ) {
                        fail(
                            "no point-in-time recovery, and no Metadata.NoPointInTimeRecovery saying why it needs none",
                        );
                    }
                    if !retained(resource, document) {
                        fail(
                            "a table that is not rebuildable needs DeletionPolicy and UpdateReplacePolicy Retain",
                        );
                    }
                }
            }
            "AWS::S3::Bucket" => {
                let versioning = props
                    .get("VersioningConfiguration")
                    .and_then(|v| v.get("Status"))
                    .and_then(Value::as_str);
                if versioning != Some("Enabled") {
                    fail("no VersioningConfiguration.Status: Enabled");
                }
                let block = props.get("PublicAccessBlockConfiguration");
                for setting in [
                    "BlockPublicAcls",
                    "BlockPublicPolicy",
                    "IgnorePublicAcls",
                    "RestrictPublicBuckets",
                ] {
                    if !is_true(block.and_then(|b| b.get(setting))) {
                        fail(&format!(
                            "PublicAccessBlockConfiguration.{setting} is not true"
                        ));
                    }
                }
                if props.get("BucketEncryption").is_none() {
                    fail("no BucketEncryption");
                }
                if !retained(resource, document) {
                    fail("no DeletionPolicy and UpdateReplacePolicy Retain");
                }
                if !has_tls_only_policy(resources, id) {
                    fail("no AWS::S3::BucketPolicy denying requests without aws:SecureTransport");
                }
            }
            "AWS::SQS::Queue"
                if !is_true(props.get("SqsManagedSseEnabled"))
                    && props.get("KmsMasterKeyId").is_none() =>
            {
                fail("not encrypted (SqsManagedSseEnabled: true or KmsMasterKeyId)");
            }
            "AWS::Serverless::HttpApi" => {
                let route = props.get("DefaultRouteSettings");
                for limit in ["ThrottlingBurstLimit", "ThrottlingRateLimit"] {
                    if route.and_then(|r| r.get(limit)).is_none() {
                        fail(&format!("no DefaultRouteSettings.{limit}"));
                    }
                }
                let logs = props.get("AccessLogSettings");
                if logs.and_then(|l| l.get("DestinationArn")).is_none() {
                    fail("no AccessLogSettings.DestinationArn");
                }
                let format = logs.and_then(|l| l.get("Format")).and_then(Value::as_str);
                let json = format.and_then(|f| serde_json::from_str::<serde_json::Value>(f).ok());
                if !json.is_some_and(|j| j.is_object()) {
                    fail("AccessLogSettings.Format is not a JSON object");
                }
            }
            "AWS::SecretsManager::Secret" if props.get("SecretString").is_some() => {
                fail(
                    "a literal SecretString (a secret in the repository); use GenerateSecretString",
                );
            }
            _ => {}
        }
    }
    found
}

/// Every mapping with a `Statement` under `value`, with where it is.
fn policy_documents<'v>(value: &'v Value, at: &str, out: &mut Vec<(String, &'v Value)>) {
    match value {
        Value::Mapping(mapping) => {
            if mapping.contains_key("Statement") {
                out.push((at.to_owned(), value));
                return;
            }
            for (key, child) in mapping {
                policy_documents(child, &format!("{at}.{}", text(key)), out);
            }
        }
        Value::Sequence(items) => {
            for (i, child) in items.iter().enumerate() {
                policy_documents(child, &format!("{at}[{i}]"), out);
            }
        }
        Value::Tagged(tagged) => policy_documents(&tagged.value, at, out),
        _ => {}
    }
}

/// What is wrong with the `Allow` statements of one policy document.
fn statement_problems(document: &Value, key_policy: bool) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, statement) in one_or_many(document.get("Statement")).iter().enumerate() {
        let sid = statement
            .get("Sid")
            .and_then(Value::as_str)
            .map_or_else(|| format!("Statement[{i}]"), str::to_owned);
        if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        for key in ["NotAction", "NotResource", "NotPrincipal"] {
            if statement.get(key).is_some() {
                problems.push(format!("{sid}: Allow with {key}"));
            }
        }
        for action in one_or_many(statement.get("Action")) {
            if scalar(action).contains('*') {
                problems.push(format!("{sid}: wildcard action {}", scalar(action)));
            }
        }
        if !key_policy {
            for resource in one_or_many(statement.get("Resource")) {
                if scalar(resource) == "*" {
                    problems.push(format!("{sid}: Resource \"*\""));
                }
            }
        }
        let principal = statement.get("Principal");
        let anyone = principal.is_some_and(|p| {
            scalar(p) == "*" || one_or_many(p.get("AWS")).iter().any(|a| scalar(a) == "*")
        });
        if anyone {
            problems.push(format!("{sid}: Allow to Principal \"*\""));
        }
    }
    problems
}

/// Whether some `AWS::S3::BucketPolicy` on bucket `id` denies requests that are not TLS.
fn has_tls_only_policy(resources: &Mapping, id: &str) -> bool {
    resources.values().any(|resource| {
        let props = resource.get("Properties").unwrap_or(&Value::Null);
        resource.get("Type").and_then(Value::as_str) == Some("AWS::S3::BucketPolicy")
            && props.get("Bucket").and_then(reference) == Some(id)
            && one_or_many(props.get("PolicyDocument").and_then(|d| d.get("Statement")))
                .iter()
                .any(|statement| {
                    statement.get("Effect").and_then(Value::as_str) == Some("Deny")
                        && statement.get("Principal").map(scalar).as_deref() == Some("*")
                        && statement
                            .get("Condition")
                            .and_then(|c| c.get("Bool"))
                            .and_then(|b| b.get("aws:SecureTransport"))
                            .is_some_and(|v| scalar(v) == "false")
                })
    })
}

/// The logical id a `!Ref`/`{Ref: …}` names.
fn reference(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        Value::Mapping(m) => m.get("Ref").and_then(Value::as_str),
        _ => None,
    }
}

fn is_true(value: Option<&Value>) -> bool {
    value.is_some_and(|v| scalar(v) == "true")
}

fn is_true_or_parameter_true(value: Option<&Value>, parameters: Option<&Mapping>) -> bool {
    is_true(value)
        || value.and_then(reference).is_some_and(|name| {
            is_true(
                parameters
                    .and_then(|p| p.get(name))
                    .and_then(|p| p.get("Default")),
            )
        })
}

fn one_or_many(value: Option<&Value>) -> Vec<&Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(other) => vec![other],
    }
}

/// A scalar as text (`true`, `"*"`, `dynamodb:*`); anything else (an intrinsic) as its YAML.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("?")
}

fn repository_template() -> Value {
    let template = Template::load_default(Stack::local())
        .unwrap_or_else(|e| panic!("{} does not load: {e}", default_template_path().display()));
    template.document().clone()
}

#[test]
fn the_repository_template_holds_the_hardening_policy() {
    let found = violations(&repository_template());
    assert!(
        found.is_empty(),
        "template.yaml breaks the hardening policy:\n  {}",
        found.join("\n  ")
    );
}

// ------------------------------------------------------------------ the check can fail

/// The first resource of `kind` in the document (any: the check is generic).
fn first_of<'d>(document: &'d mut Value, kind: &str) -> (String, &'d mut Value) {
    let resources = document
        .get_mut("Resources")
        .and_then(Value::as_mapping_mut)
        .expect("Resources");
    let (id, resource) = resources
        .iter_mut()
        .find(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
        .unwrap_or_else(|| panic!("template.yaml has no {kind}"));
    (text(id).to_owned(), resource)
}

fn properties(resource: &mut Value) -> &mut Mapping {
    resource
        .get_mut("Properties")
        .and_then(Value::as_mapping_mut)
        .expect("Properties")
}

/// The first statement list of a function's `Policies`.
fn first_statements(document: &mut Value) -> (String, &mut Vec<Value>) {
    let resources = document
        .get_mut("Resources")
        .and_then(Value::as_mapping_mut)
        .expect("Resources");
    resources
        .iter_mut()
        .find_map(|(id, resource)| {
            let statements = resource
                .get_mut("Properties")?
                .get_mut("Policies")?
                .as_sequence_mut()?
                .first_mut()?
                .get_mut("Statement")?
                .as_sequence_mut()?;
            Some((text(id).to_owned(), statements))
        })
        .expect("a function with a statement list")
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).expect("yaml")
}

/// Applies `mutate` to the repository's template and returns the violations.
fn after(mutate: impl FnOnce(&mut Value) -> String) -> (String, Vec<String>) {
    let mut document = repository_template();
    let id = mutate(&mut document);
    (id, violations(&document))
}

fn assert_caught(what: &str, mutate: impl FnOnce(&mut Value) -> String, expected: &str) {
    let (id, found) = after(mutate);
    assert!(
        found
            .iter()
            .any(|line| line.starts_with(&format!("{id} ")) && line.contains(expected)),
        "{what}: expected a violation of {id} mentioning {expected:?}, got {found:#?}"
    );
}

#[test]
fn a_wildcard_resource_fails_the_check() {
    assert_caught(
        "Resource: \"*\"",
        |doc| {
            let (id, statements) = first_statements(doc);
            statements.push(yaml(
                "{Sid: Everything, Effect: Allow, Action: [dynamodb:GetItem], Resource: '*'}",
            ));
            id
        },
        "Everything: Resource \"*\"",
    );
}

#[test]
fn a_wildcard_action_fails_the_check() {
    assert_caught(
        "dynamodb:*",
        |doc| {
            let (id, statements) = first_statements(doc);
            statements.push(yaml(
                "{Sid: AllOfDynamo, Effect: Allow, Action: 'dynamodb:*', Resource: arn:aws:dynamodb:us-east-1:1:table/x}",
            ));
            id
        },
        "AllOfDynamo: wildcard action dynamodb:*",
    );
}

#[test]
fn a_managed_policy_on_a_function_fails_the_check() {
    assert_caught(
        "managed policy",
        |doc| {
            let (id, function) = first_of(doc, "AWS::Serverless::Function");
            let policies = properties(function)
                .get_mut("Policies")
                .and_then(Value::as_sequence_mut)
                .expect("Policies");
            policies.push(Value::String("AmazonDynamoDBFullAccess".into()));
            id
        },
        "managed policy AmazonDynamoDBFullAccess",
    );
}

#[test]
fn a_table_without_sse_or_deletion_protection_fails_the_check() {
    assert_caught(
        "SSE removed",
        |doc| {
            let (id, table) = first_of(doc, "AWS::DynamoDB::Table");
            properties(table).remove("SSESpecification");
            id
        },
        "SSEEnabled",
    );
    assert_caught(
        "deletion protection off",
        |doc| {
            let (id, table) = first_of(doc, "AWS::DynamoDB::Table");
            properties(table).insert("DeletionProtectionEnabled".into(), Value::Bool(false));
            id
        },
        "DeletionProtectionEnabled",
    );
}

/// The first table without a `NoPointInTimeRecovery` exemption (the source of truth).
fn source_of_truth(document: &mut Value) -> (String, &mut Value) {
    let resources = document
        .get_mut("Resources")
        .and_then(Value::as_mapping_mut)
        .expect("Resources");
    let (id, table) = resources
        .iter_mut()
        .find(|(_, r)| {
            r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table")
                && r.get("Metadata")
                    .and_then(|m| m.get("NoPointInTimeRecovery"))
                    .is_none()
        })
        .expect("a table that needs point-in-time recovery");
    (text(id).to_owned(), table)
}

#[test]
fn a_source_of_truth_table_without_pitr_or_retain_fails_the_check() {
    assert_caught(
        "PITR removed",
        |doc| {
            let (id, table) = source_of_truth(doc);
            properties(table).remove("PointInTimeRecoverySpecification");
            id
        },
        "point-in-time recovery",
    );
    assert_caught(
        "DeletionPolicy Delete on the source of truth",
        |doc| {
            let (id, table) = source_of_truth(doc);
            table
                .as_mapping_mut()
                .expect("resource")
                .insert("DeletionPolicy".into(), "Delete".into());
            id
        },
        "Retain",
    );
}

/// The parameter and value a source-of-truth table's `!If` `DeletionPolicy` retains for.
fn retaining_condition(document: &Value) -> String {
    let mut document = document.clone();
    let (_, table) = source_of_truth(&mut document);
    let policy = table.get("DeletionPolicy").expect("DeletionPolicy").clone();
    let Some((function, Value::Sequence(branches))) = intrinsic(&policy) else {
        panic!("expected the source of truth's DeletionPolicy to be an !If, got {policy:?}");
    };
    assert_eq!(function, "If", "{policy:?}");
    text(&branches[0]).to_owned()
}

#[test]
fn a_retain_that_does_not_hold_by_default_fails_the_check() {
    let document = repository_template();
    let condition = retaining_condition(&document);
    assert!(
        condition_by_default(&document, &condition),
        "{condition} holds for the defaults"
    );
    assert_caught(
        "the branches of the !If swapped (Delete by default)",
        |doc| {
            let (id, table) = source_of_truth(doc);
            let swapped = yaml(&format!("!If [{condition}, Delete, Retain]"));
            let table = table.as_mapping_mut().expect("resource");
            table.insert("DeletionPolicy".into(), swapped);
            id
        },
        "Retain",
    );
    assert_caught(
        "the condition false for the defaults (every parameter's Default changed)",
        |doc| {
            let parameters = doc
                .get_mut("Parameters")
                .and_then(Value::as_mapping_mut)
                .expect("Parameters");
            for (_, parameter) in parameters.iter_mut() {
                if let Some(p) = parameter.as_mapping_mut()
                    && p.get("AllowedValues")
                        .and_then(Value::as_sequence)
                        .is_some()
                {
                    let values = p["AllowedValues"].as_sequence().expect("values").clone();
                    let default = p.get("Default").cloned();
                    if let Some(other) = values.into_iter().find(|v| Some(v) != default.as_ref()) {
                        p.insert("Default".into(), other);
                    }
                }
            }
            source_of_truth(doc).0
        },
        "Retain",
    );
    assert_caught(
        "an !If DeletionPolicy without the AWS::LanguageExtensions transform",
        |doc| {
            doc.as_mapping_mut()
                .expect("document")
                .insert("Transform".into(), "AWS::Serverless-2016-10-31".into());
            source_of_truth(doc).0
        },
        "Retain",
    );
}

#[test]
fn a_bucket_without_versioning_tls_policy_or_public_access_block_fails_the_check() {
    assert_caught(
        "versioning removed",
        |doc| {
            let (id, bucket) = first_of(doc, "AWS::S3::Bucket");
            properties(bucket).remove("VersioningConfiguration");
            id
        },
        "Versioning",
    );
    assert_caught(
        "a public-access block off",
        |doc| {
            let (id, bucket) = first_of(doc, "AWS::S3::Bucket");
            let block = properties(bucket)
                .get_mut("PublicAccessBlockConfiguration")
                .and_then(Value::as_mapping_mut)
                .expect("PublicAccessBlockConfiguration");
            block.insert("RestrictPublicBuckets".into(), Value::Bool(false));
            id
        },
        "RestrictPublicBuckets",
    );
    assert_caught(
        "TLS-only policy removed",
        |doc| {
            let (id, _) = first_of(doc, "AWS::S3::Bucket");
            let (policy, _) = first_of(doc, "AWS::S3::BucketPolicy");
            doc.get_mut("Resources")
                .and_then(Value::as_mapping_mut)
                .expect("Resources")
                .remove(policy.as_str());
            id
        },
        "aws:SecureTransport",
    );
}

#[test]
fn an_unencrypted_queue_fails_the_check() {
    assert_caught(
        "queue encryption removed",
        |doc| {
            let (id, queue) = first_of(doc, "AWS::SQS::Queue");
            properties(queue).remove("SqsManagedSseEnabled");
            properties(queue).remove("KmsMasterKeyId");
            id
        },
        "not encrypted",
    );
}

#[test]
fn an_http_api_without_throttling_or_json_access_logs_fails_the_check() {
    assert_caught(
        "throttling removed",
        |doc| {
            let (id, api) = first_of(doc, "AWS::Serverless::HttpApi");
            properties(api).remove("DefaultRouteSettings");
            id
        },
        "ThrottlingBurstLimit",
    );
    assert_caught(
        "access log format not JSON",
        |doc| {
            let (id, api) = first_of(doc, "AWS::Serverless::HttpApi");
            let logs = properties(api)
                .get_mut("AccessLogSettings")
                .and_then(Value::as_mapping_mut)
                .expect("AccessLogSettings");
            logs.insert("Format".into(), "$context.requestId $context.status".into());
            id
        },
        "JSON",
    );
}

#[test]
fn a_secret_in_the_repository_fails_the_check() {
    let (_, found) = after(|doc| {
        let parameters = doc
            .get_mut("Parameters")
            .and_then(Value::as_mapping_mut)
            .expect("Parameters");
        parameters.insert(
            "SomeKey".into(),
            yaml("{Type: String, NoEcho: true, Default: hunter2hunter2hunter2}"),
        );
        String::new()
    });
    assert!(
        found
            .iter()
            .any(|line| line.starts_with("Parameters.SomeKey")),
        "{found:#?}"
    );
    assert_caught(
        "literal secret",
        |doc| {
            let (id, secret) = first_of(doc, "AWS::SecretsManager::Secret");
            properties(secret).insert("SecretString".into(), "hunter2hunter2".into());
            id
        },
        "SecretString",
    );
}
