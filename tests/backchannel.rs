//! OpenID Connect Back-Channel Logout 1.0 (`session::BackchannelLogout`): a valid logout
//! token revokes its `sid` (or, without one, its `sub`) so the layer refuses that
//! session's tokens and cookies; every invalid one is 400 with a JSON `error` and one log
//! event with its own reason, and a replay is refused. The demo's `POST
//! /backchannel-logout` (shared/spec/demo.md, "Added in this round").

mod common;
use common::*;

use auth_diagnostics::session::{BackchannelLogout, BACKCHANNEL_LOGOUT_EVENT};
use auth_diagnostics::store::{
    CredentialIds, MemoryRevocationList, Revocation, RevocationFuture, RevocationList, RevokedBy,
    StoreError,
};
use axum::body::Body;
use axum::routing::post;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The client id logout tokens are addressed to.
const CLIENT: &str = "orders-web";

/// `/me` behind a layer checking `list`, and `/backchannel-logout` revoking into it.
fn app(list: Arc<dyn RevocationList>) -> axum::Router {
    let logout = BackchannelLogout::new(jwt(), CLIENT, list.clone());
    bearer_app(layer(DetailMode::Verbose).revocation(list))
        .route("/backchannel-logout", post(logout.handler()))
}

/// The claims of a valid logout token for session `sid` of `alice`.
fn logout_claims(edits: Value) -> Map<String, Value> {
    let mut c = json!({
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "alice",
        "sid": "sess-42",
        "iat": now(),
        "exp": now() + 120,
        "jti": format!("logout-{}", rand_id()),
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    })
    .as_object()
    .unwrap()
    .clone();
    for (k, v) in edits.as_object().unwrap() {
        if v.is_null() {
            c.remove(k);
        } else {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

fn rand_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A logout token typed `logout+jwt`, signed with the test secret.
fn logout_token(claims: &Map<String, Value>) -> String {
    hs256_raw_header(r#"{"alg":"HS256","typ":"logout+jwt"}"#, claims)
}

fn post_form(body: &str) -> http::Request<Body> {
    http::Request::post("/backchannel-logout")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn post_logout(token: &str) -> http::Request<Body> {
    post_form(&format!("logout_token={token}"))
}

/// A 400 with `error` and a description naming `reason`, one log event with `reason`.
#[track_caller]
fn assert_refused(out: &Outcome, reason: &str) {
    assert_eq!(out.status, 400, "{}", out.text());
    assert_eq!(out.header("cache-control"), Some("no-store"));
    let body = out.json();
    assert_eq!(body["error"], "invalid_request", "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with(reason), "{reason}: {description}");
    assert_eq!(out.event().field("reason"), reason, "{:#?}", out.events);
    assert_eq!(out.event().field("status"), "400");
}

async fn me(app: axum::Router, token: &str) -> Outcome {
    send(app, get("/me", &[("authorization", &bearer(token))])).await
}

#[tokio::test]
async fn a_logout_revokes_its_session_and_spares_others() {
    let list: Arc<dyn RevocationList> = Arc::new(MemoryRevocationList::new());
    let app = app(list);
    let of_session = hs256(&claims(json!({ "sid": "sess-42" })));
    let other_session = hs256(&claims(json!({ "sid": "sess-43" })));
    assert_eq!(me(app.clone(), &of_session).await.status, 200);

    let out = send(
        app.clone(),
        post_logout(&logout_token(&logout_claims(json!({})))),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text());
    assert_eq!(out.header("cache-control"), Some("no-store"));
    let logged = out.events.iter().find(|e| e.get("revoked").is_some());
    assert_eq!(logged.expect("a logout is logged").field("revoked"), "sid");

    let out = me(app.clone(), &of_session).await;
    assert_eq!(out.status, 401, "{}", out.text());
    assert_eq!(out.problem()["reason"], "token_revoked");
    // Only that session: the sub's other session keeps working (§2.7).
    assert_eq!(me(app, &other_session).await.status, 200);
}

#[tokio::test]
async fn a_logout_without_sid_revokes_the_sub() {
    let list: Arc<dyn RevocationList> = Arc::new(MemoryRevocationList::new());
    let app = app(list);
    let earlier = hs256(&claims(json!({ "iat": now() - 5, "sid": "sess-9" })));
    let token = logout_token(&logout_claims(json!({ "sid": null })));
    let out = send(app.clone(), post_logout(&token)).await;
    assert_eq!(out.status, 200, "{}", out.text());
    let out = me(app.clone(), &earlier).await;
    assert_eq!(out.problem()["reason"], "token_revoked", "{}", out.text());
    let bob = hs256(&claims(json!({ "sub": "bob", "iat": now() - 5 })));
    assert_eq!(me(app, &bob).await.status, 200);
}

#[tokio::test]
async fn a_replayed_logout_token_is_refused() {
    let list: Arc<dyn RevocationList> = Arc::new(MemoryRevocationList::new());
    let app = app(list);
    let token = logout_token(&logout_claims(json!({ "sid": null })));
    assert_eq!(send(app.clone(), post_logout(&token)).await.status, 200);
    let out = send(app, post_logout(&token)).await;
    assert_refused(&out, "token_claim_invalid");
    assert_eq!(out.event().field("claim"), "jti");
}

#[tokio::test]
async fn untyped_and_jwt_typed_logout_tokens_are_accepted() {
    let list: Arc<dyn RevocationList> = Arc::new(MemoryRevocationList::new());
    let app = app(list);
    for header in [r#"{"alg":"HS256"}"#, r#"{"alg":"HS256","typ":"JWT"}"#] {
        let token = hs256_raw_header(header, &logout_claims(json!({})));
        let out = send(app.clone(), post_logout(&token)).await;
        assert_eq!(out.status, 200, "{header}: {}", out.text());
    }
}

/// Every way a logout token can be wrong, with the reason it is logged under.
fn invalid_tokens() -> Vec<(&'static str, String, &'static str)> {
    let h = |claims: Value| logout_token(&logout_claims(claims));
    let other_event = json!({ "events": { "http://schemas.openid.net/event/other": {} } });
    let wrong_key = sign(
        &jsonwebtoken::Header::default(),
        &logout_claims(json!({})),
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret"),
    );
    vec![
        (
            "another audience",
            h(json!({ "aud": "someone-else" })),
            "token_audience_mismatch",
        ),
        (
            "another issuer",
            h(json!({ "iss": "https://evil.test" })),
            "token_issuer_mismatch",
        ),
        ("a wrong signature", wrong_key, "token_signature_invalid"),
        (
            "an access token's typ",
            hs256_raw_header(
                r#"{"alg":"HS256","typ":"at+jwt"}"#,
                &logout_claims(json!({})),
            ),
            "token_type_rejected",
        ),
        (
            "alg none",
            raw_token(
                r#"{"alg":"none"}"#,
                &Value::Object(logout_claims(json!({}))).to_string(),
                "",
            ),
            "token_algorithm_rejected",
        ),
        (
            "no events",
            h(json!({ "events": null })),
            "token_claim_missing",
        ),
        (
            "events not naming logout",
            h(other_event),
            "token_claim_invalid",
        ),
        (
            "events as an array",
            h(json!({ "events": [BACKCHANNEL_LOGOUT_EVENT] })),
            "token_claim_invalid",
        ),
        (
            "a nonce (an ID token)",
            h(json!({ "nonce": "n-1" })),
            "token_claim_invalid",
        ),
        (
            "neither sid nor sub",
            h(json!({ "sid": null, "sub": null })),
            "token_claim_missing",
        ),
        ("no jti", h(json!({ "jti": null })), "token_claim_missing"),
        ("no iat", h(json!({ "iat": null })), "token_claim_missing"),
        (
            "issued an hour ago",
            h(json!({ "iat": now() - 3600, "exp": null })),
            "token_expired",
        ),
        (
            "expired",
            h(json!({ "iat": now() - 200, "exp": now() - 100 })),
            "token_expired",
        ),
        (
            "issued in the future",
            h(json!({ "iat": now() + 600 })),
            "token_not_yet_valid",
        ),
        ("not a JWT", "not-a-jwt".to_owned(), "token_malformed"),
    ]
}

#[tokio::test]
async fn every_invalid_logout_token_is_400_with_its_reason_and_revokes_nothing() {
    let list = Arc::new(MemoryRevocationList::new());
    let app = app(list.clone());
    for (what, token, reason) in invalid_tokens() {
        let out = send(app.clone(), post_logout(&token)).await;
        assert_refused(&out, reason);
        assert!(list.is_empty(), "{what}: something was revoked");
        // The log never holds the token.
        assert!(
            !out.event().line().contains(&token),
            "{what}: the token was logged"
        );
    }
}

#[tokio::test]
async fn malformed_requests_are_400() {
    let list = Arc::new(MemoryRevocationList::new());
    let app = app(list.clone());
    let token = logout_token(&logout_claims(json!({})));
    let json_body = http::Request::post("/backchannel-logout")
        .header("content-type", "application/json")
        .body(Body::from(format!(r#"{{"logout_token":"{token}"}}"#)))
        .unwrap();
    let cases: Vec<(&str, http::Request<Body>, &str)> = vec![
        ("a JSON body", json_body, "credentials_missing"),
        (
            "no logout_token",
            post_form("token=abc"),
            "credentials_missing",
        ),
        (
            "an empty logout_token",
            post_form("logout_token="),
            "credentials_missing",
        ),
        (
            "logout_token twice",
            post_form(&format!("logout_token={token}&logout_token={token}")),
            "token_malformed",
        ),
        (
            "a broken escape",
            post_form("logout_token=%zz"),
            "token_malformed",
        ),
        (
            "non-UTF-8 bytes",
            post_form("logout_token=%ff%fe"),
            "token_malformed",
        ),
        (
            "a body over 16 KiB",
            post_form(&format!("logout_token={}", "a".repeat(20_000))),
            "token_malformed",
        ),
    ];
    for (what, request, reason) in cases {
        let out = send(app.clone(), request).await;
        assert_refused(&out, reason);
        assert!(list.is_empty(), "{what}: something was revoked");
    }
}

/// A list that cannot be written.
#[derive(Debug)]
struct Unwritable;

impl RevocationList for Unwritable {
    fn revoke(&self, _: Revocation) -> RevocationFuture<()> {
        Box::pin(async { Err(StoreError::new("redis is down")) })
    }

    fn check(&self, _: CredentialIds) -> RevocationFuture<Option<RevokedBy>> {
        Box::pin(async { Ok(None) })
    }
}

#[tokio::test]
async fn an_unwritable_list_is_400_temporarily_unavailable() {
    let app = app(Arc::new(Unwritable));
    let out = send(app, post_logout(&logout_token(&logout_claims(json!({}))))).await;
    assert_eq!(out.status, 400, "{}", out.text());
    assert_eq!(out.json()["error"], "temporarily_unavailable");
    assert_eq!(out.event().field("reason"), "revocation_unavailable");
}

// =======================================================================================
// The demo's POST /backchannel-logout
// =======================================================================================

/// A logout token for the demo: its issuer, its client id (`demo-rs`).
fn demo_logout(edits: Value) -> String {
    let mut edits = edits.as_object().unwrap().clone();
    edits.entry("aud").or_insert(json!("demo-rs"));
    edits.entry("sid").or_insert(json!("demo-session-1"));
    logout_token(&logout_claims(Value::Object(edits)))
}

#[tokio::test]
async fn the_demo_logs_out_the_session_s_valid_and_its_tokens() {
    let demo = demo_app(DetailMode::Verbose);
    let session = || get("/session", &[("cookie", "demo_session=s-valid")]);
    let token = hs256(&claims(json!({ "sid": "demo-session-1" })));
    assert_eq!(send(demo.clone(), session()).await.status, 200);
    assert_eq!(me(demo.clone(), &token).await.status, 200);

    let out = send(demo.clone(), post_logout(&demo_logout(json!({})))).await;
    assert_eq!(out.status, 200, "{}", out.text());

    let out = send(demo.clone(), session()).await;
    assert_eq!(out.status, 401, "{}", out.text());
    assert_eq!(out.problem()["reason"], "session_revoked");
    let out = me(demo.clone(), &token).await;
    assert_eq!(out.problem()["reason"], "token_revoked", "{}", out.text());
}

#[tokio::test]
async fn the_demo_refuses_invalid_logout_tokens_with_400_json() {
    let demo = demo_app(DetailMode::Verbose);
    for (token, reason) in [
        (
            demo_logout(json!({ "aud": "another-client" })),
            "token_audience_mismatch",
        ),
        (
            demo_logout(json!({ "events": null })),
            "token_claim_missing",
        ),
        (demo_logout(json!({ "nonce": "n" })), "token_claim_invalid"),
    ] {
        let out = send(demo.clone(), post_logout(&token)).await;
        assert_refused(&out, reason);
    }
    let session = get("/session", &[("cookie", "demo_session=s-valid")]);
    assert_eq!(send(demo, session).await.status, 200, "nothing was revoked");
}
