//! A key or probe URL's password and query never appear in what the command prints, when
//! the URL cannot be reached, answers an error, or is not a valid URL. Every server is
//! in-process on `127.0.0.1`.

#[path = "../../tests/common/http_servers.rs"]
mod http_servers;
use http_servers::{answer, closed_port, serve};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

const ISS: &str = "https://idp.test";

/// The password every URL of the leak test carries.
const PASSWORD: &str = "pw-s3cr3t-91f2";

/// An RS256 token of `iss` signed with `tests/keys/rsa_private.pem`, naming kid `idp-1`.
fn good_token(iss: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/keys");
    let pem = std::fs::read(format!("{dir}/rsa_private.pem")).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("idp-1".to_owned());
    let claims = json!({ "iss": iss, "sub": "alice", "iat": now, "exp": now + 600 });
    encode(&header, &claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap()
}

/// Runs `auth-diagnostics` with `args`; what it printed (stdout and stderr).
async fn command(args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_auth-diagnostics"))
            .args(&args)
            .output()
            .unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!printed.contains("panicked"), "{printed}");
        printed
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_never_prints_a_url_password_or_query() {
    let failing = serve(
        axum::Router::new()
            .route("/jwks", answer(500, "{}"))
            .route("/.well-known/openid-configuration", answer(404, "{}")),
    )
    .await;
    let failing = failing.replacen("://", &format!("://alice:{PASSWORD}@"), 1);
    let closed = format!("http://alice:{PASSWORD}@127.0.0.1:{}", closed_port());
    let token = good_token(ISS);
    let mut runs = Vec::new();
    for key in [
        format!("{closed}/jwks?sig=q9z8y7"),
        format!("{failing}/jwks?sig=q9z8y7"),
    ] {
        runs.push(command(vec!["decode".into(), "--key".into(), key, token.clone()]).await);
    }
    for url in [
        format!("http://alice:{PASSWORD}@127.0.0.1:99999/me"),
        format!("http://alice:{PASSWORD}@/me"),
    ] {
        runs.push(command(vec!["probe".into(), url]).await);
    }
    for printed in &runs {
        assert!(!printed.contains(PASSWORD), "{printed}");
        assert!(!printed.contains("q9z8y7"), "{printed}");
    }
    assert!(runs[0].contains("alice:***@127.0.0.1"), "{}", runs[0]);
}
