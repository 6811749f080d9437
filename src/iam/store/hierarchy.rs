//! Clouds and folders: the resource hierarchy that service accounts and federations live in.
//! A folder belongs to one cloud for life; deleting a cloud deletes its folders, and a folder
//! everything in it ([`super::cascade`]).

use crate::iam::{ResourceKind, ids};

use super::Store;
use super::codec::{from_text, to_text};
use super::db::{Columns, Statement};
use super::error::StoreError;
use super::model::{
    Cloud, CloudUpdate, Folder, FolderUpdate, NewCloud, NewFolder, Page, PageRequest, Record, Seq,
    Written,
};
use super::versions::not_found;

const CLOUD_NAME: &str = "cloud name in organization";

const FOLDER_NAME: &str = "folder name in cloud";

/// The statement that stores a new cloud, and what its uniqueness rule means.
pub(super) fn insert_cloud(cloud: &Cloud) -> (Statement, &'static str) {
    let statement = Statement::new(
        "INSERT INTO clouds (id, organization_id, name, description, labels, \
         created_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&cloud.id)
    .bind(&cloud.organization_id)
    .bind(&cloud.name)
    .bind(&cloud.description)
    .bind(to_text(&cloud.labels))
    .bind(cloud.created_at)
    .bind(cloud.version);
    (statement, CLOUD_NAME)
}

/// The statement that stores a new folder, and what its uniqueness rule means.
pub(super) fn insert_folder(folder: &Folder) -> (Statement, &'static str) {
    let statement = Statement::new(
        "INSERT INTO folders (id, cloud_id, name, description, labels, created_at, \
         version) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&folder.id)
    .bind(&folder.cloud_id)
    .bind(&folder.name)
    .bind(&folder.description)
    .bind(to_text(&folder.labels))
    .bind(folder.created_at)
    .bind(folder.version);
    (statement, FOLDER_NAME)
}

pub(super) fn cloud_from_row(row: &impl Columns) -> Result<Cloud, StoreError> {
    Ok(Cloud {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        name: row.text("name")?,
        description: row.text("description")?,
        labels: from_text(&row.text("labels")?, "cloud labels")?,
        created_at: row.int("created_at")?,
        version: row.int("version")?,
    })
}

pub(super) fn folder_from_row(row: &impl Columns) -> Result<Folder, StoreError> {
    Ok(Folder {
        id: row.text("id")?,
        cloud_id: row.text("cloud_id")?,
        name: row.text("name")?,
        description: row.text("description")?,
        labels: from_text(&row.text("labels")?, "folder labels")?,
        created_at: row.int("created_at")?,
        version: row.int("version")?,
    })
}

impl Store {
    /// Creates a cloud. Its name must be new in its organization.
    pub async fn create_cloud(
        &self,
        new: &NewCloud,
        now: i64,
    ) -> Result<Written<Cloud>, StoreError> {
        let cloud = Cloud {
            id: ids::generate(ResourceKind::Cloud)?,
            organization_id: new.organization_id.clone(),
            name: new.name.clone(),
            description: new.description.clone(),
            labels: new.labels.clone(),
            created_at: now,
            version: 1,
        };
        let mut m = self.mutation(now).await?;
        let (insert, unique) = insert_cloud(&cloud);
        m.tx().execute(insert, unique).await?;
        m.record_created(Record::Cloud(cloud.clone()));
        let seq = self.commit(m).await?;
        Ok(Written { item: cloud, seq })
    }

    pub async fn get_cloud(&self, id: &str) -> Result<Cloud, StoreError> {
        let row = self
            .db()
            .fetch_optional(
                Statement::new(
                    "SELECT id, organization_id, name, description, labels, created_at, version \
                     FROM clouds WHERE id = $1",
                )
                .bind(id),
            )
            .await?;
        match row {
            Some(row) => cloud_from_row(&row),
            None => Err(not_found(ResourceKind::Cloud, id)),
        }
    }

    /// Every cloud, in id order.
    pub async fn list_clouds(&self, page: &PageRequest) -> Result<Page<Cloud>, StoreError> {
        let size = page.effective_size();
        let rows = self
            .db()
            .fetch_all(
                Statement::new(
                    "SELECT id, organization_id, name, description, labels, created_at, version \
                     FROM clouds WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(page.start_after())
                .bind(i64::from(size) + 1),
            )
            .await?;
        let items = rows.iter().map(cloud_from_row).collect::<Result<_, _>>()?;
        Ok(Page::cut(items, size, |c: &Cloud| &c.id))
    }

    /// Replaces a cloud's name, description and labels, if its version is still `expected`.
    pub async fn update_cloud(
        &self,
        id: &str,
        expected: i64,
        update: &CloudUpdate,
        now: i64,
    ) -> Result<Written<Cloud>, StoreError> {
        let mut m = self.mutation(now).await?;
        let row = m
            .tx()
            .fetch_optional(
                Statement::new(
                    "UPDATE clouds SET name = $1, description = $2, labels = $3, \
                     version = version + 1 WHERE id = $4 AND version = $5 \
                     RETURNING id, organization_id, name, description, labels, created_at, version",
                )
                .bind(&update.name)
                .bind(&update.description)
                .bind(to_text(&update.labels))
                .bind(id)
                .bind(expected),
                CLOUD_NAME,
            )
            .await?;
        self.finish_update(m, ResourceKind::Cloud, id, expected, row, cloud_from_row)
            .await
    }

    /// Deletes a cloud with its folders and everything in them, and the bindings on all of
    /// them. `expected`: the version the caller read, or `None` for any.
    pub async fn delete_cloud(
        &self,
        id: &str,
        expected: Option<i64>,
        now: i64,
    ) -> Result<Seq, StoreError> {
        self.delete_resource(ResourceKind::Cloud, id, expected, now)
            .await
    }

    /// Creates a folder in an existing cloud ([`StoreError::FailedPrecondition`] if there is
    /// none). Its name must be new in the cloud.
    pub async fn create_folder(
        &self,
        new: &NewFolder,
        now: i64,
    ) -> Result<Written<Folder>, StoreError> {
        let folder = Folder {
            id: ids::generate(ResourceKind::Folder)?,
            cloud_id: new.cloud_id.clone(),
            name: new.name.clone(),
            description: new.description.clone(),
            labels: new.labels.clone(),
            created_at: now,
            version: 1,
        };
        let mut m = self.mutation(now).await?;
        let (insert, unique) = insert_folder(&folder);
        m.tx().execute(insert, unique).await?;
        m.record_created(Record::Folder(folder.clone()));
        let seq = self.commit(m).await?;
        Ok(Written { item: folder, seq })
    }

    pub async fn get_folder(&self, id: &str) -> Result<Folder, StoreError> {
        let row = self
            .db()
            .fetch_optional(
                Statement::new(
                    "SELECT id, cloud_id, name, description, labels, created_at, version \
                     FROM folders WHERE id = $1",
                )
                .bind(id),
            )
            .await?;
        match row {
            Some(row) => folder_from_row(&row),
            None => Err(not_found(ResourceKind::Folder, id)),
        }
    }

    /// The folders of a cloud, in id order.
    pub async fn list_folders(
        &self,
        cloud_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Folder>, StoreError> {
        let size = page.effective_size();
        let rows = self
            .db()
            .fetch_all(
                Statement::new(
                    "SELECT id, cloud_id, name, description, labels, created_at, version \
                     FROM folders WHERE cloud_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(cloud_id)
                .bind(page.start_after())
                .bind(i64::from(size) + 1),
            )
            .await?;
        let items = rows.iter().map(folder_from_row).collect::<Result<_, _>>()?;
        Ok(Page::cut(items, size, |f: &Folder| &f.id))
    }

    /// Replaces a folder's name, description and labels, if its version is still `expected`.
    pub async fn update_folder(
        &self,
        id: &str,
        expected: i64,
        update: &FolderUpdate,
        now: i64,
    ) -> Result<Written<Folder>, StoreError> {
        let mut m = self.mutation(now).await?;
        let row = m
            .tx()
            .fetch_optional(
                Statement::new(
                    "UPDATE folders SET name = $1, description = $2, labels = $3, \
                     version = version + 1 WHERE id = $4 AND version = $5 \
                     RETURNING id, cloud_id, name, description, labels, created_at, version",
                )
                .bind(&update.name)
                .bind(&update.description)
                .bind(to_text(&update.labels))
                .bind(id)
                .bind(expected),
                FOLDER_NAME,
            )
            .await?;
        self.finish_update(m, ResourceKind::Folder, id, expected, row, folder_from_row)
            .await
    }

    /// Deletes a folder with its service accounts and federations (and their keys,
    /// credentials and bindings) and the bindings on it.
    pub async fn delete_folder(
        &self,
        id: &str,
        expected: Option<i64>,
        now: i64,
    ) -> Result<Seq, StoreError> {
        self.delete_resource(ResourceKind::Folder, id, expected, now)
            .await
    }
}
