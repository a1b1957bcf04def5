//! Money in integer cents, written as a decimal string with at most two decimals.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An amount of money in integer cents. Serialises as its cents (an integer) in events and
/// view items; the HTTP layer uses [`Money::to_string`] / [`str::parse`] for `"12.34"` strings.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

/// Why a decimal string is not an amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyParseError {
    /// The text is not a non-negative decimal number.
    #[error("must be a non-negative decimal string such as \"12.34\"")]
    NotDecimal,
    /// More than two digits after the point.
    #[error("must have at most two decimals")]
    TooManyDecimals,
    /// The amount does not fit.
    #[error("is too large")]
    TooLarge,
}

impl Money {
    /// Zero cents.
    pub const ZERO: Money = Money(0);

    /// An amount of `cents` cents.
    pub const fn from_cents(cents: i64) -> Self {
        Self(cents)
    }

    /// This amount in cents.
    pub const fn cents(self) -> i64 {
        self.0
    }

    /// `self × quantity`, or `None` on overflow.
    pub fn checked_times(self, quantity: u32) -> Option<Money> {
        self.0.checked_mul(i64::from(quantity)).map(Money)
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }
}

impl FromStr for Money {
    type Err = MoneyParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (text, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(fraction)
            || (text.contains('.') && fraction.is_empty())
        {
            return Err(MoneyParseError::NotDecimal);
        }
        if fraction.len() > 2 {
            return Err(MoneyParseError::TooManyDecimals);
        }
        let whole: i64 = whole.parse().map_err(|_| MoneyParseError::TooLarge)?;
        let fraction_cents = match fraction.len() {
            0 => 0,
            1 => i64::from(fraction.as_bytes()[0] - b'0') * 10,
            _ => fraction
                .parse::<i64>()
                .map_err(|_| MoneyParseError::NotDecimal)?,
        };
        whole
            .checked_mul(100)
            .and_then(|cents| cents.checked_add(fraction_cents))
            .map(Money)
            .ok_or(MoneyParseError::TooLarge)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_strings_into_cents() {
        assert_eq!("12.34".parse(), Ok(Money::from_cents(1234)));
        assert_eq!("12.3".parse(), Ok(Money::from_cents(1230)));
        assert_eq!("12".parse(), Ok(Money::from_cents(1200)));
        assert_eq!("0.05".parse(), Ok(Money::from_cents(5)));
    }

    #[test]
    fn refuses_more_than_two_decimals_and_non_numbers() {
        assert_eq!(
            "1.234".parse::<Money>(),
            Err(MoneyParseError::TooManyDecimals)
        );
        for bad in ["", "-1", "1.", ".5", "abc", "1,00", "1e3", " 1"] {
            assert_eq!(
                bad.parse::<Money>(),
                Err(MoneyParseError::NotDecimal),
                "{bad:?}"
            );
        }
        assert_eq!(
            "99999999999999999999".parse::<Money>(),
            Err(MoneyParseError::TooLarge)
        );
    }

    #[test]
    fn displays_with_two_decimals() {
        assert_eq!(Money::from_cents(1234).to_string(), "12.34");
        assert_eq!(Money::from_cents(5).to_string(), "0.05");
        assert_eq!(Money::from_cents(0).to_string(), "0.00");
    }

    proptest::proptest! {
        #[test]
        fn display_then_parse_round_trips(cents in 0i64..1_000_000_000_000) {
            let money = Money::from_cents(cents);
            proptest::prop_assert_eq!(money.to_string().parse::<Money>(), Ok(money));
        }
    }
}
