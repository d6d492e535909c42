//! A refusal in gRPC's own terms. A gRPC client reads `grpc-status` and `grpc-message`,
//! not the HTTP status: given a 401 with a problem body it reports a protocol error or
//! `UNKNOWN`. A request whose `content-type` is `application/grpc` (with any `+proto`,
//! `+json` or other suffix) is therefore refused with a trailers-only answer: HTTP 200,
//! `content-type: application/grpc`, the gRPC status of the reason's HTTP status,
//! `grpc-message` naming the client reason and its detail, no body. Everything else the
//! HTTP answer carries stays: `WWW-Authenticate`, `Retry-After`, `DPoP-Nonce`,
//! `X-Request-Id`. The log event and the metrics keep the HTTP status (gRPC-Web, which
//! answers in its own media type, is not one of these requests).

use crate::failure::AuthFailure;
use crate::reason::DetailMode;
use axum::body::Body;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

/// The gRPC status codes a refusal is answered with (gRPC's `statuscodes.md`).
mod code {
    pub(super) const UNKNOWN: u8 = 2;
    pub(super) const INVALID_ARGUMENT: u8 = 3;
    pub(super) const PERMISSION_DENIED: u8 = 7;
    pub(super) const RESOURCE_EXHAUSTED: u8 = 8;
    pub(super) const UNIMPLEMENTED: u8 = 12;
    pub(super) const UNAVAILABLE: u8 = 14;
    pub(super) const UNAUTHENTICATED: u8 = 16;
}

/// Whether `headers` say the message is gRPC: `application/grpc`, alone or followed by
/// `+` and a message format, or by parameters (case-insensitive, as media types are).
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| is_grpc_type(v.as_bytes()))
}

fn is_grpc_type(value: &[u8]) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    let value = value.trim_ascii();
    value.len() >= GRPC.len()
        && value[..GRPC.len()].eq_ignore_ascii_case(GRPC)
        && matches!(
            value.get(GRPC.len()),
            None | Some(b'+' | b';' | b' ' | b'\t')
        )
}

/// The gRPC status for the HTTP status a refusal would have: 16 `UNAUTHENTICATED` for
/// 401, 7 `PERMISSION_DENIED` for 403, 3 `INVALID_ARGUMENT` for 400 (the request itself
/// is malformed), 8 `RESOURCE_EXHAUSTED` for 429, 14 `UNAVAILABLE` for 503 (the client
/// may retry), 12 `UNIMPLEMENTED` for the 404 of a hidden refusal (what tonic's router
/// answers for a method it does not serve).
pub(crate) fn status_for(http: StatusCode) -> u8 {
    match http {
        StatusCode::BAD_REQUEST => code::INVALID_ARGUMENT,
        StatusCode::UNAUTHORIZED => code::UNAUTHENTICATED,
        StatusCode::FORBIDDEN => code::PERMISSION_DENIED,
        StatusCode::NOT_FOUND => code::UNIMPLEMENTED,
        StatusCode::TOO_MANY_REQUESTS => code::RESOURCE_EXHAUSTED,
        StatusCode::SERVICE_UNAVAILABLE => code::UNAVAILABLE,
        _ => code::UNKNOWN,
    }
}

/// `text` as a `grpc-message` value: every byte outside printable ASCII (0x20-0x7E), and
/// `%` itself, percent-encoded (gRPC over HTTP/2, "Responses"); a client decodes it back
/// to UTF-8.
pub(crate) fn percent_encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if (0x20..=0x7E).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
    out
}

/// What the client is told: the client reason's code first, then the detail the problem
/// body would carry in this detail mode, then the scopes it needs when it lacks some.
fn message(failure: &AuthFailure, mode: DetailMode) -> String {
    let client = failure.client_reason(mode);
    let facts = failure.facts();
    let detail = match facts.detail() {
        Some(d) if mode == DetailMode::Verbose => d,
        _ => client.detail(),
    };
    let mut text = format!("{}: {detail}", client.code());
    if let Some(scope) = facts.scope() {
        text.push_str(" (required scope: ");
        text.push_str(scope);
        text.push(')');
    }
    text
}

/// `http`, the HTTP answer rendered for `failure`, turned into a trailers-only gRPC
/// answer: its headers kept, its status, content type and body replaced.
pub(crate) fn answer(
    failure: &AuthFailure,
    http: Response<Body>,
    mode: DetailMode,
) -> Response<Body> {
    let (mut parts, _) = http.into_parts();
    let status = status_for(parts.status);
    parts.status = StatusCode::OK;
    let headers = &mut parts.headers;
    headers.remove(CONTENT_LENGTH);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from(u16::from(status)));
    // A hidden refusal says nothing, as the router's answer for a method it lacks.
    if !crate::hide::is_hidden(failure) {
        let text = percent_encode(&message(failure, mode));
        if let Ok(value) = HeaderValue::from_str(&text) {
            headers.insert("grpc-message", value);
        }
    }
    Response::from_parts(parts, Body::empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::Reason;

    #[test]
    fn grpc_content_types() {
        for yes in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc+json",
            "application/grpc+thrift",
            "Application/GRPC+Proto",
            "application/grpc; charset=utf-8",
            " application/grpc ",
        ] {
            assert!(is_grpc_type(yes.as_bytes()), "{yes}");
        }
        for no in [
            "application/grpc-web",
            "application/grpc-web+proto",
            "application/grpc-web-text",
            "application/grpcx",
            "application/json",
            "text/grpc",
            "application/grp",
            "",
        ] {
            assert!(!is_grpc_type(no.as_bytes()), "{no}");
        }
        let mut headers = HeaderMap::new();
        assert!(!is_grpc(&headers));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        assert!(is_grpc(&headers));
    }

    #[test]
    fn statuses() {
        let cases = [
            (400, 3),
            (401, 16),
            (403, 7),
            (404, 12),
            (429, 8),
            (503, 14),
            (500, 2),
        ];
        for (http, grpc) in cases {
            assert_eq!(
                status_for(StatusCode::from_u16(http).unwrap()),
                grpc,
                "{http}"
            );
        }
    }

    #[test]
    fn message_encoding() {
        assert_eq!(percent_encode("token_expired: ok"), "token_expired: ok");
        assert_eq!(percent_encode("100%"), "100%25");
        assert_eq!(percent_encode("a\"b'c"), "a\"b'c");
        assert_eq!(percent_encode("line\r\nnext"), "line%0D%0Anext");
        assert_eq!(percent_encode("tab\there"), "tab%09here");
        assert_eq!(percent_encode("café ✓"), "caf%C3%A9 %E2%9C%93");
        assert_eq!(percent_encode("\u{7f}~ "), "%7F~ ");
    }

    #[test]
    fn message_names_reason_detail_and_scope() {
        let f = AuthFailure::new(Reason::InsufficientScope)
            .scope("admin")
            .detail("the token lacks scope admin; granted: \"read\"\r\nx");
        let verbose = message(&f, DetailMode::Verbose);
        assert!(verbose.starts_with("insufficient_scope: the token lacks scope admin"));
        assert!(verbose.ends_with("(required scope: admin)"));
        let production = message(&f, DetailMode::Production);
        assert!(!production.contains("granted"), "{production}");
        let response = answer(
            &f,
            f.render(&crate::problem::RenderConfig::DEFAULT, None),
            DetailMode::Verbose,
        );
        assert_eq!(response.status(), StatusCode::OK);
        let h = response.headers();
        assert_eq!(h["content-type"], "application/grpc");
        assert_eq!(h["grpc-status"], "7");
        let m = h["grpc-message"].to_str().unwrap();
        assert!(m.contains("granted: \"read\"%0D%0Ax"), "{m}");
        assert!(h.contains_key("www-authenticate"));
    }
}
