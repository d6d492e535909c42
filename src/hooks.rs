//! What the application hears of each outcome besides the log: the [`OnFailure`] and
//! [`OnSuccess`] hooks, and the fields the layer records on the enclosing request span.
//!
//! Hooks see; they cannot change the answer. They run on the request's task, before the
//! response leaves: keep them quick and hand slow work (a SIEM call) to a channel.

use crate::authn::Principal;
use crate::failure::AuthFailure;
use crate::sanitize::clean_text;
use http::request::Parts;
use http::Request;
use std::sync::Arc;
use tracing::Span;

/// Called for every failure a layer answers, corrects or diagnoses, before flood control
/// decides whether it is logged: audit logs, lockout counters, SIEM export.
///
/// Any `Fn(&AuthFailure, &Parts) + Send + Sync + 'static` closure is one. The
/// [`AuthFailure`] is typed: its [`reason`](AuthFailure::reason), the
/// [`status`](AuthFailure::status) answered, the [`claimed_user`](AuthFailure::claimed_user)
/// and the [`credential_fingerprint`](AuthFailure::credential_fingerprint). The [`Parts`] are
/// the request as it reached the layer, credentials included: take facts from the failure,
/// not from the headers, when you log.
///
/// ```
/// use auth_diagnostics::failure::AuthFailure;
/// use auth_diagnostics::{AuthDiagnostics, Reason};
/// use http::request::Parts;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let bad_passwords = Arc::new(AtomicU64::new(0));
/// let counter = bad_passwords.clone();
/// let layer = AuthDiagnostics::new().on_failure(move |failure: &AuthFailure, _: &Parts| {
///     if failure.reason() == Reason::BasicPasswordMismatch {
///         counter.fetch_add(1, Ordering::Relaxed);
///     }
/// });
/// # let _ = layer;
/// ```
pub trait OnFailure: Send + Sync + 'static {
    /// Hears one failure of the request `request`.
    fn on_failure(&self, failure: &AuthFailure, request: &Parts);
}

impl<F> OnFailure for F
where
    F: Fn(&AuthFailure, &Parts) + Send + Sync + 'static,
{
    fn on_failure(&self, failure: &AuthFailure, request: &Parts) {
        self(failure, request)
    }
}

/// Called for every request a layer authenticates, with the principal, before the wrapped
/// service sees it.
///
/// Any `Fn(&Principal, &Parts) + Send + Sync + 'static` closure is one.
///
/// ```
/// use auth_diagnostics::{AuthDiagnostics, Principal};
/// use http::request::Parts;
///
/// let layer = AuthDiagnostics::new().on_success(|who: &Principal, request: &Parts| {
///     tracing::debug!(user = who.id(), path = request.uri.path(), "authenticated");
/// });
/// # let _ = layer;
/// ```
pub trait OnSuccess: Send + Sync + 'static {
    /// Hears that `principal` sent `request`.
    fn on_success(&self, principal: &Principal, request: &Parts);
}

impl<F> OnSuccess for F
where
    F: Fn(&Principal, &Parts) + Send + Sync + 'static,
{
    fn on_success(&self, principal: &Principal, request: &Parts) {
        self(principal, request)
    }
}

/// A configured hook, shared by the layer's services.
pub(crate) struct Hook<T: ?Sized>(pub Arc<T>);

impl<T: ?Sized> Clone for Hook<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: ?Sized> std::fmt::Debug for Hook<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

/// A copy of a request's head (without its body), for a failure hook that runs after the
/// request went to the wrapped service.
pub(crate) fn head_of<B>(req: &Request<B>) -> Parts {
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = req.method().clone();
    parts.uri = req.uri().clone();
    parts.version = req.version();
    parts.headers = req.headers().clone();
    parts.extensions = req.extensions().clone();
    parts
}

/// Calls `f` with the head of `req`, borrowed, and gives the request back.
pub(crate) fn with_head<B>(req: Request<B>, f: impl FnOnce(&Parts)) -> Request<B> {
    let (parts, body) = req.into_parts();
    f(&parts);
    Request::from_parts(parts, body)
}

/// The request span's fields: `auth.reason`, `auth.scheme` and `auth.status` for a failure,
/// `auth.scheme` (and `enduser.id` when allowed) for a success. A span records only the
/// fields it declared, so a span without them costs nothing more.
pub(crate) mod span {
    use super::*;

    /// Longest principal id recorded.
    const MAX_ID: usize = 256;

    pub(crate) fn failure(reason: &str, scheme: &str, status: u16) {
        let span = Span::current();
        if span.is_disabled() {
            return;
        }
        span.record("auth.reason", reason);
        span.record("auth.scheme", scheme);
        span.record("auth.status", status);
    }

    pub(crate) fn anonymous() {
        let span = Span::current();
        if !span.is_disabled() {
            span.record("auth.scheme", "none");
        }
    }

    pub(crate) fn success(scheme: &str, principal: &Principal, enduser_id: bool) {
        let span = Span::current();
        if span.is_disabled() {
            return;
        }
        span.record("auth.scheme", scheme);
        if enduser_id {
            if let Some(id) = principal.id() {
                span.record("enduser.id", clean_text(id, MAX_ID).as_str());
            }
        }
    }
}
