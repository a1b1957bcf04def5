//! The local API gateway over real HTTP, in front of a tiny fake of the Lambda runtime's invoke
//! API (what `cargo lambda watch` serves): routing, the v2 event the function receives, its
//! answer turned back into HTTP, and the error answers (401, 404, 502, 413).
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use ftgo_infra::gateway::{Gateway, GatewayOptions, Route, RouteTable};
use ftgo_infra::invoke::RuntimeInvoker;
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, Value)>>>);

/// The fake runtime: `echo` answers a v2 response describing the event; `boom` fails like a
/// panicking Rust function under `cargo lambda watch`; `plain` answers JSON without statusCode.
async fn invoke(
    State(seen): State<Seen>,
    Path(function): Path<String>,
    body: String,
) -> (StatusCode, String) {
    let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    seen.0
        .lock()
        .expect("lock")
        .push((function.clone(), event.clone()));
    match function.as_str() {
        "echo" => {
            let answer = json!({
                "statusCode": 201,
                "headers": {"content-type": "application/json", "location": "/things/1"},
                "cookies": ["session=abc; Path=/"],
                "body": json!({
                    "routeKey": event["routeKey"],
                    "id": event["pathParameters"]["id"],
                }).to_string(),
                "isBase64Encoded": false
            });
            (StatusCode::OK, answer.to_string())
        }
        "plain" => (StatusCode::OK, r#"{"hello":"world"}"#.to_owned()),
        "boom" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"errorType": "&str", "errorMessage": "the function panicked"}).to_string(),
        ),
        _ => (StatusCode::NOT_FOUND, "function not found".to_owned()),
    }
}

struct Fixture {
    api: String,
    seen: Seen,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn fixture() -> Fixture {
    let seen = Seen::default();
    let runtime = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind runtime");
    let runtime_addr = runtime.local_addr().expect("addr");
    let app = axum::Router::new()
        .route("/2015-03-31/functions/{function}/invocations", post(invoke))
        .with_state(seen.clone());
    tokio::spawn(async move {
        let _ = axum::serve(runtime, app).await;
    });

    let routes = RouteTable::new(vec![
        Route::new("POST", "/things/{id}/poke", "echo"),
        Route::new("GET", "/plain", "plain"),
        Route::new("POST", "/boom", "boom"),
        Route::new("POST", "/missing", "no-such-function"),
    ])
    .expect("routes");
    let invoker = Arc::new(RuntimeInvoker::new(
        format!("http://{runtime_addr}"),
        Duration::from_secs(10),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind api");
    let api = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway = Gateway::new(routes, invoker, GatewayOptions::default());
    tokio::spawn(gateway.serve(listener, async move {
        let _ = stopped.await;
    }));
    Fixture {
        api,
        seen,
        stop: Some(stop),
    }
}

/// A client whose every request carries a valid local token (`ftgo token --sub tests`).
fn client() -> reqwest::Client {
    let token = ftgo_infra::token::issue("tests", &[], Duration::from_secs(600)).expect("token");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header"),
    );
    reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// A client that sends no token.
fn anonymous() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error body");
    (status, body)
}

#[tokio::test]
async fn a_routed_request_reaches_its_function_as_a_v2_event_and_its_answer_comes_back() {
    let f = fixture().await;
    let response = client()
        .post(format!("{}/things/t%201/poke?x=1&x=2", f.api))
        .header("content-type", "application/json")
        .header("cookie", "a=1")
        .body(r#"{"n":1}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(response.headers()["location"], "/things/1");
    assert_eq!(response.headers()["set-cookie"], "session=abc; Path=/");
    assert!(response.headers().contains_key("apigw-requestid"));
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["routeKey"], "POST /things/{id}/poke");
    assert_eq!(body["id"], "t 1");

    let seen = f.seen.0.lock().expect("lock").clone();
    let (function, event) = seen.last().expect("the function was invoked");
    assert_eq!(function, "echo");
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["rawPath"], "/things/t%201/poke");
    assert_eq!(event["rawQueryString"], "x=1&x=2");
    assert_eq!(event["queryStringParameters"]["x"], "1,2");
    assert_eq!(event["cookies"], json!(["a=1"]));
    assert_eq!(event["body"], r#"{"n":1}"#);
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
    assert_eq!(event["requestContext"]["stage"], "$default");
    assert_eq!(
        event["requestContext"]["routeKey"],
        "POST /things/{id}/poke"
    );
    assert!(
        event["requestContext"]["requestId"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
}

#[tokio::test]
async fn request_ids_are_unique() {
    let f = fixture().await;
    for _ in 0..3 {
        client()
            .get(format!("{}/plain", f.api))
            .send()
            .await
            .expect("request");
    }
    let ids: std::collections::HashSet<String> = f
        .seen
        .0
        .lock()
        .expect("lock")
        .iter()
        .map(|(_, e)| {
            e["requestContext"]["requestId"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 3);
}

#[tokio::test]
async fn json_without_a_status_code_is_a_200() {
    let f = fixture().await;
    let response = client()
        .get(format!("{}/plain", f.api))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.expect("body"), r#"{"hello":"world"}"#);
}

#[tokio::test]
async fn an_unknown_route_answers_404_json() {
    let f = fixture().await;
    let response = client()
        .post(format!("{}/x", f.api))
        .send()
        .await
        .expect("request");
    let (status, body) = error_of(response).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": {"code": "NOT_FOUND", "message": "no route for POST /x"}})
    );
    // A known path with another method is no route either.
    let response = client()
        .get(format!("{}/boom", f.api))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 404);
}

#[tokio::test]
async fn a_function_error_answers_502_json() {
    let f = fixture().await;
    let response = client()
        .post(format!("{}/boom", f.api))
        .send()
        .await
        .expect("request");
    let (status, body) = error_of(response).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "BAD_GATEWAY");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("the function panicked")),
        "{body}"
    );
}

#[tokio::test]
async fn a_function_the_runtime_does_not_know_answers_502_json() {
    let f = fixture().await;
    let response = client()
        .post(format!("{}/missing", f.api))
        .send()
        .await
        .expect("request");
    let (status, body) = error_of(response).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "BAD_GATEWAY");
}

#[tokio::test]
async fn an_unreachable_runtime_answers_502_json() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let invoker = Arc::new(RuntimeInvoker::new(
        format!("http://{dead}"),
        Duration::from_secs(5),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let api = format!("http://{}", listener.local_addr().expect("addr"));
    let gateway = Gateway::new(
        RouteTable::new(vec![Route::new("GET", "/x", "f")]).expect("routes"),
        invoker,
        GatewayOptions::default(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway.serve(listener, async move {
        let _ = stopped.await;
    }));
    let response = client()
        .get(format!("{api}/x"))
        .send()
        .await
        .expect("request");
    let (status, body) = error_of(response).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "BAD_GATEWAY");
    let _ = stop.send(());
}

#[tokio::test]
async fn a_body_over_10_mib_answers_413_without_invoking() {
    let f = fixture().await;
    let big = vec![b'a'; 10 * 1024 * 1024 + 1];
    let response = client()
        .post(format!("{}/things/1/poke", f.api))
        .body(big)
        .send()
        .await
        .expect("request");
    let (status, body) = error_of(response).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
    assert!(f.seen.0.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn no_token_or_a_bad_one_answers_401_json_without_invoking() {
    let f = fixture().await;
    let url = format!("{}/things/1/poke", f.api);
    let other_secret = ftgo_infra::token::LocalJwt::new("not-the-gateway-secret")
        .issue("tests", &["ftgo/admin"], Duration::from_secs(600))
        .expect("token");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let gateway_jwt = ftgo_infra::token::LocalJwt::default();
    let expired = gateway_jwt
        .sign(&json!({"iss": "ftgo-local", "sub": "tests", "exp": now - 10}))
        .expect("token");
    let foreign_issuer = gateway_jwt
        .sign(&json!({"iss": "https://elsewhere.example", "sub": "tests", "exp": now + 600}))
        .expect("token");
    for authorization in [
        None,
        Some("Bearer".to_owned()),
        Some("Basic dGVzdHM6dGVzdHM=".to_owned()),
        Some("Bearer not.a.jwt".to_owned()),
        Some(format!("Bearer {other_secret}")),
        Some(format!("Bearer {expired}")),
        Some(format!("Bearer {foreign_issuer}")),
    ] {
        let mut request = anonymous().post(&url).body("{}");
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let (status, body) = error_of(response).await;
        assert_eq!(status, 401, "{authorization:?}: {body}");
        assert_eq!(
            body["error"]["code"], "UNAUTHENTICATED",
            "{authorization:?}"
        );
        assert!(body["error"]["message"].is_string());
    }
    assert!(
        f.seen.0.lock().expect("lock").is_empty(),
        "nothing was invoked"
    );
}

#[tokio::test]
async fn a_valid_token_s_claims_reach_the_function_as_strings() {
    let f = fixture().await;
    let token = ftgo_infra::token::issue("c-1", &["ftgo/courier"], Duration::from_secs(600))
        .expect("token");
    let response = anonymous()
        .post(format!("{}/things/1/poke", f.api))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 201);
    let seen = f.seen.0.lock().expect("lock").clone();
    let (_, event) = seen.last().expect("invoked");
    let jwt = &event["requestContext"]["authorizer"]["jwt"];
    assert_eq!(jwt["claims"]["sub"], "c-1");
    assert_eq!(jwt["claims"]["iss"], "ftgo-local");
    assert_eq!(jwt["claims"]["scope"], "ftgo/courier");
    assert!(jwt["claims"]["exp"].is_string(), "{jwt}");
    assert_eq!(jwt["scopes"], json!(["ftgo/courier"]));
}

#[tokio::test]
async fn cognito_groups_reach_the_function_rendered_as_api_gateway_renders_arrays() {
    let f = fixture().await;
    let token = ftgo_infra::token::issue_with_groups(
        "u-1",
        &[],
        &["restaurant", "courier", "admin"],
        Duration::from_secs(600),
    )
    .expect("token");
    let response = anonymous()
        .post(format!("{}/things/1/poke", f.api))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 201);
    let seen = f.seen.0.lock().expect("lock").clone();
    let (_, event) = seen.last().expect("invoked");
    let claims = &event["requestContext"]["authorizer"]["jwt"]["claims"];
    assert_eq!(claims["cognito:groups"], "[restaurant courier admin]");
    assert!(claims.get("scope").is_none(), "{claims}");
}

#[tokio::test]
async fn the_api_description_is_served_as_json_without_a_token() {
    let f = fixture().await;
    let response = anonymous()
        .get(format!("{}/openapi.json", f.api))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().ok(),
        Some("application/json")
    );
    let document: Value = response.json().await.expect("JSON");
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/consumers/{consumerId}/orders"));
    assert!(f.seen.0.lock().expect("seen").is_empty(), "no function ran");
}
