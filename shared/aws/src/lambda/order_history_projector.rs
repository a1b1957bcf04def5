//! Handler layer: the `order-history-projector` function. The work (planning, conditional
//! updates, gap filling, dead letters) is the application service [`crate::projector`].

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use lambda_runtime::LambdaEvent;

use crate::projector::Projector;

/// Serves one invocation of the `order-history-projector` function.
pub async fn handle(
    projector: &Projector,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, lambda_runtime::Error> {
    Ok(projector.process_batch(&event.payload).await)
}
