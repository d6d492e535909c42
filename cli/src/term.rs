//! The one way out to the terminal: every line the commands print goes through [`emit`]
//! (text) or [`emit_json`] (JSON), which escape what a token, a HAR file or a server put
//! there and a terminal would act on: control characters (ESC, BEL, …) and bidirectional
//! or invisible formatting characters (U+202E, …). Our own colour codes are kept.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether colour is on for this run (set once by `main`).
static COLOR: AtomicBool = AtomicBool::new(false);

/// The colour codes `paint` writes: the only escape sequences let through, and only when
/// colour is on.
const OUR_CODES: &[&str] = &["0", "1", "2", "31", "32", "33", "1;31"];

/// Turns colour on or off for [`emit`].
pub(crate) fn set_color(on: bool) {
    COLOR.store(on, Ordering::Relaxed);
}

/// Whether colour is on.
pub(crate) fn color() -> bool {
    COLOR.load(Ordering::Relaxed)
}

/// Prints `text` and a newline on stdout, made safe for a terminal.
pub(crate) fn emit(text: &str) {
    println!("{}", safe_text(text, color()));
}

/// Prints JSON text on stdout with the characters serde_json leaves raw (DEL, C1
/// controls, bidi and invisible formatting characters) written as `\uXXXX` escapes, so
/// the output stays valid JSON with the same meaning.
pub(crate) fn emit_json(json: &str) {
    println!("{}", safe_json(json));
}

/// Whether a terminal would act on `c`, or it hides or reorders text.
fn dangerous(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t' || invisible_format(c)
}

/// Bidirectional controls and invisible formatting characters: text that reorders or hides
/// what a person reads ("Trojan Source", CVE-2021-42574); and the Unicode line and
/// paragraph separators, which some terminals break a line at. The set the library's log
/// escapes.
fn invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// `text` with every dangerous character escaped (`\u{1b}`), except the colour codes
/// `paint` writes when `color` is on.
pub(crate) fn safe_text(text: &str, color: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\u{1b}' && color {
            if let Some(len) = our_code(rest) {
                out.push_str(&rest[..len]);
                rest = &rest[len..];
                continue;
            }
        }
        if dangerous(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The length of the colour code `paint` writes at the start of `text`, if one is there.
fn our_code(text: &str) -> Option<usize> {
    let body = text.strip_prefix("\u{1b}[")?;
    let end = body.find('m')?;
    OUR_CODES.contains(&&body[..end]).then_some(end + 3)
}

/// JSON text with dangerous characters as `\uXXXX` (all of them lie in the BMP; JSON
/// text has them only inside strings, where the escape means the same character).
pub(crate) fn safe_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if dangerous(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_all_but_our_colours() {
        let hostile = "a\u{1b}[2J b\u{1b}]0;t\u{7} c\u{202e}d \u{1b}[31m";
        let plain = safe_text(hostile, false);
        assert!(!plain.contains(['\u{1b}', '\u{7}', '\u{202e}']), "{plain}");
        let painted = format!("\u{1b}[1;31mX\u{1b}[0m {hostile}");
        let colored = safe_text(&painted, true);
        assert!(colored.starts_with("\u{1b}[1;31mX\u{1b}[0m "), "{colored}");
        assert!(!colored.contains("\u{1b}[2J") && !colored.contains('\u{7}'));
        let json = safe_json(&serde_json::json!({ "x": "\u{202e}\u{9b}" }).to_string());
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["x"], "\u{202e}\u{9b}");
        assert!(!json.contains('\u{202e}'));
    }
}
