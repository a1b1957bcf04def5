//! What the local stack (`ftgo run`: the `ftgo-local` binary of `ftgo-infra`) and the `ftgo`
//! commands share, without the CLI linking the emulator: where the workspace is, the files a
//! running stack leaves in its log directory for the commands (the endpoint it announces, the
//! bridge's progress, the faults log), and the SDK settings for an emulator endpoint.
//!
//! Progress file shape: `{"updatedAt","streams":[{"function","table","shardId",
//! "lastProcessedSequenceNumber","lastProcessedAt","inFlight"}],"queues":[{"function",
//! "queueUrl","batchesOk","batchesFailed"}]}`.

use std::path::{Path, PathBuf};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde::{Deserialize, Serialize};

/// The file, in the stack's log directory (by default [`log_dir`]), where a running stack
/// writes its AWS endpoint for the `ftgo` commands ([`crate::target`]).
pub const ANNOUNCEMENT: &str = "endpoint";

/// The file, in the stack's log directory, where the local bridge writes how far each event
/// source has come ([`ProgressReport`]), for `ftgo status`.
pub const PROGRESS_FILE: &str = "bridge-progress.json";

/// The local stack's default log directory in the workspace at `root`: `<root>/target/ftgo`.
pub fn log_dir(root: &Path) -> PathBuf {
    root.join("target").join("ftgo")
}

/// The workspace root: the nearest ancestor of `start` holding `template.yaml` and `Cargo.toml`.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join("template.yaml").is_file() && dir.join("Cargo.toml").is_file())
        .map(Path::to_path_buf)
}

/// The project root a command works in: `explicit` (`--root`), else the one [`find_root`] finds
/// from the current directory, else the one this binary was built from.
pub fn resolve_root(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(root) = explicit {
        return Ok(root.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    find_root(&cwd)
        .or_else(|| {
            crate::template::default_template_path()
                .parent()
                .and_then(|p| p.canonicalize().ok())
        })
        .ok_or_else(|| "no template.yaml here or above; pass --root".to_owned())
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

/// [`PROGRESS_FILE`]: every shard and queue the bridge polls, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressReport {
    /// When it was written (RFC 3339).
    pub updated_at: String,
    /// One entry per shard of each stream consumer.
    pub streams: Vec<ShardProgress>,
    /// One entry per queue consumer.
    pub queues: Vec<QueueProgress>,
}

/// How far a stream consumer has come in one shard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardProgress {
    /// The function (binary name).
    pub function: String,
    /// The table whose stream it reads.
    pub table: String,
    /// The shard.
    pub shard_id: String,
    /// The last record done with (processed or given up).
    pub last_processed_sequence_number: Option<String>,
    /// When (RFC 3339).
    pub last_processed_at: Option<String>,
    /// A batch of the shard is being invoked.
    pub in_flight: bool,
}

/// How a queue consumer's batches went.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueProgress {
    /// The function (binary name).
    pub function: String,
    /// The queue.
    pub queue_url: String,
    /// Batches that succeeded.
    pub batches_ok: u64,
    /// Batches that failed (partly or whole).
    pub batches_failed: u64,
}
