//! Settling an append whose outcome is unknown.
//!
//! After the SDK's own retries a write can fail in a way that says nothing about whether it
//! landed: a timeout, a dispatch or I/O failure, an answer that did not parse, a 5xx, throttling
//! or `TransactionInProgressException` (each may answer a *retry* of an attempt that landed, or
//! is still running). Such a write is never answered as a failure before it is settled:
//!
//! * a `TransactWriteItems` carries an explicit `ClientRequestToken`, derived from its content,
//!   so resending it within DynamoDB's 10-minute idempotency window is the same transaction
//!   (it succeeds without writing again when the first attempt committed, and answers
//!   `TransactionInProgressException` while that attempt still runs); it is resent with backoff
//!   while the [`SettlePolicy`]'s budget lasts;
//! * then (and for a single `PutItem` at once) the first new `(streamId, version)` is read back
//!   with a consistent read: our own `eventId` there means the write landed; another writer's
//!   means a lost race; nothing means it did not land, answered 503 with `Retry-After`.

use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use ftgo_domain::event::StoredEvent;
use sha2::{Digest, Sha256};

/// How long and how often an append whose outcome is unknown is resent before it is read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlePolicy {
    /// Time, from the first unknown outcome, within which a transaction is resent. Well inside
    /// the command functions' `Timeout` (15 s): one resend can itself take the SDK's retries.
    pub budget: Duration,
    /// Backoff before the first resend; doubles each time.
    pub base_delay: Duration,
    /// Upper bound of one backoff.
    pub max_delay: Duration,
}

impl Default for SettlePolicy {
    fn default() -> Self {
        Self {
            budget: Duration::from_secs(4),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl SettlePolicy {
    /// The delay before resend number `resend` (0 for the first).
    pub fn backoff(&self, resend: u32) -> Duration {
        self.base_delay
            .saturating_mul(1 << resend.min(16))
            .min(self.max_delay)
    }
}

/// Error codes after which a write may have landed or may still land.
const UNKNOWN_OUTCOME_CODES: &[&str] = &[
    "TransactionInProgressException",
    "IdempotentParameterMismatchException",
    "IdempotentParameterMismatch",
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// Whether a failed write may have landed: no answer (timeout, dispatch or I/O failure, an
/// unparseable answer), a 5xx, or a code that may answer a retry of an attempt that landed.
pub fn outcome_unknown<E>(error: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => {
            e.raw().status().is_server_error()
                || e.err()
                    .code()
                    .is_some_and(|code| UNKNOWN_OUTCOME_CODES.contains(&code))
        }
        // Construction failures never left the process.
        _ => false,
    }
}

/// The `ClientRequestToken` of one append: a digest of everything it writes and checks, so that
/// a resend of this append is the same transaction, and any other append (even one of the same
/// event ids, e.g. a client's retry of the same `Idempotency-Key` at another time) is not —
/// DynamoDB answers `IdempotentParameterMismatch` to a token reused with other parameters.
/// `guards` are the guarded streams' ids and the heads they must still end at.
pub fn transaction_token<'a>(
    events: &[StoredEvent],
    guards: impl IntoIterator<Item = (&'a str, u64)>,
) -> String {
    let mut hash = Sha256::new();
    for event in events {
        let json = serde_json::to_string(event).unwrap_or_default();
        hash.update((json.len() as u64).to_be_bytes());
        hash.update(json.as_bytes());
    }
    for (stream_id, version) in guards {
        hash.update((stream_id.len() as u64).to_be_bytes());
        hash.update(stream_id.as_bytes());
        hash.update(version.to_be_bytes());
    }
    // At most 36 characters, as DynamoDB allows.
    hash.finalize()[..18]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftgo_domain::event::Metadata;
    use serde_json::json;
    use time::OffsetDateTime;

    fn event(event_id: &str, correlation: &str) -> StoredEvent {
        StoredEvent {
            stream_id: "Order#o-1".into(),
            version: 2,
            event_id: event_id.into(),
            event_type: "OrderCancelled".into(),
            schema_version: 1,
            aggregate_type: "Order".into(),
            aggregate_id: "o-1".into(),
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            payload: json!({}),
            metadata: Metadata {
                correlation_id: correlation.into(),
                ..Metadata::default()
            },
        }
    }

    #[test]
    fn the_token_is_the_same_for_a_resend_and_differs_for_any_other_append() {
        let guard = [("Delivery#o-1", 0)];
        let token = transaction_token(&[event("e-1", "r-1")], guard);
        assert!((1..=36).contains(&token.len()), "{token}");
        assert_eq!(token, transaction_token(&[event("e-1", "r-1")], guard));
        // Same event id, another request (a client's retry): another transaction.
        assert_ne!(token, transaction_token(&[event("e-1", "r-2")], guard));
        let moved = [("Delivery#o-1", 1)];
        assert_ne!(token, transaction_token(&[event("e-1", "r-1")], moved));
    }

    #[test]
    fn resends_back_off_up_to_the_cap() {
        let policy = SettlePolicy::default();
        assert_eq!(policy.backoff(0), Duration::from_millis(100));
        assert_eq!(policy.backoff(2), Duration::from_millis(400));
        assert_eq!(policy.backoff(30), Duration::from_secs(1));
    }
}
