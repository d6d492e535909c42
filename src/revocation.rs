//! The revocation list, re-exported by [`store`](crate::store): tokens and sessions refused
//! before they expire, by `jti`, by session id (`sid`) or by subject (`sub`, for what was
//! issued before a time).

use crate::keys::store::StoreError;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the methods of [`RevocationList`] return.
pub type RevocationFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// One revocation: what it names, and for a subject, from when its credentials count.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// The token with this `jti`.
    Jti(String),
    /// Every token with this `sid` claim, and the session with this id
    /// ([`Principal::with_session_id`](crate::Principal::with_session_id)).
    Sid(String),
    /// Every token of this `sub` issued (`iat`) before `not_before` (seconds since the
    /// epoch), and every session of this subject: a token without `iat` and a session
    /// count as issued before.
    Sub {
        /// The subject.
        sub: String,
        /// Credentials issued at or after this time are spared.
        not_before: i64,
    },
}

impl Revocation {
    /// The token with this `jti`.
    pub fn jti(jti: impl Into<String>) -> Self {
        Self::Jti(jti.into())
    }

    /// The tokens and the session with this session id.
    pub fn sid(sid: impl Into<String>) -> Self {
        Self::Sid(sid.into())
    }

    /// The tokens of `sub` issued until now, and its sessions. `not_before` is the next
    /// whole second: a token issued within the second of the call is revoked too.
    pub fn sub(sub: impl Into<String>) -> Self {
        Self::Sub {
            sub: sub.into(),
            not_before: crate::time::now() + 1,
        }
    }

    /// The tokens of `sub` issued before `not_before`, and its sessions.
    pub fn sub_issued_before(sub: impl Into<String>, not_before: SystemTime) -> Self {
        let secs = not_before
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Self::Sub {
            sub: sub.into(),
            not_before: secs,
        }
    }

    /// What is stored: the kind and a SHA-256 of the value (a list holds no client text),
    /// and the time before which a matching credential is revoked.
    pub fn key(&self) -> (RevocationKey, i64) {
        match self {
            Self::Jti(v) => (RevocationKey::new(RevokedBy::Jti, v), i64::MAX),
            Self::Sid(v) => (RevocationKey::new(RevokedBy::Sid, v), i64::MAX),
            Self::Sub { sub, not_before } => (RevocationKey::new(RevokedBy::Sub, sub), *not_before),
        }
    }
}

/// Which of a credential's ids is on the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevokedBy {
    /// Its `jti`.
    Jti,
    /// Its session id (`sid`).
    Sid,
    /// Its subject (`sub`), issued before the revocation.
    Sub,
}

impl RevokedBy {
    /// `jti`, `sid` or `sub`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Jti => "jti",
            Self::Sid => "sid",
            Self::Sub => "sub",
        }
    }
}

/// A stored revocation's key: SHA-256 over its kind and value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RevocationKey([u8; 32]);

impl RevocationKey {
    /// The key of `value` of kind `by`.
    pub fn new(by: RevokedBy, value: &str) -> Self {
        let mut h = Sha256::new();
        h.update(by.as_str().as_bytes());
        h.update([0]);
        h.update(value.as_bytes());
        Self(h.finalize().into())
    }

    /// The key in lower-case hex, e.g. for a key in a shared store.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for RevocationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RevocationKey({})", &self.to_hex()[..12])
    }
}

/// The ids of a credential that verified, as the layer asks the list about them: from a
/// token's verified claims (`jti`, `sid`, `sub`, `iat`), or from a session's principal
/// (its session id and id; no issue time).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CredentialIds {
    /// The token's `jti`.
    pub jti: Option<String>,
    /// The token's `sid` claim, or the session's id.
    pub sid: Option<String>,
    /// The subject.
    pub sub: Option<String>,
    /// When it was issued (`iat`, seconds since the epoch); `None` counts as before any
    /// revocation of its subject.
    pub issued_at: Option<i64>,
}

impl CredentialIds {
    /// Whether there is anything to ask the list about.
    pub fn is_empty(&self) -> bool {
        self.jti.is_none() && self.sid.is_none() && self.sub.is_none()
    }

    /// The keys to look up, each with what it would mean.
    pub fn keys(&self) -> impl Iterator<Item = (RevokedBy, RevocationKey)> + '_ {
        [
            (RevokedBy::Jti, &self.jti),
            (RevokedBy::Sid, &self.sid),
            (RevokedBy::Sub, &self.sub),
        ]
        .into_iter()
        .filter_map(|(by, v)| v.as_deref().map(|v| (by, RevocationKey::new(by, v))))
    }

    /// Whether a stored revocation whose time is `not_before` covers this credential.
    pub fn issued_before(&self, not_before: i64) -> bool {
        self.issued_at.is_none_or(|iat| iat < not_before)
    }
}

/// Tokens and sessions refused before they expire (`AuthDiagnostics::revocation`).
///
/// The default is [`MemoryRevocationList`]: a revocation takes effect at once, in this
/// process only. Several replicas need one list they share.
pub trait RevocationList: Send + Sync + fmt::Debug + 'static {
    /// Adds `revocation`. `Err` when it could not be recorded (the list is full, its
    /// store is unreachable): the caller must learn that the credential still works.
    fn revoke(&self, revocation: Revocation) -> RevocationFuture<()>;

    /// Which of `ids` is revoked, if any; `Err` when the list cannot be read (the layer
    /// then answers 503 `revocation_unavailable`, unless it fails open).
    fn check(&self, ids: CredentialIds) -> RevocationFuture<Option<RevokedBy>>;
}

impl<L: RevocationList + ?Sized> RevocationList for Arc<L> {
    fn revoke(&self, revocation: Revocation) -> RevocationFuture<()> {
        (**self).revoke(revocation)
    }

    fn check(&self, ids: CredentialIds) -> RevocationFuture<Option<RevokedBy>> {
        (**self).check(ids)
    }
}

/// The default capacity of a [`MemoryRevocationList`].
const DEFAULT_CAPACITY: usize = 100_000;
/// The default longest lifetime of a credential the layer accepts.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// At most this often, a revocation sweeps expired entries (besides when the list is full).
const SWEEP_EVERY_S: i64 = 60;

/// The in-memory [`RevocationList`]: immediate, for one process.
///
/// Bounded in time: an entry lives as long as the credentials it can match —
/// [`max_token_lifetime`](Self::max_token_lifetime) (default 24 h) after it was made, for
/// a `sub` after its `not_before` — and is swept once expired. Set that lifetime to the
/// longest a token *or session* the layer accepts lives: a credential that outlives it is
/// accepted again once its entry is gone.
///
/// Bounded in entries: [`capacity`](Self::capacity), default 100 000 revocations, about
/// 6 MiB when full (6.1 MiB measured; an entry is a 32-byte hash and two times, and the
/// table rounds up to a power of two). When it is full of live entries a new revocation fails closed for the
/// list, not for the credential: it is logged at ERROR and
/// [`revoke`](RevocationList::revoke) returns an error, so the operator learns it; the
/// credential keeps working, and entries already listed stay listed.
///
/// ```
/// use auth_diagnostics::store::{CredentialIds, MemoryRevocationList, Revocation, RevocationList, RevokedBy};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let list = MemoryRevocationList::new();
/// list.revoke(Revocation::jti("t-1")).await.unwrap();
/// let mut ids = CredentialIds::default();
/// ids.jti = Some("t-1".into());
/// assert_eq!(list.check(ids).await.unwrap(), Some(RevokedBy::Jti));
/// # }
/// ```
#[derive(Debug)]
pub struct MemoryRevocationList {
    capacity: usize,
    lifetime_s: i64,
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<RevocationKey, Entry>,
    next_sweep: i64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When the entry may be forgotten (seconds since the epoch).
    expires_at: i64,
    /// Credentials issued before this are revoked (`i64::MAX`: all of them).
    not_before: i64,
}

impl Default for MemoryRevocationList {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRevocationList {
    /// An empty list: 100 000 entries at most, each kept 24 h.
    pub fn new() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            lifetime_s: DEFAULT_LIFETIME.as_secs() as i64,
            state: RwLock::default(),
        }
    }

    /// At most `capacity` revocations (at least 1) are held at once.
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The longest a token or session the layer accepts lives (at least 1 s): how long a
    /// revocation is kept.
    #[must_use]
    pub fn max_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime_s = (lifetime.as_secs() as i64).max(1);
        self
    }

    /// Revocations held now, expired ones not yet swept included: never more than the
    /// capacity.
    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `revocation` at `now`, or says why it cannot.
    fn insert(&self, revocation: &Revocation, now: i64) -> Result<(), StoreError> {
        let (key, not_before) = revocation.key();
        let expires_at = match not_before {
            i64::MAX => now,
            t => t.max(now),
        }
        .saturating_add(self.lifetime_s);
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let full = state.entries.len() >= self.capacity && !state.entries.contains_key(&key);
        if full || now >= state.next_sweep {
            state.entries.retain(|_, e| e.expires_at > now);
            state.next_sweep = now + SWEEP_EVERY_S;
        }
        if state.entries.len() >= self.capacity && !state.entries.contains_key(&key) {
            tracing::error!(
                target: "auth_diagnostics",
                capacity = self.capacity,
                "the revocation list is full: a revocation was not recorded and the credential still works; raise MemoryRevocationList::capacity or shorten max_token_lifetime"
            );
            return Err(StoreError::new(format!(
                "the revocation list is full ({} live entries)",
                self.capacity
            )));
        }
        let e = state.entries.entry(key).or_insert(Entry {
            expires_at,
            not_before,
        });
        e.expires_at = e.expires_at.max(expires_at);
        e.not_before = e.not_before.max(not_before);
        Ok(())
    }

    /// Which of `ids` is listed at `now`.
    fn lookup(&self, ids: &CredentialIds, now: i64) -> Option<RevokedBy> {
        let state = self.read();
        if state.entries.is_empty() {
            return None;
        }
        ids.keys().find_map(|(by, key)| {
            let e = state.entries.get(&key)?;
            (e.expires_at > now && ids.issued_before(e.not_before)).then_some(by)
        })
    }
}

impl RevocationList for MemoryRevocationList {
    fn revoke(&self, revocation: Revocation) -> RevocationFuture<()> {
        let done = self.insert(&revocation, crate::time::now());
        Box::pin(std::future::ready(done))
    }

    fn check(&self, ids: CredentialIds) -> RevocationFuture<Option<RevokedBy>> {
        let found = self.lookup(&ids, crate::time::now());
        Box::pin(std::future::ready(Ok(found)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(
        jti: Option<&str>,
        sid: Option<&str>,
        sub: Option<&str>,
        iat: Option<i64>,
    ) -> CredentialIds {
        CredentialIds {
            jti: jti.map(Into::into),
            sid: sid.map(Into::into),
            sub: sub.map(Into::into),
            issued_at: iat,
        }
    }

    #[test]
    fn a_sub_revocation_spares_what_was_issued_at_or_after_it() {
        let list = MemoryRevocationList::new();
        let sub = Revocation::Sub {
            sub: "alice".into(),
            not_before: 1_000,
        };
        list.insert(&sub, 1_000).unwrap();
        let alice = |iat| ids(None, None, Some("alice"), iat);
        assert_eq!(list.lookup(&alice(Some(999)), 1_000), Some(RevokedBy::Sub));
        assert_eq!(list.lookup(&alice(None), 1_000), Some(RevokedBy::Sub));
        assert_eq!(list.lookup(&alice(Some(1_000)), 1_000), None);
        assert_eq!(
            list.lookup(&ids(None, None, Some("bob"), None), 1_000),
            None
        );
    }

    #[test]
    fn entries_live_as_long_as_the_credentials_they_match() {
        let list = MemoryRevocationList::new().max_token_lifetime(Duration::from_secs(100));
        list.insert(&Revocation::jti("j"), 1_000).unwrap();
        let j = ids(Some("j"), None, None, Some(0));
        assert_eq!(list.lookup(&j, 1_099), Some(RevokedBy::Jti));
        assert_eq!(
            list.lookup(&j, 1_100),
            None,
            "expired with the tokens it can match"
        );
        // Swept by the next revocation once expired.
        list.insert(&Revocation::sid("s"), 1_100 + SWEEP_EVERY_S)
            .unwrap();
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn a_full_list_refuses_new_revocations_and_keeps_the_old_ones() {
        let list = MemoryRevocationList::new()
            .capacity(3)
            .max_token_lifetime(Duration::from_secs(100));
        for j in ["a", "b", "c"] {
            list.insert(&Revocation::jti(j), 1_000).unwrap();
        }
        assert!(list.insert(&Revocation::jti("d"), 1_001).is_err());
        // Listed ones can be renewed; old ones still match.
        list.insert(&Revocation::jti("a"), 1_001).unwrap();
        assert_eq!(
            list.lookup(&ids(Some("c"), None, None, None), 1_001),
            Some(RevokedBy::Jti)
        );
        assert_eq!(list.len(), 3);
        // Once the entries expire there is room again.
        list.insert(&Revocation::jti("d"), 1_100).unwrap();
        assert_eq!(list.len(), 2, "a (renewed) and d");
    }
}
