//! The order-history projector against the emulators, property-tested with a schedule proptest
//! can shrink: a `Vec` of steps that interleave commands (appends to the event table) with
//! deliveries of their stream records in batches of any size and order, duplicates,
//! redeliveries, replays of many records at once, batches delivered concurrently (as Lambda
//! does with a `ParallelizationFactor` above 1), and DynamoDB faults injected at the
//! projector's SDK boundary (throttling, 5xx before and after the write, lost answers:
//! `ftgo_aws::faults`). Batches are large enough for consecutive events of one stream to be
//! coalesced into one write, and out of order enough for gaps. A record the projector reports
//! failed is delivered again from the lowest one reported, as Lambda retries. After the
//! schedule (and a final delivery of what is still pending, until nothing fails) each view item
//! must be what an independent oracle expects — nothing skipped, nothing applied twice — and
//! equal the fold of its order's events in the event table.
//!
//! The oracle does not reuse `view::fold`: [`Expected`] is written by hand from the commands the
//! domain accepted (a create sets the lines and the total, an approval the status, a revise one
//! line's quantity, …), and [`scenarios`] is a table of fixed schedules whose expected view items
//! are spelled out literally, which checks the oracle itself as well as the projector.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::read_side;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lambda_events::dynamodb::EventRecord;
use ftgo_aws::commands::CommandContext;
use ftgo_aws::faults::{FaultKind, FaultLayer, FaultPlan, Rule};
use ftgo_aws::projector::Projector;
use ftgo_aws::store::order_history::HistoryQuery;
use ftgo_aws::store::stream_image::decode_image;
use ftgo_domain::delivery::{DeliveryCommand, DeliveryStatus};
use ftgo_domain::event::StoredEvent;
use ftgo_domain::order::{OrderCommand, OrderStatus};
use ftgo_domain::view::OrderView;
use ftgo_tests::{EmulatorKind, emulators, unique_id};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use read_side::{ReadSide, create_order, record_of_item};

/// How many orders a schedule works on.
const ORDERS: usize = 3;

/// The restaurant and first line item of each order (the second line is always naan).
const NAMES: [(&str, &str); ORDERS] = [
    ("Ajanta", "Chicken Vindaloo"),
    ("Luigi's", "Pizza Margherita"),
    ("Sushi Zen", "Salmon Nigiri"),
];

/// The first line: `m-1`, 1 × 12.50; the second: `m-2`, 2 × 3.00.
const FIRST_PRICE: i64 = 1250;
const NAAN_PRICE: i64 = 300;

/// One command on an order after its creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Approve,
    Reject,
    Cancel,
    /// Sets the first line's quantity (0 removes the line).
    Revise(u32),
    PickUp,
    Deliver,
}

/// One step of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Runs `command` on order `order` (creating the order first if it does not exist yet);
    /// the events it appends join the pending stream records.
    Run { order: usize, command: Command },
    /// Delivers `count` pending records as one batch, starting at pending record `at` (modulo):
    /// a batch of any size, in any order relative to the others.
    Deliver { at: usize, count: usize },
    /// Delivers an already delivered record again, alone (a retried or bisected batch).
    Redeliver { at: usize },
    /// Delivers `count` already delivered records again as one batch, from delivered record
    /// `at` (modulo): a replay.
    Replay { at: usize, count: usize },
    /// Takes `count` pending records from `at` (modulo), deals them round-robin into `lanes`
    /// batches and delivers those concurrently (a `ParallelizationFactor` above 1).
    Concurrent {
        at: usize,
        count: usize,
        lanes: usize,
    },
    /// The projector's next `times` calls of `operation` meet `kind`.
    Fault {
        kind: FaultKind,
        operation: &'static str,
        times: u32,
    },
}

/// The projector's DynamoDB calls: the view's conditional update and the gap read.
const FAULTED_OPERATIONS: [&str; 2] = ["UpdateItem", "Query"];

/// Faults injected over a whole test run (printed, and required to be some).
static INJECTED: AtomicU64 = AtomicU64::new(0);

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        3 => Just(Command::Approve),
        1 => Just(Command::Reject),
        1 => Just(Command::Cancel),
        2 => (0u32..4).prop_map(Command::Revise),
        2 => Just(Command::PickUp),
        2 => Just(Command::Deliver),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..ORDERS, command()).prop_map(|(order, command)| Step::Run { order, command }),
        3 => (0usize..16, 1usize..10).prop_map(|(at, count)| Step::Deliver { at, count }),
        1 => (0usize..16).prop_map(|at| Step::Redeliver { at }),
        1 => (0usize..16, 2usize..8).prop_map(|(at, count)| Step::Replay { at, count }),
        2 => (0usize..16, 2usize..12, 2usize..5)
            .prop_map(|(at, count, lanes)| Step::Concurrent { at, count, lanes }),
        1 => (
            prop::sample::select(vec![
                FaultKind::Throttle,
                FaultKind::ErrorBefore,
                FaultKind::ErrorAfter,
                FaultKind::LostAnswer,
            ]),
            prop::sample::select(FAULTED_OPERATIONS.to_vec()),
            1u32..8,
        )
            .prop_map(|(kind, operation, times)| Step::Fault { kind, operation, times }),
    ]
}

/// The view item the oracle expects of one order, from the commands the domain accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    consumer_id: String,
    restaurant_name: String,
    status: OrderStatus,
    delivery_status: Option<DeliveryStatus>,
    /// `(menuItemId, name, quantity, price in cents)`, in the order's line order.
    lines: Vec<(String, String, u32, i64)>,
    total_cents: i64,
    order_events: u64,
    delivery_events: u64,
}

impl Expected {
    /// A freshly created order of `consumer_id` at `NAMES[index]`.
    fn created(consumer_id: &str, index: usize) -> Self {
        let (restaurant, first) = NAMES[index];
        Self {
            consumer_id: consumer_id.to_owned(),
            restaurant_name: restaurant.to_owned(),
            status: OrderStatus::ApprovalPending,
            delivery_status: None,
            lines: vec![
                ("m-1".into(), first.into(), 1, FIRST_PRICE),
                ("m-2".into(), "Garlic Naan".into(), 2, NAAN_PRICE),
            ],
            total_cents: FIRST_PRICE + 2 * NAAN_PRICE,
            order_events: 1,
            delivery_events: 0,
        }
    }

    /// What an accepted `command` changes (a refused one changes nothing and is never applied).
    fn accept(&mut self, command: Command) {
        match command {
            Command::Approve => self.status = OrderStatus::Approved,
            Command::Reject => self.status = OrderStatus::Rejected,
            Command::Cancel => self.status = OrderStatus::Cancelled,
            Command::Revise(quantity) => {
                if quantity == 0 {
                    self.lines.retain(|line| line.0 != "m-1");
                } else if let Some(line) = self.lines.iter_mut().find(|line| line.0 == "m-1") {
                    line.2 = quantity;
                }
                self.total_cents = self
                    .lines
                    .iter()
                    .map(|(_, _, quantity, price)| i64::from(*quantity) * price)
                    .sum();
            }
            Command::PickUp => self.delivery_status = Some(DeliveryStatus::PickedUp),
            Command::Deliver => self.delivery_status = Some(DeliveryStatus::Delivered),
        }
        match command {
            Command::PickUp | Command::Deliver => self.delivery_events += 1,
            _ => self.order_events += 1,
        }
    }

    /// Whether the stored view `view` is this item.
    fn check(&self, view: Option<&OrderView>) -> Result<(), String> {
        let Some(view) = view else {
            return Err("no view item".into());
        };
        let lines: Vec<(String, String, u32, i64)> = view
            .line_items
            .iter()
            .map(|line| {
                (
                    line.menu_item_id.clone(),
                    line.name.clone(),
                    line.quantity,
                    line.price.cents(),
                )
            })
            .collect();
        let seen = Expected {
            consumer_id: view.consumer_id.clone().unwrap_or_default(),
            restaurant_name: view.restaurant_name.clone(),
            status: view.status.unwrap_or(OrderStatus::ApprovalPending),
            delivery_status: view.delivery_status,
            lines,
            total_cents: view.order_total.cents(),
            order_events: view.order_version.unwrap_or(0),
            delivery_events: view.delivery_version.unwrap_or(0),
        };
        if view.status.is_none() {
            return Err(format!("no status in {view:?}"));
        }
        if &seen == self {
            Ok(())
        } else {
            Err(format!("expected {self:?}\n   found {seen:?}"))
        }
    }
}

/// One run of a schedule against the emulator: the orders it created and what it expects.
struct Run<'a> {
    side: &'a ReadSide,
    /// The faults of this run, in front of `projector`'s clients only (commands run clean).
    faults: FaultLayer,
    /// The projector the records are delivered to.
    projector: Projector,
    consumer_id: String,
    order_ids: Vec<Option<String>>,
    expected: Vec<Option<Expected>>,
    /// `(streamId, version)` of every event already turned into a record.
    seen: BTreeSet<(String, String)>,
    pending: Vec<EventRecord>,
    delivered: Vec<EventRecord>,
}

impl<'a> Run<'a> {
    fn new(side: &'a ReadSide, sdk: &aws_config::SdkConfig) -> Self {
        let faults = FaultLayer::new(FaultPlan::scripted());
        // The SDK's own retries with millisecond backoff: the schedule is about what reaches the
        // projector after them, not about waiting (throttling backs off for seconds otherwise).
        let retries = aws_config::retry::RetryConfig::standard()
            .with_initial_backoff(std::time::Duration::from_millis(1))
            .with_max_backoff(std::time::Duration::from_millis(5));
        let sdk = faults.apply(sdk).to_builder().retry_config(retries).build();
        let projector = Projector::from_config(&sdk, &side.config).expect("projector");
        Self {
            side,
            faults,
            projector,
            consumer_id: unique_id("consumer"),
            order_ids: vec![None; ORDERS],
            expected: vec![None; ORDERS],
            seen: BTreeSet::new(),
            pending: Vec::new(),
            delivered: Vec::new(),
        }
    }

    /// The order `index`, created (and its records made pending) on first use.
    async fn order(&mut self, index: usize) -> String {
        if let Some(id) = &self.order_ids[index] {
            return id.clone();
        }
        let (restaurant, first) = NAMES[index];
        let command = create_order(
            &self.consumer_id,
            restaurant,
            &[(first, 1, FIRST_PRICE), ("Garlic Naan", 2, NAAN_PRICE)],
        );
        let id = self
            .side
            .commands
            .create_order(command, &CommandContext::default())
            .await
            .expect("create")
            .aggregate_id;
        self.order_ids[index] = Some(id.clone());
        self.expected[index] = Some(Expected::created(&self.consumer_id, index));
        self.collect(&id).await;
        id
    }

    /// Turns the events of `order_id` not seen yet into pending stream records.
    async fn collect(&mut self, order_id: &str) {
        for item in self.side.table_items(order_id).await {
            let key = |name: &str| match item.get(name) {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(text)) => text.clone(),
                Some(aws_sdk_dynamodb::types::AttributeValue::N(number)) => number.clone(),
                other => panic!("{name}: {other:?}"),
            };
            if self.seen.insert((key("streamId"), key("version"))) {
                self.pending.push(record_of_item(&item));
            }
        }
    }

    async fn run(&mut self, index: usize, command: Command) {
        let order_id = self.order(index).await;
        let context = CommandContext::default();
        let commands = &self.side.commands;
        let result = match command {
            Command::Approve => commands
                .order_action(&order_id, OrderCommand::Approve, &context)
                .await
                .map(drop),
            Command::Reject => commands
                .order_action(&order_id, OrderCommand::Reject, &context)
                .await
                .map(drop),
            Command::Cancel => commands
                .order_action(
                    &order_id,
                    OrderCommand::Cancel {
                        delivery_picked_up: false,
                    },
                    &context,
                )
                .await
                .map(drop),
            Command::Revise(quantity) => commands
                .order_action(
                    &order_id,
                    OrderCommand::Revise {
                        line_item_quantities: BTreeMap::from([("m-1".to_owned(), quantity)]),
                    },
                    &context,
                )
                .await
                .map(drop),
            Command::PickUp => commands
                .delivery_action(
                    &order_id,
                    DeliveryCommand::PickUp { order_status: None },
                    &context,
                )
                .await
                .map(drop),
            Command::Deliver => commands
                .delivery_action(&order_id, DeliveryCommand::Deliver, &context)
                .await
                .map(drop),
        };
        match result {
            Ok(()) => {
                if let Some(expected) = &mut self.expected[index] {
                    expected.accept(command);
                }
            }
            Err(ftgo_aws::Error::Domain(_)) => {}
            Err(other) => panic!("{command:?}: {other}"),
        }
        self.collect(&order_id).await;
    }

    /// Delivers `batch` as one invocation; what it reports failed goes back to the front of
    /// the pending records, as Lambda retries from the reported record.
    async fn deliver(&mut self, batch: Vec<EventRecord>) {
        if batch.is_empty() {
            return;
        }
        let from = invoke(&self.projector, &batch).await;
        self.settle(batch, from);
    }

    /// Books the outcome of one invocation of `batch`: the records before `from` are done, the
    /// rest go back to the front of the pending records.
    fn settle(&mut self, batch: Vec<EventRecord>, from: usize) {
        let mut batch = batch;
        let mut retry = batch.split_off(from);
        self.delivered.extend(batch);
        retry.append(&mut self.pending);
        self.pending = retry;
    }

    /// Delivers `batches` concurrently, then books each outcome.
    async fn deliver_concurrently(&mut self, batches: Vec<Vec<EventRecord>>) {
        let batches: Vec<Vec<EventRecord>> =
            batches.into_iter().filter(|b| !b.is_empty()).collect();
        let projector = &self.projector;
        let outcomes =
            futures::future::join_all(batches.iter().map(|batch| invoke(projector, batch))).await;
        for (batch, from) in batches.into_iter().zip(outcomes) {
            self.settle(batch, from);
        }
    }
}

/// Invokes the projector's handler with `batch`; where Lambda would resume: the position of
/// the lowest sequence number reported failed (`batch.len()` when none is).
async fn invoke(projector: &Projector, batch: &[EventRecord]) -> usize {
    let response = ftgo_aws::lambda::order_history_projector::handle(
        projector,
        ftgo_aws::lambda_runtime::LambdaEvent::new(
            read_side::batch(batch.to_vec()),
            ftgo_aws::lambda_runtime::Context::default(),
        ),
    )
    .await
    .expect("the projector handler never fails an invocation");
    let positions: Vec<usize> = response
        .batch_item_failures
        .iter()
        .map(|failure| {
            let sequence = failure.item_identifier.as_deref();
            batch
                .iter()
                .position(|r| r.change.sequence_number.as_deref() == sequence)
                .unwrap_or_else(|| {
                    panic!(
                        "the projector reported a record that was not in its batch: {sequence:?}"
                    )
                })
        })
        .collect();
    positions.into_iter().min().unwrap_or(batch.len())
}

impl Run<'_> {
    async fn step(&mut self, step: Step) {
        match step {
            Step::Run { order, command } => self.run(order, command).await,
            Step::Deliver { at, count } => {
                if self.pending.is_empty() {
                    return;
                }
                let at = at % self.pending.len();
                let end = (at + count).min(self.pending.len());
                let batch: Vec<EventRecord> = self.pending.drain(at..end).collect();
                self.deliver(batch).await;
            }
            Step::Redeliver { at } => {
                if self.delivered.is_empty() {
                    return;
                }
                let again = self.delivered[at % self.delivered.len()].clone();
                self.deliver(vec![again]).await;
            }
            Step::Replay { at, count } => {
                if self.delivered.is_empty() {
                    return;
                }
                let at = at % self.delivered.len();
                let end = (at + count).min(self.delivered.len());
                // Delivered already (and landed): what the replay reports failed needs no retry.
                invoke(&self.projector, &self.delivered[at..end]).await;
            }
            Step::Concurrent { at, count, lanes } => {
                if self.pending.is_empty() {
                    return;
                }
                let at = at % self.pending.len();
                let end = (at + count).min(self.pending.len());
                let mut batches = vec![Vec::new(); lanes];
                for (i, record) in self.pending.drain(at..end).enumerate() {
                    batches[i % lanes].push(record);
                }
                self.deliver_concurrently(batches).await;
            }
            Step::Fault {
                kind,
                operation,
                times,
            } => self
                .faults
                .push_rule(Rule::new(kind).operation(operation).times(times)),
        }
    }

    /// Runs `schedule`, delivers what is still pending, and checks every order against the
    /// oracle (or against `literal`, the hand-written expectations of a scenario).
    async fn check(
        mut self,
        schedule: &[Step],
        literal: Option<&[Option<Expected>]>,
    ) -> Result<(), String> {
        for step in schedule {
            self.step(*step).await;
        }
        let mut rounds = 0;
        while !self.pending.is_empty() {
            rounds += 1;
            assert!(rounds < 1000, "records keep failing: {:?}", self.pending);
            let batch: Vec<EventRecord> = self.pending.drain(..).collect();
            self.deliver(batch).await;
        }
        INJECTED.fetch_add(self.faults.counts().total(), Ordering::Relaxed);
        let expected = literal.map_or_else(
            || self.expected.clone(),
            |l| {
                l.iter()
                    .map(|e| {
                        e.clone().map(|mut e| {
                            e.consumer_id = self.consumer_id.clone();
                            e
                        })
                    })
                    .collect()
            },
        );
        for (index, id) in self.order_ids.iter().enumerate() {
            let Some(id) = id else {
                if expected[index].is_some() {
                    return Err(format!("order {index} was expected but never created"));
                }
                continue;
            };
            let want = expected[index]
                .as_ref()
                .ok_or_else(|| format!("order {index} not expected"))?;
            let view = self.side.view(id).await;
            want.check(view.as_ref())
                .map_err(|e| format!("order {index} ({id}) on {}: {e}", self.side.kind))?;
            // And the view is the fold of the order's events in the event table.
            let events: Vec<StoredEvent> = self
                .side
                .table_items(id)
                .await
                .into_iter()
                .map(|item| decode_image(serde_dynamo::Item::from(item)).expect("event decodes"))
                .collect();
            let fold = read_side::folded(&events).remove(id.as_str());
            if view.map(read_side::to_millis) != fold {
                return Err(format!(
                    "order {index} ({id}) on {}: the view is not the fold of the event table",
                    self.side.kind
                ));
            }
        }
        // The history lists exactly the created orders.
        let page = self
            .side
            .dao
            .history(&HistoryQuery {
                consumer_id: self.consumer_id.clone(),
                since: 0,
                until: i64::MAX / 2,
                status: None,
                keywords: Vec::new(),
                page_size: 100,
                start_after: None,
            })
            .await
            .expect("history");
        let listed: BTreeSet<&str> = page.orders.iter().map(|v| v.order_id.as_str()).collect();
        let created: BTreeSet<&str> = self
            .order_ids
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if listed != created {
            return Err(format!("history lists {listed:?}, created {created:?}"));
        }
        Ok(())
    }
}

/// A named schedule and the view item of each order after it (`None`: never created).
type Scenario = (&'static str, Vec<Step>, Vec<Option<Expected>>);

/// Fixed schedules and, spelled out by hand, the view item of each order afterwards (`None`:
/// the order is never created). Consumer ids are filled in by the run.
fn scenarios() -> Vec<Scenario> {
    use Command::*;
    let run = |order, command| Step::Run { order, command };
    let item = |restaurant: &str,
                status,
                delivery_status,
                lines: &[(&str, &str, u32, i64)],
                total_cents,
                (order_events, delivery_events)| {
        Some(Expected {
            consumer_id: String::new(),
            restaurant_name: restaurant.to_owned(),
            status,
            delivery_status,
            lines: lines
                .iter()
                .map(|(id, name, quantity, price)| {
                    ((*id).into(), (*name).into(), *quantity, *price)
                })
                .collect(),
            total_cents,
            order_events,
            delivery_events,
        })
    };
    vec![
        (
            "approved, picked up, delivered; delivered newest first, one record twice",
            vec![
                run(0, Approve),
                run(0, PickUp),
                run(0, Deliver),
                Step::Deliver { at: 3, count: 1 },
                Step::Deliver { at: 2, count: 1 },
                Step::Redeliver { at: 0 },
                Step::Deliver { at: 0, count: 2 },
            ],
            vec![
                item(
                    "Ajanta",
                    OrderStatus::Approved,
                    Some(DeliveryStatus::Delivered),
                    &[
                        ("m-1", "Chicken Vindaloo", 1, 1250),
                        ("m-2", "Garlic Naan", 2, 300),
                    ],
                    1850,
                    (2, 2),
                ),
                None,
                None,
            ],
        ),
        (
            "revised to 3 then cancelled, the cancel delivered before the creation",
            vec![
                run(1, Revise(3)),
                run(1, Cancel),
                Step::Deliver { at: 2, count: 1 },
                Step::Deliver { at: 0, count: 5 },
                Step::Redeliver { at: 1 },
            ],
            vec![
                None,
                item(
                    "Luigi's",
                    OrderStatus::Cancelled,
                    None,
                    &[
                        ("m-1", "Pizza Margherita", 3, 1250),
                        ("m-2", "Garlic Naan", 2, 300),
                    ],
                    4350,
                    (3, 0),
                ),
                None,
            ],
        ),
        (
            "a revise to 0 removes the line; a second one is refused",
            vec![run(2, Revise(0)), run(2, Revise(0)), run(2, Approve)],
            vec![
                None,
                None,
                item(
                    "Sushi Zen",
                    OrderStatus::Approved,
                    None,
                    &[("m-2", "Garlic Naan", 2, 300)],
                    600,
                    (3, 0),
                ),
            ],
        ),
        (
            "rejected: approval, pickup and delivery are refused; two orders interleaved",
            vec![
                run(0, PickUp),
                run(0, Reject),
                Step::Deliver { at: 1, count: 1 },
                run(1, Approve),
                run(0, Approve),
                run(1, PickUp),
                run(0, Deliver),
                Step::Deliver { at: 3, count: 2 },
                Step::Redeliver { at: 2 },
            ],
            vec![
                item(
                    "Ajanta",
                    OrderStatus::Rejected,
                    None,
                    &[
                        ("m-1", "Chicken Vindaloo", 1, 1250),
                        ("m-2", "Garlic Naan", 2, 300),
                    ],
                    1850,
                    (2, 0),
                ),
                item(
                    "Luigi's",
                    OrderStatus::Approved,
                    Some(DeliveryStatus::PickedUp),
                    &[
                        ("m-1", "Pizza Margherita", 1, 1250),
                        ("m-2", "Garlic Naan", 2, 300),
                    ],
                    1850,
                    (2, 1),
                ),
                None,
            ],
        ),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn hand_written_scenarios_end_in_their_spelled_out_view_items() {
    let runtime = runtime();
    for emulator in runtime.block_on(emulators()) {
        let side = runtime.block_on(ReadSide::shared(emulator));
        let sdk = runtime.block_on(emulator.sdk_config());
        for (name, schedule, literal) in scenarios() {
            runtime
                .block_on(Run::new(&side, &sdk).check(&schedule, Some(&literal)))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            // The oracle the property test uses agrees with the hand-written items.
            runtime
                .block_on(Run::new(&side, &sdk).check(&schedule, None))
                .unwrap_or_else(|e| panic!("{name}, by the oracle: {e}"));
        }
    }
}

#[test]
fn random_schedules_of_appends_and_deliveries_end_in_the_oracle_s_view() {
    let runtime = runtime();
    for emulator in runtime.block_on(emulators()) {
        let side = runtime.block_on(ReadSide::shared(emulator));
        let sdk = runtime.block_on(emulator.sdk_config());
        let cases = match emulator.kind() {
            EmulatorKind::Moto => 32,
            EmulatorKind::DynamoDbLocal => 16,
        };
        let mut runner = TestRunner::new(ProptestConfig {
            cases,
            max_shrink_iters: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        runner
            .run(&prop::collection::vec(step(), 1..32), |schedule| {
                runtime
                    .block_on(Run::new(&side, &sdk).check(&schedule, None))
                    .map_err(TestCaseError::fail)
            })
            .unwrap_or_else(|e| panic!("on {}: {e}", emulator.kind()));
    }
    let injected = INJECTED.load(Ordering::Relaxed);
    eprintln!("faults injected at the projector's SDK boundary: {injected}");
    assert!(injected > 0, "the schedules injected no fault");
}
