//! Fetching documents over HTTP: the [`HttpFetch`] trait an application may implement with
//! its own client, the default client (reqwest with rustls, feature `http-client`), and
//! [`FetchError`], which says what went wrong in words an operator can act on.

use bytes::Bytes;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable fetch.
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + 'a>>;

/// A fetched document: status, `Cache-Control`, body.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The response status.
    pub status: http::StatusCode,
    /// The `Cache-Control` header, if any (for `max-age`).
    pub cache_control: Option<String>,
    /// The body: at most the `max_bytes` the fetch was asked for.
    pub body: Bytes,
}

/// An HTTP client that GETs key sets and discovery documents.
///
/// The default (feature `http-client`) is reqwest with rustls and Mozilla's root
/// certificates. Implement it to bring your own client: another TLS configuration, a
/// private CA, a proxy, or a test double. The caller applies the timeout around
/// [`HttpFetch::get`]; an implementation must stop reading a body longer than
/// `max_bytes` and answer [`FetchError::too_large`].
pub trait HttpFetch: Send + Sync + 'static {
    /// GETs `url` with `Accept: application/json`.
    fn get<'a>(&'a self, url: &'a str, max_bytes: usize) -> FetchFuture<'a>;
}

/// What went wrong fetching a key set or discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    kind: FetchErrorKind,
    message: String,
    status: Option<u16>,
}

/// The kind of a [`FetchError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchErrorKind {
    /// No answer within the fetch timeout.
    Timeout,
    /// No connection: DNS, refused, TLS handshake.
    Connect,
    /// An answer with a status other than 200.
    Status,
    /// A body longer than the configured cap.
    TooLarge,
    /// A body that is not the JSON document expected.
    Document,
    /// A discovery document for another issuer, or a key set URL that is not `https`.
    Untrusted,
    /// Anything else.
    Other,
}

impl FetchErrorKind {
    /// Its `result` label in metrics: `timeout`, `connect`, `status`, `too_large`,
    /// `document`, `untrusted`, `other`.
    pub fn label(self) -> &'static str {
        match self {
            FetchErrorKind::Timeout => "timeout",
            FetchErrorKind::Connect => "connect",
            FetchErrorKind::Status => "status",
            FetchErrorKind::TooLarge => "too_large",
            FetchErrorKind::Document => "document",
            FetchErrorKind::Untrusted => "untrusted",
            FetchErrorKind::Other => "other",
        }
    }
}

impl FetchError {
    /// An error of `kind`, explained by `message`.
    pub fn new(kind: FetchErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: None,
        }
    }

    /// An answer with `status` where 200 was expected.
    pub fn status(status: http::StatusCode, message: impl Into<String>) -> Self {
        Self {
            status: Some(status.as_u16()),
            ..Self::new(FetchErrorKind::Status, message)
        }
    }

    /// The body is longer than `max_bytes`.
    pub fn too_large(max_bytes: usize) -> Self {
        Self::new(
            FetchErrorKind::TooLarge,
            format!("the response is larger than {max_bytes} bytes"),
        )
    }

    /// Its kind.
    pub fn kind(&self) -> FetchErrorKind {
        self.kind
    }

    /// Its explanation.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status, for [`FetchErrorKind::Status`].
    pub fn http_status(&self) -> Option<u16> {
        self.status
    }

    /// This error, with what was being fetched in front of the explanation.
    pub(crate) fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FetchError {}

/// `max-age` of a `Cache-Control` value, in seconds; `Some(0)` for `no-cache`/`no-store`.
pub(crate) fn max_age(cache_control: &str) -> Option<u64> {
    let mut age = None;
    for directive in cache_control.split(',') {
        let directive = directive.trim();
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            age = value.trim().trim_matches('"').parse().ok();
        }
    }
    age
}

/// Whether a URL may serve keys: `https`, or `http` to a loopback host (development and
/// tests), or `http` anywhere when the application allowed it.
pub(crate) fn check_url(url: &str, allow_http: bool) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{:?} is not a URL: {e}", super::source::strip_query(url)))?;
    let url = super::source::strip_query(url);
    let host = uri.host().unwrap_or_default();
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if !host.is_empty() && (allow_http || is_loopback(host)) => Ok(()),
        Some("http") if !host.is_empty() => Err(format!(
            "{url} is not https: keys fetched in the clear can be replaced on the way \
             (use https, or KeySource::allow_http() for a trusted network)"
        )),
        _ => Err(format!("{url:?} is not an absolute http(s) URL")),
    }
}

pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The default client: reqwest with rustls, at most three redirects and never from
/// `https` to `http`.
#[cfg(feature = "http-client")]
pub(crate) fn default_client() -> std::sync::Arc<dyn HttpFetch> {
    std::sync::Arc::new(Reqwest::new())
}

#[cfg(feature = "http-client")]
struct Reqwest(reqwest::Client);

#[cfg(feature = "http-client")]
impl Reqwest {
    fn new() -> Self {
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let downgrade = attempt.url().scheme() != "https"
                && attempt.previous().iter().any(|u| u.scheme() == "https");
            if attempt.previous().len() > 3 {
                attempt.error("more than 3 redirects")
            } else if downgrade {
                attempt.error("a redirect from https to http")
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .redirect(redirects)
            // Fetches are minutes apart, and a pooled connection would be tied to the
            // runtime that opened it.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("auth-diagnostics/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with rustls builds");
        Self(client)
    }
}

#[cfg(feature = "http-client")]
impl HttpFetch for Reqwest {
    fn get<'a>(&'a self, url: &'a str, max_bytes: usize) -> FetchFuture<'a> {
        Box::pin(async move {
            let mut response = self
                .0
                .get(url)
                .header(http::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(reqwest_error)?;
            if response
                .content_length()
                .is_some_and(|n| n > max_bytes as u64)
            {
                return Err(FetchError::too_large(max_bytes));
            }
            let status = response.status();
            let cache_control = response
                .headers()
                .get(http::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(reqwest_error)? {
                if body.len() + chunk.len() > max_bytes {
                    return Err(FetchError::too_large(max_bytes));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Fetched {
                status,
                cache_control,
                body: body.into(),
            })
        })
    }
}

/// A reqwest error with its causes (DNS, TLS, refused), which reqwest's own message leaves
/// out.
#[cfg(feature = "http-client")]
fn reqwest_error(e: reqwest::Error) -> FetchError {
    let kind = if e.is_timeout() {
        FetchErrorKind::Timeout
    } else if e.is_connect() {
        FetchErrorKind::Connect
    } else {
        FetchErrorKind::Other
    };
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    FetchError::new(kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_directives() {
        assert_eq!(max_age("public, max-age=3600"), Some(3600));
        assert_eq!(max_age("Max-Age=\"60\", must-revalidate"), Some(60));
        assert_eq!(max_age("no-cache"), Some(0));
        assert_eq!(max_age("private"), None);
        assert_eq!(max_age("max-age=oops"), None);
    }

    #[test]
    fn urls_that_may_serve_keys() {
        assert!(check_url("https://idp.example/jwks", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks", false).is_ok());
        assert!(check_url("http://[::1]:8080/jwks", false).is_ok());
        assert!(check_url("http://localhost/jwks", false).is_ok());
        assert!(check_url("http://idp.example/jwks", false).is_err());
        assert!(check_url("http://idp.example/jwks", true).is_ok());
        assert!(check_url("file:///etc/passwd", true).is_err());
        assert!(check_url("/jwks", true).is_err());
    }
}
