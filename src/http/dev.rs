//! Routes of the dev issuer ([`crate::dev_issuer`]): mounted only when the config enables it.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::error::WebError;
use super::token::{check_form_content_type, read_body};
use crate::app::AppState;
use crate::dev_issuer::DEFAULT_TTL;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/dev/issuer/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/dev/issuer/jwks", get(jwks))
        .route("/dev/issuer/token", post(token))
}

fn disabled() -> WebError {
    WebError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "not_found",
        "the dev issuer is not enabled",
    )
}

async fn discovery(State(state): State<AppState>) -> Result<Response, WebError> {
    let dev = state.dev_issuer().ok_or_else(disabled)?;
    Ok(Json(dev.discovery()).into_response())
}

async fn jwks(State(state): State<AppState>) -> Result<Response, WebError> {
    let dev = state.dev_issuer().ok_or_else(disabled)?;
    Ok(Json(dev.jwks()).into_response())
}

/// `POST /dev/issuer/token` with form fields `sub`, `aud` and optional `ttl` (seconds).
async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let dev = state.dev_issuer().ok_or_else(disabled)?;
    check_form_content_type(&headers)?;
    let body = read_body(body).await?;
    let (mut sub, mut aud, mut ttl) = (None, None, None);
    for (name, value) in form_urlencoded::parse(&body) {
        match name.as_ref() {
            "sub" => sub = Some(value.into_owned()),
            "aud" => aud = Some(value.into_owned()),
            "ttl" => ttl = Some(value.into_owned()),
            _ => {}
        }
    }
    let bad = |m: String| {
        WebError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "malformed_request",
            m,
        )
    };
    let sub = sub.ok_or_else(|| bad("form field sub is required".into()))?;
    let aud = aud.ok_or_else(|| bad("form field aud is required".into()))?;
    let ttl = match ttl {
        None => DEFAULT_TTL,
        Some(t) => t
            .trim()
            .parse()
            .map_err(|_| bad(format!("ttl {t:?} is not a number of seconds")))?,
    };
    let id_token = dev
        .issue(&sub, &aud, ttl, crate::time::now_unix())
        .map_err(|e| bad(e.to_string()))?;
    Ok(Json(json!({ "id_token": id_token })).into_response())
}
