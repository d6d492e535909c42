//! One scan of a request: every credential-like thing in it (`Authorization`, the query
//! string, other common headers, cookies), where it is, which scheme it spoke, and what a
//! failure to authenticate it means when no scheme took it. The layer's own rejections
//! and the diagnosis of the wrapped service's 401/403 both explain from here, in one
//! wording.
//!
//! Nothing here allocates on the success path; values are borrowed from the request and
//! never leave this crate except as fingerprints.

use crate::challenge::is_tchar;
use crate::failure::{AuthFailure, Location, Text, TokenFacts};
use crate::jws::inspect;
use crate::reason::Reason;
use crate::sanitize::{cap, fingerprint};
use crate::scheme::Scheme;
use crate::time::{ago, now, rfc3339};
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName, Method, Uri};
use std::borrow::Cow;

/// Stable codes for the `hints` log field.
pub(crate) mod hint {
    /// `Forwarded`/`X-Forwarded-*`/`Via` present and no credentials.
    pub(crate) const PROXY: &str = "proxy_may_have_stripped_authorization";
    /// A token in the query string.
    pub(crate) const QUERY: &str = "token_in_query";
    /// A token in `X-Auth-Token`, `Token`, `X-Access-Token` or a similar header.
    pub(crate) const NONSTANDARD_HEADER: &str = "token_in_nonstandard_header";
    /// A token in a cookie.
    pub(crate) const COOKIE: &str = "token_in_cookie";
    /// `Authorization: eyJ…` without `Bearer `.
    pub(crate) const BARE_JWT: &str = "bare_jwt";
    /// `Bearer Bearer …`.
    pub(crate) const DOUBLED_PREFIX: &str = "doubled_prefix";
    /// A JWT sent with the Basic scheme (as is, or base64-wrapped).
    pub(crate) const BASIC_WRAPPED_TOKEN: &str = "basic_wrapped_token";
    /// The `Cookie` header is over the caps and was not read.
    pub(crate) const COOKIE_OVER_CAP: &str = "cookie_header_over_cap";
    /// The wrapped service adds CORS headers: CORS sits inside the auth layer.
    pub(crate) const CORS_INSIDE_AUTH: &str = "cors_inside_auth";
}

/// Longest `Authorization` value we parse; anything longer is malformed. It leaves room
/// for a scheme in front of the longest token `jwt.rs` decodes.
pub(crate) const MAX_AUTHORIZATION: usize = 18 * 1024;
/// How much of the query string we scan.
const MAX_SCAN: usize = 8 * 1024;
/// The longest `Cookie` header we read, all its fields together (browsers send at most
/// 4 KiB per cookie; servers such as Node.js refuse 16 KiB of headers in all).
pub(crate) const MAX_COOKIE_BYTES: usize = 16 * 1024;
/// The most cookies we read, all `Cookie` fields together.
pub(crate) const MAX_COOKIES: usize = 256;

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

/// The position of `name` in [`OTHER_HEADERS`]. Names are compared as parsed (lower-case),
/// so a request's headers are matched in one pass without looking each known name up.
fn other_header_index(name: &HeaderName) -> Option<usize> {
    let name = name.as_str();
    OTHER_HEADERS.iter().position(|&n| n == name)
}

// `other_header` marks the names it has seen in a `u32`.
const _: () = assert!(OTHER_HEADERS.len() <= 32);

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
pub(crate) struct Evidence<'a> {
    headers: &'a HeaderMap,
    uri: &'a Uri,
    /// The request's method, where the caller knows it (DPoP proofs name it).
    pub method: Option<&'a Method>,
    /// The `Authorization` field values (at most two kept: two is already a conflict); a
    /// lone empty one is none.
    authorization: [Option<&'a [u8]>; 2],
    pub authorization_count: usize,
    /// The first credential-like query parameter: its name and raw value.
    pub query: Option<(&'static str, &'a str)>,
    /// An `access_token` query parameter with a value: the one query name that is a way to
    /// send a Bearer token (RFC 6750 §2.3), so the only one that conflicts with a header.
    pub access_token: bool,
    /// The single `Authorization` value, split into scheme and credentials.
    parsed: Option<Parsed<'a>>,
    /// The client certificate the request presents, where the layer has a certificate
    /// source (RFC 8705 binding; `None`: no source).
    pub certificate: Option<crate::certificate::Presented>,
}

impl<'a> Evidence<'a> {
    /// Scans `Authorization` and the query string.
    pub(crate) fn new(headers: &'a HeaderMap, uri: &'a Uri) -> Self {
        let mut scan = Evidence {
            headers,
            uri,
            method: None,
            authorization: [None; 2],
            authorization_count: 0,
            query: None,
            access_token: false,
            parsed: None,
            certificate: None,
        };
        for value in headers.get_all(AUTHORIZATION) {
            if scan.authorization_count < 2 {
                scan.authorization[scan.authorization_count] = Some(value.as_bytes());
            }
            scan.authorization_count += 1;
        }
        // A lone empty field carries no authentication information (RFC 6750 §3.1): no
        // credential, not a malformed one. Beside another field it is still a second one.
        if scan.authorization_count == 1
            && scan.authorization[0].is_some_and(|v| v.trim_ascii().is_empty())
        {
            scan.authorization = [None; 2];
            scan.authorization_count = 0;
        }
        if let Some(q) = uri.query() {
            (scan.query, scan.access_token) = find_query(q);
        }
        scan.parsed = scan.authorization().map(parse_authorization);
        scan
    }

    /// The credentials after the scheme word, when the single `Authorization` speaks `kind`.
    pub(crate) fn spoken(&self, kind: Scheme) -> Option<&'a str> {
        match self.parsed {
            Some(Parsed::Scheme { scheme, rest }) if Scheme::from_word(scheme) == Some(kind) => {
                Some(rest)
            }
            _ => None,
        }
    }

    /// The scheme word and credentials of the single `Authorization`, when it has a scheme.
    pub(crate) fn scheme_and_rest(&self) -> Option<(&'a str, &'a str)> {
        match self.parsed {
            Some(Parsed::Scheme { scheme, rest }) => Some((scheme, rest)),
            _ => None,
        }
    }

    pub(crate) fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    pub(crate) fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The first `Authorization` value, whatever their number.
    pub(crate) fn first_authorization(&self) -> Option<&'a [u8]> {
        self.authorization[0]
    }

    /// The raw value of query parameter `name` (not percent-decoded), when it has one.
    pub(crate) fn query_param(&self, name: &str) -> Option<&'a str> {
        self.uri
            .query()?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(n, v)| *n == name && !v.is_empty())
            .map(|(_, v)| v)
    }

    /// The first credential-like header other than `Authorization` that `skip` (the
    /// headers a configured scheme reads) does not name.
    pub(crate) fn other_header(
        &self,
        skip: &dyn Fn(&str) -> bool,
    ) -> Option<(&'static str, &'a [u8])> {
        // One pass over the request's own (few) headers, instead of a parsed, hashed lookup
        // per known name. The earliest name in `OTHER_HEADERS` wins, and only a name's first
        // value counts (what `HeaderMap::get` reads; `iter` yields it first).
        let mut best: Option<(usize, &'a [u8])> = None;
        let mut seen = 0u32;
        for (name, value) in self.headers {
            let Some(i) = other_header_index(name) else {
                continue;
            };
            if seen & (1 << i) != 0 {
                continue;
            }
            seen |= 1 << i;
            if best.is_some_and(|(b, _)| b < i) || value.is_empty() || skip(OTHER_HEADERS[i]) {
                continue;
            }
            best = Some((i, value.as_bytes()));
        }
        best.map(|(i, value)| (OTHER_HEADERS[i], value))
    }

    /// The cookie `name`, as far as the caps allow reading.
    pub(crate) fn cookie_named(&self, name: &str) -> CookieLookup<'a> {
        named_cookie(self.headers, name)
    }

    /// The first credential-like cookie (a known name, or a JWT-shaped value).
    pub(crate) fn cookie(&self) -> CookieLookup<'a> {
        find_cookie(self.headers, |name, value| {
            COOKIE_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name)) || looks_like_jwt(value)
        })
    }

    /// `Forwarded`, `Via`, `X-Real-IP` or any `X-Forwarded-*` present.
    pub(crate) fn proxied(&self) -> bool {
        self.headers.keys().any(|k| {
            let k = k.as_str();
            PROXY_HEADERS.contains(&k) || k.starts_with("x-forwarded-")
        })
    }

    /// The single `Authorization` value, if exactly one was sent.
    pub(crate) fn authorization(&self) -> Option<&'a [u8]> {
        if self.authorization_count == 1 {
            self.authorization[0]
        } else {
            None
        }
    }
}

/// What a route expects, as far as explaining a failure needs.
pub(crate) struct Expected<'s> {
    /// In words: `Bearer`, `Basic or Bearer`, `X-API-Key header`.
    pub names: Cow<'static, str>,
    /// How to send it, for the hint of a missing credential: "`Authorization: Bearer
    /// <token>`". `None` where the layer does not know (the wrapped service decides).
    pub how: Option<Cow<'static, str>>,
    /// Whether a configured scheme reads this header: then it is not "elsewhere".
    pub reads_header: &'s dyn Fn(&str) -> bool,
}

impl<'a> Evidence<'a> {
    /// An `Authorization` value that is not `scheme credentials` at all: one that does not
    /// parse (`authorization_malformed`), or a bare token (`scheme_prefix_missing`).
    pub(crate) fn explain_unparsed(&self) -> Option<AuthFailure> {
        let raw = self.authorization()?;
        let f = match self.parsed? {
            Parsed::Scheme { .. } => return None,
            Parsed::Invalid(why) => AuthFailure::new(Reason::AuthorizationMalformed)
                .detail(why)
                .received(spoken_scheme(raw)),
            Parsed::Bare(token) => {
                let f = AuthFailure::new(Reason::SchemePrefixMissing).detail(
                    if looks_like_jwt(token) {
                        "the Authorization value is a bare JWT without `Bearer `"
                    } else {
                        "the Authorization value is a bare token without a scheme"
                    },
                );
                match inspect(token) {
                    Some(t) => f.token(t).tag(hint::BARE_JWT),
                    None => f,
                }
            }
        };
        Some(
            f.location(Location::Authorization)
                .fingerprint(fingerprint(credential_part(raw))),
        )
    }

    /// The request's credential sits where no accepted scheme reads it (the query, another
    /// header, a cookie), or there is none. With `unverified_time`, a token's own
    /// unverified `exp`/`nbf` comes first: the wrapped service may read any place.
    pub(crate) fn explain_elsewhere(
        &self,
        expected: &Expected<'_>,
        unverified_time: bool,
    ) -> AuthFailure {
        let elsewhere = |location: Location, what: String, value: &[u8], tag: &'static str| {
            let text = std::str::from_utf8(value).unwrap_or("");
            let token = unverified_time.then(|| inspect(text)).flatten();
            let f = token
                .as_ref()
                .and_then(unverified_time_reason)
                .unwrap_or_else(|| {
                    AuthFailure::new(Reason::CredentialsWrongLocation).detail(format!(
                        "a credential was sent in {what}, but this resource expects {}",
                        expected.names
                    ))
                });
            let f = match token {
                Some(t) => f.token(t),
                None => f,
            };
            f.location(location)
                .fingerprint(fingerprint(value))
                .tag(tag)
        };
        if let Some((name, value)) = self.query {
            let what = format!("the `{name}` query parameter");
            let location = Location::Query(Cow::Borrowed(name));
            return elsewhere(location, what, value.as_bytes(), hint::QUERY).hint(
                "Query strings end up in logs and browser history: send the credential in a header.",
            );
        }
        if let Some((name, value)) = self.other_header(expected.reads_header) {
            let tag = if name.contains("api-key") {
                ""
            } else {
                hint::NONSTANDARD_HEADER
            };
            let what = format!("the `{name}` header");
            return elsewhere(Location::Header(Cow::Borrowed(name)), what, value, tag);
        }
        let cookies = self.cookie();
        if let Some((name, value)) = cookies.found() {
            let what = format!("the `{}` cookie", cap(name));
            let location = Location::Cookie(Cow::Owned(cap(name).to_string()));
            return elsewhere(location, what, value.as_bytes(), hint::COOKIE);
        }
        self.explain_missing(expected, cookies)
    }

    /// `credentials_missing`, with what to send, and the proxy that may have stripped it.
    fn explain_missing(&self, expected: &Expected<'_>, cookies: CookieLookup<'_>) -> AuthFailure {
        let mut f = AuthFailure::new(Reason::CredentialsMissing).expected(expected.names.clone());
        f = match cookies.over_cap_text() {
            Some(why) => f
                .detail(format!(
                    "no credentials; expected {}; {why}",
                    expected.names
                ))
                .tag(hint::COOKIE_OVER_CAP),
            // Joined only if something reads it: most such refusals are never read.
            None => f.detail_parts(Text::join(
                "no credentials; expected ",
                expected.names.clone(),
                "",
            )),
        };
        let proxy = "The request came through a proxy (Forwarded, X-Forwarded-* or Via is \
                     present) and carries no Authorization: the proxy may have stripped it.";
        match (&expected.how, self.proxied()) {
            (Some(how), true) => f.tag(hint::PROXY).hint(format!("{proxy} Expected {how}.")),
            (None, true) => f.tag(hint::PROXY).hint(proxy),
            (Some(how), false) => f.hint_parts(Text::join(
                "Send ",
                how.clone(),
                "; if you did, a proxy or redirect may have dropped it.",
            )),
            (None, false) => f,
        }
    }
}

/// `token_expired` or `token_not_yet_valid` from a token's unverified `exp`/`nbf`, without
/// leeway: what the wrapped service most likely refused it for.
pub(crate) fn unverified_time_reason(facts: &TokenFacts) -> Option<AuthFailure> {
    let now = now();
    if let Some(exp) = facts.exp.filter(|&e| e < now) {
        return Some(AuthFailure::new(Reason::TokenExpired).detail(format!(
            "the token's unverified exp says it expired at {} ({} ago)",
            rfc3339(exp),
            ago(exp, now)
        )));
    }
    let nbf = facts.nbf.filter(|&n| n > now)?;
    Some(AuthFailure::new(Reason::TokenNotYetValid).detail(format!(
        "the token's unverified nbf is {} ({} in the future)",
        rfc3339(nbf),
        ago(now, nbf)
    )))
}

/// The first credential-like query parameter, and whether `access_token` has a value.
fn find_query(query: &str) -> (Option<(&'static str, &str)>, bool) {
    let query = cut(query, MAX_SCAN);
    let mut first = None;
    let mut access_token = false;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if value.is_empty() {
            continue;
        }
        // RFC 6750 §2.3 names exactly `access_token`; other spellings only feed the
        // wrong-location diagnosis.
        access_token |= name == "access_token";
        let known = QUERY_NAMES.iter().find(|n| n.eq_ignore_ascii_case(name));
        if let Some(&n) = known {
            first.get_or_insert((n, value));
        }
    }
    (first, access_token)
}

/// Whether a request carries, besides whatever a web page carries anyway (its cookies, a
/// `?token=` that may be a page cursor), a credential in a header or query parameter known
/// to hold one: then optional authentication must not let it through as a guest.
pub(crate) fn carries_more_than_page_state(headers: &HeaderMap, uri: &Uri) -> bool {
    let header = headers.keys().any(|k| other_header_index(k).is_some());
    let query = uri.query().is_some_and(|q| {
        cut(q, MAX_SCAN).split('&').any(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            !value.is_empty()
                && !name.eq_ignore_ascii_case("token")
                && QUERY_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
        })
    });
    header || query
}

/// Whether the query has an `access_token` parameter with a value.
pub(crate) fn query_access_token(uri: &Uri) -> bool {
    uri.query().is_some_and(|q| find_query(q).1)
}

/// What a look for a cookie found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CookieLookup<'a> {
    Found {
        name: &'a str,
        value: &'a str,
    },
    /// The cookie is there, but its value is not UTF-8.
    NotUtf8 {
        value: &'a [u8],
    },
    NotFound,
    /// The `Cookie` header is over [`MAX_COOKIE_BYTES`] or [`MAX_COOKIES`]: not read.
    OverCap {
        bytes: usize,
        cookies: usize,
    },
}

impl<'a> CookieLookup<'a> {
    pub(crate) fn found(self) -> Option<(&'a str, &'a str)> {
        match self {
            CookieLookup::Found { name, value } => Some((name, value)),
            _ => None,
        }
    }

    /// What to tell a person when the header was not read.
    pub(crate) fn over_cap_text(self) -> Option<String> {
        match self {
            CookieLookup::OverCap { bytes, cookies } => Some(format!(
                "the Cookie header has {bytes} bytes in {cookies} cookies, over the cap of \
                 {MAX_COOKIE_BYTES} bytes and {MAX_COOKIES} cookies, so it was not read"
            )),
            _ => None,
        }
    }
}

/// The first cookie for which `pick(name, value)` holds, across all `Cookie` fields, when
/// the whole header is within the caps. A pair whose name or value is not UTF-8 is skipped;
/// the others in its field are still read. A pair without `=` (a bare value) is never
/// picked: it has no name.
fn find_cookie(headers: &HeaderMap, mut pick: impl FnMut(&str, &str) -> bool) -> CookieLookup<'_> {
    if let Some(over) = over_cap(headers) {
        return over;
    }
    for (name, value) in cookie_pairs(headers) {
        let (Ok(name), Ok(value)) = (std::str::from_utf8(name), std::str::from_utf8(value)) else {
            continue;
        };
        if !value.is_empty() && pick(name, value) {
            return CookieLookup::Found { name, value };
        }
    }
    CookieLookup::NotFound
}

/// The cookie named exactly `name`, within the caps; `NotUtf8` when its value is not text.
fn named_cookie<'a>(headers: &'a HeaderMap, want: &str) -> CookieLookup<'a> {
    if let Some(over) = over_cap(headers) {
        return over;
    }
    for (name, value) in cookie_pairs(headers) {
        if name != want.as_bytes() || value.is_empty() {
            continue;
        }
        return match std::str::from_utf8(value) {
            Ok(value) => CookieLookup::Found {
                name: want_str(name),
                value,
            },
            Err(_) => CookieLookup::NotUtf8 { value },
        };
    }
    CookieLookup::NotFound
}

/// A name that compared equal to a `&str`: UTF-8 by construction.
fn want_str(name: &[u8]) -> &str {
    std::str::from_utf8(name).unwrap_or_default()
}

/// `OverCap` when all `Cookie` fields together are over [`MAX_COOKIE_BYTES`] or
/// [`MAX_COOKIES`].
fn over_cap(headers: &HeaderMap) -> Option<CookieLookup<'_>> {
    let fields = headers.get_all(COOKIE);
    let bytes: usize = fields.iter().map(|f| f.len()).sum();
    let cookies: usize = fields
        .iter()
        .map(|f| f.as_bytes().iter().filter(|&&b| b == b';').count() + 1)
        .sum();
    (bytes > MAX_COOKIE_BYTES || cookies > MAX_COOKIES)
        .then_some(CookieLookup::OverCap { bytes, cookies })
}

/// Every `name=value` pair of every `Cookie` field, as bytes, trimmed, the value unquoted.
/// A pair without `=` (a bare value, RFC 6265bis §5.6) has no name and is not listed.
fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers
        .get_all(COOKIE)
        .into_iter()
        .flat_map(|field| field.as_bytes().split(|&b| b == b';'))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            let mut value = pair[eq + 1..].trim_ascii();
            while let [b'"', rest @ ..] = value {
                value = rest;
            }
            while let [rest @ .., b'"'] = value {
                value = rest;
            }
            Some((pair[..eq].trim_ascii(), value))
        })
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    if !visible_or_blank(raw) {
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

/// The known scheme an `Authorization` value starts with, even when the rest of it does not
/// parse (`Basic \x01…`): what the client meant to speak.
pub(crate) fn spoken_scheme(raw: &[u8]) -> Option<&str> {
    let raw = raw.trim_ascii_start();
    let end = raw.iter().position(|&b| b == b' ' || b == b'\t')?;
    let scheme = std::str::from_utf8(&raw[..end]).ok()?;
    is_known_scheme(scheme).then_some(scheme)
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
    // Every byte is looked at, without branching on each: a whole token is checked
    // several bytes at a time (it runs for every token of every request).
    !body.is_empty()
        && body.bytes().fold(true, |all, b| {
            all & (b.is_ascii_alphanumeric()
                | (b == b'-')
                | (b == b'.')
                | (b == b'_')
                | (b == b'~')
                | (b == b'+')
                | (b == b'/'))
        })
}

/// Whether every byte is visible ASCII, a space or a tab (the bytes an `Authorization`
/// value may hold). Every byte is looked at, several at a time.
fn visible_or_blank(raw: &[u8]) -> bool {
    raw.iter().fold(true, |all, &b| {
        all & ((b.wrapping_sub(0x21) < 0x5e) | (b == b' ') | (b == b'\t'))
    })
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
            (Some(("access_token", "xyz")), true)
        );
        assert_eq!(
            find_query("token=page2&access_token=x"),
            (Some(("token", "page2")), true)
        );
        assert_eq!(find_query("token=page2"), (Some(("token", "page2")), false));
        assert_eq!(find_query("token="), (None, false));
        assert_eq!(find_query("access_token="), (None, false));
        assert_eq!(find_query("tokenize=1"), (None, false));
        assert_eq!(
            find_query("ACCESS_TOKEN=x"),
            (Some(("access_token", "x")), false)
        );
    }

    /// The one-pass scan finds what a lookup of each name in turn finds: the earliest
    /// name of the table, its first value only, skipped names passed over.
    #[test]
    fn other_header_matches_lookup_by_name() {
        fn by_name(
            headers: &HeaderMap,
            skip: &dyn Fn(&str) -> bool,
        ) -> Option<(&'static str, Vec<u8>)> {
            OTHER_HEADERS.iter().filter(|n| !skip(n)).find_map(|&name| {
                headers
                    .get(name)
                    .map(|v| (name, v.as_bytes().to_vec()))
                    .filter(|(_, v)| !v.is_empty())
            })
        }
        let values = ["", "a", "b"];
        let names = [
            "x-api-key",
            "token",
            "x-id-token",
            "accept",
            "x-forwarded-for",
            "via",
        ];
        let skips: [&dyn Fn(&str) -> bool; 3] =
            [&|_| false, &|n| n == "token", &|n| n.contains("api-key")];
        let uri = Uri::from_static("/");
        // Every sequence of up to three appended (name, value) pairs.
        let pairs: Vec<(&str, &str)> = names
            .iter()
            .flat_map(|&n| values.iter().map(move |&v| (n, v)))
            .collect();
        let mut cases: Vec<Vec<(&str, &str)>> = vec![Vec::new()];
        let mut last = cases.clone();
        for _ in 0..3 {
            last = last
                .iter()
                .flat_map(|c| {
                    pairs.iter().map(move |&p| {
                        let mut c = c.clone();
                        c.push(p);
                        c
                    })
                })
                .collect();
            cases.extend(last.iter().cloned());
        }
        for case in &cases {
            let mut headers = HeaderMap::new();
            for (name, value) in case {
                headers.append(
                    HeaderName::from_static(name),
                    http::HeaderValue::from_static(value),
                );
            }
            let ev = Evidence::new(&headers, &uri);
            for skip in skips {
                let found = ev.other_header(skip).map(|(n, v)| (n, v.to_vec()));
                assert_eq!(found, by_name(&headers, skip), "{case:?}");
            }
            let proxied = PROXY_HEADERS.iter().any(|h| headers.contains_key(*h))
                || headers
                    .keys()
                    .any(|k| k.as_str().starts_with("x-forwarded-"));
            assert_eq!(ev.proxied(), proxied, "{case:?}");
            let any = OTHER_HEADERS.iter().any(|h| headers.contains_key(*h));
            assert_eq!(
                carries_more_than_page_state(&headers, &uri),
                any,
                "{case:?}"
            );
        }
    }
}
