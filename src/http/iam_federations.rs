//! `FederationService` and `FederatedCredentialService` at their Yandex REST paths.
//!
//! | route | method |
//! |---|---|
//! | `GET /iam/v1/workload/oidc/federations?folderId=&pageSize=&pageToken=` | List → `{"federations","nextPageToken"}` |
//! | `POST /iam/v1/workload/oidc/federations` | Create → the finished operation (response: the federation) |
//! | `GET /iam/v1/workload/oidc/federations/{federationId}` | Get → the federation |
//! | `PATCH /iam/v1/workload/oidc/federations/{federationId}` | Update → the finished operation |
//! | `DELETE /iam/v1/workload/oidc/federations/{federationId}` | Delete → the finished operation |
//! | `GET …/federations/{federationId}:listAccessBindings`, `POST …:setAccessBindings`, `POST …:updateAccessBindings` | the federation's access bindings ([`super::iam_bindings`]) |
//! | `GET /iam/v1/workload/federatedCredentials?serviceAccountId=&pageSize=&pageToken=` | List → `{"federatedCredentials","nextPageToken"}` |
//! | `POST /iam/v1/workload/federatedCredentials` | Create → the finished operation (response: the credential) |
//! | `GET /iam/v1/workload/federatedCredentials/{federatedCredentialId}` | Get → the credential |
//! | `DELETE /iam/v1/workload/federatedCredentials/{federatedCredentialId}` | Delete → the finished operation |
//!
//! Bodies are proto3 JSON (camelCase; the proto's snake_case names are accepted too); an
//! unknown field is INVALID_ARGUMENT. The methods themselves are [`crate::iam::federations_api`].

use axum::extract::{Path, Request, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::iam_bindings::{self, split_verb};
use super::yandex::{Endpoint, Refusals, finish, json_body, list_query, ok, same_id, start};
use crate::app::AppState;
use crate::app::call::federations;
use crate::iam::ResourceKind;
use crate::iam::federations_api::{
    CreateFederatedCredential, CreateFederation, FederatedCredentialMessage, FederationMessage,
    UpdateFederation, credential_message, federation_message,
};
use crate::iam::operation::{self, OperationMessage};
use crate::iam::service::Method;
use crate::iam::store::Labels;

pub const FEDERATIONS: &str = "/iam/v1/workload/oidc/federations";
pub const CREDENTIALS: &str = "/iam/v1/workload/federatedCredentials";

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at(FEDERATIONS).get(list).post(create),
        Endpoint::at("/iam/v1/workload/oidc/federations/{federationId}")
            .get(read_or_verb)
            .access_bindings(
                |State(state): State<AppState>, Path(segment): Path<String>, request: Request| {
                    iam_bindings::verb_only(state, ResourceKind::Federation, segment, request)
                },
            )
            .patch(update)
            .delete(delete),
        Endpoint::at(CREDENTIALS)
            .get(list_credentials)
            .post(create_credential),
        Endpoint::at("/iam/v1/workload/federatedCredentials/{federatedCredentialId}")
            .get(read_credential)
            .delete(delete_credential),
    ]
}

/// `ListFederationsResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ListFederationsResponse {
    federations: Vec<FederationMessage>,
    /// Present when another page follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// `ListFederatedCredentialsResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ListFederatedCredentialsResponse {
    federated_credentials: Vec<FederatedCredentialMessage>,
    /// Present when another page follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

#[utoipa::path(
    get,
    path = "/iam/v1/workload/oidc/federations",
    operation_id = "FederationService.List",
    tag = "FederationService",
    params(("folderId" = String, Query), ("pageSize" = Option<i64>, Query, description = "0 to 1000; default 100"), ("pageToken" = Option<String>, Query)),
    responses((status = 200, body = ListFederationsResponse), Refusals)
)]
async fn list(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::FederationList);
    let result = async {
        let request = request;
        let principal = call.authenticate(&state, request.headers()).await?;
        let (folder, page) = list_query(&request, ["folderId", "folder_id"])?;
        call.resource = Some(format!("folder:{folder}"));
        let listed = federations(&state)?
            .list(&principal, &folder, &page)
            .await?;
        Ok(ok(ListFederationsResponse {
            federations: listed.items.iter().map(federation_message).collect(),
            next_page_token: listed.next_page_token,
        }))
    }
    .await;
    finish(call, result)
}

/// `CreateFederationRequest` in proto3 JSON.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateFederationRequest {
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
    disabled: bool,
    /// 1 to 100 values of 1 to 255 characters.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 100)]
    audiences: Vec<String>,
    /// An absolute `https://` URL of at most 8000 characters.
    #[serde(default)]
    #[schema(max_length = 8000, examples("https://issuer.example"))]
    issuer: String,
    #[serde(default, alias = "jwks_url")]
    jwks_url: String,
    #[serde(default)]
    #[schema(schema_with = crate::iam::validate::labels_schema)]
    labels: Labels,
}

#[utoipa::path(
    post,
    path = "/iam/v1/workload/oidc/federations",
    operation_id = "FederationService.Create",
    tag = "FederationService",
    request_body = CreateFederationRequest,
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn create(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::FederationCreate);
    let result = async {
        let principal = call.authenticate(&state, request.headers()).await?;
        let body: CreateFederationRequest = json_body(request, "CreateFederationRequest").await?;
        call.resource = Some(format!("folder:{}", body.folder_id));
        let operation = federations(&state)?
            .create(
                &principal,
                CreateFederation {
                    folder_id: body.folder_id,
                    name: body.name,
                    description: body.description,
                    disabled: body.disabled,
                    audiences: body.audiences,
                    issuer: body.issuer,
                    jwks_url: body.jwks_url,
                    labels: body.labels,
                },
            )
            .await?;
        call.resource = Some(format!("federation:{}", operation.resource_id));
        Ok(ok(operation::to_message(&operation)))
    }
    .await;
    finish(call, result)
}

/// `GET …/federations/{id}`: the federation, or with `:listAccessBindings` its bindings.
#[utoipa::path(
    get,
    path = "/iam/v1/workload/oidc/federations/{federationId}",
    operation_id = "FederationService.Get",
    tag = "FederationService",
    params(("federationId" = String, Path)),
    responses((status = 200, body = FederationMessage), Refusals)
)]
async fn read_or_verb(
    State(state): State<AppState>,
    Path(segment): Path<String>,
    request: Request,
) -> Response {
    if let Some((id, verb)) = split_verb(&segment) {
        return iam_bindings::dispatch_verb(&state, request, ResourceKind::Federation, id, verb)
            .await;
    }
    let mut call = start(&state, &request, Method::FederationGet);
    call.resource = Some(format!("federation:{segment}"));
    let headers = request.into_parts().0.headers;
    let result = async {
        let principal = call.authenticate(&state, &headers).await?;
        let federation = federations(&state)?.get(&principal, &segment).await?;
        Ok(ok(federation_message(&federation)))
    }
    .await;
    finish(call, result)
}

/// `UpdateFederationRequest` in proto3 JSON; `updateMask` is a FieldMask's JSON form,
/// comma-separated paths.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateFederationRequest {
    #[serde(default, alias = "federation_id")]
    federation_id: Option<String>,
    /// Comma-separated field paths; without one, the fields sent change. `issuer` cannot.
    #[serde(alias = "update_mask")]
    #[schema(examples("description,audiences"))]
    update_mask: Option<String>,
    #[schema(pattern = "^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")]
    name: Option<String>,
    #[schema(max_length = 256)]
    description: Option<String>,
    disabled: Option<bool>,
    audiences: Option<Vec<String>>,
    #[serde(alias = "jwks_url")]
    jwks_url: Option<String>,
    #[schema(schema_with = crate::iam::validate::labels_schema, required = false)]
    labels: Option<Labels>,
}

#[utoipa::path(
    patch,
    path = "/iam/v1/workload/oidc/federations/{federationId}",
    operation_id = "FederationService.Update",
    tag = "FederationService",
    params(("federationId" = String, Path)),
    request_body = UpdateFederationRequest,
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let mut call = start(&state, &request, Method::FederationUpdate);
    call.resource = Some(format!("federation:{id}"));
    let result = async {
        let principal = call.authenticate(&state, request.headers()).await?;
        let body: UpdateFederationRequest = json_body(request, "UpdateFederationRequest").await?;
        same_id(body.federation_id.as_deref(), &id, "federationId")?;
        let operation = federations(&state)?
            .update(
                &principal,
                &id,
                UpdateFederation {
                    update_mask: body.update_mask,
                    name: body.name,
                    description: body.description,
                    disabled: body.disabled,
                    audiences: body.audiences,
                    jwks_url: body.jwks_url,
                    labels: body.labels,
                },
            )
            .await?;
        Ok(ok(operation::to_message(&operation)))
    }
    .await;
    finish(call, result)
}

#[utoipa::path(
    delete,
    path = "/iam/v1/workload/oidc/federations/{federationId}",
    operation_id = "FederationService.Delete",
    tag = "FederationService",
    params(("federationId" = String, Path)),
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let mut call = start(&state, &request, Method::FederationDelete);
    call.resource = Some(format!("federation:{id}"));
    let headers = request.into_parts().0.headers;
    let result = async {
        let principal = call.authenticate(&state, &headers).await?;
        let operation = federations(&state)?.delete(&principal, &id).await?;
        Ok(ok(operation::to_message(&operation)))
    }
    .await;
    finish(call, result)
}

#[utoipa::path(
    get,
    path = "/iam/v1/workload/federatedCredentials",
    operation_id = "FederatedCredentialService.List",
    tag = "FederatedCredentialService",
    params(("serviceAccountId" = String, Query), ("pageSize" = Option<i64>, Query, description = "0 to 1000; default 100"), ("pageToken" = Option<String>, Query)),
    responses((status = 200, body = ListFederatedCredentialsResponse), Refusals)
)]
async fn list_credentials(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::FederatedCredentialList);
    let result = async {
        let request = request;
        let principal = call.authenticate(&state, request.headers()).await?;
        let (account, page) = list_query(&request, ["serviceAccountId", "service_account_id"])?;
        call.resource = Some(format!("service_account:{account}"));
        let listed = federations(&state)?
            .list_credentials(&principal, &account, &page)
            .await?;
        Ok(ok(ListFederatedCredentialsResponse {
            federated_credentials: listed.items.iter().map(credential_message).collect(),
            next_page_token: listed.next_page_token,
        }))
    }
    .await;
    finish(call, result)
}

/// `CreateFederatedCredentialRequest` in proto3 JSON.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateFederatedCredentialRequest {
    #[serde(default, alias = "service_account_id")]
    #[schema(required = true, min_length = 1, max_length = 50)]
    service_account_id: String,
    #[serde(default, alias = "federation_id")]
    #[schema(required = true, min_length = 1, max_length = 50)]
    federation_id: String,
    /// Compared with the token's `sub` exactly.
    #[serde(default, alias = "external_subject_id")]
    #[schema(required = true, min_length = 1, max_length = 1000)]
    external_subject_id: String,
}

#[utoipa::path(
    post,
    path = "/iam/v1/workload/federatedCredentials",
    operation_id = "FederatedCredentialService.Create",
    tag = "FederatedCredentialService",
    request_body = CreateFederatedCredentialRequest,
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn create_credential(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::FederatedCredentialCreate);
    let result = async {
        let principal = call.authenticate(&state, request.headers()).await?;
        let body: CreateFederatedCredentialRequest =
            json_body(request, "CreateFederatedCredentialRequest").await?;
        call.resource = Some(format!("service_account:{}", body.service_account_id));
        let operation = federations(&state)?
            .create_credential(
                &principal,
                CreateFederatedCredential {
                    service_account_id: body.service_account_id,
                    federation_id: body.federation_id,
                    external_subject_id: body.external_subject_id,
                },
            )
            .await?;
        call.resource = Some(format!("federated_credential:{}", operation.resource_id));
        Ok(ok(operation::to_message(&operation)))
    }
    .await;
    finish(call, result)
}

#[utoipa::path(
    get,
    path = "/iam/v1/workload/federatedCredentials/{federatedCredentialId}",
    operation_id = "FederatedCredentialService.Get",
    tag = "FederatedCredentialService",
    params(("federatedCredentialId" = String, Path)),
    responses((status = 200, body = FederatedCredentialMessage), Refusals)
)]
async fn read_credential(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let mut call = start(&state, &request, Method::FederatedCredentialGet);
    call.resource = Some(format!("federated_credential:{id}"));
    let headers = request.into_parts().0.headers;
    let result = async {
        let principal = call.authenticate(&state, &headers).await?;
        let credential = federations(&state)?.get_credential(&principal, &id).await?;
        Ok(ok(credential_message(&credential)))
    }
    .await;
    finish(call, result)
}

#[utoipa::path(
    delete,
    path = "/iam/v1/workload/federatedCredentials/{federatedCredentialId}",
    operation_id = "FederatedCredentialService.Delete",
    tag = "FederatedCredentialService",
    params(("federatedCredentialId" = String, Path)),
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn delete_credential(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let mut call = start(&state, &request, Method::FederatedCredentialDelete);
    call.resource = Some(format!("federated_credential:{id}"));
    let headers = request.into_parts().0.headers;
    let result = async {
        let principal = call.authenticate(&state, &headers).await?;
        let operation = federations(&state)?
            .delete_credential(&principal, &id)
            .await?;
        Ok(ok(operation::to_message(&operation)))
    }
    .await;
    finish(call, result)
}
