//! Local JWTs: what the local gateway accepts in place of API Gateway's JWT authorizer, and
//! `ftgo token`, which issues them.
//!
//! HS256 under `FTGO_LOCAL_JWT_SECRET` (default [`DEFAULT_SECRET`]), issuer [`ISSUER`], no
//! audience, `exp` required and checked. A verified token's claims are handed to the functions
//! as API Gateway hands them: every value a string, in `requestContext.authorizer.jwt.claims`.
//!
//! Roles travel as Cognito groups (`cognito:groups`, an array, `ftgo token --group`) or as
//! scopes (`scope`, space-separated, `ftgo token --scope`), the shapes a Cognito user pool
//! issues; the local stack accepts both (`RoleClaims`).
//!
//! Tests and tools get a token with [`issue`] (scopes) or [`issue_with_groups`]:
//!
//! ```no_run
//! let token = ftgo_cli::token::issue("c-1", &["ftgo/admin"], std::time::Duration::from_secs(600))
//!     .expect("a token");
//! // send it as `authorization: Bearer {token}`
//! ```

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

/// The environment variable holding the local signing secret.
pub const SECRET_ENV: &str = "FTGO_LOCAL_JWT_SECRET";
/// The local signing secret when [`SECRET_ENV`] is not set: for local development only.
pub const DEFAULT_SECRET: &str = "ftgo-local-development-jwt-secret";
/// The issuer (`iss`) of local tokens.
pub const ISSUER: &str = "ftgo-local";
/// The claim of a Cognito user's groups.
pub const GROUPS_CLAIM: &str = "cognito:groups";
/// How long a token of `ftgo token` lives unless told otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// Why a token was refused (the gateway answers 401 with this as the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `Authorization: Bearer <JWT>` header.
    #[error("no token: send Authorization: Bearer <JWT> (get one with `ftgo token --sub <id>`)")]
    Missing,
    /// The header is there but is not a bearer token.
    #[error("the Authorization header is not `Bearer <JWT>`")]
    NotBearer,
    /// The token is past its `exp`.
    #[error("the token has expired")]
    Expired,
    /// The token is not one this gateway issued or accepts.
    #[error("the token is not valid: {0}")]
    Invalid(String),
    /// A token could not be made.
    #[error("cannot sign a token: {0}")]
    Signing(String),
}

/// A verified token's claims as API Gateway passes them to a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClaims {
    /// Every claim, its value as a string (arrays as `[a b]`, as API Gateway renders them).
    pub claims: HashMap<String, String>,
    /// The `scope` claim's values (space-separated, or an array).
    pub scopes: Vec<String>,
}

/// The local issuer and verifier: one HS256 secret.
#[derive(Clone)]
pub struct LocalJwt {
    secret: Vec<u8>,
}

impl std::fmt::Debug for LocalJwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalJwt")
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Default for LocalJwt {
    /// The secret from [`SECRET_ENV`], else [`DEFAULT_SECRET`].
    fn default() -> Self {
        Self::from_env()
    }
}

impl LocalJwt {
    /// Signs and verifies with `secret`.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            secret: secret.into(),
        }
    }

    /// The secret from [`SECRET_ENV`] when set and not empty, else [`DEFAULT_SECRET`].
    pub fn from_env() -> Self {
        match std::env::var(SECRET_ENV) {
            Ok(secret) if !secret.is_empty() => Self::new(secret),
            _ => Self::new(DEFAULT_SECRET),
        }
    }

    /// A token for `subject` with `scopes` (each may itself be space-separated), valid for
    /// `ttl` from now.
    pub fn issue(
        &self,
        subject: &str,
        scopes: &[&str],
        ttl: Duration,
    ) -> Result<String, TokenError> {
        self.issue_with_groups(subject, scopes, &[], ttl)
    }

    /// A token for `subject` with `scopes` and the Cognito `groups` (the `cognito:groups`
    /// array, left out when empty), valid for `ttl` from now.
    pub fn issue_with_groups(
        &self,
        subject: &str,
        scopes: &[&str],
        groups: &[&str],
        ttl: Duration,
    ) -> Result<String, TokenError> {
        let now = now_seconds();
        let scope = scopes
            .iter()
            .flat_map(|s| s.split_whitespace())
            .collect::<Vec<_>>()
            .join(" ");
        let mut claims = Map::new();
        claims.insert("iss".into(), ISSUER.into());
        claims.insert("sub".into(), subject.into());
        if !scope.is_empty() {
            claims.insert("scope".into(), scope.into());
        }
        if !groups.is_empty() {
            claims.insert(GROUPS_CLAIM.into(), groups.to_vec().into());
        }
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), now.saturating_add(ttl.as_secs()).into());
        self.sign(&Value::Object(claims))
    }

    /// Signs arbitrary `claims` (for tests that need tokens this module would not issue).
    pub fn sign(&self, claims: &Value) -> Result<String, TokenError> {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(&self.secret),
        )
        .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// Verifies `token`: HS256 under this secret, issuer [`ISSUER`], a non-empty `sub`, `exp`
    /// in the future (`nbf`, if any, in the past); any audience.
    pub fn verify(&self, token: &str) -> Result<VerifiedClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Map<String, Value>>(
            token,
            &DecodingKey::from_secret(&self.secret),
            &validation,
        )
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::InvalidIssuer => TokenError::Invalid(format!("issuer is not {ISSUER}")),
            ErrorKind::InvalidSignature => TokenError::Invalid("bad signature".into()),
            ErrorKind::InvalidAlgorithm => TokenError::Invalid("algorithm is not HS256".into()),
            ErrorKind::MissingRequiredClaim(claim) => {
                TokenError::Invalid(format!("claim `{claim}` is missing"))
            }
            _ => TokenError::Invalid("malformed token".into()),
        })?;
        let scopes = match data.claims.get("scope") {
            Some(Value::String(scope)) => scope.split_whitespace().map(str::to_owned).collect(),
            Some(Value::Array(scopes)) => scopes
                .iter()
                .filter_map(|scope| scope.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let claims: HashMap<String, String> = data
            .claims
            .into_iter()
            .filter_map(|(name, value)| claim_string(&value).map(|text| (name, text)))
            .collect();
        if claims.get("sub").is_none_or(|sub| sub.trim().is_empty()) {
            return Err(TokenError::Invalid("claim `sub` is empty".into()));
        }
        Ok(VerifiedClaims { claims, scopes })
    }

    /// Verifies the bearer token of an `Authorization` header value (`None`: no header).
    pub fn verify_header(
        &self,
        authorization: Option<&[u8]>,
    ) -> Result<VerifiedClaims, TokenError> {
        let value = authorization.ok_or(TokenError::Missing)?;
        let text = std::str::from_utf8(value).map_err(|_| TokenError::NotBearer)?;
        let (scheme, token) = text.trim().split_once(' ').ok_or(TokenError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(TokenError::NotBearer);
        }
        self.verify(token.trim())
    }
}

/// A token from the default secret ([`LocalJwt::from_env`]), for tests and tools:
/// `authorization: Bearer {token}`.
pub fn issue(subject: &str, scopes: &[&str], ttl: Duration) -> Result<String, TokenError> {
    LocalJwt::from_env().issue(subject, scopes, ttl)
}

/// A token with scopes and Cognito groups from the default secret, for tests and tools.
pub fn issue_with_groups(
    subject: &str,
    scopes: &[&str],
    groups: &[&str],
    ttl: Duration,
) -> Result<String, TokenError> {
    LocalJwt::from_env().issue_with_groups(subject, scopes, groups, ttl)
}

/// A claim's value as API Gateway passes it: strings as they are, numbers and booleans in
/// their JSON form, arrays as `[a b]`, objects as JSON; `null` is left out.
fn claim_string(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Array(items) => Some(format!(
            "[{}]",
            items
                .iter()
                .filter_map(claim_string)
                .collect::<Vec<_>>()
                .join(" ")
        )),
        other => Some(other.to_string()),
    }
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// `ftgo token`: print a local JWT.
#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    /// The caller (`sub`): for a consumer, its consumer id.
    #[arg(long)]
    pub sub: String,
    /// A scope: `ftgo/restaurant`, `ftgo/courier`, `ftgo/admin` (repeatable, or space-separated).
    #[arg(long)]
    pub scope: Vec<String>,
    /// A Cognito group, as a user pool puts it in `cognito:groups`: `restaurant`, `courier`,
    /// `admin` (repeatable).
    #[arg(long)]
    pub group: Vec<String>,
    /// How long the token lives: seconds, or a number with `s`, `m`, `h` or `d`.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// Print `{"token","sub","scopes","groups","expiresInSeconds"}` instead of the bare token.
    #[arg(long)]
    pub json: bool,
}

impl TokenArgs {
    /// Prints the token (and nothing else) on standard output, or (`--json`) it and its claims.
    pub fn run(&self) -> Result<(), String> {
        if self.sub.trim().is_empty() {
            return Err("--sub must not be empty".into());
        }
        let scopes: Vec<&str> = self.scope.iter().map(String::as_str).collect();
        let groups: Vec<&str> = self.group.iter().map(String::as_str).collect();
        let token =
            issue_with_groups(&self.sub, &scopes, &groups, self.ttl).map_err(|e| e.to_string())?;
        if self.json {
            let answer = serde_json::json!({
                "token": token, "sub": self.sub, "scopes": scopes, "groups": groups,
                "expiresInSeconds": self.ttl.as_secs(),
            });
            println!("{answer}");
        } else {
            println!("{token}");
        }
        Ok(())
    }
}

/// `3600`, `90s`, `15m`, `12h`, `7d`.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((index, c)) if c.is_ascii_alphabetic() => (&text[..index], c),
        _ => (text, 's'),
    };
    let seconds_per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 3600, 15m, 12h or 7d"))?;
    if n == 0 {
        return Err("the time to live must be positive".into());
    }
    Ok(Duration::from_secs(n.saturating_mul(seconds_per)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    fn jwt() -> LocalJwt {
        LocalJwt::new("test-secret")
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims_as_strings() {
        let token = jwt()
            .issue(
                "c-1",
                &["ftgo/courier ftgo/restaurant"],
                Duration::from_secs(60),
            )
            .expect("token");
        let verified = jwt().verify(&token).expect("valid");
        assert_eq!(verified.claims["sub"], "c-1");
        assert_eq!(verified.claims["iss"], ISSUER);
        assert_eq!(verified.claims["scope"], "ftgo/courier ftgo/restaurant");
        assert!(
            verified.claims["exp"].parse::<u64>().is_ok(),
            "exp as a string"
        );
        assert_eq!(verified.scopes, ["ftgo/courier", "ftgo/restaurant"]);
        let header = format!("Bearer {token}");
        assert_eq!(
            jwt().verify_header(Some(header.as_bytes())).expect("valid"),
            verified
        );
    }

    #[test]
    fn groups_travel_as_cognito_does_and_reach_functions_as_api_gateway_renders_them() {
        let token = jwt()
            .issue_with_groups(
                "u-1",
                &[],
                &["restaurant", "courier"],
                Duration::from_secs(60),
            )
            .expect("token");
        let verified = jwt().verify(&token).expect("valid");
        assert_eq!(verified.claims[GROUPS_CLAIM], "[restaurant courier]");
        assert!(!verified.claims.contains_key("scope"));
        // The token itself carries the array, as a Cognito user pool's does.
        let payload = token.split('.').nth(1).expect("payload");
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).unwrap();
        assert_eq!(claims[GROUPS_CLAIM], json!(["restaurant", "courier"]));
    }

    #[test]
    fn a_scope_array_is_split_into_its_scopes() {
        let now = now_seconds();
        let token = jwt()
            .sign(&json!({"iss": ISSUER, "sub": "u-1", "exp": now + 60,
                          "scope": ["ftgo/restaurant", "openid"]}))
            .expect("token");
        let verified = jwt().verify(&token).expect("valid");
        assert_eq!(verified.claims["scope"], "[ftgo/restaurant openid]");
        assert_eq!(verified.scopes, ["ftgo/restaurant", "openid"]);
    }

    #[test]
    fn other_secrets_issuers_expired_and_unsigned_tokens_are_refused() {
        let now = now_seconds();
        let other = LocalJwt::new("another-secret")
            .issue("c-1", &[], Duration::from_secs(60))
            .expect("token");
        assert!(matches!(jwt().verify(&other), Err(TokenError::Invalid(_))));

        let foreign = jwt()
            .sign(&json!({"iss": "https://evil.example", "sub": "c-1", "exp": now + 60}))
            .expect("token");
        assert!(matches!(
            jwt().verify(&foreign),
            Err(TokenError::Invalid(_))
        ));

        let no_issuer = jwt()
            .sign(&json!({"sub": "c-1", "exp": now + 60}))
            .expect("token");
        assert!(matches!(
            jwt().verify(&no_issuer),
            Err(TokenError::Invalid(_))
        ));

        let no_expiry = jwt()
            .sign(&json!({"iss": ISSUER, "sub": "c-1"}))
            .expect("token");
        assert!(matches!(
            jwt().verify(&no_expiry),
            Err(TokenError::Invalid(_))
        ));

        let expired = jwt()
            .sign(&json!({"iss": ISSUER, "sub": "c-1", "exp": now - 1}))
            .expect("token");
        assert_eq!(jwt().verify(&expired), Err(TokenError::Expired));

        let not_yet = jwt()
            .sign(&json!({"iss": ISSUER, "sub": "c-1", "exp": now + 60, "nbf": now + 30}))
            .expect("token");
        assert!(jwt().verify(&not_yet).is_err());

        let nobody = jwt()
            .sign(&json!({"iss": ISSUER, "sub": " ", "exp": now + 60}))
            .expect("token");
        assert!(jwt().verify(&nobody).is_err());

        // `alg: none`, with and without the signature part.
        let claims = URL_SAFE_NO_PAD
            .encode(json!({"iss": ISSUER, "sub": "c-1", "exp": now + 60}).to_string());
        let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        assert!(jwt().verify(&format!("{none}.{claims}.")).is_err());
        assert!(jwt().verify(&format!("{none}.{claims}")).is_err());
        // HS256 header, signature cut off.
        let valid = jwt()
            .issue("c-1", &[], Duration::from_secs(60))
            .expect("token");
        let (unsigned, _) = valid.rsplit_once('.').expect("three parts");
        assert!(jwt().verify(&format!("{unsigned}.")).is_err());
        assert!(jwt().verify(unsigned).is_err());
    }

    #[test]
    fn only_a_bearer_header_is_read() {
        assert_eq!(jwt().verify_header(None), Err(TokenError::Missing));
        for header in ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "token"] {
            assert_eq!(
                jwt().verify_header(Some(header.as_bytes())),
                Err(TokenError::NotBearer),
                "{header:?}"
            );
        }
        assert_eq!(
            jwt().verify_header(Some(&[0xff, 0xfe])),
            Err(TokenError::NotBearer)
        );
    }

    #[test]
    fn claims_are_rendered_as_api_gateway_renders_them() {
        assert_eq!(claim_string(&json!(12)), Some("12".into()));
        assert_eq!(claim_string(&json!(true)), Some("true".into()));
        assert_eq!(claim_string(&json!(["a", "b"])), Some("[a b]".into()));
        assert_eq!(claim_string(&json!(null)), None);
    }

    #[test]
    fn ttls_read_as_people_write_them() {
        assert_eq!(parse_ttl("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("soon").is_err());
        assert!(parse_ttl("5w").is_err());
    }
}
