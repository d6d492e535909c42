//! The request id: kept from `x-request-id` when it is sane, generated otherwise.

use crate::sanitize::new_request_id;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The header that carries the request id in and out.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id we keep.
const MAX_LEN: usize = 128;

/// The request id of the current request, in request extensions.
///
/// An incoming `x-request-id` of 1 to 128 visible ASCII characters is kept (so tower-http's
/// `SetRequestIdLayer` placed outside this layer, or a gateway, decides it); anything
/// else is replaced by a generated id. The id is echoed on every response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub(crate) HeaderValue);

impl RequestId {
    /// The id as text (always visible ASCII).
    pub fn as_str(&self) -> &str {
        // Only ever built from visible ASCII.
        self.0.to_str().unwrap_or_default()
    }

    /// The id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    /// Takes the request's id or makes one, and writes it back into `headers` so the
    /// wrapped service sees the same id.
    pub(crate) fn ensure(headers: &mut HeaderMap) -> RequestId {
        if let Some(v) = headers.get(&X_REQUEST_ID) {
            let b = v.as_bytes();
            if headers.get_all(&X_REQUEST_ID).iter().count() == 1
                && !b.is_empty()
                && b.len() <= MAX_LEN
                && b.iter().all(|c| (0x21..=0x7e).contains(c))
            {
                return RequestId(v.clone());
            }
        }
        let id = HeaderValue::from_bytes(&new_request_id()).expect("hex is a valid header value");
        headers.insert(X_REQUEST_ID, id.clone());
        RequestId(id)
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
