//! The whole local stack of `make run` (DESIGN §7): moto server as the AWS endpoint, the
//! template's resources provisioned on it, a `cargo lambda watch` for each function behind one
//! functions address, the local API gateway and the event-source bridge — started in that order, announced when everything
//! answers, and stopped (every process it started, and only those) on Ctrl-C or SIGTERM.
//!
//! Also the glue from the [`Template`] to the gateway's routes, the bridge's event sources and
//! the functions' environment, which the `ftgo` subcommands share.

mod front;
pub mod functions;
mod process;
#[cfg(test)]
mod tests;
mod wiring;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::invoke::{RoutedInvoker, RuntimeInvoker};
use crate::provision::{ProvisionOptions, provision};
use crate::template::Template;
use functions::{ServerSetup, Supervisor};

pub use ftgo_cli::local::{ANNOUNCEMENT, find_root, resolve_root, sdk_config};
use process::locate;
pub(crate) use process::{LOCAL_FEATURE, Managed, build_functions, process_tree, wait_http};
pub use process::{claim, shutdown_signal};
pub use wiring::{
    CARGO_LAMBDA_CONFIG, CARGO_LAMBDA_CONFIG_COMMAND, DEFAULT_AWS_ADDR, cargo_lambda_config,
    function_environment, gateway_routes, local_bridge, local_gateway,
};

/// Why the local stack could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A port the stack needs is taken.
    #[error("port {port} is in use (is another `make run` running?)")]
    PortInUse {
        /// The port.
        port: u16,
    },
    /// A port could not be bound for another reason.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A tool is missing.
    #[error("{tool} not found (looked at {looked}); run `make .venv` to install the local tools")]
    ToolMissing {
        /// The tool.
        tool: &'static str,
        /// Where it was looked for.
        looked: String,
    },
    /// A process could not be started.
    #[error("cannot start {what}: {source}")]
    Spawn {
        /// Which process.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A process the stack needs exited.
    #[error("{what} exited ({status}){hint}")]
    Exited {
        /// Which process.
        what: &'static str,
        /// Its exit status.
        status: String,
        /// Where to look.
        hint: String,
    },
    /// Something did not come up in time.
    #[error("{what} did not answer within {seconds}s{hint}")]
    NotReady {
        /// What.
        what: &'static str,
        /// How long we waited.
        seconds: u64,
        /// Where to look.
        hint: String,
    },
    /// Building the functions failed.
    #[error("building the functions failed ({0})")]
    Build(String),
    /// The template or provisioning failed.
    #[error(transparent)]
    Infra(#[from] crate::Error),
    /// An I/O error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
/// How long an invocation may take (the first one of a function may compile it).
const INVOKE_TIMEOUT: Duration = Duration::from_secs(600);

/// How to run the local stack: the flags of `ftgo run` (defaults of DESIGN §7).
#[derive(Clone, Debug, clap::Args)]
pub struct StackOptions {
    /// Address of the HTTP API.
    #[arg(long = "api", default_value = "127.0.0.1:3000")]
    pub api_addr: SocketAddr,
    /// Address of moto server (the AWS endpoint).
    #[arg(long = "aws", default_value = DEFAULT_AWS_ADDR)]
    pub aws_addr: SocketAddr,
    /// Address of `cargo lambda watch` (the functions).
    #[arg(long = "functions", default_value = "127.0.0.1:9000")]
    pub functions_addr: SocketAddr,
    /// Instances per function (`cargo lambda watch --concurrency`); above 1 so that concurrent
    /// requests race as on Lambda.
    #[arg(long, default_value_t = 8)]
    pub concurrency: u32,
    /// Don't build the functions first (the first request of each then compiles it).
    #[arg(long)]
    pub no_build: bool,
    /// Don't rebuild and restart functions when the code changes.
    #[arg(long)]
    pub no_reload: bool,
    /// moto server's executable (default: infra/moto-server, else .venv/bin/moto_server, else PATH).
    #[arg(long)]
    pub moto_server: Option<PathBuf>,
    /// cargo-lambda's executable (default: .venv/bin/cargo-lambda, else PATH).
    #[arg(long)]
    pub cargo_lambda: Option<PathBuf>,
    /// Write `cargo lambda watch`'s output to this file instead of the terminal.
    #[arg(long)]
    pub functions_log: Option<PathBuf>,
    /// Directory for the stack's logs (default: <root>/target/ftgo).
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// Seconds each part may take to come up (building the functions included).
    #[arg(long, default_value_t = 600)]
    pub startup_timeout: u64,
    /// Inject AWS's failures into every function's SDK calls (`ftgo_aws::faults`):
    /// `<seed>:<rate>[:<kind>,…][:slow=<ms>]`, e.g. `42:0.05`. Each injection is appended to
    /// `<log-dir>/faults.jsonl`, which `ftgo status` summarises per kind and operation.
    #[arg(long, value_name = "SEED:RATE", value_parser = fault_spec)]
    pub faults: Option<String>,
    /// Cut every event source's batching window to at most this many seconds (default: the
    /// template's windows, as Lambda applies them; the archiver's is 5 minutes). For tests
    /// that cannot wait that long.
    #[arg(long, value_name = "SECONDS")]
    pub max_batching_window: Option<u64>,
}

fn fault_spec(text: &str) -> Result<String, String> {
    text.parse::<ftgo_aws::faults::FaultPlan>()
        .map(|_| text.to_owned())
        .map_err(|error| error.to_string())
}

impl StackOptions {
    /// The AWS endpoint: moto server's URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.aws_addr)
    }

    fn functions_url(&self) -> String {
        format!("http://{}", self.functions_addr)
    }
}

/// The running local stack.
pub struct LocalStack {
    root: PathBuf,
    options: StackOptions,
    moto: Option<Managed>,
    supervisor: Option<tokio::task::JoinHandle<()>>,
    stop_tx: tokio::sync::watch::Sender<bool>,
    gateway: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The functions address ([`front`]).
    front: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    bridge: Option<tokio::task::JoinHandle<()>>,
    api_addr: SocketAddr,
    /// The file announcing the endpoint to `ftgo` commands ([`ANNOUNCEMENT`]), once up.
    announcement: Option<PathBuf>,
}

impl LocalStack {
    /// Starts everything for the workspace at `root` and `template` (resolved for the stack at
    /// [`StackOptions::endpoint`]), and returns when it all answers. On failure, whatever was
    /// started is stopped again.
    pub async fn start(
        root: PathBuf,
        template: Template,
        options: StackOptions,
    ) -> Result<Self, StackError> {
        let template = match options.max_batching_window {
            Some(seconds) => {
                tracing::warn!(
                    seconds,
                    "event sources' batching windows cut to at most {seconds} s (--max-batching-window)"
                );
                template.with_batching_windows_capped(Duration::from_secs(seconds))
            }
            None => template,
        };
        // Ports first: a clear message beats a half-started stack.
        let api_listener = claim(options.api_addr)?;
        drop(claim(options.aws_addr)?);
        let functions_listener = claim(options.functions_addr)?;
        let api_addr = api_listener.local_addr()?;

        // The repository's launcher (moto with DynamoDB's request isolation) when present.
        let launcher = root.join("infra").join("moto-server");
        let moto_server = match &options.moto_server {
            None if launcher.is_file() && root.join(".venv/bin/python").exists() => launcher,
            explicit => locate(explicit.as_deref(), &root, "moto_server")?,
        };
        let cargo_lambda = locate(options.cargo_lambda.as_deref(), &root, "cargo-lambda")?;
        let log_dir = options
            .log_dir
            .clone()
            .unwrap_or_else(|| ftgo_cli::local::log_dir(&root));
        std::fs::create_dir_all(&log_dir)?;
        let (stop_tx, _) = tokio::sync::watch::channel(false);
        let mut stack = LocalStack {
            root,
            options,
            moto: None,
            supervisor: None,
            stop_tx,
            gateway: None,
            front: None,
            bridge: None,
            api_addr,
            announcement: None,
        };
        match stack
            .bring_up(
                &template,
                [api_listener, functions_listener],
                &moto_server,
                &cargo_lambda,
                &log_dir,
            )
            .await
        {
            Ok(()) => {
                // For the `ftgo` commands run in this workspace without `AWS_ENDPOINT_URL`.
                let announcement = log_dir.join(ANNOUNCEMENT);
                match std::fs::write(&announcement, format!("{}\n", stack.options.endpoint())) {
                    Ok(()) => stack.announcement = Some(announcement),
                    Err(error) => tracing::warn!(%error, "the endpoint is not announced"),
                }
                Ok(stack)
            }
            Err(error) => {
                stack.stop().await;
                Err(error)
            }
        }
    }

    async fn bring_up(
        &mut self,
        template: &Template,
        [api_listener, functions_listener]: [StdTcpListener; 2],
        moto_server: &Path,
        cargo_lambda: &Path,
        log_dir: &Path,
    ) -> Result<(), StackError> {
        let (options, root) = (self.options.clone(), self.root.clone());
        let endpoint = options.endpoint();
        let timeout = Duration::from_secs(options.startup_timeout);

        // 1. moto server.
        let moto_log = log_dir.join(format!("moto-{}.log", options.aws_addr.port()));
        let _ = std::fs::remove_file(&moto_log);
        let moto_args = vec![
            "-H".to_owned(),
            options.aws_addr.ip().to_string(),
            "-p".to_owned(),
            options.aws_addr.port().to_string(),
        ];
        let moto = self.moto.insert(Managed::spawn(
            "moto server",
            moto_server,
            &moto_args,
            &root,
            &BTreeMap::new(),
            Some(&moto_log),
        )?);
        wait_http(
            "moto server",
            &format!("{endpoint}/moto-api/"),
            moto,
            timeout.min(Duration::from_secs(60)),
        )
        .await?;
        tracing::info!(%endpoint, "moto server is up");

        // 2. Tables, buckets, queues and secrets from the template.
        let sdk = sdk_config(&endpoint, &template.stack().region).await;
        let provisioned = provision(&sdk, template, &ProvisionOptions::everything()).await?;
        tracing::info!(
            tables = provisioned.tables.len(),
            buckets = provisioned.buckets.len(),
            queues = provisioned.queues.len(),
            secrets = provisioned.secrets.len(),
            "provisioned from the template"
        );

        // 3. The functions.
        let binaries: Vec<String> = template
            .functions()
            .iter()
            .map(|f| f.binary.clone())
            .collect();
        if !options.no_build {
            build_functions(&root, &binaries).await?;
        }
        let mut env = function_environment(template, &endpoint);
        let faults_log = log_dir.join(ftgo_cli::status::FAULTS_LOG);
        let _ = std::fs::remove_file(&faults_log);
        if let Some(spec) = &options.faults {
            env.insert(ftgo_aws::faults::FAULTS_ENV.to_owned(), spec.clone());
            let faults_log = std::path::absolute(&faults_log)?;
            env.insert(
                ftgo_aws::faults::FAULTS_LOG_ENV.to_owned(),
                faults_log.display().to_string(),
            );
            tracing::warn!(%spec, log = %faults_log.display(), "the functions run under injected AWS faults");
        }
        // Every function gets a server of its own (see `functions`), on a free port.
        let mut servers = Vec::new();
        for function in &binaries {
            let port = claim(SocketAddr::new(options.functions_addr.ip(), 0))?
                .local_addr()?
                .port();
            servers.push((
                function.clone(),
                SocketAddr::new(options.functions_addr.ip(), port),
            ));
        }
        let setup = ServerSetup {
            program: cargo_lambda.to_path_buf(),
            root,
            cwd: log_dir.join(format!("functions-{}", options.functions_addr.port())),
            concurrency: options.concurrency,
            env,
            log: options.functions_log.clone(),
            binaries: binaries.clone(),
            reload: !options.no_reload,
            startup_timeout: timeout,
        };
        let supervisor = Supervisor::start(setup, servers).await?;
        // An invocation meeting a restarting server waits for it, within the function's Timeout.
        let own: HashMap<String, RuntimeInvoker> = supervisor
            .served()
            .into_iter()
            .map(|served| {
                let patience = template
                    .functions()
                    .iter()
                    .find(|f| f.binary == served.function)
                    .map_or(Duration::ZERO, |f| {
                        Duration::from_secs(u64::from(f.timeout))
                    });
                let invoker =
                    RuntimeInvoker::new(format!("http://{}", served.addr), INVOKE_TIMEOUT)
                        .with_patience(patience)
                        .with_readiness(served.ready);
                (served.function, invoker)
            })
            .collect();
        let (timeouts_tx, timeouts_rx) = tokio::sync::mpsc::unbounded_channel();
        self.supervisor = Some(tokio::spawn(
            supervisor.run(timeouts_rx, self.stop_tx.subscribe()),
        ));
        functions_listener.set_nonblocking(true)?;
        let functions_listener = tokio::net::TcpListener::from_std(functions_listener)?;
        let front = front::router(own.clone());
        let mut stop = self.stop_tx.subscribe();
        self.front = Some(tokio::spawn(async move {
            axum::serve(functions_listener, front)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        }));
        let functions_url = options.functions_url();
        tracing::info!(url = %functions_url, functions = binaries.len(), "functions are served");

        // 4. Gateway and bridge, in this process.
        let invoker = Arc::new(RoutedInvoker::new(
            RuntimeInvoker::new(&functions_url, INVOKE_TIMEOUT),
            own,
            Some(timeouts_tx),
        ));
        api_listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(api_listener)?;
        let gateway = local_gateway(template, invoker.clone())?;
        let mut stop = self.stop_tx.subscribe();
        self.gateway = Some(tokio::spawn(gateway.serve(listener, async move {
            let _ = stop.wait_for(|s| *s).await;
        })));

        let bridge = local_bridge(
            &sdk,
            template,
            invoker,
            Some(log_dir.join(ftgo_cli::local::PROGRESS_FILE)),
        );
        let mut stop = self.stop_tx.subscribe();
        self.bridge = Some(tokio::spawn(bridge.run(
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
            Duration::from_secs(10),
        )));
        Ok(())
    }

    /// The line announcing the stack.
    pub fn banner(&self) -> String {
        format!(
            "FTGO is up: API http://{} · AWS endpoint {} · functions {}",
            self.api_addr,
            self.options.endpoint(),
            self.options.functions_url()
        )
    }

    /// Runs until `shutdown` completes or a process of the stack exits, then stops everything.
    /// An unexpected exit is an error.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), StackError> {
        tokio::pin!(shutdown);
        let outcome = loop {
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                () = tokio::time::sleep(Duration::from_millis(500)) => {
                    if let Some(error) = self.check() {
                        break Err(error);
                    }
                }
            }
        };
        self.stop().await;
        outcome
    }

    fn check(&mut self) -> Option<StackError> {
        if let Some(supervisor) = &self.supervisor
            && supervisor.is_finished()
        {
            return Some(StackError::Exited {
                what: "the functions' supervisor",
                status: "stopped".to_owned(),
                hint: String::new(),
            });
        }
        for managed in self.moto.as_mut().into_iter() {
            if let Some(status) = managed.exited() {
                return Some(StackError::Exited {
                    what: managed.what,
                    status,
                    hint: managed.hint(),
                });
            }
        }
        None
    }

    /// Stops the gateway and the bridge, then every process the stack started.
    pub async fn stop(&mut self) {
        if let Some(announcement) = self.announcement.take() {
            let _ = std::fs::remove_file(announcement);
        }
        let _ = self.stop_tx.send(true);
        if let Some(gateway) = self.gateway.take()
            && tokio::time::timeout(Duration::from_secs(5), gateway)
                .await
                .is_err()
        {
            tracing::warn!("gateway did not stop in time");
        }
        if let Some(bridge) = self.bridge.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), bridge).await;
        }
        if let Some(front) = self.front.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), front).await;
        }
        if let Some(supervisor) = self.supervisor.take() {
            // It stops every server it runs when the stop signal is set.
            let _ = tokio::time::timeout(Duration::from_secs(30), supervisor).await;
        }
        if let Some(mut moto) = self.moto.take() {
            moto.stop(Duration::from_secs(10)).await;
        }
    }
}
