//! The verified-token cache: a client sends the same token for many requests, and a
//! signature check (tens of µs for ES256 and RS256) becomes a hash lookup.
//!
//! What it admits: a token is cached only on its second verification. The first time a
//! token is decided, only three bits of its keyed hash are set in the doorkeeper, a fixed
//! bitset (a blocked Bloom filter, one 64-bit word per token) that is cleared whenever
//! as many tokens as the cache holds have been recorded in it since the last clear (as
//! TinyLFU's doorkeeper is); the second time, the token goes into the cache. A token seen
//! once (most of a flood of distinct tokens, or a working set larger than the cache walked
//! in turn) then costs no insert, no copy of its principal and no eviction: a token that
//! is not seen again before as many others have been would have been evicted unused. The
//! doorkeeper takes a fixed 8 bits per cached entry, rounded up to a power of two, at
//! least 512 bytes and at most 1 MiB (16 KiB for the default 10 000 entries), allocated
//! once and never grown. A Bloom filter's false positive (a few percent while it fills)
//! only admits a token one sighting early.
//!
//! What keeps it safe: a token that passed every check is cached with its principal; a
//! token that failed is cached with its failure only where the failure cannot change
//! (expired, a signature that does not verify with these keys, a wrong issuer, audience,
//! type or claim), never one that can (`token_key_unknown`, `key_source_unavailable`,
//! `token_not_yet_valid`); both are admitted by the doorkeeper alike. An entry is found by
//! a keyed hash of the whole token and then compared with it in constant time (a word at a
//! time, [`constant_time_eq`]), so a collision can only miss, never answer with another
//! token's principal or failure; it never outlives the token's `exp` (plus the leeway the
//! authenticator allows), the configured TTL, or the key set that verified it (any change
//! to an issuer's published keys makes its entries stale); entries and bytes are bounded,
//! the oldest evicted first. A repeated bad token then costs no more than a repeated good
//! one.

use super::Principal;
use crate::failure::AuthFailure;
use crate::reason::Reason;
use crate::secret::constant_time_eq;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Settings of the verified-token cache of a layer's Bearer scheme
/// ([`AuthDiagnostics::token_cache`](crate::AuthDiagnostics::token_cache)).
///
/// Defaults: 10 000 tokens, 16 MiB, 5 minutes.
///
/// A token is cached on its second verification, not its first: the first only marks it
/// in a fixed bitset of 8 bits per entry (16 KiB for the defaults, at least 512 bytes, at
/// most 1 MiB), forgotten once as many tokens as the cache holds have been marked since,
/// so tokens seen once cost no insert and evict nothing. A repeated token is verified
/// twice, then found.
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

    /// The most bytes kept: each entry is counted for the heap it takes (its token, the
    /// decoded claims, its slot), about 1.3–1.6 KiB for a token of a few claims.
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

/// Bytes a remembered failure is counted for besides its token: its facts (about the
/// token's size again) and the bookkeeping.
const ENTRY_OVERHEAD: usize = 256;

/// The heap an entry takes: its slot in the map (at most 7/8 full) and in the order queue,
/// its copy of the token, and a principal's claims as decoded (an object of a few claims
/// takes about 1 KiB, far more than its text); a failure as [`ENTRY_OVERHEAD`] says.
fn entry_bytes(v: &Verified<'_>) -> usize {
    use crate::authn::principal::chunk;
    match v.outcome {
        Ok(principal) => {
            let slot = size_of::<(u64, Entry)>() * 8 / 7 + 1 + size_of::<(u64, u64)>();
            slot + chunk(v.token.len()) + principal.heap_bytes()
        }
        Err(_) => v.token.len() * 2 + ENTRY_OVERHEAD,
    }
}

/// A cache in use.
pub(crate) struct Cache {
    settings: TokenCache,
    hasher: std::collections::hash_map::RandomState,
    shards: [Mutex<Shard>; SHARDS],
    doorkeeper: Doorkeeper,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    /// The `scheme` label of this cache's metrics.
    scheme: &'static str,
}

#[derive(Default)]
struct Shard {
    /// Keyed by the token's keyed hash, which is not hashed again.
    map: HashMap<u64, Entry, BuildHasherDefault<Keyed>>,
    /// Insertion order (hash, sequence), oldest first; stale pairs are skipped.
    order: VecDeque<(u64, u64)>,
    bytes: usize,
    seq: u64,
}

struct Entry {
    /// The whole token: a hash collision must miss, not answer for another token.
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
    /// [`Cache::hash`] of the token, when it was computed for the lookup.
    pub hash: Option<u64>,
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
            doorkeeper: Doorkeeper::new(settings.max_entries),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Shard> {
        // The top bits: the map's table and the doorkeeper use the others.
        self.shards[(hash >> 60) as usize % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The keyed hash `token` is kept under: computed once for a request's lookup and,
    /// on a miss, for remembering what was decided.
    pub(crate) fn hash(&self, token: &str) -> u64 {
        self.hasher.hash_one(token.as_bytes())
    }

    /// What `token` (whose [`hash`](Self::hash) is `hash`) was decided before, when
    /// nothing has changed since: still before its expiry and the TTL, the same keys
    /// (`epoch(issuer)`).
    pub(crate) fn get(
        &self,
        token: &str,
        hash: u64,
        now: i64,
        epoch: impl Fn(usize) -> u64,
    ) -> Option<Result<Principal, AuthFailure>> {
        let mut shard = self.shard(hash);
        let (found, stale) = match shard.map.get(&hash) {
            Some(e) if constant_time_eq(&e.token, token.as_bytes()) => {
                let fresh = now < e.until && e.epoch == epoch(e.issuer);
                (fresh.then(|| e.outcome.clone()), !fresh)
            }
            // Another token under the same hash: a miss, and it makes way.
            Some(_) => (None, true),
            None => (None, false),
        };
        crate::metrics::token_cache_lookup(self.scheme, found.is_some());
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            // A stale entry goes now rather than when it is evicted.
            if stale {
                if let Some(e) = shard.map.remove(&hash) {
                    shard.bytes -= e.bytes;
                }
            }
        }
        found
    }

    /// Remembers a token that passed every check, or failed one for good, if it was
    /// decided before lately (the doorkeeper's); the first time, only marks it.
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
        let (max_entries, max_bytes) = (
            self.settings.max_entries.div_ceil(SHARDS),
            self.settings.max_bytes / SHARDS,
        );
        if until <= now || max_entries == 0 {
            return;
        }
        let hash = v.hash.unwrap_or_else(|| self.hash(v.token));
        if !self.doorkeeper.seen_again(hash) {
            return;
        }
        // Counted only for a token that is kept: the claims are walked to count them.
        let bytes = entry_bytes(&v);
        if bytes > max_bytes {
            return;
        }
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

/// Bits of the doorkeeper per cached entry: with three bits set per token and at most
/// one token recorded per 8 bits, about 3% of the tokens it has not seen pass for seen.
const DOORKEEPER_BITS_PER_ENTRY: usize = 8;
/// The doorkeeper's size bounds, in 64-bit words: 512 bytes and 1 MiB.
const DOORKEEPER_MIN_WORDS: usize = 1 << 6;
const DOORKEEPER_MAX_WORDS: usize = 1 << 17;

/// Which tokens were decided lately: a blocked Bloom filter of their keyed hashes (three
/// bits of one word per token), of a size fixed when the cache is built, cleared after
/// `window` tokens were recorded. Lock-free: a lost update only makes a token wait for a
/// third sighting or come in one early.
struct Doorkeeper {
    words: Box<[AtomicU64]>,
    /// Tokens recorded since the last clear.
    recorded: AtomicUsize,
    /// How many are recorded before it is cleared: as many as the cache holds (fewer
    /// only where the size cap binds, 8 bits per token).
    window: usize,
}

impl Doorkeeper {
    fn new(max_entries: usize) -> Self {
        let words = max_entries
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX)
            .saturating_mul(DOORKEEPER_BITS_PER_ENTRY)
            / 64;
        let words = words.clamp(DOORKEEPER_MIN_WORDS, DOORKEEPER_MAX_WORDS);
        Self {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            recorded: AtomicUsize::new(0),
            window: max_entries.clamp(1, words * 64 / DOORKEEPER_BITS_PER_ENTRY),
        }
    }

    /// Whether `hash` was recorded since the last clear; if not, records it now.
    fn seen_again(&self, hash: u64) -> bool {
        // Bits 32.. pick the word (the size is a power of two), bits 0..18 the three bits.
        let word = &self.words[(hash >> 32) as usize & (self.words.len() - 1)];
        let mask = (1 << (hash & 63)) | (1 << ((hash >> 6) & 63)) | (1 << ((hash >> 12) & 63));
        if word.load(Ordering::Relaxed) & mask == mask {
            return true;
        }
        if self.recorded.fetch_add(1, Ordering::Relaxed) >= self.window {
            self.recorded.store(1, Ordering::Relaxed);
            for w in &*self.words {
                w.store(0, Ordering::Relaxed);
            }
        }
        word.fetch_or(mask, Ordering::Relaxed);
        false
    }

    /// Its size in bytes: fixed.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.words)
    }
}

/// The hasher of a shard's map, whose keys already are keyed hashes (uniform, secret):
/// passes them through, halves swapped so that the table's bits are not the shard's.
#[derive(Default)]
struct Keyed(u64);

impl Hasher for Keyed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed; anything else is folded in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.rotate_left(32);
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

    /// [`Cache::get`] with the token's hash.
    fn find(
        cache: &Cache,
        token: &str,
        now: i64,
        epoch: impl Fn(usize) -> u64,
    ) -> Option<Result<Principal, AuthFailure>> {
        cache.get(token, cache.hash(token), now, epoch)
    }

    /// A token decided once: marked by the doorkeeper, not cached yet.
    fn once(cache: &Cache, token: &str, now: i64, valid_through: Option<i64>) {
        let p = Principal::new("alice");
        cache.put(
            Verified {
                token,
                hash: None,
                outcome: Ok(&p),
                issuer: 0,
                epoch: 7,
                valid_through,
            },
            now,
        );
    }

    /// A token decided twice: cached by the second time.
    fn put(cache: &Cache, token: &str, now: i64, valid_through: Option<i64>) {
        once(cache, token, now, valid_through);
        once(cache, token, now, valid_through);
    }

    #[test]
    fn expiry_ttl_and_epoch_end_an_entry() {
        let cache = Cache::new(TokenCache::new().ttl(Duration::from_secs(60)), "bearer");
        put(&cache, "a.b.c", 1000, Some(1010));
        assert!(find(&cache, "a.b.c", 1010, |_| 7).is_some());
        assert!(
            find(&cache, "a.b.c", 1011, |_| 7).is_none(),
            "past exp + leeway"
        );
        put(&cache, "a.b.c", 1000, None);
        assert!(find(&cache, "a.b.c", 1059, |_| 7).is_some());
        assert!(find(&cache, "a.b.c", 1060, |_| 7).is_none(), "past the TTL");
        put(&cache, "a.b.c", 1000, None);
        assert!(
            find(&cache, "a.b.c", 1001, |_| 8).is_none(),
            "the keys changed"
        );
        assert!(find(&cache, "a.b.d", 1001, |_| 7).is_none());
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
        assert!(find(&cache, "token-9999", 1, |_| 7).is_some());

        let cache = Cache::new(TokenCache::new().max_bytes(16 * 4096), "bearer");
        let big = "x".repeat(1500);
        for i in 0..1000 {
            put(&cache, &format!("{big}{i}"), 0, None);
        }
        assert!(cache.stats().bytes <= 16 * 4096, "{:?}", cache.stats());
        // A token larger than a shard's share is never kept.
        put(&cache, &"y".repeat(8192), 0, None);
        assert!(find(&cache, &"y".repeat(8192), 1, |_| 7).is_none());
    }

    #[test]
    fn a_token_decided_once_is_only_marked() {
        let cache = Cache::new(TokenCache::new(), "bearer");
        once(&cache, "a.b.c", 1000, None);
        assert!(find(&cache, "a.b.c", 1001, |_| 7).is_none());
        let s = cache.stats();
        assert_eq!((s.entries, s.bytes, s.evictions), (0, 0, 0), "{s:?}");
        // The second time it is decided, it is cached.
        once(&cache, "a.b.c", 1001, None);
        assert!(find(&cache, "a.b.c", 1002, |_| 7).is_some());
        // A failure is admitted the same way.
        let f = AuthFailure::new(Reason::TokenExpired);
        // With the hash the lookup computed, as the Bearer scheme passes it.
        let failed = |token| Verified {
            token,
            hash: Some(cache.hash(token)),
            outcome: Err(&f),
            issuer: 0,
            epoch: 7,
            valid_through: None,
        };
        cache.put(failed("x.y.z"), 1000);
        assert!(find(&cache, "x.y.z", 1001, |_| 7).is_none());
        cache.put(failed("x.y.z"), 1000);
        assert!(find(&cache, "x.y.z", 1001, |_| 7).is_some_and(|r| r.is_err()));
    }

    #[test]
    fn distinct_tokens_fill_neither_the_cache_nor_the_doorkeeper() {
        let cache = Cache::new(TokenCache::new(), "bearer");
        let size = cache.doorkeeper.bytes();
        assert_eq!(
            size,
            16 << 10,
            "8 bits per entry, 16 384 entries rounded up"
        );
        for i in 0..200_000 {
            once(&cache, &format!("token-{i}"), 0, None);
        }
        // Only the Bloom filter's false positives got in (about 0.4%).
        let s = cache.stats();
        assert!(s.entries < 200_000 / 100 && s.evictions == 0, "{s:?}");
        assert_eq!(cache.doorkeeper.bytes(), size, "never grown");
        let recorded = cache.doorkeeper.recorded.load(Ordering::Relaxed);
        assert!(recorded <= cache.doorkeeper.window, "cleared as it fills");
        let set: u32 = (cache.doorkeeper.words.iter())
            .map(|w| w.load(Ordering::Relaxed).count_ones())
            .sum();
        assert!(
            set as usize <= 3 * cache.doorkeeper.window,
            "{set} bits set"
        );

        // A working set larger than the cache, walked in turn, is never admitted: each
        // token has been forgotten before it comes again.
        let cache = Cache::new(TokenCache::new().max_entries(1000), "bearer");
        for round in 0..3 {
            for i in 0..1500 {
                once(&cache, &format!("token-{i}"), round, None);
            }
        }
        let s = cache.stats();
        // A false positive of the Bloom filter admits a few.
        assert!(s.entries < 150 && s.evictions == 0, "{s:?}");
    }

    #[test]
    fn the_doorkeeper_is_sized_by_the_entries_within_fixed_bounds() {
        let bytes = |entries| Doorkeeper::new(entries).bytes();
        assert_eq!(bytes(0), 512);
        assert_eq!(bytes(64), 512);
        assert_eq!(bytes(10_000), 16 << 10);
        assert_eq!(bytes(100_000), 128 << 10);
        assert_eq!(bytes(usize::MAX), 1 << 20);
        assert_eq!(Doorkeeper::new(usize::MAX).window, 1 << 20);
        assert_eq!(Doorkeeper::new(0).window, 1);
    }
}
