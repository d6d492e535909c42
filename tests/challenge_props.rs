//! Whatever text reaches a challenge (realm, error_description, scope), the header parses
//! with an independent parser and holds only the characters the RFCs allow.

mod common;

use auth_diagnostics::failure::{AuthFailure, Challenge};
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
        let c = parse_challenge(&value);
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
        let c = parse_challenge(&values[0]);
        prop_assert_eq!(c.param("error"), Some("insufficient_scope"));
        // `send` checked the problem body and that the event has no raw control character.
        prop_assert_eq!(&out.problem()["reason"], "insufficient_scope");
        prop_assert_eq!(out.events.len(), 1);
    }
}
