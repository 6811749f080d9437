//! `yandex.cloud.iam.v1.KeyService`: authorized keys, through [`crate::iam::service::Keys`] as
//! `/iam/v1/keys…` does. The private key is in the `Create` answer and nowhere else.

use tonic::{Request, Response};

use crate::app::AppState;
use crate::app::call::keys;
use crate::iam::service::{
    CreateKey, Method, check_key_format, check_key_update_mask, key_algorithm, key_message,
    key_page,
};
use crate::iam::status::Status;

use super::convert::{FromJson, messages, operation};
use super::method::{authenticated, update_mask};
use super::proto::yandex::cloud::iam::v1::key_service_server::KeyService;
use super::proto::yandex::cloud::iam::v1::{
    CreateKeyRequest, CreateKeyResponse, DeleteKeyRequest, GetKeyRequest, Key, KeyFormat,
    ListKeysRequest, ListKeysResponse, UpdateKeyRequest, key,
};
use super::proto::yandex::cloud::operation::Operation;

pub struct Keys(pub AppState);

/// `KeyFormat` by number, checked as REST checks it by name.
fn check_format(format: i32) -> Result<(), Status> {
    let name = KeyFormat::try_from(format)
        .map_or_else(|_| format.to_string(), |f| f.as_str_name().to_owned());
    check_key_format(Some(&name))
}

#[tonic::async_trait]
impl KeyService for Keys {
    async fn get(&self, request: Request<GetKeyRequest>) -> Result<Response<Key>, tonic::Status> {
        let resource = Some(format!("authorized_key:{}", request.get_ref().key_id));
        authenticated(
            &self.0,
            request,
            Method::KeyGet,
            resource,
            async |_, principal, request| {
                check_format(request.format)?;
                let key = keys(&self.0)?.get(principal, &request.key_id).await?;
                Ok(Key::from_message(&key_message(&key)))
            },
        )
        .await
    }

    async fn list(
        &self,
        request: Request<ListKeysRequest>,
    ) -> Result<Response<ListKeysResponse>, tonic::Status> {
        authenticated(
            &self.0,
            request,
            Method::KeyList,
            None,
            async |_, principal, request| {
                check_format(request.format)?;
                let page = key_page(request.page_size, &request.page_token)?;
                let account = Some(request.service_account_id.as_str()).filter(|id| !id.is_empty());
                let listed = keys(&self.0)?.list(principal, account, &page).await?;
                let (keys, next_page_token) = messages::<Key, _, _>(&listed, key_message);
                Ok(ListKeysResponse {
                    keys,
                    next_page_token,
                })
            },
        )
        .await
    }

    async fn create(
        &self,
        request: Request<CreateKeyRequest>,
    ) -> Result<Response<CreateKeyResponse>, tonic::Status> {
        authenticated(
            &self.0,
            request,
            Method::KeyCreate,
            None,
            async |call, principal, request| {
                let account = Some(request.service_account_id)
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| principal.service_account_id.clone());
                call.resource = Some(format!("service_account:{account}"));
                check_format(request.format)?;
                let algorithm = key_algorithm(Some(
                    key::Algorithm::try_from(request.key_algorithm)
                        .map_or_else(
                            |_| request.key_algorithm.to_string(),
                            |a| a.as_str_name().to_owned(),
                        )
                        .as_str(),
                ))?;
                let created = keys(&self.0)?
                    .create(
                        principal,
                        CreateKey {
                            service_account_id: Some(account),
                            description: request.description,
                            algorithm,
                        },
                    )
                    .await?;
                call.resource = Some(format!("authorized_key:{}", created.key.id));
                Ok(CreateKeyResponse {
                    key: Some(Key::from_message(&key_message(&created.key))),
                    private_key: created.private_key.private_key_pem().to_owned(),
                })
            },
        )
        .await
    }

    async fn update(
        &self,
        request: Request<UpdateKeyRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("authorized_key:{}", request.get_ref().key_id));
        authenticated(
            &self.0,
            request,
            Method::KeyUpdate,
            resource,
            async |_, principal, request| {
                check_key_update_mask(update_mask(request.update_mask).as_deref())?;
                let op = keys(&self.0)?
                    .update(principal, &request.key_id, request.description)
                    .await?;
                operation(&op)
            },
        )
        .await
    }

    async fn delete(
        &self,
        request: Request<DeleteKeyRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("authorized_key:{}", request.get_ref().key_id));
        authenticated(
            &self.0,
            request,
            Method::KeyDelete,
            resource,
            async |_, principal, request| {
                operation(&keys(&self.0)?.delete(principal, &request.key_id).await?)
            },
        )
        .await
    }
}
