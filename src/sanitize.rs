//! Making client-supplied text safe to log: caps, escapes, fingerprints, timestamps.

use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
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
/// only control characters are escaped, so nothing is escaped twice; cut at `max` chars.
pub(crate) fn clean_text(text: &str, max: usize) -> Capped {
    let mut out = String::with_capacity(text.len().min(max) + 2);
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Capped(out)
}

fn process_hasher() -> &'static RandomState {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    KEY.get_or_init(RandomState::new)
}

/// A short keyed fingerprint of a credential, so one credential can be followed across
/// log lines without the log holding anything that helps guess it. The key is random per
/// process: fingerprints are comparable within one process's logs.
pub(crate) fn fingerprint(secret: &[u8]) -> String {
    let mut h = process_hasher().build_hasher();
    h.write(secret);
    format!("{:012x}", h.finish() >> 16)
}

/// A fresh request id: 32 hex characters, unique within the process and unpredictable.
/// Written into a stack buffer: the only allocation is the header value itself.
pub(crate) fn new_request_id() -> [u8; 32] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut a = process_hasher().build_hasher();
    a.write_u64(n);
    let hi = a.finish();
    a.write_u64(hi);
    let lo = a.finish();
    let mut out = [0u8; 32];
    for (i, word) in [hi, lo].into_iter().enumerate() {
        for j in 0..16 {
            out[i * 16 + j] = HEX[((word >> (60 - 4 * j)) & 0xf) as usize];
        }
    }
    out
}

/// Seconds since the epoch as RFC 3339 UTC, e.g. `2026-11-27T03:35:00Z`.
pub(crate) fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A duration in seconds as a person says it: `3h 2m`, `45s`, `2d 1h`.
pub(crate) fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
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
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_750_500), "2026-11-27T03:35:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(human_duration(3 * 3600 + 120), "3h 2m");
    }

    #[test]
    fn fingerprints_are_stable_and_short() {
        assert_eq!(fingerprint(b"abc"), fingerprint(b"abc"));
        assert_ne!(fingerprint(b"abc"), fingerprint(b"abd"));
        assert_eq!(fingerprint(b"abc").len(), 12);
        assert_ne!(new_request_id(), new_request_id());
    }
}
