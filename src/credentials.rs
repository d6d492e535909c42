//! Finding credentials in a request: `Authorization`, the query string, other common
//! headers and cookies. Nothing here allocates on the common path; values are borrowed
//! from the request and never leave this crate except as fingerprints.

use crate::challenge::is_tchar;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, Method, Uri};

/// Longest `Authorization` value we parse; anything longer is malformed. It leaves room
/// for a scheme in front of the longest token `jwt.rs` decodes.
pub(crate) const MAX_AUTHORIZATION: usize = 18 * 1024;
/// How much of the query string and of each `Cookie` field we scan.
const MAX_SCAN: usize = 8 * 1024;
/// How many cookies we look at.
const MAX_COOKIES: usize = 64;

/// Query parameters that carry credentials in the wild.
const QUERY_NAMES: &[&str] = &[
    "access_token",
    "token",
    "id_token",
    "auth_token",
    "jwt",
    "api_key",
    "apikey",
    "api-key",
];

/// Headers other than `Authorization` that carry credentials in the wild.
pub(crate) const OTHER_HEADERS: &[&str] = &[
    "x-auth-token",
    "token",
    "x-access-token",
    "x-api-key",
    "api-key",
    "x-authorization",
    // Set by authenticating proxies (oauth2-proxy, API gateways).
    "x-forwarded-access-token",
    "x-forwarded-authorization",
    "x-id-token",
];

/// Cookie names that carry tokens or sessions in the wild.
const COOKIE_NAMES: &[&str] = &[
    "access_token",
    "token",
    "id_token",
    "auth_token",
    "jwt",
    "session",
    "sessionid",
    "session_id",
    "sid",
    "auth",
];

/// Headers that show a request came through a proxy (besides any `X-Forwarded-*`).
const PROXY_HEADERS: &[&str] = &["forwarded", "via", "x-real-ip"];

/// What the request says about credentials, borrowed from it. `Authorization` and the
/// query are read up front (every decision needs them); other headers, cookies and proxy
/// headers only when a failure needs explaining.
#[derive(Debug)]
pub(crate) struct Scan<'a> {
    headers: &'a HeaderMap,
    /// The `Authorization` field values (at most two kept: two is already a conflict).
    pub authorization: [Option<&'a [u8]>; 2],
    pub authorization_count: usize,
    /// The first credential-like query parameter: its name and raw value.
    pub query: Option<(&'static str, &'a str)>,
}

impl<'a> Scan<'a> {
    /// Scans headers and the query string.
    pub fn new(headers: &'a HeaderMap, uri: &'a Uri) -> Self {
        let mut scan = Scan {
            headers,
            authorization: [None; 2],
            authorization_count: 0,
            query: None,
        };
        for value in headers.get_all(AUTHORIZATION) {
            if scan.authorization_count < 2 {
                scan.authorization[scan.authorization_count] = Some(value.as_bytes());
            }
            scan.authorization_count += 1;
        }
        if let Some(q) = uri.query() {
            scan.query = find_query(q);
        }
        scan
    }

    /// The first credential-like header other than `Authorization`.
    pub fn header(&self) -> Option<(&'static str, &'a [u8])> {
        OTHER_HEADERS.iter().find_map(|&name| {
            self.headers
                .get(name)
                .map(|v| (name, v.as_bytes()))
                .filter(|(_, v)| !v.is_empty())
        })
    }

    /// The first credential-like cookie (a known name, or a JWT-shaped value).
    pub fn cookie(&self) -> Option<(&'a str, &'a str)> {
        find_cookie(self.headers, |name, value| {
            COOKIE_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name)) || looks_like_jwt(value)
        })
    }

    /// `Forwarded`, `Via`, `X-Real-IP` or any `X-Forwarded-*` present.
    pub fn proxied(&self) -> bool {
        PROXY_HEADERS.iter().any(|h| self.headers.contains_key(*h))
            || self
                .headers
                .keys()
                .any(|k| k.as_str().starts_with("x-forwarded-"))
    }

    /// The single `Authorization` value, if exactly one was sent.
    pub fn authorization(&self) -> Option<&'a [u8]> {
        if self.authorization_count == 1 {
            self.authorization[0]
        } else {
            None
        }
    }
}

fn find_query(query: &str) -> Option<(&'static str, &str)> {
    let query = cut(query, MAX_SCAN);
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if value.is_empty() {
            return None;
        }
        QUERY_NAMES
            .iter()
            .find(|n| n.eq_ignore_ascii_case(name))
            .map(|&n| (n, value))
    })
}

/// The first cookie for which `pick(name, value)` holds, across all `Cookie` fields.
pub(crate) fn find_cookie(
    headers: &HeaderMap,
    mut pick: impl FnMut(&str, &str) -> bool,
) -> Option<(&str, &str)> {
    let mut seen = 0;
    for field in headers.get_all(COOKIE) {
        let Ok(text) = std::str::from_utf8(field.as_bytes()) else {
            continue;
        };
        for pair in cut(text, MAX_SCAN).split(';') {
            seen += 1;
            if seen > MAX_COOKIES {
                return None;
            }
            let Some((name, value)) = pair.trim().split_once('=') else {
                continue;
            };
            let value = value.trim_matches('"');
            if !value.is_empty() && pick(name, value) {
                return Some((name, value));
            }
        }
    }
    None
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
pub(crate) fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(http::header::ORIGIN)
        && headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// An `Authorization` value, split per RFC 9110 §11.4.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
    /// `scheme` followed by whatever came after the first run of spaces (maybe empty).
    Scheme { scheme: &'a str, rest: &'a str },
    /// No scheme: the value itself looks like a token (`eyJ…`, long token68).
    Bare(&'a str),
    /// Not parseable at all.
    Invalid(&'static str),
}

/// Splits an `Authorization` value into scheme and credentials.
pub(crate) fn parse_authorization(raw: &[u8]) -> Parsed<'_> {
    if raw.len() > MAX_AUTHORIZATION {
        return Parsed::Invalid("the Authorization value is longer than 18 KiB");
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return Parsed::Invalid("the Authorization value is not UTF-8");
    };
    if text
        .bytes()
        .any(|b| b != b' ' && b != b'\t' && !(0x21..=0x7e).contains(&b))
    {
        return Parsed::Invalid("the Authorization value contains control or non-ASCII bytes");
    }
    let text = text.trim_matches([' ', '\t']);
    if text.is_empty() {
        return Parsed::Invalid("the Authorization value is empty");
    }
    match text.split_once([' ', '\t']) {
        Some((scheme, rest)) if scheme.bytes().all(is_tchar) => Parsed::Scheme {
            scheme,
            rest: rest.trim_start_matches([' ', '\t']),
        },
        Some(_) => Parsed::Invalid("the Authorization scheme is not a token"),
        None if looks_like_bare_token(text) => Parsed::Bare(text),
        // `Authorization: Bearer` alone is a scheme with nothing after it; any other single
        // word is more likely a credential than a scheme.
        None if is_known_scheme(text) => Parsed::Scheme {
            scheme: text,
            rest: "",
        },
        None if is_token68(text) => Parsed::Bare(text),
        None => Parsed::Invalid("the Authorization value is neither a scheme nor a token"),
    }
}

/// The credentials of an `Authorization` value: what follows the scheme and its
/// separating spaces or tabs (the whole value when there is no scheme). Fingerprints are
/// taken of this part, so one token has one fingerprint wherever it was sent.
pub(crate) fn credential_part(raw: &[u8]) -> &[u8] {
    let raw = raw.trim_ascii();
    match raw.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => raw[i + 1..].trim_ascii_start(),
        None => raw,
    }
}

/// Authentication schemes seen in the wild (IANA's registry and common custom ones).
/// A scheme name outside this list is printed in logs and answers as `unrecognized`:
/// it may be a credential sent without a scheme.
const KNOWN_SCHEMES: &[&str] = &[
    "basic",
    "bearer",
    "digest",
    "negotiate",
    "ntlm",
    "hoba",
    "mutual",
    "vapid",
    "scram-sha-1",
    "scram-sha-256",
    "aws4-hmac-sha256",
    "privatetoken",
    "concealed",
    "dpop",
    "gnap",
    "oauth",
    "mac",
    "jwt",
    "token",
    "apikey",
    "api-key",
    "api_key",
    "x-api-key",
    "key",
    "sharedkey",
    "ssws",
    "hawk",
    "signature",
    "kerberos",
    "cookie",
];

/// Whether `scheme` is a known authentication scheme name.
pub(crate) fn is_known_scheme(scheme: &str) -> bool {
    KNOWN_SCHEMES.iter().any(|k| k.eq_ignore_ascii_case(scheme))
}

/// A scheme as it may appear in a log line or an answer: its name when it is a known
/// scheme, `unrecognized` otherwise (it may be a secret sent without a scheme).
pub(crate) fn printable_scheme(scheme: &str) -> &str {
    if is_known_scheme(scheme) {
        scheme
    } else {
        "unrecognized"
    }
}

/// RFC 9110 token68: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub(crate) fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// `eyJ…` with two dots (JWS) or four (JWE).
pub(crate) fn looks_like_jwt(s: &str) -> bool {
    s.starts_with("eyJ") && matches!(s.bytes().filter(|&b| b == b'.').count(), 2 | 4)
}

/// A value with no scheme that is a token rather than a scheme name: JWT-shaped, or a
/// long token68 (scheme names are short words).
fn looks_like_bare_token(s: &str) -> bool {
    looks_like_jwt(s) || (is_token68(s) && (s.len() >= 20 || s.contains(['.', '=', '/', '+'])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_scheme_and_rest() {
        assert_eq!(
            parse_authorization(b"bearer   abc"),
            Parsed::Scheme {
                scheme: "bearer",
                rest: "abc"
            }
        );
        assert_eq!(
            parse_authorization(b"Bearer"),
            Parsed::Scheme {
                scheme: "Bearer",
                rest: ""
            }
        );
        assert!(matches!(
            parse_authorization(b"eyJhbGciOiJIUzI1NiJ9.e30.sig"),
            Parsed::Bare(_)
        ));
        assert!(matches!(
            parse_authorization(b"Bearer \x01x"),
            Parsed::Invalid(_)
        ));
        assert!(matches!(parse_authorization(b"\xff"), Parsed::Invalid(_)));
    }

    #[test]
    fn token68() {
        assert!(is_token68("abc.DEF-_~+/=="));
        assert!(!is_token68("a b"));
        assert!(!is_token68("=="));
        assert!(!is_token68("a=b"));
        assert!(!is_token68("\"abc\""));
    }

    #[test]
    fn query_names_only_with_values() {
        assert_eq!(
            find_query("a=1&access_token=xyz"),
            Some(("access_token", "xyz"))
        );
        assert_eq!(find_query("token="), None);
        assert_eq!(find_query("tokenize=1"), None);
    }
}
