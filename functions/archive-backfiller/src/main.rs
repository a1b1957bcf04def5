//! The `archive-backfiller` Lambda: wires [`ftgo_aws::lambda::archive_backfiller::handle`] to the
//! archiver's dead-letter queue.

// The metrics and tracing layers around the backfill (a table scan, S3 reads and writes) make
// a deep future type.
#![recursion_limit = "256"]

use ftgo_aws::config::{self, Config};
use ftgo_aws::lambda::archive_backfiller::Backfiller;
use ftgo_aws::lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = ftgo_aws::telemetry::init("archive-backfiller")?;
    let config = Config::from_env()?;
    let backfiller = Backfiller::from_config(&config::load_sdk_config().await, &config)?;
    ftgo_aws::telemetry::run(metrics, |event| {
        ftgo_aws::lambda::archive_backfiller::handle(&backfiller, event)
    })
    .await
}
