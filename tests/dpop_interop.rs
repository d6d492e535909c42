//! The demo against panva's clients: npm `dpop` (interop/dpop-client.mjs) and npm
//! `oauth4webapi` (interop/oauth4webapi-check.mjs), with tokens from a real OpenID provider
//! (npm `oidc-provider`, interop/oidc-provider.mjs) that binds them to DPoP keys
//! (`cnf.jkt`, RFC 9449) when the token request carries a proof.
//!
//! The demo is served in-process on a free loopback port with `DEMO_OIDC_ISSUER` semantics:
//! the provider's issuer, its keys by discovery, and the audience `http://ADDR/mcp`, the
//! demo's RFC 9728 resource, which the provider grants (scope `mcp:tools`) for any loopback
//! `/mcp` URL. The scripts only drive and report; every assertion is here.
//!
//! Both tests need Node (`common::node::interop`): they skip without it, except in CI.
//! Multi-threaded runtime: the demo's key source fetches on a task of its own while the
//! test awaits the scripts.

mod common;
use common::*;

use common::provider::{node_json, Provider};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tokio::task::JoinHandle;

// The demo ------------------------------------------------------------------------------

/// The demo (verbose) on a free loopback port, trusting `issuer` by discovery, with the
/// audience its `/mcp` resource: the base URL and the server task.
async fn serve_demo_for(issuer: &str) -> (String, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let mut cfg = demo_config(DetailMode::Verbose);
    cfg.addr = addr.to_string();
    cfg.issuer = issuer.to_owned();
    cfg.oidc_issuer = Some(issuer.to_owned());
    cfg.audience = format!("{base}/mcp");
    let app = demo::app(&cfg);
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, server)
}

/// Node's `interop/`, the provider started from it, and the demo trusting it: the folder,
/// the provider, the demo's base URL and its server task. `None` without Node outside CI.
async fn provider_and_demo() -> Option<(PathBuf, Provider, String, JoinHandle<()>)> {
    let dir = common::node::interop()?;
    let op = Provider::start_in(&dir, 0).await;
    let (base, server) = serve_demo_for(op.issuer()).await;
    Some((dir, op, base, server))
}

// Challenges ----------------------------------------------------------------------------

/// The challenges in a `WWW-Authenticate` value as fetch gives it (field lines joined by
/// ", "), parsed by `http-auth`: lowercased scheme and parameter names, unescaped values.
#[track_caller]
fn challenges_in(header: &Value) -> Vec<ParsedChallenge> {
    let text = header
        .as_str()
        .unwrap_or_else(|| panic!("no WWW-Authenticate: {header}"));
    http_auth::parse_challenges(text)
        .unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"))
        .iter()
        .map(|c| ParsedChallenge {
            scheme: c.scheme.to_ascii_lowercase(),
            params: c
                .params
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_unescaped()))
                .collect(),
        })
        .collect()
}

/// The only challenge of `case`, with scheme `scheme`.
#[track_caller]
fn only_challenge(name: &str, case: &Value, scheme: &str) -> ParsedChallenge {
    let all = challenges_in(&case["www_authenticate"]);
    assert_eq!(all.len(), 1, "{name}: one challenge: {case}");
    assert_eq!(all[0].scheme, scheme, "{name}: {case}");
    all[0].clone()
}

/// `case` is a 401 with one DPoP challenge carrying `error`, and problem reason `reason`.
#[track_caller]
fn assert_dpop_rejected(cases: &Value, name: &str, error: &str, reason: &str) {
    let case = &cases[name];
    assert_eq!(case["status"], 401, "{name}: {case}");
    let c = only_challenge(name, case, "dpop");
    assert_eq!(c.param("error"), Some(error), "{name}: {case}");
    assert!(
        c.param("algs").is_some(),
        "{name}: algs on every DPoP challenge: {case}"
    );
    assert_eq!(case["reason"], reason, "{name}: {case}");
    assert_eq!(case["content_type"], "application/problem+json", "{name}");
}

// The tests -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panvas_dpop_client_against_the_demo() {
    let Some((dir, op, base, _server)) = provider_and_demo().await else {
        return;
    };
    let resource = format!("{base}/mcp");
    let url = format!("{base}/dpop");
    let out = node_json(
        &dir,
        "dpop-client.mjs",
        &[
            "--issuer",
            op.issuer(),
            "--resource",
            &resource,
            "--url",
            &url,
            "--bearer-url",
            &format!("{base}/me"),
        ],
    )
    .await;

    // The provider bound the tokens to the proof keys.
    let token = &out["token"];
    assert_eq!(token["token_type"], "DPoP", "{token}");
    assert_eq!(token["iss"], op.issuer(), "{token}");
    assert_eq!(token["aud"], resource.as_str(), "{token}");
    assert!(token["cnf_jkt"].is_string(), "{token}");
    assert_eq!(token["cnf_jkt"], token["thumbprint"], "{token}");
    assert_eq!(token["ps256_cnf_jkt"], token["ps256_thumbprint"], "{token}");
    assert_eq!(token["unbound_token_type"], "Bearer", "{token}");
    assert_eq!(token["unbound_cnf"], Value::Null, "{token}");

    let cases = &out["cases"];

    // No credentials: the DPoP challenge names the proof algorithms and no error.
    let none = &cases["no_credentials"];
    assert_eq!(none["status"], 401, "{none}");
    let c = only_challenge("no_credentials", none, "dpop");
    assert_eq!(c.param("algs"), Some("ES256 PS256"), "{none}");
    assert_eq!(c.param("error"), None, "{none}");
    assert_eq!(c.param("realm"), Some("demo"), "{none}");
    assert_eq!(none["reason"], "credentials_missing", "{none}");

    // Right proofs: ES256, PS256, and a query the htu leaves out (RFC 9449 §4.3).
    for name in ["valid", "valid_ps256", "query_ignored"] {
        let case = &cases[name];
        assert_eq!(case["status"], 200, "{name}: {case}");
        assert_eq!(case["www_authenticate"], Value::Null, "{name}: {case}");
        assert_eq!(
            case["body"],
            json!({ "id": "interop", "scheme": "DPoP" }),
            "{name}"
        );
    }

    // Proof defects: invalid_dpop_proof, each its own reason.
    for (name, reason) in [
        ("replayed", "dpop_proof_replayed"),
        ("wrong_htm", "dpop_proof_method_mismatch"),
        ("wrong_htu", "dpop_proof_url_mismatch"),
        ("wrong_origin", "dpop_proof_url_mismatch"),
        ("wrong_host", "dpop_proof_url_mismatch"),
        ("wrong_ath", "dpop_proof_ath_mismatch"),
        ("proof_missing", "dpop_proof_missing"),
        ("proof_garbage", "dpop_proof_malformed"),
        ("rs256_proof", "dpop_proof_algorithm_rejected"),
    ] {
        assert_dpop_rejected(cases, name, "invalid_dpop_proof", reason);
    }
    // A proof without `ath` for a request that carries a token: a missing claim.
    assert_dpop_rejected(
        cases,
        "no_ath",
        "invalid_dpop_proof",
        "dpop_proof_claim_missing",
    );

    // Binding failures: invalid_token (R-48, as in the RFC's example).
    assert_dpop_rejected(cases, "other_key", "invalid_token", "dpop_key_mismatch");
    assert_dpop_rejected(
        cases,
        "unbound_token",
        "invalid_token",
        "dpop_token_unbound",
    );

    // A DPoP-bound token sent as a bearer token is refused.
    let bearer = &cases["as_bearer"];
    assert_eq!(bearer["status"], 401, "{bearer}");
    let c = only_challenge("as_bearer", bearer, "bearer");
    assert_eq!(c.param("error"), Some("invalid_token"), "{bearer}");
    assert_eq!(bearer["reason"], "token_dpop_bound", "{bearer}");
    // On the DPoP route, the Bearer scheme is not one it takes.
    let here = &cases["as_bearer_here"];
    assert_eq!(here["status"], 401, "{here}");
    let c = only_challenge("as_bearer_here", here, "dpop");
    assert_eq!(c.param("error"), None, "{here}");
    assert_eq!(here["reason"], "scheme_not_accepted", "{here}");

    // No server nonce is asked for anywhere.
    for (name, case) in cases.as_object().unwrap() {
        assert_eq!(case["dpop_nonce"], Value::Null, "{name}: {case}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth4webapi_parses_every_challenge_and_discovers_the_resource() {
    let Some((dir, op, base, _server)) = provider_and_demo().await else {
        return;
    };
    let out = node_json(
        &dir,
        "oauth4webapi-check.mjs",
        &["--base", &base, "--issuer", op.issuer()],
    )
    .await;
    let resource = format!("{base}/mcp");
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource/mcp");
    assert_eq!(out["resource"], resource.as_str());

    // Every answer's challenges parse with oauth4webapi, and it reads the same schemes and
    // parameters as http-auth.
    let probes = out["probes"].as_object().expect("probes");
    let mut parsed: BTreeMap<&str, Vec<ParsedChallenge>> = BTreeMap::new();
    for (name, p) in probes {
        assert!(
            p["status"] == 401 || p["status"] == 403,
            "{name}: a rejection: {p}"
        );
        assert_eq!(p["thrown"], Value::Null, "{name}: {p}");
        let theirs = p["parsed"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: oauth4webapi found no challenge: {p}"));
        let theirs: Vec<ParsedChallenge> = theirs
            .iter()
            .map(|c| {
                assert_eq!(c["token68"], Value::Null, "{name}: {p}");
                ParsedChallenge {
                    scheme: c["scheme"].as_str().unwrap().to_owned(),
                    params: c["parameters"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                        .collect(),
                }
            })
            .collect();
        assert_eq!(
            theirs,
            challenges_in(&p["www_authenticate"]),
            "{name}: oauth4webapi and http-auth disagree"
        );
        parsed.insert(name, theirs);
    }
    let one = |name: &str| -> &ParsedChallenge {
        let all = &parsed[name];
        assert_eq!(all.len(), 1, "{name}: {all:?}");
        &all[0]
    };
    let status = |name: &str| probes[name]["status"].as_u64().unwrap();

    // /mcp: every challenge points at the metadata; no token → scope, no
    // error; a token without the scope → 403 insufficient_scope.
    let c = one("mcp_no_token");
    assert_eq!((status("mcp_no_token"), c.scheme.as_str()), (401, "bearer"));
    assert_eq!(c.param("resource_metadata"), Some(metadata_url.as_str()));
    assert_eq!(c.param("scope"), Some("mcp:tools"));
    assert_eq!(c.param("error"), None, "{c:?}");
    let c = one("mcp_bad_token");
    assert_eq!(status("mcp_bad_token"), 401);
    assert_eq!(c.param("error"), Some("invalid_token"));
    assert_eq!(c.param("resource_metadata"), Some(metadata_url.as_str()));
    let c = one("mcp_no_scope");
    assert_eq!(status("mcp_no_scope"), 403);
    assert_eq!(c.param("error"), Some("insufficient_scope"));
    assert_eq!(c.param("scope"), Some("mcp:tools"));
    assert_eq!(c.param("resource_metadata"), Some(metadata_url.as_str()));

    // The other Bearer routes.
    let c = one("me_no_token");
    assert_eq!((status("me_no_token"), c.scheme.as_str()), (401, "bearer"));
    assert_eq!(c.param("realm"), Some("demo"));
    assert_eq!(c.param("error"), None);
    assert_eq!(one("me_bad_token").param("error"), Some("invalid_token"));
    let c = one("admin_no_scope");
    assert_eq!(status("admin_no_scope"), 403);
    assert_eq!(c.param("error"), Some("insufficient_scope"));
    assert_eq!(c.param("scope"), Some("admin"));
    let c = one("dpop_as_bearer");
    assert_eq!(
        (status("dpop_as_bearer"), c.scheme.as_str()),
        (401, "bearer")
    );
    assert_eq!(c.param("error"), Some("invalid_token"));

    // Step-up: a client_credentials token has no acr.
    let c = one("stepup_no_acr");
    assert_eq!(status("stepup_no_acr"), 401);
    assert_eq!(c.param("error"), Some("insufficient_user_authentication"));
    assert_eq!(c.param("acr_values"), Some("urn:demo:mfa"));
    assert_eq!(c.param("max_age"), Some("300"));

    // Two schemes in one joined value, and Basic.
    let mut schemes: Vec<&str> = parsed["any_no_credentials"]
        .iter()
        .map(|c| c.scheme.as_str())
        .collect();
    schemes.sort_unstable();
    assert_eq!(schemes, ["basic", "bearer"]);
    assert_eq!(one("basic_wrong").scheme, "basic");

    // DPoP.
    let c = one("dpop_no_credentials");
    assert_eq!(
        (status("dpop_no_credentials"), c.scheme.as_str()),
        (401, "dpop")
    );
    assert_eq!(c.param("algs"), Some("ES256 PS256"));
    assert_eq!(c.param("error"), None);
    let c = one("dpop_bad_proof");
    assert_eq!(c.scheme, "dpop");
    assert_eq!(c.param("error"), Some("invalid_dpop_proof"));

    // RFC 9728 discovery: the well-known URL oauth4webapi derives from the resource
    // is the one the challenge names, and the document is about that resource.
    let d = &out["discovery"];
    assert_eq!(d["requested_url"], metadata_url.as_str(), "{d}");
    let doc = &d["document"];
    assert_eq!(doc["thrown"], Value::Null, "{doc}");
    assert_eq!(doc["resource"], resource.as_str(), "{doc}");
    assert_eq!(doc["authorization_servers"], json!([op.issuer()]), "{doc}");
    assert_eq!(doc["scopes_supported"], json!(["mcp:tools"]), "{doc}");
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]), "{doc}");
    assert_eq!(d["from_challenge"], *doc, "{d}");

    // The chain an MCP client follows: challenge → metadata → authorization server →
    // token → /mcp.
    let flow = &out["flow"];
    assert_eq!(flow["thrown"], Value::Null, "{flow}");
    assert_eq!(flow["authorization_server"], op.issuer(), "{flow}");
    assert_eq!(flow["token_type"], "bearer", "{flow}");
    assert_eq!(flow["scope"], "mcp:tools", "{flow}");
    assert_eq!(flow["mcp_status"], 200, "{flow}");

    // oauth4webapi's own DPoP: a bound token from the provider, used on /dpop.
    let dpop = &out["dpop"];
    assert_eq!(dpop["thrown"], Value::Null, "{dpop}");
    assert_eq!(dpop["token_type"], "dpop", "{dpop}");
    assert_eq!(dpop["status"], 200, "{dpop}");
}
