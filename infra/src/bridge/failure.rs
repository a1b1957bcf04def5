//! Lambda's on-failure destination message for stream event sources.

use chrono::{DateTime, SecondsFormat, Utc};
use ftgo_aws::on_failure::{
    OnFailureRecord, OnFailureRequestContext, OnFailureResponseContext, StreamBatchInfo,
};
use time::OffsetDateTime;

use super::shard::FailureReport;

/// Where the given-up records came from and who was invoked.
#[derive(Clone, Debug)]
pub struct FailureOrigin<'a> {
    /// `requestContext.functionArn`.
    pub function_arn: &'a str,
    /// The stream's ARN.
    pub stream_arn: &'a str,
    /// The shard's id.
    pub shard_id: &'a str,
}

/// The message Lambda sends to a DynamoDB event source's `DestinationConfig.OnFailure` when it
/// gives records up.
pub fn on_failure_message(
    report: &FailureReport,
    origin: &FailureOrigin<'_>,
    request_id: &str,
    now: DateTime<Utc>,
) -> OnFailureRecord {
    OnFailureRecord {
        request_context: OnFailureRequestContext {
            request_id: request_id.to_owned(),
            function_arn: origin.function_arn.to_owned(),
            condition: report.condition.as_str().to_owned(),
            approximate_invoke_count: report.approximate_invoke_count.into(),
        },
        response_context: OnFailureResponseContext {
            status_code: 200,
            executed_version: Some("$LATEST".to_owned()),
            function_error: report.function_error.clone(),
        },
        version: "1.0".to_owned(),
        timestamp: now.to_rfc3339_opts(SecondsFormat::Millis, true),
        batch: StreamBatchInfo {
            shard_id: origin.shard_id.to_owned(),
            start_sequence_number: report.start_sequence_number.clone(),
            end_sequence_number: report.end_sequence_number.clone(),
            approximate_arrival_of_first_record: arrival(report.first_arrival),
            approximate_arrival_of_last_record: arrival(report.last_arrival),
            batch_size: report.batch_size as u64,
            stream_arn: origin.stream_arn.to_owned(),
        },
    }
}

/// An arrival time, to the second as the bridge reports it. Stream arrival times are recent, well
/// inside the range of RFC 3339 years; one outside it (never seen) would read as the epoch.
fn arrival(t: DateTime<Utc>) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::shard::Condition;

    #[test]
    fn the_message_has_lambdas_shape() {
        let t = DateTime::from_timestamp(1_573_692_000, 0).expect("time");
        let report = FailureReport {
            condition: Condition::RetryAttemptsExhausted,
            approximate_invoke_count: 3,
            function_error: Some("Unhandled".to_owned()),
            start_sequence_number: "100".to_owned(),
            end_sequence_number: "300".to_owned(),
            first_arrival: t,
            last_arrival: t,
            batch_size: 3,
        };
        let origin = FailureOrigin {
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f",
            stream_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
            shard_id: "shardId-1",
        };
        let m = serde_json::to_value(on_failure_message(&report, &origin, "r-1", t)).expect("json");
        assert_eq!(m["requestContext"]["condition"], "RetryAttemptsExhausted");
        assert_eq!(m["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(m["requestContext"]["functionArn"], origin.function_arn);
        assert_eq!(m["responseContext"]["statusCode"], 200);
        assert_eq!(m["responseContext"]["executedVersion"], "$LATEST");
        assert_eq!(m["responseContext"]["functionError"], "Unhandled");
        assert_eq!(m["version"], "1.0");
        assert_eq!(m["timestamp"], "2019-11-14T00:40:00.000Z");
        let info = &m["DDBStreamBatchInfo"];
        assert_eq!(info["shardId"], "shardId-1");
        assert_eq!(info["startSequenceNumber"], "100");
        assert_eq!(info["endSequenceNumber"], "300");
        assert_eq!(
            info["approximateArrivalOfFirstRecord"],
            "2019-11-14T00:40:00Z"
        );
        assert_eq!(info["batchSize"], 3);
        assert_eq!(info["streamArn"], origin.stream_arn);
        // What the bridge writes, the readers (ftgo dlq, the archive backfiller) read back.
        let read = OnFailureRecord::parse(&m.to_string()).expect("an on-failure record");
        assert_eq!(read, on_failure_message(&report, &origin, "r-1", t));
    }
}
