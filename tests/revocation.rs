//! The revocation list (`AuthDiagnostics::revocation`): a token revoked by `jti`, `sid` or
//! `sub` (issued before the revocation) is 401 `token_revoked` with `invalid_token`, a
//! revoked session 401 `session_revoked`; a list that cannot be read is 503
//! `revocation_unavailable` by default, accepted (and logged at ERROR) when failing open;
//! the in-memory list stays within its capacity.

mod common;
use common::*;

use auth_diagnostics::failure::AuthFailure;
use auth_diagnostics::session::{SessionAuthenticator, SessionCookie};
use auth_diagnostics::store::{
    CredentialIds, MemoryRevocationList, Revocation, RevocationFuture, RevocationList, RevokedBy,
    StoreError,
};
use auth_diagnostics::Principal;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The test Bearer app behind a layer checking `list`.
fn app(list: &Arc<MemoryRevocationList>) -> axum::Router {
    bearer_app(layer(DetailMode::Verbose).revocation(list.clone()))
}

async fn me(app: axum::Router, token: &str) -> Outcome {
    send(app, get("/me", &[("authorization", &bearer(token))])).await
}

/// A 401 `reason` with a Bearer challenge saying `invalid_token`, logged with the reason.
#[track_caller]
fn assert_revoked_token(out: &Outcome) {
    assert_eq!(out.status, 401, "{}", out.text());
    assert_eq!(out.problem()["reason"], "token_revoked");
    let challenges = out.challenges();
    let bearer = challenges.iter().find(|c| c.scheme == "Bearer");
    let bearer = bearer.unwrap_or_else(|| panic!("no Bearer challenge: {challenges:?}"));
    assert_eq!(bearer.param("error"), Some("invalid_token"));
    assert_eq!(out.event().field("reason"), "token_revoked");
    // The token did verify: the log says so.
    assert_eq!(out.event().field("signature_verified"), "true");
}

#[tokio::test]
async fn a_token_revoked_by_jti_is_refused_and_others_pass() {
    let list = Arc::new(MemoryRevocationList::new());
    let revoked = hs256(&claims(json!({ "jti": "t-1" })));
    let other = hs256(&claims(json!({ "jti": "t-2" })));
    assert_eq!(me(app(&list), &revoked).await.status, 200);
    list.revoke(Revocation::jti("t-1")).await.unwrap();
    let out = me(app(&list), &revoked).await;
    assert_revoked_token(&out);
    out.check(&expect("token_revoked").verbose());
    assert!(
        out.event().field("message").contains("jti"),
        "{:?}",
        out.event()
    );
    assert_eq!(me(app(&list), &other).await.status, 200);
}

#[tokio::test]
async fn a_token_of_a_revoked_session_is_refused() {
    let list = Arc::new(MemoryRevocationList::new());
    let token = hs256(&claims(json!({ "sid": "session-9" })));
    list.revoke(Revocation::sid("session-9")).await.unwrap();
    assert_revoked_token(&me(app(&list), &token).await);
}

#[tokio::test]
async fn a_sub_revocation_spares_tokens_issued_after_it() {
    let list = Arc::new(MemoryRevocationList::new());
    let t = now();
    let before = hs256(&claims(json!({ "iat": t - 20 })));
    let after = hs256(&claims(json!({ "iat": t })));
    let no_iat = hs256(&claims(json!({ "iat": null })));
    let cut = SystemTime::now() - Duration::from_secs(10);
    list.revoke(Revocation::sub_issued_before("alice", cut))
        .await
        .unwrap();
    assert_revoked_token(&me(app(&list), &before).await);
    assert_revoked_token(&me(app(&list), &no_iat).await);
    assert_eq!(me(app(&list), &after).await.ok()["sub"], "alice");
    // Someone else's tokens are untouched.
    let bob = hs256(&claims(json!({ "sub": "bob", "iat": t - 20 })));
    assert_eq!(me(app(&list), &bob).await.status, 200);
}

/// alice's session `s-1` (its id given with `Principal::with_session_id`).
async fn check_session(SessionCookie(id): SessionCookie) -> Result<Principal, AuthFailure> {
    match id.expose() {
        "s-1" => Ok(Principal::new("alice").with_session_id("session-1")),
        "s-2" => Ok(Principal::new("bob").with_session_id("session-2")),
        _ => Err(AuthFailure::new(Reason::SessionInvalid)),
    }
}

fn session_app(list: &Arc<MemoryRevocationList>) -> axum::Router {
    scheme_app(
        layer(DetailMode::Verbose)
            .session(SessionAuthenticator::new("sid", check_session))
            .revocation(list.clone()),
    )
}

#[tokio::test]
async fn a_revoked_session_is_refused_by_sid_or_sub() {
    let list = Arc::new(MemoryRevocationList::new());
    let cookie = |s: &str| get("/r", &[("cookie", &format!("sid={s}"))]);
    assert_eq!(send(session_app(&list), cookie("s-1")).await.status, 200);
    list.revoke(Revocation::sid("session-1")).await.unwrap();
    let out = send(session_app(&list), cookie("s-1")).await;
    assert_eq!(out.status, 401, "{}", out.text());
    assert_eq!(out.problem()["reason"], "session_revoked");
    assert_eq!(out.event().field("reason"), "session_revoked");
    out.check(&expect("session_revoked").verbose().schemes(&["Cookie"]));
    assert!(out.challenge().param("error").is_none());
    assert_eq!(send(session_app(&list), cookie("s-2")).await.status, 200);
    list.revoke(Revocation::sub("bob")).await.unwrap();
    let out = send(session_app(&list), cookie("s-2")).await;
    assert_eq!(out.problem()["reason"], "session_revoked");
}

/// A list whose store is down.
#[derive(Debug)]
struct Down;

impl RevocationList for Down {
    fn revoke(&self, _: Revocation) -> RevocationFuture<()> {
        Box::pin(async { Err(StoreError::new("connection refused")) })
    }
    fn check(&self, _: CredentialIds) -> RevocationFuture<Option<RevokedBy>> {
        Box::pin(async { Err(StoreError::new("connection refused")) })
    }
}

#[tokio::test]
async fn an_unreadable_list_fails_closed_by_default() {
    let token = hs256(&good_claims());
    let out = me(
        bearer_app(layer(DetailMode::Verbose).revocation(Down)),
        &token,
    )
    .await;
    assert_eq!(out.status, 503, "{}", out.text());
    assert_eq!(out.problem()["reason"], "revocation_unavailable");
    assert!(out.header("retry-after").is_some());
    out.check(&expect("revocation_unavailable").verbose());
    assert!(out.header("www-authenticate").is_none());
    let e = out.event();
    assert_eq!(e.level, Level::ERROR);
    assert!(e.field("message").contains("connection refused"), "{e:?}");
}

#[tokio::test]
async fn failing_open_accepts_and_logs_at_error() {
    let token = hs256(&good_claims());
    let layer = layer(DetailMode::Verbose)
        .revocation(Down)
        .revocation_fails_open();
    let out = me(bearer_app(layer), &token).await;
    assert_eq!(out.status, 200, "{}", out.text());
    assert_eq!(out.json()["sub"], "alice");
    let errors: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.level == Level::ERROR)
        .collect();
    assert_eq!(errors.len(), 1, "{:?}", out.events);
    assert!(errors[0].field("error").contains("connection refused"));
}

#[test]
fn failing_open_without_a_list_is_a_configuration_error() {
    use auth_diagnostics::layer::ConfigError;
    let errors = AuthDiagnostics::new()
        .revocation_fails_open()
        .try_build()
        .unwrap_err();
    let all: Vec<&ConfigError> = errors.iter().collect();
    assert_eq!(all, [&ConfigError::RevocationFailsOpenWithoutList]);
}

#[tokio::test]
async fn basic_principals_are_not_asked_about() {
    // Revoking `sub` alice does not touch credentials the application verifies itself
    // without a session.
    let list = Arc::new(MemoryRevocationList::new());
    list.revoke(Revocation::sub("alice")).await.unwrap();
    let app = scheme_app(
        layer(DetailMode::Verbose)
            .basic(auth_diagnostics::basic::BasicAuthenticator::new(
                check_password,
            ))
            .revocation(list.clone()),
    );
    let out = send(
        app,
        get("/r", &[("authorization", &basic("alice", ALICE_PW))]),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text());
}

#[tokio::test]
async fn the_memory_list_stays_within_its_capacity() {
    let capacity = 10_000;
    let list = MemoryRevocationList::new().capacity(capacity);
    let mut refused = 0;
    for i in 0..(3 * capacity) {
        if list
            .revoke(Revocation::jti(format!("jti-{i}")))
            .await
            .is_err()
        {
            refused += 1;
        }
        assert!(list.len() <= capacity);
    }
    assert_eq!(list.len(), capacity);
    assert_eq!(
        refused,
        2 * capacity,
        "every revocation past the capacity is refused"
    );
    // What is listed stays listed; renewing a listed entry still works.
    list.revoke(Revocation::jti("jti-0")).await.unwrap();
    let mut ids = CredentialIds::default();
    ids.jti = Some(format!("jti-{}", capacity - 1));
    assert_eq!(list.check(ids).await.unwrap(), Some(RevokedBy::Jti));
}

// =======================================================================================
// The demo's POST /revoke (shared/spec/demo.md, "Added in this round")
// =======================================================================================

fn post_revoke(token: &str, body: &str) -> http::Request<axum::body::Body> {
    http::Request::post("/revoke")
        .header("authorization", bearer(token))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_owned()))
        .unwrap()
}

fn admin_token() -> String {
    hs256(&claims(json!({ "sub": "root", "scope": "admin" })))
}

#[tokio::test]
async fn the_demo_revokes_a_jti_on_every_route_for_an_admin_only() {
    let demo = demo_app(DetailMode::Verbose);
    let token = hs256(&claims(json!({ "jti": "demo-jti-1" })));
    let body = r#"{"jti": "demo-jti-1"}"#;
    // Without scope admin: 403, and nothing is revoked.
    let out = send(demo.clone(), post_revoke(&token, body)).await;
    assert_eq!(out.status, 403, "{}", out.text());
    assert_eq!(out.problem()["reason"], "insufficient_scope");
    assert_eq!(me(demo.clone(), &token).await.status, 200);

    let out = send(demo.clone(), post_revoke(&admin_token(), body)).await;
    assert_eq!(out.status, 204, "{}", out.text());
    for path in ["/me", "/orders", "/maybe", "/any"] {
        let out = send(
            demo.clone(),
            get(path, &[("authorization", &bearer(&token))]),
        )
        .await;
        assert_revoked_token(&out);
    }
    // Another token of alice's still works.
    let other = hs256(&claims(json!({ "jti": "demo-jti-2" })));
    assert_eq!(me(demo.clone(), &other).await.status, 200);
}

#[tokio::test]
async fn the_demo_revokes_the_session_s_valid_by_sid_and_by_sub() {
    let session = || get("/session", &[("cookie", "demo_session=s-valid")]);
    for body in [r#"{"sid": "demo-session-1"}"#, r#"{"sub": "alice"}"#] {
        let demo = demo_app(DetailMode::Verbose);
        assert_eq!(send(demo.clone(), session()).await.status, 200);
        let out = send(demo.clone(), post_revoke(&admin_token(), body)).await;
        assert_eq!(out.status, 204, "{body}: {}", out.text());
        let out = send(demo.clone(), session()).await;
        assert_eq!(out.status, 401, "{body}: {}", out.text());
        assert_eq!(out.problem()["reason"], "session_revoked", "{body}");
    }
}

#[tokio::test]
async fn the_demo_revokes_a_sub_and_spares_its_later_tokens() {
    let demo = demo_app(DetailMode::Verbose);
    let earlier = hs256(&claims(json!({ "iat": now() - 5 })));
    let sid = hs256(&claims(json!({ "sub": "carol", "sid": "demo-session-7" })));
    let out = send(
        demo.clone(),
        post_revoke(&admin_token(), r#"{"sub": "alice"}"#),
    )
    .await;
    assert_eq!(out.status, 204, "{}", out.text());
    assert_revoked_token(&me(demo.clone(), &earlier).await);
    // Issued after the call (within the demo's 30 s leeway for iat).
    let later = hs256(&claims(json!({ "iat": now() + 2 })));
    assert_eq!(me(demo.clone(), &later).await.status, 200);
    // A token's sid claim is revoked with its session.
    let out = send(
        demo.clone(),
        post_revoke(&admin_token(), r#"{"sid": "demo-session-7"}"#),
    )
    .await;
    assert_eq!(out.status, 204, "{}", out.text());
    assert_revoked_token(&me(demo.clone(), &sid).await);
    // A body that names nothing: 400.
    let out = send(
        demo.clone(),
        post_revoke(&admin_token(), r#"{"who": "alice"}"#),
    )
    .await;
    assert_eq!(out.status, 400, "{}", out.text());
}

// =======================================================================================
// DPoP: the same check after the proof and the token verified
// =======================================================================================

const EC256_X: &str = "mOdDdERtdUohEyBt2KLtjJqOcsoVVNPdyU8N2gjwXH4";
const EC256_Y: &str = "QWuiB8Ik1G8LXz9lLyLF3EbQKzVu2Cu0QCHoahdvOSs";

/// A DPoP proof by the suite's P-256 key for `GET http://api.test/me`, bound to `token`.
fn dpop_proof(token: &str, jti: &str) -> String {
    use sha2::{Digest, Sha256};
    let jwk = json!({ "kty": "EC", "crv": "P-256", "x": EC256_X, "y": EC256_Y });
    let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": jwk });
    let claims = json!({
        "jti": jti,
        "htm": "GET",
        "htu": "http://api.test/me",
        "iat": now(),
        "ath": b64url(&Sha256::digest(token.as_bytes())),
    });
    let part = |v: &Value| b64url(&serde_json::to_vec(v).unwrap());
    let message = format!("{}.{}", part(&header), part(&claims));
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/keys/ec256_private.pem"
    ))
    .unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap();
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::ES256)
        .unwrap();
    format!("{message}.{sig}")
}

#[tokio::test]
async fn a_revoked_dpop_bound_token_is_refused_with_a_dpop_challenge() {
    use sha2::{Digest, Sha256};
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{EC256_X}","y":"{EC256_Y}"}}"#);
    let jkt = b64url(&Sha256::digest(canonical.as_bytes()));
    let token = hs256(&claims(json!({ "jti": "bound-1", "cnf": { "jkt": jkt } })));
    let list = Arc::new(MemoryRevocationList::new());
    let dpop = auth_diagnostics::dpop::Dpop::new(jwt()).public_origin("http://api.test");
    let app = axum::Router::new()
        .route(
            "/me",
            axum::routing::get(|p: Principal| async move { p.id().unwrap_or("").to_owned() }),
        )
        .layer(
            layer(DetailMode::Verbose)
                .dpop(dpop)
                .revocation(list.clone()),
        );
    let req = |jti: &str| {
        let proof = dpop_proof(&token, jti);
        let auth = format!("DPoP {token}");
        get(
            "/me",
            &[
                ("host", "api.test"),
                ("authorization", &auth),
                ("dpop", &proof),
            ],
        )
    };
    let out = send(app.clone(), req("p-1")).await;
    assert_eq!(out.status, 200, "{}", out.text());
    list.revoke(Revocation::jti("bound-1")).await.unwrap();
    let out = send(app, req("p-2")).await;
    assert_eq!(out.status, 401, "{}", out.text());
    assert_eq!(out.problem()["reason"], "token_revoked");
    let challenge = out.challenges().into_iter().find(|c| c.scheme == "DPoP");
    let challenge = challenge.expect("a DPoP challenge");
    assert_eq!(challenge.param("error"), Some("invalid_token"));
}

// =======================================================================================
// The memory a full list holds (documented: about 6 MiB at 100 000 entries)
// =======================================================================================

/// Counts the bytes each thread holds from the allocator (net of frees), so one test can
/// measure its own structures while others run.
struct Counting;

thread_local! {
    static HELD: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
}

fn held(delta: isize) {
    let _ = HELD.try_with(|h| h.set(h.get() + delta));
}

// SAFETY: every call is passed to the system allocator unchanged; only counted.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        held(layout.size() as isize);
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        held(-(layout.size() as isize));
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        held(new as isize - layout.size() as isize);
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

#[tokio::test(flavor = "current_thread")]
async fn a_full_default_list_holds_under_7_mib() {
    let before = HELD.with(|h| h.get());
    let list = MemoryRevocationList::new();
    let mut i = 0u64;
    while list.revoke(Revocation::jti(format!("j{i}"))).await.is_ok() {
        i += 1;
    }
    let bytes = HELD.with(|h| h.get()) - before;
    eprintln!(
        "{} revocations hold {} bytes ({:.1} MiB)",
        list.len(),
        bytes,
        bytes as f64 / 1048576.0
    );
    assert_eq!(list.len(), 100_000);
    assert!(bytes <= 7 * 1024 * 1024, "{bytes} bytes");
}

// =======================================================================================
// Shared through Redis: a revocation on one replica is seen by the others
// =======================================================================================

#[tokio::test]
async fn a_revocation_through_redis_holds_on_every_replica() {
    use auth_diagnostics::store::RedisStore;
    let Some(mut redis) = common::redis::Redis::start() else {
        return;
    };
    let store = || {
        RedisStore::open(&redis.url())
            .unwrap()
            .timeout(Duration::from_millis(500))
    };
    let (one, two) = (store(), store());
    let replica = |s: &RedisStore| bearer_app(layer(DetailMode::Verbose).revocation(s.clone()));
    let t = now();
    let token = hs256(&claims(json!({ "jti": "shared-1", "iat": t - 20 })));
    let later = hs256(&claims(json!({ "jti": "shared-2", "iat": t })));
    assert_eq!(me(replica(&two), &token).await.status, 200);

    one.revoke(Revocation::jti("shared-1")).await.unwrap();
    assert_revoked_token(&me(replica(&two), &token).await);
    assert_eq!(me(replica(&two), &later).await.status, 200);
    let cut = SystemTime::now() - Duration::from_secs(10);
    one.revoke(Revocation::sub_issued_before("alice", cut))
        .await
        .unwrap();
    // A later, earlier cut never shortens the first one.
    two.revoke(Revocation::sub_issued_before(
        "alice",
        cut - Duration::from_secs(60),
    ))
    .await
    .unwrap();
    let old = hs256(&claims(json!({ "jti": "shared-3", "iat": t - 20 })));
    assert_revoked_token(&me(replica(&two), &old).await);
    assert_eq!(me(replica(&one), &later).await.status, 200);
    // Each entry expires with the tokens it can match (24 h by default).
    let keys = redis.keys("auth-diagnostics:revoked:*");
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in keys {
        let ttl = redis.ttl(&key);
        assert!((24 * 3600 - 60..=24 * 3600).contains(&ttl), "{key}: {ttl}");
    }

    // Redis gone: fail closed (503), or open when the application chose so.
    redis.stop();
    let out = me(replica(&two), &later).await;
    assert_eq!(out.status, 503, "{}", out.text());
    assert_eq!(out.problem()["reason"], "revocation_unavailable");
    let open = bearer_app(
        layer(DetailMode::Verbose)
            .revocation(two.clone())
            .revocation_fails_open(),
    );
    assert_eq!(me(open, &later).await.status, 200);
}

#[tokio::test]
async fn two_demos_sharing_a_redis_share_revocations() {
    let Some(redis) = common::redis::Redis::start() else {
        return;
    };
    let mut cfg = demo_config(DetailMode::Verbose);
    cfg.redis_url = Some(redis.url());
    let (one, two) = (demo::app(&cfg), demo::app(&cfg));
    let token = hs256(&claims(json!({ "jti": "demo-shared-1" })));
    assert_eq!(me(two.clone(), &token).await.status, 200);
    let body = r#"{"jti": "demo-shared-1"}"#;
    let out = send(one, post_revoke(&admin_token(), body)).await;
    assert_eq!(out.status, 204, "{}", out.text());
    assert_revoked_token(&me(two, &token).await);
}

// =======================================================================================
// Introspected (opaque) tokens are checked against the list like JWTs
// =======================================================================================

/// An RFC 7662 endpoint on 127.0.0.1 that calls every token active with `answer`.
async fn endpoint(answer: serde_json::Value) -> String {
    let app = axum::Router::new().route(
        "/introspect",
        axum::routing::post(move || async move { axum::Json(answer) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn an_introspected_token_is_refused_by_its_jti_sid_or_sub() {
    use auth_diagnostics::introspection::Introspector;
    let answer = json!({
        "active": true, "sub": "dave", "jti": "opaque-jti-1", "sid": "opaque-sid-1",
        "aud": AUDIENCE, "iat": now() - 10, "exp": now() + 600,
    });
    let url = endpoint(answer).await;
    for revocation in [
        Revocation::jti("opaque-jti-1"),
        Revocation::sid("opaque-sid-1"),
        Revocation::sub("dave"),
    ] {
        let list = Arc::new(MemoryRevocationList::new());
        let opaque = Introspector::new(&url)
            .without_client_authentication()
            .allow_http()
            .audience(AUDIENCE);
        let app = bearer_app(
            layer(DetailMode::Verbose)
                .introspection(opaque)
                .revocation(list.clone()),
        );
        let out = me(app.clone(), "an-opaque-token").await;
        assert_eq!(out.status, 200, "{revocation:?}: {}", out.text());
        list.revoke(revocation.clone()).await.unwrap();
        // The answer is cached: the list is checked on every request all the same.
        let out = me(app, "an-opaque-token").await;
        assert_eq!(out.status, 401, "{revocation:?}: {}", out.text());
        assert_eq!(out.problem()["reason"], "token_revoked", "{revocation:?}");
        assert_eq!(out.event().field("reason"), "token_revoked");
    }
}
