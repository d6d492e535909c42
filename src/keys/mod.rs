//! Where verification keys come from. Today: [`StaticKey`]s configured in code.
//!
//! A key names the algorithm it verifies (RFC 8725 §3.1: one key, one algorithm), and may
//! name its `kid` and the issuer it belongs to (RFC 8725 §3.8).

mod static_key;

pub use static_key::StaticKey;

#[cfg(not(any(feature = "rust_crypto", feature = "aws_lc_rs")))]
compile_error!(
    "auth-diagnostics needs a crypto backend for JWT verification: enable the `rust_crypto` \
     (default) or the `aws_lc_rs` feature"
);

/// Selects the jsonwebtoken crypto backend this crate's features chose (`aws_lc_rs` when
/// on, else `rust_crypto`), so jsonwebtoken never panics on its first use. When the
/// application installed its own provider first, that one stays.
///
/// [`JwtAuthenticator::new`](crate::JwtAuthenticator::new) calls it. Call it yourself
/// before signing tokens with jsonwebtoken directly in a build that compiles both backends
/// in.
pub fn install_crypto_provider() {
    #[cfg(feature = "aws_lc_rs")]
    let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
    #[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
    let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
    let _ = provider.install_default();
}
