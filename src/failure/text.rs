//! [`Text`]: a failure's detail or hint, joined from its parts only when it is read.
//!
//! Most refusals are never read in words: a production body does not show the detail or
//! the hint, and flood control holds most events back. A text made of constant parts and
//! one configured name (`no credentials; expected Bearer`) is kept as its parts, and
//! joined (one allocation) the first time something reads it.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

/// Text kept as up to three parts, joined on first read.
#[derive(Clone, Default)]
pub(crate) struct Text {
    parts: [Cow<'static, str>; 3],
    joined: OnceLock<String>,
}

impl Text {
    /// `a`, `b` and `c`, joined when read.
    pub(crate) fn join(
        a: impl Into<Cow<'static, str>>,
        b: impl Into<Cow<'static, str>>,
        c: impl Into<Cow<'static, str>>,
    ) -> Self {
        Text {
            parts: [a.into(), b.into(), c.into()],
            joined: OnceLock::new(),
        }
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        match &self.parts {
            [one, b, c] if b.is_empty() && c.is_empty() => one,
            parts => self.joined.get_or_init(|| parts.concat()),
        }
    }
}

impl<T: Into<Cow<'static, str>>> From<T> for Text {
    fn from(text: T) -> Self {
        Text::join(text, "", "")
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::Text;

    #[test]
    fn joined_on_read_and_once() {
        let t = Text::join("no credentials; expected ", "Bearer", "");
        assert_eq!(t.as_str(), "no credentials; expected Bearer");
        assert!(std::ptr::eq(t.as_str(), t.as_str()), "joined once");
        assert_eq!(Text::from(String::from("as is")).as_str(), "as is");
        assert_eq!(format!("{:?}", Some(Text::from("a\"b"))), r#"Some("a\"b")"#);
        let cloned = t.clone();
        assert_eq!(cloned.as_str(), t.as_str());
    }
}
