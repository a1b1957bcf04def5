//! The typed views of the resolved template: tables, buckets, queues, secrets, functions, routes
//! and event sources.

use std::collections::BTreeMap;

pub use aws_sdk_dynamodb::types::{
    KeyType, ProjectionType, ScalarAttributeType as AttributeType, StreamViewType,
};

/// Where a stream event source starts reading (the template's `StartingPosition`, which the
/// bridge applies to the shards that exist when it starts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StartingPosition {
    /// `TRIM_HORIZON`: the oldest record still in the stream.
    #[default]
    TrimHorizon,
    /// `LATEST`: only records written from now on.
    Latest,
}

/// One element of a key schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyElement {
    /// The attribute.
    pub attribute_name: String,
    /// Partition or sort key.
    pub key_type: KeyType,
}

/// The declared type of a key attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeDefinition {
    /// The attribute.
    pub attribute_name: String,
    /// Its scalar type.
    pub attribute_type: AttributeType,
}

/// A global or local secondary index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondaryIndex {
    /// The index name, resolved for the stack.
    pub name: String,
    /// Its key schema.
    pub key_schema: Vec<KeyElement>,
    /// What it projects.
    pub projection_type: ProjectionType,
    /// With `INCLUDE` projections: the projected non-key attributes.
    pub non_key_attributes: Vec<String>,
}

/// An `AWS::DynamoDB::Table`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// The logical id in the template (`EventsTable`).
    pub logical_id: String,
    /// The physical table name for the stack (`ftgo-events`).
    pub name: String,
    /// The table ARN.
    pub arn: String,
    /// Declared key attributes.
    pub attribute_definitions: Vec<AttributeDefinition>,
    /// The table's key schema.
    pub key_schema: Vec<KeyElement>,
    /// Global secondary indexes.
    pub global_secondary_indexes: Vec<SecondaryIndex>,
    /// Local secondary indexes.
    pub local_secondary_indexes: Vec<SecondaryIndex>,
    /// The stream's view type, when the table has a stream.
    pub stream_view_type: Option<StreamViewType>,
    /// The stream ARN as the template resolves it (label [`PLACEHOLDER_STREAM_LABEL`]).
    pub stream_arn: Option<String>,
    /// The TTL attribute, when time to live is enabled.
    pub time_to_live_attribute: Option<String>,
}

impl Table {
    /// The partition key attribute.
    pub fn partition_key(&self) -> Option<&str> {
        self.key(KeyType::Hash)
    }

    /// The sort key attribute, if any.
    pub fn sort_key(&self) -> Option<&str> {
        self.key(KeyType::Range)
    }

    /// The global or local secondary index of this name.
    pub fn index(&self, name: &str) -> Option<&SecondaryIndex> {
        self.global_secondary_indexes
            .iter()
            .chain(&self.local_secondary_indexes)
            .find(|index| index.name == name)
    }

    /// The declared type of key attribute `name`.
    pub fn attribute_type(&self, name: &str) -> Option<AttributeType> {
        self.attribute_definitions
            .iter()
            .find(|definition| definition.attribute_name == name)
            .map(|definition| definition.attribute_type.clone())
    }

    fn key(&self, key_type: KeyType) -> Option<&str> {
        self.key_schema
            .iter()
            .find(|element| element.key_type == key_type)
            .map(|element| element.attribute_name.as_str())
    }
}

/// An `AWS::S3::Bucket`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// The logical id (`EventArchiveBucket`).
    pub logical_id: String,
    /// The bucket name for the stack (`ftgo-event-archive`).
    pub name: String,
    /// The bucket ARN.
    pub arn: String,
}

/// How a secret's value is generated (`GenerateSecretString`), as Secrets Manager's
/// `GetRandomPassword` takes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeneratedSecret {
    /// `PasswordLength` (Secrets Manager's default 32 when absent).
    pub password_length: Option<i64>,
    /// `ExcludeCharacters`.
    pub exclude_characters: Option<String>,
    /// `ExcludeNumbers`.
    pub exclude_numbers: Option<bool>,
    /// `ExcludePunctuation`.
    pub exclude_punctuation: Option<bool>,
    /// `ExcludeUppercase`.
    pub exclude_uppercase: Option<bool>,
    /// `ExcludeLowercase`.
    pub exclude_lowercase: Option<bool>,
    /// `IncludeSpace`.
    pub include_space: Option<bool>,
    /// `RequireEachIncludedType`.
    pub require_each_included_type: Option<bool>,
    /// `SecretStringTemplate` and `GenerateStringKey`: the value is that JSON object with the
    /// generated string added under the key.
    pub json_template: Option<(String, String)>,
}

/// An `AWS::SecretsManager::Secret`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    /// The logical id (`PageTokenKey`).
    pub logical_id: String,
    /// The secret name for the stack (`ftgo-page-token-key`); what `Ref` resolves to locally.
    pub name: String,
    /// `Description`, when declared.
    pub description: Option<String>,
    /// `SecretString`, when the template gives the value itself.
    pub secret_string: Option<String>,
    /// How the value is generated otherwise (CloudFormation generates one when neither is
    /// declared).
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
    /// A FIFO queue.
    pub fifo: bool,
    /// `VisibilityTimeout` in seconds, when declared.
    pub visibility_timeout: Option<u32>,
    /// `MessageRetentionPeriod` in seconds, when declared.
    pub message_retention_period: Option<u32>,
    /// `DelaySeconds`, when declared.
    pub delay_seconds: Option<u32>,
    /// `ReceiveMessageWaitTimeSeconds`, when declared.
    pub receive_message_wait_time_seconds: Option<u32>,
    /// `MaximumMessageSize` in bytes, when declared.
    pub maximum_message_size: Option<u32>,
    /// `ContentBasedDeduplication` (FIFO queues).
    pub content_based_deduplication: Option<bool>,
    /// The redrive policy, when declared.
    pub redrive: Option<Redrive>,
}

impl Queue {
    /// The queue's SQS attributes as `CreateQueue`/`SetQueueAttributes` take them, except
    /// `RedrivePolicy` (which needs the dead-letter queue's real ARN).
    pub fn attributes(&self) -> BTreeMap<String, String> {
        let numbers = [
            ("VisibilityTimeout", self.visibility_timeout),
            ("MessageRetentionPeriod", self.message_retention_period),
            ("DelaySeconds", self.delay_seconds),
            (
                "ReceiveMessageWaitTimeSeconds",
                self.receive_message_wait_time_seconds,
            ),
            ("MaximumMessageSize", self.maximum_message_size),
        ];
        let mut attributes: BTreeMap<String, String> = numbers
            .into_iter()
            .filter_map(|(name, value)| value.map(|value| (name.to_owned(), value.to_string())))
            .collect();
        if self.fifo {
            attributes.insert("FifoQueue".to_owned(), "true".to_owned());
        }
        if let Some(dedup) = self.content_based_deduplication {
            attributes.insert("ContentBasedDeduplication".to_owned(), dedup.to_string());
        }
        attributes
    }
}

/// An `AWS::Serverless::Function` (or `AWS::Lambda::Function`), with `Globals` applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// The logical id (`OrderCommandsFunction`).
    pub logical_id: String,
    /// The binary (= local function name): `Metadata.BuildProperties.Binary`, else
    /// `FunctionName`, else the logical id.
    pub binary: String,
    /// The function ARN for the stack.
    pub arn: String,
    /// `Timeout` in seconds (SAM's default 3 when absent).
    pub timeout: u32,
    /// Environment variables: `Globals.Function` merged with the function's own (which win).
    pub environment: BTreeMap<String, String>,
}

/// An `HttpApi` event: one route of the HTTP API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Logical id of the function serving it.
    pub function: String,
    /// That function's binary name.
    pub binary: String,
    /// The event's name in the function's `Events`.
    pub event: String,
    /// Upper-case HTTP method, or `ANY`.
    pub method: String,
    /// The path with `{param}` (and `{proxy+}`) placeholders, e.g. `/orders/{orderId}/approve`.
    pub path: String,
    /// Logical id of the `AWS::Serverless::HttpApi` (`None` for SAM's implicit API).
    pub api: Option<String>,
}

/// A `DynamoDB` event: a function fed by a table's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSource {
    /// Logical id of the function.
    pub function: String,
    /// That function's binary name.
    pub binary: String,
    /// The event's name in the function's `Events`.
    pub event: String,
    /// Logical id of the table whose stream feeds it.
    pub table: String,
    /// The stream ARN as resolved from the template (placeholder label).
    pub stream_arn: String,
    /// `StartingPosition`.
    pub starting_position: StartingPosition,
    /// `BatchSize` (Lambda's default 100).
    pub batch_size: u32,
    /// `MaximumBatchingWindowInSeconds` (default 0).
    pub maximum_batching_window_in_seconds: u32,
    /// `FunctionResponseTypes` (e.g. `ReportBatchItemFailures`).
    pub function_response_types: Vec<String>,
    /// `BisectBatchOnFunctionError` (default false).
    pub bisect_batch_on_function_error: bool,
    /// `MaximumRetryAttempts`; `None` = retry until the record expires (Lambda's default, -1).
    pub maximum_retry_attempts: Option<u32>,
    /// `MaximumRecordAgeInSeconds`; `None` = no limit (Lambda's default, -1).
    pub maximum_record_age_in_seconds: Option<u32>,
    /// `ParallelizationFactor` (default 1).
    pub parallelization_factor: u32,
    /// `DestinationConfig.OnFailure.Destination`: logical id of the template queue that receives
    /// Lambda's on-failure message.
    pub on_failure: Option<String>,
    /// `Enabled` (default true).
    pub enabled: bool,
}

impl StreamSource {
    /// The function reports partial batch failures (`ReportBatchItemFailures`).
    pub fn reports_batch_item_failures(&self) -> bool {
        reports_batch_item_failures(&self.function_response_types)
    }
}

/// An `SQS` event: a function fed by a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSource {
    /// Logical id of the function.
    pub function: String,
    /// That function's binary name.
    pub binary: String,
    /// The event's name in the function's `Events`.
    pub event: String,
    /// Logical id of the queue.
    pub queue: String,
    /// `BatchSize` (Lambda's default 10).
    pub batch_size: u32,
    /// `MaximumBatchingWindowInSeconds` (default 0).
    pub maximum_batching_window_in_seconds: u32,
    /// `FunctionResponseTypes` (e.g. `ReportBatchItemFailures`).
    pub function_response_types: Vec<String>,
    /// `Enabled` (default true).
    pub enabled: bool,
}

impl QueueSource {
    /// The function reports partial batch failures (`ReportBatchItemFailures`).
    pub fn reports_batch_item_failures(&self) -> bool {
        reports_batch_item_failures(&self.function_response_types)
    }
}

fn reports_batch_item_failures(types: &[String]) -> bool {
    types.iter().any(|t| t == "ReportBatchItemFailures")
}

/// One entry of `Outputs`, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The output's name.
    pub name: String,
    /// Its value for the stack.
    pub value: String,
    /// Its description, if any.
    pub description: Option<String>,
}
