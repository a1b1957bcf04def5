//! Lambda's on-failure destination message for stream event sources.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

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
/// gives records up: `requestContext`, `responseContext`, `version`, `timestamp`,
/// `DDBStreamBatchInfo`.
pub fn on_failure_message(
    report: &FailureReport,
    origin: &FailureOrigin<'_>,
    request_id: &str,
    now: DateTime<Utc>,
) -> Value {
    let mut response_context = json!({
        "statusCode": 200,
        "executedVersion": "$LATEST",
    });
    if let Some(error) = &report.function_error {
        response_context["functionError"] = json!(error);
    }
    json!({
        "requestContext": {
            "requestId": request_id,
            "functionArn": origin.function_arn,
            "condition": report.condition.as_str(),
            "approximateInvokeCount": report.approximate_invoke_count,
        },
        "responseContext": response_context,
        "version": "1.0",
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "DDBStreamBatchInfo": {
            "shardId": origin.shard_id,
            "startSequenceNumber": report.start_sequence_number,
            "endSequenceNumber": report.end_sequence_number,
            "approximateArrivalOfFirstRecord": report.first_arrival.to_rfc3339_opts(SecondsFormat::Secs, true),
            "approximateArrivalOfLastRecord": report.last_arrival.to_rfc3339_opts(SecondsFormat::Secs, true),
            "batchSize": report.batch_size,
            "streamArn": origin.stream_arn,
        }
    })
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
        let m = on_failure_message(&report, &origin, "r-1", t);
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
    }
}
