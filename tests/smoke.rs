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
    use auth_diagnostics::basic::{BasicAuthenticator, BasicCredentials};
    use auth_diagnostics::{AuthDiagnostics, Principal};
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

/// R-10: `Authentication-Info` has "semantics defined by the authentication scheme", and
/// Bearer, Basic, DPoP, API keys and cookies define none: the layer never sends it, on any
/// answer it gives or passes through (success, anonymous, 400, 401, 403, 404, 303, 503,
/// the metadata document, a preflight, a corrected upstream 401).
#[tokio::test]
async fn no_answer_carries_authentication_info() {
    use auth_diagnostics::authz::{HideForbidden, ResourceMetadata};
    use auth_diagnostics::basic::BasicAuthenticator;
    use auth_diagnostics::failure::AuthFailure;
    use auth_diagnostics::session::SessionAuthenticator;
    use axum::routing::get as route;
    use axum::Router;

    let token = hs256(&good_claims());
    let expired = hs256(&claims(
        serde_json::json!({ "iat": now() - 7200, "exp": now() - 3600 }),
    ));
    let auth = bearer(&token);
    let meta =
        ResourceMetadata::new("https://api.test/mcp").authorization_servers(["https://as.test"]);
    let down = BasicAuthenticator::new(store_down::<auth_diagnostics::basic::BasicCredentials>);
    let hidden = Router::new()
        .route(
            "/h",
            route(|| async { Err::<(), _>(AuthFailure::new(Reason::Forbidden)) })
                .route_layer(HideForbidden::new()),
        )
        .layer(AuthDiagnostics::new().bearer(jwt()));
    let bare = Router::new()
        .route("/bare", route(|| async { StatusCode::UNAUTHORIZED }))
        .layer(AuthDiagnostics::new());
    let session = || {
        scheme_app(
            AuthDiagnostics::new()
                .session(SessionAuthenticator::new("sid", check_session).login_url("/login")),
        )
    };
    let cases: Vec<(&str, Router, http::Request<axum::body::Body>)> = vec![
        (
            "missing",
            bearer_app(AuthDiagnostics::new()),
            get("/me", &[]),
        ),
        (
            "bearer ok",
            bearer_app(AuthDiagnostics::new()),
            get("/me", &[("authorization", &auth)]),
        ),
        (
            "expired",
            bearer_app(AuthDiagnostics::new()),
            get("/me", &[("authorization", &bearer(&expired))]),
        ),
        (
            "malformed",
            bearer_app(AuthDiagnostics::new()),
            get("/me", &[("authorization", "Bearer a b")]),
        ),
        (
            "no scheme",
            bearer_app(AuthDiagnostics::new()),
            get("/me", &[("authorization", &token)]),
        ),
        (
            "insufficient scope",
            bearer_app(AuthDiagnostics::new()),
            get("/admin", &[("authorization", &auth)]),
        ),
        (
            "anonymous",
            bearer_app(AuthDiagnostics::new().optional()),
            get("/me", &[]),
        ),
        (
            "basic ok",
            basic_app(DetailMode::Production),
            get("/r", &[("authorization", &basic("alice", ALICE_PW))]),
        ),
        (
            "basic wrong",
            basic_app(DetailMode::Verbose),
            get("/r", &[("authorization", &basic("alice", "x"))]),
        ),
        (
            "basic malformed",
            basic_app(DetailMode::Verbose),
            get("/r", &[("authorization", "Basic !!")]),
        ),
        (
            "basic down",
            scheme_app(AuthDiagnostics::new().basic(down)),
            get("/r", &[("authorization", &basic("alice", ALICE_PW))]),
        ),
        (
            "key ok",
            key_app(DetailMode::Production),
            get("/r", &[("x-api-key", KEY_GOOD)]),
        ),
        (
            "key unknown",
            key_app(DetailMode::Production),
            get("/r", &[("x-api-key", KEY_UNKNOWN)]),
        ),
        (
            "handler forbidden",
            key_app(DetailMode::Production),
            get("/forbidden", &[("x-api-key", KEY_GOOD)]),
        ),
        (
            "session ok",
            session(),
            get("/r", &[("cookie", &format!("sid={SESS_VALID}"))]),
        ),
        (
            "session expired",
            session(),
            get("/r", &[("cookie", &format!("sid={SESS_EXPIRED}"))]),
        ),
        (
            "login redirect",
            session(),
            get("/r", &[("sec-fetch-mode", "navigate")]),
        ),
        (
            "metadata document",
            bearer_app(AuthDiagnostics::new().resource_metadata(meta)),
            get("/.well-known/oauth-protected-resource/mcp", &[]),
        ),
        (
            "preflight",
            bearer_app(AuthDiagnostics::new()),
            request(
                Method::OPTIONS,
                "/me",
                vec![
                    ("origin", hv("https://app.test")),
                    ("access-control-request-method", hv("GET")),
                ],
            ),
        ),
        ("hidden 403", hidden, get("/h", &[("authorization", &auth)])),
        ("corrected upstream 401", bare, get("/bare", &[])),
    ];
    let mut statuses = std::collections::BTreeSet::new();
    for (what, app, req) in cases {
        let out = send(app, req).await;
        statuses.insert(out.status.as_u16());
        assert!(
            out.headers.get("authentication-info").is_none(),
            "{what}: {} {:?}",
            out.status,
            out.headers
        );
    }
    // The walk covered every kind of answer it names.
    for status in [200, 303, 400, 401, 403, 404, 503] {
        assert!(statuses.contains(&status), "no {status} in {statuses:?}");
    }
}
