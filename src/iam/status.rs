//! How an IAM call fails: a `google.rpc.Status` code with a message that names the failing rule
//! ([`Status`]), plus a stable machine-readable reason for logs, the audit log and tests. The
//! codes are the gRPC ones the Yandex API answers with; the REST layer
//! ([`crate::http`]) maps each to its HTTP status (3→400, 5→404, 6→409, 7→403, 8→429, 9→400,
//! 10→409, 12→501, 13→500, 14→503, 16→401). Nothing here knows HTTP.
//!
//! Messages may quote what the caller presented (ids, claims, times) but never a token or key.

use std::fmt;

use serde::Serialize;
use utoipa::ToSchema;

use super::store::StoreError;

/// The gRPC status codes the IAM API answers with (`google.rpc.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    Ok,
    InvalidArgument,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    Unimplemented,
    Internal,
    Unavailable,
    Unauthenticated,
}

impl Code {
    /// The number sent as `code`.
    pub const fn number(self) -> i32 {
        match self {
            Code::Ok => 0,
            Code::InvalidArgument => 3,
            Code::NotFound => 5,
            Code::AlreadyExists => 6,
            Code::PermissionDenied => 7,
            Code::ResourceExhausted => 8,
            Code::FailedPrecondition => 9,
            Code::Aborted => 10,
            Code::Unimplemented => 12,
            Code::Internal => 13,
            Code::Unavailable => 14,
            Code::Unauthenticated => 16,
        }
    }

    /// The name, as gRPC writes it (`UNAUTHENTICATED`): the `code` label of the IAM metrics and
    /// the `code` field of the audit log.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::Unimplemented => "UNIMPLEMENTED",
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

/// `google.rpc.Status` in JSON: the body of every IAM API error and the `error` of a failed
/// operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = Status)]
pub struct StatusBody {
    /// The gRPC code: 3 INVALID_ARGUMENT, 5 NOT_FOUND, 6 ALREADY_EXISTS, 7 PERMISSION_DENIED,
    /// 8 RESOURCE_EXHAUSTED, 9 FAILED_PRECONDITION, 10 ABORTED, 12 UNIMPLEMENTED,
    /// 13 INTERNAL, 14 UNAVAILABLE, 16 UNAUTHENTICATED.
    #[schema(examples(3, 16))]
    pub code: i32,
    /// The rule that failed and the presented values, never a token or key.
    pub message: String,
    /// Always empty.
    #[schema(value_type = Vec<Object>)]
    pub details: Vec<serde_json::Value>,
}

/// A refused or failed IAM call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    /// A stable snake_case name of the rule that failed (`unknown_key`, `token_expired`, …):
    /// the `error_code` of the audit log. Not sent: the wire body is Yandex's.
    pub reason: &'static str,
    /// What failed, in words; sent as `message`.
    pub message: String,
}

impl Status {
    pub fn new(code: Code, reason: &'static str, message: impl Into<String>) -> Status {
        Status {
            code,
            reason,
            message: message.into(),
        }
    }

    pub fn invalid_argument(reason: &'static str, message: impl Into<String>) -> Status {
        Status::new(Code::InvalidArgument, reason, message)
    }

    pub fn unauthenticated(reason: &'static str, message: impl Into<String>) -> Status {
        Status::new(Code::Unauthenticated, reason, message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Status {
        Status::new(Code::PermissionDenied, "permission_denied", message)
    }

    pub fn not_found(message: impl Into<String>) -> Status {
        Status::new(Code::NotFound, "not_found", message)
    }

    /// The `google.rpc.Status` body, as REST answers it and as a failed Operation carries it:
    /// `{"code": 3, "message": "…", "details": []}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(self.to_body()).unwrap_or(serde_json::Value::Null)
    }

    /// [`Status::body`] as its type.
    pub fn to_body(&self) -> StatusBody {
        StatusBody {
            code: self.code.number(),
            message: self.message.clone(),
            details: Vec::new(),
        }
    }

    /// A fault of the gateway itself: the cause is logged here, the caller gets a fixed text.
    pub fn internal(cause: &dyn fmt::Display) -> Status {
        tracing::error!(error = %cause, "IAM call failed");
        Status::new(Code::Internal, "internal", "internal error")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Status {}

impl From<StoreError> for Status {
    fn from(err: StoreError) -> Status {
        match err {
            StoreError::AlreadyExists { .. } => {
                Status::new(Code::AlreadyExists, "already_exists", err.to_string())
            }
            StoreError::NotFound { .. } => Status::not_found(err.to_string()),
            StoreError::Conflict { .. } => Status::new(
                Code::Aborted,
                "conflict",
                format!("{err}: it changed meanwhile; read it again and retry"),
            ),
            StoreError::FailedPrecondition { .. } => Status::new(
                Code::FailedPrecondition,
                "failed_precondition",
                err.to_string(),
            ),
            StoreError::InvalidArgument { .. } => {
                Status::invalid_argument("invalid_argument", err.to_string())
            }
            StoreError::Unavailable(ref cause) => {
                tracing::warn!(error = %cause, "IAM database unavailable");
                Status::new(
                    Code::Unavailable,
                    "store_unavailable",
                    "the IAM database is unavailable; retry later",
                )
            }
            other => Status::internal(&crate::report::error_chain(&other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_become_their_grpc_codes() {
        let cases: Vec<(&str, StoreError, Code)> = vec![
            (
                "exists",
                StoreError::AlreadyExists { what: "x" },
                Code::AlreadyExists,
            ),
            (
                "missing",
                StoreError::NotFound {
                    what: "authorized key",
                    id: "k".into(),
                },
                Code::NotFound,
            ),
            (
                "conflict",
                StoreError::Conflict {
                    what: "authorized key",
                    id: "k".into(),
                    expected: 1,
                    actual: 2,
                },
                Code::Aborted,
            ),
            (
                "precondition",
                StoreError::FailedPrecondition { reason: "r".into() },
                Code::FailedPrecondition,
            ),
            (
                "down",
                StoreError::Unavailable(sqlx::Error::PoolTimedOut),
                Code::Unavailable,
            ),
            (
                "broken",
                StoreError::Corrupt {
                    what: "x",
                    reason: "y".into(),
                },
                Code::Internal,
            ),
        ];
        for (name, err, code) in cases {
            assert_eq!(Status::from(err).code, code, "{name}");
        }
        assert_eq!(Code::Unauthenticated.number(), 16);
        assert_eq!(Code::InvalidArgument.number(), 3);
    }

    #[test]
    fn the_body_is_a_google_rpc_status() {
        let body = Status::invalid_argument("invalid_name", "name \"A\": bad").body();
        assert_eq!(
            body,
            serde_json::json!({"code": 3, "message": "name \"A\": bad", "details": []})
        );
    }
}
