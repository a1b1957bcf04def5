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
    /// The caller may not do the command to this order (HTTP 403, or 404 where the order's
    /// existence is no business of the caller's).
    #[error("{} may not {}", .0.caller.subject(), .0.action.refusal())]
    Refused(Box<Refusal>),
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
    /// AWS refused the call for the deployment's configuration, not for this request: access
    /// denied, an unknown or expired credential, a table or queue that does not exist, a KMS
    /// key that cannot be used. Retrying helps only once a person fixes the deployment; a stream
    /// consumer retries (and its iterator age alarms) rather than skip anything meanwhile.
    #[error("{service} refused by the deployment's configuration: {message}")]
    Misconfigured {
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

/// Why a command was refused to its caller: the access policy's verdict on the loaded order.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The verdict (never [`Verdict::Allowed`](ftgo_domain::access::Verdict::Allowed)).
    pub verdict: ftgo_domain::access::Verdict,
    /// What the caller tried.
    pub action: ftgo_domain::access::Action,
    /// Who.
    pub caller: ftgo_domain::access::Caller,
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

/// Error codes with which AWS refuses a call for how the deployment is set up (permissions,
/// credentials, missing resources, unusable keys) rather than for the request itself.
const CONFIGURATION_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "MissingAuthenticationToken",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NoSuchBucket",
    "KMS.AccessDeniedException",
    "KMS.DisabledException",
    "KMS.NotFoundException",
    "KmsAccessDenied",
    "KmsDisabled",
    "KmsNotFound",
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
    /// become [`Error::Unavailable`] (a 503 the client may retry), a refusal for the
    /// deployment's configuration (access denied, no such table or queue) [`Error::Misconfigured`],
    /// anything else [`Error::Aws`].
    pub fn sdk<E, R>(service: &'static str, error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let class = match &error {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => Class::Transient,
            SdkError::ServiceError(e) => match Class::of_code(e.err().code()) {
                // A 5xx whose body names no code we know is still AWS's side failing.
                Class::Other if is_server_error(e.raw()) => Class::Transient,
                class => class,
            },
            _ => Class::Other,
        };
        Self::classified(service, class, error)
    }

    /// Wraps a service error already taken out of its `SdkError` (after matching the variants
    /// a caller handles itself), classified as [`Error::sdk`] does.
    pub fn service<E>(service: &'static str, error: E) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error,
    {
        let class = Class::of_code(error.code());
        Self::classified(service, class, error)
    }

    /// Whether the client may simply retry later (HTTP 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    fn classified(service: &'static str, class: Class, error: impl std::error::Error) -> Self {
        let message = aws_smithy_types::error::display::DisplayErrorContext(error).to_string();
        match class {
            Class::Transient => Error::Unavailable { service, message },
            Class::Configuration => Error::Misconfigured { service, message },
            Class::Other => Error::Aws { service, message },
        }
    }
}

/// Whether `raw` is an HTTP answer with a 5xx status.
fn is_server_error<R: 'static>(raw: &R) -> bool {
    (raw as &dyn std::any::Any)
        .downcast_ref::<aws_sdk_dynamodb::config::http::HttpResponse>()
        .is_some_and(|response| response.status().is_server_error())
}

/// How an AWS error code is classified.
enum Class {
    Transient,
    Configuration,
    Other,
}

impl Class {
    fn of_code(code: Option<&str>) -> Self {
        match code {
            Some(code) if TRANSIENT_CODES.contains(&code) => Class::Transient,
            Some(code) if CONFIGURATION_CODES.contains(&code) => Class::Configuration,
            _ => Class::Other,
        }
    }
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

    #[test]
    fn a_5xx_naming_no_known_code_is_unavailable() {
        use aws_sdk_dynamodb::config::http::HttpResponse;
        use aws_smithy_types::body::SdkBody;
        let answer = |status: u16| {
            SdkError::service_error(
                UpdateItemError::generic(ErrorMetadata::builder().build()),
                HttpResponse::new(status.try_into().unwrap(), SdkBody::empty()),
            )
        };
        assert!(Error::sdk("UpdateItem", answer(500)).is_unavailable());
        assert!(Error::sdk("UpdateItem", answer(503)).is_unavailable());
        assert!(matches!(
            Error::sdk("UpdateItem", answer(400)),
            Error::Aws { .. }
        ));
    }

    #[test]
    fn refusals_for_the_deployment_are_misconfigured() {
        for code in [
            "AccessDeniedException",
            "ResourceNotFoundException",
            "AWS.SimpleQueueService.NonExistentQueue",
            "UnrecognizedClientException",
        ] {
            let error = Error::sdk("SendMessage", service_error(code));
            assert!(
                matches!(
                    error,
                    Error::Misconfigured {
                        service: "SendMessage",
                        ..
                    }
                ),
                "{code}: {error:?}"
            );
        }
    }
}
