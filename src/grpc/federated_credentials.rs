//! `yandex.cloud.iam.v1.workload.FederatedCredentialService`, through
//! [`crate::iam::federations_api`] as `/iam/v1/workload/federatedCredentials…` does.

use tonic::{Request, Response};

use crate::app::AppState;
use crate::app::call::federations;
use crate::iam::federations_api::{CreateFederatedCredential, ListPage, credential_message};
use crate::iam::service::Method;

use super::convert::{FromJson, messages, operation};
use super::method::authenticated;
use super::proto::yandex::cloud::iam::v1::workload::federated_credential_service_server::FederatedCredentialService;
use super::proto::yandex::cloud::iam::v1::workload::{
    CreateFederatedCredentialRequest, DeleteFederatedCredentialRequest, FederatedCredential,
    GetFederatedCredentialRequest, ListFederatedCredentialsRequest,
    ListFederatedCredentialsResponse,
};
use super::proto::yandex::cloud::operation::Operation;

pub struct FederatedCredentials(pub AppState);

#[tonic::async_trait]
impl FederatedCredentialService for FederatedCredentials {
    async fn get(
        &self,
        request: Request<GetFederatedCredentialRequest>,
    ) -> Result<Response<FederatedCredential>, tonic::Status> {
        let id = &request.get_ref().federated_credential_id;
        let resource = Some(format!("federated_credential:{id}"));
        authenticated(
            &self.0,
            request,
            Method::FederatedCredentialGet,
            resource,
            async |_, principal, request| {
                let credential = federations(&self.0)?
                    .get_credential(principal, &request.federated_credential_id)
                    .await?;
                Ok(FederatedCredential::from_message(&credential_message(
                    &credential,
                )))
            },
        )
        .await
    }

    async fn list(
        &self,
        request: Request<ListFederatedCredentialsRequest>,
    ) -> Result<Response<ListFederatedCredentialsResponse>, tonic::Status> {
        let resource = Some(format!(
            "service_account:{}",
            request.get_ref().service_account_id
        ));
        authenticated(
            &self.0,
            request,
            Method::FederatedCredentialList,
            resource,
            async |_, principal, request| {
                let page = ListPage {
                    size: request.page_size,
                    token: request.page_token,
                };
                let listed = federations(&self.0)?
                    .list_credentials(principal, &request.service_account_id, &page)
                    .await?;
                let (federated_credentials, next_page_token) =
                    messages::<FederatedCredential, _, _>(&listed, credential_message);
                Ok(ListFederatedCredentialsResponse {
                    federated_credentials,
                    next_page_token,
                })
            },
        )
        .await
    }

    async fn create(
        &self,
        request: Request<CreateFederatedCredentialRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!(
            "service_account:{}",
            request.get_ref().service_account_id
        ));
        authenticated(
            &self.0,
            request,
            Method::FederatedCredentialCreate,
            resource,
            async |call, principal, request| {
                let op = federations(&self.0)?
                    .create_credential(
                        principal,
                        CreateFederatedCredential {
                            service_account_id: request.service_account_id,
                            federation_id: request.federation_id,
                            external_subject_id: request.external_subject_id,
                        },
                    )
                    .await?;
                call.resource = Some(format!("federated_credential:{}", op.resource_id));
                operation(&op)
            },
        )
        .await
    }

    async fn delete(
        &self,
        request: Request<DeleteFederatedCredentialRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let id = &request.get_ref().federated_credential_id;
        let resource = Some(format!("federated_credential:{id}"));
        authenticated(
            &self.0,
            request,
            Method::FederatedCredentialDelete,
            resource,
            async |_, principal, request| {
                operation(
                    &federations(&self.0)?
                        .delete_credential(principal, &request.federated_credential_id)
                        .await?,
                )
            },
        )
        .await
    }
}
