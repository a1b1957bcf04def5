//! The harness of the tests that run `ftgo run` (`e2e_local_stack`, `soak_local_stack`,
//! `e2e_archive_backfill`): the `ftgo` command line (built from `ftgo-cli`), free ports, the
//! running stack (stopped when dropped), the processes below it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("workspace root")
}

/// The `ftgo` command line (the `ftgo-cli` package's binary, built once per test process with
/// the `cargo` that runs the tests), whose `run` hands over to this package's `ftgo-local`
/// ([`LOCAL_BINARY_ENV`] names it, so the one built with these tests is the one run).
pub fn ftgo() -> Command {
    static FTGO: OnceLock<PathBuf> = OnceLock::new();
    let path = FTGO.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "-q",
                "-p",
                "ftgo-cli",
                "--bin",
                "ftgo",
                // The workspace's features (tests/feature_set.rs): nothing compiled again.
                "--features",
                "local",
                "--message-format=json",
            ])
            .current_dir(root())
            .stderr(Stdio::inherit())
            .output()
            .expect("cargo build -p ftgo-cli runs");
        assert!(out.status.success(), "cargo build -p ftgo-cli failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| message["target"]["name"] == "ftgo")
            .find_map(|message| message["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the ftgo executable")
    });
    let mut command = Command::new(path);
    command.env(LOCAL_BINARY_ENV, env!("CARGO_BIN_EXE_ftgo-local"));
    command
}

/// Where `ftgo` looks for `ftgo-local` first (`ftgo_cli::handover::LOCAL_BINARY_ENV`).
pub const LOCAL_BINARY_ENV: &str = "FTGO_LOCAL";

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The longest batching window the tests' stacks use (`ftgo run --max-batching-window`): the
/// archiver's own (template.yaml) is minutes long, and the tests wait seconds for the archive.
/// Windows shorter than this (the projector's) stay as the template says.
pub const MAX_BATCHING_WINDOW_SECONDS: u64 = 2;

/// `ftgo run`, stopped (SIGTERM, then its standard input closes) when dropped.
pub struct Running {
    /// The `ftgo` process.
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// What it printed so far (as far as read).
    pub output: Vec<String>,
    /// Its log directory.
    pub log_dir: PathBuf,
}

impl Running {
    /// `ftgo run` on these ports with two instances per function.
    pub fn start(api: u16, aws: u16, functions: u16) -> Self {
        Self::start_with(api, aws, functions, 2, "e2e")
    }

    /// `ftgo run` on these ports with `concurrency` instances per function, logging under
    /// `target/ftgo/<label>-<api>`.
    pub fn start_with(api: u16, aws: u16, functions: u16, concurrency: u32, label: &str) -> Self {
        let log_dir = root()
            .join("target")
            .join("ftgo")
            .join(format!("{label}-{api}"));
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let mut child = ftgo()
            .args([
                "run",
                "--root",
                &root().display().to_string(),
                "--api",
                &format!("127.0.0.1:{api}"),
                "--aws",
                &format!("127.0.0.1:{aws}"),
                "--functions",
                &format!("127.0.0.1:{functions}"),
                "--no-reload",
                "--exit-on-stdin-close",
                "--concurrency",
                &concurrency.to_string(),
                // The archiver's window is 5 minutes (template.yaml); the tests wait seconds.
                "--max-batching-window",
                &MAX_BATCHING_WINDOW_SECONDS.to_string(),
                "--log-dir",
                &log_dir.display().to_string(),
                "--functions-log",
                &log_dir.join("functions.log").display().to_string(),
            ])
            .env("FTGO_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ftgo starts");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            child,
            stdin,
            lines,
            output: Vec::new(),
            log_dir,
        }
    }

    /// Waits for the banner; panics with ftgo's output if it exits or takes too long.
    pub fn wait_ready(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let ready = line.starts_with("FTGO is up:");
                    self.output.push(line.clone());
                    if ready {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {}
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain();
                panic!(
                    "ftgo run exited ({status}) before it was up:\n{}",
                    self.output.join("\n")
                );
            }
            if Instant::now() >= deadline {
                self.drain();
                panic!(
                    "ftgo run was not up within {timeout:?}:\n{}",
                    self.output.join("\n")
                );
            }
        }
    }

    /// Reads what ftgo printed so far into `output`.
    pub fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.output.push(line);
        }
    }

    /// SIGTERM, and wait for the exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain();
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// Every descendant process of `pid` (Linux `/proc`), with its command name.
pub fn descendants(pid: u32) -> Vec<(u32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let all: Vec<(u32, u32, String)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let name = stat[stat.find('(')? + 1..stat.rfind(')')?].to_owned();
            let rest: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
            if rest.first() == Some(&"Z") {
                return None;
            }
            Some((p, rest.get(1)?.parse().ok()?, name))
        })
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for (p, ppid, name) in &all {
            if *ppid == parent {
                out.push((*p, name.clone()));
                frontier.push(*p);
            }
        }
    }
    out
}

/// Whether `pid` runs (and is no zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}
