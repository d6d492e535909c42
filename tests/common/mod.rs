//! Shared test harness: send a request through a service with `oneshot`, capture the log
//! events it produced, parse the challenges with an independent parser (`http-auth`), and
//! check that no captured event contains a secret from the request.
#![allow(dead_code)]

use axum::body::Body;
use http::header::{AUTHORIZATION, COOKIE, WWW_AUTHENTICATE};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tower::ServiceExt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

pub const SECRET: &str = "test-hs256-secret";
pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "test-api";

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
}

/// What a request produced: the response and the log events.
#[derive(Debug)]
pub struct Outcome {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub events: Vec<Captured>,
}

impl Outcome {
    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The problem body, checked for the RFC 9457 members every answer must have.
    pub fn problem(&self) -> Value {
        assert_eq!(
            self.headers.get("content-type").unwrap(),
            "application/problem+json"
        );
        let p = self.json();
        assert!(
            p["type"].as_str().unwrap().starts_with("https://"),
            "type must be an absolute URI: {p}"
        );
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert_eq!(p["status"], self.status.as_u16());
        assert!(p["detail"].as_str().is_some());
        assert!(p["reason"].as_str().is_some());
        assert_eq!(
            p["request_id"].as_str(),
            self.headers
                .get("x-request-id")
                .map(|v| v.to_str().unwrap())
        );
        p
    }

    /// The single event this request logged.
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
    pub fn challenges(&self) -> Vec<ParsedChallenge> {
        self.headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(|v| {
                let text = v.to_str().expect("challenge is visible ASCII");
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
            })
            .collect()
    }

    /// The only challenge.
    pub fn challenge(&self) -> ParsedChallenge {
        let mut all = self.challenges();
        assert_eq!(all.len(), 1, "expected one challenge: {all:?}");
        all.remove(0)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
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
}

/// The secrets a request carries: credential parts of `Authorization`, cookie values,
/// credential-like header values, the query string.
fn secrets_of(req: &Request<Body>) -> Vec<String> {
    let mut out = Vec::new();
    for v in req.headers().get_all(AUTHORIZATION) {
        let text = String::from_utf8_lossy(v.as_bytes()).into_owned();
        let cred = match text.trim().split_once(' ') {
            Some((_, rest)) => rest.trim().to_owned(),
            None => text.trim().to_owned(),
        };
        out.push(cred.clone());
        // A JWT's signature alone must not appear either.
        if let Some(sig) = cred.rsplit('.').next() {
            out.push(sig.to_owned());
        }
    }
    for v in req.headers().get_all(COOKIE) {
        for pair in String::from_utf8_lossy(v.as_bytes()).split(';') {
            match pair.split_once('=') {
                Some((_, value)) => out.push(value.trim().to_owned()),
                // A pair without `=` is a bare value, as browsers send it.
                None => out.push(pair.trim().to_owned()),
            }
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
    // Path parameters (`/app;jsessionid=…`) carry session ids in servlet-style URLs.
    for param in req.uri().path().split(';').skip(1) {
        let param = param.split('/').next().unwrap_or_default();
        out.push(param.split_once('=').map_or(param, |(_, v)| v).to_owned());
    }
    // Short fragments would match innocent text; every real secret here is longer.
    out.retain(|s| s.len() >= 6);
    out
}

/// Asserts no captured event holds any of `secrets`.
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

/// Sends `req` through `svc` with a capturing subscriber, and checks that the log holds
/// no secret of the request.
pub async fn send<S>(svc: S, req: Request<Body>) -> Outcome
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Send,
    S::Error: std::fmt::Debug,
    S::Future: Send,
{
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let secrets = secrets_of(&req);
    let response = svc.oneshot(req).await.expect("service error");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    let events = capture.events();
    assert_no_secrets(&events, &secrets);
    Outcome {
        status: parts.status,
        headers: parts.headers,
        body,
        events,
    }
}

/// A GET to `uri` with `headers`.
pub fn get(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

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

/// A token from raw header and payload JSON and a raw signature segment (for attacks).
pub fn raw_token(header: &str, payload: &str, signature: &str) -> String {
    use base64::Engine as _;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}.{}", e.encode(header), e.encode(payload), signature)
}

/// The default test authenticator: HS256 with [`SECRET`], [`ISSUER`], [`AUDIENCE`], `sub`.
pub fn jwt() -> auth_diagnostics::JwtAuthenticator {
    auth_diagnostics::JwtAuthenticator::new(auth_diagnostics::StaticKey::hs256(SECRET))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .require_claims(["sub"])
}

/// A router with `/me` (Bearer) and `/admin` (Bearer + scope admin) behind the layer.
pub fn bearer_app(layer: auth_diagnostics::AuthDiagnostics) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/me",
            get(|p: auth_diagnostics::Principal| async move {
                axum::Json(json!({ "sub": p.id() }))
            }),
        )
        .route(
            "/admin",
            get(|| async { "admin" })
                .route_layer(auth_diagnostics::RequireScope::new(["admin"])),
        )
        .layer(layer.bearer(jwt()))
}
