//! Reading what the user pastes: `curl -i` output, raw HTTP requests and responses, HAR
//! files and curl command lines. Shared by `explain` and `diff` (and `decode`'s stdin).
//!
//! Nothing here trusts its input: sizes are capped, non-UTF-8 bytes are replaced, and any
//! text that is not what it should be becomes a [`UsageError`] with a plain message.

use super::UsageError;
use base64::Engine as _;
use serde_json::Value;
use std::io::Read;

/// The largest input read, in bytes (10 MiB): anything bigger is a usage error.
pub(crate) const MAX_INPUT: u64 = 10 * 1024 * 1024;

/// Reads `spec`: a file name, or `-` for stdin. Refuses more than [`MAX_INPUT`] bytes and
/// empty input; invalid UTF-8 is replaced (headers are ASCII, a body may be anything).
pub(crate) fn read_text(spec: &str) -> Result<String, UsageError> {
    let mut bytes = Vec::new();
    let what = if spec == "-" { "stdin" } else { spec };
    let read = if spec == "-" {
        std::io::stdin().take(MAX_INPUT + 1).read_to_end(&mut bytes)
    } else {
        let meta = std::fs::metadata(spec).map_err(|e| UsageError(format!("{spec}: {e}")))?;
        if meta.is_dir() {
            return Err(UsageError(format!("{spec}: is a directory")));
        }
        if meta.len() > MAX_INPUT {
            return Err(too_big(what));
        }
        std::fs::File::open(spec).and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut bytes))
    };
    read.map_err(|e| UsageError(format!("{what}: {e}")))?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(too_big(what));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(UsageError(format!("{what}: empty input")));
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(text.trim_start_matches('\u{feff}').to_owned())
}

fn too_big(what: &str) -> UsageError {
    UsageError(format!(
        "{what}: more than {} MiB; give one request or response, not a whole capture",
        MAX_INPUT / 1024 / 1024
    ))
}

/// A URL taken apart just enough for authentication: no percent-decoding beyond `+`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Target {
    /// `http` or `https` (empty for an origin-form request target with no Host).
    pub scheme: String,
    /// Host and port as written (lowercased).
    pub host: String,
    /// The path, `/` at least.
    pub path: String,
    /// Query parameters in order.
    pub query: Vec<(String, String)>,
}

impl Target {
    /// Parses an absolute URL (`https://h/p?q`), a URL without scheme (`h/p`, as curl
    /// allows) or an origin-form target (`/p?q`).
    pub(crate) fn parse(url: &str) -> Target {
        let url = url.trim();
        let url = url.split('#').next().unwrap_or("");
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) if !s.contains('/') => (s.to_ascii_lowercase(), r),
            _ if url.starts_with('/') => (String::new(), url),
            _ => ("http".to_owned(), url),
        };
        let (authority, path_query) = if scheme.is_empty() {
            ("", rest)
        } else {
            match rest.find(['/', '?']) {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            }
        };
        let host = authority
            .rsplit('@')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
        let path = if path.is_empty() { "/" } else { path };
        Target {
            scheme,
            host,
            path: path.to_owned(),
            query: parse_query(query),
        }
    }
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.replace('+', " "), v.to_owned())
        })
        .collect()
}

/// One HTTP request, from whichever form it was given in.
#[derive(Debug, Clone, Default)]
pub(crate) struct Request {
    /// The method, upper case.
    pub method: String,
    /// Where it goes.
    pub target: Target,
    /// Header fields in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// A proxy curl was told to use (`-x`), if any.
    pub proxy: Option<String>,
    /// The TLS client certificate curl was told to present (`-E`/`--cert`), if any:
    /// a credential (mutual TLS) that no header shows.
    pub client_cert: Option<String>,
    /// Things worth saying about how it was read (a cookie file not read, say).
    pub notes: Vec<String>,
}

impl Request {
    /// Every value of header `name` (lowercase).
    pub(crate) fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        let name = name.to_owned();
        self.headers
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of header `name` (lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.all(name).next()
    }

    /// The host: the `Host` header (or HTTP/2 `:authority`), else the URL's.
    pub(crate) fn host(&self) -> String {
        self.header("host")
            .or_else(|| self.header(":authority"))
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| self.target.host.clone())
    }
}

/// One HTTP response.
#[derive(Debug, Clone, Default)]
pub(crate) struct Response {
    /// `HTTP/1.1`, `HTTP/2`, … (`HAR` for a HAR entry without one).
    pub version: String,
    /// The status code.
    pub status: u16,
    /// Header fields in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body as text (may be empty).
    pub body: String,
    /// Statuses of earlier responses in the same output (100 Continue, redirects).
    pub earlier: Vec<u16>,
}

impl Response {
    /// Every value of header `name` (lowercase).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of header `name` (lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }
}

/// What one file held: a request, a response, or both (a HAR entry, `curl -v`).
#[derive(Debug, Default)]
pub(crate) struct Exchange {
    /// The request, when the input had one.
    pub request: Option<Request>,
    /// The response, when the input had one.
    pub response: Option<Response>,
}

/// Splits a header block into lines (CRLF or LF), the first being the start line.
fn lines(block: &str) -> impl Iterator<Item = &str> {
    block.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l))
}

/// Reads `name: value` lines until the first empty one; returns the headers and the byte
/// offset just after the blank line (or the end).
fn read_headers(text: &str) -> (Vec<(String, String)>, usize) {
    let mut headers = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        at += line.len();
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            return (headers, at);
        }
        if let Some((n, v)) = l.split_once(':').filter(|(n, _)| !n.is_empty()) {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        } else if let Some((n, v)) = l.strip_prefix(':').and_then(|r| r.split_once(':')) {
            // An HTTP/2 pseudo-header written as `:authority: x`.
            headers.push((format!(":{}", n.trim()), v.trim().to_owned()));
        }
    }
    (headers, text.len())
}

/// Parses a status line: `HTTP/1.1 401 Unauthorized`, `HTTP/2 401`.
fn status_line(line: &str) -> Option<(String, u16)> {
    let mut parts = line.split_whitespace();
    let version = parts.next().filter(|v| v.starts_with("HTTP/"))?;
    let code = parts.next()?;
    let status = code
        .parse::<u16>()
        .ok()
        .filter(|s| (100..=999).contains(s) && code.len() == 3)?;
    Some((version.to_owned(), status))
}

/// Parses `curl -i` output or a raw response: several responses in a row (100 Continue,
/// redirects followed with `-L`, a proxy's CONNECT answer) give the last one.
pub(crate) fn parse_response(text: &str) -> Result<Response, UsageError> {
    let mut rest = text.trim_start();
    let mut earlier = Vec::new();
    loop {
        let first = lines(rest).next().unwrap_or("");
        let Some((version, status)) = status_line(first) else {
            return Err(UsageError(
                "not an HTTP response: expected a status line such as `HTTP/1.1 401 Unauthorized` \
                 (save `curl -i` output, a raw response or a HAR file)"
                    .into(),
            ));
        };
        let after_start = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let (headers, used) = read_headers(&rest[after_start..]);
        let body = &rest[after_start + used..];
        if status_line(lines(body.trim_start()).next().unwrap_or("")).is_some() {
            earlier.push(status);
            rest = body.trim_start();
            continue;
        }
        return Ok(Response {
            version,
            status,
            headers,
            body: body.to_owned(),
            earlier,
        });
    }
}

/// Parses a raw HTTP/1.x request: `GET /path HTTP/1.1`, then headers.
pub(crate) fn parse_raw_request(text: &str) -> Result<Request, UsageError> {
    let text = text.trim_start();
    let first = lines(text).next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(not_a_request());
    };
    let version_ok = parts.next().is_none_or(|v| v.starts_with("HTTP/"));
    if !version_ok || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(not_a_request());
    }
    let after_start = text.find('\n').map_or(text.len(), |i| i + 1);
    let (headers, _) = read_headers(&text[after_start..]);
    let mut target = Target::parse(target);
    if target.host.is_empty() {
        if let Some(h) = headers.iter().find(|(n, _)| n == "host") {
            target.host = h.1.to_ascii_lowercase();
        }
    }
    Ok(Request {
        method: method.to_ascii_uppercase(),
        target,
        headers,
        ..Request::default()
    })
}

fn not_a_request() -> UsageError {
    UsageError(
        "not an HTTP request: expected a curl command line, a raw request \
         (`GET /path HTTP/1.1` then headers) or a HAR file"
            .into(),
    )
}

/// Reads a request from a file's text: a HAR file (entry `entry`, default 0), a curl
/// command line, or a raw request.
pub(crate) fn parse_request(text: &str, entry: Option<usize>) -> Result<Request, UsageError> {
    let t = text.trim_start();
    if t.starts_with('{') {
        let ex = har_entry(t, entry.or(Some(0)))?;
        return ex.request.ok_or_else(not_a_request);
    }
    if looks_like_curl(t) {
        return parse_curl(t);
    }
    parse_raw_request(t)
}

/// Reads an exchange for `explain`: a HAR file, `curl -i` output or a raw response.
pub(crate) fn parse_exchange(text: &str, entry: Option<usize>) -> Result<Exchange, UsageError> {
    let t = text.trim_start();
    if t.starts_with('{') {
        return har_entry(t, entry);
    }
    Ok(Exchange {
        request: None,
        response: Some(parse_response(t)?),
    })
}

fn looks_like_curl(t: &str) -> bool {
    let first = t.split_whitespace().next().unwrap_or("");
    first == "curl" || first.ends_with("/curl") || first.eq_ignore_ascii_case("curl.exe")
}

/// The curl options that take a value, besides those handled by name.
const VALUE_OPTIONS: &[&str] = &[
    "-o",
    "--output",
    "-w",
    "--write-out",
    "-m",
    "--max-time",
    "--connect-timeout",
    "--cacert",
    "--capath",
    "--key",
    "--resolve",
    "--connect-to",
    "--retry",
    "-T",
    "--upload-file",
    "-c",
    "--cookie-jar",
    "-r",
    "--range",
    "--limit-rate",
    "-K",
    "--config",
    "--interface",
    "-U",
    "--proxy-user",
    "--max-redirs",
    "--cert-type",
    "--key-type",
    "-D",
    "--dump-header",
    "--trace",
    "--trace-ascii",
    "--stderr",
    "-z",
    "--time-cond",
    "-Y",
    "-y",
    "--speed-limit",
    "--speed-time",
    "--proto",
    "--proto-redir",
    "--unix-socket",
    "--aws-sigv4",
    "--variable",
    "--expand-url",
    "--ciphers",
    "--pinnedpubkey",
    "-Q",
    "--quote",
    "--netrc-file",
    "--dns-servers",
    "--local-port",
    "--retry-delay",
    "--retry-max-time",
    "--keepalive-time",
    "--request-target",
    "--noproxy",
];

/// Short options that take a value (they may be glued: `-HAuthorization: x`).
const SHORT_VALUE: &str = "HubXdxAeoFwmETcrKUDzYyQ";

/// Parses a curl command line: POSIX shell quoting (line continuations `\` newline, bash
/// `$'…'` as Chrome's "Copy as cURL (bash)" writes it) or Windows cmd quoting (`^"…^"`, `^`
/// escapes, as Chrome's "Copy as cURL (cmd)" writes it).
pub(crate) fn parse_curl(text: &str) -> Result<Request, UsageError> {
    let words = if text.contains("^\"") {
        cmd_words(text)
    } else {
        let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
        shlex::split(ansi_c_quotes(joined.trim())?.trim())
    }
    .ok_or_else(|| UsageError("the curl command line has an unclosed quote".into()))?;
    let mut curl = CurlState::default();
    let mut words = words.into_iter().skip(1);
    while let Some(word) = words.next() {
        let (opt, glued) = split_option(&word);
        if opt.is_empty() {
            curl.url.get_or_insert(word);
            continue;
        }
        let takes_value = opt.len() == 2 && SHORT_VALUE.contains(&opt[1..])
            || VALUE_OPTIONS.contains(&opt.as_str())
            || CurlState::named(&opt);
        let value = if takes_value {
            glued.or_else(|| words.next())
        } else {
            None
        };
        curl.apply(&opt, value)?;
    }
    curl.finish()
}

/// Rewrites bash's `$'…'` strings (outside other quotes) as plain single-quoted strings,
/// their escapes decoded: `\n \t \r \e \a \b \f \v \\ \' \" \? \xHH \uHHHH \UHHHHHHHH \NNN`.
fn ansi_c_quotes(text: &str) -> Result<String, UsageError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let len = match c {
            '\\' => rest.chars().nth(1).map_or(1, |n| 1 + n.len_utf8()),
            '\'' => rest[1..].find('\'').map_or(rest.len(), |i| i + 2),
            '"' => double_quoted_len(rest),
            '$' if rest[1..].starts_with('\'') => {
                let (value, used) = ansi_c_string(&rest[2..])
                    .ok_or_else(|| UsageError("the curl command line has an unclosed $'".into()))?;
                out.push('\'');
                out.push_str(&value.replace('\'', "'\\''"));
                out.push('\'');
                rest = &rest[2 + used..];
                continue;
            }
            _ => c.len_utf8(),
        };
        out.push_str(&rest[..len]);
        rest = &rest[len..];
    }
    Ok(out)
}

/// The length of the `"…"` string at the start of `text` (to its end if unclosed).
fn double_quoted_len(text: &str) -> usize {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return i + 1,
            _ => {}
        }
    }
    text.len()
}

/// The value of a `$'…'` body (`text` starts after `$'`) and the bytes used, closing quote
/// included; `None` when it never closes.
fn ansi_c_string(text: &str) -> Option<(String, usize)> {
    let mut bytes = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            return Some((String::from_utf8_lossy(&bytes).into_owned(), i + 1));
        }
        if c != '\\' {
            let mut buf = [0; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let (_, e) = chars.next()?;
        let mut digits = |first: u32, radix: u32, max: usize| {
            let (mut n, mut count) = (first, 0);
            while count < max {
                let Some(d) = chars.peek().and_then(|(_, d)| d.to_digit(radix)) else {
                    break;
                };
                n = n * radix + d;
                chars.next();
                count += 1;
            }
            (n, count)
        };
        let byte = match e {
            'n' => Some(b'\n'),
            't' => Some(b'\t'),
            'r' => Some(b'\r'),
            'e' | 'E' => Some(0x1b),
            'a' => Some(7),
            'b' => Some(8),
            'f' => Some(12),
            'v' => Some(11),
            '\\' | '\'' | '"' | '?' => Some(e as u8),
            'x' => match digits(0, 16, 2) {
                (n, 1..) => Some(n as u8),
                _ => None,
            },
            '0'..='7' => Some(digits(e.to_digit(8).unwrap_or(0), 8, 2).0 as u8),
            _ => None,
        };
        let scalar = match e {
            'u' => Some(digits(0, 16, 4)),
            'U' => Some(digits(0, 16, 8)),
            _ => None,
        };
        let mut buf = [0; 4];
        match (byte, scalar) {
            (Some(b), _) => bytes.push(b),
            (_, Some((n, 1..))) => {
                let ch = char::from_u32(n).unwrap_or('\u{fffd}');
                bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => {
                bytes.push(b'\\');
                bytes.extend_from_slice(e.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    None
}

/// Splits a command line written for Windows cmd, as Chrome's "Copy as cURL (cmd)" writes
/// it: first cmd's layer (`^` escapes the next character, so `^"` is a literal quote; `^`
/// at a line's end continues the line, `^` newline newline is a newline; inside an
/// unescaped `"…"` a caret is literal), then the C runtime's argument rules (`"` groups,
/// `\"` is a quote, `\\` a backslash). `None` for an unclosed quote.
fn cmd_words(text: &str) -> Option<Vec<String>> {
    let text = text.replace("\r\n", "\n");
    let mut unescaped = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                unescaped.push(c);
            }
            '^' if !quoted => match chars.next() {
                Some('\n') if chars.peek() == Some(&'\n') => {
                    chars.next();
                    unescaped.push('\n');
                }
                Some('\n') => unescaped.push(' '),
                Some(next) => unescaped.push(next),
                None => {}
            },
            _ => unescaped.push(c),
        }
    }
    if quoted {
        return None;
    }
    crt_words(&unescaped)
}

/// Splits by the C runtime's rules: whitespace between words, `"` groups, `\"` is a quote
/// and `\\` a backslash (as Chrome writes them). `None` for an unclosed quote.
fn crt_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('"' | '\\')) => {
                word.get_or_insert_with(String::new)
                    .push(chars.next().unwrap_or('\\'));
            }
            '"' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            c if c.is_whitespace() && !quoted => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quoted {
        return None;
    }
    words.extend(word);
    Some(words)
}

/// `--header=x` → (`--header`, `x`); `-HX` → (`-H`, `X`); `-sSL` → (`-sSL`, none) unless a
/// letter in the group takes a value; a positional word → (``, none).
fn split_option(word: &str) -> (String, Option<String>) {
    if let Some(long) = word.strip_prefix("--") {
        if long.is_empty() {
            return (String::new(), None);
        }
        return match long.split_once('=') {
            Some((n, v)) => (format!("--{n}"), Some(v.to_owned())),
            None => (word.to_owned(), None),
        };
    }
    let Some(short) = word.strip_prefix('-').filter(|s| !s.is_empty()) else {
        return (String::new(), None);
    };
    // In a group (`-sSXPOST`), the first letter that takes a value takes the rest.
    for (i, c) in short.char_indices() {
        if SHORT_VALUE.contains(c) {
            let rest = &short[i + c.len_utf8()..];
            return (format!("-{c}"), (!rest.is_empty()).then(|| rest.to_owned()));
        }
    }
    let last = short.chars().last().unwrap_or('s');
    (format!("-{last}"), None)
}

/// What a curl command line said so far.
#[derive(Default)]
struct CurlState {
    url: Option<String>,
    method: Option<String>,
    headers: Vec<(String, String)>,
    proxy: Option<String>,
    has_data: bool,
    head: bool,
    notes: Vec<String>,
    /// `-u user:password`.
    user: Option<String>,
    /// The scheme `--negotiate`, `--ntlm`, `--digest`, `--anyauth` or `--basic` chose (the
    /// last one given wins, as in curl).
    auth: Option<&'static str>,
    client_cert: Option<String>,
}

impl CurlState {
    /// Options handled by name that take a value.
    fn named(opt: &str) -> bool {
        matches!(
            opt,
            "--header"
                | "--user"
                | "--cookie"
                | "--request"
                | "--url"
                | "--oauth2-bearer"
                | "--proxy"
                | "--user-agent"
                | "--referer"
                | "--json"
                | "--form"
                | "--form-string"
                | "--proxy-header"
                | "-E"
                | "--cert"
        ) || opt.starts_with("--data")
    }

    fn apply(&mut self, opt: &str, value: Option<String>) -> Result<(), UsageError> {
        let needs = |v: Option<String>| {
            v.ok_or_else(|| UsageError(format!("curl option {opt} needs a value")))
        };
        match opt {
            "-H" | "--header" => {
                let v = needs(value)?;
                if let Some((n, val)) = v.split_once(':') {
                    let n = n.trim().to_ascii_lowercase();
                    let val = val.trim();
                    // `-H "X:"` removes a header in curl; `-H "X;"` sends it empty.
                    if !val.is_empty() {
                        self.headers.push((n, val.to_owned()));
                    }
                } else if let Some(n) = v.strip_suffix(';') {
                    self.headers
                        .push((n.trim().to_ascii_lowercase(), String::new()));
                }
            }
            "-u" | "--user" => self.user = Some(needs(value)?),
            "--basic" => self.auth = Some("Basic"),
            "--digest" => self.auth = Some("Digest"),
            "--ntlm" => self.auth = Some("NTLM"),
            "--negotiate" => self.auth = Some("Negotiate"),
            "--anyauth" => self.auth = Some("AnyAuth"),
            "-E" | "--cert" => self.client_cert = Some(needs(value)?),
            "--oauth2-bearer" => {
                let v = needs(value)?;
                self.headers
                    .push(("authorization".into(), format!("Bearer {v}")));
            }
            "-b" | "--cookie" => {
                let v = needs(value)?;
                if v.contains('=') {
                    self.headers.push(("cookie".into(), v));
                } else {
                    self.notes.push(format!(
                        "cookies read by curl from file {v} (not read here)"
                    ));
                }
            }
            "-A" | "--user-agent" => self.headers.push(("user-agent".into(), needs(value)?)),
            "-e" | "--referer" => self.headers.push(("referer".into(), needs(value)?)),
            "-X" | "--request" => self.method = Some(needs(value)?.to_ascii_uppercase()),
            "--url" => self.url = Some(needs(value)?),
            "-x" | "--proxy" => self.proxy = Some(needs(value)?),
            "-I" | "--head" => self.head = true,
            "-d" | "-F" | "--json" | "--form" | "--form-string" => self.has_data = true,
            o if o.starts_with("--data") => self.has_data = true,
            _ => {}
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Request, UsageError> {
        let url = self
            .url
            .take()
            .ok_or_else(|| UsageError("the curl command line has no URL".into()))?;
        let method = self.method.take().unwrap_or_else(|| {
            if self.head {
                "HEAD".into()
            } else if self.has_data {
                "POST".into()
            } else {
                "GET".into()
            }
        });
        // curl takes `user:password@` from the URL when -u is not given.
        let user = self.user.take().or_else(|| url_user(&url));
        if let Some(user) = user {
            self.user_credential(&user);
        }
        Ok(Request {
            method,
            target: Target::parse(&url),
            headers: self.headers,
            proxy: self.proxy,
            client_cert: self.client_cert,
            notes: self.notes,
        })
    }

    /// The `Authorization` curl sends for `-u user` under the scheme chosen (Basic unless
    /// `--negotiate`, `--ntlm`, `--digest` or `--anyauth` says otherwise).
    fn user_credential(&mut self, user: &str) {
        let scheme = self.auth.unwrap_or("Basic");
        let value = match scheme {
            "Basic" => {
                if !user.contains(':') {
                    self.notes
                        .push("-u without a password: curl would prompt for it".into());
                }
                let b64 = base64::engine::general_purpose::STANDARD.encode(user.as_bytes());
                format!("Basic {b64}")
            }
            "Negotiate" => {
                self.notes.push(
                    "curl --negotiate sends Negotiate (SPNEGO/Kerberos) with a token it makes \
                     at run time from the Kerberos ticket; -u names no Basic credential"
                        .into(),
                );
                scheme.to_owned()
            }
            "AnyAuth" => {
                self.notes.push(
                    "curl --anyauth sends no credential first, then the safest scheme the \
                     server's challenge offers (Negotiate, Digest, NTLM, then Basic)"
                        .into(),
                );
                scheme.to_owned()
            }
            _ => {
                self.notes.push(format!(
                    "curl --{} answers the server's challenge with {scheme} credentials \
                     computed from -u (no Basic credential is sent)",
                    scheme.to_ascii_lowercase()
                ));
                scheme.to_owned()
            }
        };
        self.headers.push(("authorization".into(), value));
    }
}

/// The `user:password` of an URL's authority, if it has one.
fn url_user(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (user, _) = authority.rsplit_once('@')?;
    (!user.is_empty()).then(|| user.to_owned())
}

/// One entry of a HAR file: `entry`, or (when `None`) the last one answered 401 or 403,
/// else the last one.
pub(crate) fn har_entry(text: &str, entry: Option<usize>) -> Result<Exchange, UsageError> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| UsageError(format!("not a HAR file (invalid JSON: {e})")))?;
    let entries = doc
        .pointer("/log/entries")
        .and_then(Value::as_array)
        .ok_or_else(|| UsageError("not a HAR file: no log.entries array".into()))?;
    if entries.is_empty() {
        return Err(UsageError("the HAR file has no entries".into()));
    }
    let index = match entry {
        Some(i) if i < entries.len() => i,
        Some(i) => {
            return Err(UsageError(format!(
                "the HAR file has {} entries (0 to {}); there is no entry {i}",
                entries.len(),
                entries.len() - 1
            )))
        }
        None => entries
            .iter()
            .rposition(|e| {
                matches!(
                    e.pointer("/response/status").and_then(Value::as_u64),
                    Some(401 | 403)
                )
            })
            .unwrap_or(entries.len() - 1),
    };
    let e = &entries[index];
    Ok(Exchange {
        request: e.get("request").and_then(har_request),
        response: e.get("response").and_then(har_response),
    })
}

fn har_headers(v: &Value) -> Vec<(String, String)> {
    v.get("headers")
        .and_then(Value::as_array)
        .map(|hs| {
            hs.iter()
                .filter_map(|h| {
                    let n = h.get("name")?.as_str()?;
                    let v = h.get("value")?.as_str()?;
                    Some((n.to_ascii_lowercase(), v.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn har_request(v: &Value) -> Option<Request> {
    let method = v.get("method")?.as_str()?.to_ascii_uppercase();
    let url = v.get("url")?.as_str()?;
    Some(Request {
        method,
        target: Target::parse(url),
        headers: har_headers(v),
        ..Request::default()
    })
}

fn har_response(v: &Value) -> Option<Response> {
    let status = u16::try_from(v.get("status")?.as_u64()?).ok()?;
    let version = v
        .get("httpVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("HAR")
        .to_owned();
    let content = v.get("content");
    let text = content.and_then(|c| c.get("text")).and_then(Value::as_str);
    let base64 = content
        .and_then(|c| c.get("encoding"))
        .and_then(Value::as_str)
        == Some("base64");
    let body = match text {
        Some(t) if base64 => base64::engine::general_purpose::STANDARD
            .decode(t)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default(),
        Some(t) => t.to_owned(),
        None => String::new(),
    };
    Some(Response {
        version,
        status,
        headers: har_headers(v),
        body,
        earlier: Vec::new(),
    })
}

/// A short fingerprint of a secret, so two values can be told apart without showing
/// either: `hmac:` and the first 8 hex digits of HMAC-SHA256 under a key drawn at random
/// for this run. Equal within one run; they differ between runs, so a printed hash can be
/// neither compared with another run's nor brute-forced offline (an unkeyed hash of a
/// password or API key could).
pub(crate) fn fingerprint(secret: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(run_key()).expect("any key length");
    mac.update(secret.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("hmac:{hex}")
}

/// The random key of this run's fingerprints.
fn run_key() -> &'static [u8; 32] {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        if getrandom::getrandom(&mut key).is_err() {
            // No system randomness: the std hasher's random keys, four times over.
            use std::hash::{BuildHasher, Hasher};
            for (i, chunk) in key.chunks_mut(8).enumerate() {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_usize(i);
                chunk.copy_from_slice(&h.finish().to_le_bytes());
            }
        }
        key
    })
}

/// What every output that shows fingerprints says about them.
pub(crate) const FINGERPRINT_NOTE: &str =
    "hashes are keyed for this run only: they differ between runs";

/// `text` in ANSI colour `code` (`1` bold, `31` red, `32` green, `33` yellow, `2` dim)
/// when colour is on, as it is otherwise.
pub(crate) fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Prints `value` as pretty JSON on stdout (the `--json` output of every subcommand).
pub(crate) fn print_json(value: &Value) {
    super::term::emit_json(&serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_lines() {
        let r = parse_curl(
            "curl -sS -X POST \\\n -H 'Authorization: Bearer abc' -u bob:pw --data x \
             'https://API.example/v1/x?access_token=t' --oauth2-bearer z",
        )
        .unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.target.host, "api.example");
        assert_eq!(r.target.path, "/v1/x");
        assert_eq!(r.target.query[0].0, "access_token");
        assert_eq!(r.all("authorization").count(), 3);
    }

    #[test]
    fn browser_quoting() {
        let bash = parse_curl(
            "curl 'https://h.example/p' \\\n  -H $'x-a: it\\'s caf\\u00e9 \\\\ {\"a\":1}\\x21\\n' \\\n               -H \"x-b: \\\"q\\\" \" -b $'s=1'",
        )
        .unwrap();
        assert_eq!(bash.header("x-a"), Some("it's café \\ {\"a\":1}!"));
        assert_eq!(bash.header("x-b"), Some("\"q\""));
        assert_eq!(bash.header("cookie"), Some("s=1"));
        let cmd = parse_curl(
            "curl ^\"https://h.example/p^\" ^\r\n  -H ^\"x-a: it's caf^é ^\\^\\ ^{^\\^\"a^\\^\":1^}^!^\" ^\n               -b ^\"s=1^\"",
        )
        .unwrap();
        assert_eq!(cmd.target.host, "h.example");
        assert_eq!(cmd.header("x-a"), Some("it's café \\ {\"a\":1}!"));
        assert_eq!(cmd.header("cookie"), Some("s=1"));
        assert!(parse_curl("curl ^\"https://h.example/p").is_err());
        assert!(parse_curl("curl $'https://h.example/p").is_err());
    }

    #[test]
    fn responses() {
        let r = parse_response(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/2 401 \r\nwww-authenticate: Bearer\r\n\r\n{}",
        )
        .unwrap();
        assert_eq!((r.status, r.earlier.as_slice()), (401, &[100][..]));
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert_eq!(r.body, "{}");
        assert!(parse_response("garbage").is_err());
        assert!(parse_raw_request("\u{1}\u{2}").is_err());
    }
}
