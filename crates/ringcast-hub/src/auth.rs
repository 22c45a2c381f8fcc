//! Who may do what: JSON Web Tokens for WebSocket clients, API keys for
//! HTTP publishers and the metrics.
//!
//! A token is signed with the hub's secret (HS256) or by the holder of the
//! private key matching the hub's public key (RS256 or ES256, told apart
//! by the key). Only that one algorithm is accepted: a token that names
//! another (`none`, or HS256 signed with a public key) is refused. Claims:
//! `sub` (required: who), `exp` (required: until when, Unix seconds, no
//! leeway), and `subscribe` / `publish`: lists of topic patterns, each an
//! exact name, a prefix ending in `*`, or `*` for every topic; a missing
//! list allows nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use ringcast::Request;
use serde::Deserialize;

use crate::config::Secret;
use crate::topic::percent_decode;

/// Checks tokens against the hub's key.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    algorithm: Algorithm,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verifier({:?})", self.algorithm)
    }
}

/// Why a client's token is refused (the client's fault: 401, or 1008
/// when it expires on an open connection).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Its `exp` has passed.
    Expired,
    /// Its `nbf` has not come yet.
    NotYetValid,
    /// Not signed by the hub's key.
    BadSignature,
    /// Signed with another algorithm than the one the hub takes.
    Algorithm {
        /// The one the hub takes.
        accepted: &'static str,
    },
    /// A required claim (`sub`, `exp`) is missing.
    MissingClaim(String),
    /// Its `sub` is empty.
    EmptySubject,
    /// Not a token at all (or `alg: none`).
    Invalid,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Expired => f.write_str("token expired"),
            TokenError::NotYetValid => f.write_str("token not valid yet"),
            TokenError::BadSignature => f.write_str("invalid token signature"),
            TokenError::Algorithm { accepted } => write!(f, "token algorithm not accepted (this hub takes {accepted})"),
            TokenError::MissingClaim(claim) => write!(f, "token lacks the {claim:?} claim"),
            TokenError::EmptySubject => f.write_str("token has an empty \"sub\""),
            TokenError::Invalid => f.write_str("invalid token"),
        }
    }
}

impl std::error::Error for TokenError {}

/// Why the hub's token key cannot work (the operator's fault: the hub does
/// not start).
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyError {
    /// `--jwt-secret` is empty.
    EmptySecret,
    /// `--jwt-secret` was refused by the JWT library.
    Secret(jsonwebtoken::errors::Error),
    /// `--jwt-public-key` holds a private key.
    PrivateKey,
    /// `--jwt-public-key` is not an RSA or P-256 public key in PEM.
    NotAPublicKey(jsonwebtoken::errors::Error),
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::EmptySecret => f.write_str("--jwt-secret is empty"),
            KeyError::Secret(e) => write!(f, "--jwt-secret: {e}"),
            KeyError::PrivateKey => {
                f.write_str("--jwt-public-key holds a private key: give the hub only the public key")
            }
            KeyError::NotAPublicKey(e) => write!(f, "--jwt-public-key: not an RSA or P-256 public key in PEM: {e}"),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Secret(e) | KeyError::NotAPublicKey(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    // Optional here so that a missing one is reported by name by the
    // required-claims check, not as a parse failure.
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    subscribe: Vec<String>,
    #[serde(default)]
    publish: Vec<String>,
}

impl Verifier {
    /// HS256 tokens signed with `secret`.
    pub fn from_secret(secret: &str) -> Result<Verifier, KeyError> {
        if secret.is_empty() {
            return Err(KeyError::EmptySecret);
        }
        let key = DecodingKey::from_secret(secret.as_bytes()).map_err(KeyError::Secret)?;
        Ok(Verifier::new(key, Algorithm::HS256))
    }

    /// RS256 or ES256 tokens, by the kind of public key in `pem`.
    pub fn from_public_key(pem: &[u8]) -> Result<Verifier, KeyError> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("PRIVATE KEY") {
            return Err(KeyError::PrivateKey);
        }
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Ok(Verifier::new(key, Algorithm::RS256));
        }
        match DecodingKey::from_ec_pem(pem) {
            Ok(key) => Ok(Verifier::new(key, Algorithm::ES256)),
            Err(e) => Err(KeyError::NotAPublicKey(e)),
        }
    }

    fn new(key: DecodingKey, algorithm: Algorithm) -> Verifier {
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Verifier { key, validation, algorithm }
    }

    /// The algorithm tokens must use.
    pub fn algorithm(&self) -> &'static str {
        match self.algorithm {
            Algorithm::HS256 => "HS256",
            Algorithm::RS256 => "RS256",
            _ => "ES256",
        }
    }

    /// What `token` allows, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<Grant, TokenError> {
        let claims = decode::<Claims>(token, &self.key, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm => TokenError::Algorithm { accepted: self.algorithm() },
            ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim.clone()),
            _ => TokenError::Invalid,
        })?;
        let Claims { sub, exp, subscribe, publish } = claims.claims;
        let (Some(sub), Some(exp)) = (sub.filter(|s| !s.is_empty()), exp) else {
            return Err(TokenError::EmptySubject);
        };
        Ok(Grant { sub: sub.into(), exp, subscribe: Patterns::new(subscribe), publish: Patterns::new(publish) })
    }
}

/// What a client's token allows.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Who the client is.
    pub sub: Box<str>,
    /// Unix time (seconds) at which the token expires.
    pub exp: u64,
    subscribe: Patterns,
    publish: Patterns,
}

impl Grant {
    /// Whether the client may subscribe to `topic`.
    pub fn may_subscribe(&self, topic: &str) -> bool {
        self.subscribe.allows(topic)
    }

    /// Whether the client may publish to `topic`.
    pub fn may_publish(&self, topic: &str) -> bool {
        self.publish.allows(topic)
    }

    /// Time left before the token expires (zero once it has).
    pub fn remaining(&self) -> Duration {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Duration::from_secs(self.exp).saturating_sub(now)
    }
}

/// Topic patterns: exact names, prefixes ending in `*`, or `*`.
#[derive(Debug, Clone, Default)]
struct Patterns(Box<[Box<str>]>);

impl Patterns {
    fn new(list: Vec<String>) -> Patterns {
        Patterns(list.into_iter().map(String::into_boxed_str).collect())
    }

    fn allows(&self, topic: &str) -> bool {
        self.0.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => topic.starts_with(prefix),
            None => **p == *topic,
        })
    }
}

/// The token a request carries: `Authorization: Bearer …` (other clients)
/// or `?token=…` in the URL (browsers, which cannot set headers on a
/// WebSocket).
pub fn token_of(request: &Request<'_>) -> Option<String> {
    if let Some(token) = bearer(request) {
        return Some(token.to_owned());
    }
    let query = request.query()?;
    let value = query.split('&').find_map(|pair| pair.strip_prefix("token="))?;
    percent_decode(value).filter(|t| !t.is_empty())
}

/// The credentials of an `Authorization: Bearer …` field.
pub fn bearer<'a>(request: &'a Request<'_>) -> Option<&'a str> {
    let value = std::str::from_utf8(request.header("authorization")?).ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim()).filter(|c| !c.is_empty())
}

/// Whether `presented` is one of `keys`, comparing in time independent of
/// where the first difference is.
pub fn key_matches(keys: &[Secret], presented: Option<&str>) -> bool {
    let Some(presented) = presented else { return false };
    keys.iter().fold(false, |found, key| found | same(key.expose().as_bytes(), presented.as_bytes()))
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    fn token(secret: &str, claims: serde_json::Value) -> String {
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn patterns_match_exact_names_prefixes_and_everything() {
        let p = Patterns::new(vec!["news".into(), "chat.*".into()]);
        assert!(p.allows("news") && p.allows("chat.") && p.allows("chat.room1"));
        assert!(!p.allows("news2") && !p.allows("chat") && !p.allows("other"));
        assert!(Patterns::new(vec!["*".into()]).allows("anything"));
        assert!(!Patterns::default().allows("a"), "no list, nothing allowed");
    }

    #[test]
    fn tokens_are_checked_and_reasons_given() {
        let verifier = Verifier::from_secret("s3cret").unwrap();
        let exp = now() + 60;
        let good = token("s3cret", serde_json::json!({"sub":"ann","exp":exp,"subscribe":["a*"],"publish":["ab"]}));
        let grant = verifier.verify(&good).unwrap();
        assert_eq!((&*grant.sub, grant.exp), ("ann", exp));
        assert!(grant.may_subscribe("abc") && !grant.may_subscribe("b"));
        assert!(grant.may_publish("ab") && !grant.may_publish("abc"));
        assert!(grant.remaining() > Duration::from_secs(50));

        let expired = token("s3cret", serde_json::json!({"sub":"ann","exp":now() - 1}));
        assert_eq!(verifier.verify(&expired).unwrap_err().to_string(), "token expired");
        let forged = token("other", serde_json::json!({"sub":"ann","exp":exp}));
        assert_eq!(verifier.verify(&forged).unwrap_err().to_string(), "invalid token signature");
        let no_sub = token("s3cret", serde_json::json!({"exp":exp}));
        let why = verifier.verify(&no_sub).unwrap_err().to_string();
        assert!(why.contains("\"sub\""), "{why}");
        let no_exp = token("s3cret", serde_json::json!({"sub":"ann"}));
        assert!(verifier.verify(&no_exp).unwrap_err().to_string().contains("\"exp\""));
        let hs384 = encode(
            &Header::new(Algorithm::HS384),
            &serde_json::json!({"sub":"ann","exp":exp}),
            &EncodingKey::from_secret(b"s3cret").unwrap(),
        )
        .unwrap();
        assert!(verifier.verify(&hs384).unwrap_err().to_string().contains("algorithm not accepted"));
        // alg "none": header {"alg":"none"}, no signature.
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbm4iLCJleHAiOjk5OTk5OTk5OTl9.";
        assert_eq!(verifier.verify(none).unwrap_err().to_string(), "invalid token");
        assert_eq!(verifier.verify("garbage").unwrap_err().to_string(), "invalid token");
    }

    #[test]
    fn keys_are_refused_when_they_cannot_work() {
        assert!(Verifier::from_secret("").is_err());
        assert!(Verifier::from_public_key(b"-----BEGIN PRIVATE KEY-----\n")
            .unwrap_err()
            .to_string()
            .contains("private"));
        assert!(Verifier::from_public_key(b"not a key").is_err());
    }

    #[test]
    fn api_keys_compare_whole() {
        let keys: Vec<Secret> = vec!["k1".into(), "key-two".into()];
        assert!(key_matches(&keys, Some("key-two")));
        assert!(!key_matches(&keys, Some("key-tw")));
        assert!(!key_matches(&keys, Some("k1 ")));
        assert!(!key_matches(&keys, None));
        assert!(!key_matches(&[], Some("")));
    }
}
