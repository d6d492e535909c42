//! HTTP Basic (RFC 7617): `Authorization: Basic base64(user:password)`, decoded and
//! checked for shape by the layer, verified by the application's
//! [`Verify`](crate::verify::Verify) hook.
//!
//! The hook gets [`BasicCredentials`] (the user-id, and the password as a
//! [`Secret`](crate::verify::Secret) that never prints) and answers with a
//! [`Principal`](crate::Principal) or an [`AuthFailure`](crate::failure::AuthFailure):
//! `BasicUserUnknown` and `BasicPasswordMismatch` are logged apart but answered alike, so
//! a client cannot tell which users exist. Over plain HTTP from another host the log adds
//! a hint (`basic_over_plaintext`).
//!
//! ```
//! use auth_diagnostics::basic::{BasicAuthenticator, BasicCredentials};
//! use auth_diagnostics::failure::AuthFailure;
//! use auth_diagnostics::{AuthDiagnostics, Principal, Reason};
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let basic = BasicAuthenticator::new(|c: BasicCredentials| async move {
//!     match (c.user.as_str(), c.password.ct_eq("open sesame")) {
//!         ("alice", true) => Ok(Principal::new(c.user)),
//!         ("alice", false) => Err(AuthFailure::new(Reason::BasicPasswordMismatch)),
//!         _ => Err(AuthFailure::new(Reason::BasicUserUnknown)),
//!     }
//! });
//! let app = Router::new()
//!     .route("/admin", get(|| async { "admin" }))
//!     .layer(AuthDiagnostics::new().basic(basic));
//!
//! // "alice:wrong", base64-encoded: 401 with a Basic challenge.
//! let response = app
//!     .oneshot(
//!         Request::get("/admin")
//!             .header("authorization", "Basic YWxpY2U6d3Jvbmc=")
//!             .body(Body::empty())
//!             .unwrap(),
//!     )
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 401);
//! assert!(response.headers()["www-authenticate"]
//!     .to_str()
//!     .unwrap()
//!     .starts_with("Basic realm="));
//! # }
//! ```

pub use crate::authn::basic::{BasicAuthenticator, BasicCredentials};
