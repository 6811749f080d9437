//! `POST /iam/v1/tokens` (`IamTokenService.Create`): a service account's PS256 JWT, signed with
//! one of its authorized keys, for an IAM token `{"iamToken","expiresAt"}`. The rules are
//! [`crate::iam::tokens`]'s; the IAM token is minted like an exchange's access token, with the
//! key id as `client_id`. The client IP's rate limit applies, as at the token exchange.
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

use super::yandex::{Call, Endpoint, Refusals, context, json_body, ok, store};
use crate::app::AppState;
use crate::exchange::quote;
use crate::iam::authn::Checks;
use crate::iam::authz::Resource as AuthzResource;
use crate::iam::service::Method;
use crate::iam::status::{Code, Status};
use crate::iam::store::RevokeToken;
use crate::iam::tokens::{self, JwtRules};
use crate::signing::{IssuedToken, token_sha256};
use crate::time::{now_unix, rfc3339};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at("/iam/v1/tokens").post(create),
        Endpoint::at("/iam/v1/tokens:revoke").post(revoke),
    ]
}

/// The longest `iamToken` a revocation accepts (Yandex's limit).
const MAX_REVOKED_TOKEN_CHARS: usize = 4096;

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
    let mut call = Call::new(&state, &request, Method::IamTokenRevoke);
    let result = revoke_token(&state, &mut call, request).await;
    call.finish(result)
}

async fn revoke_token(
    state: &AppState,
    call: &mut Call,
    request: Request,
) -> Result<Response, Status> {
    let principal = call.authenticate(state, request.headers()).await?;
    let body: RevokeIamTokenRequest = json_body(request, "RevokeIamTokenRequest").await?;
    let token = body.iam_token.trim();
    if token.is_empty() {
        return Err(Status::invalid_argument(
            "malformed_request",
            "iamToken is empty: send {\"iamToken\": \"<the token to revoke>\"}",
        ));
    }
    if token.chars().count() > MAX_REVOKED_TOKEN_CHARS {
        return Err(Status::invalid_argument(
            "malformed_request",
            format!("iamToken is longer than {MAX_REVOKED_TOKEN_CHARS} characters"),
        ));
    }
    let (verified, _) = call
        .verify_token(state, token, Checks::Authentic)
        .await
        .map_err(|refused| match refused.code {
            Code::Unauthenticated => Status::invalid_argument(
                refused.reason,
                format!(
                    "iamToken is not a token of this gateway: {}",
                    refused.message.replacen("the IAM token", "it", 1)
                ),
            ),
            _ => refused,
        })?;
    let sub = verified.sub.as_str();
    call.resource = Some(format!("service_account:{sub}"));
    let Some(jti) = verified.jti.as_deref() else {
        return Err(Status::invalid_argument(
            "missing_claim",
            "iamToken has no jti claim, so it cannot be revoked",
        ));
    };
    call.token = Some((token_sha256(token), jti.to_owned()));
    let ctx = context(state)?;
    if principal.service_account_id != sub {
        ctx.authorize(
            &principal,
            Method::IamTokenRevoke,
            &[AuthzResource::service_account(sub)],
        )?;
    }
    if !verified.expired {
        let written = ctx
            .store()
            .revoke_token(
                &RevokeToken {
                    jti,
                    subject_id: sub,
                    expires_at: verified.exp,
                    revoked_by: &principal.service_account_id,
                },
                ctx.now,
            )
            .await?;
        let entry = ctx.applied(written).await;
        tracing::debug!(jti = %quote(&entry.jti), subject = %sub, "token revoked");
    }
    Ok(ok(RevokeIamTokenResponse {
        subject_id: verified.sub,
    }))
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
    let mut call = Call::new(&state, &request, Method::IamTokenCreate);
    let mut retry_after = None;
    let result = issue(&state, &mut call, request, &mut retry_after).await;
    let mut response = call.finish(result);
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
    if let Some(ip) = call.client_ip()
        && let Err(limited) = state.limits().check_ip(ip)
    {
        *retry_after = limited.retry_after;
        return Err(Status::new(
            Code::ResourceExhausted,
            "rate_limited",
            limited.description,
        ));
    }
    let store = store(state)?;
    let body: CreateIamTokenRequest = json_body(request, "CreateIamTokenRequest").await?;
    let jwt = match (body.jwt, body.passport_token) {
        (Some(jwt), None) => jwt,
        (None, Some(_)) => {
            return Err(Status::invalid_argument(
                "unsupported_identity",
                "yandexPassportOauthToken is not accepted here: this gateway issues IAM tokens for service accounts' JWTs (jwt)",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(Status::invalid_argument(
                "malformed_request",
                "give exactly one of jwt and yandexPassportOauthToken, not both",
            ));
        }
        (None, None) => {
            return Err(Status::invalid_argument(
                "malformed_request",
                "the body has no jwt: send {\"jwt\": \"<the service account's signed JWT>\"}",
            ));
        }
    };
    let snapshot = state.snapshot();
    let rules = JwtRules {
        audiences: &state.settings().iam.token_audiences,
        leeway: snapshot.policy.leeway,
    };
    let now = now_unix();
    let verified = match tokens::verify(store, jwt.trim(), &rules, now).await {
        Ok(verified) => verified,
        Err(refused) => {
            call.verified = Some(refused.verified);
            call.resource = refused.kid.map(|kid| format!("authorized_key:{kid}"));
            if refused.verified {
                call.principal = refused.iss;
            }
            return Err(refused.status);
        }
    };
    call.verified = Some(true);
    call.resource = Some(format!("authorized_key:{}", verified.key.id));
    call.principal = Some(verified.service_account.id.clone());
    let token: IssuedToken = snapshot
        .minter
        .mint_for_key(&verified.service_account.id, &verified.key.id, now)
        .map_err(|e| Status::internal(&e))?;
    call.token = Some((token.sha256(), token.jti.clone()));
    Ok(ok(CreateIamTokenResponse {
        iam_token: token.access_token,
        expires_at: rfc3339(now.saturating_add(token.expires_in)),
    }))
}
