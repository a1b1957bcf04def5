//! The `archive-backfiller` handler: the archiver's dead-letter queue (`ftgo-archiver-dlq`)
//! triggers it with Lambda's on-failure records ([`OnFailureRecord`]), and for each it
//! backfills the days the skipped batch can hold from the event table into the archive
//! ([`ArchiveBackfill::repair`]: deterministic keys, so a repeated message writes nothing new).
//!
//! A message that is not an on-failure record, or whose repair fails (an AWS call failed), is
//! reported in `batchItemFailures`: SQS redelivers it after the queue's visibility timeout, and
//! after `maxReceiveCount` receives moves it to the backfill dead-letter queue, where an alarm
//! asks a person to look (README, "Checking the archive"). The healthy messages of the same
//! batch are deleted as usual. Messages of one batch that cover the same days are repaired
//! once.

use std::collections::HashMap;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;

use crate::archive_backfill::ArchiveBackfill;
use crate::error::Error;
use crate::on_failure::OnFailureRecord;
use crate::store::archive::DateRange;

/// The metric counting events put back into the archive (namespace `FTGO`).
pub const EVENTS_BACKFILLED: &str = "EventsBackfilled";

/// Repairs what the messages of `event` name; the ones that failed are reported. `Err` when a
/// failed message carries no id to report (the whole batch then comes back).
pub async fn process_batch(
    backfill: &ArchiveBackfill,
    event: &SqsEvent,
) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    // Days already repaired in this batch: the outcome (events written, or the error).
    let mut repaired: HashMap<DateRange, Result<usize, String>> = HashMap::new();
    for message in &event.records {
        let outcome = match OnFailureRecord::of_message(message) {
            Err(error) => Err(error.to_string()),
            Ok(record) => {
                let range = record.covering_range();
                let outcome = match repaired.get(&range) {
                    Some(outcome) => outcome.clone(),
                    None => {
                        let outcome = backfill
                            .repair(&record)
                            .await
                            .map(|done| {
                                let events = done.check.missing.len();
                                tracing::info!(
                                    batch = %record.describe(),
                                    from = ?range.from,
                                    to = ?range.to,
                                    checked = done.check.events,
                                    backfilled = events,
                                    objects = done.written.len(),
                                    "archiver dead letter repaired"
                                );
                                crate::telemetry::count(EVENTS_BACKFILLED, events as u64);
                                events
                            })
                            .map_err(|e| e.to_string());
                        repaired.insert(range, outcome.clone());
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
    backfill: &ArchiveBackfill,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    Ok(process_batch(backfill, &event.payload).await?)
}
