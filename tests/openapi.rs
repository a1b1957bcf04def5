//! `openapi.yaml` cannot drift from the code (DESIGN §11):
//!
//! * its operations are exactly the declared routes (`ftgo_domain::route`) (which a test holds equal
//!   to `template.yaml`'s `HttpApi` events);
//! * every request sample in `events/` matches its route's request schema, and the sample that
//!   is invalid on purpose does not;
//! * real answers of the three HTTP handlers against moto server (successes and the errors a
//!   client meets) match the schema of their route and status.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::read_side;

use std::collections::BTreeSet;

use ftgo_aws::lambda::{delivery_commands, order_commands};
use ftgo_aws::lambda_http::{self, Body, Request};
use ftgo_domain::access::Action;
use ftgo_domain::delivery::DeliveryStatus;
use ftgo_domain::order::OrderStatus;
use ftgo_tests::{Emulator, repository_root, unique_id};
use read_side::{Answer, ReadSide};
use serde_json::{Value, json};

/// The order id the `events/` samples carry.
const SAMPLE_ORDER_ID: &str = "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

fn document() -> Value {
    let path = repository_root().join("openapi.yaml");
    let text = std::fs::read_to_string(&path).expect("openapi.yaml at the repository root");
    serde_yaml_ng::from_str(&text).expect("openapi.yaml is YAML")
}

/// `(METHOD, path)` of every operation.
fn operations(document: &Value) -> BTreeSet<String> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("path item");
            methods
                .keys()
                .filter(|method| {
                    ["get", "post", "put", "patch", "delete"].contains(&method.as_str())
                })
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect()
}

/// The operation object of a route key (`POST /orders`).
fn operation<'a>(document: &'a Value, route_key: &str) -> &'a Value {
    let (method, path) = route_key.split_once(' ').expect("METHOD path");
    let found = &document["paths"][path][method.to_lowercase()];
    assert!(found.is_object(), "openapi.yaml has no {route_key}");
    found
}

/// Checks `instance` against `schema`, its `$ref`s resolved in the document's components.
fn check(document: &Value, schema: &Value, instance: &Value) -> Result<(), String> {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::validator_for(&root).map_err(|e| format!("bad schema: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// The JSON schema of `route_key`'s answer with `status` (a `$ref`ed response resolved).
fn answer_schema<'a>(document: &'a Value, route_key: &str, status: u16) -> &'a Value {
    let mut response = &operation(document, route_key)["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "openapi.yaml does not document {status} for {route_key}"
    );
    if let Some(reference) = response["$ref"].as_str() {
        let pointer = reference.trim_start_matches('#');
        response = document.pointer(pointer).expect("a $ref that resolves");
    }
    &response["content"]["application/json"]["schema"]
}

/// Asserts that `answer` is what openapi.yaml promises for `route_key`.
fn assert_documented(document: &Value, route_key: &str, answer: &Answer) {
    let schema = answer_schema(document, route_key, answer.status);
    if let Err(problem) = check(document, schema, &answer.body) {
        panic!(
            "{route_key} answered {} {}, which openapi.yaml does not describe: {problem}",
            answer.status, answer.body
        );
    }
}

fn sample_json(relative: &str) -> Value {
    let path = repository_root().join("events").join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("JSON sample")
}

/// A command sample from `events/`, aimed at `order_id`.
fn sample_request(relative: &str, order_id: &str) -> Request {
    let text = sample_json(relative)
        .to_string()
        .replace(SAMPLE_ORDER_ID, order_id);
    lambda_http::request::from_str(&text).expect("API Gateway v2 request")
}

fn answer_of(response: lambda_http::Response<Body>) -> Answer {
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).expect("JSON answer"),
        other => panic!("not a JSON answer: {other:?}"),
    };
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body,
    }
}

#[test]
fn its_operations_are_exactly_the_routes() {
    let documented = operations(&document());
    let routes: BTreeSet<String> = ftgo_aws::routes::keys()
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(documented, routes);
}

#[test]
fn its_status_enums_are_the_domains() {
    let document = document();
    let listed = |schema: &str| -> Vec<String> {
        let values = document["components"]["schemas"][schema]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema} has an enum"));
        values
            .iter()
            .map(|value| value.as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let order: Vec<String> = OrderStatus::ALL
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    assert_eq!(listed("OrderStatus"), order);
    let delivery: Vec<String> = DeliveryStatus::ALL
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    assert_eq!(listed("DeliveryStatus"), delivery);
}

#[test]
fn request_samples_match_their_request_schemas() {
    let document = document();
    let mut checked = 0;
    for function in ["order-commands", "delivery-commands"] {
        let folder = repository_root().join("events").join(function);
        for entry in std::fs::read_dir(&folder).expect("samples") {
            let file = entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            let sample = sample_json(&format!("{function}/{file}"));
            let route_key = sample["routeKey"].as_str().expect("routeKey");
            let schema = &operation(&document, route_key)["requestBody"]["content"]["application/json"]
                ["schema"];
            let Some(body) = sample["body"].as_str().filter(|_| schema.is_object()) else {
                continue;
            };
            let body: Value = serde_json::from_str(body).expect("JSON body");
            let verdict = check(&document, schema, &body);
            if file.contains("invalid") {
                assert!(
                    verdict.is_err(),
                    "{file} is invalid on purpose, yet matches"
                );
            } else {
                verdict.unwrap_or_else(|problem| panic!("{file}: {problem}"));
            }
            checked += 1;
        }
    }
    for (file, schema) in [
        ("bodies/create-order.json", "CreateOrder"),
        ("bodies/revise-order.json", "ReviseOrder"),
    ] {
        let schema = json!({ "$ref": format!("#/components/schemas/{schema}") });
        check(&document, &schema, &sample_json(file))
            .unwrap_or_else(|problem| panic!("{file}: {problem}"));
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} bodies checked");
}

#[test]
fn a_schema_that_does_not_fit_is_noticed() {
    let document = document();
    let order = json!({ "$ref": "#/components/schemas/Order" });
    assert!(check(&document, &order, &json!({ "orderId": "o-1" })).is_err());
    let error = json!({ "$ref": "#/components/schemas/Error" });
    assert!(
        check(
            &document,
            &error,
            &json!({ "error": { "code": "VALIDATION_FAILED", "message": "m" } })
        )
        .is_ok()
    );
    assert!(check(&document, &error, &json!({ "error": "VALIDATION_FAILED" })).is_err());
}

#[tokio::test]
async fn real_answers_match_the_schemas_of_their_routes() {
    let document = document();
    let side = ReadSide::shared(Emulator::moto().await).await;
    let order = |relative: &str, id: &str| sample_request(relative, id);
    let order_command = |request: Request| async {
        answer_of(
            order_commands::handle(&side.commands, request)
                .await
                .expect("answers"),
        )
    };
    let delivery_command = |request: Request| async {
        answer_of(
            delivery_commands::handle(&side.commands, request)
                .await
                .expect("answers"),
        )
    };

    // The write side: each command once, then the errors a client meets.
    let created = order_command(order("order-commands/create-order.json", SAMPLE_ORDER_ID)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_documented(&document, Action::CreateOrder.route().key, &created);
    let id = created.body["orderId"]
        .as_str()
        .expect("orderId")
        .to_owned();
    let mut answers = vec![(Action::CreateOrder.route().key, created)];
    for (route, relative) in [
        (
            Action::ReviseOrder.route().key,
            "order-commands/revise-order.json",
        ),
        (
            Action::ApproveOrder.route().key,
            "order-commands/approve-order.json",
        ),
        // Approving twice: 409 INVALID_STATE.
        (
            Action::ApproveOrder.route().key,
            "order-commands/approve-order.json",
        ),
        // 400 naming the field.
        (
            Action::CreateOrder.route().key,
            "order-commands/create-order-invalid-quantity.json",
        ),
    ] {
        answers.push((route, order_command(order(relative, &id)).await));
    }
    answers.push((
        Action::RejectOrder.route().key,
        order_command(order(
            "order-commands/reject-order.json",
            &unique_id("missing"),
        ))
        .await,
    ));
    for relative in [
        "delivery-commands/pickup.json",
        "delivery-commands/deliver.json",
    ] {
        let route = sample_json(relative)["routeKey"]
            .as_str()
            .map(str::to_owned);
        let route = route
            .as_deref()
            .and_then(Action::of_route_key)
            .map(|action| action.route().key)
            .expect("a known route");
        answers.push((route, delivery_command(order(relative, &id)).await));
    }
    let mut stale = order("order-commands/cancel-order.json", &id);
    stale
        .headers_mut()
        .insert("if-match", http::HeaderValue::from_static("1"));
    answers.push((Action::CancelOrder.route().key, order_command(stale).await));

    // The read side, once the projector has seen the events.
    let events = side
        .store
        .read_stream(&format!("Order#{id}"), 0, None)
        .await
        .expect("the order's events");
    side.project(&events).await;
    let deliveries = side
        .store
        .read_stream(&format!("Delivery#{id}"), 0, None)
        .await
        .expect("the delivery's events");
    side.project(&deliveries).await;
    let consumer = "c-1";
    for (route, path) in [
        (Action::ReadOrder.route().key, format!("/orders/{id}")),
        (
            Action::ReadOrder.route().key,
            format!("/orders/{}", unique_id("missing")),
        ),
        (
            Action::ReadHistory.route().key,
            format!("/consumers/{consumer}/orders?pageSize=1"),
        ),
        (
            Action::ReadHistory.route().key,
            format!("/consumers/{consumer}/orders?pageSize=0"),
        ),
    ] {
        answers.push((route, side.get(&path).await));
    }

    let statuses: BTreeSet<u16> = answers.iter().map(|(_, answer)| answer.status).collect();
    assert_eq!(
        statuses,
        BTreeSet::from([200, 201, 400, 404, 409, 412]),
        "the flow exercises each kind of answer"
    );
    for (route, answer) in &answers {
        assert_documented(&document, route, answer);
    }
}
