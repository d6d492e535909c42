//! Several replicas behaving as one through a real Redis (`redis-server` on loopback,
//! tests/common/redis.rs): DPoP proofs used once across replicas, a replica started while
//! the identity provider is down serving with the key set a sibling stored, equal log
//! fingerprints in separate processes given one key, and what clients and operators see
//! when Redis stops and comes back.
//!
//! Each test has its own Redis. "Replicas" are layers built separately, each with its own
//! `RedisStore` (its own connection), or, where something is process-wide (the
//! fingerprint key), separate demo processes (the compiled `examples/demo.rs`).
//!
//! DPoP proofs and bound tokens are built here as in tests/dpop.rs: an ES256 client key
//! (tests/keys/ec256_private.pem, its public point written out), HS256 access tokens bound
//! by an RFC 7638 thumbprint computed here.

mod common;
use common::redis::{Redis, Resp};
use common::*;

use auth_diagnostics::dpop::Dpop;
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::{Algorithm, KeySource};
use auth_diagnostics::store::{ProofId, RedisStore, ReplayOutcome, ReplayStore};
use auth_diagnostics::Principal;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get as route_get;
use axum::Router;
use http::Request;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Map};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// A fresh Redis, or return (the suite skips outside CI when none can be had).
macro_rules! redis_or_skip {
    () => {
        match Redis::start() {
            Some(r) => r,
            None => return,
        }
    };
}

// ---------------------------------------------------------------------------------------
// DPoP clients (as in tests/dpop.rs)
// ---------------------------------------------------------------------------------------

/// The host every in-process request names, and so the origin of every proof's `htu`.
const HOST: &str = "api.test";

/// tests/keys/ec256_private.pem, public point.
const EC256_X: &str = "mOdDdERtdUohEyBt2KLtjJqOcsoVVNPdyU8N2gjwXH4";
const EC256_Y: &str = "QWuiB8Ik1G8LXz9lLyLF3EbQKzVu2Cu0QCHoahdvOSs";

/// A DPoP client: its ES256 key and an access token bound to it.
struct Client {
    jwk: Value,
    private: EncodingKey,
    token: String,
}

impl Client {
    /// The client of tests/keys/ec256 with a test token ([`SECRET`], [`ISSUER`]).
    fn new() -> Client {
        Client::with_claims(|c| hs256(&c))
    }

    /// The client with a token made by `mint` from the default claims and `cnf.jkt`.
    fn with_claims(mint: impl FnOnce(Map<String, Value>) -> String) -> Client {
        let dir = env!("CARGO_MANIFEST_DIR");
        let pem = std::fs::read(format!("{dir}/tests/keys/ec256_private.pem")).unwrap();
        let private = EncodingKey::from_ec_pem(&pem).unwrap();
        let jwk = json!({ "kty": "EC", "crv": "P-256", "x": EC256_X, "y": EC256_Y });
        let jkt = jkt(&jwk);
        let token = mint(claims(json!({ "cnf": { "jkt": jkt } })));
        Client {
            jwk,
            private,
            token,
        }
    }

    /// A fresh proof for GET `url` (the full `htu`), bound to the token by `ath`.
    fn proof(&self, url: &str) -> String {
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk });
        let claims = json!({
            "jti": jti(),
            "htm": "GET",
            "htu": url,
            "iat": now(),
            "ath": b64url(&Sha256::digest(self.token.as_bytes())),
        });
        let part = |v: &Value| b64url(&serde_json::to_vec(v).unwrap());
        let message = format!("{}.{}", part(&header), part(&claims));
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &self.private, Algorithm::ES256)
            .unwrap();
        format!("{message}.{sig}")
    }

    /// A fresh proof for GET `/me` on [`HOST`].
    fn me_proof(&self) -> String {
        self.proof(&format!("http://{HOST}/me"))
    }

    /// GET `/me` on [`HOST`] with the client's token and `proof`.
    fn get(&self, proof: &str) -> Request<Body> {
        let auth = format!("DPoP {}", self.token);
        get(
            "/me",
            &[("host", HOST), ("authorization", &auth), ("dpop", proof)],
        )
    }
}

/// RFC 7638: SHA-256 over the required members of an EC key, in order, no spaces.
fn jkt(jwk: &Value) -> String {
    let m = |name: &str| jwk[name].as_str().unwrap();
    let canonical = format!(
        r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
        m("crv"),
        m("x"),
        m("y")
    );
    b64url(&Sha256::digest(canonical.as_bytes()))
}

/// A `jti` never used before by this process (nor by another: it holds the time).
fn jti() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("jti-{nanos}-{}", N.fetch_add(1, Ordering::Relaxed))
}

async fn hello(p: Principal) -> axum::Json<Value> {
    axum::Json(json!({ "sub": p.id(), "scheme": p.scheme().map(|s| s.as_str()) }))
}

/// `/me` behind a verbose DPoP-only layer with the suite's token verifier; proofs are
/// remembered in `store`, or in the layer's own memory.
fn dpop_replica(store: Option<RedisStore>) -> Router {
    let mut dpop = Dpop::new(jwt()).public_origin(format!("http://{HOST}"));
    if let Some(store) = store {
        dpop = dpop.replay_store(store);
    }
    Router::new()
        .route("/me", route_get(hello))
        .layer(layer(DetailMode::Verbose).dpop(dpop))
}

/// A replica's own connection to `redis`, as a separate process would have.
fn store_of(redis: &Redis) -> RedisStore {
    RedisStore::open(&redis.url()).expect("a redis:// URL")
}

/// What must appear in no event and no body: the proof, the token, their signatures.
fn dpop_secrets(req: &Request<Body>) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["dpop", "authorization"] {
        for v in req.headers().get_all(name) {
            let text = v.to_str().unwrap();
            let cred = text.split_once(' ').map_or(text, |(_, c)| c);
            out.push(cred.rsplit('.').next().unwrap().to_owned());
            out.push(cred.to_owned());
        }
    }
    out
}

/// [`send`], and no proof, token or their signatures in any event or body.
async fn send_dpop(app: &Router, req: Request<Body>) -> Outcome {
    let secrets = dpop_secrets(&req);
    let out = send(app.clone(), req).await;
    assert_no_secrets(&out.events, &secrets);
    let body = out.text();
    for s in &secrets {
        assert!(!body.contains(s.as_str()), "the body leaks {s:?}: {body}");
    }
    out
}

/// A 200 for alice, authenticated by DPoP.
#[track_caller]
fn accepted(out: &Outcome) {
    assert_eq!(out.ok(), json!({ "sub": "alice", "scheme": "DPoP" }));
}

/// The replay refusal: 401, one `DPoP` challenge with `error="invalid_dpop_proof"`,
/// reason `dpop_proof_replayed`, the event saying the `jti` check failed.
#[track_caller]
fn replayed(out: &Outcome) {
    let e = expect("dpop_proof_replayed")
        .verbose()
        .schemes(&["DPoP"])
        .error_on("DPoP")
        .field("check", "jti")
        .field("signature_verified", "true");
    let r = out.check(&e);
    assert!(r.detail().contains("used before"), "{}", r.detail());
    let challenge = out.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains(r#"error="invalid_dpop_proof""#),
        "{challenge}"
    );
}

// ---------------------------------------------------------------------------------------
// An identity provider (as in tests/jwks.rs)
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct Idp {
    base: String,
    /// The keys served, the status answered (200: up), the requests seen.
    state: Arc<Mutex<(Vec<Value>, u16, usize)>>,
}

impl Idp {
    /// A provider serving `keys` at `/jwks`.
    async fn start(keys: Vec<Value>) -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let idp = Idp {
            base,
            state: Arc::new(Mutex::new((keys, 200, 0))),
        };
        let app = Router::new()
            .route("/jwks", route_get(jwks))
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        idp
    }

    fn url(&self) -> String {
        format!("{}/jwks", self.base)
    }

    /// Every request answered 500 from now on.
    fn down(&self) {
        self.state.lock().unwrap().1 = 500;
    }

    fn add_key(&self, jwk: Value) {
        self.state.lock().unwrap().0.push(jwk);
    }

    fn hits(&self) -> usize {
        self.state.lock().unwrap().2
    }
}

async fn jwks(State(idp): State<Idp>) -> Response {
    let (keys, status) = {
        let mut s = idp.state.lock().unwrap();
        s.2 += 1;
        (s.0.clone(), s.1)
    };
    if status != 200 {
        return StatusCode::from_u16(status).unwrap().into_response();
    }
    axum::Json(json!({ "keys": keys })).into_response()
}

/// The issuer of tokens signed with the provider's keys.
const ISS: &str = "https://idp.test";

/// tests/keys/rsa_private.pem or rsa2_private.pem (RS256).
fn rsa(name: &str) -> EncodingKey {
    let dir = env!("CARGO_MANIFEST_DIR");
    let pem = std::fs::read(format!("{dir}/tests/keys/{name}_private.pem")).unwrap();
    EncodingKey::from_rsa_pem(&pem).unwrap()
}

/// The public JWK of tests/keys/`name` with `kid`.
fn rsa_jwk(name: &str, kid: &str) -> Value {
    let jwk = Jwk::from_encoding_key(&rsa(name), jsonwebtoken::Algorithm::RS256).unwrap();
    let mut jwk = serde_json::to_value(jwk).unwrap();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    jwk
}

/// A token for alice from [`ISS`], signed with tests/keys/`name` and naming `kid`.
fn rsa_token(name: &str, kid: &str) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    sign(&header, &claims(json!({ "iss": ISS })), &rsa(name))
}

/// A source for `idp`'s set, refreshing on a miss at once, fetches limited to 1 s.
fn source_of(idp: &Idp) -> KeySource {
    KeySource::jwks(idp.url())
        .miss_refresh_interval(Duration::ZERO)
        .fetch_timeout(Duration::from_secs(1))
        .max_wait(Duration::from_secs(2))
}

/// `/me` behind a verbose Bearer layer whose keys come from `source`.
fn keys_replica(source: KeySource) -> Router {
    let jwt = JwtAuthenticator::from_source(source)
        .issuer(ISS)
        .audience(AUDIENCE)
        .require_claims(["sub"]);
    jwt_app(layer(DetailMode::Verbose), jwt)
}

async fn me(app: &Router, token: &str) -> Outcome {
    send(
        app.clone(),
        get("/me", &[("authorization", &bearer(token))]),
    )
    .await
}

/// The status of a request sent without a capture of its own: whatever the key source
/// logs meanwhile goes to the test's capture.
async fn status_of(app: &Router, token: &str) -> u16 {
    let req = get("/me", &[("authorization", &bearer(token))]);
    app.clone().oneshot(req).await.unwrap().status().as_u16()
}

async fn ready(source: &KeySource) {
    tokio::time::timeout(Duration::from_secs(5), source.ready())
        .await
        .expect("keys within 5 s");
}

/// The Redis key a source's set is stored under: SHA-256 of its URL, in hex.
fn jwks_key(url: &str) -> String {
    let hex: String = Sha256::digest(url.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("auth-diagnostics:jwks:{hex}")
}

/// The key the replicas' stored key sets are MACed with.
const SHARE_KEY: &str = "replicas share this key-set key";

/// `stored` with its `mac` made again for `url`'s source, as a replica with
/// [`SHARE_KEY`] makes it (HMAC-SHA256 keyed with SHA-256 of the key, over the source's
/// name, the time and the set, each prefixed with its length): for tests that edit a
/// stored set. Computed here on its own, from the documented construction.
fn reseal(stored: &mut Value, url: &str) {
    use hmac::{Hmac, Mac};
    let key = Sha256::digest(SHARE_KEY.as_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    let name = jwks_key(url).rsplit(':').next().unwrap().to_owned();
    let time = stored["fetched_at_ms"].as_i64().unwrap().to_be_bytes();
    let jwks = stored["jwks"].as_str().unwrap().to_owned();
    for part in [name.as_bytes(), &time, jwks.as_bytes()] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    let tag = mac.finalize().into_bytes();
    stored["mac"] = json!(tag.iter().map(|b| format!("{b:02x}")).collect::<String>());
}

/// The stored key set of `url`, once a replica saved it (within 3 s).
async fn stored_set(redis: &Redis, url: &str) -> Value {
    let key = jwks_key(url);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(text) = redis.get(&key) {
            return serde_json::from_str(&text).unwrap();
        }
        assert!(Instant::now() < deadline, "nothing stored under {key}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The key source events (target `auth_diagnostics::keys`) whose message starts with
/// `message`, waiting up to 3 s for the first.
async fn key_events(capture: &Capture, level: Level, message: &str) -> Vec<Captured> {
    key_events_n(capture, level, message, 1).await
}

/// [`key_events`], waiting up to 3 s for `n` of them.
async fn key_events_n(capture: &Capture, level: Level, message: &str, n: usize) -> Vec<Captured> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let found: Vec<Captured> = capture
            .all_events()
            .into_iter()
            .filter(|e| e.target == "auth_diagnostics::keys" && e.level == level)
            .filter(|e| e.get("message").is_some_and(|m| m.starts_with(message)))
            .collect();
        if found.len() >= n || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The one event starting with `message`.
async fn key_event(capture: &Capture, level: Level, message: &str) -> Captured {
    let found = key_events(capture, level, message).await;
    assert_eq!(
        found.len(),
        1,
        "one {level} event {message:?}: {:#?}",
        capture.all_events()
    );
    found[0].clone()
}

// ---------------------------------------------------------------------------------------
// 1. DPoP proofs are used once across replicas
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_proof_accepted_by_one_replica_is_refused_by_the_other() {
    let redis = redis_or_skip!();
    let a = dpop_replica(Some(store_of(&redis)));
    let b = dpop_replica(Some(store_of(&redis)));
    let c = Client::new();

    let p = c.me_proof();
    accepted(&send_dpop(&a, c.get(&p)).await);
    // What Redis holds: one key per proof, a hash (no jti, no key), expiring.
    let keys = redis.keys("auth-diagnostics:dpop:*");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let hex = keys[0].trim_start_matches("auth-diagnostics:dpop:");
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hex}"
    );
    let ttl = redis.ttl(&keys[0]);
    assert!((1..=600).contains(&ttl), "the entry expires: TTL {ttl}");

    replayed(&send_dpop(&b, c.get(&p)).await);
    replayed(&send_dpop(&a, c.get(&p)).await);

    // A fresh proof passes on B, once.
    let fresh = c.me_proof();
    accepted(&send_dpop(&b, c.get(&fresh)).await);
    replayed(&send_dpop(&a, c.get(&fresh)).await);

    // The same proof sent to both at once: exactly one wins (`SET NX` is atomic).
    for _ in 0..10 {
        let p = c.me_proof();
        let (ra, rb) = tokio::join!(a.clone().oneshot(c.get(&p)), b.clone().oneshot(c.get(&p)));
        let mut statuses = [ra.unwrap().status(), rb.unwrap().status()];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::UNAUTHORIZED]);
    }
    assert_eq!(redis.keys("auth-diagnostics:dpop:*").len(), 12);
}

#[tokio::test]
async fn without_a_shared_store_each_replica_accepts_the_same_proof() {
    // Why the shared store matters: each replica's own memory knows only its proofs.
    let (a, b) = (dpop_replica(None), dpop_replica(None));
    let c = Client::new();
    let p = c.me_proof();
    accepted(&send_dpop(&a, c.get(&p)).await);
    accepted(&send_dpop(&b, c.get(&p)).await);
    replayed(&send_dpop(&a, c.get(&p)).await);
}

#[tokio::test]
async fn replicas_with_their_own_key_prefix_do_not_share_proofs() {
    let redis = redis_or_skip!();
    let a = dpop_replica(Some(store_of(&redis).key_prefix("orders:")));
    let b = dpop_replica(Some(store_of(&redis).key_prefix("billing:")));
    let c = Client::new();
    let p = c.me_proof();
    accepted(&send_dpop(&a, c.get(&p)).await);
    accepted(&send_dpop(&b, c.get(&p)).await);
    assert_eq!(redis.keys("orders:dpop:*").len(), 1);
    assert_eq!(redis.keys("billing:dpop:*").len(), 1);
    assert!(redis.keys("auth-diagnostics:*").is_empty());
}

/// Issue 23: one key flooding distinct proofs cannot fill Redis. Past its share a key
/// gets 429 on every replica, counted once across them; other keys are unaffected.
#[tokio::test]
async fn one_key_over_its_share_is_refused_alone_on_every_replica() {
    let redis = redis_or_skip!();
    let a = dpop_replica(Some(store_of(&redis).dpop_key_share(3)));
    let b = dpop_replica(Some(store_of(&redis).dpop_key_share(3)));
    let c = Client::new();
    for app in [&a, &b, &a] {
        accepted(&send_dpop(app, c.get(&c.me_proof())).await);
    }
    for app in [&b, &a] {
        let out = send_dpop(app, c.get(&c.me_proof())).await;
        let e = expect("dpop_key_over_quota")
            .verbose()
            .schemes(&[])
            .field("check", "jti");
        out.check(&e);
        let retry: u64 = out.header("retry-after").unwrap().parse().unwrap();
        assert!(
            (1..=91).contains(&retry),
            "until its oldest proof expires: {retry}"
        );
    }
    // What Redis holds: the proofs, and one counting set for the key, all expiring.
    assert_eq!(redis.keys("auth-diagnostics:dpop:*").len(), 3);
    let counts = redis.keys("auth-diagnostics:dpop-key:*");
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert!((1..=91).contains(&redis.ttl(&counts[0])), "the set expires");
    // Another key has its own share.
    let other = ProofId::new("another-key", "j1");
    let later = now() + 60;
    assert_eq!(
        store_of(&redis).insert(other, later).await.unwrap(),
        ReplayOutcome::New
    );
}

/// A proof dated ahead does not pin a key's count: expired proofs that came after it are
/// swept, and it leaves at its own expiry.
#[tokio::test]
async fn a_keys_count_in_redis_forgets_expired_proofs_whatever_their_order() {
    let redis = redis_or_skip!();
    let store = store_of(&redis).dpop_key_share(2);
    let id = |jti: &str| ProofId::new("one-key", jti);
    let t = now();
    assert_eq!(
        store.insert(id("ahead"), t + 500).await.unwrap(),
        ReplayOutcome::New
    );
    // Already expired when recorded: counted until the next check only.
    assert_eq!(
        store.insert(id("gone"), t - 5).await.unwrap(),
        ReplayOutcome::New
    );
    assert_eq!(
        store.insert(id("fresh"), t + 60).await.unwrap(),
        ReplayOutcome::New
    );
    assert_eq!(
        store.insert(id("fresh"), t + 60).await.unwrap(),
        ReplayOutcome::Seen
    );
    match store.insert(id("one more"), t + 60).await.unwrap() {
        // The oldest of "ahead" and "fresh" leaves first.
        ReplayOutcome::KeyOverQuota { retry_after } => {
            assert!((55..=60).contains(&retry_after), "{retry_after}")
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// 2. Key sets: the last known good set, shared
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_replica_started_while_the_idp_is_down_serves_with_the_set_another_stored() {
    let redis = redis_or_skip!();
    let (capture, _guard) = Capture::install();
    // The provider also publishes a symmetric key: it must never reach the store.
    let oct = json!({ "kty": "oct", "kid": "h1", "k": "c3ltbWV0cmljLXNlY3JldC12YWx1ZQ" });
    let idp = Idp::start(vec![rsa_jwk("rsa", "r1"), oct]).await;
    let token = rsa_token("rsa", "r1");

    // A fetches from the provider and stores the set.
    let a = keys_replica(source_of(&idp).shared_store(store_of(&redis), SHARE_KEY));
    assert_eq!(me(&a, &token).await.ok()["sub"], "alice");
    let stored = stored_set(&redis, &idp.url()).await;
    let fetched_at = stored["fetched_at_ms"].as_i64().unwrap() / 1000;
    assert!((now() - 10..=now()).contains(&fetched_at), "{stored}");
    let set: Value = serde_json::from_str(stored["jwks"].as_str().unwrap()).unwrap();
    let kids: Vec<&str> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["r1"], "public keys only: {set}");
    let text = redis.get(&jwks_key(&idp.url())).unwrap();
    assert!(
        !text.contains("c3ltbWV0cmljLXNlY3JldC12YWx1ZQ"),
        "no secret stored: {text}"
    );
    // It expires after max_shared_age (24 h by default).
    let ttl = redis.ttl(&jwks_key(&idp.url()));
    assert!((86_000..=86_400).contains(&ttl), "TTL {ttl}");

    // The provider goes down; B starts, with a source of its own for the same URL.
    idp.down();
    let hits = idp.hits();
    let source_b = source_of(&idp).shared_store(store_of(&redis), SHARE_KEY);
    let b = keys_replica(source_b.clone());
    ready(&source_b).await;
    let loaded = key_event(
        &capture,
        Level::INFO,
        "key set loaded from the shared store",
    )
    .await;
    let age: i64 = loaded.field("shared_age_s").parse().unwrap();
    assert!((0..=10).contains(&age), "{}", loaded.line());
    assert!(
        loaded
            .field("message")
            .contains(&format!("fetched {age} s ago by a replica")),
        "{}",
        loaded.line()
    );
    assert_eq!(loaded.field("key_source"), idp.url());
    assert_eq!(loaded.field("key_ids"), "r1");
    assert_eq!(me(&b, &token).await.ok()["sub"], "alice");
    // B did ask the provider, which failed: the stored set is what serves.
    let failed = key_events(&capture, Level::ERROR, "key set fetch failed").await;
    assert!(idp.hits() > hits, "B asked the provider too");
    assert!(
        failed.iter().any(|e| e.get("keys_cached") == Some("true")),
        "{failed:#?}"
    );

    // Control: C, the same without the shared store, has nothing to serve with.
    let c = keys_replica(source_of(&idp));
    let out = me(&c, &token).await;
    out.check(
        &expect("key_source_unavailable")
            .verbose()
            .field("key_source", idp.url()),
    );
    assert!(out.header("retry-after").is_some());
}

#[tokio::test]
async fn a_set_planted_in_redis_without_the_key_or_dated_ahead_is_refused() {
    let redis = redis_or_skip!();
    let (capture, _guard) = Capture::install();
    let idp = Idp::start(vec![rsa_jwk("rsa", "r1")]).await;
    let a = keys_replica(source_of(&idp).shared_store(store_of(&redis), SHARE_KEY));
    assert_eq!(me(&a, &rsa_token("rsa", "r1")).await.status, 200);
    let stored = stored_set(&redis, &idp.url()).await;
    let key = jwks_key(&idp.url());
    idp.down();

    // Whoever can write to Redis plants their own key, dated far ahead so that it looks
    // newest, with a MAC made without the replicas' key.
    let evil = json!({ "keys": [rsa_jwk("rsa2", "evil")] }).to_string();
    let mut planted = stored.clone();
    planted["jwks"] = json!(evil);
    planted["fetched_at_ms"] = json!((now() + 10_000_000) * 1000);
    let set = |value: &Value| {
        let done = redis.command(&["SET", &key, &value.to_string()]);
        assert_eq!(done, Resp::Simple("OK".into()));
    };
    set(&planted);
    let b = keys_replica(source_of(&idp).shared_store(store_of(&redis), SHARE_KEY));
    let out = me(&b, &rsa_token("rsa2", "evil")).await;
    out.check(&expect("key_source_unavailable").verbose());
    let refused = key_events(
        &capture,
        Level::WARN,
        "the shared key set store failed to load",
    )
    .await;
    assert!(
        refused[0]
            .field("store_error")
            .contains("MAC does not verify"),
        "{}",
        refused[0].line()
    );

    // A set with a good MAC but dated more than a minute ahead (a replica whose clock
    // runs fast) is not taken either: it would count as newest for hours.
    let mut ahead = stored.clone();
    ahead["fetched_at_ms"] = json!((now() + 3600) * 1000);
    reseal(&mut ahead, &idp.url());
    set(&ahead);
    let c = keys_replica(source_of(&idp).shared_store(store_of(&redis), SHARE_KEY));
    out_is_unavailable(&me(&c, &rsa_token("rsa", "r1")).await);
    let refused = key_events_n(
        &capture,
        Level::WARN,
        "the shared key set store failed to load",
        2,
    )
    .await;
    assert!(
        refused
            .iter()
            .any(|e| e.field("store_error").contains("ahead of this clock")),
        "{:#?}",
        refused
    );

    // The same set, resealed with its true time, serves: the MAC was all that was wrong.
    let mut good = stored;
    reseal(&mut good, &idp.url());
    set(&good);
    let d = keys_replica(source_of(&idp).shared_store(store_of(&redis), SHARE_KEY));
    assert_eq!(me(&d, &rsa_token("rsa", "r1")).await.status, 200);
}

fn out_is_unavailable(out: &Outcome) {
    out.check(&expect("key_source_unavailable").verbose());
}

#[tokio::test]
async fn a_shared_set_older_than_max_shared_age_is_not_used() {
    let redis = redis_or_skip!();
    let (capture, _guard) = Capture::install();
    let idp = Idp::start(vec![rsa_jwk("rsa", "r1")]).await;
    let token = rsa_token("rsa", "r1");
    let a = keys_replica(source_of(&idp).shared_store(store_of(&redis), SHARE_KEY));
    assert_eq!(me(&a, &token).await.status, 200);

    // The stored set is made two minutes old (as if the provider had been down since).
    let mut stored = stored_set(&redis, &idp.url()).await;
    stored["fetched_at_ms"] = json!((now() - 120) * 1000);
    reseal(&mut stored, &idp.url());
    let key = jwks_key(&idp.url());
    assert_eq!(
        redis.command(&["SET", &key, &stored.to_string()]),
        Resp::Simple("OK".into())
    );
    idp.down();

    // A replica that accepts sets a minute old at most: not this one.
    let source = source_of(&idp)
        .shared_store(store_of(&redis), SHARE_KEY)
        .max_shared_age(Duration::from_secs(60));
    let b = keys_replica(source);
    let out = me(&b, &token).await;
    out.check(&expect("key_source_unavailable").verbose());
    // Said at each attempt to load it (before and after each failed fetch).
    let too_old = key_events(
        &capture,
        Level::WARN,
        "the shared key set is too old to use",
    )
    .await;
    assert!(!too_old.is_empty(), "{:#?}", capture.all_events());
    for old in too_old {
        let age: i64 = old.field("shared_age_s").parse().unwrap();
        assert!((120..=130).contains(&age), "{}", old.line());
        assert_eq!(old.field("max_shared_age_s"), "60");
        assert_eq!(old.field("key_source"), idp.url());
    }
    // (n = 0: what was logged by now, without waiting)
    let loaded = key_events_n(&capture, Level::INFO, "key set loaded", 0).await;
    assert!(loaded.is_empty(), "{loaded:#?}");

    // With the default bound (24 h) the same entry serves: the age made the difference.
    let source = source_of(&idp).shared_store(store_of(&redis), SHARE_KEY);
    let c = keys_replica(source.clone());
    ready(&source).await;
    assert_eq!(me(&c, &token).await.ok()["sub"], "alice");
    let loaded = key_event(&capture, Level::INFO, "key set loaded").await;
    let age: i64 = loaded.field("shared_age_s").parse().unwrap();
    assert!((120..=130).contains(&age), "{}", loaded.line());

    // A bound of one second, and more than a second later: the entry is not used (Redis
    // dropped it; it was stored to expire with the bound).
    let idp = Idp::start(vec![rsa_jwk("rsa", "r1")]).await;
    let short = || {
        source_of(&idp)
            .shared_store(store_of(&redis), SHARE_KEY)
            .max_shared_age(Duration::from_secs(1))
    };
    let d = keys_replica(short());
    assert_eq!(me(&d, &token).await.status, 200);
    stored_set(&redis, &idp.url()).await;
    assert!(redis.ttl(&jwks_key(&idp.url())) <= 1);
    idp.down();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let e = keys_replica(short());
    me(&e, &token)
        .await
        .check(&expect("key_source_unavailable").verbose());
}

// ---------------------------------------------------------------------------------------
// 3. Separate processes: the demo
// ---------------------------------------------------------------------------------------

/// A demo process with JSON logs on a free loopback port, killed when dropped.
struct DemoProcess {
    child: Child,
    base: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl DemoProcess {
    /// The demo with `env` besides `DEMO_ADDR=127.0.0.1:0` and `DEMO_LOG_FORMAT=json`,
    /// once it listens.
    fn start(env: &[(&str, &str)]) -> DemoProcess {
        let mut child = common::examples::spawn_demo(env);
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some((_, rest)) = line.split_once("listening on http://") {
                    let addr = rest.split([' ', '"']).next().unwrap_or_default();
                    let _ = tx.send(addr.to_owned());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("the demo did not start: {:#?}", lines.lock().unwrap());
            }
        };
        DemoProcess {
            child,
            base: format!("http://{addr}"),
            lines,
        }
    }

    /// Every line the process wrote to stdout so far.
    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The JSON log event with `request_id`, waiting up to 3 s for it.
    fn event(&self, request_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let found = self.lines.lock().unwrap().iter().find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                (v["request_id"] == request_id).then_some(v)
            });
            if let Some(v) = found {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no event for {request_id}: {}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo's HS256 secret, issuer and audience (shared/spec/demo.md).
fn demo_token(claims: Map<String, Value>, secret: &str) -> String {
    sign(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

fn demo_claims(edits: Value) -> Map<String, Value> {
    let mut c = claims(json!({ "iss": "https://issuer.demo.local", "aud": "demo-api" }));
    for (k, v) in edits.as_object().unwrap() {
        c.insert(k.clone(), v.clone());
    }
    c
}

/// GET `path` on `demo` with `headers`, the request id `rid`: status, headers, body.
async fn demo_get(
    demo: &DemoProcess,
    path: &str,
    rid: &str,
    headers: &[(&str, &str)],
) -> (u16, http::HeaderMap, Value) {
    let mut req = reqwest::Client::new()
        .get(format!("{}{path}", demo.base))
        .header("x-request-id", rid);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

#[tokio::test]
async fn fingerprints_are_equal_across_processes_given_one_key() {
    let key = [("DEMO_FINGERPRINT_KEY", "one key for every replica")];
    let (a, b) = (DemoProcess::start(&key), DemoProcess::start(&key));
    let other = DemoProcess::start(&[("DEMO_FINGERPRINT_KEY", "another service's key")]);
    let unkeyed = DemoProcess::start(&[]);

    // A token with a wrong signature: the same credential at every process.
    let bad = demo_token(demo_claims(json!({})), "not-the-demo-secret");
    let auth = bearer(&bad);
    let mut prints = Vec::new();
    for (i, demo) in [&a, &b, &other, &unkeyed].into_iter().enumerate() {
        let rid = format!("fp-{i}");
        let (status, _, body) = demo_get(demo, "/me", &rid, &[("authorization", &auth)]).await;
        assert_eq!(
            (status, body["reason"].as_str()),
            (401, Some("token_signature_invalid"))
        );
        let event = demo.event(&rid);
        assert_eq!(event["reason"], "token_signature_invalid", "{event}");
        let fp = event["fingerprint"].as_str().unwrap().to_owned();
        assert!(
            fp.len() == 12 && fp.bytes().all(|b| b.is_ascii_hexdigit()),
            "{fp}"
        );
        prints.push(fp);
        let output = demo.output();
        let signature = bad.rsplit('.').next().unwrap();
        assert!(
            !output.contains(&bad) && !output.contains(signature),
            "the log holds the token: {output}"
        );
    }
    assert_eq!(prints[0], prints[1], "one key, one fingerprint");
    assert_ne!(prints[0], prints[2], "another key, another fingerprint");
    assert_ne!(prints[0], prints[3], "no key, a process-random fingerprint");

    // Another token has another fingerprint, under the same key.
    let other_bad = demo_token(demo_claims(json!({ "sub": "bob" })), "not-the-demo-secret");
    demo_get(&a, "/me", "fp-4", &[("authorization", &bearer(&other_bad))]).await;
    assert_ne!(a.event("fp-4")["fingerprint"].as_str(), Some(&*prints[0]));
}

#[tokio::test]
async fn two_demo_processes_sharing_redis_use_each_proof_once() {
    let redis = redis_or_skip!();
    let url = redis.url();
    // Both behind one public name, as behind a load balancer: the proof names it.
    let host = "replicas.test";
    let env = [
        ("DEMO_REDIS_URL", url.as_str()),
        ("DEMO_PUBLIC_ORIGIN", "http://replicas.test"),
    ];
    let (a, b) = (DemoProcess::start(&env), DemoProcess::start(&env));
    assert!(
        a.output().contains("shared through"),
        "the demo says it shares: {}",
        a.output()
    );

    let c = Client::with_claims(|mut claims| {
        claims.insert("iss".into(), json!("https://issuer.demo.local"));
        claims.insert("aud".into(), json!("demo-api"));
        demo_token(claims, "demo-hs256-secret")
    });
    let auth = format!("DPoP {}", c.token);
    let p = c.proof(&format!("http://{host}/dpop"));
    let headers = [("host", host), ("authorization", &auth), ("dpop", &p)];

    let (status, _, body) = demo_get(&a, "/dpop", "dpop-a", &headers).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "id": "alice", "scheme": "DPoP" }));
    assert_eq!(redis.keys("auth-diagnostics:dpop:*").len(), 1);

    let (status, h, body) = demo_get(&b, "/dpop", "dpop-b", &headers).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["reason"], "dpop_proof_replayed");
    let challenge = h["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains(r#"error="invalid_dpop_proof""#),
        "{challenge}"
    );
    let event = b.event("dpop-b");
    assert_eq!(event["reason"], "dpop_proof_replayed");
    assert_eq!(event["check"], "jti");

    // A fresh proof passes on B.
    let fresh = c.proof(&format!("http://{host}/dpop"));
    let headers = [("host", host), ("authorization", &auth), ("dpop", &fresh)];
    let (status, _, body) = demo_get(&b, "/dpop", "dpop-b2", &headers).await;
    assert_eq!(status, 200, "{body}");
    for demo in [&a, &b] {
        let output = demo.output();
        assert!(
            !output.contains(&p) && !output.contains(&c.token),
            "{output}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 4. Redis stops, and comes back
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn when_redis_stops_proofs_fail_closed_keys_go_on_and_it_recovers() {
    let mut redis = redis_or_skip!();
    let (capture, _guard) = Capture::install();
    // One process: one store for DPoP and for its key source.
    let store = store_of(&redis);
    let dpop = dpop_replica(Some(store.clone()));
    let idp = Idp::start(vec![rsa_jwk("rsa", "r1")]).await;
    let source = source_of(&idp).shared_store(store, SHARE_KEY);
    let keyed = keys_replica(source.clone());
    let c = Client::new();
    accepted(&send_dpop(&dpop, c.get(&c.me_proof())).await);
    ready(&source).await;
    assert_eq!(me(&keyed, &rsa_token("rsa", "r1")).await.status, 200);
    stored_set(&redis, &idp.url()).await;

    redis.stop();

    // DPoP: fail closed, at once, with Retry-After and the reason.
    let started = Instant::now();
    let out = send_dpop(&dpop, c.get(&c.me_proof())).await;
    assert!(started.elapsed() < Duration::from_secs(5), "bounded wait");
    let e = expect("dpop_replay_store_unavailable")
        .verbose()
        .schemes(&[])
        .error_on("DPoP")
        .field("signature_verified", "true");
    let r = out.check(&e);
    assert_eq!(out.header("retry-after"), Some("5"));
    assert_eq!(r.problem["reason"], "dpop_replay_store_unavailable");
    let message = r.message();
    assert!(
        message.contains("the replay store cannot answer") && message.contains("redis at"),
        "the operator learns why: {message}"
    );

    // Keys: the cached set still serves; a rotation is fetched from the provider, and only
    // its saving fails.
    assert_eq!(status_of(&keyed, &rsa_token("rsa", "r1")).await, 200);
    idp.add_key(rsa_jwk("rsa2", "r2"));
    assert_eq!(status_of(&keyed, &rsa_token("rsa2", "r2")).await, 200);
    let failed = key_event(
        &capture,
        Level::WARN,
        "the shared key set store failed to save",
    )
    .await;
    assert_eq!(failed.field("store_op"), "save");
    assert_eq!(failed.field("key_source"), idp.url());
    assert!(
        failed.field("store_error").contains("redis"),
        "{}",
        failed.line()
    );

    // A new replica, while Redis is down and the provider up, fetches and serves.
    let fresh = source_of(&idp).shared_store(store_of(&redis), SHARE_KEY);
    let d = keys_replica(fresh.clone());
    ready(&fresh).await;
    assert_eq!(status_of(&d, &rsa_token("rsa2", "r2")).await, 200);
    let load = key_event(
        &capture,
        Level::WARN,
        "the shared key set store failed to load",
    )
    .await;
    assert_eq!(load.field("store_op"), "load");
    let saves = key_events_n(
        &capture,
        Level::WARN,
        "the shared key set store failed to save",
        2,
    )
    .await;
    assert_eq!(saves.len(), 2, "{saves:#?}");

    // Redis is back, on the same port (empty): the connection is made again.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = send_dpop(&dpop, c.get(&c.me_proof())).await;
        if out.status == 200 {
            break;
        }
        assert_eq!(out.status, 503, "{}", out.text());
        assert!(Instant::now() < deadline, "DPoP did not recover in 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And replays are refused again: the store answers, it does not fail open.
    let p = c.me_proof();
    accepted(&send_dpop(&dpop, c.get(&p)).await);
    replayed(&send_dpop(&dpop, c.get(&p)).await);
}

#[tokio::test]
async fn a_redis_that_hangs_is_given_up_on_within_the_timeout_and_then_answers_in_order() {
    let redis = redis_or_skip!();
    let limit = Duration::from_millis(300);
    let dpop = dpop_replica(Some(store_of(&redis).timeout(limit)));
    let c = Client::new();
    accepted(&send_dpop(&dpop, c.get(&c.me_proof())).await);

    redis.pause();
    for _ in 0..3 {
        let started = Instant::now();
        let out = send_dpop(&dpop, c.get(&c.me_proof())).await;
        let took = started.elapsed();
        // Bounded by the limit (Redis never answers); slack for a loaded CI machine.
        assert!(took < limit * 8, "waited {took:?} for a limit of {limit:?}");
        let e = expect("dpop_replay_store_unavailable")
            .verbose()
            .schemes(&[])
            .error_on("DPoP")
            .field("signature_verified", "true");
        let message = out.check(&e).message().to_owned();
        assert!(message.contains("redis at"), "{message}");
        assert_eq!(out.header("retry-after"), Some("5"));
    }

    // Once it answers again, each command gets its own answer: late replies to the
    // commands given up on are not taken for those of new ones.
    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(5);
    let p = loop {
        let p = c.me_proof();
        let out = send_dpop(&dpop, c.get(&p)).await;
        if out.status == 200 {
            break p;
        }
        assert_eq!(out.status, 503, "{}", out.text());
        assert!(Instant::now() < deadline, "DPoP did not recover in 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    replayed(&send_dpop(&dpop, c.get(&p)).await);
    for _ in 0..5 {
        let p = c.me_proof();
        accepted(&send_dpop(&dpop, c.get(&p)).await);
        replayed(&send_dpop(&dpop, c.get(&p)).await);
    }
}

#[tokio::test]
async fn after_a_failed_fetch_a_replica_takes_the_newer_set_a_sibling_stored() {
    newer_set_after_a_failed_fetch(Duration::from_millis(1100)).await;
}

/// Fetch times are compared in milliseconds: a sibling's set fetched within the same
/// second as the replica's own is taken too.
#[tokio::test]
async fn a_newer_set_stored_within_the_same_second_is_taken_too() {
    // Start at the beginning of a second: both fetches fall within it.
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    tokio::time::sleep(Duration::from_millis(u64::from(1000 - ms) + 5)).await;
    newer_set_after_a_failed_fetch(Duration::ZERO).await;
}

/// B has r1; the provider adds r2, which A fetches and stores `gap` after B's fetch; the
/// provider goes down; a token of r2 at B is served with A's set.
async fn newer_set_after_a_failed_fetch(gap: Duration) {
    let redis = redis_or_skip!();
    let idp = Idp::start(vec![rsa_jwk("rsa", "r1")]).await;
    let (source_a, source_b) = (
        source_of(&idp).shared_store(store_of(&redis), SHARE_KEY),
        source_of(&idp).shared_store(store_of(&redis), SHARE_KEY),
    );
    let (a, b) = (keys_replica(source_a), keys_replica(source_b.clone()));
    ready(&source_b).await;
    assert_eq!(status_of(&b, &rsa_token("rsa", "r1")).await, 200);

    // The provider adds r2; A sees a token of it first, fetches and stores the new set.
    tokio::time::sleep(gap).await;
    idp.add_key(rsa_jwk("rsa2", "r2"));
    let r2 = rsa_token("rsa2", "r2");
    assert_eq!(me(&a, &r2).await.status, 200);
    let stored = stored_set(&redis, &idp.url()).await;
    assert!(
        stored["jwks"].as_str().unwrap().contains(r#""kid":"r2""#),
        "{stored}"
    );

    // Now B cannot reach the provider: its refresh fails, and it takes A's set.
    idp.down();
    assert_eq!(me(&b, &r2).await.ok()["sub"], "alice");
}

#[tokio::test]
async fn a_slow_save_of_an_older_set_never_replaces_a_newer_one() {
    use auth_diagnostics::store::{KeySetStore, StoredKeySet};
    let redis = redis_or_skip!();
    let store = store_of(&redis);
    let set = |ms: i64| StoredKeySet {
        jwks: format!(r#"{{"keys":[],"at":{ms}}}"#),
        fetched_at_ms: ms,
        mac: "00".repeat(32),
    };
    store.save("s", set(2_000), 60).await.unwrap();
    store.save("s", set(1_000), 60).await.unwrap();
    assert_eq!(store.load("s").await.unwrap(), Some(set(2_000)));
    store.save("s", set(3_000), 60).await.unwrap();
    assert_eq!(store.load("s").await.unwrap(), Some(set(3_000)));
    // Whatever is there and is not a stored set of ours is replaced.
    let key = "auth-diagnostics:jwks:t";
    assert_eq!(
        redis.command(&["SET", key, "not json"]),
        Resp::Simple("OK".into())
    );
    store.save("t", set(1), 60).await.unwrap();
    assert_eq!(store.load("t").await.unwrap(), Some(set(1)));
    assert!(
        (1..=60).contains(&redis.ttl(key)),
        "expires with the save's ttl"
    );
}
