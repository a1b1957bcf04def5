//! The `archive-backfiller` handler: the archiver's dead-letter queue (`ftgo-archiver-dlq`)
//! triggers it with Lambda's on-failure records ([`OnFailureRecord`]), and for each it
//! backfills the days the skipped batch can hold from the event table into the archive
//! ([`ArchiveBackfill::sweep`]: only those days' archive prefixes, the event table in parallel
//! `Scan` segments filtered to those days, missing events written back as they are found, so a
//! repeated message writes nothing new).
//!
//! However large the event table, no message needs a person: when the invocation's deadline
//! comes within [`CONTINUATION_MARGIN`], the sweep stops after the pages in flight, and a
//! **continuation** goes to the same queue — the on-failure record with an added
//! `ftgoBackfill` field ([`ScanProgress`]: the segments left and the key each goes on from) —
//! and the message is done. The continuation is a new message, with a receive count of its own.
//!
//! A message that is not an on-failure record, or whose repair fails (an AWS call failed), is
//! reported in `batchItemFailures`: SQS redelivers it after the queue's visibility timeout, and
//! after `maxReceiveCount` receives moves it to the backfill dead-letter queue, where an alarm
//! asks a person to look (README, "Checking the archive"). The healthy messages of the same
//! batch are deleted as usual. Messages of one batch that cover the same days are repaired
//! once.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use serde::Deserialize;

use crate::archive_backfill::{ArchiveBackfill, ScanProgress, SweepMode, Swept};
use crate::error::Error;
use crate::on_failure::OnFailureRecord;
use crate::store::archive::DateRange;

/// The metric counting events put back into the archive (namespace `FTGO`).
pub const EVENTS_BACKFILLED: &str = "EventsBackfilled";

/// The field of a continuation message that carries the sweep's progress.
pub const PROGRESS_FIELD: &str = "ftgoBackfill";

/// How long before its deadline an invocation stops sweeping and sends a continuation.
pub const CONTINUATION_MARGIN: Duration = Duration::from_secs(30);

/// Where continuations go: the queue that triggers the backfiller.
#[derive(Debug, Clone)]
pub struct ContinuationQueue {
    /// The SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// The queue (`ftgo-archiver-dlq`).
    pub url: String,
}

/// The backfiller: the repair, and the queue its continuations go to.
#[derive(Debug, Clone)]
pub struct Backfiller {
    /// The repair.
    pub backfill: ArchiveBackfill,
    /// The queue of continuations.
    pub continuations: ContinuationQueue,
}

impl Backfiller {
    /// The backfiller the Lambda runs: clients from `sdk`, names from `config` (the archiver's
    /// dead-letter queue from `ARCHIVER_DLQ_URL`).
    pub fn from_config(
        sdk: &aws_config::SdkConfig,
        config: &crate::config::Config,
    ) -> Result<Self, Error> {
        crate::config::Config::require(&config.archiver_dlq_url, "ARCHIVER_DLQ_URL")?;
        Ok(Self {
            backfill: ArchiveBackfill::from_config(sdk, config)?,
            continuations: ContinuationQueue {
                sqs: aws_sdk_sqs::Client::new(sdk),
                url: config.archiver_dlq_url.clone(),
            },
        })
    }
}

#[derive(Debug, Default, Deserialize)]
struct Continuation {
    #[serde(default, rename = "ftgoBackfill")]
    progress: Option<ScanProgress>,
}

/// The record of `message` and, for a continuation, where its sweep goes on.
fn read_message(message: &SqsMessage) -> Result<(OnFailureRecord, Option<ScanProgress>), Error> {
    let record = OnFailureRecord::of_message(message)?;
    let body = message.body.as_deref().unwrap_or_default();
    let continuation: Continuation =
        serde_json::from_str(body).map_err(|e| Error::Codec(format!("{PROGRESS_FIELD}: {e}")))?;
    Ok((record, continuation.progress))
}

/// The body of the continuation of `record` at `progress`.
pub fn continuation_body(
    record: &OnFailureRecord,
    progress: &ScanProgress,
) -> Result<String, Error> {
    let mut body = serde_json::to_value(record).map_err(|e| Error::Codec(e.to_string()))?;
    let progress = serde_json::to_value(progress).map_err(|e| Error::Codec(e.to_string()))?;
    if let Some(object) = body.as_object_mut() {
        object.insert(PROGRESS_FIELD.to_owned(), progress);
    }
    serde_json::to_string(&body).map_err(|e| Error::Codec(e.to_string()))
}

/// Sweeps what `record` names from `progress` until `deadline` comes near; when it stops
/// early, sends the continuation.
async fn repair(
    backfiller: &Backfiller,
    record: &OnFailureRecord,
    progress: ScanProgress,
    deadline: Option<SystemTime>,
) -> Result<Swept, Error> {
    let near_deadline = || {
        deadline.is_some_and(|deadline| {
            deadline
                .duration_since(SystemTime::now())
                .map_or(true, |left| left < CONTINUATION_MARGIN)
        })
    };
    let swept = backfiller
        .backfill
        .sweep(
            &record.covering_range(),
            SweepMode::Repair,
            progress,
            near_deadline,
        )
        .await?;
    if let Some(left) = &swept.left {
        backfiller
            .continuations
            .sqs
            .send_message()
            .queue_url(&backfiller.continuations.url)
            .message_body(continuation_body(record, left)?)
            .send()
            .await
            .map_err(|e| Error::sdk("SendMessage backfill continuation", e))?;
        tracing::info!(batch = %record.describe(), segments = left.segments.len(), "near the time limit: continuation sent");
    }
    Ok(swept)
}

/// Repairs what the messages of `event` name; the ones that failed are reported. `Err` when a
/// failed message carries no id to report (the whole batch then comes back).
pub async fn process_batch(
    backfiller: &Backfiller,
    event: &SqsEvent,
    deadline: Option<SystemTime>,
) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    // Days already repaired to the end in this batch: the outcome (events written, or the error).
    let mut repaired: HashMap<DateRange, Result<usize, String>> = HashMap::new();
    for message in &event.records {
        let outcome = match read_message(message) {
            Err(error) => Err(error.to_string()),
            Ok((record, progress)) => {
                let range = record.covering_range();
                let outcome = match (repaired.get(&range), progress) {
                    (Some(outcome), _) => outcome.clone(),
                    (None, progress) => {
                        let fresh = progress.is_none();
                        let progress = progress.unwrap_or_else(ScanProgress::start);
                        let outcome = repair(backfiller, &record, progress, deadline)
                            .await
                            .map(|done| {
                                tracing::info!(
                                    batch = %record.describe(),
                                    from = ?range.from,
                                    to = ?range.to,
                                    examined = done.examined,
                                    checked = done.in_range,
                                    backfilled = done.backfilled,
                                    objects = done.written.len(),
                                    continued = done.left.is_some(),
                                    "archiver dead letter repaired"
                                );
                                crate::telemetry::count(EVENTS_BACKFILLED, done.backfilled as u64);
                                done.backfilled
                            })
                            .map_err(|e| e.to_string());
                        if fresh {
                            repaired.insert(range, outcome.clone());
                        }
                        outcome
                    }
                };
                outcome.map_err(|e| format!("{}: {e}", record.describe()))
            }
        };
        if let Err(reason) = outcome {
            tracing::error!(message_id = ?message.message_id, %reason, "archiver dead letter not repaired: the message comes back");
            match &message.message_id {
                Some(id) => response.add_failure(id.clone()),
                None => return Err(Error::Codec(reason)),
            }
        }
    }
    Ok(response)
}

/// Serves one invocation of the `archive-backfiller` function.
pub async fn handle(
    backfiller: &Backfiller,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    // A context without a deadline (0: a local test invocation) never continues.
    let deadline = (event.context.deadline > 0).then(|| event.context.deadline());
    Ok(process_batch(backfiller, &event.payload, deadline).await?)
}
