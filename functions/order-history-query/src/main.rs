//! The `order-history-query` Lambda: wires [`ftgo_aws::lambda::order_history_query::handle`] to the HTTP API runtime.

use ftgo_aws::config::{self, Config};
use ftgo_aws::lambda::order_history_query::OrderHistoryQuery;
use ftgo_aws::lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = ftgo_aws::telemetry::init("order-history-query")?;
    let config = Config::from_env()?;
    let service = OrderHistoryQuery::from_config(&config::load_sdk_config().await, &config)?;
    ftgo_aws::telemetry::run_http(metrics, |request| {
        ftgo_aws::lambda::order_history_query::handle(&service, request)
    })
    .await
}
