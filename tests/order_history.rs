//! The order-history view DAO against the emulators (moto, and DynamoDB Local when Java is
//! there): the FTGO DAO scenarios, driven through the real adapter — each event planned by the
//! domain and applied with the DAO's one conditional `UpdateItem`, read back with `GetItem` and
//! the history `Query` on the GSI.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::read_side;

use std::collections::BTreeSet;

use ftgo_aws::store::order_history::{ApplyOutcome, HistoryQuery, epoch_millis};
use ftgo_domain::AggregateType;
use ftgo_domain::delivery::{DeliveryEvent, DeliveryStatus};
use ftgo_domain::event::StoredEvent;
use ftgo_domain::order::{OrderEvent, OrderStatus};
use ftgo_domain::view::{keywords_of, plan};
use ftgo_tests::{emulators, unique_id};
use read_side::{ReadSide, at, curry, order_created, order_history, stored, to_millis};

async fn apply(side: &ReadSide, event: &StoredEvent) -> ApplyOutcome {
    side.dao
        .apply(&plan(event).expect("plan"))
        .await
        .expect("apply")
}

async fn apply_all(side: &ReadSide, events: &[StoredEvent]) {
    for event in events {
        assert_eq!(apply(side, event).await, ApplyOutcome::Applied, "{event:?}");
    }
}

fn query(consumer_id: &str) -> HistoryQuery {
    HistoryQuery {
        consumer_id: consumer_id.to_owned(),
        since: epoch_millis(at(-24 * 60)),
        until: epoch_millis(at(24 * 60)),
        status: None,
        keywords: Vec::new(),
        page_size: 20,
        start_after: None,
    }
}

async fn history_ids(side: &ReadSide, query: &HistoryQuery) -> Vec<String> {
    side.dao
        .history(query)
        .await
        .expect("history")
        .orders
        .into_iter()
        .map(|view| view.order_id)
        .collect()
}

/// Applies the creation of order `order_id`, `created` at [`at`]`(minutes)`.
async fn apply_created(side: &ReadSide, order_id: &str, created: &OrderEvent, minutes: i64) {
    apply_all(side, &order_history(order_id, created, at(minutes), &[])).await;
}

#[tokio::test]
async fn find_order_returns_the_projected_view() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let (order_id, consumer_id) = (unique_id("order"), unique_id("consumer"));
        let events = order_history(
            &order_id,
            &curry(&consumer_id),
            at(0),
            &[OrderEvent::OrderApproved {}],
        );
        apply_all(&side, &events).await;
        let view = side.view(&order_id).await.expect("the order's item");
        assert!(view.is_order());
        assert_eq!(view.consumer_id.as_deref(), Some(consumer_id.as_str()));
        assert_eq!(view.status, Some(OrderStatus::Approved));
        assert_eq!(view.delivery_status, None);
        assert_eq!(view.restaurant_name, "Ajanta");
        assert_eq!(view.line_items.len(), 2);
        assert_eq!(view.order_total.cents(), 2 * 1234 + 350);
        assert_eq!(view.creation_date, Some(at(0)));
        assert_eq!(
            view.keywords,
            BTreeSet::from(["chicken", "vindaloo", "garlic", "naan"].map(String::from))
        );
        assert_eq!(view.restaurant_keywords, keywords_of("Ajanta"));
        assert_eq!(view.order_version, Some(2));
        assert_eq!(
            Some(view),
            read_side::folded(&events).remove(&order_id),
            "on {}",
            side.kind
        );
    }
}

#[tokio::test]
async fn duplicate_created_event_after_cancel_keeps_cancelled() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let (order_id, consumer_id) = (unique_id("order"), unique_id("consumer"));
        let events = order_history(
            &order_id,
            &curry(&consumer_id),
            at(0),
            &[OrderEvent::OrderCancelled {}],
        );
        apply_all(&side, &events).await;
        let before = side.raw_item(&order_id).await;
        assert_eq!(
            apply(&side, &events[0]).await,
            ApplyOutcome::Duplicate { stored: 2 }
        );
        let view = side.view(&order_id).await.expect("item");
        assert_eq!(
            view.status,
            Some(OrderStatus::Cancelled),
            "on {}",
            side.kind
        );
        assert_eq!(side.raw_item(&order_id).await, before);
    }
}

#[tokio::test]
async fn cancel_applied_twice_lands_once() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let (order_id, consumer_id) = (unique_id("order"), unique_id("consumer"));
        let events = order_history(
            &order_id,
            &curry(&consumer_id),
            at(0),
            &[OrderEvent::OrderCancelled {}],
        );
        apply_all(&side, &events).await;
        let before = side.raw_item(&order_id).await;
        assert_eq!(
            apply(&side, &events[1]).await,
            ApplyOutcome::Duplicate { stored: 2 },
            "on {}",
            side.kind
        );
        assert_eq!(side.raw_item(&order_id).await, before);
        assert_eq!(
            side.view(&order_id).await.expect("item").order_version,
            Some(2)
        );
    }
}

#[tokio::test]
async fn a_status_event_before_creation_is_a_gap_and_writes_nothing() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let (order_id, consumer_id) = (unique_id("order"), unique_id("consumer"));
        let events = order_history(
            &order_id,
            &curry(&consumer_id),
            at(0),
            &[OrderEvent::OrderApproved {}, OrderEvent::OrderCancelled {}],
        );
        assert_eq!(
            apply(&side, &events[1]).await,
            ApplyOutcome::Gap { missing_from: 1 },
            "on {}",
            side.kind
        );
        assert_eq!(side.raw_item(&order_id).await, None, "no half order");
        apply(&side, &events[0]).await;
        assert_eq!(
            apply(&side, &events[2]).await,
            ApplyOutcome::Gap { missing_from: 2 },
            "version 3 on version 1 is a gap, never a silent skip of version 2"
        );
        assert_eq!(
            side.view(&order_id).await.expect("item").status,
            Some(OrderStatus::ApprovalPending)
        );
    }
}

#[tokio::test]
async fn a_delivery_only_item_is_not_an_order_and_not_in_history() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let (order_id, consumer_id) = (unique_id("order"), unique_id("consumer"));
        let picked = stored(
            AggregateType::Delivery,
            &order_id,
            1,
            &DeliveryEvent::DeliveryPickedUp {},
            at(5),
        );
        assert_eq!(apply(&side, &picked).await, ApplyOutcome::Applied);
        let view = side.view(&order_id).await.expect("delivery-only item");
        assert!(!view.is_order());
        assert!(history_ids(&side, &query(&consumer_id)).await.is_empty());
        apply_created(&side, &order_id, &curry(&consumer_id), 0).await;
        let view = side.view(&order_id).await.expect("item");
        assert!(view.is_order(), "on {}", side.kind);
        assert_eq!(view.delivery_status, Some(DeliveryStatus::PickedUp));
        assert_eq!(history_ids(&side, &query(&consumer_id)).await, [order_id]);
    }
}

/// Three orders of one consumer: approved, pending, cancelled (oldest to newest).
async fn three_orders(side: &ReadSide, consumer_id: &str) -> [String; 3] {
    let ids = [
        unique_id("approved"),
        unique_id("pending"),
        unique_id("cancelled"),
    ];
    let thens = [
        vec![OrderEvent::OrderApproved {}],
        vec![],
        vec![OrderEvent::OrderCancelled {}],
    ];
    for (minutes, (id, then)) in (0..).zip(ids.iter().zip(thens)) {
        apply_all(
            side,
            &order_history(id, &curry(consumer_id), at(minutes * 10), &then),
        )
        .await;
    }
    ids
}

/// On every emulator: of [`three_orders`] (approved, pending, cancelled) of a fresh consumer,
/// the history filtered by `status` lists exactly the one at `index`.
async fn the_status_filter_lists_only(status: OrderStatus, index: usize) {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let consumer_id = unique_id("consumer");
        let ids = three_orders(&side, &consumer_id).await;
        let mut query = query(&consumer_id);
        query.status = Some(status);
        assert_eq!(
            history_ids(&side, &query).await,
            [ids[index].clone()],
            "on {}",
            side.kind
        );
    }
}

#[tokio::test]
async fn status_filter_finds_only_that_status() {
    the_status_filter_lists_only(OrderStatus::Approved, 0).await;
}

#[tokio::test]
async fn cancelled_filter_excludes_pending() {
    the_status_filter_lists_only(OrderStatus::Cancelled, 2).await;
}

#[tokio::test]
async fn finds_by_menu_item_keyword() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let consumer_id = unique_id("consumer");
        let (vindaloo, pizza) = (unique_id("curry"), unique_id("pizza"));
        apply_created(&side, &vindaloo, &curry(&consumer_id), 0).await;
        apply_created(
            &side,
            &pizza,
            &order_created(&consumer_id, "Luigi's", &[("Pizza Margherita", 1, 900)]),
            1,
        )
        .await;
        let mut query = query(&consumer_id);
        query.keywords = vec![keywords_of("Vindaloo")];
        assert_eq!(
            history_ids(&side, &query).await,
            [vindaloo.as_str()],
            "on {}",
            side.kind
        );
        query.keywords = vec![keywords_of("margherita")];
        assert_eq!(history_ids(&side, &query).await, [pizza]);
        query.keywords = vec![keywords_of("vinda")];
        assert!(
            history_ids(&side, &query).await.is_empty(),
            "whole words only"
        );
    }
}

#[tokio::test]
async fn finds_by_restaurant_name_keyword() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let consumer_id = unique_id("consumer");
        let (ajanta, luigi) = (unique_id("ajanta"), unique_id("luigi"));
        apply_created(&side, &ajanta, &curry(&consumer_id), 0).await;
        apply_created(
            &side,
            &luigi,
            &order_created(&consumer_id, "Luigi's Trattoria", &[("Pizza", 1, 900)]),
            1,
        )
        .await;
        let mut query = query(&consumer_id);
        query.keywords = vec![keywords_of("AJANTA")];
        assert_eq!(
            history_ids(&side, &query).await,
            [ajanta],
            "on {}",
            side.kind
        );
        query.keywords = vec![keywords_of("trattoria")];
        assert_eq!(history_ids(&side, &query).await, [luigi]);
    }
}

#[tokio::test]
async fn two_keywords_where_only_the_second_matches_find_the_order() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let consumer_id = unique_id("consumer");
        let order_id = unique_id("order");
        apply_created(&side, &order_id, &curry(&consumer_id), 0).await;
        let mut query = query(&consumer_id);
        query.keywords = vec![keywords_of("sushi"), keywords_of("naan")];
        assert_eq!(
            history_ids(&side, &query).await,
            [order_id],
            "on {}",
            side.kind
        );
    }
}

#[tokio::test]
async fn revise_replaces_line_items_total_and_keywords() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let (order_id, consumer_id) = (unique_id("order"), unique_id("consumer"));
        let created = curry(&consumer_id);
        let OrderEvent::OrderCreated(details) = &created else {
            unreachable!()
        };
        let kept = vec![details.line_items[1].clone()];
        let events = order_history(
            &order_id,
            &created,
            at(0),
            &[OrderEvent::OrderRevised {
                order_total: kept[0].price,
                line_items: kept,
            }],
        );
        apply_all(&side, &events).await;
        let view = side.view(&order_id).await.expect("item");
        assert_eq!(view.order_total.cents(), 350);
        assert_eq!(
            view.keywords,
            keywords_of("Garlic Naan"),
            "on {}",
            side.kind
        );
        let mut query = query(&consumer_id);
        query.keywords = vec![keywords_of("vindaloo")];
        assert!(history_ids(&side, &query).await.is_empty());
        query.keywords = vec![keywords_of("ajanta")];
        assert_eq!(history_ids(&side, &query).await, [order_id]);
    }
}

#[tokio::test]
async fn history_is_newest_first_within_the_window() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let consumer_id = unique_id("consumer");
        let ids: Vec<String> = (0..4).map(|i| unique_id(&format!("o{i}"))).collect();
        // Created out of order in time: minutes 20, 0, 30, 10.
        for (id, minutes) in ids.iter().zip([20, 0, 30, 10]) {
            apply_created(&side, id, &curry(&consumer_id), minutes).await;
        }
        let mut query = query(&consumer_id);
        assert_eq!(
            history_ids(&side, &query).await,
            [ids[2].as_str(), &ids[0], &ids[3], &ids[1]],
            "on {}",
            side.kind
        );
        query.since = epoch_millis(at(10));
        query.until = epoch_millis(at(20));
        assert_eq!(history_ids(&side, &query).await, [ids[0].as_str(), &ids[3]]);
    }
}

#[tokio::test]
async fn pagination_reads_the_second_page_and_ends_without_a_next_key() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let consumer_id = unique_id("consumer");
        let ids: Vec<String> = (0..5).map(|i| unique_id(&format!("o{i}"))).collect();
        for (minutes, id) in (0..).zip(&ids) {
            apply_created(&side, id, &curry(&consumer_id), minutes).await;
        }
        let mut query = query(&consumer_id);
        query.page_size = 3;
        let first = side.dao.history(&query).await.expect("page 1");
        let first_ids: Vec<&str> = first.orders.iter().map(|v| v.order_id.as_str()).collect();
        assert_eq!(first_ids, [&ids[4], &ids[3], &ids[2]], "on {}", side.kind);
        assert!(first.next.is_some());
        query.start_after = first.next;
        let second = side.dao.history(&query).await.expect("page 2");
        let second_ids: Vec<&str> = second.orders.iter().map(|v| v.order_id.as_str()).collect();
        assert_eq!(second_ids, [&ids[1], &ids[0]]);
        assert_eq!(second.next, None, "the last page has no next key");

        // A page that ends exactly at the last order must not promise another page either
        // (DynamoDB Local returns a LastEvaluatedKey whenever Limit is reached).
        query.start_after = None;
        query.page_size = 5;
        let exact = side.dao.history(&query).await.expect("exact page");
        assert_eq!(exact.orders.len(), 5);
        assert_eq!(exact.next, None, "on {}", side.kind);
    }
}

#[tokio::test]
async fn selective_filters_still_fill_the_page() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let consumer_id = unique_id("consumer");
        let mut approved = Vec::new();
        for i in 0..40 {
            let id = unique_id(&format!("o{i}"));
            let then = if i % 8 == 0 {
                approved.push(id.clone());
                vec![OrderEvent::OrderApproved {}]
            } else {
                vec![]
            };
            apply_all(
                &side,
                &order_history(&id, &curry(&consumer_id), at(i), &then),
            )
            .await;
        }
        approved.reverse();
        let mut query = query(&consumer_id);
        query.status = Some(OrderStatus::Approved);
        query.page_size = 2;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = side.dao.history(&query).await.expect("page");
            pages += 1;
            if page.next.is_some() {
                assert_eq!(page.orders.len(), 2, "a page before the end is full");
            }
            seen.extend(page.orders.into_iter().map(|v| v.order_id));
            match page.next {
                Some(next) => query.start_after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, approved, "on {}", side.kind);
        assert_eq!(pages, 3);
    }
}

#[tokio::test]
async fn stored_view_equals_the_fold_with_delivery_and_revise() {
    for emulator in emulators().await {
        let side = ReadSide::shared(emulator).await;
        let (order_id, consumer_id) = (unique_id("order"), unique_id("consumer"));
        let mut events = order_history(
            &order_id,
            &curry(&consumer_id),
            at(0),
            &[OrderEvent::OrderApproved {}],
        );
        events.push(stored(
            AggregateType::Delivery,
            &order_id,
            1,
            &DeliveryEvent::DeliveryPickedUp {},
            at(30),
        ));
        events.push(stored(
            AggregateType::Delivery,
            &order_id,
            2,
            &DeliveryEvent::DeliveryDelivered {},
            at(50),
        ));
        apply_all(&side, &events).await;
        let view = side.view(&order_id).await.map(to_millis);
        assert_eq!(
            view,
            read_side::folded(&events).remove(&order_id),
            "on {}",
            side.kind
        );
    }
}
