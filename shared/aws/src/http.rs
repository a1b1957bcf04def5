//! The HTTP edge shared by the HTTP Lambdas: the error shape of DESIGN §3
//! (`{"error":{"code","message"}}`), JSON body parsing that names the offending field, and
//! small request accessors.

use http::{HeaderMap, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use ftgo_domain::DomainError;
use ftgo_domain::access::{Action, Caller, Verdict};

use crate::conditional::Precondition;
use crate::error::Error;

/// Request bodies above this many bytes answer 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `Retry-After` of a 503 `UNAVAILABLE` answer (AWS throttled or was briefly unavailable).
pub const RETRY_AFTER_UNAVAILABLE_SECONDS: u32 = 1;

/// An error answer: status, machine-readable code, human message, optional extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// `VALIDATION_FAILED`, `NOT_FOUND`, …
    pub code: &'static str,
    /// What went wrong, naming the field where there is one.
    pub message: String,
    /// `Retry-After` seconds, for answers that invite a retry.
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error answer without extra headers.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `VALIDATION_FAILED` naming `field`.
    pub fn validation(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "VALIDATION_FAILED",
            format!("{field}: {message}"),
        )
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// The JSON answer.
    pub fn into_response(self) -> Response<Body> {
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
        }
        let body = Envelope {
            error: Inner {
                code: self.code,
                message: &self.message,
            },
        };
        let mut response = json_response(self.status, &body);
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// The message of a 404 for an order the caller may not see (the same as for one that does not
/// exist, so that a refusal reveals nothing).
pub const ORDER_NOT_FOUND: &str = "order not found";

/// The answer to a caller the access policy refuses: 403 `FORBIDDEN` naming what they may not
/// do, or 404 when the order is hidden from them; `None` when the verdict allows.
pub fn refused(verdict: Verdict, action: Action, caller: &Caller) -> Option<ApiError> {
    match verdict {
        Verdict::Allowed => None,
        Verdict::Forbidden => Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            format!("{} may not {}", caller.subject(), action.refusal()),
        )),
        Verdict::Hidden => Some(ApiError::not_found(ORDER_NOT_FOUND)),
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Domain(DomainError::Validation { field, message }) => {
                ApiError::validation(&field, message)
            }
            Error::Domain(DomainError::InvalidState(message)) => {
                crate::telemetry::count(crate::telemetry::names::COMMANDS_REJECTED, 1);
                ApiError::new(StatusCode::CONFLICT, "INVALID_STATE", message)
            }
            Error::Domain(DomainError::NotFound(message)) => ApiError::not_found(message),
            Error::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "CONFLICT", message),
            Error::Refused(refusal) => refused(refusal.verdict, refusal.action, &refusal.caller)
                .unwrap_or_else(|| ApiError::not_found(ORDER_NOT_FOUND)),
            Error::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                error.to_string(),
            ),
            Error::VersionMismatch { .. } => {
                crate::telemetry::count(crate::telemetry::names::COMMAND_CONFLICTS, 1);
                ApiError::new(
                    StatusCode::PRECONDITION_FAILED,
                    "VERSION_MISMATCH",
                    error.to_string(),
                )
            }
            Error::Unavailable { .. } => {
                tracing::warn!(error = %error, "AWS throttled or unavailable; answering 503");
                ApiError {
                    retry_after: Some(RETRY_AFTER_UNAVAILABLE_SECONDS),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "UNAVAILABLE",
                        "the service is busy or briefly unavailable; retry later",
                    )
                }
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "internal error; the request was logged",
                )
            }
        }
    }
}

/// A JSON answer with `status`.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Adds the strong `ETag: "<tag>"` to `response`: a command's aggregate version after it, or
/// a view's tag ([`crate::conditional::view_tag`]).
pub fn with_etag(mut response: Response<Body>, tag: impl std::fmt::Display) -> Response<Body> {
    if let Ok(value) = http::HeaderValue::from_str(&format!("\"{tag}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// Turns a handler's result into the answer, errors included.
pub fn respond(result: Result<Response<Body>, ApiError>) -> Response<Body> {
    result.unwrap_or_else(ApiError::into_response)
}

/// Whether `headers` declare a body this API reads as JSON. A missing type and curl's default
/// form type are accepted (the body must still be JSON); anything else answers 415.
fn accepts_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let media_type = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media_type == "application/json"
        || media_type.ends_with("+json")
        || media_type == "application/x-www-form-urlencoded"
        || media_type == "text/plain"
}

/// Parses the request body as JSON `T`: 415 for a non-JSON content type, 413 over
/// [`MAX_BODY_BYTES`], 400 naming the offending field otherwise.
pub fn json_body<T: DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    if !accepts_content_type(request.headers()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "the body must be application/json",
        ));
    }
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!(
                "the body has {} bytes; at most {MAX_BODY_BYTES} are accepted",
                bytes.len()
            ),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::validation("body", "a JSON body is required"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let structural = inner.classify() != serde_json::error::Category::Data;
        if structural || path == "." || path == "?" || path.is_empty() {
            ApiError::validation("body", format!("malformed JSON: {inner}"))
        } else {
            ApiError::validation(&path, inner)
        }
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::validation("body", error))?;
    Ok(value)
}

/// The API Gateway request id (the correlation id of what the request causes).
pub fn request_id(request: &Request) -> String {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    }
    .or_else(|| {
        request
            .lambda_context_ref()
            .map(|context| context.request_id.clone())
    })
    .unwrap_or_default()
}

/// Checks an identifier taken from the path (`orderId`, `consumerId`): 400 naming `field` when
/// it is longer than any id this system hands out or accepts.
pub fn path_id<'a>(field: &str, value: &'a str) -> Result<&'a str, ApiError> {
    ftgo_domain::order::require_id(field, value)
        .map_err(|error| ApiError::from(crate::Error::from(error)))?;
    Ok(value)
}

/// The `If-Match` precondition, if sent (`"3"`, `3`, `*`, a list); 400 when it is malformed.
pub fn if_match(request: &Request) -> Result<Option<Precondition>, ApiError> {
    precondition(request, header::IF_MATCH, "If-Match")
}

/// The `If-None-Match` precondition, if sent; 400 when it is malformed.
pub fn if_none_match(request: &Request) -> Result<Option<Precondition>, ApiError> {
    precondition(request, header::IF_NONE_MATCH, "If-None-Match")
}

fn precondition(
    request: &Request,
    name: header::HeaderName,
    field: &str,
) -> Result<Option<Precondition>, ApiError> {
    // Several header lines form one list (RFC 9110 §5.3).
    let values = request
        .headers()
        .get_all(name)
        .iter()
        .map(|value| {
            value
                .to_str()
                .map_err(|_| "is not visible ASCII".to_owned())
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| ApiError::validation(field, reason))?;
    if values.is_empty() {
        return Ok(None);
    }
    Precondition::parse(&values.join(","))
        .map(Some)
        .map_err(|reason| ApiError::validation(field, reason))
}

/// 304 Not Modified: no body, the current `ETag`.
pub fn not_modified(tag: &str) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    with_etag(response, tag)
}

/// 405/404 for a method or path the function does not serve.
pub fn no_route(request: &Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        request.method(),
        request.raw_http_path()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_aws_answers_503_with_retry_after() {
        let error = Error::Unavailable {
            service: "Query ftgo-events",
            message: "ThrottlingException".to_owned(),
        };
        let response = ApiError::from(error).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let Body::Text(body) = response.body() else {
            panic!("text body expected");
        };
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "UNAVAILABLE");
    }

    #[test]
    fn error_answers_have_the_contract_shape() {
        let response =
            ApiError::validation("lineItems[0].quantity", "must be at least 1").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let Body::Text(text) = response.body() else {
            panic!("text body")
        };
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(json["error"]["code"], "VALIDATION_FAILED");
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("lineItems[0].quantity")
        );
    }
}
