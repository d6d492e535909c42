//! The path-confusion guard: every ambiguous spelling of a path is 400 `path_ambiguous`
//! with one event saying which form it found, before any credential is read; every path
//! an ordinary client sends reaches the handler.

mod common;

use auth_diagnostics::layer::PathGuard;
use axum::routing;
use common::*;
use serde_json::json;

/// A catch-all route behind a Bearer layer: answers the path it saw and who sent it.
fn app(guard: PathGuard) -> axum::Router {
    async fn echo(uri: http::Uri, p: auth_diagnostics::Principal) -> axum::Json<Value> {
        axum::Json(json!({ "path": uri.path(), "sub": p.id() }))
    }
    axum::Router::new()
        .route("/", routing::get(echo))
        .route("/{*rest}", routing::get(echo))
        .layer(
            layer(DetailMode::Verbose)
                .log_every_failure()
                .path_guard(guard)
                .bearer(jwt()),
        )
}

fn authorized(uri: &str) -> http::Request<axum::body::Body> {
    get(uri, &[("authorization", &bearer(&hs256(&good_claims())))])
}

/// `uri` is refused as ambiguous, the event's detail naming `form`.
async fn refused(app: axum::Router, uri: &str, form: &str) {
    let out = send(app, authorized(uri)).await;
    let checked = out.check(&expect("path_ambiguous").verbose().field("method", "GET"));
    let message = checked.message();
    assert!(message.contains(form), "{uri}: {message}");
    assert_eq!(
        message,
        format!("path_ambiguous: {}", checked.detail()),
        "{uri}"
    );
}

#[tokio::test]
async fn every_ambiguous_form_is_refused_with_what_was_found() {
    let cases = [
        (
            "/admin/..;/public",
            "segment 2 is the dot segment `..;` with a path parameter",
        ),
        ("/admin/..;jsessionid=1234/x", "`..;` with a path parameter"),
        ("/admin/.;/x", "`.;` with a path parameter"),
        ("/admin/..%3B/x", "`..%3B` with a path parameter"),
        ("/public/../admin", "segment 2 is the dot segment `..`"),
        ("/public/./admin", "the dot segment `.`"),
        ("/public/..", "the dot segment `..`"),
        (
            "/public/%2e%2e/admin",
            "`%2e%2e`, a percent-encoded dot segment",
        ),
        (
            "/public/%2E%2E/admin",
            "`%2E%2E`, a percent-encoded dot segment",
        ),
        ("/public/.%2e/admin", "`.%2e`, a percent-encoded"),
        ("/public/%2e./admin", "`%2e.`, a percent-encoded"),
        ("/public/%2e/admin", "`%2e`, a percent-encoded"),
        ("/files/a%2Fb", "segment 2 holds an encoded slash `%2F`"),
        ("/files/a%2fb", "encoded slash `%2f`"),
        ("/files/a%5Cb", "encoded backslash `%5C`"),
        ("/files/a%5cb", "encoded backslash `%5c`"),
        ("/files/a\\b", "segment 2 holds a raw backslash"),
        (
            "/public/%252e%252e/admin",
            "double percent-encoding `%252e`",
        ),
        ("/files/%252F", "double percent-encoding `%252F`"),
        ("/files/%25%32%65", "double percent-encoding `%25%32%65`"),
        ("/files/%%32%65", "double percent-encoding `%%32%65`"),
    ];
    for (uri, form) in cases {
        refused(app(PathGuard::Strict), uri, form).await;
    }
}

#[tokio::test]
async fn the_path_is_refused_before_any_credential_is_read() {
    // No credentials, or a bad token: the path is what is wrong, and said first.
    for headers in [vec![], vec![("authorization", "Bearer not-a-token")]] {
        let out = send(app(PathGuard::Strict), get("/me/..;/x", &headers)).await;
        out.check(&expect("path_ambiguous").verbose());
    }
}

/// What ordinary clients send, each answered by the handler with the path as sent.
const ORDINARY: &[&str] = &[
    "/",
    "/orders/",
    "/orders//42",
    "/v1.2/files/report.final.pdf",
    "/.well-known/openid-configuration",
    "/a..b/..a/b../.../x",
    "/search/hello%20world/a+b",
    "/caf%C3%A9/%E6%97%A5%E6%9C%AC",
    "/users/@me/a:b/~tilde/a,b/k=v/!/$/'()*",
    "/files/100%25/50%25-off/%zz/end%",
    "/files/report%2Epdf/v1%2e2",
    "/items;v=2/x;y=z",
    "/%41%42%43",
    "/percent-encoded-non-utf8/%FF%FE",
    "/json/{\"a\":1}",
];

#[tokio::test]
async fn ordinary_paths_reach_the_handler() {
    for uri in ORDINARY {
        let out = send(app(PathGuard::Strict), authorized(uri)).await;
        let body = out.ok();
        assert_eq!(body["path"], *uri, "{uri}");
        assert_eq!(body["sub"], "alice", "{uri}");
    }
    // Raw UTF-8 (not percent-encoded), as some clients send it.
    let uri = http::Uri::from_maybe_shared(bytes::Bytes::from("/café/日本")).unwrap();
    let mut req = authorized("/");
    *req.uri_mut() = uri;
    send(app(PathGuard::Strict), req).await.ok();
}

#[tokio::test]
async fn the_query_is_never_read() {
    let uri = "/orders?next=/../admin&x=%2F%5C%252e&y=..;";
    let out = send(app(PathGuard::Strict), authorized(uri)).await;
    assert_eq!(out.ok()["path"], "/orders");
}

#[tokio::test]
async fn encoded_slashes_can_be_allowed_and_the_guard_turned_off() {
    let allow = || app(PathGuard::AllowEncodedSlash);
    let out = send(allow(), authorized("/projects/group%2Fname/issues")).await;
    assert_eq!(out.ok()["path"], "/projects/group%2Fname/issues");
    refused(allow(), "/projects/a%2F..%2Fadmin", "the dot segment `..`").await;
    refused(
        allow(),
        "/projects/a%2F%2e%2e",
        "`%2e%2e`, a percent-encoded",
    )
    .await;
    refused(allow(), "/projects/a%5Cb", "encoded backslash").await;
    refused(allow(), "/projects/%252F", "double percent-encoding").await;

    for uri in ["/a/../b", "/a/%2e%2e/b", "/a%2Fb", "/a\\b", "/a/%252e"] {
        let out = send(app(PathGuard::Off), authorized(uri)).await;
        assert_eq!(out.ok()["path"], uri);
    }
}

#[tokio::test]
async fn a_layer_without_schemes_guards_too() {
    let app = axum::Router::new()
        .route("/public", routing::get(|| async { "public" }))
        .layer(
            AuthDiagnostics::new()
                .verbose()
                .path_guard(PathGuard::Strict),
        );
    let out = send(app.clone(), get("/public/%2e%2e/admin", &[])).await;
    out.check(&expect("path_ambiguous").verbose());
    let out = send(app, get("/public", &[])).await;
    assert_eq!(out.status, 200);
}

#[tokio::test]
async fn nested_routers_check_the_path_the_client_sent() {
    let inner = axum::Router::new()
        .route("/{*rest}", routing::get(|| async { "inner" }))
        .layer(
            AuthDiagnostics::new()
                .verbose()
                .path_guard(PathGuard::Strict),
        );
    let app = axum::Router::new().nest("/api", inner);
    let out = send(app.clone(), get("/api/x/..;/y", &[])).await;
    out.check(&expect("path_ambiguous").verbose());
    let out = send(app, get("/api/x/y", &[])).await;
    assert_eq!(out.status, 200);
}

#[tokio::test]
async fn the_demo_refuses_ambiguous_paths() {
    for uri in ["/admin/..;/public", "/public/%2e%2e/admin"] {
        let out = send(demo_app(DetailMode::Verbose), get(uri, &[])).await;
        out.check(&expect("path_ambiguous").verbose().realm("demo"));
    }
    let out = send(demo_app(DetailMode::Verbose), get("/public", &[])).await;
    assert_eq!(out.ok()["public"], true);
}

#[tokio::test]
async fn the_guard_is_on_by_default() {
    let app = axum::Router::new()
        .route("/public", routing::get(|| async { "public" }))
        .layer(AuthDiagnostics::new());
    let out = send(app, get("/public/..;/admin", &[])).await;
    out.check(&expect("path_ambiguous"));
}

/// Bytes that are not UTF-8 in the request line never reach the layer: `http` refuses
/// the URI and hyper answers 400 itself. Percent-encoded, they pass (see [`ORDINARY`]).
#[tokio::test]
async fn raw_bytes_that_are_not_utf8_are_refused_by_the_server() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    let app = axum::Router::new()
        .route(
            "/{*rest}",
            routing::get(move || async move {
                counter.fetch_add(1, Ordering::SeqCst);
                "reached"
            }),
        )
        .layer(AuthDiagnostics::new().path_guard(PathGuard::Strict));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request =
        b"GET /caf\xC3/\xFF\xFE HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec();
    conn.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(reached.load(Ordering::SeqCst), 0);

    // The same connection handling answers an ordinary path.
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    request = b"GET /caf%C3%A9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec();
    conn.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(reached.load(Ordering::SeqCst), 1);
    server.abort();
}
