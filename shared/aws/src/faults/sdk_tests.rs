//! The layer in front of a canned server, driven through the real SDK clients: each fault is
//! classified by the SDK as AWS's would be (throttling and 5xx retried, a transaction in
//! progress retried until it gives up), and the requests that reach the server are counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_types::body::SdkBody;

use super::*;

const ATTEMPTS: u32 = 4;

/// A server that answers every request 200 with `body` and counts what reaches it.
#[derive(Debug, Clone)]
struct Canned {
    body: &'static str,
    received: Arc<AtomicUsize>,
}

impl HttpConnector for Canned {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        self.received.fetch_add(1, Ordering::SeqCst);
        let response = HttpResponse::new(http::StatusCode::OK.into(), SdkBody::from(self.body));
        HttpConnectorFuture::ready(Ok(response))
    }
}

fn server(body: &'static str) -> (SharedHttpClient, Arc<AtomicUsize>) {
    let canned = Canned {
        body,
        received: Arc::default(),
    };
    let received = canned.received.clone();
    let client = http_client_fn(move |_, _| SharedHttpConnector::new(canned.clone()));
    (client, received)
}

fn sdk(layer: &FaultLayer, inner: SharedHttpClient) -> aws_config::SdkConfig {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("k", "s", None, None, "test"),
        ))
        .endpoint_url("http://127.0.0.1:1")
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_millis(300))
                .build(),
        )
        .http_client(inner)
        .build();
    layer.apply(&sdk)
}

fn dynamodb(layer: &FaultLayer) -> (aws_sdk_dynamodb::Client, Arc<AtomicUsize>) {
    let (inner, received) = server("{}");
    (aws_sdk_dynamodb::Client::new(&sdk(layer, inner)), received)
}

async fn put(client: &aws_sdk_dynamodb::Client) -> Result<(), String> {
    client
        .put_item()
        .table_name("orders")
        .item("id", aws_sdk_dynamodb::types::AttributeValue::S("1".into()))
        .send()
        .await
        .map(|_| ())
        .map_err(|error| error.code().unwrap_or("no code").to_owned())
}

async fn transact(client: &aws_sdk_dynamodb::Client) -> Result<(), String> {
    let put = aws_sdk_dynamodb::types::Put::builder()
        .table_name("events")
        .item("id", aws_sdk_dynamodb::types::AttributeValue::S("1".into()))
        .build()
        .map_err(|e| e.to_string())?;
    client
        .transact_write_items()
        .transact_items(
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .put(put)
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|error| error.code().unwrap_or("no code").to_owned())
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_and_never_reaches_the_server() {
    let layer = FaultLayer::new(FaultPlan::scripted());
    layer.push_rule(Rule::new(FaultKind::Throttle).operation("PutItem").times(2));
    let (client, received) = dynamodb(&layer);
    assert_eq!(put(&client).await, Ok(()));
    assert_eq!(received.load(Ordering::SeqCst), 1);
    assert_eq!(layer.counts().of(FaultKind::Throttle, "PutItem"), 2);
}

#[tokio::test]
async fn every_dynamodb_throttle_code_is_read_by_the_sdk() {
    let layer = FaultLayer::new(FaultPlan::scripted());
    layer.push_rule(Rule::new(FaultKind::Throttle).always());
    let (client, received) = dynamodb(&layer);
    let mut codes = Vec::new();
    // The SDK reports the last attempt's error; the code is drawn per attempt.
    for _ in 0..15 {
        codes.push(put(&client).await.unwrap_err());
    }
    codes.sort();
    codes.dedup();
    assert_eq!(
        codes,
        [
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
            "ThrottlingException"
        ]
    );
    assert_eq!(received.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_lost_answer_is_retried_and_the_retry_reaches_the_server_again() {
    let layer = FaultLayer::new(FaultPlan::scripted());
    layer.push_rule(Rule::new(FaultKind::LostAnswer).operation("TransactWriteItems"));
    let (client, received) = dynamodb(&layer);
    assert_eq!(transact(&client).await, Ok(()));
    assert_eq!(received.load(Ordering::SeqCst), 2, "the write landed twice");
}

#[tokio::test]
async fn a_transaction_in_progress_exhausts_the_retries_after_the_first_attempt_landed() {
    let layer = FaultLayer::new(FaultPlan::scripted().in_progress_retries(ATTEMPTS - 1));
    layer.push_rule(Rule::new(FaultKind::TransactionInProgress));
    let (client, received) = dynamodb(&layer);
    assert_eq!(
        transact(&client).await,
        Err("TransactionInProgressException".into())
    );
    assert_eq!(
        received.load(Ordering::SeqCst),
        1,
        "the first attempt reached the server"
    );
    assert_eq!(
        layer.counts().of_kind(FaultKind::TransactionInProgress),
        u64::from(ATTEMPTS)
    );
    // A new call with the same token would find it settled; a new token is untouched.
    assert_eq!(transact(&client).await, Ok(()));
}

#[tokio::test]
async fn a_500_after_the_write_is_retried_as_transient() {
    let layer = FaultLayer::new(FaultPlan::scripted());
    layer.push_rule(Rule::new(FaultKind::ErrorAfter).operation("PutItem"));
    let (client, received) = dynamodb(&layer);
    assert_eq!(put(&client).await, Ok(()));
    assert_eq!(received.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn errors_before_never_reach_the_server_and_surface_when_they_persist() {
    let layer = FaultLayer::new(FaultPlan::scripted());
    layer.push_rule(Rule::new(FaultKind::ErrorBefore).always());
    let (client, received) = dynamodb(&layer);
    let code = put(&client).await.unwrap_err();
    assert!(
        ["InternalServerError", "ServiceUnavailable"].contains(&code.as_str()),
        "{code}"
    );
    assert_eq!(received.load(Ordering::SeqCst), 0);
    assert_eq!(
        layer.counts().of_kind(FaultKind::ErrorBefore),
        u64::from(ATTEMPTS)
    );
}

#[tokio::test]
async fn a_slow_answer_past_the_attempt_timeout_is_retried_after_the_write_landed() {
    let layer = FaultLayer::new(FaultPlan::scripted().slow_delay(Duration::from_secs(5)));
    layer.push_rule(Rule::new(FaultKind::Slow).operation("PutItem"));
    let (client, received) = dynamodb(&layer);
    assert_eq!(put(&client).await, Ok(()));
    assert_eq!(received.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn s3_slow_down_is_retried() {
    let layer = FaultLayer::new(FaultPlan::scripted());
    layer.push_rule(
        Rule::new(FaultKind::Throttle)
            .operation("PutObject")
            .resource("archive"),
    );
    let (inner, received) = server("");
    let config = aws_sdk_s3::config::Builder::from(&sdk(&layer, inner))
        .force_path_style(true)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(config);
    let put = s3
        .put_object()
        .bucket("archive")
        .key("a/b.json")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"{}"))
        .send()
        .await;
    assert!(put.is_ok(), "{put:?}");
    assert_eq!(received.load(Ordering::SeqCst), 1);
    assert_eq!(layer.counts().of(FaultKind::Throttle, "PutObject"), 1);
}

#[tokio::test]
async fn sqs_and_secrets_manager_throttles_carry_their_codes() {
    let layer = FaultLayer::new(FaultPlan::scripted());
    layer.push_rule(Rule::new(FaultKind::Throttle).always());
    let (inner, received) = server("{}");
    let config = sdk(&layer, inner);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let error = sqs
        .get_queue_url()
        .queue_name("dlq")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("RequestThrottled"));
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let error = secrets
        .get_secret_value()
        .secret_id("keys")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ThrottlingException"));
    assert_eq!(received.load(Ordering::SeqCst), 0);
    assert_eq!(layer.counts().total(), u64::from(2 * ATTEMPTS));
}

#[tokio::test]
async fn a_stopped_layer_lets_everything_through_and_injects_again_when_started() {
    let layer = FaultLayer::new(FaultPlan::scripted());
    layer.push_rule(Rule::new(FaultKind::ErrorBefore).always());
    layer.stop();
    let (client, received) = dynamodb(&layer);
    assert_eq!(put(&client).await, Ok(()));
    assert_eq!(
        (received.load(Ordering::SeqCst), layer.counts().total()),
        (1, 0)
    );
    layer.start();
    assert!(put(&client).await.is_err());
}

#[test]
fn the_environment_switches_it_on_and_a_bad_spec_is_an_error() {
    let off = FaultLayer::from_lookup(|_| None).unwrap();
    assert!(off.is_none());
    let on = FaultLayer::from_lookup(|name| (name == FAULTS_ENV).then(|| "1:0.5".into()));
    assert!(on.unwrap().is_some());
    let bad = FaultLayer::from_lookup(|name| (name == FAULTS_ENV).then(|| "1:5".into()));
    assert!(bad.is_err());
}

#[tokio::test]
async fn injections_are_appended_to_the_log_one_json_line_each() {
    let dir = std::env::temp_dir().join(format!("ftgo-faults-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("faults.jsonl");
    let layer = FaultLayer::new(FaultPlan::scripted());
    layer.log_to(&path).unwrap();
    layer.push_rule(Rule::new(FaultKind::Throttle).operation("PutItem").times(3));
    let (client, _) = dynamodb(&layer);
    assert_eq!(put(&client).await, Ok(()));
    let (counts, unreadable) = FaultCounts::from_log(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(
        (counts.of(FaultKind::Throttle, "PutItem"), unreadable),
        (3, 0)
    );
    std::fs::remove_dir_all(dir).unwrap();
}
