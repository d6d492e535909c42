//! Watching the wrapped service: what it answers by itself.
//!
//! Every response passes [`Watch::response`]. A refusal the application returned as an
//! [`AuthFailure`] is rendered and logged with the layer's configuration; a 401 or 403 it
//! wrote itself is diagnosed from the request (`diagnose.rs`) and, in enforce mode,
//! corrected where it certainly breaks the contract (`correct.rs`); an answer to a request
//! authenticated by an API key or a cookie is made unstorable by shared caches
//! (`cache.rs`). A gRPC answer is left as the service wrote it: its status is in
//! `grpc-status`, which is the service's to choose (a 200 with `UNAUTHENTICATED` is how
//! a gRPC service refuses).

mod cache;
mod correct;

use crate::answer::{Answer, Handled};
use crate::failure::AuthFailure;
use crate::request_id::X_REQUEST_ID;
use axum::body::Body;
use http::header::ACCESS_CONTROL_ALLOW_ORIGIN;
use http::{Response, StatusCode};

/// The request's [`Answer`], seen from here: what the wrapped service's refusals are
/// diagnosed, corrected and logged with.
struct Watch<'a>(&'a Answer);

impl std::ops::Deref for Watch<'_> {
    type Target = Answer;

    fn deref(&self) -> &Answer {
        self.0
    }
}

/// Looks at what the wrapped service answered by itself.
pub(crate) fn response(answer: &Answer, response: Response<Body>) -> Response<Body> {
    Watch(answer).response(response)
}

impl Watch<'_> {
    fn response(&self, mut response: Response<Body>) -> Response<Body> {
        if response.extensions().get::<Handled>().is_some() {
            return response;
        }
        if let Some(failure) = response.extensions_mut().remove::<AuthFailure>() {
            // An inner handler or middleware refused with a precise reason: render it with
            // this layer's configuration and log it like our own.
            return self.reject(self.enrich(failure));
        }
        if self.with_origin && response.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
            self.cors_inside();
        }
        let status = response.status();
        if (status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN)
            && !crate::answer::grpc::is_grpc(response.headers())
        {
            // Diagnosed and logged here: an enclosing layer must not do it again.
            response = self.refusal(response);
            response.extensions_mut().insert(Handled);
            // A kept refusal is readable by a page on an allowed origin too; what the
            // application exposes itself stays.
            response
                .headers_mut()
                .entry(http::header::ACCESS_CONTROL_EXPOSE_HEADERS)
                .or_insert(http::HeaderValue::from_static(
                    "WWW-Authenticate, X-Request-Id",
                ));
        }
        let headers = response.headers_mut();
        headers
            .entry(X_REQUEST_ID)
            .or_insert_with(|| self.request_id.header_value().clone());
        if self.private {
            cache::make_private(headers);
        }
        response
    }

    /// The wrapped service answered a cross-origin request with CORS headers: they are
    /// added inside this layer, so its own rejections go out without them and a browser
    /// shows "CORS error" instead of the 401. Said once per layer, at WARN.
    fn cors_inside(&self) {
        if self.config.schemes.is_empty()
            || self
                .config
                .cors_inside
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        tracing::warn!(
            target: "auth_diagnostics",
            hints = crate::evidence::hint::CORS_INSIDE_AUTH,
            request_id = self.request_id.as_str(),
            "the wrapped service adds CORS headers itself (Access-Control-Allow-Origin): this \
             layer's 401 and 403 answers do not pass through it, so browsers on other origins \
             cannot read them and report a CORS error. Put tower-http's CorsLayer outside \
             AuthDiagnostics (add it after it with .layer)"
        );
    }
}
