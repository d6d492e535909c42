//! `Mcp-Method` and `Mcp-Name` (MCP revision 2026-07-28): what a client says it calls,
//! before the body is read.
//!
//! Each header is taken only when it comes once, within its length cap, as visible ASCII
//! (with inner spaces or tabs). `Mcp-Name` may carry `=?base64?…?=`: standard base64 of the
//! UTF-8 name, for names a header cannot hold (non-ASCII, control characters, surrounding
//! whitespace). Anything else is [`Field::Malformed`]: it never decides a scope, and with
//! the mismatch check on it is refused (400 `-32020`).

use base64::Engine as _;
use http::{HeaderMap, HeaderName};
use std::borrow::Cow;

/// The JSON-RPC method the client says the body holds.
pub(crate) const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
/// The tool, prompt or resource the client says the body names.
pub(crate) const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

/// Longest `Mcp-Method` taken: method names are short.
const MAX_METHOD: usize = 256;
/// Longest `Mcp-Name` taken, as sent (a resource URI in base64 may be long).
const MAX_NAME: usize = 8 * 1024;

const PREFIX: &str = "=?base64?";
const SUFFIX: &str = "?=";

/// One header as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    /// Not sent.
    Absent,
    /// Sent once, well formed, decoded.
    Value(String),
    /// Sent, but not usable: why.
    Malformed(&'static str),
}

impl Field {
    /// The value, when there is a usable one.
    pub(crate) fn value(&self) -> Option<&str> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }
}

/// Both headers of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct McpHeaders {
    pub method: Field,
    pub name: Field,
}

impl McpHeaders {
    /// Reads both headers of `headers`.
    pub(crate) fn read(headers: &HeaderMap) -> Self {
        let method = match field(headers, &MCP_METHOD, MAX_METHOD) {
            Ok(Some(text)) => Field::Value(text.to_owned()),
            Ok(None) => Field::Absent,
            Err(why) => Field::Malformed(why),
        };
        let name = match field(headers, &MCP_NAME, MAX_NAME).and_then(|t| t.map(decode).transpose())
        {
            Ok(Some(text)) => Field::Value(text.into_owned()),
            Ok(None) => Field::Absent,
            Err(why) => Field::Malformed(why),
        };
        Self { method, name }
    }

    /// Whether either header was sent at all.
    pub(crate) fn sent(&self) -> bool {
        self.method != Field::Absent || self.name != Field::Absent
    }

    /// The first malformed header: its name and why.
    pub(crate) fn malformed(&self) -> Option<(&'static str, &'static str)> {
        match (&self.method, &self.name) {
            (Field::Malformed(why), _) => Some(("Mcp-Method", why)),
            (_, Field::Malformed(why)) => Some(("Mcp-Name", why)),
            _ => None,
        }
    }
}

/// The text of header `name`: `None` when absent, an error when repeated, too long, or
/// not visible ASCII.
fn field<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    max: usize,
) -> Result<Option<&'h str>, &'static str> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("sent more than once");
    }
    let bytes = value.as_bytes();
    if bytes.len() > max {
        return Err("too long");
    }
    if !bytes
        .iter()
        .all(|&b| b == b'\t' || (0x20..=0x7e).contains(&b))
    {
        return Err("not visible ASCII (names that are not go in the =?base64?…?= form)");
    }
    // Visible ASCII is UTF-8.
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8")?;
    let text = text.trim_matches([' ', '\t']);
    if text.is_empty() {
        return Err("empty");
    }
    Ok(Some(text))
}

/// `text` as the name it stands for: the `=?base64?…?=` form decoded (standard alphabet,
/// UTF-8), any other text as it is.
pub(crate) fn decode(text: &str) -> Result<Cow<'_, str>, &'static str> {
    let Some(encoded) = text
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix(SUFFIX))
    else {
        return Ok(Cow::Borrowed(text));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "invalid base64 in the =?base64?…?= form")?;
    String::from_utf8(bytes)
        .map(Cow::Owned)
        .map_err(|_| "the =?base64?…?= form does not decode to UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn read(pairs: &[(&HeaderName, &[u8])]) -> McpHeaders {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        McpHeaders::read(&headers)
    }

    #[test]
    fn plain_and_encoded_names() {
        let h = read(&[(&MCP_METHOD, b"tools/call"), (&MCP_NAME, b"admin-action")]);
        assert_eq!(h.method.value(), Some("tools/call"));
        assert_eq!(h.name.value(), Some("admin-action"));
        // The spec's own example: a literal that looks like the form, encoded.
        let h = read(&[(&MCP_NAME, b"=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=")]);
        assert_eq!(h.name.value(), Some("=?base64?literal?="));
        let h = read(&[(&MCP_NAME, b"=?base64?w6ljaG8=?=")]);
        assert_eq!(h.name.value(), Some("\u{e9}cho"));
    }

    #[test]
    fn malformed_values_are_not_taken() {
        let bad: &[&[u8]] = &[
            b"=?base64?!!!?=",
            b"=?base64?/w==?=",
            b"caf\xc3\xa9",
            b"",
            b"  ",
        ];
        for value in bad {
            let h = read(&[(&MCP_NAME, value)]);
            assert!(matches!(h.name, Field::Malformed(_)), "{value:?}: {h:?}");
        }
        let h = read(&[(&MCP_METHOD, b"a"), (&MCP_METHOD, b"b")]);
        assert!(matches!(h.method, Field::Malformed(_)));
        let long = vec![b'a'; MAX_METHOD + 1];
        assert!(matches!(
            read(&[(&MCP_METHOD, &long)]).method,
            Field::Malformed(_)
        ));
        assert_eq!(read(&[]).method, Field::Absent);
        assert!(!read(&[]).sent());
    }

    #[test]
    fn an_unclosed_form_is_a_literal() {
        let h = read(&[(&MCP_NAME, b"=?base64?abc")]);
        assert_eq!(h.name.value(), Some("=?base64?abc"));
    }
}
