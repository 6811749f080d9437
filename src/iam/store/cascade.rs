//! What a deletion takes with it. The database deletes dependents itself (`ON DELETE
//! CASCADE`); this module finds them first, inside the same transaction, so that the change
//! log gets a deletion for each and a replica can drop them without knowing the cascade rules.
//! Because mutations run one at a time (see [`super::log`]), nothing can be added under the
//! resource between this walk and the deletion.
//!
//! The tree: a cloud holds folders; a folder holds service accounts and federations; a
//! service account holds authorized keys, API keys and federated credentials; a federation
//! holds federated credentials; clouds, folders, service accounts and federations hold the
//! access bindings set on them.

use std::collections::HashSet;

use crate::iam::ResourceKind;

use super::db::{Statement, Tx};
use super::error::StoreError;

/// A resource to delete: kind, id and current version.
pub(crate) type Doomed = (ResourceKind, String, i64);

/// The queries that list a resource's direct dependents, by kind.
fn children(kind: ResourceKind) -> &'static [(ResourceKind, &'static str)] {
    match kind {
        ResourceKind::Cloud => &[
            (
                ResourceKind::Folder,
                "SELECT id, version FROM folders WHERE cloud_id = $1",
            ),
            (
                ResourceKind::AccessBinding,
                "SELECT id, version FROM access_bindings WHERE cloud_id = $1",
            ),
        ],
        ResourceKind::Folder => &[
            (
                ResourceKind::ServiceAccount,
                "SELECT id, version FROM service_accounts WHERE folder_id = $1",
            ),
            (
                ResourceKind::Federation,
                "SELECT id, version FROM federations WHERE folder_id = $1",
            ),
            (
                ResourceKind::AccessBinding,
                "SELECT id, version FROM access_bindings WHERE folder_id = $1",
            ),
        ],
        ResourceKind::ServiceAccount => &[
            (
                ResourceKind::AuthorizedKey,
                "SELECT id, version FROM authorized_keys WHERE service_account_id = $1",
            ),
            (
                ResourceKind::ApiKey,
                "SELECT id, version FROM api_keys WHERE service_account_id = $1",
            ),
            (
                ResourceKind::FederatedCredential,
                "SELECT id, version FROM federated_credentials WHERE service_account_id = $1",
            ),
            (
                ResourceKind::AccessBinding,
                "SELECT id, version FROM access_bindings WHERE service_account_id = $1",
            ),
        ],
        ResourceKind::Federation => &[
            (
                ResourceKind::FederatedCredential,
                "SELECT id, version FROM federated_credentials WHERE federation_id = $1",
            ),
            (
                ResourceKind::AccessBinding,
                "SELECT id, version FROM access_bindings WHERE federation_id = $1",
            ),
        ],
        ResourceKind::FederatedCredential
        | ResourceKind::AuthorizedKey
        | ResourceKind::ApiKey
        | ResourceKind::AccessBinding
        | ResourceKind::Operation
        | ResourceKind::RevokedToken => &[],
    }
}

/// Every resource that deleting `(kind, id)` deletes with it, each once, leaves before the
/// resources that hold them.
pub(crate) async fn dependents(
    tx: &mut Tx,
    kind: ResourceKind,
    id: &str,
) -> Result<Vec<Doomed>, StoreError> {
    // Breadth-first from the root; reversed at the end so that leaves come first.
    let mut found: Vec<Doomed> = Vec::new();
    let mut seen: HashSet<(ResourceKind, String)> = HashSet::new();
    let mut queue: Vec<(ResourceKind, String)> = vec![(kind, id.to_owned())];
    let mut next = 0;
    while let Some((parent_kind, parent_id)) = queue.get(next).cloned() {
        next += 1;
        for &(child_kind, sql) in children(parent_kind) {
            let rows = tx
                .fetch_all(Statement::new(sql).bind(parent_id.as_str()))
                .await?;
            for row in rows {
                let child_id = row.text("id")?;
                if seen.insert((child_kind, child_id.clone())) {
                    found.push((child_kind, child_id.clone(), row.int("version")?));
                    queue.push((child_kind, child_id));
                }
            }
        }
    }
    found.reverse();
    Ok(found)
}
