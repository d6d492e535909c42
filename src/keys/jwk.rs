//! A published JWK set (RFC 7517) read into keys that verify: each key knows the
//! algorithms it may verify, from its `kty`, `crv` and `alg`. Keys for other uses
//! (`use` other than `sig`, `key_ops` without `verify`), symmetric keys, RSA keys under
//! 2048 bits and unknown kinds are skipped, and the skip is said.

use super::fetch::{FetchError, FetchErrorKind};
use crate::sanitize::cap;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// One usable key of a fetched set: it verifies one algorithm (RSA keys that name none
/// verify RS256).
#[derive(Clone)]
pub(crate) struct RemoteKey {
    pub kid: Option<String>,
    algs: Vec<Algorithm>,
    key: DecodingKey,
}

impl RemoteKey {
    /// A key published on its own (a PEM per `kid`) for the algorithms `algs`.
    pub(crate) fn new(kid: String, algs: Vec<Algorithm>, key: DecodingKey) -> Self {
        Self {
            kid: Some(kid),
            algs,
            key,
        }
    }

    /// Whether the key may verify a token of `alg`: its kind agrees, and so does its
    /// own `alg` when it names one.
    pub(crate) fn serves(&self, alg: Algorithm) -> bool {
        self.algs.contains(&alg)
    }

    /// Whether the signature over `message` verifies with this key and `alg`.
    pub(crate) fn verifies(&self, message: &str, signature: &str, alg: Algorithm) -> bool {
        super::verify_signature(signature, message, &self.key, alg)
    }
}

impl fmt::Debug for RemoteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteKey")
            .field("kid", &self.kid)
            .field("algs", &self.algs)
            .finish_non_exhaustive()
    }
}

/// The usable keys of a set, and why the others were skipped.
#[derive(Debug, Default)]
pub(crate) struct ParsedSet {
    pub keys: Vec<RemoteKey>,
    pub skipped: Vec<String>,
}

/// The algorithms a published key may verify: the asymmetric ones, RSA's first. A
/// published set never verifies HMAC tokens.
pub(crate) const PUBLISHED_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Those of an RSA key.
const RSA_ALGS: &[Algorithm] = PUBLISHED_ALGORITHMS.split_at(6).0;

/// The smallest RSA modulus accepted (RFC 7518 §3.3: 2048 bits or larger).
const MIN_RSA_BYTES: usize = 256;

/// Reads a JWK set document. More than `max_keys` keys refuses the whole set: a set that
/// big is not what the issuer publishes, and the keys already cached stay in use.
pub(crate) fn parse(body: &[u8], max_keys: usize) -> Result<ParsedSet, FetchError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| {
        FetchError::new(
            FetchErrorKind::Document,
            format!("the key set is not JSON: {e}"),
        )
    })?;
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        return Err(FetchError::new(
            FetchErrorKind::Document,
            "the document has no `keys` array: not a JWK set",
        ));
    };
    if keys.len() > max_keys {
        return Err(FetchError::new(
            FetchErrorKind::TooLarge,
            format!(
                "the key set has {} keys, more than the {max_keys} allowed",
                keys.len()
            ),
        ));
    }
    let mut set = ParsedSet::default();
    for (i, jwk) in keys.iter().enumerate() {
        let Some(jwk) = jwk.as_object() else {
            set.skipped.push(format!("key {i}: not a JSON object"));
            continue;
        };
        match key(jwk) {
            Ok(k) => set.keys.push(k),
            Err(why) => {
                let kid = jwk.get("kid").and_then(Value::as_str).map(cap);
                let name = match kid {
                    Some(k) => format!("kid {k}"),
                    None => format!("key {i}"),
                };
                set.skipped.push(format!("{name}: {why}"));
            }
        }
    }
    Ok(set)
}

/// A JWK's kind, the algorithms its kind can verify, and its key material.
fn material(jwk: &Map<String, Value>) -> Result<(&str, Vec<Algorithm>, DecodingKey), String> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let kty = text("kty").ok_or("no kty")?;
    if let Some(usage) = jwk.get("use") {
        if usage.as_str() != Some("sig") {
            return Err(format!("use {}, not sig", cap(&text_of(usage))));
        }
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verify = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")));
        if !verify {
            return Err("key_ops does not include verify".into());
        }
    }
    let b64 = |name: &str| text(name).ok_or_else(|| format!("no {name}"));
    let (candidates, key): (Vec<Algorithm>, _) = match (kty, text("crv")) {
        ("RSA", _) => {
            let n = b64("n")?;
            // base64url: 4 characters per 3 bytes; a leading zero byte does not count.
            let bytes = n.trim_start_matches('A').len() * 3 / 4;
            if bytes < MIN_RSA_BYTES - 1 {
                return Err(format!("RSA key of about {} bits, under 2048", bytes * 8));
            }
            let key = DecodingKey::from_rsa_components(n, b64("e")?);
            (RSA_ALGS.to_vec(), key)
        }
        ("EC", Some("P-256")) => (
            vec![Algorithm::ES256],
            DecodingKey::from_ec_components(b64("x")?, b64("y")?),
        ),
        ("EC", Some("P-384")) => (
            vec![Algorithm::ES384],
            DecodingKey::from_ec_components(b64("x")?, b64("y")?),
        ),
        ("OKP", Some("Ed25519")) => (
            vec![Algorithm::EdDSA],
            DecodingKey::from_ed_components(b64("x")?),
        ),
        ("oct", _) => return Err("a symmetric key has no place in a published set".into()),
        (kty, crv) => {
            return Err(format!(
                "kty {}{} is not supported",
                cap(kty),
                crv.map(|c| format!(" crv {}", cap(c))).unwrap_or_default()
            ))
        }
    };
    let key = key.map_err(|e| format!("unreadable key material: {e}"))?;
    Ok((kty, candidates, key))
}

fn key(jwk: &Map<String, Value>) -> Result<RemoteKey, String> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let (kty, candidates, key) = material(jwk)?;
    let algs = match jwk.get("alg") {
        // One key, one algorithm (RFC 8725 §3.1): an RSA key that names none is RS256's,
        // the algorithm every provider signs with by default.
        None if kty == "RSA" => vec![Algorithm::RS256],
        None => candidates,
        Some(alg) => {
            let named = alg
                .as_str()
                .and_then(|a| Algorithm::from_str(a).ok())
                .filter(|a| candidates.contains(a));
            match named {
                Some(a) => vec![a],
                None => {
                    return Err(format!(
                        "alg {} does not fit kty {}",
                        cap(&text_of(alg)),
                        cap(kty)
                    ))
                }
            }
        }
    };
    Ok(RemoteKey {
        kid: text("kid").map(str::to_owned),
        algs,
        key,
    })
}

/// The key of a JWK sent inside a token (a DPoP proof's `jwk` header) that is to verify
/// `alg`: its kind must fit `alg`, and so must its own `alg` when it names one. Unlike a
/// published set, an RSA key that names no `alg` may verify any RSA algorithm: the proof
/// names one, and the key lives for that proof's signature only.
pub(crate) fn proof_key(jwk: &Map<String, Value>, alg: Algorithm) -> Result<RemoteKey, String> {
    let (kty, candidates, key) = material(jwk)?;
    let named = jwk
        .get("alg")
        .map(|a| a.as_str().and_then(|a| Algorithm::from_str(a).ok()));
    if !candidates.contains(&alg) || named.is_some_and(|n| n != Some(alg)) {
        return Err(format!("a {} key cannot verify {alg:?}", cap(kty)));
    }
    Ok(RemoteKey {
        kid: None,
        algs: vec![alg],
        key,
    })
}

/// A member as text: a string as it is, anything else as JSON.
fn text_of(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rsa() -> Value {
        // 2048-bit modulus: 342 base64url characters.
        json!({ "kty": "RSA", "kid": "r1", "n": format!("u{}w", "x".repeat(340)), "e": "AQAB" })
    }

    fn parsed(keys: Value) -> ParsedSet {
        parse(json!({ "keys": keys }).to_string().as_bytes(), 10).unwrap()
    }

    #[test]
    fn kinds_and_algorithms() {
        let mut ps = rsa();
        ps["alg"] = json!("PS256");
        let set = parsed(json!([rsa(), ps]));
        assert_eq!(set.keys.len(), 2, "{:?}", set.skipped);
        assert!(set.keys[0].serves(Algorithm::RS256) && !set.keys[0].serves(Algorithm::PS256));
        assert!(set.keys[1].serves(Algorithm::PS256) && !set.keys[1].serves(Algorithm::RS256));
        assert!(!set.keys[0].serves(Algorithm::ES256) && !set.keys[0].serves(Algorithm::HS256));
    }

    #[test]
    fn keys_for_other_uses_are_skipped() {
        let mut enc = rsa();
        enc["use"] = json!("enc");
        let mut wrap = rsa();
        wrap["key_ops"] = json!(["wrapKey"]);
        let mut es = rsa();
        es["alg"] = json!("ES256");
        let oct = json!({ "kty": "oct", "k": "c2VjcmV0" });
        let small = json!({ "kty": "RSA", "n": "x".repeat(171), "e": "AQAB" });
        let p521 = json!({ "kty": "EC", "crv": "P-521", "x": "AA", "y": "AA" });
        let set = parsed(json!([enc, wrap, es, oct, small, p521, 7]));
        assert!(set.keys.is_empty());
        let why = set.skipped.join("\n");
        for expected in [
            "use enc, not sig",
            "key_ops does not include verify",
            "alg ES256 does not fit kty RSA",
            "symmetric",
            "under 2048",
            "kty EC crv P-521",
            "not a JSON object",
        ] {
            assert!(why.contains(expected), "{expected}: {why}");
        }
    }

    #[test]
    fn too_many_keys_refuse_the_set() {
        let keys: Vec<Value> = (0..11).map(|_| rsa()).collect();
        let e = parse(json!({ "keys": keys }).to_string().as_bytes(), 10).unwrap_err();
        assert_eq!(e.kind(), FetchErrorKind::TooLarge);
        assert_eq!(
            parse(b"{\"key\":[]}", 10).unwrap_err().kind(),
            FetchErrorKind::Document
        );
        assert_eq!(
            parse(b"<html>", 10).unwrap_err().kind(),
            FetchErrorKind::Document
        );
    }
}
