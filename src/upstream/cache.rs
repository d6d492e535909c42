//! Answers authenticated by a credential shared caches do not key on.

use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderValue};

/// Makes a response unstorable by shared caches, which key on `Authorization` but not on
/// API-key headers or cookies (RFC 9110 §16.4.2, RFC 9111 §5.2.2.7): `private` is added
/// unless the response already says `private`, or `no-store` without `must-understand`
/// (a cache that understands the status may then ignore `no-store`, RFC 9111 §5.2.2.3);
/// `public` and `s-maxage` are removed. A field-qualified `private="…"` covers only its
/// fields, so it becomes a plain `private`.
pub(super) fn make_private(headers: &mut HeaderMap) {
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("private"));
        return;
    }
    let mut kept: Vec<String> = Vec::new();
    let (mut private, mut no_store, mut must_understand) = (false, false, false);
    for value in headers.get_all(CACHE_CONTROL) {
        // A value that is not visible ASCII is no directive list a cache understands.
        let Ok(text) = value.to_str() else { continue };
        for directive in split_directives(text) {
            let name = directive
                .split('=')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            match name.as_str() {
                "public" | "s-maxage" => continue,
                "private" if directive.contains('=') => continue,
                "private" => private = true,
                "no-store" => no_store = true,
                "must-understand" => must_understand = true,
                _ => {}
            }
            kept.push(directive.to_owned());
        }
    }
    if !private && (!no_store || must_understand) {
        kept.push("private".to_owned());
    }
    let joined = HeaderValue::from_str(&kept.join(", "))
        .unwrap_or_else(|_| HeaderValue::from_static("private"));
    headers.insert(CACHE_CONTROL, joined);
}

/// The directives of a `Cache-Control` value: split at commas outside quoted strings,
/// trimmed, empty ones dropped.
fn split_directives(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(text[start..].trim());
    out.retain(|d| !d.is_empty());
    out
}
