//! Rendering a failure: status, `WWW-Authenticate` challenges and the RFC 9457
//! `application/problem+json` body.

use crate::authn::{bearer, dpop, AuthScheme, DEFAULT_SCHEME};
use crate::challenge::Challenge;
use crate::failure::AuthFailure;
use crate::reason::{DetailMode, Reason};
use crate::request_id::X_REQUEST_ID;
use crate::scheme::Scheme;
use crate::time::rfc3339;
use axum::body::Body;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use serde::Serialize;
use std::sync::Arc;

/// The realm sent when none is configured.
pub(crate) const DEFAULT_REALM: &str = "api";

/// The media type of problem bodies (RFC 9457 §3).
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// What rendering needs to know about the layer's configuration.
pub(crate) struct RenderConfig<'a> {
    pub realm: &'a str,
    pub detail: DetailMode,
    pub schemes: &'a [Arc<dyn AuthScheme>],
    /// Where the layer keeps its 401 challenges without error attributes, once built.
    pub plain: Option<&'a std::sync::OnceLock<Vec<HeaderValue>>>,
    /// The RFC 9728 metadata URL every Bearer and DPoP challenge names.
    pub resource_metadata: Option<&'a str>,
    /// The scopes every request needs, named in every 401's Bearer and DPoP challenge.
    pub scope: Option<&'a str>,
}

impl RenderConfig<'static> {
    /// The configuration used when no layer is around: production detail, realm `api`,
    /// a Bearer challenge.
    pub(crate) const DEFAULT: RenderConfig<'static> = RenderConfig {
        realm: DEFAULT_REALM,
        detail: DetailMode::Production,
        schemes: &[],
        plain: None,
        resource_metadata: None,
        scope: None,
    };
}

/// The body: the RFC 9457 members and `reason`/`request_id`; in verbose detail also the
/// non-secret facts a person needs.
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    type_: &'static str,
    title: &'static str,
    status: u16,
    detail: &'a str,
    reason: &'static str,
    /// The challenge's `error` (RFC 6750 §3.1, RFC 9449 §7.1), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(flatten)]
    verbose: Option<VerboseFacts<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    required_scope: Option<&'a str>,
    #[serde(flatten)]
    verbose_tail: Option<VerboseTail<'a>>,
}

#[derive(Serialize)]
struct VerboseFacts<'a> {
    hint: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_scheme: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    received_scheme: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claim: Option<&'a str>,
}

/// Facts that follow `required_scope` in the verbose body.
#[derive(Serialize)]
struct VerboseTail<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    expired_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_issuer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_audience: Option<&'a str>,
}

impl AuthFailure {
    /// The problem body as JSON bytes; `error` is the challenge's.
    fn problem_body(
        &self,
        cfg: &RenderConfig<'_>,
        request_id: Option<&str>,
        error: Option<&str>,
    ) -> Vec<u8> {
        let client = self.client_reason(cfg.detail);
        let f = self.facts();
        let verbose = cfg.detail == DetailMode::Verbose;
        let problem = Problem {
            type_: client.type_uri_str(),
            title: client.title(),
            status: self.reason().status().as_u16(),
            detail: match f.detail() {
                Some(d) if verbose => d,
                _ => client.detail(),
            },
            reason: client.code(),
            error,
            request_id,
            verbose: verbose.then(|| VerboseFacts {
                hint: f.hint().unwrap_or(self.reason().hint()),
                expected_scheme: f.expected_scheme(),
                received_scheme: f.received_scheme(),
                location: f.location().map(ToString::to_string),
                claim: f.claim(),
            }),
            required_scope: f.scope(),
            verbose_tail: verbose.then(|| VerboseTail {
                expired_at: (self.reason() == Reason::TokenExpired)
                    .then(|| f.token().and_then(|t| t.exp))
                    .flatten()
                    .map(rfc3339),
                expected_issuer: f.expected_iss(),
                expected_audience: f.expected_aud(),
            }),
        };
        // One allocation for most bodies: a production body is about 300 bytes.
        let mut body = Vec::with_capacity(512);
        match serde_json::to_writer(&mut body, &problem) {
            Ok(()) => body,
            Err(_) => Vec::new(),
        }
    }

    /// The `WWW-Authenticate` challenges, one per accepted scheme, Basic first, then Bearer
    /// ([`order`](crate::challenge::order)).
    ///
    /// A 400 or 403 speaks the scheme the client used, and only one this route accepts:
    /// Bearer's `invalid_request` / `insufficient_scope` for a Bearer request (or one
    /// without Authorization), the plain Basic or ApiKey challenge for a malformed Basic or
    /// API-key request, nothing for a 403 of another scheme.
    fn challenges(&self, cfg: &RenderConfig<'_>) -> Vec<Challenge> {
        let reason = self.reason();
        if !reason.has_challenge() {
            return Vec::new();
        }
        // With no scheme configured the layer speaks Bearer.
        let mut schemes: Vec<Option<&Arc<dyn AuthScheme>>> = if cfg.schemes.is_empty() {
            vec![None]
        } else {
            cfg.schemes.iter().map(Some).collect()
        };
        let kind = |s: &Option<&Arc<dyn AuthScheme>>| s.map_or(DEFAULT_SCHEME, |s| s.kind());
        schemes.sort_by_key(|s| crate::challenge::order(kind(s)));
        if reason.status() != StatusCode::UNAUTHORIZED {
            let spoken = match self.facts().received_scheme().filter(|s| !s.is_empty()) {
                None => Some(Scheme::Bearer),
                Some(word) => Scheme::from_word(word),
            };
            let token_scheme = matches!(spoken, Some(Scheme::Bearer | Scheme::Dpop));
            if !token_scheme && reason.status() != StatusCode::BAD_REQUEST {
                return Vec::new();
            }
            // Two credentials in one request: RFC 9449 §7.2 puts the 400 on both token
            // schemes, since which one the client meant is unclear.
            let both = reason == Reason::CredentialsConflict && token_scheme;
            let token = |k: Scheme| matches!(k, Scheme::Bearer | Scheme::Dpop);
            schemes.retain(|s| Some(kind(s)) == spoken || (both && token(kind(s))));
        }
        let mut seen = Vec::with_capacity(schemes.len());
        let mut out = Vec::with_capacity(schemes.len());
        for s in schemes {
            if !seen.contains(&kind(&s)) {
                seen.push(kind(&s));
                let base = Challenge::new(kind(&s).as_str()).realm(cfg.realm);
                let c = match s {
                    Some(s) => s.challenge(base, self, cfg.detail),
                    None => bearer::challenge(base, self, cfg.detail),
                };
                out.push(token_params(c, reason, cfg));
            }
        }
        out
    }

    /// The complete response: status, `Cache-Control: no-store` on a 4xx, the challenges,
    /// `Retry-After` on a 429 or 503, the problem body and the request id.
    pub(crate) fn render(
        &self,
        cfg: &RenderConfig<'_>,
        request_id: Option<&str>,
    ) -> Response<Body> {
        self.render_with_error(cfg, request_id, None)
    }

    /// [`render`](Self::render) for an answer whose challenges are the wrapped service's,
    /// kept as they are: `kept_error` is their `error`, which the body repeats.
    pub(crate) fn render_with_error(
        &self,
        cfg: &RenderConfig<'_>,
        request_id: Option<&str>,
        kept_error: Option<&str>,
    ) -> Response<Body> {
        // A 403 on a route marked with HideForbidden: the router's own 404.
        if crate::hide::is_hidden(self) {
            return crate::hide::not_found(request_id);
        }
        match all_scopes(cfg.scope, self.facts().scope()) {
            Some(scopes) => self
                .clone()
                .scope(scopes)
                .render_as_is(cfg, request_id, kept_error),
            None => self.render_as_is(cfg, request_id, kept_error),
        }
    }

    /// [`render`](Self::render) once the failure names every scope the request needs.
    fn render_as_is(
        &self,
        cfg: &RenderConfig<'_>,
        request_id: Option<&str>,
        kept_error: Option<&str>,
    ) -> Response<Body> {
        let status = self.reason().status();
        let plain = (status == StatusCode::UNAUTHORIZED
            && self.reason().has_challenge()
            && bearer::error_of(self).is_none()
            && dpop::error_of(self).is_none())
        .then_some(cfg.plain)
        .flatten();
        // Nothing in the plain ones depends on the failure: the layer's realm and schemes.
        let (cached, challenges) = match plain {
            Some(cache) => (
                Some(cache.get_or_init(|| {
                    self.challenges(cfg)
                        .iter()
                        .map(Challenge::to_header_value)
                        .collect()
                })),
                Vec::new(),
            ),
            None => (None, self.challenges(cfg)),
        };
        let error = challenges
            .iter()
            .find_map(|c| c.get("error"))
            .or(kept_error);
        let body = self.problem_body(cfg, request_id, error);
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status.is_client_error() {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        for value in cached.into_iter().flatten() {
            headers.append(WWW_AUTHENTICATE, value.clone());
        }
        for challenge in &challenges {
            headers.append(WWW_AUTHENTICATE, challenge.to_header_value());
        }
        // A browser script on another origin reads only the headers a response exposes:
        // without this a CORS-allowed 401 shows its status but not its challenge.
        let mut expose = "WWW-Authenticate, X-Request-Id";
        if let Some(nonce) = self.facts().dpop_nonce() {
            if let Ok(v) = HeaderValue::from_str(nonce) {
                headers.insert("dpop-nonce", v);
                // A browser client must be able to read both (RFC 9449 §8).
                expose = "WWW-Authenticate, X-Request-Id, DPoP-Nonce";
            }
        }
        if matches!(
            status,
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            headers.insert(
                http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(expose),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            let secs = self.facts().retry_after().unwrap_or(30);
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
            // So that a script on another origin can wait as long as it is told to.
            headers.insert(
                http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Retry-After, X-Request-Id"),
            );
        }
        if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            headers.insert(X_REQUEST_ID, id);
        }
        response
    }
}

/// The scopes a request needs when the layer requires some of every request and the
/// failure names a route's own: the layer's first, then the route's, each once. A client
/// that asks for only the route's would be refused by the layer next, and loop (MCP's
/// scope selection takes the challenge's `scope` as the whole set). `None` when there is
/// nothing to add.
fn all_scopes(layer: Option<&str>, own: Option<&str>) -> Option<String> {
    let (layer, own) = (layer?, own?);
    let mut all: Vec<&str> = layer.split_whitespace().collect();
    for s in own.split_whitespace() {
        if !all.contains(&s) {
            all.push(s);
        }
    }
    let all = all.join(" ");
    (all != own).then_some(all)
}

/// What the layer adds to every Bearer and DPoP challenge: on a 401 the scopes every
/// request needs (MCP: one challenge, all scopes), and on a 401 or 403 the RFC 9728
/// metadata URL.
fn token_params(c: Challenge, reason: Reason, cfg: &RenderConfig<'_>) -> Challenge {
    if !matches!(c.scheme(), "Bearer" | "DPoP") {
        return c;
    }
    let c = match cfg.scope {
        Some(scope) if reason.status() == StatusCode::UNAUTHORIZED => c.scope([scope]),
        _ => c,
    };
    match cfg.resource_metadata {
        Some(url) => c.long_param("resource_metadata", url),
        None => c,
    }
}
