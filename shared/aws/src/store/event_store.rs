//! The DynamoDB event store: append-only streams in `ftgo-events`, snapshots in
//! `ftgo-snapshots`.
//!
//! * Loading reads the latest snapshot (if any) and then the stream's tail with a strongly
//!   consistent, fully paginated `Query`, so an aggregate of any size loads.
//! * Appending is conditional on every new `(streamId, version)` not existing yet, so two
//!   writers can never take the same version. One event is one conditional `PutItem`; several
//!   events, or an append guarded by another stream's head, are one `TransactWriteItems`.
//! * An append is never ambiguous: every conditional write asks for the item that failed its
//!   condition (`ReturnValuesOnConditionCheckFailure = ALL_OLD`). When the SDK retried a write
//!   whose first attempt landed but whose answer was lost, the stored item carries this append's
//!   own `eventId`, and the append reports [`Appended::AlreadyStored`] instead of a conflict.
//! * A cancelled transaction is told apart by its reasons: a failed condition or a
//!   `TransactionConflict` is a lost race ([`Error::Conflict`]), throttling is
//!   [`Error::Unavailable`], anything else (a `ValidationError`) an internal [`Error::Aws`].

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};
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

/// How an append ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The events were written by this call.
    Written,
    /// The events were already stored with this append's own event ids: an earlier attempt of
    /// this very write landed (its answer was lost and the SDK retried). The command succeeded.
    AlreadyStored,
}

/// What a cancelled `TransactWriteItems` means, read from its cancellation reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancellation {
    /// A stored item carries one of this append's event ids: the transaction landed earlier.
    OwnWrite,
    /// A condition failed or another transaction touched an item: a lost race.
    Conflict(String),
    /// DynamoDB throttled the transaction: retry later.
    Throttled(String),
    /// DynamoDB refused the request itself (`ValidationError`, size limits, unknown codes): a
    /// defect, never to be answered as a conflict.
    Invalid(String),
}

/// One cancellation reason as DynamoDB reports it: its code and, for a failed condition with
/// `ALL_OLD`, the `eventId` of the item it found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reason {
    /// `None`, `ConditionalCheckFailed`, `TransactionConflict`, `ThrottlingError`, ...
    pub code: Option<String>,
    /// The stored item's `eventId`, when the reason carries the item.
    pub stored_event_id: Option<String>,
}

impl Reason {
    fn from_sdk(reason: &CancellationReason) -> Self {
        Self {
            code: reason.code().map(str::to_owned),
            stored_event_id: reason.item().and_then(stored_event_id),
        }
    }
}

/// The `eventId` of a stored event item.
fn stored_event_id(item: &HashMap<String, AttributeValue>) -> Option<String> {
    match item.get(events_table::EVENT_ID) {
        Some(AttributeValue::S(id)) => Some(id.clone()),
        _ => None,
    }
}

/// Classifies a cancelled transaction that wrote `own_event_ids` (in its first items).
///
/// Any stored item with one of our event ids proves the transaction committed before (a
/// transaction is all or nothing, and event ids are unique), whatever the other reasons say.
/// Otherwise a validation error wins (it is a defect), then a lost race (failed condition or
/// `TransactionConflict`: reloading settles it), then throttling.
pub fn classify_cancellation(reasons: &[Reason], own_event_ids: &[&str]) -> Cancellation {
    let own = reasons.iter().any(|r| {
        r.code.as_deref() == Some("ConditionalCheckFailed")
            && r.stored_event_id
                .as_deref()
                .is_some_and(|id| own_event_ids.contains(&id))
    });
    if own {
        return Cancellation::OwnWrite;
    }
    let codes: Vec<&str> = reasons
        .iter()
        .filter_map(|r| r.code.as_deref())
        .filter(|code| *code != "None")
        .collect();
    let summary = codes.join(", ");
    let has = |wanted: &[&str]| codes.iter().any(|code| wanted.contains(code));
    let known = [
        "ConditionalCheckFailed",
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    ];
    if codes.is_empty() || codes.iter().any(|code| !known.contains(code)) {
        Cancellation::Invalid(format!("transaction cancelled: [{summary}]"))
    } else if has(&["ConditionalCheckFailed", "TransactionConflict"]) {
        Cancellation::Conflict(format!("transaction cancelled: {summary}"))
    } else {
        Cancellation::Throttled(format!("transaction cancelled: {summary}"))
    }
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

    /// The DynamoDB client (for reads that span streams, such as a repair's scan).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The event table's name.
    pub fn events_table(&self) -> &str {
        &self.events_table
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
    /// ending where it was read. All or nothing; a lost race is [`Error::Conflict`], throttling
    /// [`Error::Unavailable`]. When the events turn out to be stored already under their own
    /// event ids (an SDK retry of a write that landed), the answer is [`Appended::AlreadyStored`].
    pub async fn append(
        &self,
        events: &[StoredEvent],
        guards: &[StreamHead],
    ) -> Result<Appended, Error> {
        match (events, guards) {
            ([], _) => Ok(Appended::Written),
            ([event], []) => self.put_one(event).await,
            _ => self.put_transaction(events, guards).await,
        }
    }

    async fn put_one(&self, event: &StoredEvent) -> Result<Appended, Error> {
        let result = self
            .client
            .put_item()
            .table_name(&self.events_table)
            .set_item(Some(serde_dynamo::to_item(event)?))
            .condition_expression("attribute_not_exists(#s)")
            .expression_attribute_names("#s", events_table::STREAM_ID)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Appended::Written),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let stored = match e.err() {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(failed) => {
                        failed.item().and_then(stored_event_id)
                    }
                    _ => None,
                };
                if stored.as_deref() == Some(event.event_id.as_str()) {
                    tracing::info!(stream = %event.stream_id, version = event.version, "append found its own event stored (a retried write that landed)");
                    return Ok(Appended::AlreadyStored);
                }
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
    ) -> Result<Appended, Error> {
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
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
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
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
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
            Ok(_) => Ok(Appended::Written),
            Err(SdkError::ServiceError(e)) if e.err().is_transaction_canceled_exception() => {
                let reasons: Vec<Reason> = match e.err() {
                    TransactWriteItemsError::TransactionCanceledException(cancelled) => cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(Reason::from_sdk)
                        .collect(),
                    _ => Vec::new(),
                };
                let own: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
                match classify_cancellation(&reasons, &own) {
                    Cancellation::OwnWrite => {
                        tracing::info!(stream = %events[0].stream_id, "append found its own events stored (a retried transaction that landed)");
                        Ok(Appended::AlreadyStored)
                    }
                    Cancellation::Conflict(reason) => Err(Error::Conflict(reason)),
                    Cancellation::Throttled(message) => Err(Error::Unavailable {
                        service: "TransactWriteItems ftgo-events",
                        message,
                    }),
                    Cancellation::Invalid(message) => Err(Error::Aws {
                        service: "TransactWriteItems ftgo-events",
                        message,
                    }),
                }
            }
            Err(e) => Err(Error::sdk("TransactWriteItems ftgo-events", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: &str, stored: Option<&str>) -> Reason {
        Reason {
            code: Some(code.to_owned()),
            stored_event_id: stored.map(str::to_owned),
        }
    }

    #[test]
    fn a_stored_item_with_our_event_id_is_our_own_write() {
        let reasons = [
            reason("ConditionalCheckFailed", Some("e-1")),
            reason("ConditionalCheckFailed", Some("e-2")),
            reason("None", None),
        ];
        assert_eq!(
            classify_cancellation(&reasons, &["e-1", "e-2"]),
            Cancellation::OwnWrite
        );
        // Even when the guard also fails now (the other stream moved on since).
        let reasons = [
            reason("ConditionalCheckFailed", Some("e-1")),
            reason("ConditionalCheckFailed", Some("delivery-7")),
        ];
        assert_eq!(
            classify_cancellation(&reasons, &["e-1"]),
            Cancellation::OwnWrite
        );
    }

    #[test]
    fn another_writers_item_or_a_transaction_conflict_is_a_lost_race() {
        let taken = [
            reason("ConditionalCheckFailed", Some("theirs")),
            reason("None", None),
        ];
        assert!(matches!(
            classify_cancellation(&taken, &["mine"]),
            Cancellation::Conflict(_)
        ));
        let racing = [reason("None", None), reason("TransactionConflict", None)];
        assert!(matches!(
            classify_cancellation(&racing, &["mine"]),
            Cancellation::Conflict(_)
        ));
        // A failed condition without the item (no ALL_OLD) is still a conflict.
        let bare = [reason("ConditionalCheckFailed", None)];
        assert!(matches!(
            classify_cancellation(&bare, &["mine"]),
            Cancellation::Conflict(_)
        ));
    }

    #[test]
    fn throttling_is_not_a_conflict() {
        for code in ["ThrottlingError", "ProvisionedThroughputExceeded"] {
            let reasons = [reason("None", None), reason(code, None)];
            assert!(
                matches!(
                    classify_cancellation(&reasons, &["mine"]),
                    Cancellation::Throttled(_)
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn validation_errors_and_unknown_codes_are_never_a_conflict() {
        for code in [
            "ValidationError",
            "ItemCollectionSizeLimitExceeded",
            "Mystery",
        ] {
            let reasons = [
                reason(code, None),
                reason("ConditionalCheckFailed", Some("x")),
            ];
            assert!(
                matches!(
                    classify_cancellation(&reasons, &["mine"]),
                    Cancellation::Invalid(_)
                ),
                "{code}"
            );
        }
        assert!(matches!(
            classify_cancellation(&[], &["mine"]),
            Cancellation::Invalid(_)
        ));
    }
}
