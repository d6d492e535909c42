//! What browsers see: optional authentication (`AuthDiagnostics::optional`), the login
//! redirect of a session route (`SessionAuthenticator::login_url`), the origin check of
//! unsafe requests a session cookie authenticated (CSRF, `cross_site_request`),
//! `Access-Control-Expose-Headers` on the layer's 401 and 403, and the WARN about CORS
//! headers added inside the layer (`cors_inside_auth`).
//!
//! Every test states what a user of the layer observes: status, headers, body and the
//! log events captured by [`send`].
mod common;
use common::*;
use tower::Layer as _;

use auth_diagnostics::api_key::ApiKeyAuthenticator;
use auth_diagnostics::authz::{AccountStatus, RequireScope};
use auth_diagnostics::basic::BasicAuthenticator;
use auth_diagnostics::session::SessionAuthenticator;
use auth_diagnostics::Principal;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Json, Router};
use http::Request;
use serde_json::json;
use tower_http::cors::{Any, CorsLayer};

/// The host every request here is sent to.
const HOST: &str = "example.test";
/// This site's own origin.
const SELF_ORIGIN: &str = "http://example.test";
const EVIL: &str = "https://evil.example";
const NAVIGATE: (&str, &str) = ("sec-fetch-mode", "navigate");
/// What Firefox and Chrome send on a page navigation.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
/// `Access-Control-Expose-Headers` of every 401 and 403 the layer renders.
const EXPOSE: &str = "WWW-Authenticate, X-Request-Id";
const COOKIE_CHALLENGE: &str = r#"Cookie realm="api", name="sid""#;

// =======================================================================================
// Apps
// =======================================================================================

/// Who the handler sees: `{"id", "scheme"}`, both `null` for an anonymous request.
async fn who(p: Option<Principal>) -> Json<Value> {
    Json(json!({
        "id": p.as_ref().and_then(|p| p.id()),
        "scheme": p.as_ref().and_then(|p| p.scheme()),
    }))
}

/// A handler that needs a principal.
async fn me(p: Principal) -> Json<Value> {
    Json(json!({ "id": p.id() }))
}

/// `/session` (any method) and every other path answer [`who`]; `/me` needs a principal;
/// `/admin` needs scope `admin`. All behind `layer`.
fn site(layer: AuthDiagnostics) -> Router {
    Router::new()
        .route("/session", routing::any(who))
        .route("/me", routing::get(me))
        .route(
            "/admin",
            routing::get(who).route_layer(RequireScope::new(["admin"])),
        )
        .fallback(who)
        .layer(layer)
}

/// The session cookie `sid`, verified by [`check_session`].
fn sessions() -> SessionAuthenticator {
    SessionAuthenticator::new("sid", check_session)
}

/// A layer that logs every failure (these tests send many of one reason).
fn base() -> AuthDiagnostics {
    AuthDiagnostics::new().log_every_failure()
}

/// [`site`] with the session scheme `s`.
fn pages(s: SessionAuthenticator) -> Router {
    site(base().session(s))
}

/// [`site`] with sessions and the login page `/login`.
fn with_login() -> Router {
    pages(sessions().login_url("/login"))
}

/// [`with_login`] without the path guard, which would refuse the ambiguous paths (`/\x`,
/// `%2F`, `%5C`) before the redirect under test is made.
fn with_login_unguarded() -> Router {
    let layer = base().path_guard(auth_diagnostics::layer::PathGuard::Off);
    site(layer.session(sessions().login_url("/login")))
}

/// [`site`] with Bearer JWTs, optional.
fn optional_bearer() -> Router {
    site(base().bearer(jwt()).optional())
}

fn sid(id: &str) -> String {
    format!("sid={id}")
}

fn valid_token() -> String {
    hs256(&good_claims())
}

fn expired_token() -> String {
    let now = now();
    hs256(&claims(json!({ "iat": now - 7200, "exp": now - 3600 })))
}

/// Request headers, as text.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// A request with `method` to `uri` and `headers` (text values).
fn req(method: Method, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    request(
        method,
        uri,
        headers.iter().map(|(k, v)| (*k, hv(v))).collect(),
    )
}

/// A `method` request to `/session` for `example.test` with alice's session cookie and
/// `extra` headers.
fn with_cookie(method: Method, extra: &[(&str, &str)]) -> Request<Body> {
    let cookie = sid(SESS_VALID);
    let mut headers = vec![("host", HOST), ("cookie", cookie.as_str())];
    headers.extend_from_slice(extra);
    req(method, "/session", &headers)
}

/// `out` without its DEBUG events (the "anonymous" one of an optional layer).
fn above_debug(out: Outcome) -> Outcome {
    Outcome {
        events: out
            .events
            .into_iter()
            .filter(|e| e.level != Level::DEBUG)
            .collect(),
        ..out
    }
}

// =======================================================================================
// Assertions
// =======================================================================================

/// A 200 that the handler answered for `id` (`None`: anonymously), with no event at INFO
/// or above.
#[track_caller]
fn served(out: &Outcome, id: Option<&str>) {
    assert_eq!(
        out.status,
        200,
        "body {} events {:#?}",
        out.text(),
        out.events
    );
    assert_eq!(out.json()["id"], json!(id), "{}", out.text());
    let loud: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.level <= Level::INFO)
        .collect();
    assert!(loud.is_empty(), "{loud:#?}");
}

/// The login redirect to `location`: `303`, no body, no challenge, `no-store`, and the
/// failure logged once with `status=303`. Returns the event.
#[track_caller]
fn redirected<'a>(out: &'a Outcome, location: &str) -> &'a Captured {
    assert_eq!(
        out.status,
        303,
        "body {} events {:#?}",
        out.text(),
        out.events
    );
    assert_eq!(out.header("location"), Some(location));
    assert_eq!(out.header("cache-control"), Some("no-store"));
    assert!(out.header_all("www-authenticate").is_empty());
    assert!(out.body.is_empty(), "{}", out.text());
    let vary = out.header("vary").unwrap_or_default().to_ascii_lowercase();
    assert!(vary.contains("sec-fetch-mode"), "vary: {vary}");
    let e = out.event();
    assert_eq!(e.field("status"), "303", "{}", e.line());
    assert_eq!(e.field("request_id"), out.header("x-request-id").unwrap());
    e
}

/// A session 401 with the cookie challenge and a problem body (not redirected).
#[track_caller]
fn session_401(out: &Outcome, reason: &'static str) {
    let e = expect(reason).schemes(&["Cookie"]).error(None);
    let r = out.check(&e);
    assert_eq!(out.header_all("www-authenticate"), [COOKIE_CHALLENGE]);
    assert_eq!(out.header("location"), None);
    assert_eq!(out.header("access-control-expose-headers"), Some(EXPOSE));
    assert_eq!(r.event.field("status"), "401");
}

/// The origin check refused: 403 `cross_site_request` in `mode`, `check=origin`, no
/// challenge, the expose header. Returns the check for more.
#[track_caller]
fn refused_cross_site(out: &Outcome, mode: DetailMode) -> Checked {
    let r = out.check(
        &expect("cross_site_request")
            .mode(mode)
            .field("check", "origin"),
    );
    assert!(out.header_all("www-authenticate").is_empty());
    assert_eq!(out.header("location"), None);
    assert_eq!(out.header("access-control-expose-headers"), Some(EXPOSE));
    r
}

/// Percent-decodes `s` once, as a login page reads its `return_to` parameter.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `return_to` a login page gets from `location` (decoded once): always a path of
/// this site, never one a browser reads as another host.
#[track_caller]
fn return_to_of(location: &str) -> String {
    let (_, raw) = location
        .split_once("return_to=")
        .unwrap_or_else(|| panic!("no return_to in {location}"));
    assert!(
        raw.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b)),
        "return_to is not percent-encoded: {raw}"
    );
    let path = percent_decode(raw);
    assert!(path.starts_with('/'), "{path}");
    assert!(
        !path.starts_with("//") && !path.starts_with("/\\"),
        "return_to leads to another host: {path}"
    );
    path
}

// =======================================================================================
// Optional authentication
// =======================================================================================

/// No credential at all: the handler runs with `None`, the answer has no challenge, and
/// the only event is one DEBUG line (not the INFO `credentials_missing` of a required
/// layer).
#[tokio::test]
async fn optional_without_credentials_reaches_the_handler_anonymously() {
    let out = send(optional_bearer(), get("/feed?page=2", &[])).await;
    served(&out, None);
    assert_eq!(out.json()["scheme"], Value::Null);
    assert!(out.header_all("www-authenticate").is_empty());
    let e = out.event();
    assert_eq!(e.level, Level::DEBUG, "{}", e.line());
    assert_eq!(e.target, "auth_diagnostics");
    assert!(e.field("message").starts_with("anonymous"), "{}", e.line());
    assert_eq!(e.field("method"), "GET");
    assert_eq!(e.field("path"), "/feed");
    assert_eq!(e.field("request_id"), out.header("x-request-id").unwrap());
    assert_eq!(e.get("reason"), None, "not a failure event: {}", e.line());

    // The same route without `.optional()` refuses: this is what optional changes.
    let out = send(site(base().bearer(jwt())), get("/feed", &[])).await;
    out.check(&expect("credentials_missing"));

    // An optional session route: a browser without a cookie (even a navigation to a
    // route with a login page) is a guest, not sent to log in.
    let svc = site(base().session(sessions().login_url("/login")).optional());
    let out = send(svc, get("/session", &[NAVIGATE])).await;
    served(&out, None);
    assert_eq!(out.event().level, Level::DEBUG);
}

/// A valid token on an optional route: the handler gets the principal; nothing logged.
#[tokio::test]
async fn optional_with_a_valid_token_gives_the_principal() {
    let auth = bearer(&valid_token());
    let out = send(optional_bearer(), get("/feed", &[("authorization", &auth)])).await;
    let body = out.ok();
    assert_eq!(body, json!({ "id": "alice", "scheme": "Bearer" }));

    let svc = site(base().session(sessions()).optional());
    let cookie = sid(SESS_VALID);
    let out = send(svc, get("/session", &[("cookie", &cookie)])).await;
    assert_eq!(out.ok(), json!({ "id": "alice", "scheme": "Cookie" }));
}

/// The lower-case tokens of every `Vary` field of `out`.
fn vary(out: &Outcome) -> Vec<String> {
    out.header_all("vary")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// An optional route answers a guest and a signed-in user differently at one URL: every
/// answer says `Vary: Authorization, Cookie`, so a cache never serves one the other's
/// page. The application's own `Vary` values stay, none twice; `Vary: *` stays alone.
#[tokio::test]
async fn optional_answers_vary_on_authorization_and_cookie() {
    use http::header::VARY;
    let auth = bearer(&valid_token());
    let both = ["authorization", "cookie"].map(String::from).to_vec();
    for (what, svc, request) in [
        ("anonymous", optional_bearer(), get("/feed", &[])),
        (
            "a valid token",
            optional_bearer(),
            get("/feed", &[("authorization", &auth)]),
        ),
        (
            "a session",
            site(base().session(sessions()).optional()),
            get("/session", &[("cookie", &sid(SESS_VALID))]),
        ),
        (
            "a refused token",
            optional_bearer(),
            get("/feed", &[("authorization", "Bearer not-a-token")]),
        ),
    ] {
        let out = send(svc, request).await;
        assert_eq!(vary(&out), both, "{what}: {:?}", out.headers);
    }

    // The application's own values come first and stay.
    let own = |value: &'static str| {
        Router::new()
            .route(
                "/v",
                routing::get(move || async move { ([(VARY, value)], "v") }),
            )
            .layer(base().bearer(jwt()).optional())
    };
    let out = send(own("Accept-Encoding"), get("/v", &[])).await;
    assert_eq!(vary(&out), ["accept-encoding", "authorization", "cookie"]);
    let out = send(
        own("cookie, Origin"),
        get("/v", &[("authorization", &auth)]),
    )
    .await;
    assert_eq!(vary(&out), ["cookie", "origin", "authorization"]);
    let out = send(own("*"), get("/v", &[])).await;
    assert_eq!(vary(&out), ["*"]);

    // A required layer's answers are not optional ones: nothing added.
    let out = send(
        site(base().bearer(jwt())),
        get("/feed", &[("authorization", &auth)]),
    )
    .await;
    assert_eq!(vary(&out), Vec::<String>::new());
}

/// Credentials that fail are refused exactly as on a required route: never downgraded to
/// the anonymous view.
#[tokio::test]
async fn optional_never_downgrades_bad_credentials_to_anonymous() {
    let expired = bearer(&expired_token());
    let forged = {
        let key = jsonwebtoken::EncodingKey::from_secret(b"not-the-secret");
        bearer(&sign(&Default::default(), &good_claims(), &key))
    };
    let basic_alice = basic("alice", ALICE_PW);
    let query = format!("/feed?access_token={}", valid_token());
    let cases: Vec<(&str, Request<Body>, &'static str)> = vec![
        (
            "garbage token",
            get("/feed", &[("authorization", "Bearer not-a-token-at-all")]),
            "token_malformed",
        ),
        (
            "forged token",
            get("/feed", &[("authorization", &forged)]),
            "token_signature_invalid",
        ),
        (
            "expired token",
            get("/feed", &[("authorization", &expired)]),
            "token_expired",
        ),
        (
            "Basic to a Bearer route",
            get("/feed", &[("authorization", &basic_alice)]),
            "scheme_not_accepted",
        ),
        (
            "an API key header",
            get("/feed", &[("x-api-key", KEY_GOOD)]),
            "credentials_wrong_location",
        ),
        (
            "a token in the query",
            get(&query, &[]),
            "credentials_wrong_location",
        ),
    ];
    for (label, request, reason) in cases {
        let out = send(optional_bearer(), request).await;
        out.check(&expect(reason));
        assert_ne!(out.status, 200, "{label}");
        assert!(
            out.events.iter().all(|e| e.level != Level::DEBUG),
            "{label}: no anonymous event: {:#?}",
            out.events
        );
        assert_eq!(
            out.header("access-control-expose-headers"),
            Some(EXPOSE),
            "{label}"
        );
    }

    // The same for the other schemes on an optional layer.
    let svc = || {
        site(
            base()
                .basic(BasicAuthenticator::new(check_password))
                .api_key(ApiKeyAuthenticator::new(check_key))
                .session(sessions())
                .optional(),
        )
    };
    let wrong_pw = basic("alice", "wrong-password");
    let expired_cookie = sid(SESS_EXPIRED);
    let cases: Vec<(Request<Body>, &'static str)> = vec![
        (
            get("/feed", &[("authorization", &wrong_pw)]),
            "basic_password_mismatch",
        ),
        (
            get("/feed", &[("x-api-key", KEY_UNKNOWN)]),
            "api_key_unknown",
        ),
        (
            get("/feed", &[("x-api-key", KEY_REVOKED)]),
            "api_key_revoked",
        ),
        (
            get("/feed", &[("cookie", &expired_cookie)]),
            "session_expired",
        ),
    ];
    for (request, reason) in cases {
        let out = send(svc(), request).await;
        assert_eq!(out.status, 401, "{reason}: {}", out.text());
        let e = out.event();
        assert_eq!(e.field("reason"), reason, "{}", e.line());
        assert_eq!(e.level, Level::WARN);
    }
    // And nothing at all is still a guest there.
    served(&send(svc(), get("/feed", &[])).await, None);
}

/// Behind an optional layer, a handler or route that needs a principal still refuses a
/// guest: 401 `credentials_missing`, rendered with the layer's challenge and logged.
#[tokio::test]
async fn optional_layer_still_guards_routes_that_need_a_principal() {
    for uri in ["/me", "/admin"] {
        let out = above_debug(send(optional_bearer(), get(uri, &[])).await);
        out.check(&expect("credentials_missing").field("path", uri));
        assert_eq!(out.header("access-control-expose-headers"), Some(EXPOSE));
    }
    // With a login page, a guest's page navigation to such a route goes to log in.
    let svc = site(base().session(sessions().login_url("/login")).optional());
    let out = above_debug(send(svc, get("/me", &[NAVIGATE])).await);
    let e = redirected(&out, "/login?return_to=/me");
    assert_eq!(e.field("reason"), "credentials_missing");
}

// =======================================================================================
// The login redirect
// =======================================================================================

/// A page navigation without a session goes to the login page, `return_to` the page.
#[tokio::test]
async fn navigation_without_a_session_goes_to_the_login_page() {
    let out = send(with_login(), get("/session", &[NAVIGATE])).await;
    let e = redirected(&out, "/login?return_to=/session");
    assert_eq!(e.field("reason"), "credentials_missing");
    assert_eq!(e.level, Level::INFO);
    assert_eq!(e.field("method"), "GET");
    assert_eq!(e.field("path"), "/session");
    // The repro line shows why it was a navigation.
    assert!(
        e.field("repro").contains("-H 'sec-fetch-mode: navigate'"),
        "{}",
        e.field("repro")
    );

    // The request id the client sent is the one on the redirect and in the log.
    let out = send(
        with_login(),
        get("/session", &[NAVIGATE, ("x-request-id", "req-browser-1")]),
    )
    .await;
    let e = redirected(&out, "/login?return_to=/session");
    assert_eq!(e.field("request_id"), "req-browser-1");

    // Without a login URL, the same navigation gets the 401.
    let out = send(pages(sessions()), get("/session", &[NAVIGATE])).await;
    session_401(&out, "credentials_missing");
}

/// An expired session on a navigation: redirected, and the log says why.
#[tokio::test]
async fn expired_session_navigation_is_redirected_and_logged() {
    let cookie = sid(SESS_EXPIRED);
    let out = send(
        with_login(),
        get("/session", &[NAVIGATE, ("cookie", &cookie)]),
    )
    .await;
    let e = redirected(&out, "/login?return_to=/session");
    assert_eq!(e.field("reason"), "session_expired");
    assert_eq!(e.field("status"), "303");
    assert_eq!(e.field("location"), "cookie:sid");
    assert_eq!(e.level, Level::WARN);

    // A forged session, likewise.
    let cookie = sid(SESS_BOGUS);
    let out = send(
        with_login(),
        get("/session", &[NAVIGATE, ("cookie", &cookie)]),
    )
    .await;
    let e = redirected(&out, "/login?return_to=/session");
    assert_eq!(e.field("reason"), "session_invalid");
}

/// `return_to` is the path and query, percent-encoded but for unreserved characters and
/// `/`, so the login page decodes it once to the exact request target.
#[tokio::test]
async fn return_to_is_the_percent_encoded_path_and_query() {
    let cases = [
        (
            "/session?a=1&b=2",
            "/login?return_to=/session%3Fa%3D1%26b%3D2",
        ),
        ("/", "/login?return_to=/"),
        ("/a/b-c_d.e~f", "/login?return_to=/a/b-c_d.e~f"),
        // Already-encoded bytes are encoded again: one decode gives the target back.
        ("/a%20b", "/login?return_to=/a%2520b"),
        ("/caf\u{e9}", "/login?return_to=/caf%C3%A9"),
        ("/x?next=/y#frag", "/login?return_to=/x%3Fnext%3D/y"),
        ("/p?q=a+b;c", "/login?return_to=/p%3Fq%3Da%2Bb%3Bc"),
    ];
    for (target, location) in cases {
        let out = send(with_login(), get(target, &[NAVIGATE])).await;
        redirected(&out, location);
        // One decode gives the request target back, exactly (without a fragment, which
        // never reaches a server).
        let target = target.split('#').next().unwrap();
        assert_eq!(return_to_of(location), target);
    }
}

/// A query that names a credential stays behind: the login page may be on another host.
#[tokio::test]
async fn return_to_leaves_a_credential_query_behind() {
    for target in [
        "/session?access_token=secret-value-123",
        "/session?page=2&api_key=k-123",
        "/session?SESSION=abc",
    ] {
        let out = send(with_login(), get(target, &[NAVIGATE])).await;
        redirected(&out, "/login?return_to=/session");
    }
}

/// On an optional route, what web pages carry anyway is not a credential refused: a
/// cookie this layer does not read, a `?token=` page cursor. `?access_token=` is.
#[tokio::test]
async fn optional_lets_a_pages_own_cookies_and_cursors_through() {
    for (label, request) in [
        (
            "a site cookie",
            get("/feed", &[("cookie", "session=abcdef123")]),
        ),
        ("a page cursor", get("/feed?token=page2", &[])),
    ] {
        let out = send(optional_bearer(), request).await;
        assert_eq!(out.status, 200, "{label}: {}", out.text());
        assert_eq!(out.json()["id"], Value::Null, "{label}: anonymous");
    }
    // A credential beside the page's own state is refused, wherever it sits.
    for (label, request) in [
        ("?access_token=", get("/feed?access_token=abc.def.ghi", &[])),
        (
            "a cursor hiding ?access_token=",
            get("/feed?token=p2&access_token=abc.def.ghi", &[]),
        ),
        ("?api_key=", get("/feed?api_key=k-123", &[])),
        (
            "a cursor and X-Auth-Token",
            get("/feed?token=p2", &[("x-auth-token", "bad")]),
        ),
        (
            "a site cookie and X-API-Key",
            get(
                "/feed",
                &[("cookie", "session=abc"), ("x-api-key", "k-123")],
            ),
        ),
    ] {
        let out = send(optional_bearer(), request).await;
        assert_eq!(out.status, 401, "{label}: {}", out.text());
    }
}

/// Only page navigations are redirected: fetch, XHR, curl and API clients keep the 401.
#[tokio::test]
async fn only_page_navigations_are_redirected() {
    let cases: [(Headers, bool); 17] = [
        (&[NAVIGATE], true),
        (&[("sec-fetch-mode", "NaViGaTe")], true),
        (&[NAVIGATE, ("accept", "application/json")], true),
        (&[("sec-fetch-mode", "cors")], false),
        (
            &[("sec-fetch-mode", "cors"), ("accept", "text/html")],
            false,
        ),
        (
            &[("sec-fetch-mode", "no-cors"), ("accept", BROWSER_ACCEPT)],
            false,
        ),
        (&[("sec-fetch-mode", "same-origin")], false),
        (&[("accept", "text/html")], true),
        (&[("accept", BROWSER_ACCEPT)], true),
        (&[("accept", "application/json")], false),
        (&[("accept", "application/problem+json")], false),
        (&[("accept", "*/*")], false),
        (&[], false),
        (&[("accept", "application/json, text/html")], false),
        (&[("accept", "text/html;q=0.5, application/json")], false),
        (&[("accept", "application/json;q=0.1, text/html")], true),
        (&[("accept", "text/html;q=0")], false),
    ];
    for (headers, navigation) in cases {
        let out = send(with_login(), get("/session", headers)).await;
        if navigation {
            redirected(&out, "/login?return_to=/session");
        } else {
            assert_eq!(out.status, 401, "{headers:?}");
            session_401(&out, "credentials_missing");
        }
    }
}

/// `return_to` never leads to another host, whatever the path: `//host` and `/\host`
/// (read by browsers as another host) and over-long paths become `/`; encoded slashes
/// stay a path.
#[tokio::test]
async fn return_to_is_always_a_path_of_this_site() {
    let long = format!("/{}", "a".repeat(3000));
    let at_cap = format!("/{}", "b".repeat(2047));
    let cases: Vec<(&str, String)> = vec![
        ("//evil.example/x", "/login?return_to=/".into()),
        ("///evil.example", "/login?return_to=/".into()),
        ("/\\evil.example", "/login?return_to=/".into()),
        ("/\\/evil.example", "/login?return_to=/".into()),
        ("//evil.example?a=1", "/login?return_to=/".into()),
        (
            "/%2F%2Fevil.example",
            "/login?return_to=/%252F%252Fevil.example".into(),
        ),
        (
            "/%5Cevil.example",
            "/login?return_to=/%255Cevil.example".into(),
        ),
        ("/@evil.example", "/login?return_to=/%40evil.example".into()),
        (
            "/x//evil.example",
            "/login?return_to=/x//evil.example".into(),
        ),
        (
            "/?u=https://evil.example",
            "/login?return_to=/%3Fu%3Dhttps%3A//evil.example".into(),
        ),
        (&long, "/login?return_to=/".into()),
        (&at_cap, format!("/login?return_to={at_cap}")),
    ];
    for (target, location) in cases {
        let out = send(with_login_unguarded(), get(target, &[NAVIGATE])).await;
        let got = out.header("location").unwrap_or_default().to_owned();
        assert!(
            got.starts_with("/login?return_to=/"),
            "{target}: Location {got}"
        );
        assert!(
            !got.contains("return_to=//") && !got.contains("return_to=/\\"),
            "{target}: Location {got}"
        );
        redirected(&out, &location);
        return_to_of(&got);
    }
}

/// What a browser's URL parser (WHATWG) makes of `target` on a page of this site before
/// it resolves it: tabs and line breaks removed anywhere, leading and trailing controls and
/// spaces trimmed, `\` read as `/` (an http(s) base). Whether the result is a path of this
/// site: it starts with one `/`, not two (`//host` names another host).
fn browser_stays_here(target: &str) -> bool {
    let cleaned: String = target
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let read = cleaned.trim_matches(|c: char| c <= ' ').replace('\\', "/");
    read.starts_with('/') && !read.starts_with("//")
}

/// The open redirect a login page falls for when it checks `return_to` for `//` and `/\`
/// but not for a control character in between (`/<tab>/evil.example/`, which a browser
/// reads as `//evil.example/`): the layer's own 303 never hands one out. A request path
/// cannot carry the raw character, only its percent-encoding, which stays encoded.
#[tokio::test]
async fn return_to_with_control_characters_stays_a_path_of_this_site() {
    assert!(!browser_stays_here("/\t/evil.example/"), "the model");
    assert!(!browser_stays_here("/\t\\/evil.example/"), "the model");
    for payload in ["%09", "%0A", "%0D", "%09%5C"] {
        for target in [
            format!("/{payload}/evil.example/"),
            format!("/session?next=%2F{payload}%2Fevil.example%2F"),
            format!("/{payload}%2Fevil.example%2F"),
        ] {
            let out = send(with_login_unguarded(), get(&target, &[NAVIGATE])).await;
            let location = out.header("location").unwrap_or_default().to_owned();
            assert!(
                location.starts_with("/login?return_to=/"),
                "{target}: Location {location}"
            );
            redirected(&out, &location);
            let back = return_to_of(&location);
            assert!(
                browser_stays_here(&back),
                "{target}: return_to {back:?} leads to another host"
            );
            assert!(
                !back.contains(['\t', '\n', '\r', '\\']),
                "{target}: {back:?}"
            );
        }
    }
}

/// A login URL with a query of its own gets `&return_to=`; an absolute one is kept.
#[tokio::test]
async fn login_url_with_a_query_or_absolute() {
    let cases = [
        (
            "/login?lang=en",
            "/login?lang=en&return_to=/session%3Fx%3D1",
        ),
        (
            "https://login.example/start",
            "https://login.example/start?return_to=/session%3Fx%3D1",
        ),
        (
            "http://localhost:3000/auth/login?next=1",
            "http://localhost:3000/auth/login?next=1&return_to=/session%3Fx%3D1",
        ),
    ];
    for (login, location) in cases {
        let svc = pages(sessions().login_url(login));
        let out = send(svc, get("/session?x=1", &[NAVIGATE])).await;
        redirected(&out, location);
    }
}

/// A login URL that could send users elsewhere, or break the header, is refused when the
/// layer is built (`.session(..)`), never at the first request.
#[test]
fn bad_login_urls_panic_when_the_layer_is_built() {
    for bad in [
        "javascript:alert(1)",
        "//evil.example",
        "//evil.example/login",
        "/\\evil.example",
        "/log in",
        "login",
        "",
        "ftp://files.example/login",
        "data:text/html,hi",
        "/login\u{e9}",
        "/login\t",
    ] {
        // Configuring it alone does not panic; building the layer does.
        let s = sessions().login_url(bad);
        let message = panic_message(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
            move || AuthDiagnostics::new().session(s).layer(()),
        )));
        assert!(
            message.contains("login_url") && message.starts_with("auth-diagnostics: "),
            "{bad:?}: {message}"
        );
    }
    for good in [
        "/login",
        "/login?lang=en",
        "https://login.example/start",
        "http://localhost:3000/login",
    ] {
        let _ = AuthDiagnostics::new().session(sessions().login_url(good));
    }
}

/// A navigation with a valid session reaches the page; nothing is logged.
#[tokio::test]
async fn valid_session_navigation_reaches_the_page() {
    let cookie = sid(SESS_VALID);
    let out = send(
        with_login(),
        get(
            "/session",
            &[NAVIGATE, ("cookie", &cookie), ("accept", BROWSER_ACCEPT)],
        ),
    )
    .await;
    assert_eq!(out.ok(), json!({ "id": "alice", "scheme": "Cookie" }));
    assert_eq!(out.header("location"), None);
}

/// 403s are never redirected: signing in again would not help.
#[tokio::test]
async fn forbidden_is_never_redirected_to_the_login_page() {
    let cookie = sid(SESS_VALID);

    // A disabled account.
    let svc = site(
        base()
            .session(sessions().login_url("/login"))
            .account_status(|_: &Principal| async { Ok(AccountStatus::Disabled) }),
    );
    let out = send(svc, get("/session", &[NAVIGATE, ("cookie", &cookie)])).await;
    out.check(&expect("account_disabled"));
    assert_eq!(out.header("location"), None);
    assert_eq!(out.header("access-control-expose-headers"), Some(EXPOSE));

    // A scope the session does not have.
    let out = send(
        with_login(),
        get("/admin", &[NAVIGATE, ("cookie", &cookie)]),
    )
    .await;
    out.check(&expect("insufficient_scope").schemes(&[]).error(None));
    assert_eq!(out.header("location"), None);

    // A cross-site form POST (a navigation).
    let out = send(
        with_login(),
        with_cookie(Method::POST, &[NAVIGATE, ("origin", EVIL)]),
    )
    .await;
    refused_cross_site(&out, DetailMode::Production);
}

/// Under `Router::nest`, `return_to` is the path the browser asked for, not the nested one.
#[tokio::test]
async fn nested_router_return_to_is_the_full_path() {
    let inner = Router::new().nest("/app", with_login());
    let out = send(inner, get("/app/session?tab=2", &[NAVIGATE])).await;
    redirected(&out, "/login?return_to=/app/session%3Ftab%3D2");

    // The layer outside the nest sees the full path anyway.
    let outer = Router::new()
        .nest("/app", Router::new().route("/session", routing::get(who)))
        .layer(base().session(sessions().login_url("/login")));
    let out = send(outer, get("/app/session", &[NAVIGATE])).await;
    redirected(&out, "/login?return_to=/app/session");

    // Two levels deep.
    let deep = Router::new().nest("/a", Router::new().nest("/b", with_login()));
    let out = send(deep, get("/a/b/session", &[NAVIGATE])).await;
    redirected(&out, "/login?return_to=/a/b/session");
}

// =======================================================================================
// The origin check (CSRF)
// =======================================================================================

/// Unsafe requests the session cookie authenticated, from this site's own origin, pass.
#[tokio::test]
async fn same_origin_unsafe_requests_pass() {
    let cases: [(&str, Headers); 9] = [
        ("same origin", &[("origin", SELF_ORIGIN)]),
        (
            "default port in Origin",
            &[("origin", "http://example.test:80")],
        ),
        (
            "https default port",
            &[("origin", "https://example.test:443")],
        ),
        ("Origin in upper case", &[("origin", "HTTP://EXAMPLE.TEST")]),
        (
            "Sec-Fetch-Site same-origin",
            &[("sec-fetch-site", "same-origin")],
        ),
        ("Sec-Fetch-Site none", &[("sec-fetch-site", "none")]),
        ("neither header (not a browser)", &[]),
        (
            "Origin decides over Sec-Fetch-Site",
            &[("origin", SELF_ORIGIN), ("sec-fetch-site", "cross-site")],
        ),
        (
            "Origin with a same-origin navigation",
            &[("origin", SELF_ORIGIN), NAVIGATE],
        ),
    ];
    for (label, headers) in cases {
        let out = send(pages(sessions()), with_cookie(Method::POST, headers)).await;
        assert_eq!(out.status, 200, "{label}: {}", out.text());
        assert_eq!(
            out.ok(),
            json!({ "id": "alice", "scheme": "Cookie" }),
            "{label}"
        );
    }

    // The Host decides the site's own origin, with its port; default ports drop out.
    let cases = [
        ("example.test:8080", "http://example.test:8080"),
        ("EXAMPLE.test", "http://example.test"),
        ("example.test:443", "https://example.test"),
        ("example.test:80", "http://example.test"),
    ];
    for (host, origin) in cases {
        let cookie = sid(SESS_VALID);
        let headers = [("host", host), ("cookie", &cookie), ("origin", origin)];
        let out = send(pages(sessions()), req(Method::POST, "/session", &headers)).await;
        assert_eq!(
            out.status,
            200,
            "Host {host} Origin {origin}: {}",
            out.text()
        );
    }

    // HTTP/2: no Host, the authority is in the URI.
    let cookie = sid(SESS_VALID);
    let headers = [("cookie", cookie.as_str()), ("origin", SELF_ORIGIN)];
    let out = send(
        pages(sessions()),
        req(Method::POST, "http://example.test/session", &headers),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text());
}

/// The scheme of `Origin` is not compared with the request's: the layer cannot know
/// whether it is served over TLS (a proxy may terminate it). `https://EXAMPLE.test` and
/// `http://example.test` both count as `Host: example.test`'s own origin.
#[tokio::test]
async fn origin_scheme_counts_where_it_can_be_known() {
    // A Host without a port: either scheme's default port is this site's.
    for origin in [
        "https://EXAMPLE.test",
        "http://example.test",
        "HTTPS://example.test",
    ] {
        let out = send(
            pages(sessions()),
            with_cookie(Method::POST, &[("origin", origin)]),
        )
        .await;
        assert_eq!(out.status, 200, "{origin}: {}", out.text());
    }
    // A Host with the https port: an http page (port 80) is another origin.
    let cookie = sid(SESS_VALID);
    for (host, origin, status) in [
        ("example.test:443", "http://example.test", 403),
        ("example.test:443", "https://example.test", 200),
        ("example.test:80", "https://example.test", 403),
        ("example.test:80", "http://example.test", 200),
    ] {
        let headers = [
            ("host", host),
            ("cookie", cookie.as_str()),
            ("origin", origin),
        ];
        let out = send(pages(sessions()), req(Method::POST, "/session", &headers)).await;
        assert_eq!(out.status, status, "{host} {origin}: {}", out.text());
    }
    // A URI that names its scheme (absolute form, HTTP/2's `:scheme`) does not count: a
    // proxy that ends TLS speaks `http` to the application for an https page.
    for (uri, origin) in [
        ("http://example.test/session", "https://example.test"),
        ("https://example.test/session", "http://example.test"),
    ] {
        let headers = [("cookie", cookie.as_str()), ("origin", origin)];
        let out = send(pages(sessions()), req(Method::POST, uri, &headers)).await;
        assert_eq!(out.status, 200, "{uri} {origin}: {}", out.text());
    }
}

/// Builds a layer (which may panic).
type Build = Box<dyn Fn() -> AuthDiagnostics>;

/// Configurations the origin check cannot honour are refused when the layer is built.
#[test]
fn session_settings_that_would_weaken_the_check_panic() {
    let cases: [(&str, Build); 4] = [
        (
            "null",
            Box::new(|| base().session(sessions().trusted_origins(["null"]))),
        ),
        (
            "must be http(s)",
            Box::new(|| base().session(sessions().trusted_origins(["app.example"]))),
        ),
        (
            "fragment",
            Box::new(|| base().session(sessions().login_url("/login#top"))),
        ),
        (
            "once per layer",
            Box::new(|| {
                base().session(sessions()).session(
                    SessionAuthenticator::new("other", check_session).without_origin_check(),
                )
            }),
        ),
    ];
    for (what, build) in cases {
        let message = panic_message(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
            || build().layer(()),
        )));
        assert!(message.contains(what), "{what}: {message}");
    }
}

/// Unsafe requests the session cookie authenticated from anywhere else: 403.
#[tokio::test]
async fn cross_site_unsafe_requests_are_refused() {
    let cases: [(&str, Headers); 13] = [
        ("another host", &[("origin", EVIL)]),
        ("another port", &[("origin", "http://example.test:8080")]),
        (
            "the https port over http",
            &[("origin", "http://example.test:443")],
        ),
        (
            "a sibling subdomain",
            &[("origin", "http://app.example.test")],
        ),
        (
            "a suffix of the host",
            &[("origin", "http://evilexample.test")],
        ),
        (
            "a host with ours as prefix",
            &[("origin", "http://example.test.evil")],
        ),
        (
            "userinfo trick",
            &[("origin", "http://example.test@evil.example")],
        ),
        ("Origin: null", &[("origin", "null")]),
        ("not a URL", &[("origin", "example.test")]),
        ("another scheme", &[("origin", "ftp://example.test")]),
        ("cross-site, no Origin", &[("sec-fetch-site", "cross-site")]),
        ("same-site, no Origin", &[("sec-fetch-site", "same-site")]),
        ("odd Sec-Fetch-Site", &[("sec-fetch-site", "Same-Origin ")]),
    ];
    for (label, headers) in cases {
        let out = send(pages(sessions()), with_cookie(Method::POST, headers)).await;
        assert_eq!(out.status, 403, "{label}: {}", out.text());
        refused_cross_site(&out, DetailMode::Production);
    }

    // An `Origin` but no Host and a relative URI: the site's own origin is unknown.
    let cookie = sid(SESS_VALID);
    let headers = [("cookie", cookie.as_str()), ("origin", SELF_ORIGIN)];
    let out = send(pages(sessions()), req(Method::POST, "/session", &headers)).await;
    let r = refused_cross_site(&out, DetailMode::Production);
    assert!(r.message().contains("no Host"), "{}", r.message());
}

/// Safe methods pass cross-site; every unsafe method is checked.
#[tokio::test]
async fn only_unsafe_methods_are_checked() {
    let cross = [("origin", EVIL), ("sec-fetch-site", "cross-site")];
    for method in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
        let out = send(pages(sessions()), with_cookie(method.clone(), &cross)).await;
        assert_eq!(out.status, 200, "{method}: {}", out.text());
        assert!(out.events.is_empty(), "{method}: {:#?}", out.events);
    }
    let propfind = Method::from_bytes(b"PROPFIND").unwrap();
    for method in [
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        propfind,
    ] {
        let out = send(pages(sessions()), with_cookie(method.clone(), &cross)).await;
        let r = refused_cross_site(&out, DetailMode::Production);
        assert_eq!(r.event.field("method"), method.as_str());
        assert!(
            r.message()
                .contains(&format!("{method} with a session cookie")),
            "{}",
            r.message()
        );
    }
}

/// Origins listed with `trusted_origins` pass, whatever the case and a trailing slash in
/// the configuration; nothing else does.
#[tokio::test]
async fn trusted_origins_pass() {
    for configured in [
        "https://app.example",
        "https://app.example/",
        "HTTPS://APP.example/",
        "https://app.example:443",
    ] {
        let svc = || pages(sessions().trusted_origins([configured, "https://admin.example"]));
        for origin in ["https://app.example", "https://admin.example", SELF_ORIGIN] {
            let out = send(svc(), with_cookie(Method::POST, &[("origin", origin)])).await;
            assert_eq!(out.status, 200, "{configured} / {origin}: {}", out.text());
        }
        for origin in [
            "https://app.example:8443",
            "http://app.example",
            "https://evil.app.example",
            "https://app.example.evil",
            EVIL,
        ] {
            let out = send(svc(), with_cookie(Method::POST, &[("origin", origin)])).await;
            let r = refused_cross_site(&out, DetailMode::Production);
            // The log says what is trusted, so a person sees what to add.
            assert!(
                r.message()
                    .contains("trusted: https://app.example https://admin.example"),
                "{configured} / {origin}: {}",
                r.message()
            );
        }
    }
}

/// Other schemes are not ambient in a cross-site request a page can make (Bearer, API
/// key) or are not checked (Basic): untouched, even cross-site. So are requests without a
/// session: they fail authentication instead.
#[tokio::test]
async fn origin_check_applies_only_to_the_session_cookie() {
    let svc = || {
        site(
            base()
                .bearer(jwt())
                .basic(BasicAuthenticator::new(check_password))
                .api_key(ApiKeyAuthenticator::new(check_key))
                .session(sessions()),
        )
    };
    let token = bearer(&valid_token());
    let alice = basic("alice", ALICE_PW);
    let cookie = sid(SESS_VALID);
    let cases: [(Headers, &str, &str); 4] = [
        (&[("authorization", &token)], "alice", "Bearer"),
        (&[("authorization", &alice)], "alice", "Basic"),
        (&[("x-api-key", KEY_GOOD)], "key-owner", "ApiKey"),
        // The session cookie is there too, but the Bearer token authenticated.
        (
            &[("authorization", &token), ("cookie", &cookie)],
            "alice",
            "Bearer",
        ),
    ];
    for (credential, id, scheme) in cases {
        let mut headers = vec![
            ("host", HOST),
            ("origin", EVIL),
            ("sec-fetch-site", "cross-site"),
        ];
        headers.extend_from_slice(credential);
        let out = send(svc(), req(Method::POST, "/session", &headers)).await;
        assert_eq!(out.status, 200, "{scheme}: {}", out.text());
        assert_eq!(out.json()["id"], id);
        assert_eq!(out.json()["scheme"], scheme);
    }

    // The session cookie alone on the same layer is checked.
    let out = send(svc(), with_cookie(Method::POST, &[("origin", EVIL)])).await;
    refused_cross_site(&out, DetailMode::Production);

    // No cookie, or an expired one, cross-site: the authentication failure, not a 403.
    let headers = [("host", HOST), ("origin", EVIL)];
    let out = send(pages(sessions()), req(Method::POST, "/session", &headers)).await;
    session_401(&out, "credentials_missing");
    let expired = sid(SESS_EXPIRED);
    let headers = [("host", HOST), ("origin", EVIL), ("cookie", &expired)];
    let out = send(pages(sessions()), req(Method::POST, "/session", &headers)).await;
    session_401(&out, "session_expired");
}

/// `without_origin_check()` lets cross-site unsafe requests through (the application
/// checks CSRF tokens itself).
#[tokio::test]
async fn without_origin_check_lets_cross_site_requests_through() {
    let svc = || pages(sessions().without_origin_check());
    for headers in [
        &[("origin", EVIL)][..],
        &[("origin", "null")],
        &[("sec-fetch-site", "cross-site")],
    ] {
        let out = send(svc(), with_cookie(Method::POST, headers)).await;
        assert_eq!(out.ok(), json!({ "id": "alice", "scheme": "Cookie" }));
    }
}

/// What the refusal looks like: problem body (the precise reason and the origin in
/// verbose mode, the generic sentence in production), no challenge, `no-store`, the
/// expose header, and a WARN event with `check=origin` whose message names the origin,
/// this site and the trusted list.
#[tokio::test]
async fn cross_site_refusal_shape() {
    let svc = site(base().verbose().session(sessions()));
    let out = send(svc, with_cookie(Method::POST, &[("origin", EVIL)])).await;
    let r = refused_cross_site(&out, DetailMode::Verbose);
    assert_eq!(out.header("cache-control"), Some("no-store"));
    assert_eq!(r.problem["reason"], "cross_site_request");
    assert_eq!(r.problem["status"], 403);
    let detail = r.detail();
    assert!(detail.contains(EVIL), "{detail}");
    assert!(
        r.problem["hint"]
            .as_str()
            .unwrap()
            .contains("trusted_origins"),
        "{}",
        r.problem
    );
    assert_eq!(r.event.level, Level::WARN);
    assert_eq!(r.event.field("check"), "origin");
    assert_eq!(
        r.message(),
        "cross_site_request: POST with a session cookie from origin https://evil.example \
         (this site's Host is example.test; trusted: none)"
    );
    assert_eq!(r.event.field("method"), "POST");
    assert_eq!(r.event.field("path"), "/session");

    // Production: the generic sentence, the reason still visible (it is not a secret).
    let out = send(
        pages(sessions()),
        with_cookie(Method::DELETE, &[("sec-fetch-site", "same-site")]),
    )
    .await;
    let r = refused_cross_site(&out, DetailMode::Production);
    assert_eq!(r.problem["reason"], "cross_site_request");
    assert_eq!(
        r.message(),
        "cross_site_request: DELETE with a session cookie and Sec-Fetch-Site same-site \
         (and no Origin)"
    );
}

/// Hostile `Origin` and `Sec-Fetch-Site` values are capped and escaped in the log and in
/// the verbose body, and never break either.
#[tokio::test]
async fn hostile_origins_are_capped_and_escaped() {
    let long = format!("https://{}.example", "a".repeat(10_000));
    let cases: Vec<(&str, HeaderValue, &str)> = vec![
        ("very long", hv(&long), "…"),
        ("not UTF-8", hv(b"https://\xff\xfe.example"), "\\u{fffd}"),
        (
            "a quote",
            hv("https://a\"b.example"),
            "https://a\\\"b.example",
        ),
        (
            "a backslash",
            hv("https://a\\b.example"),
            "https://a\\\\b.example",
        ),
        (
            "unicode",
            hv("https://ex\u{e4}mple.test".as_bytes()),
            "https://ex\\u{e4}mple.test",
        ),
        (
            "bidi override",
            hv("https://\u{202e}elpmaxe.test".as_bytes()),
            "\\u{202e}",
        ),
        ("a tab", hv("https://a\tb.example"), "\\t"),
    ];
    let svc = || site(base().verbose().session(sessions()));
    for (label, origin, shown) in cases {
        let cookie = sid(SESS_VALID);
        let headers = vec![
            ("host", hv(HOST)),
            ("cookie", hv(&cookie)),
            ("origin", origin),
        ];
        let out = send(svc(), request(Method::POST, "/session", headers)).await;
        let r = refused_cross_site(&out, DetailMode::Verbose);
        let message = r.message();
        assert!(message.contains(shown), "{label}: {message}");
        assert!(
            message.chars().count() <= 520,
            "{label}: message not capped ({} chars)",
            message.chars().count()
        );
        assert!(
            message.chars().all(|c| c.is_ascii() || c == '…'),
            "{label}: {message}"
        );
        assert!(r.detail().chars().count() <= 1024, "{label}");
    }

    // A hostile Sec-Fetch-Site.
    let weird = format!("cross-site\"{}", "x".repeat(500));
    let out = send(
        svc(),
        with_cookie(Method::POST, &[("sec-fetch-site", &weird)]),
    )
    .await;
    let r = refused_cross_site(&out, DetailMode::Verbose);
    assert!(r.message().contains("cross-site\\\""), "{}", r.message());
    assert!(r.message().contains('…'), "{}", r.message());
}

// =======================================================================================
// Access-Control-Expose-Headers
// =======================================================================================

/// A bare 401 from the wrapped service (no challenge).
async fn bare_401() -> Response {
    StatusCode::UNAUTHORIZED.into_response()
}

/// Every 400, 401 and 403 the layer renders or corrects exposes its challenge and request
/// id to scripts on other origins; a success does not carry it.
#[tokio::test]
async fn refusals_expose_the_challenge_and_the_request_id() {
    let auth = bearer(&valid_token());
    let expired = bearer(&expired_token());
    let cookie = sid(SESS_VALID);
    let bare = || Router::new().route("/r", routing::get(bare_401));
    let cases: Vec<(&str, Router, Request<Body>, u16)> = vec![
        (
            "credentials_missing",
            site(base().bearer(jwt())),
            get("/feed", &[]),
            401,
        ),
        (
            "token_expired",
            site(base().bearer(jwt())),
            get("/feed", &[("authorization", &expired)]),
            401,
        ),
        (
            "insufficient_scope",
            site(base().bearer(jwt())),
            get("/admin", &[("authorization", &auth)]),
            403,
        ),
        (
            "account_disabled",
            site(
                base()
                    .session(sessions())
                    .account_status(|_: &Principal| async { Ok(AccountStatus::Disabled) }),
            ),
            get("/session", &[("cookie", &cookie)]),
            403,
        ),
        (
            "cross_site_request",
            pages(sessions()),
            with_cookie(Method::POST, &[("origin", EVIL)]),
            403,
        ),
        // A 400 carries a challenge too (`invalid_request`): a script must read it.
        (
            "authorization_malformed",
            site(base().bearer(jwt())),
            get("/feed", &[("authorization", "Bearer a b")]),
            400,
        ),
        (
            "credentials_conflict",
            site(base().bearer(jwt())),
            get(
                &format!("/feed?access_token={}", valid_token()),
                &[("authorization", &auth)],
            ),
            400,
        ),
        (
            "upstream_challenge_missing",
            bare().layer(AuthDiagnostics::new()),
            get("/r", &[]),
            401,
        ),
        (
            "upstream_unauthorized_after_authentication",
            bare().layer(base().bearer(jwt())),
            get("/r", &[("authorization", &auth)]),
            403,
        ),
    ];
    for (reason, svc, request, status) in cases {
        let out = send(svc, request).await;
        assert_eq!(out.status, status, "{reason}: {}", out.text());
        assert_eq!(out.event().field("reason"), reason);
        assert_eq!(
            out.header_all("access-control-expose-headers"),
            [EXPOSE],
            "{reason}"
        );
    }

    // A success: no expose header from the layer.
    let out = send(
        site(base().bearer(jwt())),
        get("/feed", &[("authorization", &auth)]),
    )
    .await;
    out.ok();
    assert_eq!(out.header("access-control-expose-headers"), None);
}

// =======================================================================================
// CORS inside the layer
// =======================================================================================

/// The `cors_inside_auth` WARN events among `events`.
fn cors_warnings(events: &[Captured]) -> Vec<&Captured> {
    events
        .iter()
        .filter(|e| e.get("hints") == Some("cors_inside_auth"))
        .collect()
}

/// Sends `requests` in order through clones of `svc`, returning every outcome.
async fn send_all(svc: Router, requests: Vec<Request<Body>>) -> Vec<Outcome> {
    let mut outs = Vec::new();
    for r in requests {
        outs.push(send(svc.clone(), r).await);
    }
    outs
}

/// Requests to `/feed` with `Origin: https://app.example`, a valid token when `auth`.
fn cross_origin(auth: bool) -> Request<Body> {
    let token = bearer(&valid_token());
    let mut headers = vec![("origin", "https://app.example")];
    if auth {
        headers.push(("authorization", token.as_str()));
    }
    get("/feed", &headers)
}

/// tower-http's CorsLayer inside the auth layer: the layer's own 401 goes out without
/// CORS headers (the problem), and the layer says so once, at WARN, the first time the
/// wrapped service answers a cross-origin request with CORS headers; never again.
#[tokio::test]
async fn cors_inside_the_layer_warns_once() {
    let svc = Router::new()
        .route("/feed", routing::get(who))
        .layer(CorsLayer::new().allow_origin(Any))
        .layer(base().bearer(jwt()));
    let outs = send_all(
        svc,
        vec![
            // Refused by the layer: CorsLayer never sees it; no warning yet.
            cross_origin(false),
            // No Origin: not a cross-origin request, whatever CorsLayer adds.
            get("/feed", &[("authorization", &bearer(&valid_token()))]),
            cross_origin(true),
            cross_origin(true),
            cross_origin(true),
        ],
    )
    .await;
    assert_eq!(outs[0].status, 401);
    assert_eq!(outs[0].header("access-control-allow-origin"), None);
    assert!(cors_warnings(&outs[0].events).is_empty());
    assert!(
        cors_warnings(&outs[1].events).is_empty(),
        "{:#?}",
        outs[1].events
    );
    let warned = cors_warnings(&outs[2].events);
    assert_eq!(warned.len(), 1, "{:#?}", outs[2].events);
    let w = warned[0];
    assert_eq!(w.level, Level::WARN);
    assert_eq!(w.target, "auth_diagnostics");
    assert_eq!(
        w.field("request_id"),
        outs[2].header("x-request-id").unwrap()
    );
    assert!(w.field("message").contains("CorsLayer"), "{}", w.line());
    for out in &outs[2..] {
        assert_eq!(out.status, 200);
        assert_eq!(out.header("access-control-allow-origin"), Some("*"));
    }
    let all: Vec<Captured> = outs.iter().flat_map(|o| o.events.clone()).collect();
    assert_eq!(cors_warnings(&all).len(), 1, "{all:#?}");
}

/// A handler that writes `Access-Control-Allow-Origin` itself counts the same; a second,
/// separately built layer warns once of its own.
#[tokio::test]
async fn cors_header_written_by_a_handler_warns_once_per_layer() {
    let app = |layer: AuthDiagnostics| {
        Router::new()
            .route(
                "/feed",
                routing::get(|| async {
                    (
                        [("access-control-allow-origin", "https://app.example")],
                        "ok",
                    )
                }),
            )
            .layer(layer)
    };
    let first = app(base().bearer(jwt()));
    let second = app(base().bearer(jwt()));
    let mut events = Vec::new();
    for svc in [&first, &second, &first, &second] {
        let out = send(svc.clone(), cross_origin(true)).await;
        assert_eq!(out.status, 200);
        events.push(cors_warnings(&out.events).len());
    }
    assert_eq!(events, [1, 1, 0, 0]);
}

/// CorsLayer outside the auth layer, as it should be: no warning, and the layer's 401
/// carries the CORS headers and exposes its challenge, so a script can read it.
#[tokio::test]
async fn cors_outside_the_layer_does_not_warn() {
    let svc = Router::new()
        .route("/feed", routing::get(who))
        .layer(base().bearer(jwt()))
        .layer(CorsLayer::new().allow_origin(HeaderValue::from_static("https://app.example")));
    let outs = send_all(
        svc,
        vec![cross_origin(false), cross_origin(true), cross_origin(true)],
    )
    .await;
    let all: Vec<Captured> = outs.iter().flat_map(|o| o.events.clone()).collect();
    assert!(cors_warnings(&all).is_empty(), "{all:#?}");
    let refused = &outs[0];
    refused.check(&expect("credentials_missing"));
    assert_eq!(
        refused.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        refused.header("access-control-expose-headers"),
        Some(EXPOSE)
    );
    assert_eq!(outs[1].status, 200);

    // The same with a hand-written header added outside (`map_response`).
    let svc = Router::new()
        .route("/feed", routing::get(who))
        .layer(base().bearer(jwt()))
        .layer(axum::middleware::map_response(
            |mut r: Response| async move {
                r.headers_mut()
                    .insert("access-control-allow-origin", HeaderValue::from_static("*"));
                r
            },
        ));
    let outs = send_all(svc, vec![cross_origin(true), cross_origin(true)]).await;
    for out in &outs {
        assert_eq!(out.status, 200);
        assert!(cors_warnings(&out.events).is_empty(), "{:#?}", out.events);
    }
}

/// A layer without schemes (it only watches) does not warn: its CORS placement does not
/// hide any refusal of its own.
#[tokio::test]
async fn cors_inside_a_layer_without_schemes_does_not_warn() {
    let svc = Router::new()
        .route("/feed", routing::get(who))
        .layer(CorsLayer::new().allow_origin(Any))
        .layer(AuthDiagnostics::new());
    let outs = send_all(svc, vec![cross_origin(false), cross_origin(true)]).await;
    for out in &outs {
        assert_eq!(out.status, 200);
        assert!(out.events.is_empty(), "{:#?}", out.events);
    }
}
