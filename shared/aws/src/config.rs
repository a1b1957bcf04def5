//! Configuration, read once at cold start into a typed struct, and the table keys.
//!
//! Resource names come from the environment that `template.yaml` sets (and the local stack
//! sets from the same template); key attribute names are declared here, once.

use std::env;

use ftgo_domain::access::RoleClaims;
use thiserror::Error;

use crate::faults;

pub mod lazy_tls;

/// Attribute names of the event table (`ftgo-events`).
pub mod events_table {
    /// Partition key: `<AggregateType>#<aggregateId>`.
    pub const STREAM_ID: &str = "streamId";
    /// Sort key: the version within the stream.
    pub const VERSION: &str = "version";
    /// The event's globally unique id: how an append recognises its own stored write.
    pub const EVENT_ID: &str = "eventId";
    /// When the event occurred (RFC 3339 text).
    pub const OCCURRED_AT: &str = "occurredAt";
}

/// Attribute names of the snapshot table (`ftgo-snapshots`).
pub mod snapshots_table {
    /// Partition key.
    pub const STREAM_ID: &str = "streamId";
    /// The stream version the snapshot folds up to.
    pub const VERSION: &str = "version";
}

/// Attribute names of the order-history view table (`ftgo-order-history`).
pub mod order_history_table {
    /// Partition key.
    pub const ORDER_ID: &str = "orderId";
    /// GSI partition key.
    pub const CONSUMER_ID: &str = "consumerId";
    /// GSI sort key: epoch milliseconds.
    pub const CREATION_DATE: &str = "creationDate";
    /// Duplicate-detection attribute of the Order source.
    pub const ORDER_VERSION: &str = "orderVersion";
    /// Duplicate-detection attribute of the Delivery source.
    pub const DELIVERY_VERSION: &str = "deliveryVersion";
}

/// Why the configuration could not be read.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A required variable is missing.
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// A variable has an unusable value.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// Everything the functions need to know about their surroundings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The event table.
    pub events_table: String,
    /// The snapshot table.
    pub snapshots_table: String,
    /// The order-history view table.
    pub order_history_table: String,
    /// The order-history GSI by consumer and creation time.
    pub order_history_by_consumer_index: String,
    /// The S3 archive bucket.
    pub archive_bucket: String,
    /// The projector's dead-letter queue URL.
    pub projector_dlq_url: String,
    /// The replay queue URL.
    pub replay_queue_url: String,
    /// The archiver's on-failure queue (`ftgo-archiver-dlq`): where the archive-backfiller
    /// sends its continuations.
    pub archiver_dlq_url: String,
    /// Snapshot every this many events.
    pub snapshot_interval: u64,
    /// The Secrets Manager secret (ARN or name) holding the keys that seal history page
    /// tokens (the query function only).
    pub page_token_secret_id: String,
    /// The claims the caller's roles are read from (`ROLE_CLAIMS`, the template's `RoleClaims`
    /// parameter: `cognito:groups`, `scope`, or both comma-separated); Cognito groups alone
    /// when unset.
    pub role_claims: RoleClaims,
}

/// The variable naming the claims roles are read from ([`Config::role_claims`]).
pub const ROLE_CLAIMS_VAR: &str = "ROLE_CLAIMS";

/// Default snapshot interval.
pub const DEFAULT_SNAPSHOT_INTERVAL: u64 = 100;

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (tests pass a map). Variables a function does
    /// not need may be missing: they read as empty strings, and the adapter that needs one fails
    /// loudly at cold start through [`Config::require`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = |name: &'static str| lookup(name).unwrap_or_default();
        let snapshot_interval = match lookup("SNAPSHOT_INTERVAL") {
            None => DEFAULT_SNAPSHOT_INTERVAL,
            Some(value) => value
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError::Invalid {
                    name: "SNAPSHOT_INTERVAL",
                    reason: format!("{value:?} is not a positive integer"),
                })?,
        };
        if let Some(spec) = lookup(faults::FAULTS_ENV).filter(|spec| !spec.trim().is_empty()) {
            spec.parse::<faults::FaultPlan>()
                .map_err(|error| ConfigError::Invalid {
                    name: faults::FAULTS_ENV,
                    reason: error.to_string(),
                })?;
        }
        let role_claims = match lookup(ROLE_CLAIMS_VAR) {
            None => RoleClaims::default(),
            Some(value) => RoleClaims::parse(&value).map_err(|reason| ConfigError::Invalid {
                name: ROLE_CLAIMS_VAR,
                reason: format!("{value:?}: {reason}"),
            })?,
        };
        Ok(Self {
            events_table: text("EVENTS_TABLE"),
            snapshots_table: text("SNAPSHOTS_TABLE"),
            order_history_table: text("ORDER_HISTORY_TABLE"),
            order_history_by_consumer_index: text("ORDER_HISTORY_BY_CONSUMER_INDEX"),
            archive_bucket: text("ARCHIVE_BUCKET"),
            projector_dlq_url: text("PROJECTOR_DLQ_URL"),
            replay_queue_url: text("REPLAY_QUEUE_URL"),
            archiver_dlq_url: text("ARCHIVER_DLQ_URL"),
            snapshot_interval,
            page_token_secret_id: text("PAGE_TOKEN_SECRET_ID"),
            role_claims,
        })
    }

    /// Fails when a value this function needs is empty.
    pub fn require(value: &str, name: &'static str) -> Result<(), ConfigError> {
        if value.is_empty() {
            Err(ConfigError::Missing(name))
        } else {
            Ok(())
        }
    }
}

/// Loads the AWS SDK configuration once: region, credentials, endpoint (`AWS_ENDPOINT_URL`
/// locally) and the SDK's standard retry mode. When the environment asks for faults
/// ([`faults::FAULTS_ENV`], a local-stack and test knob; [`Config::from_env`] refuses a bad
/// spec at cold start), every client built from it goes through a [`faults::FaultLayer`];
/// otherwise the SDK's own HTTP client is used untouched.
///
/// The HTTPS client is the SDK's own, its TLS roots read on the first connection rather than at
/// cold start ([`lazy_tls`]): nothing is read from disk before the runtime's first poll.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(4));
    match faults::FaultLayer::from_env() {
        Ok(None) => loader.http_client(lazy_tls::https_client()).load().await,
        Ok(Some(layer)) => {
            tracing::warn!(spec = ?env::var(faults::FAULTS_ENV).ok(), "AWS faults injected");
            loader.http_client(layer.http_client()).load().await
        }
        Err(error) => {
            tracing::error!(%error, "faults not injected");
            loader.http_client(lazy_tls::https_client()).load().await
        }
    }
}

/// Initialises JSON `tracing` logs (level from `RUST_LOG`, default `info`), once per process.
pub fn init_tracing() {
    use tracing_subscriber::prelude::*;
    let directive = env::var("RUST_LOG").unwrap_or_default();
    let filter = crate::telemetry::log_filter(if directive.is_empty() {
        "info"
    } else {
        &directive
    });
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(json)
        .with(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn reads_names_and_defaults_the_snapshot_interval() {
        let vars = HashMap::from([("EVENTS_TABLE", "ftgo-events")]);
        let config = Config::from_lookup(|name| vars.get(name).map(|v| v.to_string())).unwrap();
        assert_eq!(config.events_table, "ftgo-events");
        assert_eq!(config.snapshot_interval, DEFAULT_SNAPSHOT_INTERVAL);
    }

    #[test]
    fn refuses_a_fault_spec_that_does_not_parse() {
        let result = Config::from_lookup(|name| (name == "FTGO_FAULTS").then(|| "1:7".to_string()));
        assert!(matches!(
            result,
            Err(ConfigError::Invalid {
                name: "FTGO_FAULTS",
                ..
            })
        ));
        let ok = Config::from_lookup(|name| (name == "FTGO_FAULTS").then(|| "1:0.1".to_string()));
        assert!(ok.is_ok());
    }

    #[test]
    fn roles_come_from_the_configured_claims_groups_alone_by_default() {
        use ftgo_domain::access::RoleClaim;
        let unset = Config::from_lookup(|_| None).unwrap();
        assert_eq!(unset.role_claims, RoleClaims::only(RoleClaim::Groups));
        let both = Config::from_lookup(|name| {
            (name == ROLE_CLAIMS_VAR).then(|| "cognito:groups,scope".to_string())
        })
        .unwrap();
        assert_eq!(both.role_claims, RoleClaims::all());
        let bad = Config::from_lookup(|name| (name == ROLE_CLAIMS_VAR).then(|| "roles".into()));
        assert!(matches!(
            bad,
            Err(ConfigError::Invalid {
                name: ROLE_CLAIMS_VAR,
                ..
            })
        ));
    }

    #[test]
    fn refuses_a_zero_snapshot_interval() {
        let result =
            Config::from_lookup(|name| (name == "SNAPSHOT_INTERVAL").then(|| "0".to_string()));
        assert!(matches!(
            result,
            Err(ConfigError::Invalid {
                name: "SNAPSHOT_INTERVAL",
                ..
            })
        ));
    }
}
