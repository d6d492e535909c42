//! Zero-configuration diagnosis: when the wrapped service answers 401 or 403 by itself,
//! name the most precise reason the request shows, from its credentials alone. Every
//! reason found here is marked inferred: nothing was verified.

use crate::authn::basic::decode_basic;
use crate::authn::jwt::{inspect, now};
use crate::credentials::{
    credential_part, looks_like_jwt, parse_authorization, printable_scheme, Parsed, Scan,
};
use crate::failure::{AuthFailure, Location, TokenFacts};
use crate::reason::Reason;
use crate::sanitize::{cap, fingerprint, human_duration, rfc3339};
use http::{HeaderMap, Uri};
use std::borrow::Cow;

/// Stable codes for the `hints` log field.
pub(crate) mod hint {
    /// `Forwarded`/`X-Forwarded-*`/`Via` present and no credentials.
    pub const PROXY: &str = "proxy_may_have_stripped_authorization";
    /// A token in the query string.
    pub const QUERY: &str = "token_in_query";
    /// A token in `X-Auth-Token`, `Token`, `X-Access-Token` or a similar header.
    pub const NONSTANDARD_HEADER: &str = "token_in_nonstandard_header";
    /// A token in a cookie.
    pub const COOKIE: &str = "token_in_cookie";
    /// `Authorization: eyJ…` without `Bearer `.
    pub const BARE_JWT: &str = "bare_jwt";
    /// `Bearer Bearer …`.
    pub const DOUBLED_PREFIX: &str = "doubled_prefix";
    /// A JWT sent with the Basic scheme (as is, or base64-wrapped).
    pub const BASIC_WRAPPED_TOKEN: &str = "basic_wrapped_token";
    /// The `Cookie` header is over the caps and was not read.
    pub const COOKIE_OVER_CAP: &str = "cookie_header_over_cap";
}

/// Whether `rest` (after `Basic `) is really a token: a JWT as is, or base64 of one.
pub(crate) fn basic_wraps_token(rest: &str) -> bool {
    use base64::Engine as _;
    if looks_like_jwt(rest) {
        return true;
    }
    base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .is_some_and(|s| {
            let s = s.trim();
            looks_like_jwt(s) || s.split_once(':').is_some_and(|(_, p)| looks_like_jwt(p))
        })
}

/// The most precise reason the request itself explains, marked inferred.
pub(crate) fn infer(headers: &HeaderMap, uri: &Uri) -> AuthFailure {
    let scan = Scan::new(headers, uri);
    let mut f = diagnose(&scan);
    f.facts.inferred = true;
    f
}

fn diagnose(scan: &Scan<'_>) -> AuthFailure {
    if scan.authorization_count > 1 {
        return AuthFailure::new(Reason::CredentialsConflict)
            .with_location(Location::Authorization)
            .with_fingerprint(fingerprint(credential_part(
                scan.authorization[0].unwrap_or_default(),
            )))
            .detail(format!(
                "the request has {} Authorization header fields",
                scan.authorization_count
            ));
    }
    if let Some(raw) = scan.authorization() {
        if scan.access_token {
            return AuthFailure::new(Reason::CredentialsConflict)
                .with_location(Location::Authorization)
                .with_fingerprint(fingerprint(credential_part(raw)))
                .detail(
                    "the request has an Authorization header and an `access_token` query parameter",
                );
        }
        let f = match parse_authorization(raw) {
            Parsed::Invalid(why) => AuthFailure::new(Reason::AuthorizationMalformed).detail(why),
            Parsed::Bare(token) => {
                let f = AuthFailure::new(Reason::SchemePrefixMissing)
                    .detail("the Authorization value has no scheme");
                match inspect(token) {
                    Some(t) => f.with_token(t).tag(hint::BARE_JWT),
                    None => f,
                }
            }
            Parsed::Scheme { scheme, rest } => {
                let mut f = if scheme.eq_ignore_ascii_case("bearer") {
                    bearer(rest)
                } else if scheme.eq_ignore_ascii_case("basic") {
                    if basic_wraps_token(rest) {
                        AuthFailure::new(Reason::SchemeNotAccepted)
                            .detail("a token was sent with the Basic scheme")
                            .hint("Send the token as `Authorization: Bearer <token>`.")
                            .tag(hint::BASIC_WRAPPED_TOKEN)
                    } else {
                        match decode_basic(rest) {
                            Ok(c) => AuthFailure::new(Reason::CredentialsInvalid)
                                .user(&crate::authn::unverified_user(&c.user))
                                .detail("the application rejected the Basic credentials"),
                            Err(f) => f,
                        }
                    }
                } else {
                    AuthFailure::new(Reason::CredentialsInvalid).detail(format!(
                        "the application rejected the {} credentials",
                        cap(printable_scheme(scheme))
                    ))
                };
                f.facts.received_scheme = Some(cap(printable_scheme(scheme)));
                f
            }
        };
        return f
            .with_location(Location::Authorization)
            .with_fingerprint(fingerprint(credential_part(raw)));
    }

    if let Some((name, value)) = scan.query {
        return elsewhere(
            Location::Query(Cow::Borrowed(name)),
            value.as_bytes(),
            hint::QUERY,
        );
    }
    if let Some((name, value)) = scan.header() {
        let tag = if name.contains("api-key") {
            ""
        } else {
            hint::NONSTANDARD_HEADER
        };
        return elsewhere(Location::Header(Cow::Borrowed(name)), value, tag);
    }
    let cookies = scan.cookie();
    if let Some((name, value)) = cookies.found() {
        return elsewhere(
            Location::Cookie(Cow::Owned(cap(name).to_string())),
            value.as_bytes(),
            hint::COOKIE,
        );
    }
    let mut f =
        AuthFailure::new(Reason::CredentialsMissing).detail("the request carries no credentials");
    if let Some(why) = cookies.over_cap_text() {
        f = f
            .detail(format!(
                "the request carries no credentials that were read; {why}"
            ))
            .tag(hint::COOKIE_OVER_CAP);
    }
    if scan.proxied() {
        f.tag(hint::PROXY).hint(
            "The request came through a proxy (Forwarded, X-Forwarded-* or Via is present) \
             and carries no Authorization: the proxy may have stripped it.",
        )
    } else {
        f
    }
}

fn bearer(rest: &str) -> AuthFailure {
    if rest.is_empty() {
        return AuthFailure::new(Reason::AuthorizationMalformed)
            .detail("`Bearer` is followed by no token");
    }
    if let Some((first, _)) = rest.split_once([' ', '\t']) {
        let f = AuthFailure::new(Reason::AuthorizationMalformed)
            .detail("the Bearer credentials contain whitespace");
        return if first.eq_ignore_ascii_case("bearer") {
            f.tag(hint::DOUBLED_PREFIX)
        } else {
            f
        };
    }
    token(rest)
}

/// What an unverified token says about why it could have been refused.
fn token(token: &str) -> AuthFailure {
    let Some(facts) = inspect(token) else {
        return if token.starts_with("eyJ") || token.contains('.') {
            AuthFailure::new(Reason::TokenMalformed)
                .detail("the token looks like a JWT but is not well-formed")
        } else {
            AuthFailure::new(Reason::CredentialsInvalid)
                .detail("the application rejected an opaque token; nothing in the request says why")
        };
    };
    time_reason(&facts)
        .unwrap_or_else(|| {
            AuthFailure::new(Reason::CredentialsInvalid).detail(
                "the application rejected the token; its unverified exp and nbf are current, \
                 so check its signature, issuer and audience",
            )
        })
        .with_token(facts)
}

/// `token_expired` or `token_not_yet_valid` from unverified `exp`/`nbf`, without leeway.
fn time_reason(facts: &TokenFacts) -> Option<AuthFailure> {
    let now = now();
    if let Some(exp) = facts.exp.filter(|&e| e < now) {
        return Some(AuthFailure::new(Reason::TokenExpired).detail(format!(
            "the token's unverified exp says it expired at {} ({} ago)",
            rfc3339(exp),
            human_duration(now.saturating_sub(exp).max(0) as u64)
        )));
    }
    if let Some(nbf) = facts.nbf.filter(|&n| n > now) {
        return Some(AuthFailure::new(Reason::TokenNotYetValid).detail(format!(
            "the token's unverified nbf is {} ({} in the future)",
            rfc3339(nbf),
            human_duration(nbf.saturating_sub(now).max(0) as u64)
        )));
    }
    None
}

/// A credential outside `Authorization`: a token's own time first, else the place.
fn elsewhere(location: Location, value: &[u8], tag: &'static str) -> AuthFailure {
    let text = std::str::from_utf8(value).unwrap_or("");
    let f = match inspect(text) {
        Some(facts) => time_reason(&facts)
            .unwrap_or_else(|| {
                AuthFailure::new(Reason::CredentialsWrongLocation)
                    .detail(format!("the only credential is in {location}"))
            })
            .with_token(facts),
        None => AuthFailure::new(Reason::CredentialsWrongLocation)
            .detail(format!("the only credential is in {location}")),
    };
    let f = f
        .with_location(location)
        .with_fingerprint(fingerprint(value));
    if tag.is_empty() {
        f
    } else {
        f.tag(tag)
    }
}
