//! The `event-archiver` Lambda: wires [`ftgo_aws::lambda::event_archiver::handle`] to the event table's
//! DynamoDB stream.

use ftgo_aws::config::{self, Config};
use ftgo_aws::lambda::event_archiver::Archiver;
use ftgo_aws::lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = ftgo_aws::telemetry::init("event-archiver")?;
    let config = Config::from_env()?;
    let archiver = Archiver::from_config(&config::load_sdk_config().await, &config)?;
    ftgo_aws::telemetry::run(metrics, |event| {
        ftgo_aws::lambda::event_archiver::handle(&archiver, event)
    })
    .await
}
