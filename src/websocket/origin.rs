//! Cross-site WebSocket hijacking: a browser sends a site's cookies with a WebSocket
//! handshake from any page, and no CORS rule stops it. A cookie counts only when the page
//! that opens the socket is this origin or one the route trusts.

use http::header::{COOKIE, HOST, ORIGIN};
use http::HeaderMap;

/// Whether the cookies of an upgrade with `headers` may authenticate it: no `Origin` (not a
/// browser), the request's own origin (`Host`), or one of `trusted` (lower case).
pub(crate) fn cookies_allowed(headers: &HeaderMap, trusted: &[String]) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Some(origin) = origin.to_str().ok().map(str::to_ascii_lowercase) else {
        return false;
    };
    if trusted.contains(&origin) {
        return true;
    }
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    match (authority(&origin), host) {
        (Some((scheme, authority)), Some(host)) => {
            with_port(scheme, authority) == with_port(scheme, &host.to_ascii_lowercase())
        }
        _ => false,
    }
}

/// Removes the cookies of an upgrade they may not authenticate; whether it did.
pub(crate) fn drop_foreign_cookies(headers: &mut HeaderMap, trusted: &[String]) -> bool {
    if headers.contains_key(COOKIE) && !cookies_allowed(headers, trusted) {
        headers.remove(COOKIE);
        return true;
    }
    false
}

/// `scheme://authority` of an origin, for `http` and `https` only.
fn authority(origin: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = origin.split_once("://")?;
    let ok = matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains('/');
    ok.then_some((scheme, rest))
}

/// `authority` with its port, the scheme's default when it has none.
fn with_port(scheme: &str, authority: &str) -> String {
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    if has_port {
        authority.to_owned()
    } else {
        let port = if scheme == "https" { 443 } else { 80 };
        format!("{authority}:{port}")
    }
}

/// Trusted origins as they are compared: lower case, no trailing slash.
pub(crate) fn normalize(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn allowed(origin: Option<&str>, host: &str, trusted: &[&str]) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            headers.insert(ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        let trusted: Vec<String> = trusted.iter().map(|t| normalize(t)).collect();
        cookies_allowed(&headers, &trusted)
    }

    #[test]
    fn cookies_count_from_this_origin_and_trusted_ones() {
        assert!(allowed(None, "api.example", &[]));
        assert!(allowed(Some("https://api.example"), "api.example", &[]));
        assert!(allowed(Some("https://api.example"), "api.example:443", &[]));
        assert!(allowed(
            Some("http://127.0.0.1:3000"),
            "127.0.0.1:3000",
            &[]
        ));
        assert!(allowed(Some("http://[::1]:3000"), "[::1]:3000", &[]));
        assert!(!allowed(
            Some("http://127.0.0.1:3001"),
            "127.0.0.1:3000",
            &[]
        ));
        assert!(!allowed(Some("https://evil.example"), "api.example", &[]));
        assert!(!allowed(Some("null"), "api.example", &[]));
        assert!(allowed(
            Some("http://app.example"),
            "api.example",
            &["http://App.example/"]
        ));
    }
}
