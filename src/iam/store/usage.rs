//! When service accounts last authenticated and their keys were last used: columns written in
//! batches by the usage recorder ([`crate::iam::usage`]), outside the change log. A batch is one
//! transaction, serialized with the mutations like any write; a later time never gives way to an
//! earlier one (another replica may have written a later use), and a row deleted meanwhile is
//! simply not found.

use super::Store;
use super::db::Statement;
use super::error::StoreError;
use super::model::UsedBy;

impl UsedBy {
    /// The update of one row: `$1` the time, `$2` the id.
    const fn update(self) -> &'static str {
        match self {
            UsedBy::ServiceAccount => {
                "UPDATE service_accounts SET last_authenticated_at = $1 \
                 WHERE id = $2 AND (last_authenticated_at IS NULL OR last_authenticated_at < $1)"
            }
            UsedBy::AuthorizedKey => {
                "UPDATE authorized_keys SET last_used_at = $1 \
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)"
            }
            UsedBy::ApiKey => {
                "UPDATE api_keys SET last_used_at = $1 \
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)"
            }
            UsedBy::AccessKey => {
                "UPDATE access_keys SET last_used_at = $1 \
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)"
            }
        }
    }
}

impl Store {
    /// Writes a batch of uses (what, id, Unix seconds) in one transaction; how many rows moved
    /// forward. Logs no change and bumps no version.
    pub async fn record_usage(
        &self,
        uses: &[(UsedBy, String, i64)],
        now: i64,
    ) -> Result<u64, StoreError> {
        if uses.is_empty() {
            return Ok(0);
        }
        let mut m = self.mutation(now).await?;
        let mut moved = 0;
        for (used, id, at) in uses {
            moved += m
                .tx()
                .execute(
                    Statement::new(used.update()).bind(*at).bind(id.as_str()),
                    "usage",
                )
                .await?;
        }
        self.commit(m).await?;
        Ok(moved)
    }
}
