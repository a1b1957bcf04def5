//! The `archive-replayer` Lambda's handler against moto (S3, SQS, DynamoDB), fed by
//! `plan_replay` through the replay queue: an empty order-history table rebuilt equal to the fold
//! of the events, a second replay changing nothing; unreadable requests reported; one chunk of
//! events held at most; a continuation sent near the deadline.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::archive_side;
use crate::read_side;

use std::collections::BTreeSet;

use archive_side::{
    ArchiveSide, LIFECYCLE, ORDER_A, ORDER_B, append_and_archive, generate_partition, histories,
    image_events,
};
use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use ftgo_aws::replay::{self, ReplayRequest};
use ftgo_aws::store::archive::{partition_of, partition_prefix};
use ftgo_domain::delivery::DeliveryStatus;
use ftgo_domain::event::StoredEvent;
use ftgo_domain::order::OrderStatus;
use read_side::{folded, record_of, sample_records};
use serde_json::Value;

const REPLAY: &str = include_str!("../events/archive-replayer/replay-partitions.json");

#[tokio::test]
async fn replaying_the_archive_into_an_empty_table_builds_the_fold_and_replaying_again_changes_nothing()
 {
    let side = ArchiveSide::fresh().await;
    let events = histories(12);
    side.read.append(&events).await;
    let records: Vec<EventRecord> = events.iter().map(record_of).collect();
    // Two batches, the second a retry from the middle of the first: some events are archived
    // twice, under other keys.
    let half = records.len() / 2;
    assert!(
        side.archive_batch(records[..half + 3].to_vec())
            .await
            .batch_item_failures
            .is_empty()
    );
    assert!(
        side.archive_batch(records[half..].to_vec())
            .await
            .batch_item_failures
            .is_empty()
    );
    assert!(side.scan_view().await.is_empty(), "the target starts empty");

    // Plan: one message per partition that holds events, naming the target table.
    let target = side.target();
    let planned = replay::plan_replay(
        &side.archive(),
        &side.sqs,
        side.stack.queue_url("ReplayQueue"),
        &target,
    )
    .await
    .expect("plan_replay");
    let partitions: BTreeSet<String> = events
        .iter()
        .map(|e| partition_prefix(partition_of(&e.stream_id)))
        .collect();
    let planned_prefixes: BTreeSet<String> = planned.iter().map(|r| r.prefix.clone()).collect();
    assert_eq!(planned_prefixes, partitions);
    assert!(
        planned
            .iter()
            .all(|r| r.target == target && r.bucket == side.bucket)
    );

    // The replayer gets them from the queue, as Lambda hands them over.
    let messages = side.receive_replay_messages(planned.len()).await;
    assert_eq!(messages.len(), planned.len());
    let received: BTreeSet<String> = messages
        .iter()
        .map(|m| ReplayRequest::parse(m.body.as_deref().unwrap_or_default()).expect("request"))
        .map(|r| r.prefix)
        .collect();
    assert_eq!(received, planned_prefixes);
    let response = side.replay(messages.clone()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let expected = folded(&events);
    assert_eq!(side.views().await, expected);
    assert!(
        expected
            .values()
            .any(|v| v.delivery_status == Some(DeliveryStatus::Delivered))
            && expected
                .values()
                .any(|v| v.status == Some(OrderStatus::Cancelled))
    );

    // Replaying again changes no byte.
    let before = side.scan_view().await;
    let response = side.replay(messages).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(side.scan_view().await, before);
}

#[tokio::test]
async fn replaying_into_a_view_the_projector_keeps_current_changes_nothing() {
    let side = ArchiveSide::fresh().await;
    let events = histories(6);
    side.read.append(&events).await;
    side.read.project(&events).await;
    let records: Vec<EventRecord> = events.iter().map(record_of).collect();
    assert!(
        side.archive_batch(records)
            .await
            .batch_item_failures
            .is_empty()
    );
    let before = side.scan_view().await;
    assert_eq!(before.len(), 6);

    let target = side.target();
    let requests: Vec<ReplayRequest> = side
        .archive()
        .list_partitions()
        .await
        .expect("partitions")
        .into_iter()
        .map(|prefix| ReplayRequest::new(&side.bucket, prefix, &target))
        .collect();
    for request in &requests {
        let summary = side.replayer.replay(request).await.expect("replay");
        assert_eq!(summary.applied, 0, "{summary:?}");
        assert_eq!(summary.duplicates, summary.events);
        assert!(summary.failed.is_empty());
    }
    assert_eq!(side.scan_view().await, before);
}

#[tokio::test]
async fn sample_replay_messages_rebuild_the_sample_orders_from_the_archived_sample_batch() {
    let side = ArchiveSide::fresh().await;
    let records = sample_records(LIFECYCLE);
    // The sample's events are in this stack's event table too (gap fills read it).
    let events = image_events(&records);
    side.read.append(&events).await;
    assert!(
        side.archive_batch(records)
            .await
            .batch_item_failures
            .is_empty()
    );

    // The sample names the local stack's bucket and table: point it at this fresh stack.
    let mut event: SqsEvent = serde_json::from_str(REPLAY).expect("sample SQS event");
    for message in &mut event.records {
        let mut body: Value =
            serde_json::from_str(message.body.as_deref().unwrap_or_default()).expect("body");
        assert_eq!(body["bucket"], "ftgo-event-archive");
        assert_eq!(body["target"], "ftgo-order-history");
        body["bucket"] = Value::from(side.bucket.clone());
        body["target"] = Value::from(side.target());
        message.body = Some(body.to_string());
    }
    let response = side.replay(event.records).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let views = side.views().await;
    assert_eq!(views, folded(&events));
    let a = &views[ORDER_A];
    assert_eq!(a.status, Some(OrderStatus::Approved));
    assert_eq!(a.delivery_status, Some(DeliveryStatus::Delivered));
    assert_eq!(a.order_total.cents(), 4052);
    assert_eq!(
        a.creation_date,
        Some(time::macros::datetime!(2026-11-25 23:58:00.250 UTC))
    );
    assert_eq!(views[ORDER_B].status, Some(OrderStatus::Cancelled));
}

#[tokio::test]
async fn an_unreadable_replay_request_is_reported_and_the_others_are_replayed() {
    let side = ArchiveSide::fresh().await;
    let records = sample_records(LIFECYCLE);
    side.read.append(&image_events(&records)).await;
    assert!(
        side.archive_batch(records)
            .await
            .batch_item_failures
            .is_empty()
    );
    let good = ReplayRequest::new(&side.bucket, partition_prefix(8), side.target());
    let mut bad = SqsMessage::default();
    bad.message_id = Some("bad-1".to_owned());
    bad.body = Some(r#"{"bucket":"b","prefix":"events/v1/undecodable/","target":"t"}"#.to_owned());
    let mut ok = SqsMessage::default();
    ok.message_id = Some("good-1".to_owned());
    ok.body = Some(serde_json::to_string(&good).expect("JSON"));
    let response = side.replay(vec![bad, ok]).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["bad-1"]);
    let views = side.views().await;
    assert_eq!(views.keys().collect::<Vec<_>>(), vec![ORDER_B]);
}

#[tokio::test]
async fn a_replay_holds_one_chunk_at_most_however_large_the_partition_grows() {
    let side = ArchiveSide::fresh().await;
    let dry = replay::ReplayMode {
        dry_run: true,
        rate: None,
    };
    let partition = generate_partition(&side, None, 3, 400, 0).await;
    let request = ReplayRequest::new(&side.bucket, partition_prefix(partition), side.target());
    let small = side
        .replayer
        .replay_objects(&request, dry, None, |_, _| false)
        .await
        .expect("dry run");
    assert_eq!((small.summary.objects, small.summary.events), (3, 1_200));
    assert_eq!(small.summary.peak_events_held, 400);

    // Ten times the partition, plus one object larger than a chunk: the peak stays one chunk.
    generate_partition(&side, Some(partition), 27, 400, 10_000_000).await;
    generate_partition(
        &side,
        Some(partition),
        1,
        replay::CHUNK_EVENTS * 5 / 2,
        10_000_000,
    )
    .await;
    let large = side
        .replayer
        .replay_objects(&request, dry, None, |_, _| false)
        .await
        .expect("dry run");
    assert_eq!(large.summary.objects, 31);
    assert_eq!(large.summary.events, 12_000 + replay::CHUNK_EVENTS * 5 / 2);
    assert_eq!(large.summary.peak_events_held, replay::CHUNK_EVENTS);
    assert!(large.summary.failed.is_empty());
    assert!(
        side.scan_view().await.is_empty(),
        "a dry run writes nothing"
    );
}

#[tokio::test]
async fn a_replayer_near_its_deadline_sends_a_continuation_and_the_continuation_finishes_the_partition()
 {
    let side = ArchiveSide::fresh().await;
    let events = histories(12);
    append_and_archive(&side, &events, 2).await;
    // The partition with the most objects.
    let archive = side.archive();
    let mut best = (0, String::new());
    for prefix in archive.list_partitions().await.expect("partitions") {
        let n = archive.list_keys(&prefix).await.expect("keys").len();
        if n > best.0 {
            best = (n, prefix);
        }
    }
    assert!(best.0 > 1, "a partition with several objects");
    let request = ReplayRequest::new(&side.bucket, best.1.clone(), side.target());
    let mut message = SqsMessage::default();
    message.message_id = Some("m-1".into());
    message.body = Some(serde_json::to_string(&request).expect("JSON"));
    // Ten seconds left: inside the continuation margin.
    let deadline = std::time::SystemTime::now() + std::time::Duration::from_secs(10);
    let summary = ftgo_aws::lambda::archive_replayer::process_message(
        &side.replayer,
        &message,
        Some(deadline),
    )
    .await
    .expect("stops early without failing");
    assert_eq!(summary.objects, 1);

    let continuation = side.receive_replay_messages(1).await;
    assert_eq!(continuation.len(), 1);
    let next = ReplayRequest::parse(continuation[0].body.as_deref().unwrap_or_default())
        .expect("continuation request");
    assert_eq!(next.prefix, request.prefix);
    let first_key = replay::request_objects(&archive, &request)
        .await
        .expect("keys")[0]
        .clone();
    assert!(next.resume, "a continuation resumes: {next:?}");
    assert_eq!(next.after, None);
    let left = replay::request_objects(&archive, &next)
        .await
        .expect("keys");
    assert!(
        !left.contains(&first_key),
        "the object done is recorded: {left:?}"
    );
    let response = side.replay(continuation).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let in_partition: Vec<StoredEvent> = events
        .iter()
        .filter(|e| partition_prefix(partition_of(&e.stream_id)) == best.1)
        .cloned()
        .collect();
    // Items of this partition's streams equal their fold (other partitions were not replayed;
    // an order's Delivery stream may live in another partition, so compare Order-only items).
    let expected = ftgo_aws::verify::expected_view(&in_partition).expect("fold");
    let views = side.views().await;
    for (order_id, view) in &expected {
        if view.delivery_version.is_none() && view.order_version.is_some() {
            let mut got = views.get(order_id).cloned().expect("replayed item");
            got.delivery_version = None;
            got.delivery_status = None;
            assert_eq!(&got, view);
        }
    }
}
