//! Admission: whether a request whose credentials verified (or that carries none) may
//! reach the wrapped service. The revocation list, the origin check of a cookie session
//! (CSRF), the scopes every request of the layer needs, the account hook, and optional
//! authentication's guests — all decided here, in this order, before the wrapped service
//! is called. Per-route
//! requirements ([`RequireScope`](crate::authz::RequireScope),
//! [`RequireStepUp`](crate::authz::RequireStepUp)) are layers of their own.

use crate::authn::verify::AuthFuture;
use crate::authn::{Pending, Principal};
use crate::config::Config;
use crate::failure::AuthFailure;
use crate::reason::Reason;
use crate::scheme::Scheme;
use crate::store::{CredentialIds, RevocationList};
use serde_json::Value;
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
        return Err(f.clone().verified_as(principal.verified()));
    }
    match &config.required_scope {
        Some(scope) => scope
            .check(Some(principal))
            .map_err(|f| f.verified_as(principal.verified())),
        None => Ok(()),
    }
}

/// With optional authentication, whether `failure` lets the request through as a
/// guest: nothing credential-like at all, or only what a web page carries anyway (a
/// cookie this layer does not read, a `?token=` that may be a page cursor) and nothing
/// beside it. A credential a client puts somewhere on purpose (`Authorization`, an API
/// key or token header, `?access_token=`, `?api_key=`) is refused, never downgraded.
/// In report-only mode every refusal passes (as a would-be refusal, see
/// [`Answer::anonymous`](crate::answer::Answer::anonymous)).
pub(crate) fn passes_anonymously(
    config: &Config,
    failure: &AuthFailure,
    headers: &http::HeaderMap,
    uri: &http::Uri,
) -> bool {
    // Report-only: every refusal of authentication passes (logged as would-be refused).
    config.report_only || guest(config, failure, headers, uri)
}

/// With optional authentication, whether `failure` is only what a guest shows (see
/// [`passes_anonymously`]): no refusal at all, in report-only mode too.
pub(crate) fn guest(
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

/// Admits `principal`, whose credentials verified while the request was read: the
/// revocation list when there is one (a future: the list may be remote), [`admit`], then
/// the account hook when there is one.
pub(crate) fn decide(
    config: &Arc<Config>,
    principal: Principal,
    forged: Option<&AuthFailure>,
) -> Admission {
    if let Some(list) = &config.revocation {
        if let Some((ids, reason)) = revocation_ids(&principal) {
            let (list, config, forged) = (list.clone(), config.clone(), forged.cloned());
            return Admission::Later(Box::pin(async move {
                let principal =
                    not_revoked(&*list, config.revocation_fails_open, principal, ids, reason)
                        .await?;
                admit(&config, &principal, forged.as_ref())?;
                match &config.account {
                    Some(hook) => hook.clone().check(principal).await,
                    None => Ok(principal),
                }
            }));
        }
    }
    if let Err(failure) = admit(config, &principal, forged) {
        if config.report_only {
            // Answered where the application's verifier's refusals are: the request goes
            // on anonymously (`ResponseFuture`).
            return Admission::Later(Box::pin(std::future::ready(Err(failure))));
        }
        return Admission::Refused(failure);
    }
    match &config.account {
        None => Admission::Admitted(principal),
        Some(hook) => Admission::Later(Box::pin(hook.clone().check(principal))),
    }
}

/// What the revocation list is asked about `principal`, and the reason a match is
/// answered with: a token's verified `jti`, `sid`, `sub` and `iat`; a session's id
/// ([`Principal::with_session_id`]) and subject. `None` for other schemes, and for a
/// principal with none of these.
fn revocation_ids(principal: &Principal) -> Option<(CredentialIds, Reason)> {
    let mut ids = CredentialIds::default();
    let reason = match principal.scheme()? {
        Scheme::Bearer | Scheme::Dpop => {
            let claims = principal.claims()?;
            let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
            ids.jti = text("jti");
            ids.sid = text("sid");
            ids.sub = text("sub");
            ids.issued_at = claims.get("iat").and_then(|iat| {
                iat.as_i64()
                    .or_else(|| iat.as_f64().map(|t| t.floor() as i64))
            });
            Reason::TokenRevoked
        }
        Scheme::Cookie => {
            ids.sid = principal.session_id().map(str::to_owned);
            ids.sub = principal.id().map(str::to_owned);
            Reason::SessionRevoked
        }
        _ => return None,
    };
    (!ids.is_empty()).then_some((ids, reason))
}

/// `principal`, unless `list` names its credential (`reason`, 401). A list that cannot
/// be read refuses with 503 `revocation_unavailable`, or — failing open — is logged at
/// ERROR and lets the principal through.
async fn not_revoked(
    list: &dyn RevocationList,
    fails_open: bool,
    principal: Principal,
    ids: CredentialIds,
    reason: Reason,
) -> Result<Principal, AuthFailure> {
    match list.check(ids).await {
        Ok(None) => Ok(principal),
        Ok(Some(by)) => {
            let failure = AuthFailure::new(reason).detail(match reason {
                Reason::SessionRevoked => format!("the session's {} was revoked", by.as_str()),
                _ => format!("the token's {} was revoked", by.as_str()),
            });
            Err(match principal.id() {
                Some(id) => failure.user(id),
                None => failure,
            }
            .verified_as(principal.verified()))
        }
        Err(e) if fails_open => {
            tracing::error!(
                target: "auth_diagnostics",
                error = %e,
                "the revocation list cannot be read: the credential is accepted unchecked \
                 (AuthDiagnostics::revocation_fails_open)"
            );
            Ok(principal)
        }
        Err(e) => Err(AuthFailure::new(Reason::RevocationUnavailable)
            .detail(format!("the revocation list cannot be read: {e}"))
            .retry_after(5)
            .verified_as(principal.verified())),
    }
}

/// A refusal that comes after the credentials verified (the account's state, a forged
/// cross-site request): the request counts as authenticated when the wrapped service's
/// answers are judged.
pub(crate) fn after_authentication(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::AccountDisabled
            | Reason::AccountLocked
            | Reason::CrossSiteRequest
            | Reason::TokenRevoked
            | Reason::SessionRevoked
            | Reason::RevocationUnavailable
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
        let principal = match (&config.revocation, revocation_ids(&principal)) {
            (Some(list), Some((ids, reason))) => not_revoked(
                &**list,
                config.revocation_fails_open,
                principal,
                ids,
                reason,
            )
            .await
            .map_err(|f| pending.annotate(f))?,
            _ => principal,
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
