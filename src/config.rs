//! What a layer is configured with, shared by its services and their futures.

use crate::authn::verify::AccountHook;
use crate::authn::AuthScheme;
use crate::flood::FloodControl;
use crate::problem::RenderConfig;
use crate::reason::DetailMode;
use std::borrow::Cow;
use std::sync::Arc;

/// What the layer does when the wrapped service answers 401/403 wrongly by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum UpstreamMode {
    /// Correct the answer (and log the correction).
    #[default]
    Enforce,
    /// Only log what would be corrected.
    Observe,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub realm: Cow<'static, str>,
    pub detail: DetailMode,
    pub schemes: Vec<Arc<dyn AuthScheme>>,
    /// The Bearer authenticators, one per issuer (one scheme in `schemes`).
    pub bearer: Vec<crate::authn::jwt::JwtAuthenticator>,
    /// The verified-token cache's settings (`None`: no cache), and the cache of the
    /// Bearer scheme built with them.
    pub token_cache: Option<crate::authn::token_cache::TokenCache>,
    pub bearer_cache: Option<Arc<crate::authn::token_cache::Cache>>,
    /// Opaque tokens on the Bearer scheme: the introspector (RFC 7662).
    #[cfg(feature = "http-client")]
    pub introspection: Option<crate::authn::introspection::Introspector>,
    /// The DPoP scheme's configuration (one scheme in `schemes`).
    pub dpop: Option<crate::authn::dpop::Dpop>,
    /// The RFC 9728 metadata document: served at its path, named in challenges.
    pub resource: Option<crate::resource::Served>,
    /// Scopes every request through the layer needs, named in every 401 challenge.
    pub required_scope: Option<crate::scope::RequireScope>,
    pub account: Option<AccountHook>,
    /// The revocation list every verified token and session is checked against.
    pub revocation: Option<Arc<dyn crate::store::RevocationList>>,
    /// A revocation list that cannot be read lets the request through (logged at ERROR)
    /// instead of 503 `revocation_unavailable`.
    pub revocation_fails_open: bool,
    pub mode: UpstreamMode,
    /// Enforce mode turns the wrapped service's 403 to a request without credentials into
    /// a 401 (opted in: such a 403 can be a legal denial by IP or policy).
    pub correct_anonymous_forbidden: bool,
    pub flood: Arc<FloodControl>,
    /// The peers whose forwarding headers are believed.
    pub trusted_proxies: crate::proxy::TrustedProxies,
    /// Where client certificates come from (`None`: a certificate-bound token is
    /// `token_binding_unverifiable`).
    pub certificates: Option<crate::certificate::CertificateSources>,
    pub on_failure: Option<crate::hooks::Hook<dyn crate::hooks::OnFailure>>,
    pub on_success: Option<crate::hooks::Hook<dyn crate::hooks::OnSuccess>>,
    /// Record the principal's id as `enduser.id` on the request span (personal data: off
    /// unless the application turns it on).
    pub enduser_id: bool,
    /// A request without any credential passes anonymously.
    pub optional: bool,
    /// Which ambiguous request paths are refused before anything else.
    pub path_guard: crate::path_guard::PathGuard,
    /// Every decision is recorded (`audit`).
    pub audit: Option<crate::audit::Audit>,
    /// Failed authentication is throttled (429 `throttled`).
    pub throttle: Option<crate::throttle::Throttle>,
    /// Report-only: a request the layer would refuse goes on anonymously, logged and
    /// counted with `enforced=false`.
    pub report_only: bool,
    /// The session scheme's browser settings: login redirects, the origin check.
    pub session_pages: Option<crate::authn::session::browser::SessionPages>,
    /// Set once the wrapped service was seen adding CORS headers (logged once).
    pub cors_inside: Arc<std::sync::atomic::AtomicBool>,
    /// The challenges that depend on nothing in the request (`credentials_missing`'s,
    /// `invalid_token`'s and the like): the same for every such answer of this
    /// configuration, so built once.
    pub plain_challenges: crate::problem::Challenges,
}

impl Config {
    pub(crate) fn render(&self) -> RenderConfig<'_> {
        RenderConfig {
            realm: &self.realm,
            detail: self.detail,
            schemes: &self.schemes,
            plain: Some(&self.plain_challenges),
            resource_metadata: self.resource.as_ref().map(|r| &*r.url),
            scope: self.required_scope.as_ref().map(|s| s.text()),
        }
    }
}
