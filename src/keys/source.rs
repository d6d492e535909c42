//! [`KeySource`]: keys published by an identity provider, fetched, cached and refreshed.
//!
//! One background task per source does every fetch, so concurrent requests never fetch
//! twice: it fetches at start, again when `Cache-Control: max-age` (clamped) runs out,
//! sooner after a failure (backing off), and when a request meets an unknown `kid` — at
//! most once per [`KeySource::miss_refresh_interval`], or, while no set was ever held,
//! at once (at most once a second). Requests verify with the cached set while a fetch
//! runs; only one that needs the fetch waits for it, at most [`KeySource::max_wait`].

use super::fetch::{
    check_url, max_age, shown_source, FetchError, FetchErrorKind, Fetched, HttpFetch,
};
use super::jwk::{self, RemoteKey};
use super::store::KeySetStore;
use crate::config_error::ConfigError;
use crate::sanitize::cap;
use crate::time::now;
use bytes::Bytes;
use jsonwebtoken::Algorithm;
use serde_json::Value;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

mod per_kid;
mod shared;

/// While a source has never held a key set, the least time between two fetches that
/// requests ask for (the unknown-`kid` interval applies once a set is held).
const FIRST_USE_GAP: Duration = Duration::from_secs(1);

/// Where a source's keys come from.
#[derive(Clone, Debug)]
enum Origin {
    /// A JWK set URL.
    Jwks(String),
    /// An issuer whose discovery document names the JWK set URL.
    Discover(String),
    /// One PEM public key per `kid`, at this base URL followed by the `kid` (AWS ALB).
    PemPerKid(String),
}

/// A shared key set store and the key of its MACs.
type SharedStore = (Arc<dyn KeySetStore>, Arc<[u8; 32]>);

#[derive(Clone)]
struct Settings {
    origin: Origin,
    /// Why the URL may not serve keys, checked whenever the settings change.
    url_error: Option<String>,
    issuer: Option<String>,
    client: Option<Arc<dyn HttpFetch>>,
    allow_http: bool,
    /// Whether a redirect may lead to another origin.
    cross_origin: bool,
    min_ttl: Duration,
    max_ttl: Duration,
    default_ttl: Duration,
    miss_interval: Duration,
    fetch_timeout: Duration,
    max_wait: Duration,
    max_bytes: usize,
    max_keys: usize,
    /// Where the last known good set is shared with other replicas.
    /// Where the last known good set is shared, and the key its MACs are made with.
    store: Option<SharedStore>,
    /// Settings given that cannot be used, reported when the layer is built (the
    /// defaults stay in use meanwhile).
    mistakes: Vec<ConfigError>,
    /// The oldest shared set loaded.
    max_shared_age: Duration,
}

/// Keys published by an identity provider: a JWK set URL ([`KeySource::jwks`]) or an
/// issuer's discovery document ([`KeySource::discover`]). Give it to
/// [`JwtAuthenticator::from_source`](crate::jwt::JwtAuthenticator::from_source).
///
/// Defaults: `https` only (plain `http` to a loopback host is allowed, for development),
/// redirects only on the origin asked, refresh on the set's `Cache-Control: max-age`
/// clamped to 1..5 minutes (5 minutes without one: a key the provider removed verifies for
/// at most 5 minutes more while it answers), at most one refresh for an unknown `kid` every
/// 30 s, requests wait at most 2 s for a refresh they need, 5 s fetch timeout, 256 KiB and
/// 64 keys at most.
///
/// A URL is shown (logs, problem bodies, metrics, `Debug`, errors) without its query and
/// with its password masked: `https://user:***@host/jwks`.
///
/// Nothing is fetched when it is built: the first fetch starts in the background when the
/// layer is built inside a Tokio runtime (or on the first request), and
/// [`KeySource::ready`] waits for it. Until a key set has arrived, a token asks for a
/// fetch at once rather than waiting for the background's next try or the unknown-`kid`
/// interval: a service started before its identity provider answers its first token once
/// the provider is up. Concurrent tokens share that one fetch, and such fetches happen at
/// most once a second however many tokens come while the provider is down.
///
/// A clone shares the cache; configure a source before cloning it (the builder methods
/// panic on a clone, which would otherwise quietly get a cache of its own).
///
/// Keys named by the token (`jku`, `x5u`, `x5c`, `jwk` headers) are never fetched or used.
///
/// ```
/// use auth_diagnostics::jwt::JwtAuthenticator;
/// use auth_diagnostics::keys::KeySource;
/// use auth_diagnostics::AuthDiagnostics;
///
/// # async fn run() {
/// let keys = KeySource::discover("https://login.example.com/realms/main");
/// let jwt = JwtAuthenticator::from_source(keys.clone()).audience("orders-api");
/// let layer = AuthDiagnostics::new().bearer(jwt);
/// // Optional: serve only once the keys are in.
/// let _ = tokio::time::timeout(std::time::Duration::from_secs(10), keys.ready()).await;
/// # let _ = layer;
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct KeySource {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    /// Whether a refresh task runs (the fast path of [`KeySource::start`]).
    running: AtomicBool,
    /// Counts the key sets fetched: a verified token cached under one count is stale
    /// under the next.
    generation: AtomicU64,
    keys: RwLock<Option<Arc<KeySet>>>,
    status: Mutex<Status>,
    /// Wakes the refresh task (a miss, or the source going away).
    wake: Arc<Notify>,
    /// Counts finished fetch attempts; requests waiting for a refresh watch it.
    attempts: watch::Sender<u64>,
}

#[derive(Default)]
struct Status {
    fetching: bool,
    /// When the last attempt started (or a miss reserved the next one).
    last_start: Option<Instant>,
    next_attempt: Option<Instant>,
    failures: u32,
    last_error: Option<FetchError>,
    jwks_uri: Option<String>,
    /// The `kid`s tokens asked for that a per-`kid` source does not hold yet.
    wanted: Vec<String>,
}

/// A fetched key set.
pub(crate) struct KeySet {
    pub keys: Vec<RemoteKey>,
    /// Seconds since the epoch.
    pub fetched_at: i64,
    /// The same in milliseconds: which of two sets shared by replicas is newer.
    pub fetched_at_ms: i64,
    pub skipped: Vec<String>,
}

impl KeySet {
    /// The `kid`s it holds, for the log.
    pub(crate) fn kids(&self) -> String {
        let kids: Vec<&str> = self
            .keys
            .iter()
            .map(|k| k.kid.as_deref().unwrap_or("(none)"))
            .collect();
        cap(&kids.join(" ")).to_string()
    }
}

/// What a key set says about a token's `alg` and `kid`.
pub(crate) enum Pick<'a> {
    /// The one key to verify with.
    Key(&'a RemoteKey),
    /// The `kid` is there, but for other algorithms (what it is for, in words).
    Mismatch(String),
    /// No `kid` in the token and more than one key for its algorithm.
    Ambiguous(usize),
    /// Nothing for it.
    Missing,
}

impl KeySet {
    pub(crate) fn pick(&self, alg: Algorithm, kid: Option<&str>) -> Pick<'_> {
        match kid {
            Some(kid) => {
                let mut named = self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid));
                let Some(first) = named.clone().next() else {
                    return Pick::Missing;
                };
                match named.find(|k| k.serves(alg)) {
                    Some(k) => Pick::Key(k),
                    None => Pick::Mismatch(format!(
                        "the set's key {} is not for {alg:?}",
                        cap(first.kid.as_deref().unwrap_or_default())
                    )),
                }
            }
            None => {
                let mut fit = self.keys.iter().filter(|k| k.serves(alg));
                match (fit.next(), fit.count()) {
                    (Some(k), 0) => Pick::Key(k),
                    (Some(_), more) => Pick::Ambiguous(more + 1),
                    (None, _) => Pick::Missing,
                }
            }
        }
    }

    /// Why the set skipped the key named `kid`, if it did.
    pub(crate) fn skipped(&self, kid: &str) -> Option<&str> {
        let prefix = format!("kid {}: ", cap(kid));
        self.skipped
            .iter()
            .find_map(|s| s.strip_prefix(prefix.as_str()))
    }
}

/// The state of a source, for a failure's log fields.
pub(crate) struct SourceState {
    pub keys: Option<Arc<KeySet>>,
    /// A fetch is under way.
    pub fetching: bool,
    pub last_error: Option<FetchError>,
    /// Seconds until the next fetch attempt (at least 1).
    pub retry_after: u64,
    /// The configured URL, as shown ([`shown_source`]).
    pub url: String,
}

impl KeySource {
    /// Keys from the JWK set at `url` (`https`; plain `http` only to a loopback host unless
    /// [`KeySource::allow_http`]). The authenticator must name the issuer these keys
    /// belong to ([`JwtAuthenticator::issuer`](crate::jwt::JwtAuthenticator::issuer)).
    pub fn jwks(url: impl Into<String>) -> Self {
        Self::with_origin(Origin::Jwks(url.into()))
    }

    /// Keys of `issuer`, found through its discovery document: OpenID Connect's
    /// `{issuer}/.well-known/openid-configuration`, or RFC 8414's
    /// `/.well-known/oauth-authorization-server{path}` when that is absent. The document's
    /// `issuer` must equal `issuer` exactly; its `jwks_uri` names the key set. The
    /// authenticator then accepts this issuer, and only it, for these keys.
    pub fn discover(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        Self::with_origin(Origin::Discover(issuer.clone())).edit(|s| s.issuer = Some(issuer))
    }

    /// Keys published one PEM per `kid` at `base` followed by the `kid` (AWS ALB's
    /// `https://public-keys.auth.elb.<region>.amazonaws.com/<kid>`): each `kid` a token
    /// names is fetched once a token asks for it ([`KeySource::want`]).
    pub(crate) fn pem_per_kid(base: impl Into<String>) -> Self {
        Self::with_origin(Origin::PemPerKid(base.into()))
    }

    /// Asks a per-`kid` source to fetch `kid` at its next refresh.
    pub(crate) fn want(&self, kid: &str) {
        if matches!(self.inner.settings.origin, Origin::PemPerKid(_)) {
            per_kid::want(&mut self.inner.lock().wanted, kid);
        }
    }

    fn with_origin(origin: Origin) -> Self {
        Self::from_settings(Settings {
            origin,
            url_error: None,
            issuer: None,
            client: None,
            allow_http: false,
            cross_origin: false,
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(300),
            default_ttl: Duration::from_secs(300),
            miss_interval: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
            max_wait: Duration::from_secs(2),
            max_bytes: 256 * 1024,
            max_keys: 64,
            store: None,
            mistakes: Vec::new(),
            max_shared_age: Duration::from_secs(24 * 3600),
        })
    }

    fn from_settings(mut settings: Settings) -> Self {
        settings.check_url();
        Self {
            inner: Arc::new(Inner {
                settings,
                running: AtomicBool::new(false),
                generation: AtomicU64::new(0),
                keys: RwLock::new(None),
                status: Mutex::new(Status::default()),
                wake: Arc::new(Notify::new()),
                attempts: watch::Sender::new(0),
            }),
        }
    }

    /// Changes the settings of a source that is not shared yet.
    fn edit(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        let inner = Arc::get_mut(&mut self.inner).expect(
            "auth-diagnostics: configure a KeySource before cloning it or using it: a clone \
             shares its cache, and a changed clone could not",
        );
        f(&mut inner.settings);
        inner.settings.check_url();
        self
    }

    /// Binds a JWK set to the issuer whose tokens it verifies (RFC 8725 §3.8). Needed when
    /// the authenticator accepts several issuers; a discovered source is bound already.
    pub fn with_issuer(self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        self.edit(|s| s.issuer = Some(issuer))
    }

    /// Fetches with `client` instead of the default (reqwest with rustls).
    pub fn http_client(self, client: impl HttpFetch) -> Self {
        let client: Arc<dyn HttpFetch> = Arc::new(client);
        self.edit(|s| s.client = Some(client))
    }

    /// Allows plain `http` URLs to any host (for a trusted network, e.g. an identity
    /// provider beside the service in one cluster). Without it only loopback hosts may be
    /// `http`: keys fetched in the clear can be swapped on the way.
    pub fn allow_http(self) -> Self {
        self.edit(|s| s.allow_http = true)
    }

    /// Follows a redirect to another origin (scheme, host or port) than the URL asked
    /// for: a provider that moved its key set to a CDN, say. Off by default: a redirect
    /// to another origin is refused, since whoever can answer one URL of the provider's
    /// host with a redirect would otherwise choose the keys. Every hop must still be
    /// `https` (plain `http` only to a loopback host, or anywhere with
    /// [`KeySource::allow_http`]), never from `https` back to `http`, at most 3 hops.
    /// Applies to the default client; an [`HttpFetch`] of your own follows its own rules.
    pub fn allow_cross_origin_redirects(self) -> Self {
        self.edit(|s| s.cross_origin = true)
    }

    /// Clamps the set's `Cache-Control: max-age` into `min..=max` to schedule the next
    /// refresh (defaults 1 and 5 minutes). `max` is the longest a key removed from the set
    /// keeps verifying while the provider answers: raise it only for a provider that
    /// revokes keys some other way.
    ///
    /// # Configuration errors
    /// A zero `min`, or a `min` above `max`, is a configuration mistake
    /// ([`ConfigError::RefreshBounds`](crate::layer::ConfigError::RefreshBounds)), reported
    /// when the layer is built; the defaults stay in use.
    pub fn refresh_bounds(self, min: Duration, max: Duration) -> Self {
        self.edit(|s| {
            if min.is_zero() || min > max {
                s.mistakes.push(ConfigError::RefreshBounds { min, max });
            } else {
                s.min_ttl = min;
                s.max_ttl = max;
            }
        })
    }

    /// How long keys are kept when the set sends no `max-age` (default 5 minutes; still
    /// clamped by [`KeySource::refresh_bounds`]).
    pub fn default_refresh(self, every: Duration) -> Self {
        self.edit(|s| s.default_ttl = every)
    }

    /// The least time between a fetch and another one caused by an unknown `kid`
    /// (default 30 s): a set fetched less than this ago, for whatever reason, counts as
    /// fresh, so a flood of made-up `kid`s costs the identity provider at most one fetch
    /// per interval. Zero turns that protection off (for tests). It applies once a set is
    /// held: before that a token asks for a fetch at once (at most one a second).
    pub fn miss_refresh_interval(self, interval: Duration) -> Self {
        self.edit(|s| s.miss_interval = interval)
    }

    /// The timeout of each HTTP request (default 5 s).
    pub fn fetch_timeout(self, timeout: Duration) -> Self {
        self.edit(|s| s.fetch_timeout = timeout)
    }

    /// How long a request waits for a fetch it needs: the first one, or the refresh for
    /// its unknown `kid` (default 2 s). Other requests never wait.
    pub fn max_wait(self, wait: Duration) -> Self {
        self.edit(|s| s.max_wait = wait)
    }

    /// The largest document accepted, in bytes (default 256 KiB).
    pub fn max_bytes(self, bytes: usize) -> Self {
        self.edit(|s| s.max_bytes = bytes)
    }

    /// The most keys a set may hold (default 64); a bigger set is refused and the cached
    /// keys stay in use.
    pub fn max_keys(self, keys: usize) -> Self {
        self.edit(|s| s.max_keys = keys)
    }

    /// Shares the last known good key set with other replicas through `store` (a
    /// `RedisStore` with the feature `redis`, say). A replica with no keys
    /// reads the stored set before it asks the provider, and uses it until its own fetch
    /// succeeds; after a failed fetch it takes a newer set a sibling stored; every
    /// successful fetch is stored with its time. A stored set older than
    /// [`KeySource::max_shared_age`], or dated more than a minute ahead of this clock, is
    /// not used. The store holds public key members only, under the SHA-256 of the
    /// source's URL.
    ///
    /// A key set decides which tokens verify, so each stored set carries an HMAC-SHA256
    /// made with `key` (at least 16 bytes, the same on every replica, kept like a
    /// signing secret): a set written by anything without the key (whoever can write to
    /// the store) is refused and logged.
    ///
    /// # Configuration errors
    /// A `key` shorter than 16 bytes is a configuration mistake
    /// ([`ConfigError::SharedStoreKeyTooShort`](crate::layer::ConfigError::SharedStoreKeyTooShort)),
    /// reported when the layer is built; nothing is shared meanwhile.
    pub fn shared_store(self, store: impl KeySetStore, key: impl AsRef<[u8]>) -> Self {
        let key = key.as_ref();
        if key.len() < 16 {
            let len = key.len();
            return self.edit(|s| s.mistakes.push(ConfigError::SharedStoreKeyTooShort { len }));
        }
        let key: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(key).into();
        let store: Arc<dyn KeySetStore> = Arc::new(store);
        self.edit(|s| s.store = Some((store, Arc::new(key))))
    }

    /// The oldest shared key set a replica loads (default 24 hours): keys that old may have
    /// been rotated away, or revoked. A loaded set serves only until the replica's own
    /// fetch succeeds.
    pub fn max_shared_age(self, age: Duration) -> Self {
        self.edit(|s| s.max_shared_age = age)
    }

    /// Resolves once a key set has been fetched. Starts the fetching if nothing started
    /// it yet. Wrap it in a timeout: it waits as long as the source is unreachable. Call
    /// it inside a Tokio runtime: the fetching runs there.
    pub async fn ready(&self) {
        self.start();
        let mut attempts = self.inner.attempts.subscribe();
        while self.current().is_none() {
            if attempts.changed().await.is_err() {
                return;
            }
        }
    }

    /// The issuer the keys belong to, if bound.
    pub(crate) fn issuer(&self) -> Option<&str> {
        self.inner.settings.issuer.as_deref()
    }

    /// Every mistake in its settings: a URL that cannot serve keys, bounds or a store key
    /// that could not be taken.
    pub(crate) fn config_errors(&self) -> Vec<ConfigError> {
        let settings = &self.inner.settings;
        let url = settings
            .url_error
            .iter()
            .map(|why| ConfigError::KeySourceUrl { why: why.clone() });
        url.chain(settings.mistakes.iter().cloned()).collect()
    }

    /// The cached key set, if one was fetched.
    pub(crate) fn current(&self) -> Option<Arc<KeySet>> {
        self.start();
        self.inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Starts the refresh task if none runs (the first time, or after its runtime went
    /// away) and a Tokio runtime is at hand.
    pub(crate) fn start(&self) {
        if self.inner.running.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        {
            let mut st = self.inner.lock();
            if self.inner.running.swap(true, Ordering::AcqRel) {
                return;
            }
            // A fetch is under way: misses wait for it instead of asking again.
            st.fetching = true;
            st.last_start = Some(Instant::now());
        }
        let weak = Arc::downgrade(&self.inner);
        let wake = self.inner.wake.clone();
        runtime.spawn(refresh_task(weak, wake));
    }

    /// How many key sets were fetched: verified tokens cached before a change are stale.
    pub(crate) fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// How long a request may wait for this source's refresh.
    pub(crate) fn wait_limit(&self) -> Duration {
        self.inner.settings.max_wait
    }

    /// For a token whose key is not in the cache: asks for a refresh (unless one ran less
    /// than the miss interval ago) and waits for it, at most `max_wait`.
    ///
    /// While no key set was ever held, the miss interval does not apply: the token may
    /// well be good, and every request fails until a set arrives, so the fetch starts now
    /// instead of when the background retries. Such fetches still run one at a time and
    /// at most one per `FIRST_USE_GAP`; a request that comes sooner waits for that one.
    pub(crate) async fn refresh_for_miss(&self) {
        self.start();
        let _ = tokio::time::timeout(self.inner.settings.max_wait, self.miss_refresh()).await;
    }

    /// [`KeySource::refresh_for_miss`] without its bound.
    async fn miss_refresh(&self) {
        loop {
            let mut attempts = self.inner.attempts.subscribe();
            let pause = {
                let mut st = self.inner.lock();
                if st.fetching {
                    None
                } else {
                    // A per-`kid` source asked for a `kid` it has not fetched yet is
                    // as cold as one without a set: its key may well exist.
                    let cold = self.current_unstarted().is_none() || !st.wanted.is_empty();
                    let gap = match cold {
                        true => self.inner.settings.miss_interval.min(FIRST_USE_GAP),
                        false => self.inner.settings.miss_interval,
                    };
                    let since = st.last_start.map(|t| t.elapsed());
                    match since.filter(|&elapsed| elapsed < gap) {
                        // Keys are held and fresh enough: the token's key is not there.
                        Some(_) if !cold => return,
                        Some(elapsed) => Some(gap - elapsed),
                        None => {
                            // Reserve the refresh, so that concurrent misses share it.
                            st.last_start = Some(Instant::now());
                            st.fetching = true;
                            self.inner.wake.notify_one();
                            None
                        }
                    }
                }
            };
            match pause {
                Some(pause) => tokio::time::sleep(pause).await,
                None => {
                    let _ = attempts.changed().await;
                    return;
                }
            }
        }
    }

    /// Whether it holds a key set, for
    /// [`AuthDiagnostics::readiness`](crate::AuthDiagnostics::readiness).
    pub(crate) fn readiness(&self) -> crate::readiness::SourceReadiness {
        let state = self.state();
        crate::readiness::SourceReadiness {
            source: state.url,
            ready: state.keys.is_some(),
            fetched_at: state.keys.as_ref().map(|k| k.fetched_at),
            error: state.last_error.map(|e| e.message().to_owned()),
        }
    }

    /// The source's state, for a failure's facts.
    pub(crate) fn state(&self) -> SourceState {
        let st = self.inner.lock();
        let retry_after = st
            .next_attempt
            .map(|t| t.saturating_duration_since(Instant::now()).as_secs())
            .unwrap_or(1)
            .clamp(1, 60);
        // The configured URL (the set's, or the issuer's), as it is shown: the same in
        // every event; the fetch error names the URL that failed.
        let url = shown_source(self.url());
        SourceState {
            keys: self.current_unstarted(),
            fetching: st.fetching,
            last_error: st.last_error.clone(),
            retry_after,
            url,
        }
    }

    fn current_unstarted(&self) -> Option<Arc<KeySet>> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The configured URL: the set's or the issuer's.
    fn url(&self) -> &str {
        match &self.inner.settings.origin {
            Origin::Jwks(url) | Origin::Discover(url) | Origin::PemPerKid(url) => url,
        }
    }
}

// A panic cannot leave a source half-updated: each lock guards one consistent assignment,
// and poisoned locks are read through. So a `JwtAuthenticator` stays unwind-safe.
impl std::panic::UnwindSafe for KeySource {}
impl std::panic::RefUnwindSafe for KeySource {}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.inner.settings;
        let (kind, url) = match &s.origin {
            Origin::Jwks(url) => ("jwks", url),
            Origin::Discover(url) => ("discover", url),
            Origin::PemPerKid(url) => ("pem_per_kid", url),
        };
        f.debug_struct("KeySource")
            .field(kind, &shown_source(url))
            .field("issuer", &s.issuer.as_deref().map(shown_source))
            .finish_non_exhaustive()
    }
}

impl Settings {
    fn check_url(&mut self) {
        let url = match &self.origin {
            Origin::Jwks(url) | Origin::Discover(url) | Origin::PemPerKid(url) => url,
        };
        self.url_error = check_url(url, self.allow_http).err();
        if cfg!(not(feature = "http-client")) && self.client.is_none() && self.url_error.is_none() {
            self.url_error = Some(
                "no HTTP client: enable the `http-client` feature or call KeySource::http_client"
                    .to_owned(),
            );
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Let the refresh task see that its source is gone.
        self.wake.notify_one();
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One fetch attempt: keys replaced on success, kept on failure. Returns the time to
    /// the next scheduled attempt.
    async fn refresh(self: &Arc<Self>) -> Duration {
        {
            let mut st = self.lock();
            st.fetching = true;
            st.last_start = Some(Instant::now());
        }
        let empty = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none();
        if empty {
            self.load_shared().await;
        }
        let (result, fresh) = match self.fetch_guarded().await {
            Ok((set, ttl, body)) => {
                let fresh = (body, set.fetched_at_ms);
                (Ok((set, ttl)), Some(fresh))
            }
            Err(e) => {
                // A sibling may have fetched since: its set is newer than ours. (Just
                // looked at when the cache was empty.)
                if !empty {
                    self.load_shared().await;
                }
                (Err(e), None)
            }
        };
        let delay = {
            let mut st = self.lock();
            st.fetching = false;
            let delay = match result {
                Ok((set, ttl)) => self.fetched(&mut st, set, ttl),
                Err(error) => self.failed(&mut st, error),
            };
            st.next_attempt = Some(Instant::now() + delay);
            delay
        };
        self.attempts.send_modify(|n| *n += 1);
        if let Some((body, fetched_at_ms)) = fresh {
            self.save_shared(&body, fetched_at_ms).await;
        }
        delay
    }

    /// A fetch that succeeded: its keys replace the cached ones. Returns the time to the
    /// next refresh.
    fn fetched(&self, st: &mut Status, set: KeySet, ttl: Duration) -> Duration {
        crate::metrics::key_fetch(&shown_source(self.url()), "ok");
        st.failures = 0;
        st.last_error = None;
        let kids = set.kids();
        // The document's URLs are the identity provider's text: escaped like any other
        // text from outside.
        let jwks_uri = st.jwks_uri.as_deref().map(|u| shown(&shown_source(u)));
        tracing::debug!(
            target: "auth_diagnostics::keys",
            key_source = shown_source(self.url()).as_str(),
            jwks_uri = jwks_uri.as_deref(),
            key_ids = kids.as_str(),
            skipped = set.skipped.len(),
            next_refresh_s = ttl.as_secs(),
            "key set fetched"
        );
        for why in &set.skipped {
            tracing::debug!(target: "auth_diagnostics::keys", "key set: skipped {why}");
        }
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(set));
        self.generation.fetch_add(1, Ordering::AcqRel);
        ttl
    }

    /// A fetch that failed: the cached keys stay. Returns the time to the next attempt.
    fn failed(&self, st: &mut Status, error: FetchError) -> Duration {
        // Whatever produced the message (a client, a panic), no password or query of the
        // URLs fetched gets through.
        let mut error = error.redact(self.url());
        if let Some(jwks_uri) = &st.jwks_uri {
            error = error.redact(jwks_uri);
        }
        crate::metrics::key_fetch(&shown_source(self.url()), error.kind().label());
        st.failures = st.failures.saturating_add(1);
        if st.jwks_uri.is_some() && matches!(self.settings.origin, Origin::Discover(_)) {
            // Ask the issuer again next time: the set may have moved.
            st.jwks_uri = None;
        }
        let cached = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        let message = shown(error.message());
        tracing::error!(
            target: "auth_diagnostics::keys",
            key_source = shown_source(self.url()).as_str(),
            fetch_error = message.as_str(),
            fetch_error_kind = ?error.kind(),
            keys_cached = cached,
            "key set fetch failed: {message}"
        );
        st.last_error = Some(error);
        self.backoff(st.failures)
    }

    /// After `failures` failed attempts in a row: 1 s, 2 s, 4 s … up to the least refresh
    /// interval (and a minute at most).
    fn backoff(&self, failures: u32) -> Duration {
        let cap = self.settings.min_ttl.min(Duration::from_secs(60));
        Duration::from_secs(1u64 << failures.saturating_sub(1).min(6)).min(cap)
    }

    fn url(&self) -> &str {
        match &self.settings.origin {
            Origin::Jwks(url) | Origin::Discover(url) | Origin::PemPerKid(url) => url,
        }
    }

    /// [`Inner::fetch`], with a panic (an application's `HttpFetch`, say) turned into a
    /// failed fetch.
    async fn fetch_guarded(self: &Arc<Self>) -> Result<(KeySet, Duration, Bytes), FetchError> {
        let inner = self.clone();
        match tokio::spawn(async move { inner.fetch().await }).await {
            Ok(result) => result,
            Err(e) => Err(FetchError::new(
                FetchErrorKind::Other,
                format!("the fetch did not finish: {e}"),
            )),
        }
    }

    /// The key set, how long to keep it, and the set's document.
    async fn fetch(&self) -> Result<(KeySet, Duration, Bytes), FetchError> {
        if let Some(e) = &self.settings.url_error {
            return Err(FetchError::new(FetchErrorKind::Untrusted, e.clone()));
        }
        let jwks_uri = match &self.settings.origin {
            Origin::PemPerKid(base) => return self.fetch_per_kid(base).await,
            Origin::Jwks(url) => url.clone(),
            Origin::Discover(issuer) => {
                let known = self.lock().jwks_uri.clone();
                match known {
                    Some(url) => url,
                    None => {
                        let url = self.discover(issuer).await?;
                        self.lock().jwks_uri = Some(url.clone());
                        url
                    }
                }
            }
        };
        let fetched = self.get(&jwks_uri).await?;
        let set = jwk::parse(&fetched.body, self.settings.max_keys)
            .map_err(|e| e.context(&format!("key set {}", shown_source(&jwks_uri))))?;
        if set.keys.is_empty() {
            return Err(FetchError::new(
                FetchErrorKind::Document,
                format!(
                    "key set {} has no key that verifies signatures{}",
                    shown_source(&jwks_uri),
                    match set.skipped.is_empty() {
                        true => String::new(),
                        false => format!(" (skipped: {})", set.skipped.join("; ")),
                    }
                ),
            ));
        }
        let s = &self.settings;
        let ttl = fetched
            .cache_control
            .as_deref()
            .and_then(max_age)
            .map_or(s.default_ttl, Duration::from_secs)
            .clamp(s.min_ttl, s.max_ttl);
        Ok((
            KeySet {
                keys: set.keys,
                fetched_at: now(),
                fetched_at_ms: crate::time::now_ms(),
                skipped: set.skipped,
            },
            ttl,
            fetched.body,
        ))
    }

    /// The `jwks_uri` of `issuer`'s discovery document (OpenID Connect's location, then
    /// RFC 8414's), after checking that the document speaks for `issuer`.
    async fn discover(&self, issuer: &str) -> Result<String, FetchError> {
        let shown_issuer = shown_source(issuer);
        let base = issuer.trim_end_matches('/');
        let oidc = format!("{base}/.well-known/openid-configuration");
        let fetched = match self.get(&oidc).await {
            Err(e) if e.status() == Some(404) => self.get(&rfc8414_url(issuer)).await?,
            other => other?,
        };
        let doc: Value = serde_json::from_slice(&fetched.body).map_err(|e| {
            FetchError::new(
                FetchErrorKind::Document,
                format!("the discovery document of {shown_issuer} is not JSON: {e}"),
            )
        })?;
        let named = doc.get("issuer").and_then(Value::as_str);
        if named != Some(issuer) {
            return Err(FetchError::new(
                FetchErrorKind::Untrusted,
                format!(
                    "the discovery document names issuer {}, not {shown_issuer} as \
                     configured (they must be equal, byte for byte)",
                    named.map_or_else(|| "(none)".to_owned(), |n| format!("{:?}", cap(n)))
                ),
            ));
        }
        let Some(jwks_uri) = doc.get("jwks_uri").and_then(Value::as_str) else {
            return Err(FetchError::new(
                FetchErrorKind::Document,
                format!("the discovery document of {shown_issuer} has no jwks_uri"),
            ));
        };
        check_url(jwks_uri, self.settings.allow_http)
            .map_err(|e| FetchError::new(FetchErrorKind::Untrusted, format!("jwks_uri: {e}")))?;
        Ok(jwks_uri.to_owned())
    }

    /// GETs `url` with the timeout and size cap; anything but 200 is an error.
    async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let s = &self.settings;
        let client = match &s.client {
            Some(c) => c.clone(),
            None => default_client(s.allow_http, s.cross_origin)?,
        };
        let shown = shown_source(url);
        let fetched = tokio::time::timeout(s.fetch_timeout, client.get(url, s.max_bytes))
            .await
            .map_err(|_| {
                FetchError::new(
                    FetchErrorKind::Timeout,
                    format!("no answer within {:?}", s.fetch_timeout),
                )
            })
            .and_then(|r| r)
            .map_err(|e| e.redact(url).context(&format!("GET {shown}")))?;
        if fetched.body.len() > s.max_bytes {
            return Err(FetchError::too_large(s.max_bytes).context(&format!("GET {shown}")));
        }
        if fetched.status != http::StatusCode::OK {
            return Err(FetchError::from_status(
                fetched.status,
                format!("GET {shown}: HTTP {}", fetched.status.as_u16()),
            ));
        }
        Ok(fetched)
    }
}

/// The default client for these redirect rules: one per combination, made once.
#[cfg(feature = "http-client")]
fn default_client(allow_http: bool, cross_origin: bool) -> Result<Arc<dyn HttpFetch>, FetchError> {
    type Client = std::sync::OnceLock<Arc<dyn HttpFetch>>;
    static CLIENTS: [Client; 4] = [const { Client::new() }; 4];
    let slot = &CLIENTS[usize::from(allow_http) * 2 + usize::from(cross_origin)];
    Ok(slot
        .get_or_init(|| super::fetch::default_client(allow_http, cross_origin))
        .clone())
}

#[cfg(not(feature = "http-client"))]
fn default_client(_: bool, _: bool) -> Result<Arc<dyn HttpFetch>, FetchError> {
    Err(FetchError::new(
        FetchErrorKind::Other,
        "no HTTP client: enable the `http-client` feature or call KeySource::http_client",
    ))
}

/// RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path.
pub(crate) fn rfc8414_url(issuer: &str) -> String {
    let (scheme, rest) = issuer.split_once("://").unwrap_or(("https", issuer));
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.trim_end_matches('/');
    match path.is_empty() {
        true => format!("{scheme}://{host}/.well-known/oauth-authorization-server"),
        false => format!("{scheme}://{host}/.well-known/oauth-authorization-server/{path}"),
    }
}

/// Text from a key set's documents or errors as a log field shows it: control, bidi and
/// invisible characters escaped, capped.
fn shown(text: &str) -> crate::sanitize::Capped {
    crate::sanitize::clean_text(text, 512)
}

async fn refresh_task(source: Weak<Inner>, wake: Arc<Notify>) {
    // However the task ends (its source dropped, its runtime shut down), the next request
    // finds no fetch under way and starts a task again where it runs.
    let _rearm = Rearm(source.clone());
    loop {
        let Some(inner) = source.upgrade() else {
            return;
        };
        let delay = inner.refresh().await;
        drop(inner);
        // Sleep until the next scheduled attempt or a request's reservation. A wake left
        // over from a reservation that the attempt just made served already (the timer
        // and a request met) finds no reservation: it is no reason to fetch again.
        let deadline = tokio::time::Instant::now() + delay;
        while tokio::time::timeout_at(deadline, wake.notified())
            .await
            .is_ok()
        {
            match source.upgrade() {
                Some(inner) if !inner.lock().fetching => continue,
                _ => break,
            }
        }
    }
}

struct Rearm(Weak<Inner>);

impl Drop for Rearm {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.lock().fetching = false;
            inner.running.store(false, Ordering::Release);
            inner.attempts.send_modify(|n| *n += 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_location() {
        assert_eq!(
            rfc8414_url("https://as.example/tenant1/"),
            "https://as.example/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            rfc8414_url("https://as.example"),
            "https://as.example/.well-known/oauth-authorization-server"
        );
    }
}
