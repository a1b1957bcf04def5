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

mod build;
mod model;
mod parameters;
mod resolve;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use ftgo_aws::dlq::DeadLetterQueue;
use serde_yaml_ng::Value;

use crate::error::{Error, Result};

pub use model::*;
pub use parameters::Stack;

use build::Built;
use resolve::Resolver;

/// The stack name of the local stack (`make run`, `make test`).
pub const LOCAL_STACK_NAME: &str = "ftgo";
/// The region the local stack pretends to be in.
pub const LOCAL_REGION: &str = "us-east-1";
/// The account id the local stack pretends to be (moto's default account).
pub const LOCAL_ACCOUNT_ID: &str = "123456789012";
/// Parameters the local stack sets apart from the template's defaults: roles from Cognito
/// groups and from `scope` (AWS's default is groups alone), so that `ftgo token --group` and
/// `--scope` tokens both work locally.
pub const LOCAL_PARAMETERS: &[(&str, &str)] = &[("RoleClaims", "cognito:groups,scope")];

/// The stream label used in stream ARNs resolved from the template. DynamoDB assigns the real
/// label when it creates the stream; `ftgo-infra`'s provisioning (and
/// [`crate::tables::ProvisionedTable`]) carries the real ARN.
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

/// The template, resolved for one [`Stack`].
#[derive(Clone, Debug)]
pub struct Template {
    document: Value,
    stack: Stack,
    built: Built,
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
        let built = Resolver::new(&document, &stack)?.build(&document)?;
        Ok(Self {
            document,
            stack,
            built,
        })
    }

    /// The stack it is resolved for.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The parsed document, intrinsics unresolved.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Every `AWS::DynamoDB::Table`, in template order.
    pub fn tables(&self) -> &[Table] {
        &self.built.tables
    }

    /// The table of this logical id.
    pub fn table(&self, logical_id: &str) -> Option<&Table> {
        self.tables().iter().find(|t| t.logical_id == logical_id)
    }

    /// Every `AWS::S3::Bucket`, in template order.
    pub fn buckets(&self) -> &[Bucket] {
        &self.built.buckets
    }

    /// Every `AWS::SQS::Queue`, in template order.
    pub fn queues(&self) -> &[Queue] {
        &self.built.queues
    }

    /// The queue of this logical id.
    pub fn queue(&self, logical_id: &str) -> Option<&Queue> {
        self.queues().iter().find(|q| q.logical_id == logical_id)
    }

    /// Every `AWS::SecretsManager::Secret`, in template order.
    pub fn secrets(&self) -> &[Secret] {
        &self.built.secrets
    }

    /// The secret of this logical id.
    pub fn secret(&self, logical_id: &str) -> Option<&Secret> {
        self.secrets().iter().find(|s| s.logical_id == logical_id)
    }

    /// Every function, in template order.
    pub fn functions(&self) -> &[Function] {
        &self.built.functions
    }

    /// The function of this logical id.
    pub fn function(&self, logical_id: &str) -> Option<&Function> {
        self.functions().iter().find(|f| f.logical_id == logical_id)
    }

    pub(crate) fn functions_mut(&mut self) -> &mut [Function] {
        &mut self.built.functions
    }

    pub(crate) fn tables_mut(&mut self) -> &mut [Table] {
        &mut self.built.tables
    }

    pub(crate) fn queues_mut(&mut self) -> &mut [Queue] {
        &mut self.built.queues
    }

    /// The function whose binary (local function name) is `binary`.
    pub fn function_by_binary(&self, binary: &str) -> Option<&Function> {
        self.functions().iter().find(|f| f.binary == binary)
    }

    /// Every `HttpApi` route, in template order.
    pub fn routes(&self) -> &[Route] {
        &self.built.routes
    }

    /// Every `DynamoDB` stream event source.
    pub fn stream_sources(&self) -> &[StreamSource] {
        &self.built.stream_sources
    }

    /// Every `SQS` event source.
    pub fn queue_sources(&self) -> &[QueueSource] {
        &self.built.queue_sources
    }

    /// The same template with every event source's `MaximumBatchingWindowInSeconds` cut to at
    /// most `cap` (`ftgo run --max-batching-window`): for tests that cannot wait out a window
    /// minutes long (the archiver's). Nothing else changes.
    pub fn with_batching_windows_capped(mut self, cap: std::time::Duration) -> Self {
        for source in &mut self.built.stream_sources {
            source.policy.batching_window = source.policy.batching_window.min(cap);
        }
        for source in &mut self.built.queue_sources {
            source.batching_window = source.batching_window.min(cap);
        }
        self
    }

    /// The template's dead-letter queues: stream consumers' `OnFailure` destinations, then the
    /// `RedrivePolicy` targets of other queues.
    pub fn dead_letter_queues(&self) -> Vec<DeadLetterQueue> {
        let mut queues: Vec<DeadLetterQueue> = Vec::new();
        let stream_destinations = self
            .stream_sources()
            .iter()
            .filter_map(|s| Some((s.on_failure.as_ref()?.logical_id.as_str(), Some(&s.binary))));
        let redrive_targets = self.queues().iter().filter_map(|q| {
            let redrive = q.redrive.as_ref()?;
            Some((redrive.dead_letter_queue.as_str(), None))
        });
        for (logical_id, consumer) in stream_destinations.chain(redrive_targets) {
            if let Some(queue) = self.queue(logical_id)
                && !queues.iter().any(|q| q.logical_id == logical_id)
            {
                queues.push(DeadLetterQueue {
                    logical_id: logical_id.to_owned(),
                    name: queue.name.clone(),
                    url: queue.url.clone(),
                    consumer: consumer.cloned(),
                });
            }
        }
        queues
    }
}
