//! The gRPC example: a tonic server behind the layer, serving the standard health service
//! `grpc.health.v1.Health` (every service name reports `SERVING`).
//!
//! ```text
//! cargo run --example grpc
//! TOKEN=$(cargo run -q --example mint -- --sub alice --scope admin)
//! grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{"service": "orders"}' \
//!     -import-path proto -proto grpc/health/v1/health.proto \
//!     127.0.0.1:50051 grpc.health.v1.Health/Check
//! ```
//!
//! Tokens as for the demo's `/me`: HS256 with `DEMO_JWT_SECRET`, issued by `DEMO_ISSUER`
//! (else `DEMO_OIDC_ISSUER`) for `DEMO_AUDIENCE`, with the demo's defaults (`cargo run
//! --example mint` makes them), sent in the `authorization` metadata. `Health/Check` needs
//! a valid token; `Health/Watch` also needs scope `admin`. A refusal is a trailers-only
//! gRPC answer: `UNAUTHENTICATED` for a 401 reason, `PERMISSION_DENIED` for a 403,
//! `UNAVAILABLE` for a 503, `RESOURCE_EXHAUSTED` for a 429, the reason code at the start
//! of `grpc-message`.
//!
//! Environment: `GRPC_ADDR` (`127.0.0.1:50051`; `:0` or port 0 picks a free port),
//! `DEMO_LOG_FORMAT` (`pretty` or `json`), `DEMO_DETAIL` (`verbose` or `production`), and
//! the token settings above. Once bound it prints `listening on http://ADDR`.

use auth_diagnostics::authz::RequireScope;
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::StaticKey;
use auth_diagnostics::layer::{DetailMode, OneLine};
use auth_diagnostics::AuthDiagnostics;
use serde_json::json;
use std::pin::Pin;
use std::time::Duration;
use tonic::codegen::tokio_stream::{self, Stream, StreamExt};
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tower_layer::Layer;

/// The method that needs scope [`ADMIN_SCOPE`] besides a valid token.
pub const WATCH: &str = "/grpc.health.v1.Health/Watch";
/// The scope `Health/Watch` needs.
pub const ADMIN_SCOPE: &str = "admin";

/// The example's settings, from the environment.
#[derive(Clone, Debug)]
pub struct GrpcConfig {
    pub addr: String,
    pub json_logs: bool,
    pub detail: DetailMode,
    pub jwt_secret: String,
    pub issuer: String,
    pub audience: String,
}

impl GrpcConfig {
    pub fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        let set = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            // `:PORT` is on loopback; port 0 picks a free one.
            addr: match var("GRPC_ADDR", "127.0.0.1:50051") {
                a if a.starts_with(':') => format!("127.0.0.1{a}"),
                a => a,
            },
            json_logs: var("DEMO_LOG_FORMAT", "pretty").eq_ignore_ascii_case("json"),
            detail: if var("DEMO_DETAIL", "verbose").eq_ignore_ascii_case("production") {
                DetailMode::Production
            } else {
                DetailMode::Verbose
            },
            jwt_secret: var("DEMO_JWT_SECRET", "demo-hs256-secret"),
            // The demo's issuer: DEMO_ISSUER, else DEMO_OIDC_ISSUER, else its default.
            issuer: set("DEMO_ISSUER")
                .or_else(|| set("DEMO_OIDC_ISSUER"))
                .unwrap_or_else(|| "https://issuer.demo.local".into()),
            audience: var("DEMO_AUDIENCE", "demo-api"),
        }
    }
}

/// The health service, reporting every service name as `SERVING`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllServing;

fn serving() -> HealthCheckResponse {
    HealthCheckResponse {
        status: ServingStatus::Serving as i32,
    }
}

#[tonic::async_trait]
impl Health for AllServing {
    async fn check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(serving()))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

    /// `SERVING` once, then nothing: the status never changes.
    async fn watch(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let stream = tokio_stream::once(Ok(serving())).chain(tokio_stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }
}

/// The layer: the demo's HS256 tokens in the `authorization` metadata.
pub fn layer(cfg: &GrpcConfig) -> AuthDiagnostics {
    let secret = StaticKey::hs256(&cfg.jwt_secret).with_issuer(&cfg.issuer);
    let jwt = JwtAuthenticator::new(secret)
        .issuer(&cfg.issuer)
        .audience(&cfg.audience)
        .require_claims(["sub"])
        .leeway(Duration::from_secs(30));
    AuthDiagnostics::new()
        .realm("demo")
        .detail_mode(cfg.detail)
        .bearer(jwt)
}

/// The services: `Health/Watch` behind `RequireScope` (a gRPC method is a path), every
/// other method as the health service answers it.
pub fn routes() -> Routes {
    let health = HealthServer::new(AllServing);
    let router = axum::Router::new()
        .route_service(
            WATCH,
            RequireScope::new([ADMIN_SCOPE]).layer(health.clone()),
        )
        .fallback_service(health);
    Routes::from(router)
}

/// Serves the example on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: &GrpcConfig,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .layer(layer(cfg))
        .add_routes(routes())
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await
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
    let cfg = GrpcConfig::from_env();
    init_logs(cfg.json_logs);
    let listener = match tokio::net::TcpListener::bind(&cfg.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", cfg.addr);
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().expect("bound socket has an address");
    let line = format!("listening on http://{addr}");
    // In JSON mode a JSON object, like every other line on stdout.
    if cfg.json_logs {
        println!(
            "{}",
            json!({ "level": "INFO", "target": "grpc", "message": line })
        );
    } else {
        println!("{line}");
    }
    if let Err(e) = serve(listener, &cfg).await {
        eprintln!("server error: {e}");
        std::process::exit(1);
    }
}
