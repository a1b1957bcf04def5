//! What a request is: its service, operation and the resources it names, read from the wire
//! (`X-Amz-Target` for the JSON protocols, method and path for S3).

use std::fmt;

use serde_json::Value;

/// An AWS service the layer knows the failure shapes of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// DynamoDB (`DynamoDB_20120810.*`, JSON 1.0).
    DynamoDb,
    /// DynamoDB Streams (`DynamoDBStreams_20120810.*`, JSON 1.0).
    DynamoDbStreams,
    /// SQS (`AmazonSQS.*`, JSON 1.0, query-compatible errors).
    Sqs,
    /// Secrets Manager (`secretsmanager.*`, JSON 1.1).
    SecretsManager,
    /// S3 (REST-XML): every request without an `X-Amz-Target`.
    S3,
    /// A JSON-protocol service the layer does not model (e.g. CloudWatch): passed through.
    Other,
}

impl Service {
    /// The service's short name in counts and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::DynamoDb => "dynamodb",
            Self::DynamoDbStreams => "dynamodbstreams",
            Self::Sqs => "sqs",
            Self::SecretsManager => "secretsmanager",
            Self::S3 => "s3",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The parts of a request the schedule and the rules decide on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// The service.
    pub service: Service,
    /// The operation (`PutItem`, `TransactWriteItems`, `SendMessage`, `PutObject`, …).
    pub operation: String,
    /// The resources the request names: table names, the queue name, the bucket, the secret.
    pub resources: Vec<String>,
    /// What ties the attempts of one logical write together: a `TransactWriteItems`'
    /// `ClientRequestToken`, else the SDK's `amz-sdk-invocation-id` (the same on every attempt).
    pub token: Option<String>,
}

impl RequestInfo {
    /// Reads a request's service, operation, resources and token from its method, URI,
    /// headers and (in-memory) body.
    pub fn read(
        method: &str,
        uri: &str,
        header: impl Fn(&str) -> Option<String>,
        body: Option<&[u8]>,
    ) -> Self {
        let invocation = header("amz-sdk-invocation-id");
        match header("x-amz-target") {
            Some(target) => Self::json_protocol(&target, body, invocation),
            None => Self::s3(method, uri, header("host").as_deref(), invocation),
        }
    }

    fn json_protocol(target: &str, body: Option<&[u8]>, invocation: Option<String>) -> Self {
        let (prefix, operation) = target.split_once('.').unwrap_or(("", target));
        let service = match prefix {
            "DynamoDB_20120810" => Service::DynamoDb,
            "DynamoDBStreams_20120810" => Service::DynamoDbStreams,
            "AmazonSQS" => Service::Sqs,
            "secretsmanager" => Service::SecretsManager,
            _ => Service::Other,
        };
        let json: Option<Value> = body.and_then(|bytes| serde_json::from_slice(bytes).ok());
        let mut resources = Vec::new();
        if let Some(json) = &json {
            collect_resources(json, &mut resources);
        }
        resources.sort();
        resources.dedup();
        let token = json
            .as_ref()
            .and_then(|json| json.get("ClientRequestToken"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or(invocation);
        Self {
            service,
            operation: operation.to_owned(),
            resources,
            token,
        }
    }

    fn s3(method: &str, uri: &str, host: Option<&str>, invocation: Option<String>) -> Self {
        let without_scheme = uri.split_once("://").map_or(uri, |(_, rest)| rest);
        let (authority, path_and_query) = without_scheme
            .split_once('/')
            .map_or((without_scheme, ""), |(a, p)| (a, p));
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let host = host.unwrap_or(authority);
        // Virtual-hosted style (`<bucket>.s3.<region>.amazonaws.com`) or path style.
        let (bucket, key) = match host.split_once(".s3.") {
            Some((bucket, _)) => (bucket.to_owned(), path),
            None => {
                let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
                (bucket.to_owned(), key)
            }
        };
        let has = |name: &str| {
            query
                .split('&')
                .any(|pair| pair.split('=').next() == Some(name))
        };
        let operation = match (method, key.is_empty()) {
            ("GET", true) if has("list-type") => "ListObjectsV2",
            ("GET", true) => "ListObjects",
            ("GET", false) => "GetObject",
            ("HEAD", true) => "HeadBucket",
            ("HEAD", false) => "HeadObject",
            ("PUT", true) => "CreateBucket",
            ("PUT", false) if has("uploadId") => "UploadPart",
            ("PUT", false) => "PutObject",
            ("POST", _) if has("delete") => "DeleteObjects",
            ("POST", _) if has("uploads") => "CreateMultipartUpload",
            ("POST", _) if has("uploadId") => "CompleteMultipartUpload",
            ("DELETE", true) => "DeleteBucket",
            ("DELETE", false) => "DeleteObject",
            _ => "Unknown",
        };
        Self {
            service: Service::S3,
            operation: operation.to_owned(),
            resources: if bucket.is_empty() {
                Vec::new()
            } else {
                vec![bucket]
            },
            token: invocation,
        }
    }

    /// Whether the request names `resource` (a table, queue, bucket or secret name).
    pub fn names(&self, resource: &str) -> bool {
        self.resources.iter().any(|r| r == resource)
    }
}

/// Table names (`TableName` anywhere, the keys of `RequestItems`), the queue's name (the last
/// segment of `QueueUrl`) and the secret (`SecretId`).
fn collect_resources(json: &Value, into: &mut Vec<String>) {
    match json {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("TableName" | "SecretId", Value::String(name)) => into.push(name.clone()),
                    ("QueueUrl", Value::String(url)) => {
                        into.push(url.rsplit('/').next().unwrap_or(url).to_owned());
                    }
                    ("RequestItems", Value::Object(tables)) => {
                        into.extend(tables.keys().cloned());
                    }
                    ("Item" | "Key" | "ExpressionAttributeValues" | "ExclusiveStartKey", _) => {}
                    _ => collect_resources(value, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_resources(item, into)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(target: &str, body: &str) -> RequestInfo {
        RequestInfo::read(
            "POST",
            "http://127.0.0.1:4566/",
            |name| match name {
                "x-amz-target" => Some(target.to_owned()),
                "amz-sdk-invocation-id" => Some("inv-1".to_owned()),
                _ => None,
            },
            Some(body.as_bytes()),
        )
    }

    fn s3(method: &str, uri: &str) -> RequestInfo {
        RequestInfo::read(method, uri, |_| None, None)
    }

    #[test]
    fn reads_a_dynamodb_transaction_with_its_tables_and_token() {
        let info = json(
            "DynamoDB_20120810.TransactWriteItems",
            r#"{"ClientRequestToken":"tok","TransactItems":[
                {"Put":{"TableName":"ftgo-events","Item":{"TableName":{"S":"not a table"}}}},
                {"Put":{"TableName":"ftgo-idempotency","Item":{}}}]}"#,
        );
        assert_eq!(info.service, Service::DynamoDb);
        assert_eq!(info.operation, "TransactWriteItems");
        assert_eq!(info.resources, ["ftgo-events", "ftgo-idempotency"]);
        assert_eq!(info.token.as_deref(), Some("tok"));
    }

    #[test]
    fn a_request_without_a_client_token_is_tied_by_its_invocation_id() {
        let info = json(
            "DynamoDB_20120810.BatchWriteItem",
            r#"{"RequestItems":{"ftgo-order-history":[]}}"#,
        );
        assert_eq!(info.resources, ["ftgo-order-history"]);
        assert_eq!(info.token.as_deref(), Some("inv-1"));
    }

    #[test]
    fn reads_sqs_secrets_manager_and_streams() {
        let sqs = json(
            "AmazonSQS.SendMessage",
            r#"{"QueueUrl":"http://127.0.0.1:4566/123456789012/ftgo-projector-dlq"}"#,
        );
        assert_eq!(
            (sqs.service, sqs.operation.as_str()),
            (Service::Sqs, "SendMessage")
        );
        assert_eq!(sqs.resources, ["ftgo-projector-dlq"]);
        let secret = json("secretsmanager.GetSecretValue", r#"{"SecretId":"keys"}"#);
        assert_eq!(secret.service, Service::SecretsManager);
        assert!(secret.names("keys"));
        let streams = json("DynamoDBStreams_20120810.GetRecords", "{}");
        assert_eq!(streams.service, Service::DynamoDbStreams);
        assert_eq!(
            json("GraniteServiceVersion20100801.PutMetricData", "{}").service,
            Service::Other
        );
    }

    #[test]
    fn reads_s3_operations_in_path_and_virtual_host_style() {
        let put = s3("PUT", "http://127.0.0.1:4566/archive/events/2026/a.json.gz");
        assert_eq!(
            (put.operation.as_str(), put.resources.as_slice()),
            ("PutObject", &["archive".to_owned()][..])
        );
        assert_eq!(
            s3("GET", "http://127.0.0.1:4566/archive?list-type=2&prefix=x").operation,
            "ListObjectsV2"
        );
        assert_eq!(
            s3("GET", "http://127.0.0.1:4566/archive/k").operation,
            "GetObject"
        );
        assert_eq!(
            s3("POST", "http://127.0.0.1:4566/archive?delete").operation,
            "DeleteObjects"
        );
        assert_eq!(
            s3("PUT", "http://127.0.0.1:4566/archive").operation,
            "CreateBucket"
        );
        let hosted = s3("GET", "https://archive.s3.us-east-1.amazonaws.com/k");
        assert_eq!(
            (hosted.operation.as_str(), hosted.names("archive")),
            ("GetObject", true)
        );
    }
}
