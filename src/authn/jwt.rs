//! Bearer JWT verification.
//!
//! The order of checks is part of the contract: cheap structural checks first (structure,
//! `alg`, `crit`), then the key and the signature, and only then type, presence, claim
//! types, time, issuer and audience — so a forged token is reported as forged, never as
//! merely expired. The claims of a rejected token are still read (marked unverified) so
//! the log can say "expired 3h ago" or "iss X, expected Y" even when the signature failed
//! first.

use crate::config_error::ConfigError;
use crate::failure::{AuthFailure, KeyFacts, TokenFacts};
use crate::jws::{self, audience_text, numeric_date, Jws};
use crate::keys::{
    install_crypto_provider, shown_source, KeySet, KeySource, Pick, RemoteKey, StaticKey,
    PUBLISHED_ALGORITHMS,
};
use crate::reason::Reason;
use crate::sanitize::cap;
use crate::time::{ago, now, rfc3339};
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

/// Verifies `Authorization: Bearer <JWT>`.
///
/// The audience and the issuer are required: a token minted for another service, or by
/// another issuer, must not be accepted here (RFC 7519 §4.1.3, RFC 8725 §3.8 and §3.9).
/// Configure them with [`JwtAuthenticator::audience`] and [`JwtAuthenticator::issuer`]
/// (a discovered [`KeySource`] names its issuer itself), or opt out explicitly with
/// [`JwtAuthenticator::accept_any_audience`] and [`JwtAuthenticator::accept_any_issuer`];
/// an authenticator with neither is a configuration mistake
/// ([`ConfigError::NoAudience`](crate::layer::ConfigError::NoAudience),
/// [`NoIssuer`](crate::layer::ConfigError::NoIssuer)) that
/// [`AuthDiagnostics::try_build`](crate::AuthDiagnostics::try_build) returns, and building
/// the layer without it panics at start-up, as axum does for conflicting routes.
///
/// Defaults: only the keys' own algorithms, `exp` required (a token is expired from
/// `exp + leeway` on), 60 s leeway, `typ` absent, `JWT` or `at+jwt` (other kinds of JWT,
/// `dpop+jwt`, `logout+jwt`, `secevent+jwt`, `id_token+jwt`, are refused), no critical
/// header extensions (`crit`), registered claims of their registered JSON types, a
/// non-empty `sub`, no `auth_time` in the future, no ID-token claims (`at_hash`, `c_hash`:
/// an ID token is not an access token, RFC 8725 §3.12), and a `cnf` (RFC 7800) whose
/// confirmation method the route can verify. [`JwtAuthenticator::require_rfc9068`] turns
/// on the whole RFC 9068 access-token profile.
///
/// ```
/// use auth_diagnostics::jwt::JwtAuthenticator;
/// use auth_diagnostics::keys::StaticKey;
/// use std::time::Duration;
///
/// let jwt = JwtAuthenticator::new(StaticKey::hs256("secret"))
///     .issuer("https://issuer.example")
///     .audience("my-api")
///     .require_claims(["sub"])
///     .leeway(Duration::from_secs(30));
/// # let _ = jwt;
/// ```
#[derive(Clone)]
#[must_use]
pub struct JwtAuthenticator {
    keys: Vec<StaticKey>,
    sources: Vec<KeySource>,
    algorithms: Vec<Algorithm>,
    explicit_algorithms: bool,
    issuers: Vec<String>,
    audiences: Vec<String>,
    any_audience: bool,
    any_issuer: bool,
    /// Issuers of many tenants: `iss` is the template filled with the tenant claim.
    template: Option<IssuerTemplate>,
    tenants: Vec<String>,
    any_tenant: bool,
    leeway: i64,
    /// The leeway as asked for, checked when the layer is built.
    leeway_asked: Duration,
    required: Vec<Cow<'static, str>>,
    types: Vec<String>,
    /// With `types`: a token without `typ` is accepted too (logout tokens, which OpenID
    /// Connect asks to be typed but does not require it).
    untyped_ok: bool,
    /// The first configuration mistake, found by the first [`verify`](Self::verify) of
    /// this configuration (a layer checks its authenticators when it is built).
    checked: OnceLock<Option<ConfigError>>,
}

// Issuers as `shown_issuers` shows them: a discovered issuer's URL may carry a password.
impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("keys", &self.keys)
            .field("sources", &self.sources)
            .field("algorithms", &self.algorithms)
            .field("issuers", &shown_issuers(&self.issuers))
            .field("any_issuer", &self.any_issuer)
            .field("template", &self.template)
            .field("tenants", &self.tenants)
            .field("any_tenant", &self.any_tenant)
            .field("audiences", &self.audiences)
            .field("any_audience", &self.any_audience)
            .field("leeway", &self.leeway)
            .field("required", &self.required)
            .field("types", &self.types)
            .finish_non_exhaustive()
    }
}

/// What verification needs before it can decide.
pub(crate) enum Step {
    Done(Result<Verified, AuthFailure>),
    /// The token's key is not cached: refresh these sources, then verify again.
    Wait(Vec<KeySource>),
}

/// Why a signature check did not pass.
enum Blocked {
    Fail(AuthFailure),
    Wait(Vec<KeySource>),
}

impl From<AuthFailure> for Blocked {
    fn from(f: AuthFailure) -> Self {
        Blocked::Fail(f)
    }
}

impl JwtAuthenticator {
    /// The most clock skew [`JwtAuthenticator::leeway`] accepts: RFC 7519 speaks of "a few
    /// minutes" at most.
    pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

    /// The most static keys one token is checked against: those bound to its `kid`
    /// first, then the unnamed ones. More unnamed keys of one algorithm than this is a
    /// configuration error: every forged token would cost a signature check per key.
    pub const MAX_STATIC_CANDIDATES: usize = 3;

    /// The longest tenant claim an [issuer template](Self::issuer_template) accepts.
    pub const MAX_TENANT_LEN: usize = 128;

    /// Verifies tokens signed by `key`. By default: only `key`'s algorithm is accepted,
    /// `exp` is required, leeway is 60 s. An issuer and an audience must still be
    /// configured ([`JwtAuthenticator::issuer`], [`JwtAuthenticator::audience`]) or
    /// explicitly waived ([`JwtAuthenticator::accept_any_issuer`],
    /// [`JwtAuthenticator::accept_any_audience`]).
    pub fn new(key: StaticKey) -> Self {
        Self::without_keys().key(key)
    }

    /// The defaults, with no key yet.
    fn without_keys() -> Self {
        install_crypto_provider();
        Self {
            algorithms: Vec::new(),
            keys: Vec::new(),
            sources: Vec::new(),
            explicit_algorithms: false,
            issuers: Vec::new(),
            audiences: Vec::new(),
            any_audience: false,
            any_issuer: false,
            template: None,
            tenants: Vec::new(),
            any_tenant: false,
            leeway: 60,
            leeway_asked: Duration::from_secs(60),
            required: vec![Cow::Borrowed("exp")],
            types: Vec::new(),
            untyped_ok: false,
            checked: OnceLock::new(),
        }
    }

    /// Verifies tokens signed by the keys `source` publishes. Their algorithms (the
    /// asymmetric ones: RS, PS, ES, EdDSA) are accepted; a discovered source's issuer is
    /// accepted, and required. A JWK set URL needs [`JwtAuthenticator::issuer`].
    ///
    /// ```
    /// use auth_diagnostics::jwt::JwtAuthenticator;
    /// use auth_diagnostics::keys::KeySource;
    ///
    /// let jwt = JwtAuthenticator::from_source(KeySource::jwks(
    ///     "https://login.example.com/.well-known/jwks.json",
    /// ))
    /// .issuer("https://login.example.com/")
    /// .audience("orders-api");
    /// # let _ = jwt;
    /// ```
    pub fn from_source(source: KeySource) -> Self {
        Self::without_keys().key_source(source)
    }

    /// Adds the keys `source` publishes, beside the static ones (a demo's shared secret
    /// and a provider's keys, say).
    pub fn key_source(mut self, source: KeySource) -> Self {
        self.checked = OnceLock::new();
        if !self.explicit_algorithms {
            for alg in PUBLISHED_ALGORITHMS {
                if !self.algorithms.contains(&alg) {
                    self.algorithms.push(alg);
                }
            }
        }
        // A discovered issuer with a placeholder (Entra's common endpoint names
        // `https://login.microsoftonline.com/{tenantid}/v2.0`) is no exact issuer: it
        // needs an issuer template.
        if let Some(issuer) = source.issuer().filter(|i| !i.contains('{')) {
            if !self.issuers.iter().any(|i| i == issuer) {
                self.issuers.push(issuer.to_owned());
            }
        }
        self.sources.push(source);
        self
    }

    /// Resolves once every key source has a key set (at once with static keys only).
    /// Wrap it in a timeout: it waits as long as a source is unreachable.
    pub async fn ready(&self) {
        for source in &self.sources {
            source.ready().await;
        }
    }

    /// Starts fetching the sources' keys in the background (where a runtime is at hand).
    pub(crate) fn start(&self) {
        for source in &self.sources {
            source.start();
        }
    }

    /// Its key sources.
    pub(crate) fn sources(&self) -> &[KeySource] {
        &self.sources
    }

    /// The issuers it accepts exactly.
    pub(crate) fn issuers(&self) -> &[String] {
        &self.issuers
    }

    /// Whether it names no issuer at all (neither exact issuers nor a template).
    pub(crate) fn names_no_issuer(&self) -> bool {
        self.issuers.is_empty() && self.template.is_none()
    }

    /// How many issuers it names, a template counting as one.
    fn issuer_count(&self) -> usize {
        self.issuers.len() + usize::from(self.template.is_some())
    }

    /// Its issuer template as configured, if any.
    pub(crate) fn template_text(&self) -> Option<&str> {
        self.template.as_ref().map(|t| t.text.as_str())
    }

    /// Whether an unverified `iss` is of its template's form (the token belongs here,
    /// whichever tenant it names): for routing among several authenticators.
    pub(crate) fn fits_template(&self, iss: &str) -> bool {
        self.template
            .as_ref()
            .is_some_and(|t| t.tenant_of(iss).is_some())
    }

    /// The accepted issuers as logs show them, the template included.
    pub(crate) fn accepted_shown(&self) -> Vec<String> {
        let mut all = self.issuers.clone();
        all.extend(self.template_text().map(str::to_owned));
        all
    }

    /// Whether `issuer` (a key's or a key source's) is accepted: exactly, or as the
    /// template itself or the template filled with an accepted tenant.
    fn accepts_issuer(&self, issuer: &str) -> bool {
        if self.issuers.iter().any(|e| e == issuer) {
            return true;
        }
        let Some(t) = &self.template else {
            return false;
        };
        if t.text == issuer {
            return true;
        }
        t.tenant_of(issuer)
            .is_some_and(|tid| plain_tenant(tid) && self.tenant_accepted(tid))
    }

    /// Whether the allow-list (or "any") accepts tenant `tid`.
    fn tenant_accepted(&self, tid: &str) -> bool {
        self.any_tenant || self.tenants.iter().any(|t| t == tid)
    }

    /// Changes whenever the keys it verifies with may have: a verified token cached under
    /// another epoch is verified again.
    pub(crate) fn key_epoch(&self) -> u64 {
        self.sources
            .iter()
            .fold(0u64, |sum, s| sum.wrapping_add(s.generation()))
    }

    /// The last second a token with this `exp` is accepted.
    pub(crate) fn valid_through(&self, exp: i64) -> i64 {
        exp.saturating_add(self.leeway).saturating_sub(1)
    }

    /// Adds another key (e.g. the next one during a rotation). Its algorithm joins the
    /// allow-list unless [`JwtAuthenticator::algorithms`] set it explicitly.
    pub fn key(mut self, key: StaticKey) -> Self {
        self.checked = OnceLock::new();
        if !self.explicit_algorithms && !self.algorithms.contains(&key.alg) {
            self.algorithms.push(key.alg);
        }
        self.keys.push(key);
        self
    }

    /// Replaces the algorithm allow-list.
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.checked = OnceLock::new();
        self.algorithms = algs.into_iter().collect();
        self.explicit_algorithms = true;
        self
    }

    /// Accepts tokens whose `iss` equals `issuer` exactly (call again to accept several).
    /// `iss` is then required.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.checked = OnceLock::new();
        self.issuers.push(issuer.into());
        self
    }

    /// Accepts tokens whatever their `iss` says, or without one: an explicit opt-out of
    /// the issuer check, for static keys that only one issuer holds (a test's own secret,
    /// say). Without it (and without [`JwtAuthenticator::issuer`] or a discovered
    /// [`KeySource`]) the authenticator is a configuration error. Key sources still need
    /// the issuer their keys belong to.
    pub fn accept_any_issuer(mut self) -> Self {
        self.checked = OnceLock::new();
        self.any_issuer = true;
        self
    }

    /// Accepts the issuers of many tenants (a multi-tenant Entra ID application, say):
    /// a token's `iss` must equal `template` with its one `{…}` placeholder replaced by
    /// the token's `tenant_claim` (`tid` for Entra). Which tenants are accepted must be
    /// said: [`JwtAuthenticator::tenants`] or [`JwtAuthenticator::any_tenant`]; with
    /// neither the authenticator is a configuration error
    /// ([`ConfigError::IssuerTemplate`](crate::layer::ConfigError::IssuerTemplate)).
    ///
    /// The keys are the authenticator's own (one [`KeySource`], fetched once for every
    /// tenant: for Entra the common set,
    /// `KeySource::jwks("https://login.microsoftonline.com/common/discovery/v2.0/keys")`).
    /// The tenant is checked before any key is fetched. A token whose `iss` is of the
    /// template's form but names another tenant than its claim is refused with
    /// `tenant_issuer_mismatch`; a tenant that is not accepted, with
    /// `token_issuer_mismatch`; a token without the claim, with `token_claim_missing`.
    /// The claim must be a plain identifier (ASCII letters, digits, `-`, `_`, `.`, no
    /// `..`, at most [`MAX_TENANT_LEN`](Self::MAX_TENANT_LEN) bytes), or the token is
    /// `token_claim_invalid`.
    ///
    /// ```
    /// use auth_diagnostics::jwt::JwtAuthenticator;
    /// use auth_diagnostics::keys::KeySource;
    ///
    /// let jwt = JwtAuthenticator::from_source(KeySource::jwks(
    ///     "https://login.microsoftonline.com/common/discovery/v2.0/keys",
    /// ))
    /// .issuer_template("https://login.microsoftonline.com/{tid}/v2.0", "tid")
    /// .tenants(["72f988bf-86f1-41af-91ab-2d7cd011db47"])
    /// .audience("api://orders");
    /// # let _ = jwt;
    /// ```
    pub fn issuer_template(
        mut self,
        template: impl Into<String>,
        tenant_claim: impl Into<String>,
    ) -> Self {
        self.checked = OnceLock::new();
        self.template = Some(IssuerTemplate::new(template.into(), tenant_claim.into()));
        self
    }

    /// The tenants whose tokens an [issuer template](Self::issuer_template) accepts
    /// (call again to add more).
    pub fn tenants<I, S>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.checked = OnceLock::new();
        self.tenants.extend(tenants.into_iter().map(Into::into));
        self
    }

    /// Accepts every tenant of an [issuer template](Self::issuer_template): an explicit
    /// opt-out of the tenant allow-list, for an application open to any organisation.
    pub fn any_tenant(mut self) -> Self {
        self.checked = OnceLock::new();
        self.any_tenant = true;
        self
    }

    /// Accepts tokens whose `aud` contains `audience` (call again to accept several).
    /// `aud` is then required.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.checked = OnceLock::new();
        self.audiences.push(audience.into());
        self
    }

    /// Accepts tokens whatever their `aud` says: an explicit opt-out of the audience check,
    /// for a service that is the only consumer of its issuer's tokens. Without it (and
    /// without [`JwtAuthenticator::audience`]) the authenticator is a configuration error.
    pub fn accept_any_audience(mut self) -> Self {
        self.checked = OnceLock::new();
        self.any_audience = true;
        self
    }

    /// Clock skew tolerated for `exp`, `nbf` and `iat` (default 60 s).
    ///
    /// # Configuration errors
    /// A `leeway` of more than [`MAX_LEEWAY`](Self::MAX_LEEWAY) (5 minutes)
    /// keeps expired tokens alive: it is a configuration mistake
    /// ([`ConfigError::LeewayTooLong`](crate::layer::ConfigError::LeewayTooLong)), reported
    /// when the layer is built (and by [`verify`](Self::verify), which then refuses every
    /// token).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.checked = OnceLock::new();
        self.leeway_asked = leeway;
        self.leeway = leeway.min(Self::MAX_LEEWAY).as_secs() as i64;
        self
    }

    /// Claims that must be present (in addition to `exp`, which is always required).
    pub fn require_claims<I, S>(mut self, claims: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.checked = OnceLock::new();
        for c in claims {
            let c: String = c.into();
            if !self.required.iter().any(|r| *r == c) {
                self.required.push(Cow::Owned(c));
            }
        }
        self
    }

    /// Requires the RFC 9068 access-token type: header `typ` must be `at+jwt`
    /// (or `application/at+jwt`).
    pub fn require_access_token_type(self) -> Self {
        self.accept_types(["at+jwt"])
    }

    /// The whole RFC 9068 profile of JWT access tokens: `typ` `at+jwt` (§4) and the
    /// claims `iss`, `exp`, `aud`, `sub`, `client_id`, `iat` and `jti` required (§2.2).
    /// Only for identity providers that issue RFC 9068 tokens: many type their access
    /// tokens `JWT` or leave out `client_id` or `jti`, and would be refused; the README's
    /// per-provider sections say which can use it.
    ///
    /// ```
    /// use auth_diagnostics::jwt::JwtAuthenticator;
    /// use auth_diagnostics::keys::StaticKey;
    /// use auth_diagnostics::Reason;
    /// use jsonwebtoken::{encode, EncodingKey, Header};
    ///
    /// let jwt = JwtAuthenticator::new(StaticKey::hs256("secret"))
    ///     .issuer("https://issuer.example")
    ///     .audience("my-api")
    ///     .require_rfc9068();
    /// let claims = serde_json::json!({
    ///     "iss": "https://issuer.example", "aud": "my-api", "sub": "alice",
    ///     "exp": 4_000_000_000u64, "iat": 1_700_000_000u64, "jti": "j1",
    /// });
    /// let key = EncodingKey::from_secret(b"secret");
    /// // A plain JWT without `typ: at+jwt` and without `client_id`: refused.
    /// let plain = encode(&Header::default(), &claims, &key).unwrap();
    /// assert_eq!(jwt.verify(&plain).unwrap_err().reason(), Reason::TokenTypeRejected);
    /// let mut header = Header::default();
    /// header.typ = Some("at+jwt".into());
    /// let typed = encode(&header, &claims, &key).unwrap();
    /// assert_eq!(jwt.verify(&typed).unwrap_err().reason(), Reason::TokenClaimMissing);
    /// let mut claims = claims;
    /// claims["client_id"] = "app".into();
    /// assert!(jwt.verify(&encode(&header, &claims, &key).unwrap()).is_ok());
    /// ```
    pub fn require_rfc9068(self) -> Self {
        self.require_access_token_type().require_claims([
            "iss",
            "exp",
            "aud",
            "sub",
            "client_id",
            "iat",
            "jti",
        ])
    }

    /// Requires header `typ` to be one of `types` (compared case-insensitively, with or
    /// without the `application/` prefix).
    pub fn accept_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.checked = OnceLock::new();
        self.types.extend(types.into_iter().map(Into::into));
        self
    }

    /// The same keys, algorithms, issuers and leeway, checking OpenID Connect
    /// Back-Channel Logout tokens (§2.4) instead of access tokens: `aud` is `client_id`,
    /// `iat`, `jti` and `events` are required, `exp` is checked when present, `typ` is
    /// `logout+jwt`, `JWT` or absent (the spec asks for explicit typing; older providers
    /// send none, and `events` already tells a logout token from any other JWT).
    pub(crate) fn for_logout_tokens(&self, client_id: &str) -> Self {
        let mut jwt = self.clone();
        jwt.audiences = vec![client_id.to_owned()];
        jwt.any_audience = false;
        jwt.required = vec![
            Cow::Borrowed("iat"),
            Cow::Borrowed("jti"),
            Cow::Borrowed("events"),
        ];
        jwt.types = vec!["logout+jwt".to_owned(), "JWT".to_owned()];
        jwt.untyped_ok = true;
        jwt.checked = OnceLock::new();
        jwt
    }

    /// The clock skew allowed, in seconds.
    pub(crate) fn leeway_s(&self) -> i64 {
        self.leeway
    }

    /// Every mistake in this configuration: no audience and no explicit opt-out, a
    /// leeway above the most, a key bound to an issuer that is not accepted, several
    /// issuers with a key that belongs to none of them, a key source that cannot be used.
    pub(crate) fn config_errors(&self) -> Vec<ConfigError> {
        let mut all = self.audience_or_issuer_errors();
        if self.leeway_asked > Self::MAX_LEEWAY {
            all.push(ConfigError::LeewayTooLong {
                leeway: self.leeway_asked,
                max: Self::MAX_LEEWAY,
            });
        }
        self.static_keys_errors(&mut all);
        self.sources_errors(&mut all);
        all
    }

    /// Neither an audience nor an issuer may be left open by accident.
    fn audience_or_issuer_errors(&self) -> Vec<ConfigError> {
        let mut all = Vec::new();
        match (self.audiences.is_empty(), self.any_audience) {
            (true, false) => all.push(ConfigError::NoAudience),
            (false, true) => all.push(ConfigError::AudienceAndAnyAudience),
            _ => {}
        }
        match (self.names_no_issuer(), self.any_issuer) {
            (true, false) => all.push(ConfigError::NoIssuer),
            (false, true) => all.push(ConfigError::IssuerAndAnyIssuer),
            _ => {}
        }
        if let Some(why) = self.template_mistake() {
            all.push(why);
        }
        all
    }

    /// An issuer template that cannot be used, or tenants without a template.
    fn template_mistake(&self) -> Option<ConfigError> {
        let Some(t) = &self.template else {
            return (!self.tenants.is_empty() || self.any_tenant).then(|| {
                ConfigError::IssuerTemplate {
                    template: String::new(),
                    why: ".tenants(..) or .any_tenant() without .issuer_template(..)".into(),
                }
            });
        };
        let why = if let Some(why) = &t.mistake {
            why.clone()
        } else if self.tenants.is_empty() && !self.any_tenant {
            "no tenant is accepted: call .tenants([..]) with the accepted tenants, or \
             .any_tenant() to accept every tenant explicitly"
                .to_owned()
        } else if !self.tenants.is_empty() && self.any_tenant {
            "both .tenants(..) and .any_tenant(): choose one".to_owned()
        } else if let Some(bad) = self.tenants.iter().find(|t| !plain_tenant(t)) {
            format!(
                "tenant {:?} is not a plain identifier (ASCII letters, digits, -, _, .; no ..)",
                cap(bad)
            )
        } else {
            return None;
        };
        Some(ConfigError::IssuerTemplate {
            template: t.text.clone(),
            why,
        })
    }

    /// Static keys: few enough unnamed ones per algorithm, each bound to an accepted issuer.
    fn static_keys_errors(&self, all: &mut Vec<ConfigError>) {
        for alg in &self.algorithms {
            let unnamed = self
                .keys
                .iter()
                .filter(|k| k.alg == *alg && k.kid.is_none());
            if unnamed.count() > Self::MAX_STATIC_CANDIDATES {
                all.push(ConfigError::TooManyUnnamedKeys {
                    algorithm: *alg,
                    max: Self::MAX_STATIC_CANDIDATES,
                });
            }
        }
        let mut unbound = false;
        for key in &self.keys {
            match &key.issuer {
                Some(i) if !self.accepts_issuer(i) => {
                    push_new(all, ConfigError::KeyIssuerNotAccepted { issuer: i.clone() })
                }
                None if self.issuer_count() > 1 => unbound = true,
                _ => {}
            }
        }
        if unbound {
            all.push(ConfigError::KeyWithoutIssuer {
                issuers: self.issuer_count(),
            });
        }
    }

    /// Key sources: each well formed, and bound to an issuer this authenticator accepts.
    fn sources_errors(&self, all: &mut Vec<ConfigError>) {
        for source in &self.sources {
            for e in source.config_errors() {
                push_new(all, e);
            }
            if self.names_no_issuer() {
                push_new(all, ConfigError::KeySourceWithoutIssuer);
                continue;
            }
            match source.issuer() {
                None if self.issuer_count() > 1 => push_new(
                    all,
                    ConfigError::KeySourceIssuerUnbound {
                        issuers: self.issuer_count(),
                    },
                ),
                Some(i) if !self.accepts_issuer(i) => push_new(
                    all,
                    ConfigError::KeySourceIssuerNotAccepted {
                        issuer: shown_source(i),
                    },
                ),
                _ => {}
            }
        }
    }

    /// Verifies `token` at the current time.
    ///
    /// An authenticator with a configuration error (see the type's documentation) refuses
    /// every token, with `token_audience_mismatch` without an audience,
    /// `token_issuer_mismatch` without an issuer, `token_key_unknown` otherwise: it fails
    /// closed.
    pub fn verify(&self, token: &str) -> Result<Verified, AuthFailure> {
        self.verify_at(token, now())
    }

    /// Verifies `token` as if the time were `now` (seconds since the epoch): to check a
    /// token seen in a log at the time it was sent, or in tests with a fixed clock.
    ///
    /// With a [`KeySource`] it verifies with the keys cached now and never waits for a
    /// fetch: a token whose key is not cached is `token_key_unknown`, or
    /// `key_source_unavailable` while no key set could be fetched.
    pub fn verify_at(&self, token: &str, now: i64) -> Result<Verified, AuthFailure> {
        // A layer checked its authenticators once, when it was built; used directly, an
        // authenticator is checked once, by its first verification.
        let first = self
            .checked
            .get_or_init(|| self.config_errors().into_iter().next());
        if let Some(error) = first {
            return Err(self.misconfigured(error));
        }
        match jws::decode(token) {
            Ok(jws) => match self.step(jws, now, false) {
                Step::Done(result) => result,
                Step::Wait(_) => unreachable!("a step that may not wait never waits"),
            },
            Err(f) => Err(f),
        }
    }

    /// A configuration error as the failure of every token: closed, under the reason of
    /// what is left open.
    fn misconfigured(&self, error: &ConfigError) -> AuthFailure {
        let reason = if self.audiences.is_empty() && !self.any_audience {
            Reason::TokenAudienceMismatch
        } else if self.names_no_issuer() && !self.any_issuer {
            Reason::TokenIssuerMismatch
        } else {
            Reason::TokenKeyUnknown
        };
        AuthFailure::new(reason).detail(error.to_string())
    }

    /// Verifies a decoded token, or says which key sources to refresh first (only when
    /// `may_wait`). The configuration was checked before: when the layer was built
    /// ([`AuthDiagnostics::try_build`](crate::AuthDiagnostics::try_build) refuses a bad
    /// one), or by [`verify_at`](Self::verify_at).
    pub(crate) fn step(&self, jws: Jws<'_>, now: i64, may_wait: bool) -> Step {
        let mut facts = jws.facts();
        let checked = self
            .check_header(&jws, now)
            .map_err(Blocked::Fail)
            .and_then(|alg| self.check_signature(&jws, alg, now, may_wait));
        match checked {
            Ok(()) => {}
            Err(Blocked::Fail(f)) => return Step::Done(Err(f.token(facts))),
            Err(Blocked::Wait(sources)) => return Step::Wait(sources),
        }
        facts.verified = true;
        // From here on the claims are the issuer's word.
        if let Some(f) = self.check_claims(&jws, now) {
            return Step::Done(Err(f.token(facts)));
        }
        Step::Done(Ok(Verified {
            claims: jws.claims,
            facts,
        }))
    }

    /// `alg` (present, allowed), a signature to check, no critical extension: the checks
    /// a header allows before any cryptography.
    fn check_header(&self, jws: &Jws<'_>, now: i64) -> Result<Algorithm, AuthFailure> {
        let Some(alg_name) = jws.header.alg.as_deref() else {
            return Err(
                AuthFailure::new(Reason::TokenMalformed).detail("the token header has no alg")
            );
        };
        let alg = match Algorithm::from_str(alg_name) {
            Ok(alg) if self.algorithms.contains(&alg) => alg,
            _ => {
                let names: Vec<String> = self.algorithms.iter().map(|a| format!("{a:?}")).collect();
                let f = AuthFailure::new(Reason::TokenAlgorithmRejected).detail(format!(
                    "alg {} is not accepted; accepted: {}",
                    cap(alg_name),
                    names.join(", ")
                ));
                return Err(self.with_unverified_notes(f, jws, now));
            }
        };
        if jws.signature.is_empty() {
            return Err(
                AuthFailure::new(Reason::TokenMalformed).detail("the token has no signature")
            );
        }
        // This verifier implements no extension, so any listed one makes the token invalid
        // (RFC 7515 §4.1.11). Before any cryptography: `b64` changes what is signed.
        if !jws.header.crit.is_empty() {
            let f = AuthFailure::new(Reason::TokenCritUnsupported).detail(format!(
                "the header's crit lists {}, which this verifier does not implement",
                cap(&jws.header.crit.join(" "))
            ));
            return Err(self.with_unverified_notes(f, jws, now));
        }
        Ok(alg)
    }

    /// The key for this `alg`, `kid` and claimed issuer, and whether it verifies: a static
    /// key bound to the `kid`, else the source's key of that `kid`, else the unnamed
    /// static keys (at most [`Self::MAX_STATIC_CANDIDATES`] checks in all); without a
    /// `kid`, a source's key only where it is the one key for `alg`.
    fn check_signature(
        &self,
        jws: &Jws<'_>,
        alg: Algorithm,
        now: i64,
        may_wait: bool,
    ) -> Result<(), Blocked> {
        let kid = jws.header.kid.as_deref();
        let iss = jws.claims.get("iss").and_then(Value::as_str);
        let mut statics: Vec<&StaticKey> = self
            .keys
            .iter()
            .filter(|k| k.serves(alg, kid) && k.belongs_to(iss))
            .collect();
        // Keys bound to the token's kid first.
        statics.sort_by_key(|k| k.kid.is_none());
        statics.truncate(Self::MAX_STATIC_CANDIDATES);
        let named = kid.is_some() && statics.first().is_some_and(|k| k.kid.is_some());
        if named || !self.sources_serve(alg) {
            return self.verify_static(&statics, jws, alg, now);
        }
        // Keys an identity provider publishes: the issuer is checked before any fetch, so
        // an attacker's `iss` never makes the layer fetch anything.
        if let Some(f) = self.foreign_issuer(jws) {
            return Err(f.into());
        }
        let sources: Vec<&KeySource> = self
            .sources
            .iter()
            .filter(|s| {
                s.issuer()
                    .is_none_or(|i| Some(i) == iss || self.template_text() == Some(i))
            })
            .collect();
        if sources.is_empty() {
            return self.verify_static(&statics, jws, alg, now);
        }
        let found = Candidates {
            sets: sources
                .iter()
                .filter_map(|s| s.current().map(|set| (*s, set)))
                .collect(),
            statics,
            sources,
        };
        let decided = match kid {
            Some(_) => self.published_by_kid(&found, jws, alg, now, may_wait),
            None => self.published_without_kid(&found, jws, alg, now),
        };
        match decided {
            Some(result) => result,
            None if may_wait => Err(Blocked::Wait(
                found.sources.iter().map(|s| (*s).clone()).collect(),
            )),
            None => Err(self.key_missing(&found.sources, jws, alg, now).into()),
        }
    }

    /// `token_issuer_mismatch` (or a missing `iss`) for a token whose issuer this
    /// authenticator does not accept, noting that no published key was consulted.
    fn foreign_issuer(&self, jws: &Jws<'_>) -> Option<AuthFailure> {
        let iss = jws.claims.get("iss");
        let f = self.issuer_failure(&jws.claims).or_else(|| {
            iss.is_none_or(Value::is_null)
                .then(|| self.check_presence(&jws.claims))
                .flatten()
        })?;
        let detail = format!(
            "{}; the issuer's keys were not consulted",
            f.facts().detail().unwrap_or_default()
        );
        Some(f.detail(detail))
    }

    /// A token with a `kid`: the source's key of that kid; a static key without kid only
    /// when no source has it after a refresh (a rotation must not meet a stale static key
    /// first). `None`: the sources lack it (refresh, or it is missing).
    fn published_by_kid(
        &self,
        found: &Candidates<'_>,
        jws: &Jws<'_>,
        alg: Algorithm,
        now: i64,
        may_wait: bool,
    ) -> Option<Result<(), Blocked>> {
        let kid = jws.header.kid.as_deref();
        let mut mismatch = None;
        for (source, set) in &found.sets {
            match set.pick(alg, kid) {
                Pick::Key(key) => return Some(self.verify_published(key, jws, alg, now)),
                Pick::Mismatch(why) => {
                    mismatch.get_or_insert((*source, why));
                }
                Pick::Ambiguous(_) | Pick::Missing => {}
            }
        }
        if may_wait && mismatch.is_none() {
            return None;
        }
        if !found.statics.is_empty() {
            return Some(self.verify_static(&found.statics, jws, alg, now));
        }
        let (source, why) = mismatch?;
        let f = AuthFailure::new(Reason::TokenKeyUnknown)
            .detail(why)
            .keys(key_facts(source));
        Some(Err(self.with_unverified_notes(f, jws, now).into()))
    }

    /// A token without `kid`: only where exactly one key, of all the sources and static
    /// keys, fits its algorithm. `None`: no key fits (refresh, or it is missing).
    fn published_without_kid(
        &self,
        found: &Candidates<'_>,
        jws: &Jws<'_>,
        alg: Algorithm,
        now: i64,
    ) -> Option<Result<(), Blocked>> {
        let fitting: usize = found
            .sets
            .iter()
            .map(|(_, set)| match set.pick(alg, None) {
                Pick::Key(_) => 1,
                Pick::Ambiguous(n) => n,
                Pick::Mismatch(_) | Pick::Missing => 0,
            })
            .sum();
        let statics = &found.statics;
        if fitting == 0 && !statics.is_empty() {
            return Some(self.verify_static(statics, jws, alg, now));
        }
        if fitting + statics.len() > 1 {
            let f = AuthFailure::new(Reason::TokenKidMissing).detail(format!(
                "the token has no kid, and {} keys could verify {alg:?}",
                fitting + statics.len()
            ));
            return Some(Err(self.with_unverified_notes(f, jws, now).into()));
        }
        found
            .sets
            .iter()
            .find_map(|(_, set)| match set.pick(alg, None) {
                Pick::Key(key) => Some(self.verify_published(key, jws, alg, now)),
                _ => None,
            })
    }

    /// One signature check with a published key.
    fn verify_published(
        &self,
        key: &RemoteKey,
        jws: &Jws<'_>,
        alg: Algorithm,
        now: i64,
    ) -> Result<(), Blocked> {
        if key.verifies(jws.message, jws.signature, alg) {
            return Ok(());
        }
        Err(self.forged(jws, alg, now))
    }

    /// `token_signature_invalid`, with what the unverified claims would also fail.
    fn forged(&self, jws: &Jws<'_>, alg: Algorithm, now: i64) -> Blocked {
        let f = AuthFailure::new(Reason::TokenSignatureInvalid)
            .detail(format!("the {alg:?} signature does not verify"));
        Blocked::Fail(self.with_unverified_notes(f, jws, now))
    }

    /// Whether a key source may hold a key for `alg`.
    fn sources_serve(&self, alg: Algorithm) -> bool {
        !self.sources.is_empty() && PUBLISHED_ALGORITHMS.contains(&alg)
    }

    /// Checks the static candidates, at most one signature each.
    fn verify_static(
        &self,
        candidates: &[&StaticKey],
        jws: &Jws<'_>,
        alg: Algorithm,
        now: i64,
    ) -> Result<(), Blocked> {
        if candidates.is_empty() {
            return Err(self.no_key(jws, alg, now).into());
        }
        if candidates
            .iter()
            .any(|k| k.verifies(jws.message, jws.signature))
        {
            return Ok(());
        }
        Err(self.forged(jws, alg, now))
    }

    /// After the refresh (or without one): no source holds the token's key. A source
    /// with no key set at all, or whose refresh just failed, cannot say the key is
    /// unknown: that is a server fault (503). Otherwise the fresh set lacks it.
    fn key_missing(
        &self,
        sources: &[&KeySource],
        jws: &Jws<'_>,
        alg: Algorithm,
        now: i64,
    ) -> AuthFailure {
        let kid = jws.header.kid.as_deref();
        for source in sources {
            let state = source.state();
            if state.fetching {
                // The wait ran out while the fetch goes on: nothing is known yet.
                return AuthFailure::new(Reason::KeySourceUnavailable)
                    .detail("the key set is being fetched and did not arrive in time")
                    .retry_after(1)
                    .keys(key_facts(source));
            }
            if state.keys.is_none() || state.last_error.is_some() {
                let why = state
                    .last_error
                    .as_ref()
                    .map_or("the first fetch has not finished", |e| e.message());
                let detail = match state.keys {
                    None => format!("no key set could be fetched yet: {why}"),
                    Some(_) => format!(
                        "the token's key is not in the cached set, and refreshing it failed: {why}"
                    ),
                };
                return AuthFailure::new(Reason::KeySourceUnavailable)
                    .detail(detail)
                    .retry_after(state.retry_after)
                    .keys(key_facts(source));
            }
        }
        let mut detail = match kid {
            Some(k) => format!(
                "no key with kid {} for {alg:?} in the issuer's key set",
                cap(k)
            ),
            None => format!("no key for {alg:?} in the issuer's key set"),
        };
        let skipped = kid.and_then(|k| {
            sources.iter().find_map(|s| {
                s.current()
                    .and_then(|set| set.skipped(k).map(str::to_owned))
            })
        });
        if let Some(why) = skipped {
            detail = format!("{detail}: the set's key of that kid was skipped ({why})");
        }
        let f = AuthFailure::new(Reason::TokenKeyUnknown).detail(detail);
        let f = match sources.first() {
            Some(s) => f.keys(key_facts(s)),
            None => f,
        };
        self.with_unverified_notes(f, jws, now)
    }

    /// No key applies: keys of other issuers only (the token's issuer is not ours), or
    /// `token_key_unknown`.
    fn no_key(&self, jws: &Jws<'_>, alg: Algorithm, now: i64) -> AuthFailure {
        let kid = jws.header.kid.as_deref();
        let iss = jws.claims.get("iss");
        if self.keys.iter().any(|k| k.serves(alg, kid)) {
            // Keys of this alg and kid exist, but all belong to issuers this token does not
            // claim: an absent `iss` is a missing claim, another one not ours.
            let missing = iss.is_none_or(Value::is_null);
            let not_ours = if missing {
                self.check_presence(&jws.claims)
            } else {
                self.issuer_failure(&jws.claims)
            };
            if let Some(f) = not_ours {
                let detail = format!(
                    "{}; no key of an accepted issuer applies, so its signature was not checked",
                    f.facts().detail().unwrap_or_default()
                );
                return f.detail(detail);
            }
        }
        let iss = iss
            .and_then(Value::as_str)
            .filter(|_| self.issuer_count() > 1);
        let detail = match (kid, iss) {
            (Some(k), Some(i)) => format!(
                "no key with kid {} of issuer {} for {alg:?}",
                cap(k),
                cap(i)
            ),
            (Some(k), None) => format!("no key with kid {} for {alg:?}", cap(k)),
            (None, Some(i)) => format!("no key of issuer {} for {alg:?}", cap(i)),
            (None, None) => format!("no key for {alg:?}"),
        };
        self.with_unverified_notes(
            AuthFailure::new(Reason::TokenKeyUnknown).detail(detail),
            jws,
            now,
        )
    }

    /// Type, presence, claim types, time, issuer, audience — in that order. `None` when
    /// all pass.
    fn check_claims(&self, jws: &Jws<'_>, now: i64) -> Option<AuthFailure> {
        let claims = &jws.claims;
        self.check_type(jws.header.typ.as_deref())
            .or_else(|| not_an_id_token(claims))
            .or_else(|| self.check_presence(claims))
            .or_else(|| check_claim_types(claims))
            .or_else(|| self.check_time(claims, now))
            .or_else(|| self.issuer_failure(claims))
            .or_else(|| self.check_audience(claims.get("aud")))
    }

    /// `token_type_rejected` for a `typ` that is not accepted: another kind of JWT always
    /// (RFC 8725 §3.11: explicit typing exists to stop cross-JWT confusion), and anything
    /// outside the configured types when some are configured.
    fn check_type(&self, typ: Option<&str>) -> Option<AuthFailure> {
        let got = typ.map(type_name);
        let untyped_ok = got.is_none() && self.untyped_ok;
        if !self.types.is_empty() && !untyped_ok {
            let accepted = got.is_some_and(|g| {
                self.types
                    .iter()
                    .any(|t| type_name(t).eq_ignore_ascii_case(g))
            });
            if accepted {
                return None;
            }
            let detail = match typ {
                None => format!("the token has no typ; accepted: {}", self.types.join(", ")),
                Some(t) => format!(
                    "typ {} is not accepted; accepted: {}",
                    cap(t),
                    self.types.join(", ")
                ),
            };
            return Some(AuthFailure::new(Reason::TokenTypeRejected).detail(detail));
        }
        let got = got?.as_bytes();
        let other_jwt = got.len() >= 4
            && got[got.len() - 4..].eq_ignore_ascii_case(b"+jwt")
            && !got.eq_ignore_ascii_case(b"at+jwt");
        other_jwt.then(|| {
            AuthFailure::new(Reason::TokenTypeRejected).detail(format!(
                "typ {} names another kind of JWT, not an access token",
                cap(typ.unwrap_or_default())
            ))
        })
    }

    /// `token_claim_missing` for a required claim that is absent or `null` (`iss` and `aud`
    /// are required once issuers or audiences are configured).
    fn check_presence(&self, claims: &Map<String, Value>) -> Option<AuthFailure> {
        let implied = [
            (!self.names_no_issuer()).then_some("iss"),
            (!self.audiences.is_empty()).then_some("aud"),
        ];
        let mut required = self
            .required
            .iter()
            .map(|c| c.as_ref())
            .chain(implied.into_iter().flatten());
        let name = required.find(|name| claims.get(*name).is_none_or(Value::is_null))?;
        Some(
            AuthFailure::new(Reason::TokenClaimMissing)
                .detail(format!("the required claim {} is missing", cap(name)))
                .claim(name.to_owned()),
        )
    }

    /// `token_expired` from `now >= exp + leeway` (RFC 7519 §4.1.4: "on or after which the
    /// JWT MUST NOT be accepted"), `token_not_yet_valid` for `nbf` or `iat` beyond leeway.
    fn check_time(&self, claims: &Map<String, Value>, now: i64) -> Option<AuthFailure> {
        if let Some(exp) = claims.get("exp").and_then(numeric_date) {
            if now >= exp.saturating_add(self.leeway) {
                return Some(AuthFailure::new(Reason::TokenExpired).detail(format!(
                    "the token expired at {} ({} ago)",
                    rfc3339(exp),
                    ago(exp, now)
                )));
            }
        }
        let (name, t) = ["nbf", "iat", "auth_time"].into_iter().find_map(|name| {
            let t = claims.get(name).and_then(numeric_date)?;
            (t > now.saturating_add(self.leeway)).then_some((name, t))
        })?;
        // A login cannot have happened in the future: such an `auth_time` would satisfy
        // every `max_age` forever (RFC 9470). The token is invalid, not merely early.
        let reason = match name {
            "auth_time" => Reason::TokenClaimInvalid,
            _ => Reason::TokenNotYetValid,
        };
        Some(
            AuthFailure::new(reason)
                .detail(format!(
                    "{name} is {} ({} in the future, leeway {}s): the clocks of issuer and server disagree",
                    rfc3339(t),
                    ago(now, t),
                    self.leeway
                ))
                .claim(name),
        )
    }

    /// `token_issuer_mismatch` when issuers are configured and `iss` is none of them; with
    /// an issuer template, an `iss` of its form is checked against the tenant claim
    /// ([`tenant_failure`](Self::tenant_failure)).
    fn issuer_failure(&self, claims: &Map<String, Value>) -> Option<AuthFailure> {
        let iss = claims.get("iss");
        let text = iss.and_then(Value::as_str);
        if self.names_no_issuer() || text.is_some_and(|i| self.issuers.iter().any(|e| e == i)) {
            return None;
        }
        if let (Some(t), Some(i)) = (&self.template, text) {
            if t.tenant_of(i).is_some() {
                return self.tenant_failure(t, claims, i);
            }
        }
        let got = match (iss, text) {
            (_, Some(i)) => cap(i).to_string(),
            (None, _) => "(absent)".to_owned(),
            (Some(_), None) => "(not a string)".to_owned(),
        };
        let expected = shown_issuers(&self.accepted_shown());
        let f = AuthFailure::new(Reason::TokenIssuerMismatch)
            .detail(format!("iss {got}, expected {}", cap(&expected)))
            .expected_iss(Some(expected));
        Some(match text.and_then(|i| near_issuer(i, &self.issuers)) {
            Some(hint) => f.hint(hint),
            None => f,
        })
    }

    /// An `iss` of the template's form: the tenant claim present (`token_claim_missing`),
    /// a plain identifier (`token_claim_invalid`), the one `iss` names
    /// (`tenant_issuer_mismatch`), and accepted (`token_issuer_mismatch`).
    fn tenant_failure(
        &self,
        t: &IssuerTemplate,
        claims: &Map<String, Value>,
        iss: &str,
    ) -> Option<AuthFailure> {
        let claim = t.claim.as_str();
        let tid = match claims.get(claim) {
            None | Some(Value::Null) => {
                return Some(
                    AuthFailure::new(Reason::TokenClaimMissing)
                        .detail(format!(
                            "the tenant claim {} is missing; iss {} is of the issuer template {}",
                            cap(claim),
                            cap(iss),
                            cap(&t.text)
                        ))
                        .claim(claim.to_owned()),
                )
            }
            Some(Value::String(tid)) if plain_tenant(tid) => tid.as_str(),
            Some(other) => {
                let shown = match other {
                    Value::String(s) => cap(s).to_string(),
                    _ => "(not a string)".to_owned(),
                };
                return Some(
                    AuthFailure::new(Reason::TokenClaimInvalid)
                        .detail(format!(
                            "the tenant claim {} is {shown}, not a plain tenant identifier \
                             (ASCII letters, digits, -, _, .; no ..; at most {} bytes)",
                            cap(claim),
                            Self::MAX_TENANT_LEN
                        ))
                        .claim(claim.to_owned()),
                );
            }
        };
        let expected = t.fill(tid);
        if expected != iss {
            return Some(
                AuthFailure::new(Reason::TenantIssuerMismatch)
                    .detail(format!(
                        "iss {}, but {} {tid} makes the issuer {}: the token's issuer and \
                         tenant disagree",
                        cap(iss),
                        cap(claim),
                        cap(&expected)
                    ))
                    .expected_iss(Some(expected)),
            );
        }
        if self.tenant_accepted(tid) {
            return None;
        }
        let accepted = self.tenants.join(" ");
        Some(
            AuthFailure::new(Reason::TokenIssuerMismatch)
                .detail(format!(
                    "iss {}: tenant {tid} is not accepted; accepted tenants: {}",
                    cap(iss),
                    cap(&accepted)
                ))
                .expected_iss(Some(shown_issuers(&self.accepted_shown()))),
        )
    }

    /// `token_audience_mismatch` when `aud` holds none of the configured audiences.
    fn check_audience(&self, aud: Option<&Value>) -> Option<AuthFailure> {
        if self.audiences.is_empty() {
            return None;
        }
        let ours = |a: &str| self.audiences.iter().any(|e| e == a);
        let ok = match aud {
            Some(Value::String(a)) => ours(a),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(ours),
            _ => false,
        };
        if ok {
            return None;
        }
        let expected = self.audiences.join(" ");
        let got = aud
            .map(|a| cap(&audience_text(a)).to_string())
            .unwrap_or_default();
        Some(
            AuthFailure::new(Reason::TokenAudienceMismatch)
                .detail(format!("aud {got}, expected {}", cap(&expected)))
                .expected_aud(Some(expected)),
        )
    }

    /// Appends what the unverified claims would also have failed on, so that a forged or
    /// mis-keyed token that is also expired says both.
    fn with_unverified_notes(&self, f: AuthFailure, jws: &Jws<'_>, now: i64) -> AuthFailure {
        let Some(also) = self.check_claims(jws, now) else {
            return f;
        };
        let f = match also.facts().detail() {
            Some(extra) => {
                let detail = format!(
                    "{}; the unverified claims also fail: {} ({extra})",
                    f.facts().detail().unwrap_or_default(),
                    also.reason().code()
                );
                f.detail(detail)
            }
            None => f,
        };
        f.expected_iss(also.facts().expected_iss().map(str::to_owned))
            .expected_aud(also.facts().expected_aud().map(str::to_owned))
    }
}

/// The keys that may verify a token of an accepted issuer: static ones (bound to its kid
/// first), its issuer's sources, and the sets those hold now.
struct Candidates<'a> {
    statics: Vec<&'a StaticKey>,
    sources: Vec<&'a KeySource>,
    sets: Vec<(&'a KeySource, std::sync::Arc<KeySet>)>,
}

/// The log facts of a key source: where, when fetched, which kids, the last error.
fn key_facts(source: &KeySource) -> KeyFacts {
    let state = source.state();
    KeyFacts {
        source: shown_source(&state.url),
        fetched_at: state.keys.as_ref().map(|k| k.fetched_at),
        kids: state.keys.as_ref().map(|k| k.kids()),
        fetch_error: state.last_error.map(|e| e.message().to_owned()),
    }
}

/// The accepted issuers as logs and bodies may show them: a discovered issuer's URL
/// without a password (`user:***@`), space-separated.
/// Adds `error` unless it is there already (every key source without an issuer is one
/// mistake).
pub(crate) fn push_new(all: &mut Vec<ConfigError>, error: ConfigError) {
    if !all.contains(&error) {
        all.push(error);
    }
}

pub(crate) fn shown_issuers(issuers: &[String]) -> String {
    let shown: Vec<String> = issuers.iter().map(|i| shown_source(i)).collect();
    shown.join(" ")
}

/// A hint when `got` differs from an accepted issuer only by a trailing slash, the most
/// common way to configure the right issuer wrongly.
pub(crate) fn near_issuer(got: &str, accepted: &[String]) -> Option<String> {
    let near = accepted
        .iter()
        .find(|e| e.trim_end_matches('/') == got.trim_end_matches('/'))?;
    Some(format!(
        "The token's iss and the accepted issuer {} differ only by a trailing slash; issuers \
         are compared exactly (RFC 9068 §4): configure the issuer exactly as the tokens carry it.",
        cap(&shown_source(near))
    ))
}

/// A token that passed every check.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Verified {
    /// The verified claims.
    pub claims: Map<String, Value>,
    /// The token's header and claim facts, `verified == true`.
    pub facts: TokenFacts,
}

/// The media type a `typ` names, to be compared case-insensitively: without an
/// `application/` prefix, media type parameters (`; charset=…`), surrounding whitespace or
/// control characters (RFC 7515 §4.1.9). Borrowed: this runs for every token.
fn type_name(t: &str) -> &str {
    let t = t.split(';').next().unwrap_or_default();
    let t = t.trim_matches(|c: char| c.is_whitespace() || c.is_control());
    match t.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &t[12..],
        _ => t,
    }
}

/// `token_type_rejected` for an OpenID Connect ID token sent as an access token: `at_hash`
/// and `c_hash` (OpenID Connect Core §3.1.3.6, §3.3.2.11) belong to ID tokens only, whose
/// rules differ (RFC 8725 §3.12). Claims IdPs also put in access tokens (`azp`,
/// `auth_time`, `nonce`) do not count.
fn not_an_id_token(claims: &Map<String, Value>) -> Option<AuthFailure> {
    let claim = ["at_hash", "c_hash"]
        .into_iter()
        .find(|c| claims.contains_key(*c))?;
    Some(
        AuthFailure::new(Reason::TokenTypeRejected)
            .detail(format!(
                "the token carries {claim}, a claim of OpenID Connect ID tokens: an ID token \
                 is not an access token"
            ))
            .claim(claim),
    )
}

/// `token_claim_invalid` for a registered claim of the wrong JSON type (RFC 7519 §4.1):
/// `iss` a string, `sub` a non-empty string, `aud` a string or an array of strings, `exp`,
/// `nbf` and `iat` numbers, `cnf` (RFC 7800) an object naming at least one confirmation
/// method, its `jkt` a string. `null` counts as the wrong type; absence is fine here.
fn check_claim_types(claims: &Map<String, Value>) -> Option<AuthFailure> {
    fn audience(v: &Value) -> bool {
        match v {
            Value::String(_) => true,
            Value::Array(a) => a.iter().all(Value::is_string),
            _ => false,
        }
    }
    fn subject(v: &Value) -> bool {
        v.as_str().is_some_and(|s| !s.is_empty())
    }
    fn confirmation(v: &Value) -> bool {
        v.as_object()
            .is_some_and(|c| !c.is_empty() && c.get("jkt").is_none_or(Value::is_string))
    }
    type Rule = (&'static str, fn(&Value) -> bool, &'static str);
    const NUMERIC_DATE: &str = "a NumericDate (a number)";
    let rules: [Rule; 7] = [
        ("iss", Value::is_string, "a string"),
        ("sub", subject, "a non-empty string"),
        ("aud", audience, "a string or an array of strings"),
        ("exp", Value::is_number, NUMERIC_DATE),
        ("nbf", Value::is_number, NUMERIC_DATE),
        ("iat", Value::is_number, NUMERIC_DATE),
        (
            "cnf",
            confirmation,
            "an object naming a confirmation method (a string jkt)",
        ),
    ];
    let (name, _, what) = rules
        .into_iter()
        .find(|(name, ok, _)| claims.get(*name).is_some_and(|v| !ok(v)))?;
    Some(
        AuthFailure::new(Reason::TokenClaimInvalid)
            .detail(format!("the {name} claim is not {what}"))
            .claim(name),
    )
}

/// An issuer with one `{…}` placeholder for the tenant.
#[derive(Clone, Debug)]
struct IssuerTemplate {
    /// As configured.
    text: String,
    /// Before and after the placeholder.
    prefix: String,
    suffix: String,
    /// The claim naming the token's tenant.
    claim: String,
    /// Why it cannot be used.
    mistake: Option<String>,
}

impl IssuerTemplate {
    fn new(text: String, claim: String) -> Self {
        let open = text.matches('{').count();
        let close = text.matches('}').count();
        let (prefix, suffix, mut mistake) = match (text.find('{'), text.find('}')) {
            (Some(a), Some(b)) if open == 1 && close == 1 && b > a + 1 => {
                (text[..a].to_owned(), text[b + 1..].to_owned(), None)
            }
            _ => (
                String::new(),
                String::new(),
                Some(
                    "an issuer template needs exactly one named placeholder, as in \
                     https://login.microsoftonline.com/{tid}/v2.0"
                        .to_owned(),
                ),
            ),
        };
        if mistake.is_none() && claim.trim().is_empty() {
            mistake = Some("the tenant claim is empty: name it (tid for Entra ID)".to_owned());
        }
        Self {
            text,
            prefix,
            suffix,
            claim,
            mistake,
        }
    }

    /// What stands where the placeholder is, when `iss` is of the template's form.
    fn tenant_of<'a>(&self, iss: &'a str) -> Option<&'a str> {
        if self.mistake.is_some() || iss.len() <= self.prefix.len() + self.suffix.len() {
            return None;
        }
        iss.strip_prefix(self.prefix.as_str())?
            .strip_suffix(self.suffix.as_str())
    }

    /// The issuer of tenant `tid`.
    fn fill(&self, tid: &str) -> String {
        format!("{}{tid}{}", self.prefix, self.suffix)
    }
}

/// A tenant identifier that cannot change what an issuer URL means: ASCII letters,
/// digits, `-`, `_` and `.`, no `..`, not empty, at most
/// [`JwtAuthenticator::MAX_TENANT_LEN`] bytes.
fn plain_tenant(tid: &str) -> bool {
    !tid.is_empty()
        && tid.len() <= JwtAuthenticator::MAX_TENANT_LEN
        && !tid.contains("..")
        && tid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
