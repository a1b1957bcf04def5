//! Landing a run of consecutive events of one stream on the view: coalesced into one
//! conditional `UpdateItem` (guarded on the run's first version, recording its last), the part
//! already applied dropped on an overlap, and a gap before it filled from the event table
//! (strongly consistent, at most [`GAP_READ_CHUNK`] events a read) — the missing events
//! coalesced with the run, so that a healed gap is one write as well.

use ftgo_domain::event::StoredEvent;
use ftgo_domain::view::{ViewUpdate, plan};

use super::{GAP_READ_CHUNK, Projected, Projector};
use crate::error::Error;
use crate::store::order_history::ApplyOutcome;

/// What landing a run of updates came to, counted in events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Landed {
    /// Events this call applied (coalesced or not).
    pub applied: u64,
    /// Events the view had already.
    pub duplicates: u64,
    /// Conditional `UpdateItem`s sent.
    pub writes: u64,
}

impl Projector {
    /// Lands `run` (consecutive versions of one stream, in order) with as few conditional
    /// writes as coalescing allows. Stops at a gap before the first event not yet landed:
    /// `Some((missing_from, at))` says which version the view misses and where in `run` the
    /// events still to land start.
    async fn land(
        &self,
        run: &[ViewUpdate],
        landed: &mut Landed,
    ) -> Result<Option<(u64, usize)>, Error> {
        let mut at = 0;
        while at < run.len() {
            let rest = &run[at..];
            let coalesced = ViewUpdate::coalesce(rest);
            let Some(update) = coalesced.first() else {
                break;
            };
            landed.writes += 1;
            let covered = usize::try_from(update.events()).unwrap_or(usize::MAX);
            match self.view.apply(update).await? {
                ApplyOutcome::Applied => {
                    landed.applied += update.events();
                    at += covered;
                }
                ApplyOutcome::Duplicate { .. } => {
                    landed.duplicates += update.events();
                    at += covered;
                }
                ApplyOutcome::Overlap { applied } => {
                    // Part of the run landed already (a redelivery, a concurrent batch): the
                    // rest is what follows `applied`.
                    let skip = rest.iter().take_while(|u| u.version <= applied).count();
                    landed.duplicates += skip as u64;
                    at += skip.max(1);
                }
                ApplyOutcome::Gap { missing_from } => return Ok(Some((missing_from, at))),
            }
        }
        Ok(None)
    }

    /// Projects `run`: consecutive events of one stream, in version order (one event, or
    /// several coalesced), filling a gap before it from the event table first. On a gap the
    /// events read are landed together with the run. `Blocked` and `ConfirmedGap` speak for
    /// the whole run (the events before the blocker or the missing version were applied).
    pub async fn project_run(&self, run: &[ViewUpdate]) -> Result<(Projected, Landed), Error> {
        let mut landed = Landed::default();
        let Some(first) = run.first() else {
            return Ok((Projected::Duplicate, landed));
        };
        let Some((mut missing_from, at)) = self.land(run, &mut landed).await? else {
            return Ok((outcome_of(&landed, 0), landed));
        };
        let rest = &run[at..];
        let stream_id = first.source.stream_id(&first.order_id);
        let before = rest[0].first_version - 1;
        let last_version = rest[rest.len() - 1].version;
        tracing::info!(stream = %stream_id, version = rest[0].first_version, missing_from, "gap: reading the missing events");
        let mut filled = 0;
        while missing_from <= before {
            let last = before.min(missing_from.saturating_add(GAP_READ_CHUNK - 1));
            let events = self
                .store
                .read_stream(&stream_id, missing_from - 1, Some(last))
                .await?;
            let mut chunk = Vec::with_capacity(events.len() + rest.len());
            let mut next = missing_from;
            let mut blocked: Option<(StoredEvent, String)> = None;
            for event in events {
                if event.version != next {
                    break;
                }
                match plan(&event) {
                    Ok(update) => chunk.push(update),
                    Err(error) => {
                        blocked = Some((event, error.to_string()));
                        break;
                    }
                }
                next += 1;
            }
            let read = chunk.len() as u64;
            let reaches_run = blocked.is_none() && next > last && last == before;
            if reaches_run {
                // The gap ends here: the events read and the run land together.
                chunk.extend_from_slice(rest);
            }
            let before_landing = landed.applied;
            if let Some((missing, _)) = self.land(&chunk, &mut landed).await? {
                return Err(Error::Projection(format!(
                    "{stream_id}: version {missing} still missing while filling a gap before version {}",
                    rest[0].first_version
                )));
            }
            filled += (landed.applied - before_landing).min(read);
            if reaches_run {
                return Ok((outcome_of(&landed, filled), landed));
            }
            if let Some((by, reason)) = blocked {
                let by = Box::new(by);
                return Ok((Projected::Blocked { by, reason }, landed));
            }
            if next <= last {
                // Version `next` is not in the event table (a consistent read): it never comes.
                let recorded = !self
                    .store
                    .read_stream(&stream_id, before, Some(last_version))
                    .await?
                    .is_empty();
                let missing = next;
                return Ok((Projected::ConfirmedGap { missing, recorded }, landed));
            }
            missing_from = next;
        }
        // The gap was filled by earlier chunks (or by a concurrent writer): land the run.
        match self.land(rest, &mut landed).await? {
            None => Ok((outcome_of(&landed, filled), landed)),
            Some((missing, _)) => Err(Error::Projection(format!(
                "{stream_id}: version {} still misses {missing} after filling the gap",
                rest[0].first_version
            ))),
        }
    }
}

/// How a run fared, from what landing it did: `filled` events of a gap before it were applied.
fn outcome_of(landed: &Landed, filled: u64) -> Projected {
    if filled > 0 {
        Projected::FilledGap {
            filled: usize::try_from(filled).unwrap_or(usize::MAX),
        }
    } else if landed.applied > 0 {
        Projected::Applied
    } else {
        Projected::Duplicate
    }
}
