//! Backfilling one day out of 1,000,000 events: what the `archive-backfiller` does for one dead
//! letter, timed, with its peak memory.
//!
//! **Synthetic, in memory** (a full emulator run of a million events is too slow for a
//! bench): the event table is a generator of 1,000,000 events over 100 days (10,000 a day,
//! as DynamoDB items), read in `Scan` pages of 2,000 items to which the sweep's own
//! server-side filter ([`scan_filter`]) is applied, as DynamoDB applies it; the archive is the
//! gzip NDJSON objects of the days the dead letter covers, one of which is lost. The measured
//! part is the backfiller's own work on that input, with the real code: the archive's ids of
//! the days concerned ([`decode`]), every filtered page through [`Comparison`], the missing
//! events planned into backfill objects ([`backfill_objects`]) every [`FLUSH_EVENTS`] events.
//! Peak memory is the process's peak resident set (`VmHWM`, reset before the measured part).
//! Not measured: network and DynamoDB's own reading of the table (in AWS the `Scan` reads
//! every item; the filter only cuts what is sent).
//!
//! Run with `cargo bench -p ftgo-aws --bench archive_backfill` (or `make bench`).

// A benchmark panics on broken fixtures rather than measuring them.
#![allow(clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_aws::archive_backfill::{Comparison, FLUSH_EVENTS, scan_filter};
use ftgo_aws::on_failure::{OnFailureRecord, StreamBatchInfo};
use ftgo_aws::store::archive::{decode, encode};
use ftgo_aws::verify::backfill_objects;
use ftgo_domain::AggregateType;
use ftgo_domain::event::StoredEvent;
use ftgo_domain::order::OrderEvent;

mod fixtures;

/// A line of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`), where there is one (Linux).
fn status_kib(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Resets the peak resident set (`VmHWM`) to the current one (Linux 4.0+).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

const EVENTS: usize = 1_000_000;
const DAYS: usize = 100;
const PAGE_ITEMS: usize = 2_000;
const PER_OBJECT: usize = 500;

/// Event `n` of the table: orders of three events, 10,000 events a day from 2026-08-01 on.
fn event(n: usize) -> StoredEvent {
    let day = n / (EVENTS / DAYS);
    let occurred_at = time::macros::datetime!(2026-08-01 00:00 UTC)
        + time::Duration::days(day as i64)
        + time::Duration::milliseconds((n % (EVENTS / DAYS)) as i64 * 8);
    let version = (n % 3) as u64 + 1;
    let body = match version {
        1 => OrderEvent::OrderApproved {},
        2 => OrderEvent::OrderCancelled {},
        _ => OrderEvent::OrderRejected {},
    };
    fixtures::stored(
        AggregateType::Order,
        &fixtures::order_id(n / 3),
        version,
        &body,
        n,
        occurred_at,
    )
}

/// Whether `item` passes the sweep's filter (`#at >= :low AND #at < :high`).
fn passes(
    item: &HashMap<String, AttributeValue>,
    filter: &ftgo_aws::view_snapshot::Condition,
) -> bool {
    let Some(AttributeValue::S(at)) = item.get("occurredAt") else {
        return false;
    };
    let bound = |name: &str| match filter.values.get(name) {
        Some(AttributeValue::S(text)) => Some(text.as_str()),
        _ => None,
    };
    bound(":low").is_none_or(|low| at.as_str() >= low)
        && bound(":high").is_none_or(|high| at.as_str() < high)
}

fn main() {
    // The dead letter: a batch that arrived on the 51st day.
    let record = OnFailureRecord::parse(
        &serde_json::json!({
            "DDBStreamBatchInfo": StreamBatchInfo {
                shard_id: "shardId-1".into(),
                start_sequence_number: "1".into(),
                end_sequence_number: "9".into(),
                approximate_arrival_of_first_record: time::macros::datetime!(2026-09-20 08:00 UTC),
                approximate_arrival_of_last_record: time::macros::datetime!(2026-09-20 09:00 UTC),
                batch_size: 100,
                stream_arn: String::new(),
            }
        })
        .to_string(),
    )
    .expect("on-failure record");
    let range = record.covering_range();
    let filter = scan_filter(&range).expect("a bounded range");

    // The archive of the days concerned, one object lost.
    let mut objects = Vec::new();
    let mut batch = Vec::new();
    for n in 0..EVENTS {
        let event = event(n);
        if range.contains_event(&event) {
            batch.push(event);
            if batch.len() == PER_OBJECT {
                objects.push(encode(&batch).expect("encodes"));
                batch.clear();
            }
        }
    }
    if !batch.is_empty() {
        objects.push(encode(&batch).expect("encodes"));
    }
    let lost = objects.remove(objects.len() / 2);
    let lost_events = decode(&lost).expect("decodes").len();
    drop(lost);

    let reset = reset_peak();
    let baseline = status_kib("VmRSS");
    let started = Instant::now();
    let mut serving = std::time::Duration::ZERO;

    // The backfiller: the archive's ids of those days…
    let mut archived = BTreeSet::new();
    for bytes in &objects {
        archived.extend(
            decode(bytes)
                .expect("decodes")
                .into_iter()
                .map(|e| (e.stream_id, e.version)),
        );
    }
    // …then the table, page by page, through the comparison, flushing as it goes.
    let mut comparison = Comparison::new(range, &archived);
    let (mut examined, mut in_range, mut backfilled, mut written) = (0, 0, 0, 0);
    let mut flush = |comparison: &mut Comparison<'_>| {
        let swept = comparison.take();
        examined += swept.examined;
        in_range += swept.in_range;
        let planned = backfill_objects(&swept.missing).expect("plans");
        for object in &planned {
            std::hint::black_box(object.body().expect("encodes"));
        }
        backfilled += swept.missing.len();
        written += planned.len();
    };
    for page in 0..EVENTS / PAGE_ITEMS {
        // The store's side: every item of the page read, the filter applied.
        let serve = Instant::now();
        let items: Vec<HashMap<String, AttributeValue>> = (page * PAGE_ITEMS
            ..(page + 1) * PAGE_ITEMS)
            .map(|n| serde_dynamo::to_item(event(n)).expect("item"))
            .filter(|item| passes(item, &filter))
            .collect();
        serving += serve.elapsed();
        for item in items {
            comparison.examine(item);
            if comparison.missing.len() >= FLUSH_EVENTS {
                flush(&mut comparison);
            }
        }
    }
    flush(&mut comparison);
    let elapsed = started.elapsed();
    let peak = status_kib("VmHWM");

    assert_eq!(backfilled, lost_events, "exactly the lost events are found");
    println!(
        "archive_backfill: one dead letter (a batch that arrived within one day) out of {EVENTS} events over {DAYS} days, {} build",
        if cfg!(debug_assertions) {
            "debug (unoptimised: `cargo bench` gives release numbers)"
        } else {
            "release"
        }
    );
    println!(
        "  input: synthetic events generated on the fly, in-memory store (pages of {PAGE_ITEMS}, the sweep's filter applied as DynamoDB does); no network"
    );
    println!(
        "  covering range {:?}..={:?} (the day before the first arrival, and the day): {} archive objects, {} archived ids; {} items passed the filter, {} in range",
        range.from,
        range.to,
        objects.len(),
        archived.len(),
        examined,
        in_range
    );
    println!("  backfilled {backfilled} events in {written} objects");
    println!(
        "  time: {:.2?} in all, of which {:.2?} the store generating and filtering {EVENTS} items, {:.2?} the backfiller",
        elapsed,
        serving,
        elapsed.saturating_sub(serving)
    );
    match (reset, baseline, peak) {
        (true, Some(baseline), Some(peak)) => println!(
            "  peak memory (resident): {:.1} MiB, of which {:.1} MiB above the fixtures held before the backfill",
            peak as f64 / 1024.0,
            peak.saturating_sub(baseline) as f64 / 1024.0
        ),
        _ => println!(
            "  peak memory: not measurable here (needs Linux /proc/self/status and clear_refs)"
        ),
    }
}
