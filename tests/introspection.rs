//! Opaque tokens through RFC 7662 introspection: an in-process endpoint on `127.0.0.1`
//! answers from a table of tokens, counts its calls and records how the client
//! authenticated; the layer's answers, its cache's bounds and its failures are asserted
//! against it.

mod common;
use common::*;

use auth_diagnostics::introspection::Introspector;
use auth_diagnostics::layer::{ConfigError, IntrospectionMistake};
use auth_diagnostics::AuthDiagnostics;
use axum::extract::State;
use axum::routing::post;
use axum::{Form, Json};
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENT: &str = "rs-client";
const CLIENT_SECRET: &str = "rs-secret-7f3a";
const AS_ISSUER: &str = "https://as.test";

/// The `Authorization` header and the form of one call.
type Seen = (Option<String>, HashMap<String, String>);

/// What the endpoint knows and saw.
#[derive(Default)]
struct Endpoint {
    answers: Mutex<HashMap<String, Value>>,
    calls: AtomicUsize,
    /// The `Authorization` header and the form of the last call.
    last: Mutex<Option<Seen>>,
    /// Time to wait before answering.
    delay: Mutex<Duration>,
    /// What a GET of each other path answers (404 for any path not here).
    documents: Mutex<HashMap<String, (StatusCode, Value)>>,
    /// GETs of any path but `/introspect`.
    gets: AtomicUsize,
}

impl Endpoint {
    fn answer(&self, token: &str, answer: Value) {
        self.answers
            .lock()
            .unwrap()
            .insert(token.to_owned(), answer);
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn introspect(
    State(ep): State<Arc<Endpoint>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    ep.calls.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    let token = form.get("token").cloned().unwrap_or_default();
    *ep.last.lock().unwrap() = Some((auth, form));
    let delay = *ep.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let answer = ep.answers.lock().unwrap().get(&token).cloned();
    Json(answer.unwrap_or_else(|| json!({"active": false})))
}

/// GET of any path: a discovery document, or 404.
async fn document(State(ep): State<Arc<Endpoint>>, uri: http::Uri) -> (StatusCode, Json<Value>) {
    ep.gets.fetch_add(1, Ordering::SeqCst);
    let known = ep.documents.lock().unwrap().get(uri.path()).cloned();
    let (status, doc) = known.unwrap_or((StatusCode::NOT_FOUND, json!({})));
    (status, Json(doc))
}

/// The endpoint, served until the sender is dropped or fired.
struct Served {
    url: String,
    state: Arc<Endpoint>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    async fn start() -> Self {
        let state = Arc::new(Endpoint::default());
        let app = axum::Router::new()
            .route("/introspect", post(introspect))
            .fallback(axum::routing::get(document))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/introspect", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap()
        });
        Self {
            url,
            state,
            stop: Some(stop),
            task,
        }
    }

    /// Stops serving: the port refuses connections afterwards.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

fn introspector(url: &str) -> Introspector {
    Introspector::new(url)
        .client_secret_basic(CLIENT, CLIENT_SECRET)
        .issuer(AS_ISSUER)
        .audience(AUDIENCE)
}

/// `/me` and `/admin` (scope `admin`) behind a layer that introspects at `ep` (and
/// verifies the test issuer's JWTs locally).
fn app(i: Introspector) -> axum::Router {
    bearer_app(AuthDiagnostics::new().verbose().introspection(i))
}

fn active(extra: Value) -> Value {
    let mut v = json!({"active": true, "aud": AUDIENCE, "iss": AS_ISSUER, "sub": "svc-1",
        "scope": "read admin", "exp": now() + 3600});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

async fn call(app: &axum::Router, path: &str, token: &str) -> Outcome {
    send(app.clone(), get(path, &[("authorization", &bearer(token))])).await
}

#[tokio::test]
async fn an_active_token_is_accepted_with_its_scopes() {
    let ep = Served::start().await;
    ep.state.answer("opaque-1", active(json!({})));
    let app = app(introspector(&ep.url));
    let out = call(&app, "/me", "opaque-1").await;
    assert_eq!(out.status, 200, "{}", out.text());
    assert_eq!(out.json()["sub"], "svc-1");
    assert_eq!(call(&app, "/admin", "opaque-1").await.status, 200);
    ep.state
        .answer("opaque-2", active(json!({"scope": "read", "sub": null})));
    let out = call(&app, "/admin", "opaque-2").await;
    assert_eq!(out.status, 403);
    assert_eq!(out.problem()["reason"], "insufficient_scope");
    // The request the endpoint saw: RFC 7662 §2.1 with client_secret_basic.
    let (auth, form) = ep.state.last.lock().unwrap().clone().unwrap();
    assert_eq!(form["token"], "opaque-2");
    assert_eq!(form["token_type_hint"], "access_token");
    assert!(!form.contains_key("client_secret"));
    let expected = b64(format!("{CLIENT}:{CLIENT_SECRET}").as_bytes());
    assert_eq!(auth.as_deref(), Some(format!("Basic {expected}").as_str()));
}

#[tokio::test]
async fn client_secret_post_sends_the_credentials_in_the_form() {
    let ep = Served::start().await;
    ep.state.answer("opaque-p", active(json!({})));
    let i = Introspector::new(&ep.url)
        .client_secret_post(CLIENT, CLIENT_SECRET)
        .audience(AUDIENCE);
    assert_eq!(call(&app(i), "/me", "opaque-p").await.status, 200);
    let (auth, form) = ep.state.last.lock().unwrap().clone().unwrap();
    assert_eq!(auth, None);
    assert_eq!(form["client_id"], CLIENT);
    assert_eq!(form["client_secret"], CLIENT_SECRET);
}

#[tokio::test]
async fn refusals_have_their_reasons() {
    let ep = Served::start().await;
    let app = app(introspector(&ep.url));
    let cases = [
        (
            "opaque-inactive",
            json!({"active": false}),
            "token_inactive",
        ),
        (
            "opaque-other-iss",
            active(json!({"iss": "https://evil.test"})),
            "token_issuer_mismatch",
        ),
        (
            "opaque-other-aud",
            active(json!({"aud": ["a", "b"]})),
            "token_audience_mismatch",
        ),
        (
            "opaque-expired",
            active(json!({"exp": now() - 65})),
            "token_expired",
        ),
        (
            "opaque-dpop-bound",
            active(json!({"cnf": {"jkt": "abc"}})),
            "token_dpop_bound",
        ),
        (
            "opaque-x5t-bound",
            active(json!({"cnf": {"x5t#S256": "abc"}})),
            "token_binding_unverifiable",
        ),
        (
            "opaque-refresh-token",
            active(json!({"token_type": "refresh_token"})),
            "token_type_rejected",
        ),
    ];
    for (token, answer, reason) in cases {
        ep.state.answer(token, answer);
        let out = call(&app, "/me", token).await;
        assert_eq!(out.status, 401, "{token}");
        assert_eq!(out.problem()["reason"], reason, "{token}");
        assert_eq!(
            out.challenge().param("error"),
            Some("invalid_token"),
            "{token}"
        );
        assert_eq!(out.event().field("reason"), reason);
    }
    // Unknown to the endpoint: inactive.
    let out = call(&app, "/me", "never-issued").await;
    assert_eq!(out.problem()["reason"], "token_inactive");
    // The types real servers name access tokens by pass (Keycloak `Bearer`, Hydra
    // `access_token`, lower-case `bearer`).
    for t in ["Bearer", "bearer", "access_token"] {
        let token = format!("opaque-typed-{t}");
        ep.state.answer(&token, active(json!({ "token_type": t })));
        assert_eq!(call(&app, "/me", &token).await.status, 200, "{t}");
    }
}

#[tokio::test]
async fn a_jwt_of_the_configured_issuer_never_reaches_the_endpoint() {
    let ep = Served::start().await;
    let app = app(introspector(&ep.url));
    let out = call(&app, "/me", &hs256(&good_claims())).await;
    assert_eq!(out.status, 200);
    let bad = hs256(&claims(json!({"exp": now() - 100})));
    assert_eq!(
        call(&app, "/me", &bad).await.problem()["reason"],
        "token_expired"
    );
    assert_eq!(ep.state.calls(), 0);
    // A JWT of another issuer is the authorization server's to judge.
    let other = hs256(&claims(json!({"iss": "https://elsewhere.test"})));
    ep.state.answer(&other, active(json!({})));
    assert_eq!(call(&app, "/me", &other).await.status, 200);
    assert_eq!(ep.state.calls(), 1);
}

#[tokio::test]
async fn active_entries_end_at_exp_and_refusals_after_their_ttl() {
    let ep = Served::start().await;
    let i = introspector(&ep.url).negative_cache_max_age(Duration::from_secs(1));
    let app = app(i);
    // Active until exp (2 s from now), although the cache's maximum is 60 s.
    ep.state.answer("short", active(json!({"exp": now() + 2})));
    assert_eq!(call(&app, "/me", "short").await.status, 200);
    assert_eq!(call(&app, "/me", "short").await.status, 200);
    assert_eq!(
        ep.state.calls(),
        1,
        "the second request is answered from the cache"
    );
    // Past exp the server calls it inactive, and the cache asks again.
    ep.state.answer("short", json!({"active": false}));
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let out = call(&app, "/me", "short").await;
    assert_eq!(ep.state.calls(), 2, "past exp the cache asks again");
    assert_eq!(out.problem()["reason"], "token_inactive");
    // Inactive is remembered for the negative TTL only: then the token may be valid.
    ep.state.answer("later", json!({"active": false}));
    assert_eq!(call(&app, "/me", "later").await.status, 401);
    ep.state.answer("later", active(json!({})));
    assert_eq!(
        call(&app, "/me", "later").await.status,
        401,
        "cached refusal"
    );
    let calls = ep.state.calls();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(call(&app, "/me", "later").await.status, 200);
    assert_eq!(ep.state.calls(), calls + 1);
}

#[tokio::test]
async fn endpoint_down_cached_tokens_pass_new_ones_get_503() {
    let ep = Served::start().await;
    ep.state.answer("cached", active(json!({})));
    let url = ep.url.clone();
    let app = app(introspector(&url));
    assert_eq!(call(&app, "/me", "cached").await.status, 200);
    ep.stop().await;
    assert_eq!(call(&app, "/me", "cached").await.status, 200);
    let out = call(&app, "/me", "new-token-xyz").await;
    assert_eq!(out.status, 503);
    assert_eq!(out.problem()["reason"], "introspection_unavailable");
    assert!(out.header("retry-after").is_some());
    assert!(out.header("www-authenticate").is_none());
    let e = out.event();
    assert_eq!(e.level, tracing::Level::ERROR);
    let shown = url.trim_end_matches("/introspect");
    assert!(e.field("message").contains(shown), "{}", e.line());
    // Not cached: the next request asks again (and fails again while it is down).
    assert_eq!(call(&app, "/me", "new-token-xyz").await.status, 503);
}

#[tokio::test]
async fn unusable_answers_are_503() {
    use axum::routing::any;
    let cases = [
        (500, "{}"),
        (401, r#"{"error":"invalid_client"}"#),
        (403, "{}"),
        (200, "<html>not json</html>"),
    ];
    for (status, body) in cases {
        let router = axum::Router::new().route(
            "/introspect",
            any(move || async move { (StatusCode::from_u16(status).unwrap(), body) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/introspect", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let out = call(&app(introspector(&url)), "/me", "some-token").await;
        assert_eq!(out.status, 503, "{status} {body}");
        assert_eq!(out.problem()["reason"], "introspection_unavailable");
        assert!(out.header("retry-after").is_some());
    }
    let closed = format!("http://127.0.0.1:{}/introspect", free_port());
    let out = call(&app(introspector(&closed)), "/me", "some-token").await;
    assert_eq!(out.status, 503);
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_thousand_concurrent_requests_make_one_call() {
    let ep = Served::start().await;
    ep.state.answer("busy-token", active(json!({})));
    *ep.state.delay.lock().unwrap() = Duration::from_millis(300);
    let app = app(introspector(&ep.url));
    let mut all = tokio::task::JoinSet::new();
    for _ in 0..1_000 {
        let app = app.clone();
        all.spawn(async move {
            use tower::ServiceExt;
            let req = get("/me", &[("authorization", &bearer("busy-token"))]);
            app.oneshot(req).await.unwrap().status()
        });
    }
    while let Some(status) = all.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(ep.state.calls(), 1);
}

#[tokio::test]
async fn the_token_never_appears_in_the_log() {
    let ep = Served::start().await;
    let secret_token = "opaque-token-do-not-log-1234567890";
    let (capture, _guard) = Capture::install();
    let app = app(introspector(&ep.url));
    ep.state.answer(secret_token, json!({"active": false}));
    let plain = |token: &str| {
        use tower::ServiceExt;
        app.clone()
            .oneshot(get("/me", &[("authorization", &bearer(token))]))
    };
    assert_eq!(plain(secret_token).await.unwrap().status(), 401);
    ep.stop().await;
    let down = plain("another-opaque-token-0987654321").await.unwrap();
    assert_eq!(down.status(), 503);
    let events = capture.all_events();
    assert!(!events.is_empty());
    for e in events {
        let line = e.line();
        assert!(!line.contains(secret_token), "{line}");
        assert!(!line.contains("another-opaque-token"), "{line}");
        assert!(!line.contains(CLIENT_SECRET), "{line}");
    }
}

#[test]
fn configuration_mistakes_are_found_when_the_layer_is_built() {
    let errors = AuthDiagnostics::new()
        .introspection(Introspector::new("http://as.example/introspect"))
        .try_build()
        .unwrap_err();
    let all: Vec<ConfigError> = errors.iter().cloned().collect();
    assert!(all.contains(&ConfigError::Introspection(
        IntrospectionMistake::NoAudience
    )));
    assert!(all.contains(&ConfigError::Introspection(
        IntrospectionMistake::NoClientAuthentication
    )));
    assert!(all.iter().any(|e| matches!(
        e,
        ConfigError::Introspection(IntrospectionMistake::EndpointUrl(_))
    )));
    let fine = Introspector::new("https://as.example/introspect")
        .client_secret_basic("a", "b")
        .accept_any_audience();
    assert!(AuthDiagnostics::new()
        .introspection(fine)
        .try_build()
        .is_ok());
}

/// The demo with `DEMO_INTROSPECTION_URL`: its Bearer routes take opaque tokens, as client
/// `demo-rs` with `client_secret_basic`; its own JWTs stay local.
#[tokio::test]
async fn the_demo_introspects_opaque_tokens_on_its_bearer_routes() {
    let ep = Served::start().await;
    let mut cfg = demo_config(auth_diagnostics::layer::DetailMode::Verbose);
    cfg.introspection = Some(demo::DemoIntrospection {
        url: ep.url.clone(),
        client_id: "demo-rs".into(),
        client_secret: "demo-rs-secret".into(),
        cache_s: 60,
    });
    let app = demo::app(&cfg);
    let answer = |scope: &str| {
        json!({"active": true, "aud": [AUDIENCE, "other"], "iss": ISSUER, "sub": "bob",
            "scope": scope, "exp": now() + 600})
    };
    ep.state.answer("demo-opaque-admin", answer("read admin"));
    ep.state.answer("demo-opaque-reader", answer("read"));
    let out = call(&app, "/me", "demo-opaque-admin").await;
    assert_eq!(out.status, 200, "{}", out.text());
    assert_eq!(out.json()["sub"], "bob");
    assert_eq!(call(&app, "/admin", "demo-opaque-admin").await.status, 200);
    let out = call(&app, "/admin", "demo-opaque-reader").await;
    assert_eq!(out.status, 403);
    assert_eq!(out.problem()["reason"], "insufficient_scope");
    let out = call(&app, "/me", "demo-opaque-unknown").await;
    assert_eq!(out.status, 401);
    assert_eq!(out.problem()["reason"], "token_inactive");
    let (auth, _) = ep.state.last.lock().unwrap().clone().unwrap();
    let expected = format!("Basic {}", b64(b"demo-rs:demo-rs-secret"));
    assert_eq!(auth.as_deref(), Some(expected.as_str()));
    // The demo's own JWTs are verified locally.
    let calls = ep.state.calls();
    assert_eq!(call(&app, "/me", &hs256(&good_claims())).await.status, 200);
    assert_eq!(ep.state.calls(), calls);
}

/// For an endpoint protected otherwise (Hydra's admin API): no credentials at all, said
/// explicitly.
#[tokio::test]
async fn without_client_authentication_sends_no_credentials() {
    let ep = Served::start().await;
    ep.state.answer("opaque-n", active(json!({})));
    let i = Introspector::new(&ep.url)
        .without_client_authentication()
        .audience(AUDIENCE);
    assert_eq!(call(&app(i), "/me", "opaque-n").await.status, 200);
    let (auth, form) = ep.state.last.lock().unwrap().clone().unwrap();
    assert_eq!(auth, None);
    assert!(!form.contains_key("client_id") && !form.contains_key("client_secret"));
}

/// `private_key_jwt` (RFC 7523 §2.2): the endpoint gets a fresh assertion signed with the
/// client's key, for itself, naming the client; a key that cannot sign is a configuration
/// error.
#[tokio::test]
async fn private_key_jwt_sends_a_signed_assertion() {
    use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
    let ep = Served::start().await;
    ep.state.answer("opaque-k", active(json!({})));
    let private = std::fs::read("tests/keys/rsa_private.pem").unwrap();
    let public = std::fs::read("tests/keys/rsa_public.pem").unwrap();
    let i = Introspector::new(&ep.url)
        .private_key_jwt(CLIENT, &private, Algorithm::RS256)
        .client_assertion_kid("client-key-1")
        .audience(AUDIENCE);
    assert_eq!(call(&app(i), "/me", "opaque-k").await.status, 200);
    let (auth, form) = ep.state.last.lock().unwrap().clone().unwrap();
    assert_eq!(auth, None);
    assert!(!form.contains_key("client_secret"));
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[ep.url.as_str()]);
    v.set_issuer(&[CLIENT]);
    let key = DecodingKey::from_rsa_pem(&public).unwrap();
    let jwt = decode::<Value>(&form["client_assertion"], &key, &v).unwrap();
    assert_eq!(jwt.header.kid.as_deref(), Some("client-key-1"));
    assert_eq!(jwt.claims["sub"], CLIENT);
    assert!(jwt.claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    let errors = AuthDiagnostics::new()
        .introspection(
            Introspector::new(&ep.url)
                .private_key_jwt(CLIENT, b"not a key", Algorithm::ES256)
                .audience(AUDIENCE),
        )
        .try_build()
        .unwrap_err();
    assert!(matches!(
        errors.first(),
        ConfigError::Introspection(IntrospectionMistake::ClientKey(_))
    ));
}

// ---------------------------------------------------------------------------------------
// DPoP-bound opaque tokens (RFC 9449 §6.2: the introspection answer carries `cnf.jkt`)
// ---------------------------------------------------------------------------------------

mod dpop_bound {
    use super::*;
    use auth_diagnostics::dpop::Dpop;
    use jsonwebtoken::{Algorithm, EncodingKey};
    use sha2::{Digest, Sha256};
    use std::sync::atomic::AtomicU64;

    /// The origin clients reach the API at, as proofs name it.
    const HOST: &str = "api.test";
    /// tests/keys/ec256_private.pem, public point: the client's proof key.
    const EC256_X: &str = "mOdDdERtdUohEyBt2KLtjJqOcsoVVNPdyU8N2gjwXH4";
    const EC256_Y: &str = "QWuiB8Ik1G8LXz9lLyLF3EbQKzVu2Cu0QCHoahdvOSs";
    /// tests/keys/ec384_private.pem, public point: a key the client does not hold.
    const EC384_X: &str = "c-46NNSnIaHxYlfkZ1BJzvfmGqaMxftNYmjLe8kY5iizgPYHvIsiksGVQbl1MtNx";
    const EC384_Y: &str = "b6MNVaPJrHO9DbDQ4COszSEAHT7kTrNopnL7GpJk3SG8gOGY-3TrUAlqpR73iQSj";

    /// RFC 7638 thumbprint of an EC public key.
    fn jkt(crv: &str, x: &str, y: &str) -> String {
        let canonical = format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#);
        b64url(&Sha256::digest(canonical.as_bytes()))
    }

    fn client_jkt() -> String {
        jkt("P-256", EC256_X, EC256_Y)
    }

    /// A proof by the client's key for GET `path` on [`HOST`], `ath` the hash of
    /// `ath_of`.
    fn proof(path: &str, ath_of: &str) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let header = json!({"typ": "dpop+jwt", "alg": "ES256",
            "jwk": {"kty": "EC", "crv": "P-256", "x": EC256_X, "y": EC256_Y}});
        let claims = json!({
            "jti": format!("jti-{}-{}", now(), N.fetch_add(1, Ordering::Relaxed)),
            "htm": "GET",
            "htu": format!("http://{HOST}{path}"),
            "iat": now(),
            "ath": b64url(&Sha256::digest(ath_of.as_bytes())),
        });
        let part = |v: &Value| b64url(&serde_json::to_vec(v).unwrap());
        let message = format!("{}.{}", part(&header), part(&claims));
        let pem = std::fs::read("tests/keys/ec256_private.pem").unwrap();
        let key = EncodingKey::from_ec_pem(&pem).unwrap();
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::ES256).unwrap();
        format!("{message}.{sig}")
    }

    /// `/me` and `/admin` behind a layer taking Bearer (the suite's JWTs, opaque tokens
    /// introspected) and DPoP (the same, bound).
    fn both_app(url: &str) -> axum::Router {
        let dpop = Dpop::new(jwt())
            .introspection(introspector(url))
            .public_origin(format!("http://{HOST}"));
        let layer = AuthDiagnostics::new()
            .verbose()
            .introspection(introspector(url))
            .dpop(dpop);
        jwt_app(layer, jwt())
    }

    /// GET `path` with `Authorization: DPoP <token>` and, when given, `DPoP: <proof>`.
    async fn dpop_call(
        app: &axum::Router,
        path: &str,
        token: &str,
        proof: Option<&str>,
    ) -> Outcome {
        let auth = format!("DPoP {token}");
        let mut headers = vec![("host", HOST), ("authorization", auth.as_str())];
        if let Some(p) = proof {
            headers.push(("dpop", p));
        }
        send(app.clone(), get(path, &headers)).await
    }

    /// A 401 whose reason is `reason`, its error on the DPoP challenge.
    #[track_caller]
    fn refused(out: &Outcome, reason: &str, error: &str) {
        assert_eq!(out.status, 401, "{}", out.text());
        assert_eq!(out.problem()["reason"], reason);
        assert_eq!(out.event().field("reason"), reason);
        let dpop = out.challenges().into_iter().find(|c| c.scheme == "DPoP");
        assert_eq!(dpop.unwrap().param("error"), Some(error));
    }

    #[tokio::test]
    async fn a_bound_opaque_token_with_a_right_proof_is_accepted() {
        let ep = Served::start().await;
        ep.state.answer(
            "opaque-bound",
            active(json!({"cnf": {"jkt": client_jkt()}})),
        );
        let app = both_app(&ep.url);
        let out = dpop_call(
            &app,
            "/me",
            "opaque-bound",
            Some(&proof("/me", "opaque-bound")),
        )
        .await;
        assert_eq!(out.ok(), json!({"sub": "svc-1", "scheme": "DPoP"}));
        // The answer's scopes are the principal's, as for a JWT.
        let admin = proof("/admin", "opaque-bound");
        let out = dpop_call(&app, "/admin", "opaque-bound", Some(&admin)).await;
        assert_eq!(out.status, 200, "{}", out.text());
        // The second request used the cached answer.
        assert_eq!(ep.state.calls(), 1);
        // The suite's bound JWTs still verify locally under DPoP.
        let bound_jwt = hs256(&claims(json!({"cnf": {"jkt": client_jkt()}})));
        let out = dpop_call(&app, "/me", &bound_jwt, Some(&proof("/me", &bound_jwt))).await;
        assert_eq!(out.ok(), json!({"sub": "alice", "scheme": "DPoP"}));
        assert_eq!(ep.state.calls(), 1);
    }

    #[tokio::test]
    async fn the_answer_and_the_proof_must_agree() {
        let ep = Served::start().await;
        let other = jkt("P-384", EC384_X, EC384_Y);
        ep.state
            .answer("opaque-other-key", active(json!({"cnf": {"jkt": other}})));
        ep.state.answer(
            "opaque-bound",
            active(json!({"cnf": {"jkt": client_jkt()}})),
        );
        ep.state.answer("opaque-unbound", active(json!({})));
        ep.state.answer(
            "opaque-x5t",
            active(json!({"cnf": {"jkt": client_jkt(), "x5t#S256": "abc"}})),
        );
        let app = both_app(&ep.url);
        let right = |t: &str| proof("/me", t);

        // Bound to a key the proof was not signed with.
        let out = dpop_call(
            &app,
            "/me",
            "opaque-other-key",
            Some(&right("opaque-other-key")),
        )
        .await;
        refused(&out, "dpop_key_mismatch", "invalid_token");
        // Bound, sent as Bearer: what a thief would send.
        let out = call(&app, "/me", "opaque-bound").await;
        assert_eq!(out.status, 401);
        assert_eq!(out.problem()["reason"], "token_dpop_bound");
        // No proof at all.
        let out = dpop_call(&app, "/me", "opaque-bound", None).await;
        refused(&out, "dpop_proof_missing", "invalid_dpop_proof");
        // A proof for another access token (ath).
        let out = dpop_call(&app, "/me", "opaque-bound", Some(&right("another-token"))).await;
        refused(&out, "dpop_proof_ath_mismatch", "invalid_dpop_proof");
        // A proof for another URL.
        let out = dpop_call(
            &app,
            "/me",
            "opaque-bound",
            Some(&proof("/admin", "opaque-bound")),
        )
        .await;
        refused(&out, "dpop_proof_url_mismatch", "invalid_dpop_proof");
        // An active answer without cnf.jkt, sent under DPoP: as a JWT without one.
        let out = dpop_call(
            &app,
            "/me",
            "opaque-unbound",
            Some(&right("opaque-unbound")),
        )
        .await;
        refused(&out, "dpop_token_unbound", "invalid_token");
        // A binding this route cannot verify beside the jkt.
        let out = dpop_call(&app, "/me", "opaque-x5t", Some(&right("opaque-x5t"))).await;
        refused(&out, "token_binding_unverifiable", "invalid_token");
        // Unknown to the endpoint.
        let out = dpop_call(&app, "/me", "opaque-never", Some(&right("opaque-never"))).await;
        refused(&out, "token_inactive", "invalid_token");
        // A proof used twice.
        let once = right("opaque-bound");
        assert_eq!(
            dpop_call(&app, "/me", "opaque-bound", Some(&once))
                .await
                .status,
            200
        );
        let out = dpop_call(&app, "/me", "opaque-bound", Some(&once)).await;
        refused(&out, "dpop_proof_replayed", "invalid_dpop_proof");
        // The endpoint was asked about the token alone, never sent the proof.
        let (_, form) = ep.state.last.lock().unwrap().clone().unwrap();
        assert!(!form.values().any(|v| v.contains("dpop+jwt")));
    }

    /// A defective proof is refused before the endpoint is asked.
    #[tokio::test]
    async fn a_bad_proof_costs_no_introspection_call() {
        let ep = Served::start().await;
        let app = both_app(&ep.url);
        let out = dpop_call(&app, "/me", "opaque-x", Some(&proof("/me", "other"))).await;
        refused(&out, "dpop_proof_ath_mismatch", "invalid_dpop_proof");
        assert_eq!(ep.state.calls(), 0);
    }

    /// `Dpop::introspected`: opaque tokens only, no JWT authenticator; every token is
    /// introspected.
    #[tokio::test]
    async fn opaque_tokens_only() {
        let ep = Served::start().await;
        ep.state.answer(
            "opaque-bound",
            active(json!({"cnf": {"jkt": client_jkt()}})),
        );
        let dpop =
            Dpop::introspected(introspector(&ep.url)).public_origin(format!("http://{HOST}"));
        let app = axum::Router::new()
            .route(
                "/me",
                axum::routing::get(|p: auth_diagnostics::Principal| async move {
                    Json(json!({"sub": p.id(), "scheme": p.scheme()}))
                }),
            )
            .layer(AuthDiagnostics::new().verbose().dpop(dpop));
        let out = dpop_call(
            &app,
            "/me",
            "opaque-bound",
            Some(&proof("/me", "opaque-bound")),
        )
        .await;
        assert_eq!(out.ok(), json!({"sub": "svc-1", "scheme": "DPoP"}));
        // A JWT is introspected too: the endpoint does not know it.
        let jwt = hs256(&claims(json!({"cnf": {"jkt": client_jkt()}})));
        let out = dpop_call(&app, "/me", &jwt, Some(&proof("/me", &jwt))).await;
        refused(&out, "token_inactive", "invalid_token");
        assert_eq!(ep.state.calls(), 2);
        // Bearer is not spoken here.
        let out = call(&app, "/me", "opaque-bound").await;
        assert_eq!(out.status, 401);
        // The introspector's mistakes are the layer's.
        let errors = AuthDiagnostics::new()
            .dpop(
                Dpop::introspected(Introspector::new(&ep.url)).public_origin("https://api.example"),
            )
            .try_build()
            .unwrap_err();
        let all: Vec<ConfigError> = errors.iter().cloned().collect();
        assert!(all.contains(&ConfigError::Introspection(
            IntrospectionMistake::NoClientAuthentication
        )));
    }
}

// ---------------------------------------------------------------------------------------
// The endpoint taken from the issuer's discovery document
// ---------------------------------------------------------------------------------------

mod discovered {
    use super::*;

    impl Served {
        /// `http://127.0.0.1:<port>`.
        fn base(&self) -> String {
            self.url.trim_end_matches("/introspect").to_owned()
        }
        /// GET `path` answers `doc`.
        fn serve(&self, path: &str, status: StatusCode, doc: Value) {
            let mut docs = self.state.documents.lock().unwrap();
            docs.insert(path.to_owned(), (status, doc));
        }
        fn gets(&self) -> usize {
            self.state.gets.load(Ordering::SeqCst)
        }
    }

    fn discovering(issuer: &str) -> Introspector {
        Introspector::discover(issuer)
            .client_secret_basic(CLIENT, CLIENT_SECRET)
            .audience(AUDIENCE)
    }

    /// An answer for `issuer`'s token.
    fn active_of(issuer: &str) -> Value {
        active(json!({ "iss": issuer }))
    }

    /// The problem's detail, for the cause of a 503.
    fn detail(out: &Outcome) -> String {
        out.problem()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    #[track_caller]
    fn unavailable(out: &Outcome, cause: &str) {
        assert_eq!(out.status, 503, "{}", out.text());
        assert_eq!(out.problem()["reason"], "introspection_unavailable");
        assert!(out.header("retry-after").is_some());
        let detail = detail(out);
        assert!(detail.contains(cause), "{detail}");
        // The log has the cause, as the verbose problem body does.
        assert!(out.event().line().contains(cause), "{}", out.event().line());
        assert_eq!(out.event().field("reason"), "introspection_unavailable");
        assert_eq!(out.event().level, tracing::Level::ERROR);
    }

    #[tokio::test]
    async fn the_openid_configuration_names_the_endpoint_and_the_issuer() {
        let ep = Served::start().await;
        let issuer = ep.base();
        ep.serve(
            "/.well-known/openid-configuration",
            StatusCode::OK,
            json!({"issuer": issuer, "introspection_endpoint": ep.url,
                "jwks_uri": format!("{issuer}/jwks")}),
        );
        ep.state.answer("opaque-d1", active_of(&issuer));
        ep.state.answer("opaque-d2", active_of(&issuer));
        ep.state.answer("opaque-d3", active_of("https://evil.test"));
        let app = app(discovering(&issuer));
        let out = call(&app, "/me", "opaque-d1").await;
        assert_eq!(out.status, 200, "{}", out.text());
        assert_eq!(out.json()["sub"], "svc-1");
        assert_eq!(call(&app, "/me", "opaque-d2").await.status, 200);
        // The issuer is the one an answer's iss must be.
        let out = call(&app, "/me", "opaque-d3").await;
        assert_eq!(out.problem()["reason"], "token_issuer_mismatch");
        // Discovered once (when the layer was built), then kept.
        assert_eq!(ep.gets(), 1);
        assert_eq!(ep.state.calls(), 3);
    }

    /// RFC 8414's location, for an issuer with a path, when OpenID Connect's is 404.
    #[tokio::test]
    async fn rfc_8414_metadata_when_there_is_no_openid_configuration() {
        let ep = Served::start().await;
        let issuer = format!("{}/tenant-1", ep.base());
        ep.serve(
            "/.well-known/oauth-authorization-server/tenant-1",
            StatusCode::OK,
            json!({"issuer": issuer, "introspection_endpoint": ep.url}),
        );
        ep.state.answer("opaque-t", active_of(&issuer));
        let out = call(&app(discovering(&issuer)), "/me", "opaque-t").await;
        assert_eq!(out.status, 200, "{}", out.text());
        assert_eq!(ep.gets(), 2);
    }

    #[tokio::test]
    async fn a_document_that_cannot_be_trusted_or_used_is_503_with_its_cause() {
        let ep = Served::start().await;
        let base = ep.base();
        let oidc = |tenant: &str| format!("/{tenant}/.well-known/openid-configuration");
        let cases = [
            // RFC 8414 §3.3: another issuer's document is not this issuer's.
            (
                "other-issuer",
                StatusCode::OK,
                json!({"issuer": "https://as.test", "introspection_endpoint": ep.url}),
                "names issuer",
            ),
            (
                "no-endpoint",
                StatusCode::OK,
                json!({"issuer": format!("{base}/no-endpoint")}),
                "names no introspection_endpoint",
            ),
            (
                "plain-http",
                StatusCode::OK,
                json!({"issuer": format!("{base}/plain-http"),
                    "introspection_endpoint": "http://as.example/introspect"}),
                "introspection_endpoint",
            ),
            // A redirect is not followed: whoever answers with one would choose where the
            // client's credentials and the tokens go.
            (
                "moved",
                StatusCode::FOUND,
                json!({}),
                "redirects are not followed",
            ),
            ("broken", StatusCode::BAD_GATEWAY, json!({}), "HTTP 502"),
            ("absent", StatusCode::NOT_FOUND, json!({}), "HTTP 404"),
        ];
        for (tenant, status, doc, cause) in cases {
            ep.serve(&oidc(tenant), status, doc);
            let issuer = format!("{base}/{tenant}");
            ep.state.answer("opaque-u", active_of(&issuer));
            let app = app(discovering(&issuer));
            let out = call(&app, "/me", "opaque-u").await;
            unavailable(&out, cause);
        }
        assert_eq!(ep.state.calls(), 0, "no token went anywhere");
    }

    /// An unreachable issuer: 503, asked again after the retry interval, and the endpoint
    /// is used once it is found.
    #[tokio::test]
    async fn an_issuer_that_is_down_is_503_and_found_later() {
        let ep = Served::start().await;
        let issuer = format!("{}/late", ep.base());
        ep.state.answer("opaque-l", active_of(&issuer));
        let late = app(discovering(&issuer));
        let out = call(&late, "/me", "opaque-l").await;
        unavailable(&out, "HTTP 404");
        let gets = ep.gets();
        // Within the retry interval the failure stands, without a fetch.
        ep.serve(
            "/late/.well-known/openid-configuration",
            StatusCode::OK,
            json!({"issuer": issuer, "introspection_endpoint": ep.url}),
        );
        unavailable(&call(&late, "/me", "opaque-l").await, "HTTP 404");
        assert_eq!(ep.gets(), gets);
        tokio::time::sleep(Duration::from_millis(5_100)).await;
        assert_eq!(call(&late, "/me", "opaque-l").await.status, 200);

        let down = Introspector::discover(format!("http://127.0.0.1:{}", free_port()))
            .client_secret_basic(CLIENT, CLIENT_SECRET)
            .audience(AUDIENCE);
        let out = call(&app(down), "/me", "opaque-l").await;
        unavailable(
            &out,
            "discovering the introspection endpoint of http://127.0.0.1:",
        );
    }

    #[test]
    fn a_plain_http_issuer_is_a_configuration_error() {
        let errors = AuthDiagnostics::new()
            .introspection(discovering("http://as.example"))
            .try_build()
            .unwrap_err();
        assert!(errors.iter().any(|e| matches!(
            e,
            ConfigError::Introspection(IntrospectionMistake::EndpointUrl(_))
        )));
        assert!(AuthDiagnostics::new()
            .introspection(discovering("https://as.example"))
            .try_build()
            .is_ok());
    }
}
