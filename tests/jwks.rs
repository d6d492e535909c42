//! Keys an identity provider publishes: JWK sets and discovery documents served by an
//! in-process provider on `127.0.0.1:0` whose answers each test controls (keys, status,
//! delay, size, `Cache-Control`) and which counts what it is asked.

mod common;
use common::*;
use tower::Layer as _;

use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::{Algorithm, KeySource};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

// An identity provider ----------------------------------------------------------------------

/// What the provider answers, and what it was asked.
struct IdpState {
    keys: Vec<Value>,
    /// The discovery document's `issuer`, when it is not the provider's own URL.
    doc_issuer: Option<String>,
    /// Serve discovery only at RFC 8414's location.
    rfc8414_only: bool,
    status: u16,
    delay: Duration,
    cache_control: Option<String>,
    /// Bytes appended to the key set (an oversized document).
    padding: usize,
    jwks_hits: usize,
    discovery_hits: usize,
    /// Every path asked for that the provider does not serve.
    other: Vec<String>,
}

#[derive(Clone)]
struct Idp {
    base: String,
    state: Arc<Mutex<IdpState>>,
}

impl Idp {
    /// A provider serving `keys` at `/jwks` and its discovery document.
    async fn start(keys: Vec<Value>) -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let idp = Idp {
            base,
            state: Arc::new(Mutex::new(IdpState {
                keys,
                doc_issuer: None,
                rfc8414_only: false,
                status: 200,
                delay: Duration::ZERO,
                cache_control: None,
                padding: 0,
                jwks_hits: 0,
                discovery_hits: 0,
                other: Vec::new(),
            })),
        };
        let app = axum::Router::new()
            .route("/jwks", axum::routing::get(jwks))
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(|s| discovery(s, false)),
            )
            .route(
                "/.well-known/oauth-authorization-server",
                axum::routing::get(|s| discovery(s, true)),
            )
            .fallback(|State(idp): State<Idp>, uri: http::Uri| async move {
                idp.edit(|s| s.other.push(uri.path().to_owned()));
                StatusCode::NOT_FOUND
            })
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        idp
    }

    fn edit<T>(&self, f: impl FnOnce(&mut IdpState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    fn jwks_hits(&self) -> usize {
        self.edit(|s| s.jwks_hits)
    }

    fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base)
    }

    /// A JWK set source for this provider, refreshing on a miss at once.
    fn source(&self) -> KeySource {
        KeySource::jwks(self.jwks_url()).miss_refresh_interval(Duration::ZERO)
    }
}

async fn jwks(State(idp): State<Idp>) -> Response {
    let (keys, status, delay, cache, padding) = idp.edit(|s| {
        s.jwks_hits += 1;
        (
            s.keys.clone(),
            s.status,
            s.delay,
            s.cache_control.clone(),
            s.padding,
        )
    });
    tokio::time::sleep(delay).await;
    let mut body = json!({ "keys": keys });
    if padding > 0 {
        body["padding"] = json!("x".repeat(padding));
    }
    let mut response = (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    if let Some(cc) = cache {
        response
            .headers_mut()
            .insert("cache-control", HeaderValue::from_str(&cc).unwrap());
    }
    response
}

async fn discovery(State(idp): State<Idp>, rfc8414: bool) -> Response {
    let (issuer, only) = idp.edit(|s| {
        s.discovery_hits += 1;
        (s.doc_issuer.clone(), s.rfc8414_only)
    });
    if only != rfc8414 {
        return StatusCode::NOT_FOUND.into_response();
    }
    axum::Json(json!({
        "issuer": issuer.unwrap_or_else(|| idp.base.clone()),
        "jwks_uri": idp.jwks_url(),
    }))
    .into_response()
}

// Keys and tokens ---------------------------------------------------------------------------

/// A test key: `tests/keys/{name}_private.pem` and the algorithm it signs.
#[derive(Clone, Copy)]
struct TestKey {
    name: &'static str,
    alg: Algorithm,
}

const RSA: TestKey = TestKey {
    name: "rsa",
    alg: Algorithm::RS256,
};
const RSA2: TestKey = TestKey {
    name: "rsa2",
    alg: Algorithm::RS256,
};
const EC: TestKey = TestKey {
    name: "ec256",
    alg: Algorithm::ES256,
};
const ED: TestKey = TestKey {
    name: "ed25519",
    alg: Algorithm::EdDSA,
};

impl TestKey {
    fn encoding(self) -> EncodingKey {
        let dir = env!("CARGO_MANIFEST_DIR");
        let pem = std::fs::read(format!("{dir}/tests/keys/{}_private.pem", self.name)).unwrap();
        match &self.name[..2] {
            "rs" => EncodingKey::from_rsa_pem(&pem),
            "ec" => EncodingKey::from_ec_pem(&pem),
            _ => EncodingKey::from_ed_pem(&pem),
        }
        .unwrap()
    }

    /// Its public JWK with `kid` and `use: sig`.
    fn jwk(self, kid: &str) -> Value {
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&self.encoding(), self.alg).unwrap())
                .unwrap();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk
    }

    /// A token with the default test claims (issuer `iss`), signed with this key and
    /// naming `kid`.
    fn token(self, kid: Option<&str>, iss: &str) -> String {
        self.token_with(kid, claims(json!({ "iss": iss })))
    }

    fn token_with(self, kid: Option<&str>, claims: serde_json::Map<String, Value>) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_owned);
        sign(&header, &claims, &self.encoding())
    }
}

const ISS: &str = "https://idp.test";

/// `/me` behind a verbose layer with `source` for [`ISS`] and the test audience.
fn app_for(source: KeySource) -> axum::Router {
    app_in(source, DetailMode::Verbose)
}

fn app_in(source: KeySource, mode: DetailMode) -> axum::Router {
    let jwt = JwtAuthenticator::from_source(source)
        .issuer(ISS)
        .audience(AUDIENCE)
        .require_claims(["sub"]);
    jwt_app(layer(mode), jwt)
}

async fn me(app: &axum::Router, token: &str) -> Outcome {
    send(
        app.clone(),
        get("/me", &[("authorization", &bearer(token))]),
    )
    .await
}

/// The status and `reason` of a request sent without capturing logs (for concurrent
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

async fn ready(source: &KeySource) {
    tokio::time::timeout(Duration::from_secs(5), source.ready())
        .await
        .expect("keys within 5 s");
}

// Tests -------------------------------------------------------------------------------------

#[tokio::test]
async fn rs256_es256_and_eddsa_keys_of_a_set_verify() {
    let idp = Idp::start(vec![RSA.jwk("r1"), EC.jwk("e1"), ED.jwk("d1")]).await;
    let source = idp.source();
    let app = app_for(source.clone());
    ready(&source).await;
    for (key, kid) in [(RSA, "r1"), (EC, "e1"), (ED, "d1")] {
        let out = me(&app, &key.token(Some(kid), ISS)).await;
        assert_eq!(out.status, 200, "{kid}: {}", out.text());
        assert_eq!(out.json()["sub"], "alice");
    }
    assert_eq!(idp.jwks_hits(), 1, "one fetch serves every request");

    // HS256 is never verified with a published set, whatever the token says.
    let out = me(&app, &hs256(&claims(json!({ "iss": ISS })))).await;
    out.check(&expect("token_algorithm_rejected").verbose());
}

#[tokio::test]
async fn the_layer_builds_without_network_and_the_first_request_waits_for_the_keys() {
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    idp.edit(|s| s.delay = Duration::from_millis(300));
    let app = app_for(idp.source());
    assert_eq!(
        idp.jwks_hits(),
        0,
        "nothing is fetched before the runtime runs"
    );
    // Twenty requests arrive while the first fetch is under way: they share it.
    let token = RSA.token(Some("r1"), ISS);
    let mut all = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (app, token) = (app.clone(), token.clone());
        all.spawn(async move { status_of(&app, &token).await });
    }
    while let Some(r) = all.join_next().await {
        assert_eq!(r.unwrap(), (200, String::new()));
    }
    assert_eq!(idp.jwks_hits(), 1);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_with_one_fetch() {
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    let source = idp.source();
    let app = app_for(source.clone());
    ready(&source).await;
    idp.edit(|s| s.keys.push(RSA2.jwk("r2")));
    let rotated = RSA2.token(Some("r2"), ISS);
    for _ in 0..5 {
        assert_eq!(me(&app, &rotated).await.status, 200);
    }
    assert_eq!(idp.jwks_hits(), 2, "the new kid costs one fetch, once");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_one_fetch_per_interval() {
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    let source = idp.source().miss_refresh_interval(Duration::from_secs(60));
    let app = app_for(source.clone());
    ready(&source).await;
    let mut all = tokio::task::JoinSet::new();
    for i in 0..100 {
        let app = app.clone();
        let token = RSA.token(Some(&format!("made-up-{i}")), ISS);
        all.spawn(async move { status_of(&app, &token).await });
    }
    while let Some(r) = all.join_next().await {
        assert_eq!(r.unwrap(), (401, "token_key_unknown".to_owned()));
    }
    assert!(
        idp.jwks_hits() <= 2,
        "100 unknown kids fetched the set {} times",
        idp.jwks_hits()
    );
    // Known keys still verify, without a fetch.
    let hits = idp.jwks_hits();
    assert_eq!(me(&app, &RSA.token(Some("r1"), ISS)).await.status, 200);
    assert_eq!(idp.jwks_hits(), hits);
}

#[tokio::test]
async fn token_key_unknown_says_when_the_set_was_fetched_and_what_it_holds() {
    let idp = Idp::start(vec![RSA.jwk("r1"), EC.jwk("e1")]).await;
    let source = idp.source();
    let app = app_for(source.clone());
    ready(&source).await;
    let out = me(&app, &RSA2.token(Some("gone"), ISS)).await;
    let r = out.check(
        &expect("token_key_unknown")
            .verbose()
            .token_fields()
            .field("kid", "gone")
            .field("key_source", idp.jwks_url())
            .field("key_ids", "r1 e1")
            .present("keys_fetched_at")
            .no_field("fetch_error"),
    );
    assert!(
        r.detail().contains("no key with kid gone"),
        "{}",
        r.detail()
    );
    assert_eq!(idp.jwks_hits(), 2, "the miss refreshed the set once");
}

#[tokio::test]
async fn keys_removed_from_the_set_stop_verifying_after_the_refresh() {
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    let source = idp.source();
    let app = app_for(source.clone());
    ready(&source).await;
    let old = RSA.token(Some("r1"), ISS);
    assert_eq!(me(&app, &old).await.status, 200);
    idp.edit(|s| s.keys = vec![RSA2.jwk("r2")]);
    // Until a refresh, the cached key still verifies.
    assert_eq!(me(&app, &old).await.status, 200);
    // A token of the new key makes the refresh that drops r1.
    assert_eq!(me(&app, &RSA2.token(Some("r2"), ISS)).await.status, 200);
    let out = me(&app, &old).await;
    out.check(&expect("token_key_unknown").verbose().field("key_ids", "r2"));
}

#[tokio::test]
async fn cache_control_max_age_schedules_the_background_refresh() {
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    idp.edit(|s| s.cache_control = Some("public, max-age=1".into()));
    let source = idp
        .source()
        .refresh_bounds(Duration::from_secs(1), Duration::from_secs(3600));
    let _app = app_for(source.clone());
    ready(&source).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let hits = idp.jwks_hits();
    assert!(
        (2..=4).contains(&hits),
        "max-age=1 over 2.5 s: {hits} fetches"
    );

    // The lower bound holds against a provider that says max-age=0.
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    idp.edit(|s| s.cache_control = Some("no-cache".into()));
    let source = idp
        .source()
        .refresh_bounds(Duration::from_secs(60), Duration::from_secs(3600));
    let _app = app_for(source.clone());
    ready(&source).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(idp.jwks_hits(), 1);
}

#[tokio::test]
async fn an_outage_with_keys_cached_changes_nothing_for_clients() {
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    let source = idp.source();
    let app = app_for(source.clone());
    ready(&source).await;
    idp.edit(|s| s.status = 500);
    for _ in 0..3 {
        assert_eq!(me(&app, &RSA.token(Some("r1"), ISS)).await.status, 200);
    }
    // An unknown kid now cannot be told apart from a key the set may have gained: the
    // refresh fails, and that is a server fault, not the client's.
    let out = me(&app, &RSA2.token(Some("r2"), ISS)).await;
    let r = out.check(
        &expect("key_source_unavailable")
            .verbose()
            .field("key_ids", "r1")
            .present("keys_fetched_at"),
    );
    assert!(r.event.field("fetch_error").contains("HTTP 500"));
}

#[tokio::test]
async fn no_keys_and_an_unreachable_source_is_503_with_retry_after() {
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    idp.edit(|s| s.status = 500);
    let source = idp.source();
    for mode in [DetailMode::Verbose, DetailMode::Production] {
        let app = app_in(source.clone(), mode);
        let out = me(&app, &RSA.token(Some("r1"), ISS)).await;
        let r = out.check(
            &expect("key_source_unavailable")
                .mode(mode)
                .field("key_source", idp.jwks_url())
                .token_fields(),
        );
        let secs: u64 = out.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&secs));
        assert!(out.header("www-authenticate").is_none());
        assert!(r.event.field("fetch_error").contains("HTTP 500"));
        let body = out.text();
        if mode == DetailMode::Production {
            assert!(
                !body.contains("127.0.0.1"),
                "the client never sees the URL: {body}"
            );
        }
    }

    // A closed port: the connection error is named.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let source = KeySource::jwks(format!("http://{closed}/jwks"));
    let app = app_for(source);
    let out = me(&app, &RSA.token(Some("r1"), ISS)).await;
    let r = out.check(&expect("key_source_unavailable").verbose());
    let error = r.event.field("fetch_error").to_ascii_lowercase();
    assert!(error.contains("connect"), "{error}");
}

#[tokio::test]
async fn the_background_fetch_failure_is_logged_at_error_with_the_url() {
    let idp = Idp::start(vec![]).await;
    idp.edit(|s| s.status = 503);
    let (capture, _guard) = Capture::install();
    let source = idp.source();
    let _app = app_for(source.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = capture.all_events();
    let failed = events
        .iter()
        .find(|e| e.target == "auth_diagnostics::keys" && e.level == Level::ERROR)
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(failed.field("key_source"), idp.jwks_url());
    assert_eq!(failed.field("fetch_error_kind"), "Status");
    assert_eq!(failed.field("keys_cached"), "false");
}

#[tokio::test]
async fn a_slow_source_times_out() {
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    idp.edit(|s| s.delay = Duration::from_secs(3));
    let source = idp
        .source()
        .fetch_timeout(Duration::from_millis(200))
        .max_wait(Duration::from_secs(1));
    let app = app_for(source);
    let out = me(&app, &RSA.token(Some("r1"), ISS)).await;
    let r = out.check(&expect("key_source_unavailable").verbose());
    assert!(
        r.event
            .field("fetch_error")
            .contains("no answer within 200ms"),
        "{}",
        r.event.field("fetch_error")
    );
}

#[tokio::test]
async fn an_oversized_set_is_refused_and_cached_keys_stay() {
    // Too many bytes, on a cold cache.
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    idp.edit(|s| s.padding = 4096);
    let app = app_for(idp.source().max_bytes(2048));
    let r = me(&app, &RSA.token(Some("r1"), ISS))
        .await
        .check(&expect("key_source_unavailable").verbose());
    assert!(r
        .event
        .field("fetch_error")
        .contains("larger than 2048 bytes"));

    // Too many keys, after a good set: the good set stays in use.
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    let source = idp.source().max_keys(2);
    let app = app_for(source.clone());
    ready(&source).await;
    idp.edit(|s| s.keys = vec![RSA2.jwk("a"), RSA2.jwk("b"), RSA2.jwk("c")]);
    let r = me(&app, &RSA2.token(Some("a"), ISS)).await.check(
        &expect("key_source_unavailable")
            .verbose()
            .field("key_ids", "r1"),
    );
    assert!(r
        .event
        .field("fetch_error")
        .contains("3 keys, more than the 2 allowed"));
    assert_eq!(me(&app, &RSA.token(Some("r1"), ISS)).await.status, 200);
}

#[tokio::test]
async fn a_jwk_that_disagrees_with_the_token_does_not_verify_it() {
    let mut rs384 = RSA.jwk("pinned");
    rs384["alg"] = json!("RS384");
    let mut enc = RSA.jwk("enc");
    enc["use"] = json!("enc");
    let mut wrap = RSA.jwk("wrap");
    wrap["key_ops"] = json!(["wrapKey"]);
    let idp = Idp::start(vec![EC.jwk("ec"), rs384, enc, wrap, RSA2.jwk("ok")]).await;
    let source = idp.source();
    let app = app_for(source.clone());
    ready(&source).await;
    for (kid, detail) in [
        ("ec", "the set's key ec is not for RS256"),
        ("pinned", "the set's key pinned is not for RS256"),
        ("enc", "was skipped (use enc, not sig)"),
        ("wrap", "was skipped (key_ops does not include verify)"),
    ] {
        let out = me(&app, &RSA.token(Some(kid), ISS)).await;
        let r = out.check(&expect("token_key_unknown").verbose().field("kid", kid));
        assert!(r.detail().contains(detail), "{kid}: {}", r.detail());
    }
}

#[tokio::test]
async fn a_token_without_kid_needs_a_set_with_one_key_for_its_algorithm() {
    let idp = Idp::start(vec![RSA.jwk("r1"), EC.jwk("e1")]).await;
    let source = idp.source();
    let app = app_for(source.clone());
    ready(&source).await;
    assert_eq!(me(&app, &RSA.token(None, ISS)).await.status, 200);
    assert_eq!(me(&app, &EC.token(None, ISS)).await.status, 200);

    idp.edit(|s| s.keys.push(RSA2.jwk("r2")));
    // Picked up through a miss.
    assert_eq!(me(&app, &RSA2.token(Some("r2"), ISS)).await.status, 200);
    let out = me(&app, &RSA.token(None, ISS)).await;
    let r = out.check(&expect("token_kid_missing").verbose().token_fields());
    assert!(
        r.detail().contains("2 keys could verify RS256"),
        "{}",
        r.detail()
    );
}

#[tokio::test]
async fn a_foreign_issuer_never_causes_a_fetch_and_header_urls_are_never_followed() {
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    let source = idp.source();
    let app = app_for(source.clone());
    ready(&source).await;
    let hits = idp.jwks_hits();
    for i in 0..5 {
        let token = RSA.token(Some(&format!("k{i}")), "https://attacker.example");
        let out = me(&app, &token).await;
        let r = out.check(
            &expect("token_issuer_mismatch")
                .verbose()
                .field("iss", "https://attacker.example"),
        );
        assert!(
            r.detail().contains("keys were not consulted"),
            "{}",
            r.detail()
        );
    }
    assert_eq!(
        idp.jwks_hits(),
        hits,
        "an attacker's iss made the layer fetch"
    );

    // jku / x5u point at the provider's own host: never fetched (RFC 8725 §3.10).
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("r1".into());
    header.jku = Some(format!("{}/attacker-jwks", idp.base));
    header.x5u = Some(format!("{}/attacker-x5u", idp.base));
    let token = sign(&header, &claims(json!({ "iss": ISS })), &RSA2.encoding());
    me(&app, &token)
        .await
        .check(&expect("token_signature_invalid").verbose());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(idp.edit(|s| s.other.clone()), Vec::<String>::new());

    // A key embedded in the header (`jwk`) verifies nothing: the attacker's own key,
    // naming the set's kid, is still checked against the set's key.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("r1".into());
    header.jwk = Some(serde_json::from_value(RSA2.jwk("r1")).unwrap());
    header.x5c = Some(vec!["MIIB".into()]);
    let token = sign(&header, &claims(json!({ "iss": ISS })), &RSA2.encoding());
    me(&app, &token)
        .await
        .check(&expect("token_signature_invalid").verbose());
}

#[tokio::test]
async fn discovery_finds_the_set_and_checks_the_issuer() {
    let idp = Idp::start(vec![EC.jwk("e1")]).await;
    let source = KeySource::discover(&idp.base);
    let jwt = JwtAuthenticator::from_source(source.clone())
        .audience(AUDIENCE)
        .require_claims(["sub"]);
    let app = jwt_app(layer(DetailMode::Verbose), jwt);
    ready(&source).await;
    assert_eq!(me(&app, &EC.token(Some("e1"), &idp.base)).await.status, 200);
    // The discovered issuer is the one accepted.
    me(&app, &EC.token(Some("e1"), ISS))
        .await
        .check(&expect("token_issuer_mismatch").verbose());
    assert_eq!(idp.edit(|s| s.discovery_hits), 1);

    // RFC 8414's location when OpenID Connect's is absent.
    let idp = Idp::start(vec![EC.jwk("e1")]).await;
    idp.edit(|s| s.rfc8414_only = true);
    let source = KeySource::discover(&idp.base);
    let app = jwt_app(
        layer(DetailMode::Verbose),
        JwtAuthenticator::from_source(source.clone()).audience(AUDIENCE),
    );
    ready(&source).await;
    assert_eq!(me(&app, &EC.token(Some("e1"), &idp.base)).await.status, 200);
}

#[tokio::test]
async fn discovery_for_another_issuer_is_refused() {
    let idp = Idp::start(vec![EC.jwk("e1")]).await;
    // One trailing slash is another issuer.
    let with_slash = format!("{}/", idp.base);
    idp.edit(|s| s.doc_issuer = Some(with_slash.clone()));
    let app = jwt_app(
        layer(DetailMode::Verbose),
        JwtAuthenticator::from_source(KeySource::discover(&idp.base)).audience(AUDIENCE),
    );
    let out = me(&app, &EC.token(Some("e1"), &idp.base)).await;
    let r = out.check(&expect("key_source_unavailable").verbose());
    let error = r.event.field("fetch_error");
    assert!(error.contains("names issuer"), "{error}");
    assert!(error.contains(&with_slash), "{error}");
    assert_eq!(
        idp.jwks_hits(),
        0,
        "the set of an issuer that is not ours is never read"
    );
}

#[tokio::test]
async fn two_issuers_each_verify_only_with_their_own_keys() {
    let a = Idp::start(vec![RSA.jwk("a1")]).await;
    let b = Idp::start(vec![EC.jwk("b1"), RSA2.jwk("b2")]).await;
    let (sa, sb) = (a.source(), b.source());
    let issuer_a = JwtAuthenticator::from_source(sa.clone())
        .issuer("https://a.test")
        .audience(AUDIENCE);
    let issuer_b = JwtAuthenticator::from_source(sb.clone())
        .issuer("https://b.test")
        .audience("partners")
        .require_claims(["client_id"]);
    let app = axum::Router::new()
        .route("/me", axum::routing::get(|| async { "ok" }))
        .layer(layer(DetailMode::Verbose).bearer(issuer_a).bearer(issuer_b));
    ready(&sa).await;
    ready(&sb).await;

    let token_a = RSA.token(Some("a1"), "https://a.test");
    assert_eq!(me(&app, &token_a).await.status, 200);
    let token_b = EC.token_with(
        Some("b1"),
        claims(json!({ "iss": "https://b.test", "aud": "partners", "client_id": "c" })),
    );
    assert_eq!(me(&app, &token_b).await.status, 200);
    // B's claim rules are B's: A's audience is not accepted for B.
    let b_for_a = EC.token_with(
        Some("b1"),
        claims(json!({ "iss": "https://b.test", "client_id": "c" })),
    );
    me(&app, &b_for_a)
        .await
        .check(&expect("token_audience_mismatch").verbose());

    // A token claiming A, signed with B's key and naming B's kid: A's set lacks it.
    let forged = RSA2.token(Some("b2"), "https://a.test");
    me(&app, &forged).await.check(
        &expect("token_key_unknown")
            .verbose()
            .field("iss", "https://a.test"),
    );
    // Claiming A with A's kid, but B's key: the signature fails.
    let forged = RSA2.token(Some("a1"), "https://a.test");
    me(&app, &forged)
        .await
        .check(&expect("token_signature_invalid").verbose());

    // Neither issuer: refused before any key is looked at, and both are named in the log.
    let hits = (a.jwks_hits(), b.jwks_hits());
    let out = me(&app, &RSA.token(Some("zz"), "https://c.test")).await;
    out.check(
        &expect("token_issuer_mismatch")
            .verbose()
            .field("expected_iss", "https://a.test https://b.test"),
    );
    assert_eq!((a.jwks_hits(), b.jwks_hits()), hits);
    // In production the client never learns which issuers are accepted.
    let prod = axum::Router::new()
        .route("/me", axum::routing::get(|| async { "ok" }))
        .layer(
            AuthDiagnostics::new()
                .bearer(
                    JwtAuthenticator::from_source(sa)
                        .issuer("https://a.test")
                        .audience(AUDIENCE),
                )
                .bearer(
                    JwtAuthenticator::from_source(sb)
                        .issuer("https://b.test")
                        .audience("partners"),
                ),
        );
    let out = me(&prod, &RSA.token(Some("zz"), "https://c.test")).await;
    out.check(&expect("token_issuer_mismatch"));
    assert!(!out.text().contains("a.test") && !out.text().contains("b.test"));
}

#[test]
fn misconfigured_sources_fail_at_start_up() {
    type Build = Box<dyn Fn() -> AuthDiagnostics + std::panic::UnwindSafe>;
    let cases: [(&str, Build); 4] = [
        (
            "is not https",
            Box::new(|| {
                AuthDiagnostics::new().bearer(
                    JwtAuthenticator::from_source(KeySource::jwks("http://idp.example/jwks"))
                        .issuer(ISS)
                        .audience("a"),
                )
            }),
        ),
        (
            "has no issuer",
            Box::new(|| {
                AuthDiagnostics::new().bearer(
                    JwtAuthenticator::from_source(KeySource::jwks("https://idp.example/jwks"))
                        .audience("a"),
                )
            }),
        ),
        (
            "is accepted by two Bearer authenticators",
            Box::new(|| {
                let jwt = JwtAuthenticator::from_source(KeySource::discover("https://a.example"))
                    .audience("a");
                AuthDiagnostics::new().bearer(jwt.clone()).bearer(jwt)
            }),
        ),
        (
            "each must name its issuer",
            Box::new(|| {
                AuthDiagnostics::new()
                    .bearer(jwt())
                    .bearer(jwt_without_issuer())
            }),
        ),
    ];
    for (expected, build) in cases {
        let text = panic_message(std::panic::catch_unwind(move || build().layer(())));
        assert!(text.contains(expected), "{expected}: {text}");
    }
    // Plain http is allowed where the application says so.
    let _ = AuthDiagnostics::new().bearer(
        JwtAuthenticator::from_source(KeySource::jwks("http://idp.internal/jwks").allow_http())
            .issuer(ISS)
            .audience("a"),
    );
}

fn jwt_without_issuer() -> JwtAuthenticator {
    JwtAuthenticator::new(auth_diagnostics::keys::StaticKey::hs256("other"))
        .accept_any_issuer()
        .audience("a")
}

#[tokio::test]
async fn verify_never_waits_and_says_what_it_lacks() {
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    idp.edit(|s| s.delay = Duration::from_millis(500));
    let source = idp.source();
    let jwt = JwtAuthenticator::from_source(source.clone())
        .issuer(ISS)
        .audience(AUDIENCE);
    let token = RSA.token(Some("r1"), ISS);
    let cold = jwt.verify(&token).unwrap_err();
    assert_eq!(cold.reason(), Reason::KeySourceUnavailable);
    ready(&source).await;
    assert!(jwt.verify(&token).is_ok());
    let unknown = jwt.verify(&RSA.token(Some("r9"), ISS)).unwrap_err();
    assert_eq!(unknown.reason(), Reason::TokenKeyUnknown);
}

#[tokio::test]
async fn the_demo_accepts_the_keys_of_demo_jwks_url_and_demo_oidc_issuer() {
    let idp = Idp::start(vec![RSA.jwk("r1"), EC.jwk("e1"), ED.jwk("d1")]).await;
    let mut cfg = demo_config(DetailMode::Verbose);
    cfg.jwks_url = Some(idp.jwks_url());
    let app = demo::app(&cfg);
    for (key, kid) in [(RSA, "r1"), (EC, "e1"), (ED, "d1")] {
        // The demo's issuer and audience; the first request waits for the first fetch.
        let out = me(&app, &key.token(Some(kid), ISSUER)).await;
        assert_eq!(out.status, 200, "{kid}: {}", out.text());
    }
    // The HS256 secret still verifies, and a key of the set does not verify another issuer.
    assert_eq!(me(&app, &hs256(&good_claims())).await.status, 200);
    me(&app, &RSA.token(Some("r1"), ISS))
        .await
        .check(&expect("token_issuer_mismatch").verbose().realm("demo"));

    // Discovery: the issuer defaults to the provider's.
    let idp = Idp::start(vec![EC.jwk("e1")]).await;
    let mut cfg = demo_config(DetailMode::Verbose);
    cfg.oidc_issuer = Some(idp.base.clone());
    cfg.issuer = idp.base.clone();
    let app = demo::app(&cfg);
    assert_eq!(me(&app, &EC.token(Some("e1"), &idp.base)).await.status, 200);
}

/// A static RSA key without `kid` beside a published set (one issuer).
fn static_and_source(source: KeySource) -> axum::Router {
    let dir = env!("CARGO_MANIFEST_DIR");
    let pem = std::fs::read(format!("{dir}/tests/keys/rsa_public.pem")).unwrap();
    let key = auth_diagnostics::keys::StaticKey::new(
        auth_diagnostics::keys::DecodingKey::from_rsa_pem(&pem).unwrap(),
        Algorithm::RS256,
    );
    let jwt = JwtAuthenticator::new(key)
        .key_source(source)
        .issuer(ISS)
        .audience(AUDIENCE);
    jwt_app(layer(DetailMode::Verbose), jwt)
}

#[tokio::test]
async fn a_static_key_without_kid_never_shadows_a_published_key() {
    let idp = Idp::start(vec![RSA2.jwk("r2")]).await;
    let app = static_and_source(idp.source());
    // Cold: the published key is fetched for the token that names it.
    assert_eq!(me(&app, &RSA2.token(Some("r2"), ISS)).await.status, 200);
    // Rotation: a new kid is looked up in the set before the static key is tried.
    idp.edit(|s| s.keys.push(EC.jwk("e3")));
    idp.edit(|s| s.keys.push(RSA2.jwk("r3")));
    assert_eq!(me(&app, &RSA2.token(Some("r3"), ISS)).await.status, 200);
    // The static key still verifies its own tokens, with or without a kid the set lacks.
    assert_eq!(me(&app, &RSA.token(Some("local"), ISS)).await.status, 200);
    // Without kid, the static key and the set's RSA keys all fit: the kid is required.
    let out = me(&app, &RSA.token(None, ISS)).await;
    let r = out.check(&expect("token_kid_missing").verbose());
    assert!(
        r.detail().contains("3 keys could verify RS256"),
        "{}",
        r.detail()
    );
}

#[tokio::test]
async fn a_refresh_still_running_when_the_wait_ends_is_503_not_key_unknown() {
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    let source = idp.source().max_wait(Duration::from_millis(200));
    let app = app_for(source.clone());
    ready(&source).await;
    idp.edit(|s| s.delay = Duration::from_secs(2));
    let out = me(&app, &RSA2.token(Some("r2"), ISS)).await;
    let r = out.check(
        &expect("key_source_unavailable")
            .verbose()
            .field("key_ids", "r1"),
    );
    assert!(
        r.detail().contains("did not arrive in time"),
        "{}",
        r.detail()
    );
    assert_eq!(out.header("retry-after"), Some("1"));
    // The cached key is unaffected.
    assert_eq!(me(&app, &RSA.token(Some("r1"), ISS)).await.status, 200);
}

#[tokio::test]
async fn an_issuer_that_differs_by_a_trailing_slash_says_so() {
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    let source = idp.source();
    let app = app_for(source.clone());
    ready(&source).await;
    let out = me(&app, &RSA.token(Some("r1"), &format!("{ISS}/"))).await;
    let r = out.check(&expect("token_issuer_mismatch").verbose());
    assert!(r.problem["hint"]
        .as_str()
        .unwrap()
        .contains("trailing slash"));
    assert!(r.event.field("hint").contains("trailing slash"));
    // In production the client gets no hint.
    let prod = app_in(source, DetailMode::Production);
    let out = me(&prod, &RSA.token(Some("r1"), &format!("{ISS}/"))).await;
    out.check(&expect("token_issuer_mismatch"));
    assert!(out.problem().get("hint").is_none());
}

#[tokio::test]
async fn an_rsa_jwk_without_alg_verifies_rs256_only() {
    let mut jwk = RSA.jwk("r1");
    jwk.as_object_mut().unwrap().remove("alg");
    let idp = Idp::start(vec![jwk]).await;
    let source = idp.source();
    let app = app_for(source.clone());
    ready(&source).await;
    assert_eq!(me(&app, &RSA.token(Some("r1"), ISS)).await.status, 200);
    let ps256 = {
        let mut header = Header::new(Algorithm::PS256);
        header.kid = Some("r1".into());
        sign(&header, &claims(json!({ "iss": ISS })), &RSA.encoding())
    };
    let r = me(&app, &ps256)
        .await
        .check(&expect("token_key_unknown").verbose());
    assert!(r.detail().contains("not for PS256"), "{}", r.detail());
}

/// Fails its first fetch by panicking, then serves `body`.
struct PanicsOnce {
    body: String,
    calls: std::sync::atomic::AtomicUsize,
}

impl auth_diagnostics::keys::HttpFetch for PanicsOnce {
    fn get<'a>(&'a self, _url: &'a str, _max: usize) -> auth_diagnostics::keys::FetchFuture<'a> {
        let first = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        Box::pin(async move {
            assert!(!first, "a client bug");
            Ok(auth_diagnostics::keys::Fetched {
                status: StatusCode::OK,
                cache_control: None,
                body: self.body.clone().into(),
            })
        })
    }
}

#[tokio::test]
async fn a_panicking_client_is_a_failed_fetch_and_the_source_recovers() {
    let client = PanicsOnce {
        body: json!({ "keys": [RSA.jwk("r1")] }).to_string(),
        calls: Default::default(),
    };
    let source = KeySource::jwks("https://idp.test/jwks").http_client(client);
    let app = app_for(source.clone());
    let out = me(&app, &RSA.token(Some("r1"), ISS)).await;
    let r = out.check(&expect("key_source_unavailable").verbose());
    assert!(r.event.field("fetch_error").contains("did not finish"));
    // The next attempt (after a 1 s back-off) succeeds.
    ready(&source).await;
    assert_eq!(me(&app, &RSA.token(Some("r1"), ISS)).await.status, 200);
}

#[test]
fn a_source_outlives_the_runtime_that_started_it() {
    // The provider runs on a runtime of its own, which outlives the others.
    let server = tokio::runtime::Runtime::new().unwrap();
    let idp = server.block_on(Idp::start(vec![RSA.jwk("r1")]));
    let first = tokio::runtime::Runtime::new().unwrap();
    let app = first.block_on(async {
        let source = idp.source();
        let app = app_for(source.clone());
        ready(&source).await;
        assert_eq!(me(&app, &RSA.token(Some("r1"), ISS)).await.status, 200);
        app
    });
    drop(first);
    // The refresh task died with its runtime; a miss on another one starts a new task.
    idp.edit(|s| s.keys.push(RSA2.jwk("r2")));
    let second = tokio::runtime::Runtime::new().unwrap();
    second.block_on(async {
        assert_eq!(me(&app, &RSA2.token(Some("r2"), ISS)).await.status, 200);
    });
    assert_eq!(idp.jwks_hits(), 2);
}

#[test]
#[should_panic(expected = "configure a KeySource before cloning it")]
fn configuring_a_shared_source_panics() {
    let source = KeySource::jwks("https://idp.test/jwks");
    let _shared = source.clone();
    let _ = source.max_keys(8);
}

#[tokio::test]
async fn the_layer_is_ready_when_its_keys_are() {
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    idp.edit(|s| s.delay = Duration::from_millis(200));
    let layer = AuthDiagnostics::new().bearer(
        JwtAuthenticator::from_source(idp.source())
            .issuer(ISS)
            .audience(AUDIENCE),
    );
    tokio::time::timeout(Duration::from_secs(5), layer.ready())
        .await
        .unwrap();
    assert_eq!(idp.jwks_hits(), 1);
}

#[tokio::test]
async fn tls_and_dns_failures_are_named() {
    // https to a server that speaks plain http: the TLS handshake fails.
    let idp = Idp::start(vec![RSA.jwk("r1")]).await;
    let https = idp.jwks_url().replace("http://", "https://");
    let app = app_for(KeySource::jwks(https).fetch_timeout(Duration::from_secs(2)));
    let r = me(&app, &RSA.token(Some("r1"), ISS))
        .await
        .check(&expect("key_source_unavailable").verbose());
    let error = r.event.field("fetch_error");
    assert!(
        error.contains("(Connect)") && error.contains("corrupt message"),
        "{error}"
    );

    // A name that never resolves (RFC 6761 reserves .invalid).
    let app = app_for(
        KeySource::jwks("https://keys.example.invalid/jwks").fetch_timeout(Duration::from_secs(3)),
    );
    let r = me(&app, &RSA.token(Some("r1"), ISS))
        .await
        .check(&expect("key_source_unavailable").verbose());
    let error = r.event.field("fetch_error");
    // A machine whose resolver does not answer at all times out instead.
    assert!(
        error.contains("dns error") || error.contains("no answer within 3s"),
        "{error}"
    );
}
