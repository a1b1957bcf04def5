//! Who may do what (DESIGN §3), through the real handlers: the `events/` samples, which carry the
//! JWT authorizer's claims as API Gateway passes them, re-addressed to other callers, against
//! moto. Refusals answer 401/403/404 with the error shape and write nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

#[path = "fixtures/read_side.rs"]
mod read_side;

use ftgo_aws::lambda::{delivery_commands, order_commands, order_history_query as query};
use ftgo_aws::lambda_http::{self, Body, Request};
use ftgo_tests::{Emulator, repository_root};
use read_side::{ReadSide, scan_table};
use serde_json::Value;

/// The sample order id the `events/` samples carry.
const SAMPLE_ORDER_ID: &str = "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

/// Who calls: `None` = no authorizer context at all.
#[derive(Clone, Copy, Debug)]
enum As {
    Sample,
    Anonymous,
    Caller(&'static str, &'static str),
}

const C1: As = As::Caller("c-1", "openid");
const C2: As = As::Caller("c-2", "openid");
const RESTAURANT: As = As::Caller("ajanta-staff", "ftgo/restaurant");
const COURIER: As = As::Caller("courier-7", "ftgo/courier");
const ADMIN: As = As::Caller("ops", "ftgo/admin");

/// `events/<function>/<name>`, aimed at `order_id`, from `caller`.
/// The `routeKey` of the sample `events/<function>/<name>`.
fn route_key_of(function: &str, name: &str) -> String {
    let path = repository_root().join("events").join(function).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let sample: Value = serde_json::from_str(&text).expect("JSON sample");
    sample["routeKey"].as_str().expect("routeKey").to_owned()
}

fn sample(function: &str, name: &str, order_id: &str, caller: As) -> Request {
    let path = repository_root().join("events").join(function).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut event: Value =
        serde_json::from_str(&text.replace(SAMPLE_ORDER_ID, order_id)).expect("sample JSON");
    let claims = &mut event["requestContext"]["authorizer"]["jwt"]["claims"];
    assert!(claims.is_object(), "{name} carries the authorizer's claims");
    match caller {
        As::Sample => {}
        As::Anonymous => {
            event["requestContext"]
                .as_object_mut()
                .expect("context")
                .remove("authorizer");
        }
        As::Caller(sub, scope) => {
            claims["sub"] = sub.into();
            claims["username"] = sub.into();
            claims["scope"] = scope.into();
        }
    }
    lambda_http::request::from_str(&event.to_string()).expect("API Gateway v2 request")
}

fn answer(response: lambda_http::Response<Body>) -> (u16, Value) {
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).expect("JSON answer"),
        other => panic!("unexpected body {other:?}"),
    };
    (response.status().as_u16(), body)
}

/// Sends a sample of `function` to its handler.
async fn send(
    side: &ReadSide,
    function: &str,
    name: &str,
    order_id: &str,
    caller: As,
) -> (u16, Value) {
    let request = sample(function, name, order_id, caller);
    let response = match function {
        "order-commands" => order_commands::handle(&side.commands, request).await,
        "delivery-commands" => delivery_commands::handle(&side.commands, request).await,
        "order-history-query" => query::handle(&side.query, request).await,
        other => panic!("no function {other}"),
    };
    answer(response.expect("the handler answers"))
}

/// Asserts `got` is `status` with error `code` (or a success without an error body).
fn expect(got: &(u16, Value), status: u16, what: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    let code = match status {
        401 => Some("UNAUTHENTICATED"),
        403 => Some("FORBIDDEN"),
        404 => Some("NOT_FOUND"),
        _ => None,
    };
    if let Some(code) = code {
        assert_eq!(got.1["error"]["code"], code, "{what}");
        assert!(got.1["error"]["message"].is_string(), "{what}");
    }
}

/// Creates an order of c-1 with the sample and projects it.
async fn order_of_c1(side: &ReadSide) -> String {
    let created = send(
        side,
        "order-commands",
        "create-order.json",
        SAMPLE_ORDER_ID,
        As::Sample,
    )
    .await;
    expect(&created, 201, "c-1 creates its order");
    let order_id = created.1["orderId"].as_str().expect("orderId").to_owned();
    side.project_table(&order_id).await;
    order_id
}

#[tokio::test]
async fn every_role_at_every_route_through_the_samples() {
    let moto = Emulator::moto().await;
    let (side, _stack) = ReadSide::fresh(moto).await;
    let order = order_of_c1(&side).await;
    let events = || scan_table(&side.dynamodb, &side.config.events_table);
    let before = events().await.len();

    // (function, sample, caller, status) — each refused, so nothing below writes.
    let o = "order-commands";
    let d = "delivery-commands";
    let q = "order-history-query";
    #[rustfmt::skip]
    let refused: &[(&str, &str, As, u16)] = &[
        // No claims at all: 401 at every route (the authorizer would refuse it in AWS).
        (o, "create-order.json", As::Anonymous, 401),
        (o, "approve-order.json", As::Anonymous, 401),
        (o, "reject-order.json", As::Anonymous, 401),
        (o, "cancel-order.json", As::Anonymous, 401),
        (o, "revise-order.json", As::Anonymous, 401),
        (d, "pickup.json", As::Anonymous, 401),
        (d, "deliver.json", As::Anonymous, 401),
        (q, "find-order.json", As::Anonymous, 401),
        (q, "find-order-history.json", As::Anonymous, 401),
        // A consumer: orders for itself only; another's order does not exist for it.
        (o, "create-order.json", C2, 403),
        (o, "approve-order.json", C1, 403),
        (o, "reject-order.json", C1, 403),
        (o, "approve-order.json", C2, 404),
        (o, "reject-order.json", C2, 404),
        (o, "cancel-order.json", C2, 404),
        (o, "revise-order.json", C2, 404),
        (d, "pickup.json", C1, 403),
        (d, "deliver.json", C1, 403),
        (d, "pickup.json", C2, 404),
        (d, "deliver.json", C2, 404),
        (q, "find-order.json", C2, 404),
        (q, "find-order-history.json", C2, 403),
        // A restaurant: approves and rejects, reads any order, nothing else.
        (o, "create-order.json", RESTAURANT, 403),
        (o, "cancel-order.json", RESTAURANT, 403),
        (o, "revise-order.json", RESTAURANT, 403),
        (d, "pickup.json", RESTAURANT, 403),
        (d, "deliver.json", RESTAURANT, 403),
        (q, "find-order-history.json", RESTAURANT, 403),
        // A courier: picks up and delivers, reads any order, nothing else.
        (o, "create-order.json", COURIER, 403),
        (o, "approve-order.json", COURIER, 403),
        (o, "reject-order.json", COURIER, 403),
        (o, "cancel-order.json", COURIER, 403),
        (o, "revise-order.json", COURIER, 403),
        (q, "find-order-history.json", COURIER, 403),
    ];
    for &(function, name, caller, status) in refused {
        let got = send(&side, function, name, &order, caller).await;
        expect(&got, status, &format!("{function}/{name} as {caller:?}"));
    }
    // Every route is in the table (a new route must be added here, or this fails).
    let tried_without_token: std::collections::BTreeSet<String> = refused
        .iter()
        .filter(|(_, _, caller, _)| matches!(caller, As::Anonymous))
        .map(|(function, name, _, _)| route_key_of(function, name))
        .collect();
    let routes = ftgo_aws::routes::ALL
        .iter()
        .map(|route| (*route).to_owned());
    assert_eq!(
        tried_without_token,
        routes.collect(),
        "every route, without a token"
    );
    assert_eq!(events().await.len(), before, "no refusal wrote an event");

    // A hidden order answers exactly as a missing one.
    let hidden = send(&side, q, "find-order.json", &order, C2).await;
    let missing = send(&side, q, "find-order-not-found.json", "o-missing", C1).await;
    assert_eq!(hidden.1["error"]["code"], missing.1["error"]["code"]);
    let hidden = send(&side, o, "cancel-order.json", &order, C2).await;
    let missing = send(&side, o, "cancel-order.json", "o-missing", C1).await;
    assert_eq!(
        hidden, missing,
        "a command on another's order reveals nothing"
    );
    let missing = send(&side, o, "cancel-order.json", "o-missing", ADMIN).await;
    assert_eq!(
        hidden, missing,
        "…and answers as the domain answers a missing order"
    );

    // Reads allowed: the owner, a restaurant, a courier, an admin; the history to its owner
    // and to an admin.
    for caller in [As::Sample, RESTAURANT, COURIER, ADMIN] {
        let got = send(&side, q, "find-order.json", &order, caller).await;
        expect(&got, 200, &format!("find-order as {caller:?}"));
        assert_eq!(got.1["orderId"], order.as_str());
    }
    for caller in [As::Sample, ADMIN] {
        let got = send(&side, q, "find-order-history.json", &order, caller).await;
        expect(&got, 200, &format!("history of c-1 as {caller:?}"));
    }

    // Commands allowed: the owner revises, the restaurant approves, the courier picks up
    // and delivers; the admin may create for anyone.
    let steps: &[(&str, &str, As)] = &[
        (o, "revise-order.json", As::Sample),
        (o, "approve-order.json", RESTAURANT),
        (d, "pickup.json", COURIER),
        (d, "deliver.json", COURIER),
    ];
    for &(function, name, caller) in steps {
        let got = send(&side, function, name, &order, caller).await;
        expect(&got, 200, &format!("{function}/{name} as {caller:?}"));
    }
    let for_c1 = send(&side, o, "create-order.json", SAMPLE_ORDER_ID, ADMIN).await;
    expect(&for_c1, 201, "an admin creates an order for c-1");

    // The owner cancels its own order; the restaurant rejects another.
    let second = order_of_c1(&side).await;
    expect(
        &send(&side, o, "cancel-order.json", &second, C1).await,
        200,
        "c-1 cancels its order",
    );
    let third = order_of_c1(&side).await;
    expect(
        &send(&side, o, "reject-order.json", &third, RESTAURANT).await,
        200,
        "the restaurant rejects",
    );
}
