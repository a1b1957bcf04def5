//! The whole local stack of `make run` (DESIGN §7): moto server as the AWS endpoint, the
//! template's resources provisioned on it, `cargo lambda watch` serving every function, the local
//! API gateway and the event-source bridge — started in that order, announced when everything
//! answers, and stopped (every process it started, and only those) on Ctrl-C or SIGTERM.
//!
//! Also the glue from the [`Template`] to the gateway's routes, the bridge's event sources and
//! the functions' environment, which the `ftgo` subcommands share.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::bridge::shard::StreamPolicy;
use crate::bridge::{Bridge, BridgeOptions, QueueSource, StreamSource};
use crate::functions::{ServerSetup, Supervisor};
use crate::gateway::{ApiIdentity, Gateway, GatewayOptions, Route, RouteTable};
use crate::invoke::{RoutedInvoker, RuntimeInvoker};
use crate::provision::{ProvisionOptions, Provisioned, provision};
use crate::template::{self, Stack, Template};

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

/// The AWS SDK configuration for an emulator at `endpoint`: region `us-east-1` (or `region`),
/// static `test` credentials.
pub async fn sdk_config(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "ftgo-local",
        ))
        .load()
        .await
}

/// The gateway's routes: every `HttpApi` route of the template, served by its function's binary.
pub fn gateway_routes(template: &Template) -> RouteTable {
    RouteTable::new(
        template
            .routes()
            .iter()
            .map(|r| Route::new(&r.method, r.path.clone(), r.binary.clone()))
            .collect(),
    )
}

/// The bridge's event sources: every enabled `DynamoDB` and `SQS` event of the template.
pub fn bridge_sources(template: &Template) -> (Vec<StreamSource>, Vec<QueueSource>) {
    // Each function's `Timeout` (Globals applied; SAM's default 3 s when nothing sets it).
    let timeout_of = |binary: &str| {
        let seconds = template
            .functions()
            .iter()
            .find(|f| f.binary == binary)
            .map_or(3, |f| f.timeout);
        Duration::from_secs(u64::from(seconds.max(1)))
    };
    let queue_target = |logical_id: &str| {
        template
            .queue(logical_id)
            .map(|q| q.url.clone())
            .unwrap_or_else(|| logical_id.to_owned())
    };
    let streams = template
        .stream_sources()
        .iter()
        .filter(|s| s.enabled)
        .map(|s| StreamSource {
            function: s.binary.clone(),
            table: template
                .table(&s.table)
                .map(|t| t.name.clone())
                .unwrap_or_else(|| s.table.clone()),
            starting_position: match s.starting_position {
                template::StartingPosition::TrimHorizon => {
                    crate::bridge::StartingPosition::TrimHorizon
                }
                template::StartingPosition::Latest => crate::bridge::StartingPosition::Latest,
            },
            policy: StreamPolicy {
                batch_size: usize::try_from(s.batch_size).unwrap_or(100),
                batching_window: Duration::from_secs(u64::from(
                    s.maximum_batching_window_in_seconds,
                )),
                report_batch_item_failures: s.reports_batch_item_failures(),
                bisect_on_error: s.bisect_batch_on_function_error,
                max_retry_attempts: s.maximum_retry_attempts,
                max_record_age: s
                    .maximum_record_age_in_seconds
                    .map(|secs| Duration::from_secs(u64::from(secs))),
            },
            on_failure: s.on_failure.as_deref().map(queue_target),
            timeout: timeout_of(&s.binary),
        })
        .collect();
    let queues = template
        .queue_sources()
        .iter()
        .filter(|q| q.enabled)
        .map(|q| QueueSource {
            function: q.binary.clone(),
            queue: queue_target(&q.queue),
            batch_size: usize::try_from(q.batch_size).unwrap_or(10),
            batching_window: Duration::from_secs(u64::from(q.maximum_batching_window_in_seconds)),
            report_batch_item_failures: q.reports_batch_item_failures(),
            timeout: timeout_of(&q.binary),
        })
        .collect();
    (streams, queues)
}

/// The environment `cargo lambda watch` gives every function: each variable any function of the
/// template sets (resolved for the stack, so queue URLs point at the emulator), plus the SDK's
/// endpoint, region and test credentials. A variable two functions set differently keeps the
/// first value, with a warning (one `cargo lambda watch` serves them all).
pub fn function_environment(template: &Template, endpoint: &str) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for function in template.functions() {
        for (key, value) in &function.environment {
            match env.get(key) {
                Some(existing) if existing != value => tracing::warn!(
                    %key, function = %function.binary, "functions set different values; the local stack uses the first"
                ),
                Some(_) => {}
                None => {
                    env.insert(key.clone(), value.clone());
                }
            }
        }
    }
    let region = template.stack().region.clone();
    for (key, value) in [
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", region.clone()),
        ("AWS_DEFAULT_REGION", region),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
    ] {
        env.insert(key.to_owned(), value);
    }
    env
}

/// How to run the local stack.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// The workspace root (where `cargo lambda watch` runs).
    pub root: PathBuf,
    /// The template.
    pub template: PathBuf,
    /// The stack name resources are named for.
    pub stack_name: String,
    /// The HTTP API.
    pub api_addr: SocketAddr,
    /// moto server.
    pub aws_addr: SocketAddr,
    /// `cargo lambda watch`.
    pub functions_addr: SocketAddr,
    /// `--concurrency` of `cargo lambda watch`: instances per function.
    pub concurrency: u32,
    /// Build the functions before starting them (so the first request does not compile).
    pub build: bool,
    /// Let `cargo lambda watch` rebuild and restart functions when the code changes.
    pub reload: bool,
    /// moto server's executable (default: the repository's `infra/moto-server` launcher, else
    /// `.venv/bin/moto_server`, else `PATH`).
    pub moto_server: Option<PathBuf>,
    /// cargo-lambda's executable (default: `.venv/bin/cargo-lambda`, else `PATH`).
    pub cargo_lambda: Option<PathBuf>,
    /// Where `cargo lambda watch` writes its output (default: this process's output).
    pub functions_log: Option<PathBuf>,
    /// Directory of the stack's own logs (moto's); default `<root>/target/ftgo`.
    pub log_dir: Option<PathBuf>,
    /// How long each part may take to answer.
    pub startup_timeout: Duration,
    /// How long an invocation may take (the first one of a function may compile it).
    pub invoke_timeout: Duration,
}

impl StackOptions {
    /// The defaults of DESIGN §7 for the workspace at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            template: root.join("template.yaml"),
            root,
            stack_name: template::LOCAL_STACK_NAME.to_owned(),
            api_addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            aws_addr: SocketAddr::from(([127, 0, 0, 1], 4566)),
            functions_addr: SocketAddr::from(([127, 0, 0, 1], 9000)),
            concurrency: 8,
            build: true,
            reload: true,
            moto_server: None,
            cargo_lambda: None,
            functions_log: None,
            log_dir: None,
            startup_timeout: Duration::from_secs(600),
            invoke_timeout: Duration::from_secs(600),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.aws_addr)
    }

    fn functions_url(&self) -> String {
        format!("http://{}", self.functions_addr)
    }
}

/// The workspace root: the nearest ancestor of `start` holding `template.yaml` and `Cargo.toml`.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join("template.yaml").is_file() && dir.join("Cargo.toml").is_file())
        .map(Path::to_path_buf)
}

fn locate(explicit: Option<&Path>, root: &Path, name: &'static str) -> Result<PathBuf, StackError> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(StackError::ToolMissing {
                tool: name,
                looked: path.display().to_string(),
            })
        };
    }
    let venv = root.join(".venv").join("bin").join(name);
    if venv.is_file() {
        return Ok(venv);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(StackError::ToolMissing {
        tool: name,
        looked: format!("{} and PATH", venv.display()),
    })
}

/// Binds `addr` to prove it free (and keep it, for the API).
fn claim(addr: SocketAddr) -> Result<StdTcpListener, StackError> {
    StdTcpListener::bind(addr).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            StackError::PortInUse { port: addr.port() }
        } else {
            StackError::Bind { addr, source }
        }
    })
}

/// A process the stack started, in a process group of its own (so a terminal's Ctrl-C reaches
/// the stack, which stops its processes in order), under a guard shell that stops the group when
/// this process dies without stopping it (its standard input, a pipe from us, closes).
pub(crate) struct Managed {
    what: &'static str,
    child: Child,
    pgid: Option<Pid>,
    log: Option<PathBuf>,
}

/// The guard: runs the command in the background with the guard's original standard input
/// moved to fd 3, stops the whole process group when fd 3 reaches end of input, and exits with
/// the command's status.
const GUARD: &str = r#"
exec 3<&0
"$@" </dev/null 3<&- &
child=$!
( while read -r _ <&3; do :; done; kill -TERM -$$ ) </dev/null >/dev/null 2>&1 &
watcher=$!
exec 3<&-
wait "$child"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

impl Managed {
    pub(crate) fn spawn(
        what: &'static str,
        program: &Path,
        args: &[String],
        dir: &Path,
        env: &BTreeMap<String, String>,
        log: Option<&Path>,
    ) -> Result<Self, StackError> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(GUARD)
            .arg(format!("ftgo-{what}"))
            .arg(program)
            .args(args)
            .current_dir(dir)
            .envs(env)
            .stdin(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        match log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                command.stdout(file.try_clone()?).stderr(file);
            }
            None => {
                command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
            }
        }
        let child = command
            .spawn()
            .map_err(|source| StackError::Spawn { what, source })?;
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        tracing::debug!(what, pid = ?pgid, program = %program.display(), "started");
        Ok(Self {
            what,
            child,
            pgid,
            log: log.map(Path::to_path_buf),
        })
    }

    fn hint(&self) -> String {
        match &self.log {
            Some(log) => format!("; see {}", log.display()),
            None => String::new(),
        }
    }

    /// The process group.
    pub(crate) fn pgid(&self) -> Option<i32> {
        self.pgid.map(Pid::as_raw)
    }

    /// The exit status, if it has exited.
    pub(crate) fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// Stops the process group: SIGTERM, then SIGKILL after `grace`; also stops any descendant
    /// that left the group (e.g. function instances `cargo lambda watch` runs in groups of
    /// their own).
    pub(crate) async fn stop(&mut self, grace: Duration) {
        let Some(pgid) = self.pgid else {
            return;
        };
        let descendants = process_tree::descendants(pgid.as_raw());
        if self.exited().is_none() {
            let _ = killpg(pgid, Signal::SIGTERM);
            if tokio::time::timeout(grace, self.child.wait())
                .await
                .is_err()
            {
                tracing::warn!(what = self.what, "did not stop in time; killing it");
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = self.child.wait().await;
            }
        }
        // Stray descendants in other groups: ask, then insist.
        let strays: Vec<_> = descendants
            .into_iter()
            .filter(process_tree::Proc::alive)
            .collect();
        if !strays.is_empty() {
            for p in &strays {
                p.signal(Signal::SIGTERM);
            }
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline && strays.iter().any(process_tree::Proc::alive) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for p in strays.iter().filter(|p| p.alive()) {
                p.signal(Signal::SIGKILL);
            }
        }
        // The group itself, in case a member outlived the guard.
        let _ = killpg(pgid, Signal::SIGKILL);
        tracing::debug!(what = self.what, "stopped");
    }
}

/// The processes below a pid, read from `/proc` (Linux); nothing elsewhere.
pub(crate) mod process_tree {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    /// A process, identified by pid and start time (so a reused pid is never signalled).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub(crate) struct Proc {
        pid: i32,
        start: u64,
    }

    impl Proc {
        /// The pid.
        pub(crate) fn pid(&self) -> i32 {
            self.pid
        }

        /// The file name of its executable, while it runs.
        pub(crate) fn exe_name(&self) -> Option<String> {
            let exe = std::fs::read_link(format!("/proc/{}/exe", self.pid)).ok()?;
            let name = exe.file_name()?.to_str()?;
            // A replaced executable reads "name (deleted)".
            Some(name.trim_end_matches(" (deleted)").to_owned())
        }

        /// Still the same process, still running.
        pub(crate) fn alive(&self) -> bool {
            stat(self.pid).is_some_and(|(_, start, state)| start == self.start && state != 'Z')
        }

        /// Sends `signal` if it is still the same process.
        pub(crate) fn signal(&self, signal: Signal) {
            if self.alive() {
                let _ = kill(Pid::from_raw(self.pid), signal);
            }
        }
    }

    /// (parent pid, start time, state) of `pid`.
    fn stat(pid: i32) -> Option<(i32, u64, char)> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may hold spaces: parse after the last ')'.
        let rest = &text[text.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let state = fields.first()?.chars().next()?;
        let ppid = fields.get(1)?.parse().ok()?;
        let start = fields.get(19)?.parse().ok()?;
        Some((ppid, start, state))
    }

    /// Every descendant of `root` (not `root` itself).
    pub(crate) fn descendants(root: i32) -> Vec<Proc> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let all: Vec<(i32, i32, u64)> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(|pid| stat(pid).map(|(ppid, start, _)| (pid, ppid, start)))
            .collect();
        let mut out = Vec::new();
        let mut frontier = vec![root];
        while let Some(parent) = frontier.pop() {
            for (pid, ppid, start) in &all {
                if *ppid == parent {
                    out.push(Proc {
                        pid: *pid,
                        start: *start,
                    });
                    frontier.push(*pid);
                }
            }
        }
        out
    }
}

/// Waits until `addr` accepts TCP connections and answers HTTP, or `managed` exits.
pub(crate) async fn wait_http(
    what: &'static str,
    url: &str,
    managed: &mut Managed,
    timeout: Duration,
) -> Result<(), StackError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = managed.exited() {
            return Err(StackError::Exited {
                what,
                status,
                hint: managed.hint(),
            });
        }
        if client.get(url).send().await.is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StackError::NotReady {
                what,
                seconds: timeout.as_secs(),
                hint: managed.hint(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The running local stack.
pub struct LocalStack {
    options: StackOptions,
    moto: Option<Managed>,
    supervisor: Option<tokio::task::JoinHandle<()>>,
    stop_tx: tokio::sync::watch::Sender<bool>,
    gateway: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    bridge: Option<tokio::task::JoinHandle<()>>,
    provisioned: Provisioned,
    api_addr: SocketAddr,
}

impl LocalStack {
    /// Starts everything and returns when it all answers. On failure, whatever was started is
    /// stopped again.
    pub async fn start(options: StackOptions) -> Result<Self, StackError> {
        // Ports first: a clear message beats a half-started stack.
        let api_listener = claim(options.api_addr)?;
        drop(claim(options.aws_addr)?);
        drop(claim(options.functions_addr)?);
        let api_addr = api_listener.local_addr()?;

        // The repository's launcher (moto with DynamoDB's request isolation) when present.
        let launcher = options.root.join("infra").join("moto-server");
        let moto_server = match &options.moto_server {
            None if launcher.is_file() && options.root.join(".venv/bin/python").exists() => {
                launcher
            }
            explicit => locate(explicit.as_deref(), &options.root, "moto_server")?,
        };
        let cargo_lambda = locate(
            options.cargo_lambda.as_deref(),
            &options.root,
            "cargo-lambda",
        )?;
        let endpoint = options.endpoint();
        let template = Template::load(
            &options.template,
            Stack::named(&options.stack_name).with_endpoint(&endpoint),
        )?;

        let log_dir = options
            .log_dir
            .clone()
            .unwrap_or_else(|| options.root.join("target").join("ftgo"));
        std::fs::create_dir_all(&log_dir)?;
        let (stop_tx, _) = tokio::sync::watch::channel(false);
        let mut stack = LocalStack {
            options: options.clone(),
            moto: None,
            supervisor: None,
            stop_tx,
            gateway: None,
            bridge: None,
            provisioned: Provisioned::default(),
            api_addr,
        };
        match stack
            .bring_up(
                &template,
                api_listener,
                &moto_server,
                &cargo_lambda,
                &log_dir,
            )
            .await
        {
            Ok(()) => Ok(stack),
            Err(error) => {
                stack.stop().await;
                Err(error)
            }
        }
    }

    async fn bring_up(
        &mut self,
        template: &Template,
        api_listener: StdTcpListener,
        moto_server: &Path,
        cargo_lambda: &Path,
        log_dir: &Path,
    ) -> Result<(), StackError> {
        let options = self.options.clone();
        let endpoint = options.endpoint();
        let timeout = options.startup_timeout;

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
            &options.root,
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
        self.provisioned = provision(&sdk, template, &ProvisionOptions::everything()).await?;
        tracing::info!(
            tables = self.provisioned.tables.len(),
            buckets = self.provisioned.buckets.len(),
            queues = self.provisioned.queues.len(),
            secrets = self.provisioned.secrets.len(),
            "provisioned from the template"
        );

        // 3. The functions.
        let binaries: Vec<String> = template
            .functions()
            .iter()
            .map(|f| f.binary.clone())
            .collect();
        if options.build {
            build_functions(&options.root, &binaries).await?;
        }
        let env = function_environment(template, &endpoint);
        let (streams, queues) = bridge_sources(template);
        // Each function the bridge invokes gets a server of its own (see `functions`).
        let mut dedicated = Vec::new();
        for function in streams
            .iter()
            .map(|s| s.function.clone())
            .chain(queues.iter().map(|q| q.function.clone()))
        {
            if dedicated.iter().any(|(f, _)| *f == function) {
                continue;
            }
            let port = claim(SocketAddr::new(options.functions_addr.ip(), 0))?
                .local_addr()?
                .port();
            dedicated.push((function, SocketAddr::new(options.functions_addr.ip(), port)));
        }
        let setup = ServerSetup {
            program: cargo_lambda.to_path_buf(),
            root: options.root.clone(),
            cwd: log_dir.join(format!("functions-{}", options.functions_addr.port())),
            concurrency: options.concurrency,
            env,
            log: options.functions_log.clone(),
            binaries: binaries.clone(),
            reload: options.reload,
            startup_timeout: timeout,
        };
        let supervisor = Supervisor::start(setup, options.functions_addr, dedicated).await?;
        let functions_url = options.functions_url();
        tracing::info!(url = %functions_url, functions = binaries.len(), "functions are served");
        let own = supervisor
            .dedicated_addrs()
            .into_iter()
            .map(|(function, addr)| {
                (
                    function,
                    RuntimeInvoker::new(format!("http://{addr}"), options.invoke_timeout),
                )
            })
            .collect();
        let (timeouts_tx, timeouts_rx) = tokio::sync::mpsc::unbounded_channel();
        self.supervisor = Some(tokio::spawn(
            supervisor.run(timeouts_rx, self.stop_tx.subscribe()),
        ));

        // 4. Gateway and bridge, in this process.
        let invoker = Arc::new(RoutedInvoker::new(
            RuntimeInvoker::new(&functions_url, options.invoke_timeout),
            own,
            Some(timeouts_tx),
        ));
        api_listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(api_listener)?;
        let gateway = Gateway::new(
            gateway_routes(template),
            invoker.clone(),
            GatewayOptions {
                identity: ApiIdentity {
                    account_id: template.stack().account_id.clone(),
                    ..ApiIdentity::default()
                },
                ..GatewayOptions::default()
            },
        );
        let mut stop = self.stop_tx.subscribe();
        self.gateway = Some(tokio::spawn(gateway.serve(listener, async move {
            let _ = stop.wait_for(|s| *s).await;
        })));

        let bridge = Bridge::new(
            &sdk,
            invoker,
            BridgeOptions {
                region: template.stack().region.clone(),
                account_id: template.stack().account_id.clone(),
                progress_file: Some(log_dir.join("bridge-progress.json")),
                ..BridgeOptions::default()
            },
            streams,
            queues,
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

    /// The API's address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// What was provisioned.
    pub fn provisioned(&self) -> &Provisioned {
        &self.provisioned
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
        if let Some(supervisor) = self.supervisor.take() {
            // It stops every server it runs when the stop signal is set.
            let _ = tokio::time::timeout(Duration::from_secs(30), supervisor).await;
        }
        if let Some(mut moto) = self.moto.take() {
            moto.stop(Duration::from_secs(10)).await;
        }
    }
}

/// Builds the function binaries as `cargo lambda watch` will run them (`cargo run --bin`), so
/// the first request does not wait for a compile.
pub(crate) async fn build_functions(root: &Path, binaries: &[String]) -> Result<(), StackError> {
    if binaries.is_empty() {
        return Ok(());
    }
    tracing::info!(functions = binaries.len(), "building the functions");
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.arg("build").current_dir(root).kill_on_drop(true);
    for binary in binaries {
        command.arg("--bin").arg(binary);
    }
    let status = command
        .status()
        .await
        .map_err(|e| StackError::Build(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(StackError::Build(status.to_string()))
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM, and — when `stdin_eof` — when standard input
/// reaches end of file (so a supervising process that dies takes the stack with it).
pub async fn shutdown_signal(stdin_eof: bool) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let stdin_closed = async {
        if !stdin_eof {
            return std::future::pending::<()>().await;
        }
        // Blocking read on a thread: stdin is not reliably non-blocking.
        let _ = tokio::task::spawn_blocking(|| {
            use std::io::Read;
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin();
            loop {
                match stdin.read(&mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: stopping"),
        () = terminate => tracing::info!("SIGTERM: stopping"),
        () = stdin_closed => tracing::info!("standard input closed: stopping"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Template {
        Template::load(
            template::default_template_path(),
            Stack::local().with_endpoint("http://127.0.0.1:4566"),
        )
        .expect("the repository's template loads")
    }

    #[test]
    fn every_template_route_is_served_by_its_functions_binary() {
        let t = template();
        let routes = gateway_routes(&t);
        assert_eq!(routes.routes().len(), t.routes().len());
        for r in t.routes() {
            let path = r.path.replace('{', "x").replace('}', "");
            let method = http::Method::from_bytes(r.method.as_bytes()).expect("method");
            let found = routes.find(&method, &path).expect("route found");
            assert_eq!(found.route.function, r.binary);
        }
    }

    #[test]
    fn every_event_source_is_bridged_with_its_settings() {
        let t = template();
        let (streams, queues) = bridge_sources(&t);
        assert_eq!(
            streams.len(),
            t.stream_sources().iter().filter(|s| s.enabled).count()
        );
        assert_eq!(
            queues.len(),
            t.queue_sources().iter().filter(|q| q.enabled).count()
        );
        for (s, declared) in streams.iter().zip(t.stream_sources()) {
            assert_eq!(s.function, declared.binary);
            let function = t
                .functions()
                .iter()
                .find(|f| f.binary == declared.binary)
                .expect("the source's function");
            assert_eq!(s.timeout, Duration::from_secs(u64::from(function.timeout)));
            let table = t.table(&declared.table).expect("table");
            assert_eq!(s.table, table.name);
            assert_eq!(s.policy.batch_size, declared.batch_size as usize);
            assert_eq!(s.policy.max_retry_attempts, declared.maximum_retry_attempts);
            assert_eq!(
                s.policy.bisect_on_error,
                declared.bisect_batch_on_function_error
            );
            assert_eq!(
                s.policy.report_batch_item_failures,
                declared.reports_batch_item_failures()
            );
            if let Some(dest) = &declared.on_failure {
                let queue = t.queue(dest).expect("destination queue");
                assert_eq!(s.on_failure.as_deref(), Some(queue.url.as_str()));
                assert!(queue.url.starts_with("http://127.0.0.1:4566/"));
            }
        }
    }

    #[test]
    fn functions_get_the_template_environment_and_the_emulator() {
        let t = template();
        let env = function_environment(&t, "http://127.0.0.1:4566");
        for f in t.functions() {
            for key in f.environment.keys() {
                assert!(env.contains_key(key), "{key}");
            }
        }
        assert_eq!(env["AWS_ENDPOINT_URL"], "http://127.0.0.1:4566");
        assert_eq!(env["AWS_REGION"], "us-east-1");
        assert_eq!(env["AWS_ACCESS_KEY_ID"], "test");
    }

    #[test]
    fn a_taken_port_is_named_with_a_hint() {
        let taken = StdTcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let error = claim(addr).expect_err("in use");
        assert_eq!(
            error.to_string(),
            format!(
                "port {} is in use (is another `make run` running?)",
                addr.port()
            )
        );
    }

    #[tokio::test]
    async fn a_guarded_process_stops_when_its_owner_goes_away() {
        // The owner "dies": the guard's standard input closes, and the guard stops the group.
        let dir = std::env::temp_dir();
        let mut managed = Managed::spawn(
            "sleeper",
            Path::new("/bin/sleep"),
            &["30".to_owned()],
            &dir,
            &BTreeMap::new(),
            None,
        )
        .expect("spawn");
        let pgid = managed.pgid.expect("pgid").as_raw();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut below = process_tree::descendants(pgid);
        while below.len() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            below = process_tree::descendants(pgid);
        }
        assert!(!below.is_empty(), "the guard runs the command");
        drop(managed.child.stdin.take());
        let status = tokio::time::timeout(Duration::from_secs(5), managed.child.wait())
            .await
            .expect("the guard exits when its input closes")
            .expect("status");
        assert!(!status.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        while below.iter().any(process_tree::Proc::alive) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !below.iter().any(process_tree::Proc::alive),
            "the command stopped too"
        );
    }

    #[tokio::test]
    async fn stopping_a_managed_process_stops_its_group() {
        let dir = std::env::temp_dir();
        let mut managed = Managed::spawn(
            "sleeper",
            Path::new("/bin/sleep"),
            &["30".to_owned()],
            &dir,
            &BTreeMap::new(),
            None,
        )
        .expect("spawn");
        let pgid = managed.pgid.expect("pgid").as_raw();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let below = process_tree::descendants(pgid);
        managed.stop(Duration::from_secs(5)).await;
        assert!(managed.exited().is_some());
        assert!(!below.iter().any(process_tree::Proc::alive));
    }

    #[test]
    fn the_process_tree_of_this_process_is_readable() {
        // A child of ours shows up among our descendants and is alive.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        let me = i32::try_from(std::process::id()).expect("pid");
        let found = process_tree::descendants(me);
        assert!(!found.is_empty());
        assert!(found.iter().all(process_tree::Proc::alive) || found.len() > 1);
        let _ = child.kill();
        let _ = child.wait();
    }
}
