//! Black-box tests of Bearer JWT verification: every row of the "Bearer tokens (JWT)" table
//! of the contract (shared/spec/reasons.md) plus the 403 `insufficient_scope` row, through
//! the layer with `tower::ServiceExt::oneshot` (the harness `send`, which captures the log
//! events and checks that none of them leaks the token), and through
//! `JwtAuthenticator::verify_at` with a fixed clock.
//!
//! Key material lives in tests/keys/ (generated with the openssl CLI, see its README.md).

mod common;

use auth_diagnostics::{
    Algorithm, AuthDiagnostics, Claims, DecodingKey, JwtAuthenticator, Principal, Reason, StaticKey,
};
use axum::body::Body;
use axum::routing::get as route_get;
use axum::Router;
use common::*;
use http::Request;
use jsonwebtoken::{EncodingKey, Header};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;
use tracing::Level;

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

const RSA_PRIVATE: &[u8] = include_bytes!("keys/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("keys/rsa_public.pem");
const RSA2_PRIVATE: &[u8] = include_bytes!("keys/rsa2_private.pem");
const RSA2_PUBLIC: &[u8] = include_bytes!("keys/rsa2_public.pem");
const EC256_PRIVATE: &[u8] = include_bytes!("keys/ec256_private.pem");
const EC256_PUBLIC: &[u8] = include_bytes!("keys/ec256_public.pem");
const EC384_PRIVATE: &[u8] = include_bytes!("keys/ec384_private.pem");
const EC384_PUBLIC: &[u8] = include_bytes!("keys/ec384_public.pem");
const ED_PRIVATE: &[u8] = include_bytes!("keys/ed25519_private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("keys/ed25519_public.pem");

fn rsa_enc() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap()
}
fn rsa_dec() -> DecodingKey {
    DecodingKey::from_rsa_pem(RSA_PUBLIC).unwrap()
}
fn rsa2_enc() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA2_PRIVATE).unwrap()
}
fn rsa2_dec() -> DecodingKey {
    DecodingKey::from_rsa_pem(RSA2_PUBLIC).unwrap()
}
fn ec256_enc() -> EncodingKey {
    EncodingKey::from_ec_pem(EC256_PRIVATE).unwrap()
}
fn ec256_dec() -> DecodingKey {
    DecodingKey::from_ec_pem(EC256_PUBLIC).unwrap()
}
fn ec384_enc() -> EncodingKey {
    EncodingKey::from_ec_pem(EC384_PRIVATE).unwrap()
}
fn ec384_dec() -> DecodingKey {
    DecodingKey::from_ec_pem(EC384_PUBLIC).unwrap()
}
fn ed_enc() -> EncodingKey {
    EncodingKey::from_ed_pem(ED_PRIVATE).unwrap()
}
fn ed_dec() -> DecodingKey {
    DecodingKey::from_ed_pem(ED_PUBLIC).unwrap()
}
fn hs_enc() -> EncodingKey {
    EncodingKey::from_secret(SECRET.as_bytes())
}

/// The usual issuer/audience/sub requirements on top of `key`.
fn authn(key: StaticKey) -> JwtAuthenticator {
    JwtAuthenticator::new(key)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .require_claims(["sub"])
}

fn rs256_only() -> JwtAuthenticator {
    authn(StaticKey::new(rsa_dec(), Algorithm::RS256))
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

/// [`good_claims`] with `edits` merged in; a `null` in `edits` removes the claim.
fn claims_with(edits: Value) -> Map<String, Value> {
    let mut c = good_claims();
    for (k, v) in edits.as_object().expect("edits are an object") {
        if v.is_null() {
            c.remove(k);
        } else {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

fn token(alg: Algorithm, key: &EncodingKey, claims: &Map<String, Value>) -> String {
    sign(&Header::new(alg), claims, key)
}

fn token_kid(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Map<String, Value>) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_owned());
    sign(&h, claims, key)
}

fn token_typ(typ: Option<&str>, claims: &Map<String, Value>) -> String {
    let mut h = Header::new(Algorithm::HS256);
    h.typ = typ.map(str::to_owned);
    sign(&h, claims, &hs_enc())
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The three segments of a compact JWS.
fn segments(token: &str) -> (String, String, String) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    (parts[0].into(), parts[1].into(), parts[2].into())
}

/// Seconds since the epoch as RFC 3339 UTC, computed independently of the crate.
fn rfc3339(secs: i64) -> String {
    assert!(secs >= 0);
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let (mut days, rem) = (secs / 86_400, secs % 86_400);
    let mut year = 1970;
    loop {
        let len = if leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let months = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= months[month] {
        days -= months[month];
        month += 1;
    }
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        month + 1,
        days + 1,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn the_test_clock_formats_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_795_750_500), "2026-11-27T03:35:00Z");
}

// ---------------------------------------------------------------------------------------
// Apps and requests
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Production,
    Verbose,
}
use Mode::{Production, Verbose};

fn layer(mode: Mode) -> AuthDiagnostics {
    match mode {
        Production => AuthDiagnostics::new(),
        Verbose => AuthDiagnostics::new().verbose(),
    }
}

/// `/me` answers `{"sub", "scheme"}` of the principal.
fn app(jwt: JwtAuthenticator, mode: Mode) -> Router {
    Router::new()
        .route(
            "/me",
            route_get(|p: Principal| async move {
                axum::Json(json!({ "sub": p.id(), "scheme": p.scheme() }))
            }),
        )
        .layer(layer(mode).bearer(jwt))
}

fn with_bearer(path: &str, token: &str) -> Request<Body> {
    get(path, &[("authorization", &format!("Bearer {token}"))])
}

async fn call(jwt: &JwtAuthenticator, mode: Mode, token: &str) -> Outcome {
    send(app(jwt.clone(), mode), with_bearer("/me", token)).await
}

#[track_caller]
fn assert_ok(out: &Outcome, sub: &str) {
    assert_eq!(
        out.status,
        200,
        "body: {} events: {:#?}",
        String::from_utf8_lossy(&out.body),
        out.events
    );
    assert_eq!(out.json()["sub"], sub);
    assert_eq!(out.json()["scheme"], "Bearer");
    assert!(out.events.is_empty(), "{:#?}", out.events);
}

/// What a rejection produced, after the checks every rejection must pass.
struct Rejection {
    problem: Value,
    event: Captured,
    description: String,
}

impl Rejection {
    fn detail(&self) -> &str {
        self.problem["detail"].as_str().unwrap()
    }
    fn message(&self) -> &str {
        self.event.field("message")
    }
}

/// Checks status, `Cache-Control`, the Bearer challenge, the problem body and the event
/// shared by every Bearer rejection.
#[track_caller]
fn rejected(out: &Outcome, status: u16, reason: &str, mode: Mode) -> Rejection {
    assert_eq!(
        out.status.as_u16(),
        status,
        "status; body {} events {:#?}",
        String::from_utf8_lossy(&out.body),
        out.events
    );
    assert_eq!(out.header("cache-control"), Some("no-store"));
    for raw in out.headers.get_all("www-authenticate") {
        assert!(
            !raw.as_bytes().contains(&b'\\'),
            "nothing in a challenge should need escaping: {raw:?}"
        );
    }
    let c = out.challenge();
    assert_eq!(c.scheme, "Bearer");
    assert_eq!(c.param("realm"), Some("api"));
    let error = if status == 403 {
        "insufficient_scope"
    } else {
        "invalid_token"
    };
    assert_eq!(c.param("error"), Some(error), "{c:?}");
    let description = c
        .param("error_description")
        .expect("error_description")
        .to_owned();
    assert!(!description.is_empty());
    assert!(description.len() <= 256, "{description}");
    assert!(
        description
            .chars()
            .all(|ch| (' '..='~').contains(&ch) && ch != '"' && ch != '\\'),
        "error_description outside RFC 6750 §3: {description:?}"
    );
    if status == 403 {
        assert_eq!(c.param("scope"), Some("admin"));
    } else {
        assert_eq!(c.param("scope"), None);
    }

    let problem = out.problem();
    assert_eq!(problem["reason"], reason, "{problem}");
    assert_eq!(
        problem["type"],
        Reason::from_code(reason).unwrap().type_uri()
    );
    match mode {
        Production => {
            // Production: the generic sentence, no hint, no facts.
            assert_eq!(
                problem["detail"],
                Reason::from_code(reason).unwrap().detail(),
                "{problem}"
            );
            assert_eq!(description, problem["detail"].as_str().unwrap());
            for member in [
                "hint",
                "claim",
                "expired_at",
                "expected_issuer",
                "expected_audience",
                "expected_scheme",
                "location",
            ] {
                assert!(
                    problem.get(member).is_none(),
                    "production body shows {member}: {problem}"
                );
            }
        }
        Verbose => {
            assert!(
                problem["hint"].as_str().is_some_and(|h| !h.is_empty()),
                "verbose body has a hint: {problem}"
            );
        }
    }

    let event = out.event().clone();
    assert_eq!(event.level, Level::WARN);
    assert_eq!(event.field("reason"), reason);
    assert_eq!(event.field("client_reason"), reason);
    assert_eq!(event.field("status"), status.to_string());
    assert_eq!(event.field("method"), "GET");
    assert_eq!(
        Some(event.field("request_id")),
        out.header("x-request-id"),
        "event and response carry the same request id"
    );
    assert!(event.field("message").starts_with(&format!("{reason}: ")));
    assert_clean_event(&event);
    Rejection {
        problem,
        event,
        description,
    }
}

/// [`rejected`] for a 401 of the JWT checks: the event also names where the token was,
/// fingerprints it, and says whether its signature verified.
#[track_caller]
fn token_rejected(out: &Outcome, reason: &str, mode: Mode) -> Rejection {
    let r = rejected(out, 401, reason, mode);
    let e = &r.event;
    assert_eq!(e.field("path"), "/me");
    assert_eq!(e.field("location"), "header:authorization");
    assert_eq!(e.field("scheme_expected"), "Bearer");
    let fp = e.field("fingerprint");
    assert!(
        fp.len() == 12 && fp.bytes().all(|b| b.is_ascii_hexdigit()),
        "fingerprint is a short hash prefix: {fp}"
    );
    r
}

/// No raw control character in any field; every field bounded.
#[track_caller]
fn assert_clean_event(e: &Captured) {
    for (k, v) in &e.fields {
        assert!(
            !v.chars().any(char::is_control),
            "field {k} holds a raw control character: {v:?}"
        );
        assert!(v.chars().count() <= 1100, "field {k} is not capped: {v}");
    }
}

/// Token header/claim fields of the event: escaped (printable ASCII) and capped.
#[track_caller]
fn assert_capped_token_fields(e: &Captured) {
    for k in ["alg", "kid", "typ", "iss", "aud", "sub"] {
        if let Some(v) = e.get(k) {
            assert!(
                v.chars().all(|c| (' '..='~').contains(&c) || c == '…'),
                "field {k} is not escaped: {v:?}"
            );
            assert!(
                v.chars().count() <= 140,
                "field {k} is {} chars long, not capped: {v}",
                v.chars().count()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Success with every algorithm family
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn hmac_family_succeeds() {
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let jwt = authn(StaticKey::new(
            DecodingKey::from_secret(SECRET.as_bytes()),
            alg,
        ));
        let out = call(&jwt, Production, &token(alg, &hs_enc(), &good_claims())).await;
        assert_ok(&out, "alice");
    }
    // The shorthand.
    let out = call(&jwt(), Production, &hs256(&good_claims())).await;
    assert_ok(&out, "alice");
}

#[tokio::test]
async fn rsa_family_succeeds() {
    for alg in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        let jwt = authn(StaticKey::new(rsa_dec(), alg));
        let out = call(&jwt, Production, &token(alg, &rsa_enc(), &good_claims())).await;
        assert_ok(&out, "alice");
    }
}

#[tokio::test]
async fn ecdsa_p256_and_p384_succeed() {
    let jwt = authn(StaticKey::new(ec256_dec(), Algorithm::ES256));
    let t = token(Algorithm::ES256, &ec256_enc(), &good_claims());
    assert_ok(&call(&jwt, Production, &t).await, "alice");

    let jwt = authn(StaticKey::new(ec384_dec(), Algorithm::ES384));
    let t = token(Algorithm::ES384, &ec384_enc(), &good_claims());
    assert_ok(&call(&jwt, Production, &t).await, "alice");
}

#[tokio::test]
async fn eddsa_succeeds() {
    let jwt = authn(StaticKey::new(ed_dec(), Algorithm::EdDSA));
    let t = token(Algorithm::EdDSA, &ed_enc(), &good_claims());
    assert_ok(&call(&jwt, Production, &t).await, "alice");
}

#[tokio::test]
async fn ps256_key_does_not_accept_rs256() {
    // The allow-list is per algorithm, not per key type.
    let jwt = authn(StaticKey::new(rsa_dec(), Algorithm::PS256));
    let t = token(Algorithm::RS256, &rsa_enc(), &good_claims());
    let out = call(&jwt, Verbose, &t).await;
    let r = token_rejected(&out, "token_algorithm_rejected", Verbose);
    assert_eq!(r.event.field("alg"), "RS256");
    assert_eq!(r.event.field("signature_verified"), "false");
    assert!(r.detail().contains("RS256"), "{}", r.detail());
    assert!(r.detail().contains("PS256"), "{}", r.detail());
}

#[tokio::test]
async fn es256_key_does_not_accept_es384() {
    let jwt = authn(StaticKey::new(ec256_dec(), Algorithm::ES256));
    let t = token(Algorithm::ES384, &ec384_enc(), &good_claims());
    let out = call(&jwt, Production, &t).await;
    let r = token_rejected(&out, "token_algorithm_rejected", Production);
    assert_eq!(r.event.field("alg"), "ES384");
}

// ---------------------------------------------------------------------------------------
// Several keys, kid selection
// ---------------------------------------------------------------------------------------

fn key_set() -> JwtAuthenticator {
    authn(StaticKey::new(rsa_dec(), Algorithm::RS256).with_kid("rsa-2024-a"))
        .key(StaticKey::new(rsa2_dec(), Algorithm::RS256).with_kid("rsa-2024-b"))
        .key(StaticKey::new(ec256_dec(), Algorithm::ES256).with_kid("ec-2024"))
        .key(StaticKey::new(ed_dec(), Algorithm::EdDSA).with_kid("ed-2024"))
}

#[tokio::test]
async fn kid_selects_the_key() {
    let jwt = key_set();
    let c = good_claims();
    for t in [
        token_kid(Algorithm::RS256, "rsa-2024-a", &rsa_enc(), &c),
        token_kid(Algorithm::RS256, "rsa-2024-b", &rsa2_enc(), &c),
        token_kid(Algorithm::ES256, "ec-2024", &ec256_enc(), &c),
        token_kid(Algorithm::EdDSA, "ed-2024", &ed_enc(), &c),
        // No kid: every key of the algorithm is tried.
        token(Algorithm::RS256, &rsa2_enc(), &c),
    ] {
        assert_ok(&call(&jwt, Production, &t).await, "alice");
    }
}

#[tokio::test]
async fn kid_of_another_key_does_not_verify() {
    // Signed by key b but naming key a: only key a is tried.
    let t = token_kid(Algorithm::RS256, "rsa-2024-a", &rsa2_enc(), &good_claims());
    let out = call(&key_set(), Verbose, &t).await;
    let r = token_rejected(&out, "token_signature_invalid", Verbose);
    assert_eq!(r.event.field("kid"), "rsa-2024-a");
    assert_eq!(r.event.field("alg"), "RS256");
    assert_eq!(r.event.field("signature_verified"), "false");
}

#[tokio::test]
async fn unknown_kid_is_token_key_unknown() {
    let t = token_kid(Algorithm::RS256, "rsa-2025-z", &rsa_enc(), &good_claims());

    let out = call(&key_set(), Production, &t).await;
    let r = token_rejected(&out, "token_key_unknown", Production);
    assert_eq!(r.event.field("kid"), "rsa-2025-z");
    assert_eq!(r.event.field("alg"), "RS256");
    assert_eq!(r.event.field("signature_verified"), "false");
    assert_eq!(r.event.field("sub"), "alice");
    assert_eq!(r.event.field("iss"), ISSUER);
    assert!(r.message().contains("rsa-2025-z"), "{}", r.message());
    // Production never names the configured keys.
    let body = String::from_utf8_lossy(&out.body);
    for kid in ["rsa-2024-a", "rsa-2024-b", "ec-2024", "ed-2024"] {
        assert!(
            !body.contains(kid),
            "production body names key {kid}: {body}"
        );
    }

    let out = call(&key_set(), Verbose, &t).await;
    let r = token_rejected(&out, "token_key_unknown", Verbose);
    assert!(r.detail().contains("rsa-2025-z"), "{}", r.detail());
}

#[tokio::test]
async fn kid_bound_to_another_algorithm_is_token_key_unknown() {
    // ec-2024 exists, but as an ES256 key: an RS256 token naming it has no key.
    let t = token_kid(Algorithm::RS256, "ec-2024", &rsa_enc(), &good_claims());
    let out = call(&key_set(), Production, &t).await;
    let r = token_rejected(&out, "token_key_unknown", Production);
    assert_eq!(r.event.field("kid"), "ec-2024");
}

// ---------------------------------------------------------------------------------------
// Principal and Claims<T> in handlers
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct TenantClaims {
    sub: String,
    tenant: String,
    exp: i64,
}

fn handler_app(mode: Mode) -> Router {
    Router::new()
        .route(
            "/tenant",
            route_get(|Claims(c): Claims<TenantClaims>| async move {
                axum::Json(json!({ "sub": c.sub, "tenant": c.tenant, "exp": c.exp }))
            }),
        )
        .route(
            "/principal",
            route_get(|p: Principal| async move {
                let scopes: Vec<String> = p.scopes().map(str::to_owned).collect();
                axum::Json(json!({
                    "scheme": p.scheme(),
                    "id": p.id(),
                    "scopes": scopes,
                    "has_write": p.has_scope("write"),
                    "has_admin": p.has_scope("admin"),
                    "tenant": p.claims().and_then(|c| c.get("tenant")).cloned(),
                    "claims_value_is_object": p.claims_value().is_some_and(Value::is_object),
                }))
            }),
        )
        .layer(layer(mode).bearer(jwt()))
}

#[tokio::test]
async fn principal_extractor_sees_the_verified_claims() {
    let c = claims_with(json!({ "tenant": "acme", "scope": "read write" }));
    let out = send(
        handler_app(Production),
        with_bearer("/principal", &hs256(&c)),
    )
    .await;
    assert_eq!(out.status, 200);
    assert!(out.events.is_empty());
    assert_eq!(
        out.json(),
        json!({
            "scheme": "Bearer",
            "id": "alice",
            "scopes": ["read", "write"],
            "has_write": true,
            "has_admin": false,
            "tenant": "acme",
            "claims_value_is_object": true,
        })
    );
}

#[tokio::test]
async fn typed_claims_extractor_succeeds() {
    let c = claims_with(json!({ "tenant": "acme" }));
    let exp = c["exp"].as_i64().unwrap();
    let out = send(handler_app(Production), with_bearer("/tenant", &hs256(&c))).await;
    assert_eq!(out.status, 200);
    assert!(out.events.is_empty());
    assert_eq!(
        out.json(),
        json!({ "sub": "alice", "tenant": "acme", "exp": exp })
    );
}

#[tokio::test]
async fn typed_claims_extractor_missing_field_is_token_claim_missing() {
    let t = hs256(&good_claims()); // no `tenant`
    for mode in [Production, Verbose] {
        let out = send(handler_app(mode), with_bearer("/tenant", &t)).await;
        let r = rejected(&out, 401, "token_claim_missing", mode);
        assert_eq!(r.event.field("path"), "/tenant");
        assert!(
            r.event.field("claim").contains("tenant"),
            "the log names the field: {:#?}",
            r.event.fields
        );
        assert!(r.message().contains("tenant"), "{}", r.message());
        if mode == Verbose {
            assert!(r.detail().contains("tenant"), "{}", r.detail());
            assert!(
                r.problem["claim"].as_str().unwrap().contains("tenant"),
                "{}",
                r.problem
            );
        }
    }
}

#[tokio::test]
async fn typed_claims_extractor_claim_field_is_the_claim_name() {
    // `claim` is the claim's name everywhere else (`sub`, `exp`, `iss`); the extractor's
    // event should say `tenant`, not a serde error sentence.
    let t = hs256(&good_claims());
    let out = send(handler_app(Verbose), with_bearer("/tenant", &t)).await;
    let r = rejected(&out, 401, "token_claim_missing", Verbose);
    assert_eq!(r.event.field("claim"), "tenant");
    assert_eq!(r.problem["claim"], "tenant");
}

// ---------------------------------------------------------------------------------------
// token_malformed
// ---------------------------------------------------------------------------------------

/// A token the HS256 test authenticator would accept, split into segments.
fn good_segments() -> (String, String, String) {
    segments(&hs256(&good_claims()))
}

/// Sends `t` in both modes and checks `token_malformed`; the verbose detail must contain
/// every string of `detail_has`.
async fn assert_malformed(t: &str, detail_has: &[&str]) -> Rejection {
    let out = call(&jwt(), Production, t).await;
    token_rejected(&out, "token_malformed", Production);
    let out = call(&jwt(), Verbose, t).await;
    let r = token_rejected(&out, "token_malformed", Verbose);
    for s in detail_has {
        assert!(
            r.detail().contains(s),
            "detail {:?} lacks {s:?}",
            r.detail()
        );
        assert!(
            r.message().contains(s),
            "message {:?} lacks {s:?}",
            r.message()
        );
    }
    r
}

#[tokio::test]
async fn malformed_two_segments() {
    let (h, p, _) = good_segments();
    assert_malformed(&format!("{h}.{p}"), &["3", "has 2"]).await;
}

#[tokio::test]
async fn malformed_one_segment() {
    let (h, _, _) = good_segments();
    assert_malformed(&h, &["has 1"]).await;
}

#[tokio::test]
async fn malformed_four_segments() {
    let (h, p, s) = good_segments();
    assert_malformed(&format!("{h}.{p}.{s}.{s}"), &["has 4"]).await;
}

#[tokio::test]
async fn malformed_five_segments_is_named_jwe() {
    let h = b64(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#);
    let t = format!("{h}.a2V5.aXY.Y2lwaGVydGV4dA.dGFn");
    assert_malformed(&t, &["5 segments", "JWE"]).await;
}

#[tokio::test]
async fn malformed_header_not_base64url() {
    let (h, p, s) = good_segments();
    // '+' is token68 (so the header parser lets it through) but not base64url.
    let t = format!("+{}.{p}.{s}", &h[1..]);
    assert_malformed(&t, &["header", "base64url"]).await;
}

#[tokio::test]
async fn malformed_payload_not_base64url() {
    let (h, p, s) = good_segments();
    let t = format!("{h}.{}~.{s}", &p[..p.len() - 1]);
    assert_malformed(&t, &["payload", "base64url"]).await;
}

#[tokio::test]
async fn malformed_header_not_json() {
    let (_, p, s) = good_segments();
    let t = format!("{}.{p}.{s}", b64(b"alg=HS256"));
    assert_malformed(&t, &["header", "JSON"]).await;
}

#[tokio::test]
async fn malformed_header_alg_not_a_string() {
    let (_, p, s) = good_segments();
    let t = format!("{}.{p}.{s}", b64(br#"{"alg":256,"typ":"JWT"}"#));
    assert_malformed(&t, &["header"]).await;
}

#[tokio::test]
async fn malformed_header_without_alg() {
    let (_, p, s) = good_segments();
    let t = format!("{}.{p}.{s}", b64(br#"{"typ":"JWT"}"#));
    assert_malformed(&t, &["alg"]).await;
}

#[tokio::test]
async fn malformed_payload_json_array() {
    let t = raw_token(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        r#"["sub","alice"]"#,
        "c2lnbmF0dXJl",
    );
    assert_malformed(&t, &["payload", "not an object"]).await;
}

#[tokio::test]
async fn malformed_payload_not_json() {
    let t = raw_token(r#"{"alg":"HS256"}"#, "sub=alice", "c2lnbmF0dXJl");
    assert_malformed(&t, &["payload", "JSON"]).await;
}

#[tokio::test]
async fn malformed_empty_signature() {
    let (h, p, _) = good_segments();
    assert_malformed(&format!("{h}.{p}."), &["signature"]).await;
}

#[tokio::test]
async fn malformed_padded_signature() {
    let t = format!("{}==", hs256(&good_claims()));
    assert_malformed(&t, &["signature"]).await;
}

#[tokio::test]
async fn exp_as_string_is_token_claim_invalid() {
    // Correctly signed: only the type of exp is wrong.
    let exp = (now() + 3600).to_string();
    let t = hs256(&claims_with(json!({ "exp": exp })));
    let out = call(&jwt(), Verbose, &t).await;
    let r = token_rejected(&out, "token_claim_invalid", Verbose);
    assert!(r.detail().contains("NumericDate"), "{}", r.detail());
    assert_eq!(r.problem["claim"], "exp");
    assert_eq!(r.event.field("claim"), "exp");
    assert_eq!(r.event.field("signature_verified"), "true");
    assert_eq!(r.event.get("exp"), None);
}

/// A correctly signed HS256 token padded to about `len` bytes.
fn padded_token(len: usize) -> String {
    let base = hs256(&claims_with(json!({ "pad": "" }))).len();
    let pad = "x".repeat((len - base) * 3 / 4);
    let t = hs256(&claims_with(json!({ "pad": pad })));
    assert!(t.len().abs_diff(len) < 8, "{} vs {len}", t.len());
    t
}

#[test]
fn malformed_17_kib_token_via_verify() {
    let t = padded_token(17 * 1024);
    let err = jwt().verify(&t).unwrap_err();
    assert_eq!(err.reason(), Reason::TokenMalformed);
    assert!(err.detail_text().unwrap().contains("16 KiB"), "{err}");
}

#[tokio::test]
async fn malformed_17_kib_token() {
    let t = padded_token(17 * 1024);
    assert_malformed(&t, &["16 KiB"]).await;
}

#[tokio::test]
async fn a_15_kib_token_is_fine() {
    let t = padded_token(15 * 1024);
    assert_ok(&call(&jwt(), Production, &t).await, "alice");
}

// ---------------------------------------------------------------------------------------
// token_algorithm_rejected
// ---------------------------------------------------------------------------------------

async fn assert_alg_rejected(jwt: &JwtAuthenticator, t: &str, alg: &str) {
    let out = call(jwt, Production, t).await;
    let r = token_rejected(&out, "token_algorithm_rejected", Production);
    assert_eq!(r.event.field("alg"), alg);
    assert_eq!(r.event.field("signature_verified"), "false");
    assert_eq!(r.event.field("sub"), "alice");

    let out = call(jwt, Verbose, t).await;
    let r = token_rejected(&out, "token_algorithm_rejected", Verbose);
    assert!(r.detail().contains(alg), "{}", r.detail());
    assert!(r.message().contains(alg), "{}", r.message());
}

fn unsigned(alg: &str, signature: &str) -> String {
    let payload = serde_json::to_string(&Value::Object(good_claims())).unwrap();
    raw_token(
        &format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#),
        &payload,
        signature,
    )
}

#[tokio::test]
async fn alg_none_with_empty_signature() {
    // RFC 7519 §6: an Unsecured JWT has an empty signature. It is well-formed; its
    // algorithm is what is refused.
    assert_alg_rejected(&jwt(), &unsigned("none", ""), "none").await;
}

#[tokio::test]
async fn alg_none_with_a_signature() {
    let (_, _, s) = good_segments();
    assert_alg_rejected(&jwt(), &unsigned("none", &s), "none").await;
}

#[tokio::test]
async fn alg_none_capitalised() {
    let (_, _, s) = good_segments();
    assert_alg_rejected(&jwt(), &unsigned("None", &s), "None").await;
    assert_alg_rejected(&jwt(), &unsigned("NONE", &s), "NONE").await;
}

#[tokio::test]
async fn alg_unknown() {
    let (_, _, s) = good_segments();
    assert_alg_rejected(&jwt(), &unsigned("XX999", &s), "XX999").await;
}

#[tokio::test]
async fn key_confusion_hs256_signed_with_the_rsa_public_key() {
    // The classic attack: HMAC keyed with the (public) RSA PEM, against an RS256 verifier.
    let forged = token(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC),
        &good_claims(),
    );
    assert_alg_rejected(&rs256_only(), &forged, "HS256").await;
    let out = call(&rs256_only(), Verbose, &forged).await;
    let r = token_rejected(&out, "token_algorithm_rejected", Verbose);
    assert!(
        r.detail().contains("RS256"),
        "names the accepted: {}",
        r.detail()
    );

    // Explicit allow-list: same answer.
    let jwt = rs256_only().algorithms([Algorithm::RS256]);
    assert_alg_rejected(&jwt, &forged, "HS256").await;
}

#[tokio::test]
async fn key_confusion_with_an_hmac_key_configured_too() {
    // With an HS256 secret configured as well, HS256 is allowed, but the RSA key must
    // never serve as an HMAC secret: the forgery fails its signature.
    let jwt = rs256_only().key(StaticKey::hs256(SECRET));
    let forged = token(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC),
        &good_claims(),
    );
    let out = call(&jwt, Production, &forged).await;
    let r = token_rejected(&out, "token_signature_invalid", Production);
    assert_eq!(r.event.field("alg"), "HS256");
    assert_eq!(r.event.field("signature_verified"), "false");
    // Both legitimate tokens pass.
    assert_ok(
        &call(&jwt, Production, &hs256(&good_claims())).await,
        "alice",
    );
    let t = token(Algorithm::RS256, &rsa_enc(), &good_claims());
    assert_ok(&call(&jwt, Production, &t).await, "alice");
}

#[tokio::test]
async fn explicit_allow_list_can_exclude_a_keys_algorithm() {
    let jwt = authn(StaticKey::hs256(SECRET)).algorithms([Algorithm::HS512]);
    let out = call(&jwt, Production, &hs256(&good_claims())).await;
    let r = token_rejected(&out, "token_algorithm_rejected", Production);
    assert_eq!(r.event.field("alg"), "HS256");
}

// ---------------------------------------------------------------------------------------
// token_signature_invalid
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_secret() {
    let t = token(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"not-the-secret"),
        &good_claims(),
    );
    let out = call(&jwt(), Production, &t).await;
    let r = token_rejected(&out, "token_signature_invalid", Production);
    let e = &r.event;
    assert_eq!(e.field("signature_verified"), "false");
    assert_eq!(e.field("alg"), "HS256");
    assert_eq!(e.field("typ"), "JWT");
    assert_eq!(e.field("iss"), ISSUER);
    assert_eq!(e.field("aud"), AUDIENCE);
    assert_eq!(e.field("sub"), "alice");
    assert_eq!(e.get("kid"), None);
    let exp = good_claims()["exp"].as_i64().unwrap();
    let got = e.field("exp");
    assert!(
        got == rfc3339(exp) || got == rfc3339(exp + 1),
        "{got} vs {}",
        rfc3339(exp)
    );
    assert!(r.message().contains("HS256"), "{}", r.message());
}

#[tokio::test]
async fn tampered_payload() {
    let (h, _, s) = good_segments();
    let evil = claims_with(json!({ "sub": "mallory" }));
    let p = b64(serde_json::to_string(&Value::Object(evil))
        .unwrap()
        .as_bytes());
    let t = format!("{h}.{p}.{s}");
    let out = call(&jwt(), Verbose, &t).await;
    let r = token_rejected(&out, "token_signature_invalid", Verbose);
    assert_eq!(r.event.field("sub"), "mallory");
    assert_eq!(r.event.field("signature_verified"), "false");
    assert!(r.detail().contains("does not verify"), "{}", r.detail());
}

#[tokio::test]
async fn signature_from_another_rsa_key() {
    let t = token(Algorithm::RS256, &rsa2_enc(), &good_claims());
    let out = call(&rs256_only(), Production, &t).await;
    let r = token_rejected(&out, "token_signature_invalid", Production);
    assert_eq!(r.event.field("alg"), "RS256");
    assert_eq!(r.event.field("signature_verified"), "false");
}

#[tokio::test]
async fn signature_from_another_ec_key_type() {
    // An ES256 verifier and an ES256 header, but signed by the P-384 key: invalid, never a panic.
    let jwt = authn(StaticKey::new(ec256_dec(), Algorithm::ES256));
    let (h, p, _) = segments(&token(Algorithm::ES256, &ec256_enc(), &good_claims()));
    let (_, _, s384) = segments(&token(Algorithm::ES384, &ec384_enc(), &good_claims()));
    let out = call(&jwt, Production, &format!("{h}.{p}.{s384}")).await;
    token_rejected(&out, "token_signature_invalid", Production);
}

#[tokio::test]
async fn forged_and_expired_is_reported_as_forged() {
    let exp = now() - 7200;
    let c = claims_with(json!({ "exp": exp, "iat": exp - 600 }));
    let t = token(Algorithm::HS256, &EncodingKey::from_secret(b"forger"), &c);

    let out = call(&jwt(), Production, &t).await;
    let r = token_rejected(&out, "token_signature_invalid", Production);
    assert_eq!(r.event.field("signature_verified"), "false");
    assert_eq!(r.event.field("exp"), rfc3339(exp));
    let m = r.message();
    assert!(m.starts_with("token_signature_invalid: "), "{m}");
    assert!(
        m.contains("token_expired"),
        "the unverified expiry is noted: {m}"
    );
    assert!(m.contains(&rfc3339(exp)), "{m}");
    assert!(m.contains("2h 0m ago"), "{m}");
    assert!(!String::from_utf8_lossy(&out.body).contains("expired"));

    let out = call(&jwt(), Verbose, &t).await;
    let r = token_rejected(&out, "token_signature_invalid", Verbose);
    assert!(r.detail().contains("token_expired"), "{}", r.detail());
    assert!(r.detail().contains(&rfc3339(exp)), "{}", r.detail());
    assert!(r.problem.get("expired_at").is_none(), "{}", r.problem);
}

#[tokio::test]
async fn forged_with_wrong_issuer_is_reported_as_forged() {
    let c = claims_with(json!({ "iss": "https://evil.test" }));
    let t = token(Algorithm::HS256, &EncodingKey::from_secret(b"forger"), &c);
    let out = call(&jwt(), Production, &t).await;
    let r = token_rejected(&out, "token_signature_invalid", Production);
    assert_eq!(r.event.field("iss"), "https://evil.test");
    assert_eq!(r.event.field("expected_iss"), ISSUER);
    assert!(
        r.message().contains("token_issuer_mismatch"),
        "{}",
        r.message()
    );
    let body = String::from_utf8_lossy(&out.body);
    assert!(!body.contains(ISSUER), "{body}");
}

// ---------------------------------------------------------------------------------------
// token_expired, leeway, token_not_yet_valid
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn expired() {
    let exp = now() - 3600;
    let c = claims_with(json!({ "exp": exp, "iat": exp - 600 }));
    let t = hs256(&c);
    let text = format!("the token expired at {} (1h 0m ago)", rfc3339(exp));

    let out = call(&jwt(), Production, &t).await;
    let r = token_rejected(&out, "token_expired", Production);
    assert_eq!(r.event.field("signature_verified"), "true");
    assert_eq!(r.event.field("exp"), rfc3339(exp));
    assert_eq!(r.event.field("sub"), "alice");
    assert_eq!(r.message(), format!("token_expired: {text}"));

    let out = call(&jwt(), Verbose, &t).await;
    let r = token_rejected(&out, "token_expired", Verbose);
    assert_eq!(r.detail(), text);
    assert_eq!(r.problem["expired_at"], rfc3339(exp));
    assert_eq!(r.description, text);
}

#[tokio::test]
async fn leeway_is_respected() {
    // Expired 10 s ago, default leeway 60 s: accepted.
    let exp = now() - 10;
    let t = hs256(&claims_with(json!({ "exp": exp, "iat": exp - 600 })));
    assert_ok(&call(&jwt(), Production, &t).await, "alice");

    // Same token, leeway 0: expired.
    let strict = jwt().leeway(Duration::ZERO);
    let out = call(&strict, Production, &t).await;
    token_rejected(&out, "token_expired", Production);

    // Expired 2 min ago, default leeway: expired.
    let exp = now() - 120;
    let t = hs256(&claims_with(json!({ "exp": exp, "iat": exp - 600 })));
    let out = call(&jwt(), Production, &t).await;
    token_rejected(&out, "token_expired", Production);

    // Expired 2 min ago, leeway 5 min: accepted.
    let lenient = jwt().leeway(Duration::from_secs(300));
    assert_ok(&call(&lenient, Production, &t).await, "alice");
}

#[tokio::test]
async fn nbf_in_the_future() {
    let nbf = now() + 3600;
    let t = hs256(&claims_with(json!({ "nbf": nbf })));

    let out = call(&jwt(), Production, &t).await;
    let r = token_rejected(&out, "token_not_yet_valid", Production);
    assert_eq!(r.event.field("claim"), "nbf");
    assert_eq!(r.event.field("signature_verified"), "true");
    let m = r.message();
    assert!(m.contains(&rfc3339(nbf)), "{m}");
    assert!(m.contains("in the future"), "{m}");
    assert!(m.contains("leeway 60s"), "{m}");
    assert!(m.contains("clock"), "the log names clock skew: {m}");

    let out = call(&jwt(), Verbose, &t).await;
    let r = token_rejected(&out, "token_not_yet_valid", Verbose);
    assert_eq!(r.problem["claim"], "nbf");
    assert!(r.detail().contains("clock"), "{}", r.detail());
}

#[tokio::test]
async fn iat_in_the_future() {
    let iat = now() + 600;
    let t = hs256(&claims_with(json!({ "iat": iat })));
    let out = call(&jwt(), Verbose, &t).await;
    let r = token_rejected(&out, "token_not_yet_valid", Verbose);
    assert_eq!(r.event.field("claim"), "iat");
    assert_eq!(r.problem["claim"], "iat");
    assert!(r.message().contains(&rfc3339(iat)), "{}", r.message());
}

#[tokio::test]
async fn nbf_and_iat_within_leeway_are_fine() {
    let t = hs256(&claims_with(
        json!({ "nbf": now() + 20, "iat": now() + 20 }),
    ));
    assert_ok(&call(&jwt(), Production, &t).await, "alice");
}

// ---------------------------------------------------------------------------------------
// token_issuer_mismatch, token_audience_mismatch
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn issuer_mismatch() {
    let t = hs256(&claims_with(json!({ "iss": "https://evil.test" })));

    let out = call(&jwt(), Production, &t).await;
    let r = token_rejected(&out, "token_issuer_mismatch", Production);
    assert_eq!(r.event.field("iss"), "https://evil.test");
    assert_eq!(r.event.field("expected_iss"), ISSUER);
    assert_eq!(r.event.field("signature_verified"), "true");
    assert!(r.message().contains("https://evil.test"), "{}", r.message());
    assert!(r.message().contains(ISSUER), "{}", r.message());
    // Production never shows the expected issuer: not in the body, not in any header.
    let body = String::from_utf8_lossy(&out.body);
    assert!(!body.contains("issuer.test"), "{body}");
    for (name, value) in &out.headers {
        assert!(
            !value.to_str().unwrap_or("").contains("issuer.test"),
            "{name}: {value:?}"
        );
    }

    let out = call(&jwt(), Verbose, &t).await;
    let r = token_rejected(&out, "token_issuer_mismatch", Verbose);
    assert_eq!(r.problem["expected_issuer"], ISSUER);
    assert!(r.detail().contains("https://evil.test"), "{}", r.detail());
}

#[tokio::test]
async fn issuer_not_a_string_is_token_claim_invalid() {
    let t = hs256(&claims_with(json!({ "iss": ["https://issuer.test"] })));
    let out = call(&jwt(), Production, &t).await;
    let r = token_rejected(&out, "token_claim_invalid", Production);
    assert_eq!(r.event.field("claim"), "iss");
    assert_eq!(r.event.get("iss"), None);
}

#[tokio::test]
async fn one_of_several_issuers() {
    let other = "https://other-issuer.test";
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET).with_issuer(ISSUER))
        .key(StaticKey::hs256("other-secret").with_issuer(other))
        .issuer(ISSUER)
        .issuer(other)
        .audience(AUDIENCE);
    let t = sign(
        &Header::default(),
        &claims_with(json!({ "iss": other })),
        &EncodingKey::from_secret(b"other-secret"),
    );
    assert_ok(&call(&jwt, Production, &t).await, "alice");
    assert_ok(
        &call(&jwt, Production, &hs256(&good_claims())).await,
        "alice",
    );
}

#[tokio::test]
async fn audience_mismatch_string() {
    let t = hs256(&claims_with(json!({ "aud": "other-api" })));

    let out = call(&jwt(), Production, &t).await;
    let r = token_rejected(&out, "token_audience_mismatch", Production);
    assert_eq!(r.event.field("aud"), "other-api");
    assert_eq!(r.event.field("expected_aud"), AUDIENCE);
    let body = String::from_utf8_lossy(&out.body);
    assert!(!body.contains(AUDIENCE), "{body}");

    let out = call(&jwt(), Verbose, &t).await;
    let r = token_rejected(&out, "token_audience_mismatch", Verbose);
    assert_eq!(r.problem["expected_audience"], AUDIENCE);
    assert!(r.detail().contains("other-api"), "{}", r.detail());
}

#[tokio::test]
async fn audience_mismatch_array() {
    let t = hs256(&claims_with(json!({ "aud": ["api-one", "api-two"] })));
    let out = call(&jwt(), Production, &t).await;
    let r = token_rejected(&out, "token_audience_mismatch", Production);
    assert_eq!(r.event.field("aud"), "api-one api-two");
    assert_eq!(r.event.field("expected_aud"), AUDIENCE);
}

#[tokio::test]
async fn audience_array_containing_ours() {
    let t = hs256(&claims_with(json!({ "aud": ["api-one", AUDIENCE] })));
    assert_ok(&call(&jwt(), Production, &t).await, "alice");
}

// ---------------------------------------------------------------------------------------
// token_claim_missing
// ---------------------------------------------------------------------------------------

async fn assert_claim_missing(jwt: &JwtAuthenticator, remove: &str) {
    let t = hs256(&claims_with(json!({ remove: null })));
    let out = call(jwt, Production, &t).await;
    let r = token_rejected(&out, "token_claim_missing", Production);
    assert_eq!(r.event.field("claim"), remove);
    assert_eq!(r.event.field("signature_verified"), "true");
    assert!(r.message().contains(remove), "{}", r.message());

    let out = call(jwt, Verbose, &t).await;
    let r = token_rejected(&out, "token_claim_missing", Verbose);
    assert_eq!(r.problem["claim"], remove);
}

#[tokio::test]
async fn claim_missing_sub() {
    assert_claim_missing(&jwt(), "sub").await;
}

#[tokio::test]
async fn claim_missing_exp() {
    assert_claim_missing(&jwt(), "exp").await;
    // exp is required even with the least configuration.
    let minimal = JwtAuthenticator::new(StaticKey::hs256(SECRET)).accept_any_audience();
    assert_claim_missing(&minimal, "exp").await;
}

#[tokio::test]
async fn claim_missing_iss_when_an_issuer_is_configured() {
    assert_claim_missing(&jwt(), "iss").await;
}

#[tokio::test]
async fn claim_missing_aud_when_an_audience_is_configured() {
    assert_claim_missing(&jwt(), "aud").await;
}

#[tokio::test]
async fn claim_null_counts_as_missing() {
    let jwt = jwt().require_claims(["tenant"]);
    let t = hs256(&claims_with(json!({ "tenant": Value::Null })));
    let out = call(&jwt, Production, &t).await;
    let r = token_rejected(&out, "token_claim_missing", Production);
    assert_eq!(r.event.field("claim"), "tenant");
}

#[tokio::test]
async fn with_any_audience_accepted_unconfigured_claims_are_not_required() {
    let minimal = JwtAuthenticator::new(StaticKey::hs256(SECRET)).accept_any_audience();
    let t = hs256(&claims_with(
        json!({ "iss": null, "aud": null, "sub": null, "iat": null }),
    ));
    let out = call(&minimal, Production, &t).await;
    // No sub: the principal has no id.
    assert_eq!(out.status, 200);
    assert_eq!(out.json()["sub"], Value::Null);
    assert!(out.events.is_empty());
}

// ---------------------------------------------------------------------------------------
// token_type_rejected
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn access_token_type() {
    let jwt = jwt().require_access_token_type();
    let c = good_claims();
    for typ in [
        "at+jwt",
        "application/at+jwt",
        "AT+JWT",
        "Application/At+JWT",
    ] {
        assert_ok(
            &call(&jwt, Production, &token_typ(Some(typ), &c)).await,
            "alice",
        );
    }
    for typ in [Some("JWT"), Some("jwt"), Some("application/jwt"), None] {
        let t = token_typ(typ, &c);
        let out = call(&jwt, Production, &t).await;
        let r = token_rejected(&out, "token_type_rejected", Production);
        assert_eq!(r.event.get("typ"), typ);
        assert_eq!(r.event.field("signature_verified"), "true");
        assert!(r.message().contains("at+jwt"), "{}", r.message());

        let out = call(&jwt, Verbose, &t).await;
        let r = token_rejected(&out, "token_type_rejected", Verbose);
        assert!(r.detail().contains("at+jwt"), "{}", r.detail());
    }
}

// ---------------------------------------------------------------------------------------
// insufficient_scope
// ---------------------------------------------------------------------------------------

async fn admin(claims: &Map<String, Value>, mode: Mode) -> Outcome {
    send(
        bearer_app(layer(mode)),
        with_bearer("/admin", &hs256(claims)),
    )
    .await
}

#[tokio::test]
async fn insufficient_scope_space_separated() {
    let c = claims_with(json!({ "scope": "read write" }));
    for mode in [Production, Verbose] {
        let out = admin(&c, mode).await;
        let r = rejected(&out, 403, "insufficient_scope", mode);
        assert_eq!(r.problem["required_scope"], "admin");
        assert_eq!(r.event.field("path"), "/admin");
        assert_eq!(r.event.field("scope"), "admin");
        assert_eq!(r.event.field("user"), "alice");
        assert!(r.message().contains("admin"), "{}", r.message());
        assert!(r.message().contains("read write"), "{}", r.message());
        if mode == Verbose {
            assert!(r.detail().contains("admin"), "{}", r.detail());
        }
    }
}

#[tokio::test]
async fn insufficient_scope_scp_array() {
    let c = claims_with(json!({ "scp": ["read"] }));
    let out = admin(&c, Production).await;
    let r = rejected(&out, 403, "insufficient_scope", Production);
    assert_eq!(r.event.field("scope"), "admin");
    assert!(r.message().contains("read"), "{}", r.message());
}

#[tokio::test]
async fn insufficient_scope_without_any_scope() {
    let out = admin(&good_claims(), Production).await;
    let r = rejected(&out, 403, "insufficient_scope", Production);
    assert!(r.message().contains("none"), "{}", r.message());
}

#[tokio::test]
async fn scope_prefix_is_not_the_scope() {
    for c in [
        claims_with(json!({ "scope": "administrator admin:read" })),
        claims_with(json!({ "scp": ["ADMIN"] })),
    ] {
        let out = admin(&c, Production).await;
        rejected(&out, 403, "insufficient_scope", Production);
    }
}

#[tokio::test]
async fn sufficient_scope() {
    for c in [
        claims_with(json!({ "scope": "read admin" })),
        claims_with(json!({ "scp": ["admin"] })),
        claims_with(json!({ "scp": "read admin" })),
    ] {
        let out = admin(&c, Production).await;
        assert_eq!(out.status, 200, "{c:?}");
        assert_eq!(out.body, b"admin");
        assert!(out.events.is_empty());
    }
}

#[tokio::test]
async fn insufficient_scope_event_identifies_the_token() {
    // "The log event": for tokens, the unverified alg/iss/aud/sub/exp and a fingerprint.
    let c = claims_with(json!({ "scope": "read" }));
    let out = admin(&c, Production).await;
    let r = rejected(&out, 403, "insufficient_scope", Production);
    let e = &r.event;
    assert_eq!(e.get("location"), Some("header:authorization"), "{e:#?}");
    assert_eq!(e.get("scheme_expected"), Some("Bearer"), "{e:#?}");
    assert!(e.get("fingerprint").is_some(), "{e:#?}");
    assert_eq!(e.get("alg"), Some("HS256"), "{e:#?}");
    assert_eq!(e.get("sub"), Some("alice"), "{e:#?}");
    assert_eq!(e.get("iss"), Some(ISSUER), "{e:#?}");
}

// ---------------------------------------------------------------------------------------
// Fingerprints
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn fingerprint_follows_one_token() {
    let bad = |sub: &str| {
        token(
            Algorithm::HS256,
            &EncodingKey::from_secret(b"forger"),
            &claims_with(json!({ "sub": sub })),
        )
    };
    let (a, b) = (bad("a"), bad("b"));
    let fp = |out: &Outcome| out.event().field("fingerprint").to_owned();
    let a1 = fp(&call(&jwt(), Production, &a).await);
    let a2 = fp(&call(&jwt(), Verbose, &a).await);
    let b1 = fp(&call(&jwt(), Production, &b).await);
    assert_eq!(a1, a2);
    assert_ne!(a1, b1);
    assert!(!a.contains(&a1) && !b.contains(&b1));
}

// ---------------------------------------------------------------------------------------
// Hostile claims
// ---------------------------------------------------------------------------------------

const HOSTILE: &str = "evil\"\\\r\n\0\u{e9}\u{2713}";
const HOSTILE_ESCAPED: &str = r#"evil\"\\\r\n\u{0}\u{e9}\u{2713}"#;

#[tokio::test]
async fn hostile_iss_and_sub_are_escaped() {
    let t = hs256(&claims_with(json!({ "iss": HOSTILE, "sub": HOSTILE })));
    for mode in [Production, Verbose] {
        let out = call(&jwt(), mode, &t).await;
        let r = token_rejected(&out, "token_issuer_mismatch", mode);
        assert_eq!(r.event.field("iss"), HOSTILE_ESCAPED);
        assert_eq!(r.event.field("sub"), HOSTILE_ESCAPED);
        assert_capped_token_fields(&r.event);
        assert!(!r.message().contains('\u{e9}'), "{}", r.message());
        if mode == Verbose {
            assert!(
                !r.detail().chars().any(char::is_control),
                "verbose detail holds raw control characters: {:?}",
                r.detail()
            );
        }
    }
}

#[tokio::test]
async fn hostile_kid_is_escaped() {
    let jwt = authn(StaticKey::hs256(SECRET).with_kid("main"))
        .key(StaticKey::hs256(SECRET).with_kid("backup"));
    let t = token_kid(Algorithm::HS256, HOSTILE, &hs_enc(), &good_claims());
    for mode in [Production, Verbose] {
        let out = call(&jwt, mode, &t).await;
        let r = token_rejected(&out, "token_key_unknown", mode);
        assert_eq!(r.event.field("kid"), HOSTILE_ESCAPED);
        assert_capped_token_fields(&r.event);
        assert!(!r.message().contains('\u{e9}'), "{}", r.message());
    }
}

#[tokio::test]
async fn hostile_alg_and_typ_are_escaped() {
    let payload = serde_json::to_string(&Value::Object(good_claims())).unwrap();
    let header = json!({ "alg": "HS256\r\nX-Injected: 1", "typ": "JWT\r\nSet-Cookie: a=b" });
    let t = raw_token(&header.to_string(), &payload, "c2lnbmF0dXJl");
    for mode in [Production, Verbose] {
        let out = call(&jwt(), mode, &t).await;
        let r = token_rejected(&out, "token_algorithm_rejected", mode);
        assert_eq!(r.event.field("alg"), r"HS256\r\nX-Injected: 1");
        assert_eq!(r.event.field("typ"), r"JWT\r\nSet-Cookie: a=b");
        assert!(out.headers.get("x-injected").is_none());
        assert!(out.headers.get("set-cookie").is_none());
    }
}

#[tokio::test]
async fn hostile_aud_is_escaped_everywhere() {
    let t = hs256(&claims_with(json!({ "aud": HOSTILE })));
    for mode in [Production, Verbose] {
        let out = call(&jwt(), mode, &t).await;
        let r = token_rejected(&out, "token_audience_mismatch", mode);
        assert_eq!(r.event.field("aud"), HOSTILE_ESCAPED);
        assert_capped_token_fields(&r.event);
        if mode == Verbose {
            assert!(
                !r.detail().chars().any(char::is_control),
                "verbose detail holds raw control characters: {:?}",
                r.detail()
            );
        }
    }
}

#[tokio::test]
async fn huge_ascii_claims_are_capped() {
    let big = |c: char| c.to_string().repeat(3000);
    let t = hs256(&claims_with(json!({
        "iss": big('i'), "sub": big('s'), "aud": big('a'),
    })));
    for mode in [Production, Verbose] {
        let out = call(&jwt(), mode, &t).await;
        let r = token_rejected(&out, "token_issuer_mismatch", mode);
        assert_capped_token_fields(&r.event);
        for k in ["iss", "sub", "aud"] {
            assert!(r.event.field(k).ends_with('…'), "{k} is marked as cut");
        }
        assert!(
            r.message().chars().count() <= 600,
            "message is {} chars",
            r.message().chars().count()
        );
        if mode == Verbose {
            assert!(
                r.detail().chars().count() <= 600,
                "verbose detail is {} chars",
                r.detail().chars().count()
            );
        }
    }
}

#[tokio::test]
async fn huge_aud_is_capped_in_the_verbose_detail() {
    let t = hs256(&claims_with(json!({ "aud": "a".repeat(6000) })));
    let out = call(&jwt(), Verbose, &t).await;
    let r = token_rejected(&out, "token_audience_mismatch", Verbose);
    assert_capped_token_fields(&r.event);
    assert!(r.message().chars().count() <= 600, "{}", r.message().len());
    assert!(
        r.detail().chars().count() <= 600,
        "verbose detail is {} chars: the aud is copied uncapped",
        r.detail().chars().count()
    );
}

#[tokio::test]
async fn huge_non_ascii_claims_are_capped() {
    // Escaping must not undo the cap: 2000 × 'é' must not become 128 × "\u{e9}".
    let big = "\u{e9}".repeat(2000);
    let t = hs256(&claims_with(
        json!({ "iss": big, "sub": "\n".repeat(2000) }),
    ));
    let out = call(&jwt(), Production, &t).await;
    let r = token_rejected(&out, "token_issuer_mismatch", Production);
    assert_capped_token_fields(&r.event);
}

#[tokio::test]
async fn ten_kib_kid() {
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET).with_kid("main"))
        .issuer(ISSUER)
        .audience(AUDIENCE);
    let kid = "k".repeat(10 * 1024);
    let t = token_kid(Algorithm::HS256, &kid, &hs_enc(), &good_claims());
    assert!(t.len() < 16 * 1024);
    for mode in [Production, Verbose] {
        let out = call(&jwt, mode, &t).await;
        let r = token_rejected(&out, "token_key_unknown", mode);
        assert_capped_token_fields(&r.event);
        assert!(r.event.field("kid").starts_with("kkkk"));
        assert!(r.message().chars().count() <= 600, "{}", r.message().len());
        if mode == Verbose {
            assert!(r.detail().chars().count() <= 600, "{}", r.detail().len());
        }
    }
}

// ---------------------------------------------------------------------------------------
// verify_at: deterministic time
// ---------------------------------------------------------------------------------------

/// 2026-11-27T03:35:00Z
const T: i64 = 1_795_750_500;

fn fixed_claims(exp: i64) -> Map<String, Value> {
    json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": exp - 3600, "exp": exp })
        .as_object()
        .unwrap()
        .clone()
}

#[test]
fn verify_at_expired_says_when_and_how_long_ago() {
    let t = hs256(&fixed_claims(T));
    let err = jwt().verify_at(&t, T + 3 * 3600 + 120).unwrap_err();
    assert_eq!(err.reason(), Reason::TokenExpired);
    assert_eq!(
        err.detail_text(),
        Some("the token expired at 2026-11-27T03:35:00Z (3h 2m ago)")
    );
    let facts = err.token_facts().expect("token facts");
    assert!(facts.verified);
    assert_eq!(facts.exp, Some(T));
    assert_eq!(facts.sub.as_ref().unwrap().as_str(), "alice");
}

/// RFC 7519 §4.1.4: `exp` is the time "on or after which the JWT MUST NOT be accepted".
#[test]
fn verify_at_exp_plus_leeway_is_expired() {
    let t = hs256(&fixed_claims(T));
    let jwt = jwt();
    let v = jwt.verify_at(&t, T).unwrap();
    assert_eq!(v.claims["sub"], "alice");
    assert!(v.facts.verified);
    jwt.verify_at(&t, T + 59)
        .expect("one second before exp + leeway is still valid");
    let err = jwt.verify_at(&t, T + 60).unwrap_err();
    assert_eq!(err.reason(), Reason::TokenExpired);
    assert_eq!(
        err.detail_text(),
        Some("the token expired at 2026-11-27T03:35:00Z (1m 0s ago)")
    );

    let strict = jwt.leeway(Duration::ZERO);
    strict.verify_at(&t, T - 1).unwrap();
    assert_eq!(
        strict.verify_at(&t, T).unwrap_err().reason(),
        Reason::TokenExpired
    );
}

#[test]
fn verify_at_not_yet_valid_names_the_skew() {
    let mut c = fixed_claims(T + 7200);
    c.insert("nbf".into(), json!(T + 3600));
    let t = hs256(&c);
    let err = jwt().verify_at(&t, T).unwrap_err();
    assert_eq!(err.reason(), Reason::TokenNotYetValid);
    let d = err.detail_text().unwrap();
    assert!(d.contains("2026-11-27T04:35:00Z"), "{d}");
    assert!(d.contains("1h 0m in the future"), "{d}");
    assert!(d.contains("leeway 60s"), "{d}");
    assert!(d.contains("clock"), "{d}");
    // Within leeway.
    jwt().verify_at(&t, T + 3600 - 60).unwrap();
}

#[test]
fn verify_at_forged_and_expired() {
    let t = token(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"forger"),
        &fixed_claims(T),
    );
    let err = jwt().verify_at(&t, T + 3 * 3600 + 120).unwrap_err();
    assert_eq!(err.reason(), Reason::TokenSignatureInvalid);
    let d = err.detail_text().unwrap();
    assert!(d.contains("does not verify"), "{d}");
    assert!(d.contains("token_expired"), "{d}");
    assert!(d.contains("2026-11-27T03:35:00Z (3h 2m ago)"), "{d}");
    let facts = err.token_facts().unwrap();
    assert!(!facts.verified);
    assert_eq!(facts.exp, Some(T));

    // Forged but not expired: no note.
    let err = jwt().verify_at(&t, T - 10).unwrap_err();
    assert_eq!(err.reason(), Reason::TokenSignatureInvalid);
    assert!(!err.detail_text().unwrap().contains("expired"));
}

#[test]
fn verify_at_asymmetric_keys() {
    let jwt = key_set();
    let t = token_kid(Algorithm::EdDSA, "ed-2024", &ed_enc(), &fixed_claims(T));
    let v = jwt.verify_at(&t, T - 100).unwrap();
    assert_eq!(v.facts.kid.as_ref().unwrap().as_str(), "ed-2024");
    assert_eq!(v.facts.alg.as_ref().unwrap().as_str(), "EdDSA");
    assert_eq!(
        jwt.verify_at(&t, T + 3600).unwrap_err().reason(),
        Reason::TokenExpired
    );
}

#[test]
fn verify_at_alg_none_is_rejected() {
    let payload = serde_json::to_string(&Value::Object(fixed_claims(T))).unwrap();
    for sig in ["", "c2lnbmF0dXJl"] {
        let t = raw_token(r#"{"alg":"none","typ":"JWT"}"#, &payload, sig);
        let err = jwt().verify_at(&t, T - 10).unwrap_err();
        assert_eq!(
            err.reason(),
            Reason::TokenAlgorithmRejected,
            "signature {sig:?}: {err}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// key_source_unavailable
// ---------------------------------------------------------------------------------------

/// A key source that cannot deliver keys is a server fault: 503 with `Retry-After`, no
/// challenge, logged at ERROR. (Static keys never fail; a handler or a future key source
/// reports it as an `AuthFailure`.)
#[tokio::test]
async fn key_source_unavailable_is_a_503_without_challenge() {
    for verbose in [false, true] {
        let layer = AuthDiagnostics::new().bearer(jwt());
        let layer = if verbose { layer.verbose() } else { layer };
        let app = Router::new()
            .route(
                "/me",
                route_get(|| async {
                    Err::<(), _>(
                        auth_diagnostics::AuthFailure::new(Reason::KeySourceUnavailable)
                            .detail("the JWK set endpoint timed out"),
                    )
                }),
            )
            .layer(layer);
        let token = hs256(&good_claims());
        let out = send(
            app,
            get("/me", &[("authorization", &format!("Bearer {token}"))]),
        )
        .await;
        assert_eq!(out.status, 503);
        assert!(out.challenges().is_empty());
        let retry: u64 = out.header("retry-after").unwrap().parse().unwrap();
        assert!(retry > 0);
        assert_eq!(out.header("cache-control"), None);
        let p = out.problem();
        assert_eq!(p["reason"], "key_source_unavailable");
        assert_eq!(
            p["detail"] == "the JWK set endpoint timed out",
            verbose,
            "the specific detail is for verbose mode only: {p}"
        );
        let e = out.event();
        assert_eq!(e.level, Level::ERROR);
        assert_eq!(e.field("reason"), "key_source_unavailable");
        assert_eq!(e.field("status"), "503");
    }
}

/// During a rotation a named key joins an unnamed one: tokens naming another kid still
/// verify with the unnamed key.
#[test]
fn unnamed_keys_serve_tokens_with_any_kid() {
    let jwt = JwtAuthenticator::new(StaticKey::hs256("old-secret"))
        .key(StaticKey::hs256("new-secret").with_kid("new"))
        .issuer(ISSUER)
        .audience(AUDIENCE);
    let header = Header {
        kid: Some("b".into()),
        ..Header::default()
    };
    let old = sign(
        &header,
        &good_claims(),
        &EncodingKey::from_secret(b"old-secret"),
    );
    assert!(jwt.verify(&old).is_ok());
    let header = Header {
        kid: Some("new".into()),
        ..Header::default()
    };
    let new = sign(
        &header,
        &good_claims(),
        &EncodingKey::from_secret(b"new-secret"),
    );
    assert!(jwt.verify(&new).is_ok());
    // Only named keys: an unknown kid is token_key_unknown.
    let named =
        JwtAuthenticator::new(StaticKey::hs256("new-secret").with_kid("new")).accept_any_audience();
    assert_eq!(
        named.verify(&old).unwrap_err().reason(),
        Reason::TokenKeyUnknown
    );
}

/// Five minutes of leeway is the most: an expired token stays expired.
#[test]
fn leeway_of_five_minutes_is_the_most() {
    let lenient = jwt().leeway(Duration::from_secs(300));
    let mut claims = good_claims();
    claims.insert("exp".into(), json!(now() - 299));
    assert!(lenient.verify(&hs256(&claims)).is_ok());
    claims.insert("exp".into(), json!(now() - 301));
    assert_eq!(
        lenient.verify(&hs256(&claims)).unwrap_err().reason(),
        Reason::TokenExpired
    );
    for secs in [301, 3600, 1u64 << 63, u64::MAX] {
        let built = std::panic::catch_unwind(|| jwt().leeway(Duration::from_secs(secs)));
        let message = built.expect_err("a leeway above 300 s is a configuration error");
        let text = message
            .downcast_ref::<String>()
            .expect("a formatted panic message");
        assert!(text.contains("300s"), "{text}");
    }
}
