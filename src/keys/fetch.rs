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
///
/// Redirects are the implementation's to follow or not. The default client follows a
/// redirect only to `https` (plain `http` only to a loopback host, or anywhere with
/// [`KeySource::allow_http`](crate::keys::KeySource::allow_http)), never from `https` to `http`,
/// on the origin first asked unless
/// [`KeySource::allow_cross_origin_redirects`](crate::keys::KeySource::allow_cross_origin_redirects),
/// at most 3 hops; a client of your own should not follow more. Whoever can make a URL of
/// the provider answer with a redirect otherwise chooses the keys.
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
    /// A discovery document for another issuer, a key set URL that is not `https`, or a
    /// redirect refused (to plain `http` off loopback, or to another origin).
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
    pub fn from_status(status: http::StatusCode, message: impl Into<String>) -> Self {
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
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// This error without the password or query of `url` anywhere in its explanation: an
    /// HTTP client's own message (reqwest's, an application's) may quote the URL.
    pub(crate) fn redact(mut self, url: &str) -> Self {
        for secret in secrets_of(url) {
            if self.message.contains(&secret) {
                self.message = self.message.replace(&secret, "***");
            }
        }
        self
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
    let shown = shown_source(url);
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{shown:?} is not a URL: {e}"))?;
    let host = uri.host().unwrap_or_default();
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if !host.is_empty() && (allow_http || is_loopback(host)) => Ok(()),
        Some("http") if !host.is_empty() => Err(format!(
            "{shown} is not https: keys fetched in the clear can be replaced on the way \
             (use https, or KeySource::allow_http() for a trusted network)"
        )),
        _ => Err(format!("{shown:?} is not an absolute http(s) URL")),
    }
}

/// A URL as every log line, problem body, metric label, `Debug` output and error message
/// shows it: without its query and fragment, and with its password masked
/// (`https://user:secret@host/jwks?k=v` is `https://user:***@host/jwks`). The one way a
/// key source's URL is shown.
pub(crate) fn shown_source(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority = &rest[..rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len())];
        let port = authority.rsplit_once(':').map_or("", |(_, port)| port);
        let bad_port = !authority.ends_with(']') && port.contains(|c: char| !c.is_ascii_digit());
        if rest.contains('@') && !authority.contains('@') && bad_port {
            // A password with an unescaped `/`, `?` or `#` makes the URL invalid, and
            // where its user-info ends a guess: show none of it.
            return format!("{scheme}://*** (not a valid URL)");
        }
    }
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '\\']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let user = rest[..at].split(':').next().unwrap_or_default();
    let scheme = scheme.map(|s| format!("{s}://")).unwrap_or_default();
    format!("{scheme}{user}:***@{}", &rest[at + 1..])
}

/// What of `url` must never be shown: its password and its query, as written and
/// percent-decoded.
fn secrets_of(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let (before_fragment, fragment) = url.split_once('#').unwrap_or((url, ""));
    let (before_query, query) = before_fragment
        .split_once('?')
        .unwrap_or((before_fragment, ""));
    let rest = before_query
        .split_once("://")
        .map_or(before_query, |(_, r)| r);
    let authority = &rest[..rest.find(['/', '\\']).unwrap_or(rest.len())];
    if let Some((user_info, _)) = authority.rsplit_once('@') {
        if let Some((_, password)) = user_info.split_once(':') {
            secrets.push(password.to_owned());
        }
    }
    secrets.extend([query.to_owned(), fragment.to_owned()]);
    secrets.retain(|s| !s.is_empty());
    let decoded: Vec<String> = secrets.iter().map(|s| percent_decoded(s)).collect();
    secrets.extend(decoded);
    // The longest first, so that a secret's own parts do not leave pieces of it behind.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The default client: reqwest with rustls. It follows at most three redirects, each to
/// a URL that may serve keys ([`check_url`]), never from `https` to `http`, and only on the
/// origin first asked unless `cross_origin`.
#[cfg(feature = "http-client")]
pub(crate) fn default_client(
    allow_http: bool,
    cross_origin: bool,
) -> std::sync::Arc<dyn HttpFetch> {
    std::sync::Arc::new(Reqwest::new(allow_http, cross_origin))
}

#[cfg(feature = "http-client")]
struct Reqwest(reqwest::Client);

/// A redirect the rules refuse: its explanation names the hop.
#[cfg(feature = "http-client")]
#[derive(Debug)]
struct RefusedRedirect(String);

#[cfg(feature = "http-client")]
impl fmt::Display for RefusedRedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(feature = "http-client")]
impl std::error::Error for RefusedRedirect {}

/// Why the redirect to `hop` is refused, after `previous` (the URL first asked, then each
/// hop followed), if it is.
#[cfg(feature = "http-client")]
fn refused_hop(
    hop: &reqwest::Url,
    previous: &[reqwest::Url],
    allow_http: bool,
    cross_origin: bool,
) -> Option<String> {
    let shown = shown_source(hop.as_str());
    let first = previous.first()?;
    if previous.len() > 3 {
        return Some(format!(
            "a redirect to {shown} is refused: more than 3 redirects"
        ));
    }
    if let Err(why) = check_url(hop.as_str(), allow_http) {
        return Some(format!("a redirect is refused: {why}"));
    }
    if hop.scheme() != "https" && previous.iter().any(|u| u.scheme() == "https") {
        return Some(format!(
            "a redirect from https to {shown} is refused: keys fetched in the clear can be \
             replaced on the way"
        ));
    }
    if !cross_origin && hop.origin() != first.origin() {
        return Some(format!(
            "a redirect to {shown} is refused: another origin than {} (allow it with \
             KeySource::allow_cross_origin_redirects() if your provider moved its keys there)",
            shown_source(first.as_str())
        ));
    }
    None
}

#[cfg(feature = "http-client")]
impl Reqwest {
    fn new(allow_http: bool, cross_origin: bool) -> Self {
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            match refused_hop(attempt.url(), attempt.previous(), allow_http, cross_origin) {
                Some(why) => attempt.error(RefusedRedirect(why)),
                None => attempt.follow(),
            }
        });
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config())
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

/// The TLS configuration of every HTTP client this crate builds: rustls on the crypto
/// provider the features chose (aws-lc-rs, the one that verifies signatures; ring when
/// `rust_crypto` is on without `aws_lc_rs`), Mozilla's root certificates (webpki-roots),
/// TLS 1.2 and 1.3, HTTP/1.1. Handed to reqwest whole, so no process-wide default provider
/// is needed, and none the application installed is changed.
#[cfg(feature = "http-client")]
pub(crate) fn tls_config() -> rustls::ClientConfig {
    #[cfg(feature = "aws_lc_rs")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
    let provider = rustls::crypto::ring::default_provider();
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("the provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // What reqwest offers without its `http2` feature, which this crate leaves off.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
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
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<RefusedRedirect>() {
            return FetchError::new(FetchErrorKind::Untrusted, refused.0.clone());
        }
        source = s.source();
    }
    let kind = if e.is_timeout() {
        FetchErrorKind::Timeout
    } else if e.is_connect() {
        FetchErrorKind::Connect
    } else {
        FetchErrorKind::Other
    };
    FetchError::new(kind, error_chain(e))
}

/// A reqwest error and its causes (refused, DNS, TLS, timeout) in one line, without the URL
/// (which may carry a password or a query).
#[cfg(feature = "http-client")]
pub(crate) fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
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

    #[test]
    fn a_url_is_shown_without_query_and_password() {
        for (url, shown) in [
            (
                "https://idp.example/jwks?key=s3cret#x",
                "https://idp.example/jwks",
            ),
            (
                "https://user:pw@idp.example/jwks",
                "https://user:***@idp.example/jwks",
            ),
            (
                "https://user:p@ss@idp.example:8443",
                "https://user:***@idp.example:8443",
            ),
            (
                "https://token@idp.example/",
                "https://token:***@idp.example/",
            ),
            ("user:pw@idp.example/jwks", "user:***@idp.example/jwks"),
            (
                "https://idp.example/a@b/jwks",
                "https://idp.example/a@b/jwks",
            ),
            (
                "https://user:pw@idp.example?next=a@b",
                "https://user:***@idp.example",
            ),
            ("https://idp.example", "https://idp.example"),
            ("", ""),
            (
                "https://user:pa/ss@idp.example/jwks",
                "https://*** (not a valid URL)",
            ),
            (
                "https://user:p#ss@idp.example",
                "https://*** (not a valid URL)",
            ),
        ] {
            assert_eq!(shown_source(url), shown, "{url}");
            // Showing a shown URL changes nothing.
            assert_eq!(shown_source(shown), shown, "{shown}");
        }
    }

    #[test]
    fn a_client_message_loses_the_password_and_query_it_quotes() {
        let url = "https://alice:p%40ss-word@idp.example/jwks?api_key=k3y-value";
        let quoted = FetchError::new(
            FetchErrorKind::Connect,
            format!("error sending request for url ({url}): p@ss-word; api_key=k3y-value"),
        )
        .redact(url);
        for secret in ["p%40ss-word", "p@ss-word", "k3y-value"] {
            assert!(!quoted.message().contains(secret), "{}", quoted.message());
        }
        assert!(quoted.message().contains("alice:***@idp.example/jwks"));
        let plain = FetchError::new(FetchErrorKind::Connect, "connection refused");
        assert_eq!(plain.clone().redact("https://idp.example/jwks"), plain);
    }

    #[cfg(feature = "http-client")]
    #[test]
    fn redirect_hops() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        let from = |u: &str| vec![url(u)];
        let refused = |hop: &str, prev: &[reqwest::Url], allow_http, cross_origin| {
            refused_hop(&url(hop), prev, allow_http, cross_origin)
        };
        let https = from("https://idp.example/jwks");
        // The same origin: followed.
        assert_eq!(
            refused("https://idp.example/keys/v2", &https, false, false),
            None
        );
        assert_eq!(
            refused("https://idp.example:443/k", &https, false, false),
            None
        );
        // Another origin: refused, unless allowed; the hop named without its secrets.
        let why = refused("https://u:pw@other.example/jwks?s=1", &https, false, false).unwrap();
        assert!(why.contains("https://u:***@other.example/jwks"), "{why}");
        assert!(!why.contains("pw@") && !why.contains("s=1"), "{why}");
        assert!(why.contains("origin"), "{why}");
        assert_eq!(
            refused("https://other.example/jwks", &https, false, true),
            None
        );
        assert!(refused("https://idp.example:8443/jwks", &https, false, false).is_some());
        assert!(refused("https://sub.idp.example/jwks", &https, false, false).is_some());
        // Never down to http, even on the same host, even with allow_http.
        assert!(refused("http://idp.example/jwks", &https, true, true).is_some());
        // From loopback http: plain http elsewhere is refused however allowed the origin.
        let local = from("http://127.0.0.1:8080/jwks");
        let why = refused("http://evil.example/jwks", &local, false, true).unwrap();
        assert!(
            why.contains("http://evil.example/jwks is not https"),
            "{why}"
        );
        assert_eq!(
            refused("http://evil.example/jwks", &local, true, true),
            None
        );
        assert!(refused("http://127.0.0.1:8081/jwks", &local, false, false).is_some());
        assert!(refused("http://localhost:8080/jwks", &local, false, false).is_some());
        assert_eq!(
            refused("http://127.0.0.1:8080/k", &local, false, false),
            None
        );
        assert_eq!(
            refused("https://idp.example/jwks", &local, false, true),
            None
        );
        assert!(refused("file:///etc/passwd", &local, true, true).is_some());
        // At most three redirects.
        let long = vec![url("https://idp.example/1"); 4];
        assert!(refused("https://idp.example/5", &long, false, false).is_some());
    }
}
