//! Handler layer: one module per Lambda function. Each turns its trigger (an HTTP request, a
//! stream batch, a replay request) into calls of the application services and stores, and
//! their results into the trigger's answer. The functions' `main.rs` only wire these.
//!
//! The `archive-replayer` handler still lives beside its application service
//! ([`crate::replay`]), which is moved only as a whole file while another change edits it.

pub mod archive_backfiller;
pub mod archive_replayer;
pub mod delivery_commands;
pub mod event_archiver;
pub mod order_commands;
pub mod order_history_projector;
pub mod order_history_query;

use std::future::Future;

use lambda_http::{Body, Request, Response};

use crate::commands::CommandService;
use crate::http::{ApiError, respond};

/// Serves one command request the way both command functions do: once per `Idempotency-Key`
/// (a replay answers the first answer without running `route` again), logged and counted.
async fn serve_command<Fut>(
    service: &CommandService,
    request: &Request,
    route: impl FnOnce() -> Fut,
) -> Response<Body>
where
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let answer = crate::store::idempotency::serve(service.idempotency(), request, || async {
        respond(route().await)
    });
    crate::telemetry::command(request, answer).await
}
