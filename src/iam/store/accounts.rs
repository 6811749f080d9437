//! Service accounts and their authorized keys. A service account lives in a folder, and its
//! name is unique in the folder's cloud; deleting it deletes its keys, its federated
//! credentials and the access bindings on it ([`super::cascade`]). Keys keep only the public
//! half.

use crate::iam::{ResourceKind, ids};

use super::Store;
use super::codec::{from_name, from_text, to_text};
use super::db::{Columns, Row, Statement};
use super::error::StoreError;
use super::model::{
    AuthorizedKey, AuthorizedKeyUpdate, ChangeOp, KeyAlgorithm, NewAuthorizedKey,
    NewServiceAccount, Page, PageRequest, Record, Seq, ServiceAccount, ServiceAccountStatus,
    ServiceAccountUpdate, Written,
};
use super::versions::not_found;

const ACCOUNT_NAME: &str = "service account name in cloud";

/// The columns a service account is read from.
macro_rules! account_columns {
    () => {
        "id, folder_id, cloud_id, name, description, labels, status, suspended_until, \
         last_authenticated_at, created_at, version"
    };
}

/// The columns an authorized key is read from.
macro_rules! key_columns {
    () => {
        "id, service_account_id, description, key_algorithm, public_key, last_used_at, \
         created_at, version"
    };
}

/// The statement that stores a new service account, and what its uniqueness rule means.
pub(super) fn insert_account(account: &ServiceAccount) -> (Statement, &'static str) {
    let statement = Statement::new(
        "INSERT INTO service_accounts (id, folder_id, cloud_id, name, description, \
         labels, status, suspended_until, created_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&account.id)
    .bind(&account.folder_id)
    .bind(&account.cloud_id)
    .bind(&account.name)
    .bind(&account.description)
    .bind(to_text(&account.labels))
    .bind(account.status.as_str())
    .bind(account.suspended_until)
    .bind(account.created_at)
    .bind(account.version);
    (statement, ACCOUNT_NAME)
}

/// The statement that stores a new authorized key's public half.
pub(super) fn insert_key(key: &AuthorizedKey) -> (Statement, &'static str) {
    let statement = Statement::new(
        "INSERT INTO authorized_keys (id, service_account_id, description, \
         key_algorithm, public_key, created_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&key.id)
    .bind(&key.service_account_id)
    .bind(&key.description)
    .bind(key.key_algorithm.as_str())
    .bind(&key.public_key)
    .bind(key.created_at)
    .bind(key.version);
    (statement, "authorized key")
}

pub(super) fn account_from_row(row: &impl Columns) -> Result<ServiceAccount, StoreError> {
    Ok(ServiceAccount {
        id: row.text("id")?,
        folder_id: row.text("folder_id")?,
        cloud_id: row.text("cloud_id")?,
        name: row.text("name")?,
        description: row.text("description")?,
        labels: from_text(&row.text("labels")?, "service account labels")?,
        status: from_name(
            &row.text("status")?,
            ServiceAccountStatus::parse,
            "service account status",
        )?,
        suspended_until: row.opt_int("suspended_until")?,
        last_authenticated_at: row.opt_int("last_authenticated_at")?,
        created_at: row.int("created_at")?,
        version: row.int("version")?,
    })
}

fn key_from_row(row: &Row) -> Result<AuthorizedKey, StoreError> {
    Ok(AuthorizedKey {
        id: row.text("id")?,
        service_account_id: row.text("service_account_id")?,
        description: row.text("description")?,
        key_algorithm: from_name(
            &row.text("key_algorithm")?,
            KeyAlgorithm::parse,
            "key algorithm",
        )?,
        public_key: row.text("public_key")?,
        last_used_at: row.opt_int("last_used_at")?,
        created_at: row.int("created_at")?,
        version: row.int("version")?,
    })
}

impl Store {
    /// Creates an active service account in an existing folder
    /// ([`StoreError::FailedPrecondition`] if there is none). Its name must be new in the
    /// folder's cloud.
    pub async fn create_service_account(
        &self,
        new: &NewServiceAccount,
        now: i64,
    ) -> Result<Written<ServiceAccount>, StoreError> {
        let id = ids::generate(ResourceKind::ServiceAccount)?;
        let mut m = self.mutation(now).await?;
        let folder = m
            .tx()
            .fetch_optional(
                Statement::new("SELECT cloud_id FROM folders WHERE id = $1").bind(&new.folder_id),
                "folder",
            )
            .await?;
        let Some(folder) = folder else {
            return Err(StoreError::FailedPrecondition {
                reason: format!("folder {} not found", new.folder_id),
            });
        };
        let account = ServiceAccount {
            id,
            folder_id: new.folder_id.clone(),
            cloud_id: folder.text("cloud_id")?,
            name: new.name.clone(),
            description: new.description.clone(),
            labels: new.labels.clone(),
            status: ServiceAccountStatus::Active,
            suspended_until: None,
            last_authenticated_at: None,
            created_at: now,
            version: 1,
        };
        let (insert, unique) = insert_account(&account);
        m.tx().execute(insert, unique).await?;
        m.record_created(Record::ServiceAccount(account.clone()));
        let seq = self.commit(m).await?;
        Ok(Written { item: account, seq })
    }

    pub async fn get_service_account(&self, id: &str) -> Result<ServiceAccount, StoreError> {
        let row = self
            .db()
            .fetch_optional(
                Statement::new(concat!(
                    "SELECT ",
                    account_columns!(),
                    " FROM service_accounts WHERE id = $1"
                ))
                .bind(id),
            )
            .await?;
        match row {
            Some(row) => account_from_row(&row),
            None => Err(not_found(ResourceKind::ServiceAccount, id)),
        }
    }

    /// The service accounts of a folder, in id order.
    pub async fn list_service_accounts(
        &self,
        folder_id: &str,
        page: &PageRequest,
    ) -> Result<Page<ServiceAccount>, StoreError> {
        let size = page.effective_size();
        let rows = self
            .db()
            .fetch_all(
                Statement::new(concat!(
                    "SELECT ",
                    account_columns!(),
                    " FROM service_accounts WHERE folder_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                ))
                .bind(folder_id)
                .bind(page.start_after())
                .bind(i64::from(size) + 1),
            )
            .await?;
        let items = rows
            .iter()
            .map(account_from_row)
            .collect::<Result<_, _>>()?;
        Ok(Page::cut(items, size, |a: &ServiceAccount| &a.id))
    }

    /// Replaces a service account's name, description, labels and status, if its version is
    /// still `expected`. A new name must be free in the cloud.
    pub async fn update_service_account(
        &self,
        id: &str,
        expected: i64,
        update: &ServiceAccountUpdate,
        now: i64,
    ) -> Result<Written<ServiceAccount>, StoreError> {
        let mut m = self.mutation(now).await?;
        let row = m
            .tx()
            .fetch_optional(
                Statement::new(concat!(
                    "UPDATE service_accounts SET name = $1, description = $2, labels = $3, \
                     status = $4, suspended_until = $7, version = version + 1 \
                     WHERE id = $5 AND version = $6 RETURNING ",
                    account_columns!()
                ))
                .bind(&update.name)
                .bind(&update.description)
                .bind(to_text(&update.labels))
                .bind(update.status.as_str())
                .bind(id)
                .bind(expected)
                .bind(update.suspended_until),
                ACCOUNT_NAME,
            )
            .await?;
        self.finish_update(
            m,
            ResourceKind::ServiceAccount,
            id,
            expected,
            row,
            account_from_row,
        )
        .await
    }

    /// Up to `limit` suspended service accounts whose suspension ended at or before `now`, in id
    /// order.
    pub async fn ended_suspensions(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<ServiceAccount>, StoreError> {
        let rows = self
            .db()
            .fetch_all(
                Statement::new(concat!(
                    "SELECT ",
                    account_columns!(),
                    " FROM service_accounts WHERE status = 'SUSPENDED' \
                     AND suspended_until IS NOT NULL AND suspended_until <= $1 \
                     ORDER BY id LIMIT $2"
                ))
                .bind(now)
                .bind(i64::from(limit)),
            )
            .await?;
        rows.iter().map(account_from_row).collect()
    }

    /// Deletes a service account with its keys, federated credentials and the bindings on it.
    pub async fn delete_service_account(
        &self,
        id: &str,
        expected: Option<i64>,
        now: i64,
    ) -> Result<Seq, StoreError> {
        self.delete_resource(ResourceKind::ServiceAccount, id, expected, now)
            .await
    }

    /// Stores the public half of a new authorized key of an existing service account
    /// ([`StoreError::FailedPrecondition`] if there is none).
    pub async fn create_authorized_key(
        &self,
        new: &NewAuthorizedKey,
        now: i64,
    ) -> Result<Written<AuthorizedKey>, StoreError> {
        let key = AuthorizedKey {
            id: ids::generate(ResourceKind::AuthorizedKey)?,
            service_account_id: new.service_account_id.clone(),
            description: new.description.clone(),
            key_algorithm: new.key_algorithm,
            public_key: new.public_key.clone(),
            last_used_at: None,
            created_at: now,
            version: 1,
        };
        let mut m = self.mutation(now).await?;
        let (insert, unique) = insert_key(&key);
        m.tx().execute(insert, unique).await?;
        m.record(
            ResourceKind::AuthorizedKey,
            &key.id,
            ChangeOp::Create,
            key.version,
        );
        let seq = self.commit(m).await?;
        Ok(Written { item: key, seq })
    }

    pub async fn get_authorized_key(&self, id: &str) -> Result<AuthorizedKey, StoreError> {
        let row = self
            .db()
            .fetch_optional(
                Statement::new(concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM authorized_keys WHERE id = $1"
                ))
                .bind(id),
            )
            .await?;
        match row {
            Some(row) => key_from_row(&row),
            None => Err(not_found(ResourceKind::AuthorizedKey, id)),
        }
    }

    /// The authorized keys of a service account, in id order.
    pub async fn list_authorized_keys(
        &self,
        service_account_id: &str,
        page: &PageRequest,
    ) -> Result<Page<AuthorizedKey>, StoreError> {
        let size = page.effective_size();
        let rows = self
            .db()
            .fetch_all(
                Statement::new(concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM authorized_keys WHERE service_account_id = $1 AND id > $2 \
                     ORDER BY id LIMIT $3"
                ))
                .bind(service_account_id)
                .bind(page.start_after())
                .bind(i64::from(size) + 1),
            )
            .await?;
        let items = rows.iter().map(key_from_row).collect::<Result<_, _>>()?;
        Ok(Page::cut(items, size, |k: &AuthorizedKey| &k.id))
    }

    /// Replaces a key's description, if its version is still `expected`.
    pub async fn update_authorized_key(
        &self,
        id: &str,
        expected: i64,
        update: &AuthorizedKeyUpdate,
        now: i64,
    ) -> Result<Written<AuthorizedKey>, StoreError> {
        let mut m = self.mutation(now).await?;
        let row = m
            .tx()
            .fetch_optional(
                Statement::new(concat!(
                    "UPDATE authorized_keys SET description = $1, version = version + 1 \
                     WHERE id = $2 AND version = $3 RETURNING ",
                    key_columns!()
                ))
                .bind(&update.description)
                .bind(id)
                .bind(expected),
                "authorized key",
            )
            .await?;
        self.finish_update(
            m,
            ResourceKind::AuthorizedKey,
            id,
            expected,
            row,
            key_from_row,
        )
        .await
    }

    pub async fn delete_authorized_key(
        &self,
        id: &str,
        expected: Option<i64>,
        now: i64,
    ) -> Result<Seq, StoreError> {
        self.delete_resource(ResourceKind::AuthorizedKey, id, expected, now)
            .await
    }
}
