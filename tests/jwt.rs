//! Black-box tests of Bearer JWT verification: every row of the "Bearer tokens (JWT)" table
//! of the contract (shared/spec/reasons.md) plus the 403 `insufficient_scope` row, through
//! the layer (the common `send`, which captures the log events and checks that none of them
//! leaks the token, and `check`), and through `JwtAuthenticator::verify_at` with a fixed
//! clock.
//!
//! Key material lives in tests/keys/ (generated with the openssl CLI, see its README.md).

mod common;
use common::*;
use tower::Layer as _;

use auth_diagnostics::failure::AuthFailure;
use auth_diagnostics::jwt::{Claims, JwtAuthenticator};
use auth_diagnostics::keys::{Algorithm, DecodingKey, StaticKey};
use auth_diagnostics::Principal;
use axum::routing::get as route_get;
use axum::Router;
use jsonwebtoken::{EncodingKey, Header};
use serde::Deserialize;
use serde_json::{json, Map};
use std::time::Duration;
use Algorithm::{
    EdDSA, ES256, ES384, HS256, HS384, HS512, PS256, PS384, PS512, RS256, RS384, RS512,
};
use DetailMode::{Production, Verbose};

const MODES: [DetailMode; 2] = [Production, Verbose];

// Keys and tokens ---------------------------------------------------------------------------

/// `tests/keys/{name}_{half}.pem`; `name` is `rsa`, `rsa2`, `ec256`, `ec384` or `ed25519`.
fn pem(name: &str, half: &str) -> Vec<u8> {
    let dir = env!("CARGO_MANIFEST_DIR");
    std::fs::read(format!("{dir}/tests/keys/{name}_{half}.pem")).unwrap()
}

/// The private key `name`, to sign with.
fn enc(name: &str) -> EncodingKey {
    let pem = pem(name, "private");
    match &name[..2] {
        "rs" => EncodingKey::from_rsa_pem(&pem),
        "ec" => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .unwrap()
}

/// The public key `name`, to verify with.
fn dec(name: &str) -> DecodingKey {
    let pem = pem(name, "public");
    match &name[..2] {
        "rs" => DecodingKey::from_rsa_pem(&pem),
        "ec" => DecodingKey::from_ec_pem(&pem),
        _ => DecodingKey::from_ed_pem(&pem),
    }
    .unwrap()
}

fn hs_key() -> EncodingKey {
    EncodingKey::from_secret(SECRET.as_bytes())
}

/// The usual issuer/audience/sub requirements on top of `key`.
fn authn(key: StaticKey) -> JwtAuthenticator {
    JwtAuthenticator::new(key)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .require_claims(["sub"])
}

/// [`authn`] with the public key `name` for `alg` only.
fn asym(name: &str, alg: Algorithm) -> JwtAuthenticator {
    authn(StaticKey::new(dec(name), alg))
}

/// `accept_any_issuer`, `accept_any_audience` and nothing else.
fn minimal() -> JwtAuthenticator {
    JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .accept_any_issuer()
        .accept_any_audience()
}

fn token(alg: Algorithm, key: &EncodingKey, claims: &Map<String, Value>) -> String {
    sign(&Header::new(alg), claims, key)
}

/// An HS256 token signed with `secret` instead of [`SECRET`].
fn signed_with(secret: &[u8], claims: &Map<String, Value>) -> String {
    token(HS256, &EncodingKey::from_secret(secret), claims)
}

fn token_kid(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Map<String, Value>) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_owned());
    sign(&h, claims, key)
}

fn token_typ(typ: Option<&str>, claims: &Map<String, Value>) -> String {
    let mut h = Header::new(HS256);
    h.typ = typ.map(str::to_owned);
    sign(&h, claims, &hs_key())
}

/// A signature segment that verifies nothing.
const SIG: &str = "c2lnbmF0dXJl";

/// A token of `claims` with header `{"alg":alg,"typ":"JWT"}` and signature `sig`.
fn unsigned(alg: &str, claims: &Map<String, Value>, sig: &str) -> String {
    let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
    raw_token(&header, &Value::Object(claims.clone()).to_string(), sig)
}

/// The three segments of a compact JWS.
fn segments(token: &str) -> (String, String, String) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    (parts[0].into(), parts[1].into(), parts[2].into())
}

/// A correctly signed HS256 token padded to about `len` bytes.
fn padded_token(len: usize) -> String {
    let base = hs256(&claims(json!({ "pad": "" }))).len();
    let pad = "x".repeat((len - base) * 3 / 4);
    let t = hs256(&claims(json!({ "pad": pad })));
    assert!(t.len().abs_diff(len) < 8, "{} vs {len}", t.len());
    t
}

/// Seconds since the epoch as RFC 3339 UTC, computed independently of the crate.
fn rfc3339(secs: i64) -> String {
    assert!(secs >= 0);
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let (mut days, rem) = (secs / 86_400, secs % 86_400);
    let mut year = 1970;
    while days >= if leap(year) { 366 } else { 365 } {
        days -= if leap(year) { 366 } else { 365 };
        year += 1;
    }
    let feb = if leap(year) { 29 } else { 28 };
    let months = [31, feb, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 0;
    while days >= months[month] {
        days -= months[month];
        month += 1;
    }
    let (mon, day) = (month + 1, days + 1);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{year:04}-{mon:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

#[test]
fn the_test_clock_formats_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_795_750_500), "2026-11-27T03:35:00Z");
}

// Requests and what they must answer -----------------------------------------------------

/// Sends `Bearer <token>` to `path` of `app`. Beyond what `send` asserts: every event names
/// the method, the path and a request id; nothing in a challenge needs escaping; only the
/// 403 carries `scope` (`admin`, the scope `/admin` requires).
async fn call_at(app: Router, path: &str, token: &str) -> Outcome {
    let out = send(app, get(path, &[("authorization", &bearer(token))])).await;
    for e in &out.events {
        assert_eq!((e.field("method"), e.field("path")), ("GET", path));
        assert!(!e.field("request_id").is_empty());
    }
    for raw in out.header_all("www-authenticate") {
        assert!(!raw.contains('\\'), "a challenge needs escaping: {raw}");
    }
    let scope = (out.status == 403).then_some("admin");
    for c in out.challenges() {
        assert_eq!(c.param("scope"), scope, "{c:?}");
    }
    out
}

/// `/me` of [`jwt_app`] with `jwt` in `mode`; every event also fingerprints the token.
async fn call(jwt: &JwtAuthenticator, mode: DetailMode, token: &str) -> Outcome {
    let out = call_at(jwt_app(layer(mode), jwt.clone()), "/me", token).await;
    for e in &out.events {
        e.field("fingerprint");
    }
    out
}

/// A 401 of the JWT checks, as [`call`] gets it.
fn refused(reason: &'static str, mode: DetailMode) -> Expect {
    expect(reason).mode(mode).token_fields()
}

/// `/me` answered alice's token and logged nothing.
#[track_caller]
fn assert_alice(out: &Outcome) {
    assert_eq!(out.ok(), json!({ "sub": "alice", "scheme": "Bearer" }));
}

#[track_caller]
fn assert_contains(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "{text:?} lacks {p:?}");
    }
}

/// At most 600 characters.
#[track_caller]
fn assert_short(what: &str, text: &str) {
    let n = text.chars().count();
    assert!(n <= 600, "{what} is {n} chars: {text}");
}

// Algorithms: every family succeeds; one algorithm per key; token_algorithm_rejected -----

#[tokio::test]
async fn every_algorithm_family_succeeds() {
    let c = good_claims();
    for alg in [HS256, HS384, HS512] {
        let key = DecodingKey::from_secret(SECRET.as_bytes());
        let jwt = authn(StaticKey::new(key, alg));
        assert_alice(&call(&jwt, Production, &token(alg, &hs_key(), &c)).await);
    }
    // The shorthand.
    assert_alice(&call(&jwt(), Production, &hs256(&c)).await);
    let rsa = [RS256, RS384, RS512, PS256, PS384, PS512].map(|alg| (alg, "rsa"));
    let others = [(ES256, "ec256"), (ES384, "ec384"), (EdDSA, "ed25519")];
    for (alg, key) in rsa.into_iter().chain(others) {
        let t = token(alg, &enc(key), &c);
        assert_alice(&call(&asym(key, alg), Production, &t).await);
    }
}

#[tokio::test]
async fn a_key_or_an_allow_list_accepts_only_its_algorithms() {
    // The allow-list is per algorithm, not per key type: a PS256 key refuses RS256.
    let t = token(RS256, &enc("rsa"), &good_claims());
    let out = call(&asym("rsa", PS256), Verbose, &t).await;
    let r = out.check(
        &refused("token_algorithm_rejected", Verbose)
            .field("alg", "RS256")
            .field("signature_verified", false),
    );
    assert_contains(r.detail(), &["RS256", "PS256"]);
    // An ES256 key refuses ES384.
    let t = token(ES384, &enc("ec384"), &good_claims());
    let out = call(&asym("ec256", ES256), Production, &t).await;
    out.check(&refused("token_algorithm_rejected", Production).field("alg", "ES384"));
    // An explicit allow-list can exclude a key's algorithm.
    let jwt = authn(StaticKey::hs256(SECRET)).algorithms([HS512]);
    let out = call(&jwt, Production, &hs256(&good_claims())).await;
    out.check(&refused("token_algorithm_rejected", Production).field("alg", "HS256"));
}

async fn assert_alg_rejected(jwt: &JwtAuthenticator, t: &str, alg: &str) {
    let out = call(jwt, Production, t).await;
    out.check(
        &refused("token_algorithm_rejected", Production)
            .field("alg", alg)
            .field("signature_verified", false)
            .field("sub", "alice"),
    );
    let out = call(jwt, Verbose, t).await;
    let r = out.check(&refused("token_algorithm_rejected", Verbose));
    assert_contains(r.detail(), &[alg]);
    assert_contains(r.message(), &[alg]);
}

#[tokio::test]
async fn alg_none_and_unknown_algorithms_are_rejected() {
    let (_, _, s) = segments(&hs256(&good_claims()));
    // RFC 7519 §6: an Unsecured JWT has an empty signature. It is well-formed; its
    // algorithm is what is refused. With a signature, in other cases, or unknown: the same.
    let signed = ["none", "None", "NONE", "XX999"].map(|alg| (alg, s.as_str()));
    for (alg, sig) in [("none", "")].into_iter().chain(signed) {
        assert_alg_rejected(&jwt(), &unsigned(alg, &good_claims(), sig), alg).await;
    }
}

#[tokio::test]
async fn key_confusion_hs256_signed_with_the_rsa_public_key() {
    // The classic attack: HMAC keyed with the (public) RSA PEM, against an RS256 verifier.
    let forged = signed_with(&pem("rsa", "public"), &good_claims());
    let rs256_only = asym("rsa", RS256);
    assert_alg_rejected(&rs256_only, &forged, "HS256").await;
    let out = call(&rs256_only, Verbose, &forged).await;
    let r = out.check(&refused("token_algorithm_rejected", Verbose));
    assert_contains(r.detail(), &["RS256"]); // names the accepted one

    // Explicit allow-list: same answer.
    assert_alg_rejected(&rs256_only.algorithms([RS256]), &forged, "HS256").await;
}

#[tokio::test]
async fn key_confusion_with_an_hmac_key_configured_too() {
    // With an HS256 secret configured as well, HS256 is allowed, but the RSA key must
    // never serve as an HMAC secret: the forgery fails its signature.
    let jwt = asym("rsa", RS256).key(StaticKey::hs256(SECRET));
    let forged = signed_with(&pem("rsa", "public"), &good_claims());
    let out = call(&jwt, Production, &forged).await;
    out.check(
        &refused("token_signature_invalid", Production)
            .field("alg", "HS256")
            .field("signature_verified", false),
    );
    // Both legitimate tokens pass.
    assert_alice(&call(&jwt, Production, &hs256(&good_claims())).await);
    let t = token(RS256, &enc("rsa"), &good_claims());
    assert_alice(&call(&jwt, Production, &t).await);
}

// Several keys, kid selection ------------------------------------------------------------

fn key_set() -> JwtAuthenticator {
    authn(StaticKey::new(dec("rsa"), RS256).with_kid("rsa-2024-a"))
        .key(StaticKey::new(dec("rsa2"), RS256).with_kid("rsa-2024-b"))
        .key(StaticKey::new(dec("ec256"), ES256).with_kid("ec-2024"))
        .key(StaticKey::new(dec("ed25519"), EdDSA).with_kid("ed-2024"))
}

#[tokio::test]
async fn kid_selects_the_key() {
    let c = good_claims();
    for t in [
        token_kid(RS256, "rsa-2024-a", &enc("rsa"), &c),
        token_kid(RS256, "rsa-2024-b", &enc("rsa2"), &c),
        token_kid(ES256, "ec-2024", &enc("ec256"), &c),
        token_kid(EdDSA, "ed-2024", &enc("ed25519"), &c),
        // No kid: every key of the algorithm is tried.
        token(RS256, &enc("rsa2"), &c),
    ] {
        assert_alice(&call(&key_set(), Production, &t).await);
    }
    // Signed by key b but naming key a: only key a is tried.
    let t = token_kid(RS256, "rsa-2024-a", &enc("rsa2"), &c);
    let out = call(&key_set(), Verbose, &t).await;
    out.check(
        &refused("token_signature_invalid", Verbose)
            .field("kid", "rsa-2024-a")
            .field("alg", "RS256")
            .field("signature_verified", false),
    );
}

#[tokio::test]
async fn unknown_kid_is_token_key_unknown() {
    let t = token_kid(RS256, "rsa-2025-z", &enc("rsa"), &good_claims());
    let out = call(&key_set(), Production, &t).await;
    let r = out.check(
        &refused("token_key_unknown", Production)
            .field("kid", "rsa-2025-z")
            .field("alg", "RS256")
            .field("signature_verified", false)
            .field("sub", "alice")
            .field("iss", ISSUER),
    );
    assert_contains(r.message(), &["rsa-2025-z"]);
    // Production never names the configured keys.
    let body = out.text();
    for kid in ["rsa-2024-a", "rsa-2024-b", "ec-2024", "ed-2024"] {
        assert!(!body.contains(kid), "names key {kid}: {body}");
    }

    let out = call(&key_set(), Verbose, &t).await;
    let r = out.check(&refused("token_key_unknown", Verbose));
    assert_contains(r.detail(), &["rsa-2025-z"]);

    // ec-2024 exists, but as an ES256 key: an RS256 token naming it has no key.
    let t = token_kid(RS256, "ec-2024", &enc("rsa"), &good_claims());
    let out = call(&key_set(), Production, &t).await;
    out.check(&refused("token_key_unknown", Production).field("kid", "ec-2024"));
}

/// During a rotation a named key joins an unnamed one: tokens naming another kid still
/// verify with the unnamed key.
#[test]
fn unnamed_keys_serve_tokens_with_any_kid() {
    let jwt = JwtAuthenticator::new(StaticKey::hs256("old-secret"))
        .key(StaticKey::hs256("new-secret").with_kid("new"))
        .issuer(ISSUER)
        .audience(AUDIENCE);
    let old = EncodingKey::from_secret(b"old-secret");
    let old = token_kid(HS256, "b", &old, &good_claims());
    assert!(jwt.verify(&old).is_ok());
    let new = EncodingKey::from_secret(b"new-secret");
    let new = token_kid(HS256, "new", &new, &good_claims());
    assert!(jwt.verify(&new).is_ok());
    // Only named keys: an unknown kid is token_key_unknown.
    let named = JwtAuthenticator::new(StaticKey::hs256("new-secret").with_kid("new"));
    let named = named.accept_any_issuer().accept_any_audience();
    fails_at(&named, &old, now(), Reason::TokenKeyUnknown);
}

// Principal and Claims<T> in handlers ----------------------------------------------------

#[derive(Deserialize)]
struct TenantClaims {
    sub: String,
    tenant: String,
    exp: i64,
}

fn handler_app(mode: DetailMode) -> Router {
    let tenant = |Claims(c): Claims<TenantClaims>| async move {
        axum::Json(json!({ "sub": c.sub, "tenant": c.tenant, "exp": c.exp }))
    };
    let principal = |p: Principal| async move {
        let scopes: Vec<String> = p.scopes().map(str::to_owned).collect();
        axum::Json(json!({
            "scheme": p.scheme(), "id": p.id(), "scopes": scopes,
            "has_write": p.has_scope("write"), "has_admin": p.has_scope("admin"),
            "tenant": p.claims().and_then(|c| c.get("tenant")).cloned(),
            "claims_are_an_object": p.claims().is_some(),
        }))
    };
    Router::new()
        .route("/tenant", route_get(tenant))
        .route("/principal", route_get(principal))
        .layer(layer(mode).bearer(jwt()))
}

#[tokio::test]
async fn principal_extractor_sees_the_verified_claims() {
    let c = claims(json!({ "tenant": "acme", "scope": "read write" }));
    let out = call_at(handler_app(Production), "/principal", &hs256(&c)).await;
    let want = json!({
        "scheme": "Bearer", "id": "alice", "scopes": ["read", "write"],
        "has_write": true, "has_admin": false, "tenant": "acme",
        "claims_are_an_object": true,
    });
    assert_eq!(out.ok(), want);
}

#[tokio::test]
async fn typed_claims_extractor_succeeds() {
    let c = claims(json!({ "tenant": "acme" }));
    let want = json!({ "sub": "alice", "tenant": "acme", "exp": c["exp"] });
    let out = call_at(handler_app(Production), "/tenant", &hs256(&c)).await;
    assert_eq!(out.ok(), want);
}

/// `claim` is the claim's name everywhere else (`sub`, `exp`, `iss`); the extractor's
/// event says `tenant`, not a serde error sentence.
#[tokio::test]
async fn typed_claims_extractor_missing_field_is_token_claim_missing() {
    let t = hs256(&good_claims()); // no `tenant`
    for mode in MODES {
        let out = call_at(handler_app(mode), "/tenant", &t).await;
        let e = expect("token_claim_missing").mode(mode);
        let r = out.check(&e.field("claim", "tenant"));
        assert_contains(r.message(), &["tenant"]);
        if mode == Verbose {
            assert_contains(r.detail(), &["tenant"]);
            assert_eq!(r.problem["claim"], "tenant");
        }
    }
}

// token_malformed, token_claim_invalid ---------------------------------------------------

#[tokio::test]
async fn malformed_tokens() {
    let (h, p, s) = segments(&hs256(&good_claims()));
    let header = |json: &str| format!("{}.{p}.{s}", b64url(json.as_bytes()));
    let jwe = b64url(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#);
    let jwe = format!("{jwe}.a2V5.aXY.Y2lwaGVydGV4dA.dGFn");
    let array = raw_token(r#"{"alg":"HS256","typ":"JWT"}"#, r#"["sub","alice"]"#, SIG);
    let not_json = raw_token(r#"{"alg":"HS256"}"#, "sub=alice", SIG);
    let cases: Vec<(String, &[&str])> = vec![
        (format!("{h}.{p}"), &["3", "has 2"]),
        (h.clone(), &["has 1"]),
        (format!("{h}.{p}.{s}.{s}"), &["has 4"]),
        (jwe, &["5 segments", "JWE"]),
        // '+' is token68 (so the header parser lets it through) but not base64url.
        (format!("+{}.{p}.{s}", &h[1..]), &["header", "base64url"]),
        (
            format!("{h}.{}~.{s}", &p[..p.len() - 1]),
            &["payload", "base64url"],
        ),
        (header("alg=HS256"), &["header", "JSON"]),
        (header(r#"{"alg":256,"typ":"JWT"}"#), &["header"]),
        (header(r#"{"typ":"JWT"}"#), &["alg"]),
        (array, &["payload", "not an object"]),
        (not_json, &["payload", "JSON"]),
        (format!("{h}.{p}."), &["signature"]),
        (format!("{}==", hs256(&good_claims())), &["signature"]),
        (padded_token(17 * 1024), &["16 KiB"]),
    ];
    for (t, detail_has) in cases {
        let out = call(&jwt(), Production, &t).await;
        out.check(&refused("token_malformed", Production));
        let out = call(&jwt(), Verbose, &t).await;
        let r = out.check(&refused("token_malformed", Verbose));
        assert_contains(r.detail(), detail_has);
        assert_contains(r.message(), detail_has);
    }
}

#[tokio::test]
async fn tokens_are_limited_to_16_kib() {
    let err = fails_at(
        &jwt(),
        &padded_token(17 * 1024),
        now(),
        Reason::TokenMalformed,
    );
    assert!(err.detail_text().unwrap().contains("16 KiB"), "{err}");
    // 15 KiB is fine.
    assert_alice(&call(&jwt(), Production, &padded_token(15 * 1024)).await);
}

#[tokio::test]
async fn registered_claims_of_the_wrong_type_are_token_claim_invalid() {
    // Correctly signed: only the type of exp is wrong.
    let t = hs256(&claims(json!({ "exp": (now() + 3600).to_string() })));
    let out = call(&jwt(), Verbose, &t).await;
    let r = out.check(
        &refused("token_claim_invalid", Verbose)
            .field("claim", "exp")
            .field("signature_verified", true)
            .no_field("exp"),
    );
    assert_contains(r.detail(), &["NumericDate"]);
    assert_eq!(r.problem["claim"], "exp");
    // An issuer that is not a string.
    let t = hs256(&claims(json!({ "iss": [ISSUER] })));
    let out = call(&jwt(), Production, &t).await;
    let e = refused("token_claim_invalid", Production).field("claim", "iss");
    out.check(&e.no_field("iss"));
}

// token_signature_invalid ----------------------------------------------------------------

#[tokio::test]
async fn wrong_secret() {
    let t = signed_with(b"not-the-secret", &good_claims());
    let out = call(&jwt(), Production, &t).await;
    let r = out.check(
        &refused("token_signature_invalid", Production)
            .field("signature_verified", false)
            .field("alg", "HS256")
            .field("typ", "JWT")
            .field("iss", ISSUER)
            .field("aud", AUDIENCE)
            .field("sub", "alice")
            .no_field("kid"),
    );
    // The token was signed a moment before these claims were made again: its `exp` is
    // the same second or an earlier one on a slow machine.
    let exp = good_claims()["exp"].as_i64().unwrap();
    let got = r.event.field("exp").to_owned();
    assert!((exp - 5..=exp).any(|e| rfc3339(e) == got), "{got}");
    assert_contains(r.message(), &["HS256"]);
}

#[tokio::test]
async fn tampered_payload() {
    let (h, _, s) = segments(&hs256(&good_claims()));
    let (_, p, _) = segments(&hs256(&claims(json!({ "sub": "mallory" }))));
    let out = call(&jwt(), Verbose, &format!("{h}.{p}.{s}")).await;
    let r = out.check(
        &refused("token_signature_invalid", Verbose)
            .field("sub", "mallory")
            .field("signature_verified", false),
    );
    assert_contains(r.detail(), &["does not verify"]);
}

#[tokio::test]
async fn signature_from_another_key() {
    let t = token(RS256, &enc("rsa2"), &good_claims());
    let out = call(&asym("rsa", RS256), Production, &t).await;
    out.check(
        &refused("token_signature_invalid", Production)
            .field("alg", "RS256")
            .field("signature_verified", false),
    );
    // An ES256 verifier and an ES256 header, but signed by the P-384 key: invalid, never a
    // panic.
    let (h, p, _) = segments(&token(ES256, &enc("ec256"), &good_claims()));
    let (_, _, s384) = segments(&token(ES384, &enc("ec384"), &good_claims()));
    let t = format!("{h}.{p}.{s384}");
    let out = call(&asym("ec256", ES256), Production, &t).await;
    out.check(&refused("token_signature_invalid", Production));
}

#[tokio::test]
async fn forged_and_expired_is_reported_as_forged() {
    let exp = now() - 7200;
    let t = signed_with(b"forger", &claims(json!({ "exp": exp, "iat": exp - 600 })));

    let out = call(&jwt(), Production, &t).await;
    let r = out.check(
        &refused("token_signature_invalid", Production)
            .field("signature_verified", false)
            .field("exp", rfc3339(exp)),
    );
    // The unverified expiry is noted.
    assert_contains(r.message(), &["token_expired", &rfc3339(exp), "2h 0m ago"]);
    assert!(!out.text().contains("expired"), "{}", out.text());

    let out = call(&jwt(), Verbose, &t).await;
    let r = out.check(&refused("token_signature_invalid", Verbose));
    assert_contains(r.detail(), &["token_expired", &rfc3339(exp)]);
    assert!(r.problem.get("expired_at").is_none(), "{}", r.problem);
}

#[tokio::test]
async fn forged_with_wrong_issuer_is_reported_as_forged() {
    let t = signed_with(b"forger", &claims(json!({ "iss": "https://evil.test" })));
    let out = call(&jwt(), Production, &t).await;
    let r = out.check(
        &refused("token_signature_invalid", Production)
            .field("iss", "https://evil.test")
            .field("expected_iss", ISSUER),
    );
    assert_contains(r.message(), &["token_issuer_mismatch"]);
    assert!(!out.text().contains(ISSUER), "{}", out.text());
}

// token_expired, leeway, token_not_yet_valid ---------------------------------------------

/// A token that expired at `exp`, issued ten minutes before.
fn expiring(exp: i64) -> String {
    hs256(&claims(json!({ "exp": exp, "iat": exp - 600 })))
}

#[tokio::test]
async fn expired() {
    let exp = now() - 3600;
    let t = expiring(exp);
    let text = format!("the token expired at {} (1h 0m ago)", rfc3339(exp));

    let out = call(&jwt(), Production, &t).await;
    out.check(
        &refused("token_expired", Production)
            .field("signature_verified", true)
            .field("exp", rfc3339(exp))
            .field("sub", "alice")
            .field("message", format!("token_expired: {text}")),
    );

    let out = call(&jwt(), Verbose, &t).await;
    let r = out.check(&refused("token_expired", Verbose));
    assert_eq!(r.detail(), text);
    assert_eq!(r.problem["expired_at"], rfc3339(exp));
    let c = out.challenge();
    assert_eq!(c.param("error_description"), Some(&*text));
}

#[tokio::test]
async fn leeway_is_respected() {
    // Expired 10 s ago, default leeway 60 s: accepted; with leeway 0: expired.
    let t = expiring(now() - 10);
    assert_alice(&call(&jwt(), Production, &t).await);
    let strict = jwt().leeway(Duration::ZERO);
    let out = call(&strict, Production, &t).await;
    out.check(&refused("token_expired", Production));

    // Expired 2 min ago, default leeway: expired; with leeway 5 min: accepted.
    let t = expiring(now() - 120);
    let out = call(&jwt(), Production, &t).await;
    out.check(&refused("token_expired", Production));
    let lenient = jwt().leeway(Duration::from_secs(300));
    assert_alice(&call(&lenient, Production, &t).await);

    // nbf and iat within the leeway are fine.
    let t = hs256(&claims(json!({ "nbf": now() + 20, "iat": now() + 20 })));
    assert_alice(&call(&jwt(), Production, &t).await);
}

/// Five minutes of leeway is the most: an expired token stays expired.
#[test]
fn leeway_of_five_minutes_is_the_most() {
    let lenient = jwt().leeway(Duration::from_secs(300));
    let exp = |ago: i64| hs256(&claims(json!({ "exp": now() - ago })));
    assert!(lenient.verify(&exp(299)).is_ok());
    fails_at(&lenient, &exp(301), now(), Reason::TokenExpired);
    for secs in [301, 3600, 1u64 << 63, u64::MAX] {
        let leeway = jwt().leeway(Duration::from_secs(secs));
        let built = std::panic::catch_unwind(|| {
            auth_diagnostics::AuthDiagnostics::new()
                .bearer(leeway.clone())
                .layer(())
        });
        let message = built.expect_err("a leeway above 300 s is a configuration error");
        let text = message.downcast_ref::<String>();
        let text = text.expect("a formatted panic message");
        assert!(text.contains("300s"), "{text}");
    }
}

#[tokio::test]
async fn nbf_in_the_future() {
    let nbf = now() + 3600;
    let t = hs256(&claims(json!({ "nbf": nbf })));

    let out = call(&jwt(), Production, &t).await;
    let r = out.check(
        &refused("token_not_yet_valid", Production)
            .field("claim", "nbf")
            .field("signature_verified", true),
    );
    // The log names clock skew.
    let when = rfc3339(nbf);
    assert_contains(
        r.message(),
        &[&when, "in the future", "leeway 60s", "clock"],
    );

    let out = call(&jwt(), Verbose, &t).await;
    let r = out.check(&refused("token_not_yet_valid", Verbose));
    assert_eq!(r.problem["claim"], "nbf");
    assert_contains(r.detail(), &["clock"]);
}

#[tokio::test]
async fn iat_in_the_future() {
    let iat = now() + 600;
    let t = hs256(&claims(json!({ "iat": iat })));
    let out = call(&jwt(), Verbose, &t).await;
    let r = out.check(&refused("token_not_yet_valid", Verbose).field("claim", "iat"));
    assert_eq!(r.problem["claim"], "iat");
    assert_contains(r.message(), &[&rfc3339(iat)]);
}

// token_issuer_mismatch, token_audience_mismatch -----------------------------------------

#[tokio::test]
async fn issuer_mismatch() {
    let t = hs256(&claims(json!({ "iss": "https://evil.test" })));

    let out = call(&jwt(), Production, &t).await;
    let r = out.check(
        &refused("token_issuer_mismatch", Production)
            .field("iss", "https://evil.test")
            .field("expected_iss", ISSUER)
            .field("signature_verified", true),
    );
    assert_contains(r.message(), &["https://evil.test", ISSUER]);
    // Production never shows the expected issuer: not in the body, not in any header.
    assert!(!out.text().contains("issuer.test"), "{}", out.text());
    for (name, value) in &out.headers {
        let value = value.to_str().unwrap_or("");
        assert!(!value.contains("issuer.test"), "{name}: {value:?}");
    }

    let out = call(&jwt(), Verbose, &t).await;
    let r = out.check(&refused("token_issuer_mismatch", Verbose));
    assert_eq!(r.problem["expected_issuer"], ISSUER);
    assert_contains(r.detail(), &["https://evil.test"]);
}

#[tokio::test]
async fn one_of_several_issuers() {
    let other = "https://other-issuer.test";
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET).with_issuer(ISSUER))
        .key(StaticKey::hs256("other-secret").with_issuer(other))
        .issuer(ISSUER)
        .issuer(other)
        .audience(AUDIENCE);
    let t = signed_with(b"other-secret", &claims(json!({ "iss": other })));
    assert_alice(&call(&jwt, Production, &t).await);
    assert_alice(&call(&jwt, Production, &hs256(&good_claims())).await);
}

#[tokio::test]
async fn audience_mismatch() {
    let t = hs256(&claims(json!({ "aud": "other-api" })));
    let out = call(&jwt(), Production, &t).await;
    out.check(
        &refused("token_audience_mismatch", Production)
            .field("aud", "other-api")
            .field("expected_aud", AUDIENCE),
    );
    assert!(!out.text().contains(AUDIENCE), "{}", out.text());

    let out = call(&jwt(), Verbose, &t).await;
    let r = out.check(&refused("token_audience_mismatch", Verbose));
    assert_eq!(r.problem["expected_audience"], AUDIENCE);
    assert_contains(r.detail(), &["other-api"]);

    // An array without ours.
    let t = hs256(&claims(json!({ "aud": ["api-one", "api-two"] })));
    let out = call(&jwt(), Production, &t).await;
    out.check(
        &refused("token_audience_mismatch", Production)
            .field("aud", "api-one api-two")
            .field("expected_aud", AUDIENCE),
    );
    // An array containing ours is accepted.
    let t = hs256(&claims(json!({ "aud": ["api-one", AUDIENCE] })));
    assert_alice(&call(&jwt(), Production, &t).await);
}

// token_claim_missing --------------------------------------------------------------------

#[tokio::test]
async fn required_claims_missing() {
    // sub; exp; iss when an issuer is configured; aud when an audience is; exp even with
    // the least configuration; a claim required by name.
    let cases = ["sub", "exp", "iss", "aud"].map(|claim| (jwt(), claim));
    let more = [
        (minimal(), "exp"),
        (jwt().require_claims(["tenant"]), "tenant"),
    ];
    for (jwt, remove) in cases.into_iter().chain(more) {
        let t = hs256(&claims(json!({ remove: null })));
        let out = call(&jwt, Production, &t).await;
        let r = out.check(
            &refused("token_claim_missing", Production)
                .field("claim", remove)
                .field("signature_verified", true),
        );
        assert_contains(r.message(), &[remove]);

        let out = call(&jwt, Verbose, &t).await;
        let r = out.check(&refused("token_claim_missing", Verbose));
        assert_eq!(r.problem["claim"], remove);
    }
}

#[tokio::test]
async fn claim_null_counts_as_missing() {
    // A JSON null (an absent `tenant` is a case of `required_claims_missing`: `claims`
    // drops a null).
    let jwt = jwt().require_claims(["tenant"]);
    let mut c = good_claims();
    c.insert("tenant".into(), Value::Null);
    let out = call(&jwt, Production, &hs256(&c)).await;
    out.check(&refused("token_claim_missing", Production).field("claim", "tenant"));
}

#[tokio::test]
async fn with_any_audience_accepted_unconfigured_claims_are_not_required() {
    let c = claims(json!({ "iss": null, "aud": null, "sub": null, "iat": null }));
    let out = call(&minimal(), Production, &hs256(&c)).await;
    // No sub: the principal has no id.
    assert_eq!(out.ok()["sub"], Value::Null);
}

// token_type_rejected --------------------------------------------------------------------

#[tokio::test]
async fn access_token_type() {
    let jwt = jwt().require_access_token_type();
    let c = good_claims();
    for typ in "at+jwt application/at+jwt AT+JWT Application/At+JWT".split(' ') {
        assert_alice(&call(&jwt, Production, &token_typ(Some(typ), &c)).await);
    }
    for typ in [Some("JWT"), Some("jwt"), Some("application/jwt"), None] {
        let t = token_typ(typ, &c);
        let out = call(&jwt, Production, &t).await;
        let e = refused("token_type_rejected", Production);
        let r = out.check(&e.field("signature_verified", true));
        assert_eq!(r.event.get("typ"), typ);
        assert_contains(r.message(), &["at+jwt"]);

        let out = call(&jwt, Verbose, &t).await;
        let r = out.check(&refused("token_type_rejected", Verbose));
        assert_contains(r.detail(), &["at+jwt"]);
    }
}

// insufficient_scope ---------------------------------------------------------------------

/// `/admin` (scope `admin`) with a token of [`claims`]`(edits)`; [`call_at`] asserts a
/// 403's challenge has `scope="admin"`.
async fn admin(edits: Value, mode: DetailMode) -> Outcome {
    call_at(bearer_app(layer(mode)), "/admin", &hs256(&claims(edits))).await
}

fn lacks_admin(mode: DetailMode) -> Expect {
    let e = expect("insufficient_scope").mode(mode);
    e.field("scope", "admin")
}

#[tokio::test]
async fn insufficient_scope() {
    for mode in MODES {
        let out = admin(json!({ "scope": "read write" }), mode).await;
        let r = out.check(&lacks_admin(mode).field("user", "alice"));
        assert_eq!(r.problem["required_scope"], "admin");
        assert_contains(r.message(), &["admin", "read write"]);
        if mode == Verbose {
            assert_contains(r.detail(), &["admin"]);
        }
    }
    // `scp` as an array.
    let out = admin(json!({ "scp": ["read"] }), Production).await;
    let r = out.check(&lacks_admin(Production));
    assert_contains(r.message(), &["read"]);
    // No scope at all.
    let out = admin(json!({}), Production).await;
    let r = out.check(&lacks_admin(Production));
    assert_contains(r.message(), &["none"]);
    // "The log event": for tokens, the unverified alg/iss/aud/sub/exp and a fingerprint.
    let out = admin(json!({ "scope": "read" }), Production).await;
    let r = out.check(
        &lacks_admin(Production)
            .token_fields()
            .field("alg", "HS256")
            .field("sub", "alice")
            .field("iss", ISSUER),
    );
    r.event.field("fingerprint");
}

#[tokio::test]
async fn scope_matches_whole_names_exactly() {
    // A prefix, or another case, is not the scope.
    for edits in [
        json!({ "scope": "administrator admin:read" }),
        json!({ "scp": ["ADMIN"] }),
    ] {
        let out = admin(edits, Production).await;
        out.check(&lacks_admin(Production));
    }
    for edits in [
        json!({ "scope": "read admin" }),
        json!({ "scp": ["admin"] }),
        json!({ "scp": "read admin" }),
    ] {
        let out = admin(edits.clone(), Production).await;
        out.ok();
        assert_eq!(out.body, b"admin", "{edits}");
    }
}

// Fingerprints ---------------------------------------------------------------------------

#[tokio::test]
async fn fingerprint_follows_one_token() {
    let bad = |sub: &str| signed_with(b"forger", &claims(json!({ "sub": sub })));
    let (a, b) = (bad("a"), bad("b"));
    let fp = |out: Outcome| out.event().field("fingerprint").to_owned();
    let a1 = fp(call(&jwt(), Production, &a).await);
    let a2 = fp(call(&jwt(), Verbose, &a).await);
    let b1 = fp(call(&jwt(), Production, &b).await);
    assert_eq!(a1, a2);
    assert_ne!(a1, b1);
    assert!(!a.contains(&a1) && !b.contains(&b1));
}

// Hostile claims (`send` checks that every event is escaped and capped) ------------------

const HOSTILE: &str = "evil\"\\\r\n\0\u{e9}\u{2713}";
const HOSTILE_ESCAPED: &str = r#"evil\"\\\r\n\u{0}\u{e9}\u{2713}"#;

#[tokio::test]
async fn hostile_claims_and_kid_are_escaped() {
    let kids = authn(StaticKey::hs256(SECRET).with_kid("main"))
        .key(StaticKey::hs256(SECRET).with_kid("backup"));
    let iss_sub = hs256(&claims(json!({ "iss": HOSTILE, "sub": HOSTILE })));
    let kid = token_kid(HS256, HOSTILE, &hs_key(), &good_claims());
    let aud = hs256(&claims(json!({ "aud": HOSTILE })));
    for mode in MODES {
        let e = refused("token_issuer_mismatch", mode).field("iss", HOSTILE_ESCAPED);
        let out = call(&jwt(), mode, &iss_sub).await;
        let r1 = out.check(&e.field("sub", HOSTILE_ESCAPED));
        let e = refused("token_key_unknown", mode).field("kid", HOSTILE_ESCAPED);
        let r2 = call(&kids, mode, &kid).await.check(&e);
        for r in [&r1, &r2] {
            assert!(!r.message().contains('\u{e9}'), "{}", r.message());
        }
        let e = refused("token_audience_mismatch", mode).field("aud", HOSTILE_ESCAPED);
        let r3 = call(&jwt(), mode, &aud).await.check(&e);
        if mode == Verbose {
            for d in [r1.detail(), r3.detail()] {
                assert!(!d.chars().any(char::is_control), "raw controls: {d:?}");
            }
        }
    }
}

#[tokio::test]
async fn hostile_alg_and_typ_are_escaped() {
    let header = json!({ "alg": "HS256\r\nX-Injected: 1", "typ": "JWT\r\nSet-Cookie: a=b" });
    let payload = Value::Object(good_claims()).to_string();
    let t = raw_token(&header.to_string(), &payload, SIG);
    for mode in MODES {
        let out = call(&jwt(), mode, &t).await;
        out.check(
            &refused("token_algorithm_rejected", mode)
                .field("alg", r"HS256\r\nX-Injected: 1")
                .field("typ", r"JWT\r\nSet-Cookie: a=b"),
        );
        assert!(out.headers.get("x-injected").is_none());
        assert!(out.headers.get("set-cookie").is_none());
    }
}

#[tokio::test]
async fn huge_claims_are_capped() {
    let big = |c: char| c.to_string().repeat(3000);
    let t = hs256(&claims(
        json!({ "iss": big('i'), "sub": big('s'), "aud": big('a') }),
    ));
    for mode in MODES {
        let out = call(&jwt(), mode, &t).await;
        let r = out.check(&refused("token_issuer_mismatch", mode));
        for k in ["iss", "sub", "aud"] {
            assert!(r.event.field(k).ends_with('…'), "{k} is marked as cut");
        }
        assert_short("message", r.message());
        if mode == Verbose {
            assert_short("verbose detail", r.detail());
        }
    }
    // Not the aud copied uncapped into the verbose detail.
    let t = hs256(&claims(json!({ "aud": "a".repeat(6000) })));
    let out = call(&jwt(), Verbose, &t).await;
    let r = out.check(&refused("token_audience_mismatch", Verbose));
    assert_short("message", r.message());
    assert_short("verbose detail", r.detail());
    // Escaping must not undo the cap: 2000 × 'é' must not become 128 × "\u{e9}".
    let c = claims(json!({ "iss": "\u{e9}".repeat(2000), "sub": "\n".repeat(2000) }));
    let out = call(&jwt(), Production, &hs256(&c)).await;
    out.check(&refused("token_issuer_mismatch", Production));
}

#[tokio::test]
async fn ten_kib_kid() {
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET).with_kid("main"))
        .issuer(ISSUER)
        .audience(AUDIENCE);
    let t = token_kid(HS256, &"k".repeat(10 * 1024), &hs_key(), &good_claims());
    assert!(t.len() < 16 * 1024);
    for mode in MODES {
        let out = call(&jwt, mode, &t).await;
        let r = out.check(&refused("token_key_unknown", mode));
        assert!(r.event.field("kid").starts_with("kkkk"));
        assert_short("message", r.message());
        if mode == Verbose {
            assert_short("verbose detail", r.detail());
        }
    }
}

// verify_at: deterministic time ----------------------------------------------------------

/// 2026-11-27T03:35:00Z
const T: i64 = 1_795_750_500;

fn fixed_claims(exp: i64) -> Map<String, Value> {
    let c =
        json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": exp - 3600, "exp": exp });
    c.as_object().unwrap().clone()
}

/// `jwt.verify_at(t, at)` fails with `reason`; the failure.
#[track_caller]
fn fails_at(jwt: &JwtAuthenticator, t: &str, at: i64, reason: Reason) -> AuthFailure {
    let err = jwt.verify_at(t, at).unwrap_err();
    assert_eq!(err.reason(), reason, "{err}");
    err
}

#[test]
fn verify_at_expired_says_when_and_how_long_ago() {
    let t = hs256(&fixed_claims(T));
    let err = fails_at(&jwt(), &t, T + 3 * 3600 + 120, Reason::TokenExpired);
    let text = "the token expired at 2026-11-27T03:35:00Z (3h 2m ago)";
    assert_eq!(err.detail_text(), Some(text));
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
    let v = jwt.verify_at(&t, T + 59);
    v.expect("one second before exp + leeway is still valid");
    let err = fails_at(&jwt, &t, T + 60, Reason::TokenExpired);
    let text = "the token expired at 2026-11-27T03:35:00Z (1m 0s ago)";
    assert_eq!(err.detail_text(), Some(text));

    let strict = jwt.leeway(Duration::ZERO);
    strict.verify_at(&t, T - 1).unwrap();
    fails_at(&strict, &t, T, Reason::TokenExpired);
}

#[test]
fn verify_at_not_yet_valid_names_the_skew() {
    let mut c = fixed_claims(T + 7200);
    c.insert("nbf".into(), json!(T + 3600));
    let t = hs256(&c);
    let err = fails_at(&jwt(), &t, T, Reason::TokenNotYetValid);
    let skew = [
        "2026-11-27T04:35:00Z",
        "1h 0m in the future",
        "leeway 60s",
        "clock",
    ];
    assert_contains(err.detail_text().unwrap(), &skew);
    // Within leeway.
    jwt().verify_at(&t, T + 3600 - 60).unwrap();
}

#[test]
fn verify_at_forged_and_expired() {
    let t = signed_with(b"forger", &fixed_claims(T));
    let err = fails_at(
        &jwt(),
        &t,
        T + 3 * 3600 + 120,
        Reason::TokenSignatureInvalid,
    );
    let note = [
        "does not verify",
        "token_expired",
        "2026-11-27T03:35:00Z (3h 2m ago)",
    ];
    assert_contains(err.detail_text().unwrap(), &note);
    let facts = err.token_facts().unwrap();
    assert!(!facts.verified);
    assert_eq!(facts.exp, Some(T));

    // Forged but not expired: no note.
    let err = fails_at(&jwt(), &t, T - 10, Reason::TokenSignatureInvalid);
    assert!(!err.detail_text().unwrap().contains("expired"));
}

#[test]
fn verify_at_asymmetric_keys() {
    let jwt = key_set();
    let t = token_kid(EdDSA, "ed-2024", &enc("ed25519"), &fixed_claims(T));
    let v = jwt.verify_at(&t, T - 100).unwrap();
    assert_eq!(v.facts.kid.as_ref().unwrap().as_str(), "ed-2024");
    assert_eq!(v.facts.alg.as_ref().unwrap().as_str(), "EdDSA");
    fails_at(&jwt, &t, T + 3600, Reason::TokenExpired);
}

#[test]
fn verify_at_alg_none_is_rejected() {
    for sig in ["", SIG] {
        let t = unsigned("none", &fixed_claims(T), sig);
        fails_at(&jwt(), &t, T - 10, Reason::TokenAlgorithmRejected);
    }
}

// key_source_unavailable -----------------------------------------------------------------

/// A key source that cannot deliver keys is a server fault: 503 with `Retry-After`, no
/// challenge, logged at ERROR. (Static keys never fail; a handler or a future key source
/// reports it as an `AuthFailure`.)
#[tokio::test]
async fn key_source_unavailable_is_a_503_without_challenge() {
    let timed_out = "the JWK set endpoint timed out";
    for mode in MODES {
        let failure = AuthFailure::new(Reason::KeySourceUnavailable).detail(timed_out);
        let handler = move || std::future::ready(Err::<(), _>(failure.clone()));
        let app = Router::new().route("/me", route_get(handler));
        let app = app.layer(layer(mode).bearer(jwt()));
        let out = call_at(app, "/me", &hs256(&good_claims())).await;
        let r = out.check(&expect("key_source_unavailable").mode(mode));
        let retry: u64 = out.header("retry-after").unwrap().parse().unwrap();
        assert!(retry > 0);
        assert_eq!(out.header("cache-control"), None);
        // The specific detail is for verbose mode only.
        assert_eq!(r.detail() == timed_out, mode == Verbose, "{}", r.problem);
    }
}
