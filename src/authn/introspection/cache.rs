//! The introspection cache: correct by construction.
//!
//! - Keyed by HMAC-SHA256 of the token under a key drawn once per process: the token
//!   itself is never stored, and a key cannot be turned back into a token.
//! - An answer lives at most until the deadline its outcome was given (the token's `exp`,
//!   the configured maximum, or a few seconds for a refusal); an unavailable endpoint is
//!   never remembered.
//! - Single-flight: every request with one uncached token waits on one slot, whose first
//!   request makes the one call (if that request is dropped, the next waiter makes it).
//! - Bounded: at most `capacity` slots; a full cache drops its expired slots, then others.

use super::Outcome;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

/// A cache key: HMAC-SHA256 of a token.
pub(crate) type Key = [u8; 32];

/// One token's answer, or the call that will give it.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    cell: tokio::sync::OnceCell<Settled>,
}

/// An answer and when it stops being usable (milliseconds since the epoch).
#[derive(Debug, Clone)]
pub(crate) struct Settled {
    pub outcome: Outcome,
    pub until_ms: i64,
}

impl Slot {
    /// The answer, made by `call` unless another request is making it or made it.
    pub(crate) async fn settle<F, Fut>(&self, call: F) -> Settled
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Settled>,
    {
        self.cell.get_or_init(call).await.clone()
    }

    fn usable(&self, now_ms: i64) -> Option<bool> {
        self.cell.get().map(|s| s.until_ms > now_ms)
    }
}

/// The slots of one introspector.
#[derive(Debug)]
pub(crate) struct Cache {
    slots: Mutex<HashMap<Key, Arc<Slot>>>,
    capacity: usize,
}

impl Cache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The slot of `key`: its usable answer or its call in flight, or a fresh one.
    pub(crate) fn slot(&self, key: &Key, now_ms: i64) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.get(key) {
            if slot.usable(now_ms) != Some(false) {
                return slot.clone();
            }
        }
        if slots.len() >= self.capacity && !slots.contains_key(key) {
            make_room(&mut slots, self.capacity, now_ms);
        }
        let slot = Arc::new(Slot::default());
        slots.insert(*key, slot.clone());
        slot
    }

    /// The usable answer of `key`, if there is one.
    pub(crate) fn usable(&self, key: &Key, now_ms: i64) -> Option<super::Outcome> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let settled = slots.get(key)?.cell.get()?;
        (settled.until_ms > now_ms).then(|| settled.outcome.clone())
    }

    /// Forgets `slot` (an unavailable endpoint's answer), unless a newer one replaced it.
    pub(crate) fn forget(&self, key: &Key, slot: &Arc<Slot>) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if slots.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(key);
        }
    }

    /// How many slots it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Drops expired slots; if that frees too little, drops others (a sixteenth of the
/// capacity at once, so a full cache is not swept on every miss).
fn make_room(slots: &mut HashMap<Key, Arc<Slot>>, capacity: usize, now_ms: i64) {
    slots.retain(|_, s| s.usable(now_ms) != Some(false));
    let target = capacity - (capacity / 16).max(1);
    if slots.len() > target {
        let excess = slots.len() - target;
        let doomed: Vec<Key> = slots.keys().take(excess).copied().collect();
        for k in doomed {
            slots.remove(&k);
        }
    }
}

/// The cache key of `token`: HMAC-SHA256 under this process's key.
pub(crate) fn key(token: &str) -> Key {
    static SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    let secret = SECRET.get_or_init(|| {
        let mut k = [0u8; 32];
        getrandom::getrandom(&mut k).expect("the operating system's random source answers");
        k
    });
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(token.as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::Reason;

    fn refused(until_ms: i64) -> Settled {
        Settled {
            outcome: Err(crate::failure::AuthFailure::new(Reason::TokenInactive)),
            until_ms,
        }
    }

    /// 100 000 distinct tokens through a cache of the default capacity: it never holds
    /// more than its capacity.
    #[tokio::test]
    async fn bounded_and_expiring() {
        let capacity = super::super::Introspector::DEFAULT_CACHE_CAPACITY;
        let cache = Cache::new(capacity);
        for i in 0..100_000 {
            let k = key(&format!("token-{i}"));
            let slot = cache.slot(&k, 0);
            slot.settle(|| async { refused(1_000) }).await;
            assert!(cache.len() <= capacity);
        }
        let k = key("token-99999");
        let slot = cache.slot(&k, 500);
        assert!(slot.usable(500) == Some(true), "a fresh answer is kept");
        let again = cache.slot(&k, 1_000);
        assert!(
            again.usable(1_000).is_none(),
            "an expired answer is replaced"
        );
    }

    #[test]
    fn keys_are_keyed_hashes() {
        assert_eq!(key("a"), key("a"));
        assert_ne!(key("a"), key("b"));
        use sha2::Digest;
        let plain: [u8; 32] = Sha256::digest(b"a").into();
        assert_ne!(key("a"), plain);
    }
}
