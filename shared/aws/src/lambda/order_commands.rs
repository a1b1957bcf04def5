//! The `order-commands` Lambda: `POST /orders` and every route whose declaration
//! (`ftgo_domain::route`) targets an order command.

use std::collections::BTreeMap;

use ftgo_domain::Money;
use ftgo_domain::access::Action;
use ftgo_domain::order::{CreateOrder, DeliveryAddress, LineItem, Order, OrderCommand};
use ftgo_domain::route::Target;
use http::{StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use super::{command_answer, owner_context};
use crate::auth::{authorize, caller};
use crate::commands::{CommandContext, CommandService, Outcome};
use crate::http::{ApiError, json_body, no_route};
use crate::routes::path_parameter;

/// Body of `POST /orders`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrderRequest {
    /// Who orders.
    pub consumer_id: String,
    /// From which restaurant.
    pub restaurant_id: String,
    /// The restaurant's name.
    pub restaurant_name: String,
    /// What.
    pub line_items: Vec<LineItemRequest>,
    /// Where to.
    pub delivery_address: DeliveryAddressRequest,
}

/// One line of [`CreateOrderRequest`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItemRequest {
    /// Menu item id.
    pub menu_item_id: String,
    /// Its name.
    pub name: String,
    /// How many; must be at least 1.
    pub quantity: i64,
    /// Unit price as a decimal string with at most two decimals.
    pub price: String,
}

/// The delivery address of [`CreateOrderRequest`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAddressRequest {
    /// First street line.
    pub street1: String,
    /// Second street line.
    #[serde(default)]
    pub street2: Option<String>,
    /// City.
    pub city: String,
    /// State.
    pub state: String,
    /// Postal code.
    pub zip: String,
}

/// Body of `POST /orders/{orderId}/revise`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviseOrderRequest {
    /// New quantity per menu item id (0 removes the line).
    pub line_item_quantities: BTreeMap<String, i64>,
}

/// The answer of every order command.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OrderCommandAnswer {
    /// The order's id.
    pub order_id: String,
    /// Its status after the command.
    pub status: String,
    /// The order stream's version after the command.
    pub version: u64,
    /// The total as a decimal string.
    pub order_total: String,
    /// Read-your-writes token.
    pub token: String,
}

impl From<&Outcome<Order>> for OrderCommandAnswer {
    fn from(outcome: &Outcome<Order>) -> Self {
        Self {
            order_id: outcome.aggregate_id.clone(),
            status: outcome
                .aggregate
                .status
                .map(|s| s.as_str())
                .unwrap_or_default()
                .to_owned(),
            version: outcome.version,
            order_total: outcome.aggregate.order_total.to_string(),
            token: outcome.token(),
        }
    }
}

fn quantity(field: &str, value: i64, allow_zero: bool) -> Result<u32, ApiError> {
    let minimum = if allow_zero { 0 } else { 1 };
    if value < minimum {
        return Err(ApiError::validation(
            field,
            format!("must be at least {minimum}"),
        ));
    }
    u32::try_from(value).map_err(|_| ApiError::validation(field, "is too large"))
}

impl CreateOrderRequest {
    /// The domain command, with amounts parsed into cents.
    pub fn into_command(self) -> Result<CreateOrder, ApiError> {
        let line_items = self
            .line_items
            .into_iter()
            .enumerate()
            .map(|(index, line)| {
                Ok(LineItem {
                    quantity: quantity(
                        &format!("lineItems[{index}].quantity"),
                        line.quantity,
                        false,
                    )?,
                    price: line.price.parse::<Money>().map_err(|e| {
                        ApiError::validation(&format!("lineItems[{index}].price"), e)
                    })?,
                    menu_item_id: line.menu_item_id,
                    name: line.name,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let address = self.delivery_address;
        Ok(CreateOrder {
            consumer_id: self.consumer_id,
            restaurant_id: self.restaurant_id,
            restaurant_name: self.restaurant_name,
            line_items,
            delivery_address: DeliveryAddress {
                street1: address.street1,
                street2: address.street2,
                city: address.city,
                state: address.state,
                zip: address.zip,
            },
        })
    }
}

fn revise_action(request: &Request) -> Result<OrderCommand, ApiError> {
    let body: ReviseOrderRequest = json_body(request)?;
    let quantities = body
        .line_item_quantities
        .into_iter()
        .map(|(id, value)| {
            Ok((
                id.clone(),
                quantity(&format!("lineItemQuantities.{id}"), value, true)?,
            ))
        })
        .collect::<Result<BTreeMap<_, _>, ApiError>>()?;
    Ok(OrderCommand::Revise {
        line_item_quantities: quantities,
    })
}

/// Serves one request of the `order-commands` function.
pub async fn handle(
    service: &CommandService,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    Ok(super::serve_command(&request, || route(service, &request)).await)
}

async fn route(service: &CommandService, request: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(request, service.role_claims())?;
    let Some((access, route)) = crate::routes::matched(request) else {
        return Err(no_route(request));
    };
    let command = match route.target {
        Target::CreateOrder => return create(service, request, &caller).await,
        // The quantities come from the body; what a cancel reads of the delivery is read by
        // the service (guard::CrossAggregate).
        Target::Order(OrderCommand::Revise { .. }) => revise_action(request)?,
        Target::Order(command) => command,
        Target::Delivery(_) | Target::FindOrder | Target::FindOrderHistory => {
            return Err(no_route(request));
        }
    };
    let context = owner_context(request, caller, access)?;
    let order_id = path_parameter(request, "orderId")?;
    let outcome = service.order_action(order_id, command, &context).await?;
    Ok(command_answer(
        StatusCode::OK,
        &OrderCommandAnswer::from(&outcome),
        outcome.version,
        outcome.replayed,
    ))
}

/// `POST /orders`: places the order under a fresh id.
async fn create(
    service: &CommandService,
    request: &Request,
    caller: &ftgo_domain::access::Caller,
) -> Result<Response<Body>, ApiError> {
    let command = json_body::<CreateOrderRequest>(request)?.into_command()?;
    authorize(caller, Action::CreateOrder, Some(&command.consumer_id))?;
    let context = CommandContext {
        expected_version: None,
        ..super::command_context(request)?
    };
    let outcome = service.create_order(command, &context).await?;
    let mut response = command_answer(
        StatusCode::CREATED,
        &OrderCommandAnswer::from(&outcome),
        outcome.version,
        outcome.replayed,
    );
    let location = format!("/orders/{}", outcome.aggregate_id);
    if let Ok(value) = http::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::RetryPolicy;
    use crate::store::event_store::EventStore;

    /// A service whose store points at a closed port: these tests prove refusals happen before
    /// any write (a write attempt would fail with a 500, not the 4xx asserted).
    fn offline_service() -> CommandService {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let store = EventStore::new(aws_sdk_dynamodb::Client::new(&sdk), "events", "snapshots");
        CommandService::new(store, RetryPolicy::default(), 100)
    }

    fn sample(name: &str) -> Request {
        let path = format!(
            "{}/../../events/order-commands/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("sample exists");
        lambda_http::request::from_str(&text).expect("sample is an API Gateway v2 request")
    }

    /// A sample, edited as JSON before it becomes a request.
    fn edited_sample(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Request {
        let path = format!(
            "{}/../../events/order-commands/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("sample exists");
        let mut event: serde_json::Value = serde_json::from_str(&text).expect("sample JSON");
        edit(&mut event);
        lambda_http::request::from_str(&event.to_string()).expect("API Gateway v2 request")
    }

    fn with_body(mut request: Request, body: &str) -> Request {
        *request.body_mut() = Body::Text(body.to_owned());
        request
    }

    async fn answer(request: Request) -> (StatusCode, serde_json::Value) {
        let response = handle(&offline_service(), request)
            .await
            .expect("handler answers");
        let body = match response.body() {
            Body::Text(text) => serde_json::from_str(text).expect("JSON body"),
            other => panic!("unexpected body {other:?}"),
        };
        (response.status(), body)
    }

    fn assert_validation(answer: (StatusCode, serde_json::Value), field: &str) {
        assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{}", answer.1);
        assert_eq!(answer.1["error"]["code"], "VALIDATION_FAILED");
        let message = answer.1["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "message {message:?} names {field}");
    }

    #[tokio::test]
    async fn zero_quantity_sample_is_refused_naming_the_field() {
        assert_validation(
            answer(sample("create-order-invalid-quantity.json")).await,
            "lineItems[0].quantity",
        );
    }

    #[tokio::test]
    async fn malformed_and_mistyped_bodies_are_refused_naming_the_problem() {
        let create = || sample("create-order.json");
        assert_validation(answer(with_body(create(), "{not json")).await, "body");
        assert_validation(answer(with_body(create(), "")).await, "body");
        let mut json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!(
                "{}/../../events/bodies/create-order.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        json["lineItems"][0]["quantity"] = serde_json::json!("two");
        assert_validation(
            answer(with_body(create(), &json.to_string())).await,
            "lineItems[0].quantity",
        );
        json["lineItems"][0]["quantity"] = serde_json::json!(-1);
        assert_validation(
            answer(with_body(create(), &json.to_string())).await,
            "lineItems[0].quantity",
        );
        json["lineItems"][0]["quantity"] = serde_json::json!(1);
        json["lineItems"][0]["price"] = serde_json::json!("1.234");
        assert_validation(
            answer(with_body(create(), &json.to_string())).await,
            "lineItems[0].price",
        );
        json["lineItems"][0]["price"] = serde_json::json!("1.23");
        json["lineItems"] = serde_json::json!([]);
        assert_validation(
            answer(with_body(create(), &json.to_string())).await,
            "lineItems",
        );
        let object = json.as_object_mut().unwrap();
        object.remove("consumerId");
        assert_validation(
            answer(with_body(create(), &json.to_string())).await,
            "consumerId",
        );
    }

    #[tokio::test]
    async fn oversized_and_non_json_bodies_are_413_and_415() {
        let big = format!(
            "{{\"pad\":\"{}\"}}",
            "x".repeat(crate::http::MAX_BODY_BYTES)
        );
        let (status, body) = answer(with_body(sample("create-order.json"), &big)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");

        let mut xml = sample("create-order.json");
        xml.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/xml"),
        );
        let (status, body) = answer(xml).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(body["error"]["code"], "UNSUPPORTED_MEDIA_TYPE");
    }

    #[tokio::test]
    async fn revise_with_a_negative_quantity_or_bad_if_match_is_refused() {
        let revise = with_body(
            sample("revise-order.json"),
            r#"{"lineItemQuantities":{"m-1":-2}}"#,
        );
        assert_validation(answer(revise).await, "lineItemQuantities.m-1");
        let mut approve = sample("approve-order.json");
        approve
            .headers_mut()
            .insert(header::IF_MATCH, http::HeaderValue::from_static("soon"));
        assert_validation(answer(approve).await, "If-Match");
    }

    #[tokio::test]
    async fn an_order_id_longer_than_any_key_is_refused_before_the_store() {
        let long = "o".repeat(ftgo_domain::order::MAX_ID_BYTES + 1);
        let request = edited_sample("approve-order.json", |event| {
            event["pathParameters"]["orderId"] = long.clone().into();
        });
        assert_validation(answer(request).await, "orderId");
    }

    #[tokio::test]
    async fn unknown_action_is_404_json() {
        // Only a route of the template reaches the function; one it does not serve is 404.
        let request = edited_sample("approve-order.json", |event| {
            event["routeKey"] = "POST /orders/{orderId}/teleport".into();
            event["requestContext"]["routeKey"] = "POST /orders/{orderId}/teleport".into();
        });
        let (status, body) = answer(request).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "NOT_FOUND");
    }
}
