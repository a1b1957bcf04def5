//! The two-step rebuild: a compacted snapshot of a view table at a watermark, and a rebuild that
//! starts from it and replays only the archived events after the watermark (`ftgo snapshot-view`,
//! `ftgo replay --from-snapshot`).
//!
//! A snapshot is taken of a table that a replay keeps ([`Checkpoints`]): its watermark is, per
//! archive partition, the replay's checkpoint (the last object applied), read **before** the
//! table is scanned. The table only moves forward, so every item is at or past the watermark;
//! the events after it are applied again on rebuild, and those the item has seen already are
//! duplicates under the strict rule. So restoring the snapshot into an empty table, saving the
//! watermark as the new table's checkpoints and resuming the replay yields the same items as a
//! full replay (tested).
//!
//! Layout in the archive bucket (outside `events/`):
//!
//! ```text
//! view-snapshots/<table>/<taken at, epoch ms, 20 digits>/manifest.json
//! view-snapshots/<table>/<taken at>/bucket=<N>.ndjson.gz   items of the orders of partition N
//! ```
//!
//! Items are kept as DynamoDB JSON (`serde_dynamo`), one a line, grouped by the partition of
//! their `Order#<orderId>` stream, so a snapshot holds each view item once: the compacted state
//! of every event before the watermark.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::replay::{Checkpoint, Checkpoints};
use crate::store::archive::{Archive, partition_of, partition_prefix, sanitise_segment};

/// The prefix of view snapshots in the archive bucket.
pub const VIEW_SNAPSHOT_PREFIX: &str = "view-snapshots/";

/// What a snapshot holds and where its watermark is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The table it was taken of.
    pub table: String,
    /// Per archive partition prefix, the last object applied before the snapshot (`None`: none).
    pub watermarks: BTreeMap<String, Option<String>>,
    /// The snapshot's item objects.
    pub objects: Vec<String>,
    /// How many items it holds.
    pub items: usize,
}

/// The view snapshots in the archive bucket.
#[derive(Debug, Clone)]
pub struct ViewSnapshots {
    archive: Archive,
    dynamodb: aws_sdk_dynamodb::Client,
}

impl ViewSnapshots {
    /// Snapshots kept in `archive`'s bucket, of tables reached through `dynamodb`.
    pub fn new(archive: Archive, dynamodb: aws_sdk_dynamodb::Client) -> Self {
        Self { archive, dynamodb }
    }

    fn table_prefix(table: &str) -> String {
        format!("{VIEW_SNAPSHOT_PREFIX}{}/", sanitise_segment(table))
    }

    /// Takes a snapshot of `table` at the watermark of its replay checkpoints; returns its
    /// manifest key and manifest.
    pub async fn take(&self, table: &str) -> Result<(String, Manifest), Error> {
        let checkpoints = Checkpoints::new(self.archive.clone(), table);
        let mut manifest = Manifest {
            table: table.to_owned(),
            ..Manifest::default()
        };
        for prefix in self.archive.list_partitions().await? {
            let after = checkpoints.load(&prefix).await?.and_then(|c| c.after);
            manifest.watermarks.insert(prefix, after);
        }
        let mut groups: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        crate::verify::scan_items(&self.dynamodb, table, |item| {
            let order_id = match item.get("orderId") {
                Some(AttributeValue::S(id)) => id.clone(),
                _ => return Err(Error::Codec("a view item without orderId".to_owned())),
            };
            let line = serde_json::to_vec(&serde_dynamo::Item::from(item))
                .map_err(|e| Error::Codec(format!("snapshot item {order_id}: {e}")))?;
            let group = groups
                .entry(partition_of(&format!("Order#{order_id}")))
                .or_default();
            group.extend_from_slice(&line);
            group.push(b'\n');
            manifest.items += 1;
            Ok(())
        })
        .await?;
        let taken_at = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let base = format!("{}{taken_at:020}/", Self::table_prefix(table));
        for (partition, lines) in groups {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
            encoder
                .write_all(&lines)
                .map_err(|e| Error::Codec(format!("gzip: {e}")))?;
            let body = encoder
                .finish()
                .map_err(|e| Error::Codec(format!("gzip: {e}")))?;
            let prefix = partition_prefix(partition);
            let bucket = prefix
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            let key = format!("{base}{bucket}.ndjson.gz");
            self.archive.put_json(&key, body).await?;
            manifest.objects.push(key);
        }
        let key = format!("{base}manifest.json");
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Codec(e.to_string()))?;
        self.archive.put_json(&key, body).await?;
        Ok((key, manifest))
    }

    /// The latest snapshot of `table`: its manifest key and manifest.
    pub async fn latest(&self, table: &str) -> Result<Option<(String, Manifest)>, Error> {
        let keys = self.archive.list_keys(&Self::table_prefix(table)).await?;
        let Some(key) = keys
            .into_iter()
            .filter(|key| key.ends_with("/manifest.json"))
            .max()
        else {
            return Ok(None);
        };
        let bytes = self.archive.get_bytes(&key).await?;
        let manifest =
            serde_json::from_slice(&bytes).map_err(|e| Error::Codec(format!("{key}: {e}")))?;
        Ok(Some((key, manifest)))
    }

    /// Restores `manifest` into the (empty) table `target`, and saves its watermark as the
    /// checkpoints of replays into `target`, so that a resumed replay applies only the events
    /// after it. Returns the number of items written.
    pub async fn restore(&self, manifest: &Manifest, target: &str) -> Result<usize, Error> {
        let mut written = 0;
        for key in &manifest.objects {
            let bytes = self.archive.get_bytes(key).await?;
            let mut batch = Vec::new();
            for line in BufReader::new(MultiGzDecoder::new(&bytes[..])).lines() {
                let line = line.map_err(|e| Error::Codec(format!("{key}: {e}")))?;
                if line.trim().is_empty() {
                    continue;
                }
                let item: serde_dynamo::Item =
                    serde_json::from_str(&line).map_err(|e| Error::Codec(format!("{key}: {e}")))?;
                batch.push(HashMap::<String, AttributeValue>::from(item));
                if batch.len() == 25 {
                    written += self.write(target, std::mem::take(&mut batch)).await?;
                }
            }
            if !batch.is_empty() {
                written += self.write(target, batch).await?;
            }
        }
        let checkpoints = Checkpoints::new(self.archive.clone(), target);
        for (prefix, after) in &manifest.watermarks {
            let checkpoint = Checkpoint {
                after: after.clone(),
                complete: false,
            };
            checkpoints.save(prefix, &checkpoint).await?;
        }
        Ok(written)
    }

    /// Writes up to 25 items with `BatchWriteItem`, again until none is left unprocessed.
    async fn write(
        &self,
        table: &str,
        items: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<usize, Error> {
        let count = items.len();
        let mut requests = items
            .into_iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
                    .map_err(|e| Error::Codec(format!("snapshot item: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for attempt in 0..10u32 {
            let output = self
                .dynamodb
                .batch_write_item()
                .request_items(table, requests)
                .send()
                .await
                .map_err(|e| Error::sdk("BatchWriteItem view snapshot", e))?;
            requests = output
                .unprocessed_items
                .and_then(|mut left| left.remove(table))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(count);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50 << attempt.min(5))).await;
        }
        Err(Error::Unavailable {
            service: "BatchWriteItem view snapshot",
            message: format!("{} item(s) still unprocessed", requests.len()),
        })
    }
}
