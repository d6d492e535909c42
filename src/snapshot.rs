//! What the layer remembers of a request while the wrapped service handles it, so a 401
//! or 403 from that service can still be explained and reproduced.
//!
//! The snapshot is taken when the request goes on to the wrapped service (one allocation,
//! sized to the request, and reference-counted clones of header values); a request the
//! layer refuses itself is read as it is, and only for an event that is logged. Credential
//! and proxy headers are kept first, so a request with many headers still keeps the ones
//! that matter.

use crate::evidence::{credential_part, printable_scheme, OTHER_HEADERS};
use crate::sanitize::fingerprint;
use http::header::{AUTHORIZATION, COOKIE, HOST, PROXY_AUTHORIZATION};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use std::fmt::Write as _;

/// How many header fields a snapshot keeps.
const KEEP: usize = 16;

/// Headers whose values are safe to print in a reproduction line.
const SAFE: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "content-type",
    "content-length",
    "user-agent",
    "origin",
    // Fetch Metadata: decides login redirects and the origin check of cookie sessions.
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-dest",
    "x-request-id",
    "forwarded",
    "via",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "access-control-request-method",
    "access-control-request-headers",
];

/// Headers whose values are or may be credentials: the known ones, and any name that
/// says auth, token, key, secret, password, session or cookie (`Private-Token`,
/// `X-CSRF-Token`, `Ocp-Apim-Subscription-Key`, …).
pub(crate) fn is_credential_header(name: &HeaderName) -> bool {
    // Names that say "key" or "token" without carrying a credential: WebSocket's nonce, an
    // idempotency key, and the random id Postman and newman put on every request.
    const NOT_CREDENTIALS: &[&str] = &["sec-websocket-key", "idempotency-key", "postman-token"];
    if NOT_CREDENTIALS.contains(&name.as_str()) {
        return false;
    }
    name == AUTHORIZATION
        || name == PROXY_AUTHORIZATION
        || name == COOKIE
        // A DPoP proof (RFC 9449) is good for one request, but still never printed.
        || name.as_str() == "dpop"
        || OTHER_HEADERS.contains(&name.as_str())
        || names_a_credential(name.as_str().as_bytes())
}

/// Whether a (lower-case) header name contains one of the credential words. One pass over
/// the name: this runs for every header of every request.
pub(crate) fn names_a_credential(name: &[u8]) -> bool {
    (0..name.len()).any(|i| {
        let rest = &name[i..];
        match rest[0] {
            b'a' => rest.starts_with(b"auth"),
            b't' => rest.starts_with(b"token"),
            b'k' => rest.starts_with(b"key"),
            b's' => rest.starts_with(b"secret") || rest.starts_with(b"session"),
            b'p' => rest.starts_with(b"password"),
            b'c' => rest.starts_with(b"cookie"),
            _ => false,
        }
    })
}

/// Proxy headers whose values are addresses and names, safe to print.
const PROXY_SAFE: &[&str] = &[
    "forwarded",
    "via",
    "x-real-ip",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
];

fn is_proxy_header(name: &HeaderName) -> bool {
    let n = name.as_str();
    n == "forwarded" || n == "via" || n == "x-real-ip" || n.starts_with("x-forwarded-")
}

/// Up to [`KEEP`] header fields of a request. When there are more, credential, host and
/// proxy headers displace the others.
#[derive(Clone, Default)]
pub(crate) struct Snapshot {
    /// Each field with whether it is a priority one. One allocation, sized to the request.
    fields: Vec<(HeaderName, HeaderValue, bool)>,
    dropped: usize,
    /// The request had a header that is or may be a credential (kept or not).
    credentials: bool,
}

/// The headers an event reads: the snapshot kept of a request that went on, or the
/// request itself while the layer still holds it.
#[derive(Clone, Copy)]
pub(crate) enum Headers<'a> {
    Kept(&'a Snapshot),
    Live(&'a HeaderMap),
}

impl Headers<'_> {
    /// [`Snapshot::curl`] of these headers.
    pub(crate) fn curl(&self, method: &Method, uri: &Uri) -> String {
        match self {
            Headers::Kept(snapshot) => snapshot.curl(method, uri),
            Headers::Live(headers) => Snapshot::new(headers).curl(method, uri),
        }
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &HeaderName) -> Option<&HeaderValue> {
        match self {
            Headers::Kept(snapshot) => snapshot.iter().find(|(n, _)| *n == name).map(|(_, v)| v),
            Headers::Live(headers) => headers.get(name),
        }
    }
}

impl Snapshot {
    pub(crate) fn new(headers: &HeaderMap) -> Self {
        let mut s = Snapshot {
            fields: Vec::with_capacity(headers.len().min(KEEP)),
            dropped: 0,
            credentials: false,
        };
        for (name, value) in headers {
            let credential = is_credential_header(name);
            s.credentials |= credential;
            let priority = credential || name == HOST || is_proxy_header(name);
            if s.fields.len() < KEEP {
                s.fields.push((name.clone(), value.clone(), priority));
                continue;
            }
            s.dropped += 1;
            if priority {
                // Displace the last ordinary field, if any is left.
                if let Some(slot) = s.fields.iter_mut().rev().find(|f| !f.2) {
                    *slot = (name.clone(), value.clone(), true);
                }
            }
        }
        s
    }

    /// Whether the request carried any header that is or may be a credential (see
    /// [`is_credential_header`]), kept in the snapshot or not.
    pub(crate) fn carries_credentials(&self) -> bool {
        self.credentials
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.fields.iter().map(|(n, v, _)| (n, v))
    }

    /// The kept fields as a header map (built only when a failure needs explaining).
    pub(crate) fn headers(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.fields.len());
        for (n, v) in self.iter() {
            map.append(n.clone(), v.clone());
        }
        map
    }

    /// A `curl` command line that repeats the request with every credential replaced by
    /// a placeholder naming its fingerprint, unknown header values and query values
    /// replaced by placeholders, and nothing longer than 2 KiB.
    pub(crate) fn curl(&self, method: &Method, uri: &Uri) -> String {
        // Host and port only: never the user-info part (`user:password@`) of an authority.
        let from_uri = uri.host().map(|h| match uri.port_u16() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_owned(),
        });
        let host = self
            .iter()
            .find(|(n, _)| *n == HOST)
            .and_then(|(_, v)| v.to_str().ok())
            .map(|h| h.rsplit('@').next().unwrap_or(h).to_owned())
            .or(from_uri)
            .unwrap_or_else(|| "localhost".to_owned());
        let scheme = uri.scheme_str().unwrap_or("http");
        let mut line = String::with_capacity(256);
        line.push_str("curl -i");
        // gRPC runs over HTTP/2 only: without this flag curl speaks HTTP/1.1 to a plain
        // `http://` gRPC server, which does not answer it.
        let grpc = self.iter().any(|(n, v)| {
            n == http::header::CONTENT_TYPE
                && v.as_bytes().len() >= 16
                && v.as_bytes()[..16].eq_ignore_ascii_case(b"application/grpc")
                && !v.as_bytes()[16..].starts_with(b"-web")
        });
        if grpc {
            line.push_str(" --http2-prior-knowledge");
        }
        if method != Method::GET {
            let _ = write!(line, " -X '{}'", shell_safe(method.as_str(), 20));
        }
        let _ = write!(
            line,
            " '{scheme}://{}{}",
            shell_safe(&host, 128),
            shell_safe(&loggable_path(uri.path()), 256)
        );
        if let Some(q) = uri.query() {
            line.push('?');
            for (i, pair) in q.split('&').take(16).enumerate() {
                if i > 0 {
                    line.push('&');
                }
                // Only plain parameter names are shown; anything else may be a value.
                match pair.split_once('=') {
                    Some((name, _)) if is_plain_name(name) => {
                        let _ = write!(line, "{name}=<value>");
                    }
                    _ => line.push_str("<value>"),
                }
            }
        }
        line.push('\'');
        for (name, value) in self.iter() {
            if name == HOST {
                continue;
            }
            let shown = if is_credential_header(name) {
                credential_placeholder(name, value)
            } else if SAFE.contains(&name.as_str()) || PROXY_SAFE.contains(&name.as_str()) {
                shell_safe(&String::from_utf8_lossy(value.as_bytes()), 128)
            } else {
                "<redacted>".to_owned()
            };
            let _ = write!(line, " -H '{}: {shown}'", shell_safe(name.as_str(), 64));
            if line.len() > 2048 {
                line.push_str(" …");
                return line;
            }
        }
        if self.dropped > 0 {
            let _ = write!(line, " # {} more header(s) not kept", self.dropped);
        }
        line
    }
}

/// `<Scheme credential fp:…>` for an Authorization-like header, `name=<cookie fp:…>` for
/// each cookie, `<credential fp:…>` otherwise.
fn credential_placeholder(name: &HeaderName, value: &HeaderValue) -> String {
    let bytes = value.as_bytes();
    if name == COOKIE {
        let text = String::from_utf8_lossy(bytes);
        return text
            .split(';')
            .take(16)
            .map(|pair| match pair.trim().split_once('=') {
                Some((n, v)) => {
                    let v = v.trim().trim_matches('"');
                    let n = n.trim();
                    let n = if is_plain_name(n) { n } else { "<name>" };
                    format!("{n}=<cookie fp:{}>", fingerprint(v.as_bytes()))
                }
                // A pair without `=` is a bare value (RFC 6265bis §5.6): never a name.
                None => format!("<cookie fp:{}>", fingerprint(pair.trim().as_bytes())),
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    if name == AUTHORIZATION || name == PROXY_AUTHORIZATION {
        let whole = bytes.trim_ascii();
        let cred = credential_part(whole);
        if cred.len() < whole.len() {
            let scheme = String::from_utf8_lossy(&whole[..whole.len() - cred.len()]);
            return format!(
                "{} <credential fp:{}>",
                shell_safe(printable_scheme(scheme.trim()), 20),
                fingerprint(cred)
            );
        }
    }
    format!("<credential fp:{}>", fingerprint(bytes))
}

/// The path as it may be logged: path parameters (`/app;jsessionid=…`, the servlet way of
/// carrying a session id in the URL) keep a plain name and lose their value.
pub(crate) fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains(';') {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let mut parts = segment.split(';');
        out.push_str(parts.next().unwrap_or_default());
        for param in parts {
            match param.split_once('=') {
                Some((name, _)) if is_plain_name(name) => {
                    let _ = write!(out, ";{name}=<value>");
                }
                _ => out.push_str(";<value>"),
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A parameter or cookie name that is safe to show: a short lower-case word (`page`,
/// `access_token`, `sort[]`). Anything else (upper case, digits, length) may be a secret
/// sent where a name goes.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 24
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b"_-.[]".contains(&b))
}

/// Text that can sit inside single quotes in a shell: printable ASCII without `'`,
/// capped; anything else becomes `?`.
fn shell_safe(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| {
            if (' '..='~').contains(&c) && c != '\'' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_speaks_http2_to_grpc_only() {
        let uri: Uri = "/grpc.health.v1.Health/Check".parse().unwrap();
        let line = |ct: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(HOST, HeaderValue::from_static("127.0.0.1:50051"));
            h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
            Snapshot::new(&h).curl(&Method::POST, &uri)
        };
        for ct in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC",
        ] {
            assert!(
                line(ct).starts_with("curl -i --http2-prior-knowledge -X 'POST'"),
                "{ct}"
            );
        }
        for ct in ["application/grpc-web", "application/json"] {
            assert!(!line(ct).contains("http2"), "{ct}");
        }
    }

    #[test]
    fn curl_hides_credentials_and_query_values() {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("api.example"));
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cr3t-token"),
        );
        h.insert(COOKIE, HeaderValue::from_static("sid=abc123; theme=dark"));
        h.insert("x-custom", HeaderValue::from_static("maybe-secret"));
        h.insert("accept", HeaderValue::from_static("application/json"));
        let uri: Uri = "/orders?access_token=qqq111&page=2".parse().unwrap();
        let line = Snapshot::new(&h).curl(&Method::POST, &uri);
        for secret in [
            "s3cr3t-token",
            "abc123",
            "dark",
            "maybe-secret",
            "qqq111",
            "page=2",
        ] {
            assert!(!line.contains(secret), "{line}");
        }
        assert!(
            line.starts_with(
                "curl -i -X 'POST' 'http://api.example/orders?access_token=<value>&page=<value>'"
            ),
            "{line}"
        );
        assert!(
            line.contains("-H 'authorization: Bearer <credential fp:"),
            "{line}"
        );
        assert!(line.contains("-H 'accept: application/json'"), "{line}");
        assert!(line.contains("-H 'x-custom: <redacted>'"), "{line}");
        let bare: Uri = "/p?sk_live_SECRET".parse().unwrap();
        let line = Snapshot::new(&h).curl(&Method::GET, &bare);
        assert!(!line.contains("sk_live"), "{line}");
    }

    #[test]
    fn keeps_credentials_when_there_are_many_headers() {
        let mut h = HeaderMap::new();
        for i in 0..40 {
            h.insert(
                HeaderName::try_from(format!("x-filler-{i}")).unwrap(),
                HeaderValue::from_static("1"),
            );
        }
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        let s = Snapshot::new(&h);
        assert!(s.headers().contains_key(AUTHORIZATION));
        assert_eq!(s.dropped, 41 - KEEP);
    }
}
