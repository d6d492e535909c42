//! `auth-diagnostics probe --mcp URL`: plays an MCP client against an MCP server (the
//! Streamable HTTP transport: JSON-RPC in POSTs) and reports what a client will trip over
//! on the way to a token, each check citing its rule.
//!
//! What is sent, in this order:
//!
//! | name | what is sent |
//! |---|---|
//! | `unauthenticated_initialize` | `initialize`, no token: it must get 401 with a Bearer challenge naming `resource_metadata` |
//! | `metadata` | `GET` of the document `resource_metadata` names (wherever it is: an MCP client fetches it) |
//! | `metadata_path_inserted` | `GET /.well-known/oauth-protected-resource/<path>`, unless that was `metadata` |
//! | `metadata_root` | `GET /.well-known/oauth-protected-resource`, unless that was one of the above |
//! | `authorization_server` | `GET` of the first authorization server's metadata at the URIs MCP clients try (RFC 8414 path-inserted, OpenID path-inserted, OpenID path-appended), until one answers |
//! | `initialize` | with a token: `initialize`, `Authorization: Bearer <token>` |
//! | `initialized` | with a token the server took: `notifications/initialized` |
//! | `tools_list` | with a token the server took: `tools/list` |
//! | `tools_call` | with `--call-tools`: `tools/call` of each listed tool (at most [`MAX_TOOLS`]), empty arguments |
//! | `foreign_token` | with `--foreign-token-env`: `initialize` with a token minted for another audience |
//!
//! Requests after `initialize` carry its `Mcp-Session-Id` and `MCP-Protocol-Version`; every
//! POST carries `Mcp-Method` (and `Mcp-Name` for a tool), as the MCP revision of 2026-07-28
//! asks (older servers ignore them). `tools/call` is opt-in: a tool may act (send, delete,
//! pay), and the probe cannot tell which do.
//!
//! Bounds: at most 27 requests; `--rate` a second; `--timeout` for each answer; at most
//! [`BODY_CAP`] bytes of each body, and an event stream is read only until the JSON-RPC
//! answer arrives; every string taken from an answer is capped before it is shown. The
//! token goes only to the MCP URL; the metadata requests carry no credentials and follow no
//! redirect. No token is ever printed.

mod checks;

use super::checks::{Check, Verdict};
use super::report::{self, Exchange, Sent};
use super::{Answer, Out, Outcome, ProbeArgs, UsageError, BODY_CAP};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::HeaderValue;
use reqwest::Url;
use serde_json::{json, Value};
use std::time::Duration;

/// The protocol revision the probe asks for in `initialize`.
const PROTOCOL_VERSION: &str = "2025-06-18";
/// The most tools `--call-tools` calls.
pub(crate) const MAX_TOOLS: usize = 16;
/// The longest tool name, authorization server URL or protocol version taken from an answer.
const MAX_TEXT: usize = 2048;
/// What a Streamable HTTP client accepts.
const ACCEPT_BOTH: &str = "application/json, text/event-stream";
/// Why `tools_call` is not sent without `--call-tools`.
const NO_CALL_TOOLS: &str = "not sent: a tool may act (send, delete, pay) and the probe cannot \
                             tell which do; --call-tools calls each listed tool with empty \
                             arguments (use it against a test server)";
/// Why `foreign_token` is not sent without `--foreign-token-env`.
const NO_FOREIGN: &str = "not sent: --foreign-token-env VAR hands the probe a token minted for \
                          another audience, which this server must refuse with 401 (R-58)";
/// Why the calls after `initialize` are not sent when it was refused.
const REFUSED: &str = "not sent: the token was refused at initialize, and this check needs a \
                       token this server accepts";

/// Runs `probe --mcp URL`.
pub(crate) fn run(args: &ProbeArgs, out: &Out) -> Result<Outcome, UsageError> {
    let url = super::parse_url(args.mcp.as_deref().unwrap_or_default())?;
    let token = super::read_token(args)?;
    let foreign = match &args.foreign_token_env {
        Some(var) => Some(super::clean_token(&std::env::var(var).map_err(|_| {
            UsageError(format!(
                "environment variable {var} is not set (or not UTF-8)"
            ))
        })?)?),
        None => None,
    };
    if token.is_some() && token == foreign {
        return Err(UsageError(
            "--foreign-token-env holds the same token as --token-env: give a token minted \
             for another audience"
                .into(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut prober = Prober {
        client: super::client(args)?,
        pause: Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1))),
        sent: 0,
        url,
        exchanges: Vec::new(),
    };
    let unreachable =
        runtime.block_on(prober.probe(token.as_deref(), foreign.as_deref(), args.call_tools));
    let mut report = report::Report::new(&prober.url, prober.exchanges, unreachable);
    report.mcp = true;
    report::print_scrubbed(
        &report,
        out,
        &[
            (token.as_deref(), "<token>"),
            (foreign.as_deref(), "<foreign token>"),
        ],
    );
    Ok(super::outcome(&report, args.strict))
}

/// The session `initialize` opened: what later requests carry.
#[derive(Default)]
struct Session {
    /// `Mcp-Session-Id`, as the server sent it.
    id: Option<HeaderValue>,
    /// The protocol revision the server chose.
    version: Option<HeaderValue>,
}

/// What came of asking for a protected resource metadata document.
enum Fetched {
    /// `resource_metadata` named no http(s) URL: not fetched.
    NotAUrl,
    /// No answer: why.
    NoAnswer(String),
    /// The answer from this URL (boxed: an answer is large beside the other variants).
    Answered(Url, Box<Answer>),
}

/// An answer to a JSON-RPC POST, and the JSON-RPC response found in it.
struct Rpc {
    answer: Answer,
    reply: Option<Value>,
}

/// The state of one `probe --mcp` run.
struct Prober {
    client: reqwest::Client,
    /// The wait between two requests (`--rate`).
    pause: Duration,
    /// Requests sent so far.
    sent: usize,
    /// The MCP endpoint.
    url: Url,
    /// The exchanges, in the order sent.
    exchanges: Vec<Exchange>,
}

impl Prober {
    /// Sends everything and judges the answers; whether the server could not be reached.
    async fn probe(
        &mut self,
        token: Option<&str>,
        foreign: Option<&str>,
        call_tools: bool,
    ) -> bool {
        let sent = Sent::post(self.url.as_str(), None, "initialize".into());
        let first = match self.post(None, &Session::default(), &initialize(1)).await {
            Ok(rpc) => {
                let checks = checks::unauthenticated(&rpc.answer);
                self.exchanges.push(Exchange::answered(
                    "unauthenticated_initialize",
                    sent,
                    &rpc.answer,
                    checks,
                ));
                Some(rpc.answer)
            }
            Err(e) => {
                let unreachable = e.is_connect();
                self.exchanges
                    .push(failed("unauthenticated_initialize", sent, &e));
                if unreachable {
                    return true;
                }
                None
            }
        };
        let doc = self.discover(first.as_ref()).await;
        match doc.as_ref().and_then(first_server) {
            Some(Ok((issuer, named))) => self.authorization_server(&issuer, &named).await,
            Some(Err((shown, check))) => self.exchanges.push(Exchange::unsent(
                "authorization_server",
                Sent::get(&shown, None),
                vec![check],
            )),
            None => {
                let why = if doc.is_some() {
                    "not sent: the metadata document names no authorization server"
                } else {
                    "not sent: no metadata document was found to name an authorization server"
                };
                let check = Check::new("sent", Some("R-57"), Verdict::Skip, why);
                self.exchanges.push(Exchange::skipped(
                    "authorization_server",
                    Sent::get("(no authorization server)", None),
                    check,
                ));
            }
        }
        if let Some(token) = token {
            self.with_token(token, call_tools).await;
        }
        let sent = Sent::post(
            self.url.as_str(),
            Some("Bearer <foreign token>"),
            "initialize".into(),
        );
        match foreign {
            None => {
                let check = Check::new("sent", Some("R-58"), Verdict::Skip, NO_FOREIGN);
                self.exchanges
                    .push(Exchange::skipped("foreign_token", sent, check));
            }
            Some(foreign) => {
                let result = self
                    .post(Some(foreign), &Session::default(), &initialize(99))
                    .await;
                self.exchanges.push(match result {
                    Ok(rpc) => Exchange::answered(
                        "foreign_token",
                        sent,
                        &rpc.answer,
                        checks::foreign(&rpc.answer),
                    ),
                    Err(e) => failed("foreign_token", sent, &e),
                });
            }
        }
        false
    }

    /// The metadata documents: the one the 401 names, then the well-known URIs an MCP client
    /// tries (RFC 9728 §3.1 path-inserted, then the root), each once. Adds the verdict on
    /// `resource_metadata` to the first exchange, and returns the first document found.
    async fn discover(&mut self, first: Option<&Answer>) -> Option<Value> {
        let resource = super::checks::resource_of(&self.url);
        let advertised = first.and_then(checks::advertised_metadata);
        let path_url = super::checks::well_known(&resource);
        let root_url = format!(
            "{}/.well-known/oauth-protected-resource",
            resource.origin().ascii_serialization()
        );
        // (name, URL as named, what came of it)
        let mut fetched: Vec<(&'static str, String, Fetched)> = Vec::new();
        if let Some(meta) = &advertised {
            let result = match Url::parse(meta) {
                Ok(t) if matches!(t.scheme(), "http" | "https") => self.fetch(t).await,
                _ => Fetched::NotAUrl,
            };
            fetched.push(("metadata", meta.clone(), result));
        }
        for (name, url) in [
            ("metadata_path_inserted", path_url),
            ("metadata_root", root_url),
        ] {
            let seen = fetched.iter().any(|(_, u, _)| *u == url);
            if seen {
                continue;
            }
            let target = Url::parse(&url).expect("a URL built from a URL");
            let result = self.fetch(target).await;
            fetched.push((name, url, result));
        }
        let docs: Vec<Option<Value>> = fetched
            .iter()
            .map(|(_, _, f)| match f {
                Fetched::Answered(_, a) => checks::document(a),
                _ => None,
            })
            .collect();
        let found = |skip: usize| {
            docs.iter()
                .enumerate()
                .any(|(i, d)| i != skip && d.is_some())
        };
        let found_at = fetched
            .iter()
            .zip(&docs)
            .find(|(_, d)| d.is_some())
            .map(|((_, url, _), _)| checks::capped(url));
        for (i, (name, shown, result)) in fetched.into_iter().enumerate() {
            let sent = Sent::get(&checks::capped(&shown), None);
            let exchange = match result {
                Fetched::NotAUrl => {
                    let check = Check::new(
                        "metadata_url",
                        Some("R-54"),
                        Verdict::Fail,
                        format!(
                            "resource_metadata is not an absolute http(s) URL: {}",
                            checks::capped(&shown)
                        ),
                    );
                    Exchange::unsent(name, sent, vec![check])
                }
                Fetched::NoAnswer(why) => {
                    let verdict = match name {
                        "metadata_root" => Verdict::Skip,
                        "metadata_path_inserted" if found(i) => Verdict::Warn,
                        _ => Verdict::Fail,
                    };
                    let check = Check::new("answered", Some("R-55"), verdict, why.clone());
                    Exchange::failed(name, sent, why, vec![check])
                }
                Fetched::Answered(target, a) => {
                    let checks = if name == "metadata" {
                        super::checks::metadata(&a, &self.url, &target)
                    } else {
                        checks::well_known_document(&a, &resource, name, found(i))
                    };
                    Exchange::answered(name, sent, &a, checks)
                }
            };
            self.exchanges.push(exchange);
        }
        let check = checks::resource_metadata_found(
            first,
            advertised.as_deref(),
            advertised.is_some() && docs.first().is_some_and(Option::is_some),
            found_at,
        );
        if let Some(e) = self
            .exchanges
            .iter_mut()
            .find(|e| e.name == "unauthenticated_initialize")
        {
            // After the status and the Bearer challenge it is read from.
            let at = e
                .checks
                .iter()
                .position(|c| c.id == "bearer_challenge")
                .map_or(1, |i| i + 1);
            e.checks.insert(at.min(e.checks.len()), check);
        }
        docs.into_iter().flatten().next()
    }

    /// The first authorization server's metadata, at the URIs MCP clients try, in order;
    /// `named` is the issuer as `authorization_servers` spells it.
    async fn authorization_server(&mut self, issuer: &Url, named: &str) {
        let candidates = as_metadata_urls(issuer);
        let count = candidates.len();
        for (i, target) in candidates.into_iter().enumerate() {
            let sent = Sent::get(target.as_str(), None);
            let last = i + 1 == count;
            let mut exchange = match self.get(&target).await {
                Ok(a) if checks::document(&a).is_some() && a.status == 200 => {
                    let checks = checks::authorization_server(&a, named);
                    self.exchanges.push(Exchange::answered(
                        "authorization_server",
                        sent,
                        &a,
                        checks,
                    ));
                    return;
                }
                Ok(a) => {
                    let check = checks::not_here(&a);
                    Exchange::answered("authorization_server", sent, &a, vec![check])
                }
                Err(e) => {
                    let why = super::transport_error(&e);
                    let check =
                        Check::new("answered", Some("RFC 8414"), Verdict::Skip, why.clone());
                    Exchange::failed("authorization_server", sent, why, vec![check])
                }
            };
            if last {
                exchange.checks.push(Check::new(
                    "found",
                    Some("RFC 8414"),
                    Verdict::Fail,
                    format!(
                        "no authorization server metadata for {} at any of the {count} URIs MCP \
                         clients try: a client cannot find where to authorize",
                        checks::capped(issuer.as_str())
                    ),
                ));
            }
            self.exchanges.push(exchange);
        }
    }

    /// `initialize`, `notifications/initialized`, `tools/list` and (opt-in) `tools/call`
    /// with the token.
    async fn with_token(&mut self, token: &str, call_tools: bool) {
        let scopes = checks::token_scopes(token);
        let scopes = scopes.as_deref();
        let shown = Some("Bearer <token>");
        let url = self.url.to_string();
        let mut session = Session::default();
        let sent = Sent::post(&url, shown, "initialize".into());
        let accepted = match self.post(Some(token), &session, &initialize(2)).await {
            Ok(rpc) => {
                let checks = checks::authenticated(&rpc.answer, scopes);
                self.exchanges
                    .push(Exchange::answered("initialize", sent, &rpc.answer, checks));
                session.id = rpc
                    .answer
                    .headers
                    .get("mcp-session-id")
                    .filter(|v| v.len() <= MAX_TEXT)
                    .cloned();
                session.version = rpc
                    .reply
                    .as_ref()
                    .and_then(|r| r["result"]["protocolVersion"].as_str())
                    .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
                    .and_then(|v| HeaderValue::from_str(v).ok());
                (200..300).contains(&rpc.answer.status)
            }
            Err(e) => {
                self.exchanges.push(failed("initialize", sent, &e));
                false
            }
        };
        if !accepted {
            let sent = Sent::post(&url, shown, "tools/list".into());
            let check = Check::new("sent", Some("R-12"), Verdict::Skip, REFUSED);
            self.exchanges
                .push(Exchange::skipped("tools_list", sent, check));
            return;
        }
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        self.call(token, &session, "initialized", &note, scopes)
            .await;
        let list = json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {} });
        let reply = self
            .call(token, &session, "tools_list", &list, scopes)
            .await;
        let tools = reply.as_ref().map(checks::tool_names).unwrap_or_default();
        if !call_tools {
            let sent = Sent::post(&url, shown, "tools/call".into());
            let check = Check::new("sent", Some("R-58"), Verdict::Skip, NO_CALL_TOOLS);
            self.exchanges
                .push(Exchange::skipped("tools_call", sent, check));
            return;
        }
        for (i, name) in tools.iter().take(MAX_TOOLS).enumerate() {
            let call = json!({
                "jsonrpc": "2.0", "id": 4 + i, "method": "tools/call",
                "params": { "name": name, "arguments": {} },
            });
            self.call(token, &session, "tools_call", &call, scopes)
                .await;
        }
    }

    /// One authenticated JSON-RPC message, judged and recorded: its response, if any.
    async fn call(
        &mut self,
        token: &str,
        session: &Session,
        name: &'static str,
        message: &Value,
        scopes: Option<&[String]>,
    ) -> Option<Value> {
        let sent = Sent::post(
            self.url.as_str(),
            Some("Bearer <token>"),
            rpc_label(message),
        );
        match self.post(Some(token), session, message).await {
            Ok(rpc) => {
                let checks = checks::authenticated(&rpc.answer, scopes);
                self.exchanges
                    .push(Exchange::answered(name, sent, &rpc.answer, checks));
                rpc.reply
            }
            Err(e) => {
                self.exchanges.push(failed(name, sent, &e));
                None
            }
        }
    }

    /// Waits as `--rate` asks before every request but the first.
    async fn pace(&mut self) {
        if self.sent > 0 {
            tokio::time::sleep(self.pause).await;
        }
        self.sent += 1;
    }

    /// A `GET` of a metadata document, without credentials.
    async fn fetch(&mut self, url: Url) -> Fetched {
        match self.get(&url).await {
            Ok(a) => Fetched::Answered(url, Box::new(a)),
            Err(e) => Fetched::NoAnswer(super::transport_error(&e)),
        }
    }

    /// A `GET` without credentials.
    async fn get(&mut self, url: &Url) -> Result<Answer, reqwest::Error> {
        self.pace().await;
        super::send(&self.client, url, None).await
    }

    /// A JSON-RPC POST to the MCP URL, as a Streamable HTTP client sends it. The body is
    /// read up to [`BODY_CAP`]; an event stream only until the response to `message` arrives
    /// (a server may keep it open).
    async fn post(
        &mut self,
        token: Option<&str>,
        session: &Session,
        message: &Value,
    ) -> Result<Rpc, reqwest::Error> {
        self.pace().await;
        let method = message["method"].as_str().unwrap_or_default();
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, ACCEPT_BOTH)
            .header("mcp-method", method);
        let name = message["params"]["name"]
            .as_str()
            .filter(|n| method == "tools/call" && n.bytes().all(|b| b.is_ascii_graphic()));
        if let Some(name) = name {
            request = request.header("mcp-name", name);
        }
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(id) = &session.id {
            request = request.header("mcp-session-id", id.clone());
        }
        if let Some(version) = &session.version {
            request = request.header("mcp-protocol-version", version.clone());
        }
        let mut response = request.body(message.to_string()).send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let stream = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("text/event-stream")
            });
        let id = message.get("id");
        let mut body = Vec::new();
        let mut truncated = false;
        let mut reply = None;
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                // An event stream held open without the answer: what came is what there is.
                Err(e) if stream && e.is_timeout() => break,
                Err(e) => return Err(e),
            };
            let room = BODY_CAP - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
            } else {
                body.extend_from_slice(&chunk);
            }
            if stream {
                reply = id.and_then(|id| checks::event_reply(&body, id));
                if reply.is_some() {
                    break;
                }
            }
            if truncated {
                break;
            }
        }
        if !stream {
            reply = id.and_then(|id| checks::json_reply(&body, id));
        }
        Ok(Rpc {
            answer: Answer {
                status,
                headers,
                body,
                truncated,
                url: self.url.clone(),
            },
            reply,
        })
    }
}

/// An `initialize` request with `id`.
fn initialize(id: u64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {
                "name": "auth-diagnostics-probe",
                "version": env!("CARGO_PKG_VERSION"),
            },
        },
    })
}

/// How the report names a message: its method, and the tool for `tools/call`.
fn rpc_label(message: &Value) -> String {
    let method = message["method"].as_str().unwrap_or_default();
    match message["params"]["name"].as_str() {
        Some(name) if method == "tools/call" => format!("{method} {}", checks::capped(name)),
        _ => method.to_owned(),
    }
}

/// A request that got no answer.
fn failed(name: &'static str, sent: Sent, e: &reqwest::Error) -> Exchange {
    let why = super::transport_error(e);
    let check = Check::new("answered", None, Verdict::Fail, why.clone());
    Exchange::failed(name, sent, why, vec![check])
}

/// The first entry of a metadata document's `authorization_servers`: an http(s) URL (and
/// the entry as written), or the check that says it is not one. `None` when there is none
/// (the document's own check fails for that).
fn first_server(doc: &Value) -> Option<Result<(Url, String), (String, Check)>> {
    let first = doc["authorization_servers"].as_array()?.first()?;
    let text = first.as_str().unwrap_or_default();
    Some(match Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && text.len() <= MAX_TEXT => {
            Ok((u, text.to_owned()))
        }
        _ => {
            let shown = checks::capped(&first.to_string());
            let check = Check::new(
                "issuer_url",
                Some("RFC 8414"),
                Verdict::Fail,
                format!("the first authorization server is not an http(s) URL: {shown}"),
            );
            Err((shown, check))
        }
    })
}

/// Where MCP clients look for an authorization server's metadata, in their order
/// (MCP 2025-11-25, "Authorization Server Metadata Discovery"): RFC 8414 path-inserted,
/// OpenID Connect path-inserted, OpenID Connect path-appended (the last only for an
/// issuer with a path).
fn as_metadata_urls(issuer: &Url) -> Vec<Url> {
    let origin = issuer.origin().ascii_serialization();
    let path = issuer.path().trim_end_matches('/');
    let mut urls = vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}/.well-known/openid-configuration{path}"),
    ];
    if !path.is_empty() {
        urls.push(format!("{origin}{path}/.well-known/openid-configuration"));
    }
    urls.iter().filter_map(|u| Url::parse(u).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_server_metadata_urls_in_the_mcp_order() {
        let urls = |issuer: &str| {
            as_metadata_urls(&Url::parse(issuer).unwrap())
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            urls("https://as.example"),
            [
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            urls("https://as.example/tenant1/"),
            [
                "https://as.example/.well-known/oauth-authorization-server/tenant1",
                "https://as.example/.well-known/openid-configuration/tenant1",
                "https://as.example/tenant1/.well-known/openid-configuration",
            ]
        );
    }
}
