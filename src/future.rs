//! [`ResponseFuture`]: the application's verifier (when it has to decide), then the
//! wrapped service, then a look at what it answered.

use crate::answer::{Answer, PendingRecord};
use crate::authn::verify::AuthFuture;
use crate::reason::Reason;
use axum::body::Body;
use bytes::Bytes;
use http::header::VARY;
use http::{HeaderMap, HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What comes after the shared throttling store let the request try: authentication
/// (the service's `decide`, passed in so that this module does not name the service's).
pub(crate) type Decide<S, B> = fn(S, Request<B>, Answer, bool, &AtomicBool) -> ResponseFuture<S, B>;

pin_project! {
    /// The response future of [`AuthDiagnosticsService`](crate::layer::AuthDiagnosticsService).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
        // Optional authentication: the answer depends on the credentials sent.
        vary_on_credentials: bool,
        // A route marked with HideForbidden: a 403 is answered 404.
        hide: bool,
        // The answer, while the shared throttling store records its failure.
        recording: Option<(crate::throttle::RecordFuture, Response<Body>)>,
        // The request, for the audit record of its answer (only when the layer audits).
        audit: Option<Box<crate::audit::Context>>,
    }
}

pin_project! {
    #[project = Proj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        // The shared throttling store says whether the client may try.
        Throttling {
            check: crate::throttle::CheckFuture,
            inner: Option<S>,
            req: Option<Request<B>>,
            answer: Option<Answer>,
            said: Arc<AtomicBool>,
            then: Decide<S, B>,
        },
        // The application's verifier (or account hook) is deciding.
        Authenticating {
            fut: AuthFuture,
            inner: Option<S>,
            req: Option<Request<B>>,
            answer: Option<Answer>,
        },
        // Waiting for the wrapped service.
        Inner { #[pin] fut: S::Future, answer: Option<Answer> },
        // Rejected before the wrapped service was called.
        Rejected { response: Option<Response<Body>> },
    }
}

impl<S: Service<Request<B>>, B> ResponseFuture<S, B> {
    pub(crate) fn call(mut inner: S, req: Request<B>, mut answer: Answer) -> Self {
        let req = answer.forward(req);
        Self {
            state: State::Inner {
                fut: inner.call(req),
                answer: Some(answer),
            },
            vary_on_credentials: false,
            hide: false,
            recording: None,
            audit: None,
        }
    }

    pub(crate) fn authenticating(
        fut: AuthFuture,
        inner: S,
        req: Request<B>,
        answer: Answer,
    ) -> Self {
        Self {
            state: State::Authenticating {
                fut,
                inner: Some(inner),
                req: Some(req),
                answer: Some(answer),
            },
            vary_on_credentials: false,
            hide: false,
            recording: None,
            audit: None,
        }
    }

    pub(crate) fn throttling(
        check: crate::throttle::CheckFuture,
        inner: S,
        req: Request<B>,
        answer: Answer,
        said: Arc<AtomicBool>,
        then: Decide<S, B>,
    ) -> Self {
        Self::with_state(State::Throttling {
            check,
            inner: Some(inner),
            req: Some(req),
            answer: Some(answer),
            said,
            then,
        })
    }

    fn with_state(state: State<S, B>) -> Self {
        Self {
            state,
            vary_on_credentials: false,
            hide: false,
            recording: None,
            audit: None,
        }
    }

    /// The answer is recorded for the audit as it leaves.
    pub(crate) fn auditing(mut self, context: Option<Box<crate::audit::Context>>) -> Self {
        self.audit = context;
        self
    }

    /// Answers that say `Vary: Authorization, Cookie` (see [`vary_on_credentials`]).
    pub(crate) fn varying(mut self, on: bool) -> Self {
        self.vary_on_credentials = on;
        self
    }

    /// On a route marked with [`HideForbidden`](crate::authz::HideForbidden): refusals of the
    /// verifier, the account hook and the wrapped service that are 403 are answered 404.
    pub(crate) fn hiding(mut self, on: bool) -> Self {
        self.hide = on;
        self
    }

    pub(crate) fn rejected(response: Response<Body>) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
            vary_on_credentials: false,
            hide: false,
            recording: None,
            audit: None,
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
            if let Some((record, _)) = self.as_mut().project().recording {
                ready!(record.as_mut().poll(cx));
                let (_, response) = self
                    .as_mut()
                    .project()
                    .recording
                    .take()
                    .expect("just polled");
                return Poll::Ready(Ok(response));
            }
            let vary = self.vary_on_credentials;
            let mut response = ready!(self.as_mut().poll_state(cx))?;
            if vary {
                vary_on_credentials(response.headers_mut());
            }
            if let Some(context) = self.as_mut().project().audit.take() {
                (*context).finish(&mut response);
            }
            let pending = response.extensions_mut().remove::<PendingRecord>();
            match pending.and_then(|p| p.0.lock().unwrap_or_else(|e| e.into_inner()).take()) {
                Some(record) => *self.as_mut().project().recording = Some((record, response)),
                None => return Poll::Ready(Ok(response)),
            }
        }
    }
}

impl<S, B, ResBody> ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    /// The verifier, then the wrapped service, until there is an answer.
    fn poll_state(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Response<Body>, S::Error>> {
        let hide = self.hide;
        loop {
            let next = match self.as_mut().project().state.project() {
                Proj::Rejected { response } => {
                    return Poll::Ready(Ok(response.take().expect("polled after completion")))
                }
                Proj::Inner { fut, answer } => {
                    // Never poll a finished inner future again.
                    assert!(answer.is_some(), "ResponseFuture polled after completion");
                    let response = ready!(fut.poll(cx))?.map(Body::new);
                    let answer = answer.take().expect("checked above");
                    let response = inner_answered(&answer, response, hide);
                    if let Some(context) = self.as_mut().project().audit {
                        context.facts = answer.take_decision();
                    }
                    return Poll::Ready(Ok(response));
                }
                Proj::Throttling {
                    check,
                    inner,
                    req,
                    answer,
                    said,
                    then,
                } => {
                    let refused = ready!(check.as_mut().poll(cx));
                    let answer = answer.take().expect("polled after completion");
                    let req = req.take().expect("polled after completion");
                    let inner = inner.take().expect("polled after completion");
                    match refused {
                        Some(failure) => State::Rejected {
                            response: Some(answer.refuse(failure, req.headers())),
                        },
                        None => then(inner, req, answer, hide, said).state,
                    }
                }
                Proj::Authenticating {
                    fut,
                    inner,
                    req,
                    answer,
                } => {
                    let outcome = ready!(fut.as_mut().poll(cx));
                    let answer = answer.take().expect("polled after completion");
                    let req = req.take().expect("polled after completion");
                    let inner = inner.take().expect("polled after completion");
                    authenticated(outcome, inner, req, answer, hide)
                }
            };
            self.as_mut().project().state.set(next);
        }
    }
}

/// What the wrapped service answered, watched, and hidden as the route asks.
fn inner_answered(answer: &Answer, mut response: Response<Body>, hide: bool) -> Response<Body> {
    if hide {
        crate::hide::hide_unrendered(&mut response);
    }
    let hidden = crate::hide::carries_hidden(&response);
    let mut response = crate::upstream::response(answer, response);
    if hidden {
        crate::hide::like_the_routers(&mut response, answer.private);
    }
    response
}

/// The state after the application's verifier (or account hook) decided.
fn authenticated<S, B>(
    outcome: Result<crate::authn::Principal, crate::failure::AuthFailure>,
    mut inner: S,
    req: Request<B>,
    mut answer: Answer,
    hide: bool,
) -> State<S, B>
where
    S: Service<Request<B>>,
{
    match outcome {
        Ok(principal) => {
            let req = answer.admitted(principal, req);
            State::Inner {
                fut: inner.call(req),
                answer: Some(answer),
            }
        }
        Err(failure) if answer.config.report_only => {
            let req = answer.forward(req);
            report_only(&mut answer, failure);
            State::Inner {
                fut: inner.call(req),
                answer: Some(answer),
            }
        }
        Err(failure) => {
            // The enrichment reads the request's headers.
            answer.keep(req.headers());
            answer.authenticated = crate::admit::after_authentication(failure.reason());
            let failure = match hide {
                true => crate::hide::hidden(failure),
                false => failure,
            };
            let mut response = answer.reject(answer.enrich(failure));
            if hide {
                crate::hide::like_the_routers(&mut response, answer.private);
            }
            State::Rejected {
                response: Some(response),
            }
        }
    }
}

/// A report-only layer's refusal: the event an enforcing layer would write, enriched as
/// a refusal is, except the layer's own admission refusals (scope, origin), which an
/// enforcing layer answers at once, as they are. The request then goes on as it came:
/// never with a partly verified principal from this layer.
fn report_only(answer: &mut Answer, failure: crate::failure::AuthFailure) {
    let failure = match failure.reason() {
        Reason::InsufficientScope | Reason::CrossSiteRequest => failure,
        reason => {
            answer.authenticated = crate::admit::after_authentication(reason);
            answer.enrich(failure)
        }
    };
    answer.would_refuse(failure);
    answer.authenticated = false;
}

/// Adds `Authorization` and `Cookie` to `Vary`, the ones it does not name yet, in a field
/// of their own: the application's values stay as they are, and `Vary: *` (varies on
/// everything) stays alone. An optional route answers a guest and a signed-in user
/// differently at one URL, so a cache must key on what tells them apart (RFC 9110 §12.5.5).
fn vary_on_credentials(headers: &mut HeaderMap) {
    let (mut authorization, mut cookie) = (false, false);
    for value in headers.get_all(VARY) {
        // A value that is not text names nothing a cache understands.
        let Ok(text) = value.to_str() else { continue };
        for name in text.split(',').map(str::trim) {
            if name == "*" {
                return;
            }
            authorization |= name.eq_ignore_ascii_case("authorization");
            cookie |= name.eq_ignore_ascii_case("cookie");
        }
    }
    let missing = match (authorization, cookie) {
        (false, false) => "Authorization, Cookie",
        (false, true) => "Authorization",
        (true, false) => "Cookie",
        (true, true) => return,
    };
    headers.append(VARY, HeaderValue::from_static(missing));
}
