//! The `order-commands` Lambda: `POST /orders` and `POST /orders/{orderId}/approve|reject|cancel|revise`.

use std::collections::BTreeMap;

use ftgo_domain::Money;
use ftgo_domain::order::{CreateOrder, DeliveryAddress, LineItem, Order};
use http::{StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use crate::commands::{CommandContext, CommandService, OrderAction, Outcome};
use crate::http::{
    ApiError, if_match, json_body, json_response, no_route, path_segments, request_id, respond,
};

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

fn revise_action(request: &Request) -> Result<OrderAction, ApiError> {
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
    Ok(OrderAction::Revise(quantities))
}

/// Serves one request of the `order-commands` function.
pub async fn handle(
    service: &CommandService,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    Ok(respond(route(service, &request).await))
}

async fn route(service: &CommandService, request: &Request) -> Result<Response<Body>, ApiError> {
    if request.method() != http::Method::POST {
        return Err(no_route(request));
    }
    let segments = path_segments(request);
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["orders"] => {
            let command = json_body::<CreateOrderRequest>(request)?.into_command()?;
            let context = CommandContext {
                request_id: request_id(request),
                expected_version: None,
            };
            let outcome = service.create_order(command, &context).await?;
            let mut response =
                json_response(StatusCode::CREATED, &OrderCommandAnswer::from(&outcome));
            let location = format!("/orders/{}", outcome.aggregate_id);
            if let Ok(value) = http::HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            Ok(response)
        }
        ["orders", order_id, action] => {
            let action = match *action {
                "approve" => OrderAction::Approve,
                "reject" => OrderAction::Reject,
                "cancel" => OrderAction::Cancel,
                "revise" => revise_action(request)?,
                _ => return Err(no_route(request)),
            };
            let context = CommandContext {
                request_id: request_id(request),
                expected_version: if_match(request)?,
            };
            let outcome = service.order_action(order_id, action, &context).await?;
            Ok(json_response(
                StatusCode::OK,
                &OrderCommandAnswer::from(&outcome),
            ))
        }
        _ => Err(no_route(request)),
    }
}
