//! Building `WWW-Authenticate` challenges (RFC 9110 §11, RFC 6750 §3, RFC 7617).
//!
//! Every value is sanitized on the way in: no CR/LF or other control character can reach
//! a header, `realm` is a correctly escaped quoted-string, and `error_description` and
//! `scope` hold only the characters RFC 6750 §3 allows.

use crate::scheme::Scheme;
use http::HeaderValue;
use std::fmt::Write as _;

/// Longest `error_description` we send; longer text is cut at a character boundary.
const MAX_DESCRIPTION: usize = 256;
/// Longest `realm` or other quoted-string parameter we send.
const MAX_QUOTED: usize = 128;
/// Longest URL or list parameter we send (`resource_metadata`, `acr_values`).
const MAX_LONG: usize = 2048;
/// Longest `scope` we send.
const MAX_SCOPE: usize = 512;

/// One challenge: an auth-scheme and its auth-params, rendered as one field line.
///
/// ```
/// use auth_diagnostics::failure::Challenge;
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
#[must_use]
pub struct Challenge {
    scheme: &'static str,
    params: Vec<(&'static str, String)>,
}

impl Challenge {
    /// A challenge for `scheme` (a token, e.g. `Bearer`, `Basic`) with no parameters yet.
    ///
    /// # Panics
    /// When `scheme` is not an RFC 9110 token (empty, or with spaces, quotes, `,`, `=`,
    /// control characters…), in release builds too: no challenge this type renders can be
    /// rejected by a strict parser.
    pub fn new(scheme: &'static str) -> Self {
        assert!(
            is_token(scheme),
            "auth-diagnostics: challenge scheme {scheme:?} is not an RFC 9110 token"
        );
        Self {
            scheme,
            params: Vec::with_capacity(4),
        }
    }

    /// The value of parameter `name`, as it was given (before quoting).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
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

    /// A generic quoted-string parameter. Values are sanitized like `realm`. A name given
    /// twice keeps its first value (names never repeat, compared case-insensitively).
    ///
    /// # Panics
    /// When `name` is not an RFC 9110 token, in release builds too.
    pub fn quoted_param(self, name: &'static str, value: &str) -> Self {
        assert!(
            is_token(name),
            "auth-diagnostics: challenge parameter name {name:?} is not an RFC 9110 token"
        );
        let v = quoted_safe(value, MAX_QUOTED);
        self.param(name, v)
    }

    /// A quoted-string parameter that may be long (a URL such as `resource_metadata`, a list
    /// of `acr_values`), sanitized like `realm` and cut at 2048 characters.
    pub(crate) fn long_param(self, name: &'static str, value: &str) -> Self {
        let v = quoted_safe(value, MAX_LONG);
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
        // The rendered text becomes the value without a copy.
        HeaderValue::from_maybe_shared(bytes::Bytes::from(self.render()))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"api\""))
    }
}

impl std::fmt::Display for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

/// Where a scheme's challenge goes among a route's: Basic first (RFC 9110 §11.3: a scheme
/// every client speaks), then Bearer, then the others in the order they were configured.
///
/// Bearer goes before DPoP because clients that speak Bearer only — the Model Context
/// Protocol SDKs among them — read `resource_metadata` and `scope` from the field that
/// starts with `Bearer`, or from the first challenge of the fields joined into one; a DPoP
/// client finds its own challenge wherever it is.
pub(crate) fn order(scheme: Scheme) -> u8 {
    match scheme {
        Scheme::Basic => 0,
        Scheme::Bearer => 1,
        _ => 2,
    }
}

/// RFC 9110 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 `token`: one or more `tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// One challenge read from a `WWW-Authenticate` field by [`Challenge::parse`]: its scheme
/// and its auth-params (names as sent, values unquoted). A token68 challenge has no params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedChallenge<'a> {
    scheme: &'a str,
    params: Vec<(&'a str, String)>,
}

impl<'a> ParsedChallenge<'a> {
    /// The auth-scheme, as sent (`Bearer`, `basic`, …).
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }

    /// The auth-params in the order sent: names as sent, values unquoted.
    pub fn params(&self) -> &[(&'a str, String)] {
        &self.params
    }

    /// The value of parameter `name` (matched case-insensitively), unquoted.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Challenge {
    /// Parses a `WWW-Authenticate` value (`#challenge`, RFC 9110 §11.6.1) into its
    /// challenges; `None` when it does not follow the grammar.
    ///
    /// ```
    /// use auth_diagnostics::failure::Challenge;
    ///
    /// let parsed = Challenge::parse(r#"Bearer realm="api", error="invalid_token", Basic realm="a\"b""#)
    ///     .unwrap();
    /// assert_eq!(parsed.len(), 2);
    /// assert_eq!(parsed[0].scheme(), "Bearer");
    /// assert_eq!(parsed[0].param("ERROR"), Some("invalid_token"));
    /// assert_eq!(parsed[1].param("realm"), Some(r#"a"b"#));
    /// assert!(Challenge::parse("Bearer realm=\"unterminated").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<Vec<ParsedChallenge<'_>>> {
        read_challenges(text)
    }
}

/// Parses a `WWW-Authenticate` value (`#challenge`, RFC 9110 §11.6.1); `None` when it
/// does not follow the grammar.
pub(crate) fn read_challenges(text: &str) -> Option<Vec<ParsedChallenge<'_>>> {
    let mut cur = Cursor { text, i: 0 };
    let mut out = Vec::new();
    loop {
        cur.skip(b" \t,");
        if cur.done() {
            return Some(out);
        }
        let mut challenge = ParsedChallenge {
            scheme: cur.token()?,
            params: Vec::new(),
        };
        let spaced = cur.peek() == Some(b' ');
        cur.skip(b" ");
        if spaced && !cur.done() && cur.peek() != Some(b',') {
            if cur.at_param() {
                cur.params(&mut challenge.params)?;
            } else {
                cur.token68()?;
            }
        }
        cur.skip(b" \t");
        if !cur.done() && cur.peek() != Some(b',') {
            return None;
        }
        out.push(challenge);
    }
}

/// A position in a header value being parsed.
struct Cursor<'a> {
    text: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn done(&self) -> bool {
        self.i >= self.text.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.i).copied()
    }

    fn skip(&mut self, set: &[u8]) {
        while self.peek().is_some_and(|b| set.contains(&b)) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| &self.text[start..self.i])
    }

    /// Whether an auth-param (`token BWS "=" BWS value`) starts here.
    fn at_param(&mut self) -> bool {
        let start = self.i;
        let found = self.token().is_some() && {
            self.skip(b" \t");
            self.peek() == Some(b'=') && {
                self.i += 1;
                self.skip(b" \t");
                self.peek().is_some_and(|b| is_tchar(b) || b == b'"')
            }
        };
        self.i = start;
        found
    }

    /// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`, followed by the
    /// end of the challenge.
    fn token68(&mut self) -> Option<()> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
        {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        self.skip(b"=");
        match self.peek() {
            None | Some(b' ' | b'\t' | b',') => Some(()),
            Some(_) => None,
        }
    }

    /// The auth-params of one challenge, up to the next challenge or the end.
    fn params(&mut self, into: &mut Vec<(&'a str, String)>) -> Option<()> {
        loop {
            let name = self.token()?;
            self.skip(b" \t");
            if self.peek() != Some(b'=') {
                return None;
            }
            self.i += 1;
            self.skip(b" \t");
            let value = if self.peek() == Some(b'"') {
                self.quoted()?
            } else {
                self.token()?.to_owned()
            };
            into.push((name, value));
            // Another param of this challenge, or the next challenge.
            let mark = self.i;
            self.skip(b" \t");
            if self.done() {
                return Some(());
            }
            if self.peek() != Some(b',') {
                return None;
            }
            self.skip(b" \t,");
            if !self.at_param() {
                self.i = mark;
                return Some(());
            }
        }
    }

    /// A quoted-string, unescaped (RFC 9110 §5.6.4).
    fn quoted(&mut self) -> Option<String> {
        self.i += 1;
        let mut v = String::new();
        loop {
            let c = self.text[self.i..].chars().next()?;
            self.i += c.len_utf8();
            match c {
                '"' => return Some(v),
                '\\' => {
                    let next = self.text[self.i..].chars().next()?;
                    self.i += next.len_utf8();
                    v.push(next);
                }
                c => v.push(c),
            }
        }
    }
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
    fn reads_challenge_lists() {
        let read = |t: &str| {
            read_challenges(t).map(|v| {
                v.iter()
                    .map(|c| format!("{}{:?}", c.scheme, c.params))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            read(r#"Bearer realm="a, b", error="invalid_token", Basic realm=x"#).unwrap(),
            [
                r#"Bearer[("realm", "a, b"), ("error", "invalid_token")]"#,
                r#"Basic[("realm", "x")]"#
            ]
        );
        assert_eq!(
            read(r#"Bearer error = "a\"b""#).unwrap(),
            [r#"Bearer[("error", "a\"b")]"#]
        );
        assert_eq!(
            read("Negotiate abc==, Basic").unwrap(),
            ["Negotiate[]", "Basic[]"]
        );
        assert_eq!(read("Bearer").unwrap(), ["Bearer[]"]);
        for bad in [
            r#"Bearer error="x"#,
            "Bearer a b",
            "Bear\u{e9}r",
            r#"Bearer error="x" y"#,
        ] {
            assert_eq!(read(bad), None, "{bad}");
        }
    }

    #[test]
    #[should_panic(expected = "not an RFC 9110 token")]
    fn a_scheme_that_is_not_a_token_panics() {
        let _ = Challenge::new("Bad Scheme");
    }

    #[test]
    #[should_panic(expected = "not an RFC 9110 token")]
    fn a_parameter_name_that_is_not_a_token_panics() {
        let _ = Challenge::new("Bearer").quoted_param("a=b", "x");
    }

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
