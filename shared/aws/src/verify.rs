//! Checking what the read side and the archive hold against the event table, the source of
//! truth: `ftgo verify-view` and `ftgo archive verify|backfill` run this, and so do the tests.
//!
//! * [`compare_views`]: the view a table must hold (the fold of the events,
//!   [`ftgo_domain::view::fold`]) against the view it holds, item by item and attribute by
//!   attribute (duplicate-detection versions and keywords included), every difference named.
//! * [`missing_from_archive`]: the events of the event table the archive does not hold, and
//!   [`backfill_objects`]: the archive objects that put them back, under deterministic keys.
//! * [`DateRange`]: the `--from`/`--to` days (UTC, inclusive) that narrow both, by the day of
//!   an event's `occurredAt` (the archive's `date=` key segment).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_domain::event::StoredEvent;
use ftgo_domain::view::OrderView;

use crate::error::Error;
/// Re-exported from the archive adapter, where it lives (the archive's `date=` segments).
pub use crate::store::archive::DateRange;
use crate::store::archive::{
    ArchiveObject, OBJECT_SUFFIX, event_date, partition_of, partition_prefix, sanitise_segment,
};
use crate::store::order_history::view_from_item;

/// The `<shard>` key segment of objects written by a backfill (no stream shard wrote them).
pub const BACKFILL_SHARD: &str = "backfill";

/// One way a stored view differs from the fold of the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewDifference {
    /// The fold has the item; the table does not.
    Missing {
        /// The item's key.
        order_id: String,
    },
    /// The table has an item the fold does not.
    Unexpected {
        /// The item's key.
        order_id: String,
    },
    /// Both have the item; one attribute differs.
    Attribute {
        /// The item's key.
        order_id: String,
        /// The attribute (the view table's name for it).
        attribute: &'static str,
        /// What the fold says, as debug text.
        expected: String,
        /// What the table holds, as debug text.
        actual: String,
    },
}

impl fmt::Display for ViewDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewDifference::Missing { order_id } => write!(f, "{order_id}: missing from the table"),
            ViewDifference::Unexpected { order_id } => {
                write!(f, "{order_id}: in the table but not in the events")
            }
            ViewDifference::Attribute {
                order_id,
                attribute,
                expected,
                actual,
            } => write!(
                f,
                "{order_id}: {attribute} is {actual}, the events say {expected}"
            ),
        }
    }
}

/// `view` as the table can store it: the creation date cut to the millisecond (`creationDate`
/// is epoch milliseconds).
pub fn stored_precision(mut view: OrderView) -> OrderView {
    view.creation_date = view.creation_date.map(|date| {
        let nanos = date.nanosecond() / 1_000_000 * 1_000_000;
        date.replace_nanosecond(nanos).unwrap_or(date)
    });
    view
}

/// The view the table must hold for `events`: their fold, at the table's precision.
pub fn expected_view(events: &[StoredEvent]) -> Result<BTreeMap<String, OrderView>, Error> {
    Ok(ftgo_domain::view::fold(events)?
        .into_iter()
        .map(|(id, view)| (id, stored_precision(view)))
        .collect())
}

/// Every difference between `expected` (the fold) and `actual` (the table), in key order.
pub fn compare_views(
    expected: &BTreeMap<String, OrderView>,
    actual: &BTreeMap<String, OrderView>,
) -> Vec<ViewDifference> {
    let ids: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    let mut differences = Vec::new();
    for id in ids {
        match (expected.get(id), actual.get(id)) {
            (Some(_), None) => differences.push(ViewDifference::Missing {
                order_id: id.clone(),
            }),
            (None, Some(_)) => differences.push(ViewDifference::Unexpected {
                order_id: id.clone(),
            }),
            (Some(want), Some(have)) => compare_item(want, have, &mut differences),
            (None, None) => {}
        }
    }
    differences
}

fn compare_item(want: &OrderView, have: &OrderView, out: &mut Vec<ViewDifference>) {
    let mut check = |attribute: &'static str, expected: String, actual: String| {
        if expected != actual {
            out.push(ViewDifference::Attribute {
                order_id: want.order_id.clone(),
                attribute,
                expected,
                actual,
            });
        }
    };
    check(
        "orderId",
        format!("{:?}", want.order_id),
        format!("{:?}", have.order_id),
    );
    check(
        "consumerId",
        format!("{:?}", want.consumer_id),
        format!("{:?}", have.consumer_id),
    );
    check(
        "status",
        format!("{:?}", want.status),
        format!("{:?}", have.status),
    );
    check(
        "deliveryStatus",
        format!("{:?}", want.delivery_status),
        format!("{:?}", have.delivery_status),
    );
    check(
        "restaurantId",
        format!("{:?}", want.restaurant_id),
        format!("{:?}", have.restaurant_id),
    );
    check(
        "restaurantName",
        format!("{:?}", want.restaurant_name),
        format!("{:?}", have.restaurant_name),
    );
    check(
        "lineItems",
        format!("{:?}", want.line_items),
        format!("{:?}", have.line_items),
    );
    check(
        "orderTotal",
        format!("{:?}", want.order_total),
        format!("{:?}", have.order_total),
    );
    check(
        "creationDate",
        format!("{:?}", want.creation_date),
        format!("{:?}", have.creation_date),
    );
    check(
        "keywords",
        format!("{:?}", want.keywords),
        format!("{:?}", have.keywords),
    );
    check(
        "restaurantKeywords",
        format!("{:?}", want.restaurant_keywords),
        format!("{:?}", have.restaurant_keywords),
    );
    check(
        "orderVersion",
        format!("{:?}", want.order_version),
        format!("{:?}", have.order_version),
    );
    check(
        "deliveryVersion",
        format!("{:?}", want.delivery_version),
        format!("{:?}", have.delivery_version),
    );
}

/// Every item of table `table` (paginated `Scan`), each through `each`.
pub(crate) async fn scan_items(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    mut each: impl FnMut(HashMap<String, AttributeValue>) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut items = dynamodb
        .scan()
        .table_name(table)
        .consistent_read(true)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = items.next().await {
        each(item.map_err(|e| Error::sdk("Scan", e))?)?;
    }
    Ok(())
}

/// Every event of event table `table` whose day is in `range` (a consistent, paginated scan).
pub async fn scan_events(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    range: &DateRange,
) -> Result<Vec<StoredEvent>, Error> {
    let mut events = Vec::new();
    scan_items(dynamodb, table, |item| {
        // An item that is not an event (written by hand, or by a future schema this build does
        // not know) cannot be folded or archived; the projector dead-letters it too. It is
        // named in the log and left out, so that one bad item never stops a check or a repair.
        let key_of = |name: &str| match item.get(name) {
            Some(AttributeValue::S(text) | AttributeValue::N(text)) => text.clone(),
            _ => "?".to_owned(),
        };
        let key = (key_of("streamId"), key_of("version"));
        match serde_dynamo::from_item::<_, StoredEvent>(item) {
            Ok(event) if range.contains_event(&event) => events.push(event),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(
                    streamId = %key.0,
                    version = %key.1,
                    %error,
                    "an undecodable item of the event table is left out"
                );
            }
        }
        Ok(())
    })
    .await?;
    Ok(events)
}

/// Every item of view table `table`, by order id.
pub async fn scan_view(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<BTreeMap<String, OrderView>, Error> {
    let mut views = BTreeMap::new();
    scan_items(dynamodb, table, |item| {
        let view = view_from_item(item)?;
        views.insert(view.order_id.clone(), view);
        Ok(())
    })
    .await?;
    Ok(views)
}

/// The events of `events` (the event table) whose `(streamId, version)` is not in `archived`,
/// sorted by stream and version.
pub fn missing_from_archive(
    events: &[StoredEvent],
    archived: &BTreeSet<(String, u64)>,
) -> Vec<StoredEvent> {
    let mut missing: Vec<StoredEvent> = events
        .iter()
        .filter(|e| !archived.contains(&(e.stream_id.clone(), e.version)))
        .cloned()
        .collect();
    crate::store::archive::sort_and_dedup(&mut missing);
    missing
}

/// The archive objects that hold `missing`: one per (partition, day), under
/// `events/v1/bucket=<N>/date=<day>/backfill/<first eventId>-<last eventId>.ndjson.gz` (the
/// lowest and highest event ids of the object, which are unique and time-ordered). The same
/// events always give the same keys and bytes, so a repeated backfill rewrites, never adds.
pub fn backfill_objects(missing: &[StoredEvent]) -> Result<Vec<ArchiveObject>, Error> {
    let mut groups: BTreeMap<(u64, String), Vec<&StoredEvent>> = BTreeMap::new();
    for event in missing {
        groups
            .entry((partition_of(&event.stream_id), event_date(event)?))
            .or_default()
            .push(event);
    }
    let mut objects = Vec::with_capacity(groups.len());
    for ((partition, date), mut group) in groups {
        group.sort_by(|a, b| (&a.stream_id, a.version).cmp(&(&b.stream_id, b.version)));
        let first = group.iter().map(|e| e.event_id.as_str()).min();
        let last = group.iter().map(|e| e.event_id.as_str()).max();
        let (Some(first), Some(last)) = (first, last) else {
            continue;
        };
        objects.push(ArchiveObject {
            key: format!(
                "{}date={date}/{BACKFILL_SHARD}/{}-{}{OBJECT_SUFFIX}",
                partition_prefix(partition),
                sanitise_segment(first),
                sanitise_segment(last)
            ),
            partition,
            first_sequence: first.to_owned(),
            last_sequence: last.to_owned(),
            events: group.into_iter().cloned().collect(),
        });
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftgo_domain::event::{EventStamp, Metadata};
    use ftgo_domain::order::{LineItem, OrderCreated, OrderEvent};
    use ftgo_domain::{AggregateType, Money};
    use time::macros::datetime;

    fn event(
        order: &str,
        version: u64,
        event: &OrderEvent,
        at: time::OffsetDateTime,
    ) -> StoredEvent {
        let stamp = EventStamp {
            event_id: format!("e-{order}-{version}"),
            occurred_at: at,
        };
        StoredEvent::record(
            AggregateType::Order,
            order,
            version,
            event,
            stamp,
            Metadata::default(),
        )
        .unwrap()
    }

    fn created() -> OrderEvent {
        OrderEvent::OrderCreated(OrderCreated {
            consumer_id: "c-1".into(),
            restaurant_id: "r-1".into(),
            restaurant_name: "Ajanta".into(),
            line_items: vec![LineItem {
                menu_item_id: "m-1".into(),
                name: "Chicken Vindaloo".into(),
                quantity: 1,
                price: Money::from_cents(1250),
            }],
            delivery_address: None,
            order_total: Money::from_cents(1250),
        })
    }

    #[test]
    fn equal_views_have_no_difference_and_each_difference_is_named() {
        let at = datetime!(2026-11-01 12:00:00.123456 UTC);
        let events = vec![
            event("o-1", 1, &created(), at),
            event("o-1", 2, &OrderEvent::OrderApproved {}, at),
            event("o-2", 1, &created(), at),
        ];
        let expected = expected_view(&events).unwrap();
        assert!(compare_views(&expected, &expected).is_empty());
        // The stored creation date is milliseconds.
        assert_eq!(
            expected["o-1"].creation_date,
            Some(datetime!(2026-11-01 12:00:00.123 UTC))
        );

        let mut actual = expected.clone();
        actual.remove("o-2");
        let o1 = actual.get_mut("o-1").unwrap();
        o1.order_version = Some(1);
        o1.keywords.insert("extra".into());
        o1.order_total = Money::from_cents(1);
        actual.insert("o-9".into(), OrderView::default());
        let differences: Vec<String> = compare_views(&expected, &actual)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(differences.len(), 5, "{differences:#?}");
        assert!(differences.iter().any(|d| d.starts_with("o-1: orderTotal")));
        assert!(differences.iter().any(|d| d.starts_with("o-1: keywords")));
        assert!(
            differences
                .iter()
                .any(|d| d.starts_with("o-1: orderVersion"))
        );
        assert!(differences.contains(&"o-2: missing from the table".to_owned()));
        assert!(differences.contains(&"o-9: in the table but not in the events".to_owned()));
    }

    #[test]
    fn missing_events_are_found_and_backfilled_under_deterministic_keys() {
        let at = datetime!(2026-11-01 12:00 UTC);
        let events = vec![
            event("o-1", 1, &created(), at),
            event("o-1", 2, &OrderEvent::OrderApproved {}, at),
            event("o-2", 1, &created(), at),
        ];
        let archived = BTreeSet::from([("Order#o-1".to_owned(), 1)]);
        let missing = missing_from_archive(&events, &archived);
        let ids: Vec<(String, u64)> = missing
            .iter()
            .map(|e| (e.stream_id.clone(), e.version))
            .collect();
        assert_eq!(ids, vec![("Order#o-1".into(), 2), ("Order#o-2".into(), 1)]);
        let objects = backfill_objects(&missing).unwrap();
        let again = backfill_objects(&missing).unwrap();
        assert_eq!(objects, again);
        assert_eq!(
            objects.iter().map(|o| o.events.len()).sum::<usize>(),
            2,
            "every missing event is in exactly one object"
        );
        for object in &objects {
            assert!(
                object.key.contains("/date=2026-11-01/backfill/"),
                "{}",
                object.key
            );
            assert!(object.key.starts_with(&partition_prefix(object.partition)));
            assert_eq!(
                object.body().unwrap(),
                again
                    .iter()
                    .find(|o| o.key == object.key)
                    .unwrap()
                    .body()
                    .unwrap()
            );
        }
    }
}
