//! The one error type of the adapters, and its mapping to the HTTP error shape.

use aws_sdk_dynamodb::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use ftgo_domain::DomainError;
use thiserror::Error;

/// What can go wrong in an adapter or a handler.
#[derive(Debug, Error)]
pub enum Error {
    /// The domain refused the command or could not read an event.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A conditional write lost a race (another writer took the version first).
    #[error("concurrent update: {0}")]
    Conflict(String),
    /// The client's `If-Match` does not match the current version (strong comparison).
    #[error("If-Match {expected} does not match the current version \"{actual}\"")]
    VersionMismatch {
        /// The `If-Match` the client sent, as parsed.
        expected: String,
        /// What the stream holds.
        actual: u64,
    },
    /// The command's `Idempotency-Key` was used before with another request body (HTTP 422).
    #[error("Idempotency-Key: this key was used with another request body")]
    IdempotencyKeyReused,
    /// A stored item could not be (de)serialised.
    #[error("item codec: {0}")]
    Codec(String),
    /// An AWS call failed (after the SDK's own retries).
    #[error("{service}: {message}")]
    Aws {
        /// Which call.
        service: &'static str,
        /// What the SDK said.
        message: String,
    },
    /// AWS throttled the call or was briefly unavailable (after the SDK's own retries): the
    /// caller may retry later (HTTP 503 with `Retry-After`).
    #[error("{service} unavailable: {message}")]
    Unavailable {
        /// Which call.
        service: &'static str,
        /// What the SDK said.
        message: String,
    },
    /// The view could not be brought up to date with an event yet (for instance, the events
    /// before it are not readable yet); the projector reports the record for a retry.
    #[error("projection: {0}")]
    Projection(String),
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// Error codes with which AWS services say "too many requests" or "briefly unavailable".
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "RequestThrottled",
    "TooManyRequestsException",
    "InternalServerError",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "SlowDown",
    "TransactionInProgressException",
];

impl Error {
    /// Wraps an error that is not an SDK call result (a body stream, a codec) with the name of
    /// the call that failed.
    pub fn aws(service: &'static str, error: impl std::error::Error) -> Self {
        Error::Aws {
            service,
            message: aws_smithy_types::error::display::DisplayErrorContext(error).to_string(),
        }
    }

    /// Wraps a failed SDK call: throttling, timeouts, connection failures and AWS-side 5xx
    /// become [`Error::Unavailable`] (a 503 the client may retry), anything else
    /// [`Error::Aws`].
    pub fn sdk<E, R>(service: &'static str, error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let transient = match &error {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(e) => is_transient_code(e.err().code()),
            _ => false,
        };
        Self::classified(service, transient, error)
    }

    /// Wraps a service error already taken out of its `SdkError` (after matching the variants
    /// a caller handles itself), classified as [`Error::sdk`] does.
    pub fn service<E>(service: &'static str, error: E) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error,
    {
        let transient = is_transient_code(error.code());
        Self::classified(service, transient, error)
    }

    /// Whether the client may simply retry later (HTTP 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    fn classified(service: &'static str, transient: bool, error: impl std::error::Error) -> Self {
        let message = aws_smithy_types::error::display::DisplayErrorContext(error).to_string();
        if transient {
            Error::Unavailable { service, message }
        } else {
            Error::Aws { service, message }
        }
    }
}

fn is_transient_code(code: Option<&str>) -> bool {
    code.is_some_and(|code| TRANSIENT_CODES.contains(&code))
}

impl From<serde_dynamo::Error> for Error {
    fn from(error: serde_dynamo::Error) -> Self {
        Error::Codec(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: &str) -> SdkError<UpdateItemError, ()> {
        SdkError::service_error(
            UpdateItemError::generic(ErrorMetadata::builder().code(code).build()),
            (),
        )
    }

    #[test]
    fn throttling_and_aws_side_failures_are_unavailable() {
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
            "InternalServerError",
        ] {
            assert!(
                Error::sdk("UpdateItem", service_error(code)).is_unavailable(),
                "{code}"
            );
        }
        let timeout = SdkError::<UpdateItemError, ()>::timeout_error("took too long");
        assert!(Error::sdk("UpdateItem", timeout).is_unavailable());
    }

    #[test]
    fn other_service_errors_are_not_unavailable() {
        let error = Error::sdk("UpdateItem", service_error("ValidationException"));
        assert!(matches!(
            error,
            Error::Aws {
                service: "UpdateItem",
                ..
            }
        ));
        let error = Error::service(
            "UpdateItem",
            UpdateItemError::generic(ErrorMetadata::builder().code("ThrottlingException").build()),
        );
        assert!(error.is_unavailable());
    }
}
