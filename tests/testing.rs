//! `auth_diagnostics::testing::TestIssuer` as an application's integration tests use it: a
//! protected route behind a discovered key source, and the issuer's tokens, rotations,
//! withdrawals and failures seen through the answers.

use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::KeySource;
use auth_diagnostics::testing::TestIssuer;
use auth_diagnostics::AuthDiagnostics;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::time::Duration;
use tower::ServiceExt;

const AUDIENCE: &str = "orders";

/// `/orders` behind a verbose layer verifying with `keys`.
fn app(keys: KeySource) -> Router {
    let jwt = JwtAuthenticator::from_source(keys).audience(AUDIENCE);
    Router::new()
        .route("/orders", get(|| async { "orders" }))
        .layer(AuthDiagnostics::new().bearer(jwt).verbose())
}

/// The status and the problem body's `reason` (empty on success).
async fn send(app: &Router, token: &str) -> (u16, String) {
    let request = Request::get("/orders")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap();
    let reason = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, reason)
}

fn ok() -> (u16, String) {
    (200, String::new())
}

fn refused(status: u16, reason: &str) -> (u16, String) {
    (status, reason.to_owned())
}

#[tokio::test]
async fn a_minted_token_is_accepted_and_an_expired_one_refused() {
    let idp = TestIssuer::start().await;
    let app = app(KeySource::discover(idp.issuer()));
    let token = idp
        .access_token()
        .subject("alice")
        .audience(AUDIENCE)
        .sign();
    assert_eq!(send(&app, &token).await, ok());
    let expired = idp.access_token().audience(AUDIENCE).expired().sign();
    assert_eq!(send(&app, &expired).await, refused(401, "token_expired"));
    // Claims given as JSON, defaults filled in.
    let token = idp.token(json!({ "aud": AUDIENCE, "scope": "read" }));
    assert_eq!(send(&app, &token).await, ok());
    // Another audience, and a token without `sub` (a default left out with null).
    let other = idp.access_token().audience("billing").sign();
    assert_eq!(
        send(&app, &other).await,
        refused(401, "token_audience_mismatch")
    );
    let no_sub = idp
        .access_token()
        .audience(AUDIENCE)
        .claim("sub", Value::Null)
        .sign();
    let payload = no_sub.split('.').nth(1).unwrap();
    let payload = URL_SAFE_NO_PAD.decode(payload).unwrap();
    let payload: Value = serde_json::from_slice(&payload).unwrap();
    assert!(payload.get("sub").is_none(), "{payload}");
    assert_eq!(payload["iss"], idp.issuer());
    // One discovery and one key set fetch served all of them.
    assert_eq!((idp.discovery_requests(), idp.jwks_requests()), (1, 1));
}

#[tokio::test]
async fn a_rotated_key_verifies_beside_the_old_one_and_a_withdrawn_key_does_not() {
    let idp = TestIssuer::start().await;
    let app = app(idp.key_source());
    let first = idp.access_token().audience(AUDIENCE).sign();
    assert_eq!(send(&app, &first).await, ok());

    let old_kid = idp.kid();
    let new_kid = idp.rotate();
    assert_ne!(old_kid, new_kid);
    assert_eq!(idp.published(), [old_kid.clone(), new_kid.clone()]);
    let second = idp.access_token().audience(AUDIENCE).sign();
    // The new key is fetched on its first token; the old one is still published.
    assert_eq!(send(&app, &second).await, ok());
    assert_eq!(send(&app, &first).await, ok());

    assert!(idp.withdraw(&old_kid));
    assert!(!idp.withdraw(&old_kid), "withdrawn once");
    // Cached, the withdrawn key verifies until the source refreshes: here the refresh a
    // token of a newer key causes.
    assert_eq!(send(&app, &first).await, ok());
    idp.rotate();
    let third = idp.access_token().audience(AUDIENCE).sign();
    assert_eq!(send(&app, &third).await, ok());
    assert_eq!(send(&app, &first).await, refused(401, "token_key_unknown"));
    assert_eq!(send(&app, &second).await, ok());
}

#[tokio::test]
async fn a_failing_issuer_is_503_for_a_fresh_layer_and_recovers() {
    let idp = TestIssuer::start().await;
    idp.fail_with(StatusCode::INTERNAL_SERVER_ERROR);
    let app = app(idp.key_source());
    let token = idp.access_token().audience(AUDIENCE).sign();
    assert_eq!(
        send(&app, &token).await,
        refused(503, "key_source_unavailable")
    );

    idp.recover();
    let keys = idp.key_source();
    let app = self::app(keys.clone());
    tokio::time::timeout(Duration::from_secs(5), keys.ready())
        .await
        .expect("keys within 5 s of the recovery");
    assert_eq!(send(&app, &token).await, ok());
}

#[tokio::test]
async fn a_slow_issuer_is_503_once_the_wait_runs_out() {
    let idp = TestIssuer::start().await;
    idp.delay(Duration::from_secs(2));
    let keys = idp.key_source().max_wait(Duration::from_millis(200));
    let app = app(keys);
    let token = idp.access_token().audience(AUDIENCE).sign();
    assert_eq!(
        send(&app, &token).await,
        refused(503, "key_source_unavailable")
    );
}

#[tokio::test]
async fn a_dpop_bound_token_sent_as_bearer_is_refused() {
    let idp = TestIssuer::start().await;
    let app = app(idp.key_source());
    // Any JWK SHA-256 thumbprint: the Bearer scheme never gets as far as checking it.
    let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    let bound = idp.access_token().audience(AUDIENCE).dpop_bound(jkt).sign();
    assert_eq!(send(&app, &bound).await, refused(401, "token_dpop_bound"));
}

#[tokio::test]
async fn the_issuer_serves_its_jwk_set_at_jwks_uri_and_stops_when_dropped() {
    let idp = TestIssuer::start().await;
    assert!(idp.issuer().starts_with("http://127.0.0.1:"));
    let jwt = JwtAuthenticator::from_source(KeySource::jwks(idp.jwks_uri()))
        .issuer(idp.issuer())
        .audience(AUDIENCE);
    let by_jwks = Router::new()
        .route("/orders", get(|| async { "orders" }))
        .layer(AuthDiagnostics::new().bearer(jwt));
    let token = idp
        .access_token()
        .audience(AUDIENCE)
        .scope("read write")
        .sign();
    assert_eq!(send(&by_jwks, &token).await, ok());
    assert_eq!((idp.discovery_requests(), idp.jwks_requests()), (0, 1));

    let issuer = idp.issuer().to_owned();
    drop(idp);
    tokio::task::yield_now().await;
    let fresh = app(KeySource::discover(issuer));
    assert_eq!(
        send(&fresh, &token).await,
        refused(503, "key_source_unavailable")
    );
}

/// `AuthDiagnostics::readiness`: which key sources hold a key set, and why not, for a
/// `/readyz` route.
#[tokio::test]
async fn readiness_names_the_sources_without_keys_and_why() {
    let idp = TestIssuer::start().await;
    idp.fail_with(StatusCode::INTERNAL_SERVER_ERROR);
    let keys = idp.key_source();
    let layer = AuthDiagnostics::new()
        .bearer(JwtAuthenticator::from_source(keys.clone()).audience(AUDIENCE));
    // Not fetched yet, then failing: not ready, with the reason.
    assert!(!layer.readiness().is_ready());
    let _ = tokio::time::timeout(Duration::from_millis(500), keys.ready()).await;
    let r = layer.readiness();
    assert!(!r.is_ready(), "{r:?}");
    let missing: Vec<_> = r.missing().collect();
    assert_eq!(missing.len(), 1);
    assert!(missing[0].source.starts_with(idp.issuer()), "{missing:?}");
    assert!(
        missing[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("500")),
        "{missing:?}"
    );
    assert_eq!(r.to_json()["ready"], false);
    // The issuer recovers: ready, with the time of the set.
    idp.recover();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !layer.readiness().is_ready() {
            keys.ready().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("ready once the issuer recovers");
    let r = layer.readiness();
    assert!(r.sources[0].fetched_at.is_some(), "{r:?}");
    assert_eq!(r.to_json()["sources"][0]["ready"], true);
}

#[test]
fn readiness_never_shows_a_password_and_static_keys_are_ready() {
    let keys = KeySource::jwks("http://alice:s3cret-pw@127.0.0.1:9/jwks?k=v");
    let layer = AuthDiagnostics::new().bearer(
        JwtAuthenticator::from_source(keys)
            .issuer("https://issuer.example")
            .audience(AUDIENCE),
    );
    let r = layer.readiness();
    assert_eq!(r.sources[0].source, "http://alice:***@127.0.0.1:9/jwks");
    assert!(!r.to_json().to_string().contains("s3cret"));
    let static_only = AuthDiagnostics::new().bearer(
        JwtAuthenticator::new(auth_diagnostics::keys::StaticKey::hs256("secret"))
            .issuer("https://issuer.example")
            .audience(AUDIENCE),
    );
    assert!(static_only.readiness().is_ready());
    assert!(static_only.readiness().sources.is_empty());
}
