//! What every gRPC method of the IAM API shares: the call record ([`Call`], the same metric,
//! audit line and log line as REST), the one authentication of the `authorization` metadata
//! ([`authenticated`]), and a refusal as the gRPC status of its Yandex code ([`status`]).

use std::net::SocketAddr;

use axum::extract::ConnectInfo;

use crate::app::AppState;
use crate::app::call::{Call, RequestId};
use crate::iam::authn::Principal;
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
pub async fn authenticated<Req, Resp>(
    state: &AppState,
    request: tonic::Request<Req>,
    method: Method,
    resource: Option<String>,
    body: impl AsyncFnOnce(&mut Call, &Principal, Req) -> Result<Resp, Status>,
) -> Result<tonic::Response<Resp>, tonic::Status> {
    let mut call = start(state, &request, method);
    call.resource = resource;
    let (metadata, _, message) = request.into_parts();
    let result = async {
        let principal = call.authenticate(state, metadata.as_ref()).await?;
        body(&mut call, &principal, message).await
    }
    .await;
    finish(call, result)
}

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
