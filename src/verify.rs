//! The application's own check of a credential: the [`Verify`] hook of the Basic, API key
//! and session schemes, and the [`Secret`] it is handed.
//!
//! Any `Fn(C) -> impl Future<Output = AuthResult>` closure is a `Verify<C>`: it answers
//! with the [`Principal`](crate::Principal) the credential belongs to, or an
//! [`AuthFailure`](crate::failure::AuthFailure) whose [`Reason`](crate::Reason) says why
//! (unknown, revoked, expired, or [`AuthFailure::unavailable`](crate::failure::AuthFailure::unavailable)
//! when the application's store cannot answer: 503, never 401). The layer renders and logs
//! the failure like its own. A [`Secret`] never shows in `Debug` or `Display`; compare it
//! in constant time.
//!
//! ```
//! use auth_diagnostics::api_key::{ApiKey, ApiKeyAuthenticator};
//! use auth_diagnostics::failure::AuthFailure;
//! use auth_diagnostics::verify::{AuthResult, Secret};
//! use auth_diagnostics::{AuthDiagnostics, Principal, Reason};
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use tower::ServiceExt;
//!
//! async fn check(ApiKey(key): ApiKey) -> AuthResult {
//!     // The key store is down: 503 with Retry-After, not a 401 the client would act on.
//!     let _ = key.ct_eq("k-1");
//!     Err(AuthFailure::unavailable("key store: connection refused"))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! assert_eq!(format!("{:?}", Secret::new("k-1")), "Secret(***)");
//! let app = Router::new()
//!     .route("/report", get(|| async { "report" }))
//!     .layer(AuthDiagnostics::new().api_key(ApiKeyAuthenticator::new(check)));
//! let response = app
//!     .oneshot(Request::get("/report").header("x-api-key", "k-1").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 503);
//! assert!(response.headers().contains_key("retry-after"));
//! # let _ = Principal::new("unused");
//! # let _ = Reason::ApiKeyUnknown;
//! # }
//! ```

pub use crate::authn::verify::{AuthFuture, AuthResult, Verify};
pub use crate::secret::{constant_time_eq, Secret};
