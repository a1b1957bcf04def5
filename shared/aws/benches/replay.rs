//! Replay throughput without I/O, with criterion's statistics: decode archive objects (gzip
//! NDJSON, line by line), order each chunk by stream and version (repeats dropped), and plan
//! every event's view update — what `archive-replayer` does per event before its `UpdateItem`.
//! Over a generated archive of 1,000,000 events (250,000 orders: created, approved, picked up,
//! delivered; [`fixtures`]) in objects of 1,000 events. Target: at least 500,000 events/s on
//! one core. The `archive` bench measures the same workload for the `make bench` report.
//!
//! Run with `cargo bench -p ftgo-aws --bench replay`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod fixtures;

const EVENTS: usize = 1_000_000;
const PER_OBJECT: usize = 1_000;

fn bench(c: &mut Criterion) {
    let objects = fixtures::replay_archive(EVENTS, PER_OBJECT);
    assert_eq!(fixtures::replay(&objects), EVENTS);
    let mut group = c.benchmark_group("replay decode+order+plan");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("1,000,000 events in 1,000 objects", |b| {
        b.iter(|| fixtures::replay(black_box(&objects)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
