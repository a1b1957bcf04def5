//! Lambda's on-failure record for a DynamoDB stream batch: the message Lambda sends to an event
//! source's `DestinationConfig.OnFailure` queue when it gives a batch up (retries exhausted,
//! records too old). It names the shard, the sequence range and the arrival times of the
//! skipped records, not the records themselves.
//!
//! One model for every reader and writer: [`crate::dlq`] classifies and re-drives such
//! messages, [`crate::archive_backfill`] repairs the archive from the days they span, and the
//! local bridge (`ftgo-infra`) writes them as Lambda would.

use aws_lambda_events::sqs::SqsMessage;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Error;
use crate::store::archive::DateRange;

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
}

/// What the archive needs of an on-failure record: the days its batch spans.
impl OnFailureRecord {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Lambda's on-failure record for a DynamoDB stream batch, as it lands on the DLQ.
    pub(crate) const ON_FAILURE: &str = r#"{
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

    #[test]
    fn a_record_names_its_shard_range_condition_and_arrivals() {
        let record = OnFailureRecord::parse(ON_FAILURE).unwrap();
        assert_eq!(
            record.describe(),
            "shard shardId-00000001 sequence 4300000000000000000001..4300000000000000000009"
        );
        assert_eq!(record.request_context.condition, "RetryAttemptsExhausted");
        assert_eq!(record.request_context.approximate_invoke_count, 11);
        assert_eq!(
            record.response_context.function_error.as_deref(),
            Some("Unhandled")
        );
        assert_eq!(record.batch.batch_size, 9);
        assert_eq!(
            record.batch.approximate_arrival_of_first_record,
            time::macros::datetime!(2026-11-02 00:00:01 UTC)
        );
    }

    #[test]
    fn an_sqs_message_is_read_by_its_body() {
        let mut message = SqsMessage::default();
        message.body = Some(ON_FAILURE.to_owned());
        assert_eq!(
            OnFailureRecord::of_message(&message).unwrap(),
            OnFailureRecord::parse(ON_FAILURE).unwrap()
        );
        assert!(OnFailureRecord::of_message(&SqsMessage::default()).is_err());
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
