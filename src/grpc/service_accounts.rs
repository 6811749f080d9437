//! `yandex.cloud.iam.v1.ServiceAccountService`, through [`crate::iam::hierarchy_api`] as
//! `/iam/v1/serviceAccounts…` does, with the access-binding methods of [`super::bindings`].

use tonic::{Request, Response};

use crate::app::AppState;
use crate::iam::ResourceKind;
use crate::iam::hierarchy_api::{Attributes, ListRequest, Suspension, service_account_message};
use crate::iam::service::Method;

use super::bindings::access_binding_methods;
use super::convert::{FromJson, messages, operation};
use super::method::{authenticated, hierarchy, hierarchy_update, unsupported};
use super::proto::yandex::cloud::iam::v1::service_account_service_server::ServiceAccountService;
use super::proto::yandex::cloud::iam::v1::{
    CreateServiceAccountRequest, DeleteServiceAccountRequest, GetServiceAccountRequest,
    ListServiceAccountsRequest, ListServiceAccountsResponse, ReactivateServiceAccountRequest,
    ServiceAccount, SuspendServiceAccountRequest, UpdateServiceAccountRequest,
};
use super::proto::yandex::cloud::operation::Operation;

pub struct ServiceAccounts(pub AppState);

#[tonic::async_trait]
impl ServiceAccountService for ServiceAccounts {
    async fn get(
        &self,
        request: Request<GetServiceAccountRequest>,
    ) -> Result<Response<ServiceAccount>, tonic::Status> {
        let resource = Some(format!(
            "service_account:{}",
            request.get_ref().service_account_id
        ));
        authenticated(
            &self.0,
            request,
            Method::ServiceAccountGet,
            resource,
            async |_, principal, request| {
                let account = hierarchy(&self.0)?
                    .get_service_account(principal, &request.service_account_id)
                    .await?;
                Ok(ServiceAccount::from_message(&service_account_message(
                    &account,
                )))
            },
        )
        .await
    }

    async fn list(
        &self,
        request: Request<ListServiceAccountsRequest>,
    ) -> Result<Response<ListServiceAccountsResponse>, tonic::Status> {
        let resource = Some(format!("folder:{}", request.get_ref().folder_id));
        authenticated(
            &self.0,
            request,
            Method::ServiceAccountList,
            resource,
            async |_, principal, request| {
                let list = ListRequest {
                    page_size: request.page_size,
                    page_token: request.page_token,
                    filter: request.filter,
                };
                let page = hierarchy(&self.0)?
                    .list_service_accounts(principal, &request.folder_id, &list)
                    .await?;
                let (service_accounts, next_page_token) =
                    messages::<ServiceAccount, _, _>(&page, service_account_message);
                Ok(ListServiceAccountsResponse {
                    service_accounts,
                    next_page_token,
                })
            },
        )
        .await
    }

    async fn create(
        &self,
        request: Request<CreateServiceAccountRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("folder:{}", request.get_ref().folder_id));
        authenticated(
            &self.0,
            request,
            Method::ServiceAccountCreate,
            resource,
            async |call, principal, request| {
                unsupported(request.expires_at.is_some(), "expires_at")?;
                let op = hierarchy(&self.0)?
                    .create_service_account(
                        principal,
                        &request.folder_id,
                        Attributes {
                            name: request.name,
                            description: request.description,
                            labels: request.labels,
                        },
                    )
                    .await?;
                call.resource = Some(format!("service_account:{}", op.resource_id));
                operation(&op)
            },
        )
        .await
    }

    /// Without an `update_mask`, every updatable field takes the request's value (proto3
    /// cannot tell an absent field from an empty one); an empty name keeps the name.
    async fn update(
        &self,
        request: Request<UpdateServiceAccountRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!(
            "service_account:{}",
            request.get_ref().service_account_id
        ));
        authenticated(
            &self.0,
            request,
            Method::ServiceAccountUpdate,
            resource,
            async |_, principal, request| {
                unsupported(request.expires_at.is_some(), "expires_at")?;
                let update = hierarchy_update(
                    request.update_mask,
                    request.name,
                    request.description,
                    request.labels,
                );
                let op = hierarchy(&self.0)?
                    .update_service_account(principal, &request.service_account_id, &update)
                    .await?;
                operation(&op)
            },
        )
        .await
    }

    async fn delete(
        &self,
        request: Request<DeleteServiceAccountRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!(
            "service_account:{}",
            request.get_ref().service_account_id
        ));
        authenticated(
            &self.0,
            request,
            Method::ServiceAccountDelete,
            resource,
            async |_, principal, request| {
                operation(
                    &hierarchy(&self.0)?
                        .delete_service_account(principal, &request.service_account_id)
                        .await?,
                )
            },
        )
        .await
    }

    async fn suspend(
        &self,
        request: Request<SuspendServiceAccountRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!(
            "service_account:{}",
            request.get_ref().service_account_id
        ));
        authenticated(
            &self.0,
            request,
            Method::ServiceAccountSuspend,
            resource,
            async |_, principal, request| {
                let suspension = Suspension {
                    reason: request.reason,
                    until: request.expires_at.map(|t| t.seconds),
                };
                operation(
                    &hierarchy(&self.0)?
                        .suspend_service_account(
                            principal,
                            &request.service_account_id,
                            &suspension,
                        )
                        .await?,
                )
            },
        )
        .await
    }

    async fn reactivate(
        &self,
        request: Request<ReactivateServiceAccountRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!(
            "service_account:{}",
            request.get_ref().service_account_id
        ));
        authenticated(
            &self.0,
            request,
            Method::ServiceAccountReactivate,
            resource,
            async |_, principal, request| {
                operation(
                    &hierarchy(&self.0)?
                        .reactivate_service_account(principal, &request.service_account_id)
                        .await?,
                )
            },
        )
        .await
    }

    access_binding_methods!(ResourceKind::ServiceAccount);
}
