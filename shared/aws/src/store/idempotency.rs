//! `Idempotency-Key` on every command `POST` (DESIGN §3 "Retries are safe"), after the model of
//! AWS Powertools' idempotency utility: a record per key in a DynamoDB table, "in progress" while
//! the first call runs, "completed" with its answer once it succeeded, gone after 24 hours.
//!
//! * The same key with the same body, from the same caller on the same route, within 24 hours,
//!   answers what the first call answered (status, body, `Location`, `ETag`), without running
//!   the command again.
//! * The same key with another body answers 422 `IDEMPOTENCY_KEY_REUSED`.
//! * While the first call is still running, another answers 409 `CONFLICT` with `Retry-After`.
//! * Only a success (2xx) is remembered: a refused or failed call writes no event, so its record
//!   is deleted and the key may be used again.
//!
//! The decision is pure ([`Record::decide`]); [`IdempotencyStore`] makes it atomic with one
//! conditional `PutItem` (`ReturnValuesOnConditionCheckFailure = ALL_OLD` hands back the record
//! that is there). A record whose `expiresAt` has passed counts as absent even before DynamoDB's
//! TTL deletes it (TTL deletion lags by up to days). What HTTP adds (the header, the answers)
//! is [`crate::lambda::idempotent`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use ftgo_domain::event::KeyStamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::idempotency_table;
use crate::error::Error;

/// How long a completed answer is remembered.
pub const RECORD_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long an in-progress record blocks its key when the function's deadline is unknown (the
/// functions' `Timeout` is well below).
pub const DEFAULT_IN_PROGRESS_TTL: Duration = Duration::from_secs(60);

/// Where a record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// The first call is running.
    InProgress,
    /// The first call succeeded; its answer is stored.
    Completed,
}

/// A remembered answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// The headers a replay repeats (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// The body as sent.
    pub body: String,
}

/// One record of the idempotency table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Partition key: see [`IdempotentRequest::record_key`].
    pub idempotency_key: String,
    /// In progress or completed.
    pub status: Status,
    /// SHA-256 (hex) of the request body.
    pub payload_hash: String,
    /// Epoch seconds after which the record counts as absent (the table's TTL attribute).
    pub expires_at: i64,
    /// Epoch milliseconds after which an in-progress record counts as abandoned (its function
    /// was cut at its deadline).
    pub in_progress_expires_at: i64,
    /// A token of the call that wrote the record: only it completes or releases it.
    pub owner: String,
    /// The answer, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<StoredResponse>,
}

/// What a call with a key must do, given the record already there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run the command (no live record, or an abandoned one).
    Proceed,
    /// Answer the stored answer.
    Replay(StoredResponse),
    /// 422: the key was used with another body.
    Reused,
    /// 409 + `Retry-After`: the first call is still running.
    InProgress,
}

impl Record {
    /// The state machine: an expired record, or an in-progress one past its deadline, is as if
    /// absent; otherwise another body is a reuse, a completed record is replayed, and a running
    /// one makes the caller wait.
    pub fn decide(&self, payload_hash: &str, now: OffsetDateTime) -> Decision {
        if self.expires_at <= now.unix_timestamp() {
            return Decision::Proceed;
        }
        if self.status == Status::InProgress && self.in_progress_expires_at <= epoch_millis(now) {
            return Decision::Proceed;
        }
        if self.payload_hash != payload_hash {
            return Decision::Reused;
        }
        match (&self.status, &self.response) {
            (Status::Completed, Some(response)) => Decision::Replay(response.clone()),
            // A completed record without an answer cannot be replayed: run again.
            (Status::Completed, None) => Decision::Proceed,
            (Status::InProgress, _) => Decision::InProgress,
        }
    }
}

fn epoch_millis(time: OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The identity of a keyed request: which record it owns, and the hash of what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    /// SHA-256 (hex) of caller, method, path and key: a key is the caller's own, per route.
    pub record_key: String,
    /// SHA-256 (hex) of the body.
    pub payload_hash: String,
}

impl IdempotentRequest {
    /// The identity of `key` sent by `caller` to `method path` with `body`.
    pub fn new(caller: &str, method: &str, path: &str, key: &str, body: &[u8]) -> Self {
        let mut scope = Sha256::new();
        for part in [caller, method, path, key] {
            // Length-prefixed, so that no two different tuples hash alike.
            scope.update((part.len() as u64).to_be_bytes());
            scope.update(part.as_bytes());
        }
        Self {
            record_key: hex(&scope.finalize()),
            payload_hash: hex(&Sha256::digest(body)),
        }
    }
}

impl IdempotentRequest {
    /// What the command's events carry of this key, so that a retry finds its first write.
    pub fn stamp(&self) -> KeyStamp {
        KeyStamp {
            key: self.record_key.clone(),
            request: self.payload_hash.clone(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This call holds the key now; `owner` completes or releases it.
    Acquired {
        /// The owner token written into the record.
        owner: String,
    },
    /// Another call's record decides: replay, reuse or in progress.
    Decided(Decision),
}

/// The idempotency records in DynamoDB.
#[derive(Debug, Clone)]
pub struct IdempotencyStore {
    client: Client,
    table: String,
}

impl IdempotencyStore {
    /// A store over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Claims `request`'s key at `now` until `in_progress_until`: one conditional `PutItem`
    /// of an in-progress record that only lands where [`Record::decide`] would proceed. When it
    /// does not land, the record found decides.
    pub async fn claim(
        &self,
        request: &IdempotentRequest,
        now: OffsetDateTime,
        in_progress_until: OffsetDateTime,
    ) -> Result<Claim, Error> {
        // A record can expire between a failed condition and the read of it: try again then.
        for _ in 0..3 {
            let owner = uuid::Uuid::now_v7().to_string();
            let record = Record {
                idempotency_key: request.record_key.clone(),
                status: Status::InProgress,
                payload_hash: request.payload_hash.clone(),
                expires_at: (now + RECORD_TTL).unix_timestamp(),
                in_progress_expires_at: epoch_millis(in_progress_until),
                owner: owner.clone(),
                response: None,
            };
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(serde_dynamo::to_item(&record)?))
                .condition_expression(
                    "attribute_not_exists(#key) OR #expires <= :now \
                     OR (#status = :inProgress AND #inProgressExpires <= :nowMillis)",
                )
                .expression_attribute_names("#key", idempotency_table::KEY)
                .expression_attribute_names("#expires", idempotency_table::EXPIRES_AT)
                .expression_attribute_names("#status", idempotency_table::STATUS)
                .expression_attribute_names(
                    "#inProgressExpires",
                    idempotency_table::IN_PROGRESS_EXPIRES_AT,
                )
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(now.unix_timestamp().to_string()),
                )
                .expression_attribute_values(
                    ":nowMillis",
                    AttributeValue::N(epoch_millis(now).to_string()),
                )
                .expression_attribute_values(
                    ":inProgress",
                    AttributeValue::S(idempotency_table::IN_PROGRESS.to_owned()),
                )
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let found = match result {
                Ok(_) => return Ok(Claim::Acquired { owner }),
                Err(SdkError::ServiceError(e))
                    if e.err().is_conditional_check_failed_exception() =>
                {
                    match e.into_err() {
                        PutItemError::ConditionalCheckFailedException(failed) => failed.item,
                        _ => None,
                    }
                }
                Err(e) => return Err(Error::sdk("PutItem idempotency", e)),
            };
            let existing = match found {
                Some(item) => Some(item),
                None => self.read(&request.record_key).await?,
            };
            let Some(item) = existing else {
                continue;
            };
            let record: Record = serde_dynamo::from_item(item)?;
            // Our own claim: the `PutItem` landed, its answer was lost, and the SDK's retry of
            // the very same request (same owner) met the record it had just written.
            if record.owner == owner && record.status == Status::InProgress {
                tracing::info!("claim found its own record (a retried PutItem that landed)");
                return Ok(Claim::Acquired { owner });
            }
            match record.decide(&request.payload_hash, now) {
                Decision::Proceed => continue,
                decision => return Ok(Claim::Decided(decision)),
            }
        }
        Err(Error::Unavailable {
            service: "PutItem idempotency",
            message: "the key's record kept changing; retry".to_owned(),
        })
    }

    async fn read(
        &self,
        record_key: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(
                idempotency_table::KEY,
                AttributeValue::S(record_key.to_owned()),
            )
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::sdk("GetItem idempotency", e))?;
        Ok(output.item)
    }

    /// Stores the answer of the call that holds the key (only while `owner` still holds it),
    /// remembered for [`RECORD_TTL`] from `now`.
    pub async fn complete(
        &self,
        request: &IdempotentRequest,
        owner: &str,
        response: StoredResponse,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let record = Record {
            idempotency_key: request.record_key.clone(),
            status: Status::Completed,
            payload_hash: request.payload_hash.clone(),
            expires_at: (now + RECORD_TTL).unix_timestamp(),
            in_progress_expires_at: epoch_millis(now),
            owner: owner.to_owned(),
            response: Some(response),
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(&record)?))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", idempotency_table::OWNER)
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .send()
            .await
            .map_err(|e| Error::sdk("PutItem idempotency", e))?;
        Ok(())
    }

    /// Deletes the record of a call that did not succeed (only while `owner` still holds it),
    /// so that the key can be used again.
    pub async fn release(&self, request: &IdempotentRequest, owner: &str) -> Result<(), Error> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(
                idempotency_table::KEY,
                AttributeValue::S(request.record_key.clone()),
            )
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", idempotency_table::OWNER)
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .send()
            .await
            .map_err(|e| Error::sdk("DeleteItem idempotency", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }

    fn record(status: Status, hash: &str) -> Record {
        Record {
            idempotency_key: "k".into(),
            status,
            payload_hash: hash.into(),
            expires_at: 2_000,
            in_progress_expires_at: 1_100_000,
            owner: "o".into(),
            response: (status == Status::Completed).then(|| StoredResponse {
                status: 201,
                headers: BTreeMap::from([("location".into(), "/orders/o-1".into())]),
                body: "{}".into(),
            }),
        }
    }

    #[test]
    fn a_completed_record_replays_for_the_same_body_and_refuses_another() {
        let completed = record(Status::Completed, "h1");
        assert!(matches!(
            completed.decide("h1", at(1_050)),
            Decision::Replay(StoredResponse { status: 201, .. })
        ));
        assert_eq!(completed.decide("h2", at(1_050)), Decision::Reused);
    }

    #[test]
    fn a_running_record_makes_the_same_request_wait_until_its_deadline() {
        let running = record(Status::InProgress, "h1");
        assert_eq!(running.decide("h1", at(1_050)), Decision::InProgress);
        assert_eq!(running.decide("h2", at(1_050)), Decision::Reused);
        // Its function was cut at the deadline (1 100 s): the key is free again.
        assert_eq!(running.decide("h1", at(1_100)), Decision::Proceed);
    }

    #[test]
    fn an_expired_record_counts_as_absent() {
        for status in [Status::Completed, Status::InProgress] {
            assert_eq!(
                record(status, "h1").decide("h2", at(2_000)),
                Decision::Proceed
            );
        }
    }

    #[test]
    fn records_are_stored_under_the_configured_attribute_names() {
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(record(Status::InProgress, "h")).unwrap();
        for name in [
            idempotency_table::KEY,
            idempotency_table::STATUS,
            idempotency_table::EXPIRES_AT,
            idempotency_table::IN_PROGRESS_EXPIRES_AT,
            idempotency_table::OWNER,
        ] {
            assert!(item.contains_key(name), "{name}");
        }
        assert_eq!(
            item[idempotency_table::STATUS],
            AttributeValue::S(idempotency_table::IN_PROGRESS.to_owned())
        );
    }

    #[test]
    fn the_identity_separates_callers_routes_keys_and_bodies() {
        let base = IdempotentRequest::new("c-1", "POST", "/orders", "k-1", b"{}");
        assert_eq!(
            base,
            IdempotentRequest::new("c-1", "POST", "/orders", "k-1", b"{}")
        );
        for other in [
            IdempotentRequest::new("c-2", "POST", "/orders", "k-1", b"{}"),
            IdempotentRequest::new("c-1", "POST", "/orders/o-1/approve", "k-1", b"{}"),
            IdempotentRequest::new("c-1", "POST", "/orders", "k-2", b"{}"),
            // Length prefixes: moving a character between parts changes the key.
            IdempotentRequest::new("c-1P", "OST", "/orders", "k-1", b"{}"),
        ] {
            assert_ne!(base.record_key, other.record_key);
        }
        let other_body = IdempotentRequest::new("c-1", "POST", "/orders", "k-1", b"{ }");
        assert_eq!(base.record_key, other_body.record_key);
        assert_ne!(base.payload_hash, other_body.payload_hash);
    }
}
