//! The event-source bridge against moto server (through `infra/moto-server`, as the local stack
//! runs it), with a scripted function standing in for the runtime: a DynamoDB stream read in
//! order through partial batch failures, a poison record isolated by bisecting and given up to
//! the on-failure queue, SQS messages deleted only when processed, a cancelled transaction that
//! leaves stream iterators and both consumers reading, an invocation cut at the function's
//! `Timeout` and retried. Resources come from small templates of the test's own, provisioned the
//! way the local stack provisions `template.yaml`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test's set-up stops the test loudly"
)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use ftgo_infra::bridge::{Bridge, BridgeOptions};
use ftgo_infra::invoke::{Invocation, InvokeError, Invoker};
use ftgo_infra::provision::{ProvisionOptions, provision};
use ftgo_infra::stack::sdk_config;
use ftgo_infra::template::{Stack, Template};
use futures::future::BoxFuture;
use serde_json::{Value, json};

const TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Log:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-log"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: n, AttributeType: N}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: n, KeyType: RANGE}
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Dlq:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !Sub "${AWS::StackName}-dlq"}
  Jobs:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !Sub "${AWS::StackName}-jobs", VisibilityTimeout: 1}
  Consumer:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: consumer}}
    Properties:
      CodeUri: .
      Events:
        Stream:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Log.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 3
            FunctionResponseTypes: [ReportBatchItemFailures]
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 1
            DestinationConfig:
              OnFailure:
                Destination: !GetAtt Dlq.Arn
  Worker:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: worker}}
    Properties:
      CodeUri: .
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
"#;

/// moto server on a free port, killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto server as the local stack runs it: `infra/moto-server` (DynamoDB's isolation, and a
/// cancelled transaction rolled back in place).
fn moto() -> Option<Moto> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if !root.join(".venv/bin/python").exists() {
        eprintln!(
            "SKIPPED: .venv is missing (run `make .venv`); the bridge's moto tests did not run"
        );
        return None;
    }
    start_moto(&root.join("infra/moto-server"))
}

/// moto's own server, without the launcher's patches.
fn plain_moto() -> Option<Moto> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let server = root.join(".venv/bin/moto_server");
    if !server.is_file() {
        eprintln!(
            "SKIPPED: {} is missing (run `make .venv`)",
            server.display()
        );
        return None;
    }
    start_moto(&server)
}

fn start_moto(server: &std::path::Path) -> Option<Moto> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .ok()?;
    let child = Command::new(server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(moto)
}

/// Every invocation: (function, payload).
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<(String, Value)>>>);

/// The scripted functions. `consumer` fails record 4 once through `batchItemFailures`, and fails
/// outright whenever its batch holds record 7 (a poison record). `worker` reports message body
/// `b` failed the first time it sees it.
struct Script {
    calls: Calls,
    failed_once: Mutex<Vec<String>>,
}

impl Invoker for Script {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<Invocation, InvokeError>> {
        Box::pin(async move {
            let event: Value = serde_json::from_slice(&payload).expect("JSON payload");
            self.calls
                .0
                .lock()
                .expect("lock")
                .push((function.to_owned(), event.clone()));
            let records = event["Records"].as_array().cloned().unwrap_or_default();
            let mut once = self.failed_once.lock().expect("lock");
            match function {
                "consumer" => {
                    let ns: Vec<u64> = records.iter().map(record_n).collect();
                    if ns.contains(&7) {
                        return Ok(Invocation::failed(
                            json!({"errorType": "Poison", "errorMessage": "record 7"}).to_string(),
                        ));
                    }
                    if let Some(r) = records.iter().find(|r| record_n(r) == 4)
                        && !once.contains(&"4".to_owned())
                    {
                        once.push("4".to_owned());
                        let seq = r["dynamodb"]["SequenceNumber"].clone();
                        return Ok(Invocation::ok(
                            json!({"batchItemFailures": [{"itemIdentifier": seq}]}).to_string(),
                        ));
                    }
                    Ok(Invocation::ok(r#"{"batchItemFailures":[]}"#))
                }
                "worker" => {
                    let failures: Vec<Value> = records
                        .iter()
                        .filter(|m| m["body"] == "b" && !once.contains(&"b".to_owned()))
                        .map(|m| json!({"itemIdentifier": m["messageId"]}))
                        .collect();
                    if !failures.is_empty() {
                        once.push("b".to_owned());
                    }
                    Ok(Invocation::ok(
                        json!({"batchItemFailures": failures}).to_string(),
                    ))
                }
                other => panic!("unexpected function {other}"),
            }
        })
    }
}

fn record_n(record: &Value) -> u64 {
    record["dynamodb"]["NewImage"]["n"]["N"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_feeds_streams_and_queues_with_lambdas_semantics() {
    let Some(moto) = moto() else {
        return;
    };
    let template = Template::parse(
        TEMPLATE,
        Stack::named("bridge-test").with_endpoint(&moto.endpoint),
    )
    .expect("test template");
    let sdk = sdk_config(&moto.endpoint, "us-east-1").await;
    provision(&sdk, &template, &ProvisionOptions::everything())
        .await
        .expect("provision");
    let table = template.table("Log").expect("table").name.clone();
    let dlq = template.queue("Dlq").expect("dlq").url.clone();
    let jobs = template.queue("Jobs").expect("jobs").url.clone();

    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    for n in 1..=10 {
        dynamodb
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S("p".to_owned()))
            .item("n", AttributeValue::N(n.to_string()))
            .send()
            .await
            .expect("put");
    }
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    for body in ["a", "b", "c"] {
        sqs.send_message()
            .queue_url(&jobs)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }

    let calls = Calls::default();
    let script = Arc::new(Script {
        calls: calls.clone(),
        failed_once: Mutex::new(Vec::new()),
    });
    let bridge = Bridge::new(
        &sdk,
        &template,
        script,
        BridgeOptions {
            poll_interval: Duration::from_millis(50),
            discovery_interval: Duration::from_millis(200),
            retry_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            ..BridgeOptions::default()
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(bridge.run(
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));

    let delivered = |function: &str| -> Vec<Vec<Value>> {
        calls
            .0
            .lock()
            .expect("lock")
            .iter()
            .filter(|(f, _)| f == function)
            .map(|(_, e)| e["Records"].as_array().cloned().unwrap_or_default())
            .collect()
    };

    // The stream: every record is delivered, first deliveries in shard order, batches never
    // larger than BatchSize, and the shard moves past the poison record.
    until("record 10 to be processed", Duration::from_secs(30), || {
        delivered("consumer")
            .iter()
            .flatten()
            .any(|r| record_n(r) == 10)
    })
    .await;
    let batches = delivered("consumer");
    assert!(batches.iter().all(|b| b.len() <= 3), "BatchSize 3 holds");
    let flat: Vec<u64> = batches.iter().flatten().map(record_n).collect();
    let mut first_seen = Vec::new();
    for n in &flat {
        if !first_seen.contains(n) {
            first_seen.push(*n);
        }
    }
    assert_eq!(
        first_seen,
        (1..=10).collect::<Vec<_>>(),
        "in order, none skipped: {flat:?}"
    );
    assert!(
        flat.iter().filter(|n| **n == 4).count() >= 2,
        "record 4 is retried"
    );
    let first_event = &batches[0][0];
    assert_eq!(first_event["eventSource"], "aws:dynamodb");
    assert_eq!(first_event["eventName"], "INSERT");
    assert!(
        first_event["eventSourceARN"]
            .as_str()
            .is_some_and(|a| a.contains(&table))
    );
    assert_eq!(first_event["dynamodb"]["Keys"]["pk"]["S"], "p");

    // The poison record alone went to the on-failure queue, with Lambda's metadata.
    let seq_of_7 = batches
        .iter()
        .flatten()
        .find(|r| record_n(r) == 7)
        .map(|r| r["dynamodb"]["SequenceNumber"].clone())
        .expect("record 7 delivered");
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while messages.is_empty() && Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        messages.extend(
            out.messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_owned)),
        );
    }
    assert_eq!(messages.len(), 1, "one on-failure message: {messages:?}");
    let m: Value = serde_json::from_str(&messages[0]).expect("JSON");
    assert_eq!(m["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(
        m["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:123456789012:function:consumer"
    );
    assert_eq!(m["responseContext"]["functionError"], "Unhandled");
    assert_eq!(m["version"], "1.0");
    assert_eq!(m["DDBStreamBatchInfo"]["batchSize"], 1);
    assert_eq!(m["DDBStreamBatchInfo"]["startSequenceNumber"], seq_of_7);
    assert_eq!(m["DDBStreamBatchInfo"]["endSequenceNumber"], seq_of_7);
    assert!(
        m["DDBStreamBatchInfo"]["streamArn"]
            .as_str()
            .is_some_and(|a| a.contains(&table))
    );

    // The queue: the failed message came back after its visibility timeout and was processed;
    // everything processed was deleted.
    until(
        "message b to be delivered twice",
        Duration::from_secs(30),
        || {
            delivered("worker")
                .iter()
                .flatten()
                .filter(|m| m["body"] == "b")
                .count()
                >= 2
        },
    )
    .await;
    let bodies: Vec<String> = delivered("worker")
        .iter()
        .flatten()
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect();
    for body in ["a", "c"] {
        assert_eq!(
            bodies.iter().filter(|b| *b == body).count(),
            1,
            "{body} once: {bodies:?}"
        );
    }
    let worker_event = &delivered("worker")[0][0];
    assert_eq!(worker_event["eventSource"], "aws:sqs");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = sqs
        .get_queue_attributes()
        .queue_url(&jobs)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        )
        .send()
        .await
        .expect("attributes");
    let count = |name| {
        left.attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    };
    assert_eq!(
        count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages),
        0
    );
    assert_eq!(
        count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        0
    );

    let _ = stop.send(());
    running.await.expect("bridge stops");
    drop(moto);
}

const TWO_CONSUMERS: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 2
Resources:
  Log:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-log"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: n, AttributeType: N}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: n, KeyType: RANGE}
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Dlq:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !Sub "${AWS::StackName}-dlq"}
  First:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: first}}
    Properties:
      CodeUri: .
      Events:
        Stream:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Log.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 10
            MaximumRetryAttempts: 3
            DestinationConfig: {OnFailure: {Destination: !GetAtt Dlq.Arn}}
  Second:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: second}}
    Properties:
      CodeUri: .
      Events:
        Stream:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Log.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 10
            MaximumRetryAttempts: 3
            DestinationConfig: {OnFailure: {Destination: !GetAtt Dlq.Arn}}
"#;

async fn put_n(dynamodb: &aws_sdk_dynamodb::Client, table: &str, n: u64) {
    dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S("p".to_owned()))
        .item("n", AttributeValue::N(n.to_string()))
        .send()
        .await
        .expect("put");
}

/// A transaction that writes record `n` (if any) and then fails a condition on record
/// `existing`: DynamoDB cancels it, and no write happens.
async fn cancelled_transaction(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    n: Option<u64>,
    existing: u64,
) {
    use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
    let put = |k: u64| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(table)
                    .item("pk", AttributeValue::S("p".to_owned()))
                    .item("n", AttributeValue::N(k.to_string()))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .expect("put"),
            )
            .build()
    };
    let error = dynamodb
        .transact_write_items()
        .set_transact_items(Some(n.into_iter().chain([existing]).map(put).collect()))
        .send()
        .await
        .expect_err("the condition on the existing item fails");
    assert!(
        format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&error))
            .contains("TransactionCanceled"),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_transaction_leaves_shard_iterators_reading() {
    let Some(moto) = moto() else {
        return;
    };
    let template = Template::parse(
        TWO_CONSUMERS,
        Stack::named("rollback-test").with_endpoint(&moto.endpoint),
    )
    .expect("test template");
    let sdk = sdk_config(&moto.endpoint, "us-east-1").await;
    provision(&sdk, &template, &ProvisionOptions::everything())
        .await
        .expect("provision");
    let table = template.table("Log").expect("table").name.clone();
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
    let arn = dynamodb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("describe")
        .table()
        .and_then(|t| t.latest_stream_arn())
        .expect("a stream")
        .to_owned();
    let shard = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("describe stream")
        .stream_description()
        .and_then(|d| d.shards().first().and_then(|s| s.shard_id()))
        .expect("a shard")
        .to_owned();
    let iterator = streams
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(&shard)
        .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator")
        .shard_iterator()
        .expect("iterator")
        .to_owned();
    let keys = |out: &aws_sdk_dynamodbstreams::operation::get_records::GetRecordsOutput| {
        out.records()
            .iter()
            .filter_map(|r| {
                r.dynamodb()
                    .and_then(|d| d.keys())
                    .and_then(|k| k.get("n"))
                    .and_then(|v| v.as_n().ok())
                    .cloned()
            })
            .collect::<Vec<_>>()
    };

    put_n(&dynamodb, &table, 1).await;
    let first = streams
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .expect("records");
    assert_eq!(keys(&first), vec!["1"]);
    cancelled_transaction(&dynamodb, &table, Some(2), 1).await;
    put_n(&dynamodb, &table, 3).await;
    let next = streams
        .get_records()
        .shard_iterator(first.next_shard_iterator().expect("next iterator"))
        .send()
        .await
        .expect("records");
    assert_eq!(
        keys(&next),
        vec!["3"],
        "the iterator handed out before the cancelled transaction sees the next write, and \
         nothing of the cancelled one"
    );
    let item = dynamodb
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("p".to_owned()))
        .key("n", AttributeValue::N("2".to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("get");
    assert!(item.item().is_none(), "the cancelled write was rolled back");
}

/// Records each function's deliveries; `first` hangs on its first invocation when `hang_first`.
struct Recorder {
    calls: Calls,
    hang_first: Mutex<bool>,
    timed_out: Mutex<Vec<String>>,
}

impl Invoker for Recorder {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<Invocation, InvokeError>> {
        Box::pin(async move {
            let event: Value = serde_json::from_slice(&payload).expect("JSON payload");
            let hang = function == "first"
                && std::mem::replace(&mut *self.hang_first.lock().expect("lock"), false);
            if hang {
                // A hung instance: never answers.
                std::future::pending::<()>().await;
            }
            self.calls
                .0
                .lock()
                .expect("lock")
                .push((function.to_owned(), event));
            Ok(Invocation::ok("{}"))
        })
    }

    fn timed_out(&self, function: &str) {
        self.timed_out
            .lock()
            .expect("lock")
            .push(function.to_owned());
    }
}

fn delivered_ns(calls: &Calls, function: &str) -> Vec<u64> {
    calls
        .0
        .lock()
        .expect("lock")
        .iter()
        .filter(|(f, _)| f == function)
        .flat_map(|(_, e)| e["Records"].as_array().cloned().unwrap_or_default())
        .map(|r| record_n(&r))
        .collect()
}

/// Runs a bridge over `TWO_CONSUMERS` on `moto`: record 1, a cancelled transaction (writing 2
/// first when `cancelled_write`), record 3; answers what each consumer got.
async fn two_consumers_through_a_cancelled_transaction(
    moto: &Moto,
    refresh_after_empty_reads: u32,
    hang_first: bool,
    cancelled_write: bool,
) -> (Vec<u64>, Vec<u64>, Vec<String>) {
    let template = Template::parse(
        TWO_CONSUMERS,
        Stack::named("two-consumers").with_endpoint(&moto.endpoint),
    )
    .expect("test template");
    let sdk = sdk_config(&moto.endpoint, "us-east-1").await;
    provision(&sdk, &template, &ProvisionOptions::everything())
        .await
        .expect("provision");
    let table = template.table("Log").expect("table").name.clone();
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let calls = Calls::default();
    let recorder = Arc::new(Recorder {
        calls: calls.clone(),
        hang_first: Mutex::new(hang_first),
        timed_out: Mutex::new(Vec::new()),
    });
    assert!(
        template
            .stream_sources()
            .iter()
            .all(|s| s.timeout == Duration::from_secs(2)),
        "the Globals Timeout applies"
    );
    let bridge = Bridge::new(
        &sdk,
        &template,
        recorder.clone(),
        BridgeOptions {
            poll_interval: Duration::from_millis(50),
            discovery_interval: Duration::from_millis(200),
            retry_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            refresh_after_empty_reads,
            ..BridgeOptions::default()
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(bridge.run(
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    put_n(&dynamodb, &table, 1).await;
    until(
        "record 1 to reach both consumers",
        Duration::from_secs(30),
        || {
            delivered_ns(&calls, "first").contains(&1)
                && delivered_ns(&calls, "second").contains(&1)
        },
    )
    .await;
    cancelled_transaction(&dynamodb, &table, cancelled_write.then_some(2), 1).await;
    // Let the pollers read (nothing) past the cancelled transaction before the next write.
    tokio::time::sleep(Duration::from_millis(300)).await;
    put_n(&dynamodb, &table, 3).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline
        && !(delivered_ns(&calls, "first").contains(&3)
            && delivered_ns(&calls, "second").contains(&3))
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    running.await.expect("bridge stops");
    let timed_out = recorder.timed_out.lock().expect("lock").clone();
    (
        delivered_ns(&calls, "first"),
        delivered_ns(&calls, "second"),
        timed_out,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_cancelled_transaction_new_records_reach_both_consumers() {
    let Some(moto) = moto() else {
        return;
    };
    // The bridge's own iterator refresh is off: the emulator alone must keep streams flowing.
    let (first, second, _) =
        two_consumers_through_a_cancelled_transaction(&moto, 0, false, true).await;
    assert_eq!(first, vec![1, 3], "first consumer");
    assert_eq!(second, vec![1, 3], "second consumer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_recovers_from_a_stale_iterator_by_itself() {
    // moto's own server replaces the table's stream shard on a cancelled transaction: every
    // iterator handed out before reads nothing ever again. The bridge notices the run of empty
    // reads and takes a fresh iterator after the last record it read. (A cancelled transaction
    // that wrote before failing also leaves a phantom record on the dead shard there, with a
    // sequence number the live shard reuses: only the launcher's rollback fixes that.)
    let Some(moto) = plain_moto() else {
        return;
    };
    let (first, second, _) =
        two_consumers_through_a_cancelled_transaction(&moto, 5, false, false).await;
    assert_eq!(first, vec![1, 3], "first consumer");
    assert_eq!(second, vec![1, 3], "second consumer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_invocation_is_cut_at_the_functions_timeout_and_retried() {
    let Some(moto) = moto() else {
        return;
    };
    let (first, second, timed_out) =
        two_consumers_through_a_cancelled_transaction(&moto, 0, true, true).await;
    assert_eq!(
        timed_out,
        vec!["first".to_owned()],
        "the hung invocation was cut and reported"
    );
    assert_eq!(first, vec![1, 3], "record 1 was retried after the timeout");
    assert_eq!(second, vec![1, 3], "the other consumer never waited");
}
