//! Authentication failures that are *correct* and *explained*, for Tower and Axum.
//!
//! ```
//! use auth_diagnostics::{AuthDiagnostics, JwtAuthenticator, StaticKey};
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let jwt = JwtAuthenticator::new(StaticKey::hs256("secret"))
//!     .issuer("https://issuer.example")
//!     .audience("my-api");
//! let app = Router::new()
//!     .route("/me", get(|| async { "me" }))
//!     .layer(AuthDiagnostics::new().bearer(jwt));
//!
//! // A request without credentials:
//! let response = app
//!     .oneshot(Request::get("/me").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="api""#);
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//! let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
//! let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
//! assert_eq!(problem["status"], 401);
//! assert_eq!(problem["reason"], "credentials_missing");
//! # }
//! ```
//!
//! From then on every authentication failure on those routes is answered with the right
//! status (401, 403 or 400 by RFC 9110 and RFC 6750), a spec-compliant `WWW-Authenticate`
//! challenge on every 401, an RFC 9457 `application/problem+json` body and
//! `Cache-Control: no-store` — and logged as one `tracing` event (target
//! `auth_diagnostics`) that says exactly why, with a stable [`Reason`] code, never a secret.
//!
//! # A tour
//!
//! - [`AuthDiagnostics`] is the layer. Configure schemes on it
//!   ([`bearer`](AuthDiagnostics::bearer), [`dpop`](AuthDiagnostics::dpop),
//!   [`basic`](AuthDiagnostics::basic), [`api_key`](AuthDiagnostics::api_key),
//!   [`session`](AuthDiagnostics::session)), an
//!   [`account_status`](AuthDiagnostics::account_status) hook, the realm, and the detail
//!   mode: production by default, [`verbose`](AuthDiagnostics::verbose) for development.
//!   With no scheme it authenticates nothing and watches what the wrapped service answers.
//! - [`JwtAuthenticator`] verifies Bearer JWTs with static keys ([`StaticKey`]): algorithm
//!   allow-list, issuers, audiences, leeway, required claims, `typ`.
//! - [`BasicAuthenticator`], [`ApiKeyAuthenticator`] and [`SessionAuthenticator`] hand the
//!   decoded credential to the application's [`Verify`] hook (any async closure).
//! - [`Dpop`] accepts sender-constrained tokens (RFC 9449) for the origins you give it:
//!   every proof check has its own reason, used proofs go to a [`ReplayStore`]
//!   ([`MemoryReplayStore`] by default), each key held to its share of it.
//! - Several replicas share state through `RedisStore` (feature `redis`): DPoP replays,
//!   and the last known good key set of each [`KeySource`]
//!   ([`shared_store`](KeySource::shared_store), a [`KeySetStore`]);
//!   [`fingerprint_key`](AuthDiagnostics::fingerprint_key) makes log fingerprints equal
//!   across them.
//! - [`RequireScope`] requires scopes per route (`route_layer`), answering 403
//!   `insufficient_scope` with the `scope` the route needs;
//!   [`require_scope`](AuthDiagnostics::require_scope) requires them of every request of a
//!   layer and names them on every 401.
//! - [`HideForbidden`] answers 404 instead of 403 on the routes it is put on, so a
//!   principal without permission cannot tell that the resource exists.
//! - [`RequireStepUp`] requires a strong or recent enough login per route (RFC 9470),
//!   answering 401 `insufficient_user_authentication` with `acr_values` and `max_age`.
//! - [`ResourceMetadata`] is the RFC 9728 document that names the authorization servers;
//!   with [`resource_metadata`](AuthDiagnostics::resource_metadata) the layer serves it and
//!   points every Bearer and DPoP challenge at it (what MCP servers need).
//! - [`Principal`] (and `Option<Principal>`), [`Claims`] and [`AuthRequestId`] are
//!   extractors for handlers.
//! - [`AuthFailure`] is a refusal as a value: return it from a handler and the layer renders
//!   and logs it like its own.
//! - [`Reason`] is the taxonomy: code, status, Bearer error, title, hint, log level.
//! - `testing` (feature `testing`, for dev-dependencies): `TestIssuer`, an identity
//!   provider on `127.0.0.1` that mints tokens, rotates and withdraws keys, and fails on
//!   demand, for your own integration tests.
//!
//! # The wrapped service's own answers
//!
//! When the wrapped service answers 401 or 403 by itself, the layer logs the most precise
//! reason the request shows (marked inferred) and, in enforce mode
//! ([`AuthDiagnostics::enforce`], the default), corrects only what certainly breaks the
//! contract: a 401 without a challenge
//! gets one (`upstream_challenge_missing`), a 401 to a request this layer authenticated
//! becomes 403 (`upstream_unauthorized_after_authentication`; one whose challenge says
//! `error="insufficient_scope"` keeps that challenge) unless its challenge carries another
//! `error` (`invalid_token`, a step-up's `insufficient_user_authentication`, …): the
//! application refused the token itself and the 401 is kept (`upstream_token_refused`).
//! A 403 to a request without any credential becomes 401
//! (`upstream_forbidden_without_credentials`) only where the application opted in with
//! [`AuthDiagnostics::correct_forbidden_without_credentials`]. When the status changes,
//! the body is the layer's problem body for the new status. [`AuthDiagnostics::observe`]
//! only logs.
//!
//! # The log event
//!
//! Fields: `reason`, `client_reason`, `status`, `request_id`, `method`, `path` (never the
//! query), `scheme_expected`, `scheme_received`, `location`, `fingerprint` (a keyed hash
//! prefix of the credential, comparable within one process, or across processes given one
//! [`fingerprint_key`](AuthDiagnostics::fingerprint_key)), and for tokens `alg`, `kid`,
//! `typ`, `iss`, `aud`, `sub`, `exp` with `signature_verified` telling whether the token's
//! signature checked out (when `false`, they are only what the client claims); plus
//! `expected_iss`, `expected_aud`, `claim`, `scope`, `check`, `user`, `hint`, `hints` (stable
//! codes such as `bare_jwt`, `token_in_query`, `proxy_may_have_stripped_authorization`),
//! `inferred`, `inferred_reason`, `upstream_status` and `repro` (a `curl` line with every
//! credential replaced by a placeholder) where they apply. Levels: INFO for
//! `credentials_missing`, WARN for other client failures, ERROR for server faults and for a
//! wrapped service that breaks the contract. Flood control ([`LogRate`]) logs an event when fewer
//! than 10 of its reason were logged in the last 10 s, or a second has passed since the
//! last one, and reports the rest as one "suppressed N" event; its memory is one bucket per reason, whatever clients send.
//!
//! # Browsers
//!
//! - **CORS outside, authentication inside.** Put tower-http's `CorsLayer` *after*
//!   `AuthDiagnostics` (the last `.layer` is the outermost), so its headers reach the
//!   layer's 401s too; the layer exposes `WWW-Authenticate` and `X-Request-Id` on every 401
//!   and 403, so a page on an allowed origin reads the challenge and the problem body
//!   instead of a "CORS error". When the wrapped service adds CORS headers itself (CORS
//!   inside), the layer says so once at WARN (hint `cors_inside_auth`).
//!
//! ```
//! use auth_diagnostics::{AuthDiagnostics, JwtAuthenticator, StaticKey};
//! use axum::{body::Body, http::{HeaderValue, Method, Request}, routing::get, Router};
//! use tower::ServiceExt;
//! use tower_http::cors::CorsLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let jwt = JwtAuthenticator::new(StaticKey::hs256("secret"))
//!     .issuer("https://issuer.example")
//!     .audience("my-api");
//! let app = Router::new()
//!     .route("/me", get(|| async { "me" }))
//!     .layer(AuthDiagnostics::new().bearer(jwt))
//!     .layer(
//!         CorsLayer::new()
//!             .allow_origin(HeaderValue::from_static("https://app.example"))
//!             .allow_methods([Method::GET]),
//!     );
//! let response = app
//!     .oneshot(
//!         Request::get("/me")
//!             .header("origin", "https://app.example")
//!             .body(Body::empty())
//!             .unwrap(),
//!     )
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 401);
//! let headers = response.headers();
//! assert_eq!(headers["access-control-allow-origin"], "https://app.example");
//! assert_eq!(headers["access-control-expose-headers"], "WWW-Authenticate, X-Request-Id");
//! # }
//! ```
//!
//! - **Optional authentication**: [`optional`](AuthDiagnostics::optional) lets requests
//!   without any credential through anonymously (`Option<Principal>`); bad credentials are
//!   still refused, never downgraded to anonymous.
//! - **Pages and APIs**: a session scheme with a
//!   [`login_url`](SessionAuthenticator::login_url) sends a failing page navigation to the
//!   login page (`303`, `return_to` a path of this site), while `fetch` and API clients get
//!   the 401.
//! - **CSRF**: an unsafe request a session cookie authenticated must come from this site's
//!   own origin (or a [trusted](SessionAuthenticator::trusted_origins) one): otherwise 403
//!   `cross_site_request`.
//!
//! # Metrics, traces, hooks
//!
//! - **Metrics** (feature `metrics`, default) go through the [`metrics`](https://docs.rs/metrics)
//!   facade: `auth_diagnostics_failures_total{reason, scheme, status}`,
//!   `auth_diagnostics_successes_total{scheme}`, upstream corrections, key fetches, token
//!   cache lookups and evictions, flood-control suppressions, and a histogram of signature
//!   check time per algorithm family. Every label value comes from a closed set or from the
//!   configuration, never from the request. The README's "Metrics" table lists them;
//!   [`describe_metrics`] registers their descriptions.
//! - **Traces**: a failure records `auth.reason`, `auth.scheme` and `auth.status` on the
//!   current span, a success `auth.scheme` (and `enduser.id` after
//!   [`record_enduser_id`](AuthDiagnostics::record_enduser_id)), where the span declared
//!   them:
//!
//! ```
//! use auth_diagnostics::AuthDiagnostics;
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use tower_http::trace::TraceLayer;
//! use tracing::field::Empty;
//!
//! let app: Router = Router::new()
//!     .route("/me", get(|| async { "me" }))
//!     .layer(AuthDiagnostics::new())
//!     .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
//!         tracing::info_span!(
//!             "request",
//!             method = %req.method(),
//!             path = req.uri().path(),
//!             auth.reason = Empty,
//!             auth.scheme = Empty,
//!             auth.status = Empty,
//!             enduser.id = Empty,
//!         )
//!     }));
//! ```
//!
//! - **Hooks**: [`on_failure`](AuthDiagnostics::on_failure) hears every failure before
//!   flood control, with the typed [`AuthFailure`] and the request's head;
//!   [`on_success`](AuthDiagnostics::on_success) every authenticated request. They cannot
//!   change the answer.
//! - **Terminal logs**: `OneLine` (feature `log-format`) writes a failure on one line,
//!   reason code and fix first.
//!
//! # Where things are
//!
//! The source follows tower-http's split by role: `layer.rs` (the builder), `service.rs`
//! and `future.rs` (the [`service`] and [`future`] modules), `reason.rs` (one row per
//! reason), `failure.rs`, `challenge.rs` (building and parsing `WWW-Authenticate`),
//! `problem.rs`, `evidence.rs` (one scan of a request: every credential-like thing, where,
//! which scheme, and the wording of what is wrong with it), `authn/` (one file per scheme
//! behind a crate-private trait; `mod.rs` only dispatches), `keys/` (where verification keys
//! come from), `upstream/` (watching the wrapped service: diagnosis, enforce corrections,
//! cache privacy), `browser.rs` (login redirects for pages, the origin check of cookie
//! sessions), `log.rs` and `flood.rs`, `log_format.rs` (the terminal format),
//! `metrics.rs` (every metric's name and labels) and `hooks.rs` (the hooks and the span
//! fields); `scope.rs` and `step_up.rs` hold the per-route
//! requirements, `resource.rs` the RFC 9728 metadata document. Beside them: `config.rs` holds what a layer is
//! configured with, so the layer, its service and rendering do not import one another;
//! `jws.rs` takes a token apart once for both verification and diagnosis; `snapshot.rs`
//! keeps what the wrapped service's refusals are explained and reproduced from;
//! `scheme.rs`, `request_id.rs`, `time.rs` and `sanitize.rs` are the small vocabulary the
//! rest shares.
//!
//! # Crypto backend
//!
//! One crypto stack serves both the signature checks (jsonwebtoken) and the TLS of the
//! default HTTP client (rustls, feature `http-client`). The `aws_lc_rs` feature (default)
//! selects aws-lc-rs for both, 5 to 12 times faster than RustCrypto for RS, PS and ES
//! signatures; a default build compiles no other crypto library (no ring). `rust_crypto`
//! (`default-features = false, features = ["rust_crypto", "http-client"]`) verifies
//! signatures with the pure-Rust RustCrypto crates, and the HTTP client's TLS then uses
//! ring, which builds C and assembly; only without `http-client` is the build free of C.
//! With both on, aws-lc-rs is used for both. Disabling both is a compile error. An
//! application that installed its own `jsonwebtoken::crypto::CryptoProvider` first keeps
//! it; the HTTP client carries its own rustls provider, so a process-wide rustls default
//! is neither needed nor changed.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod authn;
mod browser;
mod challenge;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
mod config;
mod evidence;
mod extract;
mod failure;
mod flood;
pub mod future;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod hide;
mod hooks;
mod jws;
mod keys;
mod layer;
mod log;
#[cfg(feature = "log-format")]
mod log_format;
mod metrics;
mod problem;
pub mod readiness;
mod reason;
#[cfg(feature = "redis")]
mod redis_store;
mod request_id;
mod resource;
mod sanitize;
mod scheme;
pub mod scope;
mod secret;
pub mod service;
mod snapshot;
mod step_up;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
mod upstream;

pub use authn::api_key::{ApiKey, ApiKeyAuthenticator};
#[doc(hidden)]
pub use authn::basic::decode_basic;
pub use authn::basic::{BasicAuthenticator, BasicCredentials};
pub use authn::dpop::{
    Dpop, MemoryReplayStore, ProofId, ReplayError, ReplayFuture, ReplayOutcome, ReplayStore,
};
pub use authn::jwt::{JwtAuthenticator, Verified};
pub use authn::principal::Principal;
pub use authn::session::{SessionAuthenticator, SessionCookie};
pub use authn::token_cache::{TokenCache, TokenCacheStats};
pub use authn::verify::{
    AccountStatus, AuthFuture, AuthResult, CheckAccount, StatusFuture, Verify,
};
pub use challenge::{Challenge, ParsedChallenge};
pub use extract::Claims;
pub use failure::{AuthFailure, TokenFacts};
pub use flood::LogRate;
pub use hide::HideForbidden;
pub use hooks::{OnFailure, OnSuccess};
#[doc(hidden)]
pub use keys::signature_checks;
pub use keys::{
    install_crypto_provider, FetchError, FetchErrorKind, FetchFuture, Fetched, HttpFetch,
    KeySetStore, KeySource, MemoryKeySetStore, StaticKey, StoreError, StoreFuture, StoredKeySet,
};
pub use layer::AuthDiagnostics;
#[cfg(feature = "log-format")]
pub use log_format::OneLine;
pub use metrics::describe_metrics;
pub use reason::{BearerError, DetailMode, Reason, Severity};
#[cfg(feature = "redis")]
pub use redis_store::RedisStore;
pub use request_id::{AuthRequestId, X_REQUEST_ID};
pub use resource::ResourceMetadata;
pub use sanitize::Capped;
pub use scheme::Scheme;
pub use scope::RequireScope;
pub use secret::{constant_time_eq, Secret};
pub use step_up::RequireStepUp;

/// Re-exported so applications name keys and algorithms without a direct dependency.
pub use jsonwebtoken::{Algorithm, DecodingKey};
