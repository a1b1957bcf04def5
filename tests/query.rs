//! The `order-history-query` Lambda's handler against the emulators: the answer shapes of
//! DESIGN §3, the 400s, sealed page tokens, full pages, and `consistentWith` read-your-writes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

#[path = "fixtures/read_side.rs"]
mod read_side;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ftgo_aws::commands::CommandContext;
use ftgo_aws::lambda::order_history_query::OrderHistoryQuery;
use ftgo_aws::store::page_token_key::{PageTokenKeys, RefreshPolicy};
use ftgo_domain::AggregateType;
use ftgo_domain::Money;
use ftgo_domain::delivery::{DeliveryCommand, DeliveryEvent};
use ftgo_domain::order::{CreateOrder, DeliveryAddress, LineItem, OrderCommand, OrderEvent};
use ftgo_tests::{Emulator, emulators, unique_id};
use read_side::{ReadSide, encode, order_created, order_history, record_of_item, rfc3339, stored};
use serde_json::json;
use time::OffsetDateTime;

const LIFECYCLE: &str = include_str!("../events/order-history-projector/order-lifecycle.json");
const FIND_ORDER: &str = include_str!("../events/order-history-query/find-order.json");
const FIND_ORDER_NOT_FOUND: &str =
    include_str!("../events/order-history-query/find-order-not-found.json");
const FIND_ORDER_CONSISTENT: &str =
    include_str!("../events/order-history-query/find-order-consistent-with.json");
const FIND_HISTORY: &str = include_str!("../events/order-history-query/find-order-history.json");
const FIND_HISTORY_BAD_PAGE_SIZE: &str =
    include_str!("../events/order-history-query/find-order-history-bad-page-size.json");

/// Minutes before now (the default window is the last 30 days up to now).
fn ago(minutes: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() - time::Duration::minutes(minutes)
}

fn curry(consumer_id: &str) -> OrderEvent {
    order_created(
        consumer_id,
        "Ajanta",
        &[("Chicken Vindaloo", 2, 1234), ("Garlic Naan", 1, 350)],
    )
}

#[tokio::test]
async fn samples_answer_through_the_real_handler() {
    for emulator in emulators().await {
        let (side, _stack) = ReadSide::fresh(emulator).await;
        let records = serde_json::from_str::<aws_lambda_events::dynamodb::Event>(LIFECYCLE)
            .expect("sample batch")
            .records;
        // Before the projector ran, the read-your-writes sample is told to retry.
        let early = side.get_sample(FIND_ORDER_CONSISTENT).await;
        assert_eq!(early.status, 409);
        assert_eq!(early.code(), "VIEW_NOT_CAUGHT_UP");
        assert!(side.deliver(records).await.batch_item_failures.is_empty());

        let found = side.get_sample(FIND_ORDER).await;
        assert_eq!(found.status, 200, "{}", found.body);
        assert_eq!(
            found.body,
            json!({
                "orderId": "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                "consumerId": "c-1",
                "status": "APPROVED",
                "deliveryStatus": "DELIVERED",
                "restaurantId": "r-1",
                "restaurantName": "Ajanta",
                "lineItems": [
                    {"menuItemId": "m-1", "name": "Chicken Vindaloo", "quantity": 2, "price": "12.34"},
                    {"menuItemId": "m-2", "name": "Garlic Naan", "quantity": 1, "price": "3.50"}
                ],
                "orderTotal": "28.18",
                "creationDate": "2026-11-26T16:59:00.123Z"
            }),
            "on {}",
            side.kind
        );
        assert_eq!(side.get_sample(FIND_ORDER_CONSISTENT).await.status, 200);
        assert_eq!(side.get_sample(FIND_ORDER_NOT_FOUND).await.status, 404);
        let history = side.get_sample(FIND_HISTORY).await;
        assert_eq!(history.status, 200, "{}", history.body);
        assert_eq!(
            history.order_ids(),
            ["0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"]
        );
        assert_eq!(history.body["orders"][0], found.body);
        assert_eq!(history.next_page_token(), None);
        let bad = side.get_sample(FIND_HISTORY_BAD_PAGE_SIZE).await;
        assert_eq!(bad.status, 400);
        assert!(bad.message().contains("pageSize"));
    }
}

#[tokio::test]
async fn find_order_answers_the_view_without_delivery_status_until_pickup() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let (order_id, consumer_id) = (unique_id("order"), unique_id("consumer"));
        let created_at = time::macros::datetime!(2026-10-02 03:04:05.678 UTC);
        let events = order_history(&order_id, &curry(&consumer_id), created_at, &[]);
        side.project(&events).await;
        let answer = side.get(&format!("/orders/{order_id}")).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["status"], "APPROVAL_PENDING");
        assert!(
            answer.body.get("deliveryStatus").is_none(),
            "{}",
            answer.body
        );
        assert_eq!(answer.body["orderTotal"], "28.18");
        assert_eq!(answer.body["lineItems"][0]["price"], "12.34");
        assert_eq!(answer.body["creationDate"], "2026-10-02T03:04:05.678Z");
        assert_eq!(
            answer
                .headers
                .get("content-type")
                .map(|v| v.to_str().unwrap_or_default()),
            Some("application/json")
        );
        assert!(
            answer.body.get("keywords").is_none(),
            "internal attributes stay inside"
        );
        assert!(answer.body.get("orderVersion").is_none());

        let pickup = stored(
            AggregateType::Delivery,
            &order_id,
            1,
            &DeliveryEvent::DeliveryPickedUp {},
            created_at,
        );
        side.project(std::slice::from_ref(&pickup)).await;
        let answer = side.get(&format!("/orders/{order_id}")).await;
        assert_eq!(
            answer.body["deliveryStatus"], "PICKED_UP",
            "on {}",
            side.kind
        );
    }
}

#[tokio::test]
async fn unknown_and_delivery_only_orders_answer_404() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let missing = side.get(&format!("/orders/{}", unique_id("nothing"))).await;
        assert_eq!(missing.status, 404);
        assert_eq!(missing.code(), "NOT_FOUND");
        let order_id = unique_id("order");
        side.project(&[stored(
            AggregateType::Delivery,
            &order_id,
            1,
            &DeliveryEvent::DeliveryPickedUp {},
            ago(1),
        )])
        .await;
        assert!(side.raw_item(&order_id).await.is_some());
        let answer = side.get(&format!("/orders/{order_id}")).await;
        assert_eq!(answer.status, 404, "on {}", side.kind);
    }
}

#[tokio::test]
async fn history_defaults_to_the_last_30_days_newest_first() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let consumer_id = unique_id("consumer");
        let ids: Vec<String> = (0..4).map(|i| unique_id(&format!("o{i}"))).collect();
        // 40 days ago (outside the default window), 2 days, 5 minutes, 1 hour ago.
        for (id, minutes) in ids.iter().zip([40 * 24 * 60, 2 * 24 * 60, 5, 60]) {
            side.project(&order_history(id, &curry(&consumer_id), ago(minutes), &[]))
                .await;
        }
        let answer = side.get(&format!("/consumers/{consumer_id}/orders")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(
            answer.order_ids(),
            [ids[2].as_str(), &ids[3], &ids[1]],
            "on {}",
            side.kind
        );
        assert_eq!(answer.next_page_token(), None);
        let since = encode(&rfc3339(ago(50 * 24 * 60)));
        let all = side
            .get(&format!("/consumers/{consumer_id}/orders?since={since}"))
            .await;
        assert_eq!(all.order_ids().len(), 4);
        // An unencoded `+00:00` offset (a space after form decoding) is still understood.
        let plus = side
            .get(&format!(
                "/consumers/{consumer_id}/orders?since=2020-01-01T00:00:00+00:00"
            ))
            .await;
        assert_eq!(plus.status, 200, "{}", plus.body);
        assert_eq!(plus.order_ids().len(), 4);
    }
}

#[tokio::test]
async fn history_filters_by_status_and_any_keyword_over_http() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let consumer_id = unique_id("consumer");
        let (curry_id, pizza_id) = (unique_id("curry"), unique_id("pizza"));
        side.project(&order_history(
            &curry_id,
            &curry(&consumer_id),
            ago(10),
            &[OrderEvent::OrderApproved {}],
        ))
        .await;
        side.project(&order_history(
            &pizza_id,
            &order_created(
                &consumer_id,
                "Luigi's Trattoria",
                &[("Pizza Margherita", 1, 900)],
            ),
            ago(5),
            &[],
        ))
        .await;
        let path = format!("/consumers/{consumer_id}/orders");
        let get = |query: &str| {
            let path = format!("{path}?{query}");
            let side = &side;
            async move { side.get(&path).await.order_ids() }
        };
        assert_eq!(get("status=APPROVED").await, [curry_id.as_str()]);
        assert_eq!(get("status=APPROVAL_PENDING").await, [pizza_id.as_str()]);
        assert!(get("status=CANCELLED").await.is_empty());
        assert_eq!(
            get("keyword=sushi&keyword=VINDALOO").await,
            [curry_id.as_str()]
        );
        assert_eq!(get("keyword=trattoria").await, [pizza_id.as_str()]);
        assert_eq!(
            get("keyword=naan&keyword=pizza").await,
            [pizza_id.as_str(), &curry_id]
        );
        assert_eq!(get("keyword=chicken%20vindaloo").await, [curry_id.as_str()]);
        assert!(get("keyword=vinda").await.is_empty(), "whole words only");
        assert!(
            get("keyword=pizza&status=APPROVED").await.is_empty(),
            "on {}",
            side.kind
        );
    }
}

#[tokio::test]
async fn pages_are_full_and_the_last_has_no_token() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let consumer_id = unique_id("consumer");
        let mut curries = Vec::new();
        for i in 0..30 {
            let id = unique_id(&format!("o{i}"));
            let created = if i % 4 == 0 {
                curries.push(id.clone());
                curry(&consumer_id)
            } else {
                order_created(&consumer_id, "Luigi's", &[("Pizza", 1, 900)])
            };
            side.project(&order_history(&id, &created, ago(100 - i), &[]))
                .await;
        }
        curries.reverse();
        // 8 curries among 30 orders, 3 a page: 3 + 3 + 2.
        let path = format!("/consumers/{consumer_id}/orders?keyword=vindaloo&pageSize=3");
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut sizes = Vec::new();
        loop {
            let url = match &token {
                Some(token) => format!("{path}&pageToken={}", encode(token)),
                None => path.clone(),
            };
            let answer = side.get(&url).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            sizes.push(answer.order_ids().len());
            seen.extend(answer.order_ids());
            token = answer.next_page_token();
            if token.is_none() {
                break;
            }
        }
        assert_eq!(sizes, [3, 3, 2], "on {}", side.kind);
        assert_eq!(seen, curries);

        // Unfiltered, a page ending exactly at the last order has no token either.
        let everything = side
            .get(&format!("/consumers/{consumer_id}/orders?pageSize=30"))
            .await;
        assert_eq!(everything.order_ids().len(), 30);
        assert_eq!(everything.next_page_token(), None, "on {}", side.kind);
    }
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
            async move {
                let answer = side.get(&url).await;
                assert_eq!(answer.status, 400, "{url}: {}", answer.body);
                assert_eq!(answer.code(), "VALIDATION_FAILED");
                assert!(
                    answer.message().contains("pageToken"),
                    "{}",
                    answer.message()
                );
            }
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
    );
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
        let answer = side.get(&page(&made_up)).await;
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert_eq!(answer.code(), "VALIDATION_FAILED");
        assert!(
            answer.message().contains("pageToken"),
            "{}",
            answer.message()
        );
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

#[tokio::test]
async fn every_bad_parameter_answers_400_naming_it() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let consumer = unique_id("consumer");
        let history = format!("/consumers/{consumer}/orders");
        let cases = [
            ("status=SHIPPED", "status"),
            ("status=APPROVED&status=REJECTED", "status"),
            ("since=yesterday", "since"),
            ("until=2026-13-01T00:00:00Z", "until"),
            (
                "since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z",
                "since",
            ),
            ("since=2999-01-01T00:00:00Z", "since"),
            ("pageSize=0", "pageSize"),
            ("pageSize=101", "pageSize"),
            ("pageSize=ten", "pageSize"),
            ("pageSize=-1", "pageSize"),
            ("keyword=%20--%20", "keyword"),
            ("keyword=", "keyword"),
            ("colour=red", "colour"),
            ("consistentWith=nonsense", "consistentWith"),
        ];
        for (query, field) in cases {
            let answer = side.get(&format!("{history}?{query}")).await;
            assert_eq!(answer.status, 400, "{query}: {}", answer.body);
            assert_eq!(answer.code(), "VALIDATION_FAILED", "{query}");
            assert!(
                answer.message().starts_with(field),
                "{query}: {} should name {field}",
                answer.message()
            );
        }
        let order = format!("/orders/{}", unique_id("order"));
        for (query, field) in [
            ("consistentWith=%%%", "consistentWith"),
            ("pageSize=3", "pageSize"),
        ] {
            let answer = side.get(&format!("{order}?{query}")).await;
            assert_eq!(answer.status, 400, "{query}: {}", answer.body);
            assert!(answer.message().starts_with(field), "{}", answer.message());
        }
        // A token naming another order than the one asked for.
        let token = URL_SAFE_NO_PAD.encode(format!("Order:1:{}", unique_id("other")));
        let answer = side.get(&format!("{order}?consistentWith={token}")).await;
        assert_eq!(answer.status, 400);
        assert!(
            answer.message().starts_with("consistentWith"),
            "on {}",
            side.kind
        );
    }
}

/// A page token sealed with the service's own key, carrying `body` (as a leaked key would let
/// anyone write): the handler must still refuse inconsistent content.
#[tokio::test]
async fn client_sent_limits_answer_400_naming_the_field_never_500() {
    // Distinct ideographs: each one is a word of its own (and 3 bytes of UTF-8).
    let distinct =
        |n: u32| -> String { (0..n).filter_map(|i| char::from_u32(0x4E00 + i)).collect() };
    let mut wrong: Vec<String> = Vec::new();
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let consumer = unique_id("consumer");
        let ideographs = "漢字料理店鶏肉麺飯餃子焼魚豆腐湯茶酒菓米";
        assert_eq!(ideographs.chars().count(), 20);
        let order_id = unique_id("order");
        side.project(&order_history(
            &order_id,
            &order_created(
                &consumer,
                "Ajanta",
                &[(ideographs, 1, 500), ("Garlic Naan", 1, 350)],
            ),
            ago(5),
            &[],
        ))
        .await;
        let history = format!("/consumers/{consumer}/orders");
        let keywords = |values: Vec<String>| {
            values
                .iter()
                .map(|value| format!("keyword={}", encode(value)))
                .collect::<Vec<_>>()
                .join("&")
        };
        // At the limits: 20 words in one keyword (20 ideographs, 60 bytes), and 20 words over
        // 10 keywords. DynamoDB Local enforces the 4 KB expression limit: these must fit.
        let at_limit = side
            .get(&format!(
                "{history}?{}",
                keywords(vec![ideographs.to_owned()])
            ))
            .await;
        assert_eq!(at_limit.status, 200, "on {}: {}", side.kind, at_limit.body);
        assert_eq!(at_limit.order_ids(), std::slice::from_ref(&order_id));
        let ten_of_two: Vec<String> = (0..10).map(|i| format!("garlic w{i}")).collect();
        let answer = side
            .get(&format!(
                "{history}?status=APPROVAL_PENDING&{}",
                keywords(ten_of_two)
            ))
            .await;
        assert_eq!(answer.status, 200, "on {}: {}", side.kind, answer.body);

        // Beyond them: each a 400 naming the field (these were 500s on DynamoDB Local).
        let ten_of_eight: Vec<String> = (0..10)
            .map(|i| {
                (0..8)
                    .map(|w| format!("k{i}w{w}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}")).collect();
        let now = OffsetDateTime::now_utc().unix_timestamp() * 1000;
        let genuine = {
            for i in 0..2 {
                side.project(&order_history(
                    &unique_id("order"),
                    &curry(&consumer),
                    ago(10 + i),
                    &[],
                ))
                .await;
            }
            let token = side
                .get(&format!("{history}?pageSize=1"))
                .await
                .next_page_token()
                .expect("a second page");
            // `<key id>.<payload>.<seal>`: the fingerprint of this consumer without filters is
            // taken from a genuine token.
            let payload = token.split('.').nth(1).expect("keyId.payload.seal");
            let body: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64"))
                    .expect("JSON");
            body
        };
        let with = async |change: serde_json::Value| {
            let mut body = genuine.clone();
            for (key, value) in change.as_object().expect("object") {
                body[key] = value.clone();
            }
            let token = side
                .keys
                .seal(body.to_string().as_bytes())
                .await
                .expect("seal");
            encode(&token)
        };
        let long_id_token = URL_SAFE_NO_PAD.encode(format!("Order:1:{}", "o".repeat(3000)));
        let cases: Vec<(String, &str)> = vec![
            (keywords(vec![distinct(100)]), "keyword"),
            (keywords(vec![distinct(34)]), "keyword"),
            (keywords(ten_of_eight), "keyword"),
            (keywords(eleven), "keyword"),
            (keywords(vec![format!("{ideographs}鮨")]), "keyword"),
            (format!("consistentWith={long_id_token}"), "consistentWith"),
            (
                format!("consistentWith={}", URL_SAFE_NO_PAD.encode("Order:1:o 1")),
                "consistentWith",
            ),
            (
                format!(
                    "pageSize=1&pageToken={}",
                    with(json!({"s": now, "u": now - 1})).await
                ),
                "pageToken",
            ),
            (
                format!("pageSize=1&pageToken={}", with(json!({"d": 0})).await),
                "pageToken",
            ),
            (
                format!("pageSize=1&pageToken={}", with(json!({"o": ""})).await),
                "pageToken",
            ),
            (
                format!(
                    "pageSize=1&pageToken={}",
                    with(json!({"o": "o".repeat(3000)})).await
                ),
                "pageToken",
            ),
        ];
        // The genuine token's content, resealed, still answers: the seal is not the check.
        let resealed = side
            .get(&format!(
                "{history}?pageSize=1&pageToken={}",
                with(json!({})).await
            ))
            .await;
        assert_eq!(resealed.status, 200, "{}", resealed.body);
        for (query, field) in cases {
            let answer = side.get(&format!("{history}?{query}")).await;
            if answer.status != 400
                || answer.code() != "VALIDATION_FAILED"
                || !answer.message().starts_with(field)
            {
                wrong.push(format!(
                    "on {}: {} answered {} {} (expected 400 naming {field})",
                    side.kind,
                    query.chars().take(60).collect::<String>(),
                    answer.status,
                    answer
                        .body
                        .to_string()
                        .chars()
                        .take(160)
                        .collect::<String>()
                ));
            }
        }
        for (path, field) in [
            (
                format!("/consumers/{}/orders", "c".repeat(65)),
                "consumerId",
            ),
            ("/consumers/c%20x/orders".to_owned(), "consumerId"),
            (format!("/orders/{}", "o".repeat(3000)), "orderId"),
            ("/orders/o%231".to_owned(), "orderId"),
            (
                format!("/orders/{order_id}?consistentWith={long_id_token}"),
                "consistentWith",
            ),
        ] {
            let answer = side.get(&path).await;
            if answer.status != 400 || !answer.message().starts_with(field) {
                wrong.push(format!(
                    "on {}: {} answered {} (expected 400 naming {field})",
                    side.kind,
                    path.chars().take(60).collect::<String>(),
                    answer.status
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn create_command(consumer_id: &str) -> CreateOrder {
    CreateOrder {
        consumer_id: consumer_id.to_owned(),
        restaurant_id: "r-1".into(),
        restaurant_name: "Ajanta".into(),
        line_items: vec![LineItem {
            menu_item_id: "m-1".into(),
            name: "Chicken Vindaloo".into(),
            quantity: 2,
            price: Money::from_cents(1234),
        }],
        delivery_address: DeliveryAddress {
            street1: "1 Main St".into(),
            street2: None,
            city: "Oakland".into(),
            state: "CA".into(),
            zip: "94612".into(),
        },
    }
}

/// Projects every event of `order_id` in the event table.
async fn project_table(side: &ReadSide, order_id: &str) {
    let records = side
        .table_items(order_id)
        .await
        .iter()
        .map(record_of_item)
        .collect();
    assert!(side.deliver(records).await.batch_item_failures.is_empty());
}

#[tokio::test]
async fn consistent_with_answers_409_until_the_view_catches_up_then_200() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let consumer_id = unique_id("consumer");
        let context = CommandContext::default();
        let created = side
            .commands
            .create_order(create_command(&consumer_id), &context)
            .await
            .expect("create");
        let order_id = created.aggregate_id.clone();
        let find = format!("/orders/{order_id}?consistentWith={}", created.token());
        let history = format!(
            "/consumers/{consumer_id}/orders?consistentWith={}",
            created.token()
        );

        let early = side.get(&find).await;
        assert_eq!(early.status, 409, "{}", early.body);
        assert_eq!(early.code(), "VIEW_NOT_CAUGHT_UP");
        assert!(early.headers.get("retry-after").is_some());
        assert_eq!(side.get(&history).await.status, 409);

        project_table(&side, &order_id).await;
        let found = side.get(&find).await;
        assert_eq!(found.status, 200, "{}", found.body);
        assert_eq!(found.body["status"], "APPROVAL_PENDING");
        let listed = side.get(&history).await;
        assert_eq!(listed.status, 200, "{}", listed.body);
        assert_eq!(listed.order_ids(), [order_id.as_str()]);

        // Approve and pick up: the older token still passes, the new ones wait.
        let approved = side
            .commands
            .order_action(&order_id, OrderCommand::Approve, &context)
            .await
            .expect("approve");
        let picked = side
            .commands
            .delivery_action(
                &order_id,
                DeliveryCommand::PickUp { order_status: None },
                &context,
            )
            .await
            .expect("pickup");
        for token in [approved.token(), picked.token()] {
            let answer = side
                .get(&format!("/orders/{order_id}?consistentWith={token}"))
                .await;
            assert_eq!(answer.status, 409, "on {}", side.kind);
        }
        assert_eq!(side.get(&find).await.status, 200);
        project_table(&side, &order_id).await;
        let answer = side
            .get(&format!(
                "/orders/{order_id}?consistentWith={}",
                picked.token()
            ))
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["status"], "APPROVED");
        assert_eq!(answer.body["deliveryStatus"], "PICKED_UP");
    }
}
