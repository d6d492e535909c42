//! The verified-token cache: a client sends the same token for many requests, and a
//! signature check (tens of µs for ES256 and RS256) becomes a hash lookup.
//!
//! What keeps it safe: a token that passed every check is cached with its principal; a
//! token that failed is cached with its failure only where the failure cannot change
//! (expired, a signature that does not verify with these keys, a wrong issuer, audience,
//! type or claim), never one that can (`token_key_unknown`, `key_source_unavailable`,
//! `token_not_yet_valid`). An entry is found by a keyed hash of the whole token and then
//! compared with it byte for byte (in constant time), so a collision can only miss; it
//! never outlives the token's `exp` (plus the leeway the authenticator allows), the
//! configured TTL, or the key set that verified it (any change to an issuer's published
//! keys makes its entries stale); entries and bytes are bounded, the oldest evicted first.
//! A repeated bad token then costs no more than a repeated good one.

use super::Principal;
use crate::failure::AuthFailure;
use crate::reason::Reason;
use crate::secret::constant_time_eq;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Settings of the verified-token cache of a layer's Bearer scheme
/// ([`AuthDiagnostics::token_cache`](crate::AuthDiagnostics::token_cache)).
///
/// Defaults: 10 000 tokens, 16 MiB, 5 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct TokenCache {
    max_entries: usize,
    max_bytes: usize,
    ttl: Duration,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_bytes: 16 << 20,
            ttl: Duration::from_secs(300),
        }
    }
}

impl TokenCache {
    /// The default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most tokens kept.
    pub fn max_entries(mut self, entries: usize) -> Self {
        self.max_entries = entries;
        self
    }

    /// The most bytes kept (tokens and their claims, estimated).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The longest an entry is kept, whatever the token's `exp` says.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

/// What a layer's token cache has done since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenCacheStats {
    /// Requests whose token was found (no signature check).
    pub hits: u64,
    /// Requests whose token was not found, or found stale.
    pub misses: u64,
    /// Entries dropped to stay within the bounds.
    pub evictions: u64,
    /// Entries now.
    pub entries: u64,
    /// Estimated bytes now.
    pub bytes: u64,
}

const SHARDS: usize = 16;

/// How long a failure is remembered, in seconds.
const FAILURE_TTL: i64 = 10;

/// Bytes an entry is counted for besides its token: the claims (about the token's size
/// again, decoded) and the bookkeeping.
const ENTRY_OVERHEAD: usize = 256;

/// A cache in use.
pub(crate) struct Cache {
    settings: TokenCache,
    hasher: std::collections::hash_map::RandomState,
    shards: [Mutex<Shard>; SHARDS],
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    /// The `scheme` label of this cache's metrics.
    scheme: &'static str,
}

#[derive(Default)]
struct Shard {
    map: HashMap<u64, Entry>,
    /// Insertion order (hash, sequence), oldest first; stale pairs are skipped.
    order: VecDeque<(u64, u64)>,
    bytes: usize,
    seq: u64,
}

struct Entry {
    token: Box<[u8]>,
    outcome: Result<Principal, AuthFailure>,
    /// Which authenticator verified it, and its key epoch then.
    issuer: usize,
    epoch: u64,
    /// Seconds since the epoch from which it is no longer valid.
    until: i64,
    seq: u64,
    bytes: usize,
}

/// A decided token to remember.
pub(crate) struct Verified<'a> {
    pub token: &'a str,
    pub outcome: Result<&'a Principal, &'a AuthFailure>,
    pub issuer: usize,
    pub epoch: u64,
    /// The last second the token is still accepted: `exp + leeway - 1`, if it has `exp`.
    pub valid_through: Option<i64>,
}

impl Cache {
    /// A cache for the scheme whose metrics label is `scheme`.
    pub(crate) fn new(settings: TokenCache, scheme: &'static str) -> Self {
        Self {
            scheme,
            settings,
            hasher: Default::default(),
            shards: Default::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[(hash as usize) % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// What `token` was decided before, when nothing has changed since: still before its
    /// expiry and the TTL, the same keys (`epoch(issuer)`).
    pub(crate) fn get(
        &self,
        token: &str,
        now: i64,
        epoch: impl Fn(usize) -> u64,
    ) -> Option<Result<Principal, AuthFailure>> {
        let hash = self.hasher.hash_one(token.as_bytes());
        let mut shard = self.shard(hash);
        let found = match shard.map.get(&hash) {
            Some(e) if constant_time_eq(&e.token, token.as_bytes()) => {
                (now < e.until && e.epoch == epoch(e.issuer)).then(|| e.outcome.clone())
            }
            _ => None,
        };
        crate::metrics::token_cache_lookup(self.scheme, found.is_some());
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            // A stale entry goes now rather than when it is evicted.
            if let Some(e) = shard.map.remove(&hash) {
                shard.bytes -= e.bytes;
            }
        }
        found
    }

    /// Remembers a token that passed every check, or failed one for good.
    pub(crate) fn put(&self, v: Verified<'_>, now: i64) {
        if let Err(f) = v.outcome {
            if !settled(f.reason()) {
                return;
            }
        }
        let ttl = i64::try_from(self.settings.ttl.as_secs()).unwrap_or(i64::MAX);
        let until = now.saturating_add(ttl);
        let until = match (v.outcome, v.valid_through) {
            (Ok(_), Some(last)) => until.min(last.saturating_add(1)),
            (Ok(_), None) => until,
            // A failure's log detail ("expired 3h ago") stays true to within seconds.
            (Err(_), _) => until.min(now.saturating_add(FAILURE_TTL)),
        };
        let bytes = v.token.len() * 2 + ENTRY_OVERHEAD;
        let (max_entries, max_bytes) = (
            self.settings.max_entries.div_ceil(SHARDS),
            self.settings.max_bytes / SHARDS,
        );
        if until <= now || max_entries == 0 || bytes > max_bytes {
            return;
        }
        let hash = self.hasher.hash_one(v.token.as_bytes());
        let mut shard = self.shard(hash);
        let shard = &mut *shard;
        if let Some(old) = shard.map.remove(&hash) {
            shard.bytes -= old.bytes;
        }
        let mut evicted = 0;
        while shard.map.len() >= max_entries || shard.bytes + bytes > max_bytes {
            let Some((h, seq)) = shard.order.pop_front() else {
                break;
            };
            if shard.map.get(&h).is_some_and(|e| e.seq == seq) {
                let e = shard.map.remove(&h).expect("just seen");
                shard.bytes -= e.bytes;
                evicted += 1;
            }
        }
        if evicted > 0 {
            self.evictions.fetch_add(evicted, Ordering::Relaxed);
            crate::metrics::token_cache_evictions(self.scheme, evicted);
        }
        shard.seq += 1;
        let seq = shard.seq;
        shard.order.push_back((hash, seq));
        shard.bytes += bytes;
        shard.map.insert(
            hash,
            Entry {
                token: v.token.as_bytes().into(),
                outcome: v.outcome.cloned().map_err(Clone::clone),
                issuer: v.issuer,
                epoch: v.epoch,
                until,
                seq,
                bytes,
            },
        );
        // Stale order pairs of replaced or removed entries: keep the queue bounded.
        if shard.order.len() > 2 * max_entries + 16 {
            let Shard { map, order, .. } = shard;
            order.retain(|(h, seq)| map.get(h).is_some_and(|e| e.seq == *seq));
        }
    }

    pub(crate) fn stats(&self) -> TokenCacheStats {
        let (mut entries, mut bytes) = (0, 0);
        for shard in &self.shards {
            let s = shard.lock().unwrap_or_else(PoisonError::into_inner);
            entries += s.map.len() as u64;
            bytes += s.bytes as u64;
        }
        TokenCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            entries,
            bytes,
        }
    }
}

/// Whether a token's failure stays the same while the key set does: what the token says
/// of itself (its signature, type, claims, issuer, audience) and an expiry, which time
/// never undoes. Not a missing key, an unreachable key source, or a token not valid yet.
fn settled(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::TokenExpired
            | Reason::TokenSignatureInvalid
            | Reason::TokenAlgorithmRejected
            | Reason::TokenIssuerMismatch
            | Reason::TokenAudienceMismatch
            | Reason::TokenTypeRejected
            | Reason::TokenClaimMissing
            | Reason::TokenClaimInvalid
            | Reason::TokenCritUnsupported
            | Reason::TokenKidMissing
    )
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("settings", &self.settings)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(cache: &Cache, token: &str, now: i64, valid_through: Option<i64>) {
        let p = Principal::new("alice");
        cache.put(
            Verified {
                token,
                outcome: Ok(&p),
                issuer: 0,
                epoch: 7,
                valid_through,
            },
            now,
        );
    }

    #[test]
    fn expiry_ttl_and_epoch_end_an_entry() {
        let cache = Cache::new(TokenCache::new().ttl(Duration::from_secs(60)), "bearer");
        put(&cache, "a.b.c", 1000, Some(1010));
        assert!(cache.get("a.b.c", 1010, |_| 7).is_some());
        assert!(
            cache.get("a.b.c", 1011, |_| 7).is_none(),
            "past exp + leeway"
        );
        put(&cache, "a.b.c", 1000, None);
        assert!(cache.get("a.b.c", 1059, |_| 7).is_some());
        assert!(cache.get("a.b.c", 1060, |_| 7).is_none(), "past the TTL");
        put(&cache, "a.b.c", 1000, None);
        assert!(
            cache.get("a.b.c", 1001, |_| 8).is_none(),
            "the keys changed"
        );
        assert!(cache.get("a.b.d", 1001, |_| 7).is_none());
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.entries), (2, 4, 0));
    }

    #[test]
    fn entries_and_bytes_are_bounded() {
        let cache = Cache::new(TokenCache::new().max_entries(64), "bearer");
        for i in 0..10_000 {
            put(&cache, &format!("token-{i}"), 0, None);
        }
        let s = cache.stats();
        assert!(s.entries <= 64, "{s:?}");
        assert!(s.evictions >= 10_000 - 64);
        // The newest survive.
        assert!(cache.get("token-9999", 1, |_| 7).is_some());

        let cache = Cache::new(TokenCache::new().max_bytes(16 * 4096), "bearer");
        let big = "x".repeat(1500);
        for i in 0..1000 {
            put(&cache, &format!("{big}{i}"), 0, None);
        }
        assert!(cache.stats().bytes <= 16 * 4096, "{:?}", cache.stats());
        // A token larger than a shard's share is never kept.
        put(&cache, &"y".repeat(8192), 0, None);
        assert!(cache.get(&"y".repeat(8192), 1, |_| 7).is_none());
    }
}
