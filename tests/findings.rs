//! The findings of the outside security run and conformance review, each as the request
//! that was wrongly accepted (or wrongly answered) and the answer it gets now: bound tokens
//! sent as Bearer, ID tokens as access tokens, a future `auth_time`, an empty `sub`, an
//! authenticator without an issuer, an empty `Authorization` field, route scopes under a
//! layer scope (R-58), an application's 401 that says `insufficient_scope`, and the problem
//! body's `error` (R-36).

mod common;
use common::*;
use tower::Layer as _;

use auth_diagnostics::authz::{RequireScope, RequireStepUp};
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::{Algorithm, StaticKey};
use axum::routing::get as route_get;
use axum::Router;
use serde_json::json;
use std::time::Duration;
use DetailMode::{Production, Verbose};

const MODES: [DetailMode; 2] = [Production, Verbose];

#[track_caller]
fn assert_contains(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} not in {text:?}");
    }
}

/// `/me` behind the default test authenticator, in `mode`.
async fn me(mode: DetailMode, token: &str) -> Outcome {
    let app = bearer_app(layer(mode));
    send(app, get("/me", &[("authorization", &bearer(token))])).await
}

// Item 5: sender-constrained tokens are never plain Bearer tokens ------------------------

#[tokio::test]
async fn a_token_bound_by_a_method_the_route_cannot_verify_is_refused() {
    let thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
    let jwk = json!({ "kty": "EC", "crv": "P-256", "x": "a", "y": "b" });
    let cases = [
        // RFC 8705: a certificate-bound token, and no certificate source on this route.
        (json!({ "x5t#S256": thumbprint }), "x5t#S256"),
        // RFC 7800: a raw proof-of-possession key.
        (json!({ "jwk": jwk }), "jwk"),
        (json!({ "kid": "k1" }), "kid"),
        // A method nobody knows: nothing proves possession.
        (json!({ "x5t#S512": thumbprint }), "x5t#S512"),
    ];
    for mode in MODES {
        for (cnf, member) in &cases {
            let t = hs256(&claims(json!({ "cnf": cnf })));
            let out = me(mode, &t).await;
            let r = out.check(
                &expect("token_binding_unverifiable")
                    .mode(mode)
                    .token_fields()
                    .field("claim", "cnf")
                    .field("signature_verified", true),
            );
            assert_contains(r.message(), &[member]);
        }
    }
}

#[tokio::test]
async fn a_malformed_cnf_is_an_invalid_claim_and_a_jkt_stays_dpop_bound() {
    for cnf in [
        json!({ "jkt": 5 }),
        json!({ "jkt": ["a"] }),
        json!("jkt"),
        json!({}),
    ] {
        let t = hs256(&claims(json!({ "cnf": cnf })));
        let out = me(Production, &t).await;
        out.check(
            &expect("token_claim_invalid")
                .token_fields()
                .field("claim", "cnf"),
        );
    }
    // R-49: a DPoP-bound token sent as Bearer, with or without another method beside it.
    for cnf in [
        json!({ "jkt": "abc" }),
        json!({ "jkt": "abc", "x5t#S256": "d" }),
    ] {
        let t = hs256(&claims(json!({ "cnf": cnf })));
        me(Production, &t)
            .await
            .check(&expect("token_dpop_bound").token_fields());
    }
}

// Item 7: ID tokens are not access tokens (R-42, R-43, R-45) ----------------------------

#[tokio::test]
async fn an_id_token_is_not_an_access_token() {
    for claim in ["at_hash", "c_hash"] {
        for mode in MODES {
            let t = hs256(&claims(
                json!({ claim: "q3Kk2eHJXy9wnuU8qr7zVw", "nonce": "n" }),
            ));
            let out = me(mode, &t).await;
            let r = out.check(
                &expect("token_type_rejected")
                    .mode(mode)
                    .token_fields()
                    .field("claim", claim),
            );
            assert_contains(r.message(), &[claim, "ID token"]);
        }
    }
}

#[tokio::test]
async fn what_common_idps_put_in_access_tokens_is_accepted() {
    // Keycloak (`azp`, `nonce` in some versions, `session_state`, `sid`, `typ` claim),
    // Entra (`azp`, `auth_time` none), Okta (`auth_time`, `cid`, `uid`), Auth0 (`azp`,
    // `gty`): none of these makes an access token an ID token.
    let now = now();
    let c = claims(json!({
        "azp": "web-app", "auth_time": now - 600, "nonce": "n-0S6_WzA2Mj",
        "session_state": "s1", "sid": "s1", "typ": "Bearer", "cid": "c1", "uid": "u1",
        "gty": "client-credentials", "acr": "1", "scope": "openid profile",
    }));
    let out = me(Production, &hs256(&c)).await;
    assert_eq!(out.ok()["sub"], "alice");
}

#[tokio::test]
async fn the_rfc9068_profile_requires_its_type_and_claims() {
    let jwt = jwt().require_rfc9068();
    let app = || jwt_app(layer(Production), jwt.clone());
    let full = claims(json!({ "client_id": "app", "jti": "j-1" }));
    let typed = |c: &serde_json::Map<String, Value>| {
        let mut h = jsonwebtoken::Header::new(Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        sign(
            &h,
            c,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
    };
    let call = |t: String| send(app(), get("/me", &[("authorization", &bearer(&t))]));
    assert_eq!(call(typed(&full)).await.ok()["sub"], "alice");
    // R-42: `typ` JWT, or none.
    call(hs256(&full))
        .await
        .check(&expect("token_type_rejected").token_fields());
    // R-43: each required claim.
    for claim in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
        let mut c = full.clone();
        c.remove(claim);
        call(typed(&c))
            .await
            .check(&expect("token_claim_missing").field("claim", claim));
    }
}

// Item 8: an issuer is configured, or waived explicitly (R-39) --------------------------

#[test]
fn an_authenticator_without_an_issuer_is_a_configuration_error() {
    let no_issuer = || JwtAuthenticator::new(StaticKey::hs256(SECRET)).audience(AUDIENCE);
    let text = panic_message(std::panic::catch_unwind(|| {
        AuthDiagnostics::new().bearer(no_issuer()).layer(())
    }));
    assert_contains(&text, &["issuer", "accept_any_issuer"]);
    let both = || no_issuer().issuer(ISSUER).accept_any_issuer();
    let text = panic_message(std::panic::catch_unwind(|| {
        AuthDiagnostics::new().bearer(both()).layer(())
    }));
    assert_contains(&text, &["choose one"]);
    // Without a layer, verification fails closed.
    let t = hs256(&good_claims());
    assert!(no_issuer().verify(&t).is_err());
}

#[tokio::test]
async fn accept_any_issuer_is_the_explicit_opt_out() {
    let jwt = JwtAuthenticator::new(StaticKey::hs256(SECRET))
        .accept_any_issuer()
        .audience(AUDIENCE);
    for iss in [json!("https://any.example"), Value::Null] {
        let t = hs256(&claims(json!({ "iss": iss })));
        let app = jwt_app(layer(Production), jwt.clone());
        let out = send(app, get("/me", &[("authorization", &bearer(&t))])).await;
        assert_eq!(out.ok()["sub"], "alice");
    }
}

#[tokio::test]
async fn an_empty_sub_is_an_invalid_claim() {
    for mode in MODES {
        let t = hs256(&claims(json!({ "sub": "" })));
        me(mode, &t).await.check(
            &expect("token_claim_invalid")
                .mode(mode)
                .token_fields()
                .field("claim", "sub"),
        );
    }
}

// Item 9: a login cannot happen in the future (R-52) ------------------------------------

#[tokio::test]
async fn a_future_auth_time_is_invalid_and_never_satisfies_max_age() {
    let step_up = || {
        Router::new()
            .route(
                "/stepup",
                route_get(|| async { "stepped up" })
                    .route_layer(RequireStepUp::new().max_age(Duration::from_secs(300))),
            )
            .layer(layer(Verbose).bearer(jwt()))
    };
    let ahead = 10 * 365 * 24 * 3600;
    let t = hs256(&claims(json!({ "auth_time": now() + ahead })));
    let out = send(step_up(), get("/stepup", &[("authorization", &bearer(&t))])).await;
    let r = out.check(
        &expect("token_claim_invalid")
            .verbose()
            .token_fields()
            .field("claim", "auth_time"),
    );
    assert_contains(r.message(), &["auth_time", "in the future"]);
    // Within the leeway, and in the past: a login as usual.
    for at in [now() + 30, now() - 60] {
        let t = hs256(&claims(json!({ "auth_time": at })));
        let out = send(step_up(), get("/stepup", &[("authorization", &bearer(&t))])).await;
        assert_eq!(out.status, 200, "{}", out.text());
    }
}

// Item 10: an empty Authorization field is no credential (RFC 6750 §3.1) ----------------

#[tokio::test]
async fn an_empty_authorization_field_is_credentials_missing() {
    for value in ["", " ", "\t "] {
        let app = bearer_app(layer(Production));
        let req = request(Method::GET, "/me", vec![("authorization", hv(value))]);
        let out = send(app, req).await;
        out.check(&expect("credentials_missing"));
    }
    // Beside a real credential, an empty field is still a second field: a proxy that reads
    // the first would see no credential where the application sees one.
    let t = hs256(&good_claims());
    for fields in [["", "b"], ["b", ""]] {
        let headers = fields
            .iter()
            .map(|f| {
                (
                    "authorization",
                    hv(if f.is_empty() {
                        String::new()
                    } else {
                        bearer(&t)
                    }),
                )
            })
            .collect();
        let out = send(
            bearer_app(layer(Production)),
            request(Method::GET, "/me", headers),
        )
        .await;
        out.check(&expect("credentials_conflict"));
    }
}

// Item 6: a route's scope under a layer's scope names both (R-58) -----------------------

#[tokio::test]
async fn a_route_scope_under_a_layer_scope_names_every_scope_needed() {
    let app = || {
        Router::new()
            .route(
                "/admin-action",
                route_get(|| async { "done" }).route_layer(RequireScope::new(["mcp:admin"])),
            )
            .layer(layer(Verbose).bearer(jwt()).require_scope(["mcp:tools"]))
    };
    let call = |scope: &str| {
        let t = hs256(&claims(json!({ "scope": scope })));
        send(
            app(),
            get("/admin-action", &[("authorization", &bearer(&t))]),
        )
    };
    for (granted, named) in [
        ("mcp:tools", "mcp:tools mcp:admin"),
        ("mcp:admin", "mcp:tools"),
        ("read", "mcp:tools"),
    ] {
        let out = call(granted).await;
        assert_eq!(out.status, 403, "{granted}: {}", out.text());
        let c = out.challenge();
        assert_eq!(c.param("error"), Some("insufficient_scope"));
        assert_eq!(c.param("scope"), Some(named), "{granted}");
        assert_eq!(out.problem()["required_scope"], named);
    }
    assert_eq!(call("mcp:tools mcp:admin").await.status, 200);
    // No token: the layer's scope, no error.
    let out = send(app(), get("/admin-action", &[])).await;
    assert_eq!(out.challenge().param("scope"), Some("mcp:tools"));
    assert_eq!(out.challenge().param("error"), None);
}

// Item 11: the application's 401 with error="insufficient_scope" is a 403 ---------------

/// `/orders` authenticated by the layer; the handler answers 401 with its own challenge.
fn refusing_app(challenge: &'static str, observe: bool) -> Router {
    let handler = move || async move {
        (
            http::StatusCode::UNAUTHORIZED,
            [("www-authenticate", challenge)],
            "no",
        )
    };
    let l = layer(Verbose).bearer(jwt());
    let l = if observe { l.observe() } else { l };
    Router::new().route("/orders", route_get(handler)).layer(l)
}

#[tokio::test]
async fn an_application_401_saying_insufficient_scope_becomes_403_with_its_challenge() {
    let challenge = r#"Bearer realm="orders", error="insufficient_scope", scope="orders:write""#;
    let t = hs256(&good_claims());
    let call = |observe| {
        let app = refusing_app(challenge, observe);
        send_unchecked(app, get("/orders", &[("authorization", &bearer(&t))]))
    };
    let out = call(false).await;
    assert_eq!(out.status, 403, "{}", out.text());
    assert_eq!(out.header_all("www-authenticate"), [challenge]);
    let p = out.problem();
    assert_eq!(p["status"], 403);
    assert_eq!(p["reason"], "upstream_unauthorized_after_authentication");
    assert_eq!(p["error"], "insufficient_scope");
    let e = out.event();
    assert_eq!(
        e.field("reason"),
        "upstream_unauthorized_after_authentication"
    );
    assert_contains(e.field("message"), &["insufficient_scope"]);
    // Observe mode only logs.
    let out = call(true).await;
    assert_eq!(out.status, 401);
    assert_eq!(out.header_all("www-authenticate"), [challenge]);
}

#[tokio::test]
async fn an_application_401_with_another_error_is_kept() {
    let challenge = r#"Bearer realm="orders", error="invalid_token""#;
    let t = hs256(&good_claims());
    let app = refusing_app(challenge, false);
    let out = send_unchecked(app, get("/orders", &[("authorization", &bearer(&t))])).await;
    assert_eq!(out.status, 401);
    assert_eq!(out.header_all("www-authenticate"), [challenge]);
    assert_eq!(out.text(), "no");
    assert_eq!(out.event().field("reason"), "upstream_token_refused");
}

// Item 12: the body's `error` is the challenge's (R-36) ---------------------------------

#[tokio::test]
async fn the_problem_body_carries_the_challenge_error() {
    let expired = hs256(&claims(json!({ "exp": now() - 3600 })));
    type Headers = Vec<(&'static str, HeaderValue)>;
    let cases: [(Headers, Option<&str>); 4] = [
        (vec![], None),
        (
            vec![("authorization", hv(bearer(&expired)))],
            Some("invalid_token"),
        ),
        (
            vec![("authorization", hv("Bearer a b"))],
            Some("invalid_request"),
        ),
        (vec![("authorization", hv("Basic dTpw"))], None),
    ];
    for mode in MODES {
        for (headers, error) in &cases {
            let out = send(
                bearer_app(layer(mode)),
                request(Method::GET, "/me", headers.clone()),
            )
            .await;
            assert_eq!(out.challenge().param("error"), *error);
            assert_eq!(out.problem()["error"].as_str(), *error, "{}", out.text());
        }
    }
    // A 403 insufficient_scope too.
    let t = hs256(&good_claims());
    let out = send(
        bearer_app(layer(Production)),
        get("/admin", &[("authorization", &bearer(&t))]),
    )
    .await;
    assert_eq!(out.problem()["error"], "insufficient_scope");
}

// The findings replayed on the demo over TCP: none is accepted --------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_accepts_none_of_the_token_findings() {
    let (base, server) = serve_demo().await;
    let client = reqwest::Client::new();
    let now = now();
    let mfa = json!({ "acr": "urn:demo:mfa" });
    let with = |edits: Value| {
        let mut c = claims(edits);
        c.insert("scope".into(), "read admin".into());
        hs256(&c)
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "/me",
            with(json!({ "cnf": { "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" } })),
            "token_binding_unverifiable",
        ),
        (
            "/admin",
            with(
                json!({ "cnf": { "jwk": { "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" } } }),
            ),
            "token_binding_unverifiable",
        ),
        (
            "/me",
            with(json!({ "cnf": { "jkt": 7 } })),
            "token_claim_invalid",
        ),
        (
            "/me",
            with(json!({ "at_hash": "77QmUPtjPfzWtF2AnpK9RQ" })),
            "token_type_rejected",
        ),
        (
            "/admin",
            with(json!({ "c_hash": "LDktKdoQak3Pk0cnXxCltA" })),
            "token_type_rejected",
        ),
        ("/me", with(json!({ "sub": "" })), "token_claim_invalid"),
        (
            "/stepup",
            with(json!({ "acr": mfa["acr"], "auth_time": now + 86_400 })),
            "token_claim_invalid",
        ),
    ];
    for (path, token, reason) in cases {
        let res = client
            .get(format!("{base}{path}"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{path} {reason}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["reason"], reason, "{path}: {body}");
        assert_eq!(body["error"], "invalid_token", "{path}: {body}");
    }
    // The same step-up token with a login in the past passes: the route works.
    let good = with(json!({ "acr": mfa["acr"], "auth_time": now - 60 }));
    let res = client
        .get(format!("{base}/stepup"))
        .header("authorization", format!("Bearer {good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // An empty Authorization field: 401 without an error, not 400.
    let res = client
        .get(format!("{base}/me"))
        .header("authorization", "")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="demo""#);
    server.abort();
}

// Item 4: a discovered issuer's password is never shown --------------------------------

#[tokio::test]
async fn a_password_in_a_discovered_issuer_is_not_in_issuer_mismatches() {
    use auth_diagnostics::keys::KeySource;
    const PASSWORD: &str = "s3cret-issuer-pw";
    // Nothing listens on port 9: the keys are never needed for a token of another issuer.
    let issuer = format!("http://alice:{PASSWORD}@127.0.0.1:9");
    let jwt = JwtAuthenticator::from_source(KeySource::discover(&issuer)).audience(AUDIENCE);
    // Debug output of the authenticator and of a layer holding it.
    for debug in [
        format!("{jwt:?}"),
        format!("{:?}", AuthDiagnostics::new().bearer(jwt.clone())),
    ] {
        assert!(!debug.contains(PASSWORD), "{debug}");
        assert!(debug.contains("alice:***@127.0.0.1:9"), "{debug}");
    }
    // Two authenticators claiming that issuer: the start-up error names it without it.
    let text = panic_message(std::panic::catch_unwind(|| {
        AuthDiagnostics::new()
            .bearer(jwt.clone())
            .bearer(jwt.clone())
            .layer(())
    }));
    assert!(
        text.contains("alice:***@") && !text.contains(PASSWORD),
        "{text}"
    );
    for mode in MODES {
        let pem = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/keys/rsa_private.pem"
        ))
        .unwrap();
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap();
        let c = claims(json!({ "iss": "https://another.example" }));
        let t = sign(&jsonwebtoken::Header::new(Algorithm::RS256), &c, &key);
        let app = jwt_app(layer(mode), jwt.clone());
        let out = send(app, get("/me", &[("authorization", &bearer(&t))])).await;
        assert_eq!(out.status, 401, "{}", out.text());
        assert_eq!(out.event().field("reason"), "token_issuer_mismatch");
        assert!(!out.text().contains(PASSWORD), "{}", out.text());
        for e in &out.events {
            assert!(!e.line().contains(PASSWORD), "{}", e.line());
        }
        if mode == Verbose {
            assert_eq!(
                out.problem()["expected_issuer"],
                "http://alice:***@127.0.0.1:9"
            );
        }
    }
}

// A 429 or 503 tells a script on another origin how long to wait ----------------------

#[tokio::test]
async fn a_server_fault_exposes_retry_after_to_other_origins() {
    use auth_diagnostics::failure::AuthFailure;
    let app = Router::new()
        .route(
            "/me",
            route_get(|| async {
                Err::<&str, _>(AuthFailure::new(Reason::AuthenticatorUnavailable))
            }),
        )
        .layer(layer(Production).bearer(jwt()));
    let t = hs256(&good_claims());
    let out = send(app, get("/me", &[("authorization", &bearer(&t))])).await;
    assert_eq!(out.status, 503);
    assert!(out.header("retry-after").is_some());
    assert_eq!(
        out.header("access-control-expose-headers"),
        Some("Retry-After, X-Request-Id")
    );
    assert!(out.header("www-authenticate").is_none());
}
