//! The fuzz targets of `auth-diagnostics`: one function per target in `fuzz_targets/`, each
//! driving the library through its public API and asserting properties a client could
//! observe (a panic is a finding). `tests/replay.rs` replays every committed seed and
//! regression through the same functions on the stable toolchain, so `cargo test` at the
//! root proves them on every commit.
//!
//! Most targets send requests through a configured [`AuthDiagnostics`] layer and judge the
//! answer and the log as a client and an operator would see them, so a finding is a bug a
//! client can trigger.
//!
//! Inputs are split into fields at `\n` (or `\0` where the text itself may hold a line
//! break), and small "selector" bytes count from `'a'` or `'0'`, so seeds stay readable.
//! Challenges are checked against a second, independent parser (`http-auth`'s).

mod http_auth;

use auth_diagnostics::api_key::{ApiKey, ApiKeyAuthenticator};
use auth_diagnostics::authz::ResourceMetadata;
use auth_diagnostics::basic::{BasicAuthenticator, BasicCredentials};
use auth_diagnostics::dpop::Dpop;
use auth_diagnostics::failure::{AuthFailure, Challenge, TokenFacts};
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::{
    install_crypto_provider, FetchError, FetchErrorKind, FetchFuture, Fetched, HttpFetch,
    KeySource, StaticKey,
};
use auth_diagnostics::session::{SessionAuthenticator, SessionCookie};
use auth_diagnostics::store::MemoryReplayStore;
use auth_diagnostics::verify::AuthResult;
use auth_diagnostics::{AuthDiagnostics, Principal, Reason};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::fmt::Write as _;
use std::future::Future as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// One challenge as the independent parser read it: scheme, and parameters with their
/// values unquoted, in order. A token68 challenge has no parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Independent {
    scheme: String,
    params: Vec<(String, String)>,
}

// ---------------------------------------------------------------------------------------
// Shared fixtures
// ---------------------------------------------------------------------------------------

/// The HS256 secret, issuer and audience of every fuzzing layer.
const SECRET: &str = "fuzz-hs256-secret";
/// The issuer tokens must name.
const ISSUER: &str = "https://issuer.fuzz.example";
/// The audience tokens must name.
const AUDIENCE: &str = "fuzz-api";
/// The `Host` and URL DPoP proofs name (`htu`).
const DPOP_HTU: &str = "http://fuzz.example/dpop";
/// The origin of [`DPOP_HTU`]: the one the DPoP routes answer at.
const DPOP_ORIGIN: &str = "http://fuzz.example";

/// The DPoP client key (P-256), public on purpose: the demo key of `examples/common/dpop.rs`.
const DPOP_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgrSgjBYHKveycBQHE
ASctKFiBOlprw1SJTHRMjus29GuhRANCAARjFMqOapyfrVmPDBt5uhPkSwLCYwy+
/ZjlgMUJgbQF42ajBAed15B09VF/lzgefiktr5f58kmRx0yCh4gbhCVW
-----END PRIVATE KEY-----";
const DPOP_X: &str = "YxTKjmqcn61ZjwwbeboT5EsCwmMMvv2Y5YDFCYG0BeM";
const DPOP_Y: &str = "ZqMEB53XkHT1UX-XOB5-KS2vl_nySZHHTIKHiBuEJVY";

fn runtime() -> &'static tokio::runtime::Runtime {
    thread_local! {
        static RT: &'static tokio::runtime::Runtime = Box::leak(Box::new(
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a current-thread runtime"),
        ));
    }
    RT.with(|rt| *rt)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The fields of `data` split at `sep`.
fn fields(data: &[u8], sep: u8) -> Vec<&[u8]> {
    data.split(|&b| b == sep).collect()
}

/// `data` as text (lossy: the properties hold for any text).
fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// A selector byte counted from `base`, modulo `n`.
fn pick(byte: u8, base: u8, n: usize) -> usize {
    usize::from(byte.wrapping_sub(base)) % n
}

/// An HS256 JWT over `claims` with the fuzzing secret.
fn hs256(claims: &Value) -> String {
    install_crypto_provider();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("HS256 signing cannot fail")
}

/// A JWS over raw header and payload bytes, signed with `alg` and `key`.
fn sign_raw(
    header: &[u8],
    payload: &[u8],
    key: &jsonwebtoken::EncodingKey,
    alg: jsonwebtoken::Algorithm,
) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).expect("signing cannot fail");
    format!("{message}.{signature}")
}

fn hs256_key() -> &'static jsonwebtoken::EncodingKey {
    static KEY: OnceLock<jsonwebtoken::EncodingKey> = OnceLock::new();
    KEY.get_or_init(|| jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()))
}

fn dpop_key() -> &'static jsonwebtoken::EncodingKey {
    static KEY: OnceLock<jsonwebtoken::EncodingKey> = OnceLock::new();
    KEY.get_or_init(|| {
        install_crypto_provider();
        jsonwebtoken::EncodingKey::from_ec_pem(DPOP_KEY.as_bytes()).expect("the demo key")
    })
}

/// The RFC 7638 thumbprint of the DPoP client key.
fn dpop_jkt() -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{DPOP_X}","y":"{DPOP_Y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// A token the fuzzing layers accept until 2100, with scope `read`, bound to `jkt` when
/// given.
fn access_token(jkt: Option<&str>) -> String {
    let mut claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "scope": "read",
        "iat": 1_700_000_000, "exp": 4_102_444_800_i64,
    });
    if let Some(jkt) = jkt {
        claims["cnf"] = serde_json::json!({ "jkt": jkt });
    }
    hs256(&claims)
}

fn authenticator() -> JwtAuthenticator {
    JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer(ISSUER)
        .audience(AUDIENCE)
}

/// What a request's answer was: status, headers, body, and the log text it caused.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    log: String,
}

/// Sends `request` through `app` on this thread's runtime, capturing every tracing event.
fn send(app: &Router, request: Request<Body>) -> Answer {
    let capture = Capture::default();
    let log = capture.text.clone();
    let dispatch = tracing::Dispatch::new(capture);
    let (status, headers, body) =
        tracing::dispatcher::with_default(&dispatch, || runtime().block_on(call(app, request)));
    let log = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));
    if trace() {
        eprintln!(
            "fuzzing: {status} {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        );
    }
    Answer {
        status,
        headers,
        body,
        log,
    }
}

/// The answer of `app` to `request`: status, headers and body.
async fn call(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut svc = app.clone();
    std::future::poll_fn(|cx| tower_service::Service::<Request<Body>>::poll_ready(&mut svc, cx))
        .await
        .expect("a router is always ready");
    let response = tower_service::Service::call(&mut svc, request)
        .await
        .expect("a router never fails");
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .expect("the body reads");
    (parts.status, parts.headers, body.to_vec())
}

/// Whether `AUTH_DIAGNOSTICS_FUZZ_TRACE` is set: then every answer's status and body are
/// printed, to see what a seed reaches (`cargo test -p auth-diagnostics-fuzz -- --nocapture`).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("AUTH_DIAGNOSTICS_FUZZ_TRACE").is_some())
}

/// A subscriber that writes every event's and span's fields into one string, string
/// values as they are (so a secret in a field is found byte for byte).
#[derive(Default)]
struct Capture {
    text: Arc<Mutex<String>>,
    ids: std::sync::atomic::AtomicU64,
}

struct Collect<'a>(&'a mut String);

impl tracing::field::Visit for Collect<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        assert_log_text(field.name(), value);
        let _ = write!(self.0, "{}={} ", field.name(), value);
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let shown = format!("{value:?}");
        assert_log_text(field.name(), &shown);
        let _ = write!(self.0, "{}={} ", field.name(), shown);
    }
}

/// Log field values carry no control character: client text is escaped before it is
/// logged, so no request can forge a log line.
fn assert_log_text(name: &str, value: &str) {
    assert!(
        !value.chars().any(|c| c.is_control()),
        "log field {name} holds a control character: {value:?}"
    );
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut text = self.text.lock().unwrap_or_else(|e| e.into_inner());
        span.record(&mut Collect(&mut text));
        let id = self.ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::span::Id::from_u64(id + 1)
    }

    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut text = self.text.lock().unwrap_or_else(|e| e.into_inner());
        values.record(&mut Collect(&mut text));
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = self.text.lock().unwrap_or_else(|e| e.into_inner());
        event.record(&mut Collect(&mut text));
        text.push('\n');
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Every `WWW-Authenticate` line of `headers` (but those in `foreign`, which the wrapped
/// service wrote) is visible ASCII, parses with the independent parser as exactly one
/// challenge whose parameter names do not repeat, and reads the same with
/// [`Challenge::parse`].
fn check_challenges(headers: &HeaderMap, foreign: &[&[u8]]) -> usize {
    let mut n = 0;
    for value in headers.get_all(WWW_AUTHENTICATE) {
        if foreign.contains(&value.as_bytes()) {
            continue;
        }
        n += 1;
        let text = value.to_str().unwrap_or_else(|_| {
            panic!("a challenge is not visible ASCII: {value:?}");
        });
        assert!(
            text.bytes().all(|b| (0x20..=0x7e).contains(&b)),
            "a challenge holds a control byte: {text:?}"
        );
        let theirs = http_auth::parse(text)
            .unwrap_or_else(|e| panic!("challenge {text:?} does not parse: {e}"));
        assert_eq!(theirs.len(), 1, "one challenge per field line: {text:?}");
        let c = &theirs[0];
        let mut names: Vec<String> = c
            .params
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        names.sort();
        let len = names.len();
        names.dedup();
        assert_eq!(len, names.len(), "a parameter repeats in {text:?}");
        let ours = Challenge::parse(text)
            .unwrap_or_else(|| panic!("the library cannot read its own challenge {text:?}"));
        assert_eq!(ours.len(), 1, "{text:?}");
        assert_eq!(ours[0].scheme(), c.scheme, "{text:?}");
        let ours: Vec<(String, String)> = ours[0]
            .params()
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect();
        assert_eq!(ours, c.params, "the two parsers disagree on {text:?}");
    }
    n
}

/// A problem body: a JSON object whose `status` is the response's, with a known `reason`,
/// a `type` and a `title`.
fn check_problem(status: StatusCode, body: &[u8]) -> Value {
    let problem: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "the problem body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    });
    assert!(problem.is_object(), "{problem}");
    assert_eq!(
        problem["status"].as_u64(),
        Some(u64::from(status.as_u16())),
        "body status differs from the response's {status}: {problem}"
    );
    let reason = problem["reason"].as_str().expect("a reason");
    assert!(
        Reason::from_code(reason).is_some(),
        "unknown reason {reason}"
    );
    assert!(problem["type"].is_string() && problem["title"].is_string());
    problem
}

/// No secret appears in the answer or the log (see [`leaked`]).
fn assert_no_leak(answer: &Answer, secrets: &[Vec<u8>], public: &[u8]) {
    if let Some(secret) = leaked(answer, secrets, public).first() {
        panic!(
            "secret {:?} shows: {:?}\n{}\nlog: {}",
            String::from_utf8_lossy(secret),
            answer.headers,
            String::from_utf8_lossy(&answer.body),
            answer.log
        );
    }
}

/// The secrets that appear in the answer or the log. Secrets shorter than 16 bytes or
/// with fewer than 8 letters and digits are not looked for (they turn up in fixed texts by
/// chance), nor those also sent in the clear in `public` (as it is, or as the log's
/// `repro` line shows it: outside printable ASCII and `'` as `?`).
fn leaked(answer: &Answer, secrets: &[Vec<u8>], public: &[u8]) -> Vec<Vec<u8>> {
    let shown: Vec<u8> = String::from_utf8_lossy(public)
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '\'' => c as u8,
            _ => b'?',
        })
        .collect();
    secrets
        .iter()
        .filter(|s| checkable(s) && !contains(public, s) && !contains(&shown, s))
        .filter(|s| answer_contains(answer, s) || contains(answer.log.as_bytes(), s))
        .cloned()
        .collect()
}

/// `text` with every letter and digit moved one along its alphabet (`a`→`b`, `z`→`a`,
/// `9`→`0`): the same shape, other bytes.
fn rotate(text: &[u8]) -> Vec<u8> {
    text.iter()
        .map(|&b| match b {
            b'z' => b'a',
            b'Z' => b'A',
            b'9' => b'0',
            b'a'..=b'y' | b'A'..=b'Y' | b'0'..=b'8' => b + 1,
            other => other,
        })
        .collect()
}

/// `data` with every `from` replaced by `to` (of the same length).
fn replace_all(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// Whether `needle` occurs in `hay`. Compared byte by byte, not with `memcmp`: libFuzzer
/// hooks `memcmp` and would steer inputs to equal whatever text they are compared with,
/// which makes every leak check a hunt for fixed texts.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return false;
    };
    (0..hay.len().saturating_sub(rest.len())).any(|i| {
        hay[i] == first
            && hay[i + 1..i + 1 + rest.len()]
                .iter()
                .zip(rest)
                .all(|(a, b)| a == b)
    })
}

// ---------------------------------------------------------------------------------------
// credentials: one request through a configured layer
// ---------------------------------------------------------------------------------------

/// Header names a credentials input can set, selected by a byte counted from `'a'`.
const HEADERS: &[&str] = &[
    "authorization",                 // a
    "cookie",                        // b
    "x-api-key",                     // c
    "dpop",                          // d
    "x-auth-token",                  // e
    "token",                         // f
    "x-access-token",                // g
    "api-key",                       // h
    "x-authorization",               // i
    "x-forwarded-access-token",      // j
    "forwarded",                     // k
    "x-forwarded-for",               // l
    "via",                           // m
    "host",                          // n
    "x-request-id",                  // o
    "origin",                        // p
    "access-control-request-method", // q
    "x-fuzz-status",                 // r
    "x-fuzz-challenge",              // s
    "x-fuzz-reason",                 // t
    "x-id-token",                    // u
    "x-forwarded-authorization",     // v
];

/// Headers whose values are credentials: never to be echoed or logged.
const SECRET_HEADERS: &[&str] = &[
    "x-api-key",
    "x-auth-token",
    "token",
    "x-access-token",
    "api-key",
    "x-authorization",
    "x-forwarded-access-token",
    "x-id-token",
    "x-forwarded-authorization",
    "dpop",
];

/// Query names that carry credentials (`evidence.rs`'s list).
const SECRET_QUERY: &[&str] = &[
    "access_token",
    "token",
    "id_token",
    "auth_token",
    "jwt",
    "api_key",
    "apikey",
    "api-key",
];

/// The wrapped service: 200 `ok`, or what the request's `x-fuzz-*` headers ask: a status
/// with a challenge of its own, or an [`AuthFailure`] of a reason.
async fn upstream(headers: HeaderMap) -> Response {
    if let Some(code) = headers
        .get("x-fuzz-reason")
        .and_then(|v| v.to_str().ok())
        .and_then(Reason::from_code)
    {
        return AuthFailure::new(code)
            .detail("refused by the wrapped service")
            .into_response();
    }
    let status = match headers.get("x-fuzz-status").map(HeaderValue::as_bytes) {
        Some(b"401") => StatusCode::UNAUTHORIZED,
        Some(b"403") => StatusCode::FORBIDDEN,
        _ => StatusCode::OK,
    };
    let mut response = (status, "upstream").into_response();
    if let Some(challenge) = headers.get("x-fuzz-challenge") {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, challenge.clone());
    }
    response
}

/// Whether the wrapped service answers a refusal of its own (see [`upstream`]).
fn request_refuses(status: &[HeaderValue]) -> bool {
    status
        .first()
        .is_some_and(|v| v.as_bytes() == b"401" || v.as_bytes() == b"403")
}

fn router(layer: AuthDiagnostics) -> Router {
    Router::new()
        .route("/", any(upstream))
        .route("/{*rest}", any(upstream))
        .fallback(upstream)
        .layer(layer)
}

async fn verify_basic(c: BasicCredentials) -> AuthResult {
    match c.user.as_str() {
        "alice" if c.password.ct_eq("wonderland") => Ok(Principal::new("alice")),
        "alice" => Err(AuthFailure::new(Reason::BasicPasswordMismatch)),
        "down" => Err(AuthFailure::unavailable("the user store is down")),
        _ => Err(AuthFailure::new(Reason::BasicUserUnknown)),
    }
}

async fn verify_key(k: ApiKey) -> AuthResult {
    if k.0.ct_eq("key-0123456789abcdef") {
        Ok(Principal::new("service").with_scopes(["read"]))
    } else {
        Err(AuthFailure::new(Reason::ApiKeyUnknown))
    }
}

async fn verify_session(s: SessionCookie) -> AuthResult {
    if s.0.ct_eq("session-0123456789abcdef") {
        Ok(Principal::new("alice").with_scopes(["read"]))
    } else if s.0.ct_eq("expired-0123456789abcdef") {
        Err(AuthFailure::new(Reason::SessionExpired))
    } else {
        Err(AuthFailure::new(Reason::SessionInvalid))
    }
}

/// The four layers a credentials input can meet.
fn credential_apps() -> &'static [Router; 4] {
    static APPS: OnceLock<[Router; 4]> = OnceLock::new();
    APPS.get_or_init(|| {
        let all = || {
            AuthDiagnostics::new()
                .bearer(authenticator())
                .basic(BasicAuthenticator::new(verify_basic))
                .api_key(ApiKeyAuthenticator::new(verify_key).allow_query("api_key"))
                .session(SessionAuthenticator::new("sid", verify_session))
                .log_every_failure()
        };
        [
            router(all().verbose().realm("fuzz")),
            router(all().require_scope(["read"]).resource_metadata(
                ResourceMetadata::new("https://fuzz.example/api").authorization_servers([ISSUER]),
            )),
            router(AuthDiagnostics::new().verbose().log_every_failure()),
            router(
                AuthDiagnostics::new()
                    .observe()
                    .log_every_failure()
                    .dpop(Dpop::new(authenticator()).public_origin(DPOP_ORIGIN))
                    .bearer(authenticator()),
            ),
        ]
    })
}

/// Scans a request made of `data`'s fields through a layer.
///
/// Input: a flags byte (from `'0'`: bits 0-1 the layer: verbose Bearer+Basic+ApiKey+Session,
/// production with a required scope, no scheme in enforce mode, DPoP+Bearer in observe
/// mode; bits 2-3 the method), then `\n`-separated fields: the path and query, then
/// headers, each a selector byte (from `'a'`, see `HEADERS`) and the value.
///
/// Properties: the status is 200, 400, 401, 403 or 503 (or the metadata document's 204 and
/// 405); a 401 the layer sent has a
/// challenge; every challenge parses (with the independent parser and the library's, alike); a
/// problem body is JSON with the response's status; no credential appears in the answer
/// or the log; no log field holds a control character.
pub fn credentials(data: &[u8]) {
    // A secret that shows in the answer is echoed, or equals fixed text by chance: the same
    // request with the secret's letters and digits moved along tells which.
    for secret in scan(data) {
        let other = rotate(&secret);
        let again = replace_all(data, &secret, &other);
        let mut answer = None;
        let found = scan_with(&again, &mut answer);
        if let (true, Some(answer)) = (found.contains(&other), answer) {
            panic!(
                "secret {:?} echoed: {:?}\n{}\nlog: {}",
                String::from_utf8_lossy(&other),
                answer.headers,
                String::from_utf8_lossy(&answer.body),
                answer.log
            );
        }
    }
}

/// One credentials request, its properties checked: the secrets that show in the answer.
fn scan(data: &[u8]) -> Vec<Vec<u8>> {
    scan_with(data, &mut None)
}

/// One credentials request through the layer its flags select, its properties checked: the
/// secrets that show in the answer, which is left in `keep`.
fn scan_with(data: &[u8], keep: &mut Option<Answer>) -> Vec<Vec<u8>> {
    let Some((&flags, rest)) = data.split_first() else {
        return Vec::new();
    };
    let flags = flags.wrapping_sub(b'0');
    let which = usize::from(flags & 3);
    let method = [Method::GET, Method::POST, Method::OPTIONS, Method::DELETE]
        [usize::from(flags >> 2 & 3)]
    .clone();
    let sent = credentials_request(method, rest);
    let setting = Setting::of(which, &sent.request);
    let answer = send(&credential_apps()[which], sent.request);
    check_credentials_status(&answer, &setting);
    let foreign: Vec<&[u8]> = sent.foreign.iter().map(Vec::as_slice).collect();
    let challenges = check_challenges(&answer.headers, &foreign);
    check_refusal_body(&answer, &setting);
    check_unauthorized(&answer, &setting, challenges);
    let found = leaked(&answer, &sent.secrets, &sent.public);
    *keep = Some(answer);
    found
}

/// A credentials request, and what its answer may show and must not.
struct Sent {
    request: Request<Body>,
    /// The credentials it carries: none may show in the answer or the log.
    secrets: Vec<Vec<u8>>,
    /// The text it carries in the clear: a secret also found here is not looked for.
    public: Vec<u8>,
    /// The challenges it asks the wrapped service for: not checked as the layer's.
    foreign: Vec<Vec<u8>>,
}

/// The request a credentials input's fields make: the path and query, then one header
/// per field (a selector byte and the value); a target or value the request cannot hold
/// is left out.
fn credentials_request(method: Method, rest: &[u8]) -> Sent {
    let mut parts = fields(rest, b'\n').into_iter();
    let target = parts.next().unwrap_or_default();
    let uri = Uri::try_from(target)
        .ok()
        .filter(|u| u.scheme().is_none() && u.path().starts_with('/'))
        .unwrap_or_else(|| Uri::from_static("/"));
    let request = Request::builder()
        .method(method)
        .uri(uri.clone())
        .body(Body::empty())
        .expect("a request");
    let mut sent = Sent {
        request,
        secrets: Vec::new(),
        public: uri.path().as_bytes().to_vec(),
        foreign: Vec::new(),
    };
    for field in parts {
        let Some((&sel, value)) = field.split_first() else {
            continue;
        };
        let name = HEADERS[pick(sel, b'a', HEADERS.len())];
        let Ok(v) = HeaderValue::from_bytes(value) else {
            continue;
        };
        sent.request
            .headers_mut()
            .append(HeaderName::from_static(name), v);
        sent.header(name, value);
    }
    if let Some(q) = uri.query() {
        sent.query(uri.path(), q);
    }
    sent
}

impl Sent {
    /// Sorts the value of header `name` into secrets and public text.
    fn header(&mut self, name: &str, value: &[u8]) {
        match name {
            "authorization" => self.authorization(value),
            "cookie" => self.cookie(value),
            n if SECRET_HEADERS.contains(&n) => self.secrets.push(value.trim_ascii().to_vec()),
            "x-fuzz-challenge" => {
                self.foreign.push(value.to_vec());
                self.public.extend_from_slice(value);
            }
            _ => self.public.extend_from_slice(value),
        }
        self.public.push(b'\n');
    }

    /// An `Authorization` value: the credentials are secret, and so is the scheme word
    /// unless it is a known one; of Basic credentials the user is public, the password
    /// secret.
    fn authorization(&mut self, value: &[u8]) {
        let raw = value.trim_ascii();
        let (word, cred) = match raw.iter().position(|&b| b == b' ' || b == b'\t') {
            Some(i) => (&raw[..i], raw[i + 1..].trim_ascii()),
            None => (&raw[..0], raw),
        };
        self.secrets.push(cred.to_vec());
        let known = std::str::from_utf8(word).is_ok_and(is_known_scheme);
        if known {
            self.public.extend_from_slice(word);
        } else {
            self.secrets.push(word.to_vec());
        }
        if let Some(password) = std::str::from_utf8(cred).ok().and_then(decode_basic) {
            self.public.extend_from_slice(password.0.as_bytes());
            self.secrets.push(password.1.into_bytes());
        }
    }

    /// A `Cookie` value: every cookie's name is public, its value secret.
    fn cookie(&mut self, value: &[u8]) {
        for pair in value.split(|&b| b == b';') {
            match pair.iter().position(|&b| b == b'=') {
                Some(eq) => {
                    self.public.extend_from_slice(&pair[..eq]);
                    self.public.push(b' ');
                    self.secrets.push(pair[eq + 1..].trim_ascii().to_vec());
                }
                None => self.secrets.push(pair.trim_ascii().to_vec()),
            }
        }
    }

    /// The query `q` of `path`: credential values are secret, other pairs public, and so is
    /// the URL as the log's `repro` line shows it (names kept, values replaced).
    fn query(&mut self, path: &str, q: &str) {
        let mut masked = format!("\n{path}?");
        for pair in q.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let _ = write!(masked, "{name}=<value>&");
            if SECRET_QUERY.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                self.secrets.push(value.as_bytes().to_vec());
            } else {
                self.public.extend_from_slice(pair.as_bytes());
                self.public.push(b'&');
            }
        }
        self.public.extend_from_slice(masked.as_bytes());
    }
}

/// What a credentials answer is judged by beyond itself: the layer, and what the request
/// asked for.
struct Setting {
    /// The layer: an index into [`credential_apps`].
    which: usize,
    /// Whether the request asks layer 1 for its RFC 9728 document.
    metadata: bool,
    /// Whether the request is a CORS preflight.
    preflight: bool,
    /// Whether the request asks the wrapped service to refuse it (see [`upstream`]).
    upstream_refused: bool,
}

impl Setting {
    fn of(which: usize, request: &Request<Body>) -> Self {
        let foreign_status: Vec<HeaderValue> = request
            .headers()
            .get_all("x-fuzz-status")
            .iter()
            .cloned()
            .collect();
        Setting {
            which,
            metadata: which == 1
                && request.uri().path() == "/.well-known/oauth-protected-resource/api",
            preflight: is_preflight(request.method(), request.headers()),
            upstream_refused: request_refuses(&foreign_status),
        }
    }
}

/// The status is 200, 400, 401, 403 or 503, or the metadata document's.
fn check_credentials_status(answer: &Answer, setting: &Setting) {
    let status = answer.status.as_u16();
    // Layer 1 serves its RFC 9728 document: 204 to `OPTIONS`, 405 to methods but `GET`/`HEAD`.
    assert!(
        matches!(status, 200 | 400 | 401 | 403 | 503)
            || (setting.metadata && matches!(status, 204 | 405)),
        "status {status}: {}",
        String::from_utf8_lossy(&answer.body)
    );
}

/// A refusal of the authenticating layers is a problem body, and a problem body is JSON
/// with the answer's status, `Cache-Control: no-store` on a client error and `Retry-After`
/// on a 503.
fn check_refusal_body(answer: &Answer, setting: &Setting) {
    let status = answer.status.as_u16();
    let problem = answer
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v == "application/problem+json");
    // Layers 0 and 1 authenticate every request; a refusal is theirs (or a handler's
    // AuthFailure, which they render).
    if setting.which < 2 && status != 200 && !setting.upstream_refused && !setting.metadata {
        assert!(problem, "a refusal without a problem body: {status}");
    }
    if problem {
        check_problem(answer.status, &answer.body);
        if answer.status.is_client_error() {
            assert_eq!(
                answer
                    .headers
                    .get(http::header::CACHE_CONTROL)
                    .map(HeaderValue::as_bytes),
                Some(&b"no-store"[..]),
                "a problem answer without Cache-Control: no-store"
            );
        }
        if status == 503 {
            assert!(answer.headers.contains_key(http::header::RETRY_AFTER));
        }
    }
}

/// A 401 has a challenge, and one of the layer's (of the `challenges` it wrote) when an
/// authenticating layer refused.
fn check_unauthorized(answer: &Answer, setting: &Setting, challenges: usize) {
    let status = answer.status.as_u16();
    // Observe mode keeps every answer, and a refused CORS preflight is only logged.
    if status == 401 && setting.which != 3 && !(setting.preflight && setting.upstream_refused) {
        let all = answer.headers.get_all(WWW_AUTHENTICATE).iter().count();
        assert!(all > 0, "a 401 without a challenge");
        if setting.which < 2 && !setting.upstream_refused {
            assert!(challenges > 0, "a 401 without a challenge of the layer's");
        }
    }
}

/// The `Authorization` schemes the layer names in answers and logs (any other word may be
/// a secret sent without a scheme): the list in the library's `evidence.rs`.
const KNOWN_SCHEMES: &[&str] = &[
    "basic",
    "bearer",
    "digest",
    "negotiate",
    "ntlm",
    "hoba",
    "mutual",
    "vapid",
    "scram-sha-1",
    "scram-sha-256",
    "aws4-hmac-sha256",
    "privatetoken",
    "concealed",
    "dpop",
    "gnap",
    "oauth",
    "mac",
    "jwt",
    "token",
    "apikey",
    "api-key",
    "api_key",
    "x-api-key",
    "key",
    "sharedkey",
    "ssws",
    "hawk",
    "signature",
    "kerberos",
    "cookie",
];

fn is_known_scheme(word: &str) -> bool {
    KNOWN_SCHEMES.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(http::header::ORIGIN)
        && headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The documented caps of a Basic user-id and password, in bytes.
const MAX_BASIC_USER: usize = 256;
const MAX_BASIC_PASSWORD: usize = 1024;

/// RFC 7617 credentials as the layer documents it decodes them: base64 (padded or not)
/// of UTF-8 `user:password`, the user without `:`, within the caps, no control character.
fn decode_basic(token: &str) -> Option<(String, String)> {
    if token.len() > (MAX_BASIC_USER + MAX_BASIC_PASSWORD + 1).div_ceil(3) * 4 {
        return None;
    }
    let bytes = STANDARD
        .decode(token)
        .or_else(|_| STANDARD_NO_PAD.decode(token))
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    let fits = user.len() <= MAX_BASIC_USER && password.len() <= MAX_BASIC_PASSWORD;
    let clean = !user.chars().chain(password.chars()).any(char::is_control);
    (fits && clean).then(|| (user.to_owned(), password.to_owned()))
}

// ---------------------------------------------------------------------------------------
// challenge: building and rendering WWW-Authenticate
// ---------------------------------------------------------------------------------------

/// Auth-schemes a challenge input can use (a selector byte from `'a'`).
const SCHEMES: &[&str] = &[
    "Bearer",
    "Basic",
    "DPoP",
    "ApiKey",
    "Cookie",
    "Digest",
    "x!#$%&'*+-.^_`|~9",
];

/// Parameter names a quoted parameter can have (a selector byte from `'a'`).
const PARAM_NAMES: &[&str] = &[
    "realm",
    "charset",
    "algs",
    "header",
    "query",
    "name",
    "resource_metadata",
    "acr_values",
    "max_age",
    "error",
    "Realm",
    "x-custom",
];

/// Builds a challenge from `data` and reads it back.
///
/// Input: a scheme selector byte, then `\0`-separated operations, each an operation byte
/// (from `'a'`: realm, error, error_description, scope, quoted parameter, and `'f'` a
/// quoted parameter too) and its text (for a parameter: a name selector byte first). Or,
/// with the first byte `'#'`, any text for the two parsers alone. Long parameters (2048
/// characters) are built only inside the layer: the `problem` target checks them through
/// `acr_values`.
///
/// Properties: the rendered value is visible ASCII and the header value is the rendering
/// byte for byte; the independent parser reads exactly one challenge with the same scheme
/// and exactly the parameters set (first value of a name wins, names compared
/// case-insensitively), each value sanitized as documented; [`Challenge::parse`] agrees.
/// For free text: it does not panic, and where both parsers accept it they agree.
pub fn challenge(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel == b'#' {
        compare_readers(&text(rest));
        return;
    }
    let scheme = SCHEMES[pick(sel, b'a', SCHEMES.len())];
    let (c, expected) = build_challenge(scheme, rest);
    check_built_challenge(&c, scheme, expected);
}

/// Free text: [`Challenge::parse`] does not panic, and where both parsers accept the text
/// they agree.
fn compare_readers(text: &str) {
    let ours = Challenge::parse(text);
    if let (Some(ours), Ok(theirs)) = (ours, http_auth::parse(text)) {
        let ours: Vec<Independent> = ours
            .into_iter()
            .map(|c| {
                let params = c.params().iter();
                let params = params.map(|(n, v)| ((*n).to_owned(), v.clone())).collect();
                Independent {
                    scheme: c.scheme().to_owned(),
                    params,
                }
            })
            .collect();
        assert_eq!(ours, theirs, "the parsers disagree on {text:?}");
    }
}

/// The challenge of `scheme` that the `\0`-separated operations `ops` build, and the model
/// of it: each parameter's expected value, first one per name, in order.
fn build_challenge(scheme: &'static str, ops: &[u8]) -> (Challenge, Vec<(String, String)>) {
    let mut c = Challenge::new(scheme);
    let mut expected: Vec<(&'static str, String)> = Vec::new();
    for op in fields(ops, 0) {
        let Some((&kind, arg)) = op.split_first() else {
            continue;
        };
        c = apply_op(c, kind, &text(arg), &mut expected);
    }
    let expected = expected
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
    (c, expected)
}

/// Applies one operation to `c` (`kind` from `'a'`: realm, error, error_description,
/// scope, quoted parameter twice), and adds the value it sets to the model
/// `expected` unless a parameter of that name is there already.
fn apply_op(
    c: Challenge,
    kind: u8,
    arg: &str,
    expected: &mut Vec<(&'static str, String)>,
) -> Challenge {
    let mut add = |name: &'static str, value: Option<String>| {
        if let Some(v) = value {
            if !expected.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                expected.push((name, v));
            }
        }
    };
    match pick(kind, b'a', 6) {
        0 => {
            add("realm", Some(model_quoted(arg, 128)));
            c.realm(arg)
        }
        1 => {
            add("error", Some(model_6750(arg, 64)));
            c.error(arg)
        }
        2 => {
            let v = model_6750(arg, 256);
            add("error_description", (!v.is_empty()).then_some(v));
            c.error_description(arg)
        }
        3 => {
            let scopes: Vec<&str> = arg.split('|').collect();
            add("scope", model_scope(&scopes));
            c.scope(scopes)
        }
        4 | 5 => {
            let Some((name_sel, value)) = arg.split_at_checked(1) else {
                return c;
            };
            let name = PARAM_NAMES[pick(name_sel.as_bytes()[0], b'a', PARAM_NAMES.len())];
            add(name, Some(model_quoted(value, 128)));
            c.quoted_param(name, value)
        }
        _ => unreachable!(),
    }
}

/// The rendering of `c` is visible ASCII and its header value byte for byte; the
/// independent parser reads exactly one challenge of `scheme` with exactly the `expected` parameters;
/// [`Challenge::parse`] agrees.
fn check_built_challenge(c: &Challenge, scheme: &str, expected: Vec<(String, String)>) {
    let rendered = c.render();
    assert!(
        rendered.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "not visible ASCII: {rendered:?}"
    );
    assert_eq!(c.to_header_value().as_bytes(), rendered.as_bytes());
    assert_eq!(c.to_string(), rendered);
    let theirs =
        http_auth::parse(&rendered).unwrap_or_else(|e| panic!("{rendered:?} does not parse: {e}"));
    assert_eq!(theirs.len(), 1, "{rendered:?}");
    assert_eq!(theirs[0].scheme, scheme, "{rendered:?}");
    assert_eq!(theirs[0].params, expected, "{rendered:?}");
    let mut headers = HeaderMap::new();
    headers.insert(WWW_AUTHENTICATE, c.to_header_value());
    check_challenges(&headers, &[]);
}

/// What `realm` and quoted parameters are documented to keep: control characters dropped,
/// at most `max` characters, others than printable ASCII as `?`.
fn model_quoted(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max)
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

/// RFC 6750 §3 text as documented: trimmed, CR/LF dropped, `"` → `'`, `\` → `/`, others
/// outside `%x20-7E` → `?`, at most `max` characters.
fn model_6750(text: &str, max: usize) -> String {
    let v: String = text
        .trim()
        .chars()
        .filter(|&c| c != '\r' && c != '\n')
        .take(max)
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect();
    assert!(
        v.bytes()
            .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
        "{v:?}"
    );
    v
}

/// `scope` as documented: scope-token characters only, single spaces, at most 512 bytes.
fn model_scope(scopes: &[&str]) -> Option<String> {
    let mut out = String::new();
    for raw in scopes {
        for tok in raw.split(char::is_whitespace) {
            let clean: String = tok
                .chars()
                .filter(|&c| matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'))
                .collect();
            if clean.is_empty() || out.len() + clean.len() + 1 > 512 {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&clean);
        }
    }
    (!out.is_empty()).then_some(out)
}

// ---------------------------------------------------------------------------------------
// jwt: verification of any token
// ---------------------------------------------------------------------------------------

/// The cap of a token fact (`alg`, `kid`, `typ`, `iss`, `aud`, `sub`) in characters, before
/// the `…` that marks a cut.
const MAX_FACT: usize = 128;

/// Verifies a token with [`JwtAuthenticator::verify_at`].
///
/// Input: a mode byte, then: `'0'` (and anything else) a token as text; `'1'` a JOSE
/// header and a payload separated by `\0`, signed HS256 with the fuzzing secret so
/// verification reaches the claims.
///
/// Properties: no panic; verification succeeds only for a token of three segments whose
/// signature is the fuzzing secret's over the first two, whose claims name the expected
/// issuer and audience and whose `exp` is in the future (60 s leeway); a token that is not
/// three segments is `token_malformed`; every refusal is a client error; token facts are
/// capped and escaped (at most 128 characters and `…`, printable ASCII), verified ones
/// marked so.
pub fn jwt(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = 1_800_000_000;
    let token = match mode {
        b'1' => {
            let mut parts = rest.splitn(2, |&b| b == 0);
            let header = parts.next().unwrap_or_default();
            let payload = parts.next().unwrap_or_default();
            sign_raw(header, payload, hs256_key(), jsonwebtoken::Algorithm::HS256)
        }
        _ => text(rest).into_owned(),
    };
    static VERIFIER: OnceLock<JwtAuthenticator> = OnceLock::new();
    let verifier = VERIFIER.get_or_init(authenticator);
    match verifier.verify_at(&token, now) {
        Ok(v) => check_verified(&token, &v.claims, &v.facts, now),
        Err(f) => {
            assert!(f.reason().status().is_client_error(), "{f}");
            if token.trim().matches('.').count() < 2 {
                assert_eq!(f.reason(), Reason::TokenMalformed, "{token:?}: {f}");
            }
            if let Some(facts) = f.token_facts() {
                check_facts(facts);
            }
        }
    }
}

/// A verified token is three segments signed with the fuzzing secret, for the expected
/// issuer and audience, not expired at `now`; its facts are capped and marked verified.
fn check_verified(
    token: &str,
    claims: &serde_json::Map<String, Value>,
    facts: &TokenFacts,
    now: i64,
) {
    let (message, signature) = token.rsplit_once('.').expect("a verified token is a JWS");
    assert_eq!(
        message.matches('.').count(),
        1,
        "not three segments: {token:?}"
    );
    let expected = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        hs256_key(),
        jsonwebtoken::Algorithm::HS256,
    )
    .expect("signing cannot fail");
    assert_eq!(
        signature, expected,
        "a token verified without the secret's signature"
    );
    assert_eq!(claims.get("iss").and_then(Value::as_str), Some(ISSUER));
    let aud = claims.get("aud").expect("aud");
    assert!(
        aud.as_str() == Some(AUDIENCE)
            || aud
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(AUDIENCE))),
        "{aud}"
    );
    let exp = claims.get("exp").and_then(numeric_date);
    assert!(
        exp.is_some_and(|e| e.saturating_add(60) > now),
        "exp {exp:?}"
    );
    assert!(facts.verified);
    check_facts(facts);
}

/// A NumericDate claim as seconds: an integer, or a finite number cut to one.
fn numeric_date(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

fn check_facts(facts: &TokenFacts) {
    for text in [
        &facts.alg, &facts.kid, &facts.typ, &facts.iss, &facts.aud, &facts.sub,
    ]
    .into_iter()
    .flatten()
    {
        let text: &str = text;
        let body = text.strip_suffix('…').unwrap_or(text);
        assert!(body.len() <= MAX_FACT, "{text:?} is over the cap");
        assert!(
            body.bytes().all(|b| (0x20..=0x7e).contains(&b)),
            "{text:?} is not escaped"
        );
    }
}

// ---------------------------------------------------------------------------------------
// basic: RFC 7617 credentials through a layer
// ---------------------------------------------------------------------------------------

thread_local! {
    /// The credentials the Basic verify hook last received on this thread (the layer runs
    /// it on this thread's runtime).
    static BASIC_RECEIVED: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// A verify hook that accepts any credentials and records them.
async fn record_basic(c: BasicCredentials) -> AuthResult {
    let got = (c.user.clone(), c.password.expose().to_owned());
    BASIC_RECEIVED.with(|r| *r.borrow_mut() = Some(got));
    Ok(Principal::new("basic-user"))
}

/// The Basic layers: one that accepts Basic (verbose), and one with no scheme whose
/// wrapped service refuses, so the layer diagnoses the credentials it did not check.
fn basic_apps() -> &'static (Router, Router) {
    static APPS: OnceLock<(Router, Router)> = OnceLock::new();
    APPS.get_or_init(|| {
        let accepts = AuthDiagnostics::new()
            .verbose()
            .log_every_failure()
            .basic(BasicAuthenticator::new(record_basic));
        let diagnoses = AuthDiagnostics::new().verbose().log_every_failure();
        (router(accepts), router(diagnoses))
    })
}

/// Sends `Authorization: Basic <credentials>` (the wrapped service refusing with a 401 when
/// `refused`): the answer, and what the verify hook received. `None` when no header value
/// can hold the text.
fn send_basic(app: &Router, credentials: &str, refused: bool) -> Option<BasicAnswer> {
    let value = HeaderValue::from_bytes(format!("Basic {credentials}").as_bytes()).ok()?;
    let mut request = Request::builder()
        .uri("/basic")
        .header(http::header::AUTHORIZATION, value)
        .body(Body::empty())
        .expect("a request");
    if refused {
        let status = HeaderValue::from_static("401");
        request.headers_mut().insert("x-fuzz-status", status);
    }
    BASIC_RECEIVED.with(|r| r.borrow_mut().take());
    let answer = send(app, request);
    let received = BASIC_RECEIVED.with(|r| r.borrow_mut().take());
    check_challenges(&answer.headers, &[]);
    Some(BasicAnswer { answer, received })
}

struct BasicAnswer {
    answer: Answer,
    /// What the verify hook received: user and password.
    received: Option<(String, String)>,
}

/// Sends Basic credentials through a layer that accepts them, and through one that only
/// diagnoses them.
///
/// Input: a mode byte, then: `'0'` (and anything else) the text after `Basic `; `'1'` a
/// user and a password separated by `\0`, encoded here first; `'2'` the text after
/// `Basic `, for the diagnosis of a wrapped service's refusal.
///
/// Properties: no panic; what the verify hook receives has a user without `:`, neither
/// part with a control character, within the caps (256 and 1024 bytes), and sent again
/// encoded the hook receives the same; any user without `:` and password without control
/// characters within the caps reaches the hook as it was (a password with `:` too);
/// credentials that decode (RFC 7617, base64 with or without padding) always reach it;
/// every refusal is `basic_malformed` with a problem body; no password shows in an answer
/// or the log; a diagnosed refusal is a client error with a valid problem body.
pub fn basic(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (accepts, diagnoses) = basic_apps();
    match mode {
        b'1' => {
            let mut parts = rest.splitn(2, |&b| b == 0);
            let user = text(parts.next().unwrap_or_default()).into_owned();
            let password = text(parts.next().unwrap_or_default()).into_owned();
            let joined = format!("{user}:{password}");
            let encoded = STANDARD.encode(&joined);
            let ok = !user.contains(':')
                && !user.chars().chain(password.chars()).any(char::is_control)
                && user.len() <= MAX_BASIC_USER
                && password.len() <= MAX_BASIC_PASSWORD;
            let sent = send_basic(accepts, &encoded, false).expect("base64 is a header value");
            check_basic_leak(&sent.answer, &encoded);
            match &sent.received {
                Some((u, p)) => {
                    let (user, password) = joined.split_once(':').expect("a colon");
                    assert_eq!((u.as_str(), p.as_str()), (user, password));
                    assert_eq!(sent.answer.status, StatusCode::OK);
                }
                None => {
                    assert!(!ok, "{user:?}:{password:?} did not reach the hook");
                    check_basic_refusal(&sent.answer);
                }
            }
            if !user.contains(':') {
                check_diagnosis(diagnoses, &encoded);
            }
        }
        b'2' => check_diagnosis(diagnoses, &text(rest)),
        _ => {
            let text = text(rest);
            let Some(sent) = send_basic(accepts, &text, false) else {
                return;
            };
            check_basic_leak(&sent.answer, &text);
            match &sent.received {
                Some((user, password)) => {
                    check_received(user, password);
                    let again = STANDARD.encode(format!("{user}:{password}"));
                    let back = send_basic(accepts, &again, false).expect("base64");
                    assert_eq!(
                        back.received.as_ref(),
                        Some(&(user.clone(), password.clone()))
                    );
                }
                None => {
                    let model = decode_basic(&text);
                    assert!(
                        model.is_none() || text.trim() != text,
                        "{text:?} decodes to {model:?} but did not reach the hook"
                    );
                    check_basic_refusal(&sent.answer);
                }
            }
        }
    }
}

/// What the hook received: a user without `:`, within the caps, no control character.
fn check_received(user: &str, password: &str) {
    assert!(!user.contains(':'), "{user:?}");
    assert!(user.len() <= MAX_BASIC_USER);
    assert!(password.len() <= MAX_BASIC_PASSWORD);
    assert!(!user.chars().chain(password.chars()).any(char::is_control));
}

/// A refusal of Basic credentials the layer reads: `basic_malformed`, with a problem body.
fn check_basic_refusal(answer: &Answer) {
    let problem = check_problem(answer.status, &answer.body);
    assert_eq!(
        problem["reason"].as_str(),
        Some(Reason::BasicMalformed.code()),
        "{problem}"
    );
}

/// The password of `credentials` (when they decode) shows neither in the answer nor in
/// the log; the user may.
fn check_basic_leak(answer: &Answer, credentials: &str) {
    if let Some((user, password)) = decode_basic(credentials.trim()) {
        assert_no_leak(answer, &[password.into_bytes()], user.as_bytes());
    }
}

/// A wrapped service's 401 to `Basic <credentials>` on a layer with no scheme: a client
/// error, its problem body valid, no password shown.
fn check_diagnosis(app: &Router, credentials: &str) {
    let Some(sent) = send_basic(app, credentials, true) else {
        return;
    };
    assert!(sent.received.is_none());
    let answer = &sent.answer;
    assert!(answer.status.is_client_error(), "{}", answer.status);
    if answer
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v == "application/problem+json")
    {
        check_problem(answer.status, &answer.body);
    }
    check_basic_leak(answer, credentials);
}

// ---------------------------------------------------------------------------------------
// cookie: session cookies through a layer
// ---------------------------------------------------------------------------------------

/// The documented caps of the `Cookie` fields the layer reads: bytes and cookies, all
/// fields together.
const MAX_COOKIE_BYTES: usize = 16 * 1024;
const MAX_COOKIES: usize = 256;
/// The longest session cookie value the layer passes to its verify hook, in bytes.
const MAX_SESSION: usize = 4096;

thread_local! {
    /// The session cookie value the verify hook last received on this thread.
    static SESSION_RECEIVED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A verify hook that accepts any session and records its value.
async fn record_session(s: SessionCookie) -> AuthResult {
    let value = s.0.expose().to_owned();
    SESSION_RECEIVED.with(|r| *r.borrow_mut() = Some(value));
    Ok(Principal::new("session-user"))
}

/// A layer that reads no cookie: Bearer only, verbose.
fn bearer_app() -> &'static Router {
    static APP: OnceLock<Router> = OnceLock::new();
    APP.get_or_init(|| {
        router(
            AuthDiagnostics::new()
                .verbose()
                .log_every_failure()
                .bearer(authenticator()),
        )
    })
}

/// Sends `Cookie` fields through a layer with a session cookie, and through one that reads
/// no cookie.
///
/// Input: the session cookie's name, then `\n`-separated `Cookie` field values (a field
/// may repeat a run: a line `*N…` stands for the rest repeated N times, to reach the caps).
///
/// Properties: no panic; over the caps (16 KiB, 256 cookies in all fields) nothing reaches
/// the verify hook and the refusal says so with the counts; within them the hook receives
/// exactly the first pair of that name with a non-empty value, trimmed and unquoted (a
/// non-empty value with no surrounding whitespace or quotes, a slice of one field), when it
/// is UTF-8 and at most 4 KiB, and nothing otherwise; a refusal is a 401 with a parseable
/// `Cookie` challenge and a problem body; no cookie value shows in an answer or the log,
/// and nothing the layer writes about the cookies holds a control character.
pub fn cookie(data: &[u8]) {
    let mut parts = fields(data, b'\n').into_iter();
    let want = text(parts.next().unwrap_or_default()).into_owned();
    let (headers, raw) = cookie_fields(parts);
    let session = SessionAuthenticator::new(want.clone(), record_session);
    let app = router(
        AuthDiagnostics::new()
            .verbose()
            .log_every_failure()
            .session(session),
    );
    let secrets = cookie_values(&raw);
    let public = cookie_names(&raw, &want);

    SESSION_RECEIVED.with(|r| r.borrow_mut().take());
    let answer = send(&app, cookie_request(&headers));
    let received = SESSION_RECEIVED.with(|r| r.borrow_mut().take());
    check_challenges(&answer.headers, &[]);
    assert_no_leak(&answer, &secrets, &public);
    if let Some((bytes, count)) = over_cap(&raw) {
        assert_eq!(received, None, "a cookie was read over the caps");
        let problem = check_cookie_refusal(&answer);
        let counts = format!("{bytes} bytes in {count} cookies");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(&counts), "{detail:?} lacks {counts:?}");
    } else {
        let model = cookie_model(&raw, &want);
        match model.and_then(|v| std::str::from_utf8(v).ok()) {
            Some(value) if value.len() <= MAX_SESSION => {
                assert_eq!(received.as_deref(), Some(value), "cookie {want:?}");
                check_cookie_value(value.as_bytes(), &raw);
                assert_eq!(answer.status, StatusCode::OK);
            }
            _ => {
                assert_eq!(received, None, "cookie {want:?}: model {model:?}");
                check_cookie_refusal(&answer);
            }
        }
    }

    // A layer that reads no cookie explains the request from what it holds.
    let answer = send(bearer_app(), cookie_request(&headers));
    check_challenges(&answer.headers, &[]);
    assert_no_leak(&answer, &secrets, &public);
    check_cookie_refusal(&answer);
}

fn cookie_request(headers: &[HeaderValue]) -> Request<Body> {
    let mut request = Request::builder()
        .uri("/")
        .body(Body::empty())
        .expect("a request");
    for v in headers {
        request
            .headers_mut()
            .append(http::header::COOKIE, v.clone());
    }
    request
}

/// The `Cookie` fields the input's lines give (a line `*N…` stands for the rest repeated
/// N times), as header values and as bytes; a line no field value can hold is left out.
fn cookie_fields<'a>(lines: impl Iterator<Item = &'a [u8]>) -> (Vec<HeaderValue>, Vec<Vec<u8>>) {
    let mut headers = Vec::new();
    let mut raw: Vec<Vec<u8>> = Vec::new();
    for field in lines {
        let field = match field.strip_prefix(b"*") {
            Some(run) if !run.is_empty() => {
                let n = usize::from(run[0] % 64) * 8;
                run[1..].repeat(n)
            }
            _ => field.to_vec(),
        };
        if let Ok(v) = HeaderValue::from_bytes(&field) {
            headers.push(v);
            raw.push(field);
        }
    }
    (headers, raw)
}

/// The bytes and cookies of all fields, when they are over the caps.
fn over_cap(raw: &[Vec<u8>]) -> Option<(usize, usize)> {
    let bytes: usize = raw.iter().map(Vec::len).sum();
    let count: usize = raw
        .iter()
        .map(|f| f.iter().filter(|&&b| b == b';').count() + 1)
        .sum();
    (bytes > MAX_COOKIE_BYTES || count > MAX_COOKIES).then_some((bytes, count))
}

/// Every cookie's value, and every bare pair: what no answer or log may show.
fn cookie_values(raw: &[Vec<u8>]) -> Vec<Vec<u8>> {
    raw.iter()
        .flat_map(|f| f.split(|&b| b == b';'))
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(eq) => pair[eq + 1..].trim_ascii().to_vec(),
            None => pair.trim_ascii().to_vec(),
        })
        .collect()
}

/// Every cookie's name, and the configured one: text an answer may show.
fn cookie_names(raw: &[Vec<u8>], want: &str) -> Vec<u8> {
    let mut public = want.as_bytes().to_vec();
    for pair in raw.iter().flat_map(|f| f.split(|&b| b == b';')) {
        if let Some(eq) = pair.iter().position(|&b| b == b'=') {
            public.push(b'\n');
            public.extend_from_slice(&pair[..eq]);
        }
    }
    public
}

/// The model of the named lookup: the first `name=value` pair named `want` with a
/// non-empty value, trimmed and unquoted.
fn cookie_model<'a>(raw: &'a [Vec<u8>], want: &str) -> Option<&'a [u8]> {
    raw.iter()
        .flat_map(|f| f.split(|&b| b == b';'))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            let value = pair[eq + 1..].trim_ascii();
            let start = value.iter().position(|&b| b != b'"').unwrap_or(value.len());
            let end = value
                .iter()
                .rposition(|&b| b != b'"')
                .map_or(start, |e| e + 1);
            let value = &value[start..end.max(start)];
            (pair[..eq].trim_ascii() == want.as_bytes() && !value.is_empty()).then_some(value)
        })
        .next()
}

/// A refusal: a 401 with a challenge and a problem body whose texts hold no control
/// character.
fn check_cookie_refusal(answer: &Answer) -> Value {
    assert_eq!(
        answer.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(answer.headers.contains_key(WWW_AUTHENTICATE));
    let problem = check_problem(answer.status, &answer.body);
    check_printable(&problem);
    problem
}

/// Every string of a JSON value is free of control characters.
fn check_printable(value: &Value) {
    match value {
        Value::String(s) => assert!(!s.chars().any(char::is_control), "{s:?}"),
        Value::Array(a) => a.iter().for_each(check_printable),
        Value::Object(o) => o.values().for_each(check_printable),
        _ => {}
    }
}

fn check_cookie_value(value: &[u8], raw: &[Vec<u8>]) {
    assert!(!value.is_empty());
    // Trimmed, then unquoted: whitespace inside quotes stays.
    assert!(value.first() != Some(&b'"') && value.last() != Some(&b'"'));
    assert!(!value.contains(&b';'));
    assert!(raw.iter().any(|f| contains(f, value)));
}

// ---------------------------------------------------------------------------------------
// jwks: JWK sets and discovery documents
// ---------------------------------------------------------------------------------------

/// A fake identity provider: answers the fetches in turn, and remembers the URLs.
struct Provider {
    answers: Mutex<std::collections::VecDeque<Fetched>>,
    urls: Arc<Mutex<Vec<String>>>,
}

impl HttpFetch for Provider {
    fn get<'a>(&'a self, url: &'a str, _max_bytes: usize) -> FetchFuture<'a> {
        self.urls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(url.to_owned());
        let answer = self
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front();
        Box::pin(async move {
            answer.ok_or_else(|| FetchError::new(FetchErrorKind::Connect, "no more answers"))
        })
    }
}

fn fetched(status: StatusCode, body: &[u8]) -> Fetched {
    Fetched {
        status,
        cache_control: Some("max-age=600".into()),
        body: bytes::Bytes::copy_from_slice(body),
    }
}

/// Reads a JWK set, or discovers one, through a fake provider and a layer's readiness.
///
/// Input: a mode byte (from `'0'`): bit 0 clear: the rest is the JWK set at a JWK set URL,
/// with bits 1-3 its key limit; bit 0 set: discovery of issuer `https://issuer.fuzz.example`
/// (bit 1: with path `/realms/x`), the OpenID location answering 404 when bit 2 is set,
/// and the rest a discovery document and a JWK set separated by `\0`.
///
/// Properties: no panic; a set over its limit, or not a JSON object with a `keys` array,
/// is refused whole, and a source without keys says why (one line). Discovery asks the
/// OpenID location first, RFC 8414's after a 404, and fetches a key set only from the
/// `jwks_uri` of a JSON document whose `issuer` is the configured one exactly, and only
/// over `https` (or `http` to a loopback host); a source holds keys only from there, and
/// then reports no error.
pub fn jwks(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mode = mode.wrapping_sub(b'0');
    if mode & 1 == 0 {
        jwk_set(mode, rest);
    } else {
        discovery(mode, rest);
    }
}

/// Reads the JWK set `set` with the key limit bits 1-3 of `mode` give, and checks what
/// came of it.
fn jwk_set(mode: u8, set: &[u8]) {
    let max_keys = usize::from(mode >> 1 & 7) * 4 + 1;
    let (state, urls) = fetch_keys(
        KeySource::jwks("https://keys.fuzz.example/jwks.json").max_keys(max_keys),
        ISSUER,
        vec![fetched(StatusCode::OK, set)],
    );
    assert_eq!(urls, ["https://keys.fuzz.example/jwks.json"]);
    let doc: Option<Value> = serde_json::from_slice(set).ok();
    let listed = doc
        .as_ref()
        .and_then(|d| d.get("keys"))
        .and_then(Value::as_array)
        .map(Vec::as_slice);
    check_set_outcome(&state, listed, max_keys);
}

/// A set is kept only when it is a `keys` array of at most `max_keys` keys; otherwise the
/// source says why.
fn check_set_outcome(state: &Fetch, listed: Option<&[Value]>, max_keys: usize) {
    if state.ready {
        let listed = listed.expect("a kept set has a keys array");
        assert!(listed.len() <= max_keys, "{} keys kept", listed.len());
        assert!(!listed.is_empty());
    } else {
        let e = state
            .error
            .as_ref()
            .expect("a source without keys says why");
        assert!(!e.is_empty());
    }
    if let Some(e) = &state.error {
        assert!(!e.chars().any(|c| c == '\r' || c == '\n'), "{e:?}");
    }
}

/// Discovers the keys of the issuer `mode` names (bit 1: with path `/realms/x`) through a
/// fake provider answering 404 at the OpenID location when bit 2 is set, then `rest`'s
/// discovery document and JWK set (separated by `\0`).
fn discovery(mode: u8, rest: &[u8]) {
    let issuer = if mode & 2 == 0 {
        ISSUER.to_owned()
    } else {
        format!("{ISSUER}/realms/x")
    };
    let oidc_404 = mode & 4 != 0;
    let mut parts = rest.splitn(2, |&b| b == 0);
    let doc = parts.next().unwrap_or_default();
    let set = parts.next().unwrap_or_default();
    let answers = discovery_answers(oidc_404, doc, set);
    let (state, urls) = fetch_keys(KeySource::discover(issuer.clone()), &issuer, answers);
    let doc: Option<Value> = serde_json::from_slice(doc).ok();
    let trusted = trusted_jwks_uri(doc.as_ref(), &issuer);
    let expected = discovery_urls(mode, &issuer, trusted);
    assert_eq!(urls, expected, "fetched {urls:?}");
    check_discovered(&state, trusted);
}

/// The fake provider's answers in turn: a 404 when `oidc_404`, the document, the set.
fn discovery_answers(oidc_404: bool, doc: &[u8], set: &[u8]) -> Vec<Fetched> {
    let mut answers = Vec::new();
    if oidc_404 {
        answers.push(fetched(StatusCode::NOT_FOUND, b"not here"));
    }
    answers.push(fetched(StatusCode::OK, doc));
    answers.push(fetched(StatusCode::OK, set));
    answers
}

/// The `jwks_uri` of a JSON document whose `issuer` is `issuer` exactly, where keys may
/// come from: the only place keys may be fetched.
fn trusted_jwks_uri<'a>(doc: Option<&'a Value>, issuer: &str) -> Option<&'a str> {
    doc.filter(|d| d.get("issuer").and_then(Value::as_str) == Some(issuer))
        .and_then(|d| d.get("jwks_uri"))
        .and_then(Value::as_str)
        .filter(|u| may_serve_keys(u))
}

/// The URLs discovery must fetch, in order: the OpenID location, RFC 8414's after a 404
/// (bit 2 of `mode`), then the `trusted` key set location.
fn discovery_urls(mode: u8, issuer: &str, trusted: Option<&str>) -> Vec<String> {
    let mut expected = vec![format!("{issuer}/.well-known/openid-configuration")];
    if mode & 4 != 0 {
        expected.push(match mode & 2 {
            0 => "https://issuer.fuzz.example/.well-known/oauth-authorization-server".to_owned(),
            _ => "https://issuer.fuzz.example/.well-known/oauth-authorization-server/realms/x"
                .to_owned(),
        });
    }
    if let Some(uri) = trusted {
        expected.push(uri.to_owned());
    }
    expected
}

/// Keys are kept only from a `trusted` location, and then no error is reported; a source
/// without keys says why.
fn check_discovered(state: &Fetch, trusted: Option<&str>) {
    if state.ready {
        assert!(trusted.is_some(), "keys kept from an untrusted location");
        assert_eq!(state.error, None);
    } else {
        let e = state
            .error
            .as_ref()
            .expect("a source without keys says why");
        assert!(!e.is_empty());
    }
}

/// One fetch by `source` from a fake provider answering `answers` in turn, seen through the
/// readiness of a layer whose Bearer authenticator (for `issuer`) reads it: the source's
/// state once the fetch ended, and the URLs fetched.
fn fetch_keys(source: KeySource, issuer: &str, answers: Vec<Fetched>) -> (Fetch, Vec<String>) {
    let urls = Arc::new(Mutex::new(Vec::new()));
    let provider = Provider {
        answers: Mutex::new(answers.into()),
        urls: urls.clone(),
    };
    let jwt = JwtAuthenticator::from_source(source.http_client(provider))
        .issuer(issuer)
        .audience(AUDIENCE);
    let state = runtime().block_on(async {
        // A layer that serves a request fetches its keys, on this runtime.
        let layer = AuthDiagnostics::new().bearer(jwt);
        let request = Request::builder().uri("/").body(Body::empty());
        call(&router(layer.clone()), request.expect("a request")).await;
        // Done once the source holds keys or an error and nothing more is fetched.
        let (mut settled, mut seen) = (0, usize::MAX);
        for _ in 0..2000 {
            tokio::task::yield_now().await;
            let state = Fetch::of(&layer);
            let n = urls.lock().unwrap_or_else(|e| e.into_inner()).len();
            let done = (state.ready || state.error.is_some()) && n == seen;
            settled = if done { settled + 1 } else { 0 };
            seen = n;
            if settled > 20 {
                break;
            }
        }
        assert!(settled > 20, "the fetch did not finish");
        Fetch::of(&layer)
    });
    let urls = urls.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if trace() {
        eprintln!(
            "fuzzing: fetched {urls:?}: ready {}, error {:?}",
            state.ready, state.error
        );
    }
    (state, urls)
}

/// What a source holds after a fetch, as the layer's readiness says it.
struct Fetch {
    ready: bool,
    error: Option<String>,
}

impl Fetch {
    fn of(layer: &AuthDiagnostics) -> Self {
        let readiness = layer.readiness();
        let [source] = readiness.sources.as_slice() else {
            panic!("one key source: {:?}", readiness.sources.len());
        };
        Fetch {
            ready: source.ready,
            error: source.error.clone(),
        }
    }
}

/// `https` with a host, or `http` to a loopback host: where keys may come from.
fn may_serve_keys(url: &str) -> bool {
    let Ok(uri) = url.parse::<Uri>() else {
        return false;
    };
    let host = uri.host().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") => !host.is_empty(),
        Some("http") => loopback,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// dpop: proofs through a DPoP layer
// ---------------------------------------------------------------------------------------

/// The DPoP layers: no nonce, and nonces required.
fn dpop_apps() -> &'static (Router, Router, String) {
    static APPS: OnceLock<(Router, Router, String)> = OnceLock::new();
    APPS.get_or_init(|| {
        let layer = |nonce: bool| {
            let d = Dpop::new(authenticator())
                .public_origin(DPOP_ORIGIN)
                .replay_store(MemoryReplayStore::with_capacity(50_000));
            let d = if nonce {
                d.require_nonce(Duration::from_secs(24 * 3600))
                    .nonce_key([7; 32])
            } else {
                d
            };
            AuthDiagnostics::new().verbose().log_every_failure().dpop(d)
        };
        let plain = router(layer(false));
        let nonced = router(layer(true));
        // A nonce of the nonced layer, from its answer to a proof without one.
        let token = access_token(Some(&dpop_jkt()));
        let payload = serde_json::json!({
            "jti": "nonce-probe", "htm": "GET", "htu": DPOP_HTU, "iat": now(), "ath": ath(&token),
        });
        let proof = dpop_proof(&default_proof_header(), payload.to_string().as_bytes());
        let answer = send(
            &nonced,
            dpop_request(Method::GET, &token, &[proof.as_bytes()]),
        );
        let nonce = answer
            .headers
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .expect("a nonce")
            .to_owned();
        (plain, nonced, nonce)
    })
}

fn default_proof_header() -> Vec<u8> {
    serde_json::json!({
        "typ": "dpop+jwt", "alg": "ES256",
        "jwk": { "kty": "EC", "crv": "P-256", "x": DPOP_X, "y": DPOP_Y },
    })
    .to_string()
    .into_bytes()
}

fn dpop_proof(header: &[u8], payload: &[u8]) -> String {
    sign_raw(header, payload, dpop_key(), jsonwebtoken::Algorithm::ES256)
}

fn dpop_request(method: Method, token: &str, proofs: &[&[u8]]) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri("/dpop")
        .header("host", "fuzz.example")
        .header("authorization", format!("DPoP {token}"))
        .body(Body::empty())
        .expect("a request");
    for proof in proofs {
        if let Ok(v) = HeaderValue::from_bytes(proof) {
            request.headers_mut().append("dpop", v);
        }
    }
    request
}

/// Replaces the placeholders a DPoP template may hold: `NOW` (the time), `ATH` (the
/// token's hash), `NONCE` (a nonce of the nonced layer), `HTU`, `JTI` (a fresh id).
fn fill(template: &[u8], token: &str, nonce: &str) -> Vec<u8> {
    static JTI: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let text = String::from_utf8_lossy(template);
    let jti = JTI.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    text.replace("NOW", &now().to_string())
        .replace("ATH", &ath(token))
        .replace("NONCE", nonce)
        .replace("HTU", DPOP_HTU)
        .replace("JTI", &format!("fuzz-{}-{jti}", std::process::id()))
        .into_bytes()
}

/// Sends a DPoP request with a proof made of `data`.
///
/// Input: a flags byte (from `'0'`): bits 0-1 the proof: the DPoP header as is; a payload
/// template signed with the client key under the usual header; a header and a payload
/// template separated by `\0`, signed; a payload template signed, with an access token
/// bound to another key. Bit 2: `POST` instead of `GET`. Bit 3: the layer requires
/// nonces. Bit 4: the request is sent twice. Bit 5: the proof header is sent twice.
/// Templates may say `NOW`, `ATH`, `NONCE`, `HTU` and `JTI`, replaced before signing.
///
/// Properties: the status is 200, 400, 401 or 503; a request is accepted only with one
/// proof, signed by the key its token is bound to, of `typ` `dpop+jwt`, for its method,
/// URL and token (`ath`), made within the accepted window, with the layer's nonce where
/// one is required; a proof is accepted once; every challenge parses; the body is a
/// problem body with the response's status; the token never appears in the answer or log.
pub fn dpop(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let flags = DpopFlags::read(flags.wrapping_sub(b'0'));
    let (plain, nonced, nonce) = dpop_apps();
    let app = if flags.nonce_layer { nonced } else { plain };
    let token = if flags.bound() {
        access_token(Some(&dpop_jkt()))
    } else {
        access_token(Some("not-the-thumbprint-of-the-proof-key"))
    };
    let proof = input_proof(flags.proof, rest, &token, nonce);
    let proofs: Vec<&[u8]> = if flags.twice_header {
        vec![&proof, &proof]
    } else {
        vec![&proof]
    };
    let mut accepted = 0;
    for _ in 0..flags.sends {
        let answer = send(app, dpop_request(flags.method.clone(), &token, &proofs));
        check_dpop_status(&answer);
        check_challenges(&answer.headers, &[]);
        if answer.status == StatusCode::OK {
            accepted += 1;
            check_accepted_proof(&flags, &proof, &token, nonce);
        } else {
            check_dpop_refusal(&answer);
        }
        assert_no_leak(&answer, &[token.clone().into_bytes()], &proof);
    }
    assert!(accepted <= 1, "one proof accepted twice");
}

/// What the flags byte of a DPoP input asks for (see [`dpop`]).
struct DpopFlags {
    /// Bits 0-1: how the proof is made.
    proof: u8,
    /// Bit 2: `POST` instead of `GET`.
    method: Method,
    /// Bit 3: the layer requires nonces.
    nonce_layer: bool,
    /// Bit 4: the request is sent twice.
    sends: usize,
    /// Bit 5: the proof header is sent twice.
    twice_header: bool,
}

impl DpopFlags {
    fn read(flags: u8) -> Self {
        DpopFlags {
            proof: flags & 3,
            method: if flags & 4 != 0 {
                Method::POST
            } else {
                Method::GET
            },
            nonce_layer: flags & 8 != 0,
            sends: if flags & 16 != 0 { 2 } else { 1 },
            twice_header: flags & 32 != 0,
        }
    }

    /// Whether the access token is bound to the proof's key: all but the last proof mode.
    fn bound(&self) -> bool {
        self.proof != 3
    }
}

/// The proof `mode` makes of `rest`: the DPoP header as is; a payload template signed
/// with the client key under the usual header; a header and a payload template separated
/// by `\0`, signed; a payload template signed (for a token bound to another key).
fn input_proof(mode: u8, rest: &[u8], token: &str, nonce: &str) -> Vec<u8> {
    match mode {
        0 => rest.to_vec(),
        2 => {
            let mut parts = rest.splitn(2, |&b| b == 0);
            let header = fill(parts.next().unwrap_or_default(), token, nonce);
            let payload = fill(parts.next().unwrap_or_default(), token, nonce);
            dpop_proof(&header, &payload).into_bytes()
        }
        _ => {
            let payload = fill(rest, token, nonce);
            dpop_proof(&default_proof_header(), &payload).into_bytes()
        }
    }
}

/// The status is 200, 400, 401 or 503.
fn check_dpop_status(answer: &Answer) {
    let status = answer.status.as_u16();
    assert!(
        matches!(status, 200 | 400 | 401 | 503),
        "status {status}: {}",
        String::from_utf8_lossy(&answer.body)
    );
}

/// An accepted request had one proof, signed by the key its token is bound to, of `typ`
/// `dpop+jwt`, for its method and token (`ath`), made within the accepted window, with the
/// layer's nonce where one is required.
fn check_accepted_proof(flags: &DpopFlags, proof: &[u8], token: &str, nonce: &str) {
    assert!(!flags.twice_header, "accepted with two DPoP headers");
    assert!(
        flags.bound(),
        "accepted a proof for a token bound to another key"
    );
    let proof = std::str::from_utf8(proof).expect("an accepted proof is text");
    let mut segments = proof.trim().split('.');
    let header = segments.next().and_then(json_segment);
    let claims = segments.next().and_then(json_segment);
    let (Some(header), Some(claims)) = (header, claims) else {
        panic!("an accepted proof is not a JWS: {proof:?}");
    };
    assert!(header["typ"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")
            || t.eq_ignore_ascii_case("application/dpop+jwt")));
    let jwk = &header["jwk"];
    assert_eq!(jwk["x"], DPOP_X);
    assert_eq!(jwk["y"], DPOP_Y);
    assert_eq!(claims["htm"], flags.method.as_str());
    assert_eq!(claims["ath"], ath(token).as_str());
    let iat = claims.get("iat").and_then(numeric_date).expect("an iat");
    let now = now();
    assert!(iat >= now - 60 - 30 - 5 && iat <= now + 30 + 5, "iat {iat}");
    if flags.nonce_layer {
        assert_eq!(claims["nonce"], nonce);
    }
}

/// A refusal is a problem body with the answer's status, and a 401 has a challenge.
fn check_dpop_refusal(answer: &Answer) {
    assert_eq!(
        answer.headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes),
        Some(&b"application/problem+json"[..])
    );
    check_problem(answer.status, &answer.body);
    if answer.status.as_u16() == 401 {
        assert!(answer.headers.contains_key(WWW_AUTHENTICATE));
    }
}

/// A JWS segment as JSON: base64url (unpadded, or padded) of a JSON value.
fn json_segment(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(segment))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

// ---------------------------------------------------------------------------------------
// problem: every reason, refused by a handler and answered by a layer
// ---------------------------------------------------------------------------------------

thread_local! {
    /// The failure the handler of a problem app answers with next, on this thread.
    static REFUSAL: RefCell<Option<AuthFailure>> = const { RefCell::new(None) };
}

/// The handler of a problem app: refuses with the failure set for it.
async fn refuse() -> Response {
    match REFUSAL.with(|r| r.borrow_mut().take()) {
        Some(f) => f.into_response(),
        None => "no failure set".into_response(),
    }
}

async fn verify_any_basic(_: BasicCredentials) -> AuthResult {
    Ok(Principal::new("alice"))
}

/// Refuses with a failure of every reason, with the facts `data` gives, from a handler
/// behind a layer configured as `data` says, in both detail modes; and renders each on its
/// own (`IntoResponse`, the defaults).
///
/// Input: a flags byte (bits select the layer's schemes: Bearer, Basic, ApiKey, DPoP,
/// Cookie; bit 5 a resource metadata document; bit 6 a required scope; bit 7 a request
/// id), then `\0`-separated texts: detail, hint, scope, check, user, (received scheme,
/// claim, expected issuer, expected audience: unused), acr_values, (DPoP nonce: unused),
/// realm, resource path of the metadata, required scope, request id, cookie name,
/// (location name: unused). The unused texts are facts only the library sets; the
/// `credentials` and `dpop` targets reach them with real requests.
///
/// Properties: the status is the reason's; the body is a problem body (JSON, that
/// `status`, a known `reason`, `Content-Type: application/problem+json`); a 401 carries a
/// challenge, and every challenge parses alike with the
/// independent parser and [`Challenge::parse`]; the long parameters `acr_values` and
/// `resource_metadata` are the documented sanitizing of what was set; production answers
/// show neither the detail, the hint nor the user, and no answer shows the user; a hint
/// never shows in production.
pub fn problem(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let input = ProblemInput::read(flags, rest);
    let apps = [
        (input.app(false), Detail::Production),
        (input.app(true), Detail::Verbose),
    ];
    for &reason in Reason::ALL {
        check_reason(&input, &apps, reason);
    }
}

/// The detail mode of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    Production,
    Verbose,
}

/// A problem input: the flags byte and the texts (see [`problem`]).
struct ProblemInput {
    flags: u8,
    /// The 17 texts, the missing ones empty.
    texts: Vec<String>,
}

impl ProblemInput {
    fn read(flags: u8, rest: &[u8]) -> Self {
        let texts: Vec<String> = fields(rest, 0)
            .into_iter()
            .map(|f| text(f).into_owned())
            .chain(std::iter::repeat(String::new()))
            .take(17)
            .collect();
        ProblemInput { flags, texts }
    }

    /// Text `i`, unless it is empty.
    fn opt(&self, i: usize) -> Option<String> {
        (!self.texts[i].is_empty()).then(|| self.texts[i].clone())
    }

    /// The resource metadata document bit 5 asks for: `https://fuzz.example/` and text 12's
    /// letters, digits and slashes (a valid identifier, so the layer builds).
    fn metadata(&self) -> Option<ResourceMetadata> {
        let path: String = self.texts[12]
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '/')
            .take(64)
            .collect();
        (self.flags & 32 != 0).then(|| {
            ResourceMetadata::new(format!("https://fuzz.example/{path}"))
                .authorization_servers([ISSUER])
        })
    }

    /// The layer: optional (so every request reaches the handler), the realm, the selected
    /// schemes, and the metadata and required scope bits 5 and 6 ask for.
    fn app(&self, verbose: bool) -> Router {
        let mut layer = AuthDiagnostics::new()
            .optional()
            .log_every_failure()
            .realm(self.texts[11].clone());
        if verbose {
            layer = layer.verbose();
        }
        if self.flags & 1 != 0 {
            layer = layer.bearer(authenticator());
        }
        if self.flags & 2 != 0 {
            layer = layer.basic(BasicAuthenticator::new(verify_any_basic));
        }
        if self.flags & 4 != 0 {
            layer = layer.api_key(ApiKeyAuthenticator::new(verify_key).allow_query("api_key"));
        }
        if self.flags & 8 != 0 {
            layer = layer.dpop(Dpop::new(authenticator()).public_origin(DPOP_ORIGIN));
        }
        if self.flags & 16 != 0 {
            let cookie = self.texts[15].clone();
            layer = layer.session(SessionAuthenticator::new(cookie, verify_session));
        }
        if let Some(meta) = self.metadata() {
            layer = layer.resource_metadata(meta);
        }
        if self.flags & 64 != 0 {
            let scope: String = self.texts[13]
                .chars()
                .filter(|&c| matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'))
                .collect();
            let scope = if scope.is_empty() {
                "read".into()
            } else {
                scope
            };
            layer = layer.require_scope([scope]);
        }
        Router::new()
            .route("/", any(refuse))
            .fallback(refuse)
            .layer(layer)
    }

    /// The request: `GET /`, with the request id bit 7 asks for.
    fn request(&self) -> Request<Body> {
        let mut request = Request::builder()
            .uri("/")
            .body(Body::empty())
            .expect("a request");
        if self.flags & 128 != 0 {
            if let Ok(id) = HeaderValue::from_str(&self.texts[14]) {
                request.headers_mut().insert("x-request-id", id);
            }
        }
        request
    }

    /// A failure of `reason` with every fact the input gives, but fact `without`.
    ///
    /// Facts 0 (detail), 1 (hint) and 4 (user) are the ones an answer must not show (the
    /// user never, the others in production). `failure(Some(i))` lacks fact `i`: what the
    /// full failure's answer shows beyond it is fact `i` leaking.
    fn failure(&self, reason: Reason, without: Option<usize>) -> AuthFailure {
        let mut f = AuthFailure::new(reason).step_up(self.opt(9), Some(u64::from(self.flags)));
        for i in [0usize, 1, 2, 3, 4] {
            let Some(v) = self.opt(i).filter(|_| without != Some(i)) else {
                continue;
            };
            f = match i {
                0 => f.detail(v),
                1 => f.hint(v),
                2 => f.scope(v),
                3 => f.check(v),
                _ => f.user(&v),
            };
        }
        f
    }

    /// The answer of `app` to a request its handler refuses with `failure`.
    fn answer(&self, app: &Router, failure: AuthFailure) -> Answer {
        REFUSAL.with(|r| *r.borrow_mut() = Some(failure));
        send(app, self.request())
    }
}

/// Refuses with the full failure of `reason` behind both layers, and renders it on its
/// own, every property checked.
fn check_reason(input: &ProblemInput, apps: &[(Router, Detail)], reason: Reason) {
    let full = input.failure(reason, None);
    for (app, detail) in apps {
        let shown = input.answer(app, full.clone());
        check_answered(input, reason, &shown, *detail);
        check_hidden(input, reason, app, *detail, &shown);
    }
    let alone = answer_of(full.into_response());
    check_answered(input, reason, &alone, Detail::Production);
}

/// The answer of a response rendered on its own: its body is complete, one poll reads it.
fn answer_of(response: Response) -> Answer {
    let (parts, body) = response.into_parts();
    let mut read = std::pin::pin!(axum::body::to_bytes(body, 1 << 20));
    let std::task::Poll::Ready(body) = read
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    else {
        panic!("a rendered body is not ready at once");
    };
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.expect("the body reads").to_vec(),
        log: String::new(),
    }
}

/// A text the detail mode hides (detail, hint and user in production, the user in
/// verbose) that the answer `shown` holds is there without that fact too: fixed text, not
/// the fact shown.
fn check_hidden(
    input: &ProblemInput,
    reason: Reason,
    app: &Router,
    detail: Detail,
    shown: &Answer,
) {
    let hidden: &[usize] = match detail {
        Detail::Production => &[0, 1, 4],
        Detail::Verbose => &[4],
    };
    for &i in hidden {
        let secret = input.texts[i].as_bytes();
        if !checkable(secret) || !answer_contains(shown, secret) {
            continue;
        }
        let base = input.answer(app, input.failure(reason, Some(i)));
        check_answered(input, reason, &base, detail);
        assert!(
            answer_contains(&base, secret),
            "{} shows hidden text {:?} ({detail:?}): {:?} {}",
            reason.code(),
            input.texts[i],
            shown.headers,
            String::from_utf8_lossy(&shown.body)
        );
    }
}

/// The answer to a refusal of `reason`: the reason's status, a problem body, a challenge
/// on a 401, every challenge parseable alike by both parsers, the
/// long parameters sanitized as documented, no hint in production.
fn check_answered(input: &ProblemInput, reason: Reason, answer: &Answer, detail: Detail) {
    assert_eq!(answer.status, reason.status(), "{}", reason.code());
    let problem = check_problem(answer.status, &answer.body);
    assert_eq!(
        answer.headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes),
        Some(&b"application/problem+json"[..])
    );
    let n = check_challenges(&answer.headers, &[]);
    // Every 401 carries challenges (`Reason`'s documentation: every 401 and 400, and the
    // 403 of `insufficient_scope`).
    if answer.status == StatusCode::UNAUTHORIZED {
        assert!(n > 0, "{} without a challenge", reason.code());
    }
    if detail == Detail::Production {
        assert!(problem.get("hint").is_none(), "{problem}");
    }
    check_long_params(input, answer);
}

/// `acr_values` and `resource_metadata`, where a challenge carries them, are what was set,
/// sanitized as documented for long parameters (control characters dropped, at most 2048
/// characters, others than printable ASCII as `?`).
fn check_long_params(input: &ProblemInput, answer: &Answer) {
    let acr = model_quoted(&input.texts[9], 2048);
    let metadata = input
        .metadata()
        .map(|m| model_quoted(&m.metadata_url(), 2048));
    for value in answer.headers.get_all(WWW_AUTHENTICATE) {
        let text = value.to_str().expect("visible ASCII");
        for c in Challenge::parse(text).expect("a challenge") {
            if let Some(v) = c.param("acr_values") {
                assert_eq!(v, acr, "acr_values in {text:?}");
            }
            if let Some(v) = c.param("resource_metadata") {
                assert_eq!(
                    Some(v),
                    metadata.as_deref(),
                    "resource_metadata in {text:?}"
                );
            }
        }
    }
}

/// Whether a secret is worth looking for: 16 bytes or more, 8 of them letters or digits
/// (shorter ones turn up in fixed texts by chance).
fn checkable(secret: &[u8]) -> bool {
    secret.len() >= 16 && secret.iter().filter(|b| b.is_ascii_alphanumeric()).count() >= 8
}

/// Whether `text` appears in the body or a header value of `answer`.
fn answer_contains(answer: &Answer, text: &[u8]) -> bool {
    contains(&answer.body, text)
        || answer
            .headers
            .values()
            .any(|v| contains(v.as_bytes(), text))
}
