//! Report-only mode (`AuthDiagnostics::report_only`): every check runs, a request the
//! layer would refuse reaches the handler anonymously (no `Principal`), and the refusal is
//! logged with `enforced=false` and counted, by reason, in
//! `auth_diagnostics_would_refuse_total`. A valid request passes with its principal.
#![cfg(feature = "metrics")]

mod common;
use common::*;

use auth_diagnostics::basic::BasicAuthenticator;
use auth_diagnostics::Principal;
use axum::routing::get as route;
use axum::Router;
use http::header::WWW_AUTHENTICATE;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;
use std::collections::BTreeMap;
use std::future::Future;

const FAILURES: &str = "auth_diagnostics_failures_total";
const WOULD_REFUSE: &str = "auth_diagnostics_would_refuse_total";

/// Counter increments since the previous call, by name and sorted `k=v` labels.
struct Metrics(Snapshotter);

impl Metrics {
    fn take(&self) -> BTreeMap<(String, String), u64> {
        let mut out = BTreeMap::new();
        for (key, _, _, value) in self.0.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            if let DebugValue::Counter(n) = value {
                if n > 0 {
                    out.insert((key.name().to_owned(), labels.join(",")), n);
                }
            }
        }
        out
    }
}

/// Runs `test` on a current-thread runtime with a recorder local to this test.
fn run<F, Fut>(test: F)
where
    F: FnOnce(Metrics) -> Fut,
    Fut: Future<Output = ()>,
{
    let recorder = DebuggingRecorder::new();
    let m = Metrics(recorder.snapshotter());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || rt.block_on(test(m)));
}

/// `{"sub"}` of the principal, or `{"anonymous": true}`.
async fn who(p: Option<Principal>) -> axum::Json<Value> {
    axum::Json(match p {
        Some(p) => json!({ "sub": p.id() }),
        None => json!({ "anonymous": true }),
    })
}

/// `/me` behind a report-only layer with the test authenticator and `edit`'s settings.
fn app(edit: impl FnOnce(AuthDiagnostics) -> AuthDiagnostics) -> Router {
    Router::new()
        .route("/me", route(who))
        .layer(edit(layer(DetailMode::Verbose).bearer(jwt()).report_only()))
}

fn with_token(token: &str) -> http::Request<axum::body::Body> {
    get("/me", &[("authorization", &bearer(token))])
}

/// Asserts `out` reached the handler anonymously, with no trace of a refusal in the
/// response, and logged one would-be refusal for `reason` (answered `status`).
#[track_caller]
fn reached_anonymously(out: &Outcome, reason: &str, status: u16) {
    assert_eq!(out.status, StatusCode::OK, "{}", out.text());
    assert_eq!(out.json(), json!({ "anonymous": true }));
    assert!(
        out.headers.get(WWW_AUTHENTICATE).is_none(),
        "{:?}",
        out.headers
    );
    let e = out.event();
    assert_eq!(e.field("reason"), reason, "{e:#?}");
    assert_eq!(e.field("enforced"), "false");
    assert_eq!(e.field("status"), status.to_string());
}

#[test]
fn a_valid_token_passes_with_its_principal_and_logs_nothing() {
    run(|m| async move {
        let out = send(app(|l| l), with_token(&hs256(&good_claims()))).await;
        assert_eq!(out.status, StatusCode::OK);
        assert_eq!(out.json(), json!({ "sub": "alice" }));
        assert!(out.events.is_empty(), "{:#?}", out.events);
        let taken = m.take();
        assert!(
            taken
                .keys()
                .all(|(n, _)| n != WOULD_REFUSE && n != FAILURES),
            "{taken:#?}"
        );
    });
}

#[test]
fn would_be_refusals_reach_the_handler_anonymously_logged_and_counted() {
    run(|m| async move {
        let expired = hs256(&claims(json!({ "exp": now() - 600, "iat": now() - 4000 })));
        let wrong_aud = hs256(&claims(json!({ "aud": "another-api" })));
        let cases = [
            (get("/me", &[]), "credentials_missing", 401, "none"),
            (with_token(&expired), "token_expired", 401, "bearer"),
            (
                with_token(&wrong_aud),
                "token_audience_mismatch",
                401,
                "bearer",
            ),
        ];
        for (req, reason, status, scheme) in cases {
            let out = send(app(|l| l), req).await;
            reached_anonymously(&out, reason, status);
            let taken = m.take();
            let failure = format!("reason={reason},scheme={scheme},status={status}");
            assert_eq!(
                taken.get(&(FAILURES.to_owned(), failure)),
                Some(&1),
                "{taken:#?}"
            );
            assert_eq!(
                taken.get(&(WOULD_REFUSE.to_owned(), format!("reason={reason}"))),
                Some(&1),
                "{taken:#?}"
            );
        }
    });
}

/// A token that verified but lacks the layer's scope is a refusal too: the handler never
/// sees its principal.
#[test]
fn a_verified_token_refused_by_a_scope_passes_without_its_principal() {
    run(|m| async move {
        let app = app(|l| l.require_scope(["admin"]));
        let out = send(app.clone(), with_token(&hs256(&good_claims()))).await;
        reached_anonymously(&out, "insufficient_scope", 403);
        let taken = m.take();
        let key = (
            WOULD_REFUSE.to_owned(),
            "reason=insufficient_scope".to_owned(),
        );
        assert_eq!(taken.get(&key), Some(&1), "{taken:#?}");
        assert!(
            taken
                .keys()
                .all(|(n, _)| n != "auth_diagnostics_successes_total"),
            "{taken:#?}"
        );

        let admin = hs256(&claims(json!({ "scope": "admin" })));
        let out = send(app, with_token(&admin)).await;
        assert_eq!(out.json(), json!({ "sub": "alice" }));
        assert!(out.events.is_empty(), "{:#?}", out.events);
    });
}

/// The account hook refuses after verification (a future): the same.
#[test]
fn an_account_refused_by_the_hook_passes_without_its_principal() {
    run(|_m| async move {
        let app = app(|l| l.account_status(account));
        let dora = hs256(&claims(json!({ "sub": "dora" })));
        let out = send(app, with_token(&dora)).await;
        reached_anonymously(&out, "account_disabled", 403);
    });
}

/// An authenticator that cannot answer (503) is a would-be refusal as well.
#[test]
fn an_unavailable_authenticator_passes_anonymously() {
    run(|m| async move {
        let app = Router::new().route("/me", route(who)).layer(
            layer(DetailMode::Verbose)
                .basic(BasicAuthenticator::new(store_down))
                .report_only(),
        );
        let out = send(app, get("/me", &[("authorization", &basic("bob", "pw"))])).await;
        reached_anonymously(&out, "authenticator_unavailable", 503);
        assert!(
            out.headers.get("retry-after").is_none(),
            "{:?}",
            out.headers
        );
        let taken = m.take();
        let key = (
            WOULD_REFUSE.to_owned(),
            "reason=authenticator_unavailable".to_owned(),
        );
        assert_eq!(taken.get(&key), Some(&1), "{taken:#?}");
    });
}

/// Enforced events keep their fields: no `enforced` field.
#[test]
fn an_enforcing_layer_logs_no_enforced_field() {
    run(|_m| async move {
        let app = Router::new()
            .route("/me", route(who))
            .layer(layer(DetailMode::Verbose).bearer(jwt()));
        let out = send(app, get("/me", &[])).await;
        assert_eq!(out.status, StatusCode::UNAUTHORIZED);
        assert_eq!(out.event().get("enforced"), None);
    });
}

/// Report-only on one route, enforcing on another, and an enforcing layer inside a
/// report-only one: each layer answers as it is configured.
#[test]
fn a_router_mixing_report_only_and_enforcing_layers() {
    run(|m| async move {
        let strict = layer(DetailMode::Verbose).bearer(jwt());
        let soft = layer(DetailMode::Verbose).bearer(jwt()).report_only();
        let app = Router::new()
            .route("/soft", route(who).route_layer(soft.clone()))
            .route("/strict", route(who).route_layer(strict.clone()))
            .route("/both", route(who).route_layer(strict).route_layer(soft));

        let out = send(app.clone(), get("/soft", &[])).await;
        reached_anonymously(&out, "credentials_missing", 401);

        let out = send(app.clone(), get("/strict", &[])).await;
        assert_eq!(out.status, StatusCode::UNAUTHORIZED);
        assert!(out.headers.get(WWW_AUTHENTICATE).is_some());
        assert_eq!(out.event().get("enforced"), None);

        // The report-only layer (outer) reports, the enforcing one (inner) refuses.
        let out = send(app.clone(), get("/both", &[])).await;
        assert_eq!(out.status, StatusCode::UNAUTHORIZED);
        assert!(out.headers.get(WWW_AUTHENTICATE).is_some());
        let enforced: Vec<_> = out.events.iter().map(|e| e.get("enforced")).collect();
        assert_eq!(enforced, [Some("false"), None], "{:#?}", out.events);

        let out = send(
            app,
            get(
                "/both",
                &[("authorization", &bearer(&hs256(&good_claims())))],
            ),
        )
        .await;
        assert_eq!(out.json(), json!({ "sub": "alice" }));
        m.take();
    });
}

/// With optional authentication too, a guest (no credentials) is no would-be refusal;
/// a bad token is.
#[test]
fn optional_and_report_only_tell_a_guest_from_a_refusal() {
    run(|m| async move {
        let app = app(|l| l.optional());
        let out = send(app.clone(), get("/me", &[])).await;
        assert_eq!(out.json(), json!({ "anonymous": true }));
        assert!(
            out.events.iter().all(|e| e.get("enforced").is_none()),
            "{:#?}",
            out.events
        );
        assert!(
            m.take().keys().all(|(n, _)| n != WOULD_REFUSE),
            "a guest is no refusal"
        );

        let expired = hs256(&claims(json!({ "exp": now() - 600, "iat": now() - 4000 })));
        let out = send(app, with_token(&expired)).await;
        reached_anonymously(&out, "token_expired", 401);
    });
}

/// The key source is down (nothing listens): 503 `key_source_unavailable` would have
/// been answered; the request passes anonymously.
#[test]
fn a_key_source_that_is_down_passes_anonymously() {
    use auth_diagnostics::jwt::JwtAuthenticator;
    use auth_diagnostics::keys::KeySource;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    run(|m| async move {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let iss = format!("http://{addr}");
        let jwt = JwtAuthenticator::from_source(KeySource::jwks(format!("{iss}/jwks")))
            .issuer(&iss)
            .audience(AUDIENCE);
        let app = app_with(jwt);
        let pem = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/keys/rsa_private.pem"
        ))
        .unwrap();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k1".to_owned());
        let token = sign(
            &header,
            &claims(json!({ "iss": iss })),
            &EncodingKey::from_rsa_pem(&pem).unwrap(),
        );
        let out = send(app, with_token(&token)).await;
        reached_anonymously(&out, "key_source_unavailable", 503);
        let taken = m.take();
        let key = (
            WOULD_REFUSE.to_owned(),
            "reason=key_source_unavailable".to_owned(),
        );
        assert_eq!(taken.get(&key), Some(&1), "{taken:#?}");
    });
}

/// `/me` behind a report-only layer with `jwt`.
fn app_with(jwt: auth_diagnostics::jwt::JwtAuthenticator) -> Router {
    Router::new()
        .route("/me", route(who))
        .layer(layer(DetailMode::Verbose).bearer(jwt).report_only())
}

/// The would-be refusal's event is the enforcing layer's, field for field, plus
/// `enforced=false`.
#[test]
fn the_event_is_the_enforcing_layers_plus_enforced_false() {
    run(|_m| async move {
        let expired = hs256(&claims(json!({ "exp": now() - 600, "iat": now() - 4000 })));
        let good = hs256(&good_claims());
        let dora = hs256(&claims(json!({ "sub": "dora" })));
        let plain: fn(AuthDiagnostics) -> AuthDiagnostics = |l| l;
        let scope: fn(AuthDiagnostics) -> AuthDiagnostics = |l| l.require_scope(["admin"]);
        let hook: fn(AuthDiagnostics) -> AuthDiagnostics = |l| l.account_status(account);
        for (token, edit) in [(expired, plain), (good, scope), (dora, hook)] {
            let enforcing = Router::new()
                .route("/me", route(who))
                .layer(edit(layer(DetailMode::Verbose).bearer(jwt())));
            let reporting = app(edit);
            let a = send(enforcing, with_token(&token)).await;
            let b = send(reporting, with_token(&token)).await;
            let strip = |e: &common::Captured| {
                let mut f = e.fields.clone();
                for volatile in ["request_id", "repro", "enforced"] {
                    f.remove(volatile);
                }
                f
            };
            assert_eq!(strip(a.event()), strip(b.event()));
            assert_eq!(b.event().field("enforced"), "false");
        }
    });
}

/// The demo's `GET /report-only` (shared/spec/demo.md): always the handler's answer.
#[tokio::test]
async fn the_demo_reports_only_on_its_report_only_route() {
    let demo = demo_app(DetailMode::Verbose);
    let out = send(demo.clone(), get("/report-only", &[])).await;
    assert_eq!(out.status, 200, "{}", out.text());
    assert_eq!(out.json()["anonymous"], true);
    let expired = hs256(&claims(json!({ "exp": now() - 3600 })));
    let out = send(
        demo.clone(),
        get("/report-only", &[("authorization", &bearer(&expired))]),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text());
    assert_eq!(out.json()["anonymous"], true);
    assert!(out.header("www-authenticate").is_none());
    assert_eq!(out.event().field("reason"), "token_expired");
    assert_eq!(out.event().field("enforced"), "false");
    let valid = hs256(&good_claims());
    let out = send(
        demo,
        get("/report-only", &[("authorization", &bearer(&valid))]),
    )
    .await;
    assert_eq!(out.json()["sub"], "alice", "{}", out.text());
}
