//! `auth-diagnostics diff A B`: the differences between two requests that matter for
//! authentication ("works in Postman, fails in my app").
//!
//! Secrets are never printed: a token, password, API key or cookie value is shown as a
//! short hash (`hmac:` and 8 hex digits, HMAC-SHA256 under a key drawn at random for this
//! run: equal values hash equal within the run, hashes differ between runs and cannot be
//! brute-forced offline) or as "same"/"different". A token's claims
//! (decoded without verification) are compared and shown, as `decode` shows them.
//!
//! `--json` prints one object:
//! - `a`, `b`: `{method, scheme, host, path, query_names, credentials}`, each credential
//!   `{kind, name, scheme, fingerprint}`;
//! - `differences`: `[{field, a, b, why}]`; fields: `method`, `url_scheme`, `host`, `path`,
//!   `origin`, `auth_scheme`, `credential_location`, `credential`, `basic_user`,
//!   `claim.iss`, `claim.aud`, `claim.sub`, `claim.scope`, `claim.exp`, `claim.typ`,
//!   `claim.alg`, `cookies`, `cookie.<name>`, `proxy`, `dpop_proof`;
//! - `same`: the fields compared and found equal;
//! - `notes`: things worth knowing about how the inputs were read;
//! - `fingerprint_note`: that hashes are keyed for this run only;
//! - `ok`: true when no difference was found (exit 0).

use super::decode::{decode_unverified, scopes};
use super::input::{
    fingerprint, paint, parse_request, print_json, read_text, Request, FINGERPRINT_NOTE,
};
use super::{DiffArgs, Out, Outcome, UsageError};
use crate::text::{human_duration, now};
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// One credential a request carries, as located; its value is kept only to be hashed.
pub(crate) struct Credential {
    /// `authorization`, `proxy_authorization`, `query`, `header`, `cookie` or
    /// `client_certificate` (curl `--cert`: mutual TLS).
    pub kind: &'static str,
    /// Where: `Authorization`, `?access_token`, `X-API-Key`, `cookie demo_session`.
    pub name: String,
    /// The `Authorization` scheme (`Bearer`, `Basic`, …), or none.
    pub scheme: Option<String>,
    /// The secret: never printed.
    value: String,
    /// For a Basic credential, the user name (not a secret).
    pub user: Option<String>,
    /// For a JWT: the unverified header and claims.
    pub jwt: Option<(Map<String, Value>, Map<String, Value>)>,
    /// For a JWT that is expired or not yet valid: words saying so.
    pub token_state: Option<String>,
}

/// Query parameters that carry a credential.
const QUERY_NAMES: &[&str] = &[
    "access_token",
    "api_key",
    "apikey",
    "api-key",
    "key",
    "token",
    "jwt",
    "auth",
    "id_token",
];
/// Headers besides `Authorization` that carry a credential.
const HEADER_NAMES: &[&str] = &[
    "x-api-key",
    "api-key",
    "apikey",
    "x-auth-token",
    "x-access-token",
    "x-token",
    "token",
    "x-amz-security-token",
    "private-token",
];

/// Every credential in `req`, in a fixed order.
pub(crate) fn credentials(req: &Request) -> Vec<Credential> {
    let mut out = Vec::new();
    for (kind, header) in [
        ("authorization", "authorization"),
        ("proxy_authorization", "proxy-authorization"),
    ] {
        for v in req.all(header) {
            out.push(from_authorization(kind, v));
        }
    }
    for (n, v) in &req.target.query {
        if QUERY_NAMES.contains(&n.to_ascii_lowercase().as_str()) {
            out.push(plain("query", format!("?{n}"), v));
        }
    }
    for (n, v) in &req.headers {
        if HEADER_NAMES.contains(&n.as_str()) {
            out.push(plain("header", header_case(n), v));
        }
    }
    for (name, value) in cookies(req) {
        out.push(plain("cookie", format!("cookie {name}"), &value));
    }
    if req.client_cert.is_some() {
        // The argument is not shown: `--cert file:passphrase` carries a secret.
        let mut c = plain("client_certificate", "TLS client certificate".into(), "");
        c.scheme = Some("mutual TLS (curl --cert)".into());
        out.push(c);
    }
    out
}

/// `x-api-key` → `X-Api-Key`, for display.
fn header_case(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Every cookie (`name`, `value`) of every `Cookie` header.
fn cookies(req: &Request) -> Vec<(String, String)> {
    req.all("cookie")
        .flat_map(|h| h.split(';'))
        .filter_map(|p| {
            let (n, v) = p.split_once('=')?;
            let n = n.trim();
            (!n.is_empty()).then(|| (n.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn plain(kind: &'static str, name: String, value: &str) -> Credential {
    let mut c = Credential {
        kind,
        name,
        scheme: None,
        value: value.to_owned(),
        user: None,
        jwt: None,
        token_state: None,
    };
    c.read_jwt(value);
    c
}

fn from_authorization(kind: &'static str, v: &str) -> Credential {
    let name = if kind == "authorization" {
        "Authorization"
    } else {
        "Proxy-Authorization"
    };
    let (scheme, rest) = match v.trim().split_once(' ') {
        Some((s, r)) => (s.to_owned(), r.trim()),
        None if v.starts_with("eyJ") => ("(none: a bare token)".to_owned(), v.trim()),
        None => (v.trim().to_owned(), ""),
    };
    let mut c = plain(kind, name.to_owned(), rest);
    if scheme.eq_ignore_ascii_case("basic") {
        c.user = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(|s| s.split(':').next().unwrap_or("").to_owned());
    }
    c.scheme = Some(scheme);
    c
}

impl Credential {
    /// Reads `value` as a JWT when it is one (unverified).
    fn read_jwt(&mut self, value: &str) {
        let Ok(d) = decode_unverified(value) else {
            return;
        };
        let now = now();
        let date = |n: &str| d.claims.get(n).and_then(crate::text::numeric_date);
        if let Some(exp) = date("exp").filter(|e| *e <= now) {
            let ago = human_duration(now.saturating_sub(exp).max(0) as u64);
            self.token_state = Some(format!("expired {ago} ago"));
        } else if let Some(nbf) = date("nbf").filter(|n| *n > now) {
            let wait = human_duration(nbf.saturating_sub(now).max(0) as u64);
            self.token_state = Some(format!("is not valid for another {wait}"));
        }
        self.jwt = Some((d.header, d.claims));
    }

    /// The value's fingerprint.
    pub(crate) fn fingerprint(&self) -> String {
        fingerprint(&self.value)
    }

    /// One line for people: where, which scheme, a fingerprint, what a JWT says.
    pub(crate) fn describe(&self) -> String {
        let mut s = self.name.clone();
        if let Some(scheme) = &self.scheme {
            s.push_str(&format!(": {scheme}"));
        }
        if let Some(user) = &self.user {
            s.push_str(&format!(
                " (user {user:?}, password {})",
                self.fingerprint()
            ));
        } else if !self.value.is_empty() {
            s.push_str(&format!(" ({})", self.fingerprint()));
        }
        if let Some((_, claims)) = &self.jwt {
            let get = |n: &str| claims.get(n).map(short).unwrap_or_else(|| "-".into());
            s.push_str(&format!(
                ", JWT iss={} aud={} sub={}",
                get("iss"),
                get("aud"),
                get("sub")
            ));
        }
        if let Some(state) = &self.token_state {
            s.push_str(&format!(", {state}"));
        }
        s
    }

    /// The JSON form: never the value.
    pub(crate) fn json(&self) -> Value {
        json!({"kind": self.kind, "name": self.name, "scheme": self.scheme,
               "fingerprint": self.fingerprint()})
    }
}

/// A JSON value as short text: strings bare, arrays joined by spaces.
fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(short).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    };
    s.chars().take(120).collect()
}

/// One difference.
struct Difference {
    field: String,
    a: String,
    b: String,
    why: &'static str,
}

/// The comparison being built.
#[derive(Default)]
struct Diff {
    differences: Vec<Difference>,
    same: Vec<String>,
}

impl Diff {
    fn compare(&mut self, field: &str, a: String, b: String, why: &'static str) {
        if a == b {
            self.same.push(field.to_owned());
        } else {
            self.differences.push(Difference {
                field: field.to_owned(),
                a,
                b,
                why,
            });
        }
    }
}

/// Runs `diff`.
pub(crate) fn run(args: &DiffArgs, out: &Out) -> Result<Outcome, UsageError> {
    let read = |file: &str, entry| -> Result<Request, UsageError> {
        parse_request(&read_text(file)?, entry).map_err(|e| UsageError(format!("{file}: {}", e.0)))
    };
    let a = read(&args.a, args.entry_a)?;
    let b = read(&args.b, args.entry_b)?;
    let (ca, cb) = (credentials(&a), credentials(&b));
    let mut d = Diff::default();
    compare_target(&mut d, &a, &b);
    compare_credentials(&mut d, &ca, &cb);
    compare_tokens(&mut d, &ca, &cb);
    compare_cookies(&mut d, &a, &b);
    compare_proxies(&mut d, &a, &b);
    let notes: Vec<String> = a
        .notes
        .iter()
        .map(|n| format!("A: {n}"))
        .chain(b.notes.iter().map(|n| format!("B: {n}")))
        .collect();
    if out.json {
        let v = json!({
            "a": summary(&a, &ca),
            "b": summary(&b, &cb),
            "differences": d.differences.iter().map(|x| json!({
                "field": x.field, "a": x.a, "b": x.b, "why": x.why})).collect::<Vec<_>>(),
            "same": d.same,
            "notes": notes,
            "fingerprint_note": FINGERPRINT_NOTE,
            "ok": d.differences.is_empty(),
        });
        print_json(&v);
    } else {
        print_text(&d, (&a, &ca), (&b, &cb), &notes, out.color);
    }
    Ok(if d.differences.is_empty() {
        Outcome::Fine
    } else {
        Outcome::Problems
    })
}

fn summary(r: &Request, creds: &[Credential]) -> Value {
    json!({
        "method": r.method,
        "scheme": r.target.scheme,
        "host": r.host(),
        "path": r.target.path,
        "query_names": r.target.query.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        "credentials": creds.iter().map(Credential::json).collect::<Vec<_>>(),
    })
}

fn or_none(v: Option<&str>) -> String {
    v.map_or_else(|| "(none)".to_owned(), str::to_owned)
}

fn compare_target(d: &mut Diff, a: &Request, b: &Request) {
    d.compare(
        "method",
        a.method.clone(),
        b.method.clone(),
        "a route may authenticate one method and not another; a browser's preflight is OPTIONS",
    );
    // A raw request names no scheme: nothing to compare then.
    if !a.target.scheme.is_empty() && !b.target.scheme.is_empty() {
        d.compare("url_scheme", a.target.scheme.clone(), b.target.scheme.clone(),
            "Secure cookies are not sent over http; a redirect from http to https may drop Authorization");
    }
    d.compare("host", a.host(), b.host(),
        "another host is another server, realm or audience; clients drop Authorization on a redirect to another host");
    d.compare(
        "path",
        a.target.path.clone(),
        b.target.path.clone(),
        "another route may need another scheme or scope",
    );
    d.compare("origin", or_none(a.header("origin")), or_none(b.header("origin")),
        "a cross-origin request (a browser) needs CORS, and cookies need SameSite and credentials: 'include'");
}

/// Where each credential sits, and which scheme: `Authorization: Bearer`, `?access_token`.
fn locations(creds: &[Credential]) -> String {
    let names: Vec<String> = creds
        .iter()
        .filter(|c| c.kind != "cookie")
        .map(|c| match &c.scheme {
            Some(s) => format!("{}: {s}", c.name),
            None => c.name.clone(),
        })
        .collect();
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}

fn compare_credentials(d: &mut Diff, ca: &[Credential], cb: &[Credential]) {
    let scheme = |c: &[Credential]| {
        or_none(
            c.iter()
                .find(|c| c.kind == "authorization")
                .and_then(|c| c.scheme.as_deref()),
        )
    };
    d.compare(
        "auth_scheme",
        scheme(ca),
        scheme(cb),
        "the server accepts the schemes its WWW-Authenticate lists; the wrong one is refused",
    );
    d.compare("credential_location", locations(ca), locations(cb),
        "servers read a token from one place (Authorization, usually); a query token or another header is not read, or is refused");
    for x in ca.iter().filter(|c| c.kind != "cookie") {
        let Some(y) = cb.iter().find(|y| y.name == x.name && y.kind == x.kind) else {
            continue;
        };
        let (fa, fb) = (x.fingerprint(), y.fingerprint());
        let field = format!("credential {}", x.name);
        if fa == fb {
            d.same.push(field);
        } else {
            d.differences.push(Difference { field, a: fa, b: fb,
                why: "different secret values: one of them may be stale, revoked or for another environment" });
        }
        if x.user.is_some() || y.user.is_some() {
            d.compare(
                "basic_user",
                or_none(x.user.as_deref()),
                or_none(y.user.as_deref()),
                "another user name",
            );
        }
    }
}

fn compare_tokens(d: &mut Diff, ca: &[Credential], cb: &[Credential]) {
    let jwt = |c: &[Credential]| c.iter().find_map(|c| c.jwt.clone());
    let (Some((ha, a)), Some((hb, b))) = (jwt(ca), jwt(cb)) else {
        return;
    };
    let claim = |m: &Map<String, Value>, n: &str| m.get(n).map_or_else(|| "(none)".into(), short);
    let whys: [(&str, &'static str); 3] = [
        (
            "iss",
            "another issuer: the server trusts its own only (and its keys)",
        ),
        (
            "aud",
            "another audience: a token for one API is refused by another",
        ),
        (
            "sub",
            "another subject (user or client): its permissions may differ",
        ),
    ];
    for (n, why) in whys {
        d.compare(&format!("claim.{n}"), claim(&a, n), claim(&b, n), why);
    }
    d.compare(
        "claim.scope",
        scopes(&a).join(" "),
        scopes(&b).join(" "),
        "other scopes: a route that needs a scope answers 403 insufficient_scope without it",
    );
    let state = |c: &[Credential]| {
        c.iter()
            .find(|c| c.jwt.is_some())
            .and_then(|c| c.token_state.clone())
            .unwrap_or_else(|| "valid now".into())
    };
    d.compare(
        "claim.exp",
        state(ca),
        state(cb),
        "an expired token is refused (token_expired)",
    );
    d.compare(
        "claim.typ",
        claim(&ha, "typ"),
        claim(&hb, "typ"),
        "another kind of token (an ID token or a DPoP proof is not an access token)",
    );
    d.compare(
        "claim.alg",
        claim(&ha, "alg"),
        claim(&hb, "alg"),
        "another signing algorithm: the server accepts only its keys' algorithms",
    );
}

fn compare_cookies(d: &mut Diff, a: &Request, b: &Request) {
    let (ka, kb) = (cookies(a), cookies(b));
    let names = |k: &[(String, String)]| {
        let mut n: Vec<&str> = k.iter().map(|(n, _)| n.as_str()).collect();
        n.sort_unstable();
        n.dedup();
        if n.is_empty() {
            "(none)".to_owned()
        } else {
            n.join(" ")
        }
    };
    d.compare("cookies", names(&ka), names(&kb),
        "a session cookie that is missing is no session (browsers drop cookies by SameSite, Secure, Domain and Path)");
    for (n, va) in &ka {
        let Some((_, vb)) = kb.iter().find(|(m, _)| m == n) else {
            continue;
        };
        d.compare(
            &format!("cookie.{n}"),
            fingerprint(va),
            fingerprint(vb),
            "another value of the same cookie: another session",
        );
    }
}

fn compare_proxies(d: &mut Diff, a: &Request, b: &Request) {
    let via = |r: &Request| {
        let mut parts: Vec<String> = r
            .headers
            .iter()
            .filter(|(n, _)| n == "forwarded" || n.starts_with("x-forwarded-") || n == "via")
            .map(|(n, v)| format!("{}: {v}", header_case(n)))
            .collect();
        if let Some(p) = &r.proxy {
            parts.push(format!("curl proxy {}", p.rsplit('@').next().unwrap_or(p)));
        }
        if parts.is_empty() {
            "(direct)".to_owned()
        } else {
            parts.join(", ")
        }
    };
    d.compare("proxy", via(a), via(b),
        "a proxy or load balancer may strip Authorization, or change the host and scheme the server sees");
    let dpop = |r: &Request| {
        if r.header("dpop").is_some() {
            "present"
        } else {
            "(none)"
        }
        .to_owned()
    };
    d.compare(
        "dpop_proof",
        dpop(a),
        dpop(b),
        "a DPoP-bound token needs a DPoP proof with every request",
    );
}

fn print_text(
    d: &Diff,
    a: (&Request, &[Credential]),
    b: (&Request, &[Credential]),
    notes: &[String],
    color: bool,
) {
    for (label, (r, creds)) in [("A", a), ("B", b)] {
        let scheme = if r.target.scheme.is_empty() {
            String::new()
        } else {
            format!("{}://", r.target.scheme)
        };
        outln!(
            "{} {} {scheme}{}{}",
            paint(color, "1", label),
            r.method,
            r.host(),
            r.target.path
        );
        if creds.is_empty() {
            outln!("  no credentials");
        }
        for c in creds {
            outln!("  {}", c.describe());
        }
    }
    if d.differences.is_empty() {
        outln!(
            "{}",
            paint(color, "32", "No difference that matters for authentication")
        );
    } else {
        outln!(
            "{}",
            paint(color, "1", "Differences that matter for authentication")
        );
    }
    for x in &d.differences {
        outln!("  {}", paint(color, "33", &x.field));
        outln!(
            "    A: {}\n    B: {}\n    {}",
            x.a,
            x.b,
            paint(color, "2", x.why)
        );
    }
    if !d.same.is_empty() {
        outln!("{} {}", paint(color, "2", "Same:"), d.same.join(", "));
    }
    for n in notes {
        outln!("{} {n}", paint(color, "2", "Note:"));
    }
    outln!("{} {FINGERPRINT_NOTE}", paint(color, "2", "Note:"));
}
