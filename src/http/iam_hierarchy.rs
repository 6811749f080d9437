//! The resource hierarchy at its Yandex REST paths: `CloudService` and `FolderService`
//! (resource manager), `ServiceAccountService` (IAM), and `OperationService.Get`.
//!
//! | route | method |
//! |---|---|
//! | `GET /resource-manager/v1/clouds?organizationId=&pageSize=&pageToken=&filter=` | CloudService.List → `{"clouds","nextPageToken"}` |
//! | `POST /resource-manager/v1/clouds` | CloudService.Create: `{"organizationId","name","description","labels"}` → operation |
//! | `GET`, `PATCH`, `DELETE /resource-manager/v1/clouds/{cloudId}` | Get → the cloud; Update: `{"updateMask","name","description","labels"}` → operation; Delete → operation |
//! | `GET /resource-manager/v1/folders?cloudId=&pageSize=&pageToken=&filter=` | FolderService.List → `{"folders","nextPageToken"}` |
//! | `POST /resource-manager/v1/folders` | FolderService.Create: `{"cloudId","name","description","labels"}` → operation |
//! | `GET`, `PATCH`, `DELETE /resource-manager/v1/folders/{folderId}` | Get, Update, Delete |
//! | `GET /iam/v1/serviceAccounts?folderId=&pageSize=&pageToken=&filter=` | ServiceAccountService.List → `{"serviceAccounts","nextPageToken"}` |
//! | `POST /iam/v1/serviceAccounts` | ServiceAccountService.Create: `{"folderId","name","description","labels"}` → operation |
//! | `GET`, `PATCH`, `DELETE /iam/v1/serviceAccounts/{serviceAccountId}` | Get, Update, Delete |
//! | `GET /operations/{operationId}` | OperationService.Get → the operation |
//!
//! Bodies are proto3 JSON: camelCase names, the proto's snake_case names accepted too, unknown
//! fields refused. Every call is authenticated ([`Call::authenticate`]), then checked and
//! authorized by [`crate::iam::hierarchy_api`].

use axum::extract::{Path, Request, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::iam_bindings;
use super::yandex::{
    Call, Endpoint, Refusals, context, finish, json_body, ok, optional_json_body, start,
};
use crate::app::AppState;
use crate::iam::ResourceKind;
use crate::iam::hierarchy_api::{
    Attributes, CloudMessage, FolderMessage, Hierarchy, ListRequest, ServiceAccountMessage,
    Suspension, Update, cloud_message, folder_message, service_account_message,
};
use crate::iam::operation::{self, OperationMessage};
use crate::iam::service::Method;
use crate::iam::status::Status;
use crate::iam::store::Labels;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at("/resource-manager/v1/clouds")
            .get(list_clouds)
            .post(create_cloud),
        Endpoint::at("/resource-manager/v1/clouds/{cloudId}")
            .get(
                |State(state): State<AppState>, Path(segment): Path<String>, request: Request| {
                    iam_bindings::read_or(
                        state,
                        ResourceKind::Cloud,
                        segment,
                        request,
                        |state, id, request| get_cloud(State(state), Path(id), request),
                    )
                },
            )
            .access_bindings(
                |State(state): State<AppState>, Path(segment): Path<String>, request: Request| {
                    iam_bindings::verb_only(state, ResourceKind::Cloud, segment, request)
                },
            )
            .patch(update_cloud)
            .delete(delete_cloud),
        Endpoint::at("/resource-manager/v1/folders")
            .get(list_folders)
            .post(create_folder),
        Endpoint::at("/resource-manager/v1/folders/{folderId}")
            .get(
                |State(state): State<AppState>, Path(segment): Path<String>, request: Request| {
                    iam_bindings::read_or(
                        state,
                        ResourceKind::Folder,
                        segment,
                        request,
                        |state, id, request| get_folder(State(state), Path(id), request),
                    )
                },
            )
            .access_bindings(
                |State(state): State<AppState>, Path(segment): Path<String>, request: Request| {
                    iam_bindings::verb_only(state, ResourceKind::Folder, segment, request)
                },
            )
            .patch(update_folder)
            .delete(delete_folder),
        Endpoint::at("/iam/v1/serviceAccounts")
            .get(list_service_accounts)
            .post(create_service_account),
        Endpoint::at("/iam/v1/serviceAccounts/{serviceAccountId}")
            .get(
                |State(state): State<AppState>, Path(segment): Path<String>, request: Request| {
                    iam_bindings::read_or(
                        state,
                        ResourceKind::ServiceAccount,
                        segment,
                        request,
                        |state, id, request| get_service_account(State(state), Path(id), request),
                    )
                },
            )
            .access_bindings(service_account_verb)
            .verb(http::Method::POST, "suspend")
            .verb(http::Method::POST, "reactivate")
            .patch(update_service_account)
            .delete(delete_service_account),
        Endpoint::at("/operations/{operationId}").get(get_operation),
    ]
}

/// One call: its record, authentication, then `body` with the hierarchy's methods; its
/// answer is `body`'s JSON.
async fn serve<T: Serialize>(
    state: AppState,
    request: Request,
    method: Method,
    resource: Option<String>,
    body: impl AsyncFnOnce(
        &Hierarchy<'_>,
        &crate::iam::authn::Principal,
        Request,
        &mut Call,
    ) -> Result<T, Status>,
) -> Response {
    let mut call = start(&state, &request, method);
    call.resource = resource;
    let result = async {
        let principal = call.authenticate(&state, request.headers()).await?;
        let hierarchy = Hierarchy {
            ctx: context(&state)?,
        };
        body(&hierarchy, &principal, request, &mut call).await
    }
    .await;
    finish(call, result.map(ok))
}

/// `ListCloudsResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ListCloudsResponse {
    clouds: Vec<CloudMessage>,
    /// Present when another page follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// `ListFoldersResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ListFoldersResponse {
    folders: Vec<FolderMessage>,
    /// Present when another page follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// `ListServiceAccountsResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ListServiceAccountsResponse {
    service_accounts: Vec<ServiceAccountMessage>,
    /// Present when another page follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// The query of a list call without a parent: the page and the filter.
pub(super) fn page_query(request: &Request) -> Result<ListRequest, Status> {
    list_query(request, ("", "")).map(|(_, list)| list)
}

/// A list call's query: the parent's id (`parent` in camelCase or snake_case) and the page.
fn list_query(request: &Request, parent: (&str, &str)) -> Result<(String, ListRequest), Status> {
    let mut id = String::new();
    let mut list = ListRequest::default();
    for (name, value) in form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes()) {
        let name = name.as_ref();
        if name == parent.0 || name == parent.1 {
            id = value.into_owned();
        } else if name == "pageSize" || name == "page_size" {
            list.page_size = value.parse::<i64>().map_err(|_| {
                Status::invalid_argument(
                    crate::iam::validate::REASON,
                    format!(
                        "pageSize {} is not a number",
                        crate::exchange::quote(&value)
                    ),
                )
            })?;
        } else if name == "pageToken" || name == "page_token" {
            list.page_token = value.into_owned();
        } else if name == "filter" {
            list.filter = value.into_owned();
        }
    }
    Ok((id, list))
}

/// The create request of a cloud, a folder or a service account, by its parent's field.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateCloudRequest {
    #[serde(default, alias = "organization_id")]
    #[schema(required = true, min_length = 1, max_length = 50)]
    organization_id: String,
    #[serde(default)]
    #[schema(pattern = "^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")]
    name: String,
    #[serde(default)]
    #[schema(max_length = 256)]
    description: String,
    #[serde(default)]
    #[schema(schema_with = crate::iam::validate::labels_schema)]
    labels: Labels,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateFolderRequest {
    #[serde(default, alias = "cloud_id")]
    #[schema(required = true, min_length = 1, max_length = 50)]
    cloud_id: String,
    #[serde(default)]
    #[schema(pattern = "^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")]
    name: String,
    #[serde(default)]
    #[schema(max_length = 256)]
    description: String,
    #[serde(default)]
    #[schema(schema_with = crate::iam::validate::labels_schema)]
    labels: Labels,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateServiceAccountRequest {
    #[serde(default, alias = "folder_id")]
    #[schema(required = true, min_length = 1, max_length = 50)]
    folder_id: String,
    #[serde(default)]
    #[schema(pattern = "^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")]
    name: String,
    #[serde(default)]
    #[schema(max_length = 256)]
    description: String,
    #[serde(default)]
    #[schema(schema_with = crate::iam::validate::labels_schema)]
    labels: Labels,
}

/// `Update{Cloud,Folder,ServiceAccount}Request` less the id, which is in the path.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = UpdateResourceRequest)]
struct UpdateRequest {
    /// Comma-separated field paths (camelCase or snake_case); none means every field.
    #[serde(alias = "update_mask")]
    #[schema(examples("name,description"))]
    update_mask: Option<String>,
    #[schema(pattern = "^([a-z]([-a-z0-9]{0,61}[a-z0-9])?)?$")]
    name: Option<String>,
    #[schema(max_length = 256)]
    description: Option<String>,
    #[schema(schema_with = crate::iam::validate::labels_schema, required = false)]
    labels: Option<Labels>,
}

async fn update_body(request: Request, what: &str) -> Result<Update, Status> {
    let body: UpdateRequest = json_body(request, what).await?;
    Ok(Update {
        update_mask: body.update_mask,
        name: body.name,
        description: body.description,
        labels: body.labels,
    })
}

// CloudService

#[utoipa::path(
    get,
    path = "/resource-manager/v1/clouds",
    operation_id = "CloudService.List",
    tag = "CloudService",
    params(("organizationId" = Option<String>, Query), ("pageSize" = Option<i64>, Query, description = "0 to 1000; default 100"), ("pageToken" = Option<String>, Query), ("filter" = Option<String>, Query, description = "`name=\"…\"`")),
    responses((status = 200, body = ListCloudsResponse), Refusals)
)]
async fn list_clouds(State(state): State<AppState>, request: Request) -> Response {
    serve(
        state,
        request,
        Method::CloudList,
        None,
        async |h, principal, request, _| {
            let (organization, list) = list_query(&request, ("organizationId", "organization_id"))?;
            let page = h.list_clouds(principal, &organization, &list).await?;
            Ok(ListCloudsResponse {
                clouds: page.items.iter().map(cloud_message).collect(),
                next_page_token: page.next_page_token,
            })
        },
    )
    .await
}

#[utoipa::path(
    post,
    path = "/resource-manager/v1/clouds",
    operation_id = "CloudService.Create",
    tag = "CloudService",
    request_body = CreateCloudRequest,
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn create_cloud(State(state): State<AppState>, request: Request) -> Response {
    serve(
        state,
        request,
        Method::CloudCreate,
        None,
        async |h, principal, request, call| {
            let body: CreateCloudRequest = json_body(request, "CreateCloudRequest").await?;
            call.resource = Some(format!("organization:{}", body.organization_id));
            let op = h
                .create_cloud(
                    principal,
                    &body.organization_id,
                    Attributes {
                        name: body.name,
                        description: body.description,
                        labels: body.labels,
                    },
                )
                .await?;
            call.resource = Some(format!("cloud:{}", op.resource_id));
            Ok(operation::to_message(&op))
        },
    )
    .await
}

#[utoipa::path(
    get,
    path = "/resource-manager/v1/clouds/{cloudId}",
    operation_id = "CloudService.Get",
    tag = "CloudService",
    params(("cloudId" = String, Path)),
    responses((status = 200, body = CloudMessage), Refusals)
)]
async fn get_cloud(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let resource = Some(format!("cloud:{id}"));
    serve(
        state,
        request,
        Method::CloudGet,
        resource,
        async |h, principal, _, _| Ok(cloud_message(&h.get_cloud(principal, &id).await?)),
    )
    .await
}

#[utoipa::path(
    patch,
    path = "/resource-manager/v1/clouds/{cloudId}",
    operation_id = "CloudService.Update",
    tag = "CloudService",
    params(("cloudId" = String, Path)),
    request_body = UpdateRequest,
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn update_cloud(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let resource = Some(format!("cloud:{id}"));
    serve(
        state,
        request,
        Method::CloudUpdate,
        resource,
        async |h, principal, request, _| {
            let update = update_body(request, "UpdateCloudRequest").await?;
            let op = h.update_cloud(principal, &id, &update).await?;
            Ok(operation::to_message(&op))
        },
    )
    .await
}

#[utoipa::path(
    delete,
    path = "/resource-manager/v1/clouds/{cloudId}",
    operation_id = "CloudService.Delete",
    tag = "CloudService",
    params(("cloudId" = String, Path)),
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn delete_cloud(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let resource = Some(format!("cloud:{id}"));
    serve(
        state,
        request,
        Method::CloudDelete,
        resource,
        async |h, principal, _, _| {
            Ok(operation::to_message(
                &h.delete_cloud(principal, &id).await?,
            ))
        },
    )
    .await
}

// FolderService

#[utoipa::path(
    get,
    path = "/resource-manager/v1/folders",
    operation_id = "FolderService.List",
    tag = "FolderService",
    params(("cloudId" = String, Query), ("pageSize" = Option<i64>, Query, description = "0 to 1000; default 100"), ("pageToken" = Option<String>, Query), ("filter" = Option<String>, Query, description = "`name=\"…\"`")),
    responses((status = 200, body = ListFoldersResponse), Refusals)
)]
async fn list_folders(State(state): State<AppState>, request: Request) -> Response {
    serve(
        state,
        request,
        Method::FolderList,
        None,
        async |h, principal, request, call| {
            let (cloud, list) = list_query(&request, ("cloudId", "cloud_id"))?;
            call.resource = Some(format!("cloud:{cloud}"));
            let page = h.list_folders(principal, &cloud, &list).await?;
            Ok(ListFoldersResponse {
                folders: page.items.iter().map(folder_message).collect(),
                next_page_token: page.next_page_token,
            })
        },
    )
    .await
}

#[utoipa::path(
    post,
    path = "/resource-manager/v1/folders",
    operation_id = "FolderService.Create",
    tag = "FolderService",
    request_body = CreateFolderRequest,
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn create_folder(State(state): State<AppState>, request: Request) -> Response {
    serve(
        state,
        request,
        Method::FolderCreate,
        None,
        async |h, principal, request, call| {
            let body: CreateFolderRequest = json_body(request, "CreateFolderRequest").await?;
            call.resource = Some(format!("cloud:{}", body.cloud_id));
            let op = h
                .create_folder(
                    principal,
                    &body.cloud_id,
                    Attributes {
                        name: body.name,
                        description: body.description,
                        labels: body.labels,
                    },
                )
                .await?;
            call.resource = Some(format!("folder:{}", op.resource_id));
            Ok(operation::to_message(&op))
        },
    )
    .await
}

#[utoipa::path(
    get,
    path = "/resource-manager/v1/folders/{folderId}",
    operation_id = "FolderService.Get",
    tag = "FolderService",
    params(("folderId" = String, Path)),
    responses((status = 200, body = FolderMessage), Refusals)
)]
async fn get_folder(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let resource = Some(format!("folder:{id}"));
    serve(
        state,
        request,
        Method::FolderGet,
        resource,
        async |h, principal, _, _| Ok(folder_message(&h.get_folder(principal, &id).await?)),
    )
    .await
}

#[utoipa::path(
    patch,
    path = "/resource-manager/v1/folders/{folderId}",
    operation_id = "FolderService.Update",
    tag = "FolderService",
    params(("folderId" = String, Path)),
    request_body = UpdateRequest,
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn update_folder(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let resource = Some(format!("folder:{id}"));
    serve(
        state,
        request,
        Method::FolderUpdate,
        resource,
        async |h, principal, request, _| {
            let update = update_body(request, "UpdateFolderRequest").await?;
            let op = h.update_folder(principal, &id, &update).await?;
            Ok(operation::to_message(&op))
        },
    )
    .await
}

#[utoipa::path(
    delete,
    path = "/resource-manager/v1/folders/{folderId}",
    operation_id = "FolderService.Delete",
    tag = "FolderService",
    params(("folderId" = String, Path)),
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn delete_folder(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let resource = Some(format!("folder:{id}"));
    serve(
        state,
        request,
        Method::FolderDelete,
        resource,
        async |h, principal, _, _| {
            Ok(operation::to_message(
                &h.delete_folder(principal, &id).await?,
            ))
        },
    )
    .await
}

// ServiceAccountService

#[utoipa::path(
    get,
    path = "/iam/v1/serviceAccounts",
    operation_id = "ServiceAccountService.List",
    tag = "ServiceAccountService",
    params(("folderId" = String, Query), ("pageSize" = Option<i64>, Query, description = "0 to 1000; default 100"), ("pageToken" = Option<String>, Query), ("filter" = Option<String>, Query, description = "`name=\"…\"`")),
    responses((status = 200, body = ListServiceAccountsResponse), Refusals)
)]
async fn list_service_accounts(State(state): State<AppState>, request: Request) -> Response {
    serve(
        state,
        request,
        Method::ServiceAccountList,
        None,
        async |h, principal, request, call| {
            let (folder, list) = list_query(&request, ("folderId", "folder_id"))?;
            call.resource = Some(format!("folder:{folder}"));
            let page = h.list_service_accounts(principal, &folder, &list).await?;
            Ok(ListServiceAccountsResponse {
                service_accounts: page.items.iter().map(service_account_message).collect(),
                next_page_token: page.next_page_token,
            })
        },
    )
    .await
}

#[utoipa::path(
    post,
    path = "/iam/v1/serviceAccounts",
    operation_id = "ServiceAccountService.Create",
    tag = "ServiceAccountService",
    request_body = CreateServiceAccountRequest,
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn create_service_account(State(state): State<AppState>, request: Request) -> Response {
    serve(
        state,
        request,
        Method::ServiceAccountCreate,
        None,
        async |h, principal, request, call| {
            let body: CreateServiceAccountRequest =
                json_body(request, "CreateServiceAccountRequest").await?;
            call.resource = Some(format!("folder:{}", body.folder_id));
            let op = h
                .create_service_account(
                    principal,
                    &body.folder_id,
                    Attributes {
                        name: body.name,
                        description: body.description,
                        labels: body.labels,
                    },
                )
                .await?;
            call.resource = Some(format!("service_account:{}", op.resource_id));
            Ok(operation::to_message(&op))
        },
    )
    .await
}

#[utoipa::path(
    get,
    path = "/iam/v1/serviceAccounts/{serviceAccountId}",
    operation_id = "ServiceAccountService.Get",
    tag = "ServiceAccountService",
    params(("serviceAccountId" = String, Path)),
    responses((status = 200, body = ServiceAccountMessage), Refusals)
)]
async fn get_service_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let resource = Some(format!("service_account:{id}"));
    serve(
        state,
        request,
        Method::ServiceAccountGet,
        resource,
        async |h, principal, _, _| {
            Ok(service_account_message(
                &h.get_service_account(principal, &id).await?,
            ))
        },
    )
    .await
}

#[utoipa::path(
    patch,
    path = "/iam/v1/serviceAccounts/{serviceAccountId}",
    operation_id = "ServiceAccountService.Update",
    tag = "ServiceAccountService",
    params(("serviceAccountId" = String, Path)),
    request_body = UpdateRequest,
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn update_service_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let resource = Some(format!("service_account:{id}"));
    serve(
        state,
        request,
        Method::ServiceAccountUpdate,
        resource,
        async |h, principal, request, _| {
            let update = update_body(request, "UpdateServiceAccountRequest").await?;
            let op = h.update_service_account(principal, &id, &update).await?;
            Ok(operation::to_message(&op))
        },
    )
    .await
}

#[utoipa::path(
    delete,
    path = "/iam/v1/serviceAccounts/{serviceAccountId}",
    operation_id = "ServiceAccountService.Delete",
    tag = "ServiceAccountService",
    params(("serviceAccountId" = String, Path)),
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn delete_service_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let resource = Some(format!("service_account:{id}"));
    serve(
        state,
        request,
        Method::ServiceAccountDelete,
        resource,
        async |h, principal, _, _| {
            Ok(operation::to_message(
                &h.delete_service_account(principal, &id).await?,
            ))
        },
    )
    .await
}

/// `POST /iam/v1/serviceAccounts/{id}:{verb}`: suspend, reactivate, or an access-binding verb.
async fn service_account_verb(
    State(state): State<AppState>,
    Path(segment): Path<String>,
    request: Request,
) -> Response {
    match iam_bindings::split_verb(&segment) {
        Some((id, "suspend")) => suspend_service_account(state, id.to_owned(), request).await,
        Some((id, "reactivate")) => reactivate_service_account(state, id.to_owned(), request).await,
        _ => iam_bindings::verb_only(state, ResourceKind::ServiceAccount, segment, request).await,
    }
}

/// `SuspendServiceAccountRequest` less the id, which is in the path.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SuspendRequest {
    /// Why the account is suspended (required, at most 256 characters).
    #[schema(min_length = 1, max_length = 256)]
    reason: String,
    /// RFC 3339: when the suspension lifts by itself; absent: at reactivation only.
    #[serde(alias = "expires_at")]
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// `ReactivateServiceAccountRequest` less the id: an empty object, or no body.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct ReactivateRequest {}

#[utoipa::path(
    post,
    path = "/iam/v1/serviceAccounts/{serviceAccountId}:suspend",
    operation_id = "ServiceAccountService.Suspend",
    tag = "ServiceAccountService",
    params(("serviceAccountId" = String, Path)),
    request_body = SuspendRequest,
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn suspend_service_account(state: AppState, id: String, request: Request) -> Response {
    let resource = Some(format!("service_account:{id}"));
    serve(
        state,
        request,
        Method::ServiceAccountSuspend,
        resource,
        async |h, principal, request, _| {
            let body: SuspendRequest = json_body(request, "SuspendServiceAccountRequest").await?;
            let until = match body.expires_at.as_deref().filter(|t| !t.is_empty()) {
                None => None,
                Some(text) => Some(crate::time::parse_rfc3339(text).ok_or_else(|| {
                    Status::invalid_argument(
                        "invalid_argument",
                        "expiresAt is not an RFC 3339 timestamp (2027-01-15T08:00:00Z)",
                    )
                })?),
            };
            let suspension = Suspension {
                reason: body.reason,
                until,
            };
            let op = h
                .suspend_service_account(principal, &id, &suspension)
                .await?;
            Ok(operation::to_message(&op))
        },
    )
    .await
}

#[utoipa::path(
    post,
    path = "/iam/v1/serviceAccounts/{serviceAccountId}:reactivate",
    operation_id = "ServiceAccountService.Reactivate",
    tag = "ServiceAccountService",
    params(("serviceAccountId" = String, Path)),
    request_body(content = ReactivateRequest, description = "An empty object, or no body"),
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn reactivate_service_account(state: AppState, id: String, request: Request) -> Response {
    let resource = Some(format!("service_account:{id}"));
    serve(
        state,
        request,
        Method::ServiceAccountReactivate,
        resource,
        async |h, principal, request, _| {
            let _: ReactivateRequest =
                optional_json_body(request, "ReactivateServiceAccountRequest").await?;
            let op = h.reactivate_service_account(principal, &id).await?;
            Ok(operation::to_message(&op))
        },
    )
    .await
}

// OperationService

#[utoipa::path(
    get,
    path = "/operations/{operationId}",
    operation_id = "OperationService.Get",
    tag = "OperationService",
    params(("operationId" = String, Path)),
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn get_operation(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let resource = Some(format!("operation:{id}"));
    serve(
        state,
        request,
        Method::OperationGet,
        resource,
        async |h, principal, _, _| {
            Ok(operation::to_message(
                &h.get_operation(principal, &id).await?,
            ))
        },
    )
    .await
}
