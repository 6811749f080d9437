//! `yandex.cloud.endpoint.ApiEndpointService`: where a Yandex SDK finds each API. Every id the
//! gateway serves names the same address, the gateway's own `host:port` (`[server]
//! grpc_endpoint`, by default `public_url`'s): REST and gRPC share its one listener. No
//! authentication, as at Yandex: a client asks before it has a token.

use tonic::{Request, Response};

use crate::app::AppState;
use crate::exchange::quote;
use crate::iam::status::Status;

use super::method::status;
use super::proto::yandex::cloud::endpoint::api_endpoint_service_server::ApiEndpointService;
use super::proto::yandex::cloud::endpoint::{
    ApiEndpoint, GetApiEndpointRequest, ListApiEndpointsRequest, ListApiEndpointsResponse,
};

/// The API ids the SDKs look up for the services served here.
pub const IDS: [&str; 4] = ["endpoint", "iam", "operation", "resource-manager"];

/// The endpoints, fixed at start.
pub struct Endpoints {
    endpoints: Vec<ApiEndpoint>,
}

impl Endpoints {
    pub fn new(state: &AppState) -> Endpoints {
        let address = &state.settings().grpc_endpoint;
        Endpoints {
            endpoints: IDS
                .iter()
                .map(|id| ApiEndpoint {
                    id: (*id).to_owned(),
                    address: address.clone(),
                })
                .collect(),
        }
    }
}

#[tonic::async_trait]
impl ApiEndpointService for Endpoints {
    async fn get(
        &self,
        request: Request<GetApiEndpointRequest>,
    ) -> Result<Response<ApiEndpoint>, tonic::Status> {
        let id = &request.get_ref().api_endpoint_id;
        self.endpoints
            .iter()
            .find(|e| &e.id == id)
            .cloned()
            .map(Response::new)
            .ok_or_else(|| {
                status(&Status::not_found(format!(
                    "api endpoint {} not found; this gateway serves {}",
                    quote(id),
                    IDS.join(", ")
                )))
            })
    }

    /// All of them, on one page.
    async fn list(
        &self,
        _: Request<ListApiEndpointsRequest>,
    ) -> Result<Response<ListApiEndpointsResponse>, tonic::Status> {
        Ok(Response::new(ListApiEndpointsResponse {
            endpoints: self.endpoints.clone(),
            next_page_token: String::new(),
        }))
    }
}
