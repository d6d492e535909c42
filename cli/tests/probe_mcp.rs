//! `auth-diagnostics probe --mcp`: the real binary against in-process servers.
//!
//! - A well-behaved MCP server (a JSON-RPC handler behind the layer with
//!   `ResourceMetadata` and scope `mcp:tools`, a tool `admin-action` that needs `mcp:admin`,
//!   `tools/list` answered in an event stream held open) and an authorization server whose
//!   metadata lists PKCE `S256`: every check passes.
//! - A deliberately broken one (no `resource_metadata` and no metadata document, a bare
//!   403, any audience accepted): each fault is named by its check id.
//! - A metadata document for another resource without `authorization_servers`, and an
//!   authorization server without `S256`: named too.
//!
//! Neither token ever appears in the output; usage errors exit 2.

use auth_diagnostics::authz::{RequireScope, ResourceMetadata};
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::StaticKey;
use auth_diagnostics::{AuthDiagnostics, Principal};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt as _;
use http::HeaderMap;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};
use std::convert::Infallible;

const SECRET: &str = "probe-mcp-hs256-secret";
const ISSUER: &str = "https://issuer.probe.test";
const SESSION: &str = "session-4d1f";

// Tokens --------------------------------------------------------------------------------

/// An HS256 token for `aud` with `scope`.
fn token(aud: &str, scope: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": ISSUER, "aud": aud, "sub": "alice", "scope": scope,
        "iat": now, "exp": now + 3600,
    });
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// The claims of an HS256 token signed with [`SECRET`] by [`ISSUER`], for `aud` (any
/// audience when `None`).
fn verify(token: &str, aud: Option<&str>) -> Option<Value> {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_issuer(&[ISSUER]);
    match aud {
        Some(aud) => v.set_audience(&[aud]),
        None => v.validate_aud = false,
    }
    let key = jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .ok()
        .map(|d| d.claims)
}

// Servers -------------------------------------------------------------------------------

/// A listener on a free loopback port and its base URL.
async fn listen() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

fn serve(listener: tokio::net::TcpListener, app: Router) {
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

/// An authorization server whose RFC 8414 metadata is `doc` with its own issuer and
/// endpoints filled in: its issuer URL.
async fn authorization_server(pkce: Option<Value>) -> String {
    let (listener, base) = listen().await;
    let mut doc = json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "response_types_supported": ["code"],
    });
    if let Some(methods) = pkce {
        doc["code_challenge_methods_supported"] = methods;
    }
    let app = Router::new().route(
        "/.well-known/oauth-authorization-server",
        get(move || async move { Json(doc) }),
    );
    serve(listener, app);
    base
}

/// A JSON-RPC result for request `m`.
fn result(m: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": m["id"], "result": result })
}

/// The tools both servers list.
fn tools() -> Value {
    let schema = json!({ "type": "object", "properties": {} });
    json!({ "tools": [
        { "name": "add", "inputSchema": schema },
        { "name": "admin-action", "inputSchema": schema },
    ]})
}

/// The well-behaved MCP server, its authorization server at `issuer`: its MCP URL.
async fn good_server(issuer: &str) -> String {
    let (listener, base) = listen().await;
    let resource = format!("{base}/mcp");
    let meta = ResourceMetadata::new(&resource)
        .authorization_servers([issuer])
        .scopes_supported(["mcp:tools", "mcp:admin"]);
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer(ISSUER)
        .audience(&resource);
    let auth = AuthDiagnostics::new()
        .realm("mcp")
        .bearer(jwt)
        .resource_metadata(meta)
        .require_scope(["mcp:tools"]);
    let app = Router::new().route("/mcp", post(good_rpc)).layer(auth);
    serve(listener, app);
    resource
}

/// The well-behaved server's JSON-RPC: a session from `initialize` that later requests
/// must carry, `tools/list` in an event stream it never closes, `admin-action` refused
/// through the layer without `mcp:admin`.
async fn good_rpc(principal: Principal, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(m) = serde_json::from_slice::<Value>(&body) else {
        return (http::StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let method = m["method"].as_str().unwrap_or_default();
    if method == "initialize" {
        let init = json!({
            "protocolVersion": "2025-06-18",
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "good", "version": "0" },
        });
        return ([("mcp-session-id", SESSION)], Json(result(&m, init))).into_response();
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("mcp-session-id") != Some(SESSION)
        || header("mcp-protocol-version") != Some("2025-06-18")
        || header("mcp-method") != Some(method)
    {
        return (http::StatusCode::BAD_REQUEST, "no session").into_response();
    }
    if method.starts_with("notifications/") {
        return http::StatusCode::ACCEPTED.into_response();
    }
    match method {
        "tools/list" => {
            let event = format!("event: message\ndata: {}\n\n", result(&m, tools()));
            let first = futures_util::stream::once(async move {
                Ok::<_, Infallible>(Bytes::from(event))
            });
            let body = Body::from_stream(first.chain(futures_util::stream::pending()));
            ([("content-type", "text/event-stream")], body).into_response()
        }
        "tools/call" => {
            let name = m["params"]["name"].as_str().unwrap_or_default();
            if name == "admin-action" {
                if let Err(refusal) = RequireScope::new(["mcp:admin"]).check(Some(&principal)) {
                    return refusal.into_response();
                }
            }
            let text = json!({ "content": [{ "type": "text", "text": "done" }] });
            Json(result(&m, text)).into_response()
        }
        _ => Json(json!({ "jsonrpc": "2.0", "id": m["id"], "error": { "code": -32601, "message": "no such method" } })).into_response(),
    }
}

/// How the broken server is broken.
#[derive(Clone)]
struct Broken {
    /// Its MCP URL.
    resource: String,
    /// Whether its 401 names `resource_metadata` (the path-inserted URI).
    advertise: bool,
    /// The document at the path-inserted well-known URI (404 when `None`).
    document: Option<Value>,
}

/// A broken MCP server: a 401 `Bearer realm="mcp"` (plus `resource_metadata` when told),
/// any audience accepted, a bare 403 (no challenge) for a missing scope.
async fn broken_server(advertise: bool, document: impl FnOnce(&str) -> Option<Value>) -> String {
    let (listener, base) = listen().await;
    let resource = format!("{base}/mcp");
    let state = Broken {
        resource: resource.clone(),
        advertise,
        document: document(&resource),
    };
    let app = Router::new()
        .route("/mcp", post(broken_rpc))
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(|State(s): State<Broken>| async move {
                match s.document {
                    Some(doc) => Json(doc).into_response(),
                    None => http::StatusCode::NOT_FOUND.into_response(),
                }
            }),
        )
        .with_state(state);
    serve(listener, app);
    resource
}

async fn broken_rpc(State(s): State<Broken>, headers: HeaderMap, body: Bytes) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        let mut challenge = "Bearer realm=\"mcp\"".to_owned();
        if s.advertise {
            let meta = s
                .resource
                .replacen("/mcp", "/.well-known/oauth-protected-resource/mcp", 1);
            challenge.push_str(&format!(", resource_metadata=\"{meta}\""));
        }
        return (
            http::StatusCode::UNAUTHORIZED,
            [("www-authenticate", challenge)],
        )
            .into_response();
    };
    // The fault: no audience check.
    let Some(claims) = verify(token, None) else {
        return (
            http::StatusCode::UNAUTHORIZED,
            [(
                "www-authenticate",
                "Bearer realm=\"mcp\", error=\"invalid_token\"",
            )],
        )
            .into_response();
    };
    let scopes = claims["scope"].as_str().unwrap_or_default().to_owned();
    let has = |s: &str| scopes.split(' ').any(|x| x == s);
    // The fault: a 403 that says nothing.
    let forbidden = || (http::StatusCode::FORBIDDEN, "forbidden").into_response();
    if !has("mcp:tools") {
        return forbidden();
    }
    let m: Value = serde_json::from_slice(&body).unwrap_or_default();
    match m["method"].as_str().unwrap_or_default() {
        "initialize" => {
            Json(result(&m, json!({ "protocolVersion": "2025-06-18" }))).into_response()
        }
        "tools/list" => Json(result(&m, tools())).into_response(),
        "tools/call" if m["params"]["name"] == "admin-action" && !has("mcp:admin") => forbidden(),
        "tools/call" => Json(result(&m, json!({ "content": [] }))).into_response(),
        _ => http::StatusCode::ACCEPTED.into_response(),
    }
}

// Running the command -------------------------------------------------------------------

/// What the probe printed, and its exit code.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    /// `summary.<key>` as strings.
    fn ids(&self, key: &str) -> Vec<String> {
        self.json()["summary"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    /// The verdict of check `id` of the exchanges named `request` (every one, in order).
    fn verdicts(&self, request: &str, id: &str) -> Vec<String> {
        let report = self.json();
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
}

/// Runs `auth-diagnostics probe --mcp URL ARGS` with `token` in `$MCP_TOKEN` and
/// `foreign` in `$MCP_FOREIGN` (each when given), and asserts neither token is printed.
async fn probe(url: &str, args: &[&str], token: Option<&str>, foreign: Option<&str>) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_auth-diagnostics"));
    cmd.args(["probe", "--mcp", url, "--timeout", "3", "--rate", "100"])
        .args(args);
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    if let Some(t) = token {
        cmd.env("MCP_TOKEN", t).args(["--token-env", "MCP_TOKEN"]);
    }
    if let Some(t) = foreign {
        cmd.env("MCP_FOREIGN", t)
            .args(["--foreign-token-env", "MCP_FOREIGN"]);
    }
    let out = cmd.output().await.expect("the binary runs");
    let run = Run {
        code: out.status.code().expect("an exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for t in [token, foreign].into_iter().flatten() {
        assert!(!run.stdout.contains(t), "a token in stdout: {}", run.stdout);
        assert!(!run.stderr.contains(t), "a token in stderr: {}", run.stderr);
    }
    run
}

const OTHER_AUDIENCE: &str = "https://other.example/mcp";

// Tests ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_behaved_server_passes_every_check() {
    let issuer = authorization_server(Some(json!(["plain", "S256"]))).await;
    let url = good_server(&issuer).await;
    let tools = token(&url, "mcp:tools");
    let foreign = token(OTHER_AUDIENCE, "mcp:tools mcp:admin");

    let run = probe(
        &url,
        &["--json", "--call-tools"],
        Some(&tools),
        Some(&foreign),
    )
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["mcp"], true);
    let summary = &report["summary"];
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["warnings"], 0, "{summary}");
    let names: Vec<&str> = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "unauthenticated_initialize",
            "metadata",
            "metadata_root",
            "authorization_server",
            "initialize",
            "initialized",
            "tools_list",
            "tools_call",
            "tools_call",
            "foreign_token",
        ]
    );
    assert_eq!(summary["requests"], 10, "{summary}");
    for e in report["requests"].as_array().unwrap() {
        for c in e["checks"].as_array().unwrap() {
            assert!(c["rule"].is_string(), "every check names its rule: {c}");
        }
    }
    for (request, check) in [
        ("unauthenticated_initialize", "status"),
        ("unauthenticated_initialize", "bearer_challenge"),
        ("unauthenticated_initialize", "resource_metadata"),
        ("unauthenticated_initialize", "scope"),
        ("metadata", "resource"),
        ("metadata", "authorization_servers"),
        ("authorization_server", "issuer"),
        ("authorization_server", "endpoints"),
        ("authorization_server", "pkce_s256"),
        ("initialize", "status"),
        ("tools_list", "status"),
        ("foreign_token", "status"),
        ("foreign_token", "error_code"),
    ] {
        assert_eq!(run.verdicts(request, check), ["pass"], "{request}.{check}");
    }
    // `add` is called; `admin-action` is refused with a 403 a client can step up from.
    assert_eq!(run.verdicts("tools_call", "status"), ["pass", "skip"]);
    for check in [
        "insufficient_scope",
        "scope",
        "scope_needed",
        "resource_metadata",
    ] {
        assert_eq!(
            run.verdicts("tools_call", check),
            ["pass"],
            "tools_call.{check}"
        );
    }
    assert_eq!(
        report["requests"][8]["sent"]["rpc"],
        "tools/call admin-action"
    );
    assert_eq!(
        report["requests"][9]["sent"]["authorization"],
        "Bearer <foreign token>"
    );
    // The root well-known URI is a fallback: not served is a note.
    assert_eq!(run.verdicts("metadata_root", "status"), ["skip"]);

    // The table for people says the same.
    let run = probe(&url, &["--call-tools"], Some(&tools), Some(&foreign)).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.starts_with(&format!("probe --mcp {url}")),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("FAIL") && !run.stdout.contains("WARN"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("tools/call admin-action"),
        "{}",
        run.stdout
    );

    // Without tokens: the discovery alone, tools not called unless asked.
    let run = probe(&url, &["--json"], None, None).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.json()["summary"]["requests"], 4);
    assert_eq!(run.verdicts("foreign_token", "sent"), ["skip"]);
    let run = probe(&url, &["--json"], Some(&tools), None).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.verdicts("tools_call", "sent"), ["skip"]);
}

/// A token without the scope every call needs: the 403 at `initialize` is right (a note),
/// names what is lacking, and the calls that need an accepted token are not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_the_scope_is_a_note_with_the_403_judged() {
    let issuer = authorization_server(Some(json!(["S256"]))).await;
    let url = good_server(&issuer).await;
    let run = probe(&url, &["--json"], Some(&token(&url, "other")), None).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.verdicts("initialize", "status"), ["skip"]);
    assert_eq!(run.verdicts("initialize", "insufficient_scope"), ["pass"]);
    assert_eq!(run.verdicts("initialize", "scope_needed"), ["pass"]);
    assert_eq!(run.verdicts("tools_list", "sent"), ["skip"]);
}

/// The fixture of the issue: no `resource_metadata` and no metadata document, a bare 403,
/// any audience accepted. Each fault is named; exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_server_has_each_fault_named() {
    let url = broken_server(false, |_| None).await;
    let run = probe(
        &url,
        &["--json", "--call-tools"],
        Some(&token(&url, "mcp:tools")),
        Some(&token(OTHER_AUDIENCE, "mcp:tools")),
    )
    .await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let failed = run.ids("failed_checks");
    for id in [
        "unauthenticated_initialize.resource_metadata",
        "metadata_path_inserted.status",
        "foreign_token.status",
    ] {
        assert!(failed.contains(&id.to_owned()), "{id} not in {failed:?}");
    }
    let warned = run.ids("warning_checks");
    for id in [
        "unauthenticated_initialize.scope",
        "tools_call.insufficient_scope",
        "tools_call.scope",
    ] {
        assert!(warned.contains(&id.to_owned()), "{id} not in {warned:?}");
    }
    assert_eq!(run.verdicts("authorization_server", "sent"), ["skip"]);
    let report = run.json();
    let foreign = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "foreign_token")
        .unwrap()
        .clone();
    assert!(
        foreign["checks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("another audience was accepted"),
        "{foreign}"
    );

    // A token without mcp:tools meets the bare 403 at initialize.
    let run = probe(&url, &["--json"], Some(&token(&url, "other")), None).await;
    assert_eq!(run.code, 1);
    let warned = run.ids("warning_checks");
    assert!(
        warned.contains(&"initialize.insufficient_scope".to_owned())
            && warned.contains(&"initialize.scope".to_owned()),
        "{warned:?}"
    );
    // Without a token, in the table for people: the faults named.
    let run = probe(&url, &[], None, None).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("FAIL") && run.stdout.contains("resource_metadata"),
        "{}",
        run.stdout
    );
}

/// A metadata document for another resource that names no authorization server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_document_for_another_resource_is_named() {
    let url = broken_server(true, |_| {
        Some(json!({ "resource": "http://wrong.example/mcp", "bearer_methods_supported": ["header"] }))
    })
    .await;
    let run = probe(&url, &["--json"], None, None).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    let failed = run.ids("failed_checks");
    assert!(
        failed.contains(&"metadata.resource".to_owned())
            && failed.contains(&"metadata.authorization_servers".to_owned()),
        "{failed:?}"
    );
    // The 401 names a document that answers: resource_metadata itself is fine.
    assert_eq!(
        run.verdicts("unauthenticated_initialize", "resource_metadata"),
        ["pass"]
    );
    assert_eq!(run.verdicts("authorization_server", "sent"), ["skip"]);

    // What the server chose is shown capped: a 20 000-character resource, 200 of it.
    let long = format!("http://wrong.example/{}", "a".repeat(20_000));
    let url = broken_server(true, |_| Some(json!({ "resource": long }))).await;
    let run = probe(&url, &["--json"], None, None).await;
    let report = run.json();
    let detail = report["requests"][1]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "resource")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.len() < 400 && detail.contains('…'),
        "{} characters",
        detail.len()
    );
}

/// An authorization server whose metadata lists no `S256` (or no PKCE at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_server_without_s256_is_named() {
    for pkce in [None, Some(json!(["plain"]))] {
        let issuer = authorization_server(pkce.clone()).await;
        let url = good_server(&issuer).await;
        let run = probe(&url, &["--json"], None, None).await;
        assert_eq!(run.code, 1, "{pkce:?}: {}", run.stdout);
        assert_eq!(
            run.ids("failed_checks"),
            ["authorization_server.pkce_s256"],
            "{pkce:?}"
        );
    }
    // No authorization server metadata at all: every URI MCP clients try, then `found`.
    let (listener, dead) = listen().await;
    serve(listener, Router::new());
    let url = good_server(&dead).await;
    let run = probe(&url, &["--json"], None, None).await;
    assert_eq!(run.code, 1);
    assert_eq!(
        run.verdicts("authorization_server", "status"),
        ["skip", "skip"]
    );
    assert_eq!(run.ids("failed_checks"), ["authorization_server.found"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_and_usage_errors() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = probe(
        &format!("http://127.0.0.1:{port}/mcp"),
        &["--json"],
        None,
        None,
    )
    .await;
    assert_eq!(run.code, 1);
    assert_eq!(run.json()["summary"]["unreachable"], true);
    assert_eq!(run.json()["summary"]["requests"], 1);

    let url = "http://127.0.0.1:9/mcp";
    let same = token(url, "mcp:tools");
    let run = probe(url, &[], Some(&same), Some(&same)).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("same token"), "{}", run.stderr);
    for args in [&["--query-token"][..], &["http://127.0.0.1:9/other"]] {
        let run = probe(url, args, None, None).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_auth-diagnostics"))
        .args(["probe", url, "--foreign-token-env", "X"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let run = probe(
        url,
        &["--foreign-token-env", "MCP_UNSET_VARIABLE"],
        None,
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
}
