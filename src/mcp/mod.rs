//! Per-tool and per-method scopes for an MCP endpoint: [`McpScopes`] (the policy and its
//! layer, the guide is on it), `headers` (`Mcp-Method`, `Mcp-Name`), `body` (the bounded
//! read of the body), `message` (what its JSON-RPC messages call), `service` (the
//! service, its future and its own answers).

mod body;
mod headers;
mod message;
mod service;
mod template;

pub use service::{McpFuture, McpScopesService};

use crate::flood::FloodControl;
use crate::layer::LogRate;
use std::collections::HashMap;
use std::sync::Arc;

/// Scopes per MCP method and per tool, resource or prompt: a `route_layer` for an MCP
/// endpoint.
///
/// A policy maps JSON-RPC methods (`tools/call`, `resources/read`, `prompts/get`, any
/// other) and the tool, resource or prompt they name to the scopes they need, on top of
/// the scopes every MCP request needs. Put it on the MCP route with `route_layer`, inside
/// an [`AuthDiagnostics`](crate::AuthDiagnostics) layer that authenticates. A request
/// whose token lacks a scope it needs is answered 403 `insufficient_scope` with one
/// challenge naming *every* scope the request needs — the layer's
/// ([`require_scope`](crate::AuthDiagnostics::require_scope)), the policy's `always` and
/// the call's — and the layer's `resource_metadata`, so an MCP client can step up in one
/// authorization.
///
/// # What a request is taken to call
///
/// - The body of a `POST` is read (when the policy has rules per method or name, or
///   compares headers and body), at most [`max_body`](McpScopes::max_body) bytes (1 MiB
///   by default), and handed on to the handler as the very same bytes. A single message,
///   a batch (every call's scopes are needed), notifications (their method's scopes) and
///   responses (only `always`) are understood. A body that is not JSON is refused with
///   400 and the JSON-RPC parse error `-32700` (what it calls cannot be known, and a
///   server answers it so anyway); JSON that is no JSON-RPC request (a string, a number)
///   needs `always` only.
/// - `Mcp-Method` and `Mcp-Name` (MCP 2026-07-28; the name's `=?base64?…?=` form is
///   decoded) add the scopes of what they name. Headers never *lower* what the body
///   asks for: by default the scopes are those of the headers and of the body together,
///   so a header that lies cannot reach a tool past its scope.
///   [`trust_headers`](McpScopes::trust_headers) decides by the headers alone, without
///   reading the body, for a server that refuses disagreeing headers itself.
/// - Other methods (`GET` opens the server's stream, `DELETE` ends a session) carry no
///   body: `always` and what the headers name.
/// - A header sent twice, longer than its cap (256 bytes for the method, 8 KiB for the
///   name), not visible ASCII (non-UTF-8 included), or with a broken base64 form is
///   malformed: it decides nothing (the body does).
/// - A body over the bound is refused with 413, a compressed one (`Content-Encoding`)
///   with 415, each with a JSON-RPC error body (`-32600`) and a WARN event: a body the
///   layer cannot read could hide a call it would refuse.
///
/// With [`reject_header_mismatch`](McpScopes::reject_header_mismatch), a request whose
/// headers are malformed or disagree with its body is answered 400 with the JSON-RPC error
/// `-32020` (`HeaderMismatch`) and logged with reason
/// [`mcp_header_mismatch`](crate::Reason::McpHeaderMismatch).
///
/// ```
/// use auth_diagnostics::authz::{McpScopes, ResourceMetadata};
/// use auth_diagnostics::jwt::JwtAuthenticator;
/// use auth_diagnostics::keys::StaticKey;
/// use auth_diagnostics::AuthDiagnostics;
/// use axum::{body::{Body, Bytes}, http::Request, routing::post, Router};
/// use jsonwebtoken::{encode, EncodingKey, Header};
/// use serde_json::json;
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let policy = McpScopes::new()
///     .always(["mcp:tools"])
///     .tool("admin-action", ["mcp:admin"]);
/// let metadata = ResourceMetadata::new("https://mcp.example/mcp")
///     .authorization_servers(["https://issuer.example"])
///     .scopes_supported(policy.scopes());
/// let jwt = JwtAuthenticator::new(StaticKey::hs256("a-secret-of-32-bytes-or-more...."))
///     .issuer("https://issuer.example")
///     .audience("https://mcp.example/mcp");
/// let app = Router::new()
///     // The handler gets the body the policy read, byte for byte.
///     .route("/mcp", post(|body: Bytes| async move { body }))
///     .route_layer(policy)
///     .layer(AuthDiagnostics::new().bearer(jwt).resource_metadata(metadata));
///
/// let claims = json!({"iss": "https://issuer.example", "aud": "https://mcp.example/mcp",
///                     "sub": "alice", "scope": "mcp:tools",
///                     "exp": jsonwebtoken::get_current_timestamp() + 300});
/// let key = EncodingKey::from_secret(b"a-secret-of-32-bytes-or-more....");
/// let token = encode(&Header::default(), &claims, &key).unwrap();
/// let call = |tool: &str| {
///     let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
///                       "params": {"name": tool, "arguments": {}}});
///     Request::post("/mcp")
///         .header("authorization", format!("Bearer {token}"))
///         .header("content-type", "application/json")
///         .body(Body::from(body.to_string()))
///         .unwrap()
/// };
///
/// let response = app.clone().oneshot(call("admin-action")).await.unwrap();
/// assert_eq!(response.status(), 403);
/// let challenge = response.headers()["www-authenticate"].to_str().unwrap();
/// assert!(challenge.contains(r#"error="insufficient_scope""#));
/// assert!(challenge.contains(r#"scope="mcp:tools mcp:admin""#));
/// assert!(challenge.contains(
///     r#"resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp""#
/// ));
///
/// let response = app.oneshot(call("echo")).await.unwrap();
/// assert_eq!(response.status(), 200);
/// # }
/// ```
///
/// Put the route's own scopes in [`always`](McpScopes::always) rather than in a
/// [`RequireScope`](crate::authz::RequireScope) beside it: the policy's 403 then names
/// them too. (A `RequireScope` *inside* the policy — an earlier `route_layer` — is fine:
/// its refusals get the policy's scopes added.)
///
/// # The builder
///
/// ```
/// use auth_diagnostics::authz::McpScopes;
///
/// let policy = McpScopes::new()
///     .always(["mcp:tools"])
///     .tool("admin-action", ["mcp:admin"])
///     .method("resources/read", ["mcp:resources"])
///     .resource("file:///secrets.txt", ["mcp:secrets"])
///     .resource("users://{id}/profile", ["mcp:profiles"])
///     .prompt("incident-report", ["mcp:ops"])
///     .reject_header_mismatch();
/// assert_eq!(
///     policy.scopes().collect::<Vec<_>>(),
///     ["mcp:tools", "mcp:admin", "mcp:resources", "mcp:secrets", "mcp:profiles", "mcp:ops"]
/// );
/// ```
#[derive(Clone, Debug)]
#[must_use = "a layer does nothing until a route is wrapped with it"]
pub struct McpScopes {
    policy: Arc<Policy>,
}

/// What [`McpScopes`] was built with.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    always: Vec<String>,
    methods: HashMap<String, Vec<String>>,
    /// By method, then name.
    names: HashMap<String, HashMap<String, Vec<String>>>,
    /// Resource templates, for `resources/read`.
    templates: Vec<(template::Template, Vec<String>)>,
    /// Every scope named anywhere above, once, in the order first named.
    all: Vec<String>,
    pub(crate) reject_mismatch: bool,
    pub(crate) trust_headers: bool,
    pub(crate) max_body: usize,
    pub(crate) flood: Arc<FloodControl>,
}

impl Default for McpScopes {
    fn default() -> Self {
        Self::new()
    }
}

impl McpScopes {
    /// A policy that asks for nothing yet.
    pub fn new() -> Self {
        Self {
            policy: Arc::new(Policy {
                always: Vec::new(),
                methods: HashMap::new(),
                names: HashMap::new(),
                templates: Vec::new(),
                all: Vec::new(),
                reject_mismatch: false,
                trust_headers: false,
                max_body: body::DEFAULT_MAX_BODY,
                flood: Arc::new(FloodControl::new(Some(LogRate::default()))),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Policy)) -> Self {
        f(Arc::make_mut(&mut self.policy));
        self
    }

    /// Scopes every request on the route needs, whatever it calls.
    pub fn always<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.edit(|p| {
            let scopes = p.named(scopes);
            extend(&mut p.always, scopes);
        })
    }

    /// Scopes every call of the JSON-RPC `method` needs (`tools/call`, `resources/read`,
    /// `prompts/get`, `tools/list`, …), whatever it names.
    pub fn method<I, S>(self, method: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.edit(|p| {
            let scopes = p.named(scopes);
            extend(p.methods.entry(method.into()).or_default(), scopes);
        })
    }

    /// Scopes a `tools/call` of the tool `name` needs (beside `tools/call`'s own).
    pub fn tool<I, S>(self, name: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.named("tools/call", name.into(), scopes)
    }

    /// Scopes a `resources/read` of the resource `uri` needs: the exact URI, or, when it
    /// holds `{…}` expressions, every URI of that resource template (RFC 6570, as MCP
    /// resource templates are written), each expression matching any text, `/` and `?`
    /// included — so it covers at least what the server routes to the template.
    pub fn resource<I, S>(self, uri: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let uri = uri.into();
        match template::Template::parse(&uri) {
            None => self.named("resources/read", uri, scopes),
            Some(t) => self.edit(|p| {
                let scopes = p.named(scopes);
                match p.templates.iter_mut().find(|(have, _)| *have == t) {
                    Some((_, list)) => extend(list, scopes),
                    None => p.templates.push((t, scopes)),
                }
            }),
        }
    }

    /// Scopes a `prompts/get` of the prompt `name` needs.
    pub fn prompt<I, S>(self, name: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.named("prompts/get", name.into(), scopes)
    }

    fn named<I, S>(self, method: &str, name: String, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.edit(|p| {
            let scopes = p.named(scopes);
            let by_name = p.names.entry(method.to_owned()).or_default();
            extend(by_name.entry(name).or_default(), scopes);
        })
    }

    /// Refuses a request whose `Mcp-Method` or `Mcp-Name` header is malformed or disagrees
    /// with its body: 400 with the JSON-RPC error `-32020` (`HeaderMismatch`), logged as
    /// [`mcp_header_mismatch`](crate::Reason::McpHeaderMismatch). Off by default: a
    /// request without the headers is never refused by it, nor one whose body is not
    /// JSON (the server answers that with its parse error).
    ///
    /// The policy answers this one itself, since its body is JSON-RPC: it is counted,
    /// recorded on the span and logged as one event like the layer's refusals (flood
    /// control per policy, the request id the layer gave), but the layer's
    /// [`on_failure`](crate::AuthDiagnostics::on_failure) hook does not hear it.
    pub fn reject_header_mismatch(self) -> Self {
        self.edit(|p| p.reject_mismatch = true)
    }

    /// Decides by `Mcp-Method` (and `Mcp-Name`, where the method names something) alone
    /// when they are well formed, without reading the body. Only for a server that itself
    /// refuses requests whose headers disagree with the body (every MCP 2026-07-28 server
    /// must), or with [`reject_header_mismatch`](Self::reject_header_mismatch), which reads
    /// the body to compare anyway.
    pub fn trust_headers(self) -> Self {
        self.edit(|p| p.trust_headers = true)
    }

    /// The longest body read, in bytes (default 1 MiB); a longer one is refused with 413.
    pub fn max_body(self, bytes: usize) -> Self {
        self.edit(|p| p.max_body = bytes)
    }

    /// Every scope the policy can ask for, each once, in the order first named: for
    /// [`ResourceMetadata::scopes_supported`](crate::authz::ResourceMetadata::scopes_supported).
    pub fn scopes(&self) -> impl Iterator<Item = &str> + '_ {
        self.policy.all.iter().map(String::as_str)
    }
}

/// Adds `scopes` to `list`, each once.
fn extend(list: &mut Vec<String>, scopes: Vec<String>) {
    for s in scopes {
        if !list.contains(&s) {
            list.push(s);
        }
    }
}

impl Policy {
    /// `scopes` as a list, noted in `all`. A scope is one token of a space-separated
    /// `scope` claim, so text with spaces is several scopes.
    fn named<I, S>(&mut self, scopes: I) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list: Vec<String> = scopes
            .into_iter()
            .flat_map(|s| {
                let s: String = s.into();
                s.split_whitespace().map(str::to_owned).collect::<Vec<_>>()
            })
            .collect();
        extend(&mut self.all, list.clone());
        list
    }

    /// Whether any scope depends on what a request calls (not only `always`).
    pub(crate) fn per_call(&self) -> bool {
        !self.methods.is_empty() || !self.names.is_empty() || !self.templates.is_empty()
    }

    /// The scopes a request calling `calls` (method, and the name it addresses) needs:
    /// `always`, then each call's method's, then its name's; each once.
    pub(crate) fn required<'c>(
        &self,
        calls: impl IntoIterator<Item = (&'c str, Option<&'c str>)>,
    ) -> Vec<&str> {
        let mut out: Vec<&str> = self.always.iter().map(String::as_str).collect();
        fn add<'p>(out: &mut Vec<&'p str>, list: Option<&'p Vec<String>>) {
            for s in list.into_iter().flatten() {
                if !out.contains(&s.as_str()) {
                    out.push(s);
                }
            }
        }
        for (method, name) in calls {
            add(&mut out, self.methods.get(method));
            let by_name = self.names.get(method);
            add(&mut out, name.and_then(|n| by_name?.get(n)));
            if let (Some(uri), "resources/read") = (name, method) {
                for (t, scopes) in &self.templates {
                    if t.matches(uri) {
                        add(&mut out, Some(scopes));
                    }
                }
            }
        }
        out
    }
}

impl<S> tower_layer::Layer<S> for McpScopes {
    type Service = McpScopesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        McpScopesService::new(inner, self.policy.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_scopes_are_the_union_in_order() {
        let p = McpScopes::new()
            .always(["a"])
            .method("tools/call", ["t"])
            .tool("x", ["x", "a"])
            .tool("y", ["y1 y2"]);
        let policy = &p.policy;
        assert_eq!(policy.required([]), ["a"]);
        assert_eq!(
            policy.required([("tools/call", Some("x"))]),
            ["a", "t", "x"]
        );
        assert_eq!(
            policy.required([("tools/call", Some("y")), ("tools/call", Some("x"))]),
            ["a", "t", "y1", "y2", "x"]
        );
        assert_eq!(policy.required([("prompts/get", Some("x"))]), ["a"]);
        let p = p
            .resource("test://template/{id}/data", ["tpl"])
            .resource("test://template/1/data", ["one"]);
        let read = |uri| p.policy.required([("resources/read", Some(uri))]);
        assert_eq!(read("test://template/1/data"), ["a", "one", "tpl"]);
        assert_eq!(read("test://template/2/data"), ["a", "tpl"]);
        assert_eq!(read("test://static"), ["a"]);
        assert_eq!(
            p.scopes().collect::<Vec<_>>(),
            ["a", "t", "x", "y1", "y2", "tpl", "one"]
        );
    }
}
