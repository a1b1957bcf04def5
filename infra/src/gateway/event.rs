//! A request as an API Gateway HTTP API **payload v2** event.

use std::collections::HashMap;
use std::net::SocketAddr;

use aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription,
};
use aws_lambda_events::query_map::QueryMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use serde_json::{Value, json};

use super::routes::Matched;
use crate::token::VerifiedClaims;

/// Where the gateway says it is, for the request context.
#[derive(Clone, Debug)]
pub struct ApiIdentity {
    /// `requestContext.accountId`.
    pub account_id: String,
    /// `requestContext.apiId`.
    pub api_id: String,
}

impl Default for ApiIdentity {
    fn default() -> Self {
        Self {
            account_id: "123456789012".to_owned(),
            api_id: "local".to_owned(),
        }
    }
}

/// The parts of an HTTP request that go into an event.
#[derive(Clone, Debug)]
pub struct IncomingRequest<'a> {
    /// Method.
    pub method: &'a Method,
    /// Raw path (as received).
    pub raw_path: &'a str,
    /// Raw query string, without `?` (empty when none).
    pub raw_query: &'a str,
    /// Protocol, e.g. `HTTP/1.1`.
    pub protocol: &'a str,
    /// Headers as received.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: &'a [u8],
    /// The client's address.
    pub source_ip: String,
    /// The verified token's claims (`None`: the event carries no authorizer).
    pub claims: Option<&'a VerifiedClaims>,
    /// The address the gateway listens on (for `domainName` without a `Host` header, and
    /// `x-forwarded-port`).
    pub local_addr: SocketAddr,
}

/// Builds the API Gateway HTTP API v2 event for `req` matched to `matched`, with `request_id`
/// and the time `now`.
pub fn build_event(
    req: &IncomingRequest<'_>,
    matched: &Matched<'_>,
    identity: &ApiIdentity,
    request_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let route_key = matched.route.route_key();

    // Headers: lower-case names (HeaderName already is), repeated values comma-joined; cookies go
    // to their own field, as API Gateway does.
    let mut headers = HeaderMap::new();
    for name in req.headers.keys() {
        if name == header::COOKIE {
            continue;
        }
        let joined = req
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        if let Ok(v) = HeaderValue::from_str(&joined) {
            headers.insert(name.clone(), v);
        }
    }
    let forwarded = [
        ("x-forwarded-for", req.source_ip.clone()),
        ("x-forwarded-proto", "http".to_owned()),
        ("x-forwarded-port", req.local_addr.port().to_string()),
    ];
    for (name, value) in forwarded {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    let cookies: Vec<String> = req
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();

    let domain_name = req
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| req.local_addr.to_string());
    let domain_prefix = domain_name
        .split(['.', ':'])
        .next()
        .unwrap_or_default()
        .to_owned();

    let (body, is_base64_encoded) = encode_body(req.headers, req.body);

    let mut http_description = ApiGatewayV2httpRequestContextHttpDescription::default();
    http_description.method = req.method.clone();
    http_description.path = Some(req.raw_path.to_owned());
    http_description.protocol = Some(req.protocol.to_owned());
    http_description.source_ip = Some(req.source_ip.clone());
    http_description.user_agent = Some(
        req.headers
            .get(header::USER_AGENT)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    );

    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route_key.clone());
    context.account_id = Some(identity.account_id.clone());
    context.stage = Some("$default".to_owned());
    context.request_id = Some(request_id.to_owned());
    context.apiid = Some(identity.api_id.clone());
    context.domain_name = Some(domain_name);
    context.domain_prefix = Some(domain_prefix);
    context.time = Some(now.format("%d/%b/%Y:%H:%M:%S %z").to_string());
    context.time_epoch = now.timestamp_millis();
    context.http = http_description;
    context.authorizer = req.claims.map(|verified| {
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims = verified.claims.clone();
        jwt.scopes = Some(verified.scopes.clone());
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        authorizer
    });

    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".to_owned());
    event.route_key = Some(route_key);
    event.raw_path = Some(req.raw_path.to_owned());
    event.raw_query_string = Some(req.raw_query.to_owned());
    event.cookies = (!cookies.is_empty()).then_some(cookies);
    event.headers = headers;
    event.query_string_parameters = parse_query(req.raw_query);
    event.path_parameters = matched.path_parameters.clone();
    event.request_context = context;
    event.body = body;
    event.is_base64_encoded = is_base64_encoded;

    let mut value = serde_json::to_value(&event).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut value {
        // Fields of the struct that only Custom Authorizer v1 payloads carry: not in a v2 event.
        for key in [
            "type",
            "methodArn",
            "httpMethod",
            "identitySource",
            "authorizationToken",
            "resource",
        ] {
            map.remove(key);
        }
        if map
            .get("stageVariables")
            .is_some_and(|v| v.as_object().is_none_or(|o| o.is_empty()))
        {
            map.remove("stageVariables");
        }
    }
    value
}

/// The query string as API Gateway passes it: decoded, repeated keys comma-joined (the joining is
/// done when `QueryMap` serialises).
fn parse_query(raw: &str) -> QueryMap {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        if !key.is_empty() {
            map.entry(key.into_owned())
                .or_default()
                .push(value.into_owned());
        }
    }
    QueryMap::from(map)
}

/// The event body: text as is when it is UTF-8 and the content type is textual, otherwise
/// base64 with `isBase64Encoded`.
fn encode_body(headers: &HeaderMap, body: &[u8]) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    let textual = headers.get(header::CONTENT_ENCODING).is_none()
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(is_text_content_type);
    match std::str::from_utf8(body) {
        Ok(text) if textual => (Some(text.to_owned()), false),
        _ => (Some(BASE64.encode(body)), true),
    }
}

fn is_text_content_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "" | "application/json"
                | "application/xml"
                | "application/x-www-form-urlencoded"
                | "application/javascript"
                | "application/graphql"
                | "application/yaml"
                | "application/x-yaml"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::routes::tests::table;
    use crate::token::LocalJwt;

    fn event_for(
        method: Method,
        uri_path: &str,
        query: &str,
        headers: HeaderMap,
        body: &[u8],
    ) -> Value {
        let t = table();
        let matched = t.find(&method, uri_path).expect("route");
        let req = IncomingRequest {
            method: &method,
            raw_path: uri_path,
            raw_query: query,
            protocol: "HTTP/1.1",
            headers: &headers,
            body,
            source_ip: "127.0.0.1".to_owned(),
            claims: None,
            local_addr: "127.0.0.1:3000".parse().expect("addr"),
        };
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        build_event(&req, &matched, &ApiIdentity::default(), "req-1", now)
    }

    #[test]
    fn the_event_is_a_payload_v2_event() {
        let mut headers = HeaderMap::new();
        headers.insert("Content-Type", HeaderValue::from_static("application/json"));
        headers.append("X-Many", HeaderValue::from_static("a"));
        headers.append("X-Many", HeaderValue::from_static("b"));
        headers.insert("Cookie", HeaderValue::from_static("s=1; t=2"));
        headers.insert("User-Agent", HeaderValue::from_static("curl/8"));
        headers.insert("Host", HeaderValue::from_static("127.0.0.1:3000"));
        let e = event_for(
            Method::POST,
            "/orders/o-1/approve",
            "a=1&a=2&b=x%20y&c",
            headers,
            br#"{"x":1}"#,
        );
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["routeKey"], "POST /orders/{orderId}/approve");
        assert_eq!(e["rawPath"], "/orders/o-1/approve");
        assert_eq!(e["rawQueryString"], "a=1&a=2&b=x%20y&c");
        assert_eq!(e["queryStringParameters"]["a"], "1,2");
        assert_eq!(e["queryStringParameters"]["b"], "x y");
        assert_eq!(e["queryStringParameters"]["c"], "");
        assert_eq!(e["pathParameters"]["orderId"], "o-1");
        assert_eq!(e["headers"]["x-many"], "a,b");
        assert_eq!(e["headers"]["content-type"], "application/json");
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!(e["cookies"], json!(["s=1", "t=2"]));
        assert_eq!(e["body"], r#"{"x":1}"#);
        assert_eq!(e["isBase64Encoded"], false);
        let ctx = &e["requestContext"];
        assert_eq!(ctx["accountId"], "123456789012");
        assert_eq!(ctx["apiId"], "local");
        assert_eq!(ctx["domainName"], "127.0.0.1:3000");
        assert_eq!(ctx["requestId"], "req-1");
        assert_eq!(ctx["routeKey"], "POST /orders/{orderId}/approve");
        assert_eq!(ctx["stage"], "$default");
        assert_eq!(ctx["timeEpoch"], 1_700_000_000_000_i64);
        assert_eq!(ctx["time"], "14/Nov/2023:22:13:20 +0000");
        assert_eq!(ctx["http"]["method"], "POST");
        assert_eq!(ctx["http"]["path"], "/orders/o-1/approve");
        assert_eq!(ctx["http"]["protocol"], "HTTP/1.1");
        assert_eq!(ctx["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(ctx["http"]["userAgent"], "curl/8");
        assert!(e.get("httpMethod").is_none(), "no authorizer-only fields");
        // The event parses back as what the Lambda side expects.
        let back: ApiGatewayV2httpRequest = serde_json::from_value(e).expect("v2 request");
        assert_eq!(back.request_context.http.method, Method::POST);
    }

    #[test]
    fn a_verified_token_s_claims_reach_the_function_as_api_gateway_passes_them() {
        let jwt = LocalJwt::new("s");
        let token = jwt
            .issue("c-1", &["ftgo/courier"], std::time::Duration::from_secs(60))
            .expect("token");
        let verified = jwt.verify(&token).expect("valid");
        let t = table();
        let matched = t.find(&Method::GET, "/orders/o-1").expect("route");
        let headers = HeaderMap::new();
        let req = IncomingRequest {
            method: &Method::GET,
            raw_path: "/orders/o-1",
            raw_query: "",
            protocol: "HTTP/1.1",
            headers: &headers,
            body: b"",
            source_ip: "127.0.0.1".to_owned(),
            claims: Some(&verified),
            local_addr: "127.0.0.1:3000".parse().expect("addr"),
        };
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let e = build_event(&req, &matched, &ApiIdentity::default(), "req-1", now);
        let jwt_context = &e["requestContext"]["authorizer"]["jwt"];
        assert_eq!(jwt_context["claims"]["sub"], "c-1");
        assert_eq!(jwt_context["claims"]["scope"], "ftgo/courier");
        assert!(
            jwt_context["claims"]["exp"].is_string(),
            "claims are strings"
        );
        assert_eq!(jwt_context["scopes"], json!(["ftgo/courier"]));
        let back: ApiGatewayV2httpRequest = serde_json::from_value(e).expect("v2 request");
        let claims = back
            .request_context
            .authorizer
            .and_then(|a| a.jwt)
            .expect("jwt");
        assert_eq!(claims.claims["sub"], "c-1");

        let anonymous = event_for(Method::GET, "/orders/o-1", "", HeaderMap::new(), b"");
        assert!(anonymous["requestContext"].get("authorizer").is_none());
    }

    #[test]
    fn binary_bodies_are_base64() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/octet-stream"),
        );
        let e = event_for(Method::POST, "/orders", "", headers, b"abc");
        assert_eq!(e["isBase64Encoded"], true);
        assert_eq!(e["body"], BASE64.encode(b"abc"));

        let e = event_for(Method::POST, "/orders", "", HeaderMap::new(), &[0xff, 0xfe]);
        assert_eq!(e["isBase64Encoded"], true);

        let e = event_for(Method::POST, "/orders", "", HeaderMap::new(), b"");
        assert!(e.get("body").is_none());
        assert_eq!(e["isBase64Encoded"], false);
    }
}
