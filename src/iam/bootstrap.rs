//! The first administrator. On the first start with an empty store, [`ensure`] creates a cloud
//! `default`, a folder `default` in it and a service account `admin` in the folder that holds
//! [`ADMINISTRATOR_ROLE`] on the cloud (the access binding is what marks it: the role engine
//! grants that role everything), plus an authorized key of the account whose Yandex key file is
//! written with mode 0600 at `[iam] bootstrap_key_file` — all in one transaction, and only if
//! the store never held anything, so a restart, a second replica or a store emptied since never
//! bootstraps again. On later starts it finds the administrator instead.
//!
//! [`new_administrator_key`] (`wif-gateway iam bootstrap-key`) gives the administrator a fresh
//! key when the file is lost.

use std::path::{Path, PathBuf};

use crate::files::{FileError, write_private};
use crate::iam::ResourceKind;

use super::keys::{self, KeyError};
use super::service::ADMINISTRATOR_ROLE;
use super::store::{
    AuthorizedKey, KeyAlgorithm, Labels, NewAuthorizedKey, NewBootstrap, NewCloud, NewFolder,
    NewServiceAccount, PageRequest, ResourceRef, Seq, Store, StoreError, SubjectType,
};

/// The label the bootstrap puts on what it creates, so that people can tell them apart.
pub const LABEL: (&str, &str) = ("wif-gateway", "bootstrap");

/// Where the administrator lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Administrator {
    pub service_account_id: String,
    pub folder_id: String,
    pub cloud_id: String,
}

/// What [`ensure`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The store was empty: the administrator was created, its key file written.
    Bootstrapped {
        administrator: Administrator,
        key_id: String,
        key_file: PathBuf,
    },
    /// The store held something already; the administrator, if it still exists.
    Existing(Option<Administrator>),
}

impl Started {
    pub fn administrator(&self) -> Option<&Administrator> {
        match self {
            Started::Bootstrapped { administrator, .. } => Some(administrator),
            Started::Existing(administrator) => administrator.as_ref(),
        }
    }
}

/// Why the administrator could not be made or found.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("administrator key: {0}")]
    Key(#[from] KeyError),
    #[error("writing the administrator's key file {0}")]
    File(#[from] FileError),
    #[error("{0}")]
    Refused(String),
}

fn labels() -> Labels {
    Labels::from([(LABEL.0.to_owned(), LABEL.1.to_owned())])
}

async fn generate_key() -> Result<keys::GeneratedKey, BootstrapError> {
    tokio::task::spawn_blocking(|| keys::generate(KeyAlgorithm::Rsa2048))
        .await
        .map_err(|e| BootstrapError::Refused(format!("key generation stopped: {e}")))?
        .map_err(BootstrapError::from)
}

/// Bootstraps an empty store (see the module documentation) or finds its administrator.
pub async fn ensure(store: &Store, key_file: &Path, now: i64) -> Result<Started, BootstrapError> {
    if store.max_seq().await? != Seq(0) {
        return Ok(Started::Existing(find_administrator(store).await?));
    }
    let generated = generate_key().await?;
    let new = NewBootstrap {
        cloud: NewCloud {
            organization_id: String::new(),
            name: "default".into(),
            description: "Created by wif-gateway on its first start".into(),
            labels: labels(),
        },
        folder: NewFolder {
            cloud_id: String::new(),
            name: "default".into(),
            description: "Created by wif-gateway on its first start".into(),
            labels: labels(),
        },
        service_account: NewServiceAccount {
            folder_id: String::new(),
            name: "admin".into(),
            description: format!("The first administrator: {ADMINISTRATOR_ROLE} on the cloud"),
            labels: labels(),
        },
        role_id: ADMINISTRATOR_ROLE.into(),
        key: NewAuthorizedKey {
            service_account_id: String::new(),
            description: "Written to the bootstrap key file".into(),
            key_algorithm: KeyAlgorithm::Rsa2048,
            public_key: generated.public_key.clone(),
        },
    };
    let written = store
        .bootstrap(&new, now, |done| -> Result<(), BootstrapError> {
            if key_file.exists() {
                tracing::warn!(path = %key_file.display(), "replacing the key file of a previous, empty store");
            }
            write_private(
                key_file,
                &keys::key_file(&done.key, generated.private_key_pem()),
            )?;
            Ok(())
        })
        .await?;
    match written {
        Some(written) => {
            let b = written.item;
            Ok(Started::Bootstrapped {
                administrator: Administrator {
                    service_account_id: b.service_account.id,
                    folder_id: b.folder.id,
                    cloud_id: b.cloud.id,
                },
                key_id: b.key.id,
                key_file: key_file.to_path_buf(),
            })
        }
        // Another gateway on the same database bootstrapped it meanwhile.
        None => Ok(Started::Existing(find_administrator(store).await?)),
    }
}

/// The administrator: a service account that still exists and holds [`ADMINISTRATOR_ROLE`] on
/// a cloud; of several, the one the bootstrap labelled, else the oldest.
pub async fn find_administrator(store: &Store) -> Result<Option<Administrator>, StoreError> {
    let mut found: Vec<(bool, i64, Administrator)> = Vec::new();
    let mut clouds = PageRequest::first(0);
    loop {
        let page = store.list_clouds(&clouds).await?;
        for cloud in &page.items {
            let resource = ResourceRef::new(ResourceKind::Cloud, cloud.id.clone());
            let mut bindings = PageRequest::first(0);
            loop {
                let list = store.list_access_bindings(&resource, &bindings).await?;
                for binding in &list.items {
                    if binding.role_id != ADMINISTRATOR_ROLE
                        || binding.subject.subject_type != SubjectType::ServiceAccount
                    {
                        continue;
                    }
                    match store.get_service_account(&binding.subject.id).await {
                        Ok(account) => {
                            let labelled =
                                account.labels.get(LABEL.0).map(String::as_str) == Some(LABEL.1);
                            found.push((
                                labelled,
                                account.created_at,
                                Administrator {
                                    service_account_id: account.id,
                                    folder_id: account.folder_id,
                                    cloud_id: account.cloud_id,
                                },
                            ));
                        }
                        Err(StoreError::NotFound { .. }) => {}
                        Err(other) => return Err(other),
                    }
                }
                match list.next_page_token {
                    Some(token) => bindings = PageRequest::after(0, token),
                    None => break,
                }
            }
        }
        match page.next_page_token {
            Some(token) => clouds = PageRequest::after(0, token),
            None => break,
        }
    }
    found.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.service_account_id.cmp(&b.2.service_account_id))
    });
    Ok(found.into_iter().next().map(|(_, _, admin)| admin))
}

/// Creates a new authorized key for the administrator and writes its key file at `out` (mode
/// 0600). The key is stored first; if the file cannot be written, it is deleted again.
pub async fn new_administrator_key(
    store: &Store,
    out: &Path,
    now: i64,
) -> Result<(Administrator, AuthorizedKey), BootstrapError> {
    let Some(administrator) = find_administrator(store).await? else {
        return Err(BootstrapError::Refused(format!(
            "the store has no administrator: no existing service account holds {ADMINISTRATOR_ROLE} on a cloud"
        )));
    };
    let generated = generate_key().await?;
    let key = store
        .create_authorized_key(
            &NewAuthorizedKey {
                service_account_id: administrator.service_account_id.clone(),
                description: "Written by wif-gateway iam bootstrap-key".into(),
                key_algorithm: KeyAlgorithm::Rsa2048,
                public_key: generated.public_key.clone(),
            },
            now,
        )
        .await?
        .item;
    if let Err(e) = write_private(out, &keys::key_file(&key, generated.private_key_pem())) {
        if let Err(undo) = store.delete_authorized_key(&key.id, None, now).await {
            tracing::warn!(key_id = %key.id, error = %undo, "the unusable key could not be deleted");
        }
        return Err(e.into());
    }
    Ok((administrator, key))
}
