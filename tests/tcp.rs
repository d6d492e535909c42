//! The demo's router on a real socket, driven by a real HTTP client.

#[path = "../examples/demo.rs"]
#[allow(dead_code)]
mod demo;

use auth_diagnostics::DetailMode;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

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
    let listener = tokio::net::TcpListener::bind(&cfg.addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg2 = cfg.clone();
    let server = tokio::spawn(async move { axum::serve(listener, demo::app(&cfg2)).await });
    let base = format!("http://{addr}");
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
