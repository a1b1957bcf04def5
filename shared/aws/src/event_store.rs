//! The DynamoDB event store: append-only streams in `ftgo-events`, snapshots in
//! `ftgo-snapshots`.
//!
//! * Loading reads the latest snapshot (if any) and then the stream's tail with a strongly
//!   consistent, fully paginated `Query`, so an aggregate of any size loads.
//! * Appending is conditional on every new `(streamId, version)` not existing yet, so two
//!   writers can never take the same version. One event is one conditional `PutItem`; several
//!   events, or an append guarded by another stream's head, are one `TransactWriteItems`.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use ftgo_domain::Aggregate;
use ftgo_domain::event::StoredEvent;
use serde::{Deserialize, Serialize};

use crate::config::{events_table, snapshots_table};
use crate::error::Error;

/// DynamoDB's cap on the items of one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// The head a writer read of a stream it does not append to: the append only lands while that
/// stream still ends at `version` (0: empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHead {
    /// The guarded stream.
    pub stream_id: String,
    /// Its last version as read.
    pub version: u64,
}

/// An aggregate folded from its snapshot and events, with the version it reached.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    /// The folded state.
    pub aggregate: A,
    /// The stream's last version (0: no events).
    pub version: u64,
    /// The version of the snapshot the load started from (0: none).
    pub snapshot_version: u64,
}

/// How a snapshot is stored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotItem<A> {
    stream_id: String,
    version: u64,
    state: A,
}

/// The event store over the event and snapshot tables.
#[derive(Debug, Clone)]
pub struct EventStore {
    client: Client,
    events_table: String,
    snapshots_table: String,
}

impl EventStore {
    /// An event store over `events_table` and `snapshots_table`.
    pub fn new(
        client: Client,
        events_table: impl Into<String>,
        snapshots_table: impl Into<String>,
    ) -> Self {
        Self {
            client,
            events_table: events_table.into(),
            snapshots_table: snapshots_table.into(),
        }
    }

    /// The events of `stream_id` with version in `after + 1 ..= up_to` (all when `up_to` is
    /// `None`), in order, read with strong consistency through every page.
    pub async fn read_stream(
        &self,
        stream_id: &str,
        after: u64,
        up_to: Option<u64>,
    ) -> Result<Vec<StoredEvent>, Error> {
        let mut events = Vec::new();
        let mut start_key = None;
        let (condition, last) = match up_to {
            Some(last) => ("#s = :s AND #v BETWEEN :first AND :last", last),
            None => ("#s = :s AND #v >= :first", u64::MAX),
        };
        let mut values = HashMap::from([
            (":s".to_owned(), AttributeValue::S(stream_id.to_owned())),
            (
                ":first".to_owned(),
                AttributeValue::N((after + 1).to_string()),
            ),
        ]);
        if up_to.is_some() {
            values.insert(":last".to_owned(), AttributeValue::N(last.to_string()));
        }
        loop {
            let query = self
                .client
                .query()
                .table_name(&self.events_table)
                .consistent_read(true)
                .key_condition_expression(condition)
                .expression_attribute_names("#s", events_table::STREAM_ID)
                .expression_attribute_names("#v", events_table::VERSION)
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start_key);
            let page = query
                .send()
                .await
                .map_err(|e| Error::sdk("Query ftgo-events", e))?;
            for item in page.items() {
                events.push(serde_dynamo::from_item(item.clone())?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => break,
            }
        }
        Ok(events)
    }

    /// Loads aggregate `id` of type `A`: its snapshot, if any decodes, then the events after it.
    pub async fn load<A: Aggregate>(&self, id: &str) -> Result<Loaded<A>, Error> {
        let stream_id = A::TYPE.stream_id(id);
        let (mut aggregate, snapshot_version) = match self.read_snapshot::<A>(&stream_id).await? {
            Some((state, version)) => (state, version),
            None => (A::default(), 0),
        };
        let mut version = snapshot_version;
        for stored in self.read_stream(&stream_id, snapshot_version, None).await? {
            aggregate.apply(&stored.decode::<A::Event>()?);
            version = stored.version;
        }
        Ok(Loaded {
            aggregate,
            version,
            snapshot_version,
        })
    }

    /// The stored snapshot of `stream_id`, or `None` when there is none or it does not decode
    /// (the caller then replays the whole stream).
    async fn read_snapshot<A: Aggregate>(
        &self,
        stream_id: &str,
    ) -> Result<Option<(A, u64)>, Error> {
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
            Ok(snapshot) => Ok(Some((snapshot.state, snapshot.version))),
            Err(error) => {
                tracing::warn!(stream_id, %error, "snapshot does not decode; replaying the whole stream");
                Ok(None)
            }
        }
    }

    /// Stores `aggregate` as the snapshot of its stream at `version`, unless a newer one is
    /// there already.
    pub async fn write_snapshot<A: Aggregate>(
        &self,
        id: &str,
        aggregate: &A,
        version: u64,
    ) -> Result<(), Error> {
        let item = serde_dynamo::to_item(SnapshotItem {
            stream_id: A::TYPE.stream_id(id),
            version,
            state: aggregate,
        })?;
        let result = self
            .client
            .put_item()
            .table_name(&self.snapshots_table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#v) OR #v < :v")
            .expression_attribute_names("#v", snapshots_table::VERSION)
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(())
            }
            Err(e) => Err(Error::sdk("PutItem ftgo-snapshots", e)),
        }
    }

    /// Appends `events` (consecutive versions of one or more streams), each conditional on its
    /// `(streamId, version)` being free, and each of `guards` conditional on that stream still
    /// ending where it was read. All or nothing; a lost race is [`Error::Conflict`].
    pub async fn append(&self, events: &[StoredEvent], guards: &[StreamHead]) -> Result<(), Error> {
        match (events, guards) {
            ([], _) => Ok(()),
            ([event], []) => self.put_one(event).await,
            _ => self.put_transaction(events, guards).await,
        }
    }

    async fn put_one(&self, event: &StoredEvent) -> Result<(), Error> {
        let result = self
            .client
            .put_item()
            .table_name(&self.events_table)
            .set_item(Some(serde_dynamo::to_item(event)?))
            .condition_expression("attribute_not_exists(#s)")
            .expression_attribute_names("#s", events_table::STREAM_ID)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(Error::Conflict(format!(
                    "{} version {} exists already",
                    event.stream_id, event.version
                )))
            }
            Err(e) => Err(Error::sdk("PutItem ftgo-events", e)),
        }
    }

    async fn put_transaction(
        &self,
        events: &[StoredEvent],
        guards: &[StreamHead],
    ) -> Result<(), Error> {
        if events.len() + guards.len() > MAX_TRANSACTION_ITEMS {
            return Err(Error::Codec(format!(
                "one command may append at most {MAX_TRANSACTION_ITEMS} items, this one needs {}",
                events.len() + guards.len()
            )));
        }
        let names = HashMap::from([("#s".to_owned(), events_table::STREAM_ID.to_owned())]);
        let mut items = Vec::with_capacity(events.len() + guards.len());
        for event in events {
            let put = Put::builder()
                .table_name(&self.events_table)
                .set_item(Some(serde_dynamo::to_item(event)?))
                .condition_expression("attribute_not_exists(#s)")
                .set_expression_attribute_names(Some(names.clone()))
                .build()
                .map_err(|e| Error::Codec(e.to_string()))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        for guard in guards {
            let check = ConditionCheck::builder()
                .table_name(&self.events_table)
                .key(
                    events_table::STREAM_ID,
                    AttributeValue::S(guard.stream_id.clone()),
                )
                .key(
                    events_table::VERSION,
                    AttributeValue::N((guard.version + 1).to_string()),
                )
                .condition_expression("attribute_not_exists(#s)")
                .set_expression_attribute_names(Some(names.clone()))
                .build()
                .map_err(|e| Error::Codec(e.to_string()))?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_transaction_canceled_exception() => {
                let reasons: Vec<String> = match e.err() {
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t) => t
                        .cancellation_reasons()
                        .iter()
                        .filter_map(|r| r.code().filter(|c| *c != "None").map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                };
                Err(Error::Conflict(format!(
                    "transaction cancelled: {}",
                    reasons.join(", ")
                )))
            }
            Err(e) => Err(Error::sdk("TransactWriteItems ftgo-events", e)),
        }
    }
}
