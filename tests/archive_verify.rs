//! `verify` against moto: `verify-view` names each attribute of a view table that differs from
//! the fold of the events; `archive verify` names the events an archive misses, and a backfill
//! puts them back.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::archive_side;

use archive_side::{
    ArchiveSide, another_view_table, append_and_archive, differences, histories, replay_all,
};
use aws_sdk_dynamodb::types::AttributeValue;

#[tokio::test]
async fn verify_view_names_each_attribute_that_differs_from_the_fold() {
    let side = ArchiveSide::fresh().await;
    let events = histories(6);
    append_and_archive(&side, &events, 10).await;
    let target = another_view_table(&side, "ftgo-order-history-v2").await;
    replay_all(&side, &target).await;
    assert_eq!(
        differences(&side, &target, &events).await,
        Vec::<String>::new()
    );

    // Someone edits an item by hand: its status, and its duplicate-detection version.
    let order_id = events[0].aggregate_id.clone();
    side.read
        .dynamodb
        .update_item()
        .table_name(&target)
        .key("orderId", AttributeValue::S(order_id.clone()))
        .update_expression("SET #s = :s, orderVersion = :v")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":s", AttributeValue::S("REJECTED".into()))
        .expression_attribute_values(":v", AttributeValue::N("7".into()))
        .send()
        .await
        .expect("UpdateItem");
    let found = differences(&side, &target, &events).await;
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found
            .iter()
            .any(|d| d.starts_with(&format!("{order_id}: status is Some(Rejected)"))),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|d| d.starts_with(&format!("{order_id}: orderVersion is Some(7)"))),
        "{found:#?}"
    );
}

#[tokio::test]
async fn archive_verify_names_the_events_of_a_deleted_object_and_backfill_puts_them_back() {
    let side = ArchiveSide::fresh().await;
    let events = histories(8);
    append_and_archive(&side, &events, 4).await;
    let archive = side.archive();
    let all = ftgo_aws::verify::DateRange::default();
    let scan =
        || ftgo_aws::verify::scan_events(&side.read.dynamodb, &side.read.config.events_table, &all);
    let table_events = scan().await.expect("scan events");
    assert_eq!(table_events.len(), events.len());
    let archived = archive
        .archived_event_ids(&all)
        .await
        .expect("archived ids");
    assert!(ftgo_aws::verify::missing_from_archive(&table_events, &archived).is_empty());

    // One object goes missing.
    let key = archive
        .list_keys("events/v1/bucket=")
        .await
        .expect("keys")
        .into_iter()
        .next()
        .expect("an object");
    let mut lost: Vec<(String, u64)> = archive
        .read(&key)
        .await
        .expect("read")
        .into_iter()
        .map(|e| (e.stream_id, e.version))
        .collect();
    lost.sort();
    archive.delete(&key).await.expect("DeleteObject");
    let archived = archive
        .archived_event_ids(&all)
        .await
        .expect("archived ids");
    let missing = ftgo_aws::verify::missing_from_archive(&table_events, &archived);
    let named: Vec<(String, u64)> = missing
        .iter()
        .map(|e| (e.stream_id.clone(), e.version))
        .collect();
    assert_eq!(
        named, lost,
        "exactly the events of the deleted object are named"
    );

    // Backfill: deterministic keys, and afterwards nothing is missing.
    let objects = ftgo_aws::verify::backfill_objects(&missing).expect("plan backfill");
    assert_eq!(
        objects,
        ftgo_aws::verify::backfill_objects(&missing).expect("again")
    );
    for object in &objects {
        assert!(object.key.contains("/backfill/"), "{}", object.key);
        archive.put(object).await.expect("PutObject");
    }
    let archived = archive
        .archived_event_ids(&all)
        .await
        .expect("archived ids");
    assert!(ftgo_aws::verify::missing_from_archive(&table_events, &archived).is_empty());

    // And a replay of the repaired archive builds the fold.
    replay_all(&side, &side.target()).await;
    assert_eq!(
        differences(&side, &side.target(), &events).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn an_undecodable_item_of_the_event_table_is_left_out_and_stops_no_check() {
    let side = ArchiveSide::fresh().await;
    let events = histories(2);
    append_and_archive(&side, &events, 4).await;
    // Written by hand: no metadata, a number where a string belongs.
    side.read
        .dynamodb
        .put_item()
        .table_name(&side.read.config.events_table)
        .item("streamId", AttributeValue::S("Order#by-hand".into()))
        .item("version", AttributeValue::N("3".into()))
        .item("eventType", AttributeValue::S("OrderCreated".into()))
        .item("payload", AttributeValue::N("7".into()))
        .send()
        .await
        .expect("PutItem");
    let all = ftgo_aws::verify::DateRange::default();
    let scanned =
        ftgo_aws::verify::scan_events(&side.read.dynamodb, &side.read.config.events_table, &all)
            .await
            .expect("one bad item does not stop the scan");
    assert_eq!(scanned.len(), events.len());
    assert!(
        scanned
            .iter()
            .all(|event| event.stream_id != "Order#by-hand")
    );
}
