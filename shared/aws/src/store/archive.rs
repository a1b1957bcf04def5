//! The event archive on S3 (DESIGN §4): its format, its key layout, and the S3 adapter.
//!
//! # Format
//!
//! Every event is archived as one line of gzip-compressed NDJSON: the event table's JSON form of
//! the event, i.e. `serde_json` of [`StoredEvent`] (camelCase attribute names, `occurredAt` in
//! RFC 3339, the payload exactly as stored, with its `schemaVersion`). Nothing is upcast on the
//! way in; readers upcast when they decode the payload ([`StoredEvent::decode`]).
//!
//! # Keys
//!
//! ```text
//! events/v1/bucket=<fnv1a64(streamId) mod 16>/date=<YYYY-MM-DD>/<shard>/<first>-<last>.ndjson.gz
//! ```
//!
//! * `bucket` ([`partition_of`]): FNV-1a 64 of the UTF-8 bytes of `streamId`
//!   (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`), modulo [`PARTITIONS`]. All
//!   events of one stream land in one partition, so replaying a partition replays whole streams;
//!   partitions are the unit of replay work ([`crate::replay`]). The hash is written down here
//!   and pinned by a test: changing it, or [`PARTITIONS`], needs a new format version (`v2`).
//! * `date`: the UTC date of the event's `occurredAt` (never the time it was archived).
//! * `shard`: the stream shard the batch came from, sanitised ([`sanitise_segment`]).
//! * `first`, `last`: the lowest and highest stream sequence numbers of the records in the
//!   object. So keys are deterministic: a retried batch rewrites the same object with the same
//!   bytes (the gzip header carries no time stamp). A retry that brings a different batch
//!   (Lambda retries from the failed record on) writes other objects that repeat some events;
//!   readers drop repeats by `(streamId, version)`.
//!
//! Records that cannot be read as events are kept too, one JSON object each, under
//! `events/v1/undecodable/<shard>/<sequence>.json` ([`undecodable_key`]), outside every
//! partition.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use ftgo_domain::event::StoredEvent;
use time::UtcOffset;
use time::macros::format_description;

use crate::error::Error;
#[cfg(feature = "s3")]
use aws_sdk_s3::Client;
#[cfg(feature = "s3")]
use aws_sdk_s3::primitives::ByteStream;
#[cfg(feature = "s3")]
use futures::StreamExt;

/// The prefix of every object of this archive format version.
pub const FORMAT_PREFIX: &str = "events/v1/";

/// The prefix of the objects that keep undecodable stream records.
pub const UNDECODABLE_PREFIX: &str = "events/v1/undecodable/";

/// How many partitions (`bucket=0` … `bucket=15`) the archive spreads streams over.
pub const PARTITIONS: u64 = 16;

/// The suffix of an archive object.
pub const OBJECT_SUFFIX: &str = ".ndjson.gz";

/// The longest range of days whose archive prefixes are listed one by one (a longer or open
/// range lists whole partitions).
pub const MAX_LISTED_DAYS: usize = 62;

/// How many archive objects are read at once.
pub const READ_CONCURRENCY: usize = 8;

/// FNV-1a 64 of `bytes`: the archive's stable stream hash (not Rust's randomised hasher).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

/// The partition (`bucket=N`) of stream `stream_id`.
pub fn partition_of(stream_id: &str) -> u64 {
    fnv1a64(stream_id.as_bytes()) % PARTITIONS
}

/// The key prefix of partition `partition`: `events/v1/bucket=<partition>/`.
pub fn partition_prefix(partition: u64) -> String {
    format!("{FORMAT_PREFIX}bucket={partition}/")
}

/// The partition named by a partition prefix (`events/v1/bucket=3/` → 3), if it is one.
pub fn parse_partition_prefix(prefix: &str) -> Option<u64> {
    let number = prefix
        .strip_prefix(FORMAT_PREFIX)?
        .strip_prefix("bucket=")?
        .strip_suffix('/')?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number
        .parse()
        .ok()
        .filter(|partition| *partition < PARTITIONS)
}

/// Makes `text` safe as one key segment: ASCII letters, digits, `.`, `_` and `-` stay, anything
/// else (`/`, `:`, `=`, spaces, non-ASCII) becomes `_`; an empty or dot-only result is
/// prefixed with `_` so that a segment is never empty, `.` or `..`.
pub fn sanitise_segment(text: &str) -> String {
    let mut segment: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if segment.chars().all(|c| c == '.') {
        segment.insert(0, '_');
    }
    segment
}

/// Orders stream sequence numbers: numerically when both are decimal digit strings (DynamoDB's
/// are, and of varying length), as text otherwise.
pub fn compare_sequence_numbers(a: &str, b: &str) -> Ordering {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if digits(a) && digits(b) {
        let a = a.trim_start_matches('0');
        let b = b.trim_start_matches('0');
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    } else {
        a.cmp(b)
    }
}

/// The UTC date of `event` as `YYYY-MM-DD`.
pub fn event_date(event: &StoredEvent) -> Result<String, Error> {
    event
        .occurred_at
        .to_offset(UtcOffset::UTC)
        .date()
        .format(format_description!("[year]-[month]-[day]"))
        .map_err(|e| Error::Codec(format!("occurredAt of {}: {e}", event.stream_id)))
}

/// An inclusive range of UTC days; either end may be open: the `--from`/`--to` of the archive
/// commands, matched against an event's `occurredAt` and an object's `date=` key segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct DateRange {
    /// The first day included.
    pub from: Option<time::Date>,
    /// The last day included.
    pub to: Option<time::Date>,
}

impl DateRange {
    /// Reads `--from`/`--to` values (`YYYY-MM-DD`); a `from` after `to` is refused.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, Error> {
        let day = |text: &str| {
            time::Date::parse(text, format_description!("[year]-[month]-[day]"))
                .map_err(|e| Error::Codec(format!("{text:?} is not a day (YYYY-MM-DD): {e}")))
        };
        let range = Self {
            from: from.map(day).transpose()?,
            to: to.map(day).transpose()?,
        };
        if let (Some(from), Some(to)) = (range.from, range.to)
            && from > to
        {
            return Err(Error::Codec(format!("--from {from} is after --to {to}")));
        }
        Ok(range)
    }

    /// Whether day `date` (`YYYY-MM-DD`) is in the range (a malformed day is not).
    pub fn contains_day(&self, date: &str) -> bool {
        let Ok(day) = time::Date::parse(date, format_description!("[year]-[month]-[day]")) else {
            return false;
        };
        self.contains_date(day)
    }

    /// Whether `day` is in the range.
    pub fn contains_date(&self, day: time::Date) -> bool {
        self.from.is_none_or(|from| day >= from) && self.to.is_none_or(|to| day <= to)
    }

    /// Every day of the range, in order (`None` when an end is open).
    pub fn days(&self) -> Option<Vec<time::Date>> {
        let (mut day, to) = (self.from?, self.to?);
        let mut days = vec![day];
        while day < to {
            day = day.next_day()?;
            days.push(day);
        }
        Some(days)
    }

    /// Whether the range is open at both ends (every day).
    pub fn is_all(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }

    /// Whether `event` occurred on a day in the range.
    pub fn contains_event(&self, event: &StoredEvent) -> bool {
        self.contains_date(event.occurred_at.to_offset(UtcOffset::UTC).date())
    }

    /// Whether archive object `key` holds events of a day in the range (by its `date=`
    /// segment; a key without one is not in any range).
    pub fn contains_key(&self, key: &str) -> bool {
        key.split('/')
            .find_map(|segment| segment.strip_prefix("date="))
            .is_some_and(|date| self.contains_day(date))
    }
}

/// The key of the object holding `undecodable` record `sequence` of `shard`.
pub fn undecodable_key(shard: &str, sequence: &str) -> String {
    format!(
        "{UNDECODABLE_PREFIX}{}/{}.json",
        sanitise_segment(shard),
        sanitise_segment(sequence)
    )
}

/// One decoded stream record on its way to the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveRecord {
    /// The stream record's sequence number.
    pub sequence_number: String,
    /// The event it carries.
    pub event: StoredEvent,
}

/// One archive object to write: its key, the sequence range it covers, its events in the order
/// the stream delivered them.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveObject {
    /// The object's key.
    pub key: String,
    /// The partition (`bucket=N`) its events belong to.
    pub partition: u64,
    /// The lowest sequence number of its records.
    pub first_sequence: String,
    /// The highest sequence number of its records.
    pub last_sequence: String,
    /// Its events.
    pub events: Vec<StoredEvent>,
}

impl ArchiveObject {
    /// The object's content: gzip NDJSON ([`encode`]).
    pub fn body(&self) -> Result<Vec<u8>, Error> {
        encode(&self.events)
    }
}

/// Groups the records of one batch from `shard` into archive objects, one per
/// (partition, date), keyed as the module documentation says. Records keep their batch order
/// within an object; objects come out sorted by key. The same records always give the same
/// objects.
pub fn plan_objects(shard: &str, records: &[ArchiveRecord]) -> Result<Vec<ArchiveObject>, Error> {
    let shard = sanitise_segment(shard);
    let mut groups: BTreeMap<(u64, String), Vec<&ArchiveRecord>> = BTreeMap::new();
    for record in records {
        let partition = partition_of(&record.event.stream_id);
        let date = event_date(&record.event)?;
        groups.entry((partition, date)).or_default().push(record);
    }
    let mut objects = Vec::with_capacity(groups.len());
    for ((partition, date), group) in groups {
        let mut first = group[0].sequence_number.as_str();
        let mut last = first;
        for record in &group[1..] {
            let sequence = record.sequence_number.as_str();
            if compare_sequence_numbers(sequence, first) == Ordering::Less {
                first = sequence;
            }
            if compare_sequence_numbers(sequence, last) == Ordering::Greater {
                last = sequence;
            }
        }
        objects.push(ArchiveObject {
            key: format!(
                "{}date={date}/{shard}/{}-{}{OBJECT_SUFFIX}",
                partition_prefix(partition),
                sanitise_segment(first),
                sanitise_segment(last)
            ),
            partition,
            first_sequence: first.to_owned(),
            last_sequence: last.to_owned(),
            events: group.iter().map(|record| record.event.clone()).collect(),
        });
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

/// Encodes `events` as gzip NDJSON: one `serde_json` line per event, each ending in `\n`.
/// Deterministic: the same events always give the same bytes.
pub fn encode(events: &[StoredEvent]) -> Result<Vec<u8>, Error> {
    let codec = |e: std::io::Error| Error::Codec(format!("gzip: {e}"));
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    for event in events {
        serde_json::to_writer(&mut encoder, event)
            .map_err(|e| Error::Codec(format!("{} v{}: {e}", event.stream_id, event.version)))?;
        encoder.write_all(b"\n").map_err(codec)?;
    }
    encoder.finish().map_err(codec)
}

/// Decodes an archive object's content back into its events (blank lines are ignored). The
/// payloads are returned as stored; [`StoredEvent::decode`] upcasts them.
pub fn decode(bytes: &[u8]) -> Result<Vec<StoredEvent>, Error> {
    let reader = BufReader::new(MultiGzDecoder::new(bytes));
    let mut events = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line =
            line.map_err(|e| Error::Codec(format!("gzip NDJSON line {}: {e}", index + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(&line)
            .map_err(|e| Error::Codec(format!("NDJSON line {}: {e}", index + 1)))?;
        events.push(event);
    }
    Ok(events)
}

/// Sorts events by `(streamId, version)` and drops repeats of the same `(streamId, version)`
/// (a retried batch may have archived an event twice).
pub fn sort_and_dedup(events: &mut Vec<StoredEvent>) {
    events.sort_by(|a, b| (&a.stream_id, a.version).cmp(&(&b.stream_id, b.version)));
    events.dedup_by(|a, b| a.stream_id == b.stream_id && a.version == b.version);
}

/// An S3 client for `sdk`: path-style addressing when a custom endpoint is set (an emulator,
/// `AWS_ENDPOINT_URL`), virtual-hosted style on AWS.
#[cfg(feature = "s3")]
pub fn s3_client(sdk: &aws_config::SdkConfig) -> Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    Client::from_conf(config)
}

/// The archive bucket on S3 (cargo feature `s3`).
#[cfg(feature = "s3")]
#[derive(Debug, Clone)]
pub struct Archive {
    client: Client,
    bucket: String,
}

#[cfg(feature = "s3")]
impl Archive {
    /// The archive in bucket `bucket`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The S3 client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Writes `object` (PutObject; rewriting an existing key replaces it with the same bytes).
    pub async fn put(&self, object: &ArchiveObject) -> Result<(), Error> {
        let body = object.body()?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&object.key)
            .content_type("application/gzip")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| Error::sdk("PutObject archive", e))?;
        Ok(())
    }

    /// Writes a JSON document at `key` (used for undecodable records).
    pub async fn put_json(&self, key: &str, body: Vec<u8>) -> Result<(), Error> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| Error::sdk("PutObject archive (undecodable)", e))?;
        Ok(())
    }

    /// Every key under `prefix`, in S3's (lexicographic) order, through every page.
    pub async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let pages = self.list_pages(prefix, None).await?;
        Ok(pages
            .iter()
            .flat_map(|page| page.contents())
            .filter_map(|object| object.key().map(str::to_owned))
            .collect())
    }

    /// The partition prefixes (`events/v1/bucket=N/`) that hold at least one object, in order.
    pub async fn list_partitions(&self) -> Result<Vec<String>, Error> {
        let pages = self.list_pages(FORMAT_PREFIX, Some("/")).await?;
        let mut partitions: Vec<_> = pages
            .iter()
            .flat_map(|page| page.common_prefixes())
            .filter_map(|prefix| prefix.prefix().and_then(parse_partition_prefix))
            .collect();
        partitions.sort_unstable();
        partitions.dedup();
        Ok(partitions.into_iter().map(partition_prefix).collect())
    }

    /// Every page of a listing under `prefix` (grouped at `delimiter`, when given), through
    /// the SDK's paginator.
    async fn list_pages(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<Vec<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output>, Error> {
        self.client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_delimiter(delimiter.map(str::to_owned))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| Error::sdk("ListObjectsV2 archive", e))
    }

    /// The raw bytes of object `key`.
    pub async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, Error> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Error::sdk("GetObject archive", e))?;
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| Error::aws("GetObject archive (body)", e))?;
        Ok(bytes.into_bytes().to_vec())
    }

    /// The raw bytes of object `key`, or `None` when there is no such object.
    pub async fn get_optional(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(Error::sdk("GetObject archive", e)),
        };
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| Error::aws("GetObject archive (body)", e))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    /// Deletes object `key` (absent already is fine).
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Error::sdk("DeleteObject archive", e))?;
        Ok(())
    }

    /// Every `(streamId, version)` archived in the objects of a day in `range` (all
    /// partitions). A range of at most [`MAX_LISTED_DAYS`] days lists only its own
    /// `bucket=<N>/date=<day>/` prefixes, never the rest of the archive; objects are read
    /// [`READ_CONCURRENCY`] at a time, each dropped once its ids are taken.
    pub async fn archived_event_ids(
        &self,
        range: &DateRange,
    ) -> Result<std::collections::BTreeSet<(String, u64)>, Error> {
        let prefixes = match range.days() {
            Some(days) if days.len() <= MAX_LISTED_DAYS => (0..PARTITIONS)
                .flat_map(|partition| {
                    days.iter()
                        .map(move |day| format!("{}date={day}/", partition_prefix(partition)))
                })
                .collect(),
            _ => self.list_partitions().await?,
        };
        let mut keys = Vec::new();
        for prefix in prefixes {
            keys.extend(
                self.list_keys(&prefix)
                    .await?
                    .into_iter()
                    .filter(|key| key.ends_with(OBJECT_SUFFIX) && range.contains_key(key)),
            );
        }
        let mut reads = futures::stream::iter(keys)
            .map(|key| async move { self.read(&key).await })
            .buffer_unordered(READ_CONCURRENCY);
        let mut ids = std::collections::BTreeSet::new();
        while let Some(events) = reads.next().await {
            ids.extend(events?.into_iter().map(|e| (e.stream_id, e.version)));
        }
        Ok(ids)
    }

    /// The events of archive object `key`.
    pub async fn read(&self, key: &str) -> Result<Vec<StoredEvent>, Error> {
        let bytes = self.get_bytes(key).await?;
        decode(&bytes).map_err(|e| Error::Codec(format!("s3://{}/{key}: {e}", self.bucket)))
    }

    /// Every event archived under `prefix` (objects ending in `.ndjson.gz`), sorted by
    /// `(streamId, version)` with repeats dropped. Holds the whole prefix in memory: one
    /// partition of a very large archive should be split further (by `date=`) by the caller.
    pub async fn read_prefix(&self, prefix: &str) -> Result<Vec<StoredEvent>, Error> {
        let mut events = Vec::new();
        for key in self.list_keys(prefix).await? {
            if !key.ends_with(OBJECT_SUFFIX) {
                continue;
            }
            events.extend(self.read(&key).await?);
        }
        sort_and_dedup(&mut events);
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftgo_domain::event::Metadata;
    use serde_json::json;
    use time::macros::datetime;

    fn event(stream_id: &str, version: u64, occurred_at: time::OffsetDateTime) -> StoredEvent {
        let (kind, id) = stream_id.split_once('#').unwrap();
        StoredEvent {
            stream_id: stream_id.into(),
            version,
            event_id: format!("e-{stream_id}-{version}"),
            event_type: "OrderApproved".into(),
            schema_version: 1,
            aggregate_type: kind.into(),
            aggregate_id: id.into(),
            occurred_at,
            payload: json!({}),
            metadata: Metadata {
                correlation_id: "req-1".into(),
                causation_id: None,
                idempotency: None,
            },
        }
    }

    fn record(sequence: &str, event: StoredEvent) -> ArchiveRecord {
        ArchiveRecord {
            sequence_number: sequence.into(),
            event,
        }
    }

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn partition_of_a_stream_is_pinned() {
        // Pinned: changing the hash or PARTITIONS moves archived streams (needs events/v2).
        assert_eq!(fnv1a64(b"Order#o-1"), 0x9f88_338c_9c29_b827);
        let pinned: Vec<u64> = ["Order#o-1", "Delivery#o-1", "Order#o-2"]
            .iter()
            .map(|s| partition_of(s))
            .collect();
        assert_eq!(pinned, vec![7, 13, 10]);
        assert!((0..1000).all(|i| partition_of(&format!("Order#{i}")) < PARTITIONS));
    }

    #[test]
    fn partition_prefixes_round_trip_and_reject_strangers() {
        assert_eq!(partition_prefix(3), "events/v1/bucket=3/");
        assert_eq!(parse_partition_prefix("events/v1/bucket=3/"), Some(3));
        assert_eq!(parse_partition_prefix("events/v1/bucket=16/"), None);
        assert_eq!(parse_partition_prefix("events/v1/bucket=/"), None);
        assert_eq!(parse_partition_prefix("events/v1/bucket=+3/"), None);
        assert_eq!(parse_partition_prefix("events/v1/undecodable/"), None);
        assert_eq!(parse_partition_prefix("events/v2/bucket=3/"), None);
    }

    #[test]
    fn segments_are_sanitised() {
        assert_eq!(
            sanitise_segment("shardId-00000001700000000000-abcd"),
            "shardId-00000001700000000000-abcd"
        );
        assert_eq!(
            sanitise_segment("stream/2024-01-01T00:00:00.000"),
            "stream_2024-01-01T00_00_00.000"
        );
        assert_eq!(sanitise_segment(""), "_");
        assert_eq!(sanitise_segment(".."), "_..");
        assert_eq!(sanitise_segment("a=b é"), "a_b__");
    }

    #[test]
    fn sequence_numbers_compare_numerically() {
        assert_eq!(compare_sequence_numbers("9", "10"), Ordering::Less);
        assert_eq!(
            compare_sequence_numbers("4421584500000000017450439091", "999"),
            Ordering::Greater
        );
        assert_eq!(compare_sequence_numbers("0010", "10"), Ordering::Equal);
        assert_eq!(compare_sequence_numbers("b", "a"), Ordering::Greater);
    }

    #[test]
    fn keys_name_partition_utc_date_shard_and_sequence_range() {
        // 23:30 at UTC-02:00 is 01:30 the next day in UTC: the key uses the UTC date.
        let late = datetime!(2024-03-09 23:30 -02:00);
        let noon = datetime!(2024-03-10 12:00 UTC);
        let records = vec![
            record("100", event("Order#o-1", 1, late)),
            record("99", event("Order#o-1", 2, noon)),
            record("1000", event("Order#o-1", 3, noon)),
            record("101", event("Delivery#o-1", 1, noon)),
        ];
        let objects = plan_objects("shardId-0001", &records).unwrap();
        let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "events/v1/bucket=13/date=2024-03-10/shardId-0001/101-101.ndjson.gz",
                "events/v1/bucket=7/date=2024-03-10/shardId-0001/99-1000.ndjson.gz",
            ]
        );
        let order = &objects[1];
        assert_eq!(order.partition, 7);
        assert_eq!(
            (order.first_sequence.as_str(), order.last_sequence.as_str()),
            ("99", "1000")
        );
        let versions: Vec<u64> = order.events.iter().map(|e| e.version).collect();
        assert_eq!(versions, vec![1, 2, 3], "batch order is kept");
    }

    #[test]
    fn events_of_different_dates_go_to_different_objects() {
        let records = vec![
            record("1", event("Order#o-1", 1, datetime!(2024-03-09 10:00 UTC))),
            record("2", event("Order#o-1", 2, datetime!(2024-03-10 10:00 UTC))),
        ];
        let objects = plan_objects("s", &records).unwrap();
        assert_eq!(objects.len(), 2);
        assert!(objects[0].key.contains("date=2024-03-09/s/1-1."));
        assert!(objects[1].key.contains("date=2024-03-10/s/2-2."));
    }

    #[test]
    fn the_same_batch_gives_the_same_keys_and_bytes() {
        let records = vec![
            record("7", event("Order#o-2", 1, datetime!(2024-03-10 10:00 UTC))),
            record("8", event("Order#o-2", 2, datetime!(2024-03-10 10:01 UTC))),
        ];
        let first = plan_objects("s", &records).unwrap();
        let second = plan_objects("s", &records).unwrap();
        assert_eq!(first, second);
        assert_eq!(first[0].body().unwrap(), second[0].body().unwrap());
    }

    #[test]
    fn encode_then_decode_round_trips_as_the_event_tables_json() {
        let mut created = event("Order#o-1", 1, datetime!(2024-03-10 10:00:00.123 UTC));
        created.event_type = "OrderCreated".into();
        created.schema_version = 1;
        created.payload = json!({"consumerId": "c-1", "restaurantName": "Ajanta\nLine"});
        let events = vec![
            created,
            event("Order#o-1", 2, datetime!(2024-03-10 10:00 UTC)),
        ];
        let bytes = encode(&events).unwrap();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip magic");
        assert_eq!(decode(&bytes).unwrap(), events);

        let mut text = String::new();
        std::io::Read::read_to_string(&mut MultiGzDecoder::new(&bytes[..]), &mut text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(text.ends_with('\n'));
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["streamId"], "Order#o-1");
        assert_eq!(first["schemaVersion"], 1);
        assert_eq!(first["occurredAt"], "2024-03-10T10:00:00.123Z");
        assert_eq!(first["metadata"]["correlationId"], "req-1");
    }

    #[test]
    fn decode_names_the_bad_line() {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(b"\n{\"nope\":1}\n").unwrap();
        let bytes = encoder.finish().unwrap();
        let error = decode(&bytes).unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
        assert!(decode(b"not gzip").is_err());
    }

    #[test]
    fn sort_and_dedup_keeps_one_copy_per_stream_version() {
        let at = datetime!(2024-03-10 10:00 UTC);
        let mut events = vec![
            event("Order#b", 2, at),
            event("Order#a", 1, at),
            event("Order#b", 1, at),
            event("Order#b", 2, at),
        ];
        sort_and_dedup(&mut events);
        let ids: Vec<(String, u64)> = events
            .iter()
            .map(|e| (e.stream_id.clone(), e.version))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("Order#a".into(), 1),
                ("Order#b".into(), 1),
                ("Order#b".into(), 2)
            ]
        );
    }

    #[test]
    fn date_ranges_are_inclusive_days_of_events_and_keys() {
        let range = DateRange::parse(Some("2026-11-01"), Some("2026-11-02")).unwrap();
        assert!(range.contains_day("2026-11-01"));
        assert!(range.contains_day("2026-11-02"));
        assert!(!range.contains_day("2026-11-03"));
        assert!(!range.contains_day("2026-10-31"));
        assert!(range.contains_key("events/v1/bucket=3/date=2026-11-02/s/1-2.ndjson.gz"));
        assert!(!range.contains_key("events/v1/bucket=3/date=2026-11-03/s/1-2.ndjson.gz"));
        assert!(!range.contains_key("events/v1/undecodable/s/1.json"));
        assert!(DateRange::default().contains_day("1999-01-01"));
        assert!(DateRange::parse(Some("2026-11-02"), Some("2026-11-01")).is_err());
        assert!(DateRange::parse(Some("yesterday"), None).is_err());
    }

    #[test]
    fn undecodable_keys_are_outside_every_partition() {
        let key = undecodable_key("shard/1", "42");
        assert_eq!(key, "events/v1/undecodable/shard_1/42.json");
        assert!(parse_partition_prefix("events/v1/undecodable/").is_none());
    }
}
