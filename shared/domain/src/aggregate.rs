//! The aggregate contract: decide with [`Aggregate::handle`], evolve with [`Aggregate::apply`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::DomainError;
use crate::event::DomainEvent;

pub use crate::aggregate_type::AggregateType;

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
    type Event: DomainEvent;

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
