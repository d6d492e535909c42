//! [`ResponseFuture`]: the application's verifier (when it has to decide), then the
//! wrapped service, then a look at what it answered.

use crate::authn::verify::AuthFuture;
use crate::reason::Reason;
use crate::upstream::Watch;
use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// The response future of [`AuthDiagnosticsService`](crate::service::AuthDiagnosticsService).
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
            watch: Option<Watch>,
        },
        // Waiting for the wrapped service.
        Inner { #[pin] fut: S::Future, watch: Option<Watch> },
        // Rejected before the wrapped service was called.
        Rejected { response: Option<Response<Body>> },
    }
}

impl<S: Service<Request<B>>, B> ResponseFuture<S, B> {
    pub(crate) fn call(mut inner: S, req: Request<B>, watch: Watch) -> Self {
        Self {
            state: State::Inner {
                fut: inner.call(req),
                watch: Some(watch),
            },
        }
    }

    pub(crate) fn authenticating(fut: AuthFuture, inner: S, req: Request<B>, watch: Watch) -> Self {
        Self {
            state: State::Authenticating {
                fut,
                inner: Some(inner),
                req: Some(req),
                watch: Some(watch),
            },
        }
    }

    pub(crate) fn rejected(response: Response<Body>) -> Self {
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
                Proj::Inner { fut, watch } => {
                    // Never poll a finished inner future again.
                    assert!(watch.is_some(), "ResponseFuture polled after completion");
                    let response = ready!(fut.poll(cx))?;
                    let watch = watch.take().expect("checked above");
                    return Poll::Ready(Ok(watch.response(response.map(Body::new))));
                }
                Proj::Authenticating {
                    fut,
                    inner,
                    req,
                    watch,
                } => {
                    let outcome = ready!(fut.as_mut().poll(cx));
                    let mut watch = watch.take().expect("polled after completion");
                    let req = req.take().expect("polled after completion");
                    match outcome {
                        Ok(principal) => {
                            let req = watch.admitted(principal, req);
                            let mut inner = inner.take().expect("polled after completion");
                            State::Inner {
                                fut: inner.call(req),
                                watch: Some(watch),
                            }
                        }
                        Err(failure) => {
                            // An account refusal or a forged request's comes after the
                            // credentials verified.
                            watch.authenticated = matches!(
                                failure.reason(),
                                Reason::AccountDisabled
                                    | Reason::AccountLocked
                                    | Reason::CrossSiteRequest
                            );
                            State::Rejected {
                                response: Some(watch.reject(watch.enrich(failure))),
                            }
                        }
                    }
                }
            };
            self.as_mut().project().state.set(next);
        }
    }
}
