//! Rebuilding views from the archive against moto: an interrupted replay resumed from its
//! checkpoints, a blue/green table catching up by resuming (late objects with smaller keys
//! included), a rebuild from the latest view snapshot plus later events, each equal to a full
//! replay, and a snapshot restore that never moves an item backwards.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::archive_side;
use crate::read_side;

use archive_side::{
    ArchiveSide, an_order_without_delivery, another_view_table, append_and_archive, differences,
    histories, replay_all, replay_with_checkpoints, requests_into,
};
use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_aws::store::archive;
use ftgo_aws::{replay, verify};
use ftgo_domain::AggregateType;
use ftgo_domain::delivery::DeliveryEvent;
use ftgo_domain::event::StoredEvent;
use ftgo_domain::order::OrderEvent;
use read_side::{at, stored};

#[tokio::test]
async fn an_interrupted_replay_resumed_from_its_checkpoints_gives_the_same_table_as_an_uninterrupted_one()
 {
    let side = ArchiveSide::fresh().await;
    let events = histories(16);
    append_and_archive(&side, &events, 3).await;

    // Uninterrupted, into the stack's (empty) view table.
    let whole = side.target();
    for request in requests_into(&side, &whole).await {
        let summary = side.replayer.replay(&request).await.expect("replay");
        assert!(summary.failed.is_empty(), "{summary:?}");
    }

    // Interrupted after the first object of every partition, then resumed from the checkpoints.
    let resumed = another_view_table(&side, "ftgo-order-history-v2").await;
    let checkpoints = replay::Checkpoints::new(side.archive(), &resumed);
    let mut interrupted = 0;
    for request in requests_into(&side, &resumed).await {
        let outcome = replay_with_checkpoints(&side, &request, &checkpoints, true).await;
        assert_eq!(outcome.summary.objects, 1);
        if !outcome.complete {
            interrupted += 1;
            let saved = checkpoints
                .load(&request.prefix)
                .await
                .expect("load")
                .expect("saved");
            assert_eq!(saved.after, outcome.checkpoint);
            assert!(!saved.complete);
        }
    }
    assert!(interrupted > 0, "some partitions have more than one object");
    assert!(
        !differences(&side, &resumed, &events).await.is_empty(),
        "the interrupted table is not complete yet"
    );
    let mut resumed_partitions = 0;
    for request in requests_into(&side, &resumed).await {
        let rest = request.resumed();
        if replay::request_objects(&side.archive(), &rest)
            .await
            .expect("keys")
            .is_empty()
        {
            continue;
        }
        resumed_partitions += 1;
        let outcome = replay_with_checkpoints(&side, &rest, &checkpoints, false).await;
        assert!(outcome.complete && outcome.summary.failed.is_empty());
    }
    assert_eq!(resumed_partitions, interrupted);
    // Done: nothing is left to resume.
    for request in requests_into(&side, &resumed).await {
        let rest = request.resumed();
        assert!(
            replay::request_objects(&side.archive(), &rest)
                .await
                .expect("keys")
                .is_empty()
        );
        assert!(
            checkpoints
                .load(&request.prefix)
                .await
                .expect("load")
                .expect("saved")
                .complete
        );
    }

    assert_eq!(
        read_side::scan_table(&side.read.dynamodb, &resumed).await,
        side.scan_view().await,
        "resumed and uninterrupted replays give the same items, byte for byte"
    );
    assert_eq!(
        differences(&side, &resumed, &events).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn blue_green_a_rebuilt_table_catches_up_by_resuming_and_then_equals_the_fold() {
    let side = ArchiveSide::fresh().await;
    let before = histories(6);
    append_and_archive(&side, &before, 4).await;
    // Green: rebuilt from the archive as it is now.
    let green = another_view_table(&side, "ftgo-order-history-v2").await;
    let checkpoints = replay::Checkpoints::new(side.archive(), &green);
    for request in requests_into(&side, &green).await {
        let outcome = replay_with_checkpoints(&side, &request, &checkpoints, false).await;
        assert!(outcome.complete);
    }
    // Meanwhile the live system goes on: new orders, and new events of old ones.
    let mut after = histories(4);
    let undelivered = an_order_without_delivery(&before);
    after.push(stored(
        AggregateType::Delivery,
        &undelivered,
        1,
        &DeliveryEvent::DeliveryPickedUp {},
        at(5_000),
    ));
    append_and_archive(&side, &after, 4).await;
    let all: Vec<StoredEvent> = before.iter().chain(&after).cloned().collect();
    assert!(
        !differences(&side, &green, &all).await.is_empty(),
        "green is behind"
    );

    // Catching up: a replay resumed from the checkpoints reads only the new objects.
    let mut caught_up = 0;
    for request in requests_into(&side, &green).await {
        let rest = request.resumed();
        let outcome = replay_with_checkpoints(&side, &rest, &checkpoints, false).await;
        caught_up += outcome.summary.events;
    }
    assert_eq!(caught_up, after.len(), "only the new events are read again");
    assert_eq!(differences(&side, &green, &all).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_rebuild_from_the_latest_view_snapshot_plus_later_events_equals_a_full_replay() {
    let side = ArchiveSide::fresh().await;
    let early = histories(6);
    append_and_archive(&side, &early, 4).await;
    // A replay keeps table A (with checkpoints); a snapshot is taken of it at its watermark.
    let kept = another_view_table(&side, "ftgo-order-history-a").await;
    let checkpoints = replay::Checkpoints::new(side.archive(), &kept);
    for request in requests_into(&side, &kept).await {
        replay_with_checkpoints(&side, &request, &checkpoints, false).await;
    }
    let snapshots =
        ftgo_aws::view_snapshot::ViewSnapshots::new(side.archive(), side.read.dynamodb.clone());
    let (_, taken) = snapshots.take(&kept).await.expect("snapshot");
    assert_eq!(
        taken.items,
        ftgo_aws::verify::expected_view(&early).expect("fold").len()
    );

    // Later events, archived after the watermark.
    let mut late = histories(3);
    let undelivered = an_order_without_delivery(&early);
    late.push(stored(
        AggregateType::Delivery,
        &undelivered,
        1,
        &DeliveryEvent::DeliveryPickedUp {},
        at(9_000),
    ));
    append_and_archive(&side, &late, 4).await;
    let all: Vec<StoredEvent> = early.iter().chain(&late).cloned().collect();

    // Two-step rebuild into B: the latest snapshot, then only the events after its watermark.
    let rebuilt = another_view_table(&side, "ftgo-order-history-b").await;
    let (_, latest) = snapshots
        .latest(&kept)
        .await
        .expect("list")
        .expect("a snapshot");
    assert_eq!(latest, taken);
    let restored = snapshots
        .restore(&latest, &rebuilt, false)
        .await
        .expect("restore");
    assert_eq!(restored.written, taken.items);
    let resumed = replay::Checkpoints::new(side.archive(), &rebuilt);
    let mut read_again = 0;
    for request in requests_into(&side, &rebuilt).await {
        let rest = request.resumed();
        let outcome = replay_with_checkpoints(&side, &rest, &resumed, false).await;
        read_again += outcome.summary.events;
    }
    assert_eq!(
        read_again,
        late.len(),
        "only the events after the watermark are replayed"
    );

    // A full replay into the stack's table, for comparison.
    replay_all(&side, &side.target()).await;
    assert_eq!(
        read_side::scan_table(&side.read.dynamodb, &rebuilt).await,
        side.scan_view().await,
        "the two-step rebuild equals a full replay, byte for byte"
    );
    assert_eq!(
        differences(&side, &rebuilt, &all).await,
        Vec::<String>::new()
    );
}

/// A new order (created at `when`, event id `event_id`) whose stream is in archive
/// partition `partition`.
fn created_in_partition(partition: u64, when: i64, event_id: &str) -> StoredEvent {
    loop {
        let order_id = ftgo_tests::unique_id("late");
        if archive::partition_of(&format!("Order#{order_id}")) == partition {
            let mut events =
                read_side::order_history(&order_id, &read_side::curry("c-late"), at(when), &[]);
            events[0].event_id = event_id.to_owned();
            return events.remove(0);
        }
    }
}

#[tokio::test]
async fn resuming_replays_late_objects_with_smaller_keys_a_lagging_shard_and_a_backfill() {
    let side = ArchiveSide::fresh().await;
    // The archive green is built from: the archiver's objects, and a backfill object.
    let archived = histories(6);
    append_and_archive(&side, &archived, 4).await;
    let partition = archive::partition_of(&archived[0].stream_id);
    let backfilled_early = vec![created_in_partition(partition, 50, "f-0001")];
    side.read.append(&backfilled_early).await;
    for object in verify::backfill_objects(&backfilled_early).expect("plan") {
        side.archive().put(&object).await.expect("PutObject");
    }
    let green = another_view_table(&side, "ftgo-order-history-green").await;
    let checkpoints = replay::Checkpoints::new(side.archive(), &green);
    for request in requests_into(&side, &green).await {
        let outcome = replay_with_checkpoints(&side, &request, &checkpoints, false).await;
        assert!(outcome.complete && outcome.summary.failed.is_empty());
    }
    let before: Vec<String> = side.objects().await.into_keys().collect();

    // Late objects of the same partition, each with a key below one green has done: one
    // shard's archiver lagging (sequence numbers below every archived one, same stream label),
    // and a backfill whose smallest event id sorts before the earlier backfill's.
    let lagging = vec![created_in_partition(partition, 60, "lagging-0001")];
    side.read.append(&lagging).await;
    let records = vec![archive::ArchiveRecord {
        sequence_number: "1000".to_owned(),
        event: lagging[0].clone(),
    }];
    for object in archive::plan_objects(archive_side::SHARD, &records).expect("plan") {
        side.archive().put(&object).await.expect("PutObject");
    }
    let backfilled_late = vec![created_in_partition(partition, 50, "0-0001")];
    side.read.append(&backfilled_late).await;
    for object in verify::backfill_objects(&backfilled_late).expect("plan") {
        side.archive().put(&object).await.expect("PutObject");
    }
    let mut late_keys: Vec<String> = side
        .objects()
        .await
        .into_keys()
        .filter(|key| key.ends_with(archive::OBJECT_SUFFIX) && !before.contains(key))
        .collect();
    late_keys.sort();
    assert_eq!(late_keys.len(), 2, "{late_keys:?}");
    for key in &late_keys {
        let shard = if key.contains("/backfill/") {
            "/backfill/"
        } else {
            archive_side::SHARD
        };
        assert!(
            before.iter().any(|done| done.contains(shard)
                && done.starts_with(&archive::partition_prefix(partition))
                && replay::compare_object_keys(key, done).is_lt()),
            "{key} sorts below an object green has done"
        );
    }

    let all: Vec<StoredEvent> = [&archived, &backfilled_early, &lagging, &backfilled_late]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let mut read_again = 0;
    let mut objects_again = Vec::new();
    for request in requests_into(&side, &green).await {
        let rest = request.resumed();
        objects_again.extend(
            replay::request_objects(&side.archive(), &rest)
                .await
                .expect("keys"),
        );
        let outcome = replay_with_checkpoints(&side, &rest, &checkpoints, false).await;
        assert!(outcome.summary.failed.is_empty(), "{outcome:?}");
        read_again += outcome.summary.events;
    }
    objects_again.sort();
    assert_eq!(
        objects_again, late_keys,
        "exactly the late objects are read"
    );
    assert_eq!(read_again, 2);
    assert_eq!(differences(&side, &green, &all).await, Vec::<String>::new());
    // Nothing is left to resume.
    for request in requests_into(&side, &green).await {
        let left = replay::request_objects(&side.archive(), &request.resumed())
            .await
            .expect("keys");
        assert!(left.is_empty(), "{left:?}");
    }
}

#[tokio::test]
async fn a_snapshot_restore_never_moves_an_item_backwards_nor_overwrites_checkpoints() {
    let side = ArchiveSide::fresh().await;
    // More than 25 items (one `BatchWriteItem` held 25 at most), and one order that is only
    // created when the snapshot is taken.
    let early = histories(30);
    let order = read_side::order_history(
        &ftgo_tests::unique_id("late-cancel"),
        &read_side::curry("consumer-late"),
        at(100),
        &[],
    );
    let order_id = order[0].aggregate_id.clone();
    let first: Vec<StoredEvent> = early.iter().chain(&order).cloned().collect();
    append_and_archive(&side, &first, 5).await;
    let kept = another_view_table(&side, "ftgo-order-history-a").await;
    let kept_checkpoints = replay::Checkpoints::new(side.archive(), &kept);
    for request in requests_into(&side, &kept).await {
        replay_with_checkpoints(&side, &request, &kept_checkpoints, false).await;
    }
    let snapshots =
        ftgo_aws::view_snapshot::ViewSnapshots::new(side.archive(), side.read.dynamodb.clone());
    let (_, taken) = snapshots.take(&kept).await.expect("snapshot");
    assert_eq!(taken.items, 31);

    // The live view goes on: the order is approved and cancelled (version 3).
    let later = vec![
        stored(
            AggregateType::Order,
            &order_id,
            2,
            &OrderEvent::OrderApproved {},
            at(110),
        ),
        stored(
            AggregateType::Order,
            &order_id,
            3,
            &OrderEvent::OrderCancelled {},
            at(120),
        ),
    ];
    append_and_archive(&side, &later, 5).await;
    let all: Vec<StoredEvent> = first.iter().chain(&later).cloned().collect();
    let live = side.target();
    let live_checkpoints = replay::Checkpoints::new(side.archive(), &live);
    for request in requests_into(&side, &live).await {
        replay_with_checkpoints(&side, &request, &live_checkpoints, false).await;
    }
    let status = |items: Vec<std::collections::HashMap<String, AttributeValue>>| {
        items
            .into_iter()
            .find(|item| item.get("orderId") == Some(&AttributeValue::S(order_id.clone())))
            .map(|item| (item["status"].clone(), item["orderVersion"].clone()))
    };
    let cancelled = Some((
        AttributeValue::S("CANCELLED".into()),
        AttributeValue::N("3".into()),
    ));
    assert_eq!(status(side.scan_view().await), cancelled);
    let live_before = side.scan_view().await;
    let mut done_before = Vec::new();
    for request in requests_into(&side, &live).await {
        done_before.push(live_checkpoints.done(&request.prefix).await.expect("done"));
    }

    // A non-empty target is refused unless told otherwise, and left as it was.
    let refused = snapshots.restore(&taken, &live, false).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("not empty")),
        "{refused:?}"
    );
    assert_eq!(side.scan_view().await, live_before);

    // Told otherwise: the item at version 3 stays CANCELLED, the checkpoints stay the target's.
    let restored = snapshots
        .restore(&taken, &live, true)
        .await
        .expect("restore");
    assert_eq!(restored.kept_newer, 1, "{restored:?}");
    assert_eq!(restored.written, 30);
    assert!(!restored.checkpoints_kept.is_empty());
    assert_eq!(status(side.scan_view().await), cancelled);
    assert_eq!(side.scan_view().await, live_before);
    let mut done_after = Vec::new();
    for request in requests_into(&side, &live).await {
        done_after.push(live_checkpoints.done(&request.prefix).await.expect("done"));
    }
    assert_eq!(done_after, done_before, "the target's checkpoints are kept");
    assert_eq!(differences(&side, &live, &all).await, Vec::<String>::new());

    // Into an empty table: all 31 items land (more than one `BatchWriteItem`'s 25), and a
    // resumed replay brings it to the fold.
    let rebuilt = another_view_table(&side, "ftgo-order-history-b").await;
    let restored = snapshots
        .restore(&taken, &rebuilt, false)
        .await
        .expect("restore");
    assert_eq!((restored.written, restored.kept_newer), (31, 0));
    assert_eq!(
        differences(&side, &rebuilt, &first).await,
        Vec::<String>::new()
    );
    let rebuilt_checkpoints = replay::Checkpoints::new(side.archive(), &rebuilt);
    let mut read_again = 0;
    for request in requests_into(&side, &rebuilt).await {
        let outcome =
            replay_with_checkpoints(&side, &request.resumed(), &rebuilt_checkpoints, false).await;
        read_again += outcome.summary.events;
    }
    assert_eq!(read_again, later.len());
    assert_eq!(
        differences(&side, &rebuilt, &all).await,
        Vec::<String>::new()
    );
}
