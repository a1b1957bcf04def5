//! The harness of the bridge tests against moto server (`bridge_moto`, `bridge_moto_cancelled`):
//! moto on a free port (through `infra/moto-server`, as the local stack runs it, or moto's own
//! server), small templates provisioned the way the local stack provisions `template.yaml`, a
//! bridge polling fast, and the invocations a scripted function saw.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_infra::bridge::{Bridge, BridgeOptions};
use ftgo_infra::invoke::Invoker;
use ftgo_infra::provision::{ProvisionOptions, provision};
use ftgo_infra::stack::sdk_config;
use ftgo_infra::template::{Stack, Template};
use serde_json::Value;

/// The head of every bridge test's template: the `Log` table (streamed, keys `pk` and `n`) and
/// the `Dlq` queue; a test appends its own resources (`Globals` would go before `Resources`).
pub const LOG_AND_DLQ: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Log:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-log"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: n, AttributeType: N}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: n, KeyType: RANGE}
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Dlq:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !Sub "${AWS::StackName}-dlq"}
"#;

/// moto server on a free port, killed when dropped.
pub struct Moto {
    child: Child,
    /// Its endpoint URL.
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto server as the local stack runs it: `infra/moto-server` (DynamoDB's isolation, and a
/// cancelled transaction rolled back in place). `None` (reported) when `.venv` is missing.
pub fn moto() -> Option<Moto> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if !crate::required::tools_present(&root, &[".venv/bin/python"], "the bridge's moto test") {
        return None;
    }
    start_moto(&root.join("infra/moto-server"))
}

/// moto's own server, without the launcher's patches.
pub fn plain_moto() -> Option<Moto> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let server = root.join(".venv/bin/moto_server");
    if !crate::required::tools_present(&root, &[".venv/bin/moto_server"], "the bridge's moto test")
    {
        return None;
    }
    start_moto(&server)
}

fn start_moto(server: &std::path::Path) -> Option<Moto> {
    // Present but failing to start is a failure everywhere, never a skip.
    let port = ftgo_infra::ports::free_port().expect("a free port for moto server");
    let child = Command::new(server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("moto server ({}) does not start: {e}", server.display()));
    let mut moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = moto.child.try_wait() {
            panic!(
                "moto server ({}) exited at start ({status})",
                server.display()
            );
        }
        assert!(Instant::now() < deadline, "moto server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(moto)
}

/// `yaml` as stack `name` on `moto`, provisioned (tables, queues) the way the local stack
/// provisions `template.yaml`; with the SDK configuration for `moto`.
pub async fn provisioned(moto: &Moto, yaml: &str, name: &str) -> (Template, SdkConfig) {
    let template = Template::parse(yaml, Stack::named(name).with_endpoint(&moto.endpoint))
        .expect("test template");
    let sdk = sdk_config(&moto.endpoint, "us-east-1").await;
    provision(&sdk, &template, &ProvisionOptions::everything())
        .await
        .expect("provision");
    (template, sdk)
}

/// Bridge options that poll fast (a test waits for milliseconds, not seconds).
pub fn fast_options() -> BridgeOptions {
    BridgeOptions {
        poll_interval: Duration::from_millis(50),
        discovery_interval: Duration::from_millis(200),
        retry_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..BridgeOptions::default()
    }
}

/// A running bridge, stopped by [`RunningBridge::stop`].
pub struct RunningBridge {
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<()>,
}

impl RunningBridge {
    /// Starts a bridge over `template`'s event sources, invoking `invoker`.
    pub fn start(
        sdk: &SdkConfig,
        template: &Template,
        invoker: Arc<dyn Invoker>,
        options: BridgeOptions,
    ) -> Self {
        let bridge = Bridge::new(sdk, template, invoker, options);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(bridge.run(
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ));
        Self { stop, running }
    }

    /// Stops the bridge and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.running.await.expect("bridge stops");
    }
}

/// Every invocation: (function, payload).
#[derive(Clone, Default)]
pub struct Calls(pub Arc<Mutex<Vec<(String, Value)>>>);

/// Record `n` of a stream record (0 when it has none).
pub fn record_n(record: &Value) -> u64 {
    record["dynamodb"]["NewImage"]["n"]["N"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Waits until `done`, at most `timeout` (then fails naming `what`).
pub async fn until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes item `n` (partition key `p`) to `table`.
pub async fn put_n(dynamodb: &aws_sdk_dynamodb::Client, table: &str, n: u64) {
    dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S("p".to_owned()))
        .item("n", AttributeValue::N(n.to_string()))
        .send()
        .await
        .expect("put");
}
