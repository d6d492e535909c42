//! The demo server: every feature of auth-diagnostics on real HTTP.
//!
//! ```text
//! cargo run --example demo
//! TOKEN=$(cargo run -q --example mint -- --sub alice --scope admin)
//! curl -i localhost:3000/me -H "Authorization: Bearer $TOKEN"
//! ```
//!
//! Environment: `DEMO_ADDR` (127.0.0.1:3000), `DEMO_LOG_FORMAT` (`pretty`, one line per
//! event that leads with the reason code and the fix, or `json`), `DEMO_DETAIL` (`verbose`
//! or `production`), `DEMO_JWT_SECRET`, `DEMO_ISSUER`, `DEMO_AUDIENCE`, `DEMO_JWKS_URL` (a
//! JWK set whose RS256, ES256 and EdDSA keys verify tokens too), `DEMO_OIDC_ISSUER` (keys
//! through that issuer's discovery document), `DEMO_METRICS` (`1`: the layer's metrics in
//! the Prometheus text format at `GET /metrics`), `DEMO_APP_ADDR` (a second listener whose
//! page `/app`, on another origin, calls the demo from a browser; the demo's CORS allows
//! that origin and its `localhost` spelling), `DEMO_REDIS_URL` (DPoP replays and last
//! known good key sets, and the revocation list, shared through that Redis, so several
//! demo processes behave as one),
//! `DEMO_FINGERPRINT_KEY` (log fingerprints keyed by it: equal in every process given it),
//! `DEMO_PUBLIC_ORIGIN` (the origin DPoP proofs must name in `htu`; `http://ADDR` as bound
//! by default), `DEMO_INTROSPECTION_URL` (an RFC 7662 endpoint: the Bearer routes
//! introspect every token that is not a JWS of `DEMO_ISSUER`, as client
//! `DEMO_INTROSPECTION_CLIENT_ID`/`DEMO_INTROSPECTION_CLIENT_SECRET`, `demo-rs`/
//! `demo-rs-secret` by default, with `client_secret_basic`; active answers cached at most
//! `DEMO_INTROSPECTION_CACHE_S`, 60 s by default, never past the token's `exp`; with
//! `DEMO_REDIS_URL` the answers are shared by every demo process),
//! `DEMO_CLIENT_ID` (`demo-rs`: the `aud` of the back-channel logout tokens
//! `POST /backchannel-logout` takes), `DEMO_TLS_ADDR` (a second listener serving HTTPS
//! with a self-signed certificate made at start-up; it asks for a client certificate,
//! accepts any, and hands it to the layer for `GET /mtls`), `DEMO_TRUSTED_PROXIES`
//! (comma-separated addresses or CIDRs whose `Client-Cert` and `X-Forwarded-For` headers
//! are believed), `DEMO_THROTTLE_FAILURES` (10: failed attempts from one address within
//! 60 s after which `/basic` and `/key` answer 429 `throttled`; with `DEMO_REDIS_URL`
//! counted by every demo process together). In JSON log mode every decision is also an
//! audit record on stdout (target `auth_diagnostics::audit`).
//!
//! ```text
//! DEMO_TLS_ADDR=127.0.0.1:3443 cargo run --example demo
//! # then: curl -k --cert client.pem --key client-key.pem https://127.0.0.1:3443/mtls \
//! #   -H "Authorization: Bearer $TOKEN"   (a token whose cnf.x5t#S256 names client.pem)
//! ```
//!
//! ```text
//! DEMO_APP_ADDR=127.0.0.1:3001 cargo run --example demo
//! # then open http://127.0.0.1:3001/app, and http://127.0.0.1:3000/session
//! ```

use auth_diagnostics::api_key::{ApiKey, ApiKeyAuthenticator};
use auth_diagnostics::audit::Audit;
use auth_diagnostics::authz::{AccountStatus, RequireScope, RequireStepUp, ResourceMetadata};
use auth_diagnostics::basic::{BasicAuthenticator, BasicCredentials};
use auth_diagnostics::dpop::Dpop;
use auth_diagnostics::failure::AuthFailure;
use auth_diagnostics::introspection::Introspector;
use auth_diagnostics::jwt::{Claims, JwtAuthenticator};
use auth_diagnostics::keys::{KeySource, StaticKey};
use auth_diagnostics::layer::{
    AuthRequestId, CertificateHeader, ClientCertificate, DetailMode, OneLine, TrustedProxies,
};
use auth_diagnostics::session::{BackchannelLogout, SessionAuthenticator, SessionCookie};
use auth_diagnostics::store::RedisStore;
use auth_diagnostics::store::{MemoryRevocationList, Revocation, RevocationList};
use auth_diagnostics::throttle::Throttle;
use auth_diagnostics::verify::AuthResult;
use auth_diagnostics::websocket::{Expiring, WebSocketAuth};
use auth_diagnostics::{AuthDiagnostics, Principal, Reason};
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::ConnectInfo;
use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, CryptoProvider,
};
use tokio_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime,
};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{
    DigitallySignedStruct, DistinguishedName, Error as TlsError, ServerConfig, SignatureScheme,
};
use tokio_rustls::TlsAcceptor;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The demo's settings, read from `DEMO_*` variables.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub addr: String,
    pub json_logs: bool,
    pub detail: DetailMode,
    pub jwt_secret: String,
    pub issuer: String,
    pub audience: String,
    /// A JWK set whose keys verify tokens beside the HS256 secret.
    pub jwks_url: Option<String>,
    /// An issuer whose discovery document names the JWK set.
    pub oidc_issuer: Option<String>,
    /// Serve the layer's metrics at `GET /metrics` (Prometheus text format).
    pub metrics: bool,
    /// The address of the browser page (`/app`, [`page`]), as bound: its origin, and its
    /// `localhost` spelling, may call the demo cross-origin (CORS, with credentials).
    pub app_addr: Option<String>,
    /// A Redis that several demo processes share: DPoP replays and last known good key
    /// sets.
    pub redis_url: Option<String>,
    /// Text the log fingerprints' key is derived from: equal text, equal fingerprints.
    pub fingerprint_key: Option<String>,
    /// The origin DPoP proofs must name in `htu` (`DEMO_PUBLIC_ORIGIN`); `None`:
    /// `http://ADDR` as bound.
    pub public_origin: Option<String>,
    /// Opaque tokens on the Bearer routes (`DEMO_INTROSPECTION_*`).
    pub introspection: Option<DemoIntrospection>,
    /// The demo's client id at the provider (`DEMO_CLIENT_ID`, `demo-rs`): the `aud` of
    /// back-channel logout tokens.
    pub client_id: String,
}

/// Where and as whom the demo introspects opaque tokens (RFC 7662).
#[derive(Debug, Clone)]
pub struct DemoIntrospection {
    /// `DEMO_INTROSPECTION_URL`.
    pub url: String,
    /// `DEMO_INTROSPECTION_CLIENT_ID` (`demo-rs`).
    pub client_id: String,
    /// `DEMO_INTROSPECTION_CLIENT_SECRET` (`demo-rs-secret`).
    pub client_secret: String,
    /// `DEMO_INTROSPECTION_CACHE_S` (60): the longest an active answer is used.
    pub cache_s: u64,
}

impl DemoIntrospection {
    fn from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Some(Self {
            url: var("DEMO_INTROSPECTION_URL")?,
            client_id: var("DEMO_INTROSPECTION_CLIENT_ID").unwrap_or_else(|| "demo-rs".into()),
            client_secret: var("DEMO_INTROSPECTION_CLIENT_SECRET")
                .unwrap_or_else(|| "demo-rs-secret".into()),
            cache_s: var("DEMO_INTROSPECTION_CACHE_S").map_or(60, |s| {
                s.parse()
                    .unwrap_or_else(|_| panic!("DEMO_INTROSPECTION_CACHE_S: {s:?} is no number"))
            }),
        })
    }

    /// The introspector for the demo's issuer and audience.
    fn introspector(&self, cfg: &DemoConfig) -> Introspector {
        Introspector::new(&self.url)
            .client_secret_basic(&self.client_id, &self.client_secret)
            .issuer(&cfg.issuer)
            .audience(&cfg.audience)
            .cache_max_age(Duration::from_secs(self.cache_s))
    }
}

impl DemoConfig {
    pub fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        let set = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let oidc_issuer = set("DEMO_OIDC_ISSUER");
        let issuer = set("DEMO_ISSUER")
            .or_else(|| oidc_issuer.clone())
            .unwrap_or_else(|| "https://issuer.demo.local".into());
        Self {
            addr: var("DEMO_ADDR", "127.0.0.1:3000"),
            json_logs: var("DEMO_LOG_FORMAT", "pretty").eq_ignore_ascii_case("json"),
            detail: if var("DEMO_DETAIL", "verbose").eq_ignore_ascii_case("production") {
                DetailMode::Production
            } else {
                DetailMode::Verbose
            },
            jwt_secret: var("DEMO_JWT_SECRET", "demo-hs256-secret"),
            issuer,
            audience: var("DEMO_AUDIENCE", "demo-api"),
            jwks_url: set("DEMO_JWKS_URL"),
            oidc_issuer,
            metrics: set("DEMO_METRICS")
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
            app_addr: set("DEMO_APP_ADDR"),
            redis_url: set("DEMO_REDIS_URL"),
            fingerprint_key: set("DEMO_FINGERPRINT_KEY"),
            public_origin: set("DEMO_PUBLIC_ORIGIN"),
            introspection: DemoIntrospection::from_env(),
            client_id: var("DEMO_CLIENT_ID", "demo-rs"),
        }
    }
}

/// What sits in front of the demo (`DEMO_TLS_ADDR`, `DEMO_TRUSTED_PROXIES`): kept apart
/// from [`DemoConfig`], which the test suites build field by field.
#[derive(Debug, Clone, Default)]
pub struct DemoEdge {
    /// `DEMO_TLS_ADDR`: a second listener serving HTTPS ([`serve_tls`]).
    pub tls_addr: Option<String>,
    /// `DEMO_TRUSTED_PROXIES`: comma-separated addresses or CIDRs whose forwarding headers
    /// (`Client-Cert`, `X-Forwarded-For`) are believed; from anyone else they are ignored.
    pub trusted_proxies: Option<String>,
    /// `DEMO_THROTTLE_FAILURES`: failures from one client address within 60 s after which
    /// `/basic` and `/key` answer 429 `throttled` (`None`: 10).
    pub throttle_failures: Option<u32>,
}

impl DemoEdge {
    pub fn from_env() -> Self {
        let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            tls_addr: set("DEMO_TLS_ADDR"),
            trusted_proxies: set("DEMO_TRUSTED_PROXIES"),
            throttle_failures: set("DEMO_THROTTLE_FAILURES").map(|n| {
                n.parse()
                    .unwrap_or_else(|_| panic!("DEMO_THROTTLE_FAILURES: {n:?} is no number"))
            }),
        }
    }
}

/// The demo's router with nothing in front: no TLS listener, no trusted proxy.
pub fn app(cfg: &DemoConfig) -> Router {
    app_with(cfg, &DemoEdge::default())
}

/// The demo's router, as `main` serves it. `cfg.addr` is the address as bound: the MCP
/// resource identifier is `http://ADDR/mcp`. `edge` says which proxies' forwarding headers
/// are believed.
pub fn app_with(cfg: &DemoConfig, edge: &DemoEdge) -> Router {
    // The secret belongs to the demo's issuer (which may differ from DEMO_OIDC_ISSUER's).
    let secret = StaticKey::hs256(&cfg.jwt_secret).with_issuer(&cfg.issuer);
    let mut jwt = JwtAuthenticator::new(secret)
        .issuer(&cfg.issuer)
        .audience(&cfg.audience)
        .require_claims(["sub"])
        .leeway(Duration::from_secs(30));
    // An identity provider's keys beside the secret: fetched in the background, refreshed
    // on rotation; the issuer and audience stay the demo's.
    // With DEMO_REDIS_URL, several demo processes are one service: DPoP proofs are used
    // once across all of them, and one that starts while the identity provider is down
    // serves with the key set another one fetched.
    let redis = cfg
        .redis_url
        .as_deref()
        .map(|url| RedisStore::open(url).unwrap_or_else(|e| panic!("DEMO_REDIS_URL: {e}")));
    // Stored key sets carry a MAC: the demo's processes share the JWT secret, so the key
    // is derived from it.
    let share_key = {
        use sha2::{Digest, Sha256};
        Sha256::digest(format!("demo shared key sets: {}", cfg.jwt_secret))
    };
    let shared = |source: KeySource| match &redis {
        Some(redis) => source.shared_store(redis.clone(), share_key),
        None => source,
    };
    if let Some(url) = &cfg.jwks_url {
        jwt = jwt.key_source(shared(KeySource::jwks(url)));
    }
    if let Some(issuer) = &cfg.oidc_issuer {
        jwt = jwt.key_source(shared(KeySource::discover(issuer)));
    }
    // The origin DPoP proofs name: never what a request's Host says.
    let origin = match &cfg.public_origin {
        Some(origin) => origin.clone(),
        None => format!("http://{}", cfg.addr),
    };
    let mut dpop = Dpop::new(jwt.clone()).public_origin(origin);
    if let Some(redis) = &redis {
        dpop = dpop.replay_store(redis.clone());
    }
    let mut base = AuthDiagnostics::new()
        .realm("demo")
        .detail_mode(cfg.detail)
        // The demo's 403s to anonymous requests always mean "who are you?" (/legacy-forbidden).
        .correct_forbidden_without_credentials();
    if let Some(text) = &cfg.fingerprint_key {
        use sha2::{Digest, Sha256};
        base = base.fingerprint_key(Sha256::digest(format!("demo fingerprints: {text}")));
    }
    // In JSON log mode every decision is also an audit record on stdout (the tracing
    // target auth_diagnostics::audit), accepts included.
    if cfg.json_logs {
        base = base.audit(Audit::new());
    }
    // Tokens and sessions revoked with POST /revoke: refused on every route from then on
    // (with DEMO_REDIS_URL, by every demo process sharing that Redis).
    let revoked: Arc<dyn RevocationList> = match &redis {
        Some(redis) => Arc::new(redis.clone()),
        None => Arc::new(MemoryRevocationList::new()),
    };
    base = base.revocation(revoked.clone());
    // Forwarding headers (Client-Cert, X-Forwarded-For) are believed from these peers only.
    if let Some(list) = &edge.trusted_proxies {
        let proxies: TrustedProxies = list
            .parse()
            .unwrap_or_else(|e| panic!("DEMO_TRUSTED_PROXIES: {e}"));
        base = base.trusted_proxies(proxies);
    }

    // The Bearer routes' layer: JWTs of the demo's issuer, and with DEMO_INTROSPECTION_URL
    // every other token introspected.
    let bearer_layer = match &cfg.introspection {
        Some(i) => {
            let mut introspector = i.introspector(cfg);
            // With DEMO_REDIS_URL every demo process shares the answers (sealed with a
            // key derived from the JWT secret, which they share).
            if let Some(redis) = &redis {
                use sha2::{Digest, Sha256};
                let key = Sha256::digest(format!("demo introspection: {}", cfg.jwt_secret));
                introspector = introspector.shared_cache(redis.clone(), key);
            }
            base.clone().introspection(introspector)
        }
        None => base.clone(),
    };

    // Each scheme's layer wraps its routes only (`route_layer`): with `layer` it would wrap
    // the router's fallback too, and the last one merged would answer every unknown path
    // with its challenge instead of 404.
    let bearer = Router::new()
        .route("/me", get(me))
        .route("/orders", get(orders))
        .route(
            "/admin",
            get(admin).route_layer(RequireScope::new(["admin"])),
        )
        // RFC 9470: a valid token is not enough here; the login must be MFA, and recent.
        .route(
            "/stepup",
            get(hello).route_layer(
                RequireStepUp::new()
                    .acr_values(["urn:demo:mfa"])
                    .max_age(Duration::from_secs(300)),
            ),
        )
        .route_layer(bearer_layer.clone().bearer(jwt.clone()));
    // RFC 9728 + MCP: every challenge points at the metadata document, which names the
    // authorization server; a 401 says which scope to ask for.
    let meta = ResourceMetadata::new(format!("http://{}/mcp", cfg.addr))
        .authorization_servers([cfg.issuer.as_str()])
        .scopes_supported(["mcp:tools"])
        .resource_name("auth-diagnostics demo MCP resource")
        // A demo may listen on any address; production identifiers are https.
        .allow_http();
    let mcp = Router::new().route("/mcp", get(hello)).route_layer(
        base.clone()
            .bearer(jwt.clone())
            .resource_metadata(meta.clone())
            .require_scope(["mcp:tools"]),
    );
    // RFC 9449: sender-constrained tokens, each request with its own proof.
    let dpop = Router::new()
        .route("/dpop", get(hello))
        .route_layer(base.clone().dpop(dpop));
    // Guessing slowed down: after DEMO_THROTTLE_FAILURES failed attempts from one address
    // within 60 s, /basic and /key answer 429 before checking anything (one count for
    // both; with DEMO_REDIS_URL, one for every demo process).
    let mut throttle = Throttle::new().per_address(
        edge.throttle_failures.unwrap_or(10),
        Duration::from_secs(60),
    );
    if let Some(redis) = &redis {
        use sha2::{Digest, Sha256};
        let key = Sha256::digest(format!("demo throttling: {}", cfg.jwt_secret));
        throttle = throttle.shared(redis.clone(), key);
    }
    let basic = Router::new().route("/basic", get(hello)).route_layer(
        base.clone()
            .basic(BasicAuthenticator::new(check_password))
            .account_status(account)
            .throttle(throttle.clone()),
    );
    let key = Router::new().route("/key", get(hello)).route_layer(
        base.clone()
            .api_key(ApiKeyAuthenticator::new(check_key))
            .throttle(throttle),
    );
    // A page navigation that fails goes to the login page (303); fetch and other clients
    // keep the 401. A POST the cookie authenticated must come from this origin (CSRF).
    let session =
        Router::new()
            .route("/session", get(hello).post(session_post))
            .route_layer(base.clone().session(
                SessionAuthenticator::new("demo_session", check_session).login_url("/login"),
            ));
    // Rolling out: every check of /me runs, but a request it would refuse reaches the
    // handler anonymously (no principal); its log event says enforced=false.
    let report_only = Router::new()
        .route("/report-only", get(maybe))
        .route_layer(bearer_layer.clone().bearer(jwt.clone()).report_only());
    // No credentials at all: the handler runs anonymously. Bad credentials: 401 as on /me.
    let maybe = Router::new()
        .route("/maybe", get(maybe))
        .route_layer(bearer_layer.clone().bearer(jwt.clone()).optional());
    // The provider's back-channel logout: its logout token, verified with the demo's keys,
    // revokes the session (sid) or user (sub) it names. Outside any scheme's layer: the
    // logout token is the credential.
    let mut logout = BackchannelLogout::new(jwt.clone(), &cfg.client_id, revoked.clone());
    if let Some(redis) = &redis {
        logout = logout.replay_store(redis.clone());
    }
    if cfg.json_logs {
        logout = logout.audit(Audit::new());
    }
    let backchannel = Router::new().route("/backchannel-logout", post(logout.handler()));
    // An administrator's JWT (scope admin) revokes a token's jti, a session's sid or a sub.
    let revoke = Router::new()
        .route(
            "/revoke",
            post(move |body: Bytes| revoke(revoked, body))
                .route_layer(RequireScope::new(["admin"])),
        )
        .route_layer(base.clone().bearer(jwt.clone()));
    // A WebSocket that echoes text: the token from Authorization or, for browsers, from
    // `Sec-WebSocket-Protocol: bearer, <token>`; or the session cookie. A refused upgrade
    // is completed and closed with 4401/4403 and the reason (a browser cannot read a 401),
    // and the socket is closed with 4401 `token_expired` when the token expires.
    let ws = Router::new()
        .route("/ws", get(ws_echo))
        .route_layer(
            bearer_layer
                .clone()
                .bearer(jwt.clone())
                .session(SessionAuthenticator::new("demo_session", check_session)),
        )
        // The session cookie counts only from this origin and the page's (DEMO_APP_ADDR):
        // any site's page could open a socket with it otherwise.
        .route_layer(
            WebSocketAuth::new().close_on_reject().cookie_origins(
                cfg.app_addr
                    .as_deref()
                    .map(page_origins)
                    .unwrap_or_default(),
            ),
        );
    // RFC 8705: a token bound to a client certificate (`cnf.x5t#S256`). The certificate
    // comes from this connection's TLS (DEMO_TLS_ADDR), or from a trusted proxy that ended
    // TLS and forwarded it as RFC 9440 `Client-Cert`.
    let mtls = Router::new().route("/mtls", get(me)).route_layer(
        bearer_layer
            .clone()
            .certificate_from_tls()
            .certificate_header(CertificateHeader::ClientCert)
            .bearer(jwt.clone()),
    );
    // Multi-tenant issuers (Entra ID's, say): one issuer per tenant,
    // https://login.demo.local/{tid}/v2.0, cross-checked with the token's tid, tenants t1 and
    // t2 accepted; signed with the demo secret.
    let tenant = Router::new().route("/tenant", get(me)).route_layer(
        base.clone().bearer(
            JwtAuthenticator::new(StaticKey::hs256(&cfg.jwt_secret))
                .issuer_template("https://login.demo.local/{tid}/v2.0", "tid")
                .tenants(["t1", "t2"])
                .audience(&cfg.audience)
                .require_claims(["sub"])
                .leeway(Duration::from_secs(30)),
        ),
    );
    let any = Router::new().route("/any", get(hello)).route_layer(
        bearer_layer
            .bearer(jwt)
            .basic(BasicAuthenticator::new(check_password))
            .account_status(account),
    );

    // Scraped without credentials, like /public; there only when DEMO_METRICS asks for it.
    let mut metrics = Router::new();
    if cfg.metrics {
        let handle = prometheus();
        metrics = metrics.route(
            "/metrics",
            get(move || async move { ([(CONTENT_TYPE, PROMETHEUS_TEXT)], handle.render()) }),
        );
    }

    let router = Router::new()
        .route("/public", get(|| async { Json(json!({ "public": true })) }))
        .route("/login", get(login_page))
        .route("/legacy", get(legacy))
        .route("/legacy-forbidden", get(legacy_forbidden))
        .merge(metrics)
        .merge(bearer)
        .merge(basic)
        .merge(key)
        .merge(report_only)
        .merge(session)
        .merge(maybe)
        .merge(any)
        .merge(tenant)
        .merge(ws)
        .merge(mtls)
        .merge(mcp)
        .merge(meta.router())
        .merge(dpop)
        .merge(revoke)
        .merge(backchannel)
        // With no scheme: request ids for every route, and it watches (and in enforce mode
        // corrects) what the routes answer by themselves.
        .layer(base);
    match &cfg.app_addr {
        // CORS outside every auth layer: a preflight never meets authentication, and every
        // answer, rejections and corrected ones included, carries the CORS headers.
        Some(app_addr) => router
            .layer(cors(app_addr))
            // The CORS layer answers preflights itself: they get a request id here.
            .layer(middleware::from_fn(request_id_on_preflight)),
        None => router,
    }
}

/// The router of the second listener (`DEMO_APP_ADDR`): `GET /app`, a page on another
/// origin whose script calls the demo (`http://ADDR`, as bound) with `fetch`, and whose form
/// posts to the demo's `/session` (a forged cross-site request, which the demo refuses).
pub fn page(cfg: &DemoConfig) -> Router {
    let html = APP_PAGE.replace("{{DEMO}}", &html_escape(&demo_url(&cfg.addr)));
    Router::new().route("/app", get(move || async move { Html(html) }))
}

/// The demo's URL for a browser: an unspecified address (`0.0.0.0`, `[::]`) becomes the
/// loopback one.
fn demo_url(addr: &str) -> String {
    match addr.parse::<std::net::SocketAddr>() {
        Ok(a) if a.ip().is_unspecified() => {
            let ip: std::net::IpAddr = if a.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            format!("http://{}", std::net::SocketAddr::new(ip, a.port()))
        }
        _ => format!("http://{addr}"),
    }
}

/// The origins of the page at `app_addr`: `http://APP_ADDR`, and for a loopback (or
/// unspecified) address its other spellings, `http://localhost:PORT` and
/// `http://127.0.0.1:PORT`.
pub fn page_origins(app_addr: &str) -> Vec<String> {
    let mut origins = vec![format!("http://{app_addr}")];
    if let Some((host, port)) = app_addr.rsplit_once(':') {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
        if loopback {
            for other in [
                format!("http://localhost:{port}"),
                format!("http://127.0.0.1:{port}"),
            ] {
                if !origins.iter().any(|o| o.eq_ignore_ascii_case(&other)) {
                    origins.push(other);
                }
            }
        }
    }
    origins
}

/// CORS for the page's origins: with credentials (cookies), GET and POST, the request
/// headers of the demo's schemes, and the response headers a client needs to read a
/// rejection (the challenge, the request id, a DPoP nonce).
fn cors(app_addr: &str) -> CorsLayer {
    let origins = page_origins(app_addr)
        .into_iter()
        .filter_map(|o| HeaderValue::from_str(&o.to_ascii_lowercase()).ok());
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            HeaderName::from_static("dpop"),
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            WWW_AUTHENTICATE,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("dpop-nonce"),
        ])
}

/// Gives a response that has no `x-request-id` (a preflight the CORS layer answered) the
/// request's own id when it is sane, a fresh one otherwise: the layer's rule.
async fn request_id_on_preflight(mut req: Request, next: Next) -> Response {
    let id = AuthRequestId::ensure(req.headers_mut());
    let mut response = next.run(req).await;
    response
        .headers_mut()
        .entry("x-request-id")
        .or_insert_with(|| id.header_value().clone());
    response
}

/// `&`, `<`, `>`, `"` and `'` as character references, for text put into HTML.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The login page of the session routes. The demo has one session, `s-valid` (alice): the
/// button sets that cookie and goes back to `return_to`, resolved against this page's
/// origin as the browser resolves it, and only when the origin stays this one (else `/`):
/// `//host`, `/\host` and `/<tab>/host` are all another host to a browser.
const LOGIN_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · auth-diagnostics demo</title>
</head>
<body>
<h1>Sign in</h1>
<p>A page navigation to a session route without a valid session lands here, with
<code>return_to</code> the page it asked for; <code>fetch</code> and other clients get the
401 with its challenge instead.</p>
<p>The demo's session store knows one session: <code>demo_session=s-valid</code>, user alice.</p>
<p><button id="sign-in" type="button">Sign in as alice</button> and go back to
<code id="return-to">/session</code>.</p>
<script>
// Resolved the way the browser will resolve it (the URL parser drops tabs and line breaks,
// and reads a backslash as a slash), and followed only when it stays on this origin.
const asked = new URLSearchParams(location.search).get("return_to") || "/session";
let back = new URL("/", location.origin);
try {
  const url = new URL(asked, location.origin);
  if (url.origin === location.origin) back = url;
} catch (_) {
  // Not a URL at all: go home.
}
document.getElementById("return-to").textContent = back.pathname + back.search + back.hash;
document.getElementById("sign-in").addEventListener("click", () => {
  document.cookie = "demo_session=s-valid; path=/; SameSite=Lax";
  location.assign(back.href);
});
</script>
</body>
</html>
"#;

/// The page of the second listener; `{{DEMO}}` is the demo's URL (HTML-escaped).
const APP_PAGE: &str = r#"<!doctype html>
<html lang="en" data-demo="{{DEMO}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Another origin · auth-diagnostics demo</title>
</head>
<body>
<h1>Another origin calling the demo</h1>
<p>This page calls the demo at <code>{{DEMO}}</code> with <code>fetch</code>. The demo's CORS
allows this origin, so a rejection is readable here, status, <code>WWW-Authenticate</code> and
problem body, rather than a bare "CORS error".</p>
<table>
<thead><tr><th>request</th><th>status</th><th>WWW-Authenticate</th><th>body</th></tr></thead>
<tbody id="results"></tbody>
</table>
<h2>A forged form post</h2>
<p>This form posts to the demo's <code>/session</code> from this origin. With a session cookie
for the demo, the browser sends it along when this page is the same site (127.0.0.1 on
another port); the demo refuses the post: 403 <code>cross_site_request</code>.</p>
<form id="forged" method="post" action="{{DEMO}}/session">
<input type="hidden" name="note" value="forged">
<button type="submit">POST /session from this origin</button>
</form>
<script>
const DEMO = document.documentElement.dataset.demo;

// One cross-origin request: what a script on this page can read of the answer.
async function probe(path, headers = {}) {
  try {
    const r = await fetch(DEMO + path, { headers, credentials: "include" });
    const text = await r.text();
    let body = null;
    try { body = JSON.parse(text); } catch { body = text; }
    return {
      status: r.status,
      www_authenticate: r.headers.get("www-authenticate"),
      request_id: r.headers.get("x-request-id"),
      content_type: r.headers.get("content-type"),
      body,
      error: null,
    };
  } catch (e) {
    return { status: null, error: String(e) };
  }
}
window.probe = probe;

window.checks = (async () => {
  const rows = [
    ["GET /me", "/me", {}],
    ["GET /maybe", "/maybe", {}],
    ["GET /maybe with a bad token", "/maybe", { authorization: "Bearer not-a-token" }],
  ];
  const out = {};
  for (const [name, path, headers] of rows) {
    const r = await probe(path, headers);
    out[name] = r;
    const tr = document.createElement("tr");
    const shown = r.error ?? (typeof r.body === "string" ? r.body : JSON.stringify(r.body));
    for (const cell of [name, r.status ?? "failed", r.www_authenticate ?? "", shown]) {
      const td = document.createElement("td");
      td.textContent = String(cell);
      tr.append(td);
    }
    document.getElementById("results").append(tr);
  }
  return out;
})();
</script>
</body>
</html>
"#;

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The process's Prometheus recorder, installed on first use: a `metrics` recorder is
/// global, and the tests build the app several times in one process.
fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Buckets (seconds) make the verification time a histogram rather than a summary.
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("auth_diagnostics_verification_duration_seconds".into()),
                &[
                    0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
                ],
            )
            .expect("the bucket list is not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        auth_diagnostics::layer::describe_metrics();
        // Without the exporter's own HTTP listener nothing drains the histograms between
        // scrapes: do it here, so samples do not pile up when nobody scrapes.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            })
            .expect("spawn the metrics upkeep thread");
        handle
    })
}

async fn me(principal: Principal, Claims(claims): Claims<Value>) -> Json<Value> {
    Json(json!({
        "sub": principal.id(),
        "scopes": principal.scopes().collect::<Vec<_>>(),
        "claims": claims,
    }))
}

async fn admin(principal: Principal) -> Json<Value> {
    Json(json!({ "sub": principal.id(), "admin": true }))
}

/// Refuses a revoked token itself (401 `invalid_token`, which the layer keeps), and
/// wrongly answers 401 to a valid token without scope `orders` (it means 403).
async fn orders(principal: Principal) -> Response {
    let jti = principal
        .claims()
        .and_then(|c| c.get("jti"))
        .and_then(Value::as_str);
    if jti == Some("revoked") {
        return (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)],
        )
            .into_response();
    }
    if principal.has_scope("orders") {
        Json(json!({ "orders": [], "sub": principal.id() })).into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(CONTENT_TYPE, "application/problem+json")],
            r#"{"status":401,"title":"Unauthorized"}"#,
        )
            .into_response()
    }
}

/// A hand-written check that answers a bare 401, without a challenge.
async fn legacy(headers: HeaderMap) -> Response {
    let ok = headers
        .get(AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == b"Bearer legacy-token");
    if ok {
        Json(json!({ "legacy": true })).into_response()
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

/// Wrongly answers 403 to requests that carry no credentials at all (it means 401).
async fn legacy_forbidden(headers: HeaderMap) -> Response {
    if headers.contains_key(AUTHORIZATION) {
        Json(json!({ "legacy_forbidden": true })).into_response()
    } else {
        StatusCode::FORBIDDEN.into_response()
    }
}

async fn hello(principal: Principal) -> Json<Value> {
    Json(json!({ "id": principal.id(), "scheme": principal.scheme() }))
}

/// `GET /ws`: selects the first protocol offered besides `bearer` (with none,
/// `WebSocketAuth` selects `bearer`), then echoes text frames until the client leaves or
/// the token expires.
async fn ws_echo(ws: WebSocketUpgrade, principal: Principal, headers: HeaderMap) -> Response {
    let other = headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|p| !p.is_empty() && *p != "bearer")
        .map(str::to_owned);
    let ws = match other {
        Some(protocol) => ws.protocols([protocol]),
        None => ws,
    };
    ws.on_upgrade(move |socket| echo(socket, principal))
}

async fn echo(socket: WebSocket, principal: Principal) {
    let mut socket = Expiring::new(socket, &principal);
    // A close frame from the client is answered by the socket on the next `recv`, which
    // then ends the loop: breaking out at once would leave the close unanswered (1006).
    while let Some(Ok(message)) = socket.recv().await {
        if matches!(message, Message::Text(_)) && socket.send(message).await.is_err() {
            break;
        }
    }
}

/// Reached only with a valid session, from this origin (the layer checks `Origin`).
async fn session_post(principal: Principal) -> Json<Value> {
    Json(json!({ "id": principal.id(), "scheme": principal.scheme(), "updated": true }))
}

/// Anonymous when the request carried no credentials at all.
async fn maybe(principal: Option<Principal>) -> Json<Value> {
    match principal {
        Some(p) => Json(json!({ "sub": p.id(), "scheme": p.scheme() })),
        None => Json(json!({ "anonymous": true })),
    }
}

async fn login_page() -> Html<&'static str> {
    Html(LOGIN_PAGE)
}

/// The demo's user store. A real one compares password hashes (argon2, bcrypt) and, for
/// an unknown user, still checks one dummy hash so both failures take the same time.
/// `POST /revoke`: `{"jti": "…"}`, `{"sid": "…"}` or `{"sub": "…"}` (a sub's tokens issued
/// until now, and its sessions) → 204; anything else 400.
async fn revoke(list: Arc<dyn RevocationList>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let revocation = match (text("jti"), text("sid"), text("sub")) {
        (Some(jti), None, None) => Revocation::jti(jti),
        (None, Some(sid), None) => Revocation::sid(sid),
        (None, None, Some(sub)) => Revocation::sub(sub),
        _ => {
            let description = r#"send one of {"jti": "…"}, {"sid": "…"} or {"sub": "…"}"#;
            let body = json!({ "error": "invalid_request", "error_description": description });
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    match list.revoke(revocation).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            let body =
                json!({ "error": "temporarily_unavailable", "error_description": e.to_string() });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

async fn check_password(c: BasicCredentials) -> AuthResult {
    let stored = match c.user.as_str() {
        "alice" => "wonderland",
        "mallory" => "mallory-pass",
        _ => return Err(AuthFailure::new(Reason::BasicUserUnknown)),
    };
    if c.password.ct_eq(stored) {
        Ok(Principal::new(c.user))
    } else {
        Err(AuthFailure::new(Reason::BasicPasswordMismatch))
    }
}

fn account(p: &Principal) -> std::future::Ready<Result<AccountStatus, AuthFailure>> {
    let status = if p.id() == Some("mallory") {
        AccountStatus::Disabled
    } else {
        AccountStatus::Active
    };
    std::future::ready(Ok(status))
}

async fn check_key(ApiKey(key): ApiKey) -> AuthResult {
    if key.ct_eq("demo-key-123") {
        Ok(Principal::new("demo-key-owner"))
    } else if key.ct_eq("demo-key-revoked") {
        Err(AuthFailure::new(Reason::ApiKeyRevoked).detail("the key was revoked"))
    } else {
        Err(AuthFailure::new(Reason::ApiKeyUnknown))
    }
}

async fn check_session(SessionCookie(id): SessionCookie) -> AuthResult {
    if id.ct_eq("s-valid") {
        // Its session id: what POST /revoke {"sid": "demo-session-1"} names.
        Ok(Principal::new("alice").with_session_id("demo-session-1"))
    } else if id.ct_eq("s-expired") {
        Err(AuthFailure::new(Reason::SessionExpired).detail("the session expired"))
    } else {
        Err(AuthFailure::new(Reason::SessionInvalid))
    }
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.event_format(OneLine::default()).init();
    }
}

#[allow(dead_code)]
#[tokio::main]
async fn main() {
    let cfg = DemoConfig::from_env();
    init_logs(cfg.json_logs);
    let listener = match tokio::net::TcpListener::bind(&cfg.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", cfg.addr);
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().expect("bound socket has an address");
    // The page's listener, bound first: the CORS origins are its address as bound.
    let mut page_listener = None;
    let mut app_addr = None;
    if let Some(want) = &cfg.app_addr {
        match tokio::net::TcpListener::bind(want).await {
            Ok(l) => {
                app_addr = Some(l.local_addr().expect("bound socket").to_string());
                page_listener = Some(l);
            }
            Err(e) => {
                eprintln!("cannot listen on {want} (DEMO_APP_ADDR): {e}");
                std::process::exit(1);
            }
        }
    }
    let cfg = DemoConfig {
        addr: addr.to_string(),
        app_addr,
        ..cfg
    };
    let edge = DemoEdge::from_env();
    let app = app_with(&cfg, &edge);
    if let (Some(l), Some(at)) = (page_listener, &cfg.app_addr) {
        let page = page(&cfg);
        tokio::spawn(async move { axum::serve(l, page).await.expect("page server error") });
        // Before the start-up line: once that is out, both listeners accept connections.
        announce(
            &cfg,
            &format!("cross-origin page at http://{at}/app (DEMO_APP_ADDR)"),
        );
    }
    if let Some(url) = &cfg.redis_url {
        let shown = RedisStore::open(url)
            .map(|r| r.url().to_owned())
            .unwrap_or_default();
        announce(
            &cfg,
            &format!("DPoP replays and key sets shared through Redis at {shown}"),
        );
    }
    if let Some(want) = &edge.tls_addr {
        let tls_listener = match tokio::net::TcpListener::bind(want).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot listen on {want} (DEMO_TLS_ADDR): {e}");
                std::process::exit(1);
            }
        };
        let at = tls_listener
            .local_addr()
            .expect("bound socket has an address");
        let tls = tls_config(at.ip());
        tokio::spawn(serve_tls(tls_listener, app.clone(), tls));
        // Before the plain listener's line: once that is out, both accept connections.
        announce(
            &cfg,
            &format!("auth-diagnostics demo listening on https://{at} (DEMO_TLS_ADDR)"),
        );
    }
    announce(
        &cfg,
        &format!(
            "auth-diagnostics demo listening on http://{addr} (detail: {:?})",
            cfg.detail
        ),
    );
    // The peer address (`ConnectInfo`) is what trusted proxies are recognised by.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .expect("server error");
}

/// The TLS configuration of `DEMO_TLS_ADDR`: a self-signed certificate for `localhost`
/// and `ip`, made now and trusted by nobody (clients pass `-k`), and client certificates
/// asked for but optional, any of them accepted.
///
/// No chain is validated: a certificate-bound token (RFC 8705 §3, self-signed
/// certificate binding) is bound to its certificate by the token's `cnf.x5t#S256`, not by
/// a CA. The handshake still proves that the client holds the certificate's private key.
pub fn tls_config(ip: IpAddr) -> Arc<ServerConfig> {
    let mut names = vec!["localhost".to_owned()];
    if !ip.is_unspecified() {
        names.push(ip.to_string());
    }
    let made = rcgen::generate_simple_self_signed(names).expect("a self-signed certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let provider = tls_provider();
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the provider's protocol versions")
        .with_client_cert_verifier(Arc::new(AnyClientCertificate(provider)))
        .with_single_cert(vec![made.cert.der().clone()], key)
        .expect("the certificate fits its key");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The crate's crypto stack: aws-lc-rs by default, ring in a RustCrypto build (where the
/// HTTP client's TLS uses ring too).
fn tls_provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "aws_lc_rs")]
    let provider = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(not(feature = "aws_lc_rs"))]
    let provider = tokio_rustls::rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

/// Asks every client for a certificate and takes any, or none: the binding is checked by
/// the layer against the token. Handshake signatures are verified, so a client cannot
/// present a certificate whose key it does not hold.
#[derive(Debug)]
struct AnyClientCertificate(Arc<CryptoProvider>);

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Serves `app` over TLS on `listener` until the task is dropped. Each request carries
/// its connection's peer address (`ConnectInfo<SocketAddr>`, as on the plain listener) and
/// the client certificate the handshake presented, if any.
pub async fn serve_tls(listener: tokio::net::TcpListener, app: Router, tls: Arc<ServerConfig>) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors, or a connection reset before it was accepted: the
            // listener itself is fine.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            // A client that never finishes its handshake holds only its own task, and not
            // for long.
            let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|der| ClientCertificate::from_der(der.to_vec()));
            let service = tower::ServiceExt::map_request(app, move |mut req: Request<_>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                if let Some(certificate) = &certificate {
                    req.extensions_mut().insert(certificate.clone());
                }
                req
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service),
                )
                .await;
        });
    }
}

/// A start-up line on stdout: a JSON object in JSON mode, like every other line there.
fn announce(cfg: &DemoConfig, line: &str) {
    if cfg.json_logs {
        println!(
            "{}",
            json!({ "level": "INFO", "target": "demo", "message": line })
        );
    } else {
        println!("{line}");
    }
}
