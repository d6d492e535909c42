//! Building `WWW-Authenticate` challenges (RFC 9110 §11, RFC 6750 §3, RFC 7617).
//!
//! Every value is sanitized on the way in: no CR/LF or other control character can reach
//! a header, `realm` is a correctly escaped quoted-string, and `error_description` and
//! `scope` hold only the characters RFC 6750 §3 allows.

use http::HeaderValue;
use std::fmt::Write as _;

/// Longest `error_description` we send; longer text is cut at a character boundary.
const MAX_DESCRIPTION: usize = 256;
/// Longest `realm` or other quoted-string parameter we send.
const MAX_QUOTED: usize = 128;
/// Longest `scope` we send.
const MAX_SCOPE: usize = 512;

/// One challenge: an auth-scheme and its auth-params, rendered as one field line.
///
/// ```
/// use auth_diagnostics::Challenge;
///
/// let value = Challenge::new("Bearer")
///     .realm("api")
///     .error("invalid_token")
///     .error_description("The token \"expired\"\r\n")
///     .to_header_value();
/// assert_eq!(
///     value,
///     r#"Bearer realm="api", error="invalid_token", error_description="The token 'expired'""#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: &'static str,
    params: Vec<(&'static str, String)>,
}

impl Challenge {
    /// A challenge for `scheme` (a token, e.g. `Bearer`, `Basic`) with no parameters yet.
    pub fn new(scheme: &'static str) -> Self {
        debug_assert!(!scheme.is_empty() && scheme.bytes().all(is_tchar));
        Self {
            scheme,
            params: Vec::with_capacity(4),
        }
    }

    /// The auth-scheme.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// `realm="…"`: any text, escaped as a quoted-string; control characters are dropped.
    pub fn realm(self, realm: &str) -> Self {
        let v = quoted_safe(realm, MAX_QUOTED);
        self.param("realm", v)
    }

    /// A generic quoted-string parameter (name must be a token). Values are sanitized
    /// like `realm`. A name given twice keeps its first value (names never repeat).
    pub fn quoted_param(self, name: &'static str, value: &str) -> Self {
        let v = quoted_safe(value, MAX_QUOTED);
        self.param(name, v)
    }

    /// `error="…"`: an RFC 6750 error code (only its allowed characters are kept).
    pub fn error(self, code: &str) -> Self {
        let v = rfc6750_text(code, 64);
        self.param("error", v)
    }

    /// `error_description="…"`: human-readable text restricted to RFC 6750 §3's
    /// `%x20-21 / %x23-5B / %x5D-7E`; `"` becomes `'`, `\` becomes `/`, other characters
    /// outside the set become `?`, and the text is cut at 256 characters.
    pub fn error_description(self, text: &str) -> Self {
        let v = rfc6750_text(text, MAX_DESCRIPTION);
        if v.is_empty() {
            return self;
        }
        self.param("error_description", v)
    }

    /// `scope="…"`: space-separated scope tokens; characters outside RFC 6750's
    /// scope-token set are dropped, runs of whitespace collapse to one space.
    pub fn scope<'a>(self, scopes: impl IntoIterator<Item = &'a str>) -> Self {
        let mut out = String::new();
        for raw in scopes {
            for tok in raw.split(|c: char| c.is_whitespace()) {
                let clean: String = tok.chars().filter(|&c| is_scope_char(c)).collect();
                if clean.is_empty() || out.len() + clean.len() + 1 > MAX_SCOPE {
                    continue;
                }
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&clean);
            }
        }
        if out.is_empty() {
            return self;
        }
        self.param("scope", out)
    }

    fn param(mut self, name: &'static str, value: String) -> Self {
        if !self
            .params
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            self.params.push((name, value));
        }
        self
    }

    /// Renders `Scheme name="value", …`.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(64);
        s.push_str(self.scheme);
        for (i, (name, value)) in self.params.iter().enumerate() {
            s.push_str(if i == 0 { " " } else { ", " });
            let _ = write!(s, "{name}=\"");
            for c in value.chars() {
                if c == '"' || c == '\\' {
                    s.push('\\');
                }
                s.push(c);
            }
            s.push('"');
        }
        s
    }

    /// The header value. Sanitization guarantees it is valid; the fallback is unreachable.
    pub fn to_header_value(&self) -> HeaderValue {
        HeaderValue::from_str(&self.render())
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"api\""))
    }
}

impl std::fmt::Display for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

/// RFC 9110 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 6750 scope-token: `%x21 / %x23-5B / %x5D-7E`.
fn is_scope_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

/// Text for a quoted-string: printable ASCII and space only (escaping of `"` and `\`
/// happens at render time); control characters are dropped, other characters become `?`.
fn quoted_safe(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max)
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

/// RFC 6750 §3 text: `%x20-21 / %x23-5B / %x5D-7E`.
fn rfc6750_text(text: &str, max: usize) -> String {
    text.trim()
        .chars()
        .filter(|&c| c != '\r' && c != '\n')
        .take(max)
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_repeat() {
        let c = Challenge::new("Bearer").realm("a").realm("b");
        assert_eq!(c.render(), r#"Bearer realm="a""#);
    }

    #[test]
    fn realm_escapes_quotes_and_backslashes() {
        let c = Challenge::new("Basic").realm(r#"a"b\c"#);
        assert_eq!(c.render(), r#"Basic realm="a\"b\\c""#);
    }

    #[test]
    fn scope_drops_forbidden_characters() {
        let c = Challenge::new("Bearer").scope(["read\"x  write\\", "\u{e9}"]);
        assert_eq!(c.render(), r#"Bearer scope="readx write""#);
    }
}
