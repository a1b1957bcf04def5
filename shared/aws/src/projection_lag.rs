//! How far the order-history view is behind the event table, stream by stream: how many events
//! the view does not reflect yet, and the projection lag (now − `occurredAt` of the oldest event
//! the view misses; 0 when caught up). [`projection`] reads both tables whole: cheap locally,
//! and on AWS for small tables (`ftgo status`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::Error;

/// The event table against the order-history view.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Projection {
    /// Events in the event table.
    pub events: usize,
    /// Streams in the event table.
    pub streams: usize,
    /// Events the view does not reflect yet.
    pub events_behind: usize,
    /// Streams with such events.
    pub streams_behind: usize,
    /// Now − `occurredAt` of the oldest event the view misses (0 when caught up).
    pub lag_ms: u64,
    /// `occurredAt` of the newest event.
    pub newest_event_at: Option<String>,
}

/// One event, as far as the comparison needs it (an item of the event table).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventHead {
    /// `<AggregateType>#<id>`.
    pub stream_id: String,
    /// Its version.
    pub version: u64,
    /// Its `occurredAt`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub occurred_at: Option<OffsetDateTime>,
}

/// The versions an item of the view has seen of its two streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewVersions {
    /// The order (and delivery) id.
    pub order_id: String,
    /// The last version of `Order#<id>` applied.
    pub order_version: Option<u64>,
    /// The last version of `Delivery#<id>` applied.
    pub delivery_version: Option<u64>,
}

/// Compares events with the view's versions (keyed by stream id), at `now`.
pub fn compare(
    events: &[EventHead],
    view_versions: &HashMap<String, u64>,
    now: OffsetDateTime,
) -> Projection {
    let mut projection = Projection {
        events: events.len(),
        ..Projection::default()
    };
    let mut streams: HashMap<&str, bool> = HashMap::new();
    let mut oldest_behind: Option<OffsetDateTime> = None;
    let mut newest: Option<OffsetDateTime> = None;
    for event in events {
        let seen = view_versions.get(&event.stream_id).copied().unwrap_or(0);
        let behind = event.version > seen;
        *streams.entry(&event.stream_id).or_default() |= behind;
        if let Some(at) = event.occurred_at {
            newest = newest.max(Some(at));
            if behind {
                oldest_behind = Some(oldest_behind.map_or(at, |o| o.min(at)));
            }
        }
        projection.events_behind += usize::from(behind);
    }
    projection.streams = streams.len();
    projection.streams_behind = streams.values().filter(|b| **b).count();
    projection.lag_ms = oldest_behind.map_or(0, |at| crate::telemetry::lag_ms(now, at));
    projection.newest_event_at = newest.and_then(|t| t.format(&Rfc3339).ok());
    projection
}

/// The view's versions by stream id (`Order#<id>`, `Delivery#<id>`).
pub fn view_versions(items: &[ViewVersions]) -> HashMap<String, u64> {
    let mut versions = HashMap::new();
    for item in items {
        for (kind, version) in [
            ("Order", item.order_version),
            ("Delivery", item.delivery_version),
        ] {
            if let Some(version) = version {
                versions.insert(format!("{kind}#{}", item.order_id), version);
            }
        }
    }
    versions
}

/// Reads event table `events_table` and view table `view_table` whole (only the attributes
/// compared) and compares them now. Items that do not read as events or view items are left out.
pub async fn projection(
    dynamodb: &aws_sdk_dynamodb::Client,
    events_table: &str,
    view_table: &str,
) -> Result<Projection, Error> {
    let events: Vec<EventHead> =
        scan(dynamodb, events_table, "streamId, version, occurredAt").await?;
    let view: Vec<ViewVersions> = scan(
        dynamodb,
        view_table,
        "orderId, orderVersion, deliveryVersion",
    )
    .await?;
    Ok(compare(
        &events,
        &view_versions(&view),
        OffsetDateTime::now_utc(),
    ))
}

/// Every item of `table` (paginated `Scan` of `projection`) that reads as a `T`.
async fn scan<T: serde::de::DeserializeOwned>(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    projection: &str,
) -> Result<Vec<T>, Error> {
    let mut items = dynamodb
        .scan()
        .table_name(table)
        .projection_expression(projection)
        .into_paginator()
        .items()
        .send();
    let mut out = Vec::new();
    while let Some(item) = items.next().await {
        if let Ok(item) = serde_dynamo::from_item(item.map_err(|e| Error::sdk("Scan", e))?) {
            out.push(item);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn head(stream: &str, version: u64, minute: u8) -> EventHead {
        EventHead {
            stream_id: stream.to_owned(),
            version,
            occurred_at: Some(
                datetime!(2026-01-01 10:00 UTC) + time::Duration::minutes(minute.into()),
            ),
        }
    }

    #[test]
    fn lag_is_the_age_of_the_oldest_event_the_view_misses() {
        let events = [
            head("Order#a", 1, 0),
            head("Order#a", 2, 1),
            head("Order#a", 3, 2),
            head("Delivery#a", 1, 3),
            head("Order#b", 1, 4),
        ];
        let view = HashMap::from([("Order#a".to_owned(), 1), ("Order#b".to_owned(), 1)]);
        let now = datetime!(2026-01-01 10:10 UTC);
        let p = compare(&events, &view, now);
        assert_eq!(p.events, 5);
        assert_eq!(p.streams, 3);
        assert_eq!(p.events_behind, 3);
        assert_eq!(p.streams_behind, 2);
        assert_eq!(p.lag_ms, 9 * 60 * 1000);
        let caught_up = HashMap::from([
            ("Order#a".to_owned(), 3),
            ("Order#b".to_owned(), 1),
            ("Delivery#a".to_owned(), 1),
        ]);
        assert_eq!(compare(&events, &caught_up, now).lag_ms, 0);
    }

    #[test]
    fn view_versions_come_from_both_sources_of_an_item() {
        use aws_sdk_dynamodb::types::AttributeValue;
        let item = HashMap::from([
            ("orderId".to_owned(), AttributeValue::S("a".into())),
            ("orderVersion".to_owned(), AttributeValue::N("3".into())),
            ("deliveryVersion".to_owned(), AttributeValue::N("2".into())),
        ]);
        let item: ViewVersions = serde_dynamo::from_item(item).expect("a view item");
        let versions = view_versions(&[item]);
        assert_eq!(versions.get("Order#a"), Some(&3));
        assert_eq!(versions.get("Delivery#a"), Some(&2));
    }
}
