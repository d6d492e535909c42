//! Mints an HS256 token for the demo and prints it.
//!
//! ```text
//! cargo run -q --example mint -- --sub alice --scope "admin orders"
//! cargo run -q --example mint -- --expires-in -3600      # expired an hour ago
//! cargo run -q --example mint -- --iss https://evil.example
//! cargo run -q --example mint -- --acr urn:demo:mfa --auth-time-ago 60   # for /stepup
//! cargo run -q --example mint -- --dpop http://127.0.0.1:3000/dpop       # token, then proof
//! cargo run -q --example mint -- --logout --sid demo-session-1   # for /backchannel-logout
//! cargo run -q --example mint -- --cert client.pem               # for /mtls
//! ```
//!
//! Defaults follow the demo: `DEMO_JWT_SECRET`, `DEMO_ISSUER` (else `DEMO_OIDC_ISSUER`),
//! `DEMO_AUDIENCE`, sub `alice`,
//! valid for an hour. Flags: `--sub`, `--scope`, `--iss`, `--aud`, `--jti`, `--sid`, `--tid`, `--acr`,
//! `--auth-time-ago SECONDS`, `--expires-in SECONDS`, `--secret`, `--no-exp`.
//!
//! `--cert PEM-FILE` binds the token to that client certificate (RFC 8705): `cnf.x5t#S256`
//! is the base64url SHA-256 of its DER, as the demo's `/mtls` checks.
//!
//! `--logout` mints an OpenID Connect back-channel logout token instead (`typ`
//! `logout+jwt`, the logout `events` claim, a fresh `jti`, valid two minutes), addressed to
//! `DEMO_CLIENT_ID` (`demo-rs`) unless `--aud` says otherwise: the demo's
//! `POST /backchannel-logout` takes it as the form field `logout_token`.
//!
//! `--dpop URL` (with `--htm METHOD`, default `GET`) binds the token to the demo client's
//! DPoP key (`cnf.jkt`) and prints a second line: a fresh DPoP proof for one request of
//! that method to that URL (RFC 9449). The key is a fixed, public demo key: never use it
//! for anything else.

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

#[path = "common/dpop.rs"]
mod dpop;
use dpop::{dpop_jwk, dpop_proof};

fn main() {
    auth_diagnostics::keys::install_crypto_provider();
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let mut secret = env("DEMO_JWT_SECRET", "demo-hs256-secret");
    let mut claims = Map::new();
    // The demo's issuer: DEMO_ISSUER, else DEMO_OIDC_ISSUER (the demo's default then).
    let issuer = env(
        "DEMO_ISSUER",
        &env("DEMO_OIDC_ISSUER", "https://issuer.demo.local"),
    );
    claims.insert("iss".into(), issuer.into());
    claims.insert("aud".into(), env("DEMO_AUDIENCE", "demo-api").into());
    claims.insert("sub".into(), "alice".into());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let mut expires_in = 3600;
    let mut with_exp = true;
    let mut dpop: Option<String> = None;
    let mut htm = "GET".to_owned();
    let mut logout = false;
    let mut aud_given = false;

    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--no-exp" {
            with_exp = false;
            continue;
        }
        if flag == "--logout" {
            logout = true;
            continue;
        }
        let Some(value) = args.next() else {
            eprintln!("{flag} needs a value");
            std::process::exit(2);
        };
        match flag.as_str() {
            "--sub" | "--scope" | "--iss" | "--aud" | "--jti" | "--sid" | "--tid" => {
                aud_given |= flag == "--aud";
                claims.insert(flag[2..].to_owned(), Value::String(value));
            }
            "--expires-in" => {
                expires_in = value.parse().unwrap_or_else(|_| {
                    eprintln!("--expires-in takes seconds, e.g. 3600 or -60");
                    std::process::exit(2);
                })
            }
            "--secret" => secret = value,
            "--acr" => {
                claims.insert("acr".into(), Value::String(value));
            }
            "--auth-time-ago" => {
                let ago: i64 = value.parse().unwrap_or_else(|_| {
                    eprintln!("--auth-time-ago takes seconds, e.g. 60");
                    std::process::exit(2);
                });
                claims.insert("auth_time".into(), json!(now - ago));
            }
            "--dpop" => dpop = Some(value),
            "--cert" => {
                let x5t = thumbprint(&value);
                claims.insert("cnf".into(), json!({ "x5t#S256": x5t }));
            }
            "--htm" => htm = value,
            _ => {
                eprintln!("unknown flag {flag}; see the top of examples/mint.rs");
                std::process::exit(2);
            }
        }
    }
    let mut header = Header::default();
    if logout {
        header.typ = Some("logout+jwt".into());
        let client = (!aud_given).then(|| env("DEMO_CLIENT_ID", "demo-rs"));
        logout_claims(&mut claims, now, &mut expires_in, client);
    }
    claims.insert("iat".into(), json!(now.min(now + expires_in)));
    if with_exp {
        claims.insert("exp".into(), json!(now + expires_in));
    }
    if dpop.is_some() {
        claims.insert("cnf".into(), json!({ "jkt": dpop_jwk().1 }));
    }
    let token = encode(
        &header,
        &Value::Object(claims),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing cannot fail");
    println!("{token}");
    if let Some(htu) = dpop {
        println!("{}", dpop_proof(&htm, &htu, &token, now));
    }
}

/// Turns `claims` into a logout token's: the logout event, a fresh `jti`, two minutes,
/// `aud` the client id unless `--aud` named one.
fn logout_claims(
    claims: &mut Map<String, Value>,
    now: i64,
    expires_in: &mut i64,
    client: Option<String>,
) {
    if let Some(client) = client {
        claims.insert("aud".into(), client.into());
    }
    let event = "http://schemas.openid.net/event/backchannel-logout";
    claims.insert("events".into(), json!({ event: {} }));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    claims
        .entry("jti")
        .or_insert_with(|| json!(format!("logout-{now}-{nanos}")));
    claims.remove("scope");
    *expires_in = 120;
}

/// `cnf.x5t#S256` of the first certificate in the PEM file at `path`: base64url (no
/// padding) of the SHA-256 of its DER.
fn thumbprint(path: &str) -> String {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    let pem = std::fs::read_to_string(path).unwrap_or_else(|e| {
        eprintln!("--cert {path}: {e}");
        std::process::exit(2);
    });
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .unwrap_or_else(|_| {
            eprintln!("--cert {path}: no PEM certificate in it");
            std::process::exit(2);
        });
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}
