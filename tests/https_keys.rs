//! The default HTTP client (feature `http-client`) speaks TLS with rustls on aws-lc-rs, the
//! crypto library that verifies signatures, so a default build compiles no other one.
//!
//! A `KeySource` fetches its key set over `https` from a rustls server on `127.0.0.1` that
//! presents a self-signed certificate. Nothing in this process installs a process-wide
//! rustls provider (a reqwest client without one and without ring panics as it is built),
//! so the fetch reaching the server shows the client carries its own. The server reads the
//! client's hello: it offers the X25519MLKEM768 key exchange and ECDSA P-521 signatures,
//! which aws-lc-rs has and ring has not. The client then refuses the certificate as from
//! an unknown issuer (the `unknown_ca` alert), and the fetch failure in the log says why.
#![cfg(all(feature = "http-client", feature = "aws_lc_rs"))]

mod common;
use common::*;

#[path = "common/tls_server.rs"]
mod tls_server;
use tls_server::tls_server;

use auth_diagnostics::keys::KeySource;
use std::time::Duration;

#[tokio::test]
async fn the_default_client_speaks_tls_on_aws_lc_rs_and_refuses_an_unknown_issuer() {
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "no process-wide provider is installed"
    );
    let (capture, _guard) = Capture::install();
    let (port, seen) = tls_server();
    let source = KeySource::jwks(format!("https://127.0.0.1:{port}/jwks"))
        .fetch_timeout(Duration::from_secs(5));
    let ready = tokio::spawn({
        let source = source.clone();
        async move { source.ready().await }
    });

    let seen = tokio::time::timeout(Duration::from_secs(20), seen)
        .await
        .expect("the client reaches the server")
        .expect("the server reports");
    seen.assert_aws_lc_rs_refusing_unknown_issuer();

    // The failed fetch is logged with rustls' reason.
    let mut error = String::new();
    for _ in 0..100 {
        let failures: Vec<_> = capture
            .all_events()
            .into_iter()
            .filter(|e| e.target == "auth_diagnostics::keys" && e.get("fetch_error").is_some())
            .collect();
        if let Some(failure) = failures.first() {
            error = failure.field("fetch_error").to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        error.contains("UnknownIssuer"),
        "the fetch error names the untrusted certificate: {error:?}"
    );
    assert!(!ready.is_finished(), "no key set was fetched");
    ready.abort();
}
