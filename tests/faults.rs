//! The fault suite (issue 15): the system under the failures AWS makes and the emulators never
//! do, injected at the SDK's boundary by `ftgo_aws::faults` in front of moto — answers lost
//! after the write landed, throttling, transactions in progress, 500/503 before and after the
//! write, answers slower than the SDK's attempt timeout — on a seeded schedule (the seed is
//! printed; `FTGO_FAULT_SEED=<seed>` re-runs it).
//!
//! Concurrent clients send random commands, with and without `Idempotency-Key`, retrying as
//! real clients do, while the event-source bridge feeds the stream to the projector and the
//! archiver (and their dead letters to the archive-backfiller), all behind faults, with bursts
//! of throttling long enough to exhaust a stream consumer's retries. Then the faults stop, the
//! consumers drain, and `checks` names every violation of what must hold.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

#[path = "faults/checks.rs"]
mod checks;
#[path = "faults/clients.rs"]
mod clients;
#[path = "faults/seed.rs"]
mod seed;
#[path = "faults/workload.rs"]
mod workload;
#[path = "faults/world.rs"]
mod world;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ftgo_aws::faults::{FaultKind, FaultPlan, RandomSchedule, Rule};
use ftgo_aws::store::archive::{Archive, s3_client};
use ftgo_aws::verify::{DateRange, scan_events, scan_view};
use futures::StreamExt;
use strum::VariantArray;

/// The probability of a fault per SDK request while faults are on.
const RATE: f64 = 0.35;
/// The same for the stream consumers, which make far fewer requests.
const CONSUMERS_RATE: f64 = 0.6;
/// Orders whose lives the clients play: enough for `MIN_FAULTS` now that each command makes
/// its floor of calls and the projector coalesces (200 orders drew about 750 faults).
const ORDERS: usize = 360;
/// Concurrent clients.
const CLIENTS: usize = 16;
/// At least this many faults per run, or the run proves little.
const MIN_FAULTS: u64 = 1_000;
/// How long the consumers get at most to catch up once the faults stop (the wait ends as soon
/// as the view and the archive hold every event; a loaded machine needs the margin).
const DRAIN: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_projection_and_archive_hold_under_injected_faults() {
    // The functions' logs, when asked for (`RUST_LOG=warn`): why an answer was what it was.
    if std::env::var_os("RUST_LOG").is_some() {
        ftgo_aws::telemetry::init_logs(
            "fault-suite",
            &ftgo_aws::telemetry::LogSettings::from_lookup(|name| std::env::var(name).ok()),
        );
    }
    let seed = seed::seed("commands_projection_and_archive_hold_under_injected_faults");
    // Slow answers cost a client the whole deadline: a few, scripted, rather than drawn.
    let quick: Vec<FaultKind> = FaultKind::VARIANTS
        .iter()
        .copied()
        .filter(|kind| *kind != FaultKind::Slow)
        .collect();
    let world = world::World::new(
        FaultPlan::random(RandomSchedule::new(seed, RATE).kinds(&quick)).rule(
            Rule::new(FaultKind::Slow)
                .operation("PutItem")
                .after(100)
                .times(10),
        ),
        FaultPlan::random(RandomSchedule::new(seed.rotate_left(17), CONSUMERS_RATE).kinds(&quick))
            .rule(
                Rule::new(FaultKind::Slow)
                    .operation("UpdateItem")
                    .after(30)
                    .times(3),
            ),
    )
    .await;
    // Bursts long enough to outlast a stream consumer's 10 retries (4 SDK attempts each): the
    // projector's view writes and the archiver's objects.
    world.consumers_layer.push_rule(
        Rule::new(FaultKind::Throttle)
            .resource(&world.config.order_history_table)
            .after(200)
            .times(60),
    );
    world.consumers_layer.push_rule(
        Rule::new(FaultKind::Throttle)
            .operation("PutObject")
            .after(20)
            .times(60),
    );
    let consumers = world.start_consumers();

    let started = Instant::now();
    let plans = workload::plans(&mut seed::rng(seed, 1), &format!("f{seed}"), ORDERS);
    let mut commands = workload::run(&world.commands, plans, CLIENTS).await;
    let faulted_for = started.elapsed();
    world.stop_faults();
    let service = &world.commands;
    futures::stream::iter(commands.iter_mut())
        .for_each_concurrent(CLIENTS, |command| clients::late_retry(service, command))
        .await;

    // The consumers drain: wait until the view and the archive hold every event, or give up.
    let dynamodb = aws_sdk_dynamodb::Client::new(&world.clean);
    let archive = Archive::new(s3_client(&world.clean), &world.config.archive_bucket);
    let all = DateRange::default();
    let drain_started = Instant::now();
    let deadline = drain_started + DRAIN;
    let (events, read_side) = loop {
        let events = scan_events(&dynamodb, &world.config.events_table, &all)
            .await
            .expect("scan events");
        let view = scan_view(&dynamodb, &world.config.order_history_table)
            .await
            .expect("scan view");
        let archived = archive.archived_event_ids(&all).await.expect("archive");
        let violations = checks::read_side(&events, &view, &archived);
        if violations.is_empty() || Instant::now() > deadline {
            break (events, violations);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    consumers.stop().await;
    let drained_in = drain_started.elapsed();

    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for layer in [&world.commands_layer, &world.consumers_layer] {
        for (kind, n) in layer.counts().by_kind() {
            *by_kind.entry(kind).or_default() += n;
        }
    }
    let total: u64 = by_kind.values().sum();
    eprintln!("commands layer:  {}", world.commands_layer.counts());
    eprintln!("consumers layer: {}", world.consumers_layer.counts());
    eprintln!(
        "{} commands ({} orders) in {faulted_for:?} under faults, consumers drained in {drained_in:?} (at most {DRAIN:?}); {} events; faults per kind: {:?}",
        commands.len(),
        ORDERS,
        events.len(),
        by_kind
    );

    let mut violations = checks::commands(&commands, &events);
    violations.extend(read_side);
    if total < MIN_FAULTS {
        violations.push(format!(
            "only {total} faults injected, fewer than {MIN_FAULTS}"
        ));
    }
    // Per kind of violation (its text up to the first colon, numbers dropped), and up to four
    // examples of each.
    let kind_of = |violation: &str| -> String {
        violation
            .split(':')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .filter(|word| !word.chars().any(|c| c.is_ascii_digit()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut examples = Vec::new();
    for violation in &violations {
        let seen = kinds.entry(kind_of(violation)).or_default();
        *seen += 1;
        if *seen <= 4 {
            examples.push(violation.clone());
        }
    }
    let summary: Vec<String> = kinds.iter().map(|(k, n)| format!("{n:>4}  {k}")).collect();
    assert!(
        violations.is_empty(),
        "{} violations (seed {seed}):\n{}\n\nexamples:\n{}",
        violations.len(),
        summary.join("\n"),
        examples.join("\n")
    );
}
