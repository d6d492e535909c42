//! The [`AuthDiagnosticsService`] and its [`ResponseFuture`].

use crate::authn::verify::{AccountStatus, AuthFuture, AuthResult};
use crate::authn::{authenticate, expected_names, Decision, Principal};
use crate::challenge::read_challenges;
use crate::credentials::is_preflight;
use crate::credentials::query_access_token;
use crate::failure::AuthFailure;
use crate::infer::infer;
use crate::layer::AccountHook;
use crate::layer::Config;
use crate::layer::UpstreamMode;
use crate::log::{emit, RequestInfo};
use crate::reason::Reason;
use crate::request_id::{RequestId, X_REQUEST_ID};
use crate::snapshot::Snapshot;
use axum::body::Body;
use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
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
    /// This layer authenticated the request.
    authenticated: bool,
    /// The request's headers, kept for diagnosing a refusal by the wrapped service.
    snapshot: Box<Snapshot>,
    /// Authenticated by a credential shared caches do not key on (API key, cookie).
    private: bool,
}

impl Ctx {
    fn info(&self) -> RequestInfo<'_> {
        RequestInfo {
            request_id: self.request_id.as_str(),
            method: &self.method,
            uri: &self.uri,
            snapshot: &self.snapshot,
        }
    }

    /// Renders and logs `failure` with this layer's configuration.
    fn reject(&self, failure: AuthFailure) -> Response<Body> {
        let mut response = failure.render(&self.config.render(), Some(self.request_id.as_str()));
        self.log(&failure, response.status());
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
            // An enclosing layer may have authenticated the request already.
            authenticated: req.extensions().get::<Principal>().is_some(),
            snapshot: Box::new(Snapshot::new(req.headers())),
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
            Decision::Rejected(failure) => ResponseFuture::rejected(ctx.reject(failure)),
            Decision::Authenticated(principal) => match account {
                None => {
                    req.extensions_mut().insert(principal);
                    ctx.authenticated = true;
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
                        Some(hook) => check_account(hook, principal)
                            .await
                            .map_err(|f| pending.annotate(f)),
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
                    // Never poll a finished inner future again.
                    assert!(ctx.is_some(), "ResponseFuture polled after completion");
                    let response = ready!(fut.poll(cx))?;
                    let ctx = ctx.take().expect("checked above");
                    return Poll::Ready(Ok(watch(response.map(Body::new), &ctx)));
                }
                Proj::Authenticating {
                    fut,
                    inner,
                    req,
                    ctx,
                } => {
                    let outcome = ready!(fut.as_mut().poll(cx));
                    let mut ctx = ctx.take().expect("polled after completion");
                    let mut req = req.take().expect("polled after completion");
                    match outcome {
                        Ok(principal) => {
                            ctx.authenticated = true;
                            req.extensions_mut().insert(principal);
                            let mut inner = inner.take().expect("polled after completion");
                            State::Inner {
                                fut: inner.call(req),
                                ctx: Some(ctx),
                            }
                        }
                        Err(failure) => {
                            // An account refusal comes after the credentials verified.
                            ctx.authenticated = matches!(
                                failure.reason,
                                Reason::AccountDisabled | Reason::AccountLocked
                            );
                            State::Rejected {
                                response: Some(ctx.reject(ctx.enrich(failure))),
                            }
                        }
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
        return ctx.reject(ctx.enrich(failure));
    }
    let status = response.status();
    let refused = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
    if refused {
        // Diagnosed and logged here: an enclosing layer must not do it again.
        response = ctx.upstream(response);
        response.extensions_mut().insert(Handled);
    }
    let headers = response.headers_mut();
    headers
        .entry(X_REQUEST_ID)
        .or_insert_with(|| ctx.request_id.header_value().clone());
    if ctx.private {
        make_private(headers);
    }
    response
}

/// Makes a response unstorable by shared caches, which key on `Authorization` but not on
/// API-key headers or cookies (RFC 9110 §16.4.2, RFC 9111 §5.2.2.7): `private` is added
/// unless the response already says `private` or `no-store`, and `public` and `s-maxage`
/// are removed. A field-qualified `private="…"` covers only its fields, so it becomes a
/// plain `private`.
fn make_private(headers: &mut HeaderMap) {
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("private"));
        return;
    }
    let mut kept: Vec<String> = Vec::new();
    let mut private = false;
    for value in headers.get_all(CACHE_CONTROL) {
        // A value that is not visible ASCII is no directive list a cache understands.
        let Ok(text) = value.to_str() else { continue };
        for directive in split_directives(text) {
            let name = directive
                .split('=')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            match name.as_str() {
                "public" | "s-maxage" => continue,
                "private" if directive.contains('=') => continue,
                "private" | "no-store" => private = true,
                _ => {}
            }
            kept.push(directive.to_owned());
        }
    }
    if !private {
        kept.push("private".to_owned());
    }
    let joined = HeaderValue::from_str(&kept.join(", "))
        .unwrap_or_else(|_| HeaderValue::from_static("private"));
    headers.insert(CACHE_CONTROL, joined);
}

/// The directives of a `Cache-Control` value: split at commas outside quoted strings,
/// trimmed, empty ones dropped.
fn split_directives(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(text[start..].trim());
    out.retain(|d| !d.is_empty());
    out
}

/// Whether a 401's challenges say the token itself was refused: an `error` of
/// `invalid_token` or `insufficient_scope` in any challenge. A challenge that does not
/// parse but names either code counts too: what is not certain is not corrected.
fn refuses_token(headers: &HeaderMap) -> bool {
    const CODES: [&str; 2] = ["invalid_token", "insufficient_scope"];
    headers.get_all(WWW_AUTHENTICATE).iter().any(|value| {
        let text = String::from_utf8_lossy(value.as_bytes());
        match read_challenges(&text) {
            Some(challenges) => challenges.iter().any(|c| {
                c.param("error")
                    .is_some_and(|e| CODES.iter().any(|code| e.eq_ignore_ascii_case(code)))
            }),
            None => {
                let lower = text.to_ascii_lowercase();
                CODES.iter().any(|code| lower.contains(code))
            }
        }
    })
}

impl Ctx {
    /// Adds what the request shows to a failure an inner handler returned: where the
    /// credential was, its fingerprint, and the token's facts.
    fn enrich(&self, mut failure: AuthFailure) -> AuthFailure {
        if failure.facts.location.is_some() || failure.facts.token.is_some() {
            return failure;
        }
        let seen = infer(&self.snapshot.headers(), &self.uri);
        if seen.reason == Reason::CredentialsMissing {
            return failure;
        }
        let facts = &mut failure.facts;
        if facts.expected_scheme.is_none() && !self.config.schemes.is_empty() {
            facts.expected_scheme = Some(expected_names(&self.config.schemes));
        }
        facts.location = seen.facts.location;
        facts.fingerprint = seen.facts.fingerprint;
        facts.received_scheme = seen.facts.received_scheme;
        facts.token = seen.facts.token.map(|mut t| {
            t.verified = self.authenticated;
            t
        });
        failure
    }

    /// A 401 or 403 the wrapped service produced: diagnose it, and correct it when it
    /// breaks the contract (in enforce mode).
    fn upstream(&self, response: Response<Body>) -> Response<Body> {
        let status = response.status();
        let mut seen = infer(&self.snapshot.headers(), &self.uri);
        seen.facts.upstream_status = Some(status.as_u16());
        if let Some(t) = seen.facts.token.as_mut() {
            t.verified = self.authenticated;
        }
        seen.facts.expected_scheme = Some(if self.config.schemes.is_empty() {
            "Bearer".into()
        } else {
            expected_names(&self.config.schemes)
        });
        if self.preflight {
            let mut f = AuthFailure::new(Reason::PreflightBlocked).detail(format!(
                "the application answered a CORS preflight with {}; browsers send preflights without credentials",
                status.as_u16()
            ));
            f.facts.upstream_status = seen.facts.upstream_status;
            self.log(&f, status);
            return response;
        }
        let no_credentials = !self.snapshot.carries_credentials() && !query_access_token(&self.uri);
        let challenged = response.headers().contains_key(WWW_AUTHENTICATE);
        let unauthorized = status == StatusCode::UNAUTHORIZED;
        let violation = if unauthorized && self.authenticated {
            if refuses_token(response.headers()) {
                Reason::UpstreamTokenRefused
            } else {
                Reason::UpstreamUnauthorizedAfterAuthentication
            }
        } else if unauthorized && !challenged {
            Reason::UpstreamChallengeMissing
        } else if status == StatusCode::FORBIDDEN && no_credentials && !self.authenticated {
            Reason::UpstreamForbiddenWithoutCredentials
        } else {
            // A correct refusal: say why, as far as the request shows.
            if status == StatusCode::FORBIDDEN && !no_credentials {
                let mut f = AuthFailure::new(Reason::Forbidden);
                f.facts = std::mem::take(&mut seen.facts);
                f.facts.inferred_reason = Some(seen.reason);
                f.facts.inferred = true;
                f.facts.detail = Some(
                    "the application answered 403 to a request that carries credentials (or a \
                     header or cookie that may be one): its call"
                        .into(),
                );
                self.log(&f, status);
            } else {
                self.log(&seen, status);
            }
            return response;
        };

        let mut f = AuthFailure::new(violation);
        let inferred_reason = seen.reason;
        f.facts = std::mem::take(&mut seen.facts);
        f.facts.inferred = false;
        f.facts.inferred_reason = (!self.authenticated).then_some(inferred_reason);
        f.facts.hint = None;
        f.facts.detail = Some(match violation {
            Reason::UpstreamChallengeMissing => format!(
                "the application answered 401 without WWW-Authenticate; the request suggests {}",
                inferred_reason.code()
            ),
            Reason::UpstreamUnauthorizedAfterAuthentication => {
                "the application answered 401 to a request this layer authenticated".to_owned()
            }
            Reason::UpstreamTokenRefused => {
                "the application refused a token this layer verified, with error=\"invalid_token\" or \"insufficient_scope\"; its answer is kept".to_owned()
            }
            _ => "the application answered 403 to a request without credentials".to_owned(),
        });
        f.facts.client_override = Some(match violation {
            Reason::UpstreamUnauthorizedAfterAuthentication => Reason::Forbidden,
            _ if no_credentials => Reason::CredentialsMissing,
            _ => Reason::CredentialsInvalid,
        });
        let kept = match violation {
            Reason::UpstreamTokenRefused => true,
            Reason::UpstreamForbiddenWithoutCredentials
                if !self.config.correct_anonymous_forbidden =>
            {
                f.facts.hint = Some(
                    "The application answered 403 to a request without credentials, where 401 \
                     with a challenge is the usual answer. It was kept: a 403 can be a denial \
                     by IP or policy. If this application's 403s to anonymous requests always \
                     mean \"who are you?\", opt in with \
                     AuthDiagnostics::correct_forbidden_without_credentials()."
                        .into(),
                );
                true
            }
            _ => self.config.mode == UpstreamMode::Observe,
        };
        if kept {
            self.log(&f, status);
            return response;
        }
        let corrected = self.correct(response, &f);
        self.log(&f, corrected.status());
        corrected
    }

    /// The wrapped service's answer, corrected for `failure`: the right status, the
    /// challenges a 401 needs, no challenge on a 403, a problem body if it had none.
    fn correct(&self, response: Response<Body>, failure: &AuthFailure) -> Response<Body> {
        let (mut parts, body) = response.into_parts();
        let rendered = failure.render(&self.config.render(), Some(self.request_id.as_str()));
        let (rparts, rbody) = rendered.into_parts();
        let status_changed = parts.status != rparts.status;
        parts.status = rparts.status;
        parts.headers.remove(WWW_AUTHENTICATE);
        for challenge in rparts.headers.get_all(WWW_AUTHENTICATE) {
            parts.headers.append(WWW_AUTHENTICATE, challenge.clone());
        }
        // The corrected answer is the layer's: never cacheable, whatever the app said.
        parts
            .headers
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // A new status gets the layer's body (a problem body's `status` equals the
        // response's); a completed 401 keeps a non-empty body of the application's.
        let empty = http_body::Body::size_hint(&body).exact() == Some(0);
        if !status_changed && !empty {
            return Response::from_parts(parts, body);
        }
        for stale in [CONTENT_LENGTH, CONTENT_ENCODING, CONTENT_RANGE, ETAG] {
            parts.headers.remove(stale);
        }
        if let Some(ct) = rparts.headers.get(CONTENT_TYPE) {
            parts.headers.insert(CONTENT_TYPE, ct.clone());
        }
        Response::from_parts(parts, rbody)
    }

    fn log(&self, failure: &AuthFailure, status: StatusCode) {
        emit(
            failure,
            &self.info(),
            status,
            self.config.detail,
            &self.config.flood,
        );
    }
}
