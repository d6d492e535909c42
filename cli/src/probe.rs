//! `auth-diagnostics probe URL`: sends a small, bounded set of requests to one URL and
//! reports how its answers follow `shared/spec/standards.md` (each check cites its R-number).
//!
//! The request set, in this order (all `GET`, no cookies, no body):
//!
//! | name | what is sent |
//! |---|---|
//! | `no_credentials` | nothing that authenticates |
//! | `wrong_scheme` | `Authorization: Basic cHJvYmU6cHJvYmU=` (`probe:probe`) |
//! | `malformed_authorization` | `Authorization: Bearer a b` |
//! | `bare_token` | `Authorization: eyJhbGciOiJub25lIn0.eyJzdWIiOiJwcm9iZSJ9.` (no scheme) |
//! | `valid_token` | with a token: `Authorization: Bearer <token>` |
//! | `token_in_query` | with a token and `--query-token`: `URL?access_token=<token>`, no header |
//! | `header_and_query` | with a token and `--query-token`: both at once |
//! | `metadata` | when the first 401 advertises `resource_metadata` on the probed URL's origin: that document, no credentials |
//!
//! The two query requests put the token where access logs and proxies keep it (RFC 6750
//! §5.3): they are sent only with `--query-token`, else listed as skipped; they are skipped
//! too when the server refused the token (`valid_token` not 2xx). A `resource_metadata` on
//! another origin is reported (a warning) and not fetched: RFC 9728 §3.1 derives it on the
//! resource's origin, and the probe sends nothing to hosts the user did not name.
//!
//! Rules the probe keeps: at most seven requests plus the metadata document; at most
//! `--rate` requests a second; `--timeout` seconds for each answer; at most [`BODY_CAP`]
//! bytes of each body are read; redirects are never followed (a redirect is a finding, one
//! to another origin a failure); only `http` and `https`; no credentials in the URL; the token
//! comes from `--token-env` or `--token-file`, is sent only to the URL given, and never
//! printed (every output is scrubbed of it).
//!
//! Verdicts: `pass`, `fail` (a MUST is broken, or the server fails: a 5xx, a redirect to
//! another origin), `warn` (a SHOULD that is not met, or this crate's own contract in
//! `reasons.md`, which other servers need not keep), `skip` (could not be judged: a
//! truncated body, a token the server refused, a request not sent). Exit status: 0 when no check
//! fails (and, with `--strict`, none warns); 1 when one does, or when the server cannot be
//! reached (the first request's connection fails: reported as `unreachable`, nothing more
//! is sent); 2 for a usage error (bad URL, unreadable or empty token).

mod checks;
mod mcp;
mod report;

use super::{Out, Outcome, ProbeArgs, UsageError};
use checks::{Check, Verdict};
use reqwest::Url;
use std::time::Duration;

/// The most bytes of a response body the probe reads.
pub(crate) const BODY_CAP: usize = 64 * 1024;

/// The `Basic` credentials of `wrong_scheme` (`probe:probe`): a scheme a Bearer API does not take.
const WRONG_SCHEME: &str = "Basic cHJvYmU6cHJvYmU=";
/// The malformed `Authorization` of `malformed_authorization` (RFC 9110 §11.4: two token68s).
const MALFORMED: &str = "Bearer a b";
/// An unsigned JWT-shaped value sent with no scheme in front (`bare_token`).
const BARE: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJwcm9iZSJ9.";

/// One request of the set.
struct Probe {
    /// Its name in the report (`no_credentials`, …).
    name: &'static str,
    /// Where it goes, token included when it rides in the query.
    url: Url,
    /// The `Authorization` value sent, if any.
    authorization: Option<String>,
    /// What the report shows as sent: never the token.
    shown: report::Sent,
    /// Why it is not sent, if it is not: the rule it would test, and the reason.
    skip: Option<(&'static str, &'static str)>,
}

/// Why the query requests are not sent without `--query-token`.
const NO_QUERY_TOKEN: &str = "not sent: it puts the token in the URL, where access logs and \
                              proxies keep it (RFC 6750 §5.3); --query-token sends it";
/// Why the query requests are not sent after the token was refused.
const TOKEN_REFUSED: &str = "not sent: the token was refused, and this check needs a token \
                             this resource accepts";

/// A response, its body read up to [`BODY_CAP`].
pub(crate) struct Answer {
    /// The status code.
    pub status: u16,
    /// The header fields.
    pub headers: http::HeaderMap,
    /// The body, at most [`BODY_CAP`] bytes.
    pub body: Vec<u8>,
    /// Whether the body was longer than [`BODY_CAP`].
    pub truncated: bool,
    /// The URL asked (for resolving a relative `Location`).
    pub url: Url,
}

/// Runs `probe`.
pub(crate) fn run(args: &ProbeArgs, out: &Out) -> Result<Outcome, UsageError> {
    if args.mcp.is_some() {
        return mcp::run(args, out);
    }
    if args.foreign_token_env.is_some() || args.call_tools {
        return Err(UsageError(
            "--foreign-token-env and --call-tools go with --mcp URL".into(),
        ));
    }
    let url = parse_url(args.url.as_deref().unwrap_or_default())?;
    let token = read_token(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(probe(&url, token.as_deref(), args))?;
    report::print(&report, out, token.as_deref());
    Ok(outcome(&report, args.strict))
}

/// Exit 1 when a check failed or the server could not be reached (or, with `--strict`, a
/// check warned).
fn outcome(report: &report::Report, strict: bool) -> Outcome {
    let failed = report.summary.failed > 0 || report.summary.unreachable;
    let warned = strict && report.summary.warnings > 0;
    if failed || warned {
        Outcome::Problems
    } else {
        Outcome::Fine
    }
}

/// The client every probe sends with: no redirects followed, `--timeout` for each answer.
fn client(args: &ProbeArgs) -> Result<reqwest::Client, UsageError> {
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(crate::tls::tls_config())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(args.timeout))
        .user_agent(concat!(
            "auth-diagnostics-probe/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()?)
}

/// The URL to probe: `http` or `https`, with a host, without credentials or a token in it.
fn parse_url(text: &str) -> Result<Url, UsageError> {
    let shown = crate::text::shown_url(text);
    let mut url = Url::parse(text).map_err(|e| UsageError(format!("not a URL: {shown}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UsageError(format!(
            "only http and https URLs can be probed, not {}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UsageError(format!("the URL has no host: {shown}")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UsageError(
            "the URL holds credentials (user:password@): the probe sends none but its own".into(),
        ));
    }
    if url.query_pairs().any(|(k, _)| k == "access_token") {
        return Err(UsageError(
            "the URL holds an access_token: pass the token with --token-env or --token-file".into(),
        ));
    }
    url.set_fragment(None);
    Ok(url)
}

/// The most bytes read from `--token-file`.
const TOKEN_FILE_CAP: u64 = 64 * 1024;

/// The token from `--token-env` or `--token-file`, trimmed, a leading `Bearer ` dropped.
fn read_token(args: &ProbeArgs) -> Result<Option<String>, UsageError> {
    let raw = match (&args.token_env, &args.token_file) {
        (Some(_), Some(_)) => {
            return Err(UsageError(
                "give --token-env or --token-file, not both".into(),
            ))
        }
        (Some(var), None) => std::env::var(var).map_err(|_| {
            UsageError(format!(
                "environment variable {var} is not set (or not UTF-8)"
            ))
        })?,
        (None, Some(file)) => read_token_file(file)?,
        (None, None) => return Ok(None),
    };
    clean_token(&raw).map(Some)
}

/// A token as read: trimmed, a leading `Bearer ` dropped; empty, or holding what a header
/// cannot carry, is a usage error.
fn clean_token(raw: &str) -> Result<String, UsageError> {
    let mut token = raw.trim();
    if let Some(rest) = token
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("bearer "))
        .and_then(|_| token.get(7..))
    {
        token = rest.trim_start();
    }
    if token.is_empty() {
        return Err(UsageError("the token is empty".into()));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(UsageError(
            "the token holds spaces or characters a header cannot carry".into(),
        ));
    }
    Ok(token.to_owned())
}

/// The token file, at most [`TOKEN_FILE_CAP`] bytes of UTF-8.
fn read_token_file(file: &std::path::Path) -> Result<String, UsageError> {
    use std::io::Read as _;
    let cannot = |e: &dyn std::fmt::Display| {
        UsageError(format!(
            "cannot read the token file {}: {e}",
            file.display()
        ))
    };
    if std::fs::metadata(file).map_err(|e| cannot(&e))?.is_dir() {
        return Err(cannot(&"is a directory"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(TOKEN_FILE_CAP + 1).read_to_end(&mut bytes))
        .map_err(|e| cannot(&e))?;
    if bytes.len() as u64 > TOKEN_FILE_CAP {
        return Err(cannot(&"more than 64 KiB: not a token"));
    }
    String::from_utf8(bytes).map_err(|_| cannot(&"not UTF-8 text"))
}

/// The request set for `url` (see the module documentation).
fn request_set(url: &Url, token: Option<&str>, query_token: bool) -> Vec<Probe> {
    let plain = |name, authorization: Option<&str>, shown: Option<&str>| Probe {
        name,
        url: url.clone(),
        authorization: authorization.map(str::to_owned),
        shown: report::Sent::get(url.as_str(), shown),
        skip: None,
    };
    let mut set = vec![
        plain("no_credentials", None, None),
        plain("wrong_scheme", Some(WRONG_SCHEME), Some(WRONG_SCHEME)),
        plain("malformed_authorization", Some(MALFORMED), Some(MALFORMED)),
        plain("bare_token", Some(BARE), Some(BARE)),
    ];
    let Some(token) = token else { return set };
    let header = format!("Bearer {token}");
    let mut in_query = url.clone();
    in_query
        .query_pairs_mut()
        .append_pair("access_token", token);
    let sep = if url.query().is_some() { '&' } else { '?' };
    let shown_query = format!("{url}{sep}access_token=<token>");
    set.push(plain("valid_token", Some(&header), Some("Bearer <token>")));
    let queries = [
        ("token_in_query", "R-14", None),
        ("header_and_query", "R-15", Some(header)),
    ];
    for (name, rule, authorization) in queries {
        set.push(Probe {
            name,
            url: in_query.clone(),
            shown: report::Sent::get(
                &shown_query,
                authorization.as_ref().map(|_| "Bearer <token>"),
            ),
            authorization,
            skip: (!query_token).then_some((rule, NO_QUERY_TOKEN)),
        });
    }
    set
}

/// Sends the request set (and the metadata document when advertised) and judges the answers.
async fn probe(
    url: &Url,
    token: Option<&str>,
    args: &ProbeArgs,
) -> Result<report::Report, UsageError> {
    let client = client(args)?;
    let pause = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let mut exchanges = Vec::new();
    let mut unreachable = false;
    let mut metadata_url = None;
    let mut refused = false;
    for (i, mut p) in request_set(url, token, args.query_token)
        .into_iter()
        .enumerate()
    {
        if refused && p.skip.is_none() && p.name != "valid_token" {
            p.skip = Some((
                if p.name == "token_in_query" {
                    "R-14"
                } else {
                    "R-15"
                },
                TOKEN_REFUSED,
            ));
        }
        if let Some((rule, why)) = p.skip {
            let check = Check::new("sent", Some(rule), Verdict::Skip, why);
            exchanges.push(report::Exchange::skipped(p.name, p.shown, check));
            continue;
        }
        if i > 0 {
            tokio::time::sleep(pause).await;
        }
        let result = send(&client, &p.url, p.authorization.as_deref()).await;
        if let Ok(a) = &result {
            match p.name {
                "no_credentials" => metadata_url = checks::resource_metadata(a),
                "valid_token" => refused = !(200..300).contains(&a.status),
                _ => {}
            }
        }
        let first_unreachable = i == 0 && matches!(&result, Err(e) if e.is_connect());
        exchanges.push(judge(p.name, p.shown, result, |a| checks::judge(p.name, a)));
        if first_unreachable {
            unreachable = true;
            break;
        }
    }
    if let Some(meta) = metadata_url {
        tokio::time::sleep(pause).await;
        exchanges.push(fetch_metadata(&client, url, &meta).await);
    }
    Ok(report::Report::new(url, exchanges, unreachable))
}

/// The `metadata` exchange: the document at `meta` (as advertised), judged against `url`.
async fn fetch_metadata(client: &reqwest::Client, url: &Url, meta: &str) -> report::Exchange {
    let shown = report::Sent::get(meta, None);
    let target = match Url::parse(meta) {
        Ok(t) if matches!(t.scheme(), "http" | "https") => t,
        _ => {
            let check = Check::new(
                "metadata_url",
                Some("R-54"),
                Verdict::Fail,
                format!("resource_metadata is not an absolute http(s) URL: {meta}"),
            );
            return report::Exchange::unsent("metadata", shown, vec![check]);
        }
    };
    if target.origin() != url.origin() {
        let check = Check::new(
            "metadata_origin",
            Some("R-55"),
            Verdict::Warn,
            format!(
                "resource_metadata is on another origin ({meta}): not fetched; RFC 9728 §3.1 \
                 derives it on the resource's origin ({})",
                url.origin().ascii_serialization()
            ),
        );
        return report::Exchange::skipped("metadata", shown, check);
    }
    let result = send(client, &target, None).await;
    judge("metadata", shown, result, |a| {
        checks::metadata(a, url, &target)
    })
}

/// One exchange of the report: the answer judged by `checks`, or the transport error.
fn judge(
    name: &'static str,
    shown: report::Sent,
    result: Result<Answer, reqwest::Error>,
    checks: impl FnOnce(&Answer) -> Vec<Check>,
) -> report::Exchange {
    match result {
        Ok(a) => report::Exchange::answered(name, shown, &a, checks(&a)),
        Err(e) => {
            let why = transport_error(&e);
            let check = Check::new("answered", None, Verdict::Fail, why.clone());
            report::Exchange::failed(name, shown, why, vec![check])
        }
    }
}

/// A transport error in words (no URL: it may hold the token).
fn transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "no answer within the timeout"
    } else {
        "the exchange failed"
    };
    let mut why = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        why.push_str(": ");
        why.push_str(&s.to_string());
        source = s.source();
    }
    why
}

/// Sends one `GET` (no redirects followed) and reads at most [`BODY_CAP`] bytes of the body.
async fn send(
    client: &reqwest::Client,
    url: &Url,
    authorization: Option<&str>,
) -> Result<Answer, reqwest::Error> {
    let mut request = client.get(url.clone());
    if let Some(value) = authorization {
        request = request.header(http::header::AUTHORIZATION, value);
    }
    let mut response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = response.chunk().await? {
        let room = BODY_CAP - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body,
        truncated,
        url: url.clone(),
    })
}
