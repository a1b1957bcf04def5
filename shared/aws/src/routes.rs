//! Edge layer: the HTTP routes, one constant per route key.
//!
//! API Gateway (and the local gateway, which builds its routes from `template.yaml`) matches
//! each request against the template's `HttpApi` events and passes the matched route key
//! (`routeKey`, e.g. `POST /orders/{orderId}/approve`) and the decoded path parameters
//! (`pathParameters`). The handlers dispatch on those and never re-parse the raw path; a test
//! holds these constants equal to the template's routes.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::http::{ApiError, path_id};

/// `POST /orders`: place an order.
pub const CREATE_ORDER: &str = "POST /orders";
/// `POST /orders/{orderId}/approve`: the restaurant accepts an order.
pub const APPROVE_ORDER: &str = "POST /orders/{orderId}/approve";
/// `POST /orders/{orderId}/reject`: the restaurant refuses an order.
pub const REJECT_ORDER: &str = "POST /orders/{orderId}/reject";
/// `POST /orders/{orderId}/cancel`: the consumer cancels an order.
pub const CANCEL_ORDER: &str = "POST /orders/{orderId}/cancel";
/// `POST /orders/{orderId}/revise`: the consumer changes quantities.
pub const REVISE_ORDER: &str = "POST /orders/{orderId}/revise";
/// `POST /deliveries/{orderId}/pickup`: the courier picks an order up.
pub const PICK_UP_DELIVERY: &str = "POST /deliveries/{orderId}/pickup";
/// `POST /deliveries/{orderId}/deliver`: the courier hands an order over.
pub const DELIVER_DELIVERY: &str = "POST /deliveries/{orderId}/deliver";
/// `GET /orders/{orderId}`: one order's view.
pub const GET_ORDER: &str = "GET /orders/{orderId}";
/// `GET /consumers/{consumerId}/orders`: a consumer's order history.
pub const GET_ORDER_HISTORY: &str = "GET /consumers/{consumerId}/orders";

/// Every route key the handlers serve.
pub const ALL: &[&str] = &[
    CREATE_ORDER,
    APPROVE_ORDER,
    REJECT_ORDER,
    CANCEL_ORDER,
    REVISE_ORDER,
    PICK_UP_DELIVERY,
    DELIVER_DELIVERY,
    GET_ORDER,
    GET_ORDER_HISTORY,
];

/// The route key API Gateway matched (`""` when the request carries none).
pub fn route_key(request: &Request) -> &str {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.route_key.as_deref(),
        _ => None,
    }
    .unwrap_or_default()
}

/// The path parameter `name` (e.g. `orderId`), as API Gateway decoded it, checked as an id:
/// 400 naming it when absent or not an id.
pub fn path_parameter<'a>(request: &'a Request, name: &str) -> Result<&'a str, ApiError> {
    let value = request
        .path_parameters_ref()
        .and_then(|parameters| parameters.first(name))
        .unwrap_or_default();
    path_id(name, value)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_yaml_ng::Value;

    /// The route keys of `template.yaml`'s `HttpApi` events.
    fn template_routes() -> BTreeSet<String> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
        let text = std::fs::read_to_string(path).expect("template.yaml");
        let template: Value = serde_yaml_ng::from_str(&text).expect("template YAML");
        let resources = template["Resources"].as_mapping().expect("Resources");
        resources
            .values()
            .filter_map(|resource| resource["Properties"]["Events"].as_mapping())
            .flat_map(|events| events.values())
            .filter(|event| event["Type"].as_str() == Some("HttpApi"))
            .map(|event| {
                let properties = &event["Properties"];
                format!(
                    "{} {}",
                    properties["Method"].as_str().expect("Method"),
                    properties["Path"].as_str().expect("Path")
                )
            })
            .collect()
    }

    #[test]
    fn the_route_keys_are_the_templates_http_api_routes() {
        let declared: BTreeSet<String> = super::ALL.iter().map(|r| (*r).to_owned()).collect();
        assert_eq!(declared.len(), super::ALL.len(), "no route key twice");
        assert_eq!(declared, template_routes());
    }
}
