//! Where used DPoP proofs are remembered until they expire (RFC 9449 §11.1): the
//! [`ReplayStore`] trait and its bounded in-memory default.

use sha2::{Digest, Sha256};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::pin::Pin;
use std::sync::Mutex;

/// What [`ReplayStore::insert`] returns.
pub type ReplayFuture = Pin<Box<dyn Future<Output = Result<ReplayOutcome, ReplayError>> + Send>>;

/// What a [`ReplayStore`] did with a proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayOutcome {
    /// Not seen before: recorded until it expires. The proof is accepted.
    New,
    /// Seen before and not expired: a replay, refused (401 `dpop_proof_replayed`).
    Seen,
    /// Not recorded: the proof's key already holds its whole share of the store. The
    /// request is refused with 429 `dpop_key_over_quota` and `Retry-After: retry_after`
    /// (seconds, at least 1: when the key's oldest proof expires); other keys are
    /// unaffected.
    KeyOverQuota {
        /// Seconds until the key has room again.
        retry_after: u64,
    },
}

/// One proof's identity, and its key's: SHA-256 over its key's thumbprint and its `jti`
/// (so two clients that pick the same `jti` never collide), and SHA-256 over the
/// thumbprint alone (so a store can count each key's proofs). A store holds no client
/// text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProofId {
    proof: [u8; 32],
    key: [u8; 32],
}

impl ProofId {
    /// The id of the proof with key thumbprint `jkt` (RFC 7638) and `jti`.
    ///
    /// ```
    /// use auth_diagnostics::store::ProofId;
    ///
    /// let (a, b) = (ProofId::new("jkt-1", "j1"), ProofId::new("jkt-1", "j2"));
    /// assert_ne!(a, b);
    /// assert_eq!(a.key(), b.key(), "one key");
    /// assert_ne!(ProofId::new("jkt-2", "j1").key(), a.key());
    /// assert_eq!(a.to_hex().len(), 64);
    /// ```
    pub fn new(jkt: &str, jti: &str) -> Self {
        let mut h = Sha256::new();
        h.update(jkt.as_bytes());
        h.update([0]);
        h.update(jti.as_bytes());
        Self {
            proof: h.finalize().into(),
            key: Sha256::digest(jkt.as_bytes()).into(),
        }
    }

    /// The proof's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.proof
    }

    /// The proof's id in lower-case hex, e.g. for a key in a shared store.
    pub fn to_hex(&self) -> String {
        hex(&self.proof)
    }

    /// The 32 bytes that name the proof's key: what a store counts proofs by.
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The key's id in lower-case hex.
    pub fn key_hex(&self) -> String {
        hex(&self.key)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Debug for ProofId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (proof, key) = (self.to_hex(), self.key_hex());
        write!(f, "ProofId({} of key {})", &proof[..12], &key[..12])
    }
}

/// A store that cannot tell whether a proof was used: the request is refused with 503
/// `dpop_replay_store_unavailable` (fail closed). The error type of every shared store.
pub type ReplayError = crate::keys::store::StoreError;

/// Remembers used DPoP proofs, so each is accepted once, and holds each key to a share.
///
/// The default is [`MemoryReplayStore`]: right for one process. Several replicas behind a
/// load balancer need one store they share, or a proof refused by one is accepted by
/// another.
pub trait ReplayStore: Send + Sync + fmt::Debug + 'static {
    /// Records `id` until `expires_at` (seconds since the epoch) unless it is there
    /// already or its key ([`ProofId::key`]) holds its whole share of the store:
    /// [`ReplayOutcome::New`], [`Seen`](ReplayOutcome::Seen) or
    /// [`KeyOverQuota`](ReplayOutcome::KeyOverQuota); `Err` when the store cannot tell
    /// (full of many keys' proofs, unreachable). Must be atomic: of two concurrent calls
    /// with one id, one gets `New`. An entry must be forgotten once `expires_at` passes,
    /// whatever order entries came in.
    fn insert(&self, id: ProofId, expires_at: i64) -> ReplayFuture;
}

/// Stores of at least this many proofs are split into [`SHARDS`] shards; smaller ones are
/// one, so their capacity is exact.
const SHARDED_FROM: usize = 4096;
/// Shards of a large in-memory store: one lock each.
const SHARDS: usize = 16;
/// The default share of one key: this fraction of the capacity.
const KEY_SHARE_DIVISOR: usize = 64;

/// The in-memory [`ReplayStore`]: bounded in entries (default 200 000, about 30 MiB when
/// full) and in time (an entry lives until its proof could no longer be accepted, and is
/// swept then, whatever order it came in).
///
/// Each DPoP key (`jkt`) gets a share of it, by default a sixty-fourth of the capacity
/// ([`key_share`](Self::key_share)): a key over its share is refused on its own, 429
/// `dpop_key_over_quota`, while every other key keeps working. A store full of proofs
/// that could still be replayed refuses to guess: 503 `dpop_replay_store_unavailable`.
///
/// What flooding keys can and cannot do, with the defaults: proofs are spread over 16
/// shards by their own id (a hash keyed at random per store), not by their key, so keys
/// at their share fill every shard alike. Keys flooding distinct proofs are each held to
/// their share of 3 125 and leave room for the others until together they hold nearly the
/// whole capacity: about 60 keys at their share (tokens bound to 60 keys) fill a shard,
/// and then new proofs there get 503 until those expire (up to 91 s). One key keeps up about 34 proofs a second (3 125 over the
/// 91 s a proof is held); raise the capacity for more (`with_capacity(800_000)`: a share
/// of 12 500, about 137 a second, about 120 MiB when full). Memory stays bounded either
/// way.
///
/// ```
/// use auth_diagnostics::store::{MemoryReplayStore, ProofId, ReplayOutcome, ReplayStore};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryReplayStore::with_capacity(1000).key_share(2);
/// let later = 4_000_000_000;
/// let flood = |jti: &str| store.insert(ProofId::new("flooding-key", jti), later);
/// assert_eq!(flood("1").await.unwrap(), ReplayOutcome::New);
/// assert_eq!(flood("1").await.unwrap(), ReplayOutcome::Seen);
/// assert_eq!(flood("2").await.unwrap(), ReplayOutcome::New);
/// assert!(matches!(flood("3").await.unwrap(), ReplayOutcome::KeyOverQuota { .. }));
/// let other = store.insert(ProofId::new("another-key", "1"), later).await;
/// assert_eq!(other.unwrap(), ReplayOutcome::New);
/// # });
/// ```
#[derive(Debug)]
pub struct MemoryReplayStore {
    per_shard: usize,
    key_share: usize,
    hasher: RandomState,
    /// The proofs, spread by the proof's id.
    shards: Box<[Mutex<Proofs>]>,
    /// What each key holds, spread by the key's id.
    keys: Box<[Mutex<Keys>]>,
}

/// One lock's part of the proofs: each by the first 16 bytes of its id.
#[derive(Debug, Default)]
struct Proofs {
    /// Proof → when it expires.
    seen: HashMap<[u8; 16], i64>,
    /// Every proof by expiry, soonest first.
    expiry: BinaryHeap<Reverse<(i64, [u8; 16])>>,
}

impl Proofs {
    /// Forgets every proof that expired at `now`.
    fn sweep(&mut self, now: i64) {
        while let Some(&Reverse((expires, proof))) = self.expiry.peek() {
            if expires > now {
                break;
            }
            self.expiry.pop();
            self.seen.remove(&proof);
        }
    }
}

/// One lock's part of the keys: how many unexpired proofs each holds. Every entry stands
/// for one recorded proof and leaves when it expires, so this is bounded like the proofs.
#[derive(Debug, Default)]
struct Keys {
    used: HashMap<[u8; 16], KeyUse>,
    /// One entry per recorded proof, `(expires, key)`, soonest first.
    expiry: BinaryHeap<Reverse<(i64, [u8; 16])>>,
}

/// A key's unexpired proofs: how many, and when the first leaves.
#[derive(Debug)]
struct KeyUse {
    held: usize,
    /// The soonest expiry among them, or `None` once that one left and the next is not
    /// looked up yet (only a key over its share needs it).
    first: Option<i64>,
}

impl Keys {
    /// Forgets every proof that expired at `now`.
    fn sweep(&mut self, now: i64) {
        while let Some(&Reverse((expires, key))) = self.expiry.peek() {
            if expires > now {
                break;
            }
            self.expiry.pop();
            if let Some(used) = self.used.get_mut(&key) {
                used.held -= 1;
                if used.held == 0 {
                    self.used.remove(&key);
                } else if used.first == Some(expires) {
                    used.first = None;
                }
            }
        }
    }

    fn held(&self, key: &[u8; 16]) -> usize {
        self.used.get(key).map_or(0, |u| u.held)
    }

    /// Counts a proof of `key` until `expires`.
    fn add(&mut self, key: [u8; 16], expires: i64) {
        self.expiry.push(Reverse((expires, key)));
        let used = self.used.entry(key).or_insert(KeyUse {
            held: 0,
            first: Some(expires),
        });
        used.held += 1;
        used.first = used.first.map(|first| first.min(expires));
    }

    /// When `key`'s soonest proof leaves: remembered, or found once among the entries.
    fn first_expiry(&mut self, key: &[u8; 16], now: i64) -> i64 {
        let Some(used) = self.used.get(key) else {
            return now;
        };
        if let Some(first) = used.first {
            return first;
        }
        let first = self
            .expiry
            .iter()
            .filter(|Reverse((_, k))| k == key)
            .map(|Reverse((expires, _))| *expires)
            .min()
            .unwrap_or(now);
        if let Some(used) = self.used.get_mut(key) {
            used.first = Some(first);
        }
        first
    }
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::with_capacity(200_000)
    }
}

/// The first 16 bytes of an id: what the in-memory store keeps.
fn head(bytes: &[u8; 32]) -> [u8; 16] {
    bytes[..16].try_into().expect("16 of 32 bytes")
}

fn poisoned<T>(_: T) -> ReplayError {
    ReplayError::new("a replay store lock was poisoned")
}

impl MemoryReplayStore {
    /// A store for `capacity` unexpired proofs (at least one). From 4 096 on it is 16
    /// shards of `capacity / 16` (rounded up), each proof in the shard of its id; a shard
    /// full of proofs that could still be replayed refuses new ones. Each key's share is
    /// a sixty-fourth of `capacity` (rounded up).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let shards = if capacity >= SHARDED_FROM { SHARDS } else { 1 };
        Self {
            per_shard: capacity.div_ceil(shards),
            key_share: capacity.div_ceil(KEY_SHARE_DIVISOR),
            hasher: RandomState::new(),
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            keys: (0..shards).map(|_| Mutex::default()).collect(),
        }
    }

    /// The most unexpired proofs one DPoP key may hold (default: a sixty-fourth of the
    /// capacity, 3 125 of the default 200 000; at least 1, at most the capacity). A client
    /// makes one proof per request and each is held for the proof's window (91 s by
    /// default: 60 s of age, 30 s of leeway, 1 s), so the default lets one key keep up
    /// about 34 requests a second (3 125 / 91), or send 3 125 at once. A larger share
    /// lets fewer keys fill the store (capacity / share of them); raising the capacity
    /// raises the default share with it.
    pub fn key_share(mut self, proofs: usize) -> Self {
        self.key_share = proofs;
        self
    }

    fn share(&self) -> usize {
        self.key_share.clamp(1, self.per_shard * self.shards.len())
    }

    /// How many proofs it holds now (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.seen.len()))
            .sum()
    }

    /// Whether it holds no proof.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Which shard (of the proofs, or of the keys) an id goes to: a hash keyed at random
    /// per store, so a client cannot aim at one shard.
    fn shard_of(&self, id: &[u8; 16]) -> usize {
        let mut h = self.hasher.build_hasher();
        h.write(id);
        (h.finish() % self.shards.len() as u64) as usize
    }

    fn record(&self, id: ProofId, expires_at: i64, now: i64) -> Result<ReplayOutcome, ReplayError> {
        let (key, proof) = (head(id.key()), head(id.as_bytes()));
        // Always the key's lock first, then the proof's: no two calls wait on each other.
        let mut keys = self.keys[self.shard_of(&key)].lock().map_err(poisoned)?;
        keys.sweep(now);
        let mut proofs = self.shards[self.shard_of(&proof)]
            .lock()
            .map_err(poisoned)?;
        proofs.sweep(now);
        if proofs.seen.contains_key(&proof) {
            return Ok(ReplayOutcome::Seen);
        }
        if expires_at <= now {
            // It cannot be accepted again: nothing to remember.
            return Ok(ReplayOutcome::New);
        }
        if keys.held(&key) >= self.share() {
            let retry_after = (keys.first_expiry(&key, now) - now).max(1) as u64;
            return Ok(ReplayOutcome::KeyOverQuota { retry_after });
        }
        if proofs.seen.len() >= self.per_shard {
            let place = match self.shards.len() {
                1 => String::new(),
                n => format!(" in one of its {n} shards"),
            };
            return Err(ReplayError::new(format!(
                "the in-memory replay store is full: {} unexpired proofs{place}, its limit",
                self.per_shard
            )));
        }
        proofs.seen.insert(proof, expires_at);
        proofs.expiry.push(Reverse((expires_at, proof)));
        keys.add(key, expires_at);
        Ok(ReplayOutcome::New)
    }
}

impl ReplayStore for MemoryReplayStore {
    fn insert(&self, id: ProofId, expires_at: i64) -> ReplayFuture {
        let result = self.record(id, expires_at, crate::time::now());
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReplayOutcome::{KeyOverQuota, New, Seen};

    fn id(key: &str, jti: impl fmt::Display) -> ProofId {
        ProofId::new(key, &jti.to_string())
    }

    #[test]
    fn once_each_until_expiry() {
        let store = MemoryReplayStore::with_capacity(16);
        let a = id("jkt", "a");
        assert_eq!(store.record(a, 100, 10).unwrap(), New);
        assert_eq!(store.record(a, 100, 99).unwrap(), Seen);
        assert_eq!(store.record(id("jkt2", "a"), 100, 50).unwrap(), New);
        // Expired: forgotten, and an already expired proof is not kept at all.
        assert_eq!(store.record(a, 200, 100).unwrap(), New);
        assert_eq!(store.record(id("jkt", "old"), 150, 150).unwrap(), New);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn many_keys_fill_it_to_its_capacity_and_no_further() {
        for capacity in [3, 100, 4096, 5000] {
            let store = MemoryReplayStore::with_capacity(capacity);
            let limit = capacity.div_ceil(store.shards.len()) * store.shards.len();
            let mut refused = 0;
            for i in 0..capacity * 3 {
                match store.record(id(&format!("key-{i}"), 1), 100, 10) {
                    Ok(New) => {}
                    Err(_) => refused += 1,
                    other => panic!("{other:?}"),
                }
                assert!(store.len() <= limit, "{capacity}: {}", store.len());
            }
            assert!(
                refused >= capacity * 3 - limit,
                "{capacity}: {refused} refused"
            );
            if store.shards.len() == 1 {
                assert_eq!(store.len(), capacity, "exact");
            }
            // Once they expire, room again (a shard sweeps when it is next used).
            assert_eq!(store.record(id("late", 1), 300, 200).unwrap(), New);
            if store.shards.len() == 1 {
                assert_eq!(store.len(), 1);
            }
        }
    }

    /// Issue 23: one key sending distinct proofs at full speed for 30 s (simulated: 2 000
    /// a second, each valid 91 s) into a small store never makes another key's fresh proof
    /// fail, and never holds more than its share.
    #[test]
    fn one_key_flooding_for_30_seconds_leaves_the_others_room() {
        let store = MemoryReplayStore::with_capacity(256);
        assert_eq!(store.share(), 4, "a sixty-fourth");
        let start = 1_000_000;
        let mut taken = 0;
        for t in start..start + 30 {
            for n in 0..2000 {
                match store
                    .record(id("flooder", t * 10_000 + n), t + 91, t)
                    .unwrap()
                {
                    New => taken += 1,
                    KeyOverQuota { retry_after } => {
                        // When its oldest proof expires.
                        assert_eq!(retry_after, (start + 91 - t) as u64);
                    }
                    Seen => panic!("distinct proofs"),
                }
            }
            // Other clients, each with a fresh proof.
            for other in ["alice", "bob", "carol"] {
                let other = format!("{other}-{t}");
                let fresh = store.record(id(&other, t), t + 91, t);
                assert_eq!(fresh.unwrap(), New, "{other} at second {}", t - start);
            }
        }
        assert_eq!(taken, 4);
        assert!(store.len() <= 4 + 3 * 30);
        // Once the flooder's proofs expire, it has its share again.
        let later = start + 91;
        assert_eq!(
            store
                .record(id("flooder", "new"), later + 91, later)
                .unwrap(),
            New
        );
    }

    /// A key over its share is told when its soonest proof leaves, also after the one
    /// that was soonest left.
    #[test]
    fn retry_after_is_when_the_keys_soonest_proof_leaves() {
        let store = MemoryReplayStore::with_capacity(100).key_share(2);
        assert_eq!(store.record(id("k", 1), 20, 10).unwrap(), New);
        assert_eq!(store.record(id("k", 2), 50, 10).unwrap(), New);
        let over = |retry_after| Ok(KeyOverQuota { retry_after });
        assert_eq!(store.record(id("k", 3), 90, 11).map_err(drop), over(9));
        // At 25 the first left; the next to leave is the one at 50, though 60 came in later.
        assert_eq!(store.record(id("k", 4), 60, 25).unwrap(), New);
        assert_eq!(store.record(id("k", 5), 90, 26).map_err(drop), over(24));
        assert_eq!(store.record(id("k", 6), 90, 27).map_err(drop), over(23));
        assert_eq!(store.record(id("k", 7), 90, 50).unwrap(), New);
        assert_eq!(store.record(id("k", 8), 90, 50).map_err(drop), over(10));
    }

    /// What the docs say: keys at their share are spread over every shard, so 48 flooding
    /// keys (three quarters of the capacity) leave every other key room, and together they
    /// cannot take more than the capacity: the store then fails closed.
    #[test]
    fn flooding_keys_fill_the_store_only_together() {
        let store = MemoryReplayStore::with_capacity(16_000);
        assert_eq!(
            (store.shards.len(), store.per_shard, store.share()),
            (16, 1000, 250)
        );
        let flood = |k: usize| {
            for n in 0..250 {
                store.record(id(&format!("flooder-{k}"), n), 100, 10)?;
            }
            store.record(id(&format!("flooder-{k}"), "more"), 100, 10)
        };
        for k in 0..48 {
            assert_eq!(flood(k).unwrap(), KeyOverQuota { retry_after: 90 }, "{k}");
        }
        for victim in 0..100 {
            let fresh = store.record(id(&format!("victim-{victim}"), 1), 100, 10);
            assert_eq!(fresh.unwrap(), New, "victim {victim}");
        }
        // More keys fill a shard before they could hold more than the capacity.
        let full = (48..80).find(|&k| flood(k).is_err());
        assert!(full.is_some_and(|k| k < 64), "{full:?}");
        assert!(store.len() <= 16_000);
        // Once the flood expires, room again.
        assert_eq!(store.record(id("late", 1), 200, 100).unwrap(), New);
    }

    #[test]
    fn a_share_is_at_least_one_and_at_most_the_capacity() {
        let store = MemoryReplayStore::with_capacity(10).key_share(0);
        assert_eq!(store.share(), 1);
        assert_eq!(
            MemoryReplayStore::with_capacity(10).key_share(99).share(),
            10
        );
        assert_eq!(MemoryReplayStore::default().share(), 3125);
        let big = MemoryReplayStore::default().key_share(1 << 20);
        assert_eq!(big.share(), 200_000, "the capacity");
    }

    /// An entry dated ahead (a proof whose `iat` is ahead by the leeway) stays until its
    /// own expiry and no longer, and expired entries that came after it are swept.
    #[test]
    fn entries_dated_ahead_do_not_pin_the_store() {
        let store = MemoryReplayStore::with_capacity(2).key_share(2);
        let ahead = id("a", 1);
        assert_eq!(store.record(ahead, 500, 10).unwrap(), New);
        assert_eq!(store.record(id("b", 1), 20, 10).unwrap(), New);
        assert!(store.record(id("c", 1), 100, 15).is_err(), "full");
        // b's entry expired behind a's: swept, room for c.
        assert_eq!(store.record(id("c", 1), 100, 30).unwrap(), New);
        assert_eq!(store.record(ahead, 500, 499).unwrap(), Seen);
        assert_eq!(store.len(), 1, "c expired behind it");
        assert_eq!(store.record(ahead, 900, 500).unwrap(), New);
    }
}
