//! How far each event source has come, for `ftgo status` and people: the bridge keeps it in
//! memory and writes it (atomically, at most once a second, only when it changed) to
//! `bridge-progress.json` in the stack's log directory.
//!
//! Shape: `{"updatedAt","streams":[{"function","table","shardId","lastProcessedSequenceNumber",
//! "lastProcessedAt","inFlight"}],"queues":[{"function","queueUrl","batchesOk","batchesFailed"}]}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ShardProgress {
    last_sequence: Option<String>,
    last_at: Option<DateTime<Utc>>,
    in_flight: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct QueueProgress {
    ok: u64,
    failed: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Snapshot {
    shards: BTreeMap<(String, String, String), ShardProgress>,
    queues: BTreeMap<(String, String), QueueProgress>,
}

/// The progress of every shard and queue the bridge polls.
#[derive(Debug, Default)]
pub struct Progress {
    state: Mutex<Snapshot>,
}

impl Progress {
    fn with<T>(&self, f: impl FnOnce(&mut Snapshot) -> T) -> T {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// A shard is being read (so it is listed before its first record).
    pub fn shard_seen(&self, function: &str, table: &str, shard: &str) {
        self.with(|s| {
            s.shards
                .entry((function.to_owned(), table.to_owned(), shard.to_owned()))
                .or_default();
        });
    }

    /// A batch of the shard is (or no longer is) being invoked.
    pub fn shard_in_flight(&self, function: &str, table: &str, shard: &str, in_flight: bool) {
        self.with(|s| {
            s.shards
                .entry((function.to_owned(), table.to_owned(), shard.to_owned()))
                .or_default()
                .in_flight = in_flight;
        });
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
        self.with(|s| {
            let p = s
                .shards
                .entry((function.to_owned(), table.to_owned(), shard.to_owned()))
                .or_default();
            p.last_sequence = Some(sequence.to_owned());
            p.last_at = Some(at);
        });
    }

    /// A queue is being polled (so it is listed before its first batch).
    pub fn queue_seen(&self, function: &str, queue_url: &str) {
        self.with(|s| {
            s.queues
                .entry((function.to_owned(), queue_url.to_owned()))
                .or_default();
        });
    }

    /// A queue batch ended, successfully or not.
    pub fn queue_batch(&self, function: &str, queue_url: &str, ok: bool) {
        self.with(|s| {
            let q = s
                .queues
                .entry((function.to_owned(), queue_url.to_owned()))
                .or_default();
            if ok {
                q.ok += 1;
            } else {
                q.failed += 1;
            }
        });
    }

    fn snapshot(&self) -> Snapshot {
        self.with(|s| s.clone())
    }

    /// The progress as the JSON document of `bridge-progress.json`.
    pub fn to_json(&self, now: DateTime<Utc>) -> Value {
        render(&self.snapshot(), now)
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn render(s: &Snapshot, now: DateTime<Utc>) -> Value {
    json!({
        "updatedAt": rfc3339(now),
        "streams": s.shards.iter().map(|((function, table, shard), p)| json!({
            "function": function,
            "table": table,
            "shardId": shard,
            "lastProcessedSequenceNumber": p.last_sequence,
            "lastProcessedAt": p.last_at.map(rfc3339),
            "inFlight": p.in_flight,
        })).collect::<Vec<_>>(),
        "queues": s.queues.iter().map(|((function, url), q)| json!({
            "function": function,
            "queueUrl": url,
            "batchesOk": q.ok,
            "batchesFailed": q.failed,
        })).collect::<Vec<_>>(),
    })
}

/// Writes `progress` to `path` whenever it changed, at most once per `every`, until `stop`.
pub async fn write_loop(
    progress: std::sync::Arc<Progress>,
    path: PathBuf,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut written: Option<Snapshot> = None;
    loop {
        let now = progress.snapshot();
        if written.as_ref() != Some(&now) {
            match write_atomically(&path, &render(&now, Utc::now())) {
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
fn write_atomically(path: &Path, value: &Value) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value).unwrap_or_default())?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let v = p.to_json(t);
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
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let first = std::fs::read_to_string(&path).expect("written");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(
            std::fs::read_to_string(&path).expect("still there"),
            first,
            "unchanged progress is not rewritten (updatedAt stays)"
        );
        p.shard_processed("f", "t", "s", "7", Utc::now());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let second: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("rewritten"))
                .expect("json");
        assert_eq!(second["streams"][0]["lastProcessedSequenceNumber"], "7");
        let _ = stop_tx.send(true);
        task.await.expect("stops");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
