//! The kinds of fault the layer injects, named as in the `FTGO_FAULTS` spec and in counts.

use std::fmt;
use std::str::FromStr;

use strum::VariantArray;

/// One kind of failure AWS produces at the SDK's boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, VariantArray)]
pub enum FaultKind {
    /// The request reaches the server and is applied, but its answer is lost: the SDK sees a
    /// connector timeout and retries, and the retry meets the write already landed.
    LostAnswer,
    /// The service's throttling answer in its own wire shape (DynamoDB
    /// `ProvisionedThroughputExceededException`, `ThrottlingException` or `RequestLimitExceeded`;
    /// S3 503 `SlowDown`; SQS `RequestThrottled`; Secrets Manager `ThrottlingException`).
    /// The request is not sent on.
    Throttle,
    /// A `TransactWriteItems` is sent on and its answer lost; the retries that carry the same
    /// `ClientRequestToken` are answered `TransactionInProgressException` (not sent on), as
    /// DynamoDB answers while the first attempt runs. Only `TransactWriteItems` gets it.
    TransactionInProgress,
    /// A 500 or 503 answer before the request is sent on: nothing happened on the server.
    ErrorBefore,
    /// The request is sent on and applied, and the answer is replaced by a 500.
    ErrorAfter,
    /// The request is sent on and applied, and its answer held back for the layer's slow delay,
    /// past a caller's deadline shorter than it (the SDK's attempt timeout, a Lambda deadline).
    Slow,
}

impl FaultKind {
    /// The kind's name in specs, counts and logs (`lost-answer`, `throttle`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::LostAnswer => "lost-answer",
            Self::Throttle => "throttle",
            Self::TransactionInProgress => "transaction-in-progress",
            Self::ErrorBefore => "error-before",
            Self::ErrorAfter => "error-after",
            Self::Slow => "slow",
        }
    }

    /// Whether the request reaches the server (and may have been applied) under this fault.
    pub fn sends_on(self) -> bool {
        !matches!(self, Self::Throttle | Self::ErrorBefore)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::VARIANTS
            .iter()
            .copied()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Self::VARIANTS.iter().map(|k| k.name()).collect();
                format!("unknown fault kind {text:?} (known: {})", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_from_its_name() {
        for kind in FaultKind::VARIANTS {
            assert_eq!(kind.name().parse::<FaultKind>(), Ok(*kind));
        }
        assert!("timeout".parse::<FaultKind>().is_err());
    }

    #[test]
    fn only_throttling_and_errors_before_keep_the_request_from_the_server() {
        let held: Vec<_> = FaultKind::VARIANTS
            .iter()
            .filter(|kind| !kind.sends_on())
            .collect();
        assert_eq!(held, [&FaultKind::Throttle, &FaultKind::ErrorBefore]);
    }
}
