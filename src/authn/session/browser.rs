//! What browsers need from a cookie-session route: a page navigation that fails goes to the
//! login page, and an unsafe request the cookie authenticated must come from this site's
//! own origin (CSRF, RFC 6750 §5.3). Also: noticing CORS headers added inside the layer.

use crate::config_error::{ConfigError, OriginUse};
use crate::failure::AuthFailure;
use crate::reason::Reason;
use crate::sanitize::cap;
use axum::body::Body;
use http::header::{ACCEPT, CACHE_CONTROL, HOST, LOCATION, ORIGIN, VARY};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use std::sync::Arc;

/// Longest `return_to` path we put in a login redirect, in bytes.
const MAX_RETURN_TO: usize = 2048;

/// A session scheme's browser settings, copied into the layer's configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionPages {
    /// Where a failing page navigation is sent (`303 See Other`).
    pub login_url: Option<Arc<str>>,
    /// Origins besides the request's own that may send unsafe requests (lower case, no
    /// trailing slash).
    pub trusted_origins: Vec<String>,
    /// Off only when the application checks CSRF tokens itself.
    pub origin_check: bool,
}

/// Whether the request is a top-level page navigation: `Sec-Fetch-Mode: navigate`, or,
/// from a browser without Fetch Metadata, an `Accept` that prefers HTML to JSON.
pub(crate) fn is_navigation(headers: &HeaderMap) -> bool {
    if let Some(mode) = headers.get("sec-fetch-mode") {
        return mode.as_bytes().eq_ignore_ascii_case(b"navigate");
    }
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (mut html, mut json) = (0.0_f32, 0.0_f32);
    for range in accept.split(',').take(32) {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if media.eq_ignore_ascii_case("text/html") {
            html = html.max(q);
        } else if media.eq_ignore_ascii_case("application/json")
            || media.eq_ignore_ascii_case("application/problem+json")
        {
            json = json.max(q);
        }
    }
    html > 0.0 && html > json
}

/// `303 See Other` to `login_url` with `return_to`, the path (and query) the browser asked
/// for: always a path on this site, so the login page can send the user back without
/// becoming an open redirect.
pub(crate) fn login_redirect(login_url: &str, uri: &Uri) -> Response<Body> {
    let target = format!(
        "{login_url}{}return_to={}",
        if login_url.contains('?') { '&' } else { '?' },
        encode(&return_to(uri))
    );
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    let headers = response.headers_mut();
    // Every byte is percent-encoded or was checked when the login URL was configured.
    if let Ok(location) = HeaderValue::from_str(&target) {
        headers.insert(LOCATION, location);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(VARY, HeaderValue::from_static("Sec-Fetch-Mode, Accept"));
    response
}

/// The path and query of `uri`, as a path of this site: `//host/…` and `/\host/…` (which
/// browsers read as another host) become `/`, as does anything too long.
///
/// The query comes along unless a parameter's name says it carries a credential
/// (`access_token`, `api_key`, `session`, …): the login URL may be on another host, and a
/// credential must not travel there.
pub(crate) fn return_to(uri: &Uri) -> String {
    let path = uri.path();
    let safe = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.len() <= MAX_RETURN_TO;
    if !safe {
        return "/".to_owned();
    }
    match uri.query() {
        Some(q) if !names_a_credential_param(q) && path.len() + q.len() < MAX_RETURN_TO => {
            format!("{path}?{q}")
        }
        _ => path.to_owned(),
    }
}

/// Whether a query has a parameter whose name says auth, token, key, secret, password,
/// session or cookie.
fn names_a_credential_param(query: &str) -> bool {
    query.split('&').any(|pair| {
        let name = pair
            .split('=')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        crate::snapshot::names_a_credential(name.as_bytes())
    })
}

/// Percent-encodes all but unreserved characters and `/` (RFC 3986 §2.3).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A login URL an application may configure: a path on this site or an absolute `http(s)`
/// URL, printable ASCII only (it goes into a header as it is).
fn login_url_error(url: &str) -> Option<ConfigError> {
    let printable = url.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'#');
    let site_path = url.starts_with('/') && !url.starts_with("//") && !url.starts_with("/\\");
    let absolute = url.starts_with("https://") || url.starts_with("http://");
    (!printable || !(site_path || absolute)).then(|| ConfigError::InvalidLoginUrl {
        url: url.to_owned(),
    })
}

/// Methods a browser may send cross-site without it being a forgery risk (RFC 9110 §9.2.1).
fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// An origin (`scheme://host[:port]`) as its lower-case scheme, host and port (the
/// scheme's default when none is written). `None` for `null` and anything not http(s).
fn parse_origin(origin: &str) -> Option<(String, String, u16)> {
    let (scheme, authority) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = split_port(&authority.to_ascii_lowercase())?;
    Some((scheme, host, port.unwrap_or(default)))
}

/// `host[:port]` (an IPv6 host in brackets), the port when written.
fn split_port(authority: &str) -> Option<(String, Option<u16>)> {
    if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
        return None;
    }
    let colon = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => Some(i),
        _ => None,
    };
    match colon {
        Some(i) => Some((
            authority[..i].to_owned(),
            Some(authority[i + 1..].parse().ok()?),
        )),
        None => Some((authority.to_owned(), None)),
    }
}

/// Whether `origin` is the origin of the request itself: the host of `Host` (or of the
/// URI's authority, HTTP/2), and its port, or when `Host` names none, the default port of
/// the origin's scheme. Not the scheme: behind a proxy that ends TLS the application sees
/// `http` (even in an HTTP/2 `:scheme`) for pages served over https.
fn same_origin(origin: &str, headers: &HeaderMap, uri: &Uri) -> bool {
    let Some((scheme, host, port)) = parse_origin(origin) else {
        return false;
    };
    let authority = match headers.get(HOST).and_then(|h| h.to_str().ok()) {
        Some(h) => h.to_ascii_lowercase(),
        None => match uri.authority() {
            Some(a) => a.as_str().to_ascii_lowercase(),
            None => return false,
        },
    };
    let Some((own_host, own_port)) = split_port(&authority) else {
        return false;
    };
    let own_port = own_port.unwrap_or(if scheme == "https" { 443 } else { 80 });
    host == own_host && port == own_port
}

/// An origin as `scheme://host`, with `:port` only when it is not the scheme's default
/// (browsers leave default ports out), lower case.
fn normalized_origin(origin: &str) -> Option<String> {
    let (scheme, host, port) = parse_origin(origin.trim_end_matches('/'))?;
    let default = if scheme == "https" { 443 } else { 80 };
    Some(if port == default {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}:{port}")
    })
}

/// A trusted origin as configured, normalised like the `Origin`s compared with it.
fn trusted_origin(origin: &str) -> Result<String, ConfigError> {
    normalized_origin(origin).ok_or_else(|| ConfigError::InvalidOrigin {
        origin: origin.to_owned(),
        why: OriginUse::TrustedOrigin,
    })
}

impl SessionPages {
    /// These settings checked and ready to serve (trusted origins normalised), or every
    /// mistake in them.
    pub(crate) fn checked(&self) -> Result<Self, Vec<ConfigError>> {
        let mut errors: Vec<ConfigError> = self
            .login_url
            .as_deref()
            .and_then(login_url_error)
            .into_iter()
            .collect();
        let mut trusted = Vec::new();
        for origin in &self.trusted_origins {
            match trusted_origin(origin) {
                Ok(o) => trusted.push(o),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            trusted_origins: trusted,
            ..self.clone()
        })
    }
}

impl SessionPages {
    /// Whether an unsafe request the session cookie authenticated came from elsewhere:
    /// `Origin` must be this request's own origin or a trusted one; without `Origin`,
    /// `Sec-Fetch-Site` must be `same-origin` or `none` (typed by the user). A client that
    /// sends neither is not a browser, and a forgery needs a browser.
    pub(crate) fn cross_site(
        &self,
        method: &Method,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Option<AuthFailure> {
        if !self.origin_check || is_safe(method) {
            return None;
        }
        let refuse = |detail: String| {
            Some(
                AuthFailure::new(Reason::CrossSiteRequest)
                    .check("origin")
                    .detail(detail),
            )
        };
        if let Some(origin) = headers.get(ORIGIN) {
            let text = String::from_utf8_lossy(origin.as_bytes());
            let trusted =
                normalized_origin(&text).is_some_and(|o| self.trusted_origins.contains(&o));
            if trusted || same_origin(&text, headers, uri) {
                return None;
            }
            let host = headers
                .get(HOST)
                .map(|h| String::from_utf8_lossy(h.as_bytes()));
            return refuse(format!(
                "{method} with a session cookie from origin {} (this site's Host is {}; trusted: {})",
                cap(&text),
                host.map_or("unknown: no Host".to_owned(), |h| cap(&h).to_string()),
                if self.trusted_origins.is_empty() {
                    "none".to_owned()
                } else {
                    self.trusted_origins.join(" ")
                }
            ));
        }
        match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
            None | Some(b"same-origin") | Some(b"none") => None,
            Some(site) => refuse(format!(
                "{method} with a session cookie and Sec-Fetch-Site {} (and no Origin)",
                cap(&String::from_utf8_lossy(site))
            )),
        }
    }
}
