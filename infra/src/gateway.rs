//! The local API gateway: an HTTP server that routes each request as the template's `HttpApi`
//! routes say, turns it into an API Gateway HTTP API **payload v2** event, invokes the function
//! through the runtime emulator, and turns the function's answer back into HTTP.
//!
//! Like API Gateway's JWT authorizer, it lets no request through without a valid
//! `Authorization: Bearer <JWT>` ([`crate::token`]: HS256, issuer `ftgo-local`): none or a bad
//! one answers 401 `UNAUTHENTICATED` without invoking anything, and a valid one's claims reach
//! the function in `requestContext.authorizer.jwt`, as API Gateway passes them. There is no
//! switch to turn this off.
//!
//! The translation is pure ([`RouteTable::find`], [`build_event`], [`response_from_payload`]) and
//! tested without a server; [`Gateway`] is the thin HTTP shell around it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription, ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body as LambdaBody;
use aws_lambda_events::query_map::QueryMap;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::invoke::{InvokeError, Invoker, is_error_document};
use crate::token::{LocalJwt, TokenError, VerifiedClaims};

/// API Gateway's payload limit: larger request bodies answer 413.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// One `HttpApi` route: a method (or any method) and a path template such as
/// `/orders/{orderId}/approve`, served by a function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method; `None` for `ANY`.
    pub method: Option<Method>,
    /// The path template, with `{name}` (one segment) and a final `{name+}` (greedy) parameters.
    pub path: String,
    /// The local function name (the binary name) that serves the route.
    pub function: String,
}

impl Route {
    /// A route from the template's `Method` (case-insensitive, `ANY` or `*` for any) and `Path`.
    pub fn new(method: &str, path: impl Into<String>, function: impl Into<String>) -> Self {
        let method = match method.trim().to_ascii_uppercase().as_str() {
            "ANY" | "*" | "X-AMAZON-APIGATEWAY-ANY-METHOD" => None,
            m => Method::from_bytes(m.as_bytes()).ok(),
        };
        Self {
            method,
            path: path.into(),
            function: function.into(),
        }
    }

    /// The route key API Gateway reports: `POST /orders/{orderId}/approve` (or `ANY /…`).
    pub fn route_key(&self) -> String {
        match &self.method {
            Some(m) => format!("{m} {}", self.path),
            None => format!("ANY {}", self.path),
        }
    }
}

/// A request matched to a route, with its path parameters (decoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matched<'a> {
    /// The route.
    pub route: &'a Route,
    /// `{name}` → value.
    pub path_parameters: HashMap<String, String>,
}

/// The routes of the API, matched as API Gateway does: the most specific route wins (literal
/// segments over parameters, parameters over a greedy `{proxy+}`, a method over `ANY`).
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// A table of `routes`.
    pub fn new(routes: Vec<Route>) -> Self {
        Self { routes }
    }

    /// The routes.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route serving `method` on `path` (the raw, still percent-encoded path), if any.
    pub fn find(&self, method: &Method, path: &str) -> Option<Matched<'_>> {
        let mut best: Option<((bool, usize, bool), Matched<'_>)> = None;
        for route in &self.routes {
            if route.method.as_ref().is_some_and(|m| m != method) {
                continue;
            }
            let Some((params, literals, greedy)) = match_path(&route.path, path) else {
                continue;
            };
            let score = (!greedy, literals, route.method.is_some());
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((
                    score,
                    Matched {
                        route,
                        path_parameters: params,
                    },
                ));
            }
        }
        best.map(|(_, m)| m)
    }
}

/// Matches a path template against a raw path: the parameters, the number of literal segments,
/// and whether a greedy parameter was used.
fn match_path(template: &str, path: &str) -> Option<(HashMap<String, String>, usize, bool)> {
    let t: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut params = HashMap::new();
    let mut literals = 0;
    for (i, seg) in t.iter().enumerate() {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if let Some(name) = name.strip_suffix('+') {
                if i + 1 != t.len() || p.len() <= i {
                    return None;
                }
                let rest = p[i..].join("/");
                if rest.is_empty() {
                    return None;
                }
                params.insert(name.to_owned(), decode(&rest));
                return Some((params, literals, true));
            }
            let value = p.get(i)?;
            if value.is_empty() {
                return None;
            }
            params.insert(name.to_owned(), decode(value));
        } else {
            if p.get(i) != Some(seg) {
                return None;
            }
            literals += 1;
        }
    }
    (p.len() == t.len()).then_some((params, literals, false))
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

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
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(&k.replace('+', " "));
        if k.is_empty() {
            continue;
        }
        map.entry(k).or_default().push(decode(&v.replace('+', " ")));
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

/// Why a request could not be answered by a function.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No route serves this method and path.
    #[error("no route for {method} {path}")]
    NoRoute {
        /// Method.
        method: Method,
        /// Path.
        path: String,
    },
    /// No valid bearer token: API Gateway's JWT authorizer would refuse the request too.
    #[error("{0}")]
    Unauthenticated(#[from] TokenError),
    /// The body is larger than API Gateway accepts.
    #[error("request body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// The request body could not be read.
    #[error("could not read the request body: {0}")]
    Body(String),
    /// The function could not be invoked.
    #[error("{0}")]
    Invoke(#[from] InvokeError),
    /// The function failed.
    #[error("function {function} failed: {message}")]
    Function {
        /// The function.
        function: String,
        /// Its error.
        message: String,
    },
    /// The function's answer is not a valid response.
    #[error("function {function} answered a malformed response: {reason}")]
    BadResponse {
        /// The function.
        function: String,
        /// What is wrong.
        reason: String,
    },
}

impl GatewayError {
    /// The HTTP status and error code of DESIGN §3's error shape.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            GatewayError::NoRoute { .. } => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            GatewayError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            GatewayError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            GatewayError::Body(_) => (StatusCode::BAD_REQUEST, "VALIDATION_FAILED"),
            GatewayError::Invoke(InvokeError::Timeout { .. }) => {
                (StatusCode::GATEWAY_TIMEOUT, "GATEWAY_TIMEOUT")
            }
            GatewayError::Invoke(_)
            | GatewayError::Function { .. }
            | GatewayError::BadResponse { .. } => (StatusCode::BAD_GATEWAY, "BAD_GATEWAY"),
        }
    }

    /// The error as an HTTP answer: `{"error":{"code":…,"message":…}}`.
    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let (status, code) = self.status_and_code();
        let body = json!({"error": {"code": code, "message": self.to_string()}});
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(v) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert("apigw-requestid", v);
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Turns a function's answer into an HTTP response, as API Gateway's payload v2 does: a
/// `{statusCode, headers, multiValueHeaders, cookies, body, isBase64Encoded}` object is the
/// response; any other valid JSON is a 200 `application/json` body; an error document or invalid
/// JSON is an error.
pub fn response_from_payload(
    function: &str,
    payload: &[u8],
) -> Result<Response<Body>, GatewayError> {
    let bad = |reason: String| GatewayError::BadResponse {
        function: function.to_owned(),
        reason,
    };
    if is_error_document(payload) {
        let doc: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
        let message = doc
            .get("errorMessage")
            .and_then(Value::as_str)
            .or_else(|| doc.get("errorType").and_then(Value::as_str))
            .unwrap_or("error")
            .to_owned();
        return Err(GatewayError::Function {
            function: function.to_owned(),
            message,
        });
    }
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Some(object) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        let mut response = Response::new(Body::from(Bytes::copy_from_slice(payload)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(response);
    };
    let mut object = object.clone();
    for key in ["cookies", "headers", "multiValueHeaders"] {
        if object.get(key).is_none_or(Value::is_null) {
            let empty = if key == "cookies" {
                json!([])
            } else {
                json!({})
            };
            object.insert(key.to_owned(), empty);
        }
    }
    let parsed: ApiGatewayV2httpResponse =
        serde_json::from_value(Value::Object(object)).map_err(|e| bad(e.to_string()))?;
    let status = u16::try_from(parsed.status_code)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| {
            bad(format!(
                "statusCode {} is not an HTTP status",
                parsed.status_code
            ))
        })?;

    let body = match parsed.body {
        None | Some(LambdaBody::Empty) => Bytes::new(),
        Some(LambdaBody::Text(text)) if parsed.is_base64_encoded => Bytes::from(
            BASE64
                .decode(text.trim())
                .map_err(|e| bad(format!("body is not base64: {e}")))?,
        ),
        Some(LambdaBody::Text(text)) => Bytes::from(text),
        Some(LambdaBody::Binary(bytes)) => Bytes::from(bytes),
        Some(_) => Bytes::new(),
    };

    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in parsed.headers.iter() {
        headers.insert(name.clone(), value.clone());
    }
    for (name, value) in parsed.multi_value_headers.iter() {
        headers.append(name.clone(), value.clone());
    }
    for cookie in &parsed.cookies {
        if let Ok(v) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

/// Options of the gateway.
#[derive(Clone, Debug, Default)]
pub struct GatewayOptions {
    /// Identity reported in the request context.
    pub identity: ApiIdentity,
    /// The tokens accepted (default: `FTGO_LOCAL_JWT_SECRET`, else the development secret).
    pub auth: LocalJwt,
}

struct Shared {
    routes: RouteTable,
    invoker: Arc<dyn Invoker>,
    options: GatewayOptions,
    local_addr: SocketAddr,
    counter: AtomicU64,
}

/// The local API gateway.
pub struct Gateway {
    routes: RouteTable,
    invoker: Arc<dyn Invoker>,
    options: GatewayOptions,
}

impl Gateway {
    /// A gateway serving `routes` by invoking functions through `invoker`.
    pub fn new(routes: RouteTable, invoker: Arc<dyn Invoker>, options: GatewayOptions) -> Self {
        Self {
            routes,
            invoker,
            options,
        }
    }

    /// Serves HTTP on `listener` until `shutdown` completes (then finishes in-flight requests).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            routes: self.routes,
            invoker: self.invoker,
            options: self.options,
            local_addr,
            counter: AtomicU64::new(0),
        });
        let app = axum::Router::new().fallback(handle).with_state(shared);
        tracing::info!(%local_addr, "local API gateway listening");
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response<Body> {
    let request_id = new_request_id(&shared);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    match answer(&shared, peer, request, &request_id).await {
        Ok(mut response) => {
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert("apigw-requestid", v);
            }
            tracing::info!(%method, %path, status = response.status().as_u16(), %request_id, "request");
            response
        }
        Err(error) => {
            let (status, _) = error.status_and_code();
            if status.is_server_error() {
                tracing::warn!(%method, %path, status = status.as_u16(), %request_id, %error, "request failed");
            } else {
                tracing::info!(%method, %path, status = status.as_u16(), %request_id, %error, "request refused");
            }
            error.into_response(&request_id)
        }
    }
}

fn new_request_id(shared: &Shared) -> String {
    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n}", uuid::Uuid::new_v4().simple())
}

async fn answer(
    shared: &Shared,
    peer: SocketAddr,
    request: Request<Body>,
    request_id: &str,
) -> Result<Response<Body>, GatewayError> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let matched =
        shared
            .routes
            .find(&parts.method, &path)
            .ok_or_else(|| GatewayError::NoRoute {
                method: parts.method.clone(),
                path: path.clone(),
            })?;
    // Before the body is read: an unauthenticated request costs nothing.
    let verified = shared.options.auth.verify_header(
        parts
            .headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    )?;

    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(GatewayError::TooLarge);
    }
    let body = http_body_util::Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                GatewayError::TooLarge
            } else {
                GatewayError::Body(e.to_string())
            }
        })?
        .to_bytes();

    let protocol = format!("{:?}", parts.version);
    let incoming = IncomingRequest {
        method: &parts.method,
        raw_path: &path,
        raw_query: parts.uri.query().unwrap_or_default(),
        protocol: &protocol,
        headers: &parts.headers,
        body: &body,
        source_ip: peer.ip().to_string(),
        claims: Some(&verified),
        local_addr: shared.local_addr,
    };
    let event = build_event(
        &incoming,
        &matched,
        &shared.options.identity,
        request_id,
        chrono::Utc::now(),
    );
    let function = matched.route.function.clone();
    let payload = Bytes::from(event.to_string());
    let invocation = shared.invoker.invoke(&function, payload).await?;
    if invocation.function_error.is_some() {
        return Err(GatewayError::Function {
            message: invocation.error_message(),
            function,
        });
    }
    response_from_payload(&function, &invocation.payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::new(vec![
            Route::new("POST", "/orders", "order-commands"),
            Route::new("post", "/orders/{orderId}/approve", "order-commands"),
            Route::new("GET", "/orders/{orderId}", "order-history-query"),
            Route::new("GET", "/orders/special", "special"),
            Route::new("ANY", "/files/{proxy+}", "files"),
            Route::new("GET", "/files/{name}", "one-file"),
        ])
    }

    #[test]
    fn a_parameterised_route_matches_and_decodes_its_parameter() {
        let t = table();
        let m = t
            .find(&Method::POST, "/orders/o%201/approve")
            .expect("route");
        assert_eq!(m.route.route_key(), "POST /orders/{orderId}/approve");
        assert_eq!(m.path_parameters["orderId"], "o 1");
    }

    #[test]
    fn the_method_must_match() {
        assert!(table().find(&Method::GET, "/orders").is_none());
        assert!(table().find(&Method::DELETE, "/orders/o-1").is_none());
    }

    #[test]
    fn literal_segments_beat_parameters_and_parameters_beat_greedy() {
        let t = table();
        assert_eq!(
            t.find(&Method::GET, "/orders/special")
                .expect("route")
                .route
                .function,
            "special"
        );
        assert_eq!(
            t.find(&Method::GET, "/files/a")
                .expect("route")
                .route
                .function,
            "one-file"
        );
        let greedy = t.find(&Method::PUT, "/files/a/b/c").expect("route");
        assert_eq!(greedy.route.route_key(), "ANY /files/{proxy+}");
        assert_eq!(greedy.path_parameters["proxy"], "a/b/c");
    }

    #[test]
    fn an_empty_segment_does_not_fill_a_parameter() {
        assert!(table().find(&Method::POST, "/orders//approve").is_none());
        assert!(table().find(&Method::GET, "/orders/").is_none());
    }

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

    async fn body_of(r: Response<Body>) -> (StatusCode, HeaderMap, Bytes) {
        let (parts, body) = r.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        (parts.status, parts.headers, bytes)
    }

    #[tokio::test]
    async fn a_v2_response_becomes_http() {
        let payload = json!({
            "statusCode": 201,
            "headers": {"location": "/orders/o-1", "content-type": "application/json"},
            "multiValueHeaders": {"x-m": ["1", "2"]},
            "cookies": ["a=b; Path=/"],
            "body": "{\"orderId\":\"o-1\"}",
            "isBase64Encoded": false
        });
        let r = response_from_payload("f", payload.to_string().as_bytes()).expect("response");
        let (status, headers, body) = body_of(r).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(headers["location"], "/orders/o-1");
        assert_eq!(headers.get_all("x-m").iter().count(), 2);
        assert_eq!(headers["set-cookie"], "a=b; Path=/");
        assert_eq!(&body[..], br#"{"orderId":"o-1"}"#);
    }

    #[tokio::test]
    async fn a_base64_response_is_decoded_and_missing_fields_default() {
        let payload =
            json!({"statusCode": 200, "body": BASE64.encode([0u8, 1, 2]), "isBase64Encoded": true});
        let r = response_from_payload("f", payload.to_string().as_bytes()).expect("response");
        let (status, _, body) = body_of(r).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], &[0u8, 1, 2]);
    }

    #[tokio::test]
    async fn json_without_status_code_is_a_200_json_body() {
        let r = response_from_payload("f", br#"{"hello":"world"}"#).expect("response");
        let (status, headers, body) = body_of(r).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(&body[..], br#"{"hello":"world"}"#);
    }

    #[test]
    fn an_error_document_or_garbage_is_a_bad_gateway() {
        let e = response_from_payload("f", br#"{"errorType":"X","errorMessage":"boom"}"#)
            .expect_err("error");
        assert_eq!(e.status_and_code().0, StatusCode::BAD_GATEWAY);
        let e = response_from_payload("f", b"not json").expect_err("error");
        assert_eq!(e.status_and_code().0, StatusCode::BAD_GATEWAY);
        let e = response_from_payload("f", br#"{"statusCode":"x"}"#).expect_err("error");
        assert_eq!(e.status_and_code().0, StatusCode::BAD_GATEWAY);
    }
}
