//! A bare `lambda_runtime` function: it answers each event with the event. The floor the
//! functions' cold start and size are measured against (`bench/binaries`); not a Lambda of the
//! stack (`functions/*` are).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
