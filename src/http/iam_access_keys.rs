//! `AccessKeyService` at its Yandex REST paths: static access keys (AWS-compatible) of service
//! accounts.
//!
//! | route | method |
//! |---|---|
//! | `POST /iam/aws-compatibility/v1/accessKeys` | Create: `{"serviceAccountId","description"}` → `{"accessKey","secret"}` |
//! | `GET /iam/aws-compatibility/v1/accessKeys?serviceAccountId=&pageSize=&pageToken=` | List → `{"accessKeys","nextPageToken"}` |
//! | `GET /iam/aws-compatibility/v1/accessKeys/{accessKeyId}` | Get → the key |
//! | `PATCH /iam/aws-compatibility/v1/accessKeys/{accessKeyId}` | Update: `{"updateMask","description"}` → the finished operation |
//! | `DELETE /iam/aws-compatibility/v1/accessKeys/{accessKeyId}` | Delete → the finished operation |
//!
//! Every call is authenticated by its `Authorization: Bearer` IAM token ([`Call::authenticate`])
//! and authorized by [`crate::iam::access_keys`]. The secret is in the Create answer and
//! nowhere else: stored sealed, never logged, never audited.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::yandex::{Call, Endpoint, Refusals, finish, json_body, list_query, ok, start};
use crate::app::AppState;
use crate::app::call::access_keys;
use crate::iam::access_keys::{AccessKeyMessage, CreateAccessKey, access_key_message};
use crate::iam::operation::{self, OperationMessage};
use crate::iam::service::{Method, check_key_update_mask};
use crate::iam::status::Status;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at("/iam/aws-compatibility/v1/accessKeys")
            .get(list)
            .post(create),
        Endpoint::at("/iam/aws-compatibility/v1/accessKeys/{accessKeyId}")
            .get(read)
            .patch(update)
            .delete(delete),
    ]
}

/// `CreateAccessKeyRequest` in proto3 JSON (camelCase; the proto's snake_case names are
/// accepted too).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateAccessKeyRequest {
    /// Default: the caller's own service account.
    #[serde(alias = "service_account_id")]
    #[schema(max_length = 50)]
    service_account_id: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    description: String,
}

/// `CreateAccessKeyResponse`: the new key and, in this answer only, its secret.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreateAccessKeyResponse<'a> {
    access_key: AccessKeyMessage,
    /// The secret access key (`YC…`, 40 characters). Shown once.
    secret: &'a str,
}

/// `ListAccessKeysResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ListAccessKeysResponse {
    access_keys: Vec<AccessKeyMessage>,
    /// Present when another page follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// AccessKeyService.Create: a new static access key for a service account.
#[utoipa::path(
    post,
    path = "/iam/aws-compatibility/v1/accessKeys",
    operation_id = "AccessKeyService.Create",
    tag = "AccessKeyService",
    request_body = CreateAccessKeyRequest,
    responses((status = 200, body = CreateAccessKeyResponse), Refusals)
)]
async fn create(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::AccessKeyCreate);
    let result = create_key(&state, &mut call, request).await;
    finish(call, result)
}

async fn create_key(
    state: &AppState,
    call: &mut Call,
    request: Request,
) -> Result<Response, Status> {
    let principal = call.authenticate(state, request.headers()).await?;
    let body: CreateAccessKeyRequest = json_body(request, "CreateAccessKeyRequest").await?;
    let account = body
        .service_account_id
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| principal.service_account_id.clone());
    call.resource = Some(format!("service_account:{account}"));
    let created = access_keys(state)?
        .create(
            &principal,
            CreateAccessKey {
                service_account_id: Some(account),
                description: body.description,
            },
        )
        .await?;
    call.resource = Some(format!("access_key:{}", created.key.id));
    Ok(ok(CreateAccessKeyResponse {
        access_key: access_key_message(&created.key),
        secret: created.secret_text(),
    }))
}

/// AccessKeyService.List: a service account's static access keys.
#[utoipa::path(
    get,
    path = "/iam/aws-compatibility/v1/accessKeys",
    operation_id = "AccessKeyService.List",
    tag = "AccessKeyService",
    params(
        ("serviceAccountId" = Option<String>, Query, max_length = 50, description = "Default: the caller's own service account"),
        ("pageSize" = Option<u32>, Query, maximum = 1000, description = "0 to 1000; default 100"),
        ("pageToken" = Option<String>, Query, max_length = 2000),
    ),
    responses((status = 200, body = ListAccessKeysResponse), Refusals)
)]
async fn list(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::AccessKeyList);
    let query = list_query(&request, ["serviceAccountId", "service_account_id"]);
    let headers = request.into_parts().0.headers;
    let result = async {
        let principal = call.authenticate(&state, &headers).await?;
        let (account, page) = query?;
        let account = Some(account.as_str()).filter(|id| !id.is_empty());
        let listed = access_keys(&state)?
            .list(&principal, account, &page)
            .await?;
        Ok(ok(ListAccessKeysResponse {
            access_keys: listed.items.iter().map(access_key_message).collect(),
            next_page_token: listed.next_page_token,
        }))
    }
    .await;
    finish(call, result)
}

/// AccessKeyService.Get: a static access key, without its secret.
#[utoipa::path(
    get,
    path = "/iam/aws-compatibility/v1/accessKeys/{accessKeyId}",
    operation_id = "AccessKeyService.Get",
    tag = "AccessKeyService",
    params(("accessKeyId" = String, Path, max_length = 50)),
    responses((status = 200, body = AccessKeyMessage), Refusals)
)]
async fn read(State(state): State<AppState>, Path(id): Path<String>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::AccessKeyGet);
    call.resource = Some(format!("access_key:{id}"));
    let headers = request.into_parts().0.headers;
    let result = async {
        let principal = call.authenticate(&state, &headers).await?;
        let key = access_keys(&state)?.get(&principal, &id).await?;
        Ok(ok(access_key_message(&key)))
    }
    .await;
    finish(call, result)
}

/// `UpdateAccessKeyRequest`: `updateMask` is a FieldMask in its JSON form, comma-separated
/// paths.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateAccessKeyRequest {
    /// Only `description`.
    #[serde(alias = "update_mask")]
    #[schema(examples("description"))]
    update_mask: Option<String>,
    #[schema(max_length = 256)]
    description: Option<String>,
}

/// AccessKeyService.Update: the description of a static access key.
#[utoipa::path(
    patch,
    path = "/iam/aws-compatibility/v1/accessKeys/{accessKeyId}",
    operation_id = "AccessKeyService.Update",
    tag = "AccessKeyService",
    params(("accessKeyId" = String, Path, max_length = 50)),
    request_body = UpdateAccessKeyRequest,
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let mut call = start(&state, &request, Method::AccessKeyUpdate);
    call.resource = Some(format!("access_key:{id}"));
    let result = async {
        let principal = call.authenticate(&state, request.headers()).await?;
        let body: UpdateAccessKeyRequest = json_body(request, "UpdateAccessKeyRequest").await?;
        check_key_update_mask(body.update_mask.as_deref())?;
        let operation = access_keys(&state)?
            .update(&principal, &id, body.description.unwrap_or_default())
            .await?;
        Ok(ok(operation::to_message(&operation)))
    }
    .await;
    finish(call, result)
}

/// AccessKeyService.Delete: the key's signatures are refused from then on.
#[utoipa::path(
    delete,
    path = "/iam/aws-compatibility/v1/accessKeys/{accessKeyId}",
    operation_id = "AccessKeyService.Delete",
    tag = "AccessKeyService",
    params(("accessKeyId" = String, Path, max_length = 50)),
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let mut call = start(&state, &request, Method::AccessKeyDelete);
    call.resource = Some(format!("access_key:{id}"));
    let headers = request.into_parts().0.headers;
    let result = async {
        let principal = call.authenticate(&state, &headers).await?;
        let operation = access_keys(&state)?.delete(&principal, &id).await?;
        Ok(ok(operation::to_message(&operation)))
    }
    .await;
    finish(call, result)
}
