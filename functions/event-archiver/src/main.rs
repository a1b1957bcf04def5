//! The `event-archiver` Lambda: wires [`ftgo_aws::archiver::handle`] to the event table's
//! DynamoDB stream.

use ftgo_aws::archiver::Archiver;
use ftgo_aws::config::{self, Config};
use ftgo_aws::lambda_runtime::{self, Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let config = Config::from_env()?;
    let archiver = Archiver::from_config(&config::load_sdk_config().await, &config)?;
    lambda_runtime::run(service_fn(|event| {
        ftgo_aws::archiver::handle(&archiver, event)
    }))
    .await
}
