//! Reading records by kind: one record as it is now, a page in id order, or a whole table. This
//! is how the in-memory views of the store ([`crate::iam::live`]) load at start and follow the
//! change log.

use crate::iam::ResourceKind;

use super::Store;
use super::access_keys::access_key_from_row;
use super::accounts::account_from_row;
use super::api_keys::key_from_row as api_key_from_row;
use super::bindings::binding_from_row;
use super::db::{Backend, JsonRow, Row, Statement, json_row, json_rows};
use super::error::StoreError;
use super::federations::{credential_from_row, federation_from_row};
use super::hierarchy::{cloud_from_row, folder_from_row};
use super::model::Record;
use super::revocations::revoked_from_row;

/// How a kind is read: by id, a page of the whole table in id order, and the whole table with
/// each row as one JSON array (SQLite: pages as one JSON value, in storage order; PostgreSQL:
/// one COPY).
struct Table {
    get: &'static str,
    scan: &'static str,
    /// The columns that `decode` reads, in the order of a JSON row's values.
    columns: &'static str,
    page_sqlite: &'static str,
    copy_postgres: &'static str,
    decode: fn(&Row) -> Result<Record, StoreError>,
    decode_json: fn(&JsonRow<'_>) -> Result<Record, StoreError>,
}

macro_rules! table {
    ($table:literal, $columns:literal, $decode:expr) => {
        table!($table, "id", $columns, $decode)
    };
    ($table:literal, $key:literal, $columns:literal, $decode:expr) => {
        Table {
            get: concat!(
                "SELECT ", $columns, " FROM ", $table, " WHERE ", $key, " = $1"
            ),
            scan: concat!(
                "SELECT ",
                $columns,
                " FROM ",
                $table,
                " WHERE ",
                $key,
                " > $1 ORDER BY ",
                $key,
                " LIMIT $2"
            ),
            columns: $columns,
            page_sqlite: concat!(
                "SELECT max(scan_rowid) AS scan_rowid, json_group_array(json_array(",
                $columns,
                ")) AS page FROM (SELECT rowid AS scan_rowid, ",
                $columns,
                " FROM ",
                $table,
                " WHERE rowid > $1 ORDER BY rowid LIMIT $2)"
            ),
            copy_postgres: concat!(
                "COPY (SELECT json_build_array(",
                $columns,
                ")::text FROM ",
                $table,
                ") TO STDOUT WITH (FORMAT binary)"
            ),
            decode: $decode,
            decode_json: $decode,
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
            "id, folder_id, cloud_id, name, description, labels, status, suspended_until, \
             last_authenticated_at, created_at, version",
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
        ResourceKind::AccessKey => table!(
            "access_keys",
            "id, service_account_id, description, key_id, secret_sealed, last_used_at, \
             created_at, version",
            |row| access_key_from_row(row).map(Record::AccessKey)
        ),
        ResourceKind::ApiKey => table!(
            "api_keys",
            "id, service_account_id, description, secret_hash, masked_secret, scopes, \
             expires_at, last_used_at, created_at, version",
            |row| api_key_from_row(row).map(Record::ApiKey)
        ),
        ResourceKind::AccessBinding => table!(
            "access_bindings",
            "id, resource_type, resource_id, role_id, subject_type, subject_id, created_at, \
             version",
            |row| binding_from_row(row).map(Record::AccessBinding)
        ),
        ResourceKind::RevokedToken => table!(
            "revoked_tokens",
            "jti",
            "jti, subject_id, expires_at, revoked_at, revoked_by, version",
            |row| revoked_from_row(row).map(Record::RevokedToken)
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

    /// Every record of `kind`, handed to `each` as it is read; nothing for kinds not in
    /// [`FOLLOWED`]. Every row present throughout the read is read once (and a row changed
    /// meanwhile, as it was at some point: the change log tells what came after).
    ///
    /// SQLite: pages of `page` rows in the table's storage order, each page one JSON value
    /// ([`JsonRow`]); each page of the file is read once, where id order would seek the table
    /// row by row. PostgreSQL: one `COPY` of the table in its physical order, each row one JSON
    /// array, one snapshot; reading in key order instead walks the index and visits the heap at
    /// random, which made a start at a million rows three to four times slower
    /// (`docs/performance.md#start-up-at-a-million-records`).
    pub async fn scan_all(
        &self,
        kind: ResourceKind,
        page: u32,
        each: &mut (dyn FnMut(Record) + Send),
    ) -> Result<(), StoreError> {
        let Some(table) = table(kind) else {
            return Ok(());
        };
        let names: Vec<&str> = table.columns.split(',').map(str::trim).collect();
        let decode = |values| {
            (table.decode_json)(&JsonRow {
                names: &names,
                values,
            })
        };
        if self.backend() == Backend::Postgres {
            return self
                .db()
                .copy_texts(table.copy_postgres, &mut |row| {
                    each(decode(json_row(row)?)?);
                    Ok(())
                })
                .await;
        }
        let mut after = 0;
        loop {
            let row = self
                .db()
                .fetch_optional(
                    Statement::new(table.page_sqlite)
                        .bind(after)
                        .bind(i64::from(page)),
                )
                .await?;
            let Some(row) = row else {
                return Ok(());
            };
            match row.opt_int("scan_rowid")? {
                Some(rowid) => after = rowid,
                None => return Ok(()),
            }
            for values in json_rows(&row.text("page")?)? {
                each(decode(values)?);
            }
        }
    }

    /// How many resources of `kind` a cloud holds: service accounts, federations (in its
    /// folders), federated credentials, authorized keys, API keys and access keys (of its
    /// service accounts), access bindings (on the cloud and everything in it); 0 for other kinds.
    pub async fn count_in_cloud(
        &self,
        kind: ResourceKind,
        cloud_id: &str,
    ) -> Result<u64, StoreError> {
        let sql = match kind {
            ResourceKind::ServiceAccount => {
                "SELECT COUNT(*) AS n FROM service_accounts WHERE cloud_id = $1"
            }
            ResourceKind::Federation => {
                "SELECT COUNT(*) AS n FROM federations d JOIN folders f ON d.folder_id = f.id \
                 WHERE f.cloud_id = $1"
            }
            ResourceKind::FederatedCredential => {
                "SELECT COUNT(*) AS n FROM federated_credentials c \
                 JOIN service_accounts s ON c.service_account_id = s.id WHERE s.cloud_id = $1"
            }
            ResourceKind::AuthorizedKey => {
                "SELECT COUNT(*) AS n FROM authorized_keys k \
                 JOIN service_accounts s ON k.service_account_id = s.id WHERE s.cloud_id = $1"
            }
            ResourceKind::AccessKey => {
                "SELECT COUNT(*) AS n FROM access_keys k \
                 JOIN service_accounts s ON k.service_account_id = s.id WHERE s.cloud_id = $1"
            }
            ResourceKind::ApiKey => {
                "SELECT COUNT(*) AS n FROM api_keys k \
                 JOIN service_accounts s ON k.service_account_id = s.id WHERE s.cloud_id = $1"
            }
            ResourceKind::AccessBinding => {
                "SELECT (SELECT COUNT(*) FROM access_bindings WHERE cloud_id = $1) \
                 + (SELECT COUNT(*) FROM access_bindings b JOIN folders f ON b.folder_id = f.id \
                    WHERE f.cloud_id = $1) \
                 + (SELECT COUNT(*) FROM access_bindings b \
                    JOIN service_accounts s ON b.service_account_id = s.id WHERE s.cloud_id = $1) \
                 + (SELECT COUNT(*) FROM access_bindings b JOIN federations d ON b.federation_id = d.id \
                    JOIN folders f ON d.folder_id = f.id WHERE f.cloud_id = $1) AS n"
            }
            _ => return Ok(0),
        };
        let row = self
            .db()
            .fetch_optional(Statement::new(sql).bind(cloud_id))
            .await?;
        let n = row.map_or(Ok(0), |row| row.int("n"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
