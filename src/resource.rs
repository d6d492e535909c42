//! [`ResourceMetadata`]: the OAuth 2.0 Protected Resource Metadata document (RFC 9728)
//! that tells a client which authorization servers issue tokens for this resource, and
//! the `resource_metadata` parameter that points 401 and 403 challenges at it.

use crate::config_error::{ConfigError, ConfigErrors, ResourceMistake};
use crate::keys::check_url;
use axum::body::Body;
use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Response, StatusCode};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The well-known path segment of RFC 9728 §3.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// How long clients and caches may keep the document: it changes with a deployment.
const CACHE: &str = "public, max-age=3600";

/// An RFC 9728 Protected Resource Metadata document for one resource identifier.
///
/// Give it to [`AuthDiagnostics::resource_metadata`](crate::AuthDiagnostics::resource_metadata):
/// every Bearer and DPoP challenge the layer sends on a 401 or 403 then carries
/// `resource_metadata="…"` (RFC 9728 §5.1, required by the Model Context Protocol), and
/// the layer answers `GET` on the document's well-known path itself, without
/// authentication. Where the layer wraps only some routes (a router merged into another,
/// `route_layer`), mount [`ResourceMetadata::router`] beside them.
///
/// The document is served at the path-inserted URL RFC 9728 §3.1 requires: for the
/// resource `https://api.example/mcp` it is
/// `https://api.example/.well-known/oauth-protected-resource/mcp`.
///
/// ```
/// use auth_diagnostics::authz::ResourceMetadata;
/// use auth_diagnostics::jwt::JwtAuthenticator;
/// use auth_diagnostics::keys::KeySource;
/// use auth_diagnostics::AuthDiagnostics;
///
/// let meta = ResourceMetadata::new("https://api.example/mcp")
///     .authorization_servers(["https://login.example"])
///     .scopes_supported(["mcp:tools"]);
/// assert_eq!(
///     meta.metadata_url(),
///     "https://api.example/.well-known/oauth-protected-resource/mcp"
/// );
/// let layer = AuthDiagnostics::new()
///     .bearer(
///         JwtAuthenticator::from_source(KeySource::discover("https://login.example"))
///             .audience("https://api.example/mcp"),
///     )
///     .resource_metadata(meta)
///     .require_scope(["mcp:tools"]);
/// # let _ = layer;
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ResourceMetadata {
    resource: String,
    fields: Map<String, Value>,
    allow_http: bool,
}

impl ResourceMetadata {
    /// The document for the resource identifier `resource`: an absolute `https` URL
    /// without query or fragment (`http` on a loopback host, or after
    /// [`ResourceMetadata::allow_http`]). It is the `resource` member, byte for byte.
    /// `bearer_methods_supported` starts as `["header"]`.
    pub fn new(resource: impl Into<String>) -> Self {
        let mut fields = Map::new();
        fields.insert(
            "bearer_methods_supported".into(),
            Value::from(vec!["header"]),
        );
        Self {
            resource: resource.into(),
            fields,
            allow_http: false,
        }
    }

    /// The issuer identifiers of the authorization servers that issue tokens for this
    /// resource (`authorization_servers`; at least one).
    pub fn authorization_servers<I, S>(self, servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.list("authorization_servers", servers)
    }

    /// The scopes this resource understands (`scopes_supported`).
    pub fn scopes_supported<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.list("scopes_supported", scopes)
    }

    /// How a token may be sent (`bearer_methods_supported`). The layer reads a token
    /// from the `Authorization` header only, so `["header"]` (the default) is the one
    /// list it accepts besides an empty one (left out of the document); `body` or
    /// `query` would promise clients a way that only ever gets 401, and is refused when
    /// the document is given to the layer or its [`router`](Self::router) is built.
    pub fn bearer_methods_supported<I, S>(self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.list("bearer_methods_supported", methods)
    }

    /// The algorithms DPoP proofs may be signed with (`dpop_signing_alg_values_supported`,
    /// RFC 9728 §2): list those the layer's [`Dpop`](crate::dpop::Dpop) accepts
    /// ([`Dpop::algorithms`](crate::dpop::Dpop::algorithms), `ES256` and `PS256` by
    /// default), so that a client picks one the resource takes. Asymmetric algorithms
    /// only (RFC 9449 §4.2): an HMAC one is a configuration error, and `none` cannot be
    /// named here (given through [`field`](Self::field), it is refused too).
    ///
    /// ```
    /// use auth_diagnostics::authz::ResourceMetadata;
    /// use auth_diagnostics::keys::Algorithm;
    ///
    /// let meta = ResourceMetadata::new("https://api.example/mcp")
    ///     .authorization_servers(["https://login.example"])
    ///     .dpop_signing_alg_values_supported([Algorithm::ES256, Algorithm::PS256])
    ///     .dpop_bound_access_tokens_required(false);
    /// let doc = meta.document();
    /// let algs = &doc["dpop_signing_alg_values_supported"];
    /// assert_eq!(algs, &serde_json::json!(["ES256", "PS256"]));
    /// assert_eq!(doc["dpop_bound_access_tokens_required"], false);
    /// ```
    pub fn dpop_signing_alg_values_supported(
        self,
        algs: impl IntoIterator<Item = crate::keys::Algorithm>,
    ) -> Self {
        let names = algs.into_iter().map(|a| format!("{a:?}"));
        self.list("dpop_signing_alg_values_supported", names)
    }

    /// Whether the resource takes DPoP-bound access tokens only
    /// (`dpop_bound_access_tokens_required`, RFC 9728 §2; a client reads an absent member
    /// as `false`). Say `true` only when the layer has no Bearer scheme: a Bearer token
    /// is what this tells clients not to bring.
    pub fn dpop_bound_access_tokens_required(self, required: bool) -> Self {
        self.field("dpop_bound_access_tokens_required", Value::Bool(required))
    }

    /// A name for people (`resource_name`).
    pub fn resource_name(self, name: impl Into<String>) -> Self {
        self.field("resource_name", Value::String(name.into()))
    }

    /// A page about the resource for developers (`resource_documentation`).
    pub fn resource_documentation(self, url: impl Into<String>) -> Self {
        self.field("resource_documentation", Value::String(url.into()))
    }

    /// Any other member of RFC 9728 §2 (`jwks_uri`, `dpop_signing_alg_values_supported`,
    /// `dpop_bound_access_tokens_required`, …) or an extension. Members with zero values
    /// (null, empty strings, arrays and objects) are left out, as §2 requires. Setting
    /// `resource` to anything but the identifier is a configuration error.
    pub fn field(mut self, name: impl Into<String>, value: Value) -> Self {
        self.fields.insert(name.into(), value);
        self
    }

    /// Accepts `http` identifiers on any host (a trusted network, a demo). Clients that
    /// follow RFC 9728 refuse them outside loopback.
    pub fn allow_http(mut self) -> Self {
        self.allow_http = true;
        self
    }

    fn list<I, S>(self, name: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let values: Vec<Value> = values
            .into_iter()
            .map(|v| Value::String(v.into()))
            .collect();
        self.field(name, Value::Array(values))
    }

    /// The resource identifier.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The document's URL: the identifier with `/.well-known/oauth-protected-resource`
    /// inserted between its host and its path (a path of `/` adds nothing).
    pub fn metadata_url(&self) -> String {
        let (origin, path) = split(&self.resource);
        format!("{origin}{}", well_known(path))
    }

    /// The path the document is served at, e.g. `/.well-known/oauth-protected-resource/mcp`.
    pub fn well_known_path(&self) -> String {
        well_known(split(&self.resource).1)
    }

    /// The JSON document: `resource` and the other members that have a value.
    pub fn document(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("resource".into(), Value::String(self.resource.clone()));
        for (name, value) in &self.fields {
            if !is_zero(value) {
                doc.insert(name.clone(), value.clone());
            }
        }
        Value::Object(doc)
    }

    /// Every mistake in this document.
    pub(crate) fn config_errors(&self) -> Vec<ConfigError> {
        use ResourceMistake as M;
        let mut found = Vec::new();
        if let Err(why) = check_url(&self.resource, self.allow_http) {
            found.push(M::IdentifierUrl(why));
        }
        if self.resource.contains('#') || self.resource.contains('?') {
            found.push(M::IdentifierQueryOrFragment);
        }
        if let Some(other) = self.fields.get("resource") {
            found.push(M::ResourceFieldDiffers(other.to_string()));
        }
        let strings = |name: &str| -> Vec<&str> {
            match self.fields.get(name) {
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            }
        };
        let servers = strings("authorization_servers");
        if servers.is_empty() {
            found.push(M::NoAuthorizationServer);
        }
        for server in servers {
            if let Err(why) = check_url(server, self.allow_http) {
                found.push(M::AuthorizationServerUrl(why));
            }
        }
        if let Some(why) = self.unread_bearer_method() {
            found.push(M::UnreadBearerMethod(why));
        }
        let signing = strings("resource_signing_alg_values_supported");
        if signing.iter().any(|a| a.eq_ignore_ascii_case("none")) {
            found.push(M::SigningAlgNone);
        }
        found.extend(self.dpop_mistakes().into_iter().map(M::DpopMember));
        if let Some(Value::String(jwks)) = self.fields.get("jwks_uri") {
            if !jwks.starts_with("https://") {
                found.push(M::JwksUriNotHttps);
            }
        }
        found
            .into_iter()
            .map(|why| ConfigError::ResourceMetadata {
                resource: self.resource.clone(),
                why,
            })
            .collect()
    }

    /// What is wrong with the DPoP members: `dpop_signing_alg_values_supported` must list
    /// asymmetric JWS algorithms (RFC 9449 §4.2: never `none`, never a MAC), and
    /// `dpop_bound_access_tokens_required` is a boolean.
    fn dpop_mistakes(&self) -> Vec<String> {
        let mut found = Vec::new();
        const ALGS: &str = "dpop_signing_alg_values_supported";
        match self.fields.get(ALGS) {
            Some(Value::Array(algs)) => {
                for alg in algs {
                    let unusable = match alg.as_str() {
                        Some(name) => name.eq_ignore_ascii_case("none") || name.starts_with("HS"),
                        None => true,
                    };
                    if unusable {
                        found.push(format!(
                            "{ALGS} lists {}: DPoP proofs are signed with an asymmetric \
                             algorithm, never none or a MAC (RFC 9449 §4.2)",
                            crate::sanitize::cap(&alg.to_string())
                        ));
                    }
                }
            }
            Some(other) if !is_zero(other) => found.push(format!(
                "{ALGS} must be a list of algorithm names, not {}",
                crate::sanitize::cap(&other.to_string())
            )),
            _ => {}
        }
        const REQUIRED: &str = "dpop_bound_access_tokens_required";
        match self.fields.get(REQUIRED) {
            Some(Value::Bool(_)) | None => {}
            Some(other) if is_zero(other) => {}
            Some(other) => found.push(format!(
                "{REQUIRED} must be true or false, not {}",
                crate::sanitize::cap(&other.to_string())
            )),
        }
        found
    }

    /// Why `bearer_methods_supported` promises a way of sending a token that the layer
    /// does not read: it reads the `Authorization` header only (RFC 6750 §2.1), never a
    /// form body or a query parameter (§2.2, §2.3), so a client that followed the document
    /// would only get 401s.
    fn unread_bearer_method(&self) -> Option<String> {
        let value = self.fields.get("bearer_methods_supported")?;
        if is_zero(value) {
            return None;
        }
        let methods = match value {
            Value::Array(a) => a,
            other => {
                return Some(format!(
                    "bearer_methods_supported must be a list of strings, not {}; this layer \
                     reads [\"header\"] only",
                    crate::sanitize::cap(&other.to_string())
                ))
            }
        };
        methods
            .iter()
            .find(|m| m.as_str() != Some("header"))
            .map(|m| {
                format!(
                    "bearer_methods_supported lists {}, which this layer does not read: it reads \
                 tokens from the Authorization header only, so list [\"header\"] (a client \
                 that sent the token another way would get 401)",
                    crate::sanitize::cap(&m.to_string())
                )
            })
    }

    /// A router that serves the document at [`ResourceMetadata::well_known_path`], for
    /// applications whose [`AuthDiagnostics`](crate::AuthDiagnostics) layer does not see
    /// that path.
    ///
    /// # Panics
    /// When the configuration is invalid (see [`ResourceMetadata::new`]).
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        let served = Served::new(self);
        let path = self.well_known_path();
        axum::Router::new().route(
            &path,
            axum::routing::any(move |method: Method| {
                let served = served.clone();
                async move { served.answer(&method) }
            }),
        )
    }
}

/// A validated document, rendered once, as the layer serves it.
#[derive(Clone, Debug)]
pub(crate) struct Served {
    pub path: Arc<str>,
    pub url: Arc<str>,
    body: Bytes,
}

impl Served {
    /// # Panics
    /// When `meta` is misconfigured, with every mistake.
    pub(crate) fn new(meta: &ResourceMetadata) -> Self {
        Self::checked(meta).unwrap_or_else(|errors| panic!("auth-diagnostics: {errors}"))
    }

    /// `meta` checked and rendered, or every mistake in it.
    pub(crate) fn checked(meta: &ResourceMetadata) -> Result<Self, ConfigErrors> {
        if let Some(errors) = ConfigErrors::new(meta.config_errors()) {
            return Err(errors);
        }
        Ok(Self {
            path: meta.well_known_path().into(),
            url: meta.metadata_url().into(),
            body: Bytes::from(meta.document().to_string()),
        })
    }

    /// The answer to `method` on the document's path: the document to `GET` and `HEAD`,
    /// CORS to `OPTIONS` (browser clients read it cross-origin), 405 otherwise.
    pub(crate) fn answer(&self, method: &Method) -> Response<Body> {
        let mut response = match *method {
            Method::GET => Response::new(Body::from(self.body.clone())),
            Method::HEAD => Response::new(Body::empty()),
            Method::OPTIONS => {
                let mut r = Response::new(Body::empty());
                *r.status_mut() = StatusCode::NO_CONTENT;
                r
            }
            _ => {
                let mut r = Response::new(Body::empty());
                *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                r
            }
        };
        let ok = response.status() == StatusCode::OK;
        let h = response.headers_mut();
        h.insert(ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
        if ok {
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            h.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE));
        }
        // Public by definition: any page may read it.
        h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        if *method == Method::OPTIONS {
            h.insert(
                "access-control-allow-methods",
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
            h.insert(
                "access-control-allow-headers",
                HeaderValue::from_static("*"),
            );
        }
        response
    }
}

/// `scheme://authority` and the path of an identifier that `check_url` accepted.
fn split(resource: &str) -> (&str, &str) {
    let after_scheme = resource.find("://").map_or(0, |i| i + 3);
    match resource[after_scheme..].find('/') {
        Some(i) => resource.split_at(after_scheme + i),
        None => (resource, ""),
    }
}

/// The well-known path for a resource path: a lone `/` is dropped (RFC 9728 §3.1).
fn well_known(path: &str) -> String {
    let path = if path == "/" { "" } else { path };
    format!("{WELL_KNOWN}{path}")
}

/// RFC 9728 §2: "Parameters with zero values MUST be omitted".
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_inserted_urls() {
        let at = |r: &str| ResourceMetadata::new(r).metadata_url();
        assert_eq!(
            at("https://h/mcp"),
            "https://h/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            at("https://h/"),
            "https://h/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            at("https://h"),
            "https://h/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            at("https://h:8443/a/b"),
            "https://h:8443/.well-known/oauth-protected-resource/a/b"
        );
    }

    #[test]
    fn configuration_errors() {
        let ok = |r: &str| ResourceMetadata::new(r).authorization_servers(["https://as"]);
        assert!(ok("https://h/mcp").config_errors().is_empty());
        assert!(ok("http://127.0.0.1:3000/mcp").config_errors().is_empty());
        let dpop = ok("https://h/mcp")
            .dpop_signing_alg_values_supported([
                crate::keys::Algorithm::ES256,
                crate::keys::Algorithm::PS256,
                crate::keys::Algorithm::EdDSA,
            ])
            .dpop_bound_access_tokens_required(true);
        assert!(dpop.config_errors().is_empty());
        for bad in [
            ok("http://h/mcp"),
            ok("https://h/mcp?x=1"),
            ok("https://h/mcp#f"),
            ok("/mcp"),
            ResourceMetadata::new("https://h/mcp"),
            ok("https://h/mcp").field("resource", Value::from("https://other/mcp")),
            ok("https://h/mcp").bearer_methods_supported(["cookie"]),
            ok("https://h/mcp").bearer_methods_supported(["query"]),
            ok("https://h/mcp").field(
                "resource_signing_alg_values_supported",
                serde_json::json!(["none"]),
            ),
            ok("https://h/mcp").field("jwks_uri", Value::from("http://h/jwks")),
            ok("https://h/mcp").dpop_signing_alg_values_supported([
                crate::keys::Algorithm::ES256,
                crate::keys::Algorithm::HS256,
            ]),
            ok("https://h/mcp").field(
                "dpop_signing_alg_values_supported",
                serde_json::json!(["ES256", "none"]),
            ),
            ok("https://h/mcp").field(
                "dpop_signing_alg_values_supported",
                serde_json::json!(["NONE"]),
            ),
            ok("https://h/mcp").field("dpop_signing_alg_values_supported", Value::from("ES256")),
            ok("https://h/mcp").field("dpop_bound_access_tokens_required", Value::from("yes")),
        ] {
            assert!(!bad.config_errors().is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn zero_values_are_omitted() {
        let doc = ResourceMetadata::new("https://h/mcp")
            .authorization_servers(["https://as"])
            .scopes_supported(Vec::<String>::new())
            .resource_name("")
            .document();
        assert_eq!(
            doc,
            serde_json::json!({
                "resource": "https://h/mcp",
                "authorization_servers": ["https://as"],
                "bearer_methods_supported": ["header"],
            })
        );
    }
}
