//! A key source that publishes one PEM public key per `kid` rather than a JWK set: AWS
//! Application Load Balancer's `https://public-keys.auth.elb.<region>.amazonaws.com/<kid>`.
//!
//! Nothing is fetched until a token names a `kid` the source does not hold; then that
//! `kid` (and the others asked for meanwhile, at most [`MAX_WANTED`]) is fetched by the
//! source's one refresh task, under the same rules as a JWK set: the URL checked, no
//! redirect off the origin, the timeout and the size cap. A `kid` is fetched only when it
//! is a plain identifier (it becomes a path segment), and a key the endpoint does not have
//! (403 or 404) is a key the source does not have, not a fetch failure: made-up `kid`s
//! never turn into `key_source_unavailable`. A `kid` names one key for good, so the keys
//! held are kept (the oldest dropped beyond the source's `max_keys`).

use super::{shown_source, FetchError, FetchErrorKind, Inner, KeySet, RemoteKey};
use crate::sanitize::cap;
use crate::time::now;
use bytes::Bytes;
use jsonwebtoken::{Algorithm, DecodingKey};
use std::sync::PoisonError;
use std::time::Duration;

/// The most `kid`s one refresh fetches.
pub(super) const MAX_WANTED: usize = 8;

/// The longest `kid` fetched (ALB's are UUIDs, 36 characters).
const MAX_KID: usize = 128;

/// Queues `kid` for the next refresh: once, and only a plain identifier.
pub(super) fn want(wanted: &mut Vec<String>, kid: &str) {
    if fetchable(kid) && wanted.len() < MAX_WANTED && !wanted.iter().any(|k| k == kid) {
        wanted.push(kid.to_owned());
    }
}

/// Whether `kid` may become a URL path segment as it is.
fn fetchable(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Inner {
    /// The keys held, with the `kid`s asked for fetched and added.
    pub(super) async fn fetch_per_kid(
        &self,
        base: &str,
    ) -> Result<(KeySet, Duration, Bytes), FetchError> {
        if let Some(e) = &self.settings.url_error {
            return Err(FetchError::new(FetchErrorKind::Untrusted, e.clone()));
        }
        let wanted = std::mem::take(&mut self.lock().wanted);
        let held = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (mut keys, mut skipped) = match &held {
            Some(set) => (set.keys.clone(), set.skipped.clone()),
            None => (Vec::new(), Vec::new()),
        };
        for (i, kid) in wanted.iter().enumerate() {
            if keys.iter().any(|k| k.kid.as_deref() == Some(kid.as_str())) {
                continue;
            }
            let url = format!("{base}{kid}");
            let fetched = match self.get(&url).await {
                Ok(fetched) => fetched,
                Err(e) if matches!(e.status(), Some(403 | 404)) => {
                    let why = format!(
                        "kid {}: {} has no such key (HTTP {})",
                        cap(kid),
                        shown_source(base),
                        e.status().unwrap_or_default()
                    );
                    skipped.retain(|s| s != &why);
                    skipped.push(why);
                    continue;
                }
                Err(e) => {
                    // Ask again next time for this one and those not tried yet.
                    let mut st = self.lock();
                    for kid in &wanted[i..] {
                        want(&mut st.wanted, kid);
                    }
                    return Err(e);
                }
            };
            match DecodingKey::from_ec_pem(&fetched.body) {
                Ok(key) => keys.push(RemoteKey::new(kid.clone(), vec![Algorithm::ES256], key)),
                Err(e) => skipped.push(format!(
                    "kid {}: {} is not a PEM EC public key: {e}",
                    cap(kid),
                    shown_source(&url)
                )),
            }
        }
        let max = self.settings.max_keys.max(1);
        if keys.len() > max {
            keys.drain(..keys.len() - max);
        }
        // The notes on keys not found: the latest few.
        if skipped.len() > MAX_WANTED * 2 {
            skipped.drain(..skipped.len() - MAX_WANTED * 2);
        }
        let set = KeySet {
            keys,
            fetched_at: now(),
            fetched_at_ms: crate::time::now_ms(),
            skipped,
        };
        Ok((set, self.settings.max_ttl, Bytes::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_kids_are_fetched() {
        let mut wanted = Vec::new();
        for kid in [
            "0a1b2c3d-aaaa-bbbb-cccc-0123456789ab",
            "../../etc",
            "a/b",
            "",
            "x?y",
        ] {
            want(&mut wanted, kid);
        }
        want(&mut wanted, "0a1b2c3d-aaaa-bbbb-cccc-0123456789ab");
        assert_eq!(wanted, ["0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"]);
        for i in 0..20 {
            want(&mut wanted, &format!("k{i}"));
        }
        assert_eq!(wanted.len(), MAX_WANTED);
    }
}
