//! Retries of keyed commands (DESIGN §3 "Retries are safe": the key is bound to the write
//! itself, no record of it is kept anywhere else), after other commands landed in between and
//! under AWS's faults, driven through the command Lambdas' handlers against moto server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use ftgo_aws::commands::{CommandContext, CommandService, RetryPolicy};
use ftgo_aws::config::Config;
use ftgo_aws::faults::{FaultKind, FaultLayer, FaultPlan, Rule};
use ftgo_aws::lambda::{delivery_commands, idempotent, order_commands};
use ftgo_aws::lambda_http::{self, Body, Request, Response};
use ftgo_aws::store::event_store::{EventStore, SettlePolicy};
use ftgo_domain::access::RoleClaims;
use ftgo_domain::delivery::{Delivery, DeliveryCommand, DeliveryStatus};
use ftgo_domain::order::{Order, OrderCommand, OrderStatus};
use ftgo_domain::{AggregateType, DomainError};
use ftgo_tests::{Emulator, repository_root, unique_id};
use http::{HeaderValue, StatusCode};
use serde_json::Value;

/// The sample order id the `events/` samples carry.
const SAMPLE_ORDER_ID: &str = "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

/// The command service of `function` on moto's shared stack.
async fn service_for(function: &str) -> CommandService {
    let moto = Emulator::moto().await;
    let env = moto.stack().function_env(function);
    let config = Config::from_lookup(|name| env.get(name).cloned()).expect("valid environment");
    CommandService::from_config(&moto.sdk_config().await, &config).expect("service")
}

/// Sample `name` of `function`, aimed at `order_id`, with `Idempotency-Key: key` when given.
fn sample(function: &str, name: &str, order_id: &str, key: Option<&str>) -> Request {
    let path = repository_root().join("events").join(function).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut request = lambda_http::request::from_str(&text.replace(SAMPLE_ORDER_ID, order_id))
        .expect("API Gateway v2 request");
    if let Some(key) = key {
        request
            .headers_mut()
            .insert(idempotent::HEADER, HeaderValue::from_str(key).unwrap());
    }
    request
}

/// What a client sees of an answer: status, the headers a retry must repeat, and the body.
#[derive(Debug, PartialEq)]
struct Seen {
    status: StatusCode,
    location: Option<String>,
    etag: Option<String>,
    body: Value,
}

fn seen(response: Response<Body>) -> Seen {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Seen {
        status: response.status(),
        location: header("location"),
        etag: header("etag"),
        body: match response.body() {
            Body::Text(text) => serde_json::from_str(text).expect("JSON answer"),
            other => panic!("unexpected body {other:?}"),
        },
    }
}

async fn send(service: &CommandService, request: Request) -> Seen {
    let delivery = matches!(
        ftgo_aws::routes::matched(&request),
        Some((_, route)) if matches!(route.target, ftgo_domain::route::Target::Delivery(_))
    );
    let response = if delivery {
        delivery_commands::handle(service, request).await
    } else {
        order_commands::handle(service, request).await
    };
    seen(response.expect("answers"))
}

async fn versions(service: &CommandService, kind: AggregateType, order_id: &str) -> Vec<u64> {
    service
        .store()
        .read_stream(&kind.stream_id(order_id), 0, None)
        .await
        .expect("reads")
        .iter()
        .map(|e| e.version)
        .collect()
}

/// Creates an order without a key; its id.
async fn create(service: &CommandService) -> String {
    let created = send(
        service,
        sample("order-commands", "create-order.json", SAMPLE_ORDER_ID, None),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["orderId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_keyed_create_retried_answers_the_same_order_placed_once() {
    let service = service_for("order-commands").await;
    let key = unique_id("create");
    let request = || sample("order-commands", "create-order.json", "-", Some(&key));
    let first = send(&service, request()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);

    let retry = send(&service, request()).await;
    assert_eq!(retry, first, "the retry answers as the first call did");
    let order_id = first.body["orderId"].as_str().unwrap();
    assert_eq!(
        versions(&service, AggregateType::Order, order_id).await,
        vec![1]
    );
}

#[tokio::test]
async fn a_keyed_transition_retried_after_another_command_answers_its_first_answer_not_409() {
    let service = service_for("order-commands").await;
    let order_id = create(&service).await;
    let key = unique_id("approve");
    let approve = || {
        sample(
            "order-commands",
            "approve-order.json",
            &order_id,
            Some(&key),
        )
    };
    let first = send(&service, approve()).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);

    // Another command lands in between: the retry still answers the approve's own answer.
    let revise = sample("order-commands", "revise-order.json", &order_id, None);
    assert_eq!(send(&service, revise).await.status, StatusCode::OK);
    let retry = send(&service, approve()).await;
    assert_eq!(retry, first);
    assert_eq!(
        versions(&service, AggregateType::Order, &order_id).await,
        vec![1, 2, 3]
    );
}

#[tokio::test]
async fn a_keyed_guarded_transition_retried_answers_its_first_answer() {
    let orders = service_for("order-commands").await;
    let deliveries = service_for("delivery-commands").await;
    let order_id = create(&orders).await;
    let approve = sample("order-commands", "approve-order.json", &order_id, None);
    assert_eq!(send(&orders, approve).await.status, StatusCode::OK);
    let key = unique_id("pickup");
    let pickup = || sample("delivery-commands", "pickup.json", &order_id, Some(&key));
    let first = send(&deliveries, pickup()).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);

    let retry = send(&deliveries, pickup()).await;
    assert_eq!(retry, first);
    assert_eq!(
        versions(&orders, AggregateType::Delivery, &order_id).await,
        vec![1]
    );
}

#[tokio::test]
async fn the_key_with_another_body_is_422_and_writes_nothing() {
    let service = service_for("order-commands").await;
    let key = unique_id("create");
    let request = || sample("order-commands", "create-order.json", "-", Some(&key));
    let first = send(&service, request()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let mut other = request();
    let mut body: Value = match other.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        _ => panic!("text body"),
    };
    body["restaurantName"] = "Another".into();
    *other.body_mut() = Body::Text(body.to_string());
    let answer = send(&service, other).await;
    assert_eq!(
        (answer.status, answer.body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("IDEMPOTENCY_KEY_REUSED")
        ),
        "{:?}",
        answer.body
    );

    // A transition too: the key's revise with another body.
    let order_id = first.body["orderId"].as_str().unwrap().to_owned();
    let key = unique_id("revise");
    let revise = || sample("order-commands", "revise-order.json", &order_id, Some(&key));
    assert_eq!(send(&service, revise()).await.status, StatusCode::OK);
    let mut other = revise();
    *other.body_mut() = Body::Text(r#"{"lineItemQuantities":{"m-1":7}}"#.to_owned());
    let answer = send(&service, other).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        versions(&service, AggregateType::Order, &order_id).await,
        vec![1, 2],
        "nothing written"
    );
}

// ---- Under AWS's faults (`ftgo_aws::faults`): writes whose answer is lost or unknown. ----

/// A command service on moto's shared stack whose DynamoDB client goes through `layer`, with
/// the functions' 4 SDK attempts (short backoffs) and a short settle budget.
async fn faulty_service(layer: &FaultLayer) -> (CommandService, Tables) {
    let moto = Emulator::moto().await;
    let sdk = layer.apply(
        &moto
            .sdk_config()
            .await
            .to_builder()
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(4)
                    .with_initial_backoff(Duration::from_millis(5)),
            )
            .build(),
    );
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let stack = moto.stack();
    let tables = Tables {
        events: stack.table_name("EventsTable").to_owned(),
    };
    let store = EventStore::new(client, &tables.events, stack.table_name("SnapshotsTable"))
        .with_settle_policy(SettlePolicy {
            budget: Duration::from_millis(600),
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
        });
    // Roles from `scope` too, as the stack's samples carry them (the template's default reads
    // only `cognito:groups`: the samples' restaurant would be refused).
    let service =
        CommandService::new(store, RetryPolicy::default(), 100).with_role_claims(RoleClaims::all());
    (service, tables)
}

/// The tables a faulty service writes.
struct Tables {
    events: String,
}

/// An order created and approved without faults; its id.
async fn approved(service: &CommandService) -> String {
    let order_id = create(service).await;
    let approve = sample("order-commands", "approve-order.json", &order_id, None);
    assert_eq!(send(service, approve).await.status, StatusCode::OK);
    order_id
}

/// Sends `request()` as a client does: on 503 (or 409 with `Retry-After`) again, the faults
/// stopped; the answers seen, first to last.
async fn as_a_client(
    service: &CommandService,
    layer: &FaultLayer,
    request: impl Fn() -> Request,
) -> Vec<Seen> {
    let mut seen = vec![send(service, request()).await];
    layer.stop();
    while seen.len() < 4
        && matches!(
            seen.last().map(|s| s.status),
            Some(StatusCode::SERVICE_UNAVAILABLE | StatusCode::CONFLICT)
        )
        && seen
            .last()
            .is_some_and(|s| s.body["error"]["code"] != "INVALID_STATE")
    {
        seen.push(send(service, request()).await);
    }
    seen
}

#[tokio::test]
async fn a_keyed_create_whose_answer_was_lost_runs_the_command_once() {
    let layer = FaultLayer::new(FaultPlan::scripted());
    let (service, tables) = faulty_service(&layer).await;
    layer.push_rule(
        Rule::new(FaultKind::LostAnswer)
            .operation("PutItem")
            .resource(&tables.events),
    );
    let key = unique_id("create");
    let request = || sample("order-commands", "create-order.json", "-", Some(&key));
    let first = send(&service, request()).await;
    assert_eq!(layer.counts().total(), 1, "{}", layer.counts());
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let order_id = first.body["orderId"].as_str().unwrap();
    assert_eq!(
        versions(&service, AggregateType::Order, order_id).await,
        vec![1]
    );
    let replay = send(&service, request()).await;
    assert_eq!(replay, first);
}

#[tokio::test]
async fn a_transaction_in_progress_beyond_the_sdk_retries_answers_its_success_never_409() {
    // Resends under the same token meet the first attempt still running for 3 retries (the SDK
    // gives up) and then, with 20, for the whole settle budget (then it is read back).
    for in_progress in [3, 20] {
        let layer = FaultLayer::new(FaultPlan::scripted().in_progress_retries(in_progress));
        let (service, _) = faulty_service(&layer).await;
        let order_id = approved(&service).await;
        layer
            .push_rule(Rule::new(FaultKind::TransactionInProgress).operation("TransactWriteItems"));
        let key = unique_id("pickup");
        let pickup = || sample("delivery-commands", "pickup.json", &order_id, Some(&key));
        let seen = as_a_client(&service, &layer, pickup).await;
        assert!(layer.counts().total() >= 1, "{}", layer.counts());
        let last = seen.last().unwrap();
        assert_eq!(last.status, StatusCode::OK, "{in_progress}: {seen:?}");
        assert_eq!(last.body["version"], 1, "{seen:?}");
        assert!(
            seen.iter().all(|s| s.status != StatusCode::CONFLICT),
            "{seen:?}"
        );
        assert_eq!(
            versions(&service, AggregateType::Delivery, &order_id).await,
            vec![1]
        );
    }
}

#[tokio::test]
async fn a_500_after_the_single_put_landed_answers_its_success() {
    let layer = FaultLayer::new(FaultPlan::scripted());
    let (service, tables) = faulty_service(&layer).await;
    let order_id = create(&service).await;
    // Every attempt the SDK makes reaches the table and is answered 500.
    layer.push_rule(
        Rule::new(FaultKind::ErrorAfter)
            .operation("PutItem")
            .resource(&tables.events)
            .times(4),
    );
    let approve = sample("order-commands", "approve-order.json", &order_id, None);
    let answer = send(&service, approve).await;
    assert_eq!(layer.counts().total(), 4, "{}", layer.counts());
    assert_eq!(
        (answer.status, &answer.body["version"]),
        (StatusCode::OK, &Value::from(2)),
        "{:?}",
        answer.body
    );
    assert_eq!(
        versions(&service, AggregateType::Order, &order_id).await,
        vec![1, 2]
    );
}

#[tokio::test]
async fn a_landed_put_whose_read_back_fails_all_sdk_attempts_is_read_back_again_not_503() {
    let layer = FaultLayer::new(FaultPlan::scripted());
    let (service, tables) = faulty_service(&layer).await;
    let order_id = create(&service).await;
    // The put lands and every SDK attempt is answered 500; then every SDK attempt of the
    // read-back is throttled (as when the SDK's retry quota is spent, the SDK gives up): only
    // a read-back of the service's own settles it.
    layer.push_rule(
        Rule::new(FaultKind::ErrorAfter)
            .operation("PutItem")
            .resource(&tables.events)
            .times(4),
    );
    layer.push_rule(
        Rule::new(FaultKind::Throttle)
            .operation("GetItem")
            .resource(&tables.events)
            .times(4),
    );
    let approve = sample("order-commands", "approve-order.json", &order_id, None);
    let answer = send(&service, approve).await;
    assert_eq!(layer.counts().total(), 8, "{}", layer.counts());
    assert_eq!(
        (answer.status, &answer.body["version"]),
        (StatusCode::OK, &Value::from(2)),
        "{:?}",
        answer.body
    );
    assert_eq!(
        versions(&service, AggregateType::Order, &order_id).await,
        vec![1, 2]
    );
}

#[tokio::test]
async fn a_transition_retried_after_its_answers_were_lost_answers_its_first_answer_not_409() {
    let layer = FaultLayer::new(FaultPlan::scripted());
    let (service, tables) = faulty_service(&layer).await;
    let order_id = create(&service).await;
    // Every attempt lands and loses its answer: the SDK gives up with a dispatch failure.
    layer.push_rule(
        Rule::new(FaultKind::LostAnswer)
            .operation("PutItem")
            .resource(&tables.events)
            .times(4),
    );
    let key = unique_id("approve");
    let approve = || {
        sample(
            "order-commands",
            "approve-order.json",
            &order_id,
            Some(&key),
        )
    };
    let seen = as_a_client(&service, &layer, approve).await;
    assert_eq!(layer.counts().total(), 4, "{}", layer.counts());
    let last = seen.last().unwrap();
    assert_eq!(
        (last.status, &last.body["version"]),
        (StatusCode::OK, &Value::from(2)),
        "{seen:?}"
    );
    assert_eq!(
        versions(&service, AggregateType::Order, &order_id).await,
        vec![1, 2]
    );
}

// ---- A cancel and a pickup forced to interleave, snapshots on. ----

/// Pauses the first write (`TransactWriteItems` or `PutItem`) of its client before it is sent —
/// after the command read both aggregates and decided — until the test lets it go.
#[derive(Debug)]
struct PauseFirstWrite {
    armed: AtomicBool,
    paused: SyncSender<()>,
    resume: Mutex<Receiver<()>>,
}

impl Intercept for PauseFirstWrite {
    fn name(&self) -> &'static str {
        "PauseFirstWrite"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let write = input.downcast_ref::<TransactWriteItemsInput>().is_some()
            || input.downcast_ref::<PutItemInput>().is_some();
        if write && self.armed.swap(false, Ordering::SeqCst) {
            self.paused.send(())?;
            // A sync hook: wait without stalling the tasks queued on this worker (the runtime
            // hands them to another thread meanwhile).
            tokio::task::block_in_place(|| {
                self.resume
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(30))
            })?;
        }
        Ok(())
    }
}

/// Which command is paused between its read and its append.
#[derive(Debug, Clone, Copy)]
enum Paused {
    Cancel,
    PickUp,
}

async fn run_paused(
    service: &CommandService,
    paused: Paused,
    order_id: &str,
) -> Result<u64, ftgo_aws::Error> {
    match paused {
        Paused::Cancel => service
            .order_action(order_id, cancel(), &context())
            .await
            .map(|o| o.version),
        Paused::PickUp => service
            .delivery_action(order_id, pick_up(), &context())
            .await
            .map(|o| o.version),
    }
}

fn cancel() -> OrderCommand {
    OrderCommand::Cancel {
        delivery_picked_up: false,
    }
}

fn pick_up() -> DeliveryCommand {
    DeliveryCommand::PickUp { order_status: None }
}

fn context() -> CommandContext {
    CommandContext {
        request_id: unique_id("request"),
        ..CommandContext::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_and_a_pickup_forced_to_interleave_never_both_succeed_with_snapshots_on() {
    let moto = Emulator::moto().await;
    let stack = moto.stack();
    let service_with = |client: aws_sdk_dynamodb::Client| {
        let store = EventStore::new(
            client,
            stack.table_name("EventsTable"),
            stack.table_name("SnapshotsTable"),
        );
        // A snapshot after every append: every load below starts from one.
        CommandService::new(store, RetryPolicy::default(), 1)
    };
    let plain = service_with(moto.dynamodb().await);
    for paused in [Paused::Cancel, Paused::PickUp] {
        let (paused_tx, paused_rx) = sync_channel(1);
        let (resume_tx, resume_rx) = sync_channel(1);
        let gate = PauseFirstWrite {
            armed: AtomicBool::new(true),
            paused: paused_tx,
            resume: Mutex::new(resume_rx),
        };
        let config = aws_sdk_dynamodb::config::Builder::from(&moto.sdk_config().await)
            .interceptor(gate)
            .build();
        let gated = service_with(aws_sdk_dynamodb::Client::from_conf(config));

        let created = plain
            .create_order(write_side_create(), &context())
            .await
            .expect("created");
        let order_id = created.aggregate_id;
        plain
            .order_action(&order_id, OrderCommand::Approve, &context())
            .await
            .expect("approved");
        let first = {
            let order_id = order_id.clone();
            tokio::spawn(async move { run_paused(&gated, paused, &order_id).await })
        };
        tokio::task::spawn_blocking(move || paused_rx.recv_timeout(Duration::from_secs(30)))
            .await
            .unwrap()
            .expect("the paused command read both aggregates and reached its append");
        // The other command reads and appends while the first waits between read and append.
        let other = match paused {
            Paused::Cancel => plain
                .delivery_action(&order_id, pick_up(), &context())
                .await
                .map(|o| o.version),
            Paused::PickUp => plain
                .order_action(&order_id, cancel(), &context())
                .await
                .map(|o| o.version),
        };
        resume_tx
            .send(())
            .expect("the paused command still waits for its append");
        let first = first.await.unwrap();
        assert!(
            other.is_ok(),
            "{paused:?}: the unpaused command wins: {other:?}"
        );
        assert!(
            matches!(
                first,
                Err(ftgo_aws::Error::Domain(DomainError::InvalidState(_)))
            ),
            "{paused:?}: the paused one reloads and is refused: {first:?}"
        );
        let order = plain.store().load::<Order>(&order_id).await.unwrap();
        let delivery = plain.store().load::<Delivery>(&order_id).await.unwrap();
        let cancelled = order.aggregate.status == Some(OrderStatus::Cancelled);
        let picked_up = delivery.aggregate.status == Some(DeliveryStatus::PickedUp);
        assert!(cancelled != picked_up, "{paused:?}: exactly one effect");
        assert!(order.snapshot_version > 0, "loads start from a snapshot");
    }
}

/// A create command for the race (the body of the `create-order` sample, as a command).
fn write_side_create() -> ftgo_domain::order::CreateOrder {
    let path = repository_root().join("events/bodies/create-order.json");
    let text = std::fs::read_to_string(path).expect("sample body");
    serde_json::from_str::<order_commands::CreateOrderRequest>(&text)
        .expect("create body")
        .into_command()
        .expect("valid")
}

#[tokio::test]
async fn a_key_just_behind_the_snapshot_is_still_found() {
    let moto = Emulator::moto().await;
    let env = moto.stack().function_env("order-commands");
    let mut config = Config::from_lookup(|name| env.get(name).cloned()).expect("environment");
    // A snapshot after every append: the keyed command's own append writes the snapshot that
    // the retry's load starts from.
    config.snapshot_interval = 1;
    let service = CommandService::from_config(&moto.sdk_config().await, &config).expect("service");
    let order_id = create(&service).await;
    let key = unique_id("approve");
    let approve = || {
        sample(
            "order-commands",
            "approve-order.json",
            &order_id,
            Some(&key),
        )
    };
    let first = send(&service, approve()).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let retry = send(&service, approve()).await;
    assert_eq!(retry, first);
    let loaded = service.store().load::<Order>(&order_id).await.unwrap();
    assert_eq!((loaded.version, loaded.snapshot_version), (2, 2));
}
