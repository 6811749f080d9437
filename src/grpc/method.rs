//! What every gRPC method of the IAM API shares: the call record ([`Call`], the same metric,
//! audit line and log line as REST), the one authentication of the `authorization` metadata
//! ([`authenticated`]), and a refusal as the gRPC status of its Yandex code ([`status`]).

use std::any::Any;
use std::net::SocketAddr;

use axum::extract::ConnectInfo;

use crate::app::AppState;
use crate::app::call::{Call, RequestId};
use crate::iam::authn::Principal;
use crate::iam::idempotency::{self, Begin};
use crate::iam::service::Method;
use crate::iam::status::Status;

/// `status` as the gRPC status the Yandex API answers: its code and message.
pub fn status(status: &Status) -> tonic::Status {
    tonic::Status::new(
        tonic::Code::from(status.code.number()),
        status.message.clone(),
    )
}

/// Starts the record of a gRPC call to `method`: the connection's peer and the request id
/// [`super::Grpc::serve`] put in the extensions, the metadata's `x-forwarded-for`.
pub fn start<T>(state: &AppState, request: &tonic::Request<T>, method: Method) -> Call {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    Call::new(
        state,
        method,
        peer,
        request.metadata().as_ref(),
        request.extensions().get::<RequestId>(),
    )
}

/// Ends a call ([`Call::finish`]: metrics, audit) and answers its result.
pub fn finish<T>(
    call: Call,
    result: Result<T, Status>,
) -> Result<tonic::Response<T>, tonic::Status> {
    call.finish(result)
        .map(tonic::Response::new)
        .map_err(|s| status(&s))
}

/// One authenticated call of `method`: its record (with `resource` as far as the request
/// names it), the one authentication of the `authorization` metadata, `body` with the caller
/// and the request message, and the record's end.
///
/// A mutation carrying `idempotency-key` metadata is carried out once per caller and key
/// ([`crate::iam::idempotency`]), as over REST: a retry for the same method and message is
/// answered with the first call's operation, read again, and `body` does not run.
pub async fn authenticated<Req: prost::Message, Resp: 'static>(
    state: &AppState,
    request: tonic::Request<Req>,
    method: Method,
    resource: Option<String>,
    body: impl AsyncFnOnce(&mut Call, &Principal, Req) -> Result<Resp, Status>,
) -> Result<tonic::Response<Resp>, tonic::Status> {
    let mut call = start(state, &request, method);
    call.resource = resource;
    let (metadata, _, message) = request.into_parts();
    let key = metadata
        .get(IDEMPOTENCY_KEY)
        .filter(|_| {
            method.is_mutation()
                && !matches!(
                    method,
                    Method::IamTokenRevoke | Method::IamTokenCreateForServiceAccount
                )
        })
        .map(|key| key.to_str().unwrap_or_default().to_owned());
    let result = async {
        let principal = call.authenticate(state, metadata.as_ref()).await?;
        let Some(key) = key else {
            return body(&mut call, &principal, message).await;
        };
        let key = idempotency::check_key(&key)?;
        let store = crate::app::call::store(state)?;
        let caller = principal.service_account_id.as_str();
        let fingerprint =
            idempotency::fingerprint(&[method.name().as_bytes(), &message.encode_to_vec()]);
        let now = crate::time::now_unix();
        if let Begin::Replay(stored) =
            idempotency::begin(store, caller, key, &fingerprint, now).await?
        {
            metrics::counter!(crate::telemetry::IAM_IDEMPOTENT_REPLAYS).increment(1);
            let answer: Box<dyn Any> = Box::new(super::convert::operation(&stored)?);
            return answer
                .downcast::<Resp>()
                .map(|answer| *answer)
                .map_err(|_| idempotency::already_used(key));
        }
        let result = body(&mut call, &principal, message).await;
        let kept = match &result {
            Ok(answer) => {
                let operation = (answer as &dyn Any)
                    .downcast_ref::<super::proto::yandex::cloud::operation::Operation>()
                    .map(|operation| operation.id.as_str());
                idempotency::settle(store, caller, key, operation).await
            }
            Err(_) => idempotency::release(store, caller, key).await,
        };
        if let Err(e) = kept {
            tracing::warn!(error = %e, "IAM store: cannot record an idempotency key's outcome; a retry waits until it goes stale");
        }
        result
    }
    .await;
    finish(call, result)
}

/// The metadata a retried call carries (Yandex's SDKs send it with every call).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The resource hierarchy's methods as a call runs them.
pub fn hierarchy(state: &AppState) -> Result<crate::iam::hierarchy_api::Hierarchy<'_>, Status> {
    Ok(crate::iam::hierarchy_api::Hierarchy {
        ctx: crate::app::call::context(state)?,
    })
}

/// An `update_mask` in the form the IAM methods read: comma-separated paths; `None` without
/// one.
pub fn update_mask(mask: Option<prost_types::FieldMask>) -> Option<String> {
    mask.filter(|m| !m.paths.is_empty())
        .map(|m| m.paths.join(","))
}

/// An update of a cloud, a folder or a service account as proto3 sends it: every field is
/// present (proto3 cannot tell an absent field from an empty one), the mask as sent.
pub fn hierarchy_update(
    mask: Option<prost_types::FieldMask>,
    name: String,
    description: String,
    labels: crate::iam::store::Labels,
) -> crate::iam::hierarchy_api::Update {
    crate::iam::hierarchy_api::Update {
        update_mask: update_mask(mask),
        name: Some(name),
        description: Some(description),
        labels: Some(labels),
    }
}

/// A field this gateway does not support, when set: INVALID_ARGUMENT naming it.
pub fn unsupported(set: bool, what: &str) -> Result<(), Status> {
    if set {
        return Err(Status::invalid_argument(
            crate::iam::validate::REASON,
            format!("{what} is not supported by this gateway; leave it unset"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_their_yandex_code_and_message() {
        let refused = status(&Status::permission_denied("x is required"));
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert_eq!(refused.message(), "x is required");
        assert_eq!(status(&Status::unauthenticated("r", "m")).code() as i32, 16);
    }
}
