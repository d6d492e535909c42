//! A key source's side of sharing key sets between replicas: loading the last known good
//! set (checked: MAC, date, age, newer than ours) and storing fresh ones.

use super::{jwk, shown, shown_source, Inner, KeySet};
use crate::keys::store::{public_part, seal, source_name, unseal, StoredKeySet};
use crate::time::now_ms;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

/// How far ahead of this clock a stored set may be dated (another replica's clock).
const MAX_SKEW_MS: i64 = 60_000;

/// Why a stored set is not taken: the metric's result, and what to log at WARN.
type Refusal = (&'static str, Option<String>);

impl Inner {
    /// Takes the shared store's key set when it verifies, is newer than the cached one,
    /// and is not older than `max_shared_age`. Store failures are logged and change
    /// nothing. It waits at most half of what a request waits for keys, so a store that
    /// does not answer leaves the provider time to.
    pub(super) async fn load_shared(&self) {
        let Some((store, _)) = &self.settings.store else {
            return;
        };
        let source = shown_source(self.url());
        let limit = self.settings.fetch_timeout.min(self.settings.max_wait / 2);
        let loading = store.load(&source_name(self.url()));
        let outcome = match tokio::time::timeout(limit, loading).await {
            Ok(Ok(Some(stored))) => self.take_shared(stored, &source),
            Ok(Ok(None)) => Err(("absent", None)),
            Ok(Err(e)) => Err(("error", Some(e.to_string()))),
            Err(_) => Err(("error", Some(format!("no answer within {limit:?}")))),
        };
        let result = match outcome {
            Ok(()) => "ok",
            Err((result, why)) => {
                if let Some(why) = why {
                    shared_store_failed(&source, "load", &why);
                }
                result
            }
        };
        crate::metrics::shared_key_set(&source, "load", result);
    }

    /// Uses `stored` unless it is not ours (MAC), dated ahead, not newer than the cached
    /// set, too old, or holds no usable key.
    fn take_shared(&self, stored: StoredKeySet, source: &str) -> Result<(), Refusal> {
        self.check_shared(&stored)?;
        let cached = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if cached.is_some_and(|c| c.fetched_at_ms >= stored.fetched_at_ms) {
            // Ours, or older than ours.
            return Ok(());
        }
        let age = (now_ms() - stored.fetched_at_ms).max(0) / 1000;
        let max_age = self.settings.max_shared_age.as_secs();
        if age.unsigned_abs() > max_age {
            tracing::warn!(
                target: "auth_diagnostics::keys",
                key_source = source,
                shared_age_s = age,
                max_shared_age_s = max_age,
                "the shared key set is too old to use: {age} s, at most {max_age} s"
            );
            return Err(("too_old", None));
        }
        let Ok(set) = jwk::parse(stored.jwks.as_bytes(), self.settings.max_keys) else {
            return Err(("unusable", Some("the stored set is not a JWK set".into())));
        };
        if set.keys.is_empty() {
            return Err((
                "unusable",
                Some("the stored set holds no usable key".into()),
            ));
        }
        let set = KeySet {
            keys: set.keys,
            fetched_at: stored.fetched_at_ms.div_euclid(1000),
            fetched_at_ms: stored.fetched_at_ms,
            skipped: set.skipped,
        };
        tracing::info!(
            target: "auth_diagnostics::keys",
            key_source = source,
            key_ids = set.kids().as_str(),
            shared_age_s = age,
            "key set loaded from the shared store, fetched {age} s ago by a replica"
        );
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(set));
        self.generation.fetch_add(1, Ordering::AcqRel);
        // Requests waiting for keys may go on with these.
        self.attempts.send_modify(|n| *n += 1);
        Ok(())
    }

    /// A stored set must carry this source's MAC and must not be dated ahead.
    fn check_shared(&self, stored: &StoredKeySet) -> Result<(), Refusal> {
        let Some((_, key)) = &self.settings.store else {
            return Err(("unusable", None));
        };
        if !unseal(key, &source_name(self.url()), stored) {
            let why = "the stored set's MAC does not verify: it was written without this \
                       source's shared-store key (another key, or not by a replica)";
            return Err(("unusable", Some(why.into())));
        }
        let ahead = stored.fetched_at_ms - now_ms();
        if ahead > MAX_SKEW_MS {
            let why = format!(
                "the stored set is dated {} s ahead of this clock",
                ahead / 1000
            );
            return Err(("unusable", Some(why)));
        }
        Ok(())
    }

    /// Stores a freshly fetched set's public part for other replicas (unless the store
    /// holds a newer one).
    pub(super) async fn save_shared(&self, body: &[u8], fetched_at_ms: i64) {
        let (Some((store, key)), Some(jwks)) = (&self.settings.store, public_part(body)) else {
            return;
        };
        let name = source_name(self.url());
        let set = seal(key, &name, jwks, fetched_at_ms);
        let ttl = self.settings.max_shared_age.as_secs().max(1);
        let saving = store.save(&name, set, ttl);
        let source = shown_source(self.url());
        let failed = match tokio::time::timeout(self.settings.fetch_timeout, saving).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("no answer in time".to_owned()),
        };
        if let Some(why) = &failed {
            shared_store_failed(&source, "save", why);
        }
        let result = if failed.is_some() { "error" } else { "ok" };
        crate::metrics::shared_key_set(&source, "save", result);
    }
}

/// A shared key set store that failed, or a set refused: a WARN, since the provider and
/// the cached keys still serve.
fn shared_store_failed(source: &str, op: &'static str, why: &str) {
    let why = shown(why);
    tracing::warn!(
        target: "auth_diagnostics::keys",
        key_source = source,
        store_op = op,
        store_error = why.as_str(),
        "the shared key set store failed to {op}: {why}; using the cached keys and the identity provider"
    );
}
