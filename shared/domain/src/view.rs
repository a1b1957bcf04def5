//! The order-history view rules: which change each event makes to its order's view item, and
//! the strict per-source version rule that makes applying them idempotent.
//!
//! Every event becomes one [`ViewUpdate`] on the item of its order. An item keeps, per source
//! aggregate (Order, Delivery), the highest version applied from it. An update of version `n`
//! lands only when that number is `n − 1` (absent for `n = 1`): a lower stored number means a
//! gap to fill first, a higher or equal one a duplicate to skip ([`Applicability`]).
//!
//! Consecutive events of one stream coalesce ([`ViewUpdate::then`]) into one update of the run
//! `first_version..=version`: it makes the change the events make one after another, lands only
//! when the stored number is `first_version − 1`, and sets it to `version`; a stored number
//! inside the run means part of it landed already ([`Applicability::Overlap`]).
//! [`OrderView`] is the same rule as a pure fold, used by tests and replays to say what the
//! stored view must equal.

use std::collections::BTreeSet;

use time::OffsetDateTime;
use unicode_segmentation::UnicodeSegmentation;

use crate::aggregate::AggregateType;
use crate::delivery::{DeliveryEvent, DeliveryStatus};
use crate::error::DomainError;
use crate::event::StoredEvent;
use crate::money::Money;
use crate::order::{LineItem, MAX_LINE_ITEMS, OrderEvent, OrderStatus};

mod coalesce;

/// Normalised search tokens of `text`: Unicode words, lower-cased.
pub fn keywords_of(text: &str) -> BTreeSet<String> {
    text.unicode_words().map(str::to_lowercase).collect()
}

/// The search tokens of a set of line items (their names).
pub fn line_item_keywords(line_items: &[LineItem]) -> BTreeSet<String> {
    line_items
        .iter()
        .flat_map(|line| keywords_of(&line.name))
        .collect()
}

/// The change one event makes to its order's view item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewChange {
    /// The order was created: everything but the delivery status.
    Created(CreatedView),
    /// The order's status changed.
    Status(OrderStatus),
    /// The order's lines changed.
    Revised {
        /// The new lines.
        line_items: Vec<LineItem>,
        /// Their total.
        order_total: Money,
        /// Tokens of the new lines' names (replacing the old ones).
        keywords: BTreeSet<String>,
    },
    /// The delivery's status changed.
    Delivery(DeliveryStatus),
    /// Several events of one order coalesced: its status and its lines changed.
    StatusAndLines {
        /// The new status.
        status: OrderStatus,
        /// The new lines.
        line_items: Vec<LineItem>,
        /// Their total.
        order_total: Money,
        /// Tokens of the new lines' names (replacing the old ones).
        keywords: BTreeSet<String>,
    },
}

/// What a creation writes on its order's view item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedView {
    /// Who ordered.
    pub consumer_id: String,
    /// The status a new order starts in.
    pub status: OrderStatus,
    /// From which restaurant.
    pub restaurant_id: String,
    /// The restaurant's name.
    pub restaurant_name: String,
    /// The lines.
    pub line_items: Vec<LineItem>,
    /// Their total.
    pub order_total: Money,
    /// The event's time: the order's creation date.
    pub creation_date: OffsetDateTime,
    /// Tokens of the line items' names.
    pub keywords: BTreeSet<String>,
    /// Tokens of the restaurant's name.
    pub restaurant_keywords: BTreeSet<String>,
}

/// One event's update of one view item, or the coalesced update of a run of consecutive events
/// of one stream (`first_version..=version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewUpdate {
    /// The item's key.
    pub order_id: String,
    /// Which aggregate's version guards the update.
    pub source: AggregateType,
    /// The version of the run's first event in that aggregate's stream (the update lands only
    /// on an item that has applied `first_version − 1`); equal to `version` for one event.
    pub first_version: u64,
    /// The version of the (run's last) event in that aggregate's stream: what the item records
    /// as applied once the update lands.
    pub version: u64,
    /// What changes.
    pub change: ViewChange,
}

/// A decoded event of either aggregate type.
// Moved once per event on the projector's hot path: boxing the large variant would cost an
// allocation per event for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyEvent {
    /// An event of an order.
    Order(OrderEvent),
    /// An event of an order's delivery.
    Delivery(DeliveryEvent),
}

/// Plans the view update of one stored event (upcasting old schema versions first).
pub fn plan(event: &StoredEvent) -> Result<ViewUpdate, DomainError> {
    let source = event.aggregate_kind()?;
    if event.version == 0 {
        return Err(DomainError::Decode(format!(
            "{} has version 0",
            event.stream_id
        )));
    }
    let decoded = match source {
        AggregateType::Order => AnyEvent::Order(event.decode::<OrderEvent>()?),
        AggregateType::Delivery => AnyEvent::Delivery(event.decode::<DeliveryEvent>()?),
    };
    plan_decoded(
        &event.aggregate_id,
        event.version,
        event.occurred_at,
        decoded,
    )
}

/// Plans the view update of an already decoded event: version `version` of the stream of
/// order `order_id` (the aggregate type follows from the event), which occurred at
/// `occurred_at`. This is [`plan`] for callers that decode events their own way (e.g. straight
/// from a stream image); both give the same update for the same event.
pub fn plan_decoded(
    order_id: &str,
    version: u64,
    occurred_at: OffsetDateTime,
    event: AnyEvent,
) -> Result<ViewUpdate, DomainError> {
    if version == 0 {
        return Err(DomainError::Decode(format!("{order_id} has version 0")));
    }
    // The view's input obeys the same limit as a create, so that no view item (and no page of
    // them) grows beyond what the contract promises.
    let lines = match &event {
        AnyEvent::Order(OrderEvent::OrderCreated(created)) => created.line_items.len(),
        AnyEvent::Order(OrderEvent::OrderRevised { line_items, .. }) => line_items.len(),
        _ => 0,
    };
    if lines > MAX_LINE_ITEMS {
        return Err(DomainError::Decode(format!(
            "{order_id} version {version} has {lines} line items; a view item holds at most {MAX_LINE_ITEMS}"
        )));
    }
    let (source, change) = match event {
        AnyEvent::Order(event) => (
            AggregateType::Order,
            match event {
                OrderEvent::OrderCreated(created) => ViewChange::Created(CreatedView {
                    status: OrderStatus::ApprovalPending,
                    keywords: line_item_keywords(&created.line_items),
                    restaurant_keywords: keywords_of(&created.restaurant_name),
                    consumer_id: created.consumer_id,
                    restaurant_id: created.restaurant_id,
                    restaurant_name: created.restaurant_name,
                    line_items: created.line_items,
                    order_total: created.order_total,
                    creation_date: occurred_at,
                }),
                OrderEvent::OrderApproved {} => ViewChange::Status(OrderStatus::Approved),
                OrderEvent::OrderRejected {} => ViewChange::Status(OrderStatus::Rejected),
                OrderEvent::OrderCancelled {} => ViewChange::Status(OrderStatus::Cancelled),
                OrderEvent::OrderRevised {
                    line_items,
                    order_total,
                } => ViewChange::Revised {
                    keywords: line_item_keywords(&line_items),
                    line_items,
                    order_total,
                },
            },
        ),
        AnyEvent::Delivery(event) => (
            AggregateType::Delivery,
            match event {
                DeliveryEvent::DeliveryPickedUp {} => {
                    ViewChange::Delivery(DeliveryStatus::PickedUp)
                }
                DeliveryEvent::DeliveryDelivered {} => {
                    ViewChange::Delivery(DeliveryStatus::Delivered)
                }
            },
        ),
    };
    Ok(ViewUpdate {
        order_id: order_id.to_owned(),
        source,
        first_version: version,
        version,
        change,
    })
}

/// Whether an update of `version` may land on an item whose stored version for its source is
/// `stored` (`None`: never touched by that source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applicability {
    /// `stored` is `version − 1`: apply it.
    Apply,
    /// `stored ≥ version`: already applied, skip it.
    Duplicate,
    /// Versions `missing_from..version` have not been applied yet: apply those first.
    Gap {
        /// The first version not yet applied.
        missing_from: u64,
    },
    /// A coalesced update whose first events were applied already, up to `applied` (inside
    /// the run): apply the rest of the run, `applied + 1..=version`.
    Overlap {
        /// The stored version, inside the run.
        applied: u64,
    },
}

impl Applicability {
    /// The strict successor rule for one event of `version`.
    pub fn of(version: u64, stored: Option<u64>) -> Self {
        Self::of_run(version, version, stored)
    }

    /// The strict successor rule for the run `first..=last` of consecutive events.
    pub fn of_run(first: u64, last: u64, stored: Option<u64>) -> Self {
        let applied = stored.unwrap_or(0);
        if applied >= last {
            Applicability::Duplicate
        } else if applied + 1 == first {
            Applicability::Apply
        } else if applied >= first {
            Applicability::Overlap { applied }
        } else {
            Applicability::Gap {
                missing_from: applied + 1,
            }
        }
    }
}

/// An order-history view item, as a pure value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderView {
    /// The order's id.
    pub order_id: String,
    /// Who ordered (`None`: not created yet).
    pub consumer_id: Option<String>,
    /// Order status.
    pub status: Option<OrderStatus>,
    /// Delivery status, once picked up.
    pub delivery_status: Option<DeliveryStatus>,
    /// Restaurant id.
    pub restaurant_id: String,
    /// Restaurant name.
    pub restaurant_name: String,
    /// Current lines.
    pub line_items: Vec<LineItem>,
    /// Current total.
    pub order_total: Money,
    /// When the order was created.
    pub creation_date: Option<OffsetDateTime>,
    /// Tokens of the line items' names.
    pub keywords: BTreeSet<String>,
    /// Tokens of the restaurant's name.
    pub restaurant_keywords: BTreeSet<String>,
    /// Highest Order version applied.
    pub order_version: Option<u64>,
    /// Highest Delivery version applied.
    pub delivery_version: Option<u64>,
}

impl OrderView {
    /// Whether the item is an order yet (an item only a delivery touched is not).
    pub fn is_order(&self) -> bool {
        self.order_version.is_some() && self.consumer_id.is_some()
    }

    /// The stored version of `source`.
    pub fn version_of(&self, source: AggregateType) -> Option<u64> {
        match source {
            AggregateType::Order => self.order_version,
            AggregateType::Delivery => self.delivery_version,
        }
    }

    /// Applies `update` under the strict successor rule; a duplicate, a gap or an overlap
    /// changes nothing.
    pub fn apply(&mut self, update: &ViewUpdate) -> Applicability {
        let applicability = Applicability::of_run(
            update.first_version,
            update.version,
            self.version_of(update.source),
        );
        if applicability != Applicability::Apply {
            return applicability;
        }
        self.order_id.clone_from(&update.order_id);
        match &update.change {
            ViewChange::Created(created) => {
                self.consumer_id = Some(created.consumer_id.clone());
                self.status = Some(created.status);
                self.restaurant_id.clone_from(&created.restaurant_id);
                self.restaurant_name.clone_from(&created.restaurant_name);
                self.line_items.clone_from(&created.line_items);
                self.order_total = created.order_total;
                self.creation_date = Some(created.creation_date);
                self.keywords.clone_from(&created.keywords);
                self.restaurant_keywords
                    .clone_from(&created.restaurant_keywords);
            }
            ViewChange::Status(status) => self.status = Some(*status),
            ViewChange::Revised {
                line_items,
                order_total,
                keywords,
            } => {
                self.line_items.clone_from(line_items);
                self.order_total = *order_total;
                self.keywords.clone_from(keywords);
            }
            ViewChange::Delivery(status) => self.delivery_status = Some(*status),
            ViewChange::StatusAndLines {
                status,
                line_items,
                order_total,
                keywords,
            } => {
                self.status = Some(*status);
                self.line_items.clone_from(line_items);
                self.order_total = *order_total;
                self.keywords.clone_from(keywords);
            }
        }
        match update.source {
            AggregateType::Order => self.order_version = Some(update.version),
            AggregateType::Delivery => self.delivery_version = Some(update.version),
        }
        applicability
    }

    /// Whether any of `keywords` (each normalised with [`keywords_of`]; a multi-word keyword
    /// needs all its words) matches the restaurant name or a line item name.
    pub fn matches_any_keyword(&self, keywords: &[String]) -> bool {
        keywords.iter().any(|keyword| {
            let words = keywords_of(keyword);
            !words.is_empty()
                && words.iter().all(|word| {
                    self.keywords.contains(word) || self.restaurant_keywords.contains(word)
                })
        })
    }
}

/// Folds stored events (any order, duplicates allowed, as long as each stream is complete) into
/// view items, the way the projector must end up: per order id.
pub fn fold(
    events: &[StoredEvent],
) -> Result<std::collections::BTreeMap<String, OrderView>, DomainError> {
    let mut sorted: Vec<&StoredEvent> = events.iter().collect();
    sorted.sort_by(|a, b| (&a.stream_id, a.version).cmp(&(&b.stream_id, b.version)));
    sorted.dedup_by(|a, b| a.stream_id == b.stream_id && a.version == b.version);
    let mut views = std::collections::BTreeMap::<String, OrderView>::new();
    for event in sorted {
        let update = plan(event)?;
        views
            .entry(update.order_id.clone())
            .or_default()
            .apply(&update);
    }
    Ok(views)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::fixtures::{created, stored};

    #[test]
    fn keywords_are_lower_cased_unicode_words() {
        assert_eq!(
            keywords_of("Chicken Vindaloo"),
            BTreeSet::from(["chicken".into(), "vindaloo".into()])
        );
        assert_eq!(
            keywords_of("Crème Brûlée, x2!"),
            BTreeSet::from(["crème".into(), "brûlée".into(), "x2".into()])
        );
        assert!(keywords_of(" -- ").is_empty());
    }

    #[test]
    fn strict_rule_tells_apply_duplicate_and_gap() {
        assert_eq!(Applicability::of(1, None), Applicability::Apply);
        assert_eq!(Applicability::of(3, Some(2)), Applicability::Apply);
        assert_eq!(Applicability::of(2, Some(2)), Applicability::Duplicate);
        assert_eq!(Applicability::of(1, Some(5)), Applicability::Duplicate);
        assert_eq!(
            Applicability::of(5, Some(3)),
            Applicability::Gap { missing_from: 4 }
        );
        assert_eq!(
            Applicability::of(2, None),
            Applicability::Gap { missing_from: 1 }
        );
    }

    #[test]
    fn duplicate_created_event_after_cancel_keeps_cancelled() {
        let created = plan(&stored(AggregateType::Order, 1, &created())).unwrap();
        let cancelled = plan(&stored(
            AggregateType::Order,
            2,
            &OrderEvent::OrderCancelled {},
        ))
        .unwrap();
        let mut view = OrderView::default();
        assert_eq!(view.apply(&created), Applicability::Apply);
        assert_eq!(view.apply(&cancelled), Applicability::Apply);
        assert_eq!(view.apply(&created), Applicability::Duplicate);
        assert_eq!(view.status, Some(OrderStatus::Cancelled));
    }

    #[test]
    fn delivery_only_item_is_not_an_order_until_created() {
        let picked = plan(&stored(
            AggregateType::Delivery,
            1,
            &DeliveryEvent::DeliveryPickedUp {},
        ))
        .unwrap();
        let mut view = OrderView::default();
        view.apply(&picked);
        assert!(!view.is_order());
        view.apply(&plan(&stored(AggregateType::Order, 1, &created())).unwrap());
        assert!(view.is_order());
        assert_eq!(view.delivery_status, Some(DeliveryStatus::PickedUp));
    }

    #[test]
    fn keyword_matching_covers_restaurant_and_line_items_any_of_many() {
        let mut view = OrderView::default();
        view.apply(&plan(&stored(AggregateType::Order, 1, &created())).unwrap());
        assert!(view.matches_any_keyword(&["ajanta".into()]));
        assert!(view.matches_any_keyword(&["pizza".into(), "VINDALOO".into()]));
        assert!(view.matches_any_keyword(&["chicken vindaloo".into()]));
        assert!(!view.matches_any_keyword(&["vinda".into()]));
        assert!(!view.matches_any_keyword(&["pizza".into()]));
    }

    #[test]
    fn an_event_with_more_lines_than_an_order_may_hold_is_not_planned() {
        let crate::order::OrderEvent::OrderCreated(mut created) = created() else {
            panic!("a creation")
        };
        let line = created.line_items[0].clone();
        created.line_items = (0..=MAX_LINE_ITEMS)
            .map(|i| LineItem {
                menu_item_id: format!("m-{i}"),
                ..line.clone()
            })
            .collect();
        let event = OrderEvent::OrderCreated(created.clone());
        let error = plan(&stored(AggregateType::Order, 1, &event)).unwrap_err();
        assert!(error.to_string().contains("at most 50"), "{error}");
        created.line_items.truncate(MAX_LINE_ITEMS);
        let event = OrderEvent::OrderCreated(created);
        assert!(plan(&stored(AggregateType::Order, 1, &event)).is_ok());
    }

    #[test]
    fn creation_date_is_the_events_time() {
        let update = plan(&stored(AggregateType::Order, 1, &created())).unwrap();
        let ViewChange::Created(CreatedView { creation_date, .. }) = update.change else {
            panic!()
        };
        assert_eq!(
            creation_date,
            time::macros::datetime!(2024-05-06 07:08:09 UTC)
        );
    }
}
