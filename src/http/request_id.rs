//! Request ids: the caller's `X-Request-Id` when it is sane, otherwise a new random one; returned
//! in the response and carried into logs and audit lines.

use axum::http::Request;

pub use crate::app::call::{REQUEST_ID, RequestId};

pub async fn assign(
    mut req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let id = RequestId::of(req.headers()).0;
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(req).await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
