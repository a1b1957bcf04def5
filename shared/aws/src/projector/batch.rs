//! One batch of stream records: worked stream by stream, the streams concurrently.
//!
//! * The records are grouped by their event stream (`streamId` in the record's keys: one
//!   aggregate, `Order#…` or `Delivery#…`). Streams are independent on the view — each guards
//!   its own version attribute of the item, and DynamoDB applies each `UpdateItem` to an item
//!   atomically — so different streams are worked concurrently, at most
//!   [`MAX_CONCURRENT_STREAMS`] at once; one stream's records strictly in version order.
//! * A record that does not plan (undecodable, corrupt version, `REMOVE`) is projected alone,
//!   as before: dead-lettered with its reason. The others are sorted by version and each
//!   stretch of consecutive versions is one run, coalesced into one conditional `UpdateItem`
//!   ([`Projector::project_run`]). A run that meets a blocker or a confirmed gap, or that AWS
//!   refuses for itself, is projected again record by record, so that each record is
//!   dead-lettered with its own reason.
//! * A failure that is not the record's stops its stream: the failed record and every record
//!   of that stream not projected yet are reported in `batchItemFailures`. Lambda checkpoints
//!   at the lowest sequence number reported and retries every record from there ("If the
//!   batchItemFailures array contains multiple items, Lambda uses the record with the lowest
//!   sequence number as the checkpoint", AWS Lambda developer guide, partial batch responses
//!   for DynamoDB): the other streams' records after it come again and are duplicates, so a
//!   failing stream never blocks the others and never loses a record.

use std::collections::HashMap;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use ftgo_domain::view::ViewUpdate;
use futures::StreamExt;
use tracing::Instrument;

use super::{Disposition, Landed, Projected, Projector, disposition};
use crate::error::Error;
use crate::store::stream_image::plan_record;
use crate::telemetry::{self, count, names};

/// How many event streams of one batch are worked at once (each has at most one DynamoDB call
/// in flight). A batch holds at most `BatchSize` records (100 in the template).
pub const MAX_CONCURRENT_STREAMS: usize = 32;

/// The event stream a record belongs to (`streamId` of its keys), if it names one.
fn stream_of(record: &EventRecord) -> Option<&str> {
    match record.change.keys.inner().get("streamId") {
        Some(serde_dynamo::AttributeValue::S(stream)) => Some(stream),
        _ => None,
    }
}

impl Projector {
    /// Projects a batch: streams concurrently, each in version order, consecutive events
    /// coalesced; reports every record that failed for a reason not its own, and every record
    /// of the same stream after it.
    pub async fn process_batch(&self, event: &Event) -> DynamoDbEventResponse {
        let records = &event.records;
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut by_stream: HashMap<&str, usize> = HashMap::new();
        for (index, record) in records.iter().enumerate() {
            match stream_of(record) {
                Some(stream) => match by_stream.get(stream) {
                    Some(&group) => groups[group].push(index),
                    None => {
                        by_stream.insert(stream, groups.len());
                        groups.push(vec![index]);
                    }
                },
                None => groups.push(vec![index]),
            }
        }
        let mut failed: Vec<usize> = futures::stream::iter(groups)
            .map(|group| self.process_stream(records, group))
            .buffer_unordered(MAX_CONCURRENT_STREAMS)
            .flat_map(futures::stream::iter)
            .collect()
            .await;
        failed.sort_unstable();
        failed.dedup();
        let mut response = DynamoDbEventResponse::default();
        for &index in &failed {
            let record = &records[index];
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(
                record
                    .change
                    .sequence_number
                    .clone()
                    .unwrap_or_else(|| record.event_id.clone()),
            );
            response.batch_item_failures.push(failure);
        }
        let now = time::OffsetDateTime::now_utc();
        let lags: Vec<u64> = records
            .iter()
            .enumerate()
            .filter(|(index, _)| failed.binary_search(index).is_err())
            .filter_map(|(_, record)| telemetry::occurred_at(&record.change.new_image))
            .map(|at| telemetry::lag_ms(now, at))
            .collect();
        telemetry::record_lags(&lags);
        response
    }

    /// Projects the records `group` (indices into `records`) of one stream; returns the
    /// indices of the records to report failed (empty when the stream is done).
    async fn process_stream(&self, records: &[EventRecord], group: Vec<usize>) -> Vec<usize> {
        let mut planned: Vec<(usize, ViewUpdate)> = Vec::with_capacity(group.len());
        for (position, &index) in group.iter().enumerate() {
            let record = &records[index];
            if record.event_name != "REMOVE"
                && let Ok(update) = plan_record(record)
            {
                planned.push((index, update));
                continue;
            }
            if let Err(error) = self.process_logged(record).await {
                report(record, &error);
                let mut failed = group[position..].to_vec();
                failed.extend(planned.iter().map(|(index, _)| *index));
                return failed;
            }
        }
        planned.sort_by_key(|(_, update)| update.version);
        let (indices, updates): (Vec<usize>, Vec<ViewUpdate>) = planned.into_iter().unzip();
        let mut start = 0;
        while start < updates.len() {
            let mut end = start + 1;
            while end < updates.len()
                && Some(updates[end].first_version) == updates[end - 1].version.checked_add(1)
            {
                end += 1;
            }
            let span = telemetry::record_span(&records[indices[start]]);
            let one_by_one = match self
                .project_run(&updates[start..end])
                .instrument(span)
                .await
            {
                Ok((
                    outcome @ (Projected::Blocked { .. } | Projected::ConfirmedGap { .. }),
                    landed,
                )) => {
                    count_landed(&outcome, &landed);
                    true
                }
                Ok((outcome, landed)) => {
                    count_landed(&outcome, &landed);
                    tracing::debug!(order_id = %updates[start].order_id, source = %updates[start].source, first = updates[start].first_version, last = updates[end - 1].version, ?outcome, ?landed, "projected");
                    false
                }
                Err(error) => match disposition(&error) {
                    Disposition::DeadLetter => true,
                    Disposition::Retry | Disposition::RetryMisconfigured => {
                        report(&records[indices[start]], &error);
                        return indices[start..].to_vec();
                    }
                },
            };
            if one_by_one {
                for position in start..end {
                    let record = &records[indices[position]];
                    if let Err(error) = self.process_logged(record).await {
                        report(record, &error);
                        return indices[position..].to_vec();
                    }
                }
            }
            start = end;
        }
        Vec::new()
    }

    /// [`Projector::process_record`] inside the record's span.
    async fn process_logged(&self, record: &EventRecord) -> Result<(), Error> {
        let span = telemetry::record_span(record);
        self.process_record(record).instrument(span).await
    }
}

/// Counts what a run did (dead letters are counted where they are sent).
fn count_landed(outcome: &Projected, landed: &Landed) {
    count(names::EVENTS_PROJECTED, landed.applied);
    count(names::DUPLICATES_SKIPPED, landed.duplicates);
    if matches!(outcome, Projected::FilledGap { .. }) {
        count(names::GAPS_HEALED, 1);
    }
}

/// Logs a failure that Lambda retries from `record`.
fn report(record: &EventRecord, error: &Error) {
    let identifier = record
        .change
        .sequence_number
        .as_deref()
        .unwrap_or(&record.event_id);
    match disposition(error) {
        Disposition::RetryMisconfigured => tracing::error!(
            sequence_number = %identifier, %error,
            "AWS refuses the projector's calls for the deployment's configuration: Lambda retries from this record until it is fixed"
        ),
        _ => tracing::warn!(
            sequence_number = %identifier, %error,
            "failure: Lambda retries from this record"
        ),
    }
}
