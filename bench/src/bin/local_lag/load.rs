//! The load and the watch: clients send creates and approves over the HTTP API; a watcher polls
//! the view table and notes when each answered command's version first shows there.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use serde_json::{Value, json};

/// One answered command, waiting to show in the view.
#[derive(Clone, Debug)]
struct Pending {
    order_id: String,
    version: u64,
    answered: Instant,
}

/// What the load measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Lags of the commands seen in the view, in ms.
    pub lags_ms: Vec<f64>,
    /// Answered commands never seen within the settle time.
    pub unseen: usize,
    /// How long each unseen command had waited when the watch stopped, in ms (a lower bound of
    /// its lag).
    pub unseen_waited_ms: Vec<f64>,
    /// Commands that were not answered 2xx.
    pub failed: usize,
    /// Seconds from the first command to the last answer.
    pub send_seconds: f64,
    /// Sweeps of the watcher, and their mean duration in ms.
    pub sweeps: usize,
    /// Mean duration of a sweep, in ms.
    pub sweep_ms: f64,
}

/// How the load runs.
#[derive(Clone, Debug)]
pub struct Load {
    /// The HTTP API.
    pub api: String,
    /// A bearer token.
    pub token: String,
    /// The view table.
    pub table: String,
    /// Commands to send (creates and approves, half each).
    pub commands: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Commands per second, over all clients (paced by their start times); 0: as fast as the
    /// answers come.
    pub rate: f64,
    /// How long after the last answer an unseen command may still show.
    pub settle: Duration,
}

fn create_body() -> Value {
    json!({
        "consumerId": "c-bench", "restaurantId": "r-1", "restaurantName": "Ajanta",
        "lineItems": [
            {"menuItemId": "m-1", "name": "Chicken Vindaloo", "quantity": 2, "price": "12.34"},
            {"menuItemId": "m-2", "name": "Garlic Naan", "quantity": 1, "price": "3.50"}
        ],
        "deliveryAddress": {"street1": "1 Main St", "street2": null, "city": "Oakland", "state": "CA", "zip": "94612"}
    })
}

/// POSTs a command; answers the order id and version of a 2xx answer.
async fn command(
    http: &reqwest::Client,
    load: &Load,
    path: &str,
    body: Option<Value>,
) -> Option<(String, u64)> {
    let mut request = http
        .post(format!("{}{path}", load.api))
        .bearer_auth(&load.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let value: Value = response.json().await.ok()?;
    Some((
        value["orderId"].as_str()?.to_owned(),
        value["version"].as_u64()?,
    ))
}

/// One client: create an order, approve it, again, until the commands are used up; the k-th
/// command of the run starts no earlier than `k / rate` seconds after `started`.
async fn client(
    load: Arc<Load>,
    http: reqwest::Client,
    issued: Arc<AtomicUsize>,
    started: Instant,
    pending: Arc<Mutex<Vec<Pending>>>,
    failed: Arc<AtomicUsize>,
) {
    let take = || async {
        let k = issued.fetch_add(1, Ordering::SeqCst);
        if k >= load.commands {
            return false;
        }
        if load.rate > 0.0 {
            let at = started + Duration::from_secs_f64(k as f64 / load.rate);
            tokio::time::sleep_until(at.into()).await;
        }
        true
    };
    let note = |answer: Option<(String, u64)>| match answer {
        Some((order_id, version)) => {
            if let Ok(mut p) = pending.lock() {
                p.push(Pending {
                    order_id,
                    version,
                    answered: Instant::now(),
                });
            }
        }
        None => {
            failed.fetch_add(1, Ordering::SeqCst);
        }
    };
    while take().await {
        let created = command(&http, &load, "/orders", Some(create_body())).await;
        let id = created.as_ref().map(|(id, _)| id.clone());
        note(created);
        let Some(id) = id else { continue };
        if !take().await {
            break;
        }
        note(command(&http, &load, &format!("/orders/{id}/approve"), None).await);
    }
}

/// The versions of `ids` in the view table (a consistent `BatchGetItem`, 100 keys at a time).
async fn view_versions(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    ids: &[String],
) -> HashMap<String, u64> {
    let mut versions = HashMap::new();
    for chunk in ids.chunks(100) {
        let keys = chunk
            .iter()
            .map(|id| HashMap::from([("orderId".to_owned(), AttributeValue::S(id.clone()))]))
            .collect();
        let Ok(request) = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .projection_expression("orderId, orderVersion")
            .build()
        else {
            continue;
        };
        let Ok(answer) = db
            .batch_get_item()
            .request_items(table, request)
            .send()
            .await
        else {
            continue;
        };
        for item in answer
            .responses
            .and_then(|mut r| r.remove(table))
            .unwrap_or_default()
        {
            let id = item.get("orderId").and_then(|v| v.as_s().ok());
            let version = item
                .get("orderVersion")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<u64>().ok());
            if let (Some(id), Some(version)) = (id, version) {
                versions.insert(id.clone(), version);
            }
        }
    }
    versions
}

/// Runs the load and the watch; answers what they measured.
pub async fn run(load: Load, db: aws_sdk_dynamodb::Client) -> Outcome {
    let load = Arc::new(load);
    let pending: Arc<Mutex<Vec<Pending>>> = Arc::default();
    let failed = Arc::new(AtomicUsize::new(0));
    let issued = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_default();
    let started = Instant::now();
    let clients: Vec<_> = (0..load.clients)
        .map(|_| {
            tokio::spawn(client(
                load.clone(),
                http.clone(),
                issued.clone(),
                started,
                pending.clone(),
                failed.clone(),
            ))
        })
        .collect();
    let sending = tokio::spawn(async move {
        for c in clients {
            let _ = c.await;
        }
        Instant::now()
    });
    let mut outcome = Outcome::default();
    let mut sweep_total = Duration::ZERO;
    let mut done_at: Option<Instant> = None;
    loop {
        let snapshot: Vec<Pending> = pending.lock().map(|p| p.clone()).unwrap_or_default();
        let mut ids: Vec<String> = snapshot.iter().map(|p| p.order_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let sweep = Instant::now();
        let versions = view_versions(&db, &load.table, &ids).await;
        let seen_at = Instant::now();
        sweep_total += seen_at - sweep;
        outcome.sweeps += 1;
        let mut seen: BTreeMap<(String, u64), f64> = BTreeMap::new();
        for p in &snapshot {
            if versions.get(&p.order_id).is_some_and(|&v| v >= p.version) {
                seen.insert(
                    (p.order_id.clone(), p.version),
                    (seen_at - p.answered).as_secs_f64() * 1000.0,
                );
            }
        }
        if let Ok(mut p) = pending.lock() {
            p.retain(|p| !seen.contains_key(&(p.order_id.clone(), p.version)));
        }
        outcome.lags_ms.extend(seen.into_values());
        if done_at.is_none() && sending.is_finished() {
            done_at = Some(Instant::now());
        }
        let left = pending.lock().map(|p| p.len()).unwrap_or(0);
        if let Some(done) = done_at
            && (left == 0 || done.elapsed() > load.settle)
        {
            outcome.unseen = left;
            let now = Instant::now();
            outcome.unseen_waited_ms = pending
                .lock()
                .map(|p| {
                    p.iter()
                        .map(|p| (now - p.answered).as_secs_f64() * 1000.0)
                        .collect()
                })
                .unwrap_or_default();
            break;
        }
        // One read in flight at a time, and a pause: the watch shares moto with the projector.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    outcome.send_seconds = sending
        .await
        .map_or(0.0, |end| (end - started).as_secs_f64());
    outcome.failed = failed.load(Ordering::SeqCst);
    outcome.sweep_ms = sweep_total.as_secs_f64() * 1000.0 / outcome.sweeps.max(1) as f64;
    outcome
}
