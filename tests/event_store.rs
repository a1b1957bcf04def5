//! The DynamoDB event store and command service against real DynamoDB APIs (moto server and,
//! when Java is here, AWS's DynamoDB Local): conditional appends, races, pagination, snapshots
//! and upcasting.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_aws::Error;
use ftgo_aws::commands::{CommandContext, CommandService, RetryPolicy};
use ftgo_aws::store::event_store::{Appended, EventStore, StreamHead};
use ftgo_domain::delivery::{Delivery, DeliveryCommand, DeliveryStatus};
use ftgo_domain::event::{EventStamp, Metadata, StoredEvent};
use ftgo_domain::order::{
    CreateOrder, DeliveryAddress, LineItem, Order, OrderCommand, OrderEvent, OrderStatus,
};
use ftgo_domain::{Aggregate, AggregateType, DomainError, Money};
use ftgo_tests::{Emulator, emulators, unique_id};

fn store_on(emulator: &Emulator, client: aws_sdk_dynamodb::Client) -> EventStore {
    let stack = emulator.stack();
    EventStore::new(
        client,
        stack.table_name("EventsTable"),
        stack.table_name("SnapshotsTable"),
    )
}

async fn service_on(emulator: &Emulator, snapshot_interval: u64) -> CommandService {
    CommandService::new(
        store_on(emulator, emulator.dynamodb().await),
        RetryPolicy::default(),
        snapshot_interval,
    )
}

fn create_command(consumer: &str) -> CreateOrder {
    CreateOrder {
        consumer_id: consumer.to_owned(),
        restaurant_id: "r-1".into(),
        restaurant_name: "Ajanta".into(),
        line_items: vec![
            LineItem {
                menu_item_id: "m-1".into(),
                name: "Chicken Vindaloo".into(),
                quantity: 2,
                price: Money::from_cents(1234),
            },
            LineItem {
                menu_item_id: "m-2".into(),
                name: "Garlic Naan".into(),
                quantity: 1,
                price: Money::from_cents(350),
            },
        ],
        delivery_address: DeliveryAddress {
            street1: "1 Main St".into(),
            street2: None,
            city: "Oakland".into(),
            state: "CA".into(),
            zip: "94612".into(),
        },
    }
}

fn context() -> CommandContext {
    CommandContext {
        request_id: unique_id("request"),
        expected_version: None,
    }
}

fn stored(order_id: &str, version: u64, event: &OrderEvent) -> StoredEvent {
    let stamp = EventStamp {
        event_id: unique_id("event"),
        occurred_at: time::OffsetDateTime::now_utc(),
    };
    StoredEvent::record(
        AggregateType::Order,
        order_id,
        version,
        event,
        stamp,
        Metadata::default(),
    )
    .expect("records")
}

fn created_event() -> OrderEvent {
    match Order::default().handle(ftgo_domain::order::OrderCommand::Create(create_command(
        "c-1",
    ))) {
        Ok(mut events) => events.remove(0),
        Err(error) => panic!("fixture is valid: {error}"),
    }
}

#[tokio::test]
async fn conditional_append_refuses_a_taken_version_and_writes_nothing() {
    for emulator in emulators().await {
        let store = store_on(emulator, emulator.dynamodb().await);
        let order_id = unique_id("order");
        store
            .append(&[stored(&order_id, 1, &created_event())], &[])
            .await
            .expect("first append");
        let again = store
            .append(&[stored(&order_id, 1, &OrderEvent::OrderApproved {})], &[])
            .await;
        assert!(
            matches!(again, Err(Error::Conflict(_))),
            "{}: {again:?}",
            emulator.kind()
        );
        // A transaction whose second event collides writes neither.
        let batch = [
            stored(&order_id, 2, &OrderEvent::OrderApproved {}),
            stored(&order_id, 1, &OrderEvent::OrderCancelled {}),
        ];
        assert!(
            matches!(store.append(&batch, &[]).await, Err(Error::Conflict(_))),
            "{}",
            emulator.kind()
        );
        let events = store
            .read_stream(&AggregateType::Order.stream_id(&order_id), 0, None)
            .await
            .expect("reads");
        assert_eq!(events.len(), 1, "{}", emulator.kind());
        assert_eq!(events[0].event_type, "OrderCreated");
    }
}

/// The fewest of 50 racing revisions that must get through: `RetryPolicy::default()`'s 6
/// attempts. A writer that loses all 6 saw 6 distinct versions taken (each loss reloads and aims
/// past the version that beat it), each by a writer that succeeded; so a correct store lets at
/// least 6 through, whatever the timing. Runs on both emulators see 15 to 20.
const MIN_RACE_WINNERS: usize = 6;

#[tokio::test]
async fn fifty_concurrent_commands_leave_contiguous_versions_and_lose_nothing() {
    for emulator in emulators().await {
        let service = Arc::new(service_on(emulator, 1000).await);
        let created = service
            .create_order(create_command("c-race"), &context())
            .await
            .expect("created");
        let order_id = created.aggregate_id.clone();
        let tasks: Vec<_> = (0..50u32)
            .map(|n| {
                let service = Arc::clone(&service);
                let order_id = order_id.clone();
                tokio::spawn(async move {
                    let quantities = BTreeMap::from([("m-1".to_owned(), n + 1)]);
                    service
                        .order_action(
                            &order_id,
                            OrderCommand::Revise {
                                line_item_quantities: quantities,
                            },
                            &context(),
                        )
                        .await
                        .map(|o| (n, o.version))
                })
            })
            .collect();
        let mut written = BTreeMap::new();
        let mut conflicts = 0;
        for task in tasks {
            match task.await.expect("task ran") {
                Ok((n, version)) => assert!(
                    written.insert(version, n).is_none(),
                    "version {version} handed out twice"
                ),
                Err(Error::Conflict(_)) => conflicts += 1,
                Err(other) => panic!("{}: unexpected {other}", emulator.kind()),
            }
        }
        assert_eq!(written.len() + conflicts, 50, "every caller got an answer");
        // A store that answered CONFLICT to (nearly) everyone would be broken, not merely busy.
        assert!(
            written.len() >= MIN_RACE_WINNERS,
            "{}: only {} of 50 writers succeeded",
            emulator.kind(),
            written.len()
        );
        let events = service
            .store()
            .read_stream(&AggregateType::Order.stream_id(&order_id), 0, None)
            .await
            .expect("reads");
        let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
        assert_eq!(
            versions,
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "{}: contiguous",
            emulator.kind()
        );
        assert_eq!(
            events.len(),
            1 + written.len(),
            "{}: every success is in the stream, nothing else",
            emulator.kind()
        );
        // Each written version holds exactly the revision its caller asked for.
        for event in &events[1..] {
            let OrderEvent::OrderRevised { line_items, .. } =
                event.decode::<OrderEvent>().expect("decodes")
            else {
                panic!("unexpected {}", event.event_type)
            };
            let asked = written[&event.version];
            assert_eq!(line_items[0].quantity, asked + 1);
        }
        println!(
            "{}: {} written, {conflicts} answered CONFLICT",
            emulator.kind(),
            written.len()
        );
    }
}

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

#[tokio::test]
async fn if_match_with_another_version_answers_version_mismatch_and_writes_nothing() {
    for emulator in emulators().await {
        let service = service_on(emulator, 1000).await;
        let order_id = service
            .create_order(create_command("c-if"), &context())
            .await
            .expect("created")
            .aggregate_id;
        let stale = CommandContext {
            request_id: unique_id("request"),
            expected_version: Some(7),
        };
        let result = service
            .order_action(&order_id, OrderCommand::Approve, &stale)
            .await;
        assert!(
            matches!(
                result,
                Err(Error::VersionMismatch {
                    expected: 7,
                    actual: 1
                })
            ),
            "{result:?}"
        );
        let current = CommandContext {
            request_id: unique_id("request"),
            expected_version: Some(1),
        };
        assert_eq!(
            service
                .order_action(&order_id, OrderCommand::Approve, &current)
                .await
                .expect("matches")
                .version,
            2
        );
        assert_eq!(
            service
                .store()
                .load::<Order>(&order_id)
                .await
                .expect("loads")
                .version,
            2
        );
    }
}

#[tokio::test]
async fn racing_cancel_and_pickup_never_both_succeed() {
    for emulator in emulators().await {
        let service = Arc::new(service_on(emulator, 1000).await);
        let mut both_refused = 0;
        for _ in 0..8 {
            let order_id = service
                .create_order(create_command("c-cancel-race"), &context())
                .await
                .expect("created")
                .aggregate_id;
            service
                .order_action(&order_id, OrderCommand::Approve, &context())
                .await
                .expect("approved");
            let (cancel_context, pickup_context) = (context(), context());
            let (cancel, pickup) = tokio::join!(
                service.order_action(
                    &order_id,
                    OrderCommand::Cancel {
                        delivery_picked_up: false
                    },
                    &cancel_context
                ),
                service.delivery_action(
                    &order_id,
                    DeliveryCommand::PickUp { order_status: None },
                    &pickup_context
                ),
            );
            assert!(
                !(cancel.is_ok() && pickup.is_ok()),
                "{}: both succeeded on {order_id}",
                emulator.kind()
            );
            if cancel.is_err() && pickup.is_err() {
                both_refused += 1;
            }
            let store = service.store();
            let order = store
                .load::<Order>(&order_id)
                .await
                .expect("order loads")
                .aggregate;
            let delivery = store
                .load::<Delivery>(&order_id)
                .await
                .expect("delivery loads")
                .aggregate;
            assert!(
                !(order.status == Some(OrderStatus::Cancelled)
                    && delivery.status == Some(DeliveryStatus::PickedUp)),
                "{}: {order_id} is cancelled and picked up",
                emulator.kind()
            );
        }
        assert!(both_refused < 8, "at least one race had a winner");
    }
}

#[tokio::test]
async fn refusals_write_nothing() {
    for emulator in emulators().await {
        let service = service_on(emulator, 1000).await;
        let order_id = service
            .create_order(create_command("c-refuse"), &context())
            .await
            .expect("created")
            .aggregate_id;
        let pickup = service
            .delivery_action(
                &order_id,
                DeliveryCommand::PickUp { order_status: None },
                &context(),
            )
            .await;
        assert!(
            matches!(pickup, Err(Error::Domain(DomainError::InvalidState(_)))),
            "{pickup:?}"
        );
        let unknown = service
            .order_action(&unique_id("order"), OrderCommand::Approve, &context())
            .await;
        assert!(
            matches!(unknown, Err(Error::Domain(DomainError::NotFound(_)))),
            "{unknown:?}"
        );
        let deliver = service
            .delivery_action(&unique_id("order"), DeliveryCommand::Deliver, &context())
            .await;
        assert!(
            matches!(deliver, Err(Error::Domain(DomainError::NotFound(_)))),
            "{deliver:?}"
        );
        let store = service.store();
        assert_eq!(
            store
                .load::<Delivery>(&order_id)
                .await
                .expect("loads")
                .version,
            0
        );
        assert_eq!(
            store.load::<Order>(&order_id).await.expect("loads").version,
            1
        );
    }
}

fn delivery_stored(order_id: &str, version: u64) -> StoredEvent {
    let stamp = EventStamp {
        event_id: unique_id("event"),
        occurred_at: time::OffsetDateTime::now_utc(),
    };
    StoredEvent::record(
        AggregateType::Delivery,
        order_id,
        version,
        &ftgo_domain::delivery::DeliveryEvent::DeliveryPickedUp {},
        stamp,
        Metadata::default(),
    )
    .expect("records")
}

#[tokio::test]
async fn appending_the_same_event_again_is_recognised_as_our_own_write() {
    for emulator in emulators().await {
        let store = store_on(emulator, emulator.dynamodb().await);
        let kind = emulator.kind();
        // One event: a conditional PutItem, retried as the SDK would after a lost answer.
        let order_id = unique_id("order");
        let created = stored(&order_id, 1, &created_event());
        assert_eq!(
            store.append(std::slice::from_ref(&created), &[]).await.ok(),
            Some(Appended::Written),
            "{kind}"
        );
        let again = store.append(std::slice::from_ref(&created), &[]).await;
        assert_eq!(again.ok(), Some(Appended::AlreadyStored), "{kind}");

        // Several events with a guard: one TransactWriteItems, retried.
        let batch = [
            stored(&order_id, 2, &OrderEvent::OrderApproved {}),
            stored(&order_id, 3, &OrderEvent::OrderCancelled {}),
        ];
        let guard = [StreamHead {
            stream_id: AggregateType::Delivery.stream_id(&order_id),
            version: 0,
        }];
        assert_eq!(
            store.append(&batch, &guard).await.ok(),
            Some(Appended::Written),
            "{kind}"
        );
        let again = store.append(&batch, &guard).await;
        assert!(
            matches!(again, Ok(Appended::AlreadyStored)),
            "{kind}: {again:?}"
        );

        let events = store
            .read_stream(&AggregateType::Order.stream_id(&order_id), 0, None)
            .await
            .expect("reads");
        let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(
            ids,
            [&created, &batch[0], &batch[1]]
                .map(|e| e.event_id.as_str())
                .to_vec(),
            "{kind}: each event stored once"
        );
    }
}

#[tokio::test]
async fn the_same_versions_with_other_event_ids_still_conflict() {
    for emulator in emulators().await {
        let store = store_on(emulator, emulator.dynamodb().await);
        let kind = emulator.kind();
        let order_id = unique_id("order");
        store
            .append(&[stored(&order_id, 1, &created_event())], &[])
            .await
            .expect("first append");
        // Same version, same content, another event id: someone else's write.
        let single = store
            .append(&[stored(&order_id, 1, &created_event())], &[])
            .await;
        assert!(
            matches!(single, Err(Error::Conflict(_))),
            "{kind}: {single:?}"
        );
        let batch = [
            stored(&order_id, 1, &created_event()),
            stored(&order_id, 2, &OrderEvent::OrderApproved {}),
        ];
        let transaction = store.append(&batch, &[]).await;
        assert!(
            matches!(transaction, Err(Error::Conflict(_))),
            "{kind}: {transaction:?}"
        );
        let events = store
            .read_stream(&AggregateType::Order.stream_id(&order_id), 0, None)
            .await
            .expect("reads");
        assert_eq!(events.len(), 1, "{kind}");
    }
}

#[tokio::test]
async fn a_transaction_refused_as_invalid_is_an_internal_error_not_a_conflict() {
    for emulator in emulators().await {
        let client = emulator.dynamodb().await;
        let kind = emulator.kind();
        // A table whose sort key is a string: every event item (numeric `version`) is
        // invalid for it. DynamoDB Local cancels the transaction with `ValidationError`; moto
        // answers `ValidationException`. Neither may be taken for a lost race.
        let table = format!("{}-misconfigured-events", unique_id("t"));
        client
            .create_table()
            .table_name(&table)
            .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
            .attribute_definitions(
                aws_sdk_dynamodb::types::AttributeDefinition::builder()
                    .attribute_name("streamId")
                    .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                    .build()
                    .expect("attribute"),
            )
            .attribute_definitions(
                aws_sdk_dynamodb::types::AttributeDefinition::builder()
                    .attribute_name("version")
                    .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                    .build()
                    .expect("attribute"),
            )
            .key_schema(
                aws_sdk_dynamodb::types::KeySchemaElement::builder()
                    .attribute_name("streamId")
                    .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                    .build()
                    .expect("key"),
            )
            .key_schema(
                aws_sdk_dynamodb::types::KeySchemaElement::builder()
                    .attribute_name("version")
                    .key_type(aws_sdk_dynamodb::types::KeyType::Range)
                    .build()
                    .expect("key"),
            )
            .send()
            .await
            .expect("table created");
        let store = EventStore::new(client, table, emulator.stack().table_name("SnapshotsTable"));
        let order_id = unique_id("order");
        let batch = [
            stored(&order_id, 1, &created_event()),
            stored(&order_id, 2, &OrderEvent::OrderApproved {}),
        ];
        let result = store.append(&batch, &[]).await;
        assert!(
            matches!(result, Err(Error::Aws { .. })),
            "{kind}: an invalid transaction is an internal error, got {result:?}"
        );
    }
}

#[tokio::test]
async fn an_append_guarded_by_a_stale_head_is_refused_and_writes_nothing() {
    for emulator in emulators().await {
        let store = store_on(emulator, emulator.dynamodb().await);
        let kind = emulator.kind();
        let order_id = unique_id("order");
        store
            .append(
                &[
                    stored(&order_id, 1, &created_event()),
                    stored(&order_id, 2, &OrderEvent::OrderApproved {}),
                ],
                &[],
            )
            .await
            .expect("created and approved");
        let order_stream = AggregateType::Order.stream_id(&order_id);
        let delivery_stream = AggregateType::Delivery.stream_id(&order_id);

        // A cancel decided while the delivery was empty (head 0); the pickup lands first.
        let read_delivery_head = StreamHead {
            stream_id: delivery_stream.clone(),
            version: 0,
        };
        store
            .append(
                &[delivery_stored(&order_id, 1)],
                &[StreamHead {
                    stream_id: order_stream.clone(),
                    version: 2,
                }],
            )
            .await
            .expect("pickup guarded by the current order head");
        let cancel = store
            .append(
                &[stored(&order_id, 3, &OrderEvent::OrderCancelled {})],
                &[read_delivery_head],
            )
            .await;
        assert!(
            matches!(cancel, Err(Error::Conflict(_))),
            "{kind}: {cancel:?}"
        );

        // A pickup decided on order head 2 after the order moved on to 3 is refused too.
        store
            .append(&[stored(&order_id, 3, &OrderEvent::OrderApproved {})], &[])
            .await
            .expect("the order moves on");
        let pickup = store
            .append(
                &[delivery_stored(&order_id, 2)],
                &[StreamHead {
                    stream_id: order_stream.clone(),
                    version: 2,
                }],
            )
            .await;
        assert!(
            matches!(pickup, Err(Error::Conflict(_))),
            "{kind}: {pickup:?}"
        );

        let order: Vec<String> = store
            .read_stream(&order_stream, 0, None)
            .await
            .expect("reads")
            .into_iter()
            .map(|e| e.event_type)
            .collect();
        assert_eq!(
            order,
            ["OrderCreated", "OrderApproved", "OrderApproved"],
            "{kind}: the stale cancel wrote nothing"
        );
        let delivery = store
            .read_stream(&delivery_stream, 0, None)
            .await
            .expect("reads");
        assert_eq!(delivery.len(), 1, "{kind}: the stale pickup wrote nothing");
    }
}
