//! FTGO adapters and Lambda handlers, in layers (each depends only on the ones below it):
//!
//! * [`lambda`] — handlers, one module per function (`order_commands`, `delivery_commands`,
//!   `order_history_query`, `order_history_projector`, `event_archiver`, `archive_replayer`,
//!   `archive_backfiller`);
//! * application services — [`commands`] (load, decide, append, retry), [`projector`] (stream
//!   records to view updates, gap filling, dead letters), [`replay`] (archive replay plans and
//!   the replayer; [`replay_checkpoints`] records what a replay applied), [`archive_backfill`] (repairing the archive from the event table, for the
//!   days an archiver's on-failure record spans), [`dlq`] (reading and re-driving the stream
//!   consumers' dead letters), [`projection_lag`] (how far the view is behind the events);
//! * [`on_failure`] — Lambda's on-failure record of a stream batch it gave up on (the message
//!   of a `DestinationConfig.OnFailure` queue), read by [`dlq`] and [`archive_backfill`];
//! * [`store`] — adapters over AWS resources: the event store, the order-history view DAO, the
//!   S3 archive, page-token keys, stream-image decoding;
//! * the edge, used by all — [`routes`] (the route keys of `template.yaml`), [`http`] (error
//!   shape and request parsing), [`conditional`] (`ETag`, `If-Match`, `If-None-Match`), [`auth`] (the caller from the JWT claims), [`telemetry`],
//!   [`config`], [`error`];
//! * archive tooling — [`verify`] (comparing the view and the archive with the event table),
//!   [`view_snapshot`] (compacted view snapshots at a watermark, the two-step rebuild).
//!
//! The domain (`ftgo-domain`) decides; this crate connects it to AWS. Each Lambda's `main.rs`
//! builds its clients once and hands requests to a handler here.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "s3")]
pub mod archive_backfill;
pub mod auth;
pub mod commands;
pub mod conditional;
pub mod config;
#[cfg(all(feature = "sqs", feature = "streams"))]
pub mod dlq;
pub mod error;
pub mod faults;
pub mod http;
pub mod lambda;
pub mod on_failure;
pub mod projection_lag;
#[cfg(feature = "sqs")]
pub mod projector;
#[cfg(all(feature = "s3", feature = "sqs"))]
pub mod replay;
#[cfg(feature = "s3")]
pub mod replay_checkpoints;
pub mod routes;
pub mod store;
pub mod telemetry;
pub mod verify;
#[cfg(feature = "s3")]
pub mod view_snapshot;

pub use error::Error;

/// Re-exported so that function crates depend on this crate alone.
pub use lambda_http;
/// Re-exported so that function crates depend on this crate alone.
pub use lambda_runtime;
