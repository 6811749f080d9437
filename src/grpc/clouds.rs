//! `yandex.cloud.resourcemanager.v1.CloudService`, through [`crate::iam::hierarchy_api`] as
//! `/resource-manager/v1/clouds…` does, with the access-binding methods of
//! [`super::bindings`]. A deletion is immediate: `delete_after` is refused.

use tonic::{Request, Response};

use crate::app::AppState;
use crate::iam::ResourceKind;
use crate::iam::hierarchy_api::{Attributes, ListRequest, cloud_message};
use crate::iam::service::Method;

use super::bindings::access_binding_methods;
use super::convert::{FromJson, messages, operation};
use super::method::{authenticated, hierarchy, hierarchy_update, unsupported};
use super::proto::yandex::cloud::operation::Operation;
use super::proto::yandex::cloud::resourcemanager::v1::cloud_service_server::CloudService;
use super::proto::yandex::cloud::resourcemanager::v1::{
    Cloud, CreateCloudRequest, DeleteCloudRequest, GetCloudRequest, ListCloudsRequest,
    ListCloudsResponse, UpdateCloudRequest,
};

pub struct Clouds(pub AppState);

#[tonic::async_trait]
impl CloudService for Clouds {
    async fn get(
        &self,
        request: Request<GetCloudRequest>,
    ) -> Result<Response<Cloud>, tonic::Status> {
        let resource = Some(format!("cloud:{}", request.get_ref().cloud_id));
        authenticated(
            &self.0,
            request,
            Method::CloudGet,
            resource,
            async |_, principal, request| {
                let cloud = hierarchy(&self.0)?
                    .get_cloud(principal, &request.cloud_id)
                    .await?;
                Ok(Cloud::from_message(&cloud_message(&cloud)))
            },
        )
        .await
    }

    /// The clouds on which the caller holds `resource-manager.clouds.get`.
    async fn list(
        &self,
        request: Request<ListCloudsRequest>,
    ) -> Result<Response<ListCloudsResponse>, tonic::Status> {
        authenticated(
            &self.0,
            request,
            Method::CloudList,
            None,
            async |_, principal, request| {
                let list = ListRequest {
                    page_size: request.page_size,
                    page_token: request.page_token,
                    filter: request.filter,
                };
                let page = hierarchy(&self.0)?
                    .list_clouds(principal, &request.organization_id, &list)
                    .await?;
                let (clouds, next_page_token) = messages::<Cloud, _, _>(&page, cloud_message);
                Ok(ListCloudsResponse {
                    clouds,
                    next_page_token,
                })
            },
        )
        .await
    }

    async fn create(
        &self,
        request: Request<CreateCloudRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!(
            "organization:{}",
            request.get_ref().organization_id
        ));
        authenticated(
            &self.0,
            request,
            Method::CloudCreate,
            resource,
            async |call, principal, request| {
                let op = hierarchy(&self.0)?
                    .create_cloud(
                        principal,
                        &request.organization_id,
                        Attributes {
                            name: request.name,
                            description: request.description,
                            labels: request.labels,
                        },
                    )
                    .await?;
                call.resource = Some(format!("cloud:{}", op.resource_id));
                operation(&op)
            },
        )
        .await
    }

    /// Without an `update_mask`, every updatable field takes the request's value; an empty
    /// name keeps the name.
    async fn update(
        &self,
        request: Request<UpdateCloudRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("cloud:{}", request.get_ref().cloud_id));
        authenticated(
            &self.0,
            request,
            Method::CloudUpdate,
            resource,
            async |_, principal, request| {
                let update = hierarchy_update(
                    request.update_mask,
                    request.name,
                    request.description,
                    request.labels,
                );
                operation(
                    &hierarchy(&self.0)?
                        .update_cloud(principal, &request.cloud_id, &update)
                        .await?,
                )
            },
        )
        .await
    }

    async fn delete(
        &self,
        request: Request<DeleteCloudRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("cloud:{}", request.get_ref().cloud_id));
        authenticated(
            &self.0,
            request,
            Method::CloudDelete,
            resource,
            async |_, principal, request| {
                unsupported(request.delete_after.is_some(), "delete_after")?;
                operation(
                    &hierarchy(&self.0)?
                        .delete_cloud(principal, &request.cloud_id)
                        .await?,
                )
            },
        )
        .await
    }

    access_binding_methods!(ResourceKind::Cloud);
}
