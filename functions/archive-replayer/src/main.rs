//! The `archive-replayer` Lambda: wires [`ftgo_aws::lambda::archive_replayer::handle`] to the
//! replay queue.

// The metrics and tracing layers around the replayer make a deep future type.
#![recursion_limit = "256"]

use ftgo_aws::config::{self, Config};
use ftgo_aws::lambda_runtime::Error;
use ftgo_aws::replay::Replayer;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = ftgo_aws::telemetry::init("archive-replayer")?;
    let config = Config::from_env()?;
    let replayer = Replayer::from_config(&config::load_sdk_config().await, &config)?;
    ftgo_aws::telemetry::run(metrics, |event| {
        ftgo_aws::lambda::archive_replayer::handle(&replayer, event)
    })
    .await
}
