//! `yandex.cloud.iam.v1.IamTokenService`: `Create` (a service account's PS256 JWT for an IAM
//! token), `CreateForServiceAccount` (impersonation) and `Revoke`, through
//! [`crate::app::iam_tokens`] as `POST /iam/v1/tokens`, `POST
//! /iam/v1/tokens:createForServiceAccount` and `POST /iam/v1/tokens:revoke` do.

use tonic::{Request, Response};

use crate::app::AppState;
use crate::app::iam_tokens::{self, CreateIamToken};
use crate::iam::service::Method;

use super::convert::timestamp;
use super::method::{authenticated, finish, start};
use super::proto::yandex::cloud::iam::v1::create_iam_token_request::Identity;
use super::proto::yandex::cloud::iam::v1::iam_token_service_server::IamTokenService;
use super::proto::yandex::cloud::iam::v1::{
    CreateIamTokenForServiceAccountRequest, CreateIamTokenRequest, CreateIamTokenResponse,
    RevokeIamTokenRequest, RevokeIamTokenResponse,
};

pub struct IamTokens(pub AppState);

#[tonic::async_trait]
impl IamTokenService for IamTokens {
    /// Needs no token: the JWT is the credential. The client IP's rate limit applies.
    async fn create(
        &self,
        request: Request<CreateIamTokenRequest>,
    ) -> Result<Response<CreateIamTokenResponse>, tonic::Status> {
        let state = &self.0;
        let mut call = start(state, &request, Method::IamTokenCreate);
        let result = async {
            iam_tokens::rate_limit(state, &call).map_err(|(status, _)| status)?;
            let (jwt, yandex_passport_oauth_token) = match request.into_inner().identity {
                Some(Identity::Jwt(jwt)) => (Some(jwt), None),
                Some(Identity::YandexPassportOauthToken(token)) => (None, Some(token)),
                None => (None, None),
            };
            let issued = iam_tokens::create(
                state,
                &mut call,
                CreateIamToken {
                    jwt,
                    yandex_passport_oauth_token,
                },
            )
            .await?;
            Ok(CreateIamTokenResponse {
                iam_token: issued.iam_token,
                expires_at: Some(timestamp(issued.expires_at)),
            })
        }
        .await;
        finish(call, result)
    }

    async fn create_for_service_account(
        &self,
        request: Request<CreateIamTokenForServiceAccountRequest>,
    ) -> Result<Response<CreateIamTokenResponse>, tonic::Status> {
        let state = &self.0;
        authenticated(
            state,
            request,
            Method::IamTokenCreateForServiceAccount,
            None,
            async |call, principal, request| {
                let issued = iam_tokens::create_for_service_account(
                    state,
                    call,
                    principal,
                    &request.service_account_id,
                )
                .await?;
                Ok(CreateIamTokenResponse {
                    iam_token: issued.iam_token,
                    expires_at: Some(timestamp(issued.expires_at)),
                })
            },
        )
        .await
    }

    async fn revoke(
        &self,
        request: Request<RevokeIamTokenRequest>,
    ) -> Result<Response<RevokeIamTokenResponse>, tonic::Status> {
        let state = &self.0;
        authenticated(
            state,
            request,
            Method::IamTokenRevoke,
            None,
            async |call, principal, request| {
                let subject_id =
                    iam_tokens::revoke(state, call, principal, &request.iam_token).await?;
                Ok(RevokeIamTokenResponse { subject_id })
            },
        )
        .await
    }
}
