//! Axum extractors and responses: [`Principal`], [`Claims`], [`AuthRequestId`], and
//! [`AuthFailure`] as a response.

use crate::authn::Principal;
use crate::failure::AuthFailure;
use crate::problem::RenderConfig;
use crate::reason::Reason;
use crate::request_id::AuthRequestId;
use crate::sanitize::cap;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use serde::de::DeserializeOwned;

impl IntoResponse for AuthFailure {
    /// Renders with the defaults (production detail, realm `api`, a Bearer challenge) and
    /// keeps the failure in the response extensions, so an enclosing
    /// [`AuthDiagnostics`](crate::AuthDiagnostics) layer re-renders it with its own
    /// configuration and logs it.
    fn into_response(self) -> Response {
        let mut response = self.render(&RenderConfig::DEFAULT, None);
        response.extensions_mut().insert(self);
        response
    }
}

fn unauthenticated() -> AuthFailure {
    AuthFailure::new(Reason::CredentialsMissing).detail(
        "no principal: this route is not behind an AuthDiagnostics layer that authenticates",
    )
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = AuthFailure;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(unauthenticated)
    }
}

/// `Option<Principal>`: `None` for a request an [optional](crate::AuthDiagnostics::optional)
/// layer let through without credentials (or one no layer authenticated).
impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthRequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(match parts.extensions.get::<AuthRequestId>() {
            Some(id) => id.clone(),
            None => AuthRequestId::ensure(&mut parts.headers),
        })
    }
}

/// The verified JWT claims of the request, deserialized into `T`.
///
/// A token whose claims do not fit `T` is refused with `token_claim_missing` (the log names
/// the field).
///
/// ```
/// use auth_diagnostics::jwt::Claims;
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct MyClaims { sub: String, tenant: String }
///
/// async fn handler(Claims(c): Claims<MyClaims>) -> String {
///     format!("{} of {}", c.sub, c.tenant)
/// }
/// # let _ = handler;
/// ```
#[derive(Debug, Clone)]
pub struct Claims<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Claims<T> {
    type Rejection = AuthFailure;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .ok_or_else(unauthenticated)?;
        let Some(value) = principal.claims_value() else {
            return Err(AuthFailure::new(Reason::TokenClaimMissing)
                .detail("the request was not authenticated by a JWT; there are no claims"));
        };
        T::deserialize(value).map(Claims).map_err(|e| {
            let message = e.to_string();
            let f = AuthFailure::new(Reason::TokenClaimMissing).detail(format!(
                "the claims do not fit the handler's type: {}",
                cap(&message)
            ));
            // serde says "missing field `tenant`": name the claim.
            let claim = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split_once('`'))
                .map(|(name, _)| name);
            match claim {
                Some(name) => f.claim(cap(name).to_string()),
                None => f,
            }
        })
    }
}
