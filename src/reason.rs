//! [`Reason`]: the one place that decides what each failure means.

use http::StatusCode;
use std::fmt;

/// Whether the client sees the precise reason or a collapsed one.
///
/// The log always carries the precise reason. The default is [`DetailMode::Production`]:
/// verbose answers are for development and are opted into in one line,
/// `AuthDiagnostics::new().verbose()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetailMode {
    /// Collapse reasons that would be an oracle (unknown user vs wrong password),
    /// hide expected issuer, audience and key names, omit hints.
    #[default]
    Production,
    /// The client sees the logged reason, a specific `detail`, a `hint` and non-secret facts.
    Verbose,
}

/// The RFC 6750 §3.1 error code carried in a Bearer challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// `invalid_request`: the request is malformed (answered with 400).
    InvalidRequest,
    /// `invalid_token`: the token is expired, revoked, malformed or invalid (401).
    InvalidToken,
    /// `insufficient_scope`: the token lacks the scope the resource needs (403).
    InsufficientScope,
}

impl BearerError {
    /// The code as it appears in `error="…"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BearerError::InvalidRequest => "invalid_request",
            BearerError::InvalidToken => "invalid_token",
            BearerError::InsufficientScope => "insufficient_scope",
        }
    }
}

/// How loud the log event for a reason is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Expected traffic: a client that did not send credentials.
    Info,
    /// A client-side failure worth a look.
    Warn,
    /// A server fault or a contract violation by the wrapped service.
    Error,
}

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal ),+ $(,)?) => {
        /// Why a request was rejected or corrected.
        ///
        /// Each variant is a stable snake_case code ([`Reason::code`]) that appears in the log
        /// event and in the problem body, and decides the status and the challenge. Codes are
        /// public API and are never renamed.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Reason {
            $( $(#[$doc])* $variant, )+
        }

        impl Reason {
            /// Every reason, in documentation order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant),+];

            /// The stable code, e.g. `"token_expired"`.
            pub const fn code(self) -> &'static str {
                match self { $(Reason::$variant => $code,)+ }
            }

            /// The Rust variant name, used for the problem `type` anchor.
            const fn variant_name(self) -> &'static str {
                match self { $(Reason::$variant => stringify!($variant),)+ }
            }

            /// Looks a reason up by its code.
            pub fn from_code(code: &str) -> Option<Reason> {
                match code { $($code => Some(Reason::$variant),)+ _ => None }
            }
        }
    };
}

reasons! {
    /// No credentials of any accepted kind anywhere in the request.
    CredentialsMissing = "credentials_missing",
    /// `Authorization` uses a scheme this route does not accept.
    SchemeNotAccepted = "scheme_not_accepted",
    /// `Authorization: eyJ…`: a bare token with no scheme in front.
    SchemePrefixMissing = "scheme_prefix_missing",
    /// A token or key sits where this route does not read it (query, other header, cookie).
    CredentialsWrongLocation = "credentials_wrong_location",
    /// `Authorization` cannot be parsed: no token, `Bearer a b`, bytes outside token68.
    AuthorizationMalformed = "authorization_malformed",
    /// More than one credential method in one request.
    CredentialsConflict = "credentials_conflict",
    /// The wrapped service answered a CORS preflight with 401/403 (never a rejection).
    PreflightBlocked = "preflight_blocked",
    /// Not a JWS compact serialization.
    TokenMalformed = "token_malformed",
    /// `alg` is not in the allow-list.
    TokenAlgorithmRejected = "token_algorithm_rejected",
    /// No key for this `kid`.
    TokenKeyUnknown = "token_key_unknown",
    /// The signature does not verify.
    TokenSignatureInvalid = "token_signature_invalid",
    /// `exp` plus leeway is past.
    TokenExpired = "token_expired",
    /// `nbf` (or `iat`) is in the future beyond leeway.
    TokenNotYetValid = "token_not_yet_valid",
    /// `iss` is not an accepted issuer.
    TokenIssuerMismatch = "token_issuer_mismatch",
    /// `aud` does not contain an accepted audience.
    TokenAudienceMismatch = "token_audience_mismatch",
    /// A required claim is absent.
    TokenClaimMissing = "token_claim_missing",
    /// `typ` is not an accepted type: another kind of JWT (`dpop+jwt`, `logout+jwt`, …),
    /// or anything but `at+jwt` when RFC 9068 typing is required.
    TokenTypeRejected = "token_type_rejected",
    /// The header's `crit` lists an extension this verifier does not implement
    /// (RFC 7515 §4.1.11).
    TokenCritUnsupported = "token_crit_unsupported",
    /// A registered claim has the wrong JSON type (`sub`/`iss` not a string, `aud` not a
    /// string or array of strings, `exp`/`nbf`/`iat` not a number).
    TokenClaimInvalid = "token_claim_invalid",
    /// Authenticated, but the scopes needed are missing.
    InsufficientScope = "insufficient_scope",
    /// The key set cannot be fetched and nothing usable is cached (a server fault).
    KeySourceUnavailable = "key_source_unavailable",
    /// The application's verifier or account hook could not answer (its store is down):
    /// a server fault, 503, never a 401.
    AuthenticatorUnavailable = "authenticator_unavailable",
    /// Basic credentials that are not base64, have no `:`, or are not UTF-8.
    BasicMalformed = "basic_malformed",
    /// Basic: no such user.
    BasicUserUnknown = "basic_user_unknown",
    /// Basic: wrong password.
    BasicPasswordMismatch = "basic_password_mismatch",
    /// API key not known.
    ApiKeyUnknown = "api_key_unknown",
    /// API key known but revoked or expired.
    ApiKeyRevoked = "api_key_revoked",
    /// Session cookie unknown or tampered.
    SessionInvalid = "session_invalid",
    /// Session cookie expired.
    SessionExpired = "session_expired",
    /// What unknown users, wrong passwords and unknown or revoked keys collapse to in production.
    CredentialsInvalid = "credentials_invalid",
    /// Credentials valid, account disabled.
    AccountDisabled = "account_disabled",
    /// Credentials valid, account locked.
    AccountLocked = "account_locked",
    /// A role or policy check failed.
    Forbidden = "forbidden",
    /// The wrapped service answered 401 without `WWW-Authenticate`.
    UpstreamChallengeMissing = "upstream_challenge_missing",
    /// The wrapped service answered 401 to a request this layer authenticated.
    UpstreamUnauthorizedAfterAuthentication = "upstream_unauthorized_after_authentication",
    /// The wrapped service answered 403 to a request with no credentials at all.
    UpstreamForbiddenWithoutCredentials = "upstream_forbidden_without_credentials",
    /// The wrapped service answered 401 with `error="invalid_token"` (or
    /// `"insufficient_scope"`) to a request this layer authenticated: it refused the token
    /// itself (revoked, say). The answer is kept.
    UpstreamTokenRefused = "upstream_token_refused",
}

impl Reason {
    /// The status the layer answers with.
    ///
    /// For the `upstream_*` reasons it is the corrected status; for
    /// [`Reason::PreflightBlocked`], which is never a rejection, it is 401.
    pub const fn status(self) -> StatusCode {
        use Reason::*;
        match self {
            AuthorizationMalformed | CredentialsConflict => StatusCode::BAD_REQUEST,
            InsufficientScope
            | AccountDisabled
            | AccountLocked
            | Forbidden
            | UpstreamUnauthorizedAfterAuthentication => StatusCode::FORBIDDEN,
            KeySourceUnavailable | AuthenticatorUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 `error=` code for a Bearer challenge, or `None` when the challenge
    /// carries no error attributes (RFC 6750 §3.1: no authentication information was sent)
    /// or there is no Bearer challenge at all.
    pub const fn bearer_error(self) -> Option<BearerError> {
        use Reason::*;
        match self {
            AuthorizationMalformed | CredentialsConflict => Some(BearerError::InvalidRequest),
            TokenMalformed
            | TokenAlgorithmRejected
            | TokenKeyUnknown
            | TokenSignatureInvalid
            | TokenExpired
            | TokenNotYetValid
            | TokenIssuerMismatch
            | TokenAudienceMismatch
            | TokenClaimMissing
            | TokenTypeRejected
            | TokenCritUnsupported
            | TokenClaimInvalid
            | UpstreamTokenRefused => Some(BearerError::InvalidToken),
            InsufficientScope => Some(BearerError::InsufficientScope),
            _ => None,
        }
    }

    /// Whether an answer for this reason carries `WWW-Authenticate` challenges.
    ///
    /// Every 401 does; 400 does when a Bearer `invalid_request` applies; of the 403s only
    /// `insufficient_scope` does (RFC 6750 §3.1).
    pub const fn has_challenge(self) -> bool {
        match self.status().as_u16() {
            401 => true,
            400 => true,
            _ => matches!(self, Reason::InsufficientScope),
        }
    }

    /// The reason the client sees in `mode`.
    ///
    /// In production, reasons that would tell an attacker whether a user or key exists
    /// collapse into [`Reason::CredentialsInvalid`]; the log keeps the precise one.
    pub const fn client_reason(self, mode: DetailMode) -> Reason {
        use Reason::*;
        match (mode, self) {
            (DetailMode::Verbose, r) => r,
            (
                DetailMode::Production,
                BasicUserUnknown
                | BasicPasswordMismatch
                | ApiKeyUnknown
                | ApiKeyRevoked
                | SessionInvalid,
            ) => CredentialsInvalid,
            (DetailMode::Production, r) => r,
        }
    }

    /// Log level: INFO for a missing credential, WARN for other client-side failures,
    /// ERROR for server faults and upstream contract violations.
    pub const fn severity(self) -> Severity {
        use Reason::*;
        match self {
            CredentialsMissing => Severity::Info,
            KeySourceUnavailable
            | AuthenticatorUnavailable
            | PreflightBlocked
            | UpstreamChallengeMissing
            | UpstreamUnauthorizedAfterAuthentication
            | UpstreamForbiddenWithoutCredentials => Severity::Error,
            _ => Severity::Warn,
        }
    }

    /// A short title, the same for every occurrence of the reason (RFC 9457 §3.1.3).
    pub const fn title(self) -> &'static str {
        use Reason::*;
        match self {
            CredentialsMissing => "Authentication required",
            SchemeNotAccepted => "Authentication scheme not accepted",
            SchemePrefixMissing => "Authorization scheme missing",
            CredentialsWrongLocation => "Credentials in the wrong place",
            AuthorizationMalformed => "Malformed Authorization header",
            CredentialsConflict => "More than one credential",
            PreflightBlocked => "CORS preflight rejected",
            TokenMalformed => "Malformed token",
            TokenAlgorithmRejected => "Token algorithm not accepted",
            TokenKeyUnknown => "Token signing key unknown",
            TokenSignatureInvalid => "Invalid token signature",
            TokenExpired => "Token expired",
            TokenNotYetValid => "Token not yet valid",
            TokenIssuerMismatch => "Token issuer not accepted",
            TokenAudienceMismatch => "Token audience not accepted",
            TokenClaimMissing => "Token claim missing",
            TokenTypeRejected => "Token type not accepted",
            TokenCritUnsupported => "Token extension not supported",
            TokenClaimInvalid => "Token claim invalid",
            InsufficientScope => "Insufficient scope",
            KeySourceUnavailable => "Signing keys unavailable",
            AuthenticatorUnavailable => "Authentication unavailable",
            BasicMalformed => "Malformed Basic credentials",
            BasicUserUnknown => "Unknown user",
            BasicPasswordMismatch => "Wrong password",
            ApiKeyUnknown => "Unknown API key",
            ApiKeyRevoked => "API key revoked",
            SessionInvalid => "Invalid session",
            SessionExpired => "Session expired",
            CredentialsInvalid => "Invalid credentials",
            AccountDisabled => "Account disabled",
            AccountLocked => "Account locked",
            Forbidden => "Forbidden",
            UpstreamChallengeMissing => "Authentication required",
            UpstreamUnauthorizedAfterAuthentication => "Forbidden",
            UpstreamForbiddenWithoutCredentials => "Authentication required",
            UpstreamTokenRefused => "Token refused",
        }
    }

    /// A client-safe sentence that helps fix the request; used as `detail` in production.
    pub const fn detail(self) -> &'static str {
        use Reason::*;
        match self {
            CredentialsMissing => {
                "This resource requires authentication and the request carried no credentials."
            }
            SchemeNotAccepted => {
                "The Authorization header uses a scheme this resource does not accept."
            }
            SchemePrefixMissing => {
                "The Authorization header holds a bare credential without its scheme name."
            }
            CredentialsWrongLocation => {
                "Credentials were sent in a place this resource does not read them from."
            }
            AuthorizationMalformed => "The Authorization header could not be parsed.",
            CredentialsConflict => {
                "The request carried credentials by more than one method; send exactly one."
            }
            PreflightBlocked => "A CORS preflight request was rejected.",
            TokenMalformed => "The token is not a well-formed JWT.",
            TokenAlgorithmRejected => {
                "The token is signed with an algorithm this resource does not accept."
            }
            TokenKeyUnknown => "The token was signed by a key this resource does not know.",
            TokenSignatureInvalid => "The token signature does not verify.",
            TokenExpired => "The token has expired; obtain a new one.",
            TokenNotYetValid => "The token is not valid yet.",
            TokenIssuerMismatch => "The token was not issued by an issuer this resource trusts.",
            TokenAudienceMismatch => "The token was not issued for this resource.",
            TokenClaimMissing => "The token lacks a claim this resource requires.",
            TokenTypeRejected => "The token has a type this resource does not accept.",
            TokenCritUnsupported => {
                "The token requires an extension this resource does not support."
            }
            TokenClaimInvalid => "A registered claim of the token has the wrong type.",
            InsufficientScope => "The token does not grant the scope this resource requires.",
            KeySourceUnavailable => "The server cannot verify tokens right now; retry later.",
            AuthenticatorUnavailable => {
                "The server cannot verify credentials right now; retry later."
            }
            BasicMalformed => "The Basic credentials could not be decoded.",
            BasicUserUnknown => "No user with this name exists.",
            BasicPasswordMismatch => "The password is wrong.",
            ApiKeyUnknown => "The API key is not known.",
            ApiKeyRevoked => "The API key has been revoked.",
            SessionInvalid => "The session is not valid.",
            SessionExpired => "The session has expired; sign in again.",
            CredentialsInvalid => "The credentials are not valid.",
            AccountDisabled => "The account is disabled.",
            AccountLocked => "The account is locked.",
            Forbidden => "The credentials are valid but do not allow this request.",
            UpstreamChallengeMissing => "This resource requires authentication.",
            UpstreamUnauthorizedAfterAuthentication => {
                "The credentials are valid but do not allow this request."
            }
            UpstreamForbiddenWithoutCredentials => {
                "This resource requires authentication and the request carried no credentials."
            }
            UpstreamTokenRefused => "The token was refused; obtain a new one.",
        }
    }

    /// How to fix it, in the words of a person debugging it. Shown in verbose mode and logged.
    pub const fn hint(self) -> &'static str {
        use Reason::*;
        match self {
            CredentialsMissing => "Send the credentials listed in WWW-Authenticate; if you did, a proxy or redirect may have dropped them.",
            SchemeNotAccepted => "Use one of the schemes listed in WWW-Authenticate.",
            SchemePrefixMissing => "Prefix the token with the scheme: `Authorization: Bearer <token>`.",
            CredentialsWrongLocation => "Move the credential into the header this resource reads (see WWW-Authenticate).",
            AuthorizationMalformed => "Send exactly `Bearer <token>`: one space, a token68 value, no quotes, no second scheme.",
            CredentialsConflict => "Send one Authorization header and no credential in the query string.",
            PreflightBlocked => "Let OPTIONS preflight requests through without authentication; browsers never send credentials with them.",
            TokenMalformed => "A JWT is three base64url segments separated by dots; check the token was not truncated or wrapped.",
            TokenAlgorithmRejected => "Sign the token with the algorithm this resource expects.",
            TokenKeyUnknown => "The signing key may have been rotated; check the token's `kid` against the published keys.",
            TokenSignatureInvalid => "The token was signed with a different key or was altered.",
            TokenExpired => "Obtain a fresh token; if it should still be valid, compare the clocks of issuer and server.",
            TokenNotYetValid => "Check the clocks of issuer and server: they seem to disagree.",
            TokenIssuerMismatch => "Obtain the token from the identity provider this resource trusts.",
            TokenAudienceMismatch => "Request a token for this resource's audience.",
            TokenClaimMissing => "Ask the identity provider to include the missing claim.",
            TokenTypeRejected => "Send an access token (typ `at+jwt` or `JWT`), not an ID token, DPoP proof, logout or event token.",
            TokenCritUnsupported => "Ask the identity provider for tokens without critical header extensions (`crit`).",
            TokenClaimInvalid => "Ask the identity provider to send the claim with its registered JSON type.",
            InsufficientScope => "Request a token with the scope listed in WWW-Authenticate.",
            KeySourceUnavailable => "The key set endpoint is unreachable; the server operator should check it.",
            AuthenticatorUnavailable => "The credential store is unreachable; the server operator should check it.",
            BasicMalformed => "Send `Basic base64(user:password)` with UTF-8 text.",
            BasicUserUnknown | BasicPasswordMismatch | CredentialsInvalid => "Check the user name and password.",
            ApiKeyUnknown | ApiKeyRevoked => "Check the API key, or create a new one.",
            SessionInvalid | SessionExpired => "Sign in again to get a new session.",
            AccountDisabled | AccountLocked => "Contact an administrator.",
            Forbidden => "The account lacks the role or permission this resource needs.",
            UpstreamChallengeMissing => "The application answered 401 without a challenge; it now carries one.",
            UpstreamUnauthorizedAfterAuthentication => "The application answered 401 to an authenticated request; 403 is the right status.",
            UpstreamForbiddenWithoutCredentials => "The application answered 403 to a request without credentials; 401 with a challenge is the right status.",
            UpstreamTokenRefused => "The application refused a token this layer verified (revoked, say): the client should obtain a new one.",
        }
    }

    /// The problem type URI (RFC 9457 `type`): an absolute URI, stable per reason, that
    /// points at this variant's documentation.
    pub fn type_uri(self) -> String {
        format!("{TYPE_BASE}{}", self.variant_name())
    }
}

const TYPE_BASE: &str =
    "https://docs.rs/auth-diagnostics/latest/auth_diagnostics/enum.Reason.html#variant.";

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
