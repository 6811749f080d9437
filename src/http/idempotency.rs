//! Idempotent retries of the REST API's mutations (`Idempotency-Key`), over
//! [`crate::iam::idempotency`]: a layer in front of the handlers of the calls that create,
//! change or delete resources. It reserves the caller's key for the call's fingerprint (HTTP
//! method, path and query, body), lets the handler run, and records the operation the handler
//! answered; a retry gets that operation back, as it is now, without the handler running.
//!
//! The caller is the subject of the call's IAM token, checked as every call checks it; a call
//! whose token is refused passes through, and its handler answers the refusal.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::yandex::{error_response, ok};
use crate::app::AppState;
use crate::iam::authn;
use crate::iam::idempotency::{self, Begin};
use crate::iam::operation;
use crate::iam::status::Status;

/// The header a retried call carries.
pub const HEADER: &str = "idempotency-key";

/// Longest body the layer reads to fingerprint a call; the handlers' own cap is lower.
const MAX_BODY_BYTES: usize = 1 << 20;

/// The layer: see the module documentation.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !super::writes::is_write(request.method()) {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    // A value that is not text is checked as the empty key: refused the same way.
    let key = match idempotency::check_key(key.to_str().unwrap_or_default()) {
        Ok(key) => key.to_owned(),
        Err(status) => return error_response(&status),
    };
    let (Some(store), Some(principal)) = (state.store(), caller(&state, &request)) else {
        return next.run(request).await;
    };
    let store = store.clone();
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return error_response(&Status::invalid_argument(
            "malformed_request",
            format!("the request body could not be read, or exceeds {MAX_BODY_BYTES} bytes"),
        ));
    };
    let target = parts
        .uri
        .path_and_query()
        .map_or("", |p| p.as_str())
        .to_owned();
    let fingerprint =
        idempotency::fingerprint(&[parts.method.as_str().as_bytes(), target.as_bytes(), &bytes]);
    let now = crate::time::now_unix();
    match idempotency::begin(&store, &principal, &key, &fingerprint, now).await {
        Err(status) => return error_response(&status),
        Ok(Begin::Replay(operation)) => {
            metrics::counter!(crate::telemetry::IAM_IDEMPOTENT_REPLAYS).increment(1);
            let mut response = ok(operation::to_message(&operation));
            response
                .headers_mut()
                .insert(HEADER, HeaderValue::from_static("replayed"));
            return response;
        }
        Ok(Begin::Proceed) => {}
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if !response.status().is_success() {
        if let Err(e) = idempotency::release(&store, &principal, &key).await {
            tracing::warn!(error = %e, "IAM store: cannot free an idempotency key; a retry waits until it goes stale");
        }
        return response;
    }
    // The answer is read to learn its operation's id, then sent on unchanged.
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return error_response(&Status::internal(&"the answer could not be read"));
    };
    let operation = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .filter(|answer| answer.get("done").is_some())
        .and_then(|answer| answer.get("id")?.as_str().map(str::to_owned));
    if let Err(e) = idempotency::settle(&store, &principal, &key, operation.as_deref()).await {
        tracing::warn!(error = %e, "IAM store: cannot record an idempotency key's outcome; a retry waits until it goes stale");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The service account the call's IAM token speaks for, if the token is one this gateway
/// accepts (its handler answers any refusal).
fn caller(state: &AppState, request: &Request) -> Option<String> {
    let live = state.live()?;
    let snapshot = state.snapshot();
    let keys = state.own_keys(&snapshot.minter);
    let own = snapshot.management_tokens(&keys, live);
    let token = authn::bearer(
        request
            .headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    )
    .ok()?;
    authn::check_claims(token, &own, crate::time::now_unix(), authn::Checks::All)
        .ok()
        .map(|verified| verified.sub)
}
