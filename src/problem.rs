//! Rendering a failure: status, `WWW-Authenticate` challenges and the RFC 9457
//! `application/problem+json` body.

use crate::authn::{bearer, dpop, AuthScheme, DEFAULT_SCHEME};
use crate::challenge::Challenge;
use crate::failure::AuthFailure;
use crate::reason::{DetailMode, Reason};
use crate::request_id::{AuthRequestId, X_REQUEST_ID};
use crate::scheme::Scheme;
use crate::time::rfc3339;
use axum::body::Body;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use std::sync::{Arc, OnceLock};

/// The realm sent when none is configured.
pub(crate) const DEFAULT_REALM: &str = "api";

/// The media type of problem bodies (RFC 9457 §3).
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// What rendering needs to know about the layer's configuration.
pub(crate) struct RenderConfig<'a> {
    pub realm: &'a str,
    pub detail: DetailMode,
    pub schemes: &'a [Arc<dyn AuthScheme>],
    /// Where the layer keeps the challenges that depend on nothing in the request, once built.
    pub plain: Option<&'a Challenges>,
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

/// The challenges of one layer configuration that depend on nothing in the request,
/// each built the first time it is needed: the 401 ones without error attributes, and
/// those with an error per reason, scheme the client spoke and whether it sent credentials
/// (when the failure names no scope, `acr_values` or `max_age` of its own, and its detail
/// is not shown).
#[derive(Debug, Default, Clone)]
pub(crate) struct Challenges {
    plain: OnceLock<Built>,
    /// Per reason (`Reason::ALL` order), then per [`spoken`] slot.
    with_error: OnceLock<Box<[OnceLock<Box<PerReason>>]>>,
}

/// One reason's challenges with an error, per [`spoken`] slot.
type PerReason = [OnceLock<Built>; SPOKEN];

/// The slots per reason: 4 kinds of scheme spoken × with or without credentials.
const SPOKEN: usize = 8;

/// A failure's challenges as header values, and the `error` the body repeats.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Built {
    values: Box<[HeaderValue]>,
    error: Option<Box<str>>,
}

impl Built {
    fn new(failure: &AuthFailure, cfg: &RenderConfig<'_>) -> Self {
        let challenges = failure.challenges(cfg);
        Built {
            values: challenges.iter().map(Challenge::to_header_value).collect(),
            error: challenges
                .iter()
                .find_map(|c| c.get("error"))
                .map(Into::into),
        }
    }
}

impl Challenges {
    /// `failure`'s challenges, when they depend on nothing in the request.
    fn of(&self, failure: &AuthFailure, cfg: &RenderConfig<'_>) -> Option<&Built> {
        let reason = failure.reason();
        let plain = reason.status() == StatusCode::UNAUTHORIZED
            && reason.has_challenge()
            && bearer::error_of(failure).is_none()
            && dpop::error_of(failure).is_none();
        let built = if plain {
            // Nothing in the plain ones depends on the failure: the layer's realm and schemes.
            self.plain.get_or_init(|| Built::new(failure, cfg))
        } else {
            let slot = spoken(failure, cfg.detail)?;
            let per_reason = self
                .with_error
                .get_or_init(|| Reason::ALL.iter().map(|_| OnceLock::new()).collect());
            per_reason[reason as usize].get_or_init(Default::default)[slot]
                .get_or_init(|| Built::new(failure, cfg))
        };
        debug_assert_eq!(*built, Built::new(failure, cfg), "{failure:?}");
        Some(built)
    }
}

/// Which slot of its reason a failure's challenges with an error go in: all that they read
/// of the failure besides its reason is the scheme the client spoke (none, a word no
/// scheme has, Bearer or DPoP) and, through the production description, whether it sent
/// credentials. `None` when they read more (a scope, `acr_values`, `max_age`, a detail
/// shown in verbose mode) or the client spoke another scheme: built for the request.
fn spoken(failure: &AuthFailure, detail: DetailMode) -> Option<usize> {
    let f = failure.facts();
    if f.scope().is_some()
        || f.acr_values().is_some()
        || f.max_age().is_some()
        || (detail == DetailMode::Verbose && f.detail().is_some())
    {
        return None;
    }
    let scheme = match f.received_scheme().filter(|s| !s.is_empty()) {
        None => 0,
        Some(word) => match Scheme::from_word(word) {
            None => 1,
            Some(Scheme::Bearer) => 2,
            Some(Scheme::Dpop) => 3,
            Some(_) => return None,
        },
    };
    let reason = failure.reason();
    let credentials = failure.client_reason(detail) == reason.client_reason(detail, true);
    Some(scheme * 2 + usize::from(credentials))
}

/// What a reason's problem body holds whatever the request: its members escaped once.
struct Prerendered {
    /// `{"type":…,"title":…,"status":`
    head: Box<[u8]>,
    /// `,"detail":…,"reason":…` with the reason's own detail (the production body's).
    detail_and_reason: Box<[u8]>,
    /// `,"reason":…` (after a verbose body's specific detail).
    reason: Box<[u8]>,
}

impl Prerendered {
    fn new(reason: Reason) -> Self {
        let mut head = b"{\"type\":".to_vec();
        json_str(&mut head, reason.type_uri_str());
        head.extend_from_slice(b",\"title\":");
        json_str(&mut head, reason.title());
        head.extend_from_slice(b",\"status\":");
        let mut code = b",\"reason\":".to_vec();
        json_str(&mut code, reason.code());
        let mut detail_and_reason = b",\"detail\":".to_vec();
        json_str(&mut detail_and_reason, reason.detail());
        detail_and_reason.extend_from_slice(&code);
        Self {
            head: head.into(),
            detail_and_reason: detail_and_reason.into(),
            reason: code.into(),
        }
    }

    /// The parts of `reason`, built for every reason on first use.
    fn of(reason: Reason) -> &'static Prerendered {
        static TABLE: std::sync::OnceLock<Box<[Prerendered]>> = std::sync::OnceLock::new();
        // `Reason::ALL` lists the variants in declaration order: `ALL[r as usize] == r`.
        &TABLE.get_or_init(|| Reason::ALL.iter().map(|&r| Prerendered::new(r)).collect())
            [reason as usize]
    }
}

/// `s` as a JSON string, escaped exactly as serde_json escapes it.
fn json_str(out: &mut Vec<u8>, s: &str) {
    // Most values (a request id, a scope, an issuer) need no escape: copied as they are.
    if s.bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f)
    {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// `,"name":"value"` when there is a value.
fn member(out: &mut Vec<u8>, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        json_str(out, value);
    }
}

/// `n` in decimal.
fn push_u16(out: &mut Vec<u8>, n: u16) {
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

impl AuthFailure {
    /// The problem body as JSON bytes; `error` is the challenge's.
    ///
    /// The same bytes serde_json writes for the members in this order, skipping the absent
    /// ones; what depends only on the reason is escaped once ([`Prerendered`]), the rest is
    /// spliced in.
    fn problem_body(
        &self,
        cfg: &RenderConfig<'_>,
        request_id: Option<&str>,
        error: Option<&str>,
    ) -> Vec<u8> {
        let client = self.client_reason(cfg.detail);
        let f = self.facts();
        let verbose = cfg.detail == DetailMode::Verbose;
        let parts = Prerendered::of(client);
        // One allocation for most bodies: a production body is about 300 bytes.
        let mut body = Vec::with_capacity(512);
        body.extend_from_slice(&parts.head);
        push_u16(&mut body, self.reason().status().as_u16());
        // The specific detail is read only when it is shown: it may be joined on reading.
        match verbose.then(|| f.detail()).flatten() {
            Some(d) => {
                body.extend_from_slice(b",\"detail\":");
                json_str(&mut body, d);
                body.extend_from_slice(&parts.reason);
            }
            None => body.extend_from_slice(&parts.detail_and_reason),
        }
        member(&mut body, "error", error);
        member(&mut body, "request_id", request_id);
        if verbose {
            member(
                &mut body,
                "hint",
                Some(f.hint().unwrap_or(self.reason().hint())),
            );
            member(&mut body, "expected_scheme", f.expected_scheme());
            member(&mut body, "received_scheme", f.received_scheme());
            let location = f.location().map(ToString::to_string);
            member(&mut body, "location", location.as_deref());
            member(&mut body, "claim", f.claim());
        }
        member(&mut body, "required_scope", f.scope());
        if verbose {
            let expired_at = (self.reason() == Reason::TokenExpired)
                .then(|| f.token().and_then(|t| t.exp))
                .flatten()
                .map(rfc3339);
            member(&mut body, "expired_at", expired_at.as_deref());
            member(&mut body, "expected_issuer", f.expected_iss());
            member(&mut body, "expected_audience", f.expected_aud());
        }
        body.push(b'}');
        body
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
        request_id: Option<&AuthRequestId>,
    ) -> Response<Body> {
        self.render_with_error(cfg, request_id, None)
    }

    /// [`render`](Self::render) for an answer whose challenges are the wrapped service's,
    /// kept as they are: `kept_error` is their `error`, which the body repeats.
    pub(crate) fn render_with_error(
        &self,
        cfg: &RenderConfig<'_>,
        request_id: Option<&AuthRequestId>,
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
        request_id: Option<&AuthRequestId>,
        kept_error: Option<&str>,
    ) -> Response<Body> {
        let status = self.reason().status();
        // What depends only on the layer's configuration and the failure's reason is built
        // once; the rest is built for this answer.
        let (cached, challenges) = match cfg.plain.and_then(|cache| cache.of(self, cfg)) {
            Some(cached) => (Some(cached), Vec::new()),
            None => (None, self.challenges(cfg)),
        };
        let error = match cached {
            Some(cached) => cached.error.as_deref(),
            None => challenges.iter().find_map(|c| c.get("error")),
        }
        .or(kept_error);
        let body = self.problem_body(cfg, request_id.map(AuthRequestId::as_str), error);
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status.is_client_error() {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        for value in cached.into_iter().flat_map(|c| c.values.iter()) {
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
        if let Some(id) = request_id {
            headers.insert(X_REQUEST_ID, id.header_value().clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::{Location, TokenFacts};
    use serde::Serialize;

    /// Values copied without escaping and values escaped by serde_json read the same as
    /// serde_json's own output.
    #[test]
    fn json_str_writes_what_serde_json_writes() {
        let values = [
            "",
            "0123456789abcdef0123456789abcdef",
            "read:items write:items",
            "say \"hi\"",
            "back\\slash",
            "line\r\nbreak",
            "tab\there",
            "\u{7f}del",
            "\u{0}nul",
            "caf\u{e9} \u{1f600}",
            "</script>",
        ];
        for v in values {
            let mut ours = Vec::new();
            json_str(&mut ours, v);
            assert_eq!(ours, serde_json::to_vec(v).unwrap(), "{v:?}");
        }
    }

    // The body as serde_json wrote it before the parts were rendered once: the reference.
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

    fn reference_body(
        this: &AuthFailure,
        cfg: &RenderConfig<'_>,
        request_id: Option<&str>,
        error: Option<&str>,
    ) -> Vec<u8> {
        let client = this.client_reason(cfg.detail);
        let f = this.facts();
        let verbose = cfg.detail == DetailMode::Verbose;
        let problem = Problem {
            type_: client.type_uri_str(),
            title: client.title(),
            status: this.reason().status().as_u16(),
            detail: match f.detail() {
                Some(d) if verbose => d,
                _ => client.detail(),
            },
            reason: client.code(),
            error,
            request_id,
            verbose: verbose.then(|| VerboseFacts {
                hint: f.hint().unwrap_or(this.reason().hint()),
                expected_scheme: f.expected_scheme(),
                received_scheme: f.received_scheme(),
                location: f.location().map(ToString::to_string),
                claim: f.claim(),
            }),
            required_scope: f.scope(),
            verbose_tail: verbose.then(|| VerboseTail {
                expired_at: (this.reason() == Reason::TokenExpired)
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

    /// Every reason, in both detail modes, with and without each optional member: the
    /// spliced body is byte for byte serde_json's.
    #[test]
    fn bodies_are_serde_json_byte_for_byte() {
        for (i, &r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r as usize, i, "Reason::ALL is in declaration order");
        }
        let tricky = "a \"quoted\" \\ back\\slash\n\t\u{1}\u{7f} \u{e9}t\u{e9} </script>";
        let token = TokenFacts {
            exp: Some(1_700_000_000),
            ..TokenFacts::default()
        };
        let mut checked = 0;
        for &reason in Reason::ALL {
            for mask in 0u32..(1 << 11) {
                // Each bit adds one optional fact.
                let on = |bit: u32| mask & (1 << bit) != 0;
                let mut f = AuthFailure::new(reason).had_credentials(on(0));
                if on(1) {
                    f = f.detail(tricky);
                }
                if on(2) {
                    f = f.hint(tricky.to_owned());
                }
                if on(3) {
                    f = f.expected("Bearer");
                }
                if on(4) {
                    f = f.received(Some("Bearer"));
                }
                if on(5) {
                    f = f.location(Location::Header("x-\"key\"".into()));
                }
                if on(6) {
                    f = f.claim("aud");
                }
                if on(7) {
                    f = f.scope("read write");
                }
                if on(8) {
                    f = f.token(token.clone());
                }
                if on(9) {
                    f = f
                        .expected_iss(Some(tricky.to_owned()))
                        .expected_aud(Some("api".to_owned()));
                }
                // Bit 10 picks the error and request id (or none).
                let (error, id) = if on(10) {
                    (Some("invalid_token"), Some("id-\"1\"\\"))
                } else {
                    (None, None)
                };
                for detail in [DetailMode::Production, DetailMode::Verbose] {
                    let cfg = RenderConfig {
                        detail,
                        ..RenderConfig::DEFAULT
                    };
                    let new = f.problem_body(&cfg, id, error);
                    let old = reference_body(&f, &cfg, id, error);
                    assert_eq!(
                        String::from_utf8_lossy(&new),
                        String::from_utf8_lossy(&old),
                        "{reason:?} {detail:?} facts {mask:#b}"
                    );
                    assert_eq!(new, old);
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000);
    }

    #[test]
    fn status_digits() {
        for n in [0u16, 7, 10, 99, 100, 401, 999, 1000, 65535] {
            let mut out = Vec::new();
            push_u16(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
