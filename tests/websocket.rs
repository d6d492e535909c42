//! WebSockets with a real client (tokio-tungstenite) over loopback: the demo's `GET /ws`
//! (the contract in `shared/spec/demo.md`) and a small app for what a route opts in to
//! (`query_token`, `close_on_reject`, a scope).

mod common;
use common::*;

use auth_diagnostics::websocket::WebSocketAuth;
use auth_diagnostics::Principal;
use axum::extract::ws::WebSocketUpgrade;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `url` (ws://…) with `headers`: the socket and the handshake answer, or the
/// refused handshake's status (0: the client itself refused the answer).
async fn open(url: &str, headers: &[(&str, &str)]) -> Result<(Socket, Response), u16> {
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        let name = http::HeaderName::from_bytes(k.as_bytes()).unwrap();
        req.headers_mut().append(name, hv(v));
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(pair) => Ok(pair),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(WsError::Protocol(_)) => Err(0),
        Err(e) => panic!("handshake failed: {e}"),
    }
}

/// Sends `text` and expects it back.
async fn echoes(socket: &mut Socket, text: &str) {
    socket.send(Message::text(text)).await.unwrap();
    let back = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("an answer")
        .expect("a frame")
        .expect("no error");
    assert_eq!(back, Message::text(text));
}

/// The close frame the server sends next: code and reason.
async fn closed(socket: &mut Socket, within: Duration) -> (u16, String) {
    loop {
        let next = tokio::time::timeout(within, socket.next())
            .await
            .expect("the server closes the socket in time");
        match next {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.as_str().to_owned())
            }
            Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket error before the close frame: {e}"),
        }
    }
}

fn ws_url(base: &str, path: &str) -> String {
    format!("{}{path}", base.replacen("http://", "ws://", 1))
}

fn token_for(edits: serde_json::Value) -> String {
    hs256(&claims(edits))
}

/// The handshake answer's headers, all of them as text.
fn answer_text(response: &Response) -> String {
    response
        .headers()
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
        .collect()
}

#[tokio::test]
async fn a_token_as_subprotocol_is_accepted_and_never_echoed() {
    let (base, server) = serve_demo().await;
    let url = ws_url(&base, "/ws");
    let token = token_for(json!({}));

    let offer = format!("bearer, {token}");
    let (mut socket, answer) = open(&url, &[("sec-websocket-protocol", &offer)])
        .await
        .expect("accepted");
    assert_eq!(answer.headers()["sec-websocket-protocol"], "bearer");
    assert!(!answer_text(&answer).contains(&token));
    echoes(&mut socket, "hello").await;

    // Another protocol offered: the handler's choice, still never the token.
    let offer = format!("bearer, {token}, chat");
    let (mut socket, answer) = open(&url, &[("sec-websocket-protocol", &offer)])
        .await
        .expect("accepted");
    assert_eq!(answer.headers()["sec-websocket-protocol"], "chat");
    assert!(!answer_text(&answer).contains(&token));
    echoes(&mut socket, "chat line").await;

    // The list split over two field lines.
    let (mut socket, _) = open(
        &url,
        &[
            ("sec-websocket-protocol", "bearer"),
            ("sec-websocket-protocol", &token),
        ],
    )
    .await
    .expect("accepted");
    echoes(&mut socket, "split").await;
    server.abort();
}

#[tokio::test]
async fn authorization_and_the_session_cookie_are_accepted() {
    let (base, server) = serve_demo().await;
    let url = ws_url(&base, "/ws");
    let auth = bearer(&token_for(json!({})));
    let (mut socket, answer) = open(&url, &[("authorization", &auth)])
        .await
        .expect("accepted");
    assert!(answer.headers().get("sec-websocket-protocol").is_none());
    echoes(&mut socket, "with a header").await;
    // A clean close: the server answers the client's close frame.
    socket.close(None).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), socket.next()).await;
    assert!(
        matches!(reply, Ok(Some(Ok(Message::Close(_))))),
        "{reply:?}"
    );

    let (mut socket, _) = open(&url, &[("cookie", "demo_session=s-valid")])
        .await
        .expect("accepted");
    echoes(&mut socket, "with a cookie").await;
    server.abort();
}

#[tokio::test]
async fn the_session_cookie_counts_only_from_this_origin_and_the_page() {
    let mut cfg = demo_config(DetailMode::Verbose);
    // Never bound: only the origin the demo trusts.
    cfg.app_addr = Some("127.0.0.1:4101".into());
    let (base, server) = serve_demo_with(cfg).await;
    let url = ws_url(&base, "/ws");
    let cookie = ("cookie", "demo_session=s-valid");
    for origin in [
        base.as_str(),
        "http://127.0.0.1:4101",
        "http://localhost:4101",
    ] {
        let (mut socket, _) = open(&url, &[cookie, ("origin", origin)])
            .await
            .unwrap_or_else(|s| panic!("{origin}: {s}"));
        echoes(&mut socket, origin).await;
    }
    // Another site's page: the cookie is not a way in (cross-site WebSocket hijacking)...
    for origin in ["http://evil.example", "http://127.0.0.1:4102", "null"] {
        let (mut socket, _) = open(&url, &[cookie, ("origin", origin)])
            .await
            .expect("completed");
        let close = closed(&mut socket, Duration::from_secs(5)).await;
        assert_eq!(close, (4401, "credentials_missing".to_owned()), "{origin}");
    }
    // ...a token is.
    let offer = format!("bearer, {}", token_for(json!({})));
    let (mut socket, _) = open(
        &url,
        &[
            ("sec-websocket-protocol", &offer),
            ("origin", "http://evil.example"),
        ],
    )
    .await
    .expect("accepted");
    echoes(&mut socket, "token").await;
    server.abort();
}

#[tokio::test]
async fn refused_upgrades_close_with_4401_and_the_reason() {
    let (capture, _guard) = Capture::install();
    let (base, server) = serve_demo().await;
    let url = ws_url(&base, "/ws");
    let expired = token_for(json!({ "exp": now() - 3600 }));
    let wrong_aud = token_for(json!({ "aud": "another-api" }));
    let cases: [(Vec<(&str, String)>, &str); 5] = [
        (vec![], "credentials_missing"),
        (
            vec![("sec-websocket-protocol", format!("bearer, {expired}"))],
            "token_expired",
        ),
        (vec![("authorization", bearer(&expired))], "token_expired"),
        (
            vec![("sec-websocket-protocol", format!("bearer, {wrong_aud}"))],
            "token_audience_mismatch",
        ),
        (
            vec![("cookie", "demo_session=s-expired".into())],
            "session_expired",
        ),
    ];
    for (headers, reason) in cases {
        let before = capture.events().len();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (mut socket, answer) = open(&url, &headers).await.expect("completed");
        if headers.iter().any(|(k, _)| *k == "sec-websocket-protocol") {
            assert_eq!(answer.headers()["sec-websocket-protocol"], "bearer");
            for token in [&expired, &wrong_aud] {
                assert!(!answer_text(&answer).contains(token.as_str()));
            }
        }
        assert_eq!(answer.headers().get_all("x-request-id").iter().count(), 1);
        let close = closed(&mut socket, Duration::from_secs(5)).await;
        assert_eq!(close, (4401, reason.to_owned()), "{headers:?}");
        // The inner layer's one event, as for any refusal.
        let events: Vec<_> = capture.events().into_iter().skip(before).collect();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].field("reason"), reason);
    }
    assert_no_secrets(&capture.events(), &[expired, wrong_aud]);
    server.abort();
}

#[tokio::test]
async fn a_token_that_expires_closes_the_socket_on_time() {
    let (capture, _guard) = Capture::install();
    let (base, server) = serve_demo().await;
    // Two seconds (and less than one more) from now: `exp` is in whole seconds.
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 3;
    let token = token_for(json!({ "exp": exp }));
    let offer = format!("bearer, {token}");
    let (mut socket, _) = open(&ws_url(&base, "/ws"), &[("sec-websocket-protocol", &offer)])
        .await
        .expect("accepted");
    let opened = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    echoes(&mut socket, "still valid").await;
    let close = closed(&mut socket, Duration::from_secs(5)).await;
    let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    assert_eq!(close, (4401, "token_expired".to_owned()));
    let exp = Duration::from_secs(exp as u64);
    eprintln!(
        "opened {:?} before exp, closed {:?} after",
        exp - opened,
        at - exp
    );
    assert!(at >= exp, "closed {:?} before exp", exp - at);
    assert!(
        at <= exp + Duration::from_secs(1),
        "closed {:?} after exp",
        at - exp
    );
    let event = capture
        .events()
        .into_iter()
        .find(|e| e.get("close_code") == Some("4401"))
        .expect("the expiry is logged");
    assert_eq!(event.field("reason"), "token_expired");
    assert_eq!(event.field("sub"), "alice");
    server.abort();
}

/// `/opt-in` (query token, refusals closed), `/admin` (refusals closed, scope `admin`) and
/// `/plain` (neither), each an echo socket behind the test authenticator.
async fn serve_routes() -> (String, tokio::task::JoinHandle<()>) {
    let echo = || {
        get(|ws: WebSocketUpgrade, _: Principal| async move {
            ws.on_upgrade(|mut socket| async move {
                while let Some(Ok(message)) = socket.recv().await {
                    if socket.send(message).await.is_err() {
                        break;
                    }
                }
            })
        })
    };
    let auth = || layer(DetailMode::Verbose).bearer(jwt());
    let app = axum::Router::new()
        .merge(
            axum::Router::new()
                .route("/opt-in", echo())
                .route_layer(auth())
                .route_layer(WebSocketAuth::new().query_token().close_on_reject()),
        )
        .merge(
            axum::Router::new()
                .route("/admin", echo())
                .route_layer(auth().require_scope(["admin"]))
                .route_layer(WebSocketAuth::new().close_on_reject()),
        )
        .merge(
            axum::Router::new()
                .route("/plain", echo())
                .route_layer(auth())
                .route_layer(WebSocketAuth::new()),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), server)
}

#[tokio::test]
async fn without_the_opt_in_a_refusal_stays_a_plain_401() {
    let (base, server) = serve_routes().await;
    let expired = token_for(json!({ "exp": now() - 3600 }));
    let offer = format!("bearer, {expired}");
    let status = open(
        &ws_url(&base, "/plain"),
        &[("sec-websocket-protocol", &offer)],
    )
    .await;
    assert_eq!(status.err(), Some(401));
    assert_eq!(open(&ws_url(&base, "/plain"), &[]).await.err(), Some(401));
    // Accepted there like anywhere else.
    let offer = format!("bearer, {}", token_for(json!({})));
    let (mut socket, answer) = open(
        &ws_url(&base, "/plain"),
        &[("sec-websocket-protocol", &offer)],
    )
    .await
    .expect("accepted");
    assert_eq!(answer.headers()["sec-websocket-protocol"], "bearer");
    echoes(&mut socket, "plain").await;
    server.abort();
}

#[tokio::test]
async fn a_missing_scope_closes_with_4403() {
    let (capture, _guard) = Capture::install();
    let (base, server) = serve_routes().await;
    let url = ws_url(&base, "/admin");
    let offer = format!("bearer, {}", token_for(json!({})));
    let (mut socket, _) = open(&url, &[("sec-websocket-protocol", &offer)])
        .await
        .expect("completed");
    assert_eq!(
        closed(&mut socket, Duration::from_secs(5)).await,
        (4403, "insufficient_scope".to_owned())
    );
    assert_eq!(capture.events().len(), 1);
    let offer = format!("bearer, {}", token_for(json!({ "scope": "admin" })));
    let (mut socket, _) = open(&url, &[("sec-websocket-protocol", &offer)])
        .await
        .expect("accepted");
    echoes(&mut socket, "admin").await;
    server.abort();
}

#[tokio::test]
async fn a_query_token_counts_only_where_the_route_opts_in_and_is_never_logged() {
    let (capture, _guard) = Capture::install();
    let (base, server) = serve_routes().await;
    let token = token_for(json!({}));
    let expired = token_for(json!({ "exp": now() - 3600 }));

    let url = ws_url(&base, &format!("/opt-in?x=1&access_token={token}"));
    let (mut socket, _) = open(&url, &[]).await.expect("accepted");
    echoes(&mut socket, "query").await;

    let url = ws_url(&base, &format!("/opt-in?access_token={expired}"));
    let (mut socket, _) = open(&url, &[]).await.expect("completed");
    assert_eq!(
        closed(&mut socket, Duration::from_secs(5)).await,
        (4401, "token_expired".to_owned())
    );

    // Not opted in: the query is not a way in.
    let url = ws_url(&base, &format!("/plain?access_token={token}"));
    assert_eq!(open(&url, &[]).await.err(), Some(401));

    let events = capture.all_events();
    assert!(!events.is_empty());
    for e in &events {
        let line = e.line();
        assert!(!line.contains(&token) && !line.contains(&expired), "{line}");
    }
    server.abort();
}

#[tokio::test]
async fn malformed_huge_or_doubled_credentials_are_refused() {
    let (capture, _guard) = Capture::install();
    let (base, server) = serve_routes().await;
    let url = ws_url(&base, "/opt-in");
    let token = token_for(json!({}));

    // Marker with nothing after it; a list too long to read; one item too long to read;
    // an item that is no token: no credential reaches the layer.
    let many = format!("bearer, {token}, {}", vec!["p"; 40].join(", "));
    let huge = format!("bearer, {token}{}", "a".repeat(20_000));
    let quoted = format!("bearer, \"{token}\"");
    for offer in ["bearer", many.as_str(), huge.as_str(), quoted.as_str()] {
        let refused = open(&url, &[("sec-websocket-protocol", offer)]).await;
        match refused {
            // Dropped whole, the list cannot be answered with a protocol it offered: the
            // client refuses the completed handshake (0). Either way, never accepted.
            Ok((mut socket, _)) => {
                let (code, reason) = closed(&mut socket, Duration::from_secs(5)).await;
                assert_eq!((code, reason.as_str()), (4401, "credentials_missing"));
            }
            Err(status) => assert!([0, 401].contains(&status), "{status}"),
        }
    }

    // The token two ways at once: 400, never a close frame.
    let offer = format!("bearer, {token}");
    let auth = bearer(&token);
    let status = open(
        &url,
        &[("sec-websocket-protocol", &offer), ("authorization", &auth)],
    )
    .await;
    assert_eq!(status.err(), Some(400));
    let both = ws_url(&base, &format!("/opt-in?access_token={token}"));
    assert_eq!(
        open(&both, &[("authorization", &auth)]).await.err(),
        Some(400)
    );
    assert!(capture
        .events()
        .iter()
        .any(|e| e.get("reason") == Some("credentials_conflict")));
    for e in capture.all_events() {
        assert!(!e.line().contains(&token));
    }
    server.abort();
}
