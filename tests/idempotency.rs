//! The `Idempotency-Key` records in DynamoDB (moto server and, when Java is here, DynamoDB
//! Local), provisioned from `template.yaml`: claiming, replaying, reuse, in progress, expiry.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use std::collections::BTreeMap;
use std::time::Duration;

use ftgo_aws::store::idempotency::{
    Claim, Decision, IdempotencyStore, IdempotentRequest, Record, Status, StoredResponse,
};
use ftgo_tests::{Emulator, emulators, unique_id};
use time::OffsetDateTime;

async fn store_on(emulator: &Emulator) -> IdempotencyStore {
    IdempotencyStore::new(
        emulator.dynamodb().await,
        emulator.stack().table_name("IdempotencyTable"),
    )
}

fn request(body: &str) -> IdempotentRequest {
    IdempotentRequest::new("c-1", "POST", "/orders", &unique_id("key"), body.as_bytes())
}

fn same_key_other_body(request: &IdempotentRequest, body: &str) -> IdempotentRequest {
    IdempotentRequest {
        record_key: request.record_key.clone(),
        payload_hash: IdempotentRequest::new("", "", "", "", body.as_bytes()).payload_hash,
    }
}

fn answer() -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: BTreeMap::from([
            ("location".to_owned(), "/orders/o-1".to_owned()),
            ("etag".to_owned(), "\"1\"".to_owned()),
        ]),
        body: r#"{"orderId":"o-1","version":1}"#.to_owned(),
    }
}

fn in_a_minute(now: OffsetDateTime) -> OffsetDateTime {
    now + Duration::from_secs(60)
}

async fn acquire(
    store: &IdempotencyStore,
    request: &IdempotentRequest,
    now: OffsetDateTime,
) -> String {
    match store.claim(request, now, in_a_minute(now)).await {
        Ok(Claim::Acquired { owner }) => owner,
        other => panic!("expected to acquire the key, got {other:?}"),
    }
}

async fn decision(
    store: &IdempotencyStore,
    request: &IdempotentRequest,
    now: OffsetDateTime,
) -> Decision {
    match store.claim(request, now, in_a_minute(now)).await {
        Ok(Claim::Decided(decision)) => decision,
        other => panic!("expected a decision, got {other:?}"),
    }
}

#[tokio::test]
async fn a_completed_key_replays_its_answer_and_refuses_another_body() {
    for emulator in emulators().await {
        let store = store_on(emulator).await;
        let now = OffsetDateTime::now_utc();
        let first = request(r#"{"a":1}"#);
        let owner = acquire(&store, &first, now).await;
        store
            .complete(&first, &owner, answer(), now)
            .await
            .expect("completed");
        assert_eq!(
            decision(&store, &first, now).await,
            Decision::Replay(answer()),
            "{}",
            emulator.kind()
        );
        let other = same_key_other_body(&first, r#"{"a":2}"#);
        assert_eq!(
            decision(&store, &other, now).await,
            Decision::Reused,
            "{}",
            emulator.kind()
        );
    }
}

#[tokio::test]
async fn a_running_key_makes_others_wait_until_it_completes_or_is_released() {
    for emulator in emulators().await {
        let store = store_on(emulator).await;
        let now = OffsetDateTime::now_utc();
        let first = request("{}");
        let owner = acquire(&store, &first, now).await;
        assert_eq!(
            decision(&store, &first, now).await,
            Decision::InProgress,
            "{}",
            emulator.kind()
        );
        // A failed call releases the key: the same request may run again.
        store.release(&first, &owner).await.expect("released");
        let again = acquire(&store, &first, now).await;
        assert_ne!(again, owner);
        // A release by a call that no longer holds the key changes nothing.
        assert!(store.release(&first, &owner).await.is_err());
        assert_eq!(
            decision(&store, &first, now).await,
            Decision::InProgress,
            "{}",
            emulator.kind()
        );
    }
}

#[tokio::test]
async fn expired_and_abandoned_records_are_ignored() {
    for emulator in emulators().await {
        let store = store_on(emulator).await;
        let now = OffsetDateTime::now_utc();

        // Completed 25 hours ago (TTL has not deleted it yet): the key is free.
        let old = request("{}");
        let owner = acquire(&store, &old, now).await;
        store
            .complete(&old, &owner, answer(), now - Duration::from_secs(25 * 3600))
            .await
            .expect("completed");
        acquire(&store, &old, now).await;

        // In progress, but its function's deadline has passed: abandoned, the key is free.
        let abandoned = request("{}");
        let deadline = now + Duration::from_secs(2);
        match store.claim(&abandoned, now, deadline).await {
            Ok(Claim::Acquired { .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decision(&store, &abandoned, now).await,
            Decision::InProgress
        );
        acquire(&store, &abandoned, now + Duration::from_secs(3)).await;

        // A record written by hand with `expiresAt` in the past.
        let stale = request("{}");
        let record = Record {
            idempotency_key: stale.record_key.clone(),
            status: Status::Completed,
            payload_hash: stale.payload_hash.clone(),
            expires_at: now.unix_timestamp() - 1,
            in_progress_expires_at: 0,
            owner: "someone".to_owned(),
            response: Some(answer()),
        };
        emulator
            .dynamodb()
            .await
            .put_item()
            .table_name(emulator.stack().table_name("IdempotencyTable"))
            .set_item(Some(serde_dynamo::to_item(&record).expect("item")))
            .send()
            .await
            .expect("written");
        acquire(&store, &stale, now).await;
    }
}

#[tokio::test]
async fn the_table_is_provisioned_from_the_template_with_its_ttl() {
    for emulator in emulators().await {
        let ttl = emulator
            .dynamodb()
            .await
            .describe_time_to_live()
            .table_name(emulator.stack().table_name("IdempotencyTable"))
            .send()
            .await
            .expect("described");
        let description = ttl.time_to_live_description().expect("TTL description");
        assert_eq!(
            description.attribute_name(),
            Some(ftgo_aws::config::idempotency_table::EXPIRES_AT),
            "{}",
            emulator.kind()
        );
    }
}
