//! The two-step rebuild: a compacted snapshot of a view table at a watermark, and a rebuild that
//! starts from it and replays only the archived events after the watermark (`ftgo snapshot-view`,
//! `ftgo replay --from-snapshot`).
//!
//! A snapshot is taken of a table that a replay keeps ([`Checkpoints`]): its watermark is, per
//! archive partition, the replay's record of the objects it applied, read **before** the table
//! is scanned. The table only moves forward, so every item is at or past the watermark; the
//! objects not in the record are applied again on rebuild, and the events an item has seen
//! already are duplicates under the strict rule. So restoring the snapshot into an empty table,
//! giving the new table the watermark as its record and resuming the replay yields the same
//! items as a full replay (tested).
//!
//! A restore never moves an item backwards: each item is a `PutItem` conditional on the
//! duplicate-detection versions ([`restore_condition`]), so an item the target holds at a newer
//! version stays; it never replaces a target's own replay checkpoints; and it refuses a target
//! that holds anything unless told otherwise.
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};

use aws_sdk_dynamodb::types::AttributeValue;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use ftgo_domain::AggregateType;
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::replay_checkpoints::{Checkpoint, Checkpoints};
use crate::store::archive::{Archive, partition_of, partition_prefix, sanitise_segment};
use crate::store::order_history::version_attribute;

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
    /// Per archive partition prefix, every object applied before the snapshot (the replay's
    /// record, [`Checkpoints::done`]): what a resumed replay skips after a restore. A manifest
    /// without it (older snapshots) gives a restored table no record: the replay after it
    /// reads every object again, and the events the items hold are duplicates.
    #[serde(default)]
    pub done: BTreeMap<String, Vec<String>>,
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
            let done = checkpoints.done(&prefix).await?;
            manifest
                .done
                .insert(prefix.clone(), done.into_iter().collect());
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

    /// Restores `manifest` into table `target` without ever moving an item backwards, and
    /// gives `target` the snapshot's record of applied objects unless it has its own.
    ///
    /// * Each item is written with a conditional `PutItem` ([`restore_condition`]): it lands
    ///   only where `target` holds nothing newer, by every source's duplicate-detection
    ///   version; an item the target already has at a newer version is kept as it is
    ///   ([`Restored::kept_newer`]). `RESTORE_CONCURRENCY` writes at a time (the SDK retries
    ///   throttling with its own retry configuration).
    /// * A partition whose replay checkpoints `target` already has keeps them; the others get
    ///   the snapshot's, so that a resumed replay applies only the objects after it.
    /// * A `target` that holds any item is refused unless `into_non_empty` (`ftgo replay
    ///   --from-snapshot … --into-non-empty`): restoring into the live view is a deliberate act.
    pub async fn restore(
        &self,
        manifest: &Manifest,
        target: &str,
        into_non_empty: bool,
    ) -> Result<Restored, Error> {
        if !into_non_empty && !self.is_empty(target).await? {
            return Err(Error::Projection(format!(
                "table {target} is not empty: a snapshot restore refuses it unless told \
                 otherwise (`--into-non-empty`; items the table holds at a newer version \
                 are kept)"
            )));
        }
        let mut restored = Restored::default();
        for key in &manifest.objects {
            let bytes = self.archive.get_bytes(key).await?;
            let items = BufReader::new(MultiGzDecoder::new(&bytes[..]))
                .lines()
                .filter(|line| line.as_ref().map_or(true, |l| !l.trim().is_empty()))
                .map(|line| {
                    let line = line.map_err(|e| Error::Codec(format!("{key}: {e}")))?;
                    let item: serde_dynamo::Item = serde_json::from_str(&line)
                        .map_err(|e| Error::Codec(format!("{key}: {e}")))?;
                    Ok::<_, Error>(HashMap::<String, AttributeValue>::from(item))
                });
            let mut outcomes = stream::iter(items)
                .map(|item| async move { self.put_unless_newer(target, item?).await })
                .buffer_unordered(RESTORE_CONCURRENCY);
            while let Some(outcome) = outcomes.next().await {
                if outcome? {
                    restored.written += 1;
                } else {
                    restored.kept_newer += 1;
                }
            }
        }
        let checkpoints = Checkpoints::new(self.archive.clone(), target);
        let prefixes: BTreeSet<&String> = manifest
            .watermarks
            .keys()
            .chain(manifest.done.keys())
            .collect();
        for prefix in prefixes {
            if checkpoints.exist(prefix).await? {
                restored.checkpoints_kept.push(prefix.clone());
                continue;
            }
            for object in manifest.done.get(prefix).into_iter().flatten() {
                checkpoints.mark_done(object).await?;
            }
            let checkpoint = Checkpoint {
                after: manifest.watermarks.get(prefix).cloned().flatten(),
                complete: false,
            };
            checkpoints.save(prefix, &checkpoint).await?;
        }
        Ok(restored)
    }

    /// Whether `table` holds no item (one `Scan` of at most one item).
    pub async fn is_empty(&self, table: &str) -> Result<bool, Error> {
        let output = self
            .dynamodb
            .scan()
            .table_name(table)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::sdk("Scan view (is it empty?)", e))?;
        Ok(output.items().is_empty())
    }

    /// Writes `item` unless `table` holds it at a newer version: `true` when it landed.
    async fn put_unless_newer(
        &self,
        table: &str,
        item: HashMap<String, AttributeValue>,
    ) -> Result<bool, Error> {
        let condition = restore_condition(&item);
        let result = self
            .dynamodb
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression(condition.expression)
            .set_expression_attribute_names(Some(condition.names))
            .set_expression_attribute_values(
                Some(condition.values).filter(|values| !values.is_empty()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(Error::sdk("PutItem view snapshot", error)),
        }
    }
}

/// How many items a restore writes at once.
pub const RESTORE_CONCURRENCY: usize = 16;

/// The duplicate-detection attributes of the view, one per source aggregate.
pub const VERSION_ATTRIBUTES: [&str; 2] = [
    version_attribute(AggregateType::Order),
    version_attribute(AggregateType::Delivery),
];

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Items written.
    pub written: usize,
    /// Items not written because the target holds them at a newer version.
    pub kept_newer: usize,
    /// Partitions whose replay checkpoints the target had already, and kept.
    pub checkpoints_kept: Vec<String>,
}

/// A condition expression with its names and values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Condition {
    /// The expression.
    pub expression: String,
    /// Its `#name` placeholders.
    pub names: HashMap<String, String>,
    /// Its `:value` placeholders.
    pub values: HashMap<String, AttributeValue>,
}

/// The condition under which a snapshot's `item` may replace what the table holds: for every
/// source, the stored version is absent or not above the item's (absent when the item has
/// none). So a restore never moves an item backwards; a missing item always lands.
pub fn restore_condition(item: &HashMap<String, AttributeValue>) -> Condition {
    let mut condition = Condition::default();
    let mut clauses = Vec::new();
    for (index, attribute) in VERSION_ATTRIBUTES.into_iter().enumerate() {
        let name = format!("#v{index}");
        condition.names.insert(name.clone(), attribute.to_owned());
        match item.get(attribute) {
            Some(version) => {
                let value = format!(":v{index}");
                clauses.push(format!(
                    "(attribute_not_exists({name}) OR {name} <= {value})"
                ));
                condition.values.insert(value, version.clone());
            }
            None => clauses.push(format!("attribute_not_exists({name})")),
        }
    }
    condition.expression = clauses.join(" AND ");
    condition
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_lands_only_where_nothing_newer_is_stored() {
        let item = HashMap::from([
            ("orderId".to_owned(), AttributeValue::S("o-1".into())),
            ("orderVersion".to_owned(), AttributeValue::N("3".into())),
        ]);
        let condition = restore_condition(&item);
        assert_eq!(
            condition.expression,
            "(attribute_not_exists(#v0) OR #v0 <= :v0) AND attribute_not_exists(#v1)"
        );
        assert_eq!(condition.names["#v0"], "orderVersion");
        assert_eq!(condition.names["#v1"], "deliveryVersion");
        assert_eq!(condition.values[":v0"], AttributeValue::N("3".into()));
        assert_eq!(condition.values.len(), 1);
    }
}
