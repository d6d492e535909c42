//! The path-confusion guard: a request path that two components could read as two
//! different paths (a proxy that decodes or normalizes it, the router that does not) is
//! refused with 400 `path_ambiguous` before any route-scoped rule sees it, so no rule can
//! be bypassed by spelling a path another way (`/admin/..;/public`, `/public/%2e%2e/admin`).
//!
//! Refused, anywhere in the path (never the query):
//! - a dot segment, `.` or `..`, in any spelling: raw, `%2e`/`%2E`, or mixed (`.%2e`);
//! - a dot segment with `;` path parameters (`..;`, `..;jsessionid=x`, `.;`, `..%3B`);
//! - an encoded slash `%2F` (unless [`PathGuard::AllowEncodedSlash`]) or backslash `%5C`;
//! - double percent-encoding: a `%` (as `%25`, or a bare `%`) whose next two characters
//!   are hex digits once decoded (`%252e`, `%25%32%65`, `%%32%65`);
//! - a raw backslash.
//!
//! Everything else passes, in particular what ordinary clients send: `%20`, `+`, encoded
//! UTF-8 and raw UTF-8, `@ : ~ , = !`, dots inside names (`/v1.2/report.final.pdf`,
//! `/.well-known/…`, `/a..b`, `/...`), trailing slashes and empty segments (`//`), a lone
//! `%` or `%25` not followed by hex digits (`/50%25-off`), and `;` parameters on any
//! other segment. The scan is one pass over the path (at most 64 KiB: `http` caps it).

use crate::failure::AuthFailure;
use crate::reason::Reason;
use http::Request;

/// Which request paths the layer refuses as ambiguous (400 `path_ambiguous`), before any
/// route-scoped rule: see [`AuthDiagnostics::path_guard`](crate::AuthDiagnostics::path_guard).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathGuard {
    /// Refuse dot segments in any encoding (with or without `;` parameters), encoded
    /// slashes and backslashes, double percent-encoding and raw backslashes (the default).
    Strict,
    /// As [`Strict`](Self::Strict), but an encoded slash `%2F` passes, for APIs whose
    /// identifiers hold one (GitLab's `/projects/group%2Fname`, npm's `/@scope%2Fname`).
    /// A dot segment between encoded slashes (`a%2F..%2Fb`) is still refused.
    AllowEncodedSlash,
    /// No check: for a layer behind one that already guards, or a proxy that refuses
    /// these paths itself.
    Off,
}

/// Refuses `req` when its path is ambiguous under `guard`. Under `Router::nest` the path
/// the client sent is checked (the nested one is part of it).
pub(crate) fn refusal<B>(guard: PathGuard, req: &Request<B>) -> Option<AuthFailure> {
    if guard == PathGuard::Off {
        return None;
    }
    let path = match req.extensions().get::<axum::extract::OriginalUri>() {
        Some(original) => original.0.path(),
        None => req.uri().path(),
    };
    let found = find(path, guard == PathGuard::AllowEncodedSlash)?;
    let failure = AuthFailure::new(Reason::PathAmbiguous).detail(found.to_string());
    Some(match found.form {
        Form::EncodedSlash => failure.hint(
            "Send the path in its plain form; an API whose identifiers hold `/` can let \
             `%2F` pass with PathGuard::AllowEncodedSlash.",
        ),
        _ => failure,
    })
}

/// What made a path ambiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    DotSegment,
    DotSegmentWithParameter,
    EncodedSlash,
    EncodedBackslash,
    RawBackslash,
    DoubleEncoding,
}

/// The first ambiguous form in a path: which, spelled as sent (only dots, `%`, hex digits,
/// `;` and `\`: never a parameter's value), and in which `/`-separated segment (the one
/// after the first `/` is 1).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Finding<'a> {
    pub form: Form,
    pub spelling: &'a str,
    pub segment: usize,
}

impl std::fmt::Display for Finding<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (s, n) = (self.spelling, self.segment);
        match self.form {
            Form::DotSegment if s.contains('%') => {
                write!(
                    f,
                    "path segment {n} is `{s}`, a percent-encoded dot segment"
                )
            }
            Form::DotSegment => write!(f, "path segment {n} is the dot segment `{s}`"),
            Form::DotSegmentWithParameter => write!(
                f,
                "path segment {n} is the dot segment `{s}` with a path parameter \
                 (a server that drops parameters reads a dot segment)"
            ),
            Form::EncodedSlash => write!(f, "path segment {n} holds an encoded slash `{s}`"),
            Form::EncodedBackslash => {
                write!(f, "path segment {n} holds an encoded backslash `{s}`")
            }
            Form::RawBackslash => write!(f, "path segment {n} holds a raw backslash"),
            Form::DoubleEncoding => write!(
                f,
                "path segment {n} holds double percent-encoding `{s}` (an encoded `%` \
                 before hex digits: decoded twice it is another character)"
            ),
        }
    }
}

/// The byte a `%XY` escape at `i` stands for, when `XY` are hex digits.
fn escape_at(b: &[u8], i: usize) -> Option<u8> {
    let hex = |c: u8| (c as char).to_digit(16);
    match (b.get(i), b.get(i + 1), b.get(i + 2)) {
        (Some(b'%'), Some(&h), Some(&l)) => Some((hex(h)? * 16 + hex(l)?) as u8),
        _ => None,
    }
}

/// One character at `i` decoded once (an escape or a raw byte), and where the next starts.
fn unit_at(b: &[u8], i: usize) -> Option<(u8, usize)> {
    match escape_at(b, i) {
        Some(c) => Some((c, i + 3)),
        None => b.get(i).map(|&c| (c, i + 1)),
    }
}

/// Where the two hex digits that follow a decoded `%` end, if they are hex digits once
/// decoded (double encoding).
fn hex_pair_at(b: &[u8], i: usize) -> Option<usize> {
    let (first, i) = unit_at(b, i)?;
    let (second, end) = unit_at(b, i)?;
    (first.is_ascii_hexdigit() && second.is_ascii_hexdigit()).then_some(end)
}

/// The first ambiguous form in `path`; `allow_slash` lets `%2F` pass (it then separates
/// segments for the dot-segment check, as a decoding proxy would).
pub(crate) fn find(path: &str, allow_slash: bool) -> Option<Finding<'_>> {
    let b = path.as_bytes();
    let found = |form, from: usize, to: usize, segment| {
        Some(Finding {
            form,
            spelling: &path[from..to],
            segment,
        })
    };
    let (mut segment, mut start, mut i) = (0, 0, 0);
    while i < b.len() {
        match b[i] {
            b'/' => {
                if let Some(dots) = dot_form(path, start, i, segment) {
                    return Some(dots);
                }
                (segment, start, i) = (segment + 1, i + 1, i + 1);
            }
            b'\\' => return found(Form::RawBackslash, i, i + 1, segment),
            b'%' => match escape_at(b, i) {
                Some(b'/') if allow_slash => {
                    if let Some(dots) = dot_form(path, start, i, segment) {
                        return Some(dots);
                    }
                    (start, i) = (i + 3, i + 3);
                }
                Some(b'/') => return found(Form::EncodedSlash, i, i + 3, segment),
                Some(b'\\') => return found(Form::EncodedBackslash, i, i + 3, segment),
                Some(b'%') => match hex_pair_at(b, i + 3) {
                    Some(end) => return found(Form::DoubleEncoding, i, end, segment),
                    None => i += 3,
                },
                Some(_) => i += 3,
                None => match hex_pair_at(b, i + 1) {
                    Some(end) => return found(Form::DoubleEncoding, i, end, segment),
                    None => i += 1,
                },
            },
            _ => i += 1,
        }
    }
    dot_form(path, start, b.len(), segment)
}

/// The segment `path[start..end]` as a dot segment: `.` or `..` in any spelling, before
/// the end or a `;` (raw or `%3B`) that starts its parameters. Constant work: a dot
/// segment's name is at most six bytes (`%2e%2e`).
fn dot_form(path: &str, start: usize, end: usize, segment: usize) -> Option<Finding<'_>> {
    let b = &path.as_bytes()[..end];
    let (mut dots, mut i) = (0, start);
    while let Some((b'.', next)) = unit_at(b, i) {
        (dots, i) = (dots + 1, next);
        if dots > 2 {
            return None;
        }
    }
    if dots == 0 {
        return None;
    }
    let form = match unit_at(b, i) {
        None => Form::DotSegment,
        Some((b';', next)) => {
            return Some(Finding {
                form: Form::DotSegmentWithParameter,
                spelling: &path[start..next],
                segment,
            })
        }
        Some(_) => return None,
    };
    Some(Finding {
        form,
        spelling: &path[start..i],
        segment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(path: &str) -> Option<(Form, &str, usize)> {
        find(path, false).map(|f| (f.form, f.spelling, f.segment))
    }

    #[test]
    fn each_form_is_found_spelled_as_sent() {
        use Form::*;
        let cases = [
            ("/a/../b", (DotSegment, "..", 2)),
            ("/a/.", (DotSegment, ".", 2)),
            ("/public/%2e%2e/admin", (DotSegment, "%2e%2e", 2)),
            ("/x/.%2E/y", (DotSegment, ".%2E", 2)),
            ("/x/%2e./y", (DotSegment, "%2e.", 2)),
            ("/admin/..;/public", (DotSegmentWithParameter, "..;", 2)),
            (
                "/admin/..;jsessionid=s3cr3t/public",
                (DotSegmentWithParameter, "..;", 2),
            ),
            ("/admin/.;x=1", (DotSegmentWithParameter, ".;", 2)),
            (
                "/admin/..%3bx/public",
                (DotSegmentWithParameter, "..%3b", 2),
            ),
            ("/a%2Fb", (EncodedSlash, "%2F", 1)),
            ("/a/b%2f", (EncodedSlash, "%2f", 2)),
            ("/a%5cb", (EncodedBackslash, "%5c", 1)),
            ("/a\\b", (RawBackslash, "\\", 1)),
            ("/a/%252e%252e/b", (DoubleEncoding, "%252e", 2)),
            ("/a/%25%32%65", (DoubleEncoding, "%25%32%65", 2)),
            ("/a/%%32%65", (DoubleEncoding, "%%32%65", 2)),
            ("/a/%2%65", (DoubleEncoding, "%2%65", 2)),
            ("/%25252e", (DoubleEncoding, "%2525", 1)),
        ];
        for (path, want) in cases {
            assert_eq!(form(path), Some(want), "{path}");
        }
    }

    #[test]
    fn ordinary_paths_pass() {
        for path in [
            "/",
            "",
            "*",
            "/a/b/",
            "//a//b",
            "/v1.2/files/report.final.pdf",
            "/.well-known/openid-configuration",
            "/a..b/..a/a../.../....",
            "/hello%20world/a+b/caf%C3%A9/café/@me/a:b/~x/a,b/a=b/!",
            "/50%25-off/100%25/%zz/end%/a%2e/x%2Ey/%2e%2e%2e",
            "/files;v=1/x;y",
            "/%41%42/%3B",
        ] {
            assert_eq!(form(path), None, "{path}");
        }
    }

    #[test]
    fn allowed_encoded_slashes_still_separate_dot_segments() {
        assert_eq!(find("/projects/group%2Fname/x", true), None);
        let f = find("/projects/a%2F..%2Fadmin", true).unwrap();
        assert_eq!((f.form, f.spelling), (Form::DotSegment, ".."));
        let f = find("/p/a%2F%2e%2e", true).unwrap();
        assert_eq!((f.form, f.spelling), (Form::DotSegment, "%2e%2e"));
        assert_eq!(find("/a%5Cb", true).unwrap().form, Form::EncodedBackslash);
    }

    #[test]
    fn a_long_path_is_one_pass() {
        let path = format!("/{}", "%2e.a/".repeat(10_000));
        assert_eq!(find(&path, false), None);
        let path = format!("/{}..", "a/".repeat(30_000));
        assert_eq!(find(&path, false).unwrap().segment, 30_001);
    }
}
