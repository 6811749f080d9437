//! `KeyService` at its Yandex REST paths: authorized keys of service accounts.
//!
//! | route | method |
//! |---|---|
//! | `POST /iam/v1/keys` | Create: `{"serviceAccountId","description","format","keyAlgorithm"}` → `{"key","privateKey"}` |
//! | `GET /iam/v1/keys?serviceAccountId=&pageSize=&pageToken=` | List → `{"keys","nextPageToken"}` |
//! | `GET /iam/v1/keys/{keyId}` | Get → the key |
//! | `PATCH /iam/v1/keys/{keyId}` | Update: `{"updateMask","description"}` → the finished operation |
//! | `DELETE /iam/v1/keys/{keyId}` | Delete → the finished operation |
//!
//! Every call is authenticated by its `Authorization: Bearer` IAM token ([`Call::authenticate`])
//! and then authorized by [`crate::iam::service`]. The private key is in the Create answer and
//! nowhere else: not stored, not logged, not audited.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::yandex::{Call, Endpoint, Refusals, finish, json_body, ok, start};
use crate::app::AppState;
use crate::app::call::keys;
use crate::iam::operation::{self, OperationMessage};
use crate::iam::service::{
    CreateKey, KeyMessage, Method, check_key_format, check_key_update_mask, key_algorithm,
    key_message, key_page,
};
use crate::iam::status::Status;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at("/iam/v1/keys").get(list).post(create),
        Endpoint::at("/iam/v1/keys/{keyId}")
            .get(read)
            .patch(update)
            .delete(delete),
    ]
}

/// `CreateKeyRequest` in proto3 JSON (camelCase; the proto's snake_case names are accepted too).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateKeyRequest {
    /// Default: the caller's own service account.
    #[serde(alias = "service_account_id")]
    service_account_id: Option<String>,
    #[serde(default)]
    description: String,
    /// Only `PEM_FILE`.
    #[schema(examples("PEM_FILE"))]
    format: Option<String>,
    /// `RSA_2048` (the default) or `RSA_4096`.
    #[serde(alias = "key_algorithm")]
    #[schema(examples("RSA_2048", "RSA_4096"))]
    key_algorithm: Option<String>,
}

/// `CreateKeyResponse`: the new key and, in this answer only, its private half.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreateKeyResponse<'a> {
    key: KeyMessage,
    /// The PKCS#8 PEM of the private key.
    private_key: &'a str,
}

/// `ListKeysResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ListKeysResponse {
    keys: Vec<KeyMessage>,
    /// Present when another page follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// KeyService.Create: a new authorized key for a service account.
#[utoipa::path(
    post,
    path = "/iam/v1/keys",
    operation_id = "KeyService.Create",
    tag = "KeyService",
    request_body = CreateKeyRequest,
    responses((status = 200, body = CreateKeyResponse), Refusals)
)]
async fn create(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::KeyCreate);
    let result = create_key(&state, &mut call, request).await;
    finish(call, result)
}

async fn create_key(
    state: &AppState,
    call: &mut Call,
    request: Request,
) -> Result<Response, Status> {
    let principal = call.authenticate(state, request.headers()).await?;
    let body: CreateKeyRequest = json_body(request, "CreateKeyRequest").await?;
    let account = body
        .service_account_id
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| principal.service_account_id.clone());
    call.resource = Some(format!("service_account:{account}"));
    check_key_format(body.format.as_deref())?;
    let algorithm = key_algorithm(body.key_algorithm.as_deref())?;
    let created = keys(state)?
        .create(
            &principal,
            CreateKey {
                service_account_id: Some(account),
                description: body.description,
                algorithm,
            },
        )
        .await?;
    call.resource = Some(format!("authorized_key:{}", created.key.id));
    Ok(ok(CreateKeyResponse {
        key: key_message(&created.key),
        private_key: created.private_key.private_key_pem(),
    }))
}

/// KeyService.List: a service account's authorized keys.
#[utoipa::path(
    get,
    path = "/iam/v1/keys",
    operation_id = "KeyService.List",
    tag = "KeyService",
    params(
        ("serviceAccountId" = Option<String>, Query, description = "Default: the caller's own service account"),
        ("pageSize" = Option<u32>, Query, maximum = 1000, description = "0 to 1000; default 100"),
        ("pageToken" = Option<String>, Query, max_length = 2000),
        ("format" = Option<String>, Query, description = "Only `PEM_FILE`"),
    ),
    responses((status = 200, body = ListKeysResponse), Refusals)
)]
async fn list(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::KeyList);
    let result = list_keys(&state, &mut call, request).await;
    finish(call, result)
}

async fn list_keys(
    state: &AppState,
    call: &mut Call,
    request: Request,
) -> Result<Response, Status> {
    let principal = call.authenticate(state, request.headers()).await?;
    let mut account = None;
    let (mut size, mut token) = (0, String::new());
    for (name, value) in form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "serviceAccountId" | "service_account_id" if !value.is_empty() => {
                account = Some(value.into_owned());
            }
            "pageSize" | "page_size" => {
                // Not a number: out of range, like a negative one.
                size = value.parse::<i64>().unwrap_or(-1);
                key_page(size, "")?;
            }
            "pageToken" | "page_token" if !value.is_empty() => {
                key_page(0, &value)?;
                token = value.into_owned();
            }
            "format" => check_key_format(Some(&value))?,
            _ => {}
        }
    }
    let page = key_page(size, &token)?;
    let listed = keys(state)?
        .list(&principal, account.as_deref(), &page)
        .await?;
    Ok(ok(ListKeysResponse {
        keys: listed.items.iter().map(key_message).collect(),
        next_page_token: listed.next_page_token,
    }))
}

/// KeyService.Get.
#[utoipa::path(
    get,
    path = "/iam/v1/keys/{keyId}",
    operation_id = "KeyService.Get",
    tag = "KeyService",
    params(("keyId" = String, Path)),
    responses((status = 200, body = KeyMessage), Refusals)
)]
async fn read(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
    request: Request,
) -> Response {
    let mut call = start(&state, &request, Method::KeyGet);
    call.resource = Some(format!("authorized_key:{key_id}"));
    let headers = request.into_parts().0.headers;
    let result = async {
        let principal = call.authenticate(&state, &headers).await?;
        let key = keys(&state)?.get(&principal, &key_id).await?;
        Ok(ok(key_message(&key)))
    }
    .await;
    finish(call, result)
}

/// `UpdateKeyRequest`: `updateMask` is a FieldMask in its JSON form, comma-separated paths.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateKeyRequest {
    /// Only `description`.
    #[serde(alias = "update_mask")]
    #[schema(examples("description"))]
    update_mask: Option<String>,
    description: Option<String>,
}

/// KeyService.Update: the description of a key.
#[utoipa::path(
    patch,
    path = "/iam/v1/keys/{keyId}",
    operation_id = "KeyService.Update",
    tag = "KeyService",
    params(("keyId" = String, Path)),
    request_body = UpdateKeyRequest,
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn update(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
    request: Request,
) -> Response {
    let mut call = start(&state, &request, Method::KeyUpdate);
    call.resource = Some(format!("authorized_key:{key_id}"));
    let result = async {
        let principal = call.authenticate(&state, request.headers()).await?;
        let body: UpdateKeyRequest = json_body(request, "UpdateKeyRequest").await?;
        check_key_update_mask(body.update_mask.as_deref())?;
        let operation = keys(&state)?
            .update(&principal, &key_id, body.description.unwrap_or_default())
            .await?;
        Ok(ok(operation::to_message(&operation)))
    }
    .await;
    finish(call, result)
}

/// KeyService.Delete.
#[utoipa::path(
    delete,
    path = "/iam/v1/keys/{keyId}",
    operation_id = "KeyService.Delete",
    tag = "KeyService",
    params(("keyId" = String, Path)),
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn delete(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
    request: Request,
) -> Response {
    let mut call = start(&state, &request, Method::KeyDelete);
    call.resource = Some(format!("authorized_key:{key_id}"));
    let headers = request.into_parts().0.headers;
    let result = async {
        let principal = call.authenticate(&state, &headers).await?;
        let operation = keys(&state)?.delete(&principal, &key_id).await?;
        Ok(ok(operation::to_message(&operation)))
    }
    .await;
    finish(call, result)
}
