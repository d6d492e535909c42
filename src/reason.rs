//! [`Reason`]: the one place that decides what each failure means. Every property of a
//! reason is written on its row, in the style of axum's `define_rejection!`: a new reason
//! gets no property by accident.

use http::StatusCode;
use std::fmt;

/// Whether the client sees the precise reason or a collapsed one.
///
/// The log always carries the precise reason. The default is [`DetailMode::Production`]:
/// verbose answers are for development and are opted into in one line,
/// `AuthDiagnostics::new().verbose()`, or set with `.detail_mode(..)`.
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
    /// `insufficient_user_authentication` (RFC 9470): the token is valid, but the login
    /// behind it is too weak or too old (401, with `acr_values` and/or `max_age`).
    InsufficientUserAuthentication,
}

impl BearerError {
    /// The code as it appears in `error="…"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BearerError::InvalidRequest => "invalid_request",
            BearerError::InvalidToken => "invalid_token",
            BearerError::InsufficientScope => "insufficient_scope",
            BearerError::InsufficientUserAuthentication => "insufficient_user_authentication",
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

/// What the client is told in production detail instead of a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Collapse {
    /// The reason itself.
    Keep,
    /// Another reason, so the answer is no oracle (unknown user vs wrong password).
    To(Reason),
    /// What a 401 means to the client: `credentials_missing` for a request that carried no
    /// credentials, `credentials_invalid` for one that did.
    MissingOrInvalid,
}

/// When a Bearer challenge for a reason carries an RFC 6750 error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BearerRule {
    /// Never (RFC 6750 §3.1: no authentication information, or not Bearer's business).
    No,
    /// Always this code.
    Always(BearerError),
    /// This code when the request sent a Bearer token, none otherwise.
    WithToken(BearerError),
}

use BearerError::{
    InsufficientScope, InsufficientUserAuthentication, InvalidRequest, InvalidToken,
};
use BearerRule::{Always, No, WithToken};
use Collapse::{Keep, MissingOrInvalid, To};
use Severity::{Error, Info, Warn};

/// A status constant's number and phrase, for the documentation of each reason.
macro_rules! status_text {
    (BAD_REQUEST) => {
        "400 Bad Request"
    };
    (UNAUTHORIZED) => {
        "401 Unauthorized"
    };
    (FORBIDDEN) => {
        "403 Forbidden"
    };
    (TOO_MANY_REQUESTS) => {
        "429 Too Many Requests"
    };
    (SERVICE_UNAVAILABLE) => {
        "503 Service Unavailable"
    };
}

/// The gRPC status a gRPC request is refused with for a status, for the same
/// documentation.
macro_rules! grpc_text {
    (BAD_REQUEST) => {
        "3 `INVALID_ARGUMENT`"
    };
    (UNAUTHORIZED) => {
        "16 `UNAUTHENTICATED`"
    };
    (FORBIDDEN) => {
        "7 `PERMISSION_DENIED`"
    };
    (TOO_MANY_REQUESTS) => {
        "8 `RESOURCE_EXHAUSTED`"
    };
    (SERVICE_UNAVAILABLE) => {
        "14 `UNAVAILABLE`"
    };
}

macro_rules! reasons {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $code:literal {
            status: $status:ident,
            bearer: $bearer:expr,
            severity: $severity:expr,
            collapse: $collapse:expr,
            title: $title:literal,
            detail: $detail:literal,
            hint: $hint:literal,
        },
    )+) => {
        /// Why a request was rejected or corrected.
        ///
        /// Each variant is a stable snake_case code ([`Reason::code`]) that appears in the log
        /// event and in the problem body, and decides the status and the challenge. Codes are
        /// public API and are never renamed.
        ///
        /// Each variant is also an RFC 9457 problem type, documented as §4 asks: its type
        /// URI is the variant's documentation anchor (`…/enum.Reason.html#variant.Name`),
        /// and the variant's documentation states that URI, its title and its status.
        ///
        /// A gRPC request (`content-type: application/grpc`, with any `+proto`, `+json` or
        /// other suffix) is refused in gRPC's own terms instead: a trailers-only answer,
        /// HTTP 200, whose `grpc-status` follows the reason's status (each variant names
        /// it) and whose `grpc-message` is the client reason's code, `: `, and the detail
        /// the problem body would carry (then `(required scope: …)` when scopes are
        /// missing), percent-encoded as gRPC asks:
        ///
        /// | status | `grpc-status` |
        /// |---|---|
        /// | 400 | 3 `INVALID_ARGUMENT`: the request itself is malformed |
        /// | 401 | 16 `UNAUTHENTICATED` |
        /// | 403 | 7 `PERMISSION_DENIED` |
        /// | 429 | 8 `RESOURCE_EXHAUSTED` |
        /// | 503 | 14 `UNAVAILABLE`: a server fault, the client may retry |
        /// | 404 of `HideForbidden` | 12 `UNIMPLEMENTED`, no message, as for a method the server lacks |
        ///
        /// The `WWW-Authenticate` challenges, `Retry-After`, `DPoP-Nonce` and
        /// `X-Request-Id` stay as headers; the log event, the metrics and the reason are
        /// those of the HTTP answer, HTTP status included.
        ///
        /// A WebSocket upgrade on a route that opts in (`websocket::WebSocketAuth::
        /// close_on_reject`, feature `websocket`) is refused by completing the handshake and
        /// closing at once: close code 4401 for a 401 reason, 4403 for a 403 reason, the
        /// client reason's code as the close reason; other statuses stay HTTP answers. A
        /// socket whose token expires (`websocket::Expiring`) is closed with 4401 and
        /// `token_expired`. The log event is the same in every case.
        ///
        /// ```
        /// use auth_diagnostics::Reason;
        ///
        /// for &reason in Reason::ALL {
        ///     let anchor = format!(
        ///         "https://docs.rs/auth-diagnostics/latest/auth_diagnostics/enum.Reason.html#variant.{reason:?}"
        ///     );
        ///     assert_eq!(reason.type_uri(), anchor);
        ///     assert!(!reason.title().is_empty() && reason.title().len() < 60, "{reason}");
        ///     assert!([400, 401, 403, 429, 503].contains(&reason.status().as_u16()), "{reason}");
        ///     assert_eq!(Reason::from_code(reason.code()), Some(reason));
        /// }
        /// assert_eq!(Reason::TokenExpired.title(), "Token expired");
        /// assert_eq!(Reason::TokenExpired.status(), 401);
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Reason {
            $(
                $(#[$doc])*
                ///
                #[doc = concat!(
                    "Problem type `https://docs.rs/auth-diagnostics/latest/auth_diagnostics/enum.Reason.html#variant.",
                    stringify!($variant),
                    "`: title \"", $title, "\", status ", status_text!($status),
                    " (gRPC ", grpc_text!($status), "), code `", $code, "`."
                )]
                $variant,
            )+
        }

        impl Reason {
            /// Every reason, in documentation order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant),+];

            /// The stable code, e.g. `"token_expired"`.
            pub const fn code(self) -> &'static str {
                match self { $(Reason::$variant => $code,)+ }
            }

            /// The problem type URI, without an allocation.
            pub(crate) const fn type_uri_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => concat!(
                        "https://docs.rs/auth-diagnostics/latest/auth_diagnostics/enum.Reason.html#variant.",
                        stringify!($variant)
                    ),)+
                }
            }

            /// Looks a reason up by its code.
            pub fn from_code(code: &str) -> Option<Reason> {
                match code { $($code => Some(Reason::$variant),)+ _ => None }
            }

            /// The status the layer answers with. For the `upstream_*` reasons it is the
            /// corrected status; for [`Reason::PreflightBlocked`], which is never a
            /// rejection, it is 401.
            pub const fn status(self) -> StatusCode {
                match self { $(Reason::$variant => StatusCode::$status,)+ }
            }

            pub(crate) const fn bearer_rule(self) -> BearerRule {
                match self { $(Reason::$variant => $bearer,)+ }
            }

            /// Log level: INFO for a missing credential, WARN for other client-side
            /// failures, ERROR for server faults and upstream contract violations.
            pub const fn severity(self) -> Severity {
                match self { $(Reason::$variant => $severity,)+ }
            }

            pub(crate) const fn collapse(self) -> Collapse {
                match self { $(Reason::$variant => $collapse,)+ }
            }

            /// A short title, the same for every occurrence of the reason (RFC 9457 §3.1.3).
            pub const fn title(self) -> &'static str {
                match self { $(Reason::$variant => $title,)+ }
            }

            /// A client-safe sentence that helps fix the request; the `detail` in production.
            pub const fn detail(self) -> &'static str {
                match self { $(Reason::$variant => $detail,)+ }
            }

            /// How to fix it, in the words of a person debugging it. Shown in verbose mode
            /// and logged.
            pub const fn hint(self) -> &'static str {
                match self { $(Reason::$variant => $hint,)+ }
            }
        }
    };
}

reasons! {
    /// No credentials of any accepted kind anywhere in the request.
    CredentialsMissing = "credentials_missing" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Info,
        collapse: Keep,
        title: "Authentication required",
        detail: "This resource requires authentication and the request carried no credentials.",
        hint: "Send the credentials listed in WWW-Authenticate; if you did, a proxy or redirect may have dropped them.",
    },
    /// `Authorization` uses a scheme this route does not accept.
    SchemeNotAccepted = "scheme_not_accepted" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "Authentication scheme not accepted",
        detail: "The Authorization header uses a scheme this resource does not accept.",
        hint: "Use one of the schemes listed in WWW-Authenticate.",
    },
    /// `Authorization: eyJ…`: a bare token with no scheme in front.
    SchemePrefixMissing = "scheme_prefix_missing" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "Authorization scheme missing",
        detail: "The Authorization header holds a bare credential without its scheme name.",
        hint: "Prefix the token with the scheme: `Authorization: Bearer <token>`.",
    },
    /// A token or key sits where this route does not read it (query, other header, cookie).
    CredentialsWrongLocation = "credentials_wrong_location" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "Credentials in the wrong place",
        detail: "Credentials were sent in a place this resource does not read them from.",
        hint: "Move the credential into the header this resource reads (see WWW-Authenticate).",
    },
    /// `Authorization` cannot be parsed: no token, `Bearer a b`, bytes outside token68.
    AuthorizationMalformed = "authorization_malformed" {
        status: BAD_REQUEST,
        bearer: Always(InvalidRequest),
        severity: Warn,
        collapse: Keep,
        title: "Malformed Authorization header",
        detail: "The Authorization header could not be parsed.",
        hint: "Send exactly `Bearer <token>`: one space, a token68 value, no quotes, no second scheme.",
    },
    /// More than one credential method in one request.
    CredentialsConflict = "credentials_conflict" {
        status: BAD_REQUEST,
        bearer: Always(InvalidRequest),
        severity: Warn,
        collapse: Keep,
        title: "More than one credential",
        detail: "The request carried credentials by more than one method; send exactly one.",
        hint: "Send one Authorization header and no credential in the query string.",
    },
    /// The wrapped service answered a CORS preflight with 401/403 (never a rejection).
    PreflightBlocked = "preflight_blocked" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Error,
        collapse: Keep,
        title: "CORS preflight rejected",
        detail: "A CORS preflight request was rejected.",
        hint: "Let OPTIONS preflight requests through without authentication; browsers never send credentials with them.",
    },
    /// Not a JWS compact serialization.
    TokenMalformed = "token_malformed" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Malformed token",
        detail: "The token is not a well-formed JWT.",
        hint: "A JWT is three base64url segments separated by dots; check the token was not truncated or wrapped.",
    },
    /// `alg` is not in the allow-list.
    TokenAlgorithmRejected = "token_algorithm_rejected" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token algorithm not accepted",
        detail: "The token is signed with an algorithm this resource does not accept.",
        hint: "Sign the token with the algorithm this resource expects.",
    },
    /// No key for this `kid`.
    TokenKeyUnknown = "token_key_unknown" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token signing key unknown",
        detail: "The token was signed by a key this resource does not know.",
        hint: "The signing key may have been rotated; check the token's `kid` against the published keys.",
    },
    /// The token names no `kid`, and more than one key of the issuer's set could verify
    /// it: the layer checks one signature per token, never one per key.
    TokenKidMissing = "token_kid_missing" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token key not named",
        detail: "The token does not name its signing key (kid), and several keys could have signed it.",
        hint: "Have the issuer put the signing key's `kid` in the token header.",
    },
    /// The signature does not verify.
    TokenSignatureInvalid = "token_signature_invalid" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Invalid token signature",
        detail: "The token signature does not verify.",
        hint: "The token was signed with a different key or was altered.",
    },
    /// `exp` plus leeway is past.
    TokenExpired = "token_expired" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token expired",
        detail: "The token has expired; obtain a new one.",
        hint: "Obtain a fresh token; if it should still be valid, compare the clocks of issuer and server.",
    },
    /// The token verified, but it is on the layer's revocation list
    /// (`store::RevocationList`): its `jti`, its session `sid`,
    /// or its `sub` revoked after the token was issued (a token without `iat` counts as
    /// issued before). Bearer and DPoP, `error="invalid_token"`.
    TokenRevoked = "token_revoked" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token revoked",
        detail: "The token has been revoked; obtain a new one.",
        hint: "The token, its session or its subject was revoked on this server (by an administrator or a logout); sign in again for a new token.",
    },
    /// `nbf` (or `iat`) is in the future beyond leeway.
    TokenNotYetValid = "token_not_yet_valid" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token not yet valid",
        detail: "The token is not valid yet.",
        hint: "Check the clocks of issuer and server: they seem to disagree.",
    },
    /// `iss` is not an accepted issuer.
    TokenIssuerMismatch = "token_issuer_mismatch" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token issuer not accepted",
        detail: "The token was not issued by an issuer this resource trusts.",
        hint: "Obtain the token from the identity provider this resource trusts.",
    },
    /// `aud` does not contain an accepted audience.
    TokenAudienceMismatch = "token_audience_mismatch" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token audience not accepted",
        detail: "The token was not issued for this resource.",
        hint: "Request a token for this resource's audience.",
    },
    /// A required claim is absent.
    TokenClaimMissing = "token_claim_missing" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token claim missing",
        detail: "The token lacks a claim this resource requires.",
        hint: "Ask the identity provider to include the missing claim.",
    },
    /// `typ` is not an accepted type: another kind of JWT (`dpop+jwt`, `logout+jwt`, …),
    /// or anything but `at+jwt` when RFC 9068 typing is required.
    TokenTypeRejected = "token_type_rejected" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token type not accepted",
        detail: "The token has a type this resource does not accept.",
        hint: "Send an access token (typ `at+jwt` or `JWT`), not an ID token, DPoP proof, logout or event token.",
    },
    /// The header's `crit` lists an extension this verifier does not implement
    /// (RFC 7515 §4.1.11).
    TokenCritUnsupported = "token_crit_unsupported" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token extension not supported",
        detail: "The token requires an extension this resource does not support.",
        hint: "Ask the identity provider for tokens without critical header extensions (`crit`).",
    },
    /// A registered claim has the wrong JSON type (`sub`/`iss` not a string, `aud` not a
    /// string or array of strings, `exp`/`nbf`/`iat` not a number).
    TokenClaimInvalid = "token_claim_invalid" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token claim invalid",
        detail: "A registered claim of the token has the wrong type.",
        hint: "Ask the identity provider to send the claim with its registered JSON type.",
    },
    /// RFC 7662 introspection answered `active: false`: the authorization server says the
    /// token is not (or no longer) valid — revoked, expired, or never issued by it.
    TokenInactive = "token_inactive" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token inactive",
        detail: "The authorization server says the token is not active; obtain a new one.",
        hint: "The token was revoked, has expired or was never issued by this resource's authorization server; obtain a fresh one.",
    },
    /// Authenticated, but the scopes needed are missing.
    InsufficientScope = "insufficient_scope" {
        status: FORBIDDEN,
        bearer: Always(InsufficientScope),
        severity: Warn,
        collapse: Keep,
        title: "Insufficient scope",
        detail: "The token does not grant the scope this resource requires.",
        hint: "Request a token with the scope listed in WWW-Authenticate.",
    },
    /// The token is valid, but the authentication behind it does not meet the route's
    /// requirement (RFC 9470): its `acr` is not one of those accepted, or its `auth_time`
    /// is older than the route's `max_age`.
    InsufficientUserAuthentication = "insufficient_user_authentication" {
        status: UNAUTHORIZED,
        bearer: Always(InsufficientUserAuthentication),
        severity: Warn,
        collapse: Keep,
        title: "Stronger or more recent authentication required",
        detail: "The token is valid, but this resource requires a stronger or more recent login.",
        hint: "Sign in again with the acr_values and max_age listed in WWW-Authenticate, then retry with the new token.",
    },
    /// A DPoP-bound token (`cnf.jkt`) was sent as a Bearer token (RFC 9449 §7.2): without
    /// its proof it is what a thief would send.
    TokenDpopBound = "token_dpop_bound" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "DPoP-bound token sent as Bearer",
        detail: "The token is bound to a DPoP key and must be sent with the DPoP scheme and a proof.",
        hint: "Send `Authorization: DPoP <token>` with a `DPoP` proof header signed by the key the token is bound to.",
    },
    /// The token's `cnf` names a confirmation method this route cannot verify: a
    /// certificate thumbprint (`x5t#S256`, RFC 8705) without a certificate source, a raw
    /// key (`jwk`, RFC 7800), or members this layer does not know. Without the proof of
    /// possession the token is what a thief would send, so it is refused, never accepted
    /// as a plain Bearer token.
    TokenBindingUnverifiable = "token_binding_unverifiable" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token binding cannot be verified",
        detail: "The token is bound to a key or certificate by a method this resource cannot verify.",
        hint: "Send the token the way its binding requires (DPoP, or a client certificate on a route that checks it), or ask the authorization server for an unbound token.",
    },
    /// A certificate-bound token (`cnf.x5t#S256`, RFC 8705 §3) came without a client
    /// certificate: no [`ClientCertificate`](crate::layer::ClientCertificate) on the TLS
    /// connection and no forwarded-certificate header from a trusted proxy (or one that
    /// holds no certificate; the detail says which).
    CertificateMissing = "certificate_missing" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Client certificate missing",
        detail: "The token is bound to a client certificate and the request presented none.",
        hint: "Present the client certificate the token was issued to in the TLS handshake (mutual TLS), or make the proxy that ends TLS forward it.",
    },
    /// The SHA-256 thumbprint of the client certificate is not the token's
    /// `cnf.x5t#S256` (compared in constant time): the token was issued to another
    /// certificate.
    CertificateMismatch = "certificate_mismatch" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Client certificate does not match the token",
        detail: "The token is bound to a different client certificate than the one presented.",
        hint: "Use the client certificate the token was issued to, or request a new token over the mutual-TLS connection that presents this certificate.",
    },
    /// The token's `iss` is not its tenant's issuer: the issuer template (for example
    /// Entra ID's `https://login.microsoftonline.com/{tenant}/v2.0`) filled in with the
    /// token's tenant claim (`tid`) is another issuer.
    TenantIssuerMismatch = "tenant_issuer_mismatch" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token issuer does not match its tenant",
        detail: "The token's issuer is not the issuer of the tenant it names.",
        hint: "Request the token from the tenant's own issuer; a token whose iss and tid disagree was not issued by that tenant.",
    },
    /// A forwarded-certificate header came from a peer that is not a configured trusted
    /// proxy ([`AuthDiagnostics::trusted_proxies`](crate::AuthDiagnostics::trusted_proxies)):
    /// it was ignored, and the certificate-bound token had no other certificate.
    CertificateHeaderUntrusted = "certificate_header_untrusted" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Certificate header from an untrusted peer",
        detail: "A forwarded client certificate came from a peer that is not a trusted proxy and was ignored.",
        hint: "Send the request through the proxy that ends TLS, or add that proxy's address to the trusted proxies.",
    },
    /// `Authorization: DPoP` came without a `DPoP` proof header.
    DpopProofMissing = "dpop_proof_missing" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "DPoP proof missing",
        detail: "The request uses the DPoP scheme but carries no DPoP proof header.",
        hint: "Send a `DPoP` header with a fresh proof JWT for this request (RFC 9449 §4).",
    },
    /// The `DPoP` header is not one compact JWS with JSON header and claims, or appears
    /// more than once.
    DpopProofMalformed = "dpop_proof_malformed" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "DPoP proof malformed",
        detail: "The DPoP proof is not a single well-formed JWT.",
        hint: "Send exactly one `DPoP` header holding one compact JWS.",
    },
    /// The proof's `typ` is not `dpop+jwt`.
    DpopProofTypeRejected = "dpop_proof_type_rejected" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "DPoP proof type rejected",
        detail: "The DPoP proof's typ header is not dpop+jwt.",
        hint: "Set the proof's `typ` header to `dpop+jwt`.",
    },
    /// The proof's `alg` is not one the resource accepts (`none`, HMAC, or outside the
    /// allow-list advertised in `algs`).
    DpopProofAlgorithmRejected = "dpop_proof_algorithm_rejected" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "DPoP proof algorithm rejected",
        detail: "The DPoP proof is signed with an algorithm this resource does not accept.",
        hint: "Sign the proof with one of the algorithms in the DPoP challenge's `algs`.",
    },
    /// The proof's `jwk` header is absent, not a public key of a supported type, does not
    /// fit `alg`, or carries private key material.
    DpopProofKeyInvalid = "dpop_proof_key_invalid" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "DPoP proof key invalid",
        detail: "The DPoP proof's jwk header is not a usable public key.",
        hint: "Put the public key (never the private one) in the proof's `jwk` header, of a type that fits `alg`.",
    },
    /// The proof's signature does not verify with its own `jwk`.
    DpopProofSignatureInvalid = "dpop_proof_signature_invalid" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "DPoP proof signature invalid",
        detail: "The DPoP proof's signature does not verify with the key in its header.",
        hint: "Sign the proof with the private key of the `jwk` in its header.",
    },
    /// The proof lacks `jti`, `htm`, `htu`, `iat`, or `ath` (with an access token), or one
    /// has the wrong type.
    DpopProofClaimMissing = "dpop_proof_claim_missing" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "DPoP proof claim missing",
        detail: "The DPoP proof lacks a required claim.",
        hint: "A proof needs jti, htm, htu and iat, and ath (the token's SHA-256 hash) when it comes with an access token.",
    },
    /// The proof's `htm` is not the request's method.
    DpopProofMethodMismatch = "dpop_proof_method_mismatch" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "DPoP proof method mismatch",
        detail: "The DPoP proof was made for another HTTP method.",
        hint: "Make a new proof per request, with `htm` set to the request's method.",
    },
    /// The proof's `htu` is not the request's URL (without query and fragment).
    DpopProofUrlMismatch = "dpop_proof_url_mismatch" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "DPoP proof URL mismatch",
        detail: "The DPoP proof was made for another URL.",
        hint: "Set `htu` to the request's URL without query and fragment; behind a proxy the server must know its external URL.",
    },
    /// The proof's `iat` is outside the accepted window: too old, or in the future.
    DpopProofExpired = "dpop_proof_expired" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "DPoP proof expired",
        detail: "The DPoP proof's iat is outside the accepted time window.",
        hint: "Make a fresh proof for every request; check the client's clock.",
    },
    /// The proof's `jti` was seen before: a proof is good for one request.
    DpopProofReplayed = "dpop_proof_replayed" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "DPoP proof replayed",
        detail: "This DPoP proof was already used.",
        hint: "Make a new proof, with a new jti, for every request.",
    },
    /// The proof's `ath` is not the hash of the access token it came with.
    DpopProofAthMismatch = "dpop_proof_ath_mismatch" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "DPoP proof token hash mismatch",
        detail: "The DPoP proof's ath does not match the access token.",
        hint: "Set `ath` to base64url(SHA-256(access token)) of the token sent in Authorization.",
    },
    /// A token without `cnf.jkt` came with the DPoP scheme: it is not bound to any key.
    DpopTokenUnbound = "dpop_token_unbound" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token not DPoP-bound",
        detail: "The token sent with the DPoP scheme is not bound to a DPoP key.",
        hint: "Request the token with a DPoP proof at the token endpoint so it is bound (cnf.jkt).",
    },
    /// The token's `cnf.jkt` is not the thumbprint of the proof's key: proof and token
    /// belong to different keys.
    DpopKeyMismatch = "dpop_key_mismatch" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "DPoP key mismatch",
        detail: "The DPoP proof is signed by another key than the one the token is bound to.",
        hint: "Sign proofs with the key the token was issued for.",
    },
    /// The resource requires a server nonce in DPoP proofs, and the proof has none or a
    /// stale one; the answer carries a fresh one in `DPoP-Nonce`.
    DpopNonceRequired = "dpop_nonce_required" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Info,
        collapse: Keep,
        title: "DPoP nonce required",
        detail: "The DPoP proof must carry the nonce given in the DPoP-Nonce header.",
        hint: "Retry with a new proof whose `nonce` is the DPoP-Nonce value of this answer.",
    },
    /// The replay store could not record the proof (full of unexpired proofs, or
    /// unreachable): the proof cannot be proven fresh, so the request is not accepted.
    DpopReplayStoreUnavailable = "dpop_replay_store_unavailable" {
        status: SERVICE_UNAVAILABLE,
        bearer: No,
        severity: Error,
        collapse: Keep,
        title: "DPoP replay check unavailable",
        detail: "The server cannot check DPoP proofs for replay right now; retry later.",
        hint: "The replay store is full or unreachable; the server operator should check its capacity or connection.",
    },
    /// One DPoP key (`jkt`) holds its whole share of the replay store: it sent more
    /// distinct proofs within their lifetime than any one client needs. Only that key is
    /// refused (429 with `Retry-After`); other keys keep working.
    DpopKeyOverQuota = "dpop_key_over_quota" {
        status: TOO_MANY_REQUESTS,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "Too many DPoP proofs for one key",
        detail: "This DPoP key sent more proofs than the server remembers for one key; retry later.",
        hint: "Make one proof per request, and slow down: the key's proofs are accepted again once its older ones expire (Retry-After).",
    },
    /// The client address or the claimed identity (a Basic user name) failed to
    /// authenticate too often ([`Throttle`](crate::throttle::Throttle)): refused with 429
    /// and `Retry-After`, without a challenge, before any password hash or signature check.
    Throttled = "throttled" {
        status: TOO_MANY_REQUESTS,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "Too many failed attempts",
        detail: "This client failed to authenticate too often; retry after the time in Retry-After.",
        hint: "Stop retrying with credentials that fail: check them, then wait for Retry-After (each further failure doubles the wait).",
    },
    /// The key set cannot be fetched and nothing usable is cached (a server fault).
    KeySourceUnavailable = "key_source_unavailable" {
        status: SERVICE_UNAVAILABLE,
        bearer: No,
        severity: Error,
        collapse: Keep,
        title: "Signing keys unavailable",
        detail: "The server cannot verify tokens right now; retry later.",
        hint: "The key set endpoint is unreachable; the server operator should check it.",
    },
    /// The RFC 7662 introspection endpoint is unreachable, times out, answers 5xx or
    /// non-JSON, or refuses this server's client credentials, and nothing usable is cached
    /// (a server fault): 503 with `Retry-After`, never a 401 the client would act on.
    IntrospectionUnavailable = "introspection_unavailable" {
        status: SERVICE_UNAVAILABLE,
        bearer: No,
        severity: Error,
        collapse: Keep,
        title: "Token introspection unavailable",
        detail: "The server cannot check this token right now; retry later.",
        hint: "The introspection endpoint is unreachable or refuses this server's client credentials; the server operator should check it (the log names the endpoint and the cause).",
    },
    /// The application's verifier or account hook could not answer (its store is down):
    /// a server fault, 503, never a 401.
    AuthenticatorUnavailable = "authenticator_unavailable" {
        status: SERVICE_UNAVAILABLE,
        bearer: No,
        severity: Error,
        collapse: Keep,
        title: "Authentication unavailable",
        detail: "The server cannot verify credentials right now; retry later.",
        hint: "The credential store is unreachable; the server operator should check it.",
    },
    /// The revocation list cannot be read (its store is unreachable) and the layer fails
    /// closed, the default: a server fault, 503 with `Retry-After`, never a 401.
    /// `AuthDiagnostics::revocation_fails_open` accepts such requests instead.
    RevocationUnavailable = "revocation_unavailable" {
        status: SERVICE_UNAVAILABLE,
        bearer: No,
        severity: Error,
        collapse: Keep,
        title: "Revocation check unavailable",
        detail: "The server cannot check whether credentials were revoked right now; retry later.",
        hint: "The revocation list's store is unreachable; the server operator should check its connection.",
    },
    /// Basic credentials that are not base64, have no `:`, or are not UTF-8.
    BasicMalformed = "basic_malformed" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "Malformed Basic credentials",
        detail: "The Basic credentials could not be decoded.",
        hint: "Send `Basic base64(user:password)` with UTF-8 text.",
    },
    /// Basic: no such user.
    BasicUserUnknown = "basic_user_unknown" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: To(Reason::CredentialsInvalid),
        title: "Unknown user",
        detail: "No user with this name exists.",
        hint: "Check the user name and password.",
    },
    /// Basic: wrong password.
    BasicPasswordMismatch = "basic_password_mismatch" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: To(Reason::CredentialsInvalid),
        title: "Wrong password",
        detail: "The password is wrong.",
        hint: "Check the user name and password.",
    },
    /// API key not known.
    ApiKeyUnknown = "api_key_unknown" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: To(Reason::CredentialsInvalid),
        title: "Unknown API key",
        detail: "The API key is not known.",
        hint: "Check the API key, or create a new one.",
    },
    /// API key known but revoked or expired.
    ApiKeyRevoked = "api_key_revoked" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: To(Reason::CredentialsInvalid),
        title: "API key revoked",
        detail: "The API key has been revoked.",
        hint: "Check the API key, or create a new one.",
    },
    /// Session cookie unknown or tampered.
    SessionInvalid = "session_invalid" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: To(Reason::CredentialsInvalid),
        title: "Invalid session",
        detail: "The session is not valid.",
        hint: "Sign in again to get a new session.",
    },
    /// Session cookie expired.
    SessionExpired = "session_expired" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "Session expired",
        detail: "The session has expired; sign in again.",
        hint: "Sign in again to get a new session.",
    },
    /// The session verified, but its session id
    /// (`Principal::with_session_id`) or its subject
    /// was revoked on the layer's revocation list (for example by a back-channel logout).
    SessionRevoked = "session_revoked" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "Session revoked",
        detail: "The session has been revoked; sign in again.",
        hint: "The session or its user was logged out on this server (by an administrator or at the identity provider); sign in again.",
    },
    /// What unknown users, wrong passwords and unknown or revoked keys collapse to in production.
    CredentialsInvalid = "credentials_invalid" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "Invalid credentials",
        detail: "The credentials are not valid.",
        hint: "Check the user name and password.",
    },
    /// Credentials valid, account disabled.
    AccountDisabled = "account_disabled" {
        status: FORBIDDEN,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "Account disabled",
        detail: "The account is disabled.",
        hint: "Contact an administrator.",
    },
    /// Credentials valid, account locked.
    AccountLocked = "account_locked" {
        status: FORBIDDEN,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "Account locked",
        detail: "The account is locked.",
        hint: "Contact an administrator.",
    },
    /// An unsafe request (POST, PUT, DELETE, …) authenticated by a session cookie came
    /// from another origin: `Origin` (or `Sec-Fetch-Site`) says a page elsewhere sent it,
    /// the shape of a cross-site request forgery (RFC 6750 §5.3, R-23).
    CrossSiteRequest = "cross_site_request" {
        status: FORBIDDEN,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "Cross-site request refused",
        detail: "An unsafe request authenticated by a session cookie came from another origin.",
        hint: "Send it from this site's own pages. To accept another origin of yours, list it with SessionAuthenticator::trusted_origins.",
    },
    /// A role or policy check failed.
    Forbidden = "forbidden" {
        status: FORBIDDEN,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "Forbidden",
        detail: "The credentials are valid but do not allow this request.",
        hint: "The account lacks the role or permission this resource needs.",
    },
    /// An MCP request whose `Mcp-Method` or `Mcp-Name` header (MCP 2026-07-28) is
    /// malformed or disagrees with its JSON-RPC body, on a route whose
    /// [`McpScopes`](crate::authz::McpScopes) checks it
    /// ([`reject_header_mismatch`](crate::authz::McpScopes::reject_header_mismatch)). The
    /// answer's body is the JSON-RPC error `-32020` (`HeaderMismatch`).
    McpHeaderMismatch = "mcp_header_mismatch" {
        status: BAD_REQUEST,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "MCP headers disagree with the body",
        detail: "The Mcp-Method or Mcp-Name header is malformed or does not match the JSON-RPC body.",
        hint: "Send Mcp-Method and Mcp-Name exactly as the body's method and params.name (params.uri for resources), names that are not plain ASCII in the =?base64?...?= form.",
    },
    /// The request's path could be read differently by the layer and the router (dot
    /// segments in any encoding, `..;`, an encoded `/` or `\`, double percent-encoding,
    /// a raw backslash): refused before any route-scoped rule, so no rule can be bypassed
    /// by spelling a path another way.
    PathAmbiguous = "path_ambiguous" {
        status: BAD_REQUEST,
        bearer: No,
        severity: Warn,
        collapse: Keep,
        title: "Ambiguous request path",
        detail: "The request path can be read in more than one way.",
        hint: "Send the path in its plain form: no dot segments, no encoded slashes or backslashes, no double percent-encoding.",
    },
    /// The wrapped service answered 401 without `WWW-Authenticate`.
    UpstreamChallengeMissing = "upstream_challenge_missing" {
        status: UNAUTHORIZED,
        bearer: WithToken(InvalidToken),
        severity: Error,
        collapse: MissingOrInvalid,
        title: "Authentication required",
        detail: "This resource requires authentication.",
        hint: "The application answered 401 without a challenge; it now carries one.",
    },
    /// The wrapped service answered 401 to a request this layer authenticated.
    UpstreamUnauthorizedAfterAuthentication = "upstream_unauthorized_after_authentication" {
        status: FORBIDDEN,
        bearer: No,
        severity: Error,
        collapse: To(Reason::Forbidden),
        title: "Forbidden",
        detail: "The credentials are valid but do not allow this request.",
        hint: "The application answered 401 to an authenticated request; 403 is the right status.",
    },
    /// The wrapped service answered 403 to a request with no credentials at all.
    UpstreamForbiddenWithoutCredentials = "upstream_forbidden_without_credentials" {
        status: UNAUTHORIZED,
        bearer: No,
        severity: Error,
        collapse: MissingOrInvalid,
        title: "Authentication required",
        detail: "This resource requires authentication and the request carried no credentials.",
        hint: "The application answered 403 to a request without credentials; 401 with a challenge is the right status.",
    },
    /// The wrapped service answered 401 with an `error` in its challenge
    /// (`invalid_token`, `insufficient_scope`, `insufficient_user_authentication`, …) to a
    /// request this layer authenticated: it refused the token itself (revoked, say, or a
    /// step-up) and told the client what to do. The answer is kept.
    UpstreamTokenRefused = "upstream_token_refused" {
        status: UNAUTHORIZED,
        bearer: Always(InvalidToken),
        severity: Warn,
        collapse: Keep,
        title: "Token refused",
        detail: "The token was refused; obtain a new one.",
        hint: "The application refused a token this layer verified, and its challenge tells the client what to do (a new token for invalid_token, a step-up for insufficient_user_authentication).",
    },
}

impl Reason {
    /// The RFC 6750 `error=` code for a Bearer challenge, or `None` when the challenge
    /// carries no error attributes (RFC 6750 §3.1: no authentication information was sent)
    /// or there is no Bearer challenge at all. A 401 the layer completes for a request
    /// that sent a Bearer token says `invalid_token` although this is `None`.
    pub const fn bearer_error(self) -> Option<BearerError> {
        match self.bearer_rule() {
            Always(e) => Some(e),
            No | WithToken(_) => None,
        }
    }

    /// Whether an answer for this reason carries `WWW-Authenticate` challenges: every 401,
    /// every 400 (in the scheme the client spoke), and a 403 only for `insufficient_scope`
    /// (RFC 6750 §3.1).
    pub(crate) const fn has_challenge(self) -> bool {
        match self.status().as_u16() {
            400 | 401 => true,
            _ => matches!(self.bearer_rule(), Always(InsufficientScope)),
        }
    }

    /// The reason the client sees in `mode`, for a request that did or did not carry
    /// credentials. The log keeps the precise one.
    pub(crate) const fn client_reason(self, mode: DetailMode, had_credentials: bool) -> Reason {
        match (mode, self.collapse()) {
            (DetailMode::Verbose, _) | (DetailMode::Production, Keep) => self,
            (DetailMode::Production, To(r)) => r,
            (DetailMode::Production, MissingOrInvalid) if had_credentials => {
                Reason::CredentialsInvalid
            }
            (DetailMode::Production, MissingOrInvalid) => Reason::CredentialsMissing,
        }
    }

    /// The problem type URI (RFC 9457 `type`): an absolute URI, stable per reason, that
    /// points at this variant's documentation.
    pub fn type_uri(self) -> String {
        self.type_uri_str().to_owned()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
