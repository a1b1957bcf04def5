//! Projector cost per event, without I/O: decode the stream record's `NewImage` into a stored
//! event (serde_dynamo, upcasting included), plan its view update, and build the one conditional
//! `UpdateItem` input. Target: at most 2 µs per event in release.
//!
//! Run with `cargo bench -p ftgo-aws --bench projector`. Records come from the sample batches in
//! `events/order-history-projector/`, so the bench measures the payloads the tests project.

use std::hint::black_box;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ftgo_aws::order_history::update_item_input;
use ftgo_aws::projector::plan_record;

const LIFECYCLE: &str =
    include_str!("../../../events/order-history-projector/order-lifecycle.json");
const SCHEMA_V1: &str =
    include_str!("../../../events/order-history-projector/order-created-schema-v1.json");

fn records(json: &str) -> Vec<EventRecord> {
    serde_json::from_str::<Event>(json)
        .expect("sample batch parses")
        .records
}

fn project(record: &EventRecord) {
    let update = plan_record(record).expect("sample record plans");
    let input = update_item_input("ftgo-order-history", &update).expect("input builds");
    black_box(input);
}

fn bench(c: &mut Criterion) {
    let lifecycle = records(LIFECYCLE);
    let mut group = c.benchmark_group("projector decode+plan+UpdateItem");
    // created, approved, picked up, delivered: per event of a typical order's life.
    group.throughput(Throughput::Elements(lifecycle.len() as u64));
    group.bench_function("order lifecycle (per event)", |b| {
        b.iter(|| {
            lifecycle
                .iter()
                .for_each(|record| project(black_box(record)))
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("OrderCreated v2", |b| {
        b.iter(|| project(black_box(&lifecycle[0])))
    });
    let v1 = records(SCHEMA_V1);
    group.bench_function("OrderCreated v1 (upcast)", |b| {
        b.iter(|| project(black_box(&v1[0])))
    });
    group.bench_function("OrderApproved", |b| {
        b.iter(|| project(black_box(&lifecycle[1])))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
