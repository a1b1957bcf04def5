//! The order-history projector's dead letters, against moto, through its Lambda handler:
//! poison records, confirmed gaps, `REMOVE` records, corrupt versions and undecodable or
//! unprojectable event-table items go to `ftgo-projector-dlq` with the record and the reason, and
//! never block the rest of the batch.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::read_side;

use std::collections::HashMap;

use aws_lambda_events::dynamodb::EventRecord;
use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_domain::event::StoredEvent;
use ftgo_domain::order::{OrderEvent, OrderStatus};
use ftgo_tests::{Emulator, unique_id};
use read_side::{
    ReadSide, at, dead_letters, failures, order_created, order_history, record_of, record_of_image,
    sample_records,
};
use serde_json::{Value, json};

const POISON: &str = include_str!("../events/order-history-projector/poison-record.json");
const CONFIRMED_GAP: &str = include_str!("../events/order-history-projector/confirmed-gap.json");
const REMOVE: &str = include_str!("../events/order-history-projector/remove-record.json");

/// The events of order `order_id` of consumer `c`: one Naan, created at [`at`]`(0)`, then `then`.
fn naan_order(order_id: &str, then: &[OrderEvent]) -> Vec<StoredEvent> {
    order_history(
        order_id,
        &order_created("c", "Ajanta", &[("Naan", 1, 300)]),
        at(0),
        then,
    )
}

#[tokio::test]
async fn poison_record_goes_to_the_dlq_and_the_rest_of_its_batch_is_projected() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let records = sample_records(POISON);
    let response = side.deliver(records.clone()).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "a poison record is not a retry"
    );
    let projected = side
        .view("0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a7d")
        .await
        .expect("the good records around the poison one");
    assert_eq!(projected.status, Some(OrderStatus::Cancelled));
    assert_eq!(
        side.view("0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a8e").await,
        None
    );

    let letters = dead_letters(moto, &stack).await;
    assert_eq!(letters.len(), 1, "exactly the poison record: {letters:?}");
    let body = &letters[0];
    assert_eq!(body["reason"], "UNDECODABLE", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("OrderTeleported"),
        "{body}"
    );
    let poison: Value = serde_json::to_value(&records[1]).expect("record JSON");
    assert_eq!(body["record"], poison, "the whole record travels");
    assert_eq!(body["source"], "order-history-projector");
}

#[tokio::test]
async fn a_record_that_is_not_an_event_at_all_is_dead_lettered() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let garbage = record_of_image(json!({"streamId": {"S": "Order#x"}, "version": {"N": "1"}}));
    let order_id = unique_id("order");
    let good = naan_order(&order_id, &[]);
    let response = side
        .deliver(vec![garbage.clone(), record_of(&good[0])])
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert!(side.view(&order_id).await.expect("good record").is_order());
    let letters = dead_letters(moto, &stack).await;
    assert_eq!(letters.len(), 1);
    let body = &letters[0];
    assert_eq!(body["record"]["eventID"], garbage.event_id);
    assert_eq!(body["reason"], "UNDECODABLE");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("NewImage")
    );
}

/// Writes a stream record's `NewImage` into the event table as it is: a hand-written item.
async fn write_by_hand(side: &ReadSide, record: &EventRecord) {
    let item: HashMap<String, AttributeValue> = record.change.new_image.clone().into();
    side.dynamodb
        .put_item()
        .table_name(&side.config.events_table)
        .set_item(Some(item))
        .send()
        .await
        .expect("PutItem");
}

#[tokio::test]
async fn a_confirmed_gap_is_dead_lettered_and_the_rest_of_the_batch_is_projected() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let records = sample_records(CONFIRMED_GAP);
    // Version 3 of a stream written by hand; versions 1 and 2 do not exist.
    write_by_hand(&side, &records[0]).await;
    let response = side.deliver(records.clone()).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "a confirmed gap never blocks the shard: {:?}",
        response.batch_item_failures
    );
    assert_eq!(
        side.view("0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a9f").await,
        None,
        "nothing of the gapped stream lands"
    );
    assert!(
        side.view("0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4aa0")
            .await
            .expect("the record after the gap is projected")
            .is_order()
    );
    let letters = dead_letters(moto, &stack).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["reason"], "CONFIRMED_GAP");
    assert_eq!(letters[0]["source"], "order-history-projector");
    assert_eq!(
        letters[0]["record"],
        serde_json::to_value(&records[0]).expect("record JSON"),
        "the whole record travels"
    );
    let message = letters[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("version 1 is not in the event table"),
        "{message}"
    );
}

#[tokio::test]
async fn a_confirmed_gap_after_some_existing_versions_applies_them_and_dead_letters_the_rest() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let order_id = unique_id("order");
    let events = naan_order(
        &order_id,
        &[OrderEvent::OrderApproved {}, OrderEvent::OrderCancelled {}],
    );
    // Version 2 was deleted by hand: 1 and 3 remain.
    side.append(&[events[0].clone(), events[2].clone()]).await;
    let response = side.deliver(vec![record_of(&events[2])]).await;
    assert!(response.batch_item_failures.is_empty());
    let view = side.view(&order_id).await.expect("version 1 applied");
    assert_eq!(view.order_version, Some(1));
    assert_eq!(view.status, Some(OrderStatus::ApprovalPending));
    let letters = dead_letters(moto, &stack).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["reason"], "CONFIRMED_GAP");
    assert!(
        letters[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("version 2 is not in the event table")
    );
}

#[tokio::test]
async fn an_event_table_item_that_is_not_an_event_dead_letters_the_record_it_blocks() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let order_id = unique_id("order");
    let events = naan_order(&order_id, &[OrderEvent::OrderApproved {}]);
    // Version 1 in the table is an item by hand that is not an event at all.
    side.dynamodb
        .put_item()
        .table_name(&side.config.events_table)
        .item("streamId", AttributeValue::S(events[0].stream_id.clone()))
        .item("version", AttributeValue::N("1".into()))
        .item("note", AttributeValue::S("written by hand".into()))
        .send()
        .await
        .expect("PutItem");
    side.append(&events[1..]).await;
    let after = naan_order(&unique_id("after"), &[]);
    let response = side
        .deliver(vec![record_of(&events[1]), record_of(&after[0])])
        .await;
    assert!(
        response.batch_item_failures.is_empty(),
        "retrying cannot cure it: {:?}",
        failures(&response)
    );
    assert!(side.view(&after[0].aggregate_id).await.is_some());
    let letters = dead_letters(moto, &stack).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["reason"], "UNPROJECTABLE");
}

#[tokio::test]
async fn a_remove_record_is_dead_lettered_and_the_rest_of_the_batch_is_projected() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let records = sample_records(REMOVE);
    let response = side.deliver(records.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(
        side.view("0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4ab2")
            .await
            .expect("the record after the REMOVE is projected")
            .is_order()
    );
    let letters = dead_letters(moto, &stack).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["reason"], "REMOVED");
    assert_eq!(
        letters[0]["record"],
        serde_json::to_value(&records[0]).expect("record JSON")
    );
}

#[tokio::test]
async fn a_corrupt_version_is_dead_lettered_never_read_as_a_range() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let order_id = unique_id("order");
    let created = naan_order(&order_id, &[OrderEvent::OrderApproved {}]);
    // Only version 1 is in the event table; the corrupt records carry version 2's image.
    side.append(&created[..1]).await;
    let image = |version: Value| {
        let mut image = serde_json::to_value(
            serde_dynamo::to_item::<_, serde_dynamo::Item>(&created[1]).expect("image"),
        )
        .expect("image JSON");
        image["version"] = version;
        record_of_image(image)
    };
    let corrupt = [
        image(json!({"N": u64::MAX.to_string()})),
        image(json!({"N": "1000000000000"})),
        image(json!({"N": "0"})),
        image(json!({"N": "-2"})),
        image(json!({"N": "abc"})),
        image(json!({"N": "99999999999999999999999999"})),
    ];
    let after = naan_order(&unique_id("after"), &[]);
    let mut records = corrupt.to_vec();
    records.push(record_of(&created[0]));
    records.push(record_of(&after[0]));
    let response = side.deliver(records).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        failures(&response)
    );
    let view = side.view(&order_id).await.expect("version 1 projected");
    assert_eq!(view.order_version, Some(1), "no corrupt version landed");
    assert!(side.view(&after[0].aggregate_id).await.is_some());
    let letters = dead_letters(moto, &stack).await;
    let reasons: Vec<&str> = letters
        .iter()
        .map(|letter| letter["reason"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(reasons, ["CORRUPT_VERSION"; 6], "{letters:?}");
}

#[tokio::test]
async fn an_undecodable_event_in_the_table_blocks_only_its_order_and_is_dead_lettered() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let order_id = unique_id("order");
    let events = naan_order(
        &order_id,
        &[OrderEvent::OrderApproved {}, OrderEvent::OrderCancelled {}],
    );
    let mut broken = events[1].clone();
    broken.event_type = "OrderTeleported".into();
    side.append(&[events[0].clone(), broken.clone(), events[2].clone()])
        .await;
    let other = unique_id("other");
    let other_events = naan_order(&other, &[]);
    let response = side
        .deliver(vec![
            record_of(&events[0]),
            record_of(&events[2]),
            record_of(&other_events[0]),
        ])
        .await;
    assert!(
        response.batch_item_failures.is_empty(),
        "the shard is not blocked"
    );
    assert_eq!(
        side.view(&order_id).await.and_then(|v| v.status),
        Some(OrderStatus::ApprovalPending)
    );
    assert!(side.view(&other).await.is_some());
    let letters = dead_letters(moto, &stack).await;
    assert_eq!(letters.len(), 1);
    let body = &letters[0];
    assert_eq!(body["blockedBy"]["version"], 2);
    assert_eq!(body["reason"], "BLOCKED");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("version 3")
    );
}

#[tokio::test]
async fn a_dead_letter_that_cannot_be_sent_is_retried_never_dropped_and_its_body_is_valid_for_sqs()
{
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let mut records = sample_records(POISON);
    // The poison record's image also holds what SQS refuses in a message body (an item written
    // by hand: the API refuses such text).
    let hostile = "Ajanta\u{FFFE}\u{FFFF}";
    records[1].change.new_image.inner_mut().insert(
        "restaurantName".into(),
        serde_dynamo::AttributeValue::S(hostile.into()),
    );
    // A projector whose dead-letter queue does not exist (a deployment error): SendMessage fails.
    let misconfigured = ftgo_aws::projector::Projector::new(
        side.dao.clone(),
        side.store.clone(),
        moto.sqs().await,
        format!("{}-gone", side.config.projector_dlq_url),
    );
    let response = misconfigured
        .process_batch(&read_side::batch(records.clone()))
        .await;
    assert_eq!(
        failures(&response),
        [read_side::sequence_number(&records[1])],
        "the record whose dead letter could not be sent is reported for a retry"
    );
    let other = side
        .view("0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a7d")
        .await
        .expect("the other stream is projected");
    assert_eq!(
        other.status,
        Some(OrderStatus::Cancelled),
        "another stream's records are not held up by the one that failed"
    );
    assert!(dead_letters(moto, &stack).await.is_empty());

    // Lambda retries from the reported record, with the deployment fixed.
    let response = side.deliver(records[1..].to_vec()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let sqs = moto.sqs().await;
    let received = sqs
        .receive_message()
        .queue_url(stack.queue_url("ProjectorDlq"))
        .max_number_of_messages(10)
        .send()
        .await
        .expect("ReceiveMessage")
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 1, "{received:?}");
    let body = received[0].body.clone().unwrap_or_default();
    assert!(
        body.chars().all(ftgo_domain::order::is_message_char),
        "only characters SQS accepts: {body}"
    );
    let letter: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(letter["reason"], "UNDECODABLE");
    assert_eq!(
        letter["record"],
        serde_json::to_value(&records[1]).expect("record JSON"),
        "the escaped body decodes to the record itself"
    );
    assert_eq!(
        letter["record"]["dynamodb"]["NewImage"]["restaurantName"]["S"],
        hostile
    );
    assert_eq!(
        side.view("0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a7d")
            .await
            .and_then(|v| v.status),
        Some(OrderStatus::Cancelled),
        "and the record after it lands"
    );
}

/// A projector on `moto` whose clients go through `faults`.
async fn faulted(
    moto: &Emulator,
    side: &ReadSide,
    faults: &ftgo_aws::faults::FaultLayer,
) -> ftgo_aws::projector::Projector {
    let sdk = faults.apply(&moto.sdk_config().await);
    ftgo_aws::projector::Projector::from_config(&sdk, &side.config).expect("projector")
}

#[tokio::test]
async fn throttled_view_updates_and_dead_letters_are_retried_until_they_pass_never_skipped() {
    use ftgo_aws::faults::{FaultKind, FaultLayer, FaultPlan, Rule};
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let faults = FaultLayer::new(FaultPlan::scripted());
    let projector = faulted(moto, &side, &faults).await;
    // Throttling that outlasts the SDK's own retries, on the view's update and on the DLQ.
    faults.push_rule(
        Rule::new(FaultKind::Throttle)
            .operation("UpdateItem")
            .times(7),
    );
    faults.push_rule(
        Rule::new(FaultKind::Throttle)
            .operation("SendMessage")
            .times(7),
    );
    let records = sample_records(POISON);
    let mut pending = records.clone();
    let mut reported = 0;
    for _ in 0..20 {
        if pending.is_empty() {
            break;
        }
        let response = projector
            .process_batch(&read_side::batch(pending.clone()))
            .await;
        // Lambda retries from the lowest reported record (MaximumRetryAttempts: -1). The
        // streams of a batch are worked concurrently: the throttled update and the throttled
        // dead letter may be reported by one invocation.
        reported += failures(&response).len();
        let from = match failures(&response).first() {
            Some(sequence) => pending
                .iter()
                .position(|r| &read_side::sequence_number(r) == sequence)
                .expect("a reported record is one of the batch"),
            None => pending.len(),
        };
        pending.drain(..from);
    }
    assert!(pending.is_empty(), "still failing: {pending:?}");
    assert!(
        reported >= 2,
        "throttling past the SDK's retries is reported, not swallowed ({reported})"
    );
    assert!(faults.counts().of(FaultKind::Throttle, "UpdateItem") >= 7);
    assert!(faults.counts().of(FaultKind::Throttle, "SendMessage") >= 1);
    let projected = side
        .view("0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a7d")
        .await
        .expect("projected once the throttling passed");
    assert_eq!(projected.status, Some(OrderStatus::Cancelled));
    // At least once, never lost: the streams of a batch are worked concurrently, so the poison
    // record may be dead-lettered in the same invocation in which another stream's throttled
    // update fails at a lower sequence number; Lambda then delivers it again (it retries from
    // the lowest reported record) and it is dead-lettered again. Every letter is that record.
    let letters = dead_letters(moto, &stack).await;
    assert!(!letters.is_empty(), "the poison record is dead-lettered");
    for letter in &letters {
        assert_eq!(letter["reason"], "UNDECODABLE", "{letters:?}");
        assert_eq!(
            letter["record"]["dynamodb"]["NewImage"]["eventType"]["S"], "OrderTeleported",
            "only the poison record: {letters:?}"
        );
        assert_eq!(letter["record"], letters[0]["record"], "one record");
    }
}
