//! `auth-diagnostics decode`: a JWT's header and claims, its times in UTC and relative,
//! and, with a key or secret, the exact reason the crate's verifier gives.
//!
//! The token never leaves the machine: with `--key URL` only that URL (and, for a discovery
//! document or an issuer, its JWK set) is fetched, and sniffed rather than guessed from its
//! path: a JWK set (`keys`), a discovery document (`jwks_uri`), else an issuer. Without
//! `--issuer`, a JWK set enforces no issuer; a discovery document enforces its own. The
//! signature is never printed.
//!
//! `--json` prints one object:
//! - `header`: the JOSE header (object); `claims`: the payload (object);
//! - `typ`: header `typ` or null; `scopes`: the `scope`/`scp` claim as an array;
//!   `cnf`: the `cnf` claim or null;
//! - `times`: for each of `exp`, `nbf`, `iat` present, `{epoch, utc, relative, state}`
//!   where `state` is `expired`/`valid`/`not_yet_valid`/`issued`/`issued_in_future`;
//! - `expired`, `not_yet_valid`: booleans at the time of the run (no leeway);
//! - `fingerprint`: `hmac:` and 8 hex digits of the token under a key drawn for this run,
//!   to tell tokens apart within one run (they differ between runs); `fingerprint_note`
//!   says so;
//! - `verification`: null without a key, else `{verified, reason, title, detail, hint,
//!   key}` (`reason` a crate reason code, null when verified);
//! - `ok`: whether the exit code is 0.

use super::input::{fingerprint, paint, print_json, read_text, FINGERPRINT_NOTE};
use super::{DecodeArgs, Out, Outcome, UsageError};
use crate::text::shown_url;
use crate::text::{human_duration, now, rfc3339};
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::StaticKey;
use auth_diagnostics::Reason;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::{json, Map, Value};
use std::str::FromStr;
use std::time::Duration;

/// A token taken apart, nothing verified.
pub(crate) struct Decoded {
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
}

/// Takes a compact JWS apart: three base64url segments, header and payload JSON objects.
/// The error says in plain words what is wrong.
pub(crate) fn decode_unverified(token: &str) -> Result<Decoded, String> {
    let parts: Vec<&str> = token.split('.').collect();
    match parts.len() {
        3 => {}
        5 => {
            return Err(
                "this is a JWE (an encrypted token, five segments): only the party \
                        holding its decryption key can read it"
                    .into(),
            )
        }
        n => {
            return Err(format!(
                "not a JWT: a JWT is three base64url segments separated by dots, this has {n} \
                 segment{}",
                if n == 1 { "" } else { "s" }
            ))
        }
    }
    let segment = |i: usize, name: &str| -> Result<Map<String, Value>, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(parts[i].trim_end_matches('='))
            .map_err(|_| format!("the {name} segment is not base64url"))?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(format!("the {name} is JSON but not an object")),
            Err(_) => Err(format!("the {name} segment is not JSON")),
        }
    };
    Ok(Decoded {
        header: segment(0, "header")?,
        claims: segment(1, "payload")?,
    })
}

/// The longest token taken (64 KiB): four times the most the layer reads (16 KiB), so a
/// token the layer refuses as too long still decodes here; anything longer is no JWT.
const MAX_TOKEN: usize = 64 * 1024;

/// The token from the argument or stdin, without a pasted `Authorization: Bearer ` prefix.
fn read_token(arg: &str) -> Result<String, UsageError> {
    let raw = if arg == "-" {
        read_text("-")?
    } else {
        arg.to_owned()
    };
    let mut t = raw.trim();
    for prefix in ["authorization:", "bearer ", "dpop "] {
        if t.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        {
            t = t[prefix.len()..].trim();
        }
    }
    if t.is_empty() {
        return Err(UsageError("no token given".into()));
    }
    if t.len() > MAX_TOKEN {
        return Err(UsageError("the token is too long to be a JWT".into()));
    }
    Ok(t.to_owned())
}

/// Runs `decode`.
pub(crate) fn run(args: &DecodeArgs, out: &Out) -> Result<Outcome, UsageError> {
    let token = read_token(&args.token)?;
    let decoded = decode_unverified(&token).map_err(UsageError)?;
    let now = now();
    let times = times(&decoded.claims, now);
    let expired = times.iter().any(|t| t.state == "expired");
    let not_yet = times.iter().any(|t| t.state == "not_yet_valid");
    let verification = verify(args, &token, &decoded)?;
    let verified_ok = verification.as_ref().is_none_or(|v| v.reason.is_none());
    let ok = !expired && !not_yet && verified_ok;
    let report = Report {
        decoded: &decoded,
        times,
        verification,
        fingerprint: fingerprint(&token),
        now,
    };
    if out.json {
        print_json(&report.json(ok));
    } else {
        report.print(out.color);
    }
    Ok(if ok { Outcome::Fine } else { Outcome::Problems })
}

/// One of `exp`, `nbf`, `iat`, read against now.
struct Time {
    name: &'static str,
    epoch: i64,
    state: &'static str,
    relative: String,
}

fn times(claims: &Map<String, Value>, now: i64) -> Vec<Time> {
    let mut out = Vec::new();
    for name in ["exp", "nbf", "iat"] {
        let Some(epoch) = claims.get(name).and_then(crate::text::numeric_date) else {
            continue;
        };
        let past = human_duration(now.saturating_sub(epoch).max(0) as u64);
        let future = human_duration(epoch.saturating_sub(now).max(0) as u64);
        let (state, relative) = match name {
            "exp" if epoch <= now => ("expired", format!("expired {past} ago")),
            "exp" => ("valid", format!("valid for {future}")),
            "nbf" if epoch > now => ("not_yet_valid", format!("not valid for another {future}")),
            "nbf" => ("valid", format!("valid since {past} ago")),
            _ if epoch > now => (
                "issued_in_future",
                format!("issued {future} in the future (clock skew?)"),
            ),
            _ => ("issued", format!("issued {past} ago")),
        };
        out.push(Time {
            name,
            epoch,
            state,
            relative,
        });
    }
    out
}

/// The scopes a token carries: `scope` (space-separated) or `scp` (array or string).
pub(crate) fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// What verification said.
struct Verification {
    /// `None` when the token verified.
    reason: Option<Reason>,
    detail: Option<String>,
    key: String,
}

/// Verifies with `--key`, `--secret-file` or `--secret-env`, when one is given.
fn verify(
    args: &DecodeArgs,
    token: &str,
    decoded: &Decoded,
) -> Result<Option<Verification>, UsageError> {
    let given = [
        args.key.is_some(),
        args.secret_file.is_some(),
        args.secret_env.is_some(),
    ];
    match given.iter().filter(|g| **g).count() {
        0 => {
            if args.issuer.is_some() || args.audience.is_some() {
                return Err(UsageError(
                    "--issuer and --audience need --key, --secret-file or --secret-env".into(),
                ));
            }
            return Ok(None);
        }
        1 => {}
        _ => {
            return Err(UsageError(
                "give one of --key, --secret-file and --secret-env".into(),
            ))
        }
    }
    let token_alg = decoded.header.get("alg").and_then(Value::as_str);
    let token_alg = token_alg.and_then(|a| Algorithm::from_str(a).ok());
    let Keys { jwt, key, issuer } = authenticator(args, token_alg)?;
    let mut jwt = match &args.audience {
        Some(aud) => jwt.audience(aud.clone()),
        None => jwt.accept_any_audience(),
    };
    if let Some(iss) = &args.issuer {
        jwt = jwt.issuer(iss.clone());
    } else if !issuer {
        // A key file or JWK set names no issuer: the user did not ask for one either.
        jwt = jwt.accept_any_issuer();
    }
    wait_for_keys(&jwt)?;
    Ok(Some(match jwt.verify(token) {
        Ok(_) => Verification {
            reason: None,
            detail: None,
            key,
        },
        Err(f) => Verification {
            reason: Some(f.reason()),
            detail: f.detail_text().map(str::to_owned),
            key,
        },
    }))
}

/// Fetches the keys of a key source (at most 10 s); static keys need nothing.
fn wait_for_keys(jwt: &JwtAuthenticator) -> Result<(), UsageError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(10), jwt.ready()).await;
    });
    Ok(())
}

/// The authenticator for the key the user named.
struct Keys {
    jwt: JwtAuthenticator,
    /// A description of the key.
    key: String,
    /// Whether `jwt` enforces an issuer (a discovery document's).
    issuer: bool,
}

impl Keys {
    fn new(jwt: JwtAuthenticator, key: String) -> Self {
        Self {
            jwt,
            key,
            issuer: false,
        }
    }
}

/// The authenticator for the key the user named, and a description of that key.
fn authenticator(args: &DecodeArgs, token_alg: Option<Algorithm>) -> Result<Keys, UsageError> {
    if let Some(secret) = read_secret(args)? {
        let alg = pick_alg(AlgorithmFamily::Hmac.algorithms(), token_alg);
        let key = StaticKey::new(DecodingKey::from_secret(secret.as_bytes()), alg);
        let jwt = JwtAuthenticator::new(key);
        return Ok(Keys::new(jwt, format!("HMAC secret ({alg:?})")));
    }
    let spec = args.key.as_deref().unwrap_or_default();
    if spec.starts_with("https://") || spec.starts_with("http://") {
        return remote(spec, args, token_alg);
    }
    let text = read_text(spec)?;
    let keys = if text.contains("-----BEGIN") {
        vec![pem_key(&text, token_alg)?]
    } else {
        jwk_keys(&text, token_alg)?
    };
    Ok(Keys::new(
        with_keys(keys, spec)?,
        format!("key file {spec}"),
    ))
}

/// An authenticator holding `keys` (from `whence`).
fn with_keys(keys: Vec<StaticKey>, whence: &str) -> Result<JwtAuthenticator, UsageError> {
    let mut iter = keys.into_iter();
    let first = iter
        .next()
        .ok_or_else(|| UsageError(format!("{whence}: no usable key")))?;
    Ok(iter.fold(JwtAuthenticator::new(first), JwtAuthenticator::key))
}

/// The most bytes of a key set or discovery document read.
const MAX_KEY_DOCUMENT: usize = 1024 * 1024;

/// `--key URL`: fetched once and sniffed, whatever its path looks like (Okta's `/v1/keys`,
/// Azure's `/discovery/v2.0/keys`, Ping's `/pf/JWKS`): a JSON object with a `keys` array is
/// a JWK set (no issuer enforced without `--issuer`); one with `jwks_uri` is a discovery
/// document (its key set fetched, its `issuer` enforced without `--issuer`); anything else
/// is taken for an issuer, whose `/.well-known/openid-configuration` is fetched.
fn remote(spec: &str, args: &DecodeArgs, token_alg: Option<Algorithm>) -> Result<Keys, UsageError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start the runtime: {e}")))?;
    // Printed without its password and query, as every key URL is.
    let shown = shown_url(spec);
    let first = rt.block_on(fetch_json(spec));
    if let Ok(doc) = &first {
        if doc.get("keys").is_some_and(Value::is_array) {
            let keys = jwk_keys(&doc.to_string(), token_alg)?;
            return Ok(Keys::new(
                with_keys(keys, &shown)?,
                format!("JWK set {shown}"),
            ));
        }
        if doc.get("jwks_uri").is_some() {
            return discovered(&rt, doc, spec, args, token_alg);
        }
    }
    let issuer = spec.trim_end_matches('/');
    let config = format!("{issuer}/.well-known/openid-configuration");
    match rt.block_on(fetch_json(&config)) {
        Ok(doc) if doc.get("jwks_uri").is_some() => discovered(&rt, &doc, &config, args, token_alg),
        second => {
            let why = |r: &Result<Value, String>| match r {
                Ok(_) => "neither a JWK set (keys) nor a discovery document (jwks_uri)".to_owned(),
                Err(e) => e.clone(),
            };
            Err(UsageError(format!(
                "--key {shown}: not a JWK set ({}); not an issuer either: {}: {}",
                why(&first),
                shown_url(&config),
                why(&second)
            )))
        }
    }
}

/// The keys a discovery document `doc` (fetched from `url`) points to; its `issuer` is
/// enforced unless `--issuer` names one.
fn discovered(
    rt: &tokio::runtime::Runtime,
    doc: &Value,
    url: &str,
    args: &DecodeArgs,
    token_alg: Option<Algorithm>,
) -> Result<Keys, UsageError> {
    let shown = shown_url(url);
    let jwks_uri = doc["jwks_uri"]
        .as_str()
        .ok_or_else(|| UsageError(format!("{shown}: jwks_uri is not a string")))?;
    let set = rt.block_on(fetch_json(jwks_uri));
    let (url, jwks_uri) = (shown, shown_url(jwks_uri));
    let set = set.map_err(|e| UsageError(format!("{url} names the JWK set {jwks_uri}: {e}")))?;
    let keys = jwk_keys(&set.to_string(), token_alg)?;
    let mut jwt = with_keys(keys, &jwks_uri)?;
    let issuer = doc["issuer"].as_str();
    if let (None, Some(iss)) = (&args.issuer, issuer) {
        jwt = jwt.issuer(iss);
    }
    let named = issuer.map_or_else(String::new, |i| format!("issuer {i}, "));
    Ok(Keys {
        jwt,
        key: format!("{named}discovery {url}, JWK set {jwks_uri}"),
        issuer: issuer.is_some(),
    })
}

/// GETs `url` as JSON: 10 s at most, 1 MiB at most, redirects followed only on its host.
async fn fetch_json(url: &str) -> Result<Value, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 5 || attempt.url().host_str() != Some(host.as_str()) {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(crate::tls::tls_config())
        .redirect(policy)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let mut response = client.get(parsed).send().await.map_err(|e| {
        // reqwest's message quotes the URL, query and all.
        let e = e.without_url();
        let mut why = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            why = format!("{why}: {s}");
            source = s.source();
        }
        why
    })?;
    let status = response.status();
    if status.is_redirection() {
        return Err(format!(
            "{status}: a redirect to another host, not followed"
        ));
    }
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_KEY_DOCUMENT {
            return Err("more than 1 MiB: not a key set".into());
        }
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err("not a JSON object".into()),
    }
}

/// The HMAC secret from `--secret-file` (trailing newline dropped) or `--secret-env`.
fn read_secret(args: &DecodeArgs) -> Result<Option<String>, UsageError> {
    if let Some(path) = &args.secret_file {
        let text = read_text(&path.to_string_lossy())?;
        return Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()));
    }
    if let Some(var) = &args.secret_env {
        let value = std::env::var(var)
            .map_err(|_| UsageError(format!("environment variable {var} is not set")))?;
        if value.is_empty() {
            return Err(UsageError(format!("environment variable {var} is empty")));
        }
        return Ok(Some(value));
    }
    Ok(None)
}

/// The token's algorithm when the key can verify it, else the key's first: a key never
/// verifies another family's algorithm (the verifier then names `token_algorithm_rejected`).
/// `family` is (part of) a family as jsonwebtoken lists it, its first HS256, RS256, ES256
/// or EdDSA.
fn pick_alg(family: &[Algorithm], token_alg: Option<Algorithm>) -> Algorithm {
    token_alg
        .filter(|a| family.contains(a))
        .unwrap_or(family[0])
}

fn pem_key(text: &str, token_alg: Option<Algorithm>) -> Result<StaticKey, UsageError> {
    let b = text.as_bytes();
    let (key, family) = if let Ok(k) = DecodingKey::from_rsa_pem(b) {
        (k, AlgorithmFamily::Rsa)
    } else if let Ok(k) = DecodingKey::from_ec_pem(b) {
        (k, AlgorithmFamily::Ec)
    } else if let Ok(k) = DecodingKey::from_ed_pem(b) {
        (k, AlgorithmFamily::Ed)
    } else {
        return Err(UsageError(
            "the PEM file holds no RSA, EC or Ed25519 public key (a certificate or a private \
             key is not read: give the public key)"
                .into(),
        ));
    };
    Ok(StaticKey::new(
        key,
        pick_alg(family.algorithms(), token_alg),
    ))
}

/// The keys of a JWK or JWK set file; keys this verifier cannot read are skipped.
fn jwk_keys(text: &str, token_alg: Option<Algorithm>) -> Result<Vec<StaticKey>, UsageError> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| UsageError(format!("the key file is neither PEM nor JSON: {e}")))?;
    let list = match doc.get("keys") {
        Some(Value::Array(keys)) => keys.clone(),
        _ => vec![doc],
    };
    let mut out = Vec::new();
    for v in list {
        let Ok(jwk) = serde_json::from_value::<Jwk>(v.clone()) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        let family = match v.get("kty").and_then(Value::as_str) {
            Some("RSA") => AlgorithmFamily::Rsa.algorithms(),
            Some("EC") if v.get("crv").and_then(Value::as_str) == Some("P-384") => {
                &AlgorithmFamily::Ec.algorithms()[1..]
            }
            Some("EC") => &AlgorithmFamily::Ec.algorithms()[..1],
            Some("OKP") => AlgorithmFamily::Ed.algorithms(),
            _ => AlgorithmFamily::Hmac.algorithms(),
        };
        let declared = v.get("alg").and_then(Value::as_str);
        let alg = declared
            .and_then(|a| Algorithm::from_str(a).ok())
            .unwrap_or_else(|| pick_alg(family, token_alg));
        let mut key = StaticKey::new(key, alg);
        if let Some(kid) = v.get("kid").and_then(Value::as_str) {
            key = key.with_kid(kid);
        }
        out.push(key);
    }
    if out.is_empty() {
        return Err(UsageError("the key file holds no usable JWK".into()));
    }
    Ok(out)
}

/// Everything `decode` shows.
struct Report<'a> {
    decoded: &'a Decoded,
    times: Vec<Time>,
    verification: Option<Verification>,
    fingerprint: String,
    now: i64,
}

impl Report<'_> {
    fn json(&self, ok: bool) -> Value {
        let c = &self.decoded.claims;
        let times: Map<String, Value> = self
            .times
            .iter()
            .map(|t| {
                let v = json!({"epoch": t.epoch, "utc": rfc3339(t.epoch),
                    "relative": t.relative, "state": t.state});
                (t.name.to_owned(), v)
            })
            .collect();
        let verification = self.verification.as_ref().map(|v| {
            json!({
                "verified": v.reason.is_none(),
                "reason": v.reason.map(Reason::code),
                "title": v.reason.map(Reason::title),
                "detail": v.detail,
                "hint": v.reason.map(Reason::hint),
                "key": v.key,
            })
        });
        json!({
            "header": self.decoded.header,
            "claims": c,
            "typ": self.decoded.header.get("typ"),
            "scopes": scopes(c),
            "cnf": c.get("cnf"),
            "times": times,
            "expired": self.times.iter().any(|t| t.state == "expired"),
            "not_yet_valid": self.times.iter().any(|t| t.state == "not_yet_valid"),
            "fingerprint": self.fingerprint,
            "fingerprint_note": FINGERPRINT_NOTE,
            "verification": verification,
            "ok": ok,
        })
    }

    fn print(&self, color: bool) {
        let bold = |t: &str| paint(color, "1", t);
        let pretty = |m: &Map<String, Value>| {
            serde_json::to_string_pretty(m)
                .unwrap_or_default()
                .replace('\n', "\n  ")
        };
        outln!(
            "{}  ({}; {FINGERPRINT_NOTE})",
            bold("Header"),
            self.fingerprint
        );
        outln!("  {}", pretty(&self.decoded.header));
        outln!("{}", bold("Claims"));
        outln!("  {}", pretty(&self.decoded.claims));
        self.print_facts(color);
        self.print_times(color);
        self.print_verification(color);
    }

    fn print_facts(&self, color: bool) {
        let c = &self.decoded.claims;
        let typ = self.decoded.header.get("typ").and_then(Value::as_str);
        outln!(
            "{}  {}",
            paint(color, "1", "Type"),
            typ.unwrap_or("(no typ header: a plain JWT)")
        );
        let scopes = scopes(c);
        if !scopes.is_empty() {
            outln!("{}  {}", paint(color, "1", "Scopes"), scopes.join(" "));
        }
        if let Some(cnf) = c.get("cnf") {
            let bound = if cnf.get("jkt").is_some() {
                "bound to a DPoP key (cnf.jkt): send it with a DPoP proof, scheme DPoP"
            } else if cnf.get("x5t#S256").is_some() {
                "bound to a client certificate (cnf.x5t#S256): send it over mutual TLS"
            } else {
                "bound to a key (cnf)"
            };
            outln!("{}  {bound}", paint(color, "1", "Binding"));
        }
    }

    fn print_times(&self, color: bool) {
        if self.times.is_empty() {
            outln!(
                "{}  none (no exp: the token never expires)",
                paint(color, "1", "Times")
            );
            return;
        }
        outln!(
            "{}  (now {})",
            paint(color, "1", "Times"),
            rfc3339(self.now)
        );
        for t in &self.times {
            let code = match t.state {
                "expired" | "not_yet_valid" | "issued_in_future" => "31",
                _ => "32",
            };
            let rel = paint(color, code, &t.relative);
            outln!("  {}  {}  {rel}", t.name, rfc3339(t.epoch));
        }
    }

    fn print_verification(&self, color: bool) {
        let Some(v) = &self.verification else {
            outln!(
                "{}",
                paint(
                    color,
                    "2",
                    "Not verified (give --key, --secret-file or --secret-env to check the signature)"
                )
            );
            return;
        };
        match v.reason {
            None => outln!("{}  with {}", paint(color, "32", "Verified"), v.key),
            Some(r) => {
                let head = format!("Verification failed: {}", r.code());
                outln!(
                    "{}  ({}, with {})",
                    paint(color, "31", &head),
                    r.title(),
                    v.key
                );
                if let Some(d) = &v.detail {
                    outln!("  {d}");
                }
                outln!("  Fix: {}", r.hint());
            }
        }
    }
}
