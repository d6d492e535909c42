//! What an audit record costs an accepted request (issue 29: at most 5%).
//!
//! ```text
//! cargo bench -p auth-diagnostics-bench --bench audit
//! ```
//!
//! Group `audit`: a valid HS256 token, sent again and again (a verified-token cache hit),
//! through `AuthDiagnostics::new().bearer(..)` and a trivial handler:
//! - `off`: no audit;
//! - `tracing`: `.audit(Audit::new().sink(..))` with a sink that counts and nothing else,
//!   and no `tracing` subscriber in the process (the event's callsite is disabled, as it
//!   is in an application whose subscriber does not listen to `auth_diagnostics::audit`);
//! - `sink`: `.audit(Audit::new().without_tracing().sink(..))`, the same sink;
//! - `unsampled`: `sink` with `.sample_accepts(0.0)`: no record is made, so what remains
//!   is what the layer gathers for one (the request's context, the principal's facts, the
//!   credential's fingerprint) before it knows whether the accept is sampled.
//!
//! Time is the CPU time of the sending thread (as in `benches/layer.rs`'s `throttle`: the
//! runtime is single-threaded and nothing leaves it); the request is built outside the
//! timing. The run prints audit ÷ off for each audited line against the goal of 1.05:
//! criterion's estimates, and the median of rounds that alternate the two apps (criterion's
//! lines run seconds apart, and other processes on a small machine move them by more than
//! the few per cent looked for).
//!
//! Before the group, an allocation table: allocations and bytes per request of each line
//! (this file's `#[global_allocator]` counts them, over 1000 requests after 100 of warm-up).
//! Group `audit_parts` times what a record is made of, one piece at a time, with the same
//! algorithms the layer uses: `time` (`SystemTime::now`, the record's time),
//! `fingerprint` (the token through a keyed SipHash, 12 hex digits: the fingerprint
//! without `fingerprint_key`), `strings` (the owned strings a record holds: path, request
//! id, `sub`, issuer, client id, and the boxed request context).

use auth_diagnostics::audit::{Audit, AuditRecord};
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::StaticKey;
use auth_diagnostics::AuthDiagnostics;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tower::ServiceExt;

/// Counts every allocation (and its bytes) of the process.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static ALLOCATED_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SECRET: &[u8] = b"bench-secret";
const GOAL: f64 = 1.05;

fn token() -> String {
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": "https://issuer.bench",
        "aud": "bench",
        "sub": "alice",
        "client_id": "bench-client",
        "exp": now + 3600,
    });
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn request(auth: &str) -> Request<Body> {
    Request::get("/me")
        .header("user-agent", "bench")
        .header("accept", "application/json")
        .header("authorization", auth)
        .body(Body::empty())
        .unwrap()
}

#[path = "support/thread_cpu.rs"]
mod thread_cpu;
use thread_cpu::ThreadCpu;
#[path = "support/criterion_home.rs"]
mod criterion_home;
use criterion_home::{estimate_ns, mean_ns};

/// The apps of the group: no audit, audit with tracing on (no subscriber), audit to the
/// sink alone, and audit with no accept sampled; and what the sink counted.
struct Apps {
    lines: [(&'static str, Router); 4],
    recorded: Arc<AtomicU64>,
}

fn apps() -> Apps {
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer("https://issuer.bench")
        .audience("bench")
        .require_claims(["sub"]);
    let recorded = Arc::new(AtomicU64::new(0));
    let sink = || {
        let n = recorded.clone();
        move |r: &AuditRecord| {
            black_box(r);
            n.fetch_add(1, Ordering::Relaxed);
        }
    };
    let router = || Router::new().route("/me", get(|| async { "me" }));
    let layer = AuthDiagnostics::new().bearer(jwt);
    let lines = [
        ("off", router().layer(layer.clone())),
        (
            "tracing",
            router().layer(layer.clone().audit(Audit::new().sink(sink()))),
        ),
        (
            "sink",
            router().layer(
                layer
                    .clone()
                    .audit(Audit::new().without_tracing().sink(sink())),
            ),
        ),
        (
            "unsampled",
            router().layer(
                layer.audit(
                    Audit::new()
                        .without_tracing()
                        .sample_accepts(0.0)
                        .sink(sink()),
                ),
            ),
        ),
    ];
    Apps { lines, recorded }
}

fn call(rt: &tokio::runtime::Runtime, app: &Router, req: Request<Body>) {
    let r = rt.block_on(app.clone().oneshot(req)).unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Allocations and bytes per request of each line.
fn allocation_table(rt: &tokio::runtime::Runtime, apps: &Apps, auth: &str) {
    println!("\nallocations per accepted request (1000 requests after 100 of warm-up):\n");
    println!("| {:<9} | {:>7} | {:>7} |", "line", "allocs", "bytes");
    println!("|{}|{}|{}|", "-".repeat(11), "-".repeat(9), "-".repeat(9));
    for (name, app) in &apps.lines {
        for _ in 0..100 {
            call(rt, app, request(auth));
        }
        let reqs: Vec<_> = (0..1000).map(|_| request(auth)).collect();
        let (a0, b0) = (
            ALLOCATIONS.load(Ordering::Relaxed),
            ALLOCATED_BYTES.load(Ordering::Relaxed),
        );
        for req in reqs {
            call(rt, app, req);
        }
        let allocs = (ALLOCATIONS.load(Ordering::Relaxed) - a0) as f64 / 1000.0;
        let bytes = (ALLOCATED_BYTES.load(Ordering::Relaxed) - b0) as f64 / 1000.0;
        println!("| {name:<9} | {allocs:>7.1} | {bytes:>7.0} |");
    }
    println!();
}

fn audit(c: &mut Criterion<ThreadCpu>) {
    let started = SystemTime::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let bearer = format!("Bearer {}", token());
    let apps = apps();
    allocation_table(&rt, &apps, &bearer);
    let mut g = c.benchmark_group("audit");
    for (name, app) in &apps.lines {
        g.bench_function(*name, |b| {
            b.iter_batched(
                || request(&bearer),
                |req| call(&rt, app, req),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
    let off = &apps.lines[0].1;
    let mut paired = Vec::new();
    for (name, app) in &apps.lines[1..] {
        // Only when the lines ran (a filter may leave them out).
        if mean_ns("audit", name, started).is_some() {
            paired.push((*name, paired_ratio(&rt, &bearer, off, app)));
        }
    }
    if !paired.is_empty() {
        assert!(
            apps.recorded.load(Ordering::Relaxed) > 0,
            "the sink was handed records"
        );
    }
    ratios(started, &paired);
}

/// Rounds of the paired measurement, and requests per app in each.
const PAIRED_ROUNDS: usize = 40;
const PAIRED_BATCH: usize = 2_000;

/// Audit ÷ off measured in alternation: [`PAIRED_ROUNDS`] rounds of [`PAIRED_BATCH`]
/// requests to each app (which goes first swapped every round), the CPU time of this
/// thread; the median of the rounds' ratios.
fn paired_ratio(rt: &tokio::runtime::Runtime, auth: &str, off: &Router, on: &Router) -> f64 {
    let time = |app: &Router| {
        let reqs: Vec<_> = (0..PAIRED_BATCH).map(|_| request(auth)).collect();
        let start = ThreadCpu::now();
        for req in reqs {
            call(rt, app, req);
        }
        ThreadCpu::now().saturating_sub(start).as_nanos() as f64
    };
    let mut ratios: Vec<f64> = (0..PAIRED_ROUNDS)
        .map(|round| match round % 2 {
            0 => {
                let off = time(off);
                time(on) / off
            }
            _ => {
                let on = time(on);
                on / time(off)
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

/// What a record is made of, piece by piece.
fn parts(c: &mut Criterion<ThreadCpu>) {
    use std::hash::{BuildHasher, Hasher};
    let token = token();
    let keyed = std::hash::RandomState::new();
    let mut g = c.benchmark_group("audit_parts");
    g.bench_function("time", |b| b.iter(|| black_box(SystemTime::now())));
    g.bench_function("fingerprint", |b| {
        b.iter(|| {
            let mut h = keyed.build_hasher();
            h.write(black_box(token.as_bytes()));
            black_box(format!("{:012x}", h.finish() >> 16))
        })
    });
    g.bench_function("strings", |b| {
        b.iter(|| {
            let owned = [
                black_box("/me").to_owned(),
                black_box("0123456789abcdef0123456789abcdef").to_owned(),
                black_box("alice").to_owned(),
                black_box("https://issuer.bench").to_owned(),
                black_box("bench-client").to_owned(),
            ];
            black_box(Box::new(owned))
        })
    });
    g.finish();
}

/// Audit ÷ off for each audited line: criterion's estimates and the paired median.
fn ratios(since: SystemTime, paired: &[(&str, f64)]) {
    let Some(off) = estimate_ns("audit", "off", since) else {
        return;
    };
    println!(
        "\naudit ÷ off, an accepted request (CPU time per request, this run; paired: the \
         median of {PAIRED_ROUNDS} alternating rounds):\n"
    );
    println!(
        "| {:<9} | {:>9} | {:>9} | {:>7} | {:>7} | {:>6} |",
        "line", "off (ns)", "on (ns)", "ratio", "paired", "goal"
    );
    println!(
        "|{}|{}|{}|{}|{}|{}|",
        "-".repeat(11),
        "-".repeat(11),
        "-".repeat(11),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(8)
    );
    for (name, pair) in paired {
        let Some(on) = estimate_ns("audit", name, since) else {
            continue;
        };
        println!(
            "| {name:<9} | {off:>9.0} | {on:>9.0} | {:>7.3} | {pair:>7.3} | {:>6} |",
            on / off,
            format!("≤ {GOAL}")
        );
    }
    println!();
}

criterion_group! {
    name = records;
    config = Criterion::default()
        .with_measurement(ThreadCpu(criterion::measurement::WallTime))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = audit, parts
}
criterion_main!(records);
