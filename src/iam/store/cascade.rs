//! What a deletion takes with it. The database deletes dependents itself (`ON DELETE
//! CASCADE`); this module finds them first, inside the same transaction, so that the change
//! log gets a deletion for each and a replica can drop them without knowing the cascade rules.
//! Because mutations run one at a time (see [`super::log`]), nothing can be added under the
//! resource between this walk and the deletion.
//!
//! The tree: a cloud holds folders; a folder holds service accounts and federations; a
//! service account holds authorized keys, API keys, static access keys and federated
//! credentials; a federation holds federated credentials; clouds, folders, service accounts and
//! federations hold the access bindings set on them. A service account also takes the access
//! bindings that grant it a role anywhere ([`grants_to_accounts`]): nobody else holds those,
//! and the database cannot delete them itself, since a binding's subject is not a reference.

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
                ResourceKind::AccessKey,
                "SELECT id, version FROM access_keys WHERE service_account_id = $1",
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
        | ResourceKind::AccessKey
        | ResourceKind::ApiKey
        | ResourceKind::AccessBinding
        | ResourceKind::Operation
        | ResourceKind::RevokedToken => &[],
    }
}

/// Deletes the access bindings whose subject is a service account about to go (`root`, or one
/// in `doomed`), and adds them to `doomed` unless they are there already (bound on a resource
/// that goes too).
pub(crate) async fn grants_to_accounts(
    tx: &mut Tx,
    root: (ResourceKind, &str),
    doomed: &mut Vec<Doomed>,
) -> Result<(), StoreError> {
    let accounts: Vec<String> = doomed
        .iter()
        .filter(|(kind, _, _)| *kind == ResourceKind::ServiceAccount)
        .map(|(_, id, _)| id.clone())
        .chain((root.0 == ResourceKind::ServiceAccount).then(|| root.1.to_owned()))
        .collect();
    let mut seen: HashSet<String> = doomed
        .iter()
        .filter(|(kind, _, _)| *kind == ResourceKind::AccessBinding)
        .map(|(_, id, _)| id.clone())
        .collect();
    for account in accounts {
        let rows = tx
            .fetch_all(
                Statement::new(
                    "SELECT id, version FROM access_bindings \
                     WHERE subject_type = 'serviceAccount' AND subject_id = $1",
                )
                .bind(account.as_str()),
            )
            .await?;
        for row in rows {
            let id = row.text("id")?;
            if seen.insert(id.clone()) {
                doomed.insert(0, (ResourceKind::AccessBinding, id, row.int("version")?));
            }
        }
        tx.execute(
            Statement::new(
                "DELETE FROM access_bindings \
                 WHERE subject_type = 'serviceAccount' AND subject_id = $1",
            )
            .bind(account.as_str()),
            "access binding",
        )
        .await?;
    }
    Ok(())
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
