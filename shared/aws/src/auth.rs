//! Who calls, read once from where API Gateway puts it: the JWT authorizer's claims in
//! `requestContext.authorizer.jwt.claims` (HTTP API payload v2), never from the body. The local
//! gateway passes claims the same way.
//!
//! API Gateway hands every claim over as a string: a string claim as it is (`scope` is then
//! space-separated), an array claim rendered as `[a b c]` (`cognito:groups`, or a `scope` an
//! issuer sends as an array). [`claim_values`] reads both. Which claims name roles is the
//! deployment's [`RoleClaims`] (`Config::role_claims`).
//!
//! The policy itself is pure and lives in [`ftgo_domain::access`]; this module turns its
//! verdicts into answers (401 `UNAUTHENTICATED`, 403 `FORBIDDEN`, 404 `NOT_FOUND`). Commands on
//! an order are checked against the order's owner by the command service, on the order it
//! loads anyway ([`crate::commands::OwnerCheck`]).

use ftgo_domain::access::{Action, Caller, RoleClaim, RoleClaims, Verdict};
use http::StatusCode;
use lambda_http::aws_lambda_events::apigw::ApiGatewayRequestAuthorizerJwtDescription;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::http::ApiError;

/// The claim naming the caller.
pub const SUBJECT_CLAIM: &str = "sub";

/// The message of every 404 an order route answers for an order the caller may not see; the
/// same as for an order that does not exist, so that the two cannot be told apart.
pub use crate::http::ORDER_NOT_FOUND;

/// 401 `UNAUTHENTICATED`.
pub fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
}

/// 403 `FORBIDDEN`.
pub fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
}

/// The values of a claim as API Gateway passes it: an array rendered as `[a b c]`, a JSON array
/// of strings (hand-written events), or a space-separated string such as `scope`.
pub fn claim_values(text: &str) -> Vec<String> {
    let text = text.trim();
    if let Ok(values) = serde_json::from_str::<Vec<String>>(text) {
        return values;
    }
    let listed = text
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(text);
    listed.split_whitespace().map(str::to_owned).collect()
}

/// The verified JWT claims of `request`; 401 when there are none (in AWS the authorizer
/// already refused such a request: this is defence in depth).
fn verified_jwt(request: &Request) -> Result<&ApiGatewayRequestAuthorizerJwtDescription, ApiError> {
    let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else {
        return Err(unauthenticated(
            "no verified token: send Authorization: Bearer <JWT>",
        ));
    };
    context
        .authorizer
        .as_ref()
        .and_then(|authorizer| authorizer.jwt.as_ref())
        .ok_or_else(|| unauthenticated("no verified token: send Authorization: Bearer <JWT>"))
}

/// The verified subject (`sub`) of `request`, whatever its roles; 401 without one.
pub fn subject(request: &Request) -> Result<&str, ApiError> {
    verified_jwt(request)?
        .claims
        .get(SUBJECT_CLAIM)
        .map(String::as_str)
        .filter(|subject| !subject.trim().is_empty())
        .ok_or_else(|| unauthenticated("the token names no subject (`sub`)"))
}

/// The caller of `request`, from its JWT claims, its roles from the claims `accepted` names;
/// 401 when there are none or no subject.
pub fn caller(request: &Request, accepted: &RoleClaims) -> Result<Caller, ApiError> {
    let subject = subject(request)?;
    let jwt = verified_jwt(request)?;
    let mut roles = Vec::new();
    for claim in accepted.iter() {
        let values = jwt.claims.get(claim.name()).map(|text| claim_values(text));
        roles.extend(
            values
                .iter()
                .flatten()
                .filter_map(|value| claim.role(value)),
        );
    }
    // API Gateway lists a route's authorization scopes in `scopes`; they come from the same
    // verified token's `scope`, so they count where that claim does.
    if accepted.accepts(RoleClaim::Scope) {
        let listed = jwt.scopes.iter().flatten();
        roles.extend(listed.filter_map(|value| RoleClaim::Scope.role(value)));
    }
    Caller::with_roles(subject, roles)
        .ok_or_else(|| unauthenticated("the token names no subject (`sub`)"))
}

/// The verdict as an answer: 403 for [`Verdict::Forbidden`] (naming what was refused), the
/// route's own 404 for [`Verdict::Hidden`].
pub fn enforce(verdict: Verdict, action: Action, caller: &Caller) -> Result<(), ApiError> {
    crate::http::refused(verdict, action, caller).map_or(Ok(()), Err)
}

/// `caller` may do `action` to what consumer `owner` owns (a new order's `consumerId`, a
/// history's consumer, a view item's consumer).
pub fn authorize(caller: &Caller, action: Action, owner: Option<&str>) -> Result<(), ApiError> {
    enforce(caller.may(action, owner), action, caller)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftgo_domain::access::Scope;
    use serde_json::{Value, json};

    fn request(authorizer: Option<Value>) -> Request {
        let mut context = json!({
            "accountId": "123456789012",
            "apiId": "abc123",
            "http": {"method": "GET", "path": "/orders/o-1", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "tests"},
            "requestId": "r-1",
            "routeKey": "GET /orders/{orderId}",
            "stage": "$default",
            "timeEpoch": 0
        });
        if let Some(authorizer) = authorizer {
            context["authorizer"] = authorizer;
        }
        let event = json!({
            "version": "2.0",
            "routeKey": "GET /orders/{orderId}",
            "rawPath": "/orders/o-1",
            "rawQueryString": "",
            "headers": {},
            "requestContext": context,
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).expect("v2 request")
    }

    fn status(result: Result<Caller, ApiError>) -> (StatusCode, &'static str) {
        let error = result.expect_err("refused");
        (error.status, error.code)
    }

    fn both() -> RoleClaims {
        RoleClaims::all()
    }

    fn caller_with(claims: Value, accepted: &RoleClaims) -> Caller {
        let authorizer = json!({"jwt": {"claims": claims, "scopes": null}});
        caller(&request(Some(authorizer)), accepted).expect("caller")
    }

    #[test]
    fn claims_as_api_gateway_passes_them_name_the_caller() {
        let claims = json!({"jwt": {"claims": {
            "sub": "c-1", "scope": "openid ftgo/courier", "iss": "https://issuer",
            "exp": "1795712400", "cognito:groups": "[a b]"
        }, "scopes": null}});
        let who = caller(&request(Some(claims)), &both()).expect("caller");
        assert_eq!(who.subject(), "c-1");
        assert!(who.has(Scope::Courier) && !who.has(Scope::Admin));
    }

    #[test]
    fn array_claims_rendered_as_api_gateway_does_keep_their_first_and_last_values() {
        // `cognito:groups: ["restaurant", "x", "courier"]` reaches the function as this string.
        let who = caller_with(
            json!({"sub": "u-1", "cognito:groups": "[restaurant x courier]"}),
            &RoleClaims::default(),
        );
        assert!(who.has(Scope::Restaurant) && who.has(Scope::Courier));
        let one = caller_with(
            json!({"sub": "u-1", "cognito:groups": "[admin]"}),
            &RoleClaims::default(),
        );
        assert!(one.has(Scope::Admin));
        // `scope` sent as an array: `["ftgo/restaurant", "openid", "ftgo/admin"]`.
        let scoped = caller_with(
            json!({"sub": "u-1", "scope": "[ftgo/restaurant openid ftgo/admin]"}),
            &both(),
        );
        assert!(scoped.has(Scope::Restaurant) && scoped.has(Scope::Admin));
    }

    #[test]
    fn claim_values_read_every_shape() {
        assert_eq!(claim_values("[a b c]"), ["a", "b", "c"]);
        assert_eq!(claim_values("[a]"), ["a"]);
        assert_eq!(claim_values("[]"), Vec::<String>::new());
        assert_eq!(claim_values("a  b"), ["a", "b"]);
        assert_eq!(claim_values(r#"["a","b"]"#), ["a", "b"]);
        assert_eq!(claim_values(""), Vec::<String>::new());
    }

    #[test]
    fn only_the_configured_claims_grant_roles() {
        let claims = json!({"sub": "u-1", "scope": "ftgo/admin", "cognito:groups": "[courier]"});
        let groups_only = caller_with(claims.clone(), &RoleClaims::only(RoleClaim::Groups));
        assert!(groups_only.has(Scope::Courier));
        assert!(
            !groups_only.has(Scope::Admin),
            "a scope alone grants nothing"
        );
        let scope_only = caller_with(claims.clone(), &RoleClaims::only(RoleClaim::Scope));
        assert!(scope_only.has(Scope::Admin) && !scope_only.has(Scope::Courier));
        // Group names are not scope names and the other way round.
        let crossed = caller_with(
            json!({"sub": "u-1", "scope": "admin", "cognito:groups": "[ftgo/admin]"}),
            &both(),
        );
        assert!(!crossed.has(Scope::Admin));
    }

    #[test]
    fn the_scopes_list_counts_where_scope_does() {
        let claims = json!({"jwt": {"claims": {"sub": "r-9"}, "scopes": ["ftgo/restaurant"]}});
        let who = caller(&request(Some(claims.clone())), &both()).expect("caller");
        assert!(who.has(Scope::Restaurant));
        let groups = caller(&request(Some(claims)), &RoleClaims::default()).expect("caller");
        assert!(!groups.has(Scope::Restaurant));
    }

    #[test]
    fn no_authorizer_no_claims_or_no_subject_is_401() {
        let unauthenticated = (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
        assert_eq!(status(caller(&request(None), &both())), unauthenticated);
        assert_eq!(
            status(caller(&request(Some(json!({}))), &both())),
            unauthenticated
        );
        assert_eq!(
            status(caller(
                &request(Some(json!({"jwt": {"claims": {}}}))),
                &both()
            )),
            unauthenticated
        );
        assert_eq!(
            status(caller(
                &request(Some(
                    json!({"jwt": {"claims": {"sub": "", "scope": "ftgo/admin"}}})
                )),
                &both()
            )),
            unauthenticated
        );
        // A Lambda authorizer's context is not a verified JWT.
        assert_eq!(
            status(caller(
                &request(Some(
                    json!({"lambda": {"sub": "c-1", "scope": "ftgo/admin"}})
                )),
                &both()
            )),
            unauthenticated
        );
    }

    #[test]
    fn verdicts_become_403_and_an_indistinguishable_404() {
        let who = Caller::new("c-1", [""]).expect("caller");
        let forbidden = authorize(&who, Action::ReadHistory, Some("c-2")).expect_err("403");
        assert_eq!(
            (forbidden.status, forbidden.code),
            (StatusCode::FORBIDDEN, "FORBIDDEN")
        );
        let hidden = authorize(&who, Action::ReadOrder, Some("c-2")).expect_err("404");
        let missing = authorize(&who, Action::ReadOrder, None).expect_err("404");
        assert_eq!(hidden, missing);
        assert_eq!(hidden.status, StatusCode::NOT_FOUND);
        assert_eq!(hidden.message, ORDER_NOT_FOUND);
        assert!(authorize(&who, Action::ReadOrder, Some("c-1")).is_ok());
    }
}
