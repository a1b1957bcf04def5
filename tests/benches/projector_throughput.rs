//! The `projector` part of the `make bench` report: projector events/s per shard, serial
//! against concurrent/coalesced, with a fixed latency on every DynamoDB call (so that the
//! figure means what it would in AWS, where a conditional `UpdateItem` takes milliseconds, not
//! the microseconds of an emulator on loopback); conditional writes per event; and the write
//! capacity one event costs with each projection of the consumer index
//! (`ReturnConsumedCapacity=INDEXES`).
//!
//! Run with `cargo bench -p ftgo-tests --bench projector_throughput`; writes
//! `$FTGO_BENCH_DIR/parts/projector.json` (default `target/bench` under the workspace root).
//! Against DynamoDB Local when Java is there (it reports consumed capacity), else moto
//! (the capacity figures are then null, with the reason). `FTGO_BENCH_ORDERS` sets the orders
//! per workload (default 250, four events each).
//!
//! * serial: what the projector did before — one conditional `UpdateItem` per record, the
//!   records of a batch one after another ([`Projector::project`] per record);
//! * concurrent/coalesced: [`Projector::process_batch`] — streams concurrently, consecutive
//!   events of one stream in one write.
//!
//! Batches of 100 records (the template's `BatchSize`), one after another (one batch in
//! flight per shard, `ParallelizationFactor` 1). Two shapes of stream: `lifecycle` (each
//! order's four events close together, as when an order is approved, picked up and delivered
//! within a batching window) and `spread` (every record of a batch from a different stream:
//! nothing to coalesce, only concurrency helps).
// A benchmark stops loudly on a broken fixture rather than measuring it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../fixtures/read_side.rs"]
mod read_side;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_lambda_events::dynamodb::EventRecord;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ReturnConsumedCapacity, ScalarAttributeType,
};
use ftgo_aws::faults::{FaultKind, FaultLayer, FaultPlan, Rule};
use ftgo_aws::projector::Projector;
use ftgo_aws::store::order_history::update_item_input;
use ftgo_aws::store::stream_image::plan_record;
use ftgo_domain::AggregateType;
use ftgo_domain::delivery::DeliveryEvent;
use ftgo_domain::event::StoredEvent;
use ftgo_domain::order::OrderEvent;
use ftgo_domain::view::{ViewUpdate, plan};
use ftgo_tests::{Emulator, EmulatorKind, repository_root};
use read_side::{ReadSide, at, folded, order_created, record_of, stored, to_millis};
use serde_json::{Value, json};

/// The latency injected on every DynamoDB call of the projector.
const LATENCY: Duration = Duration::from_millis(5);
/// Records per batch: the template's `BatchSize`.
const BATCH_SIZE: usize = 100;

/// The events of `orders` orders (created, approved, picked up, delivered), in shard order.
fn workload(orders: usize, spread: bool) -> Vec<StoredEvent> {
    let mut lives: Vec<Vec<StoredEvent>> = (0..orders)
        .map(|n| {
            let id = ftgo_tests::unique_id("bench-order");
            let created = order_created("c-bench", "Ajanta", &[("Chicken Vindaloo", 2, 1234)]);
            let when = at(n as i64);
            vec![
                stored(AggregateType::Order, &id, 1, &created, when),
                stored(
                    AggregateType::Order,
                    &id,
                    2,
                    &OrderEvent::OrderApproved {},
                    when,
                ),
                stored(
                    AggregateType::Delivery,
                    &id,
                    1,
                    &DeliveryEvent::DeliveryPickedUp {},
                    when,
                ),
                stored(
                    AggregateType::Delivery,
                    &id,
                    2,
                    &DeliveryEvent::DeliveryDelivered {},
                    when,
                ),
            ]
        })
        .collect();
    if spread {
        // Phase by phase: every creation, then every approval, …
        (0..4)
            .flat_map(|phase| lives.iter().map(move |life| life[phase].clone()))
            .collect()
    } else {
        lives.iter_mut().flat_map(std::mem::take).collect()
    }
}

/// One measured run.
struct Measured {
    events_per_s: f64,
    writes_per_event: f64,
}

/// Projects `events` as stream records in batches of [`BATCH_SIZE`] on a fresh stack, every
/// DynamoDB call [`LATENCY`] slower; checks the view against the fold of the events.
async fn run(emulator: &Emulator, events: &[StoredEvent], concurrent: bool) -> Measured {
    let (side, _stack) = ReadSide::fresh(emulator).await;
    side.append(events).await;
    let records: Vec<EventRecord> = events.iter().map(record_of).collect();
    let layer = FaultLayer::new(
        FaultPlan::scripted()
            .slow_delay(LATENCY)
            .rule(Rule::new(FaultKind::Slow).always()),
    );
    let sdk = layer.apply(&emulator.sdk_config().await);
    let projector = Projector::from_config(&sdk, &side.config).expect("projector");
    let started = Instant::now();
    for batch in records.chunks(BATCH_SIZE) {
        if concurrent {
            let response = projector
                .process_batch(&read_side::batch(batch.to_vec()))
                .await;
            assert!(response.batch_item_failures.is_empty(), "a batch failed");
        } else {
            for record in batch {
                let update = plan_record(record).expect("plans");
                projector.project(&update).await.expect("projects");
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    layer.stop();
    let writes = layer.counts().of(FaultKind::Slow, "UpdateItem");
    // The figure counts only if the view is right.
    let expected = folded(events);
    for (id, view) in expected.iter().step_by(7) {
        assert_eq!(side.view(id).await.map(to_millis).as_ref(), Some(view));
    }
    Measured {
        events_per_s: events.len() as f64 / elapsed,
        writes_per_event: writes as f64 / events.len() as f64,
    }
}

/// The consumer index projections compared.
const PROJECTIONS: [&str; 3] = ["ALL", "INCLUDE", "KEYS_ONLY"];

/// A view table of its own with the consumer index projected as `projection`.
async fn view_table(client: &aws_sdk_dynamodb::Client, projection: &str) -> String {
    let table = ftgo_tests::unique_id(&format!("bench-view-{}", projection.to_lowercase()));
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let attribute = |name: &str, kind| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .unwrap()
    };
    let projection = match projection {
        "ALL" => Projection::builder().projection_type(ProjectionType::All),
        "KEYS_ONLY" => Projection::builder().projection_type(ProjectionType::KeysOnly),
        // What a history page reads and filters on (orderVersion says it is an order).
        _ => [
            "status",
            "deliveryStatus",
            "restaurantId",
            "restaurantName",
            "lineItems",
            "orderTotal",
            "keywords",
            "restaurantKeywords",
            "orderVersion",
        ]
        .into_iter()
        .fold(
            Projection::builder().projection_type(ProjectionType::Include),
            |p, name| p.non_key_attributes(name),
        ),
    }
    .build();
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("orderId", KeyType::Hash))
        .attribute_definitions(attribute("orderId", ScalarAttributeType::S))
        .attribute_definitions(attribute("consumerId", ScalarAttributeType::S))
        .attribute_definitions(attribute("creationDate", ScalarAttributeType::N))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by-consumer")
                .key_schema(key("consumerId", KeyType::Hash))
                .key_schema(key("creationDate", KeyType::Range))
                .projection(projection)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateTable");
    table
}

/// Write capacity (table + index) per event of `events` applied as `updates` to a table whose
/// index is projected as `projection`; `None` when the emulator reports no capacity.
async fn wcu_per_event(
    client: &aws_sdk_dynamodb::Client,
    projection: &str,
    events: usize,
    updates: &[ViewUpdate],
) -> Option<(f64, f64)> {
    let table = view_table(client, projection).await;
    let (mut total, mut index) = (0.0, 0.0);
    for update in updates {
        let input = update_item_input(&table, update).unwrap();
        let output = client
            .update_item()
            .set_table_name(input.table_name)
            .set_key(input.key)
            .set_update_expression(input.update_expression)
            .set_condition_expression(input.condition_expression)
            .set_expression_attribute_names(input.expression_attribute_names)
            .set_expression_attribute_values(input.expression_attribute_values)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .expect("UpdateItem");
        let consumed = output.consumed_capacity?;
        total += consumed.capacity_units?;
        index += consumed
            .global_secondary_indexes
            .unwrap_or_default()
            .values()
            .filter_map(|c| c.capacity_units)
            .sum::<f64>();
    }
    let _ = client.delete_table().table_name(&table).send().await;
    Some((total / events as f64, index / events as f64))
}

fn figure(
    id: &str,
    label: &str,
    value: Option<f64>,
    unit: &str,
    target: Option<(&str, bool)>,
    peer: &str,
    note: &str,
) -> Value {
    json!({
        "id": format!("projector.{id}"),
        "label": label,
        "value": value.map(|v| (v * 1000.0).round() / 1000.0),
        "unit": unit,
        "target": target.map(|t| t.0),
        "peer": peer,
        "met": target.map(|t| value.is_some() && t.1),
        "note": note,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let orders: usize = std::env::var("FTGO_BENCH_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(250);
    let emulator = match Emulator::dynamodb_local().await {
        Ok(emulator) => emulator,
        Err(skipped) => {
            eprintln!("{skipped}: measuring on moto, without consumed capacity");
            Emulator::moto().await
        }
    };
    let on = emulator.kind().name();
    let ms = LATENCY.as_millis();
    let mut figures = Vec::new();
    for (shape, spread) in [("lifecycle", false), ("spread", true)] {
        let events = workload(orders, spread);
        let serial = run(emulator, &events, false).await;
        let concurrent = run(emulator, &events, true).await;
        let build = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        let note = format!(
            "{} events ({orders} orders × 4), batches of {BATCH_SIZE}, {ms} ms injected per DynamoDB call on top of {on}'s own time, {build} build",
            events.len()
        );
        eprintln!(
            "{shape}: serial {:.0} events/s, {:.2} writes/event; concurrent/coalesced {:.0} events/s, {:.2} writes/event",
            serial.events_per_s,
            serial.writes_per_event,
            concurrent.events_per_s,
            concurrent.writes_per_event
        );
        figures.push(figure(
            &format!("events_per_s.{shape}.concurrent"),
            &format!("events/s per shard, concurrent + coalesced ({shape})"),
            Some(concurrent.events_per_s),
            "events/s",
            Some((
                "≥ 1,000 events/s per shard",
                concurrent.events_per_s >= 1000.0,
            )),
            &format!(
                "serial (one write per record, in turn) {:.0} events/s",
                serial.events_per_s
            ),
            &note,
        ));
        figures.push(figure(
            &format!("events_per_s.{shape}.serial"),
            &format!("events/s per shard, serial ({shape}; before)"),
            Some(serial.events_per_s),
            "events/s",
            None,
            "",
            &note,
        ));
        figures.push(figure(
            &format!("writes_per_event.{shape}"),
            &format!("conditional writes per event ({shape})"),
            Some(concurrent.writes_per_event),
            "writes/event",
            match spread {
                false => Some((
                    "< 1 write per event under load",
                    concurrent.writes_per_event < 1.0,
                )),
                // Every record of a batch is a different stream: nothing to coalesce.
                true => None,
            },
            &format!("serial {:.2}", serial.writes_per_event),
            &note,
        ));
    }
    // Write capacity per event with each projection of the consumer index.
    let client = emulator.dynamodb().await;
    let life = workload(1, false);
    let singles: Vec<ViewUpdate> = life.iter().map(|e| plan(e).unwrap()).collect();
    let coalesced: Vec<ViewUpdate> = [AggregateType::Order, AggregateType::Delivery]
        .into_iter()
        .flat_map(|source| {
            let stream: Vec<ViewUpdate> = singles
                .iter()
                .filter(|u| u.source == source)
                .cloned()
                .collect();
            ViewUpdate::coalesce(&stream)
        })
        .collect();
    let mut chosen: HashMap<&str, f64> = HashMap::new();
    for projection in PROJECTIONS {
        for (how, updates) in [("single", &singles), ("coalesced", &coalesced)] {
            let measured = wcu_per_event(&client, projection, life.len(), updates).await;
            let note = match (measured, emulator.kind()) {
                (Some((_, index)), _) => format!(
                    "{} events of one order's life as {} writes; of which index {index:.2} WCU/event; {on}",
                    life.len(),
                    updates.len()
                ),
                (None, EmulatorKind::Moto) => {
                    "moto reports no consumed capacity (no Java for DynamoDB Local)".into()
                }
                (None, _) => format!("{on} reported no consumed capacity"),
            };
            let value = measured.map(|(total, _)| total);
            if let Some(value) = value {
                chosen.insert(projection, value);
            }
            eprintln!("WCU/event {projection} {how}: {value:?} ({note})");
            figures.push(figure(
                &format!("wcu_per_event.{}.{how}", projection.to_lowercase()),
                &format!("WCU per event, index {projection}, {how} writes"),
                value,
                "WCU/event",
                None,
                "issue 17: ≈ 2 WCU per event before (ALL, one write per event)",
                &note,
            ));
        }
    }
    let part = json!({
        "part": "projector",
        "title": format!("Projector per shard ({ms} ms per DynamoDB call)"),
        "figures": figures,
        "charts": [],
    });
    let dir = std::env::var_os("FTGO_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository_root().join("target/bench"));
    let parts = dir.join("parts");
    std::fs::create_dir_all(&parts).expect("parts directory");
    let path = parts.join("projector.json");
    std::fs::write(&path, serde_json::to_string_pretty(&part).unwrap()).expect("write part");
    eprintln!("wrote {}", path.display());
}
