//! The demo's throttling, as a process (shared/spec/demo.md: `/basic`, `/key`,
//! `DEMO_THROTTLE_FAILURES`, `DEMO_REDIS_URL`): after the count of failed attempts from one
//! client address within 60 s, `/basic` and `/key` answer 429 `throttled` with
//! `Retry-After` and no challenge, even to the right credentials; the two routes share one
//! count; other addresses are unaffected; Bearer routes are not throttled; and two demo
//! processes sharing one Redis count as one.
//!
//! Each test starts its own demo (the compiled `examples/demo.rs`) and, where it needs
//! one, its own Redis (tests/common/redis.rs: skipped where `redis-server` cannot be had,
//! except in CI, where it must run). Different clients are told apart with
//! `X-Forwarded-For` from a demo that trusts loopback as its proxy
//! (`DEMO_TRUSTED_PROXIES=127.0.0.1/32`).

mod common;
use common::redis::Redis;
use common::{basic, bearer, claims, sign, Value};

use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fresh Redis, or return (the suite skips outside CI when none can be had).
macro_rules! redis_or_skip {
    () => {
        match Redis::start() {
            Some(r) => r,
            None => return,
        }
    };
}

/// Trust loopback as a proxy: `X-Forwarded-For` then names the client.
const BEHIND_PROXY: (&str, &str) = ("DEMO_TRUSTED_PROXIES", "127.0.0.1/32");

/// A demo process with JSON logs on a free loopback port, killed when dropped.
struct Demo {
    child: Child,
    base: String,
    lines: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl Demo {
    /// The demo with `env`, once it listens.
    fn start(env: &[(&str, &str)]) -> Demo {
        let mut child = common::examples::spawn_demo(env);
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some((_, rest)) = line.split_once("listening on http://") {
                    let addr = rest.split([' ', '"']).next().unwrap_or_default();
                    let _ = tx.send(addr.to_owned());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the demo did not start: {:#?}", lines.lock().unwrap());
            }
        };
        Demo {
            child,
            base: format!("http://{addr}"),
            lines,
            http: reqwest::Client::new(),
        }
    }

    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The JSON log event with `request_id`, waiting up to 3 s for it.
    fn event(&self, request_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let found = self.lines.lock().unwrap().iter().find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                (v["request_id"] == request_id).then_some(v)
            });
            if let Some(v) = found {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no event for {request_id}: {}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// GET `path` with `headers`.
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut req = self.http.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    /// GET `path` as `client` (its `X-Forwarded-For`; `None`: the loopback peer itself)
    /// with `credential` (`("authorization", ..)` or `("x-api-key", ..)`).
    async fn attempt(&self, path: &str, client: Option<&str>, credential: (&str, &str)) -> Answer {
        let mut headers = vec![credential];
        if let Some(ip) = client {
            headers.push(("x-forwarded-for", ip));
        }
        self.get(path, &headers).await
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the demo answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Value,
}

impl Answer {
    fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or_default()
    }

    /// 200, from the handler.
    #[track_caller]
    fn ok(&self) {
        assert_eq!(self.status, 200, "{self:?}");
    }

    /// A refusal for `reason` with `status`, and a challenge (every 401 here has one).
    #[track_caller]
    fn refused(&self, status: u16, reason: &str) {
        assert_eq!((self.status, self.reason()), (status, reason), "{self:?}");
        if status == 401 {
            assert!(self.headers.contains_key("www-authenticate"), "{self:?}");
        }
    }

    /// 429 `throttled`: `Retry-After` in whole seconds within `retry`, no challenge, a
    /// problem body. Returns the seconds.
    #[track_caller]
    fn throttled(&self, retry: std::ops::RangeInclusive<u64>) -> u64 {
        assert_eq!((self.status, self.reason()), (429, "throttled"), "{self:?}");
        assert!(
            !self.headers.contains_key("www-authenticate"),
            "a 429 challenges nothing: {self:?}"
        );
        let content_type = self.headers["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("application/problem+json"),
            "{content_type}"
        );
        assert_eq!(self.body["status"], 429, "{self:?}");
        let secs: u64 = self.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("Retry-After is whole seconds ({e}): {self:?}"));
        assert!(retry.contains(&secs), "Retry-After {secs} not in {retry:?}");
        secs
    }
}

fn alice() -> String {
    basic("alice", "wonderland")
}

fn wrong(user: &str) -> String {
    basic(user, "not-the-password")
}

// ---------------------------------------------------------------------------------------
// 1. One process
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn ten_failures_then_even_the_right_password_is_429_throttled() {
    let demo = Demo::start(&[]);
    let (right, bad) = (alice(), wrong("alice"));
    demo.attempt("/basic", None, ("authorization", &right))
        .await
        .ok();
    for i in 1..=10 {
        let a = demo.attempt("/basic", None, ("authorization", &bad)).await;
        assert_eq!(a.status, 401, "failure {i} is answered as usual: {a:?}");
        a.refused(401, "basic_password_mismatch");
    }
    // The 11th attempt, with the right password: refused before it is checked.
    let a = demo
        .get(
            "/basic",
            &[("authorization", &right), ("x-request-id", "throttled-1")],
        )
        .await;
    // 10 within 60 s: the first block is 6 s.
    a.throttled(1..=6);
    let event = demo.event("throttled-1");
    assert_eq!(event["reason"], "throttled", "{event}");
    // And /key too: the client is blocked, whatever it presents next.
    demo.attempt("/key", None, ("x-api-key", "demo-key-123"))
        .await
        .throttled(1..=6);
    assert!(
        !demo.output().contains("not-the-password") && !demo.output().contains(&bad),
        "the log holds no password"
    );
}

#[tokio::test]
async fn failures_on_key_and_basic_add_up_to_one_count() {
    let demo = Demo::start(&[]);
    for _ in 0..6 {
        demo.attempt("/key", None, ("x-api-key", "guessed-key"))
            .await
            .refused(401, "api_key_unknown");
    }
    // An unknown user counts as a wrong password does.
    for i in 0..4 {
        let user = format!("guess-{i}");
        demo.attempt("/basic", None, ("authorization", &wrong(&user)))
            .await
            .refused(401, "basic_user_unknown");
    }
    demo.attempt("/basic", None, ("authorization", &alice()))
        .await
        .throttled(1..=6);
    demo.attempt("/key", None, ("x-api-key", "demo-key-123"))
        .await
        .throttled(1..=6);
}

#[tokio::test]
async fn demo_throttle_failures_sets_the_count() {
    let demo = Demo::start(&[("DEMO_THROTTLE_FAILURES", "3")]);
    for _ in 0..3 {
        demo.attempt("/key", None, ("x-api-key", "guessed-key"))
            .await
            .refused(401, "api_key_unknown");
    }
    // 3 within 60 s: the first block is 20 s.
    demo.attempt("/key", None, ("x-api-key", "demo-key-123"))
        .await
        .throttled(14..=20);
    demo.attempt("/basic", None, ("authorization", &alice()))
        .await
        .throttled(14..=20);

    // The default demo is still answering the 4th failure as a failure.
    let default = Demo::start(&[]);
    for _ in 0..4 {
        default
            .attempt("/key", None, ("x-api-key", "guessed-key"))
            .await
            .refused(401, "api_key_unknown");
    }
    default
        .attempt("/key", None, ("x-api-key", "demo-key-123"))
        .await
        .ok();
}

#[tokio::test]
async fn what_guesses_nothing_is_not_counted() {
    let demo = Demo::start(&[("DEMO_THROTTLE_FAILURES", "3")]);
    let mallory = basic("mallory", "mallory-pass");
    for _ in 0..5 {
        // No credential, a revoked key, a disabled account: refused, never counted.
        demo.get("/basic", &[])
            .await
            .refused(401, "credentials_missing");
        demo.attempt("/key", None, ("x-api-key", "demo-key-revoked"))
            .await
            .refused(401, "api_key_revoked");
        demo.attempt("/basic", None, ("authorization", &mallory))
            .await
            .refused(403, "account_disabled");
        // Nor are successes.
        demo.attempt("/basic", None, ("authorization", &alice()))
            .await
            .ok();
    }
    demo.attempt("/key", None, ("x-api-key", "demo-key-123"))
        .await
        .ok();
}

#[tokio::test]
async fn one_blocked_client_does_not_block_another() {
    let demo = Demo::start(&[BEHIND_PROXY]);
    let (blocked, other) = (Some("203.0.113.1"), Some("203.0.113.2"));
    let bad = wrong("alice");
    for _ in 0..10 {
        demo.attempt("/basic", blocked, ("authorization", &bad))
            .await
            .refused(401, "basic_password_mismatch");
    }
    demo.attempt("/basic", blocked, ("authorization", &alice()))
        .await
        .throttled(1..=6);
    demo.attempt("/key", blocked, ("x-api-key", "demo-key-123"))
        .await
        .throttled(1..=6);
    // Another client, even in the same user's name (its 10 failures are far from the
    // identity's budget), and the proxy's own address, are answered as usual.
    for client in [other, Some("203.0.113.3, 127.0.0.1"), None] {
        demo.attempt("/basic", client, ("authorization", &alice()))
            .await
            .ok();
        demo.attempt("/key", client, ("x-api-key", "demo-key-123"))
            .await
            .ok();
        demo.attempt("/key", client, ("x-api-key", "guessed-key"))
            .await
            .refused(401, "api_key_unknown");
    }
    // The blocked client still is.
    demo.attempt("/basic", blocked, ("authorization", &alice()))
        .await
        .throttled(1..=6);
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_does_not_make_another_client() {
    // No trusted proxy: the header is the client's own word, and every attempt is the
    // loopback peer's.
    let demo = Demo::start(&[]);
    for i in 1..=10 {
        let spoofed = format!("198.51.100.{i}");
        demo.attempt("/key", Some(&spoofed), ("x-api-key", "guessed-key"))
            .await
            .refused(401, "api_key_unknown");
    }
    demo.attempt("/key", Some("198.51.100.99"), ("x-api-key", "demo-key-123"))
        .await
        .throttled(1..=6);
}

#[tokio::test]
async fn bearer_routes_are_not_throttled() {
    let demo = Demo::start(&[("DEMO_THROTTLE_FAILURES", "3")]);
    let demo_claims = claims(json!({ "iss": "https://issuer.demo.local", "aud": "demo-api" }));
    let forged = sign(
        &Header::default(),
        &demo_claims,
        &EncodingKey::from_secret(b"not-the-demo-secret"),
    );
    for _ in 0..20 {
        let a = demo
            .attempt("/me", None, ("authorization", &bearer(&forged)))
            .await;
        a.refused(401, "token_signature_invalid");
    }
    let good = sign(
        &Header::default(),
        &demo_claims,
        &EncodingKey::from_secret(b"demo-hs256-secret"),
    );
    demo.attempt("/me", None, ("authorization", &bearer(&good)))
        .await
        .ok();
    // Nor do they count towards /basic and /key.
    demo.attempt("/basic", None, ("authorization", &alice()))
        .await
        .ok();
    demo.attempt("/key", None, ("x-api-key", "demo-key-123"))
        .await
        .ok();
}

// ---------------------------------------------------------------------------------------
// 2. Two processes sharing one Redis
// ---------------------------------------------------------------------------------------

/// Two demo processes on `redis`, one secret (the throttling key is derived from it), one
/// trusted proxy (loopback), and `env`.
fn two_replicas(redis: &Redis, secret: &str, env: &[(&str, &str)]) -> (Demo, Demo) {
    let url = redis.url();
    let mut all = vec![
        ("DEMO_REDIS_URL", url.as_str()),
        ("DEMO_JWT_SECRET", secret),
        BEHIND_PROXY,
    ];
    all.extend_from_slice(env);
    let (a, b) = (Demo::start(&all), Demo::start(&all));
    (a, b)
}

/// What Redis holds for throttling: keys named by HMACs, never an address or a user name.
#[track_caller]
fn throttle_keys(redis: &Redis, never: &[&str]) -> Vec<String> {
    let keys = redis.keys("auth-diagnostics:throttle*");
    for key in &keys {
        for text in never {
            assert!(!key.contains(text), "{key} names {text}");
        }
    }
    keys
}

#[tokio::test]
async fn twenty_failures_spread_over_two_processes_throttle_the_client_on_both() {
    let redis = redis_or_skip!();
    let (a, b) = two_replicas(
        &redis,
        "demo-throttle-secret-20",
        &[("DEMO_THROTTLE_FAILURES", "20")],
    );
    let client = Some("203.0.113.20");
    let bad = wrong("alice");
    // 10 each, alternating: neither process alone saw more than half the count.
    for i in 0..20 {
        let demo = if i % 2 == 0 { &a } else { &b };
        demo.attempt("/basic", client, ("authorization", &bad))
            .await
            .refused(401, "basic_password_mismatch");
    }
    // 20 within 60 s: the first block is 3 s.
    for demo in [&a, &b] {
        demo.attempt("/basic", client, ("authorization", &alice()))
            .await
            .throttled(1..=3);
        demo.attempt("/key", client, ("x-api-key", "demo-key-123"))
            .await
            .throttled(1..=3);
    }
    // Another client is answered as usual by both.
    for demo in [&a, &b] {
        demo.attempt("/key", Some("203.0.113.21"), ("x-api-key", "demo-key-123"))
            .await
            .ok();
    }
    let keys = throttle_keys(&redis, &["203.0.113", "alice"]);
    assert!(
        keys.iter().any(|k| k.contains("throttle-block:")),
        "the block is in Redis: {keys:?}"
    );
}

#[tokio::test]
async fn the_eleventh_attempt_overall_is_429_whichever_process_gets_it() {
    let redis = redis_or_skip!();
    let (a, b) = two_replicas(&redis, "demo-throttle-secret-10", &[]);
    // Client X's 10th failure is on B and its 11th attempt on A; client Y's the other way.
    for (client, first, second) in [("203.0.113.30", &a, &b), ("203.0.113.31", &b, &a)] {
        for i in 0..10 {
            let demo = if i % 2 == 0 { first } else { second };
            demo.attempt("/key", Some(client), ("x-api-key", "guessed-key"))
                .await
                .refused(401, "api_key_unknown");
        }
        first
            .attempt("/key", Some(client), ("x-api-key", "demo-key-123"))
            .await
            .throttled(1..=6);
        second
            .attempt("/basic", Some(client), ("authorization", &alice()))
            .await
            .throttled(1..=6);
    }
    // A client with 9 failures over both is still answered.
    let nine = Some("203.0.113.32");
    for i in 0..9 {
        let demo = if i % 2 == 0 { &a } else { &b };
        demo.attempt("/key", nine, ("x-api-key", "guessed-key"))
            .await
            .refused(401, "api_key_unknown");
    }
    for demo in [&a, &b] {
        demo.attempt("/key", nine, ("x-api-key", "demo-key-123"))
            .await
            .ok();
    }
    throttle_keys(&redis, &["203.0.113"]);

    // Demos with another secret share the Redis but not the counts.
    let (c, _d) = two_replicas(&redis, "another-service-secret", &[]);
    c.attempt("/key", Some("203.0.113.30"), ("x-api-key", "demo-key-123"))
        .await
        .ok();
}

/// With a shared store a block stays the blocked key's: another client in the same user's
/// name is answered as usual (as by a demo on its own:
/// `one_blocked_client_does_not_block_another`), and a blocked client cannot lock other
/// users' names out by sending them.
#[tokio::test]
async fn a_blocked_address_does_not_block_user_names_for_other_clients_when_shared() {
    let redis = redis_or_skip!();
    let (a, b) = two_replicas(&redis, "demo-throttle-secret-names", &[]);
    let attacker = Some("203.0.113.40");
    // 10 failures in alice's name on A: the address is blocked; alice's name has 10 of
    // the 30 its budget allows.
    for _ in 0..10 {
        a.attempt("/basic", attacker, ("authorization", &wrong("alice")))
            .await
            .refused(401, "basic_password_mismatch");
    }
    a.attempt("/basic", attacker, ("authorization", &alice()))
        .await
        .throttled(1..=6);
    // B learns of the block from Redis, on a request in bob's name.
    b.attempt("/basic", attacker, ("authorization", &wrong("bob")))
        .await
        .throttled(1..=6);
    // Alice and bob, from their own address.
    let own = Some("203.0.113.41");
    let seen = [
        (
            "alice on A",
            a.attempt("/basic", own, ("authorization", &alice())).await,
        ),
        (
            "alice on B",
            b.attempt("/basic", own, ("authorization", &alice())).await,
        ),
        (
            "bob on B",
            b.attempt("/basic", own, ("authorization", &wrong("bob")))
                .await,
        ),
    ];
    let got: Vec<(&str, u16)> = seen.iter().map(|(who, a)| (*who, a.status)).collect();
    assert_eq!(
        got,
        [("alice on A", 200), ("alice on B", 200), ("bob on B", 401)],
        "a block learnt from the shared store was copied to the user name the blocked \
         address sent (Throttle::record and Throttle::check_shared block every key of the \
         request): {seen:#?}"
    );
}
