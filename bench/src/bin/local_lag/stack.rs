//! `ftgo run` on free loopback ports, stopped (SIGTERM, then standard input closed) when dropped.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The running local stack.
pub struct Stack {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The HTTP API's base URL.
    pub api: String,
    /// The AWS endpoint (moto server).
    pub aws: String,
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

impl Stack {
    /// Starts `ftgo run` from `root` with `concurrency` instances per function and waits up to
    /// `timeout` for its "FTGO is up" banner (the first run builds the functions).
    pub fn start(
        ftgo: &Path,
        root: &Path,
        log_dir: &Path,
        concurrency: u32,
        timeout: Duration,
    ) -> Result<Self, String> {
        let (api, aws, functions) = (free_port()?, free_port()?, free_port()?);
        std::fs::create_dir_all(log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
        let mut child = Command::new(ftgo)
            .arg("run")
            .arg("--root")
            .arg(root)
            .args(["--api", &format!("127.0.0.1:{api}")])
            .args(["--aws", &format!("127.0.0.1:{aws}")])
            .args(["--functions", &format!("127.0.0.1:{functions}")])
            .args(["--no-reload", "--exit-on-stdin-close"])
            .args(["--concurrency", &concurrency.to_string()])
            .arg("--log-dir")
            .arg(log_dir)
            .arg("--functions-log")
            .arg(log_dir.join("functions.log"))
            .env("FTGO_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{} run: {e}", ftgo.display()))?;
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel::<String>();
        let streams: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ];
        for stream in streams.into_iter().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut stack = Self {
            child,
            stdin,
            api: format!("http://127.0.0.1:{api}"),
            aws: format!("http://127.0.0.1:{aws}"),
        };
        let log = log_dir.join("ftgo-run.log");
        let mut output = Vec::new();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
                let up = line.starts_with("FTGO is up:");
                output.push(line);
                if up {
                    break;
                }
            }
            let gone = matches!(stack.child.try_wait(), Ok(Some(_)));
            if gone || Instant::now() >= deadline {
                let _ = std::fs::write(&log, output.join("\n"));
                let why = if gone { "exited" } else { "was not up in time" };
                return Err(format!(
                    "ftgo run {why}; its output is in {}",
                    log.display()
                ));
            }
        }
        // Keep draining its output into the log, so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(&log).ok();
            for line in output.into_iter().chain(lines.iter()) {
                if let Some(f) = file.as_mut() {
                    let _ = std::io::Write::write_all(f, format!("{line}\n").as_bytes());
                }
            }
        });
        Ok(stack)
    }

    /// Stops the stack and everything it started.
    pub fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `ftgo` executable: `$FTGO_BIN`, else `target/debug/ftgo` in the workspace.
pub fn ftgo_binary(root: &Path) -> PathBuf {
    std::env::var_os("FTGO_BIN")
        .filter(|p| !p.is_empty())
        .map_or_else(|| root.join("target/debug/ftgo"), PathBuf::from)
}

/// A bearer token from `ftgo token` (an admin may send every command).
pub fn token(ftgo: &Path) -> Result<String, String> {
    let out = Command::new(ftgo)
        .args(["token", "--sub", "bench-admin", "--scope", "ftgo/admin"])
        .output()
        .map_err(|e| format!("{} token: {e}", ftgo.display()))?;
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && !token.is_empty() {
        Ok(token)
    } else {
        Err(format!(
            "ftgo token failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
