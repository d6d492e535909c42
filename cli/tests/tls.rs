//! The command's HTTP client speaks TLS with rustls on aws-lc-rs, the crypto library the
//! library verifies signatures with, so the command compiles no other one.
//!
//! `auth-diagnostics probe` connects to a rustls server on `127.0.0.1` that presents a
//! self-signed certificate. The server reads the client's hello: it offers the
//! X25519MLKEM768 key exchange and ECDSA P-521 signatures, which aws-lc-rs has and ring
//! has not. The client then refuses the certificate as from an unknown issuer (the
//! `unknown_ca` alert), and the probe says why.

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/common/tls_server.rs"]
mod tls_server;
use common::without_proxies;
use tls_server::tls_server;

use std::time::Duration;

#[tokio::test]
async fn the_probe_speaks_tls_on_aws_lc_rs_too() {
    let (port, seen) = tls_server();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_auth-diagnostics"));
    cmd.args(["probe", &format!("https://127.0.0.1:{port}/me")])
        .args(["--timeout", "5", "--rate", "50"]);
    without_proxies(&mut cmd);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the probe ends")
        .unwrap();
    let seen = seen.await.expect("the server reports");
    seen.assert_aws_lc_rs_refusing_unknown_issuer();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("UnknownIssuer"), "{printed}");
}
