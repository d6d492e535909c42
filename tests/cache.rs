//! The verified-token cache: a repeated token skips its signature check, and nothing it
//! keeps outlives the token's `exp`, the TTL, or the keys that verified it. A token is
//! cached when it is verified the second time (the first only marks it): a token seen
//! once costs no entry.

mod common;
use common::*;

use auth_diagnostics::jwt::{JwtAuthenticator, TokenCache};
use auth_diagnostics::keys::StaticKey;
use serde_json::json;
use std::time::Duration;

fn app(layer: AuthDiagnostics, jwt: JwtAuthenticator) -> (axum::Router, AuthDiagnostics) {
    let layer = layer.bearer(jwt);
    (
        axum::Router::new()
            .route(
                "/me",
                axum::routing::get(|p: auth_diagnostics::Principal| async move {
                    axum::Json(json!({ "sub": p.id(), "scopes": p.scopes().collect::<Vec<_>>() }))
                }),
            )
            .layer(layer.clone()),
        layer,
    )
}

async fn me(app: &axum::Router, token: &str) -> Outcome {
    send(
        app.clone(),
        get("/me", &[("authorization", &bearer(token))]),
    )
    .await
}

#[tokio::test]
async fn a_repeated_token_is_a_hit_with_the_same_principal() {
    let (app, layer) = app(AuthDiagnostics::new(), jwt());
    let token = hs256(&claims(json!({ "scope": "read write" })));
    let first = me(&app, &token).await.json();
    for _ in 0..4 {
        assert_eq!(me(&app, &token).await.json(), first);
    }
    assert_eq!(first["scopes"], json!(["read", "write"]));
    // Verified twice (cached the second time), then found.
    let s = layer.token_cache_stats().unwrap();
    assert_eq!((s.hits, s.misses, s.entries), (3, 2, 1), "{s:?}");
}

#[tokio::test]
async fn a_cached_token_expires_with_its_exp_and_leeway() {
    let jwt = jwt().leeway(Duration::from_secs(1));
    let (app, layer) = app(AuthDiagnostics::new().verbose(), jwt);
    let token = hs256(&claims(json!({ "exp": now() + 1 })));
    for _ in 0..3 {
        assert_eq!(me(&app, &token).await.status, 200);
    }
    assert_eq!(layer.token_cache_stats().unwrap().hits, 1);
    // exp + leeway has passed: the cache does not answer for it.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    me(&app, &token).await.check(
        &expect("token_expired")
            .verbose()
            .field("signature_verified", true),
    );
}

#[tokio::test]
async fn the_ttl_bounds_an_entry_whatever_exp_says() {
    let (app, layer) = app(
        AuthDiagnostics::new().token_cache(TokenCache::new().ttl(Duration::from_secs(1))),
        jwt(),
    );
    let token = hs256(&good_claims());
    for _ in 0..3 {
        me(&app, &token).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    me(&app, &token).await;
    let s = layer.token_cache_stats().unwrap();
    assert_eq!((s.hits, s.misses), (1, 3), "{s:?}");
}

#[tokio::test]
async fn a_failure_that_a_key_set_change_could_undo_is_never_cached() {
    let keyed = JwtAuthenticator::new(StaticKey::hs256(SECRET).with_kid("k1"))
        .issuer(ISSUER)
        .audience(AUDIENCE);
    let (app, layer) = app(AuthDiagnostics::new(), keyed);
    let header = jsonwebtoken::Header {
        kid: Some("k2".into()),
        ..Default::default()
    };
    let unknown = sign(
        &header,
        &good_claims(),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    );
    for _ in 0..3 {
        me(&app, &unknown).await.check(&expect("token_key_unknown"));
    }
    let s = layer.token_cache_stats().unwrap();
    assert_eq!((s.hits, s.entries), (0, 0), "{s:?}");
    // A forged signature is settled for these keys: remembered (from its second time on).
    let forged = hs256(&good_claims()) + "x";
    for _ in 0..3 {
        me(&app, &forged)
            .await
            .check(&expect("token_signature_invalid"));
    }
    let s = layer.token_cache_stats().unwrap();
    assert_eq!((s.hits, s.entries), (1, 1), "{s:?}");
}

#[tokio::test]
async fn entries_are_bounded_and_the_oldest_go_first() {
    let (app, layer) = app(
        AuthDiagnostics::new().token_cache(TokenCache::new().max_entries(32)),
        jwt(),
    );
    // Each token twice: the second time caches it.
    for i in 0..300 {
        let token = hs256(&claims(json!({ "jti": format!("t{i}") })));
        for _ in 0..2 {
            assert_eq!(me(&app, &token).await.status, 200);
        }
    }
    let s = layer.token_cache_stats().unwrap();
    assert!(s.entries <= 32 + 16, "{s:?}");
    assert!(s.evictions >= 300 - 48, "{s:?}");
}

#[tokio::test]
async fn a_token_seen_once_is_not_cached_and_evicts_nothing() {
    let (app, layer) = app(
        AuthDiagnostics::new().token_cache(TokenCache::new().max_entries(32)),
        jwt(),
    );
    for i in 0..300 {
        let token = hs256(&claims(json!({ "jti": format!("t{i}") })));
        assert_eq!(me(&app, &token).await.status, 200);
    }
    let expired = hs256(&claims(json!({ "exp": now() - 3600 })));
    me(&app, &expired).await.check(&expect("token_expired"));
    // A false positive of the doorkeeper (a Bloom filter) may let one in early.
    let s = layer.token_cache_stats().unwrap();
    assert!(s.entries <= 2 && s.evictions == 0, "{s:?}");
    assert_eq!((s.hits, s.misses), (0, 301), "{s:?}");
}

#[tokio::test]
async fn layers_never_share_a_cache() {
    // The same token, accepted by one route's audience, is not let through another's.
    let token = hs256(&good_claims());
    let (a, _) = app(AuthDiagnostics::new(), jwt());
    let other = JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer(ISSUER)
        .audience("another-api");
    let base = AuthDiagnostics::new();
    let (b, _) = app(base.clone(), other);
    assert_eq!(me(&a, &token).await.status, 200);
    me(&b, &token)
        .await
        .check(&expect("token_audience_mismatch"));
    // A layer cloned after `.bearer(..)` shares its own cache with its clones (same rules).
    let (_, layer) = app(AuthDiagnostics::new(), jwt());
    let clone = layer.clone();
    assert!(clone.token_cache_stats().is_some());
}

#[tokio::test]
async fn without_the_cache_every_request_is_verified() {
    let (app, layer) = app(AuthDiagnostics::new().without_token_cache(), jwt());
    let token = hs256(&good_claims());
    assert_eq!(me(&app, &token).await.status, 200);
    assert_eq!(me(&app, &token).await.status, 200);
    assert!(layer.token_cache_stats().is_none());
}

#[tokio::test]
async fn a_settled_failure_is_remembered_and_one_that_can_change_is_not() {
    let (app, layer) = app(AuthDiagnostics::new().verbose(), jwt());
    let expired = hs256(&claims(json!({ "exp": now() - 3600 })));
    for _ in 0..3 {
        let r = me(&app, &expired).await.check(
            &expect("token_expired")
                .verbose()
                .token_fields()
                .field("signature_verified", true),
        );
        assert!(r.detail().contains("ago"), "{}", r.detail());
    }
    // Decided twice (cached the second time), then found.
    let s = layer.token_cache_stats().unwrap();
    assert_eq!((s.hits, s.misses, s.entries), (1, 2, 1), "{s:?}");

    // Not yet valid: time will make it valid, so it is verified every time.
    let early = hs256(&claims(json!({ "nbf": now() + 3600 })));
    for _ in 0..2 {
        me(&app, &early)
            .await
            .check(&expect("token_not_yet_valid").verbose());
    }
    let s = layer.token_cache_stats().unwrap();
    assert_eq!((s.hits, s.entries), (1, 1), "{s:?}");
}
