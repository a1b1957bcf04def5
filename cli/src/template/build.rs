//! Builds the typed views from the resolved resources.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use super::model::{lenient, typed};
use super::resolve::{Resolver, key_str, resource_type, scalar_string};
use super::*;
use crate::error::{Error, Result};

/// The properties of an `AWS::SQS::Queue` that are SQS attributes of the same name.
const QUEUE_ATTRIBUTES: [&str; 7] = [
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "MaximumMessageSize",
    "FifoQueue",
    "ContentBasedDeduplication",
];

/// Everything the template resolves to.
#[derive(Clone, Debug, Default)]
pub(super) struct Built {
    pub(super) tables: Vec<Table>,
    pub(super) buckets: Vec<Bucket>,
    pub(super) queues: Vec<Queue>,
    pub(super) secrets: Vec<Secret>,
    pub(super) functions: Vec<Function>,
    pub(super) routes: Vec<Route>,
    pub(super) stream_sources: Vec<StreamSource>,
    pub(super) queue_sources: Vec<QueueSource>,
}

/// A queue's `RedrivePolicy`, resolved.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RedrivePolicy {
    dead_letter_target_arn: String,
    #[serde(default, deserialize_with = "lenient")]
    max_receive_count: Option<u32>,
}

/// The properties of an `HttpApi` event, resolved.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HttpApiProperties {
    method: Option<String>,
    path: Option<String>,
}

/// The properties of a `DynamoDB` or `SQS` event, resolved (Lambda's event source mapping).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SourceProperties {
    stream: Option<String>,
    queue: Option<String>,
    starting_position: Option<StartingPosition>,
    #[serde(default, deserialize_with = "lenient")]
    batch_size: Option<usize>,
    #[serde(default, deserialize_with = "lenient")]
    maximum_batching_window_in_seconds: Option<u64>,
    #[serde(default)]
    function_response_types: Vec<String>,
    #[serde(default, deserialize_with = "lenient")]
    bisect_batch_on_function_error: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    maximum_retry_attempts: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    maximum_record_age_in_seconds: Option<i64>,
    destination_config: Option<DestinationConfig>,
    #[serde(default, deserialize_with = "lenient")]
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DestinationConfig {
    on_failure: Option<Destination>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Destination {
    destination: String,
}

impl Resolver<'_> {
    /// Every resource of the template, typed.
    pub(super) fn build(&self, document: &Value) -> Result<Built> {
        let mut built = Built::default();
        for (id, resource) in self.resources {
            let id = key_str(id, "Resources")?;
            let at = format!("Resources.{id}.Properties");
            let properties = || match resource.get("Properties") {
                Some(props) => self.resolve(props, &at),
                None => Ok(Value::Mapping(Mapping::new())),
            };
            match resource_type(resource) {
                Some(TABLE) => {
                    let mut table: Table = typed(properties()?, &at)?;
                    table.logical_id = id.to_owned();
                    table.name = self.physical_name(id, "TableName", &at, 0)?;
                    if table.stream_specification.is_some() {
                        table.stream_arn = Some(self.attribute(id, "StreamArn", &at, 0)?);
                    }
                    if table.partition_key().is_none() {
                        return Err(Error::template(format!("{at}: no HASH key in KeySchema")));
                    }
                    built.tables.push(table);
                }
                Some(BUCKET) => built.buckets.push(Bucket {
                    logical_id: id.to_owned(),
                    name: self.physical_name(id, "BucketName", &at, 0)?,
                }),
                Some(QUEUE) => built.queues.push(self.queue(id, &properties()?, &at)?),
                Some(SECRET) => {
                    let mut secret: Secret = typed(properties()?, &at)?;
                    secret.logical_id = id.to_owned();
                    secret.name = self.physical_name(id, "Name", &at, 0)?;
                    built.secrets.push(secret);
                }
                _ => {}
            }
        }
        // Redrive targets are named by ARN: map them to logical ids.
        let queues = built.queues.clone();
        for queue in &mut built.queues {
            if let Some(redrive) = &mut queue.redrive {
                let target = queues
                    .iter()
                    .find(|q| q.arn == redrive.dead_letter_queue)
                    .ok_or_else(|| {
                        Error::template(format!(
                            "Resources.{}.Properties.RedrivePolicy: `{}` is not a queue of this template",
                            queue.logical_id, redrive.dead_letter_queue
                        ))
                    })?;
                redrive.dead_letter_queue.clone_from(&target.logical_id);
            }
        }
        let globals = match document.get("Globals").and_then(|g| g.get("Function")) {
            Some(g) => self.resolve(g, "Globals.Function")?,
            None => Value::Null,
        };
        for (id, resource) in self.resources {
            let id = key_str(id, "Resources")?;
            if matches!(
                resource_type(resource),
                Some(SERVERLESS_FUNCTION | LAMBDA_FUNCTION)
            ) {
                self.function(id, resource, &globals, &mut built)?;
            }
        }
        Ok(built)
    }

    fn queue(&self, id: &str, props: &Value, at: &str) -> Result<Queue> {
        let mut attributes = BTreeMap::new();
        for name in QUEUE_ATTRIBUTES {
            if let Some(value) = props.get(name) {
                let value = scalar_string(value, &format!("{at}.{name}"))?;
                attributes.insert(name.to_owned(), value);
            }
        }
        let redrive = match props.get("RedrivePolicy") {
            Some(policy) => {
                let at = format!("{at}.RedrivePolicy");
                let policy: RedrivePolicy = typed(policy.clone(), &at)?;
                Some(Redrive {
                    dead_letter_queue: policy.dead_letter_target_arn,
                    max_receive_count: policy
                        .max_receive_count
                        .ok_or_else(|| Error::template(format!("{at}: missing maxReceiveCount")))?,
                })
            }
            None => None,
        };
        Ok(Queue {
            logical_id: id.to_owned(),
            name: self.physical_name(id, "QueueName", at, 0)?,
            url: self.attribute(id, "QueueUrl", at, 0)?,
            arn: self.attribute(id, "Arn", at, 0)?,
            attributes,
            redrive,
        })
    }

    /// A function, and its routes and event sources.
    fn function(
        &self,
        id: &str,
        resource: &Value,
        globals: &Value,
        built: &mut Built,
    ) -> Result<()> {
        let at = format!("Resources.{id}.Properties");
        let binary = self.function_name(id, &at, 0)?;
        let own = resource.get("Properties").unwrap_or(&Value::Null);
        // Resolve only what is read here: a property this crate does not need (Policies, ...)
        // may use intrinsics it does not support without breaking the local stack.
        let resolved = |key: &str| {
            own.get(key)
                .map(|v| self.resolve(v, &format!("{at}.{key}")))
                .transpose()
        };
        let name = match resolved("FunctionName")? {
            Some(name) => scalar_string(&name, &format!("{at}.FunctionName"))?,
            None => binary.clone(),
        };
        let timeout = match resolved("Timeout")?
            .as_ref()
            .or_else(|| globals.get("Timeout"))
        {
            Some(t) => scalar_string(t, &format!("{at}.Timeout"))?
                .parse()
                .map_err(|e| Error::template(format!("{at}.Timeout: {e}")))?,
            None => 3,
        };
        let mut environment = BTreeMap::new();
        let own_variables = match own.get("Environment").and_then(|e| e.get("Variables")) {
            Some(v) => self.resolve(v, &format!("{at}.Environment.Variables"))?,
            None => Value::Null,
        };
        let global_variables = globals.get("Environment").and_then(|e| e.get("Variables"));
        for variables in [global_variables, Some(&own_variables)]
            .into_iter()
            .flatten()
        {
            for (name, value) in variables.as_mapping().into_iter().flatten() {
                let name = key_str(name, &at)?;
                let value = scalar_string(value, &format!("{at}.Environment.{name}"))?;
                environment.insert(name.to_owned(), value);
            }
        }
        let function_timeout = Duration::from_secs(u64::from(timeout).max(1));
        built.functions.push(Function {
            logical_id: id.to_owned(),
            binary: binary.clone(),
            name,
            timeout,
            environment,
        });

        for (event, definition) in own
            .get("Events")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
        {
            let at = format!("{at}.Events.{}.Properties", key_str(event, &at)?);
            let props = match definition.get("Properties") {
                Some(p) => self.resolve(p, &at)?,
                None => Value::Mapping(Mapping::new()),
            };
            let kind = definition.get("Type").and_then(Value::as_str);
            if kind == Some("HttpApi") {
                let props: HttpApiProperties = typed(props, &at)?;
                built.routes.push(Route::new(
                    props.method.as_deref().unwrap_or("ANY"),
                    props.path.unwrap_or_else(|| "/{proxy+}".to_owned()),
                    &binary,
                ));
                continue;
            }
            if !matches!(kind, Some("DynamoDB" | "SQS")) {
                continue;
            }
            let source: SourceProperties = typed(props, &at)?;
            let queue = |arn: &str, key: &str| {
                built
                    .queues
                    .iter()
                    .find(|q| q.arn == arn)
                    .cloned()
                    .ok_or_else(|| {
                        Error::template(format!(
                            "{at}.{key}: `{arn}` is not a queue of this template"
                        ))
                    })
            };
            let report_batch_item_failures = source
                .function_response_types
                .iter()
                .any(|t| t == "ReportBatchItemFailures");
            let batching_window =
                Duration::from_secs(source.maximum_batching_window_in_seconds.unwrap_or(0));
            let enabled = source.enabled.unwrap_or(true);
            if kind == Some("SQS") {
                let arn = source
                    .queue
                    .ok_or_else(|| Error::template(format!("{at}: missing Queue")))?;
                let source = QueueSource {
                    function: id.to_owned(),
                    binary: binary.clone(),
                    timeout: function_timeout,
                    queue: queue(&arn, "Queue")?,
                    batch_size: source.batch_size.unwrap_or(10).max(1),
                    batching_window,
                    report_batch_item_failures,
                    enabled,
                };
                built.queue_sources.push(source);
                continue;
            }
            let stream_arn = source
                .stream
                .ok_or_else(|| Error::template(format!("{at}: missing Stream")))?;
            let table = built
                .tables
                .iter()
                .find(|t| t.stream_arn.as_deref() == Some(stream_arn.as_str()))
                .cloned()
                .ok_or_else(|| {
                    let what = "is not a table's stream of this template";
                    Error::template(format!("{at}.Stream: `{stream_arn}` {what}"))
                })?;
            let on_failure = source
                .destination_config
                .and_then(|d| d.on_failure)
                .map(|d| queue(&d.destination, "DestinationConfig"))
                .transpose()?;
            let policy = StreamPolicy {
                batch_size: source.batch_size.unwrap_or(100).max(1),
                batching_window,
                report_batch_item_failures,
                bisect_on_error: source.bisect_batch_on_function_error.unwrap_or(false),
                max_retry_attempts: limit(source.maximum_retry_attempts, &at)?,
                max_record_age: limit(source.maximum_record_age_in_seconds, &at)?
                    .map(|secs| Duration::from_secs(u64::from(secs))),
            };
            built.stream_sources.push(StreamSource {
                function: id.to_owned(),
                binary: binary.clone(),
                timeout: function_timeout,
                table,
                starting_position: source
                    .starting_position
                    .ok_or_else(|| Error::template(format!("{at}: missing StartingPosition")))?,
                policy,
                on_failure,
                enabled,
            });
        }
        Ok(())
    }
}

/// Lambda's "-1 means unlimited" settings.
fn limit(value: Option<i64>, at: &str) -> Result<Option<u32>> {
    match value {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| Error::template(format!("{at}: {n} is out of range"))),
    }
}
