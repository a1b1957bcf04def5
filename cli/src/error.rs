//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong reading the template or creating its resources (`ftgo-cli`, and
/// the local stack's provisioning in `ftgo-infra`).
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
    /// The template is not one this crate understands: `message` says where.
    pub fn template(message: impl Into<String>) -> Self {
        Error::Template(message.into())
    }

    /// An AWS call (`operation`, e.g. `CreateTable`) on `resource` failed: the SDK's error with
    /// its full context.
    pub fn aws<E: std::error::Error>(operation: &'static str, resource: &str, err: E) -> Self {
        Error::Aws {
            operation,
            resource: resource.to_owned(),
            message: aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
        }
    }

    /// A request for `resource` could not be built (`what`: the part that was invalid).
    pub fn invalid_request(
        what: &'static str,
        resource: &str,
        err: impl std::fmt::Display,
    ) -> Self {
        Error::Aws {
            operation: what,
            resource: resource.to_owned(),
            message: format!("invalid request: {err}"),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
