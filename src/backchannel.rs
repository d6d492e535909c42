//! OpenID Connect Back-Channel Logout 1.0: the receiver. A provider POSTs a logout token
//! when a user's session ends there; [`BackchannelLogout`] verifies it and revokes that
//! session (or user) in the layer's revocation list.

use crate::authn::jwt::{JwtAuthenticator, Step};
use crate::failure::AuthFailure;
use crate::jws;
use crate::log::{emit, RequestInfo};
use crate::reason::{DetailMode, Reason};
use crate::request_id::{AuthRequestId, X_REQUEST_ID};
use crate::revocation::{Revocation, RevocationList};
use crate::sanitize::cap;
use crate::snapshot::Headers;
use crate::store::{MemoryReplayStore, ProofId, ReplayOutcome, ReplayStore};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{header, HeaderValue, Request, StatusCode};
use serde_json::{json, Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The event type a logout token's `events` claim must name (§2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The longest request body read: a form with one logout token.
const MAX_BODY: usize = 16 * 1024;

/// Logout tokens remembered at most (their `jti`, to refuse a replay), by default.
const DEFAULT_REPLAY_CAPACITY: usize = 10_000;

/// Receives OpenID Connect Back-Channel Logout 1.0 requests: `POST` with the form field
/// `logout_token`, a JWT the provider signed.
///
/// The token is verified with the keys, algorithms, issuers and leeway of the
/// [`JwtAuthenticator`] given (the one that verifies the provider's access tokens), and as
/// the spec says (§2.6): `aud` must be this client's id, `iat`, `jti` and `events` (naming
/// [`BACKCHANNEL_LOGOUT_EVENT`]) are required, `sid` or `sub` must be present, `nonce`
/// must not; `exp` is checked when present; `typ` is `logout+jwt`, `JWT` or absent; a
/// token issued more than [`max_age`](Self::max_age) ago (default 5 minutes) is refused,
/// and so is a `jti` already received (remembered until then).
///
/// A valid token revokes its `sid` when it has one (that session only, as §2.7 says),
/// else every credential of its `sub` issued until now, in the
/// [`RevocationList`] the layer checks ([`AuthDiagnostics::revocation`]): tokens and
/// sessions of that session or user get 401 `token_revoked` / `session_revoked` from
/// then on. The answer is 200; a refused token is 400 with a JSON `error`
/// (`invalid_request`, or `temporarily_unavailable` when the list or the replay store
/// could not be written), and one log event with the reason (target `auth_diagnostics`,
/// as the layer's), never the token.
///
/// [`AuthDiagnostics::revocation`]: crate::AuthDiagnostics::revocation
///
/// ```
/// use auth_diagnostics::jwt::JwtAuthenticator;
/// use auth_diagnostics::keys::StaticKey;
/// use auth_diagnostics::session::BackchannelLogout;
/// use auth_diagnostics::store::{MemoryRevocationList, RevocationList};
/// use auth_diagnostics::AuthDiagnostics;
/// use axum::{routing::{get, post}, Router};
/// use std::sync::Arc;
///
/// let jwt = JwtAuthenticator::new(StaticKey::hs256("a-secret-of-32-bytes-or-more-!!!"))
///     .issuer("https://idp.example")
///     .audience("orders-api");
/// let revoked: Arc<dyn RevocationList> = Arc::new(MemoryRevocationList::new());
/// let logout = BackchannelLogout::new(jwt.clone(), "orders-web", revoked.clone());
/// let app: Router = Router::new()
///     .route("/orders", get(|| async { "orders" }))
///     .layer(AuthDiagnostics::new().bearer(jwt).revocation(revoked))
///     // Outside the layer: the logout token is the request's credential.
///     .route("/backchannel-logout", post(logout.handler()));
/// # let _ = app;
/// ```
#[derive(Clone, Debug)]
pub struct BackchannelLogout {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    jwt: JwtAuthenticator,
    list: Arc<dyn RevocationList>,
    replay: Arc<dyn ReplayStore>,
    max_age: Duration,
    flood: Arc<crate::flood::FloodControl>,
    audit: Option<crate::audit::Audit>,
}

/// What a valid logout token revoked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoggedOut {
    /// The revocation recorded: the token's `sid`, else its `sub`.
    pub revocation: Revocation,
    /// The provider that logged the user out (`iss`).
    pub issuer: String,
}

type Handled = Pin<Box<dyn Future<Output = Response> + Send>>;

impl BackchannelLogout {
    /// Verifies logout tokens with `jwt`'s keys and issuers, addressed to `client_id` (this
    /// application's client id at the provider), and revokes into `list` — give the
    /// same list to the layer.
    pub fn new(
        jwt: JwtAuthenticator,
        client_id: impl AsRef<str>,
        list: Arc<dyn RevocationList>,
    ) -> Self {
        let replay = MemoryReplayStore::with_capacity(DEFAULT_REPLAY_CAPACITY)
            .key_share(DEFAULT_REPLAY_CAPACITY);
        Self {
            inner: Arc::new(Inner {
                jwt: jwt.for_logout_tokens(client_id.as_ref()),
                list,
                replay: Arc::new(replay),
                max_age: Duration::from_secs(300),
                flood: Arc::new(crate::flood::FloodControl::new(Some(
                    crate::flood::LogRate::default(),
                ))),
                audit: None,
            }),
        }
    }

    /// Where received `jti`s are remembered: by default in memory (10 000 tokens); a
    /// store shared by every replica (`RedisStore`) refuses a replay sent to another one.
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.inner_mut().replay = Arc::new(store);
        self
    }

    /// The oldest logout token accepted, by its `iat` (default 5 minutes; the spec
    /// suggests providers let them expire within two).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.inner_mut().max_age = max_age;
        self
    }

    /// Records every logout request as the layer's [`audit`](crate::AuthDiagnostics::audit)
    /// does: accepted (with the provider as `issuer`) or refused (400, with the reason).
    pub fn audit(mut self, audit: crate::audit::Audit) -> Self {
        self.inner_mut().audit = Some(audit);
        self
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner).expect("configured before it is shared")
    }

    /// An axum handler for the logout endpoint: `post(logout.handler())`.
    pub fn handler(&self) -> impl Fn(Request<Body>) -> Handled + Clone + Send + Sync + 'static {
        let this = self.clone();
        move |request| {
            let this = this.clone();
            Box::pin(async move { this.answer(request).await })
        }
    }

    /// Handles one request: the answer [`handler`](Self::handler) gives.
    pub async fn answer(&self, request: Request<Body>) -> Response {
        let (mut head, body) = request.into_parts();
        let request_id = AuthRequestId::ensure(&mut head.headers);
        let audit = self.inner.audit.as_ref().map(|audit| {
            let id = &request_id;
            crate::audit::Context::new(audit, &head.method, &head.uri, &head.extensions, id)
        });
        let outcome = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(body) => self.receive(&head.headers, &body).await,
            Err(_) => Err(AuthFailure::new(Reason::TokenMalformed)
                .detail(format!("the request body is over {MAX_BODY} bytes"))),
        };
        let facts = match &outcome {
            Ok(done) => crate::audit::Facts::logout(&done.issuer),
            Err(f) => crate::audit::Facts::refused(None, f, None),
        };
        let mut response = match outcome {
            Ok(done) => {
                tracing::info!(
                    target: "auth_diagnostics",
                    request_id = request_id.as_str(),
                    iss = cap(&done.issuer).as_str(),
                    revoked = match done.revocation {
                        Revocation::Sid(_) => "sid",
                        Revocation::Sub { .. } => "sub",
                        Revocation::Jti(_) => "jti",
                    },
                    "back-channel logout: the provider ended a session; its credentials are revoked"
                );
                StatusCode::OK.into_response()
            }
            Err(f) => self.refuse(f, &request_id, &head),
        };
        // Every answer of a logout endpoint is `no-store` (§2.8).
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(X_REQUEST_ID, request_id.header_value().clone());
        if let Some(audit) = audit {
            response.extensions_mut().insert(facts);
            audit.finish(&mut response);
        }
        response
    }

    /// Verifies the form `body` of a logout request and revokes what its token names.
    pub async fn receive(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<LoggedOut, AuthFailure> {
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form {
            return Err(AuthFailure::new(Reason::CredentialsMissing)
                .detail("a logout request is a form: application/x-www-form-urlencoded"));
        }
        let token = logout_token(body)?;
        let claims = self.verify(&token).await?;
        let done = self.logged_out(&claims)?;
        self.remember(&claims).await?;
        self.inner
            .list
            .revoke(done.revocation.clone())
            .await
            .map_err(|e| {
                AuthFailure::new(Reason::RevocationUnavailable)
                    .detail(format!("the revocation could not be recorded: {e}"))
            })?;
        Ok(done)
    }

    /// The token's claims once its signature, issuer, audience, type, times and logout
    /// claims pass.
    async fn verify(&self, token: &str) -> Result<Map<String, Value>, AuthFailure> {
        let jwt = &self.inner.jwt;
        let now = crate::time::now();
        let step = jwt.step(jws::decode(token)?, now, true);
        let verified = match step {
            Step::Done(result) => result?,
            Step::Wait(sources) => {
                let limit = sources.iter().map(|s| s.wait_limit()).max();
                let deadline = tokio::time::Instant::now() + limit.unwrap_or_default();
                for source in &sources {
                    let _ = tokio::time::timeout_at(deadline, source.refresh_for_miss()).await;
                }
                match jwt.step(jws::decode(token)?, crate::time::now(), false) {
                    Step::Done(result) => result?,
                    Step::Wait(_) => unreachable!("a step that may not wait never waits"),
                }
            }
        };
        let facts = verified.facts.clone();
        let oldest = self.inner.max_age.as_secs() as i64 + jwt.leeway_s();
        logout_claims(&verified.claims, now, oldest).map_err(|f| f.token(facts))?;
        Ok(verified.claims)
    }

    /// What the verified token revokes: its `sid`, else its `sub`.
    fn logged_out(&self, claims: &Map<String, Value>) -> Result<LoggedOut, AuthFailure> {
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let revocation = match (text("sid"), text("sub")) {
            (Some(sid), _) => Revocation::sid(sid),
            (None, Some(sub)) => Revocation::sub(sub),
            (None, None) => {
                return Err(AuthFailure::new(Reason::TokenClaimMissing)
                    .detail("a logout token names a sid or a sub; this one has neither")
                    .claim("sid"))
            }
        };
        let issuer = text("iss").unwrap_or_default().to_owned();
        Ok(LoggedOut { revocation, issuer })
    }

    /// Records the token's `jti` until the token could no longer be accepted; a `jti`
    /// already there is a replay.
    async fn remember(&self, claims: &Map<String, Value>) -> Result<(), AuthFailure> {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default();
        let iat = claims
            .get("iat")
            .and_then(jws::numeric_date)
            .unwrap_or_default();
        let until = iat
            .saturating_add(self.inner.max_age.as_secs() as i64)
            .saturating_add(self.inner.jwt.leeway_s());
        // One entry per token: the issuer and jti together are its key, so no provider
        // is held to a share of the store.
        let id = ProofId::new(&format!("logout\0{}\0{}", text("iss"), text("jti")), "");
        match self.inner.replay.insert(id, until).await {
            Ok(ReplayOutcome::New) => Ok(()),
            Ok(ReplayOutcome::Seen) => Err(AuthFailure::new(Reason::TokenClaimInvalid)
                .detail("this logout token's jti was received before: a replay")
                .claim("jti")),
            Ok(_) => Err(AuthFailure::new(Reason::RevocationUnavailable)
                .detail("the store of received logout tokens is full")),
            Err(e) => Err(
                AuthFailure::new(Reason::RevocationUnavailable).detail(format!(
                    "the store of received logout tokens cannot be read: {e}"
                )),
            ),
        }
    }

    /// The 400 answer, and the log event.
    fn refuse(&self, f: AuthFailure, request_id: &AuthRequestId, head: &Parts) -> Response {
        let status = StatusCode::BAD_REQUEST;
        let info = RequestInfo {
            request_id: request_id.as_str(),
            method: &head.method,
            uri: &head.uri,
            headers: Headers::Live(&head.headers),
        };
        let f = f.answered(status);
        emit(&f, &info, status, DetailMode::Production, &self.inner.flood);
        crate::metrics::failure(f.reason(), "backchannel_logout", status);
        let error = match f.reason() {
            Reason::RevocationUnavailable => "temporarily_unavailable",
            _ => "invalid_request",
        };
        // The reader is the provider's server: what was wrong with its token, in the words
        // of the log (no secret is ever in a detail), capped.
        let text = f.detail_text().unwrap_or(f.reason().detail());
        let text = crate::sanitize::clean_text(text, 256);
        let description = format!("{}: {}", f.reason().code(), text.as_str());
        let body = json!({ "error": error, "error_description": description });
        let json = [(header::CONTENT_TYPE, "application/json")];
        (status, json, body.to_string()).into_response()
    }
}

/// The one `logout_token` field of a form body.
fn logout_token(body: &[u8]) -> Result<String, AuthFailure> {
    let mut found = None;
    for pair in body.split(|b| *b == b'&') {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[..0]),
        };
        if name != b"logout_token" {
            continue;
        }
        if found.is_some() {
            return Err(
                AuthFailure::new(Reason::TokenMalformed).detail("the form has logout_token twice")
            );
        }
        found = Some(percent_decode(value)?);
    }
    match found {
        Some(t) if !t.is_empty() => Ok(t),
        _ => {
            Err(AuthFailure::new(Reason::CredentialsMissing).detail("the form has no logout_token"))
        }
    }
}

/// A form value, percent- and `+`-decoded; a logout token is ASCII.
fn percent_decode(value: &[u8]) -> Result<String, AuthFailure> {
    let bad = || AuthFailure::new(Reason::TokenMalformed).detail("logout_token is not a JWT");
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = value.get(i + 1..i + 3).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(bad)
}

/// The claims that make a verified JWT a logout token (§2.4, §2.6).
/// `oldest`: the most seconds since `iat` (the leeway included).
fn logout_claims(claims: &Map<String, Value>, now: i64, oldest: i64) -> Result<(), AuthFailure> {
    let event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|e| e.get(BACKCHANNEL_LOGOUT_EVENT));
    if !event.is_some_and(Value::is_object) {
        return Err(AuthFailure::new(Reason::TokenClaimInvalid)
            .detail(format!(
                "events does not name {BACKCHANNEL_LOGOUT_EVENT} with an object: not a logout token"
            ))
            .claim("events"));
    }
    if claims.contains_key("nonce") {
        return Err(AuthFailure::new(Reason::TokenClaimInvalid)
            .detail("a logout token must not carry nonce (an ID token does)")
            .claim("nonce"));
    }
    let jti = claims.get("jti").and_then(Value::as_str);
    if jti.is_none_or(str::is_empty) {
        return Err(AuthFailure::new(Reason::TokenClaimInvalid)
            .detail("jti is not a non-empty string")
            .claim("jti"));
    }
    let iat = claims
        .get("iat")
        .and_then(jws::numeric_date)
        .unwrap_or_default();
    let age = now.saturating_sub(iat);
    if age > oldest {
        return Err(AuthFailure::new(Reason::TokenExpired)
            .detail(format!(
                "the logout token was issued {age}s ago; logout tokens older than {oldest}s are refused"
            ))
            .claim("iat"));
    }
    Ok(())
}
