//! The MCP server of examples/mcp.rs (rmcp's streamable HTTP transport behind the layer)
//! as the MCP authorization spec and RFC 9728 want it: a 401 that names the metadata
//! document and the scope, the document itself, a 403 `insufficient_scope` for a token
//! without `mcp:tools`, no token of another audience; and the official MCP TypeScript SDK
//! (interop/mcp-client.mjs) finding the authorization server from all that, getting a
//! token from it (interop/oidc-provider.mjs, npm `oidc-provider`) and calling the tool.
//!
//! The example is compiled in (`#[path]`) and served in-process. The tests that need the
//! provider or the SDK need Node (`common::node::interop`): they skip without, except in
//! CI. They run on a multi-threaded runtime: the key source fetches on a task of its own,
//! and its events must not land in the capture that `send` holds on the test's thread.

mod common;
use common::*;

#[path = "../examples/mcp.rs"]
mod mcp_example;

use axum::body::Body;
use axum::Router;
use common::provider::{claims_of, node_json, Provider};
use mcp_example::{McpConfig, ADMIN_SCOPE, ADMIN_TOOL, SCOPE};
use serde_json::json;
use std::time::Duration;
use tokio::time::timeout;

/// Where the in-process tests say the server is: requests carry this `Host`.
const AUTHORITY: &str = "127.0.0.1:3001";
const RESOURCE: &str = "http://127.0.0.1:3001/mcp";
const METADATA_URL: &str = "http://127.0.0.1:3001/.well-known/oauth-protected-resource/mcp";
/// An issuer for the tests that never need its keys: nothing listens on port 9.
const NO_ISSUER: &str = "http://127.0.0.1:9";

/// The example's router for `resource`, verbose.
fn mcp_app(issuer: &str, resource: &str) -> Router {
    mcp_example::app(&McpConfig {
        issuer: issuer.into(),
        resource: resource.into(),
        detail: DetailMode::Verbose,
    })
}

/// A JSON-RPC `initialize`, what an MCP client sends first.
fn initialize(token: Option<&str>) -> http::Request<Body> {
    rpc(
        token,
        json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": { "name": "tests/mcp.rs", "version": "0" },
            },
        }),
    )
}

/// A JSON-RPC POST of `body` to `/mcp`.
fn rpc(token: Option<&str>, body: Value) -> http::Request<Body> {
    let mut req = http::Request::post("/mcp")
        .header("host", AUTHORITY)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(token) = token {
        req = req.header("authorization", bearer(token));
    }
    req.body(Body::from(body.to_string())).unwrap()
}

// Without Node --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_is_401_naming_the_metadata_and_the_scope() {
    let app = mcp_app(NO_ISSUER, RESOURCE);
    let requests = [get("/mcp", &[("host", AUTHORITY)]), initialize(None)];
    for req in requests {
        let out = send(app.clone(), req).await;
        assert_eq!(out.status, 401, "{}", out.text());
        let c = out.challenge();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(
            c.names(),
            ["realm", "resource_metadata", "scope"],
            "no error attributes without a token: {c:?}"
        );
        assert_eq!(c.param("realm"), Some("mcp"));
        assert_eq!(c.param("resource_metadata"), Some(METADATA_URL));
        assert_eq!(c.param("scope"), Some(SCOPE));
        assert_eq!(out.problem()["reason"], "credentials_missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metadata_document_is_public() {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    // Served beside the layer (`ResourceMetadata::router`), not through it: no request id,
    // no event, so not by `send`.
    let app = mcp_app(NO_ISSUER, RESOURCE);
    let req = get(
        "/.well-known/oauth-protected-resource/mcp",
        &[("host", AUTHORITY)],
    );
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let doc: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(
        doc,
        json!({
            "resource": RESOURCE,
            "authorization_servers": [NO_ISSUER],
            "scopes_supported": [SCOPE, ADMIN_SCOPE],
            "bearer_methods_supported": ["header"],
            "resource_name": "auth-diagnostics MCP example",
        })
    );
}

// With the provider ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_mcp_tools_is_403_insufficient_scope() {
    let Some(provider) = Provider::start(0).await else {
        return;
    };
    let app = mcp_app(provider.issuer(), RESOURCE);
    // The provider cuts the scope asked for to the resource's: `read` is not among them.
    let token = provider.token(RESOURCE, "read").await;
    let claims = claims_of(&token);
    assert_eq!(claims["aud"], RESOURCE, "{claims}");
    assert_eq!(claims.get("scope"), None, "{claims}");

    let out = timeout(Duration::from_secs(15), send(app, initialize(Some(&token))))
        .await
        .expect("the layer answers within 15 s");
    assert_eq!(out.status, 403, "{}", out.text());
    let c = out.challenge();
    assert_eq!(c.scheme, "Bearer");
    assert_eq!(c.param("error"), Some("insufficient_scope"), "{c:?}");
    assert_eq!(c.param("scope"), Some(SCOPE), "{c:?}");
    assert_eq!(c.param("resource_metadata"), Some(METADATA_URL), "{c:?}");
    assert_eq!(out.problem()["reason"], "insufficient_scope");
    assert_eq!(out.event().field("reason"), "insufficient_scope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_that_needs_more_scope_names_every_scope_the_call_needs() {
    let Some(provider) = Provider::start(0).await else {
        return;
    };
    let app = mcp_app(provider.issuer(), RESOURCE);
    let token = provider.token(RESOURCE, SCOPE).await;
    assert_eq!(claims_of(&token)["scope"], SCOPE);
    let call = json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": { "name": ADMIN_TOOL, "arguments": {} },
    });
    let out = timeout(Duration::from_secs(15), send(app, rpc(Some(&token), call)))
        .await
        .expect("the layer answers within 15 s");
    // the layer's scope and the tool's, in that order. A client that asks for
    // exactly this gets a token both the layer and the tool accept.
    assert_eq!(out.status, 403, "{}", out.text());
    let c = out.challenge();
    assert_eq!(c.param("error"), Some("insufficient_scope"), "{c:?}");
    assert_eq!(c.param("scope"), Some("mcp:tools mcp:admin"), "{c:?}");
    assert_eq!(c.param("resource_metadata"), Some(METADATA_URL), "{c:?}");
    let problem = out.problem();
    assert_eq!(problem["reason"], "insufficient_scope");
    assert_eq!(problem["error"], "insufficient_scope");
    assert_eq!(problem["required_scope"], "mcp:tools mcp:admin");
    assert_eq!(out.event().field("reason"), "insufficient_scope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_resource_is_401_invalid_token() {
    let Some(provider) = Provider::start(0).await else {
        return;
    };
    let app = mcp_app(provider.issuer(), RESOURCE);
    // MCP: servers "MUST NOT accept or transit any other tokens": the audience is another
    // MCP server's, though the scope is right.
    let other = "http://127.0.0.1:3002/mcp";
    let token = provider.token(other, SCOPE).await;
    assert_eq!(claims_of(&token)["aud"], other);

    let out = timeout(Duration::from_secs(15), send(app, initialize(Some(&token))))
        .await
        .expect("the layer answers within 15 s");
    assert_eq!(out.status, 401, "{}", out.text());
    let c = out.challenge();
    assert_eq!(c.param("error"), Some("invalid_token"), "{c:?}");
    assert_eq!(c.param("resource_metadata"), Some(METADATA_URL), "{c:?}");
    assert_eq!(out.problem()["reason"], "token_audience_mismatch");
}

/// The example's router on a free loopback port, its resource `http://ADDR/mcp` as bound,
/// as `main` serves it. Returns the resource.
async fn serve(issuer: &str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://{addr}/mcp");
    let app = mcp_app(issuer, &resource);
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (resource, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_sdk_finds_the_authorization_server_and_calls_the_tool() {
    let Some(provider) = Provider::start(0).await else {
        return;
    };
    let dir = common::node::interop_dir();
    let (url, server) = serve(provider.issuer()).await;
    let base = url.trim_end_matches("/mcp");
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource/mcp");

    let found = node_json(&dir, "mcp-client.mjs", &[&url]).await;
    server.abort();

    // The 401 without a token, as the SDK read it.
    let challenge = &found["challenge"];
    assert_eq!(challenge["status"], 401, "{found:#}");
    assert_eq!(challenge["resource_metadata"], metadata_url, "{found:#}");
    assert_eq!(challenge["scope"], SCOPE, "{found:#}");
    assert_eq!(challenge["error"], Value::Null, "{found:#}");
    let header = challenge["www_authenticate"].as_str().unwrap();
    assert!(header.starts_with("Bearer realm=\"mcp\""), "{header}");

    // Our metadata, then the authorization server it names, by the SDK's discovery.
    let prm = &found["resource_metadata"];
    assert_eq!(prm["resource"], url, "{found:#}");
    assert_eq!(prm["authorization_servers"], json!([provider.issuer()]));
    assert_eq!(prm["scopes_supported"], json!([SCOPE, ADMIN_SCOPE]));
    let authz = &found["authorization_server"];
    assert_eq!(authz["issuer"], provider.issuer(), "{found:#}");
    assert_eq!(authz["discovered_by_sdk"], provider.issuer(), "{found:#}");
    assert_eq!(
        authz["token_endpoint"],
        format!("{}/token", provider.issuer())
    );

    // The token `auth()` got: for this server, with the challenge's scope.
    let token = &found["token"];
    assert_eq!(token["token_type"], "Bearer", "{found:#}");
    assert_eq!(token["scope"], SCOPE, "{found:#}");
    assert_eq!(token["aud"], url, "{found:#}");
    assert_eq!(token["iss"], provider.issuer(), "{found:#}");

    // And the MCP session with it.
    assert_eq!(
        found["server_info"]["name"], "auth-diagnostics-mcp-example",
        "{found:#}"
    );
    assert_eq!(found["tools"], json!(["add", ADMIN_TOOL]), "{found:#}");
    let result = &found["result"]["structured"];
    assert_eq!(result["sum"].as_f64(), Some(5.0), "{found:#}");
    assert_eq!(result["caller"], "interop", "{found:#}");

    // `admin-action`: the SDK met the 403, asked for the scope it named, and the call went
    // through with a token that has both scopes.
    let admin = &found["admin"];
    assert_eq!(admin["structured"]["done"], true, "{found:#}");
    assert_eq!(
        admin["token_claims_scope"], "mcp:tools mcp:admin",
        "{found:#}"
    );
}
