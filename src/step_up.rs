//! [`RequireStepUp`]: RFC 9470 step-up authentication, a per-route requirement on how
//! (`acr`) and how recently (`auth_time`) the user behind a token authenticated.

use crate::authn::Principal;
use crate::failure::AuthFailure;
use crate::jws::numeric_date;
use crate::reason::Reason;
use crate::sanitize::cap;
use crate::scope::{RequireService, Rule};
use crate::time::{now, rfc3339};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tower_layer::Layer;

/// Requires a strong or recent enough login on a route (RFC 9470): the token's `acr` must
/// be one of the accepted values, and/or its `auth_time` no older than `max_age`.
///
/// A valid token that falls short gets 401 with
/// `WWW-Authenticate: Bearer error="insufficient_user_authentication", acr_values="…",
/// max_age="…"` (every configured requirement, so the client asks its authorization server
/// for a login that meets them all), and the log names the requirement and what the token
/// had. An invalid token is `invalid_token` first: the requirement is never disclosed to a
/// request that did not authenticate (RFC 9470 §9). Put it on the route with
/// `route_layer`, inside an [`AuthDiagnostics`](crate::AuthDiagnostics) layer:
///
/// ```
/// use auth_diagnostics::authz::RequireStepUp;
/// use auth_diagnostics::jwt::JwtAuthenticator;
/// use auth_diagnostics::keys::StaticKey;
/// use auth_diagnostics::AuthDiagnostics;
/// use axum::{routing::post, Router};
/// use std::time::Duration;
///
/// let jwt = JwtAuthenticator::new(StaticKey::hs256("secret"))
///     .issuer("https://issuer.example")
///     .audience("bank-api");
/// let app: Router = Router::new()
///     .route(
///         "/transfer",
///         post(|| async { "sent" }).route_layer(
///             RequireStepUp::new()
///                 .acr_values(["urn:example:mfa"])
///                 .max_age(Duration::from_secs(300)),
///         ),
///     )
///     .layer(AuthDiagnostics::new().bearer(jwt));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a layer does nothing until a route is wrapped with it"]
pub struct RequireStepUp {
    acr: Option<Arc<[String]>>,
    max_age: Option<u64>,
}

impl RequireStepUp {
    /// A requirement of nothing yet: add [`acr_values`](Self::acr_values) and/or
    /// [`max_age`](Self::max_age).
    pub fn new() -> Self {
        Self::default()
    }

    /// The accepted `acr` values, in order of preference (the challenge lists them so).
    pub fn acr_values<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.acr = Some(values.into_iter().map(Into::into).collect());
        self
    }

    /// The longest time since the user authenticated (`auth_time`), whole seconds.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age.as_secs());
        self
    }

    /// `Ok` when `principal`'s token meets every requirement.
    pub fn check(&self, principal: Option<&Principal>) -> Result<(), AuthFailure> {
        let Some(principal) = principal else {
            return Err(AuthFailure::new(Reason::CredentialsMissing).detail(
                "no principal: RequireStepUp needs an AuthDiagnostics layer that authenticates",
            ));
        };
        let claims = principal.claims();
        let claim = |name: &str| claims.and_then(|c| c.get(name));
        let shortfall = self
            .acr_shortfall(claim("acr"))
            .or_else(|| self.age_shortfall(claim("auth_time"), now()));
        let Some((name, detail)) = shortfall else {
            return Ok(());
        };
        let acr_values = self.acr.as_ref().map(|a| a.join(" "));
        let failure = AuthFailure::new(Reason::InsufficientUserAuthentication)
            .received(principal.scheme().map(|s| s.as_str()))
            .step_up(acr_values, self.max_age)
            .check(name)
            .claim(name)
            .detail(detail);
        Err(match principal.id() {
            Some(id) => failure.user(id),
            None => failure,
        })
    }

    /// Why the token's `acr` is not accepted, if it is not.
    fn acr_shortfall(&self, acr: Option<&Value>) -> Option<(&'static str, String)> {
        let accepted = self.acr.as_ref()?;
        let had = match acr {
            None => "the token has no acr".to_owned(),
            Some(Value::String(a)) if accepted.iter().any(|x| x == a) => return None,
            Some(Value::String(a)) => format!("the token's acr is {}", cap(a)),
            Some(_) => "the token's acr is not a string".to_owned(),
        };
        Some((
            "acr",
            format!(
                "{had}; this resource requires one of: {}",
                accepted.join(" ")
            ),
        ))
    }

    /// Why the token's `auth_time` is too old, if it is.
    fn age_shortfall(&self, auth_time: Option<&Value>, now: i64) -> Option<(&'static str, String)> {
        let max = self.max_age?;
        let Some(at) = auth_time.and_then(numeric_date) else {
            return Some((
                "auth_time",
                format!("the token has no numeric auth_time; this resource requires a login within {max} s"),
            ));
        };
        // A login in the future is no login: it would satisfy every `max_age` forever.
        // JWTs are refused for this before (`token_claim_invalid`); this covers principals
        // built elsewhere, with the most clock skew any authenticator allows.
        let skew = crate::authn::jwt::JwtAuthenticator::MAX_LEEWAY.as_secs() as i64;
        if at > now.saturating_add(skew) {
            return Some((
                "auth_time",
                format!(
                    "the token's auth_time {} is {} s in the future; this resource requires a login within {max} s",
                    rfc3339(at),
                    at.saturating_sub(now)
                ),
            ));
        }
        let age = now.saturating_sub(at);
        (age > max as i64).then(|| {
            (
                "auth_time",
                format!(
                    "the user authenticated at {} ({age} s ago); this resource requires a login within {max} s",
                    rfc3339(at)
                ),
            )
        })
    }
}

impl<S> Layer<S> for RequireStepUp {
    type Service = RequireService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let rule = self.clone();
        RequireService::new(inner, Rule::new(move |p| rule.check(p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(auth_time: i64) -> Principal {
        let claims = serde_json::json!({ "sub": "alice", "auth_time": auth_time });
        Principal::from_jwt(claims.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn a_login_in_the_future_never_satisfies_max_age() {
        let rule = RequireStepUp::new().max_age(Duration::from_secs(300));
        let now = now();
        assert!(rule.check(Some(&principal(now - 10))).is_ok());
        // Within the most skew an authenticator allows: as the token's verifier decided.
        assert!(rule.check(Some(&principal(now + 120))).is_ok());
        let err = rule.check(Some(&principal(now + 86_400))).unwrap_err();
        assert_eq!(err.reason(), Reason::InsufficientUserAuthentication);
        assert!(err.detail_text().unwrap().contains("in the future"));
    }
}
