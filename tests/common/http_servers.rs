//! In-process HTTP servers on `127.0.0.1` for the tests that fetch URLs: a router served on
//! a free port, a port nothing listens on, a route that answers a fixed status. Included by
//! `tests/key_fetch.rs` (the library's key fetches) and `cli/tests/url_secrets.rs` (the
//! command's) with `#[path]`.

use axum::body::Body;
use axum::response::Response;
use axum::routing::{get as route, MethodRouter};

/// Serves `app` on `127.0.0.1:0`; its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Answers `status` with `body`.
pub fn answer(status: u16, body: &'static str) -> MethodRouter {
    route(move || async move {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    })
}
