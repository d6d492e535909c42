//! The demo's browser contract: CORS for its page origin (`DEMO_APP_ADDR`), `/maybe`
//! (optional Bearer), the login page and the 303 of a session route to it, and the CSRF
//! origin check on `POST /session`.
//!
//! The first tests send requests to the demo's router in-process, as a browser would write
//! them (`Origin`, `Sec-Fetch-*`, preflights). The last one is a real browser: Debian's
//! `chromium`, headless, driven by npm `playwright-core` (interop/browser-check.mjs), with
//! the demo on one loopback origin and its page on another, and opens WebSockets to the
//! demo's `/ws` from the page (the token as a subprotocol). It needs Node and Chromium
//! (`common::node`): it skips without them, except in CI, where it must run.

mod common;
use common::provider::node_json_within;
use common::*;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// The demo's address in the in-process tests (never bound) and its page's.
const DEMO_ADDR: &str = "127.0.0.1:4100";
const APP_ADDR: &str = "127.0.0.1:4101";
const DEMO_ORIGIN: &str = "http://127.0.0.1:4100";
const APP_ORIGIN: &str = "http://127.0.0.1:4101";

/// The demo's configuration with a page at [`APP_ADDR`].
fn cfg() -> demo::DemoConfig {
    let mut cfg = demo_config(DetailMode::Verbose);
    cfg.addr = DEMO_ADDR.into();
    cfg.app_addr = Some(APP_ADDR.into());
    cfg
}

fn app() -> axum::Router {
    demo::app(&cfg())
}

/// A request with `method`, `uri` and text headers.
fn req(method: Method, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    request(
        method,
        uri,
        headers.iter().map(|(k, v)| (*k, hv(v))).collect(),
    )
}

/// The comma-separated tokens of header `name`, lower-cased.
fn tokens(out: &Outcome, name: &str) -> Vec<String> {
    out.header_all(name)
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// `out` may be read by a script on `origin`: the origin is allowed, with credentials, and
/// the challenge and the request id are exposed.
#[track_caller]
fn readable_from(out: &Outcome, origin: &str) {
    assert_eq!(
        out.header("access-control-allow-origin"),
        Some(origin),
        "{:?}",
        out.headers
    );
    assert_eq!(out.header("access-control-allow-credentials"), Some("true"));
    let exposed = tokens(out, "access-control-expose-headers");
    for name in ["www-authenticate", "x-request-id"] {
        assert!(
            exposed.iter().any(|e| e == name),
            "{name} not exposed: {exposed:?}"
        );
    }
}

/// `return_to` of a login redirect, percent-decoded.
#[track_caller]
fn return_to(location: &str) -> String {
    let query = location
        .strip_prefix("/login?")
        .unwrap_or_else(|| panic!("not the login page: {location}"));
    let value = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("return_to="))
        .unwrap_or_else(|| panic!("no return_to: {location}"));
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).expect("percent-encoding"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

// CORS ----------------------------------------------------------------------------------

#[tokio::test]
async fn preflights_from_the_page_origin_are_answered_before_authentication() {
    for origin in [APP_ORIGIN, "http://localhost:4101"] {
        let out = send(
            app(),
            req(
                Method::OPTIONS,
                "/me",
                &[
                    ("origin", origin),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", "authorization"),
                ],
            ),
        )
        .await;
        assert_eq!(out.status, 200, "{origin}: {:?}", out.headers);
        assert_eq!(out.header("access-control-allow-origin"), Some(origin));
        assert_eq!(out.header("access-control-allow-credentials"), Some("true"));
        let methods = tokens(&out, "access-control-allow-methods");
        assert!(methods.contains(&"get".into()) && methods.contains(&"post".into()));
        let headers = tokens(&out, "access-control-allow-headers");
        for h in ["authorization", "content-type"] {
            assert!(headers.contains(&h.into()), "{h}: {headers:?}");
        }
        assert!(out.events.is_empty(), "{:#?}", out.events);
    }

    // A preflight gets a request id too: the one it sent, or a fresh one.
    let out = send(
        app(),
        req(
            Method::OPTIONS,
            "/session",
            &[
                ("origin", APP_ORIGIN),
                ("access-control-request-method", "POST"),
                ("x-request-id", "preflight-1"),
            ],
        ),
    )
    .await;
    assert_eq!(out.header("x-request-id"), Some("preflight-1"));
}

#[tokio::test]
async fn rejections_are_readable_from_the_page_origin() {
    // The Bearer layer's own 401.
    let out = send(app(), get("/me", &[("origin", APP_ORIGIN)])).await;
    out.check(&expect("credentials_missing").verbose().realm("demo"));
    readable_from(&out, APP_ORIGIN);

    // Its localhost spelling.
    let out = send(app(), get("/me", &[("origin", "http://localhost:4101")])).await;
    assert_eq!(out.status, 401);
    readable_from(&out, "http://localhost:4101");

    // Other schemes, and answers the outermost layer completed or corrected.
    for (path, status) in [
        ("/session", 401),
        ("/basic", 401),
        ("/key", 401),
        ("/any", 401),
        ("/legacy", 401),
        ("/legacy-forbidden", 401),
        ("/mcp", 401),
    ] {
        let out = send(app(), get(path, &[("origin", APP_ORIGIN)])).await;
        assert_eq!(out.status, status, "{path}: {}", out.text());
        assert!(!out.challenges().is_empty(), "{path}: a challenge");
        readable_from(&out, APP_ORIGIN);
    }

    // A success is readable too.
    let app = app();
    let token = hs256(&claims(json!({ "scope": "read" })));
    let out = send(
        app,
        get(
            "/me",
            &[("origin", APP_ORIGIN), ("authorization", &bearer(&token))],
        ),
    )
    .await;
    assert_eq!(out.ok()["sub"], good_claims()["sub"]);
    readable_from(&out, APP_ORIGIN);
}

#[tokio::test]
async fn other_origins_are_not_allowed() {
    for origin in ["http://evil.example", "http://127.0.0.1:4102", DEMO_ORIGIN] {
        let out = send(app(), get("/me", &[("origin", origin)])).await;
        assert_eq!(out.status, 401);
        assert_eq!(
            out.header("access-control-allow-origin"),
            None,
            "{origin}: {:?}",
            out.headers
        );
    }
    // Without DEMO_APP_ADDR the demo has no CORS at all.
    let out = send(
        demo_app(DetailMode::Verbose),
        get("/me", &[("origin", APP_ORIGIN)]),
    )
    .await;
    assert_eq!(out.status, 401);
    assert_eq!(out.header("access-control-allow-origin"), None);
    assert_eq!(out.header("access-control-allow-credentials"), None);
}

#[test]
fn page_origins_are_the_address_and_its_loopback_spellings() {
    assert_eq!(
        demo::page_origins("127.0.0.1:3001"),
        ["http://127.0.0.1:3001", "http://localhost:3001"]
    );
    assert_eq!(
        demo::page_origins("localhost:3001"),
        ["http://localhost:3001", "http://127.0.0.1:3001"]
    );
    assert_eq!(
        demo::page_origins("[::1]:3001"),
        [
            "http://[::1]:3001",
            "http://localhost:3001",
            "http://127.0.0.1:3001"
        ]
    );
    assert_eq!(
        demo::page_origins("0.0.0.0:3001"),
        [
            "http://0.0.0.0:3001",
            "http://localhost:3001",
            "http://127.0.0.1:3001"
        ]
    );
    assert_eq!(
        demo::page_origins("192.0.2.7:3001"),
        ["http://192.0.2.7:3001"]
    );
}

// /maybe ---------------------------------------------------------------------------------

#[tokio::test]
async fn maybe_is_anonymous_only_without_credentials() {
    let app = app();
    let out = send(app.clone(), get("/maybe", &[])).await;
    assert_eq!(out.status, 200, "{}", out.text());
    assert_eq!(out.json(), json!({ "anonymous": true }));
    // Logged at most at debug level: an anonymous request is no failure.
    assert!(
        out.events.iter().all(|e| e.level >= Level::DEBUG),
        "{:#?}",
        out.events
    );

    let token = hs256(&claims(json!({ "scope": "read" })));
    let out = send(
        app.clone(),
        get("/maybe", &[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(out.ok()["sub"], good_claims()["sub"]);

    // Credentials that fail are never anonymous.
    let expired = hs256(&claims(json!({ "iat": now() - 7200, "exp": now() - 3600 })));
    for (what, authorization) in [
        ("garbage", "Bearer not-a-token".to_owned()),
        ("expired", bearer(&expired)),
        ("another scheme", basic("alice", "wonderland")),
    ] {
        let out = send(
            app.clone(),
            get("/maybe", &[("authorization", &authorization)]),
        )
        .await;
        assert_eq!(out.status, 401, "{what}: {}", out.text());
        assert_eq!(
            out.challenge().scheme.to_ascii_lowercase(),
            "bearer",
            "{what}"
        );
        assert_ne!(out.problem()["reason"], "credentials_missing", "{what}");
    }
}

// The login page and the 303 ----------------------------------------------------------

#[tokio::test]
async fn login_page_is_html_without_authentication() {
    let out = send(app(), get("/login?return_to=%2Fsession", &[])).await;
    assert_eq!(out.status, 200);
    assert!(
        out.header("content-type")
            .is_some_and(|ct| ct.starts_with("text/html")),
        "{:?}",
        out.headers
    );
    let html = out.text();
    assert!(html.contains("<title>Sign in"), "{html}");
    // The page never echoes return_to into the HTML; its script checks it is a path here.
    assert!(html.contains("return_to"), "{html}");
    assert!(out.events.is_empty(), "{:#?}", out.events);
}

#[tokio::test]
async fn a_failing_navigation_to_a_session_route_goes_to_the_login_page() {
    let app = app();
    for headers in [
        &[("sec-fetch-mode", "navigate"), ("sec-fetch-site", "none")][..],
        // Without Fetch Metadata: an Accept that prefers HTML.
        &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")][..],
        &[
            ("sec-fetch-mode", "navigate"),
            ("cookie", "demo_session=s-expired"),
        ][..],
    ] {
        let out = send(app.clone(), get("/session?tab=2", headers)).await;
        assert_eq!(out.status, 303, "{headers:?}: {}", out.text());
        let location = out.header("location").expect("Location");
        assert_eq!(return_to(location), "/session?tab=2", "{location}");
    }

    // fetch, XHR and other clients keep the 401 and its challenge.
    for headers in [
        &[][..],
        &[("sec-fetch-mode", "cors"), ("accept", "text/html")][..],
        &[("accept", "application/json")][..],
    ] {
        let out = send(app.clone(), get("/session", headers)).await;
        assert_eq!(out.status, 401, "{headers:?}");
        assert_eq!(out.problem()["reason"], "credentials_missing");
    }

    // A navigation with a valid session reaches the route.
    let out = send(
        app,
        get(
            "/session",
            &[
                ("sec-fetch-mode", "navigate"),
                ("cookie", "demo_session=s-valid"),
            ],
        ),
    )
    .await;
    assert_eq!(out.ok()["id"], "alice");
}

// POST /session and CSRF ----------------------------------------------------------------

#[tokio::test]
async fn session_posts_must_come_from_the_demo_origin() {
    let app = app();
    let post = |headers: &[(&str, &str)]| {
        let mut all = vec![("host", DEMO_ADDR), ("cookie", "demo_session=s-valid")];
        all.extend_from_slice(headers);
        req(Method::POST, "/session", &all)
    };

    // Same origin, or a client that sends neither Origin nor Fetch Metadata.
    for headers in [
        &[("origin", DEMO_ORIGIN)][..],
        &[("sec-fetch-site", "same-origin")][..],
        &[("sec-fetch-site", "none")][..],
        &[][..],
    ] {
        let out = send(app.clone(), post(headers)).await;
        let body = out.ok();
        assert_eq!(body["id"], "alice", "{headers:?}");
        assert_eq!(body["updated"], true, "{headers:?}");
    }

    // Another origin, even the page's, which CORS allows to read answers: CORS is about
    // reading, not about acting with the user's cookie.
    for headers in [
        &[("origin", APP_ORIGIN), ("sec-fetch-site", "same-site")][..],
        &[("origin", "http://evil.example")][..],
        &[("origin", "null")][..],
        &[("sec-fetch-site", "cross-site")][..],
        &[("sec-fetch-site", "same-site")][..],
    ] {
        let out = send(app.clone(), post(headers)).await;
        out.check(&expect("cross_site_request").verbose().realm("demo"));
    }

    // The page's origin can read the refusal.
    let out = send(app, post(&[("origin", APP_ORIGIN)])).await;
    assert_eq!(out.status, 403);
    readable_from(&out, APP_ORIGIN);
}

// The page -------------------------------------------------------------------------------

#[tokio::test]
async fn the_page_calls_the_demo_by_its_url() {
    let page = demo::page(&cfg());
    let res = page
        .oneshot(get("/app", &[]))
        .await
        .expect("the page answers");
    assert_eq!(res.status(), 200);
    let html =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(
        html.contains(&format!(r#"data-demo="{DEMO_ORIGIN}""#)),
        "{html}"
    );
    assert!(
        html.contains(&format!(r#"action="{DEMO_ORIGIN}/session""#)),
        "{html}"
    );

    // An unspecified listen address becomes the loopback one for the browser.
    let mut wild = cfg();
    wild.addr = "0.0.0.0:4100".into();
    let res = demo::page(&wild).oneshot(get("/app", &[])).await.unwrap();
    let html =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(
        html.contains(r#"data-demo="http://127.0.0.1:4100""#),
        "{html}"
    );
}

// A real browser ------------------------------------------------------------------------

/// The demo on one free loopback port, its page on a second (`DEMO_APP_ADDR`), and the same
/// page on a third that the demo's CORS does not allow: the three base URLs and the tasks.
async fn serve_demo_and_page() -> ([String; 3], Vec<JoinHandle<()>>) {
    let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let (demo_l, page_l, other_l) = (
        bind().await.unwrap(),
        bind().await.unwrap(),
        bind().await.unwrap(),
    );
    let mut cfg = demo_config(DetailMode::Verbose);
    cfg.addr = demo_l.local_addr().unwrap().to_string();
    cfg.app_addr = Some(page_l.local_addr().unwrap().to_string());
    let urls = [&demo_l, &page_l, &other_l].map(|l| format!("http://{}", l.local_addr().unwrap()));
    let mut tasks = Vec::new();
    for (listener, router) in [
        (demo_l, demo::app(&cfg)),
        (page_l, demo::page(&cfg)),
        (other_l, demo::page(&cfg)),
    ] {
        tasks.push(tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap()
        }));
    }
    (urls, tasks)
}

/// Runs interop/browser-check.mjs, which must succeed within five minutes (a browser start
/// on a loaded CI machine is slow), and parses the JSON line it prints last.
async fn browser_check(dir: &Path, chromium: &Path, args: &[&str]) -> Value {
    let chromium = chromium.to_str().expect("chromium's path is UTF-8");
    let args: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--chromium", chromium])
        .collect();
    node_json_within(dir, "browser-check.mjs", &args, Duration::from_secs(300)).await
}

/// A fetch result of the page's `probe`: status, challenge, problem reason.
#[track_caller]
fn fetched(out: &Value, name: &str, status: u16) -> Value {
    let r = &out["cross_origin"][name];
    assert_eq!(r["error"], Value::Null, "{name}: not a CORS error: {r}");
    assert_eq!(r["status"], status, "{name}: {r}");
    assert!(
        r["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{name}: the request id is readable: {r}"
    );
    r.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_against_the_demo_and_its_page() {
    let Some(dir) = common::node::interop() else {
        return;
    };
    let Some(chromium) = common::node::chromium() else {
        return;
    };
    // The routers are built first: building the JWT authenticator installs the crypto
    // provider the token helper signs with.
    let ([demo, app, other], tasks) = serve_demo_and_page().await;
    let token = hs256(&claims(json!({ "scope": "read" })));
    let expired = hs256(&claims(json!({ "exp": now() - 3600 })));
    let out = browser_check(
        &dir,
        &chromium,
        &[
            "--demo",
            &demo,
            "--app",
            &app,
            "--other",
            &other,
            "--token",
            &token,
            "--expired",
            &expired,
            "--secret",
            SECRET,
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
        ],
    )
    .await;
    for t in tasks {
        t.abort();
    }
    eprintln!("chromium {}", out["chromium"]);
    websockets_from_the_page(&out["websocket"], &app, &token);
    let sub = good_claims()["sub"].clone();

    // Cross-origin fetches from the page: a rejection is readable (status, challenge,
    // problem body), not a CORS error.
    assert!(
        out["app_title"]
            .as_str()
            .is_some_and(|t| t.contains("Another origin")),
        "{out}"
    );
    let me = fetched(&out, "me_no_token", 401);
    let challenges = http_auth::parse_challenges(me["www_authenticate"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("{me}: {e}"));
    assert_eq!(challenges.len(), 1, "{me}");
    assert!(challenges[0].scheme.eq_ignore_ascii_case("bearer"), "{me}");
    assert_eq!(
        challenges[0]
            .params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("realm"))
            .map(|(_, v)| v.to_unescaped()),
        Some("demo".to_owned()),
        "{me}"
    );
    assert_eq!(me["body"]["reason"], "credentials_missing", "{me}");
    assert_eq!(me["content_type"], "application/problem+json", "{me}");
    let session = fetched(&out, "session_no_cookie", 401);
    assert_eq!(
        session["body"]["reason"], "credentials_missing",
        "{session}"
    );
    assert!(session["www_authenticate"].is_string(), "{session}");

    // With a token (a preflight for Authorization, then the request).
    assert_eq!(fetched(&out, "me_valid", 200)["body"]["sub"], sub, "{out}");

    // /maybe: anonymous without a token, the subject with one, 401 with a bad one.
    assert_eq!(
        fetched(&out, "maybe_anonymous", 200)["body"],
        json!({ "anonymous": true })
    );
    assert_eq!(fetched(&out, "maybe_valid", 200)["body"]["sub"], sub);
    let bad = fetched(&out, "maybe_bad_token", 401);
    assert!(
        bad["www_authenticate"]
            .as_str()
            .is_some_and(|c| c.contains("invalid_token")),
        "{bad}"
    );

    // The page's own table ran the same probes.
    let checks = &out["page_checks"];
    assert_eq!(checks["GET /me"]["status"], 401, "{checks}");
    assert_eq!(checks["GET /maybe"]["status"], 200, "{checks}");

    // The control: from an origin the demo does not allow, the browser hides the answer.
    let blocked = &out["other_origin"]["me_no_token"];
    assert_eq!(blocked["status"], Value::Null, "{blocked}");
    assert!(
        blocked["error"]
            .as_str()
            .is_some_and(|e| e.contains("TypeError")),
        "{blocked}"
    );

    // A page navigation to /session without a cookie lands on the login page.
    let nav = &out["navigation"];
    let hops = nav["hops"].as_array().expect("hops");
    assert_eq!(hops.len(), 2, "one redirect: {nav}");
    assert_eq!(hops[0]["url"], format!("{demo}/session"), "{nav}");
    assert_eq!(hops[0]["status"], 303, "{nav}");
    let location = hops[0]["location"].as_str().expect("Location");
    assert_eq!(return_to(location), "/session", "{nav}");
    assert_eq!(nav["url"], format!("{demo}{location}"), "{nav}");
    assert_eq!(nav["status"], 200, "{nav}");
    assert!(
        nav["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("Sign in")),
        "{nav}"
    );
    assert_eq!(nav["heading"], "Sign in", "{nav}");

    // With the session cookie a navigation reaches the route.
    let nav = &out["navigation_with_cookie"];
    assert_eq!(nav["status"], 200, "{nav}");
    assert_eq!(
        nav["hops"].as_array().map(Vec::len),
        Some(1),
        "no redirect: {nav}"
    );
    let body: Value = serde_json::from_str(nav["body"].as_str().unwrap()).expect("JSON");
    assert_eq!(body["id"], "alice", "{nav}");

    // A same-origin POST (fetch from the demo's own login page) passes the origin check.
    let same = &out["same_origin_post"];
    assert_eq!(same["status"], 200, "{same}");
    assert_eq!(same["origin_sent"], demo, "{same}");
    let body: Value = serde_json::from_str(same["body"].as_str().unwrap()).expect("JSON");
    assert_eq!(body["updated"], true, "{same}");

    // A form on the page's origin posting to the demo, with the cookie: refused.
    let forged = &out["cross_site_post"];
    assert_eq!(forged["origin_sent"], app, "{forged}");
    assert_eq!(
        forged["cookie_sent"], true,
        "same site: the cookie goes along: {forged}"
    );
    assert_eq!(forged["sec_fetch_mode"], "navigate", "{forged}");
    assert_eq!(forged["status"], 403, "{forged}");
    assert_eq!(forged["url"], format!("{demo}/session"), "{forged}");
    let problem: Value = serde_json::from_str(forged["text"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("the page shows the problem body ({e}): {forged}"));
    assert_eq!(problem["reason"], "cross_site_request", "{forged}");
    assert_eq!(problem["status"], 403, "{forged}");

    login_page_stays_on_the_demo(&out["login_return_to"], &demo);
}

/// `new WebSocket(demo/ws, ["bearer", token, …])` from the page's origin: accepted, the
/// selected protocol never the token; refusals read as close code 4401 and the reason; a
/// token that expires two seconds after the socket opens closes it within a second of `exp`.
#[track_caller]
fn websockets_from_the_page(ws: &Value, app: &str, token: &str) {
    assert_eq!(ws["page_origin"], app, "{ws}");
    for (name, protocol, echo) in [
        ("valid", "bearer", "hello"),
        ("valid_chat", "chat", "chat line"),
    ] {
        let r = &ws[name];
        assert_eq!(r["opened"], true, "{name}: {r}");
        assert_eq!(r["protocol"], protocol, "{name}: {r}");
        assert_eq!(r["echoed"], echo, "{name}: {r}");
        assert_eq!(
            (&r["code"], &r["clean"]),
            (&json!(1000), &json!(true)),
            "{name}: {r}"
        );
    }
    assert!(
        !ws.to_string().contains(token),
        "the token is never shown back"
    );
    for (name, reason) in [
        ("no_token", "credentials_missing"),
        ("expired", "token_expired"),
    ] {
        let r = &ws[name];
        assert_eq!(
            r["opened"], true,
            "{name}: the refused upgrade is completed: {r}"
        );
        assert_eq!(
            (&r["code"], &r["reason"]),
            (&json!(4401), &json!(reason)),
            "{name}: {r}"
        );
        assert_eq!(r["clean"], true, "{name}: {r}");
    }
    let r = &ws["expiring"];
    assert_eq!(r["opened"], true, "{r}");
    assert_eq!(r["echoed"], "before expiry", "{r}");
    assert_eq!(
        (&r["code"], &r["reason"]),
        (&json!(4401), &json!("token_expired")),
        "{r}"
    );
    let exp_ms = r["exp"].as_i64().unwrap() * 1000;
    let (opened, closed) = (
        r["opened_at"].as_i64().unwrap(),
        r["closed_at"].as_i64().unwrap(),
    );
    eprintln!(
        "websocket: opened {} ms before exp, closed {} ms after",
        exp_ms - opened,
        closed - exp_ms
    );
    assert!(
        exp_ms - opened <= 3000,
        "opened {} ms before exp: {r}",
        exp_ms - opened
    );
    assert!(
        closed >= exp_ms,
        "closed {} ms before exp: {r}",
        exp_ms - closed
    );
    assert!(
        closed <= exp_ms + 1000,
        "closed {} ms after exp: {r}",
        closed - exp_ms
    );
}

/// The login page's "Sign in" with each `return_to` of interop/browser-check.mjs: the
/// browser goes to a URL of the demo's own origin, never to evil.example (a control
/// character the URL parser drops, `//host`, `/\host`, an absolute URL all go to `/`),
/// and no request left for another origin (the script aborts and records any).
#[track_caller]
fn login_page_stays_on_the_demo(out: &Value, demo: &str) {
    let results = out["results"].as_array().expect("results");
    assert_eq!(results.len(), 9, "{out}");
    let home = format!("{demo}/");
    for r in results {
        let navigated = r["navigated"].as_str().expect("navigated");
        assert!(navigated.starts_with(&home), "left the demo's origin: {r}");
        match r["return_to"].as_str().unwrap() {
            "%2Fsession%3Ftab%3D2" => {
                assert_eq!(navigated, format!("{demo}/session?tab=2"), "{r}");
                assert_eq!(
                    (&r["url"], &r["status"]),
                    (&json!(navigated), &json!(200)),
                    "{r}"
                );
                assert_eq!(r["shown"], "/session?tab=2", "{r}");
            }
            // A path of the demo that only looks like a host.
            "%2F.%2F%2Fevil.example%2F" => {}
            // The demo's `/` (a 404, which Chromium shows as its error page).
            _ => {
                assert_eq!(navigated, home, "{r}");
                assert_eq!(r["shown"], "/", "{r}");
            }
        }
    }
    assert_eq!(
        out["offsite"],
        json!([]),
        "requests to other origins: {out}"
    );
}
