//! The DynamoDB stream poller: reads every shard of a table's stream through the DynamoDB
//! Streams API and drives a [`ShardState`] per shard, invoking the function with
//! `aws_lambda_events::dynamodb::Event` payloads.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use bytes::Bytes;
use chrono::Utc;
use ftgo_aws::store::stream_image::event_record;
use serde_json::Value;
use tokio::sync::watch;

use super::failure::{FailureOrigin, on_failure_message};
use super::shard::{Entry, FailureReport, Next, ShardState};
use super::verdict::{Verdict, judge};
use super::{BridgeContext, stopped, wait_or_stop};
use crate::invoke::InvokeError;
use crate::template::{StartingPosition, StreamSource};

/// Polls `source` until `stop` turns true.
pub(super) async fn run(
    ctx: Arc<BridgeContext>,
    source: StreamSource,
    mut stop: watch::Receiver<bool>,
) {
    let source = Arc::new(source);
    let Some(stream_arn) = find_stream(&ctx, &source, &mut stop).await else {
        return;
    };
    tracing::info!(function = %source.binary, table = %source.table.name, %stream_arn, "polling stream");
    let mut known: HashSet<String> = HashSet::new();
    let (done_tx, done_rx) = watch::channel(HashSet::<String>::new());
    let done_tx = Arc::new(done_tx);
    let mut tasks = tokio::task::JoinSet::new();
    let mut first_pass = true;
    loop {
        match describe_shards(&ctx, &stream_arn).await {
            Ok(shards) => {
                for (shard_id, parent) in shards {
                    if !known.insert(shard_id.clone()) {
                        continue;
                    }
                    // Shards that exist when the bridge starts begin where the template says;
                    // shards born later are read from their start so nothing is missed.
                    let position = if first_pass {
                        source.starting_position
                    } else {
                        StartingPosition::TrimHorizon
                    };
                    let parent = parent.filter(|p| known.contains(p));
                    tasks.spawn(run_shard(
                        Arc::clone(&ctx),
                        Arc::clone(&source),
                        stream_arn.clone(),
                        shard_id,
                        parent,
                        position,
                        stop.clone(),
                        Arc::clone(&done_tx),
                        done_rx.clone(),
                    ));
                }
                first_pass = false;
            }
            Err(error) => tracing::warn!(%stream_arn, %error, "DescribeStream failed; retrying"),
        }
        if wait_or_stop(&mut stop, ctx.options.discovery_interval).await {
            break;
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn find_stream(
    ctx: &BridgeContext,
    source: &StreamSource,
    stop: &mut watch::Receiver<bool>,
) -> Option<String> {
    let mut warned = false;
    loop {
        let listed = ctx
            .streams
            .list_streams()
            .table_name(&source.table.name)
            .send()
            .await;
        match listed {
            Ok(out) => {
                if let Some(arn) = out
                    .streams()
                    .iter()
                    .filter(|s| s.table_name() == Some(source.table.name.as_str()))
                    .filter_map(|s| s.stream_arn())
                    .max()
                {
                    return Some(arn.to_owned());
                }
                if !warned {
                    tracing::warn!(table = %source.table.name, function = %source.binary, "table has no stream yet; waiting");
                    warned = true;
                }
            }
            Err(error) => {
                if !warned {
                    tracing::warn!(table = %source.table.name, error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(&error), "ListStreams failed; retrying");
                    warned = true;
                }
            }
        }
        if wait_or_stop(stop, ctx.options.discovery_interval).await {
            return None;
        }
    }
}

/// Every shard of the stream with its parent.
async fn describe_shards(
    ctx: &BridgeContext,
    stream_arn: &str,
) -> Result<Vec<(String, Option<String>)>, String> {
    let mut shards = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let out = ctx
            .streams
            .describe_stream()
            .stream_arn(stream_arn)
            .set_exclusive_start_shard_id(start.clone())
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string())?;
        let Some(description) = out.stream_description() else {
            return Ok(shards);
        };
        for shard in description.shards() {
            if let Some(id) = shard.shard_id() {
                shards.push((id.to_owned(), shard.parent_shard_id().map(str::to_owned)));
            }
        }
        match description.last_evaluated_shard_id() {
            Some(last) if start.as_deref() != Some(last) => start = Some(last.to_owned()),
            _ => return Ok(shards),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_shard(
    ctx: Arc<BridgeContext>,
    source: Arc<StreamSource>,
    stream_arn: String,
    shard_id: String,
    parent: Option<String>,
    position: StartingPosition,
    mut stop: watch::Receiver<bool>,
    done_tx: Arc<watch::Sender<HashSet<String>>>,
    mut done_rx: watch::Receiver<HashSet<String>>,
) {
    // Lambda finishes a parent shard before it reads its children: order per item holds.
    if let Some(parent) = &parent {
        loop {
            if done_rx.borrow().contains(parent) {
                break;
            }
            tokio::select! {
                changed = done_rx.changed() => if changed.is_err() { return },
                _ = stop.changed() => return,
            }
        }
    }
    let mut poller = ShardPoller {
        ctx: Arc::clone(&ctx),
        source: Arc::clone(&source),
        stream_arn: stream_arn.clone(),
        shard_id: shard_id.clone(),
        state: ShardState::new(source.policy.clone()),
        iterator: None,
        last_sequence: None,
        closed: false,
        position,
        empty_reads: 0,
    };
    ctx.progress
        .shard_seen(&source.binary, &source.table.name, &shard_id);
    tracing::debug!(function = %source.binary, %shard_id, "reading shard");
    poller.run(&mut stop).await;
    if poller.closed && poller.state.is_empty() {
        done_tx.send_modify(|done| {
            done.insert(shard_id);
        });
    }
}

struct ShardPoller {
    ctx: Arc<BridgeContext>,
    source: Arc<StreamSource>,
    stream_arn: String,
    shard_id: String,
    state: ShardState<EventRecord>,
    iterator: Option<String>,
    last_sequence: Option<String>,
    closed: bool,
    position: StartingPosition,
    empty_reads: u32,
}

impl ShardPoller {
    async fn run(&mut self, stop: &mut watch::Receiver<bool>) {
        let poll = self.ctx.options.poll_interval;
        loop {
            if stopped(stop) {
                return;
            }
            if !self.closed
                && self.state.room() > 0
                && let Err(error) = self.fetch().await
            {
                tracing::warn!(shard = %self.shard_id, function = %self.source.binary, %error, "GetRecords failed; retrying");
                self.iterator = None;
                if wait_or_stop(stop, poll).await {
                    return;
                }
                continue;
            }
            match self.state.next(Instant::now(), Utc::now()) {
                Next::Invoke(batch) => {
                    if !self.invoke(batch, stop).await {
                        return;
                    }
                }
                Next::Discard(report) => {
                    if !self.give_up(&report, stop).await {
                        return;
                    }
                }
                Next::WaitUntil(at) => {
                    let wait = at.saturating_duration_since(Instant::now()).min(poll);
                    if wait_or_stop(stop, wait).await {
                        return;
                    }
                }
                Next::Idle => {
                    if self.closed {
                        tracing::debug!(shard = %self.shard_id, "shard closed and drained");
                        return;
                    }
                    if wait_or_stop(stop, poll).await {
                        return;
                    }
                }
            }
        }
    }

    async fn fetch(&mut self) -> Result<(), String> {
        let iterator = match self.iterator.take() {
            Some(it) => it,
            None => self.new_iterator().await?,
        };
        let limit = i32::try_from(self.state.room().min(1000)).unwrap_or(1000);
        let out = self
            .ctx
            .streams
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string())?;
        let now = Instant::now();
        let entries: Vec<Entry<EventRecord>> = out
            .records()
            .iter()
            .map(|r| {
                let record = event_record(r, &self.stream_arn, &self.ctx.region);
                Entry {
                    sequence_number: record.change.sequence_number.clone().unwrap_or_default(),
                    arrival: record.change.approximate_creation_date_time,
                    record,
                }
            })
            .collect();
        if let Some(last) = entries.last() {
            self.last_sequence = Some(last.sequence_number.clone());
            self.empty_reads = 0;
        } else {
            self.empty_reads = self.empty_reads.saturating_add(1);
        }
        self.state.push(entries, now);
        match out.next_shard_iterator() {
            Some(next) => self.iterator = Some(next.to_owned()),
            None => self.closed = true,
        }
        // An emulator's iterator can go stale while the stream moves on (moto's did after a
        // cancelled transaction): after a run of empty reads, take a fresh one after the last
        // record read. Never from LATEST before the first record: that could skip records.
        let refresh = self.ctx.options.refresh_after_empty_reads;
        if refresh > 0
            && self.empty_reads >= refresh
            && !self.closed
            && (self.last_sequence.is_some() || self.position == StartingPosition::TrimHorizon)
        {
            tracing::debug!(function = %self.source.binary, shard = %self.shard_id, after = ?self.last_sequence, "no records for a while; acquiring a fresh iterator");
            self.iterator = None;
            self.empty_reads = 0;
        }
        Ok(())
    }

    async fn new_iterator(&self) -> Result<String, String> {
        let request = self
            .ctx
            .streams
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(&self.shard_id);
        let request = match &self.last_sequence {
            Some(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
            None => request.shard_iterator_type(match self.position {
                StartingPosition::TrimHorizon => ShardIteratorType::TrimHorizon,
                StartingPosition::Latest => ShardIteratorType::Latest,
            }),
        };
        let out = request
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string())?;
        out.shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| "GetShardIterator returned no iterator".to_owned())
    }

    /// Invokes the function with `batch` and applies the verdict; false when stopping.
    async fn invoke(
        &mut self,
        batch: Vec<Entry<EventRecord>>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let payload = event_payload(batch.iter().map(|e| &e.record));
        let ids: Vec<&str> = batch.iter().map(|e| e.sequence_number.as_str()).collect();
        let function = self.source.binary.as_str();
        let table = self.source.table.name.as_str();
        self.ctx
            .progress
            .shard_in_flight(function, table, &self.shard_id, true);
        let (result, took) = self
            .ctx
            .invoke(function, payload, self.source.timeout)
            .await;
        self.ctx
            .progress
            .shard_in_flight(function, table, &self.shard_id, false);
        let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        let batch_size = ids.len();
        let timed_out = matches!(result, Err(InvokeError::Timeout { .. }));
        let verdict = match result {
            Ok(invocation) => judge(
                &invocation,
                &ids,
                self.state.policy().report_batch_item_failures,
            ),
            Err(InvokeError::Unreachable { url, reason }) => {
                // Not the function's failure: the runtime is (re)starting. Try again, uncounted.
                tracing::warn!(%function, source = %self.shard_id, batch_size, outcome = "unreachable", duration_ms, %url, %reason, "invocation: function runtime unreachable; retrying the batch");
                return !wait_or_stop(stop, self.ctx.options.max_backoff).await;
            }
            // A timeout is a function error, as on Lambda: retried, bisected, given up.
            Err(error) => Verdict::Failed {
                function_error: Some("Unhandled".to_owned()),
                reason: error.to_string(),
            },
        };
        match &verdict {
            Verdict::Success => {
                tracing::info!(%function, source = %self.shard_id, batch_size, outcome = "ok", duration_ms, "invocation")
            }
            Verdict::Partial(failed) => {
                tracing::warn!(%function, source = %self.shard_id, batch_size, outcome = "partial", duration_ms, failed = failed.len(), first_failed = %ids.get(failed[0]).copied().unwrap_or_default(), "invocation: partial batch failure; retrying from the lowest failed record")
            }
            Verdict::Failed { reason, .. } => {
                let outcome = if timed_out { "timeout" } else { "error" };
                tracing::warn!(%function, source = %self.shard_id, batch_size, outcome, duration_ms, %reason, "invocation: batch failed")
            }
        }
        let done_through = match &verdict {
            Verdict::Success => ids.last().copied(),
            Verdict::Partial(failed) => failed
                .first()
                .and_then(|first| first.checked_sub(1))
                .and_then(|i| ids.get(i).copied()),
            Verdict::Failed { .. } => None,
        };
        if let Some(sequence) = done_through {
            self.ctx.progress.shard_processed(
                function,
                table,
                &self.shard_id,
                sequence,
                Utc::now(),
            );
        }
        let completion = self.state.complete(&verdict);
        for report in &completion.given_up {
            if !self.give_up(report, stop).await {
                return false;
            }
        }
        if completion.retrying {
            let backoff = self.ctx.backoff(completion.retries);
            return !wait_or_stop(stop, backoff).await;
        }
        true
    }

    /// Sends the on-failure message for `report` (retrying until it is sent); false when stopping.
    async fn give_up(&self, report: &FailureReport, stop: &mut watch::Receiver<bool>) -> bool {
        let function_arn = self.ctx.function_arn(&self.source.binary);
        let origin = FailureOrigin {
            function_arn: &function_arn,
            stream_arn: &self.stream_arn,
            shard_id: &self.shard_id,
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let message = on_failure_message(report, &origin, &request_id, Utc::now());
        let body = serde_json::to_string(&message).unwrap_or_default();
        // The shard moves past given-up records: they count as done.
        self.ctx.progress.shard_processed(
            &self.source.binary,
            &self.source.table.name,
            &self.shard_id,
            &report.end_sequence_number,
            Utc::now(),
        );
        let Some(destination) = self.source.on_failure.as_ref().map(|q| q.url.as_str()) else {
            tracing::error!(function = %self.source.binary, condition = report.condition.as_str(), info = ?message.batch, "records given up; the event source has no on-failure destination");
            return true;
        };
        tracing::warn!(function = %self.source.binary, condition = report.condition.as_str(), first = %report.start_sequence_number, last = %report.end_sequence_number, records = report.batch_size, %destination, "records given up; sending the on-failure message");
        let mut attempt = 0;
        loop {
            match self.ctx.send_to_queue(destination, &body).await {
                Ok(()) => return true,
                Err(error) => {
                    tracing::error!(%destination, %error, "could not send the on-failure message; retrying");
                    attempt += 1;
                    if wait_or_stop(stop, self.ctx.backoff(attempt)).await {
                        return false;
                    }
                }
            }
        }
    }
}

/// The `aws_lambda_events::dynamodb::Event` payload of `records`.
pub fn event_payload<'a>(records: impl IntoIterator<Item = &'a EventRecord>) -> Bytes {
    let mut event = Event::default();
    event.records = records.into_iter().cloned().collect();
    let mut value = serde_json::to_value(&event).unwrap_or(Value::Null);
    // Leave out what Lambda leaves out: absent optional fields and absent images.
    if let Some(records) = value.get_mut("Records").and_then(Value::as_array_mut) {
        for record in records {
            if let Some(map) = record.as_object_mut() {
                map.retain(|_, v| !v.is_null());
                if let Some(change) = map.get_mut("dynamodb").and_then(Value::as_object_mut) {
                    change.retain(|k, v| {
                        !(v.is_null()
                            || (matches!(k.as_str(), "NewImage" | "OldImage")
                                && v.as_object().is_some_and(|o| o.is_empty())))
                    });
                }
            }
        }
    }
    Bytes::from(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::types::{
        AttributeValue, OperationType, Record, StreamRecord as SdkRecord,
    };

    #[test]
    fn records_become_a_lambda_dynamodb_event() {
        let change = SdkRecord::builder()
            .approximate_creation_date_time(aws_smithy_types::DateTime::from_secs(1_700_000_000))
            .keys("streamId", AttributeValue::S("Order#o-1".to_owned()))
            .keys("version", AttributeValue::N("1".to_owned()))
            .new_image("streamId", AttributeValue::S("Order#o-1".to_owned()))
            .new_image("eventType", AttributeValue::S("OrderCreated".to_owned()))
            .sequence_number("000100")
            .size_bytes(42)
            .stream_view_type(aws_sdk_dynamodbstreams::types::StreamViewType::NewImage)
            .build();
        let record = Record::builder()
            .event_id("e-1")
            .event_name(OperationType::Insert)
            .event_version("1.1")
            .event_source("aws:dynamodb")
            .aws_region("us-east-1")
            .dynamodb(change)
            .build();
        let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024";
        let payload = event_payload([&event_record(&record, arn, "us-east-1")]);
        let v: Value = serde_json::from_slice(&payload).expect("json");
        let r = &v["Records"][0];
        assert_eq!(r["eventID"], "e-1");
        assert_eq!(r["eventName"], "INSERT");
        assert_eq!(r["eventVersion"], "1.1");
        assert_eq!(r["eventSource"], "aws:dynamodb");
        assert_eq!(r["awsRegion"], "us-east-1");
        assert_eq!(r["eventSourceARN"], arn);
        let d = &r["dynamodb"];
        assert_eq!(d["Keys"]["streamId"]["S"], "Order#o-1");
        assert_eq!(d["Keys"]["version"]["N"], "1");
        assert_eq!(d["NewImage"]["eventType"]["S"], "OrderCreated");
        assert!(d.get("OldImage").is_none());
        assert_eq!(d["SequenceNumber"], "000100");
        assert_eq!(d["SizeBytes"], 42);
        assert_eq!(d["StreamViewType"], "NEW_IMAGE");
        assert_eq!(
            d["ApproximateCreationDateTime"].as_f64(),
            Some(1_700_000_000.0)
        );
        // And it is what a function deserialises.
        let back: Event = serde_json::from_value(v).expect("dynamodb event");
        assert_eq!(
            back.records[0].change.sequence_number.as_deref(),
            Some("000100")
        );
    }
}
