//! Where verification keys come from: [`StaticKey`]s configured in code, and
//! [`KeySource`]s that an identity provider publishes (a JWK set URL, or OpenID Connect /
//! RFC 8414 discovery), fetched in the background and cached.
//!
//! A key verifies one algorithm family (RFC 8725 §3.1), and may name its `kid` and the
//! issuer it belongs to (RFC 8725 §3.8). A token costs at most one signature check with a
//! key set: its `kid` names the key, and a token without one is accepted only where one
//! key of the set fits its algorithm. Keys a token points to itself (`jku`, `x5u`, `x5c`,
//! `jwk`) are never fetched or used.
//!
//! A [`KeySource`] refreshes on its own (at least every 5 minutes, sooner when a token
//! names a `kid` it has not seen, never more than once per minimum interval), keeps its
//! last good set while the provider is down, and follows redirects only under the rules
//! [`HttpFetch`] describes. [`AuthDiagnostics::readiness`](crate::AuthDiagnostics::readiness)
//! says which sources hold a key set.
//!
//! ```
//! use auth_diagnostics::jwt::JwtAuthenticator;
//! use auth_diagnostics::keys::StaticKey;
//! use auth_diagnostics::AuthDiagnostics;
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use jsonwebtoken::{encode, EncodingKey, Header};
//! use serde_json::json;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // This year's key and last year's, each named by its kid.
//! let jwt = JwtAuthenticator::new(StaticKey::hs256("key-2026-with-32-bytes-or-more..").with_kid("2026"))
//!     .key(StaticKey::hs256("key-2025-with-32-bytes-or-more..").with_kid("2025"))
//!     .issuer("https://issuer.example")
//!     .audience("orders-api");
//! let app = Router::new()
//!     .route("/orders", get(|| async { "orders" }))
//!     .layer(AuthDiagnostics::new().bearer(jwt));
//!
//! let claims = json!({"iss": "https://issuer.example", "aud": "orders-api", "sub": "alice",
//!                     "exp": jsonwebtoken::get_current_timestamp() + 300});
//! let send = |kid: &str, secret: &[u8]| {
//!     let mut header = Header::default();
//!     header.kid = Some(kid.to_owned());
//!     let token = encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap();
//!     app.clone().oneshot(
//!         Request::get("/orders")
//!             .header("authorization", format!("Bearer {token}"))
//!             .body(Body::empty())
//!             .unwrap(),
//!     )
//! };
//! let old = send("2025", b"key-2025-with-32-bytes-or-more..").await.unwrap();
//! assert_eq!(old.status(), 200);
//! // A kid no key has: 401, and the problem body says which reason.
//! let unknown = send("2024", b"key-2024-with-32-bytes-or-more..").await.unwrap();
//! assert_eq!(unknown.status(), 401);
//! let body = axum::body::to_bytes(unknown.into_body(), 4096).await.unwrap();
//! assert!(String::from_utf8_lossy(&body).contains(r#""reason":"token_key_unknown""#));
//! # }
//! ```

pub(crate) mod fetch;
mod jwk;
mod source;
mod static_key;
pub(crate) mod store;

pub(crate) use fetch::{check_url, shown_source};
pub use fetch::{FetchError, FetchErrorKind, FetchFuture, Fetched, HttpFetch};
/// Re-exported so applications name keys and algorithms without a direct dependency.
pub use jsonwebtoken::{Algorithm, DecodingKey};
pub(crate) use jwk::{proof_key, RemoteKey, PUBLISHED_ALGORITHMS};
pub use source::KeySource;
pub(crate) use source::{rfc8414_url, KeySet, Pick};
pub use static_key::StaticKey;

/// One signature check: counted, timed for the verification-time histogram.
pub(crate) fn verify_signature(
    signature: &str,
    message: &str,
    key: &jsonwebtoken::DecodingKey,
    alg: jsonwebtoken::Algorithm,
) -> bool {
    let started = std::time::Instant::now();
    let ok = jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, alg).unwrap_or(false);
    crate::metrics::verification(alg, started.elapsed());
    ok
}

#[cfg(not(any(feature = "rust_crypto", feature = "aws_lc_rs")))]
compile_error!(
    "auth-diagnostics needs a crypto backend for JWT verification: enable the `aws_lc_rs` \
     (default) or the `rust_crypto` feature"
);

/// Selects the jsonwebtoken crypto backend this crate's features chose (`aws_lc_rs` when
/// on, else `rust_crypto`), so jsonwebtoken never panics on its first use. When the
/// application installed its own provider first, that one stays.
///
/// [`JwtAuthenticator::new`](crate::jwt::JwtAuthenticator::new) calls it. Call it yourself
/// before signing tokens with jsonwebtoken directly in a build that compiles both backends
/// in.
pub fn install_crypto_provider() {
    #[cfg(feature = "aws_lc_rs")]
    let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
    #[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
    let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
    let _ = provider.install_default();
}
