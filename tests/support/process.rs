//! An emulator's operating-system process, which never outlives its owner.
//!
//! The server runs under a small `sh` guard whose standard input is a pipe from this process.
//! When the owner drops the [`ServerProcess`] — or the test binary exits, even when killed — the
//! pipe closes, the guard sees end of input and stops the server. The guard exits when the server
//! does, so a crashed server is noticed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The guard: start the server in the background (output to `$FTGO_EMULATOR_LOG`), print its
/// pid, stop it at end of input (fd 3, saved before: background jobs get /dev/null as stdin),
/// and exit with the server's status.
const GUARD: &str = r#"
exec 3<&0
"$@" </dev/null 3<&- >>"$FTGO_EMULATOR_LOG" 2>&1 &
server=$!
echo "$server"
( while read -r _ <&3; do :; done; kill "$server" 2>/dev/null ) </dev/null >/dev/null 2>&1 &
watcher=$!
exec 3<&-
wait "$server"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

pub(crate) struct ServerProcess {
    guard: Child,
    stdin: Option<ChildStdin>,
    server_pid: Option<u32>,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `program args...` in `dir`, logging to `log`.
    pub(crate) fn spawn(
        program: &Path,
        args: &[String],
        dir: Option<&Path>,
        log: &Path,
    ) -> std::io::Result<Self> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(GUARD)
            .arg("ftgo-emulator-guard")
            .arg(program)
            .args(args)
            .env("FTGO_EMULATOR_LOG", log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let mut guard = command.spawn()?;
        let stdin = guard.stdin.take();
        let server_pid = guard.stdout.take().and_then(|stdout| {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).ok()?;
            line.trim().parse().ok()
        });
        Ok(Self {
            guard,
            stdin,
            server_pid,
            log: log.to_owned(),
        })
    }

    /// The server's exit status, when it has stopped.
    pub(crate) fn exited(&mut self) -> Option<String> {
        match self.guard.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(err) => Some(format!("unknown ({err})")),
        }
    }

    /// The last lines of the server's log.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("{} (log {}):\n{tail}", "last lines", self.log.display())
    }

    /// Stops the server and waits (briefly) for it.
    pub(crate) fn stop(&mut self) {
        // End of input: the guard stops the server and exits.
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(self.guard.try_wait(), Ok(None)) {
                let _ = std::fs::remove_file(&self.log);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The server ignored SIGTERM: force it, then the guard.
        if let Some(pid) = self.server_pid {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.guard.kill();
        let _ = self.guard.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
