//! `Idempotency-Key` at the HTTP edge (DESIGN §3 "Retries are safe"): reads the key of a command
//! request, claims it in the [`IdempotencyStore`](crate::store::idempotency) and answers a
//! replay, a reuse (422) or a wait (409 + `Retry-After`) as its [`Decision`] says. The records,
//! their state machine and the table live in [`crate::store::idempotency`]; this module is only
//! what HTTP adds to them.

use std::future::Future;

use http::{HeaderName, HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use time::OffsetDateTime;

use crate::http::ApiError;
use crate::store::idempotency::{
    Claim, DEFAULT_IN_PROGRESS_TTL, Decision, IdempotencyStore, IdempotentRequest, StoredResponse,
};

/// The request header carrying the client's key.
pub const HEADER: &str = "idempotency-key";
/// The header a replayed answer carries (`true`), so a client can tell.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The longest key accepted, in characters.
pub const MAX_KEY_CHARS: usize = 64;
/// `Retry-After` of the 409 answered while the first call is still running.
pub const IN_PROGRESS_RETRY_AFTER_SECONDS: u32 = 1;
/// The answer headers a replay repeats.
const REPLAYED_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

/// The identity of `request`, when it carries an `Idempotency-Key`; 400 naming the header
/// when the key is empty, longer than [`MAX_KEY_CHARS`] or not visible ASCII.
pub fn identity(request: &Request) -> Result<Option<IdempotentRequest>, ApiError> {
    let Some(value) = request.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|key| {
            (1..=MAX_KEY_CHARS).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::validation(
                "Idempotency-Key",
                format!("must be 1 to {MAX_KEY_CHARS} visible ASCII characters"),
            )
        })?;
    let path = request.raw_http_path();
    let path = if path.is_empty() {
        request.uri().path()
    } else {
        path
    };
    Ok(Some(IdempotentRequest::new(
        &caller(request),
        request.method().as_str(),
        path,
        key,
        request.body().as_ref(),
    )))
}

/// The caller a key belongs to: the JWT `sub` the authorizer verified (`crate::auth`, the one
/// place that reads claims), or `anonymous` for a request without one (refused later anyway).
fn caller(request: &Request) -> String {
    crate::auth::subject(request)
        .map(str::to_owned)
        .unwrap_or_else(|_| "anonymous".to_owned())
}

/// What to remember of `response`: its status, body and the headers a replay repeats.
pub fn remember(response: &Response<Body>) -> StoredResponse {
    let headers = REPLAYED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = response.headers().get(name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect();
    let body = match response.body() {
        Body::Text(text) => text.clone(),
        Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Body::Empty => String::new(),
        _ => String::new(),
    };
    StoredResponse {
        status: response.status().as_u16(),
        headers,
        body,
    }
}

/// `stored` answered again, marked as a replay.
pub fn replay(stored: StoredResponse) -> Response<Body> {
    let mut response = Response::new(Body::Text(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response.headers_mut().insert(
        HeaderName::from_static(REPLAYED_HEADER),
        HeaderValue::from_static("true"),
    );
    response
}

/// Serves `request` through `handler` once per `Idempotency-Key` (see the module docs). Without
/// a store or without the header, `handler` simply runs.
pub async fn serve<F, Fut>(
    store: Option<&IdempotencyStore>,
    request: &Request,
    handler: F,
) -> Response<Body>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    let Some(store) = store else {
        return handler().await;
    };
    let identity = match identity(request) {
        Ok(Some(identity)) => identity,
        Ok(None) => return handler().await,
        Err(error) => return error.into_response(),
    };
    let now = OffsetDateTime::now_utc();
    let until = deadline(request).unwrap_or(now + DEFAULT_IN_PROGRESS_TTL);
    let owner = match store.claim(&identity, now, until).await {
        Ok(Claim::Acquired { owner }) => owner,
        Ok(Claim::Decided(decision)) => return decided(decision),
        Err(error) => return ApiError::from(error).into_response(),
    };
    let response = handler().await;
    if response.status().is_success() {
        let stored = remember(&response);
        if let Err(error) = store
            .complete(&identity, &owner, stored, OffsetDateTime::now_utc())
            .await
        {
            // The command succeeded: answer it. A retry with this key waits for the in-progress
            // record to lapse (the function's deadline) and then runs again.
            tracing::warn!(%error, "idempotency record not completed");
        }
    } else if let Err(error) = store.release(&identity, &owner).await {
        tracing::warn!(%error, "idempotency record not released; the key frees at its deadline");
    }
    response
}

/// The function's deadline, from the Lambda context (absent in tests).
fn deadline(request: &Request) -> Option<OffsetDateTime> {
    let millis = request.lambda_context_ref()?.deadline;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .filter(|deadline| *deadline > OffsetDateTime::now_utc())
}

fn decided(decision: Decision) -> Response<Body> {
    match decision {
        Decision::Replay(stored) => replay(stored),
        Decision::Reused => {
            ApiError::from(crate::error::Error::IdempotencyKeyReused).into_response()
        }
        Decision::InProgress => ApiError {
            retry_after: Some(IN_PROGRESS_RETRY_AFTER_SECONDS),
            ..ApiError::new(
                StatusCode::CONFLICT,
                "CONFLICT",
                "Idempotency-Key: the first request with this key is still in progress",
            )
        }
        .into_response(),
        // Not produced by a claim (it acquires instead); answered as a conflict to retry.
        Decision::Proceed => {
            ApiError::new(StatusCode::CONFLICT, "CONFLICT", "Idempotency-Key: retry")
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(key: &str) -> Request {
        let mut request = Request::new(Body::Text("{}".into()));
        *request.method_mut() = http::Method::POST;
        request
            .headers_mut()
            .insert(HEADER, HeaderValue::from_str(key).unwrap());
        request
    }

    #[test]
    fn keys_must_be_one_to_sixty_four_visible_characters() {
        assert!(matches!(identity(&keyed("a")), Ok(Some(_))));
        assert!(matches!(identity(&keyed(&"k".repeat(64))), Ok(Some(_))));
        for bad in ["", &"k".repeat(65), "two words"] {
            let error = identity(&keyed(bad)).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{bad:?}");
            assert!(error.message.contains("Idempotency-Key"));
        }
        assert!(matches!(identity(&Request::new(Body::Empty)), Ok(None)));
    }

    #[test]
    fn a_replay_repeats_status_body_and_headers_and_says_so() {
        let mut original = Response::new(Body::Text(r#"{"orderId":"o-1"}"#.into()));
        *original.status_mut() = StatusCode::CREATED;
        original
            .headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/orders/o-1"));
        original
            .headers_mut()
            .insert(header::ETAG, HeaderValue::from_static("\"1\""));
        original
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("origin"));
        let replay = replay(remember(&original));
        assert_eq!(replay.status(), StatusCode::CREATED);
        assert_eq!(replay.headers()[header::LOCATION], "/orders/o-1");
        assert_eq!(replay.headers()[header::ETAG], "\"1\"");
        assert_eq!(replay.headers()[REPLAYED_HEADER], "true");
        assert!(replay.headers().get(header::VARY).is_none());
        assert!(matches!(replay.body(), Body::Text(t) if t == r#"{"orderId":"o-1"}"#));
    }
}
