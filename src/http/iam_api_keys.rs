//! `ApiKeyService` at its Yandex REST paths: API keys of service accounts.
//!
//! | route | method |
//! |---|---|
//! | `POST /iam/v1/apiKeys` | Create: `{"serviceAccountId","description","scopes","scope","expiresAt"}` → `{"apiKey","secret"}` |
//! | `GET /iam/v1/apiKeys?serviceAccountId=&pageSize=&pageToken=` | List → `{"apiKeys","nextPageToken"}` |
//! | `GET /iam/v1/apiKeys/{apiKeyId}` | Get → the key |
//! | `PATCH /iam/v1/apiKeys/{apiKeyId}` | Update: `{"updateMask","description","scopes","expiresAt"}` → the finished operation |
//! | `DELETE /iam/v1/apiKeys/{apiKeyId}` | Delete → the finished operation |
//! | `GET /iam/v1/apiKeyScopes?pageSize=&pageToken=` | ListScopes → `{"scopes","nextPageToken"}` |
//!
//! Bodies are proto3 JSON (camelCase; the proto's snake_case names are accepted too); an
//! unknown field is INVALID_ARGUMENT; times are RFC 3339. The methods themselves are
//! [`crate::iam::api_keys`]. The secret is in the Create answer and nowhere else: not stored,
//! not logged, not audited.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::yandex::{Call, Endpoint, Refusals, finish, json_body, list_query, ok, same_id, start};
use crate::app::AppState;
use crate::app::call::api_keys;
use crate::iam::api_keys::{ApiKeyMessage, CreateApiKey, ExpiresAt, UpdateApiKey, api_key_message};
use crate::iam::operation::{self, OperationMessage};
use crate::iam::service::Method;
use crate::iam::status::Status;

pub const API_KEYS: &str = "/iam/v1/apiKeys";

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at(API_KEYS).get(list).post(create),
        Endpoint::at("/iam/v1/apiKeys/{apiKeyId}")
            .get(read)
            .patch(update)
            .delete(delete),
        Endpoint::at("/iam/v1/apiKeyScopes").get(list_scopes),
    ]
}

/// An RFC 3339 `expiresAt`, when sent.
fn expires_at(sent: Option<&str>) -> Result<Option<ExpiresAt>, Status> {
    sent.map(ExpiresAt::parse).transpose()
}

/// `CreateApiKeyRequest` in proto3 JSON.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateApiKeyRequest {
    /// Default: the caller's own service account.
    #[serde(default, alias = "service_account_id")]
    #[schema(max_length = 50)]
    service_account_id: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    description: String,
    /// Deprecated: one more scope.
    #[serde(default)]
    #[schema(max_length = 256)]
    scope: Option<String>,
    /// Scopes of `GET /iam/v1/apiKeyScopes`, each once; none: the key is not limited.
    #[serde(default)]
    #[schema(max_items = 100, examples("yc.lockbox.payload.read"))]
    scopes: Vec<String>,
    /// RFC 3339; in the future, at most 2105-12-31T23:59:59.999999999Z. Absent: never.
    #[serde(default, alias = "expires_at")]
    #[schema(format = DateTime, examples("2030-01-01T00:00:00Z"))]
    expires_at: Option<String>,
}

/// `CreateApiKeyResponse`: the new key and, in this answer only, its secret.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreateApiKeyResponse<'a> {
    api_key: ApiKeyMessage,
    /// What callers send as `Authorization: Api-Key <secret>`. Shown once.
    secret: &'a str,
}

/// `ListApiKeysResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ListApiKeysResponse {
    api_keys: Vec<ApiKeyMessage>,
    /// Present when another page follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// `ListApiKeyScopesResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ListApiKeyScopesResponse {
    scopes: Vec<String>,
    /// Present when another page follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// ApiKeyService.Create: a new API key for a service account.
#[utoipa::path(
    post,
    path = "/iam/v1/apiKeys",
    operation_id = "ApiKeyService.Create",
    tag = "ApiKeyService",
    request_body = CreateApiKeyRequest,
    responses((status = 200, body = CreateApiKeyResponse), Refusals)
)]
async fn create(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::ApiKeyCreate);
    let result = create_key(&state, &mut call, request).await;
    finish(call, result)
}

async fn create_key(
    state: &AppState,
    call: &mut Call,
    request: Request,
) -> Result<Response, Status> {
    let principal = call.authenticate(state, request.headers()).await?;
    let body: CreateApiKeyRequest = json_body(request, "CreateApiKeyRequest").await?;
    let account = body
        .service_account_id
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| principal.service_account_id.clone());
    call.resource = Some(format!("service_account:{account}"));
    let expires_at = expires_at(body.expires_at.as_deref())?;
    let created = api_keys(state)?
        .create(
            &principal,
            CreateApiKey {
                service_account_id: Some(account),
                description: body.description,
                scope: body.scope,
                scopes: body.scopes,
                expires_at,
            },
        )
        .await?;
    call.resource = Some(format!("api_key:{}", created.key.id));
    Ok(ok(CreateApiKeyResponse {
        api_key: api_key_message(&created.key),
        secret: created.secret.expose(),
    }))
}

/// ApiKeyService.List: a service account's API keys.
#[utoipa::path(
    get,
    path = "/iam/v1/apiKeys",
    operation_id = "ApiKeyService.List",
    tag = "ApiKeyService",
    params(
        ("serviceAccountId" = Option<String>, Query, max_length = 50, description = "Default: the caller's own service account"),
        ("pageSize" = Option<i64>, Query, minimum = 0, maximum = 1000, description = "0 to 1000; default 100"),
        ("pageToken" = Option<String>, Query, max_length = 2000),
    ),
    responses((status = 200, body = ListApiKeysResponse), Refusals)
)]
async fn list(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::ApiKeyList);
    let result = async {
        let request = request;
        let principal = call.authenticate(&state, request.headers()).await?;
        let (account, page) = list_query(&request, ["serviceAccountId", "service_account_id"])?;
        let account = Some(account).filter(|id| !id.is_empty());
        call.resource = Some(format!(
            "service_account:{}",
            account.as_deref().unwrap_or(&principal.service_account_id)
        ));
        let listed = api_keys(&state)?
            .list(&principal, account.as_deref(), &page)
            .await?;
        Ok(ok(ListApiKeysResponse {
            api_keys: listed.items.iter().map(api_key_message).collect(),
            next_page_token: listed.next_page_token,
        }))
    }
    .await;
    finish(call, result)
}

/// ApiKeyService.Get: the key, without its secret.
#[utoipa::path(
    get,
    path = "/iam/v1/apiKeys/{apiKeyId}",
    operation_id = "ApiKeyService.Get",
    tag = "ApiKeyService",
    params(("apiKeyId" = String, Path)),
    responses((status = 200, body = ApiKeyMessage), Refusals)
)]
async fn read(State(state): State<AppState>, Path(id): Path<String>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::ApiKeyGet);
    call.resource = Some(format!("api_key:{id}"));
    let headers = request.into_parts().0.headers;
    let result = async {
        let principal = call.authenticate(&state, &headers).await?;
        let key = api_keys(&state)?.get(&principal, &id).await?;
        Ok(ok(api_key_message(&key)))
    }
    .await;
    finish(call, result)
}

/// `UpdateApiKeyRequest` in proto3 JSON; `updateMask` is a FieldMask's JSON form,
/// comma-separated paths.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateApiKeyRequest {
    #[serde(default, alias = "api_key_id")]
    api_key_id: Option<String>,
    /// Comma-separated field paths of `description`, `scopes`, `expiresAt`; without one, the
    /// fields sent change.
    #[serde(alias = "update_mask")]
    #[schema(examples("description,scopes"))]
    update_mask: Option<String>,
    #[schema(max_length = 256)]
    description: Option<String>,
    /// 1 to 100 scopes, each once.
    #[schema(max_items = 100)]
    scopes: Option<Vec<String>>,
    /// RFC 3339; in the future. Named in the mask but not sent: the key never expires.
    #[serde(alias = "expires_at")]
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// ApiKeyService.Update: description, scopes and expiry of a key.
#[utoipa::path(
    patch,
    path = "/iam/v1/apiKeys/{apiKeyId}",
    operation_id = "ApiKeyService.Update",
    tag = "ApiKeyService",
    params(("apiKeyId" = String, Path)),
    request_body = UpdateApiKeyRequest,
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let mut call = start(&state, &request, Method::ApiKeyUpdate);
    call.resource = Some(format!("api_key:{id}"));
    let result = async {
        let principal = call.authenticate(&state, request.headers()).await?;
        let body: UpdateApiKeyRequest = json_body(request, "UpdateApiKeyRequest").await?;
        same_id(body.api_key_id.as_deref(), &id, "apiKeyId")?;
        let update = UpdateApiKey {
            update_mask: body.update_mask,
            description: body.description,
            scopes: body.scopes,
            expires_at: expires_at(body.expires_at.as_deref())?,
        };
        let operation = api_keys(&state)?.update(&principal, &id, update).await?;
        Ok(ok(operation::to_message(&operation)))
    }
    .await;
    finish(call, result)
}

/// ApiKeyService.Delete: from its answer on, this gateway refuses the key.
#[utoipa::path(
    delete,
    path = "/iam/v1/apiKeys/{apiKeyId}",
    operation_id = "ApiKeyService.Delete",
    tag = "ApiKeyService",
    params(("apiKeyId" = String, Path)),
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let mut call = start(&state, &request, Method::ApiKeyDelete);
    call.resource = Some(format!("api_key:{id}"));
    let headers = request.into_parts().0.headers;
    let result = async {
        let principal = call.authenticate(&state, &headers).await?;
        let operation = api_keys(&state)?.delete(&principal, &id).await?;
        Ok(ok(operation::to_message(&operation)))
    }
    .await;
    finish(call, result)
}

/// ApiKeyService.ListScopes: the scopes API keys may be limited to (`[[api_key_scopes]]`).
#[utoipa::path(
    get,
    path = "/iam/v1/apiKeyScopes",
    operation_id = "ApiKeyService.ListScopes",
    tag = "ApiKeyService",
    params(
        ("pageSize" = Option<i64>, Query, minimum = 0, maximum = 1000, description = "0 to 1000; default 100"),
        ("pageToken" = Option<String>, Query, max_length = 2000),
    ),
    responses((status = 200, body = ListApiKeyScopesResponse), Refusals)
)]
async fn list_scopes(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::ApiKeyListScopes);
    let result = async {
        let request = request;
        let principal = call.authenticate(&state, request.headers()).await?;
        let (_, page) = list_query(&request, ["", ""])?;
        let listed = api_keys(&state)?.list_scopes(&principal, &page)?;
        Ok(ok(ListApiKeyScopesResponse {
            scopes: listed.items,
            next_page_token: listed.next_page_token,
        }))
    }
    .await;
    finish(call, result)
}
