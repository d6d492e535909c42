//! Enforce mode: correct a 401/403 of the wrapped service only where it certainly breaks
//! the contract (RFC 9110 §15.5.2, §15.5.4; RFC 6750 §3.1), and log every refusal.

use super::Watch;
use crate::challenge::read_challenges;
use crate::config::UpstreamMode;
use crate::evidence::query_access_token;
use crate::failure::AuthFailure;
use crate::reason::Reason;
use crate::sanitize::cap;
use axum::body::Body;
use http::header::{
    ACCESS_CONTROL_EXPOSE_HEADERS, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

impl Watch<'_> {
    /// A 401 or 403 the wrapped service produced: diagnose it, and correct it when it
    /// breaks the contract (in enforce mode).
    pub(super) fn refusal(&self, response: Response<Body>) -> Response<Body> {
        let status = response.status();
        if self.preflight {
            let f = AuthFailure::new(Reason::PreflightBlocked)
                .detail(format!(
                    "the application answered a CORS preflight with {}; browsers send preflights without credentials",
                    status.as_u16()
                ))
                .upstream_status(status.as_u16());
            self.log(f, status);
            return response;
        }
        let seen = self
            .diagnose()
            .upstream_status(status.as_u16())
            .token_verified(self.authenticated)
            .expected(self.expected_names());
        let no_credentials = !self.snapshot.carries_credentials() && !query_access_token(&self.uri);
        let error = refusal_error(response.headers());
        let Some(violation) = self.violation(&response, no_credentials, error.as_deref()) else {
            self.log_refusal(seen, status, no_credentials);
            return response;
        };
        // A 401 saying `insufficient_scope` means 403 (RFC 6750 §3.1): the status is
        // corrected, the application's challenge (and its `scope`) kept as it is.
        let keep_challenge = violation == Reason::UpstreamUnauthorizedAfterAuthentication
            && error.as_deref() == Some(INSUFFICIENT_SCOPE);
        let mut f = correction(violation, seen, self.authenticated, no_credentials, error);
        let kept = match violation {
            Reason::UpstreamTokenRefused => true,
            Reason::UpstreamForbiddenWithoutCredentials
                if !self.config.correct_anonymous_forbidden =>
            {
                f = f.hint(
                    "The application answered 403 to a request without credentials, where 401 \
                     with a challenge is the usual answer. It was kept: a 403 can be a denial \
                     by IP or policy. If this application's 403s to anonymous requests always \
                     mean \"who are you?\", opt in with \
                     AuthDiagnostics::correct_forbidden_without_credentials().",
                );
                true
            }
            _ => self.config.mode == UpstreamMode::Observe,
        };
        if violation != Reason::UpstreamTokenRefused {
            // A 401 with an error is the application refusing a token: a correct answer,
            // not one to correct.
            crate::metrics::upstream_correction(violation, !kept);
        }
        if kept {
            self.log(f, status);
            return response;
        }
        let corrected = self.correct(response, &f, keep_challenge);
        let status = corrected.status();
        self.log(f, status);
        corrected
    }

    /// What the refusal breaks, if anything.
    fn violation(
        &self,
        response: &Response<Body>,
        no_credentials: bool,
        error: Option<&str>,
    ) -> Option<Reason> {
        let status = response.status();
        let unauthorized = status == StatusCode::UNAUTHORIZED;
        if unauthorized && self.authenticated {
            Some(match error {
                Some(INSUFFICIENT_SCOPE) | None => Reason::UpstreamUnauthorizedAfterAuthentication,
                Some(_) => Reason::UpstreamTokenRefused,
            })
        } else if unauthorized && !response.headers().contains_key(WWW_AUTHENTICATE) {
            Some(Reason::UpstreamChallengeMissing)
        } else if status == StatusCode::FORBIDDEN && no_credentials && !self.authenticated {
            Some(Reason::UpstreamForbiddenWithoutCredentials)
        } else {
            None
        }
    }

    /// A correct refusal: say why, as far as the request shows.
    fn log_refusal(&self, seen: AuthFailure, status: StatusCode, no_credentials: bool) {
        if status == StatusCode::FORBIDDEN && !no_credentials {
            let inferred = seen.reason();
            let f = seen
                .reason_now(Reason::Forbidden)
                .inferred_reason(Some(inferred))
                .detail(
                    "the application answered 403 to a request that carries credentials (or a \
                     header or cookie that may be one): its call",
                );
            self.log(f, status);
        } else {
            self.log(seen, status);
        }
    }

    /// The wrapped service's answer, corrected for `failure`: the right status, the
    /// challenges a 401 needs, no challenge on a 403 unless `keep_challenge` (an
    /// `insufficient_scope` one). A new status gets the layer's body (a problem body's
    /// `status` equals the response's); a completed 401 keeps a non-empty body of the
    /// application's.
    fn correct(
        &self,
        response: Response<Body>,
        failure: &AuthFailure,
        keep_challenge: bool,
    ) -> Response<Body> {
        let (mut parts, body) = response.into_parts();
        let kept_error = keep_challenge.then_some(INSUFFICIENT_SCOPE);
        let rendered =
            failure.render_with_error(&self.config.render(), Some(&self.request_id), kept_error);
        let (rparts, rbody) = rendered.into_parts();
        let status_changed = parts.status != rparts.status;
        parts.status = rparts.status;
        if !keep_challenge {
            parts.headers.remove(WWW_AUTHENTICATE);
        }
        for challenge in rparts.headers.get_all(WWW_AUTHENTICATE) {
            parts.headers.append(WWW_AUTHENTICATE, challenge.clone());
        }
        if let Some(expose) = rparts.headers.get(ACCESS_CONTROL_EXPOSE_HEADERS) {
            parts
                .headers
                .entry(ACCESS_CONTROL_EXPOSE_HEADERS)
                .or_insert_with(|| expose.clone());
        }
        // The corrected answer is the layer's: never cacheable, whatever the app said.
        parts
            .headers
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let empty = http_body::Body::size_hint(&body).exact() == Some(0);
        if !status_changed && !empty {
            return Response::from_parts(parts, body);
        }
        for stale in [CONTENT_LENGTH, CONTENT_ENCODING, CONTENT_RANGE, ETAG] {
            parts.headers.remove(stale);
        }
        if let Some(ct) = rparts.headers.get(CONTENT_TYPE) {
            parts.headers.insert(CONTENT_TYPE, ct.clone());
        }
        Response::from_parts(parts, rbody)
    }
}

/// The failure logged (and rendered) for `violation`, with what the request showed.
fn correction(
    violation: Reason,
    seen: AuthFailure,
    authenticated: bool,
    no_credentials: bool,
    error: Option<String>,
) -> AuthFailure {
    let inferred = seen.reason();
    let detail = match violation {
        Reason::UpstreamChallengeMissing => format!(
            "the application answered 401 without WWW-Authenticate; the request suggests {}",
            inferred.code()
        ),
        Reason::UpstreamUnauthorizedAfterAuthentication => match error.as_deref() {
            Some(INSUFFICIENT_SCOPE) => "the application answered 401 with \
                error=insufficient_scope to a request this layer authenticated; that error \
                means 403"
                .to_owned(),
            _ => "the application answered 401 to a request this layer authenticated".to_owned(),
        },
        Reason::UpstreamTokenRefused => format!(
            "the application refused the token this layer verified itself, with error={}; \
             its answer is kept",
            error.as_deref().unwrap_or_default()
        ),
        _ => "the application answered 403 to a request without credentials".to_owned(),
    };
    seen.reason_now(violation)
        .inferred(false)
        .inferred_reason((!authenticated).then_some(inferred))
        .default_hint()
        .had_credentials(!no_credentials)
        .detail(detail)
}

/// RFC 6750's error for a token that lacks scope: its status is 403.
const INSUFFICIENT_SCOPE: &str = "insufficient_scope";

/// The `error` a 401's challenges carry, when any does: the application refused the token
/// itself (`invalid_token`, `insufficient_scope`, RFC 9470's
/// `insufficient_user_authentication`, RFC 9449's `use_dpop_nonce`, …) and says what the
/// client should do, so the answer is kept. A challenge that does not parse but names an
/// `error` counts too: what is not certain is not corrected.
fn refusal_error(headers: &HeaderMap) -> Option<String> {
    headers.get_all(WWW_AUTHENTICATE).iter().find_map(|value| {
        let text = String::from_utf8_lossy(value.as_bytes());
        match read_challenges(&text) {
            Some(challenges) => challenges
                .iter()
                .find_map(|c| c.param("error").map(|e| cap(e).to_string())),
            None => text
                .to_ascii_lowercase()
                .contains("error")
                .then(|| "(in a challenge that does not parse)".to_owned()),
        }
    })
}
