//! Black-box tests for the spec section "Getting the credentials to the server"
//! (/work/shared/spec/reasons.md): credentials_missing, scheme_not_accepted,
//! scheme_prefix_missing, credentials_wrong_location, authorization_malformed,
//! credentials_conflict, preflight_blocked; plus detail modes, realm and request ids.

mod common;
use common::*;

use auth_diagnostics::layer::DetailMode::{Production, Verbose};
use axum::body::Body;
use axum::Router;
use http::Request;
use jsonwebtoken::{EncodingKey, Header};

const MODES: [DetailMode; 2] = [Production, Verbose];

fn app(mode: DetailMode) -> Router {
    bearer_app(layer(mode))
}

fn token() -> String {
    hs256(&good_claims())
}

/// `reason` for `method path`, logged with the scheme the route expects.
fn logged(method: &'static str, path: &'static str, reason: &'static str) -> Expect {
    expect(reason)
        .field("method", method)
        .field("path", path)
        .field("scheme_expected", "Bearer")
}

/// `credentials_missing` for `method path`: nothing located or received, no fingerprint.
fn missing_at(method: &'static str, path: &'static str) -> Expect {
    logged(method, path, "credentials_missing")
        .no_field("location")
        .no_field("scheme_received")
        .no_field("fingerprint")
}

fn missing() -> Expect {
    missing_at("GET", "/me")
}

/// `reason` for `GET /me`, with the credential found at `location` and the scheme
/// `received` (no such field when `None`).
fn want(reason: &'static str, location: &str, received: Option<&str>) -> Expect {
    let e = logged("GET", "/me", reason).field("location", location);
    match received {
        Some(scheme) => e.field("scheme_received", scheme),
        None => e.no_field("scheme_received"),
    }
}

/// `out.check(e)` in `mode`, and what a transport rejection adds: a challenge with no
/// parameter beyond `realm` and the error pair, a detail, the request id logged; a
/// verbose body names the expected scheme and the location and scheme received the event
/// logs, a production one has no `required_scope`.
#[track_caller]
fn rejected(out: &Outcome, mode: DetailMode, e: Expect) -> Checked {
    let c = out.check(&e.mode(mode));
    let ch = out.challenge();
    let names: &[&str] = match ch.param("error") {
        Some(_) => &["error", "error_description", "realm"],
        None => &["realm"],
    };
    assert_eq!(ch.names(), names, "challenge parameters: {ch:?}");
    let (p, ev) = (&c.problem, &c.event);
    assert!(!c.detail().is_empty(), "{p}");
    ev.field("request_id");
    if mode == Verbose {
        assert_eq!(p["expected_scheme"], "Bearer", "{p}");
        assert_eq!(
            p.get("location").and_then(Value::as_str),
            ev.get("location")
        );
        let received = p.get("received_scheme").and_then(Value::as_str);
        assert_eq!(received, ev.get("scheme_received"), "{p}");
    } else {
        assert!(p.get("required_scope").is_none(), "{p}");
    }
    c
}

/// [`rejected`], with a fingerprint logged (`check` asserts its shape).
#[track_caller]
fn fingerprinted(out: &Outcome, mode: DetailMode, e: Expect) -> Checked {
    let c = rejected(out, mode, e);
    assert!(c.event.get("fingerprint").is_some(), "{}", c.event.line());
    c
}

/// No `name=value` pair of `query` is in the event (`send` keeps out the query itself and
/// its values of 6 characters or more).
#[track_caller]
fn assert_no_query(e: &Captured, query: &str) {
    let line = e.line();
    for pair in query.split('&') {
        assert!(!line.contains(pair), "the log holds {pair:?}: {line}");
    }
}

#[track_caller]
fn assert_generated_id(label: &str, id: &str) {
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{label}: a generated request id is 32 hex characters, got {id:?}"
    );
}

// ---------------------------------------------------------------------------------------
// credentials_missing
// ---------------------------------------------------------------------------------------

/// The hint logged for a plain request without credentials (no proxy headers).
async fn baseline_missing_hint() -> String {
    let out = send(app(Production), get("/me", &[])).await;
    out.event().field("hint").to_owned()
}

/// Without proxy headers the hint says how to send credentials, and blames no proxy.
#[track_caller]
fn assert_default_missing_hint(hint: &str) {
    assert!(
        !hint.contains("stripped"),
        "the hint blames a proxy: {hint:?}"
    );
    assert!(
        hint.contains("Bearer") || hint.contains("WWW-Authenticate"),
        "the hint should say what to send: {hint:?}"
    );
}

#[tokio::test]
async fn credentials_missing() {
    for mode in MODES {
        let out = send(app(mode), get("/me", &[])).await;
        // Verbose: nothing was received, nothing was located.
        assert_default_missing_hint(rejected(&out, mode, missing()).event.field("hint"));
    }
    let out = send(app(Production), get("/admin", &[])).await;
    rejected(&out, Production, missing_at("GET", "/admin"));
    // The logged path never has the query.
    let out = send(app(Production), get("/me?page=2&sort=name", &[])).await;
    assert_no_query(
        &rejected(&out, Production, missing()).event,
        "page=2&sort=name",
    );
}

/// The spec says `X-Forwarded-*`: every header of that family shows a proxy, as do
/// `Forwarded` and `Via`. The hint (in verbose, the client's too) says a proxy may have
/// stripped Authorization.
#[tokio::test]
async fn credentials_missing_through_a_proxy_hints_at_stripped_authorization() {
    let baseline = baseline_missing_hint().await;
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.7"),
        ("forwarded", "for=203.0.113.7;proto=https"),
        ("via", "1.1 proxy.example"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-prefix", "/api"),
        ("x-forwarded-server", "edge-1"),
    ] {
        for mode in MODES {
            let out = send(app(mode), get("/me", &[(name, value)])).await;
            let c = rejected(&out, mode, missing());
            let hint = c.event.field("hint");
            assert_ne!(hint, baseline, "{name}: the default hint behind a proxy");
            assert!(
                hint.contains("proxy")
                    && hint.contains("stripped")
                    && hint.contains("Authorization"),
                "{name}: hint should say a proxy may have stripped Authorization: {hint:?}"
            );
        }
    }
}

#[tokio::test]
async fn innocent_cookie_is_still_credentials_missing() {
    let baseline = baseline_missing_hint().await;
    for cookie in [
        "theme=dark",
        "theme=dark; lang=en-US",
        "consent=yes; tz=UTC",
    ] {
        let out = send(app(Production), get("/me", &[("cookie", cookie)])).await;
        let c = rejected(&out, Production, missing());
        assert_eq!(c.event.field("hint"), baseline, "{cookie}");
    }
}

// ---------------------------------------------------------------------------------------
// scheme_not_accepted, and case-insensitive scheme names
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn scheme_not_accepted() {
    let digest = r#"Digest username="alice", realm="api", nonce="dcd98b7102dd2f0e", uri="/me", response="6629fae49393a05397450978507c4ef1""#;
    for (value, received) in [
        ("Basic dXNlcjpwYXNz", "Basic"),
        ("basic dXNlcjpwYXNz", "basic"),
        ("BASIC dXNlcjpwYXNz", "BASIC"),
        (digest, "Digest"),
        ("ApiKey abc", "ApiKey"),
        ("apikey abc", "apikey"),
        ("APIKEY abc", "APIKEY"),
    ] {
        for mode in MODES {
            let out = send(app(mode), get("/me?x=1", &[("authorization", value)])).await;
            let e = want(
                "scheme_not_accepted",
                "header:authorization",
                Some(received),
            );
            let ev = fingerprinted(&out, mode, e).event;
            assert_eq!(
                ev.field("hint"),
                Reason::SchemeNotAccepted.hint(),
                "{value}"
            );
            // Decoded Basic credentials are secrets too; the body echoes none either.
            assert!(!ev.line().contains("user:pass"), "{value}: {}", ev.line());
            assert!(!out.text().contains("dXNlcjpwYXNz"), "{}", out.text());
        }
    }
}

/// RFC 9110 §11.1: the scheme name is case-insensitive; §11.4: `1*SP` after it.
#[tokio::test]
async fn bearer_scheme_name_is_case_insensitive() {
    let t = token();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR", "Bearer  "] {
        let out = send(
            app(Production),
            get("/me", &[("authorization", &format!("{scheme} {t}"))]),
        )
        .await;
        assert_eq!(
            out.ok()["sub"],
            "alice",
            "`{scheme} <valid token>` must succeed"
        );
        assert_generated_id(scheme, out.header("x-request-id").unwrap());
    }
}

// ---------------------------------------------------------------------------------------
// scheme_prefix_missing
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn bare_jwt_is_scheme_prefix_missing() {
    let header = Header {
        kid: Some("key-1".into()),
        ..Header::default()
    };
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let t = sign(&header, &good_claims(), &key);
    let out = send(app(Production), get("/me?y=2", &[("authorization", &t)])).await;
    // What the token claims, unverified.
    let e = want("scheme_prefix_missing", "header:authorization", None)
        .field("alg", "HS256")
        .field("kid", "key-1")
        .field("typ", "JWT")
        .field("iss", ISSUER)
        .field("aud", AUDIENCE)
        .field("sub", "alice")
        .field("signature_verified", "false");
    let ev = fingerprinted(&out, Production, e).event;
    assert_eq!(ev.field("hint"), Reason::SchemePrefixMissing.hint());
    assert!(ev.get("exp").is_some(), "{}", ev.line());

    let t = token();
    let out = send(app(Verbose), get("/me", &[("authorization", &t)])).await;
    let c = fingerprinted(
        &out,
        Verbose,
        want("scheme_prefix_missing", "header:authorization", None),
    );
    assert_eq!(c.problem["hint"], Reason::SchemePrefixMissing.hint());
    assert!(
        !out.text().contains(&t),
        "the body echoes the token: {}",
        out.text()
    );
}

#[tokio::test]
async fn bare_long_token68_is_scheme_prefix_missing() {
    for value in [
        "abcdefghij0123456789KLMNOPQRSTUVWXYZ-_~+/abcd==",
        "0123456789abcdef0123456789abcdef0123456789abcdef",
    ] {
        let out = send(app(Production), get("/me", &[("authorization", value)])).await;
        // Not a JWT: no token facts at all.
        let e = want("scheme_prefix_missing", "header:authorization", None);
        let e = ["alg", "kid", "iss", "sub", "signature_verified"]
            .into_iter()
            .fold(e, Expect::no_field);
        fingerprinted(&out, Production, e);
    }
}

// ---------------------------------------------------------------------------------------
// credentials_wrong_location
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn token_in_query_is_wrong_location() {
    let t = token();
    for name in ["access_token", "api_key", "token"] {
        let query = format!("page=1&{name}={t}");
        let out = send(app(Production), get(&format!("/me?{query}"), &[])).await;
        let e = want("credentials_wrong_location", &format!("query:{name}"), None);
        assert_no_query(&fingerprinted(&out, Production, e).event, &query);
    }

    let query = format!("access_token={t}");
    let out = send(app(Verbose), get(&format!("/me?{query}"), &[])).await;
    let e = want("credentials_wrong_location", "query:access_token", None);
    let c = fingerprinted(&out, Verbose, e);
    assert_no_query(&c.event, &query);
    assert!(
        !out.text().contains(&t),
        "body echoes the token: {}",
        out.text()
    );
    let hint = c.problem["hint"].as_str().unwrap();
    assert_ne!(
        hint,
        Reason::CredentialsWrongLocation.hint(),
        "{}",
        c.problem
    );
    assert!(
        hint.to_ascii_lowercase().contains("header"),
        "{}",
        c.problem
    );
}

#[tokio::test]
async fn token_in_other_headers_is_wrong_location() {
    let t = token();
    for (name, loc) in [
        ("X-Auth-Token", "header:x-auth-token"),
        ("Token", "header:token"),
        ("X-Access-Token", "header:x-access-token"),
        ("X-API-Key", "header:x-api-key"),
    ] {
        for value in [t.as_str(), "sk_live_0123456789abcdef"] {
            for mode in MODES {
                let out = send(app(mode), get("/me", &[(name, value)])).await;
                let e = want("credentials_wrong_location", loc, None);
                let ev = fingerprinted(&out, mode, e).event;
                let hint = ev.field("hint");
                assert_eq!(hint, Reason::CredentialsWrongLocation.hint(), "{name}");
            }
        }
    }
}

#[tokio::test]
async fn token_in_cookie_is_wrong_location() {
    let t = token();
    for (cookie, loc) in [
        (format!("access_token={t}"), "cookie:access_token"),
        (
            format!("theme=dark; access_token={t}"),
            "cookie:access_token",
        ),
        // A JWT under a name nobody would guess.
        (format!("theme=dark; prefs_blob={t}"), "cookie:prefs_blob"),
    ] {
        let out = send(app(Production), get("/me", &[("cookie", &cookie)])).await;
        fingerprinted(
            &out,
            Production,
            want("credentials_wrong_location", loc, None),
        );
    }
}

// ---------------------------------------------------------------------------------------
// authorization_malformed
// ---------------------------------------------------------------------------------------

/// Every value logs `Bearer`, the word it starts with, as the scheme received, even when
/// the rest does not parse at all (non-UTF-8, over the length cap). `true`: a fingerprint.
fn malformed_cases() -> Vec<(&'static str, HeaderValue, bool)> {
    let long = format!("Bearer {}", "a".repeat(20 * 1024));
    vec![
        ("Bearer", hv("Bearer"), false),
        ("Bearer + spaces", hv("Bearer    "), false),
        ("Bearer a b", hv("Bearer a b"), true),
        ("Bearer abcdef ghijkl", hv("Bearer abcdef ghijkl"), true),
        ("Bearer Bearer x", hv("Bearer Bearer x"), true),
        ("quoted", hv("Bearer \"abc\""), true),
        ("Bearer a,b", hv("Bearer a,b"), true),
        ("Bearer a;b", hv("Bearer a;b"), true),
        ("non-UTF-8", hv(b"Bearer \xff\xfe"), true),
        ("20 KiB", hv(long), true),
        ("Bearer ==", hv("Bearer =="), true),
    ]
}

#[tokio::test]
async fn authorization_malformed() {
    for mode in MODES {
        for (label, value, fp) in malformed_cases() {
            let uri = if mode == Production { "/me?q=1" } else { "/me" };
            let req = request(Method::GET, uri, vec![("authorization", value)]);
            let out = send(app(mode), req).await;
            let e = want(
                "authorization_malformed",
                "header:authorization",
                Some("Bearer"),
            );
            let c = if fp {
                fingerprinted(&out, mode, e)
            } else {
                rejected(&out, mode, e)
            };
            assert_no_query(&c.event, "q=1");
            // The response never echoes what was sent.
            assert!(
                out.body.len() < 2048,
                "{label}: body of {} bytes",
                out.body.len()
            );
        }
    }
}

#[tokio::test]
async fn doubled_bearer_prefix_gets_its_own_hint() {
    let value = format!("Bearer Bearer {}", token());
    for mode in MODES {
        let out = send(app(mode), get("/me", &[("authorization", &value)])).await;
        let e = want(
            "authorization_malformed",
            "header:authorization",
            Some("Bearer"),
        );
        // Verbose: the body carries the same hint.
        let ev = fingerprinted(&out, mode, e).event;
        let hint = ev.field("hint");
        assert_ne!(hint, Reason::AuthorizationMalformed.hint());
        let lower = hint.to_ascii_lowercase();
        assert!(
            lower.contains("bearer")
                && (lower.contains("twice") || lower.contains("doubl") || lower.contains("second")),
            "hint should be about the doubled prefix: {hint:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// credentials_conflict
// ---------------------------------------------------------------------------------------

/// Two Authorization fields, or Authorization and `?access_token=`. The spec's event
/// carries "a short fingerprint of the credential … so one token can be followed across
/// lines": a conflicting request carries credentials too.
#[tokio::test]
async fn credentials_conflict() {
    let t = token();
    let conflict = || {
        want(
            "credentials_conflict",
            "header:authorization",
            Some("Bearer"),
        )
    };
    let two = |second: &str| {
        let fields = vec![
            ("authorization", hv(bearer(&t))),
            ("authorization", hv(second)),
        ];
        request(Method::GET, "/me", fields)
    };
    let query = format!("access_token={t}");
    for mode in MODES {
        let out = send(app(mode), two("Basic dXNlcjpwYXNz")).await;
        let ev = rejected(&out, mode, conflict()).event;
        assert_eq!(ev.field("hint"), Reason::CredentialsConflict.hint());

        let req = get(&format!("/me?{query}"), &[("authorization", &bearer(&t))]);
        let out = send(app(mode), req).await;
        assert_no_query(&fingerprinted(&out, mode, conflict()).event, &query);
    }
    let out = send(app(Production), two(&bearer(&t))).await;
    fingerprinted(&out, Production, conflict());
}

/// Only `access_token` is a way to send a Bearer token in the query (RFC 6750 §2.3): other
/// names are an application's own parameters (`?token=page2`) and never change the outcome
/// of a request whose Authorization is valid. (`?access_token=` conflicts: above.)
#[tokio::test]
async fn only_access_token_in_the_query_conflicts_with_authorization() {
    let t = token();
    for name in [
        "token",
        "jwt",
        "id_token",
        "api_key",
        "apikey",
        "api-key",
        "auth_token",
    ] {
        for value in ["page2", t.as_str()] {
            let req = get(
                &format!("/me?{name}={value}"),
                &[("authorization", &bearer(&t))],
            );
            send(app(Production), req).await.ok();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fingerprints follow one credential across lines
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn fingerprint_is_stable_per_credential() {
    let mut fps = Vec::new();
    for value in [
        "Basic dXNlcjpwYXNz",
        "Basic dXNlcjpwYXNz",
        "Basic b3RoZXI6cGFzcw==",
    ] {
        let out = send(app(Production), get("/me", &[("authorization", value)])).await;
        fps.push(out.event().field("fingerprint").to_owned());
    }
    assert_eq!(fps[0], fps[1], "same credential, same fingerprint");
    assert_ne!(
        fps[0], fps[2],
        "different credentials, different fingerprints"
    );
}

/// One token sent in different wrong places gets one fingerprint.
#[tokio::test]
async fn one_token_has_one_fingerprint_wherever_it_is_sent() {
    let t = token();
    let mut fps = Vec::new();
    for req in [
        get("/me", &[("authorization", &t)]),
        get(&format!("/me?access_token={t}"), &[]),
        get("/me", &[("x-auth-token", &t)]),
        get("/me", &[("cookie", &format!("prefs_blob={t}"))]),
    ] {
        let out = send(app(Production), req).await;
        fps.push(out.event().field("fingerprint").to_owned());
    }
    assert!(
        fps.iter().all(|fp| *fp == fps[0]),
        "fingerprints differ by location: {fps:?}"
    );
}

// ---------------------------------------------------------------------------------------
// CORS preflight
// ---------------------------------------------------------------------------------------

fn preflight_app(options_status: StatusCode) -> Router {
    Router::new()
        .route(
            "/me",
            axum::routing::get(|| async { "me" }).options(move || async move { options_status }),
        )
        .layer(AuthDiagnostics::new().bearer(jwt()))
}

fn options(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    request(
        Method::OPTIONS,
        uri,
        headers.iter().map(|(k, v)| (*k, hv(v))).collect(),
    )
}

const PREFLIGHT: &[(&str, &str)] = &[
    ("origin", "https://app.example"),
    ("access-control-request-method", "GET"),
    ("access-control-request-headers", "authorization"),
];

#[tokio::test]
async fn preflight_passes_through_unauthenticated() {
    let out = send(
        preflight_app(StatusCode::NO_CONTENT),
        options("/me", PREFLIGHT),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.events.is_empty(), "{:#?}", out.events);
    assert!(out.header("www-authenticate").is_none());
}

#[tokio::test]
async fn preflight_answered_401_by_the_app_is_logged_as_preflight_blocked() {
    for status in [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN] {
        let out = send(preflight_app(status), options("/me?cb=123456", PREFLIGHT)).await;
        assert_eq!(
            out.status, status,
            "never a rejection: the app's answer stays"
        );
        let e = out.event();
        assert_eq!(e.level, Level::ERROR);
        assert_eq!(e.field("reason"), "preflight_blocked");
        assert_eq!(e.field("status"), status.as_u16().to_string());
        assert_eq!(e.field("method"), "OPTIONS");
        assert_eq!(e.field("path"), "/me");
        assert_eq!(Some(e.field("request_id")), out.header("x-request-id"));
        assert_eq!(e.field("hint"), Reason::PreflightBlocked.hint());
    }
}

#[tokio::test]
async fn options_without_preflight_headers_is_authenticated() {
    for headers in [&[][..], &PREFLIGHT[..1], &PREFLIGHT[1..2]] {
        let out = send(
            preflight_app(StatusCode::NO_CONTENT),
            options("/me", headers),
        )
        .await;
        rejected(&out, Production, missing_at("OPTIONS", "/me"));
    }
}

// ---------------------------------------------------------------------------------------
// Realm
// ---------------------------------------------------------------------------------------

/// `Challenge::realm` documents "control characters are dropped": the realm parses and
/// holds no CR or LF, on 401 and on 400.
#[tokio::test]
async fn custom_realm() {
    for (realm, shown, malformed) in [
        ("my \"realm\"\r\n", "my \"realm\"", "Bearer a b"),
        ("orders", "orders", "Bearer =="),
    ] {
        let app = || bearer_app(layer(Production).realm(realm));
        let out = send(app(), get("/me", &[])).await;
        rejected(&out, Production, missing().realm(shown));
        let out = send(app(), get("/me", &[("authorization", malformed)])).await;
        let e = want(
            "authorization_malformed",
            "header:authorization",
            Some("Bearer"),
        );
        rejected(&out, Production, e.realm(shown));
    }
}

// ---------------------------------------------------------------------------------------
// Request id (`send` asserts a sane one sent is echoed, in the body and the log too)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn incoming_request_id_is_echoed_and_logged() {
    let out = send(app(Production), get("/me", &[("x-request-id", "abc-123")])).await;
    rejected(&out, Production, missing().field("request_id", "abc-123"));
    // Also on a request that reaches the handler.
    let auth = bearer(&token());
    let headers = [
        ("x-request-id", "abc-123"),
        ("authorization", auth.as_str()),
    ];
    send(app(Production), get("/me", &headers)).await.ok();
}

#[tokio::test]
async fn request_id_of_128_visible_characters_is_kept() {
    let id: String = "r".repeat(100) + "!#$%&'*+-.^_`|~:/?=@[]{}()<>,;\"\\";
    let id = &id[..128];
    let out = send(app(Production), get("/me", &[("x-request-id", id)])).await;
    assert_eq!(out.event().field("request_id"), id);
}

#[tokio::test]
async fn insane_request_ids_are_replaced() {
    for (label, sent) in [
        ("200 characters", hv("a".repeat(200))),
        ("129 characters", hv("a".repeat(129))),
        ("with a space", hv("abc 123")),
        ("non-ASCII", hv("req-\u{e9}t\u{e9}-1")),
        ("empty", hv("")),
        ("tab", hv("abc\t123")),
    ] {
        let req = request(Method::GET, "/me", vec![("x-request-id", sent.clone())]);
        let out = send(app(Production), req).await;
        let id = out.header("x-request-id").expect("x-request-id");
        assert_ne!(id.as_bytes(), sent.as_bytes(), "{label}: kept as sent");
        assert_generated_id(label, id);
        assert_eq!(out.event().field("request_id"), id, "{label}");
    }
}

#[tokio::test]
async fn generated_request_ids_differ() {
    let a = send(app(Production), get("/me", &[])).await;
    let b = send(app(Production), get("/me", &[])).await;
    let (ia, ib) = (
        a.header("x-request-id").unwrap(),
        b.header("x-request-id").unwrap(),
    );
    assert_generated_id("first", ia);
    assert_generated_id("second", ib);
    assert_ne!(ia, ib);
    assert_eq!(a.event().field("request_id"), ia);
    assert_eq!(b.event().field("request_id"), ib);
}
