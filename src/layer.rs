//! The layer: [`AuthDiagnostics`] (also at the crate root), its service and response
//! future, and what it is configured with beyond its schemes — the detail mode, flood
//! control of the log, hooks, request ids, metrics and readiness.
//!
//! - [`DetailMode`]: what the client is told. Production (the default) gives the reason's
//!   code, title and a fixed description; [`verbose`](AuthDiagnostics::verbose) adds the
//!   specific detail and the hint, for development.
//! - [`try_build`](AuthDiagnostics::try_build) checks the configuration once and returns
//!   every mistake at once ([`ConfigErrors`], one typed [`ConfigError`] each); building the
//!   layer without it panics with the same list.
//! - [`LogRate`]: flood control of the failure log ([`AuthDiagnostics::log_rate`]).
//! - [`OnFailure`] and [`OnSuccess`]: hooks that hear every failure (before flood control)
//!   and every authenticated request; they cannot change the answer.
//! - [`AuthRequestId`]: the request id (`X-Request-Id`, [`X_REQUEST_ID`]) the layer logs
//!   and answers with, as an extractor.
//! - [`describe_metrics`] registers the descriptions of the metrics the layer records
//!   (feature `metrics`, default); `OneLine` (feature `log-format`) is a one-line terminal
//!   format for its log.
//! - [`Readiness`]: whether every key source holds a key set, for a `/readyz` route.
//! - [`TrustedProxies`]: the peers (addresses, CIDRs) whose forwarding headers are
//!   believed ([`AuthDiagnostics::trusted_proxies`]), read from `ConnectInfo<SocketAddr>`;
//!   a forwarding header from any other [`Peer`] is ignored and logged (rate-limited).
//! - Certificate-bound tokens (`cnf.x5t#S256`, RFC 8705 §3), checked in constant time
//!   against the client certificate of the TLS connection (a [`ClientCertificate`]
//!   extension the application inserts, [`AuthDiagnostics::certificate_from_tls`]) or of
//!   a proxy's header ([`CertificateHeader`]: RFC 9440 `Client-Cert`, Envoy's XFCC, nginx's
//!   escaped PEM, AWS ALB; [`AuthDiagnostics::certificate_header`]). Refusals:
//!   `certificate_missing`, `certificate_mismatch`, `certificate_header_untrusted`; a
//!   token bound to a DPoP key too needs both; without a certificate source a bound token
//!   stays `token_binding_unverifiable`.
//!
//! ```
//! use auth_diagnostics::layer::{AuthRequestId, X_REQUEST_ID};
//! use auth_diagnostics::AuthDiagnostics;
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let layer = AuthDiagnostics::new().verbose();
//! let app = Router::new()
//!     .route("/id", get(|id: AuthRequestId| async move { id.as_str().to_owned() }))
//!     .layer(layer);
//! let response = app
//!     .oneshot(Request::get("/id").header("x-request-id", "req-42").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()[X_REQUEST_ID], "req-42");
//! # }
//! ```

use crate::authn::api_key::ApiKeyAuthenticator;
use crate::authn::basic::BasicAuthenticator;
use crate::authn::bearer::Bearer;
use crate::authn::jwt::JwtAuthenticator;
use crate::authn::session::SessionAuthenticator;
use crate::authn::token_cache::{Cache, TokenCache, TokenCacheStats};
use crate::authn::verify::{AccountHook, CheckAccount};
use crate::authn::AuthScheme;
pub use crate::certificate::{CertificateHeader, ClientCertificate, MAX_HEADER};
use crate::config::{Config, UpstreamMode};
pub use crate::config_error::{
    ConfigError, ConfigErrors, IntrospectionMistake, OriginUse, ResourceMistake,
};
use crate::flood::FloodControl;
pub use crate::flood::LogRate;
pub use crate::future::ResponseFuture;
pub use crate::hooks::{OnFailure, OnSuccess};
#[cfg(feature = "log-format")]
pub use crate::log_format::OneLine;
pub use crate::metrics::describe_metrics;
pub use crate::path_guard::PathGuard;
use crate::problem::DEFAULT_REALM;
pub use crate::proxy::{InvalidProxy, Peer, TrustedProxies};
pub use crate::readiness::{Readiness, SourceReadiness};
pub use crate::reason::DetailMode;
pub use crate::request_id::{AuthRequestId, X_REQUEST_ID};
use crate::scheme::Scheme;
pub use crate::service::AuthDiagnosticsService;
use std::borrow::Cow;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use tower_layer::Layer;

/// A Tower layer that authenticates requests with the configured schemes, answers every
/// failure correctly (status, `WWW-Authenticate`, `application/problem+json`) and logs one
/// precise `tracing` event for it.
///
/// With no scheme configured it authenticates nothing and only watches the wrapped
/// service's answers (and renders and logs any [`AuthFailure`](crate::failure::AuthFailure) it returns).
///
/// ```
/// use auth_diagnostics::jwt::JwtAuthenticator;
/// use auth_diagnostics::keys::StaticKey;
/// use auth_diagnostics::AuthDiagnostics;
/// use axum::{routing::get, Router};
///
/// let jwt = JwtAuthenticator::new(StaticKey::hs256("secret"))
///     .issuer("https://issuer.example")
///     .audience("my-api");
///
/// let app: Router = Router::new()
///     .route("/me", get(|| async { "me" }))
///     .layer(AuthDiagnostics::new().bearer(jwt))
///     // Routes added after the layer are not authenticated.
///     .route("/public", get(|| async { "public" }));
/// ```
#[derive(Clone, Debug)]
#[must_use = "a layer does nothing until a router or service is wrapped with it"]
pub struct AuthDiagnostics {
    /// The configuration as given: its Bearer and DPoP schemes are built with the layer.
    config: Arc<Config>,
    /// What is checked and built with the layer besides `config`.
    given: Arc<Given>,
    /// The configuration built from `config` and `given`, or every mistake in them: built
    /// once (by [`AuthDiagnostics::try_build`] or the first [`Layer::layer`]) and shared
    /// by the clones made since the last change.
    built: Arc<OnceLock<Result<Arc<Config>, ConfigErrors>>>,
    /// Set once Basic over plain http from another host was logged: shared by the
    /// services this layer builds (axum may build one per request), fresh per
    /// configuration.
    said_basic_over_plaintext: Arc<AtomicBool>,
    /// [`AuthDiagnostics::served_over_tls`]: every request reached this server over TLS,
    /// so the Basic-over-plain-http hint starts as said and stays unsaid.
    served_over_tls: bool,
}

impl Default for AuthDiagnostics {
    fn default() -> Self {
        Self::new()
    }
}

impl AuthDiagnostics {
    /// A layer with no scheme configured, realm `api` and production detail.
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                realm: Cow::Borrowed(DEFAULT_REALM),
                detail: DetailMode::Production,
                schemes: Vec::new(),
                bearer: Vec::new(),
                token_cache: Some(TokenCache::default()),
                bearer_cache: None,
                #[cfg(feature = "http-client")]
                introspection: None,
                dpop: None,
                resource: None,
                required_scope: None,
                account: None,
                revocation: None,
                revocation_fails_open: false,
                mode: UpstreamMode::Enforce,
                correct_anonymous_forbidden: false,
                flood: Arc::new(FloodControl::new(Some(LogRate::default()))),
                trusted_proxies: TrustedProxies::none(),
                certificates: None,
                on_failure: None,
                on_success: None,
                enduser_id: false,
                optional: false,
                path_guard: PathGuard::Strict,
                report_only: false,
                throttle: None,
                audit: None,
                session_pages: None,
                cors_inside: Default::default(),
                plain_challenges: Default::default(),
            }),
            given: Arc::default(),
            built: Arc::default(),
            said_basic_over_plaintext: Arc::default(),
            served_over_tls: false,
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        let config = Arc::make_mut(&mut self.config);
        f(config);
        // Built from the old configuration: build again when first needed.
        config.plain_challenges = Default::default();
        self.said_basic_over_plaintext = Arc::new(AtomicBool::new(self.served_over_tls));
        self.built = Arc::default();
        self
    }

    /// Changes what is built with the layer.
    fn edit_given(mut self, f: impl FnOnce(&mut Given)) -> Self {
        f(Arc::make_mut(&mut self.given));
        self.edit(|_| {})
    }

    /// Checks the whole configuration, the layer's and that of every authenticator given
    /// to it, and builds what it serves with: the Bearer and DPoP schemes and their
    /// token caches, the metadata document, the session's browser settings; starts
    /// fetching the key sources (inside a Tokio runtime) and sets the fingerprint key.
    ///
    /// Every mistake is reported, not only the first ([`ConfigErrors`], one
    /// [`ConfigError`] each). A built layer's [`Layer::layer`] cannot fail. Without this
    /// call the layer is built by its first [`Layer::layer`], which panics with the
    /// whole list.
    ///
    /// ```
    /// use auth_diagnostics::jwt::JwtAuthenticator;
    /// use auth_diagnostics::keys::StaticKey;
    /// use auth_diagnostics::layer::ConfigError;
    /// use auth_diagnostics::AuthDiagnostics;
    ///
    /// let jwt = JwtAuthenticator::new(StaticKey::hs256("secret"));
    /// let errors = AuthDiagnostics::new().bearer(jwt).try_build().unwrap_err();
    /// let all: Vec<&ConfigError> = errors.iter().collect();
    /// assert_eq!(all, [&ConfigError::NoAudience, &ConfigError::NoIssuer]);
    /// ```
    ///
    /// # Errors
    /// Every configuration mistake: see [`ConfigError`].
    pub fn try_build(self) -> Result<Self, ConfigErrors> {
        self.built().map_err(ConfigErrors::clone)?;
        Ok(self)
    }

    /// The configuration built once, or every mistake in it.
    fn built(&self) -> Result<&Arc<Config>, &ConfigErrors> {
        self.built
            .get_or_init(|| build(&self.config, &self.given))
            .as_ref()
    }

    fn scheme(self, scheme: impl AuthScheme) -> Self {
        self.edit(|c| c.schemes.push(Arc::new(scheme)))
    }

    /// Accepts `Authorization: Bearer <JWT>` verified by `jwt`.
    ///
    /// Call it once per issuer to accept several, each with its own keys, audiences and
    /// claim rules: a token goes by its unverified `iss` to the one authenticator that
    /// accepts that issuer, and a token of any other issuer is `token_issuer_mismatch`
    /// before any key is fetched. Starts fetching `jwt`'s [`KeySource`](crate::keys::KeySource)s
    /// in the background when the layer is built inside a Tokio runtime.
    ///
    /// ```
    /// use auth_diagnostics::jwt::JwtAuthenticator;
    /// use auth_diagnostics::keys::KeySource;
    /// use auth_diagnostics::AuthDiagnostics;
    ///
    /// let staff = JwtAuthenticator::from_source(KeySource::discover("https://staff.example"))
    ///     .audience("orders-api");
    /// let partners = JwtAuthenticator::from_source(KeySource::discover("https://partners.example"))
    ///     .audience("orders-api")
    ///     .require_claims(["client_id"]);
    /// let layer = AuthDiagnostics::new().bearer(staff).bearer(partners);
    /// # let _ = layer;
    /// ```
    ///
    /// # Configuration errors
    /// A misconfigured `jwt` is reported when the layer is built (see
    /// [`try_build`](Self::try_build)), so the application learns it at start-up and never
    /// from production traffic: no audience and no
    /// [`accept_any_audience`](JwtAuthenticator::accept_any_audience), several issuers
    /// with a key that does not name its issuer, a key source without an issuer or with a
    /// plain `http` URL; or, with several authenticators, one without an issuer or two
    /// that share one.
    pub fn bearer(self, jwt: JwtAuthenticator) -> Self {
        let at = self.config.schemes.len();
        self.edit_given(|g| g.place(Scheme::Bearer, at))
            .edit(|c| c.bearer.push(jwt))
    }

    /// Accepts opaque Bearer tokens, verified by RFC 7662 introspection at `introspector`'s
    /// endpoint (feature `http-client`). With [`bearer`](Self::bearer) on the same layer,
    /// a JWS whose `iss` is a configured JWT issuer is verified locally and every other
    /// token is introspected (the [`introspection`](crate::introspection) module).
    ///
    /// # Configuration errors
    /// A misconfigured `introspector` ([`ConfigError::Introspection`]: no audience and no
    /// `accept_any_audience`, no client credentials, an endpoint that is not `https`), or
    /// a second call ([`ConfigError::CalledTwice`]), is reported when the layer is built.
    #[cfg(feature = "http-client")]
    pub fn introspection(self, introspector: crate::introspection::Introspector) -> Self {
        if self.config.introspection.is_some() {
            return self.edit_given(|g| {
                g.mistakes.push(ConfigError::CalledTwice {
                    method: "introspection",
                })
            });
        }
        let at = self.config.schemes.len();
        self.edit_given(|g| g.place(Scheme::Bearer, at))
            .edit(|c| c.introspection = Some(introspector))
    }

    /// Sets the verified-token cache of the Bearer scheme: a token seen before, verified
    /// and unexpired, skips its signature check. On by default ([`TokenCache::default`]);
    /// an entry never outlives the token's `exp`, the TTL, or the keys that verified it.
    pub fn token_cache(self, cache: TokenCache) -> Self {
        self.edit(|c| c.token_cache = Some(cache))
    }

    /// Verifies every token, seen before or not.
    pub fn without_token_cache(self) -> Self {
        self.edit(|c| c.token_cache = None)
    }

    /// What the verified-token cache has done (`None` without Bearer, without a cache, or
    /// before the layer is built: the cache is built with it).
    pub fn token_cache_stats(&self) -> Option<TokenCacheStats> {
        let built = self.built.get()?.as_ref().ok()?;
        built.bearer_cache.as_ref().map(|c| c.stats())
    }

    /// Resolves once every Bearer authenticator's [`KeySource`](crate::keys::KeySource)s have
    /// a key set (at once without any). Wrap it in a timeout: it waits as long as a source
    /// is unreachable. Call it inside the Tokio runtime that serves the layer.
    ///
    /// ```no_run
    /// # use auth_diagnostics::jwt::JwtAuthenticator;
    /// # use auth_diagnostics::keys::KeySource;
    /// # use auth_diagnostics::AuthDiagnostics;
    /// # async fn run() {
    /// let layer = AuthDiagnostics::new().bearer(
    ///     JwtAuthenticator::from_source(KeySource::discover("https://login.example.com"))
    ///         .audience("orders-api"),
    /// );
    /// if tokio::time::timeout(std::time::Duration::from_secs(10), layer.ready()).await.is_err() {
    ///     tracing::warn!("serving before the signing keys arrived: requests wait or get 503");
    /// }
    /// # }
    /// ```
    pub async fn ready(&self) {
        for jwt in &self.config.bearer {
            jwt.ready().await;
        }
        if let Some(dpop) = &self.config.dpop {
            dpop.ready().await;
        }
    }

    /// Whether every key source of its Bearer and DPoP authenticators holds a key set
    /// now, and why not: a snapshot for a `/readyz` route, without waiting (see
    /// [`Readiness`]).
    pub fn readiness(&self) -> Readiness {
        let jwts = self
            .config
            .bearer
            .iter()
            .chain(self.config.dpop.as_ref().and_then(|d| d.authenticator()));
        Readiness {
            sources: jwts
                .flat_map(|jwt| jwt.sources().iter().map(|s| s.readiness()))
                .collect(),
        }
    }

    /// Accepts `Authorization: DPoP <token>` with a `DPoP` proof (RFC 9449): a
    /// sender-constrained token, useless to whoever steals it without its key. On a layer
    /// that also accepts Bearer, a DPoP-bound token sent as Bearer is refused
    /// (`token_dpop_bound`), and every 401 carries both challenges.
    ///
    /// # Configuration errors
    /// A misconfigured `dpop` (see [`Dpop`](crate::dpop::Dpop)), or a second
    /// call ([`ConfigError::CalledTwice`]), is reported when the layer is built (see
    /// [`try_build`](Self::try_build)).
    pub fn dpop(self, dpop: crate::authn::dpop::Dpop) -> Self {
        if self.config.dpop.is_some() {
            return self
                .edit_given(|g| g.mistakes.push(ConfigError::CalledTwice { method: "dpop" }));
        }
        let at = self.config.schemes.len();
        self.edit_given(|g| g.place(Scheme::Dpop, at))
            .edit(|c| c.dpop = Some(dpop))
    }

    /// Publishes the RFC 9728 metadata document `meta`: every Bearer and DPoP challenge
    /// on a 401 or 403 names it in `resource_metadata`, and the layer answers `GET` on its
    /// well-known path itself, unauthenticated, with `Content-Type: application/json`,
    /// `Cache-Control: public, max-age=3600` and `Access-Control-Allow-Origin: *`. Where
    /// requests for that path do not pass through this layer, mount
    /// [`ResourceMetadata::router`](crate::authz::ResourceMetadata::router).
    ///
    /// # Configuration errors
    /// A misconfigured `meta` is reported when the layer is built (see
    /// [`try_build`](Self::try_build)): an identifier that is not an absolute `https` URL
    /// (`http` on loopback) or has a query or fragment, no authorization server, a
    /// `resource` field that differs from the identifier, an `http` `jwks_uri`, `none` among
    /// the signing algorithms, a bearer method other than `header` (the one the layer
    /// reads).
    pub fn resource_metadata(self, meta: crate::resource::ResourceMetadata) -> Self {
        self.edit_given(|g| g.resource = Some(meta))
    }

    /// Requires `scopes` of every request this layer authenticates: a principal without
    /// one of them gets 403 `insufficient_scope` with `scope="…"`, and every 401's Bearer
    /// and DPoP challenge names them, so a client asks for all of them at once (what the
    /// Model Context Protocol asks of servers). For scopes of single routes, put
    /// [`RequireScope`](crate::authz::RequireScope) on them.
    pub fn require_scope<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scope = crate::scope::RequireScope::new(scopes);
        self.edit(|c| c.required_scope = Some(scope))
    }

    /// Accepts `Authorization: Basic …` (RFC 7617), verified by the application.
    pub fn basic(self, basic: BasicAuthenticator) -> Self {
        self.scheme(basic)
    }

    /// Says that every request reaches this server over TLS, so Basic credentials from
    /// another host are never hinted about as plain http (hint `basic_over_plaintext`).
    ///
    /// Call it when this process ends TLS itself (axum-server with rustls, tokio-rustls):
    /// an HTTP/1.1 request names no scheme, so the layer cannot tell TLS from none. Behind
    /// a proxy that ends TLS, have the proxy send `X-Forwarded-Proto: https` (or
    /// `Forwarded: proto=https`) instead, and leave this off. Nothing else changes.
    ///
    /// ```
    /// use auth_diagnostics::basic::{BasicAuthenticator, BasicCredentials};
    /// use auth_diagnostics::failure::AuthFailure;
    /// use auth_diagnostics::AuthDiagnostics;
    /// use auth_diagnostics::{Principal, Reason};
    ///
    /// // This process ends TLS itself (say, axum_server::bind_rustls): tell the layer.
    /// let basic = BasicAuthenticator::new(|_: BasicCredentials| async move {
    ///     Err::<Principal, _>(AuthFailure::new(Reason::CredentialsInvalid))
    /// });
    /// let layer = AuthDiagnostics::new().basic(basic).served_over_tls();
    /// assert!(format!("{layer:?}").contains("served_over_tls: true"));
    /// ```
    pub fn served_over_tls(mut self) -> Self {
        self.served_over_tls = true;
        self.said_basic_over_plaintext = Arc::new(AtomicBool::new(true));
        self
    }

    /// The peers (addresses and CIDR networks) whose forwarding headers the layer
    /// believes: the proxies in front of this service. The peer is the request's
    /// `ConnectInfo<SocketAddr>` (serve the router with
    /// `into_make_service_with_connect_info::<SocketAddr>()`); a request without it is
    /// from an untrusted peer. A forwarding header from an untrusted peer is ignored and
    /// logged (WARN, rate-limited with the failure log, field `peer`). None by default.
    ///
    /// ```
    /// use auth_diagnostics::layer::{CertificateHeader, TrustedProxies};
    /// use auth_diagnostics::AuthDiagnostics;
    ///
    /// let proxies: TrustedProxies = "10.0.0.0/8, 127.0.0.1".parse().unwrap();
    /// let layer = AuthDiagnostics::new()
    ///     .trusted_proxies(proxies)
    ///     .certificate_header(CertificateHeader::ClientCert);
    /// ```
    pub fn trusted_proxies(self, proxies: TrustedProxies) -> Self {
        self.edit(|c| c.trusted_proxies = proxies)
    }

    /// Checks certificate-bound tokens (`cnf.x5t#S256`, RFC 8705) against the client
    /// certificate of the TLS connection, which the application inserts into each
    /// request as a [`ClientCertificate`] extension (its page shows how, with
    /// tokio-rustls). Can be combined with [`certificate_header`](Self::certificate_header):
    /// the connection's certificate is taken first.
    pub fn certificate_from_tls(self) -> Self {
        self.edit(|c| c.certificates.get_or_insert_with(Default::default).tls = true)
    }

    /// Checks certificate-bound tokens (`cnf.x5t#S256`, RFC 8705) against the client
    /// certificate a proxy that ends TLS forwards in a header of format `format`, read
    /// only from [trusted proxies](Self::trusted_proxies). From any other peer the header
    /// is ignored and logged; a bound token with no other certificate is then refused
    /// with `certificate_header_untrusted`.
    /// Without trusted proxies the header is believed from no one (every such header is
    /// logged as forged): that is the safe default for a service reachable directly, not
    /// a mistake.
    pub fn certificate_header(self, format: CertificateHeader) -> Self {
        self.edit(|c| c.certificates.get_or_insert_with(Default::default).header = Some(format))
    }

    /// Accepts an API key (default header `X-API-Key`), verified by the application.
    ///
    /// # Configuration errors
    /// A header name that is none is reported when the layer is built (see
    /// [`try_build`](Self::try_build)).
    pub fn api_key(self, key: ApiKeyAuthenticator) -> Self {
        let errors = key.config_errors();
        self.edit_given(|g| g.mistakes.extend(errors)).scheme(key)
    }

    /// Accepts the signed assertion of the identity-aware proxy `iap` in its header
    /// (`Cf-Access-Jwt-Assertion`, `x-goog-iap-jwt-assertion`, `x-amzn-oidc-data`),
    /// verified with the proxy's published keys; starts fetching them.
    ///
    /// # Configuration errors
    /// A key URL that cannot serve keys, or a leeway above the most, is reported when the
    /// layer is built (see [`try_build`](Self::try_build)).
    pub fn identity_aware_proxy(self, iap: crate::jwt::IdentityAwareProxy) -> Self {
        let scheme = iap.into_scheme();
        let errors = scheme.config_errors();
        scheme.start();
        self.edit_given(|g| g.mistakes.extend(errors))
            .scheme(scheme)
    }

    /// Accepts a session cookie, verified by the application; unsafe requests it
    /// authenticates must come from this site's own origin, and page navigations that fail
    /// go to its [`login_url`](SessionAuthenticator::login_url) when it has one.
    ///
    /// # Configuration errors
    /// These are reported when the layer is built (see
    /// [`try_build`](Self::try_build)): a login URL that is neither a path of this site
    /// nor an absolute `http(s)` URL (or has a fragment), a trusted origin that is not
    /// `http(s)://host[:port]` (`null` included), a second session scheme (one per layer:
    /// their origin checks and login pages would mix).
    pub fn session(self, session: SessionAuthenticator) -> Self {
        if self.given.session.is_some() {
            let twice = ConfigError::CalledTwice { method: "session" };
            return self.edit_given(|g| g.mistakes.push(twice));
        }
        let pages = session.pages().clone();
        self.edit_given(|g| g.session = Some(pages)).scheme(session)
    }

    /// Optional authentication: a request without any credential reaches the wrapped
    /// service anonymously (no [`Principal`](crate::Principal); handlers take
    /// `Option<Principal>`), logged at DEBUG only. A request *with* credentials is
    /// authenticated as always, and refused when they fail: bad credentials are never
    /// downgraded to anonymous, or a stolen-then-expired or forged token would still get
    /// the guest's view, and a typo would hide behind it.
    ///
    /// "Without any credential" means no `Authorization`, no API key header and no
    /// `access_token` query parameter; cookies this layer does not read and other query
    /// parameters that look like tokens (`?token=page2`, a site's own `session` cookie)
    /// are what web pages carry anyway, and pass too. Scopes required with
    /// [`require_scope`](Self::require_scope) apply to authenticated requests only. For
    /// some routes only, put the layer on them with `route_layer`.
    ///
    /// Every answer of such a route says `Vary: Authorization, Cookie` (added to the
    /// application's own `Vary`, unless that is `*`): a guest and a signed-in user get
    /// different answers at one URL, and a cache must not hand one the other's.
    ///
    /// ```
    /// use auth_diagnostics::jwt::JwtAuthenticator;
    /// use auth_diagnostics::keys::StaticKey;
    /// use auth_diagnostics::{AuthDiagnostics, Principal};
    /// use axum::{routing::get, Router};
    ///
    /// async fn feed(who: Option<Principal>) -> String {
    ///     match who {
    ///         Some(p) => format!("feed for {}", p.id().unwrap_or("?")),
    ///         None => "the public feed".into(),
    ///     }
    /// }
    ///
    /// let jwt = JwtAuthenticator::new(StaticKey::hs256("secret"))
    ///     .issuer("https://issuer.example")
    ///     .audience("my-api");
    /// let app: Router = Router::new()
    ///     .route("/feed", get(feed))
    ///     .layer(AuthDiagnostics::new().bearer(jwt).optional());
    /// ```
    pub fn optional(self) -> Self {
        self.edit(|c| c.optional = true)
    }

    /// Report-only: every check runs, but a request this layer would refuse (400, 401,
    /// 403, 503) goes on to the wrapped service as anonymous — no
    /// [`Principal`](crate::Principal), never a partly verified one: a token that verified
    /// but lacks a required scope, or whose account is refused, passes without its
    /// principal too. The refusal is logged as usual with `enforced=false`, counted in
    /// `auth_diagnostics_failures_total` with the status it would have had, and in
    /// `auth_diagnostics_would_refuse_total{reason}`. A valid request passes with its
    /// principal, as always. The wrapped service's own 401/403 answers are judged as in
    /// any mode ([`observe`](Self::observe) is the switch for those).
    ///
    /// Per layer, so per route with `route_layer`. Handlers must accept an anonymous
    /// request (`Option<Principal>`) while it is on.
    ///
    /// ```
    /// use auth_diagnostics::jwt::JwtAuthenticator;
    /// use auth_diagnostics::keys::StaticKey;
    /// use auth_diagnostics::{AuthDiagnostics, Principal};
    /// use axum::{routing::get, Router};
    ///
    /// async fn me(who: Option<Principal>) -> String {
    ///     who.and_then(|p| p.id().map(str::to_owned)).unwrap_or_default()
    /// }
    ///
    /// let jwt = JwtAuthenticator::new(StaticKey::hs256("secret"))
    ///     .issuer("https://issuer.example")
    ///     .audience("my-api");
    /// let app: Router = Router::new()
    ///     .route("/me", get(me))
    ///     .route_layer(AuthDiagnostics::new().bearer(jwt).report_only());
    /// ```
    pub fn report_only(self) -> Self {
        self.edit(|c| c.report_only = true)
    }

    /// Asks `hook` about the account of every principal whose credentials verified, with
    /// any scheme: [`AccountStatus::Disabled`](crate::authz::AccountStatus::Disabled) and
    /// [`AccountStatus::Locked`](crate::authz::AccountStatus::Locked) answer 403
    /// `account_disabled` / `account_locked` (the credentials are fine; the account may
    /// not proceed). A hook that fails answers 503 `authenticator_unavailable`.
    ///
    /// ```
    /// use auth_diagnostics::authz::AccountStatus;
    /// use auth_diagnostics::{AuthDiagnostics, Principal};
    ///
    /// let layer = AuthDiagnostics::new().account_status(|p: &Principal| {
    ///     let disabled = p.id() == Some("mallory");
    ///     async move {
    ///         Ok(if disabled { AccountStatus::Disabled } else { AccountStatus::Active })
    ///     }
    /// });
    /// # let _ = layer;
    /// ```
    pub fn account_status(self, hook: impl CheckAccount) -> Self {
        self.edit(|c| c.account = Some(AccountHook(Arc::new(hook))))
    }

    /// Checks every credential that verified against `list` before the request goes on:
    /// a Bearer or DPoP token by its verified `jti`, `sid`, and `sub` with `iat` → 401
    /// `token_revoked` with `error="invalid_token"`; a session by the id its verifier
    /// gave ([`Principal::with_session_id`](crate::Principal::with_session_id)) and its
    /// principal's id as `sub` → 401 `session_revoked`. Basic and API-key principals are
    /// not checked (revoke those in your verifier). The check comes before the layer's
    /// scopes and the account hook.
    ///
    /// A list that cannot be read fails closed by default: 503 `revocation_unavailable`
    /// with `Retry-After`. [`revocation_fails_open`](Self::revocation_fails_open) accepts
    /// instead. See [`MemoryRevocationList`](crate::store::MemoryRevocationList) for what
    /// the in-memory list promises (at once, in this process; entries kept for the
    /// longest credential lifetime).
    ///
    /// ```
    /// use auth_diagnostics::jwt::JwtAuthenticator;
    /// use auth_diagnostics::keys::StaticKey;
    /// use auth_diagnostics::store::{MemoryRevocationList, Revocation, RevocationList};
    /// use auth_diagnostics::AuthDiagnostics;
    /// use std::sync::Arc;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let revoked = Arc::new(MemoryRevocationList::new());
    /// let jwt = JwtAuthenticator::new(StaticKey::hs256("secret"))
    ///     .issuer("https://issuer.example")
    ///     .audience("my-api");
    /// let layer = AuthDiagnostics::new().bearer(jwt).revocation(revoked.clone());
    /// // Later, from an admin route or a logout: the next request with it is 401.
    /// revoked.revoke(Revocation::sub("alice")).await.unwrap();
    /// # let _ = layer;
    /// # }
    /// ```
    pub fn revocation(self, list: impl crate::store::RevocationList) -> Self {
        self.edit(|c| c.revocation = Some(Arc::new(list)))
    }

    /// When the revocation list cannot be read (its store is down), accept the credential
    /// as if it were not revoked, and log the failure at ERROR, instead of the default
    /// 503 `revocation_unavailable`. Availability over revocation: a revoked token works
    /// while the store is down.
    ///
    /// # Configuration errors
    /// Without [`revocation`](Self::revocation):
    /// [`ConfigError::RevocationFailsOpenWithoutList`].
    pub fn revocation_fails_open(self) -> Self {
        self.edit(|c| c.revocation_fails_open = true)
    }

    /// Which request paths are refused as ambiguous: 400 `path_ambiguous` before any
    /// credential is read or any route-scoped rule runs, so that no rule is bypassed by a
    /// path a proxy and the router read differently (`/admin/..;/public`,
    /// `/public/%2e%2e/admin`). The default, [`PathGuard::Strict`], refuses dot segments in
    /// any encoding (also with `;` parameters), encoded `/` and `\`, double
    /// percent-encoding and raw backslashes; [`PathGuard::AllowEncodedSlash`] lets `%2F`
    /// inside identifiers pass; [`PathGuard::Off`] checks nothing. The query is never read.
    ///
    /// ```
    /// use auth_diagnostics::layer::PathGuard;
    /// use auth_diagnostics::AuthDiagnostics;
    /// use axum::{body::Body, http::Request, routing::get, Router};
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let app = Router::new()
    ///     .route("/projects/{id}", get(|| async { "project" }))
    ///     .layer(AuthDiagnostics::new().path_guard(PathGuard::AllowEncodedSlash));
    /// let get = |uri| Request::get(uri).body(Body::empty()).unwrap();
    /// let response = app.clone().oneshot(get("/projects/group%2Fname")).await.unwrap();
    /// assert_eq!(response.status(), 200);
    /// let response = app.oneshot(get("/projects/%2e%2e")).await.unwrap();
    /// assert_eq!(response.status(), 400);
    /// # }
    /// ```
    pub fn path_guard(self, guard: PathGuard) -> Self {
        self.edit(|c| c.path_guard = guard)
    }

    /// Throttles failed authentication with `throttle`: a client address or claimed
    /// identity (a Basic user name) that fails too often is answered 429 `throttled` with
    /// `Retry-After` and no challenge, before any password hash or signature check, until
    /// its block ends; blocks double while failures go on (see
    /// [`Throttle`](crate::throttle::Throttle) for what counts and the defaults). Only
    /// failures are counted: a credential that was presented and did not verify
    /// (`basic_user_unknown`, `basic_password_mismatch`, `api_key_unknown`,
    /// `credentials_invalid`, `token_signature_invalid`, `dpop_proof_signature_invalid`).
    /// A report-only layer counts nothing and refuses nothing.
    ///
    /// # Configuration errors
    /// A shared store's key shorter than 16 bytes: [`ConfigError::ThrottleKeyTooShort`].
    pub fn throttle(self, throttle: crate::throttle::Throttle) -> Self {
        self.edit(|c| c.throttle = Some(throttle))
    }

    /// Records every decision this layer makes, accepts included: one
    /// [`AuditRecord`](crate::audit::AuditRecord) per request it accepts, lets through
    /// anonymously or refuses (400, 401, 403, 429, 503, and the application's own 401 and
    /// 403), on the `tracing` target `auth_diagnostics::audit` and to the
    /// [`Audit`](crate::audit::Audit)'s sink. Made at the layer's outermost point with the
    /// status the client got; never rate-limited; accepts can be sampled. Off unless
    /// called: a record per request is the application's choice.
    pub fn audit(self, audit: crate::audit::Audit) -> Self {
        self.edit(|c| c.audit = Some(audit))
    }

    /// The `realm` of every challenge (default `api`). Fixed text: never derived from the
    /// request, the issuer or the audience.
    pub fn realm(self, realm: impl Into<Cow<'static, str>>) -> Self {
        self.edit(|c| c.realm = realm.into())
    }

    /// Development answers: the client sees the precise reason, a specific detail, a hint
    /// and non-secret facts. Never turn this on in production.
    pub fn verbose(self) -> Self {
        self.detail_mode(DetailMode::Verbose)
    }

    /// Only log what the wrapped service's own 401/403 answers get wrong; change nothing.
    pub fn observe(self) -> Self {
        self.edit(|c| c.mode = UpstreamMode::Observe)
    }

    /// Correct the wrapped service's wrong 401/403 answers (the default).
    ///
    /// The corrections are what RFC 9110 §15.5.2 and §15.5.4 require (a 401 carries a
    /// challenge; a 401 means "who are you?", a 403 means "I know who you are, and no"), and
    /// a client that sees the right status does the right thing — it refreshes its token on
    /// 401 and stops retrying on 403. Only what is certain is corrected: a 401 whose
    /// challenge carries an `error` (the application refused the token itself) is kept, and a 403 to an anonymous request
    /// is corrected only after [`AuthDiagnostics::correct_forbidden_without_credentials`].
    /// A non-empty body is kept when only a challenge is added; when the status changes the
    /// body is the layer's. Choose [`AuthDiagnostics::observe`] to roll the layer out first
    /// and read what it would change.
    pub fn enforce(self) -> Self {
        self.edit(|c| c.mode = UpstreamMode::Enforce)
    }

    /// In enforce mode, also turn the wrapped service's 403 to a request that carries no
    /// credentials at all into a 401 with a challenge (`upstream_forbidden_without_credentials`).
    ///
    /// Off by default: a 403 to an anonymous request can be a legal denial (by IP address,
    /// client certificate, or policy; RFC 9110 §15.5.4), which only the application knows.
    /// Opt in when this application's 403s always mean "who are you?". Without it, such a
    /// 403 is kept and logged with a hint. "No credentials at all" means no
    /// `Authorization`, no `Proxy-Authorization`, no `Cookie` header, no other header known
    /// to carry a credential and no `access_token` query parameter.
    pub fn correct_forbidden_without_credentials(self) -> Self {
        self.edit(|c| c.correct_anonymous_forbidden = true)
    }

    /// Rate-limits failure events per reason (default: 10 per 10 s, then one per second,
    /// with a "suppressed N" summary).
    pub fn log_rate(self, rate: LogRate) -> Self {
        self.edit(|c| c.flood = Arc::new(FloodControl::new(Some(rate))))
    }

    /// Logs every failure, without flood control (for tests and low-traffic services).
    pub fn log_every_failure(self) -> Self {
        self.edit(|c| c.flood = Arc::new(FloodControl::new(None)))
    }

    /// Reports every event flood control is holding back now, as "suppressed N" events.
    pub fn flush_suppressed(&self) {
        self.config.flood.flush();
    }

    /// Calls `hook` for every failure this layer answers, corrects or diagnoses, with the
    /// typed [`AuthFailure`](crate::failure::AuthFailure) and the request's head, before flood
    /// control decides whether the failure is logged: every failure, however many. The
    /// hook cannot change the answer. See [`OnFailure`].
    pub fn on_failure(self, hook: impl OnFailure) -> Self {
        self.edit(|c| c.on_failure = Some(crate::hooks::Hook(Arc::new(hook))))
    }

    /// Calls `hook` for every request this layer authenticates, with the principal, before
    /// the wrapped service is called. See [`OnSuccess`].
    pub fn on_success(self, hook: impl OnSuccess) -> Self {
        self.edit(|c| c.on_success = Some(crate::hooks::Hook(Arc::new(hook))))
    }

    /// Records the authenticated principal's id ([`Principal::id`](crate::Principal::id))
    /// as `enduser.id` on the request span, where the span declares that field (see the
    /// crate docs, "Traces"). Off by default: a user id is personal data, and traces are
    /// often kept longer and seen by more people than logs.
    pub fn record_enduser_id(self) -> Self {
        self.edit(|c| c.enduser_id = true)
    }

    /// Sets the detail mode explicitly: what the client sees of a failure.
    pub fn detail_mode(self, mode: DetailMode) -> Self {
        self.edit(|c| c.detail = mode)
    }

    /// Keys the credential fingerprints in the log (`fingerprint`, `<unverified user
    /// fp:…>`) with `key`, so one credential has one fingerprint on every replica that is
    /// given the same key, and across restarts. Without it the key is random per process.
    ///
    /// The key is the process's, not this layer's: fingerprints belong to the log. A
    /// keyed fingerprint is an HMAC-SHA256 prefix (48 bits): without the key, the log
    /// does not help anyone test guesses of a credential. Keep the key as secret as the
    /// logs are sensitive, and give it at least 16 random bytes.
    ///
    /// # Configuration errors
    /// A `key` shorter than 16 bytes, or a different key set before in this
    /// process, is reported when the layer is built (see [`try_build`](Self::try_build)),
    /// which sets the key.
    pub fn fingerprint_key(self, key: impl AsRef<[u8]>) -> Self {
        let key = crate::sanitize::fingerprint_key(key.as_ref())
            .map_err(|len| ConfigError::FingerprintKeyTooShort { len });
        self.edit_given(|g| g.fingerprint_key = Some(key))
    }
}

/// What a layer is given besides [`Config`], checked and built with it.
#[derive(Clone, Default)]
struct Given {
    /// Where the Bearer and DPoP schemes go among the configured schemes: before the
    /// scheme at that index (after the last at their count), in the order first given.
    places: Vec<(Scheme, usize)>,
    /// The session scheme's browser settings as given.
    session: Option<crate::authn::session::browser::SessionPages>,
    /// The metadata document as given.
    resource: Option<crate::resource::ResourceMetadata>,
    /// The fingerprint key as the process would keep it, or why it cannot be.
    fingerprint_key: Option<Result<[u8; 32], ConfigError>>,
    /// Mistakes seen when a builder method was called (a second `.dpop(..)`).
    mistakes: Vec<ConfigError>,
}

impl Given {
    /// Places the scheme `kind` at `at`, unless it has a place.
    fn place(&mut self, kind: Scheme, at: usize) {
        if !self.places.iter().any(|(k, _)| *k == kind) {
            self.places.push((kind, at));
        }
    }
}

// The fingerprint key is a secret: not shown.
impl std::fmt::Debug for Given {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Given")
            .field("places", &self.places)
            .field("session", &self.session)
            .field("resource", &self.resource)
            .field("fingerprint_key", &self.fingerprint_key.is_some())
            .field("mistakes", &self.mistakes)
            .finish()
    }
}

/// Checks everything a layer was given, and builds it: every mistake, or the
/// configuration its services run with.
fn build(config: &Config, given: &Given) -> Result<Arc<Config>, ConfigErrors> {
    let mut errors = given.mistakes.clone();
    for jwt in &config.bearer {
        errors.extend(jwt.config_errors());
    }
    errors.extend(Bearer::routing_errors(&config.bearer));
    #[cfg(feature = "http-client")]
    if let Some(introspector) = &config.introspection {
        errors.extend(introspector.config_errors());
    }
    if let Some(dpop) = &config.dpop {
        errors.extend(dpop.config_errors());
    }
    let session = given.session.as_ref().map(|pages| pages.checked());
    if let Some(Err(e)) = &session {
        errors.extend(e.iter().cloned());
    }
    let resource = given
        .resource
        .as_ref()
        .map(crate::resource::Served::checked);
    if let Some(Err(e)) = &resource {
        errors.extend(e.iter().cloned());
    }
    if let Some(Err(e)) = &given.fingerprint_key {
        errors.push(e.clone());
    }
    if let Some(len) = config.throttle.as_ref().and_then(|t| t.shared_key_short) {
        errors.push(ConfigError::ThrottleKeyTooShort { len });
    }
    if config.revocation_fails_open && config.revocation.is_none() {
        errors.push(ConfigError::RevocationFailsOpenWithoutList);
    }
    if let Some(errors) = ConfigErrors::new(errors) {
        return Err(errors);
    }
    // Nothing below fails but the fingerprint key, which changes the process: last.
    if let Some(Ok(key)) = given.fingerprint_key {
        if !crate::sanitize::set_fingerprint_key(key) {
            return Err(ConfigErrors::one(ConfigError::FingerprintKeyDiffers));
        }
    }
    let mut built = config.clone();
    built.session_pages = session.and_then(Result::ok);
    built.resource = resource.and_then(Result::ok);
    built.plain_challenges = Default::default();
    let mut extra: Vec<(usize, Arc<dyn AuthScheme>)> = Vec::new();
    for (kind, at) in &given.places {
        match kind {
            Scheme::Bearer => extra.push((*at, build_bearer(&mut built))),
            _ => {
                if let Some(dpop) = build_dpop(&built) {
                    extra.push((*at, dpop));
                }
            }
        }
    }
    let mut schemes = Vec::with_capacity(built.schemes.len() + extra.len());
    for (index, scheme) in built.schemes.iter().enumerate() {
        schemes.extend(
            extra
                .iter()
                .filter(|(at, _)| *at == index)
                .map(|(_, s)| s.clone()),
        );
        schemes.push(scheme.clone());
    }
    let last = built.schemes.len();
    schemes.extend(
        extra
            .iter()
            .filter(|(at, _)| *at >= last)
            .map(|(_, s)| s.clone()),
    );
    built.schemes = schemes;
    Ok(Arc::new(built))
}

impl<S> Layer<S> for AuthDiagnostics {
    type Service = AuthDiagnosticsService<S>;

    /// # Panics
    /// When the layer was not built yet ([`AuthDiagnostics::try_build`]) and its
    /// configuration has mistakes: the panic lists every one.
    fn layer(&self, inner: S) -> Self::Service {
        let config = match self.built() {
            Ok(config) => config.clone(),
            Err(errors) => panic!("auth-diagnostics: {errors}"),
        };
        crate::metrics::describe_metrics();
        AuthDiagnosticsService::new(inner, config, self.said_basic_over_plaintext.clone())
    }
}

/// The Bearer scheme for the configured authenticators, with a fresh cache (entries of
/// another configuration must not carry over), fetching their keys.
fn build_bearer(c: &mut Config) -> Arc<dyn AuthScheme> {
    let cache = c
        .token_cache
        .map(|settings| Arc::new(Cache::new(settings, "bearer")));
    let bearer = Bearer::new(c.bearer.clone(), cache.clone());
    #[cfg(feature = "http-client")]
    let bearer = bearer.introspecting(c.introspection.clone());
    bearer.start();
    c.bearer_cache = cache;
    Arc::new(bearer)
}

/// The DPoP scheme for the configured [`Dpop`](crate::dpop::Dpop), with a fresh cache,
/// fetching its keys.
fn build_dpop(c: &Config) -> Option<Arc<dyn AuthScheme>> {
    let dpop = c.dpop.as_ref()?;
    let cache = c
        .token_cache
        .map(|settings| Arc::new(Cache::new(settings, "dpop")));
    let scheme = dpop.scheme(cache);
    scheme.start();
    Some(Arc::new(scheme))
}
