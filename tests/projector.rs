//! The order-history projector against the emulators, through its Lambda handler: stream
//! batches built from the event table's own items (or the `events/` samples), delivered in
//! order, out of order, duplicated and replayed; gaps filled from the event table; poison
//! records dead-lettered; transient failures reported and stopped at.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

#[path = "fixtures/read_side.rs"]
mod read_side;

use std::collections::{BTreeMap, HashMap};

use aws_lambda_events::dynamodb::EventRecord;
use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_aws::commands::CommandContext;
use ftgo_aws::projector::Projector;
use ftgo_aws::store::event_store::EventStore;
use ftgo_aws::store::order_history::{HistoryQuery, epoch_millis};
use ftgo_domain::AggregateType;
use ftgo_domain::Money;
use ftgo_domain::delivery::{DeliveryCommand, DeliveryEvent, DeliveryStatus};
use ftgo_domain::event::StoredEvent;
use ftgo_domain::order::{
    CreateOrder, DeliveryAddress, LineItem, OrderCommand, OrderEvent, OrderStatus,
};
use ftgo_domain::view::OrderView;
use ftgo_tests::{Emulator, EmulatorKind, emulators, unique_id};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use read_side::{
    ReadSide, at, folded, order_created, order_history, record_of, record_of_image, record_of_item,
    sequence_number, stored, to_millis,
};
use serde_json::{Value, json};

const LIFECYCLE: &str = include_str!("../events/order-history-projector/order-lifecycle.json");
const SCHEMA_V1: &str =
    include_str!("../events/order-history-projector/order-created-schema-v1.json");
const POISON: &str = include_str!("../events/order-history-projector/poison-record.json");
const CONFIRMED_GAP: &str = include_str!("../events/order-history-projector/confirmed-gap.json");
const REMOVE: &str = include_str!("../events/order-history-projector/remove-record.json");
const SAMPLE_ORDER: &str = "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

fn sample(json: &str) -> Vec<EventRecord> {
    serde_json::from_str::<aws_lambda_events::dynamodb::Event>(json)
        .expect("sample batch")
        .records
}

/// Every raw item of the view table.
async fn scan_view(side: &ReadSide) -> Vec<HashMap<String, AttributeValue>> {
    read_side::scan_table(&side.dynamodb, &side.config.order_history_table).await
}

#[tokio::test]
async fn sample_lifecycle_batch_projects_the_order_and_a_replay_changes_no_byte() {
    for emulator in emulators().await {
        let (side, _stack) = ReadSide::fresh(emulator).await;
        let records = sample(LIFECYCLE);
        let response = side.deliver(records.clone()).await;
        assert!(response.batch_item_failures.is_empty());
        let view = side.view(SAMPLE_ORDER).await.expect("sample order");
        assert!(view.is_order());
        assert_eq!(view.status, Some(OrderStatus::Approved));
        assert_eq!(view.delivery_status, Some(DeliveryStatus::Delivered));
        assert_eq!(view.order_total.cents(), 2818);
        assert_eq!(
            view.creation_date,
            Some(time::macros::datetime!(2026-11-26 16:59:00.123 UTC))
        );
        let before = scan_view(&side).await;

        // The same batch again, then reversed, then record by record: nothing changes.
        assert!(
            side.deliver(records.clone())
                .await
                .batch_item_failures
                .is_empty()
        );
        let mut reversed = records.clone();
        reversed.reverse();
        assert!(side.deliver(reversed).await.batch_item_failures.is_empty());
        for record in &records {
            assert!(
                side.deliver(vec![record.clone()])
                    .await
                    .batch_item_failures
                    .is_empty()
            );
        }
        assert_eq!(
            scan_view(&side).await,
            before,
            "byte for byte, on {}",
            side.kind
        );
    }
}

#[tokio::test]
async fn sample_schema_v1_order_created_is_upcast_and_projected() {
    for emulator in emulators().await {
        let (side, _stack) = ReadSide::fresh(emulator).await;
        assert!(
            side.deliver(sample(SCHEMA_V1))
                .await
                .batch_item_failures
                .is_empty()
        );
        let view = side
            .view("0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a6c")
            .await
            .expect("v1 order");
        assert_eq!(
            view.status,
            Some(OrderStatus::ApprovalPending),
            "on {}",
            side.kind
        );
        assert_eq!(view.order_total.cents(), 2468);
    }
}

#[tokio::test]
async fn poison_record_goes_to_the_dlq_and_the_rest_of_its_batch_is_projected() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let records = sample(POISON);
    let response = side.deliver(records.clone()).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "a poison record is not a retry"
    );
    let projected = side
        .view("0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a7d")
        .await
        .expect("the good records around the poison one");
    assert_eq!(projected.status, Some(OrderStatus::Cancelled));
    assert_eq!(
        side.view("0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a8e").await,
        None
    );

    let sqs = moto.sqs().await;
    let received = sqs
        .receive_message()
        .queue_url(stack.queue_url("ProjectorDlq"))
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("ReceiveMessage");
    let messages = received.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1, "exactly the poison record: {messages:?}");
    let body: Value = serde_json::from_str(messages[0].body().unwrap_or_default()).expect("JSON");
    assert_eq!(body["reason"], "UNDECODABLE", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("OrderTeleported"),
        "{body}"
    );
    let poison: Value = serde_json::to_value(&records[1]).expect("record JSON");
    assert_eq!(body["record"], poison, "the whole record travels");
    assert_eq!(body["source"], "order-history-projector");
}

#[tokio::test]
async fn a_record_that_is_not_an_event_at_all_is_dead_lettered() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let garbage = record_of_image(json!({"streamId": {"S": "Order#x"}, "version": {"N": "1"}}));
    let order_id = unique_id("order");
    let good = order_history(
        &order_id,
        &order_created("c", "Ajanta", &[("Naan", 1, 300)]),
        at(0),
        &[],
    );
    let response = side
        .deliver(vec![garbage.clone(), record_of(&good[0])])
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert!(side.view(&order_id).await.expect("good record").is_order());
    let messages = moto
        .sqs()
        .await
        .receive_message()
        .queue_url(stack.queue_url("ProjectorDlq"))
        .max_number_of_messages(10)
        .send()
        .await
        .expect("ReceiveMessage")
        .messages
        .unwrap_or_default();
    assert_eq!(messages.len(), 1);
    let body: Value = serde_json::from_str(messages[0].body().unwrap_or_default()).expect("JSON");
    assert_eq!(body["record"]["eventID"], garbage.event_id);
    assert_eq!(body["reason"], "UNDECODABLE");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("NewImage")
    );
}

#[tokio::test]
async fn a_gap_is_filled_from_the_event_table() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let (order_id, consumer_id) = (unique_id("order"), unique_id("consumer"));
        let events = order_history(
            &order_id,
            &order_created(&consumer_id, "Ajanta", &[("Chicken Vindaloo", 1, 1234)]),
            at(0),
            &[
                OrderEvent::OrderApproved {},
                OrderEvent::OrderRevised {
                    line_items: vec![LineItem {
                        menu_item_id: "m-1".into(),
                        name: "Chicken Vindaloo".into(),
                        quantity: 3,
                        price: Money::from_cents(1234),
                    }],
                    order_total: Money::from_cents(3702),
                },
                OrderEvent::OrderCancelled {},
            ],
        );
        side.append(&events).await;
        // Only the last record arrives (the others are late, or in another batch).
        side.project(&events[3..]).await;
        let view = side.view(&order_id).await.map(to_millis);
        assert_eq!(view, folded(&events).remove(&order_id), "on {}", side.kind);
        // The late ones land later as duplicates.
        side.project(&events[..3]).await;
        assert_eq!(
            side.view(&order_id).await.map(to_millis),
            folded(&events).remove(&order_id)
        );
    }
}

#[tokio::test]
async fn a_status_event_before_creation_leaves_no_half_order_and_creation_completes_it() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let (order_id, consumer_id) = (unique_id("order"), unique_id("consumer"));
        let events = order_history(
            &order_id,
            &order_created(&consumer_id, "Ajanta", &[("Chicken Vindaloo", 1, 1234)]),
            at(0),
            &[OrderEvent::OrderApproved {}],
        );
        // The approval is in the table and on the stream; its creation is not in the table (a
        // consistent read says so): a confirmed gap, dead-lettered (where the emulator has
        // SQS; without it, sending the dead letter fails, which is transient and retried).
        side.append(&events[1..]).await;
        let approved = record_of(&events[1]);
        let response = side.deliver(vec![approved.clone()]).await;
        if side.kind.has_s3_and_sqs() {
            assert!(response.batch_item_failures.is_empty(), "never blocks");
            let letters = dead_letters(emulator, emulator.stack()).await;
            let letter = letters
                .iter()
                .find(|letter| letter["record"]["eventID"] == approved.event_id.as_str())
                .unwrap_or_else(|| panic!("the approval is dead-lettered: {letters:?}"));
            assert_eq!(letter["reason"], "CONFIRMED_GAP");
        } else {
            assert_eq!(failures(&response), [sequence_number(&approved)]);
        }
        assert_eq!(
            side.raw_item(&order_id).await,
            None,
            "no half order, on {}",
            side.kind
        );
        let answer = side.get(&format!("/orders/{order_id}")).await;
        assert_eq!(answer.status, 404);
        let history = side
            .get(&format!(
                "/consumers/{consumer_id}/orders?since={}&until={}",
                read_side::encode(&read_side::rfc3339(at(-60))),
                read_side::encode(&read_side::rfc3339(at(60)))
            ))
            .await;
        assert_eq!(history.status, 200);
        assert!(history.order_ids().is_empty());

        // A pickup that arrives before the creation is kept, but is not an order yet.
        let picked = stored(
            AggregateType::Delivery,
            &order_id,
            1,
            &DeliveryEvent::DeliveryPickedUp {},
            at(5),
        );
        side.append(std::slice::from_ref(&picked)).await;
        side.project(std::slice::from_ref(&picked)).await;
        assert_eq!(side.get(&format!("/orders/{order_id}")).await.status, 404);

        // The creation lands: re-driving the dead letter (or Lambda's retry) completes the order.
        side.append(&events[..1]).await;
        side.deliver(vec![approved, record_of(&events[0])]).await;
        let answer = side.get(&format!("/orders/{order_id}")).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert_eq!(answer.body["status"], "APPROVED");
        assert_eq!(answer.body["deliveryStatus"], "PICKED_UP");
        let mut all = events.clone();
        all.push(picked);
        assert_eq!(
            side.view(&order_id).await.map(to_millis),
            folded(&all).remove(&order_id)
        );
    }
}

/// The dead letters now in `stack`'s projector DLQ, as JSON (received and deleted).
async fn dead_letters(moto: &Emulator, stack: &ftgo_tests::TestStack) -> Vec<Value> {
    let sqs = moto.sqs().await;
    let url = stack.queue_url("ProjectorDlq");
    let mut letters = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return letters;
        }
        for message in messages {
            letters.push(serde_json::from_str(message.body().unwrap_or_default()).expect("JSON"));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("DeleteMessage");
        }
    }
}

/// The `batchItemFailures` of `response`, as sequence numbers.
fn failures(response: &aws_lambda_events::streams::DynamoDbEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap_or_default())
        .collect()
}

/// Writes a stream record's `NewImage` into the event table as it is: a hand-written item.
async fn write_by_hand(side: &ReadSide, record: &EventRecord) {
    let item: HashMap<String, AttributeValue> = record.change.new_image.clone().into();
    side.dynamodb
        .put_item()
        .table_name(&side.config.events_table)
        .set_item(Some(item))
        .send()
        .await
        .expect("PutItem");
}

#[tokio::test]
async fn a_confirmed_gap_is_dead_lettered_and_the_rest_of_the_batch_is_projected() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let records = sample(CONFIRMED_GAP);
    // Version 3 of a stream written by hand; versions 1 and 2 do not exist.
    write_by_hand(&side, &records[0]).await;
    let response = side.deliver(records.clone()).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "a confirmed gap never blocks the shard: {:?}",
        response.batch_item_failures
    );
    assert_eq!(
        side.view("0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a9f").await,
        None,
        "nothing of the gapped stream lands"
    );
    assert!(
        side.view("0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4aa0")
            .await
            .expect("the record after the gap is projected")
            .is_order()
    );
    let letters = dead_letters(moto, &stack).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["reason"], "CONFIRMED_GAP");
    assert_eq!(letters[0]["source"], "order-history-projector");
    assert_eq!(
        letters[0]["record"],
        serde_json::to_value(&records[0]).expect("record JSON"),
        "the whole record travels"
    );
    let message = letters[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("version 1 is not in the event table"),
        "{message}"
    );
}

#[tokio::test]
async fn a_confirmed_gap_after_some_existing_versions_applies_them_and_dead_letters_the_rest() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let order_id = unique_id("order");
    let events = order_history(
        &order_id,
        &order_created("c", "Ajanta", &[("Naan", 1, 300)]),
        at(0),
        &[OrderEvent::OrderApproved {}, OrderEvent::OrderCancelled {}],
    );
    // Version 2 was deleted by hand: 1 and 3 remain.
    side.append(&[events[0].clone(), events[2].clone()]).await;
    let response = side.deliver(vec![record_of(&events[2])]).await;
    assert!(response.batch_item_failures.is_empty());
    let view = side.view(&order_id).await.expect("version 1 applied");
    assert_eq!(view.order_version, Some(1));
    assert_eq!(view.status, Some(OrderStatus::ApprovalPending));
    let letters = dead_letters(moto, &stack).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["reason"], "CONFIRMED_GAP");
    assert!(
        letters[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("version 2 is not in the event table")
    );
}

#[tokio::test]
async fn an_event_table_item_that_is_not_an_event_dead_letters_the_record_it_blocks() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let order_id = unique_id("order");
    let events = order_history(
        &order_id,
        &order_created("c", "Ajanta", &[("Naan", 1, 300)]),
        at(0),
        &[OrderEvent::OrderApproved {}],
    );
    // Version 1 in the table is an item by hand that is not an event at all.
    side.dynamodb
        .put_item()
        .table_name(&side.config.events_table)
        .item("streamId", AttributeValue::S(events[0].stream_id.clone()))
        .item("version", AttributeValue::N("1".into()))
        .item("note", AttributeValue::S("written by hand".into()))
        .send()
        .await
        .expect("PutItem");
    side.append(&events[1..]).await;
    let after = order_history(
        &unique_id("after"),
        &order_created("c", "Ajanta", &[("Naan", 1, 300)]),
        at(0),
        &[],
    );
    let response = side
        .deliver(vec![record_of(&events[1]), record_of(&after[0])])
        .await;
    assert!(
        response.batch_item_failures.is_empty(),
        "retrying cannot cure it: {:?}",
        failures(&response)
    );
    assert!(side.view(&after[0].aggregate_id).await.is_some());
    let letters = dead_letters(moto, &stack).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["reason"], "UNPROJECTABLE");
}

#[tokio::test]
async fn a_remove_record_is_dead_lettered_and_the_rest_of_the_batch_is_projected() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let records = sample(REMOVE);
    let response = side.deliver(records.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(
        side.view("0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4ab2")
            .await
            .expect("the record after the REMOVE is projected")
            .is_order()
    );
    let letters = dead_letters(moto, &stack).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["reason"], "REMOVED");
    assert_eq!(
        letters[0]["record"],
        serde_json::to_value(&records[0]).expect("record JSON")
    );
}

#[tokio::test]
async fn a_corrupt_version_is_dead_lettered_never_read_as_a_range() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let order_id = unique_id("order");
    let created = order_history(
        &order_id,
        &order_created("c", "Ajanta", &[("Naan", 1, 300)]),
        at(0),
        &[OrderEvent::OrderApproved {}],
    );
    // Only version 1 is in the event table; the corrupt records carry version 2's image.
    side.append(&created[..1]).await;
    let image = |version: Value| {
        let mut image = serde_json::to_value(
            serde_dynamo::to_item::<_, serde_dynamo::Item>(&created[1]).expect("image"),
        )
        .expect("image JSON");
        image["version"] = version;
        record_of_image(image)
    };
    let corrupt = [
        image(json!({"N": u64::MAX.to_string()})),
        image(json!({"N": "1000000000000"})),
        image(json!({"N": "0"})),
        image(json!({"N": "-2"})),
        image(json!({"N": "abc"})),
        image(json!({"N": "99999999999999999999999999"})),
    ];
    let after = order_history(
        &unique_id("after"),
        &order_created("c", "Ajanta", &[("Naan", 1, 300)]),
        at(0),
        &[],
    );
    let mut records = corrupt.to_vec();
    records.push(record_of(&created[0]));
    records.push(record_of(&after[0]));
    let response = side.deliver(records).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        failures(&response)
    );
    let view = side.view(&order_id).await.expect("version 1 projected");
    assert_eq!(view.order_version, Some(1), "no corrupt version landed");
    assert!(side.view(&after[0].aggregate_id).await.is_some());
    let letters = dead_letters(moto, &stack).await;
    let reasons: Vec<&str> = letters
        .iter()
        .map(|letter| letter["reason"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(reasons, ["CORRUPT_VERSION"; 6], "{letters:?}");
}

#[tokio::test]
async fn a_transient_failure_reports_its_sequence_number_and_stops_the_batch() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let [first, gapped, after] = [unique_id("first"), unique_id("gapped"), unique_id("after")];
        let created = order_created("c", "Ajanta", &[("Naan", 1, 300)]);
        let first_events = order_history(&first, &created, at(0), &[]);
        let gapped_events =
            order_history(&gapped, &created, at(0), &[OrderEvent::OrderApproved {}]);
        let after_events = order_history(&after, &created, at(0), &[]);
        side.append(&gapped_events).await;
        // A projector whose gap reads fail on the AWS side (the event table is not there).
        let failing_reads = Projector::new(
            side.dao.clone(),
            EventStore::new(
                side.dynamodb.clone(),
                "ftgo-no-such-events-table",
                &side.config.snapshots_table,
            ),
            emulator.sqs().await,
            &side.config.projector_dlq_url,
        );
        let records = vec![
            record_of(&first_events[0]),
            record_of(&gapped_events[1]),
            record_of(&after_events[0]),
        ];
        let response = failing_reads
            .process_batch(&read_side::batch(records.clone()))
            .await;
        assert_eq!(
            failures(&response),
            [sequence_number(&records[1])],
            "on {}",
            side.kind
        );
        assert!(
            side.view(&first).await.is_some(),
            "records before it are projected"
        );
        assert_eq!(side.view(&gapped).await, None);
        assert_eq!(
            side.view(&after).await,
            None,
            "records after it wait for the retry"
        );
        // Lambda retries from the reported record: the gap is filled and the rest lands.
        side.project(&[gapped_events[1].clone(), after_events[0].clone()])
            .await;
        assert_eq!(
            side.view(&gapped).await.and_then(|view| view.order_version),
            Some(2)
        );
        assert!(side.view(&after).await.is_some());
    }
}

#[tokio::test]
async fn an_undecodable_event_in_the_table_blocks_only_its_order_and_is_dead_lettered() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let order_id = unique_id("order");
    let events = order_history(
        &order_id,
        &order_created("c", "Ajanta", &[("Naan", 1, 300)]),
        at(0),
        &[OrderEvent::OrderApproved {}, OrderEvent::OrderCancelled {}],
    );
    let mut broken = events[1].clone();
    broken.event_type = "OrderTeleported".into();
    side.append(&[events[0].clone(), broken.clone(), events[2].clone()])
        .await;
    let other = unique_id("other");
    let other_events = order_history(
        &other,
        &order_created("c", "Ajanta", &[("Naan", 1, 300)]),
        at(0),
        &[],
    );
    let response = side
        .deliver(vec![
            record_of(&events[0]),
            record_of(&events[2]),
            record_of(&other_events[0]),
        ])
        .await;
    assert!(
        response.batch_item_failures.is_empty(),
        "the shard is not blocked"
    );
    assert_eq!(
        side.view(&order_id).await.and_then(|v| v.status),
        Some(OrderStatus::ApprovalPending)
    );
    assert!(side.view(&other).await.is_some());
    let messages = moto
        .sqs()
        .await
        .receive_message()
        .queue_url(stack.queue_url("ProjectorDlq"))
        .max_number_of_messages(10)
        .send()
        .await
        .expect("ReceiveMessage")
        .messages
        .unwrap_or_default();
    assert_eq!(messages.len(), 1);
    let body: Value = serde_json::from_str(messages[0].body().unwrap_or_default()).expect("JSON");
    assert_eq!(body["blockedBy"]["version"], 2);
    assert_eq!(body["reason"], "BLOCKED");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("version 3")
    );
}

// ------------------------------------------------------------------ property

/// One command of a random history.
#[derive(Debug, Clone)]
enum Step {
    Approve,
    Reject,
    Cancel,
    Revise(u32),
    PickUp,
    Deliver,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Approve),
        1 => Just(Step::Reject),
        1 => Just(Step::Cancel),
        2 => (0u32..4).prop_map(Step::Revise),
        2 => Just(Step::PickUp),
        2 => Just(Step::Deliver),
    ]
}

/// A deterministic generator for the delivery schedule (SplitMix64).
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

async fn run_history(
    side: &ReadSide,
    consumer_id: &str,
    steps: &[Step],
    names: (&str, &str),
) -> String {
    let context = CommandContext::default();
    let command = CreateOrder {
        consumer_id: consumer_id.to_owned(),
        restaurant_id: "r-1".into(),
        restaurant_name: names.0.into(),
        line_items: vec![
            LineItem {
                menu_item_id: "m-1".into(),
                name: names.1.into(),
                quantity: 1,
                price: Money::from_cents(1250),
            },
            LineItem {
                menu_item_id: "m-2".into(),
                name: "Garlic Naan".into(),
                quantity: 2,
                price: Money::from_cents(300),
            },
        ],
        delivery_address: DeliveryAddress {
            street1: "1 Main St".into(),
            street2: None,
            city: "Oakland".into(),
            state: "CA".into(),
            zip: "94612".into(),
        },
    };
    let order_id = side
        .commands
        .create_order(command, &context)
        .await
        .expect("create")
        .aggregate_id;
    for step in steps {
        let result = match step {
            Step::Approve => side
                .commands
                .order_action(&order_id, OrderCommand::Approve, &context)
                .await
                .map(drop),
            Step::Reject => side
                .commands
                .order_action(&order_id, OrderCommand::Reject, &context)
                .await
                .map(drop),
            Step::Cancel => side
                .commands
                .order_action(
                    &order_id,
                    OrderCommand::Cancel {
                        delivery_picked_up: false,
                    },
                    &context,
                )
                .await
                .map(drop),
            Step::Revise(quantity) => side
                .commands
                .order_action(
                    &order_id,
                    OrderCommand::Revise {
                        line_item_quantities: std::collections::BTreeMap::from([(
                            "m-1".to_owned(),
                            *quantity,
                        )]),
                    },
                    &context,
                )
                .await
                .map(drop),
            Step::PickUp => side
                .commands
                .delivery_action(
                    &order_id,
                    DeliveryCommand::PickUp { order_status: None },
                    &context,
                )
                .await
                .map(drop),
            Step::Deliver => side
                .commands
                .delivery_action(&order_id, DeliveryCommand::Deliver, &context)
                .await
                .map(drop),
        };
        match result {
            Ok(()) | Err(ftgo_aws::Error::Domain(_)) => {}
            Err(other) => panic!("{step:?}: {other}"),
        }
    }
    order_id
}

/// For random command histories over several orders, stream records delivered with random
/// duplication, reordering and replays end in view items equal to the fold of the event table.
async fn projection_equals_fold(side: &ReadSide, histories: &[Vec<Step>], seed: u64) {
    const NAMES: [(&str, &str); 3] = [
        ("Ajanta", "Chicken Vindaloo"),
        ("Luigi's", "Pizza Margherita"),
        ("Sushi Zen", "Salmon Nigiri"),
    ];
    let consumer_id = unique_id("consumer");
    let mut order_ids = Vec::new();
    for (index, steps) in histories.iter().enumerate() {
        order_ids.push(run_history(side, &consumer_id, steps, NAMES[index % NAMES.len()]).await);
    }
    let mut items = Vec::new();
    for order_id in &order_ids {
        items.extend(side.table_items(order_id).await);
    }
    let events: Vec<StoredEvent> = items
        .iter()
        .map(|item| serde_dynamo::from_item(item.clone()).expect("stored event"))
        .collect();
    let records: Vec<EventRecord> = items.iter().map(record_of_item).collect();

    let mut dice = Dice(seed);
    let mut schedule: Vec<EventRecord> = records.clone();
    for _ in 0..dice.below(records.len() + 1) {
        schedule.push(records[dice.below(records.len())].clone());
    }
    dice.shuffle(&mut schedule);
    let mut delivered: Vec<Vec<EventRecord>> = Vec::new();
    while !schedule.is_empty() {
        let size = 1 + dice.below(5.min(schedule.len()));
        let batch: Vec<EventRecord> = schedule.drain(..size).collect();
        let response = side.deliver(batch.clone()).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "{:?}",
            response.batch_item_failures
        );
        delivered.push(batch);
        if dice.below(4) == 0 {
            // A replay of an earlier batch (Lambda retrying, or a bisected batch).
            let again = delivered[dice.below(delivered.len())].clone();
            assert!(side.deliver(again).await.batch_item_failures.is_empty());
        }
    }

    let expected: BTreeMap<String, OrderView> = folded(&events);
    for order_id in &order_ids {
        let stored = side.view(order_id).await.map(to_millis);
        assert_eq!(
            stored.as_ref(),
            expected.get(order_id),
            "order {order_id} on {}",
            side.kind
        );
    }
    // And the history lists exactly those orders, newest first.
    let page = side
        .dao
        .history(&HistoryQuery {
            consumer_id: consumer_id.clone(),
            since: 0,
            until: i64::MAX / 2,
            status: None,
            keywords: Vec::new(),
            page_size: 100,
            start_after: None,
        })
        .await
        .expect("history");
    let mut listed: Vec<&str> = page.orders.iter().map(|v| v.order_id.as_str()).collect();
    listed.sort();
    let mut ids: Vec<&str> = order_ids.iter().map(String::as_str).collect();
    ids.sort();
    assert_eq!(listed, ids);
    let _ = epoch_millis;
}

#[test]
fn random_histories_delivered_with_duplicates_reordering_and_replays_equal_the_fold() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let all = runtime.block_on(emulators());
    for emulator in all {
        let side = runtime.block_on(ReadSide::shared(emulator));
        let cases = match emulator.kind() {
            EmulatorKind::Moto => 16,
            EmulatorKind::DynamoDbLocal => 8,
        };
        let mut runner = TestRunner::new(ProptestConfig {
            cases,
            max_shrink_iters: 16,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        let strategy = (
            prop::collection::vec(prop::collection::vec(step(), 0..8), 2..5),
            any::<u64>(),
        );
        runner
            .run(&strategy, |(histories, seed)| {
                runtime.block_on(projection_equals_fold(&side, &histories, seed));
                Ok(())
            })
            .unwrap_or_else(|e| panic!("on {}: {e}", emulator.kind()));
    }
}
