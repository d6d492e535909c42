//! What an authenticated principal may do: scopes and step-up per route, the account's
//! state, a 404 instead of a 403 where a resource must not be seen to exist, and the RFC
//! 9728 document that tells clients where to get a token.
//!
//! - [`RequireScope`] (a `route_layer`) answers 403 `insufficient_scope` with the `scope`
//!   the route needs when the principal lacks one;
//!   [`AuthDiagnostics::require_scope`](crate::AuthDiagnostics::require_scope) requires
//!   scopes of every request of a layer and names them on every 401.
//! - [`RequireStepUp`] (RFC 9470) requires a strong or recent enough login per route:
//!   401 `insufficient_user_authentication` with `acr_values` and `max_age`.
//! - [`CheckAccount`], given to
//!   [`AuthDiagnostics::account_status`](crate::AuthDiagnostics::account_status), is asked
//!   about every principal: a disabled or locked account is 403, whatever its token says.
//! - [`HideForbidden`] answers 404 instead of 403 on the routes it is put on.
//! - [`McpScopes`] requires scopes per MCP method and per tool, resource or prompt (from
//!   the `Mcp-Method` and `Mcp-Name` headers and the JSON-RPC body): 403
//!   `insufficient_scope` naming every scope the call needs.
//! - [`ResourceMetadata`] is the RFC 9728 document naming the authorization servers; with
//!   [`AuthDiagnostics::resource_metadata`](crate::AuthDiagnostics::resource_metadata) the
//!   layer serves it and points every Bearer and DPoP challenge at it.
//!
//! ```
//! use auth_diagnostics::authz::RequireScope;
//! use auth_diagnostics::jwt::JwtAuthenticator;
//! use auth_diagnostics::keys::StaticKey;
//! use auth_diagnostics::AuthDiagnostics;
//! use axum::{body::Body, http::Request, routing::delete, Router};
//! use jsonwebtoken::{encode, EncodingKey, Header};
//! use serde_json::json;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let jwt = JwtAuthenticator::new(StaticKey::hs256("a-secret-of-32-bytes-or-more...."))
//!     .issuer("https://issuer.example")
//!     .audience("orders-api");
//! let app = Router::new()
//!     .route("/orders/{id}", delete(|| async { "deleted" }))
//!     .route_layer(RequireScope::new(["orders:write"]))
//!     .layer(AuthDiagnostics::new().bearer(jwt));
//!
//! let claims = json!({"iss": "https://issuer.example", "aud": "orders-api", "sub": "alice",
//!                     "scope": "orders:read", "exp": jsonwebtoken::get_current_timestamp() + 300});
//! let key = EncodingKey::from_secret(b"a-secret-of-32-bytes-or-more....");
//! let token = encode(&Header::default(), &claims, &key).unwrap();
//! let response = app
//!     .oneshot(
//!         Request::delete("/orders/7")
//!             .header("authorization", format!("Bearer {token}"))
//!             .body(Body::empty())
//!             .unwrap(),
//!     )
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 403);
//! let challenge = response.headers()["www-authenticate"].to_str().unwrap();
//! assert!(challenge.contains(r#"error="insufficient_scope""#));
//! assert!(challenge.contains(r#"scope="orders:write""#));
//! # }
//! ```

pub use crate::authn::verify::{AccountStatus, CheckAccount, StatusFuture};
pub use crate::hide::{HideForbidden, HideFuture, HideService};
pub use crate::mcp::{McpFuture, McpScopes, McpScopesService};
pub use crate::resource::ResourceMetadata;
pub use crate::scope::{RequireFuture, RequireScope, RequireService};
pub use crate::step_up::RequireStepUp;
