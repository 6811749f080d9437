//! Request ids: the caller's `X-Request-Id` when it is sane, otherwise a new random one; returned
//! in the response and carried into logs and audit lines.

use axum::http::Request;

/// The request's id: the caller's `X-Request-Id` when it is a sane token (1–128 visible ASCII
/// characters), otherwise a new random one. Returned in `X-Request-Id`, put in logs and audit.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

const REQUEST_ID: &str = "x-request-id";

pub async fn assign(
    mut req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let given = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned);
    let id = given.unwrap_or_else(|| {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut raw = [0u8; 16];
        let _ = aws_lc_rs::rand::fill(&mut raw);
        let mut id = String::with_capacity(32);
        for b in raw {
            id.push(char::from(HEX[usize::from(b >> 4)]));
            id.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        id
    });
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(req).await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
