//! Session cookies, verified by the application's [`Verify`](crate::verify::Verify) hook,
//! with what browsers need: a login page for page navigations and a same-origin check of
//! unsafe requests.
//!
//! [`SessionAuthenticator`] reads one named cookie and hands its value to the hook as a
//! [`SessionCookie`]. With a [`login_url`](SessionAuthenticator::login_url), a page
//! navigation that fails is sent there (303, with a `return_to` path of this site), while
//! `fetch` and API clients get the 401. An unsafe request (`POST`, `PUT`, `DELETE`, …) a
//! session cookie authenticated must come from this site's own origin or a
//! [trusted](SessionAuthenticator::trusted_origins) one: otherwise 403
//! `cross_site_request`.
//!
//! [`BackchannelLogout`] is the other end of a session at an OpenID provider: it receives
//! the provider's OpenID Connect Back-Channel Logout requests and revokes the session
//! (`sid`) or user (`sub`) they name in the layer's
//! [`RevocationList`](crate::store::RevocationList), so its tokens and sessions are
//! refused here too.
//!
//! ```
//! use auth_diagnostics::failure::AuthFailure;
//! use auth_diagnostics::session::{SessionAuthenticator, SessionCookie};
//! use auth_diagnostics::{AuthDiagnostics, Principal, Reason};
//! use axum::{body::Body, http::Request, routing::post, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let sessions = SessionAuthenticator::new("sid", |SessionCookie(id)| async move {
//!     if id.ct_eq("s-7d01") {
//!         Ok(Principal::new("alice"))
//!     } else {
//!         Err(AuthFailure::new(Reason::SessionInvalid))
//!     }
//! });
//! let app = Router::new()
//!     .route("/transfer", post(|| async { "done" }))
//!     .layer(AuthDiagnostics::new().session(sessions));
//!
//! // A valid session, but the form was posted from another site.
//! let response = app
//!     .oneshot(
//!         Request::post("https://bank.example/transfer")
//!             .header("host", "bank.example")
//!             .header("cookie", "sid=s-7d01")
//!             .header("origin", "https://evil.example")
//!             .body(Body::empty())
//!             .unwrap(),
//!     )
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 403);
//! # }
//! ```

pub use crate::authn::session::{SessionAuthenticator, SessionCookie};
pub use crate::backchannel::{BackchannelLogout, LoggedOut, BACKCHANNEL_LOGOUT_EVENT};
