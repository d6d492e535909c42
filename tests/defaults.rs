//! Trustworthy by default: each finding of the review that found the layer wrong in
//! production while its tests were green, as a test through the layer (status, challenge
//! parsed by `http-auth`, problem body, log fields).

mod common;
use common::*;
use tower::Layer as _;

use auth_diagnostics::api_key::ApiKeyAuthenticator;
use auth_diagnostics::basic::{BasicAuthenticator, BasicCredentials};
use auth_diagnostics::failure::{AuthFailure, Challenge};
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::StaticKey;
use auth_diagnostics::session::SessionAuthenticator;
use auth_diagnostics::Principal;
use axum::response::{IntoResponse, Response};
use axum::routing::get as route_get;
use axum::Router;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use jsonwebtoken::EncodingKey;
use serde_json::{json, Map};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `/me` behind a verbose layer with `jwt`, sent `Bearer <token>`.
async fn me(jwt: JwtAuthenticator, token: &str) -> Outcome {
    send(
        jwt_app(AuthDiagnostics::new().verbose(), jwt),
        get("/me", &[("authorization", &bearer(token))]),
    )
    .await
}

/// A 401 of the JWT checks, as `me` answers it.
fn refused(reason: &'static str) -> Expect {
    expect(reason).verbose().token_fields()
}

// ---------------------------------------------------------------------------------------
// Secure JWT defaults
// ---------------------------------------------------------------------------------------

/// RFC 7519 §4.1.3, RFC 8725 §3.9: an authenticator that would accept a token minted for
/// another service is refused when the layer is built, never in production traffic.
#[tokio::test]
async fn an_authenticator_without_an_audience_is_refused_at_start_up() {
    let bare = JwtAuthenticator::new(StaticKey::hs256(SECRET)).issuer(ISSUER);
    let text = panic_message(std::panic::catch_unwind(|| {
        AuthDiagnostics::new().bearer(bare.clone()).layer(())
    }));
    assert!(text.contains("audience"), "{text}");
    assert!(text.contains("accept_any_audience"), "{text}");
    // Used directly, it fails closed.
    let err = bare.verify(&hs256(&good_claims())).unwrap_err();
    assert_eq!(err.reason(), Reason::TokenAudienceMismatch);
    // Both an audience and the opt-out is a contradiction, refused too.
    let both = jwt().accept_any_audience();
    let text = panic_message(std::panic::catch_unwind(|| {
        AuthDiagnostics::new().bearer(both).layer(())
    }));
    assert!(text.contains("choose one"), "{text}");
}

/// R-40: `aud` absent → 401; `["x","me"]` → accepted; `"x"` → 401.
#[tokio::test]
async fn a_token_minted_for_another_service_is_refused() {
    let out = me(jwt(), &hs256(&claims(json!({ "aud": "another-service" })))).await;
    let e = out.check(&refused("token_audience_mismatch")).event;
    assert_eq!(e.field("aud"), "another-service");
    assert_eq!(e.field("expected_aud"), AUDIENCE);

    let out = me(jwt(), &hs256(&claims(json!({ "aud": null })))).await;
    let e = out.check(&refused("token_claim_missing")).event;
    assert_eq!(e.field("claim"), "aud");

    let out = me(jwt(), &hs256(&claims(json!({ "aud": ["x", AUDIENCE] })))).await;
    assert_eq!(out.status, 200);

    // The explicit opt-out accepts any audience, and says so in its name.
    let any = JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer(ISSUER)
        .accept_any_audience();
    let out = me(any, &hs256(&claims(json!({ "aud": "another-service" })))).await;
    assert_eq!(out.status, 200);
}

/// RFC 7515 §4.1.11: critical extensions the verifier does not understand make the token
/// invalid; `crit` that is empty or not an array of strings is malformed.
#[tokio::test]
async fn a_token_with_critical_extensions_is_refused() {
    let good = good_claims();
    let t = hs256_raw_header(
        r#"{"alg":"HS256","typ":"JWT","crit":["x-unknown"],"x-unknown":1}"#,
        &good,
    );
    let out = me(jwt(), &t).await;
    let e = out.check(&refused("token_crit_unsupported")).event;
    assert!(e.field("message").contains("x-unknown"), "{}", e.line());
    assert_eq!(e.field("alg"), "HS256");

    // b64=false changes what the signature covers: refused before any cryptography.
    let t = hs256_raw_header(r#"{"alg":"HS256","crit":["b64"],"b64":false}"#, &good);
    me(jwt(), &t)
        .await
        .check(&refused("token_crit_unsupported"));

    for header in [
        r#"{"alg":"HS256","crit":[]}"#,
        r#"{"alg":"HS256","crit":"x-unknown"}"#,
        r#"{"alg":"HS256","crit":[1]}"#,
        r#"{"alg":"HS256","crit":null}"#,
        r#"{"alg":"HS256","crit":{"x":1}}"#,
    ] {
        let out = me(jwt(), &hs256_raw_header(header, &good)).await;
        let e = out.check(&refused("token_malformed")).event;
        assert!(
            e.field("message").contains("crit"),
            "{header}: {}",
            e.line()
        );
    }
}

/// RFC 7519 §4.1.4: `exp` is the time "on or after which the JWT MUST NOT be accepted".
#[tokio::test]
async fn a_token_is_expired_at_exp_plus_leeway() {
    // Default leeway 60 s.
    let out = me(jwt(), &hs256(&claims(json!({ "exp": now() - 60 })))).await;
    out.check(&refused("token_expired"));
    let out = me(jwt(), &hs256(&claims(json!({ "exp": now() - 55 })))).await;
    assert_eq!(out.status, 200);
    // No leeway: expired at exp itself.
    let strict = jwt().leeway(Duration::ZERO);
    let out = me(strict, &hs256(&claims(json!({ "exp": now() })))).await;
    let e = out.check(&refused("token_expired")).event;
    assert_eq!(e.field("signature_verified"), "true");
}

/// Leeway has an upper bound: `u64::MAX` no longer switches expiry off.
#[tokio::test]
async fn a_leeway_of_more_than_five_minutes_is_a_configuration_error() {
    for secs in [301, 86_400, u64::MAX] {
        let text = panic_message(std::panic::catch_unwind(|| {
            AuthDiagnostics::new()
                .bearer(jwt().leeway(Duration::from_secs(secs)))
                .layer(())
        }));
        assert!(text.contains("300s"), "{secs}: {text}");
    }
    let lenient = jwt().leeway(Duration::from_secs(300));
    let out = me(lenient, &hs256(&claims(json!({ "exp": now() - 3600 })))).await;
    out.check(&refused("token_expired"));
}

fn two_issuers() -> JwtAuthenticator {
    JwtAuthenticator::new(StaticKey::hs256(SECRET).with_issuer(ISSUER))
        .key(StaticKey::hs256("issuer-b-secret").with_issuer("https://b.test"))
        .issuer(ISSUER)
        .issuer("https://b.test")
        .audience(AUDIENCE)
}

fn signed_by_b(claims: &Map<String, Value>) -> String {
    sign(
        &jsonwebtoken::Header::default(),
        claims,
        &EncodingKey::from_secret(b"issuer-b-secret"),
    )
}

/// RFC 8725 §3.8, R-39: with two issuers, a token is verified only with the keys of the
/// issuer it names.
#[tokio::test]
async fn issuer_b_key_does_not_verify_a_token_that_claims_issuer_a() {
    // Issuer B's key, `iss` A: A's key does not verify it.
    let forged = signed_by_b(&good_claims());
    let out = me(two_issuers(), &forged).await;
    let e = out.check(&refused("token_signature_invalid")).event;
    assert_eq!(e.field("iss"), ISSUER);
    assert_eq!(e.field("signature_verified"), "false");
    // Each issuer's own tokens verify.
    let out = me(
        two_issuers(),
        &signed_by_b(&claims(json!({ "iss": "https://b.test" }))),
    )
    .await;
    assert_eq!(out.status, 200);
    let out = me(two_issuers(), &hs256(&good_claims())).await;
    assert_eq!(out.status, 200);
    // A third issuer has no key here: refused as the issuer it is, never verified.
    let out = me(
        two_issuers(),
        &hs256(&claims(json!({ "iss": "https://c.test" }))),
    )
    .await;
    let e = out.check(&refused("token_issuer_mismatch")).event;
    assert_eq!(e.field("signature_verified"), "false");
    assert!(e.field("message").contains("signature was not checked"));
    // A trailing slash is another issuer.
    let out = me(
        jwt(),
        &hs256(&claims(json!({ "iss": format!("{ISSUER}/") }))),
    )
    .await;
    out.check(&refused("token_issuer_mismatch"));
}

/// With several issuers, a key that names none of them is a configuration error; so is a
/// key bound to an issuer that is not accepted.
#[tokio::test]
async fn several_issuers_need_keys_that_name_their_issuer() {
    let unbound = JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .issuer(ISSUER)
        .issuer("https://b.test")
        .audience(AUDIENCE);
    let text = panic_message(std::panic::catch_unwind(|| {
        AuthDiagnostics::new().bearer(unbound).layer(())
    }));
    assert!(text.contains("with_issuer"), "{text}");
    let stray = JwtAuthenticator::new(StaticKey::hs256(SECRET).with_issuer("https://c.test"))
        .issuer(ISSUER)
        .audience(AUDIENCE);
    let text = panic_message(std::panic::catch_unwind(|| {
        AuthDiagnostics::new().bearer(stray).layer(())
    }));
    assert!(text.contains("https://c.test"), "{text}");
}

/// RFC 7519 §4.1: registered claims have registered JSON types. `"sub":123` used to pass
/// with a principal whose id was `null`.
#[tokio::test]
async fn registered_claims_of_the_wrong_type_are_token_claim_invalid() {
    for (claim, value) in [
        ("sub", json!(123)),
        ("sub", json!(["alice"])),
        ("iss", json!(1)),
        ("aud", json!(5)),
        ("aud", json!([AUDIENCE, 1])),
        ("aud", json!({ "a": AUDIENCE })),
        ("exp", json!("4102444800")),
        ("nbf", json!(true)),
        ("iat", json!({})),
        ("iat", Value::Null),
    ] {
        let mut c = good_claims();
        c.insert(claim.into(), value.clone());
        let out = me(jwt(), &hs256(&c)).await;
        let e = out.check(&refused("token_claim_invalid")).event;
        assert_eq!(e.field("claim"), claim, "{claim}: {value}");
        assert_eq!(out.problem()["claim"], claim, "{claim}: {value}");
        assert_eq!(e.field("signature_verified"), "true");
    }
    // A forged token of the wrong types is reported as forged, the types as a note.
    let mut c = good_claims();
    c.insert("sub".into(), json!(123));
    let forged = sign(
        &jsonwebtoken::Header::default(),
        &c,
        &EncodingKey::from_secret(b"not-the-secret"),
    );
    let out = me(jwt(), &forged).await;
    let e = out.check(&refused("token_signature_invalid")).event;
    assert!(
        e.field("message").contains("token_claim_invalid"),
        "{}",
        e.line()
    );
}

/// RFC 8725 §3.11: a `typ` that names another kind of JWT is refused, with or without
/// `application/`, in any case; `JWT`, `at+jwt` and no `typ` stay accepted.
#[tokio::test]
async fn other_kinds_of_jwt_are_refused_as_access_tokens() {
    let good = good_claims();
    for typ in [
        "dpop+jwt",
        "application/dpop+jwt",
        "LOGOUT+JWT",
        "secevent+jwt",
        "Application/SecEvent+JWT",
        "id_token+jwt",
        "example+jwt",
    ] {
        let t = hs256_raw_header(&format!(r#"{{"alg":"HS256","typ":"{typ}"}}"#), &good);
        let out = me(jwt(), &t).await;
        let e = out.check(&refused("token_type_rejected")).event;
        assert_eq!(e.field("typ"), typ);
    }
    for header in [
        r#"{"alg":"HS256","typ":"JWT"}"#,
        r#"{"alg":"HS256","typ":"jwt"}"#,
        r#"{"alg":"HS256","typ":"at+jwt"}"#,
        r#"{"alg":"HS256","typ":"application/at+jwt"}"#,
        r#"{"alg":"HS256"}"#,
    ] {
        let out = me(jwt(), &hs256_raw_header(header, &good)).await;
        assert_eq!(out.status, 200, "{header}");
    }
    // The strict RFC 9068 option still refuses plain JWTs.
    let t = hs256_raw_header(r#"{"alg":"HS256","typ":"JWT"}"#, &good);
    let out = me(jwt().require_access_token_type(), &t).await;
    out.check(&refused("token_type_rejected"));
}

// ---------------------------------------------------------------------------------------
// No false rejections
// ---------------------------------------------------------------------------------------

/// Two fields of one API-key header are two credentials, as two `Authorization` fields
/// are: 400, whatever their order, so no proxy that reads the last one disagrees with us.
#[tokio::test]
async fn two_api_key_fields_are_a_conflict_in_either_order() {
    for pair in [[KEY_GOOD, "other-key-456"], ["other-key-456", KEY_GOOD]] {
        let out = send(
            key_app(DetailMode::Verbose),
            request(
                Method::GET,
                "/r",
                pair.iter()
                    .map(|v| ("x-api-key", HeaderValue::from_static(v)))
                    .collect(),
            ),
        )
        .await;
        assert_eq!(out.status, 400, "{pair:?}");
        assert_eq!(out.problem()["reason"], "credentials_conflict");
        let c = out.challenge();
        assert_eq!(c.scheme, "ApiKey");
        assert_eq!(c.param("error"), None);
        let e = out.event();
        assert_eq!(e.field("reason"), "credentials_conflict");
        assert_eq!(e.field("location"), "header:x-api-key");
        assert_eq!(e.field("scheme_received"), "ApiKey");
    }
}

/// The session cookie is found wherever it sits within the caps: after 100 other cookies,
/// in a second Cookie field, beside a pair that is not UTF-8.
#[tokio::test]
async fn the_session_cookie_is_found_wherever_it_sits_within_the_caps() {
    let many: Vec<String> = (0..100).map(|i| format!("c{i}=v{i}")).collect();
    let cases = vec![
        (
            "after 100 cookies",
            vec![HeaderValue::from_str(&format!("{}; sid={SESS_VALID}", many.join("; "))).unwrap()],
        ),
        (
            "in a second field",
            vec![
                HeaderValue::from_static("theme=dark"),
                hv(format!("sid={SESS_VALID}")),
            ],
        ),
        (
            "beside a non-UTF-8 pair",
            vec![hv([
                b"bad=\xff\xfe; sid=".as_slice(),
                SESS_VALID.as_bytes(),
                b"; x=1",
            ]
            .concat())],
        ),
        (
            "after a non-UTF-8 field",
            vec![
                HeaderValue::from_bytes(b"bad=\xff").unwrap(),
                hv(format!("sid={SESS_VALID}")),
            ],
        ),
    ];
    for (label, fields) in cases {
        let out = send(
            session_app(DetailMode::Verbose),
            request(
                Method::GET,
                "/r",
                fields.into_iter().map(|v| ("cookie", v)).collect(),
            ),
        )
        .await;
        assert_eq!(out.status, 200, "{label}: {:?}", out.events);
        assert!(out.events.is_empty(), "{label}");
    }
}

/// Beyond the caps the header is not read, and the answer says so: never
/// `credentials_missing`.
#[tokio::test]
async fn a_cookie_header_over_the_caps_is_named_never_missing() {
    let count: Vec<String> = (0..300).map(|i| format!("c{i}=v")).collect();
    let bytes = format!("big={}", "x".repeat(17 * 1024));
    for (label, header) in [("300 cookies", count.join("; ")), ("17 KiB", bytes)] {
        let header = format!("{header}; sid={SESS_VALID}");
        let out = send(
            session_app(DetailMode::Verbose),
            get("/r", &[("cookie", &header)]),
        )
        .await;
        assert_eq!(out.status, 401, "{label}");
        let p = out.problem();
        assert_eq!(p["reason"], "session_invalid", "{label}");
        assert!(
            p["detail"].as_str().unwrap().contains("cap"),
            "{label}: {p}"
        );
        let e = out.event();
        assert_eq!(e.field("reason"), "session_invalid", "{label}");
        assert_eq!(e.field("hints"), "cookie_header_over_cap", "{label}");
        assert_eq!(e.field("location"), "cookie:sid", "{label}");
    }
}

/// RFC 7617 allows an empty user-id: it is a credential like any other and reaches the
/// application's verifier.
#[tokio::test]
async fn basic_with_an_empty_user_id_reaches_the_verifier() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let verify = move |c: BasicCredentials| {
        seen2
            .lock()
            .unwrap()
            .push((c.user.clone(), c.password.expose().to_owned()));
        async move {
            if c.user.is_empty() && c.password.ct_eq("pass") {
                Ok(Principal::new("token-user"))
            } else {
                Err(AuthFailure::new(Reason::BasicUserUnknown))
            }
        }
    };
    let app = Router::new()
        .route(
            "/r",
            route_get(|p: Principal| async move { p.id().unwrap().to_owned() }),
        )
        .layer(AuthDiagnostics::new().basic(BasicAuthenticator::new(verify)));
    // `:pass`
    let out = send(app, get("/r", &[("authorization", "Basic OnBhc3M=")])).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.body, b"token-user");
    assert_eq!(*seen.lock().unwrap(), [(String::new(), "pass".to_owned())]);
}

fn bearer_or_basic() -> Router {
    let basic = BasicAuthenticator::new(|_c: BasicCredentials| async {
        Err::<Principal, _>(AuthFailure::new(Reason::BasicUserUnknown))
    });
    jwt_app(AuthDiagnostics::new().basic(basic), jwt())
}

/// The challenge on a 400 speaks the scheme the client used: Basic for Basic, Bearer's
/// `invalid_request` only for Bearer or a request without a scheme.
#[tokio::test]
async fn a_400_challenges_in_the_scheme_the_client_spoke() {
    let two_basic = request(
        Method::GET,
        "/r",
        vec![
            ("authorization", HeaderValue::from_static("Basic YTpi")),
            ("authorization", HeaderValue::from_static("Basic Yzpk")),
        ],
    );
    let mut two_basic = two_basic;
    *two_basic.uri_mut() = "/me".parse().unwrap();
    let out = send(bearer_or_basic(), two_basic).await;
    assert_eq!(out.status, 400);
    assert_eq!(out.problem()["reason"], "credentials_conflict");
    let c = out.challenge();
    assert_eq!(c.scheme, "Basic");
    assert_eq!(c.param("charset"), Some("UTF-8"));
    assert_eq!(c.param("error"), None);
    assert_eq!(out.event().field("scheme_received"), "Basic");

    // A Basic value that is not even text is still Basic: undecodable credentials are a
    // 401 with a fresh Basic challenge (R-25), as `Basic a"b` is.
    let mut bad = request(
        Method::GET,
        "/r",
        vec![(
            "authorization",
            HeaderValue::from_bytes(b"Basic \xffabc").unwrap(),
        )],
    );
    *bad.uri_mut() = "/me".parse().unwrap();
    let out = send(bearer_or_basic(), bad).await;
    assert_eq!(out.status, 401);
    assert_eq!(out.problem()["reason"], "basic_malformed");
    let challenges = out.challenges();
    assert_eq!(challenges[0].scheme, "Basic");
    assert!(challenges.iter().all(|c| c.param("error").is_none()));

    // Bearer keeps invalid_request.
    let out = send(
        bearer_or_basic(),
        get("/me", &[("authorization", "Bearer a b")]),
    )
    .await;
    assert_eq!(out.status, 400);
    let c = out.challenge();
    assert_eq!(c.scheme, "Bearer");
    assert_eq!(c.param("error"), Some("invalid_request"));
}

// ---------------------------------------------------------------------------------------
// Enforce mode corrects only what is certain
// ---------------------------------------------------------------------------------------

async fn forbid() -> Response {
    StatusCode::FORBIDDEN.into_response()
}

fn forbidding(layer: AuthDiagnostics) -> Router {
    Router::new().route("/r", route_get(forbid)).layer(layer)
}

/// RFC 9110 §15.5.4: a 403 to a request that carries a cookie, a proxy credential, a
/// CSRF token or an `access_token` can be the app's legal denial; even opted in, it is kept.
#[tokio::test]
async fn a_403_to_a_request_with_any_credential_is_kept() {
    let layer = AuthDiagnostics::new().correct_forbidden_without_credentials();
    for (label, req) in [
        (
            "unknown cookie",
            get("/r", &[("cookie", "JSESSIONID=abc123xyz")]),
        ),
        ("bare cookie", get("/r", &[("cookie", "abc123xyz")])),
        (
            "proxy credential",
            get("/r", &[("proxy-authorization", "Basic YTpi")]),
        ),
        ("csrf token", get("/r", &[("x-csrf-token", "abc123xyz")])),
        (
            "GitLab token",
            get("/r", &[("private-token", "glpat-abc123xyz")]),
        ),
        ("Api-Token", get("/r", &[("api-token", "abc123xyz")])),
        (
            "Azure subscription key",
            get("/r", &[("ocp-apim-subscription-key", "abc123xyz")]),
        ),
        ("api key", get("/r", &[("x-api-key", "abc123xyz")])),
        ("access_token", get("/r?access_token=abc123xyz", &[])),
    ] {
        let out = send(forbidding(layer.clone()), req).await;
        assert_eq!(out.status, 403, "{label}");
        assert!(out.headers.get(WWW_AUTHENTICATE).is_none(), "{label}");
        // Logged as the app's own refusal of a request with credentials.
        let e = out.event();
        assert_eq!(e.field("reason"), "forbidden", "{label}");
        assert_eq!(e.field("inferred"), "true", "{label}");
        assert_eq!(e.field("status"), "403", "{label}");
    }
    // A cookie after enough proxy headers to fill what the layer keeps of a request.
    let mut headers: Vec<(String, String)> = (0..20)
        .map(|i| (format!("x-forwarded-test-{i}"), "1".to_owned()))
        .collect();
    headers.push(("cookie".into(), "JSESSIONID=abc123xyz".into()));
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let out = send(forbidding(layer.clone()), get("/r", &refs)).await;
    assert_eq!(out.status, 403, "cookie after 20 proxy headers");
    // `?token=` is an application parameter, not a credential: corrected. So is
    // `?ACCESS_TOKEN=`: RFC 6750 names exactly `access_token`.
    for uri in ["/r?token=page2", "/r?ACCESS_TOKEN=page2"] {
        let out = send(forbidding(layer.clone()), get(uri, &[])).await;
        assert_eq!(out.status, 401, "{uri}");
    }
    // Headers that say "key" or "token" without carrying a credential.
    for name in ["sec-websocket-key", "idempotency-key", "postman-token"] {
        let out = send(
            forbidding(layer.clone()),
            get("/r", &[(name, "dGhlIHNhbXBsZQ==")]),
        )
        .await;
        assert_eq!(out.status, 401, "{name}");
    }
}

/// Without the opt-in, a 403 to a request without credentials is kept and logged with a
/// hint that names the opt-in.
#[tokio::test]
async fn a_403_without_credentials_is_kept_unless_the_application_opted_in() {
    let out = send(forbidding(AuthDiagnostics::new()), get("/r", &[])).await;
    assert_eq!(out.status, 403);
    assert!(out.body.is_empty());
    assert!(out.headers.get(WWW_AUTHENTICATE).is_none());
    let e = out.event();
    assert_eq!(e.field("reason"), "upstream_forbidden_without_credentials");
    assert_eq!(e.field("status"), "403");
    assert_eq!(e.field("upstream_status"), "403");
    assert!(
        e.field("hint")
            .contains("correct_forbidden_without_credentials"),
        "{}",
        e.line()
    );

    let out = send(
        forbidding(AuthDiagnostics::new().correct_forbidden_without_credentials()),
        get("/r", &[]),
    )
    .await;
    assert_eq!(out.status, 401);
    assert_eq!(out.problem()["status"], 401);
}

fn refusing_app(challenge: &'static str) -> Router {
    Router::new()
        .route(
            "/me",
            route_get(move || async move {
                (
                    StatusCode::UNAUTHORIZED,
                    [(WWW_AUTHENTICATE, challenge)],
                    "revoked",
                )
                    .into_response()
            }),
        )
        .layer(AuthDiagnostics::new().bearer(jwt()))
}

/// RFC 6750 §3.1, MCP: an app that refuses a token the layer verified (revoked, say) with
/// `error="invalid_token"` keeps its 401, so the client refreshes. (`insufficient_scope`
/// means 403: `findings.rs` shows that correction.)
#[tokio::test]
async fn an_apps_own_invalid_token_refusal_is_kept() {
    let token = hs256(&good_claims());
    for challenge in [
        r#"Bearer error="invalid_token""#,
        r#"DPoP algs="ES256", error="invalid_token""#,
        r#"Basic realm="x", Bearer error=invalid_token"#,
        // RFC 9470 step-up and RFC 9449 nonce: the challenge tells the client what to do.
        r#"Bearer error="insufficient_user_authentication", acr_values="mfa""#,
        r#"DPoP error="use_dpop_nonce", algs="ES256""#,
        // Unparseable, but it names the code: not certain, so not corrected.
        r#"Bearer error="invalid_token"#,
    ] {
        let out = send_unchecked(
            refusing_app(challenge),
            get("/me", &[("authorization", &bearer(&token))]),
        )
        .await;
        assert_eq!(out.status, 401, "{challenge}");
        assert_eq!(out.header("www-authenticate"), Some(challenge));
        assert_eq!(out.body, b"revoked");
        let e = out.event();
        assert_eq!(e.level, Level::WARN, "{challenge}");
        assert_eq!(e.field("reason"), "upstream_token_refused");
        assert_eq!(e.field("status"), "401");
        assert_eq!(e.field("signature_verified"), "true");
    }
    // Without an error code, the 401 to an authenticated request still becomes 403.
    let out = send(
        refusing_app(r#"Bearer realm="app""#),
        get("/me", &[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(out.status, 403);
}

/// RFC 9457 §3.1.2: when enforce changes the status, the app's problem body (which says
/// `"status":401`) is replaced by the layer's for the new status.
#[tokio::test]
async fn a_changed_status_never_keeps_a_problem_body_of_the_old_one() {
    let app = Router::new()
        .route(
            "/me",
            route_get(|| async {
                (
                    StatusCode::UNAUTHORIZED,
                    [(CONTENT_TYPE, "application/problem+json")],
                    r#"{"status":401,"title":"Unauthorized"}"#,
                )
                    .into_response()
            }),
        )
        .layer(AuthDiagnostics::new().bearer(jwt()));
    let out = send(
        app,
        get("/me", &[("authorization", &bearer(&hs256(&good_claims())))]),
    )
    .await;
    assert_eq!(out.status, 403);
    let p = out.problem();
    assert_eq!(p["status"], 403);
    assert_eq!(p["reason"], "forbidden");
}

/// RFC 6750 §3.1: a request that sent a token gets an error code; the 401 the layer
/// completes for it says `invalid_token`, and keeps the app's non-empty body.
#[tokio::test]
async fn a_completed_401_for_a_bearer_request_says_invalid_token() {
    let app = Router::new()
        .route(
            "/r",
            route_get(|| async { (StatusCode::UNAUTHORIZED, "go away").into_response() }),
        )
        .layer(AuthDiagnostics::new());
    let out = send(
        app.clone(),
        get("/r", &[("authorization", "Bearer opaque-token-1")]),
    )
    .await;
    assert_eq!(out.status, 401);
    let c = out.challenge();
    assert_eq!(c.scheme, "Bearer");
    assert_eq!(c.param("error"), Some("invalid_token"));
    assert_eq!(out.body, b"go away");
    let out = send(app, get("/r", &[])).await;
    assert_eq!(out.challenge().param("error"), None);
}

// ---------------------------------------------------------------------------------------
// Cache safety
// ---------------------------------------------------------------------------------------

fn cached(values: &'static [&'static str]) -> Router {
    let handler = move || async move {
        let mut r = "ok".into_response();
        for v in values {
            r.headers_mut()
                .append(CACHE_CONTROL, HeaderValue::from_static(v));
        }
        r
    };
    Router::new().route("/r", route_get(handler))
}

fn cache_control(out: &Outcome) -> Vec<String> {
    out.headers
        .get_all(CACHE_CONTROL)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// RFC 9110 §16.4.2: shared caches key on neither `X-API-Key` nor `Cookie`, so an answer
/// authenticated by either is never storable by them.
#[tokio::test]
async fn key_and_cookie_answers_are_never_storable_by_shared_caches() {
    let key = || AuthDiagnostics::new().api_key(ApiKeyAuthenticator::new(check_key));
    let cases: [(&'static [&'static str], &str); 8] = [
        (&[], "private"),
        (&["max-age=60"], "max-age=60, private"),
        (&["public, max-age=60"], "max-age=60, private"),
        (&["s-maxage=600, max-age=60"], "max-age=60, private"),
        (&["public", "max-age=60, s-maxage=1"], "max-age=60, private"),
        (
            &[r#"private="set-cookie", max-age=5"#],
            "max-age=5, private",
        ),
        (&["no-store"], "no-store"),
        // A cache that understands the status may ignore no-store (RFC 9111 §5.2.2.3).
        (
            &["must-understand, no-store, max-age=600"],
            "must-understand, no-store, max-age=600, private",
        ),
    ];
    for (set, want) in cases {
        let out = send(
            cached(set).layer(key()),
            get("/r", &[("x-api-key", KEY_GOOD)]),
        )
        .await;
        assert_eq!(out.status, 200);
        assert_eq!(cache_control(&out), [want], "{set:?}");
    }
    let session = AuthDiagnostics::new().session(SessionAuthenticator::new("sid", check_session));
    let out = send(
        cached(&["public, max-age=60"]).layer(session),
        get("/r", &[("cookie", &format!("sid={SESS_VALID}"))]),
    )
    .await;
    assert_eq!(cache_control(&out), ["max-age=60, private"]);
    // Authorization is what shared caches do key on: a Bearer answer is left as it is.
    let out = send(
        cached(&["public, max-age=60"]).layer(AuthDiagnostics::new().bearer(jwt())),
        get("/r", &[("authorization", &bearer(&hs256(&good_claims())))]),
    )
    .await;
    assert_eq!(cache_control(&out), ["public, max-age=60"]);
}

// ---------------------------------------------------------------------------------------
// Secrets in the log
// ---------------------------------------------------------------------------------------

fn zero_401() -> Router {
    Router::new()
        .route(
            "/{*rest}",
            route_get(|| async { StatusCode::UNAUTHORIZED.into_response() }),
        )
        .layer(AuthDiagnostics::new())
}

/// A cookie pair without `=` is a value (browsers send `document.cookie = "v"` that way):
/// it appears only as a fingerprint of the whole pair, never as a cookie name.
#[tokio::test]
async fn a_nameless_cookie_is_logged_only_as_a_fingerprint() {
    let out = send(
        zero_401(),
        get(
            "/r",
            &[("cookie", &format!("theme=dark; {SESS_VALID}; other=1"))],
        ),
    )
    .await;
    let repro = out.event().field("repro");
    assert!(!repro.contains(SESS_VALID), "{repro}");
    assert!(repro.contains("theme=<cookie fp:"), "{repro}");
    assert!(repro.contains("; <cookie fp:"), "{repro}");
}

/// Servlet-style session ids in the path (`;jsessionid=`) are credentials: the `path`
/// field and `repro` keep the parameter's name, not its value.
#[tokio::test]
async fn a_session_id_in_a_path_parameter_is_not_logged() {
    let out = send(zero_401(), get("/app;jsessionid=A1B2C3D4E5F6/orders", &[])).await;
    let e = out.event();
    assert_eq!(e.field("path"), "/app;jsessionid=<value>/orders");
    assert!(!e.field("repro").contains("A1B2C3D4E5F6"), "{}", e.line());
}

// ---------------------------------------------------------------------------------------
// Challenge grammar in release builds
// ---------------------------------------------------------------------------------------

/// Names are checked by `assert!`, not `debug_assert!`: no build can emit a challenge a
/// strict RFC 9110 parser rejects.
#[test]
fn a_challenge_with_an_invalid_scheme_or_parameter_name_cannot_be_built() {
    for scheme in ["", "Bad Scheme", "Bearer\r\n", "a,b", "\"q\""] {
        let s: &'static str = Box::leak(scheme.to_owned().into_boxed_str());
        let text = panic_message(std::panic::catch_unwind(|| Challenge::new(s)));
        assert!(text.contains("not an RFC 9110 token"), "{scheme:?}: {text}");
    }
    for name in ["", "a b", "a=b", "x\"y"] {
        let n: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let text = panic_message(std::panic::catch_unwind(|| {
            Challenge::new("Bearer").quoted_param(n, "v")
        }));
        assert!(text.contains("not an RFC 9110 token"), "{name:?}: {text}");
    }
    let ok = Challenge::new("Bearer")
        .realm("a\"b\\c\r\n")
        .quoted_param("x-y", "é\u{7f}");
    let text = ok.to_header_value().to_str().unwrap().to_owned();
    http_auth::parse_challenges(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
}

/// RFC 6750 §2.3 names exactly `access_token`: another spelling beside a valid
/// Authorization is the application's own parameter, never a conflict.
#[tokio::test]
async fn only_the_exact_access_token_name_conflicts() {
    let token = hs256(&good_claims());
    for uri in ["/me?ACCESS_TOKEN=page2", "/me?Access_Token=page2"] {
        let out = me_with_uri(uri, &token).await;
        assert_eq!(out.status, 200, "{uri}");
    }
    let out = me_with_uri("/me?access_token=page2", &token).await;
    assert_eq!(out.status, 400);
}

async fn me_with_uri(uri: &str, token: &str) -> Outcome {
    send(
        bearer_app(AuthDiagnostics::new()),
        get(uri, &[("authorization", &bearer(token))]),
    )
    .await
}

/// The configured session cookie with a value that is not UTF-8 is there: it is invalid,
/// not missing.
#[tokio::test]
async fn a_session_cookie_that_is_not_text_is_invalid_not_missing() {
    let out = send(
        session_app(DetailMode::Verbose),
        request(
            Method::GET,
            "/r",
            vec![(
                "cookie",
                HeaderValue::from_bytes(b"theme=dark; sid=abc\xff").unwrap(),
            )],
        ),
    )
    .await;
    assert_eq!(out.status, 401);
    assert_eq!(out.problem()["reason"], "session_invalid");
    let e = out.event();
    assert_eq!(e.field("location"), "cookie:sid");
    assert!(e.field("message").contains("UTF-8"), "{}", e.line());
}

/// A `typ` with media-type parameters or control characters is still the type it names.
#[tokio::test]
async fn typ_parameters_and_control_characters_do_not_hide_another_kind_of_jwt() {
    for typ in [
        "application/dpop+jwt; charset=utf-8",
        "dpop+jwt\\u0000",
        " logout+jwt ",
    ] {
        let header = format!(r#"{{"alg":"HS256","typ":"{typ}"}}"#);
        let out = me(jwt(), &hs256_raw_header(&header, &good_claims())).await;
        out.check(&refused("token_type_rejected"));
    }
    let t = hs256_raw_header(r#"{"alg":"HS256","typ":"JWT; v=1"}"#, &good_claims());
    assert_eq!(me(jwt(), &t).await.status, 200);
}

/// With issuer-bound keys, a token without `iss` is missing a claim, not from another
/// issuer.
#[tokio::test]
async fn a_token_without_iss_under_issuer_bound_keys_is_missing_the_claim() {
    let out = me(two_issuers(), &hs256(&claims(json!({ "iss": null })))).await;
    let e = out.check(&refused("token_claim_missing")).event;
    assert_eq!(e.field("claim"), "iss");
}
