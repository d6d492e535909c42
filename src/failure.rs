//! A refusal as a value: [`AuthFailure`], its [`Reason`] and facts, and
//! the vocabulary of the answer it renders to (the `WWW-Authenticate` [`Challenge`], the
//! RFC 6750 [`BearerError`], the [`Scheme`]).
//!
//! Every refusal the layer makes is an `AuthFailure`, and so is every refusal an
//! application returns: from a [`Verify`](crate::verify::Verify) hook, or from a handler
//! (`Result<_, AuthFailure>`). Either way it is answered with the status its reason
//! carries, a challenge on a 401, an RFC 9457 problem body and `Cache-Control: no-store`,
//! and logged as one event. The client sees less than the log: in production the body
//! carries the reason's code, title and a fixed description; the hint and the specific
//! `detail` stay in the log.
//!
//! ```
//! use auth_diagnostics::failure::{AuthFailure, Challenge};
//! use auth_diagnostics::{AuthDiagnostics, Principal, Reason};
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use tower::ServiceExt;
//!
//! async fn delete_everything() -> Result<&'static str, AuthFailure> {
//!     Err(AuthFailure::new(Reason::Forbidden).detail("role admin needed; has role viewer"))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new()
//!     .route("/everything", get(delete_everything))
//!     .layer(AuthDiagnostics::new());
//! let response = app
//!     .oneshot(Request::get("/everything").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 403);
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//! let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
//! let text = String::from_utf8(body.to_vec()).unwrap();
//! assert!(text.contains(r#""reason":"forbidden""#));
//! assert!(!text.contains("role viewer"), "the detail is for the log only");
//!
//! // Challenges are built and read with the same grammar.
//! let challenge = Challenge::new("Bearer").realm("api").error("invalid_token");
//! let text = challenge.render();
//! let parsed = Challenge::parse(&text).unwrap();
//! assert_eq!(parsed[0].param("error"), Some("invalid_token"));
//! # let _ = Principal::new("unused");
//! # }
//! ```

pub use crate::challenge::{Challenge, ParsedChallenge};
pub use crate::reason::{BearerError, Severity};
pub use crate::sanitize::Capped;
pub use crate::scheme::Scheme;

mod text;

pub(crate) use text::Text;

use crate::reason::Reason;
use crate::sanitize::cap;
use std::borrow::Cow;
use std::fmt;

/// Where a credential was found (or looked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// An `Authorization` header field.
    Authorization,
    /// A query parameter of this name.
    Query(Cow<'static, str>),
    /// A request header of this (lower-case) name other than `Authorization`.
    Header(Cow<'static, str>),
    /// A cookie of this name.
    Cookie(Cow<'static, str>),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Authorization => f.write_str("header:authorization"),
            Location::Query(n) => write!(f, "query:{n}"),
            Location::Header(n) => write!(f, "header:{n}"),
            Location::Cookie(n) => write!(f, "cookie:{n}"),
        }
    }
}

/// What a token said about itself before (or without) verification.
///
/// Every value is length-capped and has its control characters escaped. `verified` tells
/// whether the signature and claims were checked: when it is `false` the values are
/// what the client sent, not facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenFacts {
    /// `alg` header.
    pub alg: Option<Capped>,
    /// `kid` header.
    pub kid: Option<Capped>,
    /// `typ` header.
    pub typ: Option<Capped>,
    /// `iss` claim.
    pub iss: Option<Capped>,
    /// `aud` claim (array members joined by a space).
    pub aud: Option<Capped>,
    /// `sub` claim.
    pub sub: Option<Capped>,
    /// `exp` claim, seconds since the epoch.
    pub exp: Option<i64>,
    /// `nbf` claim, seconds since the epoch.
    pub nbf: Option<i64>,
    /// `iat` claim, seconds since the epoch.
    pub iat: Option<i64>,
    /// Whether the signature verified.
    pub verified: bool,
}

/// Whose credentials verified before the request was refused (by the layer's scopes,
/// the revocation list or the account hook), for the audit record.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub id: Option<String>,
    pub claims: Option<std::sync::Arc<serde_json::Value>>,
    pub scheme: Option<crate::scheme::Scheme>,
}

/// The facts that explain a failure. Everything here may be logged; only what the detail
/// mode allows reaches the client. Written through [`AuthFailure`]'s setters, read through
/// the getters below.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    detail: Option<Text>,
    hint: Option<Text>,
    expected_scheme: Option<Cow<'static, str>>,
    received_scheme: Option<Capped>,
    location: Option<Location>,
    /// Shared: a failure the token cache remembers is cloned for every request that
    /// repeats the token.
    token: Option<std::sync::Arc<TokenFacts>>,
    expected_iss: Option<String>,
    expected_aud: Option<String>,
    claim: Option<Cow<'static, str>>,
    scope: Option<String>,
    check: Option<Cow<'static, str>>,
    fingerprint: Option<crate::sanitize::Fingerprint>,
    user: Option<Capped>,
    retry_after: Option<u64>,
    inferred: bool,
    hints: Vec<&'static str>,
    inferred_reason: Option<Reason>,
    upstream_status: Option<u16>,
    had_credentials: bool,
    /// Refused after the credentials verified (by the layer's scopes, the revocation list
    /// or the account hook): whose they were, for the audit record.
    verified: Option<Box<Verified>>,
    keys: Option<Box<KeyFacts>>,
    acr_values: Option<String>,
    max_age: Option<u64>,
    dpop_nonce: Option<String>,
    /// The status the layer answered with, once it has.
    answered: Option<http::StatusCode>,
}

/// What a key source looked like when a token's key was looked up in it (log only).
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyFacts {
    /// The key set's URL (or the issuer's, before discovery), without its query.
    pub source: String,
    /// When the cached set was fetched, seconds since the epoch.
    pub fetched_at: Option<i64>,
    /// The `kid`s of the cached set.
    pub kids: Option<String>,
    /// Why the last fetch failed, if it did.
    pub fetch_error: Option<String>,
}

impl Facts {
    /// The specific explanation (log; client in verbose mode).
    pub(crate) fn detail(&self) -> Option<&str> {
        self.detail.as_ref().map(Text::as_str)
    }
    /// How to fix it, when it differs from the reason's own hint.
    pub(crate) fn hint(&self) -> Option<&str> {
        self.hint.as_ref().map(Text::as_str)
    }
    /// What the route accepts, in words (`Bearer`, `X-API-Key header`).
    pub(crate) fn expected_scheme(&self) -> Option<&str> {
        self.expected_scheme.as_deref()
    }
    /// The scheme word the client sent.
    pub(crate) fn received_scheme(&self) -> Option<&str> {
        self.received_scheme.as_deref()
    }
    pub(crate) fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }
    pub(crate) fn token(&self) -> Option<&TokenFacts> {
        self.token.as_deref()
    }
    pub(crate) fn expected_iss(&self) -> Option<&str> {
        self.expected_iss.as_deref()
    }
    pub(crate) fn expected_aud(&self) -> Option<&str> {
        self.expected_aud.as_deref()
    }
    pub(crate) fn claim(&self) -> Option<&str> {
        self.claim.as_deref()
    }
    pub(crate) fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
    pub(crate) fn check(&self) -> Option<&str> {
        self.check.as_deref()
    }
    pub(crate) fn fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_ref().map(|f| f.as_str())
    }
    /// [`fingerprint`](Self::fingerprint) as it is kept.
    pub(crate) fn fingerprint_kept(&self) -> Option<crate::sanitize::Fingerprint> {
        self.fingerprint
    }
    pub(crate) fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
    pub(crate) fn verified(&self) -> Option<&Verified> {
        self.verified.as_deref()
    }
    pub(crate) fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
    /// The reason was inferred from unverified request data.
    pub(crate) fn inferred(&self) -> bool {
        self.inferred
    }
    /// Stable codes of what the request shows (`bare_jwt`, `token_in_query`, …).
    pub(crate) fn hints(&self) -> &[&'static str] {
        &self.hints
    }
    /// For an upstream correction: the reason the request itself suggests.
    pub(crate) fn inferred_reason(&self) -> Option<Reason> {
        self.inferred_reason
    }
    /// For an upstream correction or diagnosis: what the wrapped service answered.
    pub(crate) fn upstream_status(&self) -> Option<u16> {
        self.upstream_status
    }
    /// The key source consulted for a token's key.
    pub(crate) fn keys(&self) -> Option<&KeyFacts> {
        self.keys.as_deref()
    }
    /// A step-up requirement (RFC 9470): the accepted `acr` values, space-separated.
    pub(crate) fn acr_values(&self) -> Option<&str> {
        self.acr_values.as_deref()
    }
    /// A step-up requirement (RFC 9470): the longest accepted authentication age, seconds.
    pub(crate) fn max_age(&self) -> Option<u64> {
        self.max_age
    }
    /// A fresh DPoP nonce for the answer's `DPoP-Nonce` header (RFC 9449 §9).
    pub(crate) fn dpop_nonce(&self) -> Option<&str> {
        self.dpop_nonce.as_deref()
    }
}

/// A refused request: a [`Reason`] plus the facts that explain it.
///
/// Handlers and inner middleware return it to refuse a request; when an
/// [`AuthDiagnostics`](crate::AuthDiagnostics) layer wraps them, the layer renders it
/// with its own configuration (realm, detail mode, schemes) and logs it like its own
/// failures. Without the layer it renders with the defaults (production detail).
///
/// ```
/// use auth_diagnostics::failure::AuthFailure;
/// use auth_diagnostics::Reason;
/// use axum::response::IntoResponse;
///
/// async fn delete_everything() -> Result<&'static str, AuthFailure> {
///     Err(AuthFailure::new(Reason::Forbidden).check("role admin"))
/// }
/// # let _ = delete_everything;
/// let response = AuthFailure::new(Reason::Forbidden).into_response();
/// assert_eq!(response.status(), 403);
/// ```
#[derive(Clone)]
pub struct AuthFailure {
    reason: Reason,
    facts: Box<Facts>,
}

impl AuthFailure {
    /// A failure for `reason` with no further facts.
    pub fn new(reason: Reason) -> Self {
        Self {
            reason,
            facts: Box::default(),
        }
    }

    /// The application's store could not answer: 503 `authenticator_unavailable`, logged
    /// at ERROR with `detail` (never shown to the client in production).
    pub fn unavailable(detail: impl Into<String>) -> Self {
        AuthFailure::new(Reason::AuthenticatorUnavailable)
            .detail(detail)
            .retry_after(5)
    }

    /// The precise reason.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// A specific explanation for the log (and for the client in verbose mode).
    /// Never put a secret here.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.facts.detail = Some(Text::from(detail.into()));
        self
    }

    /// A hint on how to fix it, replacing the reason's default hint.
    pub fn hint(mut self, hint: impl Into<Cow<'static, str>>) -> Self {
        self.facts.hint = Some(Text::from(hint.into()));
        self
    }

    /// [`detail`](Self::detail) as its parts, joined only if something reads it.
    pub(crate) fn detail_parts(mut self, detail: Text) -> Self {
        self.facts.detail = Some(detail);
        self
    }

    /// [`hint`](Self::hint) as its parts, joined only if something reads it.
    pub(crate) fn hint_parts(mut self, hint: Text) -> Self {
        self.facts.hint = Some(hint);
        self
    }

    /// The scopes that were required (for [`Reason::InsufficientScope`]).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.facts.scope = Some(scope.into());
        self
    }

    /// The step-up requirement a token failed (for
    /// [`Reason::InsufficientUserAuthentication`]): the accepted `acr` values, in order
    /// of preference, and the longest accepted time since the user authenticated. They
    /// go into the challenge's `acr_values` and `max_age` (RFC 9470 §3).
    pub fn step_up(mut self, acr_values: Option<String>, max_age: Option<u64>) -> Self {
        self.facts.acr_values = acr_values;
        self.facts.max_age = max_age;
        self
    }

    /// The name of the role or policy check that failed (for [`Reason::Forbidden`]).
    pub fn check(mut self, check: impl Into<Cow<'static, str>>) -> Self {
        self.facts.check = Some(check.into());
        self
    }

    /// The user name involved, for the log only (never shown to the client).
    pub fn user(mut self, user: &str) -> Self {
        self.facts.user = Some(cap(user));
        self
    }

    /// The unverified or verified facts read from a token.
    pub fn token_facts(&self) -> Option<&TokenFacts> {
        self.facts.token.as_deref()
    }

    /// The specific detail, if any.
    pub fn detail_text(&self) -> Option<&str> {
        self.facts.detail()
    }

    /// The status of the answer: the one the layer sent, once a layer has handled the
    /// failure (a kept or corrected answer of the wrapped service included), else the
    /// reason's own.
    pub fn status(&self) -> http::StatusCode {
        self.facts.answered.unwrap_or(self.reason.status())
    }

    /// The user name the client claimed (Basic), capped and escaped. Not verified: an
    /// attacker chooses it, so key lockout counters by it with care.
    pub fn claimed_user(&self) -> Option<&str> {
        self.facts.user.as_deref()
    }

    /// A keyed hash prefix of the credential the client sent, the `fingerprint` of the log
    /// event: equal for equal credentials within one process, useless to recover them.
    pub fn credential_fingerprint(&self) -> Option<&str> {
        self.facts.fingerprint()
    }

    /// The scheme the client spoke, as a label: `bearer`, `dpop`, `basic`, `api_key`,
    /// `cookie`, `proxy_assertion` (an identity-aware proxy's assertion header), `other`
    /// for any other scheme word or an `Authorization` value without one,
    /// `none` when no credential was found. A credential without a scheme word is named by
    /// where it was: a cookie is `cookie`, another header `api_key`, an `access_token`
    /// query parameter `bearer` (RFC 6750 §2.3).
    pub fn scheme_received(&self) -> &'static str {
        let f = &self.facts;
        match (f.received_scheme.as_deref(), &f.location) {
            (Some(word), _) => crate::metrics::received_label(Some(word)),
            (None, Some(Location::Cookie(_))) => "cookie",
            (None, Some(Location::Header(_))) => "api_key",
            (None, Some(Location::Query(_))) => "bearer",
            (None, Some(Location::Authorization)) => "other",
            (None, None) if f.had_credentials => "other",
            (None, None) => "none",
        }
    }

    pub(crate) fn answered(mut self, status: http::StatusCode) -> Self {
        self.facts.answered = Some(status);
        self
    }

    /// The reason the client sees in `mode` (collapsed in production where the precise
    /// one would be an oracle).
    pub(crate) fn client_reason(&self, mode: crate::reason::DetailMode) -> Reason {
        self.reason.client_reason(mode, self.facts.had_credentials)
    }

    /// Everything known about the failure, for rendering and logging.
    pub(crate) fn facts(&self) -> &Facts {
        &self.facts
    }

    /// The same facts under another reason (an upstream correction of a diagnosis).
    pub(crate) fn reason_now(mut self, reason: Reason) -> Self {
        self.reason = reason;
        self
    }

    /// Where the credential was.
    pub(crate) fn location(mut self, location: Location) -> Self {
        self.facts.location = Some(location);
        self
    }

    /// What the token says about itself.
    pub(crate) fn token(mut self, token: TokenFacts) -> Self {
        self.facts.token = Some(std::sync::Arc::new(token));
        self
    }

    /// Marks the token facts as verified or not (`signature_verified`).
    pub(crate) fn token_verified(mut self, verified: bool) -> Self {
        match self.facts.token.as_mut() {
            Some(t) if t.verified != verified => std::sync::Arc::make_mut(t).verified = verified,
            _ => {}
        }
        self
    }

    /// A stable hint code for the log's `hints` field.
    pub(crate) fn tag(mut self, code: &'static str) -> Self {
        if !code.is_empty() && !self.facts.hints.contains(&code) {
            self.facts.hints.push(code);
        }
        self
    }

    /// The credential's fingerprint.
    /// Refused although `principal`'s credentials verified.
    pub(crate) fn verified_as(mut self, principal: Verified) -> Self {
        self.facts.verified = Some(Box::new(principal));
        self
    }

    pub(crate) fn fingerprint(mut self, fp: crate::sanitize::Fingerprint) -> Self {
        self.facts.fingerprint = Some(fp);
        self
    }

    /// What the route accepts, in words.
    pub(crate) fn expected(mut self, expected: impl Into<Cow<'static, str>>) -> Self {
        self.facts.expected_scheme = Some(expected.into());
        self
    }

    /// What the route accepts, unless already said.
    pub(crate) fn or_expected(self, expected: impl FnOnce() -> Cow<'static, str>) -> Self {
        match self.facts.expected_scheme {
            Some(_) => self,
            None => self.expected(expected()),
        }
    }

    /// The scheme word the client sent (already made printable).
    pub(crate) fn received(mut self, scheme: Option<&str>) -> Self {
        self.facts.received_scheme = scheme.map(cap);
        self
    }

    /// The scheme word the client sent, unless already said.
    pub(crate) fn or_received(self, scheme: &str) -> Self {
        match self.facts.received_scheme {
            Some(_) => self,
            None => self.received(Some(scheme)),
        }
    }

    /// The claim at fault.
    pub(crate) fn claim(mut self, claim: impl Into<Cow<'static, str>>) -> Self {
        self.facts.claim = Some(claim.into());
        self
    }

    /// The issuers that would have been accepted.
    pub(crate) fn expected_iss(mut self, expected: Option<String>) -> Self {
        self.facts.expected_iss = expected;
        self
    }

    /// The audiences that would have been accepted.
    pub(crate) fn expected_aud(mut self, expected: Option<String>) -> Self {
        self.facts.expected_aud = expected;
        self
    }

    /// Seconds for `Retry-After` on a 503.
    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.facts.retry_after = Some(secs);
        self
    }

    /// The reason was inferred from unverified request data, not decided by this layer.
    pub(crate) fn inferred(mut self, inferred: bool) -> Self {
        self.facts.inferred = inferred;
        self
    }

    /// The reason the request itself suggests, beside an upstream correction.
    pub(crate) fn inferred_reason(mut self, reason: Option<Reason>) -> Self {
        self.facts.inferred_reason = reason;
        self
    }

    /// What the wrapped service answered.
    pub(crate) fn upstream_status(mut self, status: u16) -> Self {
        self.facts.upstream_status = Some(status);
        self
    }

    /// Whether the request carried credentials.
    pub(crate) fn had_credentials(mut self, had: bool) -> Self {
        self.facts.had_credentials = had;
        self
    }

    /// The key source consulted for the token's key.
    pub(crate) fn keys(mut self, keys: KeyFacts) -> Self {
        self.facts.keys = Some(Box::new(keys));
        self
    }

    /// A fresh DPoP nonce the answer hands the client.
    pub(crate) fn dpop_nonce(mut self, nonce: String) -> Self {
        self.facts.dpop_nonce = Some(nonce);
        self
    }

    /// Drops a hint that replaced the reason's own.
    pub(crate) fn default_hint(mut self) -> Self {
        self.facts.hint = None;
        self
    }
}

impl fmt::Debug for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthFailure")
            .field("reason", &self.reason.code())
            .field("detail", &self.facts.detail)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.facts.detail() {
            Some(d) => write!(f, "{}: {d}", self.reason.code()),
            None => f.write_str(self.reason.code()),
        }
    }
}

impl std::error::Error for AuthFailure {}

impl From<Reason> for AuthFailure {
    fn from(reason: Reason) -> Self {
        AuthFailure::new(reason)
    }
}
