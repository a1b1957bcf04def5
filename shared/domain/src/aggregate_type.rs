//! The kinds of aggregate whose events share the event table, and their stream ids.
//!
//! A module of its own so that both the aggregate contract (`aggregate`) and the stored-event
//! envelope (`event`) can name it without importing each other.

use std::fmt;

/// The kinds of aggregate whose events share the event table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AggregateType {
    /// An order (`Order#<orderId>`).
    Order,
    /// The delivery of an order (`Delivery#<orderId>`; one delivery per order).
    Delivery,
}

impl AggregateType {
    /// The name used in stream ids and the `aggregateType` attribute.
    pub const fn as_str(self) -> &'static str {
        match self {
            AggregateType::Order => "Order",
            AggregateType::Delivery => "Delivery",
        }
    }

    /// Parses `Order` or `Delivery`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Order" => Some(AggregateType::Order),
            "Delivery" => Some(AggregateType::Delivery),
            _ => None,
        }
    }

    /// The stream id `<AggregateType>#<aggregateId>` of one aggregate.
    pub fn stream_id(self, aggregate_id: &str) -> String {
        format!("{}#{aggregate_id}", self.as_str())
    }

    /// Splits a stream id into its aggregate type and id.
    pub fn split_stream_id(stream_id: &str) -> Option<(Self, &str)> {
        let (kind, id) = stream_id.split_once('#')?;
        Some((Self::parse(kind)?, id))
    }
}

impl fmt::Display for AggregateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
