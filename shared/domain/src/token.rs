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

    /// Parses the text form; `None` for anything this code did not write.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, ':');
        let aggregate_type = AggregateType::parse(parts.next()?)?;
        let version = parts.next()?.parse().ok()?;
        let aggregate_id = parts.next()?.to_owned();
        (!aggregate_id.is_empty()).then_some(Self {
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
}
