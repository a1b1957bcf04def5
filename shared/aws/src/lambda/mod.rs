//! Handler layer: one module per Lambda function. Each turns its trigger (an HTTP request, a
//! stream batch, an SQS message) into calls of the application services and stores, and
//! their results into the trigger's answer. The functions' `main.rs` only wire these.
//! [`idempotent`] is the HTTP side of `Idempotency-Key`, which both command handlers share; the
//! key itself is bound to the command's write ([`crate::commands::key_binding`]).

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

use ftgo_domain::access::{Action, Caller};
use http::StatusCode;
use serde::Serialize;

use crate::commands::{CommandContext, OwnerCheck};
use crate::http::{ApiError, if_match, json_response, request_id, respond, with_etag};

/// Serves one command request the way both command functions do: logged and counted. (An
/// `Idempotency-Key` costs no call of its own: the command finds what the key wrote while it
/// loads, and answers that.)
async fn serve_command<Fut>(request: &Request, dispatched: impl FnOnce() -> Fut) -> Response<Body>
where
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let span = tracing::info_span!("command", correlationId = %request_id(request));
    let answer = async {
        let response = respond(dispatched().await);
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
        owner: None,
    })
}

/// The context of a command on an existing aggregate: [`command_context`], with the owner check
/// of `action` for `caller` (the service makes it against the aggregate it loads anyway).
fn owner_context(
    request: &Request,
    caller: Caller,
    action: Action,
) -> Result<CommandContext, ApiError> {
    Ok(CommandContext {
        owner: Some(OwnerCheck { caller, action }),
        ..command_context(request)?
    })
}

/// A command's answer: `body` with `status`, the stream's `version` as its `ETag`, marked as the
/// repeat of an earlier call's answer when `replayed` (the [`idempotent::REPLAYED_HEADER`]).
fn command_answer(
    status: StatusCode,
    body: &impl Serialize,
    version: u64,
    replayed: bool,
) -> Response<Body> {
    let mut response = with_etag(json_response(status, body), version);
    if replayed {
        response.headers_mut().insert(
            http::HeaderName::from_static(idempotent::REPLAYED_HEADER),
            http::HeaderValue::from_static("true"),
        );
    }
    response
}
