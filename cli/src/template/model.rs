//! The typed views of the resolved template: tables, buckets, queues, secrets, functions, routes
//! and event sources. A resource's resolved `Properties` deserialise into its struct (serde, the
//! template's own names); what CloudFormation computes (names, ARNs, URLs) comes from the
//! resolver.

use std::collections::BTreeMap;
use std::time::Duration;

pub use aws_sdk_dynamodb::types::{
    KeyType, ProjectionType, ScalarAttributeType as AttributeType, StreamViewType,
};
use http::Method;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_yaml_ng::Value;

use super::resolve::scalar_string;
use crate::error::{Error, Result};

/// Where a stream event source starts reading (the template's `StartingPosition`, which the
/// bridge applies to the shards that exist when it starts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StartingPosition {
    /// `TRIM_HORIZON`: the oldest record still in the stream.
    #[default]
    TrimHorizon,
    /// `LATEST`: only records written from now on.
    Latest,
}

/// One element of a key schema.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyElement {
    /// The attribute.
    pub attribute_name: String,
    /// Partition or sort key.
    #[serde(deserialize_with = "sdk_enum")]
    pub key_type: KeyType,
}

/// The declared type of a key attribute.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDefinition {
    /// The attribute.
    pub attribute_name: String,
    /// Its scalar type.
    #[serde(deserialize_with = "sdk_enum")]
    pub attribute_type: AttributeType,
}

/// What a secondary index projects (`ALL` when the template says nothing).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexProjection {
    /// `ProjectionType`.
    #[serde(deserialize_with = "sdk_enum")]
    pub projection_type: ProjectionType,
    /// With `INCLUDE` projections: the projected non-key attributes.
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

impl Default for IndexProjection {
    fn default() -> Self {
        Self {
            projection_type: ProjectionType::All,
            non_key_attributes: Vec::new(),
        }
    }
}

/// A global or local secondary index.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecondaryIndex {
    /// The index name, resolved for the stack.
    #[serde(rename = "IndexName")]
    pub name: String,
    /// Its key schema.
    pub key_schema: Vec<KeyElement>,
    /// What it projects.
    #[serde(default)]
    pub projection: IndexProjection,
}

/// A table's `StreamSpecification`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSpecification {
    /// What the stream's records carry.
    #[serde(deserialize_with = "sdk_enum")]
    pub stream_view_type: StreamViewType,
}

/// A table's `TimeToLiveSpecification`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimeToLive {
    /// The attribute holding the expiry time.
    pub attribute_name: String,
    /// `Enabled` (taken as true when absent).
    #[serde(default, deserialize_with = "lenient")]
    pub enabled: Option<bool>,
}

/// An `AWS::DynamoDB::Table`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Table {
    /// The logical id in the template (`EventsTable`).
    #[serde(skip)]
    pub logical_id: String,
    /// The physical table name for the stack (`ftgo-events`).
    #[serde(skip)]
    pub name: String,
    /// Declared key attributes.
    #[serde(default)]
    pub attribute_definitions: Vec<AttributeDefinition>,
    /// The table's key schema.
    pub key_schema: Vec<KeyElement>,
    /// Global secondary indexes.
    #[serde(default)]
    pub global_secondary_indexes: Vec<SecondaryIndex>,
    /// Local secondary indexes.
    #[serde(default)]
    pub local_secondary_indexes: Vec<SecondaryIndex>,
    /// The stream, when the table has one.
    pub stream_specification: Option<StreamSpecification>,
    /// Time to live, when declared.
    pub time_to_live_specification: Option<TimeToLive>,
    /// The stream ARN as the template resolves it (label [`super::PLACEHOLDER_STREAM_LABEL`]).
    #[serde(skip)]
    pub stream_arn: Option<String>,
}

impl Table {
    /// The partition key attribute.
    pub fn partition_key(&self) -> Option<&str> {
        self.key_schema
            .iter()
            .find(|element| element.key_type == KeyType::Hash)
            .map(|element| element.attribute_name.as_str())
    }

    /// The TTL attribute, when time to live is enabled.
    pub fn time_to_live_attribute(&self) -> Option<&str> {
        self.time_to_live_specification
            .as_ref()
            .filter(|ttl| ttl.enabled != Some(false))
            .map(|ttl| ttl.attribute_name.as_str())
    }
}

/// An `AWS::S3::Bucket`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// The logical id (`EventArchiveBucket`).
    pub logical_id: String,
    /// The bucket name for the stack (`ftgo-event-archive`).
    pub name: String,
}

/// How a secret's value is generated (`GenerateSecretString`), as Secrets Manager's
/// `GetRandomPassword` takes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GeneratedSecret {
    /// `PasswordLength` (Secrets Manager's default 32 when absent).
    #[serde(default, deserialize_with = "lenient")]
    pub password_length: Option<i64>,
    /// `ExcludeCharacters`.
    pub exclude_characters: Option<String>,
    /// `ExcludeNumbers`.
    #[serde(default, deserialize_with = "lenient")]
    pub exclude_numbers: Option<bool>,
    /// `ExcludePunctuation`.
    #[serde(default, deserialize_with = "lenient")]
    pub exclude_punctuation: Option<bool>,
    /// `ExcludeUppercase`.
    #[serde(default, deserialize_with = "lenient")]
    pub exclude_uppercase: Option<bool>,
    /// `ExcludeLowercase`.
    #[serde(default, deserialize_with = "lenient")]
    pub exclude_lowercase: Option<bool>,
    /// `IncludeSpace`.
    #[serde(default, deserialize_with = "lenient")]
    pub include_space: Option<bool>,
    /// `RequireEachIncludedType`.
    #[serde(default, deserialize_with = "lenient")]
    pub require_each_included_type: Option<bool>,
    /// `SecretStringTemplate`: with `GenerateStringKey`, the value is this JSON object with the
    /// generated string added under that key.
    pub secret_string_template: Option<String>,
    /// `GenerateStringKey`.
    pub generate_string_key: Option<String>,
}

/// An `AWS::SecretsManager::Secret`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Secret {
    /// The logical id (`PageTokenKey`).
    #[serde(skip)]
    pub logical_id: String,
    /// The secret name for the stack (`ftgo-page-token-key`); what `Ref` resolves to locally.
    #[serde(skip)]
    pub name: String,
    /// `Description`, when declared.
    pub description: Option<String>,
    /// `SecretString`, when the template gives the value itself.
    pub secret_string: Option<String>,
    /// How the value is generated otherwise (CloudFormation generates one when neither is
    /// declared).
    #[serde(default, rename = "GenerateSecretString")]
    pub generate: GeneratedSecret,
}

/// A queue's redrive policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redrive {
    /// Logical id of the dead-letter queue (a queue of this template).
    pub dead_letter_queue: String,
    /// Receives before a message moves to the dead-letter queue.
    pub max_receive_count: u32,
}

/// An `AWS::SQS::Queue`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queue {
    /// The logical id (`ReplayQueue`).
    pub logical_id: String,
    /// The queue name for the stack (`ftgo-replay`).
    pub name: String,
    /// The queue URL for the stack (at the endpoint, locally).
    pub url: String,
    /// The queue ARN.
    pub arn: String,
    /// The declared properties that are SQS attributes (`VisibilityTimeout`, `FifoQueue`, ...),
    /// as `CreateQueue` takes them; not `RedrivePolicy` (which needs the dead-letter queue's
    /// real ARN).
    pub attributes: BTreeMap<String, String>,
    /// The redrive policy, when declared.
    pub redrive: Option<Redrive>,
}

/// An `AWS::Serverless::Function` (or `AWS::Lambda::Function`), with `Globals` applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// The logical id (`OrderCommandsFunction`).
    pub logical_id: String,
    /// The binary (= local function name): `Metadata.BuildProperties.Binary`, else
    /// `FunctionName`, else the logical id.
    pub binary: String,
    /// The deployed name: `FunctionName` when declared, else the binary.
    pub name: String,
    /// `Timeout` in seconds (SAM's default 3 when absent).
    pub timeout: u32,
    /// Environment variables: `Globals.Function` merged with the function's own (which win).
    pub environment: BTreeMap<String, String>,
}

/// An `HttpApi` event: a method (or any method) and a path template such as
/// `/orders/{orderId}/approve`, served by a function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method; `None` for `ANY`.
    pub method: Option<Method>,
    /// The path template, with `{name}` (one segment) and a final `{name+}` (greedy) parameters.
    pub path: String,
    /// The local function name (the binary name) that serves the route.
    pub function: String,
}

impl Route {
    /// A route from the template's `Method` (case-insensitive, `ANY` or `*` for any) and `Path`.
    pub fn new(method: &str, path: impl Into<String>, function: impl Into<String>) -> Self {
        let method = match method.trim().to_ascii_uppercase().as_str() {
            "ANY" | "*" | "X-AMAZON-APIGATEWAY-ANY-METHOD" => None,
            m => Method::from_bytes(m.as_bytes()).ok(),
        };
        Self {
            method,
            path: path.into(),
            function: function.into(),
        }
    }

    /// The route key API Gateway reports: `POST /orders/{orderId}/approve` (or `ANY /…`).
    pub fn route_key(&self) -> String {
        match &self.method {
            Some(m) => format!("{m} {}", self.path),
            None => format!("ANY {}", self.path),
        }
    }
}

/// The settings of a stream event source that govern batching and retries (Lambda's event
/// source mapping).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPolicy {
    /// `BatchSize` (Lambda's default 100; at least 1).
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds` (default 0).
    pub batching_window: Duration,
    /// `FunctionResponseTypes` contains `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// `BisectBatchOnFunctionError` (default false).
    pub bisect_on_error: bool,
    /// `MaximumRetryAttempts`; `None` is Lambda's -1 (its default): retry until the record
    /// expires.
    pub max_retry_attempts: Option<u32>,
    /// `MaximumRecordAgeInSeconds`; `None` is Lambda's -1 (its default): no age limit.
    pub max_record_age: Option<Duration>,
}

/// A `DynamoDB` event: a function fed by a table's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSource {
    /// Logical id of the function.
    pub function: String,
    /// That function's binary name.
    pub binary: String,
    /// That function's `Timeout`: an invocation still running then is cut and fails.
    pub timeout: Duration,
    /// The table whose stream feeds it.
    pub table: Table,
    /// `StartingPosition`.
    pub starting_position: StartingPosition,
    /// Batching and retries.
    pub policy: StreamPolicy,
    /// `DestinationConfig.OnFailure.Destination`: the template queue that receives Lambda's
    /// on-failure message.
    pub on_failure: Option<Queue>,
    /// `Enabled` (default true).
    pub enabled: bool,
}

/// An `SQS` event: a function fed by a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSource {
    /// Logical id of the function.
    pub function: String,
    /// That function's binary name.
    pub binary: String,
    /// That function's `Timeout`: an invocation still running then is cut and fails.
    pub timeout: Duration,
    /// The queue.
    pub queue: Queue,
    /// `BatchSize` (Lambda's default 10; at least 1).
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds` (default 0).
    pub batching_window: Duration,
    /// `FunctionResponseTypes` contains `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// `Enabled` (default true).
    pub enabled: bool,
}

/// A resolved fragment deserialised into `T`; an error names the property, from `at` on.
pub(super) fn typed<T: DeserializeOwned>(value: Value, at: &str) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            at.to_owned()
        } else {
            format!("{at}.{path}")
        };
        Error::template(format!("{at}: {}", e.into_inner()))
    })
}

/// A scalar written as itself or as a string (what `!Ref` to a parameter resolves to).
pub(super) fn lenient<'de, D, T>(deserializer: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let value = Value::deserialize(deserializer)?;
    let text = scalar_string(&value, "").map_err(D::Error::custom)?;
    text.to_ascii_lowercase()
        .parse()
        .map(Some)
        .map_err(|e| D::Error::custom(format!("`{text}`: {e}")))
}

/// An SDK enum the template names by its wire value (`HASH`, `NEW_IMAGE`, ...).
trait SdkEnum: for<'s> From<&'s str> {
    fn known() -> &'static [&'static str];
}

macro_rules! sdk_enums {
    ($($t:ty),*) => {$(impl SdkEnum for $t {
        fn known() -> &'static [&'static str] { <$t>::values() }
    })*};
}
sdk_enums!(KeyType, ProjectionType, AttributeType, StreamViewType);

/// One of the SDK enum's known values (the SDK itself would take any string as `Unknown`).
fn sdk_enum<'de, D: Deserializer<'de>, T: SdkEnum>(
    deserializer: D,
) -> std::result::Result<T, D::Error> {
    let text = String::deserialize(deserializer)?;
    if T::known().contains(&text.as_str()) {
        Ok(T::from(text.as_str()))
    } else {
        Err(D::Error::unknown_variant(&text, T::known()))
    }
}
