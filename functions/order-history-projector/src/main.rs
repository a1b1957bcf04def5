//! The `order-history-projector` Lambda: wires [`ftgo_aws::projector::handle`] to the event
//! table's DynamoDB stream.

use ftgo_aws::config::{self, Config};
use ftgo_aws::lambda_runtime::{self, Error, service_fn};
use ftgo_aws::projector::Projector;

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let config = Config::from_env()?;
    let projector = Projector::from_config(&config::load_sdk_config().await, &config)?;
    lambda_runtime::run(service_fn(|event| {
        ftgo_aws::projector::handle(&projector, event)
    }))
    .await
}
