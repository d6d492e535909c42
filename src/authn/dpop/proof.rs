//! One DPoP proof checked as RFC 9449 §4.3 lists it, each failed check its own reason:
//! one `DPoP` header, a compact JWS, `typ` `dpop+jwt`, an allowed asymmetric `alg`, a
//! public `jwk` that fits it, the signature, `jti`/`htm`/`htu`/`iat`, the method and URL,
//! the time window, the server nonce, and `ath`. The key binding and the replay check come
//! after the access token verified (`mod.rs`).

use super::nonce::Nonces;
use crate::failure::AuthFailure;
use crate::jws::{self, numeric_date};
use crate::keys::proof_key;
use crate::reason::Reason;
use crate::sanitize::cap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::HOST;
use http::{HeaderMap, Method, Uri};
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::str::FromStr;

/// Longest proof read: an RSA-4096 `jwk` and the claims fit in well under this.
const MAX_PROOF: usize = 8 * 1024;
/// Longest `jti` accepted.
const MAX_JTI: usize = 256;

/// JWK members that hold private key material (RFC 7518 §6).
const PRIVATE: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What a proof must satisfy, from the scheme's configuration.
#[derive(Debug)]
pub(crate) struct Rules {
    pub algs: Vec<Algorithm>,
    /// `algs` as the challenge says it: `ES256 PS256`.
    pub algs_text: String,
    /// How old a proof may be, and how far in the future, in seconds.
    pub max_age: i64,
    pub leeway: i64,
    /// Whose URLs a proof may name.
    pub origins: Origins,
    pub nonces: Option<Nonces>,
}

/// The origins a proof's `htu` may name.
#[derive(Debug)]
pub(crate) enum Origins {
    /// `scheme://host[:port][/prefix]`, configured: the request's path goes after one.
    Listed(Vec<String>),
    /// The request's own `Host` (or absolute request line) and scheme: local development.
    FromHost,
}

/// A proof that passed every check that needs no access token verification.
pub(crate) struct Proof {
    /// RFC 7638 thumbprint of its key.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
}

fn fail(reason: Reason, check: &'static str, detail: String) -> AuthFailure {
    AuthFailure::new(reason).check(check).detail(detail)
}

fn missing(claim: &'static str, why: &str) -> AuthFailure {
    AuthFailure::new(Reason::DpopProofClaimMissing)
        .check(claim)
        .claim(claim)
        .detail(format!("the DPoP proof's {claim} {why}"))
}

/// The single `DPoP` header's value.
pub(crate) fn header(headers: &HeaderMap) -> Result<&str, AuthFailure> {
    let mut all = headers.get_all("dpop").iter();
    let Some(first) = all.next() else {
        return Err(fail(
            Reason::DpopProofMissing,
            "header",
            "Authorization uses the DPoP scheme, and no DPoP header came with it".into(),
        ));
    };
    let malformed = |d: &str| fail(Reason::DpopProofMalformed, "header", d.into());
    if all.next().is_some() {
        return Err(malformed(
            "the request has more than one DPoP proof (more than one DPoP header)",
        ));
    }
    if first.len() > MAX_PROOF {
        return Err(malformed("the DPoP proof is longer than 8 KiB"));
    }
    let value = first
        .to_str()
        .map(str::trim)
        .map_err(|_| malformed("the DPoP header is not visible ASCII"))?;
    // Field lines may be folded into one, comma-separated (RFC 9110 §5.3); a compact JWS
    // has no comma.
    if value.split(',').filter(|p| !p.trim().is_empty()).count() > 1 {
        return Err(malformed(
            "the request has more than one DPoP proof (comma-separated in one DPoP header)",
        ));
    }
    Ok(value)
}

/// Checks `proof` for a request of `method` to `uri` with access token `token`.
pub(crate) fn check(
    proof: &str,
    rules: &Rules,
    request: (&Method, &Uri, &HeaderMap),
    token: &str,
    now: i64,
) -> Result<Proof, AuthFailure> {
    let jws = jws::decode(proof).map_err(|f| {
        let what = f.detail_text().unwrap_or("not a JWS").to_owned();
        fail(
            Reason::DpopProofMalformed,
            "jws",
            format!("the DPoP proof is not a compact JWS: {what}"),
        )
    })?;
    let jwk = signed_by_own_key(&jws, rules)?;
    let claims = &jws.claims;
    let jti = text(claims, "jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI {
        return Err(missing("jti", "is empty or longer than 256 characters"));
    }
    let (htm, htu) = (text(claims, "htm")?, text(claims, "htu")?);
    let iat = match claims.get("iat") {
        None => return Err(missing("iat", "is missing")),
        Some(v) => numeric_date(v).ok_or_else(|| missing("iat", "is not a number"))?,
    };
    let (method, uri, headers) = request;
    if htm != method.as_str() {
        return Err(fail(
            Reason::DpopProofMethodMismatch,
            "htm",
            format!(
                "the DPoP proof's htm is {}, the request's method {method}",
                cap(htm)
            ),
        ));
    }
    check_url(htu, rules, uri, headers)?;
    check_time(iat, rules, now)?;
    check_nonce(claims, rules, now)?;
    let ath = text(claims, "ath")?;
    if ath != token_hash(token) {
        return Err(fail(
            Reason::DpopProofAthMismatch,
            "ath",
            "the DPoP proof's ath is not the SHA-256 hash of the access token it came with".into(),
        ));
    }
    Ok(Proof {
        jkt: thumbprint(jwk).expect("proof_key accepted its kind"),
        jti: jti.to_owned(),
        iat,
    })
}

/// The header checks, in §4.3's order: `typ`, an allowed `alg`, no `crit`, a public `jwk`
/// that fits `alg`, and the signature by that key. Returns the key.
fn signed_by_own_key<'j>(
    jws: &'j jws::Jws<'_>,
    rules: &Rules,
) -> Result<&'j Map<String, Value>, AuthFailure> {
    let h = &jws.header;
    // RFC 7515 §4.1.9: `dpop+jwt` is short for `application/dpop+jwt`; both name one
    // media type, compared case-insensitively.
    fn media_type(t: &str) -> &str {
        match t.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &t[12..],
            _ => t,
        }
    }
    if !h
        .typ
        .as_deref()
        .is_some_and(|t| media_type(t).eq_ignore_ascii_case("dpop+jwt"))
    {
        let got = h
            .typ
            .as_deref()
            .map_or("absent".into(), |t| cap(t).to_string());
        return Err(fail(
            Reason::DpopProofTypeRejected,
            "typ",
            format!("the DPoP proof's typ is {got}, not dpop+jwt"),
        ));
    }
    let alg = h.alg.as_deref().unwrap_or("absent");
    let Some(alg) = Algorithm::from_str(alg)
        .ok()
        .filter(|a| rules.algs.contains(a))
    else {
        return Err(fail(
            Reason::DpopProofAlgorithmRejected,
            "alg",
            format!(
                "the DPoP proof's alg is {}, accepted: {}",
                cap(alg),
                rules.algs_text
            ),
        ));
    };
    if !h.crit.is_empty() {
        return Err(fail(
            Reason::DpopProofMalformed,
            "crit",
            "the DPoP proof names critical header extensions this server does not implement".into(),
        ));
    }
    let jwk = public_jwk(h.jwk.as_ref())?;
    let key = full_size(jwk)
        .and_then(|()| proof_key(jwk, alg))
        .map_err(|why| {
            fail(
                Reason::DpopProofKeyInvalid,
                "jwk",
                format!("the DPoP proof's jwk is unusable: {why}"),
            )
        })?;
    if !key.verifies(jws.message, jws.signature, alg) {
        return Err(fail(
            Reason::DpopProofSignatureInvalid,
            "signature",
            "the DPoP proof's signature does not verify with its own jwk".into(),
        ));
    }
    Ok(jwk)
}

/// The server nonce, when the scheme requires one: missing or stale gets a fresh one.
fn check_nonce(claims: &Map<String, Value>, rules: &Rules, now: i64) -> Result<(), AuthFailure> {
    if let Some(nonces) = &rules.nonces {
        let nonce = claims.get("nonce").and_then(Value::as_str);
        if !nonce.is_some_and(|n| nonces.valid(n, now)) {
            let got = if nonce.is_some() {
                "a stale or unknown nonce"
            } else {
                "no nonce"
            };
            return Err(fail(
                Reason::DpopNonceRequired,
                "nonce",
                format!("the DPoP proof carries {got}; this server requires its own"),
            )
            .dpop_nonce(nonces.issue(now)));
        }
    }
    Ok(())
}

/// The proof's `jwk`: a JSON object without private key material.
fn public_jwk(jwk: Option<&Value>) -> Result<&Map<String, Value>, AuthFailure> {
    let invalid = |d: String| fail(Reason::DpopProofKeyInvalid, "jwk", d);
    let Some(jwk) = jwk else {
        return Err(invalid("the DPoP proof has no jwk header".into()));
    };
    let Some(jwk) = jwk.as_object() else {
        return Err(invalid("the DPoP proof's jwk is not a JSON object".into()));
    };
    if let Some(private) = PRIVATE.iter().find(|m| jwk.contains_key(**m)) {
        return Err(invalid(format!(
            "the DPoP proof's jwk carries private key material ({private}): the client leaked its key"
        )));
    }
    Ok(jwk)
}

/// RFC 7518 §6.2.1.2 and RFC 8037 §2: an EC coordinate and an Ed25519 key are octet
/// strings of the curve's full size. A short or long one is a broken key, not a bad
/// signature.
fn full_size(jwk: &Map<String, Value>) -> Result<(), String> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let (size, members): (usize, &[&str]) = match (text("kty"), text("crv")) {
        (Some("EC"), Some("P-256")) => (32, &["x", "y"]),
        (Some("EC"), Some("P-384")) => (48, &["x", "y"]),
        (Some("OKP"), Some("Ed25519")) => (32, &["x"]),
        _ => return Ok(()),
    };
    for m in members {
        let Some(value) = text(m) else {
            continue;
        };
        if URL_SAFE_NO_PAD.decode(value).map(|b| b.len()) != Ok(size) {
            return Err(format!("its {m} is not {size} bytes in base64url"));
        }
    }
    Ok(())
}

/// A string claim of the proof.
fn text<'a>(claims: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, AuthFailure> {
    match claims.get(name) {
        None => Err(missing(name, "is missing")),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(missing(name, "is not a string")),
    }
}

/// `htu` against the request's URL, both without query and fragment (§4.3 check 9),
/// scheme and host compared case-insensitively and default ports dropped (RFC 3986 §6).
fn check_url(htu: &str, rules: &Rules, uri: &Uri, headers: &HeaderMap) -> Result<(), AuthFailure> {
    let proof = normalize(htu.split(['?', '#']).next().unwrap_or_default());
    // Dot segments resolved in the request's path alone, before an origin's path prefix
    // goes in front: `/../admin` cannot climb out of the prefix a proxy stripped.
    let path = remove_dot_segments(&normalize_escapes(uri.path()));
    let ours: Vec<String> = match &rules.origins {
        Origins::Listed(origins) => origins
            .iter()
            .filter_map(|o| normalize(&format!("{o}{path}")))
            .collect(),
        Origins::FromHost => {
            let host = uri
                .authority()
                .map(|a| a.as_str())
                .or_else(|| headers.get(HOST).and_then(|h| h.to_str().ok()));
            let origin = host.map(|h| format!("{}://{h}", uri.scheme_str().unwrap_or("http")));
            origin
                .and_then(|o| normalize(&format!("{o}{path}")))
                .into_iter()
                .collect()
        }
    };
    if proof.as_ref().is_some_and(|p| ours.contains(p)) {
        return Ok(());
    }
    let ours_text = match ours.as_slice() {
        [] if matches!(rules.origins, Origins::FromHost) => "unknown (no Host)".to_owned(),
        [] => "unknown (no origin is configured: Dpop::public_origin)".to_owned(),
        [one] => cap(one).to_string(),
        many => format!("one of {}", cap(&many.join(", "))),
    };
    let f = fail(
        Reason::DpopProofUrlMismatch,
        "htu",
        format!(
            "the DPoP proof's htu is {}, this request's URL {ours_text}",
            cap(&shown_url(htu)),
        ),
    );
    let same_path = proof
        .as_deref()
        .zip(ours.first())
        .is_some_and(|(p, o)| path_of(p) == path_of(o));
    Err(match rules.origins {
        Origins::FromHost if same_path => f.hint(
            "Only the scheme or host differs. This server takes its origin from Host: give it \
             the origin clients reach it at (Dpop::public_origin).",
        ),
        _ => f,
    })
}

/// `htu` as the log may show it: without query and fragment (which may hold codes or
/// tokens) and without user information.
fn shown_url(htu: &str) -> String {
    let bare = htu.split(['?', '#']).next().unwrap_or_default();
    match bare.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}{path}")
        }
        None => bare.to_owned(),
    }
}

fn path_of(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    url[after..].find('/').map_or("/", |i| &url[after + i..])
}

/// `scheme://host[:port]/path` in one spelling (RFC 3986 §6.2.2 syntax-based and §6.2.3
/// scheme-based normalization, as RFC 9449 §4.3 asks), or `None` when it is not an
/// absolute URL or names a user (RFC 9110 §4.2.4: userinfo in an http(s) URI is an error).
fn normalize(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    if uri.authority()?.as_str().contains('@') {
        return None;
    }
    let host = uri.host()?.to_ascii_lowercase();
    let port = match (scheme.as_str(), uri.port_u16()) {
        ("http", Some(80)) | ("https", Some(443)) | (_, None) => String::new(),
        (_, Some(p)) => format!(":{p}"),
    };
    let path = match uri.path() {
        "" => "/",
        p => p,
    };
    let path = remove_dot_segments(&normalize_escapes(path));
    Some(format!("{scheme}://{host}{port}{path}"))
}

/// Percent-escapes of unreserved characters decoded (RFC 3986 §6.2.2.2), the others with
/// upper-case hex digits (§6.2.2.1).
fn normalize_escapes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut skip = 0;
    for (i, c) in path.char_indices() {
        if skip > 0 {
            skip -= 1;
            continue;
        }
        let escape = (c == '%')
            .then(|| path.get(i + 1..i + 3))
            .flatten()
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(b) if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => {
                out.push(char::from(b));
                skip = 2;
            }
            Some(b) => {
                out.push_str(&format!("%{b:02X}"));
                skip = 2;
            }
            None => out.push(c),
        }
    }
    out
}

/// `.` and `..` segments resolved (RFC 3986 §5.2.4, §6.2.2.3) in an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing = false;
    for segment in path.split('/').skip(1) {
        trailing = matches!(segment, "." | "..");
        match segment {
            "." => {}
            ".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &kept {
        out.push('/');
        out.push_str(s);
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    out
}

/// `iat` within `[now - max_age - leeway, now + leeway]`.
fn check_time(iat: i64, rules: &Rules, now: i64) -> Result<(), AuthFailure> {
    let age = now.saturating_sub(iat);
    if age > rules.max_age + rules.leeway {
        return Err(fail(
            Reason::DpopProofExpired,
            "iat",
            format!(
                "the DPoP proof was made {age} s ago; proofs are accepted for {} s",
                rules.max_age
            ),
        ));
    }
    if -age > rules.leeway {
        return Err(fail(
            Reason::DpopProofExpired,
            "iat",
            format!(
                "the DPoP proof's iat is {} s in the future: check the client's clock",
                -age
            ),
        ));
    }
    Ok(())
}

/// `ath`: base64url(SHA-256(token)) (RFC 9449 §4.2).
pub(crate) fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// The RFC 7638 thumbprint of a public JWK: SHA-256 over its required members in
/// lexicographic order, base64url.
pub(crate) fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let members: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, m) in members.iter().enumerate() {
        let v = jwk.get(*m)?.as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        canonical.push_str(&format!("\"{m}\":{}", Value::from(v)));
    }
    canonical.push('}');
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        let jwk: Value = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(jwk.as_object().unwrap()).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn shown_urls_lose_query_fragment_and_user() {
        assert_eq!(
            shown_url("https://alice:pw@h/a/b?code=x#frag"),
            "https://h/a/b"
        );
        assert_eq!(shown_url("/relative?q"), "/relative");
    }

    /// `Host` decides only where the application opted in: a scheme built without an
    /// origin and without `insecure_origin_from_host` (which `AuthDiagnostics::dpop`
    /// refuses to start) matches no URL, whatever `Host` says.
    #[test]
    fn without_an_origin_or_the_opt_in_host_is_never_trusted() {
        use crate::authn::dpop::Dpop;
        use crate::authn::jwt::JwtAuthenticator;
        use crate::keys::StaticKey;
        let jwt = JwtAuthenticator::new(StaticKey::hs256("secret"))
            .issuer("https://issuer.example")
            .audience("api");
        let uri: Uri = "/me".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(HOST, "api.test".parse().unwrap());
        let htu = "http://api.test/me";
        let unconfigured = Dpop::new(jwt.clone()).scheme(None);
        let err = check_url(htu, &unconfigured.rules, &uri, &headers).unwrap_err();
        assert_eq!(err.reason(), Reason::DpopProofUrlMismatch);
        // The opt-in alone lets Host decide.
        let opted_in = Dpop::new(jwt).insecure_origin_from_host().scheme(None);
        assert!(check_url(htu, &opted_in.rules, &uri, &headers).is_ok());
    }

    #[test]
    fn urls_compare_in_one_spelling() {
        let n = |u: &str| normalize(u).unwrap();
        assert_eq!(
            n("HTTPS://Api.Example:443/a%2fb"),
            "https://api.example/a%2Fb"
        );
        assert_eq!(n("http://h:80"), "http://h/");
        assert_eq!(n("http://h:8080/x"), "http://h:8080/x");
        assert!(normalize("/relative").is_none());
        // Unreserved characters escaped or not, dot segments: one URL (RFC 3986 §6.2.2).
        assert_eq!(n("http://h/m%65%7e%2e"), "http://h/me~.");
        assert_eq!(n("http://h/a/./b/../c"), "http://h/a/c");
        assert_eq!(n("http://h/a/b/.."), "http://h/a/");
        assert_eq!(n("http://h/%2E%2E/x"), "http://h/x");
        assert_eq!(n("http://h/.."), "http://h/");
        assert_eq!(n("http://h//x/"), "http://h//x/");
        assert_eq!(n("http://h/%zz%4"), "http://h/%zz%4");
        // A user in the authority is no URL of ours.
        assert!(normalize("http://user@h/x").is_none());
    }
}
