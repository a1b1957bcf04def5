//! The FTGO order domain, as plain Rust.
//!
//! * [`order::Order`] and [`delivery::Delivery`] are event-sourced aggregates in the shape
//!   `cqrs-es` made familiar: [`Aggregate::handle`] decides which events a command produces,
//!   [`Aggregate::apply`] evolves state from an event. Both are pure.
//! * [`guard`] is the cross-aggregate rule: which other stream of its order a command reads.
//! * [`event`] holds the stored-event envelope, schema versions and upcasters.
//! * [`view`] holds the order-history view rules: how each event changes a view item.
//! * [`money`] keeps amounts in integer cents.
//! * [`access`] decides who may do what (callers, scopes, ownership).
//! * [`route`] declares each HTTP route once: its key, command, rights and operation.
//! * [`scope`] names the roles beyond a consumer's own (`ftgo/restaurant`, ...).
//!
//! Nothing here knows about DynamoDB, S3, SQS or Lambda: adapters live in `ftgo-aws`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access;
pub mod aggregate;
pub mod aggregate_type;
pub mod delivery;
pub mod error;
pub mod event;
pub mod guard;
pub mod money;
pub mod order;
pub mod route;
pub mod scope;
pub mod token;
pub mod view;

pub use aggregate::{Aggregate, AggregateType};
pub use error::DomainError;
pub use money::Money;
