//! Operations as Yandex Cloud answers them: every mutating call returns an
//! `operation.Operation`, and `GET /operations/{id}` returns it again. Its `metadata` and
//! `response` are `google.protobuf.Any` values: over REST, JSON objects whose `@type` is
//! `type.googleapis.com/<full message name>` — clients unpack them by that name, and a wrong
//! name silently yields an empty message, so the names live here, once, per method.
//!
//! The mutations of this gateway finish within the call: their operations are stored `done`
//! with their response or error, and a client that polls `GET /operations/{id}` gets the same
//! object.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::status::{Status, StatusBody};
use super::store::{Operation, OperationResult};
use crate::time::rfc3339;

/// The prefix of every `@type`.
pub const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// The message types a method's operation carries: `metadata`, and `response` when it
/// succeeds (`google.protobuf.Empty` for deletes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationTypes {
    pub metadata: &'static str,
    pub response: &'static str,
}

const EMPTY: &str = "google.protobuf.Empty";
const BINDINGS_RESULT: &str = "yandex.cloud.access.AccessBindingsOperationResult";

/// The types of the operations of each mutating method, as the Yandex protos declare them
/// (`(yandex.cloud.api.operation)` options).
pub mod types {
    use super::{BINDINGS_RESULT, EMPTY, OperationTypes};

    const fn t(metadata: &'static str, response: &'static str) -> OperationTypes {
        OperationTypes { metadata, response }
    }

    pub const CLOUD_CREATE: OperationTypes = t(
        "yandex.cloud.resourcemanager.v1.CreateCloudMetadata",
        "yandex.cloud.resourcemanager.v1.Cloud",
    );
    pub const CLOUD_UPDATE: OperationTypes = t(
        "yandex.cloud.resourcemanager.v1.UpdateCloudMetadata",
        "yandex.cloud.resourcemanager.v1.Cloud",
    );
    pub const CLOUD_DELETE: OperationTypes =
        t("yandex.cloud.resourcemanager.v1.DeleteCloudMetadata", EMPTY);
    pub const FOLDER_CREATE: OperationTypes = t(
        "yandex.cloud.resourcemanager.v1.CreateFolderMetadata",
        "yandex.cloud.resourcemanager.v1.Folder",
    );
    pub const FOLDER_UPDATE: OperationTypes = t(
        "yandex.cloud.resourcemanager.v1.UpdateFolderMetadata",
        "yandex.cloud.resourcemanager.v1.Folder",
    );
    pub const FOLDER_DELETE: OperationTypes = t(
        "yandex.cloud.resourcemanager.v1.DeleteFolderMetadata",
        EMPTY,
    );
    pub const SERVICE_ACCOUNT_CREATE: OperationTypes = t(
        "yandex.cloud.iam.v1.CreateServiceAccountMetadata",
        "yandex.cloud.iam.v1.ServiceAccount",
    );
    pub const SERVICE_ACCOUNT_UPDATE: OperationTypes = t(
        "yandex.cloud.iam.v1.UpdateServiceAccountMetadata",
        "yandex.cloud.iam.v1.ServiceAccount",
    );
    pub const SERVICE_ACCOUNT_DELETE: OperationTypes =
        t("yandex.cloud.iam.v1.DeleteServiceAccountMetadata", EMPTY);
    pub const SERVICE_ACCOUNT_SUSPEND: OperationTypes = t(
        "yandex.cloud.iam.v1.SuspendServiceAccountMetadata",
        "yandex.cloud.iam.v1.SuspendServiceAccountResponse",
    );
    pub const SERVICE_ACCOUNT_REACTIVATE: OperationTypes = t(
        "yandex.cloud.iam.v1.ReactivateServiceAccountMetadata",
        "yandex.cloud.iam.v1.ReactivateServiceAccountResponse",
    );
    pub const KEY_UPDATE: OperationTypes = t(
        "yandex.cloud.iam.v1.UpdateKeyMetadata",
        "yandex.cloud.iam.v1.Key",
    );
    pub const KEY_DELETE: OperationTypes = t("yandex.cloud.iam.v1.DeleteKeyMetadata", EMPTY);
    pub const ACCESS_KEY_UPDATE: OperationTypes = t(
        "yandex.cloud.iam.v1.awscompatibility.UpdateAccessKeyMetadata",
        "yandex.cloud.iam.v1.awscompatibility.AccessKey",
    );
    pub const ACCESS_KEY_DELETE: OperationTypes = t(
        "yandex.cloud.iam.v1.awscompatibility.DeleteAccessKeyMetadata",
        EMPTY,
    );
    pub const API_KEY_UPDATE: OperationTypes = t(
        "yandex.cloud.iam.v1.UpdateApiKeyMetadata",
        "yandex.cloud.iam.v1.ApiKey",
    );
    pub const API_KEY_DELETE: OperationTypes = t("yandex.cloud.iam.v1.DeleteApiKeyMetadata", EMPTY);
    pub const FEDERATION_CREATE: OperationTypes = t(
        "yandex.cloud.iam.v1.workload.oidc.CreateFederationMetadata",
        "yandex.cloud.iam.v1.workload.oidc.Federation",
    );
    pub const FEDERATION_UPDATE: OperationTypes = t(
        "yandex.cloud.iam.v1.workload.oidc.UpdateFederationMetadata",
        "yandex.cloud.iam.v1.workload.oidc.Federation",
    );
    pub const FEDERATION_DELETE: OperationTypes = t(
        "yandex.cloud.iam.v1.workload.oidc.DeleteFederationMetadata",
        EMPTY,
    );
    pub const FEDERATED_CREDENTIAL_CREATE: OperationTypes = t(
        "yandex.cloud.iam.v1.workload.CreateFederatedCredentialMetadata",
        "yandex.cloud.iam.v1.workload.FederatedCredential",
    );
    pub const FEDERATED_CREDENTIAL_DELETE: OperationTypes = t(
        "yandex.cloud.iam.v1.workload.DeleteFederatedCredentialMetadata",
        EMPTY,
    );
    pub const SET_ACCESS_BINDINGS: OperationTypes = t(
        "yandex.cloud.access.SetAccessBindingsMetadata",
        BINDINGS_RESULT,
    );
    pub const UPDATE_ACCESS_BINDINGS: OperationTypes = t(
        "yandex.cloud.access.UpdateAccessBindingsMetadata",
        BINDINGS_RESULT,
    );

    /// Every method's types: what a stored operation may carry.
    pub const ALL: [OperationTypes; 24] = [
        CLOUD_CREATE,
        CLOUD_UPDATE,
        CLOUD_DELETE,
        FOLDER_CREATE,
        FOLDER_UPDATE,
        FOLDER_DELETE,
        SERVICE_ACCOUNT_CREATE,
        SERVICE_ACCOUNT_UPDATE,
        SERVICE_ACCOUNT_DELETE,
        SERVICE_ACCOUNT_SUSPEND,
        SERVICE_ACCOUNT_REACTIVATE,
        KEY_UPDATE,
        KEY_DELETE,
        ACCESS_KEY_UPDATE,
        ACCESS_KEY_DELETE,
        API_KEY_UPDATE,
        API_KEY_DELETE,
        FEDERATION_CREATE,
        FEDERATION_UPDATE,
        FEDERATION_DELETE,
        FEDERATED_CREDENTIAL_CREATE,
        FEDERATED_CREDENTIAL_DELETE,
        SET_ACCESS_BINDINGS,
        UPDATE_ACCESS_BINDINGS,
    ];
}

/// `message` as an `Any` in JSON: its fields with `@type` first.
pub fn any(type_name: &str, message: &Value) -> Value {
    let mut object = Map::new();
    object.insert(
        "@type".to_owned(),
        Value::String(format!("{TYPE_URL_PREFIX}{type_name}")),
    );
    if let Value::Object(fields) = message {
        for (k, v) in fields {
            if k != "@type" {
                object.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(object)
}

/// The stored parts of a finished operation: `metadata` and `response` packed as `Any` of
/// `types`, or the error as a `google.rpc.Status`.
pub fn finished(
    types: OperationTypes,
    metadata: &Value,
    outcome: Result<&Value, &Status>,
) -> (Value, OperationResult) {
    let result = match outcome {
        Ok(response) => OperationResult::Response(any(types.response, response)),
        Err(status) => OperationResult::Error(status.body()),
    };
    (any(types.metadata, metadata), result)
}

/// `message` as proto3 JSON. The messages are plain structs of strings, numbers and maps, which
/// always serialize; `null` stands in should one ever not.
pub fn message(message: &impl Serialize) -> Value {
    serde_json::to_value(message).unwrap_or(Value::Null)
}

/// `operation.Operation` as the REST API returns it (camelCase, RFC 3339 times).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Operation)]
pub struct OperationMessage {
    pub id: String,
    pub description: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The service account that called the method.
    pub created_by: String,
    /// RFC 3339, UTC.
    pub modified_at: String,
    /// Always `true`: the gateway's operations finish within the call.
    pub done: bool,
    /// The method's metadata message, packed as `google.protobuf.Any`.
    #[schema(value_type = AnyMessage)]
    pub metadata: Value,
    /// The method's answer when it succeeded, packed as `google.protobuf.Any`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<AnyMessage>)]
    pub response: Option<Value>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<StatusBody>)]
    pub error: Option<Value>,
}

/// `google.protobuf.Any` in JSON: the message's fields next to `@type`, the type URL that
/// names the message (`type.googleapis.com/<full message name>`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AnyMessage {
    #[schema(
        rename = "@type",
        example = "type.googleapis.com/yandex.cloud.iam.v1.Key"
    )]
    type_url: String,
}

/// An operation as the REST API returns it.
pub fn to_message(op: &Operation) -> OperationMessage {
    let (response, error) = match &op.result {
        Some(OperationResult::Response(v)) => (Some(v.clone()), None),
        Some(OperationResult::Error(v)) => (None, Some(v.clone())),
        None => (None, None),
    };
    OperationMessage {
        id: op.id.clone(),
        description: op.description.clone(),
        created_at: rfc3339(op.created_at),
        created_by: op.created_by.clone(),
        modified_at: rfc3339(op.modified_at),
        done: op.done,
        metadata: op.metadata.clone(),
        response,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn any_puts_the_type_url_first_and_keeps_the_fields() {
        let packed = any(
            types::SERVICE_ACCOUNT_CREATE.response,
            &json!({"id": "aje1", "name": "deployer"}),
        );
        assert_eq!(
            packed,
            json!({"@type": "type.googleapis.com/yandex.cloud.iam.v1.ServiceAccount", "id": "aje1", "name": "deployer"})
        );
        let text = serde_json::to_string(&packed).unwrap();
        assert!(
            text.starts_with(r#"{"@type":"type.googleapis.com/"#),
            "{text}"
        );
        let replaced = any("a.B", &json!({"@type": "x", "k": 1}));
        assert_eq!(replaced["@type"], "type.googleapis.com/a.B");
    }

    #[test]
    fn a_finished_operation_has_its_response_or_its_error() {
        let meta = json!({"serviceAccountId": "aje1"});
        let (m, r) = finished(types::SERVICE_ACCOUNT_DELETE, &meta, Ok(&json!({})));
        assert_eq!(
            m["@type"],
            "type.googleapis.com/yandex.cloud.iam.v1.DeleteServiceAccountMetadata"
        );
        assert_eq!(
            r,
            OperationResult::Response(
                json!({"@type": "type.googleapis.com/google.protobuf.Empty"})
            )
        );
        let denied = Status::permission_denied("no");
        let (_, r) = finished(types::SERVICE_ACCOUNT_DELETE, &meta, Err(&denied));
        assert_eq!(
            r,
            OperationResult::Error(json!({"code": 7, "message": "no", "details": []}))
        );
    }

    #[test]
    fn rest_json_is_camel_case_with_rfc3339_times() {
        let op = Operation {
            id: "aje0op".into(),
            resource_id: "aje1".into(),
            description: "Create service account".into(),
            created_by: "ajeadmin".into(),
            created_at: 1_800_000_000,
            modified_at: 1_800_000_001,
            done: true,
            metadata: json!({"@type": "type.googleapis.com/x.M"}),
            result: Some(OperationResult::Response(
                json!({"@type": "type.googleapis.com/x.R"}),
            )),
            version: 1,
        };
        let v = message(&to_message(&op));
        assert_eq!(v["createdAt"], "2027-01-15T08:00:00Z");
        assert_eq!(v["modifiedAt"], "2027-01-15T08:00:01Z");
        assert_eq!(v["done"], true);
        assert_eq!(v["response"]["@type"], "type.googleapis.com/x.R");
        assert!(v.get("error").is_none());
        assert!(v.get("resourceId").is_none(), "not a field of Operation");
    }

    #[test]
    fn every_type_is_a_full_message_name() {
        for t in types::ALL {
            for name in [t.metadata, t.response] {
                assert!(
                    name.starts_with("yandex.cloud.") || name.starts_with("google.protobuf."),
                    "{name}"
                );
                assert!(
                    !name.contains(' ') && name.split('.').count() >= 3,
                    "{name}"
                );
            }
        }
    }
}
