//! Repairing the view for a stream range Lambda skipped, from the event table.
//!
//! The projector's event source retries without limit, so Lambda skips records only when the
//! stream trims them (24 hours) while a failure lasts; it then sends an on-failure record naming
//! the shard, the sequence range and the arrival window, not the records. The stream no longer
//! holds them, but the event table does, and the projection is idempotent: re-projecting every
//! stream with an event in the days the window covers ([`OnFailureRecord::covering_range`]) puts
//! back exactly what is missing and changes nothing else. For each such stream one update is
//! applied, its newest event of those days; the gap rule reads and applies whatever the view
//! misses before it, and a view already past it answers `Duplicate`.

use std::collections::BTreeMap;

use ftgo_domain::event::StoredEvent;
use ftgo_domain::view::plan;

use super::{Projected, Projector};
use crate::error::Error;
use crate::on_failure::OnFailureRecord;
use crate::verify::scan_events;

/// What a repair did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repair {
    /// Events of the event table in the days covered.
    pub events: usize,
    /// Streams re-projected.
    pub streams: usize,
    /// Events that were missing from the view and are in it now.
    pub applied: usize,
    /// Streams that could not be brought up to date, each with the reason (an event that does
    /// not decode, a confirmed gap): the same reasons the projector dead-letters a record for.
    pub unrepaired: Vec<String>,
}

impl Projector {
    /// Re-projects, from the event table, every stream with an event in the days `skipped`
    /// covers (see the module docs). Idempotent: a second run applies nothing.
    pub async fn repair(&self, skipped: &OnFailureRecord) -> Result<Repair, Error> {
        let store = self.store();
        let range = skipped.covering_range();
        let events = scan_events(store.client(), store.events_table(), &range).await?;
        let mut newest: BTreeMap<&str, &StoredEvent> = BTreeMap::new();
        for event in &events {
            let entry = newest.entry(event.stream_id.as_str()).or_insert(event);
            if event.version > entry.version {
                *entry = event;
            }
        }
        let mut repair = Repair {
            events: events.len(),
            streams: newest.len(),
            ..Repair::default()
        };
        for (stream, event) in newest {
            let update = match plan(event) {
                Ok(update) => update,
                Err(error) => {
                    repair
                        .unrepaired
                        .push(format!("{stream} version {}: {error}", event.version));
                    continue;
                }
            };
            match self.project(&update).await? {
                Projected::Applied => repair.applied += 1,
                Projected::FilledGap { filled } => repair.applied += 1 + filled,
                Projected::Duplicate => {}
                Projected::Blocked { by, reason } => repair.unrepaired.push(format!(
                    "{stream}: version {} does not decode ({reason})",
                    by.version
                )),
                Projected::ConfirmedGap { missing, .. } => repair.unrepaired.push(format!(
                    "{stream}: version {missing} is not in the event table"
                )),
            }
        }
        tracing::info!(
            shard = %skipped.batch.shard_id,
            events = repair.events,
            streams = repair.streams,
            applied = repair.applied,
            unrepaired = repair.unrepaired.len(),
            "skipped range re-projected from the event table"
        );
        Ok(repair)
    }
}
