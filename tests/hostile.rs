//! Hostile inputs, scheme by scheme: Bearer, DPoP (the `Authorization` value and the
//! proof), Basic, `X-API-Key`, the session cookie, `x-request-id`, the query string and
//! the path.
//!
//! - Every length the layer reads from a request has a cap. Each row of [`CAPS`] sends a
//!   value at its cap (read) and one a byte over it (refused unread, with its reason).
//! - Bytes that are not UTF-8, and obs-text (0x80-0xFF), in every credential header.
//! - A hundred fields of every credential header: bounded work, the documented reason.
//! - CRLF, quotes, backslashes and bidi controls in the claims and names that reach the log
//!   and the challenge: escaped in every event field, RFC 6750 text in `error_description`.
//! - Key sets over the size cap or that never come, and discovery documents whose
//!   `jwks_uri` is on another host.
//!
//! Besides what [`send`] asserts of every request, [`shielded`] asserts of every answer
//! here that nothing the client sent comes back (no body, header or event holds a slice of
//! it) and that no event field, body or header holds a raw control character, a Unicode
//! line separator or a bidi control.
mod common;
use common::*;

use auth_diagnostics::api_key::ApiKeyAuthenticator;
use auth_diagnostics::basic::BasicAuthenticator;
use auth_diagnostics::dpop::Dpop;
use auth_diagnostics::failure::AuthFailure;
use auth_diagnostics::jwt::JwtAuthenticator;
use auth_diagnostics::keys::{FetchFuture, Fetched, HttpFetch, KeySource, StaticKey};
use auth_diagnostics::session::SessionAuthenticator;
use auth_diagnostics::verify::{AuthFuture, Verify};
use axum::body::Body;
use axum::Router;
use http::Request;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower::ServiceExt;
use DetailMode::{Production, Verbose};

const MODES: [DetailMode; 2] = [Verbose, Production];

/// A value no other request of this suite has (a proof's `jti`, a token's).
fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("u{}-{}", now(), N.fetch_add(1, Ordering::Relaxed))
}

/// Characters that make a log line or a terminal lie besides the C0/C1 controls: the bidi
/// embeddings, overrides and isolates of "Trojan Source" (U+202A..U+202E,
/// U+2066..U+2069), the marks U+200E, U+200F and U+061C, and the line and paragraph
/// separators.
const SUSPECT: &[char] = &[
    '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}', '\u{200e}', '\u{200f}', '\u{061c}', '\u{2028}', '\u{2029}',
];

/// A CRLF with a header line after it, a quote, a backslash and the bidi controls the
/// issue names.
const NASTY: &str = "a\r\nInjected: 1\"q\\b\u{202e}R\u{2066}i\u{2067}j\u{2068}k\u{2069}\u{200f}z";
/// [`NASTY`] as a log field must show it: escaped, written out here by hand.
const NASTY_LOGGED: &str =
    r#"a\r\nInjected: 1\"q\\b\u{202e}R\u{2066}i\u{2067}j\u{2068}k\u{2069}\u{200f}z"#;

/// Asserts what every answer owes: no event field, body or header holds a raw control or
/// [`SUSPECT`] character, and none holds a 16-byte slice (start, middle, end) of `sent`.
#[track_caller]
fn shielded(out: &Outcome, sent: &[u8]) {
    let mut texts: Vec<(String, String)> = vec![("body".into(), out.text())];
    for (name, value) in &out.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        texts.push((format!("header {name}"), value));
    }
    for e in &out.events {
        for (k, v) in &e.fields {
            texts.push((format!("event field {k}"), v.clone()));
        }
    }
    let n = sent.len();
    let slices: Vec<&[u8]> = match n {
        0..=15 => Vec::new(),
        _ => vec![&sent[..16], &sent[n / 2 - 8..n / 2 + 8], &sent[n - 16..]],
    };
    for (place, text) in &texts {
        let bad = text.chars().find(|c| c.is_control() || SUSPECT.contains(c));
        assert_eq!(bad, None, "{place} holds a raw {bad:?}: {text:?}");
        for s in &slices {
            let s = String::from_utf8_lossy(s);
            assert!(!text.contains(&*s), "{place} echoes {s:?}: {text}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Apps
// ---------------------------------------------------------------------------------------

/// The scheme a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    Bearer,
    Dpop,
    Basic,
    Key,
    Session,
}

/// A verifier that counts its calls and refuses every credential with `reason` (the
/// store does not know it).
#[derive(Clone)]
struct Refuser {
    calls: Arc<AtomicUsize>,
    reason: Reason,
}

impl<C: Send + 'static> Verify<C> for Refuser {
    fn verify(&self, _credentials: C) -> AuthFuture {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let f = AuthFailure::new(self.reason);
        Box::pin(async move { Err(f) })
    }
}

/// A route for one scheme: the router, its layer (for the token cache's stats) and how
/// often the application's verifier was asked.
struct App {
    router: Router,
    layer: AuthDiagnostics,
    calls: Arc<AtomicUsize>,
}

impl App {
    /// `/r` (see `scheme_app`) behind a layer in `mode` for `on`; Basic, keys and sessions
    /// are refused by a [`Refuser`].
    fn new(on: On, mode: DetailMode) -> App {
        let calls = Arc::new(AtomicUsize::new(0));
        let refuse = |reason| Refuser {
            calls: calls.clone(),
            reason,
        };
        let l = layer(mode);
        let l = match on {
            On::Bearer => l.bearer(jwt()),
            On::Dpop => l.dpop(Dpop::new(jwt()).public_origin("http://api.test")),
            On::Basic => l.basic(BasicAuthenticator::new(refuse(Reason::BasicUserUnknown))),
            On::Key => l.api_key(ApiKeyAuthenticator::new(refuse(Reason::ApiKeyUnknown))),
            On::Session => l.session(SessionAuthenticator::new(
                "sid",
                refuse(Reason::SessionInvalid),
            )),
        };
        App {
            router: scheme_app(l.clone()),
            layer: l,
            calls,
        }
    }

    async fn send(&self, req: Request<Body>) -> Outcome {
        send(self.router.clone(), req).await
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// What a rejection on a route for `on` looks like: its scheme's challenge, the error on
/// it for DPoP.
fn expect_on(on: On, reason: &'static str, mode: DetailMode) -> Expect {
    let e = expect(reason).mode(mode);
    match on {
        On::Bearer => e,
        On::Dpop => e.schemes(&["DPoP"]).error_on("DPoP"),
        On::Basic => e.schemes(&["Basic"]),
        On::Key => e.schemes(&["ApiKey"]),
        On::Session => e.schemes(&["Cookie"]),
    }
}

/// GET `/r` with raw header fields.
fn raw(fields: &[(&'static str, &[u8])]) -> Request<Body> {
    request(
        Method::GET,
        "/r",
        fields.iter().map(|(n, v)| (*n, hv(v))).collect(),
    )
}

/// Every path answered by the layer (the fallback too), Bearer with the test
/// authenticator, in `mode`.
fn any_path(mode: DetailMode) -> Router {
    Router::new()
        .fallback(|| async { "ok" })
        .layer(layer(mode).bearer(jwt()))
}

// ---------------------------------------------------------------------------------------
// Caps on every length read from a request
// ---------------------------------------------------------------------------------------

/// One cap: a value of `n` bytes at the place it bounds is read at `n == cap` and
/// refused unread at `cap + 1`.
struct Cap {
    what: &'static str,
    on: On,
    cap: usize,
    /// The request with a value of `n` bytes.
    at: fn(usize) -> Request<Body>,
    /// What the layer answers at the cap: `None` for 200, or the reason of a later check.
    read: Option<&'static str>,
    /// The reason one byte over the cap, and what its verbose detail says.
    over: &'static str,
    says: &'static str,
}

/// A valid HS256 token of exactly `len` bytes: a `pad` claim makes up the length.
fn token_of_len(len: usize) -> String {
    let with = |pad: usize| hs256(&claims(json!({ "pad": "p".repeat(pad) })));
    let mut pad = (len - with(0).len()) * 3 / 4 - 4;
    loop {
        let t = with(pad);
        assert!(t.len() <= len, "no token of exactly {len} bytes");
        if t.len() == len {
            return t;
        }
        pad += 1;
    }
}

/// The caps, from src: `jws::MAX_TOKEN`, `evidence::MAX_AUTHORIZATION`,
/// `dpop::proof::MAX_PROOF`, Basic's `MAX_USER + 1 + MAX_PASSWORD`, `api_key::MAX_KEY`,
/// `session::MAX_SESSION`, `evidence::MAX_COOKIE_BYTES` and `MAX_COOKIES`.
const CAPS: &[Cap] = &[
    Cap {
        what: "Bearer token",
        on: On::Bearer,
        cap: 16 * 1024,
        at: |n| get("/r", &[("authorization", &bearer(&token_of_len(n)))]),
        read: None,
        over: "token_malformed",
        says: "longer than 16 KiB",
    },
    Cap {
        what: "Authorization value",
        on: On::Bearer,
        cap: 18 * 1024,
        at: |n| get("/r", &[("authorization", &bearer(&"a".repeat(n - 7)))]),
        read: Some("token_malformed"),
        over: "authorization_malformed",
        says: "longer than 18 KiB",
    },
    Cap {
        what: "DPoP proof",
        on: On::Dpop,
        cap: 8 * 1024,
        at: |n| {
            get(
                "/r",
                &[("authorization", "DPoP abc"), ("dpop", &"d".repeat(n))],
            )
        },
        read: Some("dpop_proof_malformed"),
        over: "dpop_proof_malformed",
        says: "longer than 8 KiB",
    },
    Cap {
        what: "Basic user:password",
        on: On::Basic,
        cap: 256 + 1 + 1024,
        at: |n| {
            let (user, password) = ("u".repeat(n - 1025), "p".repeat(1024));
            get("/r", &[("authorization", &basic(&user, &password))])
        },
        read: Some("basic_user_unknown"),
        over: "basic_malformed",
        says: "longer than allowed",
    },
    Cap {
        what: "X-API-Key",
        on: On::Key,
        cap: 1024,
        at: |n| get("/r", &[("x-api-key", &"k".repeat(n))]),
        read: Some("api_key_unknown"),
        over: "api_key_unknown",
        says: "longer than 1 KiB",
    },
    Cap {
        what: "session cookie",
        on: On::Session,
        cap: 4 * 1024,
        at: |n| get("/r", &[("cookie", &format!("sid={}", "s".repeat(n)))]),
        read: Some("session_invalid"),
        over: "session_invalid",
        says: "longer than 4 KiB",
    },
    Cap {
        what: "Cookie bytes",
        on: On::Session,
        cap: 16 * 1024,
        at: |n| {
            let head = format!("sid={SESS_BOGUS}; pad=");
            get(
                "/r",
                &[("cookie", &format!("{head}{}", "c".repeat(n - head.len())))],
            )
        },
        read: Some("session_invalid"),
        over: "session_invalid",
        says: "so it was not read",
    },
    Cap {
        what: "Cookie count",
        on: On::Session,
        cap: 256,
        at: |n| {
            let others = (1..n).map(|i| format!("; c{i}=v"));
            let value: String = std::iter::once(format!("sid={SESS_BOGUS}"))
                .chain(others)
                .collect();
            get("/r", &[("cookie", &value)])
        },
        read: Some("session_invalid"),
        over: "session_invalid",
        says: "so it was not read",
    },
];

/// At its cap a value is read (the verifier is asked, a token is decoded); one byte over,
/// it is refused unread with its reason, the verbose detail names the cap, and nothing of
/// it comes back.
#[tokio::test]
async fn every_credential_is_read_to_its_cap_and_refused_unread_past_it() {
    for c in CAPS {
        for mode in MODES {
            let label = format!("{} {mode:?}", c.what);
            let app = App::new(c.on, mode);
            let out = app.send((c.at)(c.cap)).await;
            match c.read {
                None => {
                    out.ok();
                }
                Some(reason) => {
                    out.check(&expect_on(c.on, reason, mode));
                }
            }
            assert!(!out.text().contains(c.says), "{label}: refused at the cap");
            let verified = usize::from(matches!(c.on, On::Basic | On::Key | On::Session));
            assert_eq!(app.calls(), verified, "{label}: at the cap");

            let req = (c.at)(c.cap + 1);
            let sent = req
                .headers()
                .iter()
                .map(|(_, v)| v.as_bytes())
                .max_by_key(|v| v.len());
            let sent = sent.unwrap().to_vec();
            let out = app.send(req).await;
            let r = out.check(&expect_on(c.on, c.over, mode));
            if mode == Verbose {
                assert!(r.detail().contains(c.says), "{label}: {}", r.detail());
            }
            assert_eq!(
                app.calls(),
                verified,
                "{label}: the verifier saw an over-cap value"
            );
            shielded(&out, &sent);
        }
    }
}

/// Basic's user-id and password have caps of their own (`MAX_USER` 256 and
/// `MAX_PASSWORD` 1024 bytes in src/authn/basic.rs), but only their sum is enforced: a
/// 300-byte user-id with a short password, or a 1100-byte password with a short user-id,
/// reaches the application's verifier.
#[tokio::test]
async fn basic_user_and_password_each_have_their_cap() {
    for (user, password) in [
        ("u".repeat(257), "p".to_owned()),
        ("u".into(), "p".repeat(1025)),
    ] {
        let app = App::new(On::Basic, Verbose);
        let out = app
            .send(get("/r", &[("authorization", &basic(&user, &password))]))
            .await;
        let label = format!("user {} bytes, password {}", user.len(), password.len());
        assert_eq!(app.calls(), 0, "{label}: the verifier saw it");
        out.check(&expect_on(On::Basic, "basic_malformed", Verbose));
    }
}

/// The request id is kept up to 128 visible characters and replaced past them; the query
/// string is scanned for credentials up to 8 KiB; the path is logged up to 256 characters
/// and the `repro` line up to about 2 KiB, however long they are.
#[tokio::test]
async fn request_ids_queries_and_paths_are_read_to_their_caps() {
    let app = App::new(On::Bearer, Production);
    let id = "i".repeat(128);
    let out = app.send(get("/r", &[("x-request-id", &id)])).await;
    assert_eq!(out.header("x-request-id"), Some(id.as_str()));
    let long = "i".repeat(129);
    let out = app.send(get("/r", &[("x-request-id", &long)])).await;
    assert_eq!(
        out.header("x-request-id").map(str::len),
        Some(32),
        "generated"
    );
    shielded(&out, long.as_bytes());

    // `access_token` in the query beside a valid Authorization is a conflict while it
    // lies within the first 8 KiB of the query; past them it is not read at all.
    let token = hs256(&good_claims());
    let with_query = |len: usize| {
        let tail = "&access_token=v";
        let uri = format!("/r?pad={}{tail}", "q".repeat(len - 4 - tail.len()));
        get(&uri, &[("authorization", &bearer(&token))])
    };
    let out = app.send(with_query(8 * 1024)).await;
    out.check(&expect("credentials_conflict"));
    app.send(with_query(8 * 1024 + 1)).await.ok();

    // A 30 KiB path and a 30 KiB token in the query (`http::Uri` stops at 64 KiB).
    let (path, value) = (format!("/{}", "p".repeat(30 * 1024)), "t".repeat(30 * 1024));
    let uri = format!("{path}?access_token={value}");
    let out = send(any_path(Verbose), get(&uri, &[])).await;
    let e = out
        .check(&expect("credentials_wrong_location").verbose())
        .event;
    assert!(
        e.field("path").chars().count() <= 257,
        "{}",
        e.field("path")
    );
    assert!(e.field("repro").len() <= 2100, "{}", e.field("repro").len());
    shielded(&out, value.as_bytes());
    assert!(
        out.body.len() < 2048,
        "the answer does not grow with the request"
    );
}

// ---------------------------------------------------------------------------------------
// Bytes that are not UTF-8, and obs-text
// ---------------------------------------------------------------------------------------

/// Not UTF-8 at all, a lone continuation byte, obs-text that is UTF-8 (é), and a
/// right-to-left override as UTF-8.
const ODD: [&[u8]; 4] = [
    b"\xff\xfe",
    b"\x80",
    "\u{e9}".as_bytes(),
    "\u{202e}".as_bytes(),
];

/// After the odd bytes, so that every value is long enough for [`shielded`] to look for.
const TAIL: &[u8] = b"-0123456789abcdef";

/// A credential header holding odd bytes: the route, the header, what stands before and
/// after the odd bytes in its value, and the reason. (A `DPoP` proof comes with
/// `Authorization: DPoP abc`.)
type Odd = (On, &'static str, &'static [u8], &'static [u8], &'static str);

const ODDS: &[Odd] = &[
    (
        On::Bearer,
        "authorization",
        b"Bearer tok",
        TAIL,
        "authorization_malformed",
    ),
    (
        On::Basic,
        "authorization",
        b"Basic ",
        TAIL,
        "basic_malformed",
    ),
    (
        On::Dpop,
        "authorization",
        b"DPoP ",
        TAIL,
        "authorization_malformed",
    ),
    (
        On::Dpop,
        "dpop",
        b"",
        b".e30.x-0123456789abcdef",
        "dpop_proof_malformed",
    ),
    (On::Key, "x-api-key", b"key-", TAIL, "api_key_unknown"),
    (On::Session, "cookie", b"sid=", TAIL, "session_invalid"),
    // An odd cookie name: that pair is skipped (or is just another name), not the field;
    // the session beside it is read.
    (
        On::Session,
        "cookie",
        b"th",
        b"eme=x; sid=sess-bogus-987654",
        "session_invalid",
    ),
    (
        On::Bearer,
        "x-request-id",
        b"req-",
        TAIL,
        "credentials_missing",
    ),
];

/// Every credential header with bytes that are not UTF-8 or not ASCII: the right reason,
/// a clean event, nothing echoed (not even as U+FFFD); the request id is replaced.
#[tokio::test]
async fn non_utf8_and_obs_text_in_every_credential_header() {
    for &(on, header, before, after, reason) in ODDS {
        for bytes in ODD {
            for mode in MODES {
                let app = App::new(on, mode);
                let mut fields = vec![(header, [before, bytes, after].concat())];
                if header == "dpop" {
                    fields.push(("authorization", b"DPoP abc".to_vec()));
                }
                let label = format!("{on:?} {fields:?}");
                let headers = fields.iter().map(|(n, v)| (*n, hv(v))).collect();
                let out = app.send(request(Method::GET, "/r", headers)).await;
                out.check(&expect_on(on, reason, mode));
                for (_, value) in &fields {
                    shielded(&out, value);
                }
                let lossy = out.events.iter().flat_map(|e| e.fields.values());
                for text in lossy.chain([&out.text()]) {
                    assert!(!text.contains('\u{fffd}'), "{label}: {text}");
                }
                if fields[0].0 == "x-request-id" {
                    let id = out.header("x-request-id").unwrap();
                    assert!(
                        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                        "{id}"
                    );
                }
            }
        }
    }
}

/// A path with a right-to-left override (raw UTF-8, which `http::Uri` accepts) is logged
/// escaped.
#[tokio::test]
async fn a_path_with_a_bidi_control_is_logged_escaped() {
    let uri = http::Uri::from_maybe_shared(bytes::Bytes::from("/files/\u{202e}gnp.exe")).unwrap();
    let mut req = get("/", &[]);
    *req.uri_mut() = uri;
    let out = send(any_path(Verbose), req).await;
    let e = out.check(&expect("credentials_missing").verbose()).event;
    assert_eq!(e.field("path"), r"/files/\u{202e}gnp.exe");
    shielded(&out, b"");
}

// ---------------------------------------------------------------------------------------
// Many fields of every credential header
// ---------------------------------------------------------------------------------------

/// A hundred fields of one credential header (a session cookie among a hundred `Cookie`
/// fields; a hundred request ids): one 400 or 401 with the documented reason, and no more
/// work than one field would cost: the verifier asked at most once, no token decoded.
#[tokio::test]
async fn a_hundred_fields_of_every_credential_header() {
    let token = hs256(&good_claims());
    let cookies = |n: usize| -> Vec<(&'static str, String)> {
        let mut all: Vec<_> = (0..n).map(|i| ("cookie", format!("c{i}=v{i}"))).collect();
        all[n / 2].1 = format!("sid={SESS_BOGUS}");
        all
    };
    type Fields = Vec<(&'static str, String)>;
    let hundred =
        |name: &'static str, value: &str| -> Fields { vec![(name, value.to_owned()); 100] };
    let cases: Vec<(On, Fields, &'static str, &'static str, usize)> = vec![
        (
            On::Bearer,
            hundred("authorization", &bearer(&token)),
            "credentials_conflict",
            "100 Authorization",
            0,
        ),
        (
            On::Basic,
            hundred("authorization", &basic("alice", ALICE_PW)),
            "credentials_conflict",
            "100 Authorization",
            0,
        ),
        (
            On::Dpop,
            hundred("authorization", &format!("DPoP {token}")),
            "credentials_conflict",
            "100 Authorization",
            0,
        ),
        (
            On::Dpop,
            [
                vec![("authorization", format!("DPoP {token}"))],
                hundred("dpop", "a.b.c"),
            ]
            .concat(),
            "dpop_proof_malformed",
            "more than one DPoP header",
            0,
        ),
        (
            On::Key,
            hundred("x-api-key", KEY_GOOD),
            "credentials_conflict",
            "100 X-API-Key",
            0,
        ),
        (On::Session, cookies(100), "session_invalid", "", 1),
        (
            On::Session,
            cookies(300),
            "session_invalid",
            "so it was not read",
            0,
        ),
    ];
    for (on, fields, reason, says, calls) in cases {
        for mode in MODES {
            let app = App::new(on, mode);
            let fields: Vec<_> = fields.iter().map(|(n, v)| (*n, hv(v))).collect();
            let out = app.send(request(Method::GET, "/r", fields)).await;
            let r = out.check(&expect_on(on, reason, mode));
            if mode == Verbose {
                assert!(r.detail().contains(says), "{on:?} {reason}: {}", r.detail());
            }
            assert_eq!(app.calls(), calls, "{on:?} {reason}: verifier calls");
            if let Some(s) = app.layer.token_cache_stats() {
                assert_eq!(s.hits + s.misses, 0, "{on:?}: a token was decoded: {s:?}");
            }
            shielded(&out, token.as_bytes());
        }
    }

    // A hundred request ids, each sane: none is echoed, one is generated (the suite's
    // `send` expects a single field, so this one is sent as it is).
    let (capture, _guard) = Capture::install();
    let req = request(Method::GET, "/r", vec![("x-request-id", hv("rid-1")); 100]);
    let res = App::new(On::Bearer, Production)
        .router
        .oneshot(req)
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let events = capture.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].field("request_id"), id);
    assert_eq!(events[0].field("reason"), "credentials_missing");
}

// ---------------------------------------------------------------------------------------
// CRLF, quotes, backslashes and bidi controls in what reaches the log and the challenge
// ---------------------------------------------------------------------------------------

/// The RFC 6750 §3 characters of `error_description`: %x20-21 / %x23-5B / %x5D-7E.
#[track_caller]
fn rfc6750_descriptions(out: &Outcome) {
    for c in out.challenges() {
        if let Some(d) = c.param("error_description") {
            let bad = d
                .chars()
                .find(|&ch| !matches!(ch, ' '..='!' | '#'..='[' | ']'..='~'));
            assert_eq!(bad, None, "error_description outside RFC 6750: {d:?}");
        }
    }
}

/// [`NASTY`] in `sub`, `iss`, `aud`, `kid` and `typ`: every field that carries it shows it
/// escaped, as written in [`NASTY_LOGGED`]; no field, body or header holds a raw control or
/// bidi character; the challenge's `error_description` is RFC 6750 text.
#[tokio::test]
async fn hostile_claims_reach_the_log_escaped() {
    let kid_header = |extra: Value| {
        let mut h = json!({ "alg": "HS256", "kid": NASTY });
        h.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        h.to_string()
    };
    let typ = format!("{NASTY}+jwt");
    let typ_logged = format!("{NASTY_LOGGED}+jwt");
    let everything = claims(json!({ "iss": NASTY, "sub": NASTY, "aud": NASTY }));
    let forged = raw_token(
        &kid_header(json!({ "typ": typ })),
        &Value::Object(everything).to_string(),
        "Zm9yZ2Vk",
    );
    let cases = [
        (
            "iss",
            hs256(&claims(json!({ "iss": NASTY }))),
            "token_issuer_mismatch",
        ),
        (
            "sub aud",
            hs256(&claims(json!({ "sub": NASTY, "aud": NASTY }))),
            "token_audience_mismatch",
        ),
        (
            "typ",
            hs256_raw_header(
                &json!({ "alg": "HS256", "typ": typ }).to_string(),
                &good_claims(),
            ),
            "token_type_rejected",
        ),
        (
            "kid",
            hs256_raw_header(&kid_header(json!({})), &good_claims()),
            "token_key_unknown",
        ),
        ("iss sub aud kid typ", forged, "token_signature_invalid"),
    ];
    for (fields, token, reason) in cases {
        for mode in MODES {
            // Keys with a kid, so that an unknown kid is token_key_unknown.
            let keyed = JwtAuthenticator::new(StaticKey::hs256(SECRET).with_kid("main"))
                .issuer(ISSUER)
                .audience(AUDIENCE);
            let jwt = if fields == "kid" { keyed } else { jwt() };
            let app = scheme_app(layer(mode).bearer(jwt));
            let out = send(app, get("/r", &[("authorization", &bearer(&token))])).await;
            let mut e = expect(reason).mode(mode).token_fields();
            for f in fields.split(' ') {
                e = e.field(
                    f,
                    if f == "typ" {
                        &typ_logged
                    } else {
                        NASTY_LOGGED
                    },
                );
            }
            let r = out.check(&e);
            assert!(!r.message().contains("Injected: 1\""), "{}", r.message());
            rfc6750_descriptions(&out);
            shielded(&out, token.as_bytes());
        }
    }
}

/// A DPoP client: the P-256 key of tests/keys, its public JWK and a token bound to it.
struct Client {
    key: EncodingKey,
    jwk: Value,
    token: String,
}

impl Client {
    fn new() -> Client {
        let pem = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/keys/ec256_private.pem"
        ));
        let key = EncodingKey::from_ec_pem(&pem.unwrap()).unwrap();
        let jwk = serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap());
        let jwk = jwk.unwrap();
        // RFC 7638: the required members, in lexicographic order, no white space.
        let required = json!({ "crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"] });
        let jkt = b64url(&Sha256::digest(required.to_string()));
        let token = hs256(&claims(json!({ "cnf": { "jkt": jkt } })));
        Client { key, jwk, token }
    }

    /// GET `/r` on `api.test` with a right proof, its claims changed by `edits`.
    fn get(&self, edits: Value) -> Request<Body> {
        let mut claims = json!({
            "jti": unique(),
            "htm": "GET",
            "htu": "http://api.test/r",
            "iat": now(),
            "ath": b64url(&Sha256::digest(&self.token)),
        });
        claims
            .as_object_mut()
            .unwrap()
            .extend(edits.as_object().unwrap().clone());
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk });
        let message = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, Algorithm::ES256);
        let proof = format!("{message}.{}", sig.unwrap());
        let auth = format!("DPoP {}", self.token);
        get(
            "/r",
            &[
                ("host", "api.test"),
                ("authorization", &auth),
                ("dpop", &proof),
            ],
        )
    }
}

/// [`NASTY`] in a proof's `htm`, `htu` and `jti` (sent twice), in a Basic user-id the
/// store knows, and in the name of a cookie that holds a token: logged escaped.
#[tokio::test]
async fn hostile_proof_claims_user_names_and_cookie_names_are_logged_escaped() {
    let client = Client::new();
    for mode in MODES {
        for (claim, reason) in [
            ("htm", "dpop_proof_method_mismatch"),
            ("htu", "dpop_proof_url_mismatch"),
            ("jti", "dpop_proof_replayed"),
        ] {
            let app = App::new(On::Dpop, mode);
            if claim == "jti" {
                app.send(client.get(json!({ "jti": NASTY }))).await.ok();
            }
            let out = app.send(client.get(json!({ claim: NASTY }))).await;
            let r = out.check(&expect_on(On::Dpop, reason, mode).field("check", claim));
            if mode == Verbose {
                assert!(r.detail().contains(NASTY_LOGGED), "{claim}: {}", r.detail());
            }
            rfc6750_descriptions(&out);
            shielded(&out, b"");
        }

        // A user-id without control characters (those are basic_malformed) that the store
        // knows: logged by name, escaped.
        let user = "\"al\\i\u{202e}ce\u{2069}";
        let calls = Arc::new(AtomicUsize::new(0));
        let mismatch = Refuser {
            calls,
            reason: Reason::BasicPasswordMismatch,
        };
        let app = scheme_app(layer(mode).basic(BasicAuthenticator::new(mismatch)));
        let out = send(
            app,
            get("/r", &[("authorization", &basic(user, "pw-123456"))]),
        )
        .await;
        let e = expect_on(On::Basic, "basic_password_mismatch", mode);
        out.check(&e.field("user", r#"\"al\\i\u{202e}ce\u{2069}"#));
        shielded(&out, b"");

        // A token in a cookie whose name carries a right-to-left override.
        let cookie = [
            b"to\xe2\x80\xaeken=".as_slice(),
            hs256(&good_claims()).as_bytes(),
        ]
        .concat();
        let out = send(any_path(mode), raw(&[("cookie", &cookie)])).await;
        let e = expect("credentials_wrong_location").mode(mode);
        out.check(&e.field("location", r"cookie:to\u{202e}ken"));
        shielded(&out, &cookie);
    }
}

// ---------------------------------------------------------------------------------------
// Key sets: too big, too slow, on another host
// ---------------------------------------------------------------------------------------

/// What the in-memory identity provider answers to one GET.
enum Reply {
    Json(Value),
    /// `max_bytes + 1` bytes, whatever `max_bytes` asked: a client that ignores the cap.
    Oversized,
    /// Nothing, ever.
    Hang,
}

/// What the in-memory identity provider answers to a GET of `url`, its `n`th GET in all
/// (counted from 1).
type Script = Box<dyn Fn(&str, usize) -> Reply + Send + Sync>;

/// An identity provider in memory: `script` answers; every URL asked is recorded.
struct Idp {
    script: Script,
    asked: Arc<Mutex<Vec<String>>>,
}

impl HttpFetch for Idp {
    fn get<'a>(&'a self, url: &'a str, max_bytes: usize) -> FetchFuture<'a> {
        let n = {
            let mut asked = self.asked.lock().unwrap();
            asked.push(url.to_owned());
            asked.len()
        };
        let reply = (self.script)(url, n);
        Box::pin(async move {
            let body = match reply {
                Reply::Json(v) => v.to_string().into(),
                Reply::Oversized => vec![b' '; max_bytes + 1].into(),
                Reply::Hang => std::future::pending().await,
            };
            Ok(Fetched {
                status: StatusCode::OK,
                cache_control: None,
                body,
            })
        })
    }
}

/// The issuer of the key-set tests.
const ISS: &str = "https://idp.test";

/// The RSA key of tests/keys as a JWK set of one key, `r1`, and a token signed by it
/// with `kid` for issuer `iss`.
fn rsa() -> (Value, impl Fn(&str, &str) -> String) {
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/keys/rsa_private.pem"
    ));
    let key = EncodingKey::from_rsa_pem(&pem.unwrap()).unwrap();
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap()).unwrap();
    jwk["kid"] = json!("r1");
    let token = move |kid: &str, iss: &str| {
        let header = jsonwebtoken::Header {
            kid: Some(kid.to_owned()),
            ..jsonwebtoken::Header::new(Algorithm::RS256)
        };
        // A fresh jti: the token cache never answers for the key set.
        sign(
            &header,
            &claims(json!({ "iss": iss, "jti": unique() })),
            &key,
        )
    };
    (json!({ "keys": [jwk] }), token)
}

/// A source of `url` served by `script`, and the URLs it asked for.
fn scripted(
    source: KeySource,
    script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static,
) -> (KeySource, Arc<Mutex<Vec<String>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let idp = Idp {
        script: Box::new(script),
        asked: asked.clone(),
    };
    (source.http_client(idp), asked)
}

/// `/me` behind a verbose layer that verifies tokens of `iss` with `source`.
fn keyed_app(source: KeySource, iss: &str) -> Router {
    let jwt = JwtAuthenticator::from_source(source)
        .issuer(iss)
        .audience(AUDIENCE);
    jwt_app(layer(Verbose), jwt)
}

/// `/me` for `source` serving the key set of [`rsa`] first, then `then()` to every later
/// fetch, once the first fetch is done; and the URLs asked.
async fn keys_then(source: KeySource, then: fn() -> Reply) -> (Router, Arc<Mutex<Vec<String>>>) {
    let (set, _) = rsa();
    let (source, asked) = scripted(source, move |_, n| match n {
        1 => Reply::Json(set.clone()),
        _ => then(),
    });
    let app = keyed_app(source.clone(), ISS);
    let first = tokio::time::timeout(Duration::from_secs(5), source.ready()).await;
    first.expect("the key set within 5 s");
    (app, asked)
}

/// Asserts `out` is a 503 `key_source_unavailable` (verbose) whose event's `fetch_error`
/// says `says`.
#[track_caller]
fn unavailable(out: &Outcome, says: &str) -> Checked {
    let r = out.check(&expect("key_source_unavailable").verbose());
    let error = r.event.field("fetch_error");
    assert!(
        error.contains(says),
        "fetch_error {error:?} does not say {says:?}"
    );
    r
}

/// GET `/me` with `token`, and how long the answer took.
async fn timed(app: &Router, token: &str) -> (Outcome, Duration) {
    let start = Instant::now();
    let out = send(
        app.clone(),
        get("/me", &[("authorization", &bearer(token))]),
    )
    .await;
    (out, start.elapsed())
}

/// A key set one byte over `max_bytes`, from a client that ignores the cap it is given:
/// refused by the source itself, 503 with nothing cached, the cached keys kept after.
#[tokio::test]
async fn a_key_set_over_max_bytes_is_refused_even_from_a_client_that_ignores_it() {
    let (_, token) = rsa();
    let jwks = KeySource::jwks(format!("{ISS}/jwks")).max_bytes(4096);
    let (source, _) = scripted(jwks, |_, _| Reply::Oversized);
    let (out, _) = timed(&keyed_app(source, ISS), &token("r1", ISS)).await;
    unavailable(&out, "larger than 4096 bytes");

    // Keys first, then an oversized set for the refresh an unknown kid asks for.
    let jwks = KeySource::jwks(format!("{ISS}/jwks")).miss_refresh_interval(Duration::ZERO);
    let (app, asked) = keys_then(jwks, || Reply::Oversized).await;
    timed(&app, &token("r1", ISS)).await.0.ok();
    let (out, _) = timed(&app, &token("rotated", ISS)).await;
    let r = unavailable(&out, "larger than");
    assert_eq!(r.event.field("key_ids"), "r1", "the cached keys stay");
    timed(&app, &token("r1", ISS)).await.0.ok();
    assert!(
        asked.lock().unwrap().len() >= 2,
        "the refresh was asked for"
    );
}

/// A provider that never answers: a request waits at most the bound it is given (the
/// fetch timeout when it is the shorter, else `max_wait`), then gets 503, or is verified
/// at once with a cached key.
#[tokio::test]
async fn a_key_source_that_never_answers_holds_a_request_at_most_its_bound() {
    let (_, token) = rsa();
    let slack = Duration::from_millis(700);
    let jwks = || KeySource::jwks(format!("{ISS}/jwks"));

    // The fetch times out first (600 ms, inside the default 2 s max_wait).
    let timeout = Duration::from_millis(600);
    let (source, _) = scripted(jwks().fetch_timeout(timeout), |_, _| Reply::Hang);
    let (out, took) = timed(&keyed_app(source, ISS), &token("r1", ISS)).await;
    unavailable(&out, "no answer within 600ms");
    assert!(took >= timeout && took < timeout + slack, "{took:?}");

    // max_wait ends the wait first (500 ms, inside the default 5 s fetch timeout).
    let wait = Duration::from_millis(500);
    let (source, _) = scripted(jwks().max_wait(wait), |_, _| Reply::Hang);
    let app = keyed_app(source, ISS);
    for _ in 0..2 {
        let (out, took) = timed(&app, &token("r1", ISS)).await;
        let r = out.check(&expect("key_source_unavailable").verbose());
        assert!(
            r.detail().contains("did not arrive in time"),
            "{}",
            r.detail()
        );
        assert!(took >= wait && took < wait + slack, "{took:?}");
    }

    // Keys cached, then a refresh that never comes: the cached key answers at once, the
    // unknown kid waits max_wait.
    let source = jwks().max_wait(wait).miss_refresh_interval(Duration::ZERO);
    let (app, _) = keys_then(source, || Reply::Hang).await;
    let (out, took) = timed(&app, &token("rotated", ISS)).await;
    out.check(
        &expect("key_source_unavailable")
            .verbose()
            .field("key_ids", "r1"),
    );
    assert!(took >= wait && took < wait + slack, "{took:?}");
    let (out, took) = timed(&app, &token("r1", ISS)).await;
    out.ok();
    assert!(took < slack, "a cached key waits for nothing: {took:?}");
}

/// The discovery document of `issuer`, naming `jwks_uri`.
fn discovery(issuer: &'static str, jwks_uri: &'static str) -> impl Fn(&str, usize) -> Reply {
    let (set, _) = rsa();
    move |url, _| match url.strip_prefix(issuer) {
        Some("/.well-known/openid-configuration") => {
            Reply::Json(json!({ "issuer": issuer, "jwks_uri": jwks_uri }))
        }
        _ if url == jwks_uri => Reply::Json(set.clone()),
        _ => Reply::Hang,
    }
}

/// A discovery document may name a key set on another host over https (Google's does:
/// accounts.google.com names www.googleapis.com); plain http to a host that is not
/// loopback is refused as untrusted before anything is fetched from it, and logged.
#[tokio::test]
async fn a_jwks_uri_on_another_host_is_used_over_https_only() {
    const GOOGLE: &str = "https://accounts.google.test";
    const CERTS: &str = "https://www.googleapis.test/oauth2/v3/certs";
    let (_, token) = rsa();
    let (source, asked) = scripted(KeySource::discover(GOOGLE), discovery(GOOGLE, CERTS));
    let app = jwt_app(
        layer(Verbose),
        JwtAuthenticator::from_source(source).audience(AUDIENCE),
    );
    timed(&app, &token("r1", GOOGLE)).await.0.ok();
    let discovery_url = format!("{GOOGLE}/.well-known/openid-configuration");
    assert_eq!(*asked.lock().unwrap(), [discovery_url.as_str(), CERTS]);

    const PLAIN: &str = "http://keys.idp.test/certs";
    let (source, asked) = scripted(KeySource::discover(ISS), discovery(ISS, PLAIN));
    let app = jwt_app(
        layer(Verbose),
        JwtAuthenticator::from_source(source.clone()).audience(AUDIENCE),
    );
    // The fetch fails at once: its event goes to this test's subscriber.
    let (capture, _guard) = Capture::install();
    let _ = tokio::time::timeout(Duration::from_millis(300), source.ready()).await;
    let (out, _) = timed(&app, &token("r1", ISS)).await;
    let r = unavailable(&out, "jwks_uri: http://keys.idp.test/certs is not https");
    assert_eq!(r.event.field("key_source"), ISS);
    let failed: Vec<Captured> = capture
        .all_events()
        .into_iter()
        .filter(|e| e.target == "auth_diagnostics::keys")
        .collect();
    assert!(!failed.is_empty());
    for e in &failed {
        assert_eq!(e.level, Level::ERROR);
        assert_eq!(e.field("fetch_error_kind"), "Untrusted", "{}", e.line());
    }
    assert!(
        !asked.lock().unwrap().iter().any(|u| u == PLAIN),
        "the http set was fetched"
    );
}

/// A discovery document (the provider's own text) whose `jwks_uri` carries a bidi
/// control, with a set that holds no usable key and with a good one: whatever becomes of
/// the fetch, no event field, on any target at any level, holds the raw character.
#[tokio::test]
async fn a_jwks_uri_with_a_bidi_control_is_logged_escaped() {
    const URI: &str = "https://keys.idp.test/\u{202e}lmth.certs";
    let (set, token) = rsa();
    let mut raw = Vec::new();
    for keys in [json!([]), set["keys"].clone()] {
        let (source, _) = scripted(KeySource::discover(ISS), move |url, _| match url {
            URI => Reply::Json(json!({ "keys": keys })),
            _ => Reply::Json(json!({ "issuer": ISS, "jwks_uri": URI })),
        });
        let jwt = JwtAuthenticator::from_source(source.clone()).audience(AUDIENCE);
        let app = jwt_app(layer(Verbose), jwt);
        let (capture, _guard) = Capture::install();
        let _ = tokio::time::timeout(Duration::from_millis(300), source.ready()).await;
        let (out, _) = timed(&app, &token("r1", ISS)).await;
        let events = capture.all_events().into_iter().chain(out.events);
        let fields = events.flat_map(|e| e.fields.into_iter().map(move |f| (e.target.clone(), f)));
        raw.extend(fields.filter(|(_, (_, v))| v.contains(SUSPECT)));
    }
    let raw: Vec<String> = raw
        .iter()
        .map(|(t, (k, v))| format!("{t} {k}: {v:?}"))
        .collect();
    assert!(raw.is_empty(), "raw bidi controls in:\n{}", raw.join("\n"));
}
