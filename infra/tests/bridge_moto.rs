//! The event-source bridge against moto server (through `infra/moto-server`, as the local stack
//! runs it), with a scripted function standing in for the runtime: a DynamoDB stream read in
//! order through partial batch failures, a poison record isolated by bisecting and given up to
//! the on-failure queue, SQS messages deleted only when processed, a cancelled transaction that
//! leaves stream iterators and both consumers reading, an invocation cut at the function's
//! `Timeout` and retried (those in `bridge_moto_cancelled`). Resources come from small templates
//! of the test's own, provisioned the way the local stack provisions `template.yaml`.
use crate::bridge;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bridge::{
    Calls, LOG_AND_DLQ, RunningBridge, fast_options, moto, provisioned, put_n, record_n, until,
};
use bytes::Bytes;
use ftgo_infra::invoke::{Invocation, InvokeError, Invoker};
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// The `Log` table and `Dlq` queue, a `Jobs` queue, a stream consumer and a queue worker.
fn template() -> String {
    let functions = r#"
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
    format!("{LOG_AND_DLQ}{}", functions.trim_start_matches('\n'))
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_feeds_streams_and_queues_with_lambdas_semantics() {
    let Some(moto) = moto() else {
        return;
    };
    let (template, sdk) = provisioned(&moto, &template(), "bridge-test").await;
    let table = template.table("Log").expect("table").name.clone();
    let dlq = template.queue("Dlq").expect("dlq").url.clone();
    let jobs = template.queue("Jobs").expect("jobs").url.clone();

    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    for n in 1..=10 {
        put_n(&dynamodb, &table, n).await;
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
    let bridge = RunningBridge::start(&sdk, &template, script, fast_options());

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
    // Every message is deleted once handled: none visible, none in flight (a receive could not
    // tell gone from in flight), within a deadline rather than after a fixed pause.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
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
        let (visible, in_flight) = (
            count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages),
            count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        );
        if (visible, in_flight) == (0, 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the jobs queue still holds {visible} visible and {in_flight} in-flight messages"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    bridge.stop().await;
    drop(moto);
}
