//! Configuration checked once: every mistake of a layer and of the authenticators given
//! to it is found when the layer is built, all of them at once, as typed values; the
//! builder methods themselves never panic on what they are given.

mod common;
use common::*;

use auth_diagnostics::api_key::ApiKeyAuthenticator;
use auth_diagnostics::dpop::Dpop;
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::{Algorithm, KeySource, StaticKey};
use auth_diagnostics::layer::{ConfigError, ConfigErrors, OriginUse};
use auth_diagnostics::session::SessionAuthenticator;
use auth_diagnostics::AuthDiagnostics;
use axum::{routing::get as route, Router};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;
use tower::Layer as _;

/// A layer with five mistakes: a Bearer authenticator without an audience, a DPoP
/// configuration with a symmetric proof algorithm and no origin, a session scheme with
/// a login URL that is no URL, and a second session scheme.
fn five_mistakes() -> AuthDiagnostics {
    let no_audience = JwtAuthenticator::new(StaticKey::hs256(SECRET)).issuer(ISSUER);
    let sessions = || SessionAuthenticator::new("sid", check_session);
    AuthDiagnostics::new()
        .bearer(no_audience)
        .dpop(Dpop::new(jwt()).algorithms([Algorithm::ES256, Algorithm::HS256]))
        .session(sessions().login_url("login page"))
        .session(sessions())
}

#[test]
fn every_mistake_is_reported_at_once_as_a_typed_value() {
    let errors = five_mistakes().try_build().unwrap_err();
    let all: Vec<ConfigError> = errors.clone().into_iter().collect();
    assert_eq!(all.len(), 5, "{errors}");
    assert_eq!(errors.len(), 5);
    assert!(all.contains(&ConfigError::NoAudience), "{errors}");
    assert!(all.contains(&ConfigError::DpopSymmetricAlgorithm(Algorithm::HS256)));
    assert!(all.contains(&ConfigError::DpopNoOrigin), "{errors}");
    assert!(all.contains(&ConfigError::CalledTwice { method: "session" }));
    // The data is typed: match on it.
    let login = errors.iter().find_map(|e| match e {
        ConfigError::InvalidLoginUrl { url } => Some(url.as_str()),
        _ => None,
    });
    assert_eq!(login, Some("login page"));
    let symmetric = errors.iter().find_map(|e| match e {
        ConfigError::DpopSymmetricAlgorithm(alg) => Some(*alg),
        _ => None,
    });
    assert_eq!(symmetric, Some(Algorithm::HS256));
    // One mistake per line, each saying what to call instead.
    let text = errors.to_string();
    assert_eq!(text.lines().count(), 6, "{text}");
    assert!(text.starts_with("5 configuration mistakes:"), "{text}");
    for says in [
        ".audience(",
        "symmetric",
        "Dpop::public_origin",
        "login_url",
        "once",
    ] {
        assert!(text.contains(says), "{says}: {text}");
    }
    // An error type of its own: the first mistake is its source.
    let source = std::error::Error::source(&errors).map(ToString::to_string);
    assert_eq!(source, Some(errors.first().to_string()));
}

#[test]
fn the_convenience_path_panics_with_the_whole_list() {
    let text = panic_message(catch_unwind(AssertUnwindSafe(|| {
        Router::<()>::new()
            .route("/me", route(|| async { "me" }))
            .layer(five_mistakes())
    })));
    assert!(
        text.starts_with("auth-diagnostics: 5 configuration mistakes:"),
        "{text}"
    );
    for says in [
        "no audience",
        "HS256 is symmetric",
        "Dpop::public_origin",
        "login_url",
        ".session(..) is called once per layer",
    ] {
        assert!(text.contains(says), "{says}: {text}");
    }
    // The list is that of try_build.
    let errors = five_mistakes().try_build().unwrap_err();
    assert_eq!(text, format!("auth-diagnostics: {errors}"));
}

#[test]
fn builder_methods_record_and_never_panic() {
    // Each of these panicked where it was called; now each is a mistake of the build.
    let source = KeySource::jwks("https://idp.example/jwks")
        .refresh_bounds(Duration::from_secs(10), Duration::from_secs(1))
        .shared_store(
            auth_diagnostics::store::MemoryKeySetStore::default(),
            "short",
        );
    let tokens = JwtAuthenticator::from_source(source)
        .issuer("https://idp.example")
        .audience(AUDIENCE)
        .leeway(Duration::from_secs(3600));
    let key = ApiKeyAuthenticator::new(check_key).header("bad header");
    let layer = AuthDiagnostics::new()
        .bearer(tokens)
        .api_key(key)
        .fingerprint_key("short")
        .dpop(Dpop::new(jwt()).public_origin("api.example"));
    let errors: ConfigErrors = layer.try_build().unwrap_err();
    let all: Vec<&ConfigError> = errors.iter().collect();
    let has = |wanted: &dyn Fn(&ConfigError) -> bool| all.iter().any(|e| wanted(e));
    assert!(has(&|e| matches!(
        e,
        ConfigError::LeewayTooLong { leeway, .. } if *leeway == Duration::from_secs(3600)
    )));
    assert!(has(&|e| matches!(
        e,
        ConfigError::RefreshBounds { min, max }
            if *min == Duration::from_secs(10) && *max == Duration::from_secs(1)
    )));
    assert!(has(&|e| matches!(
        e,
        ConfigError::SharedStoreKeyTooShort { len: 5 }
    )));
    assert!(has(
        &|e| matches!(e, ConfigError::InvalidHeaderName { name } if name == "bad header")
    ));
    assert!(has(&|e| matches!(
        e,
        ConfigError::FingerprintKeyTooShort { len: 5 }
    )));
    assert!(has(&|e| matches!(
        e,
        ConfigError::InvalidOrigin { origin, why: OriginUse::DpopPublicOrigin } if origin == "api.example"
    )));
    assert_eq!(errors.len(), 6, "{errors}");
}

#[tokio::test]
async fn a_good_layer_builds_and_serves() {
    let layer = AuthDiagnostics::new()
        .bearer(jwt())
        .try_build()
        .expect("a good configuration");
    // Built once: its clones share what was built, the token cache included.
    assert!(layer.token_cache_stats().is_some());
    let app = Router::new()
        .route("/me", route(|| async { "me" }))
        .layer(layer.clone());
    let token = hs256(&good_claims());
    let out = send(
        app.clone(),
        get("/me", &[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(out.status, 200);
    let out = send(app, get("/me", &[])).await;
    assert_eq!(out.status, 401);
    assert_eq!(layer.token_cache_stats().unwrap().misses, 1);
}

#[test]
fn a_changed_layer_is_checked_again() {
    let good = AuthDiagnostics::new().bearer(jwt()).try_build().unwrap();
    let errors = good.dpop(Dpop::new(jwt())).try_build().unwrap_err();
    let all: Vec<ConfigError> = errors.into_iter().collect();
    assert_eq!(all, [ConfigError::DpopNoOrigin]);
}

#[test]
fn a_layer_without_a_router_can_be_built_by_hand() {
    // Layer::layer on a built layer cannot fail.
    let layer = AuthDiagnostics::new().bearer(jwt()).try_build().unwrap();
    let _service = layer.layer(());
}

#[test]
fn used_without_a_layer_an_authenticator_is_checked_by_its_first_verification() {
    let token = hs256(&good_claims());
    let bare = JwtAuthenticator::new(StaticKey::hs256(SECRET)).issuer(ISSUER);
    for _ in 0..2 {
        let refused = bare.verify(&token).unwrap_err();
        assert_eq!(
            refused.reason(),
            auth_diagnostics::Reason::TokenAudienceMismatch
        );
    }
    // A changed configuration is checked again.
    assert!(bare.audience(AUDIENCE).verify(&token).is_ok());
}
