//! The `Order` aggregate: create, approve, reject, cancel, revise.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, AggregateType};
use crate::error::DomainError;
use crate::event::DomainEvent;
use crate::money::Money;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// All states, in lifecycle order.
    pub const ALL: [OrderStatus; 4] = [
        OrderStatus::ApprovalPending,
        OrderStatus::Approved,
        OrderStatus::Rejected,
        OrderStatus::Cancelled,
    ];

    /// The wire name, e.g. `APPROVAL_PENDING`.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderStatus::ApprovalPending => "APPROVAL_PENDING",
            OrderStatus::Approved => "APPROVED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
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
    /// set by [`crate::guard::CrossAggregate::complete`]; the append is conditional on that
    /// reading still being current.
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
    MAX_ID_BYTES, MAX_ID_CHARS, MAX_LINE_ITEMS, MAX_NAME_CHARS, is_id_char, require_id,
    require_line_count, require_name,
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

    pub fn created() -> OrderEvent {
        let Ok(mut events) = Order::default().handle(OrderCommand::Create(create_order())) else {
            panic!("fixture order is valid")
        };
        events.remove(0)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    /// given `events`, when `command`, then the result.
    fn given(events: &[OrderEvent], command: OrderCommand) -> Result<Vec<OrderEvent>, DomainError> {
        Order::from_events(events).handle(command)
    }

    fn invalid_state(result: Result<Vec<OrderEvent>, DomainError>) {
        assert!(
            matches!(result, Err(DomainError::InvalidState(_))),
            "expected INVALID_STATE, got {result:?}"
        );
    }

    fn validation_on(result: Result<Vec<OrderEvent>, DomainError>, expected_field: &str) {
        match result {
            Err(DomainError::Validation { field, .. }) => assert_eq!(field, expected_field),
            other => panic!("expected validation error on {expected_field}, got {other:?}"),
        }
    }

    #[test]
    fn create_computes_the_total_from_the_lines() {
        let events = given(&[], OrderCommand::Create(create_order())).unwrap();
        let [OrderEvent::OrderCreated(created)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(created.order_total, Money::from_cents(2 * 1234 + 300));
        assert_eq!(
            Order::from_events(&events).status,
            Some(OrderStatus::ApprovalPending)
        );
    }

    #[test]
    fn create_refuses_bad_input_naming_the_field() {
        let mut no_lines = create_order();
        no_lines.line_items.clear();
        validation_on(given(&[], OrderCommand::Create(no_lines)), "lineItems");

        let mut zero = create_order();
        zero.line_items[1].quantity = 0;
        validation_on(
            given(&[], OrderCommand::Create(zero)),
            "lineItems[1].quantity",
        );

        let mut blank_consumer = create_order();
        blank_consumer.consumer_id = " ".into();
        validation_on(
            given(&[], OrderCommand::Create(blank_consumer)),
            "consumerId",
        );

        let mut twice = create_order();
        twice.line_items[1].menu_item_id = "m-1".into();
        validation_on(
            given(&[], OrderCommand::Create(twice)),
            "lineItems[1].menuItemId",
        );

        let mut no_city = create_order();
        no_city.delivery_address.city.clear();
        validation_on(
            given(&[], OrderCommand::Create(no_city)),
            "deliveryAddress.city",
        );

        let mut long_id = create_order();
        long_id.consumer_id = "c".repeat(MAX_ID_BYTES + 1);
        validation_on(given(&[], OrderCommand::Create(long_id)), "consumerId");

        for bad in [
            "r#1",
            "r/1",
            "r 1",
            "r%001",
            "r\u{0}1",
            "r\u{202E}1",
            "r\u{200F}1",
        ] {
            let mut odd_id = create_order();
            odd_id.restaurant_id = bad.into();
            validation_on(given(&[], OrderCommand::Create(odd_id)), "restaurantId");
            let mut odd_menu_id = create_order();
            odd_menu_id.line_items[0].menu_item_id = bad.into();
            validation_on(
                given(&[], OrderCommand::Create(odd_menu_id)),
                "lineItems[0].menuItemId",
            );
        }
        for bad in ["Ajanta\n", "Aja\u{0}nta", "\u{202E}atnajA", "Aja\u{7f}"] {
            let mut odd_name = create_order();
            odd_name.restaurant_name = bad.into();
            validation_on(given(&[], OrderCommand::Create(odd_name)), "restaurantName");
        }
        let mut right_to_left = create_order();
        right_to_left.restaurant_name = "\u{5e9}\u{5dc}\u{5d5}\u{5dd} \u{200F}Ajanta".into();
        assert!(
            given(&[], OrderCommand::Create(right_to_left)).is_ok(),
            "RTL text is a name"
        );

        let mut huge = create_order();
        huge.line_items[0].price = Money::from_cents(i64::MAX / 2);
        validation_on(given(&[], OrderCommand::Create(huge)), "lineItems");
    }

    #[test]
    fn create_enforces_the_documented_limits_naming_the_field() {
        let at_limits = {
            let mut command = create_order();
            command.consumer_id = "c".repeat(MAX_ID_CHARS);
            command.restaurant_name = "é".repeat(MAX_NAME_CHARS);
            command.line_items = (0..MAX_LINE_ITEMS)
                .map(|i| {
                    fixtures::line(
                        &format!("m.{i}:x_y-Z"),
                        &"名".repeat(MAX_NAME_CHARS),
                        1,
                        100,
                    )
                })
                .collect();
            command
        };
        assert!(given(&[], OrderCommand::Create(at_limits.clone())).is_ok());

        let mut long_id = at_limits.clone();
        long_id.consumer_id.push('c');
        validation_on(given(&[], OrderCommand::Create(long_id)), "consumerId");
        for bad in ["c 1", "c/1", "c#1", "ç", "c\n", "c%20"] {
            let mut command = at_limits.clone();
            command.restaurant_id = bad.into();
            validation_on(given(&[], OrderCommand::Create(command)), "restaurantId");
        }
        let mut menu_item = at_limits.clone();
        menu_item.line_items[3].menu_item_id = "m 3".into();
        validation_on(
            given(&[], OrderCommand::Create(menu_item)),
            "lineItems[3].menuItemId",
        );
        let mut long_name = at_limits.clone();
        long_name.restaurant_name.push('é');
        validation_on(
            given(&[], OrderCommand::Create(long_name)),
            "restaurantName",
        );
        let mut long_line = at_limits.clone();
        long_line.line_items[7].name.push('x');
        validation_on(
            given(&[], OrderCommand::Create(long_line)),
            "lineItems[7].name",
        );
        let mut control = at_limits.clone();
        control.line_items[0].name = "Naan\u{0}".into();
        validation_on(
            given(&[], OrderCommand::Create(control)),
            "lineItems[0].name",
        );
        let mut too_many = at_limits.clone();
        too_many
            .line_items
            .push(fixtures::line("m-extra", "Naan", 1, 100));
        validation_on(given(&[], OrderCommand::Create(too_many)), "lineItems");
        let mut long_street = at_limits;
        long_street.delivery_address.street2 = Some("s".repeat(MAX_NAME_CHARS + 1));
        validation_on(
            given(&[], OrderCommand::Create(long_street)),
            "deliveryAddress.street2",
        );
    }

    #[test]
    fn create_twice_is_refused() {
        invalid_state(given(&[created()], OrderCommand::Create(create_order())));
    }

    #[test]
    fn commands_on_a_missing_order_are_not_found() {
        for command in [
            OrderCommand::Approve,
            OrderCommand::Reject,
            OrderCommand::Cancel {
                delivery_picked_up: false,
            },
        ] {
            assert!(matches!(given(&[], command), Err(DomainError::NotFound(_))));
        }
    }

    #[test]
    fn pending_order_can_be_approved_or_rejected() {
        assert_eq!(
            given(&[created()], OrderCommand::Approve).unwrap(),
            vec![OrderEvent::OrderApproved {}]
        );
        assert_eq!(
            given(&[created()], OrderCommand::Reject).unwrap(),
            vec![OrderEvent::OrderRejected {}]
        );
    }

    #[test]
    fn approve_and_reject_need_a_pending_order() {
        let approved = [created(), OrderEvent::OrderApproved {}];
        let rejected = [created(), OrderEvent::OrderRejected {}];
        let cancelled = [created(), OrderEvent::OrderCancelled {}];
        for history in [&approved[..], &rejected[..], &cancelled[..]] {
            invalid_state(given(history, OrderCommand::Approve));
            invalid_state(given(history, OrderCommand::Reject));
        }
    }

    #[test]
    fn pending_or_approved_order_can_be_cancelled_before_pickup() {
        let cancel = || OrderCommand::Cancel {
            delivery_picked_up: false,
        };
        assert_eq!(
            given(&[created()], cancel()).unwrap(),
            vec![OrderEvent::OrderCancelled {}]
        );
        let approved = [created(), OrderEvent::OrderApproved {}];
        assert_eq!(
            given(&approved, cancel()).unwrap(),
            vec![OrderEvent::OrderCancelled {}]
        );
        let events = [
            created(),
            OrderEvent::OrderApproved {},
            OrderEvent::OrderCancelled {},
        ];
        assert_eq!(
            Order::from_events(&events).status,
            Some(OrderStatus::Cancelled)
        );
    }

    #[test]
    fn cancel_is_refused_after_pickup_rejection_or_cancellation() {
        let approved = [created(), OrderEvent::OrderApproved {}];
        invalid_state(given(
            &approved,
            OrderCommand::Cancel {
                delivery_picked_up: true,
            },
        ));
        invalid_state(given(
            &[created(), OrderEvent::OrderRejected {}],
            OrderCommand::Cancel {
                delivery_picked_up: false,
            },
        ));
        invalid_state(given(
            &[created(), OrderEvent::OrderCancelled {}],
            OrderCommand::Cancel {
                delivery_picked_up: false,
            },
        ));
    }

    #[test]
    fn revise_changes_quantities_removes_zero_lines_and_recomputes_the_total() {
        let quantities = BTreeMap::from([("m-1".to_string(), 3), ("m-2".to_string(), 0)]);
        let events = given(
            &[created()],
            OrderCommand::Revise {
                line_item_quantities: quantities,
            },
        )
        .unwrap();
        assert_eq!(
            events,
            vec![OrderEvent::OrderRevised {
                line_items: vec![line("m-1", "Chicken Vindaloo", 3, 1234)],
                order_total: Money::from_cents(3 * 1234),
            }]
        );
        let order = Order::from_events(&[created(), events[0].clone()]);
        assert_eq!(order.status, Some(OrderStatus::ApprovalPending));
        assert_eq!(order.order_total, Money::from_cents(3702));
    }

    #[test]
    fn revise_keeps_an_approved_order_approved() {
        let quantities = BTreeMap::from([("m-2".to_string(), 4)]);
        let history = [created(), OrderEvent::OrderApproved {}];
        let events = given(
            &history,
            OrderCommand::Revise {
                line_item_quantities: quantities,
            },
        )
        .unwrap();
        let order = Order::from_events(history.iter().chain(&events));
        assert_eq!(order.status, Some(OrderStatus::Approved));
        assert_eq!(order.order_total, Money::from_cents(2 * 1234 + 4 * 300));
    }

    #[test]
    fn revise_refuses_removing_every_line_unknown_items_and_closed_orders() {
        let all_zero = BTreeMap::from([("m-1".to_string(), 0), ("m-2".to_string(), 0)]);
        validation_on(
            given(
                &[created()],
                OrderCommand::Revise {
                    line_item_quantities: all_zero,
                },
            ),
            "lineItemQuantities",
        );
        let unknown = BTreeMap::from([("m-9".to_string(), 1)]);
        validation_on(
            given(
                &[created()],
                OrderCommand::Revise {
                    line_item_quantities: unknown,
                },
            ),
            "lineItemQuantities.m-9",
        );
        validation_on(
            given(
                &[created()],
                OrderCommand::Revise {
                    line_item_quantities: BTreeMap::new(),
                },
            ),
            "lineItemQuantities",
        );
        let one = || BTreeMap::from([("m-1".to_string(), 1)]);
        invalid_state(given(
            &[created(), OrderEvent::OrderRejected {}],
            OrderCommand::Revise {
                line_item_quantities: one(),
            },
        ));
        invalid_state(given(
            &[created(), OrderEvent::OrderCancelled {}],
            OrderCommand::Revise {
                line_item_quantities: one(),
            },
        ));
    }
}
