//! [`AuthFailure`]: a rejection as a value that knows its reason and renders itself.

use crate::reason::Reason;
use crate::sanitize::{cap, Capped};
use std::borrow::Cow;
use std::fmt;

/// Where a credential was found (or looked for).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
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

/// The facts that explain a failure. Everything here may be logged; only what the
/// detail mode allows reaches the client.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    pub detail: Option<String>,
    pub hint: Option<Cow<'static, str>>,
    pub expected_scheme: Option<Cow<'static, str>>,
    pub received_scheme: Option<Capped>,
    pub location: Option<Location>,
    pub token: Option<TokenFacts>,
    pub expected_iss: Option<String>,
    pub expected_aud: Option<String>,
    pub claim: Option<Cow<'static, str>>,
    pub scope: Option<String>,
    pub check: Option<Cow<'static, str>>,
    pub fingerprint: Option<String>,
    pub user: Option<Capped>,
    pub retry_after: Option<u64>,
    /// The reason was inferred from unverified request data.
    pub inferred: bool,
    /// Stable codes of what the request shows (`bare_jwt`, `token_in_query`, …).
    pub hints: Vec<&'static str>,
    /// For an upstream correction: the reason the request itself suggests.
    pub inferred_reason: Option<Reason>,
    /// For an upstream correction or diagnosis: what the wrapped service answered.
    pub upstream_status: Option<u16>,
    /// What production detail shows instead of the reason's own collapse.
    pub client_override: Option<Reason>,
}

/// A refused request: a [`Reason`] plus the facts that explain it.
///
/// Handlers and inner middleware return it to refuse a request; when an
/// [`AuthDiagnostics`](crate::AuthDiagnostics) layer wraps them, the layer renders it
/// with its own configuration (realm, detail mode, schemes) and logs it like its own
/// failures. Without the layer it renders with the defaults (production detail).
///
/// ```
/// use auth_diagnostics::{AuthFailure, Reason};
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
    pub(crate) reason: Reason,
    pub(crate) facts: Box<Facts>,
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
        let mut f = AuthFailure::new(Reason::AuthenticatorUnavailable).detail(detail);
        f.facts.retry_after = Some(5);
        f
    }

    /// The precise reason.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// A specific explanation for the log (and for the client in verbose mode).
    /// Never put a secret here.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.facts.detail = Some(detail.into());
        self
    }

    /// A hint on how to fix it, replacing the reason's default hint.
    pub fn hint(mut self, hint: impl Into<Cow<'static, str>>) -> Self {
        self.facts.hint = Some(hint.into());
        self
    }

    /// The scopes that were required (for [`Reason::InsufficientScope`]).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.facts.scope = Some(scope.into());
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
        self.facts.token.as_ref()
    }

    /// The specific detail, if any.
    pub fn detail_text(&self) -> Option<&str> {
        self.facts.detail.as_deref()
    }

    pub(crate) fn with_location(mut self, location: Location) -> Self {
        self.facts.location = Some(location);
        self
    }

    pub(crate) fn with_token(mut self, token: TokenFacts) -> Self {
        self.facts.token = Some(token);
        self
    }

    /// Adds a stable hint code for the log's `hints` field.
    pub(crate) fn tag(mut self, code: &'static str) -> Self {
        if !self.facts.hints.contains(&code) {
            self.facts.hints.push(code);
        }
        self
    }

    pub(crate) fn with_fingerprint(mut self, fp: String) -> Self {
        self.facts.fingerprint = Some(fp);
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
        match &self.facts.detail {
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
