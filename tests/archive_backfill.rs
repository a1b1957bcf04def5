//! The archiver's dead letters repaired without a person, against moto (DynamoDB, S3, SQS) with
//! the real SDK clients: events sit in the event table, the `event-archiver` handler archived
//! them, an archive object goes missing (the batch Lambda skipped), and Lambda's on-failure
//! record of that batch (`events/archive-backfiller/archiver-dead-letters.json`) goes through
//! the `archive-backfiller` handler: the covered days verify complete afterwards, a repeated
//! message changes nothing, a malformed message is reported as a batch item failure while the
//! healthy one in the same batch succeeds, and a failing repair reports its message instead of
//! losing it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::read_side;

use std::collections::{BTreeMap, BTreeSet};

use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use ftgo_aws::archive_backfill::ArchiveBackfill;
use ftgo_aws::config::Config;
use ftgo_aws::lambda::archive_backfiller::Backfiller;
use ftgo_aws::lambda::event_archiver::Archiver;
use ftgo_aws::lambda_runtime::{Context, LambdaEvent};
use ftgo_aws::on_failure::OnFailureRecord;
use ftgo_aws::store::archive::{Archive, DateRange};
use ftgo_domain::AggregateType;
use ftgo_domain::delivery::DeliveryEvent;
use ftgo_domain::event::StoredEvent;
use ftgo_domain::order::OrderEvent;
use ftgo_tests::{Emulator, TestStack, unique_id};
use read_side::{ReadSide, at, order_created, order_history, record_of, stored};

/// An SQS batch from `ftgo-archiver-dlq`: Lambda's on-failure record of an archiver batch whose
/// records arrived on 2026-11-01 between 12:00 and 17:30 (UTC), then a malformed message.
const DEAD_LETTERS: &str = include_str!("../events/archive-backfiller/archiver-dead-letters.json");

/// One fresh stack: the event table (through the read side), the archiver and the backfill as
/// their Lambdas build them.
struct Side {
    stack: TestStack,
    read: ReadSide,
    archiver: Archiver,
    backfill: ArchiveBackfill,
    backfiller: Backfiller,
    archive: Archive,
}

impl Side {
    async fn fresh() -> Self {
        let moto = Emulator::moto().await;
        let stack = moto.fresh_stack().await.expect("fresh stack");
        let read = ReadSide::on(moto, &stack).await;
        let sdk = moto.sdk_config().await;
        let config = |binary: &str| {
            let env = stack.function_env(binary);
            Config::from_lookup(|name| env.get(name).cloned()).expect("configuration")
        };
        let archiver = Archiver::from_config(&sdk, &config("event-archiver")).expect("archiver");
        let backfiller =
            Backfiller::from_config(&sdk, &config("archive-backfiller")).expect("backfiller");
        let backfill = backfiller.backfill.clone();
        let archive = Archive::new(moto.s3().await, stack.bucket_name("EventArchiveBucket"));
        Self {
            stack,
            read,
            archiver,
            backfill,
            backfiller,
            archive,
        }
    }

    /// Pushes `records` through the `event-archiver` handler in batches of `size`.
    async fn archive_in_batches(&self, records: &[EventRecord], size: usize) {
        for chunk in records.chunks(size) {
            let response = ftgo_aws::lambda::event_archiver::handle(
                &self.archiver,
                LambdaEvent::new(read_side::batch(chunk.to_vec()), Context::default()),
            )
            .await
            .expect("the archiver handler never fails an invocation");
            assert!(response.batch_item_failures.is_empty(), "{response:?}");
        }
    }

    /// Pushes `event` through the `archive-backfiller` handler.
    async fn backfiller(&self, event: SqsEvent) -> SqsBatchResponse {
        ftgo_aws::lambda::archive_backfiller::handle(
            &self.backfiller,
            LambdaEvent::new(event, Context::default()),
        )
        .await
        .expect("the backfiller handler reports failures per message")
    }

    /// `(streamId, version)` of every event of `range` the archive misses.
    async fn missing(&self, range: &DateRange) -> BTreeSet<(String, u64)> {
        self.backfill
            .check(range)
            .await
            .expect("check")
            .missing
            .into_iter()
            .map(|e| (e.stream_id, e.version))
            .collect()
    }

    /// Every key of the archive bucket with its bytes.
    async fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        let mut objects = BTreeMap::new();
        for key in self.archive.list_keys("").await.expect("ListObjectsV2") {
            let bytes = self.archive.get_bytes(&key).await.expect("GetObject");
            objects.insert(key, bytes);
        }
        objects
    }

    /// Deletes the first archive object of day `date`; answers the events it held.
    async fn lose_an_object_of(&self, date: &str) -> BTreeSet<(String, u64)> {
        let key = self
            .archive
            .list_keys("events/v1/bucket=")
            .await
            .expect("keys")
            .into_iter()
            .find(|key| key.contains(&format!("/date={date}/")))
            .expect("an object of that day");
        let lost = self
            .archive
            .read(&key)
            .await
            .expect("read")
            .into_iter()
            .map(|e| (e.stream_id, e.version))
            .collect();
        self.archive.delete(&key).await.expect("DeleteObject");
        lost
    }
}

/// Orders created, approved and (some) picked up on 2026-11-01 between 12:00 and 17:00 UTC,
/// and one more order on 2026-11-05.
fn events() -> Vec<StoredEvent> {
    let mut events = Vec::new();
    for i in 0..6i64 {
        let order_id = unique_id("order");
        events.extend(order_history(
            &order_id,
            &order_created("c-1", "Ajanta", &[("Chicken Vindaloo", 1, 1234)]),
            at(i * 50),
            &[OrderEvent::OrderApproved {}],
        ));
        if i % 2 == 0 {
            events.push(stored(
                AggregateType::Delivery,
                &order_id,
                1,
                &DeliveryEvent::DeliveryPickedUp {},
                at(i * 50 + 10),
            ));
        }
    }
    events.extend(order_history(
        &unique_id("order"),
        &order_created("c-2", "Ajanta", &[("Garlic Naan", 2, 350)]),
        at(4 * 24 * 60),
        &[OrderEvent::OrderRejected {}],
    ));
    events
}

fn dead_letters() -> SqsEvent {
    serde_json::from_str(DEAD_LETTERS).expect("the sample is an SQS event")
}

fn day(date: &str) -> DateRange {
    DateRange::parse(Some(date), Some(date)).expect("day")
}

#[tokio::test]
async fn an_archiver_dead_letter_backfills_the_days_it_covers_once_and_a_bad_one_is_reported() {
    let side = Side::fresh().await;
    let events = events();
    side.read.append(&events).await;
    let records: Vec<EventRecord> = events.iter().map(record_of).collect();
    side.archive_in_batches(&records, 3).await;
    let all = DateRange::default();
    assert!(side.missing(&all).await.is_empty(), "the archive is whole");

    // The batch Lambda skipped: an object of 2026-11-01 is not there; and one of 2026-11-05,
    // a day no dead letter of the sample covers.
    let lost = side.lose_an_object_of("2026-11-01").await;
    let lost_elsewhere = side.lose_an_object_of("2026-11-05").await;
    assert!(!lost.is_empty() && !lost_elsewhere.is_empty());
    assert_eq!(side.missing(&day("2026-11-01")).await, lost);

    let sample = dead_letters();
    let record = OnFailureRecord::of_message(&sample.records[0]).expect("on-failure record");
    let covered = record.covering_range();
    assert_eq!(
        covered,
        DateRange::parse(Some("2026-10-31"), Some("2026-11-01")).expect("range")
    );

    // The batch: the healthy message is repaired, the malformed one alone is reported.
    let response = side.backfiller(sample.clone()).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        vec![sample.records[1].message_id.as_deref().expect("id")]
    );
    assert!(
        side.missing(&covered).await.is_empty(),
        "the covered days verify complete"
    );
    assert_eq!(
        side.missing(&all).await,
        lost_elsewhere,
        "days no dead letter covers are left to `ftgo archive backfill`"
    );
    let repaired = side.objects().await;
    let backfilled: Vec<&String> = repaired
        .keys()
        .filter(|key| key.contains("/backfill/"))
        .collect();
    assert!(!backfilled.is_empty());
    assert!(
        backfilled
            .iter()
            .all(|key| key.contains("/date=2026-11-01/backfill/")),
        "{backfilled:?}"
    );

    // The same dead letter again (SQS delivers at least once): nothing changes.
    let mut again = sample.clone();
    again.records.truncate(1);
    let response = side.backfiller(again).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(side.objects().await, repaired, "same keys, same bytes");

    // A person's backfill of everything puts back the rest.
    let done = side.backfill.backfill(&all).await.expect("backfill");
    assert_eq!(done.check.missing.len(), lost_elsewhere.len());
    assert!(side.missing(&all).await.is_empty());
}

#[tokio::test]
async fn a_repair_that_fails_reports_its_message_so_that_it_comes_back() {
    let side = Side::fresh().await;
    // A backfill whose event table does not exist: every repair fails (an AWS error).
    let sdk = Emulator::moto().await.sdk_config().await;
    let broken = ArchiveBackfill::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        side.archive.clone(),
        unique_id("no-such-table"),
    );
    let sample = dead_letters();
    let broken = Backfiller {
        backfill: broken,
        continuations: side.backfiller.continuations.clone(),
    };
    let response = ftgo_aws::lambda::archive_backfiller::handle(
        &broken,
        LambdaEvent::new(sample.clone(), Context::default()),
    )
    .await
    .expect("failures are reported per message");
    let failed: BTreeSet<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let all: BTreeSet<&str> = sample
        .records
        .iter()
        .filter_map(|m| m.message_id.as_deref())
        .collect();
    assert_eq!(failed, all, "no message is dropped");
    assert!(
        side.objects().await.is_empty(),
        "nothing was written to {}",
        side.stack.bucket_name("EventArchiveBucket")
    );
}

#[tokio::test]
async fn a_repair_that_starts_inside_its_deadline_margin_still_makes_progress() {
    let side = Side::fresh().await;
    let events = events();
    side.read.append(&events).await;
    let records: Vec<EventRecord> = events.iter().map(record_of).collect();
    side.archive_in_batches(&records, 3).await;
    let lost = side.lose_an_object_of("2026-11-01").await;
    let mut sample = dead_letters();
    sample.records.truncate(1);
    let covered = OnFailureRecord::of_message(&sample.records[0])
        .expect("record")
        .covering_range();
    assert_eq!(side.missing(&covered).await, lost);

    // Ten seconds left: inside the margin from the start. The sweep still reads the first page
    // of every segment (a sweep that stopped before any page would hand the same continuation
    // on for ever: found on the local stack, whose runtime starts invocations inside the
    // margin); moto answers a segment in one page, so the repair is done and nothing is queued.
    let deadline = std::time::SystemTime::now() + std::time::Duration::from_secs(10);
    let response = ftgo_aws::lambda::archive_backfiller::process_batch(
        &side.backfiller,
        &sample,
        Some(deadline),
    )
    .await
    .expect("reported per message");
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert!(side.missing(&covered).await.is_empty(), "repaired");
    let (visible, in_flight) = ftgo_tests::queue_depth(
        &side.backfiller.continuations.sqs,
        side.stack.queue_url("ArchiverDlq"),
    )
    .await;
    assert_eq!((visible, in_flight), (0, 0), "no continuation left to do");
}

#[tokio::test]
async fn a_sweep_stopped_between_pages_goes_on_from_where_it_stopped_and_misses_nothing() {
    let side = Side::fresh().await;
    // Several pages per segment, as a large table has in AWS: pages of two items.
    let mut events = events();
    for _ in 0..4 {
        events.extend(self::events());
    }
    side.read.append(&events).await;
    let records: Vec<EventRecord> = events.iter().map(record_of).collect();
    side.archive_in_batches(&records, 3).await;
    let mut lost = BTreeSet::new();
    for _ in 0..3 {
        lost.extend(side.lose_an_object_of("2026-11-01").await);
    }
    let range = day("2026-11-01");
    assert_eq!(side.missing(&range).await, lost);

    let asked = std::sync::atomic::AtomicUsize::new(0);
    let mut progress = ftgo_aws::archive_backfill::ScanProgress::start();
    let mut rounds = 0;
    let mut backfilled = 0;
    loop {
        rounds += 1;
        asked.store(0, std::sync::atomic::Ordering::SeqCst);
        // Stop after three page requests in all.
        let swept = side
            .backfill
            .clone()
            .with_page_limit(2)
            .sweep(
                &range,
                ftgo_aws::archive_backfill::SweepMode::Repair,
                progress,
                || asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 3,
            )
            .await
            .expect("sweep");
        backfilled += swept.backfilled;
        match swept.left {
            Some(left) => progress = left,
            None => break,
        }
        assert!(rounds < 20, "the sweep makes progress");
    }
    assert!(rounds > 1, "the sweep was stopped and went on");
    assert_eq!(backfilled, lost.len());
    assert!(side.missing(&range).await.is_empty());
}
