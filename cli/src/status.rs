//! `ftgo status`: what the stack holds and how far behind its readers are.
//!
//! * **tables**: item counts (`DescribeTable`'s `ItemCount`; AWS refreshes it about every six
//!   hours, the emulators at once);
//! * **queues**: visible and in-flight messages, dead-letter queues marked;
//! * **stream consumers**: locally, what the bridge says it has processed
//!   (`<log-dir>/bridge-progress.json`, written by `ftgo run`); without that file (AWS, or a
//!   stack without the bridge), each consumer's latest maximum `IteratorAge` (CloudWatch
//!   `AWS/Lambda`, dimension `FunctionName`, over the last [`ITERATOR_AGE_WINDOW_SECS`]),
//!   "unknown" when CloudWatch has no datapoint. The deployed function name is the override
//!   given (`--function-name <logical-id>=<name>`), else the deployed stack's output
//!   `<logical-id>Name` (CloudFormation's generated name, [`crate::deployed`]), else the
//!   template's (`FunctionName`, else the local binary name);
//! * **projection**: the event table against the order-history view, stream by stream: how many
//!   events the view does not have yet, and the projection lag (now − `occurredAt` of the oldest
//!   event the view misses; 0 when caught up), as [`ftgo_aws::projection_lag`] computes it. This
//!   reads both tables whole: cheap locally, and on AWS for small tables; `--no-projection`
//!   skips it;
//! * **faults**: with `ftgo run --faults`, the AWS faults injected into the functions' SDK
//!   calls so far, per kind and operation (each function process appends its injections to
//!   `<log-dir>/`[`FAULTS_LOG`]; see `ftgo_aws::faults`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, SystemTime};

use ftgo_aws::projection_lag;
use serde::Serialize;

use crate::local::{ProgressReport, ShardProgress};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::template::Template;

/// The whole report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Item count per table.
    pub tables: Vec<TableStatus>,
    /// Depth per queue.
    pub queues: Vec<QueueStatus>,
    /// The bridge's progress per stream consumer (`None`: unknown).
    pub consumers: Option<Vec<ShardProgress>>,
    /// Each stream consumer's `IteratorAge` from CloudWatch; asked only without bridge progress.
    pub iterator_ages: Vec<IteratorAge>,
    /// The event table against the view (`None`: not computed).
    pub projection: Option<projection_lag::Projection>,
    /// The faults injected so far (`None`: the stack runs without `--faults`).
    pub faults: Option<FaultsStatus>,
}

/// The file (in the stack's log directory) each function process appends its injected faults
/// to, one JSON line each, under `ftgo run --faults`.
pub const FAULTS_LOG: &str = "faults.jsonl";

/// The faults injected, summarised from [`FAULTS_LOG`].
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FaultsStatus {
    /// All injections.
    pub total: u64,
    /// Per kind (`lost-answer`, `throttle`, …).
    pub by_kind: BTreeMap<String, u64>,
    /// Per operation (`PutItem`, `TransactWriteItems`, `PutObject`, …).
    pub by_operation: BTreeMap<String, u64>,
    /// Lines that did not parse (a process killed mid-write).
    pub unreadable_lines: usize,
}

/// The summary of the faults log at `path`; `None` when there is none.
pub fn faults(path: &Path) -> Option<FaultsStatus> {
    let text = std::fs::read_to_string(path).ok()?;
    let (counts, unreadable_lines) = ftgo_aws::faults::FaultCounts::from_log(&text);
    Some(FaultsStatus {
        total: counts.total(),
        by_kind: counts.by_kind(),
        by_operation: counts.by_operation(),
        unreadable_lines,
    })
}

/// One table.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableStatus {
    /// Logical id.
    pub logical_id: String,
    /// Physical name.
    pub name: String,
    /// `ItemCount`.
    pub items: Option<i64>,
}

/// One queue.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatus {
    /// Logical id.
    pub logical_id: String,
    /// A dead-letter queue of the template.
    pub dead_letter: bool,
    /// `ApproximateNumberOfMessages`.
    pub visible: Option<i64>,
    /// `ApproximateNumberOfMessagesNotVisible`.
    pub in_flight: Option<i64>,
}

/// How far back `ftgo status` looks for `IteratorAge` datapoints.
pub const ITERATOR_AGE_WINDOW_SECS: u64 = 5 * 60;

/// One stream consumer's `IteratorAge` (CloudWatch `AWS/Lambda`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IteratorAge {
    /// Logical id of the function.
    pub logical_id: String,
    /// The `FunctionName` dimension asked for.
    pub function_name: String,
    /// The maximum of the latest period with a datapoint, in ms (`None`: no datapoint, unknown).
    pub max_ms: Option<f64>,
    /// That period's start (RFC 3339).
    pub at: Option<String>,
    /// Why CloudWatch could not be asked (the rest of the report stands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The deployed name of each stream consumer (functions with a `DynamoDB` event), by logical id,
/// in template order: `overrides` first, else the template's `FunctionName`, else the local name
/// (the binary).
pub fn stream_consumers(
    template: &Template,
    overrides: &HashMap<String, String>,
) -> Vec<(String, String)> {
    let mut consumers: Vec<(String, String)> = Vec::new();
    for source in template.stream_sources() {
        if consumers.iter().any(|(id, _)| *id == source.function) {
            continue;
        }
        let name = match overrides.get(&source.function) {
            Some(name) => name.clone(),
            None => template
                .function(&source.function)
                .map_or_else(|| source.binary.clone(), |f| f.name.clone()),
        };
        consumers.push((source.function.clone(), name));
    }
    consumers
}

/// The latest datapoint's maximum: `(period start in epoch seconds, maximum)` pairs in any order.
pub fn latest_maximum(datapoints: &[(i64, f64)]) -> Option<(i64, f64)> {
    datapoints.iter().copied().max_by_key(|(at, _)| *at)
}

async fn iterator_age(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    logical_id: String,
    function_name: String,
) -> IteratorAge {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, Statistic};
    let now = SystemTime::now();
    let start = now - Duration::from_secs(ITERATOR_AGE_WINDOW_SECS);
    let output = cloudwatch
        .get_metric_statistics()
        .namespace("AWS/Lambda")
        .metric_name("IteratorAge")
        .dimensions(
            Dimension::builder()
                .name("FunctionName")
                .value(&function_name)
                .build(),
        )
        .start_time(DateTime::from(start))
        .end_time(DateTime::from(now + Duration::from_secs(60)))
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await;
    let mut age = IteratorAge {
        logical_id,
        function_name,
        max_ms: None,
        at: None,
        error: None,
    };
    match output {
        Err(e) => {
            let e = aws_sdk_cloudwatch::error::DisplayErrorContext(&e);
            age.error = Some(format!("GetMetricStatistics: {e}"));
        }
        Ok(output) => {
            let points: Vec<(i64, f64)> = output
                .datapoints()
                .iter()
                .filter_map(|p| Some((p.timestamp?.secs(), p.maximum?)))
                .collect();
            if let Some((at, max)) = latest_maximum(&points) {
                age.max_ms = Some(max);
                age.at = OffsetDateTime::from_unix_timestamp(at)
                    .ok()
                    .and_then(|t| t.format(&Rfc3339).ok());
            }
        }
    }
    age
}

/// Collects the status of the stack `template` describes.
pub async fn collect(
    sdk: &aws_config::SdkConfig,
    template: &Template,
    progress_file: &Path,
    function_names: &HashMap<String, String>,
    with_projection: bool,
) -> Result<Status, String> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut tables = Vec::new();
    for table in template.tables() {
        let items = dynamodb
            .describe_table()
            .table_name(&table.name)
            .send()
            .await
            .map_err(|e| format!("DescribeTable {}: {e:?}", table.name))?
            .table
            .and_then(|t| t.item_count);
        tables.push(TableStatus {
            logical_id: table.logical_id.clone(),
            name: table.name.clone(),
            items,
        });
    }
    let dead: Vec<String> = template
        .dead_letter_queues()
        .into_iter()
        .map(|q| q.logical_id)
        .collect();
    let mut queues = Vec::new();
    for queue in template.queues() {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let url = ftgo_aws::dlq::queue_url(&sqs, &queue.name, &queue.url).await;
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| format!("GetQueueAttributes {}: {e:?}", queue.name))?
            .attributes
            .unwrap_or_default();
        let number = |name: A| attributes.get(&name).and_then(|v| v.parse().ok());
        queues.push(QueueStatus {
            logical_id: queue.logical_id.clone(),
            dead_letter: dead.contains(&queue.logical_id),
            visible: number(A::ApproximateNumberOfMessages),
            in_flight: number(A::ApproximateNumberOfMessagesNotVisible),
        });
    }
    let consumers = std::fs::read_to_string(progress_file)
        .ok()
        .and_then(|text| serde_json::from_str::<ProgressReport>(&text).ok())
        .map(|report| report.streams);
    let mut iterator_ages = Vec::new();
    if consumers.is_none() {
        let cloudwatch = aws_sdk_cloudwatch::Client::new(sdk);
        for (logical_id, name) in stream_consumers(template, function_names) {
            iterator_ages.push(iterator_age(&cloudwatch, logical_id, name).await);
        }
    }
    let projection = if with_projection {
        let name = |logical: &str| {
            template
                .table(logical)
                .map(|t| t.name.clone())
                .ok_or_else(|| format!("the template has no {logical}"))
        };
        let (events, view) = (name("EventsTable")?, name("OrderHistoryTable")?);
        let projection = projection_lag::projection(&dynamodb, &events, &view).await;
        Some(projection.map_err(|e| e.to_string())?)
    } else {
        None
    };
    Ok(Status {
        tables,
        queues,
        consumers,
        iterator_ages,
        projection,
        faults: None,
    })
}

/// The report as text tables.
pub fn render(status: &Status) -> String {
    let mut out = String::from("TABLE                      ITEMS\n");
    for table in &status.tables {
        let items = table.items.map_or("?".to_owned(), |n| n.to_string());
        out += &format!("{:<26} {items}\n", table.name);
    }
    out += "\nQUEUE                      VISIBLE  IN FLIGHT\n";
    for queue in &status.queues {
        let n = |v: Option<i64>| v.map_or("?".to_owned(), |n| n.to_string());
        let mark = if queue.dead_letter { " (DLQ)" } else { "" };
        out += &format!(
            "{:<26} {:>7}  {:>9}{mark}\n",
            queue.logical_id,
            n(queue.visible),
            n(queue.in_flight)
        );
    }
    match &status.consumers {
        None if !status.iterator_ages.is_empty() => {
            out += "\nSTREAM CONSUMER            ITERATOR AGE (max, latest minute)\n";
            for age in &status.iterator_ages {
                let value = match (age.max_ms, &age.at, &age.error) {
                    (_, _, Some(error)) => format!("unknown ({error})"),
                    (Some(ms), Some(at), None) => format!("{ms} ms at {at}"),
                    (Some(ms), None, None) => format!("{ms} ms"),
                    (None, _, None) => format!(
                        "unknown (no datapoint in the last {} min)",
                        ITERATOR_AGE_WINDOW_SECS / 60
                    ),
                };
                out += &format!("{:<26} {value}\n", age.function_name);
            }
        }
        None => {
            out += "\nSTREAM CONSUMER            LAST PROCESSED (sequence, at)\n";
            out += "unknown (no bridge progress: `ftgo run` writes it locally)\n";
        }
        Some(consumers) => {
            out += "\nSTREAM CONSUMER            LAST PROCESSED (sequence, at)\n";
            for c in consumers {
                let busy = if c.in_flight { " (in flight)" } else { "" };
                out += &format!(
                    "{:<26} {} at {}{busy}\n",
                    c.function,
                    c.last_processed_sequence_number.as_deref().unwrap_or("-"),
                    c.last_processed_at.as_deref().unwrap_or("-")
                );
            }
        }
    }
    if let Some(p) = &status.projection {
        out += &format!(
            "\nPROJECTION  {} events in {} streams; view behind by {} events in {} streams; lag {} ms (newest event {})\n",
            p.events,
            p.streams,
            p.events_behind,
            p.streams_behind,
            p.lag_ms,
            p.newest_event_at.as_deref().unwrap_or("-")
        );
    }
    if let Some(faults) = &status.faults {
        let join = |map: &BTreeMap<String, u64>| {
            map.iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out += &format!("\nFAULTS INJECTED  {}\n", faults.total);
        out += &format!("by kind:       {}\n", join(&faults.by_kind));
        out += &format!("by operation:  {}\n", join(&faults.by_operation));
        if faults.unreadable_lines > 0 {
            out += &format!("({} unreadable lines)\n", faults.unreadable_lines);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_are_the_override_else_function_name_else_the_binary() {
        let yaml = r#"
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Named:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: named-bin}}
    Properties:
      FunctionName: !Sub "${AWS::StackName}-named"
      Events:
        S: {Type: DynamoDB, Properties: {Stream: !GetAtt T.StreamArn, StartingPosition: LATEST}}
  Plain:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: plain-bin}}
    Properties:
      Events:
        S: {Type: DynamoDB, Properties: {Stream: !GetAtt T.StreamArn, StartingPosition: LATEST}}
        Again: {Type: DynamoDB, Properties: {Stream: !GetAtt T.StreamArn, StartingPosition: LATEST}}
  Api:
    Type: AWS::Serverless::Function
"#;
        let template =
            Template::parse(yaml, crate::template::Stack::named("prod")).expect("parses");
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            stream_consumers(&template, &HashMap::new()),
            [pair("Named", "prod-named"), pair("Plain", "plain-bin")]
        );
        let overrides = HashMap::from([pair("Named", "x"), pair("Plain", "prod-Plain-1AB")]);
        assert_eq!(
            stream_consumers(&template, &overrides),
            [pair("Named", "x"), pair("Plain", "prod-Plain-1AB")]
        );
    }

    #[test]
    fn the_latest_period_wins_not_the_highest_maximum() {
        assert_eq!(latest_maximum(&[]), None);
        let points = [(120, 900.0), (180, 40.0), (60, 5000.0)];
        assert_eq!(latest_maximum(&points), Some((180, 40.0)));
    }

    #[test]
    fn iterator_ages_render_with_unknown_for_a_consumer_without_datapoints() {
        let age = |name: &str, max_ms: Option<f64>, at: Option<&str>| IteratorAge {
            logical_id: format!("{name}Function"),
            function_name: name.to_owned(),
            max_ms,
            at: at.map(str::to_owned),
            error: None,
        };
        let status = Status {
            tables: Vec::new(),
            queues: Vec::new(),
            consumers: None,
            iterator_ages: vec![
                age("projector", Some(3400.0), Some("2026-01-01T10:00:00Z")),
                age("outbox", None, None),
            ],
            projection: None,
            faults: None,
        };
        let text = render(&status);
        assert!(text.contains("ITERATOR AGE"), "{text}");
        assert!(
            text.contains("projector                  3400 ms at 2026-01-01T10:00:00Z"),
            "{text}"
        );
        assert!(
            text.contains("outbox                     unknown (no datapoint"),
            "{text}"
        );
        assert!(!text.contains("bridge progress"), "{text}");
        let without = Status {
            iterator_ages: Vec::new(),
            ..status
        };
        assert!(render(&without).contains("no bridge progress"));
    }

    #[test]
    fn the_faults_log_is_summarised_per_kind_and_operation() {
        let dir = std::env::temp_dir().join(format!("ftgo-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(FAULTS_LOG);
        assert_eq!(faults(&path), None);
        let line = |kind: &str, operation: &str| {
            format!(r#"{{"kind":"{kind}","service":"dynamodb","operation":"{operation}"}}"#)
        };
        let log = [
            line("throttle", "PutItem"),
            line("throttle", "Query"),
            line("lost-answer", "PutItem"),
        ]
        .join("\n");
        std::fs::write(&path, log).unwrap();
        let summary = faults(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(summary.total, 3);
        assert_eq!(summary.by_kind["throttle"], 2);
        assert_eq!(summary.by_operation["PutItem"], 2);
        let status = Status {
            tables: Vec::new(),
            queues: Vec::new(),
            consumers: Some(Vec::new()),
            iterator_ages: Vec::new(),
            projection: None,
            faults: Some(summary),
        };
        let text = render(&status);
        assert!(text.contains("FAULTS INJECTED  3"), "{text}");
        assert!(
            text.contains("by kind:       lost-answer 1, throttle 2"),
            "{text}"
        );
    }
}
