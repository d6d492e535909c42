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

/// tower-http's request-id layers outside ours: the id they set is the one we log and echo.
#[tokio::test]
async fn works_with_tower_http_request_ids() {
    use tower_http::request_id::{
        MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
    };

    #[derive(Clone)]
    struct Fixed;
    impl MakeRequestId for Fixed {
        fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<RequestId> {
            Some(RequestId::new(http::HeaderValue::from_static(
                "from-tower-http",
            )))
        }
    }

    let app = bearer_app(auth_diagnostics::AuthDiagnostics::new())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(Fixed));
    let out = send(app, get("/me", &[])).await;
    assert_eq!(out.status, 401);
    assert_eq!(out.header("x-request-id"), Some("from-tower-http"));
    assert_eq!(out.problem()["request_id"], "from-tower-http");
    assert_eq!(out.event().field("request_id"), "from-tower-http");
}
