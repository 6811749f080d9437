//! The revocation list: tokens of the gateway refused before their expiry, by `jti`.
//!
//! A revocation is one mutation with one change-log entry (kind `revoked_token`, op `create`),
//! so every replica's [`crate::iam::live`] view learns it the way it learns any change.
//! Revoking a token already on the list changes nothing and logs nothing. Entries whose token
//! has expired are deleted in bulk by [`Store::prune_revoked_tokens`], without log entries: a
//! replica that reads such a change late finds no row and drops the entry, which by then
//! concerns only a token that is refused as expired anyway.

use crate::iam::ResourceKind;

use super::Store;
use super::db::{Columns, Statement};
use super::error::StoreError;
use super::model::{ChangeOp, RevokeToken, RevokedToken, Written};

macro_rules! columns {
    () => {
        "jti, subject_id, expires_at, revoked_at, revoked_by, version"
    };
}

pub(super) fn revoked_from_row(row: &impl Columns) -> Result<RevokedToken, StoreError> {
    Ok(RevokedToken {
        jti: row.text("jti")?,
        subject_id: row.text("subject_id")?,
        expires_at: row.int("expires_at")?,
        revoked_at: row.int("revoked_at")?,
        revoked_by: row.text("revoked_by")?,
        version: row.int("version")?,
    })
}

impl Store {
    /// Puts a token on the revocation list at `now`. Idempotent: a token already on it keeps
    /// its first entry, which is answered, and no change is logged.
    pub async fn revoke_token(
        &self,
        token: &RevokeToken<'_>,
        now: i64,
    ) -> Result<Written<RevokedToken>, StoreError> {
        let mut mutation = self.mutation(now).await?;
        let inserted = mutation
            .tx()
            .fetch_optional(
                Statement::new(concat!(
                    "INSERT INTO revoked_tokens (",
                    columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, 1) ON CONFLICT (jti) DO NOTHING RETURNING ",
                    columns!()
                ))
                .bind(token.jti)
                .bind(token.subject_id)
                .bind(token.expires_at)
                .bind(now)
                .bind(token.revoked_by),
                "revoked token",
            )
            .await?;
        let item = match inserted {
            Some(row) => {
                let item = revoked_from_row(&row)?;
                mutation.record(
                    ResourceKind::RevokedToken,
                    &item.jti,
                    ChangeOp::Create,
                    item.version,
                );
                item
            }
            None => {
                let row = mutation
                    .tx()
                    .fetch_optional(
                        Statement::new(concat!(
                            "SELECT ",
                            columns!(),
                            " FROM revoked_tokens WHERE jti = $1"
                        ))
                        .bind(token.jti),
                        "revoked token",
                    )
                    .await?
                    .ok_or_else(|| StoreError::Corrupt {
                        what: "revoked token",
                        reason: "the row that refused the insert is missing".into(),
                    })?;
                revoked_from_row(&row)?
            }
        };
        let seq = self.commit(mutation).await?;
        Ok(Written { item, seq })
    }

    /// The revocation list's entry for `jti`, if there is one.
    pub async fn get_revoked_token(&self, jti: &str) -> Result<Option<RevokedToken>, StoreError> {
        let row = self
            .db()
            .fetch_optional(
                Statement::new(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM revoked_tokens WHERE jti = $1"
                ))
                .bind(jti),
            )
            .await?;
        row.as_ref().map(revoked_from_row).transpose()
    }

    /// Deletes the entries of tokens that expired before `before`; how many went. Not logged:
    /// see the module documentation.
    pub async fn prune_revoked_tokens(&self, before: i64) -> Result<u64, StoreError> {
        let mut tx = self.db().begin().await?;
        let deleted = tx
            .execute(
                Statement::new("DELETE FROM revoked_tokens WHERE expires_at < $1").bind(before),
                "revoked token",
            )
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
