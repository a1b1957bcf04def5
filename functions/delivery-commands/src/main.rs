//! The `delivery-commands` Lambda: wires [`ftgo_aws::delivery_commands::handle`] to the HTTP API runtime.

use ftgo_aws::commands::CommandService;
use ftgo_aws::config::{self, Config};
use ftgo_aws::lambda_http::{self, Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let config = Config::from_env()?;
    let service = CommandService::from_config(&config::load_sdk_config().await, &config)?;
    lambda_http::run(service_fn(|request| {
        ftgo_aws::delivery_commands::handle(&service, request)
    }))
    .await
}
