//! `http-auth`'s `WWW-Authenticate` parser in the shape `auth_diagnostics::fuzzing` checks
//! challenges against. Shared by the fuzz targets and `tests/fuzz_replay.rs`.

use auth_diagnostics::fuzzing::ParsedChallenge;

/// Every challenge of one field value, parameter values unescaped.
pub fn parse(text: &str) -> Result<Vec<ParsedChallenge>, String> {
    let parsed = http_auth::parse_challenges(text).map_err(|e| e.to_string())?;
    Ok(parsed
        .iter()
        .map(|c| ParsedChallenge {
            scheme: c.scheme.to_owned(),
            params: c
                .params
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.to_unescaped()))
                .collect(),
        })
        .collect())
}
