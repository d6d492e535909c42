//! `examples/demo.postman_collection.json`, run by Postman's runner (npm `newman`, pinned in
//! `interop/`) against the demo's router on a free loopback port: every failure the README
//! walks through, asserted by the collection's own `pm.test`s.

mod common;
use common::*;

use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Every failure the collection must walk through (and the successes beside them): the
/// path, the status its test asserts and the reason its body must carry.
const COVERAGE: &[(&str, u16, Option<&str>)] = &[
    ("/public", 200, None),
    ("/me", 401, Some("credentials_missing")),
    ("/me", 401, Some("scheme_not_accepted")),
    ("/me", 401, Some("scheme_prefix_missing")),
    ("/me", 401, Some("token_expired")),
    ("/me", 401, Some("token_audience_mismatch")),
    ("/me", 200, None),
    ("/admin", 403, Some("insufficient_scope")),
    ("/admin", 200, None),
    ("/basic", 200, None),
    ("/basic", 401, Some("basic_password_mismatch")),
    ("/basic", 403, Some("account_disabled")),
    ("/key", 200, None),
    ("/key", 401, Some("api_key_revoked")),
    ("/key", 401, Some("api_key_unknown")),
    ("/session", 200, None),
    ("/session", 401, Some("session_expired")),
    ("/session", 401, Some("session_invalid")),
    ("/session", 401, Some("credentials_missing")),
    ("/any", 401, Some("credentials_missing")),
    ("/mcp", 401, Some("credentials_missing")),
    ("/.well-known/oauth-protected-resource/mcp", 200, None),
    ("/stepup", 401, Some("insufficient_user_authentication")),
];

fn collection_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.postman_collection.json")
}

fn collection() -> Value {
    let text = std::fs::read_to_string(collection_path()).unwrap();
    serde_json::from_str(&text).expect("the collection is JSON")
}

/// One request of the collection: its URL and its test script.
struct Item {
    name: String,
    url: String,
    tests: String,
}

/// The requests of a collection (or folder), folders flattened, in order.
fn requests(node: &Value) -> Vec<Item> {
    let mut out = Vec::new();
    collect_requests(node, &mut out);
    out
}

fn collect_requests(node: &Value, out: &mut Vec<Item>) {
    for item in node["item"].as_array().into_iter().flatten() {
        if item.get("item").is_some() {
            collect_requests(item, out);
            continue;
        }
        let url = &item["request"]["url"];
        let url = url["raw"].as_str().or(url.as_str()).unwrap_or_default();
        let tests = item["event"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["listen"] == "test")
            .flat_map(|e| e["script"]["exec"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n");
        out.push(Item {
            name: item["name"].as_str().unwrap_or_default().to_owned(),
            url: url.to_owned(),
            tests,
        });
    }
}

/// The collection really walks through every failure: an emptied or thinned-out
/// collection would otherwise pass newman with nothing to assert.
#[test]
fn collection_covers_the_failures() {
    let collection = collection();
    assert_eq!(
        collection["info"]["schema"],
        "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
    );
    let variables: Vec<&str> = collection["variable"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["key"].as_str())
        .collect();
    for v in [
        "baseUrl",
        "token",
        "adminToken",
        "expiredToken",
        "wrongAudToken",
    ] {
        assert!(
            variables.contains(&v),
            "variable {v} missing: {variables:?}"
        );
    }
    let all = requests(&collection);
    for item in &all {
        assert!(
            item.tests.contains("pm.test("),
            "request {:?} asserts nothing",
            item.name
        );
    }
    for &(path, status, reason) in COVERAGE {
        let found = all.iter().any(|item| {
            item.url == format!("{{{{baseUrl}}}}{path}")
                && item.tests.contains(&format!("to.have.status({status})"))
                && reason.is_none_or(|r| {
                    item.tests.contains(&format!("reason).to.eql('{r}')"))
                        && item.tests.contains("status).to.eql(pm.response.code)")
                        && item.tests.to_ascii_lowercase().contains("www-authenticate")
                })
        });
        assert!(
            found,
            "no request to {path} asserts status {status} and reason {reason:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postman_collection_passes_against_the_demo() {
    let Some(interop) = common::node::interop() else {
        return;
    };
    // The router is built first: building its JWT authenticator installs the crypto
    // provider the token helpers sign with.
    let (base, server) = serve_demo().await;
    let now = now();
    let vars = [
        ("baseUrl", base.clone()),
        ("token", hs256(&claims(json!({ "scope": "read" })))),
        (
            "adminToken",
            hs256(&claims(json!({ "scope": "read admin" }))),
        ),
        (
            "expiredToken",
            hs256(&claims(json!({ "iat": now - 7200, "exp": now - 3600 }))),
        ),
        (
            "wrongAudToken",
            hs256(&claims(json!({ "aud": "another-service" }))),
        ),
    ];

    let report_path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("newman-demo-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&report_path);
    let mut cmd = tokio::process::Command::new(interop.join("node_modules/.bin/newman"));
    cmd.arg("run")
        .arg(collection_path())
        .args(["--reporters", "cli,json", "--reporter-json-export"])
        .arg(&report_path)
        .args(["--color", "off", "--timeout-request", "10000"])
        .env("FORCE_COLOR", "0")
        .kill_on_drop(true);
    for (name, value) in &vars {
        cmd.arg("--env-var").arg(format!("{name}={value}"));
    }
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("newman finishes within two minutes")
        .expect("newman starts");
    server.abort();

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "newman failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    eprintln!("newman ran the collection in {:?}", started.elapsed());

    // Every request was sent and asserted on, and nothing failed.
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&report_path);
    let stats = &report["run"]["stats"];
    let all = requests(&collection());
    assert_eq!(stats["requests"]["total"], all.len(), "{stdout}");
    assert_eq!(stats["requests"]["failed"], 0, "{stdout}");
    assert_eq!(stats["testScripts"]["failed"], 0, "{stdout}");
    assert_eq!(stats["assertions"]["failed"], 0, "{stdout}");
    assert!(
        stats["assertions"]["total"].as_u64().unwrap() >= 3 * all.len() as u64,
        "{stdout}"
    );
    assert_eq!(report["run"]["failures"], json!([]), "{stdout}");
}
