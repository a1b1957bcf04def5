//! Page tokens of the `order-history-query` Lambda's handler against the emulators: forged and
//! foreign tokens answer 400; tokens name the key that sealed them and survive one rotation of
//! the secret (moto's Secrets Manager).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::read_side;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ftgo_aws::lambda::order_history_query::OrderHistoryQuery;
use ftgo_aws::store::page_token_key::{PageTokenKeys, RefreshPolicy};
use ftgo_tests::{Emulator, emulators, unique_id};
use read_side::{Answer, ReadSide, ago, curry, encode, order_history};
use serde_json::json;

/// Asserts `answer` refuses a page token: 400 `VALIDATION_FAILED` naming `pageToken`.
fn assert_token_refused(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 400, "{what}: {}", answer.body);
    assert_eq!(answer.code(), "VALIDATION_FAILED");
    assert!(
        answer.message().contains("pageToken"),
        "{}",
        answer.message()
    );
}

#[tokio::test]
async fn forged_and_foreign_page_tokens_answer_400() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let consumer_id = unique_id("consumer");
        for i in 0..3 {
            side.project(&order_history(
                &unique_id("order"),
                &curry(&consumer_id),
                ago(10 + i),
                &[],
            ))
            .await;
        }
        let base = format!("/consumers/{consumer_id}/orders?pageSize=1");
        let token = side
            .get(&base)
            .await
            .next_page_token()
            .expect("a second page");
        let second = side
            .get(&format!("{base}&pageToken={}", encode(&token)))
            .await;
        assert_eq!(second.status, 200);
        assert_eq!(second.order_ids().len(), 1);

        let refused = |url: String| {
            let side = &side;
            async move { assert_token_refused(&side.get(&url).await, &url) }
        };
        // Another consumer's path, another filter: foreign.
        let other = unique_id("consumer");
        refused(format!(
            "/consumers/{other}/orders?pageSize=1&pageToken={}",
            encode(&token)
        ))
        .await;
        refused(format!(
            "{base}&status=APPROVED&pageToken={}",
            encode(&token)
        ))
        .await;
        refused(format!("{base}&keyword=naan&pageToken={}", encode(&token))).await;
        // Modified payload with the old seal, a truncated seal, garbage: forged.
        let (key_id, rest) = token.split_once('.').expect("key id.payload.seal");
        let (payload, seal) = rest.split_once('.').expect("payload.seal");
        let mut body: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64"))
                .expect("json");
        body["d"] = json!(0);
        let tampered = format!(
            "{key_id}.{}.{seal}",
            URL_SAFE_NO_PAD.encode(body.to_string())
        );
        refused(format!("{base}&pageToken={}", encode(&tampered))).await;
        refused(format!(
            "{base}&pageToken={}",
            encode(&token[..token.len() - 2])
        ))
        .await;
        refused(format!("{base}&pageToken=not-a-token")).await;
        let _ = side.kind;
    }
}

/// The key id a page token carries (`<key id>.<payload>.<seal>`).
fn key_id(token: &str) -> &str {
    token.split_once('.').map_or("", |(id, _)| id)
}

/// What `aws secretsmanager put-secret-value` does: a new version becomes AWSCURRENT and the
/// one before it AWSPREVIOUS.
async fn rotate(secrets: &aws_sdk_secretsmanager::Client, secret: &str) -> String {
    secrets
        .put_secret_value()
        .secret_id(secret)
        .secret_string(format!("{}{}", unique_id("k"), unique_id("k")))
        .send()
        .await
        .expect("PutSecretValue")
        .version_id
        .expect("a version id")
}

#[tokio::test]
async fn page_tokens_name_their_key_and_survive_one_rotation_of_the_secret() {
    let emulator = Emulator::moto().await;
    // A stack of its own: rotating the shared stack's key would disturb the other tests.
    let (mut warm, stack) = ReadSide::fresh(emulator).await;
    let secret = stack.secret_name("PageTokenKey").to_owned();
    let secrets = stack.secrets_manager().await;
    // A container that re-reads the secret whenever a token names a key it does not know.
    warm.query = OrderHistoryQuery::new(
        warm.dao.clone(),
        PageTokenKeys::from_config(&stack.secrets_sdk_config().await, &warm.config)
            .expect("keys")
            .with_refresh(RefreshPolicy {
                max_age: std::time::Duration::from_secs(3600),
                min_interval: std::time::Duration::ZERO,
            }),
    )
    .with_role_claims(warm.config.role_claims.clone());
    let consumer_id = unique_id("consumer");
    for i in 0..4 {
        warm.project(&order_history(
            &unique_id("order"),
            &curry(&consumer_id),
            ago(10 + i),
            &[],
        ))
        .await;
    }
    let base = format!("/consumers/{consumer_id}/orders?pageSize=1");
    let page = |token: &str| format!("{base}&pageToken={}", encode(token));
    let first = warm.get(&base).await;
    let old_token = first.next_page_token().expect("a second page");
    let current = secrets
        .get_secret_value()
        .secret_id(&secret)
        .send()
        .await
        .expect("GetSecretValue");
    assert_eq!(
        Some(key_id(&old_token)),
        current.version_id(),
        "the token names the secret's current version"
    );

    let new_version = rotate(&secrets, &secret).await;
    // A container started after the rotation opens the old token with the previous key and
    // seals the next one with the new key.
    let cold = ReadSide::on(emulator, &stack).await;
    let second = cold.get(&page(&old_token)).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(
        second.order_ids(),
        warm.get(&page(&old_token)).await.order_ids()
    );
    let new_token = second.next_page_token().expect("a third page");
    assert_eq!(key_id(&new_token), new_version);
    assert_ne!(key_id(&new_token), key_id(&old_token));
    // The warm container has never seen the new key: it reads the secret again and opens it.
    let third = warm.get(&page(&new_token)).await;
    assert_eq!(third.status, 200, "{}", third.body);
    assert_eq!(third.order_ids().len(), 1);

    // A key id the secret never had: refused like a forged token.
    let (_, rest) = new_token.split_once('.').expect("key id.rest");
    let made_up = format!("{}.{rest}", uuid_like());
    for side in [&cold, &warm] {
        assert_token_refused(&side.get(&page(&made_up)).await, "a made-up key id");
    }

    // A second rotation retires the first key: its tokens are refused, the second key's open.
    rotate(&secrets, &secret).await;
    let later = ReadSide::on(emulator, &stack).await;
    let retired = later.get(&page(&old_token)).await;
    assert_eq!(retired.status, 400, "{}", retired.body);
    assert_eq!(retired.code(), "VALIDATION_FAILED");
    assert_eq!(later.get(&page(&new_token)).await.status, 200);
}

/// A version-id-shaped id no secret has.
fn uuid_like() -> String {
    unique_id("x").trim_start_matches("x-").to_owned()
}
