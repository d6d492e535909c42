//! Whether a layer can verify the tokens it may be sent now ([`Readiness`]).

use serde_json::{json, Value};

/// Whether a layer can verify the tokens it may be sent now: the key sets its
/// authenticators fetch, for a `/readyz` route.
///
/// [`AuthDiagnostics::readiness`](crate::AuthDiagnostics::readiness) takes a snapshot
/// without waiting (where [`AuthDiagnostics::ready`](crate::AuthDiagnostics::ready) waits):
/// every [`KeySource`](crate::keys::KeySource) of its Bearer and DPoP authenticators, whether it
/// holds a key set, since when, and why its last fetch failed. URLs are shown without
/// their query and with a password as `user:***@`, so the answer can go to a probe as it is.
///
/// ```
/// use auth_diagnostics::jwt::JwtAuthenticator;
/// use auth_diagnostics::keys::KeySource;
/// use auth_diagnostics::AuthDiagnostics;
/// use axum::{http::StatusCode, routing::get, Json, Router};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Nothing listens on port 9: the key set cannot be fetched.
/// let keys = KeySource::jwks("http://127.0.0.1:9/jwks");
/// let layer = AuthDiagnostics::new().bearer(
///     JwtAuthenticator::from_source(keys)
///         .issuer("https://issuer.example")
///         .audience("my-api"),
/// );
/// let probe = layer.clone();
/// let app: Router = Router::new()
///     .route("/me", get(|| async { "me" }))
///     .layer(layer)
///     // Outside the layer: the probe needs no credentials.
///     .route(
///         "/readyz",
///         get(move || {
///             let readiness = probe.readiness();
///             let status = match readiness.is_ready() {
///                 true => StatusCode::OK,
///                 false => StatusCode::SERVICE_UNAVAILABLE,
///             };
///             async move { (status, Json(readiness.to_json())) }
///         }),
///     );
/// use tower::ServiceExt;
/// let response = app
///     .oneshot(axum::http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap())
///     .await
///     .unwrap();
/// assert_eq!(response.status(), 503);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Readiness {
    /// One entry per key source, Bearer authenticators' first, then DPoP's.
    pub sources: Vec<SourceReadiness>,
}

/// One key source's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceReadiness {
    /// The JWK set's URL (or the issuer's, before discovery), without its query and
    /// with any password shown as `user:***@`.
    pub source: String,
    /// Whether a key set is at hand (fetched, or loaded from a shared store).
    pub ready: bool,
    /// When the key set at hand was fetched, seconds since the epoch.
    pub fetched_at: Option<i64>,
    /// Why the last fetch failed, when it did (whether or not an older set is at hand).
    pub error: Option<String>,
}

impl Readiness {
    /// Whether every source holds a key set: tokens of every configured issuer can be
    /// verified now. Static keys are always ready, and so is a layer without sources.
    pub fn is_ready(&self) -> bool {
        self.sources.iter().all(|s| s.ready)
    }

    /// The sources without a key set.
    pub fn missing(&self) -> impl Iterator<Item = &SourceReadiness> {
        self.sources.iter().filter(|s| !s.ready)
    }

    /// As JSON, for a probe's answer: `{"ready": bool, "sources": [{"source", "ready",
    /// "fetched_at", "error"}]}`.
    pub fn to_json(&self) -> Value {
        let sources: Vec<Value> = self
            .sources
            .iter()
            .map(|s| {
                json!({
                    "source": s.source,
                    "ready": s.ready,
                    "fetched_at": s.fetched_at,
                    "error": s.error,
                })
            })
            .collect();
        json!({ "ready": self.is_ready(), "sources": sources })
    }
}
