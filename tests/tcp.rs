//! The demo's router on a real socket, driven by a real HTTP client.

mod common;
use common::demo;

use auth_diagnostics::DetailMode;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;

/// Every event of this process, whatever thread the server runs on.
fn capture() -> &'static common::Capture {
    static CAPTURE: OnceLock<common::Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = common::Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        capture
    })
}

/// The one event logged for the request with id `rid`.
fn event_of(rid: &str) -> common::Captured {
    let events: Vec<_> = capture()
        .events()
        .into_iter()
        .filter(|e| e.get("request_id") == Some(rid))
        .collect();
    assert_eq!(events.len(), 1, "{rid}: {events:#?}");
    events[0].clone()
}

async fn serve(cfg: &demo::DemoConfig) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(&cfg.addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = demo::app(cfg);
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), server)
}

/// A demo token with `edits` applied (`null` removes a claim), signed with `header` JSON.
fn token_with(cfg: &demo::DemoConfig, header: &str, edits: Value) -> String {
    use base64::Engine as _;
    let now = common::now();
    let mut claims: Map<String, Value> = json!({
        "iss": cfg.issuer, "aud": cfg.audience, "sub": "alice", "iat": now - 10, "exp": now + 3600,
    })
    .as_object()
    .unwrap()
    .clone();
    for (k, v) in edits.as_object().unwrap() {
        if v.is_null() {
            claims.remove(k);
        } else {
            claims.insert(k.clone(), v.clone());
        }
    }
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let message = format!(
        "{}.{}",
        e.encode(header),
        e.encode(serde_json::to_vec(&claims).unwrap())
    );
    let key = EncodingKey::from_secret(cfg.jwt_secret.as_bytes());
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
        .unwrap();
    format!("{message}.{sig}")
}

fn config() -> demo::DemoConfig {
    demo::DemoConfig {
        addr: "127.0.0.1:0".into(),
        json_logs: false,
        detail: DetailMode::Verbose,
        jwt_secret: "tcp-test-secret".into(),
        issuer: "https://issuer.tcp.test".into(),
        audience: "tcp-api".into(),
    }
}

fn token(cfg: &demo::DemoConfig, scope: &str, exp_in: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = json!({
        "iss": cfg.issuer, "aud": cfg.audience, "sub": "alice",
        "scope": scope, "iat": now - 10, "exp": now + exp_in,
    });
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(cfg.jwt_secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn demo_over_tcp() {
    let cfg = config();
    let (base, server) = serve(&cfg).await;
    let client = reqwest::Client::new();

    let r = client.get(format!("{base}/public")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));

    let r = client
        .get(format!("{base}/me"))
        .header("x-request-id", "tcp-req-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-request-id"], "tcp-req-1");
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"demo\"");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reason"], "credentials_missing");
    assert_eq!(body["request_id"], "tcp-req-1");

    let good = token(&cfg, "read", 3600);
    let r = client
        .get(format!("{base}/me"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["sub"], "alice");

    let r = client
        .get(format!("{base}/admin"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"admin\""), "{challenge}");

    let admin = token(&cfg, "read admin", 3600);
    let r = client
        .get(format!("{base}/admin"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let expired = token(&cfg, "read", -7200);
    let r = client
        .get(format!("{base}/me"))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reason"], "token_expired");
    assert!(body["expired_at"].as_str().is_some());

    server.abort();
}

/// The "trustworthy by default" findings, through the demo on a real socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_over_tcp_is_trustworthy_by_default() {
    capture();
    let cfg = config();
    let (base, server) = serve(&cfg).await;
    let client = reqwest::Client::new();
    let jwt = |edits: Value| token_with(&cfg, r#"{"alg":"HS256","typ":"JWT"}"#, edits);
    let get = |path: &str, rid: &str| {
        client
            .get(format!("{base}{path}"))
            .header("x-request-id", rid)
    };
    let reason = |body: &Value| body["reason"].as_str().unwrap_or_default().to_owned();

    // An application's own `?token=` never conflicts with a valid Authorization.
    let good = jwt(json!({}));
    let r = get("/me?token=page2&jwt=x&api_key=y", "t-1")
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = get("/me?access_token=page2", "t-2")
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
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
            token_with(&cfg, r#"{"alg":"HS256","crit":["x-unknown"]}"#, json!({})),
            "token_crit_unsupported",
        ),
        (
            "t-crit-empty",
            token_with(&cfg, r#"{"alg":"HS256","crit":[]}"#, json!({})),
            "token_malformed",
        ),
        (
            "t-typ",
            token_with(
                &cfg,
                r#"{"alg":"HS256","typ":"application/dpop+jwt"}"#,
                json!({}),
            ),
            "token_type_rejected",
        ),
        ("t-sub", jwt(json!({ "sub": 123 })), "token_claim_invalid"),
        // The demo's leeway is 30 s: expired from exp + 30 on.
        (
            "t-exp",
            jwt(json!({ "exp": common::now() - 30 })),
            "token_expired",
        ),
    ] {
        let r = get("/me", rid).bearer_auth(&token).send().await.unwrap();
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
    let r = get("/me", "t-exp-ok")
        .bearer_auth(jwt(json!({ "exp": common::now() - 25 })))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Enforce mode corrects only what is certain.
    let r = get("/legacy-forbidden", "t-lf-1").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = get("/legacy-forbidden", "t-lf-2")
        .header("cookie", "JSESSIONID=abc123xyz")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = get("/orders", "t-orders-1")
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 403, "{body}");
    let revoked = jwt(json!({ "jti": "revoked", "scope": "orders" }));
    let r = get("/orders", "t-orders-2")
        .bearer_auth(&revoked)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
    assert_eq!(
        event_of("t-orders-2").field("reason"),
        "upstream_token_refused"
    );
    let r = get("/legacy", "t-legacy")
        .bearer_auth("wrong-token-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );

    // API keys: two fields conflict; answers are private.
    let r = get("/key", "t-key-1")
        .header("x-api-key", "demo-key-123")
        .header("x-api-key", "other-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = get("/key", "t-key-2")
        .header("x-api-key", "demo-key-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "private");

    // The session cookie after 100 others, and beside a pair that is not UTF-8.
    let many: Vec<String> = (0..100).map(|i| format!("c{i}=v")).collect();
    let r = get("/session", "t-s-1")
        .header(
            "cookie",
            format!("{}; demo_session=s-valid", many.join("; ")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let raw = reqwest::header::HeaderValue::from_bytes(b"x=\xff; demo_session=s-valid").unwrap();
    let r = get("/session", "t-s-2")
        .header("cookie", raw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A nameless cookie never shows in the log.
    let r = get("/session", "t-s-3")
        .header("cookie", "s-valid")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let e = event_of("t-s-3");
    assert_eq!(e.field("reason"), "credentials_missing");
    assert!(!e.line().contains("s-valid"), "{}", e.line());

    // Basic: an empty user-id reaches the verifier; two Basic fields get a Basic challenge.
    let r = get("/basic", "t-b-1")
        .basic_auth("", Some("pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(reason(&body), "basic_user_unknown");
    let r = get("/any", "t-b-2")
        .header("authorization", "Basic YTpi")
        .header("authorization", "Basic Yzpk")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let challenges: Vec<_> = r.headers().get_all("www-authenticate").iter().collect();
    assert_eq!(challenges, [r#"Basic realm="demo", charset="UTF-8""#]);

    server.abort();
}
