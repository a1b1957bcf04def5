//! The `order-history-projector` Lambda: wires [`ftgo_aws::lambda::order_history_projector::handle`] to the event
//! table's DynamoDB stream.

use ftgo_aws::config::{self, Config};
use ftgo_aws::lambda_runtime::Error;
use ftgo_aws::projector::Projector;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = ftgo_aws::telemetry::init("order-history-projector")?;
    let config = Config::from_env()?;
    let projector = Projector::from_config(&config::load_sdk_config().await, &config)?;
    ftgo_aws::telemetry::run(metrics, |event| {
        ftgo_aws::lambda::order_history_projector::handle(&projector, event)
    })
    .await
}
