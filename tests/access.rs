//! Who may do what (DESIGN §3), through the real handlers: the `events/` samples, which carry the
//! JWT authorizer's claims as API Gateway passes them, re-addressed to other callers, against
//! moto. Refusals answer 401/403/404 with the error shape and write nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use crate::in_process;
use crate::read_side;

use ftgo_aws::lambda::{delivery_commands, order_commands, order_history_query as query};
use ftgo_aws::lambda_http::{self, Body, Request};
use ftgo_domain::access::{Action, Caller, Verdict};
use ftgo_tests::{Emulator, repository_root};
use read_side::{ReadSide, scan_table};
use serde_json::Value;

/// The sample order id the `events/` samples carry.
const SAMPLE_ORDER_ID: &str = "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

/// Who calls: `None` = no authorizer context at all.
#[derive(Clone, Copy, Debug)]
enum As {
    Sample,
    Anonymous,
    Caller(&'static str, &'static str),
}

const C1: As = As::Caller("c-1", "openid");
const C2: As = As::Caller("c-2", "openid");
const RESTAURANT: As = As::Caller("ajanta-staff", "ftgo/restaurant");
const COURIER: As = As::Caller("courier-7", "ftgo/courier");
const ADMIN: As = As::Caller("ops", "ftgo/admin");

/// `events/<function>/<name>`, aimed at `order_id`, from `caller`.
/// The `routeKey` of the sample `events/<function>/<name>`.
fn route_key_of(function: &str, name: &str) -> String {
    let path = repository_root().join("events").join(function).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let sample: Value = serde_json::from_str(&text).expect("JSON sample");
    sample["routeKey"].as_str().expect("routeKey").to_owned()
}

fn sample(function: &str, name: &str, order_id: &str, caller: As) -> Request {
    let path = repository_root().join("events").join(function).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut event: Value =
        serde_json::from_str(&text.replace(SAMPLE_ORDER_ID, order_id)).expect("sample JSON");
    let claims = &mut event["requestContext"]["authorizer"]["jwt"]["claims"];
    assert!(claims.is_object(), "{name} carries the authorizer's claims");
    match caller {
        As::Sample => {}
        As::Anonymous => {
            event["requestContext"]
                .as_object_mut()
                .expect("context")
                .remove("authorizer");
        }
        As::Caller(sub, scope) => {
            claims["sub"] = sub.into();
            claims["username"] = sub.into();
            claims["scope"] = scope.into();
        }
    }
    lambda_http::request::from_str(&event.to_string()).expect("API Gateway v2 request")
}

fn answer(response: lambda_http::Response<Body>) -> (u16, Value) {
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).expect("JSON answer"),
        other => panic!("unexpected body {other:?}"),
    };
    (response.status().as_u16(), body)
}

/// Sends a sample of `function` to its handler.
async fn send(
    side: &ReadSide,
    function: &str,
    name: &str,
    order_id: &str,
    caller: As,
) -> (u16, Value) {
    let request = sample(function, name, order_id, caller);
    let response = match function {
        "order-commands" => order_commands::handle(&side.commands, request).await,
        "delivery-commands" => delivery_commands::handle(&side.commands, request).await,
        "order-history-query" => query::handle(&side.query, request).await,
        other => panic!("no function {other}"),
    };
    answer(response.expect("the handler answers"))
}

/// Asserts `got` is `status` with error `code` (or a success without an error body).
fn expect(got: &(u16, Value), status: u16, what: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    let code = match status {
        401 => Some("UNAUTHENTICATED"),
        403 => Some("FORBIDDEN"),
        404 => Some("NOT_FOUND"),
        _ => None,
    };
    if let Some(code) = code {
        assert_eq!(got.1["error"]["code"], code, "{what}");
        assert!(got.1["error"]["message"].is_string(), "{what}");
    }
}

/// Creates an order of c-1 with the sample and projects it.
async fn order_of_c1(side: &ReadSide) -> String {
    let created = send(
        side,
        "order-commands",
        "create-order.json",
        SAMPLE_ORDER_ID,
        As::Sample,
    )
    .await;
    expect(&created, 201, "c-1 creates its order");
    let order_id = created.1["orderId"].as_str().expect("orderId").to_owned();
    side.project_table(&order_id).await;
    order_id
}

#[tokio::test]
async fn every_role_at_every_route_through_the_samples() {
    let moto = Emulator::moto().await;
    let (side, _stack) = ReadSide::fresh(moto).await;
    let order = order_of_c1(&side).await;
    let events = || scan_table(&side.dynamodb, &side.config.events_table);
    let before = events().await.len();

    // Every declared route, through its sample, from every caller the policy refuses on
    // c-1's order: 401 without a token; 403 or 404 as DESIGN §3's table (pinned by
    // `ftgo_domain::route`'s own test) says. So nothing below writes, and a new route is
    // tried here without being listed.
    let mut refused: Vec<(&str, &str, As, u16)> = Vec::new();
    for &action in Action::ALL {
        let route = action.route();
        let (function, name) = route.sample.split_once('/').expect("<function>/<name>");
        assert_eq!(route_key_of(function, name), route.key, "{}", route.sample);
        refused.push((function, name, As::Anonymous, 401));
        for caller in [C1, C2, RESTAURANT, COURIER] {
            let As::Caller(sub, scope) = caller else {
                unreachable!("callers with a token")
            };
            let who = Caller::new(sub, [scope]).expect("caller");
            match who.may(action, Some("c-1")) {
                Verdict::Allowed => {}
                Verdict::Forbidden => refused.push((function, name, caller, 403)),
                Verdict::Hidden => refused.push((function, name, caller, 404)),
            }
        }
    }
    // The policy's table has refusals of each kind, so the loop above tries them.
    for status in [401, 403, 404] {
        assert!(refused.iter().any(|row| row.3 == status), "{status}");
    }
    for &(function, name, caller, status) in &refused {
        let got = send(&side, function, name, &order, caller).await;
        expect(&got, status, &format!("{function}/{name} as {caller:?}"));
    }
    assert_eq!(events().await.len(), before, "no refusal wrote an event");
    let o = "order-commands";
    let d = "delivery-commands";
    let q = "order-history-query";

    // A hidden order answers exactly as a missing one.
    let hidden = send(&side, q, "find-order.json", &order, C2).await;
    let missing = send(&side, q, "find-order-not-found.json", "o-missing", C1).await;
    assert_eq!(hidden.1["error"]["code"], missing.1["error"]["code"]);
    let hidden = send(&side, o, "cancel-order.json", &order, C2).await;
    let missing = send(&side, o, "cancel-order.json", "o-missing", C1).await;
    assert_eq!(
        hidden, missing,
        "a command on another's order reveals nothing"
    );
    let missing = send(&side, o, "cancel-order.json", "o-missing", ADMIN).await;
    assert_eq!(
        hidden, missing,
        "…and answers as the domain answers a missing order"
    );

    // Reads allowed: the owner, a restaurant, a courier, an admin; the history to its owner
    // and to an admin.
    for caller in [As::Sample, RESTAURANT, COURIER, ADMIN] {
        let got = send(&side, q, "find-order.json", &order, caller).await;
        expect(&got, 200, &format!("find-order as {caller:?}"));
        assert_eq!(got.1["orderId"], order.as_str());
    }
    for caller in [As::Sample, ADMIN] {
        let got = send(&side, q, "find-order-history.json", &order, caller).await;
        expect(&got, 200, &format!("history of c-1 as {caller:?}"));
    }

    // Commands allowed: the owner revises, the restaurant approves, the courier picks up
    // and delivers; the admin may create for anyone.
    let steps: &[(&str, &str, As)] = &[
        (o, "revise-order.json", As::Sample),
        (o, "approve-order.json", RESTAURANT),
        (d, "pickup.json", COURIER),
        (d, "deliver.json", COURIER),
    ];
    for &(function, name, caller) in steps {
        let got = send(&side, function, name, &order, caller).await;
        expect(&got, 200, &format!("{function}/{name} as {caller:?}"));
    }
    let for_c1 = send(&side, o, "create-order.json", SAMPLE_ORDER_ID, ADMIN).await;
    expect(&for_c1, 201, "an admin creates an order for c-1");

    // The owner cancels its own order; the restaurant rejects another.
    let second = order_of_c1(&side).await;
    expect(
        &send(&side, o, "cancel-order.json", &second, C1).await,
        200,
        "c-1 cancels its order",
    );
    let third = order_of_c1(&side).await;
    expect(
        &send(&side, o, "reject-order.json", &third, RESTAURANT).await,
        200,
        "the restaurant rejects",
    );
}

/// Through the local gateway (tokens checked, claims passed as API Gateway passes them) to the
/// real handlers: roles from Cognito groups and from `scope`, in the shapes issuers send.
mod through_the_gateway {
    use std::time::Duration;

    use ftgo_infra::token::LocalJwt;
    use ftgo_tests::Emulator;
    use reqwest::header::{ETAG, IF_MATCH, IF_NONE_MATCH, RETRY_AFTER};
    use serde_json::{Value, json};

    use super::in_process::{http_client, serve_gateway};
    use super::read_side::ReadSide;

    const CREATE_ORDER: &str = include_str!("../events/bodies/create-order.json");
    const HOUR: Duration = Duration::from_secs(3600);

    struct Api {
        side: ReadSide,
        base: String,
        client: reqwest::Client,
        jwt: LocalJwt,
        _stop: tokio::sync::oneshot::Sender<()>,
        _stack: ftgo_tests::TestStack,
    }

    impl Api {
        /// A fresh stack with `parameters` (the local stack's otherwise), behind the gateway.
        async fn start(parameters: &[(&str, &str)]) -> Self {
            let (side, stack) = ReadSide::fresh_with(Emulator::moto().await, parameters).await;
            let jwt = LocalJwt::new("access-suite-secret");
            let (base, stop) = serve_gateway(&side, &stack, &jwt).await;
            Self {
                side,
                base,
                client: http_client(),
                jwt,
                _stop: stop,
                _stack: stack,
            }
        }

        fn groups(&self, sub: &str, groups: &[&str]) -> String {
            self.jwt
                .issue_with_groups(sub, &[], groups, HOUR)
                .expect("token")
        }

        fn scopes(&self, sub: &str, scope: Value) -> String {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs();
            self.jwt
                .sign(&json!({"iss": ftgo_infra::token::ISSUER, "sub": sub,
                              "exp": now + 3600, "scope": scope}))
                .expect("token")
        }

        async fn send(
            &self,
            method: reqwest::Method,
            target: &str,
            token: &str,
            headers: &[(reqwest::header::HeaderName, &str)],
        ) -> reqwest::Response {
            let mut request = self
                .client
                .request(method.clone(), format!("{}{target}", self.base))
                .bearer_auth(token);
            if method == reqwest::Method::POST {
                let body = if target == "/orders" {
                    CREATE_ORDER
                } else {
                    ""
                };
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_owned());
            }
            for (name, value) in headers {
                request = request.header(name, *value);
            }
            request.send().await.expect("an answer")
        }

        async fn post(&self, target: &str, token: &str) -> (u16, Value) {
            status_and_json(self.send(reqwest::Method::POST, target, token, &[]).await).await
        }

        /// A projected order of c-1, created through the gateway.
        async fn order_of_c1(&self) -> (String, String) {
            let consumer = self.groups("c-1", &[]);
            let (status, created) = self.post("/orders", &consumer).await;
            assert_eq!(status, 201, "{created}");
            let order_id = created["orderId"].as_str().expect("orderId").to_owned();
            self.side.project_table(&order_id).await;
            (
                order_id,
                created["token"].as_str().expect("token").to_owned(),
            )
        }
    }

    async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn groups_and_scope_arrays_grant_their_roles_locally() {
        let api = Api::start(&[]).await;
        let (order, _) = api.order_of_c1().await;

        // `cognito:groups: ["restaurant"]`, no scope: may approve.
        let restaurant = api.groups("ajanta-staff", &["restaurant"]);
        let (status, body) = api
            .post(&format!("/orders/{order}/approve"), &restaurant)
            .await;
        assert_eq!(status, 200, "{body}");
        // Group `courier`: may pick up, may not approve another order.
        let courier = api.groups("courier-7", &["courier"]);
        let (status, body) = api
            .post(&format!("/deliveries/{order}/pickup"), &courier)
            .await;
        assert_eq!(status, 200, "{body}");
        let (second, _) = api.order_of_c1().await;
        let (status, body) = api
            .post(&format!("/orders/{second}/approve"), &courier)
            .await;
        assert_eq!((status, &body["error"]["code"]), (403, &json!("FORBIDDEN")));
        // `scope` as an array, the role neither first nor last… and first.
        for scope in [
            json!(["openid", "ftgo/restaurant", "email"]),
            json!(["ftgo/restaurant", "openid"]),
        ] {
            let (order, _) = api.order_of_c1().await;
            let token = api.scopes("ajanta-staff", scope.clone());
            let (status, body) = api.post(&format!("/orders/{order}/approve"), &token).await;
            assert_eq!(status, 200, "scope {scope}: {body}");
        }
        // The space-separated `scope` of `ftgo token --scope` still works locally.
        let (order, _) = api.order_of_c1().await;
        let token = api.scopes("ajanta-staff", json!("openid ftgo/restaurant"));
        let (status, body) = api.post(&format!("/orders/{order}/approve"), &token).await;
        assert_eq!(status, 200, "{body}");
    }

    #[tokio::test]
    async fn with_only_the_groups_claim_configured_a_scope_alone_grants_nothing() {
        let api = Api::start(&[("RoleClaims", "cognito:groups")]).await;
        let (order, _) = api.order_of_c1().await;
        for scope in [json!("ftgo/restaurant ftgo/admin"), json!(["ftgo/admin"])] {
            let token = api.scopes("ajanta-staff", scope.clone());
            let (status, body) = api.post(&format!("/orders/{order}/approve"), &token).await;
            // Not a restaurant: another consumer's order does not exist for it.
            assert_eq!(status, 404, "scope {scope}: {body}");
        }
        let restaurant = api.groups("ajanta-staff", &["restaurant"]);
        let (status, body) = api
            .post(&format!("/orders/{order}/approve"), &restaurant)
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Everything of an answer a caller could learn from: status, the headers that vary, body.
    async fn everything(response: reqwest::Response) -> (u16, Option<String>, String) {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .map(|value| value.to_str().expect("ASCII").to_owned());
        (status, retry_after, response.text().await.expect("body"))
    }

    #[tokio::test]
    async fn consistent_with_tells_another_consumers_order_from_a_missing_one_by_nothing() {
        let api = Api::start(&[]).await;
        let (order, _) = api.order_of_c1().await;
        // Move c-1's order on, so that its version (2) is something to leak.
        let restaurant = api.groups("ajanta-staff", &["restaurant"]);
        let (status, approved) = api
            .post(&format!("/orders/{order}/approve"), &restaurant)
            .await;
        assert_eq!(status, 200, "{approved}");
        api.side.project_table(&order).await;
        // A token for c-1's order at version 2, and the same for an order that does not exist
        // (tokens are not secret: anyone can write one).
        let token_for = |id: &str| {
            ftgo_domain::token::ConsistencyToken {
                aggregate_type: ftgo_domain::AggregateType::Order,
                aggregate_id: id.to_owned(),
                version: 2,
            }
            .encode()
        };
        let same_length_missing = format!("{}x", &order[..order.len() - 1]);
        let c2 = api.groups("c-2", &[]);
        let get = reqwest::Method::GET;
        let history = |id: &str| format!("/consumers/c-2/orders?consistentWith={}", token_for(id));
        let theirs = everything(api.send(get.clone(), &history(&order), &c2, &[]).await).await;
        let missing = everything(
            api.send(get.clone(), &history(&same_length_missing), &c2, &[])
                .await,
        )
        .await;
        assert_eq!(theirs.0, 409, "{theirs:?}");
        assert_eq!(
            theirs.2.replace(&order, "<id>"),
            missing.2.replace(&same_length_missing, "<id>"),
            "the history answers alike"
        );
        assert_eq!(theirs.1, missing.1);
        assert!(theirs.2.contains("up to version 0"), "{}", theirs.2);
        // The owner is told the truth: caught up.
        let c1 = api.groups("c-1", &[]);
        let own = everything(
            api.send(
                get.clone(),
                &history(&order).replace("c-2", "c-1"),
                &c1,
                &[],
            )
            .await,
        )
        .await;
        assert_eq!(own.0, 200, "{own:?}");

        // `GET /orders/{id}` likewise.
        let find = |id: &str| format!("/orders/{id}?consistentWith={}", token_for(id));
        let theirs = everything(api.send(get.clone(), &find(&order), &c2, &[]).await).await;
        let missing = everything(
            api.send(get.clone(), &find(&same_length_missing), &c2, &[])
                .await,
        )
        .await;
        assert_eq!(theirs.0, 409, "{theirs:?}");
        assert_eq!(
            (theirs.0, theirs.1, theirs.2.replace(&order, "<id>")),
            (
                missing.0,
                missing.1,
                missing.2.replace(&same_length_missing, "<id>")
            )
        );
    }

    #[tokio::test]
    async fn etags_if_none_match_and_strong_if_match() {
        let api = Api::start(&[]).await;
        let (order, _) = api.order_of_c1().await;
        let c1 = api.groups("c-1", &[]);
        let get = reqwest::Method::GET;
        let post = reqwest::Method::POST;
        let path = format!("/orders/{order}");

        let fresh = api.send(get.clone(), &path, &c1, &[]).await;
        assert_eq!(fresh.status().as_u16(), 200);
        assert_eq!(fresh.headers()[ETAG], "\"1\"");
        for held in ["\"1\"", "W/\"1\"", "\"7\", \"1\"", "*"] {
            let cached = api
                .send(get.clone(), &path, &c1, &[(IF_NONE_MATCH, held)])
                .await;
            assert_eq!(cached.status().as_u16(), 304, "If-None-Match {held}");
            assert_eq!(cached.headers()[ETAG], "\"1\"");
            assert!(cached.text().await.expect("body").is_empty(), "no body");
        }
        let changed = api
            .send(get.clone(), &path, &c1, &[(IF_NONE_MATCH, "\"0\"")])
            .await;
        assert_eq!(changed.status().as_u16(), 200);
        // Another consumer learns nothing, If-None-Match or not.
        let c2 = api.groups("c-2", &[]);
        let hidden = api
            .send(get.clone(), &path, &c2, &[(IF_NONE_MATCH, "*")])
            .await;
        assert_eq!(hidden.status().as_u16(), 404);

        // If-Match: strong comparison; a weak tag never matches.
        let restaurant = api.groups("ajanta-staff", &["restaurant"]);
        let approve = format!("/orders/{order}/approve");
        for refused in ["W/\"1\"", "\"2\"", "\"0\", W/\"1\""] {
            let (status, body) = status_and_json(
                api.send(post.clone(), &approve, &restaurant, &[(IF_MATCH, refused)])
                    .await,
            )
            .await;
            assert_eq!(status, 412, "If-Match {refused}: {body}");
            assert_eq!(body["error"]["code"], "VERSION_MISMATCH");
        }
        let approved = api
            .send(
                post.clone(),
                &approve,
                &restaurant,
                &[(IF_MATCH, "\"0\", \"1\"")],
            )
            .await;
        assert_eq!(approved.status().as_u16(), 200);
        assert_eq!(approved.headers()[ETAG], "\"2\"");

        // The view's tag changes with the delivery, and names each aggregate's version.
        let courier = api.groups("courier-7", &["courier"]);
        let pickup = format!("/deliveries/{order}/pickup");
        let picked = api
            .send(post.clone(), &pickup, &courier, &[(IF_MATCH, "*")])
            .await;
        assert_eq!(picked.status().as_u16(), 412, "`*`: no delivery yet");
        let picked = api.send(post.clone(), &pickup, &courier, &[]).await;
        assert_eq!(picked.status().as_u16(), 200);
        assert_eq!(picked.headers()[ETAG], "\"1\"");
        api.side.project_table(&order).await;
        let viewed = api
            .send(get.clone(), &path, &c1, &[(IF_NONE_MATCH, "\"2\"")])
            .await;
        assert_eq!(
            viewed.status().as_u16(),
            200,
            "the pickup changed the answer"
        );
        let tag = viewed.headers()[ETAG].to_str().expect("ASCII").to_owned();
        assert_eq!(tag, "\"2.1\"");
        let deliver = format!("/deliveries/{order}/deliver");
        let delivered = api
            .send(
                post.clone(),
                &deliver,
                &courier,
                &[(IF_MATCH, tag.as_str())],
            )
            .await;
        assert_eq!(
            delivered.status().as_u16(),
            200,
            "the delivery's part matches"
        );
    }
}
