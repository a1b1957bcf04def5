//! Where a replay into a target table stands: a record of the archive objects it applied, kept
//! in the archive bucket so that `ftgo replay --resume` works from anywhere the bucket is (a
//! laptop, a pipeline, the `archive-replayer` Lambda).
//!
//! ```text
//! replay-checkpoints/<target>/done/<archive object key>    empty: that object was applied
//! replay-checkpoints/<target>/<partition>.json              summary: last object, complete
//! ```
//!
//! Resuming skips exactly the objects recorded as done, not every key below a maximum: an
//! object that lands later with a smaller key (one shard's archiver lagging another's, or a
//! `backfill/<min eventId>-…` object the archive-backfiller writes) is not done, so a resumed
//! replay picks it up. The summary is for people (`ftgo replay` prints it); resuming never reads it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::store::archive::{Archive, FORMAT_PREFIX, sanitise_segment};

/// The prefix of replay checkpoints in the archive bucket (outside `events/`, so never read
/// as events).
pub const CHECKPOINT_PREFIX: &str = "replay-checkpoints/";

/// The folder of the done records of a target, under its checkpoints.
const DONE_FOLDER: &str = "done/";

/// Where a replay into a target stands in one partition: the last object done, and whether
/// the partition was done to the end of its listing. A summary for people; resuming goes by
/// the done records ([`Checkpoints::done`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// The last object applied to the end.
    pub after: Option<String>,
    /// Whether every object of the partition (of the replay's days) was applied.
    pub complete: bool,
}

/// The checkpoints of replays into one target table, in the archive bucket.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    archive: Archive,
    target: String,
}

impl Checkpoints {
    /// The checkpoints of replays into `target`, kept in `archive`'s bucket.
    pub fn new(archive: Archive, target: impl Into<String>) -> Self {
        Self {
            archive,
            target: target.into(),
        }
    }

    /// The target table.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn base(&self) -> String {
        format!("{CHECKPOINT_PREFIX}{}/", sanitise_segment(&self.target))
    }

    /// The key of the summary of archive prefix `prefix`.
    pub fn key(&self, prefix: &str) -> String {
        let prefix = prefix.strip_prefix(FORMAT_PREFIX).unwrap_or(prefix);
        format!(
            "{}{}.json",
            self.base(),
            sanitise_segment(prefix.trim_end_matches('/'))
        )
    }

    /// The key of the record that archive object `object` was applied.
    pub fn done_key(&self, object: &str) -> String {
        format!("{}{DONE_FOLDER}{object}", self.base())
    }

    /// The saved summary of `prefix`, if any.
    pub async fn load(&self, prefix: &str) -> Result<Option<Checkpoint>, Error> {
        match self.archive.get_optional(&self.key(prefix)).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Codec(format!("checkpoint {}: {e}", self.key(prefix)))),
        }
    }

    /// Saves `checkpoint` as the summary of `prefix`.
    pub async fn save(&self, prefix: &str, checkpoint: &Checkpoint) -> Result<(), Error> {
        let body = serde_json::to_vec(checkpoint).map_err(|e| Error::Codec(e.to_string()))?;
        self.archive.put_json(&self.key(prefix), body).await
    }

    /// Records that archive object `object` was applied to the end (idempotent).
    pub async fn mark_done(&self, object: &str) -> Result<(), Error> {
        self.archive
            .put_json(&self.done_key(object), Vec::new())
            .await
    }

    /// The archive objects under `prefix` recorded as applied (a paginated listing).
    pub async fn done(&self, prefix: &str) -> Result<BTreeSet<String>, Error> {
        let folder = self.done_key("");
        Ok(self
            .archive
            .list_keys(&self.done_key(prefix))
            .await?
            .into_iter()
            .filter_map(|key| key.strip_prefix(&folder).map(str::to_owned))
            .collect())
    }

    /// Whether any replay into the target recorded anything under `prefix` (a done record or
    /// a summary).
    pub async fn exist(&self, prefix: &str) -> Result<bool, Error> {
        Ok(!self.done(prefix).await?.is_empty() || self.load(prefix).await?.is_some())
    }
}
