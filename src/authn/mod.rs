//! Authenticators, one file per scheme, and the decision of which one a request goes to.

pub(crate) mod api_key;
pub(crate) mod basic;
pub(crate) mod jwt;
pub(crate) mod principal;
pub(crate) mod session;
pub(crate) mod verify;

use crate::credentials::{
    credential_part, find_cookie, is_token68, looks_like_jwt, parse_authorization,
    printable_scheme, spoken_scheme, Parsed, Scan, OTHER_HEADERS,
};
use crate::failure::{AuthFailure, Location};
use crate::infer::{basic_wraps_token, hint};
use crate::reason::Reason;
use crate::sanitize::{cap, fingerprint};
use crate::secret::Secret;
use api_key::{ApiKey, ApiKeyAuthenticator, MAX_KEY};
use basic::{decode_basic, BasicAuthenticator};
use http::{HeaderMap, Uri};
use jwt::JwtAuthenticator;
pub(crate) use principal::Principal;
use session::{SessionAuthenticator, SessionCookie, MAX_SESSION};
use std::borrow::Cow;
use std::sync::Arc;
use verify::AuthFuture;

/// A configured way to authenticate. The order of configuration is the order of
/// challenges, except that Basic always comes first (RFC 9110 §11.3).
#[derive(Clone, Debug)]
pub(crate) enum Scheme {
    Bearer(Arc<JwtAuthenticator>),
    Basic(BasicAuthenticator),
    ApiKey(ApiKeyAuthenticator),
    Session(SessionAuthenticator),
}

impl Scheme {
    /// The auth-scheme of its challenge.
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Bearer(_) => "Bearer",
            Scheme::Basic(_) => "Basic",
            Scheme::ApiKey(_) => "ApiKey",
            Scheme::Session(_) => "Cookie",
        }
    }

    /// What a person should send, e.g. `Bearer`, `X-API-Key header`, `cookie sid`.
    fn describe(&self) -> Cow<'static, str> {
        match self {
            Scheme::Bearer(_) | Scheme::Basic(_) => Cow::Borrowed(self.name()),
            Scheme::ApiKey(k) => Cow::Owned(format!("{} header", k.header_display)),
            Scheme::Session(s) => Cow::Owned(format!("cookie {}", cap(&s.cookie))),
        }
    }

    /// How to send this credential, for hints.
    fn how_to_send(&self) -> String {
        match self {
            Scheme::Bearer(_) => "`Authorization: Bearer <token>`".to_owned(),
            Scheme::Basic(_) => "`Authorization: Basic base64(user:password)`".to_owned(),
            Scheme::ApiKey(k) => format!("`{}: <key>`", k.header_display),
            Scheme::Session(s) => format!("the `{}` cookie", cap(&s.cookie)),
        }
    }

    /// Whether the credential this scheme reads must not be cached by shared caches
    /// (RFC 9110 §16.4.2: caches key on `Authorization`, not on other headers or cookies).
    pub fn cache_private(&self) -> bool {
        matches!(self, Scheme::ApiKey(_) | Scheme::Session(_))
    }
}

pub(crate) fn expected_names(schemes: &[Scheme]) -> Cow<'static, str> {
    match schemes {
        [one] => one.describe(),
        many => Cow::Owned(
            many.iter()
                .map(Scheme::describe)
                .collect::<Vec<_>>()
                .join(" or "),
        ),
    }
}

/// What the layer does with a request.
pub(crate) enum Decision {
    /// Verified on the spot (a JWT with static keys).
    Authenticated(Principal),
    /// Handed to the application's verifier; failures get `facts` attached.
    Pending(Pending),
    /// Refused.
    Rejected(AuthFailure),
}

/// An application verifier at work, and what to say about its failures.
pub(crate) struct Pending {
    pub fut: AuthFuture,
    pub scheme: &'static str,
    pub private: bool,
    expected: Cow<'static, str>,
    location: Location,
    secret_hash: String,
    /// The Basic user name, and whether the password was empty.
    user: Option<(String, bool)>,
}

/// How a user name that may be a secret appears in the log.
pub(crate) fn unverified_user(user: &str) -> String {
    format!("<unverified user fp:{}>", fingerprint(user.as_bytes()))
}

impl Pending {
    fn new(fut: AuthFuture, scheme: &Scheme, location: Location, secret: &[u8]) -> Self {
        Self {
            fut,
            scheme: scheme.name(),
            private: scheme.cache_private(),
            expected: scheme.describe(),
            location,
            secret_hash: fingerprint(secret),
            user: None,
        }
    }

    /// Completes a failure from the verifier with where the credential was and whose.
    pub fn annotate(&mut self, failure: AuthFailure) -> AuthFailure {
        let mut f = failure
            .with_location(self.location.clone())
            .with_fingerprint(std::mem::take(&mut self.secret_hash));
        if f.facts.user.is_none() {
            if let Some((user, empty_password)) = &self.user {
                // A name the store does not know (or sent with no password) may be a
                // password or key typed into the wrong field: log only its fingerprint.
                f = if f.reason == Reason::BasicUserUnknown || *empty_password {
                    f.user(&unverified_user(user))
                } else {
                    f.user(user)
                };
            }
        }
        if f.facts.expected_scheme.is_none() {
            f.facts.expected_scheme = Some(self.expected.clone());
        }
        if f.facts.received_scheme.is_none() {
            f.facts.received_scheme = Some(cap(self.scheme));
        }
        f
    }
}

/// Decides where the request's credential is, hands it to the matching scheme, and
/// names the transport problem when there is none to hand over.
///
/// The first credential that matches a configured scheme decides: `Authorization` with
/// a configured scheme, then the API key header, the API key query parameter (if allowed),
/// the session cookie.
pub(crate) fn authenticate(headers: &HeaderMap, uri: &Uri, schemes: &[Scheme]) -> Decision {
    let scan = Scan::new(headers, uri);
    let expected = || expected_names(schemes);
    let fail = |reason: Reason, location: Location| {
        let mut f = AuthFailure::new(reason).with_location(location);
        f.facts.expected_scheme = Some(expected());
        f
    };

    let query_key = schemes.iter().find_map(|s| match s {
        Scheme::ApiKey(k) => k
            .query
            .as_deref()
            .and_then(|q| query_param(uri, q).map(|v| (s, k, q, v))),
        _ => None,
    });
    if let Some(f) = conflict(&scan, headers, schemes, query_key.map(|(_, _, q, _)| q)) {
        let mut f = f;
        f.facts.expected_scheme = Some(expected());
        return Decision::Rejected(f);
    }
    let authorization = scan.authorization();

    // 1. Authorization with a configured scheme.
    let parsed = authorization.map(parse_authorization);
    if let Some(Parsed::Scheme { scheme, rest }) = &parsed {
        for s in schemes {
            if !s.name().eq_ignore_ascii_case(scheme) {
                continue;
            }
            match s {
                Scheme::Bearer(jwt) => {
                    return match bearer(jwt, rest) {
                        Ok(p) => Decision::Authenticated(p),
                        Err(f) => Decision::Rejected(f),
                    }
                }
                Scheme::Basic(basic) => {
                    let creds = match basic_token(rest).and_then(decode_basic) {
                        Ok(c) => c,
                        Err(f) => {
                            let mut f = f
                                .with_location(Location::Authorization)
                                .with_fingerprint(fingerprint(rest.as_bytes()));
                            f.facts.expected_scheme = Some(Cow::Borrowed("Basic"));
                            f.facts.received_scheme = Some(cap("Basic"));
                            return Decision::Rejected(f);
                        }
                    };
                    let user = (creds.user.clone(), creds.password.is_empty());
                    let mut p = Pending::new(
                        basic.start(creds),
                        s,
                        Location::Authorization,
                        rest.as_bytes(),
                    );
                    p.user = Some(user);
                    return Decision::Pending(p);
                }
                _ => {}
            }
        }
    }

    // 2. Other configured credentials: API key headers, an allowed API key query
    // parameter, then session cookies.
    for s in schemes {
        if let Scheme::ApiKey(k) = s {
            if let Some(v) = headers.get(&k.header) {
                let location = Location::Header(Cow::Owned(k.header.as_str().to_owned()));
                return key_decision(s, k, location, v.as_bytes());
            }
        }
    }
    if let Some((scheme, k, q, v)) = query_key {
        let location = Location::Query(Cow::Owned(cap(q).to_string()));
        return key_decision(scheme, k, location, v.as_bytes());
    }
    for s in schemes {
        if let Scheme::Session(sess) = s {
            let location = Location::Cookie(Cow::Owned(cap(&sess.cookie).to_string()));
            let lookup = find_cookie(headers, |name, _| name == sess.cookie);
            if let Some(detail) = lookup.over_cap_text() {
                // Not read, so not known to be missing: say why.
                let mut f = AuthFailure::new(Reason::SessionInvalid)
                    .with_location(location)
                    .detail(detail)
                    .tag(hint::COOKIE_OVER_CAP)
                    .hint("Send fewer or smaller cookies: the browser holds more for this site than a server reads.");
                f.facts.expected_scheme = Some(s.describe());
                return Decision::Rejected(f);
            }
            if let Some((_, value)) = lookup.found() {
                if value.len() > MAX_SESSION {
                    let mut f = AuthFailure::new(Reason::SessionInvalid)
                        .with_location(location)
                        .detail("the session cookie is longer than 4 KiB")
                        .with_fingerprint(fingerprint(value.as_bytes()));
                    f.facts.expected_scheme = Some(s.describe());
                    return Decision::Rejected(f);
                }
                let fut = sess.start(SessionCookie(Secret::new(value)));
                return Decision::Pending(Pending::new(fut, s, location, value.as_bytes()));
            }
        }
    }

    // 3. Nothing matched: name the transport problem.
    if let Some(parsed) = parsed {
        let raw = authorization.unwrap_or_default();
        let f = match parsed {
            Parsed::Invalid(why) => {
                let mut f = fail(Reason::AuthorizationMalformed, Location::Authorization)
                    .detail(why)
                    .with_fingerprint(fingerprint(raw));
                f.facts.received_scheme = spoken_scheme(raw).map(cap);
                f
            }
            Parsed::Bare(token) => {
                let mut f = fail(Reason::SchemePrefixMissing, Location::Authorization)
                    .with_fingerprint(fingerprint(token.as_bytes()))
                    .detail(if looks_like_jwt(token) {
                        "the Authorization value is a bare JWT without `Bearer `"
                    } else {
                        "the Authorization value is a bare token without a scheme"
                    });
                if let Some(t) = jwt::inspect(token) {
                    f = f.with_token(t).tag(hint::BARE_JWT);
                }
                f
            }
            Parsed::Scheme { scheme, rest } => {
                let key = schemes.iter().find_map(|s| match s {
                    Scheme::ApiKey(k) => Some(k),
                    _ => None,
                });
                let mut f = match key {
                    Some(k) if API_KEY_SCHEMES.iter().any(|n| n.eq_ignore_ascii_case(scheme)) => {
                        fail(Reason::CredentialsWrongLocation, Location::Authorization)
                            .detail(format!(
                                "an API key was sent in Authorization (scheme {}), but this resource reads it from the {} header",
                                cap(printable_scheme(scheme)),
                                k.header_display
                            ))
                            .hint(format!("Send the key as `{}: <key>`.", k.header_display))
                    }
                    _ => fail(Reason::SchemeNotAccepted, Location::Authorization).detail(format!(
                        "Authorization uses {}, this resource accepts {}",
                        cap(printable_scheme(scheme)),
                        expected()
                    )),
                };
                f.facts.received_scheme = Some(cap(printable_scheme(scheme)));
                if scheme.eq_ignore_ascii_case("basic") && basic_wraps_token(rest) {
                    f = f
                        .tag(hint::BASIC_WRAPPED_TOKEN)
                        .hint("A token was sent with the Basic scheme: send it as `Authorization: Bearer <token>`.");
                }
                f.with_fingerprint(fingerprint(rest.as_bytes()))
            }
        };
        return Decision::Rejected(f);
    }

    let wrong = |location: Location, secret: &[u8], what: String| {
        fail(Reason::CredentialsWrongLocation, location)
            .detail(format!("{what}, but this resource expects {}", expected()))
            .with_fingerprint(fingerprint(secret))
    };
    if let Some((name, value)) = scan.query {
        return Decision::Rejected(
            wrong(
                Location::Query(Cow::Borrowed(name)),
                value.as_bytes(),
                format!("a credential was sent in the `{name}` query parameter"),
            )
            .tag(hint::QUERY)
            .hint("Query strings end up in logs and browser history: send the credential in a header."),
        );
    }
    let configured_header = |name: &str| {
        schemes
            .iter()
            .any(|s| matches!(s, Scheme::ApiKey(k) if k.header == name))
    };
    let other_header = OTHER_HEADERS
        .iter()
        .filter(|n| !configured_header(n))
        .find_map(|&n| headers.get(n).filter(|v| !v.is_empty()).map(|v| (n, v)));
    if let Some((name, value)) = other_header {
        let f = wrong(
            Location::Header(Cow::Borrowed(name)),
            value.as_bytes(),
            format!("a credential was sent in the `{name}` header"),
        );
        return Decision::Rejected(if name.contains("api-key") {
            f
        } else {
            f.tag(hint::NONSTANDARD_HEADER)
        });
    }
    let cookies = scan.cookie();
    if let Some((name, value)) = cookies.found() {
        return Decision::Rejected(
            wrong(
                Location::Cookie(Cow::Owned(cap(name).to_string())),
                value.as_bytes(),
                format!("a credential was sent in the `{}` cookie", cap(name)),
            )
            .tag(hint::COOKIE),
        );
    }

    let mut f =
        AuthFailure::new(Reason::CredentialsMissing).detail(match cookies.over_cap_text() {
            Some(why) => format!("no credentials; expected {}; {why}", expected()),
            None => format!("no credentials; expected {}", expected()),
        });
    if cookies.over_cap_text().is_some() {
        f = f.tag(hint::COOKIE_OVER_CAP);
    }
    f.facts.expected_scheme = Some(expected());
    let how = schemes
        .iter()
        .map(Scheme::how_to_send)
        .collect::<Vec<_>>()
        .join(" or ");
    f = if scan.proxied() {
        f.tag(hint::PROXY).hint(format!(
            "The request came through a proxy (Forwarded, X-Forwarded-* or Via is present) \
             and carries no Authorization: the proxy may have stripped it. Expected {how}."
        ))
    } else {
        f.hint(format!(
            "Send {how}; if you did, a proxy or redirect may have dropped it."
        ))
    };
    Decision::Rejected(f)
}

/// More than one credential method in one request (400 `credentials_conflict`): two
/// `Authorization` fields, two fields of one API-key header, `Authorization` and an
/// `access_token` query parameter (RFC 6750 §2.3; no other query name: `?token=page2` is
/// pagination as often as a credential), or an allowed API-key query parameter beside a
/// credential header.
fn conflict(
    scan: &Scan<'_>,
    headers: &HeaderMap,
    schemes: &[Scheme],
    query_key: Option<&str>,
) -> Option<AuthFailure> {
    let base = |location: Location, secret: &[u8], spoken: Option<&str>| {
        let mut f = AuthFailure::new(Reason::CredentialsConflict)
            .with_location(location)
            .with_fingerprint(fingerprint(secret));
        f.facts.received_scheme = spoken.map(cap);
        f
    };
    if scan.authorization_count > 1 {
        let first = scan.authorization[0].unwrap_or_default();
        return Some(
            base(
                Location::Authorization,
                credential_part(first),
                spoken_scheme(first),
            )
            .detail(format!(
                "the request has {} Authorization header fields; send exactly one",
                scan.authorization_count
            )),
        );
    }
    for k in schemes.iter().filter_map(|s| match s {
        Scheme::ApiKey(k) => Some(k),
        _ => None,
    }) {
        let mut fields = headers.get_all(&k.header).iter();
        if let (Some(first), Some(_)) = (fields.next(), fields.next()) {
            let location = Location::Header(Cow::Owned(k.header.as_str().to_owned()));
            return Some(
                base(location, first.as_bytes(), Some("ApiKey"))
                    .detail(format!(
                        "the request has {} {} header fields; send exactly one",
                        headers.get_all(&k.header).iter().count(),
                        k.header_display
                    ))
                    .hint(format!("Send one `{}: <key>` header.", k.header_display)),
            );
        }
    }
    let authorization = scan.authorization();
    if let (Some(raw), true) = (authorization, scan.access_token) {
        return Some(
            base(
                Location::Authorization,
                credential_part(raw),
                spoken_scheme(raw),
            )
            .detail(
                "the request has an Authorization header and an `access_token` query \
                 parameter; send one",
            )
            .tag(hint::QUERY),
        );
    }
    let name = query_key?;
    let key_header = schemes.iter().find_map(|s| match s {
        Scheme::ApiKey(k) => headers.get(&k.header).map(|v| (k, v)),
        _ => None,
    });
    let (location, what, secret, spoken) = match (authorization, key_header) {
        (Some(raw), _) => (
            Location::Authorization,
            "an Authorization header".to_owned(),
            credential_part(raw),
            spoken_scheme(raw),
        ),
        (None, Some((k, v))) => (
            Location::Header(Cow::Owned(k.header.as_str().to_owned())),
            format!("a {} header", k.header_display),
            v.as_bytes(),
            Some("ApiKey"),
        ),
        (None, None) => return None,
    };
    Some(
        base(location, secret, spoken)
            .detail(format!(
                "the request has {what} and a `{}` query parameter; send one",
                cap(name)
            ))
            .tag(hint::QUERY),
    )
}

/// Authorization schemes people use for API keys.
const API_KEY_SCHEMES: &[&str] = &[
    "apikey",
    "api-key",
    "api_key",
    "x-api-key",
    "key",
    "token",
    "bearer",
];

fn key_decision(
    scheme: &Scheme,
    k: &ApiKeyAuthenticator,
    location: Location,
    raw: &[u8],
) -> Decision {
    let bad = |detail: &str| {
        let mut f = AuthFailure::new(Reason::ApiKeyUnknown)
            .with_location(location.clone())
            .detail(detail)
            .with_fingerprint(fingerprint(raw));
        f.facts.expected_scheme = Some(scheme.describe());
        Decision::Rejected(f)
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
    let fut = k.start(ApiKey(Secret::new(text)));
    Decision::Pending(Pending::new(fut, scheme, location, raw))
}

/// The value of query parameter `name` (raw, not percent-decoded).
fn query_param<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, v)| *n == name && !v.is_empty())
        .map(|(_, v)| v)
}

/// The token68 after `Basic `.
fn basic_token(rest: &str) -> Result<&str, AuthFailure> {
    if rest.is_empty() {
        return Err(
            AuthFailure::new(Reason::BasicMalformed).detail("`Basic` is followed by nothing")
        );
    }
    if rest.contains([' ', '\t']) || !is_token68(rest) {
        return Err(AuthFailure::new(Reason::BasicMalformed)
            .detail("the Basic credentials are not one base64 value"));
    }
    Ok(rest)
}

/// The credentials after `Bearer `: one token68 value, then the JWT checks.
fn bearer(jwt: &JwtAuthenticator, rest: &str) -> Result<Principal, AuthFailure> {
    let malformed = |detail: &str| {
        let mut f = AuthFailure::new(Reason::AuthorizationMalformed)
            .with_location(Location::Authorization)
            .detail(detail);
        f.facts.expected_scheme = Some(Cow::Borrowed("Bearer"));
        f.facts.received_scheme = Some(cap("Bearer"));
        f
    };
    if rest.is_empty() {
        return Err(malformed("`Bearer` is followed by no token"));
    }
    if let Some((first, _)) = rest.split_once([' ', '\t']) {
        let f = if first.eq_ignore_ascii_case("bearer") {
            malformed("the scheme is doubled: `Bearer Bearer <token>`")
                .tag(hint::DOUBLED_PREFIX)
                .hint("Remove the second `Bearer `: the client or a proxy added the prefix twice.")
        } else {
            malformed("the Bearer credentials contain whitespace; a token is one token68 value")
        };
        return Err(f.with_fingerprint(fingerprint(rest.as_bytes())));
    }
    if !is_token68(rest) {
        let detail = if rest.starts_with('"') {
            "the token is quoted; send it without quotes"
        } else {
            "the token has characters outside token68"
        };
        return Err(malformed(detail).with_fingerprint(fingerprint(rest.as_bytes())));
    }
    match jwt.verify(rest) {
        Ok(v) => Ok(Principal::from_jwt(v.claims)),
        Err(f) => {
            let mut f = f
                .with_location(Location::Authorization)
                .with_fingerprint(fingerprint(rest.as_bytes()));
            f.facts.expected_scheme = Some(Cow::Borrowed("Bearer"));
            f.facts.received_scheme = Some(cap("Bearer"));
            Err(f)
        }
    }
}
