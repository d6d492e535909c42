//! Identity-aware proxies: a signed assertion (a JWT) that the proxy puts in a header of
//! its own on every request it let through, verified like a token with the proxy's keys.
//!
//! [`IdentityAwareProxy`] has a preset per proxy — where its header is, who issues the
//! assertion, where the keys are, which algorithm, what `aud` is — and turns into the
//! layer's scheme for that header. A request without the header, or with the assertion
//! in `Authorization`, did not come through the proxy the way it should: it is refused
//! and the log says so.

use super::jwt::{JwtAuthenticator, Step};
use super::verify::AuthFuture;
use super::{header_location, AuthScheme, Decision, Pending, Place, Principal};
use crate::challenge::Challenge;
use crate::config_error::ConfigError;
use crate::evidence::Evidence;
use crate::failure::AuthFailure;
use crate::jws::{self, Jws};
use crate::keys::{Algorithm, KeySource};
use crate::reason::{DetailMode, Reason};
use crate::sanitize::{cap, fingerprint};
use crate::scheme::Scheme;
use crate::time::now;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::HeaderName;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Which proxy a preset is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proxy {
    CloudflareAccess,
    GoogleIap,
    AwsAlb,
}

impl Proxy {
    fn name(self) -> &'static str {
        match self {
            Proxy::CloudflareAccess => "Cloudflare Access",
            Proxy::GoogleIap => "Google IAP",
            Proxy::AwsAlb => "the AWS load balancer",
        }
    }
}

/// An identity-aware proxy in front of the service, whose signed assertion authenticates
/// requests: Cloudflare Access, Google Cloud IAP or an AWS Application Load Balancer. Give
/// it to [`AuthDiagnostics::identity_aware_proxy`](crate::AuthDiagnostics::identity_aware_proxy).
///
/// Each preset sets the header, the issuer, the key URL, the algorithm and the audience
/// from the provider's documentation (cited on each); the assertion is then verified like
/// any token ([`JwtAuthenticator`]'s rules: the algorithm pinned, `exp` required with 60 s
/// leeway, the issuer and audience exact), its claims handed to handlers as
/// [`Claims`](crate::jwt::Claims) and its subject as the [`Principal`](crate::Principal).
///
/// A wrong audience is `token_audience_mismatch`, a wrong issuer `token_issuer_mismatch`,
/// an ALB assertion signed for another load balancer `token_issuer_mismatch` naming
/// `signer`, each with the expected and the received value in the log and a hint where
/// to find the right one. An assertion sent in `Authorization` is
/// `credentials_wrong_location`; no assertion at all, `credentials_missing`.
///
/// ```
/// use auth_diagnostics::jwt::IdentityAwareProxy;
/// use auth_diagnostics::AuthDiagnostics;
///
/// let access = IdentityAwareProxy::cloudflare_access(
///     "acme",
///     "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2",
/// );
/// let layer = AuthDiagnostics::new().identity_aware_proxy(access);
/// # let _ = layer;
/// ```
#[derive(Clone)]
#[must_use]
pub struct IdentityAwareProxy {
    proxy: Proxy,
    header: HeaderName,
    header_display: &'static str,
    issuer: String,
    audiences: Vec<String>,
    keys_url: String,
    algorithm: Algorithm,
    signer: Option<String>,
    leeway: Option<Duration>,
    allow_http: bool,
}

impl fmt::Debug for IdentityAwareProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityAwareProxy")
            .field("proxy", &self.proxy.name())
            .field("header", &self.header_display)
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("keys_url", &crate::keys::shown_source(&self.keys_url))
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl IdentityAwareProxy {
    /// Cloudflare Access: the assertion in `Cf-Access-Jwt-Assertion`, RS256, issued by
    /// `https://<team>.cloudflareaccess.com` with its keys at
    /// `https://<team>.cloudflareaccess.com/cdn-cgi/access/certs`, `aud` the application's
    /// AUD tag.
    ///
    /// `team` is the Zero Trust team name (`acme`) or domain (`acme.cloudflareaccess.com`,
    /// with or without `https://`): Zero Trust → Settings → Custom Pages → Team domain.
    /// `aud_tag` is the application's "Application Audience (AUD) Tag": Zero Trust →
    /// Access → Applications → the application → Overview. Source: Cloudflare's "Validate
    /// JWTs" (developers.cloudflare.com/cloudflare-one/identity/authorization-cookie/validating-json).
    /// The `CF_Authorization` cookie carries the same token but is not always sent;
    /// Cloudflare recommends the header, which is what is read.
    ///
    /// A service-token assertion has an empty `sub`; its identity is `common_name` (the
    /// service token's client ID), which becomes the principal's id.
    pub fn cloudflare_access(team: &str, aud_tag: impl Into<String>) -> Self {
        let team = team
            .trim()
            .trim_start_matches("https://")
            .trim_end_matches('/');
        let domain = match team.contains('.') {
            true => team.to_owned(),
            false => format!("{team}.cloudflareaccess.com"),
        };
        Self {
            proxy: Proxy::CloudflareAccess,
            header: HeaderName::from_static("cf-access-jwt-assertion"),
            header_display: "Cf-Access-Jwt-Assertion",
            issuer: format!("https://{domain}"),
            audiences: vec![aud_tag.into()],
            keys_url: format!("https://{domain}/cdn-cgi/access/certs"),
            algorithm: Algorithm::RS256,
            signer: None,
            leeway: None,
            allow_http: false,
        }
    }

    /// Google Cloud Identity-Aware Proxy: the assertion in `x-goog-iap-jwt-assertion`,
    /// ES256, issued by `https://cloud.google.com/iap` with its keys at
    /// `https://www.gstatic.com/iap/verify/public_key-jwk`.
    ///
    /// `audience` is `/projects/PROJECT_NUMBER/global/backendServices/SERVICE_ID` behind a
    /// load balancer (the backend service's numeric ID: `gcloud compute backend-services
    /// describe NAME --global --format='value(id)'`), or `/projects/PROJECT_NUMBER/apps/PROJECT_ID`
    /// on App Engine. Source: Google's "Securing your app with signed headers"
    /// (cloud.google.com/iap/docs/signed-headers-howto). The unsigned
    /// `x-goog-authenticated-user-*` headers are not read: anyone who reaches the service
    /// around the proxy can set them.
    pub fn google_iap(audience: impl Into<String>) -> Self {
        Self {
            proxy: Proxy::GoogleIap,
            header: HeaderName::from_static("x-goog-iap-jwt-assertion"),
            header_display: "x-goog-iap-jwt-assertion",
            issuer: "https://cloud.google.com/iap".to_owned(),
            audiences: vec![audience.into()],
            keys_url: "https://www.gstatic.com/iap/verify/public_key-jwk".to_owned(),
            algorithm: Algorithm::ES256,
            signer: None,
            leeway: None,
            allow_http: false,
        }
    }

    /// An AWS Application Load Balancer with an `authenticate-oidc` or
    /// `authenticate-cognito` action: the user claims in `x-amzn-oidc-data`, ES256, the
    /// key of each `kid` a PEM file at
    /// `https://public-keys.auth.elb.<region>.amazonaws.com/<kid>`, the header's `signer`
    /// the load balancer's ARN, `iss` the identity provider's issuer.
    ///
    /// Source: AWS's "Authenticate users using an Application Load Balancer", section
    /// "User claims encoding and signature verification"
    /// (docs.aws.amazon.com/elasticloadbalancing/latest/application/listener-authenticate-users.html).
    /// The assertion has no `aud`: `signer` is what binds it to this load balancer, and
    /// is checked before any key is fetched (a token naming another signer costs nothing)
    /// and is covered by the signature. ALB encodes segments with base64 padding (`=`),
    /// which standard JWT libraries refuse: they are read without it, and the signature
    /// is checked over the exact text received. The header's own `exp` and `iss` (signed
    /// with it) apply where the user claims leave them out. In AWS GovCloud (US) the keys are
    /// elsewhere: set [`keys_url`](Self::keys_url) to the bucket the documentation names.
    pub fn aws_alb(
        region: &str,
        load_balancer_arn: impl Into<String>,
        idp_issuer: impl Into<String>,
    ) -> Self {
        Self {
            proxy: Proxy::AwsAlb,
            header: HeaderName::from_static("x-amzn-oidc-data"),
            header_display: "x-amzn-oidc-data",
            issuer: idp_issuer.into(),
            audiences: Vec::new(),
            keys_url: format!("https://public-keys.auth.elb.{region}.amazonaws.com/"),
            algorithm: Algorithm::ES256,
            signer: Some(load_balancer_arn.into()),
            leeway: None,
            allow_http: false,
        }
    }

    /// Fetches the keys from `url` instead of the provider's (a mirror, a test server):
    /// the JWK set's URL, or for ALB the base URL each `kid` is appended to.
    pub fn keys_url(mut self, url: impl Into<String>) -> Self {
        self.keys_url = url.into();
        self
    }

    /// Also accepts `audience` (another application's AUD tag, another backend service).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Clock skew tolerated for `exp`, `nbf` and `iat` (default 60 s, at most
    /// [`JwtAuthenticator::MAX_LEEWAY`]).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = Some(leeway);
        self
    }

    /// Allows a plain `http` key URL to any host ([`KeySource::allow_http`]).
    pub fn allow_http(mut self) -> Self {
        self.allow_http = true;
        self
    }

    /// The layer's scheme for this proxy's header.
    pub(crate) fn into_scheme(self) -> AssertionScheme {
        let source = match self.proxy {
            Proxy::AwsAlb => KeySource::pem_per_kid(self.keys_url.clone()),
            _ => KeySource::jwks(self.keys_url.clone()),
        };
        let source = match self.allow_http {
            true => source.allow_http(),
            false => source,
        };
        let mut jwt = JwtAuthenticator::from_source(source)
            .algorithms([self.algorithm])
            .issuer(self.issuer.clone());
        jwt = match self.audiences.is_empty() {
            true => jwt.accept_any_audience(),
            false => self
                .audiences
                .iter()
                .fold(jwt, |j, a| j.audience(a.clone())),
        };
        if let Some(leeway) = self.leeway {
            jwt = jwt.leeway(leeway);
        }
        AssertionScheme(Arc::new(Assertion { iap: self, jwt }))
    }
}

/// The scheme of a configured proxy's header.
#[derive(Debug, Clone)]
pub(crate) struct AssertionScheme(Arc<Assertion>);

#[derive(Debug)]
struct Assertion {
    iap: IdentityAwareProxy,
    jwt: JwtAuthenticator,
}

impl AssertionScheme {
    /// Every mistake in its configuration (the key URL, the leeway).
    pub(crate) fn config_errors(&self) -> Vec<ConfigError> {
        self.0.jwt.config_errors()
    }

    /// Starts fetching its keys in the background.
    pub(crate) fn start(&self) {
        self.0.jwt.start();
    }
}

/// A decision now, or once the keys are fetched.
enum Check {
    Done(Result<Principal, AuthFailure>),
    Later(AuthFuture),
}

impl Assertion {
    fn decode<'t>(&self, t: &'t str) -> Result<Jws<'t>, AuthFailure> {
        match self.iap.proxy {
            Proxy::AwsAlb => jws::decode_padded(t),
            _ => jws::decode(t),
        }
    }

    /// Verifies assertion `t`, waiting for keys only when `may_wait`.
    fn check(self: &Arc<Self>, t: &str, may_wait: bool) -> Check {
        let mut jws = match self.decode(t) {
            Ok(jws) => jws,
            Err(f) => return Check::Done(Err(f)),
        };
        if self.iap.proxy == Proxy::AwsAlb {
            let header = raw_header(t);
            if let Some(f) = self.wrong_signer(header.as_ref()) {
                return Check::Done(Err(f.token(jws.facts())));
            }
            // ALB's header carries `exp` and `iss` too, under the same signature: where the
            // user claims leave them out, the header's apply.
            for name in ["exp", "iss"] {
                if let Some(v) = header.as_ref().and_then(|h| h.get(name)) {
                    jws.claims.entry(name).or_insert_with(|| v.clone());
                }
            }
        }
        if self.iap.proxy == Proxy::CloudflareAccess
            && jws.claims.get("sub").and_then(Value::as_str) == Some("")
        {
            // A service token's assertion: no user, its identity is `common_name`. The
            // signature covers the received text, not this map.
            jws.claims.remove("sub");
        }
        let kid = jws.header.kid.clone();
        match self.jwt.step(jws, now(), may_wait) {
            Step::Done(result) => Check::Done(
                result
                    .map(|v| principal(v.claims))
                    .map_err(|f| self.explained(f)),
            ),
            Step::Wait(sources) => {
                let this = self.clone();
                let t = t.to_owned();
                Check::Later(Box::pin(async move {
                    let limit = sources.iter().map(KeySource::wait_limit).max();
                    let deadline = tokio::time::Instant::now() + limit.unwrap_or_default();
                    for source in &sources {
                        if let Some(kid) = &kid {
                            source.want(kid);
                        }
                        let _ = tokio::time::timeout_at(deadline, source.refresh_for_miss()).await;
                    }
                    match this.check(&t, false) {
                        Check::Done(result) => result,
                        Check::Later(_) => unreachable!("a check that may not wait never waits"),
                    }
                }))
            }
        }
    }

    /// ALB: the header's `signer` is not the configured load balancer's ARN. Read before
    /// any key is fetched; the signature then covers it.
    fn wrong_signer(&self, header: Option<&Map<String, Value>>) -> Option<AuthFailure> {
        let expected = self.iap.signer.as_deref()?;
        let f = match header.and_then(|h| h.get("signer")) {
            Some(Value::String(s)) if s == expected => return None,
            Some(Value::String(s)) => AuthFailure::new(Reason::TokenIssuerMismatch)
                .detail(format!(
                    "signer {}, expected {}: the assertion was signed for another load \
                     balancer; no key was fetched",
                    cap(s),
                    cap(expected)
                ))
                .hint(
                    "The signer in the x-amzn-oidc-data header is the ARN of the load \
                     balancer that authenticated the user: configure this load balancer's ARN \
                     (EC2 console → Load Balancers → the load balancer → ARN), or find why \
                     another one forwards to this service.",
                ),
            Some(_) => AuthFailure::new(Reason::TokenClaimInvalid)
                .detail("the assertion header's signer is not a string"),
            None => AuthFailure::new(Reason::TokenClaimMissing).detail(
                "the assertion header has no signer: it was not made by an AWS load balancer",
            ),
        };
        Some(f.claim("signer"))
    }

    /// A failure with where to find the right audience or issuer for this proxy.
    fn explained(&self, f: AuthFailure) -> AuthFailure {
        let hint = match (f.reason(), self.iap.proxy) {
            (Reason::TokenAudienceMismatch, Proxy::CloudflareAccess) => {
                "The assertion is for another Access application: configure this application's \
                 Application Audience (AUD) Tag (Zero Trust → Access → Applications → the \
                 application → Overview)."
            }
            (Reason::TokenAudienceMismatch, Proxy::GoogleIap) => {
                "The assertion is for another backend service or project: the audience is \
                 /projects/PROJECT_NUMBER/global/backendServices/SERVICE_ID (the numeric ID: \
                 gcloud compute backend-services describe NAME --global --format='value(id)'), \
                 or /projects/PROJECT_NUMBER/apps/PROJECT_ID on App Engine."
            }
            (Reason::TokenIssuerMismatch, Proxy::CloudflareAccess) => {
                "The assertion was issued by another Cloudflare team: the issuer is \
                 https://<team>.cloudflareaccess.com with the team domain of Zero Trust → \
                 Settings → Custom Pages."
            }
            (Reason::TokenIssuerMismatch, Proxy::AwsAlb) => {
                "ALB's iss is the issuer of the identity provider the listener's authenticate \
                 action names: configure that issuer exactly."
            }
            _ => return f,
        };
        if f.facts().hint().is_some() {
            return f;
        }
        f.hint(hint)
    }
}

/// The JOSE header of a (possibly padded) compact JWS, as JSON: for the members the
/// verification does not read (ALB's `signer`, `exp`, `iss`).
fn raw_header(t: &str) -> Option<Map<String, Value>> {
    let header = t.split('.').next()?.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD.decode(header).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The assertion's principal: its subject, or for a Cloudflare service token its
/// `common_name`.
fn principal(claims: Map<String, Value>) -> Principal {
    let common_name = match claims.contains_key("sub") {
        true => None,
        false => claims
            .get("common_name")
            .and_then(Value::as_str)
            .map(str::to_owned),
    };
    let p = Principal::from_jwt(claims).with_scheme(Scheme::ProxyAssertion);
    match common_name {
        Some(id) => p.with_id(Some(id)),
        None => p,
    }
}

impl AuthScheme for AssertionScheme {
    fn kind(&self) -> Scheme {
        Scheme::ProxyAssertion
    }

    fn describe(&self) -> Cow<'static, str> {
        Cow::Owned(format!(
            "{} header ({})",
            self.0.iap.header_display,
            self.0.iap.proxy.name()
        ))
    }

    fn how_to_send(&self) -> std::borrow::Cow<'static, str> {
        format!(
            "`{}: <assertion>`, set by {} on the requests it lets through",
            self.0.iap.header_display,
            self.0.iap.proxy.name()
        )
        .into()
    }

    fn private(&self) -> bool {
        true
    }

    fn conflict(&self, ev: &Evidence<'_>) -> Option<AuthFailure> {
        let fields = ev.headers().get_all(&self.0.iap.header);
        let count = fields.iter().count();
        let first = fields.iter().next()?;
        (count > 1).then(|| {
            AuthFailure::new(Reason::CredentialsConflict)
                .location(header_location(&self.0.iap.header))
                .fingerprint(fingerprint(first.as_bytes()))
                .received(Some(Scheme::ProxyAssertion.as_str()))
                .detail(format!(
                    "the request has {count} {} header fields: the proxy sets one, so another \
                     came from the client",
                    self.0.iap.header_display
                ))
                .hint(format!(
                    "Only {} may set {}: make the path to this service go through it, and \
                     nothing else.",
                    self.0.iap.proxy.name(),
                    self.0.iap.header_display
                ))
        })
    }

    fn find(&self, ev: &Evidence<'_>, place: Place) -> Option<Decision> {
        if place != Place::Header {
            return None;
        }
        let raw = ev.headers().get(&self.0.iap.header)?;
        let location = header_location(&self.0.iap.header);
        let refuse = |f: AuthFailure| {
            Decision::Rejected(
                f.location(location.clone())
                    .fingerprint(fingerprint(raw.as_bytes()))
                    .received(Some(Scheme::ProxyAssertion.as_str())),
            )
        };
        let Ok(t) = raw.to_str() else {
            return Some(refuse(
                AuthFailure::new(Reason::TokenMalformed)
                    .detail("the assertion header is not visible ASCII"),
            ));
        };
        Some(match self.0.check(t.trim(), true) {
            Check::Done(Ok(principal)) => Decision::Authenticated(principal),
            Check::Done(Err(f)) => refuse(f),
            Check::Later(fut) => {
                Decision::Pending(Pending::new(fut, self, location, raw.as_bytes()))
            }
        })
    }

    fn reads_header(&self, name: &str) -> bool {
        self.0.iap.header == name
    }

    fn misplaced(&self, word: &str) -> Option<AuthFailure> {
        word.eq_ignore_ascii_case("bearer").then(|| {
            AuthFailure::new(Reason::CredentialsWrongLocation)
                .detail(format!(
                    "a token was sent in Authorization (Bearer), but this resource reads {}'s \
                     assertion from the {} header",
                    self.0.iap.proxy.name(),
                    self.0.iap.header_display
                ))
                .hint(format!(
                    "Requests must come through {}, which sets {}; a token in Authorization \
                     is not read.",
                    self.0.iap.proxy.name(),
                    self.0.iap.header_display
                ))
        })
    }

    fn challenge(&self, c: Challenge, _: &AuthFailure, _: DetailMode) -> Challenge {
        c.quoted_param("header", self.0.iap.header_display)
    }
}
