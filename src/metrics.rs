//! The layer's metrics, through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`, on by default). Without an installed recorder every call here is a no-op.
//!
//! Every label value comes from a closed set ([`Reason`] codes, scheme names, status codes,
//! algorithm families, fetch outcomes) or from the configuration (a key source's URL): never
//! from the request, so no client can create a series. Names follow the Prometheus
//! conventions (`snake_case`, base units in the name, `_total` on counters) which the
//! OpenTelemetry Prometheus bridge keeps as they are.
// Without the feature the names and labels are still defined (and documented), unused.
#![cfg_attr(not(feature = "metrics"), allow(dead_code))]

use crate::reason::Reason;
use crate::scheme::Scheme;
use http::StatusCode;
use jsonwebtoken::Algorithm;
use std::time::Duration;

/// Failures the layer answered or diagnosed, counted before flood control.
pub(crate) const FAILURES: &str = "auth_diagnostics_failures_total";
/// Refusals a report-only layer did not make: the request went on anonymously.
pub(crate) const WOULD_REFUSE: &str = "auth_diagnostics_would_refuse_total";
/// Requests a scheme authenticated.
pub(crate) const SUCCESSES: &str = "auth_diagnostics_successes_total";
/// The wrapped service's answers that break the contract, corrected or kept.
pub(crate) const UPSTREAM_CORRECTIONS: &str = "auth_diagnostics_upstream_corrections_total";
/// Key set fetches (discovery included), by outcome.
pub(crate) const KEY_FETCHES: &str = "auth_diagnostics_key_fetches_total";
/// Shared key set store operations (several replicas), by source, op and result.
pub(crate) const SHARED_KEY_SETS: &str = "auth_diagnostics_shared_key_sets_total";
/// Verified-token cache lookups, hit or miss.
pub(crate) const TOKEN_CACHE_LOOKUPS: &str = "auth_diagnostics_token_cache_lookups_total";
/// Verified-token cache entries evicted to stay within bounds.
pub(crate) const TOKEN_CACHE_EVICTIONS: &str = "auth_diagnostics_token_cache_evictions_total";
/// Failure events flood control held back from the log.
pub(crate) const LOG_SUPPRESSED: &str = "auth_diagnostics_log_suppressed_total";
/// Time of one signature check, by algorithm family.
pub(crate) const VERIFICATION_DURATION: &str = "auth_diagnostics_verification_duration_seconds";

/// The `scheme` label of a scheme.
pub(crate) fn scheme_label(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Basic => "basic",
        Scheme::Bearer => "bearer",
        Scheme::ApiKey => "api_key",
        Scheme::Cookie => "cookie",
        Scheme::Dpop => "dpop",
        Scheme::ProxyAssertion => "proxy_assertion",
    }
}

/// The `scheme` label of what a client sent: a scheme the layer speaks, `other` for any
/// other word, `none` without credentials.
pub(crate) fn received_label(received: Option<&str>) -> &'static str {
    match received {
        None => "none",
        Some(word) => Scheme::from_word(word).map_or("other", scheme_label),
    }
}

/// The `family` label of an algorithm.
pub(crate) fn family(alg: Algorithm) -> &'static str {
    use Algorithm::*;
    match alg {
        HS256 | HS384 | HS512 => "hmac",
        RS256 | RS384 | RS512 => "rsa",
        PS256 | PS384 | PS512 => "rsa_pss",
        ES256 | ES384 => "ecdsa",
        EdDSA => "eddsa",
        // A newer jsonwebtoken's algorithm: still one label, never the request's text.
        _ => "other",
    }
}

#[cfg(feature = "metrics")]
mod record {
    use super::*;
    use metrics::{
        counter, describe_counter, describe_histogram, histogram, Key, Label, Level, Metadata, Unit,
    };
    use std::sync::OnceLock;

    // The counters of every request, accepted or refused, are keyed with keys built once
    // (`Key::from_static_parts`, which hashes the name and labels): `counter!` builds and
    // hashes its key on every call, and allocates a label vector, recorder or not. Handles
    // are not kept: the recorder in force (global or local) is asked on every call, as
    // `counter!` does.

    /// The `scheme` labels of [`scheme_label`] and [`received_label`].
    pub(super) const SCHEMES: [&str; 8] = [
        "basic",
        "bearer",
        "api_key",
        "cookie",
        "dpop",
        "proxy_assertion",
        "none",
        "other",
    ];
    /// The statuses whose `status` label is kept as a constant.
    const STATUSES: [(u16, &str); 4] = [(400, "400"), (401, "401"), (403, "403"), (503, "503")];

    /// What `counter!` passes as the metadata of a counter of this module.
    static METADATA: Metadata<'static> =
        Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

    /// Keys built once, on first use, from label sets that live as long as the program.
    type Keys = OnceLock<Box<[Key]>>;

    /// The keys of counter `name`, one per label set of `labels`, built on first use.
    fn keys_of(
        table: &'static Keys,
        name: &'static str,
        labels: impl FnOnce() -> Vec<Vec<Label>>,
    ) -> &'static [Key] {
        table.get_or_init(|| {
            labels()
                .into_iter()
                .map(|set| Key::from_static_parts(name, Vec::leak(set)))
                .collect()
        })
    }

    /// Adds `n` to the counter of `key`, through the recorder in force.
    fn add(key: &Key, n: u64) {
        metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA)).increment(n);
    }

    fn scheme_index(scheme: &str) -> Option<usize> {
        SCHEMES.iter().position(|s| *s == scheme)
    }

    /// The key of counter `name` (of a per-reason `table`) with `reason="<code>"`.
    pub(super) fn reason_key(
        table: &'static Keys,
        name: &'static str,
        reason: Reason,
    ) -> &'static Key {
        let labels = || {
            Reason::ALL
                .iter()
                .map(|r| vec![Label::from_static_parts("reason", r.code())])
                .collect()
        };
        &keys_of(table, name, labels)[reason as usize]
    }

    /// The [`FAILURES`] key with `reason`, `scheme` and `status` labels for a scheme of
    /// [`SCHEMES`] and a status of [`STATUSES`] (their indices), built per reason on its
    /// first failure.
    pub(super) fn failure_key(reason: Reason, scheme: usize, status: usize) -> &'static Key {
        static TABLE: OnceLock<Box<[Keys]>> = OnceLock::new();
        let per_reason =
            TABLE.get_or_init(|| Reason::ALL.iter().map(|_| OnceLock::new()).collect());
        let labels = || {
            let mut all = Vec::with_capacity(SCHEMES.len() * STATUSES.len());
            for scheme in SCHEMES {
                for (_, status) in STATUSES {
                    all.push(vec![
                        Label::from_static_parts("reason", reason.code()),
                        Label::from_static_parts("scheme", scheme),
                        Label::from_static_parts("status", status),
                    ]);
                }
            }
            all
        };
        let keys = keys_of(&per_reason[reason as usize], FAILURES, labels);
        &keys[scheme * STATUSES.len() + status]
    }

    pub(crate) fn failure(reason: Reason, scheme: &'static str, status: StatusCode) {
        let code = status.as_u16();
        match (
            scheme_index(scheme),
            STATUSES.iter().position(|(c, _)| *c == code),
        ) {
            (Some(s), Some(t)) => add(failure_key(reason, s, t), 1),
            _ => counter!(FAILURES, "reason" => reason.code(), "scheme" => scheme, "status" => status_label(status))
                .increment(1),
        }
    }

    pub(crate) fn would_refuse(reason: Reason) {
        static TABLE: Keys = OnceLock::new();
        add(reason_key(&TABLE, WOULD_REFUSE, reason), 1);
    }

    pub(crate) fn success(scheme: &'static str) {
        static TABLE: Keys = OnceLock::new();
        let Some(s) = scheme_index(scheme) else {
            counter!(SUCCESSES, "scheme" => scheme).increment(1);
            return;
        };
        add(&success_keys(&TABLE)[s], 1);
    }

    /// The [`SUCCESSES`] keys, one per scheme of [`SCHEMES`].
    pub(super) fn success_keys(table: &'static Keys) -> &'static [Key] {
        let labels = || {
            SCHEMES
                .iter()
                .map(|s| vec![Label::from_static_parts("scheme", s)])
                .collect()
        };
        keys_of(table, SUCCESSES, labels)
    }

    pub(crate) fn upstream_correction(reason: Reason, corrected: bool) {
        let action = if corrected { "corrected" } else { "kept" };
        counter!(UPSTREAM_CORRECTIONS, "reason" => reason.code(), "action" => action).increment(1);
    }

    pub(crate) fn key_fetch(source: &str, result: &'static str) {
        counter!(KEY_FETCHES, "source" => source.to_owned(), "result" => result).increment(1);
    }

    pub(crate) fn shared_key_set(source: &str, op: &'static str, result: &'static str) {
        counter!(SHARED_KEY_SETS, "source" => source.to_owned(), "op" => op, "result" => result)
            .increment(1);
    }

    pub(crate) fn token_cache_lookup(scheme: &'static str, hit: bool) {
        static TABLE: Keys = OnceLock::new();
        let result = if hit { "hit" } else { "miss" };
        let Some(s) = scheme_index(scheme) else {
            counter!(TOKEN_CACHE_LOOKUPS, "scheme" => scheme, "result" => result).increment(1);
            return;
        };
        let labels = || {
            let mut all = Vec::with_capacity(SCHEMES.len() * 2);
            for scheme in SCHEMES {
                for result in ["hit", "miss"] {
                    all.push(vec![
                        Label::from_static_parts("scheme", scheme),
                        Label::from_static_parts("result", result),
                    ]);
                }
            }
            all
        };
        let keys = keys_of(&TABLE, TOKEN_CACHE_LOOKUPS, labels);
        add(&keys[s * 2 + usize::from(!hit)], 1);
    }

    pub(crate) fn token_cache_evictions(scheme: &'static str, n: u64) {
        counter!(TOKEN_CACHE_EVICTIONS, "scheme" => scheme).increment(n);
    }

    pub(crate) fn log_suppressed(reason: Reason) {
        static TABLE: Keys = OnceLock::new();
        add(reason_key(&TABLE, LOG_SUPPRESSED, reason), 1);
    }

    pub(crate) fn verification(alg: Algorithm, took: Duration) {
        histogram!(VERIFICATION_DURATION, "family" => family(alg)).record(took.as_secs_f64());
    }

    pub(crate) fn describe() {
        describe_counter!(
            FAILURES,
            Unit::Count,
            "Authentication failures the layer answered or diagnosed, by reason code, scheme the client used and status answered"
        );
        describe_counter!(
            WOULD_REFUSE,
            Unit::Count,
            "Requests a report-only layer would have refused and let through anonymously, by reason code"
        );
        describe_counter!(SUCCESSES, Unit::Count, "Requests authenticated, by scheme");
        describe_counter!(
            UPSTREAM_CORRECTIONS,
            Unit::Count,
            "401/403 answers of the wrapped service that break the contract, corrected or kept"
        );
        describe_counter!(
            KEY_FETCHES,
            Unit::Count,
            "Key set fetches, by key source and result (ok or the error kind)"
        );
        describe_counter!(
            SHARED_KEY_SETS,
            Unit::Count,
            "Shared key set store operations, by key source, op (load or save) and result (ok, absent, too_old, unusable, error)"
        );
        describe_counter!(
            TOKEN_CACHE_LOOKUPS,
            Unit::Count,
            "Verified-token cache lookups, by scheme and result (hit or miss)"
        );
        describe_counter!(
            TOKEN_CACHE_EVICTIONS,
            Unit::Count,
            "Verified-token cache entries evicted to stay within the cache's bounds"
        );
        describe_counter!(
            LOG_SUPPRESSED,
            Unit::Count,
            "Failure events flood control held back from the log, by reason code"
        );
        describe_histogram!(
            VERIFICATION_DURATION,
            Unit::Seconds,
            "Time of one signature check (a token's or a DPoP proof's), by algorithm family"
        );
    }

    /// Status codes as label values, without formatting the usual ones on every request.
    /// Any other comes from the layer or the wrapped service, never from the client, and
    /// there are at most 900 of them.
    fn status_label(status: StatusCode) -> metrics::SharedString {
        match status.as_u16() {
            400 => "400".into(),
            401 => "401".into(),
            403 => "403".into(),
            503 => "503".into(),
            other => other.to_string().into(),
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod record {
    use super::*;

    pub(crate) fn failure(_: Reason, _: &'static str, _: StatusCode) {}
    pub(crate) fn would_refuse(_: Reason) {}
    pub(crate) fn success(_: &'static str) {}
    pub(crate) fn upstream_correction(_: Reason, _: bool) {}
    pub(crate) fn key_fetch(_: &str, _: &'static str) {}
    pub(crate) fn shared_key_set(_: &str, _: &'static str, _: &'static str) {}
    pub(crate) fn token_cache_lookup(_: &'static str, _: bool) {}
    pub(crate) fn token_cache_evictions(_: &'static str, _: u64) {}
    pub(crate) fn log_suppressed(_: Reason) {}
    pub(crate) fn verification(_: Algorithm, _: Duration) {}
    pub(crate) fn describe() {}
}

pub(crate) use record::*;

/// Registers the description and unit of every metric of this crate with the installed
/// recorder (the Prometheus exporter prints them as `# HELP` and `# TYPE` lines).
///
/// Wrapping a service with [`AuthDiagnostics`](crate::AuthDiagnostics) does this; call it
/// yourself when the recorder is installed after the layers are built. A no-op without the
/// `metrics` feature.
pub fn describe_metrics() {
    describe();
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::record::*;
    use super::*;
    use metrics::Label;

    /// The keys built once are those `counter!` builds on every call.
    #[test]
    fn keys_built_once_are_the_macro_keys() {
        use metrics::Key;
        let statuses = [400u16, 401, 403, 503];
        let key = |name: &'static str, labels: Vec<Label>| Key::from_parts(name, labels);
        static REASONS: std::sync::OnceLock<Box<[Key]>> = std::sync::OnceLock::new();
        for (i, &reason) in Reason::ALL.iter().enumerate() {
            assert_eq!(reason as usize, i);
            let want = key(LOG_SUPPRESSED, vec![Label::new("reason", reason.code())]);
            assert_eq!(reason_key(&REASONS, LOG_SUPPRESSED, reason), &want);
            for (s, scheme) in SCHEMES.iter().enumerate() {
                for (t, status) in statuses.iter().enumerate() {
                    let want = vec![
                        Label::new("reason", reason.code()),
                        Label::new("scheme", *scheme),
                        Label::new("status", status.to_string()),
                    ];
                    let got = failure_key(reason, s, t);
                    assert_eq!(got, &key(FAILURES, want));
                    assert_eq!(
                        got.get_hash(),
                        key(FAILURES, got.labels().cloned().collect()).get_hash()
                    );
                }
            }
        }
        static SUCCESS: std::sync::OnceLock<Box<[Key]>> = std::sync::OnceLock::new();
        for (s, scheme) in SCHEMES.iter().enumerate() {
            let want = key(SUCCESSES, vec![Label::new("scheme", *scheme)]);
            assert_eq!(&success_keys(&SUCCESS)[s], &want);
        }
        let every = [
            Scheme::Basic,
            Scheme::Bearer,
            Scheme::ApiKey,
            Scheme::Cookie,
            Scheme::Dpop,
            Scheme::ProxyAssertion,
        ];
        for scheme in every {
            assert!(SCHEMES.contains(&scheme_label(scheme)));
        }
        for word in [None, Some("Negotiate")] {
            assert!(SCHEMES.contains(&received_label(word)));
        }
    }
}
