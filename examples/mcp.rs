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
//! - `RUST_LOG` (`info`): the log filter. Logs go to stderr.
//!
//! Once bound it prints one line to stdout, `listening on http://ADDR`, and nothing else.
//!
//! The tool `add` sums two numbers and names its caller: the token's `sub`, from the
//! [`Principal`] the layer put in the request's extensions, which rmcp hands the tool
//! as the request's [`http::request::Parts`]. The tool `admin-action` also needs scope
//! `mcp:admin`: a small middleware of this example ([`tool_scopes`]) reads the JSON-RPC
//! call and asks [`RequireScope`]; its 403 names `scope="mcp:tools mcp:admin"`, every scope
//! the call needs, so a client that asks for exactly that scope gets a token that works.

use auth_diagnostics::authz::{RequireScope, ResourceMetadata};
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::KeySource;
use auth_diagnostics::layer::DetailMode;
use auth_diagnostics::{AuthDiagnostics, Principal};
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{json, Value};
use std::sync::Arc;

/// The scope every request to `/mcp` needs.
pub const SCOPE: &str = "mcp:tools";

/// The tool that needs more than [`SCOPE`].
pub const ADMIN_TOOL: &str = "admin-action";

/// The scope [`ADMIN_TOOL`] needs on top of [`SCOPE`].
pub const ADMIN_SCOPE: &str = "mcp:admin";

/// The largest JSON-RPC body read to find the tool a request calls.
const MAX_BODY: usize = 1024 * 1024;

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

/// The MCP endpoint at `/mcp` behind the layer, and the metadata document beside it.
///
/// Call it inside a Tokio runtime: the layer starts fetching the issuer's keys at once.
/// rmcp answers only requests whose `Host` is the resource's authority (its guard against
/// DNS rebinding), so clients use the resource URL as it is spelled.
///
/// # Panics
/// When `cfg.resource` is not an absolute URL, or the layer refuses the configuration (a
/// plain `http` issuer or resource off loopback).
pub fn app(cfg: &McpConfig) -> Router {
    let meta = ResourceMetadata::new(&cfg.resource)
        .authorization_servers([cfg.issuer.as_str()])
        .scopes_supported([SCOPE, ADMIN_SCOPE])
        .resource_name("auth-diagnostics MCP example");
    let jwt =
        JwtAuthenticator::from_source(KeySource::discover(&cfg.issuer)).audience(&cfg.resource);
    let auth = AuthDiagnostics::new()
        .realm("mcp")
        .detail_mode(cfg.detail)
        .bearer(jwt)
        .resource_metadata(meta.clone())
        .require_scope([SCOPE]);

    // rmcp checks the Host header against DNS rebinding: accept this resource's authority.
    let authority = cfg
        .resource
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.to_string()))
        .expect("the resource is an absolute URL");
    let mcp = StreamableHttpService::new(
        || Ok(Adder),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().with_allowed_hosts([authority]),
    );

    Router::new()
        .nest_service("/mcp", mcp)
        // Inside the layer: the principal is known, and the layer renders the refusal.
        .layer(middleware::from_fn(tool_scopes))
        .layer(auth)
        // Outside the layer: the metadata is public (RFC 9728 §3).
        .merge(meta.router())
}

/// Per-tool scopes: a `tools/call` of [`ADMIN_TOOL`] needs [`ADMIN_SCOPE`] too. The layer
/// turns the refusal into its 403, whose challenge names the layer's scope and this one.
///
/// A body that is not JSON goes on to rmcp, which answers it; one longer than 1 MiB is
/// refused with 413.
pub async fn tool_scopes(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => return http::StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    if calls_tool(&bytes, ADMIN_TOOL) {
        let principal = parts.extensions.get::<Principal>();
        if let Err(refusal) = RequireScope::new([ADMIN_SCOPE]).check(principal) {
            return refusal.into_response();
        }
    }
    next.run(Request::from_parts(parts, bytes.into())).await
}

/// Whether a JSON-RPC body (one message or a batch) calls tool `name`.
fn calls_tool(body: &[u8], name: &str) -> bool {
    let calls =
        |m: &Value| m["method"] == "tools/call" && m["params"]["name"].as_str() == Some(name);
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(batch)) => batch.iter().any(calls),
        Ok(message) => calls(&message),
        Err(_) => false,
    }
}

/// The MCP server: the tools `add` and `admin-action`.
#[derive(Debug, Clone, Copy)]
pub struct Adder;

impl Adder {
    fn admin_tool() -> Tool {
        let Value::Object(schema) = json!({ "type": "object", "properties": {} }) else {
            unreachable!("a JSON object")
        };
        Tool::new(
            ADMIN_TOOL,
            "An administrative action: needs scope mcp:admin.",
            Arc::new(schema as JsonObject),
        )
    }

    fn tool() -> Tool {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": { "type": "number" },
                "b": { "type": "number" },
            },
            "required": ["a", "b"],
        });
        let Value::Object(schema) = schema else {
            unreachable!("a JSON object")
        };
        Tool::new(
            "add",
            "Adds two numbers; says who asked.",
            Arc::new(schema as JsonObject),
        )
    }
}

impl ServerHandler for Adder {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_server_info(
            Implementation::new("auth-diagnostics-mcp-example", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![
            Self::tool(),
            Self::admin_tool(),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // The layer authenticated the request before rmcp saw it.
        let principal = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>());
        let caller = principal.and_then(|p| p.id().map(str::to_owned));
        if request.name == ADMIN_TOOL {
            // `tool_scopes` refused calls without the scope; the tool does not rely on it
            // having read the call the way rmcp does.
            if RequireScope::new([ADMIN_SCOPE]).check(principal).is_err() {
                return Err(ErrorData::invalid_request(
                    format!("{ADMIN_TOOL} needs scope {ADMIN_SCOPE}"),
                    None,
                ));
            }
            return Ok(
                CallToolResult::structured(json!({ "done": true, "caller": caller })).into(),
            );
        }
        if request.name != "add" {
            return Err(ErrorData::invalid_params(
                format!("no tool {}", request.name),
                None,
            ));
        }
        let args = request.arguments.unwrap_or_default();
        let number = |name: &str| {
            args.get(name).and_then(Value::as_f64).ok_or_else(|| {
                ErrorData::invalid_params(format!("`{name}` must be a number"), None)
            })
        };
        let sum = number("a")? + number("b")?;
        Ok(CallToolResult::structured(json!({ "sum": sum, "caller": caller })).into())
    }
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
    let app = app(&cfg);
    println!("listening on http://{bound}");
    axum::serve(listener, app).await.expect("server error");
}
