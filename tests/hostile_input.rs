//! The hostile-input suite: over real HTTP through the local API gateway (which checks the JWT
//! as API Gateway's authorizer does) into the real handlers, in process, against moto. A list
//! of nasty inputs at every route — malformed, deeply nested and mistyped JSON, huge numbers,
//! 1 MiB bodies, invalid UTF-8, control characters, ids with `#`, `/`, `..`, `%00`, RTL marks,
//! 10 KB ids, forged and truncated page and consistency tokens, expired, unsigned, `alg: none`
//! and foreign JWTs — each answers 4xx JSON with the error shape; proptest-generated bodies,
//! paths, query strings and tokens never answer 5xx; and nothing of it writes an event.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

#[path = "fixtures/read_side.rs"]
mod read_side;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use ftgo_aws::commands::CommandService;
use ftgo_aws::lambda::order_history_query::OrderHistoryQuery;
use ftgo_aws::lambda::{delivery_commands, order_commands, order_history_query as query};
use ftgo_aws::lambda_http::{self, Body};
use ftgo_infra::gateway::{Gateway, GatewayOptions};
use ftgo_infra::invoke::{Invocation, InvokeError, Invoker};
use ftgo_infra::stack::gateway_routes;
use ftgo_infra::token::LocalJwt;
use ftgo_tests::Emulator;
use futures::future::BoxFuture;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use read_side::{ReadSide, record_of_item, scan_table};
use serde_json::{Value, json};

/// The functions, invoked in process as `cargo lambda watch` would invoke them.
struct InProcess {
    commands: CommandService,
    query: OrderHistoryQuery,
}

impl Invoker for InProcess {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<Invocation, InvokeError>> {
        Box::pin(async move {
            let failed = |message: String| {
                Ok(Invocation::failed(
                    json!({"errorType": "Error", "errorMessage": message}).to_string(),
                ))
            };
            let text = String::from_utf8_lossy(&payload);
            let request = match lambda_http::request::from_str(&text) {
                Ok(request) => request,
                Err(e) => return failed(format!("the event does not decode: {e}")),
            };
            let response = match function {
                "order-commands" => order_commands::handle(&self.commands, request).await,
                "delivery-commands" => delivery_commands::handle(&self.commands, request).await,
                "order-history-query" => query::handle(&self.query, request).await,
                other => return failed(format!("no function {other}")),
            };
            let response = match response {
                Ok(response) => response,
                Err(e) => return failed(e.to_string()),
            };
            let headers: serde_json::Map<String, Value> = response
                .headers()
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), Value::String(value))
                })
                .collect();
            let (body, base64) = match response.body() {
                Body::Text(text) => (text.clone(), false),
                Body::Binary(bytes) => (STANDARD.encode(bytes), true),
                _ => (String::new(), false),
            };
            Ok(Invocation::ok(
                json!({
                    "statusCode": response.status().as_u16(),
                    "headers": headers,
                    "body": body,
                    "isBase64Encoded": base64,
                })
                .to_string(),
            ))
        })
    }
}

/// One request of the suite.
#[derive(Clone, Debug)]
struct Probe {
    method: reqwest::Method,
    /// Path and query, already percent-encoded as they go on the wire.
    target: String,
    /// The whole `Authorization` header value (`None`: none sent).
    authorization: Option<String>,
    content_type: Option<&'static str>,
    if_match: Option<String>,
    body: Vec<u8>,
}

impl Probe {
    fn new(method: reqwest::Method, target: impl Into<String>, token: &str) -> Self {
        Self {
            method,
            target: target.into(),
            authorization: Some(format!("Bearer {token}")),
            content_type: Some("application/json"),
            if_match: None,
            body: Vec::new(),
        }
    }

    fn post(target: impl Into<String>, token: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            ..Self::new(reqwest::Method::POST, target, token)
        }
    }

    fn get(target: impl Into<String>, token: &str) -> Self {
        Self::new(reqwest::Method::GET, target, token)
    }
}

/// What came back.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    /// The error shape `{"error":{"code","message"}}`, if the body has it.
    fn error_code(&self) -> Option<String> {
        let json: Value = serde_json::from_slice(&self.body).ok()?;
        let code = json["error"]["code"].as_str()?.to_owned();
        json["error"]["message"].as_str()?;
        Some(code)
    }

    fn describe(&self) -> String {
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
struct World {
    side: ReadSide,
    api: String,
    client: reqwest::Client,
    jwt: LocalJwt,
    consumer: String,
    other_consumer: String,
    admin: String,
    order_id: String,
    page_token: String,
    consistency_token: String,
    sent: AtomicUsize,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl World {
    async fn start() -> (Self, ftgo_tests::TestStack) {
        let moto = Emulator::moto().await;
        let (side, stack) = ReadSide::fresh(moto).await;
        let invoker = Arc::new(InProcess {
            commands: side.commands.clone(),
            query: side.query.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let api = format!("http://{}", listener.local_addr().expect("addr"));
        let jwt = LocalJwt::new("hostile-input-suite-secret");
        let gateway = Gateway::new(
            gateway_routes(stack.template()).expect("the template's routes"),
            invoker,
            GatewayOptions {
                auth: jwt.clone(),
                ..GatewayOptions::default()
            },
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(gateway.serve(listener, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
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
        let body = include_str!("../events/bodies/create-order.json");
        for _ in 0..2 {
            let answer = self
                .raw(&Probe::post("/orders", &self.consumer, body))
                .await;
            assert_eq!(answer.status, 201, "{}", answer.describe());
            let created: Value = serde_json::from_slice(&answer.body).expect("JSON");
            self.order_id = created["orderId"].as_str().expect("orderId").to_owned();
            self.consistency_token = created["token"].as_str().expect("token").to_owned();
            let records = self
                .side
                .table_items(&self.order_id)
                .await
                .iter()
                .map(record_of_item)
                .collect();
            assert!(
                self.side
                    .deliver(records)
                    .await
                    .batch_item_failures
                    .is_empty()
            );
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

    async fn raw(&self, probe: &Probe) -> Answer {
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
    async fn refused(&self, probe: &Probe) -> Answer {
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
    async fn survives(&self, probe: &Probe) -> Result<(), TestCaseError> {
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

/// Percent-encodes every byte but the unreserved ones.
fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (*b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The routes with an order id, as `(method, path with {id})`.
const ORDER_ROUTES: [(&str, &str); 8] = [
    ("POST", "/orders/{id}/approve"),
    ("POST", "/orders/{id}/reject"),
    ("POST", "/orders/{id}/cancel"),
    ("POST", "/orders/{id}/revise"),
    ("POST", "/deliveries/{id}/pickup"),
    ("POST", "/deliveries/{id}/deliver"),
    ("GET", "/orders/{id}"),
    ("GET", "/consumers/{id}/orders"),
];

fn method(name: &str) -> reqwest::Method {
    if name == "GET" {
        reqwest::Method::GET
    } else {
        reqwest::Method::POST
    }
}

/// Path ids no route accepts (already encoded for the wire).
fn nasty_ids() -> Vec<String> {
    let mut ids: Vec<String> = [
        "a%23b",                // '#', the stream-id separator
        "Order%23o-1",          // a stream id smuggled in
        "a%2Fb",                // an encoded '/'
        "%2E%2E%2F%2E%2E",      // '../..'
        "%00",                  // NUL
        "o-1%00",               // NUL suffix
        "%E2%80%AE1-o",         // RTL override
        "o%E2%80%8F1",          // RTL mark
        "%EF%BB%BF",            // BOM
        "%FF%FE",               // invalid UTF-8
        "%C0%AF",               // overlong '/'
        "%F0%9F%92%A3",         // emoji
        "%20",                  // blank
        "o%091",                // tab
        "o%0D%0A1",             // CR LF
        "%27%20OR%201%3D1--",   // SQL-ish
        "%24%7Bjndi%3Aldap%7D", // ${jndi:ldap}
        "%25",                  // a lone '%'
        "%zz",                  // a broken escape
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    ids.push("x".repeat(10 * 1024)); // a 10 KB id
    ids.push(encode("é".repeat(200).as_bytes())); // over the key limit in bytes
    ids
}

/// `body` as JSON text with the field at `path` (keys, or indexes into arrays) set to `value`.
fn with_field(body: &Value, path: &[&str], value: Value) -> Vec<u8> {
    let mut body = body.clone();
    let mut at = &mut body;
    for key in path {
        at = match (key.parse::<usize>(), at.is_array()) {
            (Ok(index), true) => &mut at[index],
            _ => &mut at[*key],
        };
    }
    *at = value;
    body.to_string().into_bytes()
}

/// Bodies no command accepts.
fn nasty_bodies(valid_create: &Value) -> Vec<(String, Vec<u8>)> {
    let mut bodies: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, body: Vec<u8>| bodies.push((name.to_owned(), body));
    add("malformed", b"{\"consumerId\":".to_vec());
    add("not an object", b"[]".to_vec());
    add("null", b"null".to_vec());
    add("a string", b"\"orders\"".to_vec());
    add("trailing garbage", b"{} {}".to_vec());
    add("nested arrays", "[".repeat(5000).into_bytes());
    add("nested objects", "{\"a\":".repeat(3000).into_bytes());
    add(
        "deep but closed",
        format!("{}1{}", "[".repeat(1000), "]".repeat(1000)).into_bytes(),
    );
    add("invalid UTF-8", vec![b'{', 0xff, 0xfe, b'}']);
    add("UTF-16", b"\xff\xfe{\x00}\x00".to_vec());
    add("NUL bytes", vec![0; 64]);
    add("1 MiB", {
        let mut big = b"{\"consumerId\":\"".to_vec();
        big.extend(std::iter::repeat_n(b'x', 1024 * 1024));
        big.extend(b"\"}");
        big
    });
    let mutate = |path: &[&str], value: Value| with_field(valid_create, path, value);
    let line = |field: &'static str| ["lineItems", "0", field];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("consumerId a number", mutate(&["consumerId"], json!(1))),
        ("consumerId null", mutate(&["consumerId"], Value::Null)),
        ("lineItems an object", mutate(&["lineItems"], json!({}))),
        ("lineItems empty", mutate(&["lineItems"], json!([]))),
        ("quantity a string", mutate(&line("quantity"), json!("2"))),
        ("quantity a float", mutate(&line("quantity"), json!(1.5))),
        ("quantity zero", mutate(&line("quantity"), json!(0))),
        ("quantity negative", mutate(&line("quantity"), json!(-1))),
        (
            "quantity over u32",
            mutate(&line("quantity"), json!(4_294_967_296_u64)),
        ),
        ("quantity over u64", mutate(&line("quantity"), json!(1e30))),
        ("price a number", mutate(&line("price"), json!(12.34))),
        (
            "price three decimals",
            mutate(&line("price"), json!("1.234")),
        ),
        ("price negative", mutate(&line("price"), json!("-1.00"))),
        ("price exponent", mutate(&line("price"), json!("1e3"))),
        ("price NaN", mutate(&line("price"), json!("NaN"))),
        ("price huge", mutate(&line("price"), json!("9".repeat(40)))),
        (
            "price near i64::MAX",
            mutate(&line("price"), json!("92233720368547758.07")),
        ),
        ("total overflows", {
            let mut body = valid_create.clone();
            body["lineItems"][0]["quantity"] = json!(u32::MAX);
            body["lineItems"][0]["price"] = json!("90000000000000.00");
            body.to_string().into_bytes()
        }),
        (
            "restaurantId with #",
            mutate(&["restaurantId"], json!("r#1")),
        ),
        (
            "restaurantId with /",
            mutate(&["restaurantId"], json!("r/../1")),
        ),
        (
            "restaurantId 10 KB",
            mutate(&["restaurantId"], json!("r".repeat(10 * 1024))),
        ),
        (
            "restaurantId NUL",
            mutate(&["restaurantId"], json!("r\u{0}1")),
        ),
        (
            "restaurantId RTL",
            mutate(&["restaurantId"], json!("\u{202E}1-r")),
        ),
        (
            "menuItemId with #",
            mutate(&line("menuItemId"), json!("m#1")),
        ),
        (
            "name with control characters",
            mutate(&line("name"), json!("Vindaloo\u{7}\u{1b}[31m")),
        ),
        (
            "restaurantName RTL override",
            mutate(&["restaurantName"], json!("\u{202E}atnajA")),
        ),
        (
            "restaurantName blank",
            mutate(&["restaurantName"], json!(" \t ")),
        ),
        (
            "street with newline",
            mutate(&["deliveryAddress", "street1"], json!("1 Main\nSt")),
        ),
        ("duplicate field", {
            let text = valid_create.to_string();
            text.replacen('{', "{\"consumerId\":\"c-1\",", 1)
                .into_bytes()
        }),
    ];
    bodies.extend(
        cases
            .into_iter()
            .map(|(name, body)| (name.to_owned(), body)),
    );
    bodies
}

/// Page and consistency tokens no route accepts.
fn forged_tokens(page_token: &str, consistency_token: &str) -> Vec<(&'static str, String)> {
    // `keyId.payload.tag` (the key id is absent in older tokens): tamper with the payload.
    let (head, tag) = page_token.rsplit_once('.').expect("payload.tag");
    let (key, payload) = match head.rsplit_once('.') {
        Some((key, payload)) => (format!("{key}."), payload),
        None => (String::new(), head),
    };
    let mut decoded = URL_SAFE_NO_PAD.decode(payload).expect("payload");
    let digit = decoded
        .iter_mut()
        .find(|b| b.is_ascii_digit())
        .expect("the payload holds a number");
    *digit = if *digit == b'9' { b'1' } else { *digit + 1 };
    let tampered = format!("{key}{}.{tag}", URL_SAFE_NO_PAD.encode(&decoded));
    vec![
        ("pageToken", page_token[..page_token.len() / 2].to_owned()),
        ("pageToken", page_token[..page_token.len() - 1].to_owned()),
        ("pageToken", payload.to_owned()),
        ("pageToken", tampered),
        (
            "pageToken",
            format!("{payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 32])),
        ),
        ("pageToken", format!("{page_token}{page_token}")),
        ("pageToken", "A".repeat(10 * 1024)),
        ("pageToken", ".".to_owned()),
        ("pageToken", "%00".to_owned()),
        ("pageToken", "not base64!".to_owned()),
        (
            "consistentWith",
            consistency_token[..consistency_token.len() / 2].to_owned(),
        ),
        ("consistentWith", format!("{consistency_token}x")),
        ("consistentWith", "Order#o-1#1".to_owned()),
        ("consistentWith", "A".repeat(10 * 1024)),
        (
            "consistentWith",
            URL_SAFE_NO_PAD.encode(format!("Order#{}#1", "x".repeat(3000))),
        ),
        ("consistentWith", "%FF%FE".to_owned()),
    ]
}

/// Authorization headers the gateway refuses.
fn nasty_authorizations(jwt: &LocalJwt) -> Vec<(&'static str, Option<String>)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let sign = |claims: Value| jwt.sign(&claims).expect("token");
    let valid = jwt
        .issue("c-1", &["ftgo/admin"], Duration::from_secs(600))
        .expect("token");
    let (unsigned, _) = valid.rsplit_once('.').expect("three parts");
    let claims = URL_SAFE_NO_PAD.encode(
        json!({"iss": "ftgo-local", "sub": "c-1", "scope": "ftgo/admin", "exp": now + 600})
            .to_string(),
    );
    let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let hs512 = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS512","typ":"JWT"}"#);
    let bearer = |token: String| Some(format!("Bearer {token}"));
    vec![
        ("no header", None),
        ("empty", Some(String::new())),
        ("scheme only", Some("Bearer".to_owned())),
        ("basic", Some("Basic YzotMTpwYXNz".to_owned())),
        ("garbage", bearer("not-a-jwt".to_owned())),
        (
            "expired",
            bearer(sign(
                json!({"iss": "ftgo-local", "sub": "c-1", "exp": now - 5}),
            )),
        ),
        (
            "not yet valid",
            bearer(sign(
                json!({"iss": "ftgo-local", "sub": "c-1", "exp": now + 600, "nbf": now + 300}),
            )),
        ),
        (
            "no expiry",
            bearer(sign(json!({"iss": "ftgo-local", "sub": "c-1"}))),
        ),
        (
            "another issuer",
            bearer(sign(
                json!({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X", "sub": "c-1", "exp": now + 600}),
            )),
        ),
        (
            "no issuer",
            bearer(sign(json!({"sub": "c-1", "exp": now + 600}))),
        ),
        (
            "no subject",
            bearer(sign(json!({"iss": "ftgo-local", "exp": now + 600}))),
        ),
        (
            "blank subject",
            bearer(sign(
                json!({"iss": "ftgo-local", "sub": " ", "exp": now + 600}),
            )),
        ),
        (
            "another secret",
            bearer(
                LocalJwt::new("guessed")
                    .issue("c-1", &["ftgo/admin"], Duration::from_secs(600))
                    .expect("token"),
            ),
        ),
        ("alg none", bearer(format!("{none}.{claims}."))),
        ("alg none, two parts", bearer(format!("{none}.{claims}"))),
        (
            "HS512 header on an HS256 signature",
            bearer(format!(
                "{hs512}.{}",
                valid.split_once('.').expect("parts").1
            )),
        ),
        ("signature stripped", bearer(format!("{unsigned}."))),
        ("truncated", bearer(valid[..valid.len() - 3].to_owned())),
        ("10 KB", bearer("e".repeat(10 * 1024))),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_answer_4xx_json_and_write_nothing() {
    let (world, _stack) = World::start().await;
    let events = || scan_table(&world.side.dynamodb, &world.side.config.events_table);
    let before = events().await;
    let valid_create: Value =
        serde_json::from_str(include_str!("../events/bodies/create-order.json")).expect("JSON");
    let missing = "o-does-not-exist";
    let order = world.order_id.clone();

    // Nasty ids at every route, as the admin (who gets furthest) and as a consumer.
    for (verb, path) in ORDER_ROUTES {
        for id in nasty_ids() {
            for token in [&world.admin, &world.consumer] {
                let target = path.replace("{id}", &id);
                let body = if path.ends_with("revise") {
                    br#"{"lineItemQuantities":{"m-1":3}}"#.to_vec()
                } else {
                    Vec::new()
                };
                let probe = Probe {
                    body,
                    ..Probe::new(method(verb), target, token)
                };
                world.refused(&probe).await;
            }
        }
    }

    // Nasty bodies at every POST route: creates as their own consumer; commands on the real
    // order as its owner (revise reads the body), on a missing order as the admin, and on the
    // real order as another consumer.
    for (name, body) in nasty_bodies(&valid_create) {
        world
            .refused(&Probe::post("/orders", &world.consumer, body.clone()))
            .await;
        world
            .refused(&Probe::post(
                format!("/orders/{order}/revise"),
                &world.consumer,
                body.clone(),
            ))
            .await;
        for (verb, path) in ORDER_ROUTES.iter().filter(|(verb, _)| *verb == "POST") {
            for (id, token) in [
                (missing, &world.admin),
                (order.as_str(), &world.other_consumer),
            ] {
                let probe = Probe {
                    body: body.clone(),
                    ..Probe::new(method(verb), path.replace("{id}", id), token)
                };
                let answer = world.refused(&probe).await;
                assert_ne!(answer.status, 200, "{name}");
            }
        }
    }

    // Wrong content types and If-Match values.
    for content_type in [
        "application/xml",
        "multipart/form-data; boundary=x",
        "image/png",
    ] {
        let probe = Probe {
            content_type: Some(content_type),
            ..Probe::post("/orders", &world.consumer, valid_create.to_string())
        };
        world.refused(&probe).await;
    }
    for if_match in [
        "soon",
        "-1",
        "99999999999999999999999",
        "\"1\"x",
        "W/",
        "1, 2",
        "*",
    ] {
        let probe = Probe {
            if_match: Some(if_match.to_owned()),
            ..Probe::post(
                format!("/orders/{order}/cancel"),
                &world.consumer,
                Vec::new(),
            )
        };
        world.refused(&probe).await;
    }

    // Forged and truncated page and consistency tokens; the real page token for another
    // consumer and other filters.
    for (name, value) in forged_tokens(&world.page_token, &world.consistency_token) {
        let value = if value.contains('%') {
            value
        } else {
            encode(value.as_bytes())
        };
        for (token, target) in [
            (
                &world.consumer,
                format!("/consumers/c-1/orders?pageSize=1&{name}={value}"),
            ),
            (
                &world.admin,
                format!("/consumers/c-1/orders?{name}={value}"),
            ),
        ] {
            world.refused(&Probe::get(target, token)).await;
        }
        if name == "consistentWith" {
            let target = format!("/orders/{order}?consistentWith={value}");
            world.refused(&Probe::get(target, &world.consumer)).await;
        }
    }
    let foreign = encode(world.page_token.as_bytes());
    for (token, target) in [
        (
            &world.other_consumer,
            format!("/consumers/c-2/orders?pageSize=1&pageToken={foreign}"),
        ),
        (
            &world.consumer,
            format!("/consumers/c-1/orders?pageSize=1&status=APPROVED&pageToken={foreign}"),
        ),
    ] {
        world.refused(&Probe::get(target, token)).await;
    }
    // Nasty query strings.
    for query in [
        "pageSize=0",
        "pageSize=-1",
        "pageSize=1e2",
        "pageSize=99999999999999999999",
        "since=yesterday",
        "since=2026-13-45T99:99:99Z",
        "until=%00",
        "status=SHIPPED",
        "status=%E2%80%AEDEVORPPA",
        "keyword=%00",
        "keyword=",
        "since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z",
        "pageSize=1&pageSize=2",
        "bogus=1",
        "%FF%FE=1",
    ] {
        let target = format!("/consumers/c-1/orders?{query}");
        world.refused(&Probe::get(target, &world.consumer)).await;
    }

    // Tokens the gateway refuses, at every route, before any function runs.
    for (name, authorization) in nasty_authorizations(&world.jwt) {
        let mut targets: Vec<(reqwest::Method, String)> =
            vec![(reqwest::Method::POST, "/orders".to_owned())];
        targets.extend(
            ORDER_ROUTES
                .iter()
                .map(|(verb, path)| (method(verb), path.replace("{id}", &order))),
        );
        for (verb, target) in targets {
            let probe = Probe {
                authorization: authorization.clone(),
                body: valid_create.to_string().into_bytes(),
                ..Probe::new(verb, target, "")
            };
            let answer = world.refused(&probe).await;
            assert_eq!(answer.status, 401, "{name}: {}", answer.describe());
            assert_eq!(
                answer.error_code().as_deref(),
                Some("UNAUTHENTICATED"),
                "{name}"
            );
        }
    }
    let listed = world.sent.load(Ordering::Relaxed);

    // Generated inputs: bodies, paths, query strings and Authorization headers.
    let generated = generated_inputs(&world, &valid_create).await;

    let after = events().await;
    assert_eq!(
        after.len(),
        before.len(),
        "the event table got writes from hostile input"
    );
    assert_eq!(after, before, "the event table changed");
    println!(
        "hostile-input suite: {} inputs tried ({listed} listed, {generated} generated); 0 × 5xx, \
         every listed one 4xx JSON with the error shape, {} events before and after",
        listed + generated,
        before.len()
    );
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
        "[0-9]{1,25}(\\.[0-9]{0,4})?".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            Just("consumerId".to_owned()),
            Just("restaurantId".to_owned()),
            Just("lineItems".to_owned()),
            Just("lineItemQuantities".to_owned()),
            Just("quantity".to_owned()),
            Just("price".to_owned()),
            ".{0,12}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key, inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A body: raw bytes, text, any JSON, or the valid create body with one field replaced.
fn body(valid_create: Value) -> impl Strategy<Value = Vec<u8>> {
    let fields: Vec<Vec<&'static str>> = vec![
        vec!["consumerId"],
        vec!["restaurantId"],
        vec!["restaurantName"],
        vec!["lineItems"],
        vec!["lineItems", "0"],
        vec!["lineItems", "0", "menuItemId"],
        vec!["lineItems", "0", "name"],
        vec!["lineItems", "0", "quantity"],
        vec!["lineItems", "0", "price"],
        vec!["deliveryAddress"],
        vec!["deliveryAddress", "zip"],
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        ".{0,200}".prop_map(String::into_bytes),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (proptest::sample::select(fields), json_value()).prop_map(move |(path, value)| with_field(
            &valid_create,
            &path,
            value
        )),
    ]
}

/// Runs proptest cases of generated inputs; returns how many requests they made.
async fn generated_inputs(world: &World, valid_create: &Value) -> usize {
    let start = world.sent.load(Ordering::Relaxed);
    let handle = tokio::runtime::Handle::current();
    let run = |name: &str, cases: u32, test: &mut dyn FnMut() -> Result<(), String>| {
        if let Err(failure) = test() {
            panic!("{name} ({cases} cases): {failure}");
        }
    };
    let config = |cases| Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let block =
        |probe: Probe| tokio::task::block_in_place(|| handle.block_on(world.survives(&probe)));

    // Bodies at every POST route. Creates come from a caller who is not the body's
    // consumer, so that a body that happens to be a valid order is refused (403) after all
    // of its decoding ran; commands aim at an order that does not exist.
    let mut runner = TestRunner::new(config(160));
    let posts: Vec<&'static str> = std::iter::once("/orders")
        .chain(
            ORDER_ROUTES
                .iter()
                .filter(|(v, _)| *v == "POST")
                .map(|(_, p)| *p),
        )
        .collect();
    let strategy = (proptest::sample::select(posts), body(valid_create.clone()));
    run("bodies", 160, &mut || {
        runner
            .run(&strategy, |(path, body)| {
                let token = if path == "/orders" {
                    &world.other_consumer
                } else {
                    &world.admin
                };
                block(Probe::post(path.replace("{id}", "o-missing"), token, body))
            })
            .map_err(|e| e.to_string())
    });

    // Any id in any route's path, as the admin.
    let mut runner = TestRunner::new(config(160));
    let strategy = (
        proptest::sample::select(ORDER_ROUTES.to_vec()),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 1..80),
            ".{1,40}".prop_map(String::into_bytes),
        ],
    );
    run("paths", 160, &mut || {
        runner
            .run(&strategy, |((verb, path), id)| {
                let target = path.replace("{id}", &encode(&id));
                block(Probe::new(method(verb), target, &world.admin))
            })
            .map_err(|e| e.to_string())
    });

    // Any query string on both read routes, as the owner.
    let order = world.order_id.clone();
    let mut runner = TestRunner::new(config(160));
    let name = prop_oneof![
        Just("since"),
        Just("until"),
        Just("status"),
        Just("keyword"),
        Just("pageSize"),
        Just("pageToken"),
        Just("consistentWith"),
    ];
    let value = prop_oneof![
        ".{0,30}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..40),
        "-?[0-9]{1,22}".prop_map(String::into_bytes),
    ];
    let strategy = (
        any::<bool>(),
        proptest::collection::vec((name, value), 0..5),
    );
    run("query strings", 160, &mut || {
        runner
            .run(&strategy, |(history, pairs)| {
                let query: Vec<String> = pairs
                    .iter()
                    .map(|(name, value)| format!("{name}={}", encode(value)))
                    .collect();
                let path = if history {
                    "/consumers/c-1/orders".to_owned()
                } else {
                    format!("/orders/{order}")
                };
                block(Probe::get(
                    format!("{path}?{}", query.join("&")),
                    &world.consumer,
                ))
            })
            .map_err(|e| e.to_string())
    });

    // Any Authorization header: always 401.
    let mut runner = TestRunner::new(config(96));
    let strategy = prop_oneof![
        "[ -~]{0,300}",
        "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,60}"
            .prop_map(|t| format!("Bearer {t}")),
    ];
    run("authorization headers", 96, &mut || {
        runner
            .run(&strategy, |authorization| {
                let probe = Probe {
                    authorization: Some(authorization),
                    ..Probe::get(format!("/orders/{order}"), "")
                };
                let answer = tokio::task::block_in_place(|| handle.block_on(world.raw(&probe)));
                prop_assert_eq!(answer.status, 401, "{:?}: {}", probe, answer.describe());
                Ok(())
            })
            .map_err(|e| e.to_string())
    });
    world.sent.load(Ordering::Relaxed) - start
}
