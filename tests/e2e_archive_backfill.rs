//! End to end: the archive repairs itself on the local stack. `ftgo run` on free ports; an
//! order over HTTP lands in the event table and, through the bridge and `event-archiver`, in the
//! archive. Then an archive object goes missing (the batch Lambda skipped) and Lambda's
//! on-failure record of that batch is put on the stack's `ftgo-archiver-dlq`: the bridge feeds
//! it to `archive-backfiller` (the template wires the queue to it), which puts the missing
//! events back, and the message leaves the queue. `ftgo archive verify` fails naming the
//! missing events before, and passes after. A dead letter on the queue the backfiller gives up
//! to is cleared by `ftgo archive backfill`, which repairs the archive too.
//!
//! Needs the repository's tools (`make .venv`: moto server, cargo-lambda); says SKIPPED without
//! them. Builds the function binaries on the way (the first run takes minutes).
use crate::required;

use crate::local_stack;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use ftgo_aws::archive_backfill::ArchiveBackfill;
use ftgo_aws::store::archive::{Archive, DateRange};
use ftgo_infra::stack::sdk_config;
use ftgo_infra::template::{Stack, Template};
use serde_json::json;

use local_stack::{Running, free_port, root};

/// Runs `ftgo archive verify` against the stack at `endpoint`; its exit status and output.
fn archive_verify(endpoint: &str) -> (bool, String) {
    let out = local_stack::ftgo()
        .args(["archive", "verify", "--endpoint", endpoint, "--template"])
        .arg(root().join("template.yaml"))
        .output()
        .expect("ftgo archive verify runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archiver_dead_letter_on_the_local_stack_is_backfilled_without_a_person() {
    let root = root();
    let tools = [".venv/bin/moto_server", ".venv/bin/cargo-lambda"];
    if !required::tools_present(&root, &tools, "the backfill end-to-end test") {
        return;
    }
    let (api, aws, functions) = (free_port(), free_port(), free_port());
    let mut stack = Running::start_with(api, aws, functions, 1, "e2e-backfill");
    stack.wait_ready(Duration::from_secs(1500));
    let endpoint = format!("http://127.0.0.1:{aws}");
    let template = Template::load(
        root.join("template.yaml"),
        Stack::local().with_endpoint(&endpoint),
    )
    .expect("template");
    let sdk = sdk_config(&endpoint, "us-east-1").await;
    let env = &template
        .function_by_binary("archive-backfiller")
        .expect("the template has the archive-backfiller")
        .environment;
    let archive = Archive::new(
        ftgo_infra::provision::s3_client(&sdk),
        env["ARCHIVE_BUCKET"].clone(),
    );
    let backfill = ArchiveBackfill::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        archive.clone(),
        env["EVENTS_TABLE"].clone(),
    );
    let all = DateRange::default();

    // An order over HTTP: its event reaches the archive through the stream and the archiver.
    let token = ftgo_infra::token::issue("c-1", &[], Duration::from_secs(3600)).expect("token");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client");
    let create = json!({
        "consumerId": "c-1", "restaurantId": "r-1", "restaurantName": "Ajanta",
        "lineItems": [{"menuItemId": "m-1", "name": "Chicken Vindaloo", "quantity": 2, "price": "12.34"}],
        "deliveryAddress": {"street1": "1 Main St", "street2": null, "city": "Oakland", "state": "CA", "zip": "94612"}
    });
    let response = client
        .post(format!("http://127.0.0.1:{api}/orders"))
        .bearer_auth(&token)
        .json(&create)
        .send()
        .await
        .expect("create");
    assert_eq!(response.status().as_u16(), 201);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let check = backfill.check(&all).await.expect("check");
        if check.events > 0 && check.missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the archiver did not archive");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The batch Lambda skipped: its object is gone.
    let keys = archive.list_keys("events/v1/bucket=").await.expect("keys");
    let key = keys.first().expect("an archive object");
    let lost: BTreeSet<String> = archive
        .read(key)
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    archive.delete(key).await.expect("DeleteObject");
    let (ok, text) = archive_verify(&endpoint);
    assert!(!ok, "verify fails while events are missing:\n{text}");
    for event_id in &lost {
        assert!(
            text.contains(event_id.as_str()),
            "{event_id} named:\n{text}"
        );
    }

    // Lambda's on-failure record of that batch, on the archiver's dead-letter queue.
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("now");
    let record = json!({
        "requestContext": {"requestId": "r-e2e", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:event-archiver",
            "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": now,
        "DDBStreamBatchInfo": {"shardId": "shardId-e2e", "startSequenceNumber": "1", "endSequenceNumber": "9",
            "approximateArrivalOfFirstRecord": now, "approximateArrivalOfLastRecord": now,
            "batchSize": 1, "streamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/ftgo-events/stream/x"}
    });
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dlq = template
        .queue("ArchiverDlq")
        .expect("ArchiverDlq")
        .url
        .clone();
    sqs.send_message()
        .queue_url(&dlq)
        .message_body(record.to_string())
        .send()
        .await
        .expect("SendMessage");

    // The backfiller repairs the archive and the message leaves the queue.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let repaired = backfill
            .check(&all)
            .await
            .expect("check")
            .missing
            .is_empty();
        let left = messages_left(&sqs, &dlq).await;
        if repaired && left == 0 {
            break;
        }
        if Instant::now() >= deadline {
            stack.drain();
            panic!(
                "not repaired (repaired: {repaired}, messages left: {left}):\n{}",
                stack.output.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let backfilled = archive.list_keys("events/v1/bucket=").await.expect("keys");
    assert!(
        backfilled.iter().any(|k| k.contains("/backfill/")),
        "{backfilled:?}"
    );
    let (ok, text) = archive_verify(&endpoint);
    assert!(ok, "verify passes after the repair:\n{text}");

    // A dead letter the backfiller gave up on (as SQS's redrive leaves it on the next queue) is
    // a person's: `ftgo archive backfill` repairs the archive and clears it.
    let key = archive
        .list_keys("events/v1/bucket=")
        .await
        .expect("keys")
        .into_iter()
        .next()
        .expect("an archive object");
    archive.delete(&key).await.expect("DeleteObject");
    let given_up = template
        .queue("ArchiveBackfillDlq")
        .expect("ArchiveBackfillDlq")
        .url
        .clone();
    sqs.send_message()
        .queue_url(&given_up)
        .message_body(record.to_string())
        .send()
        .await
        .expect("SendMessage");
    let out = local_stack::ftgo()
        .args(["archive", "backfill", "--endpoint", &endpoint, "--template"])
        .arg(root.join("template.yaml"))
        .output()
        .expect("ftgo archive backfill runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("cleared archiver dead letter shard shardId-e2e"),
        "{text}"
    );
    let (ok, text) = archive_verify(&endpoint);
    assert!(ok, "verify passes after `ftgo archive backfill`:\n{text}");
    // Cleared, not merely in flight: neither visible nor received-and-hidden.
    assert_eq!(messages_left(&sqs, &given_up).await, 0, "cleared");

    let status = stack.stop().expect("ftgo stops on SIGTERM");
    assert!(status.success(), "ftgo exited with {status}");
    let _ = std::fs::remove_dir_all(&stack.log_dir);
}

/// Messages on the queue, visible or in flight (`ApproximateNumberOfMessages` +
/// `ApproximateNumberOfMessagesNotVisible`): a receive cannot see in-flight ones.
async fn messages_left(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> u64 {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let count = |name: QueueAttributeName| {
        attributes
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} missing: {attributes:?}"))
    };
    count(QueueAttributeName::ApproximateNumberOfMessages)
        + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
}
