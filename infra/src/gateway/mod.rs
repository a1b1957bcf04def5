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
//! It also serves the HTTP API's description, `openapi.yaml` (OpenAPI 3.1) as built into this
//! binary, as JSON at `GET /openapi.json` (DESIGN §11), without a token.
//!
//! The translation is pure and tested without a server: [`RouteTable::find`] (`routes.rs`), the
//! request as an event (`event.rs`), the function's answer as HTTP (`response.rs`); [`Gateway`]
//! is the thin HTTP shell around it.

mod event;
mod response;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::json;
use tokio::net::TcpListener;

use crate::invoke::{InvokeError, Invoker};
use crate::token::{LocalJwt, TokenError};

pub use event::ApiIdentity;
pub use routes::{Matched, Route, RouteTable};

use event::{IncomingRequest, build_event};
use response::response_from_payload;

/// API Gateway's payload limit: larger request bodies answer 413.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Where the API's description is served.
pub const API_DESCRIPTION_PATH: &str = "/openapi.json";
/// `openapi.yaml` at the repository root, the one the functions of this build answer by.
const API_DESCRIPTION_YAML: &str = include_str!("../../../openapi.yaml");

/// The API's description as JSON, or why `openapi.yaml` does not read as YAML.
fn api_description_json() -> Result<Bytes, String> {
    let document: serde_json::Value =
        serde_yaml_ng::from_str(API_DESCRIPTION_YAML).map_err(|e| format!("openapi.yaml: {e}"))?;
    Ok(Bytes::from(document.to_string()))
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

/// Options of the gateway.
#[derive(Clone, Debug, Default)]
pub struct GatewayOptions {
    /// Identity reported in the request context.
    pub identity: ApiIdentity,
    /// The tokens accepted (default: `FTGO_LOCAL_JWT_SECRET`, else the development secret).
    pub auth: LocalJwt,
}

/// The gateway and the address it serves on, as every request sees them.
struct Shared {
    gateway: Gateway,
    local_addr: SocketAddr,
}

/// The local API gateway.
pub struct Gateway {
    routes: RouteTable,
    invoker: Arc<dyn Invoker>,
    options: GatewayOptions,
    api_description: Result<Bytes, String>,
}

impl Gateway {
    /// A gateway serving `routes` by invoking functions through `invoker`.
    pub fn new(routes: RouteTable, invoker: Arc<dyn Invoker>, options: GatewayOptions) -> Self {
        Self {
            routes,
            invoker,
            options,
            api_description: api_description_json(),
        }
    }

    /// Serves HTTP on `listener` until `shutdown` completes (then finishes in-flight requests).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let local_addr = listener.local_addr()?;
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::new(Shared {
                gateway: self,
                local_addr,
            }));
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
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if method == Method::GET && path == API_DESCRIPTION_PATH {
        return describe_api(&shared.gateway.api_description);
    }
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

/// `GET /openapi.json`: the API's description (a 500 naming the problem if it does not read).
fn describe_api(description: &Result<Bytes, String>) -> Response<Body> {
    let (status, body) = match description {
        Ok(json) => (StatusCode::OK, json.clone()),
        Err(problem) => {
            let error = json!({"error": {"code": "INTERNAL", "message": problem}});
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from(error.to_string()),
            )
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn answer(
    shared: &Shared,
    peer: SocketAddr,
    request: Request<Body>,
    request_id: &str,
) -> Result<Response<Body>, GatewayError> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let matched = shared
        .gateway
        .routes
        .find(&parts.method, &path)
        .ok_or_else(|| GatewayError::NoRoute {
            method: parts.method.clone(),
            path: path.clone(),
        })?;
    // Before the body is read: an unauthenticated request costs nothing.
    let verified = shared.gateway.options.auth.verify_header(
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
        &shared.gateway.options.identity,
        request_id,
        chrono::Utc::now(),
    );
    let function = matched.route.function.clone();
    let payload = Bytes::from(event.to_string());
    let invocation = shared.gateway.invoker.invoke(&function, payload).await?;
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

    #[test]
    fn the_api_description_reads_and_is_served_as_json() {
        let json = api_description_json().expect("openapi.yaml reads");
        let document: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
        assert_eq!(document["openapi"], "3.1.0");
        assert!(document["paths"]["/orders"]["post"].is_object());
        let response = describe_api(&Ok(json));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
