//! The `ftgo` command line (DESIGN §10): client commands over the HTTP API and operator
//! commands over AWS or an emulator. It links no emulator code: `ftgo run` and `ftgo provision`
//! hand over to the local stack's own binary, `ftgo-local` (the `ftgo-infra` crate), found next
//! to `ftgo` or on `PATH` ([`handover`]).
//!
//! - [`template`]: parse the SAM template (CloudFormation tags included) and resolve it for a
//!   stack: tables, buckets, queues, functions, HTTP routes, event sources. The commands name
//!   nothing themselves; the local stack reads the same template.
//! - [`deployed`]: a deployed stack's `Outputs` (CloudFormation), the names the commands use in
//!   AWS in place of the template's.
//! - [`target`]: which stack a command works on (SDK endpoint settings, else the local stack
//!   `ftgo run` announced, else AWS).
//! - [`local`]: what a running local stack shares with the commands (workspace root, announced
//!   endpoint, the bridge's progress file) and the SDK settings for an emulator.
//! - [`tables`]: creating one of the template's tables (`ftgo replay --create-table`).
//! - [`token`]: local JWTs (HS256): what `ftgo token` prints and the local gateway verifies.
//! - [`api_cmd`]: `ftgo order`, `delivery`, `history` and `seed`, over the HTTP API.
//! - [`ops`] and [`status`]: `ftgo status` and `ftgo dlq list|redrive|discard`, over the services of
//!   `ftgo-aws` (`ftgo_aws::dlq`, `ftgo_aws::projection_lag`).
//! - [`replay_cmd`]: `ftgo replay`, `verify-view`, `archive verify|backfill`, `snapshot-view`.
//! - [`handover`]: `ftgo run|provision|gateway|bridge|lambda-config`, run by `ftgo-local`.
//! - [`completions`]: `ftgo completions <shell>`.
//! - [`runtime`]: the async runtime both command lines run a command on, and its exit code.

pub mod api_cmd;
pub mod completions;
pub mod deployed;
pub mod error;
pub mod handover;
pub mod local;
pub mod logs;
pub mod ops;
pub mod ports;
pub mod replay_cmd;
pub mod route_verbs;
pub mod runtime;
pub mod status;
pub mod tables;
pub mod target;
pub mod template;
pub mod token;

pub use error::{Error, Result};
