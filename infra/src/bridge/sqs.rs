//! The SQS poller: receives up to `BatchSize` messages (gathering for at most
//! `MaximumBatchingWindowInSeconds`), invokes the function with an
//! `aws_lambda_events::sqs::SqsEvent`, and deletes what succeeded. Failed messages are left to
//! become visible again after the queue's visibility timeout; redrive is the queue's own job.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName,
};
use bytes::Bytes;
use tokio::sync::watch;

use super::queue::to_delete;
use super::verdict::{Verdict, judge};
use super::{BridgeContext, stopped, wait_or_stop};
use crate::invoke::InvokeError;
use crate::template::QueueSource;

/// Polls `source` until `stop` turns true.
pub(super) async fn run(
    ctx: Arc<BridgeContext>,
    source: QueueSource,
    mut stop: watch::Receiver<bool>,
) {
    let url = source.queue.url.clone();
    let arn = queue_arn(&ctx, &url)
        .await
        .unwrap_or_else(|| source.queue.arn.clone());
    tracing::info!(function = %source.binary, queue = %url, "polling queue");
    ctx.progress.queue_seen(&source.binary, &url);
    let batch_size = source.batch_size;
    while !stopped(&stop) {
        let messages = match gather(&ctx, &url, batch_size, source.batching_window, &mut stop).await
        {
            Ok(m) => m,
            Err(error) => {
                tracing::warn!(queue = %url, %error, "ReceiveMessage failed; retrying");
                if wait_or_stop(&mut stop, ctx.options.poll_interval).await {
                    return;
                }
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let payload = event_payload(&messages, &arn, &ctx.region);
        let ids: Vec<&str> = messages
            .iter()
            .map(|m| m.message_id().unwrap_or_default())
            .collect();
        let function = source.binary.as_str();
        let batch_size = ids.len();
        let (result, took) = ctx.invoke(function, payload, source.timeout).await;
        let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        let timed_out = matches!(result, Err(InvokeError::Timeout { .. }));
        let verdict = match result {
            Ok(invocation) => judge(&invocation, &ids, source.report_batch_item_failures),
            Err(InvokeError::Unreachable {
                url: runtime,
                reason,
            }) => {
                // Not the function's failure (the runtime is restarting): make the messages
                // visible again now rather than after the queue's visibility timeout.
                tracing::warn!(%function, source = %url, batch_size, outcome = "unreachable", duration_ms, %runtime, %reason, "invocation: function runtime unreachable; the messages will be received again");
                release(&ctx, &url, &messages).await;
                if wait_or_stop(&mut stop, ctx.options.max_backoff).await {
                    return;
                }
                continue;
            }
            Err(error) => Verdict::Failed {
                function_error: Some("Unhandled".to_owned()),
                reason: error.to_string(),
            },
        };
        match &verdict {
            Verdict::Success => {
                tracing::info!(%function, source = %url, batch_size, outcome = "ok", duration_ms, "invocation")
            }
            Verdict::Partial(failed) => {
                tracing::warn!(%function, source = %url, batch_size, outcome = "partial", duration_ms, failed = failed.len(), "invocation: partial batch failure; the failed messages come back after the visibility timeout")
            }
            Verdict::Failed { reason, .. } => {
                let outcome = if timed_out { "timeout" } else { "error" };
                tracing::warn!(%function, source = %url, batch_size, outcome, duration_ms, %reason, "invocation: batch failed; messages become visible again after the visibility timeout")
            }
        }
        ctx.progress
            .queue_batch(function, &url, matches!(verdict, Verdict::Success));
        let delete: Vec<&Message> = to_delete(&verdict, messages.len())
            .into_iter()
            .filter_map(|i| messages.get(i))
            .collect();
        for chunk in delete.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                        .ok()
                })
                .collect();
            let deleted = ctx
                .sqs
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await;
            match deleted {
                Ok(out) if out.failed().is_empty() => {}
                Ok(out) => {
                    tracing::warn!(queue = %url, failed = out.failed().len(), "some processed messages could not be deleted; they will be delivered again")
                }
                Err(e) => {
                    tracing::warn!(queue = %url, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "DeleteMessageBatch failed; processed messages will be delivered again")
                }
            }
        }
    }
}

/// Makes `messages` visible again at once.
async fn release(ctx: &BridgeContext, url: &str, messages: &[Message]) {
    for chunk in messages.chunks(10) {
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect();
        if let Err(e) = ctx
            .sqs
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            tracing::warn!(queue = %url, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not release the messages; they come back after the visibility timeout");
        }
    }
}

/// Receives up to `batch_size` messages: waits (long polling) for a first one, then gathers more
/// until the batch is full or the batching window has passed.
async fn gather(
    ctx: &BridgeContext,
    url: &str,
    batch_size: usize,
    window: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Result<Vec<Message>, String> {
    let mut messages: Vec<Message> = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        if stopped(stop) {
            return Ok(messages);
        }
        let want = (batch_size - messages.len()).min(10);
        let wait = match deadline {
            None => 1,
            Some(d) => i32::try_from(d.saturating_duration_since(Instant::now()).as_secs())
                .unwrap_or(0)
                .min(20),
        };
        let out = ctx
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(want).unwrap_or(10))
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        let received = out.messages().len();
        messages.extend(out.messages().iter().cloned());
        if messages.is_empty() {
            return Ok(messages);
        }
        let due = *deadline.get_or_insert_with(|| Instant::now() + window);
        if messages.len() >= batch_size || Instant::now() >= due {
            return Ok(messages);
        }
        if received == 0 && wait == 0 {
            // Less than a second of window left: short polls, not a busy loop.
            let pause = due
                .saturating_duration_since(Instant::now())
                .min(ctx.options.poll_interval);
            if wait_or_stop(stop, pause).await {
                return Ok(messages);
            }
        }
    }
}

async fn queue_arn(ctx: &BridgeContext, url: &str) -> Option<String> {
    let out = ctx
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .ok()?;
    out.attributes()?
        .get(&QueueAttributeName::QueueArn)
        .cloned()
}

/// The `aws_lambda_events::sqs::SqsEvent` payload of `messages` received from the queue `arn`.
pub fn event_payload(messages: &[Message], arn: &str, region: &str) -> Bytes {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut r = SqsMessage::default();
            r.message_id = m.message_id().map(str::to_owned);
            r.receipt_handle = m.receipt_handle().map(str::to_owned);
            r.body = m.body().map(str::to_owned);
            r.md5_of_body = m.md5_of_body().map(str::to_owned);
            r.md5_of_message_attributes = m.md5_of_message_attributes().map(str::to_owned);
            r.attributes = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            r.message_attributes = m
                .message_attributes()
                .map(|attrs| {
                    attrs
                        .iter()
                        .map(|(k, v)| {
                            let mut a = SqsMessageAttribute::default();
                            a.string_value = v.string_value().map(str::to_owned);
                            a.binary_value = v.binary_value().map(|b| base64_data(b.as_ref()));
                            a.string_list_values = v.string_list_values().to_vec();
                            a.binary_list_values = v
                                .binary_list_values()
                                .iter()
                                .map(|b| base64_data(b.as_ref()))
                                .collect();
                            a.data_type = Some(v.data_type().to_owned());
                            (k.clone(), a)
                        })
                        .collect::<HashMap<_, _>>()
                })
                .unwrap_or_default();
            r.event_source_arn = Some(arn.to_owned());
            r.event_source = Some("aws:sqs".to_owned());
            r.aws_region = Some(region.to_owned());
            r
        })
        .collect();
    Bytes::from(serde_json::to_vec(&event).unwrap_or_default())
}

fn base64_data(bytes: &[u8]) -> Base64Data {
    let mut data = Base64Data::default();
    *data = bytes.to_vec();
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_a_lambda_sqs_event() {
        let m = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh-1")
            .body("{\"partition\":\"p\"}")
            .md5_of_body("abc")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
            .build();
        let payload = event_payload(&[m], "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1");
        let v: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        let r = &v["Records"][0];
        assert_eq!(r["messageId"], "m-1");
        assert_eq!(r["receiptHandle"], "rh-1");
        assert_eq!(r["body"], "{\"partition\":\"p\"}");
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "1");
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(r["eventSourceARN"], "arn:aws:sqs:us-east-1:123456789012:q");
        let back: SqsEvent = serde_json::from_value(v).expect("sqs event");
        assert_eq!(back.records[0].message_id.as_deref(), Some("m-1"));
    }
}
