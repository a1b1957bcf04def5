//! The aggregate contract: decide with [`Aggregate::handle`], evolve with [`Aggregate::apply`].

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::DomainError;

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

/// An event-sourced aggregate.
///
/// `handle` must not change `self`: it only decides. `apply` must accept every event that
/// `handle` can produce, and never fail: events are facts.
pub trait Aggregate: Default + Clone + Serialize + DeserializeOwned + Send + Sync {
    /// Which aggregate this is.
    const TYPE: AggregateType;
    /// What callers ask of it.
    type Command;
    /// What it records.
    type Event: crate::event::DomainEvent;

    /// Decides which events `command` produces, or why it is refused.
    fn handle(&self, command: Self::Command) -> Result<Vec<Self::Event>, DomainError>;

    /// Evolves the state by one event.
    fn apply(&mut self, event: &Self::Event);

    /// Folds `events` into a fresh aggregate.
    fn from_events<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        let mut aggregate = Self::default();
        for event in events {
            aggregate.apply(event);
        }
        aggregate
    }
}
