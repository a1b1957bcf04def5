//! The event-source bridge against moto server through a cancelled DynamoDB transaction: stream
//! iterators keep reading (moto patched by `infra/moto-server`; a stale iterator on moto's own
//! server is re-acquired by the bridge), new records reach both consumers, and a hung
//! invocation is cut at the function's `Timeout` (from the template's `Globals`) and retried.
use crate::bridge;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use bridge::{
    Calls, LOG_AND_DLQ, Moto, RunningBridge, fast_options, moto, plain_moto, provisioned, put_n,
    record_n, until,
};
use bytes::Bytes;
use ftgo_infra::bridge::BridgeOptions;
use ftgo_infra::invoke::{Invocation, InvokeError, Invoker};
use futures::future::BoxFuture;
use serde_json::Value;

/// A stream consumer of the `Log` table, `LOGICAL_ID` running binary `BINARY`.
const CONSUMER: &str = r#"
  LOGICAL_ID:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: BINARY}}
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
            DestinationConfig: {OnFailure: {Destination: !GetAtt Dlq.Arn}}"#;

/// The `Log` table and `Dlq` queue, two consumers of the table's stream (`First`, binary
/// `first`, and `Second`, binary `second`), and a `Timeout` of 2 s for every function from the
/// template's `Globals`.
fn two_consumers() -> String {
    let consumers: String = [("First", "first"), ("Second", "second")]
        .map(|(logical_id, binary)| {
            CONSUMER
                .replace("LOGICAL_ID", logical_id)
                .replace("BINARY", binary)
        })
        .concat();
    format!(
        "{LOG_AND_DLQ}{}\nGlobals:\n  Function:\n    Timeout: 2\n",
        consumers.trim_start_matches('\n')
    )
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
    let (template, sdk) = provisioned(&moto, &two_consumers(), "rollback-test").await;
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

/// Runs a bridge over [`two_consumers`] on `moto`: record 1, a cancelled transaction (writing 2
/// first when `cancelled_write`), record 3; answers what each consumer got.
async fn two_consumers_through_a_cancelled_transaction(
    moto: &Moto,
    refresh_after_empty_reads: u32,
    hang_first: bool,
    cancelled_write: bool,
) -> (Vec<u64>, Vec<u64>, Vec<String>) {
    let (template, sdk) = provisioned(moto, &two_consumers(), "two-consumers").await;
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
    let bridge = RunningBridge::start(
        &sdk,
        &template,
        recorder.clone(),
        BridgeOptions {
            refresh_after_empty_reads,
            ..fast_options()
        },
    );
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
    bridge.stop().await;
    let timed_out = recorder.timed_out.lock().expect("lock").clone();
    (
        delivered_ns(&calls, "first"),
        delivered_ns(&calls, "second"),
        timed_out,
    )
}

/// [`two_consumers_through_a_cancelled_transaction`] without a hung invocation: both consumers
/// get records 1 and 3.
async fn both_consumers_read_past_a_cancelled_transaction(
    moto: &Moto,
    refresh_after_empty_reads: u32,
    cancelled_write: bool,
) {
    let (first, second, _) = two_consumers_through_a_cancelled_transaction(
        moto,
        refresh_after_empty_reads,
        false,
        cancelled_write,
    )
    .await;
    assert_eq!(first, vec![1, 3], "first consumer");
    assert_eq!(second, vec![1, 3], "second consumer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_cancelled_transaction_new_records_reach_both_consumers() {
    let Some(moto) = moto() else {
        return;
    };
    // The bridge's own iterator refresh is off: the emulator alone must keep streams flowing.
    both_consumers_read_past_a_cancelled_transaction(&moto, 0, true).await;
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
    both_consumers_read_past_a_cancelled_transaction(&moto, 5, false).await;
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
