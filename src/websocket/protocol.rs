//! Where a browser's token travels: the `Sec-WebSocket-Protocol` list and (on routes that
//! opt in) the `access_token` query parameter. Both are taken out of the request and handed
//! to the inner layer as `Authorization: Bearer`.

use http::header::{AUTHORIZATION, CONNECTION, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Uri};

/// The most list items read from `Sec-WebSocket-Protocol`; a longer list is dropped whole.
const MAX_ITEMS: usize = 32;
/// The longest `Sec-WebSocket-Protocol` (all values together) that is read; longer: dropped.
const MAX_LEN: usize = 16 * 1024;

/// Whether `headers` ask for a WebSocket upgrade (HTTP/1.1 `GET` with `Connection: upgrade`
/// and `Upgrade: websocket`).
pub(crate) fn is_upgrade(method: &Method, headers: &HeaderMap) -> bool {
    let has = |name, want: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|item| item.trim().eq_ignore_ascii_case(want))
            })
        })
    };
    method == Method::GET && has(CONNECTION, "upgrade") && has(UPGRADE, "websocket")
}

/// What [`take_protocol_tokens`] left in the list.
#[derive(Debug, Default)]
pub(crate) struct Offered {
    /// The tokens that followed the marker, in order.
    pub tokens: Vec<String>,
    /// Whether the marker was offered.
    pub marker: bool,
    /// The protocols offered besides the marker and the tokens.
    pub others: Vec<String>,
}

/// Takes every item that follows `marker` out of `Sec-WebSocket-Protocol` and rewrites the
/// header with what is left. A header that is not a readable list of tokens (not visible
/// ASCII, more than [`MAX_ITEMS`] items, longer than [`MAX_LEN`]) is removed whole: it might
/// hold a token, and no protocol name looks like that.
pub(crate) fn take_protocol_tokens(headers: &mut HeaderMap, marker: &str) -> Offered {
    let mut offered = Offered::default();
    if !headers.contains_key(SEC_WEBSOCKET_PROTOCOL) {
        return offered;
    }
    let items = read_list(headers);
    headers.remove(SEC_WEBSOCKET_PROTOCOL);
    let Some(items) = items else {
        return offered;
    };
    let mut kept = Vec::with_capacity(items.len());
    let mut after_marker = false;
    for item in items {
        if after_marker {
            offered.tokens.push(item);
            after_marker = false;
        } else if item == marker {
            offered.marker = true;
            after_marker = true;
            if !kept.contains(&item) {
                kept.push(item);
            }
        } else {
            offered.others.push(item.clone());
            kept.push(item);
        }
    }
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&kept.join(", ")) {
            headers.insert(SEC_WEBSOCKET_PROTOCOL, v);
        }
    }
    offered
}

/// The non-empty items of every `Sec-WebSocket-Protocol` value, or `None` when the header
/// is not a list of tokens within the limits.
fn read_list(headers: &HeaderMap) -> Option<Vec<String>> {
    let mut len = 0;
    let mut items = Vec::new();
    for value in headers.get_all(SEC_WEBSOCKET_PROTOCOL) {
        len += value.len();
        let text = value.to_str().ok()?;
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if !item.bytes().all(is_tchar) {
                return None;
            }
            items.push(item.to_owned());
        }
        if len > MAX_LEN || items.len() > MAX_ITEMS {
            return None;
        }
    }
    Some(items)
}

/// RFC 9110 `tchar`: what a subprotocol name (and a JWT) is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Takes every `access_token` parameter out of the query of `uri`; returns the new URI and
/// the (percent-decoded) values.
pub(crate) fn take_query_tokens(uri: &Uri) -> Option<(Uri, Vec<String>)> {
    let query = uri.query()?;
    let mut tokens = Vec::new();
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("access_token", value)) => tokens.push(percent_decode(value)),
            None if pair == "access_token" => tokens.push(String::new()),
            _ => kept.push(pair),
        }
    }
    if tokens.is_empty() {
        return None;
    }
    let mut path_and_query = uri.path().to_owned();
    if !kept.is_empty() {
        path_and_query.push('?');
        path_and_query.push_str(&kept.join("&"));
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    let uri = Uri::from_parts(parts).ok()?;
    tokens.retain(|t| !t.is_empty());
    Some((uri, tokens))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Hands `tokens` to the inner layer as `Authorization: Bearer`. With an `Authorization`
/// already there, or more than one token, every one is added as its own value: the inner
/// layer refuses the request as carrying more than one credential, and logs it.
pub(crate) fn authorize(headers: &mut HeaderMap, tokens: &[String]) {
    for token in tokens {
        // A token that is not a valid header value cannot be a Bearer token either: the
        // inner layer still sees that a credential was sent, malformed.
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
        headers.append(AUTHORIZATION, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(values: &[&str]) -> (HeaderMap, Offered) {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_str(v).unwrap());
        }
        let offered = take_protocol_tokens(&mut headers, "bearer");
        (headers, offered)
    }

    #[test]
    fn the_token_leaves_the_list_and_the_marker_stays() {
        let (headers, o) = offered(&["bearer, a.b.c, chat"]);
        assert_eq!(o.tokens, ["a.b.c"]);
        assert_eq!(o.others, ["chat"]);
        assert_eq!(headers[SEC_WEBSOCKET_PROTOCOL], "bearer, chat");
        let (headers, o) = offered(&["bearer", "x.y.z"]);
        assert_eq!(o.tokens, ["x.y.z"]);
        assert_eq!(headers[SEC_WEBSOCKET_PROTOCOL], "bearer");
    }

    #[test]
    fn unreadable_or_huge_lists_are_dropped_whole() {
        let (headers, o) = offered(&["bearer, a\"b"]);
        assert!(o.tokens.is_empty() && !headers.contains_key(SEC_WEBSOCKET_PROTOCOL));
        let many = vec!["p"; MAX_ITEMS + 1].join(",");
        let (headers, _) = offered(&[&many]);
        assert!(!headers.contains_key(SEC_WEBSOCKET_PROTOCOL));
    }

    #[test]
    fn query_tokens_are_taken_out() {
        let uri: Uri = "/ws?x=1&access_token=a%2Eb&y".parse().unwrap();
        let (uri, tokens) = take_query_tokens(&uri).unwrap();
        assert_eq!(uri, "/ws?x=1&y");
        assert_eq!(tokens, ["a.b"]);
        assert!(take_query_tokens(&"/ws?x=1".parse().unwrap()).is_none());
    }
}
