//! `POST /iam/v1/tokens` (`IamTokenService.Create`): a service account's PS256 JWT, signed with
//! one of its authorized keys, for an IAM token `{"iamToken","expiresAt"}`. The method is
//! [`crate::app::iam_tokens`]'s (the rules [`crate::iam::tokens`]'s); the client IP's rate limit
//! applies, as at the token exchange.
//!
//! `POST /iam/v1/tokens:createForServiceAccount` (`IamTokenService.CreateForServiceAccount`):
//! impersonation — a caller holding `iam.serviceAccounts.tokenCreator` on a service account
//! gets an IAM token of it, whose `act` names the caller ([`crate::app::iam_tokens`]).
//!
//! `POST /iam/v1/tokens:revoke` (`IamTokenService.Revoke`): puts a token of the gateway (an
//! IAM token or an exchanged access token) on the revocation list, by its `jti`; from then on
//! no management call and no introspection accepts it, on any replica
//! (`docs/design.md#revocation`).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::yandex::{Call, Endpoint, Refusals, finish, json_body, ok, start, store};
use crate::app::AppState;
use crate::app::iam_tokens::{self, CreateIamToken};
use crate::iam::service::Method;
use crate::iam::status::Status;
use crate::time::rfc3339;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at("/iam/v1/tokens").post(create),
        Endpoint::at("/iam/v1/tokens:createForServiceAccount").post(create_for_service_account),
        Endpoint::at("/iam/v1/tokens:revoke").post(revoke),
    ]
}

/// `RevokeIamTokenRequest`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RevokeIamTokenRequest {
    /// The token to revoke: an IAM token or an exchanged access token of this gateway, at
    /// most 4096 characters.
    #[serde(rename = "iamToken", alias = "iam_token")]
    iam_token: String,
}

/// `RevokeIamTokenResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RevokeIamTokenResponse {
    /// The service account the revoked token spoke for.
    subject_id: String,
}

/// IamTokenService.Revoke: the token is refused from now on, on every replica.
#[utoipa::path(
    post,
    path = "/iam/v1/tokens:revoke",
    operation_id = "IamTokenService.Revoke",
    tag = "IamTokenService",
    request_body = RevokeIamTokenRequest,
    responses((status = 200, body = RevokeIamTokenResponse), Refusals)
)]
async fn revoke(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::IamTokenRevoke);
    let result = revoke_token(&state, &mut call, request).await;
    finish(call, result)
}

async fn revoke_token(
    state: &AppState,
    call: &mut Call,
    request: Request,
) -> Result<Response, Status> {
    let principal = call.authenticate(state, request.headers()).await?;
    let body: RevokeIamTokenRequest = json_body(request, "RevokeIamTokenRequest").await?;
    let subject_id = iam_tokens::revoke(state, call, &principal, &body.iam_token).await?;
    Ok(ok(RevokeIamTokenResponse { subject_id }))
}

/// `CreateIamTokenForServiceAccountRequest`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateIamTokenForServiceAccountRequest {
    /// The service account to get a token of (at most 50 characters).
    #[serde(rename = "serviceAccountId", alias = "service_account_id")]
    #[schema(max_length = 50)]
    service_account_id: String,
}

/// IamTokenService.CreateForServiceAccount: an IAM token of a service account, for a caller
/// holding `iam.serviceAccounts.tokenCreator` on it.
#[utoipa::path(
    post,
    path = "/iam/v1/tokens:createForServiceAccount",
    operation_id = "IamTokenService.CreateForServiceAccount",
    tag = "IamTokenService",
    request_body = CreateIamTokenForServiceAccountRequest,
    responses((status = 200, body = CreateIamTokenResponse), Refusals)
)]
async fn create_for_service_account(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::IamTokenCreateForServiceAccount);
    let result = async {
        let principal = call.authenticate(&state, request.headers()).await?;
        let body: CreateIamTokenForServiceAccountRequest =
            json_body(request, "CreateIamTokenForServiceAccountRequest").await?;
        let issued = iam_tokens::create_for_service_account(
            &state,
            &mut call,
            &principal,
            &body.service_account_id,
        )
        .await?;
        Ok(ok(CreateIamTokenResponse {
            iam_token: issued.iam_token,
            expires_at: rfc3339(issued.expires_at),
        }))
    }
    .await;
    let mut response = finish(call, result);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `CreateIamTokenRequest`: exactly one of its two identities.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateIamTokenRequest {
    /// The service account's PS256 JWT, at most 8000 characters.
    jwt: Option<String>,
    /// Refused: the gateway issues IAM tokens for service accounts only.
    #[serde(
        rename = "yandexPassportOauthToken",
        alias = "yandex_passport_oauth_token"
    )]
    passport_token: Option<String>,
}

/// `CreateIamTokenResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreateIamTokenResponse {
    /// The gateway's access token for the service account: `Authorization: Bearer` of the
    /// management calls.
    iam_token: String,
    /// RFC 3339, UTC.
    expires_at: String,
}

/// IamTokenService.Create: an IAM token for a service account's JWT.
#[utoipa::path(
    post,
    path = "/iam/v1/tokens",
    operation_id = "IamTokenService.Create",
    tag = "IamTokenService",
    security(()),
    request_body = CreateIamTokenRequest,
    responses((status = 200, body = CreateIamTokenResponse), Refusals)
)]
async fn create(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::IamTokenCreate);
    let mut retry_after = None;
    let result = issue(&state, &mut call, request, &mut retry_after).await;
    let mut response = finish(call, result);
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

async fn issue(
    state: &AppState,
    call: &mut Call,
    request: Request,
    retry_after: &mut Option<u64>,
) -> Result<Response, Status> {
    if let Err((status, seconds)) = iam_tokens::rate_limit(state, call) {
        *retry_after = seconds;
        return Err(status);
    }
    store(state)?;
    let body: CreateIamTokenRequest = json_body(request, "CreateIamTokenRequest").await?;
    let issued = iam_tokens::create(
        state,
        call,
        CreateIamToken {
            jwt: body.jwt,
            yandex_passport_oauth_token: body.passport_token,
        },
    )
    .await?;
    Ok(ok(CreateIamTokenResponse {
        iam_token: issued.iam_token,
        expires_at: rfc3339(issued.expires_at),
    }))
}
