//! Retries of keyed commands after the idempotency record lapsed, was released or was never
//! completed (DESIGN §3 "Retries are safe": the key is bound to the write itself), driven
//! through the command Lambdas' handlers against moto server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_aws::commands::CommandService;
use ftgo_aws::config::{Config, idempotency_table};
use ftgo_aws::lambda::{delivery_commands, idempotent, order_commands};
use ftgo_aws::lambda_http::{self, Body, Request, Response};
use ftgo_domain::AggregateType;
use ftgo_tests::{Emulator, repository_root, unique_id};
use http::{HeaderValue, StatusCode};
use serde_json::Value;

/// The sample order id the `events/` samples carry.
const SAMPLE_ORDER_ID: &str = "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

/// The command service of `function` on moto's shared stack, and the name of its idempotency
/// table.
async fn service_for(function: &str) -> (CommandService, String) {
    let moto = Emulator::moto().await;
    let env = moto.stack().function_env(function);
    let config = Config::from_lookup(|name| env.get(name).cloned()).expect("valid environment");
    let service = CommandService::from_config(&moto.sdk_config().await, &config).expect("service");
    (service, config.idempotency_table)
}

/// Sample `name` of `function`, aimed at `order_id`, with `Idempotency-Key: key` when given.
fn sample(function: &str, name: &str, order_id: &str, key: Option<&str>) -> Request {
    let path = repository_root().join("events").join(function).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut request = lambda_http::request::from_str(&text.replace(SAMPLE_ORDER_ID, order_id))
        .expect("API Gateway v2 request");
    if let Some(key) = key {
        request
            .headers_mut()
            .insert(idempotent::HEADER, HeaderValue::from_str(key).unwrap());
    }
    request
}

/// What a client sees of an answer: status, the headers a retry must repeat, and the body.
#[derive(Debug, PartialEq)]
struct Seen {
    status: StatusCode,
    location: Option<String>,
    etag: Option<String>,
    body: Value,
}

fn seen(response: Response<Body>) -> Seen {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Seen {
        status: response.status(),
        location: header("location"),
        etag: header("etag"),
        body: match response.body() {
            Body::Text(text) => serde_json::from_str(text).expect("JSON answer"),
            other => panic!("unexpected body {other:?}"),
        },
    }
}

async fn send(service: &CommandService, request: Request) -> Seen {
    let response = if ftgo_aws::routes::route_key(&request).contains("/deliveries/") {
        delivery_commands::handle(service, request).await
    } else {
        order_commands::handle(service, request).await
    };
    seen(response.expect("answers"))
}

/// Forgets the idempotency record of `request`, as its lapse (the in-progress record past the
/// function's deadline), a release after a 5xx, or a `complete` that failed would.
async fn forget_record(service: &CommandService, table: &str, request: &Request) {
    let identity = idempotent::identity(request)
        .expect("valid key")
        .expect("keyed");
    let client = Emulator::moto().await.dynamodb().await;
    client
        .delete_item()
        .table_name(table)
        .key(
            idempotency_table::KEY,
            AttributeValue::S(identity.record_key),
        )
        .send()
        .await
        .expect("record deleted");
    assert!(service.idempotency().is_some());
}

async fn versions(service: &CommandService, kind: AggregateType, order_id: &str) -> Vec<u64> {
    service
        .store()
        .read_stream(&kind.stream_id(order_id), 0, None)
        .await
        .expect("reads")
        .iter()
        .map(|e| e.version)
        .collect()
}

/// Creates an order without a key; its id.
async fn create(service: &CommandService) -> String {
    let created = send(
        service,
        sample("order-commands", "create-order.json", SAMPLE_ORDER_ID, None),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["orderId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_create_retried_after_its_record_lapsed_answers_the_same_order_placed_once() {
    let (service, table) = service_for("order-commands").await;
    let key = unique_id("create");
    let request = || sample("order-commands", "create-order.json", "-", Some(&key));
    let first = send(&service, request()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    forget_record(&service, &table, &request()).await;

    let retry = send(&service, request()).await;
    assert_eq!(retry, first, "the retry answers as the first call did");
    let order_id = first.body["orderId"].as_str().unwrap();
    assert_eq!(
        versions(&service, AggregateType::Order, order_id).await,
        vec![1]
    );
}

#[tokio::test]
async fn a_transition_retried_after_its_record_lapsed_answers_its_first_answer_not_409() {
    let (service, table) = service_for("order-commands").await;
    let order_id = create(&service).await;
    let key = unique_id("approve");
    let approve = || {
        sample(
            "order-commands",
            "approve-order.json",
            &order_id,
            Some(&key),
        )
    };
    let first = send(&service, approve()).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    forget_record(&service, &table, &approve()).await;

    // Another command lands in between: the retry still answers the approve's own answer.
    let revise = sample("order-commands", "revise-order.json", &order_id, None);
    assert_eq!(send(&service, revise).await.status, StatusCode::OK);
    let retry = send(&service, approve()).await;
    assert_eq!(retry, first);
    assert_eq!(
        versions(&service, AggregateType::Order, &order_id).await,
        vec![1, 2, 3]
    );
}

#[tokio::test]
async fn a_guarded_transition_retried_after_its_record_lapsed_answers_its_first_answer() {
    let (orders, _) = service_for("order-commands").await;
    let (deliveries, table) = service_for("delivery-commands").await;
    let order_id = create(&orders).await;
    let approve = sample("order-commands", "approve-order.json", &order_id, None);
    assert_eq!(send(&orders, approve).await.status, StatusCode::OK);
    let key = unique_id("pickup");
    let pickup = || sample("delivery-commands", "pickup.json", &order_id, Some(&key));
    let first = send(&deliveries, pickup()).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    forget_record(&deliveries, &table, &pickup()).await;

    let retry = send(&deliveries, pickup()).await;
    assert_eq!(retry, first);
    assert_eq!(
        versions(&orders, AggregateType::Delivery, &order_id).await,
        vec![1]
    );
}

#[tokio::test]
async fn the_key_with_another_body_after_its_record_lapsed_is_still_422() {
    let (service, table) = service_for("order-commands").await;
    let key = unique_id("create");
    let request = || sample("order-commands", "create-order.json", "-", Some(&key));
    let first = send(&service, request()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    forget_record(&service, &table, &request()).await;
    let mut other = request();
    let mut body: Value = match other.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        _ => panic!("text body"),
    };
    body["restaurantName"] = "Another".into();
    *other.body_mut() = Body::Text(body.to_string());
    let answer = send(&service, other).await;
    assert_eq!(
        (answer.status, answer.body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("IDEMPOTENCY_KEY_REUSED")
        ),
        "{:?}",
        answer.body
    );

    // A transition too: the key's revise with another body, after its record lapsed.
    let order_id = first.body["orderId"].as_str().unwrap().to_owned();
    let key = unique_id("revise");
    let revise = || sample("order-commands", "revise-order.json", &order_id, Some(&key));
    assert_eq!(send(&service, revise()).await.status, StatusCode::OK);
    forget_record(&service, &table, &revise()).await;
    let mut other = revise();
    *other.body_mut() = Body::Text(r#"{"lineItemQuantities":{"m-1":7}}"#.to_owned());
    let answer = send(&service, other).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        versions(&service, AggregateType::Order, &order_id).await,
        vec![1, 2],
        "nothing written"
    );
}
