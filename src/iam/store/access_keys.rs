//! Static access keys of service accounts: the public access key id and the sealed secret
//! ([`super::model::SealedSecret`]; sealing and opening are [`crate::iam::sealing`]'s, the
//! store never sees a secret). Deleting a service account deletes its access keys
//! ([`super::cascade`]). The in-memory views follow this table ([`super::FOLLOWED`]), so
//! signatures are verified without a query.

use crate::iam::ResourceKind;

use super::Store;
use super::db::{Columns, Statement};
use super::error::StoreError;
use super::model::{
    AccessKey, AccessKeyUpdate, NewAccessKey, Page, PageRequest, Record, SealedSecret, Seq, Written,
};
use super::versions::not_found;

/// The columns of a row, in the order [`access_key_from_row`] reads them.
macro_rules! columns {
    () => {
        "id, service_account_id, description, key_id, secret_sealed, last_used_at, created_at, \
         version"
    };
}

/// What a unique violation of an insert means: the random key id was taken.
const KEY_ID: &str = "access key id";

pub(super) fn access_key_from_row(row: &impl Columns) -> Result<AccessKey, StoreError> {
    Ok(AccessKey {
        id: row.text("id")?,
        service_account_id: row.text("service_account_id")?,
        description: row.text("description")?,
        key_id: row.text("key_id")?,
        secret: SealedSecret::from_stored(row.text("secret_sealed")?),
        last_used_at: row.opt_int("last_used_at")?,
        created_at: row.int("created_at")?,
        version: row.int("version")?,
    })
}

impl Store {
    /// Stores a new access key of an existing service account
    /// ([`StoreError::FailedPrecondition`] if there is none); its `key_id` must be new
    /// ([`StoreError::AlreadyExists`]).
    pub async fn create_access_key(
        &self,
        new: &NewAccessKey,
        now: i64,
    ) -> Result<Written<AccessKey>, StoreError> {
        let key = AccessKey {
            id: new.id.clone(),
            service_account_id: new.service_account_id.clone(),
            description: new.description.clone(),
            key_id: new.key_id.clone(),
            secret: new.secret.clone(),
            last_used_at: None,
            created_at: now,
            version: 1,
        };
        let mut m = self.mutation(now).await?;
        let account = m
            .tx()
            .fetch_optional(
                Statement::new("SELECT id FROM service_accounts WHERE id = $1")
                    .bind(&key.service_account_id),
                "service account",
            )
            .await?;
        if account.is_none() {
            return Err(StoreError::FailedPrecondition {
                reason: format!("service account {} not found", key.service_account_id),
            });
        }
        m.tx()
            .execute(
                Statement::new(
                    "INSERT INTO access_keys (id, service_account_id, description, key_id, \
                     secret_sealed, last_used_at, created_at, version) \
                     VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)",
                )
                .bind(&key.id)
                .bind(&key.service_account_id)
                .bind(&key.description)
                .bind(&key.key_id)
                .bind(key.secret.as_stored())
                .bind(key.created_at)
                .bind(key.version),
                KEY_ID,
            )
            .await?;
        m.record_created(Record::AccessKey(key.clone()));
        let seq = self.commit(m).await?;
        Ok(Written { item: key, seq })
    }

    pub async fn get_access_key(&self, id: &str) -> Result<AccessKey, StoreError> {
        let row = self
            .db()
            .fetch_optional(
                Statement::new(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM access_keys WHERE id = $1"
                ))
                .bind(id),
            )
            .await?;
        match row {
            Some(row) => access_key_from_row(&row),
            None => Err(not_found(ResourceKind::AccessKey, id)),
        }
    }

    /// The access keys of a service account, in id order.
    pub async fn list_access_keys(
        &self,
        service_account_id: &str,
        page: &PageRequest,
    ) -> Result<Page<AccessKey>, StoreError> {
        let size = page.effective_size();
        let rows = self
            .db()
            .fetch_all(
                Statement::new(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM access_keys WHERE service_account_id = $1 AND id > $2 \
                     ORDER BY id LIMIT $3"
                ))
                .bind(service_account_id)
                .bind(page.start_after())
                .bind(i64::from(size) + 1),
            )
            .await?;
        let items = rows
            .iter()
            .map(access_key_from_row)
            .collect::<Result<_, _>>()?;
        Ok(Page::cut(items, size, |k: &AccessKey| &k.id))
    }

    /// Up to `limit` access keys whose secret is sealed under a key other than
    /// `sealing_key_id`, in id order: what is left to seal again after a rotation.
    pub async fn access_keys_sealed_under_other_keys(
        &self,
        sealing_key_id: &str,
        limit: u32,
    ) -> Result<Vec<AccessKey>, StoreError> {
        let rows = self
            .db()
            .fetch_all(
                Statement::new(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM access_keys WHERE substr(secret_sealed, 1, length($1) + 1) <> $2 \
                     ORDER BY id LIMIT $3"
                ))
                .bind(sealing_key_id)
                .bind(format!("{sealing_key_id}:"))
                .bind(i64::from(limit)),
            )
            .await?;
        rows.iter().map(access_key_from_row).collect()
    }

    /// Replaces a key's description, if its version is still `expected`.
    pub async fn update_access_key(
        &self,
        id: &str,
        expected: i64,
        update: &AccessKeyUpdate,
        now: i64,
    ) -> Result<Written<AccessKey>, StoreError> {
        let sql = concat!(
            "UPDATE access_keys SET description = $1, version = version + 1 \
             WHERE id = $2 AND version = $3 RETURNING ",
            columns!()
        );
        self.set_access_key_column(sql, &update.description, id, expected, now)
            .await
    }

    /// Replaces a key's sealed secret (the same secret, sealed again under another key), if
    /// its version is still `expected`.
    pub async fn reseal_access_key(
        &self,
        id: &str,
        expected: i64,
        secret: &SealedSecret,
        now: i64,
    ) -> Result<Written<AccessKey>, StoreError> {
        let sql = concat!(
            "UPDATE access_keys SET secret_sealed = $1, version = version + 1 \
             WHERE id = $2 AND version = $3 RETURNING ",
            columns!()
        );
        self.set_access_key_column(sql, secret.as_stored(), id, expected, now)
            .await
    }

    /// One conditional update `sql` (`… SET <column> = $1 … WHERE id = $2 AND version = $3
    /// RETURNING …`) of a key, logged.
    async fn set_access_key_column(
        &self,
        sql: &'static str,
        value: &str,
        id: &str,
        expected: i64,
        now: i64,
    ) -> Result<Written<AccessKey>, StoreError> {
        let mut m = self.mutation(now).await?;
        let row = m
            .tx()
            .fetch_optional(
                Statement::new(sql).bind(value).bind(id).bind(expected),
                "access key",
            )
            .await?;
        self.finish_update(
            m,
            ResourceKind::AccessKey,
            id,
            expected,
            row,
            access_key_from_row,
        )
        .await
    }

    pub async fn delete_access_key(
        &self,
        id: &str,
        expected: Option<i64>,
        now: i64,
    ) -> Result<Seq, StoreError> {
        self.delete_resource(ResourceKind::AccessKey, id, expected, now)
            .await
    }
}
