//! Process supervision: the processes the stack starts, in process groups of their own under a
//! guard, their readiness, and the signals that stop the stack.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::StackError;

pub(super) fn locate(
    explicit: Option<&Path>,
    root: &Path,
    name: &'static str,
) -> Result<PathBuf, StackError> {
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

/// Binds `addr` to prove it free (and keep it, for the API); a taken port is named with a hint.
pub fn claim(addr: SocketAddr) -> Result<StdTcpListener, StackError> {
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
    pub(super) what: &'static str,
    pub(super) child: Child,
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

    pub(super) fn hint(&self) -> String {
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
/// The functions' feature of the local stack's build: the workspace's features of third-party
/// crates (`shared/feature-set`), so the functions built alone reuse what `cargo test
/// --workspace` and `cargo build --workspace` compiled instead of compiling the SDK again.
pub(crate) const LOCAL_FEATURE: &str = "local";

/// Builds the function binaries as `cargo lambda watch` will run them (`cargo run --bin`, with
/// [`LOCAL_FEATURE`]), so the first request does not wait for a compile.
pub(crate) async fn build_functions(root: &Path, binaries: &[String]) -> Result<(), StackError> {
    if binaries.is_empty() {
        return Ok(());
    }
    tracing::info!(functions = binaries.len(), "building the functions");
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .arg("build")
        .args(["--features", LOCAL_FEATURE])
        .current_dir(root)
        .kill_on_drop(true);
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
