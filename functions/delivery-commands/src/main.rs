//! The `delivery-commands` Lambda: wires [`ftgo_aws::lambda::delivery_commands::handle`] to the HTTP API runtime.

use ftgo_aws::commands::CommandService;
use ftgo_aws::config::{self, Config};
use ftgo_aws::lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = ftgo_aws::telemetry::init("delivery-commands")?;
    let config = Config::from_env()?;
    let service = CommandService::from_config(&config::load_sdk_config().await, &config)?;
    ftgo_aws::telemetry::run_http(metrics, |request| {
        ftgo_aws::lambda::delivery_commands::handle(&service, request)
    })
    .await
}
