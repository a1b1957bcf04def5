//! The `order-history-query` Lambda's handler against the emulators: the answer shapes of
//! DESIGN §3, full pages, and `consistentWith` read-your-writes. Page tokens:
//! `query_page_tokens`; the 400s: `query_validation`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::read_side;

use ftgo_aws::commands::CommandContext;
use ftgo_domain::AggregateType;
use ftgo_domain::delivery::{DeliveryCommand, DeliveryEvent};
use ftgo_domain::order::{CreateOrder, OrderCommand, OrderEvent};
use ftgo_tests::{emulators, unique_id};
use read_side::{
    ReadSide, ago, create_order, curry, encode, order_created, order_history, rfc3339,
    sample_records, stored,
};
use serde_json::json;

const LIFECYCLE: &str = include_str!("../events/order-history-projector/order-lifecycle.json");
const FIND_ORDER: &str = include_str!("../events/order-history-query/find-order.json");
const FIND_ORDER_NOT_FOUND: &str =
    include_str!("../events/order-history-query/find-order-not-found.json");
const FIND_ORDER_CONSISTENT: &str =
    include_str!("../events/order-history-query/find-order-consistent-with.json");
const FIND_HISTORY: &str = include_str!("../events/order-history-query/find-order-history.json");
const FIND_HISTORY_BAD_PAGE_SIZE: &str =
    include_str!("../events/order-history-query/find-order-history-bad-page-size.json");

#[tokio::test]
async fn samples_answer_through_the_real_handler() {
    for emulator in emulators().await {
        let (side, _stack) = ReadSide::fresh(emulator).await;
        let records = sample_records(LIFECYCLE);
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

/// An order of `consumer_id` at Ajanta: two Chicken Vindaloo.
fn create_command(consumer_id: &str) -> CreateOrder {
    create_order(consumer_id, "Ajanta", &[("Chicken Vindaloo", 2, 1234)])
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

        side.project_table(&order_id).await;
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
        side.project_table(&order_id).await;
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
