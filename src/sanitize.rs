//! Making client-supplied text safe to log: caps, escapes, fingerprints.

use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::OnceLock;

/// Longest client-supplied value kept in a log field, in characters.
pub(crate) const MAX_FIELD: usize = 128;

/// Client-supplied text that has been length-capped and had its control and
/// non-ASCII characters escaped, so it can go into a log line as it is.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Capped(String);

impl Capped {
    /// The safe text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Capped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Capped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for Capped {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for Capped {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Caps `text` at [`MAX_FIELD`] characters (marking the cut with `…`) and escapes
/// control characters, quotes, backslashes and non-ASCII as `\u{..}`-style escapes.
pub(crate) fn cap(text: &str) -> Capped {
    cap_to(text, MAX_FIELD)
}

/// [`cap_to`], borrowing `text` when it is already safe as it is (no allocation).
pub(crate) fn safe_to(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let plain = |b: &u8| (b' '..=b'~').contains(b) && *b != b'"' && *b != b'\\';
    if text.len() <= max && text.bytes().all(|b| plain(&b)) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(cap_to(text, max).0)
}

pub(crate) fn cap_to(text: &str, max: usize) -> Capped {
    let mut out = String::with_capacity(text.len().min(max) + 2);
    for c in text.chars() {
        let before = out.len();
        match c {
            ' '..='~' if c != '"' && c != '\\' => out.push(c),
            _ => out.extend(c.escape_default()),
        }
        // The cap is on what is written: escapes count at their escaped length.
        if out.len() > max {
            out.truncate(before);
            out.push('…');
            break;
        }
    }
    Capped(out)
}

/// Free text for a log field (our own sentences, which may quote capped client values):
/// only control characters and bidirectional or invisible formatting characters are
/// escaped, so nothing is escaped twice; cut at `max` chars.
pub(crate) fn clean_text(text: &str, max: usize) -> Capped {
    let mut out = String::with_capacity(text.len().min(max) + 2);
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        if c.is_control() || is_invisible_format(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Capped(out)
}

/// Bidirectional controls and invisible formatting characters: text that reorders or hides
/// what a person reading the log sees ("Trojan Source", CVE-2021-42574); and the Unicode
/// line and paragraph separators, which some viewers break a line at.
pub(crate) fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// The process's random hashing key (fingerprints, generated request ids).
pub(crate) fn process_hasher() -> &'static RandomState {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    KEY.get_or_init(RandomState::new)
}

/// The configured fingerprint key (SHA-256 of what the application gave), if any.
static FINGERPRINT_KEY: OnceLock<[u8; 32]> = OnceLock::new();

/// A fingerprint key as the process keeps it (SHA-256 of what the application gave), if
/// it has the 16 bytes it needs; otherwise the length it has.
pub(crate) fn fingerprint_key(key: &[u8]) -> Result<[u8; 32], usize> {
    use sha2::{Digest, Sha256};
    if key.len() < 16 {
        return Err(key.len());
    }
    Ok(Sha256::digest(key).into())
}

/// Sets the process's fingerprint key (from [`fingerprint_key`]), once (the same key again
/// is fine); `false` when another key was set before.
pub(crate) fn set_fingerprint_key(key: [u8; 32]) -> bool {
    *FINGERPRINT_KEY.get_or_init(|| key) == key
}

/// A short keyed fingerprint of a credential, so one credential can be followed across
/// log lines without the log holding anything that helps guess it. With a configured key
/// ([`AuthDiagnostics::fingerprint_key`](crate::AuthDiagnostics::fingerprint_key)) it is
/// an HMAC-SHA256 prefix, equal on every replica given that key; otherwise the key is
/// random per process and fingerprints compare within one process's logs.
pub(crate) fn fingerprint(secret: &[u8]) -> Fingerprint {
    if let Some(key) = FINGERPRINT_KEY.get() {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("any key length");
        mac.update(secret);
        let tag = mac.finalize().into_bytes();
        let mut six = [0u8; 8];
        six[2..].copy_from_slice(&tag[..6]);
        return Fingerprint::of(u64::from_be_bytes(six));
    }
    let mut h = process_hasher().build_hasher();
    h.write(secret);
    Fingerprint::of(h.finish() >> 16)
}

/// A credential's [`fingerprint`]: 12 lower-case hex digits, kept inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint([u8; 12]);

impl Fingerprint {
    /// The low 48 bits of `bits`, as hex.
    fn of(bits: u64) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 12];
        for (i, digit) in out.iter_mut().enumerate() {
            *digit = HEX[((bits >> (44 - 4 * i)) & 0xf) as usize];
        }
        Fingerprint(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits")
    }
}

impl std::ops::Deref for Fingerprint {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_escapes() {
        assert_eq!(cap("a\r\nb\"c").as_str(), "a\\r\\nb\\\"c");
        let long = "x".repeat(500);
        assert_eq!(cap(&long).chars().count(), MAX_FIELD + 1);
        let wide = "\u{e9}".repeat(500);
        assert!(cap(&wide).len() <= MAX_FIELD + 3, "{}", cap(&wide).len());
    }

    #[test]
    fn free_text_escapes_controls_and_bidi_but_keeps_other_unicode() {
        let text = clean_text("a\u{202E}b\u{2066}c\u{200B}d\r\né\u{2028}f", 100);
        assert_eq!(
            text.as_str(),
            "a\\u{202e}b\\u{2066}c\\u{200b}d\\r\\né\\u{2028}f"
        );
    }

    #[test]
    fn fingerprints_are_stable_and_short() {
        assert_eq!(fingerprint(b"abc"), fingerprint(b"abc"));
        assert_ne!(fingerprint(b"abc"), fingerprint(b"abd"));
        assert_eq!(fingerprint(b"abc").len(), 12);
    }
}
