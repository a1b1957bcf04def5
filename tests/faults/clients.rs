//! Clients as real ones behave: each logical command is sent until it gets a definitive answer,
//! retrying on a timeout (the function cut at its deadline), a 5xx or a 429, and on a 409 that
//! carries `Retry-After` (honoured, scaled down 4× like the deadline, to fit the suite's time);
//! with or without an `Idempotency-Key`
//! (the same key and body on every retry). Every answer is kept for the checks.

use std::time::Duration;

use ftgo_aws::commands::CommandService;
use ftgo_aws::lambda::order_commands;
use ftgo_aws::lambda_http::{self, Body, Request, RequestExt};
use ftgo_aws::lambda_runtime::Context;
use ftgo_tests::repository_root;
use serde_json::Value;

/// The order id the `events/` samples carry.
const SAMPLE_ORDER_ID: &str = "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

/// The function's deadline (its `Timeout`, scaled down): the client is cut off then, and the
/// handler's work dropped mid-way, as Lambda ends an invocation at its timeout.
pub const DEADLINE: Duration = Duration::from_secs(3);

/// Attempts per logical command before the client gives up.
pub const ATTEMPTS: u32 = 6;

/// The attempt number of the retry after the faults.
const LATE_ATTEMPT: usize = ATTEMPTS as usize + 1;

/// The deadline of a retry after the faults: 10 s (still under the functions' `Timeout` in
/// `template.yaml`), not [`DEADLINE`]. Nothing is injected then, so a cut-off answer would
/// only say that the machine was loaded (the suite shares 2 cores with the local stacks of
/// the other suites), not what a later retry gets: a run once failed on 15 retries timed out
/// at 3 s in a row, while the same seed passed alone.
const LATE_DEADLINE: Duration = Duration::from_secs(10);

/// What a command asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `POST /orders`.
    Create,
    /// `POST /orders/{id}/approve`.
    Approve,
    /// `POST /orders/{id}/reject`.
    Reject,
    /// `POST /orders/{id}/cancel`.
    Cancel,
}

impl Kind {
    fn sample(self) -> &'static str {
        match self {
            Self::Create => "create-order.json",
            Self::Approve => "approve-order.json",
            Self::Reject => "reject-order.json",
            Self::Cancel => "cancel-order.json",
        }
    }

    /// The event a success records.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Create => "OrderCreated",
            Self::Approve => "OrderApproved",
            Self::Reject => "OrderRejected",
            Self::Cancel => "OrderCancelled",
        }
    }
}

/// One answer as the client saw it (status 0: no answer before the deadline).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status, 0 for a timeout.
    pub status: u16,
    /// The JSON body (`null` for a timeout).
    pub body: Value,
    /// Whether it carried `Retry-After`.
    pub retry_after: Option<u64>,
}

impl Answer {
    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// What must be the same in every answer to one key: status, order, version, state.
    pub fn essence(&self) -> (u16, Value, Value, Value) {
        (
            self.status,
            self.body["orderId"].clone(),
            self.body["version"].clone(),
            self.body["status"].clone(),
        )
    }

    /// A short form for reports.
    pub fn brief(&self) -> String {
        match self.status {
            0 => "timeout".to_owned(),
            s if (200..300).contains(&s) => format!("{s} v{}", self.body["version"]),
            s if s >= 500 => format!(
                "{s} {} ({})",
                self.body["error"]["code"].as_str().unwrap_or("?"),
                self.body["error"]["message"].as_str().unwrap_or("?")
            ),
            s => format!("{s} {}", self.body["error"]["code"].as_str().unwrap_or("?")),
        }
    }
}

/// One logical command and every answer it got.
#[derive(Debug, Clone)]
pub struct Command {
    /// What it asks.
    pub kind: Kind,
    /// The order (for a create, learnt from its answer).
    pub order_id: Option<String>,
    /// The `Idempotency-Key`, if sent with one.
    pub key: Option<String>,
    /// A create's unique marker (in the restaurant's name), to find the orders it created.
    pub marker: String,
    /// The client's answers, in order.
    pub answers: Vec<Answer>,
    /// The answer to one more retry after the faults stopped (keyed commands): the definitive
    /// one of [`late_retry`]'s attempts.
    pub late: Option<Answer>,
    /// Every answer [`late_retry`] got, and the attempt numbers it sent them under.
    pub late_answers: Vec<Answer>,
    late_attempts: Vec<usize>,
}

impl Command {
    /// A command not sent yet.
    pub fn new(kind: Kind, order_id: Option<String>, key: Option<String>, marker: String) -> Self {
        Self {
            kind,
            order_id,
            key,
            marker,
            answers: Vec::new(),
            late: None,
            late_answers: Vec::new(),
            late_attempts: Vec::new(),
        }
    }

    /// The answer the client stopped at.
    pub fn last(&self) -> Option<&Answer> {
        self.answers.last()
    }

    /// Every 2xx answer, the late one included.
    pub fn successes(&self) -> impl Iterator<Item = &Answer> {
        self.answers
            .iter()
            .chain(self.late_answers.iter())
            .filter(|a| a.is_success())
    }

    /// The request id of attempt `n` (the correlation id of the events that attempt writes).
    pub fn request_id(&self, n: usize) -> String {
        format!("{}-{n}", self.marker)
    }

    /// Every answer with the request id of its attempt, the late ones included.
    pub fn attempts(&self) -> impl Iterator<Item = (String, &Answer)> {
        let late = self.late_attempts.iter().copied();
        (0..self.answers.len())
            .chain(late)
            .map(|n| self.request_id(n))
            .zip(self.answers.iter().chain(self.late_answers.iter()))
    }

    /// The answers, briefly.
    pub fn history(&self) -> String {
        let mut text: Vec<String> = self.answers.iter().map(Answer::brief).collect();
        for late in &self.late_answers {
            text.push(format!("late: {}", late.brief()));
        }
        format!(
            "{:?} {} key={} [{}]",
            self.kind,
            self.order_id.as_deref().unwrap_or(&self.marker),
            self.key.as_deref().unwrap_or("-"),
            text.join(", ")
        )
    }
}

/// The request of `command` as API Gateway would deliver it, with a fresh request id and the
/// function's deadline in its Lambda context.
fn request(command: &Command, attempt: String, deadline: Duration) -> Request {
    let path = repository_root()
        .join("events/order-commands")
        .join(command.kind.sample());
    let text = std::fs::read_to_string(&path).expect("sample");
    let text = match &command.order_id {
        Some(id) if command.kind != Kind::Create => text.replace(SAMPLE_ORDER_ID, id),
        _ => text,
    };
    let mut json: Value = serde_json::from_str(&text).expect("sample JSON");
    let headers = json["headers"].as_object_mut().expect("headers");
    headers.remove("idempotency-key");
    if let Some(key) = &command.key {
        headers.insert("idempotency-key".into(), key.clone().into());
    }
    json["requestContext"]["requestId"] = attempt.into();
    if command.kind == Kind::Create {
        let mut body: Value =
            serde_json::from_str(json["body"].as_str().expect("body")).expect("body JSON");
        body["restaurantName"] = format!("Ajanta {}", command.marker).into();
        json["body"] = body.to_string().into();
    }
    let mut context = Context::default();
    let deadline = std::time::SystemTime::now() + deadline;
    context.deadline = deadline
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    lambda_http::request::from_str(&json.to_string())
        .expect("API Gateway v2 request")
        .with_lambda_context(context)
}

/// Sends `command` once, cut at [`DEADLINE`].
pub async fn attempt(service: &CommandService, command: &Command, n: usize) -> Answer {
    attempt_within(service, command, n, DEADLINE).await
}

/// Sends `command` once, cut at `deadline`.
async fn attempt_within(
    service: &CommandService,
    command: &Command,
    n: usize,
    deadline: Duration,
) -> Answer {
    let request = request(command, command.request_id(n), deadline);
    match tokio::time::timeout(deadline, order_commands::handle(service, request)).await {
        Err(_) => Answer {
            status: 0,
            body: Value::Null,
            retry_after: None,
        },
        Ok(Err(error)) => Answer {
            status: 502,
            body: serde_json::json!({"error": {"code": "HANDLER_ERROR", "message": error.to_string()}}),
            retry_after: None,
        },
        Ok(Ok(response)) => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let body = match response.body() {
                Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
                _ => Value::Null,
            };
            Answer {
                status: response.status().as_u16(),
                body,
                retry_after,
            }
        }
    }
}

/// Sends `command` until a definitive answer or [`ATTEMPTS`], as a careful client does.
pub async fn send(service: &CommandService, command: &mut Command) {
    let mut backoff = Duration::from_millis(20);
    for n in 0..ATTEMPTS as usize {
        let answer = attempt(service, command, n).await;
        let wait = match answer.status {
            0 | 429 | 500..=599 => Some(backoff),
            409 => answer.retry_after.map(|s| Duration::from_millis(s * 250)),
            _ => None,
        };
        if command.kind == Kind::Create && answer.is_success() {
            command.order_id = answer.body["orderId"].as_str().map(str::to_owned);
        }
        command.answers.push(answer);
        match wait {
            Some(wait) => tokio::time::sleep(wait).await,
            None => return,
        }
        backoff = (backoff * 2).min(Duration::from_millis(400));
    }
}

/// Sends a keyed command again after the faults stopped, as its client would go on doing
/// (until a definitive answer: a 409 carrying `Retry-After` — the key's in-progress record of
/// a cut-off attempt, held to that attempt's deadline — and timeouts are retried): what any
/// later retry gets.
pub async fn late_retry(service: &CommandService, command: &mut Command) {
    if command.key.is_none() {
        return;
    }
    for n in LATE_ATTEMPT..LATE_ATTEMPT + ATTEMPTS as usize {
        let answer = attempt_within(service, command, n, LATE_DEADLINE).await;
        let wait = match answer.status {
            0 | 429 | 500..=599 => Some(Duration::from_millis(200)),
            409 => answer.retry_after.map(|s| Duration::from_millis(s * 250)),
            _ => None,
        };
        command.late_answers.push(answer.clone());
        command.late_attempts.push(n);
        command.late = Some(answer);
        match wait {
            Some(wait) => tokio::time::sleep(wait).await,
            None => return,
        }
    }
}
