//! Bearer (RFC 6750): a JWT in `Authorization`, verified by [`JwtAuthenticator`].
//!
//! This file owns the scheme: where the token is, the syntax around it (`Bearer` with no
//! token, `Bearer a b`, `Bearer Bearer x`, a quoted token), its challenge (`error`,
//! `error_description`, `scope`), and what a token alone says about why the wrapped
//! service refused it.

use super::jwt::JwtAuthenticator;
use super::{AuthScheme, Decision, Place, Principal};
use crate::challenge::Challenge;
use crate::evidence::{hint, is_token68, unverified_time_reason, Evidence};
use crate::failure::{AuthFailure, Location};
use crate::jws::inspect;
use crate::reason::{BearerError, BearerRule, DetailMode, Reason};
use crate::sanitize::fingerprint;
use crate::scheme::Scheme;
use std::borrow::Cow;

impl AuthScheme for JwtAuthenticator {
    fn kind(&self) -> Scheme {
        Scheme::Bearer
    }

    fn how_to_send(&self) -> String {
        "`Authorization: Bearer <token>`".to_owned()
    }

    fn find(&self, ev: &Evidence<'_>, place: Place) -> Option<Decision> {
        if place != Place::Authorization {
            return None;
        }
        let rest = ev.spoken(Scheme::Bearer)?;
        let verified = token(rest).and_then(|t| {
            self.verify(t).map_err(|f| {
                f.location(Location::Authorization)
                    .fingerprint(fingerprint(rest.as_bytes()))
                    .received(Some("Bearer"))
            })
        });
        Some(match verified {
            Ok(v) => Decision::Authenticated(Principal::from_jwt(v.claims)),
            Err(f) => Decision::Rejected(f),
        })
    }

    fn challenge(&self, c: Challenge, failure: &AuthFailure, detail: DetailMode) -> Challenge {
        challenge(c, failure, detail)
    }
}

/// The credentials after `Bearer `: exactly one token68 value.
pub(crate) fn token(rest: &str) -> Result<&str, AuthFailure> {
    let malformed = |detail: &str| {
        AuthFailure::new(Reason::AuthorizationMalformed)
            .location(Location::Authorization)
            .detail(detail)
            .expected("Bearer")
            .received(Some("Bearer"))
    };
    if rest.is_empty() {
        return Err(malformed("`Bearer` is followed by no token"));
    }
    let fp = || fingerprint(rest.as_bytes());
    if let Some((first, _)) = rest.split_once([' ', '\t']) {
        let f = if first.eq_ignore_ascii_case("bearer") {
            malformed("the scheme is doubled: `Bearer Bearer <token>`")
                .tag(hint::DOUBLED_PREFIX)
                .hint("Remove the second `Bearer `: the client or a proxy added the prefix twice.")
        } else {
            malformed("the Bearer credentials contain whitespace; a token is one token68 value")
        };
        return Err(f.fingerprint(fp()));
    }
    if !is_token68(rest) {
        let detail = if rest.starts_with('"') {
            "the token is quoted; send it without quotes"
        } else {
            "the token has characters outside token68"
        };
        return Err(malformed(detail).fingerprint(fp()));
    }
    Ok(rest)
}

/// Bearer's challenge parameters after `realm` (RFC 6750 §3): `error`, `error_description`
/// (the client's detail, sanitized) and `scope`, when the failure has an error code.
pub(crate) fn challenge(c: Challenge, failure: &AuthFailure, detail: DetailMode) -> Challenge {
    let Some(err) = error_of(failure) else {
        return c;
    };
    let description: Cow<'_, str> = match detail {
        DetailMode::Verbose => failure
            .facts()
            .detail()
            .unwrap_or(failure.reason().detail())
            .into(),
        DetailMode::Production => failure.client_reason(detail).detail().into(),
    };
    let c = c.error(err.as_str()).error_description(&description);
    match failure.facts().scope() {
        Some(scope) => c.scope([scope]),
        None => c,
    }
}

/// The RFC 6750 error of a failure: its reason's, or `invalid_token` for a 401 completed
/// for a request that sent a Bearer token (RFC 6750 §3.1: a request with a token gets an
/// error code).
fn error_of(failure: &AuthFailure) -> Option<BearerError> {
    let sent_bearer = failure
        .facts()
        .received_scheme()
        .is_some_and(|s| s.eq_ignore_ascii_case("bearer"));
    match failure.reason().bearer_rule() {
        BearerRule::Always(e) => Some(e),
        BearerRule::WithToken(e) if sent_bearer => Some(e),
        BearerRule::WithToken(_) | BearerRule::No => None,
    }
}

/// Why the wrapped service may have refused `Bearer <rest>`, from the token alone: its
/// syntax, then its unverified `exp`/`nbf`. Nothing is verified.
pub(crate) fn diagnose(rest: &str) -> AuthFailure {
    let token = match token(rest) {
        Ok(t) => t,
        Err(f) => return f,
    };
    let Some(facts) = inspect(token) else {
        return if token.starts_with("eyJ") || token.contains('.') {
            AuthFailure::new(Reason::TokenMalformed)
                .detail("the token looks like a JWT but is not well-formed")
        } else {
            AuthFailure::new(Reason::CredentialsInvalid)
                .detail("the application rejected an opaque token; nothing in the request says why")
        };
    };
    unverified_time_reason(&facts)
        .unwrap_or_else(|| {
            AuthFailure::new(Reason::CredentialsInvalid).detail(
                "the application rejected the token; its unverified exp and nbf are current, \
                 so check its signature, issuer and audience",
            )
        })
        .token(facts)
}
