//! `yandex.cloud.iam.v1.RoleService`: the built-in and the configured roles, through
//! [`crate::iam::roles_api`] as `/iam/v1/roles…` does; any authenticated caller may read them.

use tonic::{Request, Response};

use crate::app::AppState;
use crate::app::call::context;
use crate::iam::hierarchy_api::ListRequest;
use crate::iam::roles_api::{RoleMessage, Roles as RolesApi};
use crate::iam::service::Method;
use crate::iam::status::Status;

use super::method::authenticated;
use super::proto::yandex::cloud::iam::v1::role_service_server::RoleService;
use super::proto::yandex::cloud::iam::v1::{
    GetRoleRequest, ListRolesRequest, ListRolesResponse, Role,
};

pub struct Roles(pub AppState);

impl Roles {
    /// `body` with the role methods over the catalog in force.
    fn with<T>(&self, body: impl FnOnce(&RolesApi<'_>) -> Result<T, Status>) -> Result<T, Status> {
        let snapshot = self.0.snapshot();
        body(&RolesApi {
            ctx: context(&self.0)?,
            catalog: &snapshot.catalog,
        })
    }
}

fn role(message: RoleMessage) -> Role {
    Role {
        id: message.id,
        description: message.description,
    }
}

#[tonic::async_trait]
impl RoleService for Roles {
    async fn get(&self, request: Request<GetRoleRequest>) -> Result<Response<Role>, tonic::Status> {
        authenticated(
            &self.0,
            request,
            Method::RoleGet,
            None,
            async |_, principal, request| {
                self.with(|roles| roles.get(principal, &request.role_id))
                    .map(role)
            },
        )
        .await
    }

    async fn list(
        &self,
        request: Request<ListRolesRequest>,
    ) -> Result<Response<ListRolesResponse>, tonic::Status> {
        authenticated(
            &self.0,
            request,
            Method::RoleList,
            None,
            async |_, principal, request| {
                let list = ListRequest {
                    page_size: request.page_size,
                    page_token: request.page_token,
                    filter: request.filter,
                };
                let page = self.with(|roles| roles.list(principal, &list))?;
                Ok(ListRolesResponse {
                    roles: page.items.into_iter().map(role).collect(),
                    next_page_token: page.next_page_token.unwrap_or_default(),
                })
            },
        )
        .await
    }
}
