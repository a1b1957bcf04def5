//! Operations telemetry (DESIGN §9): CloudWatch EMF metrics and Lambda-style JSON logs.
//!
//! * **Metrics** go through the [`metrics`] facade to `metrics_cloudwatch_embedded`, which writes
//!   one EMF line per invocation to stdout (namespace [`NAMESPACE`], dimension `function`, the
//!   request id as property `requestId`). EMF is a log line: nothing here calls AWS.
//! * **Logs** are one JSON object a line with top-level `timestamp`, `level`, `message`,
//!   `function`, `coldStart`, `requestId` (from the Lambda runtime's invocation span) and
//!   `correlationId` (from the spans our handlers open), then the event's own fields. The level
//!   and format follow Lambda's advanced logging controls (`AWS_LAMBDA_LOG_LEVEL`,
//!   `AWS_LAMBDA_LOG_FORMAT`); `RUST_LOG`, when set, overrides the level (local runs).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Runs the Lambda runtime with a handler of events, flushing the metrics after each invocation.
pub use metrics_cloudwatch_embedded::lambda::handler::run;
/// Runs the Lambda runtime with an HTTP handler, flushing the metrics after each invocation.
pub use metrics_cloudwatch_embedded::lambda::handler::run_http;

/// The CloudWatch namespace of every FTGO metric.
pub const NAMESPACE: &str = "FTGO";

/// The metric names of DESIGN §9, declared once (the template's alarms and dashboard use them).
pub mod names {
    /// Events the projector applied to the view (including those filled into a gap).
    pub const EVENTS_PROJECTED: &str = "EventsProjected";
    /// Stream records the view had already (redelivery, replay overlap).
    pub const DUPLICATES_SKIPPED: &str = "DuplicatesSkipped";
    /// Gaps the projector filled from the event table before applying a record.
    pub const GAPS_HEALED: &str = "GapsHealed";
    /// Records sent to the projector's dead-letter queue.
    pub const DEAD_LETTERED: &str = "DeadLettered";
    /// Now − the event's `occurredAt`, one value per projected record (milliseconds).
    pub const PROJECTION_LAG_MS: &str = "ProjectionLagMs";
    /// Commands that met a concurrent writer: lost appends (retried) and `If-Match` mismatches.
    pub const COMMAND_CONFLICTS: &str = "CommandConflicts";
    /// Commands the domain refused (invalid state for the command).
    pub const COMMANDS_REJECTED: &str = "CommandsRejected";
    /// Events written to the S3 archive.
    pub const EVENTS_ARCHIVED: &str = "EventsArchived";
    /// Events a replay applied to a view table.
    pub const REPLAY_EVENTS_APPLIED: &str = "ReplayEventsApplied";
    /// Queries answered `VIEW_NOT_CAUGHT_UP`.
    pub const VIEW_NOT_CAUGHT_UP: &str = "ViewNotCaughtUp";
    /// Emitted once per execution environment, at its first invocation.
    pub const COLD_START: &str = "ColdStart";
}

/// Adds `by` to the counter `name` (flushed with the invocation's EMF line).
pub fn count(name: &'static str, by: u64) {
    metrics::counter!(name).increment(by);
}

/// The span one stream record is projected in: its event id and correlation id, so that each
/// log line about it carries them at the top level.
pub fn record_span(record: &aws_lambda_events::dynamodb::EventRecord) -> tracing::Span {
    let correlation = correlation_id(&record.change.new_image).unwrap_or_default();
    tracing::info_span!("record", correlationId = correlation, eventId = %record.event_id)
}

/// Milliseconds from `occurred_at` to `now`; zero when the clocks disagree the other way.
pub fn lag_ms(now: OffsetDateTime, occurred_at: OffsetDateTime) -> u64 {
    u64::try_from((now - occurred_at).whole_milliseconds()).unwrap_or(0)
}

/// The `occurredAt` of the event in a stream record's new image, when it has a readable one.
pub fn occurred_at(image: &serde_dynamo::Item) -> Option<OffsetDateTime> {
    match image.inner().get("occurredAt") {
        Some(serde_dynamo::AttributeValue::S(text)) => OffsetDateTime::parse(text, &Rfc3339).ok(),
        _ => None,
    }
}

/// The correlation id (the API request id) stored in a stream record's new image.
pub fn correlation_id(image: &serde_dynamo::Item) -> Option<&str> {
    match image.inner().get("metadata") {
        Some(serde_dynamo::AttributeValue::M(metadata)) => match metadata.get("correlationId") {
            Some(serde_dynamo::AttributeValue::S(id)) => Some(id.as_str()),
            _ => None,
        },
        _ => None,
    }
}

/// The projection lag of one batch: its largest value and its 99th percentile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LagSummary {
    /// The largest lag in the batch.
    pub max: u64,
    /// The nearest-rank 99th percentile.
    pub p99: u64,
}

impl LagSummary {
    /// Summarises `lags` (milliseconds); `None` for an empty batch.
    pub fn of(lags: &[u64]) -> Option<Self> {
        let mut sorted = lags.to_vec();
        sorted.sort_unstable();
        let max = *sorted.last()?;
        Some(Self {
            max,
            p99: sorted[nearest_rank(sorted.len(), 99) - 1],
        })
    }
}

/// The 1-based nearest rank of percentile `p` among `n` values.
fn nearest_rank(n: usize, p: usize) -> usize {
    (n * p).div_ceil(100).clamp(1, n)
}

/// An EMF metric holds at most this many values per line.
pub const MAX_VALUES_PER_LINE: usize = 100;

/// The values recorded for a batch's `ProjectionLagMs`: all of them when they fit in one EMF
/// line, else [`MAX_VALUES_PER_LINE`] evenly spaced ranks, always including the largest, so that
/// CloudWatch's `Maximum` and `p99` statistics stay true to the batch.
pub fn lag_samples(lags: &[u64]) -> Vec<u64> {
    if lags.len() <= MAX_VALUES_PER_LINE {
        return lags.to_vec();
    }
    let mut sorted = lags.to_vec();
    sorted.sort_unstable();
    (1..=MAX_VALUES_PER_LINE)
        .map(|k| sorted[(k * sorted.len()).div_ceil(MAX_VALUES_PER_LINE) - 1])
        .collect()
}

/// Records one batch's projection lags and logs their summary.
pub fn record_lags(lags: &[u64]) {
    let Some(summary) = LagSummary::of(lags) else {
        return;
    };
    let histogram = metrics::histogram!(names::PROJECTION_LAG_MS);
    for lag in lag_samples(lags) {
        histogram.record(lag as f64);
    }
    tracing::info!(
        events = lags.len(),
        lagMaxMs = summary.max,
        lagP99Ms = summary.p99,
        "batch projected"
    );
}

/// Log level and format, from Lambda's advanced logging controls and `RUST_LOG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// A filter directive: a level (`info`), or `target=level` pairs and a default level,
    /// comma-separated (`ftgo_aws=debug,warn`): [`tracing_subscriber::filter::Targets`] syntax,
    /// which `RUST_LOG`'s common forms share (span and field filters are not supported: such a
    /// directive falls back to `info`).
    pub filter: String,
    /// One JSON object a line (`AWS_LAMBDA_LOG_FORMAT=JSON`, the default) or plain text.
    pub json: bool,
}

impl LogSettings {
    /// Reads the settings through `lookup`: `RUST_LOG` wins, then `AWS_LAMBDA_LOG_LEVEL`
    /// (`TRACE`…`FATAL`), else `info`; `AWS_LAMBDA_LOG_FORMAT=Text` asks for plain text.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let lambda_level =
            lookup("AWS_LAMBDA_LOG_LEVEL").map(|level| match level.to_ascii_lowercase().as_str() {
                "fatal" => "error".to_owned(),
                other => other.to_owned(),
            });
        let filter = lookup("RUST_LOG")
            .filter(|value| !value.is_empty())
            .or(lambda_level)
            .unwrap_or_else(|| "info".to_owned());
        let json = !lookup("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("text"));
        Self { filter, json }
    }
}

/// Whether an invocation span has been seen yet in this process (the next one is not cold).
static INVOKED: AtomicBool = AtomicBool::new(false);

/// Initialises logs and metrics for the function `function`, once per process, and returns the
/// metrics collector that `metrics_cloudwatch_embedded::lambda` flushes after each invocation.
pub fn init(
    function: &'static str,
) -> Result<&'static metrics_cloudwatch_embedded::Collector, lambda_runtime::Error> {
    init_logs(
        function,
        &LogSettings::from_lookup(|name| std::env::var(name).ok()),
    );
    install(
        builder(function)
            .lambda_cold_start_metric(names::COLD_START)
            .with_lambda_request_id("requestId"),
    )
}

/// Installs `builder`'s collector as the global metrics recorder and declares the units.
pub fn install(
    builder: metrics_cloudwatch_embedded::Builder,
) -> Result<&'static metrics_cloudwatch_embedded::Collector, lambda_runtime::Error> {
    let collector = builder.init()?;
    metrics::describe_histogram!(names::PROJECTION_LAG_MS, metrics::Unit::Milliseconds, "");
    Ok(collector)
}

/// Installs the global `tracing` subscriber (see the module docs for the line format).
pub fn init_logs(function: &'static str, settings: &LogSettings) {
    use tracing_subscriber::prelude::*;
    let filter = log_filter(&settings.filter);
    let fmt = tracing_subscriber::fmt::layer().with_target(false);
    let fmt = if settings.json {
        fmt.event_format(LambdaJson { function }).boxed()
    } else {
        fmt.boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(SpanFields)
        .with(fmt)
        .with(filter)
        .try_init();
}

/// The filter of `directive` ([`LogSettings::filter`]), `info` when it does not parse. A
/// `Targets` filter, not `EnvFilter`: no regex engine is linked, and nothing is compiled at
/// cold start.
pub fn log_filter(directive: &str) -> tracing_subscriber::filter::Targets {
    directive
        .parse()
        .unwrap_or_else(|_| tracing_subscriber::filter::Targets::new().with_default(Level::INFO))
}

/// The EMF builder every function uses: namespace [`NAMESPACE`], dimension `function`.
pub fn builder(function: &'static str) -> metrics_cloudwatch_embedded::Builder {
    metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(NAMESPACE)
        .with_dimension("function", function)
}

/// Span fields, kept as JSON in the span's extensions so that each log line can lift them to
/// the top level. The Lambda runtime's invocation span (`requestId`) also gets `coldStart`.
struct SpanFields;

/// The JSON fields of one span.
struct Fields(Map<String, Value>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanFields {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        if fields.contains_key("requestId") {
            let cold = !INVOKED.swap(true, Ordering::Relaxed);
            fields.insert("coldStart".into(), Value::Bool(cold));
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Fields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(&mut JsonVisitor(&mut fields.0));
        }
    }
}

/// Collects `tracing` fields into a JSON map.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::from(format!("{value:?}")));
    }
}

/// The JSON line format (see the module docs).
struct LambdaJson {
    function: &'static str,
}

impl<S, N> FormatEvent<S, N> for LambdaJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let now = OffsetDateTime::now_utc();
        line.insert(
            "timestamp".into(),
            Value::from(now.format(&Rfc3339).unwrap_or_default()),
        );
        line.insert(
            "level".into(),
            Value::from(event.metadata().level().as_str()),
        );
        line.insert("function".into(), Value::from(self.function));
        line.insert(
            "coldStart".into(),
            Value::Bool(!INVOKED.load(Ordering::Relaxed)),
        );
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<Fields>() {
                    for (name, value) in &fields.0 {
                        line.insert(name.clone(), value.clone());
                    }
                }
            }
        }
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        line.extend(fields);
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn lag_is_now_minus_occurred_at_and_never_negative() {
        let occurred = datetime!(2026-01-01 10:00:00 UTC);
        assert_eq!(
            lag_ms(datetime!(2026-01-01 10:00:01.250 UTC), occurred),
            1250
        );
        assert_eq!(lag_ms(datetime!(2026-01-01 09:59:59 UTC), occurred), 0);
    }

    #[test]
    fn a_batch_lag_summary_has_the_max_and_the_nearest_rank_p99() {
        assert_eq!(LagSummary::of(&[]), None);
        assert_eq!(LagSummary::of(&[7]), Some(LagSummary { max: 7, p99: 7 }));
        let lags: Vec<u64> = (1..=200).rev().collect();
        assert_eq!(
            LagSummary::of(&lags),
            Some(LagSummary { max: 200, p99: 198 })
        );
        let mut lags: Vec<u64> = vec![10; 99];
        lags.push(5000);
        assert_eq!(
            LagSummary::of(&lags),
            Some(LagSummary { max: 5000, p99: 10 })
        );
    }

    #[test]
    fn lag_samples_fit_one_emf_line_and_keep_the_maximum_and_p99() {
        let few = [3, 1, 2];
        assert_eq!(lag_samples(&few), vec![3, 1, 2]);
        let many: Vec<u64> = (1..=1000).collect();
        let samples = lag_samples(&many);
        assert_eq!(samples.len(), MAX_VALUES_PER_LINE);
        assert_eq!(samples.iter().max(), Some(&1000));
        assert_eq!(LagSummary::of(&samples).map(|s| s.p99), Some(990));
    }

    #[test]
    fn reads_occurred_at_and_correlation_id_from_a_stream_image() {
        let records: Vec<aws_lambda_events::dynamodb::EventRecord> =
            serde_json::from_str::<aws_lambda_events::dynamodb::Event>(include_str!(
                "../../../events/order-history-projector/order-lifecycle.json"
            ))
            .unwrap()
            .records;
        let image = &records[0].change.new_image;
        assert!(occurred_at(image).is_some());
        assert!(correlation_id(image).is_some_and(|id| !id.is_empty()));
        let mut spoiled = image.clone();
        spoiled.inner_mut().remove("occurredAt");
        spoiled.inner_mut().remove("metadata");
        assert_eq!(occurred_at(&spoiled), None);
        assert_eq!(correlation_id(&spoiled), None);
    }

    #[test]
    fn one_invocation_flushes_one_emf_line_with_the_design_names() {
        let collector = install(builder("order-history-projector").with_timestamp(1)).unwrap();
        count(names::EVENTS_PROJECTED, 2);
        count(names::EVENTS_PROJECTED, 1);
        record_lags(&[40, 10]);
        let mut out = Vec::new();
        collector.flush(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let emf: Value = serde_json::from_str(lines[0]).unwrap();
        let directive = &emf["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "FTGO");
        assert_eq!(directive["Dimensions"], serde_json::json!([["function"]]));
        assert_eq!(emf["function"], "order-history-projector");
        assert_eq!(emf["EventsProjected"], 3);
        assert_eq!(emf["ProjectionLagMs"], serde_json::json!([40.0, 10.0]));
        let lag = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["Name"] == "ProjectionLagMs")
            .cloned();
        assert_eq!(
            lag.map(|m| m["Unit"].clone()),
            Some(Value::from("Milliseconds"))
        );
        let mut again = Vec::new();
        collector.flush(&mut again).unwrap();
        let again = String::from_utf8(again).unwrap();
        assert!(
            !again.contains("EventsProjected"),
            "values are flushed once: {again}"
        );
        assert!(
            !again.contains("ProjectionLagMs"),
            "values are flushed once: {again}"
        );
    }

    #[test]
    fn log_filters_read_levels_and_targets_and_fall_back_to_info() {
        use tracing_subscriber::filter::LevelFilter;
        assert_eq!(
            log_filter("debug").default_level(),
            Some(LevelFilter::DEBUG)
        );
        let targeted = log_filter("ftgo_aws=trace,warn");
        assert!(targeted.would_enable("ftgo_aws::projector", &Level::TRACE));
        assert!(!targeted.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(targeted.would_enable("aws_smithy_runtime", &Level::WARN));
        assert_eq!(
            log_filter("error").default_level(),
            Some(LevelFilter::ERROR)
        );
        let unreadable = log_filter("[span{field=1}]=debug");
        assert_eq!(unreadable.default_level(), Some(LevelFilter::INFO));
        assert!(!unreadable.would_enable("ftgo_aws", &Level::DEBUG));
    }

    #[test]
    fn log_settings_follow_lambda_controls_with_rust_log_as_override() {
        let settings = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            LogSettings::from_lookup(move |name| {
                vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
            })
        };
        assert_eq!(
            settings(&[]),
            LogSettings {
                filter: "info".into(),
                json: true
            }
        );
        let lambda = settings(&[
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
            ("AWS_LAMBDA_LOG_FORMAT", "Text"),
        ]);
        assert_eq!(lambda.filter, "debug");
        assert!(!lambda.json);
        assert_eq!(
            settings(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).filter,
            "error"
        );
        let local = settings(&[
            ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
            ("RUST_LOG", "ftgo_aws=trace"),
        ]);
        assert_eq!(local.filter, "ftgo_aws=trace");
        assert!(local.json);
    }
}
