//! [`HideForbidden`]: a 404 instead of a 403 on the routes an application marks, so that
//! a principal without permission cannot tell that the resource exists (RFC 9110 §15.5.4:
//! "An origin server that wishes to "hide" the current existence of a forbidden target
//! resource MAY instead respond with a status code of 404").

use crate::failure::AuthFailure;
use axum::body::Body;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// The `hints` code of a refusal answered 404 instead of 403.
pub(crate) const HIDDEN: &str = "hidden_as_404";

/// Answers 404 instead of 403 on the routes it is put on: every refusal of an
/// authenticated principal that this crate renders there (`insufficient_scope` of a
/// [`RequireScope`](crate::authz::RequireScope), a handler's [`AuthFailure`], and, when it wraps
/// the [`AuthDiagnostics`](crate::AuthDiagnostics) layer, that layer's own 403s such as
/// `account_disabled` or `cross_site_request`).
///
/// The 404 is the router's own: no `WWW-Authenticate`, no body, nothing that says the
/// resource exists; only `X-Request-Id`, and `Cache-Control: private` for a principal of
/// an API key or a cookie, as on every answer the layer passes for those. For it to match
/// the 404 of a path that does not exist header for header, put the
/// [`AuthDiagnostics`](crate::AuthDiagnostics) layer around the whole router (`.layer`),
/// so that those 404s pass through it too. The log event keeps the real reason, with
/// `status=404` and the hint `hidden_as_404`. A 401 stays a 401: a client without valid credentials is told to
/// authenticate (hiding from it would also hide the way to sign in). Off unless put on a
/// route.
///
/// ```
/// use auth_diagnostics::authz::HideForbidden;
/// use auth_diagnostics::basic::{BasicAuthenticator, BasicCredentials};
/// use auth_diagnostics::failure::AuthFailure;
/// use auth_diagnostics::{AuthDiagnostics, Principal, Reason};
/// use axum::{body::Body, routing::get, Router};
/// use http::{header, Request, StatusCode};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let basic = BasicAuthenticator::new(|c: BasicCredentials| async move {
///     Ok(Principal::new(c.user))
/// });
/// // Only the owner may see it; anyone else must not learn that it exists.
/// let report = get(|who: Principal| async move {
///     if who.id() == Some("owner") {
///         Ok("the report")
///     } else {
///         Err(AuthFailure::new(Reason::Forbidden).check("report owner"))
///     }
/// });
/// let app: Router = Router::new()
///     .route("/reports/7", report.route_layer(HideForbidden::new()))
///     .layer(AuthDiagnostics::new().basic(basic));
///
/// let as_alice = Request::get("/reports/7")
///     .header(header::AUTHORIZATION, "Basic YWxpY2U6cHc=") // alice:pw
///     .body(Body::empty())
///     .unwrap();
/// let response = app.clone().oneshot(as_alice).await.unwrap();
/// assert_eq!(response.status(), StatusCode::NOT_FOUND);
/// assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
/// let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
/// assert!(body.is_empty());
///
/// // Without credentials it is still 401, with its challenge.
/// let anonymous = Request::get("/reports/7").body(Body::empty()).unwrap();
/// let response = app.oneshot(anonymous).await.unwrap();
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[must_use = "a layer does nothing until a route is wrapped with it"]
pub struct HideForbidden {
    _private: (),
}

impl HideForbidden {
    /// The marker: 404 instead of 403 on the routes it is put on.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for HideForbidden {
    type Service = HideService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HideService { inner }
    }
}

/// Tells an enclosing-by-this-marker [`AuthDiagnostics`](crate::AuthDiagnostics) service
/// that the route hides its 403s.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hidden;

/// Whether `req` is on a route marked with [`HideForbidden`].
pub(crate) fn wanted<B>(req: &Request<B>) -> bool {
    req.extensions().get::<Hidden>().is_some()
}

/// `failure`, marked to be answered 404, when it is a 403.
pub(crate) fn hidden(failure: AuthFailure) -> AuthFailure {
    if failure.status() == StatusCode::FORBIDDEN {
        failure.tag(HIDDEN)
    } else {
        failure
    }
}

/// Whether `failure` is answered 404 instead of its 403.
pub(crate) fn is_hidden(failure: &AuthFailure) -> bool {
    failure.status() == StatusCode::FORBIDDEN && failure.facts().hints().contains(&HIDDEN)
}

/// A refusal in `response`'s extensions (not rendered by a layer yet), marked hidden.
pub(crate) fn hide_unrendered<B>(response: &mut Response<B>) {
    if let Some(failure) = response.extensions_mut().remove::<AuthFailure>() {
        response.extensions_mut().insert(hidden(failure));
    }
}

/// The answer to a hidden refusal: the router's own 404, with the request id only.
pub(crate) fn not_found(request_id: Option<&crate::request_id::AuthRequestId>) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NOT_FOUND;
    if let Some(id) = request_id {
        response
            .headers_mut()
            .insert(crate::request_id::X_REQUEST_ID, id.header_value().clone());
    }
    response
}

/// Whether `response` carries a refusal marked hidden, not rendered by a layer yet.
pub(crate) fn carries_hidden<B>(response: &Response<B>) -> bool {
    response
        .extensions()
        .get::<AuthFailure>()
        .is_some_and(is_hidden)
}

/// A hidden 404 for a principal that an API key or a cookie authenticated says
/// `Cache-Control: private`, as the layer makes every answer to such a request, the
/// router's own 404 included (shared caches do not key on those credentials).
pub(crate) fn like_the_routers(response: &mut Response<Body>, private: bool) {
    if private && response.status() == StatusCode::NOT_FOUND {
        response
            .headers_mut()
            .entry(http::header::CACHE_CONTROL)
            .or_insert(http::HeaderValue::from_static("private"));
    }
}

/// The service built by [`HideForbidden`].
#[derive(Clone, Debug)]
pub struct HideService<S> {
    inner: S,
}

impl<S, ReqBody> Service<Request<ReqBody>> for HideService<S>
where
    S: Service<Request<ReqBody>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = HideFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        req.extensions_mut().insert(Hidden);
        HideFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// The response future of [`HideService`].
    pub struct HideFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, E> Future for HideFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = ready!(self.project().inner.poll(cx))?;
        // A refusal not rendered by a layer yet (RequireScope or a handler inside the
        // AuthDiagnostics layer): marked, so the layer answers 404 and logs why, and
        // answered 404 already, should no layer be around.
        let forbidden = response
            .extensions()
            .get::<AuthFailure>()
            .is_some_and(|f| f.status() == StatusCode::FORBIDDEN);
        if forbidden {
            if let Some(failure) = response.extensions_mut().remove::<AuthFailure>() {
                response = not_found(None);
                response.extensions_mut().insert(hidden(failure));
            }
        }
        Poll::Ready(Ok(response))
    }
}
