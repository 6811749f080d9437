//! `yandex.cloud.iam.v1.workload.oidc.FederationService`, through
//! [`crate::iam::federations_api`] as `/iam/v1/workload/oidc/federations…` does, with the
//! access-binding methods of [`super::bindings`].

use tonic::{Request, Response};

use crate::app::AppState;
use crate::app::call::federations;
use crate::iam::ResourceKind;
use crate::iam::federations_api::{
    CreateFederation, ListPage, UpdateFederation, federation_message,
};
use crate::iam::service::Method;

use super::bindings::access_binding_methods;
use super::convert::{FromJson, messages, operation};
use super::method::{authenticated, update_mask};
use super::proto::yandex::cloud::iam::v1::workload::oidc::federation_service_server::FederationService;
use super::proto::yandex::cloud::iam::v1::workload::oidc::{
    CreateFederationRequest, DeleteFederationRequest, Federation, GetFederationRequest,
    ListFederationsRequest, ListFederationsResponse, UpdateFederationRequest,
};
use super::proto::yandex::cloud::operation::Operation;

pub struct Federations(pub AppState);

#[tonic::async_trait]
impl FederationService for Federations {
    async fn get(
        &self,
        request: Request<GetFederationRequest>,
    ) -> Result<Response<Federation>, tonic::Status> {
        let resource = Some(format!("federation:{}", request.get_ref().federation_id));
        authenticated(
            &self.0,
            request,
            Method::FederationGet,
            resource,
            async |_, principal, request| {
                let federation = federations(&self.0)?
                    .get(principal, &request.federation_id)
                    .await?;
                Ok(Federation::from_message(&federation_message(&federation)))
            },
        )
        .await
    }

    async fn list(
        &self,
        request: Request<ListFederationsRequest>,
    ) -> Result<Response<ListFederationsResponse>, tonic::Status> {
        let resource = Some(format!("folder:{}", request.get_ref().folder_id));
        authenticated(
            &self.0,
            request,
            Method::FederationList,
            resource,
            async |_, principal, request| {
                let page = ListPage {
                    size: request.page_size,
                    token: request.page_token,
                };
                let listed = federations(&self.0)?
                    .list(principal, &request.folder_id, &page)
                    .await?;
                let (federations, next_page_token) =
                    messages::<Federation, _, _>(&listed, federation_message);
                Ok(ListFederationsResponse {
                    federations,
                    next_page_token,
                })
            },
        )
        .await
    }

    async fn create(
        &self,
        request: Request<CreateFederationRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("folder:{}", request.get_ref().folder_id));
        authenticated(
            &self.0,
            request,
            Method::FederationCreate,
            resource,
            async |call, principal, request| {
                let op = federations(&self.0)?
                    .create(
                        principal,
                        CreateFederation {
                            folder_id: request.folder_id,
                            name: request.name,
                            description: request.description,
                            disabled: request.disabled,
                            audiences: request.audiences,
                            issuer: request.issuer,
                            jwks_url: request.jwks_url,
                            labels: request.labels,
                        },
                    )
                    .await?;
                call.resource = Some(format!("federation:{}", op.resource_id));
                operation(&op)
            },
        )
        .await
    }

    /// With an `update_mask`, the fields it names take the request's values; without one,
    /// the fields with a value other than the proto3 default change (proto3 cannot tell an
    /// absent field from an empty one, so clearing a field needs a mask).
    async fn update(
        &self,
        request: Request<UpdateFederationRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("federation:{}", request.get_ref().federation_id));
        authenticated(
            &self.0,
            request,
            Method::FederationUpdate,
            resource,
            async |_, principal, request| {
                let update_mask = update_mask(request.update_mask);
                let sent = |given: bool| update_mask.is_some() || given;
                let update = UpdateFederation {
                    name: sent(!request.name.is_empty()).then_some(request.name),
                    description: sent(!request.description.is_empty())
                        .then_some(request.description),
                    disabled: sent(request.disabled).then_some(request.disabled),
                    audiences: sent(!request.audiences.is_empty()).then_some(request.audiences),
                    jwks_url: sent(!request.jwks_url.is_empty()).then_some(request.jwks_url),
                    labels: sent(!request.labels.is_empty()).then_some(request.labels),
                    update_mask,
                };
                let op = federations(&self.0)?
                    .update(principal, &request.federation_id, update)
                    .await?;
                operation(&op)
            },
        )
        .await
    }

    async fn delete(
        &self,
        request: Request<DeleteFederationRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("federation:{}", request.get_ref().federation_id));
        authenticated(
            &self.0,
            request,
            Method::FederationDelete,
            resource,
            async |_, principal, request| {
                operation(
                    &federations(&self.0)?
                        .delete(principal, &request.federation_id)
                        .await?,
                )
            },
        )
        .await
    }

    access_binding_methods!(ResourceKind::Federation);
}
