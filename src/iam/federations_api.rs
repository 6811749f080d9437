//! `FederationService` (OIDC workload identity federations) and `FederatedCredentialService`
//! over the followed store, independent of the transport (the REST routes are
//! [`crate::http::iam_federations`]).
//!
//! Every method resolves the resource it names (a missing one is NOT_FOUND), passes the one
//! authorization check of its [`Method`] on [`Method::targets`], and only then changes
//! anything. A mutation answers once this replica's exchange and authorization index see it
//! ([`Context::applied`]): a federated credential deleted here cannot be exchanged here a
//! moment later.
//!
//! | rule | from |
//! |---|---|
//! | `issuer` and `jwks_url` are absolute `https` URLs (plain `http` to a loopback host only with `[iam] allow_http_to_loopback`) | [`validate::issuer_url`] |
//! | `issuer` is fixed at creation: an update mask naming it is INVALID_ARGUMENT | `UpdateFederationRequest` has no `issuer` |
//! | names are unique in the folder (ALREADY_EXISTS) | the store |
//! | audiences 1–100 of 1–255 characters; subjects 1–1000 characters | [`validate`] |

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::exchange::quote;
use crate::time::rfc3339;

use super::authn::Principal;
use super::authz::Resource;
use super::operation::{self, types};
use super::paging;
use super::quota::Quota;
use super::service::{Context, Finished, Method, finished_operation};
use super::status::Status;
use super::store::{
    FederatedCredential, Federation, FederationUpdate, Labels, NewFederatedCredential,
    NewFederation, Operation, Page, PageRequest, StoreError, Written,
};
use super::validate;

/// `CreateFederationRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateFederation {
    pub folder_id: String,
    pub name: String,
    pub description: String,
    pub disabled: bool,
    pub audiences: Vec<String>,
    pub issuer: String,
    pub jwks_url: String,
    pub labels: Labels,
}

/// `UpdateFederationRequest`: the fields sent (`None`: not in the request) and the update
/// mask. Without a mask, the fields sent are the fields changed; with one, exactly the fields
/// it names are changed, to the value sent or the field's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateFederation {
    pub update_mask: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub disabled: Option<bool>,
    pub audiences: Option<Vec<String>>,
    pub jwks_url: Option<String>,
    pub labels: Option<Labels>,
}

/// The fields of a federation an update may change, by proto name.
const UPDATABLE: paging::Updatable = &[
    "name",
    "description",
    "disabled",
    "audiences",
    "jwks_url",
    "labels",
];

/// `CreateFederatedCredentialRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateFederatedCredential {
    pub service_account_id: String,
    pub federation_id: String,
    pub external_subject_id: String,
}

/// The page a list call asks for: its size (0–1000) and the token of the previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub size: i64,
    pub token: String,
}

impl ListPage {
    /// The store's page request, once size and token are checked.
    pub fn request(&self) -> Result<PageRequest, Status> {
        let size = validate::page(self.size, &self.token)?;
        Ok(PageRequest {
            size: u32::try_from(size).unwrap_or(u32::MAX),
            token: paging::after(&self.token)?,
        })
    }
}

/// A page of the store with its continuation as an opaque token ([`paging::page_token`]).
pub fn opaque<T>(page: Page<T>) -> Page<T> {
    Page {
        items: page.items,
        next_page_token: page.next_page_token.as_deref().map(paging::page_token),
    }
}

/// `FederationService` and `FederatedCredentialService` in `ctx`. `allow_http_to_loopback`
/// is the server setting that lets federations fetch keys from a plain-`http` loopback host.
pub struct Federations<'a> {
    pub ctx: Context<'a>,
    pub allow_http_to_loopback: bool,
}

fn not_found(what: &str, id: &str) -> Status {
    Status::not_found(format!("{what} {} not found", quote(id)))
}

impl Federations<'_> {
    async fn federation(&self, id: &str) -> Result<Federation, Status> {
        validate::id("federation_id", id)?;
        match self.ctx.store().get_federation(id).await {
            Ok(federation) => Ok(federation),
            Err(StoreError::NotFound { .. }) => {
                let configured = self.ctx.live.configured();
                match configured.configured_federation(id) {
                    Some(federation) => Ok(configured_federation(federation)),
                    None => Err(not_found("federation", id)),
                }
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn credential(&self, id: &str) -> Result<FederatedCredential, Status> {
        validate::id("federated_credential_id", id)?;
        match self.ctx.store().get_federated_credential(id).await {
            Ok(credential) => Ok(credential),
            Err(StoreError::NotFound { .. }) => {
                match self.ctx.live.configured().configured_credential(id) {
                    Some(c) => Ok(FederatedCredential {
                        id: c.id,
                        service_account_id: c.service_account_id,
                        federation_id: c.federation_id,
                        external_subject_id: c.external_subject_id,
                        created_at: 0,
                        version: 0,
                    }),
                    None => Err(not_found("federated credential", id)),
                }
            }
            Err(other) => Err(other.into()),
        }
    }

    fn check_urls(&self, field: &str, value: &str) -> Result<(), Status> {
        validate::issuer_url(field, value, self.allow_http_to_loopback)
    }

    /// `FederationService.Get`.
    pub async fn get(&self, principal: &Principal, id: &str) -> Result<Federation, Status> {
        let federation = self.federation(id).await?;
        self.ctx.authorize(
            principal,
            Method::FederationGet,
            &[Resource::federation(&federation.id)],
        )?;
        Ok(federation)
    }

    /// `FederationService.List`: the federations of a folder.
    pub async fn list(
        &self,
        principal: &Principal,
        folder_id: &str,
        page: &ListPage,
    ) -> Result<Page<Federation>, Status> {
        validate::id("folder_id", folder_id)?;
        let page = page.request()?;
        self.ctx.authorize(
            principal,
            Method::FederationList,
            &[Resource::folder(folder_id)],
        )?;
        Ok(opaque(
            self.ctx.store().list_federations(folder_id, &page).await?,
        ))
    }

    /// `FederationService.Create`. Answers the finished operation, whose response is the
    /// federation.
    pub async fn create(
        &self,
        principal: &Principal,
        request: CreateFederation,
    ) -> Result<Operation, Status> {
        validate::id("folder_id", &request.folder_id)?;
        validate::name("name", &request.name, false)?;
        validate::description(&request.description)?;
        validate::labels(&request.labels)?;
        validate::audiences(&request.audiences)?;
        self.check_urls("issuer", &request.issuer)?;
        self.check_urls("jwks_url", &request.jwks_url)?;
        self.ctx.authorize(
            principal,
            Method::FederationCreate,
            &[Resource::folder(&request.folder_id)],
        )?;
        let cloud = match self.ctx.store().get_folder(&request.folder_id).await {
            Ok(folder) => folder.cloud_id,
            Err(StoreError::NotFound { .. }) => {
                return Err(not_found("folder", &request.folder_id));
            }
            Err(other) => return Err(other.into()),
        };
        self.ctx.quota(Quota::Federations, &cloud, 1).await?;
        let written = self
            .ctx
            .store()
            .create_federation(
                &NewFederation {
                    folder_id: request.folder_id,
                    name: request.name,
                    description: request.description,
                    enabled: !request.disabled,
                    audiences: request.audiences,
                    issuer: request.issuer,
                    jwks_url: request.jwks_url,
                    labels: request.labels,
                },
                self.ctx.now,
            )
            .await?;
        let federation = self.ctx.applied(written).await;
        self.ctx
            .finished(
                principal,
                Finished {
                    resource_id: &federation.id,
                    description: "Create federation",
                    types: types::FEDERATION_CREATE,
                    metadata: &json!({"federationId": federation.id}),
                    response: &operation::message(&federation_message(&federation)),
                },
            )
            .await
    }

    /// `FederationService.Update`. The issuer cannot change.
    pub async fn update(
        &self,
        principal: &Principal,
        id: &str,
        request: UpdateFederation,
    ) -> Result<Operation, Status> {
        let masked = match request.update_mask.as_deref() {
            Some(mask) if !mask.trim().is_empty() => {
                if mask.split(',').map(str::trim).any(|p| p == "issuer") {
                    return Err(Status::invalid_argument(
                        validate::REASON,
                        "issuer cannot be updated: it is fixed when the federation is created",
                    ));
                }
                Some(paging::update_mask(mask, UPDATABLE)?)
            }
            _ => None,
        };
        let federation = self.federation(id).await?;
        let changes = |field: &str, sent: bool| match &masked {
            Some(fields) => fields.contains(&field),
            None => sent,
        };
        let mut update = FederationUpdate {
            name: federation.name.clone(),
            description: federation.description.clone(),
            enabled: federation.enabled,
            audiences: federation.audiences.clone(),
            jwks_url: federation.jwks_url.clone(),
            labels: federation.labels.clone(),
        };
        if changes("name", request.name.is_some()) {
            update.name = request.name.unwrap_or_default();
            validate::name("name", &update.name, false)?;
        }
        if changes("description", request.description.is_some()) {
            update.description = request.description.unwrap_or_default();
            validate::description(&update.description)?;
        }
        if changes("disabled", request.disabled.is_some()) {
            update.enabled = !request.disabled.unwrap_or_default();
        }
        if changes("audiences", request.audiences.is_some()) {
            update.audiences = request.audiences.unwrap_or_default();
            validate::audiences(&update.audiences)?;
        }
        if changes("jwks_url", request.jwks_url.is_some()) {
            update.jwks_url = request.jwks_url.unwrap_or_default();
            self.check_urls("jwks_url", &update.jwks_url)?;
        }
        if changes("labels", request.labels.is_some()) {
            update.labels = request.labels.unwrap_or_default();
            validate::labels(&update.labels)?;
        }
        self.ctx.authorize(
            principal,
            Method::FederationUpdate,
            &[Resource::federation(&federation.id)],
        )?;
        self.ctx.writable("federation", &federation.id)?;
        let written = self
            .ctx
            .store()
            .update_federation(&federation.id, federation.version, &update, self.ctx.now)
            .await?;
        let federation = self.ctx.applied(written).await;
        self.ctx
            .finished(
                principal,
                Finished {
                    resource_id: &federation.id,
                    description: "Update federation",
                    types: types::FEDERATION_UPDATE,
                    metadata: &json!({"federationId": federation.id}),
                    response: &operation::message(&federation_message(&federation)),
                },
            )
            .await
    }

    /// `FederationService.Delete`, with the federation's credentials and bindings.
    pub async fn delete(&self, principal: &Principal, id: &str) -> Result<Operation, Status> {
        let federation = self.federation(id).await?;
        self.ctx.authorize(
            principal,
            Method::FederationDelete,
            &[Resource::federation(&federation.id)],
        )?;
        self.ctx.writable("federation", &federation.id)?;
        let seq = self
            .ctx
            .store()
            .delete_federation(&federation.id, Some(federation.version), self.ctx.now)
            .await?;
        self.ctx.applied(Written { item: (), seq }).await;
        self.ctx
            .finished(
                principal,
                Finished {
                    resource_id: &federation.id,
                    description: "Delete federation",
                    types: types::FEDERATION_DELETE,
                    metadata: &json!({"federationId": federation.id}),
                    response: &json!({}),
                },
            )
            .await
    }

    /// `FederatedCredentialService.Get`: authorized on the credential's service account.
    pub async fn get_credential(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<FederatedCredential, Status> {
        let credential = self.credential(id).await?;
        self.ctx.authorize(
            principal,
            Method::FederatedCredentialGet,
            &[Resource::service_account(&credential.service_account_id)],
        )?;
        Ok(credential)
    }

    /// `FederatedCredentialService.List`: the credentials of a service account.
    pub async fn list_credentials(
        &self,
        principal: &Principal,
        service_account_id: &str,
        page: &ListPage,
    ) -> Result<Page<FederatedCredential>, Status> {
        validate::id("service_account_id", service_account_id)?;
        let page = page.request()?;
        self.ctx.authorize(
            principal,
            Method::FederatedCredentialList,
            &[Resource::service_account(service_account_id)],
        )?;
        Ok(opaque(
            self.ctx
                .store()
                .list_federated_credentials(service_account_id, &page)
                .await?,
        ))
    }

    /// `FederatedCredentialService.Create`: needs the credential permission on the service
    /// account and the use of the federation.
    pub async fn create_credential(
        &self,
        principal: &Principal,
        request: CreateFederatedCredential,
    ) -> Result<Operation, Status> {
        validate::id("service_account_id", &request.service_account_id)?;
        validate::id("federation_id", &request.federation_id)?;
        validate::external_subject(&request.external_subject_id)?;
        self.ctx
            .writable("service account", &request.service_account_id)?;
        self.ctx.writable("federation", &request.federation_id)?;
        let account = match self
            .ctx
            .store()
            .get_service_account(&request.service_account_id)
            .await
        {
            Ok(account) => account,
            Err(StoreError::NotFound { .. }) => {
                return Err(not_found("service account", &request.service_account_id));
            }
            Err(other) => return Err(other.into()),
        };
        let federation = self.federation(&request.federation_id).await?;
        self.ctx.authorize(
            principal,
            Method::FederatedCredentialCreate,
            &[
                Resource::service_account(&account.id),
                Resource::federation(&federation.id),
            ],
        )?;
        self.ctx
            .quota(Quota::FederatedCredentials, &account.cloud_id, 1)
            .await?;
        // The operation is kept in the credential's own transaction.
        let (written, operation) = self
            .ctx
            .store()
            .create_federated_credential_with(
                &NewFederatedCredential {
                    service_account_id: account.id,
                    federation_id: federation.id,
                    external_subject_id: request.external_subject_id,
                },
                self.ctx.now,
                |credential| {
                    finished_operation(
                        principal,
                        Finished {
                            resource_id: &credential.id,
                            description: "Create federated credential",
                            types: types::FEDERATED_CREDENTIAL_CREATE,
                            metadata: &json!({"federatedCredentialId": credential.id}),
                            response: &operation::message(&credential_message(credential)),
                        },
                    )
                },
            )
            .await?;
        self.ctx.applied(written).await;
        Ok(operation)
    }

    /// `FederatedCredentialService.Delete`. Once it answers, this replica's exchange no
    /// longer accepts the credential.
    pub async fn delete_credential(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Operation, Status> {
        let credential = self.credential(id).await?;
        self.ctx.authorize(
            principal,
            Method::FederatedCredentialDelete,
            &[Resource::service_account(&credential.service_account_id)],
        )?;
        self.ctx.writable("federated credential", &credential.id)?;
        let seq = self
            .ctx
            .store()
            .delete_federated_credential(&credential.id, Some(credential.version), self.ctx.now)
            .await?;
        self.ctx.applied(Written { item: (), seq }).await;
        self.ctx
            .finished(
                principal,
                Finished {
                    resource_id: &credential.id,
                    description: "Delete federated credential",
                    types: types::FEDERATED_CREDENTIAL_DELETE,
                    metadata: &json!({"federatedCredentialId": credential.id}),
                    response: &json!({}),
                },
            )
            .await
    }
}

/// `yandex.cloud.iam.v1.workload.oidc.Federation` in proto3 JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Federation)]
pub struct FederationMessage {
    pub id: String,
    pub name: String,
    pub folder_id: String,
    pub description: String,
    pub enabled: bool,
    pub audiences: Vec<String>,
    pub issuer: String,
    pub jwks_url: String,
    pub labels: Labels,
    /// RFC 3339, UTC.
    pub created_at: String,
}

pub fn federation_message(federation: &Federation) -> FederationMessage {
    FederationMessage {
        id: federation.id.clone(),
        name: federation.name.clone(),
        folder_id: federation.folder_id.clone(),
        description: federation.description.clone(),
        enabled: federation.enabled,
        audiences: federation.audiences.clone(),
        issuer: federation.issuer.clone(),
        jwks_url: federation.jwks_url.clone(),
        labels: federation.labels.clone(),
        created_at: rfc3339(federation.created_at),
    }
}

/// `yandex.cloud.iam.v1.workload.FederatedCredential` in proto3 JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = FederatedCredential)]
pub struct FederatedCredentialMessage {
    pub id: String,
    pub service_account_id: String,
    pub federation_id: String,
    pub external_subject_id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

pub fn credential_message(credential: &FederatedCredential) -> FederatedCredentialMessage {
    FederatedCredentialMessage {
        id: credential.id.clone(),
        service_account_id: credential.service_account_id.clone(),
        federation_id: credential.federation_id.clone(),
        external_subject_id: credential.external_subject_id.clone(),
        created_at: rfc3339(credential.created_at),
    }
}

/// A configuration file's federation in the API's shape: no description, labels or creation
/// time; its keys' URL when it names one.
fn configured_federation(federation: &crate::exchange::directory::Federation) -> Federation {
    let jwks_url = match &federation.key_source.kind {
        crate::exchange::directory::KeySourceKind::JwksUrl(url) => url.to_string(),
        _ => String::new(),
    };
    Federation {
        id: federation.id.clone(),
        folder_id: federation.folder_id.clone(),
        name: federation.name.clone(),
        description: String::new(),
        enabled: federation.enabled,
        audiences: federation.audiences.clone(),
        issuer: federation.issuer.clone(),
        jwks_url,
        labels: Default::default(),
        created_at: 0,
        version: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_proto3_json_shape() {
        let federation = Federation {
            id: "f".into(),
            folder_id: "b1g".into(),
            name: "ci".into(),
            description: String::new(),
            enabled: true,
            audiences: vec!["a".into()],
            issuer: "https://issuer".into(),
            jwks_url: "https://issuer/jwks".into(),
            labels: Labels::new(),
            created_at: 0,
            version: 1,
        };
        assert_eq!(
            operation::message(&federation_message(&federation)),
            json!({"id": "f", "name": "ci", "folderId": "b1g", "description": "",
                   "enabled": true, "audiences": ["a"], "issuer": "https://issuer",
                   "jwksUrl": "https://issuer/jwks", "labels": {},
                   "createdAt": "1970-01-01T00:00:00Z"})
        );
        let credential = FederatedCredential {
            id: "c".into(),
            service_account_id: "sa".into(),
            federation_id: "f".into(),
            external_subject_id: "repo:x".into(),
            created_at: 60,
            version: 1,
        };
        assert_eq!(
            operation::message(&credential_message(&credential)),
            json!({"id": "c", "serviceAccountId": "sa", "federationId": "f",
                   "externalSubjectId": "repo:x", "createdAt": "1970-01-01T00:01:00Z"})
        );
    }

    #[test]
    fn list_pages_are_checked_and_their_tokens_are_opaque() {
        let first = ListPage::default().request().unwrap();
        assert_eq!((first.effective_size(), first.token), (100, None));
        let token = paging::page_token("aje123");
        let next = ListPage {
            size: 5,
            token: token.clone(),
        }
        .request()
        .unwrap();
        assert_eq!(next, PageRequest::after(5, "aje123"));
        for bad in [
            ListPage {
                size: 1001,
                token: String::new(),
            },
            ListPage {
                size: -1,
                token: String::new(),
            },
            ListPage {
                size: 0,
                token: "aje123".into(),
            },
        ] {
            assert!(bad.request().is_err(), "{bad:?}");
        }
        let page = opaque(Page {
            items: vec![1],
            next_page_token: Some("aje123".into()),
        });
        assert_eq!(page.next_page_token, Some(token));
    }
}
