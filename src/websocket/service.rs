//! [`WebSocketAuthService`]: moves a browser's token where the inner layer reads it, and
//! turns its refusals into close frames.

use super::close::{close_code, complete_and_close, Refusable};
use super::layer::Config;
use super::origin::drop_foreign_cookies;
use super::protocol::{authorize, is_upgrade, take_protocol_tokens, take_query_tokens};
use axum::body::Body;
use axum::extract::OriginalUri;
use http::header::SEC_WEBSOCKET_PROTOCOL;
use http::{HeaderValue, Request, Response, StatusCode};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_service::Service;

/// The service [`WebSocketAuth`](super::WebSocketAuth) wraps around the authentication
/// layer.
#[derive(Debug, Clone)]
pub struct WebSocketAuthService<S> {
    pub(crate) inner: S,
    pub(crate) cfg: Arc<Config>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> Service<Request<Body>> for WebSocketAuthService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Response<Body>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        // The clone that was made ready is the one called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if !is_upgrade(req.method(), req.headers()) {
            return Box::pin(inner.call(req));
        }
        let cfg = self.cfg.clone();
        if let Some(trusted) = &cfg.cookie_origins {
            if drop_foreign_cookies(req.headers_mut(), trusted) {
                tracing::debug!(
                    target: "auth_diagnostics::websocket",
                    origin = %cap(req.headers().get(http::header::ORIGIN)),
                    "cookies of a cross-origin WebSocket upgrade ignored"
                );
            }
        }
        let offered = take_protocol_tokens(req.headers_mut(), &cfg.marker);
        let mut tokens = offered.tokens.clone();
        if cfg.query_token {
            strip_query(&mut req, &mut tokens);
        }
        authorize(req.headers_mut(), &tokens);
        let refusable = cfg.close_on_reject.then(|| refusable(&req, &cfg.marker));
        Box::pin(async move {
            let mut response = inner.call(req).await?;
            if let (Some(refusable), Some(code)) = (refusable, close_code(response.status())) {
                return Ok(complete_and_close(refusable, code, response).await);
            }
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                select_protocol(&mut response, &cfg.marker, &offered);
            }
            Ok(response)
        })
    }
}

/// A header value for the log: text, at most 128 characters, control characters escaped.
fn cap(value: Option<&HeaderValue>) -> String {
    let text = value.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    text.unwrap_or_default()
        .chars()
        .take(128)
        .flat_map(char::escape_debug)
        .collect()
}

/// Takes `access_token` out of the request's URI (and the original URI axum keeps for the
/// log and for nested routers).
fn strip_query(req: &mut Request<Body>, tokens: &mut Vec<String>) {
    if let Some((uri, found)) = take_query_tokens(req.uri()) {
        *req.uri_mut() = uri;
        tokens.extend(found);
    }
    if let Some(OriginalUri(original)) = req.extensions_mut().get_mut::<OriginalUri>() {
        if let Some((uri, _)) = take_query_tokens(original) {
            *original = uri;
        }
    }
}

/// The request as the inner layer sees it, without its body, with the connection's upgrade
/// handle: what a refusal needs to complete the handshake itself.
fn refusable(req: &Request<Body>, marker: &str) -> Refusable {
    let mut copy = Request::new(());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    if let Some(on_upgrade) = req.extensions().get::<hyper::upgrade::OnUpgrade>() {
        copy.extensions_mut().insert(on_upgrade.clone());
    }
    Refusable {
        request: copy,
        marker: marker.to_owned(),
    }
}

/// The handshake answer names a protocol the client offered, never a token: a token the
/// handler picked becomes the marker, and with no other protocol offered the marker is
/// selected (a browser fails a handshake that selects none of those it offered).
fn select_protocol(
    response: &mut Response<Body>,
    marker: &str,
    offered: &super::protocol::Offered,
) {
    let headers = response.headers_mut();
    let chosen = headers
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let marker_value = HeaderValue::from_str(marker).ok();
    match chosen {
        Some(p) if offered.tokens.contains(&p) => {
            headers.remove(SEC_WEBSOCKET_PROTOCOL);
            if let Some(m) = marker_value {
                headers.insert(SEC_WEBSOCKET_PROTOCOL, m);
            }
        }
        None if offered.marker && offered.others.is_empty() => {
            if let Some(m) = marker_value {
                headers.insert(SEC_WEBSOCKET_PROTOCOL, m);
            }
        }
        _ => {}
    }
}
