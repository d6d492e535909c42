//! Authentication failures that are *correct* and *explained*, for Tower and Axum.
//!
//! ```
//! use auth_diagnostics::jwt::JwtAuthenticator;
//! use auth_diagnostics::keys::StaticKey;
//! use auth_diagnostics::AuthDiagnostics;
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
//! Three types are at the root: [`AuthDiagnostics`], the layer; [`Principal`], who a request
//! was authenticated as (an extractor, also as `Option<Principal>`); and [`Reason`], the
//! taxonomy of failures (code, status, Bearer error, title, hint, log level). Everything
//! else is in a module named for what you configure, whose page is its guide:
//!
//! - [`jwt`]: [`JwtAuthenticator`](jwt::JwtAuthenticator) verifies Bearer JWTs (algorithm
//!   allow-list, issuers, audiences, leeway, required claims, `typ`), [`Claims`](jwt::Claims)
//!   hands their claims to handlers, [`TokenCache`](jwt::TokenCache) remembers verified ones.
//! - [`introspection`]: opaque access tokens, verified by the authorization server's RFC
//!   7662 endpoint ([`Introspector`](introspection::Introspector)), with a cache whose
//!   entries never outlive the token; JWTs of a configured issuer are still verified here.
//! - [`keys`]: where verification keys come from — [`StaticKey`](keys::StaticKey)s in code,
//!   or a [`KeySource`](keys::KeySource) (a JWK set URL, OpenID Connect discovery) fetched in
//!   the background, or through your own [`HttpFetch`](keys::HttpFetch).
//! - [`dpop`]: sender-constrained tokens (RFC 9449) for the origins you give
//!   [`Dpop`](dpop::Dpop), every proof check with its own reason.
//! - [`basic`], [`api_key`], [`session`]: credentials your application checks itself, with
//!   a [`Verify`](verify::Verify) hook (any async closure; the [`verify`] module); sessions
//!   add login redirects for pages and the same-origin check of unsafe requests.
//! - [`authz`]: scopes and step-up per route ([`RequireScope`](authz::RequireScope),
//!   [`RequireStepUp`](authz::RequireStepUp)), the account's state
//!   ([`CheckAccount`](authz::CheckAccount)), 404 instead of 403
//!   ([`HideForbidden`](authz::HideForbidden)), and the RFC 9728
//!   [`ResourceMetadata`](authz::ResourceMetadata) MCP servers need.
//! - [`failure`]: [`AuthFailure`](failure::AuthFailure), a refusal as a value — return it
//!   from a handler or a hook and the layer renders and logs it like its own — and the
//!   vocabulary of the answer ([`Challenge`](failure::Challenge), which also parses
//!   `WWW-Authenticate`).
//! - [`store`]: state several replicas share — used DPoP proofs, last known good key
//!   sets and the revocation list ([`AuthDiagnostics::revocation`]: tokens and sessions
//!   refused before they expire), in memory or in Redis (`RedisStore`, feature `redis`).
//! - [`layer`]: the layer's service and future, the detail mode, flood control of the log,
//!   hooks, request ids, metrics and readiness; trusted proxies and certificate-bound
//!   tokens (RFC 8705: the TLS connection's certificate or a proxy's header).
//! - `websocket` (feature `websocket`): `WebSocketAuth`, tokens a browser sends as a
//!   WebSocket subprotocol, refused upgrades closed with 4401/4403 and the reason, and
//!   `Expiring`, a socket closed when its token expires.
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
//! wrapped service that breaks the contract. Flood control ([`LogRate`](layer::LogRate)) logs an event when fewer
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
//! use auth_diagnostics::jwt::JwtAuthenticator;
//! use auth_diagnostics::keys::StaticKey;
//! use auth_diagnostics::AuthDiagnostics;
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
//!   [`login_url`](session::SessionAuthenticator::login_url) sends a failing page navigation to the
//!   login page (`303`, `return_to` a path of this site), while `fetch` and API clients get
//!   the 401.
//! - **CSRF**: an unsafe request a session cookie authenticated must come from this site's
//!   own origin (or a [trusted](session::SessionAuthenticator::trusted_origins) one): otherwise 403
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
//!   [`describe_metrics`](layer::describe_metrics) registers their descriptions.
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
//!   flood control, with the typed [`AuthFailure`](failure::AuthFailure) and the request's head;
//!   [`on_success`](AuthDiagnostics::on_success) every authenticated request. They cannot
//!   change the answer.
//! - **Terminal logs**: `OneLine` (feature `log-format`) writes a failure on one line,
//!   reason code and fix first.
//!
//! # How it works
//!
//! A request takes one way through the source; nothing is called back from what it calls:
//!
//! ```text
//! layer.rs      AuthDiagnostics: configuration checked and built once
//!  service.rs   call(): one request
//!   answer.rs     the request's answer is prepared (what it needs to know of the request)
//!   evidence.rs   one scan: every credential-like thing, where, which scheme
//!   authn/        the one scheme that claims it (bearer, dpop/, basic, api_key, session/)
//!    jws.rs keys/   take the token apart, find the key, check the signature
//!   admit.rs      revocation list, CSRF origin check, the layer's scopes, the account
//!                 hook, guests
//!   future.rs     the application's verifier when it decides, then the wrapped service
//!    upstream/      only the wrapped service's own 401 and 403 answers
//!   answer.rs     every answer leaves here: status, challenge, problem body or login
//!                 page, one log event, metrics, span, hooks (diagnose.rs names what the
//!                 request shows when a failure comes without it: a hook's, a handler's)
//! ```
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
#![warn(unreachable_pub)]

mod admit;
mod answer;
mod authn;
mod backchannel;
mod certificate;
mod challenge;
mod config;
mod config_error;
mod diagnose;
mod evidence;
mod extract;
pub mod failure;
mod flood;
mod future;
mod hide;
mod hooks;
mod jws;
pub mod keys;
pub mod layer;
mod log;
#[cfg(feature = "log-format")]
mod log_format;
mod mcp;
mod metrics;
mod path_guard;
mod problem;
mod proxy;
mod readiness;
mod reason;
#[cfg(feature = "redis")]
mod redis_store;
mod request_id;
mod resource;
mod revocation;
mod sanitize;
mod scheme;
mod scope;
mod secret;
mod service;
mod snapshot;
mod step_up;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
mod upstream;

pub mod api_key;
pub mod audit;
pub mod authz;
pub mod basic;
pub mod dpop;
#[cfg(feature = "http-client")]
pub mod introspection;
pub mod jwt;
pub mod session;
pub mod store;
pub mod throttle;
pub mod verify;
#[cfg(feature = "websocket")]
pub mod websocket;

pub use authn::principal::Principal;
#[doc(inline)]
pub use layer::AuthDiagnostics;
pub use reason::Reason;
