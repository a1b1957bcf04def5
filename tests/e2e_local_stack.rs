//! End to end: `ftgo run` brings the whole local stack up on free ports (moto server, the
//! template's resources, `cargo lambda watch`, the API gateway, the event-source bridge), and the
//! test drives it over HTTP only, as DESIGN §3 says a client would: create an order, approve it,
//! pick up and deliver it. Then it sees the events in the event table, the stream-triggered
//! functions invoked with them by the bridge (the projector's view answers over HTTP, the
//! archiver's objects land in the archive bucket), and finally that stopping `ftgo` stops every
//! process it started.
//!
//! Needs the repository's tools (`make .venv`: moto server, cargo-lambda); says SKIPPED without
//! them, and fails in CI ([`required`]). The `ftgo order|delivery|history|seed` commands are driven against the same stack.
//! Builds the function binaries on the way (the first run takes minutes).
use crate::required;

use crate::local_stack;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_infra::stack::sdk_config;
use ftgo_infra::template::{Stack, Template};
use serde_json::{Value, json};

use local_stack::{Running, alive, descendants, free_port, root};

/// A local token for `sub` with `scopes`, as `ftgo token` prints it.
fn token(sub: &str, scopes: &[&str]) -> String {
    ftgo_infra::token::issue(sub, scopes, Duration::from_secs(3600)).expect("token")
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = client.post(url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_stack_takes_an_order_through_delivery_over_http() {
    let root = root();
    let tools = [".venv/bin/moto_server", ".venv/bin/cargo-lambda"];
    if !required::tools_present(&root, &tools, "the end-to-end test") {
        return;
    }
    let (api, aws, functions) = (free_port(), free_port(), free_port());
    let mut stack = Running::start(api, aws, functions);
    let banner = stack.wait_ready(Duration::from_secs(1500));
    assert_eq!(
        banner,
        format!(
            "FTGO is up: API http://127.0.0.1:{api} · AWS endpoint http://127.0.0.1:{aws} · functions http://127.0.0.1:{functions}"
        )
    );
    let ftgo_pid = stack.child.id();
    let base = format!("http://127.0.0.1:{api}");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client");

    // DESIGN §3, who may do what: a consumer, a restaurant and a courier.
    let consumer = token("c-1", &[]);
    let restaurant = token("ajanta-staff", &["ftgo/restaurant"]);
    let courier = token("courier-7", &["ftgo/courier"]);

    // No token: 401 from the gateway, nothing invoked.
    let response = client
        .get(format!("{base}/consumers/c-1/orders"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 401);
    // Another consumer's history: 403.
    let response = client
        .get(format!("{base}/consumers/c-2/orders"))
        .bearer_auth(&consumer)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 403);

    // DESIGN §3: create → 201 with Location; approve, pick up, deliver → 200.
    let create = json!({
        "consumerId": "c-1", "restaurantId": "r-1", "restaurantName": "Ajanta",
        "lineItems": [{"menuItemId": "m-1", "name": "Chicken Vindaloo", "quantity": 2, "price": "12.34"}],
        "deliveryAddress": {"street1": "1 Main St", "street2": null, "city": "Oakland", "state": "CA", "zip": "94612"}
    });
    let (status, headers, created) =
        post(&client, &format!("{base}/orders"), &consumer, Some(&create)).await;
    assert_eq!(status, 201, "create: {created}");
    let order_id = created["orderId"].as_str().expect("orderId").to_owned();
    assert_eq!(headers["location"], format!("/orders/{order_id}").as_str());
    assert_eq!(created["status"], "APPROVAL_PENDING");
    assert_eq!(created["orderTotal"], "24.68");

    let (status, _, refused) = post(
        &client,
        &format!("{base}/orders/{order_id}/approve"),
        &consumer,
        None,
    )
    .await;
    assert_eq!(status, 403, "a consumer cannot approve: {refused}");
    let (status, _, approved) = post(
        &client,
        &format!("{base}/orders/{order_id}/approve"),
        &restaurant,
        None,
    )
    .await;
    assert_eq!(status, 200, "approve: {approved}");
    assert_eq!(approved["status"], "APPROVED");
    let (status, _, picked) = post(
        &client,
        &format!("{base}/deliveries/{order_id}/pickup"),
        &courier,
        None,
    )
    .await;
    assert_eq!(status, 200, "pickup: {picked}");
    assert_eq!(picked["deliveryStatus"], "PICKED_UP");
    let (status, _, delivered) = post(
        &client,
        &format!("{base}/deliveries/{order_id}/deliver"),
        &courier,
        None,
    )
    .await;
    assert_eq!(status, 200, "deliver: {delivered}");
    assert_eq!(delivered["deliveryStatus"], "DELIVERED");

    // Unknown routes answer 404 JSON through the same gateway.
    let (status, _, missing) = post(&client, &format!("{base}/nowhere"), &consumer, None).await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "NOT_FOUND");

    // The events are in the table the stream-triggered functions read (named by the template).
    let endpoint = format!("http://127.0.0.1:{aws}");
    let template = Template::load(
        root.join("template.yaml"),
        Stack::local().with_endpoint(&endpoint),
    )
    .expect("template");
    let events_table = template
        .stream_sources()
        .first()
        .expect("a stream event source")
        .table
        .name
        .clone();
    let sdk = sdk_config(&endpoint, "us-east-1").await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let mut types = Vec::new();
    for stream_id in [format!("Order#{order_id}"), format!("Delivery#{order_id}")] {
        let out = dynamodb
            .query()
            .table_name(&events_table)
            .key_condition_expression("streamId = :s")
            .expression_attribute_values(":s", AttributeValue::S(stream_id.clone()))
            .consistent_read(true)
            .send()
            .await
            .expect("query the event table");
        let versions: Vec<String> = out
            .items()
            .iter()
            .filter_map(|i| i.get("version").and_then(|v| v.as_n().ok()).cloned())
            .collect();
        assert_eq!(versions, vec!["1", "2"], "{stream_id}");
        types.extend(
            out.items()
                .iter()
                .filter_map(|i| i.get("eventType").and_then(|v| v.as_s().ok()).cloned()),
        );
    }
    assert_eq!(types.len(), 4, "{types:?}");

    // The bridge fed the stream to the projector: the view answers with the whole story.
    let deadline = Instant::now() + Duration::from_secs(120);
    let view = loop {
        let response = client
            .get(format!("{base}/orders/{order_id}"))
            .bearer_auth(&consumer)
            .send()
            .await
            .expect("find order");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == 200 && body["deliveryStatus"] == "DELIVERED" {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the projector did not bring the view up to date: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(view["orderId"], order_id.as_str());
    assert_eq!(view["status"], "APPROVED");
    assert_eq!(view["consumerId"], "c-1");
    // Another consumer cannot tell the order exists; the courier may read it.
    for (caller, expected) in [(token("c-2", &[]), 404), (courier.clone(), 200)] {
        let response = client
            .get(format!("{base}/orders/{order_id}"))
            .bearer_auth(&caller)
            .send()
            .await
            .expect("find order");
        assert_eq!(response.status().as_u16(), expected);
    }

    // ... and to the archiver: the events land in the archive bucket (its batching window is
    // cut to seconds for the tests: `--max-batching-window`).
    let bucket = template
        .buckets()
        .first()
        .expect("the archive bucket")
        .name
        .clone();
    let s3 = ftgo_infra::provision::s3_client(&sdk);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let listed = s3
            .list_objects_v2()
            .bucket(&bucket)
            .send()
            .await
            .expect("list the archive");
        if listed.key_count().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the archiver wrote nothing");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    the_cli_drives_the_same_api(&base);
    the_cli_reads_the_stacks_status(aws, &stack.log_dir);

    // Stopping ftgo stops everything it started.
    let started = descendants(ftgo_pid);
    assert!(
        started
            .iter()
            .any(|(_, name)| name.contains("python") || name.contains("moto")),
        "moto server runs under ftgo: {started:?}"
    );
    assert!(
        started
            .iter()
            .any(|(_, name)| name.contains("cargo-lambda")),
        "cargo lambda watch runs under ftgo: {started:?}"
    );
    let status = stack.stop().expect("ftgo stops on SIGTERM");
    assert!(
        status.success(),
        "ftgo exited with {status}:\n{}",
        stack.output.join("\n")
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left: Vec<(u32, String)> = started.clone();
    while !left.is_empty() && Instant::now() < deadline {
        left.retain(|(pid, _)| alive(*pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        left.is_empty(),
        "processes left running after ftgo stopped: {left:?}"
    );
    let _ = std::fs::remove_dir_all(&stack.log_dir);
}

/// `ftgo` with `args` against the API at `base` (`FTGO_API`, the default admin token).
fn ftgo(base: &str, args: &[&str]) -> (i32, String, String) {
    let out = local_stack::ftgo()
        .args(args)
        .env("FTGO_API", base)
        .env_remove("FTGO_TOKEN")
        .output()
        .expect("ftgo runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// `ftgo` that must succeed, its standard output as JSON.
fn ftgo_json(base: &str, args: &[&str]) -> Value {
    let (code, out, err) = ftgo(base, args);
    assert_eq!(code, 0, "ftgo {args:?}: {err}{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ftgo {args:?} printed {out:?}: {e}"))
}

/// DESIGN §10: `ftgo status --json` and `ftgo dlq list --json` on the running stack (its AWS
/// endpoint, its bridge's progress file): the tables with the orders, the stream consumers.
fn the_cli_reads_the_stacks_status(aws: u16, log_dir: &std::path::Path) {
    let endpoint = format!("http://127.0.0.1:{aws}");
    let progress = log_dir.join("bridge-progress.json");
    let target = ["--endpoint", endpoint.as_str()];
    let mut args = vec!["status", "--json", "--progress"];
    let progress = progress.display().to_string();
    args.push(&progress);
    args.extend(target);
    let status = ftgo_json("", &args);
    let events = status["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "ftgo-events"))
        .unwrap_or_else(|| panic!("the event table in {status}"));
    assert!(events["name"].is_string(), "{status}");
    let consumers = status["consumers"].as_array().cloned().unwrap_or_default();
    assert!(
        consumers
            .iter()
            .any(|c| c["function"] == "order-history-projector"),
        "the projector's shards in the bridge's progress: {status}"
    );
    let mut args = vec!["dlq", "list", "--json"];
    args.extend(target);
    let letters = ftgo_json("", &args);
    assert!(letters.is_array(), "{letters}");
}

/// DESIGN §10: `ftgo seed`, `order`, `delivery` and `history` over the running stack's API.
fn the_cli_drives_the_same_api(base: &str) {
    let (code, out, err) = ftgo(base, &["seed", "--orders", "5", "--consumer", "c-cli"]);
    assert_eq!(code, 0, "seed: {err}{out}");
    assert_eq!(
        out.lines().count(),
        6,
        "one line an order and a summary: {out}"
    );
    assert!(out.ends_with("seeded 5 orders for c-cli\n"), "{out}");
    for state in [
        "APPROVAL_PENDING",
        "APPROVED",
        "PICKED_UP",
        "DELIVERED",
        "CANCELLED",
    ] {
        assert!(out.contains(state), "seed leaves an order {state}: {out}");
    }

    let item = "m-7:Paneer Tikka:3:9.99";
    let created = ftgo_json(
        base,
        &[
            "order",
            "create",
            "--consumer",
            "c-cli",
            "--restaurant",
            "r-9",
            "--restaurant-name",
            "Tandoor House",
            "--item",
            item,
            "--sub",
            "c-cli",
            "--json",
        ],
    );
    let order_id = created["orderId"].as_str().expect("orderId").to_owned();
    assert_eq!(created["status"], "APPROVAL_PENDING");
    assert_eq!(created["orderTotal"], "29.97");
    let (code, out, err) = ftgo(base, &["order", "approve", &order_id, "--if-match", "1"]);
    assert_eq!(code, 0, "approve: {err}");
    assert!(
        out.starts_with(&format!("order {order_id} APPROVED (version 2")),
        "{out}"
    );
    let picked = ftgo_json(base, &["delivery", "pickup", &order_id, "--json"]);
    assert_eq!(picked["deliveryStatus"], "PICKED_UP");

    // Read your writes: `--consistent-with` waits for the view to catch up with the pickup.
    let token = picked["token"].as_str().expect("token");
    let view = ftgo_json(
        base,
        &[
            "order",
            "get",
            &order_id,
            "--consistent-with",
            token,
            "--json",
        ],
    );
    assert_eq!(view["status"], "APPROVED");
    assert_eq!(view["deliveryStatus"], "PICKED_UP");
    assert_eq!(view["restaurantName"], "Tandoor House");

    // The history, two a page, every page: the six orders once the projector has them all.
    let deadline = Instant::now() + Duration::from_secs(120);
    let all = &["history", "c-cli", "--all", "--page-size", "2", "--json"];
    let orders = loop {
        let orders = ftgo_json(base, all)["orders"]
            .as_array()
            .cloned()
            .expect("orders");
        if orders.len() == 6 || Instant::now() > deadline {
            break orders;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(orders.len(), 6, "{orders:?}");
    assert!(orders.iter().any(|o| o["orderId"] == order_id.as_str()));
    let (code, out, err) = ftgo(base, &["history", "c-cli", "--keyword", "paneer"]);
    assert_eq!(code, 0, "history: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ORDER") && lines[0].contains("STATUS"),
        "{out}"
    );
    assert_eq!(
        lines.len(),
        2,
        "the header and the one matching order: {out}"
    );
    assert!(
        lines[1].starts_with(&order_id) && lines[1].contains("Tandoor House"),
        "{out}"
    );

    // Refusals: the error code on standard error, an exit code of its own for 409.
    let (code, _, err) = ftgo(base, &["order", "approve", "o-no-such-order"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("404 NOT_FOUND"), "{err}");
    let (code, _, err) = ftgo(base, &["order", "approve", &order_id]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("INVALID_STATE"), "{err}");
}
