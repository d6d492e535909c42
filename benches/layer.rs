//! What the layer costs, as ratios against baselines measured in the same run.
//!
//! ```text
//! cargo bench --bench layer
//! ```
//!
//! Groups (compare the lines within a group):
//! - `success_bearer`: a valid HS256 token. `baseline` is the bare router plus
//!   `jsonwebtoken::decode` of the same token (what an application does without us);
//!   `layer` is the router behind `AuthDiagnostics::new().bearer(..)`.
//! - `success_watch`: no credentials needed. `baseline` is the bare router; `layer` is the
//!   router behind a zero-config `AuthDiagnostics::new()` (request id, snapshot, watching).
//! - `failure_missing`: no credentials, 401. `baseline` is the bare router answering 401 by
//!   itself; `layer` renders the challenge, the problem body and the (rate-limited) event.

use auth_diagnostics::{AuthDiagnostics, JwtAuthenticator, StaticKey};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{decode, encode, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};
use std::hint::black_box;
use tower::ServiceExt;

const SECRET: &[u8] = b"bench-secret";

fn token() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims =
        json!({ "iss": "https://issuer.bench", "aud": "bench", "sub": "alice", "exp": now + 3600 });
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn request(auth: Option<&str>) -> Request<Body> {
    let mut b = Request::get("/me")
        .header("user-agent", "bench")
        .header("accept", "application/json");
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    b.body(Body::empty()).unwrap()
}

fn router() -> Router {
    Router::new().route("/me", get(|| async { "me" }))
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let token = token();
    let bearer = format!("Bearer {token}");
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer("https://issuer.bench")
        .audience("bench")
        .require_claims(["sub"]);
    let key = DecodingKey::from_secret(SECRET);
    let mut validation = Validation::default();
    validation.set_issuer(&["https://issuer.bench"]);
    validation.set_audience(&["bench"]);

    let mut g = c.benchmark_group("success_bearer");
    let bare = router();
    g.bench_function("baseline", |b| {
        b.iter(|| {
            let claims = decode::<Value>(black_box(&token), &key, &validation).unwrap();
            black_box(claims);
            let r = rt
                .block_on(bare.clone().oneshot(request(Some(&bearer))))
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        })
    });
    let layered = router().layer(AuthDiagnostics::new().bearer(jwt.clone()));
    g.bench_function("layer", |b| {
        b.iter(|| {
            let r = rt
                .block_on(layered.clone().oneshot(request(Some(&bearer))))
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        })
    });
    g.finish();

    let mut g = c.benchmark_group("success_watch");
    g.bench_function("baseline", |b| {
        b.iter(|| {
            let r = rt.block_on(bare.clone().oneshot(request(None))).unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        })
    });
    let watched = router().layer(AuthDiagnostics::new());
    g.bench_function("layer", |b| {
        b.iter(|| {
            let r = rt.block_on(watched.clone().oneshot(request(None))).unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        })
    });
    g.finish();

    let mut g = c.benchmark_group("failure_missing");
    let refusing = Router::new().route("/me", get(|| async { StatusCode::UNAUTHORIZED }));
    g.bench_function("baseline", |b| {
        b.iter(|| {
            let r = rt
                .block_on(refusing.clone().oneshot(request(None)))
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        })
    });
    g.bench_function("layer", |b| {
        b.iter(|| {
            let r = rt.block_on(layered.clone().oneshot(request(None))).unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        })
    });
    g.finish();
}

criterion_group! {
    name = layer;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(layer);
