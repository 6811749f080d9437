//! API keys of service accounts: the SHA-256 of each secret, never the secret, with the key's
//! description, masked secret, scopes and expiry. A key belongs to a service account and is
//! deleted with it ([`super::cascade`]); the hash is unique, so one secret never names two keys.
//! The in-memory view that checks presented keys ([`crate::iam::live`]) reads them through
//! [`super::scan`].

use crate::iam::{ResourceKind, ids};

use super::Store;
use super::codec::{from_text, to_text};
use super::db::{Columns, Statement};
use super::error::StoreError;
use super::model::{ApiKey, ApiKeyUpdate, NewApiKey, Page, PageRequest, Record, Seq, Written};
use super::versions::not_found;

/// What a unique violation of `api_keys` means: the only unique column besides the id.
const SECRET_HASH: &str = "API key secret";

pub(super) fn key_from_row(row: &impl Columns) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.text("id")?,
        service_account_id: row.text("service_account_id")?,
        description: row.text("description")?,
        secret_hash: row.text("secret_hash")?,
        masked_secret: row.text("masked_secret")?,
        scopes: from_text(&row.text("scopes")?, "API key scopes")?,
        expires_at: row.opt_int("expires_at")?,
        last_used_at: row.opt_int("last_used_at")?,
        created_at: row.int("created_at")?,
        version: row.int("version")?,
    })
}

impl Store {
    /// Stores a new API key of an existing service account
    /// ([`StoreError::FailedPrecondition`] if there is none); a hash already stored is
    /// [`StoreError::AlreadyExists`].
    pub async fn create_api_key(
        &self,
        new: &NewApiKey,
        now: i64,
    ) -> Result<Written<ApiKey>, StoreError> {
        let key = ApiKey {
            id: ids::generate(ResourceKind::ApiKey)?,
            service_account_id: new.service_account_id.clone(),
            description: new.description.clone(),
            secret_hash: new.secret_hash.clone(),
            masked_secret: new.masked_secret.clone(),
            scopes: new.scopes.clone(),
            expires_at: new.expires_at,
            last_used_at: None,
            created_at: now,
            version: 1,
        };
        let mut m = self.mutation(now).await?;
        m.tx()
            .execute(
                Statement::new(
                    "INSERT INTO api_keys (id, service_account_id, description, secret_hash, \
                     masked_secret, scopes, expires_at, last_used_at, created_at, version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&key.id)
                .bind(&key.service_account_id)
                .bind(&key.description)
                .bind(&key.secret_hash)
                .bind(&key.masked_secret)
                .bind(to_text(&key.scopes))
                .bind(key.expires_at)
                .bind(key.last_used_at)
                .bind(key.created_at)
                .bind(key.version),
                SECRET_HASH,
            )
            .await?;
        m.record_created(Record::ApiKey(key.clone()));
        let seq = self.commit(m).await?;
        Ok(Written { item: key, seq })
    }

    pub async fn get_api_key(&self, id: &str) -> Result<ApiKey, StoreError> {
        let row = self
            .db()
            .fetch_optional(
                Statement::new(
                    "SELECT id, service_account_id, description, secret_hash, masked_secret, \
                     scopes, expires_at, last_used_at, created_at, version \
                     FROM api_keys WHERE id = $1",
                )
                .bind(id),
            )
            .await?;
        match row {
            Some(row) => key_from_row(&row),
            None => Err(not_found(ResourceKind::ApiKey, id)),
        }
    }

    /// The API keys of a service account, in id order.
    pub async fn list_api_keys(
        &self,
        service_account_id: &str,
        page: &PageRequest,
    ) -> Result<Page<ApiKey>, StoreError> {
        let size = page.effective_size();
        let rows = self
            .db()
            .fetch_all(
                Statement::new(
                    "SELECT id, service_account_id, description, secret_hash, masked_secret, \
                     scopes, expires_at, last_used_at, created_at, version FROM api_keys \
                     WHERE service_account_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(service_account_id)
                .bind(page.start_after())
                .bind(i64::from(size) + 1),
            )
            .await?;
        let items = rows.iter().map(key_from_row).collect::<Result<_, _>>()?;
        Ok(Page::cut(items, size, |k: &ApiKey| &k.id))
    }

    /// Replaces a key's description, scopes and expiry, if its version is still `expected`.
    /// The secret (its hash and mask) never changes.
    pub async fn update_api_key(
        &self,
        id: &str,
        expected: i64,
        update: &ApiKeyUpdate,
        now: i64,
    ) -> Result<Written<ApiKey>, StoreError> {
        let mut m = self.mutation(now).await?;
        let row = m
            .tx()
            .fetch_optional(
                Statement::new(
                    "UPDATE api_keys SET description = $1, scopes = $2, expires_at = $3, \
                     version = version + 1 WHERE id = $4 AND version = $5 \
                     RETURNING id, service_account_id, description, secret_hash, \
                     masked_secret, scopes, expires_at, last_used_at, created_at, version",
                )
                .bind(&update.description)
                .bind(to_text(&update.scopes))
                .bind(update.expires_at)
                .bind(id)
                .bind(expected),
                SECRET_HASH,
            )
            .await?;
        self.finish_update(m, ResourceKind::ApiKey, id, expected, row, key_from_row)
            .await
    }

    pub async fn delete_api_key(
        &self,
        id: &str,
        expected: Option<i64>,
        now: i64,
    ) -> Result<Seq, StoreError> {
        self.delete_resource(ResourceKind::ApiKey, id, expected, now)
            .await
    }
}
