//! The event archive against moto (S3, SQS, DynamoDB), through the real Lambda handlers:
//! `event-archiver` writes deterministic gzip NDJSON objects (a retried batch rewrites the same
//! keys with the same bytes; undecodable records are kept aside; a failed write is reported),
//! and `archive-replayer`, fed by `plan_replay` through the replay queue, rebuilds an empty
//! order-history table equal to the fold of the events, and a second replay changes nothing.
//! Replays resume from checkpoints, stop near their deadline with a continuation, hold one chunk
//! of events at most; `verify` names view differences and the events an archive misses, and a
//! backfill puts them back.

#[path = "fixtures/read_side.rs"]
mod read_side;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_aws::config::Config;
use ftgo_aws::lambda::event_archiver::Archiver;
use ftgo_aws::lambda_runtime::{Context, LambdaEvent};
use ftgo_aws::replay::{self, ReplayRequest, Replayer};
use ftgo_aws::store::archive::{self, Archive, partition_of, partition_prefix};
use ftgo_aws::store::order_history::OrderHistoryDao;
use ftgo_domain::AggregateType;
use ftgo_domain::Money;
use ftgo_domain::delivery::{DeliveryEvent, DeliveryStatus};
use ftgo_domain::event::StoredEvent;
use ftgo_domain::order::{LineItem, OrderEvent, OrderStatus};
use ftgo_domain::view::OrderView;
use ftgo_tests::{Emulator, TestStack, unique_id};
use read_side::{ReadSide, at, folded, order_created, order_history, record_of, stored, to_millis};
use serde_json::Value;

const LIFECYCLE: &str = include_str!("../events/event-archiver/order-lifecycle.json");
const UNDECODABLE: &str = include_str!("../events/event-archiver/undecodable-record.json");
const REPLAY: &str = include_str!("../events/archive-replayer/replay-partitions.json");

/// The sample's orders.
const ORDER_A: &str = "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4b01";
const ORDER_B: &str = "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4b02";
const ORDER_C: &str = "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4b03";
/// The `<shard>` segment of the samples: the stream label of their `eventSourceARN`.
const SHARD: &str = "2026-11-26T00_00_00.000";

/// The archive side of one fresh stack: the functions as their Lambdas build them.
struct ArchiveSide {
    stack: TestStack,
    read: ReadSide,
    archiver: Archiver,
    replayer: Replayer,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    bucket: String,
}

impl ArchiveSide {
    async fn fresh() -> Self {
        let moto = Emulator::moto().await;
        let stack = moto.fresh_stack().await.expect("fresh stack");
        let read = ReadSide::on(moto, &stack).await;
        let sdk = moto.sdk_config().await;
        let config = |binary: &str| {
            let env = stack.function_env(binary);
            Config::from_lookup(|name| env.get(name).cloned()).expect("configuration")
        };
        let archiver = Archiver::from_config(&sdk, &config("event-archiver")).expect("archiver");
        let replayer = Replayer::from_config(&sdk, &config("archive-replayer")).expect("replayer");
        let bucket = stack.bucket_name("EventArchiveBucket").to_owned();
        Self {
            read,
            archiver,
            replayer,
            s3: moto.s3().await,
            sqs: moto.sqs().await,
            bucket,
            stack,
        }
    }

    fn archive(&self) -> Archive {
        Archive::new(self.s3.clone(), &self.bucket)
    }

    fn target(&self) -> String {
        self.stack.table_name("OrderHistoryTable").to_owned()
    }

    /// Pushes `records` as one batch through the `event-archiver` handler.
    async fn archive_batch(&self, records: Vec<EventRecord>) -> DynamoDbEventResponse {
        ftgo_aws::lambda::event_archiver::handle(
            &self.archiver,
            LambdaEvent::new(read_side::batch(records), Context::default()),
        )
        .await
        .expect("the archiver handler never fails an invocation")
    }

    /// Pushes `messages` as one batch through the `archive-replayer` handler.
    async fn replay(&self, messages: Vec<SqsMessage>) -> SqsBatchResponse {
        let mut event = SqsEvent::default();
        event.records = messages;
        ftgo_aws::lambda::archive_replayer::handle(
            &self.replayer,
            LambdaEvent::new(event, Context::default()),
        )
        .await
        .expect("replayer invocation")
    }

    /// Every key in the archive bucket with its bytes.
    async fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        let archive = self.archive();
        let mut objects = BTreeMap::new();
        for key in archive.list_keys("").await.expect("ListObjectsV2") {
            let bytes = archive.get_bytes(&key).await.expect("GetObject");
            objects.insert(key, bytes);
        }
        objects
    }

    /// Receives (without deleting) every message on the replay queue, as Lambda's SQS event
    /// source hands them over.
    async fn receive_replay_messages(&self, expected: usize) -> Vec<SqsMessage> {
        let mut messages = Vec::new();
        for _ in 0..20 {
            if messages.len() >= expected {
                break;
            }
            let received = self
                .sqs
                .receive_message()
                .queue_url(self.stack.queue_url("ReplayQueue"))
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("ReceiveMessage");
            for message in received.messages.unwrap_or_default() {
                let mut lambda = SqsMessage::default();
                lambda.message_id = message.message_id;
                lambda.receipt_handle = message.receipt_handle;
                lambda.body = message.body;
                lambda.event_source = Some("aws:sqs".to_owned());
                messages.push(lambda);
            }
        }
        messages
    }

    /// Every raw item of the target view table, sorted by order id.
    async fn scan_view(&self) -> Vec<HashMap<String, AttributeValue>> {
        read_side::scan_table(&self.read.dynamodb, &self.target()).await
    }

    /// The view of every order id in the target table, read through the view DAO.
    async fn views(&self) -> BTreeMap<String, OrderView> {
        let dao = OrderHistoryDao::new(
            self.read.dynamodb.clone(),
            self.target(),
            &self.read.config.order_history_by_consumer_index,
        );
        let mut views = BTreeMap::new();
        for item in self.scan_view().await {
            let Some(AttributeValue::S(order_id)) = item.get("orderId") else {
                panic!("item without orderId: {item:?}")
            };
            let view = dao.get(order_id).await.expect("GetItem").expect("item");
            views.insert(order_id.clone(), to_millis(view));
        }
        views
    }
}

fn sample(json: &str) -> Vec<EventRecord> {
    serde_json::from_str::<Event>(json)
        .expect("sample batch")
        .records
}

fn image_events(records: &[EventRecord]) -> Vec<StoredEvent> {
    records
        .iter()
        .map(|r| serde_dynamo::from_item(r.change.new_image.clone()).expect("sample event"))
        .collect()
}

#[tokio::test]
async fn sample_batch_is_archived_under_deterministic_keys_and_a_retry_rewrites_the_same_bytes() {
    let side = ArchiveSide::fresh().await;
    let records = sample(LIFECYCLE);
    let response = side.archive_batch(records.clone()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let objects = side.objects().await;
    let keys: Vec<&str> = objects.keys().map(String::as_str).collect();
    let expected = [
        format!(
            "events/v1/bucket=1/date=2026-11-25/{SHARD}/4300000000000000000001-4300000000000000000002.ndjson.gz"
        ),
        format!(
            "events/v1/bucket=1/date=2026-11-26/{SHARD}/4300000000000000000004-4300000000000000000004.ndjson.gz"
        ),
        format!(
            "events/v1/bucket=11/date=2026-11-26/{SHARD}/4300000000000000000006-4300000000000000000007.ndjson.gz"
        ),
        format!(
            "events/v1/bucket=8/date=2026-11-26/{SHARD}/4300000000000000000003-4300000000000000000005.ndjson.gz"
        ),
    ];
    assert_eq!(
        keys,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );

    // Every event is there once, in the event table's JSON form, as the stream carried it.
    let mut archived: Vec<StoredEvent> = objects
        .values()
        .flat_map(|bytes| archive::decode(bytes).expect("gzip NDJSON"))
        .collect();
    archive::sort_and_dedup(&mut archived);
    let mut sent = image_events(&records);
    archive::sort_and_dedup(&mut sent);
    assert_eq!(archived, sent);
    let created_line: Value = {
        let text = std::io::read_to_string(flate2::read::GzDecoder::new(
            &objects[expected[0].as_str()][..],
        ))
        .expect("gunzip");
        serde_json::from_str(text.lines().next().expect("a line")).expect("JSON line")
    };
    assert_eq!(created_line["streamId"], format!("Order#{ORDER_A}"));
    assert_eq!(created_line["schemaVersion"], 2);
    assert_eq!(created_line["occurredAt"], "2026-11-25T23:58:00.25Z");
    assert_eq!(created_line["payload"]["orderTotal"], 2818);

    // Lambda retries the same batch: the same keys, the same bytes, nothing else.
    let response = side.archive_batch(records).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(side.objects().await, objects);
}

#[tokio::test]
async fn undecodable_records_are_kept_aside_and_do_not_block_the_batch() {
    let side = ArchiveSide::fresh().await;
    let records = sample(UNDECODABLE);
    let response = side.archive_batch(records.clone()).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "an undecodable record is not a retry: {response:?}"
    );
    let objects = side.objects().await;
    let keys: BTreeSet<&str> = objects.keys().map(String::as_str).collect();
    let kept = format!("events/v1/undecodable/{SHARD}/4400000000000000000002.json");
    let removed = format!("events/v1/undecodable/{SHARD}/4400000000000000000003.json");
    let good = format!(
        "events/v1/bucket=11/date=2026-11-26/{SHARD}/4400000000000000000001-4400000000000000000004.ndjson.gz"
    );
    assert_eq!(
        keys,
        BTreeSet::from([kept.as_str(), removed.as_str(), good.as_str()])
    );

    let events = archive::decode(&objects[&good]).expect("good object");
    let ids: Vec<(String, u64)> = events
        .iter()
        .map(|e| (e.stream_id.clone(), e.version))
        .collect();
    assert_eq!(
        ids,
        vec![
            (format!("Order#{ORDER_C}"), 1),
            (format!("Order#{ORDER_C}"), 2)
        ]
    );

    let body: Value = serde_json::from_slice(&objects[&kept]).expect("JSON");
    assert_eq!(body["source"], "event-archiver");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("not a stored event"),
        "{body}"
    );
    assert_eq!(
        body["record"],
        serde_json::to_value(&records[1]).expect("record JSON"),
        "the whole record is kept"
    );
    let body: Value = serde_json::from_slice(&objects[&removed]).expect("JSON");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("REMOVE")
    );

    // Nothing in the undecodable area is a partition to replay.
    let partitions = side.archive().list_partitions().await.expect("partitions");
    assert_eq!(partitions, vec![partition_prefix(11)]);
}

#[tokio::test]
async fn a_failed_write_reports_the_first_record_of_the_failed_object() {
    let moto = Emulator::moto().await;
    let missing = Archive::new(moto.s3().await, unique_id("no-such-bucket"));
    let archiver = Archiver::new(missing);
    let records = sample(LIFECYCLE);
    let mut late = records[3..].to_vec();
    late.reverse();
    let response = ftgo_aws::lambda::event_archiver::handle(
        &archiver,
        LambdaEvent::new(read_side::batch(late), Context::default()),
    )
    .await
    .expect("the archiver handler never fails an invocation");
    let reported: Vec<Option<String>> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    // Every object failed; Lambda retries from the lowest first record among them.
    assert_eq!(reported, vec![Some("4300000000000000000004".to_owned())]);
}

/// Order histories over several days, both aggregates, of `orders` orders.
fn histories(orders: usize) -> Vec<StoredEvent> {
    let mut events = Vec::new();
    for i in 0..orders {
        let order_id = unique_id("order");
        let consumer_id = format!("consumer-{}", i % 3);
        let created_at = at(i as i64 * 720 - 30);
        let then: Vec<OrderEvent> = match i % 4 {
            0 => vec![OrderEvent::OrderApproved {}],
            1 => vec![OrderEvent::OrderCancelled {}],
            2 => vec![
                OrderEvent::OrderRevised {
                    line_items: vec![LineItem {
                        menu_item_id: "m-1".into(),
                        name: "Garlic Naan".into(),
                        quantity: 4,
                        price: Money::from_cents(350),
                    }],
                    order_total: Money::from_cents(1400),
                },
                OrderEvent::OrderApproved {},
            ],
            _ => vec![OrderEvent::OrderRejected {}],
        };
        let history = order_history(
            &order_id,
            &order_created(
                &consumer_id,
                "Ajanta",
                &[("Chicken Vindaloo", 1 + i as u32, 1234)],
            ),
            created_at,
            &then,
        );
        events.extend(history);
        if i % 4 == 0 || i % 4 == 2 {
            let picked = at(i as i64 * 720 + 600);
            events.push(stored(
                AggregateType::Delivery,
                &order_id,
                1,
                &DeliveryEvent::DeliveryPickedUp {},
                picked,
            ));
            if i % 8 == 0 {
                events.push(stored(
                    AggregateType::Delivery,
                    &order_id,
                    2,
                    &DeliveryEvent::DeliveryDelivered {},
                    picked + time::Duration::minutes(30),
                ));
            }
        }
    }
    events
}

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
    let records = sample(LIFECYCLE);
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
    let records = sample(LIFECYCLE);
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

// ---- Replay options, verify-view, archive verify/backfill (issue 11) ----

/// Archives `records` in batches of `batch` records (one archiver invocation each), so the
/// archive holds many objects per partition.
async fn archive_in_batches(side: &ArchiveSide, records: &[EventRecord], batch: usize) {
    for chunk in records.chunks(batch) {
        let response = side.archive_batch(chunk.to_vec()).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
}

/// Creates another view table, `name` made unique, with the template's view keys and GSI (what
/// `ftgo replay --create-table` does).
async fn another_view_table(side: &ArchiveSide, name: &str) -> String {
    let mut table = side
        .stack
        .template()
        .table("OrderHistoryTable")
        .expect("view table in the template")
        .clone();
    table.name = unique_id(name);
    ftgo_infra::provision::provision_table(
        &side.read.dynamodb,
        &table,
        ftgo_infra::provision::Existing::Keep,
    )
    .await
    .expect("CreateTable");
    table.name
}

/// The replay requests of every partition into `target`.
async fn requests_into(side: &ArchiveSide, target: &str) -> Vec<ReplayRequest> {
    replay::partition_requests(&side.archive(), target, None, None)
        .await
        .expect("partitions")
}

/// The differences between table `table` and the fold of `events`, as `verify-view` prints them.
async fn differences(side: &ArchiveSide, table: &str, events: &[StoredEvent]) -> Vec<String> {
    let expected = ftgo_aws::verify::expected_view(events).expect("fold");
    let actual = ftgo_aws::verify::scan_view(&side.read.dynamodb, table)
        .await
        .expect("scan view");
    ftgo_aws::verify::compare_views(&expected, &actual)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[tokio::test]
async fn an_interrupted_replay_resumed_from_its_checkpoints_gives_the_same_table_as_an_uninterrupted_one()
 {
    let side = ArchiveSide::fresh().await;
    let events = histories(16);
    side.read.append(&events).await;
    let records: Vec<EventRecord> = events.iter().map(record_of).collect();
    archive_in_batches(&side, &records, 3).await;

    // Uninterrupted, into the stack's (empty) view table.
    let whole = side.target();
    for request in requests_into(&side, &whole).await {
        let summary = side.replayer.replay(&request).await.expect("replay");
        assert!(summary.failed.is_empty(), "{summary:?}");
    }

    // Interrupted after the first object of every partition, then resumed from the checkpoints.
    let resumed = another_view_table(&side, "ftgo-order-history-v2").await;
    let checkpoints = replay::Checkpoints::new(side.archive(), &resumed);
    let mut interrupted = 0;
    for request in requests_into(&side, &resumed).await {
        let outcome = side
            .replayer
            .replay_objects(
                &request,
                replay::ReplayMode::default(),
                Some(&checkpoints),
                |_, _| true,
            )
            .await
            .expect("replay until interrupted");
        assert_eq!(outcome.summary.objects, 1);
        if !outcome.complete {
            interrupted += 1;
            let saved = checkpoints
                .load(&request.prefix)
                .await
                .expect("load")
                .expect("saved");
            assert_eq!(saved.after, outcome.checkpoint);
            assert!(!saved.complete);
        }
    }
    assert!(interrupted > 0, "some partitions have more than one object");
    assert!(
        !differences(&side, &resumed, &events).await.is_empty(),
        "the interrupted table is not complete yet"
    );
    let mut resumed_partitions = 0;
    for request in requests_into(&side, &resumed).await {
        let rest = checkpoints.resume(&request).await.expect("resume");
        assert!(rest.after.is_some());
        if replay::request_objects(&side.archive(), &rest)
            .await
            .expect("keys")
            .is_empty()
        {
            continue;
        }
        resumed_partitions += 1;
        let outcome = side
            .replayer
            .replay_objects(
                &rest,
                replay::ReplayMode::default(),
                Some(&checkpoints),
                |_, _| false,
            )
            .await
            .expect("resumed replay");
        assert!(outcome.complete && outcome.summary.failed.is_empty());
    }
    assert_eq!(resumed_partitions, interrupted);
    // Done: nothing is left to resume.
    for request in requests_into(&side, &resumed).await {
        let rest = checkpoints.resume(&request).await.expect("resume");
        assert!(
            replay::request_objects(&side.archive(), &rest)
                .await
                .expect("keys")
                .is_empty()
        );
        assert!(
            checkpoints
                .load(&request.prefix)
                .await
                .expect("load")
                .expect("saved")
                .complete
        );
    }

    assert_eq!(
        read_side::scan_table(&side.read.dynamodb, &resumed).await,
        side.scan_view().await,
        "resumed and uninterrupted replays give the same items, byte for byte"
    );
    assert_eq!(
        differences(&side, &resumed, &events).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn verify_view_names_each_attribute_that_differs_from_the_fold() {
    let side = ArchiveSide::fresh().await;
    let events = histories(6);
    side.read.append(&events).await;
    archive_in_batches(&side, &events.iter().map(record_of).collect::<Vec<_>>(), 10).await;
    let target = another_view_table(&side, "ftgo-order-history-v2").await;
    for request in requests_into(&side, &target).await {
        side.replayer.replay(&request).await.expect("replay");
    }
    assert_eq!(
        differences(&side, &target, &events).await,
        Vec::<String>::new()
    );

    // Someone edits an item by hand: its status, and its duplicate-detection version.
    let order_id = events[0].aggregate_id.clone();
    side.read
        .dynamodb
        .update_item()
        .table_name(&target)
        .key("orderId", AttributeValue::S(order_id.clone()))
        .update_expression("SET #s = :s, orderVersion = :v")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":s", AttributeValue::S("REJECTED".into()))
        .expression_attribute_values(":v", AttributeValue::N("7".into()))
        .send()
        .await
        .expect("UpdateItem");
    let found = differences(&side, &target, &events).await;
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found
            .iter()
            .any(|d| d.starts_with(&format!("{order_id}: status is Some(Rejected)"))),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|d| d.starts_with(&format!("{order_id}: orderVersion is Some(7)"))),
        "{found:#?}"
    );
}

#[tokio::test]
async fn archive_verify_names_the_events_of_a_deleted_object_and_backfill_puts_them_back() {
    let side = ArchiveSide::fresh().await;
    let events = histories(8);
    side.read.append(&events).await;
    archive_in_batches(&side, &events.iter().map(record_of).collect::<Vec<_>>(), 4).await;
    let archive = side.archive();
    let all = ftgo_aws::verify::DateRange::default();
    let scan =
        || ftgo_aws::verify::scan_events(&side.read.dynamodb, &side.read.config.events_table, &all);
    let table_events = scan().await.expect("scan events");
    assert_eq!(table_events.len(), events.len());
    let archived = archive
        .archived_event_ids(&all)
        .await
        .expect("archived ids");
    assert!(ftgo_aws::verify::missing_from_archive(&table_events, &archived).is_empty());

    // One object goes missing.
    let key = archive
        .list_keys("events/v1/bucket=")
        .await
        .expect("keys")
        .into_iter()
        .next()
        .expect("an object");
    let mut lost: Vec<(String, u64)> = archive
        .read(&key)
        .await
        .expect("read")
        .into_iter()
        .map(|e| (e.stream_id, e.version))
        .collect();
    lost.sort();
    archive.delete(&key).await.expect("DeleteObject");
    let archived = archive
        .archived_event_ids(&all)
        .await
        .expect("archived ids");
    let missing = ftgo_aws::verify::missing_from_archive(&table_events, &archived);
    let named: Vec<(String, u64)> = missing
        .iter()
        .map(|e| (e.stream_id.clone(), e.version))
        .collect();
    assert_eq!(
        named, lost,
        "exactly the events of the deleted object are named"
    );

    // Backfill: deterministic keys, and afterwards nothing is missing.
    let objects = ftgo_aws::verify::backfill_objects(&missing).expect("plan backfill");
    assert_eq!(
        objects,
        ftgo_aws::verify::backfill_objects(&missing).expect("again")
    );
    for object in &objects {
        assert!(object.key.contains("/backfill/"), "{}", object.key);
        archive.put(object).await.expect("PutObject");
    }
    let archived = archive
        .archived_event_ids(&all)
        .await
        .expect("archived ids");
    assert!(ftgo_aws::verify::missing_from_archive(&table_events, &archived).is_empty());

    // And a replay of the repaired archive builds the fold.
    for request in requests_into(&side, &side.target()).await {
        side.replayer.replay(&request).await.expect("replay");
    }
    assert_eq!(
        differences(&side, &side.target(), &events).await,
        Vec::<String>::new()
    );
}

/// A generated partition: `objects` archive objects of `per_object` events each, every event in
/// partition `partition` (one stream per object, versions 1.. in order).
async fn generate_partition(side: &ArchiveSide, objects: usize, per_object: usize) -> u64 {
    let mut partition = None;
    for index in 0..objects {
        // Pick orders whose stream lands in the same partition as the first.
        let order_id = loop {
            let id = unique_id("big");
            let p = partition_of(&format!("Order#{id}"));
            if partition.is_none_or(|want| want == p) {
                partition = Some(p);
                break id;
            }
        };
        let created = order_created("c-1", "Ajanta", &[("Chicken Vindaloo", 1, 1234)]);
        let then: Vec<OrderEvent> = (1..per_object)
            .map(|_| OrderEvent::OrderApproved {})
            .collect();
        let events = order_history(&order_id, &created, at(0), &then);
        let records: Vec<archive::ArchiveRecord> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| archive::ArchiveRecord {
                sequence_number: format!("{}", index * 100_000 + i + 1),
                event,
            })
            .collect();
        for object in archive::plan_objects("generated", &records).expect("plan") {
            side.archive().put(&object).await.expect("PutObject");
        }
    }
    partition.expect("a partition")
}

#[tokio::test]
async fn a_replay_holds_one_chunk_at_most_however_large_the_partition_grows() {
    let side = ArchiveSide::fresh().await;
    let dry = replay::ReplayMode {
        dry_run: true,
        rate: None,
    };
    let partition = generate_partition(&side, 3, 400).await;
    let request = ReplayRequest::new(&side.bucket, partition_prefix(partition), side.target());
    let small = side
        .replayer
        .replay_objects(&request, dry, None, |_, _| false)
        .await
        .expect("dry run");
    assert_eq!((small.summary.objects, small.summary.events), (3, 1_200));
    assert_eq!(small.summary.peak_events_held, 400);

    // Ten times the partition, plus one object larger than a chunk: the peak stays one chunk.
    generate_partition_into(&side, partition, 27, 400).await;
    generate_partition_into(&side, partition, 1, replay::CHUNK_EVENTS * 5 / 2).await;
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

/// Like [`generate_partition`], into partition `partition`.
async fn generate_partition_into(
    side: &ArchiveSide,
    partition: u64,
    objects: usize,
    per_object: usize,
) {
    for index in 0..objects {
        let order_id = loop {
            let id = unique_id("big");
            if partition_of(&format!("Order#{id}")) == partition {
                break id;
            }
        };
        let created = order_created("c-1", "Ajanta", &[("Chicken Vindaloo", 1, 1234)]);
        let then: Vec<OrderEvent> = (1..per_object)
            .map(|_| OrderEvent::OrderApproved {})
            .collect();
        let records: Vec<archive::ArchiveRecord> = order_history(&order_id, &created, at(0), &then)
            .into_iter()
            .enumerate()
            .map(|(i, event)| archive::ArchiveRecord {
                sequence_number: format!("{}", 10_000_000 + index * 100_000 + i + 1),
                event,
            })
            .collect();
        for object in archive::plan_objects("generated", &records).expect("plan") {
            side.archive().put(&object).await.expect("PutObject");
        }
    }
}

#[tokio::test]
async fn a_replayer_near_its_deadline_sends_a_continuation_and_the_continuation_finishes_the_partition()
 {
    let side = ArchiveSide::fresh().await;
    let events = histories(12);
    side.read.append(&events).await;
    archive_in_batches(&side, &events.iter().map(record_of).collect::<Vec<_>>(), 2).await;
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
    assert_eq!(next.after.as_deref(), Some(first_key.as_str()));
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

#[tokio::test]
async fn blue_green_a_rebuilt_table_catches_up_by_resuming_and_then_equals_the_fold() {
    let side = ArchiveSide::fresh().await;
    let before = histories(6);
    side.read.append(&before).await;
    archive_in_batches(&side, &before.iter().map(record_of).collect::<Vec<_>>(), 4).await;
    // Green: rebuilt from the archive as it is now.
    let green = another_view_table(&side, "ftgo-order-history-v2").await;
    let checkpoints = replay::Checkpoints::new(side.archive(), &green);
    for request in requests_into(&side, &green).await {
        let outcome = side
            .replayer
            .replay_objects(
                &request,
                replay::ReplayMode::default(),
                Some(&checkpoints),
                |_, _| false,
            )
            .await
            .expect("replay");
        assert!(outcome.complete);
    }
    // Meanwhile the live system goes on: new orders, and new events of old ones.
    let mut after = histories(4);
    let undelivered = before
        .iter()
        .map(|e| e.aggregate_id.clone())
        .find(|id| {
            !before
                .iter()
                .any(|e| e.stream_id == format!("Delivery#{id}"))
        })
        .expect("an order without delivery events");
    after.push(stored(
        AggregateType::Delivery,
        &undelivered,
        1,
        &DeliveryEvent::DeliveryPickedUp {},
        at(5_000),
    ));
    side.read.append(&after).await;
    archive_in_batches(&side, &after.iter().map(record_of).collect::<Vec<_>>(), 4).await;
    let all: Vec<StoredEvent> = before.iter().chain(&after).cloned().collect();
    assert!(
        !differences(&side, &green, &all).await.is_empty(),
        "green is behind"
    );

    // Catching up: a replay resumed from the checkpoints reads only the new objects.
    let mut caught_up = 0;
    for request in requests_into(&side, &green).await {
        let rest = checkpoints.resume(&request).await.expect("resume");
        let outcome = side
            .replayer
            .replay_objects(
                &rest,
                replay::ReplayMode::default(),
                Some(&checkpoints),
                |_, _| false,
            )
            .await
            .expect("catch-up replay");
        caught_up += outcome.summary.events;
    }
    assert_eq!(caught_up, after.len(), "only the new events are read again");
    assert_eq!(differences(&side, &green, &all).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_rebuild_from_the_latest_view_snapshot_plus_later_events_equals_a_full_replay() {
    let side = ArchiveSide::fresh().await;
    let early = histories(6);
    side.read.append(&early).await;
    archive_in_batches(&side, &early.iter().map(record_of).collect::<Vec<_>>(), 4).await;
    // A replay keeps table A (with checkpoints); a snapshot is taken of it at its watermark.
    let kept = another_view_table(&side, "ftgo-order-history-a").await;
    let checkpoints = replay::Checkpoints::new(side.archive(), &kept);
    for request in requests_into(&side, &kept).await {
        side.replayer
            .replay_objects(
                &request,
                replay::ReplayMode::default(),
                Some(&checkpoints),
                |_, _| false,
            )
            .await
            .expect("replay");
    }
    let snapshots =
        ftgo_aws::view_snapshot::ViewSnapshots::new(side.archive(), side.read.dynamodb.clone());
    let (_, taken) = snapshots.take(&kept).await.expect("snapshot");
    assert_eq!(
        taken.items,
        ftgo_aws::verify::expected_view(&early).expect("fold").len()
    );

    // Later events, archived after the watermark.
    let mut late = histories(3);
    let undelivered = early
        .iter()
        .map(|e| e.aggregate_id.clone())
        .find(|id| {
            !early
                .iter()
                .any(|e| e.stream_id == format!("Delivery#{id}"))
        })
        .expect("an order without delivery events");
    late.push(stored(
        AggregateType::Delivery,
        &undelivered,
        1,
        &DeliveryEvent::DeliveryPickedUp {},
        at(9_000),
    ));
    side.read.append(&late).await;
    archive_in_batches(&side, &late.iter().map(record_of).collect::<Vec<_>>(), 4).await;
    let all: Vec<StoredEvent> = early.iter().chain(&late).cloned().collect();

    // Two-step rebuild into B: the latest snapshot, then only the events after its watermark.
    let rebuilt = another_view_table(&side, "ftgo-order-history-b").await;
    let (_, latest) = snapshots
        .latest(&kept)
        .await
        .expect("list")
        .expect("a snapshot");
    assert_eq!(latest, taken);
    assert_eq!(
        snapshots.restore(&latest, &rebuilt).await.expect("restore"),
        taken.items
    );
    let resumed = replay::Checkpoints::new(side.archive(), &rebuilt);
    let mut read_again = 0;
    for request in requests_into(&side, &rebuilt).await {
        let rest = resumed.resume(&request).await.expect("resume");
        let outcome = side
            .replayer
            .replay_objects(
                &rest,
                replay::ReplayMode::default(),
                Some(&resumed),
                |_, _| false,
            )
            .await
            .expect("replay after the watermark");
        read_again += outcome.summary.events;
    }
    assert_eq!(
        read_again,
        late.len(),
        "only the events after the watermark are replayed"
    );

    // A full replay into the stack's table, for comparison.
    for request in requests_into(&side, &side.target()).await {
        side.replayer.replay(&request).await.expect("full replay");
    }
    assert_eq!(
        read_side::scan_table(&side.read.dynamodb, &rebuilt).await,
        side.scan_view().await,
        "the two-step rebuild equals a full replay, byte for byte"
    );
    assert_eq!(
        differences(&side, &rebuilt, &all).await,
        Vec::<String>::new()
    );
}
