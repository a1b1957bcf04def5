//! Rebuilding views from the archive against moto: an interrupted replay resumed from its
//! checkpoints, a blue/green table catching up by resuming, and a rebuild from the latest view
//! snapshot plus later events, each equal to a full replay.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

#[path = "fixtures/archive_side.rs"]
mod archive_side;
#[path = "fixtures/read_side.rs"]
mod read_side;

use archive_side::{
    ArchiveSide, an_order_without_delivery, another_view_table, append_and_archive, differences,
    histories, replay_all, replay_with_checkpoints, requests_into,
};
use ftgo_aws::replay;
use ftgo_domain::AggregateType;
use ftgo_domain::delivery::DeliveryEvent;
use ftgo_domain::event::StoredEvent;
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
        let rest = checkpoints.resume(&request).await.expect("resume");
        assert!(rest.after.is_some());
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
        let rest = checkpoints.resume(&request).await.expect("resume");
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
        let rest = checkpoints.resume(&request).await.expect("resume");
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
    assert_eq!(
        snapshots.restore(&latest, &rebuilt).await.expect("restore"),
        taken.items
    );
    let resumed = replay::Checkpoints::new(side.archive(), &rebuilt);
    let mut read_again = 0;
    for request in requests_into(&side, &rebuilt).await {
        let rest = resumed.resume(&request).await.expect("resume");
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
