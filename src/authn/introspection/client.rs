//! The introspection request (RFC 7662 §2.1) over reqwest with this crate's TLS
//! configuration: a form POST, the client's authentication, no redirects, a timeout and a
//! cap on the answer's size; and the discovery of the endpoint (RFC 8414, OpenID Connect
//! Discovery 1.0) under the same rules.

use super::ClientAuth;
use crate::keys::fetch::{check_url, shown_source};
use crate::keys::rfc8414_url;
use crate::sanitize::cap;
use base64::Engine;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// RFC 7523 §2.2.
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The largest discovery document read (as for a key source's).
const DISCOVERY_MAX_BYTES: usize = 256 * 1024;

/// A `private_key_jwt` client: its id and signing key.
#[derive(Clone)]
pub(crate) struct Assertion {
    pub client_id: String,
    pub kid: Option<String>,
    pub audience: Option<String>,
    alg: jsonwebtoken::Algorithm,
    key: Arc<jsonwebtoken::EncodingKey>,
}

impl Assertion {
    /// The client `client_id` signing with PEM key `pem` for `alg`, or why it cannot.
    pub(crate) fn new(
        client_id: String,
        pem: &[u8],
        alg: jsonwebtoken::Algorithm,
    ) -> Result<Self, String> {
        use jsonwebtoken::{Algorithm as A, EncodingKey};
        let key = match alg {
            A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512 => {
                EncodingKey::from_rsa_pem(pem)
            }
            A::ES256 | A::ES384 => EncodingKey::from_ec_pem(pem),
            A::EdDSA => EncodingKey::from_ed_pem(pem),
            other => {
                return Err(format!(
                    "private_key_jwt signs with a private key; {other:?} is not an asymmetric \
                     algorithm"
                ))
            }
        }
        .map_err(|e| format!("the private_key_jwt key is not a {alg:?} PEM private key: {e}"))?;
        Ok(Self {
            client_id,
            kid: None,
            audience: None,
            alg,
            key: Arc::new(key),
        })
    }

    /// A fresh assertion for a call to `endpoint`.
    pub(crate) fn sign(&self, endpoint: &str) -> Result<String, Unavailable> {
        let now = crate::time::now();
        let mut jti = [0u8; 16];
        getrandom::getrandom(&mut jti).map_err(|e| format!("no random jti: {e}"))?;
        let jti: String = jti.iter().map(|b| format!("{b:02x}")).collect();
        let claims = serde_json::json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.audience.as_deref().unwrap_or(endpoint),
            "jti": jti,
            "iat": now,
            "exp": now + 60,
        });
        let mut header = jsonwebtoken::Header::new(self.alg);
        header.kid.clone_from(&self.kid);
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("signing the client assertion failed: {e}"))
    }
}

/// Why the endpoint gave no usable answer (the cause, for the log; never the token).
pub(crate) type Unavailable = String;

/// An HTTP client for one endpoint.
#[derive(Debug)]
pub(crate) struct Client {
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn new(timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(crate::keys::fetch::tls_config())
            // Client credentials go to the endpoint configured, nowhere else.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("auth-diagnostics/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with rustls builds");
        Self { http }
    }

    /// Asks `endpoint` about `token`: its JSON object, or why there is none.
    pub(crate) async fn introspect(
        &self,
        endpoint: &str,
        auth: Option<&ClientAuth>,
        token: &str,
        max_bytes: usize,
    ) -> Result<(Map<String, Value>, usize), Unavailable> {
        let assertion: String;
        let mut form: Vec<(&str, &str)> =
            vec![("token", token), ("token_type_hint", "access_token")];
        let mut request = self
            .http
            .post(endpoint)
            .header(http::header::ACCEPT, "application/json");
        match auth {
            None => {}
            Some(ClientAuth::Basic { id, secret }) => {
                // RFC 6749 §2.3.1: each part form-urlencoded before base64.
                let pair = format!("{}:{}", form_encode(id), form_encode(secret));
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                request = request.header(http::header::AUTHORIZATION, format!("Basic {encoded}"));
            }
            Some(ClientAuth::Post { id, secret }) => {
                form.push(("client_id", id));
                form.push(("client_secret", secret));
            }
            Some(ClientAuth::KeyJwt(a)) => {
                assertion = a.sign(endpoint)?;
                form.push(("client_assertion_type", ASSERTION_TYPE));
                form.push(("client_assertion", &assertion));
            }
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let response = request
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(cause)?;
        read(response, max_bytes).await
    }

    /// The `introspection_endpoint` of `issuer`'s discovery document (OpenID Connect's
    /// location, then RFC 8414's on a 404), after checking that the document speaks for
    /// `issuer` (RFC 8414 §3.3) and that the endpoint may be called.
    pub(crate) async fn discover(
        &self,
        issuer: &str,
        allow_http: bool,
    ) -> Result<String, Unavailable> {
        let shown_issuer = shown_source(issuer);
        let oidc = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = match self.document(&oidc).await {
            Err(Missing::NotFound(first)) => match self.document(&rfc8414_url(issuer)).await {
                Err(Missing::NotFound(then)) => Err(format!("{first}; {then}")),
                other => other.map_err(Missing::into_cause),
            },
            other => other.map_err(Missing::into_cause),
        }?;
        let named = doc.get("issuer").and_then(Value::as_str);
        if named != Some(issuer) {
            return Err(format!(
                "the discovery document names issuer {}, not {shown_issuer} as configured \
                 (they must be equal, byte for byte)",
                named.map_or_else(|| "(none)".to_owned(), |n| format!("{:?}", cap(n)))
            ));
        }
        let Some(endpoint) = doc.get("introspection_endpoint").and_then(Value::as_str) else {
            return Err(format!(
                "the discovery document of {shown_issuer} names no introspection_endpoint"
            ));
        };
        check_url(endpoint, allow_http).map_err(|e| format!("introspection_endpoint: {e}"))?;
        Ok(endpoint.to_owned())
    }

    /// The JSON object at `url`, from a 200: no redirect followed, at most
    /// [`DISCOVERY_MAX_BYTES`].
    async fn document(&self, url: &str) -> Result<Map<String, Value>, Missing> {
        let get = || format!("GET {}", shown_source(url));
        let response = self
            .http
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| Missing::Failed(format!("{}: {}", get(), cause(e))))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            let why = format!("{}: HTTP {status}", get());
            return Err(match status.as_u16() {
                404 => Missing::NotFound(why),
                300..=399 => Missing::Failed(format!("{why} (redirects are not followed)")),
                _ => Missing::Failed(why),
            });
        }
        read(response, DISCOVERY_MAX_BYTES)
            .await
            .map(|(doc, _)| doc)
            .map_err(|e| Missing::Failed(format!("{}: {e}", get())))
    }
}

/// Why there is no discovery document at a URL.
enum Missing {
    /// 404: the other well-known location may have it.
    NotFound(Unavailable),
    Failed(Unavailable),
}

impl Missing {
    fn into_cause(self) -> Unavailable {
        match self {
            Self::NotFound(e) | Self::Failed(e) => e,
        }
    }
}

/// The answer's JSON object, within `max_bytes`, from a 200.
async fn read(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<(Map<String, Value>, usize), Unavailable> {
    let status = response.status();
    match status.as_u16() {
        200 => {}
        401 | 403 => {
            return Err(format!(
                "the endpoint refused this server's client credentials (HTTP {status})"
            ))
        }
        _ => return Err(format!("the endpoint answered HTTP {status}")),
    }
    if response
        .content_length()
        .is_some_and(|n| n > max_bytes as u64)
    {
        return Err(format!("the answer is larger than {max_bytes} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(cause)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(format!("the answer is larger than {max_bytes} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => Ok((map, body.len())),
        Ok(_) => Err("the answer is JSON but not an object".to_owned()),
        Err(e) => Err(format!("the answer is not JSON: {e}")),
    }
}

/// A reqwest error with its causes (refused, DNS, TLS, timeout), without the URL.
fn cause(e: reqwest::Error) -> Unavailable {
    let timed_out = e.is_timeout();
    let message = crate::keys::fetch::error_chain(e);
    if timed_out {
        format!("the endpoint did not answer in time ({message})")
    } else {
        message
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_encoding() {
        assert_eq!(
            super::form_encode("a b+c/=&~é"),
            "a+b%2Bc%2F%3D%26%7E%C3%A9"
        );
    }
}
