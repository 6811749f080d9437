//! The one HTTP error type: every failure leaves the gateway as an RFC 6749 §5.2 JSON body
//! (`error`, `error_description`, plus the gateway's stable `error_code`) with
//! `Cache-Control: no-store`. The description names the failing rule and presented values, never a
//! token; internal causes are logged where they happen and never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::exchange::{ExchangeError, OAuthError};

#[derive(Debug, Clone)]
pub struct WebError {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: &'static str,
    pub description: String,
    /// Extra headers such as `Allow` or `Retry-After`.
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: &'a str,
    error_code: &'a str,
}

impl WebError {
    pub fn new(
        status: StatusCode,
        error: &'static str,
        code: &'static str,
        description: impl Into<String>,
    ) -> Self {
        WebError {
            status,
            error,
            code,
            description: description.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl From<ExchangeError> for WebError {
    fn from(e: ExchangeError) -> Self {
        let oauth = e.reason.oauth_error();
        let status = match oauth {
            OAuthError::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let error = WebError::new(status, oauth.as_str(), e.reason.as_str(), e.description);
        if oauth == OAuthError::TemporarilyUnavailable {
            error.with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))
        } else {
            error
        }
    }
}

/// Headers every token-endpoint response carries (RFC 6749 §5.1).
pub fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let body = Body {
            error: self.error,
            error_description: &self.description,
            error_code: self.code,
        };
        let mut response = (self.status, Json(body)).into_response();
        no_store(&mut response);
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}
