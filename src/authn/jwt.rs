//! Bearer JWT verification.
//!
//! The order of checks is part of the contract: cheap structural checks first (structure,
//! `alg`, `crit`), then the key and the signature, and only then type, presence, claim
//! types, time, issuer and audience — so a forged token is reported as forged, never as
//! merely expired. The claims of a rejected token are still read (marked unverified) so
//! the log can say "expired 3h ago" or "iss X, expected Y" even when the signature failed
//! first.

use crate::failure::{AuthFailure, TokenFacts};
use crate::jws::{self, audience_text, numeric_date, Jws};
use crate::keys::{install_crypto_provider, StaticKey};
use crate::reason::Reason;
use crate::sanitize::cap;
use crate::time::{ago, now, rfc3339};
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

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
#[must_use]
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
        let jws = jws::decode(token)?;
        let mut facts = jws.facts();
        let checked = self
            .check_header(&jws, now)
            .and_then(|alg| self.check_signature(&jws, alg, now));
        if let Err(f) = checked {
            return Err(f.token(facts));
        }
        facts.verified = true;
        // From here on the claims are the issuer's word.
        if let Some(f) = self.check_claims(&jws, now) {
            return Err(f.token(facts));
        }
        Ok(Verified {
            claims: jws.claims,
            facts,
        })
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

    /// The keys for this `alg`, `kid` and claimed issuer, and whether one verifies.
    fn check_signature(&self, jws: &Jws<'_>, alg: Algorithm, now: i64) -> Result<(), AuthFailure> {
        let kid = jws.header.kid.as_deref();
        let iss = jws.claims.get("iss").and_then(Value::as_str);
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| k.serves(alg, kid) && k.belongs_to(iss))
            .peekable();
        if candidates.peek().is_none() {
            return Err(self.no_key(jws, alg, now));
        }
        if candidates.any(|k| k.verifies(jws.message, jws.signature)) {
            return Ok(());
        }
        let f = AuthFailure::new(Reason::TokenSignatureInvalid)
            .detail(format!("the {alg:?} signature does not verify"));
        Err(self.with_unverified_notes(f, jws, now))
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
                self.issuer_failure(iss)
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
            .filter(|_| self.issuers.len() > 1);
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
            .or_else(|| self.check_presence(claims))
            .or_else(|| check_claim_types(claims))
            .or_else(|| self.check_time(claims, now))
            .or_else(|| self.issuer_failure(claims.get("iss")))
            .or_else(|| self.check_audience(claims.get("aud")))
    }

    /// `token_type_rejected` for a `typ` that is not accepted: another kind of JWT always
    /// (RFC 8725 §3.11: explicit typing exists to stop cross-JWT confusion), and anything
    /// outside the configured types when some are configured.
    fn check_type(&self, typ: Option<&str>) -> Option<AuthFailure> {
        let got = typ.map(type_name);
        if !self.types.is_empty() {
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
            (!self.issuers.is_empty()).then_some("iss"),
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
        let (name, t) = ["nbf", "iat"].into_iter().find_map(|name| {
            let t = claims.get(name).and_then(numeric_date)?;
            (t > now.saturating_add(self.leeway)).then_some((name, t))
        })?;
        Some(
            AuthFailure::new(Reason::TokenNotYetValid)
                .detail(format!(
                    "{name} is {} ({} in the future, leeway {}s): the clocks of issuer and server disagree",
                    rfc3339(t),
                    ago(now, t),
                    self.leeway
                ))
                .claim(name),
        )
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
        Some(
            AuthFailure::new(Reason::TokenIssuerMismatch)
                .detail(format!("iss {got}, expected {}", cap(&expected)))
                .expected_iss(Some(expected)),
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

/// A token that passed every check.
#[derive(Debug, Clone)]
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
    let (name, _, what) = rules
        .into_iter()
        .find(|(name, ok, _)| claims.get(*name).is_some_and(|v| !ok(v)))?;
    Some(
        AuthFailure::new(Reason::TokenClaimInvalid)
            .detail(format!("the {name} claim is not {what}"))
            .claim(name),
    )
}
