//! The failure log event: one `tracing` event per rejected or corrected request.
//!
//! Target `auth_diagnostics`, level by [`Reason::severity`](crate::Reason::severity).
//! Every client-supplied value is capped and escaped before it gets here; no token,
//! password, key, cookie value or query string is ever a field.

use crate::failure::{AuthFailure, TokenFacts};
use crate::flood::{summary, Admit, FloodControl};
use crate::reason::{DetailMode, Severity};
use crate::sanitize::{cap_to, clean_text, Capped};
use crate::snapshot::{loggable_path, Headers};
use crate::time::rfc3339;
use http::{Method, StatusCode, Uri};
use std::sync::Arc;
use std::time::Instant;

/// Longest free text (detail, hint, expected values) in an event, in characters.
const MAX_TEXT: usize = 512;

/// The request facts every event carries.
pub(crate) struct RequestInfo<'a> {
    pub request_id: &'a str,
    pub method: &'a Method,
    pub uri: &'a Uri,
    /// The request's headers, for the `repro` line (built only for an event that is logged).
    pub headers: Headers<'a>,
}

macro_rules! failure_event {
    ($level:expr, $f:expr, $info:expr, $status:expr, $client:expr, $enforced:expr) => {{
        let f: &AuthFailure = $f;
        let facts = f.facts();
        let token = facts.token();
        let t = |get: fn(&TokenFacts) -> Option<&Capped>| token.and_then(get).map(|c| c.as_str());
        let path = cap_to(&loggable_path($info.uri.path()), 256);
        // Facts handed in by handlers are not trusted to be clean: escape them here too.
        let clean = |s: Option<&str>| s.map(|s| clean_text(s, MAX_TEXT));
        let detail = clean_text(facts.detail().unwrap_or(f.reason().detail()), MAX_TEXT);
        let hint = clean_text(facts.hint().unwrap_or(f.reason().hint()), MAX_TEXT);
        let (expected_iss, expected_aud) = (clean(facts.expected_iss()), clean(facts.expected_aud()));
        let hints = (!facts.hints().is_empty()).then(|| facts.hints().join(","));
        let (claim, scope, check) = (clean(facts.claim()), clean(facts.scope()), clean(facts.check()));
        let keys = facts.keys();
        let fetch_error = clean(keys.and_then(|k| k.fetch_error.as_deref()));
        tracing::event!(
            target: "auth_diagnostics",
            $level,
            reason = f.reason().code(),
            client_reason = $client,
            status = $status.as_u16(),
            enforced = $enforced,
            request_id = $info.request_id,
            method = cap_to($info.method.as_str(), 32).as_str(),
            path = path.as_str(),
            scheme_expected = facts.expected_scheme(),
            scheme_received = facts.received_scheme(),
            location = facts.location().map(tracing::field::display),
            fingerprint = facts.fingerprint(),
            signature_verified = token.map(|t| t.verified),
            alg = t(|t| t.alg.as_ref()),
            kid = t(|t| t.kid.as_ref()),
            typ = t(|t| t.typ.as_ref()),
            iss = t(|t| t.iss.as_ref()),
            aud = t(|t| t.aud.as_ref()),
            sub = t(|t| t.sub.as_ref()),
            exp = token.and_then(|t| t.exp).map(rfc3339),
            expected_iss = expected_iss.as_deref(),
            expected_aud = expected_aud.as_deref(),
            claim = claim.as_deref(),
            scope = scope.as_deref(),
            check = check.as_deref(),
            user = facts.user(),
            hint = hint.as_str(),
            inferred = facts.inferred().then_some(true),
            inferred_reason = facts.inferred_reason().map(|r| r.code()),
            upstream_status = facts.upstream_status(),
            key_source = keys.map(|k| k.source.as_str()),
            keys_fetched_at = keys.and_then(|k| k.fetched_at).map(rfc3339),
            key_ids = keys.and_then(|k| k.kids.as_deref()),
            fetch_error = fetch_error.as_deref(),
            hints = hints.as_deref(),
            repro = $info.headers.curl($info.method, $info.uri).as_str(),
            "{}: {}",
            f.reason().code(),
            detail
        )
    }};
}

/// Emits the event for `failure`, answered with `status`, unless flood control holds it
/// back (then it is counted for the next "suppressed N" summary).
pub(crate) fn emit(
    failure: &AuthFailure,
    info: &RequestInfo<'_>,
    status: StatusCode,
    mode: DetailMode,
    flood: &Arc<FloodControl>,
) {
    emit_event(failure, info, status, mode, flood, None);
}

/// [`emit`] for a refusal a report-only layer did not make: the same event, with
/// `enforced=false` (`status` is the one it would have had). Enforced events carry no
/// `enforced` field: their fields are as they always were.
pub(crate) fn emit_unenforced(
    failure: &AuthFailure,
    info: &RequestInfo<'_>,
    status: StatusCode,
    mode: DetailMode,
    flood: &Arc<FloodControl>,
) {
    emit_event(failure, info, status, mode, flood, Some(false));
}

fn emit_event(
    failure: &AuthFailure,
    info: &RequestInfo<'_>,
    status: StatusCode,
    mode: DetailMode,
    flood: &Arc<FloodControl>,
    enforced: Option<bool>,
) {
    match flood.admit(failure.reason(), Instant::now()) {
        Admit::Suppress => {
            crate::metrics::log_suppressed(failure.reason());
            return;
        }
        Admit::Log { suppressed: 0 } => {}
        Admit::Log { suppressed } => summary(failure.reason(), suppressed),
    }
    let client = failure.client_reason(mode).code();
    // Nothing is formatted for an event no subscriber wants.
    match failure.reason().severity() {
        Severity::Info if tracing::enabled!(target: "auth_diagnostics", tracing::Level::INFO) => {
            failure_event!(
                tracing::Level::INFO,
                failure,
                info,
                status,
                client,
                enforced
            )
        }
        Severity::Warn if tracing::enabled!(target: "auth_diagnostics", tracing::Level::WARN) => {
            failure_event!(
                tracing::Level::WARN,
                failure,
                info,
                status,
                client,
                enforced
            )
        }
        Severity::Error if tracing::enabled!(target: "auth_diagnostics", tracing::Level::ERROR) => {
            failure_event!(
                tracing::Level::ERROR,
                failure,
                info,
                status,
                client,
                enforced
            )
        }
        _ => {}
    }
}
