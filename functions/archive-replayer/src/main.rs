//! The `archive-replayer` Lambda: wires [`ftgo_aws::replay::handle`] to the replay queue.

use ftgo_aws::config::{self, Config};
use ftgo_aws::lambda_runtime::{self, Error, service_fn};
use ftgo_aws::replay::Replayer;

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let config = Config::from_env()?;
    let replayer = Replayer::from_config(&config::load_sdk_config().await, &config)?;
    lambda_runtime::run(service_fn(|event| {
        ftgo_aws::replay::handle(&replayer, event)
    }))
    .await
}
