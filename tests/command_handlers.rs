//! The command Lambdas' handlers, driven with the API Gateway v2 samples in `events/`, against
//! moto server, configured from the environment `template.yaml` gives the functions.

use ftgo_aws::commands::CommandService;
use ftgo_aws::config::Config;
use ftgo_aws::event_store::EventStore;
use ftgo_aws::lambda_http::{self, Body, Request, RequestExt};
use ftgo_aws::{delivery_commands, order_commands};
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

    let (status, body) = order_command(
        &orders,
        sample("order-commands", "revise-order.json", &order_id),
    )
    .await;
    assert_eq!(
        (status, body["version"].clone(), body["orderTotal"].clone()),
        (StatusCode::OK, 2.into(), "37.02".into()),
        "{body}"
    );

    let (status, body) = order_command(
        &orders,
        sample("order-commands", "approve-order.json", &order_id),
    )
    .await;
    assert_eq!(
        (status, body["status"].clone(), body["version"].clone()),
        (StatusCode::OK, "APPROVED".into(), 3.into()),
        "{body}"
    );

    let (status, body) = delivery_command(
        &deliveries,
        sample("delivery-commands", "pickup.json", &order_id),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deliveryStatus"], "PICKED_UP");
    assert_eq!(body["version"], 1);
    assert_eq!(body["orderId"], order_id.as_str());
    let token = ConsistencyToken::decode(body["token"].as_str().expect("token")).expect("token");
    assert_eq!(
        (token.aggregate_type, token.version),
        (AggregateType::Delivery, 1)
    );

    let (status, body) = order_command(
        &orders,
        sample("order-commands", "cancel-order.json", &order_id),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, "INVALID_STATE".into()),
        "picked up: {body}"
    );

    let (status, body) = delivery_command(
        &deliveries,
        sample("delivery-commands", "deliver.json", &order_id),
    )
    .await;
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

    let (status, body) = order_command(
        &orders,
        sample(
            "order-commands",
            "approve-order.json",
            &ftgo_tests::unique_id("missing"),
        ),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, "NOT_FOUND".into()),
        "{body}"
    );

    let (order_id, _) = create(&orders).await;
    let (status, body) = delivery_command(
        &deliveries,
        sample("delivery-commands", "deliver.json", &order_id),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, "INVALID_STATE".into()),
        "{body}"
    );
    let (status, body) = delivery_command(
        &deliveries,
        sample("delivery-commands", "pickup.json", &order_id),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, "INVALID_STATE".into()),
        "not approved: {body}"
    );

    let mut stale = sample("order-commands", "approve-order.json", &order_id);
    stale
        .headers_mut()
        .insert(header::IF_MATCH, HeaderValue::from_static("\"5\""));
    let (status, body) = order_command(&orders, stale).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::PRECONDITION_FAILED, "VERSION_MISMATCH".into()),
        "{body}"
    );

    let (status, _) = order_command(
        &orders,
        sample("order-commands", "reject-order.json", &order_id),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = order_command(
        &orders,
        sample("order-commands", "approve-order.json", &order_id),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, "INVALID_STATE".into()),
        "{body}"
    );

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
