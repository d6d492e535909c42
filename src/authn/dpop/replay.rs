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
    /// use auth_diagnostics::ProofId;
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
pub type ReplayError = crate::keys::StoreError;

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
/// full of as many keys' proofs, less when fewer keys hold them) and in time (an entry
/// lives until its proof could no longer be accepted, and is swept then, whatever order
/// it came in).
///
/// Each DPoP key (`jkt`) gets a share of it, by default a sixty-fourth of the capacity
/// ([`key_share`](Self::key_share)): a key over its share is refused on its own, 429
/// `dpop_key_over_quota`. A shard full of proofs that could still be replayed refuses to
/// guess: 503 `dpop_replay_store_unavailable` for every key whose proofs go there.
///
/// What one flooding key can and cannot do, with the defaults: the store is 16 shards of
/// 12 500 proofs, and all of a key's proofs go to one shard, chosen by a hash keyed at
/// random per store (a client cannot pick it). A key's share, 3 125, is a quarter of its
/// shard: up to three keys of one shard flooding distinct proofs are each held to their
/// share, and every other key keeps working. Four keys that land in one shard and each hold their
/// share fill it, and every other key of that shard (a sixteenth of all keys) gets 503
/// until their proofs expire (up to 91 s). A client cannot aim at a shard, but one with
/// tokens bound to about 20 keys has even odds that four share one, and with 64 or more
/// it can fill all 16. Memory stays bounded either way. With a share of `n` set by
/// [`key_share`](Self::key_share), `shard room / n` keys (rounded up) fill a shard; a
/// store under 4 096 proofs is one shard, which 64 keys at the default share fill.
///
/// ```
/// use auth_diagnostics::{MemoryReplayStore, ProofId, ReplayOutcome, ReplayStore};
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
    shards: Box<[Mutex<Shard>]>,
}

/// An entry by expiry: `(expires, key, proof)`, the first 16 bytes of each id.
type Entry = (i64, [u8; 16], [u8; 16]);

/// One lock's part of the store: every proof of a key is in the key's shard.
#[derive(Debug, Default)]
struct Shard {
    /// Proof → when it expires.
    seen: HashMap<[u8; 16], i64>,
    /// Every entry by expiry, soonest first.
    expiry: BinaryHeap<Reverse<Entry>>,
    /// What each key holds.
    keys: HashMap<[u8; 16], KeyUse>,
}

/// A key's entries in a shard: how many, and when the first leaves.
#[derive(Debug)]
struct KeyUse {
    held: usize,
    /// The soonest expiry among them, or `None` once that one left and the next is not
    /// looked up yet (only a key over its share needs it).
    first: Option<i64>,
}

impl Shard {
    /// Forgets every entry that expired at `now`.
    fn sweep(&mut self, now: i64) {
        while let Some(&Reverse((expires, key, proof))) = self.expiry.peek() {
            if expires > now {
                break;
            }
            self.expiry.pop();
            self.seen.remove(&proof);
            if let Some(used) = self.keys.get_mut(&key) {
                used.held -= 1;
                if used.held == 0 {
                    self.keys.remove(&key);
                } else if used.first == Some(expires) {
                    used.first = None;
                }
            }
        }
    }

    /// When `key`'s soonest entry leaves: remembered, or found once among the entries.
    fn first_expiry(&mut self, key: &[u8; 16], now: i64) -> i64 {
        let Some(used) = self.keys.get(key) else {
            return now;
        };
        if let Some(first) = used.first {
            return first;
        }
        let first = self
            .expiry
            .iter()
            .filter(|Reverse((_, k, _))| k == key)
            .map(|Reverse((expires, _, _))| *expires)
            .min()
            .unwrap_or(now);
        if let Some(used) = self.keys.get_mut(key) {
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

fn head(bytes: &[u8; 32]) -> [u8; 16] {
    bytes[..16].try_into().expect("16 of 32 bytes")
}

impl MemoryReplayStore {
    /// A store for `capacity` unexpired proofs (at least one). From 4 096 on it is 16
    /// shards of `capacity / 16` (rounded up), each key's proofs in one shard; a shard
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
        }
    }

    /// The most unexpired proofs one DPoP key may hold (default: a sixty-fourth of the
    /// capacity, 3 125 of the default 200 000, a quarter of a shard; at least 1, at most
    /// a shard's room). A client makes one proof per request and each is held for the
    /// proof's window (91 s by default: 60 s of age, 30 s of leeway, 1 s), so the default
    /// lets one key keep up about 34 requests a second (3 125 / 91), or send 3 125 at
    /// once. For more, raise the capacity, which raises the share and the shards' room
    /// together (`with_capacity(800_000)`: a share of 12 500, about 137 requests a second,
    /// about 120 MiB when full). A share raised here alone is a larger part of a shard,
    /// so fewer flooding keys fill one (see [`MemoryReplayStore`]).
    pub fn key_share(mut self, proofs: usize) -> Self {
        self.key_share = proofs;
        self
    }

    fn share(&self) -> usize {
        self.key_share.clamp(1, self.per_shard)
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

    /// Which shard holds the proofs of the key whose id starts with `key`: a hash keyed at
    /// random per store, so a client cannot aim its keys at one shard.
    fn shard_of(&self, key: &[u8; 16]) -> usize {
        let mut h = self.hasher.build_hasher();
        h.write(key);
        (h.finish() % self.shards.len() as u64) as usize
    }

    fn record(&self, id: ProofId, expires_at: i64, now: i64) -> Result<ReplayOutcome, ReplayError> {
        let (key, proof) = (head(id.key()), head(id.as_bytes()));
        let mut shard = self.shards[self.shard_of(&key)]
            .lock()
            .map_err(|_| ReplayError::new("a replay store lock was poisoned"))?;
        shard.sweep(now);
        if shard.seen.contains_key(&proof) {
            return Ok(ReplayOutcome::Seen);
        }
        if expires_at <= now {
            // It cannot be accepted again: nothing to remember.
            return Ok(ReplayOutcome::New);
        }
        if shard.keys.get(&key).is_some_and(|u| u.held >= self.share()) {
            let retry_after = (shard.first_expiry(&key, now) - now).max(1) as u64;
            return Ok(ReplayOutcome::KeyOverQuota { retry_after });
        }
        if shard.seen.len() >= self.per_shard {
            return Err(ReplayError::new(format!(
                "the in-memory replay store holds {} unexpired proofs of {} keys in one shard, its limit",
                self.per_shard,
                shard.keys.len()
            )));
        }
        shard.seen.insert(proof, expires_at);
        shard.expiry.push(Reverse((expires_at, key, proof)));
        let used = shard.keys.entry(key).or_insert(KeyUse {
            held: 0,
            first: Some(expires_at),
        });
        used.held += 1;
        used.first = used.first.map(|first| first.min(expires_at));
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

    /// What the docs say of the default: a key fills at most a quarter of its shard, so
    /// four keys of one shard at their share make every other key of that shard fail
    /// closed, while keys of other shards keep working.
    #[test]
    fn four_keys_at_their_share_fill_their_shard_and_no_other() {
        let store = MemoryReplayStore::default();
        assert_eq!(
            (store.shards.len(), store.per_shard, store.share()),
            (16, 12_500, 3125)
        );
        let shard = |k: &str| store.shard_of(&head(id(k, 0).key()));
        let mut same = (0..).map(|i| format!("key-{i}")).filter(|k| shard(k) == 0);
        let flooders: Vec<String> = same.by_ref().take(4).collect();
        let victim = same.next().unwrap();
        let elsewhere = (0..)
            .map(|i| format!("other-{i}"))
            .find(|k| shard(k) != 0)
            .unwrap();
        for k in &flooders {
            for n in 0..3125 {
                assert_eq!(store.record(id(k, n), 100, 10).unwrap(), New, "{k} {n}");
            }
            let over = store.record(id(k, "more"), 100, 10).unwrap();
            assert_eq!(over, KeyOverQuota { retry_after: 90 });
        }
        assert!(store.record(id(&victim, 1), 100, 10).is_err(), "503");
        assert_eq!(store.record(id(&elsewhere, 1), 100, 10).unwrap(), New);
        // Once the flood expires, the victim gets in.
        assert_eq!(store.record(id(&victim, 1), 200, 100).unwrap(), New);
    }

    #[test]
    fn a_share_is_at_least_one_and_at_most_a_shard() {
        let store = MemoryReplayStore::with_capacity(10).key_share(0);
        assert_eq!(store.share(), 1);
        assert_eq!(
            MemoryReplayStore::with_capacity(10).key_share(99).share(),
            10
        );
        assert_eq!(MemoryReplayStore::default().share(), 3125);
        let big = MemoryReplayStore::default().key_share(1 << 20);
        assert_eq!(big.share(), 12_500, "one shard's room");
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
