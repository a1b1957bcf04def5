//! The functions of the local stack: `cargo lambda watch` servers, kept serving.
//!
//! `cargo lambda watch` (1.9.2) runs each function instance under a watchexec of its own. When
//! an instance process dies (`kill -9`, a crash), watchexec only logs "command killed": the
//! instance stays in cargo-lambda's pool, so it counts against `--concurrency` for good, an
//! invocation it had taken never gets an answer, and once every slot is dead the function gets
//! no instance ever again. Each watchexec also watches, recursively, the directory
//! `cargo lambda watch` runs in (its `--ignore-changes` and `.cargolambdaignore` filter events,
//! not watches): from the workspace root that is `.venv`, `node_modules` and `target` — tens of
//! thousands of inotify watches per instance.
//!
//! So the stack runs its servers from an empty directory (`--manifest-path` names the
//! workspace), always with `--ignore-changes`, and supervises them here:
//!
//! - every function gets a server of its own on a free port, as every Lambda function gets
//!   execution environments of its own: replacing one function's instances never touches
//!   another function's. The stack's functions address is a front
//!   ([`crate::stack::front`]) that passes each invocation to its function's server, so anyone
//!   invoking at `/2015-03-31/functions/<name>/invocations` (`cargo lambda invoke`) reaches the
//!   same instances as the HTTP API and the bridge do;
//! - every half second the supervisor looks at the instance processes under each server: when
//!   one that was running has gone, or the bridge reports an invocation cut at the function's
//!   `Timeout` (Lambda discards such an environment), that function's server is restarted —
//!   fresh pool, fresh instances; the invocations it had taken fail (as on a dead sandbox) and
//!   the bridge retries them;
//! - while a server restarts its readiness says so, and invocations of that function wait for
//!   it, within the function's `Timeout`, instead of failing ([`crate::invoke::RuntimeInvoker`]);
//! - with reload on, the supervisor polls the sources' modification times (`shared/`,
//!   `functions/`, `Cargo.toml`, `Cargo.lock`) instead of watching them, rebuilds on a change
//!   and restarts every server.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};

use super::{LOCAL_FEATURE, Managed, StackError, build_functions, process_tree, wait_http};

/// One `cargo lambda watch`, serving one function.
struct Server {
    /// The function (binary) it serves.
    function: String,
    addr: SocketAddr,
    /// Whether it serves now (false while it is restarted).
    ready: watch::Sender<bool>,
    managed: Option<Managed>,
    /// The instance processes seen running under it, with their binary's name.
    instances: HashMap<process_tree::Proc, String>,
    /// Restarts in a row, each within [`RESTART_STREAK`] of the one before.
    streak: u32,
    /// When it was last restarted.
    restarted_at: Option<std::time::Instant>,
}

/// Restarts closer together than this count as a streak, and back off (a function that dies at
/// start-up must not restart its server in a tight loop).
const RESTART_STREAK: Duration = Duration::from_secs(10);

impl Server {
    fn new(function: String, addr: SocketAddr) -> Self {
        Self {
            function,
            addr,
            ready: watch::Sender::new(false),
            managed: None,
            instances: HashMap::new(),
            streak: 0,
            restarted_at: None,
        }
    }

    /// How long to wait before restarting again: nothing for an isolated restart, then 2 s,
    /// 4 s, 8 s … at most 30 s for a streak.
    fn restart_delay(&mut self) -> Duration {
        let now = std::time::Instant::now();
        match self.restarted_at {
            Some(at) if now.duration_since(at) < RESTART_STREAK => {
                self.streak = self.streak.saturating_add(1);
            }
            _ => self.streak = 0,
        }
        self.restarted_at = Some(now);
        if self.streak == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(1u64 << self.streak.min(5)).min(Duration::from_secs(30))
        }
    }
}

/// How to start the servers.
#[derive(Clone, Debug)]
pub(crate) struct ServerSetup {
    /// cargo-lambda's executable.
    pub program: PathBuf,
    /// The workspace root (its `Cargo.toml` is the manifest).
    pub root: PathBuf,
    /// The empty directory the servers run in.
    pub cwd: PathBuf,
    /// `--concurrency`.
    pub concurrency: u32,
    /// The functions' environment.
    pub env: BTreeMap<String, String>,
    /// Where the servers' output goes (default: ours).
    pub log: Option<PathBuf>,
    /// Every function binary.
    pub binaries: Vec<String>,
    /// Rebuild and restart on source changes.
    pub reload: bool,
    /// How long a server may take to answer.
    pub startup_timeout: Duration,
}

/// The supervised servers.
pub(crate) struct Supervisor {
    setup: ServerSetup,
    servers: Vec<Server>,
    /// Function → index of its server.
    by_function: HashMap<String, usize>,
}

/// Where one function is served, and whether its server serves now.
#[derive(Clone, Debug)]
pub(crate) struct Served {
    /// The function (binary).
    pub function: String,
    /// Its server's invoke address.
    pub addr: SocketAddr,
    /// False while its server is restarted.
    pub ready: watch::Receiver<bool>,
}

impl Supervisor {
    /// Starts one server per function of `servers` (with its address), and waits until each
    /// answers.
    pub(crate) async fn start(
        setup: ServerSetup,
        servers: Vec<(String, SocketAddr)>,
    ) -> Result<Self, StackError> {
        std::fs::create_dir_all(&setup.cwd)?;
        // cargo-lambda reads the nearest `CargoLambda.toml` above the directory it runs in: an
        // empty one here keeps the repository's (for a plain `cargo lambda watch` against
        // `make run`'s emulator) from reaching the stack's servers, which get every variable
        // from the stack itself.
        std::fs::write(
            setup.cwd.join(super::CARGO_LAMBDA_CONFIG),
            "# The local stack's own: its servers get their environment as flags.\n",
        )?;
        let by_function = servers
            .iter()
            .enumerate()
            .map(|(i, (function, _))| (function.clone(), i))
            .collect();
        let servers = servers
            .into_iter()
            .map(|(function, addr)| Server::new(function, addr))
            .collect();
        let mut supervisor = Self {
            setup,
            servers,
            by_function,
        };
        for i in 0..supervisor.servers.len() {
            if let Err(error) = supervisor.spawn(i).await {
                supervisor.stop().await;
                return Err(error);
            }
        }
        Ok(supervisor)
    }

    fn args(&self, addr: SocketAddr) -> Vec<String> {
        let s = &self.setup;
        let mut args = vec![
            "lambda".to_owned(),
            "watch".to_owned(),
            "--invoke-address".to_owned(),
            addr.ip().to_string(),
            "--invoke-port".to_owned(),
            addr.port().to_string(),
            "--concurrency".to_owned(),
            s.concurrency.max(1).to_string(),
            // Never reload by itself: the supervisor does (see the module's documentation).
            "--ignore-changes".to_owned(),
            // As `build_functions` built them: no compile before the first answer.
            "--features".to_owned(),
            LOCAL_FEATURE.to_owned(),
            "--manifest-path".to_owned(),
            s.root.join("Cargo.toml").display().to_string(),
        ];
        let mut env_file = Vec::new();
        for (key, value) in &s.env {
            // `--env-var` splits on commas; such values go through an env file instead.
            if value.contains(',') || value.contains('\n') {
                env_file.push(format!("{key}={value}"));
            } else {
                args.push("--env-var".to_owned());
                args.push(format!("{key}={value}"));
            }
        }
        if !env_file.is_empty() {
            let path = s
                .cwd
                .parent()
                .unwrap_or(&s.cwd)
                .join(format!("functions-{}.env", addr.port()));
            if std::fs::write(&path, env_file.join("\n") + "\n").is_ok() {
                args.push("--env-file".to_owned());
                args.push(path.display().to_string());
            }
        }
        args
    }

    async fn spawn(&mut self, i: usize) -> Result<(), StackError> {
        let (addr, function) = (self.servers[i].addr, self.servers[i].function.clone());
        let args = self.args(addr);
        let mut managed = Managed::spawn(
            "cargo lambda watch",
            &self.setup.program,
            &args,
            &self.setup.cwd,
            &self.setup.env,
            self.setup.log.as_deref(),
        )?;
        let probe = format!("http://{addr}/2015-03-31/functions/{function}/invocations");
        let ready = wait_http(
            "cargo lambda watch",
            &probe,
            &mut managed,
            self.setup.startup_timeout,
        )
        .await;
        let server = &mut self.servers[i];
        server.instances.clear();
        server.managed = Some(managed);
        ready?;
        server.ready.send_replace(true);
        tracing::debug!(serves = %server.function, %addr, "cargo lambda watch is up");
        Ok(())
    }

    /// Where each function is served, with its readiness.
    pub(crate) fn served(&self) -> Vec<Served> {
        self.servers
            .iter()
            .map(|s| Served {
                function: s.function.clone(),
                addr: s.addr,
                ready: s.ready.subscribe(),
            })
            .collect()
    }

    /// Restarts server `i`, retrying until it answers or `stop` is set.
    async fn restart(&mut self, i: usize, why: &str, stop: &watch::Receiver<bool>) {
        // Invocations of this function wait from now on until it serves again.
        self.servers[i].ready.send_replace(false);
        tracing::warn!(serves = %self.servers[i].function, addr = %self.servers[i].addr, %why, "restarting cargo lambda watch for fresh function instances");
        if let Some(mut managed) = self.servers[i].managed.take() {
            managed.stop(Duration::from_secs(5)).await;
        }
        let delay = self.servers[i].restart_delay();
        if !delay.is_zero() {
            tracing::warn!(serves = %self.servers[i].function, ?delay, "restarted moments ago; backing off");
            tokio::time::sleep(delay).await;
        }
        let mut attempt = 0u32;
        while !*stop.borrow() {
            match self.spawn(i).await {
                Ok(()) => {
                    tracing::info!(serves = %self.servers[i].function, "cargo lambda watch restarted");
                    return;
                }
                Err(error) => {
                    attempt += 1;
                    tracing::error!(serves = %self.servers[i].function, %error, attempt, "cargo lambda watch did not come back; retrying");
                    if let Some(mut managed) = self.servers[i].managed.take() {
                        managed.stop(Duration::from_secs(5)).await;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    }

    /// Servers whose process exited, or one of whose instances died since the last look.
    fn casualties(&mut self) -> Vec<(usize, String)> {
        let binaries: HashSet<&str> = self.setup.binaries.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        for (i, server) in self.servers.iter_mut().enumerate() {
            let Some(managed) = server.managed.as_mut() else {
                continue;
            };
            if let Some(status) = managed.exited() {
                out.push((i, format!("cargo lambda watch exited ({status})")));
                continue;
            }
            let Some(pgid) = managed.pgid() else {
                continue;
            };
            let running: Vec<(process_tree::Proc, String)> = process_tree::descendants(pgid)
                .into_iter()
                .filter_map(|p| {
                    let name = p.exe_name()?;
                    binaries.contains(name.as_str()).then_some((p, name))
                })
                .collect();
            let gone: Vec<String> = server
                .instances
                .iter()
                .filter(|(p, _)| !p.alive())
                .map(|(p, name)| format!("{name} (pid {})", p.pid()))
                .collect();
            if gone.is_empty() {
                server.instances.extend(running);
            } else {
                out.push((i, format!("function instance {} died", gone.join(", "))));
            }
        }
        out
    }

    /// Supervises until `stop` is set: replaces dead instances, restarts servers on a timeout
    /// reported through `timeouts`, and reloads on source changes; then stops every server.
    pub(crate) async fn run(
        mut self,
        mut timeouts: mpsc::UnboundedReceiver<String>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut sources = self.setup.reload.then(|| sources_stamp(&self.setup.root));
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut last_reload_check = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                Some(function) = timeouts.recv() => {
                    match self.by_function.get(&function).copied() {
                        Some(i) => {
                            let why = format!("an invocation of {function} was cut at its Timeout");
                            self.restart(i, &why, &stop).await;
                        }
                        None => tracing::warn!(%function, "a timeout reported for a function the stack does not serve"),
                    }
                }
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
            }
            if *stop.borrow() {
                break;
            }
            for (i, why) in self.casualties() {
                self.restart(i, &why, &stop).await;
            }
            if let Some(stamp) = sources
                && last_reload_check.elapsed() >= Duration::from_secs(2)
            {
                last_reload_check = std::time::Instant::now();
                let now = sources_stamp(&self.setup.root);
                if now > stamp {
                    sources = Some(now);
                    tracing::info!("sources changed: rebuilding the functions");
                    match build_functions(&self.setup.root, &self.setup.binaries).await {
                        Ok(()) => {
                            for i in 0..self.servers.len() {
                                self.restart(i, "reloading changed code", &stop).await;
                            }
                        }
                        Err(error) => {
                            tracing::error!(%error, "the build failed; the running functions stay")
                        }
                    }
                }
            }
        }
        self.stop().await;
    }

    /// Stops every server.
    pub(crate) async fn stop(&mut self) {
        for server in &mut self.servers {
            server.ready.send_replace(false);
            if let Some(mut managed) = server.managed.take() {
                managed.stop(Duration::from_secs(10)).await;
            }
        }
    }
}

/// The newest modification time under the functions' sources (never `target/`).
fn sources_stamp(root: &Path) -> SystemTime {
    fn walk(path: &Path, newest: &mut SystemTime, depth: usize) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if let Ok(modified) = meta.modified()
            && modified > *newest
        {
            *newest = modified;
        }
        if meta.is_dir()
            && depth < 12
            && let Ok(entries) = std::fs::read_dir(path)
        {
            for entry in entries.flatten() {
                if entry.file_name() != "target" {
                    walk(&entry.path(), newest, depth + 1);
                }
            }
        }
    }
    let mut newest = SystemTime::UNIX_EPOCH;
    for part in ["shared", "functions", "Cargo.toml", "Cargo.lock"] {
        walk(&root.join(part), &mut newest, 0);
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_in_a_streak_back_off_and_an_isolated_one_does_not() {
        let mut server = Server::new("f".to_owned(), SocketAddr::from(([127, 0, 0, 1], 1)));
        assert_eq!(server.restart_delay(), Duration::ZERO);
        assert_eq!(server.restart_delay(), Duration::from_secs(2));
        assert_eq!(server.restart_delay(), Duration::from_secs(4));
        for _ in 0..10 {
            server.restart_delay();
        }
        assert_eq!(server.restart_delay(), Duration::from_secs(30));
        server.restarted_at = Some(std::time::Instant::now() - RESTART_STREAK * 2);
        assert_eq!(
            server.restart_delay(),
            Duration::ZERO,
            "an old streak is over"
        );
    }

    #[test]
    fn a_source_change_moves_the_stamp_and_target_does_not() {
        let root = std::env::temp_dir().join(format!("ftgo-stamp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(root.join("shared/src")).expect("dirs");
        std::fs::create_dir_all(root.join("shared/target")).expect("dirs");
        std::fs::write(root.join("shared/src/lib.rs"), "a").expect("write");
        let before = sources_stamp(&root);
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(root.join("shared/target/out"), "x").expect("write");
        assert_eq!(sources_stamp(&root), before, "target/ is not a source");
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(root.join("shared/src/lib.rs"), "b").expect("write");
        assert!(sources_stamp(&root) > before);
        let _ = std::fs::remove_dir_all(&root);
    }
}
