//! Throttling failed authentication: a client that keeps failing is answered 429
//! `throttled`, with `Retry-After`, before any password hash or signature check runs
//! (README, "Throttling").
//!
//! Failures are counted per client address and per claimed identity (a Basic user name,
//! an API key's prefix when configured). The budget's count of failures within its
//! window (10 within 60 s) blocks the key for the window divided by the count (6 s); a
//! failure right after a block, while the window still holds the budget's count, blocks
//! it twice as long as the last, up to a maximum. A key quiet for a whole window after its
//! last failure or the end of its block starts again from nothing. Requests that succeed,
//! or carry no credential, write nothing.
//!
//! Memory is bounded whatever addresses clients use: a table of at most
//! [`capacity`](Throttle::capacity) keys, each a 64-bit keyed hash (no address or user
//! name is kept) with the times of its last failures: at most about 200 bytes a key at
//! the default budgets, 20 MB for the default 100 000 keys (measured: 198 bytes a key
//! once a million distinct addresses have passed). When it is full, the oldest key that is
//! not blocked is forgotten first.
//!
//! With [`shared`](Throttle::shared) (a [`ThrottleStore`] such as `RedisStore`), every
//! replica counts into one store: a request costs one round trip that only reads, and a
//! failure one more that writes. When the store cannot answer, counting goes on locally
//! and the layer logs the fault at ERROR (once a minute).

mod table;

use crate::failure::AuthFailure;
use crate::keys::store::StoreFuture;
use crate::reason::Reason;
use http::{Extensions, HeaderMap};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use table::Table;

/// The reasons that count as failures: a credential that was presented and did not
/// verify. An expired token, a missing credential, a wrong audience or a disabled
/// account are what ordinary clients send, and guess nothing.
pub(crate) const COUNTED: &[Reason] = &[
    Reason::BasicUserUnknown,
    Reason::BasicPasswordMismatch,
    Reason::ApiKeyUnknown,
    Reason::CredentialsInvalid,
    Reason::TokenSignatureInvalid,
    Reason::DpopProofSignatureInvalid,
];

/// How many failures a key may have within a window: that many within it (the last
/// at most 1 000 are remembered) block the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Failures that fill the budget (at least 1).
    pub failures: u32,
    /// The time within which that many failures block the key.
    pub window: Duration,
}

impl Budget {
    /// The first block: the window divided by the count.
    pub(crate) fn base_block(&self) -> Duration {
        self.window / self.failures.max(1)
    }
}

/// Throttling of failed authentication for [`AuthDiagnostics::throttle`](crate::AuthDiagnostics::throttle).
///
/// Defaults: 10 failures per client address within 60 s, 30 per Basic user name within
/// 10 min; the first block lasts the window divided by the count (6 s and 20 s), each
/// further one twice the last, at most 15 min; 100 000 keys (about 20 MB at most).
/// Clones share their counts: give one throttle to several layers to count their
/// failures together. Configure it before cloning.
///
/// The client address is the connection's peer (axum's `ConnectInfo`: serve with
/// `into_make_service_with_connect_info`), or the first hop of `X-Forwarded-For` or
/// `Forwarded` that is not a [trusted proxy](crate::layer::TrustedProxies) when the peer
/// is one. An IPv6 address counts by its /64, which one client holds whole. Without
/// `ConnectInfo` only identities are counted, and the throttle says so once, at WARN, on
/// the target `auth_diagnostics::throttle`.
///
/// ```
/// use auth_diagnostics::basic::{BasicAuthenticator, BasicCredentials};
/// use auth_diagnostics::failure::AuthFailure;
/// use auth_diagnostics::throttle::Throttle;
/// use auth_diagnostics::{AuthDiagnostics, Principal, Reason};
/// use axum::extract::ConnectInfo;
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use std::net::SocketAddr;
/// use std::time::Duration;
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let basic = BasicAuthenticator::new(|c: BasicCredentials| async move {
///     match c.password.ct_eq("open sesame") {
///         true => Ok(Principal::new(c.user)),
///         false => Err(AuthFailure::new(Reason::BasicPasswordMismatch)),
///     }
/// });
/// let throttle = Throttle::new().per_address(3, Duration::from_secs(60));
/// let app = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(AuthDiagnostics::new().basic(basic).throttle(throttle));
/// // alice:wrong, then alice:open sesame, from one address.
/// let attempt = |credentials: &str| {
///     let mut req = Request::get("/")
///         .header("authorization", format!("Basic {credentials}"))
///         .body(Body::empty())
///         .unwrap();
///     let peer: SocketAddr = "192.0.2.7:5000".parse().unwrap();
///     req.extensions_mut().insert(ConnectInfo(peer));
///     req
/// };
/// for _ in 0..3 {
///     let response = app.clone().oneshot(attempt("YWxpY2U6d3Jvbmc=")).await.unwrap();
///     assert_eq!(response.status(), 401);
/// }
/// // The fourth attempt is refused before the password is checked, even the right one.
/// let right = attempt("YWxpY2U6b3BlbiBzZXNhbWU=");
/// let response = app.clone().oneshot(right).await.unwrap();
/// assert_eq!(response.status(), 429);
/// assert!(response.headers().contains_key("retry-after"));
/// assert!(!response.headers().contains_key("www-authenticate"));
/// # }
/// ```
#[derive(Clone)]
pub struct Throttle {
    address: Budget,
    identity: Option<Budget>,
    max_block: Duration,
    api_key_prefix: Option<usize>,
    table: Arc<Table>,
    shared: Option<Shared>,
    /// A shared key shorter than 16 bytes, reported when the layer is built.
    pub(crate) shared_key_short: Option<usize>,
    notes: Arc<Notes>,
}

/// What was said once already.
#[derive(Default)]
struct Notes {
    /// When the store's fault was last logged.
    store_fault: Mutex<Option<Instant>>,
    /// A request came without a peer address (logged once).
    no_address: std::sync::atomic::AtomicBool,
}

#[derive(Clone)]
struct Shared {
    store: Arc<dyn ThrottleStore>,
    key: [u8; 32],
}

/// A store that every replica counts failures into: `RedisStore` (feature `redis`), or the
/// application's own.
///
/// Keys are HMACs (under the key given to [`Throttle::shared`]) of what they count, hex
/// encoded: the store never sees an address or a user name.
pub trait ThrottleStore: Send + Sync + 'static {
    /// How much longer each of `keys` stays blocked (`None`: it is not), in order.
    fn blocked(&self, keys: &[String]) -> StoreFuture<Vec<Option<Duration>>>;

    /// Records one failure for each key under its budget, as [`Throttle`] describes
    /// (the budget's count within its window blocks, each block right after another
    /// twice as long, up to `max_block`), with the store's own clock, and returns how
    /// much longer each key stays blocked, in order.
    fn record(
        &self,
        failures: &[(String, Budget)],
        max_block: Duration,
    ) -> StoreFuture<Vec<Option<Duration>>>;
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("address", &self.address)
            .field("identity", &self.identity)
            .field("max_block", &self.max_block)
            .field("api_key_prefix", &self.api_key_prefix)
            .field("capacity", &self.table.capacity())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

/// The default number of keys the table holds.
const DEFAULT_CAPACITY: usize = 100_000;

impl Throttle {
    /// The defaults above.
    #[must_use]
    pub fn new() -> Self {
        Self {
            address: Budget {
                failures: 10,
                window: Duration::from_secs(60),
            },
            identity: Some(Budget {
                failures: 30,
                window: Duration::from_secs(600),
            }),
            max_block: Duration::from_secs(900),
            api_key_prefix: None,
            table: Arc::new(Table::new(DEFAULT_CAPACITY)),
            shared: None,
            shared_key_short: None,
            notes: Arc::default(),
        }
    }

    /// `failures` per client address within `window` (default 10 per 60 s).
    #[must_use]
    pub fn per_address(mut self, failures: u32, window: Duration) -> Self {
        self.address = budget(failures, window);
        self
    }

    /// `failures` per claimed identity within `window` (default 30 per 10 min). A higher
    /// budget than the address's: anyone can fail in someone else's name, and the owner
    /// of that name is then refused too.
    #[must_use]
    pub fn per_identity(mut self, failures: u32, window: Duration) -> Self {
        self.identity = Some(budget(failures, window));
        self
    }

    /// Counts per client address only.
    #[must_use]
    pub fn without_identity(mut self) -> Self {
        self.identity = None;
        self
    }

    /// The longest block (default 15 min).
    #[must_use]
    pub fn max_block(mut self, max: Duration) -> Self {
        self.max_block = max.max(Duration::from_secs(1));
        self
    }

    /// Counts API keys by their first `chars` characters as a claimed identity, for keys
    /// whose prefix names their owner (`<key id>.<secret>`). Off by default: a prefix
    /// every key shares (`sk_live_`) would put every client in one count.
    #[must_use]
    pub fn api_key_prefix(mut self, chars: usize) -> Self {
        self.api_key_prefix = (chars > 0).then_some(chars);
        self
    }

    /// Holds at most `keys` keys (default 100 000, at least 16).
    #[must_use]
    pub fn capacity(mut self, keys: usize) -> Self {
        self.table = Arc::new(Table::new(keys.max(16)));
        self
    }

    /// Counts into `store`, shared by every replica given the same store and `key` (at
    /// least 16 bytes, the same on every replica; a shorter one is a configuration
    /// mistake reported when the layer is built).
    #[must_use]
    pub fn shared(mut self, store: impl ThrottleStore, key: impl AsRef<[u8]>) -> Self {
        let key = key.as_ref();
        if key.len() < 16 {
            self.shared_key_short = Some(key.len());
            return self;
        }
        use sha2::{Digest, Sha256};
        self.shared = Some(Shared {
            store: Arc::new(store),
            key: Sha256::digest(key).into(),
        });
        self
    }

    /// How many keys the table holds now.
    #[doc(hidden)]
    pub fn tracked(&self) -> usize {
        self.table.len()
    }
}

fn budget(failures: u32, window: Duration) -> Budget {
    Budget {
        failures: failures.clamp(1, table::MAX_FAILURES),
        window: window.max(Duration::from_millis(1)),
    }
}

/// One key a request is counted under.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    local: u64,
    /// Its name in the shared store, when there is one.
    shared: Option<String>,
    budget: Budget,
}

/// What a request is counted under: its client address and its claimed identity.
#[derive(Clone, Debug, Default)]
pub(crate) struct Subject {
    keys: [Option<Key>; 2],
}

impl Subject {
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.iter().all(Option::is_none)
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter().flatten()
    }
}

/// The shared store's answer: the refusal when the client is blocked.
pub(crate) type CheckFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Option<AuthFailure>> + Send>>;

/// A failure on its way to the shared store.
pub(crate) type RecordFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Where a request sends what throttling reads.
pub(crate) struct Sent<'a> {
    pub proxies: &'a crate::proxy::TrustedProxies,
    pub schemes: &'a [Arc<dyn crate::authn::AuthScheme>],
    pub headers: &'a HeaderMap,
    pub uri: &'a http::Uri,
    pub extensions: &'a Extensions,
    pub request_id: &'a str,
}

impl Throttle {
    /// The keys a request is counted under.
    pub(crate) fn subject(&self, sent: &Sent<'_>) -> Subject {
        let address = match sent.proxies.client_ip(sent.headers, sent.extensions) {
            Some(ip) => {
                let (bytes, len) = address_bytes(ip);
                Some(self.key(b'a', &[&bytes[..len]], self.address))
            }
            None => {
                self.no_address(sent.request_id);
                None
            }
        };
        // Decoded here, on the stack: the scheme decodes (and checks) it again later.
        let mut buffer = [0; BASIC_DECODED];
        let identity = self.identity.and_then(|budget| {
            let (kind, name) = self.claimed(sent, &mut buffer)?;
            Some(self.key(b'i', &[kind, name], budget))
        });
        Subject {
            keys: [address, identity],
        }
    }

    fn key(&self, kind: u8, material: &[&[u8]], budget: Budget) -> Key {
        let mut h = crate::sanitize::process_hasher().build_hasher();
        h.write_u8(kind);
        material.iter().for_each(|m| h.write(m));
        let shared = self.shared.as_ref().map(|s| {
            use hmac::{Hmac, Mac};
            let mut mac =
                <Hmac<sha2::Sha256> as Mac>::new_from_slice(&s.key).expect("any key length");
            mac.update(&[kind]);
            material.iter().for_each(|m| mac.update(m));
            let tag = mac.finalize().into_bytes();
            tag[..16].iter().map(|b| format!("{b:02x}")).collect()
        });
        Key {
            local: h.finish(),
            shared,
            budget,
        }
    }

    /// The claimed identity: the Basic user name, or the API key's prefix when counted
    /// (read where the layer's API-key scheme reads keys).
    fn claimed<'a>(
        &self,
        sent: &Sent<'a>,
        buffer: &'a mut [u8; BASIC_DECODED],
    ) -> Option<(&'static [u8], &'a [u8])> {
        let basic = sent
            .headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .find_map(|value| basic_token(value.as_bytes()));
        if let Some(token) = basic {
            return Some((b"basic:", basic_user(token, buffer)?));
        }
        let chars = self.api_key_prefix?;
        let evidence = crate::evidence::Evidence::new(sent.headers, sent.uri);
        let key = sent.schemes.iter().find_map(|s| s.sent_key(&evidence))?;
        let key = std::str::from_utf8(key).ok()?.trim();
        let end = key.char_indices().nth(chars).map_or(key.len(), |(i, _)| i);
        let prefix = &key.as_bytes()[..end];
        (key[..end].chars().count() == chars).then_some((b"key:", prefix))
    }

    /// Without a peer address only identities are counted: said once per throttle, at
    /// WARN, on the target `auth_diagnostics::throttle`.
    fn no_address(&self, request_id: &str) {
        use std::sync::atomic::Ordering;
        if self.notes.no_address.swap(true, Ordering::Relaxed) {
            return;
        }
        tracing::warn!(
            target: "auth_diagnostics::throttle",
            request_id,
            "throttling cannot count this request by client address: it has no peer \
             address (serve the app with into_make_service_with_connect_info::<SocketAddr>())"
        );
    }

    /// The layer's refusal when one of `subject`'s keys is blocked here.
    pub(crate) fn check_local(&self, subject: &Subject) -> Option<AuthFailure> {
        let now = Instant::now();
        let left = subject
            .keys()
            .filter_map(|k| self.table.blocked(k.local, now))
            .max()?;
        Some(throttled(left))
    }

    /// Whether the shared store has to be asked before the request is verified.
    pub(crate) fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Asks the shared store whether `subject` is blocked; a store fault is logged and the
    /// local answer (already given: not blocked) stands.
    pub(crate) fn check_shared(&self, subject: Subject) -> CheckFuture {
        let this = self.clone();
        Box::pin(async move {
            let shared = this.shared.as_ref()?;
            let keys: Vec<&Key> = subject.keys().filter(|k| k.shared.is_some()).collect();
            let names: Vec<String> = keys.iter().filter_map(|k| k.shared.clone()).collect();
            match shared.store.blocked(&names).await {
                Ok(blocks) => this.learn(&keys, &blocks).map(throttled),
                Err(e) => {
                    this.store_fault(&e);
                    None
                }
            }
        })
    }

    /// Remembers here the blocks the shared store reported for `keys` (one answer per
    /// key: a block is never spread to another key of the request), so that the next
    /// request needs no round trip; the longest.
    fn learn(&self, keys: &[&Key], blocks: &[Option<Duration>]) -> Option<Duration> {
        let now = Instant::now();
        let mut longest = None;
        for (key, block) in keys.iter().zip(blocks) {
            if let Some(left) = block.filter(|left| !left.is_zero()) {
                self.table.block_until(key.local, now + left);
                longest = longest.max(Some(left));
            }
        }
        longest
    }

    /// Records a failure of `subject` here; the shared store's record, when there is one.
    pub(crate) fn record(&self, subject: &Subject) -> Option<RecordFuture> {
        let now = Instant::now();
        for key in subject.keys() {
            self.table.fail(key.local, key.budget, self.max_block, now);
        }
        self.shared.as_ref()?;
        let this = self.clone();
        let subject = subject.clone();
        Some(Box::pin(async move {
            let Some(shared) = &this.shared else { return };
            let keys: Vec<&Key> = subject.keys().filter(|k| k.shared.is_some()).collect();
            let failures: Vec<(String, Budget)> = keys
                .iter()
                .filter_map(|k| Some((k.shared.clone()?, k.budget)))
                .collect();
            match shared.store.record(&failures, this.max_block).await {
                Ok(blocks) => {
                    this.learn(&keys, &blocks);
                }
                Err(e) => this.store_fault(&e),
            }
        }))
    }

    /// The shared store cannot answer: counting goes on here. Logged at ERROR once a minute.
    fn store_fault(&self, e: &crate::keys::store::StoreError) {
        let now = Instant::now();
        let mut last = self
            .notes
            .store_fault
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(60)) {
            return;
        }
        *last = Some(now);
        drop(last);
        tracing::error!(
            target: "auth_diagnostics",
            error = %e,
            "the throttling store cannot answer: failures are counted by this replica alone \
             until it can (each replica then allows its own budget)"
        );
    }
}

/// 429 `throttled`, retry after `left` (whole seconds, at least 1).
fn throttled(left: Duration) -> AuthFailure {
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    AuthFailure::new(Reason::Throttled)
        .detail(format!(
            "this client failed to authenticate too often; it may try again in {secs} s"
        ))
        .retry_after(secs.max(1))
}

/// Room for the most a Basic token decodes to that the scheme reads (a user name of 256
/// bytes, a `:` and a password of 1 KiB: a token of 1 708 characters), as the decoder
/// asks for it (three bytes for every four characters, rounded up).
const BASIC_DECODED: usize = 1708 / 4 * 3 + 3;

/// The token of `Authorization: Basic <token>`.
fn basic_token(authorization: &[u8]) -> Option<&[u8]> {
    match authorization.get(..6) {
        Some(word) if word.eq_ignore_ascii_case(b"basic ") => Some(authorization[6..].trim_ascii()),
        _ => None,
    }
}

/// The user name of a Basic `token`, as sent, decoded into `buffer` (the scheme checks it
/// later: one that does not decode is `basic_malformed`, which is not counted).
fn basic_user<'a>(token: &[u8], buffer: &'a mut [u8; BASIC_DECODED]) -> Option<&'a [u8]> {
    use base64::Engine;
    if token.len() / 4 * 3 + 3 > BASIC_DECODED {
        return None;
    }
    let len = base64::engine::general_purpose::STANDARD
        .decode_slice(token, &mut buffer[..])
        .ok()?;
    let colon = buffer[..len].iter().position(|&b| b == b':')?;
    Some(&buffer[..colon])
}

/// What an address is counted as: IPv4 whole, IPv6 by its /64.
fn address_bytes(ip: IpAddr) -> ([u8; 8], usize) {
    let mut bytes = [0; 8];
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            bytes[..4].copy_from_slice(&v4.octets());
            (bytes, 4)
        }
        IpAddr::V6(v6) => {
            bytes.copy_from_slice(&v6.octets()[..8]);
            (bytes, 8)
        }
    }
}
