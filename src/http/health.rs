//! Liveness, readiness and metrics, and the JSON 404 for everything else.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::error::WebError;
use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(prometheus))
}

/// `GET /metrics`: Prometheus text exposition.
async fn prometheus(State(state): State<AppState>) -> Response {
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

async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Ready once the config and signing keys are loaded, which the state guarantees by existing.
/// Issuer outages do not make the gateway unready: other federations still work. Nor does an
/// IAM database outage: exchanges never need it, so `store` only reports it (`ok` or
/// `unavailable`; absent without `[store]`).
async fn readyz(State(state): State<AppState>) -> Response {
    let snapshot = state.snapshot();
    let directory = state.directory();
    let mut body = json!({
        "status": "ready",
        "federations": directory.federation_count(),
        "service_accounts": directory.service_account_count(),
        "federated_credentials": directory.credential_count(),
        "signing_key": snapshot.minter.active_key().kid(),
    });
    if let Some(up) = state.store_ready().await {
        body["store"] = if up { "ok" } else { "unavailable" }.into();
    }
    Json(body).into_response()
}

pub async fn not_found() -> WebError {
    WebError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "not_found",
        "no such endpoint",
    )
}
