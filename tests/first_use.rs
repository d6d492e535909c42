//! Keys on first use: while a key source has never held a key set, a token asks for a fetch
//! at once instead of waiting for the unknown-`kid` interval (30 s by default) or the
//! background's next try. A service started before its identity provider answers the first
//! token that comes once the provider is up; tokens that come together share one fetch;
//! and a provider that stays down is asked at most about once a second, however many
//! tokens come.
//!
//! Every source here keeps its defaults (`miss_refresh_interval` 30 s, `max_wait` 2 s),
//! and the identity provider is in-process on `127.0.0.1`, counting what it is asked.

mod common;
use common::*;

use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::{Algorithm, KeySource};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// Tokens sent together when the provider comes up.
const TOGETHER: usize = 16;

/// An identity provider: discovery and a JWK set of one RSA key, or 503 while down.
#[derive(Clone)]
struct Provider {
    base: String,
    up: Arc<AtomicBool>,
    /// Requests for the key set, and for the discovery document.
    jwks_hits: Arc<AtomicUsize>,
    discovery_hits: Arc<AtomicUsize>,
}

impl Provider {
    /// A provider at `addr` that answers 503 until [`Provider::set_up`].
    async fn start_at(addr: SocketAddr, up: bool) -> Provider {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let p = Provider {
            base: format!("http://{addr}"),
            up: Arc::new(AtomicBool::new(up)),
            jwks_hits: Arc::default(),
            discovery_hits: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/jwks", axum::routing::get(jwks))
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(discovery),
            )
            .with_state(p.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        p
    }

    fn set_up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    fn jwks_hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    fn discovery_hits(&self) -> usize {
        self.discovery_hits.load(Ordering::SeqCst)
    }
}

async fn jwks(State(p): State<Provider>) -> Response {
    p.jwks_hits.fetch_add(1, Ordering::SeqCst);
    if !p.up.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    axum::Json(json!({ "keys": [public_jwk()] })).into_response()
}

async fn discovery(State(p): State<Provider>) -> Response {
    p.discovery_hits.fetch_add(1, Ordering::SeqCst);
    if !p.up.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    axum::Json(json!({ "issuer": p.base, "jwks_uri": format!("{}/jwks", p.base) })).into_response()
}

/// A loopback address nothing listens on (yet).
fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// `tests/keys/{name}_private.pem`, an RSA key.
fn rsa(name: &str) -> EncodingKey {
    let dir = env!("CARGO_MANIFEST_DIR");
    let pem = std::fs::read(format!("{dir}/tests/keys/{name}_private.pem")).unwrap();
    EncodingKey::from_rsa_pem(&pem).unwrap()
}

/// The provider's one key, named `k1`.
fn public_jwk() -> Value {
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&rsa("rsa"), Algorithm::RS256).unwrap())
            .unwrap();
    jwk["kid"] = json!("k1");
    jwk["use"] = json!("sig");
    jwk
}

/// An RS256 token of `iss` for the test audience signed with the provider's key, naming
/// `kid` (or none).
fn token(iss: &str, kid: Option<&str>) -> String {
    token_by("rsa", iss, kid)
}

/// [`token`], signed with the RSA key `name`.
fn token_by(name: &str, iss: &str, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    sign(&header, &claims(json!({ "iss": iss })), &rsa(name))
}

/// `/me` behind a layer whose Bearer scheme takes keys from `source`, built here (so the
/// first fetch starts now, in the background).
fn app(source: KeySource, iss: &str) -> axum::Router {
    let jwt = JwtAuthenticator::from_source(source)
        .issuer(iss)
        .audience(AUDIENCE);
    jwt_app(layer(DetailMode::Verbose), jwt)
}

/// The status and `reason` of `/me` with `token`, without capturing logs (for concurrent
/// requests).
async fn status_of(app: &axum::Router, token: &str) -> (u16, String) {
    let r = app
        .clone()
        .oneshot(get("/me", &[("authorization", &bearer(token))]))
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = http_body_util::BodyExt::collect(r.into_body())
        .await
        .unwrap()
        .to_bytes();
    let reason = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, reason)
}

/// Sends `token` `n` times at once; every answer, and how long the slowest took.
async fn together(app: &axum::Router, token: &str, n: usize) -> (Vec<(u16, String)>, Duration) {
    let started = Instant::now();
    let mut all = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (app, token) = (app.clone(), token.to_owned());
        all.spawn(async move { status_of(&app, &token).await });
    }
    let mut answers = Vec::new();
    while let Some(r) = all.join_next().await {
        answers.push(r.unwrap());
    }
    (answers, started.elapsed())
}

/// Nothing listens at the JWK set's URL when the layer is built; once the provider
/// listens, the tokens that come together are verified at once (not 503 for the 30 s of
/// the unknown-`kid` interval) with one fetch between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_comes_up_after_the_service_verifies_the_next_tokens_at_once() {
    let addr = free_addr();
    let iss = format!("http://{addr}");
    let app = app(KeySource::jwks(format!("{iss}/jwks")), &iss);
    let tok = token(&iss, Some("k1"));

    // Down: the first fetch finds no one listening, and so does the token's own.
    let (out, _) = together(&app, &tok, 1).await;
    assert_eq!(out, [(503, "key_source_unavailable".to_owned())]);

    let provider = Provider::start_at(addr, true).await;
    let (answers, took) = together(&app, &tok, TOGETHER).await;
    for a in &answers {
        assert_eq!(a, &(200, String::new()), "{answers:?}");
    }
    // At most one fetch a second while no set is held: the last attempt was just now.
    assert!(
        took < Duration::from_millis(1800),
        "the tokens waited {took:?}"
    );
    assert_eq!(provider.jwks_hits(), 1, "{TOGETHER} tokens, one fetch");
    eprintln!("{TOGETHER} tokens verified {took:?} after the provider came up");

    // Nothing else is fetched: the set is fresh, and a known kid never asks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(together(&app, &tok, 4).await.0[0], (200, String::new()));
    assert_eq!(provider.jwks_hits(), 1);
}

/// A discovered issuer whose provider answers 503: a token every 50 ms for 2.5 s, each
/// refused with 503, costs the provider about one request a second, not one per token;
/// once it answers, the next tokens get in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_is_down_is_asked_about_once_a_second_and_then_answers() {
    let provider = Provider::start_at(free_addr(), false).await;
    let iss = provider.base.clone();
    let app = app(KeySource::discover(&iss), &iss);
    let tok = token(&iss, Some("k1"));

    let started = Instant::now();
    let mut all = tokio::task::JoinSet::new();
    while started.elapsed() < Duration::from_millis(2500) {
        let (app, tok) = (app.clone(), tok.clone());
        all.spawn(async move { status_of(&app, &tok).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut sent = 0;
    while let Some(answer) = all.join_next().await {
        assert_eq!(answer.unwrap(), (503, "key_source_unavailable".to_owned()));
        sent += 1;
    }
    let asked = provider.discovery_hits();
    // One at the start, then at most one a second (and one of slack for a slow machine).
    let bound = started.elapsed().as_secs() as usize + 2;
    assert!(
        (2..=bound).contains(&asked),
        "{sent} tokens in {:?} asked {asked} times",
        started.elapsed()
    );
    eprintln!(
        "{sent} tokens in {:?} while down: {asked} discovery requests",
        started.elapsed()
    );

    provider.set_up();
    let (answers, took) = together(&app, &tok, TOGETHER).await;
    assert!(answers.iter().all(|a| a.0 == 200), "{answers:?}");
    assert!(took < Duration::from_millis(1800), "{took:?}");
    assert_eq!(provider.jwks_hits(), 1);
    eprintln!("up: {TOGETHER} tokens verified in {took:?}");
}

/// Tokens without `kid` from an issuer whose set holds one key verify as before: on first
/// use (the cold source fetches for them) and after, through discovery, with the default
/// settings.
#[tokio::test]
async fn a_token_without_kid_verifies_with_the_issuers_only_key() {
    let provider = Provider::start_at(free_addr(), true).await;
    let iss = provider.base.clone();
    let app = app(KeySource::discover(&iss), &iss);
    let no_kid = token(&iss, None);
    for _ in 0..3 {
        let out = send(
            app.clone(),
            get("/me", &[("authorization", &bearer(&no_kid))]),
        )
        .await;
        assert_eq!(out.status, 200, "{}", out.text());
        assert_eq!(out.json()["sub"], "alice");
    }
    assert_eq!(provider.jwks_hits(), 1);
    // A signature by another key is still refused.
    let other = token_by("rsa2", &iss, None);
    let out = send(
        app.clone(),
        get("/me", &[("authorization", &bearer(&other))]),
    )
    .await;
    out.check(&expect("token_signature_invalid").verbose());
    assert_eq!(provider.jwks_hits(), 1);
}
