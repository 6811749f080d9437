//! Operations: the record every mutating IAM call returns (`operation.Operation`), kept so
//! that `GET /operations/{id}` and the per-resource operation lists can answer later. An
//! operation names the resource it acts on but does not reference it: it outlives a deletion.

use crate::iam::{ResourceKind, ids};

use super::Store;
use super::codec::{from_text, to_text};
use super::db::{Row, Statement};
use super::error::StoreError;
use super::model::{
    NewOperation, Operation, OperationResult, OperationUpdate, Page, PageRequest, Seq, Written,
};
use super::versions::not_found;

fn operation_from_row(row: &Row) -> Result<Operation, StoreError> {
    let response = row.opt_text("response")?;
    let error = row.opt_text("error")?;
    let result = match (response, error) {
        (Some(text), None) => Some(OperationResult::Response(from_text(
            &text,
            "operation response",
        )?)),
        (None, Some(text)) => Some(OperationResult::Error(from_text(&text, "operation error")?)),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(StoreError::Corrupt {
                what: "operation",
                reason: "both a response and an error".into(),
            });
        }
    };
    Ok(Operation {
        id: row.text("id")?,
        resource_id: row.text("resource_id")?,
        description: row.text("description")?,
        created_by: row.text("created_by")?,
        created_at: row.int("created_at")?,
        modified_at: row.int("modified_at")?,
        done: row.flag("done")?,
        metadata: from_text(&row.text("metadata")?, "operation metadata")?,
        result,
        version: row.int("version")?,
    })
}

/// The stored (response, error) columns of a result.
fn result_columns(result: &Option<OperationResult>) -> (Option<String>, Option<String>) {
    match result {
        Some(OperationResult::Response(v)) => (Some(to_text(v)), None),
        Some(OperationResult::Error(v)) => (None, Some(to_text(v))),
        None => (None, None),
    }
}

/// A result only on a finished operation (the database checks it too).
fn check_result(done: bool, result: &Option<OperationResult>) -> Result<(), StoreError> {
    if !done && result.is_some() {
        return Err(StoreError::InvalidArgument {
            reason: "an operation that is not done has no result".into(),
        });
    }
    Ok(())
}

/// A new operation, and the `INSERT` that keeps it.
pub(super) fn insert_operation(
    new: &NewOperation,
    now: i64,
) -> Result<(Operation, Statement), StoreError> {
    check_result(new.done, &new.result)?;
    let operation = Operation {
        id: ids::generate(ResourceKind::Operation)?,
        resource_id: new.resource_id.clone(),
        description: new.description.clone(),
        created_by: new.created_by.clone(),
        created_at: now,
        modified_at: now,
        done: new.done,
        metadata: new.metadata.clone(),
        result: new.result.clone(),
        version: 1,
    };
    let (response, error) = result_columns(&operation.result);
    let insert = Statement::new(
        "INSERT INTO operations (id, resource_id, description, created_by, \
         created_at, modified_at, done, metadata, response, error, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&operation.id)
    .bind(&operation.resource_id)
    .bind(&operation.description)
    .bind(&operation.created_by)
    .bind(operation.created_at)
    .bind(operation.modified_at)
    .bind(operation.done)
    .bind(to_text(&operation.metadata))
    .bind(response)
    .bind(error)
    .bind(operation.version);
    Ok((operation, insert))
}

impl Store {
    /// Keeps a new operation. It is one `INSERT` on its own, not a mutation: no replica follows
    /// operations (they are read from the store by id or resource), so it takes no turn on the
    /// change counter and leaves no change-log entry for replicas to read and skip; its later
    /// updates and its deletion are mutations like any other. A REST or gRPC write keeps one
    /// after its change commits, so this halves the statements, and the wake-ups of every
    /// replica's follower, that a write costs; the most frequent write, creating a federated
    /// credential, keeps it in its own transaction instead
    /// ([`Store::create_federated_credential_with`]).
    pub async fn create_operation(
        &self,
        new: &NewOperation,
        now: i64,
    ) -> Result<Operation, StoreError> {
        let (operation, insert) = insert_operation(new, now)?;
        self.db().execute(insert, "operation").await?;
        Ok(operation)
    }

    pub async fn get_operation(&self, id: &str) -> Result<Operation, StoreError> {
        let row = self
            .db()
            .fetch_optional(
                Statement::new(
                    "SELECT id, resource_id, description, created_by, created_at, modified_at, \
                     done, metadata, response, error, version FROM operations WHERE id = $1",
                )
                .bind(id),
            )
            .await?;
        match row {
            Some(row) => operation_from_row(&row),
            None => Err(not_found(ResourceKind::Operation, id)),
        }
    }

    /// The operations on a resource, in id order.
    pub async fn list_operations(
        &self,
        resource_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Operation>, StoreError> {
        let size = page.effective_size();
        let rows = self
            .db()
            .fetch_all(
                Statement::new(
                    "SELECT id, resource_id, description, created_by, created_at, modified_at, \
                     done, metadata, response, error, version FROM operations \
                     WHERE resource_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(resource_id)
                .bind(page.start_after())
                .bind(i64::from(size) + 1),
            )
            .await?;
        let items = rows
            .iter()
            .map(operation_from_row)
            .collect::<Result<_, _>>()?;
        Ok(Page::cut(items, size, |o: &Operation| &o.id))
    }

    /// Records an operation's progress or outcome, if its version is still `expected`;
    /// `modified_at` becomes `now`.
    pub async fn update_operation(
        &self,
        id: &str,
        expected: i64,
        update: &OperationUpdate,
        now: i64,
    ) -> Result<Written<Operation>, StoreError> {
        check_result(update.done, &update.result)?;
        let (response, error) = result_columns(&update.result);
        let mut m = self.mutation(now).await?;
        let row = m
            .tx()
            .fetch_optional(
                Statement::new(
                    "UPDATE operations SET done = $1, metadata = $2, response = $3, error = $4, \
                     modified_at = $5, version = version + 1 WHERE id = $6 AND version = $7 \
                     RETURNING id, resource_id, description, created_by, created_at, \
                     modified_at, done, metadata, response, error, version",
                )
                .bind(update.done)
                .bind(to_text(&update.metadata))
                .bind(response)
                .bind(error)
                .bind(now)
                .bind(id)
                .bind(expected),
                "operation",
            )
            .await?;
        self.finish_update(
            m,
            ResourceKind::Operation,
            id,
            expected,
            row,
            operation_from_row,
        )
        .await
    }

    pub async fn delete_operation(
        &self,
        id: &str,
        expected: Option<i64>,
        now: i64,
    ) -> Result<Seq, StoreError> {
        self.delete_resource(ResourceKind::Operation, id, expected, now)
            .await
    }
}
