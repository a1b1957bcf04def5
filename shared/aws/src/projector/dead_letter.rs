//! What the projector sends to its dead-letter queue: the whole stream record, why it was not
//! projected, and a body SQS always accepts (never too large, never holding a character SQS
//! refuses), so that dead-lettering can never fail for the record's content and block a shard.

use std::fmt::Write as _;

use aws_lambda_events::dynamodb::EventRecord;
use ftgo_domain::event::StoredEvent;
use ftgo_domain::order::is_message_char;
use serde::Serialize;

use crate::error::Error;

/// Why a record was dead-lettered: the machine-readable `reason` of a [`DeadLetter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeadLetterReason {
    /// The record's image is not a stored event this code can read.
    Undecodable,
    /// The record's `version` is not a positive integer, or names a version the event table
    /// does not hold while the versions before it are missing too.
    CorruptVersion,
    /// Versions before the record's are confirmed missing from the event table.
    ConfirmedGap,
    /// An earlier event of the same stream is in the event table but does not decode.
    Blocked,
    /// A `REMOVE` record: an event was deleted from the event table (the view keeps it).
    Removed,
    /// Any other failure that retrying cannot cure.
    Unprojectable,
}

impl DeadLetterReason {
    /// The wire name, e.g. `CONFIRMED_GAP`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::Undecodable => "UNDECODABLE",
            DeadLetterReason::CorruptVersion => "CORRUPT_VERSION",
            DeadLetterReason::ConfirmedGap => "CONFIRMED_GAP",
            DeadLetterReason::Blocked => "BLOCKED",
            DeadLetterReason::Removed => "REMOVED",
            DeadLetterReason::Unprojectable => "UNPROJECTABLE",
        }
    }
}

impl std::fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the projector sends to its dead-letter queue (one shape for every reason).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter<'a> {
    /// Which function sent it.
    pub source: &'static str,
    /// Why the record was not projected, machine-readable.
    pub reason: DeadLetterReason,
    /// Why the record was not projected, for people.
    pub message: &'a str,
    /// The whole stream record, as Lambda delivered it.
    pub record: &'a EventRecord,
    /// The stored event that blocks this record, when that is the reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<&'a StoredEvent>,
}

/// The largest dead-letter message body sent whole (SQS takes 256 KiB; some room is kept).
pub const MAX_DEAD_LETTER_BYTES: usize = 240 * 1024;

/// The JSON body of a dead letter. A record too large for one SQS message travels without its
/// `NewImage` (its keys and sequence number still name it in the event table), and says so in
/// `imageOmitted`, so that sending it can never fail for its size and block the shard.
pub fn dead_letter_body(
    record: &EventRecord,
    reason: DeadLetterReason,
    message: &str,
    blocked_by: Option<&StoredEvent>,
) -> Result<String, Error> {
    let letter = DeadLetter {
        source: "order-history-projector",
        reason,
        message,
        record,
        blocked_by,
    };
    let body = sqs_safe(serde_json::to_string(&letter).map_err(|e| Error::Codec(e.to_string()))?);
    if body.len() <= MAX_DEAD_LETTER_BYTES {
        return Ok(body);
    }
    let mut slim = record.clone();
    slim.change.new_image = serde_dynamo::Item::from(std::collections::HashMap::<
        String,
        serde_dynamo::AttributeValue,
    >::new());
    // The message is ours and short, but bound it anyway.
    let message: String = message.chars().take(1024).collect();
    let mut value = serde_json::to_value(&DeadLetter {
        record: &slim,
        blocked_by: None,
        message: &message,
        ..letter
    })
    .map_err(|e| Error::Codec(e.to_string()))?;
    value["imageOmitted"] = serde_json::Value::Bool(true);
    serde_json::to_string(&value)
        .map(sqs_safe)
        .map_err(|e| Error::Codec(e.to_string()))
}

/// Escapes, as JSON `\uXXXX`, each character of the JSON text `json` that SQS refuses in a
/// message body (not an XML `Char`, [`is_message_char`]): U+FFFE and U+FFFF in an item written
/// by hand, say. JSON's own syntax is ASCII, so such a character can only stand inside a string,
/// where the escape means the same character: the body decodes to the same value. (Every
/// refused character is in the Basic Multilingual Plane, so one `\uXXXX` each suffices.)
pub fn sqs_safe(json: String) -> String {
    if json.chars().all(is_message_char) {
        return json;
    }
    let mut safe = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_message_char(c) {
            safe.push(c);
        } else {
            // Writing to a `String` cannot fail.
            let _ = write!(safe, "\\u{:04x}", u32::from(c));
        }
    }
    safe
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_with_name(name: &str) -> EventRecord {
        let mut record = serde_json::from_str::<aws_lambda_events::dynamodb::Event>(include_str!(
            "../../../../events/order-history-projector/poison-record.json"
        ))
        .unwrap()
        .records
        .remove(1);
        record.change.new_image.inner_mut().insert(
            "restaurantName".into(),
            serde_dynamo::AttributeValue::S(name.into()),
        );
        record
    }

    #[test]
    fn a_dead_letter_body_holds_only_what_sqs_accepts_and_decodes_to_the_same_record() {
        // An item written by hand can hold what the API refuses: noncharacters, controls.
        let name = "Ajanta\u{FFFE}\u{FFFF}\u{0}\u{1F}\u{7F}\u{10FFFF}";
        let record = record_with_name(name);
        let message = "why \u{FFFF}";
        let body = dead_letter_body(&record, DeadLetterReason::Undecodable, message, None).unwrap();
        assert!(body.chars().all(is_message_char), "{body}");
        let letter: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(letter["record"], serde_json::to_value(&record).unwrap());
        assert_eq!(letter["message"], message);
        let again: EventRecord = serde_json::from_value(letter["record"].clone()).unwrap();
        assert_eq!(
            again.change.new_image.inner().get("restaurantName"),
            Some(&serde_dynamo::AttributeValue::S(name.into()))
        );
    }

    #[test]
    fn a_slimmed_dead_letter_is_escaped_too() {
        let record = record_with_name(&"\u{FFFF}".repeat(MAX_DEAD_LETTER_BYTES));
        let body = dead_letter_body(
            &record,
            DeadLetterReason::Undecodable,
            &"\u{FFFE}".repeat(2000),
            None,
        )
        .unwrap();
        assert!(body.len() <= MAX_DEAD_LETTER_BYTES);
        assert!(body.chars().all(is_message_char));
        let letter: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(letter["imageOmitted"], true);
        assert_eq!(letter["message"], "\u{FFFE}".repeat(1024));
    }

    #[test]
    fn sqs_safe_leaves_acceptable_text_alone() {
        let text = r#"{"a":"\\u0000 é 名 😀"}"#.to_owned();
        assert_eq!(sqs_safe(text.clone()), text);
        assert_eq!(sqs_safe("\"\u{FFFE}\"".into()), r#""\ufffe""#);
    }
}
