//! `http-auth`'s `WWW-Authenticate` parser: the second, independent reading every challenge
//! the layer sends is checked against.

use crate::Independent;

/// Every challenge of one field value, parameter values unescaped, or why the value does
/// not follow RFC 9110 §11.6.1.
pub(crate) fn parse(text: &str) -> Result<Vec<Independent>, String> {
    let parsed = http_auth::parse_challenges(text).map_err(|e| e.to_string())?;
    Ok(parsed
        .iter()
        .map(|c| Independent {
            scheme: c.scheme.to_owned(),
            params: c
                .params
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.to_unescaped()))
                .collect(),
        })
        .collect())
}
