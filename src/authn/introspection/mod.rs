//! Opaque tokens, verified by asking the authorization server (RFC 7662): the
//! [`Introspector`] as configured, and [`Introspection`], the one a layer runs with (its
//! HTTP client and its cache).

mod cache;
mod client;
mod shared;

pub use shared::IntrospectionStore;

use super::verify::AuthFuture;
use super::Principal;
use crate::config_error::{ConfigError, IntrospectionMistake};
use crate::failure::AuthFailure;
use crate::keys::fetch::{check_url, shown_source};
use crate::reason::Reason;
use crate::sanitize::cap;
use crate::time::now_ms;
use cache::{Cache, Settled};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How long a failed discovery stands before a request may try again.
const DISCOVERY_RETRY_MS: i64 = 5_000;

/// What an introspection decided: the principal, or the refusal.
pub(crate) type Outcome = Result<Principal, AuthFailure>;

/// How this server authenticates to the introspection endpoint (RFC 7662 §2.1 requires
/// some authorization; these are OAuth's client authentication methods).
#[derive(Clone)]
pub(crate) enum ClientAuth {
    /// `client_secret_basic` (RFC 6749 §2.3.1): `Authorization: Basic`.
    Basic { id: String, secret: String },
    /// `client_secret_post`: `client_id` and `client_secret` in the form.
    Post { id: String, secret: String },
    /// `private_key_jwt` (RFC 7523 §2.2): a fresh assertion signed with the client's key.
    KeyJwt(Arc<client::Assertion>),
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (method, id) = match self {
            Self::Basic { id, .. } => ("client_secret_basic", id),
            Self::Post { id, .. } => ("client_secret_post", id),
            Self::KeyJwt(a) => ("private_key_jwt", &a.client_id),
        };
        write!(f, "{method}({id:?}, secret: ***)")
    }
}

/// Where the introspection endpoint is: configured, or named by the issuer's discovery
/// document.
#[derive(Clone, Debug)]
enum Endpoint {
    Url(String),
    Discover(String),
}

impl Endpoint {
    /// The configured URL or issuer.
    fn shown(&self) -> &str {
        match self {
            Self::Url(url) | Self::Discover(url) => url,
        }
    }
}

/// Verifies opaque access tokens through an RFC 7662 introspection endpoint.
///
/// Given to the layer with
/// [`AuthDiagnostics::introspection`](crate::AuthDiagnostics::introspection) for Bearer
/// tokens, and to [`Dpop::introspection`](crate::dpop::Dpop::introspection) or
/// [`Dpop::introspected`](crate::dpop::Dpop::introspected) for DPoP-bound ones; see the
/// [`introspection`](crate::introspection) module for how it shares the Bearer scheme with
/// JWTs, what each answer means, and the cache.
///
/// Like a JWT authenticator, it needs an audience (`.audience(..)`) unless told to accept
/// any (`.accept_any_audience()`), and client credentials; a mistake is a
/// [`ConfigError::Introspection`] when the layer is built.
#[derive(Clone, Debug)]
pub struct Introspector {
    endpoint: Endpoint,
    auth: Option<ClientAuth>,
    /// [`Introspector::without_client_authentication`]: no credentials, on purpose.
    unauthenticated: bool,
    /// Why the `private_key_jwt` key given cannot sign.
    key_mistake: Option<String>,
    issuer: Option<String>,
    audiences: Vec<String>,
    any_audience: bool,
    allow_http: bool,
    timeout: Duration,
    max_response_bytes: usize,
    max_age: Duration,
    negative_max_age: Duration,
    capacity: usize,
    /// Answers shared with other replicas, and the length of a key too short for it.
    shared: Option<shared::Shared>,
    shared_key_short: Option<usize>,
}

impl Introspector {
    /// How long one call may take, connecting included, unless
    /// [`timeout`](Self::timeout) says otherwise: 3 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
    /// The largest answer read, unless [`max_response_bytes`](Self::max_response_bytes)
    /// says otherwise: 16 KiB.
    pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024;
    /// The longest an active answer is used, unless [`cache_max_age`](Self::cache_max_age)
    /// says otherwise: 60 s (never past the token's `exp`).
    pub const DEFAULT_CACHE_MAX_AGE: Duration = Duration::from_secs(60);
    /// The longest a refusal (`active: false`, a wrong issuer or audience) is used, unless
    /// [`negative_cache_max_age`](Self::negative_cache_max_age) says otherwise: 5 s.
    pub const DEFAULT_NEGATIVE_CACHE_MAX_AGE: Duration = Duration::from_secs(5);
    /// How many tokens' answers are kept, unless [`cache_capacity`](Self::cache_capacity)
    /// says otherwise: 10 000 (about 34 MiB with typical answers of about 500 bytes).
    pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

    /// Introspects at `endpoint` (`https`, or `http` on a loopback host unless
    /// [`allow_http`](Self::allow_http)).
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self::at(Endpoint::Url(endpoint.into()))
    }

    /// Introspects at the `introspection_endpoint` that `issuer`'s discovery document names:
    /// OpenID Connect's `{issuer}/.well-known/openid-configuration`, or RFC 8414's
    /// `/.well-known/oauth-authorization-server{path}` when that is absent (404). The
    /// document's `issuer` must equal `issuer` byte for byte (RFC 8414 §3.3), and `issuer`
    /// becomes the issuer an answer's `iss` must equal ([`issuer`](Self::issuer)).
    ///
    /// The document is fetched when the layer is built inside a Tokio runtime, else by
    /// the first request that needs it, over the rules of every call (`https`, or `http`
    /// on a loopback host unless [`allow_http`](Self::allow_http); no redirect followed;
    /// the [`timeout`](Self::timeout); at most 256 KiB), and the endpoint it names is
    /// kept for the life of the layer. Until it is found a request gets 503
    /// `introspection_unavailable`, logged at ERROR with the cause; a failed discovery is
    /// tried again by a request at most every 5 s.
    ///
    /// ```
    /// use auth_diagnostics::introspection::Introspector;
    ///
    /// let opaque = Introspector::discover("https://auth.example/realms/shop")
    ///     .client_secret_basic("orders-api", "its-secret")
    ///     .audience("orders-api");
    /// # let _ = opaque;
    /// ```
    pub fn discover(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        Self::at(Endpoint::Discover(issuer.clone())).issuer(issuer)
    }

    fn at(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            auth: None,
            unauthenticated: false,
            key_mistake: None,
            issuer: None,
            audiences: Vec::new(),
            any_audience: false,
            allow_http: false,
            timeout: Self::DEFAULT_TIMEOUT,
            max_response_bytes: Self::DEFAULT_MAX_RESPONSE_BYTES,
            max_age: Self::DEFAULT_CACHE_MAX_AGE,
            negative_max_age: Self::DEFAULT_NEGATIVE_CACHE_MAX_AGE,
            capacity: Self::DEFAULT_CACHE_CAPACITY,
            shared: None,
            shared_key_short: None,
        }
    }

    /// Authenticates to the endpoint with `client_secret_basic`: `Authorization: Basic`
    /// with the form-encoded id and secret (RFC 6749 §2.3.1). Replaces any method set
    /// before.
    pub fn client_secret_basic(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.auth = Some(ClientAuth::Basic {
            id: id.into(),
            secret: secret.into(),
        });
        self
    }

    /// Authenticates to the endpoint with `client_secret_post`: `client_id` and
    /// `client_secret` in the form body. Replaces any method set before.
    pub fn client_secret_post(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.auth = Some(ClientAuth::Post {
            id: id.into(),
            secret: secret.into(),
        });
        self
    }

    /// Authenticates to the endpoint with `private_key_jwt` (RFC 7523 §2.2): each call
    /// carries a fresh assertion (`iss` and `sub` the client id, `aud` the endpoint URL
    /// unless [`client_assertion_audience`](Self::client_assertion_audience) says
    /// otherwise, a random `jti`, valid 60 s) signed with `pem`, a PKCS#8 (or PKCS#1 RSA)
    /// private key for `alg` (RS*, PS*, ES256/384 or EdDSA). A key that cannot sign is a
    /// configuration error. Replaces any method set before.
    pub fn private_key_jwt(
        mut self,
        id: impl Into<String>,
        pem: impl AsRef<[u8]>,
        alg: jsonwebtoken::Algorithm,
    ) -> Self {
        match client::Assertion::new(id.into(), pem.as_ref(), alg) {
            Ok(a) => {
                self.auth = Some(ClientAuth::KeyJwt(Arc::new(a)));
                self.key_mistake = None;
            }
            Err(why) => {
                self.auth = None;
                self.key_mistake = Some(why);
            }
        }
        self
    }

    /// The `kid` in the header of `private_key_jwt` assertions (after
    /// [`private_key_jwt`](Self::private_key_jwt)).
    pub fn client_assertion_kid(mut self, kid: impl Into<String>) -> Self {
        if let Some(ClientAuth::KeyJwt(a)) = &mut self.auth {
            Arc::make_mut(a).kid = Some(kid.into());
        }
        self
    }

    /// The `aud` of `private_key_jwt` assertions, when the authorization server wants
    /// its issuer or token endpoint rather than the introspection endpoint (after
    /// [`private_key_jwt`](Self::private_key_jwt)).
    pub fn client_assertion_audience(mut self, aud: impl Into<String>) -> Self {
        if let Some(ClientAuth::KeyJwt(a)) = &mut self.auth {
            Arc::make_mut(a).audience = Some(aud.into());
        }
        self
    }

    /// Sends no client credentials: for an endpoint protected otherwise, such as Ory
    /// Hydra's admin API on a private network. Without this, one of the methods above is
    /// required (RFC 7662 §2.1 asks the endpoint to authenticate its callers).
    pub fn without_client_authentication(mut self) -> Self {
        self.unauthenticated = true;
        self
    }

    /// The issuer an answer's `iss`, when present, must equal (else 401
    /// `token_issuer_mismatch`).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// An audience this API accepts: an active answer's `aud` (a string or an array) must
    /// contain one (else 401 `token_audience_mismatch`). Call once per audience.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts active tokens whatever their `aud`, or without one: an explicit opt-out,
    /// as for JWTs.
    pub fn accept_any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// Allows an `http` endpoint on a host that is not loopback (a trusted network only:
    /// tokens and client secrets then travel in the clear).
    pub fn allow_http(mut self) -> Self {
        self.allow_http = true;
        self
    }

    /// How long one call may take, connecting included ([`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT)).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest answer read; a larger one is `introspection_unavailable`
    /// ([`DEFAULT_MAX_RESPONSE_BYTES`](Self::DEFAULT_MAX_RESPONSE_BYTES)).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The longest an active answer is used: an entry lives `min(max_age, exp − now)`
    /// ([`DEFAULT_CACHE_MAX_AGE`](Self::DEFAULT_CACHE_MAX_AGE)). Zero asks the endpoint for
    /// every request (concurrent requests with one token still share one call).
    pub fn cache_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// The longest a refusal is used, so a token that becomes valid is not refused for
    /// long ([`DEFAULT_NEGATIVE_CACHE_MAX_AGE`](Self::DEFAULT_NEGATIVE_CACHE_MAX_AGE)).
    pub fn negative_cache_max_age(mut self, max_age: Duration) -> Self {
        self.negative_max_age = max_age;
        self
    }

    /// How many tokens' answers are kept
    /// ([`DEFAULT_CACHE_CAPACITY`](Self::DEFAULT_CACHE_CAPACITY), at least 1).
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Shares answers with every replica through `store` (`RedisStore`, feature `redis`):
    /// a token one replica introspected is not introspected again by the others while
    /// its answer is usable. `key` (at least 16 random bytes, the same on every replica,
    /// kept secret) names each entry by an HMAC of its token and seals it with a MAC, so
    /// the store holds no token and cannot make one active: an entry without a valid MAC,
    /// or past its deadline, is ignored. An entry ends when a local one would (at most
    /// [`cache_max_age`](Self::cache_max_age), never past `exp`; a refusal after
    /// [`negative_cache_max_age`](Self::negative_cache_max_age)). A store that cannot
    /// answer is logged at WARN and the endpoint asked, as without one.
    pub fn shared_cache(mut self, store: impl IntrospectionStore, key: impl AsRef<[u8]>) -> Self {
        let key = key.as_ref();
        if key.len() < 16 {
            self.shared_key_short = Some(key.len());
            return self;
        }
        self.shared = Some(shared::Shared::new(Arc::new(store), key));
        self
    }

    /// Every mistake in this configuration.
    pub(crate) fn config_errors(&self) -> Vec<ConfigError> {
        let mut all = Vec::new();
        match (self.audiences.is_empty(), self.any_audience) {
            (true, false) => all.push(IntrospectionMistake::NoAudience),
            (false, true) => all.push(IntrospectionMistake::AudienceAndAnyAudience),
            _ => {}
        }
        if let Some(why) = &self.key_mistake {
            all.push(IntrospectionMistake::ClientKey(why.clone()));
        } else if self.auth.is_none() && !self.unauthenticated {
            all.push(IntrospectionMistake::NoClientAuthentication);
        }
        let url = match &self.endpoint {
            Endpoint::Url(url) | Endpoint::Discover(url) => url,
        };
        if let Err(why) = check_url(url, self.allow_http) {
            all.push(IntrospectionMistake::EndpointUrl(why));
        }
        if let Some(len) = self.shared_key_short {
            all.push(IntrospectionMistake::SharedCacheKeyTooShort(len));
        }
        all.into_iter().map(ConfigError::Introspection).collect()
    }
}

/// An [`Introspector`] as a layer runs it: its client, its cache, and the endpoint once
/// discovered.
#[derive(Debug)]
pub(crate) struct Introspection {
    config: Introspector,
    client: client::Client,
    cache: Cache,
    discovery: Discovery,
}

/// The discovered endpoint, or the last failure to find it.
#[derive(Debug, Default)]
struct Discovery {
    found: OnceLock<String>,
    /// Why the last discovery failed, and until when (ms) that answer stands.
    failed: Mutex<Option<(i64, String)>>,
    /// One discovery at a time: the requests that need it meanwhile wait for its answer.
    one: tokio::sync::Mutex<()>,
}

impl Introspection {
    pub(crate) fn new(config: Introspector) -> Self {
        Self {
            client: client::Client::new(config.timeout),
            cache: Cache::new(config.capacity),
            config,
            discovery: Discovery::default(),
        }
    }

    /// Starts discovering the endpoint, when it is to be discovered and a Tokio runtime
    /// is at hand (else the first request that needs it does).
    pub(crate) fn start(self: &Arc<Self>) {
        if !matches!(self.config.endpoint, Endpoint::Discover(_)) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let this = self.clone();
            runtime.spawn(async move {
                let _ = this.endpoint().await;
            });
        }
    }

    /// The endpoint's URL: configured, discovered before, or discovered now.
    async fn endpoint(&self) -> Result<&str, AuthFailure> {
        let issuer = match &self.config.endpoint {
            Endpoint::Url(url) => return Ok(url),
            Endpoint::Discover(issuer) => issuer,
        };
        let d = &self.discovery;
        if let Some(url) = d.found.get() {
            return Ok(url);
        }
        let _one = d.one.lock().await;
        if let Some(url) = d.found.get() {
            return Ok(url);
        }
        let now = now_ms();
        let failed = d.failed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some((_, cause)) = failed.filter(|(until, _)| now < *until) {
            return Err(undiscovered(issuer, &cause));
        }
        let c = &self.config;
        match self.client.discover(issuer, c.allow_http).await {
            Ok(url) => Ok(d.found.get_or_init(|| url)),
            Err(cause) => {
                let until = now_ms().saturating_add(DISCOVERY_RETRY_MS);
                *d.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some((until, cause.clone()));
                Err(undiscovered(issuer, &cause))
            }
        }
    }

    /// The principal of opaque token `token`: from the cache, from a call in flight for
    /// the same token, or from a call of its own.
    pub(crate) fn check(self: &Arc<Self>, token: &str) -> AuthFuture {
        let key = cache::key(token);
        let token = token.to_owned();
        let this = self.clone();
        Box::pin(async move {
            let slot = this.cache.slot(&key, now_ms());
            let settled = slot.settle(|| this.call(&token)).await;
            if settled.until_ms <= 0 {
                this.cache.forget(&key, &slot);
            }
            settled.outcome
        })
    }

    /// The cached answer for `token`, when one is usable now.
    pub(crate) fn cached(&self, token: &str) -> Option<Outcome> {
        self.cache.usable(&cache::key(token), now_ms())
    }

    /// The answer for `token`: another replica's, when one is shared and usable, else
    /// one call to the endpoint (then shared); and how long it may be used.
    async fn call(&self, token: &str) -> Settled {
        let asked = now_ms();
        let shared = self.config.shared.as_ref().map(|s| (s, s.name(token)));
        if let Some((store, name)) = &shared {
            match store.load(name, asked).await {
                Ok(Some((answer, until_ms))) => {
                    let shown = self.config.endpoint.shown();
                    let outcome = judge(&self.config, shown, answer, asked.div_euclid(1000));
                    let until_ms = until_ms.min(self.deadline(&outcome, asked));
                    return Settled { outcome, until_ms };
                }
                Ok(None) => {}
                Err(e) => shared_store_failed("read", &e),
            }
        }
        let (answer, outcome) = self.ask(token, asked).await;
        let until_ms = self.deadline(&outcome, asked);
        if let (Some((store, name)), Some(answer)) = (&shared, answer) {
            if until_ms > asked {
                if let Err(e) = store.save(name, &answer, until_ms, asked).await {
                    shared_store_failed("write", &e);
                }
            }
        }
        Settled { outcome, until_ms }
    }

    /// One call to the endpoint: the answer (when the endpoint gave a usable one) and
    /// what it decides.
    async fn ask(&self, token: &str, asked: i64) -> (Option<Map<String, Value>>, Outcome) {
        let c = &self.config;
        let endpoint = match self.endpoint().await {
            Ok(url) => url,
            Err(f) => return (None, Err(f)),
        };
        let answer = self
            .client
            .introspect(endpoint, c.auth.as_ref(), token, c.max_response_bytes)
            .await;
        match answer {
            Ok((map, _)) => {
                let outcome = judge(c, endpoint, map.clone(), asked.div_euclid(1000));
                let usable =
                    !matches!(&outcome, Err(f) if f.reason() == Reason::IntrospectionUnavailable);
                (usable.then_some(map), outcome)
            }
            Err(cause) => (None, Err(unavailable(endpoint, &cause))),
        }
    }

    /// Until when (ms) `outcome`, decided at `asked`, may be used: an acceptance until
    /// `exp` or the max age, a refusal for the negative max age, an unavailable endpoint
    /// not at all (0).
    fn deadline(&self, outcome: &Outcome, asked: i64) -> i64 {
        let c = &self.config;
        match outcome {
            Ok(p) => {
                let exp = p.claims().and_then(|m| m.get("exp"));
                let exp_ms = exp.and_then(crate::jws::numeric_date).map(|e| e * 1000);
                let max = asked.saturating_add(c.max_age.as_millis() as i64);
                exp_ms.map_or(max, |e| e.min(max))
            }
            Err(f) if f.reason() == Reason::IntrospectionUnavailable => 0,
            Err(_) => asked.saturating_add(c.negative_max_age.as_millis() as i64),
        }
    }
}

/// A shared store that could not be read or written: logged, and the endpoint asked.
fn shared_store_failed(op: &str, e: &crate::keys::store::StoreError) {
    tracing::warn!(
        target: "auth_diagnostics",
        error = %crate::sanitize::cap(&e.to_string()),
        "the shared introspection cache could not be {op}; the endpoint is asked instead"
    );
}

/// 503 `introspection_unavailable`: the endpoint (password-free, no query) and the cause.
fn unavailable(endpoint: &str, cause: &str) -> AuthFailure {
    AuthFailure::new(Reason::IntrospectionUnavailable)
        .detail(format!(
            "introspection at {} failed: {}",
            shown_source(endpoint),
            cap(cause)
        ))
        .retry_after(5)
}

/// 503 `introspection_unavailable`: the issuer whose discovery document named no usable
/// endpoint, and the cause.
fn undiscovered(issuer: &str, cause: &str) -> AuthFailure {
    AuthFailure::new(Reason::IntrospectionUnavailable)
        .detail(format!(
            "discovering the introspection endpoint of {} failed: {}",
            shown_source(issuer),
            cap(cause)
        ))
        .retry_after(5)
}

/// The answer from `endpoint` checked as RFC 7662 §2.2 says and as the JWT path does:
/// `active`, then `exp`, `nbf`, `iss` and `aud` when present (`aud` required unless any is
/// accepted).
fn judge(c: &Introspector, endpoint: &str, answer: Map<String, Value>, now: i64) -> Outcome {
    match answer.get("active") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => {
            return Err(AuthFailure::new(Reason::TokenInactive)
                .detail("the introspection endpoint answered active: false"))
        }
        _ => {
            return Err(unavailable(
                endpoint,
                "the answer has no boolean `active` member (RFC 7662 §2.2)",
            ))
        }
    }
    times(&answer, now)?;
    not_a_refresh_token(&answer)?;
    issuer(c, &answer)?;
    audience(c, &answer)?;
    let id = ["sub", "username", "client_id"]
        .iter()
        .find_map(|m| answer.get(*m).and_then(Value::as_str))
        .map(str::to_owned);
    Ok(Principal::from_jwt(answer).with_id(id))
}

/// `token_type_rejected` when the answer says the token is a refresh token (Ory Hydra's
/// `token_type: refresh_token`, or RFC 7009's `token_type_hint` spelling): it was sent
/// where an access token belongs. Other types (`Bearer`, `DPoP`, `access_token`, …) and
/// no type are fine.
fn not_a_refresh_token(answer: &Map<String, Value>) -> Result<(), AuthFailure> {
    let Some(t) = answer.get("token_type").and_then(Value::as_str) else {
        return Ok(());
    };
    let t = t.trim();
    if t.eq_ignore_ascii_case("refresh_token") || t.eq_ignore_ascii_case("refresh token") {
        return Err(AuthFailure::new(Reason::TokenTypeRejected).detail(
            "the introspection endpoint says this is a refresh token, not an access token",
        ));
    }
    Ok(())
}

/// The clock skew allowed between the authorization server and this one, in seconds: as
/// the JWT path's default leeway. The server's own `active` is the verdict; `exp` and
/// `nbf` only catch an answer that contradicts it by more than a clock's drift.
const LEEWAY_S: i64 = 60;

/// `exp` past or `nbf` ahead by more than [`LEEWAY_S`], or either not a number.
fn times(answer: &Map<String, Value>, now: i64) -> Result<(), AuthFailure> {
    for (claim, past) in [("exp", true), ("nbf", false)] {
        let Some(v) = answer.get(claim) else { continue };
        let Some(t) = crate::jws::numeric_date(v) else {
            return Err(AuthFailure::new(Reason::TokenClaimInvalid)
                .detail(format!(
                    "the introspection answer's {claim} is not a number"
                ))
                .claim(claim));
        };
        if past && now >= t.saturating_add(LEEWAY_S) {
            return Err(AuthFailure::new(Reason::TokenExpired)
                .detail(format!(
                    "the introspection answer's exp is {} s ago (leeway {LEEWAY_S} s)",
                    now - t
                ))
                .claim("exp"));
        }
        if !past && t > now.saturating_add(LEEWAY_S) {
            return Err(AuthFailure::new(Reason::TokenNotYetValid)
                .detail(format!(
                    "the introspection answer's nbf is {} s ahead (leeway {LEEWAY_S} s)",
                    t - now
                ))
                .claim("nbf"));
        }
    }
    Ok(())
}

/// `iss`, when present and an issuer is configured, must be it.
fn issuer(c: &Introspector, answer: &Map<String, Value>) -> Result<(), AuthFailure> {
    let (Some(expected), Some(iss)) = (&c.issuer, answer.get("iss")) else {
        return Ok(());
    };
    match iss.as_str() {
        Some(i) if i == expected => Ok(()),
        Some(i) => Err(AuthFailure::new(Reason::TokenIssuerMismatch)
            .detail(format!(
                "the introspection answer's iss is {}, expected {}",
                cap(i),
                cap(expected)
            ))
            .claim("iss")
            .expected_iss(Some(expected.clone()))),
        None => Err(AuthFailure::new(Reason::TokenClaimInvalid)
            .detail("the introspection answer's iss is not a string")
            .claim("iss")),
    }
}

/// `aud` (a string or an array of strings) must contain a configured audience.
fn audience(c: &Introspector, answer: &Map<String, Value>) -> Result<(), AuthFailure> {
    if c.any_audience {
        return Ok(());
    }
    let aud = answer.get("aud");
    let has = |a: &str| c.audiences.iter().any(|e| e == a);
    let ok = match aud {
        Some(Value::String(a)) => has(a),
        Some(Value::Array(all)) => all.iter().filter_map(Value::as_str).any(has),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let got = aud.map_or_else(
        || "no aud".to_owned(),
        |a| format!("aud {}", cap(&crate::jws::audience_text(a))),
    );
    let expected = c.audiences.join(" ");
    Err(AuthFailure::new(Reason::TokenAudienceMismatch)
        .detail(format!(
            "the introspection answer names {got}, expected {}",
            cap(&expected)
        ))
        .claim("aud")
        .expected_aud(Some(expected)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn judged(answer: Value) -> Outcome {
        let c = Introspector::new("https://as.example/introspect")
            .issuer("https://as.example")
            .audience("api");
        let Value::Object(map) = answer else {
            unreachable!()
        };
        judge(&c, "https://as.example/introspect", map, 1_000)
    }

    fn reason(answer: Value) -> Reason {
        judged(answer).unwrap_err().reason()
    }

    #[test]
    fn answers_are_checked_as_rfc_7662_says() {
        assert_eq!(reason(json!({"active": false})), Reason::TokenInactive);
        assert_eq!(reason(json!({})), Reason::IntrospectionUnavailable);
        let ok = json!({"active": true, "aud": ["x", "api"], "exp": 1_001, "nbf": 1_000,
            "iss": "https://as.example", "scope": "read admin", "username": "alice"});
        let p = judged(ok).unwrap();
        assert_eq!(p.id(), Some("alice"));
        assert!(p.has_scope("admin"));
        let base = json!({"active": true, "aud": "api"});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        // Within the leeway (60 s) of this server's clock: accepted; beyond: refused.
        assert!(judged(with("exp", json!(941))).is_ok());
        assert!(judged(with("nbf", json!(1_060))).is_ok());
        assert_eq!(reason(with("exp", json!(940))), Reason::TokenExpired);
        assert_eq!(reason(with("nbf", json!(1_061))), Reason::TokenNotYetValid);
        assert_eq!(reason(with("iss", json!("x"))), Reason::TokenIssuerMismatch);
        assert_eq!(
            reason(with("aud", json!("x"))),
            Reason::TokenAudienceMismatch
        );
        assert_eq!(
            reason(json!({"active": true})),
            Reason::TokenAudienceMismatch
        );
        let p = judged(with("client_id", json!("svc"))).unwrap();
        assert_eq!(p.id(), Some("svc"));
    }
}
