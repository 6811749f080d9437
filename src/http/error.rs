//! The one HTTP error type: every failure leaves the gateway as an RFC 6749 §5.2 JSON body
//! (`error`, `error_description`, plus the gateway's stable `error_code`) with
//! `Cache-Control: no-store`. The description names the failing rule and presented values, never a
//! token; internal causes are logged where they happen and never sent.
//!
//! Here the exchange's refusal [`Reason`]s become RFC 6749 `error` codes and HTTP statuses, and
//! the tower middleware's errors (timeout, load shedding) become JSON answers.

use std::fmt;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::exchange::{ExchangeError, Reason};

/// The `error` codes of RFC 6749 §5.2 and RFC 8693 §2.2.2 that the token endpoint returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthError {
    /// "The authorization server encountered an unexpected condition that prevented it from
    /// fulfilling the request." (RFC 6749 §4.1.2.1) — here: the gateway's own signing key failed.
    ServerError,
    /// Too many requests: the client should slow down (the RFC 8628 §3.5 code, which Yandex
    /// clients and the gateway's own client treat as "retry after `Retry-After`").
    SlowDown,
    /// "The request is missing a required parameter, includes an unsupported parameter value
    /// (other than grant type), repeats a parameter, […] or is otherwise malformed." (RFC 6749 §5.2)
    InvalidRequest,
    /// "The provided authorization grant […] is invalid, expired, revoked, does not match the
    /// redirection URI used in the authorization request, or was issued to another client."
    /// (RFC 6749 §5.2) — here: the subject token, or what it is allowed to do.
    InvalidGrant,
    /// "The authorization server is unwilling or unable to issue a token for all the target
    /// services indicated by the `resource` or `audience` parameters." (RFC 8693 §2.2.2); "The
    /// requested resource is invalid, missing, unknown, or malformed." (RFC 8707 §2) — here: the
    /// service account named by `audience`, or the `resource` asked for.
    InvalidTarget,
    /// "The authorization grant type is not supported by the authorization server." (RFC 6749 §5.2)
    UnsupportedGrantType,
    /// "The authorization server is currently unable to handle the request due to a temporary
    /// overloading or maintenance of the server." (RFC 6749 §4.1.2.1) — here: the issuer's keys
    /// cannot be fetched; the client should retry later.
    TemporarilyUnavailable,
}

impl OAuthError {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthError::InvalidRequest => "invalid_request",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::InvalidTarget => "invalid_target",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthError::ServerError => "server_error",
            OAuthError::SlowDown => "slow_down",
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The RFC 6749 `error` and the HTTP status of a refusal.
pub fn oauth_error(reason: Reason) -> (OAuthError, StatusCode) {
    use Reason::*;
    match reason {
        MalformedRequest | MissingParameter | RepeatedParameter | UnsupportedTokenType => {
            (OAuthError::InvalidRequest, StatusCode::BAD_REQUEST)
        }
        UnsupportedMediaType => (
            OAuthError::InvalidRequest,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        BodyTooLarge => (OAuthError::InvalidRequest, StatusCode::PAYLOAD_TOO_LARGE),
        UnsupportedGrantType => (OAuthError::UnsupportedGrantType, StatusCode::BAD_REQUEST),
        UnknownServiceAccount | MalformedResource | SeveralResources | ResourceNotAllowed => {
            (OAuthError::InvalidTarget, StatusCode::BAD_REQUEST)
        }
        ClientRateLimited | SubjectRateLimited => {
            (OAuthError::SlowDown, StatusCode::TOO_MANY_REQUESTS)
        }
        IssuerUnavailable | IssuerKeysInvalid => (
            OAuthError::TemporarilyUnavailable,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        SigningFailed => (OAuthError::ServerError, StatusCode::INTERNAL_SERVER_ERROR),
        MalformedToken
        | TokenTooLarge
        | ForbiddenHeader
        | UnsupportedAlgorithm
        | MissingClaim
        | InvalidClaim
        | Expired
        | NotYetValid
        | IssuedInFuture
        | LifetimeTooLong
        | UnknownIssuer
        | FederationDisabled
        | AudienceMismatch
        | UnknownKey
        | BadSignature
        | NoBinding
        | ServiceAccountSuspended => (OAuthError::InvalidGrant, StatusCode::BAD_REQUEST),
    }
}

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
        let (oauth, status) = oauth_error(e.reason);
        let error = WebError::new(status, oauth.as_str(), e.reason.as_str(), e.description);
        match e.retry_after {
            Some(seconds) => error.with_header(header::RETRY_AFTER, HeaderValue::from(seconds)),
            None => error,
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

/// Turns errors of the tower middleware (timeout, load shedding) into JSON answers.
pub async fn middleware_error(error: tower::BoxError) -> WebError {
    if error.is::<tower::timeout::error::Elapsed>() {
        metrics::counter!(crate::telemetry::SHED, "reason" => "timeout").increment(1);
        WebError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "request_timeout",
            "the request took too long",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        metrics::counter!(crate::telemetry::SHED, "reason" => "overloaded").increment(1);
        WebError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "overloaded",
            "the gateway is at its concurrency limit; retry shortly",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    } else {
        tracing::error!(%error, "middleware failed");
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal",
            "internal error",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason's RFC 6749 `error` and status, written out: a change to the wire is a
    /// deliberate edit of this table.
    #[test]
    fn each_reason_has_its_rfc_error_and_status() {
        use OAuthError::*;
        use Reason::*;
        let table: &[(Reason, OAuthError, u16)] = &[
            (MalformedRequest, InvalidRequest, 400),
            (MissingParameter, InvalidRequest, 400),
            (RepeatedParameter, InvalidRequest, 400),
            (UnsupportedTokenType, InvalidRequest, 400),
            (
                Reason::UnsupportedGrantType,
                OAuthError::UnsupportedGrantType,
                400,
            ),
            (MalformedResource, InvalidTarget, 400),
            (SeveralResources, InvalidTarget, 400),
            (ResourceNotAllowed, InvalidTarget, 400),
            (UnsupportedMediaType, InvalidRequest, 415),
            (BodyTooLarge, InvalidRequest, 413),
            (ClientRateLimited, SlowDown, 429),
            (SubjectRateLimited, SlowDown, 429),
            (MalformedToken, InvalidGrant, 400),
            (TokenTooLarge, InvalidGrant, 400),
            (ForbiddenHeader, InvalidGrant, 400),
            (UnsupportedAlgorithm, InvalidGrant, 400),
            (MissingClaim, InvalidGrant, 400),
            (InvalidClaim, InvalidGrant, 400),
            (Expired, InvalidGrant, 400),
            (NotYetValid, InvalidGrant, 400),
            (IssuedInFuture, InvalidGrant, 400),
            (LifetimeTooLong, InvalidGrant, 400),
            (UnknownIssuer, InvalidGrant, 400),
            (FederationDisabled, InvalidGrant, 400),
            (AudienceMismatch, InvalidGrant, 400),
            (UnknownKey, InvalidGrant, 400),
            (BadSignature, InvalidGrant, 400),
            (UnknownServiceAccount, InvalidTarget, 400),
            (NoBinding, InvalidGrant, 400),
            (ServiceAccountSuspended, InvalidGrant, 400),
            (IssuerUnavailable, TemporarilyUnavailable, 503),
            (IssuerKeysInvalid, TemporarilyUnavailable, 503),
            (SigningFailed, ServerError, 500),
        ];
        assert_eq!(
            table.len(),
            Reason::ALL.len(),
            "every reason is in the table"
        );
        for &(reason, error, status) in table {
            assert_eq!(
                oauth_error(reason),
                (error, StatusCode::from_u16(status).unwrap()),
                "{reason:?}"
            );
        }
    }

    #[test]
    fn retry_after_travels_with_the_refusal() {
        let e = WebError::from(
            ExchangeError::new(Reason::SubjectRateLimited, "slow".into()).retry_after(7),
        );
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.error, "slow_down");
        assert_eq!(e.code, "rate_limited");
        assert!(
            e.headers
                .iter()
                .any(|(n, v)| n == header::RETRY_AFTER && v == "7")
        );
        let e = WebError::from(ExchangeError::new(Reason::SigningFailed, "x".into()));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(e.headers.is_empty(), "a server fault has no Retry-After");
    }
}
