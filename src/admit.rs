//! Admission: whether a request whose credentials verified (or that carries none) may
//! reach the wrapped service. The origin check of a cookie session (CSRF), the scopes every
//! request of the layer needs, the account hook, and optional authentication's guests —
//! all decided here, in this order, before the wrapped service is called. Per-route
//! requirements ([`RequireScope`](crate::authz::RequireScope),
//! [`RequireStepUp`](crate::authz::RequireStepUp)) are layers of their own.

use crate::authn::verify::AuthFuture;
use crate::authn::{Pending, Principal};
use crate::config::Config;
use crate::failure::AuthFailure;
use crate::reason::Reason;
use std::sync::Arc;

/// Whether an authenticated `principal` may pass: for a session cookie, the request's
/// origin check (`forged`, worked out before authentication); then the scopes every
/// request needs. Both before the account hook: a forged request never reaches it.
fn admit(
    config: &Config,
    principal: &Principal,
    forged: Option<&AuthFailure>,
) -> Result<(), AuthFailure> {
    if let (Some(f), Some(crate::scheme::Scheme::Cookie)) = (forged, principal.scheme()) {
        return Err(f.clone());
    }
    match &config.required_scope {
        Some(scope) => scope.check(Some(principal)),
        None => Ok(()),
    }
}

/// With optional authentication, whether `failure` lets the request through as a
/// guest: nothing credential-like at all, or only what a web page carries anyway (a
/// cookie this layer does not read, a `?token=` that may be a page cursor) and nothing
/// beside it. A credential a client puts somewhere on purpose (`Authorization`, an API
/// key or token header, `?access_token=`, `?api_key=`) is refused, never downgraded.
pub(crate) fn passes_anonymously(
    config: &Config,
    failure: &AuthFailure,
    headers: &http::HeaderMap,
    uri: &http::Uri,
) -> bool {
    use crate::failure::Location;
    if !config.optional {
        return false;
    }
    match failure.reason() {
        Reason::CredentialsMissing => true,
        Reason::CredentialsWrongLocation => {
            let page_state = match failure.facts().location() {
                Some(Location::Cookie(_)) => true,
                Some(Location::Query(name)) => name.eq_ignore_ascii_case("token"),
                _ => false,
            };
            page_state && !crate::evidence::carries_more_than_page_state(headers, uri)
        }
        _ => false,
    }
}

/// The origin check of a cookie session (CSRF): the refusal an unsafe request from another
/// site gets, worked out before authentication (it reads the request) and applied by
/// [`admit`] only when a session cookie authenticated the request.
pub(crate) fn cross_site(
    config: &Config,
    method: &http::Method,
    headers: &http::HeaderMap,
    uri: &http::Uri,
) -> Option<AuthFailure> {
    let pages = config.session_pages.as_ref()?;
    pages.cross_site(method, headers, uri)
}

/// What becomes of a request whose credentials verified at once.
pub(crate) enum Admission {
    /// Refused: a forged cross-site request, or a scope the layer requires is missing.
    Refused(AuthFailure),
    /// Admitted as this principal.
    Admitted(Principal),
    /// The account hook decides.
    Later(AuthFuture),
}

/// Admits `principal`, whose credentials verified while the request was read: [`admit`],
/// then the account hook when there is one.
pub(crate) fn decide(
    config: &Config,
    principal: Principal,
    forged: Option<&AuthFailure>,
) -> Admission {
    if let Err(failure) = admit(config, &principal, forged) {
        return Admission::Refused(failure);
    }
    match &config.account {
        None => Admission::Admitted(principal),
        Some(hook) => Admission::Later(Box::pin(hook.clone().check(principal))),
    }
}

/// A refusal that comes after the credentials verified (the account's state, a forged
/// cross-site request): the request counts as authenticated when the wrapped service's
/// answers are judged.
pub(crate) fn after_authentication(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::AccountDisabled | Reason::AccountLocked | Reason::CrossSiteRequest
    )
}

/// The application's verifier decides: then what [`admit`] checks, then the account
/// hook, each failure annotated with where the credential was.
pub(crate) fn decide_later(
    mut pending: Pending,
    config: Arc<Config>,
    forged: Option<AuthFailure>,
) -> AuthFuture {
    let scheme = pending.scheme;
    Box::pin(async move {
        let principal = match (&mut pending.fut).await {
            Ok(p) => p.with_scheme(scheme),
            Err(f) => return Err(pending.annotate(f)),
        };
        admit(&config, &principal, forged.as_ref()).map_err(|f| pending.annotate(f))?;
        match &config.account {
            Some(hook) => hook
                .clone()
                .check(principal)
                .await
                .map_err(|f| pending.annotate(f)),
            None => Ok(principal),
        }
    })
}
