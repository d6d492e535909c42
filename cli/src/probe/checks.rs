//! The checks `probe` runs on each answer, each naming the rule of
//! `shared/spec/standards.md` it tests (or `reasons.md`, this crate's own contract).

use super::Answer;
use auth_diagnostics::failure::Challenge as HeaderChallenge;
use reqwest::Url;
use serde::Serialize;

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Verdict {
    /// The answer follows the rule.
    Pass,
    /// The answer breaks the rule as the checklist tests it.
    Fail,
    /// A SHOULD beyond the checklist, or this crate's own contract: worth fixing, not fatal.
    Warn,
    /// Could not be judged (a truncated body, say).
    Skip,
}

/// One check of one answer.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    /// Stable id within its request (`challenge_present`, `status`, …).
    pub id: &'static str,
    /// `R-NN` of standards.md, `reasons.md` for this crate's contract, `null` for the probe's own.
    pub rule: Option<&'static str>,
    /// The verdict.
    pub verdict: Verdict,
    /// What was seen, in words.
    pub detail: String,
}

impl Check {
    /// A check.
    pub fn new(
        id: &'static str,
        rule: Option<&'static str>,
        verdict: Verdict,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            id,
            rule,
            verdict,
            detail: detail.into(),
        }
    }
}

/// The most characters of a server's string a detail shows.
const SHOWN: usize = 200;

/// `text` cut to [`SHOWN`] characters (an ellipsis when cut): what a detail shows of a
/// string the server chose.
pub(crate) fn capped(text: &str) -> String {
    let mut s: String = text.chars().take(SHOWN).collect();
    if text.chars().nth(SHOWN).is_some() {
        s.push('…');
    }
    s
}

/// `pass` when `ok`, else `otherwise`.
pub(crate) fn verdict(ok: bool, otherwise: Verdict) -> Verdict {
    if ok {
        Verdict::Pass
    } else {
        otherwise
    }
}

/// One challenge of a `WWW-Authenticate` line, owned.
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub(crate) fn is_bearer(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("bearer")
    }

    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The `WWW-Authenticate` lines of an answer (lossy text).
pub(crate) fn challenge_lines(a: &Answer) -> Vec<String> {
    a.headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// The challenges that parse, and the lines that do not.
pub(crate) fn challenges(a: &Answer) -> (Vec<Challenge>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for line in challenge_lines(a) {
        match HeaderChallenge::parse(&line) {
            Some(read) => good.extend(read.into_iter().map(|c| {
                let params = c.params().iter();
                let params = params.map(|(n, v)| ((*n).to_owned(), v.clone())).collect();
                Challenge {
                    scheme: c.scheme().to_owned(),
                    params,
                }
            })),
            None => bad.push(line),
        }
    }
    (good, bad)
}

/// The `resource_metadata` URL advertised by an answer's challenges, if any.
pub(crate) fn resource_metadata(a: &Answer) -> Option<String> {
    let (good, _) = challenges(a);
    good.iter()
        .find_map(|c| c.param("resource_metadata").map(str::to_owned))
}

/// The checks of the request `name` on its answer.
pub(crate) fn judge(name: &str, a: &Answer) -> Vec<Check> {
    let mut checks = match name {
        "no_credentials" => no_credentials(a),
        "wrong_scheme" => wrong_scheme(a),
        "malformed_authorization" => malformed(a),
        "bare_token" => bare_token(a),
        "valid_token" => valid_token(a),
        "token_in_query" => token_in_query(a),
        "header_and_query" => header_and_query(a),
        _ => Vec::new(),
    };
    checks.extend(redirect(a));
    checks.extend(common(a));
    checks
}

/// The status in words: `401 Unauthorized`.
pub(crate) fn status_text(status: u16) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    format!("{status} {reason}").trim_end().to_owned()
}

/// `no_credentials`: 401 whose Bearer challenge has no error. Both are
/// SHOULDs: a 403 or an `error` warns; a 2xx (not protected?) or a 5xx fails.
fn no_credentials(a: &Answer) -> Vec<Check> {
    let s = a.status;
    let (v, why) = match s {
        401 => (Verdict::Pass, String::new()),
        404 => (
            Verdict::Warn,
            ": hide mode may answer 404 (R-02), or the URL is wrong".into(),
        ),
        403 => (
            Verdict::Warn,
            ": missing credentials SHOULD get 401 with a challenge, not 403 (RFC 9110 §11.4)"
                .into(),
        ),
        200..=299 => (
            Verdict::Fail,
            ": answered without credentials: is this URL protected?".into(),
        ),
        _ => (Verdict::Fail, ": missing credentials get 401".into()),
    };
    let status = Check::new(
        "status",
        Some("R-02"),
        v,
        format!("{}{why}", status_text(s)),
    );
    vec![status, no_error(a, "R-17", Verdict::Warn)]
}

/// `wrong_scheme`: an unsupported scheme is no credential: 401, no error.
fn wrong_scheme(a: &Answer) -> Vec<Check> {
    let (v, why) = match a.status {
        401 => (Verdict::Pass, ""),
        400 | 403 | 404 => (
            Verdict::Warn,
            ": credentials in a scheme this URL does not take SHOULD get 401 (RFC 9110 §11.4)",
        ),
        _ => (
            Verdict::Fail,
            ": credentials in a scheme this URL does not take get 401",
        ),
    };
    let status = Check::new(
        "status",
        Some("R-02"),
        v,
        format!("{}{why}", status_text(a.status)),
    );
    vec![status, no_error(a, "R-17", Verdict::Warn)]
}

/// Whether an answer carries a Bearer challenge: a resource that takes Bearer tokens.
fn takes_bearer(a: &Answer) -> bool {
    challenges(a).0.iter().any(Challenge::is_bearer)
}

/// `malformed_authorization`: 400 `invalid_request` or 401 `invalid_token`. A
/// resource whose 401 names no Bearer challenge (Basic, an API key, a cookie, DPoP) takes
/// `Bearer …` for an unsupported scheme: judged as `wrong_scheme`.
fn malformed(a: &Answer) -> Vec<Check> {
    if a.status == 401 && !takes_bearer(a) {
        return wrong_scheme(a);
    }
    let want = match a.status {
        400 => Some("invalid_request"),
        401 => Some("invalid_token"),
        _ => None,
    };
    let (v, why) = match a.status {
        500..=599 => (
            Verdict::Fail,
            ": a malformed Authorization is the client's error (400), never a server fault",
        ),
        200..=299 => (Verdict::Fail, ": a malformed Authorization was accepted"),
        _ if want.is_none() => (
            Verdict::Warn,
            ": expected 400 invalid_request or 401 invalid_token (RFC 6750 §3.1, SHOULD)",
        ),
        _ => (Verdict::Pass, ""),
    };
    let status = Check::new(
        "status",
        Some("R-18"),
        v,
        format!("{}{why}", status_text(a.status)),
    );
    let mut checks = vec![status];
    checks.extend(want.map(|w| error_code(a, w, "R-18")));
    checks
}

/// `bare_token`: a token without a scheme is an unsupported method: 401, no error.
fn bare_token(a: &Answer) -> Vec<Check> {
    let (v, why) = match a.status {
        401 => (Verdict::Pass, ""),
        400 | 403 | 404 => (
            Verdict::Warn,
            ": a token without a scheme SHOULD get 401 with a challenge naming the scheme to use",
        ),
        _ => (Verdict::Fail, ": a token without a scheme gets 401"),
    };
    let status = Check::new(
        "status",
        Some("R-02"),
        v,
        format!("{}{why}", status_text(a.status)),
    );
    vec![status, no_error(a, "R-17", Verdict::Warn)]
}

/// `valid_token`: the token the user gave is accepted. A refusal (401 for an
/// expired token, 403 `insufficient_scope`) is a correct answer about that token, not a
/// standards failure: a note (`skip`) saying why. A 5xx fails.
fn valid_token(a: &Answer) -> Vec<Check> {
    let (v, detail) = match a.status {
        200..=299 => (Verdict::Pass, status_text(a.status)),
        500..=599 => (
            Verdict::Fail,
            format!("{}: a server error for a token", status_text(a.status)),
        ),
        _ => (
            Verdict::Skip,
            format!(
                "the token was refused: {}; the remaining checks need a token this resource \
                 accepts (`auth-diagnostics decode` shows its claims)",
                refusal(a)
            ),
        ),
    };
    vec![Check::new("status", Some("R-12"), v, detail)]
}

/// Why an answer refused a token: the status, the challenge's `error` and description, the
/// problem body's `reason`.
pub(crate) fn refusal(a: &Answer) -> String {
    let mut why = status_text(a.status);
    let (good, _) = challenges(a);
    if let Some(c) = good.iter().find(|c| c.param("error").is_some()) {
        why.push_str(&format!(
            ", {} error=\"{}\"",
            c.scheme,
            c.param("error").unwrap_or("")
        ));
        if let Some(d) = c.param("error_description") {
            why.push_str(&format!(" ({d})"));
        }
    }
    let body: Option<serde_json::Value> = serde_json::from_slice(&a.body).ok();
    if let Some(reason) = body.as_ref().and_then(|b| b["reason"].as_str()) {
        why.push_str(&format!(", reason {reason}"));
    }
    why
}

/// `token_in_query`: ignored or refused; accepted is a warning; never a 5xx.
fn token_in_query(a: &Answer) -> Vec<Check> {
    let (v, why) = match a.status {
        400 | 401 => (Verdict::Pass, ""),
        200..=299 | 403 => (
            Verdict::Warn,
            ": a token in the query was accepted; OAuth 2.1 and MCP say to ignore it",
        ),
        _ => (Verdict::Fail, ": expected 401 (ignored), 400 or 2xx"),
    };
    let status = Check::new(
        "status",
        Some("R-14"),
        v,
        format!("{}{why}", status_text(a.status)),
    );
    let mut checks = vec![status];
    if (200..300).contains(&a.status) {
        let cc = cache_control(a);
        let ok = cc.contains("private") || cc.contains("no-store");
        checks.push(Check::new(
            "cache_private",
            Some("R-14"),
            verdict(ok, Verdict::Warn),
            format!("Cache-Control: {}", shown(&cc)),
        ));
    }
    checks
}

/// `header_and_query`: two methods at once: 400 `invalid_request` (R-15, a SHOULD). A
/// server that ignores query tokens, as OAuth 2.1 says, accepts the header's: a warning,
/// not a failure. A 5xx fails.
fn header_and_query(a: &Answer) -> Vec<Check> {
    let (v, why) = match a.status {
        400 => (Verdict::Pass, ""),
        500..=599 => (Verdict::Fail, ": a server error for a request it should refuse with 400"),
        200..=299 => (
            Verdict::Warn,
            ": RFC 6750 §3.1 says 400 invalid_request; accepted if the query's token is ignored (OAuth 2.1)",
        ),
        _ => (Verdict::Warn, ": RFC 6750 §3.1 says 400 invalid_request for two methods at once"),
    };
    let status = Check::new(
        "status",
        Some("R-15"),
        v,
        format!("{}{why}", status_text(a.status)),
    );
    let mut checks = vec![status];
    if a.status == 400 {
        checks.push(error_code(a, "invalid_request", "R-15"));
    }
    checks
}

/// The Bearer challenges carry no `error`, `error_description` or `error_uri`.
pub(crate) fn no_error(a: &Answer, rule: &'static str, otherwise: Verdict) -> Check {
    let (good, _) = challenges(a);
    let errors: Vec<String> = good
        .iter()
        .filter(|c| c.is_bearer())
        .flat_map(|c| c.params.iter())
        .filter(|(n, _)| n.to_ascii_lowercase().starts_with("error"))
        .map(|(n, v)| format!("{n}=\"{v}\""))
        .collect();
    if !good.iter().any(Challenge::is_bearer) {
        return Check::new("no_error", Some(rule), Verdict::Skip, "no Bearer challenge");
    }
    let detail = if errors.is_empty() {
        "the Bearer challenge carries no error".to_owned()
    } else {
        format!(
            "no credential was used, yet the challenge says {}",
            errors.join(", ")
        )
    };
    Check::new(
        "no_error",
        Some(rule),
        verdict(errors.is_empty(), otherwise),
        detail,
    )
}

/// The Bearer challenge's `error` is `want` (R-18, a SHOULD: a warning when it is not).
pub(crate) fn error_code(a: &Answer, want: &str, rule: &'static str) -> Check {
    let (good, _) = challenges(a);
    let Some(bearer) = good.iter().find(|c| c.is_bearer()) else {
        let why = format!("no Bearer challenge states error=\"{want}\"");
        return Check::new("error_code", Some(rule), Verdict::Warn, why);
    };
    let got = bearer.param("error");
    let detail = match got {
        Some(e) => format!("error=\"{e}\" (expected {want})"),
        None => format!("no error parameter (expected {want})"),
    };
    Check::new(
        "error_code",
        Some(rule),
        verdict(got == Some(want), Verdict::Warn),
        detail,
    )
}

/// A redirect is reported, never followed: to another origin it fails.
pub(crate) fn redirect(a: &Answer) -> Option<Check> {
    if !(300..400).contains(&a.status) {
        return None;
    }
    let location = a
        .headers
        .get(http::header::LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let Some(location) = location else {
        return Some(Check::new(
            "redirect",
            None,
            Verdict::Fail,
            "a redirect without Location",
        ));
    };
    let target = a.url.join(&location).ok();
    let same = target
        .as_ref()
        .is_some_and(|t| t.origin() == a.url.origin());
    let detail = if same {
        format!("redirect to {location} on the same origin: not followed")
    } else {
        format!("redirect to another origin ({location}): not followed; a client that follows it with its token leaks the token")
    };
    Some(Check::new(
        "redirect",
        Some("R-22"),
        verdict(same, Verdict::Fail),
        detail,
    ))
}

/// The `Cache-Control` value, lowercased (empty when absent).
fn cache_control(a: &Answer) -> String {
    a.headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(absent)` for an empty value.
pub(crate) fn shown(value: &str) -> &str {
    if value.is_empty() {
        "(absent)"
    } else {
        value
    }
}

/// What holds for any answer: the challenge, caching, the
/// problem body.
pub(crate) fn common(a: &Answer) -> Vec<Check> {
    let lines = challenge_lines(a);
    let mut checks = Vec::new();
    if a.status == 401 {
        let detail = match lines.first() {
            Some(l) => format!("WWW-Authenticate: {l}"),
            None => "a 401 without WWW-Authenticate".into(),
        };
        checks.push(Check::new(
            "challenge_present",
            Some("R-01"),
            verdict(!lines.is_empty(), Verdict::Fail),
            detail,
        ));
    }
    if !lines.is_empty() {
        checks.extend(challenge_grammar(a, &lines));
    }
    if matches!(a.status, 400 | 401 | 403) {
        let cc = cache_control(a);
        checks.push(Check::new(
            "cache_control",
            Some("reasons.md"),
            verdict(cc.contains("no-store"), Verdict::Warn),
            format!("Cache-Control: {} (this crate sends no-store)", shown(&cc)),
        ));
    }
    checks.extend(problem_body(a));
    checks
}

/// Syntax, unique names, a Bearer param, quoted realm.
fn challenge_grammar(a: &Answer, lines: &[String]) -> Vec<Check> {
    let (good, bad) = challenges(a);
    let syntax = match bad.first() {
        None => Check::new(
            "challenge_syntax",
            Some("R-05"),
            Verdict::Pass,
            "every challenge parses",
        ),
        Some(line) => Check::new(
            "challenge_syntax",
            Some("R-05"),
            Verdict::Fail,
            format!("does not parse (RFC 9110 §11): {line}"),
        ),
    };
    let mut checks = vec![syntax];
    let twice: Vec<&str> = good.iter().filter_map(repeated_param).collect();
    checks.push(Check::new(
        "param_unique",
        Some("R-04"),
        verdict(twice.is_empty(), Verdict::Fail),
        if twice.is_empty() {
            "no parameter name repeats".to_owned()
        } else {
            format!("repeated: {}", twice.join(", "))
        },
    ));
    if good.iter().any(Challenge::is_bearer) {
        let bare = good.iter().any(|c| c.is_bearer() && c.params.is_empty());
        checks.push(Check::new(
            "bearer_has_param",
            Some("R-16"),
            verdict(!bare, Verdict::Fail),
            if bare {
                "a bare `Bearer` challenge"
            } else {
                "the Bearer challenge has parameters"
            },
        ));
    }
    let unquoted = lines.iter().any(|l| unquoted_realm(l));
    checks.push(Check::new(
        "realm_quoted",
        Some("R-07"),
        verdict(!unquoted, Verdict::Fail),
        if unquoted {
            "realm is sent as a token, not a quoted-string"
        } else {
            "realm, if any, is quoted"
        },
    ));
    checks
}

/// The first parameter name of `c` that occurs twice (case-insensitively).
fn repeated_param(c: &Challenge) -> Option<&str> {
    c.params.iter().enumerate().find_map(|(i, (n, _))| {
        c.params[..i]
            .iter()
            .any(|(m, _)| m.eq_ignore_ascii_case(n))
            .then_some(n.as_str())
    })
}

/// Whether a `realm=` outside a quoted-string is followed by something other than `"`.
fn unquoted_realm(line: &str) -> bool {
    let bytes = line.as_bytes();
    let (mut i, mut quoted) = (0, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            _ if !quoted
                && bytes.len() >= i + 5
                && bytes[i..i + 5].eq_ignore_ascii_case(b"realm") =>
            {
                let before = i.checked_sub(1).map(|j| bytes[j]);
                let rest = line[i + 5..].trim_start_matches([' ', '\t']);
                if matches!(before, None | Some(b' ' | b',' | b'\t')) && rest.starts_with('=') {
                    let value = rest[1..].trim_start_matches([' ', '\t']);
                    return !value.starts_with('"');
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// A problem body (`application/problem+json`) states the response's status.
fn problem_body(a: &Answer) -> Option<Check> {
    let ct = a
        .headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase())?;
    if !ct.trim_start().starts_with("application/problem+json") {
        return None;
    }
    if a.truncated {
        return Some(Check::new(
            "problem_status",
            Some("R-30"),
            Verdict::Skip,
            "body too long to read",
        ));
    }
    let body: Option<serde_json::Value> = serde_json::from_slice(&a.body).ok();
    let (ok, detail) = match body.as_ref().map(|b| &b["status"]) {
        None => (false, "the problem body is not JSON".to_owned()),
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(a.status)) => {
            (true, format!("status {n} matches"))
        }
        Some(serde_json::Value::Null) => (false, "the problem body has no status".to_owned()),
        Some(other) => (
            false,
            format!("the body says status {other}, the response {}", a.status),
        ),
    };
    Some(Check::new(
        "problem_status",
        Some("R-30"),
        verdict(ok, Verdict::Fail),
        detail,
    ))
}

/// The resource identifier of `url` (RFC 9728 §1.2): no query, no fragment.
pub(crate) fn resource_of(url: &Url) -> Url {
    let mut r = url.clone();
    r.set_query(None);
    r.set_fragment(None);
    r
}

/// The metadata URL RFC 9728 §3.1 derives from the resource `r`.
pub(crate) fn well_known(r: &Url) -> String {
    let path = r.path().trim_end_matches('/');
    let port = r.port().map(|p| format!(":{p}")).unwrap_or_default();
    let host = r.host_str().unwrap_or_default();
    format!(
        "{}://{host}{port}/.well-known/oauth-protected-resource{path}",
        r.scheme()
    )
}

/// A metadata document is served as `application/json`.
pub(crate) fn json_content_type(a: &Answer) -> Check {
    let ct = a
        .headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase())
        .unwrap_or_default();
    Check::new(
        "content_type",
        Some("R-55"),
        verdict(
            ct.trim_start().starts_with("application/json"),
            Verdict::Fail,
        ),
        format!("Content-Type: {}", capped(shown(&ct))),
    )
}

/// The metadata document at `target` describes `url`.
pub(crate) fn metadata(a: &Answer, url: &Url, target: &Url) -> Vec<Check> {
    let resource = resource_of(url);
    let mut checks = vec![Check::new(
        "status",
        Some("R-55"),
        verdict(a.status == 200, Verdict::Fail),
        status_text(a.status),
    )];
    checks.extend(redirect(a));
    let derived = well_known(&resource);
    checks.push(Check::new(
        "well_known",
        Some("R-55"),
        verdict(target.as_str() == derived, Verdict::Warn),
        format!("advertised {target}; RFC 9728 §3.1 derives {derived}"),
    ));
    if a.status != 200 {
        return checks;
    }
    checks.push(json_content_type(a));
    checks.extend(metadata_members(a, &resource));
    checks
}

/// `resource` is identical to the probed resource; `authorization_servers` is set.
fn metadata_members(a: &Answer, resource: &Url) -> Vec<Check> {
    let doc: Option<serde_json::Value> = serde_json::from_slice(&a.body).ok();
    let Some(doc) = doc.filter(serde_json::Value::is_object) else {
        let why = if a.truncated {
            "longer than the probe reads"
        } else {
            "not a JSON object"
        };
        return vec![Check::new(
            "json",
            Some("R-55"),
            Verdict::Fail,
            format!("the document is {why}"),
        )];
    };
    let found = doc["resource"].as_str();
    let mut names = vec![resource.as_str().to_owned()];
    if resource.path() == "/" {
        names.push(resource.as_str().trim_end_matches('/').to_owned());
    }
    let same = found.is_some_and(|f| names.iter().any(|n| n == f));
    let resource_check = Check::new(
        "resource",
        Some("R-55"),
        verdict(same, Verdict::Fail),
        match found {
            Some(f) => format!("resource {:?}, probed {:?}", capped(f), names[0]),
            None => "no resource member (REQUIRED)".to_owned(),
        },
    );
    let servers = doc["authorization_servers"]
        .as_array()
        .is_some_and(|s| !s.is_empty() && s.iter().all(serde_json::Value::is_string));
    let servers_check = Check::new(
        "authorization_servers",
        Some("R-57"),
        verdict(servers, Verdict::Fail),
        if servers {
            "names at least one authorization server"
        } else {
            "authorization_servers is missing or empty (MCP requires at least one)"
        },
    );
    vec![resource_check, servers_check]
}
