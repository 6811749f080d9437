//! Reading records by kind: one record as it is now, or a whole table in pages. This is how the
//! in-memory views of the store ([`crate::iam::live`]) load at start and follow the change log.

use crate::iam::ResourceKind;

use super::Store;
use super::accounts::account_from_row;
use super::bindings::binding_from_row;
use super::db::{Row, Statement};
use super::error::StoreError;
use super::federations::{credential_from_row, federation_from_row};
use super::hierarchy::{cloud_from_row, folder_from_row};
use super::model::Record;

/// How a kind is read: by id, and a page of the whole table in id order.
struct Table {
    get: &'static str,
    scan: &'static str,
    decode: fn(&Row) -> Result<Record, StoreError>,
}

macro_rules! table {
    ($table:literal, $columns:literal, $decode:expr) => {
        Table {
            get: concat!("SELECT ", $columns, " FROM ", $table, " WHERE id = $1"),
            scan: concat!(
                "SELECT ",
                $columns,
                " FROM ",
                $table,
                " WHERE id > $1 ORDER BY id LIMIT $2"
            ),
            decode: $decode,
        }
    };
}

fn table(kind: ResourceKind) -> Option<Table> {
    Some(match kind {
        ResourceKind::Cloud => table!(
            "clouds",
            "id, organization_id, name, description, labels, created_at, version",
            |row| cloud_from_row(row).map(Record::Cloud)
        ),
        ResourceKind::Folder => table!(
            "folders",
            "id, cloud_id, name, description, labels, created_at, version",
            |row| folder_from_row(row).map(Record::Folder)
        ),
        ResourceKind::ServiceAccount => table!(
            "service_accounts",
            "id, folder_id, cloud_id, name, description, labels, status, created_at, version",
            |row| account_from_row(row).map(Record::ServiceAccount)
        ),
        ResourceKind::Federation => table!(
            "federations",
            "id, folder_id, name, description, enabled, audiences, issuer, jwks_url, labels, \
             created_at, version",
            |row| federation_from_row(row).map(Record::Federation)
        ),
        ResourceKind::FederatedCredential => table!(
            "federated_credentials",
            "id, service_account_id, federation_id, external_subject_id, created_at, version",
            |row| credential_from_row(row).map(Record::FederatedCredential)
        ),
        ResourceKind::AccessBinding => table!(
            "access_bindings",
            "id, resource_type, resource_id, role_id, subject_type, subject_id, created_at, \
             version",
            |row| binding_from_row(row).map(Record::AccessBinding)
        ),
        ResourceKind::AuthorizedKey | ResourceKind::Operation => return None,
    })
}

impl Store {
    /// The record `id` of `kind` as it is now: `None` if it does not exist, or if the kind is
    /// not one of [`FOLLOWED`].
    pub async fn record(&self, kind: ResourceKind, id: &str) -> Result<Option<Record>, StoreError> {
        let Some(table) = table(kind) else {
            return Ok(None);
        };
        let row = self
            .db()
            .fetch_optional(Statement::new(table.get).bind(id))
            .await?;
        row.as_ref().map(table.decode).transpose()
    }

    /// Up to `limit` records of `kind` with ids after `after` (empty: from the first), in id
    /// order; nothing for kinds not in [`FOLLOWED`].
    pub async fn scan(
        &self,
        kind: ResourceKind,
        after: &str,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError> {
        let Some(table) = table(kind) else {
            return Ok(Vec::new());
        };
        let rows = self
            .db()
            .fetch_all(
                Statement::new(table.scan)
                    .bind(after)
                    .bind(i64::from(limit)),
            )
            .await?;
        rows.iter().map(table.decode).collect()
    }
}
