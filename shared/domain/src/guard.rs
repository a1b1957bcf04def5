//! The cross-aggregate rule: which other stream of the same order a command reads before it
//! decides, and how that reading completes the command.
//!
//! An order and its delivery are two aggregates with two streams. A cancel must not land once
//! the delivery is picked up, and a pickup only once the order is approved: so a cancel reads
//! the delivery, a pickup (and a delivery) reads the order, and the caller's append is
//! conditional on that other stream still ending where it was read. Which stream a command reads,
//! and what the reading sets in it, is decided beside the command (`OrderCommand::reads`,
//! `DeliveryCommand::reads`, so that a new command is decided where it is declared); this module
//! joins both aggregates under one trait, and the application service only performs the read
//! and the guarded append.

use crate::aggregate::{Aggregate, AggregateType};
use crate::delivery::{Delivery, DeliveryCommand, DeliveryStatus};
use crate::error::DomainError;
use crate::order::{Order, OrderCommand, OrderStatus};

/// What a command read of the other aggregate of its order (only the side it depends on is
/// filled; `None` there means that stream has no events).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    /// The order's status, when the order was read.
    pub order_status: Option<OrderStatus>,
    /// The delivery's status, when the delivery was read.
    pub delivery_status: Option<DeliveryStatus>,
}

/// An aggregate whose commands may depend on the other aggregate of the same order.
pub trait CrossAggregate: Aggregate {
    /// The aggregate whose stream `command` reads and whose head guards its append, if any.
    fn depends_on(command: &Self::Command) -> Option<AggregateType>;

    /// `command` completed with `reading` (what was read of [`Self::depends_on`]'s stream, or
    /// `None` when the command depends on nothing). The fields a command carries for that
    /// reading are set here, whatever the caller passed; a reading that makes the command
    /// meaningless (no such order) refuses it.
    fn complete(
        command: Self::Command,
        reading: Option<&Reading>,
    ) -> Result<Self::Command, DomainError>;
}

impl CrossAggregate for Order {
    fn depends_on(command: &OrderCommand) -> Option<AggregateType> {
        command.reads()
    }

    fn complete(
        command: OrderCommand,
        reading: Option<&Reading>,
    ) -> Result<OrderCommand, DomainError> {
        Ok(command.with_delivery_read(reading.is_some_and(|r| r.delivery_status.is_some())))
    }
}

impl CrossAggregate for Delivery {
    fn depends_on(command: &DeliveryCommand) -> Option<AggregateType> {
        command.reads()
    }

    fn complete(
        command: DeliveryCommand,
        reading: Option<&Reading>,
    ) -> Result<DeliveryCommand, DomainError> {
        command.with_order_read(reading.and_then(|r| r.order_status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(status: Option<DeliveryStatus>) -> Reading {
        Reading {
            order_status: None,
            delivery_status: status,
        }
    }

    fn order(status: Option<OrderStatus>) -> Reading {
        Reading {
            order_status: status,
            delivery_status: None,
        }
    }

    #[test]
    fn only_a_cancel_reads_the_delivery() {
        let cancel = OrderCommand::Cancel {
            delivery_picked_up: false,
        };
        assert_eq!(Order::depends_on(&cancel), Some(AggregateType::Delivery));
        assert_eq!(Order::depends_on(&OrderCommand::Approve), None);
        assert_eq!(Order::depends_on(&OrderCommand::Reject), None);
    }

    #[test]
    fn a_cancel_learns_the_pickup_from_the_reading_not_the_caller() {
        let claimed = OrderCommand::Cancel {
            delivery_picked_up: false,
        };
        let picked_up = delivery(Some(DeliveryStatus::PickedUp));
        assert_eq!(
            Order::complete(claimed, Some(&picked_up)).unwrap(),
            OrderCommand::Cancel {
                delivery_picked_up: true
            }
        );
        let claimed = OrderCommand::Cancel {
            delivery_picked_up: true,
        };
        assert_eq!(
            Order::complete(claimed, Some(&delivery(None))).unwrap(),
            OrderCommand::Cancel {
                delivery_picked_up: false
            }
        );
    }

    #[test]
    fn every_delivery_command_reads_the_order() {
        assert_eq!(
            Delivery::depends_on(&DeliveryCommand::Deliver),
            Some(AggregateType::Order)
        );
        let pickup = DeliveryCommand::PickUp { order_status: None };
        assert_eq!(Delivery::depends_on(&pickup), Some(AggregateType::Order));
        assert_eq!(
            Delivery::complete(pickup, Some(&order(Some(OrderStatus::Approved)))).unwrap(),
            DeliveryCommand::PickUp {
                order_status: Some(OrderStatus::Approved)
            }
        );
    }

    #[test]
    fn delivering_for_an_unknown_order_is_not_found() {
        assert!(matches!(
            Delivery::complete(DeliveryCommand::Deliver, Some(&order(None))),
            Err(DomainError::NotFound(_))
        ));
        assert_eq!(
            Delivery::complete(
                DeliveryCommand::Deliver,
                Some(&order(Some(OrderStatus::Approved)))
            )
            .unwrap(),
            DeliveryCommand::Deliver
        );
    }
}
