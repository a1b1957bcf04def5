//! The glue from the [`Template`] to the gateway's routes, the bridge's event sources and the
//! functions' environment, which the `ftgo` subcommands share.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::bridge::shard::StreamPolicy;
use crate::bridge::{Bridge, BridgeOptions, QueueSource, StreamSource};
use crate::gateway::{ApiIdentity, Gateway, GatewayOptions, Route, RouteTable};
use crate::invoke::Invoker;
use crate::template::Template;

/// The AWS SDK configuration for an emulator at `endpoint`: region `us-east-1` (or `region`),
/// static `test` credentials.
pub async fn sdk_config(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "ftgo-local",
        ))
        .load()
        .await
}

/// The gateway's routes: every `HttpApi` route of the template, served by its function's binary.
pub fn gateway_routes(template: &Template) -> crate::Result<RouteTable> {
    RouteTable::new(
        template
            .routes()
            .iter()
            .map(|r| Route::new(&r.method, r.path.clone(), r.binary.clone()))
            .collect(),
    )
}

/// The local gateway: the template's routes, served through `invoker`, in the stack's account.
pub fn local_gateway(template: &Template, invoker: Arc<dyn Invoker>) -> crate::Result<Gateway> {
    Ok(Gateway::new(
        gateway_routes(template)?,
        invoker,
        GatewayOptions {
            identity: ApiIdentity {
                account_id: template.stack().account_id.clone(),
                ..ApiIdentity::default()
            },
            ..GatewayOptions::default()
        },
    ))
}

/// The local bridge: the template's event sources, invoking through `invoker` as the stack's
/// region and account, writing its progress to `progress_file` when given.
pub fn local_bridge(
    sdk: &SdkConfig,
    template: &Template,
    invoker: Arc<dyn Invoker>,
    progress_file: Option<PathBuf>,
) -> Bridge {
    let (streams, queues) = bridge_sources(template);
    Bridge::new(
        sdk,
        invoker,
        BridgeOptions {
            region: template.stack().region.clone(),
            account_id: template.stack().account_id.clone(),
            progress_file,
            ..BridgeOptions::default()
        },
        streams,
        queues,
    )
}

/// The bridge's event sources: every enabled `DynamoDB` and `SQS` event of the template.
pub fn bridge_sources(template: &Template) -> (Vec<StreamSource>, Vec<QueueSource>) {
    // Each function's `Timeout` (Globals applied; SAM's default 3 s when nothing sets it).
    let timeout_of = |binary: &str| {
        let seconds = template
            .functions()
            .iter()
            .find(|f| f.binary == binary)
            .map_or(3, |f| f.timeout);
        Duration::from_secs(u64::from(seconds.max(1)))
    };
    let queue_target = |logical_id: &str| {
        template
            .queue(logical_id)
            .map(|q| q.url.clone())
            .unwrap_or_else(|| logical_id.to_owned())
    };
    let streams = template
        .stream_sources()
        .iter()
        .filter(|s| s.enabled)
        .map(|s| StreamSource {
            function: s.binary.clone(),
            table: template
                .table(&s.table)
                .map(|t| t.name.clone())
                .unwrap_or_else(|| s.table.clone()),
            starting_position: s.starting_position,
            policy: StreamPolicy {
                batch_size: usize::try_from(s.batch_size).unwrap_or(100),
                batching_window: Duration::from_secs(u64::from(
                    s.maximum_batching_window_in_seconds,
                )),
                report_batch_item_failures: s.reports_batch_item_failures(),
                bisect_on_error: s.bisect_batch_on_function_error,
                max_retry_attempts: s.maximum_retry_attempts,
                max_record_age: s
                    .maximum_record_age_in_seconds
                    .map(|secs| Duration::from_secs(u64::from(secs))),
            },
            on_failure: s.on_failure.as_deref().map(queue_target),
            timeout: timeout_of(&s.binary),
        })
        .collect();
    let queues = template
        .queue_sources()
        .iter()
        .filter(|q| q.enabled)
        .map(|q| QueueSource {
            function: q.binary.clone(),
            queue: queue_target(&q.queue),
            batch_size: usize::try_from(q.batch_size).unwrap_or(10),
            batching_window: Duration::from_secs(u64::from(q.maximum_batching_window_in_seconds)),
            report_batch_item_failures: q.reports_batch_item_failures(),
            timeout: timeout_of(&q.binary),
        })
        .collect();
    (streams, queues)
}

/// The environment `cargo lambda watch` gives every function: each variable any function of the
/// template sets (resolved for the stack, so queue URLs point at the emulator), plus the SDK's
/// endpoint, region and test credentials. A variable two functions set differently keeps the
/// first value, with a warning (one `cargo lambda watch` serves them all).
pub fn function_environment(template: &Template, endpoint: &str) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for function in template.functions() {
        for (key, value) in &function.environment {
            match env.get(key) {
                Some(existing) if existing != value => tracing::warn!(
                    %key, function = %function.binary, "functions set different values; the local stack uses the first"
                ),
                Some(_) => {}
                None => {
                    env.insert(key.clone(), value.clone());
                }
            }
        }
    }
    let region = template.stack().region.clone();
    for (key, value) in [
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", region.clone()),
        ("AWS_DEFAULT_REGION", region),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
    ] {
        env.insert(key.to_owned(), value);
    }
    env
}
