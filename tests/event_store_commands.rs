//! The command service over the DynamoDB event store (moto server and, when Java is here, AWS's
//! DynamoDB Local): racing writers, `If-Match`, a cancel racing a pickup, and refusals that
//! write nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::write_side;

use std::collections::BTreeMap;
use std::sync::Arc;

use ftgo_aws::Error;
use ftgo_aws::commands::CommandContext;
use ftgo_aws::conditional::Precondition;
use ftgo_domain::delivery::{Delivery, DeliveryCommand, DeliveryStatus};
use ftgo_domain::order::{Order, OrderCommand, OrderEvent, OrderStatus};
use ftgo_domain::{AggregateType, DomainError};
use ftgo_tests::{emulators, unique_id};
use write_side::{context, create_command, service_on};

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
            expected_version: Some(Precondition::parse("\"7\"").expect("tag")),
            key: None,
            owner: None,
        };
        let result = service
            .order_action(&order_id, OrderCommand::Approve, &stale)
            .await;
        assert!(
            matches!(
                result,
                Err(Error::VersionMismatch { ref expected, actual: 1 }) if expected == "\"7\""
            ),
            "{result:?}"
        );
        let current = CommandContext {
            request_id: unique_id("request"),
            expected_version: Some(Precondition::parse("\"1\"").expect("tag")),
            key: None,
            owner: None,
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
