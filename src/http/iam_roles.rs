//! `RoleService` at its Yandex REST paths: `GET /iam/v1/roles?pageSize=&pageToken=` →
//! `{"roles","nextPageToken"}` and `GET /iam/v1/roles/{roleId}` → the role, over
//! [`crate::iam::roles_api`]: the built-in roles and those the configuration declares.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::iam_hierarchy::page_query;
use super::yandex::{Endpoint, Refusals, context, finish, ok, start};
use crate::app::AppState;
use crate::iam::roles_api::{RoleMessage, Roles};
use crate::iam::service::Method;
use crate::iam::status::Status;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at("/iam/v1/roles").get(list),
        Endpoint::at("/iam/v1/roles/{roleId}").get(get),
    ]
}

/// `ListRolesResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListRolesResponse {
    roles: Vec<RoleMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// One call: authenticated, then answered by `body` with the roles in force.
async fn serve<T: Serialize>(
    state: AppState,
    request: Request,
    method: Method,
    body: impl FnOnce(&Roles<'_>, &crate::iam::authn::Principal, &Request) -> Result<T, Status>,
) -> Response {
    let mut call = start(&state, &request, method);
    let caller = &mut call;
    let result = async move {
        let principal = caller.authenticate(&state, request.headers()).await?;
        let snapshot = state.snapshot();
        let roles = Roles {
            ctx: context(&state)?,
            catalog: &snapshot.catalog,
        };
        body(&roles, &principal, &request).map(ok)
    }
    .await;
    finish(call, result)
}

#[utoipa::path(
    get,
    path = "/iam/v1/roles",
    operation_id = "RoleService.List",
    tag = "RoleService",
    params(("pageSize" = Option<i64>, Query, description = "0 to 1000; default 100"), ("pageToken" = Option<String>, Query)),
    responses((status = 200, body = ListRolesResponse), Refusals)
)]
pub(super) async fn list(State(state): State<AppState>, request: Request) -> Response {
    serve(
        state,
        request,
        Method::RoleList,
        |roles, principal, request| {
            let page = roles.list(principal, &page_query(request)?)?;
            Ok(ListRolesResponse {
                roles: page.items,
                next_page_token: page.next_page_token,
            })
        },
    )
    .await
}

#[utoipa::path(
    get,
    path = "/iam/v1/roles/{roleId}",
    operation_id = "RoleService.Get",
    tag = "RoleService",
    params(("roleId" = String, Path)),
    responses((status = 200, body = RoleMessage), Refusals)
)]
pub(super) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    serve(state, request, Method::RoleGet, |roles, principal, _| {
        roles.get(principal, &id)
    })
    .await
}
