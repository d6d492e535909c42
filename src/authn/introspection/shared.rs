//! Introspection answers shared between replicas: [`IntrospectionStore`] (Redis with
//! feature `redis`, or the application's own), and how an answer is named and sealed there.
//!
//! - **Named** by HMAC-SHA256 of the token under the configured key: the store never sees
//!   a token, and a name cannot be turned back into one.
//! - **Sealed**: each entry carries HMAC-SHA256 (under a key derived for that purpose)
//!   over its name, its deadline and the answer. An entry the store made up, moved to
//!   another token's name, or kept past its deadline is ignored: whoever can write to the
//!   store cannot make a token active.
//! - **Never trusted for long**: an entry ends when a local one would
//!   (`min(cache_max_age, exp − now)`, a refusal after `negative_cache_max_age`); the
//!   store's own expiry is set to the same deadline.
//! - **Never required**: a store that cannot answer is logged (WARN) and the endpoint is
//!   asked, as without one.

use crate::keys::store::{StoreError, StoreFuture};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Where introspection answers are shared by every replica
/// ([`Introspector::shared_cache`](crate::introspection::Introspector::shared_cache)).
///
/// `RedisStore` implements it (feature `redis`). Entries arrive sealed (a MAC under a key
/// the store does not know) and are checked when loaded: a store only keeps bytes.
pub trait IntrospectionStore: Send + Sync + fmt::Debug + 'static {
    /// The bytes saved under `name`, if they have not expired.
    fn load(&self, name: &str) -> StoreFuture<Option<Vec<u8>>>;

    /// Saves `entry` under `name` for `ttl` (at least a millisecond).
    fn save(&self, name: &str, entry: Vec<u8>, ttl: Duration) -> StoreFuture<()>;
}

/// A store and the key entries are named and sealed with.
#[derive(Clone)]
pub(crate) struct Shared {
    store: Arc<dyn IntrospectionStore>,
    naming: [u8; 32],
    sealing: [u8; 32],
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Shared {
    /// `key`: at least 16 bytes, the same on every replica (checked when configured).
    pub(crate) fn new(store: Arc<dyn IntrospectionStore>, key: &[u8]) -> Self {
        Self {
            store,
            naming: mac(key, &[b"auth-diagnostics introspection names"]),
            sealing: mac(key, &[b"auth-diagnostics introspection seals"]),
        }
    }

    /// The entry name of `token`.
    pub(crate) fn name(&self, token: &str) -> String {
        hex(&mac(&self.naming, &[token.as_bytes()]))
    }

    /// The answer stored under `name` and its deadline (ms), if its seal holds and its
    /// deadline is ahead.
    pub(crate) async fn load(
        &self,
        name: &str,
        now_ms: i64,
    ) -> Result<Option<(Map<String, Value>, i64)>, StoreError> {
        let Some(bytes) = self.store.load(name).await? else {
            return Ok(None);
        };
        Ok(self.open(name, &bytes, now_ms))
    }

    /// Saves `answer` under `name` until `until_ms`.
    pub(crate) async fn save(
        &self,
        name: &str,
        answer: &Map<String, Value>,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let ttl = Duration::from_millis(until_ms.saturating_sub(now_ms).max(1) as u64);
        self.store
            .save(name, self.seal(name, answer, until_ms), ttl)
            .await
    }

    /// `tag (64 hex) | until_ms | answer JSON`, the tag over the name and the rest.
    fn seal(&self, name: &str, answer: &Map<String, Value>, until_ms: i64) -> Vec<u8> {
        let json = serde_json::to_vec(answer).unwrap_or_default();
        let until = until_ms.to_string();
        let tag = mac(&self.sealing, &[name.as_bytes(), until.as_bytes(), &json]);
        let mut out = Vec::with_capacity(64 + 1 + until.len() + 1 + json.len());
        out.extend_from_slice(hex(&tag).as_bytes());
        out.push(b'|');
        out.extend_from_slice(until.as_bytes());
        out.push(b'|');
        out.extend_from_slice(&json);
        out
    }

    fn open(&self, name: &str, bytes: &[u8], now_ms: i64) -> Option<(Map<String, Value>, i64)> {
        let mut parts = bytes.splitn(3, |b| *b == b'|');
        let (tag, until, json) = (parts.next()?, parts.next()?, parts.next()?);
        let expected = mac(&self.sealing, &[name.as_bytes(), until, json]);
        if !crate::secret::constant_time_eq(tag, hex(&expected).as_bytes()) {
            return None;
        }
        let until: i64 = std::str::from_utf8(until).ok()?.parse().ok()?;
        if until <= now_ms {
            return None;
        }
        match serde_json::from_slice(json).ok()? {
            Value::Object(answer) => Some((answer, until)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    struct Memory(Mutex<HashMap<String, Vec<u8>>>);

    impl IntrospectionStore for Memory {
        fn load(&self, name: &str) -> StoreFuture<Option<Vec<u8>>> {
            let got = self.0.lock().unwrap().get(name).cloned();
            Box::pin(async move { Ok(got) })
        }
        fn save(&self, name: &str, entry: Vec<u8>, _: Duration) -> StoreFuture<()> {
            self.0.lock().unwrap().insert(name.to_owned(), entry);
            Box::pin(async { Ok(()) })
        }
    }

    fn answer() -> Map<String, Value> {
        let v = serde_json::json!({ "active": true, "sub": "alice", "exp": 2_000_000_000i64 });
        v.as_object().unwrap().clone()
    }

    #[tokio::test]
    async fn sealed_entries_open_only_where_and_while_they_were_sealed() {
        let memory = Arc::new(Memory::default());
        let shared = Shared::new(memory.clone(), b"sixteen-bytes-or-more");
        let (a, b) = (shared.name("token-a"), shared.name("token-b"));
        assert_ne!(a, b);
        assert!(!a.contains("token"));
        shared.save(&a, &answer(), 2_000, 1_000).await.unwrap();
        assert_eq!(
            shared.load(&a, 1_500).await.unwrap(),
            Some((answer(), 2_000))
        );
        assert_eq!(
            shared.load(&a, 2_000).await.unwrap(),
            None,
            "past its deadline"
        );

        // Moved to another token's name: ignored.
        let sealed = memory.0.lock().unwrap().get(&a).cloned().unwrap();
        memory.0.lock().unwrap().insert(b.clone(), sealed.clone());
        assert_eq!(shared.load(&b, 1_500).await.unwrap(), None);

        // Made up, or edited, by whoever writes to the store: ignored.
        let text = String::from_utf8(sealed).unwrap();
        let longer = text.replace("|2000|", "|9999999999999|");
        let planted = format!(
            "{}|2000|{{\"active\":true,\"sub\":\"mallory\"}}",
            &text[..64]
        );
        for forged in [longer, planted, "garbage".to_owned(), String::new()] {
            memory
                .0
                .lock()
                .unwrap()
                .insert(a.clone(), forged.clone().into_bytes());
            assert_eq!(shared.load(&a, 1_500).await.unwrap(), None, "{forged}");
        }

        // Another key (another deployment sharing the Redis): its entries do not open.
        shared.save(&a, &answer(), 2_000, 1_000).await.unwrap();
        let other = Shared::new(memory.clone(), b"another-sixteen-bytes");
        assert_eq!(other.load(&a, 1_500).await.unwrap(), None);
    }
}
