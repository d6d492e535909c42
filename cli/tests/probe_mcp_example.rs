//! `auth-diagnostics probe --mcp` against the repository's MCP server (`examples/mcp.rs`,
//! rmcp's streamable HTTP transport behind the layer, compiled in with `#[path]`), with an
//! in-process authorization server: OpenID discovery listing PKCE `S256`, a JWK set, RS256
//! tokens minted here. Every check passes, in the example's plain form (with `--call-tools`:
//! `admin-action`'s 403 names both scopes) and as `cargo run --example mcp` serves it (DPoP
//! beside Bearer, the conformance fixture's tools).

#[path = "../../examples/mcp.rs"]
#[allow(dead_code)]
mod mcp_example;

use auth_diagnostics::layer::DetailMode;
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_example::{McpConfig, McpOptions};
use serde_json::{json, Value};

/// The key of `fixtures/rsa_jwks.json`.
const KEY: &str = include_str!("../../tests/keys/rsa_private.pem");
const KID: &str = "cli-test-rsa";

/// An authorization server on a free loopback port: its issuer URL.
async fn authorization_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let discovery = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks"),
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    });
    let jwks: Value = serde_json::from_str(include_str!("fixtures/rsa_jwks.json")).unwrap();
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { Json(discovery) }),
        )
        .route("/jwks", get(move || async move { Json(jwks) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

/// An RS256 token from `issuer` for `aud` with `scope`.
fn token(issuer: &str, aud: &str, scope: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.into());
    let claims = json!({
        "iss": issuer, "aud": aud, "sub": "alice", "scope": scope,
        "iat": now, "exp": now + 3600,
    });
    let key = EncodingKey::from_rsa_pem(KEY.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// The example on a free loopback port with `options`: its MCP URL.
async fn serve_example(issuer: &str, options: &McpOptions) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resource = format!("http://{}/mcp", listener.local_addr().unwrap());
    let cfg = McpConfig {
        issuer: issuer.into(),
        resource: resource.clone(),
        detail: DetailMode::Production,
    };
    let app = mcp_example::app_with(&cfg, options);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    resource
}

/// `probe --mcp URL --json ARGS` with both tokens: the report, after asserting it is clean.
async fn probe_clean(url: &str, args: &[&str], token: &str, foreign: &str) -> Value {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_auth-diagnostics"));
    cmd.args([
        "probe",
        "--mcp",
        url,
        "--json",
        "--timeout",
        "5",
        "--rate",
        "100",
    ])
    .args(args)
    .args([
        "--token-env",
        "MCP_TOKEN",
        "--foreign-token-env",
        "MCP_FOREIGN",
    ])
    .env("MCP_TOKEN", token)
    .env("MCP_FOREIGN", foreign);
    for var in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        cmd.env_remove(var);
    }
    let out = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!stdout.contains(token) && !stdout.contains(foreign));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let summary = &report["summary"];
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["warnings"], 0, "{summary}");
    report
}

/// The verdicts of check `id` of the exchanges named `request`.
fn verdicts(report: &Value, request: &str, id: &str) -> Vec<String> {
    report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == request)
        .flat_map(|e| e["checks"].as_array().unwrap().clone())
        .filter(|c| c["id"] == id)
        .map(|c| c["verdict"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_passes_every_check() {
    let issuer = authorization_server().await;

    let url = serve_example(&issuer, &McpOptions::default()).await;
    let tools = token(&issuer, &url, "mcp:tools");
    let foreign = token(&issuer, "http://127.0.0.1:1/mcp", "mcp:tools mcp:admin");
    let report = probe_clean(&url, &["--call-tools"], &tools, &foreign).await;
    for (request, check) in [
        ("unauthenticated_initialize", "resource_metadata"),
        ("metadata", "resource"),
        ("authorization_server", "pkce_s256"),
        ("tools_list", "status"),
        ("foreign_token", "status"),
    ] {
        assert_eq!(
            verdicts(&report, request, check),
            ["pass"],
            "{request}.{check}"
        );
    }
    // OpenID discovery after RFC 8414's URI, as MCP clients look.
    assert_eq!(
        verdicts(&report, "authorization_server", "status"),
        ["skip", "pass"]
    );
    // `add` (called with no arguments: a JSON-RPC error, not an authentication answer)
    // and `admin-action`, refused with a 403 a client can step up from.
    assert_eq!(verdicts(&report, "tools_call", "status"), ["pass", "skip"]);
    for check in [
        "insufficient_scope",
        "scope",
        "scope_needed",
        "resource_metadata",
    ] {
        assert_eq!(verdicts(&report, "tools_call", check), ["pass"], "{check}");
    }

    // As `cargo run --example mcp` serves it: DPoP beside Bearer, the fixture's tools.
    let options = McpOptions {
        dpop: true,
        conformance_fixture: true,
        ..McpOptions::default()
    };
    let url = serve_example(&issuer, &options).await;
    let tools = token(&issuer, &url, "mcp:tools");
    let report = probe_clean(&url, &[], &tools, &foreign).await;
    assert_eq!(
        verdicts(&report, "unauthenticated_initialize", "bearer_challenge"),
        ["pass"]
    );
    assert_eq!(verdicts(&report, "tools_list", "status"), ["pass"]);
}
