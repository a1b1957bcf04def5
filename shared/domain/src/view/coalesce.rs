//! Coalescing: consecutive events of one stream as one view update (DESIGN §5; issue 17).
//!
//! Each change is seen as the fields it sets (`ChangeParts`); a later event's fields replace
//! an earlier one's, and a creation replaces everything (it sets every field the other changes
//! set). The merged fields are one [`ViewChange`] again, so the store writes a coalesced run
//! with the same one conditional `UpdateItem` as a single event.

use std::collections::BTreeSet;

use super::{CreatedView, ViewChange, ViewUpdate};
use crate::delivery::DeliveryStatus;
use crate::money::Money;
use crate::order::{LineItem, OrderStatus};

/// The fields a change sets, each optional: what coalescing merges (a later event's field
/// replaces an earlier one's).
#[derive(Debug, Default)]
struct ChangeParts {
    created: Option<CreatedView>,
    status: Option<OrderStatus>,
    lines: Option<(Vec<LineItem>, Money, BTreeSet<String>)>,
    delivery: Option<DeliveryStatus>,
}

impl ChangeParts {
    fn of(change: ViewChange) -> Self {
        let mut parts = Self::default();
        match change {
            ViewChange::Created(created) => parts.created = Some(created),
            ViewChange::Status(status) => parts.status = Some(status),
            ViewChange::Revised {
                line_items,
                order_total,
                keywords,
            } => parts.lines = Some((line_items, order_total, keywords)),
            ViewChange::Delivery(status) => parts.delivery = Some(status),
            ViewChange::StatusAndLines {
                status,
                line_items,
                order_total,
                keywords,
            } => {
                parts.status = Some(status);
                parts.lines = Some((line_items, order_total, keywords));
            }
        }
        parts
    }

    /// `self`, then `later`: a later creation replaces everything (it sets every field the
    /// other changes set); a later status or set of lines replaces the earlier one.
    fn then(mut self, later: Self) -> Self {
        if later.created.is_some() {
            self = Self::default();
        }
        Self {
            created: later.created.or(self.created),
            status: later.status.or(self.status),
            lines: later.lines.or(self.lines),
            delivery: later.delivery.or(self.delivery),
        }
    }

    /// The one change that sets these fields (`None` for a mix that no stream makes).
    fn change(self) -> Option<ViewChange> {
        match self {
            Self {
                created: Some(mut created),
                status,
                lines,
                delivery: None,
            } => {
                if let Some(status) = status {
                    created.status = status;
                }
                if let Some((line_items, order_total, keywords)) = lines {
                    created.line_items = line_items;
                    created.order_total = order_total;
                    created.keywords = keywords;
                }
                Some(ViewChange::Created(created))
            }
            Self {
                created: None,
                status: Some(status),
                lines: Some((line_items, order_total, keywords)),
                delivery: None,
            } => Some(ViewChange::StatusAndLines {
                status,
                line_items,
                order_total,
                keywords,
            }),
            Self {
                created: None,
                status: Some(status),
                lines: None,
                delivery: None,
            } => Some(ViewChange::Status(status)),
            Self {
                created: None,
                status: None,
                lines: Some((line_items, order_total, keywords)),
                delivery: None,
            } => Some(ViewChange::Revised {
                line_items,
                order_total,
                keywords,
            }),
            Self {
                created: None,
                status: None,
                lines: None,
                delivery: Some(status),
            } => Some(ViewChange::Delivery(status)),
            _ => None,
        }
    }
}

impl ViewUpdate {
    /// How many events this update applies.
    pub fn events(&self) -> u64 {
        self.version - self.first_version + 1
    }

    /// This update followed by `next` as one update, when `next` continues the same stream
    /// right after it (`next.first_version == self.version + 1`); `None` otherwise. The
    /// result changes the item exactly as applying the two one after the other does.
    pub fn then(&self, next: &ViewUpdate) -> Option<ViewUpdate> {
        if next.order_id != self.order_id
            || next.source != self.source
            || Some(next.first_version) != self.version.checked_add(1)
        {
            return None;
        }
        let change = ChangeParts::of(self.change.clone())
            .then(ChangeParts::of(next.change.clone()))
            .change()?;
        Some(ViewUpdate {
            order_id: self.order_id.clone(),
            source: self.source,
            first_version: self.first_version,
            version: next.version,
            change,
        })
    }

    /// The updates of `run` (in order) coalesced into as few updates as they allow: one for
    /// each stretch of consecutive versions of one stream.
    pub fn coalesce(run: &[ViewUpdate]) -> Vec<ViewUpdate> {
        let mut out: Vec<ViewUpdate> = Vec::with_capacity(1);
        for update in run {
            match out.last().and_then(|last| last.then(update)) {
                Some(merged) => {
                    if let Some(last) = out.last_mut() {
                        *last = merged;
                    }
                }
                None => out.push(update.clone()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AggregateType;
    use crate::delivery::DeliveryEvent;
    use crate::order::OrderEvent;
    use crate::order::fixtures::{created, stored};
    use crate::view::{Applicability, OrderView, plan};

    fn order_event(code: u8) -> OrderEvent {
        let line = |quantity| LineItem {
            menu_item_id: "m-1".into(),
            name: format!("Dish {quantity}"),
            quantity,
            price: Money::from_cents(100),
        };
        match code % 5 {
            0 => OrderEvent::OrderApproved {},
            1 => OrderEvent::OrderRejected {},
            2 => OrderEvent::OrderCancelled {},
            3 => OrderEvent::OrderRevised {
                line_items: vec![line(u32::from(code))],
                order_total: Money::from_cents(100 * i64::from(code)),
            },
            _ => OrderEvent::OrderRevised {
                line_items: vec![],
                order_total: Money::from_cents(0),
            },
        }
    }

    /// A stream's updates: a creation (or, for the delivery, a pickup) and `tail` more.
    fn stream_updates(kind: AggregateType, tail: &[u8]) -> Vec<ViewUpdate> {
        let mut updates = Vec::new();
        match kind {
            AggregateType::Order => {
                updates.push(plan(&stored(kind, 1, &created())).unwrap());
                for (i, code) in tail.iter().enumerate() {
                    let event = order_event(*code);
                    updates.push(plan(&stored(kind, i as u64 + 2, &event)).unwrap());
                }
            }
            AggregateType::Delivery => {
                for (i, code) in tail.iter().enumerate() {
                    let event = if code % 2 == 0 {
                        DeliveryEvent::DeliveryPickedUp {}
                    } else {
                        DeliveryEvent::DeliveryDelivered {}
                    };
                    updates.push(plan(&stored(kind, i as u64 + 1, &event)).unwrap());
                }
            }
        }
        updates
    }

    #[test]
    fn a_coalesced_run_is_guarded_on_its_first_version_and_records_its_last() {
        let updates = stream_updates(AggregateType::Order, &[0, 3]);
        let run = ViewUpdate::coalesce(&updates[1..]);
        assert_eq!(run.len(), 1);
        assert_eq!((run[0].first_version, run[0].version), (2, 3));
        assert!(matches!(run[0].change, ViewChange::StatusAndLines { .. }));
        for (stored, expected) in [
            (None, Applicability::Gap { missing_from: 1 }),
            (Some(1), Applicability::Apply),
            (Some(2), Applicability::Overlap { applied: 2 }),
            (Some(3), Applicability::Duplicate),
            (Some(9), Applicability::Duplicate),
        ] {
            assert_eq!(Applicability::of_run(2, 3, stored), expected, "{stored:?}");
        }
        // Not consecutive, or another stream: no coalescing.
        assert_eq!(updates[0].then(&updates[2]), None);
        let picked = stream_updates(AggregateType::Delivery, &[0]);
        assert_eq!(updates[0].then(&picked[0]), None);
    }

    proptest::proptest! {
        /// Coalescing any stretches of a stream's events changes the view exactly as applying
        /// them one by one does, whatever the events (every order and delivery event type).
        #[test]
        fn coalesced_runs_fold_to_the_same_view_as_single_events(
            order_tail in proptest::collection::vec(0u8..20, 0..8),
            delivery_tail in proptest::collection::vec(0u8..4, 0..4),
            cuts in proptest::collection::vec(proptest::bool::ANY, 12),
        ) {
            let order = stream_updates(AggregateType::Order, &order_tail);
            let delivery = stream_updates(AggregateType::Delivery, &delivery_tail);
            let mut one_by_one = OrderView::default();
            for update in order.iter().chain(&delivery) {
                proptest::prop_assert_eq!(one_by_one.apply(update), Applicability::Apply);
            }
            let mut coalesced = OrderView::default();
            for updates in [&order, &delivery] {
                // Cut the stream into stretches where `cuts` says, coalesce each stretch.
                let mut start = 0;
                for end in 1..=updates.len() {
                    if end == updates.len() || cuts[end % cuts.len()] {
                        let run = ViewUpdate::coalesce(&updates[start..end]);
                        proptest::prop_assert_eq!(run.len(), 1);
                        proptest::prop_assert_eq!(coalesced.apply(&run[0]), Applicability::Apply);
                        // Applied again: a duplicate; a longer run over it: an overlap.
                        proptest::prop_assert_eq!(coalesced.apply(&run[0]), Applicability::Duplicate);
                        start = end;
                    }
                }
            }
            proptest::prop_assert_eq!(coalesced, one_by_one);
        }
    }
}
