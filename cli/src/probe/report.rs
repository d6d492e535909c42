//! The report of `probe`: a table for people, a stable JSON object for programs.
//!
//! JSON (`--json`), one object:
//!
//! - `url`: the URL probed; `resource`: its resource identifier (no query, no fragment);
//!   `mcp`: `true` for `probe --mcp` (absent otherwise).
//! - `requests`: one object per exchange, in the order sent:
//!   - `name`: `no_credentials`, `wrong_scheme`, `malformed_authorization`, `bare_token`,
//!     `valid_token`, `token_in_query`, `header_and_query` or `metadata`; with `--mcp`:
//!     `unauthenticated_initialize`, `metadata`, `metadata_path_inserted`, `metadata_root`,
//!     `authorization_server`, `initialize`, `initialized`, `tools_list`, `tools_call`,
//!     `foreign_token`;
//!   - `sent`: `method`, `url`, `authorization` (`null` when none; the token shows as
//!     `<token>`, the other audience's as `<foreign token>`); with `--mcp`, `rpc`: the
//!     JSON-RPC method of a POST (`tools/call NAME` for a tool);
//!   - `status`: the status code, `null` when no answer came or the request was not sent;
//!   - `error`: why no answer came (`null` when one did, or the request was not sent);
//!   - a request not sent (`token_in_query` and `header_and_query` without `--query-token`
//!     or after the token was refused, `metadata` on another origin) has one check, `sent`
//!     (`skip`) or `metadata_origin` (`warn`), saying why;
//!   - `received`: `null`, or `www_authenticate` (every field line, at most 32, each cut at
//!     4096 characters as the others), `cache_control`, `content_type`, `location` (each
//!     `null` when absent), `body_bytes`, `body_truncated`;
//!   - `checks`: `id`, `rule` (`R-NN`, `reasons.md`, `RFC 8414` or `MCP PKCE` where
//!     standards.md has no item, or `null`), `verdict` (`pass`, `fail`, `warn`, `skip`),
//!     `detail`.
//! - `summary`: `requests` (sent), `checks`, `passed`, `failed`, `warnings`, `skipped` (counts);
//!   `failed_checks` and `warning_checks` (`request.check` ids); `unreachable` (the first
//!   request could not connect); `ok` (nothing failed and the server was reached).
//!
//! No token ever appears: every output is scrubbed of each, raw and URL-encoded.

use super::checks::{Check, Verdict};
use super::{Answer, Out};
use reqwest::Url;
use serde::Serialize;
use std::fmt::Write as _;

/// The whole report.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// The URL probed.
    pub url: String,
    /// Its resource identifier (RFC 9728): no query, no fragment.
    pub resource: String,
    /// Whether this is `probe --mcp`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub mcp: bool,
    /// The exchanges, in the order sent.
    pub requests: Vec<Exchange>,
    /// The counts.
    pub summary: Summary,
}

/// What a request sent (the token shown as `<token>`).
#[derive(Debug, Serialize)]
pub(crate) struct Sent {
    /// `GET`, or `POST` for the JSON-RPC messages of `--mcp`.
    pub method: &'static str,
    /// The URL.
    pub url: String,
    /// The `Authorization` value, if any.
    pub authorization: Option<String>,
    /// The JSON-RPC method a POST carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc: Option<String>,
}

impl Sent {
    /// A `GET` of `url` with `authorization`.
    pub fn get(url: &str, authorization: Option<&str>) -> Self {
        Self {
            method: "GET",
            url: url.to_owned(),
            authorization: authorization.map(str::to_owned),
            rpc: None,
        }
    }

    /// A JSON-RPC `POST` of `rpc` to `url` with `authorization`.
    pub fn post(url: &str, authorization: Option<&str>, rpc: String) -> Self {
        Self {
            method: "POST",
            url: url.to_owned(),
            authorization: authorization.map(str::to_owned),
            rpc: Some(rpc),
        }
    }
}

/// The header fields and body size of an answer that the checks look at.
#[derive(Debug, Serialize)]
pub(crate) struct Received {
    /// Every `WWW-Authenticate` field line.
    pub www_authenticate: Vec<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Location`.
    pub location: Option<String>,
    /// Bytes of body read.
    pub body_bytes: usize,
    /// Whether the body was longer than the probe reads.
    pub body_truncated: bool,
}

/// One request and its answer, judged.
#[derive(Debug, Serialize)]
pub(crate) struct Exchange {
    /// The request's name.
    pub name: &'static str,
    /// What was sent.
    pub sent: Sent,
    /// The status, if an answer came.
    pub status: Option<u16>,
    /// Why no answer came.
    pub error: Option<String>,
    /// What came back.
    pub received: Option<Received>,
    /// The checks.
    pub checks: Vec<Check>,
}

impl Exchange {
    /// An answered request.
    pub fn answered(name: &'static str, sent: Sent, a: &Answer, checks: Vec<Check>) -> Self {
        let text = |v: &http::HeaderValue| field(&String::from_utf8_lossy(v.as_bytes()));
        let one = |h: http::HeaderName| a.headers.get(h).map(text);
        let received = Received {
            www_authenticate: a
                .headers
                .get_all(http::header::WWW_AUTHENTICATE)
                .iter()
                .take(FIELD_LINES)
                .map(text)
                .collect(),
            cache_control: one(http::header::CACHE_CONTROL),
            content_type: one(http::header::CONTENT_TYPE),
            location: one(http::header::LOCATION),
            body_bytes: a.body.len(),
            body_truncated: a.truncated,
        };
        Self {
            name,
            sent,
            status: Some(a.status),
            error: None,
            received: Some(received),
            checks,
        }
    }

    /// A request that got no answer.
    pub fn failed(name: &'static str, sent: Sent, error: String, checks: Vec<Check>) -> Self {
        Self {
            name,
            sent,
            status: None,
            error: Some(error),
            received: None,
            checks,
        }
    }

    /// A request the probe chose not to send, and why (in `check`).
    pub fn skipped(name: &'static str, sent: Sent, check: Check) -> Self {
        Self {
            name,
            sent,
            status: None,
            error: None,
            received: None,
            checks: vec![check],
        }
    }

    /// A request the probe would not send.
    pub fn unsent(name: &'static str, sent: Sent, checks: Vec<Check>) -> Self {
        let error = checks.first().map(|c| c.detail.clone()).unwrap_or_default();
        Self::failed(name, sent, error, checks)
    }
}

/// The most `WWW-Authenticate` lines a report keeps.
const FIELD_LINES: usize = 32;
/// The most characters of a header field a report keeps.
const FIELD_CHARS: usize = 4096;

/// A header field as a report keeps it: at most [`FIELD_CHARS`] characters (an ellipsis
/// when cut).
fn field(text: &str) -> String {
    let mut s: String = text.chars().take(FIELD_CHARS).collect();
    if text.chars().nth(FIELD_CHARS).is_some() {
        s.push('…');
    }
    s
}

/// The counts of a report.
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    /// Requests sent (or attempted).
    pub requests: usize,
    /// Checks run.
    pub checks: usize,
    /// Checks passed.
    pub passed: usize,
    /// Checks failed.
    pub failed: usize,
    /// Checks that warn.
    pub warnings: usize,
    /// Checks that could not be judged.
    pub skipped: usize,
    /// `request.check` of every failed check.
    pub failed_checks: Vec<String>,
    /// `request.check` of every warning.
    pub warning_checks: Vec<String>,
    /// The first request could not connect: nothing more was sent.
    pub unreachable: bool,
    /// Nothing failed and the server was reached.
    pub ok: bool,
}

impl Report {
    /// The report of `exchanges` against `url`.
    pub fn new(url: &Url, requests: Vec<Exchange>, unreachable: bool) -> Self {
        let mut resource = url.clone();
        resource.set_query(None);
        let all = || {
            requests
                .iter()
                .flat_map(|e| e.checks.iter().map(move |c| (e.name, c)))
        };
        let count = |v: Verdict| all().filter(|(_, c)| c.verdict == v).count();
        let ids = |v: Verdict| {
            all()
                .filter(|(_, c)| c.verdict == v)
                .map(|(n, c)| format!("{n}.{}", c.id))
                .collect::<Vec<_>>()
        };
        let sent = requests
            .iter()
            .filter(|e| e.status.is_some() || e.error.is_some())
            .count();
        let summary = Summary {
            requests: sent,
            checks: all().count(),
            passed: count(Verdict::Pass),
            failed: count(Verdict::Fail),
            warnings: count(Verdict::Warn),
            skipped: count(Verdict::Skip),
            failed_checks: ids(Verdict::Fail),
            warning_checks: ids(Verdict::Warn),
            unreachable,
            ok: count(Verdict::Fail) == 0 && !unreachable,
        };
        Self {
            url: url.to_string(),
            resource: resource.to_string(),
            mcp: false,
            requests,
            summary,
        }
    }
}

/// Prints the report to stdout, as JSON or a table, scrubbed of `token`.
pub(crate) fn print(report: &Report, out: &Out, token: Option<&str>) {
    print_scrubbed(report, out, &[(token, "<token>")]);
}

/// Prints the report to stdout, as JSON or a table, with every secret of `secrets`
/// replaced by its label.
pub(crate) fn print_scrubbed(report: &Report, out: &Out, secrets: &[(Option<&str>, &str)]) {
    let mut text = if out.json {
        serde_json::to_string_pretty(report).unwrap_or_default()
    } else {
        table(report, out.color)
    };
    for (secret, label) in secrets {
        text = scrub(&text, *secret, label);
    }
    if out.json {
        crate::term::emit_json(&text);
    } else {
        crate::term::emit(&text);
    }
}

/// `text` with every occurrence of `token`, raw or URL-encoded, replaced by `label`.
fn scrub(text: &str, token: Option<&str>, label: &str) -> String {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return text.to_owned();
    };
    let mut scratch = Url::parse("http://x/").expect("a fixed URL");
    scratch.query_pairs_mut().append_pair("t", token);
    let encoded = scratch.query().unwrap_or("t=")[2..].to_owned();
    let mut out = text.replace(token, label);
    if !encoded.is_empty() {
        out = out.replace(&encoded, label);
    }
    out
}

/// Printable text from a server: control characters replaced, at most 300 characters.
fn clean(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(300)
        .collect();
    if text.chars().count() > 300 {
        s.push('…');
    }
    s
}

/// `text` in ANSI colour `code` when `color`.
fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// The verdict's label, padded, coloured.
fn label(v: Verdict, color: bool) -> String {
    let (text, code) = match v {
        Verdict::Pass => ("PASS", "32"),
        Verdict::Fail => ("FAIL", "1;31"),
        Verdict::Warn => ("WARN", "33"),
        Verdict::Skip => ("SKIP", "2"),
    };
    paint(text, code, color)
}

/// The report as a table for people.
fn table(report: &Report, color: bool) -> String {
    let mut t = String::new();
    let mcp = if report.mcp { "--mcp " } else { "" };
    let _ = writeln!(t, "probe {mcp}{}", clean(&report.url));
    for e in &report.requests {
        let _ = writeln!(t);
        exchange(&mut t, e, color);
    }
    let s = &report.summary;
    let _ = writeln!(t);
    if s.unreachable {
        let _ = writeln!(
            t,
            "{}",
            paint("the server cannot be reached", "1;31", color)
        );
    }
    let _ = write!(
        t,
        "{} requests, {} checks: {} passed, {} failed, {} warnings, {} skipped",
        s.requests, s.checks, s.passed, s.failed, s.warnings, s.skipped
    );
    if !s.failed_checks.is_empty() {
        let _ = write!(t, "\nfailed: {}", s.failed_checks.join(", "));
    }
    t
}

/// One exchange: what was sent, the answer, one row per check.
fn exchange(t: &mut String, e: &Exchange, color: bool) {
    let auth = match &e.sent.authorization {
        Some(a) => format!("Authorization: {}", clean(a)),
        None => "no Authorization".to_owned(),
    };
    let title = paint(e.name, "1", color);
    let rpc = match &e.sent.rpc {
        Some(m) => format!("  {}", clean(m)),
        None => String::new(),
    };
    let _ = writeln!(
        t,
        "{title}  {} {}{rpc}  ({auth})",
        e.sent.method,
        clean(&e.sent.url)
    );
    match (e.status, &e.error, &e.received) {
        (Some(status), _, Some(r)) => {
            let _ = writeln!(t, "  -> {status}");
            for line in &r.www_authenticate {
                let _ = writeln!(t, "     WWW-Authenticate: {}", clean(line));
            }
        }
        (_, Some(error), _) => {
            let _ = writeln!(t, "  -> no answer: {}", clean(error));
        }
        _ => {}
    }
    for c in &e.checks {
        let rule = c.rule.unwrap_or("-");
        let _ = writeln!(
            t,
            "  {}  {rule:<10}  {:<22}  {}",
            label(c.verdict, color),
            c.id,
            clean(&c.detail)
        );
    }
}
