//! Where a key source's fetches may go and what they show: every redirect hop is `https`
//! (or plain `http` to a loopback host), a redirect to another origin is refused unless
//! the application allows it, a URL's password never reaches a log line, a problem body or
//! `Debug`, and a key removed from the set stops verifying within the default refresh
//! (at most 300 s).
//!
//! Every server here is in-process on `127.0.0.1`. A hop to another host
//! (`http://evil.example`, `https://other.example`) is refused before any connection, so no
//! traffic leaves the machine.

mod common;
use common::*;

#[path = "common/http_servers.rs"]
mod http_servers;
use http_servers::{answer, closed_port, serve};

use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::{Algorithm, KeySource};
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::{get as route, MethodRouter};
use http::Request;
use http_body_util::BodyExt;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use std::time::Duration;
use tower::ServiceExt;

const ISS: &str = "https://idp.test";

/// The password every URL of the leak test carries.
const PASSWORD: &str = "pw-s3cr3t-91f2";

// Servers -----------------------------------------------------------------------------------

/// `302 Found` to `location`.
fn redirect(location: &str) -> MethodRouter {
    let location = location.to_owned();
    route(move || async move {
        (StatusCode::FOUND, [(http::header::LOCATION, location)]).into_response()
    })
}

/// A JWK set of `keys`.
fn keys(keys: Vec<Value>) -> MethodRouter {
    route(move || async move { axum::Json(json!({ "keys": keys })).into_response() })
}

/// A discovery document for `issuer` naming `jwks_uri`.
fn discovery(issuer: &str, jwks_uri: &str) -> MethodRouter {
    let doc = json!({ "issuer": issuer, "jwks_uri": jwks_uri });
    route(move || async move { axum::Json(doc).into_response() })
}

// Keys and tokens ---------------------------------------------------------------------------

fn encoding(name: &str) -> EncodingKey {
    let dir = env!("CARGO_MANIFEST_DIR");
    let pem = std::fs::read(format!("{dir}/tests/keys/{name}_private.pem")).unwrap();
    EncodingKey::from_rsa_pem(&pem).unwrap()
}

/// The public JWK of `tests/keys/{name}_private.pem` (RSA) as `kid`.
fn jwk(name: &str, kid: &str) -> Value {
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&encoding(name), Algorithm::RS256).unwrap())
            .unwrap();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    jwk
}

/// An RS256 token of `iss` signed with `name`'s key, naming `kid`.
fn token(name: &str, kid: &str, iss: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    sign(&header, &claims(json!({ "iss": iss })), &encoding(name))
}

/// The identity provider's key, and one an attacker holds.
fn good_key() -> Value {
    jwk("rsa", "idp-1")
}
fn good_token(iss: &str) -> String {
    token("rsa", "idp-1", iss)
}
fn evil_key() -> Value {
    jwk("rsa2", "evil-1")
}
fn evil_token(iss: &str) -> String {
    token("rsa2", "evil-1", iss)
}

// The layer ---------------------------------------------------------------------------------

/// `/me` behind a layer in `mode` verifying tokens of `iss` with `source`.
fn app_for(source: KeySource, iss: &str, mode: DetailMode) -> axum::Router {
    let jwt = JwtAuthenticator::from_source(source)
        .issuer(iss)
        .audience(AUDIENCE)
        .require_claims(["sub"]);
    jwt_app(layer(mode), jwt)
}

/// What a request got: status, every header and the body as text.
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends a token to `/me` (without a capture of its own: the test's capture sees every
/// event, the key source's included).
async fn call(app: &axum::Router, token: &str) -> Answer {
    let req = Request::get("/me")
        .header("authorization", bearer(token))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status().as_u16();
    let headers = format!("{:?}", response.headers());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A source that refreshes on a miss at once and gives up waiting after a second.
fn quick(source: KeySource) -> KeySource {
    source
        .miss_refresh_interval(Duration::ZERO)
        .fetch_timeout(Duration::from_secs(2))
        .max_wait(Duration::from_secs(3))
}

/// The ERROR events of failed fetches.
fn fetch_failures(capture: &Capture) -> Vec<Captured> {
    capture
        .all_events()
        .into_iter()
        .filter(|e| e.target == "auth_diagnostics::keys" && e.level == Level::ERROR)
        .collect()
}

/// The request is refused as `key_source_unavailable` and the last fetch failure names
/// `hop`; neither the log nor the body holds `hidden`.
#[track_caller]
fn assert_refused_hop(answer: &Answer, capture: &Capture, hop: &str, hidden: &[&str]) {
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.json()["reason"], "key_source_unavailable");
    let failures = fetch_failures(capture);
    let last = failures
        .last()
        .expect("the failed fetch is logged at ERROR");
    let error = last.field("fetch_error");
    assert!(
        error.contains(hop),
        "the refused hop {hop} is named: {error}"
    );
    assert!(error.contains("redirect"), "{error}");
    assert_eq!(last.field("fetch_error_kind"), "Untrusted");
    for text in hidden {
        assert!(!answer.body.contains(text), "{text} in {}", answer.body);
        for e in capture.all_events() {
            assert!(!e.line().contains(text), "{text} in {}", e.line());
        }
    }
}

// Redirects ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_loopback_set_redirecting_off_loopback_in_the_clear_is_refused() {
    let (capture, _guard) = Capture::install();
    let base = serve(axum::Router::new().route(
        "/jwks",
        redirect("http://mallory:hunter2-xy@evil.example/jwks?sig=q9z8y7"),
    ))
    .await;
    let app = app_for(
        quick(KeySource::jwks(format!("{base}/jwks"))),
        ISS,
        DetailMode::Verbose,
    );
    let out = call(&app, &good_token(ISS)).await;
    assert_refused_hop(
        &out,
        &capture,
        "http://mallory:***@evil.example/jwks",
        &["hunter2-xy", "sig=q9z8y7", "q9z8y7"],
    );
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_refused_by_default() {
    // The attacker's set, on another loopback port: another origin.
    let evil = serve(axum::Router::new().route("/jwks", keys(vec![evil_key()]))).await;
    let evil_port = evil.rsplit(':').next().unwrap().to_owned();
    for target in [
        format!("{evil}/jwks"),
        format!("http://localhost:{evil_port}/jwks"),
        "https://other.example/jwks".to_owned(),
    ] {
        let (capture, _guard) = Capture::install();
        let base = serve(axum::Router::new().route("/jwks", redirect(&target))).await;
        let app = app_for(
            quick(KeySource::jwks(format!("{base}/jwks"))),
            ISS,
            DetailMode::Verbose,
        );
        let out = call(&app, &evil_token(ISS)).await;
        assert_refused_hop(&out, &capture, &target, &[]);
        let error = fetch_failures(&capture).pop().unwrap();
        assert!(
            error.field("fetch_error").contains("origin"),
            "{}",
            error.line()
        );
    }
}

#[tokio::test]
async fn a_cross_origin_redirect_is_followed_when_the_application_allows_it() {
    let (capture, _guard) = Capture::install();
    let other = serve(axum::Router::new().route("/keys", keys(vec![good_key()]))).await;
    let base = serve(axum::Router::new().route("/jwks", redirect(&format!("{other}/keys")))).await;
    let source = quick(KeySource::jwks(format!("{base}/jwks"))).allow_cross_origin_redirects();
    let app = app_for(source, ISS, DetailMode::Verbose);
    assert_eq!(call(&app, &good_token(ISS)).await.status, 200);

    // Allowed across origins, each hop still needs https (or loopback http).
    let base =
        serve(axum::Router::new().route("/jwks", redirect("http://evil.example/jwks"))).await;
    let source = quick(KeySource::jwks(format!("{base}/jwks"))).allow_cross_origin_redirects();
    let app = app_for(source, ISS, DetailMode::Verbose);
    let out = call(&app, &good_token(ISS)).await;
    assert_refused_hop(&out, &capture, "http://evil.example/jwks", &[]);
}

#[tokio::test]
async fn a_same_origin_redirect_is_followed() {
    let base = serve(
        axum::Router::new()
            .route("/jwks", redirect("/keys/current"))
            .route("/keys/current", keys(vec![good_key()])),
    )
    .await;
    let app = app_for(
        quick(KeySource::jwks(format!("{base}/jwks"))),
        ISS,
        DetailMode::Verbose,
    );
    let out = call(&app, &good_token(ISS)).await;
    assert_eq!(out.status, 200, "{}", out.body);

    // Absolute, on the same origin, through discovery: the document and its jwks_uri.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            redirect(&format!("{base}/discovery/v2")),
        )
        .route("/discovery/v2", discovery(&base, &format!("{base}/jwks")))
        .route("/jwks", redirect(&format!("{base}/keys")))
        .route("/keys", keys(vec![good_key()]));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let app = app_for(
        quick(KeySource::discover(&base)),
        &base,
        DetailMode::Verbose,
    );
    let out = call(&app, &good_token(&base)).await;
    assert_eq!(out.status, 200, "{}", out.body);
}

#[tokio::test]
async fn discovery_redirects_follow_the_same_rules() {
    // The discovery document redirects away.
    let (capture, _guard) = Capture::install();
    let base = serve(axum::Router::new().route(
        "/.well-known/openid-configuration",
        redirect("http://evil.example/.well-known/openid-configuration"),
    ))
    .await;
    let app = app_for(
        quick(KeySource::discover(&base)),
        &base,
        DetailMode::Verbose,
    );
    let out = call(&app, &good_token(&base)).await;
    assert_refused_hop(
        &out,
        &capture,
        "http://evil.example/.well-known/openid-configuration",
        &[],
    );

    // Its jwks_uri redirects to another origin that serves the attacker's key.
    let evil = serve(axum::Router::new().route("/jwks", keys(vec![evil_key()]))).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            discovery(&base, &format!("{base}/jwks")),
        )
        .route("/jwks", redirect(&format!("{evil}/jwks")));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let (capture, _guard) = Capture::install();
    let app = app_for(
        quick(KeySource::discover(&base)),
        &base,
        DetailMode::Verbose,
    );
    let out = call(&app, &evil_token(&base)).await;
    assert_refused_hop(&out, &capture, &format!("{evil}/jwks"), &[]);
}

// Passwords in URLs -------------------------------------------------------------------------

/// The URLs that fail, each holding [`PASSWORD`]: connection refused, a body that is not
/// JSON, a 500; as a JWK set URL, an issuer, and a discovered `jwks_uri`.
async fn failing_sources() -> Vec<(String, KeySource)> {
    let with_password = |base: &str| base.replacen("://", &format!("://alice:{PASSWORD}@"), 1);
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let bad_json = serve(
        axum::Router::new()
            .route("/jwks", answer(200, "{not json"))
            .route("/.well-known/openid-configuration", answer(200, "<html>")),
    )
    .await;
    let failing = serve(
        axum::Router::new()
            .route("/jwks", answer(500, "{}"))
            .route("/.well-known/openid-configuration", answer(502, "{}")),
    )
    .await;
    let mut sources = Vec::new();
    for base in [&closed, &bad_json, &failing] {
        let base = with_password(base);
        sources.push((ISS.to_owned(), KeySource::jwks(format!("{base}/jwks"))));
        sources.push((base.clone(), KeySource::discover(base.as_str())));
    }
    // A discovery document naming a key set URL with a password.
    for target in [&bad_json, &failing] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let jwks_uri = format!("{}/jwks", with_password(target));
        let router = axum::Router::new().route(
            "/.well-known/openid-configuration",
            discovery(&issuer, &jwks_uri),
        );
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        sources.push((issuer.clone(), KeySource::discover(issuer)));
    }
    sources
}

#[tokio::test]
async fn a_password_in_a_key_source_url_is_never_shown() {
    let (capture, _guard) = Capture::install();
    let mut shown = Vec::new();
    for mode in [DetailMode::Verbose, DetailMode::Production] {
        for (iss, source) in failing_sources().await {
            let debug = format!("{source:?}");
            let app = app_for(quick(source), &iss, mode);
            let out = call(&app, &good_token(&iss)).await;
            assert_eq!(out.status, 503, "{iss}: {}", out.body);
            assert_eq!(out.json()["reason"], "key_source_unavailable");
            if mode == DetailMode::Verbose {
                // The fetch error, with the URL shown as every URL is.
                assert!(out.body.contains("alice:***@"), "{}", out.body);
            }
            shown.push(debug);
            shown.push(out.headers);
            shown.push(out.body);
        }
    }
    let events = capture.all_events();
    let failures = fetch_failures(&capture);
    assert!(failures.len() >= 16, "every source failed: {events:#?}");
    let unavailable = events.iter().filter(|e| {
        e.get("reason") == Some("key_source_unavailable")
            || e.get("message")
                .is_some_and(|m| m.contains("key_source_unavailable"))
    });
    assert!(unavailable.count() >= 16, "{events:#?}");
    // A token of an issuer configured with a password carries it in its own `iss`: that
    // is the client's text, not a URL the layer shows.
    shown.extend(events.iter().map(|e| {
        let mut e = e.clone();
        e.fields.remove("iss");
        e.line()
    }));
    for text in &shown {
        assert!(!text.contains(PASSWORD), "the password is shown: {text}");
    }
    // The user name stays, so that an operator can tell which credentials are configured.
    let masked = "alice:***@".to_owned();
    assert!(
        failures
            .iter()
            .any(|e| e.field("key_source").contains(&masked)),
        "{failures:#?}"
    );
    assert!(shown.iter().any(|t| t.contains(&masked)));
}

#[test]
fn a_password_in_a_refused_url_is_not_in_the_start_up_panic() {
    for source in [
        KeySource::jwks(format!("http://alice:{PASSWORD}@idp.example/jwks")),
        KeySource::jwks(format!("ftp://alice:{PASSWORD}@idp.example/jwks")),
        KeySource::discover(format!("http://alice:{PASSWORD}@idp.example")),
    ] {
        let debug = format!("{source:?}");
        assert!(!debug.contains(PASSWORD), "{debug}");
        assert!(debug.contains("alice:***@"), "{debug}");
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            app_for(source, ISS, DetailMode::Verbose)
        }));
        let message = panic_message(built);
        assert!(!message.contains(PASSWORD), "{message}");
        assert!(message.contains("alice:***@"), "{message}");
    }
}

// Refresh -----------------------------------------------------------------------------------

/// The `next_refresh_s` a default source logs after fetching a set sent with
/// `cache_control`.
async fn next_refresh(cache_control: Option<&'static str>) -> u64 {
    let (capture, _guard) = Capture::install();
    let set = json!({ "keys": [good_key()] });
    let base = serve(axum::Router::new().route(
        "/jwks",
        route(move || async move {
            let mut r = axum::Json(set).into_response();
            if let Some(cc) = cache_control {
                r.headers_mut()
                    .insert("cache-control", HeaderValue::from_static(cc));
            }
            r
        }),
    ))
    .await;
    let source = KeySource::jwks(format!("{base}/jwks"));
    let _app = app_for(source.clone(), ISS, DetailMode::Verbose);
    tokio::time::timeout(Duration::from_secs(5), source.ready())
        .await
        .expect("keys within 5 s");
    let events = capture.all_events();
    let fetched = events
        .iter()
        .find(|e| e.get("message") == Some("key set fetched"))
        .unwrap_or_else(|| panic!("{events:#?}"));
    fetched.field("next_refresh_s").parse().unwrap()
}

#[tokio::test]
async fn by_default_a_removed_key_verifies_for_at_most_300_s() {
    assert_eq!(next_refresh(None).await, 300, "without Cache-Control");
    assert_eq!(next_refresh(Some("public")).await, 300, "without max-age");
    assert_eq!(
        next_refresh(Some("public, max-age=86400")).await,
        300,
        "a longer max-age is clamped"
    );
    assert_eq!(
        next_refresh(Some("max-age=120")).await,
        120,
        "a shorter one holds"
    );
    assert_eq!(
        next_refresh(Some("no-cache")).await,
        60,
        "at least a minute"
    );
}
