//! How an `Idempotency-Key` is bound to the write itself (DESIGN §3 "Retries are safe").
//!
//! A keyed command derives its ids from the key instead of minting fresh ones: the created
//! order's id from the key alone, each event's id from the key, the request, the stream and the
//! version. So a retry of the same key — after a Lambda timeout, a lapsed or released
//! idempotency record, a lost answer — addresses the very items the first call wrote: the
//! conditional append meets them (and recognises them as its own by their event id), and the
//! load that precedes every command finds them by the [`KeyStamp`] in their metadata.
//!
//! The ids are name-based UUIDs of version 8 over SHA-256 (RFC 9562, appendix B.2), each part
//! length-prefixed so that no two different tuples collide.

use ftgo_domain::event::KeyStamp;
use sha2::{Digest, Sha256};
use uuid::{Builder, Uuid};

/// A name-based UUID (version 8, SHA-256) of `parts`.
fn name_based(parts: &[&str]) -> Uuid {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Builder::from_custom_bytes(bytes).into_uuid()
}

/// The id of the order a keyed `POST /orders` creates: the key's (caller, route, key) alone, so
/// that the same key with another body meets the first order and is told apart by its request.
pub fn order_id(key: &KeyStamp) -> String {
    name_based(&["order", &key.key]).to_string()
}

/// The id of the event a keyed command appends at `version` of `stream_id`. It covers the
/// request too: the same key with another body never passes for the first call's write.
pub fn event_id(key: &KeyStamp, stream_id: &str, version: u64) -> String {
    name_based(&[
        "event",
        &key.key,
        &key.request,
        stream_id,
        &version.to_string(),
    ])
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(key: &str, request: &str) -> KeyStamp {
        KeyStamp {
            key: key.to_owned(),
            request: request.to_owned(),
        }
    }

    #[test]
    fn ids_are_deterministic_and_version_8() {
        let key = stamp("k", "r");
        assert_eq!(order_id(&key), order_id(&key));
        assert_eq!(event_id(&key, "Order#1", 2), event_id(&key, "Order#1", 2));
        let id: Uuid = order_id(&key).parse().unwrap();
        assert_eq!(id.get_version_num(), 8);
    }

    #[test]
    fn the_order_id_depends_on_the_key_only_and_the_event_id_on_everything() {
        let key = stamp("k", "r");
        assert_eq!(order_id(&key), order_id(&stamp("k", "other body")));
        assert_ne!(order_id(&key), order_id(&stamp("k2", "r")));
        let base = event_id(&key, "Order#1", 2);
        for other in [
            event_id(&stamp("k2", "r"), "Order#1", 2),
            event_id(&stamp("k", "r2"), "Order#1", 2),
            event_id(&key, "Delivery#1", 2),
            event_id(&key, "Order#1", 3),
            // Length prefixes: moving characters between parts changes the id.
            event_id(&stamp("kr", ""), "Order#1", 2),
        ] {
            assert_ne!(base, other);
        }
    }
}
