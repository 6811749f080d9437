//! `POST /oauth/token`: reads the form body (content type checked, 64 KiB cap), runs the
//! [`crate::exchange`] and answers RFC 8693 §2.2.1 JSON, or an RFC 6749 §5.2 error.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;

use super::error::{WebError, no_store};
use super::{AppState, limits};
use crate::exchange::{self, ExchangeError};
use crate::request::{self, TOKEN_TYPE_ACCESS_TOKEN};
use axum::error_handling::HandleErrorLayer;
use tower::ServiceBuilder;

/// Request bodies over this are refused with 413 (DESIGN §Security).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The token route, with load shedding above `max_concurrent` requests in flight.
pub fn routes(max_concurrent: usize) -> Router<AppState> {
    Router::new()
        .route("/oauth/token", post(token).fallback(method_not_allowed))
        .route_layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(limits::middleware_error))
                .load_shed()
                .concurrency_limit(max_concurrent),
        )
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    issued_token_type: &'static str,
    token_type: &'static str,
    expires_in: i64,
}

async fn method_not_allowed() -> WebError {
    WebError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        "method_not_allowed",
        "the token endpoint accepts only POST",
    )
    .with_header(header::ALLOW, HeaderValue::from_static("POST"))
}

/// Checks `Content-Type: application/x-www-form-urlencoded` (parameters such as charset allowed).
pub(crate) fn check_form_content_type(headers: &HeaderMap) -> Result<(), WebError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(())
    } else {
        Err(WebError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "unsupported_media_type",
            format!(
                "Content-Type must be application/x-www-form-urlencoded (RFC 6749 §3.2), not {}",
                exchange::shown(value)
            ),
        ))
    }
}

/// Reads a whole body of at most [`MAX_BODY_BYTES`].
pub(crate) async fn read_body(body: Body) -> Result<axum::body::Bytes, WebError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                WebError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "invalid_request",
                    "body_too_large",
                    format!("request body exceeds {MAX_BODY_BYTES} bytes"),
                )
            } else {
                WebError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "malformed_request",
                    "the request body could not be read",
                )
            }
        })
}

async fn token(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip());
    let client_ip = state.limits().client_ip(peer, &parts.headers);
    let client = client_ip.to_string();
    match handle(&state, client_ip, &parts.headers, body).await {
        Ok(response) => response,
        Err(Failure::Web(e)) => {
            tracing::info!(client, error = e.error, error_code = e.code, description = %e.description, "token request refused");
            e.into_response()
        }
        Err(Failure::Exchange(e)) => {
            tracing::info!(client, error = e.reason.oauth_error().as_str(), error_code = e.reason.as_str(), description = %e.description, "exchange refused");
            WebError::from(e).into_response()
        }
    }
}

enum Failure {
    Web(WebError),
    Exchange(ExchangeError),
}

impl From<WebError> for Failure {
    fn from(e: WebError) -> Self {
        Failure::Web(e)
    }
}

impl From<ExchangeError> for Failure {
    fn from(e: ExchangeError) -> Self {
        Failure::Exchange(e)
    }
}

async fn handle(
    state: &AppState,
    client_ip: IpAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    state.limits().check_ip(client_ip)?;
    check_form_content_type(headers)?;
    let bytes = read_body(body).await?;
    let request = request::parse_form(&bytes)?;
    let snapshot = state.snapshot();
    let now = crate::time::now_unix();
    let grant = exchange::authorize(
        &request,
        &snapshot.directory,
        state.keys(),
        &snapshot.policy,
        now,
    )
    .await?;
    state
        .limits()
        .check_subject(&grant.issuer, &grant.subject)?;
    let token = exchange::mint(&snapshot.minter, &grant, now)?;
    let done = exchange::Exchanged { grant, token };
    let g = &done.grant;
    tracing::info!(
        federation = %g.federation_id,
        service_account = %g.service_account_id,
        credential = %g.credential_id,
        iss = %g.issuer,
        sub = %g.subject,
        external_jti = g.external_jti.as_deref().unwrap_or(""),
        alg = %g.alg,
        jti = %done.token.jti,
        "token issued"
    );
    let mut response = Json(TokenResponse {
        access_token: &done.token.access_token,
        issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
        token_type: "Bearer",
        expires_in: done.token.expires_in,
    })
    .into_response();
    no_store(&mut response);
    Ok(response)
}
