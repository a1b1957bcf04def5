//! The FTGO local stack (DESIGN §7), driven by `template.yaml`: what `ftgo run` starts. Its
//! binary, `ftgo-local`, is what the `ftgo` command line (`ftgo-cli`, which links none of this)
//! hands `run`, `provision`, `gateway`, `bridge` and `lambda-config` to.
//!
//! - [`provision`]: create the template's tables, buckets, queues and secrets at an endpoint
//!   (moto server, DynamoDB Local, ...).
//! - [`gateway`]: the local API gateway (HTTP → API Gateway HTTP API v2 events → functions).
//! - [`bridge`]: the event-source bridge (DynamoDB streams and SQS queues → functions, with
//!   Lambda's batching and retry semantics).
//! - [`stack::functions`]: the `cargo lambda watch` servers of the local stack, supervised.
//! - [`invoke`]: invoking a function through the runtime emulator (`cargo lambda watch`).
//! - [`stack`]: the whole local stack of `make run` (processes, readiness, shutdown).
//!
//! The template model and the local JWTs are the CLI's ([`ftgo_cli::template`],
//! [`ftgo_cli::token`]), re-exported here because this crate's API speaks them. No table,
//! bucket, queue or route is named in this crate's code: they all come from the template.

pub mod api_description;
pub mod bridge;
pub mod gateway;
pub mod invoke;
/// Free TCP ports for the servers the local stack and the tests start (the CLI's own tests use
/// the same registry, so it lives in `ftgo-cli`).
pub use ftgo_cli::ports;
pub mod provision;
pub mod stack;

pub use ftgo_cli::{Error, Result, template, token};
