//! [`Verify`]: the hook an application implements against its own store.

use crate::authn::Principal;
use crate::failure::AuthFailure;
use crate::reason::Reason;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a verification decided: the principal, or a precise failure.
pub type AuthResult = Result<Principal, AuthFailure>;

/// A boxed, sendable verification future.
pub type AuthFuture = Pin<Box<dyn Future<Output = AuthResult> + Send + 'static>>;

/// Checks credentials of type `C` against the application's own store (a database, a
/// config file, a remote service) and returns the principal or a precise failure.
///
/// Any `Fn(C) -> impl Future<Output = AuthResult>` closure is a `Verify<C>`. Answer with
/// the precise reason (`basic_user_unknown`, `api_key_revoked`, …): production detail
/// collapses the ones that would be an oracle, and the log keeps them. When the store
/// itself fails, answer [`AuthFailure::unavailable`]: that is a 503, never a 401.
///
/// ```
/// use auth_diagnostics::basic::BasicCredentials;
/// use auth_diagnostics::failure::AuthFailure;
/// use auth_diagnostics::verify::Verify;
/// use auth_diagnostics::{Principal, Reason};
///
/// fn store() -> impl Verify<BasicCredentials> {
///     |c: BasicCredentials| async move {
///         match c.user.as_str() {
///             "alice" if c.password.ct_eq("wonderland") => Ok(Principal::new("alice")),
///             "alice" => Err(AuthFailure::new(Reason::BasicPasswordMismatch)),
///             _ => Err(AuthFailure::new(Reason::BasicUserUnknown)),
///         }
///     }
/// }
/// # let _ = store();
/// ```
pub trait Verify<C>: Send + Sync + 'static {
    /// Verifies `credentials`.
    fn verify(&self, credentials: C) -> AuthFuture;
}

impl<C, F, Fut> Verify<C> for F
where
    F: Fn(C) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = AuthResult> + Send + 'static,
{
    fn verify(&self, credentials: C) -> AuthFuture {
        Box::pin(self(credentials))
    }
}

/// What the account-status hook answers for an authenticated principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// The account may proceed.
    Active,
    /// The account is disabled: 403 `account_disabled`.
    Disabled,
    /// The account is locked (e.g. too many failed sign-ins): 403 `account_locked`.
    Locked,
}

/// A boxed account-status future.
pub type StatusFuture = Pin<Box<dyn Future<Output = Result<AccountStatus, AuthFailure>> + Send>>;

/// Tells whether an authenticated principal's account may proceed. Runs after any scheme
/// verified the credentials; see [`AuthDiagnostics::account_status`](crate::AuthDiagnostics::account_status).
pub trait CheckAccount: Send + Sync + 'static {
    /// The status of `principal`'s account.
    fn check(&self, principal: &Principal) -> StatusFuture;
}

impl<F, Fut> CheckAccount for F
where
    F: Fn(&Principal) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AccountStatus, AuthFailure>> + Send + 'static,
{
    fn check(&self, principal: &Principal) -> StatusFuture {
        Box::pin(self(principal))
    }
}

/// The application's account-status hook, as the layer holds it.
#[derive(Clone)]
pub(crate) struct AccountHook(pub Arc<dyn CheckAccount>);

impl std::fmt::Debug for AccountHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountHook")
    }
}

impl AccountHook {
    /// Asks the hook about a principal whose credentials verified: 403
    /// `account_disabled` / `account_locked`, or the hook's own failure (a 503).
    pub(crate) async fn check(self, principal: Principal) -> AuthResult {
        let refuse = |reason: Reason| {
            let f = AuthFailure::new(reason);
            Err(match principal.id() {
                Some(id) => f.user(id),
                None => f,
            }
            .verified_as(principal.verified()))
        };
        match self.0.check(&principal).await {
            Ok(AccountStatus::Active) => Ok(principal),
            Ok(AccountStatus::Disabled) => refuse(Reason::AccountDisabled),
            Ok(AccountStatus::Locked) => refuse(Reason::AccountLocked),
            Err(f) => Err(f.verified_as(principal.verified())),
        }
    }
}
