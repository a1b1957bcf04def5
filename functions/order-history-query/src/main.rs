//! The `order-history-query` Lambda: wires [`ftgo_aws::query::handle`] to the HTTP API runtime.

use ftgo_aws::config::{self, Config};
use ftgo_aws::lambda_http::{self, Error, service_fn};
use ftgo_aws::query::OrderHistoryQuery;

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let config = Config::from_env()?;
    let service = OrderHistoryQuery::from_config(&config::load_sdk_config().await, &config)?;
    lambda_http::run(service_fn(|request| {
        ftgo_aws::query::handle(&service, request)
    }))
    .await
}
