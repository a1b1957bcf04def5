//! Repairing the archive from the event table, the source of truth: `ftgo archive
//! verify|backfill` and the `archive-backfiller` Lambda run this.
//!
//! When the archiver's retries run out, Lambda skips the records and sends an **on-failure
//! record** ([`OnFailureRecord`]) to the archiver's dead-letter queue (`ftgo-archiver-dlq`): the
//! shard, the sequence range and the arrival times of the batch, not the records. The stream
//! forgets the records after 24 hours, so the repair reads the event table instead: every
//! event of the days the batch can hold ([`OnFailureRecord::covering_range`]) that the archive
//! misses is written back ([`ArchiveBackfill::backfill`]), under the deterministic keys of
//! [`crate::verify::backfill_objects`]. Running it again finds nothing missing and writes
//! nothing, so a redelivered or repeated dead letter changes nothing.

use aws_lambda_events::sqs::SqsMessage;
use ftgo_domain::event::StoredEvent;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::Config;
use crate::error::Error;
use crate::store::archive::{Archive, DateRange};
use crate::verify::{backfill_objects, missing_from_archive, scan_events};

/// Lambda's on-failure record for a DynamoDB stream event source, as it lands on the
/// `DestinationConfig.OnFailure` queue (the message body). `aws_lambda_events` has no type for
/// it; this is its documented shape. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnFailureRecord {
    /// Which invocation gave up, and why.
    #[serde(default)]
    pub request_context: OnFailureRequestContext,
    /// How the last invocation answered.
    #[serde(default)]
    pub response_context: OnFailureResponseContext,
    /// The record format's version (`1.0`).
    #[serde(default)]
    pub version: String,
    /// When Lambda gave up (RFC 3339).
    #[serde(default)]
    pub timestamp: String,
    /// The batch that was skipped.
    #[serde(rename = "DDBStreamBatchInfo")]
    pub batch: StreamBatchInfo,
}

/// `requestContext` of an [`OnFailureRecord`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnFailureRequestContext {
    /// The last invocation's request id.
    #[serde(default)]
    pub request_id: String,
    /// The function.
    #[serde(default)]
    pub function_arn: String,
    /// Why Lambda gave up: `RetryAttemptsExhausted`, `RecordAgeExceeded`, …
    #[serde(default)]
    pub condition: String,
    /// How many times the batch was tried.
    #[serde(default)]
    pub approximate_invoke_count: u64,
}

/// `responseContext` of an [`OnFailureRecord`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnFailureResponseContext {
    /// The invocation's HTTP status.
    #[serde(default)]
    pub status_code: u16,
    /// The version that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executed_version: Option<String>,
    /// `Unhandled` or `Handled` when the function failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_error: Option<String>,
}

/// `DDBStreamBatchInfo` of an [`OnFailureRecord`]: the skipped batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamBatchInfo {
    /// The shard.
    pub shard_id: String,
    /// The batch's first sequence number.
    pub start_sequence_number: String,
    /// The batch's last sequence number.
    pub end_sequence_number: String,
    /// When the first record reached the stream.
    #[serde(with = "time::serde::rfc3339")]
    pub approximate_arrival_of_first_record: OffsetDateTime,
    /// When the last record reached the stream.
    #[serde(with = "time::serde::rfc3339")]
    pub approximate_arrival_of_last_record: OffsetDateTime,
    /// How many records the batch held.
    #[serde(default)]
    pub batch_size: u64,
    /// The stream.
    #[serde(default)]
    pub stream_arn: String,
}

impl OnFailureRecord {
    /// Reads a message body; anything that is not an on-failure record of a stream batch
    /// (no `DDBStreamBatchInfo`, arrival times that are not RFC 3339 or out of order) is refused.
    pub fn parse(body: &str) -> Result<Self, Error> {
        let record: Self = serde_json::from_str(body)
            .map_err(|e| Error::Codec(format!("not a Lambda on-failure record: {e}")))?;
        let batch = &record.batch;
        if batch.approximate_arrival_of_first_record > batch.approximate_arrival_of_last_record {
            return Err(Error::Codec(format!(
                "on-failure record of shard {}: the first record arrived after the last",
                batch.shard_id
            )));
        }
        Ok(record)
    }

    /// The record of an SQS message (its body).
    pub fn of_message(message: &SqsMessage) -> Result<Self, Error> {
        Self::parse(message.body.as_deref().unwrap_or_default())
    }

    /// `shard <id> sequence <first>..<last>`.
    pub fn describe(&self) -> String {
        format!(
            "shard {} sequence {}..{}",
            self.batch.shard_id, self.batch.start_sequence_number, self.batch.end_sequence_number
        )
    }

    /// The days (UTC) whose events the skipped batch can hold: from the day before its first
    /// record arrived (an event occurs before it reaches the stream, possibly before midnight)
    /// to the day its last record arrived.
    pub fn covering_range(&self) -> DateRange {
        let first = self
            .batch
            .approximate_arrival_of_first_record
            .to_offset(time::UtcOffset::UTC)
            .date();
        let last = self
            .batch
            .approximate_arrival_of_last_record
            .to_offset(time::UtcOffset::UTC)
            .date();
        DateRange {
            from: Some(first.previous_day().unwrap_or(first)),
            to: Some(last),
        }
    }

    /// Whether a check of `range` covered every day of this batch ([`Self::covering_range`]).
    pub fn covered_by(&self, range: &DateRange) -> bool {
        let covering = self.covering_range();
        let inside = |day: Option<time::Date>| day.is_some_and(|d| range.contains_date(d));
        inside(covering.from) && inside(covering.to)
    }
}

/// What the archive misses in a range of days.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArchiveCheck {
    /// The days checked.
    pub range: DateRange,
    /// The events of the event table in those days.
    pub events: usize,
    /// The ones the archive does not hold, by stream and version.
    pub missing: Vec<StoredEvent>,
}

/// One object a backfill wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenObject {
    /// Its key.
    pub key: String,
    /// How many events it holds.
    pub events: usize,
}

/// What a backfill did: the check, and the objects written to put the missing events back
/// (none when nothing was missing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backfill {
    /// What was missing before.
    pub check: ArchiveCheck,
    /// What was written.
    pub written: Vec<WrittenObject>,
}

/// The archive checker and repairer: the event table it compares with, the archive it repairs.
#[derive(Debug, Clone)]
pub struct ArchiveBackfill {
    dynamodb: aws_sdk_dynamodb::Client,
    archive: Archive,
    events_table: String,
}

impl ArchiveBackfill {
    /// A backfill of `archive` from event table `events_table`.
    pub fn new(
        dynamodb: aws_sdk_dynamodb::Client,
        archive: Archive,
        events_table: impl Into<String>,
    ) -> Self {
        Self {
            dynamodb,
            archive,
            events_table: events_table.into(),
        }
    }

    /// The backfill the Lambda runs: clients from `sdk`, the event table and the archive
    /// bucket from `config`.
    pub fn from_config(sdk: &aws_config::SdkConfig, config: &Config) -> Result<Self, Error> {
        Config::require(&config.events_table, "EVENTS_TABLE")?;
        Config::require(&config.archive_bucket, "ARCHIVE_BUCKET")?;
        Ok(Self::new(
            aws_sdk_dynamodb::Client::new(sdk),
            Archive::new(
                crate::store::archive::s3_client(sdk),
                &config.archive_bucket,
            ),
            &config.events_table,
        ))
    }

    /// The archive it repairs.
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// The events of the days of `range` that the event table holds and the archive does not
    /// (a consistent scan of the event table; every archive object of those days is read).
    pub async fn check(&self, range: &DateRange) -> Result<ArchiveCheck, Error> {
        let events = scan_events(&self.dynamodb, &self.events_table, range).await?;
        let archived = self.archive.archived_event_ids(range).await?;
        Ok(ArchiveCheck {
            range: *range,
            events: events.len(),
            missing: missing_from_archive(&events, &archived),
        })
    }

    /// Checks `range` and writes the missing events back under deterministic keys. Idempotent:
    /// a second run finds nothing missing and writes nothing.
    pub async fn backfill(&self, range: &DateRange) -> Result<Backfill, Error> {
        let check = self.check(range).await?;
        let mut written = Vec::new();
        for object in backfill_objects(&check.missing)? {
            self.archive.put(&object).await?;
            written.push(WrittenObject {
                key: object.key.clone(),
                events: object.events.len(),
            });
        }
        Ok(Backfill { check, written })
    }

    /// Backfills the days the batch of `record` can hold ([`OnFailureRecord::covering_range`]).
    pub async fn repair(&self, record: &OnFailureRecord) -> Result<Backfill, Error> {
        self.backfill(&record.covering_range()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lambda's on-failure record for a DynamoDB stream batch, as it lands on the DLQ.
    const ON_FAILURE: &str = r#"{
        "requestContext": {"requestId": "r-1", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f", "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-11-03T10:00:00.000Z",
        "DDBStreamBatchInfo": {
            "shardId": "shardId-00000001",
            "startSequenceNumber": "4300000000000000000001",
            "endSequenceNumber": "4300000000000000000009",
            "approximateArrivalOfFirstRecord": "2026-11-02T00:00:01Z",
            "approximateArrivalOfLastRecord": "2026-11-02T09:00:00Z",
            "batchSize": 9,
            "streamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/ftgo-events/stream/2026-11-01T00:00:00.000"
        }
    }"#;

    fn range(from: &str, to: &str) -> DateRange {
        DateRange::parse(Some(from), Some(to)).unwrap()
    }

    #[test]
    fn a_dead_letter_names_its_shard_and_range_and_is_covered_by_the_days_it_spans() {
        let record = OnFailureRecord::parse(ON_FAILURE).unwrap();
        assert_eq!(
            record.describe(),
            "shard shardId-00000001 sequence 4300000000000000000001..4300000000000000000009"
        );
        assert_eq!(record.request_context.condition, "RetryAttemptsExhausted");
        assert_eq!(record.batch.batch_size, 9);
        // The day before the first arrival is included: an event occurs before it arrives.
        assert_eq!(record.covering_range(), range("2026-11-01", "2026-11-02"));
        assert!(record.covered_by(&DateRange::default()));
        assert!(record.covered_by(&range("2026-11-01", "2026-11-02")));
        assert!(record.covered_by(&range("2026-10-01", "2026-12-02")));
        assert!(!record.covered_by(&range("2026-11-02", "2026-11-02")));
        assert!(!record.covered_by(&range("2026-11-01", "2026-11-01")));
    }

    #[test]
    fn what_is_not_an_on_failure_record_is_refused() {
        let reordered = ON_FAILURE.replace("2026-11-02T00:00:01Z", "2026-11-03T00:00:01Z");
        for body in [
            "not json",
            "{}",
            r#"{"DDBStreamBatchInfo":{"shardId":"s"}}"#,
            &ON_FAILURE.replace("2026-11-02T09:00:00Z", "yesterday"),
            &reordered,
        ] {
            assert!(OnFailureRecord::parse(body).is_err(), "{body}");
        }
    }

    #[test]
    fn a_record_round_trips_through_json() {
        let record = OnFailureRecord::parse(ON_FAILURE).unwrap();
        let again = OnFailureRecord::parse(&serde_json::to_string(&record).unwrap()).unwrap();
        assert_eq!(record, again);
    }
}
