//! The first contents of an empty store, written in one transaction: a cloud, a folder in it, a
//! service account in the folder, an access binding that grants the account a role on the
//! cloud, and an authorized key of the account.
//!
//! "Empty" is decided inside the transaction, after the change counter is locked: the counter is
//! 0 only before the first mutation ever committed. So of several gateways that start at once
//! on one empty database, exactly one bootstraps it, and a store that ever held anything is
//! never bootstrapped again, even if everything was deleted since.

use crate::iam::{ResourceKind, ids};

use super::Store;
use super::accounts::{insert_account, insert_key};
use super::bindings::insert_binding;
use super::db::Statement;
use super::error::StoreError;
use super::hierarchy::{insert_cloud, insert_folder};
use super::model::{
    AccessBinding, AuthorizedKey, Bootstrapped, ChangeOp, Cloud, Folder, NewBootstrap, ResourceRef,
    ServiceAccount, ServiceAccountStatus, Subject, SubjectType, Written,
};

impl Store {
    /// Fills an empty store with `new`, all or nothing. `before_commit` runs inside the
    /// transaction once everything is written and before it commits: an error from it rolls
    /// everything back (it is where the caller saves the key's private half, so that a committed
    /// bootstrap always has its key file). Returns `None`, having changed nothing, when the
    /// store has ever held anything.
    pub async fn bootstrap<E: From<StoreError>>(
        &self,
        new: &NewBootstrap,
        now: i64,
        before_commit: impl FnOnce(&Bootstrapped) -> Result<(), E>,
    ) -> Result<Option<Written<Bootstrapped>>, E> {
        let mut m = self.mutation(now).await?;
        let counter = m
            .tx()
            .fetch_optional(
                Statement::new("SELECT seq FROM change_counter WHERE id = 1"),
                "change counter",
            )
            .await?;
        if counter.map(|row| row.int("seq")).transpose()? != Some(0) {
            return Ok(None);
        }
        let cloud = Cloud {
            id: ids::generate(ResourceKind::Cloud).map_err(StoreError::from)?,
            organization_id: new.cloud.organization_id.clone(),
            name: new.cloud.name.clone(),
            description: new.cloud.description.clone(),
            labels: new.cloud.labels.clone(),
            created_at: now,
            version: 1,
        };
        let folder = Folder {
            id: ids::generate(ResourceKind::Folder).map_err(StoreError::from)?,
            cloud_id: cloud.id.clone(),
            name: new.folder.name.clone(),
            description: new.folder.description.clone(),
            labels: new.folder.labels.clone(),
            created_at: now,
            version: 1,
        };
        let account = ServiceAccount {
            id: ids::generate(ResourceKind::ServiceAccount).map_err(StoreError::from)?,
            folder_id: folder.id.clone(),
            cloud_id: cloud.id.clone(),
            name: new.service_account.name.clone(),
            description: new.service_account.description.clone(),
            labels: new.service_account.labels.clone(),
            status: ServiceAccountStatus::Active,
            suspended_until: None,
            last_authenticated_at: None,
            created_at: now,
            version: 1,
        };
        let binding = AccessBinding {
            id: ids::generate(ResourceKind::AccessBinding).map_err(StoreError::from)?,
            resource: ResourceRef::new(ResourceKind::Cloud, cloud.id.clone()),
            role_id: new.role_id.clone(),
            subject: Subject {
                subject_type: SubjectType::ServiceAccount,
                id: account.id.clone(),
            },
            created_at: now,
            version: 1,
        };
        let key = AuthorizedKey {
            id: ids::generate(ResourceKind::AuthorizedKey).map_err(StoreError::from)?,
            service_account_id: account.id.clone(),
            description: new.key.description.clone(),
            key_algorithm: new.key.key_algorithm,
            public_key: new.key.public_key.clone(),
            last_used_at: None,
            created_at: now,
            version: 1,
        };
        let statements = [
            insert_cloud(&cloud),
            insert_folder(&folder),
            insert_account(&account),
            insert_binding(&binding),
            insert_key(&key),
        ];
        for (statement, unique) in statements {
            m.tx().execute(statement, unique).await?;
        }
        for (kind, id) in [
            (ResourceKind::Cloud, &cloud.id),
            (ResourceKind::Folder, &folder.id),
            (ResourceKind::ServiceAccount, &account.id),
            (ResourceKind::AccessBinding, &binding.id),
            (ResourceKind::AuthorizedKey, &key.id),
        ] {
            m.record(kind, id, ChangeOp::Create, 1);
        }
        let item = Bootstrapped {
            cloud,
            folder,
            service_account: account,
            binding,
            key,
        };
        before_commit(&item)?;
        let seq = self.commit(m).await?;
        Ok(Some(Written { item, seq }))
    }
}
