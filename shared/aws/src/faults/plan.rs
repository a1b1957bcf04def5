//! What to inject: a seeded random schedule (`<seed>:<rate>[:<kinds>][:slow=<ms>]`) and/or
//! scripted rules ("the 1st `TransactWriteItems` on table X: lose the answer").

use std::str::FromStr;
use std::time::Duration;

use strum::VariantArray;
use thiserror::Error;

use super::kind::FaultKind;

/// The delay of a [`FaultKind::Slow`] answer unless the plan says otherwise.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(2);

/// How many retries of a transaction meet `TransactionInProgressException` unless the plan says
/// otherwise: all retries of the functions' 4-attempt SDK configuration.
pub const DEFAULT_IN_PROGRESS_RETRIES: u32 = 3;

/// A spec that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid fault spec {spec:?}: {reason} (expected <seed>:<rate>[:<kind>,…][:slow=<ms>])")]
pub struct FaultSpecError {
    /// The spec as given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A seeded random schedule: each request (per operation, in order) is faulted with
/// probability `rate`, the kind drawn from `kinds`. The same seed and the same sequence of
/// requests per operation give the same faults.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomSchedule {
    /// The seed.
    pub seed: u64,
    /// The probability of a fault per request, in `0.0..=1.0`.
    pub rate: f64,
    /// The kinds drawn from (all kinds by default).
    pub kinds: Vec<FaultKind>,
}

impl RandomSchedule {
    /// A schedule of every kind at `rate`.
    pub fn new(seed: u64, rate: f64) -> Self {
        Self {
            seed,
            rate: rate.clamp(0.0, 1.0),
            kinds: FaultKind::VARIANTS.to_vec(),
        }
    }

    /// Only these kinds.
    pub fn kinds(mut self, kinds: &[FaultKind]) -> Self {
        self.kinds = kinds.to_vec();
        self
    }
}

/// A scripted fault: the requests that match it (operation, resource), after skipping the first
/// `after` matches, get `kind`, `times` times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The fault.
    pub kind: FaultKind,
    /// The operation matched (`PutItem`, `TransactWriteItems`, `SendMessage`, `PutObject`…);
    /// any if `None`.
    pub operation: Option<String>,
    /// A resource the request must name (table, queue name, bucket, secret); any if `None`.
    pub resource: Option<String>,
    /// Matching requests let through before the rule fires.
    pub after: u32,
    /// How many matching requests get the fault.
    pub times: u32,
}

impl Rule {
    /// The next matching request gets `kind` (once, on any operation until narrowed).
    pub fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            operation: None,
            resource: None,
            after: 0,
            times: 1,
        }
    }

    /// Only requests of this operation.
    pub fn operation(mut self, operation: &str) -> Self {
        self.operation = Some(operation.to_owned());
        self
    }

    /// Only requests naming this table, queue name, bucket or secret.
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_owned());
        self
    }

    /// Let the first `count` matching requests through.
    pub fn after(mut self, count: u32) -> Self {
        self.after = count;
        self
    }

    /// Fault `count` matching requests (the next `count` after [`Rule::after`]).
    pub fn times(mut self, count: u32) -> Self {
        self.times = count;
        self
    }

    /// Fault every matching request.
    pub fn always(self) -> Self {
        self.times(u32::MAX)
    }
}

/// Everything the layer injects.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    /// The random schedule, if any.
    pub random: Option<RandomSchedule>,
    /// Scripted rules, tried in order before the random schedule.
    pub rules: Vec<Rule>,
    /// How long a [`FaultKind::Slow`] answer is held back.
    pub slow_delay: Duration,
    /// How many retries with the same `ClientRequestToken` meet
    /// `TransactionInProgressException` after a [`FaultKind::TransactionInProgress`].
    pub in_progress_retries: u32,
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self {
            random: None,
            rules: Vec::new(),
            slow_delay: DEFAULT_SLOW_DELAY,
            in_progress_retries: DEFAULT_IN_PROGRESS_RETRIES,
        }
    }
}

impl FaultPlan {
    /// A plan that injects nothing until rules are added.
    pub fn scripted() -> Self {
        Self::default()
    }

    /// A plan with a random schedule.
    pub fn random(schedule: RandomSchedule) -> Self {
        Self {
            random: Some(schedule),
            ..Self::default()
        }
    }

    /// Adds a rule.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Sets the delay of slow answers.
    pub fn slow_delay(mut self, delay: Duration) -> Self {
        self.slow_delay = delay;
        self
    }

    /// Sets how many retries of a transaction meet `TransactionInProgressException`.
    pub fn in_progress_retries(mut self, retries: u32) -> Self {
        self.in_progress_retries = retries;
        self
    }
}

impl FromStr for FaultPlan {
    type Err = FaultSpecError;

    /// `<seed>:<rate>[:<kind>,<kind>…][:slow=<ms>]`, e.g. `42:0.05`,
    /// `7:0.1:throttle,lost-answer`, `7:0.1:slow=1500`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| FaultSpecError {
            spec: spec.to_owned(),
            reason,
        };
        let mut parts = spec.trim().split(':');
        let seed = parts
            .next()
            .unwrap_or_default()
            .parse::<u64>()
            .map_err(|_| fail("the seed is not an unsigned integer".into()))?;
        let rate = parts
            .next()
            .ok_or_else(|| fail("the rate is missing".into()))?
            .parse::<f64>()
            .ok()
            .filter(|rate| (0.0..=1.0).contains(rate))
            .ok_or_else(|| fail("the rate is not a number in 0..=1".into()))?;
        let mut schedule = RandomSchedule::new(seed, rate);
        let mut plan = FaultPlan::default();
        for part in parts {
            if let Some(ms) = part.strip_prefix("slow=") {
                let ms = ms
                    .parse::<u64>()
                    .map_err(|_| fail(format!("slow={ms} is not a number of milliseconds")))?;
                plan.slow_delay = Duration::from_millis(ms);
            } else {
                schedule.kinds = part
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(fail)?;
            }
        }
        plan.random = Some(schedule);
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seed_and_rate_with_every_kind_by_default() {
        let plan: FaultPlan = "42:0.05".parse().unwrap();
        let schedule = plan.random.unwrap();
        assert_eq!((schedule.seed, schedule.rate), (42, 0.05));
        assert_eq!(schedule.kinds, FaultKind::VARIANTS);
        assert_eq!(plan.slow_delay, DEFAULT_SLOW_DELAY);
    }

    #[test]
    fn parses_kinds_and_the_slow_delay() {
        let plan: FaultPlan = "7:1:throttle,lost-answer:slow=150".parse().unwrap();
        assert_eq!(
            plan.random.unwrap().kinds,
            [FaultKind::Throttle, FaultKind::LostAnswer]
        );
        assert_eq!(plan.slow_delay, Duration::from_millis(150));
    }

    #[test]
    fn refuses_bad_specs_naming_the_problem() {
        for (spec, problem) in [
            ("x:0.1", "seed"),
            ("1", "rate is missing"),
            ("1:2", "0..=1"),
            ("1:0.1:boom", "unknown fault kind"),
            ("1:0.1:slow=soon", "milliseconds"),
        ] {
            let error = spec.parse::<FaultPlan>().unwrap_err();
            assert!(error.to_string().contains(problem), "{spec}: {error}");
        }
    }
}
