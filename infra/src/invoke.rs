//! Invoking a function: the port the gateway and the bridge call, and its adapter for the
//! Lambda runtime emulator of `cargo lambda watch`
//! (`POST {base}/2015-03-31/functions/<name>/invocations`).

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;

/// What one synchronous invocation answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The function's response payload (or its error document when `function_error` is set).
    pub payload: Bytes,
    /// `Some("Unhandled")` (or the `X-Amz-Function-Error` value) when the function failed: it
    /// panicked, returned an error, or answered with an `errorType`/`errorMessage` document.
    pub function_error: Option<String>,
}

impl Invocation {
    /// A successful invocation answering `payload`.
    pub fn ok(payload: impl Into<Bytes>) -> Self {
        Self {
            payload: payload.into(),
            function_error: None,
        }
    }

    /// A failed invocation (the function returned an error) with the error document `payload`.
    pub fn failed(payload: impl Into<Bytes>) -> Self {
        Self {
            payload: payload.into(),
            function_error: Some("Unhandled".to_owned()),
        }
    }

    /// The `errorMessage` (else `errorType`, else the raw payload) of a failed invocation.
    pub fn error_message(&self) -> String {
        let parsed: Option<serde_json::Value> = serde_json::from_slice(&self.payload).ok();
        let field = |name: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        match (field("errorType"), field("errorMessage")) {
            (Some(t), Some(m)) => format!("{t}: {m}"),
            (None, Some(m)) => m,
            (Some(t), None) => t,
            (None, None) => String::from_utf8_lossy(&self.payload).into_owned(),
        }
    }
}

/// Why a function could not be invoked at all (as opposed to the function failing).
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The emulator could not be reached (not started yet, restarting, or gone).
    #[error("the function runtime at {url} is unreachable: {reason}")]
    Unreachable {
        /// The invocation URL.
        url: String,
        /// What the HTTP client said.
        reason: String,
    },
    /// The emulator answered with a status that is not an invocation result (e.g. 404 for a
    /// function it does not know).
    #[error("the function runtime answered {status} for {function}: {body}")]
    Status {
        /// The function invoked.
        function: String,
        /// The HTTP status.
        status: u16,
        /// The answer's body, lossily decoded.
        body: String,
    },
    /// The invocation did not finish in time.
    #[error("invoking {function} timed out after {after:?}")]
    Timeout {
        /// The function invoked.
        function: String,
        /// The time limit.
        after: Duration,
    },
}

/// Something that invokes a function by its local name with a JSON payload, synchronously.
pub trait Invoker: Send + Sync + 'static {
    /// Invokes `function` with `payload` and waits for its answer.
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<Invocation, InvokeError>>;

    /// An invocation of `function` was cut at its timeout: its instance may be hung or dead
    /// (Lambda discards such an execution environment). Nothing by default.
    fn timed_out(&self, function: &str) {
        let _ = function;
    }
}

/// Invokes functions through a Lambda runtime emulator's invoke API, such as
/// `cargo lambda watch`.
///
/// An emulator that is being replaced (see [`crate::stack::functions`]) is waited for, within
/// the invoker's patience (on the local stack, the function's `Timeout`): while its readiness
/// says it is down, and while its port refuses connections (a request that never reached it is
/// safe to send again). An invocation the emulator had already taken is never sent twice.
#[derive(Clone, Debug)]
pub struct RuntimeInvoker {
    client: reqwest::Client,
    base_url: String,
    timeout: Duration,
    patience: Duration,
    ready: Option<watch::Receiver<bool>>,
}

impl RuntimeInvoker {
    /// An invoker for the emulator at `base_url` (e.g. `http://127.0.0.1:9000`), giving up on an
    /// invocation after `timeout` (generous: the first call of a function may compile it).
    pub fn new(base_url: impl Into<String>, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            client,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            timeout,
            patience: Duration::ZERO,
            ready: None,
        }
    }

    /// Waits up to `patience` for an emulator that is down or refuses connections, instead of
    /// failing at once.
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// Sends nothing while `ready` says the emulator is down (being restarted); waits for it
    /// within the patience ([`RuntimeInvoker::with_patience`]).
    pub fn with_readiness(mut self, ready: watch::Receiver<bool>) -> Self {
        self.ready = Some(ready);
        self
    }

    /// Sends one invocation request for `function` (`payload` with `headers`) and returns the
    /// emulator's raw answer, waiting for an emulator that is down or restarting within the
    /// patience. Only a request that never reached the emulator is sent again.
    pub async fn forward(
        &self,
        function: &str,
        headers: http::HeaderMap,
        payload: Bytes,
    ) -> Result<reqwest::Response, InvokeError> {
        let url = self.url(function);
        let deadline = Instant::now() + self.patience;
        let mut ready = self.ready.clone();
        loop {
            if let Some(ready) = ready.as_mut() {
                match tokio::time::timeout_at(deadline, ready.wait_for(|up| *up)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => {
                        return Err(InvokeError::Unreachable {
                            url,
                            reason: "the local stack is stopping".to_owned(),
                        });
                    }
                    Err(_) => {
                        return Err(InvokeError::Unreachable {
                            url,
                            reason: format!(
                                "its server was not back within {:?} (the function's Timeout)",
                                self.patience
                            ),
                        });
                    }
                }
            }
            let sent = self
                .client
                .post(&url)
                .headers(headers.clone())
                .timeout(self.timeout)
                .body(payload.clone())
                .send()
                .await;
            match sent {
                Ok(response) => return Ok(response),
                // Refused: nothing reached the emulator, so sending again is safe.
                Err(error) if error.is_connect() && Instant::now() < deadline => {
                    tracing::debug!(%function, %error, "the function's server is not up; waiting");
                    tokio::time::sleep_until(deadline.min(Instant::now() + RETRY_PAUSE)).await;
                }
                Err(error) => return Err(self.failed(function, &url, &error)),
            }
        }
    }

    /// A timeout or a broken connection, while sending or while reading the answer.
    fn failed(&self, function: &str, url: &str, error: &reqwest::Error) -> InvokeError {
        if error.is_timeout() {
            InvokeError::Timeout {
                function: function.to_owned(),
                after: self.timeout,
            }
        } else {
            InvokeError::Unreachable {
                url: url.to_owned(),
                reason: error.to_string(),
            }
        }
    }

    /// The invocation URL of `function`.
    pub fn url(&self, function: &str) -> String {
        format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.base_url
        )
    }
}

impl Invoker for RuntimeInvoker {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<Invocation, InvokeError>> {
        Box::pin(async move {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            let response = self.forward(function, headers, payload).await?;
            let failed = |e: reqwest::Error| self.failed(function, &self.url(function), &e);
            let status = response.status().as_u16();
            let header_error = response
                .headers()
                .get("x-amz-function-error")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.bytes().await.map_err(&failed)?;
            classify(function, status, header_error, body)
        })
    }
}

/// How long a request refused by a restarting emulator waits before it is sent again.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Invokes each function on the emulator that serves it: functions with a server of their own
/// (see [`crate::stack::functions`]) there, every other one on the shared emulator. A timed-out
/// invocation is reported on a channel, so that the stack replaces the instances.
#[derive(Debug)]
pub struct RoutedInvoker {
    shared: RuntimeInvoker,
    own: std::collections::HashMap<String, RuntimeInvoker>,
    timeouts: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl RoutedInvoker {
    /// Invokes through `shared`, except the functions of `own`; reports timeouts to `timeouts`.
    pub fn new(
        shared: RuntimeInvoker,
        own: std::collections::HashMap<String, RuntimeInvoker>,
        timeouts: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    ) -> Self {
        Self {
            shared,
            own,
            timeouts,
        }
    }

    /// The invoker serving `function`.
    pub fn route(&self, function: &str) -> &RuntimeInvoker {
        self.own.get(function).unwrap_or(&self.shared)
    }

    /// The invoker of a function with a server of its own, if it has one.
    pub fn own(&self, function: &str) -> Option<&RuntimeInvoker> {
        self.own.get(function)
    }
}

impl Invoker for RoutedInvoker {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<Invocation, InvokeError>> {
        self.route(function).invoke(function, payload)
    }

    fn timed_out(&self, function: &str) {
        if let Some(tx) = &self.timeouts {
            let _ = tx.send(function.to_owned());
        }
    }
}

/// Turns the emulator's HTTP answer into an invocation result. `cargo lambda watch` answers a
/// function error with 500 and the runtime's `{"errorType","errorMessage"}` document; AWS answers
/// 200 with `X-Amz-Function-Error`.
fn classify(
    function: &str,
    status: u16,
    header_error: Option<String>,
    body: Bytes,
) -> Result<Invocation, InvokeError> {
    if (200..300).contains(&status) {
        if let Some(kind) = header_error {
            return Ok(Invocation {
                payload: body,
                function_error: Some(kind),
            });
        }
        if is_error_document(&body) {
            return Ok(Invocation::failed(body));
        }
        return Ok(Invocation::ok(body));
    }
    if status == 500 && (header_error.is_some() || is_error_document(&body)) {
        return Ok(Invocation {
            payload: body,
            function_error: Some(header_error.unwrap_or_else(|| "Unhandled".to_owned())),
        });
    }
    Err(InvokeError::Status {
        function: function.to_owned(),
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Whether `body` is a Lambda runtime error document: a JSON object with `errorType` or
/// `errorMessage` and nothing that makes it a normal answer (`statusCode`, `batchItemFailures`).
pub fn is_error_document(body: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return false;
    };
    (map.contains_key("errorType") || map.contains_key("errorMessage"))
        && !map.contains_key("statusCode")
        && !map.contains_key("batchItemFailures")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_500_with_an_error_document_is_a_function_error() {
        let body = Bytes::from_static(br#"{"errorType":"Boom","errorMessage":"it broke"}"#);
        let got = classify("f", 500, None, body).expect("a function error, not a transport error");
        assert_eq!(got.function_error.as_deref(), Some("Unhandled"));
        assert_eq!(got.error_message(), "Boom: it broke");
    }

    #[test]
    fn a_200_with_an_error_document_is_a_function_error() {
        let body = Bytes::from_static(br#"{"errorType":"Boom","errorMessage":"it broke"}"#);
        let got = classify("f", 200, None, body).expect("invocation");
        assert!(got.function_error.is_some());
    }

    #[test]
    fn a_200_answer_is_a_success() {
        let body = Bytes::from_static(br#"{"statusCode":200,"body":"hi"}"#);
        let got = classify("f", 200, None, body).expect("invocation");
        assert_eq!(got.function_error, None);
    }

    #[test]
    fn functions_with_a_server_of_their_own_are_invoked_there() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let own = std::collections::HashMap::from([(
            "projector".to_owned(),
            RuntimeInvoker::new("http://127.0.0.1:9101", Duration::from_secs(1)),
        )]);
        let routed = RoutedInvoker::new(
            RuntimeInvoker::new("http://127.0.0.1:9000", Duration::from_secs(1)),
            own,
            Some(tx),
        );
        assert_eq!(
            routed.route("projector").url("projector"),
            "http://127.0.0.1:9101/2015-03-31/functions/projector/invocations"
        );
        assert_eq!(
            routed.route("commands").url("commands"),
            "http://127.0.0.1:9000/2015-03-31/functions/commands/invocations"
        );
        routed.timed_out("projector");
        assert_eq!(rx.try_recv().ok().as_deref(), Some("projector"));
    }

    #[test]
    fn a_404_is_an_invoke_error() {
        let got = classify("f", 404, None, Bytes::from_static(b"no such function"));
        assert!(matches!(got, Err(InvokeError::Status { status: 404, .. })));
    }
}
