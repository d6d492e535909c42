//! WebSockets a browser can authenticate (feature `websocket`).
//!
//! A browser's `WebSocket` cannot send `Authorization`, cannot read the status of a refused
//! handshake, and a socket outlives the token it was opened with. [`WebSocketAuth`], a layer
//! placed outside [`AuthDiagnostics`](crate::AuthDiagnostics), and [`Expiring`], a socket
//! wrapper for handlers, answer the three:
//!
//! - **The token as a subprotocol**: `new WebSocket(url, ["bearer", token, "chat"])`. The
//!   item after the marker (default `bearer`, [`protocol_marker`](WebSocketAuth::protocol_marker))
//!   is taken out of `Sec-WebSocket-Protocol` before the request goes on and handed to the
//!   inner layer as `Authorization: Bearer`. The handshake answer never names the token: with
//!   no other protocol offered it selects the marker. `Authorization` itself (non-browser
//!   clients) and cookies work as on any route; a token sent two ways at once is refused as
//!   `credentials_conflict`.
//! - **The query string**, only where a route opts in ([`query_token`](WebSocketAuth::query_token)):
//!   `access_token` is taken out of the URI before the inner layer (and its log) sees it.
//! - **Refusals a browser can read** ([`close_on_reject`](WebSocketAuth::close_on_reject)):
//!   the refused upgrade is completed and closed at once with [`CLOSE_UNAUTHORIZED`] (4401)
//!   or [`CLOSE_FORBIDDEN`] (4403), the close reason being the client reason
//!   (`token_expired`, `insufficient_scope`, …). The log event is the inner layer's one.
//! - **Cookies only from this origin** ([`cookie_origins`](WebSocketAuth::cookie_origins)):
//!   a browser sends cookies with a handshake from any page, and CORS does not apply, so
//!   the cookies of an upgrade from another origin are removed unless that origin is listed
//!   (cross-site WebSocket hijacking). Tokens count from anywhere.
//! - **Lifetime**: [`Expiring`] closes the socket with 4401 `token_expired` when the
//!   principal's `exp` passes, and logs it.
//!
//! ```no_run
//! use auth_diagnostics::jwt::JwtAuthenticator;
//! use auth_diagnostics::keys::StaticKey;
//! use auth_diagnostics::websocket::{Expiring, WebSocketAuth};
//! use auth_diagnostics::{AuthDiagnostics, Principal};
//! use axum::extract::ws::WebSocketUpgrade;
//! use axum::{routing::get, Router};
//!
//! let jwt = JwtAuthenticator::new(StaticKey::hs256("secret"))
//!     .issuer("https://issuer.example")
//!     .audience("my-api");
//! let app: Router = Router::new()
//!     .route(
//!         "/ws",
//!         get(|ws: WebSocketUpgrade, principal: Principal| async move {
//!             ws.on_upgrade(move |socket| async move {
//!                 let mut socket = Expiring::new(socket, &principal);
//!                 while let Some(Ok(message)) = socket.recv().await {
//!                     if socket.send(message).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             })
//!         }),
//!     )
//!     .route_layer(AuthDiagnostics::new().bearer(jwt))
//!     // Outside the authentication layer: it runs first.
//!     .route_layer(WebSocketAuth::new().close_on_reject());
//! ```

mod close;
mod expiry;
mod layer;
mod origin;
mod protocol;
mod service;

pub use close::{CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED};
pub use expiry::Expiring;
pub use layer::WebSocketAuth;
pub use service::WebSocketAuthService;
