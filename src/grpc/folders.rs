//! `yandex.cloud.resourcemanager.v1.FolderService`, through [`crate::iam::hierarchy_api`] as
//! `/resource-manager/v1/folders…` does, with the access-binding methods of
//! [`super::bindings`]. A deletion is immediate: `delete_after` is refused.

use tonic::{Request, Response};

use crate::app::AppState;
use crate::iam::ResourceKind;
use crate::iam::hierarchy_api::{Attributes, ListRequest, folder_message};
use crate::iam::service::Method;

use super::bindings::access_binding_methods;
use super::convert::{FromJson, messages, operation};
use super::method::{authenticated, hierarchy, hierarchy_update, unsupported};
use super::proto::yandex::cloud::operation::Operation;
use super::proto::yandex::cloud::resourcemanager::v1::folder_service_server::FolderService;
use super::proto::yandex::cloud::resourcemanager::v1::{
    CreateFolderRequest, DeleteFolderRequest, Folder, GetFolderRequest, ListFoldersRequest,
    ListFoldersResponse, UpdateFolderRequest,
};

pub struct Folders(pub AppState);

#[tonic::async_trait]
impl FolderService for Folders {
    async fn get(
        &self,
        request: Request<GetFolderRequest>,
    ) -> Result<Response<Folder>, tonic::Status> {
        let resource = Some(format!("folder:{}", request.get_ref().folder_id));
        authenticated(
            &self.0,
            request,
            Method::FolderGet,
            resource,
            async |_, principal, request| {
                let folder = hierarchy(&self.0)?
                    .get_folder(principal, &request.folder_id)
                    .await?;
                Ok(Folder::from_message(&folder_message(&folder)))
            },
        )
        .await
    }

    async fn list(
        &self,
        request: Request<ListFoldersRequest>,
    ) -> Result<Response<ListFoldersResponse>, tonic::Status> {
        let resource = Some(format!("cloud:{}", request.get_ref().cloud_id));
        authenticated(
            &self.0,
            request,
            Method::FolderList,
            resource,
            async |_, principal, request| {
                let list = ListRequest {
                    page_size: request.page_size,
                    page_token: request.page_token,
                    filter: request.filter,
                };
                let page = hierarchy(&self.0)?
                    .list_folders(principal, &request.cloud_id, &list)
                    .await?;
                let (folders, next_page_token) = messages::<Folder, _, _>(&page, folder_message);
                Ok(ListFoldersResponse {
                    folders,
                    next_page_token,
                })
            },
        )
        .await
    }

    async fn create(
        &self,
        request: Request<CreateFolderRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("cloud:{}", request.get_ref().cloud_id));
        authenticated(
            &self.0,
            request,
            Method::FolderCreate,
            resource,
            async |call, principal, request| {
                let op = hierarchy(&self.0)?
                    .create_folder(
                        principal,
                        &request.cloud_id,
                        Attributes {
                            name: request.name,
                            description: request.description,
                            labels: request.labels,
                        },
                    )
                    .await?;
                call.resource = Some(format!("folder:{}", op.resource_id));
                operation(&op)
            },
        )
        .await
    }

    /// Without an `update_mask`, every updatable field takes the request's value; an empty
    /// name keeps the name.
    async fn update(
        &self,
        request: Request<UpdateFolderRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("folder:{}", request.get_ref().folder_id));
        authenticated(
            &self.0,
            request,
            Method::FolderUpdate,
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
                        .update_folder(principal, &request.folder_id, &update)
                        .await?,
                )
            },
        )
        .await
    }

    async fn delete(
        &self,
        request: Request<DeleteFolderRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("folder:{}", request.get_ref().folder_id));
        authenticated(
            &self.0,
            request,
            Method::FolderDelete,
            resource,
            async |_, principal, request| {
                unsupported(request.delete_after.is_some(), "delete_after")?;
                operation(
                    &hierarchy(&self.0)?
                        .delete_folder(principal, &request.folder_id)
                        .await?,
                )
            },
        )
        .await
    }

    access_binding_methods!(ResourceKind::Folder);
}
