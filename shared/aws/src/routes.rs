//! Edge layer: the HTTP routes, as `ftgo_domain::route` declares them.
//!
//! API Gateway (and the local gateway, which builds its routes from `template.yaml`) matches
//! each request against the template's `HttpApi` events and passes the matched route key
//! (`routeKey`, e.g. `POST /orders/{orderId}/approve`) and the decoded path parameters
//! (`pathParameters`). The handlers look the key up in the domain's route declarations
//! ([`matched`]) and never re-parse the raw path; a test holds the declared keys equal to the
//! template's routes.

use ftgo_domain::access::Action;
use ftgo_domain::route::Route;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::http::{ApiError, path_id};

/// Every route key the handlers serve, in [`Action`] order.
pub fn keys() -> Vec<&'static str> {
    ftgo_domain::route::all()
        .map(|declared| declared.key)
        .collect()
}

/// The declared route API Gateway matched, with its action; `None` for a key no route
/// declares (the handler answers 404).
pub fn matched(request: &Request) -> Option<(Action, Route)> {
    Action::of_route_key(route_key(request)).map(|action| (action, action.route()))
}

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
        let keys = super::keys();
        let declared: BTreeSet<String> = keys.iter().map(|r| (*r).to_owned()).collect();
        assert_eq!(declared.len(), keys.len(), "no route key twice");
        assert_eq!(declared, template_routes());
    }
}
