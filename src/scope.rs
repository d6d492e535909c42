//! Per-route requirements on an authenticated principal, for `route_layer`:
//! [`RequireScope`] (RFC 6750 scopes, 403) and [`RequireStepUp`](crate::authz::RequireStepUp)
//! (RFC 9470 step-up, 401);
//! their service and response future.

use crate::authn::Principal;
use crate::failure::AuthFailure;
use crate::reason::Reason;
use axum::body::Body;
use axum::response::IntoResponse;
use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Requires scopes on a route: 403 `insufficient_scope` with `scope="…"` in the Bearer
/// challenge when the authenticated principal lacks one of them.
///
/// Scopes are read from the space-separated `scope` claim and the `scp` claim (string or
/// array). Put it on the route with `route_layer`, inside an
/// [`AuthDiagnostics`](crate::AuthDiagnostics) layer that authenticates:
///
/// ```
/// use auth_diagnostics::authz::RequireScope;
/// use auth_diagnostics::jwt::JwtAuthenticator;
/// use auth_diagnostics::keys::StaticKey;
/// use auth_diagnostics::AuthDiagnostics;
/// use axum::{routing::get, Router};
///
/// let jwt = JwtAuthenticator::new(StaticKey::hs256("secret"))
///     .issuer("https://issuer.example")
///     .audience("my-api");
/// let app: Router = Router::new()
///     .route("/admin", get(|| async { "admin" }).route_layer(RequireScope::new(["admin"])))
///     .layer(AuthDiagnostics::new().bearer(jwt));
/// ```
#[derive(Clone, Debug)]
#[must_use = "a layer does nothing until a route is wrapped with it"]
pub struct RequireScope {
    scopes: Arc<[String]>,
    /// The scopes space-separated, as challenges name them.
    text: Arc<str>,
}

impl RequireScope {
    /// Requires every scope in `scopes`.
    pub fn new<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes: Arc<[String]> = scopes.into_iter().map(Into::into).collect();
        let text = scopes.join(" ").into();
        Self { scopes, text }
    }

    /// The required scopes, space-separated.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// `Ok` when `principal` has every required scope.
    pub fn check(&self, principal: Option<&Principal>) -> Result<(), AuthFailure> {
        let Some(principal) = principal else {
            return Err(AuthFailure::new(Reason::CredentialsMissing).detail(
                "no principal: RequireScope needs an AuthDiagnostics layer that authenticates",
            ));
        };
        let missing: Vec<&str> = self
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|s| !principal.has_scope(s))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let granted: Vec<&str> = principal.scopes().collect();
        let granted = if granted.is_empty() {
            "none".to_owned()
        } else {
            granted.join(" ")
        };
        let failure = AuthFailure::new(Reason::InsufficientScope)
            .received(principal.scheme().map(|s| s.as_str()));
        let failure = match principal.id() {
            Some(id) => failure.user(id),
            None => failure,
        };
        Err(failure.scope(self.text.to_string()).detail(format!(
            "the token lacks scope {}; granted: {}",
            missing.join(" "),
            crate::sanitize::cap(&granted)
        )))
    }
}

impl<S> Layer<S> for RequireScope {
    type Service = RequireService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let scope = self.clone();
        RequireService::new(inner, Rule::new(move |p| scope.check(p)))
    }
}

type Check = dyn Fn(Option<&Principal>) -> Result<(), AuthFailure> + Send + Sync;

/// What a [`RequireService`] checks: a requirement's `check`, shared by its clones.
#[derive(Clone)]
pub(crate) struct Rule(Arc<Check>);

impl Rule {
    pub(crate) fn new(
        check: impl Fn(Option<&Principal>) -> Result<(), AuthFailure> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(check))
    }

    fn check(&self, principal: Option<&Principal>) -> Result<(), AuthFailure> {
        (self.0)(principal)
    }
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rule")
    }
}

/// The service built by [`RequireScope`] and
/// [`RequireStepUp`](crate::authz::RequireStepUp).
#[derive(Clone, Debug)]
pub struct RequireService<S> {
    inner: S,
    rule: Rule,
}

impl<S> RequireService<S> {
    pub(crate) fn new(inner: S, rule: Rule) -> Self {
        Self { inner, rule }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = RequireFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match self.rule.check(req.extensions().get::<Principal>()) {
            Ok(()) => {
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                RequireFuture {
                    fut: Some(inner.call(req)),
                    rejected: None,
                }
            }
            Err(failure) => RequireFuture {
                fut: None,
                rejected: Some(failure.into_response()),
            },
        }
    }
}

pin_project! {
    /// The response future of [`RequireService`].
    pub struct RequireFuture<F> {
        #[pin]
        fut: Option<F>,
        rejected: Option<Response<Body>>,
    }
}

impl<F, ResBody, E> Future for RequireFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(response) = this.rejected.take() {
            return Poll::Ready(Ok(response));
        }
        match this.fut.as_pin_mut() {
            Some(fut) => Poll::Ready(Ok(ready!(fut.poll(cx))?.map(Body::new))),
            None => panic!("RequireFuture polled after completion"),
        }
    }
}
