//! Opaque tokens, revocation and back-channel logout against a real OpenID provider: npm
//! `oidc-provider` (pinned by interop/package-lock.json) run by interop/oidc-provider.mjs,
//! driving the demo (`examples/demo.rs`) served in-process on a loopback port.
//!
//! The demo is configured as `DEMO_OIDC_ISSUER=<issuer>` (its issuer and keys are the
//! provider's), `DEMO_AUDIENCE=demo-api`, `DEMO_INTROSPECTION_URL=<issuer>/token/introspection`
//! with the provider's resource-server client `demo-rs`/`demo-rs-secret` (the demo's
//! defaults, `client_secret_basic`), and `DEMO_INTROSPECTION_CACHE_S` per test. Tokens are
//! opaque: the client_credentials grant for resource `urn:demo:opaque` (audience
//! `demo-api`, scope `read admin`, 300 s). The provider revokes them by RFC 7009, and logs
//! a session out by sending its own logout token to the demo's `POST /backchannel-logout`
//! (the provider is started with `--backchannel-logout-uri` naming the demo's address,
//! bound before either starts).
//!
//! Every test needs Node (`common::node::interop`): it skips without, except in CI.
//! Multi-threaded runtime: the demo's key source fetches on a task of its own.

mod common;
use common::*;

use common::provider::{Provider, CLIENT, RS_CLIENT};
use reqwest::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::sleep;

/// The provider's resource that gets opaque access tokens.
const OPAQUE: &str = "urn:demo:opaque";
/// Its audience: the demo's default `DEMO_AUDIENCE`.
const DEMO_AUDIENCE: &str = "demo-api";
/// The demo's session cookie and who it belongs to (shared/spec/demo.md).
const SESSION_COOKIE: &str = "demo_session=s-valid";
const SESSION_SUB: &str = "alice";
const SESSION_SID: &str = "demo-session-1";

/// The provider, the demo trusting it (base URL and server task), and an HTTP client.
struct Setup {
    op: Provider,
    base: String,
    _demo: JoinHandle<()>,
    http: reqwest::Client,
}

/// The provider (sending logout tokens to the demo) and the demo (introspecting at the
/// provider, active answers cached at most `cache_s`). `None` without Node outside CI.
async fn setup(cache_s: u64) -> Option<Setup> {
    // The demo's address first: the provider must know where to send logout tokens.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let logout_uri = format!("{base}/backchannel-logout");
    let op = Provider::start_with(0, &["--backchannel-logout-uri", &logout_uri]).await?;
    let mut cfg = demo_config(DetailMode::Verbose);
    cfg.addr = addr.to_string();
    cfg.issuer = op.issuer().to_owned();
    cfg.oidc_issuer = Some(op.issuer().to_owned());
    cfg.audience = DEMO_AUDIENCE.into();
    cfg.introspection = Some(demo::DemoIntrospection {
        url: op.introspection_endpoint(),
        client_id: RS_CLIENT.into(),
        client_secret: common::provider::RS_CLIENT_SECRET.into(),
        cache_s,
    });
    let app = demo::app(&cfg);
    let demo = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Some(Setup {
        op,
        base,
        _demo: demo,
        http: reqwest::Client::new(),
    })
}

/// One answer of the demo: status, headers, body as JSON (`Null` if it is not JSON).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or_default()
    }

    fn header(&self, name: reqwest::header::HeaderName) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or_default())
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?} {}", self.status, self.headers, self.body)
    }
}

impl Setup {
    /// `GET path` on the demo with `headers`.
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut req = self.http.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("demo request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `GET path` with `Authorization: Bearer token`.
    async fn bearer(&self, path: &str, token: &str) -> Answer {
        self.get(path, &[("authorization", &bearer(token))]).await
    }

    /// A fresh opaque access token from the provider, scope `read admin`.
    async fn opaque_token(&self) -> String {
        let token = self.op.token(OPAQUE, "read admin").await;
        assert!(!token.contains('.'), "an opaque token, not a JWS: {token}");
        token
    }
}

/// A 401 `invalid_token` with `reason`.
#[track_caller]
fn assert_invalid_token(a: &Answer, reason: &str) {
    assert_eq!(a.status, 401, "{a:?}");
    assert_eq!(a.reason(), reason, "{a:?}");
    let challenge = a.header(WWW_AUTHENTICATE);
    assert!(
        challenge.starts_with("Bearer") && challenge.contains(r#"error="invalid_token""#),
        "{a:?}"
    );
}

/// (a) An opaque token from the provider is accepted on the Bearer routes, as the client it
/// was issued to (no `sub` for client_credentials: the demo shows `client_id`), with its
/// scope; the provider's JWTs stay local beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opaque_provider_token_is_accepted() {
    let Some(s) = setup(60).await else { return };
    let token = s.opaque_token().await;
    // What the provider says about it, for the record: active, for demo-api, no sub.
    let said = s.op.introspect(&token).await;
    assert_eq!(said["active"], true, "{said}");
    assert_eq!(said["aud"], DEMO_AUDIENCE, "{said}");
    assert_eq!(said["iss"], s.op.issuer(), "{said}");
    assert_eq!(said["client_id"], CLIENT, "{said}");
    assert!(said.get("sub").is_none(), "{said}");

    let me = s.bearer("/me", &token).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["sub"], CLIENT, "{me:?}");
    assert_eq!(me.body["scopes"], json!(["read", "admin"]), "{me:?}");
    assert_eq!(me.body["claims"]["aud"], DEMO_AUDIENCE, "{me:?}");
    let admin = s.bearer("/admin", &token).await;
    assert_eq!(admin.status, 200, "{admin:?}");

    // A token the provider never issued: it says active false.
    let unknown = s.bearer("/me", "not-a-token-of-this-provider").await;
    assert_invalid_token(&unknown, "token_inactive");

    // The provider's JWT for the same audience is verified with its keys, not introspected
    // (the provider would refuse it: it does not introspect structured tokens).
    let jwt = s.op.token("urn:demo:api", "read").await;
    let me = s.bearer("/me", &jwt).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["sub"], CLIENT, "{me:?}");
}

/// (b) Revoked at the provider (RFC 7009): the demo's cached answer may still accept it
/// until the cache entry ends (at most `DEMO_INTROSPECTION_CACHE_S` after it was made, the
/// documented bound), and from then on it is 401 `token_inactive`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_at_the_provider_is_refused_once_the_cache_entry_ends() {
    const CACHE: Duration = Duration::from_secs(2);
    let Some(s) = setup(CACHE.as_secs()).await else {
        return;
    };
    let token = s.opaque_token().await;

    let sent = Instant::now();
    let first = s.bearer("/me", &token).await;
    // The entry was made while that request was in flight: it ends by `cached_by + CACHE`.
    let cached_by = Instant::now();
    assert_eq!(first.status, 200, "{first:?}");

    s.op.revoke(&token).await;
    let revoked = Instant::now();
    assert_eq!(s.op.introspect(&token).await, json!({"active": false}));

    // Right after revocation: still cached, so still accepted (when this request was
    // answered within the entry's shortest possible life, `sent + CACHE`).
    let again = s.bearer("/me", &token).await;
    if Instant::now() < sent + CACHE {
        assert_eq!(again.status, 200, "cached, so accepted: {again:?}");
    } else {
        eprintln!("the machine is slow: the entry may have ended before the second request");
    }

    // Then: refused, and every request sent after the entry's latest end is refused.
    let deadline = cached_by + CACHE;
    let refused_at = loop {
        let asked = Instant::now();
        let a = s.bearer("/me", &token).await;
        if a.status == 200 {
            assert!(
                asked < deadline,
                "accepted {:?} after the cache entry's latest end: {a:?}",
                asked - deadline
            );
        } else {
            assert_invalid_token(&a, "token_inactive");
            break Instant::now();
        }
        assert!(asked < deadline + Duration::from_secs(10), "never refused");
        sleep(Duration::from_millis(100)).await;
    };
    let after = refused_at - revoked;
    eprintln!(
        "revoked at the provider: refused {:.2} s later (cache max age {} s)",
        after.as_secs_f64(),
        CACHE.as_secs()
    );
    // The bound: cache max age, plus a margin for the poll interval and a request's time.
    assert!(
        after <= CACHE + Duration::from_millis(1500),
        "refused only {after:?} after revocation"
    );
    // And it stays refused.
    assert_invalid_token(&s.bearer("/me", &token).await, "token_inactive");
}

/// (c) The provider stopped: a token whose answer is cached keeps working; a token the demo
/// has not seen yet is 503 `introspection_unavailable` with `Retry-After`, not a 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_provider_stopped_cached_tokens_pass_and_new_ones_are_503() {
    let Some(mut s) = setup(60).await else { return };
    let cached = s.opaque_token().await;
    let unseen = s.opaque_token().await;
    assert_eq!(s.bearer("/me", &cached).await.status, 200);

    s.op.stop().await;

    let a = s.bearer("/me", &cached).await;
    assert_eq!(a.status, 200, "cached: {a:?}");
    assert_eq!(a.body["sub"], CLIENT, "{a:?}");
    let b = s.bearer("/me", &unseen).await;
    assert_eq!(b.status, 503, "{b:?}");
    assert_eq!(b.reason(), "introspection_unavailable", "{b:?}");
    let retry: u64 = b
        .header(RETRY_AFTER)
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After in seconds: {b:?}"));
    assert!(retry > 0, "{b:?}");
    // Still 503 on a second try (an unreachable endpoint is not a refusal to remember).
    let b = s.bearer("/me", &unseen).await;
    assert_eq!(b.status, 503, "{b:?}");
    assert_eq!(b.reason(), "introspection_unavailable", "{b:?}");
}

/// (d) The provider logs session `demo-session-1` of `alice` out (its own logout token,
/// POSTed to the demo's `/backchannel-logout`): that session's cookie is 401
/// `session_revoked`, and a JWT carrying that `sid` is 401 `token_revoked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backchannel_logout_at_the_provider_revokes_the_session_and_its_tokens() {
    let Some(s) = setup(60).await else { return };
    // A token of the demo's issuer (the provider's, with the demo's HS256 secret) for
    // that session.
    let with_sid = hs256(&claims(json!({
        "iss": s.op.issuer(), "aud": DEMO_AUDIENCE, "sub": SESSION_SUB, "sid": SESSION_SID,
        "jti": "bcl-1",
    })));
    // Another session of the same issuer, logged out of nothing: the control.
    let other = hs256(&claims(json!({
        "iss": s.op.issuer(), "aud": DEMO_AUDIENCE, "sub": "bob", "sid": "demo-session-2",
    })));
    let session = [("cookie", SESSION_COOKIE)];
    assert_eq!(s.get("/session", &session).await.status, 200);
    assert_eq!(s.bearer("/me", &with_sid).await.status, 200);
    assert_eq!(s.bearer("/me", &other).await.status, 200);

    // The provider's own Client#backchannelLogout: it returns once the demo answered 200.
    s.op.backchannel_logout(SESSION_SUB, SESSION_SID).await;

    let a = s.get("/session", &session).await;
    assert_eq!(a.status, 401, "{a:?}");
    assert_eq!(a.reason(), "session_revoked", "{a:?}");
    assert_invalid_token(&s.bearer("/me", &with_sid).await, "token_revoked");
    assert_eq!(s.bearer("/me", &other).await.status, 200);
}
