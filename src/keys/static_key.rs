//! [`StaticKey`]: a verification key configured in code.

use jsonwebtoken::{Algorithm, DecodingKey};
use std::fmt;

/// One verification key: the key, the algorithm it verifies, and optionally its `kid` and
/// the issuer it belongs to.
#[derive(Clone)]
pub struct StaticKey {
    pub(crate) kid: Option<String>,
    pub(crate) issuer: Option<String>,
    pub(crate) key: DecodingKey,
    pub(crate) alg: Algorithm,
}

impl StaticKey {
    /// A key for `alg`.
    #[must_use]
    pub fn new(key: DecodingKey, alg: Algorithm) -> Self {
        Self {
            kid: None,
            issuer: None,
            key,
            alg,
        }
    }

    /// An HS256 shared secret.
    #[must_use]
    pub fn hs256(secret: impl AsRef<[u8]>) -> Self {
        Self::new(DecodingKey::from_secret(secret.as_ref()), Algorithm::HS256)
    }

    /// Binds the key to a `kid`: tokens whose header names another `kid` never use it.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Binds the key to an issuer (RFC 8725 §3.8): only tokens whose `iss` is exactly
    /// `issuer` are verified with it. With several issuers configured every key must be
    /// bound to one of them, so issuer B's key never verifies a token that claims issuer A.
    #[must_use]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Whether the key may verify a token of `alg` whose header names `kid` and whose
    /// unverified claims name `iss`. A key bound to a kid serves only that kid; a key
    /// without one serves any token (so adding a named key during a rotation keeps the
    /// unnamed one working).
    pub(crate) fn serves(&self, alg: Algorithm, kid: Option<&str>) -> bool {
        self.alg == alg
            && match (kid, &self.kid) {
                (Some(want), Some(have)) => want == have,
                (_, None) | (None, Some(_)) => true,
            }
    }

    /// Whether the key belongs to the issuer a token claims (or to none in particular).
    pub(crate) fn belongs_to(&self, iss: Option<&str>) -> bool {
        self.issuer.is_none() || self.issuer.as_deref() == iss
    }

    /// Whether the signature over `message` verifies with this key.
    pub(crate) fn verifies(&self, message: &str, signature: &str) -> bool {
        super::verify_signature(signature, message, &self.key, self.alg)
    }
}

impl fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKey")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}
