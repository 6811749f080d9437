//! What is not the exchange: the gateway's own discovery document and JWKS (for downstream
//! verifiers), health and readiness, and the JSON 404.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::{AppState, WebError};
use crate::request::GRANT_TYPE_TOKEN_EXCHANGE;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(openid_configuration),
        )
        .route("/.well-known/jwks.json", get(jwks))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(prometheus))
}

/// `GET /metrics`: Prometheus text exposition.
async fn prometheus(State(state): State<AppState>) -> Response {
    for (source, age) in state.keys().ages() {
        metrics::gauge!(crate::telemetry::JWKS_AGE, "source" => source).set(age.as_secs_f64());
    }
    match state.render_metrics() {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
        None => WebError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "not_found",
            "metrics are exported by another recorder in this process",
        )
        .into_response(),
    }
}

/// Verifiers may cache the key set for a few minutes; new keys are published before they sign.
const JWKS_CACHE: &str = "public, max-age=300";

async fn openid_configuration(State(state): State<AppState>) -> Response {
    let url = &state.settings().public_url;
    let snapshot = state.snapshot();
    Json(json!({
        "issuer": url,
        "jwks_uri": format!("{url}/.well-known/jwks.json"),
        "token_endpoint": format!("{url}/oauth/token"),
        "grant_types_supported": [GRANT_TYPE_TOKEN_EXCHANGE],
        "token_endpoint_auth_methods_supported": ["none"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [snapshot.minter.active_key().alg().as_str()],
    }))
    .into_response()
}

async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.snapshot().minter.jwks()).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(JWKS_CACHE));
    response
}

async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Ready once the config and signing keys are loaded, which the state guarantees by existing.
/// Issuer outages do not make the gateway unready: other federations still work.
async fn readyz(State(state): State<AppState>) -> Response {
    let snapshot = state.snapshot();
    Json(json!({
        "status": "ready",
        "federations": snapshot.directory.federations().len(),
        "service_accounts": snapshot.directory.service_account_count(),
        "federated_credentials": snapshot.directory.credential_count(),
        "signing_key": snapshot.minter.active_key().kid(),
    }))
    .into_response()
}

pub async fn not_found() -> WebError {
    WebError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "not_found",
        "no such endpoint",
    )
}
