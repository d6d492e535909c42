//! What the MCP conformance suite's authorization scenarios check, against the MCP example
//! as it runs (`examples/mcp.rs`, compiled and started as a process with `MCP_ISSUER`,
//! `MCP_ADDR=127.0.0.1:0` and `MCP_DETAIL=verbose`, found by its `listening on` line):
//!
//! - a request without a token: 401 whose Bearer challenge (the first one) names
//!   `resource_metadata` and `scope`;
//! - the metadata document at the path-inserted well-known URI (RFC 9728 §3.1), public;
//!   at the root well-known URI, where an MCP client looks next, no other resource's
//!   document and no challenge;
//! - a token for another audience: 401 `invalid_token`;
//! - `admin-action` with a token that has only `mcp:tools`: 403 `insufficient_scope` naming
//!   every scope the call needs, then success with a token from a new authorization that
//!   asked for the scope the challenge named;
//! - DPoP on `POST /mcp`: a proof for another method or another URL refused;
//! - the official MCP TypeScript SDK's client (interop/mcp-client.mjs
//!   `--authorization-code`) registering itself, completing the authorization code flow
//!   with PKCE and, on the 403, the step-up, all on its own.
//!
//! The tokens come from interop/oidc-provider.mjs `--auto-approve` (npm `oidc-provider`):
//! dynamic registration and the authorization code grant with no person to ask. The tests
//! that need it need Node (`common::node`): they skip without it, except in CI.

mod common;
use common::*;

#[path = "../examples/common/dpop.rs"]
mod demo_dpop;

use common::provider::{claims_of, drain, node_json, Provider, Registered};
use demo_dpop::{dpop_jwk, dpop_proof};
use serde_json::json;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// The scope every request to `/mcp` needs.
const SCOPE: &str = "mcp:tools";
/// What `admin-action` needs: the layer's scope and its own, in that order.
const ADMIN_SCOPES: &str = "mcp:tools mcp:admin";
/// An issuer for the tests that never need its keys: nothing listens on port 9.
const NO_ISSUER: &str = "http://127.0.0.1:9";
/// Where the tests' own client says the authorization server sends it back (nothing
/// listens there: the code is read from the `Location`).
const REDIRECT_URI: &str = "http://localhost:33419/callback";

// The example as a process ---------------------------------------------------------------

/// The compiled `mcp` example.
fn mcp_binary() -> PathBuf {
    common::examples::example_binary("mcp")
}

/// A running example, killed when dropped.
struct McpServer {
    _child: Child,
    /// `http://127.0.0.1:PORT`, as it printed.
    base: String,
    stderr: Arc<Mutex<String>>,
}

impl McpServer {
    /// The example trusting `issuer`, on a free loopback port, verbose, once it listens.
    async fn start(issuer: &str) -> McpServer {
        let bin = tokio::task::spawn_blocking(mcp_binary).await.unwrap();
        let mut cmd = Command::new(bin);
        cmd.env("MCP_ISSUER", issuer)
            .env("MCP_ADDR", "127.0.0.1:0")
            .env("MCP_DETAIL", "verbose")
            .env("RUST_LOG", "warn")
            .env_remove("MCP_DPOP_NONCE")
            .env_remove("MCP_INTROSPECTION_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        without_proxies(&mut cmd);
        let mut child = cmd.spawn().expect("start the MCP example");
        let stderr = drain(child.stderr.take().unwrap());
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = match timeout(Duration::from_secs(60), lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            other => panic!(
                "the example printed no start line ({other:?}); stderr: {}",
                stderr.lock().unwrap()
            ),
        };
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("start line {line:?}"))
            .to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "{line}");
        McpServer {
            _child: child,
            base,
            stderr,
        }
    }

    /// Its resource identifier and endpoint, `http://127.0.0.1:PORT/mcp`.
    fn url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// The metadata document's URL, path-inserted (RFC 9728 §3.1).
    fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.base)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

/// How a request to `/mcp` presents its token.
enum Auth<'a> {
    None,
    Bearer(&'a str),
    /// `Authorization: DPoP TOKEN` with `DPoP: PROOF`.
    Dpop(&'a str, String),
}

/// One answer of the example, read whole.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Answer {
    /// Every challenge, parsed by `http-auth`, one per field line, in order.
    #[track_caller]
    fn challenges(&self) -> Vec<ParsedChallenge> {
        self.headers
            .get_all("www-authenticate")
            .iter()
            .map(parse_challenge)
            .collect()
    }

    /// The first challenge, which must be Bearer's: an MCP client reads `resource_metadata`
    /// and `scope` from the challenge that starts with `Bearer`.
    #[track_caller]
    fn bearer_challenge(&self) -> ParsedChallenge {
        let all = self.challenges();
        let first = all
            .first()
            .unwrap_or_else(|| panic!("no challenge: {self:?}"))
            .clone();
        assert!(first.scheme.eq_ignore_ascii_case("bearer"), "{all:?}");
        first
    }

    /// The challenge of `scheme`.
    #[track_caller]
    fn challenge_of(&self, scheme: &str) -> ParsedChallenge {
        self.challenges()
            .into_iter()
            .find(|c| c.scheme.eq_ignore_ascii_case(scheme))
            .unwrap_or_else(|| panic!("no {scheme} challenge: {self:?}"))
    }

    /// The problem body (RFC 9457; verbose: it names the reason).
    #[track_caller]
    fn problem(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not a problem body ({e}): {self:?}"))
    }

    /// The JSON-RPC message answering request `id`: the body itself, or the `data` of an
    /// event of the stream that rmcp answers a POST with.
    #[track_caller]
    fn rpc(&self, id: u64) -> Value {
        assert_eq!(self.status, 200, "{self:?}");
        if let Ok(message) = serde_json::from_str::<Value>(&self.body) {
            return message;
        }
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("no answer to request {id}: {self:?}"))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A plain HTTP client for the example (no proxy, no redirect followed).
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `method` `url` with `auth`, a JSON-RPC `body` when given and the MCP session's id.
async fn call(
    method: reqwest::Method,
    url: &str,
    auth: &Auth<'_>,
    body: Option<Value>,
    session: Option<&str>,
) -> Answer {
    let mut req = http()
        .request(method, url)
        .header("accept", "application/json, text/event-stream");
    match auth {
        Auth::None => {}
        Auth::Bearer(token) => req = req.header("authorization", bearer(token)),
        Auth::Dpop(token, proof) => {
            req = req
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof);
        }
    }
    if let Some(session) = session {
        req = req
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let res = timeout(Duration::from_secs(20), req.send())
        .await
        .expect("the example answers within 20 s")
        .expect("request to the example");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = timeout(Duration::from_secs(20), res.text())
        .await
        .expect("the body within 20 s")
        .unwrap_or_default();
    Answer {
        status,
        headers,
        body,
    }
}

/// A JSON-RPC POST to `/mcp`.
async fn post(server: &McpServer, auth: &Auth<'_>, body: Value, session: Option<&str>) -> Answer {
    call(
        reqwest::Method::POST,
        &server.url(),
        auth,
        Some(body),
        session,
    )
    .await
}

/// The JSON-RPC `initialize` an MCP client sends first.
fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": { "name": "tests/mcp_auth.rs", "version": "0" },
        },
    })
}

/// A `tools/call` of `name` with no arguments, as request `id`.
fn call_tool(id: u64, name: &str) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": name, "arguments": {} },
    })
}

/// An MCP session opened with `token`: `initialize`, then `notifications/initialized`.
/// Returns its id.
async fn open_session(server: &McpServer, token: &str) -> String {
    let init = post(server, &Auth::Bearer(token), initialize(), None).await;
    let result = init.rpc(1);
    assert!(result["result"]["serverInfo"].is_object(), "{init:?}");
    let session = init
        .header("mcp-session-id")
        .unwrap_or_else(|| panic!("no session id: {init:?}"))
        .to_owned();
    let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let done = post(server, &Auth::Bearer(token), note, Some(&session)).await;
    assert_eq!(done.status, 202, "{done:?}");
    session
}

/// The provider with `--auto-approve` and the example trusting it; `None` without Node
/// outside CI.
async fn provider_and_server() -> Option<(Provider, McpServer)> {
    let provider = Provider::start_auto_approve().await?;
    let server = McpServer::start(provider.issuer()).await;
    Some((provider, server))
}

// Without Node ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_401_names_the_metadata_and_the_scope() {
    let server = McpServer::start(NO_ISSUER).await;
    let requests = [
        (reqwest::Method::POST, Some(initialize())),
        (reqwest::Method::GET, None),
    ];
    for (method, body) in requests {
        let out = call(method.clone(), &server.url(), &Auth::None, body, None).await;
        assert_eq!(out.status, 401, "{method}: {out:?}");
        let c = out.bearer_challenge();
        assert_eq!(
            c.param("resource_metadata"),
            Some(server.metadata_url().as_str()),
            "{method}: {c:?}"
        );
        assert_eq!(c.param("scope"), Some(SCOPE), "{method}: {c:?}");
        // No token, no error (RFC 6750 §3.1).
        assert_eq!(c.param("error"), None, "{method}: {c:?}");
        assert_eq!(out.problem()["reason"], "credentials_missing", "{out:?}");
        // Every other scheme offered says the same, after Bearer.
        for other in &out.challenges()[1..] {
            assert_eq!(
                other.param("resource_metadata"),
                c.param("resource_metadata"),
                "{other:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metadata_at_the_path_inserted_and_root_well_known_uris() {
    let server = McpServer::start(NO_ISSUER).await;
    // Where the challenge points, and where an MCP client looks first without one.
    let doc = call(
        reqwest::Method::GET,
        &server.metadata_url(),
        &Auth::None,
        None,
        None,
    )
    .await;
    assert_eq!(doc.status, 200, "{doc:?}");
    assert_eq!(doc.header("content-type"), Some("application/json"));
    assert!(doc.challenges().is_empty(), "public: {doc:?}");
    let meta: Value = serde_json::from_str(&doc.body).expect("JSON");
    assert_eq!(meta["resource"], server.url(), "{meta}");
    assert_eq!(meta["authorization_servers"], json!([NO_ISSUER]), "{meta}");
    let scopes = meta["scopes_supported"]
        .as_array()
        .expect("scopes_supported");
    for scope in ADMIN_SCOPES.split(' ') {
        assert!(scopes.contains(&json!(scope)), "{scope}: {meta}");
    }

    // The root well-known URI, where an MCP client falls back (MCP authorization,
    // "Protected Resource Metadata Discovery"): public too, and never a document for
    // another resource (RFC 9728 §3.3: `resource` must be the URL the client asked about).
    let root = call(
        reqwest::Method::GET,
        &format!("{}/.well-known/oauth-protected-resource", server.base),
        &Auth::None,
        None,
        None,
    )
    .await;
    assert!(root.challenges().is_empty(), "public: {root:?}");
    match root.status {
        404 => {}
        200 => {
            let at_root: Value = serde_json::from_str(&root.body).expect("JSON");
            assert_eq!(at_root, meta, "the root document is the resource's");
        }
        other => panic!("the root well-known URI answered {other}: {root:?}"),
    }
}

// With the provider ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_audience_is_401_invalid_token() {
    let Some((provider, server)) = provider_and_server().await else {
        return;
    };
    // Another MCP server's token with the right scope, and the demo API's.
    let other_mcp = "http://127.0.0.1:3999/mcp";
    for (resource, aud) in [(other_mcp, other_mcp), ("urn:demo:api", "demo-api")] {
        let token = provider.token(resource, SCOPE).await;
        assert_eq!(claims_of(&token)["aud"], aud);
        let out = post(&server, &Auth::Bearer(&token), initialize(), None).await;
        assert_eq!(out.status, 401, "{resource}: {out:?}");
        let c = out.bearer_challenge();
        assert_eq!(c.param("error"), Some("invalid_token"), "{c:?}");
        assert_eq!(
            c.param("resource_metadata"),
            Some(server.metadata_url().as_str()),
            "{c:?}"
        );
        assert_eq!(
            out.problem()["reason"],
            "token_audience_mismatch",
            "{out:?}"
        );
    }
    // The same grant for this server is taken.
    let token = provider.token(&server.url(), SCOPE).await;
    open_session(&server, &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_action_is_403_naming_every_scope_then_passes_after_reauthorization() {
    let Some((provider, server)) = provider_and_server().await else {
        return;
    };
    let url = server.url();
    let client: Registered = provider.register(REDIRECT_URI).await;

    // An authorization for what the 401 asks: mcp:tools.
    let first = provider.authorize(&client, &url, SCOPE, None).await;
    assert_eq!(first["token_type"], "Bearer", "{first}");
    assert_eq!(first["scope"], SCOPE, "{first}");
    assert_eq!(
        first.get("refresh_token"),
        None,
        "no refresh token: {first}"
    );
    let token = first["access_token"].as_str().unwrap();
    let claims = claims_of(token);
    assert_eq!(claims["aud"], url, "{claims}");
    assert_eq!(claims["client_id"], client.client_id.as_str(), "{claims}");

    let session = open_session(&server, token).await;
    let listed = post(
        &server,
        &Auth::Bearer(token),
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }),
        Some(&session),
    )
    .await
    .rpc(2);
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"admin-action"), "{names:?}");

    // admin-action: 403, naming the layer's scope and the tool's, for the same session.
    let refused = post(
        &server,
        &Auth::Bearer(token),
        call_tool(3, "admin-action"),
        Some(&session),
    )
    .await;
    assert_eq!(refused.status, 403, "{refused:?}");
    let c = refused.bearer_challenge();
    assert_eq!(c.param("error"), Some("insufficient_scope"), "{c:?}");
    assert_eq!(c.param("scope"), Some(ADMIN_SCOPES), "{c:?}");
    assert_eq!(
        c.param("resource_metadata"),
        Some(server.metadata_url().as_str()),
        "{c:?}"
    );
    let problem = refused.problem();
    assert_eq!(problem["reason"], "insufficient_scope", "{problem}");
    assert_eq!(problem["required_scope"], ADMIN_SCOPES, "{problem}");

    // A new authorization for exactly the challenge's scope, then the same call passes.
    let wanted = c.param("scope").unwrap();
    let second = provider.authorize(&client, &url, wanted, None).await;
    assert_eq!(second["scope"], ADMIN_SCOPES, "{second}");
    assert_eq!(second.get("refresh_token"), None, "{second}");
    let upscoped = second["access_token"].as_str().unwrap();
    let done = post(
        &server,
        &Auth::Bearer(upscoped),
        call_tool(4, "admin-action"),
        Some(&session),
    )
    .await
    .rpc(4);
    assert_eq!(done["result"]["structuredContent"]["done"], true, "{done}");
    assert_eq!(
        done["result"]["structuredContent"]["caller"],
        claims_of(upscoped)["sub"],
        "{done}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpop_proof_for_another_method_or_url_is_refused() {
    let Some((provider, server)) = provider_and_server().await else {
        return;
    };
    let url = server.url();
    // A DPoP-bound token by the authorization code grant: the proof at the token endpoint.
    let client = provider.register(REDIRECT_URI).await;
    let proof = dpop_proof("POST", &provider.token_endpoint(), "", now());
    let answer = provider.authorize(&client, &url, SCOPE, Some(&proof)).await;
    assert_eq!(answer["token_type"], "DPoP", "{answer}");
    let token = answer["access_token"].as_str().unwrap();
    let (_, jkt) = dpop_jwk();
    assert_eq!(claims_of(token)["cnf"]["jkt"], jkt.as_str());

    // The right proof: POST to this URL.
    let right = Auth::Dpop(token, dpop_proof("POST", &url, token, now()));
    let ok = post(&server, &right, initialize(), None).await;
    assert!(ok.rpc(1)["result"]["serverInfo"].is_object(), "{ok:?}");

    let wrong = [
        ("GET", url.clone(), "dpop_proof_method_mismatch"),
        ("PUT", url.clone(), "dpop_proof_method_mismatch"),
        (
            "POST",
            format!("{}/other", server.base),
            "dpop_proof_url_mismatch",
        ),
        (
            "POST",
            "http://127.0.0.1:1/mcp".to_owned(),
            "dpop_proof_url_mismatch",
        ),
        (
            "POST",
            url.replace("127.0.0.1", "localhost"),
            "dpop_proof_url_mismatch",
        ),
    ];
    for (htm, htu, reason) in wrong {
        let auth = Auth::Dpop(token, dpop_proof(htm, &htu, token, now()));
        let out = post(&server, &auth, initialize(), None).await;
        let case = format!("{htm} {htu}");
        assert_eq!(out.status, 401, "{case}: {out:?}");
        // Bearer first, then the DPoP challenge that says what is wrong.
        let bearer = out.bearer_challenge();
        assert_eq!(
            bearer.param("resource_metadata"),
            Some(server.metadata_url().as_str()),
            "{case}: {bearer:?}"
        );
        let c = out.challenge_of("DPoP");
        assert_eq!(
            c.param("error"),
            Some("invalid_dpop_proof"),
            "{case}: {c:?}"
        );
        assert_eq!(out.problem()["reason"], reason, "{case}: {out:?}");
    }
    // The bound token without its proof is no Bearer token either.
    let as_bearer = post(&server, &Auth::Bearer(token), initialize(), None).await;
    assert_eq!(
        as_bearer.status,
        401,
        "{as_bearer:?}; stderr: {}",
        server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_sdk_authorizes_by_code_and_steps_up_on_its_own() {
    let Some((provider, server)) = provider_and_server().await else {
        return;
    };
    let url = server.url();
    let dir = common::node::interop_dir();
    let found = node_json(&dir, "mcp-client.mjs", &["--authorization-code", &url]).await;

    // What the SDK sent, in order: the 401, our metadata (where the challenge pointed),
    // the authorization server's, a registration answered 201, and a code exchange.
    let requests = found["requests"].as_array().expect("requests");
    let first = &requests[0];
    assert_eq!(first["status"], 401, "{found:#}");
    let challenge = first["www_authenticate"].as_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    let sent = |method: &str, url: &str| {
        requests
            .iter()
            .filter(|r| r["method"] == method && r["url"] == url)
            .map(|r| r["status"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(sent("GET", &server.metadata_url()), [200], "{found:#}");
    assert_eq!(
        sent("POST", &format!("{}/reg", provider.issuer())),
        [201],
        "{found:#}"
    );
    assert_eq!(
        sent("POST", &provider.token_endpoint()),
        [200, 200],
        "two code exchanges and nothing else (no refresh): {found:#}"
    );

    // The registration, as the SDK asked for it.
    let reg = &found["registration"];
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(
        reg["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(reg["client_secret_issued"], true, "{reg}");

    // Two authorizations, each answered at once with the code: the 401's scope, then the
    // 403's. PKCE S256 and the resource each time.
    let auths = found["authorizations"].as_array().expect("authorizations");
    assert_eq!(auths.len(), 2, "{found:#}");
    for (a, scope) in auths.iter().zip([SCOPE, ADMIN_SCOPES]) {
        assert_eq!(a["scope"], scope, "{a}");
        assert_eq!(a["resource"], url, "{a}");
        assert_eq!(a["code_challenge_method"], "S256", "{a}");
        assert!(
            a["status"] == 302 || a["status"] == 303,
            "a redirect at once: {a}"
        );
        assert_eq!(a["to_redirect_uri"], true, "{a}");
        assert_eq!(a["code"], true, "{a}");
        assert_eq!(a["state_matches"], true, "{a}");
        assert_eq!(a["iss"], provider.issuer(), "{a}");
    }

    // The 403 between them, read by the SDK: insufficient_scope naming both scopes.
    let refused: Vec<&Value> = requests.iter().filter(|r| r["status"] == 403).collect();
    assert_eq!(refused.len(), 1, "{found:#}");
    let header = refused[0]["www_authenticate"].as_str().unwrap();
    let c = &http_auth::parse_challenges(header).expect("parses")[0];
    assert!(c.scheme.eq_ignore_ascii_case("bearer"), "{header}");
    let param = |name: &str| {
        c.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_unescaped())
    };
    assert_eq!(param("error").as_deref(), Some("insufficient_scope"));
    assert_eq!(param("scope").as_deref(), Some(ADMIN_SCOPES));

    // The tokens: for this server, no refresh token, the second with both scopes.
    let tokens = found["tokens"].as_array().expect("tokens");
    assert_eq!(tokens.len(), 2, "{found:#}");
    for (t, scope) in tokens.iter().zip([SCOPE, ADMIN_SCOPES]) {
        assert_eq!(t["token_type"], "Bearer", "{t}");
        assert_eq!(t["refresh_token"], false, "{t}");
        assert_eq!(t["claims"]["aud"], url, "{t}");
        assert_eq!(t["claims"]["iss"], provider.issuer(), "{t}");
        assert_eq!(t["claims"]["scope"], scope, "{t}");
    }

    // And the calls themselves.
    assert_eq!(
        found["discovered"]["authorization_server"],
        provider.issuer()
    );
    assert_eq!(found["discovered"]["resource"], url);
    let tools = found["tools"].as_array().expect("tools");
    assert!(tools.contains(&json!("add")), "{found:#}");
    assert!(tools.contains(&json!("admin-action")), "{found:#}");
    assert_eq!(
        found["result"]["structured"]["sum"].as_f64(),
        Some(5.0),
        "{found:#}"
    );
    assert_eq!(found["admin"]["stepped_up"], true, "{found:#}");
    assert_eq!(found["admin"]["structured"]["done"], true, "{found:#}");
}
