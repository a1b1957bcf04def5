//! What a report was measured on: when, which commit, which machine and compiler.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The run's metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// When the report was assembled (RFC 3339, UTC).
    pub date: String,
    /// `git rev-parse HEAD` of the workspace, or `unknown`.
    pub commit: String,
    /// Whether the work tree had uncommitted changes.
    pub dirty: bool,
    /// The machine.
    pub machine: Machine,
    /// `rustc --version`, or `unknown`.
    pub rustc: String,
    /// When the report was assembled again from the run's parts (`make bench-readme`, a part
    /// of `make bench-loop` added), and on which commit; the rest is the run's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassembled: Option<Reassembled>,
}

/// A later assembly of a run's parts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reassembled {
    /// When (RFC 3339, UTC).
    pub date: String,
    /// `git rev-parse HEAD` then.
    pub commit: String,
}

/// The machine a report was measured on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    /// Cores available to this process.
    pub cores: usize,
    /// The CPU model (`/proc/cpuinfo`), or `unknown`.
    pub cpu: String,
    /// Architecture and operating system (`x86_64 linux`).
    pub platform: String,
    /// Total memory in GiB (`/proc/meminfo`), if known.
    pub memory_gib: Option<f64>,
    /// The 1-, 5- and 15-minute load averages when the report was assembled (`/proc/loadavg`):
    /// on a shared machine, how busy it was while the parts were measured.
    pub load_average: Option<String>,
}

fn output(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The CPU model from `/proc/cpuinfo` text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name") || l.starts_with("Model"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

fn memory_gib() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((kib / 1024.0 / 1024.0 * 10.0).round() / 10.0)
}

/// The 1-, 5- and 15-minute load averages (`/proc/loadavg`), if known.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let loads: Vec<&str> = text.split_whitespace().take(3).collect();
    (loads.len() == 3).then(|| loads.join(" "))
}

/// Now, in RFC 3339 (UTC, whole seconds).
pub fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

impl Run {
    /// The run a report in `dir` was assembled for (its `report.json`), marked as assembled
    /// again now (`here` says when and on which commit); `None` without a readable report.
    pub fn of_report(dir: &Path, here: &Run) -> Option<Self> {
        #[derive(Deserialize)]
        struct Stored {
            run: Run,
        }
        let text = std::fs::read_to_string(dir.join("report.json")).ok()?;
        let Stored { mut run } = serde_json::from_str(&text).ok()?;
        run.reassembled = Some(Reassembled {
            date: here.date.clone(),
            commit: here.commit.clone(),
        });
        Some(run)
    }

    /// The metadata of a run in the workspace at `root`, now.
    pub fn here(root: &Path) -> Self {
        let unknown = || "unknown".to_owned();
        Self {
            date: now(),
            commit: output("git", &["rev-parse", "HEAD"], root).unwrap_or_else(unknown),
            dirty: output(
                "git",
                &["status", "--porcelain", "--untracked-files=no"],
                root,
            )
            .is_some_and(|s| !s.is_empty()),
            machine: Machine {
                cores: std::thread::available_parallelism().map_or(0, usize::from),
                cpu: std::fs::read_to_string("/proc/cpuinfo")
                    .ok()
                    .and_then(|c| cpu_model(&c))
                    .unwrap_or_else(unknown),
                platform: format!("{} {}", std::env::consts::ARCH, std::env::consts::OS),
                memory_gib: memory_gib(),
                load_average: load_average(),
            },
            rustc: output("rustc", &["--version"], root).unwrap_or_else(unknown),
            reassembled: None,
        }
    }
}
