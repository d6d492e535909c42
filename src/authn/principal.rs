//! [`Principal`]: who the request is from.

use crate::scheme::Scheme;
use serde_json::{Map, Value};
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
    scheme: Option<Scheme>,
    id: Option<String>,
    claims: Option<Arc<Value>>,
    scopes: Vec<String>,
    session_id: Option<String>,
}

impl Principal {
    /// A principal identified by `id` (a user name, a key's owner, a session's user).
    /// The layer records which scheme authenticated it.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            scheme: None,
            id: Some(id.into()),
            claims: None,
            scopes: Vec::new(),
            session_id: None,
        }
    }

    /// Grants `scopes` (for [`RequireScope`](crate::authz::RequireScope) on non-JWT schemes).
    #[must_use]
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    pub(crate) fn from_jwt(claims: Map<String, Value>) -> Self {
        let id = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        Self {
            scheme: Some(Scheme::Bearer),
            id,
            claims: Some(Arc::new(Value::Object(claims))),
            scopes: Vec::new(),
            session_id: None,
        }
    }

    /// The same claims, identified by `id` (an introspected token's `sub`, else its
    /// `username`, else its `client_id`).
    pub(crate) fn with_id(mut self, id: Option<String>) -> Self {
        self.id = id;
        self
    }

    pub(crate) fn with_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = Some(scheme);
        self
    }

    /// The scheme that authenticated the request, once the layer has (`None` for a
    /// principal a verifier has just built and not yet handed back).
    pub fn scheme(&self) -> Option<Scheme> {
        self.scheme
    }

    /// The subject: `sub` of a JWT, or the id the application's verifier gave.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The verified JWT claims, when a JWT authenticated the request.
    pub fn claims(&self) -> Option<&Map<String, Value>> {
        self.claims.as_deref().and_then(Value::as_object)
    }

    /// The verified JWT claims as one JSON value (an object), for the `Claims` extractor.
    pub(crate) fn claims_value(&self) -> Option<&Value> {
        self.claims.as_deref()
    }

    /// Who this is, for a refusal that comes after the credentials verified.
    pub(crate) fn verified(&self) -> crate::failure::Verified {
        crate::failure::Verified {
            id: self.id.clone(),
            claims: self.claims.clone(),
            scheme: self.scheme,
        }
    }

    /// The verified claims, shared.
    pub(crate) fn claims_arc(&self) -> Option<Arc<Value>> {
        self.claims.clone()
    }

    /// The granted scopes: those given with [`Principal::with_scopes`], the space-separated
    /// `scope` claim and the `scp` claim (string or array).
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        let claims = self.claims();
        let get = move |name: &str| claims.and_then(|c| c.get(name));
        self.scopes
            .iter()
            .map(String::as_str)
            .chain(words(get("scope")))
            .chain(words(get("scp")))
            .chain(array(get("scp")))
            .chain(array(get("scope")))
    }

    /// Whether `scope` is granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// Names the session this principal comes from, so the layer's revocation list
    /// (`AuthDiagnostics::revocation`) can refuse it once that session is revoked (by
    /// its id, or by the principal's [`id`](Self::id) as subject): 401 `session_revoked`.
    /// For a session verifier ([`SessionAuthenticator`](crate::session::SessionAuthenticator)),
    /// which knows the session's id; a token's session is its verified `sid` claim.
    ///
    /// ```
    /// use auth_diagnostics::Principal;
    ///
    /// let p = Principal::new("alice").with_session_id("session-1");
    /// assert_eq!(p.session_id(), Some("session-1"));
    /// ```
    #[must_use]
    pub fn with_session_id(mut self, sid: impl Into<String>) -> Self {
        self.session_id = Some(sid.into());
        self
    }

    /// The session id given with [`Principal::with_session_id`].
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The heap this principal holds, as a malloc-style allocator counts it (see
    /// [`chunk`]): what the verified-token cache counts an entry's claims for. Shared
    /// claims are counted whole: the cache's copy is the one that lives on.
    pub(crate) fn heap_bytes(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, |s| chunk(s.capacity()));
        let scopes = chunk(self.scopes.capacity() * size_of::<String>())
            + self
                .scopes
                .iter()
                .map(|s| chunk(s.capacity()))
                .sum::<usize>();
        let claims = self.claims.as_deref().map_or(0, |v| {
            chunk(2 * size_of::<usize>() + size_of::<Value>()) + json_heap(v)
        });
        text(&self.id) + text(&self.session_id) + scopes + claims
    }
}

/// What an allocation of `n` bytes takes from the heap: glibc's malloc rounds a request up
/// to 16 bytes with 8 bytes of header, 32 at least. Other allocators differ by little.
pub(crate) fn chunk(n: usize) -> usize {
    match n {
        0 => 0,
        n => ((n + 8 + 15) & !15).max(32),
    }
}

/// The heap a JSON value holds below itself. An object is serde_json's `BTreeMap`: nodes
/// of 11 entries (keys and values inline), and for more than one leaf their parents.
fn json_heap(v: &Value) -> usize {
    const NODE: usize = 8 + 11 * (size_of::<String>() + size_of::<Value>()) + 4;
    match v {
        Value::String(s) => chunk(s.capacity()),
        Value::Array(a) => {
            chunk(a.capacity() * size_of::<Value>()) + a.iter().map(json_heap).sum::<usize>()
        }
        Value::Object(m) => {
            let leaves = m.len().div_ceil(11);
            let parents = if leaves > 1 { leaves.div_ceil(6) } else { 0 };
            let nodes = leaves * chunk(NODE) + parents * chunk(NODE + 12 * 8);
            nodes
                + m.iter()
                    .map(|(k, v)| chunk(k.capacity()) + json_heap(v))
                    .sum::<usize>()
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
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
