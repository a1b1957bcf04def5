//! The `order-history-projector` Lambda: keeps `ftgo-order-history` current from the event
//! table's DynamoDB stream (DESIGN §5).
//!
//! A batch is worked stream by stream (`batch`): the records of different event streams
//! (`Order#…`, `Delivery#…`) concurrently, at most [`MAX_CONCURRENT_STREAMS`] at once; the
//! records of one stream strictly in version order:
//! * each record's `NewImage` is decoded into a [`StoredEvent`] and planned into a
//!   [`ViewUpdate`] (upcasting older schema versions on the way);
//! * consecutive versions of one stream coalesce into one conditional `UpdateItem`
//!   ([`OrderHistoryDao::apply`]; guarded on the first version, recording the last); a
//!   duplicate is skipped, the part of a run already applied is dropped; a gap is filled first
//!   by reading the missing events from the event table (strongly consistent, at most
//!   [`GAP_READ_CHUNK`] events a read), which land together with the run (`run`);
//! * a record that cannot be projected — undecodable, a corrupt version, a confirmed gap (the
//!   consistent read shows that the missing versions do not exist), blocked by an undecodable
//!   earlier event, a `REMOVE`, or a call AWS refuses for this record — goes to the projector's
//!   dead-letter queue with the whole record, a machine-readable [`DeadLetterReason`] and a
//!   human message, and the batch goes on;
//! * a failure that is not the record's ([`disposition`]: throttling, a 5xx, a timeout, a lost
//!   answer, or a refusal for the deployment's configuration such as access denied) — and any
//!   failure to send a dead letter — reports that record's sequence number in
//!   `batchItemFailures`, with every record of its stream not yet projected, and that stream
//!   stops (the others go on): Lambda checkpoints at the lowest sequence number reported and
//!   retries every record from there, without limit (`MaximumRetryAttempts: -1` in the
//!   template), so nothing is skipped (what landed after it comes again and is a duplicate),
//!   and the function's `IteratorAge` alarms while it lasts. A record is never skipped for a
//!   failure that is not its own.

mod batch;
mod dead_letter;
mod repair;
mod run;

use aws_lambda_events::dynamodb::EventRecord;
use ftgo_domain::event::StoredEvent;
use ftgo_domain::view::ViewUpdate;

pub use batch::MAX_CONCURRENT_STREAMS;
pub use dead_letter::{
    DeadLetter, DeadLetterReason, MAX_DEAD_LETTER_BYTES, dead_letter_body, sqs_safe,
};
pub use repair::Repair;
pub use run::Landed;

use crate::config::Config;
use crate::error::Error;
use crate::store::event_store::EventStore;
use crate::store::order_history::OrderHistoryDao;
use crate::store::stream_image::{check_version, plan_record};

/// At most this many events are read from the event table at once while filling a gap; a longer
/// gap is filled chunk by chunk, so a corrupt (huge) version never becomes an unbounded read.
pub const GAP_READ_CHUNK: u64 = 100;

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
    /// A confirmed gap: a strongly consistent read of the event table shows that version
    /// `missing` of the stream, before this event, does not exist (deleted by hand, lost in a
    /// restore), so this event can never land. The events before `missing` were applied.
    ConfirmedGap {
        /// The first version that is not in the event table.
        missing: u64,
        /// Whether the event table holds this event's own version: when it does not either, the
        /// version the record names is corrupt rather than its predecessors lost.
        recorded: bool,
    },
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

    /// The event store gaps are filled from (`ftgo dlq redrive` reads dead letters' events there).
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Applies one planned update, filling a gap before it from the event table first (read in
    /// chunks of at most [`GAP_READ_CHUNK`] events). `Err` is a failure to talk to AWS (or
    /// something retrying cannot cure; see [`disposition`]).
    pub async fn project(&self, update: &ViewUpdate) -> Result<Projected, Error> {
        Ok(self.project_run(std::slice::from_ref(update)).await?.0)
    }

    /// Sends `record` to the dead-letter queue with `reason` and `message`.
    pub async fn dead_letter(
        &self,
        record: &EventRecord,
        reason: DeadLetterReason,
        message: &str,
        blocked_by: Option<&StoredEvent>,
    ) -> Result<(), Error> {
        tracing::error!(event_id = %record.event_id, %reason, %message, "record dead-lettered");
        let body = dead_letter_body(record, reason, message, blocked_by)?;
        self.sqs
            .send_message()
            .queue_url(&self.dead_letter_queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| Error::sdk("SendMessage projector DLQ", e))?;
        crate::telemetry::count(crate::telemetry::names::DEAD_LETTERED, 1);
        Ok(())
    }

    /// Projects one stream record, dead-lettering what can never be projected. `Err` means the
    /// record must be retried: a failure that is not the record's ([`disposition`]), or a dead
    /// letter that could not be sent.
    pub async fn process_record(&self, record: &EventRecord) -> Result<(), Error> {
        if record.event_name == "REMOVE" {
            let message = "an event was removed from the event table; the view keeps it";
            return self
                .dead_letter(record, DeadLetterReason::Removed, message, None)
                .await;
        }
        let update = match plan_record(record) {
            Ok(update) => update,
            Err(reason) => {
                let (kind, message) = match check_version(record) {
                    Err(why) => (DeadLetterReason::CorruptVersion, why),
                    Ok(()) => (DeadLetterReason::Undecodable, reason),
                };
                return self.dead_letter(record, kind, &message, None).await;
            }
        };
        let stream_id = update.source.stream_id(&update.order_id);
        let outcome = match self.project(&update).await {
            Ok(outcome) => outcome,
            Err(error) => match disposition(&error) {
                Disposition::Retry | Disposition::RetryMisconfigured => return Err(error),
                Disposition::DeadLetter => {
                    let message = format!(
                        "{stream_id} version {} cannot be projected: {error}",
                        update.version
                    );
                    return self
                        .dead_letter(record, DeadLetterReason::Unprojectable, &message, None)
                        .await;
                }
            },
        };
        match outcome {
            Projected::Blocked { by, reason } => {
                let message = format!(
                    "{stream_id} version {} cannot be projected: version {} of the same stream in the event table does not decode ({reason})",
                    update.version, by.version
                );
                self.dead_letter(record, DeadLetterReason::Blocked, &message, Some(&by))
                    .await
            }
            Projected::ConfirmedGap { missing, recorded } => {
                let (kind, message) = if recorded {
                    (
                        DeadLetterReason::ConfirmedGap,
                        format!(
                            "{stream_id} version {} cannot be projected: version {missing} is not in the event table (consistent read)",
                            update.version
                        ),
                    )
                } else {
                    (
                        DeadLetterReason::CorruptVersion,
                        format!(
                            "{stream_id} version {}: neither this version nor version {missing} is in the event table (consistent read)",
                            update.version
                        ),
                    )
                };
                self.dead_letter(record, kind, &message, None).await
            }
            outcome => {
                count_outcome(&outcome);
                tracing::debug!(order_id = %update.order_id, source = %update.source, version = update.version, ?outcome, "projected");
                Ok(())
            }
        }
    }
}

/// Counts how one record fared (dead letters are counted as `DeadLettered` where they are sent).
fn count_outcome(outcome: &Projected) {
    use crate::telemetry::{count, names};
    match outcome {
        Projected::Applied => count(names::EVENTS_PROJECTED, 1),
        Projected::Duplicate => count(names::DUPLICATES_SKIPPED, 1),
        Projected::FilledGap { filled } => {
            count(names::GAPS_HEALED, 1);
            count(names::EVENTS_PROJECTED, 1 + *filled as u64);
        }
        Projected::Blocked { .. } | Projected::ConfirmedGap { .. } => {}
    }
}

/// What a failure to project a record calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// AWS was busy or failing (throttling, a 5xx, a timeout, a lost answer): report the record
    /// in `batchItemFailures`, so Lambda retries from it until it passes.
    Retry,
    /// AWS refused the call for the deployment's configuration (access denied, no such table or
    /// queue): retry as well, logged as an error, until a person fixes the deployment. The
    /// record is not at fault, so it is never dead-lettered nor skipped for it.
    RetryMisconfigured,
    /// Something about this record that retrying cannot cure (it does not decode, AWS refuses
    /// the update it makes, the view moved in a way the rules exclude): dead-letter the record
    /// itself, so the shard goes on and the record can be re-driven at any time.
    DeadLetter,
}

/// What `error`, met while projecting a record, calls for (see [`Disposition`]).
pub fn disposition(error: &Error) -> Disposition {
    match error {
        Error::Unavailable { .. } => Disposition::Retry,
        Error::Misconfigured { .. } => Disposition::RetryMisconfigured,
        _ => Disposition::DeadLetter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::stream_image::{decode_image, image};
    use aws_lambda_events::dynamodb::Event;
    use ftgo_domain::view::plan;

    fn sample(json: &str) -> Vec<EventRecord> {
        serde_json::from_str::<Event>(json).unwrap().records
    }

    fn general_path(record: &EventRecord) -> Result<ViewUpdate, String> {
        let event = decode_image(record.change.new_image.clone())?;
        plan(&event).map_err(|e| e.to_string())
    }

    #[test]
    fn in_place_reading_plans_exactly_what_the_general_path_plans() {
        let records = sample(include_str!(
            "../../../events/order-history-projector/order-lifecycle.json"
        ));
        for record in &records {
            let in_place = image::plan_in_place(&record.change.new_image);
            assert!(in_place.is_some(), "{record:?}");
            assert_eq!(in_place.map(Ok), Some(general_path(record)));
        }
    }

    #[test]
    fn older_schema_versions_and_poison_take_the_general_path() {
        let v1 = sample(include_str!(
            "../../../events/order-history-projector/order-created-schema-v1.json"
        ));
        assert_eq!(image::plan_in_place(&v1[0].change.new_image), None);
        assert_eq!(plan_record(&v1[0]), general_path(&v1[0]));
        assert!(plan_record(&v1[0]).is_ok());
        let poison = sample(include_str!(
            "../../../events/order-history-projector/poison-record.json"
        ));
        assert_eq!(image::plan_in_place(&poison[1].change.new_image), None);
        let reason = plan_record(&poison[1]).unwrap_err();
        assert!(reason.contains("OrderTeleported"), "{reason}");
    }

    #[test]
    fn a_dead_letter_too_large_for_sqs_travels_without_its_image() {
        let mut record = sample(include_str!(
            "../../../events/order-history-projector/poison-record.json"
        ))
        .remove(1);
        let small: serde_json::Value = serde_json::from_str(
            &dead_letter_body(&record, DeadLetterReason::Undecodable, "bad", None).unwrap(),
        )
        .unwrap();
        assert_eq!(small["record"], serde_json::to_value(&record).unwrap());
        assert_eq!(small["imageOmitted"], serde_json::Value::Null);
        record.change.new_image.inner_mut().insert(
            "padding".into(),
            serde_dynamo::AttributeValue::S("x".repeat(MAX_DEAD_LETTER_BYTES)),
        );
        let body = dead_letter_body(&record, DeadLetterReason::Undecodable, "bad", None).unwrap();
        assert!(body.len() < MAX_DEAD_LETTER_BYTES);
        let large: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(large["imageOmitted"], true);
        assert_eq!(large["reason"], "UNDECODABLE");
        assert_eq!(large["message"], "bad");
        assert_eq!(large["record"]["eventID"], record.event_id.as_str());
        assert_eq!(
            large["record"]["dynamodb"]["SequenceNumber"],
            record.change.sequence_number.clone().unwrap()
        );
    }

    #[test]
    fn versions_that_are_not_positive_integers_or_disagree_with_the_keys_are_corrupt() {
        let record = sample(include_str!(
            "../../../events/order-history-projector/order-lifecycle.json"
        ))
        .remove(0);
        assert_eq!(check_version(&record), Ok(()));
        for (text, keys_too) in [
            ("0", true),
            ("-3", true),
            ("1.5", true),
            ("99999999999999999999999", true),
            ("2", false),
        ] {
            let mut corrupt = record.clone();
            corrupt.change.new_image.inner_mut().insert(
                "version".into(),
                serde_dynamo::AttributeValue::N(text.into()),
            );
            if keys_too {
                corrupt.change.keys.inner_mut().insert(
                    "version".into(),
                    serde_dynamo::AttributeValue::N(text.into()),
                );
            }
            assert!(check_version(&corrupt).is_err(), "{text}");
        }
        let mut text = record.clone();
        text.change.new_image.inner_mut().insert(
            "version".into(),
            serde_dynamo::AttributeValue::S("1".into()),
        );
        assert!(check_version(&text).is_err());
    }

    #[test]
    fn the_template_retries_the_projector_s_stream_without_limit() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
        let text = std::fs::read_to_string(path).expect("template.yaml");
        let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("YAML");
        let source = &template["Resources"]["OrderHistoryProjectorFunction"]["Properties"]["Events"]
            ["EventStream"]["Properties"];
        // A limit would let Lambda skip a record after a burst of throttling or a permission
        // fixed late; -1 retries until it passes (DESIGN §5).
        assert_eq!(source["MaximumRetryAttempts"].as_i64(), Some(-1));
        assert_eq!(source["MaximumRecordAgeInSeconds"].as_i64(), Some(-1));
        let responses = source["FunctionResponseTypes"].as_sequence().expect("list");
        assert!(
            responses
                .iter()
                .any(|r| r.as_str() == Some("ReportBatchItemFailures"))
        );
        assert!(matches!(
            source["DestinationConfig"]["OnFailure"]["Destination"],
            serde_yaml_ng::Value::Tagged(_)
        ));
    }

    #[test]
    fn failures_not_of_the_record_are_retried_and_the_record_s_own_are_dead_lettered() {
        let unavailable = Error::Unavailable {
            service: "UpdateItem",
            message: "throttled".into(),
        };
        assert_eq!(disposition(&unavailable), Disposition::Retry);
        let denied = Error::Misconfigured {
            service: "UpdateItem",
            message: "AccessDeniedException".into(),
        };
        assert_eq!(disposition(&denied), Disposition::RetryMisconfigured);
        for own in [
            Error::Aws {
                service: "UpdateItem",
                message: "ValidationException: item too large".into(),
            },
            Error::Codec("bad item".into()),
            Error::Projection("moved".into()),
        ] {
            assert_eq!(disposition(&own), Disposition::DeadLetter, "{own}");
        }
    }

    #[test]
    fn an_image_the_general_path_refuses_is_never_read_in_place() {
        let records = sample(include_str!(
            "../../../events/order-history-projector/order-lifecycle.json"
        ));
        let spoil: [(&str, Option<serde_dynamo::AttributeValue>); 5] = [
            ("eventId", None),
            ("streamId", None),
            ("version", Some(serde_dynamo::AttributeValue::S("1".into()))),
            (
                "occurredAt",
                Some(serde_dynamo::AttributeValue::S("yesterday".into())),
            ),
            (
                "metadata",
                Some(serde_dynamo::AttributeValue::M(Default::default())),
            ),
        ];
        for (name, value) in spoil {
            let mut record = records[0].clone();
            let image = record.change.new_image.inner_mut();
            match value {
                Some(value) => image.insert(name.to_owned(), value),
                None => image.remove(name),
            };
            assert_eq!(
                image::plan_in_place(&record.change.new_image),
                None,
                "{name}"
            );
            assert!(general_path(&record).is_err(), "{name}");
        }
    }
}
