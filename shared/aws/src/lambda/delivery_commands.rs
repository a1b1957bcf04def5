//! The `delivery-commands` Lambda: every route whose declaration (`ftgo_domain::route`)
//! targets a delivery command (`POST /deliveries/{orderId}/pickup|deliver`).

use ftgo_domain::delivery::Delivery;
use ftgo_domain::route::{Route, Target};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use super::{command_answer, owner_context};
use crate::auth::caller;
use crate::commands::{CommandService, Outcome};
use crate::http::{ApiError, no_route};
use crate::routes::path_parameter;

/// The answer of every delivery command.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryCommandAnswer {
    /// The order (and delivery) id.
    pub order_id: String,
    /// The delivery's status after the command.
    pub delivery_status: String,
    /// The delivery stream's version after the command.
    pub version: u64,
    /// Read-your-writes token.
    pub token: String,
}

impl From<&Outcome<Delivery>> for DeliveryCommandAnswer {
    fn from(outcome: &Outcome<Delivery>) -> Self {
        Self {
            order_id: outcome.aggregate_id.clone(),
            delivery_status: outcome
                .aggregate
                .status
                .map(|s| s.as_str())
                .unwrap_or_default()
                .to_owned(),
            version: outcome.version,
            token: outcome.token(),
        }
    }
}

/// Serves one request of the `delivery-commands` function.
pub async fn handle(
    service: &CommandService,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    Ok(super::serve_command(&request, || route(service, &request)).await)
}

async fn route(service: &CommandService, request: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(request, service.role_claims())?;
    // What the order says is read by the service (guard::CrossAggregate).
    let (access, command) = match crate::routes::matched(request) {
        Some((
            access,
            Route {
                target: Target::Delivery(command),
                ..
            },
        )) => (access, command),
        _ => return Err(no_route(request)),
    };
    let context = owner_context(request, caller, access)?;
    let order_id = path_parameter(request, "orderId")?;
    let outcome = service.delivery_action(order_id, command, &context).await?;
    Ok(command_answer(
        StatusCode::OK,
        &DeliveryCommandAnswer::from(&outcome),
        outcome.version,
        outcome.replayed,
    ))
}
