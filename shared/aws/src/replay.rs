//! Replaying the archive into a view table: the replay request, the plan that fans it out over
//! SQS, and the [`Replayer`] that does one partition's work (in `ftgo replay`, and in the
//! `archive-replayer` Lambda, whose handler is [`crate::lambda::archive_replayer`]).
//!
//! # The replay request (one SQS message on the replay queue, `ftgo-replay`)
//!
//! ```json
//! {"bucket":"ftgo-event-archive","prefix":"events/v1/bucket=3/","target":"ftgo-order-history"}
//! ```
//!
//! * `bucket`: the archive bucket to read;
//! * `prefix`: the part of the archive to replay: one partition (`events/v1/bucket=<N>/`, what
//!   [`plan_replay`] sends), or a narrower prefix inside one (`…/bucket=3/date=2024-03-10/`);
//! * `target`: the order-history view table to apply the events to; an empty table is built
//!   from scratch, a current one is left unchanged;
//! * `from`, `to` (optional): only the objects of these days (`date=` segments, inclusive);
//! * `after` (optional): a checkpoint: only the objects after this key (in
//!   [`compare_object_keys`] order). A replayer near its time limit sends its own request back
//!   with `after` set (a continuation) instead of failing.
//!
//! # Replaying
//!
//! The replayer lists the objects of the request and reads them one after the other in the order
//! the stream wrote them (shard, first sequence number: [`compare_object_keys`]). Each object is decoded line by line
//! into chunks of at most [`CHUNK_EVENTS`] events; a chunk's events are sorted by stream and
//! version (repeats dropped) and applied through the projector's idempotent apply
//! ([`Projector::project`]: one conditional `UpdateItem` under the strict successor rule, a
//! duplicate skipped, a gap filled from the event table first), streams concurrently. So memory
//! stays bounded by one chunk however large a partition grows, an event repeated in another
//! object is a duplicate, and replaying twice, or into a table that is already current, changes
//! nothing. After each object the replay may stop (a checkpoint: that object's key).
//!
//! A partition with an event that cannot be projected (it does not decode, or an earlier event
//! of its stream does not) is replayed as far as it goes, then its message is reported failed:
//! SQS redelivers it (changing nothing that already landed) until the queue's redrive policy
//! moves it to the replay dead-letter queue, and the reason is in the logs.

use std::io::{BufRead, BufReader};

use flate2::read::MultiGzDecoder;
use ftgo_domain::event::StoredEvent;
use ftgo_domain::view::plan;
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::Error;
use crate::projector::{Projected, Projector};
pub use crate::replay_checkpoints::{CHECKPOINT_PREFIX, Checkpoint, Checkpoints};
use crate::store::archive::{
    Archive, DateRange, FORMAT_PREFIX, OBJECT_SUFFIX, UNDECODABLE_PREFIX, compare_sequence_numbers,
    sort_and_dedup,
};
use crate::store::event_store::EventStore;
use crate::store::order_history::OrderHistoryDao;

/// How many streams one replayer applies at once.
pub const STREAM_CONCURRENCY: usize = 16;

/// One unit of replay work: the message body on the replay queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// The archive bucket.
    pub bucket: String,
    /// The archive prefix: `events/v1/bucket=<N>/`, or a narrower prefix inside it.
    pub prefix: String,
    /// The view table to apply the events to.
    pub target: String,
    /// The first day (`YYYY-MM-DD`, UTC, inclusive) whose objects are replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The last day (`YYYY-MM-DD`, UTC, inclusive) whose objects are replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A checkpoint: the objects up to and including this key (in [`compare_object_keys`]
    /// order) are done; replay the ones after it. Continuation messages carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Skip the objects a replay into the same target recorded as applied
    /// ([`Checkpoints::done`]): `ftgo replay --resume`, and the continuations the replayer sends
    /// itself. Objects that landed since, whatever their keys, are replayed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resume: bool,
}

impl ReplayRequest {
    /// A request for all of `prefix`, from its first object.
    pub fn new(
        bucket: impl Into<String>,
        prefix: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        Self {
            bucket: bucket.into(),
            prefix: prefix.into(),
            target: target.into(),
            from: None,
            to: None,
            after: None,
            resume: false,
        }
    }

    /// This request resumed: the objects a replay into its target recorded as applied are
    /// skipped, every other one (late objects with smaller keys too) is replayed.
    pub fn resumed(&self) -> Self {
        Self {
            resume: true,
            ..self.clone()
        }
    }

    /// The days the request covers.
    pub fn range(&self) -> Result<DateRange, Error> {
        DateRange::parse(self.from.as_deref(), self.to.as_deref())
    }

    /// Reads and checks a message body.
    pub fn parse(body: &str) -> Result<Self, Error> {
        let request: Self =
            serde_json::from_str(body).map_err(|e| Error::Codec(format!("replay request: {e}")))?;
        request.validate()?;
        Ok(request)
    }

    /// Checks that the request names a bucket, a target and an archive partition.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: String| Err(Error::Codec(format!("replay request: {reason}")));
        if self.bucket.is_empty() {
            return invalid("bucket is empty".to_owned());
        }
        if self.target.is_empty() {
            return invalid("target is empty".to_owned());
        }
        let partition = format!("{FORMAT_PREFIX}bucket=");
        if !self.prefix.starts_with(&partition) || self.prefix.starts_with(UNDECODABLE_PREFIX) {
            return invalid(format!(
                "prefix {:?} is not inside an archive partition ({partition}<N>/)",
                self.prefix
            ));
        }
        self.range()?;
        Ok(())
    }
}

/// What one replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplaySummary {
    /// Archive objects read to the end.
    pub objects: usize,
    /// Events read from the archive (repeats across objects included).
    pub events: usize,
    /// Streams they belong to (counted per chunk: a stream spread over objects counts again).
    pub streams: usize,
    /// Events that landed on the view.
    pub applied: usize,
    /// Events the view had already.
    pub duplicates: usize,
    /// Events that landed after earlier ones were filled in from the event table.
    pub filled_gaps: usize,
    /// Events that could not be projected (they, or an earlier event of their stream, do not
    /// decode), with the reason.
    pub failed: Vec<String>,
    /// The most events held in memory at once: one chunk of one object, however large the
    /// partition ([`CHUNK_EVENTS`] at most).
    pub peak_events_held: usize,
}

impl ReplaySummary {
    /// Adds `other`'s counts to these (the peak is the larger of both).
    pub fn merge(&mut self, other: ReplaySummary) {
        self.objects += other.objects;
        self.events += other.events;
        self.streams += other.streams;
        self.applied += other.applied;
        self.duplicates += other.duplicates;
        self.filled_gaps += other.filled_gaps;
        self.failed.extend(other.failed);
        self.peak_events_held = self.peak_events_held.max(other.peak_events_held);
    }
}

/// How many decoded events a replayer holds at most before applying them.
pub const CHUNK_EVENTS: usize = 1_000;

/// Where one partition's replay stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionOutcome {
    /// What it did.
    pub summary: ReplaySummary,
    /// The last object read to the end (the checkpoint to resume after), if any.
    pub checkpoint: Option<String>,
    /// Whether every object of the request was read (false: stopped early, resume after
    /// `checkpoint`).
    pub complete: bool,
}

/// How one partition is replayed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayMode {
    /// Decode, order and plan only; write nothing.
    pub dry_run: bool,
    /// At most this many events per second (`None`: as fast as it goes).
    pub rate: Option<u32>,
}

/// The order of archive objects inside a partition: the order the stream wrote them, i.e. by
/// shard (the stream label, an ISO time stamp, so a later stream sorts later; `backfill` after
/// every label) and then by first sequence number as a number (S3 lists keys as text, where
/// `10-…` sorts before `9-…`), the day only breaking ties. Not by day first: an event archived
/// late (an order created yesterday, approved today) must come after the checkpoint of a replay
/// that ran in between, so that resuming picks it up.
pub fn compare_object_keys(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(key: &str) -> (&str, &str, &str, &str) {
        let mut segments = key.rsplitn(3, '/');
        let file = segments.next().unwrap_or_default();
        let shard = segments.next().unwrap_or_default();
        let rest = segments.next().unwrap_or_default();
        let first = file.split_once('-').map_or(file, |(first, _)| first);
        (shard, first, rest, file)
    }
    let (a_shard, a_first, a_rest, a_file) = parts(a);
    let (b_shard, b_first, b_rest, b_file) = parts(b);
    a_shard
        .cmp(b_shard)
        .then_with(|| compare_sequence_numbers(a_first, b_first))
        .then_with(|| a_rest.cmp(b_rest))
        .then_with(|| a_file.cmp(b_file))
}

/// The archive objects `request` covers, in [`compare_object_keys`] order: under its prefix,
/// of a day in its range, after its `after` key, and, when it resumes, not recorded as applied
/// to its target.
pub async fn request_objects(
    archive: &Archive,
    request: &ReplayRequest,
) -> Result<Vec<String>, Error> {
    let range = request.range()?;
    let done = if request.resume {
        Checkpoints::new(archive.clone(), &request.target)
            .done(&request.prefix)
            .await?
    } else {
        std::collections::BTreeSet::new()
    };
    let mut keys: Vec<String> = archive
        .list_keys(&request.prefix)
        .await?
        .into_iter()
        .filter(|key| key.ends_with(OBJECT_SUFFIX) && range.contains_key(key))
        .filter(|key| {
            request
                .after
                .as_deref()
                .is_none_or(|after| compare_object_keys(key, after).is_gt())
        })
        .filter(|key| !done.contains(key))
        .collect();
    keys.sort_by(|a, b| compare_object_keys(a, b));
    Ok(keys)
}

/// The replay requests for every archive partition of `archive`, each naming `target` and the
/// days `from`..=`to`.
pub async fn partition_requests(
    archive: &Archive,
    target: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Vec<ReplayRequest>, Error> {
    let mut requests = Vec::new();
    for prefix in archive.list_partitions().await? {
        let mut request = ReplayRequest::new(archive.bucket(), prefix, target);
        request.from = from.map(str::to_owned);
        request.to = to.map(str::to_owned);
        request.validate()?;
        requests.push(request);
    }
    Ok(requests)
}

/// Sends `request` to the replay queue at `queue_url`.
pub async fn send_request(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    request: &ReplayRequest,
) -> Result<(), Error> {
    let body = serde_json::to_string(request).map_err(|e| Error::Codec(e.to_string()))?;
    sqs.send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
        .map_err(|e| Error::sdk("SendMessage replay queue", e))?;
    Ok(())
}

/// Sends one replay request per archive partition of `archive` to `queue_url`, each naming
/// `target`; returns the requests sent. This is what `ftgo replay --queue` runs;
/// `archive-replayer` invocations then do the work, as many at once as Lambda runs.
pub async fn plan_replay(
    archive: &Archive,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    target: &str,
) -> Result<Vec<ReplayRequest>, Error> {
    let requests = partition_requests(archive, target, None, None).await?;
    for request in &requests {
        send_request(sqs, queue_url, request).await?;
        tracing::info!(prefix = %request.prefix, target, "replay planned");
    }
    Ok(requests)
}

/// The events of one archive object's content, decoded line by line as the gzip stream is
/// read (blank lines skipped): the object's lines are never all held at once. One line buffer
/// is reused for every line, and each line is decoded from its bytes in place.
pub fn decode_lines(bytes: &[u8]) -> impl Iterator<Item = Result<StoredEvent, Error>> + '_ {
    let mut reader = BufReader::with_capacity(64 * 1024, MultiGzDecoder::new(bytes));
    let mut line = Vec::with_capacity(1024);
    let mut index = 0usize;
    std::iter::from_fn(move || {
        loop {
            line.clear();
            index += 1;
            match reader.read_until(b'\n', &mut line) {
                Err(e) => return Some(Err(Error::Codec(format!("gzip NDJSON line {index}: {e}")))),
                Ok(0) => return None,
                Ok(_) if is_blank(&line) => continue,
                Ok(_) => {
                    return Some(
                        serde_json::from_slice(&line)
                            .map_err(|e| Error::Codec(format!("NDJSON line {index}: {e}"))),
                    );
                }
            }
        }
    })
}

/// Whether an NDJSON line holds only white space (as `str::trim` sees it: a line of
/// non-ASCII white space is blank too).
fn is_blank(line: &[u8]) -> bool {
    match line.trim_ascii() {
        [] => true,
        [first, ..] if first.is_ascii() => false,
        rest => std::str::from_utf8(rest).is_ok_and(|text| text.trim().is_empty()),
    }
}

/// Groups a chunk of events into streams, each in version order without repeats.
pub fn chunk_streams(mut events: Vec<StoredEvent>) -> Vec<Vec<StoredEvent>> {
    sort_and_dedup(&mut events);
    let mut streams: Vec<Vec<StoredEvent>> = Vec::new();
    for event in events {
        match streams.last_mut() {
            Some(current) if current[0].stream_id == event.stream_id => current.push(event),
            _ => streams.push(vec![event]),
        }
    }
    streams
}

/// The archive replayer: the clients and the names it needs besides those in each request.
#[derive(Debug, Clone)]
pub struct Replayer {
    s3: aws_sdk_s3::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    config: Config,
}

impl Replayer {
    /// A replayer with these clients; from `config` it uses the event table (gap fills) and
    /// the snapshot table and index names the projector's constructors take.
    pub fn new(
        s3: aws_sdk_s3::Client,
        dynamodb: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
        config: Config,
    ) -> Self {
        Self {
            s3,
            dynamodb,
            sqs,
            config,
        }
    }

    /// The replayer the Lambda runs: clients from `sdk`, names from `config`.
    pub fn from_config(sdk: &aws_config::SdkConfig, config: &Config) -> Result<Self, Error> {
        Config::require(&config.events_table, "EVENTS_TABLE")?;
        Ok(Self::new(
            crate::store::archive::s3_client(sdk),
            aws_sdk_dynamodb::Client::new(sdk),
            aws_sdk_sqs::Client::new(sdk),
            config.clone(),
        ))
    }

    /// The projector writing into view table `target`.
    fn projector(&self, target: &str) -> Projector {
        Projector::new(
            OrderHistoryDao::new(
                self.dynamodb.clone(),
                target,
                &self.config.order_history_by_consumer_index,
            ),
            EventStore::new(
                self.dynamodb.clone(),
                &self.config.events_table,
                &self.config.snapshots_table,
            ),
            self.sqs.clone(),
            &self.config.projector_dlq_url,
        )
    }

    /// Replays `request` to its end: every archived event under its prefix (days in its range,
    /// after its checkpoint), applied to its target. `Err` is a failure worth retrying (an AWS
    /// call failed); events that cannot be projected are listed in the summary's `failed`.
    pub async fn replay(&self, request: &ReplayRequest) -> Result<ReplaySummary, Error> {
        let outcome = self
            .replay_objects(request, ReplayMode::default(), None, |_, _| false)
            .await?;
        Ok(outcome.summary)
    }

    /// Replays the objects of `request` one after the other, in bounded memory: each object is
    /// decoded line by line into chunks of at most [`CHUNK_EVENTS`] events, each chunk applied
    /// (streams concurrently, each stream in version order) before the next is read. After each
    /// object its key is saved as the partition's checkpoint in `checkpoints` (when given, and
    /// not in a dry run), then `after_object(key, summary so far)` is called; when it answers
    /// `true` the replay stops there, its checkpoint that key (resume after it, or send a
    /// continuation).
    pub async fn replay_objects(
        &self,
        request: &ReplayRequest,
        mode: ReplayMode,
        checkpoints: Option<&Checkpoints>,
        mut after_object: impl FnMut(&str, &ReplaySummary) -> bool,
    ) -> Result<PartitionOutcome, Error> {
        request.validate()?;
        let archive = Archive::new(self.s3.clone(), &request.bucket);
        let projector = self.projector(&request.target);
        let keys = request_objects(&archive, request).await?;
        let started = std::time::Instant::now();
        let mut outcome = PartitionOutcome::default();
        for (index, key) in keys.iter().enumerate() {
            let failed_before = outcome.summary.failed.len();
            let bytes = archive.get_bytes(key).await?;
            let mut chunk = Vec::new();
            for event in decode_lines(&bytes) {
                let event = event
                    .map_err(|e| Error::Codec(format!("s3://{}/{key}: {e}", request.bucket)))?;
                chunk.push(event);
                if chunk.len() >= CHUNK_EVENTS {
                    let full = std::mem::take(&mut chunk);
                    outcome
                        .summary
                        .merge(apply_chunk(&projector, full, mode).await?);
                }
            }
            if !chunk.is_empty() {
                outcome
                    .summary
                    .merge(apply_chunk(&projector, chunk, mode).await?);
            }
            outcome.summary.objects += 1;
            outcome.checkpoint = Some(key.clone());
            let complete = index + 1 == keys.len();
            if let Some(checkpoints) = checkpoints.filter(|_| !mode.dry_run) {
                // An object with an event that could not land is not done: a resume reads it again.
                if outcome.summary.failed.len() == failed_before {
                    checkpoints.mark_done(key).await?;
                }
                let checkpoint = Checkpoint {
                    after: Some(key.clone()),
                    complete,
                };
                checkpoints.save(&request.prefix, &checkpoint).await?;
            }
            if let Some(rate) = mode.rate.filter(|rate| *rate > 0) {
                let due = std::time::Duration::from_secs_f64(
                    outcome.summary.events as f64 / f64::from(rate),
                );
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            if after_object(key, &outcome.summary) && !complete {
                return Ok(outcome);
            }
        }
        if keys.is_empty()
            && let Some(checkpoints) = checkpoints.filter(|_| !mode.dry_run)
        {
            let checkpoint = Checkpoint {
                after: request.after.clone(),
                complete: true,
            };
            checkpoints.save(&request.prefix, &checkpoint).await?;
        }
        outcome.complete = true;
        Ok(outcome)
    }

    /// Replays `request` as one `archive-replayer` invocation does; `Err` when the request must
    /// come back (retry, then dead letter): an AWS call failed, or an event could not be
    /// projected. When `deadline` (the invocation's) comes within [`CONTINUATION_MARGIN`], the
    /// replayer stops after the object it is on and sends a continuation request (the same
    /// request, resumed: [`ReplayRequest::resumed`]) to the replay queue instead of running out
    /// of time. Each object applied is recorded in the target's [`Checkpoints`].
    pub async fn replay_until(
        &self,
        request: &ReplayRequest,
        deadline: Option<std::time::SystemTime>,
    ) -> Result<ReplaySummary, Error> {
        let near_deadline = |_: &str, _: &ReplaySummary| {
            deadline.is_some_and(|deadline| {
                deadline
                    .duration_since(std::time::SystemTime::now())
                    .map_or(true, |left| left < CONTINUATION_MARGIN)
            })
        };
        let archive = Archive::new(self.s3.clone(), &request.bucket);
        let checkpoints = Checkpoints::new(archive, &request.target);
        let outcome = self
            .replay_objects(
                request,
                ReplayMode::default(),
                Some(&checkpoints),
                near_deadline,
            )
            .await?;
        let summary = outcome.summary;
        if !outcome.complete {
            let continuation = request.resumed();
            send_request(&self.sqs, &self.config.replay_queue_url, &continuation).await?;
            tracing::info!(prefix = %request.prefix, last = ?outcome.checkpoint, "near the time limit: continuation sent");
        }
        tracing::info!(bucket = %request.bucket, prefix = %request.prefix, target = %request.target, ?summary, "partition replayed");
        crate::telemetry::count(
            crate::telemetry::names::REPLAY_EVENTS_APPLIED,
            (summary.applied + summary.filled_gaps) as u64,
        );
        if summary.failed.is_empty() {
            Ok(summary)
        } else {
            Err(Error::Projection(format!(
                "{} event(s) of s3://{}/{} could not be replayed into {}: {}",
                summary.failed.len(),
                request.bucket,
                request.prefix,
                request.target,
                summary.failed.join("; ")
            )))
        }
    }
}

/// How long before its deadline an invocation stops taking new objects and sends a
/// continuation (one object takes well under this).
pub const CONTINUATION_MARGIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Applies (or, in a dry run, only plans) one chunk of events.
async fn apply_chunk(
    projector: &Projector,
    chunk: Vec<StoredEvent>,
    mode: ReplayMode,
) -> Result<ReplaySummary, Error> {
    let held = chunk.len();
    let streams = chunk_streams(chunk);
    let mut summary = ReplaySummary {
        peak_events_held: held,
        ..ReplaySummary::default()
    };
    if mode.dry_run {
        for events in streams {
            summary.merge(plan_stream(&events));
        }
        return Ok(summary);
    }
    let results: Vec<Result<ReplaySummary, Error>> = stream::iter(streams)
        .map(|events| replay_stream(projector, events))
        .buffer_unordered(STREAM_CONCURRENCY)
        .collect()
        .await;
    for result in results {
        summary.merge(result?);
    }
    Ok(summary)
}

/// Plans one stream's events without writing (a dry run): counts them, names the first that
/// does not plan.
fn plan_stream(events: &[StoredEvent]) -> ReplaySummary {
    let mut summary = ReplaySummary {
        events: events.len(),
        streams: 1,
        ..ReplaySummary::default()
    };
    if let Some((event, error)) = events
        .iter()
        .find_map(|event| plan(event).err().map(|error| (event, error)))
    {
        summary.failed.push(format!(
            "{} version {}: {error}",
            event.stream_id, event.version
        ));
    }
    summary
}

/// Applies one stream's events, in version order, stopping at the first that cannot land.
async fn replay_stream(
    projector: &Projector,
    events: Vec<StoredEvent>,
) -> Result<ReplaySummary, Error> {
    let mut summary = ReplaySummary {
        events: events.len(),
        streams: 1,
        ..ReplaySummary::default()
    };
    for event in &events {
        let update = match plan(event) {
            Ok(update) => update,
            Err(error) => {
                summary.failed.push(format!(
                    "{} version {}: {error}",
                    event.stream_id, event.version
                ));
                break;
            }
        };
        match projector.project(&update).await? {
            Projected::Applied => summary.applied += 1,
            Projected::Duplicate => summary.duplicates += 1,
            Projected::FilledGap { .. } => summary.filled_gaps += 1,
            Projected::Blocked { by, reason } => {
                summary.failed.push(format!(
                    "{} version {}: blocked by version {} ({reason})",
                    event.stream_id, event.version, by.version
                ));
                break;
            }
            Projected::ConfirmedGap { missing, .. } => {
                summary.failed.push(format!(
                    "{} version {}: version {missing} is not in the event table",
                    event.stream_id, event.version
                ));
                break;
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_bucket_partition_and_target() {
        let request = ReplayRequest::parse(
            r#"{"bucket":"ftgo-event-archive","prefix":"events/v1/bucket=3/","target":"t"}"#,
        )
        .unwrap();
        assert_eq!(request.prefix, "events/v1/bucket=3/");
        let narrower =
            r#"{"bucket":"b","prefix":"events/v1/bucket=3/date=2024-03-10/","target":"t"}"#;
        assert!(ReplayRequest::parse(narrower).is_ok());
    }

    #[test]
    fn objects_come_in_the_order_the_stream_wrote_them() {
        let mut keys = vec![
            "events/v1/bucket=1/date=2026-11-02/L1/10-12.ndjson.gz",
            "events/v1/bucket=1/date=2026-11-01/L1/13-13.ndjson.gz",
            "events/v1/bucket=1/date=2026-11-02/L1/9-9.ndjson.gz",
            "events/v1/bucket=1/date=2026-11-01/backfill/0197-0198.ndjson.gz",
            "events/v1/bucket=1/date=2026-11-03/L0/100-200.ndjson.gz",
        ];
        keys.sort_by(|a, b| compare_object_keys(a, b));
        assert_eq!(
            keys,
            vec![
                "events/v1/bucket=1/date=2026-11-03/L0/100-200.ndjson.gz",
                "events/v1/bucket=1/date=2026-11-02/L1/9-9.ndjson.gz",
                "events/v1/bucket=1/date=2026-11-02/L1/10-12.ndjson.gz",
                "events/v1/bucket=1/date=2026-11-01/L1/13-13.ndjson.gz",
                "events/v1/bucket=1/date=2026-11-01/backfill/0197-0198.ndjson.gz",
            ]
        );
    }

    #[test]
    fn decoding_reads_line_by_line_and_chunks_group_streams_in_version_order() {
        use ftgo_domain::event::Metadata;
        let event = |stream: &str, version: u64| StoredEvent {
            stream_id: stream.into(),
            version,
            event_id: format!("e-{stream}-{version}"),
            event_type: "OrderApproved".into(),
            schema_version: 1,
            aggregate_type: "Order".into(),
            aggregate_id: stream.trim_start_matches("Order#").into(),
            occurred_at: time::macros::datetime!(2026-11-01 12:00 UTC),
            payload: serde_json::json!({}),
            metadata: Metadata::default(),
        };
        let events = vec![
            event("Order#b", 2),
            event("Order#a", 1),
            event("Order#b", 1),
            event("Order#b", 2),
        ];
        let bytes = crate::store::archive::encode(&events).unwrap();
        let decoded: Vec<StoredEvent> = decode_lines(&bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!(decoded, events);
        let streams = chunk_streams(decoded);
        let ids: Vec<Vec<u64>> = streams
            .iter()
            .map(|s| s.iter().map(|e| e.version).collect())
            .collect();
        assert_eq!(ids, vec![vec![1], vec![1, 2]]);
        assert!(decode_lines(b"not gzip").next().unwrap().is_err());
    }

    #[test]
    fn blank_lines_are_skipped_and_line_numbers_count_them() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder
            .write_all(" \r\n\n\u{a0}\u{3000}\n\tnot json\n".as_bytes())
            .unwrap();
        let bytes = encoder.finish().unwrap();
        let results: Vec<Result<StoredEvent, Error>> = decode_lines(&bytes).collect();
        assert_eq!(results.len(), 1);
        let error = results[0].as_ref().unwrap_err().to_string();
        assert!(error.contains("NDJSON line 4"), "{error}");
    }

    #[test]
    fn bad_requests_are_refused() {
        for body in [
            "not json",
            r#"{"bucket":"b","prefix":"events/v1/","target":"t"}"#,
            r#"{"bucket":"b","prefix":"events/v1/undecodable/","target":"t"}"#,
            r#"{"bucket":"","prefix":"events/v1/bucket=1/","target":"t"}"#,
            r#"{"bucket":"b","prefix":"events/v1/bucket=1/","target":""}"#,
            r#"{"bucket":"b","prefix":"events/v1/bucket=1/"}"#,
            r#"{"bucket":"b","prefix":"events/v1/bucket=1/","target":"t","extra":1}"#,
        ] {
            assert!(ReplayRequest::parse(body).is_err(), "{body}");
        }
    }
}
