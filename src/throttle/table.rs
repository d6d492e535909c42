//! The local counts: a bounded table of keyed hashes, in shards so that cores rarely wait
//! for one another.

use super::Budget;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SHARDS: usize = 16;

/// When the oldest key is blocked, how many keys further on eviction may look for one
/// that is not.
const SECOND_CHANCES: usize = 8;

/// The largest budget a key keeps the times of.
pub(crate) const MAX_FAILURES: u32 = 1000;

/// Counts by key, at most `capacity` keys.
pub(crate) struct Table {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    epoch: Instant,
    /// The latest end of any block, in ms since the epoch: before it nothing is looked up
    /// (the usual case: no client is blocked).
    latest_until: AtomicU64,
}

/// The keys are keyed hashes already: used as they are.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Default)]
struct Shard {
    entries: HashMap<u64, Entry, BuildHasherDefault<Identity>>,
    /// The keys, oldest first.
    order: VecDeque<u64>,
}

#[derive(Default)]
struct Entry {
    /// The times of the last failures (at most the budget's count), in ms since the
    /// table's epoch: a ring, `next` its next slot, `filled` how many it holds.
    ring: Box<[u64]>,
    next: u16,
    filled: u16,
    /// Blocks since the key was last quiet for a whole window.
    strikes: u8,
    /// Blocked until then, in ms since the table's epoch.
    until: u64,
}

impl Entry {
    fn last(&self) -> u64 {
        match self.filled {
            0 => 0,
            _ => self.ring[(usize::from(self.next) + self.ring.len() - 1) % self.ring.len()],
        }
    }

    /// The oldest failure the ring holds, when it is full.
    fn oldest_of_full(&self) -> Option<u64> {
        (usize::from(self.filled) == self.ring.len()).then(|| self.ring[usize::from(self.next)])
    }

    fn push(&mut self, at: u64) {
        if self.ring.is_empty() {
            return;
        }
        self.ring[usize::from(self.next)] = at;
        self.next = ((usize::from(self.next) + 1) % self.ring.len()) as u16;
        self.filled = (self.filled + 1).min(self.ring.len() as u16);
    }
}

impl Table {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS),
            epoch: Instant::now(),
            latest_until: AtomicU64::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).entries.len()).sum()
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, Shard> {
        // Bits the map's own bucket index and tag do not use.
        lock(&self.shards[(key >> 32) as usize % SHARDS])
    }

    fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// How much longer `key` stays blocked at `now`.
    pub(crate) fn blocked(&self, key: u64, now: Instant) -> Option<Duration> {
        let now = self.ms(now);
        if now >= self.latest_until.load(Ordering::Relaxed) {
            return None;
        }
        let until = self.shard(key).entries.get(&key)?.until;
        (until > now).then(|| Duration::from_millis(until - now))
    }

    /// One failure of `key`: blocked when it is the budget's count of failures within
    /// the window.
    pub(crate) fn fail(&self, key: u64, budget: Budget, max_block: Duration, now: Instant) {
        let now = self.ms(now);
        let mut shard = self.shard(key);
        let per_shard = self.per_shard;
        let e = shard.entry(key, per_shard, now);
        if e.ring.is_empty() {
            e.ring = vec![0; budget.failures.clamp(1, MAX_FAILURES) as usize].into();
        }
        let window = budget.window.as_millis() as u64;
        // A whole window without failures since the last one (or the end of the block)
        // starts it again from nothing; before that, each block is twice the last.
        if e.filled > 0 && now.saturating_sub(e.last().max(e.until)) >= window {
            e.filled = 0;
            e.strikes = 0;
        }
        e.push(now);
        if e.oldest_of_full()
            .is_some_and(|t| now.saturating_sub(t) < window)
        {
            e.strikes = e.strikes.saturating_add(1).min(32);
            let base = budget.base_block().as_millis() as u64;
            let block = base
                .saturating_mul(1 << (e.strikes - 1).min(31))
                .min(max_block.as_millis() as u64)
                .max(1);
            e.until = e.until.max(now + block);
            self.latest_until.fetch_max(e.until, Ordering::Relaxed);
        }
    }

    /// `key` is blocked until `until` (learnt from the shared store).
    pub(crate) fn block_until(&self, key: u64, until: Instant) {
        let (now, until) = (self.ms(Instant::now()), self.ms(until));
        let per_shard = self.per_shard;
        let mut shard = self.shard(key);
        let e = shard.entry(key, per_shard, now);
        e.until = e.until.max(until);
        self.latest_until.fetch_max(e.until, Ordering::Relaxed);
    }
}

impl Shard {
    /// The entry for `key`, made room for when it is new.
    fn entry(&mut self, key: u64, capacity: usize, now: u64) -> &mut Entry {
        if !self.entries.contains_key(&key) {
            while self.entries.len() >= capacity {
                self.evict(now);
            }
            self.order.push_back(key);
        }
        self.entries.entry(key).or_default()
    }

    /// Forgets the oldest key that is not blocked (the oldest of all when the first few
    /// are all blocked: the bound holds whatever clients do).
    fn evict(&mut self, now: u64) {
        for _ in 0..SECOND_CHANCES {
            let Some(key) = self.order.pop_front() else {
                return;
            };
            if self.entries.get(&key).is_some_and(|e| e.until > now) {
                self.order.push_back(key);
                continue;
            }
            self.entries.remove(&key);
            return;
        }
        if let Some(key) = self.order.pop_front() {
            self.entries.remove(&key);
        }
    }
}

fn lock(shard: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_A_MINUTE: Budget = Budget {
        failures: 10,
        window: Duration::from_secs(60),
    };

    #[test]
    fn blocks_at_the_budget_and_doubles_while_failures_go_on() {
        let table = Table::new(1000);
        let start = table.epoch;
        let max = Duration::from_secs(900);
        for i in 0..9 {
            table.fail(7, TEN_A_MINUTE, max, start + Duration::from_millis(i));
            assert_eq!(table.blocked(7, start + Duration::from_millis(i)), None);
        }
        table.fail(7, TEN_A_MINUTE, max, start + Duration::from_millis(9));
        let first = table.blocked(7, start + Duration::from_millis(9)).unwrap();
        assert!(first > Duration::from_millis(5900) && first <= Duration::from_secs(6));
        // Right after the block: one more failure blocks for twice as long.
        let after = start + Duration::from_millis(6010);
        assert_eq!(table.blocked(7, after), None);
        table.fail(7, TEN_A_MINUTE, max, after);
        assert_eq!(table.blocked(7, after), Some(Duration::from_secs(12)));
        // A whole window without failures: back to nothing.
        let later = after + Duration::from_secs(61 + 12);
        table.fail(7, TEN_A_MINUTE, max, later);
        assert_eq!(table.blocked(7, later), None);
    }

    #[test]
    fn blocks_grow_up_to_the_maximum() {
        let table = Table::new(1000);
        let two = Budget {
            failures: 2,
            window: Duration::from_secs(60),
        };
        let mut t = table.epoch;
        let (mut blocks, mut attempts) = (Vec::new(), Vec::new());
        for _ in 0..4 {
            for attempt in 1.. {
                table.fail(1, two, Duration::from_secs(100), t);
                if let Some(left) = table.blocked(1, t) {
                    blocks.push(left.as_secs());
                    attempts.push(attempt);
                    t += left;
                    break;
                }
            }
        }
        assert_eq!(blocks, [30, 60, 100, 100]);
        // Blocks longer than the window let the whole budget try again.
        assert_eq!(attempts, [2, 1, 2, 2]);
    }

    #[test]
    fn never_holds_more_than_its_capacity_and_keeps_blocked_keys() {
        let table = Table::new(160);
        let now = table.epoch;
        let one = Budget {
            failures: 1,
            window: Duration::from_secs(60),
        };
        // A blocked key in every shard, then a flood of new keys.
        let blocked: Vec<u64> = (0..SHARDS as u64).map(|s| s << 32).collect();
        for &key in &blocked {
            table.fail(key, one, Duration::from_secs(60), now);
        }
        for key in 0..100_000u64 {
            table.fail(
                key.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                TEN_A_MINUTE,
                Duration::from_secs(60),
                now,
            );
            assert!(table.len() <= table.capacity());
        }
        for &key in &blocked {
            assert!(table.blocked(key, now).is_some(), "{key:x} was forgotten");
        }
    }
}
