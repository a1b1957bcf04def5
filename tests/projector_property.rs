//! The order-history projector against the emulators, property-tested: for random command
//! histories over several orders, stream records delivered with random duplication, reordering
//! and replays end in view items equal to the fold of the event table.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

#[path = "fixtures/read_side.rs"]
mod read_side;

use std::collections::BTreeMap;

use aws_lambda_events::dynamodb::EventRecord;
use ftgo_aws::commands::CommandContext;
use ftgo_aws::store::order_history::{HistoryQuery, epoch_millis};
use ftgo_domain::delivery::DeliveryCommand;
use ftgo_domain::event::StoredEvent;
use ftgo_domain::order::OrderCommand;
use ftgo_domain::view::OrderView;
use ftgo_tests::{EmulatorKind, emulators, unique_id};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use read_side::{ReadSide, create_order, folded, record_of_item, to_millis};

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

/// The command a [`Step`] sends, to either aggregate.
#[expect(
    clippy::large_enum_variant,
    reason = "short-lived: one a step, never stored"
)]
enum Command {
    Order(OrderCommand),
    Delivery(DeliveryCommand),
}

impl Step {
    fn command(&self) -> Command {
        match self {
            Step::Approve => Command::Order(OrderCommand::Approve),
            Step::Reject => Command::Order(OrderCommand::Reject),
            Step::Cancel => Command::Order(OrderCommand::Cancel {
                delivery_picked_up: false,
            }),
            Step::Revise(quantity) => Command::Order(OrderCommand::Revise {
                line_item_quantities: BTreeMap::from([("m-1".to_owned(), *quantity)]),
            }),
            Step::PickUp => Command::Delivery(DeliveryCommand::PickUp { order_status: None }),
            Step::Deliver => Command::Delivery(DeliveryCommand::Deliver),
        }
    }
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
    let command = create_order(
        consumer_id,
        names.0,
        &[(names.1, 1, 1250), ("Garlic Naan", 2, 300)],
    );
    let order_id = side
        .commands
        .create_order(command, &context)
        .await
        .expect("create")
        .aggregate_id;
    for step in steps {
        let result = match step.command() {
            Command::Order(command) => side
                .commands
                .order_action(&order_id, command, &context)
                .await
                .map(drop),
            Command::Delivery(command) => side
                .commands
                .delivery_action(&order_id, command, &context)
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
