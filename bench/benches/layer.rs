//! What the layer costs, as ratios against baselines measured in the same run.
//!
//! ```text
//! cargo bench -p auth-diagnostics-bench --bench layer
//! ```
//!
//! Groups (compare the lines within a group):
//! - `success_bearer`: a valid HS256 token, sent again and again. `baseline` is the bare
//!   router plus `jsonwebtoken::decode` of the same token (what an application does without
//!   us); `layer` is the router behind `AuthDiagnostics::new().bearer(..)` (a verified-token
//!   cache hit); `layer_uncached` the same without the cache (every request verified).
//! - `success_watch`: no credentials needed. `baseline` is the bare router; `layer` is the
//!   router behind a zero-config `AuthDiagnostics::new()` (request id, snapshot, watching).
//! - `failure_missing`: no credentials, 401. `baseline` is the bare router answering 401 by
//!   itself; `layer` renders the challenge, the problem body and the (rate-limited) event.
//! - `key_source`: a valid RS256 token, verified every time (no token cache). `baseline`
//!   verifies it with a `StaticKey`; `layer` with the same key published in a JWK set
//!   (`KeySource`, fetched once through an in-memory `HttpFetch`): what the key lookup
//!   costs. `layer_cached` is the repeated token with the token cache on.
//! - `dpop`: a valid DPoP-bound HS256 token with a fresh ES256 proof per request (made
//!   outside the timing). `baseline` is the bare router plus `jsonwebtoken::decode` of the
//!   token and of the proof with its own `jwk` (the two signature checks, nothing else);
//!   `bearer` is the same token as Bearer through the layer (a cache hit); `layer` is the
//!   DPoP scheme: every §4.3 check, the key binding and the replay store.
//! - `telemetry`: what metrics and hooks cost. `success` is `success_bearer/layer` (a cache
//!   hit) and `failure` is `failure_missing/layer`, with no metrics recorder installed (the
//!   facade's calls are no-ops); `_prometheus` the same with metrics-exporter-prometheus's
//!   recorder; `_hooks` with an `on_success` and an `on_failure` hook (a copy of the
//!   request's head per request).
//! - `replicas`: what sharing state costs. `dpop_memory` is `dpop/layer` (the in-memory
//!   replay store); `dpop_redis` the same with a `RedisStore` on a loopback `redis-server`
//!   (started for the run when one is on the PATH, else `REDIS_URL`; skipped without
//!   either). `fingerprint_random` is a 401 for a token with a bad signature (one
//!   fingerprint per request) with the per-process key; `fingerprint_keyed` the same after
//!   `.fingerprint_key(..)` (HMAC-SHA256).
//! - `throttle`: what throttling costs a client in good standing (every request succeeds),
//!   each request with a peer address (`ConnectInfo`, as `into_make_service_with_connect_info`
//!   gives). `basic_off`/`basic_on` are a valid Basic credential with a cheap verifier (a
//!   constant-time comparison, no password hash) without and with `.throttle(Throttle::new())`
//!   (the address and the user name counted, locally); `bearer_off`/`bearer_on` the same with a
//!   valid HS256 token (a verified-token cache hit; the address counted). Time is the CPU time
//!   of the sending thread (as in `benches/introspection.rs`: the runtime is single-threaded
//!   and nothing leaves it). The run prints on ÷ off for each, against the goal of 1.03:
//!   criterion's estimates, and the median of rounds that alternate the two apps (the lines
//!   run seconds apart, and other processes on a small machine move them by more than 3%).

use auth_diagnostics::dpop::Dpop;
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::{FetchFuture, Fetched, HttpFetch, KeySource, StaticKey};
use auth_diagnostics::store::RedisStore;
use auth_diagnostics::AuthDiagnostics;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use criterion::BatchSize;
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
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
    let uncached = router().layer(
        AuthDiagnostics::new()
            .without_token_cache()
            .bearer(jwt.clone()),
    );
    g.bench_function("layer_uncached", |b| {
        b.iter(|| {
            let r = rt
                .block_on(uncached.clone().oneshot(request(Some(&bearer))))
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

/// A JWK set served from memory.
struct InMemory(bytes::Bytes);

impl HttpFetch for InMemory {
    fn get<'a>(&'a self, _url: &'a str, _max_bytes: usize) -> FetchFuture<'a> {
        let body = self.0.clone();
        Box::pin(async move {
            Ok(Fetched {
                status: StatusCode::OK,
                cache_control: None,
                body,
            })
        })
    }
}

fn key_source(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let pem = |half: &str| {
        let dir = env!("CARGO_MANIFEST_DIR");
        std::fs::read(format!("{dir}/../tests/keys/rsa_{half}.pem")).unwrap()
    };
    let signing = EncodingKey::from_rsa_pem(&pem("private")).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims =
        json!({ "iss": "https://issuer.bench", "aud": "bench", "sub": "alice", "exp": now + 3600 });
    let bearer = format!("Bearer {}", encode(&header, &claims, &signing).unwrap());
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&signing, Algorithm::RS256).unwrap()).unwrap();
    jwk["kid"] = json!("k1");
    let set = json!({ "keys": [jwk] }).to_string();

    let static_key = StaticKey::new(
        DecodingKey::from_rsa_pem(&pem("public")).unwrap(),
        Algorithm::RS256,
    )
    .with_kid("k1");
    let with_static = router().layer(
        AuthDiagnostics::new().without_token_cache().bearer(
            JwtAuthenticator::new(static_key)
                .issuer("https://issuer.bench")
                .audience("bench"),
        ),
    );
    let source = KeySource::jwks("https://issuer.bench/jwks").http_client(InMemory(set.into()));
    let (with_source, cached) = rt.block_on(async {
        let jwt = JwtAuthenticator::from_source(source.clone())
            .issuer("https://issuer.bench")
            .audience("bench");
        let app = router().layer(
            AuthDiagnostics::new()
                .without_token_cache()
                .bearer(jwt.clone()),
        );
        let cached = router().layer(AuthDiagnostics::new().bearer(jwt));
        source.ready().await;
        (app, cached)
    });

    let mut g = c.benchmark_group("key_source");
    for (name, app) in [
        ("baseline", &with_static),
        ("layer", &with_source),
        ("layer_cached", &cached),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let r = rt
                    .block_on(app.clone().oneshot(request(Some(&bearer))))
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
            })
        });
    }
    g.finish();
}

#[path = "../../examples/common/dpop.rs"]
mod demo_dpop;

/// A DPoP-bound token, its authenticator, and a function that makes a request with a
/// fresh proof.
struct DpopSetup {
    token: String,
    jwk: Value,
    jwt: JwtAuthenticator,
    now: i64,
}

const DPOP_HTU: &str = "http://bench.local/me";

/// DPoP at [`DPOP_HTU`]'s origin. One client sends every proof of a bench, more than a
/// default share: its share is the whole of a store large enough for any bench run
/// (entries take memory only once made).
fn bench_dpop(jwt: JwtAuthenticator) -> Dpop {
    let store = auth_diagnostics::store::MemoryReplayStore::with_capacity(16_000_000);
    Dpop::new(jwt)
        .public_origin("http://bench.local")
        .replay_store(store.key_share(usize::MAX))
}

impl DpopSetup {
    fn request(&self) -> Request<Body> {
        let proof = demo_dpop::dpop_proof("GET", DPOP_HTU, &self.token, self.now);
        let mut r = request(Some(&format!("DPoP {}", self.token)));
        r.headers_mut().insert("dpop", proof.parse().unwrap());
        r.headers_mut()
            .insert("host", "bench.local".parse().unwrap());
        r
    }
}

fn dpop_setup() -> DpopSetup {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (jwk, jkt) = demo_dpop::dpop_jwk();
    let claims = json!({
        "iss": "https://issuer.bench", "aud": "bench", "sub": "alice", "exp": now + 3600,
        "cnf": { "jkt": jkt },
    });
    let token = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer("https://issuer.bench")
        .audience("bench");
    DpopSetup {
        token,
        jwk,
        jwt,
        now,
    }
}

fn dpop(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let setup = dpop_setup();
    let (token, jwt) = (&setup.token, setup.jwt.clone());
    let mut g = c.benchmark_group("dpop");
    let bare = router();
    let token_key = DecodingKey::from_secret(SECRET);
    let mut token_rules = Validation::default();
    token_rules.set_issuer(&["https://issuer.bench"]);
    token_rules.set_audience(&["bench"]);
    let proof_key =
        DecodingKey::from_jwk(&serde_json::from_value::<Jwk>(setup.jwk.clone()).unwrap()).unwrap();
    let mut proof_rules = Validation::new(Algorithm::ES256);
    proof_rules.required_spec_claims.clear();
    proof_rules.validate_exp = false;
    proof_rules.validate_aud = false;
    g.bench_function("baseline", |b| {
        b.iter_batched(
            || setup.request(),
            |req| {
                let p = req.headers()["dpop"].to_str().unwrap();
                black_box(decode::<Value>(p, &proof_key, &proof_rules).unwrap());
                black_box(decode::<Value>(token, &token_key, &token_rules).unwrap());
                let r = rt.block_on(bare.clone().oneshot(req)).unwrap();
                assert_eq!(r.status(), StatusCode::OK);
            },
            BatchSize::SmallInput,
        )
    });
    let bearer = router().layer(AuthDiagnostics::new().bearer(jwt.clone()));
    let as_bearer = format!("Bearer {token}");
    g.bench_function("bearer", |b| {
        b.iter(|| {
            // A bound token is refused as Bearer: the cost of the same token's path.
            let r = rt
                .block_on(bearer.clone().oneshot(request(Some(&as_bearer))))
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        })
    });
    let layered = router().layer(AuthDiagnostics::new().dpop(bench_dpop(jwt)));
    g.bench_function("layer", |b| {
        b.iter_batched(
            || setup.request(),
            |req| {
                let r = rt.block_on(layered.clone().oneshot(req)).unwrap();
                assert_eq!(r.status(), StatusCode::OK);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn telemetry(c: &mut Criterion) {
    use auth_diagnostics::failure::AuthFailure;
    use auth_diagnostics::Principal;
    use axum::http::request::Parts;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let bearer = format!("Bearer {}", token());
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer("https://issuer.bench")
        .audience("bench")
        .require_claims(["sub"]);
    let plain = router().layer(AuthDiagnostics::new().bearer(jwt.clone()));
    let heard = Arc::new(AtomicU64::new(0));
    let (ok, bad) = (heard.clone(), heard.clone());
    let hooked = router().layer(
        AuthDiagnostics::new()
            .bearer(jwt)
            .on_success(move |_: &Principal, _: &Parts| {
                ok.fetch_add(1, Ordering::Relaxed);
            })
            .on_failure(move |_: &AuthFailure, _: &Parts| {
                bad.fetch_add(1, Ordering::Relaxed);
            }),
    );
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let call = |app: &Router, auth: Option<&str>, status: StatusCode| {
        let r = rt.block_on(app.clone().oneshot(request(auth))).unwrap();
        assert_eq!(r.status(), status);
    };
    let mut g = c.benchmark_group("telemetry");
    for (name, auth, status) in [
        ("success", Some(bearer.as_str()), StatusCode::OK),
        ("failure", None, StatusCode::UNAUTHORIZED),
    ] {
        g.bench_function(name, |b| b.iter(|| call(&plain, auth, status)));
        g.bench_function(format!("{name}_prometheus"), |b| {
            metrics::with_local_recorder(&prometheus, || b.iter(|| call(&plain, auth, status)))
        });
        g.bench_function(format!("{name}_hooks"), |b| {
            b.iter(|| call(&hooked, auth, status))
        });
    }
    g.finish();
    // Checked only when these benches ran (a filter such as `-- replicas` skips them).
    let text = prometheus.handle().render();
    if heard.load(Ordering::Relaxed) > 0 {
        assert!(
            text.contains("auth_diagnostics_successes_total"),
            "the recorder saw the layer: {text}"
        );
    }
}

/// A `redis-server` for the run (killed when dropped), or `REDIS_URL`.
struct BenchRedis {
    url: String,
    child: Option<std::process::Child>,
}

impl Drop for BenchRedis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn bench_redis() -> Option<BenchRedis> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return Some(BenchRedis { url, child: None });
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let redis = BenchRedis {
        url: format!("redis://127.0.0.1:{port}"),
        child: Some(child),
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(redis);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}

fn replicas(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let setup = dpop_setup();
    let mut g = c.benchmark_group("replicas");
    let call = |app: &Router, req: Request<Body>, status: StatusCode| {
        let r = rt.block_on(app.clone().oneshot(req)).unwrap();
        assert_eq!(r.status(), status);
    };
    let memory = router().layer(AuthDiagnostics::new().dpop(bench_dpop(setup.jwt.clone())));
    g.bench_function("dpop_memory", |b| {
        b.iter_batched(
            || setup.request(),
            |req| call(&memory, req, StatusCode::OK),
            BatchSize::SmallInput,
        )
    });
    match bench_redis() {
        Some(redis) => {
            // One client sends every proof: its share is the whole store.
            let store = RedisStore::open(&redis.url)
                .unwrap()
                .dpop_key_share(u64::MAX);
            let shared = router().layer(
                AuthDiagnostics::new().dpop(bench_dpop(setup.jwt.clone()).replay_store(store)),
            );
            g.bench_function("dpop_redis", |b| {
                b.iter_batched(
                    || setup.request(),
                    |req| call(&shared, req, StatusCode::OK),
                    BatchSize::SmallInput,
                )
            });
        }
        None => {
            eprintln!("replicas/dpop_redis skipped: no redis-server on the PATH and no REDIS_URL")
        }
    }
    let forged = format!("Bearer {}x", token());
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer("https://issuer.bench")
        .audience("bench");
    let layer = AuthDiagnostics::new().bearer(jwt).log_every_failure();
    let plain = router().layer(layer.clone());
    let bad = || request(Some(&forged));
    g.bench_function("fingerprint_random", |b| {
        b.iter(|| call(&plain, bad(), StatusCode::UNAUTHORIZED))
    });
    // The key is the process's: from here on every fingerprint is keyed.
    let keyed = router().layer(layer.fingerprint_key([7u8; 32]));
    g.bench_function("fingerprint_keyed", |b| {
        b.iter(|| call(&keyed, bad(), StatusCode::UNAUTHORIZED))
    });
    g.finish();
}

#[path = "support/thread_cpu.rs"]
mod thread_cpu;
use thread_cpu::ThreadCpu;
#[path = "support/criterion_home.rs"]
mod criterion_home;
use criterion_home::{estimate_ns, mean_ns};

/// The address every `throttle` request comes from.
const PEER: ([u8; 4], u16) = ([203, 0, 113, 9], 50_000);

fn throttle(c: &mut Criterion<ThreadCpu>) {
    use auth_diagnostics::basic::{BasicAuthenticator, BasicCredentials};
    use auth_diagnostics::failure::AuthFailure;
    use auth_diagnostics::throttle::Throttle;
    use auth_diagnostics::{Principal, Reason};
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;

    let started = std::time::SystemTime::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer("https://issuer.bench")
        .audience("bench")
        .require_claims(["sub"]);
    let basic = BasicAuthenticator::new(|c: BasicCredentials| async move {
        match c.user == "alice" && c.password.ct_eq("wonderland") {
            true => Ok(Principal::new(c.user)),
            false => Err(AuthFailure::new(Reason::BasicPasswordMismatch)),
        }
    });
    let bearer = format!("Bearer {}", token());
    // alice:wonderland
    let alice = "Basic YWxpY2U6d29uZGVybGFuZA==".to_owned();
    let peer = SocketAddr::from(PEER);
    let with_peer = |auth: &str| {
        let mut r = request(Some(auth));
        r.extensions_mut().insert(ConnectInfo(peer));
        r
    };
    let apps = [
        ("basic", &alice, AuthDiagnostics::new().basic(basic)),
        ("bearer", &bearer, AuthDiagnostics::new().bearer(jwt)),
    ];
    let call = |app: &Router, auth: &str| {
        let r = rt.block_on(app.clone().oneshot(with_peer(auth))).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    };
    let mut g = c.benchmark_group("throttle");
    let mut paired = Vec::new();
    for (name, auth, layer) in apps {
        let off = router().layer(layer.clone());
        let throttle = Throttle::new();
        let on = router().layer(layer.throttle(throttle.clone()));
        for (line, app) in [("off", &off), ("on", &on)] {
            // Warm: the token cache holds the token (admitted on its second verification),
            // the first request's notes are said.
            call(app, auth);
            call(app, auth);
            g.bench_function(format!("{name}_{line}"), |b| b.iter(|| call(app, auth)));
        }
        // Only when the lines ran (a filter may leave them out).
        if ran(started, name) {
            paired.push((name, paired_ratio(|app| call(app, auth), &off, &on)));
        }
        // A client in good standing leaves nothing to count: the table holds no key.
        assert_eq!(throttle.tracked(), 0, "{name}: a success was counted");
    }
    g.finish();
    throttle_ratios(started, &paired);
}

/// Whether `throttle/{name}_on` was measured in this run.
fn ran(since: std::time::SystemTime, name: &str) -> bool {
    mean_ns("throttle", &format!("{name}_on"), since).is_some()
}

/// Rounds of the paired measurement, and requests per app in each.
const PAIRED_ROUNDS: usize = 40;
const PAIRED_BATCH: usize = 2_000;

/// On ÷ off measured in alternation: [`PAIRED_ROUNDS`] rounds of [`PAIRED_BATCH`] requests to
/// each app (which goes first swapped every round), the CPU time of this thread; the median
/// of the rounds' ratios. Criterion's lines run seconds apart, and other processes on a
/// small machine move them by more than the few per cent looked for; here both halves of
/// each ratio see the same machine.
fn paired_ratio(call: impl Fn(&Router), off: &Router, on: &Router) -> f64 {
    let time = |app: &Router| {
        let start = ThreadCpu::now();
        for _ in 0..PAIRED_BATCH {
            call(app);
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

/// The `throttle` group's table: on ÷ off for each credential, criterion's estimates of
/// both lines (its slope, as it prints them) in this run, and the paired median.
fn throttle_ratios(since: std::time::SystemTime, paired: &[(&str, f64)]) {
    println!(
        "\nthrottling on ÷ off, a client in good standing (CPU time per request, this run; \
         paired: the median of {PAIRED_ROUNDS} alternating rounds):\n"
    );
    println!(
        "| {:<14} | {:>9} | {:>9} | {:>7} | {:>7} | {:>6} |",
        "case", "off (ns)", "on (ns)", "ratio", "paired", "goal"
    );
    println!(
        "|{}|{}|{}|{}|{}|{}|",
        "-".repeat(16),
        "-".repeat(11),
        "-".repeat(11),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(8)
    );
    for (case, name) in [("Basic valid", "basic"), ("Bearer valid", "bearer")] {
        let off = estimate_ns("throttle", &format!("{name}_off"), since);
        let on = estimate_ns("throttle", &format!("{name}_on"), since);
        let (Some(off), Some(on)) = (off, on) else {
            continue;
        };
        let pair = paired
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("-".to_owned(), |(_, r)| format!("{r:.3}"));
        println!(
            "| {case:<14} | {off:>9.0} | {on:>9.0} | {:>7.3} | {pair:>7} | {:>6} |",
            on / off,
            "≤ 1.03"
        );
    }
    println!();
}

criterion_group! {
    name = layer;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = benches, key_source, dpop, telemetry, replicas
}
criterion_group! {
    name = throttling;
    config = Criterion::default()
        .with_measurement(ThreadCpu(criterion::measurement::WallTime))
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = throttle
}
criterion_main!(layer, throttling);
