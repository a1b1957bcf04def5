//! `ftgo status` without bridge progress (as in AWS) against moto: each stream consumer's
//! `IteratorAge` comes from CloudWatch (`AWS/Lambda`, dimension `FunctionName`), the latest
//! period's maximum; a consumer without datapoints is "unknown"; `--function-name` overrides
//! the template's names.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use ftgo_cli::status::{self, IteratorAge};
use ftgo_tests::{Emulator, unique_id};

const PROJECTOR: &str = "OrderHistoryProjectorFunction";
const ARCHIVER: &str = "EventArchiverFunction";

fn iterator_age(function_name: &str, seconds_ago: u64, value_ms: f64) -> MetricDatum {
    MetricDatum::builder()
        .metric_name("IteratorAge")
        .dimensions(
            Dimension::builder()
                .name("FunctionName")
                .value(function_name)
                .build(),
        )
        .timestamp(DateTime::from(
            SystemTime::now() - Duration::from_secs(seconds_ago),
        ))
        .value(value_ms)
        .unit(StandardUnit::Milliseconds)
        .build()
}

#[tokio::test]
async fn the_stream_consumers_are_the_dynamodb_event_functions_named_as_in_the_template() {
    let moto = Emulator::moto().await;
    let template = moto.template();
    let names = status::stream_consumers(template, &HashMap::new());
    assert_eq!(
        names,
        [
            (PROJECTOR.to_owned(), "order-history-projector".to_owned()),
            (ARCHIVER.to_owned(), "event-archiver".to_owned()),
        ]
    );
    let overridden = status::stream_consumers(
        template,
        &HashMap::from([(ARCHIVER.to_owned(), "prod-EventArchiver-1X2Y".to_owned())]),
    );
    assert_eq!(overridden[0].1, "order-history-projector");
    assert_eq!(overridden[1].1, "prod-EventArchiver-1X2Y");
}

#[tokio::test]
async fn without_bridge_progress_status_shows_the_latest_iterator_age_or_unknown() {
    let moto = Emulator::moto().await;
    let stack = moto.fresh_stack().await.expect("fresh stack");
    let sdk = moto.sdk_config().await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk);
    let projector = unique_id("projector");
    let archiver = unique_id("archiver");
    // An older minute with a higher age, then the latest minute: the report shows the latter's
    // maximum.
    cloudwatch
        .put_metric_data()
        .namespace("AWS/Lambda")
        .metric_data(iterator_age(&projector, 170, 9000.0))
        .metric_data(iterator_age(&projector, 50, 1200.0))
        .metric_data(iterator_age(&projector, 45, 3400.0))
        .send()
        .await
        .expect("PutMetricData");

    let names = HashMap::from([
        (PROJECTOR.to_owned(), projector.clone()),
        (ARCHIVER.to_owned(), archiver.clone()),
    ]);
    let no_bridge = std::env::temp_dir().join(format!("{}-no-bridge.json", unique_id("status")));
    let report = status::collect(&sdk, stack.template(), &no_bridge, &names, false)
        .await
        .expect("status");

    assert_eq!(report.consumers, None);
    let by_name: HashMap<&str, &IteratorAge> = report
        .iterator_ages
        .iter()
        .map(|a| (a.function_name.as_str(), a))
        .collect();
    assert_eq!(by_name.len(), 2, "{:?}", report.iterator_ages);
    let seen = by_name[projector.as_str()];
    assert_eq!(seen.logical_id, PROJECTOR);
    assert_eq!(seen.error, None);
    assert_eq!(seen.max_ms, Some(3400.0));
    assert!(seen.at.is_some());
    let unseen = by_name[archiver.as_str()];
    assert_eq!(unseen.logical_id, ARCHIVER);
    assert_eq!(unseen.error, None);
    assert_eq!(unseen.max_ms, None);

    let text = status::render(&report);
    assert!(
        text.contains(&format!("{projector:<26} 3400 ms at ")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{archiver:<26} unknown (no datapoint")),
        "{text}"
    );
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(json["iteratorAges"][0]["maxMs"], 3400.0);
    assert_eq!(json["iteratorAges"][1]["maxMs"], serde_json::Value::Null);
}
