//! Session cookies.

use crate::authn::verify::{AuthFuture, Verify};
use crate::secret::Secret;
use std::fmt;
use std::sync::Arc;

/// Longest session cookie value we accept, in bytes.
pub(crate) const MAX_SESSION: usize = 4096;

/// A session id taken from the configured cookie.
#[derive(Debug, Clone)]
pub struct SessionCookie(pub Secret);

/// Accepts a session cookie, verified by the application's [`Verify`] hook, which answers
/// `session_invalid` (unknown or tampered) or `session_expired`.
///
/// Cookies have no HTTP authentication scheme; a 401 carries
/// `WWW-Authenticate: Cookie realm="…", name="<cookie>"`, so a client (and a person
/// reading the answer) sees which cookie is expected.
#[derive(Clone)]
pub struct SessionAuthenticator {
    pub(crate) cookie: String,
    verify: Arc<dyn Verify<SessionCookie>>,
}

impl SessionAuthenticator {
    /// Sessions in the cookie `cookie`, verified by `verify`.
    pub fn new(cookie: impl Into<String>, verify: impl Verify<SessionCookie>) -> Self {
        Self {
            cookie: cookie.into(),
            verify: Arc::new(verify),
        }
    }

    pub(crate) fn start(&self, cookie: SessionCookie) -> AuthFuture {
        self.verify.verify(cookie)
    }
}

impl fmt::Debug for SessionAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionAuthenticator")
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}
