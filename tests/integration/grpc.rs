//! The IAM API over gRPC: a tonic client generated from the same protos as the server speaks
//! plaintext HTTP/2 (h2c) to the real gateway, on the port REST answers on, as a Yandex SDK
//! does: discovery, an IAM token for a key file's JWT, the resources' life cycles through their
//! operations (the `Any` type URLs checked as strings), access bindings, roles, and the
//! refusals with their Yandex codes and REST's messages.

use prost::{Message, Name};
use prost_types::{Any, FieldMask};
use serde_json::json;
use tonic::transport::Channel;
use tonic::{Code, Request};

use wif_gateway::cli::session::service_account_jwt;
use wif_gateway::grpc::proto::yandex::cloud::access::{
    self, AccessBinding, AccessBindingAction, AccessBindingDelta, AccessBindingsOperationResult,
    ListAccessBindingsRequest, SetAccessBindingsRequest, Subject, UpdateAccessBindingsRequest,
};
use wif_gateway::grpc::proto::yandex::cloud::endpoint::api_endpoint_service_client::ApiEndpointServiceClient;
use wif_gateway::grpc::proto::yandex::cloud::endpoint::{GetApiEndpointRequest, ListApiEndpointsRequest};
use wif_gateway::grpc::proto::yandex::cloud::iam::v1::iam_token_service_client::IamTokenServiceClient;
use wif_gateway::grpc::proto::yandex::cloud::iam::v1::key_service_client::KeyServiceClient;
use wif_gateway::grpc::proto::yandex::cloud::iam::v1::role_service_client::RoleServiceClient;
use wif_gateway::grpc::proto::yandex::cloud::iam::v1::service_account_service_client::ServiceAccountServiceClient;
use wif_gateway::grpc::proto::yandex::cloud::iam::v1::workload::federated_credential_service_client::FederatedCredentialServiceClient;
use wif_gateway::grpc::proto::yandex::cloud::iam::v1::workload::oidc::federation_service_client::FederationServiceClient;
use wif_gateway::grpc::proto::yandex::cloud::iam::v1::workload::oidc::{
    CreateFederationRequest, DeleteFederationRequest, Federation, GetFederationRequest,
    ListFederationsRequest, UpdateFederationRequest,
};
use wif_gateway::grpc::proto::yandex::cloud::iam::v1::workload::{
    CreateFederatedCredentialRequest, DeleteFederatedCredentialRequest, FederatedCredential,
    GetFederatedCredentialRequest, ListFederatedCredentialsRequest,
};
use wif_gateway::grpc::proto::yandex::cloud::iam::v1::{
    CreateIamTokenRequest, CreateKeyRequest, CreateServiceAccountRequest, DeleteKeyRequest,
    DeleteServiceAccountRequest, GetKeyRequest, GetRoleRequest, GetServiceAccountRequest, Key,
    ListKeysRequest, ListRolesRequest, ListServiceAccountsRequest, RevokeIamTokenRequest,
    ServiceAccount, UpdateKeyRequest, UpdateServiceAccountRequest, create_iam_token_request, key,
};
use wif_gateway::grpc::proto::yandex::cloud::operation::operation_service_client::OperationServiceClient;
use wif_gateway::grpc::proto::yandex::cloud::operation::{GetOperationRequest, Operation, operation};
use wif_gateway::grpc::proto::yandex::cloud::resourcemanager::v1::cloud_service_client::CloudServiceClient;
use wif_gateway::grpc::proto::yandex::cloud::resourcemanager::v1::folder_service_client::FolderServiceClient;
use wif_gateway::grpc::proto::yandex::cloud::resourcemanager::v1::{
    CreateFolderRequest, DeleteFolderRequest, Folder, GetFolderRequest, ListCloudsRequest,
    ListFoldersRequest, UpdateFolderRequest, folder,
};
use wif_gateway::iam::keys::KeyFileCredentials;

use crate::operate::{audit_lines, wait_for};
use crate::support::gateway::{Gateway, Options};
use crate::support::iam::{KeyFile, sdk_audience, sqlite_store};

/// A plaintext HTTP/2 channel to the gateway's one listener.
pub(crate) async fn channel(gw: &Gateway) -> Channel {
    Channel::from_shared(gw.url.clone())
        .expect("endpoint")
        .connect()
        .await
        .expect("h2c connection")
}

/// An HTTP/2 channel to the gateway's TLS listener at `addr`, trusting only `ca_pem` and
/// offering ALPN `h2`, as an SDK dials (tonic's own TLS is not compiled in: the handshake is
/// tokio-rustls', the channel runs over it).
async fn tls_channel(addr: std::net::SocketAddr, ca_pem: &str) -> Channel {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA"))
        .expect("root");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    Channel::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_| {
            let connector = connector.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
                let tls = connector.connect(name, tcp).await?;
                assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        }))
        .await
        .expect("TLS connection")
}

/// `message` with `authorization: Bearer <token>`.
pub(crate) fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    request
}

/// The message packed in `any`, once its type URL is `url`, which must also be the type's own.
pub(crate) fn unpack<M: Message + Default + Name>(any: Option<&Any>, url: &str) -> M {
    let any = any.expect("an Any");
    assert_eq!(any.type_url, url);
    assert_eq!(M::type_url(), url, "the test names the type it decodes");
    M::decode(any.value.as_slice()).expect("decodes")
}

/// An operation's metadata and response, checked to be of these type URLs.
pub(crate) fn parts<Meta, Resp>(op: &Operation, metadata: &str, response: &str) -> (Meta, Resp)
where
    Meta: Message + Default + Name,
    Resp: Message + Default + Name,
{
    assert!(op.done, "{op:?}");
    assert!(!op.id.is_empty());
    let Some(operation::Result::Response(answer)) = &op.result else {
        panic!("no response: {op:?}");
    };
    (
        unpack(op.metadata.as_ref(), metadata),
        unpack(Some(answer), response),
    )
}

/// An IAM token over gRPC for `key`'s JWT, signed for the audience Yandex SDKs use.
pub(crate) async fn iam_token(gw: &Gateway, channel: &Channel, key: &KeyFileCredentials) -> String {
    let jwt =
        service_account_jwt(key, &sdk_audience(gw), wif_gateway::time::now_unix()).expect("JWT");
    let answer = IamTokenServiceClient::new(channel.clone())
        .create(CreateIamTokenRequest {
            identity: Some(create_iam_token_request::Identity::Jwt(jwt)),
        })
        .await
        .expect("IamTokenService.Create")
        .into_inner();
    assert!(answer.expires_at.is_some_and(|t| t.seconds > 0));
    answer.iam_token
}

pub(crate) fn credentials(file: &KeyFile) -> KeyFileCredentials {
    KeyFileCredentials {
        id: file.id().to_owned(),
        service_account_id: file.service_account_id().to_owned(),
        private_key: file.private_key().to_owned(),
    }
}

/// The value of the counter line `needle` in the metrics text (0 when absent).
pub(crate) fn counter(metrics: &str, needle: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(needle))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The admin's cloud, its IAM token over gRPC, and the channel.
pub(crate) async fn admin(gw: &Gateway) -> (Channel, String, String) {
    let channel = channel(gw).await;
    let token = iam_token(gw, &channel, &credentials(&KeyFile::bootstrap(gw))).await;
    let clouds = CloudServiceClient::new(channel.clone())
        .list(authed(&token, ListCloudsRequest::default()))
        .await
        .expect("CloudService.List")
        .into_inner()
        .clouds;
    assert_eq!(clouds.len(), 1, "{clouds:?}");
    (channel, token, clouds[0].id.clone())
}

#[tokio::test]
async fn discovery_needs_no_token_and_rest_answers_on_the_same_port() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let channel = channel(&gw).await;
    let mut endpoints = ApiEndpointServiceClient::new(channel.clone());
    let listed = endpoints
        .list(ListApiEndpointsRequest::default())
        .await
        .expect("List without a token")
        .into_inner()
        .endpoints;
    let address = gw.url.trim_start_matches("http://");
    let ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
    for id in ["endpoint", "iam", "operation", "resource-manager"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    assert!(listed.iter().all(|e| e.address == address), "{listed:?}");
    let iam = endpoints
        .get(GetApiEndpointRequest {
            api_endpoint_id: "iam".into(),
        })
        .await
        .expect("Get")
        .into_inner();
    assert_eq!((iam.id.as_str(), iam.address.as_str()), ("iam", address));
    let missing = endpoints
        .get(GetApiEndpointRequest {
            api_endpoint_id: "compute".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");

    // REST on the same port, between gRPC calls on the same connection.
    assert_eq!(gw.get("/healthz").await.status, 200);
    let rest = gw.iam("GET", "/iam/v1/keys", None, None).await;
    assert_eq!(rest.status, 401, "{}", rest.text);
    assert_eq!(rest.body["code"], 16);
    endpoints
        .list(ListApiEndpointsRequest::default())
        .await
        .expect("gRPC after REST");
    gw.stop().await;
}

#[tokio::test]
async fn grpc_is_served_on_the_tls_listener_too() {
    let options = Options {
        tls: Some(
            "cert_file = \"tls/server.pem\"\nkey_file = \"tls/server-key.pem\"\ngenerate_dev_ca = true"
                .into(),
        ),
        ..sqlite_store()
    };
    let gw = Gateway::start_with("", options).await;
    let ca = std::fs::read_to_string(gw.dir.path().join("tls/ca.pem")).expect("the dev CA");
    let channel = tls_channel(gw.tls_addr.expect("TLS listener"), &ca).await;
    let listed = ApiEndpointServiceClient::new(channel.clone())
        .list(ListApiEndpointsRequest::default())
        .await
        .expect("discovery over TLS")
        .into_inner();
    assert!(listed.endpoints.iter().any(|e| e.id == "iam"));
    let token = iam_token(&gw, &channel, &credentials(&KeyFile::bootstrap(&gw))).await;
    let clouds = CloudServiceClient::new(channel)
        .list(authed(&token, ListCloudsRequest::default()))
        .await
        .expect("CloudService.List over TLS")
        .into_inner();
    assert_eq!(clouds.clouds.len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn resources_live_and_die_through_their_operations() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let (channel, token, cloud) = admin(&gw).await;
    let rest = gw
        .iam(
            "GET",
            &format!("/resource-manager/v1/clouds/{cloud}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        rest.status, 200,
        "the gRPC-issued token works over REST: {}",
        rest.text
    );
    let mut folders = FolderServiceClient::new(channel.clone());
    let mut accounts = ServiceAccountServiceClient::new(channel.clone());
    let mut keys = KeyServiceClient::new(channel.clone());
    let mut federations = FederationServiceClient::new(channel.clone());
    let mut credentials = FederatedCredentialServiceClient::new(channel.clone());
    let mut operations = OperationServiceClient::new(channel.clone());

    // A folder.
    let created = folders
        .create(authed(
            &token,
            CreateFolderRequest {
                cloud_id: cloud.clone(),
                name: "grpc-folder".into(),
                description: "over gRPC".into(),
                labels: [("env".to_owned(), "test".to_owned())].into(),
            },
        ))
        .await
        .expect("FolderService.Create")
        .into_inner();
    let (meta, folder): (
        wif_gateway::grpc::proto::yandex::cloud::resourcemanager::v1::CreateFolderMetadata,
        Folder,
    ) = parts(
        &created,
        "type.googleapis.com/yandex.cloud.resourcemanager.v1.CreateFolderMetadata",
        "type.googleapis.com/yandex.cloud.resourcemanager.v1.Folder",
    );
    assert_eq!(meta.folder_id, folder.id);
    assert_eq!(
        (folder.cloud_id.as_str(), folder.name.as_str()),
        (cloud.as_str(), "grpc-folder")
    );
    assert_eq!(folder.labels["env"], "test");
    assert_eq!(folder.status, i32::from(folder::Status::Active));
    assert!(folder.created_at.is_some());
    let got = folders
        .get(authed(
            &token,
            GetFolderRequest {
                folder_id: folder.id.clone(),
            },
        ))
        .await
        .expect("Get")
        .into_inner();
    assert_eq!(got, folder);
    let listed = folders
        .list(authed(
            &token,
            ListFoldersRequest {
                cloud_id: cloud.clone(),
                filter: "name=\"grpc-folder\"".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("List")
        .into_inner();
    assert_eq!(listed.folders, std::slice::from_ref(&folder));
    let updated = folders
        .update(authed(
            &token,
            UpdateFolderRequest {
                folder_id: folder.id.clone(),
                update_mask: Some(FieldMask {
                    paths: vec!["description".into()],
                }),
                description: "changed".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("Update")
        .into_inner();
    let (_, changed): (
        wif_gateway::grpc::proto::yandex::cloud::resourcemanager::v1::UpdateFolderMetadata,
        Folder,
    ) = parts(
        &updated,
        "type.googleapis.com/yandex.cloud.resourcemanager.v1.UpdateFolderMetadata",
        "type.googleapis.com/yandex.cloud.resourcemanager.v1.Folder",
    );
    assert_eq!(
        (changed.name.as_str(), changed.description.as_str()),
        ("grpc-folder", "changed")
    );

    // The operation, again, over gRPC and over REST.
    let again = operations
        .get(authed(
            &token,
            GetOperationRequest {
                operation_id: updated.id.clone(),
            },
        ))
        .await
        .expect("OperationService.Get")
        .into_inner();
    assert_eq!(again, updated);
    let rest = gw
        .iam(
            "GET",
            &format!("/operations/{}", updated.id),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        rest.body["response"]["@type"],
        "type.googleapis.com/yandex.cloud.resourcemanager.v1.Folder"
    );
    assert_eq!(rest.body["response"]["description"], "changed");

    // A service account in it.
    let created = accounts
        .create(authed(
            &token,
            CreateServiceAccountRequest {
                folder_id: folder.id.clone(),
                name: "grpc-robot".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("ServiceAccountService.Create")
        .into_inner();
    let (meta, account): (
        wif_gateway::grpc::proto::yandex::cloud::iam::v1::CreateServiceAccountMetadata,
        ServiceAccount,
    ) = parts(
        &created,
        "type.googleapis.com/yandex.cloud.iam.v1.CreateServiceAccountMetadata",
        "type.googleapis.com/yandex.cloud.iam.v1.ServiceAccount",
    );
    assert_eq!(meta.service_account_id, account.id);
    assert_eq!(account.folder_id, folder.id);
    let got = accounts
        .get(authed(
            &token,
            GetServiceAccountRequest {
                service_account_id: account.id.clone(),
            },
        ))
        .await
        .expect("Get")
        .into_inner();
    assert_eq!(got, account);
    let listed = accounts
        .list(authed(
            &token,
            ListServiceAccountsRequest {
                folder_id: folder.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("List")
        .into_inner();
    assert_eq!(listed.service_accounts, std::slice::from_ref(&account));
    let updated = accounts
        .update(authed(
            &token,
            UpdateServiceAccountRequest {
                service_account_id: account.id.clone(),
                update_mask: Some(FieldMask {
                    paths: vec!["description".into()],
                }),
                description: "a robot".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("Update")
        .into_inner();
    let (_, renamed): (
        wif_gateway::grpc::proto::yandex::cloud::iam::v1::UpdateServiceAccountMetadata,
        ServiceAccount,
    ) = parts(
        &updated,
        "type.googleapis.com/yandex.cloud.iam.v1.UpdateServiceAccountMetadata",
        "type.googleapis.com/yandex.cloud.iam.v1.ServiceAccount",
    );
    assert_eq!(renamed.description, "a robot");

    // A key of it: Create answers the key itself, its private half once.
    let created = keys
        .create(authed(
            &token,
            CreateKeyRequest {
                service_account_id: account.id.clone(),
                description: "ci".into(),
                key_algorithm: key::Algorithm::Rsa2048.into(),
                ..Default::default()
            },
        ))
        .await
        .expect("KeyService.Create")
        .into_inner();
    let key = created.key.expect("key");
    assert!(created.private_key.contains("PRIVATE KEY"));
    assert_eq!(
        key.subject,
        Some(key::Subject::ServiceAccountId(account.id.clone()))
    );
    assert_eq!(key.key_algorithm, i32::from(key::Algorithm::Rsa2048));
    let got = keys
        .get(authed(
            &token,
            GetKeyRequest {
                key_id: key.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("Get")
        .into_inner();
    assert_eq!(got, key);
    let listed = keys
        .list(authed(
            &token,
            ListKeysRequest {
                service_account_id: account.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("List")
        .into_inner();
    assert_eq!(listed.keys, std::slice::from_ref(&key));
    let updated = keys
        .update(authed(
            &token,
            UpdateKeyRequest {
                key_id: key.id.clone(),
                update_mask: Some(FieldMask {
                    paths: vec!["description".into()],
                }),
                description: "rotated".into(),
            },
        ))
        .await
        .expect("Update")
        .into_inner();
    let (meta, described): (
        wif_gateway::grpc::proto::yandex::cloud::iam::v1::UpdateKeyMetadata,
        Key,
    ) = parts(
        &updated,
        "type.googleapis.com/yandex.cloud.iam.v1.UpdateKeyMetadata",
        "type.googleapis.com/yandex.cloud.iam.v1.Key",
    );
    assert_eq!(
        (meta.key_id.as_str(), described.description.as_str()),
        (key.id.as_str(), "rotated")
    );

    // The new key signs a JWT for an IAM token of the new account, over gRPC.
    let robot = KeyFileCredentials {
        id: key.id.clone(),
        service_account_id: account.id.clone(),
        private_key: created.private_key.clone(),
    };
    let robot_token = iam_token(&gw, &channel, &robot).await;
    assert!(!robot_token.is_empty());

    // A federation and a federated credential.
    let created = federations
        .create(authed(
            &token,
            CreateFederationRequest {
                folder_id: folder.id.clone(),
                name: "gitlab".into(),
                audiences: vec!["https://gitlab.example.com".into()],
                issuer: "https://gitlab.example.com".into(),
                jwks_url: "https://gitlab.example.com/oauth/discovery/keys".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("FederationService.Create")
        .into_inner();
    let (meta, federation): (
        wif_gateway::grpc::proto::yandex::cloud::iam::v1::workload::oidc::CreateFederationMetadata,
        Federation,
    ) = parts(
        &created,
        "type.googleapis.com/yandex.cloud.iam.v1.workload.oidc.CreateFederationMetadata",
        "type.googleapis.com/yandex.cloud.iam.v1.workload.oidc.Federation",
    );
    assert_eq!(meta.federation_id, federation.id);
    assert!(federation.enabled);
    let got = federations
        .get(authed(
            &token,
            GetFederationRequest {
                federation_id: federation.id.clone(),
            },
        ))
        .await
        .expect("Get")
        .into_inner();
    assert_eq!(got, federation);
    let listed = federations
        .list(authed(
            &token,
            ListFederationsRequest {
                folder_id: folder.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("List")
        .into_inner();
    assert_eq!(listed.federations, std::slice::from_ref(&federation));
    let updated = federations
        .update(authed(
            &token,
            UpdateFederationRequest {
                federation_id: federation.id.clone(),
                update_mask: Some(FieldMask {
                    paths: vec!["audiences".into(), "disabled".into()],
                }),
                audiences: vec!["https://gitlab.example.com".into(), "sts".into()],
                disabled: true,
                ..Default::default()
            },
        ))
        .await
        .expect("Update")
        .into_inner();
    let (_, changed): (
        wif_gateway::grpc::proto::yandex::cloud::iam::v1::workload::oidc::UpdateFederationMetadata,
        Federation,
    ) = parts(
        &updated,
        "type.googleapis.com/yandex.cloud.iam.v1.workload.oidc.UpdateFederationMetadata",
        "type.googleapis.com/yandex.cloud.iam.v1.workload.oidc.Federation",
    );
    assert_eq!(changed.audiences, ["https://gitlab.example.com", "sts"]);
    assert!(!changed.enabled);
    let created = credentials
        .create(authed(
            &token,
            CreateFederatedCredentialRequest {
                service_account_id: account.id.clone(),
                federation_id: federation.id.clone(),
                external_subject_id: "project_path:demo/app".into(),
            },
        ))
        .await
        .expect("FederatedCredentialService.Create")
        .into_inner();
    let (meta, credential): (wif_gateway::grpc::proto::yandex::cloud::iam::v1::workload::CreateFederatedCredentialMetadata, FederatedCredential) = parts(
        &created,
        "type.googleapis.com/yandex.cloud.iam.v1.workload.CreateFederatedCredentialMetadata",
        "type.googleapis.com/yandex.cloud.iam.v1.workload.FederatedCredential",
    );
    assert_eq!(meta.federated_credential_id, credential.id);
    assert_eq!(credential.external_subject_id, "project_path:demo/app");
    let got = credentials
        .get(authed(
            &token,
            GetFederatedCredentialRequest {
                federated_credential_id: credential.id.clone(),
            },
        ))
        .await
        .expect("Get")
        .into_inner();
    assert_eq!(got, credential);
    let listed = credentials
        .list(authed(
            &token,
            ListFederatedCredentialsRequest {
                service_account_id: account.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("List")
        .into_inner();
    assert_eq!(
        listed.federated_credentials,
        std::slice::from_ref(&credential)
    );

    // Access bindings: set on the account, added on the folder, listed.
    let binding = |role: &str| AccessBinding {
        role_id: role.into(),
        subject: Some(Subject {
            id: account.id.clone(),
            r#type: "serviceAccount".into(),
        }),
    };
    let set = accounts
        .set_access_bindings(authed(
            &token,
            SetAccessBindingsRequest {
                resource_id: account.id.clone(),
                access_bindings: vec![binding("viewer")],
            },
        ))
        .await
        .expect("SetAccessBindings")
        .into_inner();
    let (meta, result): (
        access::SetAccessBindingsMetadata,
        AccessBindingsOperationResult,
    ) = parts(
        &set,
        "type.googleapis.com/yandex.cloud.access.SetAccessBindingsMetadata",
        "type.googleapis.com/yandex.cloud.access.AccessBindingsOperationResult",
    );
    assert_eq!(meta.resource_id, account.id);
    assert_eq!(
        result.effective_deltas,
        [AccessBindingDelta {
            action: AccessBindingAction::Add.into(),
            access_binding: Some(binding("viewer"))
        }]
    );
    let update = folders
        .update_access_bindings(authed(
            &token,
            UpdateAccessBindingsRequest {
                resource_id: folder.id.clone(),
                access_binding_deltas: vec![AccessBindingDelta {
                    action: AccessBindingAction::Add.into(),
                    access_binding: Some(binding("editor")),
                }],
            },
        ))
        .await
        .expect("UpdateAccessBindings")
        .into_inner();
    let (meta, _): (
        access::UpdateAccessBindingsMetadata,
        AccessBindingsOperationResult,
    ) = parts(
        &update,
        "type.googleapis.com/yandex.cloud.access.UpdateAccessBindingsMetadata",
        "type.googleapis.com/yandex.cloud.access.AccessBindingsOperationResult",
    );
    assert_eq!(meta.resource_id, folder.id);
    let listed = folders
        .list_access_bindings(authed(
            &token,
            ListAccessBindingsRequest {
                resource_id: folder.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("ListAccessBindings")
        .into_inner();
    assert_eq!(listed.access_bindings, [binding("editor")]);
    let rest = gw
        .iam(
            "GET",
            &format!("/iam/v1/serviceAccounts/{}:listAccessBindings", account.id),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        rest.body["accessBindings"][0]["roleId"], "viewer",
        "{}",
        rest.text
    );
    // The account now holds editor on its folder: it reads the folder with its own token.
    folders
        .get(authed(
            &robot_token,
            GetFolderRequest {
                folder_id: folder.id.clone(),
            },
        ))
        .await
        .expect("the binding is in force");

    // Deletions answer the metadata and google.protobuf.Empty.
    let deleted = credentials
        .delete(authed(
            &token,
            DeleteFederatedCredentialRequest {
                federated_credential_id: credential.id.clone(),
            },
        ))
        .await
        .expect("Delete credential")
        .into_inner();
    let (meta, ()): (wif_gateway::grpc::proto::yandex::cloud::iam::v1::workload::DeleteFederatedCredentialMetadata, ()) = parts(
        &deleted,
        "type.googleapis.com/yandex.cloud.iam.v1.workload.DeleteFederatedCredentialMetadata",
        "type.googleapis.com/google.protobuf.Empty",
    );
    assert_eq!(meta.federated_credential_id, credential.id);
    let deleted = federations
        .delete(authed(
            &token,
            DeleteFederationRequest {
                federation_id: federation.id.clone(),
            },
        ))
        .await
        .expect("Delete federation")
        .into_inner();
    let _: (
        wif_gateway::grpc::proto::yandex::cloud::iam::v1::workload::oidc::DeleteFederationMetadata,
        (),
    ) = parts(
        &deleted,
        "type.googleapis.com/yandex.cloud.iam.v1.workload.oidc.DeleteFederationMetadata",
        "type.googleapis.com/google.protobuf.Empty",
    );
    let deleted = keys
        .delete(authed(
            &token,
            DeleteKeyRequest {
                key_id: key.id.clone(),
            },
        ))
        .await
        .expect("Delete key")
        .into_inner();
    let (meta, ()): (
        wif_gateway::grpc::proto::yandex::cloud::iam::v1::DeleteKeyMetadata,
        (),
    ) = parts(
        &deleted,
        "type.googleapis.com/yandex.cloud.iam.v1.DeleteKeyMetadata",
        "type.googleapis.com/google.protobuf.Empty",
    );
    assert_eq!(meta.key_id, key.id);
    let deleted = accounts
        .delete(authed(
            &token,
            DeleteServiceAccountRequest {
                service_account_id: account.id.clone(),
            },
        ))
        .await
        .expect("Delete account")
        .into_inner();
    let _: (
        wif_gateway::grpc::proto::yandex::cloud::iam::v1::DeleteServiceAccountMetadata,
        (),
    ) = parts(
        &deleted,
        "type.googleapis.com/yandex.cloud.iam.v1.DeleteServiceAccountMetadata",
        "type.googleapis.com/google.protobuf.Empty",
    );
    let deleted = folders
        .delete(authed(
            &token,
            DeleteFolderRequest {
                folder_id: folder.id.clone(),
                delete_after: None,
            },
        ))
        .await
        .expect("Delete folder")
        .into_inner();
    let (meta, ()): (
        wif_gateway::grpc::proto::yandex::cloud::resourcemanager::v1::DeleteFolderMetadata,
        (),
    ) = parts(
        &deleted,
        "type.googleapis.com/yandex.cloud.resourcemanager.v1.DeleteFolderMetadata",
        "type.googleapis.com/google.protobuf.Empty",
    );
    assert_eq!(meta.folder_id, folder.id);
    let gone = folders
        .get(authed(
            &token,
            GetFolderRequest {
                folder_id: folder.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
    assert_eq!(gone.code() as i32, 5);
    gw.stop().await;
}

#[tokio::test]
async fn roles_are_listed_in_pages_and_read_by_id() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let (channel, token, _) = admin(&gw).await;
    let mut roles = RoleServiceClient::new(channel);
    let first = roles
        .list(authed(
            &token,
            ListRolesRequest {
                page_size: 2,
                ..Default::default()
            },
        ))
        .await
        .expect("List")
        .into_inner();
    assert_eq!(first.roles.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = roles
        .list(authed(
            &token,
            ListRolesRequest {
                page_size: 2,
                page_token: first.next_page_token.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("next page")
        .into_inner();
    assert!(
        second.roles[0].id > first.roles[1].id,
        "{first:?} then {second:?}"
    );
    let rest = gw
        .iam("GET", "/iam/v1/roles?pageSize=2", Some(&token), None)
        .await;
    assert_eq!(rest.body["roles"][0]["id"], first.roles[0].id.as_str());
    let viewer = roles
        .get(authed(
            &token,
            GetRoleRequest {
                role_id: "viewer".into(),
            },
        ))
        .await
        .expect("Get")
        .into_inner();
    assert_eq!(viewer.id, "viewer");
    assert!(!viewer.description.is_empty());
    for (request, code) in [
        (
            ListRolesRequest {
                filter: "id=\"viewer\"".into(),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            ListRolesRequest {
                page_size: 1001,
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
    ] {
        let refused = roles.list(authed(&token, request)).await.unwrap_err();
        assert_eq!(refused.code(), code, "{refused:?}");
    }
    let missing = roles
        .get(authed(
            &token,
            GetRoleRequest {
                role_id: "no.such.role".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let anonymous = roles
        .get(Request::new(GetRoleRequest {
            role_id: "viewer".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    gw.stop().await;
}

#[tokio::test]
async fn refusals_carry_the_yandex_code_and_the_rest_message_and_calls_are_counted_and_audited() {
    let gw = Gateway::start_with(
        "",
        Options {
            audit: "output = \"audit.log\"".into(),
            ..sqlite_store()
        },
    )
    .await;
    let (channel, token, cloud) = admin(&gw).await;
    let mut folders = FolderServiceClient::new(channel.clone());

    // A mutation, with the caller's request id.
    let mut request = authed(
        &token,
        CreateFolderRequest {
            cloud_id: cloud.clone(),
            name: "audited".into(),
            ..Default::default()
        },
    );
    request
        .metadata_mut()
        .insert("x-request-id", "grpc-call-1".parse().unwrap());
    let response = folders.create(request).await.expect("Create");
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "grpc-call-1"
    );
    let folder_id = unpack::<
        wif_gateway::grpc::proto::yandex::cloud::resourcemanager::v1::CreateFolderMetadata,
    >(
        response.get_ref().metadata.as_ref(),
        "type.googleapis.com/yandex.cloud.resourcemanager.v1.CreateFolderMetadata",
    )
    .folder_id;

    // No token, and a token that is not one: UNAUTHENTICATED (16), as REST's 401.
    let anonymous = folders
        .get(Request::new(GetFolderRequest {
            folder_id: folder_id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code() as i32, 16, "{anonymous:?}");
    let rest = gw
        .iam(
            "GET",
            &format!("/resource-manager/v1/folders/{folder_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(anonymous.message(), rest.body["message"].as_str().unwrap());
    let forged = folders
        .get(authed(
            "not-a-token",
            GetFolderRequest {
                folder_id: folder_id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::Unauthenticated);

    // A service account with no role on the folder: PERMISSION_DENIED (7), REST's message.
    let mut accounts = ServiceAccountServiceClient::new(channel.clone());
    let created = accounts
        .create(authed(
            &token,
            CreateServiceAccountRequest {
                folder_id: folder_id.clone(),
                name: "nobody".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("account")
        .into_inner();
    let (_, nobody): (
        wif_gateway::grpc::proto::yandex::cloud::iam::v1::CreateServiceAccountMetadata,
        ServiceAccount,
    ) = parts(
        &created,
        "type.googleapis.com/yandex.cloud.iam.v1.CreateServiceAccountMetadata",
        "type.googleapis.com/yandex.cloud.iam.v1.ServiceAccount",
    );
    let created = KeyServiceClient::new(channel.clone())
        .create(authed(
            &token,
            CreateKeyRequest {
                service_account_id: nobody.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("key")
        .into_inner();
    let nobody_token = iam_token(
        &gw,
        &channel,
        &KeyFileCredentials {
            id: created.key.unwrap().id,
            service_account_id: nobody.id.clone(),
            private_key: created.private_key,
        },
    )
    .await;
    let needle = "wif_gateway_iam_requests_total{method=\"yandex.cloud.resourcemanager.v1.FolderService/Get\",code=\"PERMISSION_DENIED\"}";
    let before = counter(&gw.metrics().await, needle);
    let denied = folders
        .get(authed(
            &nobody_token,
            GetFolderRequest {
                folder_id: folder_id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code() as i32, 7, "{denied:?}");
    assert_eq!(
        counter(&gw.metrics().await, needle),
        before + 1.0,
        "the gRPC call is counted"
    );
    let rest = gw
        .iam(
            "GET",
            &format!("/resource-manager/v1/folders/{folder_id}"),
            Some(&nobody_token),
            None,
        )
        .await;
    assert_eq!(rest.status, 403);
    assert_eq!(denied.message(), rest.body["message"].as_str().unwrap());
    assert!(
        denied.message().contains("resource-manager.folders.get"),
        "{}",
        denied.message()
    );

    // INVALID_ARGUMENT (3) and NOT_FOUND (5), REST's messages.
    let invalid = folders
        .create(authed(
            &token,
            CreateFolderRequest {
                cloud_id: cloud.clone(),
                name: "Not_A_Name".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(invalid.code() as i32, 3, "{invalid:?}");
    let rest = gw
        .iam(
            "POST",
            "/resource-manager/v1/folders",
            Some(&token),
            Some(json!({"cloudId": cloud, "name": "Not_A_Name"}).to_string()),
        )
        .await;
    assert_eq!(invalid.message(), rest.body["message"].as_str().unwrap());
    let missing = folders
        .get(authed(
            &token,
            GetFolderRequest {
                folder_id: "b1gnosuchfolder000000".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code() as i32, 5, "{missing:?}");
    let rest = gw
        .iam(
            "GET",
            "/resource-manager/v1/folders/b1gnosuchfolder000000",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(missing.message(), rest.body["message"].as_str().unwrap());
    let scheduled = folders
        .delete(authed(
            &token,
            DeleteFolderRequest {
                folder_id: folder_id.clone(),
                delete_after: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 0,
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(scheduled.code(), Code::InvalidArgument);
    assert!(
        scheduled.message().contains("delete_after"),
        "{scheduled:?}"
    );

    // Methods and services not served: UNIMPLEMENTED (12), saying so.
    let mut raw = tonic::client::Grpc::new(channel.clone());
    for (path, says) in [
        (
            "/yandex.cloud.iam.v1.ServiceAccountService/ListOperations",
            "ServiceAccountService/ListOperations is not served",
        ),
        (
            "/yandex.cloud.operation.OperationService/Cancel",
            "of yandex.cloud.operation.OperationService it serves Get",
        ),
        (
            "/yandex.cloud.compute.v1.InstanceService/List",
            "does not serve \"yandex.cloud.compute.v1.InstanceService\"",
        ),
    ] {
        raw.ready().await.unwrap();
        let refused = raw
            .unary(
                authed(&token, ()),
                http::uri::PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::<(), ()>::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(refused.code() as i32, 12, "{path}: {refused:?}");
        assert!(
            refused.message().contains(says),
            "{path}: {}",
            refused.message()
        );
    }

    // Revocation over gRPC: the revoked token no longer authenticates.
    let revoked = IamTokenServiceClient::new(channel.clone())
        .revoke(authed(
            &token,
            RevokeIamTokenRequest {
                iam_token: nobody_token.clone(),
            },
        ))
        .await
        .expect("Revoke")
        .into_inner();
    assert_eq!(revoked.subject_id, nobody.id);
    let refused = folders
        .get(authed(
            &nobody_token,
            GetFolderRequest {
                folder_id: folder_id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // The audit line of the gRPC mutation, with no token or key in the log.
    let audit = gw.dir.path().join("audit.log");
    wait_for("the gRPC mutation audited", async || {
        audit_lines(&audit)
            .iter()
            .any(|l| l["request_id"] == "grpc-call-1")
    })
    .await;
    let lines = audit_lines(&audit);
    let line = lines
        .iter()
        .find(|l| l["request_id"] == "grpc-call-1")
        .unwrap();
    assert_eq!(line["event"], "management");
    assert_eq!(
        line["method"],
        "yandex.cloud.resourcemanager.v1.FolderService/Create"
    );
    assert_eq!(line["decision"], "allow");
    assert_eq!(line["resource"], format!("folder:{folder_id}"));
    assert_eq!(
        line["principal"],
        KeyFile::bootstrap(&gw).service_account_id()
    );
    let raw_log = std::fs::read_to_string(&audit).unwrap();
    assert!(
        !raw_log.contains(&token) && !raw_log.contains(&nobody_token),
        "no token in the audit log"
    );
    assert!(!raw_log.contains("PRIVATE KEY"), "no key in the audit log");
    gw.stop().await;
}

#[tokio::test]
async fn a_create_retried_with_its_idempotency_key_creates_once() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let (channel, token, cloud) = admin(&gw).await;
    let mut folders = FolderServiceClient::new(channel.clone());
    let create = |name: &str, key: &str| {
        let mut request = authed(
            &token,
            CreateFolderRequest {
                cloud_id: cloud.clone(),
                name: name.into(),
                ..Default::default()
            },
        );
        request
            .metadata_mut()
            .insert("idempotency-key", key.parse().expect("ascii"));
        request
    };
    let first = folders
        .create(create("retried", "3f2b8c1e-0001"))
        .await
        .expect("FolderService.Create")
        .into_inner();
    let again = folders
        .create(create("retried", "3f2b8c1e-0001"))
        .await
        .expect("the retry is answered")
        .into_inner();
    assert_eq!(again.id, first.id, "the first call's operation");
    let listed = folders
        .list(authed(
            &token,
            ListFoldersRequest {
                cloud_id: cloud.clone(),
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .expect("FolderService.List")
        .into_inner();
    assert_eq!(
        listed
            .folders
            .iter()
            .filter(|f| f.name == "retried")
            .count(),
        1,
        "one folder"
    );
    // The same key for another request is refused; a new key runs the call.
    let reused = folders
        .create(create("other", "3f2b8c1e-0001"))
        .await
        .expect_err("a reused key");
    assert_eq!(reused.code(), Code::InvalidArgument, "{reused:?}");
    let fresh = folders
        .create(create("other", "3f2b8c1e-0002"))
        .await
        .expect("a new key")
        .into_inner();
    assert_ne!(fresh.id, first.id);
    // The same key is the REST call's too, for the same caller: a different request there.
    let rest = gw
        .client
        .post(format!("{}/resource-manager/v1/folders", gw.url))
        .bearer_auth(&token)
        .header("Idempotency-Key", "3f2b8c1e-0001")
        .json(&json!({"cloudId": cloud, "name": "retried"}))
        .send()
        .await
        .expect("REST answers");
    assert_eq!(rest.status(), 400, "a key of a gRPC call, reused over REST");
    gw.stop().await;
}
