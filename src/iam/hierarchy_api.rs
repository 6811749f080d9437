//! The resource hierarchy's methods: `CloudService`, `FolderService` and
//! `ServiceAccountService` (get, list, create, update, delete), and `OperationService.Get`,
//! over the followed store ([`Context`]), independent of the transport (the REST routes are
//! [`crate::http::iam_hierarchy`]'s).
//!
//! Each method checks the request's fields ([`super::validate`]) and then makes its one
//! authorization check ([`Context::authorize`]) before it reads or changes anything. A target
//! the authorization index does not know is NOT_FOUND when the store has no such resource
//! either, PERMISSION_DENIED otherwise. Mutations wait until this replica sees the change
//! ([`Context::applied`]) and answer the finished operation ([`Context::finished`]).
//!
//! | rule | value |
//! |---|---|
//! | service accounts per cloud (`iam.serviceAccounts.count`) | [`crate::iam::quota`], RESOURCE_EXHAUSTED beyond |
//! | name uniqueness | service accounts and folders in their cloud, clouds in their organization (the store's rules, ALREADY_EXISTS) |
//! | `updateMask` | comma-separated paths, camelCase or snake_case, of `name`, `description`, `labels`; none: every one of them, an absent field reset to its default (an empty name keeps the name) |
//! | list `filter` | empty, or `name="<name>"` |
//! | `CloudService.List` | the clouds on which the caller holds `resource-manager.clouds.get` |
//! | `OperationService.Get` | its creator, or whoever may read the resource it acted on |
//! | `ServiceAccountService.Suspend` | `reason` required (≤ 256); `expiresAt`, if given, the future moment the upkeep reactivates the account; an account may not suspend itself; suspending a suspended account, or reactivating an active one, is FAILED_PRECONDITION |

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::exchange::quote;
use crate::iam::ResourceKind;
use crate::time::rfc3339;

use super::authn::Principal;
use super::authz::Resource;
use super::operation::{self, types};
use super::paging::{self, Updatable};
use super::quota::Quota;
use super::roles::{Method, Permission, Scope};
use super::service::{Context, Finished};
use super::status::{Code, Status};
use super::store::{
    Cloud, CloudUpdate, Folder, FolderUpdate, Labels, NewCloud, NewFolder, NewServiceAccount,
    Operation, Page, PageRequest, Record, ServiceAccount, ServiceAccountStatus,
    ServiceAccountUpdate, StoreError,
};
use super::validate;

/// Longest reason of a suspension (`SuspendServiceAccountRequest.reason`: required, ≤ 256).
pub const MAX_REASON_CHARS: usize = 256;
/// The latest end of a suspension (the proto's bound: 2105-12-31T23:59:59Z).
pub const LATEST_SUSPENSION_END: i64 = 4_291_747_199;
/// Suspensions lifted per upkeep round at most.
const LIFTED_PER_ROUND: u32 = 100;

/// `SuspendServiceAccountRequest` without the account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suspension {
    /// Why: for the people who will read the audit log and the operation.
    pub reason: String,
    /// When the suspension lifts by itself (Unix seconds); `None`: at reactivation only.
    pub until: Option<i64>,
}

/// The fields an update of a cloud, a folder or a service account may change.
pub const UPDATABLE: Updatable = &["name", "description", "labels"];

/// The fields of a create request shared by clouds, folders and service accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub name: String,
    pub description: String,
    pub labels: Labels,
}

/// An update request of a cloud, a folder or a service account: the mask as sent and the
/// fields the body had.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    pub update_mask: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub labels: Option<Labels>,
}

/// A list request's page, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRequest {
    pub page_size: i64,
    pub page_token: String,
    pub filter: String,
}

/// A checked list request: the page size, where it starts, and the name it filters on.
struct Listing {
    size: usize,
    after: Option<String>,
    name: Option<String>,
}

impl ListRequest {
    fn check(&self) -> Result<Listing, Status> {
        let size = validate::page(self.page_size, &self.page_token)?;
        let after = paging::after(&self.page_token)?;
        Ok(Listing {
            size,
            after,
            name: name_filter(&self.filter)?,
        })
    }
}

/// The name a list `filter` selects: empty, or `name="<name>"`; anything else is
/// INVALID_ARGUMENT.
pub fn name_filter(filter: &str) -> Result<Option<String>, Status> {
    if filter.chars().count() > 1000 {
        return Err(Status::invalid_argument(
            validate::REASON,
            "filter must be at most 1000 characters",
        ));
    }
    let filter = filter.trim();
    if filter.is_empty() {
        return Ok(None);
    }
    let value = filter
        .strip_prefix("name")
        .map(str::trim_start)
        .and_then(|rest| rest.strip_prefix('='))
        .map(str::trim)
        .and_then(|v| v.strip_prefix('"'))
        .and_then(|v| v.strip_suffix('"'))
        .filter(|v| !v.contains('"'));
    match value {
        Some(name) => Ok(Some(name.to_owned())),
        None => Err(Status::invalid_argument(
            validate::REASON,
            format!(
                "filter {}: only name=\"<name>\" is supported",
                quote(filter)
            ),
        )),
    }
}

fn check_attributes(attributes: &Attributes) -> Result<(), Status> {
    if attributes.name.is_empty() {
        return Err(Status::invalid_argument(
            validate::REASON,
            "name is required",
        ));
    }
    validate::name("name", &attributes.name, false)?;
    validate::description(&attributes.description)?;
    validate::labels(&attributes.labels)
}

/// The new name, description and labels of an update of `current`: the fields the mask names
/// (every updatable one without a mask) take the body's values, an absent one its default; an
/// empty name keeps the current one.
fn apply(update: &Update, current: &Attributes) -> Result<Attributes, Status> {
    let mask = update.update_mask.as_deref().unwrap_or("");
    let named = paging::update_mask(mask, UPDATABLE)?;
    let fields: &[&str] = if named.is_empty() { UPDATABLE } else { &named };
    let mut next = current.clone();
    for field in fields {
        match *field {
            "name" => {
                let name = update.name.as_deref().unwrap_or("");
                validate::name("name", name, true)?;
                if !name.is_empty() {
                    name.clone_into(&mut next.name);
                }
            }
            "description" => {
                let description = update.description.clone().unwrap_or_default();
                validate::description(&description)?;
                next.description = description;
            }
            "labels" => {
                let labels = update.labels.clone().unwrap_or_default();
                validate::labels(&labels)?;
                next.labels = labels;
            }
            _ => {}
        }
    }
    Ok(next)
}

/// Checks an update's fields (before authorization: nothing is read yet).
fn check_update(update: &Update) -> Result<(), Status> {
    apply(update, &Attributes::default()).map(|_| ())
}

/// Reads a page of visible, matching items from `fetch`, walking the store's pages until the
/// page is full: a list shows only what the caller may see, so a store page can hold fewer.
async fn visible_page<T, F>(
    listing: &Listing,
    fetch: impl Fn(PageRequest) -> F,
    keep: impl Fn(&T) -> bool,
    id: impl Fn(&T) -> &str,
) -> Result<Page<T>, Status>
where
    F: Future<Output = Result<Page<T>, StoreError>>,
{
    let mut found = Vec::new();
    let mut after = listing.after.clone();
    loop {
        let page = fetch(PageRequest {
            size: 1000,
            token: after.clone(),
        })
        .await?;
        for item in page.items {
            if keep(&item) {
                found.push(item);
            }
        }
        if found.len() > listing.size {
            break;
        }
        match page.next_page_token {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let more = found.len() > listing.size;
    found.truncate(listing.size);
    let next_page_token = if more {
        found.last().map(|last| paging::page_token(id(last)))
    } else {
        None
    };
    Ok(Page {
        items: found,
        next_page_token,
    })
}

/// `account` with another status, everything else kept.
fn status_update(
    account: &ServiceAccount,
    status: ServiceAccountStatus,
    until: Option<i64>,
) -> ServiceAccountUpdate {
    ServiceAccountUpdate {
        name: account.name.clone(),
        description: account.description.clone(),
        labels: account.labels.clone(),
        status,
        suspended_until: until,
    }
}

/// Reactivates the accounts whose suspension ended by `now` (the upkeep calls this on every
/// round, on every replica: an account another replica reactivated first is a version
/// conflict here, and skipped).
pub async fn lift_ended_suspensions(live: &super::live::Live, now: i64) {
    let store = live.store();
    let ended = match store.ended_suspensions(now, LIFTED_PER_ROUND).await {
        Ok(ended) => ended,
        Err(e) => {
            tracing::warn!(error = %crate::report::error_chain(&e), "IAM store: cannot read ended suspensions; retrying at the next upkeep");
            return;
        }
    };
    for account in ended {
        let update = status_update(&account, ServiceAccountStatus::Active, None);
        match store
            .update_service_account(&account.id, account.version, &update, now)
            .await
        {
            Ok(written) => {
                live.caught_up_to(written.seq).await;
                tracing::info!(service_account = %account.id, "service account reactivated: its suspension ended");
            }
            Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(error = %crate::report::error_chain(&e), service_account = %account.id, "IAM store: cannot lift an ended suspension; retrying at the next upkeep");
            }
        }
    }
}

fn not_found(what: &str, id: &str) -> Status {
    Status::not_found(format!("{what} {} not found", quote(id)))
}

/// `CloudService`, `FolderService`, `ServiceAccountService` and `OperationService.Get`.
pub struct Hierarchy<'a> {
    pub ctx: Context<'a>,
}

impl Hierarchy<'_> {
    /// The one authorization check of a method on an existing resource. A refusal for a
    /// resource the store does not have is NOT_FOUND.
    async fn authorize_on(
        &self,
        principal: &Principal,
        method: Method,
        target: Resource<'_>,
        what: &str,
    ) -> Result<(), Status> {
        validate::id(&format!("{}_id", scope_field(target.scope)), target.id)?;
        match self.ctx.authorize(principal, method, &[target]) {
            Ok(()) => Ok(()),
            Err(refused) if refused.code == Code::PermissionDenied => {
                let kind = match target.scope {
                    Scope::Cloud => ResourceKind::Cloud,
                    Scope::Folder => ResourceKind::Folder,
                    Scope::ServiceAccount => ResourceKind::ServiceAccount,
                    Scope::Federation => ResourceKind::Federation,
                    Scope::Organization => return Err(refused),
                };
                match self.ctx.store().record(kind, target.id).await? {
                    None => Err(not_found(what, target.id)),
                    Some(_) => Err(refused),
                }
            }
            Err(other) => Err(other),
        }
    }

    async fn finished(
        &self,
        principal: &Principal,
        finished: Finished<'_>,
    ) -> Result<Operation, Status> {
        self.ctx.finished(principal, finished).await
    }

    // CloudService

    /// `CloudService.Get`.
    pub async fn get_cloud(&self, principal: &Principal, id: &str) -> Result<Cloud, Status> {
        self.authorize_on(principal, Method::CloudGet, Resource::cloud(id), "cloud")
            .await?;
        Ok(self.ctx.store().get_cloud(id).await?)
    }

    /// `CloudService.List`: the clouds on which the caller holds `resource-manager.clouds.get`,
    /// of one organization if `organization_id` is given.
    pub async fn list_clouds(
        &self,
        principal: &Principal,
        organization_id: &str,
        request: &ListRequest,
    ) -> Result<Page<Cloud>, Status> {
        if !organization_id.is_empty() {
            validate::id("organization_id", organization_id)?;
        }
        let listing = request.check()?;
        self.ctx.authorize(principal, Method::CloudList, &[])?;
        let store = self.ctx.store();
        let authorizer = self.ctx.authorizer;
        visible_page(
            &listing,
            |page| async move { store.list_clouds(&page).await },
            |cloud: &Cloud| {
                (organization_id.is_empty() || cloud.organization_id == organization_id)
                    && listing.name.as_deref().is_none_or(|n| cloud.name == n)
                    && authorizer.check(
                        principal,
                        Permission::CloudsGet,
                        Resource::cloud(&cloud.id),
                    )
            },
            |cloud| &cloud.id,
        )
        .await
    }

    /// `CloudService.Create`, authorized on the organization the cloud is created in.
    pub async fn create_cloud(
        &self,
        principal: &Principal,
        organization_id: &str,
        attributes: Attributes,
    ) -> Result<Operation, Status> {
        validate::id("organization_id", organization_id)?;
        check_attributes(&attributes)?;
        self.ctx.authorize(
            principal,
            Method::CloudCreate,
            &[Resource::organization(organization_id)],
        )?;
        let written = self
            .ctx
            .store()
            .create_cloud(
                &NewCloud {
                    organization_id: organization_id.to_owned(),
                    name: attributes.name,
                    description: attributes.description,
                    labels: attributes.labels,
                },
                self.ctx.now,
            )
            .await?;
        let cloud = self.ctx.applied(written).await;
        self.finished(
            principal,
            Finished {
                resource_id: &cloud.id,
                description: "Create cloud",
                types: types::CLOUD_CREATE,
                metadata: &json!({"cloudId": cloud.id}),
                response: &operation::message(&cloud_message(&cloud)),
            },
        )
        .await
    }

    /// `CloudService.Update`.
    pub async fn update_cloud(
        &self,
        principal: &Principal,
        id: &str,
        update: &Update,
    ) -> Result<Operation, Status> {
        check_update(update)?;
        self.authorize_on(principal, Method::CloudUpdate, Resource::cloud(id), "cloud")
            .await?;
        let store = self.ctx.store();
        let cloud = store.get_cloud(id).await?;
        let next = apply(
            update,
            &Attributes {
                name: cloud.name,
                description: cloud.description,
                labels: cloud.labels,
            },
        )?;
        let written = store
            .update_cloud(
                id,
                cloud.version,
                &CloudUpdate {
                    name: next.name,
                    description: next.description,
                    labels: next.labels,
                },
                self.ctx.now,
            )
            .await?;
        let cloud = self.ctx.applied(written).await;
        self.finished(
            principal,
            Finished {
                resource_id: &cloud.id,
                description: "Update cloud",
                types: types::CLOUD_UPDATE,
                metadata: &json!({"cloudId": cloud.id}),
                response: &operation::message(&cloud_message(&cloud)),
            },
        )
        .await
    }

    /// `CloudService.Delete`: the cloud with its folders and everything in them.
    pub async fn delete_cloud(&self, principal: &Principal, id: &str) -> Result<Operation, Status> {
        self.authorize_on(principal, Method::CloudDelete, Resource::cloud(id), "cloud")
            .await?;
        let seq = self
            .ctx
            .store()
            .delete_cloud(id, None, self.ctx.now)
            .await?;
        self.ctx.live.caught_up_to(seq).await;
        self.finished(
            principal,
            Finished {
                resource_id: id,
                description: "Delete cloud",
                types: types::CLOUD_DELETE,
                metadata: &json!({"cloudId": id}),
                response: &json!({}),
            },
        )
        .await
    }

    // FolderService

    /// `FolderService.Get`.
    pub async fn get_folder(&self, principal: &Principal, id: &str) -> Result<Folder, Status> {
        self.authorize_on(principal, Method::FolderGet, Resource::folder(id), "folder")
            .await?;
        Ok(self.ctx.store().get_folder(id).await?)
    }

    /// `FolderService.List`: the folders of a cloud.
    pub async fn list_folders(
        &self,
        principal: &Principal,
        cloud_id: &str,
        request: &ListRequest,
    ) -> Result<Page<Folder>, Status> {
        validate::id("cloud_id", cloud_id)?;
        let listing = request.check()?;
        self.authorize_on(
            principal,
            Method::FolderList,
            Resource::cloud(cloud_id),
            "cloud",
        )
        .await?;
        let store = self.ctx.store();
        visible_page(
            &listing,
            |page| async move { store.list_folders(cloud_id, &page).await },
            |folder: &Folder| listing.name.as_deref().is_none_or(|n| folder.name == n),
            |folder| &folder.id,
        )
        .await
    }

    /// `FolderService.Create`, authorized on the cloud.
    pub async fn create_folder(
        &self,
        principal: &Principal,
        cloud_id: &str,
        attributes: Attributes,
    ) -> Result<Operation, Status> {
        validate::id("cloud_id", cloud_id)?;
        check_attributes(&attributes)?;
        self.authorize_on(
            principal,
            Method::FolderCreate,
            Resource::cloud(cloud_id),
            "cloud",
        )
        .await?;
        let written = self
            .ctx
            .store()
            .create_folder(
                &NewFolder {
                    cloud_id: cloud_id.to_owned(),
                    name: attributes.name,
                    description: attributes.description,
                    labels: attributes.labels,
                },
                self.ctx.now,
            )
            .await?;
        let folder = self.ctx.applied(written).await;
        self.finished(
            principal,
            Finished {
                resource_id: &folder.id,
                description: "Create folder",
                types: types::FOLDER_CREATE,
                metadata: &json!({"folderId": folder.id}),
                response: &operation::message(&folder_message(&folder)),
            },
        )
        .await
    }

    /// `FolderService.Update`.
    pub async fn update_folder(
        &self,
        principal: &Principal,
        id: &str,
        update: &Update,
    ) -> Result<Operation, Status> {
        check_update(update)?;
        self.authorize_on(
            principal,
            Method::FolderUpdate,
            Resource::folder(id),
            "folder",
        )
        .await?;
        let store = self.ctx.store();
        let folder = store.get_folder(id).await?;
        let next = apply(
            update,
            &Attributes {
                name: folder.name,
                description: folder.description,
                labels: folder.labels,
            },
        )?;
        let written = store
            .update_folder(
                id,
                folder.version,
                &FolderUpdate {
                    name: next.name,
                    description: next.description,
                    labels: next.labels,
                },
                self.ctx.now,
            )
            .await?;
        let folder = self.ctx.applied(written).await;
        self.finished(
            principal,
            Finished {
                resource_id: &folder.id,
                description: "Update folder",
                types: types::FOLDER_UPDATE,
                metadata: &json!({"folderId": folder.id}),
                response: &operation::message(&folder_message(&folder)),
            },
        )
        .await
    }

    /// `FolderService.Delete`: the folder with its service accounts and federations.
    pub async fn delete_folder(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Operation, Status> {
        self.authorize_on(
            principal,
            Method::FolderDelete,
            Resource::folder(id),
            "folder",
        )
        .await?;
        let seq = self
            .ctx
            .store()
            .delete_folder(id, None, self.ctx.now)
            .await?;
        self.ctx.live.caught_up_to(seq).await;
        self.finished(
            principal,
            Finished {
                resource_id: id,
                description: "Delete folder",
                types: types::FOLDER_DELETE,
                metadata: &json!({"folderId": id}),
                response: &json!({}),
            },
        )
        .await
    }

    // ServiceAccountService

    /// `ServiceAccountService.Get`.
    pub async fn get_service_account(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<ServiceAccount, Status> {
        self.authorize_on(
            principal,
            Method::ServiceAccountGet,
            Resource::service_account(id),
            "service account",
        )
        .await?;
        match self.ctx.store().get_service_account(id).await {
            Err(StoreError::NotFound { .. }) => {
                let configured = self.ctx.live.configured();
                let Some(account) = configured.configured_service_account(id) else {
                    return Err(not_found("service account", id));
                };
                Ok(ServiceAccount {
                    id: account.id.clone(),
                    folder_id: account.folder_id.clone(),
                    cloud_id: String::new(),
                    name: account.name.clone(),
                    description: String::new(),
                    labels: Labels::new(),
                    status: ServiceAccountStatus::Active,
                    suspended_until: None,
                    last_authenticated_at: None,
                    created_at: 0,
                    version: 0,
                })
            }
            other => Ok(other?),
        }
    }

    /// `ServiceAccountService.List`: the service accounts of a folder.
    pub async fn list_service_accounts(
        &self,
        principal: &Principal,
        folder_id: &str,
        request: &ListRequest,
    ) -> Result<Page<ServiceAccount>, Status> {
        validate::id("folder_id", folder_id)?;
        let listing = request.check()?;
        self.authorize_on(
            principal,
            Method::ServiceAccountList,
            Resource::folder(folder_id),
            "folder",
        )
        .await?;
        let store = self.ctx.store();
        visible_page(
            &listing,
            |page| async move { store.list_service_accounts(folder_id, &page).await },
            |account: &ServiceAccount| listing.name.as_deref().is_none_or(|n| account.name == n),
            |account| &account.id,
        )
        .await
    }

    /// `ServiceAccountService.Create`, authorized on the folder; at most
    /// `[iam.quotas] service_accounts` in the folder's cloud.
    pub async fn create_service_account(
        &self,
        principal: &Principal,
        folder_id: &str,
        attributes: Attributes,
    ) -> Result<Operation, Status> {
        validate::id("folder_id", folder_id)?;
        check_attributes(&attributes)?;
        self.authorize_on(
            principal,
            Method::ServiceAccountCreate,
            Resource::folder(folder_id),
            "folder",
        )
        .await?;
        let store = self.ctx.store();
        let folder = store.get_folder(folder_id).await?;
        self.ctx
            .quota(Quota::ServiceAccounts, &folder.cloud_id, 1)
            .await?;
        let written = store
            .create_service_account(
                &NewServiceAccount {
                    folder_id: folder_id.to_owned(),
                    name: attributes.name,
                    description: attributes.description,
                    labels: attributes.labels,
                },
                self.ctx.now,
            )
            .await?;
        let account = self.ctx.applied(written).await;
        self.finished(
            principal,
            Finished {
                resource_id: &account.id,
                description: "Create service account",
                types: types::SERVICE_ACCOUNT_CREATE,
                metadata: &json!({"serviceAccountId": account.id}),
                response: &operation::message(&service_account_message(&account)),
            },
        )
        .await
    }

    /// `ServiceAccountService.Update`. A service account's name stays required: an empty name
    /// keeps it.
    pub async fn update_service_account(
        &self,
        principal: &Principal,
        id: &str,
        update: &Update,
    ) -> Result<Operation, Status> {
        check_update(update)?;
        self.authorize_on(
            principal,
            Method::ServiceAccountUpdate,
            Resource::service_account(id),
            "service account",
        )
        .await?;
        self.ctx.writable("service account", id)?;
        let store = self.ctx.store();
        let account = store.get_service_account(id).await?;
        let next = apply(
            update,
            &Attributes {
                name: account.name,
                description: account.description,
                labels: account.labels,
            },
        )?;
        let written = store
            .update_service_account(
                id,
                account.version,
                &ServiceAccountUpdate {
                    name: next.name,
                    description: next.description,
                    labels: next.labels,
                    status: account.status,
                    suspended_until: account.suspended_until,
                },
                self.ctx.now,
            )
            .await?;
        let account = self.ctx.applied(written).await;
        self.finished(
            principal,
            Finished {
                resource_id: &account.id,
                description: "Update service account",
                types: types::SERVICE_ACCOUNT_UPDATE,
                metadata: &json!({"serviceAccountId": account.id}),
                response: &operation::message(&service_account_message(&account)),
            },
        )
        .await
    }

    /// `ServiceAccountService.Delete`: the account with its keys and credentials.
    pub async fn delete_service_account(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Operation, Status> {
        self.authorize_on(
            principal,
            Method::ServiceAccountDelete,
            Resource::service_account(id),
            "service account",
        )
        .await?;
        self.ctx.writable("service account", id)?;
        let seq = self
            .ctx
            .store()
            .delete_service_account(id, None, self.ctx.now)
            .await?;
        self.ctx.live.caught_up_to(seq).await;
        self.finished(
            principal,
            Finished {
                resource_id: id,
                description: "Delete service account",
                types: types::SERVICE_ACCOUNT_DELETE,
                metadata: &json!({"serviceAccountId": id}),
                response: &json!({}),
            },
        )
        .await
    }

    /// `ServiceAccountService.Suspend`: the account gets no token by any route, and the tokens
    /// it holds are refused by the management API and by Authorize (on every replica, within
    /// the propagation time), until it is reactivated or `until` passes.
    pub async fn suspend_service_account(
        &self,
        principal: &Principal,
        id: &str,
        suspension: &Suspension,
    ) -> Result<Operation, Status> {
        let reason = suspension.reason.trim();
        if reason.is_empty() || suspension.reason.chars().count() > MAX_REASON_CHARS {
            return Err(Status::invalid_argument(
                "invalid_argument",
                format!(
                    "reason: required, at most {MAX_REASON_CHARS} characters: say why the account is suspended"
                ),
            ));
        }
        if let Some(until) = suspension.until
            && (until <= self.ctx.now || until > LATEST_SUSPENSION_END)
        {
            return Err(Status::invalid_argument(
                "invalid_argument",
                format!(
                    "expiresAt {} is not in the future (server time {}) or is after {}: give the moment the suspension should end, or none",
                    rfc3339(until),
                    rfc3339(self.ctx.now),
                    rfc3339(LATEST_SUSPENSION_END)
                ),
            ));
        }
        let account = self
            .lifecycle_target(principal, Method::ServiceAccountSuspend, id)
            .await?;
        if principal.service_account_id == account.id {
            return Err(Status::new(
                Code::FailedPrecondition,
                "self_suspension",
                "a service account cannot suspend itself: its own token would stop working at once; ask another administrator",
            ));
        }
        if account.status == ServiceAccountStatus::Suspended {
            return Err(Status::new(
                Code::FailedPrecondition,
                "already_suspended",
                format!(
                    "service account {} is already suspended; reactivate it first to suspend it anew",
                    quote(id)
                ),
            ));
        }
        let account = self
            .set_status(&account, ServiceAccountStatus::Suspended, suspension.until)
            .await?;
        tracing::info!(
            service_account = %account.id,
            by = %principal.service_account_id,
            reason = %quote(reason),
            until = suspension.until.map(rfc3339).as_deref().unwrap_or("reactivation"),
            "service account suspended"
        );
        self.finished(
            principal,
            Finished {
                resource_id: &account.id,
                description: "Suspend service account",
                types: types::SERVICE_ACCOUNT_SUSPEND,
                metadata: &json!({"serviceAccountId": account.id}),
                response: &json!({}),
            },
        )
        .await
    }

    /// `ServiceAccountService.Reactivate`: a suspended account is active again.
    pub async fn reactivate_service_account(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Operation, Status> {
        let account = self
            .lifecycle_target(principal, Method::ServiceAccountReactivate, id)
            .await?;
        if account.status == ServiceAccountStatus::Active {
            return Err(Status::new(
                Code::FailedPrecondition,
                "not_suspended",
                format!("service account {} is not suspended", quote(id)),
            ));
        }
        let account = self
            .set_status(&account, ServiceAccountStatus::Active, None)
            .await?;
        tracing::info!(
            service_account = %account.id,
            by = %principal.service_account_id,
            "service account reactivated"
        );
        self.finished(
            principal,
            Finished {
                resource_id: &account.id,
                description: "Reactivate service account",
                types: types::SERVICE_ACCOUNT_REACTIVATE,
                metadata: &json!({"serviceAccountId": account.id}),
                response: &json!({}),
            },
        )
        .await
    }

    /// The account a suspension or reactivation concerns, once the caller may call `method`
    /// on it and it is the store's (accounts of configuration files are read-only).
    async fn lifecycle_target(
        &self,
        principal: &Principal,
        method: Method,
        id: &str,
    ) -> Result<ServiceAccount, Status> {
        self.authorize_on(
            principal,
            method,
            Resource::service_account(id),
            "service account",
        )
        .await?;
        self.ctx.writable("service account", id)?;
        match self.ctx.store().get_service_account(id).await {
            Err(StoreError::NotFound { .. }) => Err(not_found("service account", id)),
            other => Ok(other?),
        }
    }

    async fn set_status(
        &self,
        account: &ServiceAccount,
        status: ServiceAccountStatus,
        until: Option<i64>,
    ) -> Result<ServiceAccount, Status> {
        let written = self
            .ctx
            .store()
            .update_service_account(
                &account.id,
                account.version,
                &status_update(account, status, until),
                self.ctx.now,
            )
            .await?;
        Ok(self.ctx.applied(written).await)
    }

    // OperationService

    /// `OperationService.Get`: its creator may always read it; anyone else needs the read
    /// permission of the resource it acted on (for a key or a federated credential, its
    /// service account). An operation whose resource is gone is readable by its creator only.
    pub async fn get_operation(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Operation, Status> {
        validate::id("operation_id", id)?;
        let store = self.ctx.store();
        let operation = match store.get_operation(id).await {
            Ok(operation) => operation,
            Err(StoreError::NotFound { .. }) => return Err(not_found("operation", id)),
            Err(other) => return Err(other.into()),
        };
        if operation.created_by == principal.service_account_id {
            return Ok(operation);
        }
        let Some((scope, resource_id)) = self.resource_of(&operation.resource_id).await? else {
            return Err(Status::permission_denied(format!(
                "{}: the resource of operation {} no longer exists; only its creator may read it",
                Method::OperationGet,
                quote(id)
            )));
        };
        self.ctx.authorize(
            principal,
            Method::OperationGet,
            &[Resource::new(scope, &resource_id)],
        )?;
        Ok(operation)
    }

    /// The resource roles are checked on for an operation that acted on `id`.
    async fn resource_of(&self, id: &str) -> Result<Option<(Scope, String)>, Status> {
        let store = self.ctx.store();
        for (kind, scope) in [
            (ResourceKind::ServiceAccount, Scope::ServiceAccount),
            (ResourceKind::Folder, Scope::Folder),
            (ResourceKind::Cloud, Scope::Cloud),
            (ResourceKind::Federation, Scope::Federation),
        ] {
            if store.record(kind, id).await?.is_some() {
                return Ok(Some((scope, id.to_owned())));
            }
        }
        if let Some(Record::FederatedCredential(credential)) =
            store.record(ResourceKind::FederatedCredential, id).await?
        {
            return Ok(Some((Scope::ServiceAccount, credential.service_account_id)));
        }
        match store.get_authorized_key(id).await {
            Ok(key) => Ok(Some((Scope::ServiceAccount, key.service_account_id))),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }
}

/// The request field that names a resource of this scope, less `_id`.
fn scope_field(scope: Scope) -> &'static str {
    match scope {
        Scope::Organization => "organization",
        Scope::Cloud => "cloud",
        Scope::Folder => "folder",
        Scope::ServiceAccount => "service_account",
        Scope::Federation => "federation",
    }
}

/// `yandex.cloud.resourcemanager.v1.Cloud` in proto3 JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Cloud)]
pub struct CloudMessage {
    pub id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub name: String,
    pub description: String,
    pub organization_id: String,
    pub labels: Labels,
}

pub fn cloud_message(cloud: &Cloud) -> CloudMessage {
    CloudMessage {
        id: cloud.id.clone(),
        created_at: rfc3339(cloud.created_at),
        name: cloud.name.clone(),
        description: cloud.description.clone(),
        organization_id: cloud.organization_id.clone(),
        labels: cloud.labels.clone(),
    }
}

/// `yandex.cloud.resourcemanager.v1.Folder` in proto3 JSON (always `ACTIVE`: a deletion is
/// one transaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Folder)]
pub struct FolderMessage {
    pub id: String,
    pub cloud_id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub name: String,
    pub description: String,
    pub labels: Labels,
    #[schema(value_type = String, example = "ACTIVE")]
    pub status: &'static str,
}

pub fn folder_message(folder: &Folder) -> FolderMessage {
    FolderMessage {
        id: folder.id.clone(),
        cloud_id: folder.cloud_id.clone(),
        created_at: rfc3339(folder.created_at),
        name: folder.name.clone(),
        description: folder.description.clone(),
        labels: folder.labels.clone(),
        status: "ACTIVE",
    }
}

/// `yandex.cloud.iam.v1.ServiceAccount` in proto3 JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ServiceAccount)]
pub struct ServiceAccountMessage {
    pub id: String,
    pub folder_id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub name: String,
    pub description: String,
    pub labels: Labels,
    #[schema(value_type = String, examples("ACTIVE", "SUSPENDED"))]
    pub status: &'static str,
    /// When a token was last issued for the account (RFC 3339, UTC); absent if never.
    /// Recorded in batches: a few seconds behind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_authenticated_at: Option<String>,
}

pub fn service_account_message(account: &ServiceAccount) -> ServiceAccountMessage {
    ServiceAccountMessage {
        id: account.id.clone(),
        folder_id: account.folder_id.clone(),
        created_at: rfc3339(account.created_at),
        name: account.name.clone(),
        description: account.description.clone(),
        labels: account.labels.clone(),
        status: account.status.as_str(),
        last_authenticated_at: account.last_authenticated_at.map(rfc3339),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(name: &str) -> Attributes {
        Attributes {
            name: name.into(),
            ..Attributes::default()
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn create_requests_follow_the_yandex_field_rules() {
        let cases: Vec<(&str, Attributes, bool)> = vec![
            ("plain", attributes("deployer"), true),
            ("one letter", attributes("a"), true),
            ("63 characters", attributes(&"a".repeat(63)), true),
            ("no name", attributes(""), false),
            ("upper case", attributes("Deployer"), false),
            ("digit first", attributes("1deployer"), false),
            ("trailing hyphen", attributes("deployer-"), false),
            ("underscore", attributes("de_ployer"), false),
            ("64 characters", attributes(&"a".repeat(64)), false),
            (
                "long description",
                Attributes {
                    description: "d".repeat(257),
                    ..attributes("ok")
                },
                false,
            ),
            (
                "bad label key",
                Attributes {
                    labels: labels(&[("Env", "x")]),
                    ..attributes("ok")
                },
                false,
            ),
            (
                "65 labels",
                Attributes {
                    labels: (0..65).map(|i| (format!("k{i}"), String::new())).collect(),
                    ..attributes("ok")
                },
                false,
            ),
        ];
        for (name, input, accepted) in cases {
            let result = check_attributes(&input);
            assert_eq!(result.is_ok(), accepted, "{name}: {result:?}");
            if let Err(status) = result {
                assert_eq!(status.code, Code::InvalidArgument, "{name}");
                assert_eq!(status.body()["code"], 3, "{name}");
            }
        }
    }

    #[test]
    fn updates_change_what_the_mask_names_and_reset_what_it_names_but_the_body_lacks() {
        let current = Attributes {
            name: "old".into(),
            description: "kept".into(),
            labels: labels(&[("env", "prod")]),
        };
        let renamed = apply(
            &Update {
                update_mask: Some("name".into()),
                name: Some("new".into()),
                description: Some("ignored".into()),
                ..Update::default()
            },
            &current,
        )
        .unwrap();
        assert_eq!(renamed.name, "new");
        assert_eq!(renamed.description, "kept");
        assert_eq!(renamed.labels, current.labels);
        let cleared = apply(
            &Update {
                update_mask: Some("description,labels".into()),
                ..Update::default()
            },
            &current,
        )
        .unwrap();
        assert_eq!(cleared.name, "old");
        assert_eq!(cleared.description, "");
        assert!(cleared.labels.is_empty());
        let unmasked = apply(
            &Update {
                description: Some("d".into()),
                ..Update::default()
            },
            &current,
        )
        .unwrap();
        assert_eq!(unmasked.name, "old", "an empty name keeps the name");
        assert_eq!(unmasked.description, "d");
        assert!(unmasked.labels.is_empty(), "no mask: absent fields reset");
        let snake = apply(
            &Update {
                update_mask: Some(" labels ".into()),
                labels: Some(labels(&[("team", "a")])),
                ..Update::default()
            },
            &current,
        )
        .unwrap();
        assert_eq!(snake.labels, labels(&[("team", "a")]));
    }

    #[test]
    fn updates_refuse_unknown_mask_paths_and_bad_values() {
        let cases: Vec<(&str, Update)> = vec![
            (
                "immutable path",
                Update {
                    update_mask: Some("folderId".into()),
                    ..Update::default()
                },
            ),
            (
                "unknown path",
                Update {
                    update_mask: Some("name,color".into()),
                    ..Update::default()
                },
            ),
            (
                "bad name",
                Update {
                    update_mask: Some("name".into()),
                    name: Some("Bad".into()),
                    ..Update::default()
                },
            ),
            (
                "bad label value",
                Update {
                    labels: Some(labels(&[("k", "V")])),
                    ..Update::default()
                },
            ),
        ];
        for (name, update) in cases {
            let status = check_update(&update).expect_err(name);
            assert_eq!(status.code, Code::InvalidArgument, "{name}");
        }
    }

    #[test]
    fn filters_select_by_name_or_are_refused() {
        assert_eq!(name_filter("").unwrap(), None);
        assert_eq!(
            name_filter("name=\"deployer\"").unwrap().as_deref(),
            Some("deployer")
        );
        assert_eq!(
            name_filter(" name = \"a-b\" ").unwrap().as_deref(),
            Some("a-b")
        );
        for bad in [
            "name=deployer",
            "id=\"x\"",
            "name=\"a\" AND x",
            &"f".repeat(1001),
        ] {
            let status = name_filter(bad).expect_err(bad);
            assert_eq!(status.code, Code::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn messages_have_the_proto3_json_shape() {
        let account = ServiceAccount {
            id: "aje1".into(),
            folder_id: "b1gf".into(),
            cloud_id: "b1gc".into(),
            name: "deployer".into(),
            description: String::new(),
            labels: labels(&[("env", "prod")]),
            status: Default::default(),
            suspended_until: None,
            last_authenticated_at: None,
            created_at: 0,
            version: 1,
        };
        assert_eq!(
            operation::message(&service_account_message(&account)),
            json!({"id": "aje1", "folderId": "b1gf", "createdAt": "1970-01-01T00:00:00Z",
                   "name": "deployer", "description": "", "labels": {"env": "prod"},
                   "status": "ACTIVE"})
        );
        let cloud = Cloud {
            id: "b1gc".into(),
            organization_id: "org".into(),
            name: "c".into(),
            description: String::new(),
            labels: Labels::new(),
            created_at: 0,
            version: 1,
        };
        assert_eq!(cloud_message(&cloud).organization_id, "org");
        assert!(
            operation::message(&cloud_message(&cloud))
                .get("cloudId")
                .is_none()
        );
    }
}
