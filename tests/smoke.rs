//! The smallest end-to-end checks: a good token, no token, tower-http's request ids, and
//! tower's ready/call contract.

mod common;
use common::*;

#[tokio::test]
async fn good_token_reaches_the_handler() {
    let token = hs256(&good_claims());
    let out = send(
        bearer_app(AuthDiagnostics::new()),
        get("/me", &[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(out.ok()["sub"], "alice");
}

#[tokio::test]
async fn missing_credentials() {
    let out = send(bearer_app(AuthDiagnostics::new()), get("/me", &[])).await;
    out.check(&expect("credentials_missing"));
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

    let app = bearer_app(AuthDiagnostics::new())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(Fixed));
    let out = send(app, get("/me", &[])).await;
    out.check(&expect("credentials_missing").field("request_id", "from-tower-http"));
    assert_eq!(out.header("x-request-id"), Some("from-tower-http"));
    assert_eq!(out.problem()["request_id"], "from-tower-http");
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
