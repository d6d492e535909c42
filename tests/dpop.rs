//! DPoP (RFC 9449, shared/spec/standards.md R-46..R-51): `Authorization: DPoP <token>`
//! with a `DPoP` proof, through the layer with the suite's `send` and `check`.
//!
//! Every proof is built here: a raw JOSE header (so a test can put anything in it) over
//! claims, signed with jsonwebtoken. Keys are tests/keys/*.pem; their public JWK members
//! were computed once with openssl (`openssl pkey -pubout -outform DER`, the trailing
//! point bytes / `openssl rsa -modulus`) and are written out below. The "other" P-256 key
//! is the demo client's key of examples/mint.rs. Access tokens are HS256 ([`jwt`]) bound
//! by `cnf.jkt`, an RFC 7638 thumbprint computed here, independently of the crate.
//!
//! Most cases are [`Row`]s of a table: a name, how the right request is altered, and what
//! the layer must answer (reason, the event's `check` and `claim`, the challenge's
//! `error`). [`run`] sends every request of a row to a fresh app in both detail modes and
//! asserts, besides, what every answer owes (see [`Row::send`]). Flows of several requests
//! (nonces, replays) are tests of their own on the same helpers.
//!
//! Besides what `send` asserts for every request, [`send_dpop`] asserts that no event and
//! no body holds a `DPoP` header value or a proof's signature segment (the suite's secret
//! list does not know that header), nor the access token or a `Proxy-Authorization`
//! credential.
mod common;
use common::*;
use tower::Layer as _;

use auth_diagnostics::dpop::Dpop;
use auth_diagnostics::keys::{Algorithm, StaticKey};
use auth_diagnostics::store::{
    MemoryReplayStore, ProofId, ReplayError, ReplayFuture, ReplayOutcome, ReplayStore,
};
use auth_diagnostics::Principal;
use axum::body::Body;
use axum::routing::get as route_get;
use axum::Router;
use http::Request;
use jsonwebtoken::EncodingKey;
use serde_json::{json, Map};
use sha2::{Digest, Sha256};
use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use Algorithm::{EdDSA, ES256, ES384, HS256, PS256, RS256};
use DetailMode::{Production, Verbose};

const MODES: [DetailMode; 2] = [Verbose, Production];

/// The host every request names, and so the origin of every proof's `htu`.
const HOST: &str = "api.test";

/// The algorithms a DPoP challenge advertises by default (R-47).
const ALGS: &str = "ES256 PS256";

/// The challenge errors: RFC 9449 §7.1 and RFC 6750 §3.1.
const BAD_PROOF: Option<&str> = Some("invalid_dpop_proof");
const BAD_TOKEN: Option<&str> = Some("invalid_token");
const NO_ERROR: Option<&str> = None;

/// A made-up private `d` for a jwk: what matters is that it is never repeated.
const PRIVATE_D: &str = "PRIVATEd0123456789abcdefghijklmnopqrstuvwxyzA";
/// Quotes, a CRLF with a header line after it, a bell and a right-to-left override.
const NASTY: &str = "a\"b\\c\r\nInjected: yes\u{7}\u{202e}";

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

/// tests/keys/ec256_private.pem, public point.
const EC256_X: &str = "mOdDdERtdUohEyBt2KLtjJqOcsoVVNPdyU8N2gjwXH4";
const EC256_Y: &str = "QWuiB8Ik1G8LXz9lLyLF3EbQKzVu2Cu0QCHoahdvOSs";
/// tests/keys/ec384_private.pem, public point.
const EC384_X: &str = "c-46NNSnIaHxYlfkZ1BJzvfmGqaMxftNYmjLe8kY5iizgPYHvIsiksGVQbl1MtNx";
const EC384_Y: &str = "b6MNVaPJrHO9DbDQ4COszSEAHT7kTrNopnL7GpJk3SG8gOGY-3TrUAlqpR73iQSj";
/// tests/keys/ed25519_private.pem, public key.
const ED25519_X: &str = "JnSGtyABVHcNrcCOYvUjirkbUu5NUIwgtsjlGHWMmqU";
/// tests/keys/rsa_private.pem, modulus (e is AQAB).
const RSA_N: &str = "xSpd29PM2kXlwjLEMBgFolpakth2jb3D9upuqzg7pFLTcS2sb4AN9ubie_aqujHlWheI97bgSYa59V7ZCeIqidTmCTg1Zi7U6RTzIy26CjHVoHeNnK0Jbh-z05W_LiWKwioN62Tve3AUUFRwuiY7MbdrYLrQw706L1gKu5isu4Z8afuXdVrj5EsnhL0Vw90S2M0yAwGpXeC6UF-qCH9b9naaGJZ7KAuQ6RHRsxQJnDWNhiKCtz8q7GTAsyvS2hkHdKTrd_auPeJPRVzQpBko1n00HFtFeJDRsXCAT8kr4qZgBxj9zBMpu1TTlDpGOP-7SHhThDaugNbhd0QprcNXKQ";
/// The demo client's P-256 key (examples/mint.rs): "another key".
const OTHER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgrSgjBYHKveycBQHE
ASctKFiBOlprw1SJTHRMjus29GuhRANCAARjFMqOapyfrVmPDBt5uhPkSwLCYwy+
/ZjlgMUJgbQF42ajBAed15B09VF/lzgefiktr5f58kmRx0yCh4gbhCVW
-----END PRIVATE KEY-----";
const OTHER_X: &str = "YxTKjmqcn61ZjwwbeboT5EsCwmMMvv2Y5YDFCYG0BeM";
const OTHER_Y: &str = "ZqMEB53XkHT1UX-XOB5-KS2vl_nySZHHTIKHiBuEJVY";

/// A client's proof key: the algorithm it signs with, its public JWK, its private half.
#[derive(Clone)]
struct Key {
    alg: Algorithm,
    jwk: Value,
    private: EncodingKey,
}

/// A P-256 or P-384 public JWK.
fn ec(crv: &str, x: &str, y: &str) -> Value {
    json!({ "kty": "EC", "crv": crv, "x": x, "y": y })
}

/// `value` with `name` set to `member`.
fn with(mut value: Value, name: &str, member: &str) -> Value {
    value[name] = json!(member);
    value
}

/// JSON strings.
fn strings<const N: usize>(values: [&str; N]) -> [Value; N] {
    values.map(|v| json!(v))
}

/// An HMAC key.
fn secret(bytes: &[u8]) -> EncodingKey {
    EncodingKey::from_secret(bytes)
}

/// The key of tests/keys that signs with `alg` (RS256 and PS256 share the RSA key).
/// ES256 is the client's key in most tests.
fn key(alg: Algorithm) -> Key {
    let (jwk, file) = match alg {
        ES256 => (ec("P-256", EC256_X, EC256_Y), "ec256"),
        ES384 => (ec("P-384", EC384_X, EC384_Y), "ec384"),
        EdDSA => (
            json!({ "kty": "OKP", "crv": "Ed25519", "x": ED25519_X }),
            "ed25519",
        ),
        _ => (json!({ "kty": "RSA", "n": RSA_N, "e": "AQAB" }), "rsa"),
    };
    let dir = env!("CARGO_MANIFEST_DIR");
    let pem = std::fs::read(format!("{dir}/tests/keys/{file}_private.pem")).unwrap();
    let private = match file {
        "rsa" => EncodingKey::from_rsa_pem(&pem),
        "ed25519" => EncodingKey::from_ed_pem(&pem),
        _ => EncodingKey::from_ec_pem(&pem),
    };
    let private = private.unwrap();
    Key { alg, jwk, private }
}

/// Another P-256 key.
fn other_ec256() -> Key {
    let private = EncodingKey::from_ec_pem(OTHER_KEY.as_bytes()).unwrap();
    let jwk = ec("P-256", OTHER_X, OTHER_Y);
    Key {
        alg: ES256,
        jwk,
        private,
    }
}

impl Key {
    /// RFC 7638: SHA-256 over the required members in lexicographic order, no spaces.
    fn jkt(&self) -> String {
        let m = |name: &str| self.jwk[name].as_str().unwrap_or_default();
        let (crv, x, y, e, n) = (m("crv"), m("x"), m("y"), m("e"), m("n"));
        let canonical = match m("kty") {
            "EC" => format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#),
            "RSA" => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            "OKP" => format!(r#"{{"crv":"{crv}","kty":"OKP","x":"{x}"}}"#),
            other => panic!("no thumbprint for {other}"),
        };
        b64url(&Sha256::digest(canonical.as_bytes()))
    }
}

// ---------------------------------------------------------------------------------------
// Proofs, tokens and requests
// ---------------------------------------------------------------------------------------

/// `htu` for `path` on [`HOST`].
fn htu(path: &str) -> String {
    format!("http://{HOST}{path}")
}

/// `ath`: base64url(SHA-256(token)).
fn ath(token: &str) -> String {
    b64url(&Sha256::digest(token.as_bytes()))
}

/// A fresh `jti` per proof.
fn jti() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("jti-{}-{}", now(), N.fetch_add(1, Ordering::Relaxed))
}

/// A proof under construction: a raw JOSE header and claims, and the key and algorithm
/// that sign it (the header's own, unless a test says otherwise).
#[derive(Clone)]
struct Proof {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signer: (Algorithm, EncodingKey),
}

/// A right proof by `key` for `htm` on `path` of [`HOST`], bound to `token` by `ath`.
fn proof(key: &Key, htm: &str, path: &str, token: &str) -> Proof {
    let header = json!({ "typ": "dpop+jwt", "alg": format!("{:?}", key.alg), "jwk": key.jwk });
    let claims = json!({
        "jti": jti(),
        "htm": htm,
        "htu": htu(path),
        "iat": now(),
        "ath": ath(token),
    });
    Proof {
        header: header.as_object().unwrap().clone(),
        claims: claims.as_object().unwrap().clone(),
        signer: (key.alg, key.private.clone()),
    }
}

/// Sets `name` in `map` to `value`; `null` removes it.
fn set(mut map: Map<String, Value>, name: &str, value: Value) -> Map<String, Value> {
    match value {
        Value::Null => map.remove(name),
        v => map.insert(name.to_owned(), v),
    };
    map
}

impl Proof {
    /// Sets a header member; `null` removes it.
    fn header(self, name: &str, value: Value) -> Self {
        let header = set(self.header, name, value);
        Proof { header, ..self }
    }
    /// Sets a claim; `null` removes it.
    fn claim(self, name: &str, value: Value) -> Self {
        let claims = set(self.claims, name, value);
        Proof { claims, ..self }
    }
    /// Signs with `alg` and `key` whatever the header says.
    fn signed_with(self, alg: Algorithm, key: EncodingKey) -> Self {
        let signer = (alg, key);
        Proof { signer, ..self }
    }
    fn message(&self) -> String {
        let part = |m: &Map<String, Value>| b64url(&serde_json::to_vec(m).unwrap());
        format!("{}.{}", part(&self.header), part(&self.claims))
    }
    /// The compact JWS.
    fn sign(&self) -> String {
        let message = self.message();
        let (alg, key) = &self.signer;
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), key, *alg).unwrap();
        format!("{message}.{sig}")
    }
    /// Header and claims with an empty signature (`alg: none`).
    fn unsigned(&self) -> String {
        format!("{}.", self.message())
    }
}

/// An access token for alice bound to `key` (`cnf.jkt`).
fn bound(key: &Key) -> String {
    hs256(&claims(json!({ "cnf": { "jkt": key.jkt() } })))
}

/// `DPoP <token>`.
fn dpop(token: &str) -> String {
    format!("DPoP {token}")
}

/// `method path` on [`HOST`] with `Authorization: DPoP <token>` and `DPoP: <proof>`.
fn dpop_req(method: Method, path: &str, token: &str, proof: &str) -> Request<Body> {
    let auth = dpop(token);
    let headers = [("host", HOST), ("authorization", &auth), ("dpop", proof)];
    request(method, path, headers.map(|(k, v)| (k, hv(v))).to_vec())
}

/// A client: its key and an access token bound to it.
struct Client {
    key: Key,
    token: String,
}

impl Client {
    fn new(key: Key) -> Self {
        let token = bound(&key);
        Client { key, token }
    }
    /// A right proof for GET `/me` with the client's token.
    fn proof(&self) -> Proof {
        proof(&self.key, "GET", "/me", &self.token)
    }
    /// GET `/me` on [`HOST`] with the client's token and `extra` headers.
    fn with(&self, extra: &[(&str, &str)]) -> Request<Body> {
        let authorization = dpop(&self.token);
        let mut headers = vec![("host", HOST), ("authorization", &authorization)];
        headers.extend_from_slice(extra);
        get("/me", &headers)
    }
    /// GET `/me` with the client's token and `DPoP: <proof>`.
    fn get(&self, proof: &str) -> Request<Body> {
        self.with(&[("dpop", proof)])
    }
    /// A right proof for GET `/me` by `key` (its `jwk`, its signature).
    fn proof_by(&self, key: &Key) -> Proof {
        proof(key, "GET", "/me", &self.token)
    }
    /// GET `path` with the client's token and a right proof for it.
    fn at(&self, path: &str) -> Request<Body> {
        let proof = proof(&self.key, "GET", path, &self.token).sign();
        dpop_req(Method::GET, path, &self.token, &proof)
    }
    /// GET `/me` with exactly `headers` and a right proof.
    fn with_proof(&self, headers: &[(&str, &str)]) -> Request<Body> {
        let proof = self.right_proof();
        get("/me", &[headers, &[("dpop", &proof)]].concat())
    }
    /// A right proof, signed.
    fn right_proof(&self) -> String {
        self.proof().sign()
    }
    /// The right request: GET `/me` with a right proof.
    fn right(&self) -> Request<Body> {
        self.get(&self.right_proof())
    }
    /// GET `/me` with `token` instead, and a right proof for it.
    fn with_token(&self, token: &str) -> Request<Body> {
        let proof = proof(&self.key, "GET", "/me", token).sign();
        dpop_req(Method::GET, "/me", token, &proof)
    }
    /// GET `/me` with the client's token and a raw `DPoP` value.
    fn raw_dpop(&self, value: &[u8]) -> Request<Body> {
        let (host, auth, dpop) = (hv(HOST), hv(dpop(&self.token)), hv(value));
        let headers = vec![("host", host), ("authorization", auth), ("dpop", dpop)];
        request(Method::GET, "/me", headers)
    }
}

// ---------------------------------------------------------------------------------------
// Apps
// ---------------------------------------------------------------------------------------

async fn hello(p: Principal) -> axum::Json<Value> {
    axum::Json(json!({ "sub": p.id(), "scheme": p.scheme().map(|s| s.as_str()) }))
}

/// `/me` (GET and POST) and `/other`, answering the principal's `sub` and `scheme`.
fn routes() -> Router {
    Router::new()
        .route("/me", route_get(hello).post(hello))
        .route("/other", route_get(hello))
}

/// The suite's DPoP configuration: the default one for [`HOST`] over http, with the
/// suite's token verifier.
fn ours() -> Dpop {
    Dpop::new(jwt()).public_origin(format!("http://{HOST}"))
}

/// [`routes`] behind a DPoP-only layer: [`ours`], as `edit` changes it.
fn dpop_app(mode: DetailMode, edit: impl FnOnce(Dpop) -> Dpop) -> Router {
    routes().layer(layer(mode).dpop(edit(ours())))
}

/// The origin taken from `Host`, for local development only.
fn host_app(mode: DetailMode) -> Router {
    routes().layer(layer(mode).dpop(Dpop::new(jwt()).insecure_origin_from_host()))
}

fn app(mode: DetailMode) -> Router {
    dpop_app(mode, |d| d)
}

/// A route that accepts Bearer and DPoP.
fn both_app(mode: DetailMode) -> Router {
    routes().layer(layer(mode).bearer(jwt()).dpop(ours()))
}

/// Every algorithm the layer can check proofs with.
fn every_alg(mode: DetailMode) -> Router {
    dpop_app(mode, |d| d.algorithms([ES256, ES384, PS256, RS256, EdDSA]))
}

/// Clients prove `https://api.example`, not the URL the request arrived at.
fn external_app(mode: DetailMode) -> Router {
    let d = Dpop::new(jwt()).public_origin("https://api.example");
    routes().layer(layer(mode).dpop(d))
}

/// Two origins; behind the second a proxy strips `/orders`.
fn two_origins(mode: DetailMode) -> Router {
    let d = Dpop::new(jwt())
        .public_origin("https://api.example")
        .public_origin("https://shop.example:8443/orders/");
    routes().layer(layer(mode).dpop(d))
}

/// [`two_origins`] without the path guard, which would refuse a dot segment before the
/// proof's `htu` is compared.
fn two_origins_unguarded(mode: DetailMode) -> Router {
    let d = Dpop::new(jwt())
        .public_origin("https://api.example")
        .public_origin("https://shop.example:8443/orders/");
    let layer = layer(mode).path_guard(auth_diagnostics::layer::PathGuard::Off);
    routes().layer(layer.dpop(d))
}

/// Nonces required (R-46).
fn nonce_app(mode: DetailMode) -> Router {
    dpop_app(mode, |d| d.require_nonce(Duration::from_secs(60)))
}

/// Proofs at most 10 s old, no leeway.
fn short_max_age(mode: DetailMode) -> Router {
    let (max_age, leeway) = (Duration::from_secs(10), Duration::ZERO);
    dpop_app(mode, |d| d.proof_max_age(max_age).proof_leeway(leeway))
}

/// `/admin` (scope `admin`) besides [`routes`], DPoP only.
fn admin_app(mode: DetailMode) -> Router {
    let scoped = auth_diagnostics::authz::RequireScope::new(["admin"]);
    let admin = route_get(|| async { "admin" }).route_layer(scoped);
    routes()
        .route("/admin", admin)
        .layer(layer(mode).dpop(ours()))
}

// ---------------------------------------------------------------------------------------
// Sending and checking
// ---------------------------------------------------------------------------------------

/// What must appear in no event and no body: every `DPoP` value (and the part of it that
/// is UTF-8) and its signature segment, every `Authorization`/`Proxy-Authorization`
/// credential and its signature.
fn request_secrets(req: &Request<Body>) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |text: &str| {
        out.push(text.rsplit('.').next().unwrap_or_default().to_owned());
        out.push(text.to_owned());
    };
    for v in req.headers().get_all("dpop") {
        let bytes = v.as_bytes();
        let valid = |e: std::str::Utf8Error| &bytes[..e.valid_up_to()];
        let utf8 = std::str::from_utf8(bytes).or_else(|e| std::str::from_utf8(valid(e)));
        push(utf8.unwrap().trim());
        push(String::from_utf8_lossy(bytes).trim());
    }
    for name in ["authorization", "proxy-authorization"] {
        for v in req.headers().get_all(name) {
            let text = String::from_utf8_lossy(v.as_bytes()).into_owned();
            push(text.trim().split_once(' ').map_or("", |(_, c)| c.trim()));
        }
    }
    // A base64url JWS segment of fewer than 16 characters is no secret here.
    out.retain(|s| s.len() >= 16);
    out
}

/// [`send`], and no proof, token or their signatures in any event or body.
async fn send_dpop(app: Router, req: Request<Body>) -> Outcome {
    let secrets = request_secrets(&req);
    let out = send(app, req).await;
    assert_no_secrets(&out.events, &secrets);
    let body = out.text();
    for s in &secrets {
        assert!(!body.contains(s.as_str()), "the body leaks {s:?}: {body}");
    }
    out
}

/// A 200 for alice, authenticated by `scheme`, with no challenge and no nonce.
#[track_caller]
fn accepted(out: &Outcome, scheme: &str) {
    let body = out.ok();
    assert_eq!(body, json!({ "sub": "alice", "scheme": scheme }));
    assert!(out.header("www-authenticate").is_none());
    assert!(out.header("dpop-nonce").is_none(), "no nonce asked for");
}

/// A rejection on a DPoP-only route: one DPoP challenge, the error on it.
fn on_dpop(reason: &'static str) -> Expect {
    expect(reason).schemes(&["DPoP"]).error_on("DPoP")
}

/// A DPoP failure's event: where the credential was, the token's `alg` and `sub` (read
/// whether or not its signature was verified), and a fingerprint.
fn dpop_event(reason: &'static str, verified: bool) -> Expect {
    on_dpop(reason)
        .field("scheme_received", "DPoP")
        .field("location", "header:authorization")
        .field("signature_verified", verified)
        .field("alg", "HS256")
        .field("sub", "alice")
        .present("fingerprint")
}

/// A failure found before the token's signature is verified: a proof defect, a forged
/// token.
fn unverified(reason: &'static str) -> Expect {
    dpop_event(reason, false)
}

/// A failure of the verified token, of its binding, or of a proof checked after it.
fn verified(reason: &'static str) -> Expect {
    dpop_event(reason, true)
}

/// A refusal on a route that also speaks Bearer: both challenges.
fn both(e: Expect) -> Expect {
    e.schemes(&["Bearer", "DPoP"])
}

/// [`Outcome::check`], and every DPoP challenge advertises [`ALGS`].
#[track_caller]
fn refused(out: &Outcome, e: Expect) -> Checked {
    let r = out.check(&e);
    for c in out.challenges() {
        let want = (c.scheme == "DPoP").then_some(ALGS);
        assert_eq!(c.param("algs"), want, "{c:?}");
    }
    r
}

/// The `error_description` of the challenge that carries one.
fn description(out: &Outcome) -> Option<String> {
    let challenges = out.challenges().into_iter();
    let mut described = challenges.filter_map(|c| c.param("error_description").map(String::from));
    described.next()
}

// ---------------------------------------------------------------------------------------
// Rows and their runner
// ---------------------------------------------------------------------------------------

/// One way to alter the right request.
type Make = Box<dyn Fn(&Client) -> Request<Body>>;

/// One behaviour: the requests that show it, each labelled for a failure message, and
/// what each of them must get back from a fresh `app`.
struct Row {
    name: &'static str,
    requests: Vec<(String, Make)>,
    app: fn(DetailMode) -> Router,
    /// `None`: a 200 for alice, authenticated by `scheme`.
    reason: Option<&'static str>,
    scheme: &'static str,
    /// The event: [`on_dpop`], [`unverified`], [`verified`], or [`expect`] for Bearer.
    stage: fn(&'static str) -> Expect,
    /// The event's `check` and `claim` fields ("": the event has none).
    check: &'static str,
    claim: &'static str,
    /// The `error` of the challenge of the scheme the client used.
    error: Option<&'static str>,
    /// Anything else the rejection looks like.
    more: fn(Expect) -> Expect,
    /// What the verbose detail says; with `says_label`, the request's label too.
    says: Vec<&'static str>,
    says_label: bool,
    /// What else the answer must hold.
    then: fn(&Outcome, &Checked, DetailMode),
}

fn row(name: &'static str) -> Row {
    Row {
        name,
        requests: Vec::new(),
        app,
        reason: None,
        scheme: "DPoP",
        stage: on_dpop,
        check: "",
        claim: "",
        error: None,
        more: |e| e,
        says: Vec::new(),
        says_label: false,
        then: |_, _, _| {},
    }
}

/// The row's columns, one a line.
#[rustfmt::skip]
impl Row {
    fn on(self, app: fn(DetailMode) -> Router) -> Self { Row { app, ..self } }
    fn accepted_by(self, scheme: &'static str) -> Self { Row { scheme, ..self } }
    /// Refused for `reason` with the event of `stage` and its `check`, and the challenge's
    /// `error`.
    fn refused(
        self, stage: fn(&'static str) -> Expect, reason: &'static str, check: &'static str,
        error: Option<&'static str>,
    ) -> Self {
        Row { stage, reason: Some(reason), check, error, ..self }
    }
    fn claim(self, claim: &'static str) -> Self { Row { claim, ..self } }
    fn more(self, more: fn(Expect) -> Expect) -> Self { Row { more, ..self } }
    fn says(mut self, text: &'static str) -> Self { self.says.push(text); self }
    fn says_label(self) -> Self { Row { says_label: true, ..self } }
    fn then(self, then: fn(&Outcome, &Checked, DetailMode)) -> Self { Row { then, ..self } }
    fn add(mut self, label: String, make: Make) -> Self { self.requests.push((label, make)); self }
}

impl Row {
    /// One more request, labelled by its place.
    fn request(self, make: impl Fn(&Client) -> Request<Body> + 'static) -> Self {
        let label = format!("#{}", self.requests.len() + 1);
        self.add(label, Box::new(make))
    }
    /// The right request with `DPoP: <make(client)>`.
    fn dpop(self, make: fn(&Client) -> String) -> Self {
        self.request(move |c| c.get(&make(c)))
    }
    /// The right request with the right proof edited.
    fn edit(self, edit: fn(Proof) -> Proof) -> Self {
        self.request(move |c| c.get(&edit(c.proof()).sign()))
    }
    /// One request per value, labelled by it.
    fn each<T: Debug + 'static>(
        self,
        values: impl IntoIterator<Item = T>,
        make: fn(&Client, &T) -> Request<Body>,
    ) -> Self {
        let requests = values.into_iter().map(|v| (format!("{v:?}"), v));
        requests.fold(self, |row, (label, v)| {
            row.add(label, Box::new(move |c| make(c, &v)))
        })
    }
    /// One request per `DPoP` value.
    fn dpops<const N: usize>(self, values: [&'static str; N]) -> Self {
        self.each(values, |c, v| c.get(v))
    }
    /// One request per value of the right proof's header member `name`.
    fn headers(self, name: &'static str, values: impl IntoIterator<Item = Value>) -> Self {
        self.edits(values, move |p, v| p.header(name, v))
    }
    /// One request per value of the right proof's claim `name`.
    fn claims(self, name: &'static str, values: impl IntoIterator<Item = Value>) -> Self {
        self.edits(values, move |p, v| p.claim(name, v))
    }
    fn edits(
        self,
        values: impl IntoIterator<Item = Value>,
        edit: impl Fn(Proof, Value) -> Proof + Copy + 'static,
    ) -> Self {
        values.into_iter().fold(self, |row, v| {
            // A string as it is, anything else as JSON.
            let label = v.as_str().map_or_else(|| v.to_string(), String::from);
            let make = move |c: &Client| c.get(&edit(c.proof(), v.clone()).sign());
            row.add(label, Box::new(make))
        })
    }

    /// What a refusal for `reason` must look like in `mode`.
    fn expect(&self, reason: &'static str, mode: DetailMode) -> Expect {
        let mut e = (self.stage)(reason).mode(mode).error(self.error);
        for (name, value) in [("check", self.check), ("claim", self.claim)] {
            e = match value {
                "" => e.no_field(name),
                value => e.field(name, value),
            };
        }
        (self.more)(e)
    }

    /// Sends one request of the row and checks the answer: [`accepted`], or [`refused`]
    /// as the row says, and then what every refusal owes: a challenge without an error is
    /// its scheme's plain one, no nonce is asked for, the verbose description is the
    /// detail, client text in either is escaped, a jwk's private part is never repeated.
    async fn send(&self, make: &Make, label: &str, mode: DetailMode) {
        let client = Client::new(key(ES256));
        let out = send_dpop((self.app)(mode), make(&client)).await;
        let Some(reason) = self.reason else {
            return accepted(&out, self.scheme);
        };
        let r = refused(&out, self.expect(reason, mode));
        let lines = out.header_all("www-authenticate");
        for (line, c) in lines.into_iter().zip(out.challenges()) {
            let (scheme, realm) = (c.scheme.as_str(), c.param("realm").unwrap());
            let plain = match scheme {
                "DPoP" => format!(r#"DPoP realm="{realm}", algs="{ALGS}""#),
                _ => format!(r#"{scheme} realm="{realm}""#),
            };
            assert!(c.param("error").is_some() || line == plain, "{line}");
        }
        assert!(out.header("dpop-nonce").is_none(), "no nonce asked for");
        assert!(out.header("proxy-authenticate").is_none());
        let described = description(&out);
        // A detail with what an error_description cannot carry (RFC 6750 §3) is not one.
        let rfc6750 = |c: char| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e');
        if let (Verbose, Some(d), true) = (mode, &described, r.detail().chars().all(rfc6750)) {
            assert_eq!(d, r.detail(), "the verbose description is the detail");
        }
        for text in [r.detail(), described.as_deref().unwrap_or_default()] {
            assert!(!text.contains(['\r', '\n', '\u{202e}']), "{text:?}");
            assert!(!text.contains(PRIVATE_D), "{text}");
        }
        assert_no_secrets(&out.events, &[PRIVATE_D.to_owned()]);
        assert!(!out.text().contains(PRIVATE_D) && !r.event.line().contains(['\r', '\n']));
        let label = self.says_label.then_some(label);
        let detail = r.detail();
        for said in self.says.iter().copied().chain(label) {
            assert!(
                mode == Production || detail.contains(said),
                "{said:?}: {detail}"
            );
        }
        (self.then)(&out, &r, mode);
    }
}

/// A runtime on this thread.
fn runtime() -> tokio::runtime::Runtime {
    let builder = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    builder.unwrap()
}

/// Sends every request of every row in both detail modes, each to a fresh app; a failure
/// names the row, the request and the mode.
fn run(rows: Vec<Row>) {
    let rt = runtime();
    for row in &rows {
        let requests = row.requests.iter().flat_map(|r| MODES.map(|m| (r, m)));
        for ((label, make), mode) in requests {
            let once = AssertUnwindSafe(|| rt.block_on(row.send(make, label, mode)));
            if let Err(e) = catch_unwind(once) {
                let why = panic_message::<()>(Err(e));
                panic!("row {:?}, request {label:?}, {mode:?}: {why}", row.name);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Accepted
// ---------------------------------------------------------------------------------------

#[rustfmt::skip]
#[test]
fn right_proofs_are_accepted_and_the_principal_speaks_dpop() {
    let t = now();
    run(vec![
        row("a right proof").request(Client::right),
        row("POST with htm POST").request(|c| {
            let p = proof(&c.key, "POST", "/me", &c.token).sign();
            dpop_req(Method::POST, "/me", &c.token, &p)
        }),
        // The scheme name in any case (RFC 9110 §11.1).
        row("the scheme in lower case").request(|c| {
            let lower = format!("dpop {}", c.token);
            c.with_proof(&[("host", HOST), ("authorization", &lower)])
        }),
        // typ compared as a media type: case-insensitively, `application/` implied (RFC
        // 7515 §4.1.9).
        row("typ as a media type in any case")
            .headers("typ", strings(["DPoP+JWT", "application/dpop+jwt", "Application/DPoP+JWT"])),
        row("every allowed algorithm, when configured").on(every_alg)
            .each([ES256, ES384, PS256, RS256, EdDSA], |_, alg| Client::new(key(*alg)).right()),
        row("PS256 by default").request(|_| Client::new(key(PS256)).right()),
        row("htu query and fragment ignored on both sides").request(|c| {
            let p = c.proof().claim("htu", json!(htu("/me?page=proofside#frag"))).sign();
            dpop_req(Method::GET, "/me?page=requestside", &c.token, &p)
        }),
        row("htu with the default port or in upper case")
            .claims("htu", strings(["http://api.test:80/me", "HTTP://API.TEST/me"]))
            .claims("htu", strings(["http://Api.Test:80/me"])),
        // The request's Host with its default port and in upper case: the same URL.
        row("Host with the default port or in upper case")
            .each(["api.test:80", "API.TEST"],
                  |c, host| c.with_proof(&[("host", host), ("authorization", &dpop(&c.token))])),
        // RFC 9449 §4.3: syntax-based and scheme-based normalization (RFC 3986 §6.2.2,
        // §6.2.3) before comparing: escaped unreserved characters, dot segments, an empty port.
        row("htu after RFC 3986 normalization")
            .claims("htu", ["/m%65", "/%6D%65", "/x/../me", "/./me"].map(|p| json!(htu(p))))
            .claims("htu", strings(["http://api.test:/me"])),
        // RFC 7638: the thumbprint covers kty, crv, x, y only.
        row("a jwk with extra members binds by its required members").headers("jwk", [json!({
            "kty": "EC", "crv": "P-256", "x": EC256_X, "y": EC256_Y,
            "kid": "client-key-1", "use": "sig", "alg": "ES256",
        })]),
        // Default: 60 s old plus 30 s skew; 30 s in the future. Margins of 10 s. A fractional
        // NumericDate is a number.
        row("iat within max age and leeway")
            .claims("iat", [json!(t - 80), json!(t + 20), json!(t as f64 + 0.5)]),
        row("a nonce claim without require_nonce").claims("nonce", strings(["anything"])),
        row("a fresh proof under a short max age").on(short_max_age).request(Client::right),
        row("a proof for the external origin").on(external_app)
            .claims("htu", strings(["https://api.example/me", "https://API.example:443/me"]))
            .claims("htu", strings(["https://api.example/me?q=1"])),
        // The configured origin decides, whatever Host or the request line names.
        row("a proof for this route's origin, whatever Host says")
            .request(|c| c.with_proof(&[("host", "other.test"), ("authorization", &dpop(&c.token))]))
            .request(|c| {
                let headers = [("host", "other.test"), ("authorization", &dpop(&c.token))];
                let proof = c.right_proof();
                get("http://other.test/me", &[&headers[..], &[("dpop", &proof)]].concat())
            }),
        // A trailing slash on the origin is the same origin.
        row("an external origin with a trailing slash")
            .on(|m| routes().layer(layer(m).dpop(Dpop::new(jwt()).public_origin("https://api.example/"))))
            .claims("htu", strings(["https://api.example/me"])),
        row("a proof for any of the origins, a path prefix after the origin")
            .on(two_origins)
            .claims("htu", strings(["https://api.example/me", "https://shop.example:8443/orders/me"])),
        // For local development, on request: the origin from Host.
        row("a proof for the origin Host names, where the application asked for that")
            .on(host_app).request(Client::right)
            .request(|c| {
                let p = c.proof().claim("htu", json!("http://other.test/me")).sign();
                get("/me", &[("host", "other.test"), ("authorization", &dpop(&c.token)), ("dpop", &p)])
            }),
    ]);
}

#[tokio::test]
async fn the_challenge_names_exactly_the_configured_algorithms_in_order() {
    let out = send_dpop(every_alg(Production), get("/me", &[])).await;
    let challenge = r#"DPoP realm="api", algs="ES256 ES384 PS256 RS256 EdDSA""#;
    assert_eq!(out.header_all("www-authenticate"), [challenge]);
}

// ---------------------------------------------------------------------------------------
// Refused
// ---------------------------------------------------------------------------------------

#[test]
fn every_rejection_row_is_refused_as_it_says() {
    run(rejections());
}

#[rustfmt::skip]
fn rejections() -> Vec<Row> {
    let t = now();
    vec![
        // No credentials, another scheme, a malformed Authorization; never the proxy's (R-51).
        row("no credentials").refused(on_dpop, "credentials_missing", "", NO_ERROR)
            .request(|_| get("/me", &[("host", HOST)])),
        row("Proxy-Authorization: DPoP is never read")
            .refused(on_dpop, "credentials_missing", "", NO_ERROR)
            .request(|c| c.with_proof(&[("host", HOST), ("proxy-authorization", &dpop(&c.token))])),
        row("a Bearer token, bound or not, on a DPoP-only route")
            .refused(on_dpop, "scheme_not_accepted", "", NO_ERROR)
            .each([hs256(&good_claims()), bound(&key(ES256))],
                  |_, token| get("/me", &[("host", HOST), ("authorization", &bearer(token))])),
        row("DPoP without a token")
            .refused(on_dpop, "authorization_malformed", "", Some("invalid_request"))
            .more(|e| e.field("scheme_received", "DPoP"))
            .each(["DPoP", "DPoP ", "DPoP a b", "DPoP \"tok.en.x\""],
                  |c, value| c.with_proof(&[("host", HOST), ("authorization", value)])),
        row("DPoP without a DPoP header")
            .refused(unverified, "dpop_proof_missing", "header", BAD_PROOF)
            .request(|c| c.with(&[])),

        // The DPoP header and the JWS.
        row("two DPoP headers").refused(unverified, "dpop_proof_malformed", "header", BAD_PROOF)
            .request(|c| c.with(&[("dpop", &c.right_proof()), ("dpop", &c.right_proof())]))
            .says("more than one DPoP proof"),
        // RFC 9110 §5.3: two field lines may be folded into one, comma-separated.
        row("two DPoP proofs folded into one field line")
            .refused(unverified, "dpop_proof_malformed", "header", BAD_PROOF)
            .dpop(|c| format!("{}, {}", c.right_proof(), c.right_proof()))
            .dpop(|c| format!("{},{}", c.right_proof(), c.right_proof()))
            .says("more than one DPoP proof"),
        // The last two: a JSON array, not an object, as the header; five segments.
        row("a proof that is not a compact JWS")
            .refused(unverified, "dpop_proof_malformed", "jws", BAD_PROOF)
            .dpops(["not-a-jwt", "", "a.b", "eyJhbGciOiJFUzI1NiJ9.e30", "!!!.???.***"])
            .dpops(["W10.e30.c2ln"])
            .dpop(|c| format!("{}.x.y", c.right_proof()))
            .says("not a compact JWS"),
        row("no typ").refused(unverified, "dpop_proof_type_rejected", "typ", BAD_PROOF)
            .headers("typ", [Value::Null]).says("absent"),
        row("a typ of another media type")
            .refused(unverified, "dpop_proof_type_rejected", "typ", BAD_PROOF)
            .headers("typ", strings(["JWT", "at+jwt", "dpop+jwt; charset=utf-8"]))
            .headers("typ", strings(["application/jwt", "text/dpop+jwt"])).says_label(),
        row("alg none, unsigned")
            .refused(unverified, "dpop_proof_algorithm_rejected", "alg", BAD_PROOF)
            .dpop(|c| c.proof().header("alg", json!("none")).unsigned())
            .says("none").says(ALGS),
        row("alg HS256 with a shared secret, however the jwk looks")
            .refused(unverified, "dpop_proof_algorithm_rejected", "alg", BAD_PROOF)
            .edit(|p| p.header("alg", json!("HS256")).signed_with(HS256, secret(b"shared")))
            .says("HS256"),
        row("alg RS256: a real RSA signature, but not in the default list")
            .refused(unverified, "dpop_proof_algorithm_rejected", "alg", BAD_PROOF)
            .request(|_| Client::new(key(RS256)).right()),
        row("no alg, or an alg that names nothing")
            .refused(unverified, "dpop_proof_algorithm_rejected", "alg", BAD_PROOF)
            .headers("alg", [Value::Null, json!("ES999")]),
        // Coordinates not of the curve's size (RFC 7518 §6.2.1.2) or not base64, a short
        // OKP key, a short RSA modulus.
        row("a missing or unusable jwk")
            .refused(unverified, "dpop_proof_key_invalid", "jwk", BAD_PROOF)
            .headers("jwk", [Value::Null, json!("not an object")])
            .headers("jwk", [json!({ "kty": "oct", "k": "c2VjcmV0" }), ec("P-521", "AA", "AA")])
            .headers("jwk", [json!({ "kty": "EC", "crv": "P-256", "x": EC256_X })])
            .headers("jwk", [with(ec("P-256", EC256_X, EC256_Y), "use", "enc")])
            .headers("jwk", [ec("P-256", "AA", "AA"), ec("P-256", EC256_X, &b64url(&[7; 33]))])
            .headers("jwk", [ec("P-256", "not base64!", EC256_Y)])
            .headers("jwk", [json!({ "kty": "OKP", "crv": "Ed25519", "x": b64url(&[7; 31]) })])
            .headers("jwk", [json!({ "kty": "RSA", "n": b64url(&[0xc5; 128]), "e": "AQAB" })]),
        row("a jwk with private material")
            .refused(unverified, "dpop_proof_key_invalid", "jwk", BAD_PROOF)
            .headers("jwk", [with(ec("P-256", EC256_X, EC256_Y), "d", PRIVATE_D)])
            .says("private key material (d)"),
        // ES256 over an RSA jwk; PS256 over an EC jwk; ES256 over a P-384 jwk; a jwk that
        // names another algorithm than the header.
        row("a jwk of another kind than alg")
            .refused(unverified, "dpop_proof_key_invalid", "jwk", BAD_PROOF)
            .dpop(|c| c.proof().header("jwk", key(PS256).jwk).sign())
            .dpop(|c| c.proof_by(&key(PS256)).header("jwk", c.key.jwk.clone()).sign())
            .dpop(|c| c.proof().header("jwk", key(ES384).jwk).sign())
            .dpop(|c| {
                let jwk = with(key(PS256).jwk, "alg", "RS256");
                c.proof_by(&key(PS256)).header("jwk", jwk).sign()
            }),
        row("a signature by another key than the jwk")
            .refused(unverified, "dpop_proof_signature_invalid", "signature", BAD_PROOF)
            .edit(|p| p.signed_with(ES256, other_ec256().private))
            .says("does not verify"),
        row("claims changed after signing, or a signature of another size")
            .refused(unverified, "dpop_proof_signature_invalid", "signature", BAD_PROOF)
            .dpop(|c| {
                let (p, signed) = (c.proof(), c.right_proof());
                let tampered = p.claim("htm", json!("GET")).claim("jti", json!(jti()));
                format!("{}.{}", tampered.message(), signed.rsplit('.').next().unwrap())
            })
            .dpop(|c| format!("{}.AAAA", c.proof().message())),

        // Claims.
        row("jti missing, not a string, empty or too long")
            .refused(unverified, "dpop_proof_claim_missing", "jti", BAD_PROOF).claim("jti")
            .claims("jti", [Value::Null, json!(7), json!(""), json!("j".repeat(257))]).says("jti"),
        row("htm missing or not a string")
            .refused(unverified, "dpop_proof_claim_missing", "htm", BAD_PROOF).claim("htm")
            .claims("htm", [Value::Null, json!(["GET"])]).says("htm"),
        row("htu missing or not a string")
            .refused(unverified, "dpop_proof_claim_missing", "htu", BAD_PROOF).claim("htu")
            .claims("htu", [Value::Null, json!({ "url": "x" })]).says("htu"),
        row("iat missing")
            .refused(unverified, "dpop_proof_claim_missing", "iat", BAD_PROOF).claim("iat")
            .claims("iat", [Value::Null]).says("iat"),
        // A string is no NumericDate, however numeric it looks.
        row("iat not a number")
            .refused(unverified, "dpop_proof_claim_missing", "iat", BAD_PROOF).claim("iat")
            .claims("iat", [json!(t.to_string()), json!(true)]).says("iat").says("not a number"),
        row("ath missing or not a string")
            .refused(unverified, "dpop_proof_claim_missing", "ath", BAD_PROOF).claim("ath")
            .claims("ath", [Value::Null, json!(1)]).says("ath"),
        row("a proof for another method")
            .refused(unverified, "dpop_proof_method_mismatch", "htm", BAD_PROOF)
            .claims("htm", strings(["POST", "get", "DELETE"])).says_label().says("GET"),
        // Another path, host or port; not absolute; an empty segment, an escaped slash, a
        // user in the authority (RFC 9110 §4.2.4), a trailing dot on the host.
        row("a proof for another URL")
            .refused(unverified, "dpop_proof_url_mismatch", "htu", BAD_PROOF)
            .claims("htu", ["/other", "/me/", "//me", "/me%2F"].map(|p| json!(htu(p))))
            .claims("htu", strings(["http://evil.test/me", "http://api.test:8080/me"]))
            .claims("htu", strings(["/me", "not a url"]))
            .claims("htu", strings(["http://alice@api.test/me", "http://api.test./me"]))
            .says("http://api.test/me"),
        row("a proof for https where the route answers at http")
            .refused(unverified, "dpop_proof_url_mismatch", "htu", BAD_PROOF)
            .claims("htu", strings(["https://api.test/me"]))
            .says("http://api.test/me"),
        row("a proof for https where Host decides and the request came over http")
            .on(host_app)
            .refused(unverified, "dpop_proof_url_mismatch", "htu", BAD_PROOF)
            .claims("htu", strings(["https://api.test/me"]))
            .then(|_, r, _| {
                let hint = r.event.field("hint");
                assert!(hint.contains("Dpop::public_origin"), "{}", r.event.line());
            }),
        row("a proof for another of the origins' paths, or without the proxy's prefix")
            .on(two_origins)
            .refused(unverified, "dpop_proof_url_mismatch", "htu", BAD_PROOF)
            .claims("htu", strings(["https://shop.example:8443/me", "https://api.example/orders/me"]))
            .claims("htu", strings(["http://api.example/me", "https://shop.example/orders/me"]))
            .says("one of https://api.example/me, https://shop.example:8443/orders/me"),
        // A token and proof captured at another server with the same path, replayed here
        // with that server's name in Host or in the request line: Host is the client's word.
        row("a proof for another server, replayed with its name in Host or the request line")
            .refused(unverified, "dpop_proof_url_mismatch", "htu", BAD_PROOF)
            .request(|c| {
                let p = c.proof().claim("htu", json!("http://other.test/me")).sign();
                get("/me", &[("host", "other.test"), ("authorization", &dpop(&c.token)), ("dpop", &p)])
            })
            .request(|c| {
                let p = c.proof().claim("htu", json!("http://other.test/me")).sign();
                let auth = dpop(&c.token);
                get("http://other.test/me", &[("host", "other.test"), ("authorization", &auth), ("dpop", &p)])
            })
            .says("http://api.test/me"),
        row("a request without Host where Host decides").on(host_app)
            .refused(unverified, "dpop_proof_url_mismatch", "htu", BAD_PROOF)
            .request(|c| c.with_proof(&[("authorization", &dpop(&c.token))]))
            .says("no Host"),
        row("forwarded headers are not read")
            .refused(unverified, "dpop_proof_url_mismatch", "htu", BAD_PROOF)
            .request(|c| {
                let p = c.proof().claim("htu", json!("https://forged.example/me")).sign();
                c.with(&[("x-forwarded-host", "forged.example"), ("x-forwarded-proto", "https"),
                         ("forwarded", "host=forged.example;proto=https"), ("dpop", &p)])
            }),
        row("the local URL where a public origin is configured").on(external_app)
            .refused(unverified, "dpop_proof_url_mismatch", "htu", BAD_PROOF)
            .claims("htu", [json!(htu("/me")), json!("http://api.example/me")])
            .says("https://api.example/me")
            .then(|_, r, _| {
                let hint = r.event.field("hint");
                assert!(!hint.contains("Dpop::public_origin"), "configured already: {hint}");
            }),
        row("a proof too old").refused(unverified, "dpop_proof_expired", "iat", BAD_PROOF)
            .claims("iat", [json!(t - 600), json!(t - 100)]).says("ago"),
        row("a proof from the future").refused(unverified, "dpop_proof_expired", "iat", BAD_PROOF)
            .claims("iat", [json!(t + 600), json!(t + 40)]).says("in the future"),
        row("a proof older than a configured max age, or ahead without leeway")
            .on(short_max_age)
            .refused(unverified, "dpop_proof_expired", "iat", BAD_PROOF)
            .claims("iat", [json!(t - 30), json!(t + 5)]),
        // ath of another token, of the token with `Bearer ` in front, the hex hash.
        row("a proof for another token, or a wrong encoding of its hash")
            .refused(unverified, "dpop_proof_ath_mismatch", "ath", BAD_PROOF)
            .dpop(|c| {
                let bob = hs256(&claims(json!({ "cnf": { "jkt": c.key.jkt() }, "sub": "bob" })));
                c.proof().claim("ath", json!(ath(&bob))).sign()
            })
            .dpop(|c| c.proof().claim("ath", json!(ath(&bearer(&c.token)))).sign())
            .dpop(|c| {
                let hex = Sha256::digest(&c.token).iter().map(|b| format!("{b:02x}")).collect();
                c.proof().claim("ath", Value::String(hex)).sign()
            })
            .says("ath"),
        // A proof that is wrong anyway is refused for that, not asked for a nonce.
        row("a bad proof where a nonce is required").on(nonce_app)
            .refused(unverified, "dpop_proof_method_mismatch", "htm", BAD_PROOF)
            .claims("htm", strings(["POST"])),

        // The token and its binding (R-48).
        row("a token without cnf.jkt")
            .refused(verified, "dpop_token_unbound", "cnf.jkt", BAD_TOKEN).claim("cnf")
            .request(|c| c.with_token(&hs256(&claims(json!({}))))),
        // A binding this scheme cannot check is no DPoP binding (src/authn/cnf.rs).
        row("a token bound by another method")
            .refused(verified, "token_binding_unverifiable", "cnf", BAD_TOKEN).claim("cnf")
            .request(|c| c.with_token(&hs256(&claims(json!({ "cnf": { "x5t#S256": "abc" } }))))),
        row("a token whose cnf.jkt is not a string")
            .refused(verified, "token_claim_invalid", "", BAD_TOKEN).claim("cnf")
            .request(|c| c.with_token(&hs256(&claims(json!({ "cnf": { "jkt": 7 } }))))),
        row("a token bound to another key")
            .refused(verified, "dpop_key_mismatch", "cnf.jkt", BAD_TOKEN).claim("cnf")
            .request(|c| c.with_token(&bound(&other_ec256()))),
        row("an expired token with a right proof")
            .refused(verified, "token_expired", "", BAD_TOKEN)
            .request(|c| {
                let cnf = json!({ "jkt": c.key.jkt() });
                c.with_token(&hs256(&claims(json!({ "exp": now() - 7200, "cnf": cnf }))))
            }),
        row("a forged token with a right proof")
            .refused(unverified, "token_signature_invalid", "", BAD_TOKEN)
            .request(|c| {
                let cnf = claims(json!({ "cnf": { "jkt": c.key.jkt() } }));
                let forged = sign(&Default::default(), &cnf, &secret(b"not-the-secret"));
                c.with_token(&forged)
            }),
        row("a missing scope").on(admin_app)
            .refused(on_dpop, "insufficient_scope", "", Some("insufficient_scope"))
            .more(|e| e.field("scope", "admin"))
            .request(|c| c.at("/admin"))
            .then(|out, _, _| assert_eq!(out.challenge().param("scope"), Some("admin"))),
    ]
}

#[rustfmt::skip]
#[test]
fn hostile_inputs_are_refused_cleanly() {
    let huge = [json!(1e300), json!(-1e300), json!(u64::MAX), json!(i64::MIN), json!(i64::MAX)];
    run(vec![
        row("a 9 KiB proof").refused(unverified, "dpop_proof_malformed", "header", BAD_PROOF)
            .dpop(|c| {
                // A real proof, padded in its claims to 9 KiB.
                let p = c.proof().claim("pad", json!("p".repeat(9 * 1024))).sign();
                assert!(p.len() > 9 * 1024);
                p
            })
            .says("8 KiB"),
        row("bytes that are not UTF-8 in the DPoP header")
            .refused(unverified, "dpop_proof_malformed", "header", BAD_PROOF)
            .request(|c| c.raw_dpop(&[c.right_proof().as_bytes(), b"\xff\xfe"].concat()))
            .request(|c| c.raw_dpop(b"\xc3\x28\xa0\xa1.eyJ.sig"))
            .request(|c| c.raw_dpop(b"\x80")),
        row("CRLF and quotes in htu")
            .refused(unverified, "dpop_proof_url_mismatch", "htu", BAD_PROOF)
            .claims("htu", [json!(format!("http://api.test/me{NASTY}"))]).says("Injected"),
        row("CRLF in htm").refused(unverified, "dpop_proof_method_mismatch", "htm", BAD_PROOF)
            .claims("htm", strings(["GET\r\nX: y"])),
        row("huge and odd iat numbers").refused(unverified, "dpop_proof_expired", "iat", BAD_PROOF)
            .claims("iat", huge).claims("iat", [json!(0)]),
        row("crit in a proof").refused(unverified, "dpop_proof_malformed", "crit", BAD_PROOF)
            .edit(|p| p.header("crit", json!(["exp"])).header("exp", json!(1))),
    ]);
}

// ---------------------------------------------------------------------------------------
// Bearer and DPoP (R-49, R-50)
// ---------------------------------------------------------------------------------------

#[rustfmt::skip]
#[test]
fn bearer_and_dpop_on_one_route_each_err_on_their_own_challenge() {
    let bearer_only = |m| bearer_app(layer(m));
    run(vec![
        row("DPoP where Bearer is accepted too").on(both_app).request(Client::right),
        row("Bearer where DPoP is accepted too").on(both_app).accepted_by("Bearer")
            .request(|_| get("/me", &[("authorization", &bearer(&hs256(&good_claims())))])),
        row("no credentials: two plain challenges").on(both_app)
            .refused(expect, "credentials_missing", "", NO_ERROR).more(both)
            .request(|_| get("/me", &[("host", HOST)])),
        row("a bad proof errs on DPoP only").on(both_app)
            .refused(unverified, "dpop_proof_method_mismatch", "htm", BAD_PROOF).more(both)
            .claims("htm", strings(["POST"])),
        row("an unbound token with a proof errs on DPoP only").on(both_app)
            .refused(verified, "dpop_token_unbound", "cnf.jkt", BAD_TOKEN).claim("cnf").more(both)
            .request(|c| c.with_token(&hs256(&good_claims()))),
        row("an expired Bearer token errs on Bearer only").on(both_app)
            .refused(expect, "token_expired", "", BAD_TOKEN).more(|e| both(e.token_fields()))
            .request(|_| {
                let expired = hs256(&claims(json!({ "exp": now() - 7200 })));
                get("/me", &[("host", HOST), ("authorization", &bearer(&expired))])
            }),
        row("a bound token as Bearer errs on Bearer only").on(both_app)
            .refused(expect, "token_dpop_bound", "", BAD_TOKEN).claim("cnf")
            .more(|e| both(e.token_fields()))
            .request(|c| get("/me", &[("host", HOST), ("authorization", &bearer(&c.token))])),
        row("a bound token as Bearer on a Bearer-only route").on(bearer_only)
            .refused(expect, "token_dpop_bound", "", BAD_TOKEN).claim("cnf")
            .more(|e| e.token_fields().field("signature_verified", "true").field("sub", "alice"))
            .request(|c| get("/me", &[("authorization", &bearer(&c.token))])),
        row("an unbound token as Bearer on a Bearer-only route").on(bearer_only)
            .accepted_by("Bearer")
            .request(|_| get("/me", &[("authorization", &bearer(&hs256(&good_claims())))])),
    ]);
}

/// R-50: "when ambiguous, 400 invalid_request on both". Two `Authorization` fields, one
/// Bearer and one DPoP, are the ambiguous request.
#[tokio::test]
async fn both_schemes_an_ambiguous_request_is_invalid_request_on_both() {
    let c = Client::new(key(ES256));
    let bearer = bearer(&c.token);
    let req = c.with(&[("authorization", &bearer), ("dpop", &c.right_proof())]);
    let out = send_dpop(both_app(Verbose), req).await;
    assert_eq!(out.status, 400, "{}", out.text());
    let challenges = out.challenges();
    let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
    assert_eq!(schemes, ["Bearer", "DPoP"]);
    for c in &challenges {
        assert_eq!(c.param("error"), Some("invalid_request"), "{c:?}");
    }
}

/// Behind a proxy that strips `/orders`, the request path is the part after the prefix:
/// its dot segments are resolved before the prefix is put in front, so a request path
/// such as `/../admin/x` cannot climb out of the prefix and make a proof captured for
/// another service behind the same proxy (`https://shop.example:8443/admin/x`) pass.
#[tokio::test]
async fn dot_segments_in_the_request_path_cannot_climb_out_of_the_proxys_prefix() {
    let c = Client::new(key(ES256));
    let climbs = [
        "/../admin/x",
        "/%2E%2E/admin/x",
        "/%2e./admin/x",
        "/./../admin/x",
    ];
    let climbs = climbs
        .into_iter()
        .chain(["/me/../../admin/x", "/../../../admin/x"]);
    for path in climbs {
        let p = proof(&c.key, "GET", path, &c.token)
            .claim("htu", json!("https://shop.example:8443/admin/x"))
            .sign();
        let out = send_dpop(
            two_origins_unguarded(Verbose),
            dpop_req(Method::GET, path, &c.token, &p),
        )
        .await;
        let e = unverified("dpop_proof_url_mismatch").field("check", "htu");
        let r = refused(&out, e.verbose());
        // Compared with the prefix kept: the request's own URL under /orders.
        let ours = "https://shop.example:8443/orders/admin/x";
        assert!(r.detail().contains(ours), "{path}: {}", r.detail());
    }
    // A dot segment that stays inside the prefix is resolved as before: the proof for the
    // URL the client meant passes the DPoP checks (the router then has no such path).
    let p = proof(&c.key, "GET", "/x", &c.token)
        .claim("htu", json!("https://shop.example:8443/orders/me"))
        .sign();
    let out = send_dpop(
        two_origins_unguarded(Verbose),
        dpop_req(Method::GET, "/x/../me", &c.token, &p),
    )
    .await;
    assert_ne!(out.status, 401, "{}", out.text());
    assert!(out.header("www-authenticate").is_none());
}

/// `insecure_origin_from_host` beside a `public_origin`, in either order: only the
/// configured origin counts, whatever `Host` says.
#[tokio::test]
async fn a_public_origin_beside_the_host_opt_in_is_the_only_origin() {
    let c = Client::new(key(ES256));
    let configs: [fn(Dpop) -> Dpop; 2] = [
        |d| {
            d.public_origin("https://api.example")
                .insecure_origin_from_host()
        },
        |d| {
            d.insecure_origin_from_host()
                .public_origin("https://api.example")
        },
    ];
    for config in configs {
        let app = || routes().layer(layer(Verbose).dpop(config(Dpop::new(jwt()))));
        // A proof for the URL Host names: refused, be Host ours or the proof's.
        for host in [HOST, "other.test", "api.example"] {
            let p = c
                .proof()
                .claim("htu", json!(format!("http://{host}/me")))
                .sign();
            let auth = dpop(&c.token);
            let req = get(
                "/me",
                &[("host", host), ("authorization", &auth), ("dpop", &p)],
            );
            let out = send_dpop(app(), req).await;
            let e = unverified("dpop_proof_url_mismatch").field("check", "htu");
            let r = refused(&out, e.verbose());
            assert!(
                r.detail().contains("https://api.example/me"),
                "{}",
                r.detail()
            );
        }
        // A proof for the configured origin: accepted, whatever Host says.
        let p = c
            .proof()
            .claim("htu", json!("https://api.example/me"))
            .sign();
        let auth = dpop(&c.token);
        let req = get(
            "/me",
            &[
                ("host", "other.test"),
                ("authorization", &auth),
                ("dpop", &p),
            ],
        );
        accepted(&send_dpop(app(), req).await, "DPoP");
    }
}

// ---------------------------------------------------------------------------------------
// Nonces (R-46)
// ---------------------------------------------------------------------------------------

/// Asserts the nonce answer of R-46 and returns the nonce.
#[track_caller]
fn nonce_asked(out: &Outcome, mode: DetailMode) -> String {
    let e = unverified("dpop_nonce_required").field("check", "nonce");
    refused(out, e.mode(mode));
    assert_eq!(out.challenge().param("error"), Some("use_dpop_nonce"));
    let nonces = out.header_all("dpop-nonce");
    assert_eq!(nonces.len(), 1, "exactly one DPoP-Nonce: {:?}", out.headers);
    assert_eq!(out.header("cache-control"), Some("no-store"));
    let exposed = out.header("access-control-expose-headers");
    assert_eq!(exposed, Some("WWW-Authenticate, X-Request-Id, DPoP-Nonce"));
    // nonce = 1*NQCHAR (%x21 / %x23-5B / %x5D-7E).
    let nqchar = |b: u8| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b);
    let nonce = nonces[0];
    assert!(!nonce.is_empty() && nonce.bytes().all(nqchar), "{nonce}");
    nonce.to_owned()
}

/// A right proof from `c` carrying `nonce`, sent to `app`.
async fn with_nonce(app: &Router, c: &Client, nonce: Value) -> Outcome {
    let p = c.proof().claim("nonce", nonce).sign();
    send_dpop(app.clone(), c.get(&p)).await
}

#[tokio::test]
async fn require_nonce_hands_out_a_nonce_and_accepts_it() {
    let c = Client::new(key(ES256));
    for mode in MODES {
        let app = nonce_app(mode);
        let nonce = nonce_asked(&send_dpop(app.clone(), c.right()).await, mode);
        // Unpredictable: the next answer has another one.
        let again = nonce_asked(&send_dpop(app.clone(), c.right()).await, mode);
        assert_ne!(nonce, again);
        // The retry with the nonce gets in.
        accepted(&with_nonce(&app, &c, json!(nonce)).await, "DPoP");
        // A made-up nonce, a non-string one, one of another server: asked again.
        let foreign = nonce_asked(&send_dpop(nonce_app(mode), c.right()).await, mode);
        let made_up = [json!("made-up-nonce"), json!(""), json!(12345)];
        let stale = [json!(foreign), json!(format!("{nonce}x"))];
        for bad in made_up.into_iter().chain(stale) {
            let fresh = nonce_asked(&with_nonce(&app, &c, bad.clone()).await, mode);
            assert_ne!(json!(fresh), bad);
        }
    }
}

#[tokio::test]
async fn replicas_with_one_nonce_key_accept_each_others_nonces() {
    let c = Client::new(key(ES256));
    let (shared, minute) = ([7u8; 32], Duration::from_secs(60));
    let replica = || dpop_app(Verbose, |d| d.require_nonce(minute).nonce_key(shared));
    let nonce = nonce_asked(&send_dpop(replica(), c.right()).await, Verbose);
    accepted(&with_nonce(&replica(), &c, json!(nonce)).await, "DPoP");
    // Set in the other order, the key is kept.
    let app = dpop_app(Verbose, |d| d.nonce_key(shared).require_nonce(minute));
    accepted(&with_nonce(&app, &c, json!(nonce)).await, "DPoP");
}

/// `nonce_key` without `require_nonce` turns nonces on (R-46): a proof without a nonce is
/// asked for one (401 `use_dpop_nonce`), and the nonce handed out is accepted.
#[tokio::test]
async fn nonce_key_alone_requires_a_nonce() {
    let c = Client::new(key(ES256));
    for mode in MODES {
        let app = dpop_app(mode, |d| d.nonce_key([9u8; 32]));
        let nonce = nonce_asked(&send_dpop(app.clone(), c.right()).await, mode);
        accepted(&with_nonce(&app, &c, json!(nonce)).await, "DPoP");
        // A replica with the same key accepts it too.
        let replica = dpop_app(mode, |d| d.nonce_key([9u8; 32]));
        let nonce = nonce_asked(&send_dpop(app.clone(), c.right()).await, mode);
        accepted(&with_nonce(&replica, &c, json!(nonce)).await, "DPoP");
    }
}

// ---------------------------------------------------------------------------------------
// The replay store
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_replayed_proof_is_refused_the_second_time_only() {
    let c = Client::new(key(ES256));
    // Any string is a jti; its replay names it, escaped.
    for jti in [jti(), format!("jti{NASTY}{}", jti())] {
        for mode in MODES {
            let app = app(mode);
            let p = c.proof().claim("jti", json!(jti)).sign();
            accepted(&send_dpop(app.clone(), c.get(&p)).await, "DPoP");
            let out = send_dpop(app.clone(), c.get(&p)).await;
            let e = verified("dpop_proof_replayed").field("check", "jti");
            let detail = refused(&out, e.mode(mode)).detail().to_owned();
            let said = mode == Production || detail.contains("used before");
            assert!(said, "{detail}");
            assert!(!detail.contains(['\r', '\u{202e}']), "{detail}");
            assert!(!description(&out).unwrap_or_default().contains('\n'));
            // A new proof is fine again.
            accepted(&send_dpop(app, c.right()).await, "DPoP");
        }
    }
}

#[tokio::test]
async fn one_jti_from_two_keys_is_no_replay() {
    let app = app(Verbose);
    let shared = json!(jti());
    for c in [Client::new(key(ES256)), Client::new(other_ec256())] {
        let p = c.proof().claim("jti", shared.clone()).sign();
        accepted(&send_dpop(app.clone(), c.get(&p)).await, "DPoP");
    }
}

#[tokio::test]
async fn a_key_mismatch_is_decided_before_the_replay_store() {
    // The proof of the refused request stays unused: its jti is good for the right token.
    let (app, c) = (app(Verbose), Client::new(key(ES256)));
    let other = bound(&other_ec256());
    let p = proof(&c.key, "GET", "/me", &other);
    let out = send_dpop(app.clone(), dpop_req(Method::GET, "/me", &other, &p.sign())).await;
    assert_eq!(out.event().field("reason"), "dpop_key_mismatch");
    let again = c.proof().claim("jti", p.claims["jti"].clone()).sign();
    accepted(&send_dpop(app, c.get(&again)).await, "DPoP");
}

/// A shared store that cannot answer.
#[derive(Debug)]
struct DownStore;

impl ReplayStore for DownStore {
    fn insert(&self, _id: ProofId, _expires_at: i64) -> ReplayFuture {
        let down = ReplayError::new("redis at 10.0.0.7:6379 refused the connection");
        Box::pin(std::future::ready(Err(down)))
    }
}

/// A store that records what it was asked, and answers "seen" for everything after the
/// first.
#[derive(Debug, Default, Clone)]
struct Recording(Arc<Mutex<Vec<(ProofId, i64)>>>);

impl ReplayStore for Recording {
    fn insert(&self, id: ProofId, expires_at: i64) -> ReplayFuture {
        let mut seen = self.0.lock().unwrap();
        let new = !seen.iter().any(|(i, _)| *i == id);
        seen.push((id, expires_at));
        let outcome = if new {
            ReplayOutcome::New
        } else {
            ReplayOutcome::Seen
        };
        Box::pin(std::future::ready(Ok(outcome)))
    }
}

#[rustfmt::skip]
#[test]
fn a_replay_store_that_cannot_answer_fails_closed_with_503() {
    run(vec![row("a replay store that is down")
        .on(|m| dpop_app(m, |d| d.replay_store(DownStore)))
        .refused(on_dpop, "dpop_replay_store_unavailable", "", NO_ERROR)
        .more(|e| e.schemes(&[]).field("signature_verified", "true"))
        .request(Client::right)
        .then(|out, r, mode| {
            assert_eq!(out.header("retry-after"), Some("5"));
            let message = r.message();
            assert!(message.contains("refused the connection"), "the operator learns: {message}");
            assert!(mode == Verbose || !out.text().contains("redis"), "{}", out.text());
        })]);
}

#[tokio::test]
async fn a_memory_replay_store_full_of_many_keys_proofs_fails_closed_with_503() {
    // Room for two proofs, one per key: two keys fill it, the third is refused.
    let store = MemoryReplayStore::with_capacity(2).key_share(1);
    let app = dpop_app(Verbose, |d| d.replay_store(store));
    let clients = [key(ES256), other_ec256(), key(PS256)].map(Client::new);
    accepted(&send_dpop(app.clone(), clients[0].right()).await, "DPoP");
    // The first key's second proof: that key is over its share, not the store full.
    let out = send_dpop(app.clone(), clients[0].right()).await;
    refused(
        &out,
        verified("dpop_key_over_quota")
            .schemes(&[])
            .field("check", "jti")
            .verbose(),
    );
    accepted(&send_dpop(app.clone(), clients[1].right()).await, "DPoP");
    let out = send_dpop(app.clone(), clients[2].right()).await;
    let e = on_dpop("dpop_replay_store_unavailable").schemes(&[]);
    let r = refused(&out, e.verbose());
    assert_eq!(out.header("retry-after"), Some("5"));
    assert!(
        r.message().contains("full: 2 unexpired proofs, its limit"),
        "{}",
        r.message()
    );
}

/// Issue 23: one client with one bound token flooding distinct proofs filled the whole
/// replay store, and every other client got 503 until the proofs expired. A key is held
/// to its share of the store: past it, that key alone gets 429 with `Retry-After`.
#[tokio::test]
async fn one_key_flooding_distinct_proofs_cannot_lock_out_another_key() {
    let (flooder, other) = (Client::new(key(ES256)), Client::new(other_ec256()));
    // 640 proofs, 10 per key; the flood sends more than twice that.
    let store = MemoryReplayStore::with_capacity(640);
    let app = dpop_app(Verbose, |d| d.replay_store(store));
    let (mut taken, mut over) = (0, None);
    for i in 0..1500 {
        let out = send(app.clone(), flooder.right()).await;
        match out.status.as_u16() {
            200 => taken += 1,
            // The first refusal: the log's flood control may summarise later ones.
            429 if over.is_none() => over = Some(out),
            429 => assert!(out.header("retry-after").is_some()),
            status => panic!("flood proof {i}: {status} {}", out.text()),
        }
        if i % 200 == 0 {
            let fresh = send_dpop(app.clone(), other.right()).await;
            assert_eq!(
                fresh.status,
                200,
                "after {i} flood proofs: {}",
                fresh.text()
            );
            accepted(&fresh, "DPoP");
        }
    }
    // The default share: a sixty-fourth of the store.
    assert_eq!(taken, 10, "the flooding key's share");
    let over = over.expect("the flooding key was refused");
    let r = refused(
        &over,
        verified("dpop_key_over_quota").schemes(&[]).verbose(),
    );
    let retry: u64 = over.header("retry-after").unwrap().parse().unwrap();
    // Its oldest proof expires in at most max age + leeway + 1 s.
    assert!((1..=91).contains(&retry), "{retry}");
    assert!(r.detail().contains("share"), "{}", r.detail());
    // The log names the settings that raise a key's share.
    for setting in ["MemoryReplayStore::key_share", "RedisStore::dpop_key_share"] {
        assert!(r.detail().contains(setting), "{}", r.detail());
    }
    assert_eq!(r.event.field("check"), "jti");
}

#[tokio::test]
async fn the_replay_store_sees_one_id_per_key_and_jti_until_the_proof_expires() {
    let c = Client::new(key(ES256));
    let store = Recording::default();
    let app = dpop_app(Verbose, |d| d.replay_store(store.clone()));
    let iat = now();
    let p = c.proof().claim("iat", json!(iat)).sign();
    accepted(&send_dpop(app.clone(), c.get(&p)).await, "DPoP");
    let out = send_dpop(app, c.get(&p)).await;
    assert_eq!(out.event().field("reason"), "dpop_proof_replayed");
    let seen = store.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, seen[1].0);
    // Kept at least as long as the proof could be accepted: max age 60 + leeway 30.
    assert!(seen[0].1 > iat + 90 && seen[0].1 <= iat + 120, "{seen:?}");
    // The id holds no client text.
    let id = format!("{:?}", seen[0].0);
    assert!(!id.contains("jti-"), "{id}");
}

/// The in-memory store behind a slow link: every insert waits 2.5 s first.
#[derive(Debug)]
struct Late(Arc<MemoryReplayStore>);

impl ReplayStore for Late {
    fn insert(&self, id: ProofId, expires_at: i64) -> ReplayFuture {
        let inner = self.0.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            inner.insert(id, expires_at).await
        })
    }
}

#[test]
fn a_proof_that_expires_while_it_is_checked_is_not_accepted_twice() {
    // A proof one second short of its age limit, sent twice at once; the store answers
    // after the proof's entry would have expired. Both inserts find no live entry: were
    // the proof accepted then, it would be accepted twice. Each request on a thread and
    // runtime of its own, so each captures its own events.
    let c = Client::new(key(ES256));
    let late = Late(Arc::new(MemoryReplayStore::default()));
    let svc = dpop_app(Verbose, |d| d.replay_store(late));
    let p = c.proof().claim("iat", json!(now() - 89)).sign();
    let once = || runtime().block_on(send_dpop(svc.clone(), c.get(&p)));
    let (a, b) = std::thread::scope(|s| {
        let (a, b) = (s.spawn(once), s.spawn(once));
        (a.join().unwrap(), b.join().unwrap())
    });
    let twice = a.status == 200 && b.status == 200;
    assert!(!twice, "one proof was accepted twice");
    for out in [&a, &b].into_iter().filter(|out| out.status != 200) {
        let e = verified("dpop_proof_expired").field("check", "iat");
        let r = refused(out, e.verbose());
        let detail = r.detail();
        let said = detail.contains("while the request was being checked");
        assert!(said, "{detail}");
    }
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

#[test]
fn a_dpop_route_without_its_origin_does_not_start() {
    let build = || AuthDiagnostics::new().dpop(Dpop::new(jwt())).layer(());
    let text = panic_message(catch_unwind(AssertUnwindSafe(build)));
    assert!(text.starts_with("auth-diagnostics: "), "{text}");
    assert!(text.contains("Dpop::public_origin"), "{text}");
}

#[test]
fn configuration_errors_panic_at_start_up() {
    // What the panic of an edit of the default configuration says.
    let says = |edit: &dyn Fn(Dpop) -> Dpop| {
        let build = || AuthDiagnostics::new().dpop(edit(ours())).layer(());
        let text = panic_message(catch_unwind(AssertUnwindSafe(build)));
        assert!(text.starts_with("auth-diagnostics: "), "{text}");
        text
    };
    for algs in [vec![HS256], vec![ES256, Algorithm::HS512]] {
        let text = says(&|d| d.algorithms(algs.clone()));
        assert!(text.contains("symmetric"), "{algs:?}: {text}");
    }
    assert!(says(&|d| d.algorithms([])).contains("no proof algorithm"));
    let five_minutes = "at most 5 minutes";
    assert!(says(&|d| d.proof_max_age(Duration::from_secs(301))).contains(five_minutes));
    assert!(says(&|d| d.proof_leeway(Duration::from_secs(3600))).contains(five_minutes));
    for origin in [
        "api.example",
        "/orders",
        "ftp://api.example",
        "https://user@api.example",
        "https://api.example?x=1",
        "https://api.example#top",
        "https://api.example/a/../b",
        "https://api.example/%2e%2e",
    ] {
        // One bad origin among good ones.
        let text = says(&|d| d.public_origin(origin));
        let said = text.contains("not scheme://host[:port][/path prefix]");
        assert!(said, "{origin}: {text}");
    }
    let no_audience = || auth_diagnostics::jwt::JwtAuthenticator::new(StaticKey::hs256(SECRET));
    let text = says(&|_| Dpop::new(no_audience()).public_origin("https://api.example"));
    assert!(text.contains("audience"), "{text}");
    let twice = || AuthDiagnostics::new().dpop(ours()).dpop(ours()).layer(());
    let text = panic_message(catch_unwind(twice));
    assert!(text.contains("once"), "{text}");
    // The limits themselves are fine.
    let _ = AuthDiagnostics::new().dpop(
        Dpop::new(jwt())
            .proof_max_age(Duration::from_secs(300))
            .proof_leeway(Duration::from_secs(300))
            .public_origin("https://api.example:8443/prefix"),
    );
    let _ = AuthDiagnostics::new().dpop(Dpop::new(jwt()).insecure_origin_from_host());
}

// ---------------------------------------------------------------------------------------
// The demo's /dpop (shared/spec/demo.md)
// ---------------------------------------------------------------------------------------

#[rustfmt::skip]
#[test]
fn the_demos_dpop_route() {
    run(vec![
        row("the demo without credentials: one DPoP challenge, algs, no error").on(demo)
            .refused(on_dpop, "credentials_missing", "", NO_ERROR).more(|e| e.realm("demo"))
            .request(|_| get("/dpop", &[("host", HOST)])),
        row("the demo with a proof for another URL").on(demo)
            .refused(unverified, "dpop_proof_url_mismatch", "htu", BAD_PROOF)
            .more(|e| e.realm("demo"))
            .request(|c| dpop_req(Method::GET, "/dpop", &c.token, &c.right_proof())),
    ]);
    let c = Client::new(key(ES256));
    let out = runtime().block_on(send_dpop(demo(Verbose), c.at("/dpop")));
    assert_eq!(out.ok(), json!({ "id": "alice", "scheme": "DPoP" }));
}

/// The demo with `DEMO_PUBLIC_ORIGIN=http://api.test`.
fn demo(mode: DetailMode) -> Router {
    let cfg = common::demo::DemoConfig {
        public_origin: Some(format!("http://{HOST}")),
        ..demo_config(mode)
    };
    common::demo::app(&cfg)
}

/// Issue 23 on the demo (its default store, 200 000 proofs): one key flooding distinct
/// proofs is held to its share, 3 125, and another key's fresh proof still passes.
#[tokio::test]
async fn the_demo_holds_a_flooding_key_to_its_share_and_serves_the_others() {
    let (flooder, other) = (Client::new(key(ES256)), Client::new(other_ec256()));
    let app = demo(Production);
    let mut taken = 0;
    for i in 0..3200 {
        let out = send(app.clone(), flooder.at("/dpop")).await;
        match out.status.as_u16() {
            200 => taken += 1,
            429 => assert!(out.header("retry-after").is_some(), "proof {i}"),
            status => panic!("flood proof {i}: {status} {}", out.text()),
        }
        if i % 800 == 0 || i == 3199 {
            let fresh = send(app.clone(), other.at("/dpop")).await;
            assert_eq!(
                fresh.status,
                200,
                "after {i} flood proofs: {}",
                fresh.text()
            );
        }
    }
    assert_eq!(taken, 3125, "a sixty-fourth of the demo's store");
}

#[tokio::test]
async fn the_demo_checks_htu_against_its_own_address_unless_told_its_public_origin() {
    // demo_config's address is 127.0.0.1:0: without DEMO_PUBLIC_ORIGIN, proofs name that.
    let c = Client::new(key(ES256));
    let out = send_dpop(demo_app(Verbose), c.at("/dpop")).await;
    let r = refused(
        &out,
        unverified("dpop_proof_url_mismatch")
            .realm("demo")
            .verbose(),
    );
    assert!(
        r.detail().contains("http://127.0.0.1:0/dpop"),
        "{}",
        r.detail()
    );
    let proof = proof(&c.key, "GET", "/dpop", &c.token)
        .claim("htu", json!("http://127.0.0.1:0/dpop"))
        .sign();
    // Whatever Host says.
    let req = dpop_req(Method::GET, "/dpop", &c.token, &proof);
    let out = send_dpop(demo_app(Verbose), req).await;
    assert_eq!(out.ok(), json!({ "id": "alice", "scheme": "DPoP" }));
}
