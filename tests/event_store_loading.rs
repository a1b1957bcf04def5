//! Loading aggregates from the DynamoDB event store (moto server and, when Java is here, AWS's
//! DynamoDB Local): streams larger than one Query page, snapshots plus tail, a broken snapshot,
//! and stored v1 events upcast on load.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::write_side;

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_domain::order::{LineItem, Order, OrderCommand, OrderEvent, OrderStatus};
use ftgo_domain::{Aggregate, AggregateType, Money};
use ftgo_tests::{emulators, unique_id};
use write_side::{context, create_command, created_event, service_on, store_on, stored};

#[tokio::test]
async fn a_stream_larger_than_one_megabyte_loads_through_every_page() {
    for emulator in emulators().await {
        let store = store_on(emulator, emulator.dynamodb().await);
        let order_id = unique_id("order");
        store
            .append(&[stored(&order_id, 1, &created_event())], &[])
            .await
            .expect("created");
        let long_name = "x".repeat(40 * 1024);
        let revisions = 30u64; // 30 × 40 KiB ≈ 1.2 MB: more than one Query page
        for version in 2..=revisions + 1 {
            let line = LineItem {
                menu_item_id: "m-1".into(),
                name: format!("{version}{long_name}"),
                quantity: 1,
                price: Money::from_cents(100),
            };
            let event = OrderEvent::OrderRevised {
                line_items: vec![line],
                order_total: Money::from_cents(100),
            };
            store
                .append(&[stored(&order_id, version, &event)], &[])
                .await
                .expect("appended");
        }
        let loaded = store.load::<Order>(&order_id).await.expect("loads");
        assert_eq!(loaded.version, revisions + 1, "{}", emulator.kind());
        assert!(
            loaded.aggregate.line_items[0]
                .name
                .starts_with(&format!("{}x", revisions + 1))
        );
        let tail = store
            .read_stream(&AggregateType::Order.stream_id(&order_id), 10, Some(20))
            .await
            .expect("reads");
        assert_eq!(
            tail.iter().map(|e| e.version).collect::<Vec<_>>(),
            (11..=20).collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn snapshot_plus_tail_loads_the_same_state_as_a_full_replay() {
    for emulator in emulators().await {
        let service = service_on(emulator, 5).await;
        let created = service
            .create_order(create_command("c-snap"), &context())
            .await
            .expect("created");
        let order_id = created.aggregate_id;
        for n in 0..11u32 {
            let quantities = BTreeMap::from([("m-2".to_owned(), n + 2)]);
            service
                .order_action(
                    &order_id,
                    OrderCommand::Revise {
                        line_item_quantities: quantities,
                    },
                    &context(),
                )
                .await
                .expect("revised");
        }
        let store = service.store();
        let loaded = store.load::<Order>(&order_id).await.expect("loads");
        assert_eq!(loaded.version, 12, "{}", emulator.kind());
        assert_eq!(
            loaded.snapshot_version,
            10,
            "{}: the snapshot is used",
            emulator.kind()
        );
        let events = store
            .read_stream(&AggregateType::Order.stream_id(&order_id), 0, None)
            .await
            .expect("reads");
        let decoded: Vec<OrderEvent> = events
            .iter()
            .map(|e| e.decode().expect("decodes"))
            .collect();
        assert_eq!(loaded.aggregate, Order::from_events(&decoded));
        assert_eq!(loaded.aggregate.line_items[1].quantity, 12);
    }
}

#[tokio::test]
async fn a_snapshot_that_does_not_decode_falls_back_to_a_full_replay() {
    for emulator in emulators().await {
        let service = service_on(emulator, 1000).await;
        let created = service
            .create_order(create_command("c-bad-snap"), &context())
            .await
            .expect("created");
        let order_id = created.aggregate_id;
        service
            .order_action(&order_id, OrderCommand::Approve, &context())
            .await
            .expect("approved");
        emulator
            .dynamodb()
            .await
            .put_item()
            .table_name(emulator.stack().table_name("SnapshotsTable"))
            .item(
                "streamId",
                AttributeValue::S(AggregateType::Order.stream_id(&order_id)),
            )
            .item("version", AttributeValue::N("1".into()))
            .item("state", AttributeValue::S("not an order".into()))
            .send()
            .await
            .expect("corrupt snapshot written");
        let loaded = service
            .store()
            .load::<Order>(&order_id)
            .await
            .expect("loads despite the snapshot");
        assert_eq!(
            (loaded.version, loaded.snapshot_version),
            (2, 0),
            "{}",
            emulator.kind()
        );
        assert_eq!(loaded.aggregate.status, Some(OrderStatus::Approved));
    }
}

#[tokio::test]
async fn a_stored_v1_order_created_event_is_upcast_on_load() {
    for emulator in emulators().await {
        let client = emulator.dynamodb().await;
        let order_id = unique_id("order");
        let v1_payload = AttributeValue::M(
            [
                ("consumerId", AttributeValue::S("c-old".into())),
                ("restaurantId", AttributeValue::S("r-1".into())),
                ("restaurantName", AttributeValue::S("Ajanta".into())),
                ("orderTotal", AttributeValue::N("2468".into())),
                (
                    "lineItems",
                    AttributeValue::L(vec![AttributeValue::M(
                        [
                            ("menuItemId", AttributeValue::S("m-1".into())),
                            ("name", AttributeValue::S("Chicken Vindaloo".into())),
                            ("quantity", AttributeValue::N("2".into())),
                            ("price", AttributeValue::N("1234".into())),
                        ]
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                    )]),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        );
        client
            .put_item()
            .table_name(emulator.stack().table_name("EventsTable"))
            .item(
                "streamId",
                AttributeValue::S(AggregateType::Order.stream_id(&order_id)),
            )
            .item("version", AttributeValue::N("1".into()))
            .item("eventId", AttributeValue::S(unique_id("event")))
            .item("eventType", AttributeValue::S("OrderCreated".into()))
            .item("schemaVersion", AttributeValue::N("1".into()))
            .item("aggregateType", AttributeValue::S("Order".into()))
            .item("aggregateId", AttributeValue::S(order_id.clone()))
            .item(
                "occurredAt",
                AttributeValue::S("2023-03-04T05:06:07Z".into()),
            )
            .item("payload", v1_payload)
            .send()
            .await
            .expect("v1 event written");
        let service = service_on(emulator, 1000).await;
        let loaded = service
            .store()
            .load::<Order>(&order_id)
            .await
            .expect("v1 loads");
        assert_eq!(
            loaded.aggregate.delivery_address,
            None,
            "{}",
            emulator.kind()
        );
        assert_eq!(loaded.aggregate.order_total, Money::from_cents(2468));
        let approved = service
            .order_action(&order_id, OrderCommand::Approve, &context())
            .await
            .expect("commands still work");
        assert_eq!(approved.version, 2);
    }
}
