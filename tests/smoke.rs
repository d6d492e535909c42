mod common;
use common::*;

#[tokio::test]
async fn good_token_reaches_the_handler() {
    let app = bearer_app(auth_diagnostics::AuthDiagnostics::new());
    let token = hs256(&good_claims());
    let out = send(
        app,
        get("/me", &[("authorization", &format!("Bearer {token}"))]),
    )
    .await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json()["sub"], "alice");
    assert!(out.events.is_empty());
}

#[tokio::test]
async fn missing_credentials() {
    let app = bearer_app(auth_diagnostics::AuthDiagnostics::new());
    let out = send(app, get("/me", &[])).await;
    assert_eq!(out.status, 401);
    let c = out.challenge();
    assert_eq!(c.scheme, "Bearer");
    assert_eq!(c.param("realm"), Some("api"));
    assert_eq!(c.param("error"), None);
    assert_eq!(out.problem()["reason"], "credentials_missing");
    assert_eq!(out.event().field("reason"), "credentials_missing");
    assert_eq!(out.event().level, tracing::Level::INFO);
}
