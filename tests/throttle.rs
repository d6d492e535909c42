//! Throttling failed authentication (`AuthDiagnostics::throttle`), as a client and an
//! operator see it: after a budget of counted failures a client address or claimed
//! identity is answered 429 `throttled` with `Retry-After` and no challenge, before its
//! credentials are verified (the application's verifier is not called), and the refusal
//! is logged at WARN like any other.
//!
//! Every request carries the connection's peer as axum's `ConnectInfo<SocketAddr>`
//! extension, as `into_make_service_with_connect_info` inserts it. What is counted
//! (credentials that did not verify, never expired tokens, missing credentials or a wrong
//! audience), by what (address, IPv6 /64, the client behind a trusted proxy, a Basic user
//! name, an API key's prefix), how blocks grow and end, report-only layers, a store that
//! cannot answer, two replicas sharing a real Redis, and hostile input.

mod common;
use common::redis::Redis;
use common::*;

use auth_diagnostics::api_key::ApiKeyAuthenticator;
use auth_diagnostics::basic::{BasicAuthenticator, BasicCredentials};
use auth_diagnostics::layer::ConfigError;
use auth_diagnostics::store::{RedisStore, StoreError, StoreFuture};
use auth_diagnostics::throttle::{Budget, Throttle, ThrottleStore};
use auth_diagnostics::Principal;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get as route;
use axum::Router;
use http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use http::Request;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const MINUTE: Duration = Duration::from_secs(60);

// =======================================================================================
// Requests from a peer, apps, what a throttled answer is
// =======================================================================================

/// `req` as it arrives over a connection from `peer` (`"192.0.2.1"`, `"2001:db8::1"`, or
/// with a port).
fn from(mut req: Request<Body>, peer: &str) -> Request<Body> {
    let addr: SocketAddr = peer
        .parse()
        .or_else(|_| format!("{peer}:40000").parse())
        .or_else(|_| format!("[{peer}]:40000").parse())
        .unwrap_or_else(|_| panic!("not an address: {peer}"));
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}

/// GET `/r` with Basic `user:password` from `peer`.
fn basic_from(user: &str, password: &str, peer: &str) -> Request<Body> {
    from(
        get("/r", &[("authorization", &basic(user, password))]),
        peer,
    )
}

/// The test user store ([`check_password`]), counting its calls.
fn counting_basic(calls: &Arc<AtomicUsize>) -> BasicAuthenticator {
    let calls = calls.clone();
    BasicAuthenticator::new(move |c: BasicCredentials| {
        calls.fetch_add(1, Ordering::SeqCst);
        check_password(c)
    })
}

/// The layer in a detail mode, served over TLS: the Basic-over-plain-http warning (said
/// once per layer, for a peer that is not loopback) is not what this suite looks at.
fn layer(mode: DetailMode) -> AuthDiagnostics {
    AuthDiagnostics::new().detail_mode(mode).served_over_tls()
}

/// `/r` behind a verbose layer with Basic ([`check_password`]) and `throttle`.
fn basic_app(throttle: Throttle) -> Router {
    scheme_app(
        layer(DetailMode::Verbose)
            .basic(BasicAuthenticator::new(check_password))
            .throttle(throttle),
    )
}

/// The principal's id, or `{"anonymous": true}`.
async fn who(p: Option<Principal>) -> axum::Json<Value> {
    axum::Json(match p {
        Some(p) => json!({ "id": p.id() }),
        None => json!({ "anonymous": true }),
    })
}

/// A 200 for `id`.
#[track_caller]
fn admitted(out: &Outcome, id: &str) {
    assert_eq!(
        out.status,
        StatusCode::OK,
        "{} {:#?}",
        out.text(),
        out.events
    );
    assert_eq!(out.json()["id"], id, "{}", out.text());
}

/// A 401 (not 429) with a challenge.
#[track_caller]
fn refused(out: &Outcome) {
    assert_eq!(out.status, StatusCode::UNAUTHORIZED, "{}", out.text());
    assert!(
        out.headers.get(WWW_AUTHENTICATE).is_some(),
        "{:?}",
        out.headers
    );
}

/// 429 `throttled`: `Retry-After` in whole seconds, no challenge, a problem body with
/// reason `throttled`, and one WARN event saying so. Returns `Retry-After`.
#[track_caller]
fn throttled(out: &Outcome) -> u64 {
    assert_eq!(
        out.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{} {:#?}",
        out.text(),
        out.events
    );
    assert!(
        out.headers.get(WWW_AUTHENTICATE).is_none(),
        "a 429 carries no challenge: {:?}",
        out.headers
    );
    let retry: u64 = out
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!(retry >= 1, "{retry}");
    let p = out.problem();
    assert_eq!(p["reason"], "throttled", "{p}");
    assert_eq!(p["status"], 429, "{p}");
    let e = out.event();
    assert_eq!(e.level, Level::WARN, "{e:#?}");
    assert_eq!(e.field("reason"), "throttled", "{e:#?}");
    assert_eq!(e.field("status"), "429", "{e:#?}");
    retry
}

fn peer(i: usize) -> String {
    format!("198.51.100.{}", 100 + i)
}

// =======================================================================================
// 1. A client address over its budget
// =======================================================================================

/// Three wrong passwords from one address: the fourth request, even with the right
/// password, is 429 before the verifier is called; another address is unaffected.
#[tokio::test]
async fn an_address_over_its_budget_is_refused_before_its_credentials_are_checked() {
    for mode in [DetailMode::Verbose, DetailMode::Production] {
        let calls = Arc::new(AtomicUsize::new(0));
        let throttle = Throttle::new().per_address(3, MINUTE);
        let app = scheme_app(
            layer(mode)
                .basic(counting_basic(&calls))
                .throttle(throttle.clone()),
        );
        for i in 1..=3 {
            let out = send(app.clone(), basic_from("alice", "wrong", "192.0.2.10")).await;
            refused(&out);
            assert_eq!(out.event().field("reason"), "basic_password_mismatch");
            assert_eq!(calls.load(Ordering::SeqCst), i);
        }
        for _ in 0..3 {
            let out = send(app.clone(), basic_from("alice", ALICE_PW, "192.0.2.10")).await;
            let retry = throttled(&out);
            // The first block: the window divided by the count.
            assert!((19..=20).contains(&retry), "{retry}");
            assert_eq!(
                calls.load(Ordering::SeqCst),
                3,
                "the verifier was not called"
            );
        }
        let out = send(app.clone(), basic_from("alice", ALICE_PW, "192.0.2.11")).await;
        admitted(&out, "alice");
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // The address and alice's name: two keys.
        assert_eq!(throttle.tracked(), 2);
    }
}

// =======================================================================================
// 2. What counts
// =======================================================================================

fn bearer_from(token: &str, peer: &str) -> Request<Body> {
    from(get("/me", &[("authorization", &bearer(token))]), peer)
}

/// Expired tokens, requests without credentials and tokens for another audience are what
/// ordinary clients send: never counted. Tokens whose signature does not verify are.
/// Successes write nothing.
#[tokio::test]
async fn only_credentials_that_do_not_verify_count() {
    let throttle = Throttle::new().per_address(3, MINUTE);
    let app = bearer_app(layer(DetailMode::Verbose).throttle(throttle.clone()));
    let client = "192.0.2.20";
    let expired = hs256(&claims(json!({ "exp": now() - 600, "iat": now() - 4000 })));
    let wrong_aud = hs256(&claims(json!({ "aud": "another-api" })));
    for round in 0..10 {
        let cases = [
            (bearer_from(&expired, client), "token_expired"),
            (from(get("/me", &[]), client), "credentials_missing"),
            (bearer_from(&wrong_aud, client), "token_audience_mismatch"),
        ];
        for (req, reason) in cases {
            let out = send(app.clone(), req).await;
            refused(&out);
            if round == 0 {
                assert_eq!(out.event().field("reason"), reason);
            }
        }
    }
    assert_eq!(throttle.tracked(), 0, "nothing counted");

    let good = hs256(&good_claims());
    for _ in 0..20 {
        let out = send(app.clone(), bearer_from(&good, client)).await;
        assert_eq!(out.ok()["sub"], "alice");
    }
    assert_eq!(throttle.tracked(), 0, "successes write nothing");

    let forged = sign(
        &Header::default(),
        &good_claims(),
        &EncodingKey::from_secret(b"not-the-test-secret"),
    );
    for _ in 0..3 {
        let out = send(app.clone(), bearer_from(&forged, client)).await;
        refused(&out);
        assert_eq!(out.event().field("reason"), "token_signature_invalid");
    }
    assert_eq!(throttle.tracked(), 1);
    throttled(&send(app.clone(), bearer_from(&good, client)).await);
    let out = send(app.clone(), bearer_from(&good, "192.0.2.21")).await;
    assert_eq!(out.ok()["sub"], "alice");
}

// =======================================================================================
// 3. Claimed identities
// =======================================================================================

/// Failures in alice's name from many addresses block alice from any address; dora, from
/// that same address, is unaffected. Without identities, alice is not blocked.
#[tokio::test]
async fn a_user_name_failing_from_many_addresses_is_blocked_everywhere() {
    let app = basic_app(Throttle::new().per_identity(4, MINUTE));
    for i in 0..4 {
        refused(&send(app.clone(), basic_from("alice", "wrong", &peer(i))).await);
    }
    throttled(&send(app.clone(), basic_from("alice", ALICE_PW, "203.0.113.50")).await);
    admitted(
        &send(app.clone(), basic_from("dora", ALICE_PW, "203.0.113.50")).await,
        "dora",
    );

    let app = basic_app(Throttle::new().per_identity(4, MINUTE).without_identity());
    for i in 0..20 {
        refused(&send(app.clone(), basic_from("alice", "wrong", &peer(i))).await);
    }
    admitted(
        &send(app.clone(), basic_from("alice", ALICE_PW, "203.0.113.50")).await,
        "alice",
    );
}

/// An address that failed in alice's name is blocked; alice herself, from elsewhere,
/// is not, until her own name's budget is spent.
#[tokio::test]
async fn a_blocked_address_does_not_block_the_names_it_used() {
    let app = basic_app(
        Throttle::new()
            .per_address(3, MINUTE)
            .per_identity(10, MINUTE),
    );
    for _ in 0..3 {
        refused(&send(app.clone(), basic_from("alice", "wrong", "203.0.113.66")).await);
    }
    throttled(&send(app.clone(), basic_from("bob", "x", "203.0.113.66")).await);
    admitted(
        &send(app.clone(), basic_from("alice", ALICE_PW, "198.51.100.7")).await,
        "alice",
    );
}

/// Without a peer address (no `ConnectInfo`) only names are counted, and the layer says
/// so once, at WARN.
#[tokio::test]
async fn without_a_peer_address_names_are_still_counted() {
    let app = basic_app(
        Throttle::new()
            .per_address(1, MINUTE)
            .per_identity(3, MINUTE),
    );
    let anonymous =
        |user: &str, password: &str| get("/r", &[("authorization", &basic(user, password))]);
    // The warning has a target of its own: every target is looked at.
    let (capture, guard) = Capture::install();
    for _ in 0..3 {
        let response = app
            .clone()
            .oneshot(anonymous("alice", "wrong"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    drop(guard);
    let warnings: Vec<_> = capture
        .all_events()
        .into_iter()
        .filter(|e| {
            e.get("message")
                .is_some_and(|m| m.contains("no peer address"))
        })
        .collect();
    assert_eq!(warnings.len(), 1, "said once: {warnings:#?}");
    assert_eq!(warnings[0].level, Level::WARN);
    throttled(&send(app.clone(), anonymous("alice", ALICE_PW)).await);
    admitted(
        &send(app.clone(), anonymous("dora", ALICE_PW)).await,
        "dora",
    );
}

// =======================================================================================
// 4. IPv6
// =======================================================================================

/// An IPv6 client holds a whole /64: two addresses in it count together, another /64 does
/// not. An IPv4-mapped IPv6 peer is its IPv4 address.
#[tokio::test]
async fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
    let app = basic_app(Throttle::new().per_address(4, MINUTE).without_identity());
    for _ in 0..2 {
        refused(
            &send(
                app.clone(),
                basic_from("alice", "wrong", "2001:db8:aaaa:1::1"),
            )
            .await,
        );
        let other = "2001:db8:aaaa:1:ffff:ffff:ffff:fffe";
        refused(&send(app.clone(), basic_from("alice", "wrong", other)).await);
    }
    let same_64 = "2001:db8:aaaa:1:1234::9";
    throttled(&send(app.clone(), basic_from("alice", ALICE_PW, same_64)).await);
    admitted(
        &send(
            app.clone(),
            basic_from("alice", ALICE_PW, "2001:db8:aaaa:2::1"),
        )
        .await,
        "alice",
    );

    for _ in 0..2 {
        refused(
            &send(
                app.clone(),
                basic_from("alice", "wrong", "::ffff:192.0.2.77"),
            )
            .await,
        );
        refused(&send(app.clone(), basic_from("alice", "wrong", "192.0.2.77")).await);
    }
    throttled(&send(app.clone(), basic_from("alice", ALICE_PW, "192.0.2.77")).await);
    throttled(
        &send(
            app.clone(),
            basic_from("alice", ALICE_PW, "::ffff:192.0.2.77"),
        )
        .await,
    );
    admitted(
        &send(app.clone(), basic_from("alice", ALICE_PW, "192.0.2.78")).await,
        "alice",
    );
}

// =======================================================================================
// 5. Trusted proxies
// =======================================================================================

/// GET `/r` with Basic `user:password` from `peer` with `headers` (forwarding headers).
fn forwarded(user: &str, password: &str, peer: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let auth = basic(user, password);
    let mut all = vec![("authorization", auth.as_str())];
    all.extend_from_slice(headers);
    from(get("/r", &all), peer)
}

/// Behind a trusted proxy the client is the first untrusted hop of `X-Forwarded-For`, or
/// of `Forwarded: for=` without it: one client blocked behind the proxy blocks neither
/// the others nor the proxy. From an untrusted peer the headers are the client's own
/// word: a forged `X-Forwarded-For` evades nothing.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_counts_alone() {
    let app = scheme_app(
        layer(DetailMode::Verbose)
            .basic(BasicAuthenticator::new(check_password))
            .trusted_proxies("10.0.0.0/8".parse().unwrap())
            .throttle(Throttle::new().per_address(3, MINUTE).without_identity()),
    );
    let proxy = "10.0.0.2";
    for _ in 0..3 {
        let req = forwarded(
            "alice",
            "wrong",
            proxy,
            &[("x-forwarded-for", "203.0.113.5")],
        );
        refused(&send(app.clone(), req).await);
    }
    let same_client = [
        ("x-forwarded-for", "203.0.113.5"),
        // Read right to left: 10.0.0.7 is a proxy too, what 203.0.113.5 claims is its own.
        ("x-forwarded-for", "198.51.100.99, 203.0.113.5, 10.0.0.7"),
        ("forwarded", "for=203.0.113.5;proto=https"),
    ];
    for header in same_client {
        let req = forwarded("alice", ALICE_PW, proxy, &[header]);
        throttled(&send(app.clone(), req).await);
    }
    let req = forwarded(
        "alice",
        ALICE_PW,
        proxy,
        &[("x-forwarded-for", "203.0.113.6")],
    );
    admitted(&send(app.clone(), req).await, "alice");
    admitted(
        &send(app.clone(), forwarded("alice", ALICE_PW, proxy, &[])).await,
        "alice",
    );

    // `Forwarded: for=` names the client when there is no X-Forwarded-For.
    for _ in 0..3 {
        let req = forwarded("alice", "wrong", proxy, &[("forwarded", "for=203.0.113.9")]);
        refused(&send(app.clone(), req).await);
    }
    let req = forwarded(
        "alice",
        ALICE_PW,
        proxy,
        &[("forwarded", "for=203.0.113.9")],
    );
    throttled(&send(app.clone(), req).await);
    let req = forwarded(
        "alice",
        ALICE_PW,
        proxy,
        &[("x-forwarded-for", "203.0.113.9")],
    );
    throttled(&send(app.clone(), req).await);
    let v6 = [("forwarded", "for=\"[2001:db8::9]:4711\"")];
    admitted(
        &send(app.clone(), forwarded("alice", ALICE_PW, proxy, &v6)).await,
        "alice",
    );

    // An untrusted peer naming a new client each time is counted as itself.
    let untrusted = "198.51.100.20";
    for i in 0..3 {
        let xff = format!("203.0.113.{}", 100 + i);
        let req = forwarded("alice", "wrong", untrusted, &[("x-forwarded-for", &xff)]);
        refused(&send(app.clone(), req).await);
    }
    let req = forwarded(
        "alice",
        ALICE_PW,
        untrusted,
        &[("x-forwarded-for", "203.0.113.200")],
    );
    throttled(&send(app.clone(), req).await);
    let req = forwarded(
        "alice",
        ALICE_PW,
        untrusted,
        &[("forwarded", "for=203.0.113.201")],
    );
    throttled(&send(app.clone(), req).await);
}

// =======================================================================================
// 6. Backoff
// =======================================================================================

/// Two failures within 2 s block for 1 s; a failure right after the block blocks for
/// twice as long; a client quiet for a whole window after its block starts again from
/// nothing.
#[tokio::test]
async fn blocks_grow_with_continued_failures_and_end_after_a_quiet_window() {
    let app = basic_app(
        Throttle::new()
            .per_address(2, Duration::from_secs(2))
            .without_identity(),
    );
    let client = "192.0.2.60";
    let fail = || async { refused(&send(app.clone(), basic_from("alice", "wrong", client)).await) };
    let right = || send(app.clone(), basic_from("alice", ALICE_PW, client));

    fail().await;
    fail().await;
    assert_eq!(throttled(&right().await), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The block is over, the window still holds the failures: one more blocks for 2 s.
    fail().await;
    assert_eq!(throttled(&right().await), 2);

    // The block (2 s) and a quiet window (2 s) after it.
    tokio::time::sleep(Duration::from_millis(4300)).await;
    admitted(&right().await, "alice");
    fail().await;
    admitted(&right().await, "alice");
    fail().await;
    assert_eq!(throttled(&right().await), 1, "the first block again");
}

// =======================================================================================
// 7. Report-only
// =======================================================================================

/// A report-only layer neither counts nor refuses: every request reaches the handler.
#[tokio::test]
async fn a_report_only_layer_never_answers_429() {
    let throttle = Throttle::new()
        .per_address(2, MINUTE)
        .per_identity(2, MINUTE);
    let app = Router::new().route("/r", route(who)).layer(
        layer(DetailMode::Verbose)
            .basic(BasicAuthenticator::new(check_password))
            .throttle(throttle.clone())
            .report_only(),
    );
    for _ in 0..10 {
        let out = send(app.clone(), basic_from("alice", "wrong", "192.0.2.70")).await;
        assert_eq!(out.status, StatusCode::OK, "{}", out.text());
        assert_eq!(out.json(), json!({ "anonymous": true }));
        for e in &out.events {
            assert_ne!(e.get("reason"), Some("throttled"), "{e:#?}");
        }
    }
    assert_eq!(throttle.tracked(), 0, "nothing counted");
    let out = send(app, basic_from("alice", ALICE_PW, "192.0.2.70")).await;
    admitted(&out, "alice");
}

// =======================================================================================
// 8. A store that cannot answer
// =======================================================================================

/// A shared store that is always down, counting what it is asked.
#[derive(Clone, Default)]
struct Down {
    blocked: Arc<AtomicUsize>,
    recorded: Arc<AtomicUsize>,
}

impl ThrottleStore for Down {
    fn blocked(&self, _: &[String]) -> StoreFuture<Vec<Option<Duration>>> {
        self.blocked.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Err(StoreError::new("connection refused (test store)")) })
    }

    fn record(&self, _: &[(String, Budget)], _: Duration) -> StoreFuture<Vec<Option<Duration>>> {
        self.recorded.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Err(StoreError::new("connection refused (test store)")) })
    }
}

const STORE_DOWN: &str = "the throttling store cannot answer";

/// Failures are counted locally while the store is down, and the fault is logged at
/// ERROR once, not once per request.
#[tokio::test]
async fn a_store_that_cannot_answer_falls_back_to_local_counting() {
    let store = Down::default();
    let throttle = Throttle::new()
        .per_address(3, MINUTE)
        .shared(store.clone(), "a-key-shared-by-replicas");
    let app = basic_app(throttle);
    // Every target is looked at, over every request.
    let (capture, guard) = Capture::install();
    let answer = |req| async { app.clone().oneshot(req).await.unwrap() };
    for _ in 0..3 {
        let response = answer(basic_from("alice", "wrong", "192.0.2.80")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(store.blocked.load(Ordering::SeqCst), 3);
    assert_eq!(store.recorded.load(Ordering::SeqCst), 3);
    for _ in 0..5 {
        let response = answer(basic_from("alice", ALICE_PW, "192.0.2.80")).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(response.headers().contains_key(RETRY_AFTER));
        assert!(!response.headers().contains_key(WWW_AUTHENTICATE));
    }
    // Blocked here: the store is not asked.
    assert_eq!(store.blocked.load(Ordering::SeqCst), 3);
    let response = answer(basic_from("alice", ALICE_PW, "192.0.2.81")).await;
    assert_eq!(response.status(), StatusCode::OK);
    drop(guard);

    let events = capture.all_events();
    let faults: Vec<_> = events
        .iter()
        .filter(|e| e.get("message").is_some_and(|m| m.contains(STORE_DOWN)))
        .collect();
    assert_eq!(faults.len(), 1, "{events:#?}");
    assert_eq!(faults[0].level, Level::ERROR);
    assert!(
        faults[0].field("error").contains("connection refused"),
        "{:#?}",
        faults[0]
    );
    let refusals = events
        .iter()
        .filter(|e| e.get("reason") == Some("throttled"));
    assert_eq!(refusals.count(), 5);
}

// =======================================================================================
// 9. Replicas sharing a real Redis
// =======================================================================================

const SHARED_KEY: &str = "replicas-share-this-key-32-bytes";

/// A replica: its own throttle and its own connection to `redis`.
fn replica(redis: &Redis, throttle: Throttle) -> Router {
    let store = RedisStore::open(&redis.url()).expect("a redis:// URL");
    basic_app(throttle.shared(store, SHARED_KEY))
}

/// Failures spread over two replicas count together: after the budget in all, both
/// answer 429. Redis holds neither the address nor the user name.
#[tokio::test]
async fn two_replicas_sharing_redis_count_failures_together() {
    let Some(redis) = Redis::start() else { return };
    let budget = || Throttle::new().per_address(4, MINUTE);
    let replicas = [replica(&redis, budget()), replica(&redis, budget())];
    let client = "192.0.2.90";
    for i in 0..4 {
        let out = send(
            replicas[i % 2].clone(),
            basic_from("alice", "wrong", client),
        )
        .await;
        refused(&out);
    }
    for app in &replicas {
        throttled(&send(app.clone(), basic_from("alice", ALICE_PW, client)).await);
    }
    for app in &replicas {
        admitted(
            &send(app.clone(), basic_from("dora", ALICE_PW, "192.0.2.91")).await,
            "dora",
        );
    }
    let keys = redis.keys("*throttle*");
    assert!(
        keys.iter().any(|k| k.contains("throttle-block:")),
        "{keys:?}"
    );
    for key in &keys {
        assert!(!key.contains("192.0.2") && !key.contains("alice"), "{key}");
    }
}

/// As with one process (`a_blocked_address_does_not_block_the_names_it_used`): an address
/// blocked for failing in alice's name blocks neither alice elsewhere nor the next name it
/// tries elsewhere, on the replica that counted the failure or on another.
#[tokio::test]
async fn replicas_block_only_the_key_that_is_blocked() {
    let Some(redis) = Redis::start() else { return };
    let budget = || {
        Throttle::new()
            .per_address(3, MINUTE)
            .per_identity(10, MINUTE)
    };
    let replicas = [replica(&redis, budget()), replica(&redis, budget())];
    let attacker = "203.0.113.66";
    for _ in 0..3 {
        refused(&send(replicas[0].clone(), basic_from("alice", "wrong", attacker)).await);
    }
    // Another replica learns from the store that the attacker is blocked, as it tries bob.
    throttled(&send(replicas[1].clone(), basic_from("bob", "x", attacker)).await);
    for app in &replicas {
        for user in ["alice", "bob"] {
            let out = send(app.clone(), basic_from(user, ALICE_PW, "198.51.100.7")).await;
            assert_ne!(
                out.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{user}: {}",
                out.text()
            );
        }
    }
}

/// A shared key shorter than 16 bytes is a configuration mistake.
#[test]
fn a_short_shared_key_is_a_configuration_error() {
    let store = RedisStore::open("redis://127.0.0.1:9").expect("a redis:// URL");
    let errors = AuthDiagnostics::new()
        .basic(BasicAuthenticator::new(check_password))
        .throttle(Throttle::new().shared(store, "fifteen-bytes!!"))
        .try_build()
        .unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| *e == ConfigError::ThrottleKeyTooShort { len: 15 }),
        "{errors:?}"
    );
}

// =======================================================================================
// 10. Hostile input
// =======================================================================================

/// What no event may contain: a distinctive part of every user name sent.
#[track_caller]
fn no_user_names(events: &[Captured], names: &[&str]) {
    for e in events {
        let line = e.line();
        for name in names {
            assert!(!line.contains(name), "a user name is logged: {line}");
        }
    }
}

/// Bytes that are not UTF-8, a 10 KB user name, CR and LF in a user name: refused as
/// malformed (400 or 401), never counted (they name nobody and guess nothing), never a
/// panic. The longest user name allowed, quotes and markup in one, an empty one: counted
/// like any other, by address and by name. No user name appears in any event.
#[tokio::test]
async fn hostile_credentials_are_answered_and_never_logged() {
    // Every event logged, so that every one is looked at.
    let app = scheme_app(
        layer(DetailMode::Verbose)
            .basic(BasicAuthenticator::new(check_password))
            .log_every_failure()
            .throttle(
                Throttle::new()
                    .per_address(3, MINUTE)
                    .per_identity(3, MINUTE),
            ),
    );
    let huge = format!("hugename-{}", "x".repeat(10 * 1024));
    let crlf = "crlfname\"\r\nX-Injected: \"1\"";
    let longest = format!("longname-{}", "y".repeat(256 - 9));
    let quotes = "quotename\"'\\<script>";
    let names = [
        "hugename",
        "crlfname",
        "X-Injected",
        "longname",
        "quotename",
        "<script>",
    ];
    let mut events = Vec::new();

    let basic_raw = |user: &[u8]| {
        let mut pair = user.to_vec();
        pair.extend_from_slice(b":wrong");
        hv(format!("Basic {}", b64(&pair)))
    };
    let malformed = [
        ("192.0.2.100", hv(b"Basic \xff\xfe\xfd\x80")),
        ("192.0.2.101", basic_raw(b"\xffnot-utf8")),
        ("192.0.2.102", basic_raw(huge.as_bytes())),
        ("192.0.2.103", basic_raw(crlf.as_bytes())),
    ];
    for (client, authorization) in &malformed {
        for _ in 0..10 {
            let req = request(
                Method::GET,
                "/r",
                vec![("authorization", authorization.clone())],
            );
            let out = send(app.clone(), from(req, client)).await;
            assert!(
                [400, 401].contains(&out.status.as_u16()),
                "{} {}",
                out.status,
                out.text()
            );
            assert_eq!(out.problem()["reason"], "basic_malformed", "{}", out.text());
            events.extend(out.events);
        }
    }

    for (user, client) in [
        (longest.as_str(), "192.0.2.110"),
        (quotes, "192.0.2.111"),
        ("", "192.0.2.112"),
    ] {
        for _ in 0..3 {
            let out = send(app.clone(), basic_from(user, "wrong", client)).await;
            refused(&out);
            assert_eq!(out.problem()["reason"], "basic_user_unknown");
            events.extend(out.events);
        }
        let out = send(app.clone(), basic_from(user, "wrong", client)).await;
        throttled(&out);
        events.extend(out.events);
        // The name's own budget is spent too: refused from another address as well.
        let out = send(app.clone(), basic_from(user, "wrong", "192.0.2.120")).await;
        throttled(&out);
        events.extend(out.events);
    }
    assert_eq!(events.len(), 55, "one event a request: {events:#?}");
    no_user_names(&events, &names);
}

// =======================================================================================
// 11. API key prefixes
// =======================================================================================

fn key_from(key: &str, peer: &str) -> Request<Body> {
    from(get("/r", &[("x-api-key", key)]), peer)
}

fn key_app(throttle: Throttle) -> Router {
    scheme_app(
        layer(DetailMode::Verbose)
            .api_key(ApiKeyAuthenticator::new(check_key))
            .throttle(throttle),
    )
}

/// With `api_key_prefix(6)` keys sharing their first 6 characters count as one identity
/// whatever address they come from; a key with another prefix is unaffected. Without it,
/// different keys from different addresses never add up.
#[tokio::test]
async fn keys_sharing_a_prefix_count_together_when_asked_to() {
    let app = key_app(Throttle::new().api_key_prefix(6).per_identity(3, MINUTE));
    for i in 0..3 {
        let out = send(
            app.clone(),
            key_from(&format!("acme01-unknown-{i:04}"), &peer(i)),
        )
        .await;
        refused(&out);
        assert_eq!(out.event().field("reason"), "api_key_unknown");
    }
    throttled(&send(app.clone(), key_from("acme01-another-key", "203.0.113.77")).await);
    admitted(
        &send(app.clone(), key_from(KEY_GOOD, "203.0.113.77")).await,
        "key-owner",
    );

    let app = key_app(Throttle::new().per_identity(3, MINUTE));
    for i in 0..20 {
        let out = send(
            app.clone(),
            key_from(&format!("acme01-unknown-{i:04}"), &peer(i)),
        )
        .await;
        refused(&out);
    }
}

/// The prefix is read where the layer reads the key: a header of the application's choice.
#[tokio::test]
async fn a_key_prefix_is_read_from_the_configured_header() {
    let app = scheme_app(
        layer(DetailMode::Verbose)
            .api_key(ApiKeyAuthenticator::new(check_key).header("api-key"))
            .throttle(Throttle::new().api_key_prefix(6).per_identity(3, MINUTE)),
    );
    let key_from = |key: &str, peer: &str| from(get("/r", &[("api-key", key)]), peer);
    for i in 0..3 {
        let out = send(
            app.clone(),
            key_from(&format!("acme01-unknown-{i:04}"), &peer(i)),
        )
        .await;
        refused(&out);
    }
    throttled(&send(app.clone(), key_from("acme01-another-key", "203.0.113.77")).await);
}
