//! `auth-diagnostics explain`: what a 401/403/400 means, what the server wants, what the
//! request sent, the most likely fix, and where the server breaks the standards.
//!
//! `--json` prints one object:
//! - `status` (number), `version` (`HTTP/1.1`, `HTTP/2`, `HAR`), `earlier_statuses`
//!   (statuses before the last response: 100 Continue, redirects);
//! - `challenges`: `[{scheme, params}]`, every well-formed `WWW-Authenticate` challenge,
//!   `params` an object with lowercased names;
//! - `problem`: the RFC 9457 body (object) or null; `reason`: its `reason` member or null;
//!   `reason_known`: whether that code is one of this crate's reasons;
//! - `server_wants`: sentences; `request`: null, or `{method, host, path, credentials}`
//!   where each credential is `{kind, name, scheme, fingerprint}` (never a value; the
//!   fingerprint is keyed for this run only: hashes differ between runs);
//! - `fix`: the most likely fix (string or null);
//! - `findings`: `[{id, severity, rule, message}]`, `severity` `error` (a MUST is broken)
//!   or `warning` (a SHOULD is not met, or this crate's own contract); ids:
//!   `challenge_missing`, `challenge_malformed`, `bearer_without_params` (errors),
//!   `forbidden_without_credentials`, `bearer_error_status_mismatch`,
//!   `error_without_credentials` (warnings), `basic_realm_missing` (error),
//!   `no_store_missing` (warning), `problem_status_mismatch` (error: only a body served as
//!   `application/problem+json` whose `status` is a number), `problem_content_type`
//!   (warning: a body with RFC 9457's `type` and `title` served as another type);
//! - `ok`: whether the exit code is 0 (a 1xx–3xx with no finding).

use super::diff::{credentials, Credential};
use super::input::{
    paint, parse_exchange, parse_request, print_json, read_text, Request, Response,
};
use super::{ExplainArgs, Out, Outcome, UsageError};
use auth_diagnostics::failure::Challenge as HeaderChallenge;
use auth_diagnostics::Reason;
use serde_json::{json, Map, Value};

/// Runs `explain`.
pub(crate) fn run(args: &ExplainArgs, out: &Out) -> Result<Outcome, UsageError> {
    let text = read_text(&args.response)?;
    let exchange = parse_exchange(&text, args.entry)?;
    let response = exchange
        .response
        .ok_or_else(|| UsageError("the HAR entry has no response".into()))?;
    let request = match &args.request {
        Some(file) => Some(parse_request(&read_text(file)?, None)?),
        None => exchange.request,
    };
    let a = analyse(&response, request.as_ref());
    if out.json {
        print_json(&a.json());
    } else {
        a.print(out.color);
    }
    Ok(if a.ok() {
        Outcome::Fine
    } else {
        Outcome::Problems
    })
}

/// One challenge: scheme and parameters (names lowercased).
struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }
}

/// A standard the response breaks.
struct Finding {
    id: &'static str,
    severity: &'static str,
    rule: &'static str,
    message: String,
}

/// Everything `explain` found.
struct Analysis {
    status: u16,
    version: String,
    earlier: Vec<u16>,
    challenges: Vec<Challenge>,
    problem: Option<Map<String, Value>>,
    reason: Option<String>,
    wants: Vec<String>,
    request: Option<(Request, Vec<Credential>)>,
    fix: Option<String>,
    findings: Vec<Finding>,
}

fn analyse(response: &Response, request: Option<&Request>) -> Analysis {
    let mut findings = Vec::new();
    let challenges = read_all_challenges(response, &mut findings);
    let problem = problem_body(response);
    let reason = problem
        .as_ref()
        .and_then(|p| p.get("reason"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let request = request.map(|r| (r.clone(), credentials(r)));
    let mut a = Analysis {
        status: response.status,
        version: response.version.clone(),
        earlier: response.earlier.clone(),
        wants: challenges.iter().map(wants).collect(),
        challenges,
        problem,
        reason,
        request,
        fix: None,
        findings,
    };
    check_status(&mut a, response);
    check_problem(&mut a, response);
    if response.status == 503 {
        if let Some(after) = response.header("retry-after") {
            a.wants
                .push(format!("to be asked again later (Retry-After: {after})"));
        }
    }
    a.fix = fix(&a);
    a
}

/// Every `WWW-Authenticate` line, parsed strictly; a malformed one is a finding.
fn read_all_challenges(response: &Response, findings: &mut Vec<Finding>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for line in response.all("www-authenticate") {
        match HeaderChallenge::parse(line) {
            Some(list) if !list.is_empty() => out.extend(list.into_iter().map(|c| {
                Challenge {
                    scheme: c.scheme().to_owned(),
                    params: c
                        .params()
                        .iter()
                        .cloned()
                        .map(|(n, v)| (n.to_ascii_lowercase(), v))
                        .collect(),
                }
            })),
            _ => findings.push(Finding {
                id: "challenge_malformed",
                severity: "error",
                rule: "RFC 9110 §11.2, §11.6.1",
                message: format!(
                    "WWW-Authenticate is not valid challenge syntax: {}; clients may ignore it",
                    shown(line)
                ),
            }),
        }
    }
    out
}

/// A server's text, capped and with control characters replaced.
fn shown(text: &str) -> String {
    let mut s: String = text
        .chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    format!("`{s}`")
}

/// The body as a JSON object, when it is one.
fn problem_body(response: &Response) -> Option<Map<String, Value>> {
    match serde_json::from_str::<Value>(response.body.trim()) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// What one challenge asks for, in words.
fn wants(c: &Challenge) -> String {
    let mut s = if c.is("Bearer") {
        "a Bearer token: `Authorization: Bearer <token>`".to_owned()
    } else if c.is("Basic") {
        "a user name and password: `Authorization: Basic` (curl -u user:password)".to_owned()
    } else if c.is("DPoP") {
        "a DPoP-bound token with a DPoP proof: `Authorization: DPoP <token>` and `DPoP: <proof>`"
            .to_owned()
    } else {
        format!("credentials of scheme {}", c.scheme)
    };
    let mut add = |name: &str, text: &str| {
        if let Some(v) = c.param(name) {
            s.push_str(&format!("; {text} {}", shown(v)));
        }
    };
    add("realm", "realm");
    add("scope", "with scope");
    add("error", "error");
    add("error_description", "the server says");
    add("acr_values", "after a login of class");
    add("max_age", "a login no older than (seconds)");
    add("algs", "proofs signed with");
    add("resource_metadata", "how to get a token is described at");
    s
}

/// The status a Bearer/DPoP `error` code goes with (RFC 6750 §3.1, RFC 9470, RFC 9449).
fn status_for_error(code: &str) -> Option<u16> {
    match code {
        "invalid_request" => Some(400),
        "invalid_token"
        | "insufficient_user_authentication"
        | "invalid_dpop_proof"
        | "use_dpop_nonce" => Some(401),
        "insufficient_scope" => Some(403),
        _ => None,
    }
}

fn check_status(a: &mut Analysis, response: &Response) {
    let no_creds = a.request.as_ref().map(|(_, c)| c.is_empty());
    if a.status == 401 && response.all("www-authenticate").is_empty() {
        a.findings.push(Finding {
            id: "challenge_missing",
            severity: "error",
            rule: "RFC 9110 §11.6.1, §15.5.2 (MUST)",
            message: "401 without WWW-Authenticate: the server must say which credentials it \
                      accepts"
                .into(),
        });
    }
    if a.status == 403 && no_creds == Some(true) {
        a.findings.push(Finding {
            id: "forbidden_without_credentials",
            severity: "warning",
            rule: "RFC 9110 §11.4 (SHOULD)",
            message: "403 to a request that carried no credentials at all: that is 401 with a \
                      challenge (403 means valid credentials that are not enough)"
                .into(),
        });
    }
    let mut found = Vec::new();
    for c in a
        .challenges
        .iter()
        .filter(|c| c.is("Bearer") || c.is("DPoP"))
    {
        let Some(code) = c.param("error") else {
            continue;
        };
        if let Some(want) = status_for_error(code).filter(|w| *w != a.status) {
            found.push(Finding {
                id: "bearer_error_status_mismatch",
                severity: "warning",
                rule: "RFC 6750 §3.1 (SHOULD)",
                message: format!("error=\"{code}\" goes with status {want}, not {}", a.status),
            });
        }
        if no_creds == Some(true) && code != "use_dpop_nonce" {
            found.push(Finding {
                id: "error_without_credentials",
                severity: "warning",
                rule: "RFC 6750 §3.1 (SHOULD NOT)",
                message: format!(
                    "error=\"{code}\" to a request without credentials: a request that lacks \
                     authentication information gets a challenge with no error code"
                ),
            });
        }
    }
    if a.challenges
        .iter()
        .any(|c| c.is("Bearer") && c.params.is_empty())
    {
        found.push(Finding {
            id: "bearer_without_params",
            severity: "error",
            rule: "RFC 6750 §3 (MUST)",
            message: "a bare `Bearer` challenge: the scheme must be followed by at least one \
                      auth-param (realm, say)"
                .into(),
        });
    }
    for c in a.challenges.iter().filter(|c| c.is("Basic")) {
        if c.param("realm").is_none() {
            found.push(Finding {
                id: "basic_realm_missing",
                severity: "error",
                rule: "RFC 7617 §2 (realm is REQUIRED)",
                message: "a Basic challenge without realm".into(),
            });
        }
    }
    a.findings.extend(found);
    check_cache(a, response);
}

fn check_cache(a: &mut Analysis, response: &Response) {
    let no_store = response
        .all("cache-control")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("no-store"));
    if a.status == 401 && !no_store {
        a.findings.push(Finding {
            id: "no_store_missing",
            severity: "warning",
            rule: "this crate's contract (reasons.md: its 401 and 403 carry no-store)",
            message: "401 without Cache-Control: no-store: a shared cache may keep the \
                      rejection and serve it again; no RFC requires no-store on a 401 \
                      (RFC 6749 §5.1 requires it on token responses), this crate sends it"
                .into(),
        });
    }
}

/// RFC 9457: a body served as `application/problem+json` states the response's status
/// (§3.1.2; a `status` that is not a number is ignored, §3.1); a body that looks like a
/// problem document (`type` and `title`) served as another type is worth a warning.
/// Ordinary JSON error bodies (`{"status":"401"}`, Spring Boot's) are not problem
/// documents.
fn check_problem(a: &mut Analysis, response: &Response) {
    let Some(p) = &a.problem else {
        return;
    };
    let ct = response
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let served_as_problem = ct.trim_start().starts_with("application/problem+json");
    if let Some(status) = p.get("status").filter(|s| s.is_number()) {
        if served_as_problem && status.as_u64() != Some(u64::from(a.status)) {
            a.findings.push(Finding {
                id: "problem_status_mismatch",
                severity: "error",
                rule: "RFC 9457 §3.1.2 (MUST)",
                message: format!(
                    "the problem body says status {status}, the response is {}",
                    a.status
                ),
            });
        }
    }
    let looks_like_problem = p.contains_key("type") && p.contains_key("title");
    if looks_like_problem && a.status >= 400 && !served_as_problem {
        a.findings.push(Finding {
            id: "problem_content_type",
            severity: "warning",
            rule: "RFC 9457 §3",
            message: format!(
                "a problem body (type, title) served as {}: use application/problem+json",
                if ct.is_empty() {
                    "(no Content-Type)"
                } else {
                    &ct
                }
            ),
        });
    }
}

/// The most likely fix, from the most specific evidence to the least.
fn fix(a: &Analysis) -> Option<String> {
    if let Some(r) = a.reason.as_deref().and_then(Reason::from_code) {
        return Some(format!("{} ({}). {}", r.title(), r.code(), r.hint()));
    }
    let creds = a.request.as_ref().map(|(_, c)| c.as_slice());
    if let Some(fix) = creds.and_then(token_fix) {
        return Some(fix);
    }
    for c in &a.challenges {
        if let Some(fix) = error_fix(c) {
            return Some(fix);
        }
    }
    match (creds, a.status) {
        (Some(creds), 401) => return Some(scheme_fix(creds, &a.challenges)),
        (Some([]), 403) => {
            return Some(
                "The request carried no credentials: send them (the server should have \
                 answered 401 and said which ones)"
                    .into(),
            )
        }
        _ => {}
    }
    let malformed = a.findings.iter().any(|f| f.id == "challenge_malformed");
    match a.status {
        401 if malformed => Some(
            "The server's WWW-Authenticate is malformed, so clients cannot read which \
             credentials it wants: fix the server, or ask its owners"
                .into(),
        ),
        401 if a.challenges.is_empty() => Some(
            "The server names no scheme: ask its owners which credentials it expects; \
             check that a proxy did not drop Authorization"
                .into(),
        ),
        401 => Some(format!(
            "Send {}",
            a.wants.first().cloned().unwrap_or_default()
        )),
        403 => Some(
            "The credentials were understood but are not enough: ask for the permission, role \
             or scope this resource needs"
                .into(),
        ),
        400 => Some("The request is malformed: send exactly one credential, well formed".into()),
        _ => None,
    }
}

/// A fix read from the token the request sent: expired, not yet valid.
fn token_fix(creds: &[Credential]) -> Option<String> {
    creds.iter().find_map(|c| {
        let state = c.token_state.as_deref()?;
        Some(format!(
            "The token in {} {state}: get a fresh one (`auth-diagnostics decode` shows its claims)",
            c.name
        ))
    })
}

fn error_fix(c: &Challenge) -> Option<String> {
    let fix = match c.param("error")? {
        "invalid_token" => "The token was refused (expired, revoked, signed by another key, or \
                            for another issuer or audience): run `auth-diagnostics decode` on \
                            it and get a fresh one"
            .to_owned(),
        "insufficient_scope" => format!(
            "The token lacks a scope: ask the authorization server for {}",
            c.param("scope")
                .map_or("the scope this resource needs".into(), shown)
        ),
        "invalid_request" => "The request is malformed: send exactly one token, in the \
                              Authorization header, as `Bearer <token>`"
            .to_owned(),
        "insufficient_user_authentication" => "Log in again: a stronger or more recent login \
                                               is needed (acr_values / max_age)"
            .to_owned(),
        "use_dpop_nonce" => "Send the request again with a new DPoP proof that carries the \
                             nonce from the DPoP-Nonce header"
            .to_owned(),
        "invalid_dpop_proof" => "The DPoP proof was refused: make a new one for this method \
                                 and URL, with a fresh jti and iat, signed by the token's key"
            .to_owned(),
        _ => return None,
    };
    Some(fix)
}

/// The request's credentials against the challenges of a 401.
fn scheme_fix(creds: &[Credential], challenges: &[Challenge]) -> String {
    if creds.is_empty() {
        return "The request carried no credentials: add them (a proxy, a redirect or a \
                cross-origin request may have dropped Authorization)"
            .into();
    }
    let sent: Vec<&str> = creds.iter().filter_map(|c| c.scheme.as_deref()).collect();
    let accepted: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
    if let Some(wrong) = creds.iter().find(|c| c.kind == "query") {
        return format!(
            "The token is in the query (?{}=): send it as `Authorization: Bearer <token>`",
            wrong.name
        );
    }
    let matches = sent
        .iter()
        .any(|s| accepted.iter().any(|a| a.eq_ignore_ascii_case(s)));
    if !accepted.is_empty() && !matches {
        return format!(
            "The server accepts {}; the request sent {}",
            accepted.join(", "),
            if sent.is_empty() {
                "credentials outside Authorization".to_owned()
            } else {
                sent.join(", ")
            }
        );
    }
    "The credentials were refused: check that they are current and meant for this server".into()
}

impl Analysis {
    fn ok(&self) -> bool {
        self.status < 400 && self.findings.is_empty()
    }

    fn json(&self) -> Value {
        let challenges: Vec<Value> = self
            .challenges
            .iter()
            .map(|c| {
                let params: Map<String, Value> = c
                    .params
                    .iter()
                    .map(|(n, v)| (n.clone(), Value::from(v.as_str())))
                    .collect();
                json!({"scheme": c.scheme, "params": params})
            })
            .collect();
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|f| json!({"id": f.id, "severity": f.severity, "rule": f.rule, "message": f.message}))
            .collect();
        let request = self.request.as_ref().map(|(r, creds)| {
            json!({
                "method": r.method,
                "host": r.host(),
                "path": r.target.path,
                "credentials": creds.iter().map(Credential::json).collect::<Vec<_>>(),
            })
        });
        json!({
            "status": self.status,
            "version": self.version,
            "earlier_statuses": self.earlier,
            "challenges": challenges,
            "problem": self.problem,
            "reason": self.reason,
            "reason_known": self.reason.as_deref().and_then(Reason::from_code).is_some(),
            "server_wants": self.wants,
            "request": request,
            "fix": self.fix,
            "findings": findings,
            "ok": self.ok(),
        })
    }

    fn print(&self, color: bool) {
        let b = |t: &str| paint(color, "1", t);
        let code = if self.status >= 400 { "31" } else { "32" };
        let phrase = http::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let mut head = format!("{} {} {phrase}", self.version, self.status);
        if !self.earlier.is_empty() {
            head.push_str(&format!(" (after {:?})", self.earlier));
        }
        outln!("{}", paint(color, code, &head));
        if let Some(p) = &self.problem {
            self.print_problem(p, color);
        }
        outln!("{}", b("The server wants"));
        if self.wants.is_empty() {
            outln!("  (no challenge)");
        }
        for w in &self.wants {
            outln!("  - {w}");
        }
        self.print_request(color);
        if let Some(fix) = &self.fix {
            outln!("{}\n  {fix}", b("Most likely fix"));
        }
        self.print_findings(color);
    }

    fn print_problem(&self, p: &Map<String, Value>, color: bool) {
        let field = |k: &str| p.get(k).and_then(Value::as_str);
        if let Some(reason) = field("reason") {
            let known = if Reason::from_code(reason).is_some() {
                ""
            } else {
                " (not a code this tool knows)"
            };
            outln!("{} {reason}{known}", paint(color, "1", "Reason:"));
        }
        for key in ["title", "detail", "hint"] {
            if let Some(v) = field(key) {
                outln!("  {key}: {}", shown(v).trim_matches('`'));
            }
        }
    }

    fn print_request(&self, color: bool) {
        let Some((r, creds)) = &self.request else {
            outln!(
                "{}",
                paint(
                    color,
                    "2",
                    "The request: not given (--request FILE adds what it sent)"
                )
            );
            return;
        };
        outln!(
            "{} {} {}{}",
            paint(color, "1", "The request sent"),
            r.method,
            r.host(),
            r.target.path
        );
        if creds.is_empty() {
            outln!("  - no credentials at all");
        }
        for c in creds {
            outln!("  - {}", c.describe());
        }
        if !creds.is_empty() {
            outln!("  ({})", super::input::FINGERPRINT_NOTE);
        }
    }

    fn print_findings(&self, color: bool) {
        if self.findings.is_empty() {
            outln!("{}", paint(color, "32", "No standards violation found"));
            return;
        }
        outln!("{}", paint(color, "1", "Standards"));
        for f in &self.findings {
            let tag = if f.severity == "error" {
                paint(color, "31", "violation")
            } else {
                paint(color, "33", "warning")
            };
            outln!("  {tag} [{}] {} ({})", f.id, f.message, f.rule);
        }
    }
}
