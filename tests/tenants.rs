//! Issuer templates (multi-tenant issuers, as Entra ID's): `iss` is the template filled
//! with the token's tenant claim, the tenant is allowed (or any is), one key source serves
//! every tenant and is fetched once.

mod common;
use common::*;

use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::{Algorithm, KeySource, StaticKey};
use auth_diagnostics::layer::ConfigError;
use axum::extract::State;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const V2: &str = "https://login.microsoftonline.com/{tid}/v2.0";
const V1: &str = "https://sts.windows.net/{tid}/";

fn v2(tid: &str) -> String {
    format!("https://login.microsoftonline.com/{tid}/v2.0")
}

fn v1(tid: &str) -> String {
    format!("https://sts.windows.net/{tid}/")
}

/// HS256 with the test secret, the v2 template, tenants t1 and t2.
fn tenant_jwt(template: &str) -> JwtAuthenticator {
    JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer_template(template, "tid")
        .tenants(["t1", "t2"])
        .audience(AUDIENCE)
        .require_claims(["sub"])
}

fn app(jwt: JwtAuthenticator) -> axum::Router {
    jwt_app(layer(DetailMode::Verbose), jwt)
}

async fn me(app: &axum::Router, token: &str) -> Outcome {
    send(
        app.clone(),
        get("/me", &[("authorization", &bearer(token))]),
    )
    .await
}

fn token(iss: &str, tid: Value) -> String {
    hs256(&claims(json!({ "iss": iss, "tid": tid })))
}

#[tokio::test]
async fn each_allowed_tenant_with_its_own_issuer_is_accepted() {
    let app = app(tenant_jwt(V2));
    for tid in ["t1", "t2"] {
        let out = me(&app, &token(&v2(tid), json!(tid))).await;
        assert_eq!(out.ok()["sub"], "alice");
    }
}

#[tokio::test]
async fn the_v1_issuer_form_works_the_same() {
    let app = app(tenant_jwt(V1));
    me(&app, &token(&v1("t1"), json!("t1"))).await.ok();
    // A v2 issuer is not of the v1 template's form: another issuer.
    me(&app, &token(&v2("t1"), json!("t1")))
        .await
        .check(&expect("token_issuer_mismatch").verbose());
}

#[tokio::test]
async fn an_issuer_of_another_tenant_than_the_claim_is_tenant_issuer_mismatch() {
    let app = app(tenant_jwt(V2));
    let out = me(&app, &token(&v2("t2"), json!("t1"))).await;
    let r = out.check(&expect("tenant_issuer_mismatch").verbose());
    let detail = r.detail();
    assert!(detail.contains(&v2("t2")), "{detail}");
    assert!(detail.contains("tid t1"), "{detail}");
    assert!(detail.contains(&v2("t1")), "{detail}");
}

#[tokio::test]
async fn a_tenant_outside_the_allow_list_is_token_issuer_mismatch() {
    let app = app(tenant_jwt(V2));
    let out = me(&app, &token(&v2("t3"), json!("t3"))).await;
    let r = out.check(&expect("token_issuer_mismatch").verbose());
    assert!(
        r.detail().contains("tenant t3 is not accepted"),
        "{}",
        r.detail()
    );
}

#[tokio::test]
async fn any_tenant_accepts_every_plain_tenant() {
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer_template(V2, "tid")
        .any_tenant()
        .audience(AUDIENCE);
    let app = app(jwt);
    me(&app, &token(&v2("t3"), json!("t3"))).await.ok();
    me(
        &app,
        &token(
            &v2("72f988bf-86f1-41af-91ab-2d7cd011db47"),
            json!("72f988bf-86f1-41af-91ab-2d7cd011db47"),
        ),
    )
    .await
    .ok();
}

#[tokio::test]
async fn a_token_without_the_tenant_claim_is_token_claim_missing() {
    let app = app(tenant_jwt(V2));
    let out = me(&app, &token(&v2("t1"), Value::Null)).await;
    let r = out.check(&expect("token_claim_missing").verbose());
    assert!(
        r.detail().contains("tenant claim tid is missing"),
        "{}",
        r.detail()
    );
}

#[tokio::test]
async fn a_tenant_claim_that_is_no_plain_identifier_is_refused() {
    let app = app(tenant_jwt(V2));
    for tid in ["t1/../t2", "..", "t1?x", "t1#x", "t1/x"] {
        let iss = v2(tid);
        me(&app, &token(&iss, json!(tid)))
            .await
            .check(&expect("token_claim_invalid").verbose());
    }
    let long = "a".repeat(JwtAuthenticator::MAX_TENANT_LEN + 1);
    me(&app, &token(&v2(&long), json!(long)))
        .await
        .check(&expect("token_claim_invalid").verbose());
    me(&app, &token(&v2("7"), json!(7)))
        .await
        .check(&expect("token_claim_invalid").verbose());
}

#[tokio::test]
async fn verify_says_the_same_without_a_layer() {
    let jwt = tenant_jwt(V2);
    assert!(jwt.verify(&token(&v2("t1"), json!("t1"))).is_ok());
    let f = jwt.verify(&token(&v2("t2"), json!("t1"))).unwrap_err();
    assert_eq!(f.reason().code(), "tenant_issuer_mismatch");
}

#[test]
fn configuration_errors() {
    let errors = |jwt: JwtAuthenticator| -> Vec<ConfigError> {
        match auth_diagnostics::AuthDiagnostics::new()
            .bearer(jwt)
            .try_build()
        {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().collect(),
        }
    };
    let base = || JwtAuthenticator::new(StaticKey::hs256(SECRET)).audience(AUDIENCE);
    let template = |e: &[ConfigError]| {
        e.iter()
            .filter_map(|e| match e {
                ConfigError::IssuerTemplate { why, .. } => Some(why.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // Neither tenants nor any.
    let e = errors(base().issuer_template(V2, "tid"));
    assert!(template(&e)[0].contains("no tenant is accepted"), "{e:?}");
    // Both.
    let e = errors(
        base()
            .issuer_template(V2, "tid")
            .tenants(["t1"])
            .any_tenant(),
    );
    assert!(template(&e)[0].contains("choose one"), "{e:?}");
    // No placeholder, two placeholders, an empty claim.
    for (t, c) in [
        ("https://login.microsoftonline.com/v2.0", "tid"),
        ("https://{a}.example/{b}", "tid"),
        (V2, ""),
    ] {
        let e = errors(base().issuer_template(t, c).any_tenant());
        assert_eq!(template(&e).len(), 1, "{t} {c}: {e:?}");
    }
    // A tenant that is no plain identifier.
    let e = errors(base().issuer_template(V2, "tid").tenants(["a/b"]));
    assert!(template(&e)[0].contains("not a plain identifier"), "{e:?}");
    // Tenants without a template.
    let e = errors(base().issuer("https://x.test").tenants(["t1"]));
    assert_eq!(template(&e).len(), 1, "{e:?}");
    // A well-formed one, and the message.
    assert!(errors(tenant_jwt(V2)).is_empty());
    let e = errors(base().issuer_template(V2, "tid"));
    assert!(e[0].to_string().contains(".any_tenant()"), "{}", e[0]);
    // The template counts as the issuer: no NoIssuer.
    assert!(!e.contains(&ConfigError::NoIssuer));
}

#[tokio::test]
async fn several_authenticators_route_by_the_template() {
    let other = JwtAuthenticator::new(StaticKey::hs256("another-secret-of-32-bytes-long!"))
        .issuer(ISSUER)
        .audience(AUDIENCE);
    let layer = layer(DetailMode::Verbose).bearer(other);
    let app = jwt_app(layer, tenant_jwt(V2));
    me(&app, &token(&v2("t1"), json!("t1"))).await.ok();
    me(&app, &token(&v2("t2"), json!("t1")))
        .await
        .check(&expect("tenant_issuer_mismatch").verbose());
    me(&app, &token(&v2("t3"), json!("t3")))
        .await
        .check(&expect("token_issuer_mismatch").verbose());
    // The exact issuer goes to the other authenticator (whose key is another).
    me(&app, &hs256(&good_claims()))
        .await
        .check(&expect("token_signature_invalid").verbose());
    // Two authenticators with one template: a configuration error.
    let twice = auth_diagnostics::AuthDiagnostics::new()
        .bearer(tenant_jwt(V2))
        .bearer(tenant_jwt(V2))
        .try_build();
    let Err(e) = twice else {
        panic!("one template for two authenticators was accepted")
    };
    let e: Vec<ConfigError> = e.into_iter().collect();
    assert!(
        e.iter()
            .any(|e| matches!(e, ConfigError::IssuerOfTwoAuthenticators { .. })),
        "{e:?}"
    );
}

// One shared JWK set ---------------------------------------------------------------------------

fn rsa() -> EncodingKey {
    let dir = env!("CARGO_MANIFEST_DIR");
    EncodingKey::from_rsa_pem(&std::fs::read(format!("{dir}/tests/keys/rsa_private.pem")).unwrap())
        .unwrap()
}

/// A JWK set server on loopback counting its fetches.
async fn jwks_server() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&rsa(), Algorithm::RS256).unwrap()).unwrap();
    jwk["kid"] = json!("common-1");
    jwk["use"] = json!("sig");
    let set = json!({ "keys": [jwk] });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/common/discovery/v2.0/keys",
        listener.local_addr().unwrap()
    );
    let app = axum::Router::new()
        .route(
            "/common/discovery/v2.0/keys",
            axum::routing::get(
                |State((hits, set)): State<(Arc<AtomicUsize>, Value)>| async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    axum::Json(set)
                },
            ),
        )
        .with_state((hits.clone(), set));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

fn rs256(iss: &str, tid: &str, kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    sign(&header, &claims(json!({ "iss": iss, "tid": tid })), &rsa())
}

#[tokio::test]
async fn one_common_key_set_is_fetched_once_for_every_tenant() {
    let (url, hits) = jwks_server().await;
    let source = KeySource::jwks(url);
    let jwt = JwtAuthenticator::from_source(source.clone())
        .issuer_template(V2, "tid")
        .any_tenant()
        .audience(AUDIENCE);
    let app = app(jwt);
    tokio::time::timeout(Duration::from_secs(5), source.ready())
        .await
        .expect("keys within 5 s");
    for i in 0..50 {
        let tid = format!("tenant-{i}");
        me(&app, &rs256(&v2(&tid), &tid, "common-1")).await.ok();
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1, "one fetch for 50 tenants");
    // Mismatched tenants and foreign issuers, with unknown kids, fetch nothing: the tenant
    // is checked before any key is looked for.
    for i in 0..5 {
        let kid = format!("unknown-{i}");
        let out = me(&app, &rs256(&v2("t2"), "t1", &kid)).await;
        let r = out.check(&expect("tenant_issuer_mismatch").verbose());
        assert!(
            r.detail().contains("keys were not consulted"),
            "{}",
            r.detail()
        );
        me(&app, &rs256("https://attacker.example", "t1", &kid))
            .await
            .check(&expect("token_issuer_mismatch").verbose());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "no fetch for refused issuers"
    );
}

#[tokio::test]
async fn an_allow_list_is_checked_before_any_fetch() {
    let (url, hits) = jwks_server().await;
    let source = KeySource::jwks(url).miss_refresh_interval(Duration::ZERO);
    let jwt = JwtAuthenticator::from_source(source.clone())
        .issuer_template(V1, "tid")
        .tenants(["t1"])
        .audience(AUDIENCE);
    let app = app(jwt);
    tokio::time::timeout(Duration::from_secs(5), source.ready())
        .await
        .expect("keys within 5 s");
    me(&app, &rs256(&v1("t1"), "t1", "common-1")).await.ok();
    for i in 0..5 {
        me(&app, &rs256(&v1("t3"), "t3", &format!("k{i}")))
            .await
            .check(&expect("token_issuer_mismatch").verbose());
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

/// The demo's `GET /tenant` as demo.md lists it: issuer `https://login.demo.local/{tid}/v2.0`,
/// tenants t1 and t2, the demo's secret (here the tests').
#[tokio::test]
async fn the_demo_tenant_route_as_demo_md_says() {
    let layer = auth_diagnostics::AuthDiagnostics::new()
        .realm("demo")
        .detail_mode(DetailMode::Verbose);
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer_template("https://login.demo.local/{tid}/v2.0", "tid")
        .tenants(["t1", "t2"])
        .audience(AUDIENCE)
        .require_claims(["sub"])
        .leeway(Duration::from_secs(30));
    let app = axum::Router::new()
        .route(
            "/tenant",
            axum::routing::get(|p: auth_diagnostics::Principal| async move {
                axum::Json(json!({ "sub": p.id() }))
            }),
        )
        .route_layer(layer.bearer(jwt));
    let call = |iss: String, tid: &str| {
        let app = app.clone();
        let t = token(&iss, json!(tid));
        async move { send(app, get("/tenant", &[("authorization", &bearer(&t))])).await }
    };
    let demo = |tid: &str| format!("https://login.demo.local/{tid}/v2.0");
    call(demo("t1"), "t1").await.ok();
    call(demo("t2"), "t2").await.ok();
    call(demo("t2"), "t1")
        .await
        .check(&expect("tenant_issuer_mismatch").verbose().realm("demo"));
    call(demo("t3"), "t3")
        .await
        .check(&expect("token_issuer_mismatch").verbose().realm("demo"));
}

#[tokio::test]
async fn v1_and_v2_templates_on_one_layer_each_take_their_form() {
    let layer = layer(DetailMode::Verbose).bearer(tenant_jwt(V1));
    let app = jwt_app(layer, tenant_jwt(V2));
    me(&app, &token(&v1("t1"), json!("t1"))).await.ok();
    me(&app, &token(&v2("t2"), json!("t2"))).await.ok();
    me(&app, &token(&v1("t2"), json!("t1")))
        .await
        .check(&expect("tenant_issuer_mismatch").verbose());
    let out = me(&app, &token("https://issuer.test", json!("t1"))).await;
    let r = out.check(&expect("token_issuer_mismatch").verbose());
    assert!(
        r.detail().contains(V1) && r.detail().contains(V2),
        "{}",
        r.detail()
    );
}
