//! Configuration mistakes: what [`AuthDiagnostics::try_build`](crate::AuthDiagnostics::try_build)
//! reports, one [`ConfigError`] per mistake, all of them at once in [`ConfigErrors`].
//!
//! Every check runs once, when the layer is built; none runs per request. Each message
//! says what is wrong and what to call instead.

use crate::sanitize::cap;
use jsonwebtoken::Algorithm;
use std::fmt;
use std::time::Duration;

/// One configuration mistake of a layer or of an authenticator given to it.
///
/// The variant names the mistake and carries what was configured; [`Display`](fmt::Display)
/// says what is wrong and what to call instead.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A `JwtAuthenticator` with neither `.audience(..)` nor `.accept_any_audience()`.
    NoAudience,
    /// A `JwtAuthenticator` with both `.audience(..)` and `.accept_any_audience()`.
    AudienceAndAnyAudience,
    /// A `JwtAuthenticator` with neither `.issuer(..)` nor `.accept_any_issuer()`.
    NoIssuer,
    /// A `JwtAuthenticator` with both `.issuer(..)` and `.accept_any_issuer()`.
    IssuerAndAnyIssuer,
    /// `JwtAuthenticator::leeway` above `JwtAuthenticator::MAX_LEEWAY`.
    LeewayTooLong {
        /// The leeway asked for.
        leeway: Duration,
        /// The most allowed.
        max: Duration,
    },
    /// More static keys without a `kid` verify one algorithm than one token may be
    /// checked against.
    TooManyUnnamedKeys {
        /// The algorithm.
        algorithm: Algorithm,
        /// The most unnamed keys per algorithm.
        max: usize,
    },
    /// A static key bound to an issuer the authenticator does not accept.
    KeyIssuerNotAccepted {
        /// The key's issuer.
        issuer: String,
    },
    /// Several issuers, and a static key that names none of them.
    KeyWithoutIssuer {
        /// How many issuers the authenticator accepts.
        issuers: usize,
    },
    /// A `KeySource` whose URL cannot be used (not `https`, not a URL, no HTTP client).
    KeySourceUrl {
        /// Why, with any password in the URL masked.
        why: String,
    },
    /// `KeySource::refresh_bounds` with a zero `min` or a `min` above `max`.
    RefreshBounds {
        /// The lower bound given.
        min: Duration,
        /// The upper bound given.
        max: Duration,
    },
    /// `KeySource::shared_store` with a key shorter than 16 bytes.
    SharedStoreKeyTooShort {
        /// The key's length in bytes.
        len: usize,
    },
    /// A `JwtAuthenticator` with a `KeySource` and no issuer.
    KeySourceWithoutIssuer,
    /// Several issuers, and a `KeySource` that names none of them.
    KeySourceIssuerUnbound {
        /// How many issuers the authenticator accepts.
        issuers: usize,
    },
    /// A `KeySource` bound to an issuer the authenticator does not accept.
    KeySourceIssuerNotAccepted {
        /// The source's issuer (any password masked).
        issuer: String,
    },
    /// Several Bearer authenticators on one layer, one of which names no issuer.
    BearerWithoutIssuer,
    /// An issuer accepted by two Bearer authenticators of one layer.
    IssuerOfTwoAuthenticators {
        /// The issuer (any password masked).
        issuer: String,
    },
    /// A `JwtAuthenticator::issuer_template` that cannot be used: not one placeholder,
    /// no tenant claim, or neither `.tenants(..)` nor `.any_tenant()` (or both).
    IssuerTemplate {
        /// The template as configured.
        template: String,
        /// What is wrong and what to call instead.
        why: String,
    },
    /// A `Dpop` that accepts no proof algorithm.
    DpopNoAlgorithm,
    /// A `Dpop` that accepts a symmetric (HMAC) proof algorithm.
    DpopSymmetricAlgorithm(Algorithm),
    /// `Dpop::proof_max_age` or `Dpop::proof_leeway` above 5 minutes.
    DpopWindowTooLong {
        /// The proof age given.
        max_age: Duration,
        /// The clock skew given.
        leeway: Duration,
    },
    /// A `Dpop` with neither `public_origin` nor `insecure_origin_from_host`.
    DpopNoOrigin,
    /// A `Dpop::public_origin` that is no `scheme://host[:port][/path prefix]`.
    InvalidOrigin {
        /// The origin as given.
        origin: String,
        /// Which setting it was given to.
        why: OriginUse,
    },
    /// A session scheme's `login_url` that is neither a path of this site nor an absolute
    /// `http(s)` URL.
    InvalidLoginUrl {
        /// The URL as given.
        url: String,
    },
    /// A builder method of the layer that may be called once, called again.
    CalledTwice {
        /// The method, as `dpop` or `session`.
        method: &'static str,
    },
    /// `ApiKeyAuthenticator::header` with a string that is no header name.
    InvalidHeaderName {
        /// The name as given.
        name: String,
    },
    /// `AuthDiagnostics::fingerprint_key` with a key shorter than 16 bytes.
    FingerprintKeyTooShort {
        /// The key's length in bytes.
        len: usize,
    },
    /// `Throttle::shared` with a key shorter than 16 bytes.
    ThrottleKeyTooShort {
        /// The key's length in bytes.
        len: usize,
    },
    /// `AuthDiagnostics::fingerprint_key` with another key than one set before in this
    /// process.
    FingerprintKeyDiffers,
    /// `AuthDiagnostics::revocation_fails_open` without a revocation list
    /// (`AuthDiagnostics::revocation`): nothing is checked, so nothing can fail open.
    RevocationFailsOpenWithoutList,
    /// A `ResourceMetadata` document that is misconfigured.
    ResourceMetadata {
        /// The resource identifier.
        resource: String,
        /// What is wrong.
        why: ResourceMistake,
    },
    /// An `Introspector` that is misconfigured.
    Introspection(IntrospectionMistake),
}

/// Which setting an origin in [`ConfigError::InvalidOrigin`] was given to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginUse {
    /// `Dpop::public_origin`: `scheme://host[:port][/path prefix]`.
    DpopPublicOrigin,
    /// `SessionAuthenticator::trusted_origins`: `http(s)://host[:port]`.
    TrustedOrigin,
}

/// What is wrong with a `ResourceMetadata` document ([`ConfigError::ResourceMetadata`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResourceMistake {
    /// The identifier is not an absolute `https` URL (`http` on loopback or with
    /// `allow_http`).
    IdentifierUrl(String),
    /// The identifier has a query or a fragment.
    IdentifierQueryOrFragment,
    /// A `resource` field that differs from the identifier.
    ResourceFieldDiffers(String),
    /// No authorization server.
    NoAuthorizationServer,
    /// An authorization server whose URL is not `https`.
    AuthorizationServerUrl(String),
    /// A bearer method the layer does not read (it reads the `Authorization` header).
    UnreadBearerMethod(String),
    /// `none` among the signing algorithms.
    SigningAlgNone,
    /// A `jwks_uri` that is not `https`.
    JwksUriNotHttps,
    /// A DPoP member that is not of its type, or an algorithm DPoP proofs cannot use
    /// (`none`, a symmetric one) among `dpop_signing_alg_values_supported`.
    DpopMember(String),
}

/// What is wrong with an `Introspector` ([`ConfigError::Introspection`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntrospectionMistake {
    /// Neither `.audience(..)` nor `.accept_any_audience()`.
    NoAudience,
    /// Both `.audience(..)` and `.accept_any_audience()`.
    AudienceAndAnyAudience,
    /// Neither `.client_secret_basic(..)`, `.client_secret_post(..)` nor
    /// `.without_client_authentication()`.
    NoClientAuthentication,
    /// An endpoint URL that cannot be used (not `https`, not a URL); any password masked.
    EndpointUrl(String),
    /// A `private_key_jwt` key that cannot sign: why.
    ClientKey(String),
    /// A `shared_cache` key shorter than 16 bytes: its length.
    SharedCacheKeyTooShort(usize),
}

impl fmt::Display for IntrospectionMistake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAudience => f.write_str(
                "Introspector has no audience: tokens issued for any other service would be \
                 accepted. Call .audience(\"<this API>\"), or .accept_any_audience() to opt \
                 out explicitly",
            ),
            Self::AudienceAndAnyAudience => f.write_str(
                "Introspector has both .audience(..) and .accept_any_audience(): choose one",
            ),
            Self::NoClientAuthentication => f.write_str(
                "Introspector has no client credentials (RFC 7662 §2.1): call \
                 .client_secret_basic(id, secret) or .client_secret_post(id, secret) (or \
                 .without_client_authentication() for an endpoint protected otherwise)",
            ),
            Self::EndpointUrl(why) | Self::ClientKey(why) => write!(f, "Introspector: {why}"),
            Self::SharedCacheKeyTooShort(len) => write!(
                f,
                "Introspector::shared_cache: the key has {len} bytes; use at least 16 random \
                 bytes, the same on every replica"
            ),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAudience
            | Self::AudienceAndAnyAudience
            | Self::NoIssuer
            | Self::IssuerAndAnyIssuer
            | Self::LeewayTooLong { .. }
            | Self::TooManyUnnamedKeys { .. }
            | Self::KeyIssuerNotAccepted { .. }
            | Self::KeyWithoutIssuer { .. }
            | Self::KeySourceUrl { .. }
            | Self::RefreshBounds { .. }
            | Self::SharedStoreKeyTooShort { .. }
            | Self::KeySourceWithoutIssuer
            | Self::KeySourceIssuerUnbound { .. }
            | Self::KeySourceIssuerNotAccepted { .. }
            | Self::BearerWithoutIssuer
            | Self::IssuerOfTwoAuthenticators { .. }
            | Self::IssuerTemplate { .. } => self.fmt_tokens(f),
            Self::DpopNoAlgorithm
            | Self::DpopSymmetricAlgorithm(..)
            | Self::DpopWindowTooLong { .. }
            | Self::DpopNoOrigin
            | Self::InvalidOrigin { .. } => self.fmt_dpop(f),
            Self::Introspection(why) => why.fmt(f),
            _ => self.fmt_layer(f),
        }
    }
}

impl ConfigError {
    /// The message of a mistake in JWT authenticators and their keys.
    fn fmt_tokens(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAudience => f.write_str(
                "JwtAuthenticator has no audience: tokens minted for any other service would \
                 be accepted (RFC 8725 §3.9). Call .audience(\"<this API>\"), or \
                 .accept_any_audience() to opt out explicitly",
            ),
            Self::AudienceAndAnyAudience => f.write_str(
                "JwtAuthenticator has both .audience(..) and .accept_any_audience(): choose one",
            ),
            Self::NoIssuer => f.write_str(
                "JwtAuthenticator has no issuer: tokens of any issuer would be accepted \
                 (RFC 8725 §3.8). Call .issuer(\"<the issuer's iss>\"), or \
                 .accept_any_issuer() to opt out explicitly",
            ),
            Self::IssuerAndAnyIssuer => f.write_str(
                "JwtAuthenticator has both .issuer(..) and .accept_any_issuer(): choose one",
            ),
            Self::LeewayTooLong { leeway, max } => write!(
                f,
                "JwtAuthenticator::leeway({leeway:?}) is more than the {}s allowed; clock \
                 skew is a matter of seconds",
                max.as_secs()
            ),
            Self::TooManyUnnamedKeys { algorithm, max } => write!(
                f,
                "more than {max} keys without a kid verify {algorithm:?}: give them kids \
                 (StaticKey::with_kid), so that a token costs one signature check"
            ),
            Self::KeyIssuerNotAccepted { issuer } => write!(
                f,
                "a key is bound to issuer {issuer:?}, which is not accepted: add .issuer({issuer:?})"
            ),
            Self::KeyWithoutIssuer { issuers } => write!(
                f,
                "JwtAuthenticator accepts {issuers} issuers, so every key must name the issuer \
                 it belongs to (StaticKey::with_issuer): otherwise one issuer's key verifies \
                 tokens that claim another (RFC 8725 §3.8)"
            ),
            Self::KeySourceUrl { why } => write!(f, "KeySource: {why}"),
            Self::RefreshBounds { min, max } => write!(
                f,
                "KeySource::refresh_bounds needs 0 < min <= max (given {min:?} and {max:?})"
            ),
            Self::SharedStoreKeyTooShort { len } => write!(
                f,
                "KeySource::shared_store needs a key of at least 16 bytes (given {len})"
            ),
            Self::KeySourceWithoutIssuer => f.write_str(
                "a JwtAuthenticator with a KeySource must name the issuer the keys belong \
                 to: call .issuer(\"<the issuer's iss>\") (RFC 8725 §3.8)",
            ),
            Self::KeySourceIssuerUnbound { issuers } => write!(
                f,
                "JwtAuthenticator accepts {issuers} issuers, so every KeySource must name the \
                 issuer it belongs to (KeySource::with_issuer or KeySource::discover)"
            ),
            Self::KeySourceIssuerNotAccepted { issuer } => write!(
                f,
                "a KeySource is bound to issuer {issuer:?}, which is not accepted: add \
                 .issuer(..) with it"
            ),
            Self::BearerWithoutIssuer => f.write_str(
                "with several Bearer authenticators on one layer, each must name its issuer \
                 (.issuer(..) or KeySource::discover), so a token goes to exactly one of them",
            ),
            Self::IssuerOfTwoAuthenticators { issuer } => write!(
                f,
                "issuer {issuer:?} is accepted by two Bearer authenticators; a token must go \
                 to exactly one: give each issuer to one .bearer(..)"
            ),
            Self::IssuerTemplate { template, why } => {
                write!(f, "issuer template {:?}: {why}", cap(template))
            }
            _ => unreachable!("Display::fmt sends each mistake to its group"),
        }
    }

    /// The message of a mistake in DPoP and its origins.
    fn fmt_dpop(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DpopNoAlgorithm => f.write_str(
                "Dpop accepts no proof algorithm: give Dpop::algorithms asymmetric ones \
                 (ES256, PS256, ...)",
            ),
            Self::DpopSymmetricAlgorithm(alg) => write!(
                f,
                "Dpop proofs are signed with a public key; {alg:?} is symmetric (RFC 9449 §4.2): \
                 give Dpop::algorithms asymmetric ones only"
            ),
            Self::DpopWindowTooLong { max_age, leeway } => write!(
                f,
                "Dpop proof age and leeway are at most 5 minutes (given {max_age:?} and \
                 {leeway:?}): lower Dpop::proof_max_age or Dpop::proof_leeway"
            ),
            Self::DpopNoOrigin => f.write_str(
                "Dpop needs the origin clients reach it at, to check each proof's htu: \
                 Dpop::public_origin(\"https://api.example\") (for local development only: \
                 Dpop::insecure_origin_from_host())",
            ),
            Self::InvalidOrigin { origin, why } => match why {
                OriginUse::DpopPublicOrigin => write!(
                    f,
                    "Dpop public origin {origin:?} is not scheme://host[:port][/path prefix]"
                ),
                OriginUse::TrustedOrigin => write!(
                    f,
                    "trusted origin {:?} must be http(s)://host[:port] (never \"null\", which \
                     any sandboxed page sends)",
                    cap(origin)
                ),
            },
            _ => unreachable!("Display::fmt sends each mistake to its group"),
        }
    }

    /// The message of a mistake in the layer's own settings.
    fn fmt_layer(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidLoginUrl { url } => write!(
                f,
                "login_url {:?} must be a path of this site (\"/login\") or an absolute http(s) \
                 URL, without spaces, control characters or a fragment",
                cap(url)
            ),
            Self::CalledTwice { method } => write!(
                f,
                ".{method}(..) is called once per layer: give everything to one call"
            ),
            Self::InvalidHeaderName { name } => write!(
                f,
                "ApiKeyAuthenticator::header({:?}): a valid header name is a token of RFC 9110 \
                 (letters, digits, '-' and the like)",
                cap(name)
            ),
            Self::FingerprintKeyTooShort { len } => write!(
                f,
                "AuthDiagnostics::fingerprint_key: the key must have at least 16 bytes \
                 (given {len})"
            ),
            Self::ThrottleKeyTooShort { len } => write!(
                f,
                "Throttle::shared: the key must have at least 16 bytes (given {len})"
            ),
            Self::FingerprintKeyDiffers => f.write_str(
                "AuthDiagnostics::fingerprint_key: a different key was set before in this \
                 process: fingerprints are the process's, so every layer must be given the \
                 same key",
            ),
            Self::RevocationFailsOpenWithoutList => f.write_str(
                "AuthDiagnostics::revocation_fails_open: no revocation list is configured; \
                 give one with .revocation(list)",
            ),
            Self::ResourceMetadata { resource, why } => {
                write!(f, "resource metadata for {resource:?}: {why}")
            }
            _ => unreachable!("Display::fmt sends each mistake to its group"),
        }
    }
}

impl fmt::Display for ResourceMistake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IdentifierUrl(why) => f.write_str(why),
            Self::IdentifierQueryOrFragment => {
                f.write_str("a resource identifier has no query and no fragment (RFC 9728 §1.2)")
            }
            Self::ResourceFieldDiffers(other) => write!(
                f,
                "the document's resource would be {other}, not the identifier its URL is \
                 derived from"
            ),
            Self::NoAuthorizationServer => {
                f.write_str("name at least one authorization server (MCP requires it)")
            }
            Self::AuthorizationServerUrl(why) => write!(f, "authorization server: {why}"),
            Self::UnreadBearerMethod(why) => f.write_str(why),
            Self::SigningAlgNone => {
                f.write_str("resource_signing_alg_values_supported must not list none")
            }
            Self::JwksUriNotHttps => f.write_str("jwks_uri must use https (RFC 9728 §2)"),
            Self::DpopMember(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every configuration mistake of a layer, in the order they were found: never empty.
///
/// [`Display`](fmt::Display) gives one mistake per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// `None` when there is no mistake.
    pub(crate) fn new(all: Vec<ConfigError>) -> Option<Self> {
        (!all.is_empty()).then_some(Self(all))
    }

    /// Just `error`.
    pub(crate) fn one(error: ConfigError) -> Self {
        Self(vec![error])
    }

    /// The mistakes.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// How many mistakes (at least one).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The first mistake.
    pub fn first(&self) -> &ConfigError {
        &self.0[0]
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [one] = self.0.as_slice() {
            return write!(f, "{one}");
        }
        write!(f, "{} configuration mistakes:", self.0.len())?;
        for error in &self.0 {
            write!(f, "\n- {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.first())
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
