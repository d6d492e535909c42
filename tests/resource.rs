//! RFC 9728 protected resource metadata (and what MCP asks of a server), RFC 9470 step-up:
//! standards.md R-52..R-58.
//!
//! Every challenge is parsed by `http-auth` (in `send`); the contract of each rejection is
//! `common::row`.

mod common;
use common::*;
use tower::Layer as _;

use auth_diagnostics::authz::{RequireScope, RequireStepUp, ResourceMetadata};
use axum::routing::get as route_get;
use axum::Router;
use serde_json::json;
use std::time::Duration;

const RESOURCE: &str = "https://api.test/mcp";
const METADATA: &str = "https://api.test/.well-known/oauth-protected-resource/mcp";
const AS: &str = "https://login.test";

fn meta() -> ResourceMetadata {
    ResourceMetadata::new(RESOURCE)
        .authorization_servers([AS])
        .scopes_supported(["mcp:tools", "mcp:admin"])
}

/// `/mcp` and `/mcp/admin` (scope `mcp:admin` too) behind a layer that publishes the
/// metadata and requires `mcp:tools`; the layer wraps the whole router, so it sees the
/// well-known path too.
fn mcp_app(mode: DetailMode) -> Router {
    Router::new()
        .route("/mcp", route_get(|| async { "tools" }))
        .route(
            "/mcp/admin",
            route_get(|| async { "admin" }).route_layer(RequireScope::new(["mcp:admin"])),
        )
        .layer(
            layer(mode)
                .bearer(jwt())
                .resource_metadata(meta())
                .require_scope(["mcp:tools"]),
        )
}

fn token(scope: &str) -> String {
    hs256(&claims(json!({ "scope": scope })))
}

#[tokio::test]
async fn the_metadata_document_is_served_unauthenticated_at_the_path_inserted_url() {
    // 200, application/json, `resource` identical to the identifier.
    let out = send(
        mcp_app(DetailMode::Production),
        get("/.well-known/oauth-protected-resource/mcp", &[]),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text());
    assert_eq!(out.header("content-type"), Some("application/json"));
    assert!(out.header("cache-control").unwrap().contains("max-age"));
    assert_eq!(out.header("access-control-allow-origin"), Some("*"));
    assert!(out.events.is_empty(), "{:#?}", out.events);
    let doc = out.json();
    assert_eq!(doc["resource"], RESOURCE);
    assert_eq!(doc["authorization_servers"], json!([AS]));
    assert_eq!(doc["scopes_supported"], json!(["mcp:tools", "mcp:admin"]));
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    // zero-valued parameters are omitted.
    assert!(doc
        .as_object()
        .unwrap()
        .values()
        .all(|v| v != &json!([]) && v != &json!("")));

    // HEAD: the headers; OPTIONS: CORS for browser clients; anything else: 405.
    for (method, status) in [
        (Method::HEAD, 200),
        (Method::OPTIONS, 204),
        (Method::POST, 405),
    ] {
        let path = "/.well-known/oauth-protected-resource/mcp";
        let out = send(
            mcp_app(DetailMode::Production),
            request(method.clone(), path, vec![]),
        )
        .await;
        assert_eq!(out.status, status, "{method}");
        assert!(out.body.is_empty(), "{method}");
        assert_eq!(out.header("allow"), Some("GET, HEAD, OPTIONS"), "{method}");
        if method == Method::OPTIONS {
            let allowed = out.header("access-control-allow-methods").unwrap();
            assert!(allowed.contains("GET"), "{allowed}");
        }
    }
}

#[tokio::test]
async fn the_metadata_router_serves_the_same_document_where_the_layer_does_not_see_the_path() {
    let app: Router = Router::new()
        .route("/mcp", route_get(|| async { "tools" }))
        .layer(
            layer(DetailMode::Production)
                .bearer(jwt())
                .resource_metadata(meta()),
        )
        .merge(meta().router())
        // As in the demo: an outer layer that authenticates nothing gives every answer
        // its request id.
        .layer(AuthDiagnostics::new());
    let out = send(app, get("/.well-known/oauth-protected-resource/mcp", &[])).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json(), meta().document());
    assert_eq!(meta().metadata_url(), METADATA);
    assert_eq!(
        meta().well_known_path(),
        "/.well-known/oauth-protected-resource/mcp"
    );
}

#[tokio::test]
async fn a_request_without_a_token_gets_the_metadata_url_and_every_required_scope() {
    // 401 (never 400) with no error, resource_metadata, and scope.
    for mode in [DetailMode::Production, DetailMode::Verbose] {
        let out = send(mcp_app(mode), get("/mcp", &[])).await;
        out.check(&expect("credentials_missing").mode(mode));
        let c = out.challenge();
        assert_eq!(c.param("resource_metadata"), Some(METADATA), "{c:?}");
        assert_eq!(c.param("scope"), Some("mcp:tools"), "{c:?}");
        assert_eq!(c.names(), ["realm", "resource_metadata", "scope"]);
    }
}

#[tokio::test]
async fn an_invalid_token_gets_invalid_token_with_the_metadata_url() {
    let expired = hs256(&claims(
        json!({ "scope": "mcp:tools", "exp": now() - 3600 }),
    ));
    let out = send(
        mcp_app(DetailMode::Production),
        get("/mcp", &[("authorization", &bearer(&expired))]),
    )
    .await;
    out.check(&expect("token_expired"));
    let c = out.challenge();
    assert_eq!(c.param("resource_metadata"), Some(METADATA));
    assert_eq!(c.param("scope"), Some("mcp:tools"));
}

#[tokio::test]
async fn a_token_without_the_layers_scope_gets_403_insufficient_scope_with_scope_and_metadata() {
    // 403, error="insufficient_scope", scope, resource_metadata.
    let out = send(
        mcp_app(DetailMode::Production),
        get("/mcp", &[("authorization", &bearer(&token("read")))]),
    )
    .await;
    out.check(&expect("insufficient_scope").field("scope", "mcp:tools"));
    let c = out.challenge();
    assert_eq!(c.param("scope"), Some("mcp:tools"));
    assert_eq!(c.param("resource_metadata"), Some(METADATA));

    let ok = send(
        mcp_app(DetailMode::Production),
        get("/mcp", &[("authorization", &bearer(&token("mcp:tools")))]),
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.text(), "tools");
}

#[tokio::test]
async fn a_routes_own_scope_failure_names_that_scope_and_the_metadata_url() {
    let out = send(
        mcp_app(DetailMode::Production),
        get(
            "/mcp/admin",
            &[("authorization", &bearer(&token("mcp:tools")))],
        ),
    )
    .await;
    out.check(&expect("insufficient_scope").field("scope", "mcp:admin"));
    // the challenge names every scope the request needs, the layer's first; the log
    // keeps the route's own requirement.
    let c = out.challenge();
    assert_eq!(c.param("scope"), Some("mcp:tools mcp:admin"));
    assert_eq!(out.problem()["required_scope"], "mcp:tools mcp:admin");
    assert_eq!(c.param("resource_metadata"), Some(METADATA));
    let ok = send(
        mcp_app(DetailMode::Production),
        get(
            "/mcp/admin",
            &[("authorization", &bearer(&token("mcp:tools mcp:admin")))],
        ),
    )
    .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn other_schemes_challenges_carry_no_resource_metadata() {
    let app: Router = Router::new()
        .route("/any", route_get(|| async { "ok" }))
        .layer(
            layer(DetailMode::Production)
                .bearer(jwt())
                .basic(auth_diagnostics::basic::BasicAuthenticator::new(
                    check_password,
                ))
                .resource_metadata(meta()),
        );
    let out = send(app, get("/any", &[])).await;
    out.check(&expect("credentials_missing").schemes(&["Basic", "Bearer"]));
    let all = out.challenges();
    assert_eq!(all[0].param("resource_metadata"), None, "{all:?}");
    assert_eq!(all[1].param("resource_metadata"), Some(METADATA), "{all:?}");
}

#[test]
fn a_misconfigured_document_is_refused_at_start_up() {
    let build = |m: ResourceMetadata| {
        std::panic::catch_unwind(|| {
            let _ = AuthDiagnostics::new().resource_metadata(m).layer(());
        })
    };
    for (m, says) in [
        (
            meta().field("resource", json!("https://other.test/mcp")),
            "resource",
        ),
        (ResourceMetadata::new(RESOURCE), "authorization server"),
        (
            ResourceMetadata::new("http://api.test/mcp").authorization_servers([AS]),
            "https",
        ),
        (
            ResourceMetadata::new("https://api.test/mcp#x").authorization_servers([AS]),
            "fragment",
        ),
        (
            meta().bearer_methods_supported(["cookie"]),
            "bearer_methods_supported",
        ),
        (
            meta().field("jwks_uri", json!("http://api.test/jwks")),
            "jwks_uri",
        ),
        (
            meta().field(
                "resource_signing_alg_values_supported",
                json!(["RS256", "none"]),
            ),
            "none",
        ),
    ] {
        let message = panic_message(build(m));
        assert!(message.contains(says), "{says}: {message}");
    }
    // Loopback http, and any http after allow_http, are accepted.
    build(
        ResourceMetadata::new("http://127.0.0.1:3000/mcp")
            .authorization_servers(["http://127.0.0.1:4000"]),
    )
    .unwrap();
    build(
        ResourceMetadata::new("http://api.test/mcp")
            .authorization_servers([AS])
            .allow_http(),
    )
    .unwrap();
}

/// The document promises only what the layer reads: a token in the `Authorization`
/// header. `query` and `body` (RFC 6750 §2.2, §2.3) are methods it never reads, so a
/// client that believed the document would get 401s; they are refused when the layer or
/// the metadata router is built, however they are set.
#[test]
fn bearer_methods_the_layer_does_not_read_are_refused_at_start_up() {
    let build = |m: ResourceMetadata| {
        std::panic::catch_unwind(|| {
            let _ = AuthDiagnostics::new().resource_metadata(m).layer(());
        })
    };
    for m in [
        meta().bearer_methods_supported(["query"]),
        meta().bearer_methods_supported(["body"]),
        meta().bearer_methods_supported(["header", "query"]),
        meta().bearer_methods_supported(["header", "body"]),
        meta().bearer_methods_supported(["Header"]),
        meta().field("bearer_methods_supported", json!(["header", "query"])),
        meta().field("bearer_methods_supported", json!("query")),
        meta().field("bearer_methods_supported", json!(["header", 7])),
    ] {
        let message = panic_message(build(m.clone()));
        assert!(
            message.contains("bearer_methods_supported") && message.contains("header"),
            "{m:?}: {message}"
        );
        let router = std::panic::catch_unwind(|| {
            let _: Router = m.router();
        });
        assert!(router.is_err(), "the router too: {m:?}");
    }
    // What the layer reads, and an empty list (left out of the document), are fine.
    build(meta()).unwrap();
    build(meta().bearer_methods_supported(["header"])).unwrap();
    build(meta().bearer_methods_supported(Vec::<String>::new())).unwrap();
    assert_eq!(
        meta().document()["bearer_methods_supported"],
        json!(["header"])
    );
}

// Step-up (RFC 9470) --------------------------------------------------------------------

fn step_up_app(mode: DetailMode, rule: RequireStepUp) -> Router {
    Router::new()
        .route(
            "/transfer",
            route_get(|| async { "sent" }).route_layer(rule),
        )
        .layer(layer(mode).bearer(jwt()).resource_metadata(meta()))
}

fn mfa() -> RequireStepUp {
    RequireStepUp::new()
        .acr_values(["urn:test:mfa", "urn:test:hwk"])
        .max_age(Duration::from_secs(300))
}

#[tokio::test]
async fn a_weak_login_gets_insufficient_user_authentication_with_acr_values_and_max_age() {
    // error, acr_values (space-separated, in order), max_age, on a 401.
    let weak = hs256(&claims(
        json!({ "acr": "urn:test:pwd", "auth_time": now() - 10 }),
    ));
    for mode in [DetailMode::Production, DetailMode::Verbose] {
        let out = send(
            step_up_app(mode, mfa()),
            get("/transfer", &[("authorization", &bearer(&weak))]),
        )
        .await;
        let checked = out.check(
            &expect("insufficient_user_authentication")
                .mode(mode)
                .field("check", "acr")
                .field("claim", "acr")
                .field("sub", "alice"),
        );
        let c = out.challenge();
        assert_eq!(c.param("acr_values"), Some("urn:test:mfa urn:test:hwk"));
        assert_eq!(c.param("max_age"), Some("300"));
        // RFC 9728 §5.1: resource_metadata may accompany max_age.
        assert_eq!(c.param("resource_metadata"), Some(METADATA));
        // The log says what the token had and what was required.
        let message = checked.message();
        assert!(
            message.contains("urn:test:pwd") && message.contains("urn:test:mfa"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn an_old_login_or_none_at_all_falls_short_of_max_age() {
    let old = hs256(&claims(
        json!({ "acr": "urn:test:mfa", "auth_time": now() - 3600 }),
    ));
    let out = send(
        step_up_app(DetailMode::Verbose, mfa()),
        get("/transfer", &[("authorization", &bearer(&old))]),
    )
    .await;
    let checked = out.check(
        &expect("insufficient_user_authentication")
            .verbose()
            .field("check", "auth_time"),
    );
    assert!(
        checked.message().contains("3600 s ago"),
        "{}",
        checked.message()
    );

    let no_time = hs256(&claims(json!({ "acr": "urn:test:hwk" })));
    let out = send(
        step_up_app(DetailMode::Production, mfa()),
        get("/transfer", &[("authorization", &bearer(&no_time))]),
    )
    .await;
    out.check(&expect("insufficient_user_authentication").field("check", "auth_time"));

    // acr as a number is not an acr.
    let odd = hs256(&claims(json!({ "acr": 2, "auth_time": now() })));
    let out = send(
        step_up_app(DetailMode::Production, mfa()),
        get("/transfer", &[("authorization", &bearer(&odd))]),
    )
    .await;
    out.check(&expect("insufficient_user_authentication").field("check", "acr"));
}

#[tokio::test]
async fn a_strong_recent_login_passes_and_each_requirement_stands_alone() {
    let good = hs256(&claims(
        json!({ "acr": "urn:test:hwk", "auth_time": now() - 299 }),
    ));
    let out = send(
        step_up_app(DetailMode::Production, mfa()),
        get("/transfer", &[("authorization", &bearer(&good))]),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text());

    // max_age alone: any acr, and the challenge names max_age only.
    let rule = RequireStepUp::new().max_age(Duration::from_secs(60));
    let old = hs256(&claims(json!({ "auth_time": now() - 120 })));
    let out = send(
        step_up_app(DetailMode::Production, rule),
        get("/transfer", &[("authorization", &bearer(&old))]),
    )
    .await;
    out.check(&expect("insufficient_user_authentication"));
    let c = out.challenge();
    assert_eq!(
        (c.param("max_age"), c.param("acr_values")),
        (Some("60"), None)
    );
}

#[tokio::test]
async fn an_invalid_token_is_invalid_token_first_and_leaks_no_requirement() {
    // a forged token with a weak acr learns nothing of the step-up rule.
    let mut forged = hs256(&claims(json!({ "acr": "urn:test:pwd" })));
    forged.push('x');
    let out = send(
        step_up_app(DetailMode::Production, mfa()),
        get("/transfer", &[("authorization", &bearer(&forged))]),
    )
    .await;
    out.check(&expect("token_signature_invalid"));
    let c = out.challenge();
    assert_eq!(
        (c.param("acr_values"), c.param("max_age")),
        (None, None),
        "{c:?}"
    );
    assert!(!out.text().contains("urn:test:mfa"));
}

// The demo's routes ---------------------------------------------------------------------

#[tokio::test]
async fn the_demo_serves_the_mcp_resource_and_its_metadata() {
    let cfg = demo_config(DetailMode::Verbose);
    let resource = format!("http://{}/mcp", cfg.addr);
    let out = send(
        demo_app(DetailMode::Verbose),
        get("/.well-known/oauth-protected-resource/mcp", &[]),
    )
    .await;
    assert_eq!(out.status, 200);
    let doc = out.json();
    assert_eq!(doc["resource"], resource);
    assert_eq!(doc["authorization_servers"], json!([ISSUER]));
    assert_eq!(doc["scopes_supported"], json!(["mcp:tools"]));
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));

    let out = send(demo_app(DetailMode::Verbose), get("/mcp", &[])).await;
    out.check(&expect("credentials_missing").verbose().realm("demo"));
    let c = out.challenge();
    let url = format!(
        "http://{}/.well-known/oauth-protected-resource/mcp",
        cfg.addr
    );
    assert_eq!(c.param("resource_metadata"), Some(url.as_str()));
    assert_eq!(c.param("scope"), Some("mcp:tools"));

    let ok = send(
        demo_app(DetailMode::Verbose),
        get("/mcp", &[("authorization", &bearer(&token("mcp:tools")))]),
    )
    .await;
    assert_eq!(ok.ok()["id"], "alice");
}

#[tokio::test]
async fn the_demo_requires_a_recent_mfa_login_on_stepup() {
    let weak = hs256(&claims(
        json!({ "acr": "urn:demo:pwd", "auth_time": now() }),
    ));
    let out = send(
        demo_app(DetailMode::Verbose),
        get("/stepup", &[("authorization", &bearer(&weak))]),
    )
    .await;
    out.check(
        &expect("insufficient_user_authentication")
            .verbose()
            .realm("demo"),
    );
    let c = out.challenge();
    assert_eq!(c.param("acr_values"), Some("urn:demo:mfa"));
    assert_eq!(c.param("max_age"), Some("300"));
    let strong = hs256(&claims(
        json!({ "acr": "urn:demo:mfa", "auth_time": now() - 5 }),
    ));
    let ok = send(
        demo_app(DetailMode::Verbose),
        get("/stepup", &[("authorization", &bearer(&strong))]),
    )
    .await;
    assert_eq!(ok.ok()["id"], "alice");
}

#[tokio::test]
async fn dpop_challenges_name_the_metadata_and_the_scope_too() {
    // resource_metadata "MAY also be used" with DPoP; both challenges carry it.
    let app: Router = Router::new()
        .route("/mcp", route_get(|| async { "tools" }))
        .layer(
            layer(DetailMode::Production)
                .bearer(jwt())
                .dpop(auth_diagnostics::dpop::Dpop::new(jwt()).public_origin("http://api.test"))
                .resource_metadata(meta())
                .require_scope(["mcp:tools"]),
        );
    let out = send(app, get("/mcp", &[])).await;
    out.check(&expect("credentials_missing").schemes(&["Bearer", "DPoP"]));
    for c in out.challenges() {
        assert_eq!(c.param("resource_metadata"), Some(METADATA), "{c:?}");
        assert_eq!(c.param("scope"), Some("mcp:tools"), "{c:?}");
    }
    assert_eq!(out.challenges()[1].param("algs"), Some("ES256 PS256"));
}
