//! API keys in a header (and, when opted in, a query parameter).

use crate::authn::verify::{AuthFuture, Verify};
use crate::secret::Secret;
use http::HeaderName;
use std::fmt;
use std::sync::Arc;

/// Longest API key we accept, in bytes.
pub(crate) const MAX_KEY: usize = 1024;

/// An API key taken from the request.
#[derive(Debug, Clone)]
pub struct ApiKey(pub Secret);

/// Accepts an API key in a header (default `X-API-Key`), verified by the application's
/// [`Verify`] hook.
///
/// There is no registered HTTP authentication scheme for API keys; a 401 carries
/// `WWW-Authenticate: ApiKey realm="…", header="X-API-Key"` (and `query="…"` when the query
/// parameter is allowed), which tells a client exactly where the key goes.
#[derive(Clone)]
pub struct ApiKeyAuthenticator {
    pub(crate) header: HeaderName,
    pub(crate) header_display: String,
    pub(crate) query: Option<String>,
    verify: Arc<dyn Verify<ApiKey>>,
}

impl ApiKeyAuthenticator {
    /// Keys in `X-API-Key`, verified by `verify`.
    pub fn new(verify: impl Verify<ApiKey>) -> Self {
        Self {
            header: HeaderName::from_static("x-api-key"),
            header_display: "X-API-Key".to_owned(),
            query: None,
            verify: Arc::new(verify),
        }
    }

    /// Reads the key from `name` instead of `X-API-Key`.
    ///
    /// # Panics
    /// When `name` is not a valid header name (a configuration error).
    pub fn header(mut self, name: &str) -> Self {
        self.header = HeaderName::try_from(name).expect("a valid header name");
        self.header_display = name.to_owned();
        self
    }

    /// Also accepts the key in the query parameter `name`. Off by default: query strings
    /// end up in access logs, proxies and browser history.
    pub fn allow_query(mut self, name: impl Into<String>) -> Self {
        self.query = Some(name.into());
        self
    }

    pub(crate) fn start(&self, key: ApiKey) -> AuthFuture {
        self.verify.verify(key)
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
