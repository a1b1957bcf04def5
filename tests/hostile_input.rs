//! The hostile-input suite: over real HTTP through the local API gateway (which checks the JWT
//! as API Gateway's authorizer does) into the real handlers, in process, against moto. A list
//! of nasty inputs at every route — malformed, deeply nested and mistyped JSON, huge numbers,
//! 1 MiB bodies, invalid UTF-8, control characters, ids with `#`, `/`, `..`, `%00`, RTL marks,
//! 10 KB ids, forged and truncated page and consistency tokens, expired, unsigned, `alg: none`
//! and foreign JWTs — each answers 4xx JSON with the error shape; proptest-generated bodies,
//! paths, query strings and tokens never answer 5xx; and nothing of it writes an event.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

#[path = "hostile_input/generated.rs"]
mod generated;
use crate::in_process;
#[path = "hostile_input/listed.rs"]
mod listed;
use crate::read_side;
#[path = "hostile_input/world.rs"]
mod world;

use std::sync::atomic::Ordering;

use generated::generated_inputs;
use listed::{forged_tokens, nasty_authorizations, nasty_bodies, nasty_ids};
use read_side::{encode_bytes, scan_table};
use serde_json::Value;
use world::{CREATE_ORDER, ORDER_ROUTES, Probe, World, method};

#[test]
fn the_attacked_routes_are_the_declared_ones_with_an_id() {
    let attacked: Vec<String> = ORDER_ROUTES
        .iter()
        .map(|(verb, path)| format!("{verb} {path}"))
        .collect();
    assert!(attacked.contains(&"POST /orders/{id}/approve".to_owned()));
    assert!(attacked.contains(&"GET /consumers/{id}/orders".to_owned()));
    assert_eq!(
        attacked.len() + 1,
        ftgo_aws::routes::keys().len(),
        "all but POST /orders"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_answer_4xx_json_and_write_nothing() {
    let (world, _stack) = World::start().await;
    let events = || scan_table(&world.side.dynamodb, &world.side.config.events_table);
    let before = events().await;
    let valid_create: Value = serde_json::from_str(CREATE_ORDER).expect("JSON");
    let missing = "o-does-not-exist";
    let order = world.order_id.clone();

    // Nasty ids at every route, as the admin (who gets furthest) and as a consumer.
    for (verb, path) in ORDER_ROUTES.iter() {
        for id in nasty_ids() {
            for token in [&world.admin, &world.consumer] {
                let target = path.replace("{id}", &id);
                let body = if path.ends_with("revise") {
                    br#"{"lineItemQuantities":{"m-1":3}}"#.to_vec()
                } else {
                    Vec::new()
                };
                let probe = Probe {
                    body,
                    ..Probe::new(method(verb), target, token)
                };
                world.refused(&probe).await;
            }
        }
    }

    // Nasty bodies at every POST route: creates as their own consumer; commands on the real
    // order as its owner (revise reads the body), on a missing order as the admin, and on the
    // real order as another consumer.
    for (name, body) in nasty_bodies(&valid_create) {
        world
            .refused(&Probe::post("/orders", &world.consumer, body.clone()))
            .await;
        world
            .refused(&Probe::post(
                format!("/orders/{order}/revise"),
                &world.consumer,
                body.clone(),
            ))
            .await;
        for (verb, path) in ORDER_ROUTES.iter().filter(|(verb, _)| *verb == "POST") {
            for (id, token) in [
                (missing, &world.admin),
                (order.as_str(), &world.other_consumer),
            ] {
                let probe = Probe {
                    body: body.clone(),
                    ..Probe::new(method(verb), path.replace("{id}", id), token)
                };
                let answer = world.refused(&probe).await;
                assert_ne!(answer.status, 200, "{name}");
            }
        }
    }

    // Text SQS cannot carry (a dead letter holds the event whole): 400 naming the field.
    for (path, field) in [
        (&["restaurantName"][..], "restaurantName"),
        (&["lineItems", "0", "name"][..], "lineItems[0].name"),
        (&["deliveryAddress", "city"][..], "deliveryAddress.city"),
    ] {
        for bad in ['\u{FFFE}', '\u{FFFF}'] {
            let body = listed::with_field(&valid_create, path, Value::String(format!("A{bad}")));
            let answer = world
                .refused(&Probe::post("/orders", &world.consumer, body))
                .await;
            assert_eq!(answer.status, 400, "{field}");
            assert_eq!(answer.error_code().as_deref(), Some("VALIDATION_FAILED"));
            let text = String::from_utf8_lossy(&answer.body).into_owned();
            assert!(text.contains(field), "{field}: {text}");
        }
    }

    // Wrong content types and If-Match values.
    for content_type in [
        "application/xml",
        "multipart/form-data; boundary=x",
        "image/png",
    ] {
        let probe = Probe {
            content_type: Some(content_type),
            ..Probe::post("/orders", &world.consumer, valid_create.to_string())
        };
        world.refused(&probe).await;
    }
    for if_match in [
        "soon",
        "-1",
        "99999999999999999999999",
        "\"1\"x",
        "W/",
        // A list takes quoted tags (RFC 9110); `"1", "2"` and `*` are valid `If-Match` values.
        "1, 2",
        "\"1\", 2",
    ] {
        let probe = Probe {
            if_match: Some(if_match.to_owned()),
            ..Probe::post(
                format!("/orders/{order}/cancel"),
                &world.consumer,
                Vec::new(),
            )
        };
        world.refused(&probe).await;
    }

    // Forged and truncated page and consistency tokens; the real page token for another
    // consumer and other filters.
    for (name, value) in forged_tokens(&world.page_token, &world.consistency_token) {
        let value = if value.contains('%') {
            value
        } else {
            encode_bytes(value.as_bytes())
        };
        for (token, target) in [
            (
                &world.consumer,
                format!("/consumers/c-1/orders?pageSize=1&{name}={value}"),
            ),
            (
                &world.admin,
                format!("/consumers/c-1/orders?{name}={value}"),
            ),
        ] {
            world.refused(&Probe::get(target, token)).await;
        }
        if name == "consistentWith" {
            let target = format!("/orders/{order}?consistentWith={value}");
            world.refused(&Probe::get(target, &world.consumer)).await;
        }
    }
    let foreign = encode_bytes(world.page_token.as_bytes());
    for (token, target) in [
        (
            &world.other_consumer,
            format!("/consumers/c-2/orders?pageSize=1&pageToken={foreign}"),
        ),
        (
            &world.consumer,
            format!("/consumers/c-1/orders?pageSize=1&status=APPROVED&pageToken={foreign}"),
        ),
    ] {
        world.refused(&Probe::get(target, token)).await;
    }
    // Nasty query strings.
    for query in [
        "pageSize=0",
        "pageSize=-1",
        "pageSize=1e2",
        "pageSize=99999999999999999999",
        "since=yesterday",
        "since=2026-13-45T99:99:99Z",
        "until=%00",
        "status=SHIPPED",
        "status=%E2%80%AEDEVORPPA",
        "keyword=%00",
        "keyword=",
        "since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z",
        "pageSize=1&pageSize=2",
        "bogus=1",
        "%FF%FE=1",
    ] {
        let target = format!("/consumers/c-1/orders?{query}");
        world.refused(&Probe::get(target, &world.consumer)).await;
    }

    // Tokens the gateway refuses, at every route, before any function runs.
    for (name, authorization) in nasty_authorizations(&world.jwt) {
        let mut targets: Vec<(reqwest::Method, String)> =
            vec![(reqwest::Method::POST, "/orders".to_owned())];
        targets.extend(
            ORDER_ROUTES
                .iter()
                .map(|(verb, path)| (method(verb), path.replace("{id}", &order))),
        );
        for (verb, target) in targets {
            let probe = Probe {
                authorization: authorization.clone(),
                body: valid_create.to_string().into_bytes(),
                ..Probe::new(verb, target, "")
            };
            let answer = world.refused(&probe).await;
            assert_eq!(answer.status, 401, "{name}: {}", answer.describe());
            assert_eq!(
                answer.error_code().as_deref(),
                Some("UNAUTHENTICATED"),
                "{name}"
            );
        }
    }
    let listed = world.sent.load(Ordering::Relaxed);

    // Generated inputs: bodies, paths, query strings and Authorization headers.
    let generated = generated_inputs(&world, &valid_create).await;

    let after = events().await;
    assert_eq!(
        after.len(),
        before.len(),
        "the event table got writes from hostile input"
    );
    assert_eq!(after, before, "the event table changed");
    println!(
        "hostile-input suite: {} inputs tried ({listed} listed, {generated} generated); 0 × 5xx, \
         every listed one 4xx JSON with the error shape, {} events before and after",
        listed + generated,
        before.len()
    );
}
