//! Handler layer: one module per Lambda function. Each turns its trigger (an HTTP request, a
//! stream batch, an SQS message) into calls of the application services and stores, and
//! their results into the trigger's answer. The functions' `main.rs` only wire these.
//! [`idempotent`] is the HTTP side of `Idempotency-Key`, which both command handlers share.

#[cfg(all(feature = "s3", feature = "sqs"))]
pub mod archive_backfiller;
#[cfg(all(feature = "s3", feature = "sqs"))]
pub mod archive_replayer;
pub mod delivery_commands;
#[cfg(feature = "s3")]
pub mod event_archiver;
pub mod idempotent;
pub mod order_commands;
#[cfg(feature = "sqs")]
pub mod order_history_projector;
#[cfg(feature = "secrets")]
pub mod order_history_query;

use std::future::Future;

use lambda_http::{Body, Request, Response};

use crate::commands::{CommandContext, CommandService};
use crate::http::{ApiError, if_match, request_id, respond};

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
    let span = tracing::info_span!("command", correlationId = %request_id(request));
    let answer = async {
        let response = idempotent::serve(service.idempotency(), request, || async {
            respond(route().await)
        })
        .await;
        tracing::info!(status = response.status().as_u16(), "command answered");
        response
    };
    // Inside the span, so that each line carries the `correlationId`: the API request id, the
    // one stored in the metadata of every event the command appends.
    tracing::Instrument::instrument(answer, span).await
}

/// The context of a command: the request id (recorded as the events' correlation id), the
/// `If-Match` version, if sent, and the `Idempotency-Key`, if sent, bound to the write.
fn command_context(request: &Request) -> Result<CommandContext, ApiError> {
    Ok(CommandContext {
        request_id: request_id(request),
        expected_version: if_match(request)?,
        key: idempotent::identity(request)?.map(|identity| identity.stamp()),
    })
}
