//! The `Order` aggregate: create, approve, reject, cancel, revise.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, AggregateType};
use crate::error::DomainError;
use crate::event::DomainEvent;
use crate::money::Money;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::VariantArray)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Created, waiting for the restaurant.
    ApprovalPending,
    /// Accepted by the restaurant.
    Approved,
    /// Refused by the restaurant.
    Rejected,
    /// Cancelled by the consumer.
    Cancelled,
}

impl OrderStatus {
    /// All states, in declaration (lifecycle) order; derived, so never incomplete.
    pub const ALL: &'static [OrderStatus] = <Self as strum::VariantArray>::VARIANTS;

    /// The wire name, e.g. `APPROVAL_PENDING`.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderStatus::ApprovalPending => "APPROVAL_PENDING",
            OrderStatus::Approved => "APPROVED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    /// Whether a courier may pick up an order in this state (the delivery's rule, decided
    /// here so that a new state is decided where it is declared).
    pub const fn may_be_picked_up(self) -> bool {
        match self {
            OrderStatus::Approved => true,
            OrderStatus::ApprovalPending | OrderStatus::Rejected | OrderStatus::Cancelled => false,
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|status| status.as_str() == text)
    }
}

/// One line of an order. `price` is the unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    /// The restaurant's menu item id.
    pub menu_item_id: String,
    /// The menu item's name.
    pub name: String,
    /// How many (at least 1).
    pub quantity: u32,
    /// Unit price.
    pub price: Money,
}

impl LineItem {
    /// `price × quantity`, or `None` on overflow.
    pub fn total(&self) -> Option<Money> {
        self.price.checked_times(self.quantity)
    }
}

/// Where the order goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAddress {
    /// First street line.
    pub street1: String,
    /// Second street line, if any.
    pub street2: Option<String>,
    /// City.
    pub city: String,
    /// State.
    pub state: String,
    /// Postal code.
    pub zip: String,
}

/// What a consumer asks for when placing an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOrder {
    /// Who orders.
    pub consumer_id: String,
    /// From which restaurant.
    pub restaurant_id: String,
    /// The restaurant's name (kept on the order for history search).
    pub restaurant_name: String,
    /// What, at least one line.
    pub line_items: Vec<LineItem>,
    /// Where to.
    pub delivery_address: DeliveryAddress,
}

/// Commands an order accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// Place a new order.
    Create(CreateOrder),
    /// The restaurant accepts it.
    Approve,
    /// The restaurant refuses it.
    Reject,
    /// The consumer cancels it. `delivery_picked_up` is what was read of the order's delivery,
    /// set by [`OrderCommand::with_delivery_read`]; the append is conditional on that reading
    /// still being current.
    Cancel {
        /// Whether the order's delivery has been picked up.
        delivery_picked_up: bool,
    },
    /// Change line quantities (`0` removes a line).
    Revise {
        /// New quantity per menu item id.
        line_item_quantities: BTreeMap<String, u32>,
    },
}

impl OrderCommand {
    /// The other aggregate of the order whose stream this command reads before it decides
    /// (its head then guards the append; [`crate::guard`]): a cancel reads the delivery, as it
    /// must be refused once the order is picked up. A new command decides it here.
    pub const fn reads(&self) -> Option<AggregateType> {
        match self {
            OrderCommand::Cancel { .. } => Some(AggregateType::Delivery),
            OrderCommand::Create(_)
            | OrderCommand::Approve
            | OrderCommand::Reject
            | OrderCommand::Revise { .. } => None,
        }
    }

    /// The command completed with what was read of the delivery (`picked_up`: its stream has
    /// events). The field is set here, whatever the caller passed.
    pub fn with_delivery_read(self, picked_up: bool) -> Self {
        match self {
            OrderCommand::Cancel { .. } => OrderCommand::Cancel {
                delivery_picked_up: picked_up,
            },
            other => other,
        }
    }
}

/// Payload of [`OrderEvent::OrderCreated`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    /// Who ordered.
    pub consumer_id: String,
    /// From which restaurant.
    pub restaurant_id: String,
    /// The restaurant's name.
    pub restaurant_name: String,
    /// What.
    pub line_items: Vec<LineItem>,
    /// Where to; `None` only for events written before schema version 2.
    pub delivery_address: Option<DeliveryAddress>,
    /// Sum of the lines, computed by the aggregate.
    pub order_total: Money,
}

/// Events of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "eventType", content = "payload")]
pub enum OrderEvent {
    /// The order was placed.
    OrderCreated(OrderCreated),
    /// The restaurant accepted it.
    OrderApproved {},
    /// The restaurant refused it.
    OrderRejected {},
    /// The consumer cancelled it.
    OrderCancelled {},
    /// Its lines changed.
    #[serde(rename_all = "camelCase")]
    OrderRevised {
        /// The full new list of lines.
        line_items: Vec<LineItem>,
        /// The new total.
        order_total: Money,
    },
}

impl DomainEvent for OrderEvent {}

/// The state of one order, folded from its events. `status` is `None` until it is created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Current status; `None` before creation.
    pub status: Option<OrderStatus>,
    /// Who ordered.
    pub consumer_id: String,
    /// From which restaurant.
    pub restaurant_id: String,
    /// The restaurant's name.
    pub restaurant_name: String,
    /// Current lines.
    pub line_items: Vec<LineItem>,
    /// Where to.
    pub delivery_address: Option<DeliveryAddress>,
    /// Current total.
    pub order_total: Money,
}

impl Order {
    fn require_status(
        &self,
        allowed: &[OrderStatus],
        action: &str,
    ) -> Result<OrderStatus, DomainError> {
        let status = self
            .status
            .ok_or_else(|| DomainError::NotFound("order not found".into()))?;
        if allowed.contains(&status) {
            Ok(status)
        } else {
            Err(DomainError::InvalidState(format!(
                "cannot {action} an order that is {}",
                status.as_str()
            )))
        }
    }
}

mod validation;

use validation::validate_create;
pub use validation::{
    MAX_ID_BYTES, MAX_ID_CHARS, MAX_LINE_ITEMS, MAX_NAME_CHARS, is_id_char, is_message_char,
    require_id, require_line_count, require_name,
};

/// Sums the lines, refusing an overflowing total.
fn total_of(line_items: &[LineItem]) -> Result<Money, DomainError> {
    line_items
        .iter()
        .try_fold(Money::ZERO, |sum, line| {
            line.total().and_then(|t| sum.checked_add(t))
        })
        .ok_or_else(|| DomainError::validation("lineItems", "order total is too large"))
}

fn revised_lines(
    current: &[LineItem],
    quantities: &BTreeMap<String, u32>,
) -> Result<Vec<LineItem>, DomainError> {
    if quantities.is_empty() {
        return Err(DomainError::validation(
            "lineItemQuantities",
            "must name at least one menu item",
        ));
    }
    if let Some(unknown) = quantities
        .keys()
        .find(|id| !current.iter().any(|line| &line.menu_item_id == *id))
    {
        return Err(DomainError::validation(
            format!("lineItemQuantities.{unknown}"),
            "is not a line item of this order",
        ));
    }
    let lines: Vec<LineItem> = current
        .iter()
        .filter_map(|line| match quantities.get(&line.menu_item_id) {
            Some(0) => None,
            Some(&quantity) => Some(LineItem {
                quantity,
                ..line.clone()
            }),
            None => Some(line.clone()),
        })
        .collect();
    if lines.is_empty() {
        return Err(DomainError::validation(
            "lineItemQuantities",
            "an order keeps at least one line item",
        ));
    }
    Ok(lines)
}

impl Aggregate for Order {
    const TYPE: AggregateType = AggregateType::Order;
    type Command = OrderCommand;
    type Event = OrderEvent;

    fn handle(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, DomainError> {
        use OrderStatus::*;
        match command {
            OrderCommand::Create(create) => {
                if let Some(status) = self.status {
                    return Err(DomainError::InvalidState(format!(
                        "order exists already ({})",
                        status.as_str()
                    )));
                }
                validate_create(&create)?;
                let order_total = total_of(&create.line_items)?;
                Ok(vec![OrderEvent::OrderCreated(OrderCreated {
                    consumer_id: create.consumer_id,
                    restaurant_id: create.restaurant_id,
                    restaurant_name: create.restaurant_name,
                    line_items: create.line_items,
                    delivery_address: Some(create.delivery_address),
                    order_total,
                })])
            }
            OrderCommand::Approve => {
                self.require_status(&[ApprovalPending], "approve")?;
                Ok(vec![OrderEvent::OrderApproved {}])
            }
            OrderCommand::Reject => {
                self.require_status(&[ApprovalPending], "reject")?;
                Ok(vec![OrderEvent::OrderRejected {}])
            }
            OrderCommand::Cancel { delivery_picked_up } => {
                self.require_status(&[ApprovalPending, Approved], "cancel")?;
                if delivery_picked_up {
                    return Err(DomainError::InvalidState(
                        "cannot cancel an order whose delivery is picked up".into(),
                    ));
                }
                Ok(vec![OrderEvent::OrderCancelled {}])
            }
            OrderCommand::Revise {
                line_item_quantities,
            } => {
                self.require_status(&[ApprovalPending, Approved], "revise")?;
                let line_items = revised_lines(&self.line_items, &line_item_quantities)?;
                let order_total = total_of(&line_items)?;
                Ok(vec![OrderEvent::OrderRevised {
                    line_items,
                    order_total,
                }])
            }
        }
    }

    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::OrderCreated(created) => {
                *self = Order {
                    status: Some(OrderStatus::ApprovalPending),
                    consumer_id: created.consumer_id.clone(),
                    restaurant_id: created.restaurant_id.clone(),
                    restaurant_name: created.restaurant_name.clone(),
                    line_items: created.line_items.clone(),
                    delivery_address: created.delivery_address.clone(),
                    order_total: created.order_total,
                }
            }
            OrderEvent::OrderApproved {} => self.status = Some(OrderStatus::Approved),
            OrderEvent::OrderRejected {} => self.status = Some(OrderStatus::Rejected),
            OrderEvent::OrderCancelled {} => self.status = Some(OrderStatus::Cancelled),
            OrderEvent::OrderRevised {
                line_items,
                order_total,
            } => {
                self.line_items = line_items.clone();
                self.order_total = *order_total;
            }
        }
    }
}

/// Test fixtures shared by the domain's tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub fn line(id: &str, name: &str, quantity: u32, cents: i64) -> LineItem {
        LineItem {
            menu_item_id: id.into(),
            name: name.into(),
            quantity,
            price: Money::from_cents(cents),
        }
    }

    pub fn create_order() -> CreateOrder {
        CreateOrder {
            consumer_id: "c-1".into(),
            restaurant_id: "r-1".into(),
            restaurant_name: "Ajanta".into(),
            line_items: vec![
                line("m-1", "Chicken Vindaloo", 2, 1234),
                line("m-2", "Naan", 1, 300),
            ],
            delivery_address: DeliveryAddress {
                street1: "1 Main St".into(),
                street2: None,
                city: "Oakland".into(),
                state: "CA".into(),
                zip: "94612".into(),
            },
        }
    }

    /// `event` as stored: version `version` of stream `o-1`, at a fixed time.
    pub fn stored<E: crate::event::DomainEvent>(
        kind: crate::AggregateType,
        version: u64,
        event: &E,
    ) -> crate::event::StoredEvent {
        let stamp = crate::event::EventStamp {
            event_id: format!("e-{version}"),
            occurred_at: time::macros::datetime!(2024-05-06 07:08:09 UTC),
        };
        crate::event::StoredEvent::record(
            kind,
            "o-1",
            version,
            event,
            stamp,
            crate::event::Metadata::default(),
        )
        .unwrap()
    }

    pub fn created() -> OrderEvent {
        let Ok(mut events) = Order::default().handle(OrderCommand::Create(create_order())) else {
            panic!("fixture order is valid")
        };
        events.remove(0)
    }
}

#[cfg(test)]
mod tests;
