//! OIDC federations and federated credentials. A federation lives in a folder, its name unique
//! there; its issuer is fixed at creation. A federated credential ties one external subject of
//! a federation to a service account; it is immutable, the (account, federation, subject)
//! triple is unique, and it goes when either end is deleted ([`super::cascade`]).

use crate::iam::{ResourceKind, ids};

use super::Store;
use super::codec::{from_text, to_text};
use super::db::{Columns, Statement};
use super::error::StoreError;
use super::log::Mutation;
use super::model::{
    FederatedCredential, Federation, FederationUpdate, NewFederatedCredential, NewFederation,
    NewOperation, Operation, Page, PageRequest, Record, Seq, Written,
};
use super::operations::insert_operation;
use super::versions::not_found;

const FEDERATION_NAME: &str = "federation name in folder";
const CREDENTIAL: &str = "federated credential for this service account, federation and subject";

pub(super) fn federation_from_row(row: &impl Columns) -> Result<Federation, StoreError> {
    Ok(Federation {
        id: row.text("id")?,
        folder_id: row.text("folder_id")?,
        name: row.text("name")?,
        description: row.text("description")?,
        enabled: row.flag("enabled")?,
        audiences: from_text(&row.text("audiences")?, "federation audiences")?,
        issuer: row.text("issuer")?,
        jwks_url: row.text("jwks_url")?,
        labels: from_text(&row.text("labels")?, "federation labels")?,
        created_at: row.int("created_at")?,
        version: row.int("version")?,
    })
}

pub(super) fn credential_from_row(row: &impl Columns) -> Result<FederatedCredential, StoreError> {
    Ok(FederatedCredential {
        id: row.text("id")?,
        service_account_id: row.text("service_account_id")?,
        federation_id: row.text("federation_id")?,
        external_subject_id: row.text("external_subject_id")?,
        created_at: row.int("created_at")?,
        version: row.int("version")?,
    })
}

impl Store {
    /// Creates a federation in an existing folder ([`StoreError::FailedPrecondition`] if
    /// there is none). Its name must be new in the folder.
    pub async fn create_federation(
        &self,
        new: &NewFederation,
        now: i64,
    ) -> Result<Written<Federation>, StoreError> {
        let federation = Federation {
            id: ids::generate(ResourceKind::Federation)?,
            folder_id: new.folder_id.clone(),
            name: new.name.clone(),
            description: new.description.clone(),
            enabled: new.enabled,
            audiences: new.audiences.clone(),
            issuer: new.issuer.clone(),
            jwks_url: new.jwks_url.clone(),
            labels: new.labels.clone(),
            created_at: now,
            version: 1,
        };
        let mut m = self.mutation(now).await?;
        m.tx()
            .execute(
                Statement::new(
                    "INSERT INTO federations (id, folder_id, name, description, enabled, \
                     audiences, issuer, jwks_url, labels, created_at, version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&federation.id)
                .bind(&federation.folder_id)
                .bind(&federation.name)
                .bind(&federation.description)
                .bind(federation.enabled)
                .bind(to_text(&federation.audiences))
                .bind(&federation.issuer)
                .bind(&federation.jwks_url)
                .bind(to_text(&federation.labels))
                .bind(federation.created_at)
                .bind(federation.version),
                FEDERATION_NAME,
            )
            .await?;
        m.record_created(Record::Federation(federation.clone()));
        let seq = self.commit(m).await?;
        Ok(Written {
            item: federation,
            seq,
        })
    }

    pub async fn get_federation(&self, id: &str) -> Result<Federation, StoreError> {
        let row = self
            .db()
            .fetch_optional(
                Statement::new(
                    "SELECT id, folder_id, name, description, enabled, audiences, issuer, \
                     jwks_url, labels, created_at, version FROM federations WHERE id = $1",
                )
                .bind(id),
            )
            .await?;
        match row {
            Some(row) => federation_from_row(&row),
            None => Err(not_found(ResourceKind::Federation, id)),
        }
    }

    /// The federations of a folder, in id order.
    pub async fn list_federations(
        &self,
        folder_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Federation>, StoreError> {
        let size = page.effective_size();
        let rows = self
            .db()
            .fetch_all(
                Statement::new(
                    "SELECT id, folder_id, name, description, enabled, audiences, issuer, \
                     jwks_url, labels, created_at, version FROM federations \
                     WHERE folder_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(folder_id)
                .bind(page.start_after())
                .bind(i64::from(size) + 1),
            )
            .await?;
        let items = rows
            .iter()
            .map(federation_from_row)
            .collect::<Result<_, _>>()?;
        Ok(Page::cut(items, size, |f: &Federation| &f.id))
    }

    /// Replaces a federation's mutable fields (all but folder and issuer), if its version is
    /// still `expected`. A new name must be free in the folder.
    pub async fn update_federation(
        &self,
        id: &str,
        expected: i64,
        update: &FederationUpdate,
        now: i64,
    ) -> Result<Written<Federation>, StoreError> {
        let mut m = self.mutation(now).await?;
        let row = m
            .tx()
            .fetch_optional(
                Statement::new(
                    "UPDATE federations SET name = $1, description = $2, enabled = $3, \
                     audiences = $4, jwks_url = $5, labels = $6, version = version + 1 \
                     WHERE id = $7 AND version = $8 \
                     RETURNING id, folder_id, name, description, enabled, audiences, issuer, \
                     jwks_url, labels, created_at, version",
                )
                .bind(&update.name)
                .bind(&update.description)
                .bind(update.enabled)
                .bind(to_text(&update.audiences))
                .bind(&update.jwks_url)
                .bind(to_text(&update.labels))
                .bind(id)
                .bind(expected),
                FEDERATION_NAME,
            )
            .await?;
        self.finish_update(
            m,
            ResourceKind::Federation,
            id,
            expected,
            row,
            federation_from_row,
        )
        .await
    }

    /// Deletes a federation with its federated credentials and the bindings on it.
    pub async fn delete_federation(
        &self,
        id: &str,
        expected: Option<i64>,
        now: i64,
    ) -> Result<Seq, StoreError> {
        self.delete_resource(ResourceKind::Federation, id, expected, now)
            .await
    }

    /// Creates a federated credential between an existing service account and federation
    /// ([`StoreError::FailedPrecondition`] if either is missing). The triple must be new.
    pub async fn create_federated_credential(
        &self,
        new: &NewFederatedCredential,
        now: i64,
    ) -> Result<Written<FederatedCredential>, StoreError> {
        let (m, credential) = self.insert_federated_credential(new, now).await?;
        self.commit_created_credential(m, credential).await
    }

    /// Creates a federated credential and keeps, in the same transaction, the finished
    /// operation `operation` makes of it: one commit, and one `fsync` on SQLite, where keeping
    /// the operation afterwards ([`Store::create_operation`]) takes two.
    pub async fn create_federated_credential_with(
        &self,
        new: &NewFederatedCredential,
        now: i64,
        operation: impl FnOnce(&FederatedCredential) -> NewOperation,
    ) -> Result<(Written<FederatedCredential>, Operation), StoreError> {
        let (mut m, credential) = self.insert_federated_credential(new, now).await?;
        let (kept, insert) = insert_operation(&operation(&credential), now)?;
        m.tx().execute(insert, "operation").await?;
        let written = self.commit_created_credential(m, credential).await?;
        Ok((written, kept))
    }

    /// Starts the mutation that creates a federated credential, and inserts it.
    async fn insert_federated_credential(
        &self,
        new: &NewFederatedCredential,
        now: i64,
    ) -> Result<(Mutation, FederatedCredential), StoreError> {
        let credential = FederatedCredential {
            id: ids::generate(ResourceKind::FederatedCredential)?,
            service_account_id: new.service_account_id.clone(),
            federation_id: new.federation_id.clone(),
            external_subject_id: new.external_subject_id.clone(),
            created_at: now,
            version: 1,
        };
        let mut m = self.mutation(now).await?;
        m.tx()
            .execute(
                Statement::new(
                    "INSERT INTO federated_credentials (id, service_account_id, federation_id, \
                     external_subject_id, created_at, version) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&credential.id)
                .bind(&credential.service_account_id)
                .bind(&credential.federation_id)
                .bind(&credential.external_subject_id)
                .bind(credential.created_at)
                .bind(credential.version),
                CREDENTIAL,
            )
            .await?;
        Ok((m, credential))
    }

    async fn commit_created_credential(
        &self,
        mut m: Mutation,
        credential: FederatedCredential,
    ) -> Result<Written<FederatedCredential>, StoreError> {
        m.record_created(Record::FederatedCredential(credential.clone()));
        let seq = self.commit(m).await?;
        Ok(Written {
            item: credential,
            seq,
        })
    }

    pub async fn get_federated_credential(
        &self,
        id: &str,
    ) -> Result<FederatedCredential, StoreError> {
        let row = self
            .db()
            .fetch_optional(
                Statement::new(
                    "SELECT id, service_account_id, federation_id, external_subject_id, \
                     created_at, version FROM federated_credentials WHERE id = $1",
                )
                .bind(id),
            )
            .await?;
        match row {
            Some(row) => credential_from_row(&row),
            None => Err(not_found(ResourceKind::FederatedCredential, id)),
        }
    }

    /// The federated credentials of a service account, in id order (Yandex lists them only
    /// by service account).
    pub async fn list_federated_credentials(
        &self,
        service_account_id: &str,
        page: &PageRequest,
    ) -> Result<Page<FederatedCredential>, StoreError> {
        let size = page.effective_size();
        let rows = self
            .db()
            .fetch_all(
                Statement::new(
                    "SELECT id, service_account_id, federation_id, external_subject_id, \
                     created_at, version FROM federated_credentials \
                     WHERE service_account_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(service_account_id)
                .bind(page.start_after())
                .bind(i64::from(size) + 1),
            )
            .await?;
        let items = rows
            .iter()
            .map(credential_from_row)
            .collect::<Result<_, _>>()?;
        Ok(Page::cut(items, size, |c: &FederatedCredential| &c.id))
    }

    pub async fn delete_federated_credential(
        &self,
        id: &str,
        expected: Option<i64>,
        now: i64,
    ) -> Result<Seq, StoreError> {
        self.delete_resource(ResourceKind::FederatedCredential, id, expected, now)
            .await
    }
}
