//! The keys that seal order-history page tokens, kept in AWS Secrets Manager.
//!
//! The template creates the secret (`AWS::SecretsManager::Secret` with a generated value) and
//! hands only the query function its id (`PAGE_TOKEN_SECRET_ID`). The keys are read on first
//! use — cold start never waits for Secrets Manager — and cached per container. Each key is one
//! version of the secret and its id is the version id: a token carries the id of the key that
//! sealed it (`<key id>.<payload>.<tag>`), so after a rotation the version staged `AWSPREVIOUS`
//! still opens the tokens `AWSCURRENT`'s predecessor sealed. A token naming any other key — made
//! up, or retired by a second rotation — is refused like a forged one.
//!
//! The cache is refreshed when it is older than [`RefreshPolicy::max_age`], and when a token
//! names a key it does not know (a newer container may already seal with a rotated key), at
//! most once per [`RefreshPolicy::min_interval`] so that made-up key ids cannot make the
//! function hammer Secrets Manager. A refresh that fails keeps the keys already loaded.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::Mutex;

use crate::config::{Config, ConfigError};
use crate::error::Error;

/// The environment variable naming the secret (its ARN in AWS, its name locally).
pub const SECRET_ID_ENV: &str = "PAGE_TOKEN_SECRET_ID";
/// A key shorter than this many bytes is refused.
pub const MIN_KEY_BYTES: usize = 16;
/// Secrets Manager's label of the version in use.
pub const CURRENT_STAGE: &str = "AWSCURRENT";
/// Secrets Manager's label of the version in use before the last rotation.
pub const PREVIOUS_STAGE: &str = "AWSPREVIOUS";

type HmacSha256 = Hmac<Sha256>;

/// One key: a version of the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PageTokenKey {
    id: String,
    secret: Vec<u8>,
}

impl PageTokenKey {
    /// A key with this id (no `.`; Secrets Manager version ids are UUIDs) and secret bytes.
    pub fn new(id: impl Into<String>, secret: impl Into<Vec<u8>>) -> Self {
        Self {
            id: id.into(),
            secret: secret.into(),
        }
    }

    /// The key id tokens carry.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA256 over the key id and `payload` (`None` only if HMAC refused the key, which
    /// it does not: it takes keys of any length).
    fn mac(&self, payload: &[u8]) -> Option<HmacSha256> {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.secret).ok()?;
        mac.update(self.id.as_bytes());
        mac.update(&[0x1f]);
        mac.update(payload);
        Some(mac)
    }
}

impl fmt::Debug for PageTokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageTokenKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a token did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not the shape of a token, or its tag does not match: forged or damaged.
    Forged,
    /// Sealed with a key this ring does not hold (made up, retired, or newer than the ring).
    UnknownKey(String),
}

/// The key that seals, and the older keys that still open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRing {
    current: PageTokenKey,
    previous: Vec<PageTokenKey>,
}

impl KeyRing {
    /// `current` seals and opens; `previous` only open.
    pub fn new(current: PageTokenKey, previous: impl IntoIterator<Item = PageTokenKey>) -> Self {
        Self {
            current,
            previous: previous.into_iter().collect(),
        }
    }

    /// The key that seals.
    pub fn current(&self) -> &PageTokenKey {
        &self.current
    }

    /// Seals `payload`: `<key id>.<payload>.<HMAC-SHA256 over key id and payload>`.
    pub fn seal(&self, payload: &[u8]) -> Result<String, Error> {
        let tag = self
            .current
            .mac(payload)
            .ok_or_else(|| Error::Codec("page-token key refused by HMAC".to_owned()))?
            .finalize()
            .into_bytes();
        Ok(format!(
            "{}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag)
        ))
    }

    /// The payload of a token one of these keys sealed.
    pub fn open(&self, token: &str) -> Result<Vec<u8>, Refused> {
        let mut parts = token.split('.');
        let (Some(id), Some(payload), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Refused::Forged);
        };
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == id)
            .ok_or_else(|| Refused::UnknownKey(id.to_owned()))?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| Refused::Forged)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| Refused::Forged)?;
        key.mac(&payload)
            .ok_or(Refused::Forged)?
            .verify_slice(&tag)
            .map_err(|_| Refused::Forged)?;
        Ok(payload)
    }

    fn knows(&self, id: &str) -> bool {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .any(|key| key.id == id)
    }
}

/// When cached keys are read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Keys older than this are read again on next use.
    pub max_age: Duration,
    /// A token naming an unknown key re-reads them only when they are older than this.
    pub min_interval: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(300),
            min_interval: Duration::from_secs(10),
        }
    }
}

enum Source {
    Fixed(Arc<KeyRing>),
    SecretsManager {
        client: aws_sdk_secretsmanager::Client,
        secret_id: String,
    },
}

struct Loaded {
    ring: Arc<KeyRing>,
    at: Instant,
}

struct Inner {
    source: Source,
    policy: RefreshPolicy,
    cache: Mutex<Option<Loaded>>,
}

/// Where the query function gets its page-token keys: a fixed ring (tests), or the secret.
#[derive(Clone)]
pub struct PageTokenKeys {
    inner: Arc<Inner>,
}

impl fmt::Debug for PageTokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.inner.source {
            Source::Fixed(ring) => format!("fixed key {}", ring.current.id),
            Source::SecretsManager { secret_id, .. } => format!("secret {secret_id}"),
        };
        f.debug_struct("PageTokenKeys")
            .field("source", &source)
            .finish_non_exhaustive()
    }
}

impl PageTokenKeys {
    fn with_source(source: Source) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                policy: RefreshPolicy::default(),
                cache: Mutex::new(None),
            }),
        }
    }

    /// Always these keys.
    pub fn fixed(ring: KeyRing) -> Self {
        Self::with_source(Source::Fixed(Arc::new(ring)))
    }

    /// The versions staged `AWSCURRENT` and `AWSPREVIOUS` of secret `secret_id`, read on
    /// first use.
    pub fn secrets_manager(
        client: aws_sdk_secretsmanager::Client,
        secret_id: impl Into<String>,
    ) -> Self {
        Self::with_source(Source::SecretsManager {
            client,
            secret_id: secret_id.into(),
        })
    }

    /// The secret the configuration names ([`SECRET_ID_ENV`]), with a client from `sdk`. No
    /// call is made here.
    pub fn from_config(sdk: &aws_config::SdkConfig, config: &Config) -> Result<Self, Error> {
        Config::require(&config.page_token_secret_id, SECRET_ID_ENV)?;
        Ok(Self::secrets_manager(
            aws_sdk_secretsmanager::Client::new(sdk),
            &config.page_token_secret_id,
        ))
    }

    /// The same keys with another refresh policy.
    pub fn with_refresh(self, policy: RefreshPolicy) -> Self {
        let source = match &self.inner.source {
            Source::Fixed(ring) => Source::Fixed(ring.clone()),
            Source::SecretsManager { client, secret_id } => Source::SecretsManager {
                client: client.clone(),
                secret_id: secret_id.clone(),
            },
        };
        Self {
            inner: Arc::new(Inner {
                source,
                policy,
                cache: Mutex::new(None),
            }),
        }
    }

    /// Seals `payload` with the current key.
    pub async fn seal(&self, payload: &[u8]) -> Result<String, Error> {
        self.ring(None).await?.seal(payload)
    }

    /// The payload of `token`; `None` when it is forged or names a key that is neither current
    /// nor previous.
    pub async fn open(&self, token: &str) -> Result<Option<Vec<u8>>, Error> {
        match self.ring(None).await?.open(token) {
            Ok(payload) => Ok(Some(payload)),
            Err(Refused::Forged) => Ok(None),
            Err(Refused::UnknownKey(id)) => Ok(self.ring(Some(&id)).await?.open(token).ok()),
        }
    }

    /// The cached ring, (re)loaded when missing or stale, or when it does not know
    /// `wanted` and was loaded long enough ago.
    async fn ring(&self, wanted: Option<&str>) -> Result<Arc<KeyRing>, Error> {
        let (client, secret_id) = match &self.inner.source {
            Source::Fixed(ring) => return Ok(ring.clone()),
            Source::SecretsManager { client, secret_id } => (client, secret_id),
        };
        let policy = self.inner.policy;
        let mut cache = self.inner.cache.lock().await;
        if let Some(loaded) = cache.as_ref() {
            let age = loaded.at.elapsed();
            let fresh = age < policy.max_age
                && wanted.is_none_or(|id| loaded.ring.knows(id) || age < policy.min_interval);
            if fresh {
                return Ok(loaded.ring.clone());
            }
        }
        match load(client, secret_id).await {
            Ok(ring) => {
                let ring = Arc::new(ring);
                *cache = Some(Loaded {
                    ring: ring.clone(),
                    at: Instant::now(),
                });
                Ok(ring)
            }
            Err(error) => match cache.as_mut() {
                // Keep serving with the keys we have; try again after `min_interval`.
                Some(loaded) => {
                    tracing::warn!(%error, "could not refresh the page-token keys; keeping the cached ones");
                    loaded.at = Instant::now()
                        .checked_sub(policy.max_age.saturating_sub(policy.min_interval))
                        .unwrap_or(loaded.at);
                    Ok(loaded.ring.clone())
                }
                None => Err(error),
            },
        }
    }
}

impl From<KeyRing> for PageTokenKeys {
    fn from(ring: KeyRing) -> Self {
        Self::fixed(ring)
    }
}

/// A fixed single key with id `fixed` (tests and examples).
impl From<&str> for PageTokenKeys {
    fn from(secret: &str) -> Self {
        Self::fixed(KeyRing::new(PageTokenKey::new("fixed", secret), []))
    }
}

/// A fixed single key with id `fixed` (tests and examples).
impl From<Vec<u8>> for PageTokenKeys {
    fn from(secret: Vec<u8>) -> Self {
        Self::fixed(KeyRing::new(PageTokenKey::new("fixed", secret), []))
    }
}

/// Reads the versions staged current and previous (the latter may not exist yet).
async fn load(client: &aws_sdk_secretsmanager::Client, secret_id: &str) -> Result<KeyRing, Error> {
    let get = |stage: &'static str| {
        client
            .get_secret_value()
            .secret_id(secret_id)
            .version_stage(stage)
            .send()
    };
    let (current, previous) = tokio::join!(get(CURRENT_STAGE), get(PREVIOUS_STAGE));
    let current = key_of(current.map_err(|e| Error::sdk("GetSecretValue", e))?)?;
    let previous = match previous {
        Ok(output) => Some(key_of(output)?),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => return Err(Error::sdk("GetSecretValue", e)),
    };
    tracing::info!(
        current = current.id(),
        previous = previous.as_ref().map(PageTokenKey::id),
        "page-token keys loaded"
    );
    Ok(KeyRing::new(current, previous))
}

fn key_of(output: GetSecretValueOutput) -> Result<PageTokenKey, Error> {
    let invalid = |reason: &str| {
        Error::Config(ConfigError::Invalid {
            name: SECRET_ID_ENV,
            reason: reason.to_owned(),
        })
    };
    let id = output
        .version_id
        .filter(|id| !id.is_empty() && !id.contains('.'))
        .ok_or_else(|| invalid("the secret's version has no usable version id"))?;
    let secret = match (output.secret_string, output.secret_binary) {
        (Some(text), _) => text.into_bytes(),
        (None, Some(blob)) => blob.into_inner(),
        (None, None) => return Err(invalid("the secret's version has no value")),
    };
    if secret.len() < MIN_KEY_BYTES {
        return Err(invalid("the secret's value is shorter than 16 bytes"));
    }
    Ok(PageTokenKey::new(id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> PageTokenKey {
        PageTokenKey::new(id, format!("secret of {id}, long enough"))
    }

    #[test]
    fn a_token_names_its_key_and_opens_only_unmodified() {
        let ring = KeyRing::new(key("v1"), []);
        let token = ring.seal(b"payload").unwrap();
        assert!(token.starts_with("v1."), "{token}");
        assert_eq!(ring.open(&token), Ok(b"payload".to_vec()));
        let [id, payload, tag] = token.split('.').collect::<Vec<_>>()[..] else {
            panic!("three parts: {token}")
        };
        let other_payload = URL_SAFE_NO_PAD.encode(b"other");
        assert_eq!(
            ring.open(&format!("{id}.{other_payload}.{tag}")),
            Err(Refused::Forged)
        );
        assert_eq!(ring.open(&format!("{id}.{payload}")), Err(Refused::Forged));
        assert_eq!(ring.open("garbage"), Err(Refused::Forged));
        assert_eq!(ring.open(&format!("{token}.x")), Err(Refused::Forged));
    }

    #[test]
    fn the_previous_key_still_opens_and_an_unknown_one_is_refused() {
        let old = KeyRing::new(key("v1"), []);
        let token = old.seal(b"page 2").unwrap();
        let rotated = KeyRing::new(key("v2"), [key("v1")]);
        assert_eq!(rotated.open(&token), Ok(b"page 2".to_vec()));
        assert!(rotated.seal(b"x").unwrap().starts_with("v2."));
        let twice = KeyRing::new(key("v3"), [key("v2")]);
        assert_eq!(twice.open(&token), Err(Refused::UnknownKey("v1".into())));
    }

    #[test]
    fn a_key_id_swapped_onto_another_keys_token_does_not_verify() {
        let ring = KeyRing::new(key("v2"), [key("v1")]);
        let token = KeyRing::new(key("v1"), []).seal(b"p").unwrap();
        let swapped = token.replacen("v1.", "v2.", 1);
        assert_eq!(ring.open(&swapped), Err(Refused::Forged));
    }

    #[test]
    fn a_key_sealed_under_the_same_secret_but_another_id_does_not_verify() {
        let ring = KeyRing::new(PageTokenKey::new("a", "same secret bytes!!"), []);
        let token = KeyRing::new(PageTokenKey::new("b", "same secret bytes!!"), [])
            .seal(b"p")
            .unwrap();
        let relabelled = token.replacen("b.", "a.", 1);
        assert_eq!(ring.open(&relabelled), Err(Refused::Forged));
    }

    #[tokio::test]
    async fn fixed_keys_seal_and_open_without_aws() {
        let keys = PageTokenKeys::from("a fixed secret, long enough");
        let token = keys.seal(b"p").await.unwrap();
        assert_eq!(keys.open(&token).await.unwrap(), Some(b"p".to_vec()));
        assert_eq!(keys.open("other.eA.eA").await.unwrap(), None);
        assert_eq!(keys.open("forged").await.unwrap(), None);
    }

    #[test]
    fn the_secret_id_is_required() {
        let config = Config::from_lookup(|_| None).unwrap();
        let sdk = aws_config::SdkConfig::builder().build();
        assert!(matches!(
            PageTokenKeys::from_config(&sdk, &config),
            Err(Error::Config(ConfigError::Missing(SECRET_ID_ENV)))
        ));
    }
}
