//! Allocations per request, counted, so that they cannot creep back.
//!
//! Each case sends the same request many times through an axum `Router` (finished with
//! `.with_state(())`, as `axum::serve` does) on a current-thread runtime, and counts the
//! allocations made on this thread while the request is answered and its response dropped.
//! The requests are built the way hyper hands them over: header values are shared bytes,
//! so cloning one allocates nothing.
//!
//! What is asserted is the layer's own share: the count of a request through the layer
//! minus the count of the same request answered by the same router without the layer
//! (a handler that answers 401 itself, or 200). A budget is the count measured when it
//! was set; lowering one is progress, raising one needs a reason in the commit.
//!
//! Counting is per thread, so the other tests of this file (and the runtime's own
//! threads) do not disturb it. The counts do not depend on timing: every run gives the
//! same figures.
//!
//! The bytes held are counted too: a cached token is counted by the cache for at least
//! the heap it takes, so its byte bound is one the process keeps.

use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::StaticKey;
use auth_diagnostics::layer::LogRate;
use auth_diagnostics::AuthDiagnostics;
use axum::body::Body;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tower::ServiceExt;

struct Counting;

thread_local! {
    /// Allocations made by this thread (a `const` initializer: reading it allocates
    /// nothing, so the allocator may use it).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    /// Bytes this thread allocated less those it freed (as requested, before the
    /// allocator rounds them up).
    static HELD: Cell<i64> = const { Cell::new(0) };
}

fn count(allocated: usize, freed: usize) {
    if allocated > 0 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
    let change = allocated as i64 - freed as i64;
    let _ = HELD.try_with(|n| n.set(n.get() + change));
}

// SAFETY: every call goes to the system allocator unchanged; it is only counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 0);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 0);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size, layout.size());
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(0, layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SECRET: &str = "allocation-test-secret-of-32-bytes!";
const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "api";

/// Requests per case; the figure is their mean (every request makes the same number).
const REQUESTS: u64 = 200;

fn token(expires_in: i64) -> String {
    sign(serde_json::json!({ "sub": "alice" }), expires_in)
}

/// A token with issuer, audience, `iat` and `exp`, and the claims of `extra`.
fn sign(mut claims: serde_json::Value, expires_in: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let extra = claims.as_object_mut().unwrap();
    extra.insert("iss".into(), ISSUER.into());
    extra.insert("aud".into(), AUDIENCE.into());
    extra.insert("iat".into(), now.into());
    extra.insert("exp".into(), (now + expires_in).into());
    encode(
        &header,
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn routes() -> Router {
    Router::new().route("/me", get(|| async { "ok" }))
}

fn layered() -> Router {
    routes().layer(layer()).with_state(())
}

fn layer() -> AuthDiagnostics {
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET).with_kid("k1"))
        .issuer(ISSUER)
        .audience(AUDIENCE);
    // After its burst, flood control holds every event back for the rest of the test (by
    // default one a second gets through, which would make the count depend on the
    // machine's speed). Held-back events are what a flood makes anyway.
    let rate = LogRate {
        interval: Duration::from_secs(3600),
        ..LogRate::default()
    };
    AuthDiagnostics::new().bearer(jwt).log_rate(rate)
}

/// The same router without the layer, its handler answering `status` itself.
fn bare(status: StatusCode) -> Router {
    Router::new()
        .route("/me", get(move || async move { (status, "") }))
        .with_state(())
}

/// A request as hyper hands it over: every header value is shared bytes.
fn request(authorization: Option<&Bytes>) -> Request<Body> {
    let shared = |b: &'static [u8]| HeaderValue::from_maybe_shared(Bytes::from_static(b)).unwrap();
    let mut req = Request::get("/me")
        .header(header::HOST, shared(b"api.example"))
        .header(header::USER_AGENT, shared(b"client/1.0"))
        .header(header::ACCEPT, shared(b"application/json"))
        .body(Body::empty())
        .unwrap();
    if let Some(value) = authorization {
        let value = HeaderValue::from_maybe_shared(value.clone()).unwrap();
        req.headers_mut().insert(header::AUTHORIZATION, value);
    }
    req
}

/// Allocations per request of `app` answering `authorization` with `status`, after a
/// warm-up (the token cache admits a token on its second sighting).
fn allocations(app: &Router, authorization: Option<&str>, status: StatusCode) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let authorization = authorization.map(|a| Bytes::from(a.to_owned()));
    let send = |req: Request<Body>| {
        let response = rt.block_on(app.clone().oneshot(req)).unwrap();
        assert_eq!(response.status(), status);
    };
    for _ in 0..20 {
        send(request(authorization.as_ref()));
    }
    let requests: Vec<_> = (0..REQUESTS)
        .map(|_| request(authorization.as_ref()))
        .collect();
    let before = ALLOCATIONS.with(Cell::get);
    for req in requests {
        send(req);
    }
    let made = ALLOCATIONS.with(Cell::get) - before;
    assert_eq!(made % REQUESTS, 0, "every request makes as many: {made}");
    made / REQUESTS
}

/// The layer's own allocations for a request answered `status`: through the layer, less
/// the bare router answering the same status.
fn layer_share(authorization: Option<&str>, status: StatusCode) -> (u64, u64) {
    let ours = allocations(&layered(), authorization, status);
    let bare = allocations(&bare(status), authorization, status);
    (ours, bare)
}

fn assert_within(case: &str, authorization: Option<&str>, status: StatusCode, budget: u64) {
    let (ours, bare) = layer_share(authorization, status);
    let share = ours.saturating_sub(bare);
    eprintln!("{case}: {ours} allocations through the layer, {bare} bare: {share} the layer's");
    assert!(
        share <= budget,
        "{case}: the layer makes {share} allocations per request ({ours} against {bare} \
         bare), over its budget of {budget}"
    );
}

#[test]
fn a_request_without_credentials() {
    assert_within(
        "no credentials",
        None,
        StatusCode::UNAUTHORIZED,
        NO_CREDENTIALS,
    );
}

#[test]
fn a_garbage_token() {
    let garbage = Some("Bearer not-a-jwt");
    assert_within("garbage token", garbage, StatusCode::UNAUTHORIZED, GARBAGE);
}

#[test]
fn an_expired_token() {
    let expired = format!("Bearer {}", token(-3600));
    assert_within(
        "expired token",
        Some(&expired),
        StatusCode::UNAUTHORIZED,
        EXPIRED,
    );
}

#[test]
fn a_cached_valid_token() {
    let valid = format!("Bearer {}", token(3600));
    assert_within(
        "cached valid token",
        Some(&valid),
        StatusCode::OK,
        CACHED_VALID,
    );
}

/// Tokens of a few claims, each cached (sent twice: the cache admits a token on its second
/// sighting): the cache counts each for at least the heap it holds, and not for more than
/// half as much again. The bytes it counts are the ones `TokenCache::max_bytes` bounds.
#[test]
fn a_cached_token_is_counted_for_the_heap_it_holds() {
    const TOKENS: usize = 1000;
    let layer = layer();
    let app = routes().layer(layer.clone()).with_state(());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tokens: Vec<Bytes> = (0..TOKENS)
        .map(|i| {
            let claims = serde_json::json!({
                "sub": format!("user-{i}"), "jti": format!("{i:016x}"), "scope": "read write",
            });
            Bytes::from(format!("Bearer {}", sign(claims, 3600)))
        })
        .collect();
    let send = |token: &Bytes| {
        let response = rt.block_on(app.clone().oneshot(request(Some(token))));
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    };
    tokens.iter().for_each(send);
    let (held, cached) = (HELD.with(Cell::get), layer.token_cache_stats().unwrap());
    tokens.iter().for_each(send);
    let now = layer.token_cache_stats().unwrap();
    let entries = now.entries - cached.entries;
    assert_eq!((entries, now.evictions), (TOKENS as u64, 0), "{now:?}");
    let heap = (HELD.with(Cell::get) - held) as u64 / entries;
    let counted = (now.bytes - cached.bytes) / entries;
    eprintln!("a cached token: {heap} bytes of heap, counted for {counted}");
    assert!(
        counted >= heap && counted <= heap * 3 / 2,
        "a cached token holds {heap} bytes and is counted for {counted}"
    );
}

// Budgets: the layer's allocations per request beyond the bare router's, measured
// 2026-12-07 (debug build). What they hold: the refusal (its facts), the problem body and
// its response (body, header map, the mark that a layer answered it) and a generated
// request id; on the accepted path the request id, the kept headers, the id and the
// principal in the request's extensions, and the principal cloned out of the cache.
const NO_CREDENTIALS: u64 = 6;
const GARBAGE: u64 = 9;
const EXPIRED: u64 = 8;
const CACHED_VALID: u64 = 8;
