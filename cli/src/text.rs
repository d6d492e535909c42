//! Small helpers the subcommands share: times as people read them, and URLs as they may be
//! shown. The command's own: it uses only the library's public API.

use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, now.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Seconds since the epoch as RFC 3339 UTC, e.g. `2026-11-27T03:35:00Z`.
pub(crate) fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A duration in seconds as a person says it: `3h 2m`, `45s`, `2d 1h`.
pub(crate) fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// A JWT NumericDate (`exp`, `nbf`, `iat`): whole seconds, fractions dropped (RFC 7519 §2).
pub(crate) fn numeric_date(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// A URL as the command prints it: without its query and fragment, and with its password
/// masked (`https://user:secret@host/jwks?k=v` is `https://user:***@host/jwks`), as the
/// library's log shows a key source.
pub(crate) fn shown_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority = &rest[..rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len())];
        let port = authority.rsplit_once(':').map_or("", |(_, port)| port);
        let bad_port = !authority.ends_with(']') && port.contains(|c: char| !c.is_ascii_digit());
        if rest.contains('@') && !authority.contains('@') && bad_port {
            // A password with an unescaped `/`, `?` or `#` makes the URL invalid, and
            // where its user-info ends a guess: show none of it.
            return format!("{scheme}://*** (not a valid URL)");
        }
    }
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '\\']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let user = rest[..at].split(':').next().unwrap_or_default();
    let scheme = scheme.map(|s| format!("{s}://")).unwrap_or_default();
    format!("{scheme}{user}:***@{}", &rest[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_durations() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_750_500), "2026-11-27T03:35:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(human_duration(3 * 3600 + 120), "3h 2m");
        assert_eq!(numeric_date(&Value::from(1.9)), Some(1));
    }

    #[test]
    fn urls_are_shown_without_secrets() {
        assert_eq!(
            shown_url("https://user:secret@host/jwks?k=v#f"),
            "https://user:***@host/jwks"
        );
        assert_eq!(shown_url("https://host/jwks?k=v"), "https://host/jwks");
        assert_eq!(
            shown_url("https://u:p/w@host/jwks"),
            "https://*** (not a valid URL)"
        );
    }
}
