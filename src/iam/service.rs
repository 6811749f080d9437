//! The IAM API's methods over the store, independent of the transport (the REST routes of
//! [`crate::http`] call them; a gRPC front would too). It serves `KeyService` (authorized keys).
//!
//! Every method that reads or changes a resource passes through one authorization check,
//! [`Keys::authorize`], which hands (principal, [`Method`], [`Resource`]) to the [`Authorize`]
//! implementation the gateway was started with. The gateway starts with
//! [`AdministratorOrSelf`]: the bootstrap administrator may do everything, a service account
//! may manage its own keys, nobody else anything.
//!
//! Also here: the proto3 JSON forms of the messages these methods answer with
//! ([`key_message`]); operations are packed by [`super::operation`].

use std::future::Future;
use std::pin::Pin;

use serde_json::{Value, json};

use crate::exchange::quote;
use crate::iam::ResourceKind;
use crate::time::rfc3339;

use super::authn::Principal;
use super::keys::{self, GeneratedKey};
use super::operation::{self, OperationTypes, types};
use super::status::Status;
use super::store::{
    AuthorizedKey, AuthorizedKeyUpdate, KeyAlgorithm, NewAuthorizedKey, NewOperation, Operation,
    Page, PageRequest, ResourceRef, ServiceAccount, Store, StoreError,
};

/// The IAM API's methods, named as gRPC names them (the `method` of the audit log and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `POST /iam/v1/tokens`: needs no authorization, only the JWT.
    IamTokenCreate,
    KeyGet,
    KeyList,
    KeyCreate,
    KeyUpdate,
    KeyDelete,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::IamTokenCreate,
        Method::KeyGet,
        Method::KeyList,
        Method::KeyCreate,
        Method::KeyUpdate,
        Method::KeyDelete,
    ];

    /// The full gRPC method name, e.g. `yandex.cloud.iam.v1.KeyService/Create`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::IamTokenCreate => "yandex.cloud.iam.v1.IamTokenService/Create",
            Method::KeyGet => "yandex.cloud.iam.v1.KeyService/Get",
            Method::KeyList => "yandex.cloud.iam.v1.KeyService/List",
            Method::KeyCreate => "yandex.cloud.iam.v1.KeyService/Create",
            Method::KeyUpdate => "yandex.cloud.iam.v1.KeyService/Update",
            Method::KeyDelete => "yandex.cloud.iam.v1.KeyService/Delete",
        }
    }

    /// Whether the method changes something (and so is audited).
    pub const fn is_mutation(self) -> bool {
        !matches!(self, Method::KeyGet | Method::KeyList)
    }
}

/// What a call acts on, as authorization sees it: the resource whose access bindings decide,
/// with the folder and cloud it inherits bindings from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// For an authorized key: its service account (keys carry no bindings of their own).
    pub target: ResourceRef,
    pub folder_id: String,
    pub cloud_id: String,
    /// The service account the call concerns: for a key, its owner.
    pub service_account_id: Option<String>,
}

impl Resource {
    /// A service account, or anything it owns (its keys).
    pub fn service_account(account: &ServiceAccount) -> Resource {
        Resource {
            target: ResourceRef::new(ResourceKind::ServiceAccount, account.id.clone()),
            folder_id: account.folder_id.clone(),
            cloud_id: account.cloud_id.clone(),
            service_account_id: Some(account.id.clone()),
        }
    }
}

/// The answer of an [`Authorize`] check: `Ok` to go on, or the refusal (PERMISSION_DENIED, or
/// UNAVAILABLE when the decision cannot be made now).
pub type Decision<'a> = Pin<Box<dyn Future<Output = Result<(), Status>> + Send + 'a>>;

/// Decides whether `principal` may call `method` on `resource`.
pub trait Authorize: Send + Sync {
    fn authorize<'a>(
        &'a self,
        principal: &'a Principal,
        method: Method,
        resource: &'a Resource,
    ) -> Decision<'a>;
}

/// The role id the bootstrap administrator holds on its cloud: the broadest there is (it may
/// also grant owner roles, which `admin` may not).
pub const ADMINISTRATOR_ROLE: &str = "resource-manager.clouds.owner";

/// Allows the bootstrap administrator everything, and a service account what concerns itself
/// (its own keys); refuses everyone else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdministratorOrSelf {
    /// The bootstrap administrator's service account id, if the store has one.
    pub administrator: Option<String>,
}

impl Authorize for AdministratorOrSelf {
    fn authorize<'a>(
        &'a self,
        principal: &'a Principal,
        method: Method,
        resource: &'a Resource,
    ) -> Decision<'a> {
        let caller = principal.service_account_id.as_str();
        let allowed = self.administrator.as_deref() == Some(caller)
            || resource.service_account_id.as_deref() == Some(caller);
        let decision = if allowed {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "service account {} may not call {} on {} {}: only the administrator and the service account itself may",
                quote(caller),
                method.as_str(),
                resource.target.kind,
                quote(&resource.target.id)
            )))
        };
        Box::pin(std::future::ready(decision))
    }
}

/// Longest description of a key (`CreateKeyRequest.description`: length ≤ 256).
pub const MAX_DESCRIPTION_CHARS: usize = 256;
/// Longest id in a request (`key_id`, `service_account_id`: length ≤ 50).
pub const MAX_ID_CHARS: usize = 50;

fn check_id(what: &str, id: &str) -> Result<(), Status> {
    if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
        return Err(Status::invalid_argument(
            "invalid_argument",
            format!("{what} must be 1 to {MAX_ID_CHARS} characters"),
        ));
    }
    Ok(())
}

fn check_description(description: &str) -> Result<(), Status> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Status::invalid_argument(
            "invalid_argument",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(())
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
        let account = match self.store.get_service_account(service_account_id).await {
            Ok(account) => account,
            Err(StoreError::NotFound { .. }) => {
                return Err(Status::not_found(format!(
                    "service account {} not found",
                    quote(service_account_id)
                )));
            }
            Err(other) => return Err(other.into()),
        };
        self.authorizer
            .authorize(principal, method, &Resource::service_account(&account))
            .await?;
        Ok(account)
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
        let account_id = request
            .service_account_id
            .as_deref()
            .unwrap_or(&principal.service_account_id);
        check_id("serviceAccountId", account_id)?;
        check_description(&request.description)?;
        let account = self
            .authorize(principal, Method::KeyCreate, account_id)
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
            &key_message(&key),
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

    /// Keeps the finished operation of a change that has committed. Failing to keep it does not
    /// undo the change: the operation is answered all the same, and the failure logged.
    async fn record_operation(
        &self,
        principal: &Principal,
        resource_id: &str,
        description: &str,
        types: OperationTypes,
        metadata: &Value,
        response: &Value,
    ) -> Result<Operation, Status> {
        let (metadata, result) = operation::finished(types, metadata, Ok(response));
        let new = NewOperation {
            resource_id: resource_id.to_owned(),
            description: description.to_owned(),
            created_by: principal.service_account_id.clone(),
            done: true,
            metadata,
            result: Some(result),
        };
        match self.store.create_operation(&new, self.now).await {
            Ok(written) => Ok(written.item),
            Err(e) => {
                tracing::warn!(error = %crate::report::error_chain(&e), resource_id, "the operation of a committed change was not kept");
                Ok(Operation {
                    id: super::ids::generate(ResourceKind::Operation)
                        .map_err(|e| Status::internal(&e))?,
                    resource_id: new.resource_id,
                    description: new.description,
                    created_by: new.created_by,
                    created_at: self.now,
                    modified_at: self.now,
                    done: true,
                    metadata: new.metadata,
                    result: new.result,
                    version: 1,
                })
            }
        }
    }
}

/// `yandex.cloud.iam.v1.Key` in proto3 JSON (camelCase; `lastUsedAt` is not tracked).
pub fn key_message(key: &AuthorizedKey) -> Value {
    json!({
        "id": key.id,
        "serviceAccountId": key.service_account_id,
        "createdAt": rfc3339(key.created_at),
        "description": key.description,
        "keyAlgorithm": key.key_algorithm.as_str(),
        "publicKey": key.public_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::store::OperationResult;

    fn principal(id: &str) -> Principal {
        Principal {
            service_account_id: id.into(),
            folder_id: "f".into(),
            cloud_id: "c".into(),
            token_jti: None,
        }
    }

    fn resource_of(owner: &str) -> Resource {
        Resource {
            target: ResourceRef::new(ResourceKind::ServiceAccount, owner),
            folder_id: "f".into(),
            cloud_id: "c".into(),
            service_account_id: Some(owner.into()),
        }
    }

    #[tokio::test]
    async fn administrator_or_self_allows_the_administrator_and_the_account_itself() {
        let policy = AdministratorOrSelf {
            administrator: Some("admin".into()),
        };
        let cases = [
            ("administrator on another account", "admin", "sa-1", true),
            ("account on itself", "sa-1", "sa-1", true),
            ("account on another account", "sa-2", "sa-1", false),
        ];
        for (name, caller, owner, allowed) in cases {
            for method in Method::ALL {
                let got = policy
                    .authorize(&principal(caller), method, &resource_of(owner))
                    .await;
                assert_eq!(got.is_ok(), allowed, "{name}, {}", method.as_str());
                if let Err(status) = got {
                    assert_eq!(status.code, super::super::status::Code::PermissionDenied);
                    assert!(
                        status.message.contains(method.as_str()),
                        "{}",
                        status.message
                    );
                }
            }
        }
        let nobody = AdministratorOrSelf::default();
        assert!(
            nobody
                .authorize(&principal("admin"), Method::KeyCreate, &resource_of("sa-1"))
                .await
                .is_err(),
            "no administrator: nobody else"
        );
    }

    #[test]
    fn messages_have_the_proto3_json_shape() {
        let key = AuthorizedKey {
            id: "k".into(),
            service_account_id: "sa".into(),
            description: "d".into(),
            key_algorithm: KeyAlgorithm::Rsa4096,
            public_key: "-----BEGIN PUBLIC KEY-----\n".into(),
            created_at: 0,
            version: 3,
        };
        assert_eq!(
            key_message(&key),
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
        let message = operation::to_json(&operation);
        assert_eq!(message["done"], true);
        assert_eq!(message["createdAt"], "1970-01-01T00:01:00Z");
        assert_eq!(message["response"], json!({}));
        assert!(message.get("error").is_none());
    }
}
