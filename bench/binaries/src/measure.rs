//! Starting a program against the fake Runtime API and measuring it: exec → first poll, the
//! files it opens before that poll, and its peak RSS over one invocation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::time::timeout;

use crate::runtime_api::{RuntimeApi, Seen};

/// How long a start may take before the measurement gives up on it.
const START_LIMIT: Duration = Duration::from_secs(60);

/// A program to start as a Lambda runtime would.
#[derive(Debug, Clone)]
pub struct Program {
    /// The name in the report.
    pub name: String,
    /// The executable and its arguments.
    pub argv: Vec<String>,
    /// Its environment (nothing else is inherited).
    pub env: BTreeMap<String, String>,
}

impl Program {
    fn command(&self, argv: &[String], api: &str) -> Command {
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env_clear()
            .envs(&self.env)
            .env("AWS_LAMBDA_RUNTIME_API", api)
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", self.name),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that ending it ends whatever it started (strace's tracee).
            .process_group(0)
            .kill_on_drop(true);
        command
    }
}

/// Ends `child` and its process group.
async fn end(mut child: Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill().await;
    let _ = child.wait().await;
}

/// The next thing the function did, within [`START_LIMIT`].
async fn next_seen(api: &mut RuntimeApi) -> Result<Seen, String> {
    match timeout(START_LIMIT, api.seen.recv()).await {
        Ok(Some(seen)) => Ok(seen),
        Ok(None) => Err("the fake Runtime API stopped".into()),
        Err(_) => Err(format!("nothing within {START_LIMIT:?}")),
    }
}

/// Milliseconds from exec to the first `GET …/invocation/next`, one value per start.
pub async fn cold_starts(program: &Program, starts: usize) -> Result<Vec<f64>, String> {
    let mut times = Vec::with_capacity(starts);
    for _ in 0..starts {
        let mut api = RuntimeApi::start(None).await.map_err(|e| e.to_string())?;
        let mut command = program.command(&program.argv, &api.address);
        let started = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("{}: {e}", program.argv[0]))?;
        let seen = next_seen(&mut api).await;
        end(child).await;
        match seen? {
            Seen::Poll(at) => times.push(at.duration_since(started).as_secs_f64() * 1000.0),
            other => return Err(format!("before its first poll: {other:?}")),
        }
    }
    Ok(times)
}

/// The files `program` opens before its first poll (`strace -f -e trace=openat`), leaving out
/// the dynamic loader's libraries and the kernel's `/proc`, `/sys` and `/dev`.
pub async fn files_before_first_poll(
    program: &Program,
    scratch: &Path,
) -> Result<Vec<String>, String> {
    let trace = scratch.join(format!("{}.strace", program.name));
    let mut argv = vec![
        "strace".to_owned(),
        "-f".to_owned(),
        "-qq".to_owned(),
        "-e".to_owned(),
        "trace=open,openat,openat2".to_owned(),
        "-o".to_owned(),
        trace.display().to_string(),
        "--".to_owned(),
    ];
    argv.extend(program.argv.iter().cloned());
    let mut api = RuntimeApi::start(None).await.map_err(|e| e.to_string())?;
    let child = program
        .command(&argv, &api.address)
        .spawn()
        .map_err(|e| format!("strace: {e}"))?;
    let seen = next_seen(&mut api).await;
    end(child).await;
    match seen? {
        Seen::Poll(_) => {}
        other => return Err(format!("before its first poll: {other:?}")),
    }
    let text = std::fs::read_to_string(&trace).map_err(|e| format!("{}: {e}", trace.display()))?;
    Ok(opened_files(&text))
}

/// The paths of the successful opens in an strace log, outside the loader's and the kernel's.
pub fn opened_files(strace: &str) -> Vec<String> {
    const OUTSIDE: &[&str] = &[
        "/lib",
        "/usr/lib",
        "/lib64",
        "/etc/ld.so",
        "/proc/",
        "/sys/",
        "/dev/",
    ];
    let mut files: Vec<String> = strace
        .lines()
        .filter(|line| line.contains("open"))
        .filter_map(|line| {
            let start = line.find('"')? + 1;
            let end = start + line[start..].find('"')?;
            let result = line.rsplit("= ").next()?.split_whitespace().next()?;
            let ok = result.parse::<i64>().is_ok_and(|fd| fd >= 0);
            ok.then(|| line[start..end].to_owned())
        })
        .filter(|path| !OUTSIDE.iter().any(|prefix| path.starts_with(prefix)))
        .collect();
    files.sort();
    files.dedup();
    files
}

/// One invocation: the answer the function posted and its peak RSS (`VmHWM`, KiB) once it has
/// answered and polled again.
pub async fn one_invocation(program: &Program, event: Value) -> Result<(String, u64), String> {
    let mut api = RuntimeApi::start(Some(event))
        .await
        .map_err(|e| e.to_string())?;
    let child = program
        .command(&program.argv, &api.address)
        .spawn()
        .map_err(|e| format!("{}: {e}", program.argv[0]))?;
    let pid = child.id();
    let outcome = async {
        let mut answer = None;
        let mut polls = 0;
        while polls < 2 {
            match next_seen(&mut api).await? {
                Seen::Poll(_) => polls += 1,
                Seen::Response(body) => answer = Some(body),
                Seen::Error(body) => return Err(format!("the invocation failed: {body}")),
            }
        }
        let answer = answer.ok_or("polled again without answering")?;
        let status = pid
            .map(|pid| PathBuf::from(format!("/proc/{pid}/status")))
            .ok_or("the process is gone")?;
        let status = std::fs::read_to_string(&status).map_err(|e| e.to_string())?;
        let peak = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
            .ok_or("no VmHWM in /proc/<pid>/status")?;
        Ok::<(String, u64), String>((answer, peak))
    }
    .await;
    end(child).await;
    outcome
}

/// The nearest-rank percentile `p` of `values`.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_successful_opens_outside_the_loader_count() {
        let log = r#"12 openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3
12 openat(AT_FDCWD, "/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY|O_CLOEXEC) = 3
12 openat(AT_FDCWD, "/etc/ssl/certs/ca-certificates.crt", O_RDONLY|O_CLOEXEC) = 4
13 openat(AT_FDCWD, "/etc/pki/tls/cert.pem", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)
13 openat(AT_FDCWD, "/proc/self/cgroup", O_RDONLY|O_CLOEXEC) = 5"#;
        assert_eq!(
            opened_files(log),
            vec!["/etc/ssl/certs/ca-certificates.crt".to_owned()]
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 10.0);
        assert_eq!(percentile(&values, 90.0), 18.0);
        assert_eq!(percentile(&[3.0], 50.0), 3.0);
    }
}
