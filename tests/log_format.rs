//! `OneLine` (feature `log-format`): what a terminal shows of real requests through the
//! layer, written by a `tracing_subscriber::fmt()` subscriber into a buffer and read back
//! against the fields of the same events.

mod common;
use common::*;

use auth_diagnostics::layer::OneLine;
use axum::body::Body;
use http::Request;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;
use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// A log sink read back by the tests: every writer it makes appends to one buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("the log is UTF-8")
    }
}

impl io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

/// A subscriber that writes `format` events into `buf`.
fn one_line(buf: &Buffer, format: OneLine) -> impl Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_writer(buf.clone())
        .event_format(format)
        .finish()
}

/// What the demo's `DEMO_LOG_FORMAT=json` writes, into `buf`.
fn json_lines(buf: &Buffer) -> impl Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(buf.clone())
        .finish()
}

/// Sends `req` through `app` with `subscriber` as the default subscriber, plus a capture
/// of the same events: the status and the crate's events as fields.
fn logged(
    subscriber: impl Subscriber + Send + Sync,
    app: axum::Router,
    req: Request<Body>,
) -> (StatusCode, Vec<Captured>) {
    let capture = Capture::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let response = tracing::subscriber::with_default(subscriber.with(capture.clone()), || {
        runtime.block_on(app.oneshot(req))
    });
    (response.unwrap().status(), capture.events())
}

/// The single line `text` holds (one event, ended by a newline, no carriage return).
#[track_caller]
fn single_line(text: &str) -> &str {
    let line = text
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("{text:?}"));
    assert!(
        !line.contains(['\n', '\r']),
        "one event, one line: {text:?}"
    );
    line
}

/// The `key=value` facts of a line, as written: a value with a space, a quote or a `|` is
/// quoted; `\` and `"` are escaped inside any value.
#[track_caller]
fn facts(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').unwrap_or_else(|| panic!("{rest}"));
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let end = loop {
                    match chars.next().unwrap_or_else(|| panic!("unclosed: {after}")) {
                        (i, '"') => break i + 1,
                        (_, '\\') => value.push(chars.next().expect("an escaped char").1),
                        (_, c) => value.push(c),
                    }
                };
                (value, &quoted[end..])
            }
            None => {
                let end = after.find(' ').unwrap_or(after.len());
                (unescape(&after[..end]), &after[end..])
            }
        };
        assert!(out.insert(key.to_owned(), value).is_none(), "{key} twice");
        rest = next.strip_prefix(' ').unwrap_or(next);
    }
    out
}

/// An unquoted value as written: `\` escapes the next character.
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' {
            chars.next().expect("an escaped char")
        } else {
            c
        });
    }
    out
}

/// Asserts `line` is `event` as `OneLine` (without time) writes a failure: the level, the
/// reason code, `: `, the hint, ` | `, the detail, ` | `, then every other field, each
/// value as the event holds it; and no source location.
#[track_caller]
fn assert_failure_line(line: &str, event: &Captured) {
    let reason = event.field("reason");
    let lead = format!(
        "{:>5} {reason}: {} | ",
        event.level.as_str(),
        event.field("hint").replace('|', "\\|")
    );
    let rest = line
        .strip_prefix(&lead)
        .unwrap_or_else(|| panic!("expected {lead:?} first: {line}"));
    let detail = event.field("message").strip_prefix(&format!("{reason}: "));
    // A `|` in the detail is escaped, so only the real separators split the line.
    let detail = detail
        .expect("the message is `reason: detail`")
        .replace('|', "\\|");
    let written = rest
        .strip_prefix(&format!("{detail} | "))
        .unwrap_or_else(|| panic!("expected {detail:?} then ` | `: {rest}"));
    let mut want = event.fields.clone();
    for name in ["message", "reason", "hint"] {
        want.remove(name);
    }
    assert_eq!(facts(written), want, "{line}");
    assert!(!line.contains("src/") && !line.contains(".rs:"), "{line}");
}

#[test]
fn a_failure_is_one_line_reason_hint_detail_then_the_facts() {
    let buf = Buffer::default();
    let req = get("/me", &[("x-request-id", "log-req-1")]);
    let (status, events) = logged(
        one_line(&buf, OneLine::default().without_time()),
        bearer_app(AuthDiagnostics::new()),
        req,
    );
    assert_eq!(status, 401);
    let [event] = &events[..] else {
        panic!("{events:#?}")
    };
    let text = buf.text();
    let line = single_line(&text);
    assert!(line.starts_with(" INFO credentials_missing: "), "{line}");
    assert_failure_line(line, event);
    for fact in [" status=401 ", " request_id=log-req-1 ", " path=/me "] {
        assert!(line.contains(fact), "{fact} in {line}");
    }
}

#[test]
fn hostile_values_cannot_break_the_line() {
    let iss = "https://evil.example/\r\nINFO fake \"quoted\"";
    // Signed with another key: the claims are the client's word, unverified.
    let token = sign(
        &Header::default(),
        &claims(json!({ "iss": iss, "sub": "x\ny" })),
        &EncodingKey::from_secret(b"not-the-secret"),
    );
    let forging = hs256(&claims(
        json!({ "iss": "https://evil.example/x | status=200 request_id=forged" }),
    ));
    let newline_user = "bob\nINFO fake";
    let quoting_user = "bob\" user=\"root";
    // Each request, its reason, and how the client's text shows (when it does).
    let cases = [
        (
            bearer_app(AuthDiagnostics::new()),
            get("/me", &[("authorization", &bearer(&token))]),
            "token_signature_invalid",
            Some(r#" iss="https://evil.example/\\r\\nINFO fake \\\"quoted\\\"" "#),
        ),
        // A control character in the decoded credentials is refused as such.
        (
            basic_app(DetailMode::Verbose),
            get("/r", &[("authorization", &basic(newline_user, "pw"))]),
            "basic_malformed",
            None,
        ),
        // Client text in the detail cannot forge the facts section: its `|` is escaped.
        (
            bearer_app(AuthDiagnostics::new()),
            get("/me", &[("authorization", &bearer(&forging))]),
            "token_issuer_mismatch",
            Some(r"| iss https://evil.example/x \| status=200 request_id=forged, expected https"),
        ),
        // An unknown user's name is logged as a fingerprint only.
        (
            basic_app(DetailMode::Verbose),
            get("/r", &[("authorization", &basic(quoting_user, "pw"))]),
            "basic_user_unknown",
            Some(r#" user="<unverified user fp:"#),
        ),
    ];
    for (app, req, reason, shown) in cases {
        let buf = Buffer::default();
        let (status, events) = logged(one_line(&buf, OneLine::default().without_time()), app, req);
        assert_eq!(status, 401, "{reason}");
        let [event] = &events[..] else {
            panic!("{events:#?}")
        };
        assert_eq!(event.field("reason"), reason);
        let text = buf.text();
        let line = single_line(&text);
        // Every field, the client's text included, reads back exactly as the event holds it.
        assert_failure_line(line, event);
        if let Some(shown) = shown {
            assert!(line.contains(shown), "{shown} in {line}");
        }
    }
}

#[test]
fn other_events_are_level_target_message_then_fields() {
    let buf = Buffer::default();
    tracing::subscriber::with_default(one_line(&buf, OneLine::default().without_time()), || {
        tracing::info!(target: "app", answer = 42, "hello world");
        tracing::warn!(target: "app", who = "a \"b\"", path = "/x", "two\nlines");
    });
    assert_eq!(
        buf.text(),
        " INFO app: hello world answer=42\n WARN app: two\\nlines who=\"a \\\"b\\\"\" path=/x\n"
    );
}

#[test]
fn the_timestamp_leads_unless_without_time() {
    let buf = Buffer::default();
    tracing::subscriber::with_default(one_line(&buf, OneLine::default()), || {
        tracing::info!(target: "app", answer = 42, "hello world");
    });
    let text = buf.text();
    let (time, rest) = single_line(&text).split_once(' ').unwrap();
    assert_eq!(rest, " INFO app: hello world answer=42", "{text}");
    // RFC 3339 in UTC: 2026-11-30T03:12:09.120Z.
    assert!(
        time.len() >= 20
            && time.as_bytes()[..4].iter().all(u8::is_ascii_digit)
            && time.as_bytes()[10] == b'T'
            && time.ends_with('Z'),
        "{text}"
    );
}

#[test]
fn json_keeps_the_fields_apart() {
    let buf = Buffer::default();
    let req = get("/me", &[("x-request-id", "log-req-2")]);
    let (status, events) = logged(json_lines(&buf), bearer_app(AuthDiagnostics::new()), req);
    assert_eq!(status, 401);
    let [event] = &events[..] else {
        panic!("{events:#?}")
    };
    let text = buf.text();
    let v: Value = serde_json::from_str(single_line(&text)).expect("one JSON object");
    assert_eq!(v["reason"], "credentials_missing");
    assert_eq!(v["status"], 401);
    assert_eq!(v["hint"], event.field("hint"));
    assert_eq!(v["request_id"], "log-req-2");
    assert_eq!(v["message"], event.field("message"));
    assert_eq!(v["target"], "auth_diagnostics");
}
