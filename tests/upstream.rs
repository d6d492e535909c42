//! Black-box tests for the spec section "Correcting the wrapped service"
//! (/work/shared/spec/reasons.md): `upstream_challenge_missing`,
//! `upstream_unauthorized_after_authentication`, `upstream_forbidden_without_credentials`
//! in enforce and observe mode; zero-configuration diagnosis of the wrapped service's own
//! 401/403 answers; hint codes; the reproduction line; `AuthFailure` returned by handlers;
//! nested layers; and the demo routes `/orders`, `/legacy`, `/legacy-forbidden`.
//!
//! The wrapped services are small axum handlers standing in for an application. A
//! rejection is checked with [`checked`] (the spec row, and the facts every event here
//! carries); an answer the layer keeps with [`unchanged`] and [`logged`].

mod common;
use common::*;

use auth_diagnostics::failure::AuthFailure;
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Router;
use http::header::WWW_AUTHENTICATE;
use http::Request;
use serde_json::json;

const PATH: &str = "/resource";
const CUSTOM_BODY: &str = "custom body";
const INNER_CHALLENGE: &str = "Bearer realm=\"inner\"";
const CHALLENGE_MISSING: &str = "upstream_challenge_missing";
const AFTER_AUTHN: &str = "upstream_unauthorized_after_authentication";
const FORBIDDEN_ANON: &str = "upstream_forbidden_without_credentials";
const PROXY: &str = "proxy_may_have_stripped_authorization";
/// For [`has`]: the event has no such field; it has the field, whatever its value.
const ABSENT: &str = "<absent>";
const PRESENT: &str = "<present>";

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
    let challenge = [(WWW_AUTHENTICATE, INNER_CHALLENGE)];
    (StatusCode::UNAUTHORIZED, challenge).into_response()
}

/// 403 with an empty body.
async fn bare_403() -> Response {
    StatusCode::FORBIDDEN.into_response()
}

/// 403 with a body of its own.
async fn body_403() -> Response {
    (StatusCode::FORBIDDEN, CUSTOM_BODY).into_response()
}

/// 403 marked cacheable by the application.
async fn cacheable_403() -> Response {
    let cache = [("cache-control", "public, max-age=3600")];
    (StatusCode::FORBIDDEN, cache).into_response()
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
fn app<H: Handler<T, ()>, T: 'static>(handler: H, layer: AuthDiagnostics) -> Router {
    Router::new()
        .route(PATH, routing::get(handler))
        .layer(layer)
}

/// An inner layer with `.bearer(jwt())` around `handler`, under `outer`.
fn nested<H: Handler<T, ()>, T: 'static>(handler: H, outer: AuthDiagnostics) -> Router {
    app(handler, authn()).layer(outer)
}

/// A GET of [`PATH`] with `headers` to `handler` behind `layer`.
async fn run<H: Handler<T, ()>, T: 'static>(
    handler: H,
    layer: AuthDiagnostics,
    headers: &[(&str, &str)],
) -> Outcome {
    send(app(handler, layer), get(PATH, headers)).await
}

/// The wrapped service refuses (zero configuration), and the layer refuses by itself.
fn both() -> [(&'static str, Router); 2] {
    [
        ("zero-config", app(bare_401, zero())),
        ("bearer", app(ok_200, authn())),
    ]
}

/// A GET of `uri` with `headers` to the demo in `detail` mode.
async fn demo(detail: DetailMode, uri: &str, headers: &[(&str, &str)]) -> Outcome {
    send(demo_app(detail), get(uri, headers)).await
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

fn valid_token() -> String {
    hs256(&good_claims())
}

const EXPIRED_EXP: i64 = 1_700_000_000;
const EXPIRED_AT: &str = "2023-11-14T22:13:20Z";

fn expired_token() -> String {
    hs256(&claims(
        json!({ "iat": EXPIRED_EXP - 3600, "exp": EXPIRED_EXP }),
    ))
}

// ---------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------

/// What every event at [`PATH`] carries: method, path, the request id echoed on the
/// response, the status the client got, and a repro line.
#[track_caller]
fn facts(out: &Outcome, e: &Captured) {
    assert_eq!((e.field("method"), e.field("path")), ("GET", PATH));
    assert_eq!(Some(e.field("request_id")), out.header("x-request-id"));
    assert_eq!(e.field("status"), out.status.as_str(), "the status sent");
    let repro = e.field("repro");
    let start = format!("curl -i 'http://localhost{PATH}");
    assert!(repro.starts_with(&start), "repro: {repro}");
    if let Some(fp) = e.get("fingerprint") {
        let hex = fp.bytes().all(|b| b.is_ascii_hexdigit());
        assert!(fp.len() == 12 && hex, "fingerprint: {fp}");
    }
}

/// `out.check(&e)`, and the [`facts`] of its event.
#[track_caller]
fn checked(out: &Outcome, e: Expect) -> Checked {
    let c = out.check(&e);
    facts(out, &c.event);
    c
}

/// Event fields and their values.
type Fields<'a> = &'a [(&'a str, &'a str)];

/// Every `(field, value)` of `e` ([`ABSENT`], [`PRESENT`]: whether it has the field).
#[track_caller]
fn has(e: &Captured, fields: Fields) {
    for (name, value) in fields {
        let got = match (e.get(name), *value) {
            (Some(_), PRESENT) => Some(PRESENT),
            (got, _) => got,
        };
        let want = (*value != ABSENT).then_some(*value);
        assert_eq!(got, want, "field {name}: {:#?}", e.fields);
    }
}

/// The single event of `out`, at `level`, with the [`facts`] and `fields`.
#[track_caller]
fn logged<'a>(out: &'a Outcome, level: Level, fields: Fields) -> &'a Captured {
    let e = out.event();
    assert_eq!(e.level, level, "level of {:#?}", e.fields);
    facts(out, e);
    has(e, fields);
    e
}

/// The challenge the layer completed has no parameter but its realm: nothing was
/// verified (RFC 6750 §3.1).
#[track_caller]
fn realm_only(out: &Outcome) {
    assert_eq!(out.challenge().names(), ["realm"]);
}

/// The response the stand-in produced, untouched.
#[track_caller]
fn unchanged(out: &Outcome, status: u16, body: &str) {
    assert_eq!(out.status, status);
    assert!(out.header_all("www-authenticate").is_empty());
    assert_eq!(out.header("cache-control"), None);
    assert_eq!(out.text(), body);
    let text = (!body.is_empty()).then_some("text/plain; charset=utf-8");
    assert_eq!(out.header("content-type"), text);
}

// =======================================================================================
// upstream_challenge_missing
// =======================================================================================

/// A 401 without challenge, with an empty body (a zero-length text body is one), gets a
/// Bearer challenge in the layer's realm and the layer's problem body.
#[tokio::test]
async fn challenge_missing_enforce_adds_challenge_and_problem_body() {
    let missing = || {
        expect(CHALLENGE_MISSING)
            .field("upstream_status", 401)
            .field("inferred_reason", "credentials_missing")
            .field("scheme_expected", "Bearer")
            .no_field("location")
            .no_field("fingerprint")
            .no_field("signature_verified")
            .no_field("hints")
    };
    let production = || missing().client("credentials_missing");
    let shop = zero().realm("shop");
    for (svc, e) in [
        (app(bare_401, zero()), production()),
        (app(bare_401, shop), production().realm("shop")),
        // Verbose: the client sees the upstream reason.
        (app(bare_401, zero().verbose()), missing().verbose()),
        (app(empty_text_401, zero()), production()),
    ] {
        let out = send(svc, get(PATH, &[])).await;
        realm_only(&out);
        checked(&out, e);
    }
}

/// Production: a 401 for a request that had credentials collapses to credentials_invalid.
#[tokio::test]
async fn challenge_missing_with_credentials_collapses_to_credentials_invalid() {
    let auth = bearer(&expired_token());
    let headers = [("authorization", auth.as_str())];
    let missing = || {
        expect(CHALLENGE_MISSING)
            .error(Some("invalid_token"))
            .field("upstream_status", 401)
            .field("inferred_reason", "token_expired")
            .field("signature_verified", false)
            .field("exp", EXPIRED_AT)
            .field("alg", "HS256")
            .field("iss", ISSUER)
            .field("aud", AUDIENCE)
            .field("sub", "alice")
            .field("location", "header:authorization")
            .field("scheme_received", "Bearer")
    };
    let out = run(bare_401, zero(), &headers).await;
    let e = checked(&out, missing().client("credentials_invalid")).event;
    assert_eq!(e.field("fingerprint").len(), 12);
    // Verbose: the client sees the upstream code.
    let out = run(bare_401, zero().verbose(), &headers).await;
    checked(&out, missing().verbose());
}

#[tokio::test]
async fn challenge_missing_enforce_keeps_a_non_empty_body() {
    for layer in [zero(), zero().verbose()] {
        let out = run(body_401, layer, &[]).await;
        assert_eq!(out.status, 401);
        let c = out.challenge();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("api"));
        realm_only(&out);
        assert_eq!(out.text(), CUSTOM_BODY);
        let ct = out.header("content-type");
        assert_eq!(ct, Some("text/plain; charset=utf-8"));
        assert_eq!(out.header("cache-control"), Some("no-store"));
        let fields = [("reason", CHALLENGE_MISSING), ("upstream_status", "401")];
        logged(&out, Level::ERROR, &fields);
    }
}

/// A 401 that already has a challenge is correct: left alone, and explained in the log
/// with the reason the request suggests, marked inferred.
#[tokio::test]
async fn challenged_401_is_left_alone_and_diagnosed() {
    for layer in [zero(), zero().observe()] {
        let out = run(challenged_401, layer, &[]).await;
        assert_eq!(out.status, 401);
        let c = out.challenge();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("inner"));
        assert_eq!(out.text(), "");
        let fields = [
            ("reason", "credentials_missing"),
            ("inferred", "true"),
            ("upstream_status", "401"),
        ];
        logged(&out, Level::INFO, &fields);
    }
}

/// Observe mode logs every violation and corrects none.
#[tokio::test]
async fn observe_mode_changes_nothing() {
    let auth = bearer(&valid_token());
    let token = [("authorization", auth.as_str())];
    let verbose = zero().observe().verbose();
    for (svc, body, reason) in [
        (app(bare_401, zero().observe()), "", CHALLENGE_MISSING),
        (app(body_401, verbose), CUSTOM_BODY, CHALLENGE_MISSING),
        (app(bare_401, authn().observe()), "", AFTER_AUTHN),
        (app(body_401, authn().observe()), CUSTOM_BODY, AFTER_AUTHN),
        (app(bare_403, zero().observe()), "", FORBIDDEN_ANON),
        (app(body_403, zero().observe()), CUSTOM_BODY, FORBIDDEN_ANON),
    ] {
        let (headers, seen) = match reason {
            AFTER_AUTHN => (&token[..], ("signature_verified", "true")),
            _ => (&[][..], ("inferred_reason", "credentials_missing")),
        };
        let out = send(svc, get(PATH, headers)).await;
        let status = if reason == FORBIDDEN_ANON { 403 } else { 401 };
        unchanged(&out, status, body);
        let upstream = status.to_string();
        let fields = [("reason", reason), ("upstream_status", &upstream), seen];
        logged(&out, Level::ERROR, &fields);
    }
}

// =======================================================================================
// upstream_unauthorized_after_authentication
// =======================================================================================

/// A 401 to a request the layer authenticated becomes a 403 without challenge (even when
/// the 401 had one), with the layer's body: the status changed.
#[tokio::test]
async fn unauthorized_after_authentication_enforce_sends_403() {
    let auth = bearer(&valid_token());
    let after = || {
        expect(AFTER_AUTHN)
            .field("upstream_status", 401)
            .field("signature_verified", true)
            .field("sub", "alice")
            .field("location", "header:authorization")
            .field("scheme_expected", "Bearer")
            // The layer verified the credentials: there is nothing to infer.
            .no_field("inferred_reason")
    };
    for (svc, e) in [
        (app(bare_401, authn()), after()),
        (app(bare_401, authn().verbose()), after().verbose()),
        (app(challenged_401, authn()), after()),
        (app(body_401, authn()), after()),
    ] {
        let out = send(svc, get(PATH, &[("authorization", &auth)])).await;
        let e = checked(&out, e).event;
        assert_eq!(e.field("fingerprint").len(), 12);
    }
}

// =======================================================================================
// upstream_forbidden_without_credentials
// =======================================================================================

/// Opted in, a 403 without credentials becomes a 401 with a challenge and the layer's
/// body (the status changed), never cacheable, whatever the application said.
#[tokio::test]
async fn forbidden_without_credentials_enforce_sends_401_with_challenge() {
    let anon = || {
        expect(FORBIDDEN_ANON)
            .field("upstream_status", 403)
            .field("inferred_reason", "credentials_missing")
            .field("scheme_expected", "Bearer")
            .no_field("fingerprint")
            .no_field("location")
    };
    let shop = zero_fixing().verbose().realm("shop");
    for (svc, e) in [
        (app(bare_403, zero_fixing()), anon()),
        (app(bare_403, shop), anon().verbose().realm("shop")),
        (app(body_403, zero_fixing()), anon()),
        (app(cacheable_403, zero_fixing()), anon()),
    ] {
        let out = send(svc, get(PATH, &[])).await;
        realm_only(&out);
        checked(&out, e);
        let cache = out.header_all("cache-control");
        assert_eq!(cache, ["no-store"], "the layer's 401 is not cached");
    }
}

/// A 403 to a request with credentials is no violation: unchanged, logged as forbidden.
#[tokio::test]
async fn forbidden_with_credentials_is_left_alone_and_diagnosed() {
    let opaque = [("authorization", "Bearer opaque-token-123")];
    let out = run(body_403, zero(), &opaque).await;
    unchanged(&out, 403, CUSTOM_BODY);
    let fields = [
        ("reason", "forbidden"),
        ("inferred", "true"),
        ("upstream_status", "403"),
        ("location", "header:authorization"),
    ];
    logged(&out, Level::WARN, &fields);

    // Authenticated by the layer: still unchanged, the token facts are verified.
    let auth = bearer(&valid_token());
    let out = run(body_403, authn(), &[("authorization", &auth)]).await;
    unchanged(&out, 403, CUSTOM_BODY);
    let fields = [
        ("reason", "forbidden"),
        ("upstream_status", "403"),
        ("signature_verified", "true"),
        ("sub", "alice"),
    ];
    logged(&out, Level::WARN, &fields);
}

#[tokio::test]
async fn success_is_neither_changed_nor_logged() {
    let auth = bearer(&valid_token());
    let token = [("authorization", auth.as_str())];
    for (layer, headers) in [
        (zero(), &[][..]),
        (zero(), &token),
        (zero().observe(), &[]),
        (authn(), &token),
    ] {
        let out = run(ok_200, layer, headers).await;
        out.ok();
        assert_eq!(out.text(), "ok");
        assert!(out.header_all("www-authenticate").is_empty());
    }
}

// =======================================================================================
// AuthFailure returned by a handler
// =======================================================================================

/// Rendered and logged once by the layer, in observe mode too.
#[tokio::test]
async fn handler_auth_failure_is_rendered_and_logged_by_the_layer() {
    let out = run(refuse_role, zero().verbose(), &[]).await;
    let role = expect("forbidden").field("check", "role admin");
    checked(&out, role.clone().verbose().no_field("upstream_status"));
    let out = run(refuse_role, zero().observe(), &[]).await;
    checked(&out, role);
}

#[tokio::test]
async fn handler_auth_failure_gets_the_request_facts() {
    let auth = bearer(&valid_token());
    let out = run(refuse_role, authn(), &[("authorization", &auth)]).await;
    let e = expect("forbidden")
        .field("check", "role admin")
        .field("location", "header:authorization")
        .field("signature_verified", true)
        .field("sub", "alice");
    let e = checked(&out, e).event;
    let fp = format!("fp:{}>", e.field("fingerprint"));
    assert!(e.field("repro").contains(&fp), "{}", e.field("repro"));
}

/// Rendered with the layer's configuration: its realm, its detail mode.
#[tokio::test]
async fn handler_auth_failure_uses_the_layer_configuration() {
    let auth = bearer(&valid_token());
    let shop = authn().realm("shop");
    let out = run(refuse_scope, shop, &[("authorization", &auth)]).await;
    let e = expect("insufficient_scope").realm("shop");
    checked(&out, e.field("scope", "orders"));
    assert_eq!(out.challenge().param("scope"), Some("orders"));

    // Production collapses what would be an oracle; the log keeps the precise reason.
    let out = run(refuse_unknown_user, zero(), &[]).await;
    checked(&out, expect("basic_user_unknown"));
    let out = run(refuse_unknown_user, zero().verbose(), &[]).await;
    checked(&out, expect("basic_user_unknown").verbose());
}

// =======================================================================================
// Nested layers: one event per request
// =======================================================================================

#[tokio::test]
async fn nested_layers_log_an_upstream_correction_once() {
    let auth = bearer(&valid_token());
    let token = [("authorization", auth.as_str())];
    let out = send(nested(bare_401, zero()), get(PATH, &token)).await;
    checked(&out, expect(AFTER_AUTHN).field("upstream_status", 401));

    // The outer layer enforcing while the inner one only observes: still one event.
    let svc = app(bare_401, authn().observe()).layer(zero());
    let out = send(svc, get(PATH, &token)).await;
    logged(&out, Level::ERROR, &[]);
}

#[tokio::test]
async fn nested_layers_log_the_inner_rejection_once() {
    let out = send(nested(ok_200, zero()), get(PATH, &[])).await;
    let e = expect("credentials_missing");
    checked(&out, e.no_field("upstream_status"));

    let auth = bearer(&expired_token());
    let token = [("authorization", auth.as_str())];
    let out = send(nested(ok_200, zero()), get(PATH, &token)).await;
    let e = expect("token_expired").field("signature_verified", true);
    checked(&out, e.no_field("upstream_status"));
}

#[tokio::test]
async fn nested_layers_log_a_handler_failure_once() {
    let auth = bearer(&valid_token());
    let token = [("authorization", auth.as_str())];
    let out = send(nested(refuse_role, zero()), get(PATH, &token)).await;
    checked(&out, expect("forbidden").field("check", "role admin"));
}

#[tokio::test]
async fn nested_layers_log_a_correct_refusal_once() {
    let auth = bearer(&valid_token());
    let token = [("authorization", auth.as_str())];
    let out = send(nested(body_403, zero()), get(PATH, &token)).await;
    unchanged(&out, 403, CUSTOM_BODY);
    let fields = [("reason", "forbidden"), ("upstream_status", "403")];
    logged(&out, Level::WARN, &fields);

    // Two zero-config layers around a bare 401.
    let out = send(app(bare_401, zero()).layer(zero()), get(PATH, &[])).await;
    realm_only(&out);
    let e = expect(CHALLENGE_MISSING);
    checked(&out, e.client("credentials_missing"));
}

/// An outer layer authenticates, an inner zero-config layer watches the handler: the
/// inner layer knows the request was authenticated and corrects 401 to 403.
#[tokio::test]
async fn inner_watcher_sees_authentication_by_an_outer_layer() {
    let auth = bearer(&valid_token());
    let svc = app(bare_401, zero()).layer(authn());
    let out = send(svc, get(PATH, &[("authorization", &auth)])).await;
    checked(&out, expect(AFTER_AUTHN).field("signature_verified", true));
}

// =======================================================================================
// Zero-configuration inference
// =======================================================================================

/// A GET of [`PATH`] as `spec` says: `name: value` is one header, `?query` the query.
fn spec_get(spec: &str) -> Request<axum::body::Body> {
    match spec.split_once(": ") {
        Some((name, value)) => get(PATH, &[(name, value)]),
        None => get(&format!("{PATH}{spec}"), &[]),
    }
}

/// One request (`spec`) to a stand-in answering a *challenged* 401 (so the logged reason
/// is the inferred one) and one to a bare 401 (so the logged reason is
/// `upstream_challenge_missing` and the inferred one is `inferred_reason`). Both events
/// have `fields` and share their fingerprint.
async fn infer_both(spec: &str, reason: &str, fields: Fields<'_>) {
    let out = send(app(challenged_401, zero()), spec_get(spec)).await;
    assert_eq!(out.status, 401, "{reason}: a correct 401 is left alone");
    assert_eq!(out.challenge().param("realm"), Some("inner"));
    let direct = logged(&out, row(reason).level, fields).clone();
    let marks = [
        ("reason", reason),
        ("inferred", "true"),
        ("upstream_status", "401"),
    ];
    has(&direct, &marks);

    let out = send(app(bare_401, zero()), spec_get(spec)).await;
    assert_eq!(out.status, 401);
    let upstream = logged(&out, Level::ERROR, fields);
    let marks = [
        ("reason", CHALLENGE_MISSING),
        ("inferred_reason", reason),
        ("upstream_status", "401"),
    ];
    has(upstream, &marks);
    let fp = upstream.get("fingerprint");
    assert_eq!(direct.get("fingerprint"), fp, "the same credential");
}

#[tokio::test]
async fn infers_the_reason_of_a_wrapped_401() {
    let token = valid_token();
    let early = hs256(&claims(json!({ "nbf": now() + 7200, "exp": now() + 9000 })));
    let bare = format!("authorization: {token}");
    let expired = format!("authorization: Bearer {}", expired_token());
    let early = format!("authorization: Bearer {early}");
    let current = format!("authorization: Bearer {token}");
    let unverified = ("signature_verified", "false");
    let at = ("location", "header:authorization");
    let (iss, aud, sub) = (("iss", ISSUER), ("aud", AUDIENCE), ("sub", "alice"));
    let (alg, fp) = (("alg", "HS256"), ("fingerprint", PRESENT));
    let no_hints = ("hints", ABSENT);
    let unread = ("signature_verified", ABSENT);
    let nothing = [
        ("location", ABSENT),
        ("fingerprint", ABSENT),
        unread,
        no_hints,
    ];
    let bare_fields = [("hints", "bare_jwt"), at, unverified, alg, sub, fp];
    let scheme = ("scheme_received", "Bearer");
    let exp = ("exp", EXPIRED_AT);
    let expired_fields = [
        unverified, exp, alg, iss, aud, sub, at, scheme, no_hints, fp,
    ];
    let invalid = [unverified, iss, aud, sub];
    let (two_words, not_a_jwt) = (
        "authorization: Bearer a b",
        "authorization: Bearer eyJhbGciOi.x.y",
    );
    let cases: [(&str, &str, Fields); 7] = [
        ("", "credentials_missing", &nothing),
        (&bare, "scheme_prefix_missing", &bare_fields),
        // From the token's unverified `exp`, and `nbf`.
        (&expired, "token_expired", &expired_fields),
        (&early, "token_not_yet_valid", &[unverified, sub]),
        // A current token the application refused anyway: nothing in it says why.
        (&current, "credentials_invalid", &invalid),
        (
            two_words,
            "authorization_malformed",
            &[at, unread, no_hints],
        ),
        (not_a_jwt, "token_malformed", &[at, scheme, unread]),
    ];
    for (spec, reason, fields) in cases {
        infer_both(spec, reason, fields).await;
    }
}

/// The unverified `exp` of a JWT outside `Authorization` counts too.
#[tokio::test]
async fn infers_an_expired_token_in_the_query() {
    let uri = format!("{PATH}?access_token={}", expired_token());
    let out = send(app(bare_401, zero()), get(&uri, &[])).await;
    assert_eq!(out.status, 401);
    let fields = [
        ("reason", CHALLENGE_MISSING),
        ("inferred_reason", "token_expired"),
        ("location", "query:access_token"),
        ("hints", "token_in_query"),
        ("signature_verified", "false"),
        ("exp", EXPIRED_AT),
    ];
    let repro = logged(&out, Level::ERROR, &fields).field("repro");
    assert!(repro.contains("?access_token=<value>'"), "{repro}");
}

// =======================================================================================
// Hints
// =======================================================================================

/// A hint case: the request (see [`spec_get`]), the reason (both what zero-configuration
/// diagnosis infers and what a `.bearer(jwt())` layer rejects it with), the hint.
fn hint_cases() -> Vec<(String, &'static str, &'static str)> {
    let jwt = valid_token();
    let bare = format!("authorization: {jwt}");
    let basic64 = format!("authorization: Basic {}", b64(jwt.as_bytes()));
    let missing = "credentials_missing";
    let wrong = "credentials_wrong_location";
    let header = "token_in_nonstandard_header";
    let (basic, wrapped) = ("scheme_not_accepted", "basic_wrapped_token");
    let malformed = "authorization_malformed";
    let doubled = "authorization: Bearer Bearer doubledsecret123";
    let cookie = "cookie: access_token=cookiesecret123";
    let row = |spec: &str, reason, hint| (spec.to_owned(), reason, hint);
    vec![
        row("x-forwarded-for: 203.0.113.7", missing, PROXY),
        row("x-forwarded-proto: https", missing, PROXY),
        row("forwarded: for=203.0.113.7;proto=https", missing, PROXY),
        row("via: 1.1 proxy.example", missing, PROXY),
        row("?access_token=querysecret123", wrong, "token_in_query"),
        row("x-auth-token: headersecret123", wrong, header),
        row("token: headersecret123", wrong, header),
        row("x-access-token: headersecret123", wrong, header),
        row(cookie, wrong, "token_in_cookie"),
        row(&bare, "scheme_prefix_missing", "bare_jwt"),
        row(doubled, malformed, "doubled_prefix"),
        row(&format!("authorization: Basic {jwt}"), basic, wrapped),
        row(&basic64, basic, wrapped),
    ]
}

/// Zero configuration infers the reason and the hint, whether the 401 had a challenge.
#[tokio::test]
async fn hints_in_zero_configuration() {
    for (spec, reason, hint) in hint_cases() {
        infer_both(&spec, reason, &[("hints", hint)]).await;
    }
}

#[tokio::test]
async fn hints_when_the_layer_rejects() {
    for (spec, reason, hint) in hint_cases() {
        let out = send(app(ok_200, authn()), spec_get(&spec)).await;
        let e = expect(reason).field("hints", hint);
        checked(&out, e.no_field("upstream_status"));
    }
}

/// No hint where nothing is odd.
#[tokio::test]
async fn no_hints_for_ordinary_requests() {
    let opaque = [("authorization", "Bearer opaque-token-123")];
    for (layer, headers) in [
        (zero(), &[][..]),
        (zero(), &opaque),
        (authn(), &[]),
        (authn(), &opaque),
    ] {
        let out = run(bare_401, layer, headers).await;
        let e = out.event();
        assert_eq!(e.get("hints"), None, "{headers:?}: {:#?}", e.fields);
    }
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
    let out = run(ok_200, authn(), &browser).await;
    let hints = out.event().get("hints");
    assert_eq!(hints, Some(PROXY), "the layer's own rejection");
    let out = run(bare_401, zero(), &browser).await;
    let fields = [
        ("reason", CHALLENGE_MISSING),
        ("inferred_reason", "credentials_missing"),
        ("hints", PROXY),
    ];
    has(out.event(), &fields);
}

// =======================================================================================
// The reproduction line
// =======================================================================================

/// What is wrong with the repro line of `e`: a secret it shows, or (for a credential of
/// `kind`) the placeholder with the event's fingerprint it lacks.
fn repro_mismatch(
    label: &str,
    e: &Captured,
    kind: Option<&str>,
    secrets: &[&str],
) -> Option<String> {
    let repro = e.field("repro");
    if let Some(s) = secrets.iter().find(|s| repro.contains(*s)) {
        return Some(format!("{label}: repro leaks {s:?}: {repro}"));
    }
    let want = format!("<{} fp:{}>", kind?, e.field("fingerprint"));
    (!repro.contains(&want)).then(|| format!("{label}: repro lacks {want}: {repro}"))
}

/// Checks `repro` for `secrets` and for the fingerprint placeholder of the credential.
#[track_caller]
fn check_repro(label: &str, e: &Captured, secrets: &[&str], kind: Option<&str>) {
    let repro = e.field("repro");
    assert!(repro.starts_with("curl -i "), "{label}: {repro}");
    assert!(repro.contains(PATH), "{label}: {repro}");
    if kind.is_some() {
        assert_eq!(e.field("fingerprint").len(), 12, "{label}");
    }
    assert_eq!(repro_mismatch(label, e, kind, secrets), None);
}

#[tokio::test]
async fn repro_replaces_every_credential() {
    let token = valid_token();
    let expired = expired_token();
    let sig = expired.rsplit('.').next().unwrap();
    let bearer = format!("authorization: Bearer {expired}");
    let bare = format!("authorization: {token}");
    let basic = "authorization: Basic YWxpY2U6d29uZGVybGFuZA==";
    let x_auth = "x-auth-token: headersecret123";
    let cookie = "cookie: access_token=cookiesecret123; theme=darkmode";
    let query = "?access_token=querysecret123&page=2";
    let credential = Some("credential");
    // (the request, see `spec_get`; secrets that must not show; placeholder kind)
    let cases = [
        (bearer.as_str(), vec![expired.as_str(), sig], credential),
        (bare.as_str(), vec![token.as_str()], credential),
        (basic, vec!["YWxpY2U6d29uZGVybGFuZA"], credential),
        (x_auth, vec!["headersecret123"], credential),
        (cookie, vec!["cookiesecret123", "darkmode"], Some("cookie")),
        (query, vec!["querysecret123", "page=2"], None),
    ];
    for (spec, secrets, kind) in cases {
        for (who, svc) in both() {
            let out = send(svc, spec_get(spec)).await;
            check_repro(&format!("{who} {spec}"), out.event(), &secrets, kind);
        }
    }
}

#[tokio::test]
async fn repro_shape() {
    let headers = [
        ("host", "api.example"),
        ("accept", "application/json"),
        ("x-custom", "maybe-secret-value"),
    ];
    let uri = "/resource?access_token=querysecret123&page=2";
    let out = send(app(bare_401, zero()), get(uri, &headers)).await;
    let repro = out.event().field("repro");
    let start = "curl -i 'http://api.example/resource?access_token=<value>&page=<value>'";
    assert!(repro.starts_with(start), "{repro}");
    assert!(repro.contains("-H 'accept: application/json'"), "{repro}");
    assert!(!repro.contains("maybe-secret-value"), "{repro}");
    assert!(!repro.contains("querysecret123"), "{repro}");

    let auth = bearer(&expired_token());
    let out = run(bare_401, zero(), &[("authorization", &auth)]).await;
    let e = out.event();
    let fp = e.field("fingerprint");
    let want = format!("-H 'authorization: Bearer <credential fp:{fp}>'");
    assert!(e.field("repro").contains(&want), "{}", e.field("repro"));

    // Another method shows up as -X.
    let svc = Router::new()
        .route(PATH, routing::post(bare_401))
        .layer(zero());
    let out = send(svc, request(Method::POST, PATH, vec![])).await;
    let e = out.event();
    assert_eq!(e.field("method"), "POST");
    let start = format!("curl -i -X 'POST' 'http://localhost{PATH}'");
    assert!(e.field("repro").starts_with(&start), "{}", e.field("repro"));
}

/// A quoted cookie value (RFC 6265 allows `name="value"`): the placeholder in the repro
/// line names the same fingerprint as the event.
#[tokio::test]
async fn repro_fingerprint_matches_for_a_quoted_cookie() {
    let headers = [("cookie", "access_token=\"cookiesecret123\"")];
    let (kind, secrets) = (Some("cookie"), ["cookiesecret123"]);
    let mut errors = Vec::new();
    for (label, svc) in both() {
        let out = send(svc, get(PATH, &headers)).await;
        let e = out.event();
        has(e, &[("location", "cookie:access_token")]);
        errors.extend(repro_mismatch(label, e, kind, &secrets));
    }
    assert!(errors.is_empty(), "{errors:#?}");
}

/// A credential in a conflict is the same credential: the event's fingerprint is the one
/// the same token gets on its own, and the one the repro line shows.
#[tokio::test]
async fn repro_fingerprint_matches_in_a_conflict() {
    let alone = [("authorization", "Bearer conflictsecret1")];
    let out = run(bare_401, zero(), &alone).await;
    let fp_alone = out.event().field("fingerprint").to_owned();
    let two_fields = [
        ("authorization", "Bearer conflictsecret1"),
        ("authorization", "Bearer conflictsecret2"),
    ];
    let secrets = ["conflictsecret1", "conflictsecret2", "querysecret123"];
    let query = "/resource?access_token=querysecret123";
    let mut errors = Vec::new();
    for (label, layer, uri, headers) in [
        ("zero-config header+query", zero(), query, &alone[..]),
        ("bearer header+query", authn(), query, &alone[..]),
        ("zero-config two fields", zero(), PATH, &two_fields[..]),
        ("bearer two fields", authn(), PATH, &two_fields[..]),
    ] {
        let out = send(app(bare_401, layer), get(uri, headers)).await;
        let e = out.event();
        let reason = e.get("inferred_reason").unwrap_or(e.field("reason"));
        assert_eq!(reason, "credentials_conflict", "{label}: {:#?}", e.fields);
        match e.get("fingerprint") {
            None => errors.push(format!("{label}: the event has no fingerprint")),
            Some(fp) => {
                if fp != fp_alone {
                    let alone = format!("but the same token alone gets {fp_alone}");
                    errors.push(format!("{label}: fingerprint {fp}, {alone}"));
                }
                errors.extend(repro_mismatch(label, e, Some("credential"), &secrets));
            }
        }
    }
    assert!(errors.is_empty(), "{errors:#?}");
}

/// `Bearer<TAB>token`: the layer splits scheme and token at the tab; the repro line must
/// name the same fingerprint as the event.
#[tokio::test]
async fn repro_fingerprint_matches_with_a_tab_separator() {
    let headers = [("authorization", "Bearer\ttabsecret123")];
    let (kind, secrets) = (Some("credential"), ["tabsecret123"]);
    let mut errors = Vec::new();
    for (label, svc) in both() {
        let out = send(svc, get(PATH, &headers)).await;
        errors.extend(repro_mismatch(label, out.event(), kind, &secrets));
    }
    assert!(errors.is_empty(), "{errors:#?}");
}

#[tokio::test]
async fn repro_never_shows_the_referer_or_bare_query_parameters() {
    let referer = "https://app.example/cb?access_token=SECRETREF123";
    let referer = [("referer", referer)];
    let uri = format!("{PATH}?sk_live_SECRETBARE0123&page=2");
    let out = send(app(bare_401, zero()), get(&uri, &referer)).await;
    let repro = out.event().field("repro");
    assert!(!repro.contains("SECRETREF123"), "{repro}");
    assert!(!repro.contains("SECRETBARE"), "{repro}");
    assert!(repro.contains("-H 'referer: <redacted>'"), "{repro}");
    assert!(repro.contains("?<value>&page=<value>"), "{repro}");
}

#[tokio::test]
async fn repro_hides_forwarded_tokens_userinfo_and_odd_names() {
    let svc = Router::new()
        .route(PATH, routing::any(bare_401))
        .layer(zero());
    let method = Method::from_bytes(&b"X".repeat(5000)).unwrap();
    let uri =
        format!("http://alice:PASSWORDINURI@127.0.0.1:3077{PATH}?sk_live_QUERYNAME01=&page=2");
    let headers = vec![
        ("x-forwarded-for", hv("203.0.113.7")),
        ("x-forwarded-authorization", hv("Bearer SECRETFWDTOKEN456")),
        ("x-custom-session-id", hv("SESSIONSECRET789")),
    ];
    let out = send(svc, request(method, &uri, headers)).await;
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
    let url = "'http://127.0.0.1:3077/resource?<value>&page=<value>'";
    assert!(repro.contains(url), "{repro}");
    let forwarded_for = "-H 'x-forwarded-for: 203.0.113.7'";
    assert!(repro.contains(forwarded_for), "{repro}");
    let fp = e.field("fingerprint");
    let want = format!("-H 'x-forwarded-authorization: <credential fp:{fp}>'");
    assert!(repro.contains(&want), "{repro}");
    // A token forwarded by a proxy in its own header is a credential in a place the
    // application may not read.
    let fields = [
        ("reason", CHALLENGE_MISSING),
        ("inferred_reason", "credentials_wrong_location"),
        ("location", "header:x-forwarded-authorization"),
    ];
    has(e, &fields);
    // The method is capped in the event and in the line.
    assert!(e.field("method").len() <= 40, "{}", e.field("method").len());
    assert!(repro.len() <= 2200, "{}", repro.len());
}

// =======================================================================================
// Credentials in odd shapes
// =======================================================================================

/// A single word in Authorization that is no known scheme is treated as a credential:
/// never printed as a scheme, in the log or the answer.
#[tokio::test]
async fn an_unknown_single_word_is_a_credential_not_a_scheme() {
    let word = [("authorization", "k3yS3cr3tShort19ch")];
    for svc in [
        app(bare_401, zero().verbose()),
        app(ok_200, authn().verbose()),
    ] {
        let out = send(svc, get(PATH, &word)).await;
        assert!(!out.text().contains("k3yS3cr3t"));
        let line = out.event().line();
        assert!(!line.contains("k3yS3cr3t"), "{line}");
        assert!(line.contains("scheme_prefix_missing"), "{line}");
    }
    // With a space, the first word is a scheme, but only a known one is printed.
    let two_words = [("authorization", "Hunter2Secret value")];
    let out = run(ok_200, authn().verbose(), &two_words).await;
    let p = checked(&out, expect("scheme_not_accepted").verbose()).problem;
    assert_eq!(p["received_scheme"], "unrecognized");
    assert!(!out.event().line().contains("Hunter2Secret"));
}

/// `exp` at the extreme of i64 must not overflow the "how long ago" arithmetic.
#[tokio::test]
async fn extreme_exp_values_do_not_panic() {
    for exp in [i64::MIN, i64::MIN + 1, i64::MAX] {
        let claims = json!({ "sub": "alice", "exp": exp, "nbf": exp }).to_string();
        let token = raw_token(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, "c2ln");
        let auth = bearer(&token);
        for (_, svc) in both() {
            let out = send(svc, get(PATH, &[("authorization", &auth)])).await;
            assert_eq!(out.status, StatusCode::UNAUTHORIZED, "exp {exp}");
            assert_eq!(out.events.len(), 1);
        }
    }
}

// =======================================================================================
// The demo routes
// =======================================================================================

#[tokio::test]
async fn demo_orders_without_scope_is_corrected_to_403() {
    let auth = bearer(&hs256(&claims(json!({ "scope": "read" }))));
    for detail in [DetailMode::Verbose, DetailMode::Production] {
        let out = demo(detail, "/orders", &[("authorization", &auth)]).await;
        // The handler's own `{"status":401}` body is replaced: the status changed.
        let e = expect(AFTER_AUTHN)
            .mode(detail)
            .field("path", "/orders")
            .field("upstream_status", 401)
            .field("signature_verified", true)
            .field("sub", "alice");
        let e = out.check(&e).event;
        assert_eq!(Some(e.field("request_id")), out.header("x-request-id"));
    }
}

/// The handler refuses a revoked token itself, with `error="invalid_token"`: kept.
#[tokio::test]
async fn demo_orders_keeps_the_handlers_refusal_of_a_revoked_token() {
    let revoked = claims(json!({ "jti": "revoked", "scope": "orders" }));
    let auth = bearer(&hs256(&revoked));
    let out = demo(DetailMode::Verbose, "/orders", &[("authorization", &auth)]).await;
    assert_eq!(out.status, 401);
    let challenges = out.header_all("www-authenticate");
    assert_eq!(challenges, [r#"Bearer error="invalid_token""#]);
    let e = out.event();
    assert_eq!(e.level, Level::WARN);
    let fields = [
        ("reason", "upstream_token_refused"),
        ("status", "401"),
        ("upstream_status", "401"),
        ("signature_verified", "true"),
    ];
    has(e, &fields);
}

#[tokio::test]
async fn demo_orders_with_scope_is_200() {
    let auth = bearer(&hs256(&claims(json!({ "scope": "read orders" }))));
    let out = demo(DetailMode::Verbose, "/orders", &[("authorization", &auth)]).await;
    assert_eq!(out.ok()["sub"], "alice");
}

#[tokio::test]
async fn demo_legacy() {
    let legacy = [("authorization", "Bearer legacy-token")];
    demo(DetailMode::Verbose, "/legacy", &legacy).await.ok();

    let (verbose, production) = (DetailMode::Verbose, DetailMode::Production);
    let (missing, invalid) = ("credentials_missing", "credentials_invalid");
    let wrong = Some("Bearer wrong-token-1");
    for (detail, token, client, inferred) in [
        (verbose, None, CHALLENGE_MISSING, missing),
        (production, None, missing, missing),
        (verbose, wrong, CHALLENGE_MISSING, invalid),
        (production, wrong, invalid, invalid),
    ] {
        let headers: Vec<_> = token.map(|t| ("authorization", t)).into_iter().collect();
        let out = demo(detail, "/legacy", &headers).await;
        if token.is_none() {
            realm_only(&out);
        }
        // A request that sent a Bearer token: the completed challenge says it was refused.
        let e = expect(CHALLENGE_MISSING)
            .mode(detail)
            .client(client)
            .realm("demo")
            .error(token.map(|_| "invalid_token"))
            .field("path", "/legacy")
            .field("upstream_status", 401)
            .field("inferred_reason", inferred);
        out.check(&e);
    }
}

#[tokio::test]
async fn demo_legacy_forbidden() {
    for detail in [DetailMode::Verbose, DetailMode::Production] {
        let out = demo(detail, "/legacy-forbidden", &[]).await;
        realm_only(&out);
        let e = expect(FORBIDDEN_ANON)
            .mode(detail)
            .realm("demo")
            .field("path", "/legacy-forbidden")
            .field("upstream_status", 403)
            .field("inferred_reason", "credentials_missing");
        out.check(&e);
    }
    // Any cookie is a credential the layer cannot judge: the handler's 403 is kept.
    let cookie = [("cookie", "JSESSIONID=abc123xyz")];
    let out = demo(DetailMode::Verbose, "/legacy-forbidden", &cookie).await;
    assert_eq!(out.status, 403);
    assert!(out.header_all("www-authenticate").is_empty());
    let token = [("authorization", "Bearer anything-1")];
    let out = demo(DetailMode::Verbose, "/legacy-forbidden", &token).await;
    out.ok();
}
