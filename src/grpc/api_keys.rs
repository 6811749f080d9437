//! `yandex.cloud.iam.v1.ApiKeyService`: API keys of service accounts, through
//! [`crate::iam::api_keys`] as `/iam/v1/apiKeys…` does. The secret is in the `Create` answer and
//! nowhere else.

use prost_types::Timestamp;
use tonic::{Request, Response};

use crate::app::AppState;
use crate::app::call::api_keys;
use crate::iam::api_keys::{CreateApiKey, ExpiresAt, UpdateApiKey, api_key_message};
use crate::iam::federations_api::ListPage;
use crate::iam::service::Method;

use super::convert::{FromJson, messages, operation};
use super::method::{authenticated, update_mask};
use super::proto::yandex::cloud::iam::v1::api_key_service_server::ApiKeyService;
use super::proto::yandex::cloud::iam::v1::{
    ApiKey, CreateApiKeyRequest, CreateApiKeyResponse, DeleteApiKeyRequest, GetApiKeyRequest,
    ListApiKeyScopesRequest, ListApiKeyScopesResponse, ListApiKeysRequest, ListApiKeysResponse,
    UpdateApiKeyRequest,
};
use super::proto::yandex::cloud::operation::Operation;

pub struct ApiKeys(pub AppState);

fn expires_at(sent: Option<Timestamp>) -> Option<ExpiresAt> {
    sent.map(|t| ExpiresAt {
        seconds: t.seconds,
        nanos: t.nanos,
    })
}

#[tonic::async_trait]
impl ApiKeyService for ApiKeys {
    async fn get(
        &self,
        request: Request<GetApiKeyRequest>,
    ) -> Result<Response<ApiKey>, tonic::Status> {
        let resource = Some(format!("api_key:{}", request.get_ref().api_key_id));
        authenticated(
            &self.0,
            request,
            Method::ApiKeyGet,
            resource,
            async |_, principal, request| {
                let key = api_keys(&self.0)?
                    .get(principal, &request.api_key_id)
                    .await?;
                Ok(ApiKey::from_message(&api_key_message(&key)))
            },
        )
        .await
    }

    async fn list(
        &self,
        request: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, tonic::Status> {
        authenticated(
            &self.0,
            request,
            Method::ApiKeyList,
            None,
            async |call, principal, request| {
                let account = Some(request.service_account_id).filter(|id| !id.is_empty());
                call.resource = Some(format!(
                    "service_account:{}",
                    account.as_deref().unwrap_or(&principal.service_account_id)
                ));
                let page = ListPage {
                    size: request.page_size,
                    token: request.page_token,
                };
                let listed = api_keys(&self.0)?
                    .list(principal, account.as_deref(), &page)
                    .await?;
                let (api_keys, next_page_token) =
                    messages::<ApiKey, _, _>(&listed, api_key_message);
                Ok(ListApiKeysResponse {
                    api_keys,
                    next_page_token,
                })
            },
        )
        .await
    }

    async fn create(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, tonic::Status> {
        authenticated(
            &self.0,
            request,
            Method::ApiKeyCreate,
            None,
            async |call, principal, request| {
                let account = Some(request.service_account_id)
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| principal.service_account_id.clone());
                call.resource = Some(format!("service_account:{account}"));
                let create = CreateApiKey {
                    service_account_id: Some(account),
                    description: request.description,
                    scope: Some(request.scope).filter(|s| !s.is_empty()),
                    scopes: request.scopes,
                    expires_at: expires_at(request.expires_at),
                };
                let created = api_keys(&self.0)?.create(principal, create).await?;
                call.resource = Some(format!("api_key:{}", created.key.id));
                Ok(CreateApiKeyResponse {
                    api_key: Some(ApiKey::from_message(&api_key_message(&created.key))),
                    secret: created.secret.expose().to_owned(),
                })
            },
        )
        .await
    }

    /// With an `update_mask`, the fields it names take the request's values (an absent
    /// `expires_at`: the key never expires); without one, the fields with a value other than
    /// the proto3 default change.
    async fn update(
        &self,
        request: Request<UpdateApiKeyRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("api_key:{}", request.get_ref().api_key_id));
        authenticated(
            &self.0,
            request,
            Method::ApiKeyUpdate,
            resource,
            async |_, principal, request| {
                let update_mask = update_mask(request.update_mask);
                let sent = |given: bool| update_mask.is_some() || given;
                let update = UpdateApiKey {
                    description: sent(!request.description.is_empty())
                        .then_some(request.description),
                    scopes: sent(!request.scopes.is_empty()).then_some(request.scopes),
                    expires_at: expires_at(request.expires_at),
                    update_mask,
                };
                let op = api_keys(&self.0)?
                    .update(principal, &request.api_key_id, update)
                    .await?;
                operation(&op)
            },
        )
        .await
    }

    async fn delete(
        &self,
        request: Request<DeleteApiKeyRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("api_key:{}", request.get_ref().api_key_id));
        authenticated(
            &self.0,
            request,
            Method::ApiKeyDelete,
            resource,
            async |_, principal, request| {
                let op = api_keys(&self.0)?
                    .delete(principal, &request.api_key_id)
                    .await?;
                operation(&op)
            },
        )
        .await
    }

    async fn list_scopes(
        &self,
        request: Request<ListApiKeyScopesRequest>,
    ) -> Result<Response<ListApiKeyScopesResponse>, tonic::Status> {
        authenticated(
            &self.0,
            request,
            Method::ApiKeyListScopes,
            None,
            async |_, principal, request| {
                let page = ListPage {
                    size: request.page_size,
                    token: request.page_token,
                };
                let listed = api_keys(&self.0)?.list_scopes(principal, &page)?;
                Ok(ListApiKeyScopesResponse {
                    scopes: listed.items,
                    next_page_token: listed.next_page_token.unwrap_or_default(),
                })
            },
        )
        .await
    }
}
