//! Basic (RFC 7617), API keys, session cookies, several schemes on one route, the
//! account-status hook, 403 `forbidden`, production collapsing, `Cache-Control: private`,
//! the demo's /basic, /key, /session and /any, and hostile inputs.
mod common;
use common::*;

use auth_diagnostics::api_key::{ApiKey, ApiKeyAuthenticator};
use auth_diagnostics::authz::{AccountStatus, RequireScope};
use auth_diagnostics::basic::{BasicAuthenticator, BasicCredentials};
use auth_diagnostics::failure::AuthFailure;
use auth_diagnostics::session::{SessionAuthenticator, SessionCookie};
use auth_diagnostics::verify::AuthResult;
use auth_diagnostics::Principal;
use axum::body::Body;
use axum::Router;
use http::Request;
use serde_json::json;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const MODES: [DetailMode; 2] = [DetailMode::Verbose, DetailMode::Production];

// The challenges, verbatim: one field line each.
const BASIC: &str = r#"Basic realm="api", charset="UTF-8""#;
const BEARER: &str = r#"Bearer realm="api""#;
const KEY: &str = r#"ApiKey realm="api", header="X-API-Key""#;
const KEY_QUERY: &str = r#"ApiKey realm="api", header="X-API-Key", query="api_key""#;
const COOKIE: &str = r#"Cookie realm="api", name="sid""#;
const DEMO_BASIC: &str = r#"Basic realm="demo", charset="UTF-8""#;
const DEMO_BEARER: &str = r#"Bearer realm="demo""#;
const DEMO_KEY: &str = r#"ApiKey realm="demo", header="X-API-Key""#;
const DEMO_COOKIE: &str = r#"Cookie realm="demo", name="demo_session""#;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// [`Outcome::check`] with `lines` the challenge field lines verbatim, plus what `check`
/// leaves to this suite: the title as the spec words it, and the method, the path without
/// its query and the request id that every event carries.
#[track_caller]
fn rejected(out: &Outcome, e: Expect, lines: &[&'static str]) -> Checked {
    let schemes: Vec<&'static str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    let r = out.check(&e.schemes(&schemes));
    assert_eq!(out.header_all("www-authenticate"), lines);
    let client = r.problem["reason"].as_str().unwrap();
    assert_eq!(r.problem["title"], title(client), "{}", r.problem);
    assert_eq!(r.event.field("method"), "GET");
    assert!(!r.event.field("path").contains('?'), "{}", r.event.line());
    assert_eq!(
        Some(r.event.field("request_id")),
        out.header("x-request-id")
    );
    r
}

/// The problem titles, from the spec.
#[track_caller]
fn title(reason: &str) -> &'static str {
    match reason {
        "credentials_missing" => "Authentication required",
        "credentials_invalid" => "Invalid credentials",
        "credentials_wrong_location" => "Credentials in the wrong place",
        "credentials_conflict" => "More than one credential",
        "basic_malformed" => "Malformed Basic credentials",
        "basic_user_unknown" => "Unknown user",
        "basic_password_mismatch" => "Wrong password",
        "api_key_unknown" => "Unknown API key",
        "api_key_revoked" => "API key revoked",
        "session_invalid" => "Invalid session",
        "session_expired" => "Session expired",
        "account_disabled" => "Account disabled",
        "account_locked" => "Account locked",
        "forbidden" => "Forbidden",
        "insufficient_scope" => "Insufficient scope",
        "authenticator_unavailable" => "Authentication unavailable",
        other => panic!("no title for {other}"),
    }
}

/// `e` about a credential in `Authorization` on a Basic route.
fn in_basic(e: Expect) -> Expect {
    e.field("location", "header:authorization")
        .field("scheme_expected", "Basic")
}

/// `e` about a key in `X-API-Key`.
fn in_key(e: Expect) -> Expect {
    e.field("location", "header:x-api-key")
        .field("scheme_expected", "X-API-Key header")
}

/// `e` about the cookie `sid`.
fn in_sid(e: Expect) -> Expect {
    e.field("location", "cookie:sid")
        .field("scheme_expected", "cookie sid")
}

/// The event's fingerprint, which must be there: a short hash prefix.
#[track_caller]
fn fp(e: &Captured) -> String {
    let fp = e.field("fingerprint");
    assert!(
        fp.len() == 12 && fp.bytes().all(|b| b.is_ascii_hexdigit()),
        "fingerprint {fp:?}"
    );
    fp.to_owned()
}

/// The `user` field of an unknown user: a fingerprint, never the name itself.
#[track_caller]
fn assert_unverified_user(e: &Captured, name: &str) {
    let user = e.field("user");
    assert!(user.starts_with("<unverified user fp:"), "{user}");
    assert!(!user.contains(name), "{user}");
}

/// The `user` field: the name of a known user, only a fingerprint of an unknown one.
#[track_caller]
fn assert_user(e: &Captured, name: &str) {
    if e.field("reason") == "basic_user_unknown" {
        assert_unverified_user(e, name);
    } else {
        assert_eq!(e.field("user"), name);
    }
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
    let body = out.text();
    assert_eq!(
        body.matches(&rid).count(),
        1,
        "the request id is in the body once"
    );
    (out.status, headers, body.replace(&rid, "<request-id>"))
}

/// Two answers a client cannot tell apart: the same but for the request id.
#[track_caller]
fn assert_indistinguishable(a: &Outcome, b: &Outcome) {
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
    let (mut ja, mut jb) = (a.json(), b.json());
    ja.as_object_mut().unwrap().remove("request_id");
    jb.as_object_mut().unwrap().remove("request_id");
    assert_eq!(ja, jb);
    assert_eq!(normalized(a), normalized(b));
}

/// `verify`, counting its calls in `calls`.
fn counted<C: 'static, F, Fut>(
    calls: &Arc<AtomicUsize>,
    verify: F,
) -> impl Fn(C) -> Fut + Send + Sync + 'static
where
    F: Fn(C) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = AuthResult> + Send + 'static,
{
    let calls = calls.clone();
    move |c| {
        calls.fetch_add(1, Ordering::SeqCst);
        verify(c)
    }
}

/// GET `uri` with Basic credentials.
fn basic_req(uri: &str, user: &str, password: &str) -> Request<Body> {
    get(uri, &[("authorization", &basic(user, password))])
}

/// GET `/r` with the cookie `sid`.
fn sid(value: &str) -> Request<Body> {
    get("/r", &[("cookie", &format!("sid={value}"))])
}

/// [`basic_app`] with the account-status hook.
fn hooked_basic(mode: DetailMode) -> Router {
    scheme_app(
        layer(mode)
            .basic(BasicAuthenticator::new(check_password))
            .account_status(account),
    )
}

/// Basic, API key and session on one route, the key or the session configured first.
fn multi_app(key_first: bool) -> Router {
    let l = layer(DetailMode::Verbose).basic(BasicAuthenticator::new(check_password));
    let (key, session) = (
        ApiKeyAuthenticator::new(check_key),
        SessionAuthenticator::new("sid", check_session),
    );
    scheme_app(if key_first {
        l.api_key(key).session(session)
    } else {
        l.session(session).api_key(key)
    })
}

/// `/admin`, which requires scope `admin`, behind `l`.
fn admin_app(l: AuthDiagnostics) -> Router {
    let admin = axum::routing::get(|| async { "admin" });
    Router::new()
        .route("/admin", admin.route_layer(RequireScope::new(["admin"])))
        .layer(l)
}

// ---------------------------------------------------------------------------------------
// Basic
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn basic_valid_reaches_the_handler_without_cache_private() {
    let token = b64(format!("alice:{ALICE_PW}").as_bytes());
    // The scheme name is case-insensitive.
    for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
        let value = format!("{scheme} {token}");
        let out = send(
            basic_app(DetailMode::Verbose),
            get("/r", &[("authorization", &value)]),
        )
        .await;
        assert_eq!(
            out.ok(),
            json!({ "id": "alice", "scheme": "Basic" }),
            "{scheme}"
        );
        assert_eq!(
            out.header("cache-control"),
            None,
            "Basic answers are not private"
        );
    }
}

#[tokio::test]
async fn basic_missing_credentials() {
    let out = send(basic_app(DetailMode::Verbose), get("/r", &[])).await;
    let e = expect("credentials_missing").verbose();
    rejected(&out, e.field("scheme_expected", "Basic"), &[BASIC]);
}

/// Unknown user and wrong password: told apart in verbose detail and in the log, one
/// indistinguishable `credentials_invalid` to the client in production.
#[tokio::test]
async fn basic_user_unknown_and_password_mismatch() {
    for mode in MODES {
        let mut outs = Vec::new();
        for (user, pw, reason) in [
            ("bob", "some-password", "basic_user_unknown"),
            ("alice", "not-the-password", "basic_password_mismatch"),
        ] {
            let out = send(basic_app(mode), basic_req("/r", user, pw)).await;
            let e = in_basic(expect(reason).mode(mode)).field("path", "/r");
            let r = rejected(&out, e, &[BASIC]);
            assert_user(&r.event, user);
            fp(&r.event);
            assert_no_secrets(&out.events, &[pw.to_owned()]);
            if mode == DetailMode::Production {
                assert_eq!(r.problem["detail"], "The credentials are not valid.");
                let body = out.text();
                assert!(!body.contains("alice") && !body.contains("bob"), "{body}");
            }
            outs.push(out);
        }
        if mode == DetailMode::Production {
            assert_indistinguishable(&outs[0], &outs[1]);
        }
    }
}

/// A Basic request with `uri`, `alice`'s password and, when given, the peer address axum's
/// `ConnectInfo` reports.
fn basic_from(uri: &str, peer: Option<&str>) -> Request<Body> {
    let mut req = basic_req(uri, "alice", ALICE_PW);
    if let Some(peer) = peer {
        let addr: std::net::SocketAddr = peer.parse().unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(addr));
    }
    req
}

/// The events of `out` with the hint `basic_over_plaintext`.
fn plaintext_hints(out: &Outcome) -> Vec<&Captured> {
    out.events
        .iter()
        .filter(|e| e.get("hints") == Some("basic_over_plaintext"))
        .collect()
}

/// R-26: Basic "SHOULD NOT be used" without HTTPS. A password that arrived over plain
/// `http` from a peer that is not this machine is logged once per layer, at WARN, with the
/// hint `basic_over_plaintext` and nothing of the credential; the answer is unchanged.
/// Here plain `http` is certain from the request's own URI (HTTP/2's `:scheme`, an
/// absolute-form target); the peer comes from axum's `ConnectInfo<SocketAddr>`. The
/// ordinary HTTP/1.1 case (no scheme) is
/// `basic_over_http1_from_another_host_not_known_to_be_tls_logs_a_hint`.
#[tokio::test]
async fn basic_over_plaintext_from_another_host_logs_a_hint() {
    let app = basic_app(DetailMode::Production);
    let out = send(
        app.clone(),
        basic_from("http://api.example/r", Some("203.0.113.7:50000")),
    )
    .await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json(), json!({ "id": "alice", "scheme": "Basic" }));
    let hints = plaintext_hints(&out);
    assert_eq!(hints.len(), 1, "{:#?}", out.events);
    let e = hints[0];
    assert_eq!(e.level, Level::WARN, "{}", e.line());
    assert_eq!(e.field("request_id"), out.header("x-request-id").unwrap());
    assert_eq!(e.field("method"), "GET");
    assert_eq!(e.field("path"), "/r");
    assert!(e.field("message").contains("https"), "{}", e.line());
    assert!(!e.line().contains(ALICE_PW) && !e.line().contains("203.0.113.7"));

    // A refused password is answered as always, and the layer said it once already.
    let wrong = {
        let mut r = basic_req("http://api.example/r", "alice", "nope");
        r.extensions_mut().insert(axum::extract::ConnectInfo(
            "203.0.113.7:50001".parse::<std::net::SocketAddr>().unwrap(),
        ));
        r
    };
    let out = send(app, wrong).await;
    assert_eq!(out.status, 401);
    assert!(plaintext_hints(&out).is_empty(), "once: {:#?}", out.events);

    // A fresh layer, a refused password: the hint comes with the failure.
    let out = send(basic_app(DetailMode::Production), {
        let mut r = basic_req("http://api.example/r", "alice", "nope");
        r.extensions_mut().insert(axum::extract::ConnectInfo(
            "[2001:db8::1]:443".parse::<std::net::SocketAddr>().unwrap(),
        ));
        r
    })
    .await;
    assert_eq!(out.status, 401);
    assert_eq!(plaintext_hints(&out).len(), 1, "{:#?}", out.events);
}

/// Never a hint on loopback, over https, or where the peer is unknown.
#[tokio::test]
async fn basic_without_a_known_plaintext_remote_peer_logs_no_hint() {
    for (what, uri, peer, headers) in [
        (
            "loopback v4",
            "http://api.example/r",
            Some("127.0.0.1:50000"),
            vec![],
        ),
        (
            "loopback v4, other",
            "http://api.example/r",
            Some("127.8.9.10:1"),
            vec![],
        ),
        (
            "loopback v6",
            "http://api.example/r",
            Some("[::1]:50000"),
            vec![],
        ),
        (
            "v4-mapped loopback",
            "http://api.example/r",
            Some("[::ffff:127.0.0.1]:5"),
            vec![],
        ),
        (
            "https",
            "https://api.example/r",
            Some("203.0.113.7:50000"),
            vec![],
        ),
        (
            "loopback v4, HTTP/1.1 origin-form",
            "/r",
            Some("127.0.0.1:50000"),
            vec![],
        ),
        (
            "loopback v6, origin-form",
            "/r",
            Some("[::1]:50000"),
            vec![],
        ),
        (
            "loopback, X-Forwarded-Proto: http cannot cause it",
            "/r",
            Some("127.0.0.1:50000"),
            vec![("x-forwarded-proto", "http")],
        ),
        ("peer unknown", "http://api.example/r", None, vec![]),
        ("peer unknown, origin-form", "/r", None, vec![]),
    ] {
        let mut req = basic_from(uri, peer);
        for (k, v) in headers {
            req.headers_mut().insert(k, hv(v));
        }
        let out = send(basic_app(DetailMode::Production), req).await;
        assert_eq!(out.status, 200, "{what}");
        assert!(
            plaintext_hints(&out).is_empty(),
            "{what}: {:#?}",
            out.events
        );
    }
    // Other schemes over plain http: not this hint.
    let mut req = get("http://api.example/r", &[("x-api-key", KEY_GOOD)]);
    req.extensions_mut().insert(axum::extract::ConnectInfo(
        "203.0.113.7:50000".parse::<std::net::SocketAddr>().unwrap(),
    ));
    let out = send(key_app(DetailMode::Production), req).await;
    assert_eq!(out.status, 200);
    assert!(plaintext_hints(&out).is_empty(), "{:#?}", out.events);
}

/// R-26 for ordinary traffic: an HTTP/1.1 request (origin-form target, no scheme) from a
/// peer that is not this machine, with no sign of https in front, is not known to be TLS,
/// so Basic on it is logged once, at WARN, with the hint `basic_over_plaintext`, the call
/// that silences it for a server that ends TLS itself, and neither the credential nor the
/// peer. `X-Forwarded-Proto: http` or a value that is not https changes nothing.
#[tokio::test]
async fn basic_over_http1_from_another_host_not_known_to_be_tls_logs_a_hint() {
    for (what, peer, headers) in [
        ("no forwarding headers", "203.0.113.7:50000", vec![]),
        ("v6 peer", "[2001:db8::1]:443", vec![]),
        ("v4-mapped peer", "[::ffff:203.0.113.7]:5", vec![]),
        (
            "X-Forwarded-Proto: http",
            "203.0.113.7:50000",
            vec![("x-forwarded-proto", hv("http"))],
        ),
        (
            "https only as a substring",
            "203.0.113.7:50000",
            vec![
                ("x-forwarded-proto", hv("not-https")),
                ("forwarded", hv("for=192.0.2.1;host=https")),
                ("x-forwarded-ssl", hv("off")),
                ("front-end-https", hv("off")),
            ],
        ),
        (
            "not UTF-8",
            "203.0.113.7:50000",
            vec![("x-forwarded-proto", hv(b"https\xff"))],
        ),
        (
            "https only past the first 1024 bytes of a value",
            "203.0.113.7:50000",
            vec![(
                "x-forwarded-proto",
                hv(format!("{}https", "http, ".repeat(200))),
            )],
        ),
        (
            "https only past the first 8 field lines",
            "203.0.113.7:50000",
            [
                vec![("x-forwarded-proto", hv("http")); 8],
                vec![("x-forwarded-proto", hv("https"))],
            ]
            .concat(),
        ),
    ] {
        let mut req = basic_from("/r", Some(peer));
        for (k, v) in headers {
            req.headers_mut().append(k, v);
        }
        let out = send(basic_app(DetailMode::Production), req).await;
        assert_eq!(out.status, 200, "{what}");
        assert_eq!(out.json(), json!({ "id": "alice", "scheme": "Basic" }));
        let hints = plaintext_hints(&out);
        assert_eq!(hints.len(), 1, "{what}: {:#?}", out.events);
        let e = hints[0];
        assert_eq!(e.level, Level::WARN, "{}", e.line());
        assert_eq!(e.field("request_id"), out.header("x-request-id").unwrap());
        assert_eq!(e.field("path"), "/r");
        let message = e.field("message");
        assert!(message.contains("https"), "{}", e.line());
        assert!(message.contains("served_over_tls()"), "{}", e.line());
        assert!(message.contains("X-Forwarded-Proto: https"), "{}", e.line());
        let host = peer.trim_start_matches("[::ffff:").trim_start_matches('[');
        let host = &host[..host.rfind(':').unwrap()].trim_end_matches(']');
        assert!(!e.line().contains(ALICE_PW), "{}", e.line());
        assert!(!e.line().contains(host), "{what}: {}", e.line());
        assert_no_secrets(
            &out.events,
            &[ALICE_PW.to_owned(), basic("alice", ALICE_PW)],
        );
    }

    // Once per layer: a second request, refused, through the same layer says nothing.
    let app = basic_app(DetailMode::Production);
    let first = send(app.clone(), basic_from("/r", Some("203.0.113.7:1"))).await;
    assert_eq!(plaintext_hints(&first).len(), 1, "{:#?}", first.events);
    let mut wrong = basic_req("/r", "alice", "nope");
    wrong.extensions_mut().insert(axum::extract::ConnectInfo(
        "203.0.113.8:2".parse::<std::net::SocketAddr>().unwrap(),
    ));
    let out = send(app, wrong).await;
    assert_eq!(out.status, 401);
    assert!(plaintext_hints(&out).is_empty(), "once: {:#?}", out.events);
}

/// A sign of https in front (`X-Forwarded-Proto: https`, `Forwarded: proto=https`,
/// `X-Forwarded-Ssl: on`, `Front-End-Https: on`) silences the hint for a request whose URI
/// names no scheme; it never silences a URI that says `http`, which is certain.
#[tokio::test]
async fn basic_with_a_sign_of_https_in_front_logs_no_hint() {
    for (k, v) in [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-proto", "HTTPS"),
        ("x-forwarded-proto", "https, http"),
        ("forwarded", "proto=https"),
        ("forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43"),
        (
            "forwarded",
            "for=\"[2001:db8:cafe::17]:4711\"; Proto=\"https\"",
        ),
        (
            "forwarded",
            "for=192.0.2.1;proto=http, for=198.51.100.2;proto=https",
        ),
        ("x-forwarded-ssl", "on"),
        ("x-forwarded-ssl", "ON"),
        ("front-end-https", "on"),
    ] {
        let mut req = basic_from("/r", Some("203.0.113.7:50000"));
        req.headers_mut().append(k, hv(v));
        let out = send(basic_app(DetailMode::Production), req).await;
        assert_eq!(out.status, 200, "{k}: {v}");
        assert!(
            plaintext_hints(&out).is_empty(),
            "{k}: {v}: {:#?}",
            out.events
        );

        // The URI says http: a header cannot make that TLS.
        let mut req = basic_from("http://api.example/r", Some("203.0.113.7:50000"));
        req.headers_mut().append(k, hv(v));
        let out = send(basic_app(DetailMode::Production), req).await;
        assert_eq!(out.status, 200, "{k}: {v}");
        assert_eq!(
            plaintext_hints(&out).len(),
            1,
            "{k}: {v}: {:#?}",
            out.events
        );
    }
}

/// An application that ends TLS itself (axum-server with rustls, say) says so with
/// `AuthDiagnostics::served_over_tls()`, called before or after the schemes: then Basic
/// from another host is never hinted about, whatever the URI says.
#[tokio::test]
async fn basic_served_over_tls_logs_no_hint() {
    let check = || BasicAuthenticator::new(check_password);
    for (what, layer) in [
        (
            "before .basic()",
            layer(DetailMode::Production)
                .served_over_tls()
                .basic(check()),
        ),
        (
            "after .basic()",
            layer(DetailMode::Production)
                .basic(check())
                .served_over_tls(),
        ),
    ] {
        let app = scheme_app(layer);
        for uri in ["/r", "http://api.example/r"] {
            let out = send(app.clone(), basic_from(uri, Some("203.0.113.7:50000"))).await;
            assert_eq!(out.status, 200, "{what} {uri}");
            assert!(
                plaintext_hints(&out).is_empty(),
                "{what} {uri}: {:#?}",
                out.events
            );
        }
    }
}

/// Over real TCP with `axum::serve(…, into_make_service_with_connect_info::<SocketAddr>())`
/// from 127.0.0.1: an ordinary HTTP/1.1 request, a loopback peer, no hint.
#[tokio::test]
async fn basic_over_real_tcp_from_loopback_logs_no_hint() {
    let (capture, _guard) = Capture::install();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The handler answers with the peer the layer saw in `ConnectInfo`.
    let peer = |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<
        std::net::SocketAddr,
    >| async move { peer.ip().to_string() };
    let app = Router::new()
        .route("/r", axum::routing::get(peer))
        .layer(layer(DetailMode::Production).basic(BasicAuthenticator::new(check_password)));
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    let client = reqwest::Client::new();
    for password in [ALICE_PW, "nope"] {
        let res = client
            .get(format!("http://{addr}/r"))
            .basic_auth("alice", Some(password))
            .send()
            .await
            .unwrap();
        if password == ALICE_PW {
            assert_eq!(res.status().as_u16(), 200);
            assert_eq!(res.text().await.unwrap(), "127.0.0.1");
        } else {
            assert_eq!(res.status().as_u16(), 401);
        }
    }
    server.abort();
    let events = capture.events();
    assert!(
        events.iter().any(|e| e.get("reason").is_some()),
        "the layer logged the refusal: {events:#?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| e.get("hints") == Some("basic_over_plaintext")),
        "{events:#?}"
    );
}

#[tokio::test]
async fn same_credential_same_fingerprint() {
    let mut fps = Vec::new();
    for pw in ["some-password", "some-password", "other-password"] {
        let out = send(
            basic_app(DetailMode::Production),
            basic_req("/r", "bob", pw),
        )
        .await;
        fps.push(fp(out.event()));
    }
    assert_eq!(fps[0], fps[1]);
    assert_ne!(fps[0], fps[2]);
}

/// RFC 7617 §2 vectors: (token68, user, password).
const RFC7617: [(&str, &str, &str); 3] = [
    ("QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "Aladdin", "open sesame"),
    ("dGVzdDoxMjPCow==", "test", "123£"),
    ("YTpiOmM6ZA==", "a", "b:c:d"),
];

/// What the verifier receives, through the layer.
#[tokio::test]
async fn rfc7617_vectors_through_the_layer() {
    assert_eq!(RFC7617[2].0, b64(b"a:b:c:d"));
    // An empty password is a password.
    let empty = b64(b"a:");
    for (token, user, password) in RFC7617.into_iter().chain([(empty.as_str(), "a", "")]) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let verify = move |c: BasicCredentials| {
            let pw = c.password.expose().to_owned();
            // The password never shows in Debug.
            if !pw.is_empty() {
                assert!(!format!("{c:?}").contains(&pw), "{c:?}");
            }
            seen2.lock().unwrap().push((c.user.clone(), pw));
            async move { Ok(Principal::new(c.user)) }
        };
        let svc = scheme_app(layer(DetailMode::Verbose).basic(BasicAuthenticator::new(verify)));
        let value = format!("Basic {token}");
        let out = send(svc, get("/r", &[("authorization", &value)])).await;
        assert_eq!(
            out.ok(),
            json!({ "id": user, "scheme": "Basic" }),
            "{token}"
        );
        let want = vec![(user.to_owned(), password.to_owned())];
        assert_eq!(*seen.lock().unwrap(), want, "{token}");
    }
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

#[tokio::test]
async fn malformed_basic_through_the_layer() {
    let mut vectors = malformed_vectors();
    vectors.push(("nothing after Basic", String::new()));
    vectors.push(("two values", format!("{} {}", b64(b"a:b"), b64(b"c:d"))));
    for mode in MODES {
        for (label, token) in &vectors {
            let calls = Arc::new(AtomicUsize::new(0));
            let verify = BasicAuthenticator::new(counted(&calls, check_password));
            let value = format!("Basic {token}").trim_end().to_owned();
            let out = send(
                scheme_app(layer(mode).basic(verify)),
                get("/r", &[("authorization", &value)]),
            )
            .await;
            assert_eq!(calls.load(Ordering::SeqCst), 0, "{label}: verifier called");
            // Nothing was decoded: no user.
            let e = in_basic(expect("basic_malformed").mode(mode)).no_field("user");
            let e = rejected(&out, e, &[BASIC]).event;
            if !token.is_empty() {
                fp(&e);
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
    let svc = scheme_app(layer(DetailMode::Production).basic(BasicAuthenticator::new(verify)));
    let out = send(svc, basic_req("/r", user, "hostile-pass-123")).await;
    assert_eq!(seen.lock().unwrap().as_deref(), Some(user));
    let e = rejected(&out, expect("basic_user_unknown"), &[BASIC]).event;
    // An unknown user name may be a secret typed into the wrong field: only its
    // fingerprint is logged.
    assert_unverified_user(&e, user);
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
    let e = expect("basic_malformed").verbose().no_field("user");
    let e = rejected(&out, e, &[BASIC]).event;
    assert!(!e.line().contains("X-Injected"), "{}", e.line());
    assert_no_secrets(&out.events, &["password-crlf".to_owned()]);
}

// ---------------------------------------------------------------------------------------
// API keys and session cookies
// ---------------------------------------------------------------------------------------

/// An answer to a key or a session is private, whatever the handler says.
#[tokio::test]
async fn api_key_and_session_answers_are_private() {
    let cookie = format!("theme=dark; sid={SESS_VALID}");
    let cases = [
        (
            key_app as fn(_) -> _,
            ("x-api-key", KEY_GOOD),
            "key-owner",
            "ApiKey",
        ),
        (session_app, ("cookie", cookie.as_str()), "alice", "Cookie"),
    ];
    for (app, header, id, scheme) in cases {
        let out = send(app(DetailMode::Verbose), get("/r", &[header])).await;
        assert_eq!(out.ok(), json!({ "id": id, "scheme": scheme }));
        assert_eq!(out.header("cache-control"), Some("private"));
        // The handler's own Cache-Control gains `private`.
        let out = send(app(DetailMode::Verbose), get("/cached", &[header])).await;
        out.ok();
        assert_eq!(out.header_all("cache-control"), ["max-age=60, private"]);
    }
}

#[tokio::test]
async fn api_key_missing() {
    let out = send(key_app(DetailMode::Production), get("/r", &[])).await;
    let e = expect("credentials_missing").field("scheme_expected", "X-API-Key header");
    rejected(&out, e, &[KEY]);
}

/// Unknown and revoked keys: told apart in verbose detail and in the log, one
/// indistinguishable `credentials_invalid` to the client in production.
#[tokio::test]
async fn api_key_unknown_and_revoked() {
    for mode in MODES {
        let mut outs = Vec::new();
        for (key, reason) in [
            (KEY_UNKNOWN, "api_key_unknown"),
            (KEY_REVOKED, "api_key_revoked"),
        ] {
            let out = send(key_app(mode), get("/r", &[("x-api-key", key)])).await;
            let r = rejected(&out, in_key(expect(reason).mode(mode)), &[KEY]);
            fp(&r.event);
            if mode == DetailMode::Production {
                assert_eq!(r.problem["detail"], "The credentials are not valid.");
                assert!(!out.text().contains("revoked"), "{}", out.text());
            } else if reason == "api_key_revoked" {
                assert_eq!(r.problem["detail"], "the key was revoked on 2024-01-01");
            }
            outs.push(out);
        }
        if mode == DetailMode::Production {
            assert_indistinguishable(&outs[0], &outs[1]);
        }
    }
}

#[tokio::test]
async fn api_key_custom_header() {
    let svc = || {
        scheme_app(
            layer(DetailMode::Verbose)
                .api_key(ApiKeyAuthenticator::new(check_key).header("X-Token")),
        )
    };
    const LINE: &str = r#"ApiKey realm="api", header="X-Token""#;
    let out = send(svc(), get("/r", &[("x-token", KEY_GOOD)])).await;
    out.ok();
    assert_eq!(out.header("cache-control"), Some("private"));

    let out = send(svc(), get("/r", &[("X-Token", KEY_UNKNOWN)])).await;
    assert_no_secrets(&out.events, &[KEY_UNKNOWN.to_owned()]);
    let e = expect("api_key_unknown").verbose();
    let e = e.field("location", "header:x-token");
    rejected(&out, e.field("scheme_expected", "X-Token header"), &[LINE]);

    // The default header is not read when another is configured.
    let out = send(svc(), get("/r", &[("x-api-key", KEY_GOOD)])).await;
    let e = expect("credentials_wrong_location").verbose();
    let e = e.field("location", "header:x-api-key");
    rejected(&out, e.field("scheme_expected", "X-Token header"), &[LINE]);
}

#[tokio::test]
async fn api_key_in_query_only_when_opted_in() {
    // Not opted in: the query is the wrong place.
    let uri = format!("/r?api_key={KEY_GOOD}");
    let out = send(key_app(DetailMode::Verbose), get(&uri, &[])).await;
    let e = expect("credentials_wrong_location").verbose();
    rejected(
        &out,
        e.field("location", "query:api_key").field("path", "/r"),
        &[KEY],
    );

    // Opted in.
    let svc = || {
        scheme_app(
            layer(DetailMode::Verbose)
                .api_key(ApiKeyAuthenticator::new(check_key).allow_query("api_key")),
        )
    };
    let out = send(svc(), get(&uri, &[])).await;
    assert_eq!(out.ok(), json!({ "id": "key-owner", "scheme": "ApiKey" }));
    assert_eq!(out.header("cache-control"), Some("private"));

    let out = send(svc(), get(&format!("/r?x=1&api_key={KEY_REVOKED}"), &[])).await;
    let e = expect("api_key_revoked").verbose();
    let e = e.field("location", "query:api_key").field("path", "/r");
    let e = e.field("scheme_expected", "X-API-Key header");
    fp(&rejected(&out, e, &[KEY_QUERY]).event);
}

#[tokio::test]
async fn api_key_header_and_query_key_conflict() {
    let app = scheme_app(
        layer(DetailMode::Verbose)
            .api_key(ApiKeyAuthenticator::new(check_key).allow_query("api_key")),
    );
    let req = get("/r?api_key=other-key-456", &[("x-api-key", KEY_GOOD)]);
    let out = send(app, req).await;
    // The client spoke ApiKey: the challenge is the ApiKey one, without Bearer's error.
    let e = expect("credentials_conflict").verbose();
    let e = e.field("location", "header:x-api-key");
    let e = rejected(&out, e.field("hints", "token_in_query"), &[KEY_QUERY]).event;
    fp(&e);
}

#[tokio::test]
async fn session_missing_names_the_cookie() {
    for mode in MODES {
        let out = send(session_app(mode), get("/r", &[("cookie", "theme=dark")])).await;
        let e = expect("credentials_missing").mode(mode);
        let r = rejected(&out, e.field("scheme_expected", "cookie sid"), &[COOKIE]);
        if mode == DetailMode::Verbose {
            assert!(r.detail().contains("sid"), "{}", r.problem);
        }
        assert!(r.message().contains("sid"), "{}", r.event.line());
    }
}

/// A bogus session collapses in production; an expired one does not.
#[tokio::test]
async fn session_invalid_and_expired() {
    for mode in MODES {
        for (id, reason) in [
            (SESS_BOGUS, "session_invalid"),
            (SESS_EXPIRED, "session_expired"),
        ] {
            let out = send(session_app(mode), sid(id)).await;
            let r = rejected(&out, in_sid(expect(reason).mode(mode)), &[COOKIE]);
            fp(&r.event);
            if mode == DetailMode::Production && reason == "session_expired" {
                assert_eq!(r.problem["reason"], "session_expired");
                assert_eq!(
                    r.problem["detail"],
                    "The session has expired; sign in again."
                );
            }
        }
    }
}

#[tokio::test]
async fn session_custom_cookie_name() {
    let svc = || {
        scheme_app(
            layer(DetailMode::Verbose)
                .session(SessionAuthenticator::new("app_sess", check_session)),
        )
    };
    let cookie = format!("app_sess={SESS_VALID}");
    send(svc(), get("/r", &[("cookie", &cookie)])).await.ok();
    // A session in a cookie this route does not read.
    let out = send(svc(), sid(SESS_VALID)).await;
    let e = expect("credentials_wrong_location").verbose();
    let e = e.field("location", "cookie:sid");
    let e = e.field("scheme_expected", "cookie app_sess");
    rejected(&out, e, &[r#"Cookie realm="api", name="app_sess""#]);
}

/// A 2 KiB key, a key that is not UTF-8 and a 5 KiB session cookie: refused without
/// asking the verifier, logged capped, with where they were, what was expected and a
/// fingerprint.
#[tokio::test]
async fn oversized_and_undecodable_credentials_are_refused_unread() {
    let (key, cookie) = ("k".repeat(2048), "s".repeat(5 * 1024));
    let odd = hv(b"\xff\xfe-secret-key-bytes\xc3");
    let cases = [
        ("2 KiB key", get("/r", &[("x-api-key", &key)]), key.clone()),
        (
            "non-UTF-8 key",
            request(Method::GET, "/r", vec![("x-api-key", odd)]),
            "-secret-key-bytes".to_owned(),
        ),
        ("5 KiB cookie", sid(&cookie), cookie[..64].to_owned()),
    ];
    for (label, req, secret) in cases {
        let calls = Arc::new(AtomicUsize::new(0));
        let l = layer(DetailMode::Verbose);
        let (svc, e, line) = if label.ends_with("cookie") {
            let s = SessionAuthenticator::new("sid", counted(&calls, check_session));
            (
                scheme_app(l.session(s)),
                in_sid(expect("session_invalid")),
                COOKIE,
            )
        } else {
            let k = ApiKeyAuthenticator::new(counted(&calls, check_key));
            (
                scheme_app(l.api_key(k)),
                in_key(expect("api_key_unknown")),
                KEY,
            )
        };
        let out = send(svc, req).await;
        assert_eq!(calls.load(Ordering::SeqCst), 0, "{label}: verifier called");
        let e = rejected(&out, e.verbose(), &[line]).event;
        fp(&e);
        let len = e.line().len();
        assert!(len < 4096, "{label}: the event is capped: {len}");
        assert_no_secrets(&out.events, &[secret]);
    }
}

// ---------------------------------------------------------------------------------------
// Several schemes on one route
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn several_schemes_one_challenge_per_line_basic_first() {
    let svc = scheme_app(
        layer(DetailMode::Production)
            .api_key(ApiKeyAuthenticator::new(check_key))
            .session(SessionAuthenticator::new("sid", check_session))
            .basic(BasicAuthenticator::new(check_password)),
    );
    let out = send(svc, get("/r", &[])).await;
    rejected(&out, expect("credentials_missing"), &[BASIC, KEY, COOKIE]);
}

#[tokio::test]
async fn bearer_and_basic_basic_first() {
    let svc = || {
        scheme_app(
            layer(DetailMode::Verbose)
                .bearer(jwt())
                .basic(BasicAuthenticator::new(check_password)),
        )
    };
    let out = send(svc(), get("/r", &[])).await;
    rejected(
        &out,
        expect("credentials_missing").verbose(),
        &[BASIC, BEARER],
    );

    // A failed Basic login on a Bearer+Basic route lists both challenges too, and the
    // Bearer one carries no invalid_token.
    let out = send(svc(), basic_req("/r", "alice", "not-the-password")).await;
    let e = expect("basic_password_mismatch").verbose();
    rejected(&out, e, &[BASIC, BEARER]);
}

#[tokio::test]
async fn authorization_decides_before_an_api_key() {
    // Valid Basic, bogus key: Basic decides.
    let auth = basic("alice", ALICE_PW);
    let req = get(
        "/r",
        &[("authorization", &auth), ("x-api-key", KEY_UNKNOWN)],
    );
    let out = send(multi_app(true), req).await;
    assert_eq!(out.ok()["scheme"], "Basic");
    assert_eq!(
        out.header("cache-control"),
        None,
        "a Basic answer is not private"
    );

    // Wrong password, valid key: still Basic decides, no fallback.
    let auth = basic("alice", "not-the-password");
    let req = get("/r", &[("authorization", &auth), ("x-api-key", KEY_GOOD)]);
    let out = send(multi_app(true), req).await;
    let e = expect("basic_password_mismatch").verbose();
    let e = e.field("location", "header:authorization");
    rejected(&out, e, &[BASIC, KEY, COOKIE]);
}

#[tokio::test]
async fn api_key_header_decides_before_the_session_cookie() {
    // The documented order (authn/mod.rs `authenticate`): Authorization, then the API key
    // header, then the query parameter, then the session cookie, whatever the order of
    // configuration.
    let cookie = format!("sid={SESS_BOGUS}");
    for key_first in [true, false] {
        let req = get("/r", &[("x-api-key", KEY_GOOD), ("cookie", &cookie)]);
        let out = send(multi_app(key_first), req).await;
        assert_eq!(out.ok()["scheme"], "ApiKey", "key_first={key_first}");
    }
}

#[tokio::test]
async fn cookie_alone_on_a_multi_scheme_route() {
    let out = send(multi_app(true), sid(SESS_VALID)).await;
    assert_eq!(out.ok()["scheme"], "Cookie");
    assert_eq!(out.header("cache-control"), Some("private"));
}

// ---------------------------------------------------------------------------------------
// 403: account status, forbidden, insufficient_scope
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn account_disabled_and_locked() {
    for mode in MODES {
        for (user, reason) in [("dora", "account_disabled"), ("lou", "account_locked")] {
            let out = send(hooked_basic(mode), basic_req("/r", user, ALICE_PW)).await;
            // The log names the credential too.
            let e = in_basic(expect(reason).mode(mode)).field("user", user);
            fp(&rejected(&out, e, &[]).event);
        }
    }
    // Active accounts pass; wrong passwords are still 401 (the hook runs after verification).
    let out = send(
        hooked_basic(DetailMode::Verbose),
        basic_req("/r", "alice", ALICE_PW),
    )
    .await;
    out.ok();
    let out = send(
        hooked_basic(DetailMode::Verbose),
        basic_req("/r", "dora", "not-the-password"),
    )
    .await;
    rejected(&out, expect("basic_password_mismatch").verbose(), &[BASIC]);
}

#[tokio::test]
async fn account_refusals_for_keys_and_sessions() {
    let svc = scheme_app(
        layer(DetailMode::Verbose)
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
            }),
    );
    let out = send(svc, get("/r", &[("x-api-key", KEY_GOOD)])).await;
    let e = expect("account_locked")
        .verbose()
        .field("user", "key-owner");
    rejected(&out, e, &[]);

    // The log names the session that was refused.
    let svc = scheme_app(
        layer(DetailMode::Verbose)
            .session(SessionAuthenticator::new("sid", check_session))
            .account_status(|_: &Principal| async { Ok(AccountStatus::Disabled) }),
    );
    let out = send(svc, sid(SESS_VALID)).await;
    fp(&rejected(&out, in_sid(expect("account_disabled").verbose()), &[]).event);
}

#[tokio::test]
async fn handler_forbidden_is_rendered_by_the_layer() {
    for mode in MODES {
        let out = send(basic_app(mode), basic_req("/forbidden", "alice", ALICE_PW)).await;
        let e = expect("forbidden").mode(mode).field("check", "role admin");
        let r = rejected(&out, e.field("path", "/forbidden"), &[]);
        if mode == DetailMode::Production {
            assert_eq!(
                r.problem["detail"],
                "The credentials are valid but do not allow this request."
            );
        }
    }
    // Also for an API-key request: the layer's 403 is no-store, not private.
    let out = send(
        key_app(DetailMode::Production),
        get("/forbidden", &[("x-api-key", KEY_GOOD)]),
    )
    .await;
    rejected(&out, expect("forbidden").field("check", "role admin"), &[]);
}

#[tokio::test]
async fn insufficient_scope_for_a_basic_principal_has_no_bearer_challenge() {
    let svc = admin_app(layer(DetailMode::Verbose).basic(BasicAuthenticator::new(check_password)));
    let out = send(svc, basic_req("/admin", "alice", ALICE_PW)).await;
    let e = expect("insufficient_scope")
        .verbose()
        .field("user", "alice");
    rejected(&out, e.field("scope", "admin"), &[]);

    // The route accepts Bearer and Basic; the request authenticated with Basic.
    let svc = admin_app(
        layer(DetailMode::Production)
            .bearer(jwt())
            .basic(BasicAuthenticator::new(check_password)),
    );
    let out = send(svc.clone(), basic_req("/admin", "alice", ALICE_PW)).await;
    let e = expect("insufficient_scope").field("scheme_received", "Basic");
    rejected(&out, e, &[]);

    // The same route with a Bearer token keeps the RFC 6750 challenge.
    let token = bearer(&hs256(&good_claims()));
    let out = send(svc, get("/admin", &[("authorization", &token)])).await;
    out.check(&expect("insufficient_scope"));
    assert_eq!(out.challenge().param("scope"), Some("admin"));
}

// ---------------------------------------------------------------------------------------
// A store that fails: 503, never 401
// ---------------------------------------------------------------------------------------

/// A 503 `authenticator_unavailable` for "db down": no challenge, a Retry-After, and in
/// production nothing of the failure in the body.
#[track_caller]
fn assert_unavailable(out: &Outcome, mode: DetailMode) -> Captured {
    let r = rejected(out, expect("authenticator_unavailable").mode(mode), &[]);
    let retry = out.header("retry-after").expect("Retry-After");
    assert!(
        retry.parse::<u64>().is_ok_and(|s| s > 0),
        "Retry-After {retry:?}"
    );
    assert!(r.message().contains("db down"), "{}", r.event.line());
    if mode == DetailMode::Production {
        assert!(!out.text().contains("db down"), "{}", out.text());
    }
    r.event
}

#[tokio::test]
async fn verifier_store_down_is_503() {
    for mode in MODES {
        let down = BasicAuthenticator::new(store_down::<BasicCredentials>);
        let out = send(
            scheme_app(layer(mode).basic(down)),
            basic_req("/r", "alice", ALICE_PW),
        )
        .await;
        let e = assert_unavailable(&out, mode);
        assert_eq!(e.field("location"), "header:authorization");
        assert_eq!(e.field("scheme_expected"), "Basic");
        assert_eq!(e.field("user"), "alice");
        fp(&e);
    }
    let prod = DetailMode::Production;
    let down = ApiKeyAuthenticator::new(store_down::<ApiKey>);
    let out = send(
        scheme_app(layer(prod).api_key(down)),
        get("/r", &[("x-api-key", KEY_GOOD)]),
    )
    .await;
    let e = assert_unavailable(&out, prod);
    assert_eq!(e.field("location"), "header:x-api-key");
    let down = SessionAuthenticator::new("sid", store_down::<SessionCookie>);
    let out = send(scheme_app(layer(prod).session(down)), sid(SESS_VALID)).await;
    assert_eq!(
        assert_unavailable(&out, prod).field("location"),
        "cookie:sid"
    );
}

#[tokio::test]
async fn account_hook_store_down_is_503() {
    let down =
        |_: &Principal| async { Err::<AccountStatus, _>(AuthFailure::unavailable("db down")) };
    for mode in MODES {
        let l = layer(mode).basic(BasicAuthenticator::new(check_password));
        let out = send(
            scheme_app(l.account_status(down)),
            basic_req("/r", "alice", ALICE_PW),
        )
        .await;
        assert_unavailable(&out, mode);
    }
    // Bearer with the hook too.
    let l = layer(DetailMode::Production).bearer(jwt());
    let token = bearer(&hs256(&good_claims()));
    let out = send(
        scheme_app(l.account_status(down)),
        get("/r", &[("authorization", &token)]),
    )
    .await;
    assert_unavailable(&out, DetailMode::Production);
}

// ---------------------------------------------------------------------------------------
// The demo
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn demo_basic() {
    let app = || demo_app(DetailMode::Verbose);
    let out = send(app(), basic_req("/basic", "alice", "wonderland")).await;
    assert_eq!(out.ok()["id"], "alice");

    // Refused by the account hook; the log names the credential.
    let out = send(app(), basic_req("/basic", "mallory", "mallory-pass")).await;
    let e = expect("account_disabled")
        .verbose()
        .field("user", "mallory");
    fp(&rejected(&out, in_basic(e), &[]).event);

    for (user, pw, reason) in [
        ("nobody", "wonderland", "basic_user_unknown"),
        ("alice", "looking-glass", "basic_password_mismatch"),
    ] {
        let out = send(app(), basic_req("/basic", user, pw)).await;
        let e = expect(reason)
            .verbose()
            .realm("demo")
            .field("path", "/basic");
        assert_user(&rejected(&out, e, &[DEMO_BASIC]).event, user);
    }

    let out = send(app(), get("/basic", &[])).await;
    let e = expect("credentials_missing").verbose().realm("demo");
    rejected(&out, e, &[DEMO_BASIC]);
}

#[tokio::test]
async fn demo_basic_production_collapses() {
    let mut outs = Vec::new();
    for (user, pw, reason) in [
        ("nobody", "wonderland", "basic_user_unknown"),
        ("alice", "looking-glass", "basic_password_mismatch"),
    ] {
        let out = send(
            demo_app(DetailMode::Production),
            basic_req("/basic", user, pw),
        )
        .await;
        let e = rejected(&out, expect(reason).realm("demo"), &[DEMO_BASIC]).event;
        assert_user(&e, user);
        outs.push(out);
    }
    assert_indistinguishable(&outs[0], &outs[1]);
}

#[tokio::test]
async fn demo_key() {
    let app = || demo_app(DetailMode::Verbose);
    let out = send(app(), get("/key", &[("x-api-key", "demo-key-123")])).await;
    assert_eq!(out.ok()["scheme"], "ApiKey");
    assert_eq!(out.header("cache-control"), Some("private"));

    for mode in MODES {
        let mut outs = Vec::new();
        for (key, reason) in [
            ("demo-key-revoked", "api_key_revoked"),
            ("wrong-key-999", "api_key_unknown"),
        ] {
            let out = send(demo_app(mode), get("/key", &[("x-api-key", key)])).await;
            let e = expect(reason).mode(mode).realm("demo");
            let e = e.field("location", "header:x-api-key");
            fp(&rejected(&out, e, &[DEMO_KEY]).event);
            outs.push(out);
        }
        if mode == DetailMode::Production {
            assert_indistinguishable(&outs[0], &outs[1]);
        }
    }
}

#[tokio::test]
async fn demo_session() {
    let app = || demo_app(DetailMode::Verbose);
    let cookie = |v: &str| get("/session", &[("cookie", &format!("demo_session={v}"))]);
    let out = send(app(), cookie("s-valid")).await;
    assert_eq!(out.ok()["scheme"], "Cookie");
    assert_eq!(out.header("cache-control"), Some("private"));

    for (value, reason) in [
        ("s-expired", "session_expired"),
        ("s-forged-123", "session_invalid"),
    ] {
        let out = send(app(), cookie(value)).await;
        let e = expect(reason).verbose().realm("demo");
        let e = e.field("location", "cookie:demo_session");
        let e = e.field("scheme_expected", "cookie demo_session");
        fp(&rejected(&out, e, &[DEMO_COOKIE]).event);
    }

    let out = send(app(), get("/session", &[])).await;
    let e = expect("credentials_missing").verbose().realm("demo");
    let e = e.field("scheme_expected", "cookie demo_session");
    let r = rejected(&out, e, &[DEMO_COOKIE]);
    assert!(
        r.detail().contains("demo_session"),
        "detail names the cookie: {}",
        r.problem
    );
}

#[tokio::test]
async fn demo_any() {
    let app = || demo_app(DetailMode::Verbose);
    let token = bearer(&hs256(&good_claims()));
    for (auth, scheme) in [(token, "Bearer"), (basic("alice", "wonderland"), "Basic")] {
        let out = send(app(), get("/any", &[("authorization", &auth)])).await;
        assert_eq!(out.ok(), json!({ "id": "alice", "scheme": scheme }));
        assert_eq!(
            out.header("cache-control"),
            None,
            "{scheme} answers are not private"
        );
    }

    let out = send(app(), get("/any", &[])).await;
    let e = expect("credentials_missing").verbose().realm("demo");
    rejected(&out, e, &[DEMO_BASIC, DEMO_BEARER]);

    let out = send(app(), basic_req("/any", "mallory", "mallory-pass")).await;
    rejected(&out, expect("account_disabled").verbose(), &[]);
}

/// A known user with a wrong password is named in the log (capped and escaped); an empty
/// password makes even a known name unverified.
#[tokio::test]
async fn known_users_are_named_and_empty_passwords_are_not() {
    let out = send(
        basic_app(DetailMode::Production),
        basic_req("/r", "alice", "wrong-password"),
    )
    .await;
    assert_eq!(out.event().field("user"), "alice");
    let out = send(
        basic_app(DetailMode::Production),
        basic_req("/r", "alice", ""),
    )
    .await;
    assert_unverified_user(out.event(), "alice");
}

// ---------------------------------------------------------------------------------------
// HideForbidden: 404 instead of 403 (R-02)
// ---------------------------------------------------------------------------------------

/// A router whose marked routes hide their 403s: `/scoped` (RequireScope `admin`),
/// `/owner` (a handler that refuses everyone but `owner` with `forbidden`), and the same
/// two unmarked under `/open/…`, all behind `l`.
fn hidden_app(l: AuthDiagnostics) -> Router {
    use auth_diagnostics::authz::HideForbidden;
    use axum::routing::get as route;
    let owner = || {
        route(|p: Principal| async move {
            match p.id() {
                Some("owner") => Ok("yours"),
                _ => Err(AuthFailure::new(Reason::Forbidden).check("owner only")),
            }
        })
    };
    let scoped = || route(|| async { "admin" }).route_layer(RequireScope::new(["admin"]));
    Router::new()
        .route("/scoped", scoped().route_layer(HideForbidden::new()))
        .route("/owner", owner().route_layer(HideForbidden::new()))
        .route("/open/scoped", scoped())
        .route("/open/owner", owner())
        .layer(l)
}

/// The header names of `out`, sorted, without `content-length` (in-process, axum writes
/// it on some answers and not on others; on the wire hyper writes it on every one).
fn header_names(out: &Outcome) -> Vec<String> {
    let mut names: Vec<String> = out
        .headers
        .keys()
        .map(|k| k.to_string())
        .filter(|k| k != "content-length")
        .collect();
    names.sort();
    names
}

/// A hidden refusal: the router's own 404 through the layer (the status, no body, and only
/// `X-Request-Id`: no content type, no challenge, no `Cache-Control`), and one event that
/// keeps the real `reason`, says `status=404` and carries the hint `hidden_as_404`.
#[track_caller]
fn hidden_404(out: &Outcome, reason: &str) {
    assert_eq!(
        out.status,
        404,
        "{reason}: {} {:?}",
        out.text(),
        out.headers
    );
    assert!(out.body.is_empty(), "{reason}: {}", out.text());
    assert_eq!(
        header_names(out),
        ["x-request-id"],
        "{reason}: {:?}",
        out.headers
    );
    let e = out.event();
    assert_eq!(e.field("reason"), reason, "{}", e.line());
    assert_eq!(e.field("status"), "404", "{}", e.line());
    assert!(
        e.field("hints").split(',').any(|h| h == "hidden_as_404"),
        "{}",
        e.line()
    );
}

#[tokio::test]
async fn hide_forbidden_answers_404_and_logs_the_real_reason() {
    for mode in MODES {
        let app = hidden_app(layer(mode).basic(BasicAuthenticator::new(check_password)));
        let alice = basic("alice", ALICE_PW);
        // The router's own 404, for a path that does not exist: the same headers.
        let not_found = send(app.clone(), get("/nowhere", &[("authorization", &alice)])).await;
        assert_eq!(not_found.status, 404);
        assert_eq!(header_names(&not_found), ["x-request-id"]);
        for (path, reason) in [("/scoped", "insufficient_scope"), ("/owner", "forbidden")] {
            let out = send(app.clone(), get(path, &[("authorization", &alice)])).await;
            hidden_404(&out, reason);
            // Unmarked, the same refusal is the usual 403.
            let open = format!("/open{path}");
            let out = send(app.clone(), get(&open, &[("authorization", &alice)])).await;
            assert_eq!(out.status, 403, "{open}");
            assert_eq!(out.problem()["status"], 403);
        }
        // A 401 stays a 401 with its challenge: no credentials, a wrong password.
        for headers in [vec![], vec![("authorization", basic("alice", "wrong"))]] {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let out = send(app.clone(), get("/scoped", &h)).await;
            assert_eq!(out.status, 401, "{h:?}");
            assert_eq!(out.header_all("www-authenticate"), [BASIC]);
        }
    }
}

/// With an API key or a session cookie, which shared caches do not key on, the router's
/// own 404 is `Cache-Control: private`: the hidden one is too, so the two stay alike.
#[tokio::test]
async fn hide_forbidden_with_a_key_or_cookie_matches_the_routers_private_404() {
    let sid = format!("sid={SESS_VALID}");
    for (l, header) in [
        (
            layer(DetailMode::Production).api_key(ApiKeyAuthenticator::new(check_key)),
            ("x-api-key", KEY_GOOD),
        ),
        (
            layer(DetailMode::Production).session(SessionAuthenticator::new("sid", check_session)),
            ("cookie", sid.as_str()),
        ),
    ] {
        let app = hidden_app(l);
        let not_found = send(app.clone(), get("/nowhere", &[header])).await;
        assert_eq!(not_found.status, 404);
        for path in ["/scoped", "/owner"] {
            let out = send(app.clone(), get(path, &[header])).await;
            assert_eq!(out.status, 404, "{path}: {}", out.text());
            assert!(out.body.is_empty());
            assert_eq!(header_names(&out), header_names(&not_found), "{path}");
            assert_eq!(
                out.header("cache-control"),
                not_found.header("cache-control")
            );
        }
    }
}

/// Marking the routes of a `route_layer`-ed layer, outside it: the layer's own 403s
/// (`account_disabled` from the account hook, `insufficient_scope` of its
/// `require_scope`) are hidden too.
#[tokio::test]
async fn hide_forbidden_around_the_layer_hides_its_own_refusals() {
    use auth_diagnostics::authz::HideForbidden;
    use axum::routing::get as route;
    let base = || layer(DetailMode::Verbose).basic(BasicAuthenticator::new(check_password));
    for (l, user, reason) in [
        (base().account_status(account), "dora", "account_disabled"),
        (
            base().require_scope(["read"]),
            "alice",
            "insufficient_scope",
        ),
    ] {
        let app = |hide: bool| {
            let r = Router::new()
                .route("/r", route(|| async { "r" }))
                .route_layer(l.clone());
            if hide {
                r.route_layer(HideForbidden::new())
            } else {
                r
            }
        };
        let auth = basic(user, ALICE_PW);
        let out = send(app(true), get("/r", &[("authorization", &auth)])).await;
        hidden_404(&out, reason);
        let out = send(app(false), get("/r", &[("authorization", &auth)])).await;
        assert_eq!(out.status, 403, "{reason}");
        let out = send(app(true), get("/r", &[])).await;
        assert_eq!(out.status, 401, "{reason}");
    }
}

/// Without a layer around, a refusal on a marked route is still a plain 404.
#[tokio::test]
async fn hide_forbidden_without_a_layer_is_a_plain_404() {
    use auth_diagnostics::authz::HideForbidden;
    use tower::ServiceExt;
    let app: Router = Router::new().route(
        "/x",
        axum::routing::get(|| async { Err::<(), _>(AuthFailure::new(Reason::Forbidden)) })
            .route_layer(HideForbidden::new()),
    );
    let res = app.oneshot(get("/x", &[])).await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.headers().get("www-authenticate").is_none());
    assert!(res.headers().get("content-type").is_none());
}
