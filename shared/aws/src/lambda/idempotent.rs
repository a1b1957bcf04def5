//! `Idempotency-Key` at the HTTP edge (DESIGN §3 "Retries are safe"): reads and checks the key
//! of a command request and names the answer that repeats an earlier call's. The key costs no
//! call of its own: it is bound to the command's write ([`crate::commands::key_binding`]), and
//! the load every command does anyway finds what an earlier call with it wrote.

use ftgo_domain::event::KeyStamp;
use lambda_http::{Request, RequestExt};
use sha2::{Digest, Sha256};

use crate::http::ApiError;

/// The request header carrying the client's key.
pub const HEADER: &str = "idempotency-key";
/// The header a replayed answer carries (`true`), so a client can tell.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The longest key accepted, in characters.
pub const MAX_KEY_CHARS: usize = 64;

/// The identity of a keyed request: whose key it is, and the digest of what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    /// SHA-256 (hex) of caller, method, path and key: a key is the caller's own, per route.
    pub record_key: String,
    /// SHA-256 (hex) of the body.
    pub payload_hash: String,
}

impl IdempotentRequest {
    /// The identity of `key` sent by `caller` to `method path` with `body`.
    pub fn new(caller: &str, method: &str, path: &str, key: &str, body: &[u8]) -> Self {
        let mut scope = Sha256::new();
        for part in [caller, method, path, key] {
            // Length-prefixed, so that no two different tuples hash alike.
            scope.update((part.len() as u64).to_be_bytes());
            scope.update(part.as_bytes());
        }
        Self {
            record_key: hex(&scope.finalize()),
            payload_hash: hex(&Sha256::digest(body)),
        }
    }

    /// What the command's events carry of this key, so that a retry finds its first write.
    pub fn stamp(&self) -> KeyStamp {
        KeyStamp {
            key: self.record_key.clone(),
            request: self.payload_hash.clone(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity of `request`, when it carries an `Idempotency-Key`; 400 naming the header
/// when the key is empty, longer than [`MAX_KEY_CHARS`] or not visible ASCII.
pub fn identity(request: &Request) -> Result<Option<IdempotentRequest>, ApiError> {
    let Some(value) = request.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|key| {
            (1..=MAX_KEY_CHARS).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::validation(
                "Idempotency-Key",
                format!("must be 1 to {MAX_KEY_CHARS} visible ASCII characters"),
            )
        })?;
    let path = request.raw_http_path();
    let path = if path.is_empty() {
        request.uri().path()
    } else {
        path
    };
    Ok(Some(IdempotentRequest::new(
        &caller(request),
        request.method().as_str(),
        path,
        key,
        request.body().as_ref(),
    )))
}

/// The caller a key belongs to: the JWT `sub` the authorizer verified (`crate::auth`, the one
/// place that reads claims), or `anonymous` for a request without one (refused later anyway).
fn caller(request: &Request) -> String {
    crate::auth::subject(request)
        .map(str::to_owned)
        .unwrap_or_else(|_| "anonymous".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, StatusCode};
    use lambda_http::Body;

    fn keyed(key: &str) -> Request {
        let mut request = Request::new(Body::Text("{}".into()));
        *request.method_mut() = http::Method::POST;
        request
            .headers_mut()
            .insert(HEADER, HeaderValue::from_str(key).unwrap());
        request
    }

    #[test]
    fn keys_must_be_one_to_sixty_four_visible_characters() {
        assert!(matches!(identity(&keyed("a")), Ok(Some(_))));
        assert!(matches!(identity(&keyed(&"k".repeat(64))), Ok(Some(_))));
        for bad in ["", &"k".repeat(65), "two words"] {
            let error = identity(&keyed(bad)).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{bad:?}");
            assert!(error.message.contains("Idempotency-Key"));
        }
        assert!(matches!(identity(&Request::new(Body::Empty)), Ok(None)));
    }

    #[test]
    fn the_identity_is_the_callers_per_route_and_digests_the_body() {
        let base = IdempotentRequest::new("c-1", "POST", "/orders", "k", b"{}");
        assert_eq!(base.record_key.len(), 64);
        assert_eq!(
            base,
            IdempotentRequest::new("c-1", "POST", "/orders", "k", b"{}")
        );
        for other in [
            IdempotentRequest::new("c-2", "POST", "/orders", "k", b"{}"),
            IdempotentRequest::new("c-1", "POST", "/orders/o-1/cancel", "k", b"{}"),
            IdempotentRequest::new("c-1", "POST", "/orders", "k2", b"{}"),
        ] {
            assert_ne!(base.record_key, other.record_key);
        }
        let other_body = IdempotentRequest::new("c-1", "POST", "/orders", "k", b"{ }");
        assert_eq!(base.record_key, other_body.record_key);
        assert_ne!(base.payload_hash, other_body.payload_hash);
        assert_eq!(base.stamp().key, base.record_key);
    }
}
