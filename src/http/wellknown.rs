//! How downstream services verify the tokens the gateway mints: its discovery document (RFC 8414
//! and OpenID Connect Discovery, publishing only what the gateway does) and its JWKS.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;
use crate::exchange::request::GRANT_TYPE_TOKEN_EXCHANGE;

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
}

/// Verifiers may cache the key set for a few minutes; new keys are published before they sign.
const JWKS_CACHE: &str = "public, max-age=300";

async fn openid_configuration(State(state): State<AppState>) -> Response {
    let url = &state.settings().public_url;
    // Only the token endpoint exists: no authorization endpoint, so no response types, and the
    // gateway issues access tokens, not ID tokens. The algorithms verifiers must accept are the
    // JWKS's (each key names its `alg`).
    Json(json!({
        "issuer": url,
        "jwks_uri": format!("{url}/.well-known/jwks.json"),
        "token_endpoint": format!("{url}/oauth/token"),
        "grant_types_supported": [GRANT_TYPE_TOKEN_EXCHANGE],
        "token_endpoint_auth_methods_supported": ["none"],
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
