//! The store's errors, one variant per answer a caller acts on differently. They follow the
//! gRPC status codes the IAM API answers with (ALREADY_EXISTS, NOT_FOUND, ABORTED for a
//! version conflict, FAILED_PRECONDITION, INVALID_ARGUMENT, UNAVAILABLE, INTERNAL), so the
//! API layers translate them one to one; nothing here knows HTTP.
//!
//! [`classify`] turns a database error into one of them: unique violations become
//! [`StoreError::AlreadyExists`], foreign-key violations [`StoreError::FailedPrecondition`],
//! CHECK and NOT NULL violations [`StoreError::InvalidArgument`], lost or refused connections
//! and SQLite's "busy" [`StoreError::Unavailable`]. The SQLite and PostgreSQL drivers both
//! report constraint kinds, so the mapping is the same for both.

use sqlx::error::ErrorKind;

use crate::iam::ids::RandomUnavailable;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write: `what` names the rule, e.g. "service account name
    /// in cloud".
    #[error("{what} already exists")]
    AlreadyExists { what: &'static str },

    /// No resource of this kind has this id.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },

    /// The resource changed since the caller read it (optimistic concurrency): re-read and
    /// retry, or report ABORTED.
    #[error("{what} {id} has version {actual}, not the expected {expected}")]
    Conflict {
        what: &'static str,
        id: String,
        expected: i64,
        actual: i64,
    },

    /// The write names a resource that does not exist (a parent, a federation), or breaks
    /// another rule about the current state.
    #[error("failed precondition: {reason}")]
    FailedPrecondition { reason: String },

    /// A value the database refuses (a CHECK or NOT NULL constraint), or a bad open argument.
    /// The API layer validates first; reaching this means its validation missed a rule.
    #[error("invalid argument: {reason}")]
    InvalidArgument { reason: String },

    /// The database cannot be reached or is overloaded; the call may succeed later.
    #[error("the IAM database is unavailable")]
    Unavailable(#[source] sqlx::Error),

    /// The URL names no backend the store has.
    #[error("unsupported database URL scheme {scheme:?}: use sqlite:// or postgres://")]
    UnsupportedUrl { scheme: String },

    /// Applying the embedded migrations failed.
    #[error("migrating the IAM database failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),

    /// A stored value cannot be read back (e.g. labels that are not a JSON object).
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt { what: &'static str, reason: String },

    /// No random bytes for a new id.
    #[error("cannot generate an id")]
    Random(#[from] RandomUnavailable),

    /// Any other database failure.
    #[error("IAM database error")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        classify(err, "resource")
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        match err {
            sqlx::migrate::MigrateError::Execute(inner) if is_unavailable(&inner) => {
                StoreError::Unavailable(inner)
            }
            other => StoreError::Migrate(other),
        }
    }
}

/// Maps a database error to a [`StoreError`]; `unique` names what a unique violation means
/// for the statement that failed.
pub(crate) fn classify(err: sqlx::Error, unique: &'static str) -> StoreError {
    if is_unavailable(&err) {
        return StoreError::Unavailable(err);
    }
    let Some(db) = err.as_database_error() else {
        return StoreError::Database(err);
    };
    match db.kind() {
        ErrorKind::UniqueViolation => StoreError::AlreadyExists { what: unique },
        ErrorKind::ForeignKeyViolation => StoreError::FailedPrecondition {
            reason: format!("a referenced resource does not exist ({})", db.message()),
        },
        ErrorKind::CheckViolation | ErrorKind::NotNullViolation => StoreError::InvalidArgument {
            reason: db.message().to_owned(),
        },
        _ => StoreError::Database(err),
    }
}

/// Whether `err` means "try again later": the connection failed or was lost, the pool is out
/// of connections, the server is shutting down or full, or SQLite stayed busy or locked past
/// its timeout.
pub(crate) fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| unavailable_code(&code)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs of class 08 (connection exception), 53 (insufficient resources) and
/// 57P01–57P03 (shutdown, cannot connect now); SQLite result codes BUSY (5) and LOCKED (6),
/// including their extended forms (the low byte is the primary code).
fn unavailable_code(code: &str) -> bool {
    if code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03")
    {
        return true;
    }
    code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_codes() {
        let cases = [
            ("pg connection failure", "08006", true),
            ("pg too many connections", "53300", true),
            ("pg admin shutdown", "57P01", true),
            ("pg unique violation", "23505", false),
            ("sqlite busy", "5", true),
            ("sqlite busy snapshot", "517", true),
            ("sqlite locked", "6", true),
            ("sqlite constraint", "19", false),
            ("sqlite unique", "2067", false),
        ];
        for (name, code, want) in cases {
            assert_eq!(unavailable_code(code), want, "{name}");
        }
    }

    #[test]
    fn transport_failures_are_unavailable() {
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        ))));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    }
}
