//! Identity-aware proxies: Cloudflare Access, Google IAP and AWS ALB assertions, signed
//! with keys made here and served the way each provider serves them by an in-process
//! server on `127.0.0.1:0` — a JWK set for Cloudflare and Google, one PEM per `kid` for
//! ALB, whose tokens carry base64 padding.

mod common;
use common::*;

use auth_diagnostics::jwt::{Claims, IdentityAwareProxy};
use auth_diagnostics::Principal;
use axum::extract::{Path, State};
use axum::routing::get as route_get;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::sync::{Arc, Mutex};

const CF_AUD: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
const IAP_AUD: &str = "/projects/123456789012/global/backendServices/987654321";
const ALB_ARN: &str =
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188";
const ALB_IDP: &str = "https://idp.example";
const ALB_KID: &str = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d";

/// A key pair made for this run: its signing key and its public parts.
struct Key {
    alg: Algorithm,
    encoding: EncodingKey,
    /// SubjectPublicKeyInfo PEM (EC keys only).
    public_pem: Option<String>,
}

impl Key {
    /// A P-256 key generated now.
    fn ec() -> Key {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        Key {
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
            public_pem: Some(pair.public_key_pem()),
        }
    }

    /// An RSA key (RSA generation is slow and rcgen cannot do it: the test key of
    /// `tests/keys`, which was generated for these tests).
    fn rsa() -> Key {
        let dir = env!("CARGO_MANIFEST_DIR");
        let pem = std::fs::read(format!("{dir}/tests/keys/rsa_private.pem")).unwrap();
        Key {
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_pem(&pem).unwrap(),
            public_pem: None,
        }
    }

    fn jwk(&self, kid: &str) -> Value {
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&self.encoding, self.alg).unwrap())
                .unwrap();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk
    }

    fn sign(&self, kid: &str, claims: Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }

    /// ALB's encoding: base64url segments with padding, signed over that text.
    fn sign_alb(&self, header: Value, claims: Value) -> String {
        let h = URL_SAFE.encode(header.to_string());
        let p = URL_SAFE.encode(claims.to_string());
        let input = format!("{h}.{p}");
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, self.alg).unwrap();
        let sig = URL_SAFE.encode(URL_SAFE_NO_PAD.decode(sig).unwrap());
        format!("{input}.{sig}")
    }
}

/// What the provider serves, and which paths it was asked for.
#[derive(Default)]
struct Served {
    jwks: Value,
    pems: Vec<(String, String)>,
    asked: Vec<String>,
}

/// A provider on loopback: `/certs` (a JWK set) and `/<kid>` (one PEM per kid).
async fn provider(served: Served) -> (String, Arc<Mutex<Served>>) {
    let state = Arc::new(Mutex::new(served));
    let app = axum::Router::new()
        .route(
            "/certs",
            route_get(|State(s): State<Arc<Mutex<Served>>>| async move {
                let mut s = s.lock().unwrap();
                s.asked.push("/certs".to_owned());
                axum::Json(s.jwks.clone())
            }),
        )
        .route(
            "/{kid}",
            route_get(
                |State(s): State<Arc<Mutex<Served>>>, Path(kid): Path<String>| async move {
                    let mut s = s.lock().unwrap();
                    s.asked.push(format!("/{kid}"));
                    match s.pems.iter().find(|(k, _)| *k == kid) {
                        Some((_, pem)) => (StatusCode::OK, pem.clone()),
                        // What S3 answers for a key it does not have.
                        None => (StatusCode::FORBIDDEN, "AccessDenied".to_owned()),
                    }
                },
            ),
        )
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, state)
}

/// The application: `/me` answers the principal's id and the assertion's email.
fn app(iap: IdentityAwareProxy) -> axum::Router {
    let layer = AuthDiagnostics::new()
        .identity_aware_proxy(iap)
        .verbose()
        .try_build()
        .unwrap();
    axum::Router::new()
        .route(
            "/me",
            route_get(|p: Principal, Claims(c): Claims<Value>| async move {
                axum::Json(json!({"id": p.id(), "email": c["email"]}))
            }),
        )
        .layer(layer)
}

fn req(header: &str, token: &str) -> http::Request<axum::body::Body> {
    get("/me", &[(header, token)])
}

/// A refusal: its status, its reason in the body and the log; returns its log message
/// (`reason: detail`).
#[track_caller]
fn refused(out: &Outcome, status: u16, reason: &str) -> String {
    assert_eq!(out.status, status, "{}", out.text());
    assert_eq!(out.problem()["reason"], reason, "{}", out.text());
    let e = out.event();
    assert_eq!(e.field("reason"), reason);
    e.field("message").to_owned()
}

// Cloudflare Access ------------------------------------------------------------------------

fn cf_claims(edits: Value) -> Value {
    let now = now();
    let mut c = json!({
        "aud": [CF_AUD],
        "email": "alice@example.com",
        "exp": now + 300,
        "iat": now,
        "nbf": now,
        "iss": "https://acme.cloudflareaccess.com",
        "type": "app",
        "identity_nonce": "6ei69kawdKzMIAPF",
        "sub": "7335d417-61da-459d-899c-0a01c76a2f94",
        "country": "US",
    });
    for (k, v) in edits.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

async fn cloudflare() -> (axum::Router, Key) {
    let key = Key::rsa();
    let (base, _) = provider(Served {
        jwks: json!({"keys": [key.jwk("cf1")]}),
        ..Served::default()
    })
    .await;
    // The preset's own issuer; only the certs URL points here.
    let iap =
        IdentityAwareProxy::cloudflare_access("acme", CF_AUD).keys_url(format!("{base}/certs"));
    (app(iap), key)
}

#[tokio::test]
async fn cloudflare_access_assertion_authenticates() {
    let (app, key) = cloudflare().await;
    let t = key.sign("cf1", cf_claims(json!({})));
    let out = send(app, req("cf-access-jwt-assertion", &t)).await;
    let body = out.ok();
    assert_eq!(body["id"], "7335d417-61da-459d-899c-0a01c76a2f94");
    assert_eq!(body["email"], "alice@example.com");
    // Answers authenticated by a header a shared cache does not key on are private.
    assert!(out.header("cache-control").unwrap().contains("private"));
}

#[tokio::test]
async fn cloudflare_service_token_is_its_common_name() {
    let (app, key) = cloudflare().await;
    let claims = cf_claims(json!({"sub": "", "common_name": "a1b2c3.access", "email": null}));
    let t = key.sign("cf1", claims);
    let out = send(app, req("Cf-Access-Jwt-Assertion", &t)).await;
    assert_eq!(out.ok()["id"], "a1b2c3.access");
}

#[tokio::test]
async fn cloudflare_wrong_aud_names_both_tags_and_where_to_look() {
    let (app, key) = cloudflare().await;
    let t = key.sign("cf1", cf_claims(json!({"aud": ["other-application-tag"]})));
    let out = send(app, req("cf-access-jwt-assertion", &t)).await;
    let detail = refused(&out, 401, "token_audience_mismatch");
    assert!(detail.contains("other-application-tag"), "{detail}");
    assert!(detail.contains(CF_AUD), "{detail}");
    assert!(out
        .event()
        .field("hint")
        .contains("Application Audience (AUD) Tag"));
}

#[tokio::test]
async fn cloudflare_other_team_is_an_issuer_mismatch() {
    let (app, key) = cloudflare().await;
    let claims = cf_claims(json!({"iss": "https://evil.cloudflareaccess.com"}));
    let out = send(
        app,
        req("cf-access-jwt-assertion", &key.sign("cf1", claims)),
    )
    .await;
    let detail = refused(&out, 401, "token_issuer_mismatch");
    assert!(
        detail.contains("https://evil.cloudflareaccess.com"),
        "{detail}"
    );
    assert!(
        detail.contains("https://acme.cloudflareaccess.com"),
        "{detail}"
    );
}

#[tokio::test]
async fn missing_assertion_is_refused() {
    let (app, _) = cloudflare().await;
    let out = send(app, get("/me", &[])).await;
    assert_eq!(out.status, 401, "{}", out.text());
    assert_eq!(out.problem()["reason"], "credentials_missing");
    let c = out.challenge();
    assert_eq!(c.scheme, "ProxyAssertion");
    assert_eq!(c.param("header"), Some("Cf-Access-Jwt-Assertion"));
}

#[tokio::test]
async fn assertion_in_authorization_is_the_wrong_place() {
    let (app, key) = cloudflare().await;
    let t = key.sign("cf1", cf_claims(json!({})));
    let out = send(app, get("/me", &[("authorization", &bearer(&t))])).await;
    let detail = refused(&out, 401, "credentials_wrong_location");
    assert!(detail.contains("Cf-Access-Jwt-Assertion"), "{detail}");
}

#[tokio::test]
async fn unsigned_assertion_is_refused() {
    let (app, _) = cloudflare().await;
    let h = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": "cf1"}).to_string());
    let p = URL_SAFE_NO_PAD.encode(cf_claims(json!({})).to_string());
    let out = send(app, req("cf-access-jwt-assertion", &format!("{h}.{p}."))).await;
    refused(&out, 401, "token_algorithm_rejected");
}

#[tokio::test]
async fn two_assertions_conflict() {
    let (app, key) = cloudflare().await;
    let t = key.sign("cf1", cf_claims(json!({})));
    let r = request(
        Method::GET,
        "/me",
        vec![
            ("cf-access-jwt-assertion", hv(&t)),
            ("cf-access-jwt-assertion", hv(&t)),
        ],
    );
    refused(&send(app, r).await, 400, "credentials_conflict");
}

// Google IAP --------------------------------------------------------------------------------

fn iap_claims(edits: Value) -> Value {
    let now = now();
    let mut c = json!({
        "aud": IAP_AUD,
        "email": "accounts.google.com:alice@example.com",
        "exp": now + 600,
        "iat": now,
        "iss": "https://cloud.google.com/iap",
        "sub": "accounts.google.com:118204799485542134231",
        "hd": "example.com",
    });
    for (k, v) in edits.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

async fn google() -> (axum::Router, Key) {
    let key = Key::ec();
    let (base, _) = provider(Served {
        jwks: json!({"keys": [key.jwk("iap1")]}),
        ..Served::default()
    })
    .await;
    let iap = IdentityAwareProxy::google_iap(IAP_AUD).keys_url(format!("{base}/certs"));
    (app(iap), key)
}

#[tokio::test]
async fn google_iap_assertion_authenticates() {
    let (app, key) = google().await;
    let t = key.sign("iap1", iap_claims(json!({})));
    let out = send(app, req("x-goog-iap-jwt-assertion", &t)).await;
    let body = out.ok();
    assert_eq!(body["id"], "accounts.google.com:118204799485542134231");
    assert_eq!(body["email"], "accounts.google.com:alice@example.com");
}

#[tokio::test]
async fn google_iap_other_backend_service_is_an_audience_mismatch() {
    let (app, key) = google().await;
    let other = "/projects/123456789012/global/backendServices/111";
    let t = key.sign("iap1", iap_claims(json!({ "aud": other })));
    let out = send(app, req("x-goog-iap-jwt-assertion", &t)).await;
    let detail = refused(&out, 401, "token_audience_mismatch");
    assert!(
        detail.contains(other) && detail.contains(IAP_AUD),
        "{detail}"
    );
    assert!(out
        .event()
        .field("hint")
        .contains("backend-services describe"));
}

#[tokio::test]
async fn google_iap_expired_assertion_is_expired() {
    let (app, key) = google().await;
    let t = key.sign(
        "iap1",
        iap_claims(json!({"exp": now() - 3600, "iat": now() - 4200})),
    );
    let out = send(app, req("x-goog-iap-jwt-assertion", &t)).await;
    refused(&out, 401, "token_expired");
}

#[tokio::test]
async fn google_iap_refuses_an_rs256_assertion() {
    let (app, _) = google().await;
    let t = Key::rsa().sign("iap1", iap_claims(json!({})));
    let out = send(app, req("x-goog-iap-jwt-assertion", &t)).await;
    refused(&out, 401, "token_algorithm_rejected");
}

// AWS ALB -----------------------------------------------------------------------------------

fn alb_header(signer: &str) -> Value {
    json!({
        "typ": "JWT",
        "kid": ALB_KID,
        "alg": "ES256",
        "iss": ALB_IDP,
        "client": "client-id",
        "signer": signer,
        "exp": now() + 120,
    })
}

fn alb_claims(edits: Value) -> Value {
    let mut c = json!({
        "sub": "9f1c6e2a",
        "email": "bob@example.com",
        "exp": now() + 120,
        "iss": ALB_IDP,
    });
    for (k, v) in edits.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

async fn alb() -> (axum::Router, Key, Arc<Mutex<Served>>) {
    let key = Key::ec();
    let pem = key.public_pem.clone().unwrap();
    let (base, served) = provider(Served {
        pems: vec![(ALB_KID.to_owned(), pem)],
        ..Served::default()
    })
    .await;
    let iap =
        IdentityAwareProxy::aws_alb("eu-west-1", ALB_ARN, ALB_IDP).keys_url(format!("{base}/"));
    (app(iap), key, served)
}

#[tokio::test]
async fn alb_padded_assertion_authenticates_with_the_key_of_its_kid() {
    let (app, key, served) = alb().await;
    let t = key.sign_alb(alb_header(ALB_ARN), alb_claims(json!({})));
    assert!(t.contains('='), "the token carries base64 padding: {t}");
    let out = send(app.clone(), req("x-amzn-oidc-data", &t)).await;
    let body = out.ok();
    assert_eq!(body["id"], "9f1c6e2a");
    assert_eq!(body["email"], "bob@example.com");
    // Again: the key is held, not fetched twice.
    send(app, req("x-amzn-oidc-data", &t)).await.ok();
    let asked = served.lock().unwrap().asked.clone();
    assert_eq!(asked, [format!("/{ALB_KID}")]);
}

#[tokio::test]
async fn alb_other_signer_is_refused_before_any_fetch() {
    let (app, key, served) = alb().await;
    let other = ALB_ARN.replace("app/web/", "app/other/");
    let t = key.sign_alb(alb_header(&other), alb_claims(json!({})));
    let out = send(app, req("x-amzn-oidc-data", &t)).await;
    let detail = refused(&out, 401, "token_issuer_mismatch");
    assert!(
        detail.contains(&other) && detail.contains(ALB_ARN),
        "{detail}"
    );
    assert!(detail.contains("signer"), "{detail}");
    assert!(served.lock().unwrap().asked.is_empty());
}

#[tokio::test]
async fn alb_signature_covers_the_signer() {
    let (app, key, _) = alb().await;
    // Signed for another load balancer, then the header's signer rewritten to ours.
    let other = ALB_ARN.replace("app/web/", "app/other/");
    let t = key.sign_alb(alb_header(&other), alb_claims(json!({})));
    let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
    parts[0] = URL_SAFE.encode(alb_header(ALB_ARN).to_string());
    let forged = parts.join(".");
    let out = send(app, req("x-amzn-oidc-data", &forged)).await;
    refused(&out, 401, "token_signature_invalid");
}

#[tokio::test]
async fn alb_wrong_issuer_expired_and_unknown_kid() {
    let (app, key, _) = alb().await;
    let t = key.sign_alb(
        alb_header(ALB_ARN),
        alb_claims(json!({"iss": "https://other-idp.example"})),
    );
    let out = send(app.clone(), req("x-amzn-oidc-data", &t)).await;
    let detail = refused(&out, 401, "token_issuer_mismatch");
    assert!(detail.contains("https://other-idp.example"), "{detail}");

    let t = key.sign_alb(alb_header(ALB_ARN), alb_claims(json!({"exp": now() - 600})));
    refused(
        &send(app.clone(), req("x-amzn-oidc-data", &t)).await,
        401,
        "token_expired",
    );

    let mut header = alb_header(ALB_ARN);
    header["kid"] = json!("ffffffff-0000-0000-0000-000000000000");
    let t = key.sign_alb(header, alb_claims(json!({})));
    let out = send(app, req("x-amzn-oidc-data", &t)).await;
    let detail = refused(&out, 401, "token_key_unknown");
    assert!(detail.contains("no such key"), "{detail}");
}

#[tokio::test]
async fn alb_unpadded_assertion_is_read_too() {
    let (app, key, _) = alb().await;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(ALB_KID.to_owned());
    let mut h = serde_json::to_value(&header).unwrap();
    h["signer"] = json!(ALB_ARN);
    let h = URL_SAFE_NO_PAD.encode(h.to_string());
    let p = URL_SAFE_NO_PAD.encode(alb_claims(json!({})).to_string());
    let input = format!("{h}.{p}");
    let sig =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key.encoding, Algorithm::ES256).unwrap();
    let out = send(app, req("x-amzn-oidc-data", &format!("{input}.{sig}"))).await;
    out.ok();
}

#[test]
fn presets_point_at_the_providers() {
    let cf = format!(
        "{:?}",
        IdentityAwareProxy::cloudflare_access("https://acme.cloudflareaccess.com/", "t")
    );
    assert!(
        cf.contains("https://acme.cloudflareaccess.com/cdn-cgi/access/certs"),
        "{cf}"
    );
    assert!(
        cf.contains(r#"issuer: "https://acme.cloudflareaccess.com""#),
        "{cf}"
    );
    let g = format!("{:?}", IdentityAwareProxy::google_iap(IAP_AUD));
    assert!(
        g.contains("https://www.gstatic.com/iap/verify/public_key-jwk"),
        "{g}"
    );
    assert!(
        g.contains(r#"issuer: "https://cloud.google.com/iap""#),
        "{g}"
    );
    let a = format!(
        "{:?}",
        IdentityAwareProxy::aws_alb("eu-west-1", ALB_ARN, ALB_IDP)
    );
    assert!(
        a.contains("https://public-keys.auth.elb.eu-west-1.amazonaws.com/"),
        "{a}"
    );
}

#[tokio::test]
async fn alb_header_exp_and_iss_apply_when_the_user_claims_lack_them() {
    let (app, key, _) = alb().await;
    let claims = json!({"sub": "9f1c6e2a", "email": "bob@example.com"});
    let t = key.sign_alb(alb_header(ALB_ARN), claims.clone());
    send(app.clone(), req("x-amzn-oidc-data", &t)).await.ok();

    let mut header = alb_header(ALB_ARN);
    header["exp"] = json!(now() - 600);
    let t = key.sign_alb(header, claims);
    refused(
        &send(app, req("x-amzn-oidc-data", &t)).await,
        401,
        "token_expired",
    );
}

#[test]
fn a_key_url_in_the_clear_is_a_configuration_error() {
    let iap = IdentityAwareProxy::google_iap(IAP_AUD).keys_url("http://keys.example/jwk");
    let errors = AuthDiagnostics::new()
        .identity_aware_proxy(iap)
        .try_build()
        .unwrap_err();
    assert!(errors.to_string().contains("is not https"), "{errors}");
}
