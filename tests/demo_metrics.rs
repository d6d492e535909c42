//! The demo's `GET /metrics` (`DEMO_METRICS=1`, shared/spec/demo.md) over a real socket:
//! the Prometheus text exposition of the layer's metrics, and nothing a client chose in it.
//!
//! The recorder is global to the process: every assertion about what it holds is in one
//! test, and counters are compared as deltas between two scrapes.

mod common;
use common::*;

use serde_json::json;
use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use tokio::task::JoinHandle;

/// The demo (verbose, the test configuration) with `/metrics` on or off, on a free
/// loopback port: its base URL and the server task.
async fn serve(metrics: bool) -> (String, JoinHandle<()>) {
    let mut cfg = demo_config(DetailMode::Verbose);
    cfg.metrics = metrics;
    serve_demo_with(cfg).await
}

/// A fresh random word, so a value found in the exposition can only have come from here.
fn random_word() -> String {
    format!("{:016x}", RandomState::new().build_hasher().finish())
}

/// The exposition, which must be a 200 in the Prometheus text format.
async fn scrape(client: &reqwest::Client, base: &str) -> String {
    let r = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(r.headers().contains_key("x-request-id"));
    r.text().await.unwrap()
}

/// Sends the request the client built: its status.
async fn send(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.unwrap().status().as_u16()
}

/// Every sample of an exposition: `name{labels}` to value.
fn samples(exposition: &str) -> BTreeMap<String, f64> {
    exposition
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("`series value`");
            let value = value.parse().unwrap_or_else(|e| panic!("{l}: {e}"));
            (series.to_owned(), value)
        })
        .collect()
}

/// How much `series` grew from `before` to `after` (a series absent before was 0).
#[track_caller]
fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, series: &str) -> f64 {
    let now = after
        .get(series)
        .unwrap_or_else(|| panic!("no series {series} in {after:#?}"));
    now - before.get(series).unwrap_or(&0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_failures_and_successes_and_hold_nothing_the_client_chose() {
    let (base, server) = serve(true).await;
    let client = reqwest::Client::new();
    let before = samples(&scrape(&client, &base).await);

    // Nothing the client sends below may show up in the exposition.
    let (word, path_word, user, scheme_word) =
        (random_word(), random_word(), random_word(), random_word());
    let password = format!("pw-{}", random_word());
    let good = hs256(&good_claims());
    let evil_iss = format!("https://evil.example/{word}");
    let evil = hs256(&claims(json!({ "iss": evil_iss })));
    let other_scheme = format!("X{scheme_word} {}", random_word());
    let secrets = [
        good.as_str(),
        evil.as_str(),
        evil_iss.as_str(),
        &word,
        &path_word,
        &user,
        &password,
        &scheme_word,
    ];

    let get = |path: &str| client.get(format!("{base}{path}"));
    assert_eq!(send(get(&format!("/me?page={path_word}"))).await, 401);
    assert_eq!(
        send(get("/basic").basic_auth("alice", Some(&password))).await,
        401
    );
    assert_eq!(
        send(get("/basic").basic_auth(&user, Some(&password))).await,
        401
    );
    assert_eq!(send(get("/me").bearer_auth(&good)).await, 200);
    assert_eq!(send(get("/me").bearer_auth(&evil)).await, 401);
    assert_eq!(
        send(get("/me").header("authorization", &other_scheme)).await,
        401
    );
    assert_eq!(send(get(&format!("/{path_word}"))).await, 404);
    // Not behind any scheme: credentials, good or bad, change nothing.
    let scrape_with = get("/metrics").header("authorization", &other_scheme);
    assert_eq!(send(scrape_with).await, 200);

    let text = scrape(&client, &base).await;
    let after = samples(&text);
    for series in [
        r#"auth_diagnostics_failures_total{reason="credentials_missing",scheme="none",status="401"}"#,
        r#"auth_diagnostics_failures_total{reason="basic_password_mismatch",scheme="basic",status="401"}"#,
        r#"auth_diagnostics_failures_total{reason="basic_user_unknown",scheme="basic",status="401"}"#,
        r#"auth_diagnostics_failures_total{reason="token_issuer_mismatch",scheme="bearer",status="401"}"#,
        r#"auth_diagnostics_successes_total{scheme="bearer"}"#,
    ] {
        // Exactly once each: nested layers (the demo's outer one) do not count again.
        assert_eq!(delta(&before, &after, series), 1.0, "{series} in\n{text}");
    }
    let other: f64 = after
        .iter()
        .filter(|(s, _)| {
            s.starts_with("auth_diagnostics_failures_total{") && s.contains(r#"scheme="other""#)
        })
        .map(|(s, v)| v - before.get(s).unwrap_or(&0.0))
        .sum();
    assert_eq!(other, 1.0, "an unknown scheme word is `other`:\n{text}");

    for name in [
        "auth_diagnostics_failures_total",
        "auth_diagnostics_successes_total",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
        assert!(
            text.contains(&format!("# TYPE {name} counter\n")),
            "{name}:\n{text}"
        );
    }
    let histogram = "auth_diagnostics_verification_duration_seconds";
    assert!(text.contains(&format!("# HELP {histogram} ")), "{text}");
    assert!(
        text.contains(&format!("# TYPE {histogram} histogram\n")),
        "{text}"
    );
    let count = format!(r#"{histogram}_count{{family="hmac"}}"#);
    assert!(delta(&before, &after, &count) >= 1.0, "{text}");
    for le in ["0.00001", "0.05", "+Inf"] {
        let bucket = format!(r#"{histogram}_bucket{{family="hmac",le="{le}"}}"#);
        assert!(after.contains_key(&bucket), "{bucket} in\n{text}");
    }
    assert!(after.contains_key(&format!(r#"{histogram}_sum{{family="hmac"}}"#)));

    for secret in secrets {
        assert!(
            !text.contains(secret),
            "the exposition holds {secret:?}:\n{text}"
        );
    }
    assert!(!text.contains("evil.example"), "{text}");
    server.abort();
}

#[tokio::test]
async fn without_demo_metrics_there_is_no_metrics_route() {
    let (base, server) = serve(false).await;
    let client = reqwest::Client::new();
    for path in ["/metrics", "/no-such-route"] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert!(r.headers().contains_key("x-request-id"), "{path}");
        assert!(!r.headers().contains_key("www-authenticate"), "{path}");
    }
    server.abort();
}
