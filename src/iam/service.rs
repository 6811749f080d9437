//! The IAM API's methods over the store, independent of the transport (the REST routes of
//! [`crate::http`] call them; a gRPC front would too). It serves `KeyService` (authorized keys).
//!
//! Every method that reads or changes a resource passes through one authorization check,
//! [`Keys::authorize`] (or [`Context::authorize`]), which hands (principal, [`Method`], targets) to the [`Authorize`]
//! implementation the gateway was started with: the authorization index, fed by the store's
//! access bindings ([`super::live`]).
//!
//! Also here: the proto3 JSON forms of the messages these methods answer with
//! ([`key_message`]); operations are packed by [`super::operation`].

use std::sync::{PoisonError, RwLock};

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::exchange::quote;
use crate::iam::ResourceKind;
use crate::time::rfc3339;

use super::authn::Principal;
use super::authz::{AuthzIndex, Refused, Resource as AuthzResource};
use super::keys::{self, GeneratedKey};
use super::live::Live;
use super::operation::{self, OperationTypes, types};
use super::quota::{Quota, Quotas};
use super::roles::{Permission, Scope};
use super::status::Status;
use super::store::{
    AuthorizedKey, AuthorizedKeyUpdate, KeyAlgorithm, NewAuthorizedKey, NewOperation, Operation,
    Page, PageRequest, ServiceAccount, Store, StoreError, Written,
};

pub use super::roles::Method;

/// Decides whether a principal may call a method on the resources it names, and whether it
/// may grant a role on a resource. The gateway's implementation is the authorization index
/// ([`super::authz::AuthzIndex`]) kept current from the store; every method of the API goes
/// through it once, before it reads or changes anything else.
pub trait Authorize: Send + Sync {
    /// `targets` are the resources of [`Method::targets`], in that order. `Err` is
    /// PERMISSION_DENIED naming the permission and the resource it is missing on.
    fn authorize(
        &self,
        principal: &Principal,
        method: Method,
        targets: &[AuthzResource<'_>],
    ) -> Result<(), Status>;

    /// Whether the principal may grant (or revoke) `role_id` on `resource` (a built-in role or
    /// one the configuration declares). An unknown role, or one not granted on resources of that kind, is
    /// INVALID_ARGUMENT.
    fn may_grant(
        &self,
        principal: &Principal,
        role_id: &str,
        resource: AuthzResource<'_>,
    ) -> Result<(), Status>;

    /// Whether the principal holds `permission` on `resource` (by a binding on it or above
    /// it). For the methods that show only what the caller may see (`CloudService.List`).
    fn check(
        &self,
        principal: &Principal,
        permission: Permission,
        resource: AuthzResource<'_>,
    ) -> bool;

    /// The index itself, read-locked, for the checks of the Authorize API (a batch is
    /// answered under one lock).
    fn index(&self) -> std::sync::RwLockReadGuard<'_, AuthzIndex>;
}

/// The refusal of the authorization index as the API answers it.
pub fn refusal(method: Option<Method>, refused: Refused) -> Status {
    match refused {
        Refused::Denied(denied) => Status::permission_denied(match method {
            Some(method) => format!("{method}: {denied}"),
            None => denied.to_string(),
        }),
        Refused::UnknownRole(_) | Refused::NotGrantableOn { .. } => {
            Status::invalid_argument("invalid_role", refused.to_string())
        }
        Refused::WrongTargets { .. } => Status::internal(&refused),
    }
}

impl Authorize for RwLock<AuthzIndex> {
    fn authorize(
        &self,
        principal: &Principal,
        method: Method,
        targets: &[AuthzResource<'_>],
    ) -> Result<(), Status> {
        let index = self.read().unwrap_or_else(PoisonError::into_inner);
        index
            .authorize(&principal.as_subject(), method, targets)
            .map_err(|refused| refusal(Some(method), refused))
    }

    fn may_grant(
        &self,
        principal: &Principal,
        role_id: &str,
        resource: AuthzResource<'_>,
    ) -> Result<(), Status> {
        let index = self.read().unwrap_or_else(PoisonError::into_inner);
        index
            .may_grant(&principal.as_subject(), role_id, resource)
            .map_err(|refused| refusal(None, refused))
    }

    fn check(
        &self,
        principal: &Principal,
        permission: Permission,
        resource: AuthzResource<'_>,
    ) -> bool {
        let index = self.read().unwrap_or_else(PoisonError::into_inner);
        index
            .check(&principal.as_subject(), permission, resource)
            .is_ok()
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, AuthzIndex> {
        self.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The role id the bootstrap administrator holds on its cloud: the broadest there is (it may
/// also grant owner roles, which `admin` may not).
pub const ADMINISTRATOR_ROLE: &str = "resource-manager.clouds.owner";

/// Longest description of a key (`CreateKeyRequest.description`: length ≤ 256).
pub const MAX_DESCRIPTION_CHARS: usize = 256;
/// Longest id in a request (`key_id`, `service_account_id`: length ≤ 50).
pub const MAX_ID_CHARS: usize = 50;

/// The one authorization check of a method on a service account's keys: reads the account
/// (a missing one is NOT_FOUND) and asks the authorizer about `method` on it.
pub async fn authorize_on_account(
    store: &Store,
    authorizer: &dyn Authorize,
    principal: &Principal,
    method: Method,
    service_account_id: &str,
) -> Result<ServiceAccount, Status> {
    let account = match store.get_service_account(service_account_id).await {
        Ok(account) => account,
        Err(StoreError::NotFound { .. }) => {
            return Err(Status::not_found(format!(
                "service account {} not found",
                quote(service_account_id)
            )));
        }
        Err(other) => return Err(other.into()),
    };
    authorizer.authorize(
        principal,
        method,
        &[AuthzResource::new(Scope::ServiceAccount, &account.id)],
    )?;
    Ok(account)
}

/// The service account a key's creation concerns (the one named, else the caller's), once it
/// and the key's description are checked.
pub(crate) fn creation_target<'a>(
    principal: &'a Principal,
    service_account_id: Option<&'a str>,
    description: &str,
) -> Result<&'a str, Status> {
    let account_id = service_account_id.unwrap_or(&principal.service_account_id);
    check_id("serviceAccountId", account_id)?;
    check_description(description)?;
    Ok(account_id)
}

pub(crate) fn check_id(what: &str, id: &str) -> Result<(), Status> {
    if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
        return Err(Status::invalid_argument(
            "invalid_argument",
            format!("{what} must be 1 to {MAX_ID_CHARS} characters"),
        ));
    }
    Ok(())
}

pub(crate) fn check_description(description: &str) -> Result<(), Status> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Status::invalid_argument(
            "invalid_argument",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(())
}

/// `KeyFormat`: only `PEM_FILE` exists (by name, as REST sends it; absent or empty is it too).
pub fn check_key_format(format: Option<&str>) -> Result<(), Status> {
    match format {
        None | Some("" | "PEM_FILE") => Ok(()),
        Some(other) => Err(Status::invalid_argument(
            "invalid_argument",
            format!("format {} is not PEM_FILE", quote(other)),
        )),
    }
}

/// `Key.Algorithm` by name: `RSA_2048` (also the default: absent, empty or
/// `ALGORITHM_UNSPECIFIED`) or `RSA_4096`.
pub fn key_algorithm(name: Option<&str>) -> Result<KeyAlgorithm, Status> {
    match name {
        None | Some("" | "ALGORITHM_UNSPECIFIED") => Ok(KeyAlgorithm::default()),
        Some(name) => KeyAlgorithm::parse(name).ok_or_else(|| {
            Status::invalid_argument(
                "invalid_argument",
                format!("keyAlgorithm {} is not RSA_2048 or RSA_4096", quote(name)),
            )
        }),
    }
}

/// `UpdateKeyRequest.update_mask`: only `description` can be named.
pub fn check_key_update_mask(mask: Option<&str>) -> Result<(), Status> {
    for path in mask
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        if path != "description" {
            return Err(Status::invalid_argument(
                "invalid_argument",
                format!(
                    "updateMask names {}: only description can be updated",
                    quote(path)
                ),
            ));
        }
    }
    Ok(())
}

/// The page of a `KeyService.List` call: `page_size` 0 to 1000, `page_token` at most 2000
/// characters (empty: the first page).
pub fn key_page(size: i64, token: &str) -> Result<PageRequest, Status> {
    let size = u32::try_from(size)
        .ok()
        .filter(|n| *n <= 1000)
        .ok_or_else(|| {
            Status::invalid_argument(
                "invalid_argument",
                "pageSize must be a number from 0 to 1000",
            )
        })?;
    if token.chars().count() > 2000 {
        return Err(Status::invalid_argument(
            "invalid_argument",
            "pageToken must be at most 2000 characters",
        ));
    }
    Ok(PageRequest {
        size,
        token: (!token.is_empty()).then(|| token.to_owned()),
    })
}

/// `CreateKeyRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateKey {
    /// The key's service account; `None`: the caller's own.
    pub service_account_id: Option<String>,
    pub description: String,
    pub algorithm: KeyAlgorithm,
}

/// A created key and its private half, to be handed out once.
#[derive(Debug)]
pub struct CreatedKey {
    pub key: AuthorizedKey,
    pub private_key: GeneratedKey,
}

/// `KeyService` over `store`, at `now`, with `authorizer` deciding who may do what.
pub struct Keys<'a> {
    pub store: &'a Store,
    pub authorizer: &'a dyn Authorize,
    pub quotas: &'a Quotas,
    pub now: i64,
}

impl Keys<'_> {
    /// The one authorization check of every key method: reads the service account the call
    /// concerns and asks the authorizer. A missing account is NOT_FOUND.
    async fn authorize(
        &self,
        principal: &Principal,
        method: Method,
        service_account_id: &str,
    ) -> Result<ServiceAccount, Status> {
        authorize_on_account(
            self.store,
            self.authorizer,
            principal,
            method,
            service_account_id,
        )
        .await
    }

    /// A key and the account it belongs to, once the caller may call `method` on it.
    async fn authorized_key(
        &self,
        principal: &Principal,
        method: Method,
        key_id: &str,
    ) -> Result<AuthorizedKey, Status> {
        check_id("key_id", key_id)?;
        let key = match self.store.get_authorized_key(key_id).await {
            Ok(key) => key,
            Err(StoreError::NotFound { .. }) => {
                return Err(Status::not_found(format!(
                    "authorized key {} not found",
                    quote(key_id)
                )));
            }
            Err(other) => return Err(other.into()),
        };
        self.authorize(principal, method, &key.service_account_id)
            .await?;
        Ok(key)
    }

    /// `KeyService.Get`.
    pub async fn get(&self, principal: &Principal, key_id: &str) -> Result<AuthorizedKey, Status> {
        self.authorized_key(principal, Method::KeyGet, key_id).await
    }

    /// `KeyService.List`: the keys of a service account (the caller's own when `None`).
    pub async fn list(
        &self,
        principal: &Principal,
        service_account_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<AuthorizedKey>, Status> {
        let account_id = service_account_id.unwrap_or(&principal.service_account_id);
        check_id("serviceAccountId", account_id)?;
        self.authorize(principal, Method::KeyList, account_id)
            .await?;
        Ok(self.store.list_authorized_keys(account_id, page).await?)
    }

    /// `KeyService.Create`: a new RSA key pair; the store keeps the public half, the caller
    /// gets the private half once.
    pub async fn create(
        &self,
        principal: &Principal,
        request: CreateKey,
    ) -> Result<CreatedKey, Status> {
        let account_id = creation_target(
            principal,
            request.service_account_id.as_deref(),
            &request.description,
        )?;
        let account = self
            .authorize(principal, Method::KeyCreate, account_id)
            .await?;
        self.quotas
            .check(self.store, Quota::AuthorizedKeys, &account.cloud_id, 1)
            .await?;
        let algorithm = request.algorithm;
        let generated = tokio::task::spawn_blocking(move || keys::generate(algorithm))
            .await
            .map_err(|e| Status::internal(&e))?
            .map_err(|e| Status::internal(&e))?;
        let written = self
            .store
            .create_authorized_key(
                &NewAuthorizedKey {
                    service_account_id: account.id,
                    description: request.description,
                    key_algorithm: algorithm,
                    public_key: generated.public_key.clone(),
                },
                self.now,
            )
            .await?;
        Ok(CreatedKey {
            key: written.item,
            private_key: generated,
        })
    }

    /// `KeyService.Update`: replaces the description (the only mutable field). Answers the
    /// finished operation, whose response is the key.
    pub async fn update(
        &self,
        principal: &Principal,
        key_id: &str,
        description: String,
    ) -> Result<Operation, Status> {
        check_description(&description)?;
        let key = self
            .authorized_key(principal, Method::KeyUpdate, key_id)
            .await?;
        let written = self
            .store
            .update_authorized_key(
                &key.id,
                key.version,
                &AuthorizedKeyUpdate { description },
                self.now,
            )
            .await?;
        let key = written.item;
        self.record_operation(
            principal,
            &key.id,
            "Update key",
            types::KEY_UPDATE,
            &json!({"keyId": key.id}),
            &operation::message(&key_message(&key)),
        )
        .await
    }

    /// `KeyService.Delete`. Answers the finished operation.
    pub async fn delete(&self, principal: &Principal, key_id: &str) -> Result<Operation, Status> {
        let key = self
            .authorized_key(principal, Method::KeyDelete, key_id)
            .await?;
        self.store
            .delete_authorized_key(&key.id, Some(key.version), self.now)
            .await?;
        self.record_operation(
            principal,
            &key.id,
            "Delete key",
            types::KEY_DELETE,
            &json!({"keyId": key.id}),
            &json!({}),
        )
        .await
    }

    async fn record_operation(
        &self,
        principal: &Principal,
        resource_id: &str,
        description: &str,
        types: OperationTypes,
        metadata: &Value,
        response: &Value,
    ) -> Result<Operation, Status> {
        let finished = Finished {
            resource_id,
            description,
            types,
            metadata,
            response,
        };
        record_operation(self.store, self.now, principal, finished).await
    }
}

/// What the API methods over the followed store share: the store, the authorizer, the clock.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub live: &'a Live,
    pub authorizer: &'a dyn Authorize,
    pub quotas: &'a Quotas,
    pub now: i64,
}

impl Context<'_> {
    pub fn store(&self) -> &Store {
        self.live.store()
    }

    /// The one authorization check of a method: see [`Authorize::authorize`].
    pub fn authorize(
        &self,
        principal: &Principal,
        method: Method,
        targets: &[AuthzResource<'_>],
    ) -> Result<(), Status> {
        self.authorizer.authorize(principal, method, targets)
    }

    /// The written item, once this replica's exchange and authorization see the change: a
    /// mutation calls this before it answers (`docs/design.md#propagation`).
    pub async fn applied<T>(&self, written: Written<T>) -> T {
        self.live.caught_up_to(written.seq).await;
        written.item
    }

    /// RESOURCE_EXHAUSTED when `cloud_id` has no room for `adding` more under `quota`.
    pub async fn quota(&self, quota: Quota, cloud_id: &str, adding: u64) -> Result<(), Status> {
        self.quotas
            .check(self.store(), quota, cloud_id, adding)
            .await
    }

    /// FAILED_PRECONDITION when the resource `id` (a `what`: "federation", …) is defined by a
    /// configuration file: such resources are read-only through the API.
    pub fn writable(&self, what: &str, id: &str) -> Result<(), Status> {
        match self.live.configured().managed_by(id) {
            None => Ok(()),
            Some(file) => Err(Status::new(
                super::status::Code::FailedPrecondition,
                "managed_by_configuration",
                format!(
                    "{what} {} is defined in the configuration file {}: it is read-only through the API; change it in that file",
                    quote(id),
                    file.display()
                ),
            )),
        }
    }

    /// Keeps and returns the finished operation of a committed change.
    pub async fn finished(
        &self,
        principal: &Principal,
        finished: Finished<'_>,
    ) -> Result<Operation, Status> {
        record_operation(self.store(), self.now, principal, finished).await
    }
}

/// A finished operation: what it acted on, its description (`"Create service account"`), its
/// metadata and response types, and their messages.
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    pub resource_id: &'a str,
    pub description: &'a str,
    pub types: OperationTypes,
    pub metadata: &'a Value,
    pub response: &'a Value,
}

/// The finished operation of a change, as `principal` made it.
pub fn finished_operation(principal: &Principal, finished: Finished<'_>) -> NewOperation {
    let Finished {
        resource_id,
        description,
        types,
        metadata,
        response,
    } = finished;
    let (metadata, result) = operation::finished(types, metadata, Ok(response));
    NewOperation {
        resource_id: resource_id.to_owned(),
        description: description.to_owned(),
        created_by: principal.service_account_id.clone(),
        done: true,
        metadata,
        result: Some(result),
    }
}

/// Keeps the finished operation of a change that has committed. Failing to keep it does not
/// undo the change: the operation is answered all the same, and the failure logged.
pub async fn record_operation(
    store: &Store,
    now: i64,
    principal: &Principal,
    finished: Finished<'_>,
) -> Result<Operation, Status> {
    let resource_id = finished.resource_id;
    let new = finished_operation(principal, finished);
    match store.create_operation(&new, now).await {
        Ok(operation) => Ok(operation),
        Err(e) => {
            tracing::warn!(error = %crate::report::error_chain(&e), resource_id, "the operation of a committed change was not kept");
            Ok(Operation {
                id: super::ids::generate(ResourceKind::Operation)
                    .map_err(|e| Status::internal(&e))?,
                resource_id: new.resource_id,
                description: new.description,
                created_by: new.created_by,
                created_at: now,
                modified_at: now,
                done: true,
                metadata: new.metadata,
                result: new.result,
                version: 1,
            })
        }
    }
}

/// `yandex.cloud.iam.v1.Key` in proto3 JSON (camelCase).
pub fn key_message(key: &AuthorizedKey) -> KeyMessage {
    KeyMessage {
        id: key.id.clone(),
        service_account_id: key.service_account_id.clone(),
        created_at: rfc3339(key.created_at),
        description: key.description.clone(),
        key_algorithm: key.key_algorithm.as_str(),
        public_key: key.public_key.clone(),
        last_used_at: key.last_used_at.map(rfc3339),
    }
}

/// `yandex.cloud.iam.v1.Key` in proto3 JSON: an authorized key, its public half only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Key)]
pub struct KeyMessage {
    pub id: String,
    pub service_account_id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub description: String,
    #[schema(value_type = String, examples("RSA_2048", "RSA_4096"))]
    pub key_algorithm: &'static str,
    /// The SubjectPublicKeyInfo PEM.
    pub public_key: String,
    /// When the key last got an IAM token (RFC 3339, UTC); absent if never. Recorded in
    /// batches: up to `[iam] usage_flush_seconds` behind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::authz::SubjectRef;
    use crate::iam::roles::Role;
    use crate::iam::store::OperationResult;

    fn principal(id: &str) -> Principal {
        Principal {
            service_account_id: id.into(),
            folder_id: "f".into(),
            cloud_id: "c".into(),
            token_jti: None,
            token_expires_at: None,
            actor: None,
        }
    }

    fn index() -> RwLock<AuthzIndex> {
        let mut index = AuthzIndex::new();
        index
            .set_parent(AuthzResource::folder("f"), AuthzResource::cloud("c"))
            .unwrap();
        for account in ["sa-1", "sa-2", "admin"] {
            index
                .set_parent(
                    AuthzResource::new(Scope::ServiceAccount, account),
                    AuthzResource::folder("f"),
                )
                .unwrap();
        }
        let admin = SubjectRef::service_account("admin");
        assert!(index.add_binding(
            AuthzResource::cloud("c"),
            Role::parse(ADMINISTRATOR_ROLE).unwrap(),
            admin
        ));
        let viewer = SubjectRef::service_account("sa-2");
        assert!(index.add_binding(
            AuthzResource::new(Scope::ServiceAccount, "sa-1"),
            Role::Viewer,
            viewer
        ));
        RwLock::new(index)
    }

    #[test]
    fn the_index_decides_and_refusals_name_the_method_and_the_missing_permission() {
        let index = index();
        let on = |id| [AuthzResource::new(Scope::ServiceAccount, id)];
        assert!(
            index
                .authorize(&principal("admin"), Method::KeyCreate, &on("sa-1"))
                .is_ok()
        );
        assert!(
            index
                .authorize(&principal("sa-2"), Method::KeyList, &on("sa-1"))
                .is_ok()
        );
        let refused = index
            .authorize(&principal("sa-2"), Method::KeyCreate, &on("sa-1"))
            .unwrap_err();
        assert_eq!(refused.code, super::super::status::Code::PermissionDenied);
        assert!(
            refused.message.contains(Method::KeyCreate.name()),
            "{}",
            refused.message
        );
        assert!(
            refused
                .message
                .contains("iam.authorizedKeys.create is required on iam.serviceAccount sa-1"),
            "{}",
            refused.message
        );
        // An account holds nothing on itself unless a binding says so.
        assert!(
            index
                .authorize(&principal("sa-1"), Method::KeyGet, &on("sa-1"))
                .is_err()
        );
        let wrong = index
            .authorize(&principal("admin"), Method::KeyCreate, &[])
            .unwrap_err();
        assert_eq!(wrong.code, super::super::status::Code::Internal);
    }

    #[test]
    fn grants_are_checked_and_unknown_roles_are_invalid_arguments() {
        let index = index();
        let folder = AuthzResource::folder("f");
        assert_eq!(
            index.may_grant(&principal("admin"), "editor", folder),
            Ok(())
        );
        let denied = index
            .may_grant(&principal("sa-2"), "viewer", folder)
            .unwrap_err();
        assert_eq!(denied.code, super::super::status::Code::PermissionDenied);
        let unknown = index
            .may_grant(&principal("admin"), "no.such.role", folder)
            .unwrap_err();
        assert_eq!(unknown.code, super::super::status::Code::InvalidArgument);
        assert_eq!(unknown.reason, "invalid_role");
    }

    #[test]
    fn messages_have_the_proto3_json_shape() {
        let key = AuthorizedKey {
            id: "k".into(),
            service_account_id: "sa".into(),
            description: "d".into(),
            key_algorithm: KeyAlgorithm::Rsa4096,
            public_key: "-----BEGIN PUBLIC KEY-----\n".into(),
            last_used_at: None,
            created_at: 0,
            version: 3,
        };
        assert_eq!(
            operation::message(&key_message(&key)),
            json!({"id": "k", "serviceAccountId": "sa", "createdAt": "1970-01-01T00:00:00Z",
                   "description": "d", "keyAlgorithm": "RSA_4096",
                   "publicKey": "-----BEGIN PUBLIC KEY-----\n"})
        );
        let operation = Operation {
            id: "op".into(),
            resource_id: "k".into(),
            description: "Delete key".into(),
            created_by: "sa".into(),
            created_at: 60,
            modified_at: 60,
            done: true,
            metadata: json!({"keyId": "k"}),
            result: Some(OperationResult::Response(json!({}))),
            version: 1,
        };
        let message = operation::message(&operation::to_message(&operation));
        assert_eq!(message["done"], true);
        assert_eq!(message["createdAt"], "1970-01-01T00:01:00Z");
        assert_eq!(message["response"], json!({}));
        assert!(message.get("error").is_none());
    }
}
