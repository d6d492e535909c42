//! [`AuthDiagnosticsService`]: authenticate the request, then call the wrapped service.

use crate::admit::{self, Admission};
use crate::answer::Answer;
use crate::authn::basic;
use crate::authn::{authenticate, Decision};
use crate::config::Config;
use crate::evidence::Evidence;
use crate::future::ResponseFuture;
use crate::request_id::AuthRequestId;
use crate::scheme::Scheme;
use bytes::Bytes;
use http::{Request, Response, Uri};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The service built by [`AuthDiagnostics`](crate::AuthDiagnostics).
#[derive(Clone, Debug)]
pub struct AuthDiagnosticsService<S> {
    inner: S,
    config: Arc<Config>,
    /// Basic over plain http from another host was logged (once per layer: every
    /// request after the first would say the same).
    said_basic_over_plaintext: Arc<AtomicBool>,
}

impl<S> AuthDiagnosticsService<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>, said: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            config,
            said_basic_over_plaintext: said,
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthDiagnosticsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<axum::body::Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let request_id = AuthRequestId::ensure(req.headers_mut());
        let audit = self.config.audit.as_ref().map(|audit| {
            let (method, uri, id) = (req.method(), req.uri(), &request_id);
            Box::new(crate::audit::Context::new(
                audit,
                method,
                uri,
                req.extensions(),
                id,
            ))
        });
        self.decide_and_answer(req, request_id).auditing(audit)
    }
}

impl<S> AuthDiagnosticsService<S> {
    /// The path guard, the metadata document, then authentication.
    fn decide_and_answer<ReqBody>(
        &mut self,
        req: Request<ReqBody>,
        request_id: AuthRequestId,
    ) -> ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>> + Clone,
    {
        // Before anything reads the path: no rule may see a path the router reads otherwise.
        if let Some(failure) = crate::path_guard::refusal(self.config.path_guard, &req) {
            let answer = Answer::new(self.config.clone(), request_id, &req);
            return ResponseFuture::rejected(answer.refuse(failure, req.headers()));
        }
        if let Some(doc) = &self.config.resource {
            // The metadata document is public (RFC 9728 §3): it tells clients how to
            // authenticate, so it cannot require it.
            if req.uri().path() == &*doc.path {
                let mut response = doc.answer(req.method());
                let id = request_id.header_value().clone();
                response
                    .headers_mut()
                    .insert(crate::request_id::X_REQUEST_ID, id);
                return ResponseFuture::rejected(response);
            }
        }
        let optional = self.config.optional;
        let hide = crate::hide::wanted(&req);
        self.authenticate(req, request_id, hide)
            .varying(optional)
            .hiding(hide)
    }
}

impl<S> AuthDiagnosticsService<S> {
    /// Throttles `req` when it has to be, then authenticates it.
    fn authenticate<ReqBody>(
        &mut self,
        req: Request<ReqBody>,
        request_id: AuthRequestId,
        hide: bool,
    ) -> ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>> + Clone,
    {
        // The id goes into the request's extensions when the request goes on.
        let mut answer = Answer::new(self.config.clone(), request_id, &req);

        // The service that was polled ready is the one we call; keep a fresh clone.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);

        if answer.preflight || self.config.schemes.is_empty() {
            return ResponseFuture::call(inner, req, answer);
        }
        let said = &self.said_basic_over_plaintext;
        // A report-only layer refuses nothing, so counts nothing.
        let throttle = self.config.throttle.as_ref();
        let Some(throttle) = throttle.filter(|_| !self.config.report_only) else {
            return decide(inner, req, answer, hide, said);
        };
        let subject = throttle.subject(&crate::throttle::Sent {
            proxies: &self.config.trusted_proxies,
            schemes: &self.config.schemes,
            headers: req.headers(),
            uri: req.uri(),
            extensions: req.extensions(),
            request_id: answer.request_id.as_str(),
        });
        if subject.is_empty() {
            return decide(inner, req, answer, hide, said);
        }
        // Before any password hash or signature check.
        if let Some(failure) = throttle.check_local(&subject) {
            return ResponseFuture::rejected(answer.refuse(failure, req.headers()));
        }
        if !throttle.is_shared() {
            answer.counted = Some(subject);
            return decide(inner, req, answer, hide, said);
        }
        let check = throttle.check_shared(subject.clone());
        answer.counted = Some(subject);
        ResponseFuture::throttling(check, inner, req, answer, said.clone(), decide)
    }
}

/// Authenticates `req`, then admits it, and calls the wrapped service or refuses.
pub(crate) fn decide<S, ReqBody>(
    inner: S,
    req: Request<ReqBody>,
    mut answer: Answer,
    hide: bool,
    said: &AtomicBool,
) -> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    let config = answer.config.clone();
    // Under `Router::nest` the URI is the nested one; credentials and DPoP proofs
    // speak of the one the client sent.
    let uri = match req.extensions().get::<axum::extract::OriginalUri>() {
        Some(original) => &original.0,
        None => req.uri(),
    };
    // Only a session cookie's requests need it, but it reads the request: now.
    let forged = admit::cross_site(&config, req.method(), req.headers(), uri);
    let mut evidence = Evidence::new(req.headers(), uri);
    evidence.method = Some(req.method());
    if let Some(sources) = &config.certificates {
        evidence.certificate = Some(crate::certificate::presented(
            sources,
            &config.trusted_proxies,
            &config.flood,
            req.headers(),
            req.extensions(),
        ));
    }
    basic_over_plaintext(&config, said, &evidence, uri, &req, &answer);
    // On a route marked with HideForbidden a 403 is answered 404.
    let refuse = |answer: &Answer, f, req: &Request<ReqBody>| match hide {
        true => ResponseFuture::rejected(answer.refuse(crate::hide::hidden(f), req.headers())),
        false => ResponseFuture::rejected(answer.refuse(f, req.headers())),
    };
    match authenticate(&evidence, &config.schemes) {
        Decision::Rejected(failure)
            if admit::passes_anonymously(&config, &failure, req.headers(), uri) =>
        {
            let req = answer.forward(req);
            answer.anonymous(&failure);
            ResponseFuture::call(inner, req, answer)
        }
        Decision::Rejected(failure) => refuse(&answer, failure, &req),
        Decision::Authenticated(principal) => {
            match admit::decide(&config, principal, forged.as_ref()) {
                Admission::Refused(failure) => refuse(&answer, failure, &req),
                Admission::Admitted(principal) => {
                    let req = answer.admitted(principal, req);
                    ResponseFuture::call(inner, req, answer)
                }
                Admission::Later(fut) => ResponseFuture::authenticating(fut, inner, req, answer),
            }
        }
        Decision::Pending(pending) => {
            answer.private = pending.private;
            let fut = admit::decide_later(pending, config, forged);
            ResponseFuture::authenticating(fut, inner, req, answer)
        }
    }
}

/// Basic credentials that came over plain http from another host are logged
/// once, with a hint (see [`basic::over_plaintext`] for what counts); the request is
/// answered as always.
fn basic_over_plaintext<B>(
    config: &Config,
    said: &AtomicBool,
    evidence: &Evidence<'_>,
    uri: &Uri,
    req: &Request<B>,
    answer: &Answer,
) {
    if said.load(Ordering::Relaxed)
        || evidence.spoken(Scheme::Basic).is_none()
        || !config.schemes.iter().any(|s| s.kind() == Scheme::Basic)
        || !basic::over_plaintext(
            uri,
            req.headers(),
            req.extensions(),
            &config.trusted_proxies,
        )
        || said.swap(true, Ordering::Relaxed)
    {
        return;
    }
    basic::warn_plaintext(answer.request_id.as_str(), req.method(), uri.path());
}
