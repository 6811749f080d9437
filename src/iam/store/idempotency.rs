//! Idempotency keys of mutating calls: who sent which key for what, and how the first call
//! ended. Not resources: no change-log entry, no replication beyond the shared database, which
//! is what makes a retry that lands on another replica find the first call.

use super::Store;
use super::db::Statement;
use super::error::StoreError;
use super::model::Reservation;

impl Store {
    /// Reserves `key` of `principal` for a call asking for `fingerprint` at `now`. A
    /// reservation still unsettled and older than `stale_before` belonged to a call that never
    /// finished (its gateway stopped): it is taken over.
    pub async fn reserve_idempotency_key(
        &self,
        principal: &str,
        key: &str,
        fingerprint: &str,
        now: i64,
        stale_before: i64,
    ) -> Result<Reservation, StoreError> {
        let mut tx = self.db().begin().await?;
        tx.execute(
            Statement::new(
                "DELETE FROM idempotency_keys WHERE principal = $1 AND idempotency_key = $2 \
                 AND outcome = '' AND created_at < $3",
            )
            .bind(principal)
            .bind(key)
            .bind(stale_before),
            "idempotency key",
        )
        .await?;
        let inserted = tx
            .execute(
                Statement::new(
                    "INSERT INTO idempotency_keys (principal, idempotency_key, fingerprint, \
                     outcome, created_at) VALUES ($1, $2, $3, '', $4) \
                     ON CONFLICT (principal, idempotency_key) DO NOTHING",
                )
                .bind(principal)
                .bind(key)
                .bind(fingerprint)
                .bind(now),
                "idempotency key",
            )
            .await?;
        let reservation = if inserted == 1 {
            Reservation::Fresh
        } else {
            let row = tx
                .fetch_optional(
                    Statement::new(
                        "SELECT fingerprint, outcome FROM idempotency_keys \
                         WHERE principal = $1 AND idempotency_key = $2",
                    )
                    .bind(principal)
                    .bind(key),
                    "idempotency key",
                )
                .await?
                .ok_or_else(|| StoreError::Corrupt {
                    what: "idempotency key",
                    reason: "the row that refused the insert is missing".into(),
                })?;
            Reservation::Taken {
                fingerprint: row.text("fingerprint")?,
                outcome: row.text("outcome")?,
            }
        };
        tx.commit().await?;
        Ok(reservation)
    }

    /// Records how the call holding `key` ended: its operation's id, or `-`.
    pub async fn settle_idempotency_key(
        &self,
        principal: &str,
        key: &str,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.db().begin().await?;
        tx.execute(
            Statement::new(
                "UPDATE idempotency_keys SET outcome = $3 \
                 WHERE principal = $1 AND idempotency_key = $2",
            )
            .bind(principal)
            .bind(key)
            .bind(outcome),
            "idempotency key",
        )
        .await?;
        tx.commit().await
    }

    /// Frees `key` after a call that changed nothing (it was refused), so that a retry is
    /// carried out.
    pub async fn release_idempotency_key(
        &self,
        principal: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.db().begin().await?;
        tx.execute(
            Statement::new(
                "DELETE FROM idempotency_keys \
                 WHERE principal = $1 AND idempotency_key = $2 AND outcome = ''",
            )
            .bind(principal)
            .bind(key),
            "idempotency key",
        )
        .await?;
        tx.commit().await
    }

    /// Deletes the keys reserved before `before`; how many went.
    pub async fn prune_idempotency_keys(&self, before: i64) -> Result<u64, StoreError> {
        let mut tx = self.db().begin().await?;
        let deleted = tx
            .execute(
                Statement::new("DELETE FROM idempotency_keys WHERE created_at < $1").bind(before),
                "idempotency key",
            )
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
