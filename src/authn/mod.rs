//! Authentication: one file per scheme, each implementing [`AuthScheme`], and the dispatcher
//! that hands a request to the first scheme whose credential it carries.
//!
//! Adding a scheme is one file here that implements [`AuthScheme`] (where its credential
//! is, how it is verified, its failures and its challenge), one builder method on
//! [`AuthDiagnostics`](crate::AuthDiagnostics), a [`Scheme`] name, and its `Reason` rows.

pub(crate) mod api_key;
pub(crate) mod basic;
pub(crate) mod bearer;
pub(crate) mod cnf;
pub(crate) mod dpop;
pub(crate) mod iap;
#[cfg(feature = "http-client")]
pub(crate) mod introspection;
pub(crate) mod jwt;
pub(crate) mod principal;
mod reject;
pub(crate) mod session;
pub(crate) mod token_cache;
pub(crate) mod verify;

use crate::challenge::Challenge;
use crate::evidence::{credential_part, spoken_scheme, Evidence};
use crate::failure::{AuthFailure, Location};
use crate::reason::{DetailMode, Reason};
use crate::sanitize::{cap, fingerprint};
use crate::scheme::Scheme;
pub(crate) use principal::Principal;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use verify::AuthFuture;

/// Where a scheme looks for its credential. The dispatcher asks every scheme about each
/// place in this order, so `Authorization` decides before an API-key header, which
/// decides before an allowed query parameter, which decides before a session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Authorization,
    Header,
    Query,
    Cookie,
}

impl Place {
    const ORDER: [Place; 4] = [
        Place::Authorization,
        Place::Header,
        Place::Query,
        Place::Cookie,
    ];
}

/// One configured way to authenticate.
pub(crate) trait AuthScheme: Send + Sync + fmt::Debug + 'static {
    /// Its name: the order of challenges, and what a client spoke.
    fn kind(&self) -> Scheme;

    /// What a person should send, e.g. `Bearer`, `X-API-Key header`, `cookie sid`.
    fn describe(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.kind().as_str())
    }

    /// How to send it, for hints: "`Authorization: Bearer <token>`".
    fn how_to_send(&self) -> Cow<'static, str>;

    /// Whether answers it authenticated must not be stored by shared caches, which key on
    /// `Authorization` but not on other headers or cookies (RFC 9110 §16.4.2).
    fn private(&self) -> bool {
        false
    }

    /// Two credentials of its own in one request (400 `credentials_conflict`).
    fn conflict(&self, _ev: &Evidence<'_>) -> Option<AuthFailure> {
        None
    }

    /// Its credential at `place`, decided: `None` when the request has none there.
    fn find(&self, ev: &Evidence<'_>, place: Place) -> Option<Decision>;

    /// Whether it reads the request header `name` (so a credential there is not "elsewhere").
    /// The API key the request sends where this scheme reads keys (throttling counts
    /// keys by their prefix); `None` for other schemes.
    fn sent_key<'a>(&self, _ev: &Evidence<'a>) -> Option<&'a [u8]> {
        None
    }

    fn reads_header(&self, _name: &str) -> bool {
        false
    }

    /// An `Authorization` scheme word no configured scheme took, when it means this
    /// scheme's credential sent in the wrong place (`Authorization: ApiKey …`).
    fn misplaced(&self, _word: &str) -> Option<AuthFailure> {
        None
    }

    /// A failure for an `Authorization` that speaks this scheme but does not parse at all
    /// (not UTF-8, control bytes): `authorization_malformed` unless the scheme names it.
    fn unreadable(&self, failure: AuthFailure) -> AuthFailure {
        failure
    }

    /// Its challenge for `failure`: the parameters after `realm`.
    fn challenge(&self, c: Challenge, _failure: &AuthFailure, _detail: DetailMode) -> Challenge {
        c
    }
}

/// What the layer does with a request.
pub(crate) enum Decision {
    /// Verified on the spot (a JWT with static keys).
    Authenticated(Principal),
    /// Handed to the application's verifier; failures get the request's facts attached.
    Pending(Pending),
    /// Refused.
    Rejected(AuthFailure),
}

/// Hands the request to the first scheme whose credential it carries, in [`Place`] order,
/// or names what is wrong when none does.
pub(crate) fn authenticate(ev: &Evidence<'_>, schemes: &[Arc<dyn AuthScheme>]) -> Decision {
    if let Some(f) = conflict(ev, schemes) {
        return Decision::Rejected(f.expected(expected_names(schemes)));
    }
    for place in Place::ORDER {
        for s in schemes {
            match s.find(ev, place) {
                Some(Decision::Rejected(f)) => {
                    return Decision::Rejected(f.or_expected(|| s.describe()))
                }
                Some(decision) => return decision,
                None => {}
            }
        }
    }
    Decision::Rejected(reject::unaccepted(ev, schemes))
}

/// More than one credential method in one request: two `Authorization` fields,
/// `Authorization` and an `access_token` query parameter (RFC 6750 §2.3; no other query
/// name: `?token=page2` is pagination as often as a credential), or a scheme's own.
pub(crate) fn conflict(ev: &Evidence<'_>, schemes: &[Arc<dyn AuthScheme>]) -> Option<AuthFailure> {
    let first = ev.first_authorization().unwrap_or_default();
    let base = || {
        AuthFailure::new(Reason::CredentialsConflict)
            .location(Location::Authorization)
            .fingerprint(fingerprint(credential_part(first)))
            .received(spoken_scheme(first))
    };
    if ev.authorization_count > 1 {
        return Some(base().detail(format!(
            "the request has {} Authorization header fields; send exactly one",
            ev.authorization_count
        )));
    }
    if ev.authorization().is_some() && ev.access_token {
        return Some(
            base()
                .detail(
                    "the request has an Authorization header and an `access_token` query \
                     parameter; send one",
                )
                .tag(crate::evidence::hint::QUERY),
        );
    }
    schemes.iter().find_map(|s| s.conflict(ev))
}

/// Why the wrapped service may have refused an `Authorization` of scheme `word`, from the
/// credentials alone: the scheme's own diagnosis where it has one.
pub(crate) fn diagnose_spoken(word: &str, rest: &str) -> Option<AuthFailure> {
    match Scheme::from_word(word)? {
        Scheme::Bearer => Some(bearer::diagnose(rest)),
        Scheme::Basic => Some(basic::diagnose(rest)),
        _ => None,
    }
}

/// The scheme the layer speaks where none is configured.
pub(crate) const DEFAULT_SCHEME: Scheme = Scheme::Bearer;

/// What the schemes accept, in words: `Bearer`, `Basic or Bearer`.
pub(crate) fn expected_names(schemes: &[Arc<dyn AuthScheme>]) -> Cow<'static, str> {
    match schemes {
        [one] => one.describe(),
        many => Cow::Owned(
            many.iter()
                .map(|s| s.describe())
                .collect::<Vec<_>>()
                .join(" or "),
        ),
    }
}

/// An application verifier at work, and what to say about its failures.
pub(crate) struct Pending {
    pub fut: AuthFuture,
    pub scheme: Scheme,
    pub private: bool,
    expected: Cow<'static, str>,
    location: Location,
    fingerprint: crate::sanitize::Fingerprint,
    /// The Basic user name, and whether the password was empty.
    user: Option<(String, bool)>,
}

impl Pending {
    pub(crate) fn new(
        fut: AuthFuture,
        scheme: &dyn AuthScheme,
        location: Location,
        secret: &[u8],
    ) -> Self {
        Self {
            fut,
            scheme: scheme.kind(),
            private: scheme.private(),
            expected: scheme.describe(),
            location,
            fingerprint: fingerprint(secret),
            user: None,
        }
    }

    /// The user name the credential names (Basic), and whether its password was empty.
    pub(crate) fn user(mut self, user: String, empty_password: bool) -> Self {
        self.user = Some((user, empty_password));
        self
    }

    /// Completes a failure from the verifier with where the credential was and whose.
    pub(crate) fn annotate(&mut self, failure: AuthFailure) -> AuthFailure {
        let mut f = failure
            .location(self.location.clone())
            .fingerprint(self.fingerprint)
            .or_expected(|| self.expected.clone())
            .or_received(self.scheme.as_str());
        if let (None, Some((user, empty_password))) = (f.facts().user(), &self.user) {
            // A name the store does not know (or sent with no password) may be a password
            // or key typed into the wrong field: log only its fingerprint.
            f = if f.reason() == Reason::BasicUserUnknown || *empty_password {
                f.user(&unverified_user(user))
            } else {
                f.user(user)
            };
        }
        f
    }
}

/// How a user name that may be a secret appears in the log.
pub(crate) fn unverified_user(user: &str) -> String {
    format!("<unverified user fp:{}>", fingerprint(user.as_bytes()))
}

/// `Location::Header` for a configured header name.
pub(crate) fn header_location(name: &http::HeaderName) -> Location {
    Location::Header(Cow::Owned(name.as_str().to_owned()))
}

/// `Location::Cookie` or `Location::Query` for a configured name.
pub(crate) fn named(name: &str) -> Cow<'static, str> {
    Cow::Owned(cap(name).to_string())
}
