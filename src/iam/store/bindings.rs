//! Access bindings: a role granted to a subject on a cloud, folder, service account or
//! federation. Immutable (grant and revoke are create and delete); (resource, role, subject)
//! is unique. The database refuses a binding on a missing resource and deletes bindings with
//! their resource ([`super::cascade`]). [`Store::change_access_bindings`] applies a list of
//! grants and revocations to one resource in one transaction (`setAccessBindings`,
//! `updateAccessBindings`).

use crate::iam::{ResourceKind, ids};

use super::Store;
use super::codec::from_name;
use super::db::{Columns, Statement};
use super::error::StoreError;
use super::model::{
    AccessBinding, BindingAction, BindingDelta, ChangeOp, NewAccessBinding, Page, PageRequest,
    Record, ResourceRef, Seq, Subject, SubjectType, Written,
};
use super::versions::not_found;

const BINDING: &str = "access binding of this role to this subject on this resource";

/// The statement that stores a new access binding (its resource also in the reference column
/// of its kind, so that deleting the resource cascades), and what its uniqueness rule means.
pub(super) fn insert_binding(binding: &AccessBinding) -> (Statement, &'static str) {
    let kind = binding.resource.kind;
    let target = binding.resource.id.as_str();
    let statement = Statement::new(
        "INSERT INTO access_bindings (id, resource_type, resource_id, cloud_id, \
         folder_id, service_account_id, federation_id, role_id, subject_type, \
         subject_id, created_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&binding.id)
    .bind(kind.as_str())
    .bind(target)
    .bind(reference(kind, ResourceKind::Cloud, target))
    .bind(reference(kind, ResourceKind::Folder, target))
    .bind(reference(kind, ResourceKind::ServiceAccount, target))
    .bind(reference(kind, ResourceKind::Federation, target))
    .bind(&binding.role_id)
    .bind(binding.subject.subject_type.as_str())
    .bind(&binding.subject.id)
    .bind(binding.created_at)
    .bind(binding.version);
    (statement, BINDING)
}

pub(super) fn binding_from_row(row: &impl Columns) -> Result<AccessBinding, StoreError> {
    Ok(AccessBinding {
        id: row.text("id")?,
        resource: ResourceRef {
            kind: from_name(
                &row.text("resource_type")?,
                ResourceKind::parse,
                "binding resource type",
            )?,
            id: row.text("resource_id")?,
        },
        role_id: row.text("role_id")?,
        subject: Subject {
            subject_type: from_name(
                &row.text("subject_type")?,
                SubjectType::parse,
                "binding subject type",
            )?,
            id: row.text("subject_id")?,
        },
        created_at: row.int("created_at")?,
        version: row.int("version")?,
    })
}

/// The reference column that matches `kind`'s resource, holding `id`; the others are NULL.
fn reference(kind: ResourceKind, column: ResourceKind, id: &str) -> Option<String> {
    (kind == column).then(|| id.to_owned())
}

impl Store {
    /// Grants `role_id` to the subject on the resource. The resource must exist
    /// ([`StoreError::FailedPrecondition`]) and be of a bindable kind
    /// ([`StoreError::InvalidArgument`]); the grant must be new.
    pub async fn create_access_binding(
        &self,
        new: &NewAccessBinding,
        now: i64,
    ) -> Result<Written<AccessBinding>, StoreError> {
        let kind = new.resource.kind;
        if !kind.is_bindable() {
            return Err(StoreError::InvalidArgument {
                reason: format!("access bindings cannot be set on a {kind}"),
            });
        }
        let binding = AccessBinding {
            id: ids::generate(ResourceKind::AccessBinding)?,
            resource: new.resource.clone(),
            role_id: new.role_id.clone(),
            subject: new.subject.clone(),
            created_at: now,
            version: 1,
        };
        let mut m = self.mutation(now).await?;
        let (insert, unique) = insert_binding(&binding);
        m.tx().execute(insert, unique).await?;
        m.record_created(Record::AccessBinding(binding.clone()));
        let seq = self.commit(m).await?;
        Ok(Written { item: binding, seq })
    }

    pub async fn get_access_binding(&self, id: &str) -> Result<AccessBinding, StoreError> {
        let row = self
            .db()
            .fetch_optional(
                Statement::new(
                    "SELECT id, resource_type, resource_id, role_id, subject_type, subject_id, \
                     created_at, version FROM access_bindings WHERE id = $1",
                )
                .bind(id),
            )
            .await?;
        match row {
            Some(row) => binding_from_row(&row),
            None => Err(not_found(ResourceKind::AccessBinding, id)),
        }
    }

    /// The bindings set on a resource, in id order.
    pub async fn list_access_bindings(
        &self,
        resource: &ResourceRef,
        page: &PageRequest,
    ) -> Result<Page<AccessBinding>, StoreError> {
        let size = page.effective_size();
        let rows = self
            .db()
            .fetch_all(
                Statement::new(
                    "SELECT id, resource_type, resource_id, role_id, subject_type, subject_id, \
                     created_at, version FROM access_bindings \
                     WHERE resource_type = $1 AND resource_id = $2 AND id > $3 \
                     ORDER BY id LIMIT $4",
                )
                .bind(resource.kind.as_str())
                .bind(&resource.id)
                .bind(page.start_after())
                .bind(i64::from(size) + 1),
            )
            .await?;
        let items = rows
            .iter()
            .map(binding_from_row)
            .collect::<Result<_, _>>()?;
        Ok(Page::cut(items, size, |b: &AccessBinding| &b.id))
    }

    /// Applies `deltas` to the bindings of `resource`, in order, in one transaction: an
    /// `Add` of a grant that exists and a `Remove` of one that does not change nothing. The
    /// written item is the deltas that changed something (the "effective deltas"), in request
    /// order. The resource must exist for an `Add` ([`StoreError::FailedPrecondition`]) and be
    /// of a bindable kind ([`StoreError::InvalidArgument`]).
    pub async fn change_access_bindings(
        &self,
        resource: &ResourceRef,
        deltas: &[BindingDelta],
        now: i64,
    ) -> Result<Written<Vec<BindingDelta>>, StoreError> {
        let kind = resource.kind;
        if !kind.is_bindable() {
            return Err(StoreError::InvalidArgument {
                reason: format!("access bindings cannot be set on a {kind}"),
            });
        }
        let mut m = self.mutation(now).await?;
        let mut effective = Vec::new();
        for delta in deltas {
            let existing = m
                .tx()
                .fetch_optional(
                    Statement::new(
                        "SELECT id, version FROM access_bindings \
                         WHERE resource_type = $1 AND resource_id = $2 AND role_id = $3 \
                         AND subject_type = $4 AND subject_id = $5",
                    )
                    .bind(kind.as_str())
                    .bind(&resource.id)
                    .bind(&delta.role_id)
                    .bind(delta.subject.subject_type.as_str())
                    .bind(&delta.subject.id),
                    BINDING,
                )
                .await?;
            match (delta.action, existing) {
                (BindingAction::Add, None) => {
                    let binding = AccessBinding {
                        id: ids::generate(ResourceKind::AccessBinding)?,
                        resource: resource.clone(),
                        role_id: delta.role_id.clone(),
                        subject: delta.subject.clone(),
                        created_at: now,
                        version: 1,
                    };
                    let (insert, unique) = insert_binding(&binding);
                    m.tx().execute(insert, unique).await?;
                    m.record_created(Record::AccessBinding(binding.clone()));
                }
                (BindingAction::Remove, Some(row)) => {
                    let id = row.text("id")?;
                    m.tx()
                        .execute(
                            Statement::new("DELETE FROM access_bindings WHERE id = $1").bind(&id),
                            BINDING,
                        )
                        .await?;
                    m.record(
                        ResourceKind::AccessBinding,
                        &id,
                        ChangeOp::Delete,
                        row.int("version")?,
                    );
                }
                (BindingAction::Add, Some(_)) | (BindingAction::Remove, None) => continue,
            }
            effective.push(delta.clone());
        }
        let seq = self.commit(m).await?;
        Ok(Written {
            item: effective,
            seq,
        })
    }

    /// Revokes a grant.
    pub async fn delete_access_binding(
        &self,
        id: &str,
        expected: Option<i64>,
        now: i64,
    ) -> Result<Seq, StoreError> {
        self.delete_resource(ResourceKind::AccessBinding, id, expected, now)
            .await
    }
}
