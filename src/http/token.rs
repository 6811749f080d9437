//! `POST /oauth/token`: reads the form body (content type checked, 64 KiB cap), runs the
//! [`crate::exchange`] and answers RFC 8693 §2.2.1 JSON, or an RFC 6749 §5.2 error.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::RequestId;
use super::error::{WebError, no_store};
use super::{AppState, limits};
use crate::audit::ExchangeEvent;
use crate::exchange::{self, ExchangeError};
use crate::request::{self, TOKEN_TYPE_ACCESS_TOKEN, TokenRequest};
use crate::signing::IssuedToken;
use crate::telemetry;
use axum::error_handling::HandleErrorLayer;
use std::time::Instant;
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

/// The RFC 8693 §2.2.1 response body. Written by hand: the token is base64url and dots only
/// (minted here), so it needs no JSON escaping, and a general serializer would scan it byte by
/// byte on every exchange.
fn token_response(token: &IssuedToken) -> Response {
    debug_assert!(
        token
            .access_token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    );
    let body = format!(
        r#"{{"access_token":"{}","issued_token_type":"{TOKEN_TYPE_ACCESS_TOKEN}","token_type":"Bearer","expires_in":{}}}"#,
        token.access_token, token.expires_in
    );
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    no_store(&mut response);
    response
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
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip());
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .map_or_else(String::new, |r| r.0.clone());
    let client_ip = state.limits().client_ip(peer, &parts.headers);
    let client = client_ip.to_string();
    let mut parsed = None;
    let result = handle(&state, client_ip, &parts.headers, body, &mut parsed).await;
    let elapsed = started.elapsed().as_secs_f64();
    match result {
        Ok((done, response)) => {
            let g = &done.grant;
            metrics::counter!(telemetry::EXCHANGES, "outcome" => "issued", "error_code" => "", "federation" => g.federation_id.clone()).increment(1);
            metrics::histogram!(telemetry::EXCHANGE_SECONDS, "outcome" => "issued").record(elapsed);
            // One line per exchange is the audit log's job; logs carry it at debug level only.
            tracing::debug!(
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
            let hash = done.token.sha256();
            state.audit().record(
                "exchange",
                ExchangeEvent {
                    request_id: &request_id,
                    client: &client,
                    decision: "allow",
                    federation_id: Some(&g.federation_id),
                    credential_id: Some(&g.credential_id),
                    service_account_id: Some(&g.service_account_id),
                    iss: Some(&g.issuer),
                    sub: Some(&g.subject),
                    jti: g.external_jti.as_deref(),
                    kid: g.kid.as_deref(),
                    alg: Some(g.alg.as_str()),
                    verified: true,
                    token_sha256: Some(&hash),
                    token_jti: Some(&done.token.jti),
                    expires_in: Some(done.token.expires_in),
                    signing_kid: Some(&done.token.kid),
                    ..ExchangeEvent::default()
                },
            );
            response
        }
        Err(failure) => {
            let (error, verified) = match failure {
                // A per-subject limit is checked only for a verified token.
                Failure::Web(e) => {
                    let verified = e.code == "rate_limited" && e.description.contains("subject");
                    (e, verified)
                }
                Failure::Exchange(e) => {
                    let verified = e.reason.after_verification();
                    (WebError::from(e), verified)
                }
            };
            metrics::counter!(telemetry::EXCHANGES, "outcome" => "refused", "error_code" => error.code, "federation" => "").increment(1);
            metrics::histogram!(telemetry::EXCHANGE_SECONDS, "outcome" => "refused")
                .record(elapsed);
            tracing::debug!(client, error = error.error, error_code = error.code, description = %error.description, "token request refused");
            // What the caller presented, unverified: useful to trace an attack or a misconfiguration.
            let presented = parsed
                .as_ref()
                .and_then(|r: &TokenRequest| crate::jwt::read(&r.subject_token).ok());
            let claims = presented.as_ref().map(|j| &j.claims);
            state.audit().record(
                "exchange",
                ExchangeEvent {
                    request_id: &request_id,
                    client: &client,
                    decision: "deny",
                    error: Some(error.error),
                    error_code: Some(error.code),
                    reason: Some(&error.description),
                    service_account_id: parsed.as_ref().map(|r| r.audience.as_str()),
                    iss: claims.and_then(|c| c.iss.as_deref()),
                    sub: claims.and_then(|c| c.sub.as_deref()),
                    jti: claims.and_then(|c| c.jti.as_deref()),
                    kid: presented.as_ref().and_then(|j| j.kid.as_deref()),
                    alg: presented.as_ref().map(|j| j.alg.as_str()),
                    verified,
                    ..ExchangeEvent::default()
                },
            );
            error.into_response()
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
    parsed: &mut Option<TokenRequest>,
) -> Result<(exchange::Exchanged, Response), Failure> {
    state.limits().check_ip(client_ip)?;
    check_form_content_type(headers)?;
    let bytes = read_body(body).await?;
    let request = parsed.insert(request::parse_form(&bytes)?);
    let snapshot = state.snapshot();
    let now = crate::time::now_unix();
    let grant = exchange::authorize(
        request,
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
    let response = token_response(&token);
    Ok((exchange::Exchanged { grant, token }, response))
}
