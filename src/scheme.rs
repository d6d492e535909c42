//! [`Scheme`]: the authentication schemes the layer speaks, as a typed name.

use std::fmt;

/// An authentication scheme, by name.
///
/// It decides the order of challenges (RFC 9110 §11.3: well-supported schemes such as
/// Basic first) and tells which scheme a client spoke. [`Principal::scheme`] says which one
/// authenticated a request.
///
/// [`Principal::scheme`]: crate::Principal::scheme
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `Basic` (RFC 7617). Listed first in challenges.
    Basic,
    /// `Bearer` (RFC 6750): a JWT in `Authorization`.
    Bearer,
    /// `ApiKey`: this crate's challenge for a key in a header (no scheme is registered).
    ApiKey,
    /// `Cookie`: this crate's challenge for a session cookie (no scheme is registered).
    Cookie,
    /// `DPoP` (RFC 9449): a sender-constrained JWT in `Authorization` with a `DPoP` proof.
    Dpop,
    /// `ProxyAssertion`: this crate's challenge for an identity-aware proxy's signed
    /// assertion in a header of its own (no scheme is registered).
    ProxyAssertion,
}

impl Scheme {
    /// The auth-scheme of its challenge, e.g. `"Bearer"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Basic => "Basic",
            Scheme::Bearer => "Bearer",
            Scheme::ApiKey => "ApiKey",
            Scheme::Cookie => "Cookie",
            Scheme::Dpop => "DPoP",
            Scheme::ProxyAssertion => "ProxyAssertion",
        }
    }

    /// The scheme a word names, compared case-insensitively (RFC 9110 §11.1).
    pub(crate) fn from_word(word: &str) -> Option<Scheme> {
        [
            Scheme::Basic,
            Scheme::Bearer,
            Scheme::ApiKey,
            Scheme::Cookie,
            Scheme::Dpop,
            Scheme::ProxyAssertion,
        ]
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serialized as its name, e.g. `"Bearer"`.
impl serde::Serialize for Scheme {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}
