mod common;
use common::*;

// Black-box tests for the spec section "Correcting the wrapped service"
// (/work/shared/spec/reasons.md): `upstream_challenge_missing`,
// `upstream_unauthorized_after_authentication`, `upstream_forbidden_without_credentials`
// in enforce and observe mode; zero-configuration diagnosis of the wrapped service's own
// 401/403 answers; hint codes; the reproduction line; `AuthFailure` returned by handlers;
// nested layers; and the demo routes `/orders`, `/legacy`, `/legacy-forbidden`.
//
// The wrapped services are small axum handlers standing in for an application. Every
// request goes through `tower::ServiceExt::oneshot` via the harness `send`, which
// captures the log events and asserts that none of them holds a secret of the request.

use auth_diagnostics::{AuthDiagnostics, AuthFailure, DetailMode, Reason};
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Router;
use base64::Engine as _;
use http::header::WWW_AUTHENTICATE;
use http::StatusCode;
use serde_json::{json, Value};
use tracing::Level;

const PATH: &str = "/resource";
const CUSTOM_BODY: &str = "custom body";
const INNER_CHALLENGE: &str = "Bearer realm=\"inner\"";

// ---------------------------------------------------------------------------------------
// Stand-in applications
// ---------------------------------------------------------------------------------------

/// 401 with an empty body and no challenge.
async fn bare_401() -> Response {
    StatusCode::UNAUTHORIZED.into_response()
}

/// 401 with a body of its own and no challenge.
async fn body_401() -> Response {
    (StatusCode::UNAUTHORIZED, CUSTOM_BODY).into_response()
}

/// 401 with an empty (zero-length) text body and no challenge.
async fn empty_text_401() -> Response {
    (StatusCode::UNAUTHORIZED, "").into_response()
}

/// A correct 401: it carries a challenge.
async fn challenged_401() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(WWW_AUTHENTICATE, INNER_CHALLENGE)],
    )
        .into_response()
}

/// 403 with an empty body.
async fn bare_403() -> Response {
    StatusCode::FORBIDDEN.into_response()
}

/// 403 with a body of its own.
async fn body_403() -> Response {
    (StatusCode::FORBIDDEN, CUSTOM_BODY).into_response()
}

async fn ok_200() -> Response {
    (StatusCode::OK, "ok").into_response()
}

/// A handler that refuses with a precise reason.
async fn refuse_role() -> Result<&'static str, AuthFailure> {
    Err(AuthFailure::new(Reason::Forbidden).check("role admin"))
}

async fn refuse_scope() -> Result<&'static str, AuthFailure> {
    Err(AuthFailure::new(Reason::InsufficientScope).scope("orders"))
}

async fn refuse_unknown_user() -> Result<&'static str, AuthFailure> {
    Err(AuthFailure::new(Reason::BasicUserUnknown))
}

/// `handler` at [`PATH`] behind `layer`.
fn app<H, T>(handler: H, layer: AuthDiagnostics) -> Router
where
    H: Handler<T, ()>,
    T: 'static,
{
    Router::new()
        .route(PATH, routing::get(handler))
        .layer(layer)
}

/// Zero configuration: no scheme, production detail, enforce mode.
fn zero() -> AuthDiagnostics {
    AuthDiagnostics::new()
}

/// Zero configuration, opted in to turning a 403 without credentials into a 401.
fn zero_fixing() -> AuthDiagnostics {
    AuthDiagnostics::new().correct_forbidden_without_credentials()
}

/// The layer authenticates Bearer JWTs itself.
fn authn() -> AuthDiagnostics {
    AuthDiagnostics::new().bearer(jwt())
}

// ---------------------------------------------------------------------------------------
// Tokens and requests
// ---------------------------------------------------------------------------------------

fn valid_token() -> String {
    hs256(&good_claims())
}

const EXPIRED_EXP: i64 = 1_700_000_000;
const EXPIRED_AT: &str = "2023-11-14T22:13:20Z";

fn expired_token() -> String {
    let mut c = good_claims();
    c.insert("iat".into(), json!(EXPIRED_EXP - 3600));
    c.insert("exp".into(), json!(EXPIRED_EXP));
    hs256(&c)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn req(headers: &[(&str, &str)]) -> http::Request<axum::body::Body> {
    get(PATH, headers)
}

// ---------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------

/// Asserts every `(field, value)`; `None` means the field must be absent.
#[track_caller]
fn expect_fields(e: &Captured, want: &[(&str, Option<&str>)]) {
    for (name, value) in want {
        assert_eq!(
            e.get(name),
            *value,
            "field `{name}` of the event: {:#?}",
            e.fields
        );
    }
}

/// The single event of `out`, with what every event must carry: its level, method, path,
/// request id (the one echoed on the response), the answered status and a repro line.
#[track_caller]
fn one_event(out: &Outcome, level: Level) -> &Captured {
    let e = out.event();
    assert_eq!(e.level, level, "level of {:#?}", e.fields);
    assert_eq!(e.field("method"), "GET");
    assert_eq!(e.field("path"), PATH);
    let rid = out.header("x-request-id").expect("x-request-id echoed");
    assert_eq!(e.field("request_id"), rid);
    assert_eq!(
        e.field("status"),
        out.status.as_u16().to_string(),
        "the event's status is the status the client got"
    );
    let repro = e.field("repro");
    assert!(
        repro.starts_with(&format!("curl -i 'http://localhost{PATH}")),
        "repro: {repro}"
    );
    e
}

/// The challenge of a 401 the layer completed: Bearer, realm `realm`, and no error
/// attributes at all (nothing was verified; RFC 6750 §3.1).
#[track_caller]
fn assert_plain_bearer_challenge(out: &Outcome, realm: &str) {
    let c = out.challenge();
    assert_eq!(c.scheme, "Bearer");
    assert_eq!(c.param("realm"), Some(realm));
    assert_eq!(
        c.params.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["realm"],
        "{c:?}"
    );
}

#[track_caller]
fn assert_problem(out: &Outcome, reason: &str) -> Value {
    let p = out.problem();
    assert_eq!(p["reason"], reason, "{p}");
    assert_eq!(out.header("cache-control"), Some("no-store"));
    let r = Reason::from_code(reason).unwrap();
    assert_eq!(p["title"], r.title(), "{p}");
    p
}

#[track_caller]
fn assert_body(out: &Outcome, body: &str) {
    assert_eq!(String::from_utf8_lossy(&out.body), body);
}

/// The response the stand-in produced, untouched (observe mode).
#[track_caller]
fn assert_unchanged(out: &Outcome, status: u16, body: &str) {
    assert_eq!(out.status, status);
    assert_eq!(out.headers.get_all(WWW_AUTHENTICATE).iter().count(), 0);
    assert_eq!(out.header("cache-control"), None);
    assert_body(out, body);
    if body.is_empty() {
        assert_eq!(out.header("content-type"), None);
    } else {
        assert_eq!(
            out.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
    }
}

// =======================================================================================
// upstream_challenge_missing
// =======================================================================================

#[tokio::test]
async fn challenge_missing_enforce_adds_challenge_and_problem_body() {
    let out = send(app(bare_401, zero()), req(&[])).await;
    assert_eq!(out.status, 401);
    assert_plain_bearer_challenge(&out, "api");
    let p = assert_problem(&out, "credentials_missing");
    assert_eq!(p["status"], 401);
    let e = one_event(&out, Level::ERROR);
    expect_fields(
        e,
        &[
            ("reason", Some("upstream_challenge_missing")),
            ("client_reason", Some("credentials_missing")),
            ("upstream_status", Some("401")),
            ("inferred_reason", Some("credentials_missing")),
            ("scheme_expected", Some("Bearer")),
            ("location", None),
            ("fingerprint", None),
            ("signature_verified", None),
            ("hints", None),
        ],
    );
}

#[tokio::test]
async fn challenge_missing_enforce_uses_the_configured_realm() {
    let out = send(app(bare_401, zero().realm("shop")), req(&[])).await;
    assert_eq!(out.status, 401);
    assert_plain_bearer_challenge(&out, "shop");
    one_event(&out, Level::ERROR);
}

#[tokio::test]
async fn challenge_missing_enforce_verbose_shows_the_upstream_reason() {
    let out = send(app(bare_401, zero().verbose()), req(&[])).await;
    assert_eq!(out.status, 401);
    assert_plain_bearer_challenge(&out, "api");
    let p = assert_problem(&out, "upstream_challenge_missing");
    assert_eq!(p["status"], 401);
    let e = one_event(&out, Level::ERROR);
    expect_fields(
        e,
        &[
            ("reason", Some("upstream_challenge_missing")),
            ("client_reason", Some("upstream_challenge_missing")),
            ("upstream_status", Some("401")),
            ("inferred_reason", Some("credentials_missing")),
        ],
    );
}

/// Production: a 401 for a request that had credentials collapses to credentials_invalid.
#[tokio::test]
async fn challenge_missing_with_credentials_collapses_to_credentials_invalid() {
    let token = expired_token();
    let out = send(
        app(bare_401, zero()),
        req(&[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(out.status, 401);
    let c = out.challenge();
    assert_eq!(c.scheme, "Bearer");
    assert_eq!(c.param("realm"), Some("api"));
    assert_problem(&out, "credentials_invalid");
    let e = one_event(&out, Level::ERROR);
    expect_fields(
        e,
        &[
            ("reason", Some("upstream_challenge_missing")),
            ("client_reason", Some("credentials_invalid")),
            ("upstream_status", Some("401")),
            ("inferred_reason", Some("token_expired")),
            ("signature_verified", Some("false")),
            ("exp", Some(EXPIRED_AT)),
            ("alg", Some("HS256")),
            ("iss", Some(ISSUER)),
            ("aud", Some(AUDIENCE)),
            ("sub", Some("alice")),
            ("location", Some("header:authorization")),
            ("scheme_received", Some("Bearer")),
        ],
    );
    assert_eq!(e.field("fingerprint").len(), 12);

    // Verbose: the client sees the upstream code.
    let out = send(
        app(bare_401, zero().verbose()),
        req(&[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(out.status, 401);
    assert_problem(&out, "upstream_challenge_missing");
    expect_fields(
        one_event(&out, Level::ERROR),
        &[("inferred_reason", Some("token_expired"))],
    );
}

#[tokio::test]
async fn challenge_missing_enforce_keeps_a_non_empty_body() {
    for layer in [zero(), zero().verbose()] {
        let out = send(app(body_401, layer), req(&[])).await;
        assert_eq!(out.status, 401);
        assert_plain_bearer_challenge(&out, "api");
        assert_body(&out, CUSTOM_BODY);
        assert_eq!(
            out.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(out.header("cache-control"), Some("no-store"));
        let e = one_event(&out, Level::ERROR);
        expect_fields(
            e,
            &[
                ("reason", Some("upstream_challenge_missing")),
                ("upstream_status", Some("401")),
            ],
        );
    }
}

/// A zero-length text body is an empty body: it gets the problem body.
#[tokio::test]
async fn challenge_missing_enforce_replaces_a_zero_length_body() {
    let out = send(app(empty_text_401, zero()), req(&[])).await;
    assert_eq!(out.status, 401);
    assert_plain_bearer_challenge(&out, "api");
    assert_problem(&out, "credentials_missing");
    one_event(&out, Level::ERROR);
}

#[tokio::test]
async fn challenge_missing_observe_changes_nothing() {
    let out = send(app(bare_401, zero().observe()), req(&[])).await;
    assert_unchanged(&out, 401, "");
    let e = one_event(&out, Level::ERROR);
    expect_fields(
        e,
        &[
            ("reason", Some("upstream_challenge_missing")),
            ("status", Some("401")),
            ("upstream_status", Some("401")),
            ("inferred_reason", Some("credentials_missing")),
        ],
    );

    let out = send(app(body_401, zero().observe().verbose()), req(&[])).await;
    assert_unchanged(&out, 401, CUSTOM_BODY);
    expect_fields(
        one_event(&out, Level::ERROR),
        &[("reason", Some("upstream_challenge_missing"))],
    );
}

/// A 401 that already has a challenge is correct: left alone, and explained in the log
/// with the reason the request suggests, marked inferred.
#[tokio::test]
async fn challenged_401_is_left_alone_and_diagnosed() {
    for layer in [zero(), zero().observe()] {
        let out = send(app(challenged_401, layer), req(&[])).await;
        assert_eq!(out.status, 401);
        let c = out.challenge();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("inner"));
        assert_body(&out, "");
        let e = one_event(&out, Level::INFO);
        expect_fields(
            e,
            &[
                ("reason", Some("credentials_missing")),
                ("inferred", Some("true")),
                ("upstream_status", Some("401")),
            ],
        );
    }
}

// =======================================================================================
// upstream_unauthorized_after_authentication
// =======================================================================================

#[tokio::test]
async fn unauthorized_after_authentication_enforce_sends_403() {
    let token = valid_token();
    let out = send(
        app(bare_401, authn()),
        req(&[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(out.status, 403);
    assert_eq!(out.headers.get_all(WWW_AUTHENTICATE).iter().count(), 0);
    let p = assert_problem(&out, "forbidden");
    assert_eq!(p["status"], 403);
    let e = one_event(&out, Level::ERROR);
    expect_fields(
        e,
        &[
            ("reason", Some("upstream_unauthorized_after_authentication")),
            ("client_reason", Some("forbidden")),
            ("upstream_status", Some("401")),
            ("signature_verified", Some("true")),
            ("sub", Some("alice")),
            ("location", Some("header:authorization")),
            ("scheme_expected", Some("Bearer")),
            // The layer verified the credentials: there is nothing to infer.
            ("inferred_reason", None),
        ],
    );
    assert_eq!(e.field("fingerprint").len(), 12);
}

#[tokio::test]
async fn unauthorized_after_authentication_verbose_shows_the_upstream_reason() {
    let token = valid_token();
    let out = send(
        app(bare_401, authn().verbose()),
        req(&[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(out.status, 403);
    assert_eq!(out.headers.get_all(WWW_AUTHENTICATE).iter().count(), 0);
    let p = assert_problem(&out, "upstream_unauthorized_after_authentication");
    assert_eq!(p["status"], 403);
    expect_fields(
        one_event(&out, Level::ERROR),
        &[
            ("reason", Some("upstream_unauthorized_after_authentication")),
            (
                "client_reason",
                Some("upstream_unauthorized_after_authentication"),
            ),
        ],
    );
}

/// Even a 401 that has a challenge is wrong for an authenticated request; the 403 sent
/// instead carries no challenge.
#[tokio::test]
async fn unauthorized_after_authentication_drops_the_inner_challenge() {
    let token = valid_token();
    let out = send(
        app(challenged_401, authn()),
        req(&[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(out.status, 403);
    assert_eq!(out.headers.get_all(WWW_AUTHENTICATE).iter().count(), 0);
    assert_problem(&out, "forbidden");
    expect_fields(
        one_event(&out, Level::ERROR),
        &[
            ("reason", Some("upstream_unauthorized_after_authentication")),
            ("upstream_status", Some("401")),
        ],
    );
}

#[tokio::test]
async fn unauthorized_after_authentication_replaces_the_body_of_the_old_status() {
    let token = valid_token();
    let out = send(
        app(body_401, authn()),
        req(&[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(out.status, 403);
    assert_eq!(out.headers.get_all(WWW_AUTHENTICATE).iter().count(), 0);
    // The status changed: the body is the layer's, and its `status` is the new one.
    let p = assert_problem(&out, "forbidden");
    assert_eq!(p["status"], 403);
    expect_fields(
        one_event(&out, Level::ERROR),
        &[("reason", Some("upstream_unauthorized_after_authentication"))],
    );
}

#[tokio::test]
async fn unauthorized_after_authentication_observe_changes_nothing() {
    let token = valid_token();
    for (handler_body, out) in [
        (
            "",
            send(
                app(bare_401, authn().observe()),
                req(&[("authorization", &bearer(&token))]),
            )
            .await,
        ),
        (
            CUSTOM_BODY,
            send(
                app(body_401, authn().observe()),
                req(&[("authorization", &bearer(&token))]),
            )
            .await,
        ),
    ] {
        assert_unchanged(&out, 401, handler_body);
        expect_fields(
            one_event(&out, Level::ERROR),
            &[
                ("reason", Some("upstream_unauthorized_after_authentication")),
                ("status", Some("401")),
                ("upstream_status", Some("401")),
                ("signature_verified", Some("true")),
            ],
        );
    }
}

// =======================================================================================
// upstream_forbidden_without_credentials
// =======================================================================================

#[tokio::test]
async fn forbidden_without_credentials_enforce_sends_401_with_challenge() {
    let out = send(app(bare_403, zero_fixing()), req(&[])).await;
    assert_eq!(out.status, 401);
    assert_plain_bearer_challenge(&out, "api");
    let p = assert_problem(&out, "credentials_missing");
    assert_eq!(p["status"], 401);
    let e = one_event(&out, Level::ERROR);
    expect_fields(
        e,
        &[
            ("reason", Some("upstream_forbidden_without_credentials")),
            ("client_reason", Some("credentials_missing")),
            ("upstream_status", Some("403")),
            ("inferred_reason", Some("credentials_missing")),
            ("scheme_expected", Some("Bearer")),
            ("fingerprint", None),
            ("location", None),
        ],
    );
}

#[tokio::test]
async fn forbidden_without_credentials_verbose_shows_the_upstream_reason() {
    let out = send(
        app(bare_403, zero_fixing().verbose().realm("shop")),
        req(&[]),
    )
    .await;
    assert_eq!(out.status, 401);
    assert_plain_bearer_challenge(&out, "shop");
    let p = assert_problem(&out, "upstream_forbidden_without_credentials");
    assert_eq!(p["status"], 401);
    expect_fields(
        one_event(&out, Level::ERROR),
        &[
            ("reason", Some("upstream_forbidden_without_credentials")),
            (
                "client_reason",
                Some("upstream_forbidden_without_credentials"),
            ),
            ("upstream_status", Some("403")),
        ],
    );
}

#[tokio::test]
async fn forbidden_without_credentials_replaces_the_body_of_the_old_status() {
    let out = send(app(body_403, zero_fixing()), req(&[])).await;
    assert_eq!(out.status, 401);
    assert_plain_bearer_challenge(&out, "api");
    let p = assert_problem(&out, "credentials_missing");
    assert_eq!(p["status"], 401);
    expect_fields(
        one_event(&out, Level::ERROR),
        &[("reason", Some("upstream_forbidden_without_credentials"))],
    );
}

#[tokio::test]
async fn forbidden_without_credentials_observe_changes_nothing() {
    let out = send(app(bare_403, zero().observe()), req(&[])).await;
    assert_unchanged(&out, 403, "");
    expect_fields(
        one_event(&out, Level::ERROR),
        &[
            ("reason", Some("upstream_forbidden_without_credentials")),
            ("status", Some("403")),
            ("upstream_status", Some("403")),
        ],
    );
    let out = send(app(body_403, zero().observe()), req(&[])).await;
    assert_unchanged(&out, 403, CUSTOM_BODY);
    expect_fields(
        one_event(&out, Level::ERROR),
        &[("reason", Some("upstream_forbidden_without_credentials"))],
    );
}

/// A 403 to a request with credentials is no violation: unchanged, logged as forbidden.
#[tokio::test]
async fn forbidden_with_credentials_is_left_alone_and_diagnosed() {
    let out = send(
        app(body_403, zero()),
        req(&[("authorization", "Bearer opaque-token-123")]),
    )
    .await;
    assert_unchanged(&out, 403, CUSTOM_BODY);
    let e = one_event(&out, Level::WARN);
    expect_fields(
        e,
        &[
            ("reason", Some("forbidden")),
            ("inferred", Some("true")),
            ("upstream_status", Some("403")),
            ("location", Some("header:authorization")),
        ],
    );

    // Authenticated by the layer: still unchanged, the token facts are verified.
    let token = valid_token();
    let out = send(
        app(body_403, authn()),
        req(&[("authorization", &bearer(&token))]),
    )
    .await;
    assert_unchanged(&out, 403, CUSTOM_BODY);
    expect_fields(
        one_event(&out, Level::WARN),
        &[
            ("reason", Some("forbidden")),
            ("upstream_status", Some("403")),
            ("signature_verified", Some("true")),
            ("sub", Some("alice")),
        ],
    );
}

#[tokio::test]
async fn success_is_neither_changed_nor_logged() {
    let token = valid_token();
    let auth = bearer(&token);
    for (layer, headers) in [
        (zero(), vec![]),
        (zero(), vec![("authorization", auth.as_str())]),
        (zero().observe(), vec![]),
        (authn(), vec![("authorization", auth.as_str())]),
    ] {
        let out = send(app(ok_200, layer), req(&headers)).await;
        assert_eq!(out.status, 200);
        assert_body(&out, "ok");
        assert!(out.events.is_empty(), "{:#?}", out.events);
        assert_eq!(out.headers.get_all(WWW_AUTHENTICATE).iter().count(), 0);
    }
}

// =======================================================================================
// AuthFailure returned by a handler
// =======================================================================================

#[tokio::test]
async fn handler_auth_failure_is_rendered_and_logged_by_the_layer() {
    let out = send(app(refuse_role, zero().verbose()), req(&[])).await;
    assert_eq!(out.status, 403);
    assert_eq!(out.headers.get_all(WWW_AUTHENTICATE).iter().count(), 0);
    let p = assert_problem(&out, "forbidden");
    assert_eq!(p["status"], 403);
    let e = one_event(&out, Level::WARN);
    expect_fields(
        e,
        &[
            ("reason", Some("forbidden")),
            ("client_reason", Some("forbidden")),
            ("check", Some("role admin")),
            ("upstream_status", None),
        ],
    );
}

#[tokio::test]
async fn handler_auth_failure_gets_the_request_facts() {
    let token = valid_token();
    let out = send(
        app(refuse_role, authn()),
        req(&[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(out.status, 403);
    assert_eq!(out.headers.get_all(WWW_AUTHENTICATE).iter().count(), 0);
    assert_problem(&out, "forbidden");
    let e = one_event(&out, Level::WARN);
    expect_fields(
        e,
        &[
            ("reason", Some("forbidden")),
            ("check", Some("role admin")),
            ("location", Some("header:authorization")),
            ("signature_verified", Some("true")),
            ("sub", Some("alice")),
        ],
    );
    let fp = e.field("fingerprint");
    assert!(
        e.field("repro").contains(&format!("fp:{fp}>")),
        "{}",
        e.field("repro")
    );
}

/// Rendered with the layer's configuration: its realm, its detail mode.
#[tokio::test]
async fn handler_auth_failure_uses_the_layer_configuration() {
    let token = valid_token();
    let out = send(
        app(refuse_scope, authn().realm("shop")),
        req(&[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(out.status, 403);
    let c = out.challenge();
    assert_eq!(c.scheme, "Bearer");
    assert_eq!(c.param("realm"), Some("shop"));
    assert_eq!(c.param("error"), Some("insufficient_scope"));
    assert_eq!(c.param("scope"), Some("orders"));
    assert_problem(&out, "insufficient_scope");
    expect_fields(
        one_event(&out, Level::WARN),
        &[
            ("reason", Some("insufficient_scope")),
            ("scope", Some("orders")),
        ],
    );

    // Production collapses what would be an oracle; the log keeps the precise reason.
    let out = send(app(refuse_unknown_user, zero()), req(&[])).await;
    assert_eq!(out.status, 401);
    assert_problem(&out, "credentials_invalid");
    expect_fields(
        one_event(&out, Level::WARN),
        &[
            ("reason", Some("basic_user_unknown")),
            ("client_reason", Some("credentials_invalid")),
        ],
    );
    let out = send(app(refuse_unknown_user, zero().verbose()), req(&[])).await;
    assert_problem(&out, "basic_user_unknown");
}

// =======================================================================================
// Nested layers: one event per request
// =======================================================================================

/// An inner layer with `.bearer(jwt())` around `handler`, under an outer zero-config one.
fn nested<H, T>(handler: H, outer: AuthDiagnostics) -> Router
where
    H: Handler<T, ()>,
    T: 'static,
{
    Router::new()
        .route(PATH, routing::get(handler))
        .layer(authn())
        .layer(outer)
}

#[tokio::test]
async fn nested_layers_log_an_upstream_correction_once() {
    let token = valid_token();
    let out = send(
        nested(bare_401, zero()),
        req(&[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(out.status, 403);
    assert_eq!(out.headers.get_all(WWW_AUTHENTICATE).iter().count(), 0);
    assert_problem(&out, "forbidden");
    expect_fields(
        one_event(&out, Level::ERROR),
        &[
            ("reason", Some("upstream_unauthorized_after_authentication")),
            ("upstream_status", Some("401")),
        ],
    );

    // The outer layer enforcing while the inner one only observes: still one event.
    let out = send(
        Router::new()
            .route(PATH, routing::get(bare_401))
            .layer(authn().observe())
            .layer(zero()),
        req(&[("authorization", &bearer(&token))]),
    )
    .await;
    one_event(&out, Level::ERROR);
}

#[tokio::test]
async fn nested_layers_log_the_inner_rejection_once() {
    let out = send(nested(ok_200, zero()), req(&[])).await;
    assert_eq!(out.status, 401);
    assert_problem(&out, "credentials_missing");
    expect_fields(
        one_event(&out, Level::INFO),
        &[
            ("reason", Some("credentials_missing")),
            ("upstream_status", None),
        ],
    );

    let out = send(
        nested(ok_200, zero()),
        req(&[("authorization", &bearer(&expired_token()))]),
    )
    .await;
    assert_eq!(out.status, 401);
    assert_eq!(out.challenge().param("error"), Some("invalid_token"));
    expect_fields(
        one_event(&out, Level::WARN),
        &[
            ("reason", Some("token_expired")),
            ("signature_verified", Some("true")),
            ("upstream_status", None),
        ],
    );
}

#[tokio::test]
async fn nested_layers_log_a_handler_failure_once() {
    let token = valid_token();
    let out = send(
        nested(refuse_role, zero()),
        req(&[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(out.status, 403);
    assert_problem(&out, "forbidden");
    expect_fields(
        one_event(&out, Level::WARN),
        &[("reason", Some("forbidden")), ("check", Some("role admin"))],
    );
}

#[tokio::test]
async fn nested_layers_log_a_correct_refusal_once() {
    let token = valid_token();
    let out = send(
        nested(body_403, zero()),
        req(&[("authorization", &bearer(&token))]),
    )
    .await;
    assert_unchanged(&out, 403, CUSTOM_BODY);
    expect_fields(
        one_event(&out, Level::WARN),
        &[
            ("reason", Some("forbidden")),
            ("upstream_status", Some("403")),
        ],
    );

    // Two zero-config layers around a bare 401.
    let out = send(
        Router::new()
            .route(PATH, routing::get(bare_401))
            .layer(zero())
            .layer(zero()),
        req(&[]),
    )
    .await;
    assert_eq!(out.status, 401);
    assert_plain_bearer_challenge(&out, "api");
    expect_fields(
        one_event(&out, Level::ERROR),
        &[("reason", Some("upstream_challenge_missing"))],
    );
}

// =======================================================================================
// Zero-configuration inference
// =======================================================================================

/// One request against a stand-in answering a *challenged* 401 (so the logged reason is
/// the inferred one) and one answering a bare 401 (so the logged reason is
/// `upstream_challenge_missing` and the inferred one is `inferred_reason`). Checks both
/// events against `fields` (without `reason`) and returns them.
async fn infer_both(
    headers: &[(&str, &str)],
    reason: &str,
    level: Level,
    fields: &[(&str, Option<&str>)],
) -> (Captured, Captured) {
    let out = send(app(challenged_401, zero()), req(headers)).await;
    assert_eq!(out.status, 401, "{reason}: a correct 401 is left alone");
    assert_eq!(out.challenge().param("realm"), Some("inner"));
    let direct = one_event(&out, level).clone();
    expect_fields(
        &direct,
        &[
            ("reason", Some(reason)),
            ("inferred", Some("true")),
            ("upstream_status", Some("401")),
        ],
    );
    expect_fields(&direct, fields);

    let out = send(app(bare_401, zero()), req(headers)).await;
    assert_eq!(out.status, 401);
    let upstream = one_event(&out, Level::ERROR).clone();
    expect_fields(
        &upstream,
        &[
            ("reason", Some("upstream_challenge_missing")),
            ("inferred_reason", Some(reason)),
            ("upstream_status", Some("401")),
        ],
    );
    expect_fields(&upstream, fields);
    (direct, upstream)
}

#[tokio::test]
async fn infers_credentials_missing() {
    infer_both(
        &[],
        "credentials_missing",
        Level::INFO,
        &[
            ("location", None),
            ("fingerprint", None),
            ("signature_verified", None),
            ("hints", None),
        ],
    )
    .await;
}

#[tokio::test]
async fn infers_a_bare_token() {
    let token = valid_token();
    let (e, _) = infer_both(
        &[("authorization", &token)],
        "scheme_prefix_missing",
        Level::WARN,
        &[
            ("hints", Some("bare_jwt")),
            ("location", Some("header:authorization")),
            ("signature_verified", Some("false")),
            ("alg", Some("HS256")),
            ("sub", Some("alice")),
        ],
    )
    .await;
    assert_eq!(e.field("fingerprint").len(), 12);
}

#[tokio::test]
async fn infers_an_expired_token_from_its_unverified_exp() {
    let token = expired_token();
    let (e, u) = infer_both(
        &[("authorization", &bearer(&token))],
        "token_expired",
        Level::WARN,
        &[
            ("signature_verified", Some("false")),
            ("exp", Some(EXPIRED_AT)),
            ("alg", Some("HS256")),
            ("iss", Some(ISSUER)),
            ("aud", Some(AUDIENCE)),
            ("sub", Some("alice")),
            ("location", Some("header:authorization")),
            ("scheme_received", Some("Bearer")),
            ("hints", None),
        ],
    )
    .await;
    // The same credential, the same fingerprint.
    assert_eq!(e.field("fingerprint"), u.field("fingerprint"));
}

#[tokio::test]
async fn infers_a_token_not_yet_valid_from_its_unverified_nbf() {
    let mut c = good_claims();
    c.insert("nbf".into(), json!(now() + 7200));
    c.insert("exp".into(), json!(now() + 9000));
    let token = hs256(&c);
    infer_both(
        &[("authorization", &bearer(&token))],
        "token_not_yet_valid",
        Level::WARN,
        &[
            ("signature_verified", Some("false")),
            ("sub", Some("alice")),
        ],
    )
    .await;
}

/// A current token the application refused anyway: nothing in it says why.
#[tokio::test]
async fn infers_credentials_invalid_for_a_current_token() {
    let token = valid_token();
    infer_both(
        &[("authorization", &bearer(&token))],
        "credentials_invalid",
        Level::WARN,
        &[
            ("signature_verified", Some("false")),
            ("iss", Some(ISSUER)),
            ("aud", Some(AUDIENCE)),
            ("sub", Some("alice")),
        ],
    )
    .await;
}

#[tokio::test]
async fn infers_a_malformed_authorization() {
    infer_both(
        &[("authorization", "Bearer a b")],
        "authorization_malformed",
        Level::WARN,
        &[
            ("location", Some("header:authorization")),
            ("signature_verified", None),
            ("hints", None),
        ],
    )
    .await;
}

#[tokio::test]
async fn infers_a_malformed_token() {
    infer_both(
        &[("authorization", "Bearer eyJhbGciOi.x.y")],
        "token_malformed",
        Level::WARN,
        &[
            ("location", Some("header:authorization")),
            ("scheme_received", Some("Bearer")),
            ("signature_verified", None),
        ],
    )
    .await;
}

// =======================================================================================
// Hints
// =======================================================================================

struct HintCase {
    label: &'static str,
    uri: String,
    headers: Vec<(&'static str, String)>,
    /// What zero-configuration diagnosis infers.
    inferred: &'static str,
    /// What a `.bearer(jwt())` layer rejects it with.
    rejected: &'static str,
    hint: &'static str,
}

fn hint_cases() -> Vec<HintCase> {
    let jwt = valid_token();
    let b64 = base64::engine::general_purpose::STANDARD;
    let case =
        |label, uri: &str, headers: Vec<(&'static str, String)>, inferred, rejected, hint| {
            HintCase {
                label,
                uri: uri.to_owned(),
                headers,
                inferred,
                rejected,
                hint,
            }
        };
    const PROXY: &str = "proxy_may_have_stripped_authorization";
    vec![
        case(
            "x-forwarded-for",
            PATH,
            vec![("x-forwarded-for", "203.0.113.7".into())],
            "credentials_missing",
            "credentials_missing",
            PROXY,
        ),
        case(
            "x-forwarded-proto",
            PATH,
            vec![("x-forwarded-proto", "https".into())],
            "credentials_missing",
            "credentials_missing",
            PROXY,
        ),
        case(
            "forwarded",
            PATH,
            vec![("forwarded", "for=203.0.113.7;proto=https".into())],
            "credentials_missing",
            "credentials_missing",
            PROXY,
        ),
        case(
            "via",
            PATH,
            vec![("via", "1.1 proxy.example".into())],
            "credentials_missing",
            "credentials_missing",
            PROXY,
        ),
        case(
            "query",
            "/resource?access_token=querysecret123",
            vec![],
            "credentials_wrong_location",
            "credentials_wrong_location",
            "token_in_query",
        ),
        case(
            "x-auth-token",
            PATH,
            vec![("x-auth-token", "headersecret123".into())],
            "credentials_wrong_location",
            "credentials_wrong_location",
            "token_in_nonstandard_header",
        ),
        case(
            "token header",
            PATH,
            vec![("token", "headersecret123".into())],
            "credentials_wrong_location",
            "credentials_wrong_location",
            "token_in_nonstandard_header",
        ),
        case(
            "x-access-token",
            PATH,
            vec![("x-access-token", "headersecret123".into())],
            "credentials_wrong_location",
            "credentials_wrong_location",
            "token_in_nonstandard_header",
        ),
        case(
            "cookie",
            PATH,
            vec![("cookie", "access_token=cookiesecret123".into())],
            "credentials_wrong_location",
            "credentials_wrong_location",
            "token_in_cookie",
        ),
        case(
            "bare jwt",
            PATH,
            vec![("authorization", jwt.clone())],
            "scheme_prefix_missing",
            "scheme_prefix_missing",
            "bare_jwt",
        ),
        case(
            "doubled prefix",
            PATH,
            vec![("authorization", "Bearer Bearer doubledsecret123".into())],
            "authorization_malformed",
            "authorization_malformed",
            "doubled_prefix",
        ),
        case(
            "basic jwt",
            PATH,
            vec![("authorization", format!("Basic {jwt}"))],
            "scheme_not_accepted",
            "scheme_not_accepted",
            "basic_wrapped_token",
        ),
        case(
            "basic base64 jwt",
            PATH,
            vec![("authorization", format!("Basic {}", b64.encode(&jwt)))],
            "scheme_not_accepted",
            "scheme_not_accepted",
            "basic_wrapped_token",
        ),
    ]
}

fn hint_request(c: &HintCase) -> http::Request<axum::body::Body> {
    let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    get(&c.uri, &headers)
}

#[tokio::test]
async fn hints_in_zero_configuration() {
    for c in hint_cases() {
        let out = send(app(bare_401, zero()), hint_request(&c)).await;
        assert_eq!(out.status, 401, "{}", c.label);
        let e = out.event();
        assert_eq!(e.level, Level::ERROR, "{}", c.label);
        assert_eq!(
            e.field("reason"),
            "upstream_challenge_missing",
            "{}",
            c.label
        );
        assert_eq!(
            e.get("inferred_reason"),
            Some(c.inferred),
            "{}: {:#?}",
            c.label,
            e.fields
        );
        assert_eq!(e.get("hints"), Some(c.hint), "{}: {:#?}", c.label, e.fields);

        // A correct 401: the inferred reason is the logged one, same hint.
        let out = send(app(challenged_401, zero()), hint_request(&c)).await;
        let e = out.event();
        assert_eq!(e.field("reason"), c.inferred, "{}", c.label);
        assert_eq!(e.get("inferred"), Some("true"), "{}", c.label);
        assert_eq!(e.get("hints"), Some(c.hint), "{}: {:#?}", c.label, e.fields);
    }
}

#[tokio::test]
async fn hints_when_the_layer_rejects() {
    for c in hint_cases() {
        let out = send(app(ok_200, authn()), hint_request(&c)).await;
        let e = out.event();
        assert_eq!(
            e.field("reason"),
            c.rejected,
            "{}: {:#?}",
            c.label,
            e.fields
        );
        assert_eq!(e.get("hints"), Some(c.hint), "{}: {:#?}", c.label, e.fields);
        assert_eq!(e.get("upstream_status"), None, "{}", c.label);
        assert_eq!(out.problem()["reason"], c.rejected, "{}", c.label);
    }
}

/// No hint where nothing is odd.
#[tokio::test]
async fn no_hints_for_ordinary_requests() {
    for (layer, headers) in [
        (zero(), vec![]),
        (zero(), vec![("authorization", "Bearer opaque-token-123")]),
        (authn(), vec![]),
        (authn(), vec![("authorization", "Bearer opaque-token-123")]),
    ] {
        let out = send(app(bare_401, layer), req(&headers)).await;
        assert_eq!(
            out.event().get("hints"),
            None,
            "{headers:?}: {:#?}",
            out.event().fields
        );
    }
}

// =======================================================================================
// The reproduction line
// =======================================================================================

/// Checks `repro` for `secrets` and for the fingerprint placeholder of the credential.
#[track_caller]
fn check_repro(label: &str, e: &Captured, secrets: &[&str], placeholder: Option<&str>) {
    let repro = e.field("repro");
    assert!(repro.starts_with("curl -i "), "{label}: {repro}");
    assert!(repro.contains(PATH), "{label}: {repro}");
    for s in secrets {
        assert!(!repro.contains(s), "{label}: repro leaks {s:?}: {repro}");
    }
    if let Some(kind) = placeholder {
        let fp = e.field("fingerprint");
        assert_eq!(fp.len(), 12, "{label}");
        let want = format!("<{kind} fp:{fp}>");
        assert!(
            repro.contains(&want),
            "{label}: repro lacks {want}: {repro}"
        );
    }
}

/// A repro case: label, path and query, request headers, secrets that must not appear,
/// and a text the line must contain.
type ReproCase<'a> = (
    &'a str,
    String,
    Vec<(&'a str, String)>,
    Vec<String>,
    Option<&'a str>,
);

#[tokio::test]
async fn repro_replaces_every_credential() {
    let token = valid_token();
    let expired = expired_token();
    let sig = expired.rsplit('.').next().unwrap().to_owned();
    let cases: Vec<ReproCase> = vec![
        (
            "bearer",
            PATH.into(),
            vec![("authorization", bearer(&expired))],
            vec![expired.clone(), sig.clone()],
            Some("credential"),
        ),
        (
            "bare jwt",
            PATH.into(),
            vec![("authorization", token.clone())],
            vec![token.clone()],
            Some("credential"),
        ),
        (
            "basic",
            PATH.into(),
            vec![("authorization", "Basic YWxpY2U6d29uZGVybGFuZA==".into())],
            vec!["YWxpY2U6d29uZGVybGFuZA".into()],
            Some("credential"),
        ),
        (
            "x-auth-token",
            PATH.into(),
            vec![("x-auth-token", "headersecret123".into())],
            vec!["headersecret123".into()],
            Some("credential"),
        ),
        (
            "cookie",
            PATH.into(),
            vec![(
                "cookie",
                "access_token=cookiesecret123; theme=darkmode".into(),
            )],
            vec!["cookiesecret123".into(), "darkmode".into()],
            Some("cookie"),
        ),
        (
            "query",
            format!("{PATH}?access_token=querysecret123&page=2"),
            vec![],
            vec!["querysecret123".into(), "page=2".into()],
            None,
        ),
    ];
    for (label, uri, headers, secrets, placeholder) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        // Zero configuration: the wrapped service refuses.
        let out = send(app(bare_401, zero()), get(&uri, &headers)).await;
        check_repro(
            &format!("zero-config {label}"),
            out.event(),
            &secrets,
            placeholder,
        );
        // The layer refuses by itself.
        let out = send(app(ok_200, authn()), get(&uri, &headers)).await;
        check_repro(
            &format!("bearer {label}"),
            out.event(),
            &secrets,
            placeholder,
        );
    }
}

#[tokio::test]
async fn repro_shape() {
    let out = send(
        app(bare_401, zero()),
        get(
            "/resource?access_token=querysecret123&page=2",
            &[
                ("host", "api.example"),
                ("accept", "application/json"),
                ("x-custom", "maybe-secret-value"),
            ],
        ),
    )
    .await;
    let repro = out.event().field("repro");
    assert!(
        repro
            .starts_with("curl -i 'http://api.example/resource?access_token=<value>&page=<value>'"),
        "{repro}"
    );
    assert!(repro.contains("-H 'accept: application/json'"), "{repro}");
    assert!(!repro.contains("maybe-secret-value"), "{repro}");
    assert!(!repro.contains("querysecret123"), "{repro}");

    let token = expired_token();
    let out = send(
        app(bare_401, zero()),
        req(&[("authorization", &bearer(&token))]),
    )
    .await;
    let e = out.event();
    let repro = e.field("repro");
    assert!(
        repro.contains(&format!(
            "-H 'authorization: Bearer <credential fp:{}>'",
            e.field("fingerprint")
        )),
        "{repro}"
    );

    // Another method shows up as -X.
    let out = send(
        Router::new()
            .route(PATH, routing::post(bare_401))
            .layer(zero()),
        http::Request::post(PATH)
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    let e = out.event();
    assert_eq!(e.field("method"), "POST");
    assert!(
        e.field("repro")
            .starts_with(&format!("curl -i -X 'POST' 'http://localhost{PATH}'")),
        "{}",
        e.field("repro")
    );
}

// =======================================================================================
// The demo routes
// =======================================================================================

fn token_with_scope(scope: &str) -> String {
    let mut c = good_claims();
    c.insert("scope".into(), json!(scope));
    hs256(&c)
}

#[tokio::test]
async fn demo_orders_without_scope_is_corrected_to_403() {
    let token = token_with_scope("read");
    for (detail, client) in [
        (
            DetailMode::Verbose,
            "upstream_unauthorized_after_authentication",
        ),
        (DetailMode::Production, "forbidden"),
    ] {
        let out = send(
            demo_app(detail),
            get("/orders", &[("authorization", &bearer(&token))]),
        )
        .await;
        assert_eq!(out.status, 403, "{detail:?}");
        assert_eq!(out.headers.get_all(WWW_AUTHENTICATE).iter().count(), 0);
        // The handler's own `{"status":401}` body is replaced: the status changed.
        let p = assert_problem(&out, client);
        assert_eq!(p["status"], 403);
        let e = out.event();
        assert_eq!(e.level, Level::ERROR);
        expect_fields(
            e,
            &[
                ("reason", Some("upstream_unauthorized_after_authentication")),
                ("client_reason", Some(client)),
                ("path", Some("/orders")),
                ("status", Some("403")),
                ("upstream_status", Some("401")),
                ("signature_verified", Some("true")),
                ("sub", Some("alice")),
            ],
        );
        assert_eq!(e.field("request_id"), out.header("x-request-id").unwrap());
    }
}

/// The handler refuses a revoked token itself, with `error="invalid_token"`: kept.
#[tokio::test]
async fn demo_orders_keeps_the_handlers_refusal_of_a_revoked_token() {
    let mut c = good_claims();
    c.insert("jti".into(), json!("revoked"));
    c.insert("scope".into(), json!("orders"));
    let out = send(
        demo_app(DetailMode::Verbose),
        get("/orders", &[("authorization", &bearer(&hs256(&c)))]),
    )
    .await;
    assert_eq!(out.status, 401);
    assert_eq!(
        out.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    let e = out.event();
    assert_eq!(e.level, Level::WARN);
    expect_fields(
        e,
        &[
            ("reason", Some("upstream_token_refused")),
            ("status", Some("401")),
            ("upstream_status", Some("401")),
            ("signature_verified", Some("true")),
        ],
    );
}

#[tokio::test]
async fn demo_orders_with_scope_is_200() {
    let token = token_with_scope("read orders");
    let out = send(
        demo_app(DetailMode::Verbose),
        get("/orders", &[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json()["sub"], "alice");
    assert!(out.events.is_empty(), "{:#?}", out.events);
}

#[tokio::test]
async fn demo_legacy() {
    let out = send(
        demo_app(DetailMode::Verbose),
        get("/legacy", &[("authorization", "Bearer legacy-token")]),
    )
    .await;
    assert_eq!(out.status, 200);
    assert!(out.events.is_empty(), "{:#?}", out.events);

    for (detail, headers, client, inferred) in [
        (
            DetailMode::Verbose,
            vec![],
            "upstream_challenge_missing",
            "credentials_missing",
        ),
        (
            DetailMode::Production,
            vec![],
            "credentials_missing",
            "credentials_missing",
        ),
        (
            DetailMode::Verbose,
            vec![("authorization", "Bearer wrong-token-1")],
            "upstream_challenge_missing",
            "credentials_invalid",
        ),
        (
            DetailMode::Production,
            vec![("authorization", "Bearer wrong-token-1")],
            "credentials_invalid",
            "credentials_invalid",
        ),
    ] {
        let out = send(demo_app(detail), get("/legacy", &headers)).await;
        assert_eq!(out.status, 401, "{detail:?} {headers:?}");
        if headers.is_empty() {
            assert_plain_bearer_challenge(&out, "demo");
        } else {
            // The request sent a Bearer token: the completed challenge says it was refused.
            let c = out.challenge();
            assert_eq!(c.param("realm"), Some("demo"));
            assert_eq!(c.param("error"), Some("invalid_token"));
        }
        assert_problem(&out, client);
        let e = out.event();
        assert_eq!(e.level, Level::ERROR);
        expect_fields(
            e,
            &[
                ("reason", Some("upstream_challenge_missing")),
                ("client_reason", Some(client)),
                ("path", Some("/legacy")),
                ("upstream_status", Some("401")),
                ("inferred_reason", Some(inferred)),
            ],
        );
    }
}

#[tokio::test]
async fn demo_legacy_forbidden() {
    for (detail, client) in [
        (
            DetailMode::Verbose,
            "upstream_forbidden_without_credentials",
        ),
        (DetailMode::Production, "credentials_missing"),
    ] {
        let out = send(demo_app(detail), get("/legacy-forbidden", &[])).await;
        assert_eq!(out.status, 401, "{detail:?}");
        assert_plain_bearer_challenge(&out, "demo");
        assert_problem(&out, client);
        let e = out.event();
        assert_eq!(e.level, Level::ERROR);
        expect_fields(
            e,
            &[
                ("reason", Some("upstream_forbidden_without_credentials")),
                ("client_reason", Some(client)),
                ("path", Some("/legacy-forbidden")),
                ("status", Some("401")),
                ("upstream_status", Some("403")),
                ("inferred_reason", Some("credentials_missing")),
            ],
        );
    }
    // Any cookie is a credential the layer cannot judge: the handler's 403 is kept.
    let out = send(
        demo_app(DetailMode::Verbose),
        get("/legacy-forbidden", &[("cookie", "JSESSIONID=abc123xyz")]),
    )
    .await;
    assert_eq!(out.status, 403);
    assert_eq!(out.headers.get_all(WWW_AUTHENTICATE).iter().count(), 0);
    let out = send(
        demo_app(DetailMode::Verbose),
        get(
            "/legacy-forbidden",
            &[("authorization", "Bearer anything-1")],
        ),
    )
    .await;
    assert_eq!(out.status, 200);
    assert!(out.events.is_empty(), "{:#?}", out.events);
}

/// The fingerprint placeholder of `kind` the repro line of `e` should show, or an error
/// message; like [`check_repro`] but collecting instead of panicking.
fn repro_mismatch(label: &str, e: &Captured, kind: &str, secrets: &[&str]) -> Option<String> {
    let repro = e.field("repro");
    if let Some(s) = secrets.iter().find(|s| repro.contains(*s)) {
        return Some(format!("{label}: repro leaks {s:?}: {repro}"));
    }
    let want = format!("<{kind} fp:{}>", e.field("fingerprint"));
    (!repro.contains(&want))
        .then(|| format!("{label}: event fingerprint {want} not in repro: {repro}"))
}

/// A quoted cookie value (RFC 6265 allows `name="value"`): the placeholder in the repro
/// line names the same fingerprint as the event.
#[tokio::test]
async fn repro_fingerprint_matches_for_a_quoted_cookie() {
    let headers = [("cookie", "access_token=\"cookiesecret123\"")];
    let mut errors = Vec::new();
    for (label, out) in [
        (
            "zero-config",
            send(app(bare_401, zero()), req(&headers)).await,
        ),
        ("bearer", send(app(ok_200, authn()), req(&headers)).await),
    ] {
        let e = out.event();
        expect_fields(e, &[("location", Some("cookie:access_token"))]);
        errors.extend(repro_mismatch(label, e, "cookie", &["cookiesecret123"]));
    }
    assert!(errors.is_empty(), "{errors:#?}");
}

/// A credential in a conflict is the same credential: the event's fingerprint is the one
/// the same token gets on its own, and the one the repro line shows.
#[tokio::test]
async fn repro_fingerprint_matches_in_a_conflict() {
    let alone = [("authorization", "Bearer conflictsecret1")];
    let fp_alone = {
        let out = send(app(bare_401, zero()), req(&alone)).await;
        out.event().field("fingerprint").to_owned()
    };
    let two_fields = [
        ("authorization", "Bearer conflictsecret1"),
        ("authorization", "Bearer conflictsecret2"),
    ];
    let secrets = ["conflictsecret1", "conflictsecret2", "querysecret123"];
    let mut errors = Vec::new();
    for (label, layer, uri, headers) in [
        (
            "zero-config header+query",
            zero(),
            "/resource?access_token=querysecret123",
            &alone[..],
        ),
        (
            "bearer header+query",
            authn(),
            "/resource?access_token=querysecret123",
            &alone[..],
        ),
        ("zero-config two fields", zero(), PATH, &two_fields[..]),
        ("bearer two fields", authn(), PATH, &two_fields[..]),
    ] {
        let out = send(app(bare_401, layer), get(uri, headers)).await;
        let e = out.event();
        let reason = e.get("inferred_reason").unwrap_or(e.field("reason"));
        assert_eq!(reason, "credentials_conflict", "{label}: {:#?}", e.fields);
        match e.get("fingerprint") {
            None => errors.push(format!("{label}: the event has no fingerprint")),
            Some(fp) if fp != fp_alone => errors.push(format!(
                "{label}: fingerprint {fp}, but the same token alone gets {fp_alone}"
            )),
            Some(_) => {}
        }
        if e.get("fingerprint").is_some() {
            errors.extend(repro_mismatch(label, e, "credential", &secrets));
        }
    }
    assert!(errors.is_empty(), "{errors:#?}");
}

/// `Bearer<TAB>token`: the layer splits scheme and token at the tab; the repro line must
/// name the same fingerprint as the event.
#[tokio::test]
async fn repro_fingerprint_matches_with_a_tab_separator() {
    let headers = [("authorization", "Bearer\ttabsecret123")];
    let mut errors = Vec::new();
    for (label, out) in [
        (
            "zero-config",
            send(app(bare_401, zero()), req(&headers)).await,
        ),
        ("bearer", send(app(ok_200, authn()), req(&headers)).await),
    ] {
        errors.extend(repro_mismatch(
            label,
            out.event(),
            "credential",
            &["tabsecret123"],
        ));
    }
    assert!(errors.is_empty(), "{errors:#?}");
}

/// A request as a browser sends it, through a proxy that adds `X-Forwarded-Port`: the
/// zero-configuration diagnosis still sees the proxy header, as the layer's own does.
#[tokio::test]
async fn proxy_hint_survives_a_request_with_many_headers() {
    let browser = [
        ("accept", "text/html"),
        ("accept-encoding", "gzip, deflate, br"),
        ("accept-language", "en-US,en;q=0.9"),
        ("user-agent", "Mozilla/5.0"),
        ("sec-ch-ua", "\"Chromium\";v=\"124\""),
        ("sec-ch-ua-mobile", "?0"),
        ("sec-ch-ua-platform", "\"Linux\""),
        ("sec-fetch-dest", "document"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-site", "none"),
        ("sec-fetch-user", "?1"),
        ("upgrade-insecure-requests", "1"),
        ("cache-control", "max-age=0"),
        ("dnt", "1"),
        ("priority", "u=0, i"),
        ("referer", "https://app.example/"),
        ("x-forwarded-port", "443"),
    ];
    let out = send(app(ok_200, authn()), req(&browser)).await;
    assert_eq!(
        out.event().get("hints"),
        Some("proxy_may_have_stripped_authorization"),
        "the layer's own rejection"
    );
    let out = send(app(bare_401, zero()), req(&browser)).await;
    let e = out.event();
    expect_fields(
        e,
        &[
            ("reason", Some("upstream_challenge_missing")),
            ("inferred_reason", Some("credentials_missing")),
            ("hints", Some("proxy_may_have_stripped_authorization")),
        ],
    );
}

/// A 403 marked cacheable by the application, corrected into a 401 whose status,
/// challenge and body are all the layer's: the layer's answers carry `no-store`.
#[tokio::test]
async fn corrected_answer_with_the_layer_body_is_not_cacheable() {
    async fn cacheable_403() -> Response {
        (
            StatusCode::FORBIDDEN,
            [("cache-control", "public, max-age=3600")],
        )
            .into_response()
    }
    let out = send(app(cacheable_403, zero_fixing()), req(&[])).await;
    assert_eq!(out.status, 401);
    assert_plain_bearer_challenge(&out, "api");
    let p = out.problem();
    assert_eq!(p["reason"], "credentials_missing");
    assert_eq!(
        out.headers
            .get_all("cache-control")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["no-store"],
        "a 401 the layer wrote must not be cached"
    );
}

#[tokio::test]
async fn handler_auth_failure_in_observe_mode_is_rendered_and_logged_once() {
    let out = send(app(refuse_role, zero().observe()), req(&[])).await;
    assert_eq!(out.status, 403);
    assert_problem(&out, "forbidden");
    expect_fields(
        one_event(&out, Level::WARN),
        &[("reason", Some("forbidden")), ("check", Some("role admin"))],
    );
}

/// The unverified `exp` of a JWT outside `Authorization` counts too.
#[tokio::test]
async fn infers_an_expired_token_in_the_query() {
    let token = expired_token();
    let uri = format!("{PATH}?access_token={token}");
    let out = send(app(bare_401, zero()), get(&uri, &[])).await;
    assert_eq!(out.status, 401);
    let e = one_event(&out, Level::ERROR);
    expect_fields(
        e,
        &[
            ("reason", Some("upstream_challenge_missing")),
            ("inferred_reason", Some("token_expired")),
            ("location", Some("query:access_token")),
            ("hints", Some("token_in_query")),
            ("signature_verified", Some("false")),
            ("exp", Some(EXPIRED_AT)),
        ],
    );
    assert!(
        e.field("repro").contains("?access_token=<value>'"),
        "{}",
        e.field("repro")
    );
}

// ---------------------------------------------------------------------------------------
// Review findings: nesting order, Referer, unknown schemes, hostile exp
// ---------------------------------------------------------------------------------------

/// An outer layer authenticates, an inner zero-config layer watches the handler: the
/// inner layer knows the request was authenticated and corrects 401 to 403.
#[tokio::test]
async fn inner_watcher_sees_authentication_by_an_outer_layer() {
    let app = Router::new()
        .route(PATH, routing::get(bare_401))
        .layer(zero())
        .layer(AuthDiagnostics::new().bearer(jwt()));
    let token = valid_token();
    let out = send(
        app,
        get(PATH, &[("authorization", &format!("Bearer {token}"))]),
    )
    .await;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    assert!(out.challenges().is_empty());
    let e = out.event();
    assert_eq!(
        e.field("reason"),
        "upstream_unauthorized_after_authentication"
    );
    assert_eq!(e.field("signature_verified"), "true");
}

#[tokio::test]
async fn repro_never_shows_the_referer_or_bare_query_parameters() {
    let app = Router::new()
        .route(PATH, routing::get(bare_401))
        .layer(zero());
    let out = send(
        app,
        get(
            &format!("{PATH}?sk_live_SECRETBARE0123&page=2"),
            &[(
                "referer",
                "https://app.example/cb?access_token=SECRETREF123",
            )],
        ),
    )
    .await;
    let repro = out.event().field("repro").to_owned();
    assert!(!repro.contains("SECRETREF123"), "{repro}");
    assert!(!repro.contains("SECRETBARE"), "{repro}");
    assert!(repro.contains("-H 'referer: <redacted>'"), "{repro}");
    assert!(repro.contains("?<value>&page=<value>"), "{repro}");
}

/// A single word in Authorization that is no known scheme is treated as a credential:
/// never printed as a scheme, in the log or the answer.
#[tokio::test]
async fn an_unknown_single_word_is_a_credential_not_a_scheme() {
    for app in [
        Router::new()
            .route(PATH, routing::get(bare_401))
            .layer(zero().verbose()),
        Router::new()
            .route(PATH, routing::get(|| async { "ok" }))
            .layer(AuthDiagnostics::new().verbose().bearer(jwt())),
    ] {
        let out = send(app, get(PATH, &[("authorization", "k3yS3cr3tShort19ch")])).await;
        assert!(!String::from_utf8_lossy(&out.body).contains("k3yS3cr3t"));
        let e = out.event();
        assert!(!e.line().contains("k3yS3cr3t"), "{}", e.line());
        assert!(e.line().contains("scheme_prefix_missing"), "{}", e.line());
    }
    // With a space, the first word is a scheme, but only a known one is printed.
    let app = Router::new()
        .route(PATH, routing::get(|| async { "ok" }))
        .layer(AuthDiagnostics::new().verbose().bearer(jwt()));
    let out = send(app, get(PATH, &[("authorization", "Hunter2Secret value")])).await;
    assert_eq!(out.problem()["reason"], "scheme_not_accepted");
    assert_eq!(out.problem()["received_scheme"], "unrecognized");
    assert!(!out.event().line().contains("Hunter2Secret"));
}

/// `exp` at the extreme of i64 must not overflow the "how long ago" arithmetic.
#[tokio::test]
async fn extreme_exp_values_do_not_panic() {
    for exp in [i64::MIN, i64::MIN + 1, i64::MAX] {
        let claims = json!({ "sub": "alice", "exp": exp, "nbf": exp });
        let token = raw_token(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            &claims.to_string(),
            "c2ln",
        );
        for app in [
            Router::new()
                .route(PATH, routing::get(bare_401))
                .layer(zero()),
            Router::new()
                .route(PATH, routing::get(|| async { "ok" }))
                .layer(AuthDiagnostics::new().bearer(jwt())),
        ] {
            let out = send(
                app,
                get(PATH, &[("authorization", &format!("Bearer {token}"))]),
            )
            .await;
            assert_eq!(out.status, StatusCode::UNAUTHORIZED, "exp {exp}");
            assert_eq!(out.events.len(), 1);
        }
    }
}

#[tokio::test]
async fn repro_hides_forwarded_tokens_userinfo_and_odd_names() {
    let app = Router::new()
        .route(PATH, routing::any(bare_401))
        .layer(zero());
    let req = http::Request::get(format!(
        "http://alice:PASSWORDINURI@127.0.0.1:3077{PATH}?sk_live_QUERYNAME01=&page=2"
    ))
    .method(http::Method::from_bytes(&b"X".repeat(5000)).unwrap())
    .header("x-forwarded-for", "203.0.113.7")
    .header("x-forwarded-authorization", "Bearer SECRETFWDTOKEN456")
    .header("x-custom-session-id", "SESSIONSECRET789")
    .body(axum::body::Body::empty())
    .unwrap();
    let out = send(app, req).await;
    let e = out.event();
    let repro = e.field("repro");
    for secret in [
        "PASSWORDINURI",
        "alice",
        "SECRETFWDTOKEN456",
        "SESSIONSECRET789",
        "sk_live",
    ] {
        assert!(!repro.contains(secret), "{secret} in {repro}");
    }
    assert!(
        repro.contains("'http://127.0.0.1:3077/resource?<value>&page=<value>'"),
        "{repro}"
    );
    assert!(
        repro.contains("-H 'x-forwarded-for: 203.0.113.7'"),
        "{repro}"
    );
    let fp = e.field("fingerprint");
    assert!(
        repro.contains(&format!(
            "-H 'x-forwarded-authorization: <credential fp:{fp}>'"
        )),
        "{repro}"
    );
    // A token forwarded by a proxy in its own header is a credential in a place the
    // application may not read.
    assert_eq!(e.field("reason"), "upstream_challenge_missing");
    assert_eq!(e.field("inferred_reason"), "credentials_wrong_location");
    assert_eq!(e.field("location"), "header:x-forwarded-authorization");
    // The method is capped in the event and in the line.
    assert!(e.field("method").len() <= 40, "{}", e.field("method").len());
    assert!(repro.len() <= 2200, "{}", repro.len());
}
