//! The one test dialect. Every suite sends requests with [`send`] and states what a
//! rejection must look like with [`expect`]:
//!
//! ```ignore
//! let out = send(app, get("/me", &[("authorization", &bearer(&token))])).await;
//! let r = out.check(&expect("token_expired").verbose().field("exp", &when));
//! assert!(r.detail().contains("ago"));
//! ```
//!
//! [`send`] captures the log events and asserts, for every request, what holds whatever
//! the request: the response echoes or assigns a request id; every challenge parses with an
//! independent parser (`http-auth`), one per field line, no parameter twice; every problem
//! body is RFC 9457 (its `status` is the response's); every event is clean (no raw control
//! character, every field capped) and holds no secret of the request.
//!
//! [`Outcome::check`] asserts one rejection against the spec table in [`row`] (status,
//! Bearer `error`, level and production collapse, written out here from
//! `shared/spec/reasons.md`, never taken from the crate): status, the challenge, the
//! problem body in the detail mode, and the single event's fields.
#![allow(dead_code)]

#[path = "../../examples/demo.rs"]
pub mod demo;
pub mod examples;
pub mod node;
pub mod provider;
pub mod redis;

// What every suite names, so a suite's own imports are only what is particular to it.
pub use auth_diagnostics::layer::DetailMode;
pub use auth_diagnostics::{AuthDiagnostics, Reason};
pub use http::{HeaderValue, Method, StatusCode};
pub use serde_json::Value;
pub use tracing::Level;

use auth_diagnostics::api_key::{ApiKey, ApiKeyAuthenticator};
use auth_diagnostics::authz::AccountStatus;
use auth_diagnostics::basic::{BasicAuthenticator, BasicCredentials};
use auth_diagnostics::failure::AuthFailure;
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::StaticKey;
use auth_diagnostics::session::{SessionAuthenticator, SessionCookie};
use auth_diagnostics::verify::AuthResult;
use auth_diagnostics::Principal;
use axum::body::Body;
use base64::Engine as _;
use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, Request, Response};
use http_body_util::BodyExt;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Map};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tower::ServiceExt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

pub const SECRET: &str = "test-hs256-secret";
pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "test-api";

// =======================================================================================
// Capturing events
// =======================================================================================

/// One captured event: level, target and every field as text.
#[derive(Debug, Clone)]
pub struct Captured {
    pub level: Level,
    pub target: String,
    pub fields: BTreeMap<String, String>,
}

impl Captured {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// The field, which must be present.
    #[track_caller]
    pub fn field(&self, name: &str) -> &str {
        self.get(name)
            .unwrap_or_else(|| panic!("event has no field {name}: {:#?}", self.fields))
    }

    /// Every field rendered on one line, as a log line would carry it.
    pub fn line(&self) -> String {
        self.fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Default)]
struct FieldVisitor(BTreeMap<String, String>);

impl Visit for FieldVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
}

/// A subscriber layer that keeps every event.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<Captured>>>);

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut v = FieldVisitor::default();
        event.record(&mut v);
        self.0.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields: v.0,
        });
    }
}

impl Capture {
    /// Events from this crate only.
    pub fn events(&self) -> Vec<Captured> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.target == "auth_diagnostics")
            .cloned()
            .collect()
    }

    /// Every event, whatever its target.
    pub fn all_events(&self) -> Vec<Captured> {
        self.0.lock().unwrap().clone()
    }

    /// A capturing subscriber, current on this thread until the guard drops.
    pub fn install() -> (Capture, tracing::subscriber::DefaultGuard) {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        (capture, tracing::subscriber::set_default(subscriber))
    }
}

// =======================================================================================
// Sending, and what every response must satisfy
// =======================================================================================

/// What a request produced: the response and the log events.
#[derive(Debug)]
pub struct Outcome {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub events: Vec<Captured>,
}

/// Sends `req` through `svc` with a capturing subscriber and asserts the invariants of
/// every response (see the module documentation).
pub async fn send<S>(svc: S, req: Request<Body>) -> Outcome
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Send,
    S::Error: std::fmt::Debug,
    S::Future: Send,
{
    let out = send_unchecked(svc, req).await;
    out.assert_challenges_parse();
    out
}

/// [`send`] without the check that every challenge parses: for a wrapped service that
/// answers with a challenge of its own that does not.
pub async fn send_unchecked<S>(svc: S, req: Request<Body>) -> Outcome
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Send,
    S::Error: std::fmt::Debug,
    S::Future: Send,
{
    let (capture, _guard) = Capture::install();
    let secrets = secrets_of(&req);
    let sent_id = req
        .headers()
        .get("x-request-id")
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty() && b.len() <= 128 && b.iter().all(|c| (0x21..=0x7e).contains(c))
        })
        .cloned();
    let response = svc.oneshot(req).await.expect("service error");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    let out = Outcome {
        status: parts.status,
        headers: parts.headers,
        body,
        events: capture.events(),
    };
    out.assert_request_id(sent_id.as_ref());
    out.assert_problem_body();
    for e in &out.events {
        assert_clean_event(e);
    }
    assert_no_secrets(&out.events, &secrets);
    out
}

impl Outcome {
    /// Every response carries `x-request-id`: the one sent when it was sane.
    #[track_caller]
    fn assert_request_id(&self, sent: Option<&HeaderValue>) {
        let got = self
            .headers
            .get("x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id on {} {:?}", self.status, self.headers));
        if let Some(sent) = sent {
            assert_eq!(got, sent, "the request id sent is echoed");
        }
        for e in &self.events {
            if let Some(id) = e.get("request_id") {
                assert_eq!(id, got.to_str().unwrap(), "event and response share the id");
            }
        }
    }

    /// A problem body is RFC 9457: members of the right type, `status` the response's,
    /// an absolute `type`, extension names of three or more word characters.
    #[track_caller]
    fn assert_problem_body(&self) {
        let is_problem = self
            .header("content-type")
            .is_some_and(|ct| ct == "application/problem+json");
        if !is_problem || !self.body.starts_with(b"{\"type\"") {
            return;
        }
        let p = self.json();
        assert_eq!(p["status"], self.status.as_u16(), "problem status: {p}");
        assert!(
            p["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("https://")),
            "type must be an absolute URI: {p}"
        );
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        assert!(p["detail"].as_str().is_some(), "{p}");
        assert_eq!(p["request_id"].as_str(), self.header("x-request-id"), "{p}");
        for key in p.as_object().unwrap().keys() {
            let ok = key.len() >= 3
                && key.starts_with(|c: char| c.is_ascii_alphabetic())
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            assert!(
                ok,
                "problem member {key:?} is not an RFC 9457 extension name"
            );
        }
        if self.status.is_client_error() {
            assert_eq!(self.header("cache-control"), Some("no-store"), "{p}");
        }
    }

    /// One challenge per field line, each parsed by `http-auth`, no parameter twice.
    #[track_caller]
    fn assert_challenges_parse(&self) {
        let _ = self.challenges();
    }

    /// The body as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The problem body (its RFC 9457 members were checked by [`send`]).
    #[track_caller]
    pub fn problem(&self) -> Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{} {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The single event this request logged.
    #[track_caller]
    pub fn event(&self) -> &Captured {
        assert_eq!(
            self.events.len(),
            1,
            "expected exactly one event, got {:#?}",
            self.events
        );
        &self.events[0]
    }

    /// The challenges, parsed by `http-auth`, one per field line, in order.
    #[track_caller]
    pub fn challenges(&self) -> Vec<ParsedChallenge> {
        self.headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(parse_challenge)
            .collect()
    }

    /// The only challenge.
    #[track_caller]
    pub fn challenge(&self) -> ParsedChallenge {
        let mut all = self.challenges();
        assert_eq!(all.len(), 1, "expected one challenge: {all:?}");
        all.remove(0)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Every value of header `name`.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    /// A 200 that logged nothing; returns the JSON body.
    #[track_caller]
    pub fn ok(&self) -> Value {
        assert_eq!(
            self.status,
            200,
            "body {} events {:#?}",
            self.text(),
            self.events
        );
        assert!(self.events.is_empty(), "{:#?}", self.events);
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One `WWW-Authenticate` field line, parsed by `http-auth`: visible ASCII, exactly one
/// challenge, no parameter twice (compared case-insensitively).
#[track_caller]
pub fn parse_challenge(value: &HeaderValue) -> ParsedChallenge {
    assert!(
        value
            .as_bytes()
            .iter()
            .all(|&b| b == b' ' || (0x21..=0x7e).contains(&b)),
        "non-visible byte in challenge {value:?}"
    );
    let text = value.to_str().expect("challenge is visible ASCII");
    let parsed = http_auth::parse_challenges(text)
        .unwrap_or_else(|e| panic!("challenge {text:?} does not parse: {e}"));
    assert_eq!(parsed.len(), 1, "one challenge per field line: {text}");
    let c = &parsed[0];
    let mut params = BTreeMap::new();
    for (name, value) in &c.params {
        let prev = params.insert(name.to_ascii_lowercase(), value.to_unescaped());
        assert!(prev.is_none(), "parameter {name} repeats in {text}");
    }
    ParsedChallenge {
        scheme: c.scheme.to_owned(),
        params,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedChallenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl ParsedChallenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The parameter names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.params.keys().map(String::as_str).collect()
    }
}

/// No raw control character in any field; every field bounded (`repro` at about 2 KiB,
/// free text at 512 characters, client values at 128).
#[track_caller]
pub fn assert_clean_event(e: &Captured) {
    for (k, v) in &e.fields {
        assert!(
            !v.chars().any(char::is_control),
            "field {k} holds a raw control character: {v:?}"
        );
        let cap = if k == "repro" { 2200 } else { 1100 };
        assert!(v.chars().count() <= cap, "field {k} is not capped: {v}");
    }
    for k in ["alg", "kid", "typ", "iss", "aud", "sub"] {
        if let Some(v) = e.get(k) {
            assert!(
                v.chars().all(|c| (' '..='~').contains(&c) || c == '…'),
                "field {k} is not escaped: {v:?}"
            );
            assert!(v.chars().count() <= 140, "field {k} is not capped: {v}");
        }
    }
}

/// The secrets a request carries: credential parts of `Authorization`, cookie values (a
/// pair without `=` is a value), credential-like header values, the query string and its
/// values, path parameter values.
fn secrets_of(req: &Request<Body>) -> Vec<String> {
    let mut out = Vec::new();
    let authorization = req.headers().get_all(AUTHORIZATION).iter();
    for v in authorization.chain(req.headers().get_all(PROXY_AUTHORIZATION)) {
        let text = String::from_utf8_lossy(v.as_bytes()).into_owned();
        let cred = match text.trim().split_once(' ') {
            Some((_, rest)) => rest.trim().to_owned(),
            // A scheme name alone (`Bearer`) carries no credential.
            None if ["bearer", "basic"].contains(&text.trim().to_ascii_lowercase().as_str()) => {
                continue
            }
            None => text.trim().to_owned(),
        };
        // A JWT's signature alone must not appear either.
        if let Some(sig) = cred.rsplit('.').next() {
            out.push(sig.to_owned());
        }
        out.push(cred);
    }
    for v in req.headers().get_all(COOKIE) {
        for pair in String::from_utf8_lossy(v.as_bytes()).split(';') {
            out.push(
                pair.split_once('=')
                    .map_or(pair, |(_, v)| v)
                    .trim()
                    .to_owned(),
            );
        }
    }
    // A DPoP proof, and its signature alone (RFC 9449): never logged. Short made-up values
    // ("x") would match any text, so only proof-sized ones count.
    for v in req.headers().get_all("dpop") {
        let proof = String::from_utf8_lossy(v.as_bytes()).into_owned();
        if proof.len() >= 16 {
            if let Some(sig) = proof.rsplit('.').next().filter(|s| s.len() >= 16) {
                out.push(sig.to_owned());
            }
            out.push(proof);
        }
    }
    for name in [
        "x-api-key",
        "x-auth-token",
        "token",
        "x-access-token",
        "api-key",
    ] {
        if let Some(v) = req.headers().get(name) {
            out.push(String::from_utf8_lossy(v.as_bytes()).into_owned());
        }
    }
    if let Some(q) = req.uri().query() {
        out.push(q.to_owned());
        for pair in q.split('&') {
            if let Some((_, value)) = pair.split_once('=') {
                out.push(value.to_owned());
            }
        }
    }
    for param in req.uri().path().split(';').skip(1) {
        let param = param.split('/').next().unwrap_or_default();
        out.push(param.split_once('=').map_or(param, |(_, v)| v).to_owned());
    }
    // Short fragments would match innocent text; every real secret here is longer.
    out.retain(|s| s.len() >= 6);
    out
}

/// Asserts no captured event holds any of `secrets`.
#[track_caller]
pub fn assert_no_secrets(events: &[Captured], secrets: &[String]) {
    for e in events {
        let line = e.line();
        for s in secrets {
            assert!(
                !line.contains(s.as_str()),
                "log event leaks a secret {s:?}: {line}"
            );
        }
    }
}

// =======================================================================================
// Requests
// =======================================================================================

/// A GET to `uri` with `headers`.
pub fn get(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

/// A request with raw header values: repeated fields, bytes that are not UTF-8.
pub fn request(method: Method, uri: &str, headers: Vec<(&str, HeaderValue)>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b.body(Body::empty()).unwrap()
}

/// A header value from raw bytes.
#[track_caller]
pub fn hv(bytes: impl AsRef<[u8]>) -> HeaderValue {
    HeaderValue::from_bytes(bytes.as_ref())
        .unwrap_or_else(|e| panic!("bad header value {:?}: {e}", bytes.as_ref()))
}

/// `Bearer <token>`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", b64(format!("{user}:{password}").as_bytes()))
}

/// Standard base64 with padding.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

// =======================================================================================
// Tokens
// =======================================================================================

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims that pass the default test authenticator: iss, aud, sub, exp in an hour.
pub fn good_claims() -> Map<String, Value> {
    let now = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "exp": now + 3600,
    })
    .as_object()
    .unwrap()
    .clone()
}

/// [`good_claims`] with `edits` merged in; a `null` in `edits` removes the claim.
pub fn claims(edits: Value) -> Map<String, Value> {
    let mut c = good_claims();
    for (k, v) in edits.as_object().expect("edits are an object") {
        if v.is_null() {
            c.remove(k);
        } else {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

/// An HS256 token signed with [`SECRET`].
pub fn hs256(claims: &Map<String, Value>) -> String {
    sign(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
}

pub fn sign(header: &Header, claims: &Map<String, Value>, key: &EncodingKey) -> String {
    encode(header, &Value::Object(claims.clone()), key).unwrap()
}

/// An HS256 token with a raw header JSON (`crit`, odd `typ`s), correctly signed.
pub fn hs256_raw_header(header: &str, claims: &Map<String, Value>) -> String {
    let message = format!(
        "{}.{}",
        b64url(header.as_bytes()),
        b64url(&serde_json::to_vec(claims).unwrap())
    );
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{message}.{sig}")
}

/// A token from raw header and payload JSON and a raw signature segment (for attacks).
pub fn raw_token(header: &str, payload: &str, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64url(header.as_bytes()),
        b64url(payload.as_bytes())
    )
}

// =======================================================================================
// Apps
// =======================================================================================

/// The default test authenticator: HS256 with [`SECRET`], [`ISSUER`], [`AUDIENCE`], `sub`.
pub fn jwt() -> JwtAuthenticator {
    JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .require_claims(["sub"])
}

/// The layer in a detail mode.
pub fn layer(mode: DetailMode) -> AuthDiagnostics {
    AuthDiagnostics::new().detail_mode(mode)
}

/// `/me` (`{"sub", "scheme"}` of the principal) and `/admin` (scope `admin`) behind
/// `layer` with the default test authenticator.
pub fn bearer_app(layer: AuthDiagnostics) -> axum::Router {
    jwt_app(layer, jwt())
}

/// [`bearer_app`] with another authenticator.
pub fn jwt_app(layer: AuthDiagnostics, jwt: JwtAuthenticator) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/me",
            get(|p: auth_diagnostics::Principal| async move {
                axum::Json(json!({ "sub": p.id(), "scheme": p.scheme() }))
            }),
        )
        .route(
            "/admin",
            get(|| async { "admin" })
                .route_layer(auth_diagnostics::authz::RequireScope::new(["admin"])),
        )
        .layer(layer.bearer(jwt))
}

/// The command's environment without proxy variables: its requests go to loopback servers
/// of the test, never through a proxy the machine happens to name.
pub fn without_proxies(cmd: &mut tokio::process::Command) {
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
}

/// What a panic said (a configuration error's message).
#[track_caller]
pub fn panic_message<T>(result: std::thread::Result<T>) -> String {
    let payload = result.err().expect("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

// The stores of the Basic, API-key and session fixtures.
pub const ALICE_PW: &str = "wonderland-pw";
pub const KEY_GOOD: &str = "key-good-123456";
pub const KEY_REVOKED: &str = "key-revoked-123456";
pub const KEY_UNKNOWN: &str = "key-unknown-987654";
pub const SESS_VALID: &str = "sess-valid-123456";
pub const SESS_EXPIRED: &str = "sess-expired-123456";
pub const SESS_BOGUS: &str = "sess-bogus-987654";

/// The test user store: alice, dora and lou with [`ALICE_PW`]; nobody else.
pub async fn check_password(c: BasicCredentials) -> AuthResult {
    match c.user.as_str() {
        "alice" | "dora" | "lou" if c.password.ct_eq(ALICE_PW) => Ok(Principal::new(c.user)),
        "alice" | "dora" | "lou" => Err(AuthFailure::new(Reason::BasicPasswordMismatch)),
        _ => Err(AuthFailure::new(Reason::BasicUserUnknown)),
    }
}

/// The test key store: [`KEY_GOOD`] is valid, [`KEY_REVOKED`] revoked, others unknown.
pub async fn check_key(ApiKey(key): ApiKey) -> AuthResult {
    if key.ct_eq(KEY_GOOD) {
        Ok(Principal::new("key-owner"))
    } else if key.ct_eq(KEY_REVOKED) {
        Err(AuthFailure::new(Reason::ApiKeyRevoked).detail("the key was revoked on 2024-01-01"))
    } else {
        Err(AuthFailure::new(Reason::ApiKeyUnknown))
    }
}

/// The test session store: [`SESS_VALID`] is alice's, [`SESS_EXPIRED`] expired.
pub async fn check_session(SessionCookie(id): SessionCookie) -> AuthResult {
    if id.ct_eq(SESS_VALID) {
        Ok(Principal::new("alice"))
    } else if id.ct_eq(SESS_EXPIRED) {
        Err(AuthFailure::new(Reason::SessionExpired).detail("the session expired an hour ago"))
    } else {
        Err(AuthFailure::new(Reason::SessionInvalid))
    }
}

/// A store that is down: 503 `authenticator_unavailable`.
pub async fn store_down<C>(_: C) -> AuthResult {
    Err(AuthFailure::unavailable("db down"))
}

/// The account-status hook: dora is disabled, lou is locked, everyone else is active.
pub fn account(p: &Principal) -> std::future::Ready<Result<AccountStatus, AuthFailure>> {
    std::future::ready(Ok(match p.id() {
        Some("dora") => AccountStatus::Disabled,
        Some("lou") => AccountStatus::Locked,
        _ => AccountStatus::Active,
    }))
}

/// `/r` (`{"id", "scheme"}` of the principal), `/cached` (the same with its own
/// `Cache-Control: max-age=60`) and `/forbidden` (refuses with `forbidden`) behind `layer`.
pub fn scheme_app(layer: AuthDiagnostics) -> axum::Router {
    use axum::http::header::CACHE_CONTROL;
    use axum::routing::get;
    let hello =
        |p: Principal| async move { axum::Json(json!({ "id": p.id(), "scheme": p.scheme() })) };
    axum::Router::new()
        .route("/r", get(hello))
        .route(
            "/cached",
            get(move |p: Principal| async move { ([(CACHE_CONTROL, "max-age=60")], hello(p).await) }),
        )
        .route(
            "/forbidden",
            get(|| async { Err::<(), _>(AuthFailure::new(Reason::Forbidden).check("role admin")) }),
        )
        .layer(layer)
}

/// [`scheme_app`] with Basic ([`check_password`]).
pub fn basic_app(mode: DetailMode) -> axum::Router {
    scheme_app(layer(mode).basic(BasicAuthenticator::new(check_password)))
}

/// [`scheme_app`] with API keys in `X-API-Key` ([`check_key`]).
pub fn key_app(mode: DetailMode) -> axum::Router {
    scheme_app(layer(mode).api_key(ApiKeyAuthenticator::new(check_key)))
}

/// [`scheme_app`] with the session cookie `sid` ([`check_session`]).
pub fn session_app(mode: DetailMode) -> axum::Router {
    scheme_app(layer(mode).session(SessionAuthenticator::new("sid", check_session)))
}

/// The demo (verbose, the test configuration) on a free loopback port: its base URL and
/// the server task.
pub async fn serve_demo() -> (String, tokio::task::JoinHandle<()>) {
    serve_demo_with(demo_config(DetailMode::Verbose)).await
}

/// The demo configured by `cfg`, on `cfg.addr` (a free loopback port in the test
/// configuration): its base URL and the server task.
pub async fn serve_demo_with(mut cfg: demo::DemoConfig) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(&cfg.addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    cfg.addr = addr.to_string();
    let app = demo::app(&cfg);
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), server)
}

/// The demo's router with the test secret, issuer and audience.
pub fn demo_app(detail: DetailMode) -> axum::Router {
    demo::app(&demo_config(detail))
}

pub fn demo_config(detail: DetailMode) -> demo::DemoConfig {
    demo::DemoConfig {
        addr: "127.0.0.1:0".into(),
        json_logs: false,
        detail,
        jwt_secret: SECRET.into(),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_url: None,
        oidc_issuer: None,
        metrics: false,
        app_addr: None,
        redis_url: None,
        fingerprint_key: None,
        public_origin: None,
        introspection: None,
        client_id: "demo-rs".into(),
    }
}

// =======================================================================================
// The contract of each reason, and checking a rejection against it
// =======================================================================================

/// One row of `shared/spec/reasons.md` (and, for the RFC 9449/9470 reasons it does not
/// list yet, of `shared/spec/standards.md` R-46..R-53).
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub status: u16,
    /// The `error` of the challenge of the scheme the client used (Bearer unless the
    /// expectation says [`Expect::error_on`]), or `None` for no error attributes at all.
    pub error: Option<&'static str>,
    pub level: Level,
    /// What the client sees in production, when it is not the reason itself.
    pub collapses_to: Option<&'static str>,
}

/// The contract of `reason`, written out from the spec, not taken from the crate.
#[track_caller]
pub fn row(reason: &str) -> Row {
    let r = |status, error, level| Row {
        status,
        error,
        level,
        collapses_to: None,
    };
    let invalid_token = Some("invalid_token");
    let invalid_request = Some("invalid_request");
    match reason {
        "credentials_missing" => r(401, None, Level::INFO),
        "scheme_not_accepted" | "scheme_prefix_missing" | "credentials_wrong_location" => {
            r(401, None, Level::WARN)
        }
        "authorization_malformed" | "credentials_conflict" => r(400, invalid_request, Level::WARN),
        "token_malformed"
        | "token_algorithm_rejected"
        | "token_key_unknown"
        | "token_kid_missing"
        | "token_signature_invalid"
        | "token_expired"
        | "token_not_yet_valid"
        | "token_issuer_mismatch"
        | "token_audience_mismatch"
        | "token_claim_missing"
        | "token_type_rejected"
        | "token_crit_unsupported"
        | "token_claim_invalid"
        | "token_binding_unverifiable"
        | "certificate_missing"
        | "certificate_mismatch"
        | "certificate_header_untrusted"
        | "token_inactive"
        | "token_revoked" => r(401, invalid_token, Level::WARN),
        "insufficient_scope" => r(403, Some("insufficient_scope"), Level::WARN),
        // RFC 9470 §3 (R-52).
        "insufficient_user_authentication" => {
            r(401, Some("insufficient_user_authentication"), Level::WARN)
        }
        // RFC 9449: a bound token sent as Bearer (R-49); binding failures are the
        // token's (R-48); proof defects are invalid_dpop_proof (R-47); a nonce is asked
        // for with use_dpop_nonce (R-46); a replay store that cannot answer fails closed.
        "token_dpop_bound" | "dpop_token_unbound" | "dpop_key_mismatch" => {
            r(401, invalid_token, Level::WARN)
        }
        "dpop_proof_missing"
        | "dpop_proof_malformed"
        | "dpop_proof_type_rejected"
        | "dpop_proof_algorithm_rejected"
        | "dpop_proof_key_invalid"
        | "dpop_proof_signature_invalid"
        | "dpop_proof_claim_missing"
        | "dpop_proof_method_mismatch"
        | "dpop_proof_url_mismatch"
        | "dpop_proof_expired"
        | "dpop_proof_replayed"
        | "dpop_proof_ath_mismatch" => r(401, Some("invalid_dpop_proof"), Level::WARN),
        "dpop_nonce_required" => r(401, Some("use_dpop_nonce"), Level::INFO),
        "dpop_replay_store_unavailable" => r(503, None, Level::ERROR),
        // One key past its share of the replay store: that key slows down, nobody else.
        "dpop_key_over_quota" => r(429, None, Level::WARN),
        "key_source_unavailable" | "authenticator_unavailable" => r(503, None, Level::ERROR),
        "introspection_unavailable" => r(503, None, Level::ERROR),
        "revocation_unavailable" => r(503, None, Level::ERROR),
        "basic_malformed" | "session_expired" | "session_revoked" | "credentials_invalid" => {
            r(401, None, Level::WARN)
        }
        "basic_user_unknown"
        | "basic_password_mismatch"
        | "api_key_unknown"
        | "api_key_revoked"
        | "session_invalid" => Row {
            collapses_to: Some("credentials_invalid"),
            ..r(401, None, Level::WARN)
        },
        "account_disabled" | "account_locked" | "forbidden" | "cross_site_request" => {
            r(403, None, Level::WARN)
        }
        "upstream_challenge_missing" => r(401, None, Level::ERROR),
        "upstream_unauthorized_after_authentication" => Row {
            collapses_to: Some("forbidden"),
            ..r(403, None, Level::ERROR)
        },
        "upstream_forbidden_without_credentials" => Row {
            collapses_to: Some("credentials_missing"),
            ..r(401, None, Level::ERROR)
        },
        "upstream_token_refused" => r(401, invalid_token, Level::WARN),
        "preflight_blocked" => r(401, None, Level::ERROR),
        // Answered by `authz::McpScopes` with a JSON-RPC error body (-32020), no challenge.
        "mcp_header_mismatch" => r(400, None, Level::WARN),
        "path_ambiguous" => r(400, None, Level::WARN),
        "tenant_issuer_mismatch" => r(401, invalid_token, Level::WARN),
        other => panic!("no row for reason {other}"),
    }
}

/// What one rejection must look like: see [`Outcome::check`].
#[derive(Debug, Clone)]
pub struct Expect {
    reason: &'static str,
    verbose: bool,
    client: Option<&'static str>,
    status: Option<u16>,
    realm: &'static str,
    /// `None`: the row's default (a Bearer challenge on 401/400, none on 403/503).
    schemes: Option<Vec<&'static str>>,
    error: Option<Option<&'static str>>,
    level: Option<Level>,
    fields: Vec<(&'static str, Option<String>)>,
    present: Vec<&'static str>,
    /// The scheme whose challenge carries the error: the one the client used.
    error_on: &'static str,
}

/// A rejection for `reason`, in production detail, realm `api`, a Bearer challenge.
pub fn expect(reason: &'static str) -> Expect {
    Expect {
        reason,
        verbose: false,
        client: None,
        status: None,
        realm: "api",
        schemes: None,
        error: None,
        level: None,
        fields: Vec::new(),
        present: Vec::new(),
        error_on: "Bearer",
    }
}

impl Expect {
    /// Verbose detail: the client sees the precise reason, a hint and facts.
    pub fn verbose(mut self) -> Self {
        self.verbose = true;
        self
    }
    /// Verbose or production by `mode`.
    pub fn mode(mut self, mode: DetailMode) -> Self {
        self.verbose = mode == DetailMode::Verbose;
        self
    }
    /// The reason the body shows, when it is neither the reason nor its row's collapse.
    pub fn client(mut self, client: &'static str) -> Self {
        self.client = Some(client);
        self
    }
    /// The status, when it is not the row's.
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
    /// The error is on this scheme's challenge (`DPoP` for a request that spoke DPoP);
    /// every other challenge carries none (RFC 9449 §7.2).
    pub fn error_on(mut self, scheme: &'static str) -> Self {
        self.error_on = scheme;
        self
    }
    pub fn realm(mut self, realm: &'static str) -> Self {
        self.realm = realm;
        self
    }
    /// The challenges' schemes, one per field line, in order (`&[]`: none at all).
    pub fn schemes(mut self, schemes: &[&'static str]) -> Self {
        self.schemes = Some(schemes.to_vec());
        self
    }
    /// The Bearer challenge's `error`, when it is not the row's.
    pub fn error(mut self, error: Option<&'static str>) -> Self {
        self.error = Some(error);
        self
    }
    pub fn level(mut self, level: Level) -> Self {
        self.level = Some(level);
        self
    }
    /// The event has field `name` equal to `value`.
    pub fn field(mut self, name: &'static str, value: impl ToString) -> Self {
        self.fields.push((name, Some(value.to_string())));
        self
    }
    /// The event has no field `name`.
    pub fn no_field(mut self, name: &'static str) -> Self {
        self.fields.push((name, None));
        self
    }
    /// The event has field `name`, whatever its value.
    pub fn present(mut self, name: &'static str) -> Self {
        self.present.push(name);
        self
    }
    /// The fields every Bearer token rejection logs: where the token was, what the route
    /// expects, and a fingerprint.
    pub fn token_fields(self) -> Self {
        self.field("location", "header:authorization")
            .field("scheme_expected", "Bearer")
    }
}

/// What a checked rejection left to look at further.
pub struct Checked {
    pub problem: Value,
    pub event: Captured,
}

impl Checked {
    /// The body's `detail`.
    pub fn detail(&self) -> &str {
        self.problem["detail"].as_str().unwrap()
    }
    /// The event's message.
    pub fn message(&self) -> &str {
        self.event.field("message")
    }
}

impl Outcome {
    /// Asserts the rejection `e` describes: status, the challenges (with the RFC 6750 error
    /// rules), the problem body in its detail mode, and the single event. (`send` already
    /// asserted `Cache-Control: no-store` on the problem body of a 4xx.)
    #[track_caller]
    pub fn check(&self, e: &Expect) -> Checked {
        let row = row(e.reason);
        let status = e.status.unwrap_or(row.status);
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}: body {} events {:#?}",
            e.reason,
            self.text(),
            self.events
        );
        let client = e.client.unwrap_or(match (e.verbose, row.collapses_to) {
            (false, Some(to)) => to,
            _ => e.reason,
        });
        self.check_challenges(e, &row, client);
        let problem = self.check_problem(e, client);
        let event = self.check_event(e, &row, client, status);
        Checked { problem, event }
    }

    #[track_caller]
    fn check_challenges(&self, e: &Expect, row: &Row, client: &str) {
        let used = [e.error_on];
        let default: &[&str] = match self.status.as_u16() {
            400 | 401 => &used,
            403 if row.error.is_some() => &used,
            _ => &[],
        };
        let schemes = e.schemes.as_deref().unwrap_or(default);
        let challenges = self.challenges();
        let got: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(got, schemes, "{}: challenge schemes", e.reason);
        let error = e.error.unwrap_or(row.error);
        for c in &challenges {
            assert_eq!(
                c.param("realm"),
                Some(e.realm),
                "{}: realm in {c:?}",
                e.reason
            );
            if !c.scheme.eq_ignore_ascii_case(e.error_on) {
                assert_eq!(c.param("error"), None, "{c:?}");
                continue;
            }
            assert_eq!(c.param("error"), error, "{}: error in {c:?}", e.reason);
            let Some(_) = error else {
                // RFC 6750 §3.1: no error code, no other error information.
                let extra: Vec<&str> = c
                    .names()
                    .into_iter()
                    .filter(|n| n.starts_with("error"))
                    .collect();
                assert!(extra.is_empty(), "{}: {c:?}", e.reason);
                continue;
            };
            let description = c.param("error_description").expect("error_description");
            assert!(!description.is_empty() && description.len() <= 256, "{c:?}");
            assert!(
                description
                    .chars()
                    .all(|ch| matches!(ch, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')),
                "error_description outside RFC 6750 §3: {description:?}"
            );
            if !e.verbose {
                assert_eq!(description, reason_of(client).detail(), "{}", e.reason);
            }
        }
    }

    #[track_caller]
    fn check_problem(&self, e: &Expect, client: &str) -> Value {
        let p = self.problem();
        let r = reason_of(client);
        assert_eq!(p["reason"], client, "{}: body reason {p}", e.reason);
        // R-36: the body's `error` is the challenge's, when one carries it.
        let challenges = self.challenges();
        let error = challenges.iter().find_map(|c| c.param("error"));
        assert_eq!(p["error"].as_str(), error, "{}: body error {p}", e.reason);
        assert_eq!(p["type"], r.type_uri(), "{p}");
        assert_eq!(p["title"], r.title(), "{p}");
        if e.verbose {
            assert!(
                p["hint"].as_str().is_some_and(|h| !h.is_empty()),
                "a verbose body has a hint: {p}"
            );
        } else {
            // Production: the generic sentence, no hint, no facts.
            assert_eq!(p["detail"], r.detail(), "{p}");
            let mut members: Vec<&str> =
                p.as_object().unwrap().keys().map(String::as_str).collect();
            members.retain(|m| !matches!(*m, "required_scope" | "error"));
            members.sort_unstable();
            assert_eq!(
                members,
                ["detail", "reason", "request_id", "status", "title", "type"],
                "production body members: {p}"
            );
        }
        p
    }

    #[track_caller]
    fn check_event(&self, e: &Expect, row: &Row, client: &str, status: u16) -> Captured {
        let ev = self.event().clone();
        assert_eq!(
            ev.level,
            e.level.unwrap_or(row.level),
            "{}: level",
            e.reason
        );
        assert_eq!(ev.field("reason"), e.reason);
        assert_eq!(ev.field("client_reason"), client);
        assert_eq!(ev.field("status"), status.to_string());
        assert!(
            ev.field("message").starts_with(&format!("{}: ", e.reason)),
            "{}",
            ev.field("message")
        );
        assert!(!ev.field("hint").is_empty());
        if e.verbose {
            let p = self.json();
            assert_eq!(
                p["hint"],
                ev.field("hint"),
                "the verbose hint is the logged one"
            );
        }
        for (name, want) in &e.fields {
            assert_eq!(ev.get(name), want.as_deref(), "{}: field {name}", e.reason);
        }
        for name in &e.present {
            assert!(
                ev.get(name).is_some(),
                "{}: no field {name}: {}",
                e.reason,
                ev.line()
            );
        }
        if let Some(fp) = ev.get("fingerprint") {
            assert!(
                fp.len() == 12 && fp.bytes().all(|b| b.is_ascii_hexdigit()),
                "fingerprint is a short hash prefix: {fp}"
            );
        }
        ev
    }
}

/// The crate's reason for a code (for its title, detail and type URI).
#[track_caller]
pub fn reason_of(code: &str) -> Reason {
    Reason::from_code(code).unwrap_or_else(|| panic!("unknown reason code {code}"))
}
