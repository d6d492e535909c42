//! Rendering a failure: status, `WWW-Authenticate` challenges and the RFC 9457
//! `application/problem+json` body.

use crate::authn::Scheme;
use crate::challenge::Challenge;
use crate::failure::AuthFailure;
use crate::reason::{BearerError, DetailMode, Reason};
use crate::sanitize::rfc3339;
use axum::body::Body;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response};
use serde::Serialize;
use std::borrow::Cow;

/// What rendering needs to know about the layer's configuration.
pub(crate) struct RenderConfig<'a> {
    pub realm: &'a str,
    pub detail: DetailMode,
    pub schemes: &'a [Scheme],
}

impl RenderConfig<'static> {
    /// The configuration used when no layer is around: production detail, realm `api`,
    /// a Bearer challenge.
    pub const DEFAULT: RenderConfig<'static> = RenderConfig {
        realm: crate::layer::DEFAULT_REALM,
        detail: DetailMode::Production,
        schemes: &[],
    };
}

pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    type_: String,
    title: &'static str,
    status: u16,
    detail: &'a str,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_scheme: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    received_scheme: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claim: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    required_scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_issuer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_audience: Option<&'a str>,
}

impl AuthFailure {
    /// The reason the client sees under `mode`.
    pub(crate) fn client_reason(&self, mode: DetailMode) -> Reason {
        match (mode, self.facts.client_override) {
            (DetailMode::Production, Some(r)) => r,
            _ => self.reason.client_reason(mode),
        }
    }

    /// The RFC 6750 error of this failure's Bearer challenge. A 401 the layer completes for
    /// a request that sent a Bearer token says `invalid_token` (RFC 6750 §3.1: a request
    /// with a token gets an error code).
    fn bearer_error(&self) -> Option<BearerError> {
        let sent_bearer = self
            .facts
            .received_scheme
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("bearer"));
        match self.reason {
            Reason::UpstreamChallengeMissing if sent_bearer => Some(BearerError::InvalidToken),
            r => r.bearer_error(),
        }
    }

    /// The problem body as JSON bytes.
    pub(crate) fn problem_body(&self, cfg: &RenderConfig<'_>, request_id: Option<&str>) -> Vec<u8> {
        let client = self.client_reason(cfg.detail);
        let f = &self.facts;
        let verbose = cfg.detail == DetailMode::Verbose;
        let problem = if verbose {
            Problem {
                type_: client.type_uri(),
                title: client.title(),
                status: self.reason.status().as_u16(),
                detail: f.detail.as_deref().unwrap_or(client.detail()),
                reason: client.code(),
                request_id,
                hint: Some(f.hint.as_deref().unwrap_or(self.reason.hint())),
                expected_scheme: f.expected_scheme.as_deref(),
                received_scheme: f.received_scheme.as_deref(),
                location: f.location.as_ref().map(ToString::to_string),
                claim: f.claim.as_deref(),
                required_scope: f.scope.as_deref(),
                expired_at: (self.reason == Reason::TokenExpired)
                    .then(|| f.token.as_ref().and_then(|t| t.exp))
                    .flatten()
                    .map(rfc3339),
                expected_issuer: f.expected_iss.as_deref(),
                expected_audience: f.expected_aud.as_deref(),
            }
        } else {
            Problem {
                type_: client.type_uri(),
                title: client.title(),
                status: self.reason.status().as_u16(),
                detail: client.detail(),
                reason: client.code(),
                request_id,
                hint: None,
                expected_scheme: None,
                received_scheme: None,
                location: None,
                claim: None,
                required_scope: f.scope.as_deref(),
                expired_at: None,
                expected_issuer: None,
                expected_audience: None,
            }
        };
        serde_json::to_vec(&problem).unwrap_or_default()
    }

    /// The `WWW-Authenticate` challenges, one per accepted scheme, Basic first.
    pub(crate) fn challenges(&self, cfg: &RenderConfig<'_>) -> Vec<Challenge> {
        let reason = self.reason;
        if !reason.has_challenge() {
            return Vec::new();
        }
        // With no scheme configured the layer speaks Bearer.
        let mut schemes: Vec<Option<&Scheme>> = if cfg.schemes.is_empty() {
            vec![None]
        } else {
            cfg.schemes.iter().map(Some).collect()
        };
        let name = |s: &Option<&Scheme>| s.map_or("Bearer", |s| s.name());
        schemes.sort_by_key(|s| name(s) != "Basic");
        if reason.status().as_u16() != 401 {
            // 400 and 403 speak the scheme the client used, and only one this route
            // accepts: Bearer's `invalid_request` / `insufficient_scope` for a Bearer request
            // (or one without Authorization), the plain Basic or ApiKey challenge for a
            // malformed Basic or API-key request, nothing for a 403 of another scheme.
            let spoken = self
                .facts
                .received_scheme
                .as_deref()
                .filter(|s| !s.is_empty());
            let bearer = spoken.is_none_or(|s| s.eq_ignore_ascii_case("bearer"));
            if !bearer && reason.status().as_u16() != 400 {
                return Vec::new();
            }
            schemes.retain(|s| match spoken {
                Some(spoken) if !bearer => name(s).eq_ignore_ascii_case(spoken),
                _ => name(s) == "Bearer",
            });
        }
        let mut seen = Vec::with_capacity(schemes.len());
        let mut out = Vec::with_capacity(schemes.len());
        for s in schemes {
            if !seen.contains(&name(&s)) {
                seen.push(name(&s));
                out.push(self.challenge_for(s, cfg));
            }
        }
        out
    }

    fn challenge_for(&self, scheme: Option<&Scheme>, cfg: &RenderConfig<'_>) -> Challenge {
        let c = Challenge::new(scheme.map_or("Bearer", |s| s.name())).realm(cfg.realm);
        match scheme {
            Some(Scheme::Basic(_)) => c.quoted_param("charset", "UTF-8"),
            Some(Scheme::ApiKey(k)) => {
                let c = c.quoted_param("header", &k.header_display);
                match &k.query {
                    Some(q) => c.quoted_param("query", q),
                    None => c,
                }
            }
            Some(Scheme::Session(sess)) => c.quoted_param("name", &sess.cookie),
            Some(Scheme::Bearer(_)) | None => match self.bearer_error() {
                Some(err) => {
                    let description: Cow<'_, str> = match cfg.detail {
                        DetailMode::Verbose => self
                            .facts
                            .detail
                            .as_deref()
                            .unwrap_or(self.reason.detail())
                            .into(),
                        DetailMode::Production => self.client_reason(cfg.detail).detail().into(),
                    };
                    let c = c.error(err.as_str()).error_description(&description);
                    match &self.facts.scope {
                        Some(scope) => c.scope([scope.as_str()]),
                        None => c,
                    }
                }
                None => c,
            },
        }
    }

    /// The complete response.
    pub(crate) fn render(
        &self,
        cfg: &RenderConfig<'_>,
        request_id: Option<&str>,
    ) -> Response<Body> {
        let status = self.reason.status();
        let mut response = Response::new(Body::from(self.problem_body(cfg, request_id)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status.is_client_error() {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        for challenge in self.challenges(cfg) {
            headers.append(WWW_AUTHENTICATE, challenge.to_header_value());
        }
        if status == http::StatusCode::SERVICE_UNAVAILABLE {
            let secs = self.facts.retry_after.unwrap_or(30);
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            headers.insert(crate::request_id::X_REQUEST_ID, id);
        }
        response
    }
}
