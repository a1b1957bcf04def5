//! The events the RSS measurement hands to the functions, made from the samples in `events/`.

use std::path::Path;

use serde_json::Value;

type Failure = Box<dyn std::error::Error>;

fn read(root: &Path, path: &str) -> Result<Value, Failure> {
    let text = std::fs::read_to_string(root.join(path))?;
    Ok(serde_json::from_str(&text)?)
}

/// `POST /orders` as API Gateway hands it to `order-commands` (`events/order-commands/create-order.json`).
pub fn create(root: &Path) -> Result<Value, Failure> {
    read(root, "events/order-commands/create-order.json")
}

/// A stream batch of `records` `OrderCreated` records, each of a new order (so that every one
/// is projected: version 1 of its stream), made from the first record of
/// `events/order-history-projector/order-lifecycle.json`.
pub fn stream_batch(root: &Path, records: usize) -> Result<Value, Failure> {
    let sample = read(root, "events/order-history-projector/order-lifecycle.json")?;
    let first = sample["Records"][0].clone();
    let mut out = Vec::with_capacity(records);
    for n in 0..records {
        let order = uuid::Uuid::now_v7().to_string();
        let stream = format!("Order#{order}");
        let mut record = first.clone();
        record["eventID"] = Value::from(format!("{:032x}", n + 1));
        let change = &mut record["dynamodb"];
        change["Keys"]["streamId"]["S"] = Value::from(stream.clone());
        change["NewImage"]["streamId"]["S"] = Value::from(stream);
        change["NewImage"]["aggregateId"]["S"] = Value::from(order);
        change["NewImage"]["eventId"]["S"] = Value::from(uuid::Uuid::now_v7().to_string());
        change["SequenceNumber"] =
            Value::from(format!("{}", 4_200_000_000_000_000_000_000u128 + n as u128));
        out.push(record);
    }
    Ok(serde_json::json!({ "Records": out }))
}
