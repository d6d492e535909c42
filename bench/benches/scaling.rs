//! Two cores against one: does the layer scale, or do its shared parts (the token cache,
//! flood control, the request id counter) make the cores wait for each other?
//!
//! ```sh
//! cargo bench -p auth-diagnostics-bench --bench scaling
//! ```
//!
//! Each line sends requests through one shared router (the same layer, so the same token
//! cache and flood control) from 1 thread, then from 2 threads at once, each thread on a
//! current-thread runtime of its own. Criterion's time per request is the wall time of a
//! round divided by the requests all threads sent in it, so 2 threads that never wait for
//! each other show half the time of 1. At the end the bench prints, per case, the
//! requests per second on 2 threads ÷ on 1 thread, beside the same figure for a bare
//! router measured in the same run (what the machine itself allows: on a 2-core machine
//! with anything else running, below 2).
//!
//! The cases are the worst ones for sharing: every thread sends the same token (one cache
//! shard, one entry), or the same refusal (one flood-control bucket).
//!
//! Unlike a load test over loopback (`scripts/load.sh`, which needs a core for wrk), this
//! needs no more cores than it measures.

use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::StaticKey;
use auth_diagnostics::AuthDiagnostics;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use criterion::{Criterion, SamplingMode, Throughput};
use jsonwebtoken::{encode, EncodingKey, Header};
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime};
use tower::ServiceExt;

#[path = "support/criterion_home.rs"]
mod criterion_home;
use criterion_home::mean_ns;

const SECRET: &[u8] = b"bench-secret-of-at-least-32-bytes";
const THREADS: [usize; 2] = [1, 2];

fn token() -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": "https://issuer.bench", "aud": "bench", "sub": "alice", "exp": now + 3600,
    });
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn routes() -> Router {
    Router::new().route("/me", get(|| async { "ok" }))
}

fn layered() -> Router {
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer("https://issuer.bench")
        .audience("bench");
    routes()
        .layer(AuthDiagnostics::new().bearer(jwt))
        .with_state(())
}

/// A case: its name, the router, the `Authorization` it sends, the status it expects.
struct Case {
    name: &'static str,
    app: Router,
    authorization: Option<String>,
    status: StatusCode,
}

fn cases() -> Vec<Case> {
    let bearer = |t: &str| Some(format!("Bearer {t}"));
    vec![
        Case {
            name: "bare_router",
            app: routes().with_state(()),
            authorization: None,
            status: StatusCode::OK,
        },
        Case {
            name: "valid_repeated",
            app: layered(),
            authorization: bearer(&token()),
            status: StatusCode::OK,
        },
        Case {
            name: "no_credentials",
            app: layered(),
            authorization: None,
            status: StatusCode::UNAUTHORIZED,
        },
        Case {
            name: "garbage_token",
            app: layered(),
            authorization: bearer("not-a-jwt"),
            status: StatusCode::UNAUTHORIZED,
        },
    ]
}

fn request(authorization: Option<&str>) -> Request<Body> {
    let mut req = Request::get("/me").header(header::USER_AGENT, "bench");
    if let Some(a) = authorization {
        req = req.header(header::AUTHORIZATION, a);
    }
    req.body(Body::empty()).unwrap()
}

/// Sends `per_thread` requests from each of `threads` threads at once; the wall time
/// from the moment all are ready until the last is done.
fn round(case: &Case, threads: usize, per_thread: u64) -> Duration {
    let ready = Barrier::new(threads + 1);
    let done = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let requests: Vec<_> = (0..per_thread)
                    .map(|_| request(case.authorization.as_deref()))
                    .collect();
                ready.wait();
                for req in requests {
                    let response = rt.block_on(case.app.clone().oneshot(req)).unwrap();
                    assert_eq!(response.status(), case.status, "{}", case.name);
                }
                done.wait();
            });
        }
        ready.wait();
        let started = Instant::now();
        done.wait();
        started.elapsed()
    })
}

/// Per case: requests per second on 2 threads ÷ on 1, from criterion's estimates.
fn scaling_table(since: SystemTime, cases: &[Case]) {
    println!("\nrequests per second on 2 threads ÷ on 1 thread (this run):\n");
    println!(
        "| {:<16} | {:>14} | {:>14} | {:>7} |",
        "case", "1 thread (µs)", "2 threads (µs)", "scaling"
    );
    println!(
        "|{}|{}|{}|{}|",
        "-".repeat(18),
        "-".repeat(16),
        "-".repeat(16),
        "-".repeat(9)
    );
    for case in cases {
        let group = format!("scaling_{}", case.name);
        let (Some(one), Some(two)) = (mean_ns(&group, "1", since), mean_ns(&group, "2", since))
        else {
            continue;
        };
        println!(
            "| {:<16} | {:>14.2} | {:>14.2} | {:>7.2} |",
            case.name,
            one / 1000.0,
            two / 1000.0,
            one / two
        );
    }
    println!();
}

fn main() {
    let started = SystemTime::now();
    let cases = cases();
    for case in &cases {
        // The token cache admits a token on its second sighting.
        round(case, 1, 4);
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    for case in &cases {
        let mut group = c.benchmark_group(format!("scaling_{}", case.name));
        // Every sample as long as the others (about 100 ms): the threads' start and end
        // stay a small part of it.
        group.sampling_mode(SamplingMode::Flat).sample_size(30);
        group.throughput(Throughput::Elements(1));
        for threads in THREADS {
            group.bench_function(threads.to_string(), |b| {
                b.iter_custom(|iters| {
                    // Each thread sends its share; the time is per request of all threads.
                    let per_thread = iters.div_ceil(threads as u64).max(1);
                    let wall = round(case, threads, per_thread);
                    wall.mul_f64(iters as f64 / (per_thread * threads as u64) as f64)
                })
            });
        }
        group.finish();
    }
    c.final_summary();
    scaling_table(started, &cases);
}
