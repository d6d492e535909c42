//! Small helpers the subcommands share: times as people read them, and URLs as they may be
//! shown. The command's own: it uses only the library's public API.

use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use url::Url;

/// Seconds since the epoch, now.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Seconds since the epoch as RFC 3339 UTC, e.g. `2026-11-27T03:35:00Z`, for any `i64` (a
/// claim may hold any). humantime writes the years 1970 to 9999; the Gregorian calendar
/// repeats every 400 years, so a time is written as the same moment of the first such
/// cycle after 1970 and its year moved back by the cycles skipped.
pub(crate) fn rfc3339(secs: i64) -> String {
    const CYCLE: i64 = 146_097 * 86_400;
    let within = Duration::from_secs(secs.rem_euclid(CYCLE).unsigned_abs());
    let shown = humantime::format_rfc3339_seconds(UNIX_EPOCH + within).to_string();
    let (year, rest) = shown.split_once('-').unwrap_or(("1970", &shown));
    let year = year.parse::<i64>().unwrap_or(1970) + 400 * secs.div_euclid(CYCLE);
    format!("{year:04}-{rest}")
}

/// A duration in seconds as a person says it: `3h 2m`, `45s`, `2d 1h`: its largest unit
/// that is not zero (seconds at least) and the next one.
pub(crate) fn human_duration(secs: u64) -> String {
    let parts = [
        (secs / 86_400, 'd'),
        (secs % 86_400 / 3600, 'h'),
        (secs % 3600 / 60, 'm'),
        (secs % 60, 's'),
    ];
    let largest = parts[..3].iter().position(|&(n, _)| n > 0).unwrap_or(3);
    let shown: Vec<String> = parts[largest..]
        .iter()
        .take(2)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    shown.join(" ")
}

/// A JWT NumericDate (`exp`, `nbf`, `iat`): whole seconds, fractions dropped (RFC 7519 §2).
pub(crate) fn numeric_date(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// A URL as the command prints it: without its query and fragment, and with its password
/// masked (`https://user:secret@host/jwks?k=v` is `https://user:***@host/jwks`), as the
/// library's log shows a key source. It is the URL as the HTTP client parses it. Text that
/// is no URL with a host shows none of its user-info: a password with an unescaped `/`,
/// `?` or `#` makes a URL invalid, and where its user-info ends is then a guess.
pub(crate) fn shown_url(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if url.has_host() => {
            url.set_query(None);
            url.set_fragment(None);
            if !url.username().is_empty() || url.password().is_some() {
                // Cannot fail: the URL has a host.
                let _ = url.set_password(Some("***"));
            }
            url.into()
        }
        _ if text.contains('@') => match text.split_once("://") {
            Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
                format!("{scheme}://*** (not a valid URL)")
            }
            _ => "*** (not a valid URL)".to_owned(),
        },
        _ => text.split(['?', '#']).next().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_durations() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_750_500), "2026-11-27T03:35:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_800), "10000-01-01T00:00:00Z");
        assert_eq!(rfc3339(i64::MIN), "-292277022657-01-27T08:29:52Z");
        assert_eq!(rfc3339(i64::MAX), "292277026596-12-04T15:30:07Z");
        assert_eq!(human_duration(3 * 3600 + 120), "3h 2m");
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(54 * 60 + 30), "54m 30s");
        assert_eq!(human_duration(2 * 86_400 + 3600 + 59), "2d 1h");
        assert_eq!(human_duration(86_400), "1d 0h");
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
        assert_eq!(
            shown_url("http://alice:secret@127.0.0.1:99999/me?k=v"),
            "http://*** (not a valid URL)"
        );
        assert_eq!(shown_url("alice:secret@host/jwks"), "*** (not a valid URL)");
        assert_eq!(
            shown_url("https://alice@host/jwks"),
            "https://alice:***@host/jwks"
        );
        assert_eq!(
            shown_url("https://host:99999/jwks?k=v"),
            "https://host:99999/jwks"
        );
    }
}
