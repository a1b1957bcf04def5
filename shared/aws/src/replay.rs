//! Replaying the archive into a view table: the replay request, the plan that fans it out over
//! SQS, and the `archive-replayer` Lambda that does one partition's work.
//!
//! # The replay request (one SQS message on the replay queue, `ftgo-replay`)
//!
//! ```json
//! {"bucket":"ftgo-event-archive","prefix":"events/v1/bucket=3/","target":"ftgo-order-history"}
//! ```
//!
//! * `bucket`: the archive bucket to read;
//! * `prefix`: the part of the archive to replay: one partition (`events/v1/bucket=<N>/`, what
//!   [`plan_replay`] sends), or a narrower prefix inside one (`…/bucket=3/date=2024-03-10/`);
//! * `target`: the order-history view table to apply the events to; an empty table is built
//!   from scratch, a current one is left unchanged.
//!
//! # Replaying
//!
//! The replayer reads every object under the prefix, drops events repeated by retried archive
//! batches (same `streamId` and `version`), sorts them by stream and version, and applies each
//! through the projector's idempotent apply ([`Projector::project`]: one conditional
//! `UpdateItem` under the strict successor rule, a duplicate skipped, a gap filled from the
//! event table first). So replaying twice, or into a table that is already current, changes
//! nothing. Streams are replayed concurrently (a stream's own events strictly in order).
//!
//! A partition with an event that cannot be projected (it does not decode, or an earlier event
//! of its stream does not) is replayed as far as it goes, then its message is reported failed:
//! SQS redelivers it (changing nothing that already landed) until the queue's redrive policy
//! moves it to the replay dead-letter queue, and the reason is in the logs.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use ftgo_domain::event::StoredEvent;
use ftgo_domain::view::plan;
use futures::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::Error;
use crate::projector::{Projected, Projector};
use crate::store::archive::{Archive, FORMAT_PREFIX, UNDECODABLE_PREFIX};
use crate::store::event_store::EventStore;
use crate::store::order_history::OrderHistoryDao;

/// How many streams one replayer applies at once.
pub const STREAM_CONCURRENCY: usize = 16;

/// One unit of replay work: the message body on the replay queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// The archive bucket.
    pub bucket: String,
    /// The archive prefix: `events/v1/bucket=<N>/`, or a narrower prefix inside it.
    pub prefix: String,
    /// The view table to apply the events to.
    pub target: String,
}

impl ReplayRequest {
    /// Reads and checks a message body.
    pub fn parse(body: &str) -> Result<Self, Error> {
        let request: Self =
            serde_json::from_str(body).map_err(|e| Error::Codec(format!("replay request: {e}")))?;
        request.validate()?;
        Ok(request)
    }

    /// Checks that the request names a bucket, a target and an archive partition.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: String| Err(Error::Codec(format!("replay request: {reason}")));
        if self.bucket.is_empty() {
            return invalid("bucket is empty".to_owned());
        }
        if self.target.is_empty() {
            return invalid("target is empty".to_owned());
        }
        let partition = format!("{FORMAT_PREFIX}bucket=");
        if !self.prefix.starts_with(&partition) || self.prefix.starts_with(UNDECODABLE_PREFIX) {
            return invalid(format!(
                "prefix {:?} is not inside an archive partition ({partition}<N>/)",
                self.prefix
            ));
        }
        Ok(())
    }
}

/// What one replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplaySummary {
    /// Distinct events read from the archive.
    pub events: usize,
    /// Streams they belong to.
    pub streams: usize,
    /// Events that landed on the view.
    pub applied: usize,
    /// Events the view had already.
    pub duplicates: usize,
    /// Events that landed after earlier ones were filled in from the event table.
    pub filled_gaps: usize,
    /// Events that could not be projected (they, or an earlier event of their stream, do not
    /// decode), with the reason.
    pub failed: Vec<String>,
}

impl ReplaySummary {
    fn merge(&mut self, other: ReplaySummary) {
        self.events += other.events;
        self.streams += other.streams;
        self.applied += other.applied;
        self.duplicates += other.duplicates;
        self.filled_gaps += other.filled_gaps;
        self.failed.extend(other.failed);
    }
}

/// Sends one replay request per archive partition of `archive` to `queue_url`, each naming
/// `target`; returns the requests sent. This is what `ftgo replay --target <table>` runs;
/// `archive-replayer` invocations then do the work, as many at once as Lambda runs.
pub async fn plan_replay(
    archive: &Archive,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    target: &str,
) -> Result<Vec<ReplayRequest>, Error> {
    let mut sent = Vec::new();
    for prefix in archive.list_partitions().await? {
        let request = ReplayRequest {
            bucket: archive.bucket().to_owned(),
            prefix,
            target: target.to_owned(),
        };
        request.validate()?;
        let body = serde_json::to_string(&request).map_err(|e| Error::Codec(e.to_string()))?;
        sqs.send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| Error::sdk("SendMessage replay queue", e))?;
        tracing::info!(prefix = %request.prefix, target, "replay planned");
        sent.push(request);
    }
    Ok(sent)
}

/// The archive replayer: the clients and the names it needs besides those in each request.
#[derive(Debug, Clone)]
pub struct Replayer {
    s3: aws_sdk_s3::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    config: Config,
}

impl Replayer {
    /// A replayer with these clients; from `config` it uses the event table (gap fills) and
    /// the snapshot table and index names the projector's constructors take.
    pub fn new(
        s3: aws_sdk_s3::Client,
        dynamodb: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
        config: Config,
    ) -> Self {
        Self {
            s3,
            dynamodb,
            sqs,
            config,
        }
    }

    /// The replayer the Lambda runs: clients from `sdk`, names from `config`.
    pub fn from_config(sdk: &aws_config::SdkConfig, config: &Config) -> Result<Self, Error> {
        Config::require(&config.events_table, "EVENTS_TABLE")?;
        Ok(Self::new(
            crate::store::archive::s3_client(sdk),
            aws_sdk_dynamodb::Client::new(sdk),
            aws_sdk_sqs::Client::new(sdk),
            config.clone(),
        ))
    }

    /// The projector writing into view table `target`.
    fn projector(&self, target: &str) -> Projector {
        Projector::new(
            OrderHistoryDao::new(
                self.dynamodb.clone(),
                target,
                &self.config.order_history_by_consumer_index,
            ),
            EventStore::new(
                self.dynamodb.clone(),
                &self.config.events_table,
                &self.config.snapshots_table,
            ),
            self.sqs.clone(),
            &self.config.projector_dlq_url,
        )
    }

    /// Replays `request`: every archived event under its prefix, applied to its target.
    /// `Err` is a failure worth retrying (an AWS call failed); events that cannot be projected
    /// are listed in the summary's `failed`.
    pub async fn replay(&self, request: &ReplayRequest) -> Result<ReplaySummary, Error> {
        request.validate()?;
        let archive = Archive::new(self.s3.clone(), &request.bucket);
        let events = archive.read_prefix(&request.prefix).await?;
        let projector = self.projector(&request.target);
        let mut streams: Vec<Vec<StoredEvent>> = Vec::new();
        for event in events {
            match streams.last_mut() {
                Some(current) if current[0].stream_id == event.stream_id => current.push(event),
                _ => streams.push(vec![event]),
            }
        }
        let results: Vec<Result<ReplaySummary, Error>> = stream::iter(streams)
            .map(|events| replay_stream(&projector, events))
            .buffer_unordered(STREAM_CONCURRENCY)
            .collect()
            .await;
        let mut summary = ReplaySummary::default();
        for result in results {
            summary.merge(result?);
        }
        Ok(summary)
    }

    /// Replays one message; `Err` when the message must come back (retry, then dead letter).
    pub async fn process_message(&self, message: &SqsMessage) -> Result<ReplaySummary, Error> {
        let request = ReplayRequest::parse(message.body.as_deref().unwrap_or_default())?;
        let summary = self.replay(&request).await?;
        tracing::info!(bucket = %request.bucket, prefix = %request.prefix, target = %request.target, ?summary, "partition replayed");
        crate::telemetry::count(
            crate::telemetry::names::REPLAY_EVENTS_APPLIED,
            (summary.applied + summary.filled_gaps) as u64,
        );
        if summary.failed.is_empty() {
            Ok(summary)
        } else {
            Err(Error::Projection(format!(
                "{} event(s) of s3://{}/{} could not be replayed into {}: {}",
                summary.failed.len(),
                request.bucket,
                request.prefix,
                request.target,
                summary.failed.join("; ")
            )))
        }
    }

    /// Replays a batch of messages one after the other; the failed ones are reported so that
    /// SQS redelivers only those. `Err` when a failed message carries no id to report.
    pub async fn process_batch(&self, event: &SqsEvent) -> Result<SqsBatchResponse, Error> {
        let mut response = SqsBatchResponse::default();
        for message in &event.records {
            if let Err(error) = self.process_message(message).await {
                tracing::error!(message_id = ?message.message_id, %error, "replay failed: the message comes back");
                match &message.message_id {
                    Some(id) => response.add_failure(id.clone()),
                    None => return Err(error),
                }
            }
        }
        Ok(response)
    }
}

/// Applies one stream's events, in version order, stopping at the first that cannot land.
async fn replay_stream(
    projector: &Projector,
    events: Vec<StoredEvent>,
) -> Result<ReplaySummary, Error> {
    let mut summary = ReplaySummary {
        events: events.len(),
        streams: 1,
        ..ReplaySummary::default()
    };
    for event in &events {
        let update = match plan(event) {
            Ok(update) => update,
            Err(error) => {
                summary.failed.push(format!(
                    "{} version {}: {error}",
                    event.stream_id, event.version
                ));
                break;
            }
        };
        match projector.project(&update).await? {
            Projected::Applied => summary.applied += 1,
            Projected::Duplicate => summary.duplicates += 1,
            Projected::FilledGap { .. } => summary.filled_gaps += 1,
            Projected::Blocked { by, reason } => {
                summary.failed.push(format!(
                    "{} version {}: blocked by version {} ({reason})",
                    event.stream_id, event.version, by.version
                ));
                break;
            }
            Projected::ConfirmedGap { missing, .. } => {
                summary.failed.push(format!(
                    "{} version {}: version {missing} is not in the event table",
                    event.stream_id, event.version
                ));
                break;
            }
        }
    }
    Ok(summary)
}

/// Serves one invocation of the `archive-replayer` function.
pub async fn handle(
    replayer: &Replayer,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    Ok(replayer.process_batch(&event.payload).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_bucket_partition_and_target() {
        let request = ReplayRequest::parse(
            r#"{"bucket":"ftgo-event-archive","prefix":"events/v1/bucket=3/","target":"t"}"#,
        )
        .unwrap();
        assert_eq!(request.prefix, "events/v1/bucket=3/");
        let narrower =
            r#"{"bucket":"b","prefix":"events/v1/bucket=3/date=2024-03-10/","target":"t"}"#;
        assert!(ReplayRequest::parse(narrower).is_ok());
    }

    #[test]
    fn bad_requests_are_refused() {
        for body in [
            "not json",
            r#"{"bucket":"b","prefix":"events/v1/","target":"t"}"#,
            r#"{"bucket":"b","prefix":"events/v1/undecodable/","target":"t"}"#,
            r#"{"bucket":"","prefix":"events/v1/bucket=1/","target":"t"}"#,
            r#"{"bucket":"b","prefix":"events/v1/bucket=1/","target":""}"#,
            r#"{"bucket":"b","prefix":"events/v1/bucket=1/"}"#,
            r#"{"bucket":"b","prefix":"events/v1/bucket=1/","target":"t","extra":1}"#,
        ] {
            assert!(ReplayRequest::parse(body).is_err(), "{body}");
        }
    }
}
