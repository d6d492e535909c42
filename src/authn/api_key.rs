//! API keys in a header (and, when opted in, a query parameter), verified by the
//! application's [`Verify`] hook.

use super::{header_location, named, AuthScheme, Decision, Pending, Place};
use crate::authn::verify::{AuthFuture, Verify};
use crate::challenge::Challenge;
use crate::config_error::ConfigError;
use crate::evidence::{credential_part, hint, printable_scheme, spoken_scheme, Evidence};
use crate::failure::{AuthFailure, Location};
use crate::reason::{DetailMode, Reason};
use crate::sanitize::{cap, fingerprint};
use crate::scheme::Scheme;
use crate::secret::Secret;
use http::HeaderName;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Longest API key we accept, in bytes.
const MAX_KEY: usize = 1024;

/// Authorization scheme words people use for API keys.
const KEY_WORDS: &[&str] = &[
    "apikey",
    "api-key",
    "api_key",
    "x-api-key",
    "key",
    "token",
    "bearer",
];

/// An API key taken from the request.
#[derive(Debug, Clone)]
pub struct ApiKey(pub Secret);

/// Accepts an API key in a header (default `X-API-Key`), verified by the application's
/// [`Verify`] hook.
///
/// There is no registered HTTP authentication scheme for API keys; a 401 carries
/// `WWW-Authenticate: ApiKey realm="…", header="X-API-Key"` (and `query="…"` when the query
/// parameter is allowed), which tells a client exactly where the key goes. Answers to
/// requests it authenticated are made `private` for shared caches.
#[derive(Clone)]
pub struct ApiKeyAuthenticator {
    header: HeaderName,
    header_display: String,
    query: Option<String>,
    verify: Arc<dyn Verify<ApiKey>>,
    /// A header name given that is none, reported when the layer is built.
    bad_header: Option<String>,
}

impl ApiKeyAuthenticator {
    /// Keys in `X-API-Key`, verified by `verify`.
    #[must_use]
    pub fn new(verify: impl Verify<ApiKey>) -> Self {
        Self {
            header: HeaderName::from_static("x-api-key"),
            header_display: "X-API-Key".to_owned(),
            query: None,
            verify: Arc::new(verify),
            bad_header: None,
        }
    }

    /// Reads the key from `name` instead of `X-API-Key`.
    ///
    /// # Configuration errors
    /// A `name` that is not a valid header name is a configuration mistake
    /// ([`ConfigError::InvalidHeaderName`](crate::layer::ConfigError::InvalidHeaderName)),
    /// reported when the layer is built.
    #[must_use]
    pub fn header(mut self, name: &str) -> Self {
        match HeaderName::try_from(name) {
            Ok(header) => {
                self.header = header;
                self.header_display = name.to_owned();
                self.bad_header = None;
            }
            Err(_) => self.bad_header = Some(name.to_owned()),
        }
        self
    }

    /// Every mistake in this configuration.
    pub(crate) fn config_errors(&self) -> Vec<ConfigError> {
        let bad = self.bad_header.iter();
        bad.map(|name| ConfigError::InvalidHeaderName { name: name.clone() })
            .collect()
    }

    /// Also accepts the key in the query parameter `name`. Off by default: query strings
    /// end up in access logs, proxies and browser history.
    #[must_use]
    pub fn allow_query(mut self, name: impl Into<String>) -> Self {
        self.query = Some(name.into());
        self
    }

    fn start(&self, key: ApiKey) -> AuthFuture {
        self.verify.verify(key)
    }

    /// A key at `location`: checked for size and text, then handed to the verifier.
    fn decide(&self, location: Location, raw: &[u8]) -> Decision {
        let bad = |detail: &str| {
            Decision::Rejected(
                AuthFailure::new(Reason::ApiKeyUnknown)
                    .location(location.clone())
                    .detail(detail)
                    .fingerprint(fingerprint(raw)),
            )
        };
        if raw.len() > MAX_KEY {
            return bad("the API key is longer than 1 KiB");
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            return bad("the API key is not UTF-8");
        };
        let text = text.trim();
        if text.is_empty() {
            return bad("the API key is empty");
        }
        let fut = self.start(ApiKey(Secret::new(text)));
        Decision::Pending(Pending::new(fut, self, location, raw))
    }

    fn query_location(&self, q: &str) -> Location {
        Location::Query(named(q))
    }
}

impl fmt::Debug for ApiKeyAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyAuthenticator")
            .field("header", &self.header)
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

impl AuthScheme for ApiKeyAuthenticator {
    fn kind(&self) -> Scheme {
        Scheme::ApiKey
    }

    fn describe(&self) -> Cow<'static, str> {
        Cow::Owned(format!("{} header", self.header_display))
    }

    fn how_to_send(&self) -> std::borrow::Cow<'static, str> {
        format!("`{}: <key>`", self.header_display).into()
    }

    fn private(&self) -> bool {
        true
    }

    /// Two fields of its header, or its allowed query parameter beside a credential header.
    fn conflict(&self, ev: &Evidence<'_>) -> Option<AuthFailure> {
        let fields = ev.headers().get_all(&self.header);
        let count = fields.iter().count();
        let first = fields.iter().next();
        let conflict = |secret: &[u8], spoken: Option<&str>, location: Location| {
            AuthFailure::new(Reason::CredentialsConflict)
                .location(location)
                .fingerprint(fingerprint(secret))
                .received(spoken)
        };
        if let (Some(first), true) = (first, count > 1) {
            return Some(
                conflict(
                    first.as_bytes(),
                    Some("ApiKey"),
                    header_location(&self.header),
                )
                .detail(format!(
                    "the request has {count} {} header fields; send exactly one",
                    self.header_display
                ))
                .hint(format!("Send one `{}: <key>` header.", self.header_display)),
            );
        }
        let q = self.query.as_deref()?;
        ev.query_param(q)?;
        let (location, what, secret, spoken) = match (ev.authorization(), first) {
            (Some(raw), _) => (
                Location::Authorization,
                "an Authorization header".to_owned(),
                credential_part(raw),
                spoken_scheme(raw),
            ),
            (None, Some(v)) => (
                header_location(&self.header),
                format!("a {} header", self.header_display),
                v.as_bytes(),
                Some("ApiKey"),
            ),
            (None, None) => return None,
        };
        Some(
            conflict(secret, spoken, location)
                .detail(format!(
                    "the request has {what} and a `{}` query parameter; send one",
                    cap(q)
                ))
                .tag(hint::QUERY),
        )
    }

    fn find(&self, ev: &Evidence<'_>, place: Place) -> Option<Decision> {
        match place {
            Place::Header => {
                let v = ev.headers().get(&self.header)?;
                Some(self.decide(header_location(&self.header), v.as_bytes()))
            }
            Place::Query => {
                let q = self.query.as_deref()?;
                let v = ev.query_param(q)?;
                Some(self.decide(self.query_location(q), v.as_bytes()))
            }
            Place::Authorization | Place::Cookie => None,
        }
    }

    fn reads_header(&self, name: &str) -> bool {
        self.header == name
    }

    fn sent_key<'a>(&self, ev: &Evidence<'a>) -> Option<&'a [u8]> {
        if let Some(v) = ev.headers().get(&self.header) {
            return Some(v.as_bytes());
        }
        Some(ev.query_param(self.query.as_deref()?)?.as_bytes())
    }

    fn misplaced(&self, word: &str) -> Option<AuthFailure> {
        KEY_WORDS.iter().any(|n| n.eq_ignore_ascii_case(word)).then(|| {
            AuthFailure::new(Reason::CredentialsWrongLocation)
                .detail(format!(
                    "an API key was sent in Authorization (scheme {}), but this resource reads it from the {} header",
                    cap(printable_scheme(word)),
                    self.header_display
                ))
                .hint(format!("Send the key as `{}: <key>`.", self.header_display))
        })
    }

    fn challenge(&self, c: Challenge, _: &AuthFailure, _: DetailMode) -> Challenge {
        let c = c.quoted_param("header", &self.header_display);
        match &self.query {
            Some(q) => c.quoted_param("query", q),
            None => c,
        }
    }
}
