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

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use tokio::sync::{Mutex, watch};

use crate::invoke::{Invocation, InvokeError, Invoker};
pub use progress::Progress;
pub use sqs::QueueSource;
pub use stream::StreamSource;

pub use crate::template::StartingPosition;

/// Tunables of the bridge itself (not of the event sources).
#[derive(Clone, Debug)]
pub struct BridgeOptions {
    /// Region written into events and ARNs.
    pub region: String,
    /// Account id written into function ARNs.
    pub account_id: String,
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
            region: "us-east-1".to_owned(),
            account_id: "123456789012".to_owned(),
            poll_interval: Duration::from_millis(250),
            discovery_interval: Duration::from_secs(2),
            retry_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            refresh_after_empty_reads: 20,
            progress_file: None,
        }
    }
}

/// What the pollers share: the AWS clients, the invoker and the options.
pub struct BridgeContext {
    streams: aws_sdk_dynamodbstreams::Client,
    sqs: aws_sdk_sqs::Client,
    invoker: Arc<dyn Invoker>,
    options: BridgeOptions,
    queue_urls: Mutex<HashMap<String, String>>,
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
            self.options.region, self.options.account_id
        )
    }

    fn backoff(&self, retries: u32) -> Duration {
        let factor = 2u32.saturating_pow(retries.saturating_sub(1).min(16));
        self.options
            .retry_backoff
            .saturating_mul(factor)
            .min(self.options.max_backoff)
    }

    /// The URL of a queue named by ARN, URL or name.
    async fn queue_url(&self, queue: &str) -> Result<String, String> {
        if queue.starts_with("http://") || queue.starts_with("https://") {
            return Ok(queue.to_owned());
        }
        if let Some(url) = self.queue_urls.lock().await.get(queue) {
            return Ok(url.clone());
        }
        let name = if queue.starts_with("arn:") {
            queue.rsplit(':').next().unwrap_or(queue)
        } else {
            queue
        };
        let out = self
            .sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        let url = out
            .queue_url()
            .ok_or_else(|| format!("no URL for queue {queue}"))?
            .to_owned();
        self.queue_urls
            .lock()
            .await
            .insert(queue.to_owned(), url.clone());
        Ok(url)
    }

    async fn send_to_queue(&self, queue: &str, body: &str) -> Result<(), String> {
        let url = self.queue_url(queue).await?;
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
    /// A bridge polling `streams` and `queues` with the clients of `config`, invoking through
    /// `invoker`.
    pub fn new(
        config: &aws_config::SdkConfig,
        invoker: Arc<dyn Invoker>,
        options: BridgeOptions,
        streams: Vec<StreamSource>,
        queues: Vec<QueueSource>,
    ) -> Self {
        Self {
            ctx: Arc::new(BridgeContext {
                streams: aws_sdk_dynamodbstreams::Client::new(config),
                sqs: aws_sdk_sqs::Client::new(config),
                invoker,
                options,
                queue_urls: Mutex::new(HashMap::new()),
                progress: Arc::new(Progress::default()),
            }),
            streams,
            queues,
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
