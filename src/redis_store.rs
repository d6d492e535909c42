//! [`RedisStore`] (feature `redis`): DPoP replay protection, last-known-good key sets and
//! the revocation list shared by several replicas through one Redis.

use crate::authn::dpop::{ProofId, ReplayFuture, ReplayOutcome, ReplayStore};
#[cfg(feature = "http-client")]
use crate::authn::introspection::IntrospectionStore;
use crate::keys::store::{KeySetStore, StoreError, StoreFuture, StoredKeySet};
use crate::revocation::{CredentialIds, Revocation, RevocationFuture, RevocationList, RevokedBy};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// One Redis shared by every replica: give it to
/// [`Dpop::replay_store`](crate::dpop::Dpop::replay_store) and to
/// [`KeySource::shared_store`](crate::keys::KeySource::shared_store). Clones share one
/// connection.
///
/// ```no_run
/// use auth_diagnostics::dpop::Dpop;
/// use auth_diagnostics::jwt::JwtAuthenticator;
/// use auth_diagnostics::keys::KeySource;
/// use auth_diagnostics::store::RedisStore;
/// use auth_diagnostics::AuthDiagnostics;
///
/// let redis = RedisStore::open("redis://redis.internal:6379").expect("a redis:// URL");
/// // Stored key sets are MACed with this key: the same on every replica, kept secret.
/// let share_key = std::env::var("KEY_SET_SHARE_KEY").expect("a key");
/// let keys = KeySource::discover("https://login.example").shared_store(redis.clone(), share_key);
/// let tokens = JwtAuthenticator::from_source(keys)
///     .issuer("https://login.example")
///     .audience("orders-api");
/// let dpop = Dpop::new(tokens).public_origin("https://api.example");
/// let layer = AuthDiagnostics::new()
///     .dpop(dpop.replay_store(redis))
///     // Equal fingerprints on every replica (read the key from your secret store).
///     .fingerprint_key(std::env::var("LOG_FINGERPRINT_KEY").expect("a key"));
/// # let _ = layer;
/// ```
///
/// - A used proof is one key, `{prefix}dpop:{hex}`, set only when absent (atomic: of
///   two replicas that see one proof, one wins) and expiring when the proof could no
///   longer be accepted anyway. It holds a hash of the proof's key and `jti`, nothing
///   from the client.
/// - Each DPoP key's unexpired proofs are counted in a sorted set, `{prefix}dpop-key:{hex}`
///   (a hash of the key's thumbprint; members the proofs' hashes, scored by expiry),
///   expiring with its last proof. A key holding its share
///   ([`dpop_key_share`](RedisStore::dpop_key_share), default 3 125) is refused on its
///   own: 429 `dpop_key_over_quota`. One Lua script checks and records both.
/// - A key set is one key per source, `{prefix}jwks:{sha256 of the URL}`: JSON with the
///   set's public members (`jwks`), when it was fetched (`fetched_at_ms`) and its MAC;
///   a save never replaces a newer set (a compare-and-set script), expiring after the source's
///   [`max_shared_age`](crate::keys::KeySource::max_shared_age).
/// - A revocation ([`RevocationList`], `AuthDiagnostics::revocation`) is one key,
///   `{prefix}revoked:{hex}` (a SHA-256 of its kind and value:
///   [`RevocationKey`](crate::store::RevocationKey)), holding its not-before time (`-1`: every credential it names) and expiring
///   [`revocation_lifetime`](RedisStore::revocation_lifetime) (default 24 h) after the
///   revocation, or after its not-before time for a `sub`. Every replica sees a revocation
///   on its next check: one round trip, no cache. Redis bounds the entries (its
///   `maxmemory`; each is about 100 bytes). A key planted in Redis can only refuse
///   credentials, never accept one.
/// - An introspection answer
///   ([`Introspector::shared_cache`](crate::introspection::Introspector::shared_cache)) is
///   one key, `{prefix}introspection:{hex}` (an HMAC of the token), holding the answer
///   sealed with a MAC under the application's key, and expiring when the answer stops
///   being usable (at most the cache's max age, never past the token's `exp`). An entry
///   that does not carry a valid MAC is ignored: Redis cannot make a token active.
///
/// The connection is made on first use and re-made after a loss. Each command has a time
/// limit (default 1 s). When Redis cannot answer, replay checks fail closed (503
/// `dpop_replay_store_unavailable`, `Retry-After`), and key sources go on with the keys
/// in memory and the identity provider.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    key_share: u64,
    /// How long a revocation is kept, in seconds.
    revocation_lifetime: i64,
    /// The URL for `Debug` and errors, without user-info.
    shown: String,
}

impl RedisStore {
    /// A store at `url` (`redis://[user:password@]host[:port][/db]`, or `rediss://` for
    /// TLS), with keys under `auth-diagnostics:`. Nothing connects until first use.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::new(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client: client.clone(),
                connection: OnceCell::new(),
                prefix: "auth-diagnostics:".to_owned(),
                timeout: Duration::from_secs(1),
                key_share: DEFAULT_KEY_SHARE,
                revocation_lifetime: 24 * 3600,
                shown: crate::keys::shown_source(url),
            }),
        })
    }

    /// Puts every key under `prefix` instead of `auth-diagnostics:` (several services on
    /// one Redis, say). Call it before cloning the store.
    ///
    /// # Panics
    /// On a clone.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.inner_mut().prefix = prefix.into();
        self
    }

    /// The most a command (and a connection attempt) may take (default 1 s). Requests
    /// that check a DPoP proof wait that long at most when Redis does not answer.
    ///
    /// # Panics
    /// On a clone.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.inner_mut().timeout = timeout;
        self
    }

    /// The most unexpired DPoP proofs one key (`jkt`) may hold (default 3 125, as
    /// [`MemoryReplayStore`](crate::store::MemoryReplayStore)'s default share; at least 1): past
    /// it that key gets 429 `dpop_key_over_quota` until its oldest proof expires, and one
    /// client flooding distinct proofs cannot fill Redis. The share holds across the
    /// fleet, and each proof is held for its window (91 s by default), so the default lets
    /// one key keep up about 34 requests a second over all replicas together (3 125 / 91),
    /// or send 3 125 at once; raise it for clients that need more. It bounds each key, not
    /// how many keys: Redis holds up to a share for every key flooding at once.
    ///
    /// # Panics
    /// On a clone.
    pub fn dpop_key_share(mut self, proofs: u64) -> Self {
        self.inner_mut().key_share = proofs.max(1);
        self
    }

    /// How long a revocation is kept (default 24 h, at least 1 s): the longest a token or
    /// session the layer accepts lives, as
    /// [`MemoryRevocationList::max_token_lifetime`](crate::store::MemoryRevocationList::max_token_lifetime).
    ///
    /// # Panics
    /// On a clone.
    pub fn revocation_lifetime(mut self, lifetime: Duration) -> Self {
        self.inner_mut().revocation_lifetime = (lifetime.as_secs() as i64).max(1);
        self
    }

    /// The store's URL without user-info (for a start-up line).
    pub fn url(&self) -> &str {
        &self.inner.shown
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner)
            .expect("auth-diagnostics: configure a RedisStore before cloning it")
    }

    /// Runs `cmd` within the time limit, connecting first if needed.
    async fn query<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, StoreError> {
        let inner = &self.inner;
        let run = async {
            // Configured once, when the first command connects.
            let connect = || {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(inner.timeout))
                    .set_response_timeout(Some(inner.timeout))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(inner.client.clone(), config)
            };
            let manager = inner.connection.get_or_try_init(connect).await?;
            cmd.query_async::<T>(&mut manager.clone()).await
        };
        match tokio::time::timeout(inner.timeout, run).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError::new(format!("redis at {}: {e}", inner.shown))),
            Err(_) => Err(StoreError::new(format!(
                "redis at {} did not answer within {:?}",
                inner.shown, inner.timeout
            ))),
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.shown)
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

/// The default [`RedisStore::dpop_key_share`].
const DEFAULT_KEY_SHARE: u64 = 3125;

/// Records a proof unless seen or its key is over its share. KEYS[1] the proof's key,
/// KEYS[2] its DPoP key's sorted set; ARGV now, expires_at, share, the proof's member.
/// Answers `{0, 0}` seen, `{1, 0}` new, `{2, seconds}` over the share.
const RECORD_PROOF: &str = r#"
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, 0}
end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {2, tonumber(first[2]) - now}
end
local ttl = math.max(tonumber(ARGV[2]) - now, 1)
redis.call('SET', KEYS[1], 1, 'EX', ttl)
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('EXPIRE', KEYS[2], math.max(tonumber(last[2]) - now, 1))
return {1, 0}
"#;

impl ReplayStore for RedisStore {
    fn insert(&self, id: ProofId, expires_at: i64) -> ReplayFuture {
        let store = self.clone();
        Box::pin(async move {
            let prefix = &store.inner.prefix;
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(RECORD_PROOF).arg(2);
            cmd.arg(format!("{prefix}dpop:{}", id.to_hex()));
            cmd.arg(format!("{prefix}dpop-key:{}", id.key_hex()));
            cmd.arg(crate::time::now()).arg(expires_at);
            cmd.arg(store.inner.key_share).arg(id.to_hex());
            let answer: Vec<i64> = store.query(cmd).await?;
            match answer.as_slice() {
                [0, _] => Ok(ReplayOutcome::Seen),
                [1, _] => Ok(ReplayOutcome::New),
                [2, secs] => Ok(ReplayOutcome::KeyOverQuota {
                    retry_after: (*secs).max(1) as u64,
                }),
                other => Err(StoreError::new(format!(
                    "redis at {} answered {other:?} to the replay check",
                    store.inner.shown
                ))),
            }
        })
    }
}

/// A stored key set's value: its time and the set, as JSON.
#[derive(serde::Serialize, serde::Deserialize)]
struct Value {
    fetched_at_ms: i64,
    jwks: String,
    mac: String,
}

/// `SET` unless the stored value has a later `fetched_at_ms`: KEYS[1], ARGV value, its
/// `fetched_at_ms`, the expiry in seconds. A value that is not ours is replaced.
const SAVE_IF_NEWER: &str = r#"
local had = redis.call('GET', KEYS[1])
if had then
  local ok, value = pcall(cjson.decode, had)
  if ok and type(value) == 'table' and tonumber(value.fetched_at_ms)
     and tonumber(value.fetched_at_ms) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"#;

impl KeySetStore for RedisStore {
    fn load(&self, source: &str) -> StoreFuture<Option<StoredKeySet>> {
        let store = self.clone();
        let key = format!("{}jwks:{source}", self.inner.prefix);
        Box::pin(async move {
            let mut cmd = redis::cmd("GET");
            cmd.arg(&key);
            let Some(text) = store.query::<Option<String>>(cmd).await? else {
                return Ok(None);
            };
            let value: Value = serde_json::from_str(&text)
                .map_err(|e| StoreError::new(format!("the stored key set is not ours: {e}")))?;
            Ok(Some(StoredKeySet {
                jwks: value.jwks,
                fetched_at_ms: value.fetched_at_ms,
                mac: value.mac,
            }))
        })
    }

    fn save(&self, source: &str, set: StoredKeySet, ttl: u64) -> StoreFuture<()> {
        let store = self.clone();
        let key = format!("{}jwks:{source}", self.inner.prefix);
        Box::pin(async move {
            let value_time = set.fetched_at_ms;
            let value = Value {
                fetched_at_ms: set.fetched_at_ms,
                jwks: set.jwks,
                mac: set.mac,
            };
            let text = serde_json::to_string(&value).map_err(|e| StoreError::new(e.to_string()))?;
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(SAVE_IF_NEWER).arg(1).arg(key).arg(text);
            cmd.arg(value_time).arg(ttl.max(1));
            store.query::<i64>(cmd).await.map(drop)
        })
    }
}

/// Records a revocation: KEYS[1]; ARGV its not-before time (`-1`: every credential) and
/// its time to live in seconds. Keeps the later not-before and the longer life.
const REVOKE: &str = r#"
local had = tonumber(redis.call('GET', KEYS[1]))
local nb = tonumber(ARGV[1])
if had and (had == -1 or (nb ~= -1 and had > nb)) then
  nb = had
end
local ttl = tonumber(ARGV[2])
local left = redis.call('TTL', KEYS[1])
if left > ttl then
  ttl = left
end
redis.call('SET', KEYS[1], nb, 'EX', ttl)
return 1
"#;

impl RevocationList for RedisStore {
    fn revoke(&self, revocation: Revocation) -> RevocationFuture<()> {
        let store = self.clone();
        Box::pin(async move {
            let (key, not_before) = revocation.key();
            let now = crate::time::now();
            let lifetime = store.inner.revocation_lifetime;
            let (stored, ttl) = match not_before {
                i64::MAX => (-1, lifetime),
                t => (t, (t - now).max(0).saturating_add(lifetime)),
            };
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(REVOKE).arg(1);
            cmd.arg(format!("{}revoked:{}", store.inner.prefix, key.to_hex()));
            cmd.arg(stored).arg(ttl.max(1));
            store.query::<i64>(cmd).await.map(drop)
        })
    }

    fn check(&self, ids: CredentialIds) -> RevocationFuture<Option<RevokedBy>> {
        let store = self.clone();
        Box::pin(async move {
            let keys: Vec<_> = ids.keys().collect();
            if keys.is_empty() {
                return Ok(None);
            }
            let mut cmd = redis::cmd("MGET");
            for (_, key) in &keys {
                cmd.arg(format!("{}revoked:{}", store.inner.prefix, key.to_hex()));
            }
            let found: Vec<Option<i64>> = store.query(cmd).await?;
            Ok(keys.iter().zip(found).find_map(|((by, _), not_before)| {
                let not_before = match not_before? {
                    -1 => i64::MAX,
                    t => t,
                };
                ids.issued_before(not_before).then_some(*by)
            }))
        })
    }
}

#[cfg(feature = "http-client")]
impl IntrospectionStore for RedisStore {
    fn load(&self, name: &str) -> StoreFuture<Option<Vec<u8>>> {
        let store = self.clone();
        let key = format!("{}introspection:{name}", self.inner.prefix);
        Box::pin(async move {
            let mut cmd = redis::cmd("GET");
            cmd.arg(&key);
            store.query::<Option<Vec<u8>>>(cmd).await
        })
    }

    fn save(&self, name: &str, entry: Vec<u8>, ttl: Duration) -> StoreFuture<()> {
        let store = self.clone();
        let key = format!("{}introspection:{name}", self.inner.prefix);
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key)
                .arg(entry)
                .arg("PX")
                .arg(ttl.as_millis().max(1) as u64);
            store.query::<()>(cmd).await
        })
    }
}

/// How long each of KEYS (block keys) stays blocked, in ms (0: it is not).
const THROTTLE_CHECK: &str = r#"
local left = {}
for i = 1, #KEYS do
  left[i] = math.max(redis.call('PTTL', KEYS[i]), 0)
end
return left
"#;

/// One failure for each triple of KEYS (a hash of strikes and block end, a list of the
/// last failures' times, a block key), under ARGV's budgets (the failures, the window and
/// the first block, in ms, for each triple; the longest block last), with Redis's clock,
/// as `Throttle` describes. Returns how long each triple's key stays blocked, in ms.
const THROTTLE_RECORD: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max_block = tonumber(ARGV[#ARGV])
local blocked = {}
for i = 1, #KEYS / 3 do
  local state, log, block = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local failures = tonumber(ARGV[3 * i - 2])
  local window = tonumber(ARGV[3 * i - 1])
  local base = tonumber(ARGV[3 * i])
  local s = redis.call('HMGET', state, 'strikes', 'until')
  local strikes = tonumber(s[1]) or 0
  local blocked_until = tonumber(s[2]) or 0
  local last = tonumber(redis.call('LINDEX', log, -1)) or 0
  if now - math.max(last, blocked_until) >= window then
    redis.call('DEL', log)
    strikes = 0
  end
  redis.call('RPUSH', log, tostring(now))
  redis.call('LTRIM', log, -failures, -1)
  local oldest = tonumber(redis.call('LINDEX', log, 0))
  if redis.call('LLEN', log) >= failures and now - oldest < window then
    strikes = math.min(strikes + 1, 32)
    local b = math.max(math.min(base * 2 ^ (strikes - 1), max_block), 1)
    blocked_until = math.max(blocked_until, now + b)
  end
  local left = math.max(math.floor(blocked_until - now), 0)
  if left > 0 then
    redis.call('SET', block, '1', 'PX', left)
  end
  blocked[i] = left
  redis.call('HSET', state, 'strikes', tostring(strikes), 'until', tostring(blocked_until))
  local ttl = math.floor(window + math.max(left, 0))
  redis.call('PEXPIRE', state, ttl)
  redis.call('PEXPIRE', log, ttl)
end
return blocked
"#;

/// Failed authentication counted by every replica
/// ([`Throttle::shared`](crate::throttle::Throttle::shared)): per key a hash
/// `{prefix}throttle:{hex}` (its blocks since it was last quiet, and until when it is
/// blocked) and a list `{prefix}throttle-log:{hex}` (the times of its last failures, at
/// most the budget's count), both expiring a window after the last failure or the
/// block's end, and while it is blocked a key `{prefix}throttle-block:{hex}` that
/// expires with the block. A request reads the block keys (one round trip); a failure runs one script
/// that counts and blocks with Redis's clock. The hex is an HMAC of the address or user
/// name: Redis holds neither.
impl crate::throttle::ThrottleStore for RedisStore {
    fn blocked(&self, keys: &[String]) -> StoreFuture<Vec<Option<Duration>>> {
        let store = self.clone();
        let keys: Vec<String> = keys
            .iter()
            .map(|k| format!("{}throttle-block:{k}", self.inner.prefix))
            .collect();
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(THROTTLE_CHECK).arg(keys.len()).arg(keys);
            Ok(blocks(store.query(cmd).await?))
        })
    }

    fn record(
        &self,
        failures: &[(String, crate::throttle::Budget)],
        max_block: Duration,
    ) -> StoreFuture<Vec<Option<Duration>>> {
        let store = self.clone();
        let prefix = &self.inner.prefix;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(THROTTLE_RECORD).arg(failures.len() * 3);
        for (key, _) in failures {
            cmd.arg(format!("{prefix}throttle:{key}"));
            cmd.arg(format!("{prefix}throttle-log:{key}"));
            cmd.arg(format!("{prefix}throttle-block:{key}"));
        }
        for (_, budget) in failures {
            cmd.arg(budget.failures);
            cmd.arg(budget.window.as_millis().max(1) as u64);
            cmd.arg(budget.base_block().as_millis().max(1) as u64);
        }
        cmd.arg(max_block.as_millis().max(1) as u64);
        let empty = failures.is_empty();
        Box::pin(async move {
            if empty {
                return Ok(Vec::new());
            }
            Ok(blocks(store.query(cmd).await?))
        })
    }
}

/// Milliseconds left per key, as the throttling scripts give them.
fn blocks(left: Vec<i64>) -> Vec<Option<Duration>> {
    left.into_iter()
        .map(|ms| (ms > 0).then(|| Duration::from_millis(ms as u64)))
        .collect()
}
