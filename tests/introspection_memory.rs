//! The memory the introspection cache holds: 100 000 distinct opaque tokens, every one
//! active, introspected through the layer at an in-process RFC 7662 endpoint on
//! `127.0.0.1` that answers about 500 bytes of JSON (as Keycloak or Okta do).
//!
//! The documented bound (the `introspection` module: a full default cache of 10 000
//! answers, about 34 MiB) is asserted with a counting allocator: the bytes the process
//! holds grow by less than 40 MiB, at the end and at their peak (measured: 24.5 MiB held,
//! about 2.6 KB per cached answer; the resident set, printed too, grew by about 34 MiB,
//! the allocator's own overhead included). The cache keeps no more than its capacity: of
//! the first 11 000 tokens at least 1 000 are asked about again.
//!
//! The 100 000 requests go through the whole layer and a real HTTP client, 8 at a time on
//! two worker threads: about a minute in a debug build on two idle cores, two beside other
//! builds.
//!
//! A file of its own: the allocator counts the whole process, so no other test may run
//! beside this one.

use auth_diagnostics::introspection::Introspector;
use auth_diagnostics::AuthDiagnostics;
use axum::body::Body;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use http::{Request, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tower::ServiceExt;

// =======================================================================================
// A counting allocator: the bytes the process holds from the allocator, and the most
// it held
// =======================================================================================

struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn held(delta: isize) {
    let now = HELD.fetch_add(delta, Ordering::Relaxed) + delta;
    if delta > 0 {
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed to the system allocator unchanged; only counted.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        held(layout.size() as isize);
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        held(-(layout.size() as isize));
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        held(new as isize - layout.size() as isize);
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn mib(bytes: isize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The resident set (Linux), for the record beside the allocator's count.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

// =======================================================================================
// The endpoint: every token active, with a typical answer
// =======================================================================================

const ISSUER: &str = "https://auth.example.com/realms/main";
const AUDIENCE: &str = "orders-api";
const TOKENS: usize = 100_000;
/// Requests in flight at once: the work spreads over both cores of a small machine.
const IN_FLIGHT: usize = 8;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The `i`th opaque token, shaped like Ory Hydra's (`ory_at_` and two base64url parts).
fn token(i: usize) -> String {
    let mixed = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!("ory_at_{i:043}.{mixed:016x}{:027}", i * 7)
}

/// A Keycloak-like active answer about the token numbered `i`, issued a minute ago:
/// about 500 bytes.
fn answer(i: usize, now: i64) -> Value {
    let issued = now - 60;
    json!({
        "active": true, "iss": ISSUER, "aud": [AUDIENCE, "billing-api"],
        "sub": format!("{i:08}-9f0c-4d1e-a3b2-7c5e1f0a2b3c"),
        "client_id": "orders-frontend", "username": format!("user{i}@example.com"),
        "scope": "openid profile email orders:read orders:write billing:read",
        "token_type": "Bearer", "exp": issued + 3600, "iat": issued, "nbf": issued,
        "jti": format!("{i:032x}"), "sid": format!("{i:036x}"),
        "email_verified": true, "preferred_username": format!("user{i}"),
    })
}

#[derive(Default)]
struct Endpoint {
    calls: AtomicUsize,
}

async fn introspect(
    State(ep): State<Arc<Endpoint>>,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    ep.calls.fetch_add(1, Ordering::SeqCst);
    let token = &form["token"];
    let i: usize = token["ory_at_".len()..][..43].parse().unwrap();
    Json(answer(i, now()))
}

async fn serve(ep: Arc<Endpoint>) -> String {
    let app = Router::new()
        .route("/introspect", post(introspect))
        .with_state(ep);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Sends every token of `tokens` once, `IN_FLIGHT` at a time; each must be accepted.
async fn send_all(app: &Router, tokens: std::ops::Range<usize>) {
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|w| {
            let app = app.clone();
            let tokens = tokens.clone();
            tokio::spawn(async move {
                for i in tokens.skip(w).step_by(IN_FLIGHT) {
                    let request = Request::get("/me")
                        .header("authorization", format!("Bearer {}", token(i)))
                        .body(Body::empty())
                        .unwrap();
                    let response = app.clone().oneshot(request).await.unwrap();
                    if response.status() != StatusCode::OK {
                        let status = response.status();
                        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await;
                        panic!("token {i}: {status} {:?}", body.unwrap());
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_distinct_tokens_stay_within_the_documented_bound() {
    let typical = answer(TOKENS - 1, now()).to_string().len();
    assert!((450..=600).contains(&typical), "{typical} bytes");
    let capacity = Introspector::DEFAULT_CACHE_CAPACITY;
    assert_eq!(capacity, 10_000, "the documented default");

    let ep = Arc::new(Endpoint::default());
    let url = serve(ep.clone()).await;
    let introspector = Introspector::new(url)
        .client_secret_basic("orders-api", "its-secret")
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .allow_http()
        // Only the capacity bounds the cache here: no answer expires during the run
        // (the default, 60 s, is about the length of a debug run).
        .cache_max_age(Duration::from_secs(3600));
    let app = Router::new()
        .route("/me", get(|| async { "me" }))
        .layer(AuthDiagnostics::new().introspection(introspector));

    // Connections opened, buffers and the runtime's tasks in place: what the process
    // holds before the cache holds anything worth counting (IN_FLIGHT answers).
    let start = Instant::now();
    send_all(&app, TOKENS..TOKENS + IN_FLIGHT).await;
    let (before, rss_before) = (HELD.load(Ordering::SeqCst), rss_kib());
    PEAK.store(before, Ordering::SeqCst);

    send_all(&app, 0..capacity).await;
    let full = HELD.load(Ordering::SeqCst) - before;
    send_all(&app, capacity..TOKENS).await;
    let grown = HELD.load(Ordering::SeqCst) - before;
    let peak = PEAK.load(Ordering::SeqCst) - before;
    let rss_grown = rss_kib()
        .zip(rss_before)
        .map(|(after, before)| after.saturating_sub(before));
    let calls = ep.calls.load(Ordering::SeqCst);
    let took = start.elapsed();
    eprintln!(
        "answers of {typical} bytes; {capacity} tokens: +{:.1} MiB; {TOKENS} tokens: \
         +{:.1} MiB ({} bytes, {:.0} per cached answer), peak +{:.1} MiB, VmRSS +{} KiB; \
         {calls} endpoint calls in {took:.1?}",
        mib(full),
        mib(grown),
        grown,
        grown as f64 / capacity as f64,
        mib(peak),
        rss_grown.map_or("?".to_owned(), |k| k.to_string()),
    );
    assert_eq!(calls, TOKENS + IN_FLIGHT, "one call per distinct token");
    assert!(grown < 40 << 20, "grew {:.1} MiB", mib(grown));
    assert!(peak < 40 << 20, "peaked at {:.1} MiB", mib(peak));

    // At most `capacity` answers are kept: of the first capacity + 1 000 tokens, at most
    // `capacity` can still be cached, so at least 1 000 of them are asked about again
    // (each a new endpoint call, counted). Which ones is the cache's choice: a full cache
    // drops entries in its table's order, not the oldest first.
    let again = capacity + 1_000;
    send_all(&app, 0..again).await;
    let asked_again = ep.calls.load(Ordering::SeqCst) - calls;
    eprintln!(
        "the first {again} tokens again: {asked_again} endpoint calls; {:.1?} in all",
        start.elapsed()
    );
    assert!(asked_again >= again - capacity, "{asked_again} calls");
    let after = HELD.load(Ordering::SeqCst) - before;
    assert!(after < 40 << 20, "holds {:.1} MiB", mib(after));
}
