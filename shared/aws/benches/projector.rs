//! Projector cost per event, without I/O: decode the stream record's `NewImage` into a stored
//! event (serde_dynamo, upcasting included), plan its view update, and build the one conditional
//! `UpdateItem` input. Target: at most 2 µs per event in release.
//!
//! Run with `cargo bench -p ftgo-aws --bench projector`. Records come from the sample batches in
//! `events/order-history-projector/`, so the bench measures the payloads the tests project.
// A benchmark, like a test, stops loudly on a broken sample.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ftgo_aws::store::order_history::update_item_input;
use ftgo_aws::store::stream_image::{decode_image, image, plan_record};
use ftgo_domain::view::{keywords_of, plan};

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

    // Where the time of one OrderCreated goes.
    let mut parts = c.benchmark_group("projector parts (OrderCreated v2)");
    let created = &lifecycle[0];
    let update = plan_record(created).expect("plans");
    parts.bench_function("read in place + plan", |b| {
        b.iter(|| black_box(image::plan_in_place(black_box(&created.change.new_image))))
    });
    parts.bench_function("general path: clone image + serde_dynamo + plan", |b| {
        b.iter(|| {
            let event = decode_image(black_box(created.change.new_image.clone()));
            black_box(event.map(|event| plan(&event)))
        })
    });
    parts.bench_function("keywords (line items + restaurant)", |b| {
        b.iter(|| {
            black_box(keywords_of(black_box("Chicken Vindaloo")));
            black_box(keywords_of(black_box("Garlic Naan")));
            black_box(keywords_of(black_box("Ajanta")));
        })
    });
    parts.bench_function("build UpdateItem input", |b| {
        b.iter(|| black_box(update_item_input("ftgo-order-history", black_box(&update))))
    });
    parts.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
