//! The demo server: every feature of auth-diagnostics on real HTTP.
//!
//! ```text
//! cargo run --example demo
//! TOKEN=$(cargo run -q --example mint -- --sub alice --scope admin)
//! curl -i localhost:3000/me -H "Authorization: Bearer $TOKEN"
//! ```
//!
//! Environment: `DEMO_ADDR` (127.0.0.1:3000), `DEMO_LOG_FORMAT` (`pretty`, one line per
//! event that leads with the reason code and the fix, or `json`), `DEMO_DETAIL` (`verbose`
//! or `production`), `DEMO_JWT_SECRET`, `DEMO_ISSUER`, `DEMO_AUDIENCE`, `DEMO_JWKS_URL` (a
//! JWK set whose RS256, ES256 and EdDSA keys verify tokens too), `DEMO_OIDC_ISSUER` (keys
//! through that issuer's discovery document), `DEMO_METRICS` (`1`: the layer's metrics in
//! the Prometheus text format at `GET /metrics`).

use auth_diagnostics::{
    AccountStatus, ApiKey, ApiKeyAuthenticator, AuthDiagnostics, AuthFailure, AuthResult,
    BasicAuthenticator, BasicCredentials, Claims, DetailMode, Dpop, JwtAuthenticator, KeySource,
    OneLine, Principal, Reason, RequireScope, RequireStepUp, ResourceMetadata,
    SessionAuthenticator, SessionCookie, StaticKey,
};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;

/// The demo's settings, read from `DEMO_*` variables.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub addr: String,
    pub json_logs: bool,
    pub detail: DetailMode,
    pub jwt_secret: String,
    pub issuer: String,
    pub audience: String,
    /// A JWK set whose keys verify tokens beside the HS256 secret.
    pub jwks_url: Option<String>,
    /// An issuer whose discovery document names the JWK set.
    pub oidc_issuer: Option<String>,
    /// Serve the layer's metrics at `GET /metrics` (Prometheus text format).
    pub metrics: bool,
}

impl DemoConfig {
    pub fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        let set = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let oidc_issuer = set("DEMO_OIDC_ISSUER");
        let issuer = set("DEMO_ISSUER")
            .or_else(|| oidc_issuer.clone())
            .unwrap_or_else(|| "https://issuer.demo.local".into());
        Self {
            addr: var("DEMO_ADDR", "127.0.0.1:3000"),
            json_logs: var("DEMO_LOG_FORMAT", "pretty").eq_ignore_ascii_case("json"),
            detail: if var("DEMO_DETAIL", "verbose").eq_ignore_ascii_case("production") {
                DetailMode::Production
            } else {
                DetailMode::Verbose
            },
            jwt_secret: var("DEMO_JWT_SECRET", "demo-hs256-secret"),
            issuer,
            audience: var("DEMO_AUDIENCE", "demo-api"),
            jwks_url: set("DEMO_JWKS_URL"),
            oidc_issuer,
            metrics: set("DEMO_METRICS")
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
        }
    }
}

/// The demo's router, as `main` serves it. `cfg.addr` is the address as bound: the MCP
/// resource identifier is `http://ADDR/mcp`.
pub fn app(cfg: &DemoConfig) -> Router {
    // The secret belongs to the demo's issuer (which may differ from DEMO_OIDC_ISSUER's).
    let secret = StaticKey::hs256(&cfg.jwt_secret).with_issuer(&cfg.issuer);
    let mut jwt = JwtAuthenticator::new(secret)
        .issuer(&cfg.issuer)
        .audience(&cfg.audience)
        .require_claims(["sub"])
        .leeway(Duration::from_secs(30));
    // An identity provider's keys beside the secret: fetched in the background, refreshed
    // on rotation; the issuer and audience stay the demo's.
    if let Some(url) = &cfg.jwks_url {
        jwt = jwt.key_source(KeySource::jwks(url));
    }
    if let Some(issuer) = &cfg.oidc_issuer {
        jwt = jwt.key_source(KeySource::discover(issuer));
    }
    let base = AuthDiagnostics::new()
        .realm("demo")
        .detail_mode(cfg.detail)
        // The demo's 403s to anonymous requests always mean "who are you?" (/legacy-forbidden).
        .correct_forbidden_without_credentials();

    // Each scheme's layer wraps its routes only (`route_layer`): with `layer` it would wrap
    // the router's fallback too, and the last one merged would answer every unknown path
    // with its challenge instead of 404.
    let bearer = Router::new()
        .route("/me", get(me))
        .route("/orders", get(orders))
        .route(
            "/admin",
            get(admin).route_layer(RequireScope::new(["admin"])),
        )
        // RFC 9470: a valid token is not enough here; the login must be MFA, and recent.
        .route(
            "/stepup",
            get(hello).route_layer(
                RequireStepUp::new()
                    .acr_values(["urn:demo:mfa"])
                    .max_age(Duration::from_secs(300)),
            ),
        )
        .route_layer(base.clone().bearer(jwt.clone()));
    // RFC 9728 + MCP: every challenge points at the metadata document, which names the
    // authorization server; a 401 says which scope to ask for.
    let meta = ResourceMetadata::new(format!("http://{}/mcp", cfg.addr))
        .authorization_servers([cfg.issuer.as_str()])
        .scopes_supported(["mcp:tools"])
        .resource_name("auth-diagnostics demo MCP resource")
        // A demo may listen on any address; production identifiers are https.
        .allow_http();
    let mcp = Router::new().route("/mcp", get(hello)).route_layer(
        base.clone()
            .bearer(jwt.clone())
            .resource_metadata(meta.clone())
            .require_scope(["mcp:tools"]),
    );
    // RFC 9449: sender-constrained tokens, each request with its own proof.
    let dpop = Router::new()
        .route("/dpop", get(hello))
        .route_layer(base.clone().dpop(Dpop::new(jwt.clone())));
    let basic = Router::new().route("/basic", get(hello)).route_layer(
        base.clone()
            .basic(BasicAuthenticator::new(check_password))
            .account_status(account),
    );
    let key = Router::new()
        .route("/key", get(hello))
        .route_layer(base.clone().api_key(ApiKeyAuthenticator::new(check_key)));
    let session = Router::new().route("/session", get(hello)).route_layer(
        base.clone()
            .session(SessionAuthenticator::new("demo_session", check_session)),
    );
    let any = Router::new().route("/any", get(hello)).route_layer(
        base.clone()
            .bearer(jwt)
            .basic(BasicAuthenticator::new(check_password))
            .account_status(account),
    );

    // Scraped without credentials, like /public; there only when DEMO_METRICS asks for it.
    let mut metrics = Router::new();
    if cfg.metrics {
        let handle = prometheus();
        metrics = metrics.route(
            "/metrics",
            get(move || async move { ([(CONTENT_TYPE, PROMETHEUS_TEXT)], handle.render()) }),
        );
    }

    Router::new()
        .route("/public", get(|| async { Json(json!({ "public": true })) }))
        .route("/legacy", get(legacy))
        .route("/legacy-forbidden", get(legacy_forbidden))
        .merge(metrics)
        .merge(bearer)
        .merge(basic)
        .merge(key)
        .merge(session)
        .merge(any)
        .merge(mcp)
        .merge(meta.router())
        .merge(dpop)
        // Outermost, with no scheme: request ids for every route, and it watches (and in
        // enforce mode corrects) what the routes answer by themselves.
        .layer(base)
}

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The process's Prometheus recorder, installed on first use: a `metrics` recorder is
/// global, and the tests build the app several times in one process.
fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Buckets (seconds) make the verification time a histogram rather than a summary.
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("auth_diagnostics_verification_duration_seconds".into()),
                &[
                    0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
                ],
            )
            .expect("the bucket list is not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        auth_diagnostics::describe_metrics();
        // Without the exporter's own HTTP listener nothing drains the histograms between
        // scrapes: do it here, so samples do not pile up when nobody scrapes.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            })
            .expect("spawn the metrics upkeep thread");
        handle
    })
}

async fn me(principal: Principal, Claims(claims): Claims<Value>) -> Json<Value> {
    Json(json!({
        "sub": principal.id(),
        "scopes": principal.scopes().collect::<Vec<_>>(),
        "claims": claims,
    }))
}

async fn admin(principal: Principal) -> Json<Value> {
    Json(json!({ "sub": principal.id(), "admin": true }))
}

/// Refuses a revoked token itself (401 `invalid_token`, which the layer keeps), and
/// wrongly answers 401 to a valid token without scope `orders` (it means 403).
async fn orders(principal: Principal) -> Response {
    let jti = principal
        .claims()
        .and_then(|c| c.get("jti"))
        .and_then(Value::as_str);
    if jti == Some("revoked") {
        return (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)],
        )
            .into_response();
    }
    if principal.has_scope("orders") {
        Json(json!({ "orders": [], "sub": principal.id() })).into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(CONTENT_TYPE, "application/problem+json")],
            r#"{"status":401,"title":"Unauthorized"}"#,
        )
            .into_response()
    }
}

/// A hand-written check that answers a bare 401, without a challenge.
async fn legacy(headers: HeaderMap) -> Response {
    let ok = headers
        .get(AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == b"Bearer legacy-token");
    if ok {
        Json(json!({ "legacy": true })).into_response()
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

/// Wrongly answers 403 to requests that carry no credentials at all (it means 401).
async fn legacy_forbidden(headers: HeaderMap) -> Response {
    if headers.contains_key(AUTHORIZATION) {
        Json(json!({ "legacy_forbidden": true })).into_response()
    } else {
        StatusCode::FORBIDDEN.into_response()
    }
}

async fn hello(principal: Principal) -> Json<Value> {
    Json(json!({ "id": principal.id(), "scheme": principal.scheme() }))
}

/// The demo's user store. A real one compares password hashes (argon2, bcrypt) and, for
/// an unknown user, still checks one dummy hash so both failures take the same time.
async fn check_password(c: BasicCredentials) -> AuthResult {
    let stored = match c.user.as_str() {
        "alice" => "wonderland",
        "mallory" => "mallory-pass",
        _ => return Err(AuthFailure::new(Reason::BasicUserUnknown)),
    };
    if c.password.ct_eq(stored) {
        Ok(Principal::new(c.user))
    } else {
        Err(AuthFailure::new(Reason::BasicPasswordMismatch))
    }
}

fn account(p: &Principal) -> std::future::Ready<Result<AccountStatus, AuthFailure>> {
    let status = if p.id() == Some("mallory") {
        AccountStatus::Disabled
    } else {
        AccountStatus::Active
    };
    std::future::ready(Ok(status))
}

async fn check_key(ApiKey(key): ApiKey) -> AuthResult {
    if key.ct_eq("demo-key-123") {
        Ok(Principal::new("demo-key-owner"))
    } else if key.ct_eq("demo-key-revoked") {
        Err(AuthFailure::new(Reason::ApiKeyRevoked).detail("the key was revoked"))
    } else {
        Err(AuthFailure::new(Reason::ApiKeyUnknown))
    }
}

async fn check_session(SessionCookie(id): SessionCookie) -> AuthResult {
    if id.ct_eq("s-valid") {
        Ok(Principal::new("alice"))
    } else if id.ct_eq("s-expired") {
        Err(AuthFailure::new(Reason::SessionExpired).detail("the session expired"))
    } else {
        Err(AuthFailure::new(Reason::SessionInvalid))
    }
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.event_format(OneLine::default()).init();
    }
}

#[allow(dead_code)]
#[tokio::main]
async fn main() {
    let cfg = DemoConfig::from_env();
    init_logs(cfg.json_logs);
    let listener = match tokio::net::TcpListener::bind(&cfg.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", cfg.addr);
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().expect("bound socket has an address");
    let cfg = DemoConfig {
        addr: addr.to_string(),
        ..cfg
    };
    let app = app(&cfg);
    let started = format!(
        "auth-diagnostics demo listening on http://{addr} (detail: {:?})",
        cfg.detail
    );
    if cfg.json_logs {
        // Every stdout line is a JSON object in this mode, the start-up line too.
        println!(
            "{}",
            json!({ "level": "INFO", "target": "demo", "message": started })
        );
    } else {
        println!("{started}");
    }
    axum::serve(listener, app).await.expect("server error");
}
