//! What an application sees of each outcome besides the log: the metrics series (README,
//! "Metrics"), the `on_failure` / `on_success` hooks, and the fields the layer records on
//! the request span.
//!
//! Every test runs on a current-thread runtime of its own with a `DebuggingRecorder` local
//! to its thread ([`run`]), so tests running in parallel never see each other's series. A
//! snapshot drains the recorder: [`Metrics::take`] reads what changed since the previous
//! one.
#![cfg(feature = "metrics")]

mod common;
use common::*;

use auth_diagnostics::basic::{BasicAuthenticator, BasicCredentials};
use auth_diagnostics::failure::AuthFailure;
use auth_diagnostics::jwt::{JwtAuthenticator, TokenCache};
use auth_diagnostics::keys::KeySource;
use auth_diagnostics::Principal;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::get as route_get;
use axum::Router;
use http::header::WWW_AUTHENTICATE;
use http::request::Parts;
use http::{HeaderMap, Request};
use http_body_util::BodyExt;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use metrics::Unit;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;
use tracing::field::{Empty, Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Instrument, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

// The series, as the README names them.
const FAILURES: &str = "auth_diagnostics_failures_total";
const SUCCESSES: &str = "auth_diagnostics_successes_total";
const CORRECTIONS: &str = "auth_diagnostics_upstream_corrections_total";
const KEY_FETCHES: &str = "auth_diagnostics_key_fetches_total";
const SHARED_KEY_SETS: &str = "auth_diagnostics_shared_key_sets_total";
const CACHE_LOOKUPS: &str = "auth_diagnostics_token_cache_lookups_total";
const CACHE_EVICTIONS: &str = "auth_diagnostics_token_cache_evictions_total";
const LOG_SUPPRESSED: &str = "auth_diagnostics_log_suppressed_total";
const VERIFICATION: &str = "auth_diagnostics_verification_duration_seconds";

/// The issuer of the tokens signed with the RSA test key.
const ISS: &str = "https://idp.test";

// =======================================================================================
// Reading the recorder
// =======================================================================================

/// A series' labels, by name.
type Labels = BTreeMap<String, String>;

/// A series: its name and labels.
type Series = (String, Labels);

/// `[("reason", "token_expired"), …]` as a map: a series' labels, a span's fields.
fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The only failure series that moved: `reason`, `scheme`, `status`, counted once.
fn one_failure(reason: &str, scheme: &str, status: &str) -> BTreeMap<Labels, u64> {
    let series = labels(&[("reason", reason), ("scheme", scheme), ("status", status)]);
    BTreeMap::from([(series, 1)])
}

/// The recorder of one test.
struct Metrics(Snapshotter);

impl Metrics {
    /// Every series registered so far, with what it gained since the previous call.
    fn take(&self) -> Taken {
        let mut taken = Taken::default();
        for (key, unit, description, value) in self.0.snapshot().into_vec() {
            let key = key.key();
            let description = description.map(|d| d.into_owned());
            taken
                .described
                .insert(key.name().to_owned(), (unit, description));
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            let series = (key.name().to_owned(), labels);
            match value {
                DebugValue::Counter(n) => {
                    taken.counters.insert(series, n);
                }
                DebugValue::Histogram(samples) => {
                    let samples = samples.into_iter().map(|s| s.into_inner()).collect();
                    taken.histograms.insert(series, samples);
                }
                DebugValue::Gauge(_) => panic!("the crate records no gauge: {series:?}"),
            }
        }
        taken
    }
}

/// One snapshot: counter increments (zero for a series registered earlier that did not
/// move) and histogram samples since the previous snapshot, and the unit and description
/// of each metric name.
#[derive(Debug, Default)]
struct Taken {
    counters: BTreeMap<Series, u64>,
    histograms: BTreeMap<Series, Vec<f64>>,
    described: BTreeMap<String, (Option<Unit>, Option<String>)>,
}

impl Taken {
    /// The increment of counter `name` with exactly `labels` (0 when it has none).
    fn counter(&self, name: &str, pairs: &[(&str, &str)]) -> u64 {
        let series = (name.to_owned(), labels(pairs));
        self.counters.get(&series).copied().unwrap_or(0)
    }

    /// The series of counter `name` that moved, with their increments.
    fn counters(&self, name: &str) -> BTreeMap<Labels, u64> {
        self.counters
            .iter()
            .filter(|((n, _), v)| n == name && **v > 0)
            .map(|((_, l), v)| (l.clone(), *v))
            .collect()
    }

    /// The series of histogram `name` that got samples, with the samples.
    fn samples(&self, name: &str) -> BTreeMap<Labels, Vec<f64>> {
        self.histograms
            .iter()
            .filter(|((n, _), v)| n == name && !v.is_empty())
            .map(|((_, l), v)| (l.clone(), v.clone()))
            .collect()
    }

    /// Every series registered so far, counters and histograms.
    fn registered(&self) -> BTreeSet<Series> {
        self.counters
            .keys()
            .chain(self.histograms.keys())
            .cloned()
            .collect()
    }
}

/// Runs `test` on a current-thread runtime with a debugging recorder that only this
/// thread, and so only this test, records to.
fn run<F, Fut>(test: F)
where
    F: FnOnce(Metrics) -> Fut,
    Fut: Future<Output = ()>,
{
    let recorder = DebuggingRecorder::new();
    let m = Metrics(recorder.snapshotter());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || rt.block_on(test(m)));
}

// =======================================================================================
// Apps, requests and hooks
// =======================================================================================

/// Every path answers the principal's id, behind `layer`.
fn any_path(layer: AuthDiagnostics) -> Router {
    Router::new()
        .fallback(|p: Principal| async move { p.id().unwrap_or_default().to_owned() })
        .layer(layer)
}

/// The answer to `req`, without capturing the log (for floods, and for tests that
/// capture events or spans themselves).
async fn answer(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let response = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, body)
}

/// The status of the answer to `req` (see [`answer`]).
async fn status(app: &Router, req: Request<Body>) -> StatusCode {
    answer(app, req).await.0
}

/// A token of the default test claims with `edits`, for `Authorization`.
fn bearer_of(edits: Value) -> String {
    bearer(&hs256(&claims(edits)))
}

/// What an `on_failure` hook heard of one failure.
#[derive(Debug, Clone)]
struct HeardFailure {
    reason: Reason,
    status: StatusCode,
    scheme: &'static str,
    path: String,
    user: Option<String>,
    fingerprint: Option<String>,
}

/// What an `on_success` hook heard of one principal.
#[derive(Debug, Clone, PartialEq)]
struct HeardSuccess {
    id: Option<String>,
    path: String,
}

/// What the hooks of a layer heard, in order.
#[derive(Clone, Default)]
struct Heard {
    failures: Arc<Mutex<Vec<HeardFailure>>>,
    successes: Arc<Mutex<Vec<HeardSuccess>>>,
}

impl Heard {
    /// `layer` with both hooks reporting here.
    fn on(&self, layer: AuthDiagnostics) -> AuthDiagnostics {
        let (failures, successes) = (self.failures.clone(), self.successes.clone());
        layer
            .on_failure(move |f: &AuthFailure, request: &Parts| {
                failures.lock().unwrap().push(HeardFailure {
                    reason: f.reason(),
                    status: f.status(),
                    scheme: f.scheme_received(),
                    path: request.uri.path().to_owned(),
                    user: f.claimed_user().map(str::to_owned),
                    fingerprint: f.credential_fingerprint().map(str::to_owned),
                });
            })
            .on_success(move |p: &Principal, request: &Parts| {
                successes.lock().unwrap().push(HeardSuccess {
                    id: p.id().map(str::to_owned),
                    path: request.uri.path().to_owned(),
                });
            })
    }

    fn failures(&self) -> Vec<HeardFailure> {
        self.failures.lock().unwrap().clone()
    }

    fn successes(&self) -> Vec<HeardSuccess> {
        self.successes.lock().unwrap().clone()
    }
}

// =======================================================================================
// Descriptions
// =======================================================================================

#[test]
fn wrapping_a_service_describes_every_series_with_its_unit() {
    run(|m| async move {
        let _svc = tower::Layer::layer(&AuthDiagnostics::new(), Router::<()>::new());
        // The recorder lists a described name once a series of it exists.
        let counters = [
            FAILURES,
            SUCCESSES,
            CORRECTIONS,
            KEY_FETCHES,
            SHARED_KEY_SETS,
            CACHE_LOOKUPS,
            CACHE_EVICTIONS,
            LOG_SUPPRESSED,
        ];
        for name in counters {
            metrics::counter!(name).increment(1);
        }
        metrics::histogram!(VERIFICATION).record(0.001);
        let described = m.take().described;
        assert_eq!(described.len(), 9, "{described:#?}");
        for (name, (unit, description)) in &described {
            let want = if name == VERIFICATION {
                Unit::Seconds
            } else {
                Unit::Count
            };
            assert_eq!(*unit, Some(want), "{name}");
            let description = description.as_deref().unwrap_or_default();
            assert!(description.len() > 20, "{name}: {description:?}");
        }
    });
}

// =======================================================================================
// Failures: one series per (reason, scheme, status)
// =======================================================================================

#[test]
fn every_reason_counts_once_with_the_answered_status_and_the_scheme_spoken() {
    let token = bearer(&hs256(&good_claims()));
    for &reason in Reason::ALL {
        // Anonymous to a layer that only watches; then a valid token the layer
        // authenticates, refused by the handler all the same.
        for (scheme, authorization) in [("none", None), ("bearer", Some(token.clone()))] {
            run(|m| async move {
                let heard = Heard::default();
                let layer = match authorization {
                    Some(_) => heard.on(AuthDiagnostics::new().bearer(jwt())),
                    None => heard.on(AuthDiagnostics::new()),
                };
                let app = Router::new()
                    .route(
                        "/refuse",
                        route_get(move || async move { AuthFailure::new(reason) }),
                    )
                    .layer(layer);
                let headers: Vec<(&str, &str)> = authorization
                    .iter()
                    .map(|a| ("authorization", a.as_str()))
                    .collect();
                let out = send(app, get("/refuse", &headers)).await;
                let code = reason.code();
                assert!(
                    out.status.is_client_error() || out.status.is_server_error(),
                    "{code}"
                );
                let t = m.take();
                assert_eq!(
                    t.counters(FAILURES),
                    one_failure(code, scheme, out.status.as_str()),
                    "{code}, scheme {scheme}"
                );
                let authenticated = u64::from(authorization.is_some());
                assert_eq!(
                    t.counter(SUCCESSES, &[("scheme", "bearer")]),
                    authenticated,
                    "{code}"
                );
                // The hook heard the same facts the series carries.
                let heard: Vec<_> = heard
                    .failures()
                    .into_iter()
                    .map(|f| (f.reason, f.status, f.scheme))
                    .collect();
                assert_eq!(heard, [(reason, out.status, scheme)], "{code}");
            });
        }
    }
}

#[test]
fn failures_of_each_scheme_carry_the_scheme_the_client_spoke() {
    let production = || layer(DetailMode::Production);
    let valid = hs256(&good_claims());
    let cases = [
        (
            "no credentials",
            bearer_app(production()),
            get("/me", &[]),
            ["credentials_missing", "none", "401"],
        ),
        (
            "Basic to a Bearer route",
            bearer_app(production()),
            get("/me", &[("authorization", &basic("alice", ALICE_PW))]),
            ["scheme_not_accepted", "basic", "401"],
        ),
        (
            "Negotiate to a Bearer route",
            bearer_app(production()),
            get("/me", &[("authorization", "Negotiate xyz")]),
            ["scheme_not_accepted", "other", "401"],
        ),
        (
            "a token in the query",
            bearer_app(production()),
            get(&format!("/me?access_token={valid}"), &[]),
            ["credentials_wrong_location", "bearer", "401"],
        ),
        (
            "an API key header to a Bearer route",
            bearer_app(production()),
            get("/me", &[("x-api-key", KEY_GOOD)]),
            ["credentials_wrong_location", "api_key", "401"],
        ),
        (
            "a bare JWT without its scheme word",
            bearer_app(production()),
            get("/me", &[("authorization", &valid)]),
            ["scheme_prefix_missing", "other", "401"],
        ),
        (
            "DPoP to a Bearer route",
            bearer_app(production()),
            get("/me", &[("authorization", &format!("DPoP {valid}"))]),
            ["scheme_not_accepted", "dpop", "401"],
        ),
        (
            "expired JWT",
            bearer_app(production()),
            get(
                "/me",
                &[("authorization", &bearer_of(json!({ "exp": now() - 3600 })))],
            ),
            ["token_expired", "bearer", "401"],
        ),
        (
            "valid JWT without the route's scope",
            bearer_app(production()),
            get("/admin", &[("authorization", &bearer(&valid))]),
            ["insufficient_scope", "bearer", "403"],
        ),
        (
            "bad password",
            basic_app(DetailMode::Production),
            get("/r", &[("authorization", &basic("alice", "wrong"))]),
            ["basic_password_mismatch", "basic", "401"],
        ),
        (
            "password store down",
            scheme_app(production().basic(BasicAuthenticator::new(store_down::<BasicCredentials>))),
            get("/r", &[("authorization", &basic("alice", ALICE_PW))]),
            ["authenticator_unavailable", "basic", "503"],
        ),
        (
            "unknown API key",
            key_app(DetailMode::Production),
            get("/r", &[("x-api-key", KEY_UNKNOWN)]),
            ["api_key_unknown", "api_key", "401"],
        ),
        (
            "expired session cookie",
            session_app(DetailMode::Production),
            get("/r", &[("cookie", &format!("sid={SESS_EXPIRED}"))]),
            ["session_expired", "cookie", "401"],
        ),
    ];
    for (name, app, req, [reason, scheme, status]) in cases {
        run(|m| async move {
            let out = send(app, req).await;
            assert_eq!(out.status.as_str(), status, "{name}: {}", out.text());
            assert_eq!(
                m.take().counters(FAILURES),
                one_failure(reason, scheme, status),
                "{name}"
            );
        });
    }
}

/// A value no other request of the test carries: 16 hex digits after `zq` (every
/// `RandomState` hashes with new keys).
fn unique_word() -> String {
    format!("zq{:016x}", std::hash::RandomState::new().hash_one(0u8))
}

/// `n` requests of each kind whose text an attacker chooses: issuer, `kid`, path, scheme
/// word, user name, each value new. Returns them with every value chosen.
fn hostile_requests(n: usize) -> (Vec<Request<Body>>, Vec<String>) {
    let wrong_key = EncodingKey::from_secret(b"not-the-test-secret");
    let mut requests = Vec::new();
    let mut chosen = Vec::new();
    for _ in 0..n {
        let [iss, kid, path, word, user] = std::array::from_fn(|_| unique_word());
        let path = format!("/{path}");
        let foreign = bearer_of(json!({ "iss": format!("https://{iss}.example") }));
        let header = Header {
            kid: Some(kid.clone()),
            ..Header::default()
        };
        let with_kid = bearer(&sign(&header, &good_claims(), &wrong_key));
        let spoken = format!("{word} abcdef");
        let user_pw = basic(&user, "pw");
        for authorization in [
            Some(&foreign),
            Some(&with_kid),
            None,
            Some(&spoken),
            Some(&user_pw),
        ] {
            let headers: Vec<(&str, &str)> = authorization
                .iter()
                .map(|a| ("authorization", a.as_str()))
                .collect();
            requests.push(get(&path, &headers));
        }
        chosen.extend([iss, kid, path, word, user]);
    }
    (requests, chosen)
}

#[test]
fn a_flood_of_attacker_chosen_values_creates_no_series() {
    const FLOOD: usize = 500;
    run(|m| async move {
        let app = any_path(
            AuthDiagnostics::new()
                .bearer(jwt())
                .basic(BasicAuthenticator::new(check_password)),
        );
        // Enough of each kind that flood control holds some back.
        for req in hostile_requests(20).0 {
            assert!(status(&app, req).await.is_client_error());
        }
        let before = m.take().registered();
        let (requests, chosen) = hostile_requests(FLOOD);
        for req in requests {
            assert!(status(&app, req).await.is_client_error());
        }
        let t = m.take();
        assert_eq!(t.registered(), before, "the flood registered new series");
        assert!(before.len() <= 16, "{before:#?}");
        // One series per kind of request, whatever its values.
        let failures = t.counters(FAILURES);
        assert_eq!(failures.len(), 5, "{failures:#?}");
        assert!(
            failures.values().all(|&n| n == FLOOD as u64),
            "{failures:#?}"
        );
        for (name, labels) in &before {
            for value in labels.values() {
                for c in &chosen {
                    assert!(!value.contains(c.as_str()), "{name} has {c} in {labels:?}");
                }
            }
        }
    });
}

// =======================================================================================
// Successes
// =======================================================================================

#[test]
fn each_authenticated_request_counts_for_its_scheme() {
    run(|m| async move {
        let valid = bearer_of(json!({}));
        let password = basic("alice", ALICE_PW);
        let cookie = format!("sid={SESS_VALID}");
        // (app, path, the credential's header, how many requests)
        let sent = [
            (
                bearer_app(AuthDiagnostics::new()),
                "/me",
                ("authorization", valid.as_str()),
                3,
            ),
            (
                basic_app(DetailMode::Production),
                "/r",
                ("authorization", password.as_str()),
                2,
            ),
            (
                key_app(DetailMode::Production),
                "/r",
                ("x-api-key", KEY_GOOD),
                1,
            ),
            (
                session_app(DetailMode::Production),
                "/r",
                ("cookie", cookie.as_str()),
                4,
            ),
        ];
        for (app, path, (name, value), times) in sent {
            for _ in 0..times {
                send(app.clone(), get(path, &[(name, value)])).await.ok();
            }
        }
        let t = m.take();
        let by_scheme = |s: &str| labels(&[("scheme", s)]);
        assert_eq!(
            t.counters(SUCCESSES),
            BTreeMap::from([
                (by_scheme("api_key"), 1),
                (by_scheme("basic"), 2),
                (by_scheme("bearer"), 3),
                (by_scheme("cookie"), 4),
            ])
        );
        assert_eq!(t.counters(FAILURES), BTreeMap::new());
    });
}

// =======================================================================================
// Hooks
// =======================================================================================

#[test]
fn hooks_and_counters_see_every_failure_flood_control_keeps_from_the_log() {
    const SENT: usize = 200;
    run(|m| async move {
        let (capture, _guard) = Capture::install();
        let heard = Heard::default();
        // The default log rate: 10 in 10 s, then one a second.
        let app = any_path(heard.on(AuthDiagnostics::new().bearer(jwt())));
        let expired = bearer_of(json!({ "exp": now() - 3600 }));
        for i in 0..SENT {
            let req = get(&format!("/flood/{i}"), &[("authorization", &expired)]);
            assert_eq!(status(&app, req).await, 401);
        }
        let events = capture.events();
        let logged = events
            .iter()
            .filter(|e| e.get("suppressed").is_none())
            .count();
        assert!((10..SENT).contains(&logged), "{logged} of {SENT} logged");

        let t = m.take();
        assert_eq!(
            t.counters(FAILURES),
            BTreeMap::from([(
                labels(&[
                    ("reason", "token_expired"),
                    ("scheme", "bearer"),
                    ("status", "401")
                ]),
                SENT as u64
            )])
        );
        assert_eq!(
            t.counters(LOG_SUPPRESSED),
            BTreeMap::from([(
                labels(&[("reason", "token_expired")]),
                (SENT - logged) as u64
            )])
        );

        let failures = heard.failures();
        assert_eq!(failures.len(), SENT);
        for (i, f) in failures.iter().enumerate() {
            assert_eq!(
                (f.reason, f.status, f.scheme, f.path.as_str()),
                (
                    Reason::TokenExpired,
                    StatusCode::UNAUTHORIZED,
                    "bearer",
                    format!("/flood/{i}").as_str()
                )
            );
            assert_eq!(
                f.fingerprint, failures[0].fingerprint,
                "one token, one fingerprint"
            );
        }
        let fingerprint = failures[0].fingerprint.as_deref().expect("a fingerprint");
        assert!(
            fingerprint.len() == 12 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit()),
            "{fingerprint}"
        );
        assert!(heard.successes().is_empty());
    });
}

#[test]
fn hooks_hear_the_claimed_user_and_every_principal() {
    run(|m| async move {
        let heard = Heard::default();
        let app = scheme_app(
            heard.on(AuthDiagnostics::new()
                .bearer(jwt())
                .basic(BasicAuthenticator::new(check_password))),
        );
        let wrong = get("/r", &[("authorization", &basic("alice", "wrong"))]);
        assert_eq!(status(&app, wrong).await, 401);
        let f = &heard.failures()[0];
        assert_eq!(
            (
                f.reason,
                f.status,
                f.scheme,
                f.user.as_deref(),
                f.path.as_str()
            ),
            (
                Reason::BasicPasswordMismatch,
                StatusCode::UNAUTHORIZED,
                "basic",
                Some("alice"),
                "/r"
            )
        );
        assert!(
            f.fingerprint.as_ref().is_some_and(|fp| fp.len() == 12),
            "{f:?}"
        );

        // Verified on the spot (a JWT with a static key) and by the application (Basic).
        let token = bearer_of(json!({ "sub": "bob" }));
        assert_eq!(
            status(&app, get("/r", &[("authorization", &token)])).await,
            200
        );
        let password = basic("alice", ALICE_PW);
        assert_eq!(
            status(&app, get("/cached", &[("authorization", &password)])).await,
            200
        );
        assert_eq!(
            heard.successes(),
            [
                HeardSuccess {
                    id: Some("bob".into()),
                    path: "/r".into()
                },
                HeardSuccess {
                    id: Some("alice".into()),
                    path: "/cached".into()
                },
            ]
        );
        assert_eq!(heard.failures().len(), 1);
        let t = m.take();
        assert_eq!(t.counter(SUCCESSES, &[("scheme", "bearer")]), 1);
        assert_eq!(t.counter(SUCCESSES, &[("scheme", "basic")]), 1);
    });
}

#[test]
fn hooks_do_not_change_the_answer() {
    run(|_| async move {
        let heard = Heard::default();
        let with = bearer_app(heard.on(layer(DetailMode::Verbose)));
        let without = bearer_app(layer(DetailMode::Verbose));
        let expired = bearer_of(json!({ "exp": now() - 3600 }));
        let valid = bearer_of(json!({}));
        let requests = [
            ("/me", None),
            ("/me", Some(&expired)),
            ("/me", Some(&valid)),
            ("/admin", Some(&valid)),
        ];
        for (path, authorization) in requests {
            // The same request id, so that bodies may be equal byte for byte.
            let mut headers = vec![("x-request-id", "metrics-test-1")];
            headers.extend(authorization.map(|a| ("authorization", a.as_str())));
            let hooked = answer(&with, get(path, &headers)).await;
            let plain = answer(&without, get(path, &headers)).await;
            assert_eq!(hooked, plain, "{path} {authorization:?}");
        }
        assert_eq!((heard.failures().len(), heard.successes().len()), (3, 2));
    });
}

// =======================================================================================
// The wrapped service's own refusals
// =======================================================================================

/// A wrapped service that answers every request with `status` and, if any, `challenge`.
fn refusing(status: StatusCode, challenge: Option<&'static str>) -> Router {
    Router::new().fallback(move || async move {
        let mut response = status.into_response();
        if let Some(c) = challenge {
            let value = HeaderValue::from_static(c);
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        response
    })
}

#[test]
fn upstream_refusals_count_as_corrected_or_kept() {
    let bearer_layer = || AuthDiagnostics::new().bearer(jwt());
    let valid = bearer_of(json!({}));
    let refused = Some(r#"Bearer error="invalid_token""#);
    // (case, layer, the service's status and challenge, a credential, the correction, the
    // failure series: reason, scheme, status answered)
    let cases = [
        (
            "bare 401, enforce",
            AuthDiagnostics::new(),
            (StatusCode::UNAUTHORIZED, None),
            None,
            Some("corrected"),
            ["upstream_challenge_missing", "none", "401"],
        ),
        (
            "bare 401, observe",
            AuthDiagnostics::new().observe(),
            (StatusCode::UNAUTHORIZED, None),
            None,
            Some("kept"),
            ["upstream_challenge_missing", "none", "401"],
        ),
        (
            "403 to an anonymous request",
            AuthDiagnostics::new(),
            (StatusCode::FORBIDDEN, None),
            None,
            Some("kept"),
            ["upstream_forbidden_without_credentials", "none", "403"],
        ),
        (
            "403 to an anonymous request, opted in",
            AuthDiagnostics::new().correct_forbidden_without_credentials(),
            (StatusCode::FORBIDDEN, None),
            None,
            Some("corrected"),
            ["upstream_forbidden_without_credentials", "none", "401"],
        ),
        (
            "401 to an authenticated request",
            bearer_layer(),
            (StatusCode::UNAUTHORIZED, None),
            Some(&valid),
            Some("corrected"),
            [
                "upstream_unauthorized_after_authentication",
                "bearer",
                "403",
            ],
        ),
        (
            "401 refusing the token, with an error",
            bearer_layer(),
            (StatusCode::UNAUTHORIZED, refused),
            Some(&valid),
            None,
            ["upstream_token_refused", "bearer", "401"],
        ),
    ];
    for (name, layer, (upstream, challenge), authorization, action, [reason, scheme, status]) in
        cases
    {
        run(|m| async move {
            let app = refusing(upstream, challenge).layer(layer);
            let headers: Vec<(&str, &str)> = authorization
                .iter()
                .map(|a| ("authorization", a.as_str()))
                .collect();
            let (got, headers, _) = answer(&app, get("/resource", &headers)).await;
            assert_eq!(got.as_str(), status, "{name}");
            let challenged = headers.contains_key(WWW_AUTHENTICATE);
            assert_eq!(challenged, got == 401 && action != Some("kept"), "{name}");
            let t = m.take();
            let corrections = action
                .map(|a| (labels(&[("action", a), ("reason", reason)]), 1))
                .into_iter()
                .collect::<BTreeMap<_, _>>();
            assert_eq!(t.counters(CORRECTIONS), corrections, "{name}");
            assert_eq!(
                t.counters(FAILURES),
                one_failure(reason, scheme, status),
                "{name}"
            );
        });
    }
}

// =======================================================================================
// The verified-token cache and signature checks
// =======================================================================================

#[test]
fn a_repeated_token_is_two_misses_then_a_hit_and_two_signature_checks() {
    run(|m| async move {
        let app = bearer_app(AuthDiagnostics::new());
        let token = bearer_of(json!({}));
        let me = || get("/me", &[("authorization", &token)]);
        assert_eq!(status(&app, me()).await, 200);
        let first = m.take();
        let lookup = |result: &str| labels(&[("result", result), ("scheme", "bearer")]);
        assert_eq!(
            first.counters(CACHE_LOOKUPS),
            BTreeMap::from([(lookup("miss"), 1)])
        );
        let samples = first.samples(VERIFICATION);
        assert_eq!(
            samples.keys().collect::<Vec<_>>(),
            [&labels(&[("family", "hmac")])]
        );
        let took = &samples[&labels(&[("family", "hmac")])];
        assert!(took.len() == 1 && (0.0..1.0).contains(&took[0]), "{took:?}");

        // The second time it is verified again, and cached.
        assert_eq!(status(&app, me()).await, 200);
        let again = m.take();
        assert_eq!(
            again.counters(CACHE_LOOKUPS),
            BTreeMap::from([(lookup("miss"), 1)])
        );
        assert_eq!(again.samples(VERIFICATION).len(), 1);

        assert_eq!(status(&app, me()).await, 200);
        let second = m.take();
        assert_eq!(
            second.counters(CACHE_LOOKUPS),
            BTreeMap::from([(lookup("hit"), 1)])
        );
        assert_eq!(
            second.samples(VERIFICATION),
            BTreeMap::new(),
            "a hit checks no signature"
        );
    });
}

#[test]
fn evictions_are_counted_as_the_cache_counts_them() {
    run(|m| async move {
        let layer = AuthDiagnostics::new()
            .token_cache(TokenCache::new().max_entries(16))
            .bearer(jwt());
        let app = any_path(layer.clone());
        // Each token twice: the second time caches it.
        for i in 0..200 {
            let token = bearer_of(json!({ "jti": format!("token-{i}") }));
            for _ in 0..2 {
                assert_eq!(
                    status(&app, get("/", &[("authorization", &token)])).await,
                    200
                );
            }
        }
        let evicted = layer.token_cache_stats().unwrap().evictions;
        assert!(evicted > 0, "200 tokens in 16 entries evict some");
        let t = m.take();
        assert_eq!(
            t.counters(CACHE_EVICTIONS),
            BTreeMap::from([(labels(&[("scheme", "bearer")]), evicted)])
        );
        assert_eq!(
            t.counter(CACHE_LOOKUPS, &[("result", "miss"), ("scheme", "bearer")]),
            400
        );
    });
}

// =======================================================================================
// Key fetches
// =======================================================================================

/// The RSA test key.
fn rsa_key() -> EncodingKey {
    let path = format!("{}/tests/keys/rsa_private.pem", env!("CARGO_MANIFEST_DIR"));
    EncodingKey::from_rsa_pem(&std::fs::read(path).unwrap()).unwrap()
}

/// An RS256 token of [`ISS`] naming key `r1`.
fn rs256_token() -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("r1".into());
    sign(&header, &claims(json!({ "iss": ISS })), &rsa_key())
}

/// A JWK set server on a free loopback port that answers `status` with the RSA test key as
/// `r1`; its URL of the set.
async fn key_server(status: StatusCode) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&rsa_key(), Algorithm::RS256).unwrap())
            .unwrap();
    jwk["kid"] = json!("r1");
    let set = json!({ "keys": [jwk] });
    let app = Router::new().route(
        "/jwks",
        route_get(move || async move { (status, axum::Json(set)) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[test]
fn key_fetches_count_by_configured_source_and_result() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/jwks", listener.local_addr().unwrap())
    };
    let cases = [
        (Some(StatusCode::OK), "ok", 200),
        (Some(StatusCode::INTERNAL_SERVER_ERROR), "status", 503),
        (None, "connect", 503),
    ];
    for (served, result, answered) in cases {
        let closed = closed.clone();
        run(|m| async move {
            let url = match served {
                Some(status) => key_server(status).await,
                None => closed,
            };
            // The label is the configured URL without its query.
            let source = KeySource::jwks(format!("{url}?tenant=t1"));
            let jwt = JwtAuthenticator::from_source(source)
                .issuer(ISS)
                .audience(AUDIENCE);
            let layer = AuthDiagnostics::new().bearer(jwt);
            if answered == 200 {
                tokio::time::timeout(Duration::from_secs(5), layer.ready())
                    .await
                    .expect("keys within 5 s");
            }
            let app = any_path(layer);
            let req = get("/", &[("authorization", &bearer(&rs256_token()))]);
            let got = tokio::time::timeout(Duration::from_secs(10), status(&app, req))
                .await
                .expect("an answer within 10 s");
            assert_eq!(got, answered, "{result}");
            let t = m.take();
            let fetches = t.counters(KEY_FETCHES);
            let fetched = labels(&[("result", result), ("source", url.as_str())]);
            assert_eq!(fetches.keys().collect::<Vec<_>>(), [&fetched], "{result}");
            assert!(fetches[&fetched] >= 1);
            // A verified RS256 token is one sample of the rsa family.
            let rsa = t
                .samples(VERIFICATION)
                .get(&labels(&[("family", "rsa")]))
                .map(Vec::len);
            assert_eq!(rsa, (answered == 200).then_some(1), "{result}");
        });
    }
}

// =======================================================================================
// Span fields
// =======================================================================================

/// The fields each span got, by span name: those given at creation and those recorded
/// later. A field declared `Empty` and never recorded is absent.
#[derive(Clone, Default)]
struct SpanFields(Arc<Mutex<HashMap<&'static str, BTreeMap<String, String>>>>);

/// Writes the fields it visits into a map, as text.
struct Collect<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanFields {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        let fields = spans.entry(attrs.metadata().name()).or_default();
        attrs.record(&mut Collect(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let name = ctx.span(id).expect("a live span").name();
        let mut spans = self.0.lock().unwrap();
        values.record(&mut Collect(spans.entry(name).or_default()));
    }
}

impl SpanFields {
    /// The `auth.*` and `enduser.*` fields of span `name`.
    fn auth(&self, name: &str) -> BTreeMap<String, String> {
        let spans = self.0.lock().unwrap();
        let fields = spans.get(name).unwrap_or_else(|| panic!("no span {name}"));
        fields
            .iter()
            .filter(|(k, _)| k.starts_with("auth.") || k.starts_with("enduser."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The `auth.*` and `enduser.*` fields of a request span around `req`, declared as an
/// application declares them for this layer: `Empty` until the layer records them.
async fn request_span_fields(app: &Router, req: Request<Body>) -> BTreeMap<String, String> {
    let spans = SpanFields::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
    let span = tracing::info_span!(
        "request",
        auth.reason = Empty,
        auth.scheme = Empty,
        auth.status = Empty,
        enduser.id = Empty,
    );
    answer(app, req).instrument(span).await;
    spans.auth("request")
}

#[test]
fn the_request_span_gets_the_outcome_and_the_user_only_when_allowed() {
    run(|_| async move {
        let expired = bearer_of(json!({ "exp": now() - 3600 }));
        let valid = bearer_of(json!({}));
        let app = bearer_app(AuthDiagnostics::new());
        let failed = request_span_fields(&app, get("/me", &[("authorization", &expired)])).await;
        assert_eq!(
            failed,
            labels(&[
                ("auth.reason", "token_expired"),
                ("auth.scheme", "bearer"),
                ("auth.status", "401")
            ])
        );
        let anonymous = request_span_fields(&app, get("/me", &[])).await;
        assert_eq!(
            anonymous,
            labels(&[
                ("auth.reason", "credentials_missing"),
                ("auth.scheme", "none"),
                ("auth.status", "401")
            ])
        );
        // Admitted by the layer, then refused by the route (after the layer's call).
        let refused = request_span_fields(&app, get("/admin", &[("authorization", &valid)])).await;
        assert_eq!(
            refused,
            labels(&[
                ("auth.reason", "insufficient_scope"),
                ("auth.scheme", "bearer"),
                ("auth.status", "403")
            ])
        );
        // A user id is personal data: not recorded unless the application asks.
        let admitted = request_span_fields(&app, get("/me", &[("authorization", &valid)])).await;
        assert_eq!(admitted, labels(&[("auth.scheme", "bearer")]));

        let app = bearer_app(AuthDiagnostics::new().record_enduser_id());
        let admitted = request_span_fields(&app, get("/me", &[("authorization", &valid)])).await;
        assert_eq!(
            admitted,
            labels(&[("auth.scheme", "bearer"), ("enduser.id", "alice")])
        );

        // Verified by the application, after the layer's call returned.
        let app = scheme_app(
            AuthDiagnostics::new()
                .basic(BasicAuthenticator::new(check_password))
                .record_enduser_id(),
        );
        let password = basic("alice", ALICE_PW);
        let admitted = request_span_fields(&app, get("/r", &[("authorization", &password)])).await;
        assert_eq!(
            admitted,
            labels(&[("auth.scheme", "basic"), ("enduser.id", "alice")])
        );
    });
}

#[test]
fn a_tower_http_trace_span_gets_the_fields_it_declares() {
    run(|_| async move {
        let spans = SpanFields::default();
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
        let trace =
            tower_http::trace::TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
                tracing::info_span!(
                    "http_request",
                    method = %req.method(),
                    uri = %req.uri(),
                    auth.reason = Empty,
                    auth.scheme = Empty,
                    auth.status = Empty,
                    enduser.id = Empty,
                )
            });
        let app = bearer_app(AuthDiagnostics::new().record_enduser_id()).layer(trace);

        let expired = bearer_of(json!({ "exp": now() - 3600 }));
        assert_eq!(
            status(&app, get("/me", &[("authorization", &expired)])).await,
            401
        );
        assert_eq!(
            spans.auth("http_request"),
            labels(&[
                ("auth.reason", "token_expired"),
                ("auth.scheme", "bearer"),
                ("auth.status", "401")
            ])
        );

        spans.0.lock().unwrap().clear();
        let valid = bearer_of(json!({ "sub": "carol" }));
        assert_eq!(
            status(&app, get("/me", &[("authorization", &valid)])).await,
            200
        );
        assert_eq!(
            spans.auth("http_request"),
            labels(&[("auth.scheme", "bearer"), ("enduser.id", "carol")])
        );
    });
}
