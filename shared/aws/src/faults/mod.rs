//! Faults at the AWS SDK's boundary: a layer around the SDK's HTTP client that makes the
//! failures AWS makes and the emulators (moto, DynamoDB Local) never do — an answer lost after
//! the write landed, throttling in each service's wire shape, `TransactionInProgressException`
//! for a retried transaction, 500/503 before and after the request is applied, an answer slower
//! than the caller's deadline — for DynamoDB, DynamoDB Streams, S3, SQS and Secrets Manager.
//!
//! Two ways to drive it, combinable: a seeded random schedule ([`RandomSchedule`], the spec
//! `<seed>:<rate>[:<kind>,…][:slow=<ms>]`), reproducible for a seed and a sequence of requests
//! per operation; and scripted [`Rule`]s for targeted tests. Injections are counted per kind and
//! operation ([`FaultLayer::counts`]) and, when a log path is set, appended to it as JSON lines.
//!
//! ```no_run
//! # async fn example(sdk: aws_config::SdkConfig) {
//! use ftgo_aws::faults::{FaultKind, FaultLayer, FaultPlan, Rule};
//! let layer = FaultLayer::new(FaultPlan::scripted());
//! layer.push_rule(Rule::new(FaultKind::LostAnswer).operation("TransactWriteItems"));
//! let dynamodb = aws_sdk_dynamodb::Client::new(&layer.apply(&sdk));
//! // … drive the code under test with `dynamodb` …
//! layer.stop();
//! println!("{}", layer.counts());
//! # }
//! ```
//!
//! Switched on for a process by the environment ([`FAULTS_ENV`], [`FAULTS_LOG_ENV`]) through
//! [`crate::config::load_sdk_config`]; without it nothing is wrapped (no cost).

mod answer;
mod connector;
mod counts;
mod kind;
mod plan;
mod request;
mod schedule;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aws_smithy_runtime_api::client::http::{HttpClient, SharedHttpClient};

pub use answer::WireAnswer;
pub use connector::AnswerLost;
pub use counts::{FaultCounts, InjectionRecord};
pub use kind::FaultKind;
pub use plan::{
    DEFAULT_IN_PROGRESS_RETRIES, DEFAULT_SLOW_DELAY, FaultPlan, FaultSpecError, RandomSchedule,
    Rule,
};
pub use request::{RequestInfo, Service};
pub use schedule::{Action, Injection};

/// The environment variable that switches faults on for a process: a spec
/// `<seed>:<rate>[:<kind>,…][:slow=<ms>]` (see [`FaultPlan`]'s `FromStr`).
pub const FAULTS_ENV: &str = "FTGO_FAULTS";

/// The environment variable naming a file each injection is appended to (one JSON
/// [`InjectionRecord`] per line).
pub const FAULTS_LOG_ENV: &str = "FTGO_FAULTS_LOG";

/// A fault layer: its plan, its state and its counts, shared by every client it wraps (clone it
/// freely, the clones are the same layer).
#[derive(Debug, Clone)]
pub struct FaultLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    schedule: Mutex<schedule::Schedule>,
    counts: Mutex<FaultCounts>,
    log: Mutex<Option<File>>,
}

impl FaultLayer {
    /// A layer injecting `plan`, active at once.
    pub fn new(plan: FaultPlan) -> Self {
        Self {
            shared: Arc::new(Shared {
                schedule: Mutex::new(schedule::Schedule::new(plan)),
                counts: Mutex::new(FaultCounts::default()),
                log: Mutex::new(None),
            }),
        }
    }

    /// The layer the environment asks for: `None` without [`FAULTS_ENV`], an error for a spec
    /// that does not parse or a log that cannot be opened.
    pub fn from_env() -> Result<Option<Self>, FaultSpecError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`FaultLayer::from_env`] through `lookup`.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, FaultSpecError> {
        let Some(spec) = lookup(FAULTS_ENV).filter(|spec| !spec.trim().is_empty()) else {
            return Ok(None);
        };
        let layer = Self::new(spec.parse()?);
        if let Some(path) = lookup(FAULTS_LOG_ENV).filter(|path| !path.is_empty()) {
            layer
                .log_to(Path::new(&path))
                .map_err(|error| FaultSpecError {
                    spec,
                    reason: format!("cannot append to {FAULTS_LOG_ENV}={path}: {error}"),
                })?;
        }
        Ok(Some(layer))
    }

    /// Appends each injection from now on to `path` (created if missing), one JSON line each.
    pub fn log_to(&self, path: &Path) -> io::Result<()> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        *lock(&self.shared.log) = Some(file);
        Ok(())
    }

    /// Adds a scripted rule, tried after the rules already there and before the random schedule.
    pub fn push_rule(&self, rule: Rule) {
        lock(&self.shared.schedule).push_rule(rule);
    }

    /// Stops injecting: from now on every request passes untouched ("after the faults stop").
    pub fn stop(&self) {
        lock(&self.shared.schedule).set_active(false);
    }

    /// Starts injecting again.
    pub fn start(&self) {
        lock(&self.shared.schedule).set_active(true);
    }

    /// Whether the layer injects.
    pub fn is_active(&self) -> bool {
        lock(&self.shared.schedule).is_active()
    }

    /// The injections so far, per kind and operation.
    pub fn counts(&self) -> FaultCounts {
        lock(&self.shared.counts).clone()
    }

    /// `inner` with this layer in front of it.
    pub fn wrap(&self, inner: impl HttpClient + 'static) -> SharedHttpClient {
        SharedHttpClient::new(connector::FaultClient {
            layer: self.clone(),
            inner: SharedHttpClient::new(inner),
        })
    }

    /// The SDK's default HTTPS client (hyper, rustls with aws-lc) with this layer in front.
    pub fn http_client(&self) -> SharedHttpClient {
        use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
        let default = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .build_https();
        self.wrap(default)
    }

    /// `sdk` with its HTTP client (or the default one) behind this layer: every client built
    /// from the result goes through it.
    pub fn apply(&self, sdk: &aws_config::SdkConfig) -> aws_config::SdkConfig {
        let client = match sdk.http_client() {
            Some(inner) => self.wrap(inner),
            None => self.http_client(),
        };
        sdk.to_builder().http_client(client).build()
    }
}

impl connector::Decide for FaultLayer {
    fn decide(&self, request: &RequestInfo) -> Option<Injection> {
        let injection = lock(&self.shared.schedule).decide(request)?;
        lock(&self.shared.counts).add(injection.kind.name(), &request.operation);
        if let Some(file) = lock(&self.shared.log).as_mut() {
            let record = InjectionRecord::new(request, &injection);
            if let Ok(mut line) = serde_json::to_string(&record) {
                line.push('\n');
                // One write per line: appends from several processes do not interleave.
                if let Err(error) = file.write_all(line.as_bytes()) {
                    tracing::warn!(%error, "fault log write failed");
                }
            }
        }
        tracing::debug!(kind = %injection.kind, operation = %request.operation, "fault injected");
        Some(injection)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod sdk_tests;
