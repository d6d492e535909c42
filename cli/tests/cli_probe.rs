//! `auth-diagnostics probe`: the real binary against the demo (every check passes, on its
//! Bearer routes and on those that take Basic, an API key, a cookie or DPoP) and against a
//! deliberately broken server, one breakage per route (each is reported by its check id: a
//! broken MUST fails, a missed SHOULD warns); the token goes into a URL only with
//! `--query-token`; a metadata document on another origin is not fetched; usage errors
//! exit 2; the token never appears in any output.

// The library's test helpers and its demo (`examples/demo.rs`), from the repository root.
#[path = "../../tests/common/mod.rs"]
mod common;
use common::*;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, Uri};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The token the broken server accepts.
const TOKEN: &str = "probe-secret-token-4f2a9c";

/// What the probe printed, and its exit code.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The `--json` report.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    /// `summary.<key>` as a list of strings.
    fn ids(&self, key: &str) -> Vec<String> {
        let list = self.json()["summary"][key]
            .as_array()
            .cloned()
            .unwrap_or_default();
        list.iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }
}

/// Runs `auth-diagnostics probe ARGS` with `token` in `$PROBE_TOKEN` (when given), and
/// asserts the token appears in neither stdout nor stderr.
async fn probe(args: &[&str], token: Option<&str>) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_auth-diagnostics"));
    cmd.arg("probe").args(args).args(["--timeout", "5"]);
    if !args.contains(&"--rate") {
        cmd.args(["--rate", "50"]);
    }
    without_proxies(&mut cmd);
    if let Some(t) = token {
        cmd.env("PROBE_TOKEN", t)
            .args(["--token-env", "PROBE_TOKEN"]);
    }
    let out = cmd.output().await.expect("the binary runs");
    let run = Run {
        code: out.status.code().expect("an exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if let Some(t) = token.filter(|t| !t.trim().is_empty()) {
        assert!(!run.stdout.contains(t), "token in stdout: {}", run.stdout);
        assert!(!run.stderr.contains(t), "token in stderr: {}", run.stderr);
    }
    run
}

/// Asserts a `--json` run found nothing wrong, having sent `requests` requests.
#[track_caller]
fn assert_clean(run: &Run, requests: u64) {
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    let summary = &report["summary"];
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["warnings"], 0, "{summary}");
    assert_eq!(summary["requests"], requests, "{summary}");
    for exchange in report["requests"].as_array().unwrap() {
        let not_sent = exchange["checks"][0]["id"] == "sent";
        assert!(exchange["status"].is_u64() || not_sent, "{exchange}");
        for check in exchange["checks"].as_array().unwrap() {
            let rule = check["rule"].as_str().unwrap_or_default();
            assert!(rule.starts_with("R-") || rule == "reasons.md", "{check}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_passes_every_check() {
    let (base, server) = serve_demo().await;
    let me = format!("{base}/me");
    let mcp = format!("{base}/mcp");

    assert_clean(&probe(&["--json", &me], None).await, 4);
    let token = hs256(&good_claims());
    assert_clean(&probe(&["--json", &me], Some(&token)).await, 5);
    assert_clean(
        &probe(&["--json", "--query-token", &me], Some(&token)).await,
        7,
    );

    // /mcp advertises its metadata document: fetched and checked too.
    let token = hs256(&claims(json!({ "scope": "mcp:tools" })));
    let run = probe(&["--json", "--query-token", &mcp], Some(&token)).await;
    assert_clean(&run, 8);
    let report = run.json();
    let meta = &report["requests"][7];
    assert_eq!(meta["name"], "metadata");
    let ids: Vec<&str> = meta["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"resource") && ids.contains(&"authorization_servers"),
        "{ids:?}"
    );
    assert_eq!(
        report["requests"][4]["sent"]["authorization"],
        "Bearer <token>"
    );

    // The table for people says the same.
    let run = probe(&["--query-token", &mcp], Some(&token)).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.contains("PASS") && !run.stdout.contains("FAIL"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("access_token=<token>"),
        "{}",
        run.stdout
    );
    server.abort();
}

/// The routes that take no Bearer token answer `Bearer a b` and a bare token with their
/// own challenge and no error: right, so nothing fails (a wrong diagnosis of a conforming
/// server is a bug).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_of_other_schemes_pass() {
    let (base, server) = serve_demo().await;
    let token = hs256(&good_claims());
    for route in ["basic", "key", "session", "dpop"] {
        let url = format!("{base}/{route}");
        for token in [None, Some(token.as_str())] {
            let run = probe(&["--json", &url], token).await;
            assert_eq!(run.code, 0, "/{route}: {}{}", run.stdout, run.stderr);
            assert_eq!(run.ids("failed_checks"), Vec::<String>::new(), "/{route}");
            let table = probe(&[&url], token).await;
            assert!(!table.stdout.contains("FAIL"), "/{route}: {}", table.stdout);
        }
    }
    server.abort();
}

/// A token the resource refuses (expired; without the scope a route needs) is a correct
/// answer, not a broken server: a note that says why, and the checks that need an
/// accepted token are not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_a_note_not_a_failure() {
    let (base, server) = serve_demo().await;
    let expired = hs256(&claims(json!({ "exp": 1_000_000_000 })));
    let me = format!("{base}/me");
    let run = probe(&["--json", "--query-token", &me], Some(&expired)).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let report = run.json();
    let valid = &report["requests"][4];
    assert_eq!(valid["name"], "valid_token");
    assert_eq!(valid["checks"][0]["verdict"], "skip", "{valid}");
    let detail = valid["checks"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("the token was refused") && detail.contains("invalid_token"),
        "{detail}"
    );
    assert_eq!(
        report["summary"]["requests"], 5,
        "the query checks are not sent"
    );
    assert_eq!(report["requests"][5]["checks"][0]["verdict"], "skip");

    let run = probe(
        &["--json", &format!("{base}/admin")],
        Some(&hs256(&good_claims())),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.ids("failed_checks").is_empty());
    server.abort();
}

// A broken server ------------------------------------------------------------------------

/// The broken server's state: the address of a second server (another origin) and how
/// many requests reached it.
#[derive(Clone)]
struct Broken {
    elsewhere: String,
    stolen: Arc<AtomicUsize>,
    /// Requests that carried `access_token` in the query.
    in_query: Arc<AtomicUsize>,
}

/// What a conforming Bearer resource server answers: status and the challenge's `error`.
fn conforming(uri: &Uri, headers: &HeaderMap) -> (u16, Option<&'static str>) {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    let in_query = uri.query().is_some_and(|q| q.contains("access_token="));
    match auth {
        Some(_) if in_query => (400, Some("invalid_request")),
        Some(a) if a == format!("Bearer {TOKEN}") => (200, None),
        Some("Bearer a b") => (400, Some("invalid_request")),
        Some(a) if a.starts_with("Bearer ") => (401, Some("invalid_token")),
        _ => (401, None),
    }
}

/// `/{case}`: the conforming answer with the one thing `case` breaks.
async fn broken(
    State(st): State<Broken>,
    Path(case): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    // `ignores-query` follows OAuth 2.1: a token in the query is not looked at.
    let seen: Uri = match case.as_str() {
        "ignores-query" => uri.path().parse().unwrap(),
        _ => uri.clone(),
    };
    if uri.query().is_some_and(|q| q.contains("access_token")) {
        st.in_query.fetch_add(1, Ordering::SeqCst);
    }
    let (mut status, mut error) = conforming(&seen, &headers);
    let anonymous = headers.get("authorization").is_none() && uri.query().is_none();
    match case.as_str() {
        "forbidden" if anonymous => status = 403,
        "open" if anonymous => status = 200,
        "crash" if status == 400 && !uri.query().is_some_and(|q| q.contains("access_token")) => {
            status = 500
        }
        "wrong-error" if error.is_none() => error = Some("invalid_token"),
        "redirect" if anonymous => {
            let to = format!("{}/steal", st.elsewhere);
            return (StatusCode::FOUND, [("location", to)]).into_response();
        }
        _ => {}
    }
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut challenge = match error {
        Some(e) => format!("Bearer realm=\"t\", error=\"{e}\""),
        None => "Bearer realm=\"t\"".to_owned(),
    };
    if case == "far-meta" {
        let far = &st.elsewhere;
        challenge.push_str(&format!(
            ", resource_metadata=\"{far}/.well-known/oauth-protected-resource/{case}\""
        ));
    } else if case.ends_with("meta") {
        challenge.push_str(&format!(
            ", resource_metadata=\"http://{host}/.well-known/oauth-protected-resource/{case}\""
        ));
    }
    if case == "bad-syntax" {
        challenge = "Bearer realm=\"t".into();
    }
    let body_status = if case == "wrong-problem" { 400 } else { status };
    if status == 200 {
        return (StatusCode::OK, "{}").into_response();
    }
    let mut response = (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/problem+json")],
        json!({ "type": "about:blank", "status": body_status }).to_string(),
    )
        .into_response();
    let h = response.headers_mut();
    if case != "no-cache" {
        h.insert("cache-control", hv("no-store"));
    }
    if status == 401 && case != "no-challenge" || status == 400 {
        h.insert("www-authenticate", hv(challenge));
    }
    response
}

/// The metadata document of `/{case}`: right for `good-meta`, naming another resource for `meta`.
async fn metadata(Path(case): Path<String>, headers: HeaderMap) -> Response {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let resource = if case == "good-meta" {
        format!("http://{host}/{case}")
    } else {
        "http://wrong.invalid/meta".to_owned()
    };
    axum::Json(json!({ "resource": resource, "authorization_servers": ["https://as.invalid"] }))
        .into_response()
}

/// Serves the broken server and the other origin; the broken server's base URL and its state.
async fn serve_broken() -> (String, Broken) {
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stolen = Arc::new(AtomicUsize::new(0));
    let count = stolen.clone();
    let other_app = axum::Router::new().fallback(move || {
        count.fetch_add(1, Ordering::SeqCst);
        async { "stolen" }
    });
    let st = Broken {
        elsewhere: format!("http://localhost:{}", other.local_addr().unwrap().port()),
        stolen,
        in_query: Arc::new(AtomicUsize::new(0)),
    };
    tokio::spawn(async move { axum::serve(other, other_app).await.unwrap() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/{case}", get(broken))
        .route(
            "/.well-known/oauth-protected-resource/{case}",
            get(metadata),
        )
        .with_state(st.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, st)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_breakage_is_reported() {
    let (base, st) = serve_broken().await;
    // The conforming routes: no false alarm.
    let q = "--query-token";
    assert_clean(
        &probe(&["--json", q, &format!("{base}/good")], Some(TOKEN)).await,
        7,
    );
    assert_clean(
        &probe(&["--json", q, &format!("{base}/good-meta")], Some(TOKEN)).await,
        8,
    );

    // Broken MUSTs (and server faults) fail.
    let cases = [
        ("no-challenge", "no_credentials.challenge_present"),
        ("bad-syntax", "no_credentials.challenge_syntax"),
        ("crash", "malformed_authorization.status"),
        ("open", "no_credentials.status"),
        ("wrong-problem", "no_credentials.problem_status"),
        ("redirect", "no_credentials.redirect"),
        ("meta", "metadata.resource"),
    ];
    for (case, id) in cases {
        let run = probe(&["--json", q, &format!("{base}/{case}")], Some(TOKEN)).await;
        assert_eq!(run.code, 1, "{case}: {}{}", run.stdout, run.stderr);
        let failed = run.ids("failed_checks");
        assert!(
            failed.iter().any(|f| f == id),
            "{case}: {id} not in {failed:?}"
        );
        assert_eq!(run.json()["summary"]["ok"], false);
    }
    assert_eq!(
        st.stolen.load(Ordering::SeqCst),
        0,
        "a redirect was followed"
    );

    // Missed SHOULDs warn (RFC 9110 §11.4's 401, RFC 6750 §3.1's no error without
    // credentials), and so does this crate's own contract (no-store); --strict makes
    // each exit 1.
    let warned = [
        ("forbidden", "no_credentials.status"),
        ("wrong-error", "no_credentials.no_error"),
        ("no-cache", "no_credentials.cache_control"),
    ];
    for (case, id) in warned {
        let url = format!("{base}/{case}");
        let run = probe(&["--json", &url], Some(TOKEN)).await;
        assert_eq!(run.code, 0, "{case}: {}", run.stdout);
        assert!(
            run.ids("failed_checks").is_empty(),
            "{case}: {}",
            run.stdout
        );
        assert!(
            run.ids("warning_checks").contains(&id.to_owned()),
            "{case}: {id} not in {:?}",
            run.ids("warning_checks")
        );
        let run = probe(&["--json", "--strict", &url], Some(TOKEN)).await;
        assert_eq!(run.code, 1, "{case}: {}", run.stdout);
    }

    // A server that ignores query tokens (OAuth 2.1) accepts the header's token when both
    // are sent: RFC 6750's 400 is a SHOULD, so a warning, not a failure.
    let run = probe(
        &["--json", q, &format!("{base}/ignores-query")],
        Some(TOKEN),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        run.ids("warning_checks"),
        vec!["header_and_query.status".to_owned()]
    );
}

/// Without `--query-token` the token never goes into a URL: the two query requests are
/// listed as skipped, and the server sees no `access_token`; with it, they are sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_goes_into_a_url_only_with_query_token() {
    let (base, st) = serve_broken().await;
    let url = format!("{base}/good");
    let run = probe(&["--json", &url], Some(TOKEN)).await;
    assert_clean(&run, 5);
    assert_eq!(
        st.in_query.load(Ordering::SeqCst),
        0,
        "a token in the query was sent"
    );
    let report = run.json();
    for (i, name) in [(5, "token_in_query"), (6, "header_and_query")] {
        let e = &report["requests"][i];
        assert_eq!(e["name"], name);
        assert_eq!(e["status"], Value::Null);
        assert_eq!(e["checks"][0]["verdict"], "skip");
        assert!(e["checks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("--query-token"));
    }
    let table = probe(&[&url], Some(TOKEN)).await;
    assert!(table.stdout.contains("--query-token"), "{}", table.stdout);
    assert_eq!(st.in_query.load(Ordering::SeqCst), 0);

    assert_clean(
        &probe(&["--json", "--query-token", &url], Some(TOKEN)).await,
        7,
    );
    assert_eq!(st.in_query.load(Ordering::SeqCst), 2);
}

/// A `resource_metadata` on another origin is reported with its URL, never fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_on_another_origin_is_not_fetched() {
    let (base, st) = serve_broken().await;
    let run = probe(&["--json", &format!("{base}/far-meta")], None).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        run.ids("warning_checks"),
        vec!["metadata.metadata_origin".to_owned()]
    );
    let report = run.json();
    let detail = report["requests"][4]["checks"][0]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains(&st.elsewhere), "{detail}");
    assert_eq!(
        st.stolen.load(Ordering::SeqCst),
        0,
        "another origin was asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_be_reached_is_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/me", listener.local_addr().unwrap());
    drop(listener);
    let run = probe(&["--json", &url], Some(TOKEN)).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    let report = run.json();
    assert_eq!(report["summary"]["unreachable"], true);
    assert_eq!(report["summary"]["requests"], 1, "nothing more is sent");
    assert!(report["requests"][0]["error"]
        .as_str()
        .unwrap()
        .contains("cannot connect"));
    let run = probe(&[&url], None).await;
    assert!(run.stdout.contains("cannot be reached"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    for url in [
        "not a url",
        "ftp://127.0.0.1/x",
        "http://user:pw@127.0.0.1/me",
        "http://127.0.0.1:9/me?access_token=abc",
    ] {
        let run = probe(&[url], None).await;
        assert_eq!(run.code, 2, "{url}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.is_empty(), "{url}: {}", run.stdout);
    }
    let ok = "http://127.0.0.1:9/me";
    let run = probe(&[ok, "--token-file", "/nonexistent/token"], None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("token file"), "{}", run.stderr);
    let run = probe(&[ok, "--token-env", "PROBE_UNSET_VARIABLE_X"], None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = probe(&[ok], Some("   ")).await;
    assert_eq!(run.code, 2, "empty token: {}", run.stderr);
    let run = probe(&[ok, "--rate", "0"], None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);

    // A token file: read, used, never printed.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-probe");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let (base, _) = serve_broken().await;
    let file = file.to_str().unwrap();
    let run = probe(
        &["--json", &format!("{base}/good"), "--token-file", file],
        None,
    )
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
    assert_clean(&run, 5);
    assert!(!run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN));

    // A token that is not ASCII, with a multi-byte character across byte 7: a usage
    // error, never a panic; a token file that never ends: refused quickly.
    for odd in ["ééééxyz", "Beareré x", "bearer ééé"] {
        let run = probe(&[ok], Some(odd)).await;
        assert_eq!(run.code, 2, "{odd}: {}{}", run.stdout, run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    let started = std::time::Instant::now();
    let run = probe(&[ok, "--token-file", "/dev/zero"], None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("64 KiB"), "{}", run.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
