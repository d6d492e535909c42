//! DPoP (RFC 9449): a sender-constrained access token in `Authorization: DPoP <token>`,
//! with a `DPoP` proof header signed by the key the token is bound to (`cnf.jkt`). The
//! token is a JWT verified locally, or an opaque token whose introspection answer
//! (RFC 7662) carries the `cnf.jkt` (RFC 9449 §6.2).
//!
//! This folder owns the scheme: the proof's checks (`proof.rs`), the replay store
//! (`replay.rs`), server nonces (`nonce.rs`), and here the order of it all, the key
//! binding and the challenge (`DPoP algs="…"`, `error="invalid_dpop_proof"` for a bad
//! proof, `invalid_token` for a bad or unbound token, `use_dpop_nonce`).

mod nonce;
mod proof;
mod replay;

pub use replay::{
    MemoryReplayStore, ProofId, ReplayError, ReplayFuture, ReplayOutcome, ReplayStore,
};

use super::bearer::{self, Bearer, Check};
#[cfg(feature = "http-client")]
use super::introspection::Introspector;
use super::jwt::JwtAuthenticator;
use super::token_cache::Cache;
use super::{AuthScheme, Decision, Pending, Place, Principal};
use crate::challenge::Challenge;
use crate::config_error::{ConfigError, OriginUse};
use crate::evidence::Evidence;
use crate::failure::{AuthFailure, Location};
use crate::jws::inspect;
use crate::reason::{BearerRule, DetailMode, Reason};
use crate::sanitize::{cap, fingerprint};
use crate::scheme::Scheme;
use crate::time::now;
use jsonwebtoken::Algorithm;
use nonce::Nonces;
use proof::{Origins, Rules};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Longest proof age and clock skew a configuration may set.
const MAX_WINDOW: Duration = Duration::from_secs(300);

/// The DPoP scheme's configuration: which tokens (a [`JwtAuthenticator`], an
/// [`Introspector`](crate::introspection::Introspector) for opaque ones, or both), which
/// proof algorithms, how fresh a proof must be, the origin clients reach the service at,
/// where used proofs are remembered, and whether the server hands out nonces.
///
/// A proof names the URL it is for (`htu`); a proof made for another server is refused
/// here. Which origin is ours cannot come from the request (`Host` and the request line
/// are the client's word), so it is configured: [`Dpop::public_origin`], once per origin.
/// Without one the layer does not start, unless the application opts in to taking it from
/// `Host` for local development ([`Dpop::insecure_origin_from_host`]).
///
/// Give it to [`AuthDiagnostics::dpop`](crate::AuthDiagnostics::dpop):
///
/// ```
/// use auth_diagnostics::dpop::Dpop;
/// use auth_diagnostics::jwt::JwtAuthenticator;
/// use auth_diagnostics::keys::KeySource;
/// use auth_diagnostics::AuthDiagnostics;
///
/// let tokens = JwtAuthenticator::from_source(KeySource::discover("https://login.example"))
///     .issuer("https://login.example")
///     .audience("orders-api");
/// let layer = AuthDiagnostics::new().dpop(
///     // The origin clients put in `htu`: also behind a proxy or TLS terminator.
///     Dpop::new(tokens).public_origin("https://api.example"),
/// );
/// # let _ = layer;
/// ```
///
/// Opaque DPoP-bound tokens are introspected (feature `http-client`): give the
/// [`Introspector`](crate::introspection::Introspector) with [`Dpop::introspection`]
/// (beside JWTs) or build the scheme with [`Dpop::introspected`] (opaque tokens only). The
/// proof is checked as for a JWT, and the answer's `cnf.jkt` must be the proof key's
/// thumbprint:
///
/// ```
/// use auth_diagnostics::dpop::Dpop;
/// use auth_diagnostics::introspection::Introspector;
/// use auth_diagnostics::AuthDiagnostics;
///
/// let opaque = Introspector::new("https://auth.example/oauth2/introspect")
///     .client_secret_basic("orders-api", "its-secret")
///     .issuer("https://auth.example/")
///     .audience("orders-api");
/// let layer = AuthDiagnostics::new()
///     .dpop(Dpop::introspected(opaque).public_origin("https://api.example"));
/// # let _ = layer;
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Dpop {
    /// JWT access tokens: always, unless built by [`Dpop::introspected`].
    jwt: Option<JwtAuthenticator>,
    /// Opaque access tokens (and JWTs of no issuer of `jwt`).
    #[cfg(feature = "http-client")]
    introspector: Option<Introspector>,
    algs: Vec<Algorithm>,
    max_age: Duration,
    leeway: Duration,
    origins: Vec<String>,
    origin_from_host: bool,
    replay: Arc<dyn ReplayStore>,
    nonce: Option<(Option<[u8; 32]>, Duration)>,
}

impl Dpop {
    /// DPoP for access tokens that `jwt` verifies (issuer, audience, keys, claims), with
    /// proofs signed ES256 or PS256, at most 60 s old (plus 30 s of clock skew either
    /// way), remembered in a [`MemoryReplayStore`], without server nonces. It needs the
    /// origin clients reach it at ([`Dpop::public_origin`]) before a layer takes it.
    pub fn new(jwt: JwtAuthenticator) -> Self {
        Self::for_tokens(Some(jwt))
    }

    /// The defaults of [`Dpop::new`], for JWTs verified by `jwt` if any.
    fn for_tokens(jwt: Option<JwtAuthenticator>) -> Self {
        Self {
            jwt,
            #[cfg(feature = "http-client")]
            introspector: None,
            algs: vec![Algorithm::ES256, Algorithm::PS256],
            max_age: Duration::from_secs(60),
            leeway: Duration::from_secs(30),
            origins: Vec::new(),
            origin_from_host: false,
            replay: Arc::new(MemoryReplayStore::default()),
            nonce: None,
        }
    }

    /// DPoP for opaque access tokens only, verified by RFC 7662 introspection at
    /// `introspector`'s endpoint, with the defaults of [`Dpop::new`] (feature
    /// `http-client`). Every token, a JWT too, is introspected.
    ///
    /// The proof is checked as for a JWT (`htm`, `htu`, `iat`, `jti` replay, `ath`, the
    /// nonce when required); then the introspection answer must carry `cnf.jkt` equal to
    /// the proof key's RFC 7638 thumbprint (else `dpop_key_mismatch`, or
    /// `dpop_token_unbound` without one), and no other `cnf` member
    /// (`token_binding_unverifiable`). The answer is checked as on the Bearer scheme (see
    /// the [`introspection`](crate::introspection) module) and cached by this scheme.
    #[cfg(feature = "http-client")]
    pub fn introspected(introspector: Introspector) -> Self {
        Self::for_tokens(None).introspection(introspector)
    }

    /// Also accepts opaque access tokens, verified by RFC 7662 introspection at
    /// `introspector`'s endpoint (feature `http-client`): a JWS whose unverified `iss` is
    /// an issuer of this scheme's [`JwtAuthenticator`] (any JWS when it names no issuer)
    /// is verified locally, any other token is introspected, as on the Bearer scheme. The
    /// binding is checked as for [`Dpop::introspected`]. Replaces an introspector given
    /// before.
    #[cfg(feature = "http-client")]
    pub fn introspection(mut self, introspector: Introspector) -> Self {
        self.introspector = Some(introspector);
        self
    }

    /// The proof algorithms accepted, advertised in the challenge's `algs`: asymmetric
    /// ones only (`ES256`, `ES384`, `PS256`, `PS384`, `PS512`, `RS256`, `RS384`,
    /// `RS512`, `EdDSA`).
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algs = algs.into_iter().collect();
        self
    }

    /// How old a proof's `iat` may be (default 60 s, at most 5 min).
    pub fn proof_max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// Clock skew allowed on `iat`, both ways (default 30 s, at most 5 min).
    pub fn proof_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// An origin clients reach this service at, as they write it in a proof's `htu`:
    /// `https://api.example`, `https://api.example:8443`. Call it once per origin the
    /// service answers for. A proxy that strips a path prefix gives it with the origin:
    /// `https://example.com/orders` for a service that sees `/items` where clients asked
    /// for `https://example.com/orders/items`.
    ///
    /// A proof for any other origin is refused (`dpop_proof_url_mismatch`), whatever
    /// `Host`, the request line or a forwarded header says. A service that ends TLS itself,
    /// or behind a TLS terminator, names its `https://` origin here.
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins
            .push(origin.into().trim_end_matches('/').to_owned());
        self
    }

    /// For local development only: the origin a proof must name is taken from the
    /// request, its `Host` (or an absolute request line) and scheme (`http` unless the
    /// request line says otherwise). Both are the client's word: a token and proof
    /// captured at another server with the same path are accepted when replayed with
    /// that server's name. Ignored once a [`public_origin`](Dpop::public_origin) is given.
    pub fn insecure_origin_from_host(mut self) -> Self {
        self.origin_from_host = true;
        self
    }

    /// Where used proofs are remembered (default: [`MemoryReplayStore::default`]). Several
    /// replicas need one they share.
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.replay = Arc::new(store);
        self
    }

    /// Requires a server nonce in every proof (RFC 9449 §9): a proof without one, or with
    /// one older than `lifetime`, gets 401 `use_dpop_nonce` and a fresh nonce in
    /// `DPoP-Nonce`. Nonces are keyed per process; give replicas one `key` with
    /// [`Dpop::nonce_key`].
    pub fn require_nonce(mut self, lifetime: Duration) -> Self {
        let key = self.nonce.and_then(|(k, _)| k);
        self.nonce = Some((key, lifetime));
        self
    }

    /// The key nonces are made with, so every replica that shares it accepts the others'.
    ///
    /// Calling it turns nonces on, as [`Dpop::require_nonce`] does (with a lifetime of
    /// 5 min unless `require_nonce` gives another).
    pub fn nonce_key(mut self, key: [u8; 32]) -> Self {
        let lifetime = self.nonce.map_or(Duration::from_secs(300), |(_, l)| l);
        self.nonce = Some((Some(key), lifetime));
        self
    }

    /// The access tokens' authenticator (none for opaque tokens only).
    pub(crate) fn authenticator(&self) -> Option<&JwtAuthenticator> {
        self.jwt.as_ref()
    }

    /// Every mistake in this configuration, its access tokens' authenticator's and
    /// introspector's included.
    pub(crate) fn config_errors(&self) -> Vec<ConfigError> {
        let mut all = self
            .jwt
            .as_ref()
            .map_or_else(Vec::new, |j| j.config_errors());
        #[cfg(feature = "http-client")]
        if let Some(introspector) = &self.introspector {
            all.extend(introspector.config_errors());
        }
        if self.algs.is_empty() {
            all.push(ConfigError::DpopNoAlgorithm);
        }
        all.extend(
            self.algs
                .iter()
                .filter(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
                .map(|a| ConfigError::DpopSymmetricAlgorithm(*a)),
        );
        if self.max_age > MAX_WINDOW || self.leeway > MAX_WINDOW {
            all.push(ConfigError::DpopWindowTooLong {
                max_age: self.max_age,
                leeway: self.leeway,
            });
        }
        if self.origins.is_empty() && !self.origin_from_host {
            all.push(ConfigError::DpopNoOrigin);
        }
        all.extend(self.origins.iter().filter_map(|o| origin_error(o)));
        all
    }

    /// The scheme for this configuration, with a token cache built from `cache`.
    pub(crate) fn scheme(&self, cache: Option<Arc<Cache>>) -> DpopScheme {
        let verifier = Bearer::new(self.jwt.iter().cloned().collect(), cache);
        #[cfg(feature = "http-client")]
        let verifier = verifier.introspecting(self.introspector.clone());
        let rules = Rules {
            algs_text: self
                .algs
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(" "),
            algs: self.algs.clone(),
            max_age: self.max_age.as_secs() as i64,
            leeway: self.leeway.as_secs() as i64,
            // Host decides only on the application's word, and only without an origin.
            origins: match (self.origins.is_empty(), self.origin_from_host) {
                (true, true) => Origins::FromHost,
                // Without either, no URL is ours (the build stops such a layer first).
                _ => Origins::Listed(self.origins.clone()),
            },
            nonces: self
                .nonce
                .map(|(key, lifetime)| Nonces::new(key, lifetime.as_secs() as i64)),
        };
        DpopScheme {
            verifier,
            rules: Arc::new(rules),
            replay: self.replay.clone(),
        }
    }

    /// Resolves once the access-token verifier's key sources have a key set.
    pub(crate) async fn ready(&self) {
        if let Some(jwt) = &self.jwt {
            jwt.ready().await;
        }
    }
}

/// Why `origin` is no `scheme://host[:port][/path prefix]`, if it is not.
fn origin_error(origin: &str) -> Option<ConfigError> {
    let uri: Option<http::Uri> = origin.parse().ok();
    // No user (RFC 9110 §4.2.4), query or fragment either: the request's path is appended
    // to it as it is.
    let ok = !origin.contains(['@', '?', '#', '%'])
        && uri.as_ref().is_some_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https"))
                && u.host().is_some()
                && (u.path().is_empty() || u.path().starts_with('/'))
                && !u.path().split('/').any(|s| s == "." || s == "..")
        });
    (!ok).then(|| ConfigError::InvalidOrigin {
        origin: origin.to_owned(),
        why: OriginUse::DpopPublicOrigin,
    })
}

/// The DPoP scheme of a layer.
#[derive(Debug)]
pub(crate) struct DpopScheme {
    verifier: Bearer,
    rules: Arc<Rules>,
    replay: Arc<dyn ReplayStore>,
}

impl DpopScheme {
    /// Starts fetching the access tokens' keys.
    pub(crate) fn start(&self) {
        self.verifier.start();
    }
}

impl AuthScheme for DpopScheme {
    fn kind(&self) -> Scheme {
        Scheme::Dpop
    }

    fn how_to_send(&self) -> std::borrow::Cow<'static, str> {
        "`Authorization: DPoP <token>` with a `DPoP: <proof>` header".into()
    }

    fn find(&self, ev: &Evidence<'_>, place: Place) -> Option<Decision> {
        if place != Place::Authorization {
            return None;
        }
        let rest = ev.spoken(Scheme::Dpop)?;
        let refuse = |f: AuthFailure| {
            let f = f
                .location(Location::Authorization)
                .fingerprint(fingerprint(rest.as_bytes()))
                .received(Some(Scheme::Dpop.as_str()));
            let f = match (f.token_facts().is_some(), inspect(rest)) {
                (false, Some(facts)) => f.token(facts),
                _ => f,
            };
            Decision::Rejected(f)
        };
        let t = match bearer::token_for(rest, Scheme::Dpop) {
            Ok(t) => t,
            Err(f) => return Some(refuse(f)),
        };
        let now = now();
        let method = ev.method.unwrap_or(&http::Method::GET);
        let request = (method, ev.uri(), ev.headers());
        let proof = match proof::header(ev.headers())
            .and_then(|p| proof::check(p, &self.rules, request, t, now))
        {
            Ok(p) => p,
            Err(f) => return Some(refuse(f)),
        };
        let check = self.verifier.check(t);
        let replay = self.replay.clone();
        let expires = proof.iat + self.rules.max_age + self.rules.leeway + 1;
        let token = t.to_owned();
        let cert = ev.certificate.clone();
        let fut = Box::pin(async move {
            let principal = match check {
                Check::Done(result) => result?,
                Check::Later(fut) => fut.await?,
            };
            // Past this point the token verified: its facts are facts.
            let verified = |f: AuthFailure| match inspect(&token) {
                Some(facts) => f.token(facts).token_verified(true),
                None => f,
            };
            bind(&principal, &proof.jkt, cert.as_ref()).map_err(verified)?;
            let id = ProofId::new(&proof.jkt, &proof.jti);
            let outcome = replay.insert(id, expires).await;
            replay_answer(outcome, expires, &proof.jti)
                .map(|()| principal)
                .map_err(verified)
        });
        Some(Decision::Pending(Pending::new(
            fut,
            self,
            Location::Authorization,
            rest.as_bytes(),
        )))
    }

    fn challenge(&self, c: Challenge, failure: &AuthFailure, detail: DetailMode) -> Challenge {
        let c = match error_of(failure) {
            Some(code) => bearer::error_params(c, failure, detail, code),
            None => c,
        };
        c.quoted_param("algs", &self.rules.algs_text)
    }
}

/// What the replay store's answer means for a proof with `jti` that expires at `expires`.
fn replay_answer(
    outcome: Result<ReplayOutcome, ReplayError>,
    expires: i64,
    jti: &str,
) -> Result<(), AuthFailure> {
    match outcome {
        // The store keeps the id until `expires` only. A proof accepted at or after that
        // (the token's keys or the store were slow) could be accepted again by a
        // concurrent request, whose insert finds the entry expired.
        Ok(ReplayOutcome::New) if crate::time::now() < expires => Ok(()),
        Ok(ReplayOutcome::New) => Err(AuthFailure::new(Reason::DpopProofExpired)
            .check("iat")
            .detail("the DPoP proof expired while the request was being checked")),
        Ok(ReplayOutcome::KeyOverQuota { retry_after }) => {
            Err(AuthFailure::new(Reason::DpopKeyOverQuota)
                .check("jti")
                .detail(format!(
                    "this DPoP key holds its whole share of the replay store; its oldest \
                     proof expires in {retry_after} s (each key's share is set by \
                     MemoryReplayStore::key_share or RedisStore::dpop_key_share)"
                ))
                .retry_after(retry_after.max(1)))
        }
        Ok(ReplayOutcome::Seen) => Err(AuthFailure::new(Reason::DpopProofReplayed)
            .check("jti")
            .detail(format!(
                "the DPoP proof with jti {} was used before",
                cap(jti)
            ))),
        Err(e) => Err(AuthFailure::new(Reason::DpopReplayStoreUnavailable)
            .detail(format!("the replay store cannot answer: {e}"))
            .retry_after(5)),
    }
}

/// The token's `cnf.jkt` must be the proof key's thumbprint, a `cnf.x5t#S256` the
/// thumbprint of the client certificate the request presented (`cert`: both bindings must
/// hold), and its `cnf` name no other confirmation method (which this scheme cannot
/// verify).
fn bind(
    principal: &Principal,
    jkt: &str,
    cert: Option<&crate::certificate::Presented>,
) -> Result<(), AuthFailure> {
    if let Some(member) = super::cnf::of(principal).other {
        return Err(super::cnf::unverifiable(member));
    }
    super::cnf::certificate(principal, cert)?;
    match bound_key(principal) {
        Some(bound) if constant_time_str(bound, jkt) => Ok(()),
        Some(_) => Err(AuthFailure::new(Reason::DpopKeyMismatch)
            .check("cnf.jkt")
            .claim("cnf")
            .detail("the token's cnf.jkt is not the thumbprint of the DPoP proof's key")),
        None => Err(AuthFailure::new(Reason::DpopTokenUnbound)
            .check("cnf.jkt")
            .claim("cnf")
            .detail("the token has no cnf.jkt: it is not bound to a DPoP key")),
    }
}

fn constant_time_str(a: &str, b: &str) -> bool {
    crate::secret::constant_time_eq(a.as_bytes(), b.as_bytes())
}

/// The DPoP key thumbprint a token is bound to (`cnf.jkt`), if any.
pub(crate) fn bound_key(principal: &Principal) -> Option<&str> {
    principal
        .claims()?
        .get("cnf")?
        .get("jkt")
        .and_then(Value::as_str)
}

/// The error of a DPoP challenge (RFC 9449 §7.1) for a request that spoke DPoP:
/// `invalid_dpop_proof` for the proof, `use_dpop_nonce` for a missing nonce, and the
/// token's RFC 6750 error (`invalid_token`, `insufficient_scope`, …) otherwise.
pub(crate) fn error_of(failure: &AuthFailure) -> Option<&'static str> {
    let reason = failure.reason();
    // An ambiguous request (RFC 9449 §7.2) gets `invalid_request` on both schemes.
    if !bearer::sent(failure, Scheme::Dpop) && reason != Reason::CredentialsConflict {
        return None;
    }
    match reason {
        Reason::DpopNonceRequired => Some("use_dpop_nonce"),
        _ if reason.code().starts_with("dpop_proof_") => Some("invalid_dpop_proof"),
        _ => match reason.bearer_rule() {
            BearerRule::Always(e) | BearerRule::WithToken(e) => Some(e.as_str()),
            BearerRule::No => None,
        },
    }
}
