//! Certificate-bound tokens (RFC 8705 §3): a token whose `cnf` names `x5t#S256` is accepted
//! only from the client that holds that certificate: base64url(SHA-256(DER)) of the
//! client's certificate must equal `cnf.x5t#S256` (compared in constant time).
//!
//! The certificate comes from one of two places, configured on the layer:
//!
//! - **The TLS connection** ([`AuthDiagnostics::certificate_from_tls`]): the application
//!   ends TLS itself and hands the client's certificate to the layer as a request
//!   extension, [`ClientCertificate`], inserted on every request of the connection.
//! - **A forwarded header** ([`AuthDiagnostics::certificate_header`]): a proxy ends TLS
//!   and forwards the certificate in a header of a known format ([`CertificateHeader`]).
//!   The header is read only when the connection's peer is a
//!   [trusted proxy](AuthDiagnostics::trusted_proxies); from anyone else it is ignored and
//!   logged (rate-limited, with the peer's address, never the certificate).
//!
//! A bound token with no certificate is refused with `certificate_missing`, one whose
//! thumbprint differs with `certificate_mismatch`, and one whose only certificate was a
//! header from an untrusted peer with `certificate_header_untrusted` (all 401
//! `invalid_token`). Without either source configured, a bound token stays
//! `token_binding_unverifiable`. A token bound to both a DPoP key (`cnf.jkt`) and a
//! certificate must satisfy both; introspected tokens whose answer carries `cnf.x5t#S256`
//! follow the same rules.
//!
//! [`AuthDiagnostics::certificate_from_tls`]: crate::AuthDiagnostics::certificate_from_tls
//! [`AuthDiagnostics::certificate_header`]: crate::AuthDiagnostics::certificate_header
//! [`AuthDiagnostics::trusted_proxies`]: crate::AuthDiagnostics::trusted_proxies

use crate::proxy::{Peer, TrustedProxies};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use std::fmt;

/// The client certificate of the request's TLS connection, in DER, inserted by the
/// application as a request extension on every request of the connection; read when the
/// layer is configured with
/// [`certificate_from_tls`](crate::AuthDiagnostics::certificate_from_tls).
///
/// Its SHA-256 thumbprint is computed once, when it is made: make it once per connection
/// and clone it into each request (a clone shares the bytes).
///
/// With tokio-rustls, the peer certificate is the first of
/// `ServerConnection::peer_certificates()` once the handshake is done (the server's
/// `ServerConfig` must ask for client certificates, for example with
/// `WebPkiClientVerifier::builder(roots).allow_unauthenticated()`). Serve each connection
/// with hyper-util, inserting the certificate (and the peer address, for trusted proxies)
/// into every request:
///
/// ```no_run
/// use auth_diagnostics::layer::ClientCertificate;
/// use axum::extract::ConnectInfo;
/// use axum::Router;
/// use hyper_util::rt::{TokioExecutor, TokioIo};
/// use hyper_util::server::conn::auto::Builder;
/// use hyper_util::service::TowerToHyperService;
/// use std::sync::Arc;
/// use tokio_rustls::rustls::ServerConfig;
/// use tokio_rustls::TlsAcceptor;
///
/// /// Serves `app` over TLS: every request carries its connection's peer address and the
/// /// client certificate the handshake presented, if any.
/// async fn serve_tls(listener: tokio::net::TcpListener, app: Router, tls: Arc<ServerConfig>) {
///     let acceptor = TlsAcceptor::from(tls);
///     while let Ok((tcp, peer)) = listener.accept().await {
///         let (acceptor, app) = (acceptor.clone(), app.clone());
///         tokio::spawn(async move {
///             let Ok(stream) = acceptor.accept(tcp).await else { return };
///             let certificate = stream
///                 .get_ref()
///                 .1
///                 .peer_certificates()
///                 .and_then(|chain| chain.first())
///                 .map(|der| ClientCertificate::from_der(der.to_vec()));
///             let app = tower::ServiceExt::map_request(app, move |mut req: http::Request<_>| {
///                 req.extensions_mut().insert(ConnectInfo(peer));
///                 if let Some(certificate) = &certificate {
///                     req.extensions_mut().insert(certificate.clone());
///                 }
///                 req
///             });
///             let _ = Builder::new(TokioExecutor::new())
///                 .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
///                 .await;
///         });
///     }
/// }
/// ```
///
/// The demo (`examples/demo.rs`, `DEMO_TLS_ADDR`) serves its TLS listener this way.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    der: Bytes,
    thumbprint: [u8; 32],
}

impl ClientCertificate {
    /// The certificate `der` (one DER-encoded X.509 certificate, the client's own).
    pub fn from_der(der: impl Into<Bytes>) -> Self {
        let der = der.into();
        let thumbprint = Sha256::digest(&der).into();
        Self { der, thumbprint }
    }

    /// The certificate, DER-encoded.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Its SHA-256 thumbprint, base64url without padding: what `cnf.x5t#S256` of a token
    /// bound to it holds (RFC 8705 §3.1).
    pub fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.thumbprint)
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint())
            .finish_non_exhaustive()
    }
}

/// The format of a header in which a proxy that ends TLS forwards the client's
/// certificate. Read only from [trusted proxies](crate::AuthDiagnostics::trusted_proxies).
/// Every format is limited to [`MAX_HEADER`] bytes; two fields of the header in one
/// request are refused as malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateHeader {
    /// RFC 9440 `Client-Cert`: the DER certificate as a structured-field byte sequence,
    /// `:<base64>:`.
    ClientCert,
    /// Envoy's `X-Forwarded-Client-Cert`: of its comma-separated elements, the last (the
    /// one the proxy nearest to this service added), whose `Hash=` (hex SHA-256 of the
    /// DER certificate) or else `Cert=` (URL-encoded PEM) names the certificate.
    /// Configure Envoy with `forward_client_cert_details: SANITIZE_SET` and
    /// `set_current_client_cert_details: { cert: true }`.
    EnvoyXfcc,
    /// A URL-encoded PEM certificate in the named header, as nginx's
    /// `proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;` sends it
    /// (`%20`, `%0A`; a `+` is a base64 character). A form-encoded one (a space as `+`,
    /// a `+` as `%2B`, as Go's `url.QueryEscape` and HAProxy scripts write it) is told by
    /// its `BEGIN+CERTIFICATE` line and read too. The first certificate is the client's.
    EscapedPem(HeaderName),
    /// AWS Application Load Balancer mutual TLS: `X-Amzn-Mtls-Clientcert-Leaf` (verify
    /// mode) or else `X-Amzn-Mtls-Clientcert` (passthrough mode, the chain, leaf first),
    /// URL-encoded PEM with `+`, `=` and `/` left as they are.
    AwsAlb,
}

/// The longest forwarded-certificate header read, in bytes (a chain of a few
/// certificates, URL-encoded, fits).
pub const MAX_HEADER: usize = 32 * 1024;

static CLIENT_CERT: HeaderName = HeaderName::from_static("client-cert");
static XFCC: HeaderName = HeaderName::from_static("x-forwarded-client-cert");
static ALB_LEAF: HeaderName = HeaderName::from_static("x-amzn-mtls-clientcert-leaf");
static ALB: HeaderName = HeaderName::from_static("x-amzn-mtls-clientcert");

impl CertificateHeader {
    /// The header names this format reads, in order of preference.
    fn names(&self) -> Vec<&HeaderName> {
        match self {
            CertificateHeader::ClientCert => vec![&CLIENT_CERT],
            CertificateHeader::EnvoyXfcc => vec![&XFCC],
            CertificateHeader::EscapedPem(name) => vec![name],
            CertificateHeader::AwsAlb => vec![&ALB_LEAF, &ALB],
        }
    }

    /// The SHA-256 thumbprint of the certificate in the field value `raw`.
    fn thumbprint(&self, raw: &[u8]) -> Result<[u8; 32], String> {
        let der = match self {
            CertificateHeader::ClientCert => byte_sequence(raw)?,
            CertificateHeader::EnvoyXfcc => return xfcc(raw),
            CertificateHeader::EscapedPem(_) | CertificateHeader::AwsAlb => url_pem(raw)?,
        };
        Ok(Sha256::digest(der).into())
    }
}

/// Where a layer takes client certificates from.
#[derive(Clone, Debug, Default)]
pub(crate) struct CertificateSources {
    /// The [`ClientCertificate`] request extension.
    pub tls: bool,
    /// A forwarded header, from trusted proxies.
    pub header: Option<CertificateHeader>,
}

/// The client certificate a request presents, as far as the binding check is concerned.
/// A forwarded header is kept as it came and read only when a bound token needs it.
#[derive(Clone, Debug)]
pub(crate) enum Presented {
    /// The TLS connection's certificate, by its SHA-256 thumbprint.
    Tls([u8; 32]),
    /// A trusted proxy's header: its one value (or why there is none to read).
    Forwarded {
        format: CertificateHeader,
        name: HeaderName,
        value: Result<HeaderValue, String>,
        peer: Peer,
    },
    /// None at all.
    Missing,
    /// None but a forwarded-certificate header from a peer that is not a trusted proxy.
    Untrusted { header: HeaderName, peer: Peer },
}

/// What [`Presented`] holds, read.
pub(crate) enum Seen<'a> {
    /// A certificate, by its SHA-256 thumbprint, and where it came from.
    Certificate { thumbprint: [u8; 32], from: String },
    /// None at all.
    Missing,
    /// None but a header from `peer`, which is not a trusted proxy.
    Untrusted { header: &'a str, peer: Peer },
    /// A trusted proxy's header that holds no certificate, and why.
    Malformed { header: &'a str, detail: String },
}

impl Presented {
    /// The certificate, read (a forwarded header is parsed now).
    pub(crate) fn read(&self) -> Seen<'_> {
        match self {
            Presented::Tls(thumbprint) => Seen::Certificate {
                thumbprint: *thumbprint,
                from: "the TLS connection".to_owned(),
            },
            Presented::Missing => Seen::Missing,
            Presented::Untrusted { header, peer } => Seen::Untrusted {
                header: header.as_str(),
                peer: *peer,
            },
            Presented::Forwarded {
                format,
                name,
                value,
                peer,
            } => {
                let malformed = |detail| Seen::Malformed {
                    header: name.as_str(),
                    detail,
                };
                let value = match value {
                    Ok(v) if v.len() > MAX_HEADER => {
                        return malformed(format!(
                            "it is {} bytes long, over the limit of {MAX_HEADER}",
                            v.len()
                        ))
                    }
                    Ok(v) => v,
                    Err(why) => return malformed(why.clone()),
                };
                match format.thumbprint(value.as_bytes()) {
                    Ok(thumbprint) => Seen::Certificate {
                        thumbprint,
                        from: format!("the {} header of trusted proxy {peer}", name.as_str()),
                    },
                    Err(detail) => malformed(detail),
                }
            }
        }
    }
}

/// The certificate `req` presents under `sources`: the TLS connection's first, then the
/// configured header from a trusted proxy. The header from anyone else is ignored and
/// logged, whether or not the connection presented a certificate.
pub(crate) fn presented(
    sources: &CertificateSources,
    proxies: &TrustedProxies,
    flood: &std::sync::Arc<crate::flood::FloodControl>,
    headers: &HeaderMap,
    extensions: &http::Extensions,
) -> Presented {
    let tls = match sources.tls {
        true => extensions.get::<ClientCertificate>(),
        false => None,
    };
    let forwarded = sources.header.as_ref().and_then(|format| {
        let name = format
            .names()
            .into_iter()
            .find(|n| headers.contains_key(*n))?;
        Some((format, name))
    });
    let Some((format, name)) = forwarded else {
        return tls.map_or(Presented::Missing, |c| Presented::Tls(c.thumbprint));
    };
    let peer = proxies.peer(extensions);
    if !peer.is_trusted() {
        crate::proxy::ignored(flood, name.as_str(), peer);
    }
    match (tls, peer.is_trusted()) {
        (Some(cert), _) => Presented::Tls(cert.thumbprint),
        (None, false) => Presented::Untrusted {
            header: name.clone(),
            peer,
        },
        (None, true) => {
            let mut values = headers.get_all(name).iter();
            let value = match (values.next(), values.next()) {
                (Some(v), None) => Ok(v.clone()),
                _ => Err("it appears more than once".to_owned()),
            };
            Presented::Forwarded {
                format: format.clone(),
                name: name.clone(),
                value,
                peer,
            }
        }
    }
}

/// RFC 8941 §3.3.5: `:<base64>:`, optional whitespace around it.
fn byte_sequence(raw: &[u8]) -> Result<Vec<u8>, String> {
    let inner = raw
        .trim_ascii()
        .strip_prefix(b":")
        .and_then(|r| r.strip_suffix(b":"))
        .ok_or("it is not a byte sequence (`:<base64>:`)")?;
    let der = STANDARD
        .decode(inner)
        .map_err(|_| "its byte sequence is not base64".to_owned())?;
    looks_like_der(der)
}

/// A certificate is a DER SEQUENCE: the first byte says so.
fn looks_like_der(der: Vec<u8>) -> Result<Vec<u8>, String> {
    match der.first() {
        Some(0x30) => Ok(der),
        _ => Err("what it holds is not a DER certificate".to_owned()),
    }
}

/// The certificate of URL-encoded PEM text. Proxies escape it two ways: as a URI
/// component (nginx, Envoy, ALB: a space is `%20`, a `+` is a base64 character) or as a
/// form (Go's `url.QueryEscape`: a space is `+`, a base64 `+` is `%2B`). The `BEGIN` line
/// tells which.
fn url_pem(raw: &[u8]) -> Result<Vec<u8>, String> {
    let form = raw.windows(17).any(|w| w == b"BEGIN+CERTIFICATE");
    pem(&percent_decode(raw, form)?)
}

/// `%XX` escapes decoded, and `+` as a space where `form`; every other byte kept.
fn percent_decode(raw: &[u8], form: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'+' && form {
            out.push(b' ');
            i += 1;
        } else if raw[i] == b'%' {
            let hex = raw.get(i + 1..i + 3).and_then(|h| {
                let h = std::str::from_utf8(h).ok()?;
                u8::from_str_radix(h, 16).ok()
            });
            out.push(hex.ok_or("it has a broken %-escape")?);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The first `CERTIFICATE` block of PEM text, decoded.
fn pem(text: &[u8]) -> Result<Vec<u8>, String> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(text, BEGIN).ok_or("it holds no PEM certificate")? + BEGIN.len();
    let len = find(&text[start..], END).ok_or("its PEM certificate has no END line")?;
    let body: Vec<u8> = text[start..start + len]
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let der = STANDARD
        .decode(body)
        .map_err(|_| "its PEM certificate is not base64".to_owned())?;
    looks_like_der(der)
}

/// Envoy's XFCC: the last element's `Hash` (hex), or else its `Cert` (URL-encoded PEM).
fn xfcc(raw: &[u8]) -> Result<[u8; 32], String> {
    let elements = split_unquoted(raw, b',');
    let last = elements.last().ok_or("it is empty")?;
    let mut cert = None;
    for pair in split_unquoted(last, b';') {
        let pair = pair.trim_ascii();
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, value) = (&pair[..eq], unquote(&pair[eq + 1..]));
        if key.eq_ignore_ascii_case(b"hash") {
            return hex32(&value).ok_or_else(|| "its Hash is not a hex SHA-256".to_owned());
        }
        if key.eq_ignore_ascii_case(b"cert") {
            cert = Some(value);
        }
    }
    let cert = cert.ok_or("its last element has neither Hash nor Cert")?;
    Ok(Sha256::digest(url_pem(&cert)?).into())
}

/// `raw` split at `sep` outside double quotes (a backslash escapes within them).
fn split_unquoted(raw: &[u8], sep: u8) -> Vec<&[u8]> {
    let (mut out, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, &b) in raw.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if b == sep && !quoted => {
                out.push(&raw[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&raw[start..]);
    out.retain(|p| !p.trim_ascii().is_empty());
    out
}

/// A value without its surrounding quotes and backslash escapes.
fn unquote(v: &[u8]) -> Vec<u8> {
    let v = v.trim_ascii();
    match v.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")) {
        Some(inner) => {
            let mut out = Vec::with_capacity(inner.len());
            let mut escaped = false;
            for &b in inner {
                if b == b'\\' && !escaped {
                    escaped = true;
                } else {
                    out.push(b);
                    escaped = false;
                }
            }
            out
        }
        None => v.to_vec(),
    }
}

fn hex32(v: &[u8]) -> Option<[u8; 32]> {
    if v.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(v.chunks(2)) {
        *o = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// Whether `x5t` (a token's `cnf.x5t#S256`) names the certificate of `thumbprint`, in
/// constant time.
pub(crate) fn matches(x5t: &str, thumbprint: &[u8; 32]) -> bool {
    let ours = URL_SAFE_NO_PAD.encode(thumbprint);
    crate::secret::constant_time_eq(x5t.as_bytes(), ours.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_pem() {
        let der = [0x30u8, 0x03, 0x02, 0x01, 0x01];
        let b64 = STANDARD.encode(der);
        let text =
            format!("-----BEGIN%20CERTIFICATE-----%0A{b64}%0A-----END%20CERTIFICATE-----%0A");
        let decoded = percent_decode(text.as_bytes(), false).unwrap();
        assert_eq!(pem(&decoded).unwrap(), der);
        assert!(percent_decode(b"%4", false).is_err());
        assert!(percent_decode(b"%zz", false).is_err());
        // Form-encoded (a space is +, a + is %2B), told by the BEGIN line.
        let der = [0x30u8, 0x0f, 0xbe, 0xfb];
        let b64 = STANDARD.encode(der);
        assert!(b64.contains('+'));
        let form = format!(
            "-----BEGIN+CERTIFICATE-----%0A{}%0A-----END+CERTIFICATE-----",
            b64.replace('+', "%2B")
        );
        assert_eq!(url_pem(form.as_bytes()).unwrap(), der);
        let component =
            format!("-----BEGIN%20CERTIFICATE-----%0A{b64}%0A-----END%20CERTIFICATE-----");
        assert_eq!(url_pem(component.as_bytes()).unwrap(), der);
        assert!(pem(b"-----BEGIN CERTIFICATE-----AAAA").is_err());
    }

    #[test]
    fn xfcc_elements() {
        let h = "ab".repeat(32);
        let raw = format!(r#"By=spiffe://a;Hash=00;Subject="x,y", By=b;Hash={h};URI=spiffe://c"#);
        assert_eq!(xfcc(raw.as_bytes()).unwrap(), [0xab; 32]);
        assert!(xfcc(b"By=x;Hash=zz").is_err());
        assert!(xfcc(b"By=x").is_err());
        assert!(xfcc(b"").is_err());
    }

    #[test]
    fn constant_time_match() {
        let t = [7u8; 32];
        let x5t = URL_SAFE_NO_PAD.encode(t);
        assert!(matches(&x5t, &t));
        assert!(!matches(&x5t[..42], &t));
        assert!(!matches(&format!("{x5t}="), &t));
        assert!(!matches(&STANDARD.encode(t), &[8u8; 32]));
    }
}
