//! The server `scripts/load.sh` puts under load: the same trivial handler (`{"ok":true}`)
//! on every route, so the difference between routes is what the layer costs.
//!
//! ```text
//! cargo run --release --example load_server            # listening on http://127.0.0.1:3100
//! cargo run --release --example load_server -- --mint hs256
//! ```
//!
//! Routes:
//! - `/public`: no layer.
//! - `/me`: `AuthDiagnostics::new().bearer(..)` with an HS256 secret, issuer and audience.
//! - `/es`: the same with the ES256 public key `tests/keys/ec256_public.pem`.
//!
//! `--mint KIND` prints one token and exits: `hs256` (valid for `/me`), `es256` (valid
//! for `/es`, signed with `tests/keys/ec256_private.pem`) or `expired` (HS256, expired an
//! hour ago). `--mint KIND N` prints N distinct tokens of that kind (each its own `jti`),
//! one a line: cycling through more of them than the layer's verified-token cache holds,
//! every request pays for a full verification. Tokens are valid for an hour.
//!
//! Environment: `LOAD_ADDR` (127.0.0.1:3100); `LOAD_LOG` (`sink`, the default: failure
//! events are formatted as JSON and thrown away, so a rejection pays for its log event as in
//! production; `stdout` writes them out); `RUST_LOG` (`info`); `LOAD_LOG_EVERY=1` turns
//! the layer's flood control off, so that every rejection formats its event (by default
//! only 10 per reason per 10 s and then one per second are, as in production).
//!
//! The runtime is Tokio's multi-thread one with a single worker: the script pins the
//! process to one core.

use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::{install_crypto_provider, Algorithm, DecodingKey, StaticKey};
use auth_diagnostics::AuthDiagnostics;
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

const SECRET: &str = "load-test-hs256-secret-0123456789abcdef";
const ISS: &str = "https://issuer.load.local";
const AUD: &str = "load-api";
const EC256_PUBLIC: &[u8] = include_bytes!("../tests/keys/ec256_public.pem");
const EC256_PRIVATE: &[u8] = include_bytes!("../tests/keys/ec256_private.pem");

/// The only handler: the same work behind every route.
async fn ok() -> Json<Value> {
    Json(json!({ "ok": true }))
}

/// The layer every protected route gets, around `jwt`.
fn layer(jwt: JwtAuthenticator) -> AuthDiagnostics {
    let layer = AuthDiagnostics::new().bearer(jwt.issuer(ISS).audience(AUD));
    if std::env::var("LOAD_LOG_EVERY").is_ok_and(|v| v == "1") {
        layer.log_every_failure()
    } else {
        layer
    }
}

fn app() -> Router {
    let hs = layer(JwtAuthenticator::new(StaticKey::hs256(SECRET)));
    let es_key = DecodingKey::from_ec_pem(EC256_PUBLIC).expect("tests/keys/ec256_public.pem");
    let es = layer(JwtAuthenticator::new(StaticKey::new(
        es_key,
        Algorithm::ES256,
    )));
    Router::new()
        .route("/public", get(ok))
        .merge(Router::new().route("/me", get(ok)).layer(hs))
        .merge(Router::new().route("/es", get(ok)).layer(es))
}

/// `count` tokens for `kind` (`hs256`, `es256`, `expired`), each with its own `jti`, or
/// `None` for an unknown kind.
fn mint(kind: &str, count: usize) -> Option<Vec<String>> {
    install_crypto_provider();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let exp = if kind == "expired" {
        now - 3600
    } else {
        now + 3600
    };
    let iat = exp - 3600;
    let (header, key) = match kind {
        "hs256" | "expired" => (
            Header::new(Algorithm::HS256),
            EncodingKey::from_secret(SECRET.as_bytes()),
        ),
        "es256" => (
            Header::new(Algorithm::ES256),
            EncodingKey::from_ec_pem(EC256_PRIVATE).expect("tests/keys/ec256_private.pem"),
        ),
        _ => return None,
    };
    let tokens = (0..count).map(|jti| {
        let claims = json!({
            "iss": ISS, "aud": AUD, "sub": "load", "iat": iat, "exp": exp, "jti": jti.to_string(),
        });
        encode(&header, &claims, &key).expect("signing")
    });
    Some(tokens.collect())
}

fn install_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().json().with_env_filter(filter);
    match std::env::var("LOAD_LOG").as_deref() {
        Ok("stdout") => builder.with_writer(std::io::stdout).init(),
        Ok("sink") | Err(_) => builder.with_writer(std::io::sink).init(),
        Ok(other) => {
            eprintln!("LOAD_LOG is `sink` (default) or `stdout`, not `{other}`");
            std::process::exit(2);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => serve(),
        ["--mint", kind] => print_tokens(kind, "1"),
        ["--mint", kind, count] => print_tokens(kind, count),
        _ => {
            eprintln!("usage: load_server [--mint hs256|es256|expired [COUNT]]");
            std::process::exit(2);
        }
    }
}

fn print_tokens(kind: &str, count: &str) {
    let Ok(count) = count.parse() else {
        eprintln!("--mint KIND COUNT takes a whole number, not `{count}`");
        std::process::exit(2);
    };
    let Some(tokens) = mint(kind, count) else {
        eprintln!("--mint takes hs256, es256 or expired, not `{kind}`");
        std::process::exit(2);
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for token in tokens {
        writeln!(out, "{token}").expect("stdout");
    }
    out.flush().expect("stdout");
}

fn serve() {
    install_tracing();
    let addr = std::env::var("LOAD_ADDR").unwrap_or_else(|_| "127.0.0.1:3100".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&addr).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("cannot bind {addr}: {e}");
                std::process::exit(1);
            }
        };
        let bound = listener.local_addr().expect("local address");
        println!("listening on http://{bound}");
        std::io::stdout().flush().expect("stdout");
        axum::serve(listener, app()).await.expect("server error");
    });
}
