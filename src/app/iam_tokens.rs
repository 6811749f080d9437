//! `IamTokenService` (`Create` with a service account's JWT, `Revoke`) over the running
//! gateway, independent of the transport: the REST routes ([`crate::http::iam_tokens`]) and the
//! gRPC service ([`crate::grpc`]) read their request into these types and answer what these
//! return. The JWT rules are [`crate::iam::tokens`]'s; the IAM token is minted like an
//! exchange's access token, with the key id as `client_id`.

use crate::exchange::quote;
use crate::iam::authn::{Checks, Principal};
use crate::iam::authz::Resource as AuthzResource;
use crate::iam::service::Method;
use crate::iam::status::{Code, Status};
use crate::iam::store::RevokeToken;
use crate::iam::tokens::{self, JwtRules};
use crate::signing::{IssuedToken, token_sha256};
use crate::time::now_unix;

use super::AppState;
use super::call::{Call, context, store};

/// The longest `iam_token` a revocation accepts (Yandex's limit).
pub const MAX_REVOKED_TOKEN_CHARS: usize = 4096;

/// `CreateIamTokenRequest`: the identities it names (exactly one is accepted: `jwt`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateIamToken {
    /// The service account's PS256 JWT.
    pub jwt: Option<String>,
    /// Refused: the gateway issues IAM tokens for service accounts only.
    pub yandex_passport_oauth_token: Option<String>,
}

/// An issued IAM token and when it expires (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamToken {
    pub iam_token: String,
    pub expires_at: i64,
}

/// The client IP's rate limit, which `Create` spends like the token exchange: RESOURCE_EXHAUSTED
/// and the seconds to wait when it is spent. Checked before the request is read.
pub fn rate_limit(state: &AppState, call: &Call) -> Result<(), (Status, Option<u64>)> {
    if let Some(ip) = call.client_ip()
        && let Err(limited) = state.limits().check_ip(ip)
    {
        return Err((
            Status::new(Code::ResourceExhausted, "rate_limited", limited.description),
            limited.retry_after,
        ));
    }
    Ok(())
}

/// `IamTokenService.Create`: an IAM token for a service account's JWT. What the JWT presented
/// and what was issued go into `call` (for the audit line); the token itself does not.
pub async fn create(
    state: &AppState,
    call: &mut Call,
    request: CreateIamToken,
) -> Result<IamToken, Status> {
    let store = store(state)?;
    let jwt = match (request.jwt, request.yandex_passport_oauth_token) {
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
    Ok(IamToken {
        iam_token: token.access_token,
        expires_at: now.saturating_add(token.expires_in),
    })
}

/// `IamTokenService.Revoke`: `iam_token` (an IAM token or an exchanged access token of this
/// gateway) is refused from now on, on every replica. Its own subject may revoke it; anyone
/// else needs the revoke permission on that service account. Answers the token's subject.
pub async fn revoke(
    state: &AppState,
    call: &mut Call,
    principal: &Principal,
    iam_token: &str,
) -> Result<String, Status> {
    let token = iam_token.trim();
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
            principal,
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
    Ok(verified.sub)
}
