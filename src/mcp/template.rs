//! Resource URI templates (RFC 6570, as MCP resource templates are written), matched
//! generously: every `{…}` expression stands for any text, `/` and `?` included, so a
//! template matches at least every URI a server's own template matching could route to it.

/// A template, split at its expressions: the literal text between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    literals: Vec<String>,
}

impl Template {
    /// `text` as a template, or `None` when it has no expression (a plain URI).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        if !text.contains('{') {
            return None;
        }
        let mut literals = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            literals.push(rest[..open].to_owned());
            rest = match rest[open..].find('}') {
                Some(close) => &rest[open + close + 1..],
                // An expression that never closes runs to the end.
                None => "",
            };
        }
        literals.push(rest.to_owned());
        Some(Self { literals })
    }

    /// Whether `uri` is one of the template's expansions, every expression taking any
    /// text (the empty text included).
    pub(crate) fn matches(&self, uri: &str) -> bool {
        let (first, last) = (&self.literals[0], &self.literals[self.literals.len() - 1]);
        let Some(mut rest) = uri.strip_prefix(first.as_str()) else {
            return false;
        };
        let middle = &self.literals[1..self.literals.len() - 1];
        for literal in middle {
            // Leftmost is best when the gaps take any text: it leaves the most for the rest.
            match rest.find(literal.as_str()) {
                Some(at) => rest = &rest[at + literal.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansions_match() {
        let t = Template::parse("test://template/{id}/data").unwrap();
        for uri in [
            "test://template/1/data",
            "test://template//data",
            "test://template/a/b/data",
        ] {
            assert!(t.matches(uri), "{uri}");
        }
        for uri in [
            "test://template/1/dat",
            "test://template/1",
            "test://other/1/data",
        ] {
            assert!(!t.matches(uri), "{uri}");
        }
        let t = Template::parse("file:///{+path}{?q}").unwrap();
        assert!(t.matches("file:///etc/passwd?q=1"));
        let t = Template::parse("a{x}b{y}b").unwrap();
        assert!(!t.matches("ab") && t.matches("abb") && t.matches("a1b2b3b"));
        assert!(Template::parse("file:///plain").is_none());
        let t = Template::parse("x://{open").unwrap();
        assert!(t.matches("x://anything"));
    }
}
