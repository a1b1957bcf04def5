//! The stream consumers' dead letters: reading them, re-driving what they name, and discarding
//! one an operator has given up on (`ftgo dlq list|redrive|discard`, or any operator tool).
//!
//! A message of a dead-letter queue is one of:
//! * a **projector dead letter**, the JSON the projector writes ([`crate::projector::DeadLetter`]:
//!   `source`, `reason`, the whole stream `record`, optionally `blockedBy`);
//! * a **Lambda on-failure message** ([`OnFailureRecord`]), which names only a shard and a
//!   sequence range and the condition that gave up;
//! * anything else (a replay request that failed five times), shown as it is.
//!
//! Re-driving goes through the projector's own idempotent path ([`Projector::project`]): each
//! event is read again from the event table by its key (so a fixed event, or a projector that
//! now understands it, is what lands), planned and applied; a duplicate is a success, so
//! re-driving twice is harmless. An on-failure message is turned into those keys by reading its
//! sequence range from the stream (within the stream's 24-hour retention); once the stream no
//! longer holds it, the days its arrival window covers are re-projected from the event table
//! instead ([`Projector::repair`]). A message leaves the queue only once every event it names is
//! applied; one that still fails stays, with the reason.
//!
//! Discarding ([`discard`]) is the one way a message leaves without being applied: an operator's
//! decision about one message, named by its id, for an event that is beyond repair (a stray
//! item written by hand and deleted since). The caller gets the message back to keep.

use aws_lambda_events::dynamodb::EventRecord;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use ftgo_domain::event::StoredEvent;
use serde_json::Value;

use crate::on_failure::{OnFailureRecord, StreamBatchInfo};
use crate::projector::{Projected, Projector};
use crate::store::stream_image::{event_record, plan_record};

/// A dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterQueue {
    /// Its logical id in the template (`ProjectorDlq`), naming it in reports.
    pub logical_id: String,
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// The function whose failures it receives, when it is a stream consumer's destination.
    pub consumer: Option<String>,
}

/// What a dead-letter message is.
#[derive(Debug, Clone)]
pub enum Letter {
    /// A stream record the projector dead-lettered itself.
    Projector(Box<EventRecord>),
    /// Lambda's on-failure message: a shard and a sequence range.
    OnFailure(StreamBatchInfo),
    /// Anything else.
    Other,
}

/// One message of a dead-letter queue, read and understood.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The queue's logical id.
    pub queue: String,
    /// The SQS message id.
    pub message_id: String,
    /// What it is.
    pub letter: Letter,
    /// Why it was dead-lettered, as the message says.
    pub reason: String,
    /// What it names: a stream id and version, or a shard and sequence range.
    pub subject: String,
    /// The raw body.
    pub body: String,
    receipt_handle: String,
}

impl DeadLetter {
    /// The kind of letter, for reports: `projector`, `on-failure` or `other`.
    pub fn kind(&self) -> &'static str {
        match self.letter {
            Letter::Projector(_) => "projector",
            Letter::OnFailure(_) => "on-failure",
            Letter::Other => "other",
        }
    }
}

/// Reads a message body: its kind, reason and subject.
pub fn classify(body: &str) -> (Letter, String, String) {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return (Letter::Other, "not JSON".to_owned(), String::new());
    };
    if value.get("DDBStreamBatchInfo").is_some() {
        let message = match OnFailureRecord::parse(body) {
            Ok(message) => message,
            Err(error) => {
                let reason = format!("an on-failure message of an unknown shape ({error})");
                return (Letter::Other, reason, String::new());
            }
        };
        let condition = match message.request_context.condition.as_str() {
            "" => "unknown condition",
            condition => condition,
        };
        let reason = match &message.response_context.function_error {
            Some(error) => format!("Lambda gave up ({condition}, {error})"),
            None => format!("Lambda gave up ({condition})"),
        };
        let batch = message.batch;
        let subject = format!(
            "{} {}..{}",
            batch.shard_id, batch.start_sequence_number, batch.end_sequence_number
        );
        return (Letter::OnFailure(batch), reason, subject);
    }
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let Some(record) = value.get("record") else {
        let reason = text("reason").unwrap_or_else(|| "no reason in the message".to_owned());
        return (Letter::Other, reason, String::new());
    };
    // `reason` is the machine-readable kind (`CONFIRMED_GAP`, …), `message` the human text.
    let reason = match (text("reason"), text("message")) {
        (Some(kind), Some(message)) => format!("{kind}: {message}"),
        (Some(text), None) | (None, Some(text)) => text,
        (None, None) => "no reason given".to_owned(),
    };
    match serde_json::from_value::<EventRecord>(record.clone()) {
        Ok(record) => {
            let subject = match record_key(&record) {
                Some((stream, version)) => format!("{stream} v{version}"),
                None => record.event_id.clone(),
            };
            (Letter::Projector(Box::new(record)), reason, subject)
        }
        Err(error) => (
            Letter::Other,
            format!("{reason} (record unreadable: {error})"),
            String::new(),
        ),
    }
}

/// The event-table key (`streamId`, `version`) a stream record names.
pub fn record_key(record: &EventRecord) -> Option<(String, u64)> {
    use serde_dynamo::AttributeValue;
    let keys = record.change.keys.inner();
    match (keys.get("streamId"), keys.get("version")) {
        (Some(AttributeValue::S(stream)), Some(AttributeValue::N(version))) => {
            Some((stream.clone(), version.parse().ok()?))
        }
        _ => None,
    }
}

/// The URL of queue `name` as SQS gives it, else `fallback` (a template's guess assumes the
/// local account).
pub async fn queue_url(sqs: &aws_sdk_sqs::Client, name: &str, fallback: &str) -> String {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(answer) => answer.queue_url.unwrap_or_else(|| fallback.to_owned()),
        Err(_) => fallback.to_owned(),
    }
}

/// Reads up to everything in `queue` without consuming it: each message is made visible again
/// right after it is read.
pub async fn list(
    sqs: &aws_sdk_sqs::Client,
    queue: &DeadLetterQueue,
) -> Result<Vec<DeadLetter>, String> {
    let letters = receive_all(sqs, queue, 30).await?;
    for letter in &letters {
        release(sqs, queue, letter).await;
    }
    Ok(letters)
}

async fn receive_all(
    sqs: &aws_sdk_sqs::Client,
    queue: &DeadLetterQueue,
    visibility: i32,
) -> Result<Vec<DeadLetter>, String> {
    let mut letters: Vec<DeadLetter> = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .send()
            .await
            .map_err(|e| format!("ReceiveMessage {}: {e:?}", queue.logical_id))?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(letters);
        }
        for message in messages {
            let message_id = message.message_id.unwrap_or_default();
            if letters.iter().any(|l| l.message_id == message_id) {
                continue;
            }
            let body = message.body.unwrap_or_default();
            let (letter, reason, subject) = classify(&body);
            letters.push(DeadLetter {
                queue: queue.logical_id.clone(),
                message_id,
                letter,
                reason,
                subject,
                body,
                receipt_handle: message.receipt_handle.unwrap_or_default(),
            });
        }
    }
}

/// Deletes `letter` from `queue` (it was received, so its receipt handle is current).
async fn delete(
    sqs: &aws_sdk_sqs::Client,
    queue: &DeadLetterQueue,
    letter: &DeadLetter,
) -> Result<(), String> {
    sqs.delete_message()
        .queue_url(&queue.url)
        .receipt_handle(&letter.receipt_handle)
        .send()
        .await
        .map_err(|e| format!("DeleteMessage {}: {e:?}", queue.logical_id))?;
    Ok(())
}

/// Makes `letter` visible in `queue` again at once.
async fn release(sqs: &aws_sdk_sqs::Client, queue: &DeadLetterQueue, letter: &DeadLetter) {
    let _ = sqs
        .change_message_visibility()
        .queue_url(&queue.url)
        .receipt_handle(&letter.receipt_handle)
        .visibility_timeout(0)
        .send()
        .await;
}

/// Deletes the message `message_id` of `queue` and answers it, or `None` when the queue holds no
/// such message (then nothing is deleted). Every other message read on the way is made visible
/// again at once.
pub async fn discard(
    sqs: &aws_sdk_sqs::Client,
    queue: &DeadLetterQueue,
    message_id: &str,
) -> Result<Option<DeadLetter>, String> {
    let letters = receive_all(sqs, queue, 30).await?;
    let mut found = None;
    for letter in letters {
        if letter.message_id == message_id {
            found = Some(letter);
        } else {
            release(sqs, queue, &letter).await;
        }
    }
    if let Some(letter) = &found {
        delete(sqs, queue, letter).await?;
    }
    Ok(found)
}

/// How re-driving one message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redriven {
    /// Every event it names is in the view now; the message was deleted.
    Applied {
        /// Events applied (duplicates included: they were in the view already).
        events: usize,
    },
    /// It stays in the queue, for this reason.
    Kept(String),
}

/// Re-drives every message of `queue` through `projector` (see the module docs).
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    streams: &aws_sdk_dynamodbstreams::Client,
    projector: &Projector,
    queue: &DeadLetterQueue,
) -> Result<Vec<(DeadLetter, Redriven)>, String> {
    let letters = receive_all(sqs, queue, 120).await?;
    let mut outcomes = Vec::with_capacity(letters.len());
    for letter in letters {
        let result = match (&letter.letter, queue.consumer.as_deref()) {
            (Letter::Projector(record), _) => {
                apply_record(projector, record).await.map(|()| 1usize)
            }
            (Letter::OnFailure(batch), Some("order-history-projector")) => {
                match apply_range(streams, projector, batch).await {
                    Ok(events) => Ok(events),
                    Err(from_stream) => repair_range(projector, &letter.body)
                        .await
                        .map_err(|e| format!("{from_stream}; from the event table: {e}")),
                }
            }
            (Letter::OnFailure(_), consumer) => Err(format!(
                "on-failure message of {}: only the projector's are re-driven here",
                consumer.unwrap_or("another consumer")
            )),
            (Letter::Other, _) => Err("not a stream record: nothing to re-drive".to_owned()),
        };
        let outcome = match result {
            Ok(events) => {
                delete(sqs, queue, &letter).await?;
                Redriven::Applied { events }
            }
            Err(reason) => {
                release(sqs, queue, &letter).await;
                Redriven::Kept(reason)
            }
        };
        outcomes.push((letter, outcome));
    }
    Ok(outcomes)
}

/// Applies one stream record: the event as the event table holds it now, else (no such item)
/// the record's own image.
async fn apply_record(projector: &Projector, record: &EventRecord) -> Result<(), String> {
    let update = match record_key(record) {
        Some((stream, version)) => match read_event(projector, &stream, version).await? {
            Some(event) => ftgo_domain::view::plan(&event).map_err(|e| e.to_string())?,
            None => plan_record(record)?,
        },
        None => plan_record(record)?,
    };
    match projector
        .project(&update)
        .await
        .map_err(|e| e.to_string())?
    {
        Projected::Blocked { by, reason } => Err(format!(
            "blocked by version {} of the same stream: {reason}",
            by.version
        )),
        Projected::ConfirmedGap { missing, .. } => Err(format!(
            "version {missing} of the same stream is still missing from the event table"
        )),
        _ => Ok(()),
    }
}

async fn read_event(
    projector: &Projector,
    stream: &str,
    version: u64,
) -> Result<Option<StoredEvent>, String> {
    let events = projector
        .store()
        .read_stream(stream, version.saturating_sub(1), Some(version))
        .await
        .map_err(|e| format!("reading {stream} v{version}: {e}"))?;
    Ok(events.into_iter().find(|e| e.version == version))
}

/// Reads the records of `batch`'s sequence range from its shard and applies each.
async fn apply_range(
    streams: &aws_sdk_dynamodbstreams::Client,
    projector: &Projector,
    batch: &StreamBatchInfo,
) -> Result<usize, String> {
    let mut iterator = streams
        .get_shard_iterator()
        .stream_arn(&batch.stream_arn)
        .shard_id(&batch.shard_id)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .sequence_number(&batch.start_sequence_number)
        .send()
        .await
        .map_err(|e| {
            format!("the range is no longer readable from the stream (24-hour retention?): {e:?}")
        })?
        .shard_iterator;
    let end = &batch.end_sequence_number;
    let mut applied = 0;
    let mut empty_reads = 0;
    while let Some(current) = iterator {
        let page = streams
            .get_records()
            .shard_iterator(current)
            .send()
            .await
            .map_err(|e| format!("GetRecords: {e:?}"))?;
        if page.records().is_empty() {
            empty_reads += 1;
            if empty_reads > 3 {
                return Err(format!(
                    "the stream ended before sequence number {end} ({applied} applied)"
                ));
            }
        }
        for record in page.records().iter().filter(|r| r.dynamodb().is_some()) {
            let record = event_record(record, &batch.stream_arn, "");
            let sequence = record.change.sequence_number.clone().unwrap_or_default();
            if compare_sequence(&sequence, end) == std::cmp::Ordering::Greater {
                return Ok(applied);
            }
            apply_record(projector, &record)
                .await
                .map_err(|e| format!("sequence number {sequence}: {e} ({applied} applied)"))?;
            applied += 1;
            if &sequence == end {
                return Ok(applied);
            }
        }
        iterator = page.next_shard_iterator;
    }
    Ok(applied)
}

/// Re-projects, from the event table, the days an on-failure message's batch covers
/// ([`Projector::repair`]): for a range the stream no longer holds (24-hour retention).
async fn repair_range(projector: &Projector, body: &str) -> Result<usize, String> {
    let skipped = OnFailureRecord::parse(body).map_err(|e| e.to_string())?;
    let repair = projector
        .repair(&skipped)
        .await
        .map_err(|e| e.to_string())?;
    match repair.unrepaired.as_slice() {
        [] => Ok(repair.applied),
        unrepaired => Err(unrepaired.join("; ")),
    }
}

/// Orders DynamoDB stream sequence numbers (decimal strings of varying length).
fn compare_sequence(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_projector_dead_letter_shows_its_reason_and_key() {
        let records = serde_json::from_str::<aws_lambda_events::dynamodb::Event>(include_str!(
            "../../../events/order-history-projector/poison-record.json"
        ))
        .unwrap()
        .records;
        let body = crate::projector::dead_letter_body(
            &records[1],
            crate::projector::DeadLetterReason::Undecodable,
            "no such event",
            None,
        )
        .unwrap();
        let (letter, reason, subject) = classify(&body);
        assert!(matches!(letter, Letter::Projector(_)));
        assert_eq!(reason, "UNDECODABLE: no such event");
        let (stream, version) = record_key(&records[1]).unwrap();
        assert_eq!(subject, format!("{stream} v{version}"));
    }

    #[test]
    fn a_lambda_on_failure_message_names_its_shard_and_range() {
        let body = r#"{"requestContext":{"requestId":"r","functionArn":"f","condition":"RetryAttemptsExhausted","approximateInvokeCount":11},
            "responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
            "version":"1.0","timestamp":"2026-01-01T00:00:00Z",
            "DDBStreamBatchInfo":{"shardId":"shardId-1","startSequenceNumber":"100","endSequenceNumber":"205","approximateArrivalOfFirstRecord":"2026-01-01T00:00:00Z","approximateArrivalOfLastRecord":"2026-01-01T00:00:00Z","batchSize":3,"streamArn":"arn:s"}}"#;
        let (letter, reason, subject) = classify(body);
        let Letter::OnFailure(batch) = letter else {
            panic!("not an on-failure message")
        };
        assert_eq!(batch.start_sequence_number, "100");
        assert_eq!(batch.end_sequence_number, "205");
        assert_eq!(batch.stream_arn, "arn:s");
        assert_eq!(reason, "Lambda gave up (RetryAttemptsExhausted, Unhandled)");
        assert_eq!(subject, "shardId-1 100..205");

        // Without its arrival times it is no on-failure record: shown as it is.
        let malformed = body.replace(
            "\"approximateArrivalOfFirstRecord\":\"2026-01-01T00:00:00Z\",",
            "",
        );
        let (letter, reason, subject) = classify(&malformed);
        assert!(matches!(letter, Letter::Other));
        assert!(
            reason.starts_with("an on-failure message of an unknown shape"),
            "{reason}"
        );
        assert!(subject.is_empty());
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert_eq!(compare_sequence("99", "100"), std::cmp::Ordering::Less);
        assert_eq!(compare_sequence("205", "205"), std::cmp::Ordering::Equal);
    }
}
