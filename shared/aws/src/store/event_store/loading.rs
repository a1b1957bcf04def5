//! Loading an aggregate in as few reads as its stream allows (docs/DATABASE_SCHEMA.md
//! "Loading an aggregate").
//!
//! A stream is read newest first: one strongly consistent `Query` (`ScanIndexForward = false`)
//! of at most `snapshot_interval` events — the tail.
//!
//! * When the tail reaches version 1 (or the stream is empty), the whole stream is in hand: the
//!   aggregate is folded from it, in **one round trip**. No snapshot can be needed: a stream
//!   that short has at most the one snapshot taken at its last event, and the events are here.
//! * Otherwise the stream is longer than the interval, so a snapshot can exist, and only then
//!   is it read (`GetItem`). The latest snapshot sits at the last multiple of the interval at
//!   or below the head, so the events after it are inside the tail already: **two round
//!   trips**.
//! * A missing, older or undecodable snapshot costs a forward read of the events between it and
//!   the tail (paginated), as a full replay would.
//!
//! With an `Idempotency-Key` the events after the snapshot are searched for that key; when the
//! snapshot records the key among those it folded since the previous one, the stream is read
//! from its start instead. A key older than the snapshot before the latest is not found.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_domain::Aggregate;
use ftgo_domain::event::{KeyStamp, StoredEvent};

use super::{Earlier, EventStore, Loaded, SnapshotItem};
use crate::config::{events_table, snapshots_table};
use crate::error::Error;

impl EventStore {
    /// Loads aggregate `id` as [`EventStore::load`] does and, given a `key`, what an earlier
    /// call with that `Idempotency-Key` wrote (see the module docs).
    pub async fn load_keyed<A: Aggregate>(
        &self,
        id: &str,
        key: Option<&KeyStamp>,
    ) -> Result<(Loaded<A>, Option<Earlier<A>>), Error> {
        let stream_id = A::TYPE.stream_id(id);
        let tail = self.read_tail(&stream_id).await?;
        let lowest = tail.first().map_or(1, |event| event.version);
        if lowest <= 1 {
            return fold_keyed(A::default(), 0, &tail, key);
        }
        let snapshot = self.read_snapshot::<A>(&stream_id).await?;
        let behind_snapshot = |keys: &[String]| key.is_some_and(|key| keys.contains(&key.key));
        let (aggregate, snapshot_version) = match snapshot {
            Some(snapshot) if !behind_snapshot(&snapshot.keys) => {
                (snapshot.state, snapshot.version)
            }
            Some(_) => {
                tracing::info!(
                    stream_id,
                    "the key wrote just before the snapshot; reading the whole stream"
                );
                (A::default(), 0)
            }
            None => (A::default(), 0),
        };
        let mut events = if snapshot_version + 1 < lowest {
            self.read_stream(&stream_id, snapshot_version, Some(lowest - 1))
                .await?
        } else {
            Vec::new()
        };
        events.extend(
            tail.into_iter()
                .filter(|event| event.version > snapshot_version),
        );
        fold_keyed(aggregate, snapshot_version, &events, key)
    }

    /// The last `snapshot_interval` events of `stream_id` (fewer when one page of 1 MB holds
    /// fewer), oldest first: one strongly consistent `Query`, newest first.
    async fn read_tail(&self, stream_id: &str) -> Result<Vec<StoredEvent>, Error> {
        let limit = i32::try_from(self.snapshot_interval).unwrap_or(i32::MAX);
        let page = self
            .client
            .query()
            .table_name(&self.events_table)
            .consistent_read(true)
            .scan_index_forward(false)
            .limit(limit)
            .key_condition_expression("#s = :s")
            .expression_attribute_names("#s", events_table::STREAM_ID)
            .set_expression_attribute_values(Some(HashMap::from([(
                ":s".to_owned(),
                AttributeValue::S(stream_id.to_owned()),
            )])))
            .send()
            .await
            .map_err(|e| Error::sdk("Query ftgo-events", e))?;
        let mut events = page
            .items()
            .iter()
            .map(|item| serde_dynamo::from_item(item.clone()))
            .collect::<Result<Vec<StoredEvent>, _>>()?;
        events.reverse();
        Ok(events)
    }

    /// The stored snapshot of `stream_id`, or `None` when there is none or it does not decode
    /// (the caller then replays the whole stream).
    async fn read_snapshot<A: Aggregate>(
        &self,
        stream_id: &str,
    ) -> Result<Option<SnapshotItem<A>>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.snapshots_table)
            .key(
                snapshots_table::STREAM_ID,
                AttributeValue::S(stream_id.to_owned()),
            )
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::sdk("GetItem ftgo-snapshots", e))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        match serde_dynamo::from_item::<_, SnapshotItem<A>>(item) {
            Ok(snapshot) => Ok(Some(snapshot)),
            Err(error) => {
                tracing::warn!(stream_id, %error, "snapshot does not decode; replaying the whole stream");
                Ok(None)
            }
        }
    }
}

/// Folds `events` onto `aggregate` (at `snapshot_version`) and finds what the call with `key`
/// wrote among them: the state right after its last event.
fn fold_keyed<A: Aggregate>(
    mut aggregate: A,
    snapshot_version: u64,
    events: &[StoredEvent],
    key: Option<&KeyStamp>,
) -> Result<(Loaded<A>, Option<Earlier<A>>), Error> {
    let mut version = snapshot_version;
    let mut earlier = None;
    let mut keys: Vec<String> = Vec::new();
    for stored in events {
        aggregate.apply(&stored.decode::<A::Event>()?);
        version = stored.version;
        let Some(stamp) = &stored.metadata.idempotency else {
            continue;
        };
        if keys.last() != Some(&stamp.key) {
            keys.push(stamp.key.clone());
        }
        if key.is_some_and(|key| key.key == stamp.key) {
            // The last event of that call's write decides (a command may append several).
            earlier = Some(Earlier {
                aggregate: aggregate.clone(),
                version,
                request: stamp.request.clone(),
            });
        }
    }
    Ok((
        Loaded {
            aggregate,
            version,
            snapshot_version,
            keys,
        },
        earlier,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftgo_domain::delivery::{Delivery, DeliveryEvent, DeliveryStatus};
    use ftgo_domain::event::{EventStamp, Metadata};

    fn delivery_event(version: u64, event: DeliveryEvent, key: Option<&str>) -> StoredEvent {
        StoredEvent::record(
            ftgo_domain::AggregateType::Delivery,
            "o-1",
            version,
            &event,
            EventStamp {
                event_id: format!("e-{version}"),
                occurred_at: time::OffsetDateTime::UNIX_EPOCH,
            },
            Metadata {
                idempotency: key.map(|key| KeyStamp {
                    key: key.to_owned(),
                    request: format!("body-of-{key}"),
                }),
                ..Metadata::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn a_keyed_fold_finds_the_state_its_key_left_and_lists_the_keys_it_read() {
        let events = [
            delivery_event(1, DeliveryEvent::DeliveryPickedUp {}, Some("k-1")),
            delivery_event(2, DeliveryEvent::DeliveryDelivered {}, Some("k-2")),
        ];
        let key = KeyStamp {
            key: "k-1".into(),
            request: "whatever".into(),
        };
        let (loaded, earlier) = fold_keyed(Delivery::default(), 0, &events, Some(&key)).unwrap();
        assert_eq!(loaded.version, 2);
        assert_eq!(loaded.aggregate.status, Some(DeliveryStatus::Delivered));
        assert_eq!(loaded.keys, ["k-1", "k-2"]);
        let earlier = earlier.expect("found");
        // The answer of the first call: the state right after its event, not the current one.
        assert_eq!(
            (
                earlier.version,
                earlier.aggregate.status,
                earlier.request.as_str()
            ),
            (1, Some(DeliveryStatus::PickedUp), "body-of-k-1")
        );
        let (_, none) = fold_keyed(Delivery::default(), 0, &events, None).unwrap();
        assert!(none.is_none());
    }
}
