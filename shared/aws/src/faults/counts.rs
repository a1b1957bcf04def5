//! Injections counted per kind and per operation, and their one-line JSON log form (what each
//! function process of the local stack appends to `FTGO_FAULTS_LOG`, and `ftgo status` reads).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::kind::FaultKind;
use super::request::RequestInfo;
use super::schedule::Injection;

/// One injected fault as logged: one JSON object per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectionRecord {
    /// The kind's name (`throttle`, `lost-answer`, …).
    pub kind: String,
    /// The service (`dynamodb`, `s3`, `sqs`, `secretsmanager`, `dynamodbstreams`).
    pub service: String,
    /// The operation.
    pub operation: String,
    /// The error code answered, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl InjectionRecord {
    /// The record of `injection` into `request`.
    pub fn new(request: &RequestInfo, injection: &Injection) -> Self {
        Self {
            kind: injection.kind.name().to_owned(),
            service: request.service.name().to_owned(),
            operation: request.operation.clone(),
            code: injection.code.map(str::to_owned),
        }
    }
}

/// How many faults were injected, per kind and operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultCounts {
    counts: BTreeMap<(String, String), u64>,
}

impl FaultCounts {
    /// Counts one injection.
    pub fn add(&mut self, kind: &str, operation: &str) {
        *self
            .counts
            .entry((kind.to_owned(), operation.to_owned()))
            .or_default() += 1;
    }

    /// Counts the records of a log (one JSON [`InjectionRecord`] per line); lines that do not
    /// parse (a line cut short by a killed process) are skipped and counted in the second value.
    pub fn from_log(text: &str) -> (Self, usize) {
        let mut counts = Self::default();
        let mut unreadable = 0;
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            match serde_json::from_str::<InjectionRecord>(line) {
                Ok(record) => counts.add(&record.kind, &record.operation),
                Err(_) => unreadable += 1,
            }
        }
        (counts, unreadable)
    }

    /// All injections.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The injections of `kind`.
    pub fn of_kind(&self, kind: FaultKind) -> u64 {
        self.by_kind().get(kind.name()).copied().unwrap_or_default()
    }

    /// The injections into `operation`, of every kind.
    pub fn of_operation(&self, operation: &str) -> u64 {
        self.counts
            .iter()
            .filter(|((_, op), _)| op == operation)
            .map(|(_, n)| n)
            .sum()
    }

    /// The injections of `kind` into `operation`.
    pub fn of(&self, kind: FaultKind, operation: &str) -> u64 {
        self.counts
            .get(&(kind.name().to_owned(), operation.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// Totals per kind name.
    pub fn by_kind(&self) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        for ((kind, _), n) in &self.counts {
            *totals.entry(kind.clone()).or_default() += n;
        }
        totals
    }

    /// Totals per operation.
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        for ((_, operation), n) in &self.counts {
            *totals.entry(operation.clone()).or_default() += n;
        }
        totals
    }
}

/// `1234 faults: lost-answer 300, throttle 400, … | PutItem 500, Query 200, …`
impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |map: BTreeMap<String, u64>| {
            map.iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "{} faults: {} | {}",
            self.total(),
            join(self.by_kind()),
            join(self.by_operation())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_kind_and_operation() {
        let mut counts = FaultCounts::default();
        counts.add("throttle", "PutItem");
        counts.add("throttle", "PutItem");
        counts.add("lost-answer", "Query");
        assert_eq!(counts.total(), 3);
        assert_eq!(counts.of_kind(FaultKind::Throttle), 2);
        assert_eq!(counts.of(FaultKind::Throttle, "PutItem"), 2);
        assert_eq!(counts.of_operation("Query"), 1);
        assert_eq!(
            counts.to_string(),
            "3 faults: lost-answer 1, throttle 2 | PutItem 2, Query 1"
        );
    }

    #[test]
    fn reads_a_log_skipping_a_torn_last_line() {
        let record = InjectionRecord {
            kind: "slow".into(),
            service: "s3".into(),
            operation: "PutObject".into(),
            code: None,
        };
        let line = serde_json::to_string(&record).unwrap();
        let log = format!("{line}\n{line}\n{{\"kind\":\"thr");
        let (counts, unreadable) = FaultCounts::from_log(&log);
        assert_eq!(
            (counts.of(FaultKind::Slow, "PutObject"), unreadable),
            (2, 1)
        );
    }
}
