//! Replay throughput without I/O: decode archive objects (gzip NDJSON, line by line), order each
//! chunk by stream and version (repeats dropped), and plan every event's view update — what
//! `archive-replayer` does per event before its `UpdateItem`. Over a generated archive of
//! 1,000,000 events (250,000 orders: created, approved, picked up, delivered) in objects of
//! 1,000 events. Target: at least 500,000 events/s on one core.
//!
//! Run with `cargo bench -p ftgo-aws --bench replay` (or `make bench`).

// A benchmark panics on broken fixtures rather than measuring them.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ftgo_aws::replay::{CHUNK_EVENTS, chunk_streams, decode_lines};
use ftgo_aws::store::archive::encode;
use ftgo_domain::AggregateType;
use ftgo_domain::Money;
use ftgo_domain::delivery::DeliveryEvent;
use ftgo_domain::event::{DomainEvent, EventStamp, Metadata, StoredEvent};
use ftgo_domain::order::{LineItem, OrderCreated, OrderEvent};
use ftgo_domain::view::plan;

const EVENTS: usize = 1_000_000;
const PER_OBJECT: usize = 1_000;

fn stored<E: DomainEvent>(
    kind: AggregateType,
    order: &str,
    version: u64,
    event: &E,
    n: usize,
) -> StoredEvent {
    let occurred_at =
        time::macros::datetime!(2026-11-01 00:00 UTC) + time::Duration::milliseconds(n as i64);
    StoredEvent::record(
        kind,
        order,
        version,
        event,
        EventStamp {
            event_id: format!("0197a1b2-c3d4-7e5f-8a9b-{n:012}"),
            occurred_at,
        },
        Metadata {
            correlation_id: format!("req-{n}"),
            causation_id: None,
            idempotency: None,
        },
    )
    .expect("event records")
}

/// The generated archive: its objects' bytes.
fn archive() -> Vec<Vec<u8>> {
    let mut events = Vec::with_capacity(EVENTS);
    let mut n = 0;
    while events.len() < EVENTS {
        let order = format!("0197a1b2-c3d4-7e5f-8a9b-{n:012}");
        let created = OrderEvent::OrderCreated(OrderCreated {
            consumer_id: format!("consumer-{}", n % 1000),
            restaurant_id: "r-1".into(),
            restaurant_name: "Ajanta Palace".into(),
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
            delivery_address: None,
            order_total: Money::from_cents(2818),
        });
        events.push(stored(AggregateType::Order, &order, 1, &created, n));
        events.push(stored(
            AggregateType::Order,
            &order,
            2,
            &OrderEvent::OrderApproved {},
            n + 1,
        ));
        events.push(stored(
            AggregateType::Delivery,
            &order,
            1,
            &DeliveryEvent::DeliveryPickedUp {},
            n + 2,
        ));
        events.push(stored(
            AggregateType::Delivery,
            &order,
            2,
            &DeliveryEvent::DeliveryDelivered {},
            n + 3,
        ));
        n += 4;
    }
    events
        .chunks(PER_OBJECT)
        .map(|chunk| encode(chunk).expect("encodes"))
        .collect()
}

/// Decode, order and plan every event of `objects`; the number of updates planned.
fn replay(objects: &[Vec<u8>]) -> usize {
    let mut planned = 0;
    for bytes in objects {
        let mut chunk = Vec::with_capacity(CHUNK_EVENTS);
        for event in decode_lines(bytes) {
            chunk.push(event.expect("decodes"));
        }
        for stream in chunk_streams(chunk) {
            for event in &stream {
                black_box(plan(event).expect("plans"));
                planned += 1;
            }
        }
    }
    planned
}

fn bench(c: &mut Criterion) {
    let objects = archive();
    assert_eq!(replay(&objects), EVENTS);
    let mut group = c.benchmark_group("replay decode+order+plan");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("1,000,000 events in 1,000 objects", |b| {
        b.iter(|| replay(black_box(&objects)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
