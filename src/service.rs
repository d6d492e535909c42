//! The [`AuthDiagnosticsService`] and its [`ResponseFuture`].

use crate::authn::verify::{AccountStatus, AuthFuture, AuthResult};
use crate::authn::{authenticate, Decision, Principal};
use crate::layer::AccountHook;
use crate::credentials::is_preflight;
use crate::failure::AuthFailure;
use crate::layer::Config;
use crate::log::{emit, RequestInfo};
use crate::reason::Reason;
use crate::request_id::{RequestId, X_REQUEST_ID};
use axum::body::Body;
use bytes::Bytes;
use http::header::CACHE_CONTROL;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The service built by [`AuthDiagnostics`](crate::AuthDiagnostics).
#[derive(Clone, Debug)]
pub struct AuthDiagnosticsService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> AuthDiagnosticsService<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }
}

/// Marks a response that a layer already rendered and logged, so that an enclosing
/// layer (one per sub-router plus one around the app is common) passes it through.
#[derive(Clone, Copy)]
struct Handled;

/// What the response future needs to know about the request it answers.
struct Ctx {
    config: Arc<Config>,
    request_id: RequestId,
    method: Method,
    uri: Uri,
    preflight: bool,
    /// Authenticated by a credential shared caches do not key on (API key, cookie).
    private: bool,
}

impl Ctx {
    fn info(&self) -> RequestInfo<'_> {
        RequestInfo {
            request_id: self.request_id.as_str(),
            method: &self.method,
            path: self.uri.path(),
        }
    }

    /// Renders and logs `failure` with this layer's configuration.
    fn reject(&self, failure: &AuthFailure) -> Response<Body> {
        let mut response = failure.render(&self.config.render(), Some(self.request_id.as_str()));
        emit(failure, &self.info(), response.status(), self.config.detail);
        response.extensions_mut().insert(Handled);
        response
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthDiagnosticsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let request_id = RequestId::ensure(req.headers_mut());
        let preflight = is_preflight(req.method(), req.headers());
        let mut ctx = Ctx {
            config: self.config.clone(),
            request_id: request_id.clone(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            preflight,
            private: false,
        };
        req.extensions_mut().insert(request_id);

        // The service that was polled ready is the one we call; keep a fresh clone.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);

        if preflight || self.config.schemes.is_empty() {
            return ResponseFuture::call(inner, req, ctx);
        }
        let account = self.config.account.clone();
        match authenticate(req.headers(), req.uri(), &self.config.schemes) {
            Decision::Rejected(failure) => ResponseFuture::rejected(ctx.reject(&failure)),
            Decision::Authenticated(principal) => match account {
                None => {
                    req.extensions_mut().insert(principal);
                    ResponseFuture::call(inner, req, ctx)
                }
                Some(hook) => {
                    let fut = Box::pin(check_account(hook, principal));
                    ResponseFuture::authenticating(fut, inner, req, ctx)
                }
            },
            Decision::Pending(mut pending) => {
                ctx.private = pending.private;
                let scheme = pending.scheme;
                let fut = Box::pin(async move {
                    let principal = match (&mut pending.fut).await {
                        Ok(p) => p.with_scheme(scheme),
                        Err(f) => return Err(pending.annotate(f)),
                    };
                    match account {
                        Some(hook) => check_account(hook, principal).await,
                        None => Ok(principal),
                    }
                });
                ResponseFuture::authenticating(fut, inner, req, ctx)
            }
        }
    }
}

/// Runs the account-status hook for a principal whose credentials verified.
async fn check_account(hook: AccountHook, principal: Principal) -> AuthResult {
    let refuse = |reason: Reason| {
        let f = AuthFailure::new(reason);
        Err(match principal.id() {
            Some(id) => f.user(id),
            None => f,
        })
    };
    match hook.0.check(&principal).await {
        Ok(AccountStatus::Active) => Ok(principal),
        Ok(AccountStatus::Disabled) => refuse(Reason::AccountDisabled),
        Ok(AccountStatus::Locked) => refuse(Reason::AccountLocked),
        Err(f) => Err(f),
    }
}

pin_project! {
    /// The response future of [`AuthDiagnosticsService`].
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = Proj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        // The application's verifier (or account hook) is deciding.
        Authenticating {
            fut: AuthFuture,
            inner: Option<S>,
            req: Option<Request<B>>,
            ctx: Option<Ctx>,
        },
        // Waiting for the wrapped service.
        Inner { #[pin] fut: S::Future, ctx: Option<Ctx> },
        // Rejected before the wrapped service was called.
        Rejected { response: Option<Response<Body>> },
    }
}

impl<S: Service<Request<B>>, B> ResponseFuture<S, B> {
    fn call(mut inner: S, req: Request<B>, ctx: Ctx) -> Self {
        Self {
            state: State::Inner {
                fut: inner.call(req),
                ctx: Some(ctx),
            },
        }
    }

    fn authenticating(fut: AuthFuture, inner: S, req: Request<B>, ctx: Ctx) -> Self {
        Self {
            state: State::Authenticating {
                fut,
                inner: Some(inner),
                req: Some(req),
                ctx: Some(ctx),
            },
        }
    }

    fn rejected(response: Response<Body>) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project().state.project() {
                Proj::Rejected { response } => {
                    return Poll::Ready(Ok(response.take().expect("polled after completion")))
                }
                Proj::Inner { fut, ctx } => {
                    let response = ready!(fut.poll(cx))?;
                    let ctx = ctx.take().expect("polled after completion");
                    return Poll::Ready(Ok(watch(response.map(Body::new), &ctx)));
                }
                Proj::Authenticating {
                    fut,
                    inner,
                    req,
                    ctx,
                } => {
                    let outcome = ready!(fut.as_mut().poll(cx));
                    let ctx = ctx.take().expect("polled after completion");
                    let mut req = req.take().expect("polled after completion");
                    match outcome {
                        Ok(principal) => {
                            req.extensions_mut().insert(principal);
                            let mut inner = inner.take().expect("polled after completion");
                            State::Inner {
                                fut: inner.call(req),
                                ctx: Some(ctx),
                            }
                        }
                        Err(failure) => State::Rejected {
                            response: Some(ctx.reject(&failure)),
                        },
                    }
                }
            };
            self.as_mut().project().state.set(next);
        }
    }
}

/// Looks at what the wrapped service answered by itself.
fn watch(mut response: Response<Body>, ctx: &Ctx) -> Response<Body> {
    if response.extensions().get::<Handled>().is_some() {
        return response;
    }
    if let Some(failure) = response.extensions_mut().remove::<AuthFailure>() {
        // An inner handler or middleware refused with a precise reason: render it with
        // this layer's configuration and log it like our own.
        return ctx.reject(&failure);
    }
    let status = response.status();
    if ctx.preflight && (status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN) {
        let failure = AuthFailure::new(Reason::PreflightBlocked).detail(format!(
            "the application answered a CORS preflight with {}; browsers send preflights without credentials",
            status.as_u16()
        ));
        emit(&failure, &ctx.info(), status, ctx.config.detail);
    }
    let headers = response.headers_mut();
    headers
        .entry(X_REQUEST_ID)
        .or_insert_with(|| ctx.request_id.header_value().clone());
    if ctx.private {
        headers
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("private"));
    }
    response
}
