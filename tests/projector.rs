//! The order-history projector against the emulators, through its Lambda handler: stream
//! batches built from the event table's own items (or the `events/` samples), delivered in
//! order, out of order, duplicated and replayed; gaps filled from the event table; transient
//! failures reported with the rest of their stream, other streams going on. Dead letters: `projector_dead_letters`; random histories:
//! `projector_property`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::read_side;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_aws::projector::Projector;
use ftgo_aws::store::event_store::EventStore;
use ftgo_domain::AggregateType;
use ftgo_domain::Money;
use ftgo_domain::delivery::{DeliveryEvent, DeliveryStatus};
use ftgo_domain::order::{LineItem, OrderEvent, OrderStatus};
use ftgo_tests::{emulators, unique_id};
use read_side::{
    ReadSide, at, dead_letters, failures, folded, order_created, order_history, record_of,
    sample_records, sequence_number, stored, to_millis,
};

const LIFECYCLE: &str = include_str!("../events/order-history-projector/order-lifecycle.json");
const SCHEMA_V1: &str =
    include_str!("../events/order-history-projector/order-created-schema-v1.json");
const SAMPLE_ORDER: &str = "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

/// Every raw item of the view table.
async fn scan_view(side: &ReadSide) -> Vec<HashMap<String, AttributeValue>> {
    read_side::scan_table(&side.dynamodb, &side.config.order_history_table).await
}

#[tokio::test]
async fn sample_lifecycle_batch_projects_the_order_and_a_replay_changes_no_byte() {
    for emulator in emulators().await {
        let (side, _stack) = ReadSide::fresh(emulator).await;
        let records = sample_records(LIFECYCLE);
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
            side.deliver(sample_records(SCHEMA_V1))
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

#[tokio::test]
async fn a_transient_failure_reports_its_stream_s_records_and_the_other_streams_go_on() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let [first, gapped, after] = [unique_id("first"), unique_id("gapped"), unique_id("after")];
        let created = order_created("c", "Ajanta", &[("Naan", 1, 300)]);
        let first_events = order_history(&first, &created, at(0), &[]);
        let gapped_events = order_history(
            &gapped,
            &created,
            at(0),
            &[OrderEvent::OrderApproved {}, OrderEvent::OrderCancelled {}],
        );
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
            record_of(&gapped_events[2]),
        ];
        let response = failing_reads
            .process_batch(&read_side::batch(records.clone()))
            .await;
        // The failed record and the record of its stream after it; Lambda checkpoints at the
        // lowest and retries everything from there.
        assert_eq!(
            failures(&response),
            [sequence_number(&records[1]), sequence_number(&records[3])],
            "on {}",
            side.kind
        );
        assert!(
            side.view(&first).await.is_some(),
            "records before it are projected"
        );
        assert_eq!(side.view(&gapped).await, None);
        assert!(
            side.view(&after).await.is_some(),
            "another stream is not held up by the failing one"
        );
        // Lambda retries from the lowest reported record: the gap is filled, the rest lands
        // (the other stream's record again, a duplicate).
        let response = side.deliver(records[1..].to_vec()).await;
        assert!(failures(&response).is_empty());
        let view = side.view(&gapped).await.expect("gapped order");
        assert_eq!(view.order_version, Some(3));
        assert_eq!(view.status, Some(OrderStatus::Cancelled));
        assert!(side.view(&after).await.is_some());
    }
}
