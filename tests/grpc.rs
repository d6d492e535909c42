//! gRPC: the tonic server of examples/grpc.rs driven by tonic's own client over real
//! HTTP/2, and the layer around tonic services answered request by request.
//!
//! A refused gRPC request gets a trailers-only gRPC answer (HTTP 200, `grpc-status`,
//! `grpc-message` led by the reason code, the challenge kept) and the same single log event
//! as the HTTP request would; enforce mode leaves the wrapped service's gRPC answers alone.

#[path = "../examples/grpc.rs"]
mod grpc_example;

use auth_diagnostics::authz::AccountStatus;
use auth_diagnostics::failure::AuthFailure;
use auth_diagnostics::Principal;
use axum::body::Body;
use grpc_example::{GrpcConfig, WATCH};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tower::{Layer, ServiceExt};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// The example's settings with the demo's defaults, verbose, on a free port.
fn config() -> GrpcConfig {
    GrpcConfig {
        addr: "127.0.0.1:0".into(),
        json_logs: false,
        detail: auth_diagnostics::layer::DetailMode::Verbose,
        jwt_secret: "demo-hs256-secret".into(),
        issuer: "https://issuer.demo.local".into(),
        audience: "demo-api".into(),
    }
}

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// A token as `cargo run --example mint` makes it, with `edits` merged into the claims.
fn token(edits: Value) -> String {
    let mut claims = json!({
        "iss": "https://issuer.demo.local", "aud": "demo-api", "sub": "alice",
        "iat": now(), "exp": now() + 3600,
    });
    for (k, v) in edits.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let key = EncodingKey::from_secret(b"demo-hs256-secret");
    encode(&Header::default(), &claims, &key).unwrap()
}

// =======================================================================================
// Captured log events
// =======================================================================================

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "auth_diagnostics" {
            let mut fields = Fields::default();
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
    }
}

impl Capture {
    fn install() -> (Capture, tracing::subscriber::DefaultGuard) {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        (capture, tracing::subscriber::set_default(subscriber))
    }

    fn take(&self) -> Vec<BTreeMap<String, String>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

// =======================================================================================
// The example over real HTTP/2, with tonic's client
// =======================================================================================

/// The example served on a free loopback port, and a client connected to it.
async fn example() -> HealthClient<Channel> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { grpc_example::serve(listener, &config()).await.unwrap() });
    client(addr).await
}

async fn client(addr: std::net::SocketAddr) -> HealthClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

fn ask(token: Option<&str>) -> tonic::Request<HealthCheckRequest> {
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: "orders".into(),
    });
    if let Some(t) = token {
        let value = format!("Bearer {t}").parse().unwrap();
        req.metadata_mut().insert("authorization", value);
    }
    req
}

#[track_caller]
fn refused(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().starts_with(&format!("{reason}: ")),
        "{status:?}"
    );
}

#[tokio::test]
async fn without_a_token_check_is_unauthenticated() {
    let (capture, _guard) = Capture::install();
    let mut client = example().await;
    let status = client.check(ask(None)).await.unwrap_err();
    refused(&status, Code::Unauthenticated, "credentials_missing");
    let challenge = status.metadata().get("www-authenticate").unwrap();
    assert_eq!(challenge.to_str().unwrap(), r#"Bearer realm="demo""#);
    assert!(status.metadata().get("x-request-id").is_some());
    let events = capture.take();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["reason"], "credentials_missing");
    assert_eq!(events[0]["status"], "401");
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated_with_its_reason() {
    let mut client = example().await;
    let expired = token(json!({"exp": now() - 3600, "iat": now() - 7200}));
    let status = client.check(ask(Some(&expired))).await.unwrap_err();
    refused(&status, Code::Unauthenticated, "token_expired");
    let challenge = status.metadata().get("www-authenticate").unwrap();
    assert!(challenge
        .to_str()
        .unwrap()
        .contains(r#"error="invalid_token""#));
}

#[tokio::test]
async fn a_valid_token_is_serving() {
    let mut client = example().await;
    let answer = client.check(ask(Some(&token(json!({}))))).await.unwrap();
    assert_eq!(answer.get_ref().status, ServingStatus::Serving as i32);
}

#[tokio::test]
async fn watch_needs_scope_admin() {
    let mut client = example().await;
    let plain = token(json!({"scope": "orders"}));
    let status = client.watch(ask(Some(&plain))).await.unwrap_err();
    refused(&status, Code::PermissionDenied, "insufficient_scope");
    assert!(
        status.message().contains("(required scope: admin)"),
        "{status:?}"
    );
    let challenge = status.metadata().get("www-authenticate").unwrap();
    let challenge = challenge.to_str().unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="admin""#), "{challenge}");

    let admin = token(json!({"scope": "orders admin"}));
    let mut stream = client.watch(ask(Some(&admin))).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
}

#[tokio::test]
async fn the_client_decodes_quotes_and_non_ascii_in_the_message() {
    let mut client = example().await;
    let odd = token(json!({"iss": "https://évil.example/\"x\"%"}));
    let status = client.check(ask(Some(&odd))).await.unwrap_err();
    refused(&status, Code::Unauthenticated, "token_issuer_mismatch");
    // The layer escapes what a token says before any answer quotes it; the rest is
    // percent-encoded on the wire and decoded by the client.
    let text = r#"iss https://\u{e9}vil.example/\"x\"%, expected https://issuer.demo.local"#;
    assert!(status.message().contains(text), "{status:?}");
}

#[tokio::test]
async fn a_server_fault_is_unavailable_around_a_generated_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let layer = grpc_example::layer(&config()).account_status(|_: &Principal| async {
        Err::<AccountStatus, _>(AuthFailure::unavailable("the account store is down"))
    });
    // The layer around tonic's generated server itself, tonic's body types throughout.
    let server = Server::builder()
        .layer(layer)
        .add_service(HealthServer::new(grpc_example::AllServing))
        .serve_with_incoming(
            tonic::codegen::tokio_stream::wrappers::TcpListenerStream::new(listener),
        );
    tokio::spawn(server);
    let mut client = client(addr).await;
    let status = client
        .check(ask(Some(&token(json!({})))))
        .await
        .unwrap_err();
    refused(&status, Code::Unavailable, "authenticator_unavailable");
    assert!(status.metadata().get("retry-after").is_some());
}

// =======================================================================================
// Request by request: the answer's bytes, the log, enforce mode
// =======================================================================================

fn grpc_request(path: &str, content_type: &str, token: Option<&str>) -> Request<Body> {
    grpc_request_with(path, content_type, token, Body::empty())
}

fn grpc_request_with(
    path: &str,
    content_type: &str,
    token: Option<&str>,
    body: Body,
) -> Request<Body> {
    let mut req = Request::post(format!("http://localhost{path}"))
        .header("content-type", content_type)
        .header("te", "trailers");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.body(body).unwrap()
}

async fn through_example(req: Request<Body>) -> Response<Body> {
    let svc = grpc_example::layer(&config()).layer(grpc_example::routes());
    svc.oneshot(req).await.unwrap().map(Body::new)
}

/// What a request's single event says, less what differs between any two requests.
fn event_without_ids(events: &[BTreeMap<String, String>]) -> BTreeMap<String, String> {
    assert_eq!(events.len(), 1, "{events:#?}");
    let mut e = events[0].clone();
    // `repro` repeats the request's headers, content type included.
    for varying in ["request_id", "method", "path", "repro"] {
        e.remove(varying);
    }
    e
}

#[tokio::test]
async fn every_grpc_content_type_gets_a_trailers_only_answer() {
    for ct in [
        "application/grpc",
        "application/grpc+proto",
        "application/grpc+json",
        "application/GRPC+custom",
    ] {
        let response = through_example(grpc_request(WATCH, ct, None)).await;
        assert_eq!(response.status(), StatusCode::OK, "{ct}");
        let h = response.headers().clone();
        assert_eq!(h["content-type"], "application/grpc", "{ct}");
        assert_eq!(h["grpc-status"], "16", "{ct}");
        let message = h["grpc-message"].to_str().unwrap();
        assert!(message.starts_with("credentials_missing: "), "{message}");
        assert_eq!(h.get_all("www-authenticate").iter().count(), 1);
        let body = response.into_body().collect().await.unwrap();
        assert!(body.trailers().is_none());
        assert!(body.to_bytes().is_empty(), "{ct}");
    }
    // Not gRPC: gRPC-Web and JSON get the HTTP answer.
    for ct in ["application/grpc-web+proto", "application/json"] {
        let response = through_example(grpc_request(WATCH, ct, None)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{ct}");
        assert!(response.headers().get("grpc-status").is_none());
    }
}

#[tokio::test]
async fn the_log_event_is_the_one_http_would_have() {
    let (capture, _guard) = Capture::install();
    let cases = [
        (None, "16"),
        (Some(token(json!({"exp": now() - 600}))), "16"),
        (Some(token(json!({"scope": "read"}))), "7"),
        (Some("not.a.jwt".to_owned()), "16"),
    ];
    for (t, code) in cases {
        let grpc = through_example(grpc_request(WATCH, "application/grpc", t.as_deref())).await;
        assert_eq!(grpc.headers()["grpc-status"], code);
        let grpc_event = event_without_ids(&capture.take());
        let http = through_example(grpc_request(WATCH, "application/json", t.as_deref())).await;
        let http_event = event_without_ids(&capture.take());
        assert_eq!(grpc_event, http_event);
        assert_eq!(grpc_event["status"], http.status().as_str());
    }
}

#[tokio::test]
async fn grpc_message_is_percent_encoded() {
    // A detail with a quote, CR LF and non-ASCII: the issuer the token names.
    let odd = token(json!({"iss": "é\"\r\n%"}));
    let response = through_example(grpc_request(WATCH, "application/grpc", Some(&odd))).await;
    let message = response.headers()["grpc-message"].to_str().unwrap();
    assert!(message.starts_with("token_issuer_mismatch: "), "{message}");
    assert!(
        message
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b'\r' && b != b'\n'),
        "{message}"
    );
    assert!(!message.contains("%\""), "{message}");
    // Whatever the layer keeps of the issuer, a raw % never reaches the wire unescaped.
    for (i, _) in message.match_indices('%') {
        let hex = &message[i + 1..i + 3];
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{message}");
    }
}

/// A service that refuses in gRPC's terms by itself.
#[derive(Clone, Copy)]
struct Refuses;

#[tonic::async_trait]
impl Health for Refuses {
    async fn check(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, Status> {
        Err(Status::unauthenticated("the service's own refusal"))
    }

    type WatchStream = <grpc_example::AllServing as Health>::WatchStream;

    async fn watch(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, Status> {
        Err(Status::permission_denied("no"))
    }
}

#[tokio::test]
async fn enforce_mode_leaves_the_services_grpc_answers_alone() {
    let (capture, _guard) = Capture::install();
    let layer = grpc_example::layer(&config()).enforce();
    let svc = layer.layer(HealthServer::new(Refuses));
    // One message, empty: a HealthCheckRequest with no service name.
    let req = grpc_request_with(
        "/grpc.health.v1.Health/Check",
        "application/grpc",
        Some(&token(json!({}))),
        Body::from(vec![0u8; 5]),
    );
    let response = svc.oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut seen = response.headers().clone();
    let body = response.into_body().collect().await.unwrap();
    // tonic answers a refusal trailers-only; trailers, if any, count too.
    seen.extend(body.trailers().cloned().unwrap_or_default());
    assert_eq!(seen["grpc-status"], "16", "{seen:?}");
    let status = Status::from_header_map(&seen).unwrap();
    assert_eq!(status.message(), "the service's own refusal");
    assert!(seen.get("www-authenticate").is_none());
    assert!(capture.take().is_empty());

    // An HTTP 401 that says it is gRPC is the service's too.
    let layer = grpc_example::layer(&config()).enforce();
    let svc = layer.layer(tower::service_fn(|_: Request<Body>| async {
        let response = Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("content-type", "application/grpc")
            .header("grpc-status", "16")
            .body(Body::empty())
            .unwrap();
        Ok::<_, std::convert::Infallible>(response)
    }));
    let req = grpc_request("/x.Y/Z", "application/grpc", Some(&token(json!({}))));
    let response = svc.oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("www-authenticate").is_none());
    assert_eq!(response.headers()["grpc-status"], "16");
    assert!(capture.take().is_empty());
}

#[tokio::test]
async fn an_application_refusal_reaches_a_grpc_client_decoded() {
    let (capture, _guard) = Capture::install();
    // The application refuses with its own words: quotes, CR LF, non-ASCII and a %.
    let detail = "caf\u{e9} \"ferm\u{e9}e\"\r\n100% \u{2713}";
    let svc = grpc_example::layer(&config()).layer(tower::service_fn(move |_: Request<Body>| {
        let failure = AuthFailure::new(auth_diagnostics::Reason::Forbidden).detail(detail);
        async move {
            Ok::<_, std::convert::Infallible>(axum::response::IntoResponse::into_response(failure))
        }
    }));
    let req = grpc_request("/x.Y/Z", "application/grpc+proto", Some(&token(json!({}))));
    let response = svc.oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let raw = response.headers()["grpc-message"].to_str().unwrap();
    assert!(raw.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{raw}");
    let status = Status::from_header_map(response.headers()).unwrap();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().starts_with("forbidden: "), "{status:?}");
    let events = capture.take();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["status"], "403");
    // The client decodes exactly what the application said.
    assert_eq!(status.message(), format!("forbidden: {detail}"));
    assert_eq!(
        raw,
        "forbidden: caf%C3%A9 \"ferm%C3%A9e\"%0D%0A100%25 %E2%9C%93"
    );
}

/// The failure counter's series for a gRPC refusal is the HTTP one: `status="401"`.
#[cfg(feature = "metrics")]
#[test]
fn the_failure_metric_keeps_the_http_status() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use tower::Service;

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        // A request without credentials is refused inside `call`, before any await.
        let mut svc = grpc_example::layer(&config()).layer(grpc_example::routes());
        for ct in ["application/grpc", "application/json"] {
            drop(svc.call(grpc_request(WATCH, ct, None)));
        }
    });
    let series: Vec<_> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "auth_diagnostics_failures_total")
        .collect();
    assert_eq!(series.len(), 1, "{series:#?}");
    let (key, _, _, value) = &series[0];
    let labels: BTreeMap<&str, &str> = key.key().labels().map(|l| (l.key(), l.value())).collect();
    assert_eq!(labels["status"], "401");
    assert_eq!(labels["reason"], "credentials_missing");
    assert_eq!(*value, DebugValue::Counter(2));
}

/// `cargo run --example grpc` as a user runs it: `GRPC_ADDR=:0`, JSON logs.
#[tokio::test]
async fn the_example_process_listens_and_logs_json() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    // target/<profile>/deps/grpc-HASH: the example is built beside it.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "test",
        Some(other) => other,
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--example",
            "grpc",
            "--profile",
            profile,
        ])
        .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(built.success());
    let mut cmd = Command::new(profile_dir.join("examples/grpc"));
    for (k, _) in std::env::vars() {
        if k.starts_with("DEMO_") || k.starts_with("GRPC_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .env("GRPC_ADDR", ":0")
        .env("DEMO_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(std::time::Duration::from_secs(30));
    let first: Value = serde_json::from_str(&first.unwrap()).unwrap();
    let message = first["message"].as_str().unwrap();
    let addr = message.strip_prefix("listening on http://").unwrap();
    let mut client = client(addr.parse().unwrap()).await;
    let status = client.check(ask(None)).await.unwrap_err();
    refused(&status, Code::Unauthenticated, "credentials_missing");
    // The layer's event, whatever else is logged around it.
    let event = std::iter::from_fn(|| rx.recv_timeout(std::time::Duration::from_secs(10)).ok())
        .map(|line| serde_json::from_str::<Value>(&line).unwrap())
        .find(|e| e.get("reason").is_some());
    let _ = child.kill();
    let _ = child.wait();
    let event = event.expect("the refusal is logged");
    assert_eq!(event["reason"], "credentials_missing", "{event}");
    assert_eq!(event["status"], 401, "{event}");
    assert_eq!(event["path"], "/grpc.health.v1.Health/Check", "{event}");
}

/// `HideForbidden` on a gRPC method: the refusal is the router's answer for a method it
/// lacks, `UNIMPLEMENTED` without a message, and the log keeps the real reason.
#[tokio::test]
async fn a_hidden_refusal_is_unimplemented() {
    let (capture, _guard) = Capture::install();
    let inner = tower::service_fn(|_: Request<Body>| async {
        let failure = AuthFailure::new(auth_diagnostics::Reason::Forbidden);
        Ok::<_, std::convert::Infallible>(axum::response::IntoResponse::into_response(failure))
    });
    let hidden = auth_diagnostics::authz::HideForbidden::new().layer(inner);
    let svc = grpc_example::layer(&config()).layer(hidden);
    let req = grpc_request("/x.Y/Z", "application/grpc", Some(&token(json!({}))));
    let response = svc.oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let h = response.headers();
    assert_eq!(h["grpc-status"], "12");
    assert!(h.get("grpc-message").is_none());
    assert!(h.get("www-authenticate").is_none());
    let events = capture.take();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["reason"], "forbidden");
    assert_eq!(events[0]["status"], "404");
}

/// `grpc-message` says what the problem body says, in either detail mode: its `reason`,
/// then its `detail`.
#[tokio::test]
async fn the_message_is_the_problem_bodys_reason_and_detail() {
    use auth_diagnostics::layer::DetailMode;
    let expired = token(json!({"exp": now() - 600}));
    let bad_sig = format!("{}x", token(json!({})));
    for detail in [DetailMode::Verbose, DetailMode::Production] {
        let cfg = GrpcConfig { detail, ..config() };
        for t in [None, Some(expired.as_str()), Some(bad_sig.as_str())] {
            let send = |ct: &str| {
                let svc = grpc_example::layer(&cfg).layer(grpc_example::routes());
                svc.oneshot(grpc_request("/grpc.health.v1.Health/Check", ct, t))
            };
            let grpc = send("application/grpc").await.unwrap();
            let status = Status::from_header_map(grpc.headers()).unwrap();
            let http = send("application/json").await.unwrap();
            let body = http.into_body().collect().await.unwrap().to_bytes();
            let problem: Value = serde_json::from_slice(&body).unwrap();
            let said = format!(
                "{}: {}",
                problem["reason"].as_str().unwrap(),
                problem["detail"].as_str().unwrap()
            );
            assert_eq!(status.message(), said, "{detail:?} {t:?}");
        }
    }
}
