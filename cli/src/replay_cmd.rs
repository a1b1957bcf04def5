//! `ftgo replay`, `ftgo verify-view`, `ftgo archive verify|backfill` and `ftgo snapshot-view`
//! (DESIGN §10): the
//! archive and read-side commands. Their logic is in `ftgo-aws` ([`ftgo_aws::replay`],
//! [`ftgo_aws::verify`], [`ftgo_aws::archive_backfill`]) so that tests and Lambdas use the
//! same code; here are the arguments, the progress display and the printing.
//!
//! Names come from the template: the archive bucket, tables, index and replay queue from
//! `archive-replayer`'s environment, the archiver's dead-letter queue from `ArchiverDlq` (and
//! the queue `archive-backfiller` gives its messages up to, `ArchiverDlq`'s redrive target), and
//! `--create-table` copies the keys and GSI of `OrderHistoryTable`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use clap::{Args, Subcommand};
use ftgo_aws::archive_backfill::{ArchiveBackfill, Backfill};
use ftgo_aws::config::Config;
use ftgo_aws::on_failure::OnFailureRecord;
use ftgo_aws::replay::{
    Checkpoints, ReplayMode, ReplayRequest, ReplaySummary, Replayer, partition_requests,
    request_objects, send_request,
};
use ftgo_aws::store::archive::{Archive, s3_client};
use ftgo_aws::verify::{DateRange, compare_views, expected_view, scan_events, scan_view};
use ftgo_aws::view_snapshot::ViewSnapshots;
use futures::stream::{self, StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};

use crate::tables::{Existing, provision_table};
use crate::target::StackArgs;
use crate::template::Template;

/// The logical id of the view table in the template.
pub const VIEW_TABLE: &str = "OrderHistoryTable";
/// The logical id of the archiver's dead-letter queue in the template.
pub const ARCHIVER_DLQ: &str = "ArchiverDlq";
/// How many partitions an in-process replay works on at once.
pub const PARTITION_CONCURRENCY: usize = 4;

/// `--from`/`--to`: days (UTC, inclusive) of the events' `occurredAt`.
#[derive(Args, Debug, Clone, Default)]
pub struct RangeArgs {
    /// The first day, `YYYY-MM-DD` (default: the beginning).
    #[arg(long)]
    pub from: Option<String>,
    /// The last day, `YYYY-MM-DD` (default: today and on).
    #[arg(long)]
    pub to: Option<String>,
}

impl RangeArgs {
    fn range(&self) -> Result<DateRange, String> {
        DateRange::parse(self.from.as_deref(), self.to.as_deref()).map_err(|e| e.to_string())
    }
}

/// `ftgo replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    range: RangeArgs,
    /// The view table to replay into (default: the stack's order-history table).
    #[arg(long, alias = "target")]
    target_table: Option<String>,
    /// Create the target table first (keys and GSI of the template's view table).
    #[arg(long)]
    create_table: bool,
    /// Read, decode, order and plan every event; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Go on after the objects an earlier replay into the same table finished (its checkpoints):
    /// resumes an interrupted replay, or catches a rebuilt table up with the archive.
    #[arg(long)]
    resume: bool,
    /// At most this many events per second (per partition worker).
    #[arg(long)]
    rate: Option<u32>,
    /// Fan the partitions out over the replay queue to `archive-replayer` (as on AWS) instead
    /// of replaying in this process.
    #[arg(long)]
    queue: bool,
    /// Two-step rebuild: restore the latest `ftgo snapshot-view` of this table into the target
    /// first, then replay only the events after its watermark.
    #[arg(long, value_name = "TABLE")]
    from_snapshot: Option<String>,
    /// With `--from-snapshot`: restore into a target that already holds items (the live view,
    /// say). Items it holds at a newer version are kept, and so are its replay checkpoints;
    /// without this flag a non-empty target is refused.
    #[arg(long, requires = "from_snapshot")]
    into_non_empty: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// `ftgo snapshot-view`.
#[derive(Args, Debug)]
pub struct SnapshotViewArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// The table to snapshot: one kept by `ftgo replay --target-table` (its checkpoints are
    /// the watermark).
    #[arg(long)]
    table: String,
    /// Print the snapshot as JSON: `{"table","items","objects","location","watermarks"}`.
    #[arg(long)]
    json: bool,
}

/// Runs `ftgo snapshot-view`.
pub async fn snapshot_view(args: SnapshotViewArgs) -> Result<(), String> {
    let setup = Setup::load(&args.stack).await?;
    let snapshots = ViewSnapshots::new(setup.archive(), setup.dynamodb());
    let (key, manifest) = snapshots
        .take(&args.table)
        .await
        .map_err(|e| e.to_string())?;
    let location = format!("s3://{}/{key}", setup.config.archive_bucket);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "table": args.table, "items": manifest.items,
                "objects": manifest.objects.len(), "location": location,
                "watermarks": manifest.watermarks,
            })
        );
        return Ok(());
    }
    for (prefix, after) in &manifest.watermarks {
        println!(
            "{prefix}: watermark {}",
            after.as_deref().unwrap_or("(no object applied)")
        );
    }
    println!(
        "snapshot of {} ({} item(s), {} object(s)): {location}",
        args.table,
        manifest.items,
        manifest.objects.len(),
    );
    Ok(())
}

/// `ftgo verify-view`.
#[derive(Args, Debug)]
pub struct VerifyViewArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// The view table to check (default: the stack's order-history table).
    #[arg(long)]
    table: Option<String>,
    /// Fold the archive instead of the event table.
    #[arg(long)]
    from_archive: bool,
    /// Print the outcome as JSON: `{"table","source","items","events","equal","differences"}`.
    #[arg(long)]
    json: bool,
}

/// `ftgo archive`.
#[derive(Args, Debug)]
pub struct ArchiveArgs {
    #[command(subcommand)]
    command: ArchiveCommand,
}

#[derive(Subcommand, Debug)]
enum ArchiveCommand {
    /// Compare the archive with the event table; name every event the archive misses.
    Verify(ArchiveRangeArgs),
    /// Re-archive the events the archive misses (deterministic keys), then clear the
    /// archiver's dead-letter messages the check covered.
    Backfill(ArchiveRangeArgs),
}

#[derive(Args, Debug)]
struct ArchiveRangeArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    range: RangeArgs,
    /// Print the outcome as JSON: `{"events","missing":[…],"written":[{"key","events"}],
    /// "clearedDeadLetters":[…]}`.
    #[arg(long)]
    json: bool,
}

/// The stack as the commands see it.
struct Setup {
    sdk: SdkConfig,
    template: Template,
    config: Config,
}

impl Setup {
    async fn load(args: &StackArgs) -> Result<Self, String> {
        let (template, sdk) = args.connect().await?;
        let function = template
            .function_by_binary("archive-replayer")
            .ok_or("template.yaml has no archive-replayer function")?;
        let config = Config::from_lookup(|name| function.environment.get(name).cloned())
            .map_err(|e| e.to_string())?;
        Ok(Self {
            sdk,
            template,
            config,
        })
    }

    fn archive(&self) -> Archive {
        Archive::new(s3_client(&self.sdk), &self.config.archive_bucket)
    }

    fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }
}

/// Runs `ftgo replay`.
pub async fn replay(args: ReplayArgs) -> Result<(), String> {
    let setup = Setup::load(&args.stack).await?;
    let target = args
        .target_table
        .clone()
        .unwrap_or_else(|| setup.config.order_history_table.clone());
    args.range.range()?;
    if args.create_table && !args.dry_run {
        let mut table = setup
            .template
            .table(VIEW_TABLE)
            .ok_or("template.yaml has no OrderHistoryTable")?
            .clone();
        table.name.clone_from(&target);
        let created = provision_table(&setup.dynamodb(), &table, Existing::Keep)
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "table {target}{}",
            if created.created {
                " (created)"
            } else {
                " (exists)"
            }
        );
    }
    let archive = setup.archive();
    let mut resume = args.resume;
    if let Some(source) = &args.from_snapshot {
        let snapshots = ViewSnapshots::new(archive.clone(), setup.dynamodb());
        let (key, manifest) = snapshots
            .latest(source)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!("no snapshot of {source} (`ftgo snapshot-view --table {source}`)")
            })?;
        if !args.dry_run {
            let restored = snapshots
                .restore(&manifest, &target, args.into_non_empty)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "restored {} item(s) from s3://{}/{key}; {} kept (the target holds them at a newer version)",
                restored.written,
                archive.bucket(),
                restored.kept_newer
            );
            for prefix in &restored.checkpoints_kept {
                println!("{prefix}: the target's own replay checkpoints are kept");
            }
        }
        resume = true;
    }
    let requests = partition_requests(
        &archive,
        &target,
        args.range.from.as_deref(),
        args.range.to.as_deref(),
    )
    .await
    .map_err(|e| e.to_string())?
    .into_iter()
    .map(|request| if resume { request.resumed() } else { request })
    .collect::<Vec<_>>();
    if args.queue {
        for request in &requests {
            send_request(
                &aws_sdk_sqs::Client::new(&setup.sdk),
                &setup.config.replay_queue_url,
                request,
            )
            .await
            .map_err(|e| e.to_string())?;
            println!(
                "queued s3://{}/{} -> {}",
                request.bucket, request.prefix, target
            );
        }
        println!(
            "{} partition(s) queued on {}",
            requests.len(),
            setup.config.replay_queue_url
        );
        return Ok(());
    }

    let checkpoints = Checkpoints::new(archive.clone(), &target);
    let mut work = Vec::new();
    for request in requests {
        let objects = request_objects(&archive, &request)
            .await
            .map_err(|e| e.to_string())?
            .len();
        work.push((request, objects));
    }
    let total_objects: usize = work.iter().map(|(_, n)| n).sum();
    let progress = Progress::new(total_objects as u64);
    let replayer = Replayer::new(
        s3_client(&setup.sdk),
        setup.dynamodb(),
        aws_sdk_sqs::Client::new(&setup.sdk),
        setup.config.clone(),
    );
    let mode = ReplayMode {
        dry_run: args.dry_run,
        rate: args.rate,
    };
    let outcomes: Vec<(ReplayRequest, ReplaySummary)> = stream::iter(work)
        .map(|(request, _)| {
            let replayer = &replayer;
            let checkpoints = &checkpoints;
            let progress = progress.clone();
            async move {
                let mut last_events = 0;
                let outcome = replayer
                    .replay_objects(&request, mode, Some(checkpoints), |_, summary| {
                        progress.object_done(summary.events - last_events);
                        last_events = summary.events;
                        false
                    })
                    .await
                    .map_err(|e| format!("{}: {e}", request.prefix))?;
                progress.line(&format!(
                    "{}: {} object(s), {} event(s)",
                    request.prefix, outcome.summary.objects, outcome.summary.events
                ));
                Ok::<_, String>((request, outcome.summary))
            }
        })
        .buffer_unordered(PARTITION_CONCURRENCY)
        .try_collect()
        .await?;
    progress.finish();

    let mut summary = ReplaySummary::default();
    let partitions = outcomes.len();
    for (_, partition) in outcomes {
        summary.merge(partition);
    }
    let elapsed = progress.started.elapsed().as_secs_f64().max(1e-3);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "{} {partitions} partition(s), {} object(s), {} event(s) in {elapsed:.1} s ({:.0} events/s) into {target}",
            if args.dry_run { "dry run:" } else { "replayed" },
            summary.objects,
            summary.events,
            summary.events as f64 / elapsed
        );
        if !args.dry_run {
            println!(
                "applied {}, already there {}, after filling gaps {}",
                summary.applied, summary.duplicates, summary.filled_gaps
            );
        }
        for failure in &summary.failed {
            println!("FAILED {failure}");
        }
    }
    if summary.failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} event(s) could not be replayed",
            summary.failed.len()
        ))
    }
}

/// Runs `ftgo verify-view`: exit 0 only when the table equals the fold.
pub async fn verify_view(args: VerifyViewArgs) -> Result<(), String> {
    let setup = Setup::load(&args.stack).await?;
    let table = args
        .table
        .clone()
        .unwrap_or_else(|| setup.config.order_history_table.clone());
    let dynamodb = setup.dynamodb();
    let events = if args.from_archive {
        let archive = setup.archive();
        let mut events = Vec::new();
        for partition in archive.list_partitions().await.map_err(|e| e.to_string())? {
            events.extend(
                archive
                    .read_prefix(&partition)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        events
    } else {
        scan_events(&dynamodb, &setup.config.events_table, &DateRange::default())
            .await
            .map_err(|e| e.to_string())?
    };
    let expected = expected_view(&events).map_err(|e| e.to_string())?;
    let actual = scan_view(&dynamodb, &table)
        .await
        .map_err(|e| e.to_string())?;
    let differences = compare_views(&expected, &actual);
    let source = if args.from_archive {
        "the archive"
    } else {
        "the event table"
    };
    if args.json {
        let differences: Vec<String> = differences.iter().map(ToString::to_string).collect();
        println!(
            "{}",
            serde_json::json!({
                "table": table, "source": source, "items": actual.len(),
                "events": events.len(), "equal": differences.is_empty(),
                "differences": differences,
            })
        );
    }
    for difference in differences.iter().filter(|_| !args.json) {
        println!("{difference}");
    }
    if differences.is_empty() {
        if args.json {
            return Ok(());
        }
        println!(
            "{table} equals the fold of {source}: {} item(s) from {} event(s)",
            actual.len(),
            events.len()
        );
        Ok(())
    } else {
        Err(format!(
            "{table} differs from the fold of {source} in {} place(s)",
            differences.len()
        ))
    }
}

/// Runs `ftgo archive verify|backfill`.
pub async fn archive(args: ArchiveArgs) -> Result<(), String> {
    let (args, backfill) = match args.command {
        ArchiveCommand::Verify(args) => (args, false),
        ArchiveCommand::Backfill(args) => (args, true),
    };
    let setup = Setup::load(&args.stack).await?;
    let range = args.range.range()?;
    // Read the dead letters first: whatever failed before this check is covered by it.
    let dlq = ArchiverDlq::new(&setup);
    let dead_letters = if backfill {
        dlq.receive().await?
    } else {
        Vec::new()
    };
    let service = ArchiveBackfill::new(
        setup.dynamodb(),
        setup.archive(),
        &setup.config.events_table,
    );
    let done = if backfill {
        service.backfill(&range).await
    } else {
        service.check(&range).await.map(|check| Backfill {
            check,
            written: Vec::new(),
        })
    }
    .map_err(|e| e.to_string())?;
    let check = &done.check;
    if args.json {
        return archive_json(&done, backfill, &dead_letters, &range, &dlq).await;
    }
    for event in &check.missing {
        println!(
            "missing {} version {} ({} {}, eventId {})",
            event.stream_id,
            event.version,
            event.event_type,
            event
                .occurred_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            event.event_id
        );
    }
    if !backfill {
        return if check.missing.is_empty() {
            println!(
                "the archive holds all {} event(s) of the event table",
                check.events
            );
            Ok(())
        } else {
            if let Some(trail) = archive_trail(&setup.template) {
                let recent = recent_events(&check.missing, trail);
                if recent > 0 {
                    println!(
                        "{recent} of them occurred within the last {} s, which the archive may trail the event table by (the archiver's batching window and timeout, template.yaml): run again after that before counting them as lost",
                        trail.as_secs()
                    );
                }
            }
            Err(format!(
                "the archive misses {} of {} event(s) (`ftgo archive backfill` puts them back)",
                check.missing.len(),
                check.events
            ))
        };
    }
    for object in &done.written {
        println!("wrote {} ({} event(s))", object.key, object.events);
    }
    println!(
        "backfilled {} event(s) in {} object(s)",
        check.missing.len(),
        done.written.len()
    );
    // Whole-range checks cover every dead letter; a narrower one only those of its days.
    for letter in dead_letters.iter().filter(|l| l.covered_by(&range)) {
        dlq.delete(letter).await?;
        println!("cleared archiver dead letter {}", letter.describe);
    }
    Ok(())
}

/// `ftgo archive verify|backfill --json`: the outcome as one JSON document (the dead letters the
/// check covered cleared first, as without `--json`); exit 1 when `verify` finds a gap.
async fn archive_json(
    done: &Backfill,
    backfill: bool,
    dead_letters: &[DeadLetter],
    range: &DateRange,
    dlq: &ArchiverDlq,
) -> Result<(), String> {
    let mut cleared = Vec::new();
    for letter in dead_letters
        .iter()
        .filter(|l| backfill && l.covered_by(range))
    {
        dlq.delete(letter).await?;
        cleared.push(letter.describe.clone());
    }
    let check = &done.check;
    let missing: Vec<serde_json::Value> = check
        .missing
        .iter()
        .map(|event| {
            serde_json::json!({
                "streamId": event.stream_id, "version": event.version,
                "eventType": event.event_type, "eventId": event.event_id,
                "occurredAt": event.occurred_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            })
        })
        .collect();
    let written: Vec<serde_json::Value> = done
        .written
        .iter()
        .map(|o| serde_json::json!({"key": o.key, "events": o.events}))
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "events": check.events, "missing": missing, "written": written,
            "clearedDeadLetters": cleared,
        })
    );
    if !backfill && !check.missing.is_empty() {
        return Err(format!(
            "the archive misses {} of {} event(s)",
            check.missing.len(),
            check.events
        ));
    }
    Ok(())
}

/// How long the archive may trail the event table while the archiver is healthy: its event
/// source's batching window plus its timeout (docs/DESIGN.md §4, "The archive's trail").
fn archive_trail(template: &Template) -> Option<std::time::Duration> {
    template
        .stream_sources()
        .iter()
        .find(|source| source.binary == "event-archiver")
        .map(|source| source.policy.batching_window + source.timeout)
}

/// How many of `events` occurred less than `trail` ago.
fn recent_events(events: &[ftgo_domain::event::StoredEvent], trail: std::time::Duration) -> usize {
    let since = time::OffsetDateTime::now_utc() - trail;
    events.iter().filter(|e| e.occurred_at > since).count()
}

/// One message of the archiver's dead-letter queue (or of the queue its unrepaired messages
/// move to): Lambda's on-failure record of a batch it gave up on, when it is one.
struct DeadLetter {
    queue_url: String,
    receipt_handle: String,
    describe: String,
    record: Option<OnFailureRecord>,
}

impl DeadLetter {
    /// Whether a check of `range` covered this batch: an open range always (a message that is
    /// no on-failure record too); otherwise when the batch's days are in it.
    fn covered_by(&self, range: &DateRange) -> bool {
        range.is_all() || self.record.as_ref().is_some_and(|r| r.covered_by(range))
    }
}

/// The archiver's dead-letter queue, and the one `archive-backfiller` gives up to (its redrive
/// target), which a person clears with `ftgo archive backfill`.
struct ArchiverDlq {
    sqs: aws_sdk_sqs::Client,
    urls: Vec<String>,
}

impl ArchiverDlq {
    fn new(setup: &Setup) -> Self {
        let queue = setup.template.queue(ARCHIVER_DLQ);
        let given_up = queue
            .and_then(|q| q.redrive.as_ref())
            .and_then(|r| setup.template.queue(&r.dead_letter_queue));
        Self {
            sqs: aws_sdk_sqs::Client::new(&setup.sdk),
            urls: queue
                .into_iter()
                .chain(given_up)
                .map(|q| q.url.clone())
                .collect(),
        }
    }

    /// Every message now on the queues (each stays invisible for the backfill's duration).
    async fn receive(&self) -> Result<Vec<DeadLetter>, String> {
        let mut letters = Vec::new();
        for url in &self.urls {
            loop {
                let page = self
                    .sqs
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .visibility_timeout(900)
                    .send()
                    .await
                    .map_err(|e| format!("ReceiveMessage {url}: {e}"))?;
                let messages = page.messages.unwrap_or_default();
                if messages.is_empty() {
                    break;
                }
                for message in messages {
                    let (record, describe) =
                        match OnFailureRecord::parse(message.body().unwrap_or_default()) {
                            Ok(record) => {
                                let describe = record.describe();
                                (Some(record), describe)
                            }
                            Err(error) => (None, error.to_string()),
                        };
                    println!("archiver dead letter: {describe}");
                    letters.push(DeadLetter {
                        queue_url: url.clone(),
                        receipt_handle: message.receipt_handle().unwrap_or_default().to_owned(),
                        describe,
                        record,
                    });
                }
            }
        }
        Ok(letters)
    }

    async fn delete(&self, letter: &DeadLetter) -> Result<(), String> {
        let url = &letter.queue_url;
        self.sqs
            .delete_message()
            .queue_url(url)
            .receipt_handle(&letter.receipt_handle)
            .send()
            .await
            .map_err(|e| format!("DeleteMessage {url}: {e}"))?;
        Ok(())
    }
}

/// The replay's progress: a bar on a terminal, a plain line every few seconds otherwise.
#[derive(Clone)]
struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    objects: Arc<AtomicUsize>,
    events: Arc<AtomicUsize>,
    total: u64,
    last_line: Arc<std::sync::Mutex<Instant>>,
}

impl Progress {
    fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} objects  {msg}  ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            objects: Arc::default(),
            events: Arc::default(),
            total,
            last_line: Arc::new(std::sync::Mutex::new(Instant::now())),
        }
    }

    fn object_done(&self, events: usize) {
        let objects = self.objects.fetch_add(1, Ordering::Relaxed) + 1;
        let events = self.events.fetch_add(events, Ordering::Relaxed) + events;
        let rate = events as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        match &self.bar {
            Some(bar) => {
                bar.set_position(objects as u64);
                bar.set_message(format!("{events} events  {rate:.0} events/s"));
            }
            None => {
                let Ok(mut last) = self.last_line.lock() else {
                    return;
                };
                if last.elapsed() >= Duration::from_secs(2) || objects as u64 == self.total {
                    *last = Instant::now();
                    eprintln!(
                        "progress: {objects}/{} objects, {events} events, {rate:.0} events/s",
                        self.total
                    );
                }
            }
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
