//! [`WebSocketAuth`], the layer, and its builder.

use super::service::WebSocketAuthService;
use std::sync::Arc;
use tower_layer::Layer;

/// Prepares WebSocket upgrades for the [`AuthDiagnostics`](crate::AuthDiagnostics) layer
/// it wraps: tokens from `Sec-WebSocket-Protocol` (and, on routes that opt in, the query
/// string) become `Authorization: Bearer`, the handshake answer never names the token, and
/// (opt-in) a refused upgrade is completed and closed with 4401/4403. Place it outside the
/// authentication layer. Requests that are not upgrades pass through untouched.
#[derive(Debug, Clone)]
pub struct WebSocketAuth {
    pub(crate) cfg: Arc<Config>,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub marker: String,
    pub query_token: bool,
    pub close_on_reject: bool,
}

impl Default for WebSocketAuth {
    fn default() -> Self {
        Self::new()
    }
}

impl WebSocketAuth {
    /// Tokens from `Authorization` and from `Sec-WebSocket-Protocol: bearer, <token>`;
    /// refusals stay plain 401/403 answers.
    pub fn new() -> Self {
        Self {
            cfg: Arc::new(Config {
                marker: "bearer".into(),
                query_token: false,
                close_on_reject: false,
            }),
        }
    }

    /// The subprotocol that announces a token as the next list item (default `bearer`).
    #[must_use]
    pub fn protocol_marker(mut self, marker: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.cfg).marker = marker.into();
        self
    }

    /// Also reads a token from the `access_token` query parameter of an upgrade, and takes
    /// it out of the URI before anything else (the log included) sees it. A query string
    /// lands in access logs and browser history: prefer the subprotocol.
    #[must_use]
    pub fn query_token(mut self) -> Self {
        Arc::make_mut(&mut self.cfg).query_token = true;
        self
    }

    /// Completes a refused upgrade and closes it at once, with code
    /// [`CLOSE_UNAUTHORIZED`](super::CLOSE_UNAUTHORIZED) (4401) for a 401 and
    /// [`CLOSE_FORBIDDEN`](super::CLOSE_FORBIDDEN) (4403) for a 403, the close reason being
    /// the client reason: a browser's `WebSocket` can read that, never a refused handshake.
    /// The log event is the inner layer's, as for any refusal.
    #[must_use]
    pub fn close_on_reject(mut self) -> Self {
        Arc::make_mut(&mut self.cfg).close_on_reject = true;
        self
    }
}

impl<S> Layer<S> for WebSocketAuth {
    type Service = WebSocketAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WebSocketAuthService {
            inner,
            cfg: self.cfg.clone(),
        }
    }
}
