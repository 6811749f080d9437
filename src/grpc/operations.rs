//! `yandex.cloud.operation.OperationService.Get`: a stored operation, through
//! [`crate::iam::hierarchy_api`] as `GET /operations/{id}` does, its `metadata` and `response`
//! packed by [`super::convert`]. `Cancel` is not served: operations finish within their call.

use tonic::{Request, Response};

use crate::app::AppState;
use crate::iam::service::Method;

use super::convert::operation;
use super::method::{authenticated, hierarchy};
use super::proto::yandex::cloud::operation::operation_service_server::OperationService;
use super::proto::yandex::cloud::operation::{GetOperationRequest, Operation};

pub struct Operations(pub AppState);

#[tonic::async_trait]
impl OperationService for Operations {
    async fn get(
        &self,
        request: Request<GetOperationRequest>,
    ) -> Result<Response<Operation>, tonic::Status> {
        let resource = Some(format!("operation:{}", request.get_ref().operation_id));
        authenticated(
            &self.0,
            request,
            Method::OperationGet,
            resource,
            async |_, principal, request| {
                operation(
                    &hierarchy(&self.0)?
                        .get_operation(principal, &request.operation_id)
                        .await?,
                )
            },
        )
        .await
    }
}
