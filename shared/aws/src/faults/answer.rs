//! The answers the layer makes in place of the server's, in each service's wire shape (JSON
//! `__type` for the JSON protocols, `x-amzn-query-error` for SQS, an XML `<Error>` for S3), so
//! that the SDK classifies them exactly as it classifies AWS's: throttling by error code, 5xx as
//! transient by status.

use super::request::Service;

/// An answer on the wire: status, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The error code the SDK will read (`ProvisionedThroughputExceededException`, `SlowDown`, …).
    pub code: &'static str,
    /// Headers beyond the defaults.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: String,
}

/// DynamoDB's throttling errors: per table or index, per request rate, per account.
const DYNAMODB_THROTTLES: [(&str, &str, &str); 3] = [
    (
        "com.amazonaws.dynamodb.v20120810",
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. \
         Consider increasing your provisioning level with the UpdateTable API.",
    ),
    (
        "com.amazon.coral.availability",
        "ThrottlingException",
        "Rate of requests exceeds the allowed throughput.",
    ),
    (
        "com.amazonaws.dynamodb.v20120810",
        "RequestLimitExceeded",
        "Throughput exceeds the current throughput limit for your account.",
    ),
];

/// The service's throttling answer; `pick` chooses among DynamoDB's three.
pub fn throttle(service: Service, pick: u64) -> WireAnswer {
    match service {
        Service::DynamoDb => {
            let index = usize::try_from(pick % 3).unwrap_or_default();
            let (namespace, code, message) = DYNAMODB_THROTTLES[index];
            json_1_0(400, namespace, code, message)
        }
        Service::DynamoDbStreams => json_1_0(
            400,
            "com.amazon.coral.availability",
            "ThrottlingException",
            "Rate exceeded",
        ),
        Service::Sqs => sqs(400, "RequestThrottled", "Sender", "Rate exceeded"),
        Service::SecretsManager => json_1_1(400, "ThrottlingException", "Rate exceeded"),
        Service::S3 | Service::Other => s3(503, "SlowDown", "Please reduce your request rate."),
    }
}

/// `TransactionInProgressException`: a retried `TransactWriteItems` whose first attempt with
/// the same `ClientRequestToken` is still running.
pub fn transaction_in_progress() -> WireAnswer {
    json_1_0(
        400,
        "com.amazonaws.dynamodb.v20120810",
        "TransactionInProgressException",
        "Transaction is ongoing for the idempotency token",
    )
}

/// A 500 (internal error) or 503 (service unavailable) answer.
pub fn server_error(service: Service, status: u16) -> WireAnswer {
    let unavailable = status == 503;
    match (service, unavailable) {
        (Service::DynamoDb | Service::DynamoDbStreams, false) => json_1_0(
            500,
            "com.amazonaws.dynamodb.v20120810",
            "InternalServerError",
            "Internal server error",
        ),
        (Service::DynamoDb | Service::DynamoDbStreams, true) => json_1_0(
            503,
            "com.amazon.coral.availability",
            "ServiceUnavailable",
            "The service is currently unavailable or busy.",
        ),
        (Service::Sqs, false) => sqs(500, "InternalError", "Receiver", "Internal error"),
        (Service::Sqs, true) => sqs(503, "ServiceUnavailable", "Receiver", "Unavailable"),
        (Service::SecretsManager, false) => json_1_1(500, "InternalServiceError", "Internal error"),
        (Service::SecretsManager, true) => json_1_1(503, "ServiceUnavailable", "Unavailable"),
        (Service::S3 | Service::Other, false) => s3(
            500,
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        (Service::S3 | Service::Other, true) => s3(
            503,
            "ServiceUnavailable",
            "Service is unable to handle request.",
        ),
    }
}

fn json_1_0(status: u16, namespace: &str, code: &'static str, message: &str) -> WireAnswer {
    json(
        status,
        "application/x-amz-json-1.0",
        &format!("{namespace}#{code}"),
        code,
        message,
    )
}

fn json_1_1(status: u16, code: &'static str, message: &str) -> WireAnswer {
    json(status, "application/x-amz-json-1.1", code, code, message)
}

fn sqs(status: u16, code: &'static str, fault: &str, message: &str) -> WireAnswer {
    let mut answer = json_1_0(status, "com.amazonaws.sqs", code, message);
    answer
        .headers
        .push(("x-amzn-query-error", format!("{code};{fault}")));
    answer
}

fn json(
    status: u16,
    content_type: &str,
    type_: &str,
    code: &'static str,
    message: &str,
) -> WireAnswer {
    WireAnswer {
        status,
        code,
        headers: vec![
            ("content-type", content_type.to_owned()),
            ("x-amzn-requestid", "ftgo-fault-injected".to_owned()),
        ],
        body: serde_json::json!({ "__type": type_, "message": message }).to_string(),
    }
}

fn s3(status: u16, code: &'static str, message: &str) -> WireAnswer {
    WireAnswer {
        status,
        code,
        headers: vec![
            ("content-type", "application/xml".to_owned()),
            ("x-amz-request-id", "FTGOFAULTINJECTED".to_owned()),
        ],
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>{message}</Message><RequestId>FTGOFAULTINJECTED</RequestId>\
             <HostId>ftgo-faults</HostId></Error>"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_throttles_rotate_through_its_three_codes() {
        let codes: Vec<_> = (0..3)
            .map(|pick| throttle(Service::DynamoDb, pick).code)
            .collect();
        assert_eq!(
            codes,
            [
                "ProvisionedThroughputExceededException",
                "ThrottlingException",
                "RequestLimitExceeded"
            ]
        );
        let answer = throttle(Service::DynamoDb, 0);
        assert_eq!(answer.status, 400);
        assert!(answer.body.contains(
            r#""__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException""#
        ));
    }

    #[test]
    fn s3_throttles_with_a_503_slow_down_in_xml() {
        let answer = throttle(Service::S3, 0);
        assert_eq!((answer.status, answer.code), (503, "SlowDown"));
        assert!(answer.body.contains("<Code>SlowDown</Code>"));
    }

    #[test]
    fn sqs_errors_carry_the_query_compatible_header() {
        let answer = throttle(Service::Sqs, 0);
        assert!(
            answer
                .headers
                .contains(&("x-amzn-query-error", "RequestThrottled;Sender".to_owned()))
        );
    }

    #[test]
    fn server_errors_have_the_status_asked_for() {
        for service in [
            Service::DynamoDb,
            Service::Sqs,
            Service::SecretsManager,
            Service::S3,
        ] {
            assert_eq!(server_error(service, 500).status, 500);
            assert_eq!(server_error(service, 503).status, 503);
        }
    }
}
