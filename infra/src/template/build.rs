//! Builds the typed views from the resolved resources.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use super::resolve::{Resolver, key_str, resource_type, scalar_string};
use super::*;
use crate::error::{Error, Result};

pub(super) fn optional_string(props: &Value, key: &str, at: &str) -> Result<Option<String>> {
    props
        .get(key)
        .map(|v| scalar_string(v, &format!("{at}.{key}")))
        .transpose()
}

pub(super) fn required_string(props: &Value, key: &str, at: &str) -> Result<String> {
    optional_string(props, key, at)?.ok_or_else(|| Error::template(format!("{at}: missing {key}")))
}

pub(super) fn optional_i64(props: &Value, key: &str, at: &str) -> Result<Option<i64>> {
    let Some(value) = props.get(key) else {
        return Ok(None);
    };
    let text = scalar_string(value, &format!("{at}.{key}"))?;
    text.parse()
        .map(Some)
        .map_err(|_| Error::template(format!("{at}.{key}: `{text}` is not an integer")))
}

pub(super) fn optional_u32(props: &Value, key: &str, at: &str) -> Result<Option<u32>> {
    optional_i64(props, key, at)?
        .map(|n| {
            u32::try_from(n)
                .map_err(|_| Error::template(format!("{at}.{key}: {n} is out of range")))
        })
        .transpose()
}

pub(super) fn optional_bool(props: &Value, key: &str, at: &str) -> Result<Option<bool>> {
    let Some(value) = props.get(key) else {
        return Ok(None);
    };
    match scalar_string(value, &format!("{at}.{key}"))?.as_str() {
        "true" | "True" => Ok(Some(true)),
        "false" | "False" => Ok(Some(false)),
        other => Err(Error::template(format!(
            "{at}.{key}: `{other}` is not a boolean"
        ))),
    }
}

pub(super) fn string_list(props: &Value, key: &str, at: &str) -> Result<Vec<String>> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|item| scalar_string(item, &format!("{at}.{key}")))
            .collect(),
        Some(_) => Err(Error::template(format!("{at}.{key}: expected a list"))),
    }
}

pub(super) fn list<'v>(props: &'v Value, key: &str, at: &str) -> Result<&'v [Value]> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Sequence(items)) => Ok(items),
        Some(_) => Err(Error::template(format!("{at}.{key}: expected a list"))),
    }
}

pub(super) fn key_schema(props: &Value, at: &str) -> Result<Vec<KeyElement>> {
    list(props, "KeySchema", at)?
        .iter()
        .map(|element| {
            let at = format!("{at}.KeySchema");
            let key_type = sdk_enum(
                &required_string(element, "KeyType", &at)?,
                KeyType::values(),
                &at,
            )?;
            Ok(KeyElement {
                attribute_name: required_string(element, "AttributeName", &at)?,
                key_type,
            })
        })
        .collect()
}

pub(super) fn secondary_indexes(props: &Value, key: &str, at: &str) -> Result<Vec<SecondaryIndex>> {
    list(props, key, at)?
        .iter()
        .map(|index| {
            let at = format!("{at}.{key}");
            let projection = index.get("Projection").unwrap_or(&Value::Null);
            let projection_type = match optional_string(projection, "ProjectionType", &at)? {
                None => ProjectionType::All,
                Some(text) => sdk_enum(&text, ProjectionType::values(), &at)?,
            };
            Ok(SecondaryIndex {
                name: required_string(index, "IndexName", &at)?,
                key_schema: key_schema(index, &at)?,
                projection_type,
                non_key_attributes: string_list(projection, "NonKeyAttributes", &at)?,
            })
        })
        .collect()
}

/// Everything the template resolves to.
pub(super) struct Built {
    pub(super) parameters: BTreeMap<String, String>,
    pub(super) tables: Vec<Table>,
    pub(super) buckets: Vec<Bucket>,
    pub(super) queues: Vec<Queue>,
    pub(super) secrets: Vec<Secret>,
    pub(super) functions: Vec<Function>,
    pub(super) routes: Vec<Route>,
    pub(super) stream_sources: Vec<StreamSource>,
    pub(super) queue_sources: Vec<QueueSource>,
}

pub(super) struct Builder<'a> {
    resolver: Resolver<'a>,
    document: &'a Value,
}

impl<'a> Builder<'a> {
    pub(super) fn new(document: &'a Value, stack: &'a Stack) -> Result<Self> {
        Ok(Self {
            resolver: Resolver::new(document, stack)?,
            document,
        })
    }

    pub(super) fn build(self) -> Result<Built> {
        let mut built = Built {
            parameters: self.parameters()?,
            tables: Vec::new(),
            buckets: Vec::new(),
            queues: Vec::new(),
            secrets: Vec::new(),
            functions: Vec::new(),
            routes: Vec::new(),
            stream_sources: Vec::new(),
            queue_sources: Vec::new(),
        };
        for (id, resource) in self.resolver.resources {
            let id = key_str(id, "Resources")?;
            let at = format!("Resources.{id}");
            match resource_type(resource) {
                Some(TABLE) => built.tables.push(self.table(id, resource, &at)?),
                Some(BUCKET) => built.buckets.push(Bucket {
                    logical_id: id.to_owned(),
                    name: self.resolver.physical_name(id, "BucketName", &at, 0)?,
                    arn: self.resolver.attribute(id, "Arn", &at, 0)?,
                }),
                Some(QUEUE) => built.queues.push(self.queue(id, resource, &at)?),
                Some(SECRET) => built.secrets.push(self.secret(id, resource, &at)?),
                _ => {}
            }
        }
        // Queue redrive targets are named by ARN: map them back to logical ids.
        let arns: Vec<(String, String)> = built
            .queues
            .iter()
            .map(|q| (q.arn.clone(), q.logical_id.clone()))
            .collect();
        for (id, resource) in self.resolver.resources {
            let id = key_str(id, "Resources")?;
            if let Some(policy) = resource
                .get("Properties")
                .and_then(|p| p.get("RedrivePolicy"))
            {
                let at = format!("Resources.{id}.Properties.RedrivePolicy");
                let policy = self.resolver.resolve(policy, &at)?;
                let target = required_string(&policy, "deadLetterTargetArn", &at)?;
                let dead_letter_queue = lookup(&arns, &target).ok_or_else(|| {
                    Error::template(format!("{at}: `{target}` is not a queue of this template"))
                })?;
                let max_receive_count = optional_u32(&policy, "maxReceiveCount", &at)?
                    .ok_or_else(|| Error::template(format!("{at}: missing maxReceiveCount")))?;
                if let Some(queue) = built.queues.iter_mut().find(|q| q.logical_id == id) {
                    queue.redrive = Some(Redrive {
                        dead_letter_queue,
                        max_receive_count,
                    });
                }
            }
        }
        let globals = self
            .document
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .map(|g| self.resolver.resolve(g, "Globals.Function"))
            .transpose()?
            .unwrap_or(Value::Null);
        for (id, resource) in self.resolver.resources {
            let id = key_str(id, "Resources")?;
            if matches!(
                resource_type(resource),
                Some(SERVERLESS_FUNCTION | LAMBDA_FUNCTION)
            ) {
                self.function(id, resource, &globals, &arns, &mut built)?;
            }
        }
        Ok(built)
    }

    pub(super) fn parameters(&self) -> Result<BTreeMap<String, String>> {
        let mut values = BTreeMap::new();
        if let Some(parameters) = self.resolver.parameters {
            for (name, _) in parameters {
                let name = key_str(name, "Parameters")?;
                if let Ok(value) = self.resolver.reference(name, "Parameters", 0) {
                    values.insert(name.to_owned(), value);
                }
            }
        }
        for (name, value) in &self.resolver.stack.parameters {
            values.insert(name.clone(), value.clone());
        }
        Ok(values)
    }

    pub(super) fn properties(&self, resource: &Value, at: &str) -> Result<Value> {
        match resource.get("Properties") {
            Some(props) => self.resolver.resolve(props, &format!("{at}.Properties")),
            None => Ok(Value::Null),
        }
    }

    pub(super) fn table(&self, id: &str, resource: &Value, at: &str) -> Result<Table> {
        let props = self.properties(resource, at)?;
        let at = format!("{at}.Properties");
        let attribute_definitions = list(&props, "AttributeDefinitions", &at)?
            .iter()
            .map(|definition| {
                let at = format!("{at}.AttributeDefinitions");
                let attribute_type = sdk_enum(
                    &required_string(definition, "AttributeType", &at)?,
                    AttributeType::values(),
                    &at,
                )?;
                Ok(AttributeDefinition {
                    attribute_name: required_string(definition, "AttributeName", &at)?,
                    attribute_type,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let stream = props.get("StreamSpecification");
        let stream_view_type = stream
            .map(|s| optional_string(s, "StreamViewType", &at))
            .transpose()?
            .flatten()
            .map(|text| sdk_enum(&text, StreamViewType::values(), &at))
            .transpose()?;
        let ttl = props.get("TimeToLiveSpecification");
        let time_to_live_attribute = match ttl {
            Some(ttl) if optional_bool(ttl, "Enabled", &at)? != Some(false) => {
                optional_string(ttl, "AttributeName", &at)?
            }
            _ => None,
        };
        let table = Table {
            logical_id: id.to_owned(),
            name: self.resolver.physical_name(id, "TableName", &at, 0)?,
            arn: self.resolver.attribute(id, "Arn", &at, 0)?,
            attribute_definitions,
            key_schema: key_schema(&props, &at)?,
            global_secondary_indexes: secondary_indexes(&props, "GlobalSecondaryIndexes", &at)?,
            local_secondary_indexes: secondary_indexes(&props, "LocalSecondaryIndexes", &at)?,
            stream_arn: match stream_view_type {
                Some(_) => Some(self.resolver.attribute(id, "StreamArn", &at, 0)?),
                None => None,
            },
            stream_view_type,
            time_to_live_attribute,
        };
        if table.partition_key().is_none() {
            return Err(Error::template(format!("{at}: no HASH key in KeySchema")));
        }
        Ok(table)
    }

    pub(super) fn queue(&self, id: &str, resource: &Value, at: &str) -> Result<Queue> {
        let props = self.properties(resource, at)?;
        let at = format!("{at}.Properties");
        Ok(Queue {
            logical_id: id.to_owned(),
            name: self.resolver.physical_name(id, "QueueName", &at, 0)?,
            url: self.resolver.attribute(id, "QueueUrl", &at, 0)?,
            arn: self.resolver.attribute(id, "Arn", &at, 0)?,
            fifo: optional_bool(&props, "FifoQueue", &at)?.unwrap_or(false),
            visibility_timeout: optional_u32(&props, "VisibilityTimeout", &at)?,
            message_retention_period: optional_u32(&props, "MessageRetentionPeriod", &at)?,
            delay_seconds: optional_u32(&props, "DelaySeconds", &at)?,
            receive_message_wait_time_seconds: optional_u32(
                &props,
                "ReceiveMessageWaitTimeSeconds",
                &at,
            )?,
            maximum_message_size: optional_u32(&props, "MaximumMessageSize", &at)?,
            content_based_deduplication: optional_bool(&props, "ContentBasedDeduplication", &at)?,
            redrive: None,
        })
    }

    pub(super) fn secret(&self, id: &str, resource: &Value, at: &str) -> Result<Secret> {
        let props = self.properties(resource, at)?;
        let at = format!("{at}.Properties");
        let generate = match props.get("GenerateSecretString") {
            None => GeneratedSecret::default(),
            Some(g) => {
                let at = format!("{at}.GenerateSecretString");
                let template = optional_string(g, "SecretStringTemplate", &at)?;
                let key = optional_string(g, "GenerateStringKey", &at)?;
                let json_template = match (template, key) {
                    (Some(template), Some(key)) => Some((template, key)),
                    (None, None) => None,
                    _ => {
                        return Err(Error::template(format!(
                            "{at}: SecretStringTemplate and GenerateStringKey go together"
                        )));
                    }
                };
                GeneratedSecret {
                    password_length: optional_i64(g, "PasswordLength", &at)?,
                    exclude_characters: optional_string(g, "ExcludeCharacters", &at)?,
                    exclude_numbers: optional_bool(g, "ExcludeNumbers", &at)?,
                    exclude_punctuation: optional_bool(g, "ExcludePunctuation", &at)?,
                    exclude_uppercase: optional_bool(g, "ExcludeUppercase", &at)?,
                    exclude_lowercase: optional_bool(g, "ExcludeLowercase", &at)?,
                    include_space: optional_bool(g, "IncludeSpace", &at)?,
                    require_each_included_type: optional_bool(g, "RequireEachIncludedType", &at)?,
                    json_template,
                }
            }
        };
        Ok(Secret {
            logical_id: id.to_owned(),
            name: self.resolver.physical_name(id, "Name", &at, 0)?,
            description: optional_string(&props, "Description", &at)?,
            secret_string: optional_string(&props, "SecretString", &at)?,
            generate,
        })
    }

    pub(super) fn function(
        &self,
        id: &str,
        resource: &Value,
        globals: &Value,
        queue_arns: &[(String, String)],
        built: &mut Built,
    ) -> Result<()> {
        let at = format!("Resources.{id}");
        let binary = self.resolver.function_name(id, &at, 0)?;
        let own = resource.get("Properties").unwrap_or(&Value::Null);
        // Resolve only what is read here: a property this crate does not need (Policies, ...)
        // may use intrinsics it does not support without breaking the local stack.
        let timeout = match own.get("Timeout").or_else(|| globals.get("Timeout")) {
            Some(v) => Some(
                self.resolver
                    .resolve(v, &format!("{at}.Properties.Timeout"))?,
            ),
            None => None,
        };
        // Absent when neither the function nor `Globals` sets it (SAM's default then).
        let timeout = Value::Mapping(Mapping::from_iter(timeout.map(|t| ("Timeout".into(), t))));
        let props_at = format!("{at}.Properties");
        let mut environment = BTreeMap::new();
        let global_variables = globals
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .cloned()
            .unwrap_or(Value::Null);
        let own_variables = match own.get("Environment").and_then(|e| e.get("Variables")) {
            Some(v) => self
                .resolver
                .resolve(v, &format!("{props_at}.Environment.Variables"))?,
            None => Value::Null,
        };
        for variables in [&global_variables, &own_variables] {
            if let Some(variables) = variables.as_mapping() {
                for (name, value) in variables {
                    let name = key_str(name, &props_at)?;
                    let value = scalar_string(value, &format!("{props_at}.Environment.{name}"))?;
                    environment.insert(name.to_owned(), value);
                }
            }
        }
        built.functions.push(Function {
            logical_id: id.to_owned(),
            arn: self.resolver.attribute(id, "Arn", &at, 0)?,
            timeout: optional_u32(&timeout, "Timeout", &props_at)?.unwrap_or(3),
            environment,
            binary: binary.clone(),
        });

        let Some(events) = own.get("Events").and_then(Value::as_mapping) else {
            return Ok(());
        };
        let table_streams: Vec<(String, String)> = built
            .tables
            .iter()
            .filter_map(|t| Some((t.stream_arn.clone()?, t.logical_id.clone())))
            .collect();
        for (event, definition) in events {
            let event = key_str(event, &format!("{props_at}.Events"))?;
            let at = format!("{props_at}.Events.{event}");
            let kind = definition
                .get("Type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let props = match definition.get("Properties") {
                Some(p) => self.resolver.resolve(p, &format!("{at}.Properties"))?,
                None => Value::Null,
            };
            let at = format!("{at}.Properties");
            match kind {
                "HttpApi" => built.routes.push(Route {
                    function: id.to_owned(),
                    binary: binary.clone(),
                    event: event.to_owned(),
                    method: optional_string(&props, "Method", &at)?
                        .unwrap_or_else(|| "ANY".to_owned())
                        .to_ascii_uppercase(),
                    path: optional_string(&props, "Path", &at)?
                        .unwrap_or_else(|| "/{proxy+}".to_owned()),
                    api: optional_string(&props, "ApiId", &at)?,
                }),
                "DynamoDB" | "SQS" => {
                    let source: SourceProperties = serde_yaml_ng::from_value(props)
                        .map_err(|e| Error::template(format!("{at}: {e}")))?;
                    let arn_of = |arn: Option<&String>, key: &str, pairs: &[(String, String)]| {
                        let arn =
                            arn.ok_or_else(|| Error::template(format!("{at}: missing {key}")))?;
                        lookup(pairs, arn).ok_or_else(|| {
                            Error::template(format!(
                                "{at}.{key}: `{arn}` is not a {} of this template",
                                if key == "Stream" {
                                    "table's stream"
                                } else {
                                    "queue"
                                }
                            ))
                        })
                    };
                    let function_response_types = source.function_response_types;
                    let window = source.maximum_batching_window_in_seconds.unwrap_or(0);
                    let enabled = source.enabled.unwrap_or(true);
                    if kind == "SQS" {
                        built.queue_sources.push(QueueSource {
                            function: id.to_owned(),
                            binary: binary.clone(),
                            event: event.to_owned(),
                            queue: arn_of(source.queue.as_ref(), "Queue", queue_arns)?,
                            batch_size: source.batch_size.unwrap_or(10),
                            maximum_batching_window_in_seconds: window,
                            function_response_types,
                            enabled,
                        });
                        continue;
                    }
                    let stream_arn = source
                        .stream
                        .ok_or_else(|| Error::template(format!("{at}: missing Stream")))?;
                    let on_failure = source
                        .destination_config
                        .and_then(|d| d.on_failure)
                        .map(|d| arn_of(Some(&d.destination), "DestinationConfig", queue_arns))
                        .transpose()?;
                    built.stream_sources.push(StreamSource {
                        function: id.to_owned(),
                        binary: binary.clone(),
                        event: event.to_owned(),
                        table: arn_of(Some(&stream_arn), "Stream", &table_streams)?,
                        stream_arn,
                        starting_position: source.starting_position.ok_or_else(|| {
                            Error::template(format!("{at}: missing StartingPosition"))
                        })?,
                        batch_size: source.batch_size.unwrap_or(100),
                        maximum_batching_window_in_seconds: window,
                        function_response_types,
                        bisect_batch_on_function_error: source
                            .bisect_batch_on_function_error
                            .unwrap_or(false),
                        maximum_retry_attempts: limit(source.maximum_retry_attempts, &at)?,
                        maximum_record_age_in_seconds: limit(
                            source.maximum_record_age_in_seconds,
                            &at,
                        )?,
                        parallelization_factor: source.parallelization_factor.unwrap_or(1),
                        on_failure,
                        enabled,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

pub(super) fn lookup(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, value)| value.clone())
}

/// The properties of a `DynamoDB` or `SQS` event, resolved (Lambda's event source mapping).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SourceProperties {
    stream: Option<String>,
    queue: Option<String>,
    starting_position: Option<StartingPosition>,
    #[serde(default, deserialize_with = "lenient")]
    batch_size: Option<u32>,
    #[serde(default, deserialize_with = "lenient")]
    maximum_batching_window_in_seconds: Option<u32>,
    #[serde(default)]
    function_response_types: Vec<String>,
    #[serde(default, deserialize_with = "lenient")]
    bisect_batch_on_function_error: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    maximum_retry_attempts: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    maximum_record_age_in_seconds: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    parallelization_factor: Option<u32>,
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

/// A scalar written as itself or as a string (what `!Ref` to a parameter resolves to).
fn lenient<'de, D, T>(deserializer: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let value = Value::deserialize(deserializer)?;
    let text = scalar_string(&value, "").map_err(serde::de::Error::custom)?;
    text.to_ascii_lowercase()
        .parse()
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("`{text}`: {e}")))
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

/// One of the SDK enum's known values (the SDK itself would take any string as `Unknown`).
fn sdk_enum<T: for<'s> From<&'s str>>(text: &str, known: &[&str], at: &str) -> Result<T> {
    if known.contains(&text) {
        Ok(T::from(text))
    } else {
        Err(Error::template(format!("{at}: unknown value `{text}`")))
    }
}
