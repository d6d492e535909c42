//! Memory under attack: distinct bad requests, bad tokens, unknown `kid`s and DPoP `jti`s
//! through the layer, and every structure that remembers something stays under its
//! documented cap: the flood limiter (one bucket per reason), the verified-token cache
//! (10 000 tokens, 16 MiB), the key source (one fetch per `miss_refresh_interval`, the
//! same key set) and the replay store (its capacity: exactly, below 4 096; from 4 096 on,
//! 16 shards of `ceil(capacity / 16)` proofs).
//!
//! What runs, how many times. One test, one current-thread runtime, every request through
//! the layer with `oneshot`. The test profile is unoptimized: a rejection costs 70 to
//! 600 µs there, so a million requests would take minutes. By default 120 000 requests go
//! through the layer, shared out as below; `MEMORY_REQUESTS` sets the total
//! (`MEMORY_REQUESTS=1000000 cargo test --release --test memory -- --nocapture` sends a
//! million). Then 1 000 000 proof ids go straight into a `MemoryReplayStore` through
//! `ReplayStore::insert`.
//!
//! | phase | what is distinct | share | what must hold |
//! |---|---|---|---|
//! | [`paths_and_reasons`] | the path, and 7 reasons | 46 % | events logged bounded by the rate (the limiter's one bucket per reason: `src/flood.rs`'s unit tests) |
//! | [`bad_tokens`] | HS256 tokens (`jti`), signature forged; the last third about 1 KiB | 30 % | cache entries ≤ 10 000, bytes ≤ 16 MiB |
//! | [`unknown_kids`] | the `kid` of an ES256 token | 21 % | fetches ≤ 2 + seconds elapsed (interval 1 s); key set unchanged; nothing cached |
//! | [`dpop_jtis`] | a real EdDSA proof's `jti` (one key whose share is the whole store) | 3 % | replay store `len()` ≤ 256 (its capacity); the rest 429 |
//! | [`replay_inserts`] | 1 000 000 proof ids of as many keys, straight into a store | | `len()` ≤ 4 096 (its capacity) |
//!
//! The process's resident memory (VmRSS) is read before and after each phase: the whole
//! test must grow it by less than 200 MiB. `--nocapture` prints the figures.
mod common;
use common::*;

use auth_diagnostics::dpop::Dpop;
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::{FetchFuture, Fetched, HttpFetch, KeySource};
use auth_diagnostics::store::{
    MemoryReplayStore, ProofId, ReplayFuture, ReplayOutcome, ReplayStore,
};
use axum::body::Body;
use http::{Request, Response};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::{Layer, Service, ServiceExt};

/// How much VmRSS may grow over the whole test.
const RSS_BOUND_MIB: u64 = 200;

/// The token cache's documented defaults.
const CACHE_ENTRIES: u64 = 10_000;
const CACHE_BYTES: u64 = 16 << 20;

/// Requests through the layer, all phases together.
fn requests() -> usize {
    let total = std::env::var("MEMORY_REQUESTS").ok();
    total.map_or(120_000, |n| n.parse().expect("MEMORY_REQUESTS is a number"))
}

/// The process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// What each phase cost, in time and resident memory.
struct Report {
    start_kib: u64,
    rows: Vec<String>,
}

impl Report {
    /// Records phase `name` of `n` operations, begun at `began` with `kib` resident, and
    /// what it showed.
    fn phase(&mut self, name: &str, n: usize, began: Instant, kib: u64, showed: String) {
        let took = began.elapsed();
        let each = took / n.max(1) as u32;
        let now = rss_kib();
        self.rows.push(format!(
            "{name:<18} {n:>9} in {took:>9.2?} ({each:>9.2?} each)  VmRSS {kib:>7} -> {now:>7} KiB  {showed}"
        ));
    }
}

/// The layer's wrapped service: 200 to everything that gets through.
async fn ok(_: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Body::empty()))
}

/// The status `svc` answers `req` with.
async fn status<S>(svc: &S, req: Request<Body>) -> u16
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone,
    S::Error: std::fmt::Debug,
{
    svc.clone().oneshot(req).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn distinct_bad_inputs_leave_every_bounded_structure_under_its_cap() {
    let total = requests();
    let mut report = Report {
        start_kib: rss_kib(),
        rows: Vec::new(),
    };
    paths_and_reasons(total * 46 / 100, &mut report).await;
    bad_tokens(total * 30 / 100, &mut report).await;
    unknown_kids(total * 21 / 100, &mut report).await;
    dpop_jtis(total * 3 / 100, &mut report).await;
    replay_inserts(1_000_000, &mut report).await;
    let grown = rss_kib().saturating_sub(report.start_kib);
    eprintln!("{}", report.rows.join("\n"));
    eprintln!("VmRSS grew {grown} KiB in all (bound {RSS_BOUND_MIB} MiB)");
    assert!(grown < RSS_BOUND_MIB << 10, "VmRSS grew {grown} KiB");
}

/// The `i`th request of the paths phase, on its own path: no credentials, Basic where
/// Bearer is expected, two tokens in one value, a bare JWT, a token in the query, two
/// Authorization fields, a token that is no JWS, a token in `X-Auth-Token`. Its status.
fn bad_request(i: usize) -> (Request<Body>, u16) {
    let path = format!("/p/{i}");
    let (a, b) = (
        format!("Basic {}", b64(format!("u{i}:p").as_bytes())),
        format!("Bearer a{i} b"),
    );
    let (bare, malformed) = (
        format!("eyJhbGciOiJIUzI1NiJ9.e30.s{i}"),
        format!("Bearer n{i}.x"),
    );
    match i % 8 {
        0 => (get(&path, &[]), 401),
        1 => (get(&path, &[("authorization", &a)]), 401),
        2 => (get(&path, &[("authorization", &b)]), 400),
        3 => (get(&path, &[("authorization", &bare)]), 401),
        4 => (get(&format!("{path}?access_token=t{i}"), &[]), 401),
        5 => (
            get(
                &path,
                &[("authorization", &malformed), ("authorization", &b)],
            ),
            400,
        ),
        6 => (get(&path, &[("authorization", &malformed)]), 401),
        _ => (get(&path, &[("x-auth-token", &format!("t{i}"))]), 401),
    }
}

/// Distinct paths and seven reasons: the flood limiter keeps one bucket per reason, and
/// the events it lets through are bounded by its rate (10 per reason per 10 s, then one a
/// second, each with at most one "suppressed N" summary), not by the requests.
async fn paths_and_reasons(n: usize, report: &mut Report) {
    let (began, kib) = (Instant::now(), rss_kib());
    let layer = AuthDiagnostics::new().bearer(jwt());
    let svc = layer.layer(tower::service_fn(ok));
    let (capture, _guard) = Capture::install();
    for i in 0..n {
        let (request, expected) = bad_request(i);
        assert_eq!(status(&svc, request).await, expected, "request {i}");
    }
    let secs = began.elapsed().as_secs() as usize + 1;
    let events = capture.events();
    let reasons: BTreeSet<&str> = events.iter().map(|e| e.field("reason")).collect();
    assert_eq!(reasons.len(), 7.min(n), "{reasons:?}");
    let bound = reasons.len() * 2 * (10 * (secs / 10 + 1) + secs + 1);
    assert!(
        events.len() <= bound,
        "{} events for {n} requests, bound {bound}",
        events.len()
    );
    let cached = layer.token_cache_stats().unwrap();
    assert_eq!(
        cached.entries, 0,
        "no token of these is settled: {cached:?}"
    );
    let showed = format!("{} events logged, {} reasons", events.len(), reasons.len());
    report.phase("paths and reasons", n, began, kib, showed);
}

/// A forged HS256 token (a valid header and claims, a signature that does not verify):
/// `jti` `i`, and a `pad` claim of `pad` bytes.
fn forged(i: usize, pad: usize) -> String {
    let payload = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"alice","exp":{},"jti":"t{i}","pad":"{}"}}"#,
        now() + 3600,
        "p".repeat(pad)
    );
    raw_token(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &payload,
        "Zm9yZ2VkLXNpZ25hdHVyZQ",
    )
}

/// Distinct forged tokens, each sent twice: every one a miss, every one remembered the
/// second time (a forged signature is settled; the first time only marks it), and the
/// cache within its entries and bytes all along. Short tokens first (the entry cap
/// binds), then tokens of about 1 KiB (the byte cap binds).
async fn bad_tokens(n: usize, report: &mut Report) {
    let (began, kib) = (Instant::now(), rss_kib());
    let layer = AuthDiagnostics::new().bearer(jwt());
    let svc = layer.layer(tower::service_fn(ok));
    let (mut peak_entries, mut peak_bytes) = (0, 0);
    for i in 0..n {
        let pad = if i < n * 2 / 3 { 0 } else { 700 };
        let token = bearer(&forged(i, pad));
        for _ in 0..2 {
            assert_eq!(
                status(&svc, get("/t", &[("authorization", &token)])).await,
                401
            );
        }
        if i % 256 == 0 || i + 1 == n {
            let s = layer.token_cache_stats().unwrap();
            assert!(
                s.entries <= CACHE_ENTRIES && s.bytes <= CACHE_BYTES,
                "token {i}: {s:?}"
            );
            (peak_entries, peak_bytes) = (peak_entries.max(s.entries), peak_bytes.max(s.bytes));
        }
    }
    // A false positive of the doorkeeper (a Bloom filter) admits a token the first time,
    // and the second is a hit.
    let s = layer.token_cache_stats().unwrap();
    assert_eq!(s.hits + s.misses, 2 * n as u64, "{s:?}");
    assert!(s.hits <= n as u64 / 50, "{s:?}");
    assert_eq!(
        s.entries + s.evictions,
        n as u64,
        "every token went in: {s:?}"
    );
    if n >= 30_000 {
        assert_eq!(peak_entries, CACHE_ENTRIES, "the entry cap was reached");
        assert!(
            peak_bytes > CACHE_BYTES - (1 << 20),
            "the byte cap was reached: {peak_bytes}"
        );
    }
    // The cache still serves: a valid token is verified twice (once if the doorkeeper
    // errs), then found.
    let valid = bearer(&hs256(&good_claims()));
    for _ in 0..3 {
        assert_eq!(
            status(&svc, get("/t", &[("authorization", &valid)])).await,
            200
        );
    }
    let found = layer.token_cache_stats().unwrap().hits - s.hits;
    assert!((1..=2).contains(&found), "{found}");
    let showed = format!("cache peak {peak_entries} entries, {peak_bytes} bytes");
    report.phase("bad tokens", n, began, kib, showed);
}

/// A JWK set of one ES256 key, `e1`, served from memory; it counts its fetches.
struct Counted {
    set: bytes::Bytes,
    fetches: Arc<AtomicUsize>,
}

impl HttpFetch for Counted {
    fn get<'a>(&'a self, _url: &'a str, _max_bytes: usize) -> FetchFuture<'a> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let body = self.set.clone();
        Box::pin(async move {
            Ok(Fetched {
                status: StatusCode::OK,
                cache_control: None,
                body,
            })
        })
    }
}

/// Tokens naming made-up `kid`s: each asks for a refresh, the source fetches at most once
/// per `miss_refresh_interval` (1 s here), the key set stays the one published, and no
/// `token_key_unknown` is cached.
async fn unknown_kids(n: usize, report: &mut Report) {
    let (began, kib) = (Instant::now(), rss_kib());
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/keys/ec256_private.pem"
    ));
    let key = EncodingKey::from_ec_pem(&pem.unwrap()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("e1".into());
    let fetches = Arc::new(AtomicUsize::new(0));
    let set = json!({ "keys": [jwk] }).to_string().into();
    let client = Counted {
        set,
        fetches: fetches.clone(),
    };
    let interval = Duration::from_secs(1);
    let source = KeySource::jwks("https://idp.test/jwks").http_client(client);
    let source = source.miss_refresh_interval(interval);
    let jwt = JwtAuthenticator::from_source(source.clone())
        .issuer(ISSUER)
        .audience(AUDIENCE);
    let layer = AuthDiagnostics::new().bearer(jwt);
    let svc = layer.layer(tower::service_fn(ok));
    tokio::time::timeout(Duration::from_secs(5), source.ready())
        .await
        .expect("the key set");
    let flood_began = Instant::now();
    let (capture, _guard) = Capture::install();
    let claims = b64url(serde_json::to_string(&good_claims()).unwrap().as_bytes());
    for i in 0..n {
        let header = b64url(format!(r#"{{"alg":"ES256","kid":"made-up-{i}"}}"#).as_bytes());
        let token = format!("Bearer {header}.{claims}.c2lnbmF0dXJl");
        assert_eq!(
            status(&svc, get("/k", &[("authorization", &token)])).await,
            401
        );
    }
    let secs = flood_began.elapsed().as_secs_f64();
    let fetched = fetches.load(Ordering::SeqCst);
    let bound = 2 + (secs / interval.as_secs_f64()) as usize;
    assert!(
        fetched <= bound,
        "{fetched} fetches in {secs:.1} s, bound {bound}"
    );
    if secs > 2.5 {
        assert!(fetched >= 2, "a miss refreshes once the interval is over");
    }
    let events = capture.events();
    assert!(!events.is_empty());
    for e in &events {
        if e.get("suppressed").is_none() {
            assert_eq!(e.field("reason"), "token_key_unknown", "{}", e.line());
            assert_eq!(e.field("key_ids"), "e1", "the set is the one published");
        }
    }
    let cached = layer.token_cache_stats().unwrap();
    assert_eq!(
        cached.entries, 0,
        "an unknown kid is never cached: {cached:?}"
    );
    let header = Header {
        kid: Some("e1".into()),
        ..Header::new(Algorithm::ES256)
    };
    let valid = bearer(&sign(&header, &good_claims(), &key));
    assert_eq!(
        status(&svc, get("/k", &[("authorization", &valid)])).await,
        200
    );
    let showed = format!("{fetched} fetches in {secs:.1} s");
    report.phase("unknown kids", n, began, kib, showed);
}

/// The layer's replay store, shared with the test so it can count what it holds.
#[derive(Debug)]
struct Shared(Arc<MemoryReplayStore>);

impl ReplayStore for Shared {
    fn insert(&self, id: ProofId, expires_at: i64) -> ReplayFuture {
        self.0.insert(id, expires_at)
    }
}

/// The most proofs a `MemoryReplayStore::with_capacity(capacity)` holds.
fn store_limit(capacity: usize) -> usize {
    if capacity < 4096 {
        capacity
    } else {
        16 * capacity.div_ceil(16)
    }
}

/// Real EdDSA proofs, each with its own `jti`, for one bound token whose key may fill the
/// whole replay store (capacity 256): it takes proofs until it is full of proofs that could
/// still be replayed, then the layer refuses (429: the key holds its share) rather than
/// forget one; it never holds more.
async fn dpop_jtis(n: usize, report: &mut Report) {
    let (began, kib) = (Instant::now(), rss_kib());
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/keys/ed25519_private.pem"
    ));
    let key = EncodingKey::from_ed_pem(&pem.unwrap()).unwrap();
    let jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA).unwrap();
    let x = serde_json::to_value(&jwk).unwrap()["x"].clone();
    let jkt = b64url(&Sha256::digest(format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":{x}}}"#
    )));
    let token = hs256(&claims(json!({ "cnf": { "jkt": jkt } })));
    let ath = b64url(&Sha256::digest(&token));
    // One key may fill it: its share is the whole store.
    let store = Arc::new(MemoryReplayStore::with_capacity(256).key_share(256));
    let dpop = Dpop::new(jwt())
        .public_origin("http://api.test")
        .algorithms([Algorithm::EdDSA]);
    let layer = AuthDiagnostics::new().dpop(dpop.replay_store(Shared(store.clone())));
    let svc = layer.layer(tower::service_fn(ok));
    let mut header = Header::new(Algorithm::EdDSA);
    (header.typ, header.jwk) = (Some("dpop+jwt".into()), Some(jwk));
    let auth = format!("DPoP {token}");
    let mut accepted = 0;
    for i in 0..n {
        let claims = json!({ "jti": format!("j{i}"), "htm": "GET", "htu": "http://api.test/d", "iat": now(), "ath": ath });
        let proof = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        let fields = [
            ("host", "api.test"),
            ("authorization", &auth),
            ("dpop", &proof),
        ];
        match status(&svc, get("/d", &fields)).await {
            200 => accepted += 1,
            // The key holds its share, which is the whole store.
            429 => {}
            other => panic!("proof {i}: {other}"),
        }
        assert!(
            store.len() <= store_limit(256),
            "proof {i}: {} held",
            store.len()
        );
    }
    assert_eq!(store.len(), accepted);
    if n > 4 * store_limit(256) {
        assert_eq!(accepted, store_limit(256), "every shard filled");
    }
    let showed = format!("{accepted} accepted, {} refused (429)", n - accepted);
    report.phase("DPoP jtis", n, began, kib, showed);
}

/// A distinct proof id for each `n`, each of its own key (so no key's share stops them).
fn proof_id(n: u64) -> ProofId {
    ProofId::new(&format!("memory-test-key-{n}"), "jti")
}

/// A million distinct proof ids through `ReplayStore::insert`: half already expired (a
/// store must not keep what cannot be replayed: one per shard at most), half that could
/// be replayed for an hour (the store fills to its capacity and refuses the rest).
async fn replay_inserts(n: usize, report: &mut Report) {
    let (began, kib) = (Instant::now(), rss_kib());
    let capacity = 4096;
    let limit = store_limit(capacity);
    let store = MemoryReplayStore::with_capacity(capacity);
    let half = n as u64 / 2;
    let (mut expired, mut live, mut refused) = (0, 0, 0);
    for i in 0..n as u64 {
        let (expires_at, most) = if i < half {
            (now() - 1, 16)
        } else {
            (now() + 3600, limit)
        };
        match store.insert(proof_id(i), expires_at).await {
            Ok(ReplayOutcome::New) if i < half => expired += 1,
            Ok(ReplayOutcome::New) => live += 1,
            Ok(other) => panic!("id {i}: {other:?}"),
            Err(_) => refused += 1,
        }
        if i % 16 == 0 || i == half - 1 {
            assert!(
                store.len() <= most,
                "insert {i}: {} held, at most {most}",
                store.len()
            );
        }
    }
    assert_eq!(expired, half, "expired ids never fill the store");
    assert_eq!(live + refused, n as u64 - half);
    assert!(
        live <= limit as u64 && store.len() <= limit,
        "{live} live, {}",
        store.len()
    );
    if half >= 16 * limit as u64 {
        assert_eq!(live, limit as u64, "every shard filled");
    }
    let showed = format!("{expired} expired taken, {live} live taken, {refused} refused");
    report.phase("replay inserts", n, began, kib, showed);
}
