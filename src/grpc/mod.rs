//! The IAM API over gRPC, with Yandex's own service and message definitions (`proto/`), so that
//! Yandex's SDKs drive the gateway unchanged. It shares the listener with REST: the accept loop
//! ([`crate::http::run`]) hands every request whose `content-type` is `application/grpc…`
//! ([`is_grpc`]) to [`Grpc::serve`], over HTTP/2 (with or without TLS).
//!
//! | file | service |
//! |---|---|
//! | [`endpoint`] | `yandex.cloud.endpoint.ApiEndpointService` (List, Get; no authentication) |
//! | [`iam_token`] | `yandex.cloud.iam.v1.IamTokenService` (Create with a JWT, CreateForServiceAccount, Revoke) |
//! | [`keys`] | `yandex.cloud.iam.v1.KeyService` |
//! | [`access_keys`] | `yandex.cloud.iam.v1.awscompatibility.AccessKeyService` |
//! | [`api_keys`] | `yandex.cloud.iam.v1.ApiKeyService` |
//! | [`service_accounts`] | `yandex.cloud.iam.v1.ServiceAccountService` |
//! | [`roles`] | `yandex.cloud.iam.v1.RoleService` |
//! | [`federations`] | `yandex.cloud.iam.v1.workload.oidc.FederationService` |
//! | [`federated_credentials`] | `yandex.cloud.iam.v1.workload.FederatedCredentialService` |
//! | [`clouds`], [`folders`] | `yandex.cloud.resourcemanager.v1.CloudService`, `FolderService` |
//! | [`operations`] | `yandex.cloud.operation.OperationService` (Get) |
//! | [`bindings`] | the access-binding methods the four bindable services share |
//! | [`method`] | what every method shares: the call record, authentication, the status of a refusal |
//!
//! Each method is a thin adapter: it starts the transport-neutral call record
//! ([`crate::app::call::Call`]: the same metric and audit line as REST), authenticates the
//! `authorization: Bearer` metadata the one way, calls the same method of [`crate::iam`] the
//! REST route calls (which authorizes), and converts the messages ([`convert`]). A refusal is a
//! gRPC status with the Yandex code and the same message as REST ([`method::status`]). A method the
//! protos here do not declare is UNIMPLEMENTED with a message that names what is served.

pub mod proto;

mod access_keys;
mod api_keys;
mod bindings;
mod clouds;
mod convert;
mod endpoint;
mod federated_credentials;
mod federations;
mod folders;
mod iam_token;
mod keys;
mod method;
mod operations;
mod roles;
mod service_accounts;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, header};
use prost::Message as _;
use tonic::service::Routes;
use tower::ServiceExt as _;
use tracing::Instrument as _;

use crate::app::AppState;
use crate::app::call::{REQUEST_ID, RequestId};

use proto::yandex::cloud::endpoint::api_endpoint_service_server::ApiEndpointServiceServer;
use proto::yandex::cloud::iam::v1::api_key_service_server::ApiKeyServiceServer;
use proto::yandex::cloud::iam::v1::awscompatibility::access_key_service_server::AccessKeyServiceServer;
use proto::yandex::cloud::iam::v1::iam_token_service_server::IamTokenServiceServer;
use proto::yandex::cloud::iam::v1::key_service_server::KeyServiceServer;
use proto::yandex::cloud::iam::v1::role_service_server::RoleServiceServer;
use proto::yandex::cloud::iam::v1::service_account_service_server::ServiceAccountServiceServer;
use proto::yandex::cloud::iam::v1::workload::federated_credential_service_server::FederatedCredentialServiceServer;
use proto::yandex::cloud::iam::v1::workload::oidc::federation_service_server::FederationServiceServer;
use proto::yandex::cloud::operation::operation_service_server::OperationServiceServer;
use proto::yandex::cloud::resourcemanager::v1::cloud_service_server::CloudServiceServer;
use proto::yandex::cloud::resourcemanager::v1::folder_service_server::FolderServiceServer;

/// The largest request message accepted: the REST API's body limit.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Whether `request` is a gRPC call: `content-type: application/grpc`, optionally with a
/// `+format` or parameters (`application/grpc+proto`).
pub fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("application/grpc"))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['+', ';']))
}

/// The gRPC half of the listener: the services, what the protos declare they serve, and the
/// whole-request timeout.
#[derive(Clone)]
pub struct Grpc {
    routes: Routes,
    /// Service full name → the names of its methods, read from the compiled protos.
    served: Arc<BTreeMap<String, Vec<String>>>,
    timeout: Duration,
}

impl Grpc {
    /// The services over `state`.
    pub fn new(state: &AppState) -> Grpc {
        macro_rules! server {
            ($server:ident, $service:expr) => {
                $server::new($service).max_decoding_message_size(MAX_MESSAGE_BYTES)
            };
        }
        let s = || state.clone();
        let routes = Routes::new(server!(
            ApiEndpointServiceServer,
            endpoint::Endpoints::new(state)
        ))
        .add_service(server!(IamTokenServiceServer, iam_token::IamTokens(s())))
        .add_service(server!(KeyServiceServer, keys::Keys(s())))
        .add_service(server!(
            AccessKeyServiceServer,
            access_keys::AccessKeys(s())
        ))
        .add_service(server!(ApiKeyServiceServer, api_keys::ApiKeys(s())))
        .add_service(server!(RoleServiceServer, roles::Roles(s())))
        .add_service(server!(
            ServiceAccountServiceServer,
            service_accounts::ServiceAccounts(s())
        ))
        .add_service(server!(
            FederationServiceServer,
            federations::Federations(s())
        ))
        .add_service(server!(
            FederatedCredentialServiceServer,
            federated_credentials::FederatedCredentials(s())
        ))
        .add_service(server!(CloudServiceServer, clouds::Clouds(s())))
        .add_service(server!(FolderServiceServer, folders::Folders(s())))
        .add_service(server!(OperationServiceServer, operations::Operations(s())))
        .prepare();
        Grpc {
            routes,
            served: Arc::new(served()),
            timeout: Duration::from_secs(state.settings().request_timeout_seconds),
        }
    }

    /// Answers one gRPC request: tags it with its request id (returned in `x-request-id`),
    /// refuses a method that is not served, and gives it the whole-request timeout
    /// (UNAVAILABLE past it, as REST answers 503).
    pub async fn serve(
        self,
        mut request: Request<hyper::body::Incoming>,
    ) -> http::Response<tonic::body::Body> {
        let id = RequestId::of(request.headers());
        request.extensions_mut().insert(id.clone());
        let span = tracing::info_span!("request", method = "gRPC", path = %request.uri().path(), request_id = %id.0);
        let mut response = async {
            if let Err(refused) = self.check_served(request.uri().path()) {
                return refused.into_http();
            }
            match tokio::time::timeout(self.timeout, self.routes.oneshot(request)).await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => {
                    metrics::counter!(crate::telemetry::SHED, "reason" => "timeout").increment(1);
                    tonic::Status::unavailable("the request took too long").into_http()
                }
            }
        }
        .instrument(span)
        .await;
        if let Ok(value) = HeaderValue::from_str(&id.0) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        response
    }

    /// UNIMPLEMENTED, naming what is served, for a path that is not a method the protos
    /// declare.
    fn check_served(&self, path: &str) -> Result<(), tonic::Status> {
        let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
            return Err(tonic::Status::unimplemented(format!(
                "{} is not a gRPC method path (/<package>.<Service>/<Method>)",
                crate::exchange::quote(path)
            )));
        };
        match self.served.get(service) {
            Some(methods) if methods.iter().any(|m| m == method) => Ok(()),
            Some(methods) => Err(tonic::Status::unimplemented(format!(
                "{service}/{method} is not served by this gateway; of {service} it serves {}",
                methods.join(", ")
            ))),
            None => Err(tonic::Status::unimplemented(format!(
                "this gateway does not serve {}; it serves {}",
                crate::exchange::quote(service),
                self.served.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

/// Service full name → method names, from the descriptors `build.rs` compiled.
fn served() -> BTreeMap<String, Vec<String>> {
    let Ok(set) = prost_types::FileDescriptorSet::decode(proto::DESCRIPTORS) else {
        return BTreeMap::new();
    };
    let mut served = BTreeMap::new();
    for file in set.file {
        for service in &file.service {
            served.insert(
                format!("{}.{}", file.package(), service.name()),
                service.method.iter().map(|m| m.name().to_owned()).collect(),
            );
        }
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_is_told_by_its_content_type() {
        let cases = [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/grpc;charset=utf-8", true),
            ("application/grpc-web", false),
            ("application/grpcx", false),
            ("application/json", false),
            ("", false),
        ];
        for (content_type, expected) in cases {
            let request = Request::builder()
                .header(header::CONTENT_TYPE, content_type)
                .body(())
                .unwrap();
            assert_eq!(is_grpc(&request), expected, "{content_type}");
        }
        assert!(!is_grpc(&Request::new(())), "no content type");
    }

    #[test]
    fn the_served_methods_are_read_from_the_protos() {
        let served = served();
        assert_eq!(
            served["yandex.cloud.iam.v1.KeyService"],
            ["Get", "List", "Create", "Update", "Delete"]
        );
        assert_eq!(served["yandex.cloud.operation.OperationService"], ["Get"]);
        assert!(
            served["yandex.cloud.resourcemanager.v1.FolderService"]
                .contains(&"UpdateAccessBindings".to_owned())
        );
        assert_eq!(
            served["yandex.cloud.iam.v1.awscompatibility.AccessKeyService"],
            ["List", "Get", "Create", "Update", "Delete"]
        );
        assert_eq!(
            served["yandex.cloud.iam.v1.ApiKeyService"],
            ["Get", "List", "Create", "Update", "Delete", "ListScopes"]
        );
        assert_eq!(served.len(), 12, "{:?}", served.keys());
    }
}
