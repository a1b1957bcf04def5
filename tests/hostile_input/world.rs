//! The hostile-input suite's world: moto, the local API gateway in front of the real handlers
//! (invoked in process), tokens, the requests it sends and the answers it checks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ftgo_infra::token::LocalJwt;
use ftgo_tests::Emulator;
use proptest::prelude::*;
use serde_json::Value;

use super::in_process::{http_client, serve_gateway};
use super::read_side::ReadSide;

/// The sample body of `POST /orders` (c-1's order).
pub const CREATE_ORDER: &str = include_str!("../../events/bodies/create-order.json");

/// One request of the suite.
#[derive(Clone, Debug)]
pub struct Probe {
    pub method: reqwest::Method,
    /// Path and query, already percent-encoded as they go on the wire.
    pub target: String,
    /// The whole `Authorization` header value (`None`: none sent).
    pub authorization: Option<String>,
    pub content_type: Option<&'static str>,
    pub if_match: Option<String>,
    pub body: Vec<u8>,
}

impl Probe {
    pub fn new(method: reqwest::Method, target: impl Into<String>, token: &str) -> Self {
        Self {
            method,
            target: target.into(),
            authorization: Some(format!("Bearer {token}")),
            content_type: Some("application/json"),
            if_match: None,
            body: Vec::new(),
        }
    }

    pub fn post(target: impl Into<String>, token: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            ..Self::new(reqwest::Method::POST, target, token)
        }
    }

    pub fn get(target: impl Into<String>, token: &str) -> Self {
        Self::new(reqwest::Method::GET, target, token)
    }
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Answer {
    /// The error shape `{"error":{"code","message"}}`, if the body has it.
    pub fn error_code(&self) -> Option<String> {
        let json: Value = serde_json::from_slice(&self.body).ok()?;
        let code = json["error"]["code"].as_str()?.to_owned();
        json["error"]["message"].as_str()?;
        Some(code)
    }

    pub fn describe(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        format!(
            "{} {}",
            self.status,
            text.chars().take(300).collect::<String>()
        )
    }
}

/// The suite's world: moto, the gateway in front of the real handlers, tokens, and the ids of
/// real orders and tokens to forge from.
pub struct World {
    pub side: ReadSide,
    api: String,
    client: reqwest::Client,
    pub jwt: LocalJwt,
    pub consumer: String,
    pub other_consumer: String,
    pub admin: String,
    pub order_id: String,
    pub page_token: String,
    pub consistency_token: String,
    pub sent: AtomicUsize,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl World {
    pub async fn start() -> (Self, ftgo_tests::TestStack) {
        let moto = Emulator::moto().await;
        let (side, stack) = ReadSide::fresh(moto).await;
        let jwt = LocalJwt::new("hostile-input-suite-secret");
        let (api, stop) = serve_gateway(&side, &stack, &jwt).await;
        let client = http_client();
        let hour = Duration::from_secs(3600);
        let token = |sub: &str, scopes: &[&str]| jwt.issue(sub, scopes, hour).expect("token");
        let mut world = Self {
            consumer: token("c-1", &[]),
            other_consumer: token("c-2", &[]),
            admin: token("ops", &["ftgo/admin"]),
            side,
            api,
            client,
            jwt,
            order_id: String::new(),
            page_token: String::new(),
            consistency_token: String::new(),
            sent: AtomicUsize::new(0),
            _stop: stop,
        };
        world.seed().await;
        (world, stack)
    }

    /// Two real orders of c-1, projected: targets for forged tokens and hostile commands.
    async fn seed(&mut self) {
        let body = CREATE_ORDER;
        for _ in 0..2 {
            let answer = self
                .raw(&Probe::post("/orders", &self.consumer, body))
                .await;
            assert_eq!(answer.status, 201, "{}", answer.describe());
            let created: Value = serde_json::from_slice(&answer.body).expect("JSON");
            self.order_id = created["orderId"].as_str().expect("orderId").to_owned();
            self.consistency_token = created["token"].as_str().expect("token").to_owned();
            self.side.project_table(&self.order_id).await;
        }
        let page = self
            .raw(&Probe::get(
                "/consumers/c-1/orders?pageSize=1",
                &self.consumer,
            ))
            .await;
        assert_eq!(page.status, 200, "{}", page.describe());
        let page: Value = serde_json::from_slice(&page.body).expect("JSON");
        self.page_token = page["nextPageToken"]
            .as_str()
            .expect("a second page")
            .to_owned();
        self.sent.store(0, Ordering::Relaxed);
    }

    pub async fn raw(&self, probe: &Probe) -> Answer {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let mut request = self.client.request(
            probe.method.clone(),
            format!("{}{}", self.api, probe.target),
        );
        if let Some(value) = &probe.authorization {
            request = request.header("authorization", value);
        }
        if let Some(value) = probe.content_type {
            request = request.header("content-type", value);
        }
        if let Some(value) = &probe.if_match {
            request = request.header("if-match", value);
        }
        if !probe.body.is_empty() {
            request = request.body(probe.body.clone());
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.bytes().await.expect("body").to_vec();
        Answer {
            status,
            content_type,
            body,
        }
    }

    /// Sends a listed nasty input: it must answer 4xx JSON with the error shape.
    pub async fn refused(&self, probe: &Probe) -> Answer {
        let answer = self.raw(probe).await;
        assert!(
            (400..500).contains(&answer.status),
            "{probe:?}\n  answered {}",
            answer.describe()
        );
        assert!(
            answer.content_type.starts_with("application/json"),
            "{probe:?}: content type {:?}",
            answer.content_type
        );
        assert!(
            answer.error_code().is_some(),
            "{probe:?}: no error shape in {}",
            answer.describe()
        );
        answer
    }

    /// Sends a generated input: never 5xx; JSON; the error shape whenever it is refused.
    pub async fn survives(&self, probe: &Probe) -> Result<(), TestCaseError> {
        let answer = self.raw(probe).await;
        prop_assert!(
            answer.status < 500,
            "{probe:?}\n  answered {}",
            answer.describe()
        );
        prop_assert!(
            answer.content_type.starts_with("application/json"),
            "{probe:?}: content type {:?}",
            answer.content_type
        );
        if answer.status >= 400 {
            prop_assert!(
                answer.error_code().is_some(),
                "{probe:?}: no error shape in {}",
                answer.describe()
            );
        }
        Ok(())
    }
}

/// Every declared route with an id in its path (`ftgo_domain::route`: all but `POST /orders`),
/// as `(method, path with {id})`: a new route is attacked without being listed here.
pub static ORDER_ROUTES: std::sync::LazyLock<Vec<(&'static str, String)>> =
    std::sync::LazyLock::new(|| {
        ftgo_domain::route::all()
            .filter_map(|route| {
                let parameter = route.path_parameter()?;
                let path = route.path().replace(&format!("{{{parameter}}}"), "{id}");
                Some((route.method(), path))
            })
            .collect()
    });

pub fn method(name: &str) -> reqwest::Method {
    if name == "GET" {
        reqwest::Method::GET
    } else {
        reqwest::Method::POST
    }
}
