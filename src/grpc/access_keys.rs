//! `yandex.cloud.iam.v1.awscompatibility.AccessKeyService`: static access keys, through
//! [`crate::iam::access_keys`] as `/iam/aws-compatibility/v1/accessKeys…` does. The secret is
//! in the `Create` answer and nowhere else.

use tonic::{Request, Response};

use crate::app::AppState;
use crate::app::call::access_keys;
use crate::iam::access_keys::{CreateAccessKey, access_key_message};
use crate::iam::federations_api::ListPage;
use crate::iam::service::{Method, check_key_update_mask};

use super::convert::{FromJson, messages, operation};
use super::method::{authenticated, update_mask};
use super::proto::yandex::cloud::iam::v1::awscompatibility::access_key_service_server::AccessKeyService;
use super::proto::yandex::cloud::iam::v1::awscompatibility::{
    AccessKey, CreateAccessKeyRequest, CreateAccessKeyResponse, DeleteAccessKeyRequest,
    GetAccessKeyRequest, ListAccessKeysRequest, ListAccessKeysResponse, UpdateAccessKeyRequest,
};
use super::proto::yandex::cloud::operation::Operation;

pub struct AccessKeys(pub AppState);

#[tonic::async_trait]
impl AccessKeyService for AccessKeys {
    async fn get(
        &self,
        request: Request<GetAccessKeyRequest>,
    ) -> Result<Response<AccessKey>, tonic::Status> {
        let resource = Some(format!("access_key:{}", request.get_ref().access_key_id));
        authenticated(
            &self.0,
            request,
            Method::AccessKeyGet,
            resource,
            async |_, principal, request| {
                let key = access_keys(&self.0)?
                    .get(principal, &request.access_key_id)
                    .await?;
                Ok(AccessKey::from_message(&access_key_message(&key)))
            },
        )
        .await
    }

    async fn list(
        &self,
        request: Request<ListAccessKeysRequest>,
    ) -> Result<Response<ListAccessKeysResponse>, tonic::Status> {
        authenticated(
            &self.0,
            request,
            Method::AccessKeyList,
            None,
            async |_, principal, request| {
                let page = ListPage {
                    size: request.page_size,
                    token: request.page_token,
                };
                let account = Some(request.service_account_id.as_str()).filter(|id| !id.is_empty());
                let listed = access_keys(&self.0)?
                    .list(principal, account, &page)
                    .await?;
                let (access_keys, next_page_token) =
                    messages::<AccessKey, _, _>(&listed, access_key_message);
                Ok(ListAccessKeysResponse {
                    access_keys,
                    next_page_token,
                })
            },
        )
        .await
    }

    async fn create(
        &self,
        request: Request<CreateAccessKeyRequest>,
    ) -> Result<Response<CreateAccessKeyResponse>, tonic::Status> {
        authenticated(
            &self.0,
            request,
            Method::AccessKeyCreate,
            None,
            async |call, principal, request| {
                let account = Some(request.service_account_id)
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| principal.service_account_id.clone());
                call.resource = Some(format!("service_account:{account}"));
                let created = access_keys(&self.0)?
                    .create(
                        principal,
                        CreateAccessKey {
                            service_account_id: Some(account),
                            description: request.description,
                        },
                    )
                    .await?;
                call.resource = Some(format!("access_key:{}", created.key.id));
                Ok(CreateAccessKeyResponse {
                    access_key: Some(AccessKey::from_message(&access_key_message(&created.key))),
                    secret: created.secret_text().to_owned(),
                })
            },
        )
        .await
    }

    async fn update(
        &self,
        request: Request<UpdateAccessKeyRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("access_key:{}", request.get_ref().access_key_id));
        authenticated(
            &self.0,
            request,
            Method::AccessKeyUpdate,
            resource,
            async |_, principal, request| {
                check_key_update_mask(update_mask(request.update_mask).as_deref())?;
                let op = access_keys(&self.0)?
                    .update(principal, &request.access_key_id, request.description)
                    .await?;
                operation(&op)
            },
        )
        .await
    }

    async fn delete(
        &self,
        request: Request<DeleteAccessKeyRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("access_key:{}", request.get_ref().access_key_id));
        authenticated(
            &self.0,
            request,
            Method::AccessKeyDelete,
            resource,
            async |_, principal, request| {
                operation(
                    &access_keys(&self.0)?
                        .delete(principal, &request.access_key_id)
                        .await?,
                )
            },
        )
        .await
    }
}
