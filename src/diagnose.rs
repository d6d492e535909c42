//! Zero-configuration diagnosis: when the wrapped service answers 401 or 403 by itself,
//! name the most precise reason the request shows, from its credentials alone, in the
//! evidence's wording. Every reason found here is marked inferred: nothing was verified.

use crate::authn::{conflict, diagnose_spoken};
use crate::evidence::{credential_part, printable_scheme, Evidence, Expected};
use crate::failure::{AuthFailure, Location};
use crate::reason::Reason;
use crate::sanitize::{cap, fingerprint};
use std::borrow::Cow;

/// The most precise reason the request itself explains, marked inferred. `names` is what
/// the layer expects, in words.
pub(crate) fn diagnose(ev: &Evidence<'_>, names: Cow<'static, str>) -> AuthFailure {
    let found = conflict(ev, &[])
        .or_else(|| ev.explain_unparsed())
        .or_else(|| authorization(ev));
    let f = found.unwrap_or_else(|| {
        let expected = Expected {
            names,
            how: None,
            reads_header: &|_| false,
        };
        ev.explain_elsewhere(&expected, true)
    });
    f.inferred(true)
}

/// `Authorization: <scheme> <credentials>` the application refused: what the credentials
/// alone say about why.
fn authorization(ev: &Evidence<'_>) -> Option<AuthFailure> {
    let (word, rest) = ev.scheme_and_rest()?;
    let printable = printable_scheme(word);
    let f = diagnose_spoken(word, rest).unwrap_or_else(|| {
        AuthFailure::new(Reason::CredentialsInvalid).detail(format!(
            "the application rejected the {} credentials",
            cap(printable)
        ))
    });
    let raw = ev.authorization().unwrap_or_default();
    Some(
        f.received(Some(printable))
            .location(Location::Authorization)
            .fingerprint(fingerprint(credential_part(raw))),
    )
}
