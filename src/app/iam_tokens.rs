//! `IamTokenService` (`Create` with a service account's JWT, `CreateForServiceAccount`,
//! `Revoke`) over the running gateway, independent of the transport: the REST routes
//! ([`crate::http::iam_tokens`]) and the gRPC service ([`crate::grpc`]) read their request into
//! these types and answer what these return. The JWT rules are [`crate::iam::tokens`]'s; the
//! IAM token is minted like an exchange's access token, with the key id as `client_id`.
//!
//! Impersonation (`CreateForServiceAccount`): a caller holding
//! `iam.serviceAccounts.tokenCreator` (or a role including it) on a service account gets an IAM
//! token of it. The token's `act` names the caller, with the caller's own `act` nested inside
//! (RFC 8693 §4.1), so whoever reads it sees the whole chain; a chain holds at most
//! [`MAX_IMPERSONATION_CHAIN`] impersonations, each one authorized for the account acting at
//! that step; the token never outlives the caller's; a suspended account gets none.

use crate::exchange::quote;
use crate::iam::authn::{Checks, Principal};
use crate::iam::authz::Resource as AuthzResource;
use crate::iam::service::Method;
use crate::iam::status::{Code, Status};
use crate::iam::store::{RevokeToken, ServiceAccountStatus, StoreError, UsedBy};
use crate::iam::tokens::{self, JwtRules};
use crate::signing::{IssuedToken, token_sha256};
use crate::time::now_unix;

use super::AppState;
use super::call::{Call, context, store};

/// The longest `iam_token` a revocation accepts (Yandex's limit).
pub const MAX_REVOKED_TOKEN_CHARS: usize = 4096;

/// The most impersonations one chain may hold: a token got by impersonation may be used to
/// impersonate again, this many times in all.
pub const MAX_IMPERSONATION_CHAIN: usize = 3;

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
    state.record_use(UsedBy::ServiceAccount, &verified.service_account.id, now);
    state.record_use(UsedBy::AuthorizedKey, &verified.key.id, now);
    Ok(IamToken {
        iam_token: token.access_token,
        expires_at: now.saturating_add(token.expires_in),
    })
}

/// How many impersonations by accounts of the gateway `issuer` the `act` chain holds.
fn impersonations(act: Option<&serde_json::Value>, issuer: &str) -> usize {
    std::iter::successors(act, |a| a.get("act"))
        .take(64)
        .filter(|a| a.get("iss").and_then(serde_json::Value::as_str) == Some(issuer))
        .count()
}

/// `IamTokenService.CreateForServiceAccount`: an IAM token of `service_account_id` for
/// `principal`, who must hold the token-creator permission on it (by a binding on it or
/// above). The caller and the chain go into `call` (the audit line); the token does not.
pub async fn create_for_service_account(
    state: &AppState,
    call: &mut Call,
    principal: &Principal,
    service_account_id: &str,
) -> Result<IamToken, Status> {
    let target = service_account_id.trim();
    crate::iam::validate::id("service_account_id", target)?;
    call.resource = Some(format!("service_account:{target}"));
    let ctx = context(state)?;
    if let Err(refused) = ctx.authorize(
        principal,
        Method::IamTokenCreateForServiceAccount,
        &[AuthzResource::service_account(target)],
    ) {
        return Err(match ctx.store().get_service_account(target).await {
            Err(StoreError::NotFound { .. }) => {
                Status::not_found(format!("service account {} not found", quote(target)))
            }
            _ => refused,
        });
    }
    let account = match ctx.store().get_service_account(target).await {
        Ok(account) => account,
        Err(StoreError::NotFound { .. }) => {
            return Err(Status::not_found(format!(
                "service account {} not found",
                quote(target)
            )));
        }
        Err(other) => return Err(other.into()),
    };
    if account.status != ServiceAccountStatus::Active {
        return Err(Status::new(
            Code::FailedPrecondition,
            "service_account_suspended",
            format!(
                "service account {} is suspended: it gets no token until it is reactivated",
                quote(target)
            ),
        ));
    }
    let snapshot = state.snapshot();
    let minter = &snapshot.minter;
    let chain = impersonations(principal.actor.as_ref(), &minter.issuer);
    if chain >= MAX_IMPERSONATION_CHAIN {
        return Err(Status::new(
            Code::PermissionDenied,
            "impersonation_chain_too_long",
            format!(
                "the caller's token was itself got by {chain} impersonations; a chain holds at most {MAX_IMPERSONATION_CHAIN}: get a token of {} with its own credentials",
                quote(&principal.service_account_id)
            ),
        ));
    }
    let now = now_unix();
    let not_after = principal
        .token_expires_at
        .unwrap_or_else(|| now.saturating_add(minter.lifetime));
    let token = minter
        .mint_impersonated(
            &account.id,
            &principal.service_account_id,
            principal.actor.as_ref(),
            not_after,
            now,
        )
        .map_err(|e| Status::internal(&e))?;
    call.token = Some((token.sha256(), token.jti.clone()));
    tracing::debug!(
        service_account = %account.id,
        caller = %principal.service_account_id,
        chain = chain + 1,
        jti = %token.jti,
        "IAM token issued by impersonation"
    );
    state.record_use(UsedBy::ServiceAccount, &account.id, now);
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::impersonations;

    #[test]
    fn impersonations_are_the_chain_levels_this_gateway_issued() {
        let gw = "https://gw";
        let external = json!({"iss": "https://gitlab.example", "sub": "project_path:g/p"});
        let one = json!({"iss": gw, "sub": "sa-1", "act": external});
        let two = json!({"iss": gw, "sub": "sa-2", "act": one});
        let three = json!({"iss": gw, "sub": "sa-3", "act": two});
        for (name, act, want) in [
            ("no actor", None, 0),
            ("an exchange's external subject", Some(&external), 0),
            ("one impersonation after an exchange", Some(&one), 1),
            ("two", Some(&two), 2),
            ("three", Some(&three), 3),
        ] {
            assert_eq!(impersonations(act, gw), want, "{name}");
        }
        // Another gateway's levels are not this one's.
        assert_eq!(impersonations(Some(&three), "https://other"), 0);
        // A hostile depth is cut short, not walked.
        let mut deep = json!({"iss": gw, "sub": "x"});
        for _ in 0..1000 {
            deep = json!({"iss": gw, "sub": "x", "act": deep});
        }
        assert_eq!(impersonations(Some(&deep), gw), 64);
    }
}
