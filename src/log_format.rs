//! [`OneLine`]: a tracing-subscriber event format for people reading a terminal.

use crate::sanitize::is_invisible_format;
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// An event format (feature `log-format`) that writes every event on one line, and a
/// failure event of this crate as its reason code, then the fix, then what happened, then
/// the facts:
///
/// ```text
/// 2026-11-30T03:12:09.120417Z  WARN token_expired: <the reason's hint> | <what happened> | client_reason=invalid_token status=401 request_id=4f0c… method=GET path=/me …
/// ```
///
/// Other events are `time LEVEL target: message key=value …`. Values with spaces are
/// quoted; control characters, line separators and bidirectional controls are escaped, so
/// one event is always one line; a `|` in the hint or the detail is escaped, so client
/// text quoted there cannot forge the facts section. For JSON
/// logs keep tracing-subscriber's `json()` format: the fields are the same.
///
/// ```
/// use auth_diagnostics::layer::OneLine;
///
/// let subscriber = tracing_subscriber::fmt()
///     .event_format(OneLine::default())
///     .finish();
/// # let _ = subscriber;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct OneLine {
    without_time: bool,
}

impl OneLine {
    /// Leaves the timestamp out (when the terminal or journald adds its own).
    #[must_use]
    pub fn without_time(mut self) -> Self {
        self.without_time = true;
        self
    }
}

/// An event's fields in the order it recorded them, as text.
#[derive(Default)]
struct Fields {
    message: String,
    all: Vec<(&'static str, String)>,
}

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.all
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.all.push((field.name(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.all.push((field.name(), format!("{value:?}")));
        }
    }
}

/// Writes `text` on the current line: control characters, line and paragraph separators
/// and bidirectional controls escaped (`\n`, `\u{2028}`), so nothing breaks the line or
/// reorders it; and in `quoting` the backslash, the quote and the `|` that separates the
/// line's sections, so client text cannot forge one.
fn escaped(out: &mut Writer<'_>, text: &str, quoting: &[char]) -> fmt::Result {
    for c in text.chars() {
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c.is_control() || is_invisible_format(c) => write!(out, "\\u{{{:x}}}", c as u32)?,
            c if quoting.contains(&c) => write!(out, "\\{c}")?,
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

/// Prose (the hint, the detail): `|` escaped, backslashes left as they are (the crate's
/// values come escaped already).
fn prose(out: &mut Writer<'_>, text: &str) -> fmt::Result {
    escaped(out, text, &['|'])
}

/// ` key=value`, the value quoted when it is empty or has a space, a quote or a `|`;
/// backslashes and quotes escaped alike either way.
fn field(out: &mut Writer<'_>, name: &str, value: &str) -> fmt::Result {
    write!(out, " {name}=")?;
    let quote = value.is_empty() || value.contains([' ', '"', '|']);
    if quote {
        out.write_char('"')?;
    }
    escaped(out, value, &['\\', '"'])?;
    if quote {
        out.write_char('"')?;
    }
    Ok(())
}

impl<S, N> FormatEvent<S, N> for OneLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut out: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if !self.without_time {
            SystemTime.format_time(&mut out)?;
            out.write_char(' ')?;
        }
        let level = *meta.level();
        let pad = if level == Level::INFO || level == Level::WARN {
            " "
        } else {
            ""
        };
        write!(out, "{pad}{level} ")?;
        let mut fields = Fields::default();
        event.record(&mut fields);
        let reason = fields
            .get("reason")
            .filter(|_| meta.target() == "auth_diagnostics");
        match reason {
            // A failure: the reason code, the fix, what happened, the facts.
            Some(reason) => {
                prose(&mut out, reason)?;
                out.write_str(": ")?;
                if let Some(hint) = fields.get("hint") {
                    prose(&mut out, hint)?;
                    out.write_str(" | ")?;
                }
                let prefix = format!("{reason}: ");
                let detail = fields
                    .message
                    .strip_prefix(&prefix)
                    .unwrap_or(&fields.message);
                prose(&mut out, detail)?;
                out.write_str(" |")?;
                for (name, value) in &fields.all {
                    if !matches!(*name, "reason" | "hint") {
                        field(&mut out, name, value)?;
                    }
                }
            }
            None => {
                write!(out, "{}: ", meta.target())?;
                prose(&mut out, &fields.message)?;
                for (name, value) in &fields.all {
                    field(&mut out, name, value)?;
                }
            }
        }
        writeln!(out)
    }
}
