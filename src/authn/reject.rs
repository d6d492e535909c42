//! The request carries no credential that a configured scheme took: name what is wrong
//! with it, from the evidence, in the wording the diagnosis of the wrapped service shares.

use super::basic::{with_wrapped_token_hint, wraps_token};
use super::{expected_names, AuthScheme};
use crate::evidence::{printable_scheme, Evidence, Expected};
use crate::failure::{AuthFailure, Location};
use crate::reason::Reason;
use crate::sanitize::{cap, fingerprint};
use crate::scheme::Scheme;
use std::sync::Arc;

/// Why no configured scheme took the request.
pub(super) fn unaccepted(ev: &Evidence<'_>, schemes: &[Arc<dyn AuthScheme>]) -> AuthFailure {
    let names = expected_names(schemes);
    if let Some(f) = ev.explain_unparsed() {
        let spoken = f.facts().received_scheme().and_then(Scheme::from_word);
        let reason = f.reason();
        return match schemes.iter().find(|s| Some(s.kind()) == spoken) {
            Some(s) if s.unreadable(f.clone()).reason() != reason => {
                s.unreadable(f).expected(s.describe())
            }
            _ => f.expected(names),
        };
    }
    if let Some((word, rest)) = ev.scheme_and_rest() {
        return scheme_not_accepted(word, rest, schemes).expected(names);
    }
    // One scheme (the usual case) needs no list and no join.
    let how = match schemes {
        [one] => one.how_to_send(),
        many => many
            .iter()
            .map(|s| s.how_to_send())
            .collect::<Vec<_>>()
            .join(" or ")
            .into(),
    };
    let reads = |name: &str| schemes.iter().any(|s| s.reads_header(name));
    let expected = Expected {
        names: names.clone(),
        how: Some(how),
        reads_header: &reads,
    };
    ev.explain_elsewhere(&expected, false).expected(names)
}

/// `Authorization` speaks a scheme no configured one took: `scheme_not_accepted`, or a
/// scheme's credential in the wrong place (an API key as `Authorization: ApiKey …`).
fn scheme_not_accepted(word: &str, rest: &str, schemes: &[Arc<dyn AuthScheme>]) -> AuthFailure {
    let printable = printable_scheme(word);
    let f = schemes
        .iter()
        .find_map(|s| s.misplaced(word))
        .unwrap_or_else(|| {
            AuthFailure::new(Reason::SchemeNotAccepted).detail(format!(
                "Authorization uses {}, this resource accepts {}",
                cap(printable),
                expected_names(schemes)
            ))
        })
        .received(Some(printable));
    let f = if Scheme::from_word(word) == Some(Scheme::Basic) && wraps_token(rest) {
        with_wrapped_token_hint(f)
    } else {
        f
    };
    f.location(Location::Authorization)
        .fingerprint(fingerprint(rest.as_bytes()))
}
