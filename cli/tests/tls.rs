//! The command's HTTP client speaks TLS with rustls on aws-lc-rs, the crypto library the
//! library verifies signatures with, so the command compiles no other one.
//!
//! `auth-diagnostics probe` connects to a rustls server on `127.0.0.1` that presents a
//! self-signed certificate. The server reads the client's hello: it offers the
//! X25519MLKEM768 key exchange and ECDSA P-521 signatures, which aws-lc-rs has and ring
//! has not. The client then refuses the certificate as from an unknown issuer (the
//! `unknown_ca` alert), and the probe says why.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{AlertDescription, NamedGroup, SignatureScheme};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// A self-signed P-256 certificate for `IP:127.0.0.1`, valid until 2126, and its key: made
/// for this test only, trusted by nothing.
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBjDCCATOgAwIBAgIUSquVlzglXezpbjee7NqL/VSF+lMwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwNjIxMjA1MVoYDzIxMjYxMTEy
MjEyMDUxWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATrBG2L70y0h26E0i90bjCKd4jxSUiwNbLOOH76MxZZCYfVXI/uYqVB
DPdpuxJZB3kihcbxRKR7Ac4BSrNvYsDuo2EwXzAdBgNVHQ4EFgQU7GNUCFt5jWQQ
3Jjx6/EEPPCPVEwwHwYDVR0jBBgwFoAU7GNUCFt5jWQQ3Jjx6/EEPPCPVEwwDwYD
VR0RBAgwBocEfwAAATAMBgNVHRMBAf8EAjAAMAoGCCqGSM49BAMCA0cAMEQCIGwD
TgGLET7W1oYLA6SQqa5AI3dp2ihR3iDVr5K8bn+hAiApokGpPp4nck1OQzKpTcIj
tsLCWJB+pcXF48oxBDLAPA==
-----END CERTIFICATE-----
";
const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgaQPzYYb7VvZ4XTB2
1H4BfHFDh6kQ/ryfx6nBZKYj5lShRANCAATrBG2L70y0h26E0i90bjCKd4jxSUiw
NbLOOH76MxZZCYfVXI/uYqVBDPdpuxJZB3kihcbxRKR7Ac4BSrNvYsDu
-----END PRIVATE KEY-----
";

/// What the server saw of the first connection.
#[derive(Debug)]
struct Seen {
    groups: Vec<NamedGroup>,
    schemes: Vec<SignatureScheme>,
    /// How the handshake ended.
    end: Result<(), rustls::Error>,
}

/// A TLS server on `127.0.0.1:0` presenting [`CERT`] to its first connection; its port,
/// and what it saw once the handshake is over.
fn tls_server() -> (u16, tokio::sync::oneshot::Receiver<Seen>) {
    let cert = CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut acceptor = rustls::server::Acceptor::default();
        let accepted = loop {
            acceptor.read_tls(&mut tcp).unwrap();
            if let Some(accepted) = acceptor.accept().map_err(|(e, _)| e).unwrap() {
                break accepted;
            }
        };
        let hello = accepted.client_hello();
        let groups = hello.named_groups().unwrap_or_default().to_vec();
        let schemes = hello.signature_schemes().to_vec();
        let mut conn = accepted
            .into_connection(Arc::new(config))
            .map_err(|(e, _)| e)
            .unwrap();
        let end = loop {
            match conn.complete_io(&mut tcp) {
                Ok(_) if !conn.is_handshaking() => break Ok(()),
                Ok((0, 0)) => break Err(rustls::Error::HandshakeNotComplete),
                Ok(_) => {}
                Err(e) => {
                    break Err(e
                        .into_inner()
                        .and_then(|e| e.downcast::<rustls::Error>().ok())
                        .map_or(rustls::Error::HandshakeNotComplete, |e| *e))
                }
            }
        };
        let _ = tx.send(Seen {
            groups,
            schemes,
            end,
        });
    });
    (port, rx)
}

/// The command's environment without proxy variables: its requests go to the loopback
/// server of the test, never through a proxy the machine happens to name.
fn without_proxies(cmd: &mut tokio::process::Command) {
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
}

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
    assert!(
        seen.groups.contains(&NamedGroup::X25519MLKEM768),
        "aws-lc-rs offers X25519MLKEM768, ring cannot: {:?}",
        seen.groups
    );
    assert!(
        seen.schemes
            .contains(&SignatureScheme::ECDSA_NISTP521_SHA512),
        "aws-lc-rs verifies ECDSA P-521, ring cannot: {:?}",
        seen.schemes
    );
    assert_eq!(
        seen.end,
        Err(rustls::Error::AlertReceived(AlertDescription::UnknownCA))
    );
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("UnknownIssuer"), "{printed}");
}
