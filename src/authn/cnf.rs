//! What a token's `cnf` claim (RFC 7800) binds it to: a DPoP key (`jkt`, RFC 9449), a
//! client certificate (`x5t#S256`, RFC 8705), a raw key (`jwk`) or another method. A route
//! accepts a bound token only when it can check every method the token names: without the
//! proof of possession, a bound token is what a thief would send.

use super::Principal;
use crate::certificate::{matches, Presented, Seen};
use crate::failure::AuthFailure;
use crate::reason::Reason;
use crate::sanitize::cap;
use serde_json::Value;

/// The certificate thumbprint member of `cnf` (RFC 8705 §3.1).
const X5T: &str = "x5t#S256";

/// The confirmation methods of a verified token. Its shape (an object, a string `jkt`)
/// was checked with the other claims.
pub(crate) struct Confirmation<'a> {
    /// The DPoP key thumbprint (`cnf.jkt`).
    pub jkt: Option<&'a str>,
    /// The client certificate thumbprint (`cnf.x5t#S256`), checked by [`certificate`].
    pub x5t: Option<&'a Value>,
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
        x5t: cnf.and_then(|c| c.get(X5T)),
        other: cnf.and_then(|c| {
            c.keys()
                .map(String::as_str)
                .find(|k| *k != "jkt" && *k != X5T)
        }),
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

/// The client-certificate binding of `principal`'s token (RFC 8705 §3): none, or
/// `cnf.x5t#S256` equal to the thumbprint of the certificate the request `presented`.
/// `presented` is `None` where the layer has no certificate source: then a bound token is
/// `token_binding_unverifiable`, as before any source existed.
pub(crate) fn certificate(
    principal: &Principal,
    presented: Option<&Presented>,
) -> Result<(), AuthFailure> {
    let Some(x5t) = of(principal).x5t else {
        return Ok(());
    };
    let Some(presented) = presented else {
        return Err(unverifiable(X5T));
    };
    let failure = |reason| AuthFailure::new(reason).claim("cnf").check("cnf.x5t#S256");
    match presented.read() {
        Seen::Certificate { thumbprint, from } => match x5t.as_str() {
            Some(x5t) if matches(x5t, &thumbprint) => Ok(()),
            Some(_) => Err(failure(Reason::CertificateMismatch).detail(format!(
                "the SHA-256 thumbprint of the client certificate from {from} is not the \
                 token's cnf.x5t#S256"
            ))),
            None => Err(failure(Reason::CertificateMismatch)
                .detail("the token's cnf.x5t#S256 is not a string")),
        },
        Seen::Missing => Err(failure(Reason::CertificateMissing).detail(
            "the token is bound to a client certificate (cnf.x5t#S256) and the request \
             presented none",
        )),
        Seen::Malformed { header, detail } => {
            Err(failure(Reason::CertificateMissing).detail(format!(
                "the token is bound to a client certificate (cnf.x5t#S256); the {} header \
                 of the trusted proxy holds none: {detail}",
                cap(header)
            )))
        }
        Seen::Untrusted { header, peer } => Err(failure(Reason::CertificateHeaderUntrusted)
            .detail(format!(
                "the token is bound to a client certificate (cnf.x5t#S256); the only one \
                 came in the {} header from {peer}, which is not a trusted proxy, and was \
                 ignored",
                cap(header)
            ))),
    }
}
