//! Soak: the local stack holds under concurrent commands and a killed function instance.
//!
//! `ftgo run` on free ports; 16 clients send random commands (create, approve, reject, cancel,
//! revise, pickup, deliver; some with `If-Match`) to a few hot orders and to orders they create;
//! mid-run the projector is invoked directly on the stack's functions address (as
//! `cargo lambda invoke` does with an `events/` sample), then every running
//! `order-history-projector` instance is killed (`kill -9`). Then:
//!
//! - no answer is a 5xx (or anything but 200/201, 409, 412); a 412 only answers an `If-Match`:
//!   one function's dead instance never touches another function (issue 15, defect 7);
//! - every accepted command's event is in the event table exactly once: per stream, the
//!   versions the 2xx answers named are exactly 1..n and the table holds exactly 1..n;
//! - the view equals the fold of the event table for every order (the stream kept flowing);
//! - the killed instance was replaced: the projector instances that ran at the kill are gone,
//!   new ones serve, and the stack logged the restart;
//! - the S3 archive holds every event.
//!
//! It prints what it reached (requests, concurrency, kills, seconds to converge). Bounded: a
//! few hundred requests, at most 90 s to converge (`FTGO_SOAK_REQUESTS_PER_CLIENT=100` runs a
//! longer one by hand). Needs the repository's tools (`make .venv`);
//! says SKIPPED without them, and fails without them in CI.
use crate::required;

use crate::local_stack;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ftgo_aws::config::Config;
use ftgo_aws::store::archive::{Archive, s3_client};
use ftgo_aws::store::event_store::EventStore;
use ftgo_aws::store::order_history::OrderHistoryDao;
use ftgo_domain::AggregateType;
use ftgo_domain::view::OrderView;
use ftgo_infra::stack::sdk_config;
use ftgo_infra::template::{Stack, Template};
use serde_json::{Value, json};

use local_stack::{Running, descendants, free_port, root};

const CLIENTS: usize = 16;
/// Requests per client; `FTGO_SOAK_REQUESTS_PER_CLIENT` runs a longer soak by hand.
fn requests_per_client() -> usize {
    std::env::var("FTGO_SOAK_REQUESTS_PER_CLIENT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}
const HOT_ORDERS: usize = 4;

/// One answered command.
#[derive(Clone, Debug)]
struct Answered {
    command: &'static str,
    order_id: String,
    stream: AggregateType,
    if_match: bool,
    status: u16,
    version: Option<u64>,
}

/// A small deterministic generator (xorshift), seeded per client.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).unwrap_or(0)
    }
}

fn create_body() -> Value {
    json!({
        "consumerId": "c-soak", "restaurantId": "r-1", "restaurantName": "Ajanta",
        "lineItems": [
            {"menuItemId": "m-1", "name": "Chicken Vindaloo", "quantity": 2, "price": "12.34"},
            {"menuItemId": "m-2", "name": "Garlic Naan", "quantity": 1, "price": "3.50"}
        ],
        "deliveryAddress": {"street1": "1 Main St", "street2": null, "city": "Oakland", "state": "CA", "zip": "94612"}
    })
}

/// A bearer token when the `ftgo` binary can make one (`ftgo token`), else none.
fn bearer() -> Option<String> {
    let out = local_stack::ftgo()
        .args(["token", "--sub", "soak-admin", "--scope", "ftgo/admin"])
        .output()
        .ok()?;
    let token = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !token.is_empty()).then_some(token)
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// POSTs a command; answers the status and the answer's `version`.
    async fn command(
        &self,
        path: &str,
        body: Option<&Value>,
        if_match: Option<u64>,
    ) -> (u16, Option<u64>, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(version) = if_match {
            request = request.header("if-match", version.to_string());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let value: Value = response.json().await.unwrap_or(Value::Null);
                (status, value["version"].as_u64(), value)
            }
            // No answer at all is as bad as a 5xx: recorded as 599.
            Err(error) => (599, None, json!(error.to_string())),
        }
    }
}

/// Every process below `pid` running the binary `name`.
fn processes_named(pid: u32, name: &str) -> Vec<u32> {
    descendants(pid)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| {
            std::fs::read_link(format!("/proc/{p}/exe"))
                .ok()
                .and_then(|exe| exe.file_name().map(|n| n.to_string_lossy().into_owned()))
                .is_some_and(|n| n == name)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_local_stack_holds_under_concurrent_commands_and_a_killed_projector() {
    let root = root();
    let tools = [".venv/bin/python", ".venv/bin/cargo-lambda"];
    if !required::tools_present(&root, &tools, "the soak test") {
        return;
    }
    let (api, aws, functions) = (free_port(), free_port(), free_port());
    let mut stack = Running::start_with(api, aws, functions, 4, "soak");
    stack.wait_ready(Duration::from_secs(1500));
    let ftgo_pid = stack.child.id();
    let client = Arc::new(Client {
        http: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client"),
        base: format!("http://127.0.0.1:{api}"),
        token: bearer(),
    });
    let started = Instant::now();

    // A few hot orders everyone fights over.
    let answers: Arc<Mutex<Vec<Answered>>> = Arc::default();
    let orders: Arc<Mutex<Vec<String>>> = Arc::default();
    for _ in 0..HOT_ORDERS {
        let (status, version, body) = client.command("/orders", Some(&create_body()), None).await;
        assert_eq!(status, 201, "create a hot order: {body}");
        let id = body["orderId"].as_str().expect("orderId").to_owned();
        orders.lock().expect("lock").push(id.clone());
        answers.lock().expect("lock").push(Answered {
            command: "create",
            order_id: id,
            stream: AggregateType::Order,
            if_match: false,
            status,
            version,
        });
    }
    let hot: Vec<String> = orders.lock().expect("lock").clone();

    // The killer: once a third of the requests are answered, invoke the projector directly on
    // the functions address, then kill -9 every running projector instance (the one that
    // served the direct invoke among them); answers the pids running at that moment.
    let requests_per_client = requests_per_client();
    let total = CLIENTS * requests_per_client;
    let done = Arc::new(AtomicUsize::new(0));
    let direct = std::fs::read(root.join("events/order-history-projector/order-lifecycle.json"))
        .expect("the projector's sample event");
    let killer = {
        let done = Arc::clone(&done);
        let http = client.http.clone();
        tokio::spawn(async move {
            while done.load(Ordering::SeqCst) < total / 3 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let answer = http
                .post(format!(
                    "http://127.0.0.1:{functions}/2015-03-31/functions/order-history-projector/invocations"
                ))
                .body(direct)
                .send()
                .await
                .expect("a direct invoke of the projector is answered");
            let status = answer.status().as_u16();
            let body = answer.text().await.unwrap_or_default();
            assert!(
                status == 200 && body.contains("batchItemFailures"),
                "direct invoke: {status} {body}"
            );
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                // An instance that has run for a while: the supervisor (which looks twice a
                // second) has seen it, as it sees every instance that lives longer than a look.
                // (One killed within half a second of its birth is caught later, when its
                // invocation is cut at the function's Timeout: not what this test times.)
                let seen = processes_named(ftgo_pid, "order-history-projector");
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let running = processes_named(ftgo_pid, "order-history-projector");
                let targets: Vec<u32> = seen
                    .iter()
                    .filter(|pid| running.contains(pid))
                    .copied()
                    .collect();
                if !targets.is_empty() {
                    for pid in &targets {
                        let _ = std::process::Command::new("kill")
                            .args(["-9", &pid.to_string()])
                            .status();
                    }
                    return (running, targets.len());
                }
                if Instant::now() > deadline {
                    return (Vec::new(), 0);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // The clients.
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (client, answers, orders, hot, done) = (
            Arc::clone(&client),
            Arc::clone(&answers),
            Arc::clone(&orders),
            hot.clone(),
            Arc::clone(&done),
        );
        clients.spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1).wrapping_mul(0x2545_F491));
            let mut seen: HashMap<(String, &'static str), u64> = HashMap::new();
            for _ in 0..requests_per_client {
                let pick = rng.below(14);
                let order_id = if rng.below(10) < 7 {
                    hot[rng.below(hot.len())].clone()
                } else {
                    let all = orders.lock().expect("lock").clone();
                    all[rng.below(all.len())].clone()
                };
                let (command, path, body, stream) = match pick {
                    0 | 1 => (
                        "create",
                        "/orders".to_owned(),
                        Some(create_body()),
                        AggregateType::Order,
                    ),
                    2 | 3 => (
                        "approve",
                        format!("/orders/{order_id}/approve"),
                        None,
                        AggregateType::Order,
                    ),
                    4 => (
                        "reject",
                        format!("/orders/{order_id}/reject"),
                        None,
                        AggregateType::Order,
                    ),
                    5 => (
                        "cancel",
                        format!("/orders/{order_id}/cancel"),
                        None,
                        AggregateType::Order,
                    ),
                    6..=8 => (
                        "revise",
                        format!("/orders/{order_id}/revise"),
                        Some(json!({"lineItemQuantities": {"m-1": 1 + rng.below(5)}})),
                        AggregateType::Order,
                    ),
                    9..=11 => (
                        "pickup",
                        format!("/deliveries/{order_id}/pickup"),
                        None,
                        AggregateType::Delivery,
                    ),
                    _ => (
                        "deliver",
                        format!("/deliveries/{order_id}/deliver"),
                        None,
                        AggregateType::Delivery,
                    ),
                };
                // Some commands name the version they last saw (maybe stale by now).
                let key = (order_id.clone(), stream.as_str());
                let if_match = (command != "create" && rng.below(4) == 0)
                    .then(|| seen.get(&key).copied().unwrap_or(1));
                let (status, version, answer) =
                    client.command(&path, body.as_ref(), if_match).await;
                let order_id = if command == "create" {
                    let id = answer["orderId"].as_str().unwrap_or_default().to_owned();
                    if status == 201 {
                        orders.lock().expect("lock").push(id.clone());
                    }
                    id
                } else {
                    order_id
                };
                if let Some(v) = version {
                    seen.insert((order_id.clone(), stream.as_str()), v);
                }
                answers.lock().expect("lock").push(Answered {
                    command,
                    order_id,
                    stream,
                    if_match: if_match.is_some(),
                    status,
                    version,
                });
                done.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    while let Some(joined) = clients.join_next().await {
        joined.expect("a client finished");
    }
    let commands_done = Instant::now();
    let (before_kill, kills) = killer.await.expect("killer");
    assert!(
        !before_kill.is_empty(),
        "a running order-history-projector instance was found and killed"
    );
    let answers = answers.lock().expect("lock").clone();

    // Every answer is a success or a refusal: never a 5xx, never no answer.
    let wrong: Vec<&Answered> = answers
        .iter()
        .filter(|a| !matches!(a.status, 200 | 201 | 409 | 412) || (a.status == 412 && !a.if_match))
        .collect();
    assert!(
        wrong.is_empty(),
        "answers other than 2xx/409/412 (412 only for If-Match): {wrong:#?}"
    );

    // Every accepted command is in the event table exactly once, versions contiguous.
    let endpoint = format!("http://127.0.0.1:{aws}");
    let template = Template::load(
        root.join("template.yaml"),
        Stack::local().with_endpoint(&endpoint),
    )
    .expect("template");
    let env_of = |binary: &str| {
        template
            .functions()
            .iter()
            .find(|f| f.binary == binary)
            .map(|f| f.environment.clone())
            .unwrap_or_default()
    };
    let (projector_env, query_env, archiver_env) = (
        env_of("order-history-projector"),
        env_of("order-history-query"),
        env_of("event-archiver"),
    );
    let config = Config::from_lookup(|name| {
        projector_env
            .get(name)
            .or_else(|| query_env.get(name))
            .or_else(|| archiver_env.get(name))
            .cloned()
    })
    .expect("configuration from the template");
    let sdk = sdk_config(&endpoint, "us-east-1").await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let store = EventStore::new(
        dynamodb.clone(),
        &config.events_table,
        &config.snapshots_table,
    );
    let dao = OrderHistoryDao::new(
        dynamodb.clone(),
        &config.order_history_table,
        &config.order_history_by_consumer_index,
    );
    let order_ids: BTreeSet<String> = orders.lock().expect("lock").iter().cloned().collect();
    let mut events = Vec::new();
    let mut accepted_total = 0;
    for id in &order_ids {
        for stream in [AggregateType::Order, AggregateType::Delivery] {
            let stream_id = stream.stream_id(id);
            let mut accepted: Vec<u64> = answers
                .iter()
                .filter(|a| {
                    a.order_id == *id && a.stream == stream && (200..300).contains(&a.status)
                })
                .map(|a| a.version.expect("a 2xx answer names its version"))
                .collect();
            accepted.sort_unstable();
            accepted_total += accepted.len();
            let stored = store
                .read_stream(&stream_id, 0, None)
                .await
                .expect("read stream");
            let versions: Vec<u64> = stored.iter().map(|e| e.version).collect();
            let expected: Vec<u64> = (1..=accepted.len() as u64).collect();
            assert_eq!(
                accepted, expected,
                "{stream_id}: the accepted commands' versions are 1..n, each once"
            );
            assert_eq!(
                versions, expected,
                "{stream_id}: the table holds exactly the accepted events"
            );
            events.extend(stored);
        }
    }

    // The view converges on the fold of the event table, every order.
    let folded: BTreeMap<String, OrderView> = ftgo_domain::view::fold(&events)
        .expect("the events fold")
        .into_iter()
        .map(|(id, view)| (id, to_millis(view)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut differing: Vec<String>;
    loop {
        differing = Vec::new();
        for (id, want) in &folded {
            let got = dao.get(id).await.ok().flatten().map(to_millis);
            if got.as_ref() != Some(want) {
                differing.push(id.clone());
            }
        }
        if differing.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let view_converged = commands_done.elapsed();
    assert!(
        differing.is_empty(),
        "the view never equalled the fold for {differing:?}"
    );
    assert_eq!(folded.len(), order_ids.len(), "every order is in the fold");
    // The killed instance was replaced: the projector's instances that ran at the kill are all
    // gone (its server was restarted with a fresh pool), new ones serve, and the stack said so.
    let replaced_by = Instant::now() + Duration::from_secs(20);
    let mut now_running = processes_named(ftgo_pid, "order-history-projector");
    while before_kill.iter().any(|pid| now_running.contains(pid)) && Instant::now() < replaced_by {
        tokio::time::sleep(Duration::from_millis(250)).await;
        now_running = processes_named(ftgo_pid, "order-history-projector");
    }
    assert!(
        before_kill.iter().all(|pid| !now_running.contains(pid)),
        "old instances {before_kill:?} still run: {now_running:?}"
    );
    assert!(!now_running.is_empty(), "new projector instances serve");
    // The restart is logged, with its reason: usually the instance seen dead ("died"); an
    // instance killed before the supervisor first saw it is caught when its invocation fails
    // instead. Either way the projector's server was restarted, and said so.
    let restart_logged = |output: &[String]| {
        output.iter().any(|line| {
            line.contains("restarting cargo lambda watch")
                && line.contains("serves=order-history-projector")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    stack.drain();
    while !restart_logged(&stack.output) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stack.drain();
    }
    assert!(restart_logged(&stack.output), "the replacement is logged");

    // The archive holds every event.
    let archive = Archive::new(s3_client(&sdk), &config.archive_bucket);
    let want: BTreeSet<(String, u64)> = events
        .iter()
        .map(|e| (e.stream_id.clone(), e.version))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let missing = loop {
        let archived: BTreeSet<(String, u64)> = archive
            .read_prefix("")
            .await
            .expect("read the archive")
            .into_iter()
            .map(|e| (e.stream_id, e.version))
            .collect();
        let missing: Vec<&(String, u64)> = want.difference(&archived).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.len();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let archive_converged = commands_done.elapsed();
    assert_eq!(missing, 0, "events missing from the archive");

    let mut by_command: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for a in &answers {
        let entry = by_command.entry(a.command).or_default();
        if (200..300).contains(&a.status) {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
    let refused_409 = answers.iter().filter(|a| a.status == 409).count();
    let refused_412 = answers.iter().filter(|a| a.status == 412).count();
    println!(
        "soak: {} requests from {CLIENTS} concurrent clients ({} with If-Match) on {} orders ({HOT_ORDERS} hot) in {:.1}s: {accepted_total} accepted, {refused_409} × 409, {refused_412} × 412, 0 × 5xx; {kills} projector instance(s) killed after a direct invoke on the functions address; view equal to the fold {:.1}s and archive complete {:.1}s after the last command; {} events; (accepted, refused) per command {by_command:?}",
        answers.len(),
        answers.iter().filter(|a| a.if_match).count(),
        order_ids.len(),
        (commands_done - started).as_secs_f64(),
        view_converged.as_secs_f64(),
        archive_converged.as_secs_f64(),
        events.len(),
    );
    assert_eq!(accepted_total, events.len());

    // Nothing watches tool trees: every inotify watch the stack's processes hold, counted, and
    // none on the workspace root, `.venv`, `node_modules` or `target`.
    let (watches, watched) = inotify_watches(ftgo_pid);
    let forbidden: Vec<(String, u64)> = ["", ".venv", "node_modules", "target"]
        .iter()
        .filter_map(|dir| {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(root.join(dir)).ok()?;
            Some((format!("{}/{dir}", root.display()), meta.ino()))
        })
        .collect();
    let watched_tool_trees: Vec<&String> = forbidden
        .iter()
        .filter(|(_, ino)| watched.contains(ino))
        .map(|(dir, _)| dir)
        .collect();
    println!("soak: the stack's processes hold {watches} inotify watches");
    assert!(
        watched_tool_trees.is_empty(),
        "watched: {watched_tool_trees:?}"
    );
    assert!(watches < 1_000, "{watches} inotify watches");

    let status = stack.stop().expect("ftgo stops on SIGTERM");
    assert!(status.success(), "ftgo exited with {status}");
    let _ = std::fs::remove_dir_all(&stack.log_dir);
}

/// The number of inotify watches held by `pid` and the processes below it, and the inodes
/// watched (`inotify wd:… ino:<hex>` lines of `/proc/<pid>/fdinfo/*`).
fn inotify_watches(pid: u32) -> (usize, BTreeSet<u64>) {
    let mut count = 0;
    let mut inodes = BTreeSet::new();
    let pids = std::iter::once(pid).chain(descendants(pid).into_iter().map(|(p, _)| p));
    for p in pids {
        let Ok(entries) = std::fs::read_dir(format!("/proc/{p}/fdinfo")) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            for line in text.lines().filter(|l| l.starts_with("inotify wd:")) {
                count += 1;
                if let Some(ino) = line
                    .split_whitespace()
                    .find_map(|f| f.strip_prefix("ino:"))
                    .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                {
                    inodes.insert(ino);
                }
            }
        }
    }
    (count, inodes)
}

/// `view` with its creation date cut to the millisecond the view table stores.
fn to_millis(mut view: OrderView) -> OrderView {
    view.creation_date = view.creation_date.map(|date| {
        let nanos = date.nanosecond() / 1_000_000 * 1_000_000;
        date.replace_nanosecond(nanos).unwrap_or(date)
    });
    view
}
