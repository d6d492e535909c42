//! Basic (RFC 7617): `Authorization: Basic base64(user:password)`, verified by the
//! application's [`Verify`] hook.

use super::{unverified_user, AuthScheme, Decision, Pending, Place};
use crate::authn::verify::{AuthFuture, Verify};
use crate::challenge::Challenge;
use crate::evidence::{is_token68, looks_like_jwt, Evidence};
use crate::failure::{AuthFailure, Location};
use crate::reason::{DetailMode, Reason};
use crate::sanitize::fingerprint;
use crate::scheme::Scheme;
use crate::secret::Secret;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use std::fmt;
use std::sync::Arc;

/// Longest user name we accept, in bytes.
const MAX_USER: usize = 256;
/// Longest password we accept, in bytes.
const MAX_PASSWORD: usize = 1024;

/// Decoded Basic credentials: the user-id and the password (RFC 7617 §2).
#[derive(Debug, Clone)]
pub struct BasicCredentials {
    /// The user-id: the text before the first `:` (it may be empty).
    pub user: String,
    /// The password: everything after the first `:` (it may contain `:`).
    pub password: Secret,
}

/// Accepts `Authorization: Basic …`, verified by the application's [`Verify`] hook.
///
/// The challenge is `Basic realm="…", charset="UTF-8"`. Credentials that are not base64,
/// not UTF-8, have no `:` or contain control characters are `basic_malformed`; an empty
/// user-id is allowed (RFC 7617) and reaches the hook. Verify password hashes with the
/// application's own crate (argon2, bcrypt) inside the hook, and for an unknown user still
/// run one hash check against a dummy hash so the two failures take the same time.
///
/// Basic sends the password itself, readable by anyone on the way unless the connection is
/// encrypted (RFC 7617 §4). When Basic credentials come from another host over a
/// connection not known to be TLS, the layer logs it once, at WARN, with the hint
/// `basic_over_plaintext`, and answers the request as always. "Another host": axum's
/// `ConnectInfo<SocketAddr>` (serve with `into_make_service_with_connect_info`) names a
/// peer that is not a loopback address; without it nothing is logged. "Not known to be
/// TLS": the request URI says `http`, or names no scheme (ordinary HTTP/1.1) and no proxy
/// in front said https (`X-Forwarded-Proto: https`, `Forwarded: proto=https`,
/// `X-Forwarded-Ssl: on`, `Front-End-Https: on`). When this server ends TLS itself, call
/// [`AuthDiagnostics::served_over_tls`](crate::AuthDiagnostics::served_over_tls).
#[derive(Clone)]
pub struct BasicAuthenticator {
    verify: Arc<dyn Verify<BasicCredentials>>,
}

impl BasicAuthenticator {
    /// Basic verified by `verify`.
    #[must_use]
    pub fn new(verify: impl Verify<BasicCredentials>) -> Self {
        Self {
            verify: Arc::new(verify),
        }
    }

    fn start(&self, credentials: BasicCredentials) -> AuthFuture {
        self.verify.verify(credentials)
    }
}

impl fmt::Debug for BasicAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BasicAuthenticator")
    }
}

impl AuthScheme for BasicAuthenticator {
    fn kind(&self) -> Scheme {
        Scheme::Basic
    }

    fn how_to_send(&self) -> std::borrow::Cow<'static, str> {
        "`Authorization: Basic base64(user:password)`".into()
    }

    fn find(&self, ev: &Evidence<'_>, place: Place) -> Option<Decision> {
        if place != Place::Authorization {
            return None;
        }
        let rest = ev.spoken(Scheme::Basic)?;
        Some(match token(rest).and_then(decode_basic) {
            Ok(creds) => {
                let (user, empty) = (creds.user.clone(), creds.password.is_empty());
                let fut = self.start(creds);
                let pending = Pending::new(fut, self, Location::Authorization, rest.as_bytes());
                Decision::Pending(pending.user(user, empty))
            }
            Err(f) => Decision::Rejected(
                f.location(Location::Authorization)
                    .fingerprint(fingerprint(rest.as_bytes()))
                    .received(Some("Basic")),
            ),
        })
    }

    /// RFC 7617: credentials that cannot be decoded are a 401 with a fresh Basic
    /// challenge, also when the bytes after `Basic ` are not even text.
    fn unreadable(&self, failure: AuthFailure) -> AuthFailure {
        failure.reason_now(Reason::BasicMalformed)
    }

    fn challenge(&self, c: Challenge, _: &AuthFailure, _: DetailMode) -> Challenge {
        c.quoted_param("charset", "UTF-8")
    }
}

/// The token68 after `Basic `.
fn token(rest: &str) -> Result<&str, AuthFailure> {
    if rest.is_empty() {
        return Err(
            AuthFailure::new(Reason::BasicMalformed).detail("`Basic` is followed by nothing")
        );
    }
    if rest.contains([' ', '\t']) || !is_token68(rest) {
        return Err(AuthFailure::new(Reason::BasicMalformed)
            .detail("the Basic credentials are not one base64 value"));
    }
    Ok(rest)
}

/// Decodes the token68 after `Basic ` per RFC 7617 §2 (UTF-8, split at the first `:`).
/// An empty user-id is allowed (RFC 7617 permits it; some clients send a token as the
/// password of an empty user): the application's verifier decides.
pub(crate) fn decode_basic(token: &str) -> Result<BasicCredentials, AuthFailure> {
    let malformed = |detail: &str| AuthFailure::new(Reason::BasicMalformed).detail(detail);
    if token.len() > (MAX_USER + MAX_PASSWORD + 1).div_ceil(3) * 4 {
        return Err(malformed("the Basic credentials are longer than allowed"));
    }
    let bytes = STANDARD
        .decode(token)
        .or_else(|_| STANDARD_NO_PAD.decode(token))
        .map_err(|_| malformed("the Basic credentials are not base64"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| malformed("the decoded Basic credentials are not UTF-8"))?;
    let Some((user, password)) = text.split_once(':') else {
        return Err(malformed(
            "the decoded Basic credentials have no `:` between user and password",
        ));
    };
    if user.len() > MAX_USER || password.len() > MAX_PASSWORD {
        return Err(malformed(&format!(
            "the Basic user-id or password is longer than allowed ({MAX_USER} and \
             {MAX_PASSWORD} bytes)"
        )));
    }
    if user.chars().chain(password.chars()).any(char::is_control) {
        return Err(malformed(
            "the decoded Basic credentials contain control characters",
        ));
    }
    Ok(BasicCredentials {
        user: user.to_owned(),
        password: Secret::new(password),
    })
}

/// Whether `rest` (after `Basic `) is really a token: a JWT as is, or base64 of one.
pub(crate) fn wraps_token(rest: &str) -> bool {
    if looks_like_jwt(rest) {
        return true;
    }
    STANDARD
        .decode(rest)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .is_some_and(|s| {
            let s = s.trim();
            looks_like_jwt(s) || s.split_once(':').is_some_and(|(_, p)| looks_like_jwt(p))
        })
}

/// `f` with what a token sent as Basic means: the hint code and how to send it instead.
pub(crate) fn with_wrapped_token_hint(f: AuthFailure) -> AuthFailure {
    f.tag(crate::evidence::hint::BASIC_WRAPPED_TOKEN)
        .hint("A token was sent with the Basic scheme: send it as `Authorization: Bearer <token>`.")
}

/// Why the wrapped service may have refused `Basic <rest>`: a token sent as Basic, a
/// value that does not decode, or credentials it did not accept. Nothing is verified.
pub(crate) fn diagnose(rest: &str) -> AuthFailure {
    if wraps_token(rest) {
        return with_wrapped_token_hint(
            AuthFailure::new(Reason::SchemeNotAccepted)
                .detail("a token was sent with the Basic scheme"),
        );
    }
    match token(rest).and_then(decode_basic) {
        Ok(c) => AuthFailure::new(Reason::CredentialsInvalid)
            .user(&unverified_user(&c.user))
            .detail("the application rejected the Basic credentials"),
        Err(f) => f,
    }
}

/// The `hints` code of the Basic-over-plain-http warning.
pub(crate) const HINT_PLAINTEXT: &str = "basic_over_plaintext";

/// Whether Basic credentials may have crossed a network in the clear: axum's
/// `ConnectInfo<SocketAddr>` names a peer that is not this machine (no peer known, no
/// answer), and the request is not known to be TLS. `uri` (the one the client sent) saying
/// `http` (HTTP/2's `:scheme`, an absolute-form target) is certain plaintext. An HTTP/1.1
/// origin-form target names no scheme: then a sign of https from a proxy in front
/// ([`https_in_front`]) means TLS, and its absence is taken as plaintext. Those headers
/// only ever silence the hint, and where the layer has trusted proxies they are believed
/// from those only; TLS ended in this process is said with
/// `AuthDiagnostics::served_over_tls`, which the layer checks before calling this.
pub(crate) fn over_plaintext(
    uri: &http::Uri,
    headers: &http::HeaderMap,
    extensions: &http::Extensions,
    proxies: &crate::proxy::TrustedProxies,
) -> bool {
    use axum::extract::ConnectInfo;
    let Some(ConnectInfo(peer)) = extensions.get::<ConnectInfo<std::net::SocketAddr>>() else {
        return false;
    };
    let ip = match peer.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() {
        return false;
    }
    match uri.scheme() {
        Some(s) if *s == http::uri::Scheme::HTTP => true,
        Some(_) => false,
        None => {
            let believed = proxies.is_empty() || proxies.peer(extensions).is_trusted();
            !(believed && https_in_front(headers))
        }
    }
}

/// How many field lines of each forwarding header are read, and how many bytes of each:
/// they come from the client, and one https among them is all that is looked for.
const FORWARDED_LINES: usize = 8;
const FORWARDED_BYTES: usize = 1024;

/// Whether a proxy in front says the client reached it over https: `X-Forwarded-Proto:
/// https`, `Forwarded: proto=https` (RFC 7239, in any element), `X-Forwarded-Ssl: on` or
/// `Front-End-Https: on`, names and values in any case. A client can send these too, so
/// they are only ever used to say nothing.
fn https_in_front(headers: &http::HeaderMap) -> bool {
    let values = |name: &str| {
        headers
            .get_all(name)
            .into_iter()
            .take(FORWARDED_LINES)
            .filter_map(|v| v.to_str().ok())
            .filter(|v| v.len() <= FORWARDED_BYTES)
    };
    let https = |v: &str| v.trim().trim_matches('"').eq_ignore_ascii_case("https");
    let on = |v: &str| v.trim().eq_ignore_ascii_case("on");
    values("x-forwarded-proto").any(|v| v.split(',').any(https))
        || values("forwarded").any(|v| {
            v.split([',', ';']).any(|pair| {
                pair.split_once('=')
                    .is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case("proto") && https(v))
            })
        })
        || values("x-forwarded-ssl").any(on)
        || values("front-end-https").any(on)
}

/// Says, at WARN, that Basic credentials arrived from another host over a connection not
/// known to be TLS (RFC 7617 §4: Basic "SHOULD NOT be used" without HTTPS). Nothing of the credential or
/// the peer is logged; the request is answered as always.
pub(crate) fn warn_plaintext(request_id: &str, method: &http::Method, path: &str) {
    tracing::warn!(
        target: "auth_diagnostics",
        hints = HINT_PLAINTEXT,
        request_id,
        method = method.as_str(),
        path = crate::sanitize::cap_to(&crate::snapshot::loggable_path(path), 256).as_str(),
        "Basic credentials arrived from another host over a connection not known to be TLS \
         (plain http, or no https in the request URI, X-Forwarded-Proto or Forwarded): the \
         password may have crossed the network readable by anyone on the way (RFC 7617 §4). \
         Serve this route over https only. If this server ends TLS itself, call \
         AuthDiagnostics::served_over_tls(); behind a proxy that ends TLS, have it send \
         X-Forwarded-Proto: https. Said once per layer"
    );
}
