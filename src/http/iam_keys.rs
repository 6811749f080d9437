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

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::yandex::{Call, json_body, method_not_allowed, ok, store};
use crate::app::AppState;
use crate::iam::operation;
use crate::iam::service::{CreateKey, Keys, Method, key_message};
use crate::iam::status::Status;
use crate::iam::store::{KeyAlgorithm, PageRequest};
use crate::time::now_unix;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/iam/v1/keys",
            get(list)
                .post(create)
                .fallback(|| async { method_not_allowed("GET, POST") }),
        )
        .route(
            "/iam/v1/keys/{key_id}",
            get(read)
                .patch(update)
                .delete(delete)
                .fallback(|| async { method_not_allowed("GET, PATCH, DELETE") }),
        )
}

fn keys(state: &AppState) -> Result<Keys<'_>, Status> {
    Ok(Keys {
        store: store(state)?,
        authorizer: state.authorizer(),
        quotas: &state.settings().iam.quotas,
        now: now_unix(),
    })
}

/// `KeyFormat`: only `PEM_FILE` exists.
fn check_format(format: Option<&str>) -> Result<(), Status> {
    match format {
        None | Some("" | "PEM_FILE") => Ok(()),
        Some(other) => Err(Status::invalid_argument(
            "invalid_argument",
            format!("format {} is not PEM_FILE", crate::exchange::quote(other)),
        )),
    }
}

/// `CreateKeyRequest` in proto3 JSON (camelCase; the proto's snake_case names are accepted too).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateKeyRequest {
    #[serde(alias = "service_account_id")]
    service_account_id: Option<String>,
    #[serde(default)]
    description: String,
    format: Option<String>,
    #[serde(alias = "key_algorithm")]
    key_algorithm: Option<String>,
}

async fn create(State(state): State<AppState>, request: Request) -> Response {
    let mut call = Call::new(&state, &request, Method::KeyCreate);
    let result = create_key(&state, &mut call, request).await;
    call.finish(result)
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
    check_format(body.format.as_deref())?;
    let algorithm = match body.key_algorithm.as_deref() {
        None | Some("" | "ALGORITHM_UNSPECIFIED") => KeyAlgorithm::default(),
        Some(name) => KeyAlgorithm::parse(name).ok_or_else(|| {
            Status::invalid_argument(
                "invalid_argument",
                format!(
                    "keyAlgorithm {} is not RSA_2048 or RSA_4096",
                    crate::exchange::quote(name)
                ),
            )
        })?,
    };
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
    Ok(ok(json!({
        "key": key_message(&created.key),
        "privateKey": created.private_key.private_key_pem(),
    })))
}

async fn list(State(state): State<AppState>, request: Request) -> Response {
    let mut call = Call::new(&state, &request, Method::KeyList);
    let result = list_keys(&state, &mut call, request).await;
    call.finish(result)
}

async fn list_keys(
    state: &AppState,
    call: &mut Call,
    request: Request,
) -> Result<Response, Status> {
    let principal = call.authenticate(state, request.headers()).await?;
    let mut account = None;
    let mut page = PageRequest::default();
    for (name, value) in form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "serviceAccountId" | "service_account_id" if !value.is_empty() => {
                account = Some(value.into_owned());
            }
            "pageSize" | "page_size" => {
                page.size = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= 1000)
                    .ok_or_else(|| {
                        Status::invalid_argument(
                            "invalid_argument",
                            "pageSize must be a number from 0 to 1000",
                        )
                    })?;
            }
            "pageToken" | "page_token" if !value.is_empty() => {
                if value.chars().count() > 2000 {
                    return Err(Status::invalid_argument(
                        "invalid_argument",
                        "pageToken must be at most 2000 characters",
                    ));
                }
                page.token = Some(value.into_owned());
            }
            "format" => check_format(Some(&value))?,
            _ => {}
        }
    }
    let listed = keys(state)?
        .list(&principal, account.as_deref(), &page)
        .await?;
    let mut body = json!({
        "keys": listed.items.iter().map(key_message).collect::<Vec<Value>>(),
    });
    if let Some(token) = listed.next_page_token {
        body["nextPageToken"] = token.into();
    }
    Ok(ok(body))
}

async fn read(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
    request: Request,
) -> Response {
    let mut call = Call::new(&state, &request, Method::KeyGet);
    call.resource = Some(format!("authorized_key:{key_id}"));
    let headers = request.into_parts().0.headers;
    let result = async {
        let principal = call.authenticate(&state, &headers).await?;
        let key = keys(&state)?.get(&principal, &key_id).await?;
        Ok(ok(key_message(&key)))
    }
    .await;
    call.finish(result)
}

/// `UpdateKeyRequest`: `updateMask` is a FieldMask in its JSON form, comma-separated paths.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateKeyRequest {
    #[serde(alias = "update_mask")]
    update_mask: Option<String>,
    description: Option<String>,
}

async fn update(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
    request: Request,
) -> Response {
    let mut call = Call::new(&state, &request, Method::KeyUpdate);
    call.resource = Some(format!("authorized_key:{key_id}"));
    let result = async {
        let principal = call.authenticate(&state, request.headers()).await?;
        let body: UpdateKeyRequest = json_body(request, "UpdateKeyRequest").await?;
        if let Some(mask) = body.update_mask.as_deref() {
            for path in mask.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if path != "description" {
                    return Err(Status::invalid_argument(
                        "invalid_argument",
                        format!(
                            "updateMask names {}: only description can be updated",
                            crate::exchange::quote(path)
                        ),
                    ));
                }
            }
        }
        let operation = keys(&state)?
            .update(&principal, &key_id, body.description.unwrap_or_default())
            .await?;
        Ok(ok(operation::to_json(&operation)))
    }
    .await;
    call.finish(result)
}

async fn delete(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
    request: Request,
) -> Response {
    let mut call = Call::new(&state, &request, Method::KeyDelete);
    call.resource = Some(format!("authorized_key:{key_id}"));
    let headers = request.into_parts().0.headers;
    let result = async {
        let principal = call.authenticate(&state, &headers).await?;
        let operation = keys(&state)?.delete(&principal, &key_id).await?;
        Ok(ok(operation::to_json(&operation)))
    }
    .await;
    call.finish(result)
}
