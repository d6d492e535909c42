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

/// The layer calls the very service instance it polled ready (tower's contract), on the
/// direct path and on the asynchronous verifier path.
#[tokio::test]
async fn calls_the_service_it_polled_ready() {
    use auth_diagnostics::{AuthDiagnostics, BasicAuthenticator, BasicCredentials, Principal};
    use axum::body::Body;
    use std::convert::Infallible;
    use std::task::{Context, Poll};
    use tower::{Layer, Service, ServiceExt};

    /// Panics when called without a successful `poll_ready` on the same instance.
    struct Strict {
        ready: bool,
    }
    impl Clone for Strict {
        fn clone(&self) -> Self {
            Strict { ready: false }
        }
    }
    impl Service<http::Request<Body>> for Strict {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            self.ready = true;
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: http::Request<Body>) -> Self::Future {
            assert!(self.ready, "called without poll_ready");
            self.ready = false;
            std::future::ready(Ok(http::Response::new(Body::from("ok"))))
        }
    }

    let layer = AuthDiagnostics::new()
        .bearer(jwt())
        .basic(BasicAuthenticator::new(|c: BasicCredentials| async move {
            Ok(Principal::new(c.user))
        }));
    let mut svc = layer.layer(Strict { ready: false });
    let token = hs256(&good_claims());
    for auth in [format!("Bearer {token}"), "Basic YWxpY2U6cHc=".to_owned()] {
        for _ in 0..3 {
            let req = get("/", &[("authorization", &auth)]);
            let res = svc.ready().await.unwrap().call(req).await.unwrap();
            assert_eq!(res.status(), 200, "{auth}");
        }
    }
}
