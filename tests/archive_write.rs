//! The `event-archiver` Lambda's handler against moto (S3): deterministic gzip NDJSON objects (a
//! retried batch rewrites the same keys with the same bytes), undecodable records kept aside,
//! and a failed write reported; behind the fault layer, a batch whose writes partly fail and
//! one whose undecodable record fails to be kept are retried from the right record, rewrite the
//! same keys and lose nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::archive_side;
use crate::read_side;

use std::collections::BTreeSet;

use archive_side::{ArchiveSide, LIFECYCLE, ORDER_A, ORDER_C, SHARD, image_events};
use ftgo_aws::config::Config;
use ftgo_aws::faults::{FaultKind, FaultLayer, FaultPlan, Rule};
use ftgo_aws::lambda::event_archiver::Archiver;
use ftgo_aws::lambda_runtime::{Context, LambdaEvent};
use ftgo_aws::store::archive::{self, Archive, partition_prefix};
use ftgo_domain::event::StoredEvent;
use ftgo_tests::{Emulator, unique_id};
use read_side::sample_records;
use serde_json::Value;

const UNDECODABLE: &str = include_str!("../events/event-archiver/undecodable-record.json");

#[tokio::test]
async fn sample_batch_is_archived_under_deterministic_keys_and_a_retry_rewrites_the_same_bytes() {
    let side = ArchiveSide::fresh().await;
    let records = sample_records(LIFECYCLE);
    let response = side.archive_batch(records.clone()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let objects = side.objects().await;
    let keys: Vec<&str> = objects.keys().map(String::as_str).collect();
    let expected = [
        format!(
            "events/v1/bucket=1/date=2026-11-25/{SHARD}/4300000000000000000001-4300000000000000000002.ndjson.gz"
        ),
        format!(
            "events/v1/bucket=1/date=2026-11-26/{SHARD}/4300000000000000000004-4300000000000000000004.ndjson.gz"
        ),
        format!(
            "events/v1/bucket=11/date=2026-11-26/{SHARD}/4300000000000000000006-4300000000000000000007.ndjson.gz"
        ),
        format!(
            "events/v1/bucket=8/date=2026-11-26/{SHARD}/4300000000000000000003-4300000000000000000005.ndjson.gz"
        ),
    ];
    assert_eq!(
        keys,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );

    // Every event is there once, in the event table's JSON form, as the stream carried it.
    let mut archived: Vec<StoredEvent> = objects
        .values()
        .flat_map(|bytes| archive::decode(bytes).expect("gzip NDJSON"))
        .collect();
    archive::sort_and_dedup(&mut archived);
    let mut sent = image_events(&records);
    archive::sort_and_dedup(&mut sent);
    assert_eq!(archived, sent);
    let created_line: Value = {
        let text = std::io::read_to_string(flate2::read::GzDecoder::new(
            &objects[expected[0].as_str()][..],
        ))
        .expect("gunzip");
        serde_json::from_str(text.lines().next().expect("a line")).expect("JSON line")
    };
    assert_eq!(created_line["streamId"], format!("Order#{ORDER_A}"));
    assert_eq!(created_line["schemaVersion"], 2);
    assert_eq!(created_line["occurredAt"], "2026-11-25T23:58:00.25Z");
    assert_eq!(created_line["payload"]["orderTotal"], 2818);

    // Lambda retries the same batch: the same keys, the same bytes, nothing else.
    let response = side.archive_batch(records).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(side.objects().await, objects);
}

#[tokio::test]
async fn undecodable_records_are_kept_aside_and_do_not_block_the_batch() {
    let side = ArchiveSide::fresh().await;
    let records = sample_records(UNDECODABLE);
    let response = side.archive_batch(records.clone()).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "an undecodable record is not a retry: {response:?}"
    );
    let objects = side.objects().await;
    let keys: BTreeSet<&str> = objects.keys().map(String::as_str).collect();
    let kept = format!("events/v1/undecodable/{SHARD}/4400000000000000000002.json");
    let removed = format!("events/v1/undecodable/{SHARD}/4400000000000000000003.json");
    let good = format!(
        "events/v1/bucket=11/date=2026-11-26/{SHARD}/4400000000000000000001-4400000000000000000004.ndjson.gz"
    );
    assert_eq!(
        keys,
        BTreeSet::from([kept.as_str(), removed.as_str(), good.as_str()])
    );

    let events = archive::decode(&objects[&good]).expect("good object");
    let ids: Vec<(String, u64)> = events
        .iter()
        .map(|e| (e.stream_id.clone(), e.version))
        .collect();
    assert_eq!(
        ids,
        vec![
            (format!("Order#{ORDER_C}"), 1),
            (format!("Order#{ORDER_C}"), 2)
        ]
    );

    let body: Value = serde_json::from_slice(&objects[&kept]).expect("JSON");
    assert_eq!(body["source"], "event-archiver");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("not a stored event"),
        "{body}"
    );
    assert_eq!(
        body["record"],
        serde_json::to_value(&records[1]).expect("record JSON"),
        "the whole record is kept"
    );
    let body: Value = serde_json::from_slice(&objects[&removed]).expect("JSON");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("REMOVE")
    );

    // Nothing in the undecodable area is a partition to replay.
    let partitions = side.archive().list_partitions().await.expect("partitions");
    assert_eq!(partitions, vec![partition_prefix(11)]);
}

#[tokio::test]
async fn a_failed_write_reports_the_first_record_of_the_failed_object() {
    let moto = Emulator::moto().await;
    let missing = Archive::new(moto.s3().await, unique_id("no-such-bucket"));
    let archiver = Archiver::new(missing);
    let records = sample_records(LIFECYCLE);
    let mut late = records[3..].to_vec();
    late.reverse();
    let response = ftgo_aws::lambda::event_archiver::handle(
        &archiver,
        LambdaEvent::new(read_side::batch(late), Context::default()),
    )
    .await
    .expect("the archiver handler never fails an invocation");
    let reported: Vec<Option<String>> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    // Every object failed; Lambda retries from the lowest first record among them.
    assert_eq!(reported, vec![Some("4300000000000000000004".to_owned())]);
}

/// The `event-archiver` of `side`'s stack behind a fault layer of scripted rules.
async fn archiver_behind(side: &ArchiveSide, layer: &FaultLayer) -> Archiver {
    let sdk = layer.apply(&Emulator::moto().await.sdk_config().await);
    let env = side.stack.function_env("event-archiver");
    let config = Config::from_lookup(|name| env.get(name).cloned()).expect("configuration");
    Archiver::from_config(&sdk, &config).expect("archiver")
}

/// Pushes `records` as one batch through `archiver`.
async fn archive_with(
    archiver: &Archiver,
    records: Vec<aws_lambda_events::dynamodb::EventRecord>,
) -> Vec<String> {
    ftgo_aws::lambda::event_archiver::handle(
        archiver,
        LambdaEvent::new(read_side::batch(records), Context::default()),
    )
    .await
    .expect("the archiver handler never fails an invocation")
    .batch_item_failures
    .into_iter()
    .filter_map(|f| f.item_identifier)
    .collect()
}

/// The records of `records` from sequence number `from` on: the batch Lambda retries after
/// `from` was reported.
fn retried_from(
    records: &[aws_lambda_events::dynamodb::EventRecord],
    from: &str,
) -> Vec<aws_lambda_events::dynamodb::EventRecord> {
    records
        .iter()
        .filter(|r| {
            r.change.sequence_number.as_deref().is_some_and(|s| {
                archive::compare_sequence_numbers(s, from) != std::cmp::Ordering::Less
            })
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_batch_whose_writes_partly_fail_is_retried_from_the_first_failed_record_and_loses_nothing()
 {
    let side = ArchiveSide::fresh().await;
    let records = sample_records(LIFECYCLE);
    let planned = {
        let decoded: Vec<archive::ArchiveRecord> = records
            .iter()
            .map(|r| archive::ArchiveRecord {
                sequence_number: r.change.sequence_number.clone().expect("sequence"),
                event: ftgo_aws::lambda::event_archiver::decode_record(r).expect("event"),
            })
            .collect();
        archive::plan_objects(SHARD, &decoded).expect("plan")
    };
    assert_eq!(planned.len(), 4);
    // S3 takes the first two objects and fails every later write (every SDK retry too).
    let layer = FaultLayer::new(FaultPlan::scripted());
    layer.push_rule(
        Rule::new(FaultKind::ErrorBefore)
            .operation("PutObject")
            .resource(&side.bucket)
            .after(2)
            .always(),
    );
    let archiver = archiver_behind(&side, &layer).await;
    let reported = archive_with(&archiver, records.clone()).await;
    let landed = side.objects().await;
    assert_eq!(landed.len(), 2, "{:?}", landed.keys());
    let failed: Vec<&archive::ArchiveObject> = planned
        .iter()
        .filter(|o| !landed.contains_key(&o.key))
        .collect();
    let lowest = failed
        .iter()
        .map(|o| o.first_sequence.clone())
        .min_by(|a, b| archive::compare_sequence_numbers(a, b))
        .expect("failed objects");
    assert_eq!(
        reported,
        vec![lowest.clone()],
        "Lambda retries from the first record of the failed objects"
    );
    assert!(layer.counts().of(FaultKind::ErrorBefore, "PutObject") >= 2);

    // S3 is back; Lambda retries the batch from the reported record.
    layer.stop();
    let reported = archive_with(&archiver, retried_from(&records, &lowest)).await;
    assert!(reported.is_empty(), "{reported:?}");
    let objects = side.objects().await;
    // The failed objects land under the keys and with the bytes a clean run writes.
    for object in &planned {
        assert_eq!(
            objects.get(&object.key),
            Some(&object.body().expect("body")),
            "{}",
            object.key
        );
    }
    // Nothing is lost: every event of the batch is archived.
    let mut archived: Vec<StoredEvent> = objects
        .values()
        .flat_map(|bytes| archive::decode(bytes).expect("gzip NDJSON"))
        .collect();
    archive::sort_and_dedup(&mut archived);
    let mut sent = image_events(&records);
    archive::sort_and_dedup(&mut sent);
    assert_eq!(archived, sent);
}

#[tokio::test]
async fn an_undecodable_record_that_fails_to_be_kept_is_retried_and_rewritten_under_its_key() {
    let side = ArchiveSide::fresh().await;
    let records = sample_records(UNDECODABLE);
    // The batch's one good object lands; keeping the undecodable records aside fails.
    let layer = FaultLayer::new(FaultPlan::scripted());
    layer.push_rule(
        Rule::new(FaultKind::ErrorBefore)
            .operation("PutObject")
            .resource(&side.bucket)
            .after(1)
            .always(),
    );
    let archiver = archiver_behind(&side, &layer).await;
    let reported = archive_with(&archiver, records.clone()).await;
    let kept = format!("events/v1/undecodable/{SHARD}/4400000000000000000002.json");
    let removed = format!("events/v1/undecodable/{SHARD}/4400000000000000000003.json");
    let good = format!(
        "events/v1/bucket=11/date=2026-11-26/{SHARD}/4400000000000000000001-4400000000000000000004.ndjson.gz"
    );
    let objects = side.objects().await;
    assert_eq!(
        objects.keys().collect::<Vec<_>>(),
        vec![&good],
        "only the good object landed"
    );
    assert_eq!(
        reported,
        vec!["4400000000000000000002".to_owned()],
        "the first undecodable record is reported, not dropped"
    );

    layer.stop();
    let retry = retried_from(&records, "4400000000000000000002");
    assert_eq!(retry.len(), 3);
    let reported = archive_with(&archiver, retry).await;
    assert!(reported.is_empty(), "{reported:?}");
    let objects = side.objects().await;
    for key in [&kept, &removed, &good] {
        assert!(objects.contains_key(key), "{key} in {:?}", objects.keys());
    }
    // The retry rewrote the undecodable records under the same keys, whole.
    let body: Value = serde_json::from_slice(&objects[&kept]).expect("JSON");
    assert_eq!(
        body["record"],
        serde_json::to_value(&records[1]).expect("record JSON")
    );
    // And every event of the batch is archived (the retry's own object repeats one of them).
    let mut archived: Vec<StoredEvent> = objects
        .iter()
        .filter(|(key, _)| key.ends_with(archive::OBJECT_SUFFIX))
        .flat_map(|(_, bytes)| archive::decode(bytes).expect("gzip NDJSON"))
        .collect();
    archive::sort_and_dedup(&mut archived);
    let ids: Vec<(String, u64)> = archived
        .iter()
        .map(|e| (e.stream_id.clone(), e.version))
        .collect();
    assert_eq!(
        ids,
        vec![
            (format!("Order#{ORDER_C}"), 1),
            (format!("Order#{ORDER_C}"), 2)
        ]
    );
}
