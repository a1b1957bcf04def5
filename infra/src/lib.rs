//! The FTGO local stack, driven by `template.yaml`.
//!
//! - [`template`]: parse the SAM template (CloudFormation tags included) and resolve it for a
//!   stack: tables, buckets, queues, functions, HTTP routes, event sources.
//! - [`provision`]: create the template's tables, buckets and queues at an endpoint (moto server,
//!   DynamoDB Local, ...).
//! - [`gateway`]: the local API gateway (HTTP → API Gateway HTTP API v2 events → functions).
//! - [`bridge`]: the event-source bridge (DynamoDB streams and SQS queues → functions, with
//!   Lambda's batching and retry semantics).
//! - [`stack::functions`]: the `cargo lambda watch` servers of the local stack, supervised.
//! - [`invoke`]: invoking a function through the runtime emulator (`cargo lambda watch`).
//! - [`token`]: local JWTs (HS256): what the gateway verifies in place of API Gateway's JWT
//!   authorizer, and what `ftgo token` prints.
//! - [`replay_cmd`]: `ftgo replay`, `verify-view` and `archive verify|backfill`.
//! - [`ops`] and [`status`]: `ftgo status` and `ftgo dlq list|redrive`, over the services of
//!   `ftgo-aws` (`ftgo_aws::dlq`, `ftgo_aws::projection_lag`): here the template's names, the
//!   arguments and the printing.
//! - [`deployed`]: a deployed stack's `Outputs` (CloudFormation), the names `ftgo status` and
//!   `ftgo dlq` use in AWS in place of the template's.
//! - [`api_cmd`]: `ftgo order`, `delivery`, `history` and `seed`, over the HTTP API.
//! - [`stack`]: the whole local stack of `make run` (processes, readiness, shutdown).
//!
//! No table, bucket, queue or route is named in this crate's code: they all come from the
//! template.

pub mod api_cmd;
pub mod api_description;
pub mod bridge;
pub mod deployed;
pub mod error;
pub mod gateway;
pub mod invoke;
pub mod ops;
pub mod provision;
pub mod replay_cmd;
pub mod route_verbs;
pub mod stack;
pub mod status;
pub mod target;
pub mod template;
pub mod token;

pub use error::{Error, Result};
