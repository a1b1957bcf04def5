//! The batching and retry decisions for one stream shard, as Lambda's event source mapping makes
//! them — a pure state machine, with no I/O, driven by the poller in [`super::stream`].
//!
//! Records enter in shard order ([`ShardState::push`]); [`ShardState::next`] says what to do now
//! (invoke a batch, give up on expired records, wait for a fuller batch, or fetch more); and
//! [`ShardState::complete`] takes the [`Verdict`] of the last invocation. The rules:
//!
//! * a batch holds at most `BatchSize` records, and is invoked when full or when the oldest
//!   buffered record has waited `MaximumBatchingWindowInSeconds`;
//! * only the first unfinished batch of a shard is ever in flight, so records stay in order and
//!   none is skipped;
//! * a partial failure (`ReportBatchItemFailures`) finishes the records before the lowest failed
//!   one and retries from it;
//! * a failed batch is retried whole, or split in halves first with `BisectBatchOnFunctionError`
//!   (splitting does not count against the retry quota; the halves are tried in order);
//! * after `MaximumRetryAttempts` retries, or once records are older than
//!   `MaximumRecordAgeInSeconds`, the records are given up with a [`FailureReport`] for the
//!   on-failure destination, and the shard moves on.

use std::collections::VecDeque;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::verdict::Verdict;
use crate::template::StreamPolicy;

/// One stream record with what the decisions need to know of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry<R> {
    /// The record's sequence number (its `itemIdentifier`).
    pub sequence_number: String,
    /// `ApproximateCreationDateTime`.
    pub arrival: DateTime<Utc>,
    /// The record itself.
    pub record: R,
}

/// Why records were given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `MaximumRetryAttempts` retries failed.
    RetryAttemptsExhausted,
    /// The records became older than `MaximumRecordAgeInSeconds`.
    RecordAgeExceeded,
}

impl Condition {
    /// The name Lambda writes in `requestContext.condition`.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Condition::RecordAgeExceeded => "RecordAgeExceeded",
        }
    }
}

/// Records given up, described as Lambda's on-failure message describes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureReport {
    /// Why.
    pub condition: Condition,
    /// How many times these records were sent to the function.
    pub approximate_invoke_count: u32,
    /// The last invocation's function error, if it was one.
    pub function_error: Option<String>,
    /// First sequence number given up.
    pub start_sequence_number: String,
    /// Last sequence number given up.
    pub end_sequence_number: String,
    /// Arrival of the first.
    pub first_arrival: DateTime<Utc>,
    /// Arrival of the last.
    pub last_arrival: DateTime<Utc>,
    /// How many records.
    pub batch_size: usize,
}

/// What to do now.
#[derive(Clone, Debug, PartialEq)]
pub enum Next<R> {
    /// Invoke the function with these records (in order), then call [`ShardState::complete`].
    Invoke(Vec<Entry<R>>),
    /// These records expired before (re)trying them: send the report to the on-failure
    /// destination. They are already dropped from the state.
    Discard(FailureReport),
    /// A partial batch is gathering: invoke it at this instant unless it fills up first.
    WaitUntil(Instant),
    /// Nothing to invoke: fetch more records.
    Idle,
}

/// What an invocation's verdict did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// Records given up (send each to the on-failure destination).
    pub given_up: Vec<FailureReport>,
    /// The batch (or what is left of it) will be retried: back off first.
    pub retrying: bool,
    /// How many failed tries count against the retry quota of what is retried.
    pub retries: u32,
}

#[derive(Clone, Debug)]
struct Pending<R> {
    entries: Vec<Entry<R>>,
    invocations: u32,
    retries: u32,
}

/// The state of one shard.
#[derive(Clone, Debug)]
pub struct ShardState<R> {
    policy: StreamPolicy,
    buffer: VecDeque<Entry<R>>,
    buffered_since: Option<Instant>,
    work: VecDeque<Pending<R>>,
}

impl<R: Clone> ShardState<R> {
    /// An empty shard under `policy`.
    pub fn new(mut policy: StreamPolicy) -> Self {
        policy.batch_size = policy.batch_size.max(1);
        Self {
            policy,
            buffer: VecDeque::new(),
            buffered_since: None,
            work: VecDeque::new(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &StreamPolicy {
        &self.policy
    }

    /// Adds records read from the shard, in shard order, at `now`.
    pub fn push(&mut self, records: impl IntoIterator<Item = Entry<R>>, now: Instant) {
        self.buffer.extend(records);
        if !self.buffer.is_empty() && self.buffered_since.is_none() {
            self.buffered_since = Some(now);
        }
    }

    /// How many more records the state takes before it has a full batch buffered: the poller
    /// reads at most this many (0 = don't read now).
    pub fn room(&self) -> usize {
        self.policy.batch_size.saturating_sub(self.buffer.len())
    }

    /// No record is buffered or in a batch.
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty() && self.work.is_empty()
    }

    /// What to do at `now` (monotonic, for the batching window) and `wall` (for record age).
    pub fn next(&mut self, now: Instant, wall: DateTime<Utc>) -> Next<R> {
        if self.work.is_empty() {
            let full = self.buffer.len() >= self.policy.batch_size;
            let Some(since) = self.buffered_since else {
                return Next::Idle;
            };
            let due = since + self.policy.batching_window;
            if !full && now < due {
                return Next::WaitUntil(due);
            }
            let take = self.buffer.len().min(self.policy.batch_size);
            let entries: Vec<Entry<R>> = self.buffer.drain(..take).collect();
            if self.buffer.is_empty() {
                self.buffered_since = None;
            }
            if entries.is_empty() {
                return Next::Idle;
            }
            self.work.push_back(Pending {
                entries,
                invocations: 0,
                retries: 0,
            });
        }
        let Some(front) = self.work.front_mut() else {
            return Next::Idle;
        };
        if let Some(max_age) = self.policy.max_record_age {
            let max_age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
            let expired = front
                .entries
                .iter()
                .take_while(|e| wall.signed_duration_since(e.arrival) > max_age)
                .count();
            if expired > 0 {
                let dropped: Vec<Entry<R>> = front.entries.drain(..expired).collect();
                let report = report(
                    &dropped,
                    Condition::RecordAgeExceeded,
                    front.invocations,
                    None,
                );
                if front.entries.is_empty() {
                    self.work.pop_front();
                }
                return Next::Discard(report);
            }
        }
        Next::Invoke(front.entries.clone())
    }

    /// Applies the verdict of invoking the batch [`ShardState::next`] returned last.
    pub fn complete(&mut self, verdict: &Verdict) -> Completion {
        let policy = self.policy.clone();
        let Some(mut front) = self.work.pop_front() else {
            return Completion::default();
        };
        front.invocations += 1;
        let exhausted = |retries: u32| policy.max_retry_attempts.is_some_and(|max| retries > max);
        match verdict {
            Verdict::Success => Completion::default(),
            Verdict::Partial(failed) => {
                let lowest = failed
                    .first()
                    .copied()
                    .unwrap_or(0)
                    .min(front.entries.len());
                front.entries.drain(..lowest);
                front.retries += 1;
                if front.entries.is_empty() {
                    return Completion::default();
                }
                let exhausted = exhausted(front.retries);
                self.retry_or_give_up(front, exhausted, None)
            }
            Verdict::Failed { function_error, .. } => {
                if policy.bisect_on_error && front.entries.len() > 1 {
                    let second = front.entries.split_off(front.entries.len().div_ceil(2));
                    let retries = front.retries;
                    self.work.push_front(Pending {
                        entries: second,
                        invocations: front.invocations,
                        retries,
                    });
                    self.work.push_front(front);
                    return Completion {
                        given_up: Vec::new(),
                        retrying: true,
                        retries,
                    };
                }
                front.retries += 1;
                let exhausted = exhausted(front.retries);
                self.retry_or_give_up(front, exhausted, function_error.clone())
            }
        }
    }

    /// Gives the batch up when its retries are `exhausted`, else puts it back to be retried.
    fn retry_or_give_up(
        &mut self,
        front: Pending<R>,
        exhausted: bool,
        function_error: Option<String>,
    ) -> Completion {
        if exhausted {
            let given_up = report(
                &front.entries,
                Condition::RetryAttemptsExhausted,
                front.invocations,
                function_error,
            );
            return Completion {
                given_up: vec![given_up],
                ..Completion::default()
            };
        }
        let retries = front.retries;
        self.work.push_front(front);
        Completion {
            given_up: Vec::new(),
            retrying: true,
            retries,
        }
    }
}

fn report<R>(
    entries: &[Entry<R>],
    condition: Condition,
    invocations: u32,
    function_error: Option<String>,
) -> FailureReport {
    let first = entries.first();
    let last = entries.last();
    FailureReport {
        condition,
        approximate_invoke_count: invocations,
        function_error,
        start_sequence_number: first.map(|e| e.sequence_number.clone()).unwrap_or_default(),
        end_sequence_number: last.map(|e| e.sequence_number.clone()).unwrap_or_default(),
        first_arrival: first.map(|e| e.arrival).unwrap_or_default(),
        last_arrival: last.map(|e| e.arrival).unwrap_or_default(),
        batch_size: entries.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("time")
    }

    fn entries(range: std::ops::RangeInclusive<u32>) -> Vec<Entry<u32>> {
        range
            .map(|n| Entry {
                sequence_number: format!("{:06}", n * 100),
                arrival: t0() + chrono::Duration::seconds(i64::from(n)),
                record: n,
            })
            .collect()
    }

    fn policy() -> StreamPolicy {
        StreamPolicy {
            batch_size: 4,
            batching_window: Duration::ZERO,
            report_batch_item_failures: true,
            bisect_on_error: false,
            max_retry_attempts: Some(2),
            max_record_age: None,
        }
    }

    fn invoke(state: &mut ShardState<u32>, now: Instant) -> Vec<u32> {
        match state.next(now, t0()) {
            Next::Invoke(batch) => batch.into_iter().map(|e| e.record).collect(),
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    fn failed() -> Verdict {
        Verdict::Failed {
            function_error: Some("Unhandled".to_owned()),
            reason: "boom".to_owned(),
        }
    }

    /// Drives the state with a function that fails on `poison` records, collecting every
    /// invocation and every give-up.
    fn run(
        state: &mut ShardState<u32>,
        poison: &[u32],
        partial: bool,
    ) -> (Vec<Vec<u32>>, Vec<FailureReport>) {
        let now = Instant::now();
        let mut calls = Vec::new();
        let mut given_up = Vec::new();
        for _ in 0..1000 {
            match state.next(now, t0()) {
                Next::Invoke(batch) => {
                    let records: Vec<u32> = batch.iter().map(|e| e.record).collect();
                    let bad: Vec<usize> = records
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| poison.contains(r))
                        .map(|(i, _)| i)
                        .collect();
                    calls.push(records);
                    let verdict = if bad.is_empty() {
                        Verdict::Success
                    } else if partial {
                        Verdict::Partial(bad)
                    } else {
                        failed()
                    };
                    given_up.extend(state.complete(&verdict).given_up);
                }
                Next::Discard(r) => given_up.push(r),
                Next::Idle => return (calls, given_up),
                Next::WaitUntil(_) => panic!("no window in these tests"),
            }
        }
        panic!("did not settle");
    }

    #[test]
    fn batches_hold_at_most_batch_size_records_in_order() {
        let mut s = ShardState::new(policy());
        s.push(entries(1..=10), Instant::now());
        let (calls, given_up) = run(&mut s, &[], true);
        assert_eq!(calls, vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9, 10]]);
        assert!(given_up.is_empty());
        assert!(s.is_empty());
    }

    #[test]
    fn a_partial_failure_retries_from_the_lowest_failed_sequence_number() {
        let mut s = ShardState::new(policy());
        s.push(entries(1..=4), Instant::now());
        let now = Instant::now();
        assert_eq!(invoke(&mut s, now), vec![1, 2, 3, 4]);
        // The function reports 4 and 2 failed (out of order): 1 is done, 2..4 are retried,
        // including 3 which succeeded — never skip a record.
        let c = s.complete(&Verdict::Partial(vec![1, 3]));
        assert!(c.retrying);
        assert!(c.given_up.is_empty());
        assert_eq!(invoke(&mut s, now), vec![2, 3, 4]);
        s.complete(&Verdict::Partial(vec![2]));
        assert_eq!(invoke(&mut s, now), vec![4]);
        s.complete(&Verdict::Success);
        assert!(matches!(s.next(now, t0()), Next::Idle));
    }

    #[test]
    fn retry_exhaustion_gives_up_the_batch_with_an_on_failure_report() {
        let mut s = ShardState::new(policy());
        s.push(entries(1..=3), Instant::now());
        let now = Instant::now();
        // MaximumRetryAttempts 2: the first try and two retries, then give up.
        for _ in 0..2 {
            assert_eq!(invoke(&mut s, now), vec![1, 2, 3]);
            let c = s.complete(&failed());
            assert!(c.retrying);
            assert!(c.given_up.is_empty(), "gave up too early");
        }
        assert_eq!(invoke(&mut s, now), vec![1, 2, 3]);
        let c = s.complete(&failed());
        assert!(!c.retrying);
        assert_eq!(c.given_up.len(), 1);
        let r = &c.given_up[0];
        assert_eq!(r.condition, Condition::RetryAttemptsExhausted);
        assert_eq!(r.approximate_invoke_count, 3);
        assert_eq!(r.batch_size, 3);
        assert_eq!(r.start_sequence_number, "000100");
        assert_eq!(r.end_sequence_number, "000300");
        assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
        assert!(s.is_empty(), "the shard moves past the batch");
    }

    #[test]
    fn max_retry_attempts_zero_means_one_try() {
        let mut s = ShardState::new(StreamPolicy {
            max_retry_attempts: Some(0),
            ..policy()
        });
        s.push(entries(1..=2), Instant::now());
        let (calls, given_up) = run(&mut s, &[1, 2], false);
        assert_eq!(calls.len(), 1);
        assert_eq!(given_up.len(), 1);
        assert_eq!(given_up[0].approximate_invoke_count, 1);
    }

    #[test]
    fn exhausted_partial_failures_give_up_from_the_failed_record_on() {
        let mut s = ShardState::new(policy());
        s.push(entries(1..=4), Instant::now());
        let (calls, given_up) = run(&mut s, &[3], true);
        assert_eq!(calls, vec![vec![1, 2, 3, 4], vec![3, 4], vec![3, 4]]);
        assert_eq!(given_up.len(), 1);
        assert_eq!(given_up[0].start_sequence_number, "000300");
        assert_eq!(given_up[0].end_sequence_number, "000400");
        assert_eq!(given_up[0].batch_size, 2);
        assert_eq!(given_up[0].function_error, None);
    }

    #[test]
    fn bisecting_isolates_the_poison_record_and_keeps_order() {
        let mut s = ShardState::new(StreamPolicy {
            bisect_on_error: true,
            max_retry_attempts: Some(1),
            report_batch_item_failures: false,
            ..policy()
        });
        s.push(entries(1..=4), Instant::now());
        let (calls, given_up) = run(&mut s, &[2], false);
        assert_eq!(
            calls,
            vec![
                vec![1, 2, 3, 4], // fails: split into [1,2] and [3,4]
                vec![1, 2],       // fails: split into [1] and [2]
                vec![1],          // ok
                vec![2],          // fails: retry 1
                vec![2],          // fails again: exhausted
                vec![3, 4],       // ok, after the poison record, in order
            ]
        );
        assert_eq!(given_up.len(), 1);
        assert_eq!(given_up[0].batch_size, 1);
        assert_eq!(given_up[0].start_sequence_number, "000200");
        assert_eq!(given_up[0].approximate_invoke_count, 4);
        assert!(s.is_empty());
    }

    #[test]
    fn records_of_a_shard_are_invoked_in_order_however_failures_fall() {
        // Whatever fails and however: every batch is a contiguous ascending run of the shard,
        // records are first delivered in shard order, none is skipped, and poison records are
        // reported rather than dropped.
        for poison in [vec![1], vec![4], vec![2, 3], vec![5, 9], vec![1, 10]] {
            for (partial, bisect) in [(true, false), (false, true), (false, false), (true, true)] {
                let mut s = ShardState::new(StreamPolicy {
                    bisect_on_error: bisect,
                    report_batch_item_failures: partial,
                    ..policy()
                });
                s.push(entries(1..=10), Instant::now());
                let (calls, given_up) = run(&mut s, &poison, partial);
                for call in &calls {
                    assert!(
                        call.windows(2).all(|w| w[1] == w[0] + 1),
                        "batch {call:?} is not a contiguous run ({poison:?}, {partial}, {bisect})"
                    );
                }
                let flat: Vec<u32> = calls.concat();
                let firsts: Vec<usize> = (1..=10u32)
                    .map(|r| {
                        flat.iter()
                            .position(|x| *x == r)
                            .expect("every record is tried")
                    })
                    .collect();
                assert!(
                    firsts.windows(2).all(|w| w[0] < w[1]),
                    "records first delivered out of order ({poison:?}, {partial}, {bisect}): {calls:?}"
                );
                let mut reported: Vec<u32> = Vec::new();
                for g in &given_up {
                    let start: u32 = g.start_sequence_number.parse().expect("seq");
                    let end: u32 = g.end_sequence_number.parse().expect("seq");
                    reported.extend((start / 100)..=(end / 100));
                }
                for p in &poison {
                    assert!(
                        reported.contains(p),
                        "poison record {p} was dropped silently"
                    );
                }
                assert!(s.is_empty());
            }
        }
    }

    #[test]
    fn the_batching_window_waits_for_a_fuller_batch() {
        let mut s = ShardState::new(StreamPolicy {
            batching_window: Duration::from_secs(1),
            ..policy()
        });
        let t = Instant::now();
        s.push(entries(1..=2), t);
        assert_eq!(s.next(t, t0()), Next::WaitUntil(t + Duration::from_secs(1)));
        s.push(entries(3..=4), t + Duration::from_millis(10));
        // Full now: no need to wait.
        assert_eq!(
            invoke(&mut s, t + Duration::from_millis(10)),
            vec![1, 2, 3, 4]
        );
        s.complete(&Verdict::Success);
        s.push(entries(5..=5), t + Duration::from_millis(20));
        assert!(matches!(
            s.next(t + Duration::from_millis(20), t0()),
            Next::WaitUntil(_)
        ));
        assert_eq!(invoke(&mut s, t + Duration::from_millis(1020)), vec![5]);
    }

    #[test]
    fn expired_records_are_given_up_before_invoking() {
        let mut s = ShardState::new(StreamPolicy {
            max_record_age: Some(Duration::from_secs(60)),
            ..policy()
        });
        s.push(entries(1..=4), Instant::now());
        // Records arrived at t0+1s..t0+4s; at t0+62.5s the first two are older than 60 s.
        let wall = t0() + chrono::Duration::milliseconds(62_500);
        match s.next(Instant::now(), wall) {
            Next::Discard(r) => {
                assert_eq!(r.condition, Condition::RecordAgeExceeded);
                assert_eq!(r.batch_size, 2);
                assert_eq!(r.start_sequence_number, "000100");
            }
            other => panic!("expected a discard, got {other:?}"),
        }
        match s.next(Instant::now(), wall) {
            Next::Invoke(b) => {
                assert_eq!(b.iter().map(|e| e.record).collect::<Vec<_>>(), vec![3, 4])
            }
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    #[test]
    fn room_limits_reading_to_one_batch_ahead() {
        let mut s: ShardState<u32> = ShardState::new(policy());
        assert_eq!(s.room(), 4);
        s.push(entries(1..=3), Instant::now());
        assert_eq!(s.room(), 1);
    }
}
