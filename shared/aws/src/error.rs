//! The one error type of the adapters, and its mapping to the HTTP error shape.

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
    /// The client's `If-Match` names a version other than the current one.
    #[error("expected version {expected}, but the current version is {actual}")]
    VersionMismatch {
        /// What the client sent.
        expected: u64,
        /// What the stream holds.
        actual: u64,
    },
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
    /// The view could not be brought up to date with an event yet (for instance, the events
    /// before it are not readable yet); the projector reports the record for a retry.
    #[error("projection: {0}")]
    Projection(String),
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

impl Error {
    /// Wraps an SDK error with the name of the call that failed.
    pub fn aws(service: &'static str, error: impl std::error::Error) -> Self {
        Error::Aws {
            service,
            message: aws_smithy_types::error::display::DisplayErrorContext(error).to_string(),
        }
    }
}

impl From<serde_dynamo::Error> for Error {
    fn from(error: serde_dynamo::Error) -> Self {
        Error::Codec(error.to_string())
    }
}
