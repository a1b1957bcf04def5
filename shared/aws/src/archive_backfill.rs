//! Repairing the archive from the event table, the source of truth: `ftgo archive
//! verify|backfill` and the `archive-backfiller` Lambda run this.
//!
//! When the archiver's retries run out, Lambda skips the records and sends an **on-failure
//! record** ([`OnFailureRecord`], [`crate::on_failure`]) to the archiver's dead-letter queue
//! (`ftgo-archiver-dlq`): the shard, the sequence range and the arrival times of the batch, not
//! the records. The stream forgets the records after 24 hours, so the repair reads the event
//! table instead: every event of the days the batch can hold ([`OnFailureRecord::covering_range`]) that the archive
//! misses is written back ([`ArchiveBackfill::backfill`]), under the deterministic keys of
//! [`crate::verify::backfill_objects`]. Running it again finds nothing missing and writes
//! nothing, so a redelivered or repeated dead letter changes nothing.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_domain::event::StoredEvent;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::config::events_table::{OCCURRED_AT, STREAM_ID, VERSION};
use crate::error::Error;
use crate::on_failure::OnFailureRecord;
use crate::store::archive::{Archive, DateRange};
use crate::verify::backfill_objects;

/// What the archive misses in a range of days.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArchiveCheck {
    /// The days checked.
    pub range: DateRange,
    /// The events of the event table in those days.
    pub events: usize,
    /// The ones the archive does not hold, by stream and version.
    pub missing: Vec<StoredEvent>,
}

/// One object a backfill wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenObject {
    /// Its key.
    pub key: String,
    /// How many events it holds.
    pub events: usize,
}

/// What a backfill did: the check, and the objects written to put the missing events back
/// (none when nothing was missing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backfill {
    /// What was missing before.
    pub check: ArchiveCheck,
    /// What was written.
    pub written: Vec<WrittenObject>,
}

/// The archive checker and repairer: the event table it compares with, the archive it repairs.
#[derive(Debug, Clone)]
pub struct ArchiveBackfill {
    dynamodb: aws_sdk_dynamodb::Client,
    archive: Archive,
    events_table: String,
    page_limit: Option<i32>,
}

impl ArchiveBackfill {
    /// A backfill of `archive` from event table `events_table`.
    pub fn new(
        dynamodb: aws_sdk_dynamodb::Client,
        archive: Archive,
        events_table: impl Into<String>,
    ) -> Self {
        Self {
            dynamodb,
            archive,
            events_table: events_table.into(),
            page_limit: None,
        }
    }

    /// The same backfill, reading at most `items` items per `Scan` page (DynamoDB's own page
    /// bound, 1 MB, otherwise): smaller pages stop sooner near a deadline.
    pub fn with_page_limit(mut self, items: i32) -> Self {
        self.page_limit = Some(items.max(1));
        self
    }

    /// The backfill the Lambda runs: clients from `sdk`, the event table and the archive
    /// bucket from `config`.
    pub fn from_config(sdk: &aws_config::SdkConfig, config: &Config) -> Result<Self, Error> {
        Config::require(&config.events_table, "EVENTS_TABLE")?;
        Config::require(&config.archive_bucket, "ARCHIVE_BUCKET")?;
        Ok(Self::new(
            aws_sdk_dynamodb::Client::new(sdk),
            Archive::new(
                crate::store::archive::s3_client(sdk),
                &config.archive_bucket,
            ),
            &config.events_table,
        ))
    }

    /// The archive it repairs.
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// The events of the days of `range` that the event table holds and the archive does not.
    /// Holds every missing event (it reports them): for a repair in bounded memory use
    /// [`Self::sweep`].
    pub async fn check(&self, range: &DateRange) -> Result<ArchiveCheck, Error> {
        let swept = self
            .sweep(range, SweepMode::Check, ScanProgress::start(), || false)
            .await?;
        let mut missing = swept.missing;
        crate::store::archive::sort_and_dedup(&mut missing);
        Ok(ArchiveCheck {
            range: *range,
            events: swept.in_range,
            missing,
        })
    }

    /// Checks `range` and writes the missing events back (runs to the end, holding every
    /// missing event to report it: `ftgo archive backfill`). Idempotent: a second run finds
    /// nothing missing and writes nothing.
    pub async fn backfill(&self, range: &DateRange) -> Result<Backfill, Error> {
        let check = self.check(range).await?;
        let mut written = Vec::new();
        for object in backfill_objects(&check.missing)? {
            self.archive.put(&object).await?;
            written.push(WrittenObject {
                key: object.key.clone(),
                events: object.events.len(),
            });
        }
        Ok(Backfill { check, written })
    }

    /// Backfills the days the batch of `record` can hold ([`OnFailureRecord::covering_range`])
    /// to the end, in bounded memory.
    pub async fn repair(&self, record: &OnFailureRecord) -> Result<Swept, Error> {
        self.sweep(
            &record.covering_range(),
            SweepMode::Repair,
            ScanProgress::start(),
            || false,
        )
        .await
    }

    /// Compares the events of `range` in the event table with the archive, from `progress` on,
    /// in bounded memory: the archive's ids of those days only (their `date=` prefixes), and
    /// the event table read as [`SCAN_SEGMENTS`] parallel `Scan` segments, page by page,
    /// filtered on the server to the days concerned ([`scan_filter`]). In [`SweepMode::Repair`]
    /// the missing events are written back every [`FLUSH_EVENTS`] events, so memory never
    /// holds more. Before each page but a segment's first `stop()` is asked (so every sweep makes
    /// progress); when it says so, the sweep ends after the pages in flight and its
    /// [`Swept::left`] names where to go on.
    pub async fn sweep(
        &self,
        range: &DateRange,
        mode: SweepMode,
        progress: ScanProgress,
        stop: impl Fn() -> bool + Sync,
    ) -> Result<Swept, Error> {
        let archived = self.archive.archived_event_ids(range).await?;
        let total = progress.total_segments;
        let segments = progress.segments.into_iter().map(|position| {
            let (archived, stop) = (&archived, &stop);
            async move {
                self.sweep_segment(range, mode, archived, total, position, stop)
                    .await
            }
        });
        let results: Vec<Result<(Swept, Option<SegmentPosition>), Error>> =
            futures::stream::iter(segments)
                .buffer_unordered(SEGMENT_CONCURRENCY)
                .collect()
                .await;
        let mut swept = Swept {
            archived: archived.len(),
            ..Swept::default()
        };
        let mut left = Vec::new();
        for result in results {
            let (part, position) = result?;
            swept.merge(part);
            left.extend(position);
        }
        left.sort_by_key(|position| position.segment);
        swept.left = (!left.is_empty()).then_some(ScanProgress {
            total_segments: total,
            segments: left,
        });
        Ok(swept)
    }

    /// One segment of [`Self::sweep`]; answers what it did and, when stopped early, where
    /// it stopped.
    async fn sweep_segment(
        &self,
        range: &DateRange,
        mode: SweepMode,
        archived: &BTreeSet<(String, u64)>,
        total_segments: i32,
        position: SegmentPosition,
        stop: &(impl Fn() -> bool + Sync),
    ) -> Result<(Swept, Option<SegmentPosition>), Error> {
        let filter = scan_filter(range);
        let mut comparison = Comparison::new(*range, archived);
        let mut start_key = position.start_key.clone().map(HashMap::from);
        let mut swept = Swept::default();
        // Every invocation reads at least one page of its segment before it may stop: a sweep
        // that could stop before any page would hand the same continuation on for ever (as on
        // a runtime whose deadline is already inside the margin when the invocation starts).
        let mut first_page = true;
        loop {
            if !std::mem::take(&mut first_page) && stop() {
                swept.merge(self.flush(&mut comparison, mode).await?);
                let position = SegmentPosition {
                    segment: position.segment,
                    start_key: start_key.map(serde_dynamo::Item::from),
                };
                return Ok((swept, Some(position)));
            }
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.events_table)
                .consistent_read(true)
                .segment(position.segment)
                .total_segments(total_segments)
                .set_limit(self.page_limit)
                .set_exclusive_start_key(start_key.take())
                .set_filter_expression(filter.as_ref().map(|f| f.expression.clone()))
                .set_expression_attribute_names(filter.as_ref().map(|f| f.names.clone()))
                .set_expression_attribute_values(filter.as_ref().map(|f| f.values.clone()))
                .send()
                .await
                .map_err(|e| Error::sdk("Scan event table (backfill)", e))?;
            for item in page.items.unwrap_or_default() {
                comparison.examine(item);
                if comparison.missing.len() >= FLUSH_EVENTS {
                    swept.merge(self.flush(&mut comparison, mode).await?);
                }
            }
            start_key = page.last_evaluated_key;
            if start_key.is_none() {
                swept.merge(self.flush(&mut comparison, mode).await?);
                return Ok((swept, None));
            }
        }
    }

    /// Takes what `comparison` has counted and found missing: written back (a repair) or kept
    /// (a check).
    async fn flush(
        &self,
        comparison: &mut Comparison<'_>,
        mode: SweepMode,
    ) -> Result<Swept, Error> {
        let mut swept = comparison.take();
        if mode == SweepMode::Repair {
            for object in backfill_objects(&swept.missing)? {
                self.archive.put(&object).await?;
                swept.written.push(WrittenObject {
                    key: object.key.clone(),
                    events: object.events.len(),
                });
            }
            swept.backfilled = swept.missing.len();
            swept.missing.clear();
        }
        Ok(swept)
    }
}

/// How many parallel `Scan` segments a sweep reads the event table in.
pub const SCAN_SEGMENTS: i32 = 8;

/// How many segments one sweep reads at once.
pub const SEGMENT_CONCURRENCY: usize = 4;

/// How many missing events a repair holds before writing them back.
pub const FLUSH_EVENTS: usize = 1_000;

/// Whether a sweep only reports what is missing or writes it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepMode {
    /// Keep the missing events (to report them).
    Check,
    /// Write them back as they are found, holding at most [`FLUSH_EVENTS`].
    Repair,
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Swept {
    /// Events of the archive's days concerned.
    pub archived: usize,
    /// Event table items read (after the server's filter).
    pub examined: usize,
    /// Events of a day in the range.
    pub in_range: usize,
    /// Items of the event table that are not events (named in the log, left out).
    pub undecodable: usize,
    /// Missing events kept (a check).
    pub missing: Vec<StoredEvent>,
    /// Missing events written back (a repair).
    pub backfilled: usize,
    /// The objects written.
    pub written: Vec<WrittenObject>,
    /// Where the sweep stopped early (`None`: it read to the end).
    pub left: Option<ScanProgress>,
}

impl Swept {
    fn merge(&mut self, other: Swept) {
        self.archived = self.archived.max(other.archived);
        self.examined += other.examined;
        self.in_range += other.in_range;
        self.undecodable += other.undecodable;
        self.missing.extend(other.missing);
        self.backfilled += other.backfilled;
        self.written.extend(other.written);
    }
}

/// Where a sweep of the event table stands: the segments still to read, each from its key.
/// Carried in a continuation message ([`crate::lambda::archive_backfiller`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanProgress {
    /// The `Scan`'s `TotalSegments`.
    pub total_segments: i32,
    /// The segments not read to the end.
    pub segments: Vec<SegmentPosition>,
}

impl ScanProgress {
    /// Every segment from its beginning.
    pub fn start() -> Self {
        Self {
            total_segments: SCAN_SEGMENTS,
            segments: (0..SCAN_SEGMENTS)
                .map(|segment| SegmentPosition {
                    segment,
                    start_key: None,
                })
                .collect(),
        }
    }
}

/// One segment of a [`ScanProgress`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentPosition {
    /// The segment.
    pub segment: i32,
    /// Its `ExclusiveStartKey` (DynamoDB JSON), `None` from the beginning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_key: Option<serde_dynamo::Item>,
}

/// The comparison of event table items with the archive's ids, item by item: the pure part
/// of a sweep (benchmarked in `benches/archive_backfill.rs`).
#[derive(Debug)]
pub struct Comparison<'a> {
    range: DateRange,
    archived: &'a BTreeSet<(String, u64)>,
    swept: Swept,
    /// The missing events found since the last [`Self::take`].
    pub missing: Vec<StoredEvent>,
}

impl<'a> Comparison<'a> {
    /// A comparison of the days of `range` with `archived`.
    pub fn new(range: DateRange, archived: &'a BTreeSet<(String, u64)>) -> Self {
        Self {
            range,
            archived,
            swept: Swept::default(),
            missing: Vec::new(),
        }
    }

    /// Looks at one event table item: counted; kept when it is an event of the range that the
    /// archive misses. An item that is not an event is named in the log and left out.
    pub fn examine(&mut self, item: HashMap<String, AttributeValue>) {
        self.swept.examined += 1;
        let key_of = |name: &str| match item.get(name) {
            Some(AttributeValue::S(text) | AttributeValue::N(text)) => text.clone(),
            _ => "?".to_owned(),
        };
        let key = (key_of(STREAM_ID), key_of(VERSION));
        match serde_dynamo::from_item::<_, StoredEvent>(item) {
            Ok(event) if self.range.contains_event(&event) => {
                self.swept.in_range += 1;
                if !self
                    .archived
                    .contains(&(event.stream_id.clone(), event.version))
                {
                    self.missing.push(event);
                }
            }
            Ok(_) => {}
            Err(error) => {
                self.swept.undecodable += 1;
                tracing::warn!(streamId = %key.0, version = %key.1, %error, "an undecodable item of the event table is left out");
            }
        }
    }

    /// What was counted and found since the last call (the counts start again).
    pub fn take(&mut self) -> Swept {
        let mut swept = std::mem::take(&mut self.swept);
        swept.missing = std::mem::take(&mut self.missing);
        swept
    }
}

/// The server-side filter that narrows a `Scan` of the event table to the days of `range`
/// (`None` for every day): `occurredAt` between the day before `from` and the day after `to`,
/// compared as RFC 3339 text (a day early and late, so an offset other than `Z` is never cut
/// off; [`Comparison`] then keeps exactly the range's days). The event table's keys
/// (`streamId`, `version`) hold no time, so no `Query` can bound the read by day; the filter
/// cuts what is sent and held, the `Scan` still reads (and is billed for) every item.
pub fn scan_filter(range: &DateRange) -> Option<crate::view_snapshot::Condition> {
    let text = |day: time::Date| day.to_string();
    let low = range
        .from
        .map(|day| text(day.previous_day().unwrap_or(day)));
    let high = range
        .to
        .map(|day| text(day.next_day().and_then(|d| d.next_day()).unwrap_or(day)));
    let mut condition = crate::view_snapshot::Condition::default();
    condition
        .names
        .insert("#at".to_owned(), OCCURRED_AT.to_owned());
    let mut clauses = Vec::new();
    if let Some(low) = low {
        clauses.push("#at >= :low");
        condition
            .values
            .insert(":low".to_owned(), AttributeValue::S(low));
    }
    if let Some(high) = high {
        clauses.push("#at < :high");
        condition
            .values
            .insert(":high".to_owned(), AttributeValue::S(high));
    }
    if clauses.is_empty() {
        return None;
    }
    condition.expression = clauses.join(" AND ");
    Some(condition)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::on_failure::tests::ON_FAILURE;

    fn range(from: &str, to: &str) -> DateRange {
        DateRange::parse(Some(from), Some(to)).unwrap()
    }

    #[test]
    fn a_dead_letter_is_covered_by_the_days_it_spans() {
        let record = OnFailureRecord::parse(ON_FAILURE).unwrap();
        // The day before the first arrival is included: an event occurs before it arrives.
        assert_eq!(record.covering_range(), range("2026-11-01", "2026-11-02"));
        assert!(record.covered_by(&DateRange::default()));
        assert!(record.covered_by(&range("2026-11-01", "2026-11-02")));
        assert!(record.covered_by(&range("2026-10-01", "2026-12-02")));
        assert!(!record.covered_by(&range("2026-11-02", "2026-11-02")));
        assert!(!record.covered_by(&range("2026-11-01", "2026-11-01")));
    }
}
