//! The functions address of the local stack: one door for every function, as Lambda's invoke
//! API is one door for every function of an account.
//!
//! `POST /2015-03-31/functions/<name>/invocations` (what `cargo lambda invoke` and
//! `aws lambda invoke --endpoint-url` send) is passed to the server of that function
//! ([`super::functions`]) and its answer passed back unchanged. A function whose server is being
//! restarted is waited for, within the function's `Timeout`; an unknown function answers 404
//! with AWS's `ResourceNotFoundException`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::invoke::{InvokeError, RuntimeInvoker};

/// The request headers passed to a function's server: the invoke API's own (`X-Amz-…`) and the
/// payload's type. Hop-by-hop headers, `Host` and lengths are the HTTP client's business.
fn forwarded(headers: &HeaderMap) -> HeaderMap {
    headers
        .iter()
        .filter(|(name, _)| {
            name.as_str().starts_with("x-amz-") || *name == http::header::CONTENT_TYPE
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// The front: each function's invoker (see [`RuntimeInvoker::with_readiness`]) by name.
pub(crate) fn router(functions: HashMap<String, RuntimeInvoker>) -> Router {
    Router::new()
        .route("/2015-03-31/functions/{function}/invocations", post(invoke))
        .fallback(|| async {
            aws_error(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "no such operation on the local functions address",
            )
        })
        .with_state(Arc::new(functions))
}

async fn invoke(
    State(functions): State<Arc<HashMap<String, RuntimeInvoker>>>,
    Path(function): Path<String>,
    headers: HeaderMap,
    payload: Bytes,
) -> Response {
    let Some(invoker) = functions.get(&function) else {
        return aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {function}"),
        );
    };
    match invoker
        .forward(&function, forwarded(&headers), payload)
        .await
    {
        Ok(answer) => pass_back(answer).await,
        Err(error @ InvokeError::Timeout { .. }) => aws_error(
            StatusCode::GATEWAY_TIMEOUT,
            "ServiceException",
            &error.to_string(),
        ),
        Err(error) => aws_error(
            StatusCode::BAD_GATEWAY,
            "ServiceException",
            &error.to_string(),
        ),
    }
}

/// The function server's answer, status, headers and body as they came.
async fn pass_back(answer: reqwest::Response) -> Response {
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        let hop_by_hop = matches!(
            name.as_str(),
            "connection" | "transfer-encoding" | "content-length" | "keep-alive"
        );
        if !hop_by_hop
            && let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_ref()),
                HeaderValue::from_bytes(value.as_bytes()),
            )
        {
            headers.append(name, value);
        }
    }
    match answer.bytes().await {
        Ok(body) => (status, headers, Body::from(body)).into_response(),
        Err(error) => aws_error(
            StatusCode::BAD_GATEWAY,
            "ServiceException",
            &format!("the function's answer broke off: {error}"),
        ),
    }
}

/// An error in the shape of Lambda's invoke API: `X-Amzn-ErrorType` and `{"Type","message"}`.
fn aws_error(status: StatusCode, kind: &'static str, message: &str) -> Response {
    let body = serde_json::json!({
        "Type": if status.is_client_error() { "User" } else { "Service" },
        "message": message,
    });
    (
        status,
        [
            (http::header::CONTENT_TYPE, "application/json"),
            (HeaderName::from_static("x-amzn-errortype"), kind),
        ],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};
    use tokio::sync::watch;

    /// A stand-in function server answering `name:<payload>` (the front passes bytes only).
    async fn serve_echo(listener: tokio::net::TcpListener, name: &'static str) {
        let app = Router::new().route(
            "/2015-03-31/functions/{function}/invocations",
            post(move |payload: Bytes| async move {
                (
                    [(HeaderName::from_static("x-amz-function-error"), "Unhandled")],
                    format!("{name}:{}", String::from_utf8_lossy(&payload)),
                )
            }),
        );
        let _ = axum::serve(listener, app).await;
    }

    async fn listener() -> (tokio::net::TcpListener, SocketAddr) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        (l, addr)
    }

    async fn front(functions: HashMap<String, RuntimeInvoker>) -> String {
        let (l, addr) = listener().await;
        tokio::spawn(async move { axum::serve(l, router(functions)).await });
        format!("http://{addr}")
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
    }

    #[tokio::test]
    async fn each_function_is_passed_to_its_own_server_and_its_answer_back() {
        let (a, a_addr) = listener().await;
        let (b, b_addr) = listener().await;
        tokio::spawn(serve_echo(a, "a"));
        tokio::spawn(serve_echo(b, "b"));
        let functions = HashMap::from([
            (
                "fa".to_owned(),
                RuntimeInvoker::new(format!("http://{a_addr}"), Duration::from_secs(5)),
            ),
            (
                "fb".to_owned(),
                RuntimeInvoker::new(format!("http://{b_addr}"), Duration::from_secs(5)),
            ),
        ]);
        let base = front(functions).await;
        for (function, want) in [("fa", "a:{}"), ("fb", "b:{}")] {
            let answer = client()
                .post(format!(
                    "{base}/2015-03-31/functions/{function}/invocations"
                ))
                .body("{}")
                .send()
                .await
                .expect("answer");
            assert_eq!(answer.status(), 200);
            assert_eq!(answer.headers()["x-amz-function-error"], "Unhandled");
            assert_eq!(answer.text().await.expect("body"), want);
        }
        let missing = client()
            .post(format!("{base}/2015-03-31/functions/nope/invocations"))
            .body("{}")
            .send()
            .await
            .expect("answer");
        assert_eq!(missing.status(), 404);
        assert_eq!(
            missing.headers()["x-amzn-errortype"],
            "ResourceNotFoundException"
        );
    }

    #[tokio::test]
    async fn an_invocation_meeting_a_restarting_server_waits_for_it() {
        // The server is down (readiness false, port closed) when the invocation arrives, and
        // comes back 300 ms later on the same port: the invocation is answered, not failed.
        let (l, addr) = listener().await;
        drop(l);
        let (ready_tx, ready) = watch::channel(false);
        let functions = HashMap::from([(
            "f".to_owned(),
            RuntimeInvoker::new(format!("http://{addr}"), Duration::from_secs(5))
                .with_patience(Duration::from_secs(10))
                .with_readiness(ready),
        )]);
        let base = front(functions).await;
        let started = Instant::now();
        let call = tokio::spawn(async move {
            client()
                .post(format!("{base}/2015-03-31/functions/f/invocations"))
                .body("x")
                .send()
                .await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Up before its port listens: connections refused meanwhile are retried.
        ready_tx.send_replace(true);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let l = tokio::net::TcpListener::bind(addr).await.expect("rebind");
        tokio::spawn(serve_echo(l, "f"));
        let answer = call.await.expect("joined").expect("answered");
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.expect("body"), "f:x");
        assert!(started.elapsed() >= Duration::from_millis(500));
    }

    #[tokio::test]
    async fn a_server_not_back_within_the_functions_timeout_fails_the_invocation() {
        let (l, addr) = listener().await;
        drop(l);
        let functions = HashMap::from([(
            "f".to_owned(),
            RuntimeInvoker::new(format!("http://{addr}"), Duration::from_secs(5))
                .with_patience(Duration::from_millis(400)),
        )]);
        let base = front(functions).await;
        let started = Instant::now();
        let answer = client()
            .post(format!("{base}/2015-03-31/functions/f/invocations"))
            .body("x")
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 502);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(400) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    }
}
