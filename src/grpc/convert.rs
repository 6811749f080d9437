//! The gateway's messages in their binary form. The IAM methods render a resource once, as the
//! proto3 JSON the REST API answers (`cloud_message`, `key_message`, …), and a finished
//! operation keeps its `metadata` and `response` in the store as such JSON, each with its
//! `@type` ([`crate::iam::operation`]). Here that JSON becomes the generated message of the
//! same name, field by field ([`FromJson`]), so that REST and gRPC answer the same content and
//! stored operations need no second format.
//!
//! [`pack`] turns a stored `Any` into `google.protobuf.Any`: the message named by its `@type`,
//! encoded, under the type URL of the generated message (`prost::Name::type_url`, which is
//! `type.googleapis.com/<full name>`): the URL a client unpacks by.

use std::collections::BTreeMap;

use prost::Name;
use prost_types::{Any, Timestamp};
use serde::Serialize;
use serde_json::Value;

use crate::iam::operation::{self, TYPE_URL_PREFIX};
use crate::iam::status::Status;
use crate::iam::store::{Operation, OperationResult, Page};

use super::proto::google::rpc;
use super::proto::yandex::cloud::{access, iam, operation as op, resourcemanager as rm};

/// A proto3 JSON object as the IAM methods write it, read field by field; a missing or
/// mistyped field reads as the proto3 default.
#[derive(Clone, Copy)]
pub struct Json<'a>(pub &'a Value);

impl<'a> Json<'a> {
    fn field(self, key: &str) -> &'a Value {
        self.0.get(key).unwrap_or(&Value::Null)
    }

    pub fn str(self, key: &str) -> String {
        self.field(key).as_str().unwrap_or_default().to_owned()
    }

    pub fn bool(self, key: &str) -> bool {
        self.field(key).as_bool().unwrap_or_default()
    }

    /// An RFC 3339 time; absent when missing or unreadable.
    pub fn time(self, key: &str) -> Option<Timestamp> {
        self.field(key).as_str().and_then(|t| t.parse().ok())
    }

    pub fn strings(self, key: &str) -> Vec<String> {
        self.field(key)
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn labels(self, key: &str) -> BTreeMap<String, String> {
        self.field(key)
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn object(self, key: &str) -> Json<'a> {
        Json(self.field(key))
    }

    pub fn objects(self, key: &str) -> Vec<Json<'a>> {
        self.field(key)
            .as_array()
            .map(|a| a.iter().map(Json).collect())
            .unwrap_or_default()
    }
}

/// A generated message read from the proto3 JSON of the same message.
pub trait FromJson: Sized {
    fn from_json(json: Json<'_>) -> Self;

    /// The message of a REST message struct (`cloud_message(&cloud)`, …).
    fn from_message(message: &impl Serialize) -> Self {
        Self::from_json(Json(&operation::message(message)))
    }
}

/// A page of a list method as a list response's messages (each rendered by `render`, the
/// REST message) and its `next_page_token`, empty on the last page.
pub fn messages<M: FromJson, T, S: Serialize>(
    page: &Page<T>,
    render: impl Fn(&T) -> S,
) -> (Vec<M>, String) {
    (
        page.items
            .iter()
            .map(|item| M::from_message(&render(item)))
            .collect(),
        page.next_page_token.clone().unwrap_or_default(),
    )
}

/// Unix seconds as a `Timestamp`.
pub fn timestamp(unix: i64) -> Timestamp {
    Timestamp {
        seconds: unix,
        nanos: 0,
    }
}

impl FromJson for () {
    fn from_json(_: Json<'_>) -> Self {}
}

impl FromJson for iam::v1::SuspendServiceAccountResponse {
    fn from_json(_: Json<'_>) -> Self {
        iam::v1::SuspendServiceAccountResponse {}
    }
}

impl FromJson for iam::v1::ReactivateServiceAccountResponse {
    fn from_json(_: Json<'_>) -> Self {
        iam::v1::ReactivateServiceAccountResponse {}
    }
}

impl FromJson for rm::v1::Cloud {
    fn from_json(j: Json<'_>) -> Self {
        rm::v1::Cloud {
            id: j.str("id"),
            created_at: j.time("createdAt"),
            name: j.str("name"),
            description: j.str("description"),
            organization_id: j.str("organizationId"),
            labels: j.labels("labels"),
        }
    }
}

impl FromJson for rm::v1::Folder {
    fn from_json(j: Json<'_>) -> Self {
        rm::v1::Folder {
            id: j.str("id"),
            cloud_id: j.str("cloudId"),
            created_at: j.time("createdAt"),
            name: j.str("name"),
            description: j.str("description"),
            labels: j.labels("labels"),
            status: rm::v1::folder::Status::from_str_name(&j.str("status"))
                .unwrap_or_default()
                .into(),
        }
    }
}

impl FromJson for iam::v1::ServiceAccount {
    fn from_json(j: Json<'_>) -> Self {
        iam::v1::ServiceAccount {
            id: j.str("id"),
            folder_id: j.str("folderId"),
            created_at: j.time("createdAt"),
            name: j.str("name"),
            description: j.str("description"),
            labels: j.labels("labels"),
            last_authenticated_at: j.time("lastAuthenticatedAt"),
            status: iam::v1::service_account::Status::from_str_name(&j.str("status"))
                .unwrap_or_default()
                .into(),
            expires_at: j.time("expiresAt"),
        }
    }
}

impl FromJson for iam::v1::Key {
    fn from_json(j: Json<'_>) -> Self {
        iam::v1::Key {
            id: j.str("id"),
            subject: Some(iam::v1::key::Subject::ServiceAccountId(
                j.str("serviceAccountId"),
            )),
            created_at: j.time("createdAt"),
            description: j.str("description"),
            key_algorithm: iam::v1::key::Algorithm::from_str_name(&j.str("keyAlgorithm"))
                .unwrap_or_default()
                .into(),
            public_key: j.str("publicKey"),
            last_used_at: j.time("lastUsedAt"),
        }
    }
}

impl FromJson for iam::v1::awscompatibility::AccessKey {
    fn from_json(j: Json<'_>) -> Self {
        iam::v1::awscompatibility::AccessKey {
            id: j.str("id"),
            service_account_id: j.str("serviceAccountId"),
            created_at: j.time("createdAt"),
            description: j.str("description"),
            key_id: j.str("keyId"),
            last_used_at: j.time("lastUsedAt"),
        }
    }
}

impl FromJson for iam::v1::ApiKey {
    fn from_json(j: Json<'_>) -> Self {
        iam::v1::ApiKey {
            id: j.str("id"),
            service_account_id: j.str("serviceAccountId"),
            created_at: j.time("createdAt"),
            description: j.str("description"),
            last_used_at: j.time("lastUsedAt"),
            scope: String::new(),
            scopes: j.strings("scopes"),
            expires_at: j.time("expiresAt"),
            masked_secret: j.str("maskedSecret"),
        }
    }
}

impl FromJson for iam::v1::workload::oidc::Federation {
    fn from_json(j: Json<'_>) -> Self {
        iam::v1::workload::oidc::Federation {
            id: j.str("id"),
            name: j.str("name"),
            folder_id: j.str("folderId"),
            description: j.str("description"),
            enabled: j.bool("enabled"),
            audiences: j.strings("audiences"),
            issuer: j.str("issuer"),
            jwks_url: j.str("jwksUrl"),
            labels: j.labels("labels"),
            created_at: j.time("createdAt"),
        }
    }
}

impl FromJson for iam::v1::workload::FederatedCredential {
    fn from_json(j: Json<'_>) -> Self {
        iam::v1::workload::FederatedCredential {
            id: j.str("id"),
            service_account_id: j.str("serviceAccountId"),
            federation_id: j.str("federationId"),
            external_subject_id: j.str("externalSubjectId"),
            created_at: j.time("createdAt"),
        }
    }
}

impl FromJson for access::AccessBinding {
    fn from_json(j: Json<'_>) -> Self {
        let subject = j.object("subject");
        access::AccessBinding {
            role_id: j.str("roleId"),
            subject: Some(access::Subject {
                id: subject.str("id"),
                r#type: subject.str("type"),
            }),
        }
    }
}

impl FromJson for access::AccessBindingsOperationResult {
    fn from_json(j: Json<'_>) -> Self {
        access::AccessBindingsOperationResult {
            effective_deltas: j
                .objects("effectiveDeltas")
                .into_iter()
                .map(|delta| access::AccessBindingDelta {
                    action: access::AccessBindingAction::from_str_name(&delta.str("action"))
                        .unwrap_or_default()
                        .into(),
                    access_binding: Some(access::AccessBinding::from_json(
                        delta.object("accessBinding"),
                    )),
                })
                .collect(),
        }
    }
}

/// The operations' metadata messages: each names the resource it concerns by one id field.
macro_rules! id_metadata {
    ($($message:ty { $field:ident: $key:literal }),+ $(,)?) => {
        $(
            impl FromJson for $message {
                // Most have the one field; the deletion metadata of clouds and folders more.
                #[allow(clippy::needless_update)]
                fn from_json(j: Json<'_>) -> Self {
                    Self { $field: j.str($key), ..Self::default() }
                }
            }
        )+
    };
}

id_metadata!(
    rm::v1::CreateCloudMetadata {
        cloud_id: "cloudId"
    },
    rm::v1::UpdateCloudMetadata {
        cloud_id: "cloudId"
    },
    rm::v1::DeleteCloudMetadata {
        cloud_id: "cloudId"
    },
    rm::v1::CreateFolderMetadata {
        folder_id: "folderId"
    },
    rm::v1::UpdateFolderMetadata {
        folder_id: "folderId"
    },
    rm::v1::DeleteFolderMetadata {
        folder_id: "folderId"
    },
    iam::v1::CreateServiceAccountMetadata {
        service_account_id: "serviceAccountId"
    },
    iam::v1::UpdateServiceAccountMetadata {
        service_account_id: "serviceAccountId"
    },
    iam::v1::DeleteServiceAccountMetadata {
        service_account_id: "serviceAccountId"
    },
    iam::v1::SuspendServiceAccountMetadata {
        service_account_id: "serviceAccountId"
    },
    iam::v1::ReactivateServiceAccountMetadata {
        service_account_id: "serviceAccountId"
    },
    iam::v1::UpdateKeyMetadata { key_id: "keyId" },
    iam::v1::DeleteKeyMetadata { key_id: "keyId" },
    iam::v1::awscompatibility::UpdateAccessKeyMetadata {
        access_key_id: "accessKeyId"
    },
    iam::v1::awscompatibility::DeleteAccessKeyMetadata {
        access_key_id: "accessKeyId"
    },
    iam::v1::UpdateApiKeyMetadata {
        api_key_id: "apiKeyId"
    },
    iam::v1::DeleteApiKeyMetadata {
        api_key_id: "apiKeyId"
    },
    iam::v1::workload::oidc::CreateFederationMetadata {
        federation_id: "federationId"
    },
    iam::v1::workload::oidc::UpdateFederationMetadata {
        federation_id: "federationId"
    },
    iam::v1::workload::oidc::DeleteFederationMetadata {
        federation_id: "federationId"
    },
    iam::v1::workload::CreateFederatedCredentialMetadata {
        federated_credential_id: "federatedCredentialId"
    },
    iam::v1::workload::DeleteFederatedCredentialMetadata {
        federated_credential_id: "federatedCredentialId"
    },
    access::SetAccessBindingsMetadata {
        resource_id: "resourceId"
    },
    access::UpdateAccessBindingsMetadata {
        resource_id: "resourceId"
    },
);

/// `message` packed as `Any` under its type URL.
fn any<M: FromJson + Name>(json: Json<'_>) -> Result<Any, Status> {
    Any::from_msg(&M::from_json(json)).map_err(|e| Status::internal(&e))
}

/// A stored `Any` (proto3 JSON with `@type`) as `google.protobuf.Any`: the message its
/// `@type` names, encoded. A name without a message here is INTERNAL: it would unpack as an
/// empty message.
pub fn pack(value: &Value) -> Result<Any, Status> {
    let url = Json(value).str("@type");
    let name = url.strip_prefix(TYPE_URL_PREFIX).unwrap_or(&url);
    let json = Json(value);
    macro_rules! one_of {
        ($($message:ty),+ $(,)?) => {
            $(
                if name == <$message as Name>::full_name() {
                    return any::<$message>(json);
                }
            )+
        };
    }
    one_of!(
        (),
        rm::v1::Cloud,
        rm::v1::Folder,
        iam::v1::ServiceAccount,
        iam::v1::Key,
        iam::v1::awscompatibility::AccessKey,
        iam::v1::ApiKey,
        iam::v1::workload::oidc::Federation,
        iam::v1::workload::FederatedCredential,
        access::AccessBindingsOperationResult,
        rm::v1::CreateCloudMetadata,
        rm::v1::UpdateCloudMetadata,
        rm::v1::DeleteCloudMetadata,
        rm::v1::CreateFolderMetadata,
        rm::v1::UpdateFolderMetadata,
        rm::v1::DeleteFolderMetadata,
        iam::v1::CreateServiceAccountMetadata,
        iam::v1::UpdateServiceAccountMetadata,
        iam::v1::DeleteServiceAccountMetadata,
        iam::v1::SuspendServiceAccountMetadata,
        iam::v1::ReactivateServiceAccountMetadata,
        iam::v1::SuspendServiceAccountResponse,
        iam::v1::ReactivateServiceAccountResponse,
        iam::v1::UpdateKeyMetadata,
        iam::v1::DeleteKeyMetadata,
        iam::v1::awscompatibility::UpdateAccessKeyMetadata,
        iam::v1::awscompatibility::DeleteAccessKeyMetadata,
        iam::v1::UpdateApiKeyMetadata,
        iam::v1::DeleteApiKeyMetadata,
        iam::v1::workload::oidc::CreateFederationMetadata,
        iam::v1::workload::oidc::UpdateFederationMetadata,
        iam::v1::workload::oidc::DeleteFederationMetadata,
        iam::v1::workload::CreateFederatedCredentialMetadata,
        iam::v1::workload::DeleteFederatedCredentialMetadata,
        access::SetAccessBindingsMetadata,
        access::UpdateAccessBindingsMetadata,
    );
    Err(Status::internal(&format!(
        "a stored operation carries {}, which has no message type",
        crate::exchange::quote(&url)
    )))
}

/// A stored operation as `yandex.cloud.operation.Operation`.
pub fn operation(stored: &Operation) -> Result<op::Operation, Status> {
    let result = match &stored.result {
        Some(OperationResult::Response(response)) => {
            Some(op::operation::Result::Response(pack(response)?))
        }
        Some(OperationResult::Error(error)) => {
            let error = Json(error);
            Some(op::operation::Result::Error(rpc::Status {
                code: error
                    .0
                    .get("code")
                    .and_then(Value::as_i64)
                    .and_then(|c| i32::try_from(c).ok())
                    .unwrap_or_default(),
                message: error.str("message"),
                details: Vec::new(),
            }))
        }
        None => None,
    };
    Ok(op::Operation {
        id: stored.id.clone(),
        description: stored.description.clone(),
        created_at: Some(timestamp(stored.created_at)),
        created_by: stored.created_by.clone(),
        modified_at: Some(timestamp(stored.modified_at)),
        done: stored.done,
        metadata: Some(pack(&stored.metadata)?),
        result,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::operation::{any as json_any, types};
    use prost::Message;
    use serde_json::json;

    #[test]
    fn every_stored_operation_type_packs_under_its_own_type_url() {
        for types in types::ALL {
            for name in [types.metadata, types.response] {
                let packed = pack(&json_any(name, &json!({}))).expect(name);
                assert_eq!(packed.type_url, format!("type.googleapis.com/{name}"));
            }
        }
        let unknown = pack(&json!({"@type": "type.googleapis.com/x.Unknown"})).unwrap_err();
        assert_eq!(unknown.code, crate::iam::status::Code::Internal);
        assert!(pack(&json!({})).is_err(), "no @type");
    }

    #[test]
    fn packed_messages_keep_their_fields() {
        let account = json_any(
            types::SERVICE_ACCOUNT_CREATE.response,
            &json!({"id": "aje1", "folderId": "b1gf", "createdAt": "2027-01-15T08:00:00Z",
                    "name": "deployer", "description": "d", "labels": {"env": "prod"},
                    "status": "SUSPENDED"}),
        );
        let any = pack(&account).unwrap();
        let decoded = iam::v1::ServiceAccount::decode(any.value.as_slice()).unwrap();
        assert_eq!(decoded.id, "aje1");
        assert_eq!(decoded.folder_id, "b1gf");
        assert_eq!(decoded.created_at, Some(timestamp(1_800_000_000)));
        assert_eq!(decoded.labels["env"], "prod");
        assert_eq!(
            decoded.status,
            i32::from(iam::v1::service_account::Status::Suspended)
        );

        let key = iam::v1::Key::from_json(Json(&json!({"id": "k", "serviceAccountId": "sa",
            "keyAlgorithm": "RSA_4096", "publicKey": "PEM"})));
        assert_eq!(
            key.subject,
            Some(iam::v1::key::Subject::ServiceAccountId("sa".into()))
        );
        assert_eq!(
            key.key_algorithm,
            i32::from(iam::v1::key::Algorithm::Rsa4096)
        );

        let api_key = iam::v1::ApiKey::from_json(Json(&json!({"id": "k",
            "serviceAccountId": "sa", "createdAt": "2027-01-15T08:00:00Z", "scopes": ["yc.a"],
            "expiresAt": "2027-01-15T08:00:01Z", "maskedSecret": "****abcdef"})));
        assert_eq!(api_key.scopes, ["yc.a"]);
        assert_eq!(api_key.expires_at, Some(timestamp(1_800_000_001)));
        assert_eq!(api_key.last_used_at, None, "absent: never used");
        assert_eq!(api_key.masked_secret, "****abcdef");

        let result = access::AccessBindingsOperationResult::from_json(Json(&json!({
            "effectiveDeltas": [{"action": "REMOVE", "accessBinding":
                {"roleId": "viewer", "subject": {"id": "aje1", "type": "serviceAccount"}}}]
        })));
        let delta = &result.effective_deltas[0];
        assert_eq!(delta.action, i32::from(access::AccessBindingAction::Remove));
        let binding = delta.access_binding.as_ref().unwrap();
        assert_eq!(binding.role_id, "viewer");
        assert_eq!(binding.subject.as_ref().unwrap().r#type, "serviceAccount");
    }

    #[test]
    fn a_failed_operation_carries_its_status() {
        let stored = Operation {
            id: "op".into(),
            resource_id: "r".into(),
            description: "Delete key".into(),
            created_by: "sa".into(),
            created_at: 60,
            modified_at: 61,
            done: true,
            metadata: json_any(types::KEY_DELETE.metadata, &json!({"keyId": "k"})),
            result: Some(OperationResult::Error(
                json!({"code": 7, "message": "no", "details": []}),
            )),
            version: 1,
        };
        let message = operation(&stored).unwrap();
        assert_eq!(message.modified_at, Some(timestamp(61)));
        let metadata = message.metadata.unwrap();
        assert_eq!(
            metadata.type_url,
            "type.googleapis.com/yandex.cloud.iam.v1.DeleteKeyMetadata"
        );
        assert_eq!(
            iam::v1::DeleteKeyMetadata::decode(metadata.value.as_slice())
                .unwrap()
                .key_id,
            "k"
        );
        match message.result {
            Some(op::operation::Result::Error(status)) => {
                assert_eq!((status.code, status.message.as_str()), (7, "no"));
            }
            other => panic!("{other:?}"),
        }
    }
}
