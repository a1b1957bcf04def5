//! Reading a cancelled `TransactWriteItems`: our own write found stored, a lost race,
//! throttling, or a refused request.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};

use crate::config::events_table;

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
    pub(super) fn from_sdk(reason: &CancellationReason) -> Self {
        Self {
            code: reason.code().map(str::to_owned),
            stored_event_id: reason.item().and_then(stored_event_id),
        }
    }
}

/// The `eventId` of a stored event item.
pub(super) fn stored_event_id(item: &HashMap<String, AttributeValue>) -> Option<String> {
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
