//! The attack table (shared/spec/standards.md R-37..R-45, R-48, R-49): forged, confused and
//! hostile tokens, one [`Attack`] a row, each sent through the layer with the suite's
//! [`send`] and checked with [`Outcome::check`] against its exact reason.
//!
//! A row is a setup (which keys the layer verifies with: [`Setup`]), a request, and what the
//! layer must answer: refused with one reason, or accepted where acceptance is right (a
//! control, or a row whose comment says why). Besides what `send` and `check` assert, the
//! runner asserts for every row, in both detail modes, each on a fresh app:
//!
//! - no 16-character chunk of any signature segment the request carries (the token's, a
//!   DPoP proof's) is in any event, the body or a challenge;
//! - the signatures checked ([`signature_checks`]): none for what structure and header
//!   refuse, one for a forgery, at most one per token whatever the key set;
//! - a token refused before or at its signature is never logged `signature_verified=true`;
//! - with a JWK set, the configured URL is the only one ever fetched: `jku`, `x5u`, `x5c`
//!   and `jwk` never make the layer fetch or trust anything.
//!
//! Every row runs, whatever the others do; the failures are reported together, each with
//! its row's name.

mod common;
use common::*;

/// The demo client's key (examples/common/dpop.rs): "another key" for DPoP rows.
#[path = "../examples/common/dpop.rs"]
mod demo_client;

use auth_diagnostics::dpop::Dpop;
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::{
    Algorithm, DecodingKey, FetchFuture, Fetched, HttpFetch, KeySource, StaticKey,
};
use auth_diagnostics::Principal;
use axum::body::Body;
use axum::routing::get as route_get;
use axum::Router;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use http::Request;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::EncodingKey;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::ops::RangeInclusive;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use Algorithm::{ES256, HS256, PS256, RS256};

/// The JWK set every [`Setup::Jwks`] layer is configured with.
const JWKS_URL: &str = "https://idp.test/jwks";
/// Where attackers point `jku` and `x5u`.
const EVIL_URL: &str = "https://attacker.example/jwks.json";
/// The host DPoP requests name, and so the origin of every proof's `htu`.
const HOST: &str = "api.test";

/// [`signature_checks`] counts for the whole process: rows that read it run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Signatures this process has checked (tokens and DPoP proofs): one sample each of the
/// layer's verification-time histogram, counted by this test's metrics recorder.
fn signature_checks() -> u64 {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        metrics::set_global_recorder(CountChecks).expect("the only recorder of this test");
    });
    CHECKS.load(Ordering::SeqCst)
}

static CHECKS: AtomicU64 = AtomicU64::new(0);

/// A metrics recorder that counts the samples of the verification-time histogram.
struct CountChecks;

struct Check;

impl metrics::HistogramFn for Check {
    fn record(&self, _: f64) {
        CHECKS.fetch_add(1, Ordering::SeqCst);
    }
}

impl metrics::Recorder for CountChecks {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::noop()
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        if key.name() == "auth_diagnostics_verification_duration_seconds" {
            metrics::Histogram::from_arc(Arc::new(Check))
        } else {
            metrics::Histogram::noop()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

/// A signing key and the algorithm it signs with.
type Key = (Algorithm, EncodingKey);

/// `tests/keys/{name}.pem`.
fn pem(name: &str) -> Vec<u8> {
    let dir = env!("CARGO_MANIFEST_DIR");
    std::fs::read(format!("{dir}/tests/keys/{name}.pem")).unwrap()
}

/// An HMAC secret.
fn secret(bytes: &[u8]) -> Key {
    (HS256, EncodingKey::from_secret(bytes))
}

/// The suite's secret: what the HS256 layer verifies with.
fn ours() -> Key {
    secret(SECRET.as_bytes())
}

/// `tests/keys/{name}_private.pem`: `rsa` (the issuer's), `rsa2` (the attacker's), `ec256`.
fn private(name: &str) -> Key {
    let pem = pem(&format!("{name}_private"));
    match name {
        "ec256" => (ES256, EncodingKey::from_ec_pem(&pem).unwrap()),
        _ => (RS256, EncodingKey::from_rsa_pem(&pem).unwrap()),
    }
}

/// The public JWK of `key` as a provider publishes it: with `kid` and `use: sig`.
fn public_jwk(key: &Key, kid: &str) -> Value {
    let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key.1, key.0).unwrap()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    jwk
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

/// `{"alg": alg, "typ": "JWT"}` with the members of `extra`.
fn header(alg: &str, extra: Value) -> Vec<u8> {
    let mut h = json!({ "alg": alg, "typ": "JWT" });
    merge(&mut h, extra);
    serde_json::to_vec(&h).unwrap()
}

/// `base` with the members of `edits`; a `null` removes one.
fn merge(base: &mut Value, edits: Value) {
    let map = base.as_object_mut().unwrap();
    for (k, v) in edits.as_object().unwrap() {
        match v {
            Value::Null => map.remove(k),
            v => map.insert(k.clone(), v.clone()),
        };
    }
}

/// The suite's good claims with `edits`, as JSON.
fn payload(edits: Value) -> Vec<u8> {
    serde_json::to_vec(&claims(edits)).unwrap()
}

/// The good claims' JSON with member `name` written raw: what serde_json would never
/// write (deep nesting, invalid UTF-8, a lone surrogate, a number beyond f64).
fn raw_claim(name: &str, raw: &[u8]) -> Vec<u8> {
    let mut json = payload(json!({ name: null }));
    json.pop();
    json.extend_from_slice(format!(",\"{name}\":").as_bytes());
    json.extend_from_slice(raw);
    json.push(b'}');
    json
}

/// The signing input: base64url(header).base64url(payload).
fn message(header: &[u8], payload: &[u8]) -> String {
    format!("{}.{}", b64url(header), b64url(payload))
}

/// A compact JWS over `header` and `payload` signed by `key`, whatever the header says.
fn signed(header: &[u8], payload: &[u8], key: &Key) -> String {
    let message = message(header, payload);
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key.1, key.0).unwrap();
    format!("{message}.{signature}")
}

/// A token by `key`, its algorithm in the header with the members `extra`, over the good
/// claims with `edits`.
fn by(key: &Key, extra: Value, edits: Value) -> String {
    signed(
        &header(&format!("{:?}", key.0), extra),
        &payload(edits),
        key,
    )
}

/// The good claims under `{"alg": alg, "typ": "JWT"}`, signed by `key` whatever `alg` says.
fn under(alg: &str, key: &Key) -> String {
    signed(&header(alg, json!({})), &payload(json!({})), key)
}

/// A raw `payload`, signed with our secret.
fn ours_raw(payload: &[u8]) -> String {
    signed(&header("HS256", json!({})), payload, &ours())
}

/// The last segment.
fn signature(token: &str) -> &str {
    token.rsplit('.').next().unwrap()
}

/// `token` with its last segment replaced.
fn with_signature(token: &str, signature: &str) -> String {
    let (message, _) = token.rsplit_once('.').unwrap();
    format!("{message}.{signature}")
}

/// `token` with the first `from` of its payload replaced by `to`, the signature kept.
fn tampered(token: &str, from: &str, to: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]);
    let claims = String::from_utf8(claims.unwrap())
        .unwrap()
        .replacen(from, to, 1);
    format!("{}.{}.{}", parts[0], b64url(claims.as_bytes()), parts[2])
}

/// `token` with its signature's last character changed only in a bit that encodes
/// nothing: a signature of 32, 64 or 256 bytes ends in a character of which 2 or 4 low
/// bits are padding. A decoder that ignores those bits reads the very same signature; one
/// that follows RFC 4648 §3.5 refuses it.
fn flip_unused_bit(token: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let sig = signature(token);
    assert_ne!(sig.len() % 4, 0, "a signature with no unused bits");
    let last = ALPHABET
        .iter()
        .position(|&c| c == *sig.as_bytes().last().unwrap());
    let flipped = format!(
        "{}{}",
        &sig[..sig.len() - 1],
        ALPHABET[last.unwrap() ^ 1] as char
    );
    let lenient = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    );
    assert_eq!(
        lenient.decode(sig).unwrap(),
        lenient.decode(&flipped).unwrap(),
        "only unused bits differ"
    );
    with_signature(token, &flipped)
}

/// A token of our secret exactly `len` bytes long: padded by a claim, and by a `kid` of
/// up to three characters for the lengths base64 alone cannot reach.
fn sized(len: usize) -> String {
    let b64 = |n: usize| (4 * n).div_ceil(3);
    let sig = signature(&hs256(&good_claims())).len();
    let empty = payload(json!({ "pad": "" })).len();
    for k in 0..4 {
        let extra = if k == 0 {
            json!({})
        } else {
            json!({ "kid": "k".repeat(k) })
        };
        let h = header("HS256", extra.clone());
        let fits = |pad: &usize| b64(h.len()) + b64(empty + pad) + 2 + sig == len;
        if let Some(pad) = (0..len).find(fits) {
            let token = signed(&h, &payload(json!({ "pad": "x".repeat(pad) })), &ours());
            assert_eq!(token.len(), len);
            return token;
        }
    }
    unreachable!("every length is reachable with a kid of up to three characters")
}

/// The P-256 group order n: r = s = n is as "psychic" as r = s = 0.
fn p256_order() -> Vec<u8> {
    let hex = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// `Authorization: Bearer <token>` on `/me`.
fn bearer_req(token: &str) -> Request<Body> {
    get("/me", &[("authorization", &bearer(token))])
}

// ---------------------------------------------------------------------------------------
// DPoP proofs (as tests/dpop.rs builds them)
// ---------------------------------------------------------------------------------------

/// The public JWK of tests/keys/ec256, the DPoP client of most rows: only the members
/// RFC 7638 hashes.
fn client_jwk() -> Value {
    let full = public_jwk(&private("ec256"), "");
    json!({ "crv": full["crv"], "kty": "EC", "x": full["x"], "y": full["y"] })
}

/// RFC 7638: SHA-256 over the required members of an EC JWK, in order, no spaces.
fn jkt(jwk: &Value) -> String {
    let m = |name: &str| jwk[name].as_str().unwrap().to_owned();
    let canonical = format!(
        r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
        m("crv"),
        m("x"),
        m("y")
    );
    b64url(&Sha256::digest(canonical.as_bytes()))
}

/// An access token for alice bound to the key whose thumbprint is `jkt` (`cnf.jkt`).
fn bound(jkt: &str) -> String {
    hs256(&claims(json!({ "cnf": { "jkt": jkt } })))
}

/// The client's bound token.
fn client_token() -> String {
    bound(&jkt(&client_jwk()))
}

/// A fresh `jti`.
fn jti() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("attack-{}-{}", now(), N.fetch_add(1, Ordering::Relaxed))
}

/// A right proof for GET `http://api.test/me` bound to `token`, whose header names the
/// client's key, signed by `key`; then `header_edits` and `claim_edits` (`null` removes).
fn proof(token: &str, key: &Key, header_edits: Value, claim_edits: Value) -> String {
    let mut header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": client_jwk() });
    merge(&mut header, header_edits);
    let mut claims = json!({
        "jti": jti(),
        "htm": "GET",
        "htu": format!("http://{HOST}/me"),
        "iat": now(),
        "ath": b64url(&Sha256::digest(token.as_bytes())),
    });
    merge(&mut claims, claim_edits);
    let json = |v: &Value| serde_json::to_vec(v).unwrap();
    signed(&json(&header), &json(&claims), key)
}

/// The client's proof for its own token with `claim_edits`.
fn client_proof(token: &str, claim_edits: Value) -> String {
    proof(token, &private("ec256"), json!({}), claim_edits)
}

/// `GET path` on [`HOST`] with `Authorization: DPoP <token>` and `DPoP: <proof>`.
fn dpop_req(path: &str, token: &str, proof: &str) -> Request<Body> {
    let authorization = format!("DPoP {token}");
    let headers = [
        ("host", HOST),
        ("authorization", &authorization),
        ("dpop", proof),
    ];
    get(path, &headers)
}

// ---------------------------------------------------------------------------------------
// An identity provider that counts what it is asked
// ---------------------------------------------------------------------------------------

/// An [`HttpFetch`] that serves a JWK set at [`JWKS_URL`] (404 anywhere else) and keeps
/// every URL it is asked for.
#[derive(Clone)]
struct Idp {
    set: Arc<Vec<u8>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Idp {
    /// `n` RS256 keys, kids `k0`, `k1`, …: the issuer's key (rsa) and then rsa2 in turn, so
    /// a set of one holds only the issuer's key. The same key under several kids costs what
    /// distinct keys would: what is counted is signature checks, not keys.
    fn new(n: usize) -> Self {
        let pair = [private("rsa"), private("rsa2")];
        let keys: Vec<Value> = (0..n)
            .map(|i| public_jwk(&pair[i % 2], &format!("k{i}")))
            .collect();
        let set = serde_json::to_vec(&json!({ "keys": keys })).unwrap();
        Idp {
            set: Arc::new(set),
            asked: Arc::default(),
        }
    }

    /// Every URL fetched is the configured one; with `needed`, it was fetched.
    #[track_caller]
    fn assert_only_configured_url_fetched(&self, needed: bool) {
        let asked = self.asked.lock().unwrap().clone();
        assert!(
            !needed || !asked.is_empty(),
            "the key set was never fetched"
        );
        let foreign: Vec<&String> = asked.iter().filter(|u| *u != JWKS_URL).collect();
        assert!(foreign.is_empty(), "fetched beyond {JWKS_URL}: {foreign:?}");
    }
}

impl HttpFetch for Idp {
    fn get<'a>(&'a self, url: &'a str, _max_bytes: usize) -> FetchFuture<'a> {
        self.asked.lock().unwrap().push(url.to_owned());
        let (status, body) = match url {
            JWKS_URL => (StatusCode::OK, self.set.to_vec()),
            _ => (StatusCode::NOT_FOUND, Vec::new()),
        };
        let fetched = Fetched {
            status,
            cache_control: None,
            body: body.into(),
        };
        Box::pin(std::future::ready(Ok(fetched)))
    }
}

// ---------------------------------------------------------------------------------------
// Setups
// ---------------------------------------------------------------------------------------

/// What the layer verifies with. Every one requires [`ISSUER`], [`AUDIENCE`] and `sub`.
#[derive(Clone, Copy, Debug)]
enum Setup {
    /// The suite's authenticator: HS256 with [`SECRET`].
    Hs256,
    /// RS256 with tests/keys/rsa_public.pem as a static key.
    RsaPem,
    /// The same RSA key, with HS256 allowed too (`.algorithms([RS256, HS256])`): no key
    /// serves HS256, and the RSA key must not.
    RsaPemHs256Allowed,
    /// ES256 with tests/keys/ec256_public.pem.
    Es256,
    /// A JWK set of this many RS256 keys ([`Idp::new`]) at [`JWKS_URL`].
    Jwks(usize),
    /// DPoP with the suite's authenticator (RFC 9449), on a DPoP-only route.
    Dpop,
}

async fn me(p: Principal) -> axum::Json<Value> {
    axum::Json(json!({ "sub": p.id(), "scheme": p.scheme().map(|s| s.as_str()) }))
}

impl Setup {
    /// `/me` behind the layer, and the identity provider it fetches from.
    fn app(self, mode: DetailMode) -> (Router, Option<Idp>) {
        let rules =
            |j: JwtAuthenticator| j.issuer(ISSUER).audience(AUDIENCE).require_claims(["sub"]);
        let static_key = |file: &str, alg: Algorithm| {
            let pem = pem(file);
            let key = match alg {
                ES256 => DecodingKey::from_ec_pem(&pem),
                _ => DecodingKey::from_rsa_pem(&pem),
            };
            rules(JwtAuthenticator::new(StaticKey::new(key.unwrap(), alg)))
        };
        let mut idp = None;
        let jwt = match self {
            Setup::Hs256 | Setup::Dpop => jwt(),
            Setup::RsaPem => static_key("rsa_public", RS256),
            Setup::RsaPemHs256Allowed => static_key("rsa_public", RS256).algorithms([RS256, HS256]),
            Setup::Es256 => static_key("ec256_public", ES256),
            Setup::Jwks(n) => {
                let provider = Idp::new(n);
                let source = KeySource::jwks(JWKS_URL).http_client(provider.clone());
                idp = Some(provider);
                rules(JwtAuthenticator::from_source(source))
            }
        };
        let layer = match self {
            Setup::Dpop => layer(mode).dpop(Dpop::new(jwt).public_origin(format!("http://{HOST}"))),
            _ => layer(mode).bearer(jwt),
        };
        (Router::new().route("/me", route_get(me)).layer(layer), idp)
    }

    /// A rejection on this setup's route: a Bearer challenge, or a DPoP one.
    fn expect(self, reason: &'static str) -> Expect {
        match self {
            Setup::Dpop => expect(reason).schemes(&["DPoP"]).error_on("DPoP"),
            _ => expect(reason),
        }
    }

    fn scheme(self) -> &'static str {
        match self {
            Setup::Dpop => "DPoP",
            _ => "Bearer",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Rows and their runner
// ---------------------------------------------------------------------------------------

/// What the layer must answer.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// This rejection, with this reason.
    Refused(&'static str),
    /// A 200 for alice: a control, or a row whose comment says why acceptance is right.
    Accepted,
}
use Want::{Accepted, Refused};

/// Reasons decided before any signature is checked: structure, header, key choice.
const BEFORE_CRYPTO: &[&str] = &[
    "authorization_malformed",
    "token_malformed",
    "token_algorithm_rejected",
    "token_crit_unsupported",
    "token_kid_missing",
    "token_key_unknown",
];

/// One attack.
struct Attack {
    name: String,
    setup: Setup,
    request: Box<dyn Fn() -> Request<Body>>,
    want: Want,
    /// Fields the rejection's event must have, besides what [`Outcome::check`] asserts.
    fields: Vec<(&'static str, String)>,
    /// How many signatures the request may cost.
    checks: RangeInclusive<u64>,
    /// The request is sent this many times to one app; all but the last are accepted.
    sends: usize,
}

/// A row: `request` on `setup` must get `want`.
fn attack(
    name: impl Into<String>,
    setup: Setup,
    want: Want,
    request: impl Fn() -> Request<Body> + 'static,
) -> Attack {
    let checks = match (want, setup) {
        (Accepted, Setup::Dpop) => 2..=2,
        (Accepted, _) => 1..=1,
        (Refused(r), _) if BEFORE_CRYPTO.contains(&r) => 0..=0,
        // A proof and a token: each checked at most once.
        (Refused(_), Setup::Dpop) => 0..=2,
        (Refused(_), _) => 1..=1,
    };
    Attack {
        name: name.into(),
        setup,
        request: Box::new(request),
        want,
        fields: Vec::new(),
        checks,
        sends: 1,
    }
}

/// A row whose request is `Authorization: Bearer <token()>`.
fn token(
    name: impl Into<String>,
    setup: Setup,
    want: Want,
    token: impl Fn() -> String + 'static,
) -> Attack {
    attack(name, setup, want, move || bearer_req(&token()))
}

impl Attack {
    fn field(mut self, name: &'static str, value: impl ToString) -> Self {
        self.fields.push((name, value.to_string()));
        self
    }
    /// The claim the event names.
    fn claim(self, name: &'static str) -> Self {
        self.field("claim", name)
    }
    fn checks(mut self, checks: RangeInclusive<u64>) -> Self {
        self.checks = checks;
        self
    }
    fn sends(mut self, sends: usize) -> Self {
        self.sends = sends;
        self
    }

    /// Sends the row's request `sends` times through one app (a replay needs two; the
    /// earlier ones must pass), and asserts the last answer: its reason, the signature
    /// checks it cost, no part of any signature anywhere, and which URLs were fetched.
    async fn attempt(&self, mode: DetailMode) {
        let (app, idp) = self.setup.app(mode);
        for _ in 1..self.sends {
            let first = send(app.clone(), (self.request)()).await;
            assert_eq!(first.status, 200, "the first send: {}", first.text());
        }
        let req = (self.request)();
        let signatures = signature_segments(&req);
        let before = signature_checks();
        let out = send(app, req).await;
        let checks = signature_checks() - before;
        match self.want {
            Accepted => self.accepted(&out),
            Refused(reason) => self.refused(&out, reason, mode),
        }
        assert!(
            self.checks.contains(&checks),
            "{checks} signature checks, expected {:?}",
            self.checks
        );
        assert_no_signature_chunk(&out, &signatures);
        if let Some(idp) = idp {
            let keys_needed = matches!(
                self.want,
                Accepted
                    | Refused(
                        "token_signature_invalid" | "token_key_unknown" | "token_kid_missing"
                    )
            );
            idp.assert_only_configured_url_fetched(keys_needed);
        }
    }

    #[track_caller]
    fn accepted(&self, out: &Outcome) {
        let body = out.ok();
        assert_eq!(
            body,
            json!({ "sub": "alice", "scheme": self.setup.scheme() })
        );
    }

    #[track_caller]
    fn refused(&self, out: &Outcome, reason: &'static str, mode: DetailMode) {
        let mut e = self.setup.expect(reason).mode(mode);
        for (name, value) in &self.fields {
            e = e.field(name, value);
        }
        let r = out.check(&e);
        if BEFORE_CRYPTO.contains(&reason) || reason == "token_signature_invalid" {
            let verified = r.event.get("signature_verified");
            assert_ne!(verified, Some("true"), "a forgery logged as verified");
        }
    }
}

/// The last segment of every credential the request carries: `Authorization` after its
/// scheme, `DPoP`.
fn signature_segments(req: &Request<Body>) -> Vec<String> {
    let values = ["authorization", "dpop"]
        .into_iter()
        .flat_map(|name| req.headers().get_all(name));
    values
        .map(|v| {
            let text = String::from_utf8_lossy(v.as_bytes()).into_owned();
            let credential = text.trim().rsplit(' ').next().unwrap_or_default();
            signature(credential).to_owned()
        })
        .collect()
}

/// No 16-character chunk of any of `signatures` in any event, the body or a challenge.
#[track_caller]
fn assert_no_signature_chunk(out: &Outcome, signatures: &[String]) {
    let mut texts: Vec<String> = out.events.iter().map(Captured::line).collect();
    texts.push(out.text());
    texts.extend(
        out.header_all("www-authenticate")
            .into_iter()
            .map(str::to_owned),
    );
    for sig in signatures {
        for chunk in sig.as_bytes().windows(16) {
            let chunk = String::from_utf8_lossy(chunk);
            for text in &texts {
                assert!(
                    !text.contains(&*chunk),
                    "{chunk:?} of signature {sig:?} is in {text}"
                );
            }
        }
    }
}

/// A runtime on this thread.
fn runtime() -> tokio::runtime::Runtime {
    let builder = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    builder.unwrap()
}

/// Runs every row of the table in both detail modes, each on a fresh app and runtime,
/// and reports every failure with its row's name.
fn run_table() {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let mut failures = Vec::new();
    for mode in [DetailMode::Production, DetailMode::Verbose] {
        for row in attacks() {
            let rt = runtime();
            let result = catch_unwind(AssertUnwindSafe(|| rt.block_on(row.attempt(mode))));
            let at = format!("row {:?} ({mode:?})", row.name);
            if let Err(e) = result {
                let why = panic_message::<()>(Err(e));
                failures.push(format!("{at}: {why}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------

#[rustfmt::skip]
fn attacks() -> Vec<Attack> {
    use Setup::*;
    let malformed = Refused("token_malformed");
    let forged = Refused("token_signature_invalid");
    let bad_alg = Refused("token_algorithm_rejected");
    let no_key = Refused("token_key_unknown");
    let mut rows = Vec::new();

    // R-38: alg none in any spelling, unsigned or signed with our secret anyway: alg is
    // case-sensitive (RFC 7515 §4.1.1), and none of them is on the allow-list.
    for alg in ["none", "None", "NONE", "nOnE"] {
        rows.push(token(format!("alg {alg}, a trailing dot and no signature"), Hs256, bad_alg,
            move || with_signature(&under(alg, &ours()), "")).field("alg", alg));
        rows.push(token(format!("alg {alg}, signed with our secret anyway"), Hs256, bad_alg,
            move || under(alg, &ours())).field("alg", alg));
    }
    for alg in ["none", "nOnE"] {
        rows.push(token(format!("alg {alg}, no trailing dot (two segments)"), Hs256, malformed,
            move || under(alg, &ours()).rsplit_once('.').unwrap().0.to_owned()));
    }
    rows.push(token("alg hs256 in lower case, signed with our secret", Hs256, bad_alg,
        || under("hs256", &ours())));
    rows.push(token("our token, its signature stripped", Hs256, malformed,
        || with_signature(&hs256(&good_claims()), "")));

    // R-37: RS256 → HS256 key confusion, the RSA public key as the HMAC secret: the PEM as
    // served, without its trailing newline, its JWK. HS256 is not on an RSA key's
    // allow-list; where it is allowed, the RSA key still verifies RS256 only.
    let pem_key = || secret(&pem("rsa_public"));
    let trimmed_key = || secret(pem("rsa_public").trim_ascii_end());
    let jwk_key = || secret(&serde_json::to_vec(&public_jwk(&private("rsa"), "k0")).unwrap());
    rows.push(token("HS256 keyed with the RSA public key PEM", RsaPem, bad_alg,
        move || under("HS256", &pem_key())).field("alg", "HS256"));
    rows.push(token("HS256 keyed with the PEM without its trailing newline", RsaPem, bad_alg,
        move || under("HS256", &trimmed_key())));
    rows.push(token("HS256 keyed with the PEM, against a JWK set", Jwks(1), bad_alg,
        move || by(&pem_key(), json!({ "kid": "k0" }), json!({}))));
    rows.push(token("HS256 keyed with the JWK JSON, against a JWK set", Jwks(1), bad_alg,
        move || by(&jwk_key(), json!({ "kid": "k0" }), json!({}))));
    rows.push(token("HS256 keyed with the PEM, HS256 allowed: no key serves it",
        RsaPemHs256Allowed, no_key, move || under("HS256", &pem_key())));
    rows.push(token("HS256 keyed with the trimmed PEM, HS256 allowed", RsaPemHs256Allowed,
        no_key, move || under("HS256", &trimmed_key())));
    rows.push(token("HS256 keyed with a blank secret", Hs256, forged,
        || under("HS256", &secret(b""))));
    rows.push(token("ES256, well signed, against RS256", RsaPem, bad_alg,
        || under("ES256", &private("ec256"))));
    rows.push(token("PS256 by the RSA key itself, against RS256", RsaPem, bad_alg,
        || under("PS256", &(PS256, private("rsa").1))));
    rows.push(token("control: RS256 by the RSA key", RsaPem, Accepted,
        || under("RS256", &private("rsa"))));

    // ES256 psychic signatures (CVE-2022-21449): r = s = 0, raw and DER; r = s = n.
    let es256_token = || under("ES256", &private("ec256"));
    let es256 = move |sig: Vec<u8>| move || with_signature(&es256_token(), &b64url(&sig));
    rows.push(token("ES256 r = s = 0, 64 zero bytes", Es256, forged, es256(vec![0; 64])));
    rows.push(token("ES256 r = s = 0, DER", Es256, forged, es256(vec![0x30, 6, 2, 1, 0, 2, 1, 0])));
    rows.push(token("ES256 r = s = n, the group order", Es256, forged,
        es256([p256_order(), p256_order()].concat())));
    rows.push(token("control: ES256 by the key", Es256, Accepted, es256_token));

    // R-45: keys a token names itself are never fetched nor used. The attacker signs with
    // rsa2; the Idp keeps every URL it is asked for, and only the configured one may be.
    let attacker = |extra: Value| move || by(&private("rsa2"), extra.clone(), json!({}));
    let evil_jwk = public_jwk(&private("rsa2"), "k0");
    rows.push(token("an embedded jwk of the attacker's key", RsaPem, forged,
        attacker(json!({ "jwk": evil_jwk }))));
    rows.push(token("an embedded jwk of the attacker's key, against a JWK set", Jwks(1), forged,
        attacker(json!({ "jwk": evil_jwk }))));
    rows.push(token("jku to the attacker, a kid of its own", Jwks(1), no_key,
        attacker(json!({ "jku": EVIL_URL, "kid": "evil-1" }))).field("kid", "evil-1"));
    rows.push(token("jku to a loopback port, a kid of its own", Jwks(1), no_key,
        attacker(json!({ "jku": "http://127.0.0.1:1/jwks", "kid": "evil-2" }))));
    let chain = json!([b64(&pem("rsa2_public"))]);
    for (member, value) in [("jku", json!(EVIL_URL)), ("x5u", json!(EVIL_URL)), ("x5c", chain)] {
        rows.push(token(format!("{member} of the attacker, the issuer's kid"), Jwks(1), forged,
            attacker(json!({ member: value, "kid": "k0" }))));
    }

    // R-45: kid is a name to look up, never a path or a query: `../../dev/null` with the
    // empty secret /dev/null holds; SQL; a CRLF and a header line after it.
    rows.push(token("kid ../../dev/null, signed with an empty secret", Hs256, forged,
        || by(&secret(b""), json!({ "kid": "../../dev/null" }), json!({}))));
    for kid in ["../../dev/null", "' OR 1=1 --", "k0\r\nX-Injected: yes"] {
        rows.push(token(format!("kid {kid:?} against a JWK set"), Jwks(1), no_key,
            attacker(json!({ "kid": kid }))));
    }
    rows.push(token("kid a number, not a string", Jwks(1), malformed,
        attacker(json!({ "kid": 0 }))));

    // Tampering: the payload or header changed under the original signature; a signature
    // changed only in bits base64 leaves unused: refused, because the decoder rejects
    // non-canonical trailing bits (RFC 4648 §3.5), although the bytes a lenient decoder
    // would read are the original signature's ([`flip_unused_bit`] asserts they are).
    let rs256_k0 = || by(&private("rsa"), json!({ "kid": "k0" }), json!({}));
    rows.push(token("payload tampered, sub alice → admin", Hs256, forged,
        || tampered(&hs256(&good_claims()), "alice", "admin")));
    rows.push(token("payload tampered, RS256 from the set", Jwks(1), forged,
        move || tampered(&rs256_k0(), "alice", "admin")));
    rows.push(token("header tampered, a kid added", Hs256, forged, || {
        let kid = b64url(&header("HS256", json!({ "kid": "x" })));
        format!("{kid}.{}", hs256(&good_claims()).split_once('.').unwrap().1)
    }));
    rows.push(token("HS256 signature, an unused bit flipped", Hs256, forged,
        || flip_unused_bit(&hs256(&good_claims()))));
    rows.push(token("RS256 signature, an unused bit flipped", Jwks(1), forged,
        move || flip_unused_bit(&rs256_k0())));
    rows.push(token("ES256 signature, an unused bit flipped", Es256, forged,
        || flip_unused_bit(&under("ES256", &private("ec256")))));
    rows.push(token("signature with base64 = padding", Hs256, malformed,
        || format!("{}=", hs256(&good_claims()))));

    // The header: crit (RFC 7515 §4.1.11), a JWE (R-45), a duplicate alg (RFC 7515 §5.2:
    // refused, never read by whichever member comes last).
    let crit = Refused("token_crit_unsupported");
    for (name, want, h) in [
        ("crit naming an unknown extension", crit, r#"{"alg":"HS256","crit":["x-a"],"x-a":1}"#),
        ("crit b64 with b64 false (RFC 7797)", crit, r#"{"alg":"HS256","crit":["b64"],"b64":0}"#),
        ("duplicate alg, HS256 then none", malformed, r#"{"alg":"HS256","alg":"none"}"#),
        ("duplicate alg, none then HS256", malformed, r#"{"alg":"none","alg":"HS256"}"#),
    ] {
        rows.push(token(name, Hs256, want,
            move || signed(h.as_bytes(), &payload(json!({})), &ours())));
    }
    rows.push(token("a JWE, five segments", Hs256, malformed, || {
        let (h, p) = (br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#, payload(json!({})));
        let parts: [&[u8]; 5] = [h, &[7; 256], &[1; 12], &p, &[9; 16]];
        parts.map(b64url).join(".")
    }));

    // Claim types (reasons.md token_claim_invalid: exp/nbf/iat numbers, aud a string or
    // strings, iss a string). Any JSON number is a NumericDate: a fraction is truncated, a
    // huge one saturates. So a float exp in the future, or an exp of 1e308 or u64::MAX,
    // signed by our issuer, is accepted: the documented contract, the issuer's word.
    let ours_with = |edits: Value| move || hs256(&claims(edits.clone()));
    let later = now() + 3600;
    for name in ["exp", "nbf", "iat"] {
        rows.push(token(format!("{name} as a string"), Hs256, Refused("token_claim_invalid"),
            ours_with(json!({ name: later.to_string() }))).claim(name));
    }
    for (name, claim, value) in [
        ("aud a number", "aud", json!(12345)),
        ("aud an array holding a number", "aud", json!([AUDIENCE, 1])),
        ("iss a number", "iss", json!(1)),
    ] {
        rows.push(token(name, Hs256, Refused("token_claim_invalid"),
            ours_with(json!({ claim: value }))).claim(claim));
    }
    let (expired, early) = (Refused("token_expired"), Refused("token_not_yet_valid"));
    for (name, want, claim, value) in [
        ("exp a float in the future (accepted)", Accepted, "exp", json!(later as f64 + 0.5)),
        ("exp a float in the past", expired, "exp", json!((now() - 7200) as f64 + 0.5)),
        ("nbf a float in the future", early, "nbf", json!(later as f64 + 0.5)),
        ("exp 1e308 (accepted: a number, saturated)", Accepted, "exp", json!(1e308)),
        ("exp u64::MAX (accepted: a number, saturated)", Accepted, "exp", json!(u64::MAX)),
        ("exp -1e308", expired, "exp", json!(-1e308)),
        ("nbf 1e308", early, "nbf", json!(1e308)),
        ("iat u64::MAX", early, "iat", json!(u64::MAX)),
    ] {
        let row = token(name, Hs256, want, ours_with(json!({ claim: value })));
        let early = matches!(want, Refused("token_not_yet_valid"));
        rows.push(if early { row.claim(claim) } else { row });
    }
    rows.push(token("exp 1e400, beyond f64", Hs256, malformed,
        || ours_raw(&raw_claim("exp", b"1e400"))));
    rows.push(token("exp 1e308 and nbf -1e308, forged", Hs256, forged,
        || by(&secret(b"guess"), json!({}), json!({ "exp": 1e308, "nbf": -1e308 }))));

    // Size: the 16 KiB cap is exact; past 18 KiB the Authorization value itself is refused.
    rows.push(token("a token of exactly 16 KiB (accepted: at the cap)", Hs256, Accepted,
        || sized(16 * 1024)));
    rows.push(token("a token of 16 KiB and one byte", Hs256, malformed, || sized(16 * 1024 + 1)));
    rows.push(token("a token of 20 KiB", Hs256, Refused("authorization_malformed"),
        || sized(20 * 1024)));

    // Deep nesting: in a claim, thousands of levels are malformed JSON (serde_json's
    // recursion limit), never a stack overflow; in an unknown header member they are
    // skipped without recursion, and the forgery is found by its signature.
    let deep = |n: usize, open: &str, close: &str| [open.repeat(n), close.repeat(n)].concat();
    let arrays = deep(5000, "[", "]");
    let objects = deep(2000, r#"{"":"#, "}").replacen('}', "1}", 1);
    for (name, raw) in [("5000 nested arrays", arrays.clone()), ("2000 nested objects", objects)] {
        rows.push(token(format!("a claim of {name}"), Hs256, malformed,
            move || ours_raw(&raw_claim("x", raw.as_bytes()))));
    }
    rows.push(token("a header member of 5000 nested arrays, forged", Hs256, forged, move || {
        let h = format!(r#"{{"alg":"HS256","x":{arrays}}}"#);
        signed(h.as_bytes(), &payload(json!({})), &secret(b"guess"))
    }));

    // Invalid UTF-8 inside base64url segments, and raw in the header field.
    rows.push(token("header with a byte 0xff", Hs256, malformed,
        || signed(b"{\"alg\":\"HS256\",\"typ\":\"JW\xff\"}", &payload(json!({})), &ours())));
    let invalid: [(&str, &[u8]); 2] =
        [("an invalid UTF-8 sequence", b"\"al\xc3\x28ice\""), ("a lone surrogate", br#""\ud800""#)];
    for (name, raw) in invalid {
        rows.push(token(format!("sub with {name}"), Hs256, malformed,
            move || ours_raw(&raw_claim("sub", raw))));
    }
    rows.push(attack("a raw byte 0xff in the Authorization value", Hs256,
        Refused("authorization_malformed"), || {
            let value = [b"Bearer ".as_slice(), hs256(&good_claims()).as_bytes(), b"\xff"].concat();
            request(Method::GET, "/me", vec![("authorization", hv(value))])
        }));

    // R-39: another issuer's token signed with our own key; an issuer a JWK set does not
    // belong to is refused before any key is consulted or fetched.
    let mismatch = Refused("token_issuer_mismatch");
    let evil_iss = json!({ "iss": "https://evil.example" });
    rows.push(token("iss another issuer, signed with our secret", Hs256, mismatch,
        ours_with(evil_iss.clone())));
    rows.push(token("iss ours with a trailing slash", Hs256, mismatch,
        ours_with(json!({ "iss": format!("{ISSUER}/") }))));
    rows.push(token("iss another issuer, signed by the set's own key", Jwks(1), mismatch,
        move || by(&private("rsa"), json!({ "kid": "k0" }), evil_iss.clone())).checks(0..=0));

    // CPU amplification against 50 keys: no kid, an unknown kid, an algorithm no key has
    // cost no signature check (the defaults of [`attack`]); a known kid exactly one.
    rows.push(token("50 keys, a forgery without kid", Jwks(50), Refused("token_kid_missing"),
        attacker(json!({}))));
    rows.push(token("50 keys, a forgery with an unknown kid", Jwks(50), no_key,
        attacker(json!({ "kid": "k50" }))));
    rows.push(token("50 keys, ES256 without kid", Jwks(50), no_key, es256_token));
    rows.push(token("50 keys, a forgery naming k0", Jwks(50), forged,
        attacker(json!({ "kid": "k0" }))));
    rows.push(token("control: 50 keys, the issuer's token naming k48", Jwks(50), Accepted,
        || by(&private("rsa"), json!({ "kid": "k48" }), json!({}))));

    // DPoP (R-48, R-49). The client is tests/keys/ec256; the demo client's key is another.
    let (demo_jwk, demo_jkt) = demo_client::dpop_jwk();
    let replayed = {
        let token = client_token();
        let proof = client_proof(&token, json!({}));
        move || dpop_req("/me", &token, &proof)
    };
    rows.push(attack("DPoP: a proof replayed", Dpop, Refused("dpop_proof_replayed"), replayed)
        .sends(2).field("check", "jti"));
    rows.push(attack("DPoP: a proof naming the demo key, signed by another", Dpop,
        Refused("dpop_proof_signature_invalid"), move || {
            let token = bound(&demo_jkt);
            let proof = proof(&token, &private("ec256"), json!({ "jwk": demo_jwk }), json!({}));
            dpop_req("/me", &token, &proof)
        }));
    rows.push(attack("DPoP: a right proof by another key than the token's", Dpop,
        Refused("dpop_key_mismatch"), || {
            let token = client_token();
            let htu = format!("http://{HOST}/me");
            dpop_req("/me", &token, &demo_client::dpop_proof("GET", &htu, &token, now()))
        }));
    // The proof's htu is logged with its query (FINDING 1): the row whose request carries
    // a code in its query, mirrored into htu as a client that builds htu from its request
    // URL would, fails the suite's invariant that no event holds a request's secret.
    let htu = |path: &'static str, htu: &'static str| move || {
        let token = client_token();
        let htu = format!("http://{HOST}{htu}");
        dpop_req(path, &token, &client_proof(&token, json!({ "htu": htu })))
    };
    rows.push(attack("DPoP: htu with a query (accepted: the query is ignored)", Dpop, Accepted,
        htu("/me?page=2", "/me?page=1")));
    let url_mismatch = Refused("dpop_proof_url_mismatch");
    rows.push(attack("DPoP: htu with a query, another path", Dpop, url_mismatch,
        htu("/me", "/other?page=1")).field("check", "htu"));
    rows.push(attack("DPoP: htu of another path, mirroring the request's ?code=", Dpop,
        url_mismatch, htu("/me?code=SplxlOBeZQQYbYS6WxSbIA", "/other?code=SplxlOBeZQQYbYS6WxSbIA"))
        // The proof's htu query (and user) never reaches the log or the answer.
        .field("check", "htu"));
    rows.push(attack("DPoP: ath missing", Dpop, Refused("dpop_proof_claim_missing"), || {
        let token = client_token();
        dpop_req("/me", &token, &client_proof(&token, json!({ "ath": null })))
    }).claim("ath"));
    rows.push(attack("DPoP: the private d in the proof's jwk", Dpop,
        Refused("dpop_proof_key_invalid"), || {
            let token = client_token();
            let mut jwk = client_jwk();
            jwk["d"] = json!(b64url(&[0x5a; 32]));
            let proof = proof(&token, &private("ec256"), json!({ "jwk": jwk }), json!({}));
            dpop_req("/me", &token, &proof)
        }));
    rows.push(attack("DPoP: a proof with alg none", Dpop,
        Refused("dpop_proof_algorithm_rejected"), || {
            let token = client_token();
            let proof = proof(&token, &private("ec256"), json!({ "alg": "none" }), json!({}));
            dpop_req("/me", &token, &with_signature(&proof, ""))
        }));
    rows.push(token("DPoP: a bound token sent as Bearer", Hs256, Refused("token_dpop_bound"),
        client_token).field("signature_verified", true));
    rows.push(attack("control: DPoP with a right proof", Dpop, Accepted, || {
        let token = client_token();
        dpop_req("/me", &token, &client_proof(&token, json!({})))
    }));

    rows
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn every_attack_gets_its_exact_answer() {
    run_table();
}

#[test]
fn the_table_has_forty_attacks_with_distinct_names() {
    let rows = attacks();
    let refused = rows.iter().filter(|r| matches!(r.want, Refused(_))).count();
    assert!(refused >= 40, "{refused} refusals");
    let mut names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "row names repeat");
}
