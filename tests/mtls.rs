//! Certificate-bound tokens (RFC 8705) with real clients, against the demo process as
//! `cargo run --example demo` runs it: `GET /mtls` takes a Bearer token whose
//! `cnf.x5t#S256` is the SHA-256 thumbprint of the client's certificate.
//!
//! 1. Directly: a rustls client (reqwest with a client identity) presents a certificate
//!    to the demo's TLS listener (`DEMO_TLS_ADDR`).
//! 2. Behind nginx: Debian's nginx, installed with apt-get when missing, ends TLS, asks for
//!    any client certificate and forwards it as RFC 9440 `Client-Cert`
//!    (`interop/nginx/`) to the demo's plain listener, which believes it from
//!    `DEMO_TRUSTED_PROXIES=127.0.0.1`.
//!
//! Each way: the bound certificate is accepted, another one is `certificate_mismatch`,
//! none is `certificate_missing`. A `Client-Cert` header from a peer that is not a trusted
//! proxy is ignored: `certificate_header_untrusted`. Where nginx cannot be had the proxy
//! test skips, except in CI (`CI=true`), where it fails instead.

// Only the apt-get and CI helpers of the common dialect: the demo runs as a process.
#[allow(dead_code)]
#[path = "common/node.rs"]
mod node;
use node::{apt_install, in_ci};
#[path = "common/examples.rs"]
mod examples;

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------------------
// Certificates and tokens
// ---------------------------------------------------------------------------------------

/// A self-signed client certificate made for one test, and its key.
struct ClientCert {
    pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl ClientCert {
    fn new(name: &str) -> ClientCert {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        ClientCert {
            pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
            der: made.cert.der().to_vec(),
        }
    }

    /// `x5t#S256`: base64url (no padding) of the SHA-256 of the DER certificate.
    fn thumbprint(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&self.der))
    }

    /// The RFC 9440 `Client-Cert` value: `:` base64 (padded) of the DER `:`.
    fn client_cert_header(&self) -> String {
        format!(
            ":{}:",
            base64::engine::general_purpose::STANDARD.encode(&self.der)
        )
    }
}

/// A token as `cargo run --example mint` makes it with the demo's defaults (HS256,
/// `demo-hs256-secret`, its issuer and audience), bound to `cert`.
fn bound_token(cert: &ClientCert) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": "https://issuer.demo.local",
        "aud": "demo-api",
        "sub": "alice",
        "iat": now,
        "exp": now + 600,
        "cnf": { "x5t#S256": cert.thumbprint() },
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"demo-hs256-secret"),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------

/// A rustls client that presents `cert` (or no certificate) and trusts any server: the
/// demo's and nginx's certificates are self-signed, made at start-up.
fn client(cert: Option<&ClientCert>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .no_proxy()
        .timeout(Duration::from_secs(10));
    if let Some(cert) = cert {
        let pem = format!("{}{}", cert.pem, cert.key_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// The answer to one request: status, `WWW-Authenticate`, JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    challenge: String,
    body: Value,
}

impl Answer {
    #[track_caller]
    fn accepted(&self) {
        assert_eq!(self.status, 200, "{self:?}");
        assert_eq!(self.body["sub"], "alice", "{self:?}");
    }

    /// A 401 `invalid_token` whose problem body names `reason` (the demo is verbose).
    #[track_caller]
    fn refused(&self, reason: &str) {
        assert_eq!(self.status, 401, "{reason}: {self:?}");
        assert!(
            self.challenge.starts_with("Bearer ")
                && self.challenge.contains(r#"error="invalid_token""#),
            "{reason}: {self:?}"
        );
        assert_eq!(self.body["reason"], reason, "{self:?}");
    }
}

async fn get_mtls(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = client.get(format!("{base}/mtls")).bearer_auth(token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {base}/mtls: {e:?}"));
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        challenge,
        body,
    }
}

// ---------------------------------------------------------------------------------------
// The demo process
// ---------------------------------------------------------------------------------------

/// A demo process (JSON logs, `DEMO_ADDR=127.0.0.1:0`), killed when dropped.
struct Demo {
    child: Child,
    /// `http://ADDR` of the plain listener.
    http: String,
    /// `https://ADDR` of the TLS listener, when `DEMO_TLS_ADDR` was given.
    https: Option<String>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Demo {
    fn start(env: &[(&str, &str)]) -> Demo {
        let mut child = examples::spawn_demo(env);
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let kept = lines.clone();
        std::thread::spawn(move || {
            let mut https = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let addr =
                    |rest: &str| rest.split([' ', '"']).next().unwrap_or_default().to_owned();
                if let Some((_, rest)) = line.split_once("listening on https://") {
                    https = Some(format!("https://{}", addr(rest)));
                }
                // The plain listener's line comes last: both listeners accept by then.
                if let Some((_, rest)) = line.split_once("listening on http://") {
                    let _ = tx.send((format!("http://{}", addr(rest)), https.clone()));
                }
                kept.lock().unwrap().push(line);
            }
        });
        let (http, https) = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addrs) => addrs,
            Err(_) => {
                let _ = child.kill();
                panic!("the demo did not start: {:#?}", lines.lock().unwrap());
            }
        };
        Demo {
            child,
            http,
            https,
            lines,
        }
    }

    /// The JSON log event of the refusal with `reason`, waiting up to 3 s for it.
    fn event(&self, reason: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let found = self.lines.lock().unwrap().iter().rev().find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                (v["reason"] == reason && v["target"] != "auth_diagnostics::audit").then_some(v)
            });
            if let Some(v) = found {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no {reason} event in {:#?}",
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// 1. The demo's own TLS listener
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_certificate_presented_to_the_tls_listener_binds_the_token() {
    let demo = Demo::start(&[("DEMO_TLS_ADDR", "127.0.0.1:0")]);
    let https = demo.https.clone().expect("a `listening on https://` line");
    let alice = ClientCert::new("alice.client.test");
    let other = ClientCert::new("other.client.test");
    let token = bound_token(&alice);

    get_mtls(&client(Some(&alice)), &https, &token, &[])
        .await
        .accepted();
    get_mtls(&client(Some(&other)), &https, &token, &[])
        .await
        .refused("certificate_mismatch");
    get_mtls(&client(None), &https, &token, &[])
        .await
        .refused("certificate_missing");
    // The plain listener's peer (this test) is no trusted proxy: a Client-Cert header
    // naming the bound certificate proves nothing.
    let forged = alice.client_cert_header();
    let plain = client(None);
    get_mtls(&plain, &demo.http, &token, &[("client-cert", &forged)])
        .await
        .refused("certificate_header_untrusted");
    // Over TLS too, a header from an untrusted peer never stands in for the connection's
    // certificate.
    get_mtls(
        &client(Some(&other)),
        &https,
        &token,
        &[("client-cert", &forged)],
    )
    .await
    .refused("certificate_mismatch");
    // The route is the same on both listeners: no header, no certificate.
    get_mtls(&plain, &demo.http, &token, &[])
        .await
        .refused("certificate_missing");
    let event = demo.event("certificate_header_untrusted");
    assert_eq!(event["status"], 401, "{event}");
}

// ---------------------------------------------------------------------------------------
// 2. nginx in front, forwarding the certificate as RFC 9440 `Client-Cert`
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_certificate_forwarded_by_a_trusted_nginx_binds_the_token() {
    let Some(nginx_bin) = nginx() else { return };
    let demo = Demo::start(&[("DEMO_TRUSTED_PROXIES", "127.0.0.1")]);
    let upstream = demo.http.trim_start_matches("http://").to_owned();
    let nginx = Nginx::start(&nginx_bin, &upstream);
    let front = nginx.url();
    let alice = ClientCert::new("alice.client.test");
    let other = ClientCert::new("other.client.test");
    let token = bound_token(&alice);

    get_mtls(&client(Some(&alice)), &front, &token, &[])
        .await
        .accepted();
    get_mtls(&client(Some(&other)), &front, &token, &[])
        .await
        .refused("certificate_mismatch");
    get_mtls(&client(None), &front, &token, &[])
        .await
        .refused("certificate_missing");
    // A client's own Client-Cert never reaches the demo: nginx sets the header itself.
    let forged = alice.client_cert_header();
    get_mtls(&client(None), &front, &token, &[("client-cert", &forged)])
        .await
        .refused("certificate_missing");
    get_mtls(
        &client(Some(&other)),
        &front,
        &token,
        &[("client-cert", &forged)],
    )
    .await
    .refused("certificate_mismatch");
}

/// nginx on `127.0.0.1` with the configuration of `interop/nginx/`, one process in the
/// foreground with everything in its own directory; killed when dropped.
struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    fn start(bin: &Path, upstream: &str) -> Nginx {
        let dir = std::env::temp_dir().join(format!(
            "auth-diagnostics-nginx-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let server = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        std::fs::write(dir.join("server.pem"), server.cert.pem()).unwrap();
        std::fs::write(
            dir.join("server-key.pem"),
            server.signing_key.serialize_pem(),
        )
        .unwrap();
        let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/nginx");
        let template = std::fs::read_to_string(interop.join("nginx.conf")).unwrap();
        // Beside the configuration: the whole directory is what nginx may read.
        std::fs::copy(
            interop.join("client-cert.conf"),
            dir.join("client-cert.conf"),
        )
        .unwrap();
        // A free port may be taken between our probe and nginx's bind: try again.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let conf = template
                .replace("{{DIR}}", dir.to_str().unwrap())
                .replace("{{LISTEN}}", &format!("127.0.0.1:{port}"))
                .replace("{{UPSTREAM}}", upstream)
                .replace("{{TEMP_PATHS}}", &temp_paths(bin, &dir))
                .replace(
                    "{{CLIENT_CERT_MAP}}",
                    dir.join("client-cert.conf").to_str().unwrap(),
                );
            std::fs::write(dir.join("nginx.conf"), conf).unwrap();
            hand_to_nobody(&dir);
            match spawn(bin, &dir, port) {
                Ok(child) => return Nginx { child, port, dir },
                Err(why) => last = why,
            }
        }
        panic!("nginx did not start: {last}");
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The user nginx runs as when the tests run as root (CI): `nobody`/`nogroup`, by
/// `setpriv`. Otherwise it runs as the tests' own user.
const NOBODY: u32 = 65534;

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// When the tests run as root, gives `dir` and everything in it to [`NOBODY`], the user
/// nginx will run as: it writes its pid, log and temp files there and reads the rest.
fn hand_to_nobody(dir: &Path) {
    if !as_root() {
        return;
    }
    std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        std::os::unix::fs::chown(entry.unwrap().path(), Some(NOBODY), Some(NOBODY)).unwrap();
    }
}

/// Starts nginx in `dir` (unprivileged: as [`NOBODY`] when the tests run as root) and
/// waits until it accepts connections on `port`.
fn spawn(bin: &Path, dir: &Path, port: u16) -> Result<Child, String> {
    let mut cmd = if as_root() {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups")
            .arg(bin);
        cmd
    } else {
        Command::new(bin)
    };
    let mut child = cmd
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let addr = (Ipv4Addr::LOCALHOST, port).into();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut s) = child.stderr.take() {
                let _ = s.read_to_string(&mut err);
            }
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            return Err(format!("nginx exited ({status}): {err}{log}"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("nginx on port {port}: not listening after 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The temp paths of the modules this nginx was built with, inside `dir`: the built-in
/// ones (`/var/lib/nginx/...`) need privileges, and naming a module that is not built in
/// is an error.
fn temp_paths(bin: &Path, dir: &Path) -> String {
    let out = Command::new(bin).arg("-V").output().expect("nginx -V");
    // nginx -V writes to stderr.
    let built = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut lines = String::new();
    for (flag, directive) in [
        ("--http-client-body-temp-path", "client_body_temp_path"),
        ("--http-proxy-temp-path", "proxy_temp_path"),
        ("--http-fastcgi-temp-path", "fastcgi_temp_path"),
        ("--http-uwsgi-temp-path", "uwsgi_temp_path"),
        ("--http-scgi-temp-path", "scgi_temp_path"),
    ] {
        if built.contains(flag) {
            let name = directive.trim_end_matches("_temp_path");
            lines.push_str(&format!("    {directive} {};\n", dir.join(name).display()));
        }
    }
    lines
}

fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// nginx's path, installed with apt-get once per process when missing; `None` with the
/// reason printed when it cannot be had outside CI.
fn nginx() -> Option<PathBuf> {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match READY.get_or_init(find_or_install_nginx) {
        Ok(path) => Some(path.clone()),
        Err(why) if in_ci() => panic!("the nginx test cannot run in CI: {why}"),
        Err(why) => {
            eprintln!("skipping the nginx test: {why}");
            None
        }
    }
}

fn find_or_install_nginx() -> Result<PathBuf, String> {
    if let Some(path) = find_nginx() {
        return Ok(path);
    }
    if !apt_install(&["nginx"]) {
        return Err("nginx is missing and could not be installed with apt-get".into());
    }
    find_nginx().ok_or_else(|| "apt-get installed nginx, but it does not run".into())
}

/// `/usr/sbin/nginx`, or `nginx` on `PATH`, when it runs.
fn find_nginx() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("nginx"));
    std::iter::once(PathBuf::from("/usr/sbin/nginx"))
        .chain(on_path)
        .find(|p| {
            p.is_file()
                && Command::new(p)
                    .arg("-v")
                    .output()
                    .is_ok_and(|o| o.status.success())
        })
}
