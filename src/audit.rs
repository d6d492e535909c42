//! Audit records: one per authentication decision, accepts included (README, "Audit").
//!
//! With [`AuthDiagnostics::audit`](crate::AuthDiagnostics::audit), every request the layer
//! decides on (accepted, let through anonymously, or refused with 400, 401, 403, 429 or
//! 503) produces one [`AuditRecord`]: as an INFO event on the `tracing` target
//! `auth_diagnostics::audit`, and to the application's [`AuditSink`] when there is one.
//! The record is made at the layer's outermost point, from the answer that leaves it, so
//! refusals made anywhere inside (the path guard, throttling, an unavailable key source,
//! an MCP header mismatch, the application's own 401 or 403) are recorded with the
//! status the client got. Records are never rate-limited (the log events are); accepted
//! requests can be sampled ([`Audit::sample_accepts`]). Like the log events, a record
//! holds no secret: no token, password, key, cookie value or query string.
//!
//! ```
//! use auth_diagnostics::audit::{Audit, AuditRecord, Decision};
//! use auth_diagnostics::jwt::JwtAuthenticator;
//! use auth_diagnostics::keys::StaticKey;
//! use auth_diagnostics::AuthDiagnostics;
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use std::sync::{Arc, Mutex};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let sink = seen.clone();
//! let audit = Audit::new().sink(move |r: &AuditRecord| {
//!     sink.lock().unwrap().push((r.decision, r.status.as_u16(), r.reason.map(|r| r.code())));
//! });
//! let jwt = JwtAuthenticator::new(StaticKey::hs256("secret"))
//!     .issuer("https://issuer.example")
//!     .audience("my-api");
//! let app = Router::new()
//!     .route("/me", get(|| async { "me" }))
//!     .layer(AuthDiagnostics::new().bearer(jwt).audit(audit));
//! let response = app
//!     .oneshot(Request::get("/me").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 401);
//! let seen = seen.lock().unwrap();
//! assert_eq!(seen[..], [(Decision::Refused, 401, Some("credentials_missing"))]);
//! # }
//! ```

use crate::authn::Principal;
use crate::failure::AuthFailure;
use crate::reason::Reason;
use http::{Method, Response, StatusCode};
use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

/// What the layer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Decision {
    /// The credentials verified: the request went on with a principal.
    Accepted,
    /// The request went on without a principal: authentication is optional on the route
    /// and none was sent, or the layer is report-only and would have refused it
    /// (`reason` says why, `enforced` is false).
    Anonymous,
    /// The request was refused (by the layer, or by the application with a 401 or 403).
    Refused,
}

impl Decision {
    /// `accepted`, `anonymous` or `refused`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Accepted => "accepted",
            Decision::Anonymous => "anonymous",
            Decision::Refused => "refused",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One authentication decision. Its text borrows from the request where it can (a record
/// made costs no allocation for plain text); [`into_owned`](Self::into_owned) keeps it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuditRecord<'a> {
    /// What was decided.
    pub decision: Decision,
    /// The status the client got.
    pub status: StatusCode,
    /// Why it was refused (or, report-only, would have been); `None` when accepted.
    pub reason: Option<Reason>,
    /// `false` when a report-only layer let a request through that it would refuse.
    pub enforced: bool,
    /// The scheme of the credential (`bearer`, `basic`, `dpop`, `api_key`, `cookie`, …).
    pub scheme: Option<&'static str>,
    /// The verified principal's id (`sub`).
    pub sub: Option<Cow<'a, str>>,
    /// The token's `client_id` (or `azp`), when it names one.
    pub client_id: Option<Cow<'a, str>>,
    /// The token's issuer.
    pub issuer: Option<Cow<'a, str>>,
    /// On a refusal, the user name the request claimed (unverified), when it named one.
    pub claimed_user: Option<Cow<'a, str>>,
    /// The credential, for [`fingerprint`](Self::fingerprint): worked out when asked for.
    fingerprint: Option<Fingerprint>,
    /// The route template that matched (`/users/{id}`), when the router matched one
    /// before the layer ran (`Router::layer` and `route_layer` both do); `None` on the
    /// fallback, or when the layer wraps a whole router as a service.
    pub route: Option<Cow<'a, str>>,
    /// The request method.
    pub method: Method,
    /// The request path, without the query.
    pub path: Cow<'a, str>,
    /// The request id (`X-Request-Id`).
    pub request_id: Cow<'a, str>,
    /// When the request came in.
    pub time: SystemTime,
}

impl AuditRecord<'_> {
    /// A keyed fingerprint of the credential (as in the log events): the `Authorization`
    /// credential (Basic, Bearer, DPoP) when accepted, whichever failed when refused.
    /// Worked out when asked for (a keyed hash of the credential).
    pub fn fingerprint(&self) -> Option<String> {
        match self.fingerprint.as_ref()? {
            Fingerprint::Known(fp) => Some(fp.to_string()),
            Fingerprint::Of(credential) => Some(fingerprint_of(credential)),
        }
    }

    /// The record with its text owned, to keep or send elsewhere.
    pub fn into_owned(self) -> AuditRecord<'static> {
        let own = |text: Option<Cow<'_, str>>| text.map(|t| Cow::Owned(t.into_owned()));
        AuditRecord {
            decision: self.decision,
            status: self.status,
            reason: self.reason,
            enforced: self.enforced,
            scheme: self.scheme,
            sub: own(self.sub),
            client_id: own(self.client_id),
            issuer: own(self.issuer),
            claimed_user: own(self.claimed_user),
            fingerprint: self.fingerprint,
            route: own(self.route),
            method: self.method,
            path: Cow::Owned(self.path.into_owned()),
            request_id: Cow::Owned(self.request_id.into_owned()),
            time: self.time,
        }
    }
}

/// A credential's fingerprint, or the credential to work it out from.
#[derive(Clone)]
enum Fingerprint {
    Known(crate::sanitize::Fingerprint),
    /// An `Authorization` value.
    Of(http::HeaderValue),
}

// The credential is a secret: only its fingerprint is shown.
impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fingerprint::Known(fp) => f.write_str(fp),
            Fingerprint::Of(credential) => f.write_str(&fingerprint_of(credential)),
        }
    }
}

fn fingerprint_of(authorization: &http::HeaderValue) -> String {
    let credential = crate::evidence::credential_part(authorization.as_bytes());
    crate::sanitize::fingerprint(&credential[..credential.len().min(8192)]).to_string()
}

/// Where audit records go besides `tracing`: a queue, a database, a SIEM. Called once per
/// record, on the request's task: hand the record on, do not block.
pub trait AuditSink: Send + Sync + 'static {
    /// Takes one record ([`AuditRecord::into_owned`] to keep it).
    fn record(&self, record: &AuditRecord<'_>);
}

impl<F: Fn(&AuditRecord<'_>) + Send + Sync + 'static> AuditSink for F {
    fn record(&self, record: &AuditRecord<'_>) {
        self(record)
    }
}

/// Audit settings for [`AuthDiagnostics::audit`](crate::AuthDiagnostics::audit): every
/// decision recorded on the `tracing` target `auth_diagnostics::audit` (at INFO), and to
/// a sink when one is given.
#[derive(Clone)]
pub struct Audit {
    sink: Option<Arc<dyn AuditSink>>,
    tracing: bool,
    /// The share of accepted requests recorded, in millionths.
    accepts: u64,
    counter: Arc<AtomicU64>,
}

impl Default for Audit {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Audit")
            .field("sink", &self.sink.is_some())
            .field("tracing", &self.tracing)
            .field("accepts", &(self.accepts as f64 / 1e6))
            .finish()
    }
}

impl Audit {
    /// Every decision, on the `tracing` target `auth_diagnostics::audit`.
    #[must_use]
    pub fn new() -> Self {
        Self {
            sink: None,
            tracing: true,
            accepts: 1_000_000,
            counter: Arc::default(),
        }
    }

    /// Also hands every record to `sink`.
    #[must_use]
    pub fn sink(mut self, sink: impl AuditSink) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// Records go to the sink only, not to `tracing`.
    #[must_use]
    pub fn without_tracing(mut self) -> Self {
        self.tracing = false;
        self
    }

    /// Records this share of accepted requests (0.0 to 1.0; default 1.0): evenly, one in
    /// `1 / ratio`. Refusals and anonymous requests are always recorded.
    #[must_use]
    pub fn sample_accepts(mut self, ratio: f64) -> Self {
        self.accepts = (ratio.clamp(0.0, 1.0) * 1e6).round() as u64;
        self
    }

    /// Whether the next accepted request is recorded: the share is kept exactly over any
    /// run of requests.
    fn take_accept(&self) -> bool {
        if self.accepts >= 1_000_000 {
            return true;
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        (n + 1) * self.accepts / 1_000_000 > n * self.accepts / 1_000_000
    }
}

/// What the layer decided about a request, as far as it knows: carried to the layer's
/// outermost point. Cheap to make: the principal's claims are shared, the credential's
/// fingerprint and the record's text are worked out only for a record that is made.
#[derive(Clone, Debug)]
pub(crate) struct Facts {
    decision: Decision,
    reason: Option<Reason>,
    enforced: bool,
    scheme: Option<&'static str>,
    /// The verified principal's id and claims.
    id: Option<String>,
    claims: Option<Arc<serde_json::Value>>,
    claimed_user: Option<String>,
    fingerprint: Option<Fingerprint>,
}

impl Facts {
    /// Accepted as `principal`, with the request's `authorization` when it was the
    /// credential (Basic, Bearer, DPoP).
    pub(crate) fn accepted(
        principal: &Principal,
        authorization: Option<&http::HeaderValue>,
    ) -> Self {
        let claims = principal.claims_arc();
        Self::verified(principal.scheme(), principal.id(), claims, authorization)
    }

    /// Accepted as the principal these are of.
    fn verified(
        scheme: Option<crate::scheme::Scheme>,
        id: Option<&str>,
        claims: Option<Arc<serde_json::Value>>,
        authorization: Option<&http::HeaderValue>,
    ) -> Self {
        use crate::scheme::Scheme;
        let from_authorization =
            matches!(scheme, Some(Scheme::Basic | Scheme::Bearer | Scheme::Dpop));
        // A token's `sub` is read from its claims when the record is made.
        let sub = claims.as_deref().and_then(|c| c.get("sub")?.as_str());
        Self {
            decision: Decision::Accepted,
            reason: None,
            enforced: true,
            scheme: scheme.map(crate::metrics::scheme_label),
            id: id.filter(|id| sub != Some(*id)).map(str::to_owned),
            claims,
            claimed_user: None,
            fingerprint: authorization
                .filter(|_| from_authorization)
                .map(|a| Fingerprint::Of(a.clone())),
        }
    }

    /// A back-channel logout from `issuer`, accepted.
    pub(crate) fn logout(issuer: &str) -> Self {
        Self {
            decision: Decision::Accepted,
            reason: None,
            enforced: true,
            scheme: Some("logout_token"),
            id: None,
            claims: Some(Arc::new(serde_json::json!({ "iss": issuer }))),
            claimed_user: None,
            fingerprint: None,
        }
    }

    /// Let through without a principal; `would_refuse` on a report-only layer.
    pub(crate) fn anonymous(would_refuse: Option<&AuthFailure>) -> Self {
        Self {
            decision: Decision::Anonymous,
            reason: would_refuse.map(AuthFailure::reason),
            enforced: would_refuse.is_none(),
            scheme: would_refuse.and_then(received),
            id: None,
            claims: None,
            claimed_user: would_refuse.and_then(|f| f.facts().user().map(str::to_owned)),
            fingerprint: would_refuse
                .and_then(|f| f.facts().fingerprint_kept())
                .map(Fingerprint::Known),
        }
    }

    /// Refused for `failure`. The principal stays: the one accepted before (the
    /// application refused it), or the one whose credentials verified and the layer's
    /// admission refused (scopes, revocation, the account hook).
    pub(crate) fn refused(
        known: Option<Self>,
        failure: &AuthFailure,
        authorization: Option<&http::HeaderValue>,
    ) -> Self {
        let facts = failure.facts();
        let known = known
            .filter(|f| f.decision == Decision::Accepted)
            .or_else(|| {
                let v = facts.verified()?;
                let claims = v.claims.clone();
                Some(Self::verified(
                    v.scheme,
                    v.id.as_deref(),
                    claims,
                    authorization,
                ))
            });
        let (id, claims, fingerprint) = match known {
            Some(k) => (k.id, k.claims, k.fingerprint),
            None => (None, None, None),
        };
        Self {
            decision: Decision::Refused,
            reason: Some(failure.reason()),
            enforced: true,
            scheme: received(failure),
            claimed_user: facts.user().map(str::to_owned).filter(|_| id.is_none()),
            id,
            claims,
            fingerprint: match facts.fingerprint_kept() {
                Some(fp) => Some(Fingerprint::Known(fp)),
                None => fingerprint,
            },
        }
    }
}

/// The scheme of the credential `failure` was about, if one was sent.
fn received(failure: &AuthFailure) -> Option<&'static str> {
    Some(failure.scheme_received()).filter(|s| *s != "none")
}

/// What the outermost point needs to know about the request: cheap clones, worked into
/// text only for a record that is made.
pub(crate) struct Context {
    audit: Audit,
    method: Method,
    uri: http::Uri,
    request_id: crate::request_id::AuthRequestId,
    route: Option<axum::extract::MatchedPath>,
    time: SystemTime,
    /// What was decided, when the answer does not carry it.
    pub facts: Option<Facts>,
}

impl Context {
    pub(crate) fn new(
        audit: &Audit,
        method: &Method,
        uri: &http::Uri,
        extensions: &http::Extensions,
        request_id: &crate::request_id::AuthRequestId,
    ) -> Self {
        Self {
            audit: audit.clone(),
            method: method.clone(),
            uri: uri.clone(),
            request_id: request_id.clone(),
            route: extensions.get::<axum::extract::MatchedPath>().cloned(),
            time: SystemTime::now(),
            facts: None,
        }
    }

    /// The record of the answer that leaves the layer, if the layer decided anything.
    pub(crate) fn finish<B>(self, response: &mut Response<B>) {
        // A refusal made inside (the layer's own, or an MCP answer) says what it decided.
        let Some(facts) = response.extensions_mut().remove::<Facts>().or(self.facts) else {
            return;
        };
        if facts.decision == Decision::Accepted && !self.audit.take_accept() {
            return;
        }
        let claims = facts.claims.as_deref();
        let claim = |name: &str| {
            let value = claims?.get(name)?.as_str()?;
            Some(crate::sanitize::safe_to(value, crate::sanitize::MAX_FIELD))
        };
        let safe = |text| crate::sanitize::safe_to(text, crate::sanitize::MAX_FIELD);
        let path = match crate::snapshot::loggable_path(self.uri.path()) {
            Cow::Borrowed(path) => crate::sanitize::safe_to(path, 256),
            Cow::Owned(path) => Cow::Owned(crate::sanitize::safe_to(&path, 256).into_owned()),
        };
        let record = AuditRecord {
            decision: facts.decision,
            status: response.status(),
            reason: facts.reason,
            enforced: facts.enforced,
            scheme: facts.scheme,
            sub: facts.id.as_deref().map(safe).or_else(|| claim("sub")),
            client_id: claim("client_id").or_else(|| claim("azp")),
            issuer: claim("iss"),
            claimed_user: facts.claimed_user.as_deref().map(safe),
            fingerprint: facts.fingerprint.clone(),
            route: self
                .route
                .as_ref()
                .map(|m| crate::sanitize::safe_to(m.as_str(), 256)),
            method: self.method.clone(),
            path,
            request_id: Cow::Borrowed(self.request_id.as_str()),
            time: self.time,
        };
        if self.audit.tracing {
            emit(&record);
        }
        if let Some(sink) = &self.audit.sink {
            sink.record(&record);
        }
    }
}

/// The record as a `tracing` event on `auth_diagnostics::audit`.
fn emit(r: &AuditRecord<'_>) {
    tracing::info!(
        target: "auth_diagnostics::audit",
        decision = r.decision.as_str(),
        status = r.status.as_u16(),
        reason = r.reason.map(Reason::code),
        enforced = r.enforced,
        scheme = r.scheme,
        sub = r.sub.as_deref(),
        client_id = r.client_id.as_deref(),
        issuer = r.issuer.as_deref(),
        claimed_user = r.claimed_user.as_deref(),
        fingerprint = r.fingerprint().as_deref(),
        route = r.route.as_deref(),
        method = r.method.as_str(),
        path = &*r.path,
        request_id = &*r.request_id,
        "audit"
    );
}
