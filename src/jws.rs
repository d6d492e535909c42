//! What a token says about itself: the JWS compact serialization taken apart, nothing
//! verified. Verification (`authn/jwt.rs`) and diagnosis (`upstream/`) both read tokens here.

use crate::failure::{AuthFailure, TokenFacts};
use crate::reason::Reason;
use crate::sanitize::cap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Longest token we decode.
pub(crate) const MAX_TOKEN: usize = 16 * 1024;

#[derive(Deserialize, Default)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    /// `crit`, present (even as `null`) or not; checked in [`decode`].
    #[serde(default, deserialize_with = "present")]
    crit: Option<Value>,
    /// An embedded public key: a DPoP proof's own (RFC 9449 §4.2); never trusted in an
    /// access token.
    jwk: Option<Value>,
}

/// Keeps a member that is present with the value `null` apart from an absent one.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A JOSE header as verification sees it: `crit` reduced to its names.
pub(crate) struct Header {
    pub alg: Option<String>,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub crit: Vec<String>,
    pub jwk: Option<Value>,
}

/// A token taken apart: header, claims, and what the signature covers.
pub(crate) struct Jws<'a> {
    pub header: Header,
    pub claims: Map<String, Value>,
    /// `header.payload`, the signing input.
    pub message: &'a str,
    /// The base64url signature segment.
    pub signature: &'a str,
}

impl Jws<'_> {
    /// The header and claim facts, capped for the log, unverified.
    pub(crate) fn facts(&self) -> TokenFacts {
        let c = &self.claims;
        let s = |name: &str| c.get(name).and_then(Value::as_str).map(cap);
        TokenFacts {
            alg: self.header.alg.as_deref().map(cap),
            kid: self.header.kid.as_deref().map(cap),
            typ: self.header.typ.as_deref().map(cap),
            iss: s("iss"),
            aud: c.get("aud").map(|a| cap(&audience_text(a))),
            sub: s("sub"),
            exp: c.get("exp").and_then(numeric_date),
            nbf: c.get("nbf").and_then(numeric_date),
            iat: c.get("iat").and_then(numeric_date),
            verified: false,
        }
    }
}

/// What a token says about itself without verifying anything: `None` when it is not a
/// JWS at all. The result has `verified == false`.
pub(crate) fn inspect(token: &str) -> Option<TokenFacts> {
    decode(token).ok().map(|jws| jws.facts())
}

fn malformed(detail: &str) -> AuthFailure {
    AuthFailure::new(Reason::TokenMalformed).detail(detail)
}

/// Structure only: three base64url segments, a JSON object header whose `alg`, `kid` and
/// `typ` are strings and whose `crit` is a non-empty array of strings, a JSON object
/// payload, a base64url signature.
pub(crate) fn decode(token: &str) -> Result<Jws<'_>, AuthFailure> {
    decode_with(token, false)
}

/// [`decode`], for a token whose segments may end in base64 padding (`=`, as AWS ALB's
/// `x-amzn-oidc-data` does): the segments are read without it, while the signing input
/// stays the exact text received.
pub(crate) fn decode_padded(token: &str) -> Result<Jws<'_>, AuthFailure> {
    decode_with(token, true)
}

fn decode_with(token: &str, padded: bool) -> Result<Jws<'_>, AuthFailure> {
    let (h, p, s) = segments(token)?;
    let s = if padded { without_padding(s) } else { s };
    let b64 = |seg: &str, what: &str| {
        let seg = if padded { without_padding(seg) } else { seg };
        URL_SAFE_NO_PAD
            .decode(seg)
            .map_err(|_| malformed(&format!("the {what} is not base64url without padding")))
    };
    let header: RawHeader = serde_json::from_slice(&b64(h, "header")?)
        .map_err(|_| malformed("the header is not a JSON object with string alg/kid/typ"))?;
    let crit = crit_names(header.crit)?;
    let claims = match serde_json::from_slice::<Value>(&b64(p, "payload")?) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(malformed("the payload is JSON but not an object")),
        Err(_) => return Err(malformed("the payload is not JSON")),
    };
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(malformed("the signature is not base64url"));
    }
    Ok(Jws {
        header: Header {
            crit,
            alg: header.alg,
            kid: header.kid,
            typ: header.typ,
            jwk: header.jwk,
        },
        claims,
        message: &token[..h.len() + 1 + p.len()],
        signature: s,
    })
}

/// A segment without its base64 padding (at most two `=`).
fn without_padding(seg: &str) -> &str {
    seg.strip_suffix("==")
        .or_else(|| seg.strip_suffix('='))
        .unwrap_or(seg)
}

/// The three segments of a compact JWS; a JWE (five) is named as such.
fn segments(token: &str) -> Result<(&str, &str, &str), AuthFailure> {
    if token.len() > MAX_TOKEN {
        return Err(malformed("the token is longer than 16 KiB"));
    }
    let count = token.split('.').count();
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), count) {
        (Some(h), Some(p), Some(s), 3) => Ok((h, p, s)),
        (_, _, _, 5) => Err(malformed(
            "the token has 5 segments: an encrypted JWT (JWE), which is not accepted",
        )),
        _ => Err(malformed(&format!(
            "a JWT has 3 dot-separated segments, this token has {count}"
        ))),
    }
}

/// `crit` (RFC 7515 §4.1.11): absent, or a non-empty array of strings.
fn crit_names(crit: Option<Value>) -> Result<Vec<String>, AuthFailure> {
    match crit {
        None => Ok(Vec::new()),
        Some(Value::Array(list)) if !list.is_empty() => list
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(malformed(
                    "the header's crit holds a value that is not a string",
                )),
            })
            .collect(),
        Some(Value::Array(_)) => Err(malformed(
            "the header's crit is an empty array (RFC 7515 §4.1.11 forbids it)",
        )),
        Some(_) => Err(malformed("the header's crit is not an array of strings")),
    }
}

/// A JSON NumericDate as whole seconds (fractions truncated).
pub(crate) fn numeric_date(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// `aud` as one line: array members joined by a space.
pub(crate) fn audience_text(aud: &Value) -> String {
    match aud {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}
