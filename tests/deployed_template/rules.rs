//! The rules the deployed template (SAM's translation of `template.yaml`) must keep, each
//! reporting what breaks it by name.

use std::collections::BTreeMap;

use serde_json::Value;

use super::calls::{Call, FunctionCalls};

/// Lambda advises a queue's visibility timeout of at least six times its consumer's timeout.
pub const VISIBILITY_FACTOR: i64 = 6;

/// CloudFormation's defaults where a property is left out.
const DEFAULT_FUNCTION_TIMEOUT: i64 = 3;
const DEFAULT_VISIBILITY_TIMEOUT: i64 = 30;

/// The managed policy SAM attaches for reading each kind of event source.
const SOURCE_READ_POLICIES: [(&str, &str); 2] = [
    ("dynamodb", "service-role/AWSLambdaDynamoDBExecutionRole"),
    ("sqs", "service-role/AWSLambdaSQSQueueExecutionRole"),
];

/// The translated template's resources and parameters.
pub struct Deployed<'a> {
    resources: &'a serde_json::Map<String, Value>,
    parameters: Option<&'a serde_json::Map<String, Value>>,
}

fn one_or_many(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(other) => vec![other],
        None => Vec::new(),
    }
}

/// The logical id a `{"Fn::GetAtt": [id, attribute]}` names.
fn get_att<'v>(value: &'v Value, attribute: &str) -> Option<&'v str> {
    match value.get("Fn::GetAtt")?.as_array()?.as_slice() {
        [id, at] if at == attribute => id.as_str(),
        _ => None,
    }
}

fn reference(value: &Value) -> Option<&str> {
    value.get("Ref")?.as_str()
}

/// Whether an IAM action pattern (`s3:PutObject`, `s3:Put*`, `*`) covers `action`.
fn action_matches(pattern: &str, action: &str) -> bool {
    let (pattern, action) = (pattern.to_ascii_lowercase(), action.to_ascii_lowercase());
    match pattern.strip_suffix('*') {
        Some(prefix) => action.starts_with(prefix),
        None => pattern == action,
    }
}

impl<'a> Deployed<'a> {
    /// Reads a translated template.
    pub fn new(template: &'a Value) -> Self {
        Self {
            resources: template["Resources"]
                .as_object()
                .expect("a translated template has Resources"),
            parameters: template.get("Parameters").and_then(Value::as_object),
        }
    }

    fn of_type(&self, kind: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        self.resources
            .iter()
            .filter(move |(_, resource)| resource["Type"] == kind)
    }

    fn kind(&self, id: &str) -> &str {
        self.resources
            .get(id)
            .and_then(|r| r["Type"].as_str())
            .unwrap_or("")
    }

    /// A number, a parameter's default for `{"Ref": parameter}`, or `default` when absent.
    fn number(&self, value: Option<&Value>, default: i64) -> i64 {
        let value = match value.and_then(reference) {
            Some(parameter) => self
                .parameters
                .and_then(|p| p.get(parameter))
                .and_then(|p| p.get("Default")),
            None => value,
        };
        match value {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(default),
            Some(Value::String(s)) => s.parse().unwrap_or(default),
            _ => default,
        }
    }

    /// The function's logical id for a binary (`Metadata.BuildProperties.Binary`).
    fn function_of_binary(&self, binary: &str) -> Option<&'a str> {
        self.of_type("AWS::Lambda::Function")
            .find(|(_, f)| f["Metadata"]["BuildProperties"]["Binary"] == binary)
            .map(|(id, _)| id.as_str())
    }

    /// The execution role's logical id of a function.
    fn role_of(&self, function: &str) -> Option<&'a str> {
        get_att(&self.resources.get(function)?["Properties"]["Role"], "Arn")
    }

    /// Every `Allow` statement of the role's inline policies.
    fn allow_statements(&self, role: &str) -> Vec<&'a Value> {
        let Some(resource) = self.resources.get(role) else {
            return Vec::new();
        };
        one_or_many(resource["Properties"].get("Policies"))
            .into_iter()
            .flat_map(|policy| one_or_many(policy["PolicyDocument"].get("Statement")))
            .filter(|statement| statement["Effect"] == "Allow")
            .collect()
    }

    /// Whether a statement's `Resource` entry is the ARN of `target` (`Id`, `Id/*`, `Id/index`).
    fn names_resource(&self, entry: &Value, target: &str) -> bool {
        let (id, part) = match target.split_once('/') {
            Some((id, part)) => (id, Some(part)),
            None => (target, None),
        };
        let substituted = entry.get("Fn::Sub").and_then(Value::as_str);
        let arn = format!("${{{id}.Arn}}");
        match part {
            None => {
                get_att(entry, "Arn") == Some(id)
                    || substituted == Some(arn.as_str())
                    // A secret's Ref is its ARN (a queue's is its URL, a table's its name).
                    || (reference(entry) == Some(id)
                        && self.kind(id) == "AWS::SecretsManager::Secret")
            }
            Some("*") => substituted == Some(format!("{arn}/*").as_str()),
            Some("index") => substituted.is_some_and(|s| s.starts_with(&format!("{arn}/index/"))),
            // The objects under one key prefix of a bucket: `Id/<prefix>/*`.
            Some(prefix) if prefix.ends_with("/*") => {
                substituted == Some(format!("{arn}/{prefix}").as_str())
            }
            Some(_) => false,
        }
    }

    /// Whether the role allows `action` on `target`.
    fn allows(&self, role: &str, action: &str, target: &str) -> bool {
        self.allow_statements(role).iter().any(|statement| {
            one_or_many(statement.get("Action"))
                .iter()
                .any(|a| a.as_str().is_some_and(|a| action_matches(a, action)))
                && one_or_many(statement.get("Resource"))
                    .iter()
                    .any(|entry| self.names_resource(entry, target))
        })
    }

    /// Each function's role allows each call of the list, on its resource.
    pub fn roles_allow_the_calls(&self, list: &BTreeMap<String, FunctionCalls>) -> Vec<String> {
        let mut found = Vec::new();
        for (binary, listed) in list {
            let Some(function) = self.function_of_binary(binary) else {
                found.push(format!(
                    "{binary}: no function with BuildProperties.Binary {binary}"
                ));
                continue;
            };
            let Some(role) = self.role_of(function) else {
                found.push(format!("{function}: no execution role of this template"));
                continue;
            };
            for Call { resource, .. } in &listed.calls {
                let id = resource.split('/').next().unwrap_or(resource);
                if !self.resources.contains_key(id) {
                    found.push(format!(
                        "{binary}: the list names {resource}, not in the template"
                    ));
                }
            }
            for call in &listed.calls {
                for action in call.actions() {
                    if !self.allows(role, &action, &call.resource) {
                        found.push(format!(
                            "{binary} ({function}): {role} does not allow {action} on {} (for {})",
                            call.resource, call.operation
                        ));
                    }
                }
            }
        }
        found
    }

    /// The function `id` names: itself, or the function behind an alias (`AutoPublishAlias`
    /// points every event source at the alias `live`).
    fn function_behind(&self, id: &'a str) -> &'a str {
        if self.kind(id) == "AWS::Lambda::Alias" {
            self.resources
                .get(id)
                .and_then(|alias| reference(&alias["Properties"]["FunctionName"]))
                .unwrap_or(id)
        } else {
            id
        }
    }

    /// The event-source mappings: (logical id, function, properties).
    fn mappings(&self) -> Vec<(&'a str, &'a str, &'a Value)> {
        self.of_type("AWS::Lambda::EventSourceMapping")
            .filter_map(|(id, mapping)| {
                let properties = &mapping["Properties"];
                Some((
                    id.as_str(),
                    self.function_behind(reference(&properties["FunctionName"])?),
                    properties,
                ))
            })
            .collect()
    }

    /// Each stream source's on-failure destination is writable by the function's role, and
    /// the role may read the source (SAM's managed policy for it).
    pub fn event_sources_are_wired(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (id, function, properties) in self.mappings() {
            let role = self.role_of(function).unwrap_or_default();
            let managed: Vec<&str> = one_or_many(
                self.resources
                    .get(role)
                    .and_then(|r| r["Properties"].get("ManagedPolicyArns")),
            )
            .into_iter()
            .filter_map(|arn| arn.get("Fn::Sub").or(Some(arn)).and_then(Value::as_str))
            .collect();
            let source = &properties["EventSourceArn"];
            let service = if get_att(source, "StreamArn").is_some() {
                "dynamodb"
            } else {
                "sqs"
            };
            for (kind, policy) in SOURCE_READ_POLICIES {
                if kind == service && !managed.iter().any(|arn| arn.ends_with(policy)) {
                    found.push(format!(
                        "{id}: {role} lacks {policy} to read its {kind} source"
                    ));
                }
            }
            let Some(destination) = properties
                .pointer("/DestinationConfig/OnFailure/Destination")
                .and_then(|d| get_att(d, "Arn"))
            else {
                continue;
            };
            let action = match self.kind(destination) {
                "AWS::SQS::Queue" => "sqs:SendMessage",
                "AWS::SNS::Topic" => "sns:Publish",
                "AWS::S3::Bucket" => "s3:PutObject",
                other => {
                    found.push(format!(
                        "{id}: on-failure destination {destination} is a {other}"
                    ));
                    continue;
                }
            };
            if !self.allows(role, action, destination) {
                found.push(format!(
                    "{id}: on-failure destination {destination} is not writable by {role} ({action})"
                ));
            }
        }
        found
    }

    /// Each queue a function consumes keeps a message invisible at least six times as long as
    /// the function may run (Lambda's advice: a retried batch is not delivered twice at once).
    pub fn queues_outlast_their_consumers(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (_, function, properties) in self.mappings() {
            let Some(queue) = get_att(&properties["EventSourceArn"], "Arn") else {
                continue;
            };
            if self.kind(queue) != "AWS::SQS::Queue" {
                continue;
            }
            let visibility = self.number(
                self.resources[queue]["Properties"].get("VisibilityTimeout"),
                DEFAULT_VISIBILITY_TIMEOUT,
            );
            let timeout = self.number(
                self.resources[function]["Properties"].get("Timeout"),
                DEFAULT_FUNCTION_TIMEOUT,
            );
            if visibility < VISIBILITY_FACTOR * timeout {
                found.push(format!(
                    "{queue}: VisibilityTimeout {visibility} s < {VISIBILITY_FACTOR} × {function}'s Timeout {timeout} s"
                ));
            }
        }
        found
    }

    /// Whether an alarm watches `metric` of `namespace` with a dimension `name` whose value
    /// satisfies `value`.
    fn alarmed(
        &self,
        namespace: &str,
        metric: &str,
        name: &str,
        value: impl Fn(&Value) -> bool,
    ) -> bool {
        self.of_type("AWS::CloudWatch::Alarm").any(|(_, alarm)| {
            let p = &alarm["Properties"];
            p["Namespace"] == namespace
                && p["MetricName"] == metric
                && one_or_many(p.get("Dimensions"))
                    .iter()
                    .any(|d| d["Name"] == name && value(&d["Value"]))
        })
    }

    /// An alarm on `DestinationDeliveryFailures` of each function with an on-failure
    /// destination, and one on each dead-letter queue (an on-failure destination or a redrive
    /// target).
    pub fn failures_are_alarmed(&self) -> Vec<String> {
        let mut found = Vec::new();
        let mut dead_letter_queues = std::collections::BTreeSet::new();
        for (_, function, properties) in self.mappings() {
            let Some(destination) = properties.pointer("/DestinationConfig/OnFailure/Destination")
            else {
                continue;
            };
            dead_letter_queues.extend(get_att(destination, "Arn"));
            if !self.alarmed(
                "AWS/Lambda",
                "DestinationDeliveryFailures",
                "FunctionName",
                |v| reference(v) == Some(function),
            ) {
                found.push(format!(
                    "{function}: no alarm on DestinationDeliveryFailures (AWS/Lambda, FunctionName)"
                ));
            }
        }
        for (_, queue) in self.of_type("AWS::SQS::Queue") {
            let target = queue["Properties"].pointer("/RedrivePolicy/deadLetterTargetArn");
            dead_letter_queues.extend(target.and_then(|t| get_att(t, "Arn")));
        }
        for queue in dead_letter_queues {
            if self.kind(queue) == "AWS::SQS::Queue"
                && !self.of_type("AWS::CloudWatch::Alarm").any(|(_, alarm)| {
                    let p = &alarm["Properties"];
                    p["Namespace"] == "AWS/SQS"
                        && one_or_many(p.get("Dimensions")).iter().any(|d| {
                            d["Name"] == "QueueName"
                                && get_att(&d["Value"], "QueueName") == Some(queue)
                        })
                })
            {
                found.push(format!(
                    "{queue}: a dead-letter queue without an alarm (AWS/SQS, QueueName)"
                ));
            }
        }
        found
    }

    /// Every rule, every violation.
    pub fn violations(&self, list: &BTreeMap<String, FunctionCalls>) -> Vec<String> {
        let mut found = self.roles_allow_the_calls(list);
        found.extend(self.event_sources_are_wired());
        found.extend(self.queues_outlast_their_consumers());
        found.extend(self.failures_are_alarmed());
        found
    }
}
