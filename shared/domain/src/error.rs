//! The one error type of the domain.

use thiserror::Error;

/// Why the domain refused a command or could not read an event.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// The command's input is invalid; `field` names the offending field.
    #[error("{field}: {message}")]
    Validation {
        /// JSON path of the offending field, e.g. `lineItems[0].quantity`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The aggregate is not in a state that allows the command.
    #[error("{0}")]
    InvalidState(String),
    /// The aggregate does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A stored event could not be understood.
    #[error("cannot decode event: {0}")]
    Decode(String),
}

impl DomainError {
    /// A validation error naming `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }
}
