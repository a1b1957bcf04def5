//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in `ftgo-infra`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The template is not valid YAML.
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// The template is valid YAML but not a template this crate understands (missing or mistyped
    /// property, unknown reference, unsupported intrinsic function, ...). The message says where.
    #[error("template: {0}")]
    Template(String),
    /// An AWS (or emulator) call failed.
    #[error("{operation} {resource}: {message}")]
    Aws {
        /// The API operation, e.g. `CreateTable`.
        operation: &'static str,
        /// The resource it was called for (table, bucket or queue name).
        resource: String,
        /// The SDK's error with its full context.
        message: String,
    },
}

impl Error {
    pub(crate) fn template(message: impl Into<String>) -> Self {
        Error::Template(message.into())
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
