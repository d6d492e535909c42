//! Bearer JWT verification with static keys.
//!
//! The order of checks is part of the contract: cheap structural checks first, then the
//! algorithm and the key, then the signature, and only then type, time and claims — so a
//! forged token is reported as forged, never as merely expired. The claims of a rejected
//! token are still read (marked unverified) so the log can say "expired 3h ago" or
//! "iss X, expected Y" even when the signature failed first.

use crate::failure::{AuthFailure, TokenFacts};
use crate::reason::Reason;
use crate::sanitize::{cap, human_duration, rfc3339};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest token we decode.
pub(crate) const MAX_TOKEN: usize = 16 * 1024;

#[cfg(not(any(feature = "rust_crypto", feature = "aws_lc_rs")))]
compile_error!(
    "auth-diagnostics needs a crypto backend for JWT verification: enable the `rust_crypto` \
     (default) or the `aws_lc_rs` feature"
);

/// Selects the jsonwebtoken crypto backend this crate's features chose (`aws_lc_rs` when
/// on, else `rust_crypto`), so jsonwebtoken never panics on its first use. When the
/// application installed its own provider first, that one stays.
///
/// [`JwtAuthenticator::new`] calls it. Call it yourself before signing tokens with
/// jsonwebtoken directly in a build that compiles both backends in.
pub fn install_crypto_provider() {
    #[cfg(feature = "aws_lc_rs")]
    let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
    #[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
    let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
    let _ = provider.install_default();
}

/// One verification key: the key, the algorithm it verifies, and optionally its `kid` and
/// the issuer it belongs to.
#[derive(Clone)]
pub struct StaticKey {
    kid: Option<String>,
    issuer: Option<String>,
    key: DecodingKey,
    alg: Algorithm,
}

impl StaticKey {
    /// A key for `alg`.
    pub fn new(key: DecodingKey, alg: Algorithm) -> Self {
        Self {
            kid: None,
            issuer: None,
            key,
            alg,
        }
    }

    /// An HS256 shared secret.
    pub fn hs256(secret: impl AsRef<[u8]>) -> Self {
        Self::new(DecodingKey::from_secret(secret.as_ref()), Algorithm::HS256)
    }

    /// Binds the key to a `kid`: tokens whose header names another `kid` never use it.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Binds the key to an issuer (RFC 8725 §3.8): only tokens whose `iss` is exactly
    /// `issuer` are verified with it. With several issuers configured every key must be
    /// bound to one of them, so issuer B's key never verifies a token that claims issuer A.
    #[must_use]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }
}

impl fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKey")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Verifies `Authorization: Bearer <JWT>`.
///
/// The audience is required: a token minted for another service must not be accepted here
/// (RFC 7519 §4.1.3, RFC 8725 §3.9). Configure it with [`JwtAuthenticator::audience`], or
/// opt out explicitly with [`JwtAuthenticator::accept_any_audience`];
/// [`AuthDiagnostics::bearer`](crate::AuthDiagnostics::bearer) panics at start-up on an
/// authenticator with neither, as axum does for conflicting routes.
///
/// Defaults: only the keys' own algorithms, `exp` required (a token is expired from
/// `exp + leeway` on), 60 s leeway, `typ` absent, `JWT` or `at+jwt` (other kinds of JWT,
/// `dpop+jwt`, `logout+jwt`, `secevent+jwt`, `id_token+jwt`, are refused), no critical
/// header extensions (`crit`), registered claims of their registered JSON types.
///
/// ```
/// use auth_diagnostics::{JwtAuthenticator, StaticKey};
/// use std::time::Duration;
///
/// let jwt = JwtAuthenticator::new(StaticKey::hs256("secret"))
///     .issuer("https://issuer.example")
///     .audience("my-api")
///     .require_claims(["sub"])
///     .leeway(Duration::from_secs(30));
/// # let _ = jwt;
/// ```
#[derive(Clone, Debug)]
pub struct JwtAuthenticator {
    keys: Vec<StaticKey>,
    algorithms: Vec<Algorithm>,
    explicit_algorithms: bool,
    issuers: Vec<String>,
    audiences: Vec<String>,
    any_audience: bool,
    leeway: i64,
    required: Vec<Cow<'static, str>>,
    types: Vec<String>,
}

impl JwtAuthenticator {
    /// The most clock skew [`JwtAuthenticator::leeway`] accepts: RFC 7519 speaks of "a few
    /// minutes" at most.
    pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

    /// Verifies tokens signed by `key`. By default: only `key`'s algorithm is accepted,
    /// `exp` is required, leeway is 60 s, any issuer. An audience must still be configured
    /// ([`JwtAuthenticator::audience`]) or explicitly waived
    /// ([`JwtAuthenticator::accept_any_audience`]).
    #[must_use]
    pub fn new(key: StaticKey) -> Self {
        install_crypto_provider();
        Self {
            algorithms: vec![key.alg],
            keys: vec![key],
            explicit_algorithms: false,
            issuers: Vec::new(),
            audiences: Vec::new(),
            any_audience: false,
            leeway: 60,
            required: vec![Cow::Borrowed("exp")],
            types: Vec::new(),
        }
    }

    /// Adds another key (e.g. the next one during a rotation). Its algorithm joins the
    /// allow-list unless [`JwtAuthenticator::algorithms`] set it explicitly.
    pub fn key(mut self, key: StaticKey) -> Self {
        if !self.explicit_algorithms && !self.algorithms.contains(&key.alg) {
            self.algorithms.push(key.alg);
        }
        self.keys.push(key);
        self
    }

    /// Replaces the algorithm allow-list.
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algs.into_iter().collect();
        self.explicit_algorithms = true;
        self
    }

    /// Accepts tokens whose `iss` equals `issuer` (call again to accept several).
    /// With at least one issuer set, `iss` is required.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accepts tokens whose `aud` contains `audience` (call again to accept several).
    /// `aud` is then required.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts tokens whatever their `aud` says: an explicit opt-out of the audience check,
    /// for a service that is the only consumer of its issuer's tokens. Without it (and
    /// without [`JwtAuthenticator::audience`]) the authenticator is a configuration error.
    pub fn accept_any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// Clock skew tolerated for `exp`, `nbf` and `iat` (default 60 s).
    ///
    /// # Panics
    /// When `leeway` is more than [`MAX_LEEWAY`](Self::MAX_LEEWAY) (5 minutes): a leeway of hours keeps
    /// expired tokens alive, which is a configuration error.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        assert!(
            leeway <= Self::MAX_LEEWAY,
            "auth-diagnostics: JwtAuthenticator::leeway({leeway:?}) is more than the {}s \
             allowed; clock skew is a matter of seconds",
            Self::MAX_LEEWAY.as_secs()
        );
        self.leeway = leeway.as_secs() as i64;
        self
    }

    /// Claims that must be present (in addition to `exp`, which is always required).
    pub fn require_claims<I, S>(mut self, claims: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
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

    /// Requires header `typ` to be one of `types` (compared case-insensitively, with or
    /// without the `application/` prefix).
    pub fn accept_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.types.extend(types.into_iter().map(Into::into));
        self
    }

    /// What is wrong with this configuration, if anything: no audience and no explicit
    /// opt-out, a key bound to an issuer that is not accepted, or several issuers with a
    /// key that belongs to none of them.
    pub(crate) fn config_error(&self) -> Option<String> {
        if self.audiences.is_empty() && !self.any_audience {
            return Some(
                "JwtAuthenticator has no audience: tokens minted for any other service would \
                 be accepted (RFC 8725 §3.9). Call .audience(\"<this API>\"), or \
                 .accept_any_audience() to opt out explicitly"
                    .to_owned(),
            );
        }
        if !self.audiences.is_empty() && self.any_audience {
            return Some(
                "JwtAuthenticator has both .audience(..) and .accept_any_audience(): choose one"
                    .to_owned(),
            );
        }
        for key in &self.keys {
            match &key.issuer {
                Some(i) if !self.issuers.iter().any(|e| e == i) => {
                    return Some(format!(
                        "a key is bound to issuer {i:?}, which is not accepted: add .issuer({i:?})"
                    ))
                }
                None if self.issuers.len() > 1 => {
                    return Some(format!(
                        "JwtAuthenticator accepts {} issuers, so every key must name the issuer \
                         it belongs to (StaticKey::with_issuer): otherwise one issuer's key \
                         verifies tokens that claim another (RFC 8725 §3.8)",
                        self.issuers.len()
                    ))
                }
                _ => {}
            }
        }
        None
    }

    /// Verifies `token` at the current time.
    ///
    /// An authenticator with a configuration error (see the type's documentation) refuses
    /// every token with `token_audience_mismatch`: it fails closed.
    pub fn verify(&self, token: &str) -> Result<Verified, AuthFailure> {
        self.verify_at(token, now())
    }

    /// Verifies `token` as if the time were `now` (seconds since the epoch).
    #[doc(hidden)]
    pub fn verify_at(&self, token: &str, now: i64) -> Result<Verified, AuthFailure> {
        if let Some(error) = self.config_error() {
            return Err(AuthFailure::new(Reason::TokenAudienceMismatch).detail(error));
        }
        let raw = decode_structure(token)?;
        let mut facts = raw.facts();
        let fail =
            |reason: Reason, facts: &TokenFacts| AuthFailure::new(reason).with_token(facts.clone());

        // Algorithm.
        let Some(alg_name) = raw.header.alg.as_deref() else {
            return Err(fail(Reason::TokenMalformed, &facts).detail("the token header has no alg"));
        };
        let alg = match Algorithm::from_str(alg_name) {
            Ok(alg) if self.algorithms.contains(&alg) => alg,
            _ => {
                let detail = format!(
                    "alg {} is not accepted; accepted: {}",
                    cap(alg_name),
                    self.algorithm_list()
                );
                return Err(self.with_unverified_notes(
                    fail(Reason::TokenAlgorithmRejected, &facts).detail(detail),
                    &raw,
                    now,
                ));
            }
        };

        if raw.signature.is_empty() {
            return Err(fail(Reason::TokenMalformed, &facts).detail("the token has no signature"));
        }

        // Critical extensions: this verifier implements none, so any listed one makes the
        // token invalid (RFC 7515 §4.1.11). Checked before any cryptography: an extension
        // such as `b64` changes what the signature covers.
        if !raw.header.crit.is_empty() {
            let detail = format!(
                "the header's crit lists {}, which this verifier does not implement",
                cap(&raw.header.crit.join(" "))
            );
            let f = fail(Reason::TokenCritUnsupported, &facts).detail(detail);
            return Err(self.with_unverified_notes(f, &raw, now));
        }

        // Key.
        // A key bound to a kid serves only that kid; a key without one serves any token
        // (so adding a named key during a rotation keeps the unnamed one working). A key
        // bound to an issuer serves only tokens that claim that issuer.
        let kid = raw.header.kid.as_deref();
        let iss = raw.claims.get("iss").and_then(Value::as_str);
        let fits = |k: &&StaticKey| {
            k.alg == alg
                && match (kid, &k.kid) {
                    (Some(want), Some(have)) => want == have,
                    (_, None) | (None, Some(_)) => true,
                }
        };
        let candidates = self
            .keys
            .iter()
            .filter(fits)
            .filter(|k| k.issuer.is_none() || k.issuer.as_deref() == iss);
        let mut tried = 0;
        let mut verified = false;
        for key in candidates {
            tried += 1;
            if jsonwebtoken::crypto::verify(raw.signature, raw.message.as_bytes(), &key.key, alg)
                .unwrap_or(false)
            {
                verified = true;
                break;
            }
        }
        if tried == 0 {
            if self.keys.iter().any(|k| fits(&k)) {
                // Keys for this alg and kid exist, but they belong to other issuers.
                if let Some(f) = self.issuer_failure(raw.claims.get("iss")) {
                    let detail = format!(
                        "{}; no key of an accepted issuer applies, so its signature was not checked",
                        f.facts.detail.as_deref().unwrap_or_default()
                    );
                    return Err(f.with_token(facts.clone()).detail(detail));
                }
            }
            let detail = match (kid, iss.filter(|_| self.issuers.len() > 1)) {
                (Some(k), Some(i)) => {
                    format!(
                        "no key with kid {} of issuer {} for {alg_name}",
                        cap(k),
                        cap(i)
                    )
                }
                (Some(k), None) => format!("no key with kid {} for {alg_name}", cap(k)),
                (None, Some(i)) => format!("no key of issuer {} for {alg_name}", cap(i)),
                (None, None) => format!("no key for {alg_name}"),
            };
            return Err(self.with_unverified_notes(
                fail(Reason::TokenKeyUnknown, &facts).detail(detail),
                &raw,
                now,
            ));
        }
        if !verified {
            return Err(self.with_unverified_notes(
                fail(Reason::TokenSignatureInvalid, &facts)
                    .detail(format!("the {alg_name} signature does not verify")),
                &raw,
                now,
            ));
        }
        facts.verified = true;

        // From here on the claims are the issuer's word.
        if let Some(f) = self.check_claims(&raw, now) {
            return Err(f.with_token(facts));
        }
        Ok(Verified {
            claims: raw.claims,
            facts,
        })
    }

    fn algorithm_list(&self) -> String {
        let names: Vec<String> = self.algorithms.iter().map(|a| format!("{a:?}")).collect();
        names.join(", ")
    }

    /// Type, presence, claim types, time, issuer, audience — in that order. `None` when
    /// all pass.
    fn check_claims(&self, raw: &RawToken<'_>, now: i64) -> Option<AuthFailure> {
        let claims = &raw.claims;
        if let Some(f) = self.check_type(raw.header.typ.as_deref()) {
            return Some(f);
        }

        let implied = [
            (!self.issuers.is_empty()).then_some("iss"),
            (!self.audiences.is_empty()).then_some("aud"),
        ];
        let required = self
            .required
            .iter()
            .map(|c| c.as_ref())
            .chain(implied.into_iter().flatten());
        for name in required {
            if claims.get(name).is_none_or(Value::is_null) {
                let mut f = AuthFailure::new(Reason::TokenClaimMissing)
                    .detail(format!("the required claim {} is missing", cap(name)));
                f.facts.claim = Some(Cow::Owned(name.to_owned()));
                return Some(f);
            }
        }

        if let Some(f) = check_claim_types(claims) {
            return Some(f);
        }
        if let Some(exp) = claims.get("exp").and_then(numeric_date) {
            // RFC 7519 §4.1.4: "on or after which the JWT MUST NOT be accepted".
            if now >= exp.saturating_add(self.leeway) {
                return Some(AuthFailure::new(Reason::TokenExpired).detail(expired_text(exp, now)));
            }
        }
        for name in ["nbf", "iat"] {
            if let Some(t) = claims.get(name).and_then(numeric_date) {
                if t > now.saturating_add(self.leeway) {
                    let mut f = AuthFailure::new(Reason::TokenNotYetValid).detail(format!(
                        "{name} is {} ({} in the future, leeway {}s): the clocks of issuer and server disagree",
                        rfc3339(t),
                        human_duration(t.saturating_sub(now).max(0) as u64),
                        self.leeway
                    ));
                    f.facts.claim = Some(Cow::Borrowed(name));
                    return Some(f);
                }
            }
        }

        if let Some(f) = self.issuer_failure(claims.get("iss")) {
            return Some(f);
        }
        if !self.audiences.is_empty() {
            let aud = claims.get("aud");
            let ok = match aud {
                Some(Value::String(a)) => self.audiences.iter().any(|e| e == a),
                Some(Value::Array(list)) => list
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|a| self.audiences.iter().any(|e| e == a)),
                _ => false,
            };
            if !ok {
                let expected = self.audiences.join(" ");
                let got = aud
                    .map(|a| cap(&audience_text(a)).to_string())
                    .unwrap_or_default();
                let mut f = AuthFailure::new(Reason::TokenAudienceMismatch)
                    .detail(format!("aud {got}, expected {}", cap(&expected)));
                f.facts.expected_aud = Some(expected);
                return Some(f);
            }
        }
        None
    }

    /// `token_type_rejected` for a `typ` that is not accepted: another kind of JWT always
    /// (RFC 8725 §3.11: explicit typing exists to stop cross-JWT confusion), and anything
    /// outside the configured types when some are configured.
    fn check_type(&self, typ: Option<&str>) -> Option<AuthFailure> {
        let got = typ.map(normalize_type);
        if !self.types.is_empty() {
            let accepted = got
                .as_deref()
                .is_some_and(|g| self.types.iter().any(|t| normalize_type(t) == g));
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
        let got = got?;
        if got.ends_with("+jwt") && got != "at+jwt" {
            return Some(AuthFailure::new(Reason::TokenTypeRejected).detail(format!(
                "typ {} names another kind of JWT, not an access token",
                cap(typ.unwrap_or_default())
            )));
        }
        None
    }

    /// `token_issuer_mismatch` when issuers are configured and `iss` is none of them.
    fn issuer_failure(&self, iss: Option<&Value>) -> Option<AuthFailure> {
        let text = iss.and_then(Value::as_str);
        if self.issuers.is_empty() || text.is_some_and(|i| self.issuers.iter().any(|e| e == i)) {
            return None;
        }
        let got = match (iss, text) {
            (_, Some(i)) => cap(i).to_string(),
            (None, _) => "(absent)".to_owned(),
            (Some(_), None) => "(not a string)".to_owned(),
        };
        let expected = self.issuers.join(" ");
        let mut f = AuthFailure::new(Reason::TokenIssuerMismatch)
            .detail(format!("iss {got}, expected {}", cap(&expected)));
        f.facts.expected_iss = Some(expected);
        Some(f)
    }

    /// Appends what the unverified claims would also have failed on, so that a forged or
    /// mis-keyed token that is also expired says both.
    fn with_unverified_notes(&self, f: AuthFailure, raw: &RawToken<'_>, now: i64) -> AuthFailure {
        match self.check_claims(raw, now) {
            Some(also) => {
                let mut f = match &also.facts.detail {
                    Some(extra) => {
                        let base = f.facts.detail.clone().unwrap_or_default();
                        f.detail(format!(
                            "{base}; the unverified claims also fail: {} ({extra})",
                            also.reason.code()
                        ))
                    }
                    None => f,
                };
                f.facts.expected_iss = also.facts.expected_iss;
                f.facts.expected_aud = also.facts.expected_aud;
                f
            }
            None => f,
        }
    }
}

/// Reads what a token says about itself without verifying anything: `None` when it is not
/// a JWS at all. The result has `verified == false`.
pub(crate) fn inspect(token: &str) -> Option<TokenFacts> {
    decode_structure(token).ok().map(|raw| raw.facts())
}

/// A token that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The verified claims.
    pub claims: Map<String, Value>,
    /// The token's header and claim facts, `verified == true`.
    pub facts: TokenFacts,
}

#[derive(Deserialize, Default)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    /// `crit`, present (even as `null`) or not; checked in [`decode_structure`].
    #[serde(default, deserialize_with = "present")]
    crit: Option<Value>,
}

/// A header as the rest of verification sees it: `crit` reduced to its names.
struct Header {
    alg: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    crit: Vec<String>,
}

/// Keeps a member that is present with the value `null` apart from an absent one.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

struct RawToken<'a> {
    header: Header,
    claims: Map<String, Value>,
    message: &'a str,
    signature: &'a str,
}

impl RawToken<'_> {
    fn facts(&self) -> TokenFacts {
        let c = &self.claims;
        let s = |name: &str| c.get(name).and_then(Value::as_str).map(cap);
        TokenFacts {
            alg: self.header.alg.as_deref().map(cap),
            kid: self.header.kid.as_deref().map(cap),
            typ: self.header.typ.as_deref().map(cap),
            iss: s("iss"),
            aud: c.get("aud").map(|a| cap(&audience_text(a))),
            sub: s("sub"),
            exp: c.get("exp").and_then(numeric_date),
            nbf: c.get("nbf").and_then(numeric_date),
            iat: c.get("iat").and_then(numeric_date),
            verified: false,
        }
    }
}

fn malformed(detail: &str) -> AuthFailure {
    AuthFailure::new(Reason::TokenMalformed).detail(detail)
}

/// Structure only: three base64url segments, a JSON object header, a JSON object payload.
fn decode_structure(token: &str) -> Result<RawToken<'_>, AuthFailure> {
    if token.len() > MAX_TOKEN {
        return Err(malformed("the token is longer than 16 KiB"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed(&format!(
            "a JWT has 3 dot-separated segments, this token has {}",
            token.split('.').count()
        )));
    };
    let rest = parts.count();
    if rest == 2 {
        return Err(malformed(
            "the token has 5 segments: an encrypted JWT (JWE), which is not accepted",
        ));
    }
    if rest > 0 {
        return Err(malformed(&format!(
            "a JWT has 3 dot-separated segments, this token has {}",
            rest + 3
        )));
    }
    let b64 = |seg: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(seg)
            .map_err(|_| malformed(&format!("the {what} is not base64url without padding")))
    };
    let header_bytes = b64(h, "header")?;
    let header: RawHeader = serde_json::from_slice(&header_bytes)
        .map_err(|_| malformed("the header is not a JSON object with string alg/kid/typ"))?;
    let crit = match header.crit {
        None => Vec::new(),
        Some(Value::Array(list)) if !list.is_empty() => list
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(malformed(
                    "the header's crit holds a value that is not a string",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(Value::Array(_)) => {
            return Err(malformed(
                "the header's crit is an empty array (RFC 7515 §4.1.11 forbids it)",
            ))
        }
        Some(_) => return Err(malformed("the header's crit is not an array of strings")),
    };
    let header = Header {
        alg: header.alg,
        kid: header.kid,
        typ: header.typ,
        crit,
    };
    let payload = b64(p, "payload")?;
    let claims = match serde_json::from_slice::<Value>(&payload) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(malformed("the payload is JSON but not an object")),
        Err(_) => return Err(malformed("the payload is not JSON")),
    };
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(malformed("the signature is not base64url"));
    }
    Ok(RawToken {
        header,
        claims,
        message: &token[..h.len() + 1 + p.len()],
        signature: s,
    })
}

/// `typ` compared case-insensitively, without an `application/` prefix (RFC 7515 §4.1.9).
fn normalize_type(t: &str) -> String {
    let t = t.trim();
    let t = t
        .get(..12)
        .filter(|p| p.eq_ignore_ascii_case("application/"))
        .map_or(t, |_| &t[12..]);
    t.to_ascii_lowercase()
}

/// `token_claim_invalid` for a registered claim of the wrong JSON type (RFC 7519 §4.1):
/// `iss` and `sub` are strings, `aud` a string or an array of strings, `exp`, `nbf` and
/// `iat` numbers. `null` counts as the wrong type; absence is fine here.
fn check_claim_types(claims: &Map<String, Value>) -> Option<AuthFailure> {
    fn audience(v: &Value) -> bool {
        match v {
            Value::String(_) => true,
            Value::Array(a) => a.iter().all(Value::is_string),
            _ => false,
        }
    }
    type Rule = (&'static str, fn(&Value) -> bool, &'static str);
    const NUMERIC_DATE: &str = "a NumericDate (a number)";
    let rules: [Rule; 6] = [
        ("iss", Value::is_string, "a string"),
        ("sub", Value::is_string, "a string"),
        ("aud", audience, "a string or an array of strings"),
        ("exp", Value::is_number, NUMERIC_DATE),
        ("nbf", Value::is_number, NUMERIC_DATE),
        ("iat", Value::is_number, NUMERIC_DATE),
    ];
    for (name, ok, what) in rules {
        if claims.get(name).is_some_and(|v| !ok(v)) {
            let mut f = AuthFailure::new(Reason::TokenClaimInvalid)
                .detail(format!("the {name} claim is not {what}"));
            f.facts.claim = Some(Cow::Borrowed(name));
            return Some(f);
        }
    }
    None
}

/// A JSON NumericDate as whole seconds (fractions truncated).
fn numeric_date(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

fn audience_text(aud: &Value) -> String {
    match aud {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

fn expired_text(exp: i64, now: i64) -> String {
    format!(
        "the token expired at {} ({} ago)",
        rfc3339(exp),
        human_duration(now.saturating_sub(exp).max(0) as u64)
    )
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
