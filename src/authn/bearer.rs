//! Bearer (RFC 6750): a JWT in `Authorization`, verified by the [`JwtAuthenticator`] of
//! the issuer it names.
//!
//! This file owns the scheme: where the token is, the syntax around it (`Bearer` with no
//! token, `Bearer a b`, `Bearer Bearer x`, a quoted token), which issuer's authenticator
//! verifies it, its challenge (`error`, `error_description`, `scope`), and what a token
//! alone says about why the wrapped service refused it.

use super::cnf;
#[cfg(feature = "http-client")]
use super::introspection::{Introspection, Introspector};
use super::jwt::{near_issuer, push_new, shown_issuers, JwtAuthenticator, Step};
use super::token_cache::{Cache, Verified};
use super::verify::AuthFuture;
use super::{AuthScheme, Decision, Pending, Place, Principal};
use crate::challenge::Challenge;
use crate::config_error::ConfigError;
use crate::evidence::{hint, is_token68, unverified_time_reason, Evidence};
use crate::failure::{AuthFailure, Location};
use crate::jws::{self, inspect, Jws};
use crate::reason::{BearerError, BearerRule, DetailMode, Reason};
use crate::sanitize::{cap, fingerprint};
use crate::scheme::Scheme;
use crate::time::now;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

/// The Bearer scheme of a layer: one authenticator per issuer. A token goes to the one
/// whose issuers hold its unverified `iss`; only that issuer's keys and rules apply.
#[derive(Debug, Clone)]
pub(crate) struct Bearer {
    issuers: Vec<Arc<JwtAuthenticator>>,
    cache: Option<Arc<Cache>>,
    /// Opaque tokens (and JWTs of no configured issuer) go to introspection.
    #[cfg(feature = "http-client")]
    introspection: Option<Arc<Introspection>>,
}

impl Bearer {
    /// The scheme for these authenticators, checked before
    /// ([`routing_errors`](Self::routing_errors)).
    pub(crate) fn new(all: Vec<JwtAuthenticator>, cache: Option<Arc<Cache>>) -> Self {
        Self {
            issuers: all.into_iter().map(Arc::new).collect(),
            cache,
            #[cfg(feature = "http-client")]
            introspection: None,
        }
    }

    /// The same scheme, introspecting the tokens no JWT authenticator takes.
    #[cfg(feature = "http-client")]
    pub(crate) fn introspecting(mut self, introspector: Option<Introspector>) -> Self {
        self.introspection = introspector.map(|i| Arc::new(Introspection::new(i)));
        self
    }

    /// Whether token `t` is verified locally rather than introspected: a JWS whose
    /// unverified `iss` is a configured issuer, or any JWS when the one authenticator
    /// accepts any issuer.
    #[cfg(feature = "http-client")]
    fn local(&self, t: &str) -> bool {
        let Ok(jws) = jws::decode(t) else {
            return false;
        };
        if let [one] = self.issuers.as_slice() {
            if one.names_no_issuer() {
                return true;
            }
        }
        let iss = jws.claims.get("iss").and_then(Value::as_str);
        iss.is_some_and(|i| {
            self.issuers
                .iter()
                .any(|j| j.issuers().iter().any(|e| e == i) || j.fits_template(i))
        })
    }

    /// Why a token could not be routed to exactly one of several authenticators: one
    /// names no issuer, or two share one.
    pub(crate) fn routing_errors(all: &[JwtAuthenticator]) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if all.len() < 2 {
            return errors;
        }
        if all.iter().any(|jwt| jwt.names_no_issuer()) {
            errors.push(ConfigError::BearerWithoutIssuer);
        }
        let mut seen: Vec<&str> = Vec::new();
        for issuer in all.iter().flat_map(|jwt| {
            let mut own: Vec<&str> = jwt.issuers().iter().map(String::as_str).collect();
            own.extend(jwt.template_text());
            own.sort_unstable();
            own.dedup();
            own
        }) {
            if seen.contains(&issuer) {
                let issuer = shown_issuers(&[issuer.to_owned()]);
                push_new(
                    &mut errors,
                    ConfigError::IssuerOfTwoAuthenticators { issuer },
                );
            }
            seen.push(issuer);
        }
        errors
    }

    /// The authenticator for the token's unverified `iss`, and its index.
    fn route(&self, jws: &Jws<'_>) -> Result<(usize, &Arc<JwtAuthenticator>), AuthFailure> {
        if let [one] = self.issuers.as_slice() {
            return Ok((0, one));
        }
        let iss = jws.claims.get("iss");
        let text = iss.and_then(Value::as_str);
        if let Some(found) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, j)| text.is_some_and(|i| j.issuers().iter().any(|e| e == i)))
            .or_else(|| {
                // Then issuer templates: an exact issuer wins over a template's form.
                self.issuers
                    .iter()
                    .enumerate()
                    .find(|(_, j)| text.is_some_and(|i| j.fits_template(i)))
            })
        {
            return Ok(found);
        }
        let all: Vec<String> = self
            .issuers
            .iter()
            .flat_map(|j| j.accepted_shown())
            .collect();
        let expected = shown_issuers(&all);
        let f = match (iss, text) {
            (None | Some(Value::Null), _) => AuthFailure::new(Reason::TokenClaimMissing)
                .detail("the required claim iss is missing, so no issuer's keys apply")
                .claim("iss"),
            (Some(_), None) => AuthFailure::new(Reason::TokenClaimInvalid)
                .detail("the iss claim is not a string")
                .claim("iss"),
            (_, Some(i)) => {
                let f = AuthFailure::new(Reason::TokenIssuerMismatch).detail(format!(
                    "iss {}, expected {}; no issuer's keys were consulted",
                    cap(i),
                    cap(&expected)
                ));
                match near_issuer(i, &all) {
                    Some(hint) => f.hint(hint),
                    None => f,
                }
            }
        };
        Err(f.expected_iss(Some(expected)).token(jws.facts()))
    }

    /// Verifies token `t` (already known to be one token68 value): from the cache when it
    /// was seen, on the spot when its keys are at hand, later when they must be fetched.
    pub(crate) fn check(&self, t: &str) -> Check {
        let now = now();
        let hash = self.cache.as_ref().map(|cache| cache.hash(t));
        if let (Some(cache), Some(hash)) = (&self.cache, hash) {
            if let Some(result) = cache.get(t, hash, now, |i| self.issuers[i].key_epoch()) {
                return Check::Done(result);
            }
        }
        #[cfg(feature = "http-client")]
        if let Some(introspection) = &self.introspection {
            if !self.local(t) {
                return match introspection.cached(t) {
                    Some(outcome) => Check::Done(outcome),
                    None => Check::Later(introspection.check(t)),
                };
            }
        }
        let checked = jws::decode(t).and_then(|jws| {
            let (index, jwt) = self.route(&jws)?;
            // The epoch before verifying: a key set that changes meanwhile makes the
            // entry stale rather than wrongly fresh.
            let epoch = jwt.key_epoch();
            Ok((index, epoch, jwt.step(jws, now, true)))
        });
        match checked {
            Err(f) => Check::Done(Err(f)),
            Ok((index, epoch, Step::Done(result))) => {
                let seen = Seen {
                    token: t,
                    hash,
                    index,
                    epoch,
                };
                let jwt = &self.issuers[index];
                Check::Done(seen.settle(self.cache.as_deref(), jwt, result, now))
            }
            Ok((index, epoch, Step::Wait(sources))) => {
                let jwt = self.issuers[index].clone();
                let cache = self.cache.clone();
                Check::Later(after_refresh(
                    jwt,
                    cache,
                    t.to_owned(),
                    index,
                    epoch,
                    sources,
                ))
            }
        }
    }

    /// Starts fetching every issuer's published keys, and discovering the introspection
    /// endpoint when it is to be discovered.
    pub(crate) fn start(&self) {
        for jwt in &self.issuers {
            jwt.start();
        }
        #[cfg(feature = "http-client")]
        if let Some(introspection) = &self.introspection {
            introspection.start();
        }
    }
}

impl AuthScheme for Bearer {
    fn kind(&self) -> Scheme {
        Scheme::Bearer
    }

    fn how_to_send(&self) -> std::borrow::Cow<'static, str> {
        "`Authorization: Bearer <token>`".into()
    }

    fn find(&self, ev: &Evidence<'_>, place: Place) -> Option<Decision> {
        if place != Place::Authorization {
            return None;
        }
        let rest = ev.spoken(Scheme::Bearer)?;
        let refuse = |f: AuthFailure| {
            Decision::Rejected(
                f.location(Location::Authorization)
                    .fingerprint(fingerprint(rest.as_bytes()))
                    .received(Some("Bearer")),
            )
        };
        let t = match token(rest) {
            Ok(t) => t,
            Err(f) => return Some(refuse(f)),
        };
        let cert = ev.certificate.as_ref();
        Some(match self.check(t) {
            Check::Done(result) => match result.and_then(|p| unbound(p, t, cert)) {
                Ok(principal) => Decision::Authenticated(principal),
                Err(f) => refuse(f),
            },
            Check::Later(fut) => {
                let t = t.to_owned();
                let cert = cert.cloned();
                let fut =
                    Box::pin(async move { fut.await.and_then(|p| unbound(p, &t, cert.as_ref())) });
                Decision::Pending(Pending::new(
                    fut,
                    self,
                    Location::Authorization,
                    rest.as_bytes(),
                ))
            }
        })
    }

    fn challenge(&self, c: Challenge, failure: &AuthFailure, detail: DetailMode) -> Challenge {
        challenge(c, failure, detail)
    }
}

/// A token's verification: decided now, or once its issuer's keys are fetched.
pub(crate) enum Check {
    Done(Result<Principal, AuthFailure>),
    Later(AuthFuture),
}

/// Refuses a bound token sent as Bearer: a DPoP-bound one (`cnf.jkt`, RFC 9449 §7.2), one
/// bound to a client certificate (`cnf.x5t#S256`, RFC 8705) other than the one the request
/// presented (`cert`), or one bound by any other confirmation method, which a Bearer route
/// cannot verify. Without its proof of possession it is what a thief would send.
fn unbound(
    principal: Principal,
    token: &str,
    cert: Option<&crate::certificate::Presented>,
) -> Result<Principal, AuthFailure> {
    let cnf = cnf::of(&principal);
    let f = match (cnf.jkt, cnf.other) {
        (Some(_), _) => AuthFailure::new(Reason::TokenDpopBound)
            .detail("the token is bound to a DPoP key (cnf.jkt) and was sent as a Bearer token")
            .claim("cnf"),
        (None, Some(member)) => cnf::unverifiable(member),
        (None, None) => match cnf::certificate(&principal, cert) {
            Ok(()) => return Ok(principal),
            Err(f) => f,
        },
    };
    Err(match inspect(token) {
        Some(facts) => f.token(facts).token_verified(true),
        None => f,
    })
}

/// A token the Bearer scheme decided: which authenticator, under which key epoch.
struct Seen<'a> {
    token: &'a str,
    /// The cache's hash of the token, computed for the lookup (`None`: not yet).
    hash: Option<u64>,
    index: usize,
    epoch: u64,
}

impl Seen<'_> {
    /// The principal (or failure) of a verification, remembered by the cache: a success
    /// until its `exp` (and leeway) at most, a failure where it cannot change.
    fn settle(
        &self,
        cache: Option<&Cache>,
        jwt: &JwtAuthenticator,
        result: Result<super::jwt::Verified, AuthFailure>,
        now: i64,
    ) -> Result<Principal, AuthFailure> {
        let result = result.map(|v| Principal::from_jwt(v.claims));
        if let Some(cache) = cache {
            let exp = result
                .as_ref()
                .ok()
                .and_then(|p| p.claims())
                .and_then(|c| c.get("exp"))
                .and_then(crate::jws::numeric_date);
            cache.put(
                Verified {
                    token: self.token,
                    hash: self.hash,
                    outcome: result.as_ref(),
                    issuer: self.index,
                    epoch: self.epoch,
                    valid_through: exp.map(|e| jwt.valid_through(e)),
                },
                now,
            );
        }
        result
    }
}

/// For a token whose key is not cached: waits (boundedly) for the sources' refresh, then
/// decides with what they hold.
fn after_refresh(
    jwt: Arc<JwtAuthenticator>,
    cache: Option<Arc<Cache>>,
    token: String,
    index: usize,
    epoch: u64,
    sources: Vec<crate::keys::KeySource>,
) -> AuthFuture {
    Box::pin(async move {
        // One deadline for all the sources: the longest wait any of them allows.
        let limit = sources.iter().map(|s| s.wait_limit()).max();
        let deadline = tokio::time::Instant::now() + limit.unwrap_or_default();
        for source in &sources {
            let _ = tokio::time::timeout_at(deadline, source.refresh_for_miss()).await;
        }
        let jws = jws::decode(&token)?;
        let now = crate::time::now();
        let result = match jwt.step(jws, now, false) {
            Step::Done(result) => result,
            Step::Wait(_) => unreachable!("a step that may not wait never waits"),
        };
        let seen = Seen {
            token: &token,
            hash: None,
            index,
            epoch,
        };
        seen.settle(cache.as_deref(), &jwt, result, now)
    })
}

/// The credentials after `Bearer `: exactly one token68 value.
pub(crate) fn token(rest: &str) -> Result<&str, AuthFailure> {
    token_for(rest, Scheme::Bearer)
}

/// The token after a token scheme's name (`Bearer`, `DPoP`): exactly one token68 value.
pub(crate) fn token_for(rest: &str, scheme: Scheme) -> Result<&str, AuthFailure> {
    let name = scheme.as_str();
    let malformed = |detail: &str| {
        AuthFailure::new(Reason::AuthorizationMalformed)
            .location(Location::Authorization)
            .detail(detail)
            .expected(name)
            .received(Some(name))
    };
    if rest.is_empty() {
        return Err(malformed(&format!("`{name}` is followed by no token")));
    }
    // The usual case first: one token68 value (it has no whitespace either).
    if is_token68(rest) {
        return Ok(rest);
    }
    let fp = || fingerprint(rest.as_bytes());
    if let Some((first, _)) = rest.split_once([' ', '\t']) {
        let f = if first.eq_ignore_ascii_case(name) {
            malformed(&format!("the scheme is doubled: `{name} {name} <token>`"))
                .tag(hint::DOUBLED_PREFIX)
                .hint(format!(
                    "Remove the second `{name} `: the client or a proxy added the prefix twice."
                ))
        } else {
            malformed(&format!(
                "the {name} credentials contain whitespace; a token is one token68 value"
            ))
        };
        return Err(f.fingerprint(fp()));
    }
    let detail = if rest.starts_with('"') {
        "the token is quoted; send it without quotes"
    } else {
        "the token has characters outside token68"
    };
    Err(malformed(detail).fingerprint(fp()))
}

/// Bearer's challenge parameters after `realm` (RFC 6750 §3): `error`, `error_description`
/// (the client's detail, sanitized) and `scope`, when the failure has an error code.
pub(crate) fn challenge(c: Challenge, failure: &AuthFailure, detail: DetailMode) -> Challenge {
    // The error goes on the challenge of the scheme the client used (RFC 9449 §7.2).
    if sent(failure, Scheme::Dpop) && failure.reason() != Reason::CredentialsConflict {
        return c;
    }
    match error_of(failure) {
        Some(err) => error_params(c, failure, detail, err.as_str()),
        None => c,
    }
}

/// Whether the request that failed spoke `scheme` in `Authorization`.
pub(crate) fn sent(failure: &AuthFailure, scheme: Scheme) -> bool {
    failure
        .facts()
        .received_scheme()
        .is_some_and(|s| s.eq_ignore_ascii_case(scheme.as_str()))
}

/// The parameters of a challenge that carries an error, Bearer's and DPoP's alike:
/// `error`, `error_description` (the client's detail, sanitized), `scope`, and a step-up's
/// `acr_values` and `max_age` (RFC 9470 §3).
pub(crate) fn error_params(
    c: Challenge,
    failure: &AuthFailure,
    detail: DetailMode,
    code: &str,
) -> Challenge {
    let facts = failure.facts();
    let description: Cow<'_, str> = match detail {
        DetailMode::Verbose => facts.detail().unwrap_or(failure.reason().detail()).into(),
        DetailMode::Production => failure.client_reason(detail).detail().into(),
    };
    let mut c = c.error(code).error_description(&description);
    if let Some(scope) = facts.scope() {
        c = c.scope([scope]);
    }
    if let Some(acr) = facts.acr_values() {
        c = c.long_param("acr_values", acr);
    }
    if let Some(age) = facts.max_age() {
        c = c.quoted_param("max_age", &age.to_string());
    }
    c
}

/// The RFC 6750 error of a failure: its reason's, or `invalid_token` for a 401 completed
/// for a request that sent a Bearer token (RFC 6750 §3.1: a request with a token gets an
/// error code).
pub(crate) fn error_of(failure: &AuthFailure) -> Option<BearerError> {
    let sent_bearer = sent(failure, Scheme::Bearer);
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
