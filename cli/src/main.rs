//! `auth-diagnostics`: the client's side. Decodes a token, explains a 401, probes an API's
//! authentication answers against the standards, and diffs two requests.
//!
//! `cargo install auth-diagnostics-cli`, then `auth-diagnostics --help`.
//!
//! Exit codes: 0 when nothing is wrong, 1 when problems were found (an expired token, a
//! server that breaks the standards, a failed verification), 2 for a usage error (bad
//! arguments, unreadable input).

use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// `println!` through [`term::emit`]: every line printed is made safe for a terminal.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::term::emit(&format!($($arg)*))
    };
}

mod decode;
mod diff;
mod explain;
mod input;
mod probe;
mod term;
mod text;
mod tls;

/// Explains authentication failures from the client's side.
#[derive(Debug, Parser)]
#[command(
    name = "auth-diagnostics",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 nothing wrong; 1 problems found (an expired or refused token, a \
                  server that breaks the standards, an unreachable server, requests that \
                  differ); 2 usage error (bad arguments, unreadable input)."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    output: OutputArgs,
}

/// How results are printed.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Print JSON for programs instead of text for people.
    #[arg(long, global = true)]
    json: bool,
    /// Colour: `auto` (when stdout is a terminal), `always` or `never`.
    #[arg(long, global = true, default_value = "auto", value_parser = ["auto", "always", "never"])]
    color: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a JWT: header, claims, times in UTC and relative; with --key, verify it.
    Decode(DecodeArgs),
    /// Explain an HTTP response (curl -i output, a raw response, or a HAR entry).
    Explain(ExplainArgs),
    /// Send a small, bounded set of requests to URL and report how its answers follow the
    /// standards; with --mcp URL, play an MCP client against an MCP server.
    Probe(ProbeArgs),
    /// The differences between two requests that matter for authentication.
    Diff(DiffArgs),
}

/// `decode TOKEN`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The token, or `-` to read it from stdin.
    pub token: String,
    /// Verify with this key: a PEM file, a JWK or JWKS file, a JWKS URL, or an OIDC issuer URL.
    #[arg(long)]
    pub key: Option<String>,
    /// Verify with an HMAC secret read from this file (never an argument: `ps` shows arguments).
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Verify with an HMAC secret read from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub secret_env: Option<String>,
    /// The issuer the token must name (with --key, --secret-file or --secret-env).
    #[arg(long)]
    pub issuer: Option<String>,
    /// The audience the token must name (with --key, --secret-file or --secret-env).
    #[arg(long)]
    pub audience: Option<String>,
}

/// `explain RESPONSE`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The response: a file with `curl -i` output or a raw HTTP response, a HAR file, or `-` for stdin.
    pub response: String,
    /// The request that produced it: a curl command line or a raw HTTP request, in a file.
    #[arg(long, value_name = "FILE")]
    pub request: Option<String>,
    /// Which entry of a HAR file (0-based; default: the last one answered 401 or 403).
    #[arg(long)]
    pub entry: Option<usize>,
}

/// `probe URL`, or `probe --mcp URL`.
#[derive(Debug, Args)]
#[command(after_help = PROBE_HELP)]
pub struct ProbeArgs {
    /// The protected URL to probe (http or https; no credentials in it).
    #[arg(required_unless_present = "mcp", conflicts_with = "mcp")]
    pub url: Option<String>,
    /// Probe this MCP endpoint as an MCP client would (JSON-RPC POSTs, metadata discovery,
    /// the authorization server's metadata) and report what a client will trip over.
    #[arg(long, value_name = "URL")]
    pub mcp: Option<String>,
    /// A valid token, read from this environment variable: adds the checks that need one.
    #[arg(long, value_name = "VAR", conflicts_with = "token_file")]
    pub token_env: Option<String>,
    /// With --mcp: a token minted for another audience, read from this environment
    /// variable; the server must refuse it with 401.
    #[arg(long, value_name = "VAR", requires = "mcp")]
    pub foreign_token_env: Option<String>,
    /// With --mcp and a token: also call every tool the server lists (at most 16), with
    /// empty arguments. Tools may act (send, delete, pay): use it against a test server.
    #[arg(long, requires = "mcp")]
    pub call_tools: bool,
    /// A valid token, read from this file.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Seconds to wait for each answer (1-300).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout: u64,
    /// Most requests per second (1-100).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rate: u32,
    /// Exit 1 on warnings too (SHOULDs, and this crate's own contract such as no-store).
    #[arg(long)]
    pub strict: bool,
    /// Also send the token in the URL query (`token_in_query`, `header_and_query`): query
    /// strings end up in access logs and proxies (RFC 6750 §5.3), so this is opt-in.
    #[arg(long, conflicts_with = "mcp")]
    pub query_token: bool,
}

/// The request set of `probe`, for `--help`.
const PROBE_HELP: &str = "\
Requests (GET, no cookies, redirects never followed, at most 64 KiB of each body read):
  no_credentials           nothing that authenticates
  wrong_scheme             Authorization: Basic cHJvYmU6cHJvYmU= (probe:probe)
  malformed_authorization  Authorization: Bearer a b
  bare_token               Authorization: eyJhbGciOiJub25lIn0.eyJzdWIiOiJwcm9iZSJ9.
  valid_token              with a token: Authorization: Bearer <token>
  token_in_query           with a token and --query-token: URL?access_token=<token>
  header_and_query         with a token and --query-token: both
  metadata                 the resource_metadata document the first 401 names, if it is
                           on the probed URL's origin (elsewhere: a warning, not fetched)

Without --query-token the token never goes into a URL (access logs, RFC 6750 §5.3): the
two query requests are listed as skipped. They are skipped too when the server refused
the token (they need a token this resource accepts).

With --mcp URL (POSTs of JSON-RPC, as an MCP client sends them; at most 64 KiB of each
body read, and an event stream read only up to the answer):
  unauthenticated_initialize  `initialize`, no token: 401 with a Bearer challenge that
                              names resource_metadata and scope
  metadata                    the document resource_metadata names (wherever it is: a
                              client fetches it), no credentials
  metadata_path_inserted      /.well-known/oauth-protected-resource/<path>, if not the above
  metadata_root               /.well-known/oauth-protected-resource, if not the above
  authorization_server        the first authorization server's RFC 8414 / OpenID metadata,
                              at the URIs MCP clients try, in their order, until one answers
  initialize                  with a token: `initialize` (then `notifications/initialized`)
  tools_list                  with a token: `tools/list`
  tools_call                  with a token and --call-tools: `tools/call` of each tool
  foreign_token               with --foreign-token-env: `initialize` with that token: 401
The token goes to the MCP URL only; the metadata requests carry no credentials.

Each check cites its rule in standards.md (R-NN), or the standard itself where standards.md
has no item (RFC 8414, MCP PKCE): a MUST that is not met fails, a SHOULD warns. Exit 0: no check failed; 1: a check failed (or, with --strict, warned), or the
server cannot be reached; 2: usage error. The token is never printed.";

/// `diff A B`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The first request: a file with a curl command line, a raw HTTP request, or a HAR file.
    pub a: String,
    /// The second request, in the same forms.
    pub b: String,
    /// Which entry of a HAR file A (0-based; default: the first).
    #[arg(long)]
    pub entry_a: Option<usize>,
    /// Which entry of a HAR file B (0-based; default: the first).
    #[arg(long)]
    pub entry_b: Option<usize>,
}

/// Where a subcommand writes, and how.
pub struct Out {
    /// JSON instead of text.
    pub json: bool,
    /// ANSI colour in text output.
    pub color: bool,
}

/// What a subcommand found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing wrong: exit 0.
    Fine,
    /// Problems were found and reported: exit 1.
    Problems,
}

/// A usage error (exit 2): bad arguments, unreadable or unparseable input.
#[derive(Debug)]
pub struct UsageError(pub String);

impl<T: std::fmt::Display> From<T> for UsageError {
    fn from(e: T) -> Self {
        Self(e.to_string())
    }
}

/// Runs the command line and returns its exit code.
fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let color = match cli.output.color.as_str() {
        "always" => true,
        "never" => false,
        _ => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    term::set_color(color);
    let out = Out {
        json: cli.output.json,
        color,
    };
    let result = match &cli.command {
        Command::Decode(args) => decode::run(args, &out),
        Command::Explain(args) => explain::run(args, &out),
        Command::Probe(args) => probe::run(args, &out),
        Command::Diff(args) => diff::run(args, &out),
    };
    match result {
        Ok(Outcome::Fine) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(UsageError(why)) => {
            eprintln!("auth-diagnostics: {}", term::safe_text(&why, false));
            ExitCode::from(2)
        }
    }
}

/// Exit code when stdout was closed under us (`… | head`): what a shell reports for a
/// program ended by SIGPIPE.
const CLOSED_STDOUT: i32 = 141;

/// A reader that stops reading (`auth-diagnostics probe URL | head`) ends the command
/// quietly, as it ends other Unix tools, instead of with a panic and a backtrace.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        let closed = message.is_some_and(|m| {
            m.starts_with("failed printing to stdout") && m.contains("Broken pipe")
        });
        if closed {
            std::process::exit(CLOSED_STDOUT);
        }
        default(info)
    }));
}
