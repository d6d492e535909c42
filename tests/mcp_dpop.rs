//! DPoP on an MCP endpoint: `POST /mcp` behind a layer that takes Bearer and DPoP tokens,
//! publishes RFC 9728 metadata and requires a scope, as an MCP server does.
//!
//! - The Bearer challenge comes first in every 401, whichever scheme was configured first,
//!   so that a client that reads `resource_metadata` and `scope` from the field starting
//!   with `Bearer` (the MCP SDKs do, from the fields joined into one) finds them; a 403
//!   speaks the scheme the client used, with every scope needed and `resource_metadata`.
//! - A server nonce stays usable for later requests within its lifetime: a client that
//!   keeps sending the one it was given is let in, request after request (each with a
//!   proof of its own), and only a stale one is asked again.
//! - The metadata lists `dpop_signing_alg_values_supported` and
//!   `dpop_bound_access_tokens_required` through typed builders; `none` or an HMAC
//!   algorithm in that list is a configuration error.
//!
//! Proofs are built here as in tests/dpop.rs: a raw JOSE header over claims, signed with
//! jsonwebtoken; access tokens are HS256 bound by `cnf.jkt`, an RFC 7638 thumbprint.

mod common;
use common::*;

use auth_diagnostics::authz::{RequireScope, ResourceMetadata};
use auth_diagnostics::dpop::Dpop;
use auth_diagnostics::keys::Algorithm;
use auth_diagnostics::layer::{ConfigError, ResourceMistake};
use auth_diagnostics::Principal;
use axum::body::Body;
use axum::routing::post;
use axum::Router;
use http::Request;
use jsonwebtoken::EncodingKey;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The origin clients reach the server at.
const ORIGIN: &str = "https://mcp.test";
const RESOURCE: &str = "https://mcp.test/mcp";
const METADATA: &str = "https://mcp.test/.well-known/oauth-protected-resource/mcp";
const AS: &str = "https://login.test";

/// tests/keys/ec256_private.pem, public point.
const EC256_X: &str = "mOdDdERtdUohEyBt2KLtjJqOcsoVVNPdyU8N2gjwXH4";
const EC256_Y: &str = "QWuiB8Ik1G8LXz9lLyLF3EbQKzVu2Cu0QCHoahdvOSs";

// Clients, proofs and tokens --------------------------------------------------------------

/// A DPoP client: its P-256 key and an access token bound to it with `scope`.
struct Client {
    private: EncodingKey,
    jwk: Value,
    token: String,
}

impl Client {
    fn new(scope: &str) -> Client {
        let dir = env!("CARGO_MANIFEST_DIR");
        let pem = std::fs::read(format!("{dir}/tests/keys/ec256_private.pem")).unwrap();
        let jwk = json!({ "kty": "EC", "crv": "P-256", "x": EC256_X, "y": EC256_Y });
        let jkt = {
            let canonical =
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{EC256_X}","y":"{EC256_Y}"}}"#);
            b64url(&Sha256::digest(canonical.as_bytes()))
        };
        let token = hs256(&claims(json!({ "scope": scope, "cnf": { "jkt": jkt } })));
        Client {
            private: EncodingKey::from_ec_pem(&pem).unwrap(),
            jwk,
            token,
        }
    }

    /// A proof for `htm` on `path` of [`ORIGIN`], with `nonce` if given.
    fn proof(&self, htm: &str, path: &str, nonce: Option<&str>) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk });
        let mut claims = json!({
            "jti": format!("jti-{}-{}", now(), N.fetch_add(1, Ordering::Relaxed)),
            "htm": htm,
            "htu": format!("{ORIGIN}{path}"),
            "iat": now(),
            "ath": b64url(&Sha256::digest(self.token.as_bytes())),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        let part = |v: &Value| b64url(&serde_json::to_vec(v).unwrap());
        let message = format!("{}.{}", part(&header), part(&claims));
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &self.private, Algorithm::ES256)
            .unwrap();
        format!("{message}.{sig}")
    }

    /// `POST path` with the token as DPoP and `proof`.
    fn post_with(&self, path: &str, proof: &str) -> Request<Body> {
        let auth = format!("DPoP {}", self.token);
        mcp_post(path, &[("authorization", &auth), ("dpop", proof)])
    }

    /// `POST path` with the token as DPoP and a right proof (with `nonce` if given).
    fn post(&self, path: &str, nonce: Option<&str>) -> Request<Body> {
        self.post_with(path, &self.proof("POST", path, nonce))
    }
}

/// A Bearer access token with `scope`.
fn bearer_token(scope: &str) -> String {
    hs256(&claims(json!({ "scope": scope })))
}

/// A JSON-RPC `tools/call` POST to `path` with `headers`.
fn mcp_post(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", "mcp.test")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": { "name": "echo", "arguments": {} } });
    builder.body(Body::from(body.to_string())).unwrap()
}

// The server ------------------------------------------------------------------------------

/// Which scheme the layer is given first.
#[derive(Clone, Copy, Debug)]
enum First {
    Dpop,
    Bearer,
}

fn metadata() -> ResourceMetadata {
    ResourceMetadata::new(RESOURCE)
        .authorization_servers([AS])
        .scopes_supported(["mcp:tools", "mcp:admin"])
        .dpop_signing_alg_values_supported([Algorithm::ES256, Algorithm::PS256])
        .dpop_bound_access_tokens_required(false)
}

async fn hello(p: Principal) -> axum::Json<Value> {
    axum::Json(json!({ "sub": p.id(), "scheme": p.scheme().map(|s| s.as_str()) }))
}

/// `POST /mcp` (scope `mcp:tools`) and `POST /mcp/admin` (`mcp:admin` too) behind a layer
/// with Bearer and `dpop`, the one named by `first` given first.
fn server(first: First, dpop: Dpop) -> Router {
    let base = layer(DetailMode::Verbose);
    let both = match first {
        First::Dpop => base.dpop(dpop).bearer(jwt()),
        First::Bearer => base.bearer(jwt()).dpop(dpop),
    };
    Router::new()
        .route("/mcp", post(hello))
        .route(
            "/mcp/admin",
            post(hello).route_layer(RequireScope::new(["mcp:admin"])),
        )
        .layer(
            both.resource_metadata(metadata())
                .require_scope(["mcp:tools"]),
        )
}

fn ours() -> Dpop {
    Dpop::new(jwt()).public_origin(ORIGIN)
}

fn nonce_server(lifetime: Duration) -> Router {
    server(First::Dpop, ours().require_nonce(lifetime))
}

/// The `WWW-Authenticate` fields joined as a fetch client's `headers.get` joins them.
fn joined(out: &Outcome) -> String {
    out.header_all("www-authenticate").join(", ")
}

/// Asserts that the answer's first challenge is Bearer's, carrying `resource_metadata` and
/// `scope`, and that the joined header starts with it.
#[track_caller]
fn bearer_first(out: &Outcome, scope: &str) {
    let all = out.challenges();
    assert_eq!(all[0].scheme, "Bearer", "{:?}", out.headers);
    assert_eq!(all[0].param("resource_metadata"), Some(METADATA));
    assert_eq!(all[0].param("scope"), Some(scope));
    assert!(joined(out).starts_with("Bearer "), "{}", joined(out));
}

// (a) Bearer first ------------------------------------------------------------------------

#[tokio::test]
async fn every_401_puts_the_bearer_challenge_first_whichever_scheme_was_configured_first() {
    for first in [First::Dpop, First::Bearer] {
        let app = server(first, ours());
        let c = Client::new("mcp:tools");
        let expired = hs256(&claims(json!({ "scope": "mcp:tools", "exp": now() - 600 })));
        let bad_proof = c.post_with("/mcp", &c.proof("GET", "/mcp", None));
        let cases: Vec<(&str, Request<Body>)> = vec![
            ("no credentials", mcp_post("/mcp", &[])),
            (
                "an expired Bearer token",
                mcp_post("/mcp", &[("authorization", &bearer(&expired))]),
            ),
            ("a DPoP proof for GET", bad_proof),
        ];
        for (case, req) in cases {
            let out = send(app.clone(), req).await;
            assert_eq!(out.status, 401, "{first:?}, {case}: {}", out.text());
            bearer_first(&out, "mcp:tools");
            let schemes: Vec<String> = out.challenges().into_iter().map(|c| c.scheme).collect();
            assert_eq!(schemes, ["Bearer", "DPoP"], "{first:?}, {case}");
            let dpop = &out.challenges()[1];
            assert_eq!(dpop.param("resource_metadata"), Some(METADATA));
            assert_eq!(dpop.param("algs"), Some("ES256 PS256"));
        }
    }
}

#[tokio::test]
async fn a_403_names_every_scope_needed_and_the_metadata_in_the_scheme_used() {
    for first in [First::Dpop, First::Bearer] {
        let app = server(first, ours());
        // Bearer: the one challenge is Bearer's.
        let token = bearer_token("mcp:tools");
        let req = mcp_post("/mcp/admin", &[("authorization", &bearer(&token))]);
        let out = send(app.clone(), req).await;
        assert_eq!(out.status, 403, "{first:?}: {}", out.text());
        bearer_first(&out, "mcp:tools mcp:admin");
        assert_eq!(out.challenge().param("error"), Some("insufficient_scope"));
        assert_eq!(out.challenges().len(), 1);

        // DPoP: the client reads its own scheme's challenge (RFC 9449 §7.1).
        let c = Client::new("mcp:tools");
        let out = send(app.clone(), c.post("/mcp/admin", None)).await;
        assert_eq!(out.status, 403, "{first:?}: {}", out.text());
        let all = out.challenges();
        assert_eq!(all.len(), 1, "{:?}", out.headers);
        assert_eq!(all[0].scheme, "DPoP");
        assert_eq!(all[0].param("error"), Some("insufficient_scope"));
        assert_eq!(all[0].param("scope"), Some("mcp:tools mcp:admin"));
        assert_eq!(all[0].param("resource_metadata"), Some(METADATA));

        // With the scope, both get in.
        let admin = bearer_token("mcp:tools mcp:admin");
        let req = mcp_post("/mcp/admin", &[("authorization", &bearer(&admin))]);
        assert_eq!(send(app.clone(), req).await.ok()["scheme"], "Bearer");
        let c = Client::new("mcp:tools mcp:admin");
        assert_eq!(
            send(app.clone(), c.post("/mcp/admin", None)).await.ok()["scheme"],
            "DPoP"
        );
    }
}

// (b) Nonces ------------------------------------------------------------------------------

/// The nonce a `use_dpop_nonce` 401 hands out (Bearer's challenge still first).
#[track_caller]
fn nonce_asked(out: &Outcome) -> String {
    assert_eq!(out.status, 401, "{}", out.text());
    bearer_first(out, "mcp:tools");
    let dpop = &out.challenges()[1];
    assert_eq!(
        dpop.param("error"),
        Some("use_dpop_nonce"),
        "{:?}",
        out.headers
    );
    let nonces = out.header_all("dpop-nonce");
    assert_eq!(nonces.len(), 1, "{:?}", out.headers);
    nonces[0].to_owned()
}

#[tokio::test]
async fn a_nonce_stays_usable_for_later_requests_within_its_lifetime() {
    let app = nonce_server(Duration::from_secs(60));
    let c = Client::new("mcp:tools");
    let nonce = nonce_asked(&send(app.clone(), c.post("/mcp", None)).await);
    for _ in 0..5 {
        let out = send(app.clone(), c.post("/mcp", Some(&nonce))).await;
        assert_eq!(out.ok()["scheme"], "DPoP");
    }
    // A proof wrong in another way, with the held nonce, is refused for that, not asked
    // for a nonce; and the nonce goes on working after it.
    let wrong = c.post_with("/mcp", &c.proof("POST", "/elsewhere", Some(&nonce)));
    let out = send(app.clone(), wrong).await;
    assert_eq!(out.status, 401);
    bearer_first(&out, "mcp:tools");
    assert_eq!(
        out.challenges()[1].param("error"),
        Some("invalid_dpop_proof")
    );
    assert!(out.header("dpop-nonce").is_none(), "{:?}", out.headers);
    let out = send(app.clone(), c.post("/mcp", Some(&nonce))).await;
    assert_eq!(out.ok()["scheme"], "DPoP");
    // A proof is still good once only: its replay is refused, nonce or not.
    let proof = c.proof("POST", "/mcp", Some(&nonce));
    send(app.clone(), c.post_with("/mcp", &proof)).await.ok();
    let out = send(app.clone(), c.post_with("/mcp", &proof)).await;
    assert_eq!(out.status, 401);
}

#[tokio::test]
async fn a_stale_nonce_is_asked_again_with_a_fresh_one() {
    let app = nonce_server(Duration::from_secs(1));
    let c = Client::new("mcp:tools");
    let nonce = nonce_asked(&send(app.clone(), c.post("/mcp", None)).await);
    send(app.clone(), c.post("/mcp", Some(&nonce))).await.ok();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let fresh = nonce_asked(&send(app.clone(), c.post("/mcp", Some(&nonce))).await);
    assert_ne!(fresh, nonce);
    send(app.clone(), c.post("/mcp", Some(&fresh))).await.ok();
}

// (c) Metadata ----------------------------------------------------------------------------

#[tokio::test]
async fn the_metadata_lists_the_dpop_algorithms_and_whether_binding_is_required() {
    let app = server(First::Dpop, ours());
    let out = send(
        app,
        get(
            "/.well-known/oauth-protected-resource/mcp",
            &[("host", "mcp.test")],
        ),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text());
    let doc = out.json();
    assert_eq!(doc["resource"], RESOURCE);
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        json!(["ES256", "PS256"])
    );
    assert_eq!(doc["dpop_bound_access_tokens_required"], json!(false));
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));

    let required = metadata()
        .dpop_bound_access_tokens_required(true)
        .document();
    assert_eq!(required["dpop_bound_access_tokens_required"], json!(true));
}

#[test]
fn none_or_a_mac_among_the_dpop_algorithms_is_a_configuration_error() {
    let dpop_mistake = |meta: ResourceMetadata| {
        let errors = AuthDiagnostics::new()
            .dpop(ours())
            .resource_metadata(meta)
            .try_build()
            .unwrap_err();
        let found = errors.iter().any(|e| {
            matches!(e, ConfigError::ResourceMetadata {
                why: ResourceMistake::DpopMember(why), ..
            } if why.contains("dpop_signing_alg_values_supported"))
        });
        assert!(found, "{errors}");
    };
    let base = || ResourceMetadata::new(RESOURCE).authorization_servers([AS]);
    dpop_mistake(base().dpop_signing_alg_values_supported([Algorithm::ES256, Algorithm::HS256]));
    for listed in [json!(["none"]), json!(["ES256", "None"]), json!(["HS512"])] {
        dpop_mistake(base().field("dpop_signing_alg_values_supported", listed));
    }
    // The right list builds.
    let ok = base().dpop_signing_alg_values_supported([Algorithm::ES256, Algorithm::EdDSA]);
    assert!(AuthDiagnostics::new()
        .dpop(ours())
        .resource_metadata(ok)
        .try_build()
        .is_ok());
}
