//! `auth-diagnostics decode`, `explain` and `diff`: the real binary, as a user runs it.
//! What a person sees (text, exit code) and what a program reads (`--json` fields); no
//! token, secret, password or cookie value ever printed; bad input exits 2, never panics.

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

const SECRET: &str = "cli-test-secret-7f3e";
const ISSUER: &str = "https://issuer.cli.test";

/// What the command printed, and its exit code.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    #[track_caller]
    fn never_shows(&self, secret: &str) {
        assert!(
            !self.stdout.contains(secret),
            "stdout shows a secret: {}",
            self.stdout
        );
        assert!(
            !self.stderr.contains(secret),
            "stderr shows a secret: {}",
            self.stderr
        );
    }
}

/// Runs the binary with `args`, `env` and `stdin`; colour off (stdout is a pipe anyway).
fn run_with(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_auth-diagnostics"));
    cmd.args(args)
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the binary runs");
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "panic: {}", run.stderr);
    assert!(
        !run.stdout.contains('\x1b'),
        "colour on a pipe: {}",
        run.stdout
    );
    run
}

fn run(args: &[&str]) -> Run {
    run_with(args, &[], b"")
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A file in a fresh temporary directory.
fn temp(name: &str, bytes: &[u8]) -> String {
    // Under target/: gone with `cargo clean`, and each run writes over the last.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An HS256 token with `claims` over sensible defaults.
fn mint(secret: &str, claims: Value) -> String {
    let mut all = json!({"iss": ISSUER, "aud": "cli-api", "sub": "alice", "iat": now(),
                         "exp": now() + 3600});
    for (k, v) in claims.as_object().unwrap() {
        all[k] = v.clone();
    }
    let header = Header {
        typ: Some("at+jwt".into()),
        ..Header::default()
    };
    encode(&header, &all, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn signature(token: &str) -> &str {
    token.rsplit('.').next().unwrap()
}

// ---------------------------------------------------------------------------------------
// decode
// ---------------------------------------------------------------------------------------

#[test]
fn decode_expired_token_says_how_long_ago_and_exits_1() {
    let token = mint(SECRET, json!({"exp": now() - (3 * 3600 + 2 * 60 + 5)}));
    let r = run(&["decode", &token]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("expired 3h 2m ago"), "{}", r.stdout);
    assert!(r.stdout.contains("\"sub\": \"alice\""), "{}", r.stdout);
    assert!(r.stdout.contains("at+jwt"));
    assert!(r.stdout.contains("Not verified"));
    // The token and its signature are never printed, only the decoded parts.
    r.never_shows(&token);
    r.never_shows(signature(&token));
}

#[test]
fn decode_json_has_times_scopes_type_and_binding() {
    let token = mint(
        SECRET,
        json!({"exp": now() + 54 * 60 + 30, "scope": "orders:read admin",
               "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}),
    );
    let r = run(&["decode", "--json", &token]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let v = r.json();
    let rel = v["times"]["exp"]["relative"].as_str().unwrap();
    assert!(rel.starts_with("valid for 54m"), "{rel}");
    assert_eq!(v["times"]["exp"]["state"], "valid");
    assert!(v["times"]["exp"]["utc"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["times"]["iat"]["state"], "issued");
    assert_eq!(v["scopes"], json!(["orders:read", "admin"]));
    assert_eq!(v["typ"], "at+jwt");
    assert_eq!(v["header"]["alg"], "HS256");
    assert_eq!(v["claims"]["sub"], "alice");
    assert!(v["cnf"]["jkt"].is_string());
    assert_eq!(
        (v["expired"].clone(), v["ok"].clone()),
        (json!(false), json!(true))
    );
    assert!(v["verification"].is_null());
    assert!(v["fingerprint"].as_str().unwrap().starts_with("hmac:"));
    r.never_shows(signature(&token));
}

#[test]
fn decode_not_yet_valid_exits_1() {
    let token = mint(SECRET, json!({"nbf": now() + 7230}));
    let r = run(&["decode", "--json", &token]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["not_yet_valid"], true);
    assert!(r.json()["times"]["nbf"]["relative"]
        .as_str()
        .unwrap()
        .starts_with("not valid for another 2h 0m"));
}

/// `decode --json --secret-env S TOKEN [more]` with S set to `secret`.
fn verify(token: &str, secret: &str, more: &[&str]) -> Run {
    let mut args = vec!["decode", "--json", "--secret-env", "AD_TEST_SECRET"];
    args.extend_from_slice(more);
    args.push(token);
    let r = run_with(&args, &[("AD_TEST_SECRET", secret)], b"");
    r.never_shows(secret);
    r.never_shows(signature(token));
    r
}

#[test]
fn decode_verifies_with_a_secret_and_names_the_crate_reason() {
    let good = mint(SECRET, json!({}));
    let r = verify(
        &good,
        SECRET,
        &["--issuer", ISSUER, "--audience", "cli-api"],
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.json()["verification"]["verified"], true);
    assert!(r.json()["verification"]["reason"].is_null());

    let expired = mint(SECRET, json!({"exp": now() - 3600}));
    let r = verify(&expired, SECRET, &[]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["verification"]["reason"], "token_expired");
    assert!(r.json()["verification"]["hint"]
        .as_str()
        .unwrap()
        .contains("fresh token"));

    let r = verify(&good, "another-secret-entirely", &[]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.json()["verification"]["reason"],
        "token_signature_invalid"
    );

    let r = verify(&good, SECRET, &["--issuer", "https://elsewhere.test"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["verification"]["reason"], "token_issuer_mismatch");

    let r = verify(&good, SECRET, &["--audience", "other-api"]);
    assert_eq!(
        r.json()["verification"]["reason"],
        "token_audience_mismatch"
    );
}

#[test]
fn decode_text_names_the_failure_and_the_fix() {
    let expired = mint(SECRET, json!({"exp": now() - 600}));
    let r = run_with(
        &["decode", "--secret-env", "AD_TEST_SECRET", &expired],
        &[("AD_TEST_SECRET", SECRET)],
        b"",
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("Verification failed: token_expired"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Fix: "));
    r.never_shows(SECRET);
}

#[test]
fn decode_reads_the_secret_from_a_file_and_the_token_from_stdin() {
    let file = temp("secret.txt", format!("{SECRET}\n").as_bytes());
    let token = mint(SECRET, json!({}));
    let stdin = format!("Authorization: Bearer {token}\n");
    let r = run_with(
        &["decode", "--json", "--secret-file", &file, "-"],
        &[],
        stdin.as_bytes(),
    );
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert_eq!(r.json()["verification"]["verified"], true);
    r.never_shows(SECRET);
}

#[test]
fn decode_verifies_with_a_pem_public_key() {
    let dir = format!("{}/../tests/keys", env!("CARGO_MANIFEST_DIR"));
    let private = std::fs::read(format!("{dir}/rsa_private.pem")).unwrap();
    let claims = json!({"iss": ISSUER, "aud": "cli-api", "exp": now() + 600});
    let header = Header::new(jsonwebtoken::Algorithm::RS256);
    let token = encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(&private).unwrap(),
    )
    .unwrap();
    let public = format!("{dir}/rsa_public.pem");
    let r = run(&["decode", "--json", "--key", &public, &token]);
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert_eq!(r.json()["verification"]["verified"], true);
    // Another family's key: the algorithm is refused, not a bad signature.
    let ec = format!("{dir}/ec256_public.pem");
    let r = run(&["decode", "--json", "--key", &ec, &token]);
    assert_eq!(
        r.json()["verification"]["reason"],
        "token_algorithm_rejected"
    );
}

#[test]
fn decode_refuses_what_is_not_a_jwt_with_exit_2() {
    let r = run(&["decode", "not-a-token"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not a JWT"), "{}", r.stderr);
    let r = run(&["decode", "eyJ!!!.eyJ.sig"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not base64url"), "{}", r.stderr);
    let r = run(&["decode", "a.b.c.d.e"]);
    assert!(r.stderr.contains("JWE"), "{}", r.stderr);
    let r = run_with(&["decode", "-"], &[], b"\xff\xfe\x00garbage");
    assert_eq!(r.code, 2);
    let r = run_with(&["decode", "-"], &[], b"");
    assert_eq!(r.code, 2);
    let r = run(&[
        "decode",
        "--secret-env",
        "AD_UNSET_VARIABLE_X",
        &mint(SECRET, json!({})),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not set"));
}

// ---------------------------------------------------------------------------------------
// explain
// ---------------------------------------------------------------------------------------

fn ids(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn explain_an_expired_token_from_the_demo() {
    let r = run(&["explain", &fixture("demo_me_expired.txt")]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("HTTP/1.1 401 Unauthorized"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Reason: token_expired"));
    assert!(r.stdout.contains("a Bearer token"));
    assert!(r.stdout.contains("Obtain a fresh token"));
    assert!(r.stdout.contains("No standards violation found"));
    let v = run(&["explain", "--json", &fixture("demo_me_expired.txt")]).json();
    assert_eq!(v["status"], 401);
    assert_eq!(v["reason"], "token_expired");
    assert_eq!(v["reason_known"], true);
    assert_eq!(v["challenges"][0]["scheme"], "Bearer");
    assert_eq!(v["challenges"][0]["params"]["error"], "invalid_token");
    assert_eq!(v["problem"]["status"], 401);
    assert!(ids(&v).is_empty(), "{v}");
    assert_eq!(v["ok"], false);
}

#[test]
fn explain_with_the_request_says_what_was_sent_without_the_token() {
    let req = std::fs::read_to_string(fixture("demo_me_expired.request.curl")).unwrap();
    let token = req
        .split("Bearer ")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let r = run(&[
        "explain",
        &fixture("demo_me_expired.txt"),
        "--request",
        &fixture("demo_me_expired.request.curl"),
    ]);
    assert!(
        r.stdout.contains("Authorization: Bearer (hmac:"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("expired"));
    r.never_shows(token);
    let v = run(&[
        "explain",
        "--json",
        &fixture("demo_me_expired.txt"),
        "--request",
        &fixture("demo_me_expired.request.curl"),
    ])
    .json();
    assert_eq!(v["request"]["credentials"][0]["scheme"], "Bearer");
    assert_eq!(v["request"]["path"], "/me");
}

#[test]
fn explain_demo_scope_and_basic_answers() {
    let v = run(&[
        "explain",
        "--json",
        &fixture("demo_admin_insufficient_scope.txt"),
    ])
    .json();
    assert_eq!(v["status"], 403);
    assert_eq!(v["reason"], "insufficient_scope");
    assert_eq!(v["challenges"][0]["params"]["scope"], "admin");
    assert!(ids(&v).is_empty(), "{v}");
    let v = run(&[
        "explain",
        "--json",
        &fixture("demo_basic_wrong_password.txt"),
    ])
    .json();
    assert_eq!(v["status"], 401);
    assert!(ids(&v).is_empty(), "{v}");
    assert!(
        v["server_wants"]
            .to_string()
            .contains("user name and password"),
        "{v}"
    );
}

#[test]
fn explain_flags_a_401_without_challenge() {
    let r = run(&["explain", "--json", &fixture("broken_401_no_challenge.txt")]);
    assert_eq!(r.code, 1);
    let v = r.json();
    let found = ids(&v);
    for id in [
        "challenge_missing",
        "no_store_missing",
        "problem_content_type",
    ] {
        assert!(found.contains(&id.to_owned()), "{id}: {found:?}");
    }
    let missing = &v["findings"][0];
    assert_eq!(missing["severity"], "error");
    assert!(missing["rule"].as_str().unwrap().contains("RFC 9110"));
    let text = run(&["explain", &fixture("broken_401_no_challenge.txt")]).stdout;
    assert!(text.contains("violation [challenge_missing]"), "{text}");
}

#[test]
fn explain_flags_a_403_to_a_request_without_credentials() {
    let resp = fixture("broken_403_no_credentials.txt");
    let with = run(&[
        "explain",
        "--json",
        &resp,
        "--request",
        &fixture("request_no_credentials.http"),
    ]);
    assert_eq!(ids(&with.json()), ["forbidden_without_credentials"]);
    assert!(with.json()["fix"]
        .as_str()
        .unwrap()
        .contains("no credentials"));
    // Without the request nobody knows what was sent: nothing to flag but the failure.
    let without = run(&["explain", "--json", &resp]);
    assert!(ids(&without.json()).is_empty());
    assert_eq!(without.code, 1);
    // The demo keeps 403 for a request that carried a cookie: that is the app's call.
    let kept = run(&[
        "explain",
        "--json",
        &fixture("demo_legacy_forbidden_cookie.txt"),
        "--request",
        &fixture("demo_legacy_forbidden_cookie.request.curl"),
    ]);
    assert!(!ids(&kept.json()).contains(&"forbidden_without_credentials".to_owned()));
}

#[test]
fn explain_flags_malformed_challenges_and_mismatched_errors() {
    let v = run(&[
        "explain",
        "--json",
        &fixture("broken_malformed_challenge.txt"),
    ])
    .json();
    assert_eq!(ids(&v), ["challenge_malformed"]);
    assert!(v["challenges"].as_array().unwrap().is_empty());
    let r = run(&["explain", "--json", &fixture("broken_bearer_mismatch.txt")]);
    let v = r.json();
    assert_eq!(v["version"], "HTTP/2");
    let found = ids(&v);
    assert!(
        found.contains(&"bearer_error_status_mismatch".to_owned()),
        "{found:?}"
    );
    assert!(
        found.contains(&"problem_status_mismatch".to_owned()),
        "{found:?}"
    );
    let text = run(&["explain", &fixture("broken_bearer_mismatch.txt")]).stdout;
    assert!(text.contains("goes with status 403, not 401"), "{text}");
}

#[test]
fn explain_takes_the_last_of_several_responses() {
    let v = run(&["explain", "--json", &fixture("multi_response.txt")]).json();
    assert_eq!(v["status"], 401);
    assert_eq!(v["earlier_statuses"], json!([100, 302]));
    assert_eq!(v["challenges"][0]["scheme"], "Basic");
    assert!(ids(&v).is_empty(), "{v}");
}

#[test]
fn explain_reads_har_entries() {
    let har = fixture("capture.har");
    let v = run(&["explain", "--json", &har]).json();
    assert_eq!(v["status"], 401, "the last rejected entry by default");
    assert_eq!(v["reason"], "token_expired");
    assert_eq!(v["request"]["credentials"][0]["kind"], "authorization");
    let ok = run(&["explain", "--json", &har, "--entry", "0"]);
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    assert_eq!(ok.json()["ok"], true);
    let missing = run(&["explain", &har, "--entry", "7"]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("no entry 7"));
}

#[test]
fn explain_a_success_exits_0() {
    let r = run(&["explain", &fixture("demo_public_ok.txt")]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("200 OK"));
}

#[test]
fn explain_lf_only_input_from_stdin() {
    let resp = b"HTTP/1.1 401 Unauthorized\nWWW-Authenticate: Bearer realm=\"api\"\nCache-Control: no-store\n\n";
    let r = run_with(&["explain", "--json", "-"], &[], resp);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["challenges"][0]["params"]["realm"], "api");
    assert!(ids(&r.json()).is_empty());
}

// ---------------------------------------------------------------------------------------
// diff
// ---------------------------------------------------------------------------------------

fn fields(v: &Value) -> Vec<String> {
    v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect()
}

/// Every token and cookie value in a fixture: none may be printed.
fn secrets_of(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(file)).unwrap();
    let mut out: Vec<String> = text
        .split(|c: char| c == '"' || c == '=' || c == '&' || c.is_whitespace())
        .filter(|w| w.starts_with("eyJ"))
        .map(str::to_owned)
        .collect();
    out.extend(["abc123", "zzz999"].map(String::from));
    out
}

#[test]
fn diff_header_token_against_query_token_with_other_claims() {
    let (a, b) = (fixture("diff_a_header.curl"), fixture("diff_b_query.curl"));
    let r = run(&["diff", &a, &b]);
    assert_eq!(r.code, 1);
    assert!(r
        .stdout
        .contains("Differences that matter for authentication"));
    for s in secrets_of("diff_a_header.curl")
        .iter()
        .chain(&secrets_of("diff_b_query.curl"))
    {
        r.never_shows(s);
    }
    let v = run(&["diff", "--json", &a, &b]).json();
    let f = fields(&v);
    for want in [
        "auth_scheme",
        "credential_location",
        "claim.iss",
        "claim.aud",
        "claim.sub",
        "claim.scope",
        "claim.exp",
        "cookies",
        "cookie.session",
    ] {
        assert!(f.contains(&want.to_owned()), "{want}: {f:?}");
    }
    assert!(!f.contains(&"host".to_owned()));
    assert_eq!(v["b"]["credentials"][0]["name"], "?access_token");
    assert_eq!(v["ok"], false);
    let session = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["field"] == "cookie.session")
        .unwrap();
    assert!(session["a"].as_str().unwrap().starts_with("hmac:"));
}

#[test]
fn diff_spots_a_proxy() {
    let v = run(&[
        "diff",
        "--json",
        &fixture("diff_a_header.curl"),
        &fixture("diff_c_proxy.curl"),
    ]);
    assert_eq!(v.code, 1);
    assert_eq!(fields(&v.json()), ["proxy"]);
    assert!(v.json()["differences"][0]["b"]
        .as_str()
        .unwrap()
        .contains("X-Forwarded-Host"));
}

#[test]
fn diff_of_the_same_request_in_two_forms_exits_0() {
    let r = run(&[
        "diff",
        &fixture("diff_a_header.curl"),
        &fixture("diff_d_raw.http"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("No difference that matters"));
    let same = temp(
        "bearer-opt.curl",
        b"curl --oauth2-bearer tok-123 https://h.example/x",
    );
    let header = temp(
        "bearer-h.curl",
        b"curl -H 'Authorization: Bearer tok-123' https://h.example/x",
    );
    let r = run(&["diff", &same, &header]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    r.never_shows("tok-123");
}

#[test]
fn diff_basic_credentials_shows_users_not_passwords() {
    let a = temp(
        "basic-a.curl",
        b"curl -u alice:pw-one-secret https://h.example/x",
    );
    let b = temp(
        "basic-b.curl",
        b"curl --user alice:pw-two-secret -X POST https://h.example/x",
    );
    let r = run(&["diff", "--json", &a, &b]);
    assert_eq!(r.code, 1);
    let f = fields(&r.json());
    assert!(f.contains(&"credential Authorization".to_owned()), "{f:?}");
    assert!(f.contains(&"method".to_owned()));
    assert!(!f.contains(&"basic_user".to_owned()));
    r.never_shows("pw-one-secret");
    r.never_shows("pw-two-secret");
}

#[test]
fn diff_compares_har_entries() {
    let har = fixture("capture.har");
    let v = run(&["diff", "--json", &har, &har, "--entry-b", "1"]).json();
    let f = fields(&v);
    assert!(
        f.contains(&"path".to_owned()) && f.contains(&"auth_scheme".to_owned()),
        "{f:?}"
    );
}

// ---------------------------------------------------------------------------------------
// bad input
// ---------------------------------------------------------------------------------------

#[test]
fn bad_input_exits_2_without_a_panic() {
    let garbage = temp("garbage.txt", b"\x00\x01 this is not HTTP at all \xff\xfe");
    let empty = temp("empty.txt", b"");
    let big = temp("big.txt", &vec![b'a'; 10 * 1024 * 1024 + 10]);
    let json_junk = temp("junk.har", b"{\"log\": 3}");
    let unclosed = temp("unclosed.curl", b"curl 'https://h.example/x");
    let no_url = temp("nourl.curl", b"curl -H 'X: y'");
    for args in [
        vec!["explain", garbage.as_str()],
        vec!["explain", empty.as_str()],
        vec!["explain", big.as_str()],
        vec!["explain", json_junk.as_str()],
        vec!["explain", "/nonexistent/file"],
        vec!["diff", garbage.as_str(), garbage.as_str()],
        vec!["diff", unclosed.as_str(), no_url.as_str()],
        vec!["diff", no_url.as_str(), no_url.as_str()],
        vec!["diff", big.as_str(), empty.as_str()],
        vec!["decode", "--key", garbage.as_str(), "a.b.c"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {} {}", r.stdout, r.stderr);
        assert!(
            r.stderr.starts_with("auth-diagnostics: "),
            "{args:?}: {}",
            r.stderr
        );
    }
    let r = run(&["explain", &big]);
    assert!(r.stderr.contains("MiB"), "{}", r.stderr);
}

#[test]
fn extreme_claims_do_not_panic() {
    let token = mint(
        SECRET,
        json!({"exp": i64::MIN, "nbf": 1e300, "iat": "yesterday"}),
    );
    let r = run(&["decode", "--json", &token]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(r.json()["expired"], true);
    let a = temp(
        "extreme.curl",
        format!("curl -H 'Authorization: Bearer {token}' h.example").as_bytes(),
    );
    let r = run(&["diff", &a, &a]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    r.never_shows(&token);
}

/// An RS256 token signed by `tests/keys/rsa_private.pem`, kid `cli-test-rsa`.
fn rsa_token() -> String {
    let dir = format!("{}/../tests/keys", env!("CARGO_MANIFEST_DIR"));
    let private = std::fs::read(format!("{dir}/rsa_private.pem")).unwrap();
    let claims = json!({"iss": ISSUER, "aud": "cli-api", "exp": now() + 600});
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("cli-test-rsa".into());
    encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(&private).unwrap(),
    )
    .unwrap()
}

/// Serves `body` as JSON to every connection on a loopback port; the requests it got are
/// sent to the returned channel (first line and headers).
fn serve_json(body: String) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                head.push_str(&line);
                line.clear();
            }
            let _ = tx.send(head);
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}"), rx)
}

#[test]
fn decode_verifies_with_a_jwks_file_and_a_jwks_url_without_sending_the_token() {
    let token = rsa_token();
    let jwks = fixture("rsa_jwks.json");
    let r = run(&["decode", "--json", "--key", &jwks, &token]);
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert_eq!(r.json()["verification"]["verified"], true);

    let (base, seen) = serve_json(std::fs::read_to_string(&jwks).unwrap());
    let url = format!("{base}/jwks.json");
    let r = run(&[
        "decode", "--json", "--key", &url, "--issuer", ISSUER, &token,
    ]);
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert_eq!(r.json()["verification"]["verified"], true);
    let requests: Vec<String> = seen.try_iter().collect();
    assert!(!requests.is_empty());
    for req in &requests {
        assert!(req.starts_with("GET /jwks.json "), "{req}");
        assert!(
            !req.contains(signature(&token)),
            "the token was sent: {req}"
        );
    }
    let r = run(&[
        "decode",
        "--json",
        "--key",
        &url,
        "--issuer",
        "https://other.test",
        &token,
    ]);
    assert_eq!(r.json()["verification"]["reason"], "token_issuer_mismatch");
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let token = mint(SECRET, json!({ "sub": "alice", "exp": now() + 60 }));
    for _ in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_auth-diagnostics"))
            .args(["decode", &token, "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the command writes (`… | head -c0`).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        // 141 as a shell reports SIGPIPE; 0 when it wrote before the pipe closed.
        assert!(
            matches!(out.status.code(), Some(141 | 0)),
            "{:?}",
            out.status
        );
    }
}

#[test]
fn help_documents_the_exit_codes() {
    let help = run(&["--help"]);
    assert_eq!(help.code, 0);
    for text in [
        "decode",
        "explain",
        "probe",
        "diff",
        "Exit codes: 0",
        "1 problems",
        "2 usage",
    ] {
        assert!(help.stdout.contains(text), "{text}: {}", help.stdout);
    }
}

#[test]
fn explain_names_the_fix_for_the_demo_answers_without_a_token_and_with_one_in_the_query() {
    let none = run(&["explain", &fixture("demo_me_no_token.txt"), "--json"]);
    assert_eq!(none.code, 1, "{}", none.stdout);
    let json = none.json();
    assert_eq!(json["reason"], "credentials_missing");
    assert_eq!(json["findings"], json!([]), "the demo breaks no standard");
    let wants = json["server_wants"].to_string();
    assert!(wants.contains("Authorization: Bearer <token>"), "{wants}");
    assert!(json["fix"].as_str().unwrap().contains("proxy"), "{json}");

    let query = run(&["explain", &fixture("demo_me_query_token.txt")]);
    assert_eq!(query.code, 1);
    assert!(
        query.stdout.contains("credentials_wrong_location"),
        "{}",
        query.stdout
    );
    assert!(query.stdout.contains("into the header"), "{}", query.stdout);
    assert!(
        query.stdout.contains("No standards violation found"),
        "{}",
        query.stdout
    );
}

// ---------------------------------------------------------------------------------------
// fingerprints and hostile text
// ---------------------------------------------------------------------------------------

/// The first 8 hex digits of the unkeyed SHA-256 of `value`: what an offline attacker
/// could brute-force.
fn unkeyed(value: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(value.as_bytes());
    d.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

#[test]
fn fingerprints_are_keyed_per_run_and_not_the_plain_sha256() {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("alice:pw-one-secret");
    let a = temp(
        "fp-a.curl",
        b"curl -u alice:pw-one-secret -b 'sid=c00kie' -H 'X-Api-Key: k3y' https://h.example/x",
    );
    let b = temp(
        "fp-b.curl",
        b"curl -u alice:pw-one-secret -b 'sid=c00kie' -H 'X-Api-Key: k3y' https://h.example/x",
    );
    let r = run(&["diff", "--json", &a, &b]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let v = r.json();
    let fp = |side: &str, i: usize| {
        v[side]["credentials"][i]["fingerprint"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for i in 0..3 {
        assert_eq!(fp("a", i), fp("b", i), "equal within one run");
        assert!(fp("a", i).starts_with("hmac:"), "{}", fp("a", i));
    }
    assert!(v["fingerprint_note"]
        .as_str()
        .unwrap()
        .contains("differ between runs"));
    for plain in [basic.as_str(), "c00kie", "k3y"] {
        assert!(
            !r.stdout.contains(&unkeyed(plain)),
            "unkeyed hash of {plain} printed"
        );
    }
    let text = run(&["diff", &a, &b]);
    assert!(
        text.stdout.contains("differ between runs"),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains(&unkeyed(&basic)), "{}", text.stdout);
    let again = run(&["diff", "--json", &a, &b]).json();
    assert_ne!(
        again["a"]["credentials"][0]["fingerprint"], v["a"]["credentials"][0]["fingerprint"],
        "another run, another key"
    );
}

/// Escape sequences and a bidi override, as a hostile token or capture would carry them.
const HOSTILE: &str = "x\u{1b}[2Jy\u{1b}]0;title\u{7}z\u{202e}";

#[track_caller]
fn no_raw_escapes(r: &Run, what: &str) {
    for c in ['\u{1b}', '\u{7}', '\u{202e}', '\u{9b}'] {
        assert!(!r.stdout.contains(c), "{what}: raw {c:?} in {}", r.stdout);
    }
    assert!(!r.stderr.contains('\u{1b}'), "{what}: {}", r.stderr);
}

/// A token whose header `typ` and claims `iss`, `scope` and `sub` carry [`HOSTILE`].
fn hostile_token() -> String {
    let h = HOSTILE.to_owned();
    let header = Header {
        typ: Some(h.clone()),
        ..Header::default()
    };
    let claims = json!({"iss": h, "aud": h, "sub": h, "scope": format!("read {h}"),
                        "exp": now() + 600});
    encode(
        &header,
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[test]
fn escape_sequences_from_input_never_reach_the_terminal() {
    let token = hostile_token();
    for json in [false, true] {
        let mut args = vec!["decode", &token];
        if json {
            args.insert(1, "--json");
        }
        let r = run(&args);
        no_raw_escapes(&r, "decode");
        if json {
            assert!(
                r.json()["typ"].as_str().unwrap().contains('\u{202e}'),
                "same meaning"
            );
        }
    }
    let a = temp(
        "hostile-a.curl",
        format!("curl -H 'Authorization: Bearer {token}' https://h.example/x").as_bytes(),
    );
    let b = temp(
        "hostile-b.curl",
        b"curl -H 'Authorization: Bearer abc' https://h.example/x",
    );
    for args in [vec!["diff", &a, &b], vec!["diff", "--json", &a, &b]] {
        let r = run(&args);
        no_raw_escapes(&r, "diff");
        if args.contains(&"--json") {
            r.json();
        }
    }
    let har = json!({"log": {"entries": [{
        "request": {"method": format!("GET{HOSTILE}"), "url": format!("https://h{HOSTILE}.example/p{HOSTILE}"),
                    "headers": [{"name": "Authorization", "value": format!("Bearer {token}")}]},
        "response": {"status": 401, "httpVersion": format!("HTTP/1.1{HOSTILE}"),
                     "headers": [{"name": "WWW-Authenticate", "value": "Bearer realm=\"x\""},
                                 {"name": "Content-Type", "value": format!("text/plain{HOSTILE}")}],
                     "content": {"text": format!("{{\"type\":\"about:blank\",\"title\":\"t\",\"detail\":\"{HOSTILE}\"}}")}}
    }]}});
    let har = serde_json::to_string(&har).unwrap();
    let har = temp("hostile.har", har.as_bytes());
    for args in [vec!["explain", &har], vec!["explain", "--json", &har]] {
        let r = run(&args);
        no_raw_escapes(&r, "explain");
        if args.contains(&"--json") {
            r.json();
        }
    }
}

// ---------------------------------------------------------------------------------------
// explain: SHOULDs warn, ordinary JSON is no problem document, credentials curl sends
// ---------------------------------------------------------------------------------------

/// The finding `id` of an `explain --json` report.
fn finding<'a>(v: &'a Value, id: &str) -> Option<&'a Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
}

#[test]
fn explain_does_not_take_ordinary_json_for_a_problem_document() {
    // GitHub: application/json, `status` a string.
    let github = temp(
        "github.txt",
        b"HTTP/2 401\r\nwww-authenticate: Bearer realm=\"GitHub\"\r\ncache-control: no-store\r\n\
          content-type: application/json; charset=utf-8\r\n\r\n\
          {\"message\":\"Bad credentials\",\"documentation_url\":\"https://docs.github.com/rest\",\"status\":\"401\"}",
    );
    // Spring Boot's default error JSON.
    let spring = temp(
        "spring.txt",
        b"HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\n\r\n\
          {\"timestamp\":\"2024-05-01T10:00:00.000+00:00\",\"status\":403,\"error\":\"Forbidden\",\"path\":\"/api/orders\"}",
    );
    // A problem document whose status is not a number: ignored (RFC 9457 §3.1).
    let stringy = temp(
        "stringy.txt",
        b"HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm=\"x\"\r\ncache-control: no-store\r\n\
          content-type: application/problem+json\r\n\r\n{\"type\":\"about:blank\",\"title\":\"t\",\"status\":\"403\"}",
    );
    for file in [&github, &spring, &stringy] {
        let v = run(&["explain", "--json", file]).json();
        assert!(ids(&v).is_empty(), "{file}: {:?}", ids(&v));
    }
}

#[test]
fn explain_grades_shoulds_as_warnings_and_cites_accurately() {
    let r = run(&[
        "explain",
        "--json",
        &fixture("broken_403_no_credentials.txt"),
        "--request",
        &fixture("request_no_credentials.http"),
    ]);
    let v = r.json();
    assert_eq!(
        finding(&v, "forbidden_without_credentials").unwrap()["severity"],
        "warning"
    );
    let v = run(&["explain", "--json", &fixture("broken_bearer_mismatch.txt")]).json();
    assert_eq!(
        finding(&v, "bearer_error_status_mismatch").unwrap()["severity"],
        "warning"
    );
    let v = run(&["explain", "--json", &fixture("broken_401_no_challenge.txt")]).json();
    let no_store = finding(&v, "no_store_missing").unwrap();
    assert_eq!(no_store["severity"], "warning");
    let cited = format!("{} {}", no_store["rule"], no_store["message"]);
    assert!(!cited.contains("9111"), "{cited}");
    assert!(cited.contains("reasons.md"), "{cited}");

    // A bare `Bearer` challenge breaks RFC 6750 §3's MUST.
    let bare = temp(
        "bare-bearer.txt",
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nCache-Control: no-store\r\n\r\n",
    );
    let v = run(&["explain", "--json", &bare]).json();
    let f = finding(&v, "bearer_without_params").expect("flagged");
    assert_eq!(f["severity"], "error");
}

#[test]
fn explain_counts_client_certificates_and_url_credentials() {
    let resp = fixture("broken_403_no_credentials.txt");
    for (name, line) in [
        (
            "cert.curl",
            "curl --cert client.pem:s3cret-pass https://h.example/x",
        ),
        ("cert-e.curl", "curl -E client.pem https://h.example/x"),
        ("userinfo.curl", "curl https://bob:pw-in-url@h.example/x"),
    ] {
        let req = temp(name, line.as_bytes());
        let r = run(&["explain", "--json", &resp, "--request", &req]);
        let v = r.json();
        assert!(
            finding(&v, "forbidden_without_credentials").is_none(),
            "{name}: {v}"
        );
        assert!(
            !v["request"]["credentials"].as_array().unwrap().is_empty(),
            "{name}"
        );
        r.never_shows("s3cret-pass");
        r.never_shows("pw-in-url");
    }
    // `--negotiate -u :` is Kerberos, not Basic.
    let req = temp(
        "negotiate.curl",
        b"curl --negotiate -u : https://h.example/x",
    );
    let v = run(&["explain", "--json", &resp, "--request", &req]).json();
    let creds = v["request"]["credentials"].as_array().unwrap();
    assert_eq!(creds.len(), 1, "{creds:?}");
    assert_eq!(creds[0]["scheme"], "Negotiate");
    let text = run(&["explain", &resp, "--request", &req]).stdout;
    assert!(!text.contains("Basic"), "{text}");
    assert!(text.contains("Negotiate"), "{text}");
}

#[test]
fn diff_of_chrome_bash_and_cmd_copies_of_one_request_exits_0() {
    let (bash, cmd) = (fixture("chrome_bash.curl"), fixture("chrome_cmd.curl"));
    let r = run(&["diff", "--json", &bash, &cmd]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let v = r.json();
    assert_eq!(v["a"]["host"], "api.example.com");
    assert_eq!(v["a"], v["b"], "one request, read the same");
    let same = v["same"].as_array().unwrap();
    for field in ["cookie.session", "cookie.theme", "credential Authorization"] {
        assert!(same.iter().any(|s| s == field), "{field}: {same:?}");
    }
    r.never_shows("tok-chrome-123");
    let text = run(&["diff", &bash, &cmd]);
    assert_eq!(text.code, 0);
    assert!(
        text.stdout.contains("No difference that matters"),
        "{}",
        text.stdout
    );
}

/// An RS256 token signed by `tests/keys/rsa_private.pem` with `claims`.
fn rsa_token_with(claims: Value) -> String {
    let dir = format!("{}/../tests/keys", env!("CARGO_MANIFEST_DIR"));
    let private = std::fs::read(format!("{dir}/rsa_private.pem")).unwrap();
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("cli-test-rsa".into());
    let key = EncodingKey::from_rsa_pem(&private).unwrap();
    encode(&header, &claims, &key).unwrap()
}

#[test]
fn decode_key_urls_are_sniffed_not_guessed_from_their_path() {
    let jwks = std::fs::read_to_string(fixture("rsa_jwks.json")).unwrap();
    let (keys_base, seen) = serve_json(jwks);
    // Okta's `/oauth2/v1/keys`, Azure's `/discovery/v2.0/keys`, Ping's `/pf/JWKS`.
    for path in ["/oauth2/v1/keys", "/discovery/v2.0/keys", "/pf/JWKS"] {
        let url = format!("{keys_base}{path}");
        let r = run(&["decode", "--json", "--key", &url, &rsa_token()]);
        assert_eq!(r.code, 0, "{path}: {} {}", r.stdout, r.stderr);
        assert_eq!(r.json()["verification"]["verified"], true, "{path}");
        let requests: Vec<String> = seen.try_iter().collect();
        assert_eq!(requests.len(), 1, "fetched once: {requests:?}");
    }
    // A token without `iss`, verified by a JWK set and no --issuer: no issuer enforced.
    let no_iss = rsa_token_with(json!({"aud": "cli-api", "exp": now() + 600}));
    let r = run(&[
        "decode",
        "--json",
        "--key",
        &format!("{keys_base}/keys"),
        &no_iss,
    ]);
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert_eq!(r.json()["verification"]["verified"], true);

    // A discovery document, at its URL or found from the issuer's.
    let doc = json!({"issuer": ISSUER, "jwks_uri": format!("{keys_base}/keys")}).to_string();
    let (issuer_base, _) = serve_json(doc);
    for key in [
        format!("{issuer_base}/.well-known/openid-configuration"),
        issuer_base.clone(),
    ] {
        let r = run(&["decode", "--json", "--key", &key, &rsa_token()]);
        assert_eq!(r.code, 0, "{key}: {} {}", r.stdout, r.stderr);
        assert_eq!(r.json()["verification"]["verified"], true);
        let other_iss =
            rsa_token_with(json!({"iss": "https://other.test", "aud": "x", "exp": now() + 600}));
        let r = run(&["decode", "--json", "--key", &key, &other_iss]);
        assert_eq!(
            r.json()["verification"]["reason"],
            "token_issuer_mismatch",
            "a discovery document names its issuer"
        );
    }
    // Neither: both failures said.
    let (other, _) = serve_json("[1, 2]".into());
    let r = run(&["decode", "--key", &other, &rsa_token()]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr.contains("not a JWK set") && r.stderr.contains("openid-configuration"),
        "{}",
        r.stderr
    );
}
