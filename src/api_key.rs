//! API keys in a header (`X-API-Key` by default), verified by the application's
//! [`Verify`](crate::verify::Verify) hook.
//!
//! There is no registered HTTP authentication scheme for API keys. A 401 carries
//! `WWW-Authenticate: ApiKey realm="…", header="X-API-Key"`, which tells a client where the
//! key goes; a key sent in the wrong place (`Authorization: Bearer <key>`, a query
//! parameter not allowed) is named as such in the log. The hook gets an [`ApiKey`] (a
//! [`Secret`](crate::verify::Secret): compare it with
//! [`Secret::ct_eq`](crate::verify::Secret::ct_eq) or
//! [`constant_time_eq`](crate::verify::constant_time_eq), never `==`).
//!
//! ```
//! use auth_diagnostics::api_key::{ApiKey, ApiKeyAuthenticator};
//! use auth_diagnostics::failure::AuthFailure;
//! use auth_diagnostics::{AuthDiagnostics, Principal, Reason};
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let keys = ApiKeyAuthenticator::new(|ApiKey(key)| async move {
//!     if key.ct_eq("k-2f9c41") {
//!         Ok(Principal::new("reporting-job"))
//!     } else {
//!         Err(AuthFailure::new(Reason::ApiKeyUnknown))
//!     }
//! });
//! let app = Router::new()
//!     .route("/report", get(|| async { "report" }))
//!     .layer(AuthDiagnostics::new().api_key(keys));
//!
//! let send = |key: &'static str| {
//!     Request::get("/report").header("x-api-key", key).body(Body::empty()).unwrap()
//! };
//! assert_eq!(app.clone().oneshot(send("k-2f9c41")).await.unwrap().status(), 200);
//! let refused = app.oneshot(send("k-guess")).await.unwrap();
//! assert_eq!(refused.status(), 401);
//! assert_eq!(
//!     refused.headers()["www-authenticate"],
//!     r#"ApiKey realm="api", header="X-API-Key""#
//! );
//! # }
//! ```

pub use crate::authn::api_key::{ApiKey, ApiKeyAuthenticator};
