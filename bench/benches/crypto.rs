//! Signature verification per algorithm with the crypto backend this build selected: the
//! cost the layer cannot avoid on a first-seen token. Run it once per backend and compare:
//!
//! ```text
//! cargo bench -p auth-diagnostics-bench --bench crypto   # the default
//! cargo bench -p auth-diagnostics-bench --bench crypto --no-default-features --features rust_crypto
//! ```
//!
//! Each group has one line, `verify`: `jsonwebtoken::crypto::verify` of a real token's
//! signature with the test keys of `tests/keys`.

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::json;
use std::hint::black_box;

fn pem(name: &str, half: &str) -> Vec<u8> {
    let dir = env!("CARGO_MANIFEST_DIR");
    std::fs::read(format!("{dir}/../tests/keys/{name}_{half}.pem")).unwrap()
}

fn keys(name: &str) -> (EncodingKey, DecodingKey) {
    let (private, public) = (pem(name, "private"), pem(name, "public"));
    match &name[..2] {
        "rs" => (
            EncodingKey::from_rsa_pem(&private).unwrap(),
            DecodingKey::from_rsa_pem(&public).unwrap(),
        ),
        "ec" => (
            EncodingKey::from_ec_pem(&private).unwrap(),
            DecodingKey::from_ec_pem(&public).unwrap(),
        ),
        _ => (
            EncodingKey::from_ed_pem(&private).unwrap(),
            DecodingKey::from_ed_pem(&public).unwrap(),
        ),
    }
}

fn backend() -> &'static str {
    if cfg!(feature = "aws_lc_rs") {
        "aws_lc_rs"
    } else {
        "rust_crypto"
    }
}

fn verify(c: &mut Criterion) {
    auth_diagnostics::keys::install_crypto_provider();
    let claims = json!({ "sub": "alice", "exp": 4_000_000_000u64 });
    for (alg, name) in [
        (Algorithm::HS256, "hs"),
        (Algorithm::RS256, "rsa"),
        (Algorithm::PS256, "rsa"),
        (Algorithm::ES256, "ec256"),
        (Algorithm::ES384, "ec384"),
        (Algorithm::EdDSA, "ed25519"),
    ] {
        let (enc, dec) = match name {
            "hs" => (
                EncodingKey::from_secret(b"bench-secret"),
                DecodingKey::from_secret(b"bench-secret"),
            ),
            _ => keys(name),
        };
        let token = encode(&Header::new(alg), &claims, &enc).unwrap();
        let (message, signature) = token.rsplit_once('.').unwrap();
        let mut g = c.benchmark_group(format!("{alg:?}/{}", backend()));
        g.bench_function("verify", |b| {
            b.iter(|| {
                let ok = jsonwebtoken::crypto::verify(
                    black_box(signature),
                    black_box(message.as_bytes()),
                    &dec,
                    alg,
                )
                .unwrap();
                assert!(ok);
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = crypto;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = verify
}
criterion_main!(crypto);
