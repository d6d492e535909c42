//! A refused upgrade a browser can read: the handshake is completed, and the socket closed
//! at once with 4401/4403 and the client reason. A browser's `WebSocket` never sees the
//! status of a failed handshake, only "connection failed".

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use http::header::{SEC_WEBSOCKET_PROTOCOL, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use std::time::Duration;

/// The close code of a connection refused (or ended) for want of valid credentials.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// The close code of a connection refused for want of permission.
pub const CLOSE_FORBIDDEN: u16 = 4403;

/// The longest close reason a close frame carries (125 bytes of payload less the code).
const MAX_REASON: usize = 123;
/// The most of a rejection's body read to find its reason.
const MAX_BODY: usize = 16 * 1024;
/// How long a closed socket waits for the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What a refused upgrade needs to be completed: the request as the inner layer saw it,
/// without its body, and the connection's upgrade handle.
pub(crate) struct Refusable {
    pub request: Request<()>,
    pub marker: String,
}

/// The close code for a rejection's status, if it is one a socket can carry.
pub(crate) fn close_code(status: StatusCode) -> Option<u16> {
    match status {
        StatusCode::UNAUTHORIZED => Some(CLOSE_UNAUTHORIZED),
        StatusCode::FORBIDDEN => Some(CLOSE_FORBIDDEN),
        _ => None,
    }
}

/// Completes the upgrade `refusable` asked for and closes it with `code` and the reason of
/// `rejection`. Falls back to `rejection` itself when the request cannot be upgraded.
pub(crate) async fn complete_and_close(
    refusable: Refusable,
    code: u16,
    rejection: Response<Body>,
) -> Response<Body> {
    let (mut parts, ()) = refusable.request.into_parts();
    let Ok(ws) = WebSocketUpgrade::from_request_parts(&mut parts, &()).await else {
        return rejection;
    };
    let (head, body) = rejection.into_parts();
    let reason = client_reason(&head.headers, body, code).await;
    // A browser that offered protocols fails a handshake that selects none.
    let offered: Vec<String> = parts
        .headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    let choice = if offered.contains(&refusable.marker) {
        Some(refusable.marker)
    } else {
        offered.into_iter().next()
    };
    let ws = match choice {
        Some(p) => ws.protocols([p]),
        None => ws,
    };
    let mut response = ws.on_upgrade(move |socket| close(socket, code, reason));
    for name in [WWW_AUTHENTICATE, HeaderName::from_static("x-request-id")] {
        for value in head.headers.get_all(&name) {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}

/// Sends the close frame, then waits (a while) for the client's.
pub(crate) async fn close(mut socket: WebSocket, code: u16, reason: String) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
}

/// The client reason of a rejection: `reason` of its problem body, else the `error` of its
/// challenge, else `unauthorized`/`forbidden`.
async fn client_reason(headers: &HeaderMap, body: Body, code: u16) -> String {
    let from_body = async {
        let bytes = axum::body::to_bytes(body, MAX_BODY).await.ok()?;
        let problem: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        problem.get("reason")?.as_str().map(str::to_owned)
    };
    let reason = match from_body.await {
        Some(r) => r,
        None => headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .find_map(challenge_error)
            .unwrap_or_else(|| {
                if code == CLOSE_FORBIDDEN {
                    "forbidden".into()
                } else {
                    "unauthorized".into()
                }
            }),
    };
    truncate(reason)
}

/// The `error="…"` parameter of a challenge.
fn challenge_error(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let rest = &text[text.find("error=")? + "error=".len()..];
    let rest = rest.trim_start_matches('"');
    let end = rest.find(['"', ',', ' ']).unwrap_or(rest.len());
    Some(rest[..end].to_owned()).filter(|e| !e.is_empty())
}

fn truncate(mut reason: String) -> String {
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_error_is_the_fallback_reason() {
        let v = HeaderValue::from_static(r#"Bearer realm="demo", error="invalid_token""#);
        assert_eq!(challenge_error(&v).as_deref(), Some("invalid_token"));
        let v = HeaderValue::from_static(r#"Bearer realm="demo""#);
        assert_eq!(challenge_error(&v), None);
        assert_eq!(truncate("é".repeat(100)).len(), 122);
    }
}
