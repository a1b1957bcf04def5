//! The projector under `ParallelizationFactor: 10`: Lambda works up to 10 batches of one shard
//! at once and keeps records in order only per item — for the event table, per event (each is
//! its own item, `streamId` + `version`), so two events of one stream may be projected by two
//! concurrent batches in either order. The strict per-stream guard (and the gap rule) must keep
//! the view equal to the fold of the event table anyway.
//!
//! Histories come from the real write side (commands on the emulator); their stream records,
//! in the order they were written, are dealt to 10 lanes as Lambda deals them (by the record's
//! key) and each lane runs its batches one after another, retrying from the lowest reported
//! failure, the lanes concurrently — with and without DynamoDB faults at the projector's SDK
//! boundary. Afterwards every view item must equal the fold of its order's events.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::read_side::{
    ReadSide, create_order, folded, record_of_item, sequence_number, to_millis,
};
use aws_lambda_events::dynamodb::EventRecord;
use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_aws::commands::CommandContext;
use ftgo_aws::faults::{FaultKind, FaultLayer, FaultPlan, RandomSchedule};
use ftgo_aws::projector::Projector;
use ftgo_aws::store::stream_image::decode_image;
use ftgo_domain::delivery::DeliveryCommand;
use ftgo_domain::event::StoredEvent;
use ftgo_domain::order::OrderCommand;
use ftgo_tests::{emulators, unique_id};

/// Lambda's largest `ParallelizationFactor`.
const LANES: usize = 10;
/// Records per batch: small, so that a lane runs many batches and lanes interleave.
const BATCH_SIZE: usize = 3;
/// Orders per history.
const ORDERS: usize = 12;

/// `ORDERS` orders with varied lives; their events as the table holds them, in write order.
async fn histories(side: &ReadSide) -> (Vec<String>, Vec<BTreeMap<String, AttributeValue>>) {
    let consumer = unique_id("consumer");
    let context = CommandContext::default();
    let commands = &side.commands;
    let mut ids = Vec::new();
    for i in 0..ORDERS {
        let create = create_order(
            &consumer,
            "Ajanta",
            &[("Chicken Vindaloo", 1, 1250), ("Garlic Naan", 2, 300)],
        );
        let id = commands
            .create_order(create, &context)
            .await
            .expect("create")
            .aggregate_id;
        let revise = |quantity| OrderCommand::Revise {
            line_item_quantities: [("m-1".to_owned(), quantity)].into(),
        };
        let mut order_commands = vec![revise(i as u32 % 3 + 2)];
        match i % 4 {
            0 => order_commands.extend([OrderCommand::Approve, revise(0)]),
            1 => order_commands.push(OrderCommand::Reject),
            2 => order_commands.push(OrderCommand::Cancel {
                delivery_picked_up: false,
            }),
            _ => order_commands.extend([OrderCommand::Approve, revise(5)]),
        }
        for command in order_commands {
            commands
                .order_action(&id, command, &context)
                .await
                .expect("order command");
        }
        if i % 4 == 0 || i % 4 == 3 {
            for command in [
                DeliveryCommand::PickUp { order_status: None },
                DeliveryCommand::Deliver,
            ] {
                commands
                    .delivery_action(&id, command, &context)
                    .await
                    .expect("delivery command");
            }
        }
        ids.push(id);
    }
    let mut items = Vec::new();
    for id in &ids {
        items.extend(
            side.table_items(id)
                .await
                .into_iter()
                .map(|item| item.into_iter().collect::<BTreeMap<_, _>>()),
        );
    }
    // Write order: event ids are time-ordered (UUID v7), and the commands ran one by one.
    items.sort_by_key(|item| match item.get("eventId") {
        Some(AttributeValue::S(id)) => id.clone(),
        other => panic!("eventId {other:?}"),
    });
    (ids, items)
}

/// A key's lane: `hash(key, salt) mod LANES`.
fn lane<K: Hash>(key: K, salt: u64) -> usize {
    let mut hasher = DefaultHasher::new();
    (key, salt).hash(&mut hasher);
    (hasher.finish() % LANES as u64) as usize
}

/// How records are dealt to the lanes.
#[derive(Debug, Clone, Copy)]
enum Dealing {
    /// By the record's item key (`streamId`, `version`): Lambda's documented guarantee, order
    /// per item only — events of one stream land in any lane.
    ByItem,
    /// By `streamId`: each stream in order, the streams of one order (Order, Delivery) and of
    /// different orders concurrently.
    ByStream,
}

/// Runs `records` through `projector` as Lambda does with `ParallelizationFactor` 10.
async fn consume(projector: &Projector, records: Vec<EventRecord>, dealing: Dealing, salt: u64) {
    let mut lanes: Vec<Vec<EventRecord>> = vec![Vec::new(); LANES];
    for record in records {
        let key = |name: &str| format!("{:?}", record.change.keys.inner().get(name));
        let index = match dealing {
            Dealing::ByItem => lane((key("streamId"), key("version")), salt),
            Dealing::ByStream => lane(key("streamId"), salt),
        };
        lanes[index].push(record);
    }
    let runs = lanes.into_iter().map(|mut pending| async move {
        let mut invocations = 0;
        while !pending.is_empty() {
            invocations += 1;
            assert!(invocations < 5_000, "a lane makes no progress");
            let take = pending.len().min(BATCH_SIZE);
            let batch: Vec<EventRecord> = pending[..take].to_vec();
            let response = projector
                .process_batch(&crate::read_side::batch(batch.clone()))
                .await;
            // Lambda checkpoints at the lowest sequence number reported and retries from it.
            let done = response
                .batch_item_failures
                .iter()
                .filter_map(|failure| {
                    let sequence = failure.item_identifier.as_deref()?;
                    batch.iter().position(|r| sequence_number(r) == sequence)
                })
                .min()
                .unwrap_or(take);
            pending.drain(..done);
        }
    });
    futures::future::join_all(runs).await;
}

/// Every order's view item equals the fold of its events in the table.
async fn check(side: &ReadSide, ids: &[String], label: &str) {
    for id in ids {
        let events: Vec<StoredEvent> = side
            .table_items(id)
            .await
            .into_iter()
            .map(|item| decode_image(serde_dynamo::Item::from(item)).expect("event decodes"))
            .collect();
        let expected = folded(&events).remove(id).expect("folded view");
        let view = side.view(id).await.map(to_millis);
        assert_eq!(view.as_ref(), Some(&expected), "{label}: order {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_batches_per_shard_keep_every_view_equal_to_the_fold() {
    for emulator in emulators().await {
        let sdk = emulator.sdk_config().await;
        for (round, dealing, fault_rate) in [
            (1, Dealing::ByItem, 0.0),
            (2, Dealing::ByStream, 0.0),
            (3, Dealing::ByItem, 0.15),
            (4, Dealing::ByStream, 0.15),
        ] {
            let (side, _stack) = ReadSide::fresh(emulator).await;
            let (ids, items) = histories(&side).await;
            let records: Vec<EventRecord> = items
                .iter()
                .map(|item| record_of_item(&item.clone().into_iter().collect()))
                .collect();
            assert!(records.len() > 4 * ORDERS, "{} records", records.len());
            let faults = FaultLayer::new(FaultPlan::random(
                RandomSchedule::new(round, fault_rate).kinds(&[
                    FaultKind::Throttle,
                    FaultKind::ErrorBefore,
                    FaultKind::ErrorAfter,
                    FaultKind::LostAnswer,
                ]),
            ));
            let retries = aws_config::retry::RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(std::time::Duration::from_millis(1))
                .with_max_backoff(std::time::Duration::from_millis(5));
            let faulty = faults
                .apply(&sdk)
                .to_builder()
                .retry_config(retries)
                .build();
            let projector = Projector::from_config(&faulty, &side.config).expect("projector");
            // Delivered twice over (a replay from TRIM_HORIZON after the first pass), each
            // pass dealt differently.
            consume(&projector, records.clone(), dealing, round).await;
            consume(&projector, records, dealing, round + 100).await;
            faults.stop();
            if fault_rate > 0.0 {
                assert!(
                    faults.counts().total() > 0,
                    "round {round} injected nothing"
                );
            }
            check(
                &side,
                &ids,
                &format!("{} round {round} {dealing:?}", emulator.kind()),
            )
            .await;
        }
    }
}
