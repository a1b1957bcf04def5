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

use ftgo_domain::event::StoredEvent;

use crate::config::Config;
use crate::error::Error;
use crate::on_failure::OnFailureRecord;
use crate::store::archive::{Archive, DateRange};
use crate::verify::{backfill_objects, missing_from_archive, scan_events};

/// What the archive needs of an on-failure record: the days its batch spans.
impl OnFailureRecord {
    /// The days (UTC) whose events the skipped batch can hold: from the day before its first
    /// record arrived (an event occurs before it reaches the stream, possibly before midnight)
    /// to the day its last record arrived.
    pub fn covering_range(&self) -> DateRange {
        let first = self
            .batch
            .approximate_arrival_of_first_record
            .to_offset(time::UtcOffset::UTC)
            .date();
        let last = self
            .batch
            .approximate_arrival_of_last_record
            .to_offset(time::UtcOffset::UTC)
            .date();
        DateRange {
            from: Some(first.previous_day().unwrap_or(first)),
            to: Some(last),
        }
    }

    /// Whether a check of `range` covered every day of this batch ([`Self::covering_range`]).
    pub fn covered_by(&self, range: &DateRange) -> bool {
        let covering = self.covering_range();
        let inside = |day: Option<time::Date>| day.is_some_and(|d| range.contains_date(d));
        inside(covering.from) && inside(covering.to)
    }
}

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
        }
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

    /// The events of the days of `range` that the event table holds and the archive does not
    /// (a consistent scan of the event table; every archive object of those days is read).
    pub async fn check(&self, range: &DateRange) -> Result<ArchiveCheck, Error> {
        let events = scan_events(&self.dynamodb, &self.events_table, range).await?;
        let archived = self.archive.archived_event_ids(range).await?;
        Ok(ArchiveCheck {
            range: *range,
            events: events.len(),
            missing: missing_from_archive(&events, &archived),
        })
    }

    /// Checks `range` and writes the missing events back under deterministic keys. Idempotent:
    /// a second run finds nothing missing and writes nothing.
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

    /// Backfills the days the batch of `record` can hold ([`OnFailureRecord::covering_range`]).
    pub async fn repair(&self, record: &OnFailureRecord) -> Result<Backfill, Error> {
        self.backfill(&record.covering_range()).await
    }
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
