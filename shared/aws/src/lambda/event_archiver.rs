//! The `event-archiver` Lambda: writes every event of the event table's DynamoDB stream to the
//! S3 archive ([`crate::store::archive`]).
//!
//! One invocation gets one batch of one shard's records:
//! * each record's `NewImage` is decoded with `serde_dynamo` into a [`StoredEvent`];
//! * the decoded records are grouped into one object per (partition, date) and each object is
//!   written with one `PutObject` under its deterministic key, so a retried batch rewrites the
//!   same objects with the same bytes;
//! * a record that is not an event (no `NewImage`, a `REMOVE`, an image that does not decode, no
//!   sequence number) neither blocks the batch nor vanishes: it is written whole, with the
//!   reason, to `events/v1/undecodable/<shard>/<sequence>.json`;
//! * when a write fails, the lowest sequence number among the failed objects' first records (and
//!   failed undecodable records) is reported in `batchItemFailures` (`ReportBatchItemFailures`):
//!   Lambda retries from there, and repeats are harmless because readers drop events already
//!   seen by `(streamId, version)`.
//!
//! # The `<shard>` key segment
//!
//! A stream record as Lambda delivers it does not name its shard (the shard id is only in
//! Lambda's on-failure message), so the archiver names the source by what the record does
//! carry: [`shard_of`] is the stream label of `eventSourceARN` (the part after `/stream/`),
//! sanitised. Sequence numbers are unique within a stream, so `<first>-<last>` still names each
//! batch's object uniquely and deterministically.

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use ftgo_domain::event::StoredEvent;
use futures::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
use serde::Serialize;

use crate::config::Config;
use crate::error::Error;
use crate::store::archive::{
    Archive, ArchiveObject, ArchiveRecord, compare_sequence_numbers, plan_objects, undecodable_key,
};

/// How many `PutObject` calls one invocation makes at once.
pub const WRITE_CONCURRENCY: usize = 8;

/// What is written for a stream record that does not carry an event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UndecodableRecord<'a> {
    /// Which function wrote it.
    pub source: &'static str,
    /// Why the record is not archived as an event.
    pub reason: &'a str,
    /// The whole stream record, as Lambda delivered it.
    pub record: &'a EventRecord,
}

/// The archive key segment naming the source of `record`: the stream label of its
/// `eventSourceARN` (`…/stream/<label>`), or the whole ARN when it has no label, or `unknown`.
pub fn shard_of(record: &EventRecord) -> String {
    match record.event_source_arn.as_deref() {
        Some(arn) => match arn.rsplit_once("/stream/") {
            Some((_, label)) if !label.is_empty() => label.to_owned(),
            _ => arn.to_owned(),
        },
        None => "unknown".to_owned(),
    }
}

/// Decodes a record's `NewImage` into the event it holds, or says why it cannot.
pub fn decode_record(record: &EventRecord) -> Result<StoredEvent, String> {
    if record.event_name == "REMOVE" {
        return Err("REMOVE record: an event was deleted from the event table".to_owned());
    }
    if record.change.new_image.inner().is_empty() {
        return Err(format!("{} record has no NewImage", record.event_name));
    }
    serde_dynamo::from_item(record.change.new_image.clone())
        .map_err(|e| format!("NewImage is not a stored event: {e}"))
}

/// The archiver: the archive it writes to.
#[derive(Debug, Clone)]
pub struct Archiver {
    archive: Archive,
}

/// A record that will not be archived as an event.
struct Undecodable<'a> {
    sequence: Option<&'a str>,
    record: &'a EventRecord,
    reason: String,
}

impl Archiver {
    /// An archiver writing to `archive`.
    pub fn new(archive: Archive) -> Self {
        Self { archive }
    }

    /// The archiver the Lambda runs: S3 client from `sdk`, bucket from `config`.
    pub fn from_config(sdk: &aws_config::SdkConfig, config: &Config) -> Result<Self, Error> {
        Config::require(&config.archive_bucket, "ARCHIVE_BUCKET")?;
        Ok(Self::new(Archive::new(
            crate::store::archive::s3_client(sdk),
            &config.archive_bucket,
        )))
    }

    /// The archive.
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// Archives one batch; the answer names the record Lambda must retry from, if any.
    pub async fn process_batch(&self, event: &Event) -> DynamoDbEventResponse {
        let mut decoded = Vec::with_capacity(event.records.len());
        let mut undecodable = Vec::new();
        let shard = event.records.first().map(shard_of).unwrap_or_default();
        for record in &event.records {
            let sequence = record.change.sequence_number.as_deref();
            match (sequence, decode_record(record)) {
                (Some(sequence), Ok(stored)) => decoded.push(ArchiveRecord {
                    sequence_number: sequence.to_owned(),
                    event: stored,
                }),
                (None, Ok(_)) => undecodable.push(Undecodable {
                    sequence,
                    record,
                    reason: "the record has no sequence number".to_owned(),
                }),
                (_, Err(reason)) => undecodable.push(Undecodable {
                    sequence,
                    record,
                    reason,
                }),
            }
        }

        let mut failed: Vec<String> = Vec::new();
        let objects = match plan_objects(&shard, &decoded) {
            Ok(objects) => objects,
            Err(error) => {
                // Cannot happen for events that decoded (their dates format); retry the batch.
                tracing::error!(%error, "cannot plan the archive objects of the batch");
                failed.extend(decoded.first().map(|r| r.sequence_number.clone()));
                Vec::new()
            }
        };

        let writes = objects.iter().map(|object| self.write_object(object));
        let results: Vec<Result<(), String>> = stream::iter(writes)
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect()
            .await;
        failed.extend(results.into_iter().filter_map(Result::err));

        let dead = undecodable
            .iter()
            .map(|item| self.write_undecodable(&shard, item));
        let results: Vec<Result<(), Option<String>>> = stream::iter(dead)
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect()
            .await;
        failed.extend(results.into_iter().filter_map(|r| r.err().flatten()));

        let mut response = DynamoDbEventResponse::default();
        if let Some(lowest) = failed
            .into_iter()
            .min_by(|a, b| compare_sequence_numbers(a, b))
        {
            tracing::warn!(sequence_number = %lowest, "archive write failed: Lambda retries from this record");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(lowest);
            response.batch_item_failures.push(failure);
        } else {
            tracing::info!(
                records = event.records.len(),
                objects = objects.len(),
                undecodable = undecodable.len(),
                "batch archived"
            );
        }
        response
    }

    /// Writes one object; on failure, the sequence number to retry from.
    async fn write_object(&self, object: &ArchiveObject) -> Result<(), String> {
        match self.archive.put(object).await {
            Ok(()) => {
                tracing::debug!(key = %object.key, events = object.events.len(), "archived");
                crate::telemetry::count(
                    crate::telemetry::names::EVENTS_ARCHIVED,
                    object.events.len() as u64,
                );
                Ok(())
            }
            Err(error) => {
                tracing::warn!(key = %object.key, %error, "archive object not written");
                Err(object.first_sequence.clone())
            }
        }
    }

    /// Keeps one undecodable record; on failure, the sequence number to retry from (`None`
    /// when the record has none, so cannot be retried by number: it is logged whole instead).
    async fn write_undecodable(
        &self,
        shard: &str,
        item: &Undecodable<'_>,
    ) -> Result<(), Option<String>> {
        let name = item.sequence.unwrap_or(item.record.event_id.as_str());
        let key = undecodable_key(shard, name);
        tracing::error!(%key, reason = %item.reason, event_id = %item.record.event_id, "undecodable record: kept aside");
        let body = serde_json::to_vec_pretty(&UndecodableRecord {
            source: "event-archiver",
            reason: &item.reason,
            record: item.record,
        });
        let result = match body {
            Ok(body) => self.archive.put_json(&key, body).await,
            Err(e) => Err(Error::Codec(e.to_string())),
        };
        result.map_err(|error| {
            tracing::warn!(%key, %error, record = ?item.record, "undecodable record not written");
            item.sequence.map(str::to_owned)
        })
    }
}

/// Serves one invocation of the `event-archiver` function.
pub async fn handle(
    archiver: &Archiver,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, lambda_runtime::Error> {
    Ok(archiver.process_batch(&event.payload).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: serde_json::Value) -> EventRecord {
        serde_json::from_value(json).unwrap()
    }

    fn base(new_image: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "awsRegion": "us-east-1",
            "eventID": "id-1",
            "eventName": "INSERT",
            "eventSource": "aws:dynamodb",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/ftgo-events/stream/2024-01-01T00:00:00.000",
            "dynamodb": {
                "ApproximateCreationDateTime": 1704067200.0,
                "Keys": {"streamId": {"S": "Order#o-1"}, "version": {"N": "1"}},
                "NewImage": new_image,
                "SequenceNumber": "100",
                "SizeBytes": 10,
                "StreamViewType": "NEW_IMAGE"
            }
        })
    }

    #[test]
    fn shard_is_the_stream_label_of_the_source_arn() {
        let r = record(base(serde_json::json!({})));
        assert_eq!(shard_of(&r), "2024-01-01T00:00:00.000");
    }

    #[test]
    fn records_without_an_event_say_why() {
        let r = record(base(serde_json::json!({})));
        assert!(decode_record(&r).unwrap_err().contains("no NewImage"));
        let r = record(base(serde_json::json!({"streamId": {"S": "Order#o-1"}})));
        assert!(
            decode_record(&r)
                .unwrap_err()
                .contains("not a stored event")
        );
    }

    #[test]
    fn a_full_image_decodes() {
        let r = record(base(serde_json::json!({
            "streamId": {"S": "Order#o-1"}, "version": {"N": "1"}, "eventId": {"S": "e-1"},
            "eventType": {"S": "OrderApproved"}, "schemaVersion": {"N": "1"},
            "aggregateType": {"S": "Order"}, "aggregateId": {"S": "o-1"},
            "occurredAt": {"S": "2024-01-01T00:00:00Z"}, "payload": {"M": {}},
            "metadata": {"M": {"correlationId": {"S": "r-1"}}}
        })));
        let event = decode_record(&r).unwrap();
        assert_eq!((event.stream_id.as_str(), event.version), ("Order#o-1", 1));
    }
}
