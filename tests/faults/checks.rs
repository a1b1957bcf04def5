//! What must hold once the faults stop (issue 15), each violation named with the commands and
//! answers concerned:
//!
//! * each `Idempotency-Key` has at most one effect, and every 2xx answer to it (a later retry's
//!   included) is the first answer: same status, order, version and state;
//! * no event without an answer a retry can recover: each event of an order is owed to a
//!   command answered 2xx (keyed commands: by a retry after the faults too);
//! * no 2xx without its event: each 2xx names a version holding the command's event;
//! * no 5xx for a write that committed;
//! * the view equals the fold of the event table, and the archive holds every event.

use std::collections::{BTreeMap, BTreeSet};

use ftgo_domain::event::StoredEvent;

use super::clients::{Command, Kind};

/// The violations found.
pub type Violations = Vec<String>;

/// Checks the commands' answers against the event table's `events`.
pub fn commands(commands: &[Command], events: &[StoredEvent]) -> Violations {
    let mut violations = Vec::new();
    let orders: BTreeMap<&str, Vec<&StoredEvent>> =
        events.iter().fold(BTreeMap::new(), |mut map, event| {
            if event.aggregate_type == "Order" {
                map.entry(event.aggregate_id.as_str())
                    .or_default()
                    .push(event);
            }
            map
        });
    let created_by: BTreeMap<String, Vec<&StoredEvent>> =
        events.iter().fold(BTreeMap::new(), |mut map, event| {
            if event.event_type == Kind::Create.event_type()
                && let Some(name) = event.payload["restaurantName"].as_str()
                && let Some(marker) = name.strip_prefix("Ajanta ")
            {
                map.entry(marker.to_owned()).or_default().push(event);
            }
            map
        });
    for command in commands {
        same_answer_to_every_retry(command, &mut violations);
        no_success_without_its_event(command, &orders, &mut violations);
        no_server_error_for_a_committed_write(command, &orders, &created_by, &mut violations);
    }
    for command in commands.iter().filter(|c| c.kind == Kind::Create) {
        let created = created_by.get(&command.marker).map_or(0, Vec::len);
        let successes = command.successes().count();
        let timeouts = command.answers.iter().filter(|a| a.status == 0).count();
        if command.key.is_some() {
            if created > 1 {
                violations.push(format!(
                    "one Idempotency-Key, {created} orders created: {}",
                    command.history()
                ));
            }
            if created == 1 && successes == 0 {
                violations.push(format!(
                    "an order was created but no retry recovers its answer: {}",
                    command.history()
                ));
            }
        } else if created > successes + timeouts {
            violations.push(format!(
                "{created} orders created, {successes} answered 2xx (an error answered for a \
                 committed write): {}",
                command.history()
            ));
        }
    }
    for (order_id, stream) in &orders {
        every_event_is_owed_to_a_success(order_id, stream, commands, &mut violations);
    }
    violations
}

fn same_answer_to_every_retry(command: &Command, violations: &mut Violations) {
    if command.key.is_none() {
        return;
    }
    let essences: BTreeSet<String> = command
        .successes()
        .map(|a| format!("{:?}", a.essence()))
        .collect();
    if essences.len() > 1 {
        violations.push(format!(
            "retries of one Idempotency-Key got different answers: {}",
            command.history()
        ));
    }
    let first = command.answers.iter().find(|a| a.is_success());
    if let (Some(first), Some(late)) = (first, &command.late)
        && first.essence() != late.essence()
    {
        violations.push(format!(
            "a retry after the faults did not get the first answer: {}",
            command.history()
        ));
    }
}

fn no_success_without_its_event(
    command: &Command,
    orders: &BTreeMap<&str, Vec<&StoredEvent>>,
    violations: &mut Violations,
) {
    for answer in command.successes() {
        let order_id = answer.body["orderId"].as_str().unwrap_or_default();
        let version = answer.body["version"].as_u64().unwrap_or_default();
        let found = orders.get(order_id).is_some_and(|stream| {
            stream
                .iter()
                .any(|e| e.version == version && e.event_type == command.kind.event_type())
        });
        if !found {
            violations.push(format!(
                "2xx without its event ({} v{version} of {order_id}): {}",
                command.kind.event_type(),
                command.history()
            ));
        }
    }
}

fn no_server_error_for_a_committed_write(
    command: &Command,
    orders: &BTreeMap<&str, Vec<&StoredEvent>>,
    created_by: &BTreeMap<String, Vec<&StoredEvent>>,
    violations: &mut Violations,
) {
    // The events this command's kind may have written; each carries, as its correlation id,
    // the request id of the attempt that wrote it. A 5xx is false exactly when its own attempt
    // wrote (a 5xx of a later attempt that found nothing it could read is true: retry).
    let candidates: Vec<&StoredEvent> = match command.kind {
        Kind::Create => created_by.get(&command.marker).cloned().unwrap_or_default(),
        kind => command
            .order_id
            .as_deref()
            .and_then(|id| orders.get(id))
            .map(|stream| {
                stream
                    .iter()
                    .copied()
                    .filter(|e| e.event_type == kind.event_type())
                    .collect()
            })
            .unwrap_or_default(),
    };
    for (request_id, answer) in command.attempts().filter(|(_, a)| a.status >= 500) {
        if candidates
            .iter()
            .any(|e| e.metadata.correlation_id == request_id)
        {
            violations.push(format!(
                "{} for a write that committed (by that attempt, {request_id}): {}",
                answer.status,
                command.history()
            ));
        }
    }
}

fn every_event_is_owed_to_a_success(
    order_id: &str,
    stream: &[&StoredEvent],
    commands: &[Command],
    violations: &mut Violations,
) {
    let mine: Vec<&Command> = commands
        .iter()
        .filter(|c| c.kind != Kind::Create && c.order_id.as_deref() == Some(order_id))
        .collect();
    let claimed: BTreeSet<u64> = mine
        .iter()
        .flat_map(|c| c.successes())
        .filter_map(|a| a.body["version"].as_u64())
        .collect();
    for event in stream.iter().filter(|e| e.version > 1) {
        if claimed.contains(&event.version) {
            continue;
        }
        // Without a key, a client cut off at the deadline cannot learn the outcome: by design.
        // Its retry is a new command, which rightly meets the state the cut-off one left (a
        // 409 `INVALID_STATE` once that one's event landed) — so any timeout counts, not only
        // a last one, as the creates' check counts them.
        let unknowable = mine.iter().any(|c| {
            c.key.is_none()
                && c.kind.event_type() == event.event_type
                && c.answers.iter().any(|a| a.status == 0)
        });
        if !unknowable {
            let histories: Vec<String> = mine.iter().map(|c| c.history()).collect();
            violations.push(format!(
                "{} v{} of order {order_id} has no answer a retry can recover: {}",
                event.event_type,
                event.version,
                histories.join(" | ")
            ));
        }
    }
}

/// The view against the fold of the event table, and the archive against the event table.
pub fn read_side(
    events: &[StoredEvent],
    view: &BTreeMap<String, ftgo_domain::view::OrderView>,
    archived: &BTreeSet<(String, u64)>,
) -> Violations {
    let mut violations = Vec::new();
    match ftgo_aws::verify::expected_view(events) {
        Ok(expected) => {
            for difference in ftgo_aws::verify::compare_views(&expected, view) {
                violations.push(format!("view: {difference:?}"));
            }
        }
        Err(error) => violations.push(format!("the event table does not fold: {error}")),
    }
    for missing in ftgo_aws::verify::missing_from_archive(events, archived) {
        violations.push(format!(
            "archive: {} v{} ({}) missing",
            missing.stream_id, missing.version, missing.event_type
        ));
    }
    violations
}
