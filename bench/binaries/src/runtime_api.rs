//! A fake Lambda Runtime API on loopback (the interface a function's runtime polls): it notes
//! when each `GET …/invocation/next` arrives, hands out at most one event, and keeps the answer
//! the function posts. Polls it has no event for are held open, as Lambda holds them between
//! invocations.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the function did, in the order it did it.
#[derive(Debug)]
pub enum Seen {
    /// A poll for the next event, and when it arrived.
    Poll(Instant),
    /// The answer to the event (`…/invocation/{id}/response`).
    Response(String),
    /// An error report (`…/invocation/{id}/error` or `…/init/error`).
    Error(String),
}

#[derive(Clone)]
struct Shared {
    seen: mpsc::UnboundedSender<Seen>,
    event: Arc<Mutex<Option<Value>>>,
}

/// One fake Runtime API, serving until dropped.
pub struct RuntimeApi {
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    /// What the function did.
    pub seen: mpsc::UnboundedReceiver<Seen>,
    server: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Serves on a free loopback port; `event`, when given, is handed out on the first poll.
    pub async fn start(event: Option<Value>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let address = listener.local_addr()?.to_string();
        let (tx, seen) = mpsc::unbounded_channel();
        let shared = Shared {
            seen: tx,
            event: Arc::new(Mutex::new(event)),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            seen,
            server,
        })
    }
}

async fn next(State(shared): State<Shared>) -> Response {
    let _ = shared.seen.send(Seen::Poll(Instant::now()));
    let event = shared.event.lock().ok().and_then(|mut event| event.take());
    let Some(event) = event else {
        // No more events: hold the poll, as Lambda does while the environment is frozen.
        std::future::pending::<()>().await;
        return StatusCode::NO_CONTENT.into_response();
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|now| now.as_millis() + 30_000)
        .unwrap_or_default();
    let mut headers = HeaderMap::new();
    let pairs = [
        (
            "lambda-runtime-aws-request-id",
            "8476a536-e9f4-11e8-9739-2dfe598c3fcd".to_owned(),
        ),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (headers, event.to_string()).into_response()
}

async fn response(
    State(shared): State<Shared>,
    Path(_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let _ = shared
        .seen
        .send(Seen::Response(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}

async fn error(State(shared): State<Shared>, Path(_id): Path<String>, body: Bytes) -> StatusCode {
    let _ = shared
        .seen
        .send(Seen::Error(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    let _ = shared
        .seen
        .send(Seen::Error(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}
