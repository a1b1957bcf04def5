//! `ftgo dlq list|redrive|discard` against moto: a poison record is dead-lettered by the projector,
//! listed with its reason, kept while its cause stands, applied once the cause is fixed (and
//! then gone from the queue); a Lambda on-failure message (shard and sequence range only) is
//! turned into a re-read of its events from the stream and the event table.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::read_side;

use ftgo_aws::dlq::{self, DeadLetterQueue, Letter, Redriven};
use ftgo_domain::order::{OrderEvent, OrderStatus};
use ftgo_tests::{Emulator, TestStack, queue_depth, unique_id};
use read_side::{ReadSide, at, order_created, order_history, record_of};

fn projector_dlq(stack: &TestStack) -> DeadLetterQueue {
    stack
        .template()
        .dead_letter_queues()
        .into_iter()
        .find(|q| q.logical_id == "ProjectorDlq")
        .map(|q| DeadLetterQueue {
            url: stack.queue_url("ProjectorDlq").to_owned(),
            ..q
        })
        .expect("the projector's DLQ is a dead-letter queue of the template")
}

#[tokio::test]
async fn discard_deletes_only_the_named_dead_letter_and_answers_it_whole() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let sqs = moto.sqs().await;
    let queue = projector_dlq(&stack);

    // Two poison records of two orders: two dead letters.
    let mut poisons = Vec::new();
    for _ in 0..2 {
        let order_id = unique_id("order");
        let mut broken = order_history(
            &order_id,
            &order_created("c", "Ajanta", &[("Naan", 1, 300)]),
            at(0),
            &[],
        )
        .remove(0);
        broken.event_type = "OrderTeleported".into();
        side.append(std::slice::from_ref(&broken)).await;
        let response = side.deliver(vec![record_of(&broken)]).await;
        assert!(response.batch_item_failures.is_empty());
        poisons.push(broken);
    }
    let listed = dlq::list(&sqs, &queue).await.expect("list");
    assert_eq!(listed.len(), 2, "{listed:?}");

    // An id the queue does not hold: nothing deleted, nothing left in flight.
    let none = dlq::discard(&sqs, &queue, "no-such-message")
        .await
        .expect("discard");
    assert!(none.is_none());
    assert_eq!(
        queue_depth(&sqs, &queue.url).await,
        (2, 0),
        "(visible, in flight)"
    );

    // The named one: answered whole (to keep), deleted; the other stays visible.
    let target = &listed[1];
    let discarded = dlq::discard(&sqs, &queue, &target.message_id)
        .await
        .expect("discard")
        .expect("the listed message is there");
    assert_eq!(discarded.message_id, target.message_id);
    assert_eq!(discarded.body, target.body);
    let left = dlq::list(&sqs, &queue).await.expect("list");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].message_id, listed[0].message_id);
    assert_eq!(
        queue_depth(&sqs, &queue.url).await,
        (1, 0),
        "(visible, in flight)"
    );
    assert!(
        poisons
            .iter()
            .any(|p| discarded.subject == format!("Order#{} v1", p.aggregate_id)),
        "{}",
        discarded.subject
    );
}

#[tokio::test]
async fn a_poison_record_is_listed_with_its_reason_kept_until_fixed_then_redriven_and_gone() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let sqs = moto.sqs().await;
    let streams = aws_sdk_dynamodbstreams::Client::new(&moto.sdk_config().await);
    let queue = projector_dlq(&stack);
    assert_eq!(queue.consumer.as_deref(), Some("order-history-projector"));

    let order_id = unique_id("order");
    let events = order_history(
        &order_id,
        &order_created("c", "Ajanta", &[("Naan", 1, 300)]),
        at(0),
        &[OrderEvent::OrderApproved {}],
    );
    let mut broken = events[1].clone();
    broken.event_type = "OrderTeleported".into();
    side.append(&[events[0].clone(), broken.clone()]).await;
    let response = side
        .deliver(vec![record_of(&events[0]), record_of(&broken)])
        .await;
    assert!(response.batch_item_failures.is_empty());

    // list: the reason the projector gave, and the event it names; listing consumes nothing.
    let listed = dlq::list(&sqs, &queue).await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(matches!(listed[0].letter, Letter::Projector(_)));
    assert!(
        listed[0].reason.contains("OrderTeleported"),
        "{}",
        listed[0].reason
    );
    assert_eq!(listed[0].subject, format!("Order#{order_id} v2"));
    assert_eq!(dlq::list(&sqs, &queue).await.expect("list").len(), 1);

    // redrive while the cause stands: kept, with the reason.
    let outcomes = dlq::redrive(&sqs, &streams, &side.projector, &queue)
        .await
        .expect("redrive");
    assert_eq!(outcomes.len(), 1);
    assert!(
        matches!(&outcomes[0].1, Redriven::Kept(reason) if reason.contains("OrderTeleported")),
        "{:?}",
        outcomes[0].1
    );
    assert_eq!(dlq::list(&sqs, &queue).await.expect("list").len(), 1);
    assert_eq!(
        side.view(&order_id).await.and_then(|v| v.status),
        Some(OrderStatus::ApprovalPending)
    );

    // fix the cause (the event as it should have been written), redrive: applied, gone.
    side.dynamodb
        .put_item()
        .table_name(&side.config.events_table)
        .set_item(Some(serde_dynamo::to_item(&events[1]).expect("item")))
        .send()
        .await
        .expect("PutItem");
    let outcomes = dlq::redrive(&sqs, &streams, &side.projector, &queue)
        .await
        .expect("redrive");
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].1, Redriven::Applied { events: 1 });
    assert_eq!(
        side.view(&order_id).await.and_then(|v| v.status),
        Some(OrderStatus::Approved)
    );
    assert!(dlq::list(&sqs, &queue).await.expect("list").is_empty());
    // Gone, not merely in flight: neither visible nor received-and-hidden.
    assert_eq!(
        queue_depth(&sqs, &queue.url).await,
        (0, 0),
        "(visible, in flight)"
    );
}

#[tokio::test]
async fn a_lambda_on_failure_message_is_reread_from_the_stream_and_applied_idempotently() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let sqs = moto.sqs().await;
    let streams = aws_sdk_dynamodbstreams::Client::new(&moto.sdk_config().await);
    let queue = projector_dlq(&stack);

    let order_id = unique_id("order");
    let events = order_history(
        &order_id,
        &order_created("c", "Ajanta", &[("Naan", 1, 300)]),
        at(0),
        &[OrderEvent::OrderApproved {}, OrderEvent::OrderCancelled {}],
    );
    side.append(&events).await;
    // The first event reached the view; Lambda gave up on the batch of the other two.
    side.project(&events[..1]).await;

    let stream_arn = stack.stream_arn("EventsTable").to_owned();
    let shard = streams
        .describe_stream()
        .stream_arn(&stream_arn)
        .send()
        .await
        .expect("DescribeStream")
        .stream_description
        .and_then(|d| d.shards)
        .and_then(|s| s.into_iter().next())
        .and_then(|s| s.shard_id)
        .expect("a shard");
    let iterator = streams
        .get_shard_iterator()
        .stream_arn(&stream_arn)
        .shard_id(&shard)
        .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator")
        .shard_iterator
        .expect("iterator");
    let sequence: Vec<String> = streams
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .expect("GetRecords")
        .records
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.dynamodb.and_then(|d| d.sequence_number))
        .collect();
    assert_eq!(sequence.len(), 3, "the stream holds the three events");
    let message = serde_json::json!({
        "requestContext": {"requestId": "r", "functionArn": "f", "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0", "timestamp": "2026-01-01T00:00:00Z",
        "DDBStreamBatchInfo": {"shardId": shard, "startSequenceNumber": sequence[0], "endSequenceNumber": sequence[2],
            "approximateArrivalOfFirstRecord": "2026-01-01T00:00:00Z", "approximateArrivalOfLastRecord": "2026-01-01T00:00:01Z",
            "batchSize": 3, "streamArn": stream_arn}
    });
    sqs.send_message()
        .queue_url(&queue.url)
        .message_body(message.to_string())
        .send()
        .await
        .expect("SendMessage");

    let listed = dlq::list(&sqs, &queue).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert!(matches!(listed[0].letter, Letter::OnFailure(_)));
    assert!(listed[0].reason.contains("RetryAttemptsExhausted"));

    let outcomes = dlq::redrive(&sqs, &streams, &side.projector, &queue)
        .await
        .expect("redrive");
    assert_eq!(outcomes.len(), 1);
    assert_eq!(
        outcomes[0].1,
        Redriven::Applied { events: 3 },
        "the first event counts as applied: the view had it"
    );
    assert_eq!(
        side.view(&order_id).await.and_then(|v| v.status),
        Some(OrderStatus::Cancelled)
    );
    assert!(dlq::list(&sqs, &queue).await.expect("list").is_empty());
    // Gone, not merely in flight: neither visible nor received-and-hidden.
    assert_eq!(
        queue_depth(&sqs, &queue.url).await,
        (0, 0),
        "(visible, in flight)"
    );
}

#[tokio::test]
async fn an_on_failure_message_the_stream_no_longer_holds_is_repaired_from_the_event_table() {
    let moto = Emulator::moto().await;
    let (side, stack) = ReadSide::fresh(moto).await;
    let sqs = moto.sqs().await;
    let streams = aws_sdk_dynamodbstreams::Client::new(&moto.sdk_config().await);
    let queue = projector_dlq(&stack);

    // Two orders; Lambda skipped the last events of both (their records are past the stream's
    // 24-hour retention: the shard named below no longer exists).
    let (first, second) = (unique_id("order"), unique_id("order"));
    let history = |id: &str, then: &[OrderEvent]| {
        order_history(
            id,
            &order_created("c", "Ajanta", &[("Naan", 1, 300)]),
            at(0),
            then,
        )
    };
    let first_events = history(
        &first,
        &[OrderEvent::OrderApproved {}, OrderEvent::OrderCancelled {}],
    );
    let second_events = history(&second, &[OrderEvent::OrderRejected {}]);
    side.append(&first_events).await;
    side.append(&second_events).await;
    side.project(&first_events[..1]).await;
    let message = serde_json::json!({
        "requestContext": {"requestId": "r", "functionArn": "f", "condition": "RecordAgeExceeded", "approximateInvokeCount": 4000},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0", "timestamp": "2026-11-02T12:00:00Z",
        "DDBStreamBatchInfo": {"shardId": "shardId-00000000000000000000-trimmed", "startSequenceNumber": "100", "endSequenceNumber": "400",
            "approximateArrivalOfFirstRecord": at(0).format(&time::format_description::well_known::Rfc3339).unwrap(),
            "approximateArrivalOfLastRecord": at(2).format(&time::format_description::well_known::Rfc3339).unwrap(),
            "batchSize": 4, "streamArn": stack.stream_arn("EventsTable")}
    });
    let send = || async {
        sqs.send_message()
            .queue_url(&queue.url)
            .message_body(message.to_string())
            .send()
            .await
            .expect("SendMessage");
    };
    send().await;

    let outcomes = dlq::redrive(&sqs, &streams, &side.projector, &queue)
        .await
        .expect("redrive");
    assert_eq!(outcomes.len(), 1);
    assert_eq!(
        outcomes[0].1,
        Redriven::Applied { events: 4 },
        "cancelled and approved of the first order, created and rejected of the second"
    );
    assert_eq!(
        side.view(&first).await.and_then(|v| v.status),
        Some(OrderStatus::Cancelled)
    );
    assert_eq!(
        side.view(&second).await.and_then(|v| v.status),
        Some(OrderStatus::Rejected)
    );
    assert!(dlq::list(&sqs, &queue).await.expect("list").is_empty());

    // Re-driving the same message again changes nothing and applies nothing.
    send().await;
    let outcomes = dlq::redrive(&sqs, &streams, &side.projector, &queue)
        .await
        .expect("redrive");
    assert_eq!(outcomes[0].1, Redriven::Applied { events: 0 });
}
