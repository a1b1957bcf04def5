//! The DynamoDB event store: append-only streams in `ftgo-events`, snapshots in
//! `ftgo-snapshots`.
//!
//! * Loading reads the stream's tail first, newest first, with one strongly consistent `Query`
//!   of as many events as the snapshot interval; only a stream longer than that can have a
//!   snapshot, and only then is the snapshot read ([`loading`]). An aggregate of any size loads.
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
//! * A write whose outcome is unknown after the SDK's retries (timeout, lost answer, 5xx,
//!   throttling, `TransactionInProgressException`) is settled before it is answered: resent
//!   under the same `ClientRequestToken`, then read back by its first event's key ([`settle`]).
//!   A write that landed is never answered as a failure; one that did not is
//!   [`Error::Unavailable`] (503), never a conflict.
//! * Loading with an `Idempotency-Key` ([`EventStore::load_keyed`]) also finds the events an
//!   earlier call with that key wrote, and the state they left ([`Earlier`]).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use ftgo_domain::Aggregate;
use ftgo_domain::event::StoredEvent;
use serde::{Deserialize, Serialize};

use crate::config::{events_table, snapshots_table};
use crate::error::Error;

mod cancellation;
pub mod loading;
pub mod settle;

use cancellation::stored_event_id;
pub use cancellation::{Cancellation, Reason, classify_cancellation};
pub use settle::SettlePolicy;

/// How a failed read-back's message starts (the append's outcome is still unknown).
const READ_BACK_FAILED: &str = "the append's outcome is unknown and reading it back failed";

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

/// An aggregate folded from its snapshot and events, with the version it reached.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    /// The folded state.
    pub aggregate: A,
    /// The stream's last version (0: no events).
    pub version: u64,
    /// The version of the snapshot the load started from (0: none).
    pub snapshot_version: u64,
    /// The `Idempotency-Key` digests of the events read after that snapshot: what the next
    /// snapshot records, so that a key just behind it is still found.
    pub keys: Vec<String>,
}

/// What an earlier call with the same `Idempotency-Key` wrote, found while loading: the state
/// its events left and the version they ended at — the first call's answer.
#[derive(Debug, Clone)]
pub struct Earlier<A> {
    /// The aggregate right after that call's events.
    pub aggregate: A,
    /// The version of that call's last event.
    pub version: u64,
    /// The digest of that call's request body.
    pub request: String,
}

/// How a snapshot is stored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotItem<A> {
    stream_id: String,
    version: u64,
    state: A,
    /// The `Idempotency-Key` digests of the events since the previous snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    keys: Vec<String>,
}

/// The event store over the event and snapshot tables.
#[derive(Debug, Clone)]
pub struct EventStore {
    client: Client,
    events_table: String,
    snapshots_table: String,
    settle: SettlePolicy,
    snapshot_interval: u64,
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
            settle: SettlePolicy::default(),
            snapshot_interval: crate::config::DEFAULT_SNAPSHOT_INTERVAL,
        }
    }

    /// The same store, for streams snapshotted every `interval` events: a load reads that many
    /// events of a stream's tail before it asks for a snapshot.
    pub fn with_snapshot_interval(mut self, interval: u64) -> Self {
        self.snapshot_interval = interval.max(1);
        self
    }

    /// The same store, settling unknown append outcomes under `policy`.
    pub fn with_settle_policy(mut self, policy: SettlePolicy) -> Self {
        self.settle = policy;
        self
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

    /// Loads aggregate `id` of type `A`: the stream's tail, and its snapshot only when the tail
    /// shows that the stream is long enough to have one (see [`loading`]).
    pub async fn load<A: Aggregate>(&self, id: &str) -> Result<Loaded<A>, Error> {
        Ok(self.load_keyed(id, None).await?.0)
    }

    /// Stores `aggregate` as the snapshot of its stream at `version`, unless a newer one is
    /// there already, with the `Idempotency-Key` digests (`keys`) of the events it folded since
    /// the previous snapshot.
    pub async fn write_snapshot<A: Aggregate>(
        &self,
        id: &str,
        aggregate: &A,
        version: u64,
        keys: Vec<String>,
    ) -> Result<(), Error> {
        let item = serde_dynamo::to_item(SnapshotItem {
            stream_id: A::TYPE.stream_id(id),
            version,
            state: aggregate,
            keys,
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
            Err(e) if settle::outcome_unknown(&e) => {
                let error = Error::sdk("PutItem ftgo-events", e);
                tracing::warn!(stream = %event.stream_id, version = event.version, %error, "append outcome unknown; reading it back");
                self.read_back(event, error).await
            }
            Err(e) => Err(Error::sdk("PutItem ftgo-events", e)),
        }
    }

    /// Settles a write of `first` (an append's first event) whose outcome is unknown after
    /// `error`: a consistent read of its `(streamId, version)` tells whether it landed.
    ///
    /// The read is retried here, with the settle backoff while the settle budget lasts, not
    /// only by the SDK: its retry quota is shared by every client of the process and refuses
    /// retries once emptied (a run of faults), and an unread outcome answered 503 would tell
    /// the client that a write which landed did not.
    async fn read_back(&self, first: &StoredEvent, error: Error) -> Result<Appended, Error> {
        let started = std::time::Instant::now();
        let mut read = 0;
        loop {
            match self.read_back_once(first, &error).await {
                Err(Error::Unavailable { message, .. })
                    if message.starts_with(READ_BACK_FAILED) =>
                {
                    let delay = self.settle.backoff(read);
                    if started.elapsed() + delay >= self.settle.budget {
                        return Err(Error::Unavailable {
                            service: "GetItem ftgo-events",
                            message,
                        });
                    }
                    read += 1;
                    tokio::time::sleep(delay).await;
                }
                settled => return settled,
            }
        }
    }

    async fn read_back_once(&self, first: &StoredEvent, error: &Error) -> Result<Appended, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.events_table)
            .key(
                events_table::STREAM_ID,
                AttributeValue::S(first.stream_id.clone()),
            )
            .key(
                events_table::VERSION,
                AttributeValue::N(first.version.to_string()),
            )
            .projection_expression("#e")
            .expression_attribute_names("#e", events_table::EVENT_ID)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::Unavailable {
                service: "GetItem ftgo-events",
                message: format!(
                    "{READ_BACK_FAILED} ({error}): {}",
                    Error::sdk("GetItem ftgo-events", e)
                ),
            })?;
        match output.item.as_ref().and_then(stored_event_id) {
            Some(stored) if stored == first.event_id => {
                tracing::info!(stream = %first.stream_id, version = first.version, "append read back: it landed");
                Ok(Appended::AlreadyStored)
            }
            Some(_) => Err(Error::Conflict(format!(
                "{} version {} exists already",
                first.stream_id, first.version
            ))),
            None => Err(Error::Unavailable {
                service: "append ftgo-events",
                message: format!("the write did not land ({error}); retry"),
            }),
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
        let request = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(settle::transaction_token(
                events,
                guards.iter().map(|g| (g.stream_id.as_str(), g.version)),
            ));
        self.send_transaction(request, events).await
    }

    /// Sends a transaction, and resends it under its token while its outcome is unknown and
    /// the settle budget lasts; then reads it back.
    async fn send_transaction(
        &self,
        request: TransactWriteItemsFluentBuilder,
        events: &[StoredEvent],
    ) -> Result<Appended, Error> {
        let started = tokio::time::Instant::now();
        let mut resend = 0;
        loop {
            let error = match self.transact(request.clone(), events).await {
                Ok(appended) => return Ok(appended),
                Err(Sent::Settled(error)) => return Err(error),
                Err(Sent::Unknown(error)) => error,
            };
            let delay = self.settle.backoff(resend);
            if started.elapsed() + delay >= self.settle.budget {
                tracing::warn!(stream = %events[0].stream_id, %error, resend, "transaction outcome still unknown; reading it back");
                return self.read_back(&events[0], error).await;
            }
            tracing::info!(stream = %events[0].stream_id, %error, resend, "transaction outcome unknown; resending it under its token");
            tokio::time::sleep(delay).await;
            resend += 1;
        }
    }

    /// One send of a transaction and what its answer says.
    async fn transact(
        &self,
        request: TransactWriteItemsFluentBuilder,
        events: &[StoredEvent],
    ) -> Result<Appended, Sent> {
        match request.send().await {
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
                    Cancellation::Conflict(reason) => Err(Sent::Settled(Error::Conflict(reason))),
                    // Cancelled for throttling: this attempt wrote nothing, but an earlier
                    // attempt the SDK retried may have landed.
                    Cancellation::Throttled(message) => Err(Sent::Unknown(Error::Unavailable {
                        service: "TransactWriteItems ftgo-events",
                        message,
                    })),
                    Cancellation::Invalid(message) => Err(Sent::Settled(Error::Aws {
                        service: "TransactWriteItems ftgo-events",
                        message,
                    })),
                }
            }
            Err(e) if settle::outcome_unknown(&e) => Err(Sent::Unknown(Error::sdk(
                "TransactWriteItems ftgo-events",
                e,
            ))),
            Err(e) => Err(Sent::Settled(Error::sdk(
                "TransactWriteItems ftgo-events",
                e,
            ))),
        }
    }
}

/// Why one send of a transaction did not succeed.
enum Sent {
    /// Its answer settles it: a lost race, a refused request.
    Settled(Error),
    /// It may have landed, or may still land.
    Unknown(Error),
}
