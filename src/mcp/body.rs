//! The body of an MCP POST: read within a bound, kept as the bytes that came (so the
//! handler reads exactly what was checked).

use bytes::{Bytes, BytesMut};
use http_body::Body as _;
use std::pin::Pin;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The default bound on a body read: 1 MiB.
pub(crate) const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// Longer than the bound (by its `Content-Length`, or as it came).
    TooLarge,
    /// The body failed while it was read (the client went away, a broken chunk).
    Broken,
}

/// Reads `body` whole, refusing it once it is longer than `max` bytes. Data frames only:
/// trailers, which JSON-RPC does not use, are not handed on.
pub(crate) async fn read<B>(body: B, max: usize) -> Result<Bytes, ReadError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    if body.size_hint().lower() > max as u64 {
        return Err(ReadError::TooLarge);
    }
    // One chunk (the usual case) is handed on as it is, without a copy.
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    let mut len = 0usize;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::as_mut(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame.map_err(|_| ReadError::Broken)?.into_data() else {
            continue;
        };
        len = len.saturating_add(data.len());
        if len > max {
            return Err(ReadError::TooLarge);
        }
        match first.take() {
            None if rest.is_empty() => first = Some(data),
            Some(f) => {
                rest.extend_from_slice(&f);
                rest.extend_from_slice(&data);
            }
            None => rest.extend_from_slice(&data),
        }
    }
    Ok(first.unwrap_or_else(|| rest.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    #[tokio::test]
    async fn bounded_reads() {
        let body = Body::from("x".repeat(10));
        assert_eq!(read(body, 10).await.unwrap().len(), 10);
        assert_eq!(
            read(Body::from("x".repeat(11)), 10).await,
            Err(ReadError::TooLarge)
        );
        // A stream without a length is cut at the bound too.
        assert_eq!(read(Chunks(20), 30).await, Err(ReadError::TooLarge));
        assert_eq!(read(Chunks(3), 30).await.unwrap(), "xxxxxx");
    }

    /// `n` chunks of `xx`, without a length.
    struct Chunks(usize);

    impl http_body::Body for Chunks {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            if self.0 == 0 {
                return std::task::Poll::Ready(None);
            }
            self.0 -= 1;
            let frame = http_body::Frame::data(Bytes::from_static(b"xx"));
            std::task::Poll::Ready(Some(Ok(frame)))
        }
    }
}
