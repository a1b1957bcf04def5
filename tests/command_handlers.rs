//! The command Lambdas' handlers, driven with the API Gateway v2 samples in `events/`, against
//! moto server, configured from the environment `template.yaml` gives the functions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use ftgo_aws::commands::CommandService;
use ftgo_aws::config::Config;
use ftgo_aws::lambda::{delivery_commands, order_commands};
use ftgo_aws::lambda_http::{self, Body, Request, RequestExt};
use ftgo_aws::store::event_store::EventStore;
use ftgo_domain::AggregateType;
use ftgo_domain::order::{Order, OrderStatus};
use ftgo_domain::token::ConsistencyToken;
use ftgo_tests::{Emulator, repository_root};
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;

/// The sample order id the `events/` samples carry.
const SAMPLE_ORDER_ID: &str = "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
/// The request id the samples carry.
const SAMPLE_REQUEST_ID: &str = "JKJaXmPLvHcESHA=";

async fn service_for(function: &str) -> (CommandService, Config) {
    let moto = Emulator::moto().await;
    let env = moto.stack().function_env(function);
    let config = Config::from_lookup(|name| env.get(name).cloned())
        .expect("the template's environment is valid");
    let service = CommandService::from_config(&moto.sdk_config().await, &config).expect("service");
    (service, config)
}

/// Loads `events/<function>/<name>`, aimed at `order_id`.
fn sample(function: &str, name: &str, order_id: &str) -> Request {
    let path = repository_root().join("events").join(function).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    lambda_http::request::from_str(&text.replace(SAMPLE_ORDER_ID, order_id))
        .expect("API Gateway v2 request")
}

async fn answer(response: lambda_http::Response<Body>) -> (StatusCode, Value) {
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).expect("JSON answer"),
        other => panic!("unexpected body {other:?}"),
    };
    (response.status(), body)
}

async fn order_command(service: &CommandService, request: Request) -> (StatusCode, Value) {
    answer(
        order_commands::handle(service, request)
            .await
            .expect("answers"),
    )
    .await
}

async fn delivery_command(service: &CommandService, request: Request) -> (StatusCode, Value) {
    answer(
        delivery_commands::handle(service, request)
            .await
            .expect("answers"),
    )
    .await
}

/// Sends sample `name` of `order-commands`, aimed at `order_id`, to its handler.
async fn send_order(service: &CommandService, name: &str, order_id: &str) -> (StatusCode, Value) {
    order_command(service, sample("order-commands", name, order_id)).await
}

/// Sends sample `name` of `delivery-commands`, aimed at `order_id`, to its handler.
async fn send_delivery(
    service: &CommandService,
    name: &str,
    order_id: &str,
) -> (StatusCode, Value) {
    delivery_command(service, sample("delivery-commands", name, order_id)).await
}

/// Asserts `(status, body)` is an error answer: `expected` with error code `code`.
fn assert_error(
    (status, body): &(StatusCode, Value),
    expected: StatusCode,
    code: &str,
    what: &str,
) {
    assert_eq!(
        (*status, body["error"]["code"].clone()),
        (expected, code.into()),
        "{what}{body}"
    );
}

async fn create(service: &CommandService) -> (String, Value) {
    let response = order_commands::handle(
        service,
        sample("order-commands", "create-order.json", SAMPLE_ORDER_ID),
    )
    .await
    .expect("answers");
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, body) = answer(response).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let order_id = body["orderId"].as_str().expect("orderId").to_owned();
    assert_eq!(location, Some(format!("/orders/{order_id}")));
    (order_id, body)
}

#[tokio::test]
async fn create_sample_answers_201_with_location_version_total_and_token() {
    let (service, _) = service_for("order-commands").await;
    let (order_id, body) = create(&service).await;
    assert_eq!(body["status"], "APPROVAL_PENDING");
    assert_eq!(body["version"], 1);
    assert_eq!(body["orderTotal"], "28.18");
    let token = ConsistencyToken::decode(body["token"].as_str().expect("token"))
        .expect("a token this service reads");
    assert_eq!(
        (
            token.aggregate_type,
            token.aggregate_id.as_str(),
            token.version
        ),
        (AggregateType::Order, order_id.as_str(), 1)
    );
}

#[tokio::test]
async fn events_carry_the_request_id_as_correlation_id() {
    let (service, _) = service_for("order-commands").await;
    let (order_id, _) = create(&service).await;
    let events = service
        .store()
        .read_stream(&AggregateType::Order.stream_id(&order_id), 0, None)
        .await
        .expect("reads");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].metadata.correlation_id, SAMPLE_REQUEST_ID);
    assert_eq!(events[0].schema_version, 2);
}

#[tokio::test]
async fn an_order_goes_through_its_life_with_the_samples() {
    let (orders, _) = service_for("order-commands").await;
    let (deliveries, _) = service_for("delivery-commands").await;
    let (order_id, _) = create(&orders).await;

    let (status, body) = send_order(&orders, "revise-order.json", &order_id).await;
    assert_eq!(
        (status, body["version"].clone(), body["orderTotal"].clone()),
        (StatusCode::OK, 2.into(), "37.02".into()),
        "{body}"
    );

    let (status, body) = send_order(&orders, "approve-order.json", &order_id).await;
    assert_eq!(
        (status, body["status"].clone(), body["version"].clone()),
        (StatusCode::OK, "APPROVED".into(), 3.into()),
        "{body}"
    );

    let (status, body) = send_delivery(&deliveries, "pickup.json", &order_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deliveryStatus"], "PICKED_UP");
    assert_eq!(body["version"], 1);
    assert_eq!(body["orderId"], order_id.as_str());
    let token = ConsistencyToken::decode(body["token"].as_str().expect("token")).expect("token");
    assert_eq!(
        (token.aggregate_type, token.version),
        (AggregateType::Delivery, 1)
    );

    let answer = send_order(&orders, "cancel-order.json", &order_id).await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "INVALID_STATE",
        "picked up: ",
    );

    let (status, body) = send_delivery(&deliveries, "deliver.json", &order_id).await;
    assert_eq!(
        (
            status,
            body["deliveryStatus"].clone(),
            body["version"].clone()
        ),
        (StatusCode::OK, "DELIVERED".into(), 2.into())
    );

    let order = orders
        .store()
        .load::<Order>(&order_id)
        .await
        .expect("loads");
    assert_eq!(
        (order.version, order.aggregate.status),
        (3, Some(OrderStatus::Approved))
    );
}

#[tokio::test]
async fn refused_commands_answer_their_codes_and_write_nothing() {
    let (orders, _) = service_for("order-commands").await;
    let (deliveries, _) = service_for("delivery-commands").await;

    let missing = ftgo_tests::unique_id("missing");
    let answer = send_order(&orders, "approve-order.json", &missing).await;
    assert_error(&answer, StatusCode::NOT_FOUND, "NOT_FOUND", "");

    let (order_id, _) = create(&orders).await;
    let answer = send_delivery(&deliveries, "deliver.json", &order_id).await;
    assert_error(&answer, StatusCode::CONFLICT, "INVALID_STATE", "");
    let answer = send_delivery(&deliveries, "pickup.json", &order_id).await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "INVALID_STATE",
        "not approved: ",
    );

    let mut stale = sample("order-commands", "approve-order.json", &order_id);
    stale
        .headers_mut()
        .insert(header::IF_MATCH, HeaderValue::from_static("\"5\""));
    let answer = order_command(&orders, stale).await;
    assert_error(
        &answer,
        StatusCode::PRECONDITION_FAILED,
        "VERSION_MISMATCH",
        "",
    );

    let (status, _) = send_order(&orders, "reject-order.json", &order_id).await;
    assert_eq!(status, StatusCode::OK);
    let answer = send_order(&orders, "approve-order.json", &order_id).await;
    assert_error(&answer, StatusCode::CONFLICT, "INVALID_STATE", "");

    let store: &EventStore = orders.store();
    let versions: Vec<u64> = store
        .read_stream(&AggregateType::Order.stream_id(&order_id), 0, None)
        .await
        .expect("reads")
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, vec![1, 2], "created and rejected, nothing else");
    let delivery = store
        .read_stream(&AggregateType::Delivery.stream_id(&order_id), 0, None)
        .await
        .expect("reads");
    assert!(delivery.is_empty());
}

#[tokio::test]
async fn the_invalid_sample_is_refused_before_anything_is_written() {
    let (orders, _) = service_for("order-commands").await;
    let request = sample(
        "order-commands",
        "create-order-invalid-quantity.json",
        SAMPLE_ORDER_ID,
    );
    let request = request.with_raw_http_path("/orders");
    let (status, body) = order_command(&orders, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("lineItems[0].quantity"),
        "{body}"
    );
}

/// The key the `Idempotency-Key` sample carries.
const SAMPLE_IDEMPOTENCY_KEY: &str = "create-9f1c2b7e-sample-key";

/// `request` with `Idempotency-Key: key`.
fn keyed(mut request: Request, key: &str) -> Request {
    request.headers_mut().insert(
        "idempotency-key",
        HeaderValue::from_str(key).expect("header value"),
    );
    request
}

/// The keyed create sample under a fresh key (tests share one moto).
fn keyed_create(key: &str) -> Request {
    let path = repository_root().join("events/order-commands/create-order-idempotent.json");
    let text = std::fs::read_to_string(&path).expect("sample exists");
    assert!(
        text.contains(SAMPLE_IDEMPOTENCY_KEY),
        "the sample carries its key"
    );
    lambda_http::request::from_str(&text.replace(SAMPLE_IDEMPOTENCY_KEY, key))
        .expect("API Gateway v2 request")
}

fn with_body(mut request: Request, body: &str) -> Request {
    *request.body_mut() = Body::Text(body.to_owned());
    request
}

async fn raw(service: &CommandService, request: Request) -> lambda_http::Response<Body> {
    order_commands::handle(service, request)
        .await
        .expect("answers")
}

fn header_of(response: &lambda_http::Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn order_versions(service: &CommandService, order_id: &str) -> Vec<u64> {
    service
        .store()
        .read_stream(&AggregateType::Order.stream_id(order_id), 0, None)
        .await
        .expect("reads")
        .iter()
        .map(|e| e.version)
        .collect()
}

#[tokio::test]
async fn a_keyed_create_sample_sent_twice_answers_the_same_order_and_places_it_once() {
    let (service, _) = service_for("order-commands").await;
    let key = ftgo_tests::unique_id("create");
    let first = raw(&service, keyed_create(&key)).await;
    let second = raw(&service, keyed_create(&key)).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(second.status(), StatusCode::CREATED);
    for name in ["location", "etag", "content-type"] {
        assert_eq!(header_of(&first, name), header_of(&second, name), "{name}");
    }
    assert_eq!(header_of(&first, "etag").as_deref(), Some("\"1\""));
    assert_eq!(
        header_of(&second, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(header_of(&first, "idempotent-replayed"), None);
    let (_, first) = answer(first).await;
    let (_, second) = answer(second).await;
    assert_eq!(first, second, "the replay is the first answer");
    let order_id = first["orderId"].as_str().expect("orderId");
    assert_eq!(order_versions(&service, order_id).await, vec![1]);

    // Another key is another request: another order.
    let (_, other) =
        answer(raw(&service, keyed_create(&ftgo_tests::unique_id("create"))).await).await;
    assert_ne!(other["orderId"], first["orderId"]);
}

#[tokio::test]
async fn a_keyed_revise_runs_once_and_the_key_with_another_body_is_422() {
    let (service, _) = service_for("order-commands").await;
    let (order_id, _) = create(&service).await;
    let key = ftgo_tests::unique_id("revise");
    let revise = || {
        keyed(
            sample("order-commands", "revise-order.json", &order_id),
            &key,
        )
    };
    let (status, first) = order_command(&service, revise()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, second) = order_command(&service, revise()).await;
    assert_eq!((status, &second), (StatusCode::OK, &first));
    assert_eq!(
        order_versions(&service, &order_id).await,
        vec![1, 2],
        "one revise event"
    );

    let other = with_body(revise(), r#"{"lineItemQuantities":{"m-1":5}}"#);
    let answer = order_command(&service, other).await;
    assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
        "",
    );
    assert_eq!(order_versions(&service, &order_id).await, vec![1, 2]);

    // The same key on another order is another request.
    let (other_order, _) = create(&service).await;
    let (status, body) = order_command(
        &service,
        keyed(
            sample("order-commands", "revise-order.json", &other_order),
            &key,
        ),
    )
    .await;
    assert_eq!(
        (status, body["orderId"].as_str()),
        (StatusCode::OK, Some(other_order.as_str()))
    );
}

#[tokio::test]
async fn a_failed_keyed_call_is_not_remembered() {
    let (service, _) = service_for("order-commands").await;
    let key = ftgo_tests::unique_id("create");
    let invalid = with_body(keyed_create(&key), r#"{"consumerId":"c-1"}"#);
    let (status, body) = order_command(&service, invalid).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Were the 400 remembered, another body under the key would answer 422.
    let (status, body) = order_command(&service, keyed_create(&key)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let missing = ftgo_tests::unique_id("missing");
    let approve = || {
        keyed(
            sample("order-commands", "approve-order.json", &missing),
            &key,
        )
    };
    let (status, _) = order_command(&service, approve()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = order_command(&service, approve()).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a 404 is not replayed as anything else"
    );
}

#[tokio::test]
async fn keyed_requests_sent_at_once_write_once_and_all_answer_the_first_answer() {
    // No record of the key is kept besides the events: the calls race on the append, and the
    // losers find the winner's event (its id derives from the key) and answer it.
    let (orders, _) = service_for("order-commands").await;
    let (deliveries, _) = service_for("delivery-commands").await;
    let (order_id, _) = create(&orders).await;
    let (status, body) = send_order(&orders, "approve-order.json", &order_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let key = ftgo_tests::unique_id("pickup");
    let pickup = || keyed(sample("delivery-commands", "pickup.json", &order_id), &key);
    let answers =
        futures::future::join_all((0..4).map(|_| delivery_command(&deliveries, pickup()))).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body, &answers[0].1, "every call answers the same");
    }
    assert_eq!(answers[0].1["version"], 1);
    let events = deliveries
        .store()
        .read_stream(&AggregateType::Delivery.stream_id(&order_id), 0, None)
        .await
        .expect("reads");
    assert_eq!(events.len(), 1, "one pickup event");
}

#[tokio::test]
async fn an_unusable_idempotency_key_is_refused_naming_the_header() {
    let (service, _) = service_for("order-commands").await;
    let (status, body) = order_command(&service, keyed_create(&"k".repeat(65))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Idempotency-Key"),
        "{body}"
    );
}
