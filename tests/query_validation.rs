//! The 400s of the `order-history-query` Lambda's handler against the emulators: every bad
//! parameter answers 400 naming it, and no client-sent limit answers 500 (DynamoDB Local
//! enforces the 4 KB expression limit).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::read_side;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ftgo_tests::{emulators, unique_id};
use read_side::{ReadSide, ago, curry, encode, order_created, order_history};
use serde_json::json;
use time::OffsetDateTime;

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
