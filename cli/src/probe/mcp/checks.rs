//! The checks of `probe --mcp`: what an MCP client needs from each answer, each naming
//! its rule: `R-NN` of `shared/spec/standards.md`, or the standard itself where the
//! checklist has no item (`RFC 8414` for the authorization server's metadata, `MCP PKCE`
//! for the MCP authorization spec's PKCE requirement).

pub(crate) use super::super::checks::capped;
use super::super::checks::{
    challenges, common, error_code, json_content_type, no_error, redirect, refusal, status_text,
    verdict, Challenge, Check, Verdict,
};
use super::super::Answer;
use base64::Engine as _;
use reqwest::Url;
use serde_json::Value;

/// The first Bearer challenge of an answer (MCP clients read `resource_metadata` and
/// `scope` from it).
fn bearer(a: &Answer) -> Option<Challenge> {
    challenges(a).0.into_iter().find(Challenge::is_bearer)
}

/// The `resource_metadata` a 401 names: the Bearer challenge's, else any challenge's.
pub(crate) fn advertised_metadata(a: &Answer) -> Option<String> {
    if a.status != 401 {
        return None;
    }
    let all = challenges(a).0;
    let from = |c: &Challenge| c.param("resource_metadata").map(str::to_owned);
    all.iter()
        .filter(|c| c.is_bearer())
        .find_map(from)
        .or_else(|| all.iter().find_map(from))
}

/// `unauthenticated_initialize`: MCP clients start authorization on a 401 only (R-58's
/// status table), and read where to go from its Bearer challenge.
pub(crate) fn unauthenticated(a: &Answer) -> Vec<Check> {
    let (v, why) = match a.status {
        401 => (Verdict::Pass, ""),
        200..=299 => (
            Verdict::Fail,
            ": initialize was answered without a token: the endpoint is not protected, or \
             not by anything a client can discover",
        ),
        403 => (
            Verdict::Fail,
            ": MCP clients start authorization on 401 (\"authorization required\"); a 403 \
             without a token leaves them stuck",
        ),
        404 | 405 => (
            Verdict::Fail,
            ": is this the MCP endpoint? Streamable HTTP takes initialize in a POST",
        ),
        _ => (Verdict::Fail, ": a request without a token gets 401"),
    };
    let mut checks = vec![Check::new(
        "status",
        Some("R-57"),
        v,
        format!("{}{why}", status_text(a.status)),
    )];
    if a.status == 401 {
        let b = bearer(a);
        checks.push(Check::new(
            "bearer_challenge",
            Some("R-57"),
            verdict(b.is_some(), Verdict::Fail),
            if b.is_some() {
                "a Bearer challenge"
            } else {
                "no Bearer challenge: MCP clients read resource_metadata and scope from the \
                 challenge that starts with Bearer"
            },
        ));
        if let Some(b) = &b {
            let scope = b.param("scope").filter(|s| !s.trim().is_empty());
            checks.push(Check::new(
                "scope",
                Some("R-58"),
                verdict(scope.is_some(), Verdict::Warn),
                match scope {
                    Some(s) => format!("scope=\"{}\": what a client asks for", capped(s)),
                    None => "no scope: a client must guess which scopes to ask for (MCP \
                             2025-11-25: servers SHOULD include it)"
                        .to_owned(),
                },
            ));
            checks.push(no_error(a, "R-17", Verdict::Warn));
        }
    }
    checks.extend(redirect(a));
    checks.extend(common(a));
    checks
}

/// The verdict on `resource_metadata` (R-57: the 401 names it, or the well-known URI serves
/// the document; MCP 2025-06-18 clients need the former). `advertised_ok`: the named URL
/// served a document; `found_at`: the first URL that served one.
pub(crate) fn resource_metadata_found(
    first: Option<&Answer>,
    advertised: Option<&str>,
    advertised_ok: bool,
    found_at: Option<String>,
) -> Check {
    let check = |v, detail: String| Check::new("resource_metadata", Some("R-57"), v, detail);
    if first.is_none_or(|a| a.status != 401) {
        return check(
            Verdict::Skip,
            "no 401 to read resource_metadata from".into(),
        );
    }
    match (advertised, found_at) {
        (Some(url), _) if advertised_ok => check(
            Verdict::Pass,
            format!("resource_metadata=\"{}\" serves the document", capped(url)),
        ),
        (Some(url), _) => check(
            Verdict::Fail,
            format!(
                "resource_metadata=\"{}\" does not serve a metadata document (see `metadata`): \
                 a client that follows it stops there",
                capped(url)
            ),
        ),
        (None, Some(at)) => check(
            Verdict::Warn,
            format!(
                "the 401 names no resource_metadata: MCP 2025-06-18 clients need it; \
                 2025-11-25 clients find the document at {at}"
            ),
        ),
        (None, None) => check(
            Verdict::Fail,
            "the 401 names no resource_metadata and no well-known URI serves a metadata \
             document: a client cannot find the authorization server"
                .into(),
        ),
    }
}

/// The JSON object of a 200 answer, if it is one (and was read whole).
pub(crate) fn document(a: &Answer) -> Option<Value> {
    if a.status != 200 || a.truncated {
        return None;
    }
    serde_json::from_slice::<Value>(&a.body)
        .ok()
        .filter(Value::is_object)
}

/// `metadata_path_inserted` or `metadata_root`: a document there (RFC 9728 §3.1) must
/// describe the resource and name an authorization server. Not served is a
/// failure for the path-inserted URI when no other URI serves one either (a warning when
/// another does: RFC 9728 §3.1 still says it MUST be there); the root is only a fallback.
pub(crate) fn well_known_document(
    a: &Answer,
    resource: &Url,
    name: &str,
    found_elsewhere: bool,
) -> Vec<Check> {
    let root = name == "metadata_root";
    if a.status != 200 {
        let (v, why) = if root {
            (
                Verdict::Skip,
                "not served here (the root is a fallback MCP clients try last)",
            )
        } else if found_elsewhere {
            (
                Verdict::Warn,
                "not served at the path-inserted URI RFC 9728 §3.1 requires (a client that \
                 finds the document another way is not stopped)",
            )
        } else {
            (
                Verdict::Fail,
                "not served, and no other URI serves a metadata document",
            )
        };
        let mut checks = vec![Check::new(
            "status",
            Some("R-55"),
            v,
            format!("{}: {why}", status_text(a.status)),
        )];
        checks.extend(redirect(a));
        return checks;
    }
    let mut checks = vec![Check::new(
        "status",
        Some("R-55"),
        Verdict::Pass,
        status_text(a.status),
    )];
    checks.push(json_content_type(a));
    let Some(doc) = document(a) else {
        let why = if a.truncated {
            "longer than the probe reads"
        } else {
            "not a JSON object"
        };
        checks.push(Check::new(
            "json",
            Some("R-55"),
            Verdict::Fail,
            format!("the document is {why}"),
        ));
        return checks;
    };
    // RFC 9728 §3.3: the identifier the well-known string was inserted into; at the root
    // that is the origin, which clients that match by prefix take for this resource too.
    let mut names = vec![resource.as_str().to_owned()];
    if root || resource.path() == "/" {
        let origin = resource.origin().ascii_serialization();
        names.push(format!("{origin}/"));
        names.push(origin);
    }
    let found = doc["resource"].as_str();
    let same = found.is_some_and(|f| names.iter().any(|n| n == f));
    checks.push(Check::new(
        "resource",
        Some("R-55"),
        verdict(same, Verdict::Fail),
        match found {
            Some(f) => format!("resource {:?}, probed {:?}", capped(f), names[0]),
            None => "no resource member (REQUIRED)".to_owned(),
        },
    ));
    checks.push(servers_check(&doc));
    checks
}

/// `authorization_servers` names at least one.
fn servers_check(doc: &Value) -> Check {
    let servers = doc["authorization_servers"]
        .as_array()
        .is_some_and(|s| !s.is_empty() && s.iter().all(Value::is_string));
    Check::new(
        "authorization_servers",
        Some("R-57"),
        verdict(servers, Verdict::Fail),
        if servers {
            "names at least one authorization server"
        } else {
            "authorization_servers is missing or empty (MCP requires at least one)"
        },
    )
}

/// An authorization server metadata URI that did not serve a document: MCP clients try the
/// next one (a note, not a verdict).
pub(crate) fn not_here(a: &Answer) -> Check {
    let why = if a.status == 200 {
        "not a JSON object"
    } else {
        "not here"
    };
    Check::new(
        "status",
        Some("RFC 8414"),
        Verdict::Skip,
        format!(
            "{}: {why}; MCP clients try the next URI",
            status_text(a.status)
        ),
    )
}

/// The authorization server's metadata (RFC 8414 §3 / OpenID Connect Discovery): its
/// `issuer` is the one named (RFC 8414 §3.3), it has the endpoints of the authorization
/// code flow (§2), and it lists PKCE `S256` (MCP: without `code_challenge_methods_supported`
/// a client MUST refuse to proceed).
pub(crate) fn authorization_server(a: &Answer, issuer: &str) -> Vec<Check> {
    let Some(doc) = document(a) else {
        return vec![not_here(a)];
    };
    let mut checks = vec![Check::new(
        "status",
        Some("RFC 8414"),
        Verdict::Pass,
        status_text(a.status),
    )];
    let named = doc["issuer"].as_str();
    // A trailing `/` apart is a warning: strict clients (oauth4webapi) refuse it, others
    // compare URLs.
    let slash = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    let v = match named {
        Some(n) if n == issuer => Verdict::Pass,
        Some(n) if slash(n, issuer) => Verdict::Warn,
        _ => Verdict::Fail,
    };
    checks.push(Check::new(
        "issuer",
        Some("RFC 8414"),
        v,
        match named {
            Some(n) => format!(
                "issuer {:?}, named {:?} (RFC 8414 §3.3: identical)",
                capped(n),
                capped(issuer)
            ),
            None => "no issuer member (REQUIRED)".to_owned(),
        },
    ));
    let missing: Vec<&str> = ["authorization_endpoint", "token_endpoint"]
        .into_iter()
        .filter(|m| !doc[*m].is_string())
        .collect();
    checks.push(Check::new(
        "endpoints",
        Some("RFC 8414"),
        verdict(missing.is_empty(), Verdict::Fail),
        if missing.is_empty() {
            "authorization_endpoint and token_endpoint".to_owned()
        } else {
            format!(
                "no {}: a client cannot run the authorization-code flow",
                missing.join(", no ")
            )
        },
    ));
    let methods = &doc["code_challenge_methods_supported"];
    let s256 = methods
        .as_array()
        .is_some_and(|m| m.iter().any(|v| v == "S256"));
    checks.push(Check::new(
        "pkce_s256",
        Some("MCP PKCE"),
        verdict(s256, Verdict::Fail),
        if s256 {
            "code_challenge_methods_supported lists S256".to_owned()
        } else if methods.is_null() {
            "no code_challenge_methods_supported: MCP clients MUST refuse to proceed (they \
             cannot tell that PKCE S256 is supported)"
                .to_owned()
        } else {
            format!(
                "code_challenge_methods_supported is {} without S256: MCP clients MUST use \
                 S256",
                capped(&methods.to_string())
            )
        },
    ));
    checks
}

/// The scopes a JWT grants (`scope`, or `scp`), read without verifying it: `None` for a
/// token that is no JWT (opaque) or names none.
pub(crate) fn token_scopes(token: &str) -> Option<Vec<String>> {
    let payload = token.split('.').nth(1).filter(|p| p.len() <= 16 * 1024)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    match (&claims["scope"], &claims["scp"]) {
        (Value::String(s), _) | (_, Value::String(s)) => Some(words(s)),
        (_, Value::Array(list)) => Some(
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

/// An answer to a message sent with the token. Accepted passes. A 401 or 403 is a
/// correct answer about the token, noted, not failed; a 403 must say what a client needs to
/// step up. A 5xx fails.
pub(crate) fn authenticated(a: &Answer, scopes: Option<&[String]>) -> Vec<Check> {
    let (v, rule, detail) = match a.status {
        200..=299 => (Verdict::Pass, "R-12", status_text(a.status)),
        500..=599 => (
            Verdict::Fail,
            "R-12",
            format!("{}: a server error for a token", status_text(a.status)),
        ),
        401 | 403 => (
            Verdict::Skip,
            if a.status == 401 { "R-12" } else { "R-58" },
            format!("the token was refused: {}", capped(&refusal(a))),
        ),
        _ => (
            Verdict::Skip,
            "R-12",
            format!("{}: not an answer about the token", status_text(a.status)),
        ),
    };
    let mut checks = vec![Check::new("status", Some(rule), v, detail)];
    if a.status == 403 {
        checks.extend(forbidden(a, scopes));
    }
    checks.extend(redirect(a));
    checks.extend(common(a));
    checks
}

/// A 403: a Bearer challenge with `error="insufficient_scope"`, a `scope` that names what
/// the request needs (more than the token has) and `resource_metadata` (R-58, SHOULDs:
/// without them an MCP client cannot step up, so it stops).
fn forbidden(a: &Answer, scopes: Option<&[String]>) -> Vec<Check> {
    let b = bearer(a);
    let error = b.as_ref().and_then(|b| b.param("error"));
    let mut checks = vec![Check::new(
        "insufficient_scope",
        Some("R-58"),
        verdict(error == Some("insufficient_scope"), Verdict::Warn),
        match (&b, error) {
            (None, _) => "a 403 without a Bearer challenge: a client cannot tell a missing \
                          scope from a refusal, so it never asks for more"
                .to_owned(),
            (Some(_), Some(e)) => format!("error=\"{}\" (expected insufficient_scope)", capped(e)),
            (Some(_), None) => {
                "no error parameter (expected insufficient_scope): a client will not step up"
                    .to_owned()
            }
        },
    )];
    let scope = b
        .as_ref()
        .and_then(|b| b.param("scope"))
        .filter(|s| !s.trim().is_empty());
    let Some(scope) = scope else {
        checks.push(Check::new(
            "scope",
            Some("R-58"),
            Verdict::Warn,
            "the 403 names no scope: a client cannot know which scopes to ask for",
        ));
        return checks;
    };
    checks.push(Check::new(
        "scope",
        Some("R-58"),
        Verdict::Pass,
        format!("scope=\"{}\"", capped(scope)),
    ));
    if let Some(has) = scopes {
        let lacking: Vec<&str> = scope
            .split_whitespace()
            .filter(|s| !has.iter().any(|h| h == s))
            .collect();
        checks.push(Check::new(
            "scope_needed",
            Some("R-58"),
            verdict(!lacking.is_empty(), Verdict::Warn),
            if lacking.is_empty() {
                "names only scopes the token already has: a client that asks for them again \
                 gets a token refused the same way"
                    .to_owned()
            } else {
                format!("names {} the token lacks", capped(&lacking.join(" ")))
            },
        ));
    }
    let meta = b.as_ref().and_then(|b| b.param("resource_metadata"));
    checks.push(Check::new(
        "resource_metadata",
        Some("R-58"),
        verdict(meta.is_some(), Verdict::Warn),
        match meta {
            Some(m) => format!("resource_metadata=\"{}\"", capped(m)),
            None => "no resource_metadata in the 403's challenge".to_owned(),
        },
    ));
    checks
}

/// `foreign_token`: a token minted for another audience gets 401 (R-58: MCP servers MUST
/// NOT accept tokens not issued for them; ), with `invalid_token` (R-18, a SHOULD).
pub(crate) fn foreign(a: &Answer) -> Vec<Check> {
    let (v, rule, why) = match a.status {
        401 => (Verdict::Pass, "R-58", ": refused"),
        200..=299 => (
            Verdict::Fail,
            "R-58",
            ": a token minted for another audience was accepted (MCP servers MUST NOT accept \
             tokens issued for other resources; audience check, R-40)",
        ),
        403 => (
            Verdict::Fail,
            "R-44",
            ": a 403 takes a token for another audience as valid; an invalid token MUST get 401",
        ),
        400 => (
            Verdict::Warn,
            "R-58",
            ": expected 401 invalid_token for a token of another audience",
        ),
        _ => (
            Verdict::Fail,
            "R-58",
            ": a token for another audience gets 401",
        ),
    };
    let mut checks = vec![Check::new(
        "status",
        Some(rule),
        v,
        format!("{}{why}", status_text(a.status)),
    )];
    if a.status == 401 {
        checks.push(error_code(a, "invalid_token", "R-18"));
    }
    checks.extend(redirect(a));
    checks.extend(common(a));
    checks
}

/// The tool names of a `tools/list` response (each capped; names that are not strings skipped).
pub(crate) fn tool_names(reply: &Value) -> Vec<String> {
    reply["result"]["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str())
                .filter(|n| n.len() <= 256)
                .take(super::MAX_TOOLS)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `m` is the JSON-RPC response to the request `id`.
fn answers(m: &Value, id: &Value) -> bool {
    m.get("id") == Some(id) && (m.get("result").is_some() || m.get("error").is_some())
}

/// The response to `id` in a JSON body (one message or a batch).
pub(crate) fn json_reply(body: &[u8], id: &Value) -> Option<Value> {
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Array(batch) => batch.into_iter().find(|m| answers(m, id)),
        m => answers(&m, id).then_some(m),
    }
}

/// The response to `id` among the complete events of an event stream read so far.
pub(crate) fn event_reply(body: &[u8], id: &Value) -> Option<Value> {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    let mut events: Vec<&str> = text.split("\n\n").collect();
    // The last piece is an event still arriving (or empty).
    events.pop();
    events.into_iter().find_map(|event| {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        let m: Value = serde_json::from_str(&data.join("\n")).ok()?;
        answers(&m, id).then_some(m)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_reply_in_an_event_stream_is_found_once_its_event_is_complete() {
        let id = json!(3);
        let reply = json!({ "jsonrpc": "2.0", "id": 3, "result": {} });
        let other = json!({ "jsonrpc": "2.0", "method": "notifications/message" });
        let stream = format!("event: message\ndata: {other}\n\nid: 1\ndata: {reply}\n\n");
        assert_eq!(event_reply(stream.as_bytes(), &id), Some(reply.clone()));
        assert_eq!(
            event_reply(&stream.as_bytes()[..stream.len() - 1], &id),
            None
        );
        let crlf = stream.replace('\n', "\r\n");
        assert_eq!(event_reply(crlf.as_bytes(), &id), Some(reply));
    }

    #[test]
    fn scopes_are_read_from_scope_or_scp_and_opaque_tokens_have_none() {
        let jwt = |claims: Value| {
            let b64 =
                |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            format!("{}.{}.sig", b64(&json!({ "alg": "HS256" })), b64(&claims))
        };
        assert_eq!(
            token_scopes(&jwt(json!({ "scope": "a  b" }))),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            token_scopes(&jwt(json!({ "scp": ["a"] }))),
            Some(vec!["a".into()])
        );
        assert_eq!(token_scopes(&jwt(json!({ "sub": "x" }))), None);
        assert_eq!(token_scopes("opaque-token"), None);
    }

    #[test]
    fn long_server_text_is_capped() {
        let long = "x".repeat(1000);
        assert_eq!(capped(&long).chars().count(), 201);
        assert_eq!(capped("short"), "short");
    }
}
