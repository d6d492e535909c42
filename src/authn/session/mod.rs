//! Session cookies, verified by the application's [`Verify`] hook; `browser.rs` holds what
//! browsers need from such a route (the login page, the origin check).

pub(crate) mod browser;

use super::{named, AuthScheme, Decision, Pending, Place};
use crate::authn::verify::{AuthFuture, Verify};
use crate::challenge::Challenge;
use crate::evidence::{hint, CookieLookup, Evidence};
use crate::failure::{AuthFailure, Location};
use crate::reason::{DetailMode, Reason};
use crate::sanitize::{cap, fingerprint};
use crate::scheme::Scheme;
use crate::secret::Secret;
use browser::SessionPages;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Longest session cookie value we accept, in bytes.
const MAX_SESSION: usize = 4096;

/// A session id taken from the configured cookie.
#[derive(Debug, Clone)]
pub struct SessionCookie(pub Secret);

/// Accepts a session cookie, verified by the application's [`Verify`] hook, which answers
/// `session_invalid` (unknown or tampered) or `session_expired`.
///
/// Cookies have no HTTP authentication scheme; a 401 carries
/// `WWW-Authenticate: Cookie realm="…", name="<cookie>"`, so a client (and a person
/// reading the answer) sees which cookie is expected. Answers to requests it authenticated
/// are made `private` for shared caches.
#[derive(Clone)]
pub struct SessionAuthenticator {
    cookie: String,
    verify: Arc<dyn Verify<SessionCookie>>,
    pages: SessionPages,
}

impl SessionAuthenticator {
    /// Sessions in the cookie `cookie`, verified by `verify`.
    #[must_use]
    pub fn new(cookie: impl Into<String>, verify: impl Verify<SessionCookie>) -> Self {
        Self {
            cookie: cookie.into(),
            verify: Arc::new(verify),
            pages: SessionPages {
                origin_check: true,
                ..SessionPages::default()
            },
        }
    }

    /// Sends a page navigation that fails authentication to `url` (`303 See Other`), with
    /// `return_to` the path the browser asked for (percent-encoded, always a path of this
    /// site). A navigation is a request with `Sec-Fetch-Mode: navigate`, or, from a browser
    /// without Fetch Metadata, one whose `Accept` prefers `text/html` to JSON; `fetch`,
    /// XHR and other clients keep the 401 with its challenge and problem body. The failure
    /// is logged either way. Your login page must check `return_to` again before it
    /// redirects to it.
    ///
    /// # Configuration errors
    /// A `url` that is neither a path of this site (`/login`) nor an absolute
    /// `http(s)` URL, or has spaces or control characters, is reported when the layer is
    /// built ([`AuthDiagnostics::try_build`](crate::AuthDiagnostics::try_build)).
    #[must_use]
    pub fn login_url(mut self, url: impl Into<String>) -> Self {
        self.pages.login_url = Some(url.into().into());
        self
    }

    /// Origins besides the request's own (`https://app.example`) whose pages may send
    /// unsafe requests (POST, PUT, PATCH, DELETE, …) with this session cookie.
    ///
    /// By default an unsafe request the session cookie authenticated must carry an
    /// `Origin` equal to its own (`Host`), or, without `Origin`, `Sec-Fetch-Site:
    /// same-origin`; otherwise it is refused with 403 `cross_site_request` (a cross-site
    /// request forgery, RFC 6750 §5.3). Same-origin, not same-site: a sibling subdomain or
    /// another port may be someone else's application. Clients that send neither header
    /// (not browsers) pass. `null` is never an origin to trust: every sandboxed page sends
    /// it.
    #[must_use]
    pub fn trusted_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        // Checked (and normalised) when the layer is built.
        self.pages
            .trusted_origins
            .extend(origins.into_iter().map(Into::into));
        self
    }

    /// Turns the origin check off: only for an application that checks a CSRF token on
    /// every unsafe request itself.
    #[must_use]
    pub fn without_origin_check(mut self) -> Self {
        self.pages.origin_check = false;
        self
    }

    /// The browser settings, for the layer.
    pub(crate) fn pages(&self) -> &SessionPages {
        &self.pages
    }

    fn start(&self, cookie: SessionCookie) -> AuthFuture {
        self.verify.verify(cookie)
    }

    fn invalid(&self, detail: impl Into<String>) -> AuthFailure {
        AuthFailure::new(Reason::SessionInvalid)
            .location(Location::Cookie(named(&self.cookie)))
            .detail(detail)
    }
}

impl fmt::Debug for SessionAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionAuthenticator")
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

impl AuthScheme for SessionAuthenticator {
    fn kind(&self) -> Scheme {
        Scheme::Cookie
    }

    fn describe(&self) -> Cow<'static, str> {
        Cow::Owned(format!("cookie {}", cap(&self.cookie)))
    }

    fn how_to_send(&self) -> std::borrow::Cow<'static, str> {
        format!("the `{}` cookie", cap(&self.cookie)).into()
    }

    fn private(&self) -> bool {
        true
    }

    fn find(&self, ev: &Evidence<'_>, place: Place) -> Option<Decision> {
        if place != Place::Cookie {
            return None;
        }
        let f = match ev.cookie_named(&self.cookie) {
            CookieLookup::NotFound => return None,
            // Not read, so not known to be missing: say why.
            over @ CookieLookup::OverCap { .. } => self
                .invalid(over.over_cap_text().unwrap_or_default())
                .tag(hint::COOKIE_OVER_CAP)
                .hint("Send fewer or smaller cookies: the browser holds more for this site than a server reads."),
            CookieLookup::NotUtf8 { value } => self
                .invalid("the session cookie's value is not UTF-8")
                .fingerprint(fingerprint(value)),
            CookieLookup::Found { value, .. } if value.len() > MAX_SESSION => self
                .invalid("the session cookie is longer than 4 KiB")
                .fingerprint(fingerprint(value.as_bytes())),
            CookieLookup::Found { value, .. } => {
                let fut = self.start(SessionCookie(Secret::new(value)));
                let location = Location::Cookie(named(&self.cookie));
                return Some(Decision::Pending(Pending::new(
                    fut,
                    self,
                    location,
                    value.as_bytes(),
                )));
            }
        };
        Some(Decision::Rejected(f))
    }

    fn challenge(&self, c: Challenge, _: &AuthFailure, _: DetailMode) -> Challenge {
        c.quoted_param("name", &self.cookie)
    }
}
