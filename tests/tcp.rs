//! The demo's router on a real socket, driven by a real HTTP client (reqwest), with the
//! demo's configuration of the other suites (the test secret, issuer and audience).

mod common;
use common::*;

use serde_json::json;
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;

/// Every event of this process, whatever thread the server runs on.
fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        capture
    })
}

/// The one event logged for the request with id `rid`.
fn event_of(rid: &str) -> Captured {
    let events: Vec<_> = capture()
        .events()
        .into_iter()
        .filter(|e| e.get("request_id") == Some(rid))
        .collect();
    assert_eq!(events.len(), 1, "{rid}: {events:#?}");
    events[0].clone()
}

/// A demo token with `scope`, expiring `exp_in` seconds from now.
fn token(scope: &str, exp_in: i64) -> String {
    hs256(&claims(json!({ "scope": scope, "exp": now() + exp_in })))
}

#[tokio::test]
async fn demo_over_tcp() {
    let (base, server) = serve_demo().await;
    let client = reqwest::Client::new();

    let r = go(client.get(format!("{base}/public"))).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));

    let r = go(client
        .get(format!("{base}/me"))
        .header("x-request-id", "tcp-req-1"))
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-request-id"], "tcp-req-1");
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"demo\"");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reason"], "credentials_missing");
    assert_eq!(body["request_id"], "tcp-req-1");

    let good = token("read", 3600);
    let r = go(client.get(format!("{base}/me")).bearer_auth(&good)).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["sub"], "alice");

    let r = go(client.get(format!("{base}/admin")).bearer_auth(&good)).await;
    assert_eq!(r.status(), 403);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"admin\""), "{challenge}");

    let admin = token("read admin", 3600);
    let r = go(client.get(format!("{base}/admin")).bearer_auth(&admin)).await;
    assert_eq!(r.status(), 200);

    let expired = token("read", -7200);
    let r = go(client.get(format!("{base}/me")).bearer_auth(&expired)).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reason"], "token_expired");
    assert!(body["expired_at"].as_str().is_some());

    server.abort();
}

/// Sends a request the client built.
async fn go(request: reqwest::RequestBuilder) -> reqwest::Response {
    request.send().await.unwrap()
}

/// The "trustworthy by default" findings, through the demo on a real socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_over_tcp_is_trustworthy_by_default() {
    capture();
    let (base, server) = serve_demo().await;
    let client = reqwest::Client::new();
    let jwt = |edits: Value| hs256(&claims(edits));
    let get = |path: &str, rid: &str| {
        client
            .get(format!("{base}{path}"))
            .header("x-request-id", rid)
    };
    let reason = |body: &Value| body["reason"].as_str().unwrap_or_default().to_owned();

    // An application's own `?token=` never conflicts with a valid Authorization.
    let good = jwt(json!({}));
    let r = go(get("/me?token=page2&jwt=x&api_key=y", "t-1").bearer_auth(&good)).await;
    assert_eq!(r.status(), 200);
    let r = go(get("/me?access_token=page2", "t-2").bearer_auth(&good)).await;
    assert_eq!(r.status(), 400);

    // Token checks.
    for (rid, token, want) in [
        (
            "t-aud",
            jwt(json!({ "aud": "another-service" })),
            "token_audience_mismatch",
        ),
        (
            "t-noaud",
            jwt(json!({ "aud": null })),
            "token_claim_missing",
        ),
        (
            "t-crit",
            hs256_raw_header(r#"{"alg":"HS256","crit":["x-unknown"]}"#, &good_claims()),
            "token_crit_unsupported",
        ),
        (
            "t-crit-empty",
            hs256_raw_header(r#"{"alg":"HS256","crit":[]}"#, &good_claims()),
            "token_malformed",
        ),
        (
            "t-typ",
            hs256_raw_header(
                r#"{"alg":"HS256","typ":"application/dpop+jwt"}"#,
                &good_claims(),
            ),
            "token_type_rejected",
        ),
        ("t-sub", jwt(json!({ "sub": 123 })), "token_claim_invalid"),
        // The demo's leeway is 30 s: expired from exp + 30 on.
        ("t-exp", jwt(json!({ "exp": now() - 30 })), "token_expired"),
    ] {
        let r = go(get("/me", rid).bearer_auth(&token)).await;
        assert_eq!(r.status(), 401, "{rid}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{rid}: {challenge}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(reason(&body), want, "{rid}: {body}");
        assert_eq!(event_of(rid).field("reason"), want, "{rid}");
    }
    let r = go(get("/me", "t-exp-ok").bearer_auth(jwt(json!({ "exp": now() - 25 })))).await;
    assert_eq!(r.status(), 200);

    // Enforce mode corrects only what is certain.
    let r = go(get("/legacy-forbidden", "t-lf-1")).await;
    assert_eq!(r.status(), 401);
    let r = go(get("/legacy-forbidden", "t-lf-2").header("cookie", "JSESSIONID=abc123xyz")).await;
    assert_eq!(r.status(), 403);
    let r = go(get("/orders", "t-orders-1").bearer_auth(&good)).await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 403, "{body}");
    let revoked = jwt(json!({ "jti": "revoked", "scope": "orders" }));
    let r = go(get("/orders", "t-orders-2").bearer_auth(&revoked)).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
    assert_eq!(
        event_of("t-orders-2").field("reason"),
        "upstream_token_refused"
    );
    let r = go(get("/legacy", "t-legacy").bearer_auth("wrong-token-1")).await;
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );

    // API keys: two fields conflict; answers are private.
    let r = go(get("/key", "t-key-1")
        .header("x-api-key", "demo-key-123")
        .header("x-api-key", "other-key"))
    .await;
    assert_eq!(r.status(), 400);
    let r = go(get("/key", "t-key-2").header("x-api-key", "demo-key-123")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "private");

    // The session cookie after 100 others, and beside a pair that is not UTF-8.
    let many: Vec<String> = (0..100).map(|i| format!("c{i}=v")).collect();
    let r = go(get("/session", "t-s-1").header(
        "cookie",
        format!("{}; demo_session=s-valid", many.join("; ")),
    ))
    .await;
    assert_eq!(r.status(), 200);
    let raw = reqwest::header::HeaderValue::from_bytes(b"x=\xff; demo_session=s-valid").unwrap();
    let r = go(get("/session", "t-s-2").header("cookie", raw)).await;
    assert_eq!(r.status(), 200);

    // A nameless cookie never shows in the log.
    let r = go(get("/session", "t-s-3").header("cookie", "s-valid")).await;
    assert_eq!(r.status(), 401);
    let e = event_of("t-s-3");
    assert_eq!(e.field("reason"), "credentials_missing");
    assert!(!e.line().contains("s-valid"), "{}", e.line());

    // Basic: an empty user-id reaches the verifier; two Basic fields get a Basic challenge.
    let r = go(get("/basic", "t-b-1").basic_auth("", Some("pass"))).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(reason(&body), "basic_user_unknown");
    let r = go(get("/any", "t-b-2")
        .header("authorization", "Basic YTpi")
        .header("authorization", "Basic Yzpk"))
    .await;
    assert_eq!(r.status(), 400);
    let challenges: Vec<_> = r.headers().get_all("www-authenticate").iter().collect();
    assert_eq!(challenges, [r#"Basic realm="demo", charset="UTF-8""#]);

    server.abort();
}
