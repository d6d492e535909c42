//! Introspection answers shared between replicas (`Introspector::shared_cache`): a token
//! one replica introspected costs the others no call; an entry planted or edited in the
//! store never makes a token active; a store that cannot answer only costs a WARN; two
//! demos sharing a Redis introspect a token once.

mod common;
use common::*;

use auth_diagnostics::introspection::{IntrospectionStore, Introspector};
use auth_diagnostics::layer::{ConfigError, IntrospectionMistake};
use auth_diagnostics::store::{StoreError, StoreFuture};
use auth_diagnostics::AuthDiagnostics;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &[u8] = b"replicas-share-this-key-32-bytes";

/// An endpoint on 127.0.0.1 answering from `answers` (else inactive), counting calls.
struct Endpoint {
    url: String,
    calls: Arc<AtomicUsize>,
}

async fn endpoint(answers: HashMap<&'static str, Value>) -> Endpoint {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().route(
        "/introspect",
        axum::routing::post(move |form: axum::Form<HashMap<String, String>>| {
            counted.fetch_add(1, Ordering::SeqCst);
            let token = form.get("token").cloned().unwrap_or_default();
            let answer = answers.get(token.as_str()).cloned();
            async move { axum::Json(answer.unwrap_or_else(|| json!({ "active": false }))) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Endpoint { url, calls }
}

fn active(sub: &str) -> Value {
    json!({ "active": true, "sub": sub, "aud": AUDIENCE, "scope": "read", "exp": now() + 600 })
}

/// A store in memory that tests can look into, break and plant entries in.
#[derive(Debug, Default)]
struct Memory {
    entries: Mutex<HashMap<String, Vec<u8>>>,
    broken: std::sync::atomic::AtomicBool,
}

impl IntrospectionStore for Memory {
    fn load(&self, name: &str) -> StoreFuture<Option<Vec<u8>>> {
        let got = self.entries.lock().unwrap().get(name).cloned();
        let broken = self.broken.load(Ordering::SeqCst);
        Box::pin(async move {
            match broken {
                true => Err(StoreError::new("the store is down")),
                false => Ok(got),
            }
        })
    }

    fn save(&self, name: &str, entry: Vec<u8>, _: Duration) -> StoreFuture<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Box::pin(async { Err(StoreError::new("the store is down")) });
        }
        self.entries.lock().unwrap().insert(name.to_owned(), entry);
        Box::pin(async { Ok(()) })
    }
}

impl IntrospectionStore for ArcMemory {
    fn load(&self, name: &str) -> StoreFuture<Option<Vec<u8>>> {
        self.0.load(name)
    }

    fn save(&self, name: &str, entry: Vec<u8>, ttl: Duration) -> StoreFuture<()> {
        self.0.save(name, entry, ttl)
    }
}

/// One store, handed to several replicas.
#[derive(Debug, Clone)]
struct ArcMemory(Arc<Memory>);

/// A replica: `/me` behind a layer introspecting at `url`, sharing through `store`.
fn replica(url: &str, store: &Arc<Memory>) -> axum::Router {
    let opaque = Introspector::new(url)
        .without_client_authentication()
        .allow_http()
        .audience(AUDIENCE)
        .shared_cache(ArcMemory(store.clone()), KEY);
    bearer_app(AuthDiagnostics::new().verbose().introspection(opaque))
}

async fn me(app: axum::Router, token: &str) -> Outcome {
    send(app, get("/me", &[("authorization", &bearer(token))])).await
}

#[tokio::test]
async fn a_token_one_replica_introspected_costs_the_others_no_call() {
    let ep = endpoint(HashMap::from([("opaque-alice", active("alice"))])).await;
    let store = Arc::new(Memory::default());
    let (one, two, three) = (
        replica(&ep.url, &store),
        replica(&ep.url, &store),
        replica(&ep.url, &store),
    );
    assert_eq!(me(one, "opaque-alice").await.ok()["sub"], "alice");
    assert_eq!(ep.calls.load(Ordering::SeqCst), 1);
    assert_eq!(me(two, "opaque-alice").await.ok()["sub"], "alice");
    assert_eq!(me(three, "opaque-alice").await.ok()["sub"], "alice");
    assert_eq!(ep.calls.load(Ordering::SeqCst), 1, "the others loaded it");
    // The store holds no token.
    let entries = store.entries.lock().unwrap();
    assert_eq!(entries.len(), 1);
    for (name, entry) in entries.iter() {
        assert!(!name.contains("opaque"), "{name}");
        assert!(!String::from_utf8_lossy(entry).contains("opaque-alice"));
    }
}

#[tokio::test]
async fn refusals_are_shared_too() {
    let ep = endpoint(HashMap::new()).await;
    let store = Arc::new(Memory::default());
    let out = me(replica(&ep.url, &store), "never-issued").await;
    assert_eq!(out.problem()["reason"], "token_inactive");
    let out = me(replica(&ep.url, &store), "never-issued").await;
    assert_eq!(out.problem()["reason"], "token_inactive");
    assert_eq!(ep.calls.load(Ordering::SeqCst), 1);
}

/// The one entry the store holds now: its name and bytes.
fn only_entry(store: &Memory) -> (String, String) {
    let entries = store.entries.lock().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let (name, entry) = entries.iter().next().unwrap();
    (name.clone(), String::from_utf8(entry.clone()).unwrap())
}

#[tokio::test]
async fn what_the_store_plants_or_edits_never_makes_a_token_active() {
    let ep = endpoint(HashMap::from([("opaque-alice", active("alice"))])).await;
    let alices = Arc::new(Memory::default());
    assert_eq!(
        me(replica(&ep.url, &alices), "opaque-alice").await.status,
        200
    );
    let (alice_name, alice_entry) = only_entry(&alices);

    // Mallory's token is inactive: its refusal is shared under its name.
    let store = Arc::new(Memory::default());
    let out = me(replica(&ep.url, &store), "mallory-token").await;
    assert_eq!(out.problem()["reason"], "token_inactive");
    let (mallory_name, _) = only_entry(&store);
    assert_ne!(mallory_name, alice_name);

    // Under Mallory's name, whoever writes to the store puts: Alice's sealed active entry,
    // that entry with its answer edited, an entry made up without the key.
    let edited = alice_entry.replace("\"alice\"", "\"mallory\"");
    let made_up = format!(
        "{}|9999999999999|{{\"active\":true,\"sub\":\"mallory\",\"aud\":\"{AUDIENCE}\"}}",
        "0".repeat(64)
    );
    for planted in [alice_entry.clone(), edited, made_up] {
        store
            .entries
            .lock()
            .unwrap()
            .insert(mallory_name.clone(), planted.clone().into_bytes());
        let calls = ep.calls.load(Ordering::SeqCst);
        // A replica that has not seen the token yet: it reads the store, ignores the
        // entry, and asks the endpoint.
        let out = me(replica(&ep.url, &store), "mallory-token").await;
        assert_eq!(out.status, 401, "{planted}: {}", out.text());
        assert_eq!(out.problem()["reason"], "token_inactive");
        assert_eq!(ep.calls.load(Ordering::SeqCst), calls + 1, "{planted}");
    }
}

#[tokio::test]
async fn a_store_that_cannot_answer_costs_a_warn_and_a_call() {
    let ep = endpoint(HashMap::from([("opaque-alice", active("alice"))])).await;
    let store = Arc::new(Memory::default());
    store.broken.store(true, Ordering::SeqCst);
    let out = me(replica(&ep.url, &store), "opaque-alice").await;
    assert_eq!(out.status, 200, "{}", out.text());
    assert_eq!(out.json()["sub"], "alice");
    assert_eq!(ep.calls.load(Ordering::SeqCst), 1);
    // Read and write both failed: two WARNs, saying so and why.
    let warns: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.get("error").is_some())
        .collect();
    assert_eq!(warns.len(), 2, "{:#?}", out.events);
    for w in warns {
        assert_eq!(w.field("error"), "the store is down");
        assert!(
            w.line().contains("shared introspection cache"),
            "{}",
            w.line()
        );
    }
}

#[test]
fn a_short_key_is_a_configuration_error() {
    let opaque = Introspector::new("https://as.test/introspect")
        .without_client_authentication()
        .audience(AUDIENCE)
        .shared_cache(ArcMemory(Arc::default()), b"short");
    let errors = AuthDiagnostics::new()
        .introspection(opaque)
        .try_build()
        .unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| *e
                == ConfigError::Introspection(IntrospectionMistake::SharedCacheKeyTooShort(5)))
    );
}

#[tokio::test]
async fn two_demos_sharing_a_redis_introspect_a_token_once() {
    let Some(redis) = common::redis::Redis::start() else {
        return;
    };
    let ep = endpoint(HashMap::from([("opaque-alice", active("alice"))])).await;
    let mut cfg = demo_config(DetailMode::Verbose);
    cfg.redis_url = Some(redis.url());
    cfg.introspection = Some(demo::DemoIntrospection {
        url: ep.url.clone(),
        client_id: "demo-rs".into(),
        client_secret: "demo-rs-secret".into(),
        cache_s: 60,
    });
    let (one, two) = (demo::app(&cfg), demo::app(&cfg));
    assert_eq!(me(one, "opaque-alice").await.ok()["sub"], "alice");
    assert_eq!(me(two, "opaque-alice").await.ok()["sub"], "alice");
    assert_eq!(
        ep.calls.load(Ordering::SeqCst),
        1,
        "the second demo loaded it from Redis"
    );
}
