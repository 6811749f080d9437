//! `POST /oauth/token`: reads the form body (content type checked, 64 KiB cap), runs the
//! [`crate::exchange`] and answers RFC 8693 §2.2.1 JSON, or an RFC 6749 §5.2 error.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tower::ServiceBuilder;

use super::error::{WebError, middleware_error, no_store, oauth_error};
use super::request_id::RequestId;
use crate::app::AppState;
use crate::audit::{Caller, ExchangeEvent};
use crate::exchange::{ExchangeError, Issued, Reason, Refused, quote};
use crate::iam::store::UsedBy;
use crate::telemetry;

/// Request bodies over this are refused with 413 (`docs/design.md#sizes`).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The token route, with load shedding above `max_concurrent` requests in flight.
pub fn routes(max_concurrent: usize) -> Router<AppState> {
    routes_to(token, max_concurrent)
}

/// `POST /oauth/token` served by `handler`, behind the token route's layers: [`routes`] with the
/// exchange, the HTTP-stack benchmark with a handler that does nothing.
pub fn routes_to<H, T>(handler: H, max_concurrent: usize) -> Router<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    Router::new()
        .route("/oauth/token", post(handler).fallback(method_not_allowed))
        .route_layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(middleware_error))
                .load_shed()
                .concurrency_limit(max_concurrent),
        )
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
pub fn check_form_content_type(headers: &HeaderMap) -> Result<(), ExchangeError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(())
    } else {
        Err(ExchangeError::new(
            Reason::UnsupportedMediaType,
            format!(
                "Content-Type must be application/x-www-form-urlencoded (RFC 6749 §3.2), not {}",
                quote(value)
            ),
        ))
    }
}

/// Reads a whole body of at most [`MAX_BODY_BYTES`].
pub async fn read_body(body: Body) -> Result<axum::body::Bytes, ExchangeError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                ExchangeError::new(
                    Reason::BodyTooLarge,
                    format!("request body exceeds {MAX_BODY_BYTES} bytes"),
                )
            } else {
                ExchangeError::new(
                    Reason::MalformedRequest,
                    "the request body could not be read".into(),
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
    let forwarded_for = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let client_ip = state.limits().client_ip(peer, forwarded_for);
    let client = client_ip.to_string();
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .map_or("", |r| r.0.as_str());
    let outcome = exchange(&state, client_ip, &parts.headers, body).await;
    let caller = Caller {
        request_id,
        client: &client,
    };
    record(&state, caller, &outcome, started.elapsed());
    after_the_others().await;
    match outcome {
        Ok(issued) => token_response(issued.body),
        Err(refused) => WebError::from(refused.error).into_response(),
    }
}

/// Lets the other requests ready on this worker run before this answer is written, so that
/// under load the answers go out together: a client reading many connections is woken once for
/// them all instead of once per answer, and on loopback each such wake-up costs the sender's
/// core more than the rest of the HTTP stack (docs/performance.md#answers-written-together).
/// A request alone resumes at once.
pub async fn after_the_others() {
    tokio::task::yield_now().await;
}

/// Everything the token endpoint does between the request and the answer.
async fn exchange(
    state: &AppState,
    client_ip: IpAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<Issued, Refused> {
    state.limits().check_ip(client_ip)?;
    check_form_content_type(headers)?;
    let form = read_body(body).await?;
    let now = crate::time::now_unix();
    let issued = state.exchange(&form, now).await?;
    state.record_use(
        UsedBy::ServiceAccount,
        &issued.grant.service_account_id,
        now,
    );
    Ok(issued)
}

/// The one place an exchange's outcome becomes metrics and an audit line.
fn record(
    state: &AppState,
    caller: Caller<'_>,
    outcome: &Result<Issued, Refused>,
    elapsed: Duration,
) {
    count(outcome.as_ref(), elapsed);
    match outcome {
        Ok(issued) => {
            let g = &issued.grant;
            // One line per exchange is the audit log's job; logs carry it at debug level only.
            tracing::debug!(
                federation = %g.federation_id,
                service_account = %g.service_account_id,
                credential = %g.credential_id,
                iss = %g.issuer,
                sub = %g.subject,
                external_jti = g.external_jti.as_deref().unwrap_or(""),
                resource = g.resource.as_deref().unwrap_or(""),
                alg = %g.alg,
                jti = %issued.token.jti,
                "token issued"
            );
            let hash = issued.token.sha256();
            state
                .audit()
                .record_exchange(&ExchangeEvent::issued(caller, issued, &hash));
        }
        Err(refused) => {
            let e = &refused.error;
            let (error, _) = oauth_error(e.reason);
            tracing::debug!(client = caller.client, error = error.as_str(), error_code = e.reason.as_str(), description = %e.description, "token request refused");
            state
                .audit()
                .record_exchange(&ExchangeEvent::refused(caller, refused, error.as_str()));
        }
    }
}

/// Counts one exchange and records its latency. A refusal carries the federation it concerns
/// whenever one is known. `resource` is the target of an issued token (empty for the default
/// audience); a refusal leaves it empty, so the label takes only configured values, never what a
/// caller made up.
fn count(outcome: Result<&Issued, &Refused>, elapsed: Duration) {
    use telemetry::exchange_metrics::{exchanges, seconds};
    let elapsed = elapsed.as_secs_f64();
    match outcome {
        Ok(issued) => {
            let grant = &issued.grant;
            exchanges(
                None,
                &grant.federation_id,
                grant.resource.as_deref().unwrap_or(""),
            )
            .increment(1);
            seconds(true).record(elapsed);
        }
        Err(refused) => {
            let federation = refused.error.federation_id.as_deref().unwrap_or("");
            exchanges(Some(refused.error.reason.as_str()), federation, "").increment(1);
            seconds(false).record(elapsed);
        }
    }
}

/// The success answer: the body [`Exchange::run`](crate::exchange::Exchange::run) rendered,
/// with the RFC 6749 §5.1 cache headers.
pub fn token_response(body: String) -> Response {
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
