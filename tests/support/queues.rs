//! Queue checks for tests.

/// How many messages a queue holds: visible ones and in-flight ones (received, not yet deleted
/// nor visible again), from `ApproximateNumberOfMessages` and
/// `ApproximateNumberOfMessagesNotVisible`. "Gone from the queue" is `(0, 0)`: a receive cannot
/// see an in-flight message, so it cannot tell gone from hidden.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as Name;
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(Name::ApproximateNumberOfMessages)
        .attribute_names(Name::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let count = |name: Name| {
        out.attributes()
            .and_then(|a| a.get(&name))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from {out:?}"))
    };
    (
        count(Name::ApproximateNumberOfMessages),
        count(Name::ApproximateNumberOfMessagesNotVisible),
    )
}
