//! Idempotent retries of mutating calls, for both transports: a call that carries an
//! idempotency key (REST `Idempotency-Key`, gRPC `idempotency-key`, which Yandex's SDKs send
//! with every retried call) is carried out once per caller and key; a retry gets the first
//! call's operation back, as it is now. See `docs/api.md#idempotent-retries`.
//!
//! | the key's state | the retry's answer |
//! |---|---|
//! | free | the call runs; a refused call frees the key again, so a retry runs too |
//! | held by a call asking for something else (another method, path or body) | INVALID_ARGUMENT `idempotency_key_reused` |
//! | held by a call still running | ABORTED `idempotency_key_in_progress`: retry later |
//! | held by a call that answered an operation | that operation, read again |
//! | held by a call whose answer was not an operation (a key pair: the private key is not kept) | ALREADY_EXISTS `idempotency_key_used` |
//!
//! Keys are kept a day ([`RETENTION`]). A reservation left by a call that never finished (its
//! gateway stopped mid-call) is taken over after [`STALE_AFTER`].

use aws_lc_rs::digest;

use crate::exchange::quote;

use super::status::{Code, Status};
use super::store::{Operation, Reservation, Store, StoreError};

/// How long a key is remembered, in seconds.
pub const RETENTION: i64 = 24 * 60 * 60;
/// How long an unsettled reservation is honoured, in seconds: longer than any call may run.
pub const STALE_AFTER: i64 = 10 * 60;
/// Longest key, in characters.
pub const MAX_KEY_CHARS: usize = 256;

/// The outcome recorded for a call whose answer was not an operation.
const NOT_KEPT: &str = "-";

/// The key, checked: 1 to [`MAX_KEY_CHARS`] visible ASCII characters.
pub fn check_key(key: &str) -> Result<&str, Status> {
    if key.is_empty() || key.len() > MAX_KEY_CHARS || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Status::invalid_argument(
            "invalid_idempotency_key",
            format!("the idempotency key must be 1 to {MAX_KEY_CHARS} visible ASCII characters"),
        ));
    }
    Ok(key)
}

/// What a call asked for, as one value: SHA-256 over every part, each behind its length.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut context = digest::Context::new(&digest::SHA256);
    for part in parts {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    crate::signing::hex(context.finish().as_ref())
}

/// What to do with a call that carries a key.
#[derive(Debug)]
pub enum Begin {
    /// Carry it out, then [`settle`] or [`release`].
    Proceed,
    /// Answer the first call's operation, as it is now.
    Replay(Box<Operation>),
}

/// Reserves `key` for `principal`'s call asking for `fingerprint`, or says how the first
/// call with that key went.
pub async fn begin(
    store: &Store,
    principal: &str,
    key: &str,
    fingerprint: &str,
    now: i64,
) -> Result<Begin, Status> {
    let reservation = store
        .reserve_idempotency_key(principal, key, fingerprint, now, now - STALE_AFTER)
        .await?;
    let (first, outcome) = match reservation {
        Reservation::Fresh => return Ok(Begin::Proceed),
        Reservation::Taken {
            fingerprint,
            outcome,
        } => (fingerprint, outcome),
    };
    if first != fingerprint {
        return Err(Status::invalid_argument(
            "idempotency_key_reused",
            format!(
                "idempotency key {} was used for another request; use a new key for a new request",
                quote(key)
            ),
        ));
    }
    match outcome.as_str() {
        "" => Err(Status::new(
            Code::Aborted,
            "idempotency_key_in_progress",
            format!(
                "a call with idempotency key {} is still being carried out; retry later",
                quote(key)
            ),
        )),
        NOT_KEPT => Err(already_used(key)),
        operation => match store.get_operation(operation).await {
            Ok(operation) => Ok(Begin::Replay(Box::new(operation))),
            Err(StoreError::NotFound { .. }) => Err(already_used(key)),
            Err(other) => Err(other.into()),
        },
    }
}

/// The answer to a retry of a call whose answer was not an operation (and is not kept).
pub fn already_used(key: &str) -> Status {
    Status::new(
        Code::AlreadyExists,
        "idempotency_key_used",
        format!(
            "the call with idempotency key {} was carried out; its answer is not kept (a private key is returned once)",
            quote(key)
        ),
    )
}

/// Records that the call holding `key` ended with `operation` (its id), or with an answer
/// that is not kept (`None`).
pub async fn settle(
    store: &Store,
    principal: &str,
    key: &str,
    operation: Option<&str>,
) -> Result<(), StoreError> {
    store
        .settle_idempotency_key(principal, key, operation.unwrap_or(NOT_KEPT))
        .await
}

/// Frees `key` after the call holding it was refused: nothing changed, a retry runs.
pub async fn release(store: &Store, principal: &str, key: &str) -> Result<(), StoreError> {
    store.release_idempotency_key(principal, key).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(check_key("3f2b8c1e-6d1a-4c4e-9b1f-2d7e5a9c0b11").is_ok());
        assert!(check_key(&"k".repeat(MAX_KEY_CHARS)).is_ok());
        for bad in [
            "",
            " ",
            "a b",
            "ключ",
            "tab\t",
            &"k".repeat(MAX_KEY_CHARS + 1),
        ] {
            let refused = check_key(bad).expect_err(bad);
            assert_eq!(refused.code, Code::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_tell_parts_apart() {
        let a = fingerprint(&[b"POST", b"/iam/v1/serviceAccounts", b"{}"]);
        assert_eq!(a.len(), 64);
        assert_eq!(
            a,
            fingerprint(&[b"POST", b"/iam/v1/serviceAccounts", b"{}"])
        );
        assert_ne!(
            a,
            fingerprint(&[b"POST", b"/iam/v1/serviceAccounts", b"{ }"])
        );
        // The length prefixes keep a moved boundary from colliding.
        assert_ne!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"a", b"bc"]));
    }
}
