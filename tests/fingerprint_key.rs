//! `AuthDiagnostics::fingerprint_key`: the log's credential fingerprints keyed by a
//! configured key, so replicas given one key agree. Its own test binary: the key is the
//! process's.

mod common;
use common::*;
use tower::Layer as _;

use auth_diagnostics::AuthDiagnostics;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::panic::{catch_unwind, AssertUnwindSafe};

const KEY: &str = "fleet fingerprint key, 32 bytes!";

/// The documented construction, computed here on its own: HMAC-SHA256 keyed with the
/// SHA-256 of the configured key, first 6 bytes in hex.
fn expected(key: &[u8], credential: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&Sha256::digest(key)).unwrap();
    mac.update(credential);
    mac.finalize().into_bytes()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The fingerprint the log gives `token` sent as Bearer to `layer`.
async fn logged(layer: AuthDiagnostics, token: &str) -> String {
    let out = send(
        bearer_app(layer),
        get("/me", &[("authorization", &format!("Bearer {token}"))]),
    )
    .await;
    assert_eq!(out.status, 401);
    out.event().field("fingerprint").to_owned()
}

fn panic_text(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("it panics");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[tokio::test]
async fn a_configured_key_gives_the_same_fingerprint_everywhere_and_only_one_key_is_taken() {
    let forged = format!("{}x", hs256(&good_claims()));
    let random = logged(AuthDiagnostics::new(), &forged).await;
    assert_eq!(random.len(), 12, "{random}");

    // Too short: refused before anything changes.
    let short = panic_text(|| drop(AuthDiagnostics::new().fingerprint_key("short").layer(())));
    assert!(short.contains("at least 16 bytes"), "{short}");

    let first = logged(AuthDiagnostics::new().fingerprint_key(KEY), &forged).await;
    assert_eq!(first, expected(KEY.as_bytes(), forged.as_bytes()));
    assert_ne!(first, random, "the per-process key is gone");
    // Another layer, the same key: the same fingerprint, and layers built without a key
    // follow the process's key too.
    let second = logged(AuthDiagnostics::new().fingerprint_key(KEY), &forged).await;
    let plain = logged(AuthDiagnostics::new(), &forged).await;
    assert_eq!((&second, &plain), (&first, &first));
    // A different credential, a different fingerprint.
    let other = logged(AuthDiagnostics::new(), &format!("{forged}y")).await;
    assert_ne!(other, first);

    // A second, different key would split the log: refused at start-up.
    let different = panic_text(|| {
        drop(
            AuthDiagnostics::new()
                .fingerprint_key("another key of 16+ bytes")
                .layer(()),
        )
    });
    assert!(different.contains("different key"), "{different}");
    let after = logged(AuthDiagnostics::new(), &forged).await;
    assert_eq!(after, first, "the first key stays");
}
