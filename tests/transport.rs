//! Black-box tests for the spec section "Getting the credentials to the server"
//! (/work/shared/spec/reasons.md): credentials_missing, scheme_not_accepted,
//! scheme_prefix_missing, credentials_wrong_location, authorization_malformed,
//! credentials_conflict, preflight_blocked; plus detail modes, realm and request ids.
//!
//! Every request goes through `tower::ServiceExt::oneshot` via the harness `send`, which
//! captures the log events and asserts that none of them holds a secret of the request.

mod common;
use common::*;

use auth_diagnostics::{AuthDiagnostics, Reason};
use axum::body::Body;
use axum::Router;
use http::{HeaderValue, Method, Request, StatusCode};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::Value;
use std::collections::BTreeSet;
use tracing::Level;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|e| panic!("bad header value {s:?}: {e}"))
}

/// A request with arbitrary header values (for non-UTF-8 bytes and repeated fields).
fn request(method: Method, uri: &str, headers: Vec<(&str, HeaderValue)>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b.body(Body::empty()).unwrap()
}

fn app() -> Router {
    bearer_app(AuthDiagnostics::new())
}

fn verbose_app() -> Router {
    bearer_app(AuthDiagnostics::new().verbose())
}

fn reason(code: &str) -> Reason {
    Reason::from_code(code).unwrap_or_else(|| panic!("unknown reason code {code}"))
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// RFC 6750 §3: error_description = %x20-21 / %x23-5B / %x5D-7E.
fn rfc6750_text(s: &str) -> bool {
    s.chars()
        .all(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'))
}

const GENERATED_ID_LEN: usize = 32;

fn assert_generated_id(label: &str, id: &str) {
    assert_eq!(
        id.len(),
        GENERATED_ID_LEN,
        "{label}: a generated request id is 32 hex characters, got {id:?}"
    );
    assert!(is_hex(id), "{label}: generated id {id:?} is not hex");
}

/// What one rejection must look like. Status, challenge error and level are written out
/// here from the spec table, not taken from the crate.
#[derive(Clone, Debug)]
struct Want {
    label: String,
    reason: &'static str,
    status: u16,
    /// `Some("invalid_request")` or `None` (no error attributes at all).
    error: Option<&'static str>,
    level: Level,
    method: &'static str,
    path: &'static str,
    realm: &'static str,
    location: Option<&'static str>,
    received: Option<&'static str>,
    /// `Some(true)`: a fingerprint must be logged; `Some(false)`: none; `None`: not checked.
    fingerprint: Option<bool>,
    verbose: bool,
}

impl Want {
    fn new(label: impl Into<String>, reason: &'static str) -> Self {
        let (status, error, level) = match reason {
            "credentials_missing" => (401, None, Level::INFO),
            "scheme_not_accepted" | "scheme_prefix_missing" | "credentials_wrong_location" => {
                (401, None, Level::WARN)
            }
            "authorization_malformed" | "credentials_conflict" => {
                (400, Some("invalid_request"), Level::WARN)
            }
            other => panic!("not a transport reason: {other}"),
        };
        Want {
            label: label.into(),
            reason,
            status,
            error,
            level,
            method: "GET",
            path: "/me",
            realm: "api",
            location: None,
            received: None,
            fingerprint: None,
            verbose: false,
        }
    }
    fn method(mut self, m: &'static str) -> Self {
        self.method = m;
        self
    }
    fn path(mut self, p: &'static str) -> Self {
        self.path = p;
        self
    }
    fn location(mut self, l: &'static str) -> Self {
        self.location = Some(l);
        self
    }
    fn received(mut self, r: &'static str) -> Self {
        self.received = Some(r);
        self
    }
    fn fingerprint(mut self, present: bool) -> Self {
        self.fingerprint = Some(present);
        self
    }
    fn verbose(mut self) -> Self {
        self.verbose = true;
        self
    }
}

/// Checks status, headers, challenge, problem body and the log event of a rejection.
/// Returns the event and the body for further checks.
fn check(out: &Outcome, w: &Want) -> (Captured, Value) {
    let l = &w.label;
    let r = reason(w.reason);
    assert_eq!(
        out.status.as_u16(),
        w.status,
        "{l}: status; body {}",
        String::from_utf8_lossy(&out.body)
    );
    assert_eq!(
        out.header("cache-control"),
        Some("no-store"),
        "{l}: Cache-Control"
    );
    let rid = out
        .header("x-request-id")
        .unwrap_or_else(|| panic!("{l}: no x-request-id"))
        .to_owned();
    assert!(!rid.is_empty(), "{l}: empty x-request-id");

    // --- the challenge, as http-auth parses it
    let c = out.challenge();
    assert!(
        c.scheme.eq_ignore_ascii_case("Bearer"),
        "{l}: challenge scheme {:?}",
        c.scheme
    );
    assert_eq!(c.param("realm"), Some(w.realm), "{l}: realm");
    let keys: BTreeSet<&str> = c.params.keys().map(String::as_str).collect();
    match w.error {
        None => {
            assert_eq!(
                keys,
                BTreeSet::from(["realm"]),
                "{l}: a {} challenge carries no error attributes: {c:?}",
                w.reason
            );
        }
        Some(err) => {
            assert_eq!(c.param("error"), Some(err), "{l}: error=");
            assert_eq!(
                keys,
                BTreeSet::from(["realm", "error", "error_description"]),
                "{l}: challenge params {c:?}"
            );
            let desc = c.param("error_description").unwrap();
            assert!(!desc.is_empty(), "{l}: empty error_description");
            assert!(
                rfc6750_text(desc),
                "{l}: error_description outside RFC 6750 charset: {desc:?}"
            );
            if !w.verbose {
                assert_eq!(
                    desc,
                    r.detail(),
                    "{l}: production error_description is the generic text"
                );
            }
        }
    }

    // --- the problem body
    let p = out.problem();
    assert_eq!(p["reason"], w.reason, "{l}: body reason");
    assert_eq!(p["type"], r.type_uri(), "{l}: body type");
    assert_eq!(p["title"], r.title(), "{l}: body title");
    assert_eq!(p["request_id"], rid.as_str(), "{l}: body request_id");
    let members: BTreeSet<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    if w.verbose {
        assert_eq!(
            p["expected_scheme"], "Bearer",
            "{l}: verbose expected_scheme"
        );
        assert_eq!(
            p.get("location").and_then(Value::as_str),
            w.location,
            "{l}: verbose location"
        );
        assert_eq!(
            p.get("received_scheme").and_then(Value::as_str),
            w.received,
            "{l}: verbose received_scheme"
        );
        let hint = p["hint"]
            .as_str()
            .unwrap_or_else(|| panic!("{l}: no hint in {p}"));
        assert!(!hint.is_empty(), "{l}: empty hint");
        assert!(
            !p["detail"].as_str().unwrap().is_empty(),
            "{l}: empty verbose detail"
        );
    } else {
        assert_eq!(
            members,
            BTreeSet::from(["type", "title", "status", "detail", "reason", "request_id"]),
            "{l}: production body members: {p}"
        );
        assert_eq!(p["detail"], r.detail(), "{l}: production detail is generic");
    }

    // --- the log event
    let e = out.event().clone();
    assert_eq!(e.target, "auth_diagnostics", "{l}: target");
    assert_eq!(e.level, w.level, "{l}: level");
    assert_eq!(e.field("reason"), w.reason, "{l}: logged reason");
    assert_eq!(e.field("client_reason"), w.reason, "{l}: client_reason");
    assert_eq!(
        e.field("status"),
        w.status.to_string(),
        "{l}: logged status"
    );
    assert_eq!(e.field("request_id"), rid, "{l}: logged request_id");
    assert_eq!(e.field("method"), w.method, "{l}: logged method");
    assert_eq!(e.field("path"), w.path, "{l}: logged path");
    assert_eq!(
        e.get("scheme_expected"),
        Some("Bearer"),
        "{l}: scheme_expected"
    );
    assert_eq!(e.get("scheme_received"), w.received, "{l}: scheme_received");
    assert_eq!(e.get("location"), w.location, "{l}: logged location");
    match w.fingerprint {
        Some(true) => {
            let fp = e
                .get("fingerprint")
                .unwrap_or_else(|| panic!("{l}: no fingerprint: {}", e.line()));
            assert!(
                is_hex(fp) && fp.len() <= 16,
                "{l}: fingerprint {fp:?} is not a short hex hash prefix"
            );
        }
        Some(false) => assert_eq!(e.get("fingerprint"), None, "{l}: unexpected fingerprint"),
        None => {}
    }
    let hint = e.field("hint");
    assert!(!hint.is_empty(), "{l}: empty logged hint");
    if w.verbose {
        assert_eq!(p["hint"], hint, "{l}: verbose body hint == logged hint");
    }
    (e, p)
}

/// No field of `e` holds the query string or any part of it (values of 6 characters or
/// more: shorter ones, like `1`, occur in ids and hashes by chance).
fn assert_no_query(label: &str, e: &Captured, query: &str) {
    let line = e.line();
    assert!(
        !line.contains(query),
        "{label}: the log holds the query {query:?}: {line}"
    );
    assert!(
        !line.contains(&format!("?{query}")),
        "{label}: the log holds the query {query:?}: {line}"
    );
    for pair in query.split('&') {
        assert!(
            !line.contains(pair),
            "{label}: the log holds query pair {pair:?}: {line}"
        );
        if let Some((_, v)) = pair.split_once('=') {
            if v.len() >= 6 {
                assert!(
                    !line.contains(v),
                    "{label}: the log holds query value {v:?}: {line}"
                );
            }
        }
    }
}

/// Like the harness `send`, with an explicit list of secrets. For `Authorization: Bearer`
/// (no credential at all) the harness takes the scheme name itself for the secret, and
/// every event rightly names the expected scheme `Bearer`.
async fn send_with_secrets(svc: Router, req: Request<Body>, secrets: &[String]) -> Outcome {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    use tracing_subscriber::layer::SubscriberExt;
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let response = svc.oneshot(req).await.expect("service error");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    let events = capture.events();
    assert_no_secrets(&events, secrets);
    Outcome {
        status: parts.status,
        headers: parts.headers,
        body,
        events,
    }
}

/// The harness `send`, except for an Authorization value that holds no credential.
async fn send_auth(svc: Router, uri: &str, value: HeaderValue) -> Outcome {
    let req = request(Method::GET, uri, vec![("authorization", value.clone())]);
    let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
    if text.trim().eq_ignore_ascii_case("bearer") {
        send_with_secrets(svc, req, &[]).await
    } else {
        send(svc, req).await
    }
}

fn token() -> String {
    hs256(&good_claims())
}

// ---------------------------------------------------------------------------------------
// credentials_missing
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn credentials_missing_production() {
    let out = send(app(), get("/me", &[])).await;
    let w = Want::new("no credentials", "credentials_missing").fingerprint(false);
    let (e, _) = check(&out, &w);
    assert_default_missing_hint("no credentials", e.field("hint"));

    let out = send(app(), get("/admin", &[])).await;
    let w = Want::new("no credentials /admin", "credentials_missing")
        .path("/admin")
        .fingerprint(false);
    check(&out, &w);
}

#[tokio::test]
async fn credentials_missing_path_never_has_the_query() {
    let out = send(app(), get("/me?page=2&sort=name", &[])).await;
    let w = Want::new("no credentials + query", "credentials_missing").fingerprint(false);
    let (e, _) = check(&out, &w);
    assert_no_query("no credentials + query", &e, "page=2&sort=name");
}

#[tokio::test]
async fn credentials_missing_verbose() {
    let out = send(verbose_app(), get("/me", &[])).await;
    let w = Want::new("verbose no credentials", "credentials_missing")
        .fingerprint(false)
        .verbose();
    let (e, p) = check(&out, &w);
    assert_default_missing_hint("verbose no credentials", e.field("hint"));
    assert_eq!(p["hint"], e.field("hint"));
    // Nothing was received, nothing was located.
    assert!(p.get("received_scheme").is_none(), "{p}");
    assert!(p.get("location").is_none(), "{p}");
}

/// The hint logged for a plain request without credentials (no proxy headers).
async fn baseline_missing_hint() -> String {
    let out = send(app(), get("/me", &[])).await;
    out.event().field("hint").to_owned()
}

/// Without proxy headers the hint says how to send credentials, and does not claim a
/// proxy stripped anything.
fn assert_default_missing_hint(label: &str, hint: &str) {
    assert!(
        !hint.contains("stripped"),
        "{label}: no proxy header, yet the hint blames a proxy: {hint:?}"
    );
    assert!(
        hint.contains("Bearer") || hint.contains("WWW-Authenticate"),
        "{label}: the hint should say what to send: {hint:?}"
    );
}

async fn assert_proxy_hint(label: &str, hint: &str) {
    assert_ne!(
        hint,
        baseline_missing_hint().await,
        "{label}: proxied request should get the proxy hint, not the default one"
    );
    assert!(
        hint.contains("proxy") && hint.contains("stripped") && hint.contains("Authorization"),
        "{label}: hint should say a proxy may have stripped Authorization: {hint:?}"
    );
}

#[tokio::test]
async fn credentials_missing_through_a_proxy_hints_at_stripped_authorization() {
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.7"),
        ("forwarded", "for=203.0.113.7;proto=https"),
        ("via", "1.1 proxy.example"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example"),
    ] {
        let label = format!("proxy header {name}");
        let out = send(app(), get("/me", &[(name, value)])).await;
        let w = Want::new(label.clone(), "credentials_missing").fingerprint(false);
        let (e, _) = check(&out, &w);
        assert_proxy_hint(&label, e.field("hint")).await;

        // Verbose: the same hint reaches the client.
        let out = send(verbose_app(), get("/me", &[(name, value)])).await;
        let w = Want::new(format!("verbose {label}"), "credentials_missing")
            .fingerprint(false)
            .verbose();
        let (e, p) = check(&out, &w);
        assert_proxy_hint(&label, e.field("hint")).await;
        assert_eq!(p["hint"], e.field("hint"));
    }
}

/// The spec says `X-Forwarded-*`: every header of that family shows a proxy.
#[tokio::test]
async fn credentials_missing_any_x_forwarded_header_counts_as_proxy() {
    for (name, value) in [
        ("x-forwarded-port", "443"),
        ("x-forwarded-prefix", "/api"),
        ("x-forwarded-server", "edge-1"),
    ] {
        let label = format!("proxy header {name}");
        let out = send(app(), get("/me", &[(name, value)])).await;
        let w = Want::new(label.clone(), "credentials_missing").fingerprint(false);
        let (e, _) = check(&out, &w);
        assert_proxy_hint(&label, e.field("hint")).await;
    }
}

#[tokio::test]
async fn innocent_cookie_is_still_credentials_missing() {
    for cookie in [
        "theme=dark",
        "theme=dark; lang=en-US",
        "consent=yes; tz=UTC",
    ] {
        let out = send(app(), get("/me", &[("cookie", cookie)])).await;
        let w = Want::new(format!("cookie {cookie}"), "credentials_missing").fingerprint(false);
        let (e, _) = check(&out, &w);
        assert_eq!(e.field("hint"), baseline_missing_hint().await, "{cookie}");
    }
}

// ---------------------------------------------------------------------------------------
// scheme_not_accepted, and case-insensitive scheme names
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn scheme_not_accepted_production() {
    let digest = r#"Digest username="alice", realm="api", nonce="dcd98b7102dd2f0e", uri="/me", response="6629fae49393a05397450978507c4ef1""#;
    for (value, received) in [
        ("Basic dXNlcjpwYXNz", "Basic"),
        ("basic dXNlcjpwYXNz", "basic"),
        ("BASIC dXNlcjpwYXNz", "BASIC"),
        (digest, "Digest"),
        ("ApiKey abc", "ApiKey"),
        ("apikey abc", "apikey"),
        ("APIKEY abc", "APIKEY"),
    ] {
        let label = format!("Authorization: {value}");
        let out = send(app(), get("/me?x=1", &[("authorization", value)])).await;
        let w = Want::new(label.clone(), "scheme_not_accepted")
            .location("header:authorization")
            .received(received)
            .fingerprint(true);
        let (e, _) = check(&out, &w);
        assert_eq!(e.field("hint"), Reason::SchemeNotAccepted.hint(), "{label}");
        // Decoded Basic credentials are secrets too.
        assert!(!e.line().contains("user:pass"), "{label}: {}", e.line());
        assert!(!e.line().contains("dXNlcjpwYXNz"), "{label}: {}", e.line());
    }
}

#[tokio::test]
async fn scheme_not_accepted_verbose() {
    let out = send(
        verbose_app(),
        get("/me", &[("authorization", "Basic dXNlcjpwYXNz")]),
    )
    .await;
    let w = Want::new("verbose Basic", "scheme_not_accepted")
        .location("header:authorization")
        .received("Basic")
        .fingerprint(true)
        .verbose();
    let (_, p) = check(&out, &w);
    assert_eq!(p["hint"], Reason::SchemeNotAccepted.hint());
    let detail = p["detail"].as_str().unwrap();
    assert!(!detail.contains("dXNlcjpwYXNz"), "{detail}");
}

#[tokio::test]
async fn bearer_scheme_name_is_case_insensitive() {
    let t = token();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let out = send(
            app(),
            get("/me", &[("authorization", &format!("{scheme} {t}"))]),
        )
        .await;
        assert_eq!(
            out.status,
            StatusCode::OK,
            "`{scheme} <valid token>` must succeed; body {}",
            String::from_utf8_lossy(&out.body)
        );
        assert_eq!(out.json()["sub"], "alice", "{scheme}");
        assert!(out.events.is_empty(), "{scheme}: {:#?}", out.events);
        assert_generated_id(scheme, out.header("x-request-id").unwrap());
    }
}

#[tokio::test]
async fn several_spaces_after_the_scheme_are_allowed() {
    // RFC 9110 §11.4: credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    let t = token();
    let out = send(
        app(),
        get("/me", &[("authorization", &format!("Bearer   {t}"))]),
    )
    .await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(out.events.is_empty());
}

// ---------------------------------------------------------------------------------------
// scheme_prefix_missing
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn bare_jwt_is_scheme_prefix_missing() {
    let header = Header {
        kid: Some("key-1".into()),
        ..Header::default()
    };
    let t = sign(
        &header,
        &good_claims(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    );
    let out = send(app(), get("/me?y=2", &[("authorization", &t)])).await;
    let w = Want::new("bare JWT", "scheme_prefix_missing")
        .location("header:authorization")
        .fingerprint(true);
    let (e, _) = check(&out, &w);
    assert_eq!(e.field("hint"), Reason::SchemePrefixMissing.hint());
    // What the token claims, unverified.
    assert_eq!(e.get("alg"), Some("HS256"), "{}", e.line());
    assert_eq!(e.get("kid"), Some("key-1"), "{}", e.line());
    assert_eq!(e.get("typ"), Some("JWT"), "{}", e.line());
    assert_eq!(e.get("iss"), Some(ISSUER), "{}", e.line());
    assert_eq!(e.get("aud"), Some(AUDIENCE), "{}", e.line());
    assert_eq!(e.get("sub"), Some("alice"), "{}", e.line());
    assert!(e.get("exp").is_some(), "{}", e.line());
    assert_eq!(e.get("signature_verified"), Some("false"), "{}", e.line());
}

#[tokio::test]
async fn bare_jwt_verbose() {
    let t = token();
    let out = send(verbose_app(), get("/me", &[("authorization", &t)])).await;
    let w = Want::new("verbose bare JWT", "scheme_prefix_missing")
        .location("header:authorization")
        .fingerprint(true)
        .verbose();
    let (_, p) = check(&out, &w);
    assert_eq!(p["hint"], Reason::SchemePrefixMissing.hint());
    let body = String::from_utf8_lossy(&out.body);
    assert!(!body.contains(&t), "the body echoes the token: {body}");
}

#[tokio::test]
async fn bare_long_token68_is_scheme_prefix_missing() {
    for value in [
        "abcdefghij0123456789KLMNOPQRSTUVWXYZ-_~+/abcd==",
        "0123456789abcdef0123456789abcdef0123456789abcdef",
    ] {
        let label = format!("bare token68 {value}");
        let out = send(app(), get("/me", &[("authorization", value)])).await;
        let w = Want::new(label.clone(), "scheme_prefix_missing")
            .location("header:authorization")
            .fingerprint(true);
        let (e, _) = check(&out, &w);
        // Not a JWT: no token facts at all.
        for f in ["alg", "kid", "iss", "sub", "signature_verified"] {
            assert_eq!(e.get(f), None, "{label}: field {f}: {}", e.line());
        }
    }
}

// ---------------------------------------------------------------------------------------
// credentials_wrong_location
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn token_in_query_is_wrong_location() {
    let t = token();
    for name in ["access_token", "api_key", "token"] {
        let query = format!("page=1&{name}={t}");
        let uri = format!("/me?{query}");
        let label = format!("?{name}=");
        let out = send(app(), get(&uri, &[])).await;
        let loc: &'static str = match name {
            "access_token" => "query:access_token",
            "api_key" => "query:api_key",
            _ => "query:token",
        };
        let w = Want::new(label.clone(), "credentials_wrong_location")
            .location(loc)
            .fingerprint(true);
        let (e, _) = check(&out, &w);
        assert_no_query(&label, &e, &query);
        assert!(!e.field("path").contains('?'), "{label}");
    }
}

#[tokio::test]
async fn token_in_query_verbose() {
    let t = token();
    let query = format!("access_token={t}");
    let out = send(verbose_app(), get(&format!("/me?{query}"), &[])).await;
    let w = Want::new("verbose ?access_token=", "credentials_wrong_location")
        .location("query:access_token")
        .fingerprint(true)
        .verbose();
    let (e, p) = check(&out, &w);
    assert_no_query("verbose ?access_token=", &e, &query);
    let body = String::from_utf8_lossy(&out.body);
    assert!(!body.contains(&t), "body echoes the token: {body}");
    let hint = p["hint"].as_str().unwrap();
    assert_ne!(hint, Reason::CredentialsWrongLocation.hint(), "{p}");
    assert!(hint.to_ascii_lowercase().contains("header"), "{p}");
}

#[tokio::test]
async fn token_in_other_headers_is_wrong_location() {
    let t = token();
    for (name, loc) in [
        ("X-Auth-Token", "header:x-auth-token"),
        ("Token", "header:token"),
        ("X-Access-Token", "header:x-access-token"),
        ("X-API-Key", "header:x-api-key"),
    ] {
        for value in [t.as_str(), "sk_live_0123456789abcdef"] {
            let label = format!("{name}: {}", &value[..10]);
            let out = send(app(), get("/me", &[(name, value)])).await;
            let w = Want::new(label.clone(), "credentials_wrong_location")
                .location(loc)
                .fingerprint(true);
            let (e, _) = check(&out, &w);
            assert_eq!(
                e.field("hint"),
                Reason::CredentialsWrongLocation.hint(),
                "{label}"
            );
        }
    }
}

#[tokio::test]
async fn token_in_cookie_is_wrong_location() {
    let t = token();
    let cases = [
        (format!("access_token={t}"), "cookie:access_token"),
        (
            format!("theme=dark; access_token={t}"),
            "cookie:access_token",
        ),
        // A JWT under a name nobody would guess.
        (format!("theme=dark; prefs_blob={t}"), "cookie:prefs_blob"),
    ];
    for (cookie, loc) in &cases {
        let label = format!("cookie {loc}");
        let out = send(app(), get("/me", &[("cookie", cookie)])).await;
        let w = Want::new(label, "credentials_wrong_location")
            .location(loc)
            .fingerprint(true);
        check(&out, &w);
    }
}

#[tokio::test]
async fn wrong_location_verbose_header() {
    let out = send(
        verbose_app(),
        get("/me", &[("x-api-key", "sk_live_0123456789abcdef")]),
    )
    .await;
    let w = Want::new("verbose X-API-Key", "credentials_wrong_location")
        .location("header:x-api-key")
        .fingerprint(true)
        .verbose();
    let (_, p) = check(&out, &w);
    assert_eq!(p["hint"], Reason::CredentialsWrongLocation.hint());
}

// ---------------------------------------------------------------------------------------
// authorization_malformed
// ---------------------------------------------------------------------------------------

fn malformed_cases() -> Vec<(String, HeaderValue, Option<bool>)> {
    let long = format!("Bearer {}", "a".repeat(20 * 1024));
    vec![
        ("Bearer".into(), hv("Bearer"), None),
        ("Bearer + spaces".into(), hv("Bearer    "), None),
        ("Bearer a b".into(), hv("Bearer a b"), Some(true)),
        (
            "Bearer abcdef ghijkl".into(),
            hv("Bearer abcdef ghijkl"),
            Some(true),
        ),
        ("Bearer Bearer x".into(), hv("Bearer Bearer x"), Some(true)),
        ("quoted".into(), hv("Bearer \"abc\""), Some(true)),
        ("Bearer a,b".into(), hv("Bearer a,b"), Some(true)),
        ("Bearer a;b".into(), hv("Bearer a;b"), Some(true)),
        (
            "non-UTF-8".into(),
            HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
            Some(true),
        ),
        ("20 KiB".into(), hv(&long), Some(true)),
        ("Bearer ==".into(), hv("Bearer =="), Some(true)),
    ]
}

/// The scheme a malformed case logs as received: `Bearer`, the word the value starts
/// with, even when the rest does not parse at all (non-UTF-8, over the length cap).
fn bearer_received(_label: &str) -> Option<&'static str> {
    Some("Bearer")
}

#[tokio::test]
async fn authorization_malformed_production() {
    for (label, value, fp) in malformed_cases() {
        let out = send_auth(app(), "/me?q=1", value).await;
        let mut w =
            Want::new(label.clone(), "authorization_malformed").location("header:authorization");
        w.fingerprint = fp;
        w.received = bearer_received(&label);
        let (e, _) = check(&out, &w);
        assert_no_query(&label, &e, "q=1");
        // The response never echoes what was sent.
        let body = String::from_utf8_lossy(&out.body);
        assert!(body.len() < 2048, "{label}: body of {} bytes", body.len());
    }
}

#[tokio::test]
async fn authorization_malformed_verbose() {
    for (label, value, fp) in malformed_cases() {
        let out = send_auth(verbose_app(), "/me", value).await;
        let mut w = Want::new(format!("verbose {label}"), "authorization_malformed")
            .location("header:authorization")
            .verbose();
        w.fingerprint = fp;
        w.received = bearer_received(&label);
        check(&out, &w);
        let body = String::from_utf8_lossy(&out.body);
        assert!(
            body.len() < 2048,
            "{label}: verbose body of {} bytes",
            body.len()
        );
        let c = out.challenge();
        assert!(
            c.param("error_description").unwrap().len() <= 256,
            "{label}: {c:?}"
        );
    }
}

#[tokio::test]
async fn doubled_bearer_prefix_gets_its_own_hint() {
    let t = token();
    for a in [app(), verbose_app()] {
        let out = send(
            a,
            get("/me", &[("authorization", &format!("Bearer Bearer {t}"))]),
        )
        .await;
        let e = out.event();
        assert_eq!(out.status, 400);
        assert_eq!(e.field("reason"), "authorization_malformed");
        let hint = e.field("hint");
        assert_ne!(hint, Reason::AuthorizationMalformed.hint());
        let lower = hint.to_ascii_lowercase();
        assert!(
            lower.contains("bearer")
                && (lower.contains("twice") || lower.contains("doubl") || lower.contains("second")),
            "hint should be about the doubled prefix: {hint:?}"
        );
    }
    // Verbose: the body carries the same hint.
    let out = send(
        verbose_app(),
        get("/me", &[("authorization", &format!("Bearer Bearer {t}"))]),
    )
    .await;
    let w = Want::new("verbose Bearer Bearer <jwt>", "authorization_malformed")
        .location("header:authorization")
        .fingerprint(true)
        .received("Bearer")
        .verbose();
    let (e, p) = check(&out, &w);
    assert_eq!(p["hint"], e.field("hint"));
    assert_ne!(p["hint"], Reason::AuthorizationMalformed.hint());
}

// ---------------------------------------------------------------------------------------
// credentials_conflict
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn two_authorization_fields_conflict() {
    let t = token();
    for verbose in [false, true] {
        let a = if verbose { verbose_app() } else { app() };
        let out = send(
            a,
            request(
                Method::GET,
                "/me",
                vec![
                    ("authorization", hv(&format!("Bearer {t}"))),
                    ("authorization", hv("Basic dXNlcjpwYXNz")),
                ],
            ),
        )
        .await;
        let mut w = Want::new(
            format!("two Authorization (verbose {verbose})"),
            "credentials_conflict",
        )
        .location("header:authorization")
        .received("Bearer");
        if verbose {
            w = w.verbose();
        }
        let (e, _) = check(&out, &w);
        assert_eq!(e.field("hint"), Reason::CredentialsConflict.hint());
    }
}

#[tokio::test]
async fn authorization_and_query_token_conflict() {
    let t = token();
    for verbose in [false, true] {
        let a = if verbose { verbose_app() } else { app() };
        let query = format!("access_token={t}");
        let out = send(
            a,
            get(
                &format!("/me?{query}"),
                &[("authorization", &format!("Bearer {t}"))],
            ),
        )
        .await;
        let label = format!("Authorization + ?access_token= (verbose {verbose})");
        let mut w = Want::new(label.clone(), "credentials_conflict")
            .location("header:authorization")
            .received("Bearer");
        if verbose {
            w = w.verbose();
        }
        let (e, _) = check(&out, &w);
        assert_no_query(&label, &e, &query);
    }
}

/// The spec's log event carries "a short fingerprint of the credential … so one token can
/// be followed across lines": a conflicting request carries credentials too.
#[tokio::test]
async fn credentials_conflict_logs_a_fingerprint() {
    let t = token();
    let out = send(
        app(),
        get(
            &format!("/me?access_token={t}"),
            &[("authorization", &format!("Bearer {t}"))],
        ),
    )
    .await;
    let w = Want::new("conflict fingerprint (query)", "credentials_conflict")
        .location("header:authorization")
        .received("Bearer")
        .fingerprint(true);
    check(&out, &w);

    let out = send(
        app(),
        request(
            Method::GET,
            "/me",
            vec![
                ("authorization", hv(&format!("Bearer {t}"))),
                ("authorization", hv(&format!("Bearer {t}"))),
            ],
        ),
    )
    .await;
    let w = Want::new("conflict fingerprint (two fields)", "credentials_conflict")
        .location("header:authorization")
        .received("Bearer")
        .fingerprint(true);
    check(&out, &w);
}

// ---------------------------------------------------------------------------------------
// Fingerprints follow one credential across lines
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn fingerprint_is_stable_per_credential() {
    let fp = |out: &Outcome| out.event().field("fingerprint").to_owned();
    let a1 = send(
        app(),
        get("/me", &[("authorization", "Basic dXNlcjpwYXNz")]),
    )
    .await;
    let a2 = send(
        app(),
        get("/me", &[("authorization", "Basic dXNlcjpwYXNz")]),
    )
    .await;
    let b = send(
        app(),
        get("/me", &[("authorization", "Basic b3RoZXI6cGFzcw==")]),
    )
    .await;
    assert_eq!(fp(&a1), fp(&a2), "same credential, same fingerprint");
    assert_ne!(
        fp(&a1),
        fp(&b),
        "different credentials, different fingerprints"
    );
}

// ---------------------------------------------------------------------------------------
// CORS preflight
// ---------------------------------------------------------------------------------------

fn preflight_app(options_status: StatusCode) -> Router {
    Router::new()
        .route(
            "/me",
            axum::routing::get(|| async { "me" }).options(move || async move { options_status }),
        )
        .layer(AuthDiagnostics::new().bearer(jwt()))
}

fn preflight(uri: &str) -> Request<Body> {
    get_like(
        Method::OPTIONS,
        uri,
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization"),
        ],
    )
}

fn get_like(method: Method, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    request(
        method,
        uri,
        headers.iter().map(|(k, v)| (*k, hv(v))).collect(),
    )
}

#[tokio::test]
async fn preflight_passes_through_unauthenticated() {
    let out = send(preflight_app(StatusCode::NO_CONTENT), preflight("/me")).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.events.is_empty(), "{:#?}", out.events);
    assert!(out.headers.get("www-authenticate").is_none());
    assert!(out.header("x-request-id").is_some());
}

#[tokio::test]
async fn preflight_answered_401_by_the_app_is_logged_as_preflight_blocked() {
    for status in [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN] {
        let out = send(preflight_app(status), preflight("/me?cb=123456")).await;
        assert_eq!(
            out.status, status,
            "never a rejection: the app's answer stays"
        );
        let rid = out.header("x-request-id").expect("x-request-id").to_owned();
        let e = out.event();
        assert_eq!(e.level, Level::ERROR);
        assert_eq!(e.field("reason"), "preflight_blocked");
        assert_eq!(e.field("status"), status.as_u16().to_string());
        assert_eq!(e.field("method"), "OPTIONS");
        assert_eq!(e.field("path"), "/me");
        assert_eq!(e.field("request_id"), rid);
        assert_eq!(e.field("hint"), Reason::PreflightBlocked.hint());
        assert_no_query("preflight", e, "cb=123456");
    }
}

#[tokio::test]
async fn options_without_preflight_headers_is_authenticated() {
    let cases: [&[(&str, &str)]; 3] = [
        &[],
        &[("origin", "https://app.example")],
        &[("access-control-request-method", "GET")],
    ];
    for headers in cases {
        let out = send(
            preflight_app(StatusCode::NO_CONTENT),
            get_like(Method::OPTIONS, "/me", headers),
        )
        .await;
        let w = Want::new(format!("OPTIONS {headers:?}"), "credentials_missing")
            .method("OPTIONS")
            .fingerprint(false);
        check(&out, &w);
    }
}

// ---------------------------------------------------------------------------------------
// Realm
// ---------------------------------------------------------------------------------------

fn realm_app() -> Router {
    bearer_app(AuthDiagnostics::new().realm("my \"realm\"\r\n"))
}

#[tokio::test]
async fn custom_realm_is_parseable_and_has_no_crlf() {
    for (label, req) in [
        ("401", get("/me", &[])),
        ("400", get("/me", &[("authorization", "Bearer a b")])),
    ] {
        let out = send(realm_app(), req).await;
        for v in out.headers.get_all("www-authenticate") {
            assert!(
                !v.as_bytes().iter().any(|b| *b == b'\r' || *b == b'\n'),
                "{label}: {v:?}"
            );
        }
        let c = out.challenge();
        let realm = c.param("realm").expect("realm");
        assert!(realm.starts_with("my \"realm\""), "{label}: {realm:?}");
        assert!(!realm.contains(['\r', '\n']), "{label}: {realm:?}");
    }
}

/// `Challenge::realm` documents "control characters are dropped".
#[tokio::test]
async fn custom_realm_control_characters_are_dropped() {
    let out = send(realm_app(), get("/me", &[])).await;
    let w = Want {
        realm: "my \"realm\"",
        ..Want::new("custom realm", "credentials_missing").fingerprint(false)
    };
    check(&out, &w);
}

#[tokio::test]
async fn plain_custom_realm() {
    let out = send(
        bearer_app(AuthDiagnostics::new().realm("orders")),
        get("/me", &[]),
    )
    .await;
    let w = Want {
        realm: "orders",
        ..Want::new("realm orders", "credentials_missing").fingerprint(false)
    };
    check(&out, &w);
    let out = send(
        bearer_app(AuthDiagnostics::new().realm("orders")),
        get("/me", &[("authorization", "Bearer ==")]),
    )
    .await;
    let w = Want {
        realm: "orders",
        ..Want::new("realm orders 400", "authorization_malformed")
            .location("header:authorization")
            .received("Bearer")
    };
    check(&out, &w);
}

// ---------------------------------------------------------------------------------------
// Request id
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn incoming_request_id_is_echoed_and_logged() {
    let out = send(app(), get("/me", &[("x-request-id", "abc-123")])).await;
    assert_eq!(out.header("x-request-id"), Some("abc-123"));
    assert_eq!(out.problem()["request_id"], "abc-123");
    assert_eq!(out.event().field("request_id"), "abc-123");
    check(
        &out,
        &Want::new("x-request-id abc-123", "credentials_missing").fingerprint(false),
    );

    // Also on a request that reaches the handler.
    let t = token();
    let out = send(
        app(),
        get(
            "/me",
            &[
                ("x-request-id", "abc-123"),
                ("authorization", &format!("Bearer {t}")),
            ],
        ),
    )
    .await;
    assert_eq!(out.status, 200);
    assert_eq!(out.header("x-request-id"), Some("abc-123"));
}

#[tokio::test]
async fn request_id_of_128_visible_characters_is_kept() {
    let id: String = "r".repeat(100) + "!#$%&'*+-.^_`|~:/?=@[]{}()<>,;\"\\";
    let id = &id[..128];
    let out = send(app(), get("/me", &[("x-request-id", id)])).await;
    assert_eq!(out.header("x-request-id"), Some(id));
    assert_eq!(out.event().field("request_id"), id);
}

#[tokio::test]
async fn insane_request_ids_are_replaced() {
    let cases: Vec<(&str, HeaderValue)> = vec![
        ("200 characters", hv(&"a".repeat(200))),
        ("129 characters", hv(&"a".repeat(129))),
        ("with a space", hv("abc 123")),
        (
            "non-ASCII",
            HeaderValue::from_bytes("req-\u{e9}t\u{e9}-1".as_bytes()).unwrap(),
        ),
        ("empty", hv("")),
        ("tab", hv("abc\t123")),
    ];
    for (label, value) in cases {
        let sent = value.clone();
        let out = send(
            app(),
            request(Method::GET, "/me", vec![("x-request-id", value)]),
        )
        .await;
        let id = out.header("x-request-id").expect("x-request-id").to_owned();
        assert_ne!(id.as_bytes(), sent.as_bytes(), "{label}: kept as sent");
        assert_generated_id(label, &id);
        assert_eq!(out.event().field("request_id"), id, "{label}");
        assert_eq!(out.problem()["request_id"], id.as_str(), "{label}");
    }
}

#[tokio::test]
async fn generated_request_ids_differ() {
    let a = send(app(), get("/me", &[])).await;
    let b = send(app(), get("/me", &[])).await;
    let (ia, ib) = (
        a.header("x-request-id").unwrap(),
        b.header("x-request-id").unwrap(),
    );
    assert_generated_id("first", ia);
    assert_generated_id("second", ib);
    assert_ne!(ia, ib);
    assert_eq!(a.event().field("request_id"), ia);
    assert_eq!(b.event().field("request_id"), ib);
}

/// "A short fingerprint of the credential … so one token can be followed across lines":
/// one token sent in different wrong places gets one fingerprint.
#[tokio::test]
async fn one_token_has_one_fingerprint_wherever_it_is_sent() {
    let t = token();
    let outs = [
        send(app(), get("/me", &[("authorization", &t)])).await,
        send(app(), get(&format!("/me?access_token={t}"), &[])).await,
        send(app(), get("/me", &[("x-auth-token", &t)])).await,
        send(app(), get("/me", &[("cookie", &format!("prefs_blob={t}"))])).await,
    ];
    let fps: Vec<&str> = outs
        .iter()
        .map(|o| o.event().field("fingerprint"))
        .collect();
    assert!(
        fps.iter().all(|fp| *fp == fps[0]),
        "fingerprints of one token differ by location: {fps:?}"
    );
}

/// Only `access_token` is a way to send a Bearer token in the query (RFC 6750 §2.3): other
/// names are an application's own parameters (`?token=page2`) and never change the outcome
/// of a request whose Authorization is valid.
#[tokio::test]
async fn only_access_token_in_the_query_conflicts_with_authorization() {
    let t = token();
    let out = send(
        app(),
        get(
            &format!("/me?access_token={t}"),
            &[("authorization", &format!("Bearer {t}"))],
        ),
    )
    .await;
    let w = Want::new("Authorization + ?access_token=", "credentials_conflict")
        .location("header:authorization")
        .received("Bearer");
    check(&out, &w);
    for name in [
        "token",
        "jwt",
        "id_token",
        "api_key",
        "apikey",
        "api-key",
        "auth_token",
    ] {
        for value in ["page2", t.as_str()] {
            let out = send(
                app(),
                get(
                    &format!("/me?{name}={value}"),
                    &[("authorization", &format!("Bearer {t}"))],
                ),
            )
            .await;
            assert_eq!(out.status, 200, "?{name}={value}: {:?}", out.events);
            assert!(out.events.is_empty(), "?{name}=: {:?}", out.events);
        }
    }
}
