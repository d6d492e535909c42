//! Whatever text reaches a challenge (realm, error_description, scope), the header parses
//! with an independent parser and holds only the characters the RFCs allow.

mod common;

use auth_diagnostics::{AuthDiagnostics, AuthFailure, Challenge, Reason};
use axum::routing;
use axum::Router;
use common::*;
use proptest::prelude::*;

fn is_6750_text(c: char) -> bool {
    matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

fn is_scope_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

/// Parses one challenge field line; panics with the text when it does not parse.
fn parse(value: &http::HeaderValue) -> ParsedChallenge {
    let bytes = value.as_bytes();
    assert!(
        bytes
            .iter()
            .all(|&b| b == b' ' || (0x21..=0x7e).contains(&b)),
        "non-visible byte in {value:?}"
    );
    let text = value.to_str().unwrap();
    let parsed = http_auth::parse_challenges(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert_eq!(parsed.len(), 1);
    ParsedChallenge {
        scheme: parsed[0].scheme.to_owned(),
        params: parsed[0]
            .params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_unescaped()))
            .collect(),
    }
}

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\"\\\\\r\n\t \u{0}\u{7f}a-z=,;]{0,40}",
        Just("\"\r\nSet-Cookie: x=1".to_owned()),
        Just("\\\"".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text_yields_a_parseable_challenge(realm in hostile(), desc in hostile(), scope in hostile()) {
        let value = Challenge::new("Bearer")
            .realm(&realm)
            .error("invalid_token")
            .error_description(&desc)
            .scope([scope.as_str()])
            .to_header_value();
        let c = parse(&value);
        prop_assert_eq!(c.scheme.as_str(), "Bearer");
        prop_assert!(c.param("realm").is_some());
        prop_assert_eq!(c.param("error"), Some("invalid_token"));
        if let Some(d) = c.param("error_description") {
            prop_assert!(d.chars().all(is_6750_text), "bad description {:?}", d);
        }
        if let Some(s) = c.param("scope") {
            prop_assert!(!s.is_empty() && !s.starts_with(' ') && !s.ends_with(' ') && !s.contains("  "));
            prop_assert!(s.split(' ').all(|t| t.chars().all(is_scope_char)), "bad scope {:?}", s);
        }
        // Printable ASCII realms survive exactly (escaped, then unescaped by the parser).
        if realm.chars().all(|c| (' '..='~').contains(&c)) {
            prop_assert_eq!(c.param("realm"), Some(realm.as_str()));
        }
    }

    #[test]
    fn the_layer_sanitizes_what_handlers_and_config_give_it(realm in hostile(), detail in hostile(), scope in hostile()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (d, s) = (detail.clone(), scope.clone());
        let app = Router::new()
            .route("/", routing::get(move || {
                let (d, s) = (d.clone(), s.clone());
                async move { AuthFailure::new(Reason::InsufficientScope).detail(d).scope(s) }
            }))
            .layer(AuthDiagnostics::new().realm(realm.clone()).verbose());
        let out = rt.block_on(send(app, get("/", &[])));
        prop_assert_eq!(out.status, 403);
        let values: Vec<_> = out.headers.get_all("www-authenticate").iter().cloned().collect();
        prop_assert_eq!(values.len(), 1);
        let c = parse(&values[0]);
        prop_assert_eq!(c.param("error"), Some("insufficient_scope"));
        // The problem body is valid JSON and the log event has no raw CR/LF anywhere.
        prop_assert_eq!(&out.problem()["reason"], "insufficient_scope");
        for v in out.event().fields.values() {
            prop_assert!(!v.contains('\r') && !v.contains('\n'), "raw newline in {:?}", v);
        }
    }
}
