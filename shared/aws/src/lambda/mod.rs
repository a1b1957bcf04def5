//! Handler layer: one module per Lambda function. Each turns its trigger (an HTTP request, a
//! stream batch, a replay request) into calls of the application services and stores, and
//! their results into the trigger's answer. The functions' `main.rs` only wire these.
//!
//! The `archive-replayer` handler still lives beside its application service
//! ([`crate::replay`]), which is moved only as a whole file while another change edits it.

pub mod delivery_commands;
pub mod event_archiver;
pub mod order_commands;
pub mod order_history_projector;
pub mod order_history_query;
