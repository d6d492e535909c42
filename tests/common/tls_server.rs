//! A TLS server for the tests that check which crypto library an HTTP client speaks TLS
//! with: it presents a self-signed certificate on `127.0.0.1` and reports the client's hello
//! and how the handshake ended. Included by `tests/https_keys.rs` (the library's key
//! fetches) and `cli/tests/tls.rs` (the command's probe) with `#[path]`.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{AlertDescription, NamedGroup, SignatureScheme};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// A self-signed P-256 certificate for `IP:127.0.0.1`, valid until 2126, and its key: made
/// for this test only, trusted by nothing.
pub const CERT: &str = "-----BEGIN CERTIFICATE-----
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
pub const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgaQPzYYb7VvZ4XTB2
1H4BfHFDh6kQ/ryfx6nBZKYj5lShRANCAATrBG2L70y0h26E0i90bjCKd4jxSUiw
NbLOOH76MxZZCYfVXI/uYqVBDPdpuxJZB3kihcbxRKR7Ac4BSrNvYsDu
-----END PRIVATE KEY-----
";

/// What the server saw of the first connection.
#[derive(Debug)]
pub struct Seen {
    pub groups: Vec<NamedGroup>,
    pub schemes: Vec<SignatureScheme>,
    /// How the handshake ended.
    pub end: Result<(), rustls::Error>,
}

impl Seen {
    /// Asserts that the client spoke rustls on aws-lc-rs (it offered the X25519MLKEM768 key
    /// exchange and ECDSA P-521 signatures, which ring has not) and refused the certificate
    /// as from an unknown issuer (the `unknown_ca` alert).
    #[track_caller]
    pub fn assert_aws_lc_rs_refusing_unknown_issuer(&self) {
        assert!(
            self.groups.contains(&NamedGroup::X25519MLKEM768),
            "aws-lc-rs offers X25519MLKEM768, ring cannot: {:?}",
            self.groups
        );
        assert!(
            self.schemes
                .contains(&SignatureScheme::ECDSA_NISTP521_SHA512),
            "aws-lc-rs verifies ECDSA P-521, ring cannot: {:?}",
            self.schemes
        );
        assert_eq!(
            self.end,
            Err(rustls::Error::AlertReceived(AlertDescription::UnknownCA)),
            "the client refuses a certificate no root vouches for"
        );
    }
}

/// A TLS server on `127.0.0.1:0` presenting [`CERT`] to its first connection; its port,
/// and what it saw once the handshake is over.
pub fn tls_server() -> (u16, tokio::sync::oneshot::Receiver<Seen>) {
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
