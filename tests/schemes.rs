//! Basic (RFC 7617), API keys, session cookies, several schemes on one route, the
//! account-status hook, 403 `forbidden`, production collapsing, `Cache-Control: private`,
//! the demo's /basic, /key, /session and /any, and hostile inputs.
mod common;
use common::*;

use auth_diagnostics::{
    decode_basic, AccountStatus, ApiKey, ApiKeyAuthenticator, AuthDiagnostics, AuthFailure,
    AuthResult, BasicAuthenticator, BasicCredentials, DetailMode, Principal, Reason, RequireScope,
    SessionAuthenticator, SessionCookie,
};
use axum::body::Body;
use axum::routing;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use http::header::CACHE_CONTROL;
use http::{HeaderValue, Request, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tracing::Level;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

const ALICE_PW: &str = "wonderland-pw";
const KEY_GOOD: &str = "key-good-123456";
const KEY_REVOKED: &str = "key-revoked-123456";
const KEY_UNKNOWN: &str = "key-unknown-987654";
const SESS_VALID: &str = "sess-valid-123456";
const SESS_EXPIRED: &str = "sess-expired-123456";
const SESS_BOGUS: &str = "sess-bogus-987654";

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// `Basic base64(user:password)`.
fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", b64(format!("{user}:{password}").as_bytes()))
}

/// The test user store: alice / ALICE_PW, plus the accounts the status hook knows.
async fn check_password(c: BasicCredentials) -> AuthResult {
    match c.user.as_str() {
        "alice" | "dora" | "lou" if c.password.ct_eq(ALICE_PW) => Ok(Principal::new(c.user)),
        "alice" | "dora" | "lou" => Err(AuthFailure::new(Reason::BasicPasswordMismatch)),
        _ => Err(AuthFailure::new(Reason::BasicUserUnknown)),
    }
}

async fn check_key(ApiKey(key): ApiKey) -> AuthResult {
    if key.ct_eq(KEY_GOOD) {
        Ok(Principal::new("key-owner"))
    } else if key.ct_eq(KEY_REVOKED) {
        Err(AuthFailure::new(Reason::ApiKeyRevoked).detail("the key was revoked on 2024-01-01"))
    } else {
        Err(AuthFailure::new(Reason::ApiKeyUnknown))
    }
}

async fn check_session(SessionCookie(id): SessionCookie) -> AuthResult {
    if id.ct_eq(SESS_VALID) {
        Ok(Principal::new("alice"))
    } else if id.ct_eq(SESS_EXPIRED) {
        Err(AuthFailure::new(Reason::SessionExpired).detail("the session expired an hour ago"))
    } else {
        Err(AuthFailure::new(Reason::SessionInvalid))
    }
}

async fn store_down<C>(_: C) -> AuthResult {
    Err(AuthFailure::unavailable("db down"))
}

/// dora is disabled, lou is locked, everyone else is active.
fn account(p: &Principal) -> std::future::Ready<Result<AccountStatus, AuthFailure>> {
    std::future::ready(Ok(match p.id() {
        Some("dora") => AccountStatus::Disabled,
        Some("lou") => AccountStatus::Locked,
        _ => AccountStatus::Active,
    }))
}

async fn hello(p: Principal) -> Json<Value> {
    Json(json!({ "id": p.id(), "scheme": p.scheme() }))
}

async fn hello_cached(p: Principal) -> ([(http::HeaderName, &'static str); 1], Json<Value>) {
    (
        [(CACHE_CONTROL, "max-age=60")],
        Json(json!({ "id": p.id(), "scheme": p.scheme() })),
    )
}

async fn forbidden() -> Result<&'static str, AuthFailure> {
    Err(AuthFailure::new(Reason::Forbidden).check("role admin"))
}

fn layer(mode: DetailMode) -> AuthDiagnostics {
    AuthDiagnostics::new().detail_mode(mode)
}

/// `/r` (hello), `/cached` (hello with its own Cache-Control) and `/forbidden` behind `layer`.
fn app(layer: AuthDiagnostics) -> Router {
    Router::new()
        .route("/r", routing::get(hello))
        .route("/cached", routing::get(hello_cached))
        .route("/forbidden", routing::get(forbidden))
        .layer(layer)
}

fn basic_app(mode: DetailMode) -> Router {
    app(layer(mode).basic(BasicAuthenticator::new(check_password)))
}

fn key_app(mode: DetailMode) -> Router {
    app(layer(mode).api_key(ApiKeyAuthenticator::new(check_key)))
}

fn session_app(mode: DetailMode) -> Router {
    app(layer(mode).session(SessionAuthenticator::new("sid", check_session)))
}

/// A request carrying one header whose value is raw bytes.
fn get_bytes(uri: &str, name: &str, value: &[u8]) -> Request<Body> {
    Request::get(uri)
        .header(name, HeaderValue::from_bytes(value).unwrap())
        .body(Body::empty())
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn assert_basic_challenge(c: &ParsedChallenge, realm: &str) {
    assert_eq!(c.scheme, "Basic");
    assert_eq!(c.params, params(&[("realm", realm), ("charset", "UTF-8")]));
}

fn assert_bearer_plain(c: &ParsedChallenge, realm: &str) {
    assert_eq!(c.scheme, "Bearer");
    assert_eq!(c.params, params(&[("realm", realm)]));
}

/// The event every rejection must log: reason, client reason, status, level, request
/// facts; no raw CR/LF in any field.
fn assert_event<'a>(
    out: &'a Outcome,
    reason: &str,
    client: &str,
    status: u16,
    level: Level,
) -> &'a Captured {
    let e = out.event();
    assert_eq!(e.field("reason"), reason, "{e:#?}");
    assert_eq!(e.field("client_reason"), client, "{e:#?}");
    assert_eq!(e.field("status"), status.to_string());
    assert_eq!(e.level, level, "{e:#?}");
    assert_eq!(e.field("method"), "GET");
    assert!(
        !e.field("path").contains('?'),
        "the path never has the query: {e:#?}"
    );
    assert_eq!(Some(e.field("request_id")), out.header("x-request-id"));
    assert_no_raw_crlf(&out.events);
    e
}

fn assert_no_raw_crlf(events: &[Captured]) {
    for e in events {
        for (k, v) in &e.fields {
            assert!(
                !v.contains(['\r', '\n']),
                "field {k} holds a raw CR/LF: {v:?}"
            );
        }
    }
}

/// What is missing from an event about a presented credential: `location`,
/// `scheme_expected` and a `fingerprint` (reasons.md, "The log event").
fn credential_gaps(label: &str, e: &Captured, location: &str, scheme: &str) -> Vec<String> {
    let mut gaps = Vec::new();
    if e.get("location") != Some(location) {
        gaps.push(format!(
            "{label}: location is {:?}, expected {location:?}",
            e.get("location")
        ));
    }
    if e.get("scheme_expected") != Some(scheme) {
        gaps.push(format!(
            "{label}: scheme_expected is {:?}, expected {scheme:?}",
            e.get("scheme_expected")
        ));
    }
    match e.get("fingerprint") {
        Some(fp) if fp.len() == 12 && fp.bytes().all(|b| b.is_ascii_hexdigit()) => {}
        other => gaps.push(format!("{label}: fingerprint is {other:?}")),
    }
    gaps
}

fn assert_fingerprint(e: &Captured) -> String {
    let fp = e.field("fingerprint");
    assert_eq!(fp.len(), 12, "fingerprint {fp:?}");
    assert!(
        fp.bytes().all(|b| b.is_ascii_hexdigit()),
        "fingerprint {fp:?}"
    );
    fp.to_owned()
}

/// A rejection's problem body and headers: reason, status, no-store.
fn assert_problem(out: &Outcome, status: u16, client: &str, title: &str) -> Value {
    assert_eq!(out.status, status, "{}", String::from_utf8_lossy(&out.body));
    let p = out.problem();
    assert_eq!(p["reason"], client, "{p}");
    assert_eq!(p["title"], title, "{p}");
    assert_eq!(p["status"], status);
    if (400..500).contains(&status) {
        assert_eq!(out.header("cache-control"), Some("no-store"));
    }
    p
}

fn no_challenge(out: &Outcome) {
    assert!(
        out.headers
            .get_all("www-authenticate")
            .iter()
            .next()
            .is_none(),
        "unexpected challenge: {:?}",
        out.headers
    );
}

/// Status, all headers but x-request-id, and the body with the request id replaced.
fn normalized(out: &Outcome) -> (StatusCode, Vec<(String, Vec<u8>)>, String) {
    let rid = out.header("x-request-id").expect("x-request-id").to_owned();
    let headers = out
        .headers
        .iter()
        .filter(|(n, _)| n.as_str() != "x-request-id")
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
    let body = String::from_utf8(out.body.clone()).unwrap();
    assert_eq!(
        body.matches(&rid).count(),
        1,
        "the request id is in the body once"
    );
    (out.status, headers, body.replace(&rid, "<request-id>"))
}

fn assert_indistinguishable(a: &Outcome, b: &Outcome) {
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
    let (mut ja, mut jb) = (a.json(), b.json());
    ja.as_object_mut().unwrap().remove("request_id");
    jb.as_object_mut().unwrap().remove("request_id");
    assert_eq!(ja, jb);
    assert_eq!(normalized(a), normalized(b));
}

// ---------------------------------------------------------------------------------------
// Basic
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn basic_valid_reaches_the_handler_without_cache_private() {
    let out = send(
        basic_app(DetailMode::Verbose),
        get("/r", &[("authorization", &basic("alice", ALICE_PW))]),
    )
    .await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json(), json!({ "id": "alice", "scheme": "Basic" }));
    assert!(out.events.is_empty(), "{:#?}", out.events);
    assert_eq!(
        out.header("cache-control"),
        None,
        "Basic answers are not marked private"
    );
    assert!(out.header("x-request-id").is_some());
}

#[tokio::test]
async fn basic_scheme_name_is_case_insensitive() {
    let token = b64(format!("alice:{ALICE_PW}").as_bytes());
    for scheme in ["basic", "BASIC", "bAsIc"] {
        let out = send(
            basic_app(DetailMode::Verbose),
            get("/r", &[("authorization", &format!("{scheme} {token}"))]),
        )
        .await;
        assert_eq!(out.status, 200, "scheme {scheme}");
    }
}

#[tokio::test]
async fn basic_missing_credentials() {
    let out = send(basic_app(DetailMode::Verbose), get("/r", &[])).await;
    assert_problem(&out, 401, "credentials_missing", "Authentication required");
    assert_basic_challenge(&out.challenge(), "api");
    assert_eq!(
        out.header("www-authenticate"),
        Some(r#"Basic realm="api", charset="UTF-8""#)
    );
    let e = assert_event(
        &out,
        "credentials_missing",
        "credentials_missing",
        401,
        Level::INFO,
    );
    assert_eq!(e.field("scheme_expected"), "Basic");
}

#[tokio::test]
async fn basic_user_unknown_verbose() {
    let out = send(
        basic_app(DetailMode::Verbose),
        get("/r", &[("authorization", &basic("bob", "some-password"))]),
    )
    .await;
    assert_problem(&out, 401, "basic_user_unknown", "Unknown user");
    assert_basic_challenge(&out.challenge(), "api");
    let e = assert_event(
        &out,
        "basic_user_unknown",
        "basic_user_unknown",
        401,
        Level::WARN,
    );
    assert_eq!(e.field("location"), "header:authorization");
    assert_eq!(e.field("scheme_expected"), "Basic");
    assert_unverified_user(e, "bob");
    assert_eq!(e.field("path"), "/r");
    assert_fingerprint(e);
    assert_no_secrets(&out.events, &["some-password".to_owned()]);
}

#[tokio::test]
async fn basic_password_mismatch_verbose() {
    let out = send(
        basic_app(DetailMode::Verbose),
        get(
            "/r",
            &[("authorization", &basic("alice", "not-the-password"))],
        ),
    )
    .await;
    assert_problem(&out, 401, "basic_password_mismatch", "Wrong password");
    assert_basic_challenge(&out.challenge(), "api");
    let e = assert_event(
        &out,
        "basic_password_mismatch",
        "basic_password_mismatch",
        401,
        Level::WARN,
    );
    assert_eq!(e.field("location"), "header:authorization");
    assert_eq!(e.field("scheme_expected"), "Basic");
    assert_eq!(e.field("user"), "alice");
    assert_fingerprint(e);
    assert_no_secrets(&out.events, &["not-the-password".to_owned()]);
}

#[tokio::test]
async fn basic_failures_collapse_in_production_but_the_log_keeps_them() {
    let unknown = send(
        basic_app(DetailMode::Production),
        get("/r", &[("authorization", &basic("bob", "some-password"))]),
    )
    .await;
    let mismatch = send(
        basic_app(DetailMode::Production),
        get(
            "/r",
            &[("authorization", &basic("alice", "not-the-password"))],
        ),
    )
    .await;
    for out in [&unknown, &mismatch] {
        let p = assert_problem(out, 401, "credentials_invalid", "Invalid credentials");
        assert_eq!(p["detail"], "The credentials are not valid.");
        for leak in ["hint", "expected_scheme", "location"] {
            assert!(p.get(leak).is_none(), "production body has {leak}: {p}");
        }
        assert_basic_challenge(&out.challenge(), "api");
        let body = String::from_utf8_lossy(&out.body);
        assert!(!body.contains("alice") && !body.contains("bob"), "{body}");
    }
    assert_indistinguishable(&unknown, &mismatch);

    let e = assert_event(
        &unknown,
        "basic_user_unknown",
        "credentials_invalid",
        401,
        Level::WARN,
    );
    assert_unverified_user(e, "bob");
    assert_eq!(e.field("location"), "header:authorization");
    assert_eq!(e.field("scheme_expected"), "Basic");
    assert_fingerprint(e);
    let e = assert_event(
        &mismatch,
        "basic_password_mismatch",
        "credentials_invalid",
        401,
        Level::WARN,
    );
    assert_eq!(e.field("user"), "alice");
    assert_eq!(e.field("location"), "header:authorization");
    assert_eq!(e.field("scheme_expected"), "Basic");
    assert_fingerprint(e);
}

#[tokio::test]
async fn same_credential_same_fingerprint() {
    let a = send(
        basic_app(DetailMode::Production),
        get("/r", &[("authorization", &basic("bob", "some-password"))]),
    )
    .await;
    let b = send(
        basic_app(DetailMode::Production),
        get("/r", &[("authorization", &basic("bob", "some-password"))]),
    )
    .await;
    let c = send(
        basic_app(DetailMode::Production),
        get("/r", &[("authorization", &basic("bob", "other-password"))]),
    )
    .await;
    let (fa, fb, fc) = (
        assert_fingerprint(a.event()),
        assert_fingerprint(b.event()),
        assert_fingerprint(c.event()),
    );
    assert_eq!(fa, fb);
    assert_ne!(fa, fc);
}

/// RFC 7617 §2 vectors: what the verifier receives, through the layer.
#[tokio::test]
async fn rfc7617_vectors_through_the_layer() {
    let cases = [
        ("QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "Aladdin", "open sesame"),
        ("dGVzdDoxMjPCow==", "test", "123£"),
        ("YTpiOmM6ZA==", "a", "b:c:d"),
    ];
    for (token, user, password) in cases {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let verify = move |c: BasicCredentials| {
            seen2
                .lock()
                .unwrap()
                .push((c.user.clone(), c.password.expose().to_owned()));
            async move { Ok(Principal::new(c.user)) }
        };
        let svc = app(layer(DetailMode::Verbose).basic(BasicAuthenticator::new(verify)));
        let out = send(
            svc,
            get("/r", &[("authorization", &format!("Basic {token}"))]),
        )
        .await;
        assert_eq!(out.status, 200, "{token}");
        assert_eq!(out.json(), json!({ "id": user, "scheme": "Basic" }));
        assert_eq!(
            *seen.lock().unwrap(),
            vec![(user.to_owned(), password.to_owned())],
            "{token}"
        );
        assert!(out.events.is_empty());
    }
}

#[test]
fn rfc7617_vectors_via_decode_basic() {
    let c = decode_basic("QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
    assert_eq!(
        (c.user.as_str(), c.password.expose()),
        ("Aladdin", "open sesame")
    );
    let c = decode_basic("dGVzdDoxMjPCow==").unwrap();
    assert_eq!((c.user.as_str(), c.password.expose()), ("test", "123£"));
    let c = decode_basic(&b64(b"a:b:c:d")).unwrap();
    assert_eq!((c.user.as_str(), c.password.expose()), ("a", "b:c:d"));
    // An empty password is a password.
    let c = decode_basic(&b64(b"a:")).unwrap();
    assert_eq!((c.user.as_str(), c.password.expose()), ("a", ""));
    // The password never shows in Debug.
    let c = decode_basic("QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
    assert!(!format!("{c:?}").contains("open sesame"));
}

/// Malformed Basic credentials: (label, token68 after `Basic `).
fn malformed_vectors() -> Vec<(&'static str, String)> {
    vec![
        ("not base64", "not-base64".to_owned()),
        ("no colon", b64(b"Aladdin")),
        ("invalid UTF-8", b64(&[0xff, 0xfe])),
        ("control character", b64(b"a:b\x01")),
        ("CR/LF in user", b64(b"ev\r\nil:password")),
        ("NEL in password", b64("a:b\u{85}c".as_bytes())),
    ]
}

#[test]
fn malformed_vectors_via_decode_basic() {
    for (label, token) in malformed_vectors() {
        let err = decode_basic(&token).expect_err(label);
        assert_eq!(err.reason(), Reason::BasicMalformed, "{label}");
        assert_eq!(err.reason().code(), "basic_malformed");
    }
    assert_eq!(
        decode_basic(&b64(&[0xff, 0xfe])).unwrap_err().reason(),
        Reason::BasicMalformed
    );
}

#[tokio::test]
async fn malformed_basic_through_the_layer() {
    let mut vectors = malformed_vectors();
    vectors.push(("nothing after Basic", String::new()));
    vectors.push(("two values", format!("{} {}", b64(b"a:b"), b64(b"c:d"))));
    for mode in [DetailMode::Verbose, DetailMode::Production] {
        for (label, token) in &vectors {
            let calls = Arc::new(AtomicUsize::new(0));
            let calls2 = calls.clone();
            let verify = move |c: BasicCredentials| {
                calls2.fetch_add(1, Ordering::SeqCst);
                check_password(c)
            };
            let svc = app(layer(mode).basic(BasicAuthenticator::new(verify)));
            let value = format!("Basic {token}").trim_end().to_owned();
            let out = send(svc, get("/r", &[("authorization", &value)])).await;
            assert_eq!(calls.load(Ordering::SeqCst), 0, "{label}: verifier called");
            assert_problem(&out, 401, "basic_malformed", "Malformed Basic credentials");
            assert_basic_challenge(&out.challenge(), "api");
            let e = assert_event(&out, "basic_malformed", "basic_malformed", 401, Level::WARN);
            assert_eq!(e.field("location"), "header:authorization", "{label}");
            assert_eq!(e.field("scheme_expected"), "Basic", "{label}");
            assert_eq!(e.get("user"), None, "{label}: nothing was decoded");
            if !token.is_empty() {
                assert_fingerprint(e);
            }
        }
    }
}

#[tokio::test]
async fn hostile_basic_user_name_is_escaped_in_the_log() {
    // Quotes, literal backslash escapes, markup, a Unicode line separator and non-ASCII:
    // valid after decoding (no control characters), so the verifier sees it.
    let user = "ev\"il\\r\\n<b>x</b>\u{2028}\u{fc}";
    let seen = Arc::new(Mutex::new(None));
    let seen2 = seen.clone();
    let verify = move |c: BasicCredentials| {
        *seen2.lock().unwrap() = Some(c.user.clone());
        async move { Err(AuthFailure::new(Reason::BasicUserUnknown)) }
    };
    let svc = app(layer(DetailMode::Production).basic(BasicAuthenticator::new(verify)));
    let out = send(
        svc,
        get("/r", &[("authorization", &basic(user, "hostile-pass-123"))]),
    )
    .await;
    assert_eq!(seen.lock().unwrap().as_deref(), Some(user));
    assert_problem(&out, 401, "credentials_invalid", "Invalid credentials");
    assert_basic_challenge(&out.challenge(), "api");
    let e = assert_event(
        &out,
        "basic_user_unknown",
        "credentials_invalid",
        401,
        Level::WARN,
    );
    // An unknown user name may be a secret typed into the wrong field: only its
    // fingerprint is logged.
    assert_unverified_user(e, user);
    for (k, v) in &e.fields {
        assert!(
            !v.contains('\u{2028}'),
            "field {k} holds a raw U+2028: {v:?}"
        );
    }
    assert_no_secrets(&out.events, &["hostile-pass-123".to_owned()]);
}

#[tokio::test]
async fn basic_with_raw_crlf_after_decoding_is_malformed_and_logs_no_user() {
    let token = b64(b"admin\r\nX-Injected: yes:password-crlf");
    let out = send(
        basic_app(DetailMode::Verbose),
        get("/r", &[("authorization", &format!("Basic {token}"))]),
    )
    .await;
    assert_problem(&out, 401, "basic_malformed", "Malformed Basic credentials");
    let e = assert_event(&out, "basic_malformed", "basic_malformed", 401, Level::WARN);
    assert_eq!(e.get("user"), None);
    assert!(!e.line().contains("X-Injected"), "{}", e.line());
    assert_no_secrets(&out.events, &["password-crlf".to_owned()]);
}

// ---------------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn api_key_valid_is_private() {
    let out = send(
        key_app(DetailMode::Verbose),
        get("/r", &[("x-api-key", KEY_GOOD)]),
    )
    .await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json(), json!({ "id": "key-owner", "scheme": "ApiKey" }));
    assert_eq!(out.header("cache-control"), Some("private"));
    assert!(out.events.is_empty());
}

#[tokio::test]
async fn api_key_handler_cache_control_gains_private() {
    let out = send(
        key_app(DetailMode::Verbose),
        get("/cached", &[("x-api-key", KEY_GOOD)]),
    )
    .await;
    assert_eq!(out.status, 200);
    let all: Vec<_> = out.headers.get_all(CACHE_CONTROL).iter().collect();
    assert_eq!(all, vec!["max-age=60, private"]);
}

#[tokio::test]
async fn api_key_missing() {
    let out = send(key_app(DetailMode::Production), get("/r", &[])).await;
    assert_problem(&out, 401, "credentials_missing", "Authentication required");
    assert_eq!(
        out.header("www-authenticate"),
        Some(r#"ApiKey realm="api", header="X-API-Key""#)
    );
    let c = out.challenge();
    assert_eq!(c.scheme, "ApiKey");
    assert_eq!(
        c.params,
        params(&[("realm", "api"), ("header", "X-API-Key")])
    );
    let e = assert_event(
        &out,
        "credentials_missing",
        "credentials_missing",
        401,
        Level::INFO,
    );
    assert_eq!(e.field("scheme_expected"), "X-API-Key header");
}

#[tokio::test]
async fn api_key_unknown_verbose() {
    let out = send(
        key_app(DetailMode::Verbose),
        get("/r", &[("x-api-key", KEY_UNKNOWN)]),
    )
    .await;
    assert_problem(&out, 401, "api_key_unknown", "Unknown API key");
    let c = out.challenge();
    assert_eq!(c.scheme, "ApiKey");
    assert_eq!(
        c.params,
        params(&[("realm", "api"), ("header", "X-API-Key")])
    );
    assert_eq!(out.header("cache-control"), Some("no-store"));
    let e = assert_event(&out, "api_key_unknown", "api_key_unknown", 401, Level::WARN);
    assert_eq!(e.field("location"), "header:x-api-key");
    assert_eq!(e.field("scheme_expected"), "X-API-Key header");
    assert_fingerprint(e);
}

#[tokio::test]
async fn api_key_revoked_verbose() {
    let out = send(
        key_app(DetailMode::Verbose),
        get("/r", &[("x-api-key", KEY_REVOKED)]),
    )
    .await;
    let p = assert_problem(&out, 401, "api_key_revoked", "API key revoked");
    assert_eq!(p["detail"], "the key was revoked on 2024-01-01");
    let c = out.challenge();
    assert_eq!(c.scheme, "ApiKey");
    assert_eq!(
        c.params,
        params(&[("realm", "api"), ("header", "X-API-Key")])
    );
    let e = assert_event(&out, "api_key_revoked", "api_key_revoked", 401, Level::WARN);
    assert_eq!(e.field("location"), "header:x-api-key");
    assert_eq!(e.field("scheme_expected"), "X-API-Key header");
    assert_fingerprint(e);
}

#[tokio::test]
async fn api_key_unknown_and_revoked_collapse_in_production() {
    let unknown = send(
        key_app(DetailMode::Production),
        get("/r", &[("x-api-key", KEY_UNKNOWN)]),
    )
    .await;
    let revoked = send(
        key_app(DetailMode::Production),
        get("/r", &[("x-api-key", KEY_REVOKED)]),
    )
    .await;
    for out in [&unknown, &revoked] {
        let p = assert_problem(out, 401, "credentials_invalid", "Invalid credentials");
        assert_eq!(p["detail"], "The credentials are not valid.");
        assert!(!String::from_utf8_lossy(&out.body).contains("revoked"));
    }
    assert_indistinguishable(&unknown, &revoked);
    let e = assert_event(
        &unknown,
        "api_key_unknown",
        "credentials_invalid",
        401,
        Level::WARN,
    );
    assert_eq!(e.field("location"), "header:x-api-key");
    let e = assert_event(
        &revoked,
        "api_key_revoked",
        "credentials_invalid",
        401,
        Level::WARN,
    );
    assert_eq!(e.field("location"), "header:x-api-key");
    assert_eq!(e.field("scheme_expected"), "X-API-Key header");
}

#[tokio::test]
async fn api_key_custom_header() {
    let svc = || {
        app(layer(DetailMode::Verbose)
            .api_key(ApiKeyAuthenticator::new(check_key).header("X-Token")))
    };
    let out = send(svc(), get("/r", &[("x-token", KEY_GOOD)])).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.header("cache-control"), Some("private"));

    let out = send(svc(), get("/r", &[("X-Token", KEY_UNKNOWN)])).await;
    assert_no_secrets(&out.events, &[KEY_UNKNOWN.to_owned()]);
    assert_problem(&out, 401, "api_key_unknown", "Unknown API key");
    assert_eq!(
        out.header("www-authenticate"),
        Some(r#"ApiKey realm="api", header="X-Token""#)
    );
    let e = assert_event(&out, "api_key_unknown", "api_key_unknown", 401, Level::WARN);
    assert_eq!(e.field("location"), "header:x-token");
    assert_eq!(e.field("scheme_expected"), "X-Token header");

    // The default header is not read when another is configured.
    let out = send(svc(), get("/r", &[("x-api-key", KEY_GOOD)])).await;
    assert_problem(
        &out,
        401,
        "credentials_wrong_location",
        "Credentials in the wrong place",
    );
    let e = assert_event(
        &out,
        "credentials_wrong_location",
        "credentials_wrong_location",
        401,
        Level::WARN,
    );
    assert_eq!(e.field("location"), "header:x-api-key");
    assert_eq!(e.field("scheme_expected"), "X-Token header");
}

#[tokio::test]
async fn api_key_in_query_only_when_opted_in() {
    // Not opted in: the query is the wrong place.
    let uri = format!("/r?api_key={KEY_GOOD}");
    let out = send(key_app(DetailMode::Verbose), get(&uri, &[])).await;
    assert_problem(
        &out,
        401,
        "credentials_wrong_location",
        "Credentials in the wrong place",
    );
    assert_eq!(
        out.header("www-authenticate"),
        Some(r#"ApiKey realm="api", header="X-API-Key""#)
    );
    let e = assert_event(
        &out,
        "credentials_wrong_location",
        "credentials_wrong_location",
        401,
        Level::WARN,
    );
    assert_eq!(e.field("location"), "query:api_key");
    assert_eq!(e.field("path"), "/r");

    // Opted in.
    let svc = || {
        app(layer(DetailMode::Verbose)
            .api_key(ApiKeyAuthenticator::new(check_key).allow_query("api_key")))
    };
    let out = send(svc(), get(&uri, &[])).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json(), json!({ "id": "key-owner", "scheme": "ApiKey" }));
    assert_eq!(out.header("cache-control"), Some("private"));

    let out = send(svc(), get(&format!("/r?x=1&api_key={KEY_REVOKED}"), &[])).await;
    assert_problem(&out, 401, "api_key_revoked", "API key revoked");
    let c = out.challenge();
    assert_eq!(c.scheme, "ApiKey");
    assert_eq!(
        c.params,
        params(&[
            ("realm", "api"),
            ("header", "X-API-Key"),
            ("query", "api_key")
        ])
    );
    let e = assert_event(&out, "api_key_revoked", "api_key_revoked", 401, Level::WARN);
    assert_eq!(e.field("location"), "query:api_key");
    assert_eq!(e.field("path"), "/r");
    assert_eq!(e.field("scheme_expected"), "X-API-Key header");
    assert_fingerprint(e);
}

#[tokio::test]
async fn hostile_api_keys() {
    let long = "k".repeat(2048);
    let cases: Vec<(&str, Request<Body>, Vec<String>)> = vec![
        (
            "2 KiB key",
            get("/r", &[("x-api-key", &long)]),
            vec![long.clone()],
        ),
        (
            "non-UTF-8 key",
            get_bytes("/r", "x-api-key", b"\xff\xfe-secret-key-bytes\xc3"),
            vec!["-secret-key-bytes".to_owned()],
        ),
    ];
    for (label, req, secrets) in cases {
        let calls = Arc::new(AtomicUsize::new(0));
        let calls2 = calls.clone();
        let verify = move |k: ApiKey| {
            calls2.fetch_add(1, Ordering::SeqCst);
            check_key(k)
        };
        let svc = app(layer(DetailMode::Verbose).api_key(ApiKeyAuthenticator::new(verify)));
        let out = send(svc, req).await;
        assert_no_secrets(&out.events, &secrets);
        assert_eq!(calls.load(Ordering::SeqCst), 0, "{label}: verifier called");
        assert_problem(&out, 401, "api_key_unknown", "Unknown API key");
        assert_eq!(
            out.header("www-authenticate"),
            Some(r#"ApiKey realm="api", header="X-API-Key""#)
        );
        let e = assert_event(&out, "api_key_unknown", "api_key_unknown", 401, Level::WARN);
        assert_eq!(e.field("location"), "header:x-api-key", "{label}");
        assert_fingerprint(e);
        assert!(
            e.line().len() < 4096,
            "{label}: the event is capped: {}",
            e.line().len()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Session cookies
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn session_valid_is_private_whatever_the_handler_says() {
    let cookie = format!("theme=dark; sid={SESS_VALID}");
    let out = send(
        session_app(DetailMode::Verbose),
        get("/r", &[("cookie", &cookie)]),
    )
    .await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json(), json!({ "id": "alice", "scheme": "Cookie" }));
    assert_eq!(out.header("cache-control"), Some("private"));
    assert!(out.events.is_empty());

    let out = send(
        session_app(DetailMode::Verbose),
        get("/cached", &[("cookie", &cookie)]),
    )
    .await;
    assert_eq!(out.status, 200);
    let all: Vec<_> = out.headers.get_all(CACHE_CONTROL).iter().collect();
    assert_eq!(all, vec!["max-age=60, private"]);
}

#[tokio::test]
async fn session_missing_names_the_cookie() {
    for mode in [DetailMode::Verbose, DetailMode::Production] {
        let out = send(session_app(mode), get("/r", &[("cookie", "theme=dark")])).await;
        let p = assert_problem(&out, 401, "credentials_missing", "Authentication required");
        if mode == DetailMode::Verbose {
            assert!(p["detail"].as_str().unwrap().contains("sid"), "{p}");
        }
        assert_eq!(
            out.header("www-authenticate"),
            Some(r#"Cookie realm="api", name="sid""#)
        );
        let c = out.challenge();
        assert_eq!(c.scheme, "Cookie");
        assert_eq!(c.params, params(&[("realm", "api"), ("name", "sid")]));
        let e = assert_event(
            &out,
            "credentials_missing",
            "credentials_missing",
            401,
            Level::INFO,
        );
        assert_eq!(e.field("scheme_expected"), "cookie sid");
        assert!(e.field("message").contains("sid"), "{e:#?}");
    }
}

#[tokio::test]
async fn session_invalid_verbose_and_production() {
    for (mode, client, title) in [
        (DetailMode::Verbose, "session_invalid", "Invalid session"),
        (
            DetailMode::Production,
            "credentials_invalid",
            "Invalid credentials",
        ),
    ] {
        let out = send(
            session_app(mode),
            get("/r", &[("cookie", &format!("sid={SESS_BOGUS}"))]),
        )
        .await;
        assert_problem(&out, 401, client, title);
        let c = out.challenge();
        assert_eq!(c.scheme, "Cookie");
        assert_eq!(c.params, params(&[("realm", "api"), ("name", "sid")]));
        let e = assert_event(&out, "session_invalid", client, 401, Level::WARN);
        assert_eq!(e.field("location"), "cookie:sid");
        assert_eq!(e.field("scheme_expected"), "cookie sid");
        assert_fingerprint(e);
    }
}

#[tokio::test]
async fn session_expired_does_not_collapse() {
    for mode in [DetailMode::Verbose, DetailMode::Production] {
        let out = send(
            session_app(mode),
            get("/r", &[("cookie", &format!("sid={SESS_EXPIRED}"))]),
        )
        .await;
        let p = assert_problem(&out, 401, "session_expired", "Session expired");
        if mode == DetailMode::Production {
            assert_eq!(p["detail"], "The session has expired; sign in again.");
        }
        let c = out.challenge();
        assert_eq!(c.scheme, "Cookie");
        assert_eq!(c.params, params(&[("realm", "api"), ("name", "sid")]));
        let e = assert_event(&out, "session_expired", "session_expired", 401, Level::WARN);
        assert_eq!(e.field("location"), "cookie:sid");
        assert_eq!(e.field("scheme_expected"), "cookie sid");
        assert_fingerprint(e);
    }
}

#[tokio::test]
async fn session_custom_cookie_name() {
    let svc = || {
        app(layer(DetailMode::Verbose)
            .session(SessionAuthenticator::new("app_sess", check_session)))
    };
    let out = send(
        svc(),
        get("/r", &[("cookie", &format!("app_sess={SESS_VALID}"))]),
    )
    .await;
    assert_eq!(out.status, 200);
    // A session in a cookie this route does not read.
    let out = send(
        svc(),
        get("/r", &[("cookie", &format!("sid={SESS_VALID}"))]),
    )
    .await;
    assert_problem(
        &out,
        401,
        "credentials_wrong_location",
        "Credentials in the wrong place",
    );
    assert_eq!(
        out.header("www-authenticate"),
        Some(r#"Cookie realm="api", name="app_sess""#)
    );
    let e = assert_event(
        &out,
        "credentials_wrong_location",
        "credentials_wrong_location",
        401,
        Level::WARN,
    );
    assert_eq!(e.field("location"), "cookie:sid");
    assert_eq!(e.field("scheme_expected"), "cookie app_sess");
}

#[tokio::test]
async fn hostile_session_cookie_of_5_kib() {
    let value = "s".repeat(5 * 1024);
    let calls = Arc::new(AtomicUsize::new(0));
    let calls2 = calls.clone();
    let verify = move |c: SessionCookie| {
        calls2.fetch_add(1, Ordering::SeqCst);
        check_session(c)
    };
    let svc = app(layer(DetailMode::Verbose).session(SessionAuthenticator::new("sid", verify)));
    let out = send(svc, get("/r", &[("cookie", &format!("sid={value}"))])).await;
    assert_eq!(calls.load(Ordering::SeqCst), 0, "verifier called");
    assert_problem(&out, 401, "session_invalid", "Invalid session");
    assert_eq!(
        out.header("www-authenticate"),
        Some(r#"Cookie realm="api", name="sid""#)
    );
    let e = assert_event(&out, "session_invalid", "session_invalid", 401, Level::WARN);
    assert_eq!(e.field("location"), "cookie:sid");
    assert_fingerprint(e);
    assert!(
        e.line().len() < 4096,
        "the event is capped: {}",
        e.line().len()
    );
    assert_no_secrets(&out.events, &[value[..64].to_owned()]);
}

// ---------------------------------------------------------------------------------------
// Several schemes on one route
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn several_schemes_one_challenge_per_line_basic_first() {
    let svc = app(layer(DetailMode::Production)
        .api_key(ApiKeyAuthenticator::new(check_key))
        .session(SessionAuthenticator::new("sid", check_session))
        .basic(BasicAuthenticator::new(check_password)));
    let out = send(svc, get("/r", &[])).await;
    assert_problem(&out, 401, "credentials_missing", "Authentication required");
    let lines: Vec<_> = out
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        lines,
        vec![
            r#"Basic realm="api", charset="UTF-8""#,
            r#"ApiKey realm="api", header="X-API-Key""#,
            r#"Cookie realm="api", name="sid""#,
        ]
    );
    let c = out.challenges();
    assert_eq!(c.len(), 3);
    assert_basic_challenge(&c[0], "api");
    assert_eq!(c[1].scheme, "ApiKey");
    assert_eq!(c[2].scheme, "Cookie");
    assert_event(
        &out,
        "credentials_missing",
        "credentials_missing",
        401,
        Level::INFO,
    );
}

#[tokio::test]
async fn bearer_and_basic_basic_first() {
    let svc = app(layer(DetailMode::Verbose)
        .bearer(jwt())
        .basic(BasicAuthenticator::new(check_password)));
    let out = send(svc, get("/r", &[])).await;
    let c = out.challenges();
    assert_eq!(c.len(), 2, "{c:?}");
    assert_basic_challenge(&c[0], "api");
    assert_bearer_plain(&c[1], "api");

    // A failed Basic login on a Bearer+Basic route lists both challenges too.
    let svc = app(layer(DetailMode::Verbose)
        .bearer(jwt())
        .basic(BasicAuthenticator::new(check_password)));
    let out = send(
        svc,
        get(
            "/r",
            &[("authorization", &basic("alice", "not-the-password"))],
        ),
    )
    .await;
    assert_problem(&out, 401, "basic_password_mismatch", "Wrong password");
    let c = out.challenges();
    assert_eq!(c.len(), 2, "{c:?}");
    assert_basic_challenge(&c[0], "api");
    assert_eq!(c[1].scheme, "Bearer");
    assert_eq!(
        c[1].param("error"),
        None,
        "a Basic failure is no invalid_token"
    );
}

fn multi_app(key_first: bool) -> Router {
    let l = layer(DetailMode::Verbose).basic(BasicAuthenticator::new(check_password));
    let l = if key_first {
        l.api_key(ApiKeyAuthenticator::new(check_key))
            .session(SessionAuthenticator::new("sid", check_session))
    } else {
        l.session(SessionAuthenticator::new("sid", check_session))
            .api_key(ApiKeyAuthenticator::new(check_key))
    };
    app(l)
}

#[tokio::test]
async fn authorization_decides_before_an_api_key() {
    // Valid Basic, bogus key: Basic decides.
    let out = send(
        multi_app(true),
        get(
            "/r",
            &[
                ("authorization", &basic("alice", ALICE_PW)),
                ("x-api-key", KEY_UNKNOWN),
            ],
        ),
    )
    .await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json()["scheme"], "Basic");
    assert_eq!(
        out.header("cache-control"),
        None,
        "a Basic answer is not private"
    );

    // Wrong password, valid key: still Basic decides, no fallback.
    let out = send(
        multi_app(true),
        get(
            "/r",
            &[
                ("authorization", &basic("alice", "not-the-password")),
                ("x-api-key", KEY_GOOD),
            ],
        ),
    )
    .await;
    assert_problem(&out, 401, "basic_password_mismatch", "Wrong password");
    let e = assert_event(
        &out,
        "basic_password_mismatch",
        "basic_password_mismatch",
        401,
        Level::WARN,
    );
    assert_eq!(e.field("location"), "header:authorization");
    let c = out.challenges();
    assert_eq!(
        c.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>(),
        vec!["Basic", "ApiKey", "Cookie"]
    );
}

#[tokio::test]
async fn api_key_header_decides_before_the_session_cookie() {
    // The documented order (authn/mod.rs `authenticate`): Authorization, then the API key
    // header, then the query parameter, then the session cookie, whatever the order of
    // configuration.
    for key_first in [true, false] {
        let out = send(
            multi_app(key_first),
            get(
                "/r",
                &[
                    ("x-api-key", KEY_GOOD),
                    ("cookie", &format!("sid={SESS_BOGUS}")),
                ],
            ),
        )
        .await;
        assert_eq!(out.status, 200, "key_first={key_first}: {:?}", out.events);
        assert_eq!(out.json()["scheme"], "ApiKey", "key_first={key_first}");
    }
}

#[tokio::test]
async fn cookie_alone_on_a_multi_scheme_route() {
    let out = send(
        multi_app(true),
        get("/r", &[("cookie", &format!("sid={SESS_VALID}"))]),
    )
    .await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json()["scheme"], "Cookie");
    assert_eq!(out.header("cache-control"), Some("private"));
}

// ---------------------------------------------------------------------------------------
// 403: account status, forbidden, insufficient_scope
// ---------------------------------------------------------------------------------------

fn hooked_basic(mode: DetailMode) -> Router {
    app(layer(mode)
        .basic(BasicAuthenticator::new(check_password))
        .account_status(account))
}

#[tokio::test]
async fn account_disabled_and_locked() {
    for mode in [DetailMode::Verbose, DetailMode::Production] {
        for (user, reason, title) in [
            ("dora", "account_disabled", "Account disabled"),
            ("lou", "account_locked", "Account locked"),
        ] {
            let out = send(
                hooked_basic(mode),
                get("/r", &[("authorization", &basic(user, ALICE_PW))]),
            )
            .await;
            assert_problem(&out, 403, reason, title);
            no_challenge(&out);
            let e = assert_event(&out, reason, reason, 403, Level::WARN);
            assert_eq!(e.field("user"), user);
        }
    }
    // Active accounts pass; wrong passwords are still 401 (the hook runs after verification).
    let out = send(
        hooked_basic(DetailMode::Verbose),
        get("/r", &[("authorization", &basic("alice", ALICE_PW))]),
    )
    .await;
    assert_eq!(out.status, 200);
    let out = send(
        hooked_basic(DetailMode::Verbose),
        get(
            "/r",
            &[("authorization", &basic("dora", "not-the-password"))],
        ),
    )
    .await;
    assert_problem(&out, 401, "basic_password_mismatch", "Wrong password");
}

#[tokio::test]
async fn account_locked_via_api_key() {
    let svc = app(layer(DetailMode::Verbose)
        .api_key(ApiKeyAuthenticator::new(check_key))
        .account_status(|p: &Principal| {
            let locked = p.id() == Some("key-owner");
            async move {
                Ok(if locked {
                    AccountStatus::Locked
                } else {
                    AccountStatus::Active
                })
            }
        }));
    let out = send(svc, get("/r", &[("x-api-key", KEY_GOOD)])).await;
    assert_problem(&out, 403, "account_locked", "Account locked");
    no_challenge(&out);
    assert_eq!(out.header("cache-control"), Some("no-store"));
    let e = assert_event(&out, "account_locked", "account_locked", 403, Level::WARN);
    assert_eq!(e.field("user"), "key-owner");
}

#[tokio::test]
async fn handler_forbidden_is_rendered_by_the_layer() {
    for mode in [DetailMode::Verbose, DetailMode::Production] {
        let out = send(
            basic_app(mode),
            get(
                "/forbidden",
                &[("authorization", &basic("alice", ALICE_PW))],
            ),
        )
        .await;
        let p = assert_problem(&out, 403, "forbidden", "Forbidden");
        no_challenge(&out);
        if mode == DetailMode::Production {
            assert_eq!(
                p["detail"],
                "The credentials are valid but do not allow this request."
            );
            assert!(p.get("hint").is_none());
        }
        let e = assert_event(&out, "forbidden", "forbidden", 403, Level::WARN);
        assert_eq!(e.field("check"), "role admin");
        assert_eq!(e.field("path"), "/forbidden");
    }
    // Also for an API-key request: the layer's 403 is no-store, not private.
    let out = send(
        key_app(DetailMode::Production),
        get("/forbidden", &[("x-api-key", KEY_GOOD)]),
    )
    .await;
    assert_problem(&out, 403, "forbidden", "Forbidden");
    assert_eq!(out.header("cache-control"), Some("no-store"));
    no_challenge(&out);
    assert_eq!(out.event().field("check"), "role admin");
}

#[tokio::test]
async fn insufficient_scope_for_basic_has_no_bearer_challenge() {
    let svc = Router::new()
        .route(
            "/admin",
            routing::get(hello).route_layer(RequireScope::new(["admin"])),
        )
        .layer(layer(DetailMode::Verbose).basic(BasicAuthenticator::new(check_password)));
    let out = send(
        svc,
        get("/admin", &[("authorization", &basic("alice", ALICE_PW))]),
    )
    .await;
    assert_problem(&out, 403, "insufficient_scope", "Insufficient scope");
    no_challenge(&out);
    let e = assert_event(
        &out,
        "insufficient_scope",
        "insufficient_scope",
        403,
        Level::WARN,
    );
    assert_eq!(e.field("user"), "alice");
    assert_eq!(e.field("scope"), "admin");
}

// ---------------------------------------------------------------------------------------
// A store that fails: 503, never 401
// ---------------------------------------------------------------------------------------

fn assert_unavailable(out: &Outcome) -> &Captured {
    assert_eq!(out.status, 503, "{}", String::from_utf8_lossy(&out.body));
    let p = out.problem();
    assert_eq!(p["reason"], "authenticator_unavailable");
    assert_eq!(p["title"], "Authentication unavailable");
    no_challenge(out);
    let retry = out.header("retry-after").expect("Retry-After");
    assert!(
        retry.parse::<u64>().is_ok_and(|s| s > 0),
        "Retry-After {retry:?}"
    );
    let e = assert_event(
        out,
        "authenticator_unavailable",
        "authenticator_unavailable",
        503,
        Level::ERROR,
    );
    assert!(e.field("message").contains("db down"), "{e:#?}");
    e
}

#[tokio::test]
async fn verifier_store_down_is_503() {
    for mode in [DetailMode::Verbose, DetailMode::Production] {
        let svc = app(layer(mode).basic(BasicAuthenticator::new(store_down::<BasicCredentials>)));
        let out = send(
            svc,
            get("/r", &[("authorization", &basic("alice", ALICE_PW))]),
        )
        .await;
        let e = assert_unavailable(&out);
        assert_eq!(e.field("location"), "header:authorization");
        assert_eq!(e.field("scheme_expected"), "Basic");
        assert_eq!(e.field("user"), "alice");
        assert_fingerprint(e);
        if mode == DetailMode::Production {
            assert!(!String::from_utf8_lossy(&out.body).contains("db down"));
        }
    }
    let svc =
        app(layer(DetailMode::Production).api_key(ApiKeyAuthenticator::new(store_down::<ApiKey>)));
    let out = send(svc, get("/r", &[("x-api-key", KEY_GOOD)])).await;
    assert_eq!(
        assert_unavailable(&out).field("location"),
        "header:x-api-key"
    );
    let svc = app(
        layer(DetailMode::Production).session(SessionAuthenticator::new(
            "sid",
            store_down::<SessionCookie>,
        )),
    );
    let out = send(svc, get("/r", &[("cookie", &format!("sid={SESS_VALID}"))])).await;
    assert_eq!(assert_unavailable(&out).field("location"), "cookie:sid");
}

#[tokio::test]
async fn account_hook_store_down_is_503() {
    for mode in [DetailMode::Verbose, DetailMode::Production] {
        let svc = app(layer(mode)
            .basic(BasicAuthenticator::new(check_password))
            .account_status(|_: &Principal| async {
                Err::<AccountStatus, _>(AuthFailure::unavailable("db down"))
            }));
        let out = send(
            svc,
            get("/r", &[("authorization", &basic("alice", ALICE_PW))]),
        )
        .await;
        assert_unavailable(&out);
        if mode == DetailMode::Production {
            assert!(!String::from_utf8_lossy(&out.body).contains("db down"));
        }
    }
    // Bearer with the hook too.
    let svc =
        app(layer(DetailMode::Production)
            .bearer(jwt())
            .account_status(|_: &Principal| async {
                Err::<AccountStatus, _>(AuthFailure::unavailable("db down"))
            }));
    let token = hs256(&good_claims());
    let out = send(
        svc,
        get("/r", &[("authorization", &format!("Bearer {token}"))]),
    )
    .await;
    assert_unavailable(&out);
}

// ---------------------------------------------------------------------------------------
// The demo
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn demo_basic() {
    let app = || demo_app(DetailMode::Verbose);
    let out = send(
        app(),
        get(
            "/basic",
            &[("authorization", &basic("alice", "wonderland"))],
        ),
    )
    .await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json()["id"], "alice");
    assert!(out.events.is_empty());

    let out = send(
        app(),
        get(
            "/basic",
            &[("authorization", &basic("mallory", "mallory-pass"))],
        ),
    )
    .await;
    assert_problem(&out, 403, "account_disabled", "Account disabled");
    no_challenge(&out);
    let e = assert_event(
        &out,
        "account_disabled",
        "account_disabled",
        403,
        Level::WARN,
    );
    assert_eq!(e.field("user"), "mallory");

    for (user, pw, reason) in [
        ("nobody", "wonderland", "basic_user_unknown"),
        ("alice", "looking-glass", "basic_password_mismatch"),
    ] {
        let out = send(app(), get("/basic", &[("authorization", &basic(user, pw))])).await;
        assert_problem(
            &out,
            401,
            reason,
            if user == "alice" {
                "Wrong password"
            } else {
                "Unknown user"
            },
        );
        assert_basic_challenge(&out.challenge(), "demo");
        let e = assert_event(&out, reason, reason, 401, Level::WARN);
        if reason == "basic_user_unknown" {
            assert_unverified_user(e, user);
        } else {
            assert_eq!(e.field("user"), user);
        }
        assert_eq!(e.field("path"), "/basic");
    }

    let out = send(app(), get("/basic", &[])).await;
    assert_problem(&out, 401, "credentials_missing", "Authentication required");
    assert_basic_challenge(&out.challenge(), "demo");
}

#[tokio::test]
async fn demo_basic_production_collapses() {
    let unknown = send(
        demo_app(DetailMode::Production),
        get(
            "/basic",
            &[("authorization", &basic("nobody", "wonderland"))],
        ),
    )
    .await;
    let mismatch = send(
        demo_app(DetailMode::Production),
        get(
            "/basic",
            &[("authorization", &basic("alice", "looking-glass"))],
        ),
    )
    .await;
    assert_problem(&unknown, 401, "credentials_invalid", "Invalid credentials");
    assert_indistinguishable(&unknown, &mismatch);
    assert_eq!(unknown.event().field("reason"), "basic_user_unknown");
    assert_unverified_user(unknown.event(), "nobody");
    assert_eq!(mismatch.event().field("reason"), "basic_password_mismatch");
    assert_eq!(mismatch.event().field("user"), "alice");
}

#[tokio::test]
async fn demo_key() {
    let app = || demo_app(DetailMode::Verbose);
    let out = send(app(), get("/key", &[("x-api-key", "demo-key-123")])).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json()["scheme"], "ApiKey");
    assert_eq!(out.header("cache-control"), Some("private"));
    assert!(out.events.is_empty());

    for (key, reason, title) in [
        ("demo-key-revoked", "api_key_revoked", "API key revoked"),
        ("wrong-key-999", "api_key_unknown", "Unknown API key"),
    ] {
        let out = send(app(), get("/key", &[("x-api-key", key)])).await;
        assert_problem(&out, 401, reason, title);
        assert_eq!(
            out.header("www-authenticate"),
            Some(r#"ApiKey realm="demo", header="X-API-Key""#)
        );
        let c = out.challenge();
        assert_eq!(c.scheme, "ApiKey");
        assert_eq!(
            c.params,
            params(&[("realm", "demo"), ("header", "X-API-Key")])
        );
        let e = assert_event(&out, reason, reason, 401, Level::WARN);
        assert_eq!(e.field("location"), "header:x-api-key");
        assert_fingerprint(e);
    }

    let unknown = send(
        demo_app(DetailMode::Production),
        get("/key", &[("x-api-key", "wrong-key-999")]),
    )
    .await;
    let revoked = send(
        demo_app(DetailMode::Production),
        get("/key", &[("x-api-key", "demo-key-revoked")]),
    )
    .await;
    assert_problem(&unknown, 401, "credentials_invalid", "Invalid credentials");
    assert_indistinguishable(&unknown, &revoked);
    assert_eq!(unknown.event().field("reason"), "api_key_unknown");
    assert_eq!(revoked.event().field("reason"), "api_key_revoked");
}

#[tokio::test]
async fn demo_session() {
    let app = || demo_app(DetailMode::Verbose);
    let out = send(
        app(),
        get("/session", &[("cookie", "demo_session=s-valid")]),
    )
    .await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json()["scheme"], "Cookie");
    assert_eq!(out.header("cache-control"), Some("private"));

    for (value, reason, title) in [
        ("s-expired", "session_expired", "Session expired"),
        ("s-forged-123", "session_invalid", "Invalid session"),
    ] {
        let out = send(
            app(),
            get("/session", &[("cookie", &format!("demo_session={value}"))]),
        )
        .await;
        assert_problem(&out, 401, reason, title);
        let c = out.challenge();
        assert_eq!(c.scheme, "Cookie");
        assert_eq!(
            c.params,
            params(&[("realm", "demo"), ("name", "demo_session")])
        );
        let e = assert_event(&out, reason, reason, 401, Level::WARN);
        assert_eq!(e.field("location"), "cookie:demo_session");
        assert_eq!(e.field("scheme_expected"), "cookie demo_session");
        assert_fingerprint(e);
    }

    let out = send(app(), get("/session", &[])).await;
    let p = assert_problem(&out, 401, "credentials_missing", "Authentication required");
    assert!(
        p["detail"].as_str().unwrap().contains("demo_session"),
        "detail names the cookie: {p}"
    );
    assert_eq!(
        out.header("www-authenticate"),
        Some(r#"Cookie realm="demo", name="demo_session""#)
    );
    let e = assert_event(
        &out,
        "credentials_missing",
        "credentials_missing",
        401,
        Level::INFO,
    );
    assert_eq!(e.field("scheme_expected"), "cookie demo_session");
}

#[tokio::test]
async fn demo_any() {
    let app = || demo_app(DetailMode::Verbose);
    let token = hs256(&good_claims());
    let out = send(
        app(),
        get("/any", &[("authorization", &format!("Bearer {token}"))]),
    )
    .await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json(), json!({ "id": "alice", "scheme": "Bearer" }));
    assert_eq!(
        out.header("cache-control"),
        None,
        "Bearer answers are not private"
    );

    let out = send(
        app(),
        get("/any", &[("authorization", &basic("alice", "wonderland"))]),
    )
    .await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json(), json!({ "id": "alice", "scheme": "Basic" }));
    assert_eq!(
        out.header("cache-control"),
        None,
        "Basic answers are not private"
    );

    let out = send(app(), get("/any", &[])).await;
    assert_problem(&out, 401, "credentials_missing", "Authentication required");
    let c = out.challenges();
    assert_eq!(c.len(), 2, "{c:?}");
    assert_basic_challenge(&c[0], "demo");
    assert_bearer_plain(&c[1], "demo");
    assert_event(
        &out,
        "credentials_missing",
        "credentials_missing",
        401,
        Level::INFO,
    );

    let out = send(
        app(),
        get(
            "/any",
            &[("authorization", &basic("mallory", "mallory-pass"))],
        ),
    )
    .await;
    assert_problem(&out, 403, "account_disabled", "Account disabled");
    no_challenge(&out);
}

// ---------------------------------------------------------------------------------------
// Every event about a presented credential names where it was, what was expected, and
// its fingerprint — also when the layer refuses it without asking the verifier, and when
// the account hook refuses a verified one.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn oversized_and_undecodable_credentials_name_the_expected_scheme() {
    let mut gaps = Vec::new();
    let long = "k".repeat(2048);
    let out = send(
        key_app(DetailMode::Verbose),
        get("/r", &[("x-api-key", &long)]),
    )
    .await;
    assert_eq!(out.event().field("reason"), "api_key_unknown");
    gaps.extend(credential_gaps(
        "2 KiB key",
        out.event(),
        "header:x-api-key",
        "X-API-Key header",
    ));

    let out = send(
        key_app(DetailMode::Verbose),
        get_bytes("/r", "x-api-key", b"\xff\xfe-secret-key-bytes\xc3"),
    )
    .await;
    assert_eq!(out.event().field("reason"), "api_key_unknown");
    gaps.extend(credential_gaps(
        "non-UTF-8 key",
        out.event(),
        "header:x-api-key",
        "X-API-Key header",
    ));

    let cookie = format!("sid={}", "s".repeat(5 * 1024));
    let out = send(
        session_app(DetailMode::Verbose),
        get("/r", &[("cookie", &cookie)]),
    )
    .await;
    assert_eq!(out.event().field("reason"), "session_invalid");
    gaps.extend(credential_gaps(
        "5 KiB cookie",
        out.event(),
        "cookie:sid",
        "cookie sid",
    ));

    assert!(gaps.is_empty(), "{gaps:#?}");
}

#[tokio::test]
async fn account_refusals_name_the_credential_in_the_log() {
    let mut gaps = Vec::new();
    for (user, reason) in [("dora", "account_disabled"), ("lou", "account_locked")] {
        let out = send(
            hooked_basic(DetailMode::Production),
            get("/r", &[("authorization", &basic(user, ALICE_PW))]),
        )
        .await;
        assert_eq!(out.event().field("reason"), reason);
        gaps.extend(credential_gaps(
            reason,
            out.event(),
            "header:authorization",
            "Basic",
        ));
    }
    let out = send(
        demo_app(DetailMode::Verbose),
        get(
            "/basic",
            &[("authorization", &basic("mallory", "mallory-pass"))],
        ),
    )
    .await;
    assert_eq!(out.event().field("reason"), "account_disabled");
    gaps.extend(credential_gaps(
        "demo mallory",
        out.event(),
        "header:authorization",
        "Basic",
    ));

    let svc = app(layer(DetailMode::Verbose)
        .session(SessionAuthenticator::new("sid", check_session))
        .account_status(|_: &Principal| async { Ok(AccountStatus::Disabled) }));
    let out = send(svc, get("/r", &[("cookie", &format!("sid={SESS_VALID}"))])).await;
    assert_eq!(out.event().field("reason"), "account_disabled");
    gaps.extend(credential_gaps(
        "session account_disabled",
        out.event(),
        "cookie:sid",
        "cookie sid",
    ));

    assert!(gaps.is_empty(), "{gaps:#?}");
}

// ---------------------------------------------------------------------------------------
// A key header and a key in the query; scope refusals for non-Bearer principals
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn api_key_header_and_query_key_conflict() {
    let app = app(layer(DetailMode::Verbose)
        .api_key(ApiKeyAuthenticator::new(check_key).allow_query("api_key")));
    let out = send(
        app,
        get("/r?api_key=other-key-456", &[("x-api-key", KEY_GOOD)]),
    )
    .await;
    assert_eq!(out.status, StatusCode::BAD_REQUEST);
    assert_eq!(out.problem()["reason"], "credentials_conflict");
    // The client spoke ApiKey: the challenge is the ApiKey one, without Bearer's error.
    let c = out.challenge();
    assert_eq!(c.scheme, "ApiKey");
    assert_eq!(c.param("header"), Some("X-API-Key"));
    assert_eq!(c.param("error"), None);
    let e = out.event();
    assert_eq!(e.field("reason"), "credentials_conflict");
    assert_eq!(e.field("location"), "header:x-api-key");
    assert_eq!(e.field("hints"), "token_in_query");
    assert_eq!(e.field("fingerprint").len(), 12);
}

#[tokio::test]
async fn insufficient_scope_for_a_basic_principal_has_no_bearer_challenge() {
    // The route accepts Bearer and Basic; the request authenticated with Basic.
    let app = Router::new()
        .route(
            "/admin",
            routing::get(hello).route_layer(RequireScope::new(["admin"])),
        )
        .layer(
            layer(DetailMode::Production)
                .bearer(jwt())
                .basic(BasicAuthenticator::new(check_password)),
        );
    let out = send(
        app.clone(),
        get("/admin", &[("authorization", &basic("alice", ALICE_PW))]),
    )
    .await;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    assert_eq!(out.problem()["reason"], "insufficient_scope");
    assert!(out.challenges().is_empty(), "{:?}", out.challenges());
    assert_eq!(out.event().field("scheme_received"), "Basic");

    // The same route with a Bearer token keeps the RFC 6750 challenge.
    let token = hs256(&good_claims());
    let out = send(
        app,
        get("/admin", &[("authorization", &format!("Bearer {token}"))]),
    )
    .await;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    let c = out.challenge();
    assert_eq!(c.param("error"), Some("insufficient_scope"));
    assert_eq!(c.param("scope"), Some("admin"));
}

/// The `user` field of an unknown user: a fingerprint, never the name itself.
fn assert_unverified_user(e: &Captured, name: &str) {
    let user = e.field("user");
    assert!(user.starts_with("<unverified user fp:"), "{user}");
    assert!(!user.contains(name), "{user}");
}

/// A known user with a wrong password is named in the log (capped and escaped); an empty
/// password makes even a known name unverified.
#[tokio::test]
async fn known_users_are_named_and_empty_passwords_are_not() {
    let out = send(
        app(layer(DetailMode::Production).basic(BasicAuthenticator::new(check_password))),
        get(
            "/r",
            &[("authorization", &basic("alice", "wrong-password"))],
        ),
    )
    .await;
    assert_eq!(out.event().field("user"), "alice");
    let out = send(
        app(layer(DetailMode::Production).basic(BasicAuthenticator::new(check_password))),
        get("/r", &[("authorization", &basic("alice", ""))]),
    )
    .await;
    assert_unverified_user(out.event(), "alice");
}
