//! The usage recorder: when each service account last got a token and each key was last used,
//! kept in memory as they happen and written to the store in batches
//! ([`super::store::Store::record_usage`]), so no exchange, token or key check waits on a
//! database write (`docs/design.md#usage`).
//!
//! [`Usage::record`] costs one short lock and a hash-map insert (the latest time per id wins);
//! the upkeep calls [`Usage::flush`] on each of its rounds (every 5 s) and at shutdown. A failed
//! flush puts the batch back, merged with what arrived meanwhile, for the next one. What a
//! replica had not flushed when it died is lost: the times are a guide for people cleaning up
//! unused accounts and keys, never an input to a decision.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::store::{Store, StoreError, UsedBy};

/// Uses not yet written: per kind, id → the latest time. One map per kind, so that a use of an
/// id already pending is found by the borrowed id, without a copy.
#[derive(Debug, Default)]
pub struct Usage {
    pending: Mutex<HashMap<UsedBy, HashMap<Box<str>, i64>>>,
}

impl Usage {
    pub fn new() -> Usage {
        Usage::default()
    }

    /// Notes that `id` was used at `at` (Unix seconds).
    pub fn record(&self, used: UsedBy, id: &str, at: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let of_kind = pending.entry(used).or_default();
        match of_kind.get_mut(id) {
            Some(latest) => *latest = (*latest).max(at),
            None => {
                of_kind.insert(Box::from(id), at);
            }
        }
    }

    /// How many uses wait to be written.
    pub fn pending(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(HashMap::len)
            .sum()
    }

    fn take(&self) -> Vec<(UsedBy, String, i64)> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut batch: Vec<_> = pending
            .drain()
            .flat_map(|(used, ids)| {
                ids.into_iter()
                    .map(move |(id, at)| (used, id.into_string(), at))
            })
            .collect();
        // One order for every replica's batches, so that two flushes never wait on each
        // other's rows in opposite orders.
        batch.sort_unstable();
        batch
    }

    /// Writes what is pending in one transaction; how many rows moved forward. On failure the
    /// batch is kept for the next flush.
    pub async fn flush(&self, store: &Store, now: i64) -> Result<u64, StoreError> {
        let batch = self.take();
        match store.record_usage(&batch, now).await {
            Ok(moved) => Ok(moved),
            Err(e) => {
                for (used, id, at) in batch {
                    self.record(used, &id, at);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_use_of_each_id_is_kept_until_taken() {
        let usage = Usage::new();
        usage.record(UsedBy::ServiceAccount, "a", 10);
        usage.record(UsedBy::ServiceAccount, "a", 30);
        usage.record(UsedBy::ServiceAccount, "a", 20);
        usage.record(UsedBy::AuthorizedKey, "a", 5);
        usage.record(UsedBy::ServiceAccount, "b", 7);
        assert_eq!(usage.pending(), 3);
        assert_eq!(
            usage.take(),
            vec![
                (UsedBy::ServiceAccount, "a".to_owned(), 30),
                (UsedBy::ServiceAccount, "b".to_owned(), 7),
                (UsedBy::AuthorizedKey, "a".to_owned(), 5),
            ]
        );
        assert_eq!(usage.pending(), 0);
        assert!(usage.take().is_empty());
    }
}
