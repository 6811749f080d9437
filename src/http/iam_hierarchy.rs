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

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::iam_bindings;
use super::yandex::{Call, context, json_body, method_not_allowed, ok};
use crate::app::AppState;
use crate::iam::ResourceKind;
use crate::iam::hierarchy_api::{
    Attributes, Hierarchy, ListRequest, Update, cloud_message, folder_message,
    service_account_message,
};
use crate::iam::operation;
use crate::iam::service::Method;
use crate::iam::status::Status;
use crate::iam::store::{Labels, Page};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/resource-manager/v1/clouds",
            get(list_clouds)
                .post(create_cloud)
                .fallback(|| async { method_not_allowed("GET, POST") }),
        )
        .route(
            "/resource-manager/v1/clouds/{cloud_id}",
            get(
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
            .post(
                |State(state): State<AppState>, Path(segment): Path<String>, request: Request| {
                    iam_bindings::verb_only(state, ResourceKind::Cloud, segment, request)
                },
            )
            .patch(update_cloud)
            .delete(delete_cloud)
            .fallback(|| async { method_not_allowed("GET, POST, PATCH, DELETE") }),
        )
        .route(
            "/resource-manager/v1/folders",
            get(list_folders)
                .post(create_folder)
                .fallback(|| async { method_not_allowed("GET, POST") }),
        )
        .route(
            "/resource-manager/v1/folders/{folder_id}",
            get(
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
            .post(
                |State(state): State<AppState>, Path(segment): Path<String>, request: Request| {
                    iam_bindings::verb_only(state, ResourceKind::Folder, segment, request)
                },
            )
            .patch(update_folder)
            .delete(delete_folder)
            .fallback(|| async { method_not_allowed("GET, POST, PATCH, DELETE") }),
        )
        .route(
            "/iam/v1/serviceAccounts",
            get(list_service_accounts)
                .post(create_service_account)
                .fallback(|| async { method_not_allowed("GET, POST") }),
        )
        .route(
            "/iam/v1/serviceAccounts/{service_account_id}",
            get(
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
            .post(
                |State(state): State<AppState>, Path(segment): Path<String>, request: Request| {
                    iam_bindings::verb_only(state, ResourceKind::ServiceAccount, segment, request)
                },
            )
            .patch(update_service_account)
            .delete(delete_service_account)
            .fallback(|| async { method_not_allowed("GET, POST, PATCH, DELETE") }),
        )
        .route(
            "/operations/{operation_id}",
            get(get_operation).fallback(|| async { method_not_allowed("GET") }),
        )
}

/// One call: its record, authentication, then `body` with the hierarchy's methods; its
/// answer is `body`'s JSON.
async fn serve(
    state: AppState,
    request: Request,
    method: Method,
    resource: Option<String>,
    body: impl AsyncFnOnce(
        &Hierarchy<'_>,
        &crate::iam::authn::Principal,
        Request,
        &mut Call,
    ) -> Result<Value, Status>,
) -> Response {
    let mut call = Call::new(&state, &request, method);
    call.resource = resource;
    let result = async {
        let principal = call.authenticate(&state, request.headers()).await?;
        let hierarchy = Hierarchy {
            ctx: context(&state)?,
        };
        body(&hierarchy, &principal, request, &mut call).await
    }
    .await;
    call.finish(result.map(ok))
}

/// A list's page in its REST form: the items under `field`, and `nextPageToken` if more
/// follow.
fn page_json<T>(field: &str, page: &Page<T>, message: impl Fn(&T) -> Value) -> Value {
    let mut body = json!({ field: page.items.iter().map(message).collect::<Vec<_>>() });
    if let Some(token) = &page.next_page_token {
        body["nextPageToken"] = token.clone().into();
    }
    body
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
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateCloudRequest {
    #[serde(default, alias = "organization_id")]
    organization_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    labels: Labels,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateFolderRequest {
    #[serde(default, alias = "cloud_id")]
    cloud_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    labels: Labels,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateServiceAccountRequest {
    #[serde(default, alias = "folder_id")]
    folder_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    labels: Labels,
}

/// `Update{Cloud,Folder,ServiceAccount}Request` less the id, which is in the path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateRequest {
    #[serde(alias = "update_mask")]
    update_mask: Option<String>,
    name: Option<String>,
    description: Option<String>,
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

async fn list_clouds(State(state): State<AppState>, request: Request) -> Response {
    serve(
        state,
        request,
        Method::CloudList,
        None,
        async |h, principal, request, _| {
            let (organization, list) = list_query(&request, ("organizationId", "organization_id"))?;
            let page = h.list_clouds(principal, &organization, &list).await?;
            Ok(page_json("clouds", &page, cloud_message))
        },
    )
    .await
}

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
            Ok(operation::to_json(&op))
        },
    )
    .await
}

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
            Ok(operation::to_json(&op))
        },
    )
    .await
}

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
        async |h, principal, _, _| Ok(operation::to_json(&h.delete_cloud(principal, &id).await?)),
    )
    .await
}

// FolderService

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
            Ok(page_json("folders", &page, folder_message))
        },
    )
    .await
}

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
            Ok(operation::to_json(&op))
        },
    )
    .await
}

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
            Ok(operation::to_json(&op))
        },
    )
    .await
}

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
        async |h, principal, _, _| Ok(operation::to_json(&h.delete_folder(principal, &id).await?)),
    )
    .await
}

// ServiceAccountService

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
            Ok(page_json("serviceAccounts", &page, service_account_message))
        },
    )
    .await
}

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
            Ok(operation::to_json(&op))
        },
    )
    .await
}

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
            Ok(operation::to_json(&op))
        },
    )
    .await
}

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
            Ok(operation::to_json(
                &h.delete_service_account(principal, &id).await?,
            ))
        },
    )
    .await
}

// OperationService

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
        async |h, principal, _, _| Ok(operation::to_json(&h.get_operation(principal, &id).await?)),
    )
    .await
}
