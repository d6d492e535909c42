//! Where a [`KeySource`](super::KeySource) keeps its last known good key set for other
//! replicas: the [`KeySetStore`] trait, and [`MemoryKeySetStore`] for one process.
//!
//! A replica that starts while the identity provider is unreachable has no keys of its
//! own. With a shared store it reads the set its siblings fetched, before (not instead of)
//! asking the provider, and uses it until its own fetch succeeds.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// A shared store that cannot answer (unreachable, timed out, full): what it says, for
/// the log. Replay checks fail closed on it; key sets fall back to memory and the
/// provider.
#[derive(Debug, Clone)]
pub struct StoreError(String);

impl StoreError {
    /// An error that says why, for the log (no secrets: it is logged as it is).
    pub fn new(why: impl Into<String>) -> Self {
        Self(why.into())
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// What the methods of [`KeySetStore`] return.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// A key set as stored: the JWK set document (public members only), when it was fetched
/// from the identity provider, and the MAC that shows a replica stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKeySet {
    /// The JWK set, as JSON (`{"keys":[…]}`), without private or symmetric key members.
    pub jwks: String,
    /// When a replica fetched it from the provider, in milliseconds since the epoch (two
    /// replicas may fetch within one second).
    pub fetched_at_ms: i64,
    /// HMAC-SHA256 (hex) over the source's name, `fetched_at_ms` and `jwks`, with the
    /// shared-store key of [`KeySource::shared_store`](crate::keys::KeySource::shared_store).
    pub mac: String,
}

/// Keeps the last key set fetched from each source, for other replicas.
///
/// `source` is a stable name of the source: a hex SHA-256 of its configured URL, so the
/// store never holds a URL's query or user-info.
pub trait KeySetStore: Send + Sync + fmt::Debug + 'static {
    /// The set stored for `source`, if any.
    fn load(&self, source: &str) -> StoreFuture<Option<StoredKeySet>>;
    /// Stores `set` for `source`, unless the set there has a later `fetched_at_ms` (a slow
    /// save of an older set must not replace a newer one). It may be dropped after `ttl`
    /// seconds: nobody loads a set older than that.
    fn save(&self, source: &str, set: StoredKeySet, ttl: u64) -> StoreFuture<()>;
}

/// Sources a [`MemoryKeySetStore`] holds at most.
const MEMORY_SOURCES: usize = 256;

/// A [`KeySetStore`] in this process's memory: for several sources of one URL in one
/// process (say, two layers), and for tests. Holds at most 256 sources.
#[derive(Debug, Default)]
pub struct MemoryKeySetStore {
    sets: Mutex<HashMap<String, StoredKeySet>>,
}

impl MemoryKeySetStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl KeySetStore for MemoryKeySetStore {
    fn load(&self, source: &str) -> StoreFuture<Option<StoredKeySet>> {
        let found = self
            .sets
            .lock()
            .map(|sets| sets.get(source).cloned())
            .map_err(|_| StoreError::new("a key set store lock was poisoned"));
        Box::pin(std::future::ready(found))
    }

    fn save(&self, source: &str, set: StoredKeySet, _ttl: u64) -> StoreFuture<()> {
        let saved = match self.sets.lock() {
            Ok(mut sets) if sets.len() < MEMORY_SOURCES || sets.contains_key(source) => {
                let newer = sets
                    .get(source)
                    .is_some_and(|had| had.fetched_at_ms > set.fetched_at_ms);
                if !newer {
                    sets.insert(source.to_owned(), set);
                }
                Ok(())
            }
            Ok(_) => Err(StoreError::new(format!(
                "the in-memory key set store holds {MEMORY_SOURCES} sources, its limit"
            ))),
            Err(_) => Err(StoreError::new("a key set store lock was poisoned")),
        };
        Box::pin(std::future::ready(saved))
    }
}

/// The members of a JWK that are private or symmetric key material (RFC 7518 §6): never
/// stored, even if a provider published them.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The public part of a JWK set document: keys without private members, no `oct` keys.
pub(crate) fn public_part(body: &[u8]) -> Option<String> {
    let mut doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    let keys = doc.get_mut("keys")?.as_array_mut()?;
    keys.retain(|k| k.get("kty").and_then(|t| t.as_str()) != Some("oct"));
    for key in keys.iter_mut() {
        if let Some(key) = key.as_object_mut() {
            key.retain(|name, _| !PRIVATE_MEMBERS.contains(&name.as_str()));
        }
    }
    let keys = std::mem::take(keys);
    serde_json::to_string(&serde_json::json!({ "keys": keys })).ok()
}

/// The MAC of a stored set: HMAC-SHA256 over the source's name, the fetch time and the
/// set, each length-prefixed.
fn mac(key: &[u8; 32], source: &str, fetched_at_ms: i64, jwks: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    for part in [
        source.as_bytes(),
        &fetched_at_ms.to_be_bytes(),
        jwks.as_bytes(),
    ] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

/// A set ready to store, with its MAC.
pub(crate) fn seal(key: &[u8; 32], source: &str, jwks: String, fetched_at_ms: i64) -> StoredKeySet {
    let tag = mac(key, source, fetched_at_ms, &jwks)
        .finalize()
        .into_bytes();
    StoredKeySet {
        jwks,
        fetched_at_ms,
        mac: tag.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// Whether a stored set carries the MAC `key` makes (compared in constant time).
pub(crate) fn unseal(key: &[u8; 32], source: &str, set: &StoredKeySet) -> bool {
    let Some(tag) = from_hex(&set.mac) else {
        return false;
    };
    mac(key, source, set.fetched_at_ms, &set.jwks)
        .verify_slice(&tag)
        .is_ok()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The name a source is stored under: hex SHA-256 of its configured URL.
pub(crate) fn source_name(url: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(url.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_part_drops_private_and_symmetric_keys() {
        let body = br#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","d":"secret","kid":"a"},
            {"kty":"oct","k":"c2VjcmV0"},{"kty":"EC","crv":"P-256","x":"x","y":"y"}],"other":1}"#;
        let public = public_part(body).unwrap();
        assert!(
            !public.contains("secret") && !public.contains("c2VjcmV0"),
            "{public}"
        );
        assert!(
            public.contains(r#""kid":"a""#) && public.contains("P-256"),
            "{public}"
        );
        assert!(public_part(b"not json").is_none());
        assert_eq!(source_name("https://idp/jwks").len(), 64);
    }

    #[test]
    fn a_mac_binds_key_source_time_and_set() {
        let set = seal(&[7; 32], "src", r#"{"keys":[]}"#.into(), 1000);
        assert!(unseal(&[7; 32], "src", &set));
        assert!(!unseal(&[8; 32], "src", &set), "another key");
        assert!(!unseal(&[7; 32], "other", &set), "another source");
        let later = StoredKeySet {
            fetched_at_ms: 2000,
            ..set.clone()
        };
        assert!(!unseal(&[7; 32], "src", &later), "another time");
        let planted = StoredKeySet {
            jwks: r#"{"keys":[{}]}"#.into(),
            ..set.clone()
        };
        assert!(!unseal(&[7; 32], "src", &planted), "another set");
        let garbled = StoredKeySet {
            mac: "zz".repeat(32),
            ..set
        };
        assert!(!unseal(&[7; 32], "src", &garbled));
    }

    #[tokio::test]
    async fn memory_store_is_bounded() {
        let store = MemoryKeySetStore::new();
        let set = seal(&[1; 32], "s", "{}".into(), 5);
        let older = seal(&[1; 32], "s", "{}".into(), 4);
        for i in 0..MEMORY_SOURCES {
            store.save(&i.to_string(), set.clone(), 60).await.unwrap();
        }
        assert!(store.save("one more", set.clone(), 60).await.is_err());
        store.save("0", set.clone(), 60).await.unwrap();
        store.save("0", older, 60).await.unwrap();
        assert_eq!(
            store.load("0").await.unwrap(),
            Some(set),
            "the newer one stays"
        );
        assert_eq!(store.load("none").await.unwrap(), None);
    }
}
