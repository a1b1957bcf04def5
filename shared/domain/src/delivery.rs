//! The `Delivery` aggregate: pickup and delivery of one order (its id is the order's id).

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, AggregateType};
use crate::error::DomainError;
use crate::event::DomainEvent;
use crate::order::OrderStatus;

/// Where a delivery stands once it has started. Before pickup a delivery has no status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::VariantArray)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    /// The courier has the food.
    PickedUp,
    /// The consumer has the food.
    Delivered,
}

impl DeliveryStatus {
    /// All states, in declaration (lifecycle) order; derived, so never incomplete.
    pub const ALL: &'static [DeliveryStatus] = <Self as strum::VariantArray>::VARIANTS;

    /// The wire name, e.g. `PICKED_UP`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::PickedUp => "PICKED_UP",
            DeliveryStatus::Delivered => "DELIVERED",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_str() == text)
    }
}

/// Commands a delivery accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryCommand {
    /// The courier picks the order up. `order_status` is what was read of the order (`None`:
    /// no such order), set by [`DeliveryCommand::with_order_read`]; the append is conditional
    /// on that reading.
    PickUp {
        /// The order's status as read.
        order_status: Option<OrderStatus>,
    },
    /// The courier hands the order over.
    Deliver,
}

impl DeliveryCommand {
    /// Every delivery command reads the order before it decides (its head then guards the
    /// append; [`crate::guard`]): an unknown order is 404, and a pickup needs it approved.
    pub const fn reads(&self) -> Option<AggregateType> {
        Some(AggregateType::Order)
    }

    /// The command completed with the order's status as read (`None`: no such order). The
    /// field is set here, whatever the caller passed; a delivery for no order is refused.
    pub fn with_order_read(self, order_status: Option<OrderStatus>) -> Result<Self, DomainError> {
        match self {
            DeliveryCommand::PickUp { .. } => Ok(DeliveryCommand::PickUp { order_status }),
            DeliveryCommand::Deliver if order_status.is_none() => {
                Err(DomainError::NotFound("order not found".into()))
            }
            DeliveryCommand::Deliver => Ok(DeliveryCommand::Deliver),
        }
    }
}

/// Events of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "eventType", content = "payload")]
pub enum DeliveryEvent {
    /// The order was picked up.
    DeliveryPickedUp {},
    /// The order was delivered.
    DeliveryDelivered {},
}

impl DomainEvent for DeliveryEvent {}

/// The state of one delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// `None` until picked up.
    pub status: Option<DeliveryStatus>,
}

impl Aggregate for Delivery {
    const TYPE: AggregateType = AggregateType::Delivery;
    type Command = DeliveryCommand;
    type Event = DeliveryEvent;

    fn handle(&self, command: DeliveryCommand) -> Result<Vec<DeliveryEvent>, DomainError> {
        match command {
            DeliveryCommand::PickUp { order_status } => {
                let order_status =
                    order_status.ok_or_else(|| DomainError::NotFound("order not found".into()))?;
                if !order_status.may_be_picked_up() {
                    return Err(DomainError::InvalidState(format!(
                        "cannot pick up an order that is {}",
                        order_status.as_str()
                    )));
                }
                match self.status {
                    None => Ok(vec![DeliveryEvent::DeliveryPickedUp {}]),
                    Some(status) => Err(DomainError::InvalidState(format!(
                        "delivery is {} already",
                        status.as_str()
                    ))),
                }
            }
            DeliveryCommand::Deliver => match self.status {
                Some(DeliveryStatus::PickedUp) => Ok(vec![DeliveryEvent::DeliveryDelivered {}]),
                Some(DeliveryStatus::Delivered) => Err(DomainError::InvalidState(
                    "delivery is DELIVERED already".into(),
                )),
                None => Err(DomainError::InvalidState(
                    "cannot deliver an order that is not picked up".into(),
                )),
            },
        }
    }

    fn apply(&mut self, event: &DeliveryEvent) {
        self.status = Some(match event {
            DeliveryEvent::DeliveryPickedUp {} => DeliveryStatus::PickedUp,
            DeliveryEvent::DeliveryDelivered {} => DeliveryStatus::Delivered,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(
        events: &[DeliveryEvent],
        command: DeliveryCommand,
    ) -> Result<Vec<DeliveryEvent>, DomainError> {
        Delivery::from_events(events).handle(command)
    }

    const PICKED_UP: DeliveryEvent = DeliveryEvent::DeliveryPickedUp {};
    const DELIVERED: DeliveryEvent = DeliveryEvent::DeliveryDelivered {};

    #[test]
    fn approved_order_can_be_picked_up_then_delivered() {
        let pickup = given(
            &[],
            DeliveryCommand::PickUp {
                order_status: Some(OrderStatus::Approved),
            },
        )
        .unwrap();
        assert_eq!(pickup, vec![PICKED_UP]);
        assert_eq!(
            given(&pickup, DeliveryCommand::Deliver).unwrap(),
            vec![DELIVERED]
        );
        assert_eq!(
            Delivery::from_events(&[PICKED_UP, DELIVERED]).status,
            Some(DeliveryStatus::Delivered)
        );
    }

    #[test]
    fn pickup_needs_an_approved_order() {
        for status in [
            OrderStatus::ApprovalPending,
            OrderStatus::Rejected,
            OrderStatus::Cancelled,
        ] {
            let result = given(
                &[],
                DeliveryCommand::PickUp {
                    order_status: Some(status),
                },
            );
            assert!(
                matches!(result, Err(DomainError::InvalidState(_))),
                "{status:?}"
            );
        }
        assert!(matches!(
            given(&[], DeliveryCommand::PickUp { order_status: None }),
            Err(DomainError::NotFound(_))
        ));
    }

    #[test]
    fn pickup_twice_and_deliver_out_of_turn_are_refused() {
        let approved = Some(OrderStatus::Approved);
        assert!(matches!(
            given(
                &[PICKED_UP],
                DeliveryCommand::PickUp {
                    order_status: approved
                }
            ),
            Err(DomainError::InvalidState(_))
        ));
        assert!(matches!(
            given(&[], DeliveryCommand::Deliver),
            Err(DomainError::InvalidState(_))
        ));
        assert!(matches!(
            given(&[PICKED_UP, DELIVERED], DeliveryCommand::Deliver),
            Err(DomainError::InvalidState(_))
        ));
    }
}
