//! [`Expiring`]: a socket that closes itself with 4401 `token_expired` when the credential
//! it was opened with expires.

use super::close::{close, CLOSE_UNAUTHORIZED};
use crate::Principal;
use axum::extract::ws::{Message, WebSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// An axum [`WebSocket`] that lives no longer than the credential it was opened with.
///
/// Its [`recv`](Self::recv) and [`send`](Self::send) are the socket's own, until the
/// principal's `exp` (plus the [`leeway`](Self::leeway)) passes: then the socket is closed
/// with code 4401 and reason `token_expired`, the event is logged (target
/// `auth_diagnostics`, reason `token_expired`), `recv` returns `None` and `send` an error.
/// A principal without `exp` (a session, an API key) never expires here.
///
/// ```no_run
/// use auth_diagnostics::websocket::Expiring;
/// use auth_diagnostics::Principal;
/// use axum::extract::ws::WebSocketUpgrade;
/// use axum::response::Response;
///
/// async fn echo(ws: WebSocketUpgrade, principal: Principal) -> Response {
///     ws.on_upgrade(move |socket| async move {
///         let mut socket = Expiring::new(socket, &principal);
///         while let Some(Ok(message)) = socket.recv().await {
///             if socket.send(message).await.is_err() {
///                 break;
///             }
///         }
///     })
/// }
/// # let _ = echo;
/// ```
#[derive(Debug)]
pub struct Expiring {
    socket: Option<WebSocket>,
    exp: Option<SystemTime>,
    leeway: Duration,
    sub: Option<String>,
}

impl Expiring {
    /// Watches `socket` for the expiry of `principal`'s credential (its `exp` claim).
    pub fn new(socket: WebSocket, principal: &Principal) -> Self {
        let exp = principal
            .claims()
            .and_then(|c| c.get("exp"))
            .and_then(serde_json::Value::as_f64)
            .filter(|exp| exp.is_finite() && *exp >= 0.0)
            .map(|exp| UNIX_EPOCH + Duration::from_secs_f64(exp.min(1e12)));
        Self {
            socket: Some(socket),
            exp,
            leeway: Duration::ZERO,
            sub: principal.id().map(str::to_owned),
        }
    }

    /// Keeps the socket open this long past `exp` (default none: the server's clock is the
    /// one the token was checked against at the handshake).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// When the socket will be closed, if the credential expires.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.exp.map(|e| e + self.leeway)
    }

    /// The next message, as [`WebSocket::recv`]; `None` once the credential has expired
    /// (the socket is then closed with 4401 `token_expired`).
    pub async fn recv(&mut self) -> Option<Result<Message, axum::Error>> {
        let deadline = self.deadline();
        let socket = self.socket.as_mut()?;
        match deadline {
            None => socket.recv().await,
            Some(at) => match tokio::time::timeout_at(at, socket.recv()).await {
                Ok(message) => message,
                Err(_) => {
                    self.expire().await;
                    None
                }
            },
        }
    }

    /// Sends `message`, as [`WebSocket::send`]; once the credential has expired the
    /// socket is closed instead and this is an error.
    pub async fn send(&mut self, message: Message) -> Result<(), axum::Error> {
        if self.deadline().is_some_and(|at| at <= Instant::now()) {
            self.expire().await;
        }
        match self.socket.as_mut() {
            Some(socket) => socket.send(message).await,
            None => Err(axum::Error::new(
                "the credential expired; the socket is closed",
            )),
        }
    }

    /// The socket itself, no longer watched.
    pub fn into_inner(self) -> Option<WebSocket> {
        self.socket
    }

    fn deadline(&self) -> Option<Instant> {
        let at = self.expires_at()?;
        let left = at.duration_since(SystemTime::now()).unwrap_or_default();
        Some(Instant::now() + left)
    }

    async fn expire(&mut self) {
        let Some(socket) = self.socket.take() else {
            return;
        };
        let exp = self
            .exp
            .and_then(|e| e.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        tracing::info!(
            target: "auth_diagnostics",
            reason = "token_expired",
            close_code = CLOSE_UNAUTHORIZED,
            sub = self.sub.as_deref().unwrap_or(""),
            exp,
            hint = "The client reconnects with a fresh token: a socket lives no longer than the token it was opened with.",
            "WebSocket closed with 4401: the token it was opened with expired"
        );
        close(socket, CLOSE_UNAUTHORIZED, "token_expired".into()).await;
    }
}
