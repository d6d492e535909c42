//! The one TLS configuration of the command's HTTP clients (`decode --key URL`, `probe`).

/// The TLS configuration of the command's HTTP clients: rustls on the provider the features
/// chose (aws-lc-rs, the crypto library that verifies signatures, so the command compiles
/// no other; ring when `rust_crypto` is on without `aws_lc_rs`), Mozilla's root
/// certificates (webpki-roots), TLS 1.2 and 1.3, HTTP/1.1. Handed to reqwest whole, so no
/// process-wide default provider is needed.
pub(crate) fn tls_config() -> rustls::ClientConfig {
    #[cfg(feature = "aws_lc_rs")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
    let provider = rustls::crypto::ring::default_provider();
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("the provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // What reqwest offers without its `http2` feature, which the command leaves off.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}
