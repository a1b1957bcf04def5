//! Read-your-writes tokens: which aggregate, at which version.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::aggregate::AggregateType;

/// Names an aggregate and a version of it. A view is caught up with a token once it has applied
/// that aggregate's events up to that version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyToken {
    /// Which kind of aggregate.
    pub aggregate_type: AggregateType,
    /// Its id (an order id for both kinds).
    pub aggregate_id: String,
    /// The stream version the writer reached.
    pub version: u64,
}

impl ConsistencyToken {
    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}:{}:{}",
            self.aggregate_type, self.version, self.aggregate_id
        ))
    }

    /// Parses the text form; `None` for anything this code did not write (including a token
    /// whose id is not a valid identifier, [`crate::order::require_id`]).
    pub fn decode(text: &str) -> Option<Self> {
        // Longer than any token naming a valid id: refused before decoding.
        if text.len() > 128 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, ':');
        let aggregate_type = AggregateType::parse(parts.next()?)?;
        let version = parts.next()?.parse().ok()?;
        let aggregate_id = parts.next()?.to_owned();
        crate::order::require_id("consistentWith", &aggregate_id).ok()?;
        Some(Self {
            aggregate_type,
            aggregate_id,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_and_rejects_garbage() {
        let token = ConsistencyToken {
            aggregate_type: AggregateType::Delivery,
            aggregate_id: "o:1".into(),
            version: 7,
        };
        assert_eq!(ConsistencyToken::decode(&token.encode()), Some(token));
        assert_eq!(ConsistencyToken::decode("not a token"), None);
        assert_eq!(
            ConsistencyToken::decode(&URL_SAFE_NO_PAD.encode("Shop:1:x")),
            None
        );
    }

    #[test]
    fn tokens_naming_an_invalid_or_oversized_id_are_refused() {
        let longest = ConsistencyToken {
            aggregate_type: AggregateType::Delivery,
            aggregate_id: "o".repeat(crate::order::MAX_ID_CHARS),
            version: u64::MAX,
        };
        assert_eq!(
            ConsistencyToken::decode(&longest.encode()),
            Some(longest.clone())
        );
        for id in [
            "o".repeat(crate::order::MAX_ID_CHARS + 1),
            "o".repeat(3000),
            "o 1".to_owned(),
            String::new(),
        ] {
            let text = URL_SAFE_NO_PAD.encode(format!("Order:1:{id}"));
            assert_eq!(ConsistencyToken::decode(&text), None, "{id}");
        }
    }
}
