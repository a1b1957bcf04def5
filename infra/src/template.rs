//! `template.yaml`, read as the single source of truth.
//!
//! The SAM template is parsed with `serde_yaml_ng`, which keeps CloudFormation's short tags
//! (`!Ref`, `!Sub`, `!GetAtt`, ...) as tagged values, and every intrinsic function is resolved
//! for a [`Stack`]: a stack name (`ftgo` locally), a region, an account id and, locally, the
//! emulator's endpoint (queue URLs point at it). The result is a set of typed views — tables,
//! buckets, queues, secrets, functions, HTTP routes and event sources — so that no table, queue
//! or route is ever written in Rust code.
//!
//! `Ref` on a Secrets Manager secret resolves to its *name* here, where CloudFormation answers
//! its ARN: the ARN ends in a random suffix only Secrets Manager knows, and every Secrets Manager
//! call takes the name as well as the ARN.
//!
//! Supported intrinsics, in short (`!Sub`) and long (`Fn::Sub`) form: `Ref`, `Fn::Sub` (string
//! and list form), `Fn::GetAtt` (string and list form), `Fn::Join`, `Fn::Select`, `Fn::Split`.
//! Conditions (`Fn::If`, ...) and `AWS::NoValue` are not supported and are reported as errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::error::{Error, Result};

/// The stack name of the local stack (`make run`, `make test`).
pub const LOCAL_STACK_NAME: &str = "ftgo";
/// The region the local stack pretends to be in.
pub const LOCAL_REGION: &str = "us-east-1";
/// The account id the local stack pretends to be (moto's default account).
pub const LOCAL_ACCOUNT_ID: &str = "123456789012";

/// The stream label used in stream ARNs resolved from the template. DynamoDB assigns the real
/// label when it creates the stream; [`crate::provision::Provisioned`] carries the real ARN.
pub const PLACEHOLDER_STREAM_LABEL: &str = "1970-01-01T00:00:00.000";

const TABLE: &str = "AWS::DynamoDB::Table";
const BUCKET: &str = "AWS::S3::Bucket";
const QUEUE: &str = "AWS::SQS::Queue";
const SECRET: &str = "AWS::SecretsManager::Secret";
const SERVERLESS_FUNCTION: &str = "AWS::Serverless::Function";
const LAMBDA_FUNCTION: &str = "AWS::Lambda::Function";
const MAX_DEPTH: usize = 32;

/// The repository's `template.yaml` (next to the workspace `Cargo.toml`).
pub fn default_template_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("template.yaml")
}

/// Where and as what the template is resolved: the values of CloudFormation's pseudo parameters,
/// parameter overrides, and (locally) the emulator endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    /// `AWS::StackName`; every physical name derives from it.
    pub name: String,
    /// `AWS::Region`.
    pub region: String,
    /// `AWS::AccountId`.
    pub account_id: String,
    /// The emulator endpoint (e.g. `http://127.0.0.1:4566`), or `None` for AWS itself. Queue URLs
    /// are `<endpoint>/<account>/<queue>` when set, as moto answers them.
    pub endpoint: Option<String>,
    /// Parameter values overriding the template's `Default`s.
    pub parameters: BTreeMap<String, String>,
}

impl Stack {
    /// The local stack: `ftgo`, `us-east-1`, account `123456789012`, no endpoint.
    pub fn local() -> Self {
        Self::named(LOCAL_STACK_NAME)
    }

    /// A stack of this name in the local region and account.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            region: LOCAL_REGION.to_owned(),
            account_id: LOCAL_ACCOUNT_ID.to_owned(),
            endpoint: None,
            parameters: BTreeMap::new(),
        }
    }

    /// This stack, served by the emulator at `endpoint`.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into().trim_end_matches('/').to_owned());
        self
    }

    /// This stack, with parameter `name` set to `value` instead of its default.
    pub fn with_parameter(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parameters.insert(name.into(), value.into());
        self
    }

    /// `AWS::Partition` for the region.
    pub fn partition(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "aws-cn"
        } else if self.region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }

    /// `AWS::URLSuffix` for the region.
    pub fn url_suffix(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        }
    }

    /// The URL of queue `name` in this stack (pointing at the endpoint when there is one).
    pub fn queue_url(&self, name: &str) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("{endpoint}/{}/{name}", self.account_id),
            None => format!(
                "https://sqs.{}.{}/{}/{name}",
                self.region,
                self.url_suffix(),
                self.account_id
            ),
        }
    }
}

impl Default for Stack {
    fn default() -> Self {
        Self::local()
    }
}

/// A DynamoDB key element's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// Partition key.
    Hash,
    /// Sort key.
    Range,
}

impl KeyType {
    /// `HASH` or `RANGE`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Hash => "HASH",
            KeyType::Range => "RANGE",
        }
    }
}

/// A DynamoDB key attribute's scalar type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttributeType {
    /// `S`.
    String,
    /// `N`.
    Number,
    /// `B`.
    Binary,
}

impl AttributeType {
    /// `S`, `N` or `B`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::String => "S",
            AttributeType::Number => "N",
            AttributeType::Binary => "B",
        }
    }
}

/// What a DynamoDB stream record carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamViewType {
    /// `NEW_IMAGE`.
    NewImage,
    /// `OLD_IMAGE`.
    OldImage,
    /// `NEW_AND_OLD_IMAGES`.
    NewAndOldImages,
    /// `KEYS_ONLY`.
    KeysOnly,
}

impl StreamViewType {
    /// The CloudFormation / API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamViewType::NewImage => "NEW_IMAGE",
            StreamViewType::OldImage => "OLD_IMAGE",
            StreamViewType::NewAndOldImages => "NEW_AND_OLD_IMAGES",
            StreamViewType::KeysOnly => "KEYS_ONLY",
        }
    }
}

/// Which attributes a secondary index projects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProjectionType {
    /// `ALL`.
    All,
    /// `KEYS_ONLY`.
    KeysOnly,
    /// `INCLUDE` (the index's `non_key_attributes`).
    Include,
}

impl ProjectionType {
    /// The CloudFormation / API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectionType::All => "ALL",
            ProjectionType::KeysOnly => "KEYS_ONLY",
            ProjectionType::Include => "INCLUDE",
        }
    }
}

/// Where a stream event source starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StartingPosition {
    /// `TRIM_HORIZON`: the oldest record still in the stream.
    TrimHorizon,
    /// `LATEST`: only records written from now on.
    Latest,
}

impl StartingPosition {
    /// The CloudFormation / API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StartingPosition::TrimHorizon => "TRIM_HORIZON",
            StartingPosition::Latest => "LATEST",
        }
    }
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
    /// With [`ProjectionType::Include`]: the projected non-key attributes.
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
    /// `BillingMode` as declared (`PAY_PER_REQUEST` when absent is *not* assumed: `None`).
    pub billing_mode: Option<String>,
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
            .map(|definition| definition.attribute_type)
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
    /// `CodeUri`, when declared.
    pub code_uri: Option<String>,
    /// `Runtime`.
    pub runtime: Option<String>,
    /// `Handler`.
    pub handler: Option<String>,
    /// `Architectures`.
    pub architectures: Vec<String>,
    /// `MemorySize` in MB (SAM's default 128 when absent).
    pub memory_size: u32,
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

impl Route {
    /// The API Gateway route key, e.g. `POST /orders/{orderId}/approve`.
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The names of the path parameters, in order.
    pub fn path_parameters(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter_map(placeholder)
            .map(|name| name.trim_end_matches('+').to_owned())
            .collect()
    }

    /// When `method` and `path` (no query string) match this route: its path parameters.
    /// Segments are compared as they are; a `{name+}` placeholder takes the rest of the path.
    pub fn matches(&self, method: &str, path: &str) -> Option<BTreeMap<String, String>> {
        if self.method != "ANY" && !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let mut parameters = BTreeMap::new();
        let mut actual = path.trim_start_matches('/').split('/');
        for pattern in self.path.trim_start_matches('/').split('/') {
            match placeholder(pattern) {
                Some(name) if name.ends_with('+') => {
                    let rest: Vec<&str> = actual.by_ref().collect();
                    if rest.is_empty() || rest.iter().all(|segment| segment.is_empty()) {
                        return None;
                    }
                    parameters.insert(name.trim_end_matches('+').to_owned(), rest.join("/"));
                    return Some(parameters);
                }
                Some(name) => {
                    let segment = actual.next().filter(|segment| !segment.is_empty())?;
                    parameters.insert(name.to_owned(), segment.to_owned());
                }
                None => {
                    if actual.next()? != pattern {
                        return None;
                    }
                }
            }
        }
        actual.next().is_none().then_some(parameters)
    }
}

fn placeholder(segment: &str) -> Option<&str> {
    segment.strip_prefix('{')?.strip_suffix('}')
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

/// The template, resolved for one [`Stack`].
#[derive(Clone, Debug)]
pub struct Template {
    document: Value,
    stack: Stack,
    parameters: BTreeMap<String, String>,
    tables: Vec<Table>,
    buckets: Vec<Bucket>,
    queues: Vec<Queue>,
    secrets: Vec<Secret>,
    functions: Vec<Function>,
    routes: Vec<Route>,
    stream_sources: Vec<StreamSource>,
    queue_sources: Vec<QueueSource>,
}

impl Template {
    /// Reads and resolves the template at `path`.
    pub fn load(path: impl AsRef<Path>, stack: Stack) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, stack)
    }

    /// Reads and resolves the repository's `template.yaml` ([`default_template_path`]).
    pub fn load_default(stack: Stack) -> Result<Self> {
        Self::load(default_template_path(), stack)
    }

    /// Parses and resolves template text.
    pub fn parse(yaml: &str, stack: Stack) -> Result<Self> {
        let document: Value = serde_yaml_ng::from_str(yaml)?;
        Self::from_document(document, stack)
    }

    /// Resolves an already parsed template document.
    pub fn from_document(document: Value, stack: Stack) -> Result<Self> {
        let built = Builder::new(&document, &stack)?.build()?;
        Ok(Self {
            parameters: built.parameters,
            tables: built.tables,
            buckets: built.buckets,
            queues: built.queues,
            secrets: built.secrets,
            functions: built.functions,
            routes: built.routes,
            stream_sources: built.stream_sources,
            queue_sources: built.queue_sources,
            document,
            stack,
        })
    }

    /// The same template, resolved for another stack.
    pub fn for_stack(&self, stack: Stack) -> Result<Self> {
        Self::from_document(self.document.clone(), stack)
    }

    /// The stack it is resolved for.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The parsed document, intrinsics unresolved.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Every parameter's value for the stack (override, else `Default`).
    pub fn parameters(&self) -> &BTreeMap<String, String> {
        &self.parameters
    }

    /// Every `AWS::DynamoDB::Table`, in template order.
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    /// The table of this logical id.
    pub fn table(&self, logical_id: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.logical_id == logical_id)
    }

    /// Every `AWS::S3::Bucket`, in template order.
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// The bucket of this logical id.
    pub fn bucket(&self, logical_id: &str) -> Option<&Bucket> {
        self.buckets.iter().find(|b| b.logical_id == logical_id)
    }

    /// Every `AWS::SQS::Queue`, in template order.
    pub fn queues(&self) -> &[Queue] {
        &self.queues
    }

    /// The queue of this logical id.
    pub fn queue(&self, logical_id: &str) -> Option<&Queue> {
        self.queues.iter().find(|q| q.logical_id == logical_id)
    }

    /// Every `AWS::SecretsManager::Secret`, in template order.
    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }

    /// The secret of this logical id.
    pub fn secret(&self, logical_id: &str) -> Option<&Secret> {
        self.secrets.iter().find(|s| s.logical_id == logical_id)
    }

    /// Every function, in template order.
    pub fn functions(&self) -> &[Function] {
        &self.functions
    }

    /// The function of this logical id.
    pub fn function(&self, logical_id: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.logical_id == logical_id)
    }

    /// The function whose binary (local function name) is `binary`.
    pub fn function_by_binary(&self, binary: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.binary == binary)
    }

    /// Every `HttpApi` route, in template order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route matching `method` and `path`, with its path parameters.
    pub fn route_for(
        &self,
        method: &str,
        path: &str,
    ) -> Option<(&Route, BTreeMap<String, String>)> {
        self.routes
            .iter()
            .find_map(|route| route.matches(method, path).map(|params| (route, params)))
    }

    /// Every `DynamoDB` stream event source.
    pub fn stream_sources(&self) -> &[StreamSource] {
        &self.stream_sources
    }

    /// Every `SQS` event source.
    pub fn queue_sources(&self) -> &[QueueSource] {
        &self.queue_sources
    }

    /// The `Outputs`, resolved for the stack.
    pub fn outputs(&self) -> Result<Vec<Output>> {
        let resolver = Resolver::new(&self.document, &self.stack)?;
        let Some(outputs) = section(&self.document, "Outputs")? else {
            return Ok(Vec::new());
        };
        outputs
            .iter()
            .map(|(name, output)| {
                let name = key_str(name, "Outputs")?;
                let at = format!("Outputs.{name}");
                let value = output
                    .get("Value")
                    .ok_or_else(|| Error::template(format!("{at}: no Value")))?;
                let value = scalar_string(&resolver.resolve(value, &at)?, &at)?;
                let description = output
                    .get("Description")
                    .map(|d| scalar_string(&resolver.resolve(d, &at)?, &at))
                    .transpose()?;
                Ok(Output {
                    name: name.to_owned(),
                    value,
                    description,
                })
            })
            .collect()
    }

    /// Resolves any fragment of the template (e.g. a property) for the stack.
    pub fn resolve(&self, value: &Value) -> Result<Value> {
        Resolver::new(&self.document, &self.stack)?.resolve(value, "fragment")
    }
}

/// Resolves intrinsic functions against the template's parameters and resources.
struct Resolver<'a> {
    stack: &'a Stack,
    parameters: Option<&'a Mapping>,
    resources: &'a Mapping,
}

impl<'a> Resolver<'a> {
    fn new(document: &'a Value, stack: &'a Stack) -> Result<Self> {
        let resources = section(document, "Resources")?
            .ok_or_else(|| Error::template("no Resources section"))?;
        Ok(Self {
            stack,
            parameters: section(document, "Parameters")?,
            resources,
        })
    }

    fn resolve(&self, value: &Value, at: &str) -> Result<Value> {
        self.resolve_depth(value, at, 0)
    }

    fn resolve_depth(&self, value: &Value, at: &str, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(Error::template(format!(
                "{at}: references nest too deep (a cycle?)"
            )));
        }
        match value {
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let name = tag.trim_start_matches('!');
                self.intrinsic(name, &tagged.value, at, depth)
            }
            Value::Mapping(mapping) => {
                if let Some((name, argument)) = long_form_intrinsic(mapping) {
                    return self.intrinsic(name, argument, at, depth);
                }
                let mut resolved = Mapping::with_capacity(mapping.len());
                for (key, item) in mapping {
                    let child = match key.as_str() {
                        Some(key) => format!("{at}.{key}"),
                        None => at.to_owned(),
                    };
                    resolved.insert(key.clone(), self.resolve_depth(item, &child, depth + 1)?);
                }
                Ok(Value::Mapping(resolved))
            }
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.resolve_depth(item, &format!("{at}[{i}]"), depth + 1))
                .collect::<Result<Vec<_>>>()
                .map(Value::Sequence),
            other => Ok(other.clone()),
        }
    }

    fn intrinsic(&self, name: &str, argument: &Value, at: &str, depth: usize) -> Result<Value> {
        let name = name.strip_prefix("Fn::").unwrap_or(name);
        let argument = self.resolve_depth(argument, at, depth + 1)?;
        match name {
            "Ref" => {
                let target = scalar_string(&argument, at)?;
                self.reference(&target, at, depth).map(Value::String)
            }
            "GetAtt" => {
                let (resource, attribute) = match &argument {
                    Value::String(s) => s.split_once('.').ok_or_else(|| {
                        Error::template(format!("{at}: GetAtt `{s}` is not Resource.Attribute"))
                    })?,
                    Value::Sequence(parts) if parts.len() == 2 => (
                        parts[0].as_str().unwrap_or_default(),
                        parts[1].as_str().unwrap_or_default(),
                    ),
                    _ => {
                        return Err(Error::template(format!(
                            "{at}: GetAtt takes `Resource.Attribute` or [Resource, Attribute]"
                        )));
                    }
                };
                self.attribute(resource, attribute, at, depth)
                    .map(Value::String)
            }
            "Sub" => self.substitute(&argument, at, depth).map(Value::String),
            "Join" => {
                let [delimiter, list] = two_arguments(&argument, "Join", at)?;
                let delimiter = scalar_string(delimiter, at)?;
                let parts = sequence(list, at)?
                    .iter()
                    .map(|part| scalar_string(part, at))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Value::String(parts.join(&delimiter)))
            }
            "Select" => {
                let [index, list] = two_arguments(&argument, "Select", at)?;
                let index: usize = scalar_string(index, at)?
                    .parse()
                    .map_err(|_| Error::template(format!("{at}: Select index is not a number")))?;
                sequence(list, at)?.get(index).cloned().ok_or_else(|| {
                    Error::template(format!("{at}: Select index {index} out of range"))
                })
            }
            "Split" => {
                let [delimiter, text] = two_arguments(&argument, "Split", at)?;
                let delimiter = scalar_string(delimiter, at)?;
                let text = scalar_string(text, at)?;
                Ok(Value::Sequence(
                    text.split(delimiter.as_str())
                        .map(|part| Value::String(part.to_owned()))
                        .collect(),
                ))
            }
            other => Err(Error::template(format!(
                "{at}: intrinsic function `{other}` is not supported"
            ))),
        }
    }

    fn reference(&self, target: &str, at: &str, depth: usize) -> Result<String> {
        let stack = self.stack;
        match target {
            "AWS::StackName" => return Ok(stack.name.clone()),
            "AWS::Region" => return Ok(stack.region.clone()),
            "AWS::AccountId" => return Ok(stack.account_id.clone()),
            "AWS::Partition" => return Ok(stack.partition().to_owned()),
            "AWS::URLSuffix" => return Ok(stack.url_suffix().to_owned()),
            "AWS::StackId" => {
                return Ok(format!(
                    "arn:{}:cloudformation:{}:{}:stack/{}/local",
                    stack.partition(),
                    stack.region,
                    stack.account_id,
                    stack.name
                ));
            }
            "AWS::NoValue" | "AWS::NotificationARNs" => {
                return Err(Error::template(format!(
                    "{at}: `{target}` is not supported"
                )));
            }
            _ => {}
        }
        if let Some(value) = stack.parameters.get(target) {
            return Ok(value.clone());
        }
        if let Some(parameter) = self.parameters.and_then(|p| p.get(target)) {
            return match parameter.get("Default") {
                Some(default) => scalar_string(default, &format!("Parameters.{target}.Default")),
                None => Err(Error::template(format!(
                    "{at}: parameter `{target}` has no Default and no value was given"
                ))),
            };
        }
        let resource = self.resource(target, at)?;
        match resource_type(resource) {
            Some(TABLE) => self.physical_name(target, "TableName", at, depth),
            Some(BUCKET) => self.physical_name(target, "BucketName", at, depth),
            Some(QUEUE) => {
                Ok(stack.queue_url(&self.physical_name(target, "QueueName", at, depth)?))
            }
            Some(SECRET) => self.physical_name(target, "Name", at, depth),
            Some(SERVERLESS_FUNCTION | LAMBDA_FUNCTION) => self.function_name(target, at, depth),
            _ => Ok(target.to_owned()),
        }
    }

    fn attribute(&self, target: &str, attribute: &str, at: &str, depth: usize) -> Result<String> {
        let stack = self.stack;
        let (partition, region, account) = (stack.partition(), &stack.region, &stack.account_id);
        let resource = self.resource(target, at)?;
        let kind = resource_type(resource).unwrap_or_default();
        let unsupported = || {
            Error::template(format!(
                "{at}: GetAtt {target}.{attribute} is not supported for {kind}"
            ))
        };
        match (kind, attribute) {
            (TABLE, "Arn") => {
                let name = self.physical_name(target, "TableName", at, depth)?;
                Ok(format!(
                    "arn:{partition}:dynamodb:{region}:{account}:table/{name}"
                ))
            }
            (TABLE, "StreamArn") => {
                if resource
                    .get("Properties")
                    .and_then(|p| p.get("StreamSpecification"))
                    .is_none()
                {
                    return Err(Error::template(format!(
                        "{at}: {target}.StreamArn, but {target} has no StreamSpecification"
                    )));
                }
                let name = self.physical_name(target, "TableName", at, depth)?;
                Ok(format!(
                    "arn:{partition}:dynamodb:{region}:{account}:table/{name}/stream/{PLACEHOLDER_STREAM_LABEL}"
                ))
            }
            (QUEUE, "Arn") => {
                let name = self.physical_name(target, "QueueName", at, depth)?;
                Ok(format!("arn:{partition}:sqs:{region}:{account}:{name}"))
            }
            (QUEUE, "QueueUrl") => {
                Ok(stack.queue_url(&self.physical_name(target, "QueueName", at, depth)?))
            }
            (QUEUE, "QueueName") => self.physical_name(target, "QueueName", at, depth),
            (BUCKET, "Arn") => {
                let name = self.physical_name(target, "BucketName", at, depth)?;
                Ok(format!("arn:{partition}:s3:::{name}"))
            }
            (BUCKET, "DomainName") => {
                let name = self.physical_name(target, "BucketName", at, depth)?;
                Ok(format!("{name}.s3.{}", stack.url_suffix()))
            }
            (BUCKET, "RegionalDomainName") => {
                let name = self.physical_name(target, "BucketName", at, depth)?;
                Ok(format!("{name}.s3.{region}.{}", stack.url_suffix()))
            }
            (SECRET, "Id") => self.physical_name(target, "Name", at, depth),
            (SERVERLESS_FUNCTION | LAMBDA_FUNCTION, "Arn") => {
                let name = self.function_name(target, at, depth)?;
                Ok(format!(
                    "arn:{partition}:lambda:{region}:{account}:function:{name}"
                ))
            }
            _ => Err(unsupported()),
        }
    }

    fn substitute(&self, argument: &Value, at: &str, depth: usize) -> Result<String> {
        let (text, variables) = match argument {
            Value::Sequence(parts) if parts.len() == 2 => {
                let variables = parts[1].as_mapping().ok_or_else(|| {
                    Error::template(format!("{at}: Sub's second argument must be a mapping"))
                })?;
                (scalar_string(&parts[0], at)?, Some(variables))
            }
            other => (scalar_string(other, at)?, None),
        };
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| Error::template(format!("{at}: unclosed `${{` in Sub")))?;
            let name = after[..end].trim();
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = variables.and_then(|v| v.get(name)) {
                out.push_str(&scalar_string(value, at)?);
            } else if let Some((resource, attribute)) = name.split_once('.') {
                out.push_str(&self.attribute(resource, attribute, at, depth + 1)?);
            } else {
                out.push_str(&self.reference(name, at, depth + 1)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn resource(&self, logical_id: &str, at: &str) -> Result<&'a Value> {
        self.resources.get(logical_id).ok_or_else(|| {
            Error::template(format!(
                "{at}: `{logical_id}` is neither a parameter nor a resource"
            ))
        })
    }

    /// The resource's name property, resolved; CloudFormation would generate one when absent,
    /// locally it is `<stack>-<logical id>`.
    fn physical_name(
        &self,
        logical_id: &str,
        property: &str,
        at: &str,
        depth: usize,
    ) -> Result<String> {
        let resource = self.resource(logical_id, at)?;
        match resource.get("Properties").and_then(|p| p.get(property)) {
            Some(name) => {
                let at = format!("Resources.{logical_id}.Properties.{property}");
                scalar_string(&self.resolve_depth(name, &at, depth + 1)?, &at)
            }
            None => Ok(format!("{}-{logical_id}", self.stack.name)),
        }
    }

    fn function_name(&self, logical_id: &str, at: &str, depth: usize) -> Result<String> {
        let resource = self.resource(logical_id, at)?;
        let binary = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"));
        let name = binary.or_else(|| {
            resource
                .get("Properties")
                .and_then(|p| p.get("FunctionName"))
        });
        match name {
            Some(name) => {
                let at = format!("Resources.{logical_id}");
                scalar_string(&self.resolve_depth(name, &at, depth + 1)?, &at)
            }
            None => Ok(logical_id.to_owned()),
        }
    }
}

fn long_form_intrinsic(mapping: &Mapping) -> Option<(&str, &Value)> {
    if mapping.len() != 1 {
        return None;
    }
    let (key, value) = mapping.iter().next()?;
    let key = key.as_str()?;
    (key == "Ref" || key.starts_with("Fn::")).then_some((key, value))
}

fn two_arguments<'v>(argument: &'v Value, function: &str, at: &str) -> Result<[&'v Value; 2]> {
    match argument {
        Value::Sequence(parts) if parts.len() == 2 => Ok([&parts[0], &parts[1]]),
        _ => Err(Error::template(format!(
            "{at}: {function} takes a list of two arguments"
        ))),
    }
}

fn sequence<'v>(value: &'v Value, at: &str) -> Result<&'v Vec<Value>> {
    value
        .as_sequence()
        .ok_or_else(|| Error::template(format!("{at}: expected a list")))
}

fn section<'d>(document: &'d Value, name: &str) -> Result<Option<&'d Mapping>> {
    match document.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Mapping(mapping)) => Ok(Some(mapping)),
        Some(_) => Err(Error::template(format!("{name} is not a mapping"))),
    }
}

fn key_str<'k>(key: &'k Value, at: &str) -> Result<&'k str> {
    key.as_str()
        .ok_or_else(|| Error::template(format!("{at}: a key is not a string")))
}

fn resource_type(resource: &Value) -> Option<&str> {
    resource.get("Type").and_then(Value::as_str)
}

/// A resolved scalar as a string (numbers and booleans as CloudFormation renders them).
fn scalar_string(value: &Value, at: &str) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(Error::template(format!("{at}: expected a scalar"))),
    }
}

fn optional_string(props: &Value, key: &str, at: &str) -> Result<Option<String>> {
    props
        .get(key)
        .map(|v| scalar_string(v, &format!("{at}.{key}")))
        .transpose()
}

fn required_string(props: &Value, key: &str, at: &str) -> Result<String> {
    optional_string(props, key, at)?.ok_or_else(|| Error::template(format!("{at}: missing {key}")))
}

fn optional_i64(props: &Value, key: &str, at: &str) -> Result<Option<i64>> {
    let Some(value) = props.get(key) else {
        return Ok(None);
    };
    let text = scalar_string(value, &format!("{at}.{key}"))?;
    text.parse()
        .map(Some)
        .map_err(|_| Error::template(format!("{at}.{key}: `{text}` is not an integer")))
}

fn optional_u32(props: &Value, key: &str, at: &str) -> Result<Option<u32>> {
    optional_i64(props, key, at)?
        .map(|n| {
            u32::try_from(n)
                .map_err(|_| Error::template(format!("{at}.{key}: {n} is out of range")))
        })
        .transpose()
}

/// Lambda's "-1 means unlimited" settings.
fn optional_limit(props: &Value, key: &str, at: &str) -> Result<Option<u32>> {
    match optional_i64(props, key, at)? {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| Error::template(format!("{at}.{key}: {n} is out of range"))),
    }
}

fn optional_bool(props: &Value, key: &str, at: &str) -> Result<Option<bool>> {
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

fn string_list(props: &Value, key: &str, at: &str) -> Result<Vec<String>> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|item| scalar_string(item, &format!("{at}.{key}")))
            .collect(),
        Some(_) => Err(Error::template(format!("{at}.{key}: expected a list"))),
    }
}

fn list<'v>(props: &'v Value, key: &str, at: &str) -> Result<&'v [Value]> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Sequence(items)) => Ok(items),
        Some(_) => Err(Error::template(format!("{at}.{key}: expected a list"))),
    }
}

fn key_schema(props: &Value, at: &str) -> Result<Vec<KeyElement>> {
    list(props, "KeySchema", at)?
        .iter()
        .map(|element| {
            let at = format!("{at}.KeySchema");
            let key_type = match required_string(element, "KeyType", &at)?.as_str() {
                "HASH" => KeyType::Hash,
                "RANGE" => KeyType::Range,
                other => {
                    return Err(Error::template(format!("{at}: unknown KeyType `{other}`")));
                }
            };
            Ok(KeyElement {
                attribute_name: required_string(element, "AttributeName", &at)?,
                key_type,
            })
        })
        .collect()
}

fn secondary_indexes(props: &Value, key: &str, at: &str) -> Result<Vec<SecondaryIndex>> {
    list(props, key, at)?
        .iter()
        .map(|index| {
            let at = format!("{at}.{key}");
            let projection = index.get("Projection").unwrap_or(&Value::Null);
            let projection_type =
                match optional_string(projection, "ProjectionType", &at)?.as_deref() {
                    None | Some("ALL") => ProjectionType::All,
                    Some("KEYS_ONLY") => ProjectionType::KeysOnly,
                    Some("INCLUDE") => ProjectionType::Include,
                    Some(other) => {
                        return Err(Error::template(format!(
                            "{at}: unknown ProjectionType `{other}`"
                        )));
                    }
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
struct Built {
    parameters: BTreeMap<String, String>,
    tables: Vec<Table>,
    buckets: Vec<Bucket>,
    queues: Vec<Queue>,
    secrets: Vec<Secret>,
    functions: Vec<Function>,
    routes: Vec<Route>,
    stream_sources: Vec<StreamSource>,
    queue_sources: Vec<QueueSource>,
}

struct Builder<'a> {
    resolver: Resolver<'a>,
    document: &'a Value,
}

impl<'a> Builder<'a> {
    fn new(document: &'a Value, stack: &'a Stack) -> Result<Self> {
        Ok(Self {
            resolver: Resolver::new(document, stack)?,
            document,
        })
    }

    fn build(self) -> Result<Built> {
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

    fn parameters(&self) -> Result<BTreeMap<String, String>> {
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

    fn properties(&self, resource: &Value, at: &str) -> Result<Value> {
        match resource.get("Properties") {
            Some(props) => self.resolver.resolve(props, &format!("{at}.Properties")),
            None => Ok(Value::Null),
        }
    }

    fn table(&self, id: &str, resource: &Value, at: &str) -> Result<Table> {
        let props = self.properties(resource, at)?;
        let at = format!("{at}.Properties");
        let attribute_definitions = list(&props, "AttributeDefinitions", &at)?
            .iter()
            .map(|definition| {
                let at = format!("{at}.AttributeDefinitions");
                let attribute_type =
                    match required_string(definition, "AttributeType", &at)?.as_str() {
                        "S" => AttributeType::String,
                        "N" => AttributeType::Number,
                        "B" => AttributeType::Binary,
                        other => {
                            return Err(Error::template(format!(
                                "{at}: unknown AttributeType `{other}`"
                            )));
                        }
                    };
                Ok(AttributeDefinition {
                    attribute_name: required_string(definition, "AttributeName", &at)?,
                    attribute_type,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let stream = props.get("StreamSpecification");
        let stream_view_type = match stream
            .map(|s| optional_string(s, "StreamViewType", &at))
            .transpose()?
            .flatten()
            .as_deref()
        {
            None => None,
            Some("NEW_IMAGE") => Some(StreamViewType::NewImage),
            Some("OLD_IMAGE") => Some(StreamViewType::OldImage),
            Some("NEW_AND_OLD_IMAGES") => Some(StreamViewType::NewAndOldImages),
            Some("KEYS_ONLY") => Some(StreamViewType::KeysOnly),
            Some(other) => {
                return Err(Error::template(format!(
                    "{at}: unknown StreamViewType `{other}`"
                )));
            }
        };
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
            billing_mode: optional_string(&props, "BillingMode", &at)?,
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

    fn queue(&self, id: &str, resource: &Value, at: &str) -> Result<Queue> {
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

    fn secret(&self, id: &str, resource: &Value, at: &str) -> Result<Secret> {
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

    fn function(
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
        let pick = |key: &str| -> Result<Value> {
            match own.get(key).or_else(|| globals.get(key)) {
                Some(v) => self.resolver.resolve(v, &format!("{at}.Properties.{key}")),
                None => Ok(Value::Null),
            }
        };
        let scalars = Mapping::from_iter(
            [
                "CodeUri",
                "Runtime",
                "Handler",
                "Architectures",
                "MemorySize",
                "Timeout",
            ]
            .into_iter()
            .map(|key| Ok((Value::String(key.to_owned()), pick(key)?)))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            // A property neither the function nor `Globals` sets is absent, not null.
            .filter(|(_, v)| !v.is_null()),
        );
        let props = Value::Mapping(scalars);
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
            code_uri: match props.get("CodeUri") {
                Some(Value::Null) | None => None,
                Some(v) => Some(scalar_string(v, &format!("{props_at}.CodeUri"))?),
            },
            runtime: optional_string(&props, "Runtime", &props_at)?,
            handler: optional_string(&props, "Handler", &props_at)?,
            architectures: string_list(&props, "Architectures", &props_at)?,
            memory_size: optional_u32(&props, "MemorySize", &props_at)?.unwrap_or(128),
            timeout: optional_u32(&props, "Timeout", &props_at)?.unwrap_or(3),
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
                "DynamoDB" => {
                    let stream_arn = required_string(&props, "Stream", &at)?;
                    let table = lookup(&table_streams, &stream_arn).ok_or_else(|| {
                        Error::template(format!(
                            "{at}.Stream: `{stream_arn}` is not the stream of a table of this template"
                        ))
                    })?;
                    let starting_position =
                        match required_string(&props, "StartingPosition", &at)?.as_str() {
                            "TRIM_HORIZON" => StartingPosition::TrimHorizon,
                            "LATEST" => StartingPosition::Latest,
                            other => {
                                return Err(Error::template(format!(
                                    "{at}: StartingPosition `{other}` is not supported"
                                )));
                            }
                        };
                    let on_failure = match props
                        .get("DestinationConfig")
                        .and_then(|d| d.get("OnFailure"))
                    {
                        Some(on_failure) => {
                            let arn = required_string(on_failure, "Destination", &at)?;
                            Some(lookup(queue_arns, &arn).ok_or_else(|| {
                                Error::template(format!(
                                    "{at}.DestinationConfig: `{arn}` is not a queue of this template"
                                ))
                            })?)
                        }
                        None => None,
                    };
                    built.stream_sources.push(StreamSource {
                        function: id.to_owned(),
                        binary: binary.clone(),
                        event: event.to_owned(),
                        table,
                        stream_arn,
                        starting_position,
                        batch_size: optional_u32(&props, "BatchSize", &at)?.unwrap_or(100),
                        maximum_batching_window_in_seconds: optional_u32(
                            &props,
                            "MaximumBatchingWindowInSeconds",
                            &at,
                        )?
                        .unwrap_or(0),
                        function_response_types: string_list(&props, "FunctionResponseTypes", &at)?,
                        bisect_batch_on_function_error: optional_bool(
                            &props,
                            "BisectBatchOnFunctionError",
                            &at,
                        )?
                        .unwrap_or(false),
                        maximum_retry_attempts: optional_limit(
                            &props,
                            "MaximumRetryAttempts",
                            &at,
                        )?,
                        maximum_record_age_in_seconds: optional_limit(
                            &props,
                            "MaximumRecordAgeInSeconds",
                            &at,
                        )?,
                        parallelization_factor: optional_u32(&props, "ParallelizationFactor", &at)?
                            .unwrap_or(1),
                        on_failure,
                        enabled: optional_bool(&props, "Enabled", &at)?.unwrap_or(true),
                    });
                }
                "SQS" => {
                    let queue_arn = required_string(&props, "Queue", &at)?;
                    let queue = lookup(queue_arns, &queue_arn).ok_or_else(|| {
                        Error::template(format!(
                            "{at}.Queue: `{queue_arn}` is not a queue of this template"
                        ))
                    })?;
                    built.queue_sources.push(QueueSource {
                        function: id.to_owned(),
                        binary: binary.clone(),
                        event: event.to_owned(),
                        queue,
                        batch_size: optional_u32(&props, "BatchSize", &at)?.unwrap_or(10),
                        maximum_batching_window_in_seconds: optional_u32(
                            &props,
                            "MaximumBatchingWindowInSeconds",
                            &at,
                        )?
                        .unwrap_or(0),
                        function_response_types: string_list(&props, "FunctionResponseTypes", &at)?,
                        enabled: optional_bool(&props, "Enabled", &at)?.unwrap_or(true),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn lookup(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, value)| value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Template {
        Template::load_default(Stack::local().with_endpoint("http://127.0.0.1:4566"))
            .expect("template.yaml resolves")
    }

    #[test]
    fn tables_are_named_for_the_stack_with_their_keys_stream_and_index() {
        let template = local();
        let names: Vec<&str> = template.tables().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ftgo-events",
                "ftgo-snapshots",
                "ftgo-order-history",
                "ftgo-idempotency"
            ]
        );

        let events = template.table("EventsTable").expect("EventsTable");
        assert_eq!(events.partition_key(), Some("streamId"));
        assert_eq!(events.sort_key(), Some("version"));
        assert_eq!(
            events.attribute_type("streamId"),
            Some(AttributeType::String)
        );
        assert_eq!(
            events.attribute_type("version"),
            Some(AttributeType::Number)
        );
        assert_eq!(events.stream_view_type, Some(StreamViewType::NewImage));
        assert_eq!(
            events.arn,
            "arn:aws:dynamodb:us-east-1:123456789012:table/ftgo-events"
        );

        let snapshots = template.table("SnapshotsTable").expect("SnapshotsTable");
        assert_eq!(snapshots.partition_key(), Some("streamId"));
        assert_eq!(snapshots.sort_key(), None);
        assert_eq!(snapshots.stream_view_type, None);

        let history = template
            .table("OrderHistoryTable")
            .expect("OrderHistoryTable");
        assert_eq!(history.partition_key(), Some("orderId"));
        let index = history
            .index("ftgo-order-history-by-consumer-id-and-creation-time")
            .expect("GSI");
        assert_eq!(
            index.key_schema,
            [
                KeyElement {
                    attribute_name: "consumerId".into(),
                    key_type: KeyType::Hash
                },
                KeyElement {
                    attribute_name: "creationDate".into(),
                    key_type: KeyType::Range
                },
            ]
        );
        assert_eq!(index.projection_type, ProjectionType::All);
        assert_eq!(
            history.attribute_type("creationDate"),
            Some(AttributeType::Number)
        );
    }

    #[test]
    fn another_stack_name_renames_everything() {
        let template = Template::load_default(Stack::named("prod")).expect("resolves");
        assert_eq!(
            template.table("EventsTable").map(|t| t.name.as_str()),
            Some("prod-events")
        );
        assert_eq!(
            template
                .bucket("EventArchiveBucket")
                .map(|b| b.name.as_str()),
            Some("prod-event-archive")
        );
        assert_eq!(
            template.queue("ReplayQueue").map(|q| q.url.as_str()),
            Some("https://sqs.us-east-1.amazonaws.com/123456789012/prod-replay")
        );
        let env = &template.functions()[0].environment;
        assert_eq!(
            env.get("ORDER_HISTORY_BY_CONSUMER_INDEX")
                .map(String::as_str),
            Some("prod-order-history-by-consumer-id-and-creation-time")
        );
    }

    #[test]
    fn bucket_and_queues_are_declared_with_redrive() {
        let template = local();
        let bucket = template.bucket("EventArchiveBucket").expect("bucket");
        assert_eq!(bucket.name, "ftgo-event-archive");
        assert_eq!(bucket.arn, "arn:aws:s3:::ftgo-event-archive");

        let dlq = template.queue("ProjectorDlq").expect("ProjectorDlq");
        assert_eq!(dlq.name, "ftgo-projector-dlq");
        assert_eq!(
            dlq.url,
            "http://127.0.0.1:4566/123456789012/ftgo-projector-dlq"
        );
        assert_eq!(
            dlq.arn,
            "arn:aws:sqs:us-east-1:123456789012:ftgo-projector-dlq"
        );

        let replay = template.queue("ReplayQueue").expect("ReplayQueue");
        assert_eq!(replay.name, "ftgo-replay");
        let redrive = replay.redrive.as_ref().expect("redrive");
        assert_eq!(redrive.dead_letter_queue, "ReplayDlq");
        assert!(redrive.max_receive_count >= 1);
        let replayer = template
            .function_by_binary("archive-replayer")
            .expect("replayer");
        let visibility = replay.visibility_timeout.expect("VisibilityTimeout");
        assert!(
            visibility >= replayer.timeout,
            "{visibility} < {}",
            replayer.timeout
        );
        assert_eq!(
            replay.attributes().get("VisibilityTimeout"),
            Some(&visibility.to_string())
        );
    }

    #[test]
    fn functions_have_binaries_and_the_conventional_environment() {
        let template = local();
        let binaries: Vec<&str> = template
            .functions()
            .iter()
            .map(|f| f.binary.as_str())
            .collect();
        assert_eq!(
            binaries,
            [
                "order-commands",
                "delivery-commands",
                "order-history-query",
                "order-history-projector",
                "event-archiver",
                "archive-replayer"
            ]
        );
        for function in template.functions() {
            assert_eq!(function.runtime.as_deref(), Some("provided.al2023"));
            assert_eq!(function.architectures, ["arm64"]);
            assert_eq!(function.handler.as_deref(), Some("bootstrap"));
            assert_eq!(function.code_uri.as_deref(), Some("."));
            let env = &function.environment;
            let expected = [
                ("EVENTS_TABLE", "ftgo-events"),
                ("SNAPSHOTS_TABLE", "ftgo-snapshots"),
                ("ORDER_HISTORY_TABLE", "ftgo-order-history"),
                (
                    "ORDER_HISTORY_BY_CONSUMER_INDEX",
                    "ftgo-order-history-by-consumer-id-and-creation-time",
                ),
                ("ARCHIVE_BUCKET", "ftgo-event-archive"),
                (
                    "PROJECTOR_DLQ_URL",
                    "http://127.0.0.1:4566/123456789012/ftgo-projector-dlq",
                ),
                (
                    "REPLAY_QUEUE_URL",
                    "http://127.0.0.1:4566/123456789012/ftgo-replay",
                ),
                ("SNAPSHOT_INTERVAL", "100"),
            ];
            for (name, value) in expected {
                assert_eq!(env.get(name).map(String::as_str), Some(value), "{name}");
            }
            assert!(
                !env.contains_key("PAGE_TOKEN_SECRET"),
                "no key in the environment"
            );
            assert_eq!(
                env.get("PAGE_TOKEN_SECRET_ID").map(String::as_str),
                (function.binary == "order-history-query").then_some("ftgo-page-token-key"),
                "only the query function names the page-token secret"
            );
        }
    }

    #[test]
    fn the_page_token_secret_is_generated_and_named_for_the_stack() {
        let template = local();
        let secret = template.secret("PageTokenKey").expect("PageTokenKey");
        assert_eq!(secret.name, "ftgo-page-token-key");
        assert_eq!(secret.secret_string, None, "never a value in the template");
        assert_eq!(secret.generate.password_length, Some(64));
        assert_eq!(secret.generate.exclude_punctuation, Some(true));
        let other = template.for_stack(Stack::named("t1")).expect("resolves");
        assert_eq!(other.secrets()[0].name, "t1-page-token-key");
    }

    #[test]
    fn parameter_overrides_flow_into_the_environment() {
        let stack = Stack::local().with_parameter("SnapshotInterval", "3");
        let template = Template::load_default(stack).expect("resolves");
        assert_eq!(
            template
                .parameters()
                .get("SnapshotInterval")
                .map(String::as_str),
            Some("3")
        );
        for function in template.functions() {
            assert_eq!(
                function
                    .environment
                    .get("SNAPSHOT_INTERVAL")
                    .map(String::as_str),
                Some("3")
            );
        }
    }

    #[test]
    fn routes_follow_the_design() {
        let template = local();
        let keys: Vec<(String, &str)> = template
            .routes()
            .iter()
            .map(|r| (r.route_key(), r.binary.as_str()))
            .collect();
        let expected = [
            ("POST /orders", "order-commands"),
            ("POST /orders/{orderId}/approve", "order-commands"),
            ("POST /orders/{orderId}/reject", "order-commands"),
            ("POST /orders/{orderId}/cancel", "order-commands"),
            ("POST /orders/{orderId}/revise", "order-commands"),
            ("POST /deliveries/{orderId}/pickup", "delivery-commands"),
            ("POST /deliveries/{orderId}/deliver", "delivery-commands"),
            ("GET /orders/{orderId}", "order-history-query"),
            ("GET /consumers/{consumerId}/orders", "order-history-query"),
        ];
        let expected: Vec<(String, &str)> =
            expected.iter().map(|(k, b)| (k.to_string(), *b)).collect();
        assert_eq!(keys, expected);
        assert!(
            template
                .routes()
                .iter()
                .all(|r| r.api.as_deref() == Some("HttpApi"))
        );
    }

    #[test]
    fn routes_match_paths_and_extract_parameters() {
        let template = local();
        let (route, params) = template
            .route_for("post", "/orders/o-1/approve")
            .expect("approve route");
        assert_eq!(route.binary, "order-commands");
        assert_eq!(params.get("orderId").map(String::as_str), Some("o-1"));

        let (route, params) = template
            .route_for("GET", "/orders/o-2")
            .expect("find route");
        assert_eq!(route.binary, "order-history-query");
        assert_eq!(params.get("orderId").map(String::as_str), Some("o-2"));

        assert!(template.route_for("GET", "/orders/o-2/approve").is_none());
        assert!(template.route_for("DELETE", "/orders/o-2").is_none());
        assert!(template.route_for("GET", "/orders//").is_none());
        assert!(template.route_for("POST", "/orders/").is_none());

        let proxy = Route {
            function: "F".into(),
            binary: "f".into(),
            event: "E".into(),
            method: "ANY".into(),
            path: "/files/{path+}".into(),
            api: None,
        };
        let params = proxy.matches("PUT", "/files/a/b/c").expect("greedy");
        assert_eq!(params.get("path").map(String::as_str), Some("a/b/c"));
        assert!(proxy.matches("PUT", "/files").is_none());
        assert_eq!(proxy.path_parameters(), ["path"]);
    }

    #[test]
    fn stream_sources_carry_lambda_settings() {
        let template = local();
        let projector = template
            .stream_sources()
            .iter()
            .find(|s| s.binary == "order-history-projector")
            .expect("projector source");
        assert_eq!(projector.table, "EventsTable");
        assert_eq!(projector.starting_position, StartingPosition::TrimHorizon);
        assert_eq!(projector.batch_size, 100);
        assert_eq!(projector.maximum_batching_window_in_seconds, 1);
        assert!(projector.reports_batch_item_failures());
        assert!(projector.bisect_batch_on_function_error);
        assert_eq!(projector.maximum_retry_attempts, Some(10));
        assert_eq!(
            projector.maximum_record_age_in_seconds, None,
            "-1: no limit"
        );
        assert_eq!(projector.parallelization_factor, 1);
        assert_eq!(projector.on_failure.as_deref(), Some("ProjectorDlq"));
        assert!(projector.enabled);
        assert_eq!(
            Some(&projector.stream_arn),
            template
                .table("EventsTable")
                .and_then(|t| t.stream_arn.as_ref())
        );

        let archiver = template
            .stream_sources()
            .iter()
            .find(|s| s.binary == "event-archiver")
            .expect("archiver source");
        assert_eq!(archiver.table, "EventsTable");
        assert_eq!(archiver.on_failure.as_deref(), Some("ArchiverDlq"));

        let [replay] = template.queue_sources() else {
            panic!("one SQS source expected: {:?}", template.queue_sources());
        };
        assert_eq!(replay.binary, "archive-replayer");
        assert_eq!(replay.queue, "ReplayQueue");
        assert_eq!(replay.batch_size, 1);
        assert!(replay.reports_batch_item_failures());
    }

    #[test]
    fn outputs_resolve() {
        let template = Template::load_default(Stack::local()).expect("resolves");
        let outputs = template.outputs().expect("outputs");
        let get = |name: &str| {
            outputs
                .iter()
                .find(|o| o.name == name)
                .map(|o| o.value.clone())
        };
        assert_eq!(get("EventsTableName").as_deref(), Some("ftgo-events"));
        assert_eq!(
            get("ApiUrl").as_deref(),
            Some("https://HttpApi.execute-api.us-east-1.amazonaws.com/")
        );
        assert_eq!(
            get("ReplayQueueUrl").as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/123456789012/ftgo-replay")
        );
    }

    #[test]
    fn intrinsics_in_short_and_long_form() {
        let yaml = r#"
Parameters:
  Env:
    Type: String
    Default: dev
  Size:
    Type: Number
    Default: 7
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: {"Fn::Sub": "${AWS::StackName}-${Env}-t"}
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      StreamSpecification: {StreamViewType: KEYS_ONLY}
  Q:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Join ["-", [!Ref "AWS::StackName", !Select [1, !Split [",", "a,q,c"]]]]
      DelaySeconds: !Ref Size
"#;
        let template = Template::parse(yaml, Stack::named("s")).expect("parses");
        assert_eq!(
            template.table("T").map(|t| t.name.as_str()),
            Some("s-dev-t")
        );
        assert_eq!(template.queue("Q").map(|q| q.name.as_str()), Some("s-q"));
        assert_eq!(template.queue("Q").and_then(|q| q.delay_seconds), Some(7));

        let resolve = |text: &str| -> Result<Value> {
            let value: Value = serde_yaml_ng::from_str(text).expect("yaml");
            template.resolve(&value)
        };
        let s = |v: Value| v.as_str().map(str::to_owned);
        assert_eq!(
            s(resolve("!Ref T").expect("ref")).as_deref(),
            Some("s-dev-t")
        );
        assert_eq!(
            s(resolve("{Ref: Q}").expect("ref")).as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/123456789012/s-q")
        );
        assert_eq!(
            s(resolve("!GetAtt [Q, QueueName]").expect("getatt")).as_deref(),
            Some("s-q")
        );
        assert_eq!(
            s(resolve(r#"{"Fn::GetAtt": "T.StreamArn"}"#).expect("getatt")).as_deref(),
            Some(
                "arn:aws:dynamodb:us-east-1:123456789012:table/s-dev-t/stream/1970-01-01T00:00:00.000"
            )
        );
        assert_eq!(
            s(resolve(r#"!Sub ["${X}/${T.Arn}/${AWS::Region}/${AWS::AccountId}/${!Literal}", {X: !Ref Env}]"#)
                .expect("sub"))
            .as_deref(),
            Some("dev/arn:aws:dynamodb:us-east-1:123456789012:table/s-dev-t/us-east-1/123456789012/${Literal}")
        );
        assert!(resolve("!Ref Nowhere").is_err());
        assert!(resolve("!GetAtt Q.Nothing").is_err());
        assert!(resolve("!If [C, a, b]").is_err());
        assert!(resolve("!Sub '${Unclosed'").is_err());
    }

    #[test]
    fn a_cycle_is_an_error_not_a_hang() {
        let yaml = r#"
Resources:
  A:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Ref B
  B:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Ref A
"#;
        let err = Template::parse(yaml, Stack::local()).expect_err("cycle");
        assert!(err.to_string().contains("too deep"), "{err}");
    }
}
