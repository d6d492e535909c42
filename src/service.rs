//! The [`AuthDiagnosticsService`] and its [`ResponseFuture`].

use crate::authn::authenticate;
use crate::credentials::is_preflight;
use crate::failure::AuthFailure;
use crate::layer::Config;
use crate::log::{emit, RequestInfo};
use crate::reason::Reason;
use crate::request_id::{RequestId, X_REQUEST_ID};
use axum::body::Body;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Uri};
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
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let request_id = RequestId::ensure(req.headers_mut());
        let preflight = is_preflight(req.method(), req.headers());
        let ctx = Ctx {
            config: self.config.clone(),
            request_id: request_id.clone(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            preflight,
        };
        req.extensions_mut().insert(request_id);

        if !preflight && !self.config.schemes.is_empty() {
            match authenticate(req.headers(), req.uri(), &self.config.schemes) {
                Ok(principal) => {
                    req.extensions_mut().insert(principal);
                }
                Err(failure) => {
                    return ResponseFuture::rejected(ctx.reject(&failure));
                }
            }
        }

        // Call the service that was polled ready; keep a fresh clone for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::inner(inner.call(req), ctx)
    }
}

pin_project! {
    /// The response future of [`AuthDiagnosticsService`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = Proj]
    enum State<F> {
        // Waiting for the wrapped service.
        Inner { #[pin] fut: F, ctx: Option<Ctx> },
        // Rejected before the wrapped service was called.
        Rejected { response: Option<Response<Body>> },
    }
}

impl<F> ResponseFuture<F> {
    fn inner(fut: F, ctx: Ctx) -> Self {
        Self {
            state: State::Inner {
                fut,
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

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            Proj::Rejected { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
            Proj::Inner { fut, ctx } => {
                let response = ready!(fut.poll(cx))?;
                let ctx = ctx.take().expect("polled after completion");
                Poll::Ready(Ok(watch(response.map(Body::new), &ctx)))
            }
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
    response
        .headers_mut()
        .entry(X_REQUEST_ID)
        .or_insert_with(|| ctx.request_id.header_value().clone());
    response
}
