//! Bearer JWTs (RFC 6750, RFC 9068): [`JwtAuthenticator`] verifies them, [`Claims`] hands
//! their claims to a handler, [`TokenCache`] remembers the ones already verified.
//! [`IdentityAwareProxy`] verifies the signed assertion an identity-aware proxy (Cloudflare
//! Access, Google IAP, an AWS load balancer) puts in a header of its own.
//!
//! A `JwtAuthenticator` takes its keys from a [`StaticKey`](crate::keys::StaticKey) or a
//! [`KeySource`](crate::keys::KeySource) (a JWK set URL, or OpenID Connect discovery), and
//! checks what RFC 8725 asks of a resource server: the algorithm against an allow-list
//! (never `none`, never a key of another family), the issuer, the audience, `exp` and
//! `nbf` with a bounded leeway, required claims, and `typ` (`at+jwt` with
//! [`require_rfc9068`](JwtAuthenticator::require_rfc9068)). Give it to
//! [`AuthDiagnostics::bearer`](crate::AuthDiagnostics::bearer), or to a
//! [`Dpop`](crate::dpop::Dpop) for sender-constrained tokens.
//!
//! ```
//! use auth_diagnostics::jwt::{Claims, JwtAuthenticator};
//! use auth_diagnostics::keys::StaticKey;
//! use auth_diagnostics::AuthDiagnostics;
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use jsonwebtoken::{encode, EncodingKey, Header};
//! use serde_json::{json, Value};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let jwt = JwtAuthenticator::new(StaticKey::hs256("a-secret-of-32-bytes-or-more...."))
//!     .issuer("https://issuer.example")
//!     .audience("orders-api");
//! let app = Router::new()
//!     .route("/me", get(|Claims(c): Claims<Value>| async move { c["sub"].to_string() }))
//!     .layer(AuthDiagnostics::new().bearer(jwt));
//!
//! let now = jsonwebtoken::get_current_timestamp();
//! let claims = json!({"iss": "https://issuer.example", "aud": "orders-api",
//!                     "sub": "alice", "exp": now + 300});
//! let key = EncodingKey::from_secret(b"a-secret-of-32-bytes-or-more....");
//! let token = encode(&Header::default(), &claims, &key).unwrap();
//! let request = |token: &str| {
//!     Request::get("/me")
//!         .header("authorization", format!("Bearer {token}"))
//!         .body(Body::empty())
//!         .unwrap()
//! };
//! let ok = app.clone().oneshot(request(&token)).await.unwrap();
//! assert_eq!(ok.status(), 200);
//!
//! // Another audience: 401 with `error="invalid_token"` in the challenge.
//! let claims = json!({"iss": "https://issuer.example", "aud": "billing-api",
//!                     "sub": "alice", "exp": now + 300});
//! let other = encode(&Header::default(), &claims, &key).unwrap();
//! let refused = app.oneshot(request(&other)).await.unwrap();
//! assert_eq!(refused.status(), 401);
//! assert!(refused.headers()["www-authenticate"]
//!     .to_str()
//!     .unwrap()
//!     .contains(r#"error="invalid_token""#));
//! # }
//! ```

pub use crate::authn::iap::IdentityAwareProxy;
pub use crate::authn::jwt::{JwtAuthenticator, Verified};
pub use crate::authn::token_cache::{TokenCache, TokenCacheStats};
pub use crate::extract::Claims;
