//! Where used DPoP proofs are remembered until they expire (RFC 9449 §11.1): the
//! [`ReplayStore`] trait and its bounded in-memory default.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::pin::Pin;
use std::sync::Mutex;

/// What [`ReplayStore::insert`] returns.
pub type ReplayFuture = Pin<Box<dyn Future<Output = Result<bool, ReplayError>> + Send>>;

/// One proof's identity: SHA-256 over its key's thumbprint and its `jti`, so two clients
/// that pick the same `jti` never collide and the store holds no client text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProofId([u8; 32]);

impl ProofId {
    /// The id of the proof with key thumbprint `jkt` (RFC 7638) and `jti`.
    pub fn new(jkt: &str, jti: &str) -> Self {
        let mut h = Sha256::new();
        h.update(jkt.as_bytes());
        h.update([0]);
        h.update(jti.as_bytes());
        Self(h.finalize().into())
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, e.g. for a key in a shared store.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for ProofId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProofId({})", &self.to_hex()[..12])
    }
}

/// A store that cannot tell whether a proof was used: the request is refused with 503
/// `dpop_replay_store_unavailable` (fail closed). The error type of every shared store.
pub type ReplayError = crate::keys::StoreError;

/// Remembers used DPoP proofs, so each is accepted once.
///
/// The default is [`MemoryReplayStore`]: right for one process. Several replicas behind a
/// load balancer need one store they share, or a proof refused by one is accepted by
/// another.
pub trait ReplayStore: Send + Sync + fmt::Debug + 'static {
    /// Records `id` until `expires_at` (seconds since the epoch) unless it is there
    /// already: `Ok(true)` when it was new, `Ok(false)` when it was seen before, `Err` when
    /// the store cannot tell (full, unreachable). Must be atomic: of two concurrent calls
    /// with one id, one gets `true`.
    fn insert(&self, id: ProofId, expires_at: i64) -> ReplayFuture;
}

/// Shards of the in-memory store: one lock each.
const SHARDS: usize = 16;

/// The in-memory [`ReplayStore`]: bounded in entries (default 200 000, about 10 MiB) and in
/// time (an entry lives until its proof could no longer be accepted). When it is full of
/// proofs that could still be replayed it refuses to guess: the request gets 503.
#[derive(Debug)]
pub struct MemoryReplayStore {
    per_shard: usize,
    hasher: RandomState,
    shards: [Mutex<Shard>; SHARDS],
}

#[derive(Debug, Default)]
struct Shard {
    seen: HashMap<[u8; 16], i64>,
    /// Entries by insertion, for expiry: proofs arrive in roughly `iat` order.
    order: VecDeque<(i64, [u8; 16])>,
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::with_capacity(200_000)
    }
}

impl MemoryReplayStore {
    /// A store for about `capacity` unexpired proofs: 16 shards of `capacity / 16`
    /// (rounded up, at least one) each. A shard whose oldest proof could still be replayed
    /// refuses new ones when full, so a flood fills one shard's share, not the others'.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
            shards: std::array::from_fn(|_| Mutex::default()),
        }
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

    fn record(&self, id: ProofId, expires_at: i64, now: i64) -> Result<bool, ReplayError> {
        let mut h = self.hasher.build_hasher();
        h.write(id.as_bytes());
        let shard = &self.shards[(h.finish() % SHARDS as u64) as usize];
        let mut shard = shard
            .lock()
            .map_err(|_| ReplayError::new("a replay store lock was poisoned"))?;
        let key: [u8; 16] = id.as_bytes()[..16].try_into().expect("16 of 32 bytes");
        if shard.seen.get(&key).is_some_and(|&e| e > now) {
            return Ok(false);
        }
        while let Some(&(exp, old)) = shard.order.front() {
            if exp > now && shard.seen.len() < self.per_shard {
                break;
            }
            if exp > now {
                // Full of proofs that could still be replayed.
                return Err(ReplayError::new(format!(
                    "the in-memory replay store holds {} unexpired proofs in one shard, its limit",
                    self.per_shard
                )));
            }
            shard.order.pop_front();
            if shard.seen.get(&old) == Some(&exp) {
                shard.seen.remove(&old);
            }
        }
        shard.seen.insert(key, expires_at);
        shard.order.push_back((expires_at, key));
        Ok(true)
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

    #[test]
    fn once_each_until_expiry_and_bounded() {
        let store = MemoryReplayStore::with_capacity(SHARDS);
        let id = ProofId::new("jkt", "a");
        assert!(store.record(id, 100, 10).unwrap());
        assert!(!store.record(id, 100, 50).unwrap());
        assert_ne!(ProofId::new("jkt2", "a"), id);
        // Fill every shard with unexpired proofs: then it refuses to guess.
        let mut refused = 0;
        for i in 0..(SHARDS * 8) {
            if store
                .record(ProofId::new("k", &i.to_string()), 100, 10)
                .is_err()
            {
                refused += 1;
            }
        }
        assert!(refused > 0 && store.len() <= SHARDS);
        // Once they expire, room again.
        assert!(store.record(ProofId::new("k", "late"), 300, 200).unwrap());
    }
}
