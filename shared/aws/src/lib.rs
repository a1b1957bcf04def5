//! FTGO adapters and Lambda handlers.
//!
//! The domain (`ftgo-domain`) decides; this crate connects it to AWS:
//! * [`event_store`]: DynamoDB event streams and snapshots, conditional appends;
//! * [`commands`]: the application service that loads, decides, appends and retries;
//! * [`auth`]: the caller from the JWT claims API Gateway passes, and its verdicts as answers;
//! * [`http`]: the HTTP error shape and request parsing shared by the HTTP handlers;
//! * [`idempotency`]: `Idempotency-Key` records, and serving a command once per key;
//! * [`order_commands`], [`delivery_commands`]: the command Lambdas' handlers;
//! * [`order_history`]: the order-history view DAO; [`projector`], [`query`]: its Lambdas' handlers;
//! * [`page_token_key`]: the page-token keys, from Secrets Manager;
//! * [`archive`]: the S3 event archive; [`archiver`], [`replay`]: its Lambdas' handlers.
//! * [`verify`]: comparing the view and the archive with the event table.
//! * [`view_snapshot`]: compacted view snapshots at a watermark (the two-step rebuild).
//!
//! Each Lambda's `main.rs` builds its clients once and hands requests to a handler here.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod archive;
pub mod archiver;
pub mod auth;
pub mod commands;
pub mod config;
pub mod delivery_commands;
pub mod error;
pub mod event_store;
pub mod http;
pub mod idempotency;
pub mod order_commands;
pub mod order_history;
pub mod page_token_key;
pub mod projector;
pub mod query;
pub mod replay;
pub mod telemetry;
pub mod verify;
pub mod view_snapshot;

pub use error::Error;

/// Re-exported so that function crates depend on this crate alone.
pub use lambda_http;
/// Re-exported so that function crates depend on this crate alone.
pub use lambda_runtime;
