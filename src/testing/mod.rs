//! An identity provider for your application's own integration tests (feature `testing`).
//!
//! [`TestIssuer::start`] serves, on `127.0.0.1` at a free port, what a real identity
//! provider publishes: an OpenID discovery document
//! (`/.well-known/openid-configuration`, with `issuer` and `jwks_uri`) and a JWK set. It
//! mints access tokens signed by its current key, so your tests send your protected routes
//! the tokens production sends them, through the same [`KeySource`] your application
//! uses. It can also do what providers do on a bad day: rotate keys, withdraw one, answer
//! slowly, fail.
//!
//! ```toml
//! [dev-dependencies]
//! auth-diagnostics = { version = "0.1", features = ["testing"] }
//! ```
//!
//! ```
//! use auth_diagnostics::testing::TestIssuer;
//! use auth_diagnostics::jwt::JwtAuthenticator;
//! use auth_diagnostics::keys::KeySource;
//! use auth_diagnostics::AuthDiagnostics;
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let idp = TestIssuer::start().await;
//! // Your application, given the issuer's URL where production gives the real one:
//! let jwt = JwtAuthenticator::from_source(KeySource::discover(idp.issuer())).audience("orders");
//! let app = Router::new()
//!     .route("/orders", get(|| async { "orders" }))
//!     .layer(AuthDiagnostics::new().bearer(jwt));
//!
//! let send = |token: String| {
//!     let request = Request::get("/orders")
//!         .header("authorization", format!("Bearer {token}"))
//!         .body(Body::empty())
//!         .unwrap();
//!     app.clone().oneshot(request)
//! };
//! let token = idp.access_token().subject("alice").audience("orders").sign();
//! assert_eq!(send(token).await.unwrap().status(), 200);
//!
//! let expired = idp.access_token().subject("alice").audience("orders").expired().sign();
//! let response = send(expired).await.unwrap();
//! assert_eq!(response.status(), 401);
//! assert!(response.headers()["www-authenticate"]
//!     .to_str()
//!     .unwrap()
//!     .contains(r#"error="invalid_token""#));
//! # }
//! ```
//!
//! # Tokens
//!
//! [`TestIssuer::access_token`] is a builder: [`subject`](TokenBuilder::subject),
//! [`audience`](TokenBuilder::audience), [`scope`](TokenBuilder::scope),
//! [`expires_in`](TokenBuilder::expires_in) or [`expired`](TokenBuilder::expired),
//! [`dpop_bound`](TokenBuilder::dpop_bound) (a `cnf.jkt`, RFC 9449) and any other
//! [`claim`](TokenBuilder::claim). [`TestIssuer::token`] signs the claims you give it.
//! Both fill in what you leave out: `iss` (the issuer), `sub` (`test-user`), `iat` (now) and
//! `exp` (in 5 minutes); a claim set to `null` is left out of the token. Tokens are ES256,
//! with the current key's `kid` and `typ: JWT`.
//!
//! # Keys
//!
//! [`rotate`](TestIssuer::rotate) makes a new key current and keeps publishing the old one,
//! as providers do, so tokens minted before still verify;
//! [`withdraw`](TestIssuer::withdraw) removes a key from the set: once your
//! [`KeySource`] refreshes, its tokens are refused with `token_key_unknown`. A source
//! refreshes on its schedule (every 5 minutes by default) and when a token names a `kid`
//! it does not know, at most every [`KeySource::miss_refresh_interval`] (30 s by default;
//! [`TestIssuer::key_source`] sets it to zero): after `withdraw`, a token of a newer key
//! ([`rotate`](TestIssuer::rotate)) makes the refresh.
//!
//! [`delay`](TestIssuer::delay) makes every answer slow,
//! [`fail_with`](TestIssuer::fail_with) makes every answer an error status (a layer with no
//! keys yet answers 503 `key_source_unavailable`), and [`recover`](TestIssuer::recover)
//! undoes both.
//!
//! The keys are a few fixed EC P-256 keys shipped in this crate's source, used in turn:
//! they are public, and **must never be trusted** anywhere but in tests. Build the
//! `testing` feature into dev-dependencies only.

use crate::keys::KeySource;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The test keys (PKCS#8 EC P-256, generated with the openssl CLI), used in turn.
/// Published in this crate's source: test-only, never to be trusted.
const KEYS: [&str; 3] = [
    include_str!("keys/es256_1.pem"),
    include_str!("keys/es256_2.pem"),
    include_str!("keys/es256_3.pem"),
];

/// How long a token lives when no `exp` is given.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// The `sub` of a token that names none.
const DEFAULT_SUBJECT: &str = "test-user";

/// An identity provider on `127.0.0.1` for integration tests: discovery, a JWK set, and
/// access tokens signed by its keys. See [the module](self).
///
/// The server runs on a task of the Tokio runtime it was started in, and stops when the
/// `TestIssuer` is dropped. Clones share the server.
#[derive(Clone)]
pub struct TestIssuer {
    shared: Arc<Shared>,
}

struct Shared {
    issuer: String,
    state: Mutex<IssuerState>,
    server: tokio::task::AbortHandle,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One signing key: its `kid`, private key and public JWK.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

struct IssuerState {
    /// The published keys, the current one last.
    published: Vec<Arc<SigningKey>>,
    current: Arc<SigningKey>,
    /// Keys made so far: the next one is `KEYS[made % KEYS.len()]`.
    made: usize,
    delay: Duration,
    failure: Option<StatusCode>,
    discovery_requests: usize,
    jwks_requests: usize,
}

impl IssuerState {
    fn lock(state: &Mutex<IssuerState>) -> std::sync::MutexGuard<'_, IssuerState> {
        state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The key made `n`th: `test-key-{n+1}`.
fn make_key(n: usize) -> Arc<SigningKey> {
    crate::keys::install_crypto_provider();
    let pem = KEYS[n % KEYS.len()].as_bytes();
    let encoding = EncodingKey::from_ec_pem(pem).expect("the test keys are valid PEM");
    let kid = format!("test-key-{}", n + 1);
    let mut jwk = serde_json::to_value(
        Jwk::from_encoding_key(&encoding, Algorithm::ES256).expect("a public JWK of a test key"),
    )
    .expect("a JWK serializes");
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    Arc::new(SigningKey { kid, encoding, jwk })
}

impl TestIssuer {
    /// Starts the issuer on `127.0.0.1` at a free port, on the current Tokio runtime, with
    /// one key (`test-key-1`).
    ///
    /// # Panics
    /// Outside a Tokio runtime, or when no port can be bound.
    pub async fn start() -> TestIssuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("auth-diagnostics TestIssuer: bind 127.0.0.1:0");
        let address = listener
            .local_addr()
            .expect("auth-diagnostics TestIssuer: the bound address");
        let issuer = format!("http://{address}");
        let first = make_key(0);
        let state = Mutex::new(IssuerState {
            published: vec![first.clone()],
            current: first,
            made: 1,
            delay: Duration::ZERO,
            failure: None,
            discovery_requests: 0,
            jwks_requests: 0,
        });
        let shared = Arc::new_cyclic(|weak: &std::sync::Weak<Shared>| {
            let app = axum::Router::new()
                .route(
                    "/.well-known/openid-configuration",
                    axum::routing::get(discovery),
                )
                .route("/jwks", axum::routing::get(jwks))
                .with_state(weak.clone());
            let server = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            Shared {
                issuer,
                state,
                server: server.abort_handle(),
            }
        });
        TestIssuer { shared }
    }

    /// The issuer's URL, `http://127.0.0.1:{port}` (no trailing slash): the `iss` of its
    /// tokens, and what [`KeySource::discover`] takes.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The URL of its JWK set, for [`KeySource::jwks`].
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.shared.issuer)
    }

    /// A [`KeySource`] that discovers this issuer and refreshes at once for a `kid` it does
    /// not know ([`KeySource::miss_refresh_interval`] zero), so a test sees a rotation or
    /// a withdrawal with its next token instead of 30 s later.
    pub fn key_source(&self) -> KeySource {
        KeySource::discover(self.issuer()).miss_refresh_interval(Duration::ZERO)
    }

    /// The `kid` of the current signing key.
    pub fn kid(&self) -> String {
        self.state().current.kid.clone()
    }

    /// The `kid`s of the published keys, oldest first.
    pub fn published(&self) -> Vec<String> {
        self.state()
            .published
            .iter()
            .map(|k| k.kid.clone())
            .collect()
    }

    /// A builder of an access token signed by the current key.
    pub fn access_token(&self) -> TokenBuilder<'_> {
        TokenBuilder {
            issuer: self,
            claims: Map::new(),
        }
    }

    /// An access token with `claims` (a JSON object), signed by the current key. `iss`,
    /// `sub`, `iat` and `exp` are filled in when absent; a claim whose value is `null` is
    /// left out.
    ///
    /// # Panics
    /// When `claims` is not a JSON object.
    pub fn token(&self, claims: Value) -> String {
        let Value::Object(claims) = claims else {
            panic!("auth-diagnostics TestIssuer::token: the claims must be a JSON object");
        };
        self.sign(claims)
    }

    fn sign(&self, mut claims: Map<String, Value>) -> String {
        let now = unix_now();
        let defaults = [
            ("iss", json!(self.issuer())),
            ("sub", json!(DEFAULT_SUBJECT)),
            ("iat", json!(now)),
            ("exp", json!(now + DEFAULT_LIFETIME.as_secs() as i64)),
        ];
        for (name, value) in defaults {
            claims.entry(name).or_insert(value);
        }
        claims.retain(|_, value| !value.is_null());
        let key = self.state().current.clone();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding).expect("a test token signs")
    }

    /// Makes a new key current; the old ones stay published. Returns the new `kid`.
    pub fn rotate(&self) -> String {
        let mut state = self.state();
        let key = make_key(state.made);
        state.made += 1;
        state.published.push(key.clone());
        state.current = key;
        state.current.kid.clone()
    }

    /// Removes the key `kid` from the published set (the current key too: the issuer then
    /// signs with a key it does not publish, as a misconfigured provider does). Returns
    /// whether it was published.
    pub fn withdraw(&self, kid: &str) -> bool {
        let mut state = self.state();
        let before = state.published.len();
        state.published.retain(|k| k.kid != kid);
        state.published.len() != before
    }

    /// Answers every request `delay` late (discovery and JWK set).
    pub fn delay(&self, delay: Duration) {
        self.state().delay = delay;
    }

    /// Answers every request with `status` and no document, until
    /// [`recover`](TestIssuer::recover).
    pub fn fail_with(&self, status: StatusCode) {
        self.state().failure = Some(status);
    }

    /// Answers promptly and successfully again.
    pub fn recover(&self) {
        let mut state = self.state();
        state.delay = Duration::ZERO;
        state.failure = None;
    }

    /// How many times the discovery document was asked for.
    pub fn discovery_requests(&self) -> usize {
        self.state().discovery_requests
    }

    /// How many times the JWK set was asked for.
    pub fn jwks_requests(&self) -> usize {
        self.state().jwks_requests
    }

    fn state(&self) -> std::sync::MutexGuard<'_, IssuerState> {
        IssuerState::lock(&self.shared.state)
    }
}

impl fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.shared.issuer)
            .field("kid", &self.kid())
            .field("published", &self.published())
            .finish_non_exhaustive()
    }
}

/// Seconds since the epoch.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Which document a request asks for.
#[derive(Clone, Copy)]
enum Document {
    Discovery,
    Jwks,
}

/// The issuer's state as a handler sees it: gone once the `TestIssuer` is dropped.
type Handle = std::sync::Weak<Shared>;

async fn discovery(State(shared): State<Handle>) -> Response {
    answer(shared, Document::Discovery).await
}

async fn jwks(State(shared): State<Handle>) -> Response {
    answer(shared, Document::Jwks).await
}

async fn answer(shared: Handle, document: Document) -> Response {
    let Some(shared) = shared.upgrade() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let (delay, failure, body) = {
        let mut state = IssuerState::lock(&shared.state);
        let body = match document {
            Document::Discovery => {
                state.discovery_requests += 1;
                json!({
                    "issuer": shared.issuer,
                    "jwks_uri": format!("{}/jwks", shared.issuer),
                })
            }
            Document::Jwks => {
                state.jwks_requests += 1;
                let keys: Vec<&Value> = state.published.iter().map(|k| &k.jwk).collect();
                json!({ "keys": keys })
            }
        };
        (state.delay, state.failure, body)
    };
    drop(shared);
    tokio::time::sleep(delay).await;
    if let Some(status) = failure {
        return status.into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// An access token being built: [`TestIssuer::access_token`]. Finish it with
/// [`sign`](TokenBuilder::sign).
#[must_use]
pub struct TokenBuilder<'a> {
    issuer: &'a TestIssuer,
    claims: Map<String, Value>,
}

impl TokenBuilder<'_> {
    /// `sub` (default `test-user`).
    pub fn subject(self, subject: impl Into<String>) -> Self {
        self.claim("sub", subject.into())
    }

    /// `aud`: one audience, or several with repeated calls.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        let audience = Value::String(audience.into());
        match self.claims.get_mut("aud") {
            Some(Value::Array(all)) => all.push(audience),
            Some(one @ Value::String(_)) => *one = json!([one.take(), audience]),
            _ => {
                self.claims.insert("aud".to_owned(), audience);
            }
        }
        self
    }

    /// `scope`: space-separated scopes, as RFC 8693 and RFC 9068 write them.
    pub fn scope(self, scope: impl Into<String>) -> Self {
        self.claim("scope", scope.into())
    }

    /// `exp`: `lifetime` from now (default 5 minutes).
    pub fn expires_in(self, lifetime: Duration) -> Self {
        self.claim("exp", unix_now() + lifetime.as_secs() as i64)
    }

    /// `exp` an hour ago, `iat` two hours ago: refused as `token_expired` whatever the
    /// leeway allowed.
    pub fn expired(self) -> Self {
        let now = unix_now();
        self.claim("exp", now - 3600).claim("iat", now - 7200)
    }

    /// `cnf.jkt`: the token is bound to the DPoP key with this JWK SHA-256 thumbprint
    /// (RFC 9449 §6.1), and is refused when sent as a plain Bearer token
    /// (`token_dpop_bound`).
    pub fn dpop_bound(self, jwk_thumbprint: impl Into<String>) -> Self {
        self.claim("cnf", json!({ "jkt": jwk_thumbprint.into() }))
    }

    /// Any claim; `null` leaves it (or a default) out.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// The token, signed by the issuer's current key.
    pub fn sign(self) -> String {
        self.issuer.sign(self.claims)
    }
}

impl fmt::Debug for TokenBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBuilder")
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    /// Each shipped key's computed public JWK verifies what its private key signs.
    #[test]
    fn every_test_key_verifies_through_its_published_jwk() {
        for n in 0..KEYS.len() {
            let key = make_key(n);
            let jwk: Jwk = serde_json::from_value(key.jwk.clone()).unwrap();
            let token = jsonwebtoken::encode(
                &Header::new(Algorithm::ES256),
                &json!({ "sub": "x", "exp": unix_now() + 60 }),
                &key.encoding,
            )
            .unwrap();
            let decoding = DecodingKey::from_jwk(&jwk).unwrap();
            let mut validation = Validation::new(Algorithm::ES256);
            validation.required_spec_claims.clear();
            jsonwebtoken::decode::<Value>(&token, &decoding, &validation)
                .unwrap_or_else(|e| panic!("test key {n}: {e}"));
            assert_eq!(jwk.common.key_id.as_deref(), Some(key.kid.as_str()));
        }
        // Three different keys.
        let xs: std::collections::HashSet<String> = (0..KEYS.len())
            .map(|n| make_key(n).jwk["x"].to_string())
            .collect();
        assert_eq!(xs.len(), KEYS.len());
    }
}
