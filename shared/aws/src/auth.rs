//! Who calls, read once from where API Gateway puts it: the JWT authorizer's claims in
//! `requestContext.authorizer.jwt.claims` (HTTP API payload v2; every claim value a string,
//! `scope` space-separated), never from the body. The local gateway passes claims the same way.
//!
//! The policy itself is pure and lives in [`ftgo_domain::access`]; this module turns its
//! verdicts into answers (401 `UNAUTHENTICATED`, 403 `FORBIDDEN`, 404 `NOT_FOUND`) and, for
//! commands on an order, reads the order's owner from the loaded aggregate.

use ftgo_domain::access::{Action, Caller, Verdict};
use ftgo_domain::order::Order;
use http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::commands::CommandService;
use crate::http::ApiError;

/// The claim naming the caller.
pub const SUBJECT_CLAIM: &str = "sub";
/// The claim holding the caller's space-separated scopes.
pub const SCOPE_CLAIM: &str = "scope";

/// The message of every 404 an order route answers for an order the caller may not see; the
/// same as for an order that does not exist, so that the two cannot be told apart.
pub const ORDER_NOT_FOUND: &str = "order not found";

/// 401 `UNAUTHENTICATED`.
pub fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
}

/// 403 `FORBIDDEN`.
pub fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
}

/// The caller of `request`, from its JWT claims; 401 when there are none or no subject (in AWS
/// the authorizer already refused such a request: this is defence in depth).
pub fn caller(request: &Request) -> Result<Caller, ApiError> {
    let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else {
        return Err(unauthenticated(
            "no verified token: send Authorization: Bearer <JWT>",
        ));
    };
    let jwt = context
        .authorizer
        .as_ref()
        .and_then(|authorizer| authorizer.jwt.as_ref())
        .ok_or_else(|| unauthenticated("no verified token: send Authorization: Bearer <JWT>"))?;
    let subject = jwt
        .claims
        .get(SUBJECT_CLAIM)
        .map(String::as_str)
        .unwrap_or_default();
    let scope = jwt.claims.get(SCOPE_CLAIM).map(String::as_str);
    // API Gateway lists a route's authorization scopes in `scopes`; they come from the same
    // verified token, so they count too.
    let listed = jwt.scopes.iter().flatten().map(String::as_str);
    Caller::new(subject, scope.into_iter().chain(listed))
        .ok_or_else(|| unauthenticated("the token names no subject (`sub`)"))
}

/// The verdict as an answer: 403 for [`Verdict::Forbidden`] (naming what was refused), the
/// route's own 404 for [`Verdict::Hidden`].
pub fn enforce(verdict: Verdict, action: Action, caller: &Caller) -> Result<(), ApiError> {
    match verdict {
        Verdict::Allowed => Ok(()),
        Verdict::Forbidden => Err(forbidden(format!(
            "{} may not {}",
            caller.subject(),
            action.refusal()
        ))),
        Verdict::Hidden => Err(ApiError::not_found(ORDER_NOT_FOUND)),
    }
}

/// `caller` may do `action` to what consumer `owner` owns (a new order's `consumerId`, a
/// history's consumer, a view item's consumer).
pub fn authorize(caller: &Caller, action: Action, owner: Option<&str>) -> Result<(), ApiError> {
    enforce(caller.may(action, owner), action, caller)
}

/// `caller` may do `action` to order `order_id`. A scope that allows it on every order needs no
/// read; otherwise the owner is the loaded Order aggregate's consumer (an order's consumer never
/// changes, so reading it before the command's own load is not a race).
pub async fn authorize_on_order(
    service: &CommandService,
    caller: &Caller,
    action: Action,
    order_id: &str,
) -> Result<(), ApiError> {
    if caller.may_regardless_of_owner(action) {
        return Ok(());
    }
    let loaded = service.store().load::<Order>(order_id).await?;
    let owner = loaded
        .aggregate
        .status
        .is_some()
        .then_some(loaded.aggregate.consumer_id.as_str());
    authorize(caller, action, owner)
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

    #[test]
    fn claims_as_api_gateway_passes_them_name_the_caller() {
        let claims = json!({"jwt": {"claims": {
            "sub": "c-1", "scope": "openid ftgo/courier", "iss": "https://issuer",
            "exp": "1795712400", "cognito:groups": "[a b]"
        }, "scopes": null}});
        let who = caller(&request(Some(claims))).expect("caller");
        assert_eq!(who.subject(), "c-1");
        assert!(who.has(Scope::Courier) && !who.has(Scope::Admin));
    }

    #[test]
    fn the_scopes_list_counts_too() {
        let claims = json!({"jwt": {"claims": {"sub": "r-9"}, "scopes": ["ftgo/restaurant"]}});
        let who = caller(&request(Some(claims))).expect("caller");
        assert!(who.has(Scope::Restaurant));
    }

    #[test]
    fn no_authorizer_no_claims_or_no_subject_is_401() {
        let unauthenticated = (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
        assert_eq!(status(caller(&request(None))), unauthenticated);
        assert_eq!(status(caller(&request(Some(json!({}))))), unauthenticated);
        assert_eq!(
            status(caller(&request(Some(json!({"jwt": {"claims": {}}}))))),
            unauthenticated
        );
        assert_eq!(
            status(caller(&request(Some(
                json!({"jwt": {"claims": {"sub": "", "scope": "ftgo/admin"}}})
            )))),
            unauthenticated
        );
        // A Lambda authorizer's context is not a verified JWT.
        assert_eq!(
            status(caller(&request(Some(
                json!({"lambda": {"sub": "c-1", "scope": "ftgo/admin"}})
            )))),
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
