//! DPoP (RFC 9449): sender-constrained access tokens, `Authorization: DPoP <token>` with a
//! `DPoP` proof signed by the key the token is bound to.
//!
//! [`Dpop`] wraps the [`JwtAuthenticator`](crate::jwt::JwtAuthenticator) that verifies the
//! tokens and adds the proof's checks, each with its own reason: the proof's algorithm and
//! `typ`, its signature, `htm` and `htu` (against the origin this service is reached at,
//! configured with [`Dpop::public_origin`], never taken from the request), `iat`, `ath`,
//! the key binding (`cnf.jkt`), replays (a [`ReplayStore`](crate::store::ReplayStore),
//! [`MemoryReplayStore`](crate::store::MemoryReplayStore) unless one is given, each key
//! held to its share), and server nonces when [`Dpop::require_nonce`] asks for them.
//!
//! ```
//! use auth_diagnostics::dpop::Dpop;
//! use auth_diagnostics::jwt::JwtAuthenticator;
//! use auth_diagnostics::keys::StaticKey;
//! use auth_diagnostics::AuthDiagnostics;
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let tokens = JwtAuthenticator::new(StaticKey::hs256("a-secret-of-32-bytes-or-more...."))
//!     .issuer("https://issuer.example")
//!     .audience("orders-api");
//! let app = Router::new()
//!     .route("/orders", get(|| async { "orders" }))
//!     .layer(AuthDiagnostics::new().dpop(Dpop::new(tokens).public_origin("https://api.example")));
//!
//! // A DPoP token without its proof: 401, and the challenge names the DPoP scheme.
//! let response = app
//!     .oneshot(
//!         Request::get("/orders")
//!             .header("authorization", "DPoP eyJhbGciOiJIUzI1NiJ9.e30.c2ln")
//!             .body(Body::empty())
//!             .unwrap(),
//!     )
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 401);
//! assert!(response.headers()["www-authenticate"]
//!     .to_str()
//!     .unwrap()
//!     .starts_with("DPoP "));
//! # }
//! ```

pub use crate::authn::dpop::Dpop;
