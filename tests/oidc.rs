//! Interop with a real OpenID provider: npm `oidc-provider` (pinned by interop/package-lock.json)
//! run by interop/oidc-provider.mjs on 127.0.0.1, issuing RFC 9068 access tokens (`typ:
//! at+jwt`, RS256 or ES256) by the client_credentials grant with resource indicators. The
//! layer finds the provider's keys by OIDC discovery (`KeySource::discover`).
//!
//! The provider makes fresh keys on every start, so a restart on the same port is a key
//! rotation the layer only learns of by refetching the JWK set. Resources:
//! `urn:demo:rs256` and `urn:demo:es256` (tokens live 300 s), `urn:demo:short` (RS256,
//! tokens live 1 s).
//!
//! Every test but the one against a closed port needs Node (`common::node::interop`): it
//! skips without, except in CI.
//!
//! The tests run on a multi-threaded runtime: the key source fetches on a task of its own,
//! and its events (a fetch, a failed fetch) must not land in the capture that `send` holds
//! on the test's thread, which asserts the one event of each request.

mod common;
use common::*;

use auth_diagnostics::authz::RequireScope;
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::KeySource;
use auth_diagnostics::Principal;
use axum::routing::get as route_get;
use axum::{Json, Router};
use common::provider::{kid_of, peek, Provider, CLIENT};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::time::{sleep, sleep_until, timeout};

const RS: &str = "urn:demo:rs256";
const ES: &str = "urn:demo:es256";
const SHORT: &str = "urn:demo:short";

/// At most one refresh for an unknown `kid` per this interval. Well longer than a provider
/// restart takes (0.5 to 1.5 s here, more on a loaded machine), short enough to wait out.
const MISS_INTERVAL: Duration = Duration::from_secs(4);

// The provider --------------------------------------------------------------------------

/// A token that looks like the provider's (at+jwt, RS256, its issuer, audience
/// `urn:demo:rs256`) but names a key the provider never had.
fn stranger(issuer: &str) -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let pem = std::fs::read(format!("{dir}/tests/keys/rsa_private.pem")).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some("not-a-provider-key".into());
    let now = now();
    let claims = json!({
        "iss": issuer, "aud": RS, "sub": CLIENT, "client_id": CLIENT,
        "iat": now, "exp": now + 300, "jti": "stranger-1", "scope": "read",
    });
    sign(
        &header,
        claims.as_object().unwrap(),
        &EncodingKey::from_rsa_pem(&pem).unwrap(),
    )
}

// The layer -----------------------------------------------------------------------------

/// The provider's keys by discovery. No `Cache-Control` comes from oidc-provider, so the
/// refresh period is the lower bound, 60 s: no scheduled refresh happens within a test.
fn source(issuer: &str) -> KeySource {
    KeySource::discover(issuer)
        .miss_refresh_interval(MISS_INTERVAL)
        .refresh_bounds(Duration::from_secs(60), Duration::from_secs(600))
        .fetch_timeout(Duration::from_secs(2))
        .max_wait(Duration::from_secs(3))
}

/// Waits until `source` has loaded a key set.
async fn loaded(source: &KeySource) {
    timeout(Duration::from_secs(10), source.ready())
        .await
        .expect("the key set loads within 10 s");
}

/// RFC 9068 access tokens from `source`'s issuer for `audiences`, no leeway.
fn authn(source: &KeySource, audiences: &[&str]) -> JwtAuthenticator {
    let mut jwt = JwtAuthenticator::from_source(source.clone());
    for aud in audiences {
        jwt = jwt.audience(*aud);
    }
    jwt.require_access_token_type()
        .require_claims(["sub", "client_id", "iat", "jti"])
        .leeway(Duration::ZERO)
}

/// `/me` (what the handler sees of the principal) and `/admin` (scope `admin`).
fn app(jwt: JwtAuthenticator) -> Router {
    let me = |p: Principal| async move {
        let claims = p.claims().cloned().unwrap_or_default();
        Json(json!({
            "sub": p.id(),
            "scheme": p.scheme(),
            "client_id": claims.get("client_id"),
            "iss": claims.get("iss"),
            "aud": claims.get("aud"),
            "scopes": p.scopes().collect::<Vec<_>>(),
        }))
    };
    Router::new()
        .route("/me", route_get(me))
        .route(
            "/admin",
            route_get(|| async { "admin" }).route_layer(RequireScope::new(["admin"])),
        )
        .layer(AuthDiagnostics::new().bearer(jwt))
}

async fn call(app: &Router, path: &str, token: &str) -> Outcome {
    let req = get(path, &[("authorization", &bearer(token))]);
    timeout(Duration::from_secs(15), send(app.clone(), req))
        .await
        .expect("the layer answers within 15 s")
}

/// `/me` accepted `token` from `issuer` for `aud`.
#[track_caller]
fn assert_accepted(out: &Outcome, issuer: &str, aud: &str) {
    assert_eq!(
        out.ok(),
        json!({
            "sub": CLIENT, "scheme": "Bearer", "client_id": CLIENT,
            "iss": issuer, "aud": aud, "scopes": ["read"],
        })
    );
}

/// A JWT rejection, as the layer logs it for a token in `Authorization`.
fn refused(reason: &'static str) -> Expect {
    expect(reason).token_fields()
}

// The tests -----------------------------------------------------------------------------

/// RS256 and ES256 access tokens from the provider pass; the handler sees the client as
/// `sub` and `client_id`, and the granted scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_tokens_are_accepted() {
    let Some(op) = Provider::start(0).await else {
        return;
    };
    let source = source(op.issuer());
    loaded(&source).await;
    let app = app(authn(&source, &[RS, ES]));

    for (resource, alg) in [(RS, "RS256"), (ES, "ES256")] {
        let token = op.token(resource, "read").await;
        let (header, claims) = peek(&token);
        assert_eq!(header["typ"], "at+jwt", "{header}");
        assert_eq!(header["alg"], alg, "{header}");
        assert!(header["kid"].is_string(), "{header}");
        for claim in [
            "iss",
            "aud",
            "sub",
            "exp",
            "iat",
            "jti",
            "client_id",
            "scope",
        ] {
            assert!(claims.get(claim).is_some(), "no {claim} in {claims}");
        }
        assert_accepted(&call(&app, "/me", &token).await, op.issuer(), resource);

        // Scope `read` only: /admin is 403 insufficient_scope.
        let out = call(&app, "/admin", &token).await;
        let r = out.check(
            &expect("insufficient_scope")
                .field("scope", "admin")
                .field("user", CLIENT),
        );
        assert_eq!(r.problem["required_scope"], "admin");
    }
}

/// A token of `urn:demo:short` (1 s) two seconds later: token_expired, verified first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_provider_token_is_token_expired() {
    let Some(op) = Provider::start(0).await else {
        return;
    };
    let source = source(op.issuer());
    loaded(&source).await;
    let app = app(authn(&source, &[RS, SHORT]));

    let token = op.token(SHORT, "read").await;
    let (_, claims) = peek(&token);
    let exp = claims["exp"].as_i64().unwrap();
    assert_eq!(exp - claims["iat"].as_i64().unwrap(), 1, "{claims}");
    let deadline = std::time::UNIX_EPOCH + Duration::from_secs(exp as u64 + 1);
    let wait = deadline
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    sleep(wait + Duration::from_millis(100)).await;

    let out = call(&app, "/me", &token).await;
    out.check(
        &refused("token_expired")
            .field("signature_verified", true)
            .field("sub", CLIENT)
            .field("kid", kid_of(&token)),
    );
    assert_eq!(out.challenge().param("error"), Some("invalid_token"));
}

/// A layer for `urn:demo:es256` only refuses a token minted for `urn:demo:rs256`, though
/// its signature verifies with the provider's key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_resource_is_token_audience_mismatch() {
    let Some(op) = Provider::start(0).await else {
        return;
    };
    let source = source(op.issuer());
    loaded(&source).await;
    let app = app(authn(&source, &[ES]));

    let out = call(&app, "/me", &op.token(RS, "read").await).await;
    out.check(
        &refused("token_audience_mismatch")
            .field("signature_verified", true)
            .field("aud", RS)
            .field("expected_aud", ES),
    );
    assert_accepted(
        &call(&app, "/me", &op.token(ES, "read").await).await,
        op.issuer(),
        ES,
    );
}

/// A restart on the same port is a key rotation. A token signed with a new key is
/// token_key_unknown while the refresh for unknown kids is rate-limited, and accepted once
/// the interval has passed; after that refresh a token of the old keys is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_provider_with_new_keys() {
    let Some(op) = Provider::start(0).await else {
        return;
    };
    // The window of the rate limit opens with some fetch after this instant (the first,
    // or the one for the unknown kid below) and before `opened`.
    let before = Instant::now();
    let source = source(op.issuer());
    loaded(&source).await;
    let app = app(authn(&source, &[RS, ES]));
    let old = op.token(RS, "read").await;
    assert_accepted(&call(&app, "/me", &old).await, op.issuer(), RS);
    let out = call(&app, "/me", &stranger(op.issuer())).await;
    out.check(&refused("token_key_unknown").field("kid", "not-a-provider-key"));
    let opened = Instant::now();

    let op = op.restart().await;
    let new = op.token(RS, "read").await;
    assert_ne!(kid_of(&new), kid_of(&old), "a restart makes new keys");
    let elapsed = before.elapsed();
    assert!(
        elapsed + Duration::from_millis(300) < MISS_INTERVAL,
        "the provider took too long to restart ({elapsed:?} since the key set was fetched) \
         to test the rate limit of {MISS_INTERVAL:?}"
    );
    let out = call(&app, "/me", &new).await;
    let r = out.check(
        &refused("token_key_unknown")
            .field("kid", kid_of(&new))
            .field("signature_verified", false),
    );
    // Refused with the old set: no refresh was allowed yet.
    assert!(
        r.event.field("key_ids").contains(&kid_of(&old)),
        "{}",
        r.event.line()
    );

    // The interval has passed: this unknown kid refreshes the key set, and the request
    // waits for it.
    sleep_until((opened + MISS_INTERVAL + Duration::from_millis(300)).into()).await;
    assert_accepted(&call(&app, "/me", &new).await, op.issuer(), RS);
    let es = op.token(ES, "read").await;
    assert_accepted(&call(&app, "/me", &es).await, op.issuer(), ES);

    // The old keys are gone from the set.
    let out = call(&app, "/me", &old).await;
    let r = out.check(
        &refused("token_key_unknown")
            .field("kid", kid_of(&old))
            .field("signature_verified", false),
    );
    let kids = r.event.field("key_ids");
    assert!(kids.contains(&kid_of(&new)), "{kids}");
    assert!(kids.contains(&kid_of(&es)), "{kids}");
    assert!(!kids.contains(&kid_of(&old)), "{kids}");
}

/// The provider goes away once its keys are loaded: valid tokens still pass. A token with a
/// kid the cached set lacks asks for a refresh, which fails: the layer cannot tell a made-up
/// kid from a rotated key it could not fetch, so that is 503 key_source_unavailable (the
/// crate's choice), not token_key_unknown. The failed refresh keeps the cached keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_keys_outlive_the_provider() {
    let Some(mut op) = Provider::start(0).await else {
        return;
    };
    let source = source(op.issuer());
    loaded(&source).await;
    let loaded_at = Instant::now();
    let app = app(authn(&source, &[RS, ES]));
    let rs = op.token(RS, "read").await;
    let es = op.token(ES, "read").await;
    op.stop().await;

    assert_accepted(&call(&app, "/me", &rs).await, op.issuer(), RS);
    assert_accepted(&call(&app, "/me", &es).await, op.issuer(), ES);

    // Past the miss interval, the unknown kid asks for a refresh, which fails.
    sleep_until((loaded_at + MISS_INTERVAL + Duration::from_millis(300)).into()).await;
    let out = call(&app, "/me", &stranger(op.issuer())).await;
    let r = out.check(
        &expect("key_source_unavailable")
            .token_fields()
            .field("kid", "not-a-provider-key")
            .field("key_source", op.issuer()),
    );
    assert!(out.header("retry-after").is_some(), "{:?}", out.headers);
    assert!(
        r.event.field("key_ids").contains(&kid_of(&rs)),
        "{}",
        r.event.line()
    );
    assert!(
        r.event.field("fetch_error").contains("/jwks"),
        "{}",
        r.event.line()
    );
    assert_accepted(&call(&app, "/me", &rs).await, op.issuer(), RS);
    assert_accepted(&call(&app, "/me", &es).await, op.issuer(), ES);
}

/// No key set was ever loaded (nothing listens at the issuer): 503 key_source_unavailable
/// with Retry-After and no challenge, as the token may well be good. Needs no Node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_set_ever_is_key_source_unavailable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);

    let source = source(&issuer);
    assert!(
        timeout(Duration::from_millis(500), source.ready())
            .await
            .is_err(),
        "ready() waits for a key set"
    );
    let app = app(authn(&source, &[RS]));
    let started = Instant::now();
    let out = call(&app, "/me", &stranger(&issuer)).await;
    let r = out.check(
        &expect("key_source_unavailable")
            .token_fields()
            .field("key_source", &issuer)
            .field("kid", "not-a-provider-key"),
    );
    assert!(
        r.event
            .field("fetch_error")
            .contains("/.well-known/openid-configuration"),
        "{}",
        r.event.line()
    );
    assert!(
        out.header("www-authenticate").is_none(),
        "{:?}",
        out.headers
    );
    let retry = out.header("retry-after").expect("Retry-After");
    assert!(
        retry.parse::<u64>().is_ok_and(|s| s > 0),
        "Retry-After is delay-seconds: {retry}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered within max_wait and fetch_timeout: {:?}",
        started.elapsed()
    );
}
