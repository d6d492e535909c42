//! What a token's `cnf` claim (RFC 7800) binds it to: a DPoP key (`jkt`, RFC 9449), a
//! client certificate (`x5t#S256`, RFC 8705), a raw key (`jwk`) or another method. A route
//! accepts a bound token only when it can check every method the token names: without the
//! proof of possession, a bound token is what a thief would send.

use super::Principal;
use crate::failure::AuthFailure;
use crate::reason::Reason;
use crate::sanitize::cap;
use serde_json::Value;

/// The confirmation methods of a verified token. Its shape (an object, a string `jkt`)
/// was checked with the other claims.
pub(crate) struct Confirmation<'a> {
    /// The DPoP key thumbprint (`cnf.jkt`).
    pub jkt: Option<&'a str>,
    /// The first member no scheme of this crate verifies yet.
    pub other: Option<&'a str>,
}

/// The confirmation methods `principal`'s token names (none for other principals).
pub(crate) fn of(principal: &Principal) -> Confirmation<'_> {
    let cnf = principal
        .claims()
        .and_then(|c| c.get("cnf"))
        .and_then(Value::as_object);
    Confirmation {
        jkt: cnf.and_then(|c| c.get("jkt")).and_then(Value::as_str),
        other: cnf.and_then(|c| c.keys().map(String::as_str).find(|k| *k != "jkt")),
    }
}

/// `token_binding_unverifiable` for a token bound by `member`, which this route cannot
/// check.
pub(crate) fn unverifiable(member: &str) -> AuthFailure {
    let how = match member {
        "x5t#S256" => "a client certificate (RFC 8705)",
        "jwk" | "jwe" | "jku" | "kid" => "a proof-of-possession key (RFC 7800)",
        _ => "a confirmation method this server does not know",
    };
    AuthFailure::new(Reason::TokenBindingUnverifiable)
        .claim("cnf")
        .check("cnf")
        .detail(format!(
            "the token is bound to {how} (cnf.{}), which this route cannot verify",
            cap(member)
        ))
}
