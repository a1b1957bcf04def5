//! The event-source bridge: for each DynamoDB and SQS event source in the template, polls the
//! stream or queue and invokes the function with real `aws_lambda_events` payloads, with
//! Lambda's semantics (batch size, batching window, partial batch failures, retries, bisecting,
//! record age, on-failure destination, SQS visibility and deletes).
//!
//! The decisions are pure and unit tested: [`verdict`] (what an answer means), [`shard`] (the
//! batching and retry state machine of a stream shard), [`queue`] (what to delete from a queue),
//! [`failure`] (the on-failure message). [`stream`] and [`sqs`] are the pollers doing the I/O,
//! through the [`Invoker`] port.

pub mod failure;
pub mod progress;
pub mod queue;
pub mod shard;
pub mod sqs;
pub mod stream;
pub mod verdict;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use tokio::sync::watch;

use crate::invoke::{Invocation, InvokeError, Invoker};
pub use progress::Progress;

use crate::template::{QueueSource, StreamSource, Template};

/// Tunables of the bridge itself (not of the event sources).
#[derive(Clone, Debug)]
pub struct BridgeOptions {
    /// Pause between polls of an idle shard or queue (Lambda polls a shard about 4 times a second).
    pub poll_interval: Duration,
    /// How often to look for new shards or a missing stream or queue.
    pub discovery_interval: Duration,
    /// First back-off before retrying a failed batch; doubles per retry up to `max_backoff`.
    pub retry_backoff: Duration,
    /// Longest back-off.
    pub max_backoff: Duration,
    /// After this many empty reads in a row, a shard's iterator is acquired afresh
    /// (`AFTER_SEQUENCE_NUMBER` of the last record read), in case the emulator's iterator went
    /// stale while the stream moved on.
    pub refresh_after_empty_reads: u32,
    /// Where to write the bridge's progress (`bridge-progress.json`), if anywhere.
    pub progress_file: Option<PathBuf>,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(250),
            discovery_interval: Duration::from_secs(2),
            retry_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            refresh_after_empty_reads: 20,
            progress_file: None,
        }
    }
}

/// What the pollers share: the AWS clients, the invoker, the stack's region and account, and
/// the options.
pub struct BridgeContext {
    region: String,
    account_id: String,
    streams: aws_sdk_dynamodbstreams::Client,
    sqs: aws_sdk_sqs::Client,
    invoker: Arc<dyn Invoker>,
    options: BridgeOptions,
    progress: Arc<Progress>,
}

impl BridgeContext {
    /// Invokes `function`, cutting the invocation at `timeout` (the function's `Timeout`); a
    /// timed-out invocation is reported to the invoker (whose instance may be hung or dead).
    /// Also answers how long it took.
    async fn invoke(
        &self,
        function: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> (Result<Invocation, InvokeError>, Duration) {
        let started = Instant::now();
        let result =
            match tokio::time::timeout(timeout, self.invoker.invoke(function, payload)).await {
                Ok(result) => result,
                Err(_) => Err(InvokeError::Timeout {
                    function: function.to_owned(),
                    after: timeout,
                }),
            };
        if matches!(result, Err(InvokeError::Timeout { .. })) {
            self.invoker.timed_out(function);
        }
        (result, started.elapsed())
    }

    fn function_arn(&self, function: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{function}",
            self.region, self.account_id
        )
    }

    fn backoff(&self, retries: u32) -> Duration {
        let factor = 2u32.saturating_pow(retries.saturating_sub(1).min(16));
        self.options
            .retry_backoff
            .saturating_mul(factor)
            .min(self.options.max_backoff)
    }

    async fn send_to_queue(&self, url: &str, body: &str) -> Result<(), String> {
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        Ok(())
    }
}

/// The bridge: every event source of the template, polled until shutdown.
pub struct Bridge {
    ctx: Arc<BridgeContext>,
    streams: Vec<StreamSource>,
    queues: Vec<QueueSource>,
}

impl Bridge {
    /// A bridge polling every enabled `DynamoDB` and `SQS` event source of `template` with the
    /// clients of `config`, invoking through `invoker` as the template's stack (region,
    /// account).
    pub fn new(
        config: &aws_config::SdkConfig,
        template: &Template,
        invoker: Arc<dyn Invoker>,
        options: BridgeOptions,
    ) -> Self {
        Self {
            ctx: Arc::new(BridgeContext {
                region: template.stack().region.clone(),
                account_id: template.stack().account_id.clone(),
                streams: aws_sdk_dynamodbstreams::Client::new(config),
                sqs: aws_sdk_sqs::Client::new(config),
                invoker,
                options,
                progress: Arc::new(Progress::default()),
            }),
            streams: template
                .stream_sources()
                .iter()
                .filter(|s| s.enabled)
                .cloned()
                .collect(),
            queues: template
                .queue_sources()
                .iter()
                .filter(|q| q.enabled)
                .cloned()
                .collect(),
        }
    }

    /// How far each source has come (also written to `BridgeOptions::progress_file`).
    pub fn progress(&self) -> Arc<Progress> {
        Arc::clone(&self.ctx.progress)
    }

    /// Polls every source until `shutdown` completes, then lets in-flight batches finish (for
    /// at most `grace`) and returns.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>, grace: Duration) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        for source in self.streams {
            tasks.spawn(stream::run(Arc::clone(&self.ctx), source, stop_rx.clone()));
        }
        for source in self.queues {
            tasks.spawn(sqs::run(Arc::clone(&self.ctx), source, stop_rx.clone()));
        }
        let writer = self.ctx.options.progress_file.clone().map(|path| {
            tokio::spawn(progress::write_loop(
                Arc::clone(&self.ctx.progress),
                path,
                Duration::from_secs(1),
                stop_rx.clone(),
            ))
        });
        shutdown.await;
        let _ = stop_tx.send(true);
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                "event-source bridge stopped with batches in flight; they will be read again"
            );
            tasks.abort_all();
        }
        if let Some(writer) = writer {
            let _ = writer.await;
        }
    }
}

/// Whether the stop signal is set.
fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

/// Sleeps `duration` unless stopped first; true when stopped.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    if stopped(stop) {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(duration) => stopped(stop),
        changed = stop.changed() => changed.is_err() || stopped(stop),
    }
}
