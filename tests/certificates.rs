//! Certificate-bound tokens (RFC 8705 §3): `cnf.x5t#S256` against the client certificate
//! of the TLS connection (the `ClientCertificate` request extension) or of a forwarded
//! header from a trusted proxy, in every supported format, in process (`oneshot` with the
//! `ConnectInfo` and `ClientCertificate` extensions set).
//!
//! The certificates are tests/certs/client_{a,b}.pem (self-signed P-256, made with
//! openssl); the thumbprint of A was computed with openssl, independently of the crate:
//! `openssl x509 -in client_a.pem -outform der | openssl dgst -sha256 -binary | base64`
//! (made base64url, unpadded).

mod common;
use common::*;

use auth_diagnostics::introspection::Introspector;
use auth_diagnostics::layer::{CertificateHeader, ClientCertificate, LogRate, TrustedProxies};
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{HeaderName, Request};
use jsonwebtoken::EncodingKey;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::time::Duration;
use tower::ServiceExt;
use DetailMode::{Production, Verbose};

const PEM_A: &str = include_str!("certs/client_a.pem");
const PEM_B: &str = include_str!("certs/client_b.pem");
/// base64url(SHA-256(DER of A)), computed with openssl.
const X5T_A: &str = "8f_tuabEQqOSlyGCoOublZKlgO2yz3i7YD7e53vXTck";

const PROXY: &str = "10.0.0.5:40000";
const CLIENT: &str = "203.0.113.9:51515";

/// The DER of a one-certificate PEM file.
fn der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap()
}

fn x5t(pem: &str) -> String {
    b64url(&Sha256::digest(der(pem)))
}

/// A token for alice bound to the certificate of thumbprint `x5t`.
fn bound(x5t: &str) -> String {
    hs256(&claims(json!({ "cnf": { "x5t#S256": x5t } })))
}

/// PEM text URL-encoded as nginx's `$ssl_client_escaped_cert` and ALB do it: every byte
/// but unreserved characters and `+`, `=`, `/` escaped.
fn escaped(pem: &str) -> String {
    pem.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b'+' | b'=' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A request for `/me` with `token` (if any), `headers`, from `peer` (if any), over a TLS
/// connection that presented `tls` (if any).
fn req(
    token: Option<&str>,
    headers: Vec<(&str, HeaderValue)>,
    peer: Option<&str>,
    tls: Option<&str>,
) -> Request<Body> {
    let mut all = headers;
    let auth = token.map(bearer);
    if let Some(a) = &auth {
        all.push(("authorization", hv(a)));
    }
    let mut r = request(Method::GET, "/me", all);
    if let Some(p) = peer {
        r.extensions_mut()
            .insert(ConnectInfo(p.parse::<SocketAddr>().unwrap()));
    }
    if let Some(pem) = tls {
        r.extensions_mut()
            .insert(ClientCertificate::from_der(der(pem)));
    }
    r
}

fn proxies() -> TrustedProxies {
    "10.0.0.0/8".parse().unwrap()
}

/// `/me` behind Bearer with a certificate header of `format` from [`proxies`].
fn header_app(mode: DetailMode, format: CertificateHeader) -> axum::Router {
    bearer_app(
        layer(mode)
            .trusted_proxies(proxies())
            .certificate_header(format),
    )
}

fn tls_app(mode: DetailMode) -> axum::Router {
    bearer_app(layer(mode).certificate_from_tls())
}

/// A 401 `invalid_token` with `reason`, in body, challenge and the one failure event.
#[track_caller]
fn refused(out: &Outcome, reason: &str) {
    assert_eq!(out.status, 401, "{}", out.text());
    assert_eq!(out.problem()["reason"], reason, "{}", out.text());
    // Bearer's challenge, or DPoP's where the request spoke DPoP.
    let errors: Vec<_> = out
        .challenges()
        .iter()
        .filter_map(|c| c.param("error").map(str::to_owned))
        .collect();
    assert_eq!(errors, ["invalid_token"], "{:?}", out.challenges());
    let failures: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.get("status").is_some())
        .collect();
    assert_eq!(failures.len(), 1, "{:#?}", out.events);
    let e = failures[0];
    assert_eq!(e.field("reason"), reason);
    assert_eq!(e.level, Level::WARN);
    assert_eq!(e.field("claim"), "cnf");
    assert_eq!(e.field("check"), "cnf.x5t#S256");
    assert_eq!(e.field("signature_verified"), "true");
}

#[track_caller]
fn accepted(out: &Outcome) {
    assert_eq!(out.status, 200, "{}", out.text());
    assert_eq!(out.json()["sub"], "alice");
}

/// No event of `out` holds any part of a certificate.
#[track_caller]
fn no_certificate_logged(out: &Outcome) {
    for pem in [PEM_A, PEM_B] {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let hex: String = Sha256::digest(der(pem))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        for e in &out.events {
            let line = e.line();
            for secret in [&body[..40], &x5t(pem), &hex] {
                assert!(!line.contains(secret), "certificate logged: {line}");
            }
        }
    }
}

#[test]
fn the_thumbprint_is_base64url_sha256_of_the_der() {
    let cert = ClientCertificate::from_der(der(PEM_A));
    assert_eq!(cert.thumbprint(), X5T_A);
    assert_eq!(x5t(PEM_A), X5T_A);
    assert_eq!(cert.der(), der(PEM_A));
    // Its Debug shows the thumbprint, not the certificate.
    let debug = format!("{cert:?}");
    assert!(debug.contains(X5T_A) && debug.len() < 120, "{debug}");
}

#[tokio::test]
async fn the_tls_connection_s_certificate_binds_the_token() {
    for mode in [Verbose, Production] {
        let app = tls_app(mode);
        let token = bound(X5T_A);
        accepted(&send(app.clone(), req(Some(&token), vec![], None, Some(PEM_A))).await);
        let out = send(app.clone(), req(Some(&token), vec![], None, Some(PEM_B))).await;
        refused(&out, "certificate_mismatch");
        no_certificate_logged(&out);
        let out = send(app.clone(), req(Some(&token), vec![], None, None)).await;
        refused(&out, "certificate_missing");
        // An unbound token needs no certificate, and a certificate binds nothing.
        let plain = hs256(&good_claims());
        accepted(&send(app.clone(), req(Some(&plain), vec![], None, None)).await);
        accepted(&send(app.clone(), req(Some(&plain), vec![], None, Some(PEM_B))).await);
    }
}

#[tokio::test]
async fn the_thumbprint_must_match_exactly() {
    let app = tls_app(Verbose);
    let mut one_off = X5T_A.to_owned().into_bytes();
    one_off[42] = if one_off[42] == b'A' { b'B' } else { b'A' };
    let cases = [
        json!(String::from_utf8(one_off).unwrap()),
        json!(format!("{X5T_A}=")),
        json!(&X5T_A[..42]),
        json!(X5T_A.to_lowercase()),
        // base64 (not url) of the same bytes differs where + and / appear; hex never matches.
        json!(Sha256::digest(der(PEM_A))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()),
        json!(""),
        json!(42),
        json!([X5T_A]),
    ];
    for x5t in cases {
        let token = hs256(&claims(json!({ "cnf": { "x5t#S256": x5t } })));
        let out = send(app.clone(), req(Some(&token), vec![], None, Some(PEM_A))).await;
        refused(&out, "certificate_mismatch");
    }
}

#[tokio::test]
async fn without_a_certificate_source_a_bound_token_stays_unverifiable() {
    // Even with a certificate on the connection: the layer was not told to read it.
    let app = bearer_app(layer(Verbose).trusted_proxies(proxies()));
    let token = bound(X5T_A);
    let out = send(app, req(Some(&token), vec![], Some(PROXY), Some(PEM_A))).await;
    assert_eq!(out.status, 401);
    assert_eq!(out.problem()["reason"], "token_binding_unverifiable");
}

/// Every format: the header a trusted proxy sends for A (and for B), and the app reading it.
/// A header format, the header's name, and its value for a certificate's PEM.
type Format = (CertificateHeader, &'static str, fn(&str) -> String);

fn formats() -> Vec<Format> {
    fn client_cert(pem: &str) -> String {
        format!(":{}:", b64(&der(pem)))
    }
    fn xfcc_hash(pem: &str) -> String {
        let hex: String = Sha256::digest(der(pem))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!(
            "By=spiffe://cluster.local/ns/default/sa/api;Hash={hex};Subject=\"CN=client,O=x\";URI="
        )
    }
    fn xfcc_cert(pem: &str) -> String {
        format!(
            "By=spiffe://cluster.local/ns/default/sa/api;Cert=\"{}\";Subject=\"CN=c\"",
            escaped(pem)
        )
    }
    fn pem_escaped(pem: &str) -> String {
        escaped(pem)
    }
    /// Go's `url.QueryEscape`: a space is `+`, a base64 `+` is `%2B`.
    fn pem_form(pem: &str) -> String {
        escaped(pem).replace('+', "%2B").replace("%20", "+")
    }
    vec![
        (CertificateHeader::ClientCert, "client-cert", client_cert),
        (
            CertificateHeader::EnvoyXfcc,
            "x-forwarded-client-cert",
            xfcc_hash,
        ),
        (
            CertificateHeader::EnvoyXfcc,
            "x-forwarded-client-cert",
            xfcc_cert,
        ),
        (
            CertificateHeader::EscapedPem(HeaderName::from_static("x-ssl-client-cert")),
            "x-ssl-client-cert",
            pem_escaped,
        ),
        (
            CertificateHeader::AwsAlb,
            "x-amzn-mtls-clientcert-leaf",
            pem_escaped,
        ),
        (
            CertificateHeader::AwsAlb,
            "x-amzn-mtls-clientcert",
            pem_escaped,
        ),
        (
            CertificateHeader::EscapedPem(HeaderName::from_static("x-client-cert")),
            "x-client-cert",
            pem_form,
        ),
    ]
}

#[tokio::test]
async fn every_header_format_from_a_trusted_proxy_binds_the_token() {
    let token = bound(X5T_A);
    for (format, name, value) in formats() {
        for mode in [Verbose, Production] {
            let app = header_app(mode, format.clone());
            let h = |pem| vec![(name, hv(value(pem)))];
            let out = send(app.clone(), req(Some(&token), h(PEM_A), Some(PROXY), None)).await;
            accepted(&out);
            assert!(out.events.is_empty(), "{name}: {:#?}", out.events);
            let out = send(app.clone(), req(Some(&token), h(PEM_B), Some(PROXY), None)).await;
            refused(&out, "certificate_mismatch");
            no_certificate_logged(&out);
            if mode == Verbose {
                let detail = out.problem()["detail"].as_str().unwrap().to_owned();
                assert!(
                    detail.contains(name) && detail.contains("10.0.0.5:40000"),
                    "{detail}"
                );
            }
            let out = send(app.clone(), req(Some(&token), vec![], Some(PROXY), None)).await;
            refused(&out, "certificate_missing");
        }
    }
}

#[tokio::test]
async fn alb_passthrough_sends_the_chain_leaf_first_and_plus_is_base64() {
    let app = header_app(Verbose, CertificateHeader::AwsAlb);
    let chain = escaped(&format!("{PEM_A}{PEM_B}"));
    let token = bound(X5T_A);
    let h = vec![("x-amzn-mtls-clientcert", hv(&chain))];
    accepted(&send(app.clone(), req(Some(&token), h, Some(PROXY), None)).await);
    // A `+` read as a space would break the base64: it is kept.
    assert!(
        PEM_A.contains('+') || PEM_A.contains('/'),
        "the fixture has + or /"
    );
    // The leaf header, where both come, wins over the chain.
    let h = vec![
        ("x-amzn-mtls-clientcert-leaf", hv(escaped(PEM_A))),
        ("x-amzn-mtls-clientcert", hv(escaped(PEM_B))),
    ];
    accepted(&send(app, req(Some(&token), h, Some(PROXY), None)).await);
}

#[tokio::test]
async fn envoy_s_last_element_is_the_one_its_nearest_proxy_added() {
    let app = header_app(Verbose, CertificateHeader::EnvoyXfcc);
    let hex = |pem| -> String {
        Sha256::digest(der(pem))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let token = bound(X5T_A);
    // A client forged the first element; the proxy appended the real one.
    let forged_first = format!(
        "Hash={};Subject=\"CN=a,O=quoted, comma\",By=spiffe://edge;Hash={}",
        hex(PEM_A),
        hex(PEM_B)
    );
    let h = vec![("x-forwarded-client-cert", hv(&forged_first))];
    let out = send(app.clone(), req(Some(&token), h, Some(PROXY), None)).await;
    refused(&out, "certificate_mismatch");
    let real_last = format!("Hash={},By=spiffe://edge;HASH={}", hex(PEM_B), hex(PEM_A));
    let h = vec![("x-forwarded-client-cert", hv(&real_last))];
    accepted(&send(app, req(Some(&token), h, Some(PROXY), None)).await);
}

#[tokio::test]
async fn a_trusted_proxy_s_malformed_header_is_no_certificate() {
    let a = der(PEM_A);
    let huge = format!(":{}:", b64(&vec![0x30u8; 40 * 1024]));
    let cases: Vec<(CertificateHeader, &str, HeaderValue, &str)> = vec![
        (
            CertificateHeader::ClientCert,
            "client-cert",
            hv(b64(&a)),
            "byte sequence",
        ),
        (
            CertificateHeader::ClientCert,
            "client-cert",
            hv(":not base64!:"),
            "not base64",
        ),
        (
            CertificateHeader::ClientCert,
            "client-cert",
            hv(format!(":{}:", b64(b"hello"))),
            "not a DER",
        ),
        (
            CertificateHeader::ClientCert,
            "client-cert",
            hv(&huge),
            "over the limit",
        ),
        (
            CertificateHeader::ClientCert,
            "client-cert",
            hv(b":\xff\xfe:"),
            "not base64",
        ),
        (
            CertificateHeader::ClientCert,
            "client-cert",
            hv("::"),
            "not a DER",
        ),
        (
            CertificateHeader::EnvoyXfcc,
            "x-forwarded-client-cert",
            hv("By=spiffe://x;Subject=\"CN=y\""),
            "neither Hash nor Cert",
        ),
        (
            CertificateHeader::EnvoyXfcc,
            "x-forwarded-client-cert",
            hv("Hash=abc"),
            "not a hex SHA-256",
        ),
        (
            CertificateHeader::EnvoyXfcc,
            "x-forwarded-client-cert",
            hv(format!("Hash={}", "é".repeat(32)).as_bytes()),
            "not a hex SHA-256",
        ),
        (
            CertificateHeader::EnvoyXfcc,
            "x-forwarded-client-cert",
            hv(","),
            "empty",
        ),
        (
            CertificateHeader::AwsAlb,
            "x-amzn-mtls-clientcert",
            hv("-----BEGIN%20CERTIFICATE-----%0AMIIB%zz"),
            "%-escape",
        ),
        (
            CertificateHeader::AwsAlb,
            "x-amzn-mtls-clientcert",
            hv("hello"),
            "no PEM certificate",
        ),
        (
            CertificateHeader::AwsAlb,
            "x-amzn-mtls-clientcert",
            hv("-----BEGIN%20CERTIFICATE-----%0AMIIB"),
            "no END line",
        ),
        (
            CertificateHeader::AwsAlb,
            "x-amzn-mtls-clientcert",
            hv(b"-----BEGIN CERTIFICATE-----\xc3\x28-----END CERTIFICATE-----"),
            "not base64",
        ),
    ];
    let token = bound(X5T_A);
    let plain = hs256(&good_claims());
    for (format, name, value, says) in cases {
        let app = header_app(Verbose, format);
        let out = send(
            app.clone(),
            req(Some(&token), vec![(name, value.clone())], Some(PROXY), None),
        )
        .await;
        refused(&out, "certificate_missing");
        let detail = out.problem()["detail"].as_str().unwrap().to_owned();
        assert!(
            detail.contains(says) && detail.contains(name),
            "{says}: {detail}"
        );
        // A token that is not bound does not care.
        accepted(
            &send(
                app,
                req(Some(&plain), vec![(name, value)], Some(PROXY), None),
            )
            .await,
        );
    }
    // Two fields of the header: which one would the proxy have meant?
    let app = header_app(Verbose, CertificateHeader::ClientCert);
    let one = hv(format!(":{}:", b64(&a)));
    let h = vec![("client-cert", one.clone()), ("client-cert", one)];
    let out = send(app, req(Some(&token), h, Some(PROXY), None)).await;
    refused(&out, "certificate_missing");
    assert!(out.text().contains("more than once"), "{}", out.text());
}

#[tokio::test]
async fn a_certificate_header_from_an_untrusted_peer_is_ignored_and_logged() {
    let token = bound(X5T_A);
    let forged = vec![("client-cert", hv(format!(":{}:", b64(&der(PEM_A)))))];
    for (peer, shown) in [(Some(CLIENT), CLIENT), (None, "unknown")] {
        let app = header_app(Verbose, CertificateHeader::ClientCert);
        let out = send(app.clone(), req(Some(&token), forged.clone(), peer, None)).await;
        refused(&out, "certificate_header_untrusted");
        assert!(out.text().contains(shown), "{}", out.text());
        no_certificate_logged(&out);
        let notice = out
            .events
            .iter()
            .find(|e| e.get("status").is_none())
            .expect("the ignored header is logged");
        assert_eq!(notice.level, Level::WARN);
        // A notice, not a refusal: no reason or status of its own.
        assert_eq!(notice.get("reason"), None);
        assert_eq!(notice.field("header"), "client-cert");
        assert!(notice.field("peer").contains(shown), "{notice:?}");
        assert_eq!(notice.field("hints"), "forwarding_header_untrusted");
        // An unbound token is accepted; the forged header is still logged.
        let plain = hs256(&good_claims());
        let out = send(app, req(Some(&plain), forged.clone(), peer, None)).await;
        accepted(&out);
        assert!(out.event().field("peer").contains(shown));
    }
    // In production the reason is kept (the client needs to know where to send from).
    let app = header_app(Production, CertificateHeader::ClientCert);
    let out = send(app, req(Some(&token), forged, Some(CLIENT), None)).await;
    refused(&out, "certificate_header_untrusted");
}

#[tokio::test]
async fn the_tls_certificate_comes_before_any_header() {
    let app = bearer_app(
        layer(Verbose)
            .trusted_proxies(proxies())
            .certificate_from_tls()
            .certificate_header(CertificateHeader::ClientCert),
    );
    let token = bound(X5T_A);
    let b = vec![("client-cert", hv(format!(":{}:", b64(&der(PEM_B)))))];
    // From a trusted proxy, but the connection's own certificate decides.
    let out = send(
        app.clone(),
        req(Some(&token), b.clone(), Some(PROXY), Some(PEM_A)),
    )
    .await;
    accepted(&out);
    // A proxy's header is used where the connection presents none.
    let a = vec![("client-cert", hv(format!(":{}:", b64(&der(PEM_A)))))];
    accepted(&send(app.clone(), req(Some(&token), a, Some(PROXY), None)).await);
    let out = send(app.clone(), req(Some(&token), b.clone(), Some(PROXY), None)).await;
    refused(&out, "certificate_mismatch");
    // From an untrusted peer the header is ignored and logged, even beside the
    // connection's own certificate, which decides.
    let out = send(app, req(Some(&token), b, Some(CLIENT), Some(PEM_A))).await;
    accepted(&out);
    assert_eq!(out.event().field("peer"), CLIENT);
    assert_eq!(out.event().field("hints"), "forwarding_header_untrusted");
}

#[tokio::test]
async fn ignored_headers_are_logged_under_flood_control() {
    let rate = LogRate {
        burst: 3,
        window: Duration::from_secs(60),
        interval: Duration::from_secs(60),
    };
    let layer = layer(Verbose)
        .log_rate(rate)
        .trusted_proxies(proxies())
        .certificate_header(CertificateHeader::ClientCert);
    let app = bearer_app(layer.clone());
    let plain = hs256(&good_claims());
    let forged = vec![("client-cert", hv(format!(":{}:", b64(&der(PEM_A)))))];
    let (capture, _guard) = Capture::install();
    for _ in 0..20 {
        let r = req(Some(&plain), forged.clone(), Some(CLIENT), None);
        let response = app.clone().oneshot(r).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let notices = capture.events();
    assert_eq!(notices.len(), 3, "{notices:#?}");
    assert!(notices.iter().all(|e| e.field("peer") == CLIENT));
    layer.flush_suppressed();
    let events = capture.events();
    let summary = events.last().unwrap();
    assert_eq!(summary.field("reason"), "certificate_header_untrusted");
    assert_eq!(summary.field("suppressed"), "17");
}

// ---------------------------------------------------------------------------------------
// DPoP and certificate, both
// ---------------------------------------------------------------------------------------

const EC256_X: &str = "mOdDdERtdUohEyBt2KLtjJqOcsoVVNPdyU8N2gjwXH4";
const EC256_Y: &str = "QWuiB8Ik1G8LXz9lLyLF3EbQKzVu2Cu0QCHoahdvOSs";

fn jkt() -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{EC256_X}","y":"{EC256_Y}"}}"#);
    b64url(&Sha256::digest(canonical.as_bytes()))
}

/// A DPoP proof for GET http://api.test/me by tests/keys/ec256_private.pem.
fn proof(token: &str) -> String {
    let header = json!({ "typ": "dpop+jwt", "alg": "ES256",
        "jwk": { "kty": "EC", "crv": "P-256", "x": EC256_X, "y": EC256_Y } });
    let claims = json!({
        "jti": format!("jti-{}", std::process::id() as i64 * 1000 + rand_part()),
        "htm": "GET",
        "htu": "http://api.test/me",
        "iat": now(),
        "ath": b64url(&Sha256::digest(token.as_bytes())),
    });
    let part = |v: &Value| b64url(&serde_json::to_vec(v).unwrap());
    let message = format!("{}.{}", part(&header), part(&claims));
    let dir = env!("CARGO_MANIFEST_DIR");
    let pem = std::fs::read(format!("{dir}/tests/keys/ec256_private.pem")).unwrap();
    let key = EncodingKey::from_ec_pem(&pem).unwrap();
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::ES256)
        .unwrap();
    format!("{message}.{sig}")
}

fn rand_part() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static N: AtomicI64 = AtomicI64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test]
async fn a_token_bound_to_a_dpop_key_and_a_certificate_needs_both() {
    let dpop = auth_diagnostics::dpop::Dpop::new(jwt()).public_origin("http://api.test");
    let app = bearer_app(layer(Verbose).dpop(dpop).certificate_from_tls());
    let token = hs256(&claims(
        json!({ "cnf": { "jkt": jkt(), "x5t#S256": X5T_A } }),
    ));
    let dpop_req = |tls: Option<&str>| {
        let auth = format!("DPoP {token}");
        let headers = vec![
            ("host", hv("api.test")),
            ("authorization", hv(&auth)),
            ("dpop", hv(proof(&token))),
        ];
        let mut r = request(Method::GET, "/me", headers);
        if let Some(pem) = tls {
            r.extensions_mut()
                .insert(ClientCertificate::from_der(der(pem)));
        }
        r
    };
    accepted(&send(app.clone(), dpop_req(Some(PEM_A))).await);
    let out = send(app.clone(), dpop_req(Some(PEM_B))).await;
    refused(&out, "certificate_mismatch");
    let out = send(app.clone(), dpop_req(None)).await;
    refused(&out, "certificate_missing");
    // As Bearer, the DPoP binding refuses it first.
    let out = send(app, req(Some(&token), vec![], None, Some(PEM_A))).await;
    assert_eq!(out.problem()["reason"], "token_dpop_bound");
}

// ---------------------------------------------------------------------------------------
// Introspection
// ---------------------------------------------------------------------------------------

/// An RFC 7662 endpoint on 127.0.0.1 that answers `answer` for every token.
async fn endpoint(answer: Value) -> String {
    let app = axum::Router::new().route(
        "/introspect",
        axum::routing::post(move || {
            let answer = answer.clone();
            async move { axum::Json(answer) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn introspected_tokens_follow_the_same_rules() {
    let url = endpoint(
        json!({ "active": true, "iss": "https://as.test", "aud": AUDIENCE,
        "sub": "alice", "exp": now() + 3600, "cnf": { "x5t#S256": X5T_A } }),
    )
    .await;
    let introspector = Introspector::new(&url)
        .client_secret_basic("rs", "rs-secret-1234")
        .issuer("https://as.test")
        .audience(AUDIENCE);
    let app = bearer_app(
        layer(Verbose)
            .introspection(introspector)
            .certificate_from_tls(),
    );
    let opaque = "opaque-certificate-bound-token";
    accepted(&send(app.clone(), req(Some(opaque), vec![], None, Some(PEM_A))).await);
    let out = send(app.clone(), req(Some(opaque), vec![], None, Some(PEM_B))).await;
    assert_eq!(out.status, 401);
    assert_eq!(out.problem()["reason"], "certificate_mismatch");
    let out = send(app, req(Some(opaque), vec![], None, None)).await;
    assert_eq!(out.problem()["reason"], "certificate_missing");
}
