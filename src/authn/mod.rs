//! Authenticators, one file per scheme, and the decision of which one a request goes to.

pub(crate) mod jwt;

use crate::credentials::{is_token68, looks_like_jwt, parse_authorization, Parsed, Scan};
use crate::failure::{AuthFailure, Location};
use crate::reason::Reason;
use crate::sanitize::{cap, fingerprint};
use http::{HeaderMap, Uri};
use jwt::JwtAuthenticator;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::Arc;

/// The authenticated party, put into request extensions on success.
///
/// Handlers take it as an extractor:
///
/// ```
/// use auth_diagnostics::Principal;
///
/// async fn me(principal: Principal) -> String {
///     format!("hello {}", principal.id().unwrap_or("anonymous"))
/// }
/// # let _ = me;
/// ```
#[derive(Debug, Clone)]
pub struct Principal {
    scheme: &'static str,
    id: Option<String>,
    claims: Option<Arc<Value>>,
}

impl Principal {
    /// A principal authenticated by `scheme` (e.g. `"Bearer"`), identified by `id`.
    pub fn new(scheme: &'static str, id: impl Into<String>) -> Self {
        Self {
            scheme,
            id: Some(id.into()),
            claims: None,
        }
    }

    pub(crate) fn from_jwt(claims: Map<String, Value>) -> Self {
        let id = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        Self {
            scheme: "Bearer",
            id,
            claims: Some(Arc::new(Value::Object(claims))),
        }
    }

    /// The scheme that authenticated the request.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// The subject: `sub` of a JWT, the user name of Basic, the key's owner.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The verified JWT claims, when a JWT authenticated the request.
    pub fn claims(&self) -> Option<&Map<String, Value>> {
        self.claims.as_deref().and_then(Value::as_object)
    }

    /// The verified JWT claims as one JSON value (an object).
    pub fn claims_value(&self) -> Option<&Value> {
        self.claims.as_deref()
    }

    /// The granted scopes: the space-separated `scope` claim and the `scp` claim
    /// (string or array).
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        let claims = self.claims();
        let get = move |name: &str| claims.and_then(|c| c.get(name));
        words(get("scope"))
            .chain(words(get("scp")))
            .chain(array(get("scp")))
            .chain(array(get("scope")))
    }

    /// Whether `scope` is granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

fn words(v: Option<&Value>) -> impl Iterator<Item = &str> {
    let s = v.and_then(Value::as_str).unwrap_or("");
    s.split(' ').filter(|w| !w.is_empty())
}

fn array(v: Option<&Value>) -> impl Iterator<Item = &str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// A configured way to authenticate. The order of configuration is the order of
/// challenges, except that Basic always comes first (RFC 9110 §11.3).
#[derive(Clone, Debug)]
pub(crate) enum Scheme {
    Bearer(Arc<JwtAuthenticator>),
}

impl Scheme {
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Bearer(_) => "Bearer",
        }
    }
}

fn expected_names(schemes: &[Scheme]) -> Cow<'static, str> {
    match schemes {
        [one] => Cow::Borrowed(one.name()),
        many => Cow::Owned(many.iter().map(Scheme::name).collect::<Vec<_>>().join(", ")),
    }
}

/// Decides where the request's credential is, hands it to the matching scheme, and
/// names the transport problem when there is none to hand over.
pub(crate) fn authenticate(
    headers: &HeaderMap,
    uri: &Uri,
    schemes: &[Scheme],
) -> Result<Principal, AuthFailure> {
    let scan = Scan::new(headers, uri);
    let expected = || expected_names(schemes);
    let fail = |reason: Reason, location: Location| {
        let mut f = AuthFailure::new(reason).with_location(location);
        f.facts.expected_scheme = Some(expected());
        f
    };

    if scan.authorization_count > 1 {
        return Err(
            fail(Reason::CredentialsConflict, Location::Authorization).detail(format!(
                "the request has {} Authorization header fields; send exactly one",
                scan.authorization_count
            )),
        );
    }
    if let Some(raw) = scan.authorization() {
        if let Some((name, _)) = scan.query {
            return Err(fail(Reason::CredentialsConflict, Location::Authorization)
                .detail(format!(
                "the request has an Authorization header and a `{name}` query parameter; send one"
            )));
        }
        let failure = match parse_authorization(raw) {
            Parsed::Invalid(why) => fail(Reason::AuthorizationMalformed, Location::Authorization)
                .detail(why)
                .with_fingerprint(fingerprint(raw)),
            Parsed::Bare(token) => {
                let mut f = fail(Reason::SchemePrefixMissing, Location::Authorization)
                    .with_fingerprint(fingerprint(token.as_bytes()));
                f = f.detail(if looks_like_jwt(token) {
                    "the Authorization value is a bare JWT without `Bearer `"
                } else {
                    "the Authorization value is a bare token without a scheme"
                });
                if let Some(t) = jwt::inspect(token) {
                    f = f.with_token(t);
                }
                f
            }
            Parsed::Scheme { scheme, rest } => {
                let matched = schemes
                    .iter()
                    .find(|s| s.name().eq_ignore_ascii_case(scheme));
                match matched {
                    Some(Scheme::Bearer(jwt)) => match bearer(jwt, rest) {
                        Ok(principal) => return Ok(principal),
                        Err(f) => f,
                    },
                    None => {
                        let mut f = fail(Reason::SchemeNotAccepted, Location::Authorization)
                            .detail(format!(
                                "Authorization uses {}, this resource accepts {}",
                                cap(scheme),
                                expected()
                            ))
                            .with_fingerprint(fingerprint(rest.as_bytes()));
                        f.facts.received_scheme = Some(cap(scheme));
                        f
                    }
                }
            }
        };
        return Err(failure);
    }

    let wrong = |location: Location, secret: &[u8], what: String| {
        fail(Reason::CredentialsWrongLocation, location)
            .detail(format!(
                "{what}, but this resource reads only the Authorization header"
            ))
            .with_fingerprint(fingerprint(secret))
    };
    if let Some((name, value)) = scan.query {
        return Err(wrong(
            Location::Query(Cow::Borrowed(name)),
            value.as_bytes(),
            format!("a credential was sent in the `{name}` query parameter"),
        )
        .hint("Query strings end up in logs and browser history: send the token in `Authorization: Bearer <token>`."));
    }
    if let Some((name, value)) = scan.header {
        return Err(wrong(
            Location::Header(Cow::Borrowed(name)),
            value,
            format!("a credential was sent in the `{name}` header"),
        ));
    }
    if let Some((name, value)) = scan.cookie {
        return Err(wrong(
            Location::Cookie(Cow::Owned(cap(name).to_string())),
            value.as_bytes(),
            format!("a credential was sent in the `{}` cookie", cap(name)),
        ));
    }

    let mut f = AuthFailure::new(Reason::CredentialsMissing)
        .detail(format!("no credentials; expected {}", expected()));
    f.facts.expected_scheme = Some(expected());
    if scan.proxied {
        f = f.hint(
            "The request came through a proxy (Forwarded, X-Forwarded-* or Via is present) \
             and carries no Authorization: the proxy may have stripped it.",
        );
    }
    Err(f)
}

/// The credentials after `Bearer `: one token68 value, then the JWT checks.
fn bearer(jwt: &JwtAuthenticator, rest: &str) -> Result<Principal, AuthFailure> {
    let malformed = |detail: &str| {
        let mut f = AuthFailure::new(Reason::AuthorizationMalformed)
            .with_location(Location::Authorization)
            .detail(detail);
        f.facts.expected_scheme = Some(Cow::Borrowed("Bearer"));
        f
    };
    if rest.is_empty() {
        return Err(malformed("`Bearer` is followed by no token"));
    }
    if let Some((first, _)) = rest.split_once([' ', '\t']) {
        let f = if first.eq_ignore_ascii_case("bearer") {
            malformed("the scheme is doubled: `Bearer Bearer <token>`")
                .hint("Remove the second `Bearer `: the client or a proxy added the prefix twice.")
        } else {
            malformed("the Bearer credentials contain whitespace; a token is one token68 value")
        };
        return Err(f.with_fingerprint(fingerprint(rest.as_bytes())));
    }
    if !is_token68(rest) {
        let detail = if rest.starts_with('"') {
            "the token is quoted; send it without quotes"
        } else {
            "the token has characters outside token68"
        };
        return Err(malformed(detail).with_fingerprint(fingerprint(rest.as_bytes())));
    }
    match jwt.verify(rest) {
        Ok(v) => Ok(Principal::from_jwt(v.claims)),
        Err(f) => {
            let mut f = f
                .with_location(Location::Authorization)
                .with_fingerprint(fingerprint(rest.as_bytes()));
            f.facts.expected_scheme = Some(Cow::Borrowed("Bearer"));
            Err(f)
        }
    }
}
