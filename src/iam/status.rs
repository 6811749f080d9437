//! The answer of a management call that failed, as Yandex Cloud gives it on both of its wires:
//! a `google.rpc.Status` with a gRPC code and a message, sent over REST as
//! `{"code", "message", "details"}` with the HTTP status that code maps to.
//!
//! Every layer of the IAM plane speaks [`Status`]: validation ([`super::validate`]) refuses
//! with `INVALID_ARGUMENT`, the store's errors map here ([`From<StoreError>`]), authentication
//! and authorization add `UNAUTHENTICATED` and `PERMISSION_DENIED`. Messages name the failing
//! rule and the values the caller sent, never a token, key or secret; internal causes are
//! logged where they happen and answered as `INTERNAL` without detail.

use std::fmt;

use super::store::StoreError;

/// The gRPC status codes the IAM plane answers (`google.rpc.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    Internal,
    Unavailable,
    Unauthenticated,
}

impl Code {
    /// Every code, for documentation and tests.
    pub const ALL: [Code; 10] = [
        Code::InvalidArgument,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::Internal,
        Code::Unavailable,
        Code::Unauthenticated,
    ];

    /// The number `google.rpc.Code` gives it: the `code` of the body and the gRPC status.
    pub fn number(self) -> u32 {
        match self {
            Code::InvalidArgument => 3,
            Code::NotFound => 5,
            Code::AlreadyExists => 6,
            Code::PermissionDenied => 7,
            Code::ResourceExhausted => 8,
            Code::FailedPrecondition => 9,
            Code::Aborted => 10,
            Code::Internal => 13,
            Code::Unavailable => 14,
            Code::Unauthenticated => 16,
        }
    }

    /// The HTTP status Yandex's REST gateway answers for it.
    pub fn http_status(self) -> u16 {
        match self {
            Code::InvalidArgument | Code::FailedPrecondition => 400,
            Code::Unauthenticated => 401,
            Code::PermissionDenied => 403,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::ResourceExhausted => 429,
            Code::Internal => 500,
            Code::Unavailable => 503,
        }
    }

    /// The canonical name (`INVALID_ARGUMENT`), for logs, metrics and audit lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed management call: a code and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Status {
    pub code: Code,
    pub message: String,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Status {
        Status::new(Code::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> Status {
        Status::new(Code::NotFound, message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Status {
        Status::new(Code::PermissionDenied, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Status {
        Status::new(Code::Unauthenticated, message)
    }

    pub fn failed_precondition(message: impl Into<String>) -> Status {
        Status::new(Code::FailedPrecondition, message)
    }

    pub fn resource_exhausted(message: impl Into<String>) -> Status {
        Status::new(Code::ResourceExhausted, message)
    }

    /// The REST body: `{"code": 3, "message": "…", "details": []}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "code": self.code.number(),
            "message": self.message,
            "details": [],
        })
    }
}

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Status {
        match &e {
            StoreError::AlreadyExists { .. } => Status::new(Code::AlreadyExists, e.to_string()),
            StoreError::NotFound { .. } => Status::new(Code::NotFound, e.to_string()),
            StoreError::Conflict { .. } => {
                Status::new(Code::Aborted, format!("{e}; read it again and retry"))
            }
            StoreError::FailedPrecondition { .. } => {
                Status::new(Code::FailedPrecondition, e.to_string())
            }
            StoreError::InvalidArgument { .. } => Status::new(Code::InvalidArgument, e.to_string()),
            StoreError::Unavailable(_) => Status::new(
                Code::Unavailable,
                "the IAM database is unavailable; retry later (token exchanges are not affected)",
            ),
            StoreError::UnsupportedUrl { .. }
            | StoreError::Migrate(_)
            | StoreError::Corrupt { .. }
            | StoreError::Random(_)
            | StoreError::Database(_) => {
                tracing::error!(error = %crate::report::error_chain(&e), "IAM store failure");
                Status::new(Code::Internal, "internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes and statuses Yandex documents (3→400, 5→404, 6→409, 7→403, 8→429, 9→400,
    /// 13→500, 14→503, 16→401), written out.
    #[test]
    fn codes_have_the_yandex_numbers_and_http_statuses() {
        let table = [
            (Code::InvalidArgument, 3, 400),
            (Code::NotFound, 5, 404),
            (Code::AlreadyExists, 6, 409),
            (Code::PermissionDenied, 7, 403),
            (Code::ResourceExhausted, 8, 429),
            (Code::FailedPrecondition, 9, 400),
            (Code::Aborted, 10, 409),
            (Code::Internal, 13, 500),
            (Code::Unavailable, 14, 503),
            (Code::Unauthenticated, 16, 401),
        ];
        assert_eq!(table.len(), Code::ALL.len());
        for (code, number, status) in table {
            assert_eq!(
                (code.number(), code.http_status()),
                (number, status),
                "{code}"
            );
        }
    }

    #[test]
    fn the_body_is_a_google_rpc_status() {
        let body = Status::invalid_argument("name \"A\": bad").body();
        assert_eq!(
            body,
            serde_json::json!({"code": 3, "message": "name \"A\": bad", "details": []})
        );
    }

    #[test]
    fn store_errors_keep_their_meaning_and_hide_internals() {
        let cases = [
            (
                StoreError::AlreadyExists {
                    what: "service account name in cloud",
                },
                Code::AlreadyExists,
            ),
            (
                StoreError::NotFound {
                    what: "folder",
                    id: "b1gx".into(),
                },
                Code::NotFound,
            ),
            (
                StoreError::Conflict {
                    what: "federation",
                    id: "ajex".into(),
                    expected: 1,
                    actual: 2,
                },
                Code::Aborted,
            ),
            (
                StoreError::FailedPrecondition {
                    reason: "folder b1gx does not exist".into(),
                },
                Code::FailedPrecondition,
            ),
            (
                StoreError::Corrupt {
                    what: "labels",
                    reason: "secret-looking detail".into(),
                },
                Code::Internal,
            ),
        ];
        for (error, code) in cases {
            let status = Status::from(error);
            assert_eq!(status.code, code, "{status}");
            if code == Code::Internal {
                assert_eq!(status.message, "internal error");
            }
        }
    }
}
