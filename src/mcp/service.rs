//! [`McpScopesService`]: what an MCP request calls (headers, then the body), the scopes
//! that needs, and the answers of its own (a header mismatch, a body it cannot read).

use super::body::{self, ReadError};
use super::headers::{Field, McpHeaders};
use super::message::{self, Message};
use super::Policy;
use crate::authn::Principal;
use crate::failure::AuthFailure;
use crate::reason::Reason;
use crate::request_id::{AuthRequestId, X_REQUEST_ID};
use crate::scope::RequireScope;
use axum::body::Body;
use axum::response::IntoResponse;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The JSON-RPC error code of a header that disagrees with the body (MCP 2026-07-28).
const HEADER_MISMATCH: i64 = -32020;

/// The methods whose `Mcp-Name` mirrors the name in the body.
const NAMING: [&str; 3] = ["tools/call", "resources/read", "prompts/get"];

/// The service built by [`McpScopes`](crate::authz::McpScopes).
#[derive(Clone, Debug)]
pub struct McpScopesService<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S> McpScopesService<S> {
    pub(crate) fn new(inner: S, policy: Arc<Policy>) -> Self {
        Self { inner, policy }
    }
}

/// The response future of [`McpScopesService`].
pub struct McpFuture<E>(Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>);

impl<E> Future for McpFuture<E> {
    type Output = Result<Response<Body>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl<E> std::fmt::Debug for McpFuture<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("McpFuture")
    }
}

impl<S, B, ResBody> Service<Request<B>> for McpScopesService<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = McpFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The service that was polled ready is the one we call; keep a fresh clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let policy = self.policy.clone();
        McpFuture(Box::pin(async move {
            let (req, required) = match admit(&policy, req).await {
                Ok(admitted) => admitted,
                Err(refused) => return Ok(*refused),
            };
            let mut response = inner.call(req).await?.map(Body::new);
            with_our_scopes(&mut response, &required);
            Ok(response)
        }))
    }
}

/// What a request calls and whether its principal may: the request to hand on (with the
/// body it came with) and the scopes it needed, or the answer that refuses it.
async fn admit<B>(
    policy: &Policy,
    req: Request<B>,
) -> Result<(Request<Body>, Vec<String>), Box<Response<Body>>>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let Some(principal) = parts.extensions.get::<Principal>().cloned() else {
        let failure = AuthFailure::new(Reason::CredentialsMissing)
            .detail("no principal: McpScopes needs an AuthDiagnostics layer that authenticates");
        return Err(Box::new(failure.into_response()));
    };
    let headers = McpHeaders::read(&parts.headers);
    let (body, messages) = match body_wanted(policy, &parts, &headers) {
        false => (Body::new(body), None),
        true => {
            let bytes = read_body(policy, &parts, body).await.map_err(Box::new)?;
            let Some(messages) = message::parse(&bytes) else {
                return Err(Box::new(not_json(&parts)));
            };
            (Body::from(bytes), Some(messages))
        }
    };
    if policy.reject_mismatch {
        if let Some(detail) = mismatch(&headers, messages.as_deref()) {
            let id = match messages.as_deref() {
                Some([one]) => one.id.clone(),
                _ => Value::Null,
            };
            return Err(Box::new(mismatch_answer(
                policy, &parts, &principal, detail, id,
            )));
        }
    }
    let calls = calls(&headers, messages.as_deref());
    let required = policy.required(calls.iter().map(|(m, n)| (*m, *n)));
    if let Err(failure) = RequireScope::new(required.iter().copied()).check(Some(&principal)) {
        let what = describe(&calls);
        let failure = match failure.detail_text().map(str::to_owned) {
            Some(d) if !what.is_empty() => failure.detail(format!("{d}; the request calls {what}")),
            _ => failure,
        };
        return Err(Box::new(failure.into_response()));
    }
    let required = required.into_iter().map(str::to_owned).collect();
    Ok((Request::from_parts(parts, body), required))
}

/// Whether the body must be read: a POST whose calls can matter (the policy has rules per
/// method or name, or compares the headers with the body), unless the headers are
/// trusted and say enough.
fn body_wanted(policy: &Policy, parts: &Parts, headers: &McpHeaders) -> bool {
    if parts.method != Method::POST || !(policy.per_call() || policy.reject_mismatch) {
        return false;
    }
    if !policy.trust_headers || policy.reject_mismatch {
        return true;
    }
    match headers.method.value() {
        None => true,
        Some(m) => NAMING.contains(&m) && headers.name.value().is_none(),
    }
}

/// The body, within the bound; a body the layer cannot read is refused (it could hide a
/// call the policy would refuse).
async fn read_body<B>(policy: &Policy, parts: &Parts, body: B) -> Result<Bytes, Response<Body>>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let encoded = parts
        .headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if encoded {
        return Err(unreadable(
            parts,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a compressed body (Content-Encoding) cannot be checked for the scopes it needs; \
             decompress it outside this layer",
        ));
    }
    body::read(body, policy.max_body)
        .await
        .map_err(|e| match e {
            ReadError::TooLarge => unreadable(
                parts,
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is longer than {} bytes", policy.max_body),
            ),
            ReadError::Broken => unreadable(
                parts,
                StatusCode::BAD_REQUEST,
                "the body failed while it was read",
            ),
        })
}

/// What the request calls: the call the headers name, then the body's; (method, name).
fn calls<'a>(
    headers: &'a McpHeaders,
    messages: Option<&'a [Message]>,
) -> Vec<(&'a str, Option<&'a str>)> {
    let mut out = Vec::new();
    if let Some(method) = headers.method.value() {
        out.push((method, headers.name.value()));
    }
    // Not deduplicated here: a batch may hold many calls, and the scopes are, per call.
    for m in messages.into_iter().flatten() {
        if let Some(method) = &m.method {
            out.push((method.as_str(), m.name.as_deref()));
        }
    }
    out
}

/// The calls, for the log: at most eight, each capped.
fn describe(calls: &[(&str, Option<&str>)]) -> String {
    let mut parts: Vec<String> = calls
        .iter()
        .take(8)
        .map(|(m, n)| match n {
            Some(n) => format!(
                "{} {}",
                crate::sanitize::cap_to(m, 64),
                crate::sanitize::cap_to(n, 128)
            ),
            None => crate::sanitize::cap_to(m, 64).to_string(),
        })
        .collect();
    if calls.len() > 8 {
        parts.push(format!("and {} more", calls.len() - 8));
    }
    parts.join(", ")
}

/// Why the headers disagree with the body, when they do: a malformed header, or a method
/// or name other than every message's.
fn mismatch(headers: &McpHeaders, messages: Option<&[Message]>) -> Option<String> {
    if !headers.sent() {
        return None;
    }
    if let Some((name, why)) = headers.malformed() {
        return Some(format!("{name} is malformed: {why}"));
    }
    for m in messages.into_iter().flatten() {
        if let Field::Value(method) = &headers.method {
            if m.method.as_deref() != Some(method.as_str()) {
                return Some(format!(
                    "Mcp-Method says {}, the body's method is {}",
                    crate::sanitize::cap(method),
                    shown(m.method.as_deref(), "absent")
                ));
            }
        }
        if let Field::Value(name) = &headers.name {
            if m.name.as_deref() != Some(name.as_str()) {
                return Some(format!(
                    "Mcp-Name says {}, the body names {}",
                    crate::sanitize::cap(name),
                    shown(m.name.as_deref(), "nothing")
                ));
            }
        }
    }
    None
}

/// `value` capped and escaped for the log, or `none`.
fn shown(value: Option<&str>, none: &str) -> String {
    value.map_or(none.to_owned(), |v| crate::sanitize::cap(v).to_string())
}

/// A refusal by a route layer inside [`McpScopesService`] (a `RequireScope`) names the
/// scopes of the call too, so that one authorization covers everything the request needs.
fn with_our_scopes(response: &mut Response<Body>, required: &[String]) {
    let Some(failure) = response.extensions_mut().get_mut::<AuthFailure>() else {
        return;
    };
    if failure.reason() != Reason::InsufficientScope || required.is_empty() {
        return;
    }
    let mut all: Vec<&str> = required.iter().map(String::as_str).collect();
    for s in failure
        .facts()
        .scope()
        .unwrap_or_default()
        .split_whitespace()
    {
        if !all.contains(&s) {
            all.push(s);
        }
    }
    let all = all.join(" ");
    *failure = failure.clone().scope(all);
}

/// The request id the enclosing layer gave the request, if any.
fn request_id(parts: &Parts) -> Option<&AuthRequestId> {
    parts.extensions.get::<AuthRequestId>()
}

/// A JSON-RPC error answer with `status`.
fn jsonrpc_error(parts: &Parts, status: StatusCode, id: Value, error: Value) -> Response<Body> {
    let body = json!({"jsonrpc": "2.0", "id": id, "error": error});
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // A page on an allowed origin reads the id, as on the layer's own refusals.
    headers.insert(
        http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("X-Request-Id"),
    );
    if let Some(id) = request_id(parts) {
        headers.insert(X_REQUEST_ID, id.header_value().clone());
    }
    response
}

/// A body that is not JSON: what it calls cannot be known (a more lenient parser behind
/// could still find a call in it), so 400 with the JSON-RPC parse error `-32700`, the
/// answer a server owes it anyway.
fn not_json(parts: &Parts) -> Response<Body> {
    let why = "the body is not JSON, so what it calls cannot be checked";
    refused(parts, StatusCode::BAD_REQUEST, -32700, why)
}

/// A body the layer cannot read: `status` with a JSON-RPC `-32600`.
fn unreadable(parts: &Parts, status: StatusCode, why: &str) -> Response<Body> {
    refused(parts, status, -32600, why)
}

/// `status` with the JSON-RPC error `code`, logged at WARN.
fn refused(parts: &Parts, status: StatusCode, code: i64, why: &str) -> Response<Body> {
    let id = request_id(parts).map(AuthRequestId::as_str);
    tracing::warn!(
        target: "auth_diagnostics",
        status = status.as_u16(),
        request_id = id,
        method = crate::sanitize::cap_to(parts.method.as_str(), 32).as_str(),
        path = crate::sanitize::cap_to(&crate::snapshot::loggable_path(parts.uri.path()), 256).as_str(),
        "MCP request refused before its scopes could be checked: {why}"
    );
    let error = json!({"code": code, "message": why});
    jsonrpc_error(parts, status, Value::Null, error)
}

/// 400 with the JSON-RPC error `-32020` (`HeaderMismatch`), logged as one
/// `mcp_header_mismatch` event, counted and recorded on the span like the layer's own
/// refusals; marked handled, so the enclosing layer passes it on as it is.
fn mismatch_answer(
    policy: &Policy,
    parts: &Parts,
    principal: &Principal,
    detail: String,
    id: Value,
) -> Response<Body> {
    let status = StatusCode::BAD_REQUEST;
    let failure = AuthFailure::new(Reason::McpHeaderMismatch)
        .received(principal.scheme().map(|s| s.as_str()))
        .detail(detail);
    let failure = match principal.id() {
        Some(user) => failure.user(user),
        None => failure,
    }
    .answered(status);
    let scheme = failure.scheme_received();
    crate::metrics::failure(failure.reason(), scheme, status);
    crate::hooks::span::failure(failure.reason().code(), scheme, status.as_u16());
    let uri = match parts.extensions.get::<axum::extract::OriginalUri>() {
        Some(original) => &original.0,
        None => &parts.uri,
    };
    let info = crate::log::RequestInfo {
        request_id: request_id(parts).map_or("", AuthRequestId::as_str),
        method: &parts.method,
        uri,
        headers: crate::snapshot::Headers::Live(&parts.headers),
    };
    let mode = crate::reason::DetailMode::Production;
    crate::log::emit(&failure, &info, status, mode, &policy.flood);
    let error = json!({
        "code": HEADER_MISMATCH,
        "message": "HeaderMismatch",
        "data": {"reason": Reason::McpHeaderMismatch.code()},
    });
    let mut response = jsonrpc_error(parts, status, id, error);
    response.extensions_mut().insert(crate::answer::Handled);
    // The enclosing layer's audit record says what was refused, and whose request it was.
    let authorization = parts.headers.get(http::header::AUTHORIZATION);
    let accepted = crate::audit::Facts::accepted(principal, authorization);
    let facts = crate::audit::Facts::refused(Some(accepted), &failure, authorization);
    response.extensions_mut().insert(facts);
    response
}
