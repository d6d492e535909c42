//! Opaque access tokens (RFC 7662 token introspection): [`Introspector`] asks the
//! authorization server whether a token is active, and the layer answers and logs its
//! verdict as it does a JWT's. Feature `http-client` (on by default).
//!
//! Give it to [`AuthDiagnostics::introspection`](crate::AuthDiagnostics::introspection),
//! beside or instead of [`bearer`](crate::AuthDiagnostics::bearer). On one layer both
//! share the Bearer scheme:
//!
//! - a token shaped like a JWS whose unverified `iss` is an issuer of a configured
//!   [`JwtAuthenticator`](crate::jwt::JwtAuthenticator) (or any JWS, when the one
//!   authenticator accepts any issuer) is verified locally and never sent to the endpoint;
//! - any other token is introspected: an opaque one, or a JWT of another issuer.
//!
//! The endpoint is configured ([`Introspector::new`]) or taken from the issuer's
//! discovery document ([`Introspector::discover`]: its `introspection_endpoint`, from
//! `/.well-known/openid-configuration` or RFC 8414's `/.well-known/oauth-authorization-server`,
//! whose `issuer` must be the configured one byte for byte; fetched once, without
//! following a redirect, within the timeout, at most 256 KiB; until the endpoint is found,
//! 503 `introspection_unavailable` with the cause in the log).
//!
//! The request is a form POST of `token=…&token_type_hint=access_token` (RFC 7662 §2.1)
//! with the client's credentials (`client_secret_basic`, `client_secret_post` or
//! `private_key_jwt`, or none for an endpoint protected otherwise), no
//! redirect followed, within a timeout (3 s) and a size cap on the answer (16 KiB). The
//! answer is checked as RFC 7662 §2.2 and the JWT path say:
//!
//! | answer | outcome |
//! |---|---|
//! | `active: false` | 401 `token_inactive` (`error="invalid_token"`) |
//! | `exp` past, `nbf` ahead (by more than 60 s of clock leeway) | 401 `token_expired`, `token_not_yet_valid` |
//! | `iss` present and not the configured issuer | 401 `token_issuer_mismatch` |
//! | `aud` (string or array) without a configured audience, or no `aud` | 401 `token_audience_mismatch` (unless `accept_any_audience`) |
//! | `cnf.jkt` (DPoP-bound) sent as Bearer | 401 `token_dpop_bound` |
//! | `cnf.jkt` sent as DPoP, not the proof key's thumbprint | 401 `dpop_key_mismatch` |
//! | no `cnf.jkt`, sent as DPoP | 401 `dpop_token_unbound` |
//! | any other `cnf` member | 401 `token_binding_unverifiable` |
//! | endpoint unreachable, timing out, 5xx, non-JSON, no boolean `active`, 401/403 to our credentials | 503 `introspection_unavailable` with `Retry-After`, logged at ERROR with the endpoint (no query, no password) and the cause |
//!
//! An active answer is the [`Principal`](crate::Principal): its `sub` (else `username`,
//! else `client_id`) is the id, the answer is its claims (so [`Claims`](crate::jwt::Claims)
//! and scope checks read `scope` as for JWTs).
//!
//! # DPoP-bound opaque tokens
//!
//! An authorization server that issues opaque DPoP tokens says so in the introspection
//! answer: `cnf.jkt`, the thumbprint of the client's key (RFC 9449 §6.2). The Bearer
//! scheme refuses such a token (`token_dpop_bound`); to accept it under
//! `Authorization: DPoP <token>`, give an introspector to the DPoP scheme, in one call:
//! [`Dpop::introspection`](crate::dpop::Dpop::introspection) beside its JWT
//! authenticator (JWTs of its issuers stay local, any other token is introspected, as on
//! the Bearer scheme), or [`Dpop::introspected`](crate::dpop::Dpop::introspected) for
//! opaque tokens only. The `DPoP` proof is checked first, exactly as for a JWT (`htm`,
//! `htu`, `iat`, `ath` over the opaque token, the nonce when required), so a bad proof
//! costs no call; then the answer, as in the table above; then its `cnf.jkt` against the
//! proof key's RFC 7638 thumbprint (compared in constant time); then the proof's `jti`
//! in the replay store. The principal is the one a Bearer token gets, its scheme DPoP.
//!
//! ```
//! use auth_diagnostics::dpop::Dpop;
//! use auth_diagnostics::introspection::Introspector;
//! use auth_diagnostics::AuthDiagnostics;
//!
//! let opaque = Introspector::new("https://auth.example/oauth2/introspect")
//!     .client_secret_basic("orders-api", "its-secret")
//!     .issuer("https://auth.example/")
//!     .audience("orders-api");
//! let layer = AuthDiagnostics::new()
//!     .introspection(opaque.clone()) // unbound opaque tokens as Bearer, if wanted
//!     .dpop(Dpop::introspected(opaque).public_origin("https://api.example"))
//!     .try_build()
//!     .unwrap();
//! # let _ = layer;
//! ```
//!
//! # The cache
//!
//! Answers are cached per token under HMAC-SHA256 of the token with a key drawn once per
//! process: neither the log nor the cache holds a token. An active answer is used at most
//! `min(cache_max_age (60 s), exp − now)`, so never past the token's `exp`; a refusal at
//! most `negative_cache_max_age` (5 s), so a token that becomes valid is not refused for
//! long; an unavailable endpoint is never cached, and a cached active answer keeps working
//! while the endpoint is down. Any number of concurrent requests with one uncached token
//! make one call. At most `cache_capacity` (10 000) answers are kept, each as parsed JSON
//! (at most 16 KiB of text): a typical answer of about 500 bytes (Keycloak's or Okta's,
//! say) takes about 3.4 KB in memory, so a full default cache holds about 34 MiB (measured:
//! 100 000 distinct tokens through it grow the process by 34 MiB). What an entry weighs is
//! up to your authorization server, not to clients: a client sending random tokens fills
//! the cache with refusals of a few hundred bytes each. The cache is per process, and per
//! scheme: given to both the layer and [`Dpop`](crate::dpop::Dpop), an introspector's
//! answers are cached twice, up to twice the memory.
//!
//! # Sharing answers between replicas
//!
//! [`Introspector::shared_cache`] adds a second level every replica shares: `RedisStore`
//! (feature `redis`), or any [`IntrospectionStore`]. A token is introspected once by the
//! first replica that sees it; the others load its answer from the store while it is
//! usable. The store holds no token (each entry is named by an HMAC of its token under
//! the key given) and cannot mint one (each entry is sealed with a MAC under that key and
//! carries its deadline: an entry the store made up, moved to another name or kept
//! longer is ignored). An entry lives as long as a local one, and its answer is checked
//! again when loaded (`exp`, issuer, audience). A store that cannot answer costs nothing
//! but a WARN: the endpoint is asked. Each replica still keeps its own first level, and
//! single-flight is per process.
//!
//! ```
//! # #[cfg(feature = "redis")] {
//! use auth_diagnostics::introspection::Introspector;
//! use auth_diagnostics::store::RedisStore;
//!
//! let redis = RedisStore::open("redis://redis.internal:6379").unwrap();
//! // The same 32 random bytes on every replica, from your secret store.
//! let key = [7u8; 32];
//! let opaque = Introspector::new("https://auth.example/oauth2/introspect")
//!     .client_secret_basic("orders-api", "its-secret")
//!     .audience("orders-api")
//!     .shared_cache(redis, key);
//! # let _ = opaque;
//! # }
//! ```
//!
//! ```
//! use auth_diagnostics::introspection::Introspector;
//! use auth_diagnostics::AuthDiagnostics;
//!
//! let opaque = Introspector::new("https://auth.example/oauth2/introspect")
//!     .client_secret_basic("orders-api", "its-secret")
//!     .issuer("https://auth.example/")
//!     .audience("orders-api");
//! let layer = AuthDiagnostics::new().introspection(opaque).try_build().unwrap();
//! # let _ = layer;
//! ```

pub use crate::authn::introspection::IntrospectionStore;
pub use crate::authn::introspection::Introspector;
