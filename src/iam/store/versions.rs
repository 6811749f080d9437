//! Optimistic concurrency and deletion, the same for every kind. An update is one conditional
//! statement (`… WHERE id = $id AND version = $expected`); when it changes nothing,
//! [`missed`] tells whether the resource is gone ([`StoreError::NotFound`]) or was changed
//! by someone else ([`StoreError::Conflict`]). A deletion checks the version the same way,
//! collects what the cascade takes with it ([`super::cascade`]), deletes, and logs every
//! deleted resource.

use crate::iam::ResourceKind;

use super::Store;
use super::cascade;
use super::db::{Row, Statement, Tx};
use super::error::StoreError;
use super::log::Mutation;
use super::model::{ChangeOp, Seq, Written};

/// How errors name a kind.
pub(crate) const fn noun(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Cloud => "cloud",
        ResourceKind::Folder => "folder",
        ResourceKind::ServiceAccount => "service account",
        ResourceKind::Federation => "federation",
        ResourceKind::FederatedCredential => "federated credential",
        ResourceKind::AuthorizedKey => "authorized key",
        ResourceKind::AccessKey => "access key",
        ResourceKind::ApiKey => "API key",
        ResourceKind::AccessBinding => "access binding",
        ResourceKind::Operation => "operation",
        ResourceKind::RevokedToken => "revoked token",
    }
}

pub(crate) fn not_found(kind: ResourceKind, id: &str) -> StoreError {
    StoreError::NotFound {
        what: noun(kind),
        id: id.to_owned(),
    }
}

fn version_sql(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Cloud => "SELECT version FROM clouds WHERE id = $1",
        ResourceKind::Folder => "SELECT version FROM folders WHERE id = $1",
        ResourceKind::ServiceAccount => "SELECT version FROM service_accounts WHERE id = $1",
        ResourceKind::Federation => "SELECT version FROM federations WHERE id = $1",
        ResourceKind::FederatedCredential => {
            "SELECT version FROM federated_credentials WHERE id = $1"
        }
        ResourceKind::AuthorizedKey => "SELECT version FROM authorized_keys WHERE id = $1",
        ResourceKind::AccessKey => "SELECT version FROM access_keys WHERE id = $1",
        ResourceKind::ApiKey => "SELECT version FROM api_keys WHERE id = $1",
        ResourceKind::AccessBinding => "SELECT version FROM access_bindings WHERE id = $1",
        ResourceKind::Operation => "SELECT version FROM operations WHERE id = $1",
        ResourceKind::RevokedToken => "SELECT version FROM revoked_tokens WHERE jti = $1",
    }
}

fn delete_sql(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Cloud => "DELETE FROM clouds WHERE id = $1",
        ResourceKind::Folder => "DELETE FROM folders WHERE id = $1",
        ResourceKind::ServiceAccount => "DELETE FROM service_accounts WHERE id = $1",
        ResourceKind::Federation => "DELETE FROM federations WHERE id = $1",
        ResourceKind::FederatedCredential => "DELETE FROM federated_credentials WHERE id = $1",
        ResourceKind::AuthorizedKey => "DELETE FROM authorized_keys WHERE id = $1",
        ResourceKind::AccessKey => "DELETE FROM access_keys WHERE id = $1",
        ResourceKind::ApiKey => "DELETE FROM api_keys WHERE id = $1",
        ResourceKind::AccessBinding => "DELETE FROM access_bindings WHERE id = $1",
        ResourceKind::Operation => "DELETE FROM operations WHERE id = $1",
        ResourceKind::RevokedToken => "DELETE FROM revoked_tokens WHERE jti = $1",
    }
}

/// The current version of a resource, inside a mutation; `None` if there is none.
pub(crate) async fn current(
    tx: &mut Tx,
    kind: ResourceKind,
    id: &str,
) -> Result<Option<i64>, StoreError> {
    match tx
        .fetch_optional(Statement::new(version_sql(kind)).bind(id), noun(kind))
        .await?
    {
        Some(row) => Ok(Some(row.int("version")?)),
        None => Ok(None),
    }
}

/// A stored record with a version (optimistic concurrency).
pub(crate) trait Versioned {
    fn version(&self) -> i64;
}

macro_rules! versioned {
    ($($t:ty),*) => {
        $(impl Versioned for $t {
            fn version(&self) -> i64 {
                self.version
            }
        })*
    };
}

versioned!(
    super::model::Cloud,
    super::model::Folder,
    super::model::ServiceAccount,
    super::model::AuthorizedKey,
    super::model::AccessKey,
    super::model::ApiKey,
    super::model::Federation,
    super::model::Operation
);

/// Why a conditional update of `(kind, id)` at `expected` changed no row.
async fn missed(tx: &mut Tx, kind: ResourceKind, id: &str, expected: i64) -> StoreError {
    match current(tx, kind, id).await {
        Ok(Some(actual)) => StoreError::Conflict {
            what: noun(kind),
            id: id.to_owned(),
            expected,
            actual,
        },
        Ok(None) => not_found(kind, id),
        Err(err) => err,
    }
}

impl Store {
    /// Ends a conditional update (`… WHERE id = $n AND version = $m RETURNING …`): the returned
    /// row read back, logged as an update and committed; or, when no row matched, why
    /// (`Conflict` with the version found, or `NotFound`).
    pub(crate) async fn finish_update<T: Versioned>(
        &self,
        mut mutation: Mutation,
        kind: ResourceKind,
        id: &str,
        expected: i64,
        row: Option<Row>,
        read: fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Written<T>, StoreError> {
        let Some(row) = row else {
            return Err(missed(mutation.tx(), kind, id, expected).await);
        };
        let item = read(&row)?;
        mutation.record(kind, id, ChangeOp::Update, item.version());
        let seq = self.commit(mutation).await?;
        Ok(Written { item, seq })
    }

    /// Deletes `(kind, id)` and everything that cascades from it, if its version is
    /// `expected` (any version when `None`). Returns the sequence number of the last
    /// deletion logged, the resource's own.
    pub(crate) async fn delete_resource(
        &self,
        kind: ResourceKind,
        id: &str,
        expected: Option<i64>,
        now: i64,
    ) -> Result<Seq, StoreError> {
        let mut mutation = self.mutation(now).await?;
        let version = current(mutation.tx(), kind, id)
            .await?
            .ok_or_else(|| not_found(kind, id))?;
        if let Some(expected) = expected
            && expected != version
        {
            return Err(StoreError::Conflict {
                what: noun(kind),
                id: id.to_owned(),
                expected,
                actual: version,
            });
        }
        let mut doomed = cascade::dependents(mutation.tx(), kind, id).await?;
        cascade::grants_to_accounts(mutation.tx(), (kind, id), &mut doomed).await?;
        mutation
            .tx()
            .execute(Statement::new(delete_sql(kind)).bind(id), noun(kind))
            .await?;
        for (child_kind, child_id, child_version) in doomed {
            mutation.record(child_kind, &child_id, ChangeOp::Delete, child_version);
        }
        mutation.record(kind, id, ChangeOp::Delete, version);
        self.commit(mutation).await
    }
}
