//! The request id: kept from `x-request-id` when it is sane, generated otherwise.

use crate::sanitize::process_hasher;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// The header that carries the request id in and out.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id we keep.
const MAX_LEN: usize = 128;

/// The id this layer logs and echoes for the current request, in request extensions and
/// as an extractor.
///
/// An incoming `x-request-id` of 1 to 128 visible ASCII characters is kept (so tower-http's
/// `SetRequestIdLayer` placed outside this layer, or a gateway, decides it); anything
/// else is replaced by a generated id. The id is echoed on every response. (Named apart
/// from `tower_http::request_id::RequestId`, which an application may use beside it.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequestId(HeaderValue);

impl AuthRequestId {
    /// The id as text (always visible ASCII).
    pub fn as_str(&self) -> &str {
        // Only ever built from visible ASCII.
        self.0.to_str().unwrap_or_default()
    }

    /// The id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    /// Takes the request's id (one `x-request-id` of 1 to 128 visible ASCII characters) or
    /// makes one (32 hex characters), and writes it back into `headers` so what comes after
    /// sees the same id. For middleware outside the layer that answers requests itself (a
    /// CORS preflight, say) and wants them to carry an id too.
    pub fn ensure(headers: &mut HeaderMap) -> AuthRequestId {
        if let Some(v) = headers.get(&X_REQUEST_ID) {
            let b = v.as_bytes();
            if headers.get_all(&X_REQUEST_ID).iter().count() == 1
                && !b.is_empty()
                && b.len() <= MAX_LEN
                && b.iter().all(|c| (0x21..=0x7e).contains(c))
            {
                return AuthRequestId(v.clone());
            }
        }
        // One allocation that holds the 32 bytes and a reference count: the copy in
        // `headers` and the one kept here share it (a `Vec`-backed value would allocate
        // again on its first clone).
        let id = HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(generate()))
            .expect("hex is a valid header value");
        headers.insert(X_REQUEST_ID, id.clone());
        AuthRequestId(id)
    }
}

impl std::fmt::Display for AuthRequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fresh request id: 32 hex characters, unique within the process and unpredictable.
/// Written into a stack buffer: the only allocation is the header value's.
fn generate() -> [u8; 32] {
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

#[cfg(test)]
mod tests {
    #[test]
    fn generated_ids_differ() {
        assert_ne!(super::generate(), super::generate());
    }
}
