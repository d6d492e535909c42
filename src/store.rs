//! State that several replicas share: used DPoP proofs, the last known good key set of
//! each key source and revoked credentials — in memory for one process, in Redis for many.
//!
//! - A [`ReplayStore`] remembers used DPoP proofs until they expire, so a proof is accepted
//!   once ([`MemoryReplayStore`] by default, bounded, each key held to its share).
//! - A [`KeySetStore`] keeps each [`KeySource`](crate::keys::KeySource)'s last good key
//!   set ([`KeySource::shared_store`](crate::keys::KeySource::shared_store)), so a replica
//!   that starts while the identity provider is down still verifies tokens. Each stored
//!   set carries an HMAC: a set written by anything without the key is refused.
//! - A [`RevocationList`] refuses tokens and sessions before they expire, by `jti`, by
//!   session id or by subject ([`MemoryRevocationList`], bounded; see
//!   `AuthDiagnostics::revocation`).
//! - `RedisStore` (feature `redis`) is all three, for replicas that must behave as one.
//!
//! When a store cannot answer, the layer fails closed: a replay check that cannot be made
//! is 503 `dpop_replay_store_unavailable`, never an acceptance; so is a revocation check
//! (503 `revocation_unavailable`) unless the application chose to fail open.
//!
//! ```
//! use auth_diagnostics::jwt::JwtAuthenticator;
//! use auth_diagnostics::keys::KeySource;
//! use auth_diagnostics::store::MemoryKeySetStore;
//! use auth_diagnostics::AuthDiagnostics;
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Nothing listens on port 9, and the store holds no set yet: no key to verify with.
//! let keys = KeySource::jwks("http://127.0.0.1:9/jwks")
//!     .shared_store(MemoryKeySetStore::new(), "a-mac-key-shared-by-replicas");
//! let jwt = JwtAuthenticator::from_source(keys)
//!     .issuer("https://issuer.example")
//!     .audience("orders-api");
//! let app = Router::new()
//!     .route("/orders", get(|| async { "orders" }))
//!     .layer(AuthDiagnostics::new().bearer(jwt));
//! // An RS256 token for this issuer and audience (its signature is never reached).
//! let token = format!(
//!     "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.{}.{}",
//!     "eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoib3JkZXJzLWFwaSIsInN1YiI6ImEiLCJleHAiOjQxMDI0NDQ4MDB9",
//!     "A".repeat(342)
//! );
//! let response = app
//!     .oneshot(
//!         Request::get("/orders")
//!             .header("authorization", format!("Bearer {token}"))
//!             .body(Body::empty())
//!             .unwrap(),
//!     )
//!     .await
//!     .unwrap();
//! // The server's fault, not the client's: 503 with Retry-After, not 401.
//! assert_eq!(response.status(), 503);
//! # }
//! ```

pub use crate::authn::dpop::{
    MemoryReplayStore, ProofId, ReplayError, ReplayFuture, ReplayOutcome, ReplayStore,
};
pub use crate::keys::store::{
    KeySetStore, MemoryKeySetStore, StoreError, StoreFuture, StoredKeySet,
};
#[cfg(feature = "redis")]
pub use crate::redis_store::RedisStore;
pub use crate::revocation::{
    CredentialIds, MemoryRevocationList, Revocation, RevocationFuture, RevocationKey,
    RevocationList, RevokedBy,
};
