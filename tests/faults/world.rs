//! One fresh stack on moto with everything wired as the Lambdas wire it, but every function's
//! SDK calls behind a fault layer: the command service (events, snapshots), and
//! the stream consumers (projector, archiver, archive-backfiller) invoked in-process by the
//! local stack's event-source bridge, which itself reads the stream and queues fault-free, as
//! Lambda's poller does.

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::SqsEvent;
use bytes::Bytes;
use ftgo_aws::commands::CommandService;
use ftgo_aws::config::Config;
use ftgo_aws::faults::{FaultLayer, FaultPlan};
use ftgo_aws::lambda::archive_backfiller::Backfiller;
use ftgo_aws::lambda::event_archiver::Archiver;
use ftgo_aws::lambda::{archive_backfiller, event_archiver, order_history_projector};
use ftgo_aws::lambda_runtime::{Context, LambdaEvent};
use ftgo_aws::projector::Projector;
use ftgo_infra::bridge::{Bridge, BridgeOptions};
use ftgo_infra::invoke::{Invocation, InvokeError, Invoker};
use ftgo_tests::{Emulator, TestStack};
use futures::future::BoxFuture;

/// How long one SDK attempt may take before the SDK gives up on it and retries: only a guard
/// against a hung connection (moto on a loaded machine can take a second or more; shorter
/// timeouts turn load into failures that are not the ones injected).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a slow answer is held back: past the functions' deadline
/// ([`super::clients::DEADLINE`]), so that the invocation is cut with its write landed.
pub const SLOW_DELAY: Duration = Duration::from_secs(4);

/// The stack, its configuration and the layers in front of its functions' SDK calls.
pub struct World {
    /// The fresh stack.
    pub stack: TestStack,
    /// The functions' configuration (the template's environment of every function).
    pub config: Config,
    /// The fault-free SDK configuration (set-up and checks).
    pub clean: aws_config::SdkConfig,
    /// The layer in front of the command functions.
    pub commands_layer: FaultLayer,
    /// The layer in front of the stream consumers.
    pub consumers_layer: FaultLayer,
    /// The command service, as the command Lambdas build it, behind `commands_layer`.
    pub commands: CommandService,
    /// The suite's own moto server (the other suites of the test binary share one): their load
    /// never slows the answers the faults are timed against. Declared last: stopped last.
    _moto: Emulator,
}

impl World {
    /// A fresh stack with layers injecting `plan` (each layer its own copy, seeded apart).
    pub async fn new(commands_plan: FaultPlan, consumers_plan: FaultPlan) -> Self {
        let moto = Emulator::start_moto().await.expect("moto server");
        let stack = moto.fresh_stack().await.expect("fresh stack");
        let mut env = stack.function_env("order-commands");
        for function in [
            "order-history-projector",
            "event-archiver",
            "archive-backfiller",
        ] {
            for (key, value) in stack.function_env(function) {
                env.entry(key).or_insert(value);
            }
        }
        let config = Config::from_lookup(|name| env.get(name).cloned()).expect("configuration");
        let clean = moto.sdk_config().await;
        let commands_layer = FaultLayer::new(commands_plan.slow_delay(SLOW_DELAY));
        let consumers_layer = FaultLayer::new(consumers_plan.slow_delay(SLOW_DELAY));
        let commands = CommandService::from_config(&faulted(&clean, &commands_layer), &config)
            .expect("command service");
        Self {
            stack,
            config,
            clean,
            commands_layer,
            consumers_layer,
            commands,
            _moto: moto,
        }
    }

    /// Starts the bridge: the stream consumers of the template, invoked in-process behind the
    /// consumers' layer, with short back-offs.
    pub fn start_consumers(&self) -> RunningBridge {
        let sdk = faulted(&self.clean, &self.consumers_layer);
        let invoker = InProcess {
            projector: Projector::from_config(&sdk, &self.config).expect("projector"),
            archiver: ArchiverThread::start(
                self.clean.clone(),
                self.consumers_layer.clone(),
                self.config.clone(),
            ),
            backfill: Backfiller::from_config(&sdk, &self.config).expect("backfill"),
        };
        let options = BridgeOptions {
            poll_interval: Duration::from_millis(50),
            discovery_interval: Duration::from_millis(200),
            retry_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            ..BridgeOptions::default()
        };
        // The archiver's window (300 s in the template, for fewer, larger objects) cut to what
        // a test can wait for, as `ftgo run --max-batching-window` does for the e2e tests.
        let template = self
            .stack
            .template()
            .clone()
            .with_batching_windows_capped(Duration::from_secs(2));
        let bridge = Bridge::new(&self.clean, &template, Arc::new(invoker), options);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(bridge.run(
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(30),
        ));
        RunningBridge { stop, running }
    }

    /// Stops injecting, in front of every function.
    pub fn stop_faults(&self) {
        self.commands_layer.stop();
        self.consumers_layer.stop();
    }
}

/// `clean` with the functions' retry settings (4 attempts, as `load_sdk_config`; the first
/// back-off scaled down 5× from the SDK's 1 s, as the functions' deadline is), behind `layer`.
pub fn faulted(clean: &aws_config::SdkConfig, layer: &FaultLayer) -> aws_config::SdkConfig {
    let sdk = clean
        .to_builder()
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(4)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        )
        .build();
    layer.apply(&sdk)
}

/// The bridge, running until stopped.
pub struct RunningBridge {
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<()>,
}

impl RunningBridge {
    /// Stops polling and waits for in-flight batches.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.running.await.expect("the bridge stops");
    }
}

/// The stream and queue consumers of the template, called in this process.
struct InProcess {
    projector: Projector,
    archiver: ArchiverThread,
    backfill: Backfiller,
}

type ArchiveJob = (
    Vec<u8>,
    tokio::sync::oneshot::Sender<Result<Vec<u8>, String>>,
);

/// The archiver on a thread of its own, with its own runtime and clients: its handler's future
/// is not provably `Send` (a higher-ranked closure inside it), which the bridge's invoker needs;
/// Lambda's runtime does not ask for it.
struct ArchiverThread {
    jobs: tokio::sync::mpsc::UnboundedSender<ArchiveJob>,
}

impl ArchiverThread {
    fn start(clean: aws_config::SdkConfig, layer: FaultLayer, config: Config) -> Self {
        let (jobs, mut incoming) = tokio::sync::mpsc::unbounded_channel::<ArchiveJob>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("archiver runtime");
            runtime.block_on(async move {
                let archiver =
                    Archiver::from_config(&faulted(&clean, &layer), &config).expect("archiver");
                while let Some((payload, reply)) = incoming.recv().await {
                    let answer = async {
                        let event: Event =
                            serde_json::from_slice(&payload).map_err(|e| e.to_string())?;
                        let answer = event_archiver::handle(
                            &archiver,
                            LambdaEvent::new(event, Context::default()),
                        )
                        .await
                        .map_err(|e| e.to_string())?;
                        serde_json::to_vec(&answer).map_err(|e| e.to_string())
                    }
                    .await;
                    let _ = reply.send(answer);
                }
            });
        });
        Self { jobs }
    }

    async fn call(&self, payload: &[u8]) -> Result<Vec<u8>, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send((payload.to_vec(), reply))
            .map_err(|_| "the archiver thread stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the archiver thread stopped".to_owned())?
    }
}

impl InProcess {
    async fn call(&self, function: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
        let context = Context::default();
        let json = |e: serde_json::Error| e.to_string();
        match function {
            "order-history-projector" => {
                let event: Event = serde_json::from_slice(payload).map_err(json)?;
                let answer = order_history_projector::handle(
                    &self.projector,
                    LambdaEvent::new(event, context),
                )
                .await
                .map_err(|e| e.to_string())?;
                serde_json::to_vec(&answer).map_err(json)
            }
            "event-archiver" => self.archiver.call(payload).await,
            "archive-backfiller" => {
                let event: SqsEvent = serde_json::from_slice(payload).map_err(json)?;
                let answer =
                    archive_backfiller::handle(&self.backfill, LambdaEvent::new(event, context))
                        .await
                        .map_err(|e| e.to_string())?;
                serde_json::to_vec(&answer).map_err(json)
            }
            other => Err(format!("{other} is not run by the fault suite")),
        }
    }
}

impl Invoker for InProcess {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<Invocation, InvokeError>> {
        Box::pin(async move {
            Ok(match self.call(function, &payload).await {
                Ok(answer) => Invocation::ok(answer),
                Err(message) => Invocation::failed(
                    serde_json::json!({"errorType": "Error", "errorMessage": message}).to_string(),
                ),
            })
        })
    }
}
