//! The layer beside its peers: the same request, the same token, the same key
//! and the same trivial handler (`|| async { "ok" }`) through each, in one run, so the
//! lines of a group compare.
//!
//! ```text
//! cargo bench -p auth-diagnostics-bench --bench peers --no-run        # build only (CI)
//! cargo bench -p auth-diagnostics-bench --bench peers                 # allocation table, every group, ratio table
//! cargo bench -p auth-diagnostics-bench --bench peers -- hs256_valid  # one group (the allocation table still prints)
//! ```
//!
//! Before the groups, an allocation table is printed to stdout: allocations (and bytes) per
//! request of every line of every group below, counted by this file's `#[global_allocator]`
//! over 1000 requests after 100 of warm-up, and for this crate's layer the share of those
//! requests its token cache answered (`AuthDiagnostics::token_cache_stats`): 100% for a
//! repeated token, 0% for a first-seen one. The request itself is built outside the count
//! (and outside the timing: every line uses `iter_batched`).
//!
//! After the groups, a ratio table is printed to stdout: for each case (no token, garbage,
//! expired, wrong audience, first-seen and repeated valid tokens, with the token cache on
//! and off), this crate's layer's mean time per request over the fastest peer's, and over
//! the baseline's, both as criterion estimated them in this run (its `estimates.json`; a
//! line a filter left out is not in the table), beside the goal of issue 30.
//!
//! Time is the CPU time of the thread that sends the requests (`CLOCK_THREAD_CPUTIME_ID`,
//! as in `benches/introspection.rs`), not wall time: on two cores shared with a build,
//! wall time moved the ES256 lines by up to a factor of two from one run to the next.
//!
//! Lines (each asserts the status it expects, so a misconfigured peer fails the bench
//! instead of measuring an error path):
//! - `baseline`: a bare axum 0.8 router whose handler strips `Bearer ` and runs
//!   `jsonwebtoken::decode` of the token with the same key and validation (issuer, audience,
//!   `exp`): 200 when it verifies, a bare 401 otherwise (what an app does by itself);
//! - `auth_diagnostics`: the router behind `AuthDiagnostics::new().bearer(JwtAuthenticator::
//!   new(StaticKey::new(key, alg).with_kid("k1")).issuer(..).audience(..))`, defaults
//!   otherwise (token cache and flood control on). In the valid groups it is
//!   `auth_diagnostics_repeated` (one token, as every other line sends: a cache hit),
//!   beside `auth_diagnostics_no_cache` (`.without_token_cache()`). In the rejection
//!   groups one bad token is repeated too, and the cache remembers an expired, forged or
//!   wrong-audience token's failure for 10 s: `hs256_expired`, `hs256_bad_signature`,
//!   `*_wrong_audience` and `es256_expired` measure that hit, `flood_distinct_bad_tokens`
//!   the miss;
//! - `auth_diagnostics_log_every_failure` (`_logged` groups only): the same with
//!   `.log_every_failure()`, i.e. flood control off, so every rejection formats its event;
//! - `jwt_authorizer`: jwt-authorizer 0.15 (on axum 0.7) with the key given as PEM text or
//!   the secret (`JwtAuthorizer::from_secret`/`from_ec_pem_text`/..), the same issuer and
//!   audience. Its own jsonwebtoken 9 verifies with ring; its default algorithm list for
//!   the key (e.g. HS256/384/512) is kept;
//! - `tower_oauth2_resource_server`: tower-oauth2-resource-server 0.12 with a static JWK
//!   set (`TenantConfiguration::static_builder`, no network), the key's `kid`, the same
//!   issuer, audience and `exp` checks, and `allowed_algorithms` the one algorithm (HS256
//!   must be allowed explicitly: it is not in its default list);
//! - `oauth_resource_server`: oauth-resource-server 0.4 (`axum::AuthLayer` over an
//!   `OAuthValidator`) with the JWK set given up front (`initial_jwks`: its `jwks_uri` is
//!   never fetched), the same issuer and audience, the one algorithm, no scope required
//!   (`allow_unscoped_tokens`). It verifies with jsonwebtoken 9 on ring and refuses
//!   shared-secret algorithms outright, so it has no line in the HS256 groups: it is in
//!   every RS256, ES256 and EdDSA group, and `es256_missing` and `es256_garbage` are the
//!   no-token and garbage cases with all three peers.
//!
//! Groups:
//! - `hs256_valid`, `rs256_valid`, `es256_valid`, `eddsa_valid`: one valid token, sent
//!   again and again, 200;
//! - `hs256_first_seen`, `rs256_first_seen`, `es256_first_seen`, `eddsa_first_seen`: every
//!   line walks one pool of [`FIRST_SEEN_POOL`] distinct valid tokens (distinct `jti`), in
//!   order: larger than the token cache's default 10 000 entries, so an oldest-first cache
//!   never holds the token that comes next, 200;
//! - `hs256_missing`, `hs256_expired`, `hs256_garbage` (`Bearer not-a-jwt`),
//!   `hs256_wrong_audience`, `hs256_bad_signature`, `hs256_wrong_scheme` (`Basic` sent),
//!   `es256_expired`, `es256_missing`, `es256_garbage`, `es256_wrong_audience`: rejections,
//!   401 everywhere;
//! - `flood_distinct_bad_tokens`: [`FLOOD_POOL`] distinct bad tokens (garbage and expired,
//!   alternating) cycled, the layer's flood control on (the default). The token cache
//!   remembers an expired token's failure for 10 s, so the pool is larger than it keeps:
//!   every request is a miss;
//! - each rejection group but the wrong-audience ones and `es256_garbage`, and the flood
//!   group, again with the suffix `_logged`: a JSON `tracing_subscriber::fmt().json()`
//!   subscriber writing to `std::io::sink` is the thread's default (jwt-authorizer logs its
//!   rejections through `tracing` at INFO, so it pays too; oauth-resource-server through
//!   `tracing`, a missing credential at DEBUG and any other refusal at WARN;
//!   tower-oauth2-resource-server logs them through `log` at DEBUG, so nothing is written);
//! - `config_scaling`: `auth_diagnostics` with a valid HS256 token, first-seen pool, with
//!   1, 10 and 100 static keys of distinct `kid`s (the token naming the last) and with 1, 10
//!   and 100 issuers (one `.bearer(..)` per issuer, the token from the last): the cost
//!   should not grow with the configuration.
//!
//! All requests go through `tower::ServiceExt::oneshot` on a current-thread Tokio runtime
//! (`block_on`). The counting allocator adds an atomic increment to every allocation of
//! every line alike. Before anything is measured, every line answers two requests with its
//! status and the JSON subscriber is shown to receive the layer's events; minting the token
//! pools (16 384 per first-seen group, 32 768 for the flood) takes a few seconds. With
//! criterion's settings below (0.5 s of warm-up, 1 s of measurement per line) the whole
//! run takes five to six minutes on two cores.

use auth_diagnostics::jwt::{JwtAuthenticator, TokenCacheStats};
use auth_diagnostics::keys::StaticKey;
use auth_diagnostics::AuthDiagnostics;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use criterion::measurement::WallTime;
use criterion::{BatchSize, Criterion};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use jwt_authorizer::{IntoLayer, JwtAuthorizer, RegisteredClaims};
use oauth_resource_server::axum::AuthLayer as OrsAuthLayer;
use oauth_resource_server::{KeyNaming, OAuthConfig, OAuthValidator};
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::runtime::Runtime;
use tower::ServiceExt;
use tower_oauth2_resource_server::claims::DefaultClaims;
use tower_oauth2_resource_server::server::OAuth2ResourceServer;
use tower_oauth2_resource_server::tenant::TenantConfiguration;
use tower_oauth2_resource_server::validation::ClaimsValidationSpec;

#[path = "support/thread_cpu.rs"]
mod thread_cpu;
use thread_cpu::ThreadCpu;
#[path = "support/criterion_home.rs"]
mod criterion_home;
use criterion_home::mean_ns;

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

const SECRET: &str = "bench-secret";
const ISS: &str = "https://issuer.bench";
const AUD: &str = "bench";
const KID: &str = "k1";
/// Distinct tokens of a `*_first_seen` line: more than the verified-token cache keeps by
/// default (10 000), so walking them in order never meets a cached one.
const FIRST_SEEN_POOL: usize = 16_384;
/// Distinct bad tokens of `flood_distinct_bad_tokens`, half of them garbage and half
/// expired: the token cache remembers an expired token's failure for 10 s, so the expired
/// ones must outnumber its entries too.
const FLOOD_POOL: usize = 2 * FIRST_SEEN_POOL;
const ALLOC_WARMUP: usize = 100;
const ALLOC_REQUESTS: usize = 1000;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn pem(name: &str, half: &str) -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    std::fs::read_to_string(format!("{dir}/../tests/keys/{name}_{half}.pem")).unwrap()
}

/// One algorithm's signing key, verification key and the same key as text for the peers.
struct Keys {
    alg: Algorithm,
    signing: EncodingKey,
    verifying: DecodingKey,
    /// The public key's PEM (the secret for HS256), for jwt-authorizer.
    text: String,
}

impl Keys {
    fn new(alg: Algorithm) -> Self {
        let (signing, verifying, text) = match alg {
            Algorithm::HS256 => (
                EncodingKey::from_secret(SECRET.as_bytes()),
                DecodingKey::from_secret(SECRET.as_bytes()),
                SECRET.to_owned(),
            ),
            Algorithm::RS256 => {
                let public = pem("rsa", "public");
                (
                    EncodingKey::from_rsa_pem(pem("rsa", "private").as_bytes()).unwrap(),
                    DecodingKey::from_rsa_pem(public.as_bytes()).unwrap(),
                    public,
                )
            }
            Algorithm::ES256 => {
                let public = pem("ec256", "public");
                (
                    EncodingKey::from_ec_pem(pem("ec256", "private").as_bytes()).unwrap(),
                    DecodingKey::from_ec_pem(public.as_bytes()).unwrap(),
                    public,
                )
            }
            Algorithm::EdDSA => {
                let public = pem("ed25519", "public");
                (
                    EncodingKey::from_ed_pem(pem("ed25519", "private").as_bytes()).unwrap(),
                    DecodingKey::from_ed_pem(public.as_bytes()).unwrap(),
                    public,
                )
            }
            other => unreachable!("no test key for {other:?}"),
        };
        Self {
            alg,
            signing,
            verifying,
            text,
        }
    }

    /// A token with `kid` k1, expiring `expires_in` seconds from now.
    fn token(&self, expires_in: i64, jti: &str) -> String {
        mint(&self.signing, self.alg, KID, ISS, AUD, expires_in, jti)
    }

    /// A valid token for another audience than the one every line expects.
    fn token_for_other_audience(&self) -> String {
        mint(
            &self.signing,
            self.alg,
            KID,
            ISS,
            "another-api",
            3600,
            "aud",
        )
    }

    /// `count` valid tokens of distinct `jti`, minted on both cores.
    fn pool(&self, count: usize) -> Vec<String> {
        let half = count / 2;
        std::thread::scope(|s| {
            let second = s.spawn(|| {
                (half..count)
                    .map(|i| self.token(3600, &format!("first-seen-{i}")))
                    .collect::<Vec<_>>()
            });
            let mut tokens: Vec<String> = (0..half)
                .map(|i| self.token(3600, &format!("first-seen-{i}")))
                .collect();
            tokens.extend(second.join().unwrap());
            tokens
        })
    }

    /// The JWK set tower-oauth2-resource-server is given: this key, kid k1.
    fn jwk_set(&self) -> String {
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&self.signing, self.alg).unwrap()).unwrap();
        jwk["kid"] = json!(KID);
        json!({ "keys": [jwk] }).to_string()
    }

    fn validation(&self) -> Validation {
        let mut v = Validation::new(self.alg);
        v.set_issuer(&[ISS]);
        v.set_audience(&[AUD]);
        v
    }
}

fn mint(
    key: &EncodingKey,
    alg: Algorithm,
    kid: &str,
    iss: &str,
    aud: &str,
    expires_in: i64,
    jti: &str,
) -> String {
    let now = now();
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    let claims = json!({
        "iss": iss, "aud": aud, "sub": "alice", "iat": now, "exp": now + expires_in, "jti": jti,
    });
    encode(&header, &claims, key).unwrap()
}

/// A router of axum 0.8 (the baseline, tower-oauth2-resource-server,
/// oauth-resource-server), one behind this crate's layer (kept, for its cache statistics),
/// or one of axum 0.7 (jwt-authorizer).
///
/// Every router is finished with `.with_state(())`, as `axum::serve` does
/// (`Router::into_make_service`): its handlers become routes and its layers are applied
/// once. A router called without it builds its handler's route, and applies every layer
/// to it, again for each request.
#[derive(Clone)]
enum App {
    Axum08(axum::Router),
    Layered(axum::Router, AuthDiagnostics),
    Axum07(axum07::Router),
}

enum Req {
    Axum08(Request<axum::body::Body>),
    Axum07(Request<axum07::body::Body>),
}

impl App {
    fn request(&self, authorization: Option<&str>) -> Req {
        let mut b = Request::get("/me")
            .header("user-agent", "bench")
            .header("accept", "application/json");
        if let Some(a) = authorization {
            b = b.header(header::AUTHORIZATION, a);
        }
        match self {
            App::Axum08(_) | App::Layered(..) => {
                Req::Axum08(b.body(axum::body::Body::empty()).unwrap())
            }
            App::Axum07(_) => Req::Axum07(b.body(axum07::body::Body::empty()).unwrap()),
        }
    }

    fn call(&self, rt: &Runtime, req: Req) -> StatusCode {
        match (self, req) {
            (App::Axum08(app) | App::Layered(app, _), Req::Axum08(req)) => {
                rt.block_on(app.clone().oneshot(req)).unwrap().status()
            }
            (App::Axum07(app), Req::Axum07(req)) => {
                rt.block_on(app.clone().oneshot(req)).unwrap().status()
            }
            _ => unreachable!("a request for another axum"),
        }
    }

    fn cache_stats(&self) -> Option<TokenCacheStats> {
        match self {
            App::Layered(_, layer) => layer.token_cache_stats(),
            _ => None,
        }
    }
}

/// The router behind `layer`.
fn layered(layer: AuthDiagnostics) -> App {
    App::Layered(handler08().layer(layer.clone()).with_state(()), layer)
}

/// What an application does without a layer: decode in the handler, 401 on failure.
fn baseline(keys: &Keys) -> App {
    let state = Arc::new((keys.verifying.clone(), keys.validation()));
    App::Axum08(
        axum::Router::new()
            .route(
                "/me",
                get(move |req: axum::extract::Request| {
                    let state = state.clone();
                    async move {
                        let token = req
                            .headers()
                            .get(header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("Bearer "));
                        match token.map(|t| decode::<Value>(t, &state.0, &state.1)) {
                            Some(Ok(_)) => (StatusCode::OK, "ok"),
                            _ => (StatusCode::UNAUTHORIZED, ""),
                        }
                    }
                }),
            )
            .with_state(()),
    )
}

fn handler08() -> axum::Router {
    axum::Router::new().route("/me", get(|| async { "ok" }))
}

fn jwt(keys: &Keys) -> JwtAuthenticator {
    JwtAuthenticator::new(StaticKey::new(keys.verifying.clone(), keys.alg).with_kid(KID))
        .issuer(ISS)
        .audience(AUD)
}

async fn jwt_authorizer(keys: &Keys) -> App {
    let builder = match keys.alg {
        Algorithm::HS256 => JwtAuthorizer::<RegisteredClaims>::from_secret(&keys.text),
        Algorithm::RS256 => JwtAuthorizer::from_rsa_pem_text(&keys.text),
        Algorithm::ES256 => JwtAuthorizer::from_ec_pem_text(&keys.text),
        Algorithm::EdDSA => JwtAuthorizer::from_ed_pem_text(&keys.text),
        other => unreachable!("no test key for {other:?}"),
    };
    let authorizer = builder
        .validation(jwt_authorizer::Validation::new().iss(&[ISS]).aud(&[AUD]))
        .build()
        .await
        .unwrap();
    App::Axum07(
        axum07::Router::new()
            .route("/me", axum07::routing::get(|| async { "ok" }))
            .layer(authorizer.into_layer())
            .with_state(()),
    )
}

async fn tower_oauth2(keys: &Keys) -> App {
    let tenant = TenantConfiguration::static_builder(keys.jwk_set())
        .identifier(ISS)
        .claims_validation(
            ClaimsValidationSpec::new()
                .exp(true)
                .iss(ISS)
                .aud(&vec![AUD.to_owned()]),
        )
        .allowed_algorithms(&[keys.alg])
        .build()
        .unwrap();
    let server = OAuth2ResourceServer::<DefaultClaims>::builder()
        .add_tenant(tenant)
        .build()
        .await
        .unwrap();
    App::Axum08(handler08().layer(server.into_layer()).with_state(()))
}

/// oauth-resource-server 0.4 with the JWK set given up front (`initial_jwks`, no fetch: the
/// `jwks_uri` is never reached), the same issuer and audience, the one algorithm, and no
/// scope required (`allow_unscoped_tokens`, as the other lines). `None` for HS256: it
/// refuses shared-secret algorithms outright.
fn oauth_rs(keys: &Keys) -> Option<App> {
    if keys.alg == Algorithm::HS256 {
        return None;
    }
    let resolved = OAuthConfig {
        enabled: true,
        issuer: ISS.to_owned(),
        jwks_uri: Some(format!("{ISS}/jwks")),
        audience: AUD.to_owned(),
        resource: "https://api.bench".to_owned(),
        algorithms: vec![format!("{:?}", keys.alg)],
        allow_unscoped_tokens: true,
        ..OAuthConfig::default()
    }
    .resolve(KeyNaming::Dotted("oauth"))
    .unwrap()
    .unwrap();
    let validator = OAuthValidator::builder(&resolved)
        .initial_jwks(&keys.jwk_set())
        .build()
        .unwrap();
    let layer = OrsAuthLayer::builder()
        .oauth(Arc::new(validator))
        .build()
        .unwrap();
    Some(App::Axum08(handler08().layer(layer).with_state(())))
}

/// The routers of one key.
struct Apps {
    baseline: App,
    auth_diagnostics: App,
    auth_diagnostics_no_cache: App,
    auth_diagnostics_every_failure: App,
    jwt_authorizer: App,
    tower_oauth2: App,
    /// `None` for HS256 (see [`oauth_rs`]).
    oauth_rs: Option<App>,
}

impl Apps {
    fn new(rt: &Runtime, keys: &Keys) -> Self {
        rt.block_on(async {
            Self {
                baseline: baseline(keys),
                auth_diagnostics: layered(AuthDiagnostics::new().bearer(jwt(keys))),
                auth_diagnostics_no_cache: layered(
                    AuthDiagnostics::new()
                        .bearer(jwt(keys))
                        .without_token_cache(),
                ),
                auth_diagnostics_every_failure: layered(
                    AuthDiagnostics::new().bearer(jwt(keys)).log_every_failure(),
                ),
                jwt_authorizer: jwt_authorizer(keys).await,
                tower_oauth2: tower_oauth2(keys).await,
                oauth_rs: oauth_rs(keys),
            }
        })
    }
}

/// `Authorization` values (`None`: no header), walked in order by every line that sends
/// them: the check, the allocation table and the bench, and the lines of a group and its
/// `_logged` twin, go on from each other, so a token of a pool is not sent again before
/// the whole pool has been.
struct Walk {
    values: Vec<Option<String>>,
    next: AtomicUsize,
}

impl Walk {
    fn new(values: Vec<Option<String>>) -> Arc<Self> {
        Arc::new(Self {
            values,
            next: AtomicUsize::new(0),
        })
    }

    fn next(&self) -> Option<&str> {
        let at = self.next.fetch_add(1, Ordering::Relaxed);
        self.values[at % self.values.len()].as_deref()
    }
}

/// One line of a group: a router, the `Authorization` values it is sent (cycled), and the
/// status it must answer.
struct Line {
    name: String,
    app: App,
    authorization: Arc<Walk>,
    expect: StatusCode,
}

impl Line {
    fn next_request(&self) -> Req {
        self.app.request(self.authorization.next())
    }

    fn send(&self, rt: &Runtime, req: Req, group: &str) {
        let status = self.app.call(rt, req);
        assert_eq!(status, self.expect, "{group}/{}", self.name);
    }
}

struct Group {
    name: String,
    logged: bool,
    lines: Vec<Line>,
}

fn line(name: &str, app: &App, authorization: &Arc<Walk>, expect: StatusCode) -> Line {
    Line {
        name: name.to_owned(),
        app: app.clone(),
        authorization: authorization.clone(),
        expect,
    }
}

fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

/// The peers' lines of a group, each sent `authorization` and expected to answer `expect`.
fn peer_lines(apps: &Apps, authorization: &Arc<Walk>, expect: StatusCode) -> Vec<Line> {
    let mut lines = vec![
        line(
            "jwt_authorizer",
            &apps.jwt_authorizer,
            authorization,
            expect,
        ),
        line(
            "tower_oauth2_resource_server",
            &apps.tower_oauth2,
            authorization,
            expect,
        ),
    ];
    if let Some(app) = &apps.oauth_rs {
        lines.push(line("oauth_resource_server", app, authorization, expect));
    }
    lines
}

/// A valid-token group: one token, sent again and again (a cache hit for this crate's
/// layer with its cache on).
fn valid_group(name: &str, apps: &Apps, keys: &Keys) -> Group {
    let one = Walk::new(vec![bearer(&keys.token(3600, "one"))]);
    let ok = StatusCode::OK;
    let mut lines = vec![
        line("baseline", &apps.baseline, &one, ok),
        line(
            "auth_diagnostics_repeated",
            &apps.auth_diagnostics,
            &one,
            ok,
        ),
        line(
            "auth_diagnostics_no_cache",
            &apps.auth_diagnostics_no_cache,
            &one,
            ok,
        ),
    ];
    lines.extend(peer_lines(apps, &one, ok));
    Group {
        name: name.to_owned(),
        logged: false,
        lines,
    }
}

/// A first-seen group: every line walks one pool of [`FIRST_SEEN_POOL`] distinct valid
/// tokens, so no request repeats a token any line sent before it in the last 16 384.
fn first_seen_group(name: &str, apps: &Apps, keys: &Keys) -> Group {
    let pool = Walk::new(
        keys.pool(FIRST_SEEN_POOL)
            .iter()
            .map(|t| bearer(t))
            .collect(),
    );
    let ok = StatusCode::OK;
    let mut lines = vec![
        line("baseline", &apps.baseline, &pool, ok),
        line("auth_diagnostics", &apps.auth_diagnostics, &pool, ok),
        line(
            "auth_diagnostics_no_cache",
            &apps.auth_diagnostics_no_cache,
            &pool,
            ok,
        ),
    ];
    lines.extend(peer_lines(apps, &pool, ok));
    Group {
        name: name.to_owned(),
        logged: false,
        lines,
    }
}

/// A rejection group, and its `_logged` twin when `twin`.
fn rejection_groups(
    name: &str,
    apps: &Apps,
    authorization: Vec<Option<String>>,
    twin: bool,
) -> Vec<Group> {
    let authorization = Walk::new(authorization);
    let no = StatusCode::UNAUTHORIZED;
    let lines = |logged: bool| {
        let mut lines = vec![
            line("baseline", &apps.baseline, &authorization, no),
            line(
                "auth_diagnostics",
                &apps.auth_diagnostics,
                &authorization,
                no,
            ),
        ];
        if logged {
            lines.push(line(
                "auth_diagnostics_log_every_failure",
                &apps.auth_diagnostics_every_failure,
                &authorization,
                no,
            ));
        }
        lines.extend(peer_lines(apps, &authorization, no));
        lines
    };
    let mut groups = vec![Group {
        name: name.to_owned(),
        logged: false,
        lines: lines(false),
    }];
    if twin {
        groups.push(Group {
            name: format!("{name}_logged"),
            logged: true,
            lines: lines(true),
        });
    }
    groups
}

/// `config_scaling`: one HS256 layer with `n` keys of distinct kids, and one with `n`
/// issuers; first-seen tokens naming the last key or issuer.
fn config_scaling() -> Group {
    let ok = StatusCode::OK;
    let mut lines = Vec::new();
    for n in [1usize, 10, 100] {
        let secret = |i: usize| format!("{SECRET}-{i}");
        let mut authenticator: Option<JwtAuthenticator> = None;
        for i in 0..n {
            let key = StaticKey::hs256(secret(i)).with_kid(format!("k{i}"));
            authenticator = Some(match authenticator {
                None => JwtAuthenticator::new(key).issuer(ISS).audience(AUD),
                Some(jwt) => jwt.key(key),
            });
        }
        let app = layered(AuthDiagnostics::new().bearer(authenticator.unwrap()));
        let signing = EncodingKey::from_secret(secret(n - 1).as_bytes());
        let kid = format!("k{}", n - 1);
        let pool: Vec<_> = (0..FIRST_SEEN_POOL)
            .map(|i| {
                bearer(&mint(
                    &signing,
                    Algorithm::HS256,
                    &kid,
                    ISS,
                    AUD,
                    3600,
                    &format!("t{i}"),
                ))
            })
            .collect();
        lines.push(line(&format!("keys_{n}"), &app, &Walk::new(pool), ok));
    }
    for n in [1usize, 10, 100] {
        let issuer = |i: usize| format!("https://issuer-{i}.bench");
        let mut layer = AuthDiagnostics::new();
        for i in 0..n {
            layer = layer.bearer(
                JwtAuthenticator::new(StaticKey::hs256(SECRET).with_kid(KID))
                    .issuer(issuer(i))
                    .audience(AUD),
            );
        }
        let app = layered(layer);
        let signing = EncodingKey::from_secret(SECRET.as_bytes());
        let pool: Vec<_> = (0..FIRST_SEEN_POOL)
            .map(|i| {
                bearer(&mint(
                    &signing,
                    Algorithm::HS256,
                    KID,
                    &issuer(n - 1),
                    AUD,
                    3600,
                    &format!("t{i}"),
                ))
            })
            .collect();
        lines.push(line(&format!("issuers_{n}"), &app, &Walk::new(pool), ok));
    }
    Group {
        name: "config_scaling".to_owned(),
        logged: false,
        lines,
    }
}

fn groups(rt: &Runtime) -> Vec<Group> {
    let hs = Keys::new(Algorithm::HS256);
    let rs = Keys::new(Algorithm::RS256);
    let es = Keys::new(Algorithm::ES256);
    let ed = Keys::new(Algorithm::EdDSA);
    let hs_apps = Apps::new(rt, &hs);
    let rs_apps = Apps::new(rt, &rs);
    let es_apps = Apps::new(rt, &es);
    let ed_apps = Apps::new(rt, &ed);

    let mut groups = vec![
        valid_group("hs256_valid", &hs_apps, &hs),
        valid_group("rs256_valid", &rs_apps, &rs),
        valid_group("es256_valid", &es_apps, &es),
        valid_group("eddsa_valid", &ed_apps, &ed),
        first_seen_group("hs256_first_seen", &hs_apps, &hs),
        first_seen_group("rs256_first_seen", &rs_apps, &rs),
        first_seen_group("es256_first_seen", &es_apps, &es),
        first_seen_group("eddsa_first_seen", &ed_apps, &ed),
    ];
    let forged = mint(
        &EncodingKey::from_secret(b"another-secret"),
        Algorithm::HS256,
        KID,
        ISS,
        AUD,
        3600,
        "forged",
    );
    let flood: Vec<Option<String>> = (0..FLOOD_POOL)
        .map(|i| match i % 2 {
            0 => bearer(&format!("not-a-jwt-{i}")),
            _ => bearer(&hs.token(-3600, &format!("expired-{i}"))),
        })
        .collect();
    // The last field: whether the group has a `_logged` twin.
    for (name, apps, authorization, twin) in [
        ("hs256_missing", &hs_apps, vec![None], true),
        (
            "hs256_expired",
            &hs_apps,
            vec![bearer(&hs.token(-3600, "expired"))],
            true,
        ),
        ("hs256_garbage", &hs_apps, vec![bearer("not-a-jwt")], true),
        (
            "hs256_wrong_audience",
            &hs_apps,
            vec![bearer(&hs.token_for_other_audience())],
            false,
        ),
        ("hs256_bad_signature", &hs_apps, vec![bearer(&forged)], true),
        (
            "hs256_wrong_scheme",
            &hs_apps,
            vec![Some("Basic YWxpY2U6c2VjcmV0".to_owned())],
            true,
        ),
        (
            "es256_expired",
            &es_apps,
            vec![bearer(&es.token(-3600, "expired"))],
            true,
        ),
        ("es256_missing", &es_apps, vec![None], true),
        ("es256_garbage", &es_apps, vec![bearer("not-a-jwt")], false),
        (
            "es256_wrong_audience",
            &es_apps,
            vec![bearer(&es.token_for_other_audience())],
            false,
        ),
        ("flood_distinct_bad_tokens", &hs_apps, flood, true),
    ] {
        groups.extend(rejection_groups(name, apps, authorization, twin));
    }
    groups.push(config_scaling());
    groups
}

/// The JSON subscriber of the `_logged` groups, writing to `make_writer`.
fn json_subscriber<W>(make_writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_writer(make_writer)
        .finish()
}

/// A writer that counts what it is given.
struct CountingWriter(Arc<AtomicUsize>);

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len(), Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every line answers what it should, and a `_logged` group's subscriber does receive the
/// layer's events.
fn check(rt: &Runtime, groups: &[Group]) {
    for g in groups {
        for l in &g.lines {
            for _ in 0..2 {
                l.send(rt, l.next_request(), &g.name);
            }
        }
    }
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let subscriber = json_subscriber(move || CountingWriter(counter.clone()));
    let logged = groups.iter().find(|g| g.logged).unwrap();
    let every = logged
        .lines
        .iter()
        .find(|l| l.name == "auth_diagnostics_log_every_failure")
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        every.send(rt, every.next_request(), &logged.name)
    });
    assert!(
        written.load(Ordering::Relaxed) > 0,
        "the JSON subscriber received no event"
    );
}

/// Allocations and bytes per request of a line, over `ALLOC_REQUESTS` requests, and for
/// this crate's layer the share of them its token cache answered.
fn allocations(rt: &Runtime, group: &str, l: &Line) -> (f64, f64, Option<f64>) {
    for _ in 0..ALLOC_WARMUP {
        l.send(rt, l.next_request(), group);
    }
    let requests: Vec<Req> = (0..ALLOC_REQUESTS).map(|_| l.next_request()).collect();
    let stats = l.app.cache_stats();
    let (allocs, bytes) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        ALLOCATED_BYTES.load(Ordering::Relaxed),
    );
    for req in requests {
        l.send(rt, req, group);
    }
    let n = ALLOC_REQUESTS as f64;
    let (allocs, bytes) = (
        (ALLOCATIONS.load(Ordering::Relaxed) - allocs) as f64 / n,
        (ALLOCATED_BYTES.load(Ordering::Relaxed) - bytes) as f64 / n,
    );
    let hits = stats
        .zip(l.app.cache_stats())
        .map(|(before, after)| (after.hits - before.hits) as f64 / n);
    (allocs, bytes, hits)
}

/// The allocation table: a row per group, a column per line.
fn allocation_table(rt: &Runtime, groups: &[Group]) {
    let columns = [
        ("baseline", "baseline"),
        ("auth_diagnostics", "auth_diagnostics"),
        ("auth_diagnostics_repeated", "auth_diagnostics"),
        ("auth_diagnostics_no_cache", "ad_no_cache"),
        ("auth_diagnostics_log_every_failure", "ad_log_every_failure"),
        ("jwt_authorizer", "jwt_authorizer"),
        ("tower_oauth2_resource_server", "tower_oauth2"),
        ("oauth_resource_server", "oauth_rs"),
    ];
    let mut heads: Vec<&str> = Vec::new();
    for (_, head) in columns {
        if !heads.contains(&head) {
            heads.push(head);
        }
    }
    println!(
        "\nAllocations per request (bytes allocated per request; for this crate's layer, \
         the share answered by its token cache), {ALLOC_REQUESTS} requests after \
         {ALLOC_WARMUP} of warm-up:\n"
    );
    print!("| {:<32} |", "group");
    for head in &heads {
        print!(" {head:>22} |");
    }
    println!();
    print!("|{}|", "-".repeat(34));
    for _ in &heads {
        print!("{}|", "-".repeat(24));
    }
    println!();
    for g in groups.iter().filter(|g| g.name != "config_scaling") {
        let _guard = g
            .logged
            .then(|| tracing::subscriber::set_default(json_subscriber(std::io::sink)));
        let mut cells = vec![String::from("-"); heads.len()];
        for l in &g.lines {
            let (_, head) = columns.iter().find(|(name, _)| *name == l.name).unwrap();
            let at = heads.iter().position(|h| h == head).unwrap();
            let (allocs, bytes, hits) = allocations(rt, &g.name, l);
            cells[at] = match hits {
                Some(hits) => format!("{allocs:.1} ({bytes:.0} B) {:.0}%", hits * 100.0),
                None => format!("{allocs:.1} ({bytes:.0} B)"),
            };
        }
        print!("| {:<32} |", g.name);
        for cell in cells {
            print!(" {cell:>22} |");
        }
        println!();
    }
    println!();
}

fn bench(c: &mut Criterion<ThreadCpu>, rt: &Runtime, groups: &[Group]) {
    for g in groups {
        let _guard = g
            .logged
            .then(|| tracing::subscriber::set_default(json_subscriber(std::io::sink)));
        let mut group = c.benchmark_group(&g.name);
        for l in &g.lines {
            group.bench_function(&l.name, |b| {
                b.iter_batched(
                    || l.next_request(),
                    |req| l.send(rt, req, &g.name),
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }
}

/// The peers a line of this crate's layer is compared with.
const PEERS: [&str; 3] = [
    "jwt_authorizer",
    "tower_oauth2_resource_server",
    "oauth_resource_server",
];

/// A row of the ratio table: the case, the group and line of this crate's layer that
/// measure it (the peers are the same group's peer lines), and the goal of the ratio.
const CASES: [(&str, &str, &str, f64); 14] = [
    ("no token", "es256_missing", "auth_diagnostics", 1.0),
    ("garbage token", "es256_garbage", "auth_diagnostics", 1.0),
    ("expired HS256", "hs256_expired", "auth_diagnostics", 1.0),
    ("expired ES256", "es256_expired", "auth_diagnostics", 1.0),
    (
        "wrong audience HS256",
        "hs256_wrong_audience",
        "auth_diagnostics",
        1.0,
    ),
    (
        "wrong audience ES256",
        "es256_wrong_audience",
        "auth_diagnostics",
        1.0,
    ),
    (
        "first-seen HS256, cache on",
        "hs256_first_seen",
        "auth_diagnostics",
        1.0,
    ),
    (
        "first-seen HS256, cache off",
        "hs256_first_seen",
        "auth_diagnostics_no_cache",
        1.0,
    ),
    (
        "first-seen ES256, cache on",
        "es256_first_seen",
        "auth_diagnostics",
        1.0,
    ),
    (
        "first-seen ES256, cache off",
        "es256_first_seen",
        "auth_diagnostics_no_cache",
        1.0,
    ),
    (
        "repeated HS256, cache on",
        "hs256_valid",
        "auth_diagnostics_repeated",
        0.5,
    ),
    (
        "repeated HS256, cache off",
        "hs256_valid",
        "auth_diagnostics_no_cache",
        1.0,
    ),
    (
        "repeated ES256, cache on",
        "es256_valid",
        "auth_diagnostics_repeated",
        0.05,
    ),
    (
        "repeated ES256, cache off",
        "es256_valid",
        "auth_diagnostics_no_cache",
        1.0,
    ),
];

/// The ratio table: for every case, this crate's layer's mean over the fastest peer's in
/// the same group, both measured in this run.
fn ratio_table(since: SystemTime) {
    println!("\nours ÷ fastest peer (criterion's mean CPU time per request, this run):\n");
    println!(
        "| {:<28} | {:>10} | {:<44} | {:>7} | {:>6} | {:>10} |",
        "case", "ours (µs)", "fastest peer (µs)", "ratio", "goal", "÷ baseline"
    );
    println!(
        "|{}|{}|{}|{}|{}|{}|",
        "-".repeat(30),
        "-".repeat(12),
        "-".repeat(46),
        "-".repeat(9),
        "-".repeat(8),
        "-".repeat(12)
    );
    for (case, group, ours, goal) in CASES {
        let Some(ours) = mean_ns(group, ours, since) else {
            continue;
        };
        let fastest = PEERS
            .iter()
            .filter_map(|peer| Some((*peer, mean_ns(group, peer, since)?)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let baseline = mean_ns(group, "baseline", since);
        let (peer, ratio) = match fastest {
            Some((peer, ns)) => (
                format!("{peer} {:.2}", ns / 1000.0),
                format!("{:.2}", ours / ns),
            ),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let over_baseline = baseline.map_or("-".to_owned(), |b| format!("{:.2}", ours / b));
        println!(
            "| {case:<28} | {:>10.2} | {peer:<44} | {ratio:>7} | {:>6} | {over_baseline:>10} |",
            ours / 1000.0,
            format!("≤ {goal}"),
        );
    }
    println!();
}

fn main() {
    auth_diagnostics::keys::install_crypto_provider();
    let started = SystemTime::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let groups = groups(&rt);
    check(&rt, &groups);
    allocation_table(&rt, &groups);
    let mut c = Criterion::default()
        .with_measurement(ThreadCpu(WallTime))
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    bench(&mut c, &rt, &groups);
    c.final_summary();
    ratio_table(started);
}
