//! The interop OpenID provider (interop/oidc-provider.mjs, npm `oidc-provider`) and the
//! other Node scripts of `interop/`, for the suites that drive them: start the provider on
//! a port and read its start line, get a client_credentials token from it, run a script
//! that prints one JSON line, look inside a JWT without verifying it.
//!
//! Node comes from [`super::node`]: without it [`Provider::start`] is `None` outside CI.
//!
//! For opaque tokens: the resource server's client ([`RS_CLIENT`]), the introspection
//! endpoint, RFC 7009 revocation, and a back-channel logout sent by the provider's own code
//! ([`Provider::backchannel_logout`], through the script's test-control route).
//!
//! For MCP clients (the script's `--auto-approve`, [`Provider::start_auto_approve`]): a
//! client registered dynamically ([`Provider::register`]) and the authorization code grant
//! with PKCE S256 ([`Provider::authorize`], which checks that the authorization endpoint's
//! first answer is the redirect with the code); DPoP-bound client_credentials tokens
//! ([`Provider::token_response`] with a proof).

use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// The provider's client (interop/oidc-provider.mjs): `client_credentials` with a secret.
pub const CLIENT: &str = "interop";
const CLIENT_SECRET: &str = "interop-secret";

/// The provider's resource-server client: it introspects tokens (`client_secret_basic`)
/// and receives back-channel logout tokens (their `aud`).
pub const RS_CLIENT: &str = "demo-rs";
/// [`RS_CLIENT`]'s secret.
pub const RS_CLIENT_SECRET: &str = "demo-rs-secret";

/// How long a start may take: about a second here, far more on a loaded CI machine.
const START_WAIT: Duration = Duration::from_secs(60);

/// A running interop/oidc-provider.mjs, killed when dropped.
pub struct Provider {
    child: Child,
    issuer: String,
    port: u16,
    stderr: Arc<Mutex<String>>,
    http: reqwest::Client,
    /// The script's arguments after `--port N`, kept for [`Provider::restart`].
    args: Vec<String>,
}

impl Provider {
    /// Starts the provider on `port` (0: a free one), or `None` when Node cannot be had
    /// outside CI.
    pub async fn start(port: u16) -> Option<Provider> {
        let dir = super::node::interop()?;
        Some(Self::start_in(&dir, port).await)
    }

    /// Starts the provider from `dir` (an `interop/` with its packages) on `port`.
    ///
    /// One start at a time in a test binary (its tests run side by side on few cores). A
    /// provider that prints no start line within [`START_WAIT`] is killed and started once
    /// more; the second failure panics with both attempts' stderr, where the script names
    /// each start-up step.
    pub async fn start_in(dir: &Path, port: u16) -> Provider {
        Self::start_in_with(dir, port, &[]).await
    }

    /// [`Provider::start`] with more arguments for the script, such as
    /// `--backchannel-logout-uri URL`.
    pub async fn start_with(port: u16, args: &[&str]) -> Option<Provider> {
        let dir = super::node::interop()?;
        Some(Self::start_in_with(&dir, port, args).await)
    }

    /// [`Provider::start_in`] with more arguments for the script.
    pub async fn start_in_with(dir: &Path, port: u16, args: &[&str]) -> Provider {
        static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one_at_a_time = STARTING.lock().await;
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let first = match Self::try_start(dir, port, &args).await {
            Ok(provider) => return provider,
            Err(why) => why,
        };
        match Self::try_start(dir, port, &args).await {
            Ok(provider) => provider,
            Err(again) => panic!("the provider did not start, twice:\n1. {first}\n2. {again}"),
        }
    }

    async fn try_start(dir: &Path, port: u16, args: &[String]) -> Result<Provider, String> {
        let port_arg = port.to_string();
        let all: Vec<&str> = ["--port", port_arg.as_str()]
            .into_iter()
            .chain(args.iter().map(String::as_str))
            .collect();
        let mut child = node(dir, "oidc-provider.mjs", &all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node interop/oidc-provider.mjs");
        // Its stderr (start-up steps and warnings, server errors) is kept for a failure's
        // message.
        let stderr = drain(child.stderr.take().unwrap());
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = match timeout(START_WAIT, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            other => {
                let _ = child.kill().await;
                return Err(format!(
                    "no start line ({other:?}); stderr: {}",
                    stderr.lock().unwrap()
                ));
            }
        };
        let started: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("start line {line:?} is not JSON: {e}"));
        let port = started["port"].as_u64().expect("port") as u16;
        let issuer = started["issuer"].as_str().expect("issuer").to_owned();
        assert_eq!(issuer, format!("http://127.0.0.1:{port}"));
        Ok(Provider {
            child,
            issuer,
            port,
            stderr,
            http: reqwest::Client::new(),
            args: args.to_vec(),
        })
    }

    /// The provider with `--auto-approve` (dynamic registration, the code grant approved
    /// without a person, no refresh tokens), or `None` when Node cannot be had outside CI.
    pub async fn start_auto_approve() -> Option<Provider> {
        Self::start_with(0, &["--auto-approve"]).await
    }

    /// The issuer, `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the provider (and waits until it is gone, so its port is free).
    pub async fn stop(&mut self) {
        self.child.kill().await.expect("kill the provider");
    }

    /// Stops this provider and starts another on the same port: same issuer, new keys.
    pub async fn restart(mut self) -> Provider {
        self.stop().await;
        let dir = super::node::interop_dir();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let next = Self::start_in_with(&dir, self.port, &args).await;
        assert_eq!(next.issuer, self.issuer);
        next
    }

    /// A Bearer access token for `resource` by the client_credentials grant, asking for
    /// `scope`.
    pub async fn token(&self, resource: &str, scope: &str) -> String {
        let res = self
            .http
            .post(format!("{}/token", self.issuer))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("client_secret", CLIENT_SECRET),
                ("resource", resource),
                ("scope", scope),
            ])
            .send()
            .await
            .expect("token request");
        let status = res.status();
        let body: Value = res.json().await.expect("token response is JSON");
        assert_eq!(
            status,
            200,
            "token request: {body}; stderr: {}",
            self.stderr.lock().unwrap()
        );
        assert_eq!(body["token_type"], "Bearer", "{body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// The token endpoint's answer to a client_credentials request for `resource` and
    /// `scope`, with a `DPoP` proof header when `dpop` is given (htm POST, htu
    /// [`Provider::token_endpoint`]); panics unless it is 200.
    pub async fn token_response(&self, resource: &str, scope: &str, dpop: Option<&str>) -> Value {
        let mut req = self.http.post(self.token_endpoint()).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", CLIENT_SECRET),
            ("resource", resource),
            ("scope", scope),
        ]);
        if let Some(proof) = dpop {
            req = req.header("dpop", proof);
        }
        self.json_200(req, "token request").await
    }

    /// Its token endpoint (oidc-provider's default path).
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// Registers a client by RFC 7591 (`--auto-approve` only): `redirect_uri`,
    /// `client_secret_post`, grant types authorization_code and refresh_token, as an MCP
    /// client does. Panics unless the answer is 201 with a client id and secret.
    pub async fn register(&self, redirect_uri: &str) -> Registered {
        let res = self
            .http
            .post(format!("{}/reg", self.issuer))
            .json(&serde_json::json!({
                "client_name": "tests/common/provider.rs",
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "client_secret_post",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            }))
            .send()
            .await
            .expect("registration request");
        let status = res.status();
        let body: Value = res.json().await.expect("registration answer is JSON");
        assert_eq!(
            status,
            201,
            "registration: {body}; stderr: {}",
            self.stderr.lock().unwrap()
        );
        Registered {
            client_id: body["client_id"].as_str().expect("client_id").to_owned(),
            client_secret: body["client_secret"]
                .as_str()
                .expect("client_secret")
                .to_owned(),
            redirect_uri: redirect_uri.to_owned(),
        }
    }

    /// The authorization code grant for `client` (`--auto-approve` only), PKCE S256:
    /// the authorization request for `resource` and `scope` must be answered at once by a
    /// redirect to the client's redirect URI with the code and the request's `state`; then
    /// the code is exchanged (with a `DPoP` proof header when `dpop` is given). Returns the
    /// token endpoint's answer, which must be 200.
    pub async fn authorize(
        &self,
        client: &Registered,
        resource: &str,
        scope: &str,
        dpop: Option<&str>,
    ) -> Value {
        use base64::Engine as _;
        use sha2::Digest as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let random = || {
            let mut bytes = [0u8; 32];
            getrandom::getrandom(&mut bytes).expect("random bytes");
            b64(&bytes)
        };
        let verifier = random();
        let state = random();
        let challenge = b64(&sha2::Sha256::digest(verifier.as_bytes()));
        let url = reqwest::Url::parse_with_params(
            &format!("{}/auth", self.issuer),
            [
                ("response_type", "code"),
                ("client_id", client.client_id.as_str()),
                ("redirect_uri", client.redirect_uri.as_str()),
                ("scope", scope),
                ("resource", resource),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("state", state.as_str()),
            ],
        )
        .expect("authorization URL");
        // The user agent: it follows nothing, the first answer must carry the code.
        let agent = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let res = agent.get(url).send().await.expect("authorization request");
        let status = res.status();
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            status.is_redirection() && location.starts_with(&client.redirect_uri),
            "the authorization endpoint answered {status}, Location {location:?}; stderr: {}",
            self.stderr.lock().unwrap()
        );
        let back = reqwest::Url::parse(&location).expect("Location is a URL");
        let param = |name: &str| {
            back.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(
            param("state").as_deref(),
            Some(state.as_str()),
            "{location}"
        );
        let code = param("code").unwrap_or_else(|| panic!("no code in {location}"));

        let mut req = self.http.post(self.token_endpoint()).form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.client_secret.as_str()),
            ("resource", resource),
        ]);
        if let Some(proof) = dpop {
            req = req.header("dpop", proof);
        }
        self.json_200(req, "code exchange").await
    }

    /// Sends `req`, which must be answered 200 with JSON: that JSON.
    async fn json_200(&self, req: reqwest::RequestBuilder, what: &str) -> Value {
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}; stderr: {}", self.stderr.lock().unwrap()));
        let status = res.status();
        let body: Value = res
            .json()
            .await
            .unwrap_or_else(|e| panic!("{what}: the answer is not JSON: {e}"));
        assert_eq!(
            status,
            200,
            "{what}: {body}; stderr: {}",
            self.stderr.lock().unwrap()
        );
        body
    }

    /// What the provider wrote to stderr so far (start-up steps, warnings, server errors).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Its RFC 7662 introspection endpoint (oidc-provider's default path).
    pub fn introspection_endpoint(&self) -> String {
        format!("{}/token/introspection", self.issuer)
    }

    /// Its RFC 7009 revocation endpoint (oidc-provider's default path).
    pub fn revocation_endpoint(&self) -> String {
        format!("{}/token/revocation", self.issuer)
    }

    /// Introspects `token` as [`RS_CLIENT`] (`client_secret_basic`): the provider's answer.
    pub async fn introspect(&self, token: &str) -> Value {
        let res = self
            .http
            .post(self.introspection_endpoint())
            .basic_auth(RS_CLIENT, Some(RS_CLIENT_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .expect("introspection request");
        let status = res.status();
        let body: Value = res.json().await.expect("introspection answer is JSON");
        assert_eq!(status, 200, "introspection: {body}");
        body
    }

    /// Revokes `token` (RFC 7009) as the client it was issued to, which must succeed (200).
    pub async fn revoke(&self, token: &str) {
        let res = self
            .http
            .post(self.revocation_endpoint())
            .form(&[
                ("token", token),
                ("token_type_hint", "access_token"),
                ("client_id", CLIENT),
                ("client_secret", CLIENT_SECRET),
            ])
            .send()
            .await
            .expect("revocation request");
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        assert_eq!(
            status,
            200,
            "revocation: {body}; stderr: {}",
            self.stderr.lock().unwrap()
        );
    }

    /// Has the provider log out session `sid` of `sub` at [`RS_CLIENT`]: oidc-provider's own
    /// `Client#backchannelLogout` mints the logout token and POSTs it to the
    /// `--backchannel-logout-uri` the provider was started with (the script's test-control
    /// route triggers it). Returns once that URI answered; panics unless it answered 200 or
    /// 204.
    pub async fn backchannel_logout(&self, sub: &str, sid: &str) {
        let res = self
            .http
            .post(format!("{}/test-control/backchannel-logout", self.issuer))
            .form(&[("sub", sub), ("sid", sid)])
            .send()
            .await
            .expect("test-control request");
        let status = res.status();
        let body: Value = res.json().await.expect("test-control answer is JSON");
        assert!(
            status == 200 && body["delivered"] == true,
            "back-channel logout not delivered ({status}): {body}; stderr: {}",
            self.stderr.lock().unwrap()
        );
    }
}

/// A client registered at the provider by [`Provider::register`].
#[derive(Debug, Clone)]
pub struct Registered {
    /// Its `client_id`, chosen by the provider.
    pub client_id: String,
    /// Its `client_secret` (`client_secret_post`).
    pub client_secret: String,
    /// Its one redirect URI.
    pub redirect_uri: String,
}

/// `node SCRIPT ARGS` in `dir`, no stdin, killed when dropped.
fn node(dir: &Path, script: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Collects a child's stderr in the background.
pub fn drain(mut from: impl AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<String>> {
    let sink = Arc::new(Mutex::new(String::new()));
    let to = sink.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 {
                break;
            }
            to.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    sink
}

/// Runs `node SCRIPT ARGS` in `dir`, which must succeed within 90 s, and parses the JSON
/// line it prints last.
pub async fn node_json(dir: &Path, script: &str, args: &[&str]) -> Value {
    node_json_within(dir, script, args, Duration::from_secs(90)).await
}

/// [`node_json`] with its own time limit.
pub async fn node_json_within(dir: &Path, script: &str, args: &[&str], limit: Duration) -> Value {
    let run = node(dir, script, args).output();
    let out = timeout(limit, run)
        .await
        .unwrap_or_else(|_| panic!("{script} finishes within {limit:?}"))
        .unwrap_or_else(|e| panic!("run node {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node {script} failed ({}): {stderr}\n{stdout}",
        out.status
    );
    let line = stdout.trim().lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stdout}\n{stderr}"))
}

/// Segment `i` of a JWT (0: header, 1: claims), decoded, unverified.
fn segment(token: &str, i: usize) -> Value {
    use base64::Engine as _;
    let seg = token.split('.').nth(i).expect("three segments");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(seg)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// A JWT's header and claims, unverified.
pub fn peek(token: &str) -> (Value, Value) {
    (segment(token, 0), segment(token, 1))
}

/// A JWT's claims, unverified.
pub fn claims_of(token: &str) -> Value {
    segment(token, 1)
}

/// The `kid` in a JWT's header.
pub fn kid_of(token: &str) -> String {
    segment(token, 0)["kid"].as_str().expect("kid").to_owned()
}
