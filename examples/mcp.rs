//! An MCP server (the `rmcp` crate's streamable HTTP transport) protected the way the MCP
//! authorization spec asks: a 401 whose `WWW-Authenticate` names the RFC 9728 metadata
//! document, that document unauthenticated, tokens accepted only for this server (their
//! `aud` is its `/mcp` URL) and only with scope `mcp:tools` (403 `insufficient_scope`
//! otherwise).
//!
//! ```text
//! cd interop && npm ci && cd ..
//! node interop/oidc-provider.mjs --port 4000 &        # or any OpenID provider
//! MCP_ISSUER=http://127.0.0.1:4000 cargo run --example mcp
//! curl -i http://127.0.0.1:3001/mcp                   # 401, resource_metadata="…"
//! curl -s http://127.0.0.1:3001/.well-known/oauth-protected-resource/mcp
//! node interop/mcp-client.mjs http://127.0.0.1:3001/mcp   # the official MCP client SDK
//! ```
//!
//! Environment:
//! - `MCP_ISSUER` (required): the authorization server. Its keys are found by OpenID
//!   discovery (plain `http` only to loopback hosts); it is the metadata's one
//!   `authorization_servers` entry and the only issuer accepted.
//! - `MCP_ADDR` (`127.0.0.1:3001`; `127.0.0.1:0` picks a free port): where to listen. The
//!   resource identifier, and so the audience every token must have, is
//!   `http://ADDR/mcp` with ADDR as bound.
//! - `MCP_DETAIL` (`production` or `verbose`): how much the problem bodies tell.
//! - `MCP_INTROSPECTION_URL`: opaque tokens too, introspected there (RFC 7662) as client
//!   `MCP_INTROSPECTION_CLIENT_ID` / `MCP_INTROSPECTION_CLIENT_SECRET` (`mcp-rs` /
//!   `mcp-rs-secret`, `client_secret_basic`); JWTs of the issuer are still verified here.
//! - `MCP_DPOP_NONCE=1`: every DPoP proof must carry a server nonce (RFC 9449 §9), usable
//!   for 5 minutes; a proof without one gets 401 `use_dpop_nonce` and a `DPoP-Nonce`.
//! - `RUST_LOG` (`info`): the log filter. Logs go to stderr.
//!
//! Once bound it prints one line to stdout, `listening on http://ADDR`, and nothing else.
//!
//! The tool `add` sums two numbers and names its caller: the token's `sub`, from the
//! [`Principal`](auth_diagnostics::Principal) the layer put in the request's extensions,
//! which rmcp hands the tool as the request's [`http::request::Parts`]. The tool
//! `admin-action` also needs scope `mcp:admin`: the library's per-tool policy
//! ([`McpScopes`]) reads the call (the `Mcp-Method` and `Mcp-Name` headers, and the
//! JSON-RPC body, handed on to rmcp byte for byte); its 403 names
//! `scope="mcp:tools mcp:admin"`, every scope the call needs, so a client that asks for
//! exactly that scope gets a token that works.
//!
//! `POST /mcp` takes DPoP-bound tokens (RFC 9449) beside Bearer ones: `Authorization: DPoP`
//! with a proof whose `htu` names `http://ADDR/mcp` (ADDR as bound, whatever `Host` says).
//! A Bearer token is accepted unless it is bound to a key. The metadata document says so
//! (`dpop_signing_alg_values_supported`, `dpop_bound_access_tokens_required: false`).
//!
//! Everything else it serves is the fixture of the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`, pinned in `interop/conformance/`), named and
//! answering as the suite's reference server: tools such as `test_simple_text`,
//! `test_tool_with_progress`, `test_sampling` and `test_elicitation`, resources, a template,
//! subscriptions, prompts, the logging level and completion ([`Fixture`],
//! `examples/mcp/fixture.rs`). tests/mcp_conformance.rs runs the suite against it.

use auth_diagnostics::authz::{McpScopes, ResourceMetadata};
use auth_diagnostics::dpop::Dpop;
use auth_diagnostics::introspection::Introspector;
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::{Algorithm, KeySource};
use auth_diagnostics::layer::DetailMode;
use auth_diagnostics::AuthDiagnostics;
use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;
use std::time::Duration;

#[path = "mcp/fixture.rs"]
mod fixture;
pub use fixture::Fixture;

/// The scope every request to `/mcp` needs.
pub const SCOPE: &str = "mcp:tools";

/// The tool that needs more than [`SCOPE`].
pub const ADMIN_TOOL: &str = "admin-action";

/// The scope [`ADMIN_TOOL`] needs on top of [`SCOPE`].
pub const ADMIN_SCOPE: &str = "mcp:admin";

/// The algorithms DPoP proofs may be signed with (the layer's default pair, named here so
/// the metadata document says the same).
const DPOP_ALGS: [Algorithm; 2] = [Algorithm::ES256, Algorithm::PS256];

/// How long a DPoP nonce stays usable (with `MCP_DPOP_NONCE=1`).
const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// The server's settings: `MCP_*` variables, and the resource once the address is bound.
#[derive(Debug, Clone)]
pub struct McpConfig {
    /// The authorization server's issuer URL: its keys verify the tokens.
    pub issuer: String,
    /// The resource identifier, `http://ADDR/mcp`: the tokens' audience and the metadata's
    /// `resource`.
    pub resource: String,
    /// How much the problem bodies tell the client.
    pub detail: DetailMode,
}

/// What the server takes besides Bearer JWTs (`cargo run --example mcp` turns DPoP on).
#[derive(Debug, Clone, Default)]
pub struct McpOptions {
    /// Opaque tokens too, introspected (RFC 7662) here: `MCP_INTROSPECTION_URL`.
    pub introspection: Option<IntrospectionConfig>,
    /// DPoP-bound tokens (RFC 9449) too, proofs naming the resource's origin.
    pub dpop: bool,
    /// Every DPoP proof must carry a server nonce (`MCP_DPOP_NONCE=1`).
    pub dpop_nonce: bool,
    /// The conformance suite's fixture beside `add` and `admin-action` ([`Fixture`]).
    pub conformance_fixture: bool,
}

/// The introspection endpoint and this server's client at it.
#[derive(Debug, Clone)]
pub struct IntrospectionConfig {
    /// `MCP_INTROSPECTION_URL`.
    pub url: String,
    /// `MCP_INTROSPECTION_CLIENT_ID` (`mcp-rs`).
    pub client_id: String,
    /// `MCP_INTROSPECTION_CLIENT_SECRET` (`mcp-rs-secret`).
    pub client_secret: String,
}

impl McpOptions {
    /// From `MCP_INTROSPECTION_URL`, `MCP_INTROSPECTION_CLIENT_ID`,
    /// `MCP_INTROSPECTION_CLIENT_SECRET` and `MCP_DPOP_NONCE`; DPoP and the conformance
    /// fixture on.
    #[allow(dead_code)] // `main`'s; the tests that compile this file in build their own.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            introspection: var("MCP_INTROSPECTION_URL").map(|url| IntrospectionConfig {
                url,
                client_id: var("MCP_INTROSPECTION_CLIENT_ID").unwrap_or_else(|| "mcp-rs".into()),
                client_secret: var("MCP_INTROSPECTION_CLIENT_SECRET")
                    .unwrap_or_else(|| "mcp-rs-secret".into()),
            }),
            dpop: true,
            dpop_nonce: var("MCP_DPOP_NONCE").is_some_and(|v| v == "1" || v == "true"),
            conformance_fixture: true,
        }
    }
}

/// The MCP endpoint at `/mcp` behind the layer (Bearer JWTs only, the tools `add` and
/// `admin-action` only), and the metadata document beside it: [`app_with`] without options.
///
/// # Panics
/// As [`app_with`].
#[allow(dead_code)] // tests/mcp.rs's.
pub fn app(cfg: &McpConfig) -> Router {
    app_with(cfg, &McpOptions::default())
}

/// The MCP endpoint at `/mcp` behind the layer, and the metadata document beside it.
///
/// Call it inside a Tokio runtime: the layer starts fetching the issuer's keys at once.
/// rmcp answers only requests whose `Host` is the resource's authority (its guard against
/// DNS rebinding), so clients use the resource URL as it is spelled.
///
/// # Panics
/// When `cfg.resource` is not an absolute URL, or the layer refuses the configuration (a
/// plain `http` issuer or resource off loopback).
pub fn app_with(cfg: &McpConfig, options: &McpOptions) -> Router {
    let uri = cfg
        .resource
        .parse::<http::Uri>()
        .ok()
        .filter(|u| u.scheme().is_some() && u.authority().is_some())
        .expect("the resource is an absolute URL");
    let authority = uri.authority().expect("checked").to_string();
    let origin = format!("{}://{authority}", uri.scheme_str().expect("checked"));

    // Every request needs mcp:tools; a call of admin-action needs mcp:admin too.
    let policy = McpScopes::new()
        .always([SCOPE])
        .tool(ADMIN_TOOL, [ADMIN_SCOPE]);
    let mut meta = ResourceMetadata::new(&cfg.resource)
        .authorization_servers([cfg.issuer.as_str()])
        .scopes_supported(policy.scopes())
        .resource_name("auth-diagnostics MCP example");
    let jwt =
        JwtAuthenticator::from_source(KeySource::discover(&cfg.issuer)).audience(&cfg.resource);
    let introspector = options.introspection.as_ref().map(|i| {
        Introspector::new(&i.url)
            .client_secret_basic(&i.client_id, &i.client_secret)
            .issuer(&cfg.issuer)
            .audience(&cfg.resource)
    });
    let mut auth = AuthDiagnostics::new()
        .realm("mcp")
        .detail_mode(cfg.detail)
        .bearer(jwt.clone());
    if let Some(introspector) = &introspector {
        auth = auth.introspection(introspector.clone());
    }
    if options.dpop {
        // Proofs name the origin this server is reached at, never what `Host` says.
        let mut dpop = Dpop::new(jwt).public_origin(&origin).algorithms(DPOP_ALGS);
        if let Some(introspector) = introspector {
            dpop = dpop.introspection(introspector);
        }
        if options.dpop_nonce {
            dpop = dpop.require_nonce(NONCE_LIFETIME);
        }
        auth = auth.dpop(dpop);
        // Bearer tokens are still taken (unless bound to a key): binding is not required.
        meta = meta
            .dpop_signing_alg_values_supported(DPOP_ALGS)
            .dpop_bound_access_tokens_required(false);
    }
    let auth = auth.resource_metadata(meta.clone()).require_scope([SCOPE]);

    let conformance = options.conformance_fixture;
    let mcp = StreamableHttpService::new(
        move || {
            Ok(if conformance {
                Fixture::conformance()
            } else {
                Fixture::new()
            })
        },
        Arc::new(LocalSessionManager::default()),
        // rmcp checks `Host` against DNS rebinding: this resource's authority only.
        StreamableHttpServerConfig::default().with_allowed_hosts([authority]),
    );

    Router::new()
        .nest_service("/mcp", mcp)
        // Inside the layer: the principal is known, and the 403 names every scope the call
        // needs (the layer's and the tool's) with the layer's resource_metadata.
        .route_layer(policy)
        .layer(auth)
        // Outside the layer: the metadata is public (RFC 9728 §3).
        .merge(meta.router())
}

#[allow(dead_code)]
#[tokio::main]
async fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let Some(issuer) = std::env::var("MCP_ISSUER").ok().filter(|v| !v.is_empty()) else {
        eprintln!("MCP_ISSUER is required: the OpenID issuer whose access tokens this server takes (e.g. http://127.0.0.1:4000 from `node interop/oidc-provider.mjs --port 4000`)");
        std::process::exit(2);
    };
    let addr = std::env::var("MCP_ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let detail = match std::env::var("MCP_DETAIL").as_deref() {
        Ok(v) if v.eq_ignore_ascii_case("verbose") => DetailMode::Verbose,
        _ => DetailMode::Production,
    };
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let bound = listener
        .local_addr()
        .expect("a bound socket has an address");
    let cfg = McpConfig {
        issuer,
        resource: format!("http://{bound}/mcp"),
        detail,
    };
    let app = app_with(&cfg, &McpOptions::from_env());
    println!("listening on http://{bound}");
    axum::serve(listener, app).await.expect("server error");
}
