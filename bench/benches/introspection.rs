//! What an opaque token and a revocation list cost, as ratios within one run.
//!
//! ```text
//! cargo bench -p auth-diagnostics-bench --bench introspection
//! ```
//!
//! Every line is the same route (`GET /me`) behind `AuthDiagnostics`, sent again and again
//! with one valid token, so every line after the first request is a cache hit.
//!
//! Groups (compare the lines within a group):
//! - `cached_token`: `jwt_hs256` and `jwt_es256` are a JWT through
//!   `.bearer(JwtAuthenticator)` (the verified-token cache); `introspected` an opaque token
//!   through `.introspection(Introspector)` (the introspection cache), its answer fetched
//!   once, before the timing, from an RFC 7662 endpoint served on `127.0.0.1` (axum, on a
//!   thread of its own); `introspected_beside_jwt` the same opaque token on a layer that
//!   also verifies JWTs locally (the token is first looked up as a JWT, then routed). The
//!   JWT's claims and the introspection answer carry the same members (`iss`, `aud`,
//!   `sub`, `scope`, `client_id`, `iat`, `exp`, `jti`; the answer adds `active` and
//!   `token_type`), so both principals weigh alike. The goal: `introspected` at most 1.2×
//!   `jwt_hs256`.
//! - `revocation`: `jwt_hs256` above with `.revocation(MemoryRevocationList)`: `none` (no
//!   list), `empty` (a list with no entry), `full` (99 000 entries, a third each by `jti`,
//!   `sid` and `sub`, none matching the token): what the lookup of the token's `jti`,
//!   `sid` and `sub` costs, and whether it grows with the list.
//!
//! The endpoint counts its calls: the run fails if a measured request reached it.
//!
//! Time is the CPU time of the thread that sends the requests (`CLOCK_THREAD_CPUTIME_ID`),
//! not wall time: the runtime is single-threaded and a cache hit never leaves that thread,
//! so this is what a request costs, and the time the thread waits while other processes
//! run on a small machine is not counted (with two cores and a build beside it, wall time
//! moved these lines by ±30% from one run to the next and swapped their order).

use auth_diagnostics::introspection::Introspector;
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::StaticKey;
use auth_diagnostics::store::{MemoryRevocationList, Revocation, RevocationList};
use auth_diagnostics::AuthDiagnostics;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::runtime::Runtime;
use tower::ServiceExt;

const SECRET: &[u8] = b"bench-secret";
const ISS: &str = "https://issuer.bench";
const AUD: &str = "bench";
/// An opaque token as Ory Hydra issues them.
const OPAQUE: &str = "ory_at_3q2-7wEh0Xr1l1XWzJ9b8nKq4mV0cT6yP5sLdF2gH8A.Nf3kQw9ZxC1vB7mL0pR4tY6uI2oE5aS8dG3hJ1kL9zX";

#[path = "support/thread_cpu.rs"]
mod thread_cpu;
use thread_cpu::ThreadCpu;

type Bench = Criterion<ThreadCpu>;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The claims of both kinds of token: the JWT's payload, and the introspection answer
/// with `active` and `token_type` added.
fn claims() -> Value {
    let now = now();
    json!({
        "iss": ISS, "aud": AUD, "sub": "alice", "scope": "openid orders:read orders:write",
        "client_id": "orders-frontend", "iat": now - 60, "exp": now + 3600,
        "jti": "5f1c9e2a-7b3d-4c8e-9a6f-0d2b4e6a8c1f",
    })
}

fn pem(half: &str) -> Vec<u8> {
    let dir = env!("CARGO_MANIFEST_DIR");
    std::fs::read(format!("{dir}/../tests/keys/ec256_{half}.pem")).unwrap()
}

fn hs256() -> (JwtAuthenticator, String) {
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer(ISS)
        .audience(AUD);
    (jwt, token)
}

fn es256() -> (JwtAuthenticator, String) {
    let signing = EncodingKey::from_ec_pem(&pem("private")).unwrap();
    let token = encode(&Header::new(Algorithm::ES256), &claims(), &signing).unwrap();
    let key = DecodingKey::from_ec_pem(&pem("public")).unwrap();
    let jwt = JwtAuthenticator::new(StaticKey::new(key, Algorithm::ES256))
        .issuer(ISS)
        .audience(AUD);
    (jwt, token)
}

fn request(token: &str) -> Request<Body> {
    Request::get("/me")
        .header("user-agent", "bench")
        .header("accept", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn router() -> Router {
    Router::new().route("/me", get(|| async { "me" }))
}

fn call(rt: &Runtime, app: &Router, token: &str) {
    let r = rt.block_on(app.clone().oneshot(request(token))).unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// The RFC 7662 endpoint: `OPAQUE` is active, any other token is not.
#[derive(Default)]
struct Endpoint {
    calls: AtomicUsize,
}

async fn introspect(
    State(ep): State<Arc<Endpoint>>,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    ep.calls.fetch_add(1, Ordering::SeqCst);
    if form.get("token").map(String::as_str) != Some(OPAQUE) {
        return Json(json!({ "active": false }));
    }
    let mut answer = claims();
    answer["active"] = json!(true);
    answer["token_type"] = json!("Bearer");
    Json(answer)
}

/// Serves the endpoint on `127.0.0.1` from a thread of its own (for the whole run): its
/// URL and its call count.
fn serve() -> (String, Arc<Endpoint>) {
    let ep = Arc::new(Endpoint::default());
    let app = Router::new()
        .route("/introspect", post(introspect))
        .with_state(ep.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap()
        })
    });
    (url, ep)
}

fn introspector(url: &str) -> Introspector {
    Introspector::new(url)
        .client_secret_basic("bench-rs", "bench-rs-secret")
        .issuer(ISS)
        .audience(AUD)
        .allow_http()
        // The default (60 s) could end mid-run: every measured request must be a hit.
        .cache_max_age(Duration::from_secs(3600))
}

fn cached_token(c: &mut Bench) {
    // I/O and timers on: the one call to the endpoint (the warm-up) is made on it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (url, ep) = serve();
    let (hs, hs_token) = hs256();
    let (es, es_token) = es256();
    let hs_app = router().layer(AuthDiagnostics::new().bearer(hs.clone()));
    let es_app = router().layer(AuthDiagnostics::new().bearer(es));
    let opaque_app = router().layer(AuthDiagnostics::new().introspection(introspector(&url)));
    let mixed_app = router().layer(
        AuthDiagnostics::new()
            .bearer(hs)
            .introspection(introspector(&url)),
    );
    // Warm every cache: one endpoint call for each introspecting layer, no more.
    for (app, token) in [
        (&hs_app, &hs_token),
        (&es_app, &es_token),
        (&opaque_app, &OPAQUE.to_owned()),
        (&mixed_app, &OPAQUE.to_owned()),
    ] {
        call(&rt, app, token);
        call(&rt, app, token);
    }
    assert_eq!(ep.calls.load(Ordering::SeqCst), 2, "one call per layer");

    let mut g = c.benchmark_group("cached_token");
    g.bench_function("jwt_hs256", |b| b.iter(|| call(&rt, &hs_app, &hs_token)));
    g.bench_function("jwt_es256", |b| b.iter(|| call(&rt, &es_app, &es_token)));
    g.bench_function("introspected", |b| {
        b.iter(|| call(&rt, &opaque_app, OPAQUE))
    });
    g.bench_function("introspected_beside_jwt", |b| {
        b.iter(|| call(&rt, &mixed_app, OPAQUE))
    });
    g.finish();
    assert_eq!(
        ep.calls.load(Ordering::SeqCst),
        2,
        "every measured request was a cache hit"
    );
}

fn revocation(c: &mut Bench) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (jwt, token) = hs256();
    let full = MemoryRevocationList::new();
    rt.block_on(async {
        for i in 0..33_000 {
            for r in [
                Revocation::jti(format!("revoked-jti-{i}")),
                Revocation::sid(format!("revoked-sid-{i}")),
                Revocation::sub(format!("revoked-sub-{i}")),
            ] {
                full.revoke(r).await.unwrap();
            }
        }
    });
    assert_eq!(full.len(), 99_000);
    let none = router().layer(AuthDiagnostics::new().bearer(jwt.clone()));
    let empty = router().layer(
        AuthDiagnostics::new()
            .bearer(jwt.clone())
            .revocation(MemoryRevocationList::new()),
    );
    let full = router().layer(AuthDiagnostics::new().bearer(jwt).revocation(full));

    let mut g = c.benchmark_group("revocation");
    for (name, app) in [("none", &none), ("empty", &empty), ("full", &full)] {
        call(&rt, app, &token);
        g.bench_function(name, |b| b.iter(|| call(&rt, app, &token)));
    }
    g.finish();
}

criterion_group! {
    name = introspection;
    config = Criterion::default()
        .with_measurement(ThreadCpu(WallTime))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = cached_token, revocation
}
criterion_main!(introspection);
