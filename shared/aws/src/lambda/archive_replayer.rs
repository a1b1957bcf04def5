//! The `archive-replayer` handler: each SQS message of the replay queue is one
//! [`ReplayRequest`] (the message format is in [`crate::replay`]), replayed by the
//! [`Replayer`] service; a message that fails is reported in `batchItemFailures`, so SQS
//! redelivers only it (and, after the queue's `maxReceiveCount`, moves it to the replay
//! dead-letter queue).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;

use crate::error::Error;
use crate::replay::{ReplayRequest, ReplaySummary, Replayer};

/// Replays one message; `Err` when the message must come back (retry, then dead letter). Near
/// `deadline` (the invocation's) the replayer sends a continuation instead of running out of
/// time ([`Replayer::replay_until`]).
pub async fn process_message(
    replayer: &Replayer,
    message: &SqsMessage,
    deadline: Option<std::time::SystemTime>,
) -> Result<ReplaySummary, Error> {
    let request = ReplayRequest::parse(message.body.as_deref().unwrap_or_default())?;
    replayer.replay_until(&request, deadline).await
}

/// Replays a batch of messages one after the other; the failed ones are reported so that SQS
/// redelivers only those. `Err` when a failed message carries no id to report.
pub async fn process_batch(
    replayer: &Replayer,
    event: &SqsEvent,
    deadline: Option<std::time::SystemTime>,
) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    for message in &event.records {
        if let Err(error) = process_message(replayer, message, deadline).await {
            tracing::error!(message_id = ?message.message_id, %error, "replay failed: the message comes back");
            match &message.message_id {
                Some(id) => response.add_failure(id.clone()),
                None => return Err(error),
            }
        }
    }
    Ok(response)
}

/// Serves one invocation of the `archive-replayer` function.
pub async fn handle(
    replayer: &Replayer,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    // A context without a deadline (0: a local test invocation) never continues.
    let deadline = (event.context.deadline > 0).then(|| event.context.deadline());
    Ok(process_batch(replayer, &event.payload, deadline).await?)
}
