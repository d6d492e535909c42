//! [`WebSocketAuth`], the layer, and its builder.

use super::origin::normalize;
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
    /// `None`: cookies from any origin.
    pub cookie_origins: Option<Vec<String>>,
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
                cookie_origins: Some(Vec::new()),
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

    /// Origins besides the request's own (`https://app.example`) whose pages may open
    /// sockets that cookies authenticate.
    ///
    /// A browser sends a site's cookies with a WebSocket handshake from any page, and no
    /// CORS rule applies to it (cross-site WebSocket hijacking). So by default the cookies
    /// of an upgrade whose `Origin` is neither the request's own (`Host`) nor listed here
    /// are removed before the layer inside sees them: a cookie session is then refused as
    /// `credentials_missing` (a DEBUG event, target `auth_diagnostics::websocket`, names the
    /// origin), while tokens, which another site's page does not have, count from anywhere.
    /// Clients without `Origin` (not browsers) keep their cookies.
    #[must_use]
    pub fn cookie_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let cfg = Arc::make_mut(&mut self.cfg);
        let list = cfg.cookie_origins.get_or_insert_with(Vec::new);
        list.extend(origins.into_iter().map(|o| normalize(o.as_ref())));
        self
    }

    /// Lets cookies authenticate upgrades from any origin: only for an application that
    /// checks `Origin` (or a token of its own) in the handler.
    #[must_use]
    pub fn cookies_from_any_origin(mut self) -> Self {
        Arc::make_mut(&mut self.cfg).cookie_origins = None;
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
