//! Basic (RFC 7617).

use crate::authn::verify::{AuthFuture, Verify};
use crate::failure::AuthFailure;
use crate::reason::Reason;
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
    /// The user-id: the text before the first `:`.
    pub user: String,
    /// The password: everything after the first `:` (it may contain `:`).
    pub password: Secret,
}

/// Accepts `Authorization: Basic …`, verified by the application's [`Verify`] hook.
///
/// The challenge is `Basic realm="…", charset="UTF-8"`. Credentials that are not base64,
/// not UTF-8, have no `:` or contain control characters are `basic_malformed`.
/// Verify password hashes with the application's own crate (argon2, bcrypt) inside the
/// hook, and for an unknown user still run one hash check against a dummy hash so the
/// two failures take the same time.
#[derive(Clone)]
pub struct BasicAuthenticator {
    verify: Arc<dyn Verify<BasicCredentials>>,
}

impl BasicAuthenticator {
    /// Basic verified by `verify`.
    pub fn new(verify: impl Verify<BasicCredentials>) -> Self {
        Self {
            verify: Arc::new(verify),
        }
    }

    pub(crate) fn start(&self, credentials: BasicCredentials) -> AuthFuture {
        self.verify.verify(credentials)
    }
}

impl fmt::Debug for BasicAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BasicAuthenticator")
    }
}

/// Decodes the token68 after `Basic ` per RFC 7617 §2 (UTF-8, split at the first `:`).
/// An empty user-id is allowed (RFC 7617 permits it; some clients send a token as the
/// password of an empty user): the application's verifier decides.
pub fn decode_basic(token: &str) -> Result<BasicCredentials, AuthFailure> {
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
