//! The `archive` part of the `make bench` report (issue 17): what the archive costs and how fast
//! it replays, measured in this run.
//!
//! * **PUTs per event, bytes per object, events per object, trail** at 1 event/s (and at
//!   100 events/s): a day of generated traffic (orders arriving at random, each writing four
//!   events over its first half hour, so a batch holds many streams) is cut into stream batches
//!   as Lambda's event source mapping cuts them with the **archiver's event source in
//!   `template.yaml`** (`BatchSize`, `MaximumBatchingWindowInSeconds`, read from the template
//!   here, never copied): a batch is invoked when it holds `BatchSize` records, when its first
//!   record has waited the window, or when the next record would take its payload past
//!   Lambda's 6 MB. Each batch goes through the archiver's own code — the records as Lambda
//!   delivers them ([`decode_record`], [`shard_of`]), then [`plan_objects`] — and every object
//!   planned is one `PutObject`; its bytes are [`ArchiveObject::body`]. The trail is how long an
//!   event waits for its batch's invocation. The same traffic under the setting before issue 17
//!   (`BatchSize` 500, a 10 s window) is the peer.
//! * **Replay events/s**: decode, order and plan 1,000,000 events (the replay bench's workload,
//!   [`fixtures`]), best of three runs, one core.
//!
//! Writes `$FTGO_BENCH_DIR/parts/archive.json` (default `target/bench` under the workspace
//! root) and prints the figures. Run with `cargo bench -p ftgo-aws --bench archive`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use aws_lambda_events::dynamodb::EventRecord;
use ftgo_aws::lambda::event_archiver::{decode_record, shard_of};
use ftgo_aws::store::archive::{ArchiveObject, ArchiveRecord, PARTITIONS, plan_objects};
use ftgo_domain::event::StoredEvent;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

mod fixtures;

/// Lambda's limit on a synchronous invocation's payload, which also ends a stream batch.
const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// The target of issue 17 for the archiver at low traffic.
const TARGET_PUTS_PER_EVENT: f64 = 0.1;
/// The replay target of issue 17.
const TARGET_REPLAY_EVENTS_PER_SECOND: f64 = 500_000.0;
/// The archiver's event source before issue 17 (the peer): `BatchSize`, window in seconds.
const BEFORE: Batching = Batching {
    batch_size: 500,
    window_seconds: 10,
};

/// The batching settings of a stream event source.
#[derive(Clone, Copy, Debug)]
struct Batching {
    batch_size: usize,
    window_seconds: u64,
}

/// The archiver's event source in `template.yaml`: the `DynamoDB` event of the function whose
/// binary is `event-archiver` (Lambda's defaults where a setting is absent: 100 records, 0 s).
fn archiver_batching(template: &Path) -> Batching {
    let text =
        std::fs::read_to_string(template).unwrap_or_else(|e| panic!("{}: {e}", template.display()));
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", template.display()));
    let resources = yaml["Resources"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{}: no Resources", template.display()));
    let function = resources
        .values()
        .find(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some("event-archiver"))
        .unwrap_or_else(|| panic!("{}: no event-archiver function", template.display()));
    let source = function["Properties"]["Events"]
        .as_mapping()
        .and_then(|events| {
            events
                .values()
                .find(|e| e["Type"].as_str() == Some("DynamoDB"))
        })
        .unwrap_or_else(|| {
            panic!(
                "{}: the event-archiver has no DynamoDB event",
                template.display()
            )
        });
    let properties = &source["Properties"];
    Batching {
        batch_size: properties["BatchSize"].as_u64().map_or(100, |n| n as usize),
        window_seconds: properties["MaximumBatchingWindowInSeconds"]
            .as_u64()
            .unwrap_or(0),
    }
}

/// One stream record of the generated traffic: when it reached the stream, and the record as
/// Lambda delivers it, with its size in the invocation payload.
struct Arrival {
    at_seconds: f64,
    record: EventRecord,
    bytes: usize,
}

/// `rate` events a second for `seconds`, from 2026-11-01 12:00 UTC (a day crosses midnight,
/// so the `date=` split is in the figures): orders arrive at random (exponential gaps), each
/// writing `OrderCreated` at once, `OrderApproved` ½–2 min later, `DeliveryPickedUp` 10–20 min
/// and `DeliveryDelivered` 25–50 min later; events past the end are left out.
fn traffic(rate: f64, seconds: f64, seed: u64) -> Vec<Arrival> {
    let start = time::macros::datetime!(2026-11-01 12:00 UTC);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let order_rate = rate / 4.0;
    let mut timed: Vec<(f64, usize, usize)> = Vec::new();
    let (mut at, mut order) = (0.0_f64, 0_usize);
    loop {
        at += -(1.0 - rng.random::<f64>()).ln() / order_rate;
        if at >= seconds {
            break;
        }
        let offsets = [
            0.0,
            rng.random_range(30.0..120.0),
            rng.random_range(600.0..1200.0),
            rng.random_range(1500.0..3000.0),
        ];
        for (step, offset) in offsets.into_iter().enumerate() {
            if at + offset < seconds {
                timed.push((at + offset, order, step));
            }
        }
        order += 1;
    }
    timed.sort_by(|a, b| a.0.total_cmp(&b.0));
    timed
        .into_iter()
        .enumerate()
        .map(|(n, (at_seconds, order, step))| {
            let occurred_at = start + time::Duration::seconds_f64(at_seconds);
            let event = fixtures::lifecycle_event(order, step, n, occurred_at);
            let record = stream_record(&event, n, at_seconds);
            let bytes = serde_json::to_vec(&record).map_or(0, |v| v.len()) + 1;
            Arrival {
                at_seconds,
                record,
                bytes,
            }
        })
        .collect()
}

/// `event` as the `n`-th record of the event table's stream, as Lambda delivers it.
fn stream_record(event: &StoredEvent, n: usize, at_seconds: f64) -> EventRecord {
    let image: serde_dynamo::Item =
        serde_dynamo::to_item(event).unwrap_or_else(|e| panic!("fixture image: {e}"));
    let keys =
        json!({"streamId": {"S": event.stream_id}, "version": {"N": event.version.to_string()}});
    let record = json!({
        "awsRegion": "us-east-1",
        "eventID": format!("{n:032x}"),
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "eventVersion": "1.1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/ftgo-events/stream/2026-11-01T00:00:00.000",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_793_534_400.0 + at_seconds.floor(),
            "Keys": keys,
            "NewImage": image,
            "SequenceNumber": format!("{}", 400_000_000_000_000_000_000_u128 + n as u128 * 100),
            "SizeBytes": 300,
            "StreamViewType": "NEW_IMAGE"
        }
    });
    serde_json::from_value(record).unwrap_or_else(|e| panic!("fixture stream record: {e}"))
}

/// Cuts `arrivals` into batches as Lambda's event source mapping does with `batching`: the
/// index ranges of each batch, and when each was invoked (seconds).
fn batches(arrivals: &[Arrival], batching: Batching) -> Vec<(std::ops::Range<usize>, f64)> {
    let window = batching.window_seconds as f64;
    let mut cut = Vec::new();
    let mut first = 0;
    while first < arrivals.len() {
        let due = arrivals[first].at_seconds + window;
        let mut end = first;
        let mut payload = 0;
        while end < arrivals.len()
            && end - first < batching.batch_size
            && arrivals[end].at_seconds <= due
            && (end == first || payload + arrivals[end].bytes <= MAX_PAYLOAD_BYTES)
        {
            payload += arrivals[end].bytes;
            end += 1;
        }
        let full = end - first == batching.batch_size
            || arrivals
                .get(end)
                .is_some_and(|next| payload + next.bytes > MAX_PAYLOAD_BYTES);
        let invoked = if full {
            arrivals[end - 1].at_seconds
        } else {
            due
        };
        cut.push((first..end, invoked));
        first = end;
    }
    cut
}

/// What the archive writes for some traffic under some batching.
#[derive(Debug, Default)]
struct Cost {
    events: usize,
    batches: usize,
    puts: usize,
    bytes: usize,
    max_trail_seconds: f64,
}

impl Cost {
    fn puts_per_event(&self) -> f64 {
        self.puts as f64 / self.events as f64
    }
    fn bytes_per_object(&self) -> f64 {
        self.bytes as f64 / self.puts as f64
    }
    fn events_per_object(&self) -> f64 {
        self.events as f64 / self.puts as f64
    }
}

/// Runs every batch of `arrivals` under `batching` through the archiver's decoding and
/// planning; every object planned is one `PutObject`.
fn archive_cost(arrivals: &[Arrival], batching: Batching) -> Cost {
    let mut cost = Cost::default();
    for (range, invoked) in batches(arrivals, batching) {
        let batch = &arrivals[range];
        let shard = batch
            .first()
            .map(|a| shard_of(&a.record))
            .unwrap_or_default();
        let records: Vec<ArchiveRecord> = batch
            .iter()
            .map(|a| ArchiveRecord {
                sequence_number: a.record.change.sequence_number.clone().unwrap_or_default(),
                event: decode_record(&a.record)
                    .unwrap_or_else(|e| panic!("fixture record decodes: {e}")),
            })
            .collect();
        let objects: Vec<ArchiveObject> =
            plan_objects(&shard, &records).unwrap_or_else(|e| panic!("fixture batch plans: {e}"));
        cost.events += records.len();
        cost.batches += 1;
        cost.puts += objects.len();
        for object in &objects {
            cost.bytes += object
                .body()
                .unwrap_or_else(|e| panic!("fixture object encodes: {e}"))
                .len();
        }
        for arrival in batch {
            cost.max_trail_seconds = cost.max_trail_seconds.max(invoked - arrival.at_seconds);
        }
    }
    cost
}

/// Replay events/s: the best of three runs of the replay workload.
fn replay_events_per_second() -> (f64, usize) {
    const EVENTS: usize = 1_000_000;
    let objects = fixtures::replay_archive(EVENTS, 1_000);
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let planned = fixtures::replay(&objects);
        assert_eq!(planned, EVENTS, "every event is planned");
        best = best.min(started.elapsed().as_secs_f64());
    }
    (EVENTS as f64 / best, EVENTS)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10_f64.powi(digits);
    (value * scale).round() / scale
}

fn main() {
    let root = workspace_root();
    let build = if cfg!(debug_assertions) {
        "debug build (`cargo bench` measures release)"
    } else {
        "release build"
    };
    let now = archiver_batching(&root.join("template.yaml"));
    let window = now.window_seconds;
    println!(
        "archive: the archiver's event source in template.yaml: BatchSize {}, MaximumBatchingWindowInSeconds {window}; {PARTITIONS} partitions; {build}",
        now.batch_size
    );

    let day = traffic(1.0, 86_400.0, 17);
    let (low, low_before) = (archive_cost(&day, now), archive_cost(&day, BEFORE));
    let busy = traffic(100.0, 900.0, 18);
    let high = archive_cost(&busy, now);
    let high_before = archive_cost(&busy, BEFORE);
    for (label, cost) in [
        ("1 event/s, template", &low),
        ("1 event/s, before", &low_before),
        ("100 events/s, template", &high),
        ("100 events/s, before", &high_before),
    ] {
        println!(
            "  {label}: {} events in {} batches, {} PUTs = {:.4} PUT/event, {:.1} events and {:.0} bytes per object, trail ≤ {:.0} s",
            cost.events,
            cost.batches,
            cost.puts,
            cost.puts_per_event(),
            cost.events_per_object(),
            cost.bytes_per_object(),
            cost.max_trail_seconds
        );
    }
    let (replay_rate, replay_events) = replay_events_per_second();
    println!(
        "  replay: {replay_rate:.0} events/s (decode, order, plan; best of 3 over {replay_events} events)"
    );

    let simulated = format!(
        "a simulated day at 1 event/s ({} events, random orders of 4 events), cut into stream batches as Lambda does with the template's BatchSize {} and {window} s window; each batch through the archiver's decode and plan_objects (1 object = 1 PutObject), {build}",
        low.events, now.batch_size
    );
    let part = json!({
        "part": "archive",
        "title": "Archive: S3 PUTs, object size, trail, replay",
        "figures": [
            {
                "id": "archive.puts_per_event_1eps",
                "label": "archiver PUTs per event at 1 event/s",
                "value": round(low.puts_per_event(), 4),
                "unit": "PUT/event",
                "target": format!("≤ {TARGET_PUTS_PER_EVENT}"),
                "peer": format!("before (BatchSize {}, {} s window): {:.3}", BEFORE.batch_size, BEFORE.window_seconds, low_before.puts_per_event()),
                "met": low.puts_per_event() <= TARGET_PUTS_PER_EVENT,
                "note": simulated,
            },
            {
                "id": "archive.bytes_per_object_1eps",
                "label": "archive object size at 1 event/s (gzip NDJSON)",
                "value": round(low.bytes_per_object(), 0),
                "unit": "B",
                "target": Value::Null,
                "peer": format!("before: {:.0} B", low_before.bytes_per_object()),
                "met": Value::Null,
                "note": format!("{:.1} events per object (before: {:.1}); same simulated day", low.events_per_object(), low_before.events_per_object()),
            },
            {
                "id": "archive.trail_1eps",
                "label": "longest an event waits for its archive batch at 1 event/s",
                "value": round(low.max_trail_seconds, 1),
                "unit": "s",
                "target": format!("≤ {window} s (the template's batching window; plus the write itself)"),
                "peer": format!("before: {:.1} s", low_before.max_trail_seconds),
                // Compared as shown: the simulated clock adds fractions of a second.
                "met": round(low.max_trail_seconds, 1) <= window as f64,
                "note": "the archive may trail the event table by the batching window at low traffic (docs/DESIGN.md)",
            },
            {
                "id": "archive.puts_per_event_100eps",
                "label": "archiver PUTs per event at 100 events/s",
                "value": round(high.puts_per_event(), 4),
                "unit": "PUT/event",
                "target": Value::Null,
                "peer": format!("before: {:.3}", high_before.puts_per_event()),
                "met": Value::Null,
                "note": format!("15 simulated minutes ({} events, {} batches, {:.0} bytes per object); batches fill before the window ends", high.events, high.batches, high.bytes_per_object()),
            },
            {
                "id": "archive.replay_events_per_s",
                "label": "replay events/s (decode, order, plan), one core",
                "value": round(replay_rate, 0),
                "unit": "events/s",
                "target": format!("≥ {TARGET_REPLAY_EVENTS_PER_SECOND:.0}"),
                "peer": Value::Null,
                "met": replay_rate >= TARGET_REPLAY_EVENTS_PER_SECOND,
                "note": format!("best of 3 over {replay_events} events in objects of 1,000 (the replay bench's workload); no network, {build}"),
            }
        ],
        "charts": []
    });
    let dir = std::env::var_os("FTGO_BENCH_DIR")
        .map_or_else(|| root.join("target").join("bench"), PathBuf::from)
        .join("parts");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join("archive.json");
    let text = serde_json::to_string_pretty(&part).unwrap_or_else(|e| panic!("part: {e}"));
    std::fs::write(&path, text + "\n").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    println!("  wrote {}", path.display());
}
