//! How far each event source has come, for `ftgo status` and people: the bridge keeps it in
//! memory and writes it (atomically, at most once a second, only when it changed) to
//! `bridge-progress.json` in the stack's log directory.
//!
//! Shape: `{"updatedAt","streams":[{"function","table","shardId","lastProcessedSequenceNumber",
//! "lastProcessedAt","inFlight"}],"queues":[{"function","queueUrl","batchesOk","batchesFailed"}]}`.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
pub use ftgo_cli::local::{ProgressReport, QueueProgress, ShardProgress};

/// The progress of every shard and queue the bridge polls.
#[derive(Debug, Default)]
pub struct Progress {
    state: Mutex<ProgressReport>,
}

impl Progress {
    fn with<T>(&self, f: impl FnOnce(&mut ProgressReport) -> T) -> T {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// A shard is being read (so it is listed before its first record).
    pub fn shard_seen(&self, function: &str, table: &str, shard: &str) {
        self.with(|r| {
            shard_entry(r, function, table, shard);
        });
    }

    /// A batch of the shard is (or no longer is) being invoked.
    pub fn shard_in_flight(&self, function: &str, table: &str, shard: &str, in_flight: bool) {
        self.with(|r| shard_entry(r, function, table, shard).in_flight = in_flight);
    }

    /// The shard is done with every record up to `sequence` (processed or given up).
    pub fn shard_processed(
        &self,
        function: &str,
        table: &str,
        shard: &str,
        sequence: &str,
        at: DateTime<Utc>,
    ) {
        self.with(|r| {
            let p = shard_entry(r, function, table, shard);
            p.last_processed_sequence_number = Some(sequence.to_owned());
            p.last_processed_at = Some(rfc3339(at));
        });
    }

    /// A queue is being polled (so it is listed before its first batch).
    pub fn queue_seen(&self, function: &str, queue_url: &str) {
        self.with(|r| {
            queue_entry(r, function, queue_url);
        });
    }

    /// A queue batch ended, successfully or not.
    pub fn queue_batch(&self, function: &str, queue_url: &str, ok: bool) {
        self.with(|r| {
            let q = queue_entry(r, function, queue_url);
            if ok {
                q.batches_ok += 1;
            } else {
                q.batches_failed += 1;
            }
        });
    }

    /// The progress as of `now`.
    pub fn report(&self, now: DateTime<Utc>) -> ProgressReport {
        self.with(|r| ProgressReport {
            updated_at: rfc3339(now),
            ..r.clone()
        })
    }
}

/// The entry of `entries` that `cmp` finds, inserted in order (`new`) when missing.
fn entry<T>(entries: &mut Vec<T>, cmp: impl Fn(&T) -> Ordering, new: impl FnOnce() -> T) -> &mut T {
    let at = entries.binary_search_by(cmp).unwrap_or_else(|at| {
        entries.insert(at, new());
        at
    });
    &mut entries[at]
}

fn shard_entry<'r>(
    r: &'r mut ProgressReport,
    function: &str,
    table: &str,
    shard: &str,
) -> &'r mut ShardProgress {
    let key = (function, table, shard);
    entry(
        &mut r.streams,
        |p| (p.function.as_str(), p.table.as_str(), p.shard_id.as_str()).cmp(&key),
        || ShardProgress {
            function: function.to_owned(),
            table: table.to_owned(),
            shard_id: shard.to_owned(),
            ..ShardProgress::default()
        },
    )
}

fn queue_entry<'r>(r: &'r mut ProgressReport, function: &str, url: &str) -> &'r mut QueueProgress {
    entry(
        &mut r.queues,
        |q| (q.function.as_str(), q.queue_url.as_str()).cmp(&(function, url)),
        || QueueProgress {
            function: function.to_owned(),
            queue_url: url.to_owned(),
            ..QueueProgress::default()
        },
    )
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Writes `progress` to `path` whenever it changed, at most once per `every`, until `stop`.
pub async fn write_loop(
    progress: std::sync::Arc<Progress>,
    path: PathBuf,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut written: Option<ProgressReport> = None;
    loop {
        let now = progress.report(Utc::now());
        let changed = written
            .as_ref()
            .is_none_or(|w| w.streams != now.streams || w.queues != now.queues);
        if changed {
            match write_atomically(&path, &now) {
                Ok(()) => written = Some(now),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "could not write the bridge's progress")
                }
            }
        }
        if super::wait_or_stop(&mut stop, every).await {
            return;
        }
    }
}

/// Writes `value` to a temporary file beside `path`, then renames it over `path`.
fn write_atomically(path: &Path, value: &ProgressReport) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value).unwrap_or_default())?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn progress_renders_the_documented_shape() {
        let p = Progress::default();
        let t = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        p.shard_seen("projector", "ftgo-events", "shard-1");
        p.shard_seen("archiver", "ftgo-events", "shard-1");
        p.shard_in_flight("archiver", "ftgo-events", "shard-1", true);
        p.shard_processed("projector", "ftgo-events", "shard-1", "42", t);
        p.queue_batch("replayer", "http://q", true);
        p.queue_batch("replayer", "http://q", false);
        p.queue_batch("replayer", "http://q", true);
        let v = serde_json::to_value(p.report(t)).expect("json");
        assert_eq!(v["updatedAt"], "2023-11-14T22:13:20.000Z");
        let streams = v["streams"].as_array().expect("streams");
        assert_eq!(streams.len(), 2);
        let archiver = &streams[0];
        assert_eq!(archiver["function"], "archiver");
        assert_eq!(archiver["inFlight"], true);
        assert_eq!(archiver["lastProcessedSequenceNumber"], Value::Null);
        assert_eq!(archiver["lastProcessedAt"], Value::Null);
        let projector = &streams[1];
        assert_eq!(projector["table"], "ftgo-events");
        assert_eq!(projector["shardId"], "shard-1");
        assert_eq!(projector["lastProcessedSequenceNumber"], "42");
        assert_eq!(projector["lastProcessedAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(projector["inFlight"], false);
        assert_eq!(
            v["queues"],
            json!([{"function":"replayer","queueUrl":"http://q","batchesOk":2,"batchesFailed":1}])
        );
    }

    #[tokio::test]
    async fn the_file_is_written_only_when_progress_changed() {
        let dir = std::env::temp_dir().join(format!("ftgo-progress-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("bridge-progress.json");
        let p = std::sync::Arc::new(Progress::default());
        p.shard_seen("f", "t", "s");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(write_loop(
            p.clone(),
            path.clone(),
            std::time::Duration::from_millis(20),
            stop_rx,
        ));
        // Waits (at most 5 s) until the file's content satisfies `done`.
        let written = |done: fn(&str) -> bool| {
            let path = path.clone();
            async move {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                loop {
                    if let Ok(text) = std::fs::read_to_string(&path)
                        && done(&text)
                    {
                        return text;
                    }
                    assert!(std::time::Instant::now() < deadline, "never written");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        };
        let first = written(|text| text.contains("\"shardId\"")).await;
        // Absence cannot be waited for: several write intervals pass without a rewrite.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(
            std::fs::read_to_string(&path).expect("still there"),
            first,
            "unchanged progress is not rewritten (updatedAt stays)"
        );
        p.shard_processed("f", "t", "s", "7", Utc::now());
        let second = written(|text| text.contains("\"7\"")).await;
        let second: Value = serde_json::from_str(&second).expect("json");
        assert_eq!(second["streams"][0]["lastProcessedSequenceNumber"], "7");
        let _ = stop_tx.send(true);
        task.await.expect("stops");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
