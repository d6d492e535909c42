//! The answer to a request, whichever way it goes: who it was admitted as (the success
//! metric, the span, the success hook) or why it was refused (status, challenge, problem
//! body or a login page, one log event, the failure metric, the failure hook). The layer's
//! own refusals, the application's `AuthFailure`s and the corrections of the wrapped
//! service's answers all leave through [`Answer::reject`] or [`Answer::log`]. A gRPC
//! request is refused in gRPC's terms (`grpc.rs`).

pub(crate) mod grpc;

use crate::audit::Facts;
use crate::authn::Principal;
use crate::config::Config;
use crate::evidence::{is_preflight, Evidence};
use crate::failure::AuthFailure;
use crate::log::{emit, emit_unenforced, RequestInfo};
use crate::reason::Reason;
use crate::request_id::{AuthRequestId, X_REQUEST_ID};
use crate::snapshot::{Headers, Snapshot};
use axum::body::Body;
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Uri};
use std::sync::Arc;

/// Marks a response that a layer already rendered and logged, so that an enclosing layer
/// (one per sub-router plus one around the app is common) passes it through.
#[derive(Clone, Copy)]
pub(crate) struct Handled;

/// What answering a request needs to know about it.
pub(crate) struct Answer {
    pub config: Arc<Config>,
    pub request_id: AuthRequestId,
    method: Method,
    pub uri: Uri,
    /// A CORS preflight, passed through unauthenticated.
    pub preflight: bool,
    /// This layer (or an enclosing one) authenticated the request.
    pub authenticated: bool,
    /// Authenticated by a credential shared caches do not key on (API key, cookie).
    pub private: bool,
    /// The request's headers, kept for diagnosing a refusal by the wrapped service: taken
    /// when the request goes on ([`forward`](Self::forward)); empty before.
    pub snapshot: Snapshot,
    /// The snapshot is taken.
    kept: bool,
    /// The request went on: its id is in its extensions.
    forwarded: bool,
    /// The request's head for the failure hook, when there is one.
    head: Option<Box<Parts>>,
    /// For a session layer with a login page: the URL the browser asked for, when the
    /// request is a page navigation (a failure then redirects to the login page).
    navigation: Option<Uri>,
    /// The request came with an `Origin` (cross-origin, or a same-origin POST).
    pub with_origin: bool,
    /// A gRPC request: refusals are trailers-only gRPC answers.
    grpc: bool,
    /// What a failure of this request is counted under, when the layer throttles.
    pub counted: Option<crate::throttle::Subject>,
    /// What was decided, for the audit record (only when the layer audits).
    audit: Option<std::cell::Cell<Option<Facts>>>,
}

/// A failure the shared throttling store still has to record: the layer's outermost
/// point waits for it before the answer leaves, so the client's next request, whichever
/// replica it reaches, sees it.
#[derive(Clone)]
pub(crate) struct PendingRecord(pub Arc<std::sync::Mutex<Option<crate::throttle::RecordFuture>>>);

impl Answer {
    pub(crate) fn new<B>(config: Arc<Config>, request_id: AuthRequestId, req: &Request<B>) -> Self {
        let head = config
            .on_failure
            .as_ref()
            .map(|_| Box::new(crate::hooks::head_of(req)));
        let login = config
            .session_pages
            .as_ref()
            .and_then(|p| p.login_url.as_ref());
        let navigation =
            (login.is_some() && crate::authn::session::browser::is_navigation(req.headers())).then(
                || match req.extensions().get::<axum::extract::OriginalUri>() {
                    Some(original) => original.0.clone(),
                    None => req.uri().clone(),
                },
            );
        let config_audits = config.audit.is_some();
        Self {
            navigation,
            with_origin: req.headers().contains_key(http::header::ORIGIN),
            grpc: grpc::is_grpc(req.headers()),
            config,
            head,
            request_id,
            method: req.method().clone(),
            uri: req.uri().clone(),
            preflight: is_preflight(req.method(), req.headers()),
            // An enclosing layer may have authenticated the request already.
            authenticated: req.extensions().get::<crate::authn::Principal>().is_some(),
            private: false,
            snapshot: Snapshot::default(),
            kept: false,
            forwarded: false,
            counted: None,
            audit: config_audits.then(Default::default),
        }
    }

    /// `req` goes on to the wrapped service: keep its headers, for a refusal by that
    /// service, and put its id in its extensions. Once: a second call does nothing.
    pub(crate) fn forward<B>(&mut self, mut req: Request<B>) -> Request<B> {
        if !self.forwarded {
            self.keep(req.headers());
            req.extensions_mut().insert(self.request_id.clone());
            self.forwarded = true;
        }
        req
    }

    /// Keeps `headers` (once) for what is answered after the request is gone: the
    /// enrichment of a later refusal, and its event.
    pub(crate) fn keep(&mut self, headers: &http::HeaderMap) {
        if !self.kept {
            self.snapshot = Snapshot::new(headers);
            self.kept = true;
        }
    }

    /// `principal` is who sent `req`: count it, record it on the span, tell the success
    /// hook, and hand it to the wrapped service.
    pub(crate) fn admitted<B>(&mut self, principal: Principal, req: Request<B>) -> Request<B> {
        let req = self.forward(req);
        self.authenticated = true;
        let scheme = principal
            .scheme()
            .map_or("none", crate::metrics::scheme_label);
        crate::metrics::success(scheme);
        crate::hooks::span::success(scheme, &principal, self.config.enduser_id);
        if self.audit.is_some() {
            let authorization = req.headers().get(http::header::AUTHORIZATION);
            self.decided(|_| Facts::accepted(&principal, authorization));
        }
        let mut req = match &self.config.on_success {
            Some(hook) => crate::hooks::with_head(req, |head| hook.0.on_success(&principal, head)),
            None => req,
        };
        req.extensions_mut().insert(principal);
        req
    }

    /// Optional authentication let a request without credentials through: DEBUG only (it
    /// is ordinary traffic), with what was seen (`seen`: `credentials_missing`, or a cookie
    /// or query parameter this layer does not read), and the span says so.
    ///
    /// In report-only mode any other refusal of authentication comes here too: it is
    /// [`would_refuse`](Self::would_refuse).
    pub(crate) fn anonymous(&self, seen: &AuthFailure) {
        if self.config.report_only
            && !(self.config.optional
                && crate::admit::guest(&self.config, seen, &self.snapshot.headers(), &self.uri))
        {
            self.would_refuse(seen.clone());
            return;
        }
        crate::hooks::span::anonymous();
        self.decided(|_| Facts::anonymous(None));
        tracing::debug!(
            target: "auth_diagnostics",
            seen = seen.reason().code(),
            location = seen.facts().location().map(tracing::field::display),
            request_id = self.request_id.as_str(),
            method = self.method.as_str(),
            path = crate::sanitize::cap_to(&crate::snapshot::loggable_path(self.uri.path()), 256).as_str(),
            "anonymous: no credentials, and authentication is optional here"
        );
    }

    /// Renders and logs `failure` with this layer's configuration; a page navigation that
    /// a session layer with a login page refuses with 401 goes to that page instead, and
    /// a gRPC request gets a gRPC answer (logged and counted with the HTTP status).
    ///
    /// A failure that throttling counts is recorded here (in the shared store when there
    /// is one: [`PendingRecord`]).
    pub(crate) fn reject(&self, failure: AuthFailure) -> Response<Body> {
        self.reject_with(failure, None)
    }

    /// [`reject`](Self::reject) a request the layer still holds: its event reads `headers`
    /// (and only when it is logged), so no snapshot is taken.
    pub(crate) fn refuse(&self, failure: AuthFailure, headers: &http::HeaderMap) -> Response<Body> {
        self.reject_with(failure, Some(headers))
    }

    fn reject_with(&self, failure: AuthFailure, live: Option<&http::HeaderMap>) -> Response<Body> {
        let record = match (&self.config.throttle, &self.counted) {
            (Some(throttle), Some(subject))
                if crate::throttle::COUNTED.contains(&failure.reason()) =>
            {
                throttle.record(subject)
            }
            _ => None,
        };
        let mut response = self.render(failure, live);
        if let Some(facts) = self.take_decision() {
            response.extensions_mut().insert(facts);
        }
        if let Some(record) = record {
            let pending = PendingRecord(Arc::new(std::sync::Mutex::new(Some(record))));
            response.extensions_mut().insert(pending);
        }
        response
    }

    fn render(&self, failure: AuthFailure, live: Option<&http::HeaderMap>) -> Response<Body> {
        if self.grpc {
            let http = failure.render(&self.config.render(), Some(&self.request_id));
            let status = http.status();
            let mut response = grpc::answer(&failure, http, self.config.detail);
            self.log_with(failure, status, live);
            response.extensions_mut().insert(Handled);
            return response;
        }
        if let (Some(uri), Some(pages)) = (&self.navigation, &self.config.session_pages) {
            if let (Some(login), StatusCode::UNAUTHORIZED) = (&pages.login_url, failure.status()) {
                let mut response = crate::authn::session::browser::login_redirect(login, uri);
                response
                    .headers_mut()
                    .insert(X_REQUEST_ID, self.request_id.header_value().clone());
                self.log_with(failure, response.status(), live);
                response.extensions_mut().insert(Handled);
                return response;
            }
        }
        let mut response = failure.render(&self.config.render(), Some(&self.request_id));
        self.log_with(failure, response.status(), live);
        response.extensions_mut().insert(Handled);
        response
    }

    /// Adds what the request shows to a failure an inner handler returned: where the
    /// credential was, its fingerprint, and the token's facts.
    pub(crate) fn enrich(&self, failure: AuthFailure) -> AuthFailure {
        let facts = failure.facts();
        if facts.location().is_some() || facts.token().is_some() {
            return failure;
        }
        let seen = self.diagnose();
        if seen.reason() == Reason::CredentialsMissing {
            return failure;
        }
        let seen = seen.facts();
        let f = match seen.location() {
            Some(l) => failure.location(l.clone()),
            None => failure,
        };
        let f = match seen.fingerprint_kept() {
            Some(fp) => f.fingerprint(fp),
            None => f,
        };
        let f = match seen.token() {
            Some(t) => f.token(t.clone()).token_verified(self.authenticated),
            None => f,
        };
        let f = f.received(seen.received_scheme());
        if self.config.schemes.is_empty() {
            f
        } else {
            f.or_expected(|| crate::authn::expected_names(&self.config.schemes))
        }
    }

    /// The most precise reason the request itself explains, marked inferred.
    pub(crate) fn diagnose(&self) -> AuthFailure {
        let headers = self.snapshot.headers();
        crate::diagnose::diagnose(&Evidence::new(&headers, &self.uri), self.expected_names())
    }

    /// What the layer expects, in words: its schemes, or Bearer (the default scheme).
    pub(crate) fn expected_names(&self) -> std::borrow::Cow<'static, str> {
        if self.config.schemes.is_empty() {
            crate::authn::DEFAULT_SCHEME.as_str().into()
        } else {
            crate::authn::expected_names(&self.config.schemes)
        }
    }

    /// Every failure passes here once: counted, recorded on the request span, handed to
    /// the failure hook, then logged unless flood control holds it back.
    pub(crate) fn log(&self, failure: AuthFailure, status: StatusCode) {
        self.log_with(failure, status, None)
    }

    /// [`log`](Self::log), reading the request's `live` headers when the layer still
    /// holds it, its snapshot otherwise.
    fn log_with(&self, failure: AuthFailure, status: StatusCode, live: Option<&http::HeaderMap>) {
        let failure = failure.answered(status);
        let headers = self.headers(live);
        if self.audit.is_some() {
            let authorization = headers.get(&http::header::AUTHORIZATION);
            self.decided(|known| Facts::refused(known, &failure, authorization));
        }
        let scheme = failure.scheme_received();
        crate::metrics::failure(failure.reason(), scheme, status);
        crate::hooks::span::failure(failure.reason().code(), scheme, status.as_u16());
        if let (Some(hook), Some(head)) = (&self.config.on_failure, &self.head) {
            hook.0.on_failure(&failure, head);
        }
        emit(
            &failure,
            &self.info(headers),
            status,
            self.config.detail,
            &self.config.flood,
        );
    }

    /// Report-only: `failure` is what the layer would have answered, and the request goes
    /// on anonymously. Counted as a failure with the status it would have had and as a
    /// would-be refusal, and logged like one with `enforced=false`. The span says the
    /// request is anonymous, and the failure hook is not told (nothing was refused).
    pub(crate) fn would_refuse(&self, failure: AuthFailure) {
        let status = failure.status();
        let failure = failure.answered(status);
        crate::metrics::failure(failure.reason(), failure.scheme_received(), status);
        crate::metrics::would_refuse(failure.reason());
        crate::hooks::span::anonymous();
        self.decided(|_| Facts::anonymous(Some(&failure)));
        emit_unenforced(
            &failure,
            &self.info(self.headers(None)),
            status,
            self.config.detail,
            &self.config.flood,
        );
    }

    /// Updates what was decided about this request, when the layer audits.
    fn decided(&self, update: impl FnOnce(Option<Facts>) -> Facts) {
        if let Some(slot) = &self.audit {
            slot.set(Some(update(slot.take())));
        }
    }

    /// What was decided, for the audit record at the layer's outermost point.
    pub(crate) fn take_decision(&self) -> Option<Facts> {
        self.audit.as_ref()?.take()
    }

    fn info<'a>(&'a self, headers: Headers<'a>) -> RequestInfo<'a> {
        RequestInfo {
            request_id: self.request_id.as_str(),
            method: &self.method,
            uri: &self.uri,
            headers,
        }
    }

    /// The request's `live` headers when the layer still holds it, its snapshot otherwise.
    fn headers<'a>(&'a self, live: Option<&'a http::HeaderMap>) -> Headers<'a> {
        match live {
            Some(headers) => Headers::Live(headers),
            None => Headers::Kept(&self.snapshot),
        }
    }
}
