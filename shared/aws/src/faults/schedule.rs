//! The decision per request: pure state (counters, rules fired, transactions in progress), no
//! I/O, so that it is unit-tested without a server and reproducible for a seed.

use std::collections::HashMap;
use std::time::Duration;

use super::answer::{self, WireAnswer};
use super::kind::FaultKind;
use super::plan::{FaultPlan, Rule};
use super::request::{RequestInfo, Service};

/// The one operation that [`FaultKind::TransactionInProgress`] applies to.
const TRANSACT_WRITE_ITEMS: &str = "TransactWriteItems";

/// What the connector does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer this instead of sending the request on.
    Refuse(WireAnswer),
    /// Send on, then drop the answer and report a timeout.
    LoseAnswer,
    /// Send on, then answer this instead of the server's answer.
    Replace(WireAnswer),
    /// Send on, then hold the answer back this long.
    Delay(Duration),
}

/// A fault decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    /// The kind, as counted.
    pub kind: FaultKind,
    /// What the connector does.
    pub action: Action,
    /// The error code answered, if any (`SlowDown`, `TransactionInProgressException`, …).
    pub code: Option<&'static str>,
}

/// The layer's state between requests.
#[derive(Debug)]
pub struct Schedule {
    plan: FaultPlan,
    active: bool,
    per_operation: HashMap<String, u64>,
    rules: Vec<RuleState>,
    in_progress: HashMap<String, u32>,
}

#[derive(Debug)]
struct RuleState {
    rule: Rule,
    seen: u32,
    fired: u32,
}

impl Schedule {
    /// A schedule for `plan`, active.
    pub fn new(plan: FaultPlan) -> Self {
        let rules = plan.rules.iter().cloned().map(RuleState::new).collect();
        Self {
            plan,
            active: true,
            per_operation: HashMap::new(),
            rules,
            in_progress: HashMap::new(),
        }
    }

    /// Adds a scripted rule (after the ones already there).
    pub fn push_rule(&mut self, rule: Rule) {
        self.rules.push(RuleState::new(rule));
    }

    /// Starts or stops injecting (stopped, every request passes untouched).
    pub fn set_active(&mut self, active: bool) {
        self.active = active;
        if !active {
            self.in_progress.clear();
        }
    }

    /// Whether the schedule injects.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Decides the fate of one request.
    pub fn decide(&mut self, request: &RequestInfo) -> Option<Injection> {
        if !self.active || request.service == Service::Other {
            return None;
        }
        if let Some(injection) = self.retry_of_a_transaction_in_progress(request) {
            return Some(injection);
        }
        let index = self
            .per_operation
            .entry(request.operation.clone())
            .or_default();
        let n = *index;
        *index += 1;
        let mut chosen = None;
        for state in &mut self.rules {
            if state.matches(request) {
                state.seen = state.seen.saturating_add(1);
                if chosen.is_none()
                    && state.seen > state.rule.after
                    && state.fired < state.rule.times
                {
                    state.fired += 1;
                    chosen = Some(state.rule.kind);
                }
            }
        }
        let draw = mix(self.seed() ^ fnv1a(&request.operation), n);
        let kind = chosen.or_else(|| self.random_kind(request, draw))?;
        Some(self.inject(kind, request, mix(draw, 1)))
    }

    fn seed(&self) -> u64 {
        self.plan.random.as_ref().map_or(0, |random| random.seed)
    }

    fn random_kind(&self, request: &RequestInfo, draw: u64) -> Option<FaultKind> {
        let random = self.plan.random.as_ref()?;
        if unit(draw) >= random.rate {
            return None;
        }
        let eligible: Vec<FaultKind> = random
            .kinds
            .iter()
            .copied()
            .filter(|kind| applies(*kind, request))
            .collect();
        let index = usize::try_from(mix(draw, 2) % eligible.len().max(1) as u64).ok()?;
        eligible.get(index).copied()
    }

    fn inject(&mut self, kind: FaultKind, request: &RequestInfo, pick: u64) -> Injection {
        let (action, code) = match kind {
            FaultKind::LostAnswer => (Action::LoseAnswer, None),
            FaultKind::Slow => (Action::Delay(self.plan.slow_delay), None),
            FaultKind::Throttle => {
                let answer = answer::throttle(request.service, pick);
                (Action::Refuse(answer.clone()), Some(answer.code))
            }
            FaultKind::ErrorBefore => {
                let status = if pick.is_multiple_of(2) { 500 } else { 503 };
                let answer = answer::server_error(request.service, status);
                (Action::Refuse(answer.clone()), Some(answer.code))
            }
            FaultKind::ErrorAfter => {
                let answer = answer::server_error(request.service, 500);
                (Action::Replace(answer.clone()), Some(answer.code))
            }
            FaultKind::TransactionInProgress => {
                if let Some(token) = &request.token {
                    self.in_progress
                        .insert(token.clone(), self.plan.in_progress_retries);
                }
                (Action::LoseAnswer, None)
            }
        };
        Injection { kind, action, code }
    }

    fn retry_of_a_transaction_in_progress(&mut self, request: &RequestInfo) -> Option<Injection> {
        if request.operation != TRANSACT_WRITE_ITEMS {
            return None;
        }
        let token = request.token.as_ref()?;
        let remaining = self.in_progress.get_mut(token)?;
        if *remaining == 0 {
            self.in_progress.remove(token);
            return None;
        }
        *remaining -= 1;
        let answer = answer::transaction_in_progress();
        Some(Injection {
            kind: FaultKind::TransactionInProgress,
            code: Some(answer.code),
            action: Action::Refuse(answer),
        })
    }
}

impl RuleState {
    fn new(rule: Rule) -> Self {
        Self {
            rule,
            seen: 0,
            fired: 0,
        }
    }

    fn matches(&self, request: &RequestInfo) -> bool {
        applies(self.rule.kind, request)
            && self
                .rule
                .operation
                .as_ref()
                .is_none_or(|operation| *operation == request.operation)
            && self
                .rule
                .resource
                .as_ref()
                .is_none_or(|resource| request.names(resource))
    }
}

/// Whether `kind` can happen to `request` (a transaction in progress only to a transaction).
fn applies(kind: FaultKind, request: &RequestInfo) -> bool {
    kind != FaultKind::TransactionInProgress
        || (request.operation == TRANSACT_WRITE_ITEMS && request.token.is_some())
}

/// SplitMix64 of `state + n`: a stable, well-mixed 64-bit draw (no dependence on a crate's
/// generator, so a seed means the same schedule across versions).
pub fn mix(state: u64, n: u64) -> u64 {
    let mut z = state.wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A draw as a number in `0.0..1.0`.
fn unit(draw: u64) -> f64 {
    (draw >> 11) as f64 / (1u64 << 53) as f64
}

/// FNV-1a of an operation name, to give each operation its own sequence.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::super::plan::RandomSchedule;
    use super::*;
    use strum::VariantArray;

    fn request(operation: &str, table: &str) -> RequestInfo {
        RequestInfo {
            service: Service::DynamoDb,
            operation: operation.to_owned(),
            resources: vec![table.to_owned()],
            token: Some(format!("token-{operation}")),
        }
    }

    fn run(plan: FaultPlan, requests: usize) -> Vec<Option<FaultKind>> {
        let mut schedule = Schedule::new(plan);
        let ops = ["PutItem", "Query", "TransactWriteItems", "GetItem"];
        (0..requests)
            .map(|i| {
                let mut r = request(ops[i % ops.len()], "t");
                r.token = Some(format!("token-{i}"));
                schedule.decide(&r).map(|injection| injection.kind)
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_faults_and_another_seed_others() {
        let plan = |seed| FaultPlan::random(RandomSchedule::new(seed, 0.3));
        assert_eq!(run(plan(11), 400), run(plan(11), 400));
        assert_ne!(run(plan(11), 400), run(plan(12), 400));
    }

    #[test]
    fn the_rate_is_honoured_and_every_kind_is_drawn() {
        let faults = run(FaultPlan::random(RandomSchedule::new(3, 0.2)), 20_000);
        let count = faults.iter().flatten().count();
        assert!(
            (3_600..4_400).contains(&count),
            "{count} faults in 20000 at 0.2"
        );
        for kind in FaultKind::VARIANTS {
            assert!(faults.contains(&Some(*kind)), "{kind} never drawn");
        }
        assert_eq!(
            run(FaultPlan::random(RandomSchedule::new(3, 0.0)), 1_000),
            vec![None; 1_000]
        );
    }

    #[test]
    fn only_the_kinds_asked_for_are_drawn() {
        let schedule = RandomSchedule::new(5, 1.0).kinds(&[FaultKind::Throttle]);
        let faults = run(FaultPlan::random(schedule), 200);
        assert!(faults.iter().all(|f| *f == Some(FaultKind::Throttle)));
    }

    #[test]
    fn a_rule_fires_on_its_matches_after_skipping_and_only_as_often_as_told() {
        let rule = Rule::new(FaultKind::Throttle)
            .operation("PutItem")
            .resource("orders")
            .after(1)
            .times(2);
        let mut schedule = Schedule::new(FaultPlan::scripted().rule(rule));
        assert_eq!(schedule.decide(&request("PutItem", "other")), None);
        assert_eq!(schedule.decide(&request("GetItem", "orders")), None);
        let kinds: Vec<_> = (0..4)
            .map(|_| {
                schedule
                    .decide(&request("PutItem", "orders"))
                    .map(|i| i.kind)
            })
            .collect();
        assert_eq!(
            kinds,
            [
                None,
                Some(FaultKind::Throttle),
                Some(FaultKind::Throttle),
                None
            ]
        );
    }

    #[test]
    fn a_lost_transaction_answers_its_retries_in_progress_then_lets_them_through() {
        let plan = FaultPlan::scripted()
            .rule(Rule::new(FaultKind::TransactionInProgress))
            .in_progress_retries(2);
        let mut schedule = Schedule::new(plan);
        let transaction = request("TransactWriteItems", "events");
        let first = schedule.decide(&transaction).unwrap();
        assert_eq!(first.action, Action::LoseAnswer);
        for _ in 0..2 {
            let retry = schedule.decide(&transaction).unwrap();
            assert_eq!(retry.code, Some("TransactionInProgressException"));
            assert!(matches!(retry.action, Action::Refuse(ref a) if a.status == 400));
        }
        assert_eq!(schedule.decide(&transaction), None);
    }

    #[test]
    fn a_transaction_in_progress_is_never_injected_into_other_operations() {
        let rule = Rule::new(FaultKind::TransactionInProgress).always();
        let mut schedule = Schedule::new(FaultPlan::scripted().rule(rule));
        assert_eq!(schedule.decide(&request("PutItem", "t")), None);
    }

    #[test]
    fn stopped_it_lets_everything_through_and_forgets_transactions_in_progress() {
        let rule = Rule::new(FaultKind::TransactionInProgress).always();
        let mut schedule = Schedule::new(FaultPlan::scripted().rule(rule));
        let transaction = request("TransactWriteItems", "events");
        assert!(schedule.decide(&transaction).is_some());
        schedule.set_active(false);
        assert_eq!(schedule.decide(&transaction), None);
    }

    #[test]
    fn unknown_services_are_never_faulted() {
        let mut schedule = Schedule::new(FaultPlan::random(RandomSchedule::new(1, 1.0)));
        let mut metrics = request("PutMetricData", "t");
        metrics.service = Service::Other;
        assert_eq!(schedule.decide(&metrics), None);
    }
}
