//! The demo client's DPoP key and proofs (RFC 9449), shared by `examples/mint.rs` and the
//! benches. The key is public on purpose: a demo key, never to be used for anything else.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The demo client's DPoP key (P-256). Public on purpose: a demo key.
const DPOP_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgrSgjBYHKveycBQHE
ASctKFiBOlprw1SJTHRMjus29GuhRANCAARjFMqOapyfrVmPDBt5uhPkSwLCYwy+
/ZjlgMUJgbQF42ajBAed15B09VF/lzgefiktr5f58kmRx0yCh4gbhCVW
-----END PRIVATE KEY-----";
const DPOP_X: &str = "YxTKjmqcn61ZjwwbeboT5EsCwmMMvv2Y5YDFCYG0BeM";
const DPOP_Y: &str = "ZqMEB53XkHT1UX-XOB5-KS2vl_nySZHHTIKHiBuEJVY";

/// The demo key's public JWK and its RFC 7638 thumbprint.
pub fn dpop_jwk() -> (Value, String) {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{DPOP_X}","y":"{DPOP_Y}"}}"#);
    let jkt = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    let jwk = json!({ "kty": "EC", "crv": "P-256", "x": DPOP_X, "y": DPOP_Y });
    (jwk, jkt)
}

/// A DPoP proof for `htm` `htu`, bound to `token` by `ath`.
pub fn dpop_proof(htm: &str, htu: &str, token: &str, now: i64) -> String {
    let (jwk, _) = dpop_jwk();
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("dpop+jwt".into());
    header.jwk = Some(serde_json::from_value::<Jwk>(jwk).expect("a valid JWK"));
    // Unique per proof: the time, and a counter for proofs made within one tick.
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos: u128 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    let claims = json!({
        "jti": format!("demo-{nanos:x}-{count}"),
        "htm": htm,
        "htu": htu,
        "iat": now,
        "ath": URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())),
    });
    let key = EncodingKey::from_ec_pem(DPOP_KEY.as_bytes()).expect("the demo key parses");
    encode(&header, &claims, &key).expect("ES256 signing cannot fail")
}
