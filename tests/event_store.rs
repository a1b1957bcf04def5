//! The DynamoDB event store against real DynamoDB APIs (moto server and, when Java is here,
//! AWS's DynamoDB Local): conditional appends, a retried write recognised as one's own, guards
//! on the other stream's head, and errors that are not conflicts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::write_side;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use ftgo_aws::Error;
use ftgo_aws::store::event_store::{Appended, EventStore, StreamHead};
use ftgo_domain::AggregateType;
use ftgo_domain::order::OrderEvent;
use ftgo_tests::{emulators, unique_id};
use write_side::{created_event, delivery_stored, store_on, stored};

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
        // DynamoDB (and DynamoDB Local) answer a resend under the same `ClientRequestToken`
        // within ten minutes as the success it was, without writing again; moto ignores the
        // token, and the cancellation's `ALL_OLD` items name our own event ids. Either way: our
        // own write, never a conflict, stored once (checked below).
        let again = store.append(&batch, &guard).await;
        assert!(
            matches!(again, Ok(Appended::AlreadyStored | Appended::Written)),
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
        // Both keys are strings.
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute")
        };
        let key = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .expect("key")
        };
        client
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("streamId"))
            .attribute_definitions(attribute("version"))
            .key_schema(key("streamId", KeyType::Hash))
            .key_schema(key("version", KeyType::Range))
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
