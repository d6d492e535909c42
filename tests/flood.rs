//! Black-box tests for flood control of the failure log (shared/spec/reasons.md, "The log
//! event"): per reason, at least the first 10 failures in any 10 s are logged, then at most
//! about one per second; what is held back is reported in "suppressed N" summary events
//! (field `suppressed`, same `reason`), on a timer or with the next logged event; the
//! limiter's memory is bounded whatever clients send.
//!
//! Each test installs one capturing subscriber for its whole run and drives one layer with
//! `ready` + `call` (a flood through `send` would re-check every response's invariants,
//! which the other suites do).

mod common;
use common::*;

use auth_diagnostics::layer::AuthDiagnosticsService;
use axum::body::Body;
use axum::response::IntoResponse;
use http::{Request, Response};
use std::convert::Infallible;
use std::time::{Duration, Instant};
use tower::{Layer, Service, ServiceExt};

const N: usize = 100_000;

type Inner = tower::util::BoxCloneService<Request<Body>, Response<Body>, Infallible>;

/// A wrapped service that answers every request with a bare 401 (no challenge).
fn inner_401() -> Inner {
    tower::util::BoxCloneService::new(tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(StatusCode::UNAUTHORIZED.into_response())
    }))
}

/// A wrapped service that answers 200.
fn inner_200() -> Inner {
    tower::util::BoxCloneService::new(tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(StatusCode::OK.into_response())
    }))
}

type Svc = AuthDiagnosticsService<Inner>;

/// Sends one request through a clone of `svc` and returns its status.
async fn call(svc: &Svc, req: Request<Body>) -> StatusCode {
    let mut s = svc.clone();
    let response = s.ready().await.unwrap().call(req).await.unwrap();
    response.status()
}

/// Events split into failure events (no `suppressed` field) and summary events.
fn split(events: &[Captured]) -> (Vec<&Captured>, Vec<&Captured>) {
    events.iter().partition(|e| e.get("suppressed").is_none())
}

fn suppressed_total(summaries: &[&Captured]) -> u64 {
    summaries
        .iter()
        .map(|e| {
            e.field("suppressed")
                .parse::<u64>()
                .unwrap_or_else(|err| panic!("suppressed is a count: {err}: {:#?}", e.fields))
        })
        .sum()
}

/// The most failure events a flood lasting `elapsed` may log for one reason: 10 in each
/// 10 s window begun, plus about one per second (counted generously twice).
fn bound(elapsed: Duration) -> usize {
    let s = elapsed.as_secs_f64();
    (10.0 * (s / 10.0 + 2.0) + 2.0 * (s + 2.0)).floor() as usize
}

/// After a flood: report what is held back, give a flusher task that may have taken a
/// count just before us time to emit it, and check that the numbers add up.
async fn settle_and_check(
    label: &str,
    layer: &AuthDiagnostics,
    cap: &Capture,
    reason: &str,
    sent: usize,
    elapsed: Duration,
) {
    layer.flush_suppressed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let events = cap.events();
    for e in &events {
        assert_eq!(e.field("reason"), reason, "{label}: {:#?}", e.fields);
    }
    let (failures, summaries) = split(&events);
    let logged = failures.len();
    let held = suppressed_total(&summaries);
    eprintln!(
        "{label}: {sent} requests in {:.2?}: {logged} failure events, {} summaries reporting {held} suppressed",
        elapsed,
        summaries.len()
    );
    assert!(
        logged >= 10,
        "{label}: at least the first 10 are logged, got {logged}"
    );
    assert!(
        logged <= bound(elapsed),
        "{label}: {logged} failure events in {elapsed:?} exceed the bound {}",
        bound(elapsed)
    );
    assert!(
        summaries.len() <= logged + (elapsed.as_secs() as usize) / 2 + 2,
        "{label}: {} summaries for {logged} logged events in {elapsed:?}",
        summaries.len()
    );
    for s in &summaries {
        assert_ne!(s.field("suppressed"), "0", "{label}: an empty summary");
    }
    assert_eq!(
        logged as u64 + held,
        sent as u64,
        "{label}: logged + suppressed must equal the failures sent"
    );
    // Nothing is left: another flush reports nothing.
    let before = cap.events().len();
    layer.flush_suppressed();
    assert_eq!(
        cap.events().len(),
        before,
        "{label}: a second flush reported more"
    );
}

#[tokio::test]
async fn flood_of_identical_failures_is_bounded_and_adds_up() {
    let (cap, _guard) = Capture::install();
    let layer = AuthDiagnostics::new().bearer(jwt());
    let svc = layer.layer(inner_200());
    let start = Instant::now();
    for _ in 0..N {
        assert_eq!(call(&svc, get("/me", &[])).await, StatusCode::UNAUTHORIZED);
    }
    let elapsed = start.elapsed();
    settle_and_check(
        "bearer, no credentials",
        &layer,
        &cap,
        "credentials_missing",
        N,
        elapsed,
    )
    .await;
}

/// The same through zero configuration: the wrapped service answers a bare 401, which
/// the layer corrects and logs as `upstream_challenge_missing`.
#[tokio::test]
async fn flood_of_upstream_violations_is_bounded_and_adds_up() {
    let (cap, _guard) = Capture::install();
    let layer = AuthDiagnostics::new();
    let svc = layer.layer(inner_401());
    let start = Instant::now();
    for _ in 0..N {
        assert_eq!(call(&svc, get("/x", &[])).await, StatusCode::UNAUTHORIZED);
    }
    let elapsed = start.elapsed();
    settle_and_check(
        "zero-config, bare 401",
        &layer,
        &cap,
        "upstream_challenge_missing",
        N,
        elapsed,
    )
    .await;
}

/// A million distinct tokens are one reason to the limiter: its events stay bounded by the
/// rate (its table, one bucket per reason, is proven in `src/flood.rs`).
#[tokio::test]
async fn distinct_tokens_do_not_grow_the_limiter() {
    let (cap, _guard) = Capture::install();
    let layer = AuthDiagnostics::new().bearer(jwt());
    let svc = layer.layer(inner_200());
    let start = Instant::now();
    for i in 0..N {
        let auth = format!("Bearer tok-{i}");
        let status = call(&svc, get("/me", &[("authorization", &auth)])).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let elapsed = start.elapsed();
    // Every distinct token still counts against the one reason.
    settle_and_check(
        "distinct tokens",
        &layer,
        &cap,
        "token_malformed",
        N,
        elapsed,
    )
    .await;
    for e in cap.events() {
        assert!(
            !e.line().contains("tok-"),
            "a token reached the log: {}",
            e.line()
        );
    }
}

/// With no further request, the held-back count is reported on a timer, to the
/// subscriber that was current when the first event was held back.
#[tokio::test]
async fn background_flusher_reports_without_further_requests() {
    let (cap, _guard) = Capture::install();
    let layer = AuthDiagnostics::new().bearer(jwt());
    let svc = layer.layer(inner_200());
    for _ in 0..15 {
        call(&svc, get("/me", &[])).await;
    }
    let events = cap.events();
    let (failures, summaries) = split(&events);
    assert_eq!(failures.len(), 10, "the first 10 are logged at once");
    assert!(summaries.is_empty());

    tokio::time::sleep(Duration::from_secs(4)).await;
    let events = cap.events();
    let (failures, summaries) = split(&events);
    assert_eq!(failures.len(), 10);
    assert_eq!(summaries.len(), 1, "{summaries:#?}");
    assert_eq!(summaries[0].field("reason"), "credentials_missing");
    assert_eq!(summaries[0].field("suppressed"), "5");
    assert_eq!(summaries[0].target, "auth_diagnostics");

    // Reported once: nothing left for an explicit flush.
    layer.flush_suppressed();
    assert_eq!(cap.events().len(), 11);
}

/// The flusher reports to the subscriber current when the first event was held back,
/// even when that thread has moved on to another subscriber.
#[tokio::test]
async fn background_flusher_reports_to_the_subscriber_of_the_first_held_back_event() {
    let layer = AuthDiagnostics::new().bearer(jwt());
    let svc = layer.layer(inner_200());
    let (first, guard) = Capture::install();
    for _ in 0..12 {
        call(&svc, get("/me", &[])).await;
    }
    drop(guard);
    let (second, _guard) = Capture::install();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let events = first.events();
    let (failures, summaries) = split(&events);
    assert_eq!(failures.len(), 10);
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].field("suppressed"), "2");
    assert!(second.events().is_empty(), "{:#?}", second.events());
}

/// The summary comes with the next logged event of the same reason when there is one
/// before the timer fires.
#[tokio::test]
async fn summary_comes_with_the_next_logged_event() {
    let (cap, _guard) = Capture::install();
    let layer = AuthDiagnostics::new().bearer(jwt());
    let svc = layer.layer(inner_200());
    for _ in 0..15 {
        call(&svc, get("/me", &[])).await;
    }
    assert_eq!(cap.events().len(), 10);
    // Past the one-per-second pace, well before the timer.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    call(&svc, get("/me", &[])).await;
    let events = cap.events();
    assert_eq!(events.len(), 12, "{events:#?}");
    assert_eq!(
        events[10].get("suppressed"),
        Some("5"),
        "{:#?}",
        events[10].fields
    );
    assert_eq!(events[10].field("reason"), "credentials_missing");
    assert_eq!(events[11].get("suppressed"), None);
    assert_eq!(events[11].field("reason"), "credentials_missing");
}

/// Reasons have separate budgets: a flood of one does not hide another.
#[tokio::test]
async fn reasons_are_limited_separately() {
    let (cap, _guard) = Capture::install();
    let layer = AuthDiagnostics::new().bearer(jwt());
    let svc = layer.layer(inner_200());
    for _ in 0..50 {
        call(&svc, get("/me", &[])).await;
    }
    for i in 0..5 {
        let auth = format!("Bearer other-{i}");
        call(&svc, get("/me", &[("authorization", &auth)])).await;
    }
    let events = cap.events();
    let count = |reason: &str| {
        events
            .iter()
            .filter(|e| e.field("reason") == reason && e.get("suppressed").is_none())
            .count()
    };
    assert_eq!(count("credentials_missing"), 10);
    assert_eq!(count("token_malformed"), 5);
    layer.flush_suppressed();
    let events = cap.events();
    let (_, summaries) = split(&events);
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].field("reason"), "credentials_missing");
    assert_eq!(summaries[0].field("suppressed"), "40");
}

/// A new 10 s window logs a new burst of 10.
#[tokio::test]
async fn a_new_window_logs_a_new_burst() {
    let (cap, _guard) = Capture::install();
    let layer = AuthDiagnostics::new().bearer(jwt());
    let svc = layer.layer(inner_200());
    for _ in 0..20 {
        call(&svc, get("/me", &[])).await;
    }
    assert_eq!(split(&cap.events()).0.len(), 10);
    tokio::time::sleep(Duration::from_millis(10_200)).await;
    // By now the timer has reported the 10 held back.
    let events = cap.events();
    let (_, summaries) = split(&events);
    assert_eq!(suppressed_total(&summaries), 10);
    for _ in 0..10 {
        call(&svc, get("/me", &[])).await;
    }
    let events = cap.events();
    let (failures, summaries) = split(&events);
    assert_eq!(failures.len(), 20, "a fresh window logs its first 10 again");
    assert_eq!(suppressed_total(&summaries), 10);
}

#[tokio::test]
async fn log_every_failure_disables_flood_control() {
    let (cap, _guard) = Capture::install();
    let layer = AuthDiagnostics::new().bearer(jwt()).log_every_failure();
    let svc = layer.layer(inner_200());
    for _ in 0..500 {
        call(&svc, get("/me", &[])).await;
    }
    layer.flush_suppressed();
    let events = cap.events();
    let (failures, summaries) = split(&events);
    assert_eq!(failures.len(), 500);
    assert!(summaries.is_empty());
}

/// Flushing with nothing held back reports nothing.
#[tokio::test]
async fn flush_with_nothing_pending_reports_nothing() {
    let (cap, _guard) = Capture::install();
    let layer = AuthDiagnostics::new().bearer(jwt());
    let svc = layer.layer(inner_200());
    for _ in 0..10 {
        call(&svc, get("/me", &[])).await;
    }
    layer.flush_suppressed();
    assert_eq!(cap.events().len(), 10);
    assert!(split(&cap.events()).1.is_empty());
}

/// A layer that outlives the runtime its summary task ran on (one runtime per
/// `#[tokio::test]`, say): the next held-back event starts another task on the runtime at
/// hand, and held-back counts are still reported without a further logged event.
#[test]
fn a_layer_outliving_its_runtime_still_reports_on_a_timer() {
    let layer = AuthDiagnostics::new();
    let svc = layer.layer(inner_401());
    let (cap, _guard) = Capture::install();
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    // A flood, then the runtime goes away while its task waits to report.
    runtime().block_on(async {
        for _ in 0..40 {
            call(&svc, get("/me", &[])).await;
        }
    });
    let first = cap.events();
    let (failures, summaries) = split(&first);
    assert_eq!(summaries.len(), 0);
    let logged_first = failures.len();
    // Another runtime, another flood, and no further event: a timer must report.
    runtime().block_on(async {
        for _ in 0..40 {
            call(&svc, get("/me", &[])).await;
        }
        tokio::time::sleep(Duration::from_millis(3500)).await;
    });
    let events = cap.events();
    let (failures, summaries) = split(&events);
    assert!(!summaries.is_empty(), "no summary on a timer: {events:#?}");
    assert_eq!(
        failures.len() as u64 + suppressed_total(&summaries),
        80,
        "logged + suppressed = sent (first runtime logged {logged_first})"
    );
}
