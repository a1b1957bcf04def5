//! The `order-history-projector` Lambda: keeps `ftgo-order-history` current from the event
//! table's DynamoDB stream (DESIGN §5).
//!
//! Records are processed strictly in order, one at a time:
//! * each record's `NewImage` is decoded with `serde_dynamo` into a [`StoredEvent`] and planned
//!   into a [`ViewUpdate`] (upcasting older schema versions on the way);
//! * the update is applied with one conditional `UpdateItem` ([`OrderHistoryDao::apply`]); a
//!   duplicate is skipped; a gap is filled first by reading the missing events from the event
//!   table (strongly consistent) and applying them in order;
//! * a record that cannot be decoded goes to the projector's dead-letter queue with the whole
//!   record and the reason, and the batch goes on;
//! * a transient failure reports that record's sequence number in `batchItemFailures` and stops:
//!   Lambda retries from there, so nothing after it is skipped or applied out of turn.

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use ftgo_domain::event::StoredEvent;
use ftgo_domain::view::{ViewUpdate, plan};
use lambda_runtime::LambdaEvent;
use serde::Serialize;

use crate::config::Config;
use crate::error::Error;
use crate::event_store::EventStore;
use crate::order_history::{ApplyOutcome, OrderHistoryDao};

/// How an event fared.
#[derive(Debug, Clone, PartialEq)]
pub enum Projected {
    /// It landed.
    Applied,
    /// The view had it already.
    Duplicate,
    /// It landed after the `filled` events missing before it.
    FilledGap {
        /// How many earlier events were applied first.
        filled: usize,
    },
    /// An earlier event of the same stream is in the event table but cannot be decoded, so
    /// this one cannot land; the view of that order stays where it is from that source.
    Blocked {
        /// The undecodable earlier event.
        by: Box<StoredEvent>,
        /// Why it does not decode.
        reason: String,
    },
}

/// What the projector sends to its dead-letter queue.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter<'a> {
    /// Which function sent it.
    pub source: &'static str,
    /// Why the record was not projected.
    pub reason: &'a str,
    /// The whole stream record, as Lambda delivered it.
    pub record: &'a EventRecord,
    /// The stored event that blocks this record, when that is the reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<&'a StoredEvent>,
}

/// Decodes a stream record's new image into the stored event it holds.
pub fn decode_image(image: serde_dynamo::Item) -> Result<StoredEvent, String> {
    if image.inner().is_empty() {
        return Err("the record has no NewImage".to_owned());
    }
    serde_dynamo::from_item(image).map_err(|e| format!("NewImage is not a stored event: {e}"))
}

/// Decodes and plans one stream record: the view update it asks for, or why it cannot be read.
pub fn plan_record(record: &EventRecord) -> Result<ViewUpdate, String> {
    let event = decode_image(record.change.new_image.clone())?;
    plan(&event).map_err(|e| e.to_string())
}

/// The projector: the view it writes, the event table it fills gaps from, its dead-letter queue.
#[derive(Debug, Clone)]
pub struct Projector {
    view: OrderHistoryDao,
    store: EventStore,
    sqs: aws_sdk_sqs::Client,
    dead_letter_queue_url: String,
}

impl Projector {
    /// A projector writing `view`, reading gaps from `store`, dead-lettering to `dlq_url`.
    pub fn new(
        view: OrderHistoryDao,
        store: EventStore,
        sqs: aws_sdk_sqs::Client,
        dlq_url: impl Into<String>,
    ) -> Self {
        Self {
            view,
            store,
            sqs,
            dead_letter_queue_url: dlq_url.into(),
        }
    }

    /// The projector the Lambda runs: clients from `sdk`, names from `config`.
    pub fn from_config(sdk: &aws_config::SdkConfig, config: &Config) -> Result<Self, Error> {
        Config::require(&config.events_table, "EVENTS_TABLE")?;
        Config::require(&config.order_history_table, "ORDER_HISTORY_TABLE")?;
        Config::require(&config.projector_dlq_url, "PROJECTOR_DLQ_URL")?;
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        Ok(Self::new(
            OrderHistoryDao::new(
                dynamodb.clone(),
                &config.order_history_table,
                &config.order_history_by_consumer_index,
            ),
            EventStore::new(dynamodb, &config.events_table, &config.snapshots_table),
            aws_sdk_sqs::Client::new(sdk),
            &config.projector_dlq_url,
        ))
    }

    /// The view DAO.
    pub fn view(&self) -> &OrderHistoryDao {
        &self.view
    }

    /// Applies one planned update, filling a gap before it from the event table first.
    pub async fn project(&self, update: &ViewUpdate) -> Result<Projected, Error> {
        let missing_from = match self.view.apply(update).await? {
            ApplyOutcome::Applied => return Ok(Projected::Applied),
            ApplyOutcome::Duplicate { .. } => return Ok(Projected::Duplicate),
            ApplyOutcome::Gap { missing_from } => missing_from,
        };
        let stream_id = update.source.stream_id(&update.order_id);
        tracing::info!(stream = %stream_id, version = update.version, missing_from, "gap: reading the missing events");
        let missing = self
            .store
            .read_stream(&stream_id, missing_from - 1, Some(update.version - 1))
            .await?;
        let expected: Vec<u64> = (missing_from..update.version).collect();
        let found: Vec<u64> = missing.iter().map(|event| event.version).collect();
        if found != expected {
            return Err(Error::Projection(format!(
                "{stream_id}: needed versions {missing_from}..{} from the event table, found {found:?}",
                update.version
            )));
        }
        for event in missing {
            let earlier = match plan(&event) {
                Ok(earlier) => earlier,
                Err(error) => {
                    return Ok(Projected::Blocked {
                        reason: error.to_string(),
                        by: Box::new(event),
                    });
                }
            };
            if let ApplyOutcome::Gap { missing_from } = self.view.apply(&earlier).await? {
                return Err(Error::Projection(format!(
                    "{stream_id}: version {} still misses {missing_from} while filling a gap",
                    earlier.version
                )));
            }
        }
        match self.view.apply(update).await? {
            ApplyOutcome::Applied => Ok(Projected::FilledGap {
                filled: expected.len(),
            }),
            ApplyOutcome::Duplicate { .. } => Ok(Projected::Duplicate),
            ApplyOutcome::Gap { missing_from } => Err(Error::Projection(format!(
                "{stream_id}: version {} still misses {missing_from} after filling the gap",
                update.version
            ))),
        }
    }

    /// Sends `record` to the dead-letter queue with `reason`.
    pub async fn dead_letter(
        &self,
        record: &EventRecord,
        reason: &str,
        blocked_by: Option<&StoredEvent>,
    ) -> Result<(), Error> {
        let body = serde_json::to_string(&DeadLetter {
            source: "order-history-projector",
            reason,
            record,
            blocked_by,
        })
        .map_err(|e| Error::Codec(e.to_string()))?;
        self.sqs
            .send_message()
            .queue_url(&self.dead_letter_queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| Error::aws("SendMessage projector DLQ", e))?;
        Ok(())
    }

    /// Projects one stream record. `Err` is transient: the record must be retried.
    pub async fn process_record(&self, record: &EventRecord) -> Result<(), Error> {
        if record.event_name == "REMOVE" {
            tracing::warn!(event_id = %record.event_id, "an event was removed from the event table; the view keeps it");
            return Ok(());
        }
        let update = match plan_record(record) {
            Ok(update) => update,
            Err(reason) => {
                tracing::error!(event_id = %record.event_id, %reason, "undecodable record: dead-lettered");
                return self.dead_letter(record, &reason, None).await;
            }
        };
        match self.project(&update).await? {
            Projected::Blocked { by, reason } => {
                let reason = format!(
                    "{} version {} cannot be projected: version {} of the same stream in the event table does not decode ({reason})",
                    update.source.stream_id(&update.order_id),
                    update.version,
                    by.version
                );
                tracing::error!(event_id = %record.event_id, %reason, "blocked record: dead-lettered");
                self.dead_letter(record, &reason, Some(&by)).await
            }
            outcome => {
                tracing::debug!(order_id = %update.order_id, source = %update.source, version = update.version, ?outcome, "projected");
                Ok(())
            }
        }
    }

    /// Projects a batch in order; stops at the first transient failure and reports it.
    pub async fn process_batch(&self, event: &Event) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        for record in &event.records {
            if let Err(error) = self.process_record(record).await {
                let identifier = record
                    .change
                    .sequence_number
                    .clone()
                    .unwrap_or_else(|| record.event_id.clone());
                tracing::warn!(sequence_number = %identifier, %error, "transient failure: Lambda retries from this record");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(identifier);
                response.batch_item_failures.push(failure);
                break;
            }
        }
        response
    }
}

/// Serves one invocation of the `order-history-projector` function.
pub async fn handle(
    projector: &Projector,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, lambda_runtime::Error> {
    Ok(projector.process_batch(&event.payload).await)
}
