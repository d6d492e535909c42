//! Server-provided DPoP nonces (RFC 9449 §8, §9): unpredictable, stateless, and good for a
//! bounded time, so a proof cannot have been made in advance.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Bytes of a nonce: issue time (8), random (8), MAC (16).
const LEN: usize = 32;

/// Issues and checks nonces: `base64url(time ‖ random ‖ HMAC-SHA256(key, time ‖ random))`.
#[derive(Clone)]
pub(crate) struct Nonces {
    key: [u8; 32],
    lifetime: i64,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Nonces {
    /// Nonces good for `lifetime` seconds, keyed by `key` (random per process when `None`).
    pub(super) fn new(key: Option<[u8; 32]>, lifetime: i64) -> Self {
        let key = key.unwrap_or_else(|| {
            let mut k = [0u8; 32];
            getrandom::getrandom(&mut k).expect("the operating system's random source");
            k
        });
        Self { key, lifetime }
    }

    fn mac(&self, data: &[u8]) -> [u8; 16] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(data);
        mac.finalize().into_bytes()[..16]
            .try_into()
            .expect("16 of 32 bytes")
    }

    /// A fresh nonce issued at `now`.
    pub(super) fn issue(&self, now: i64) -> String {
        let mut raw = [0u8; LEN];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        getrandom::getrandom(&mut raw[8..16]).expect("the operating system's random source");
        let mac = self.mac(&raw[..16]);
        raw[16..].copy_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `nonce` is one of ours, issued within its lifetime before `now`.
    pub(super) fn valid(&self, nonce: &str, now: i64) -> bool {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        if raw.len() != LEN {
            return false;
        }
        let mac = self.mac(&raw[..16]);
        if !bool::from(mac.ct_eq(&raw[16..])) {
            return false;
        }
        let issued = i64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
        issued <= now + 5 && now - issued <= self.lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_nonces_check_out_for_their_lifetime_only() {
        let n = Nonces::new(None, 300);
        let a = n.issue(1_000);
        assert_ne!(a, n.issue(1_000), "unpredictable, even within a second");
        assert!(n.valid(&a, 1_000) && n.valid(&a, 1_300));
        assert!(!n.valid(&a, 1_301));
        assert!(!Nonces::new(None, 300).valid(&a, 1_000), "another key");
        let mut forged = a.clone().into_bytes();
        forged[2] ^= 1;
        assert!(!n.valid(std::str::from_utf8(&forged).unwrap(), 1_000));
        assert!(!n.valid("", 1_000) && !n.valid("!!", 1_000));
        // NQCHAR only: base64url is.
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}
