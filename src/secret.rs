//! [`Secret`]: a credential that never shows up in `Debug` output, and constant-time
//! comparison helpers.

use std::fmt;
use subtle::ConstantTimeEq;

/// A password, API key or session id taken from a request.
///
/// `Debug` and `Display` print `Secret(***)`: a secret that ends up in a log line by
/// accident stays a secret. Compare it with [`Secret::ct_eq`], never with `==`.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for a lookup or a password-hash check.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with `expected` in time that does not depend on where they differ.
    pub fn ct_eq(&self, expected: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), expected.as_bytes())
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Compares two byte strings in time that depends only on their lengths, never on their
/// contents: every byte is compared, eight at a time, the differences gathered into one
/// word behind an optimization barrier, and that word tested with `subtle`. Lengths are
/// not secret for the keys and tokens compared here; hash both sides first when they are.
///
/// ```
/// use auth_diagnostics::verify::constant_time_eq;
/// assert!(constant_time_eq(b"demo-key-123", b"demo-key-123"));
/// assert!(!constant_time_eq(b"demo-key-123", b"demo-key-124"));
/// ```
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut words_a, mut words_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut diff = 0u64;
    for (x, y) in (&mut words_a).zip(&mut words_b) {
        diff |= word(x) ^ word(y);
        // The compiler cannot see the running difference, so it cannot stop at the first
        // word that differs.
        diff = std::hint::black_box(diff);
    }
    for (x, y) in words_a.remainder().iter().zip(words_b.remainder()) {
        diff |= u64::from(x ^ y);
    }
    diff.ct_eq(&0).into()
}

/// Eight bytes as a word.
fn word(bytes: &[u8]) -> u64 {
    u64::from_ne_bytes(bytes.try_into().expect("chunks of eight"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_itself() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert!(s.ct_eq("hunter2"));
        assert!(!s.ct_eq("hunter3"));
        assert!(!s.ct_eq("hunter"));
    }

    #[test]
    fn every_byte_counts_at_every_length() {
        for len in 0..40 {
            let a: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
            assert!(constant_time_eq(&a, &a.clone()), "{len}");
            for i in 0..len {
                for bit in [0x01, 0x80] {
                    let mut b = a.clone();
                    b[i] ^= bit;
                    assert!(!constant_time_eq(&a, &b), "{len} {i} {bit}");
                }
            }
            assert!(!constant_time_eq(&a, &a[..len.saturating_sub(1)]) || len == 0);
            let mut longer = a.clone();
            longer.push(0);
            assert!(!constant_time_eq(&a, &longer), "{len}");
        }
    }
}
