//! The IAM plane: clouds, folders, service accounts, OIDC federations, federated credentials,
//! authorized keys, API keys, access bindings and operations as managed, persistent resources.
//!
//! This module holds what every part of the plane shares: [`ResourceKind`], the kinds of
//! resource, and [`ids`], the Yandex-style identifiers they carry. [`store`] keeps the
//! resources in SQLite or PostgreSQL, one transaction per mutation, each recorded in a change
//! log. On top of it, and knowing nothing of HTTP:
//!
//! | module | job |
//! |---|---|
//! | [`status`] | how a call fails: a gRPC code, a message naming the rule, a stable reason; the `google.rpc.Status` body |
//! | [`validate`] | the field rules of the Yandex messages (names, labels, ids, pages, audiences, issuer URLs, subjects) |
//! | [`quota`] | quotas per cloud with Yandex Cloud's defaults, answered RESOURCE_EXHAUSTED |
//! | [`paging`] | opaque page tokens over id order, and update masks |
//! | [`operation`] | the Operation objects mutations return: `Any` packing with each method's message types |
//! | [`authn`] | `Authorization: Bearer <IAM token>` → the calling service account ([`authn::Principal`]) |
//! | [`own_keys`] | the gateway's own keys as the verifier of its IAM tokens, remembering (bounded) the tokens whose signatures verified |
//! | [`tokens`] | `IamTokenService.Create`: a service account's PS256 JWT, checked against its authorized key |
//! | [`service`] | the API's methods (authorized keys), each behind one authorization check |
//! | [`hierarchy_api`] | clouds, folders and service accounts (get, list, create, update, delete) and `OperationService.Get` |
//! | [`federations_api`] | `FederationService` and `FederatedCredentialService`: OIDC federations and the subjects they let act as service accounts |
//! | [`bindings_api`] | the access-binding methods of clouds, folders, service accounts and federations, with the grant rules |
//! | [`keys`] | authorized keys' RSA key material and the Yandex key file |
//! | [`api_keys`] | `ApiKeyService`: API keys of service accounts (the secret shown once, kept as a hash), their scopes, and the check of a presented key from memory |
//! | [`api_key_table`] | an API key's secret (made, hashed, masked, redacted in `Debug`) and the keys held in memory by the hash of their secrets |
//! | [`bootstrap`] | the first administrator of an empty store, and a new key for it |
//! | [`roles`] | the role graph as data: permissions, roles with their inclusions (closure computed), what each API method needs |
//! | [`catalog`] | the roles and permissions of downstream services declared in the configuration, and who grants every permission by name |
//! | [`authz`] | the in-memory authorization index: access bindings × resource hierarchy, incremental, with the grant (escalation) rules |
//! | [`usage`] | when service accounts last got a token and keys were last used: recorded in memory, written in batches |
//! | [`live`] | the store followed: the authorization index and the store's layer of the exchange directory, loaded at start and kept current from the change log |
//!
//! The REST routes are [`crate::http`]'s.

pub mod access_keys;
pub mod api_key_table;
pub mod api_keys;
pub mod authn;
pub mod authz;
pub mod bindings_api;
pub mod bootstrap;
pub mod catalog;
pub mod federations_api;
pub mod hierarchy_api;
pub mod idempotency;
pub mod ids;
pub mod keys;
pub mod live;
pub mod operation;
pub mod own_keys;
pub mod paging;
pub mod quota;
pub mod roles;
pub mod roles_api;
pub mod sealing;
pub mod service;
pub mod sigv4;
pub mod status;
pub mod store;
pub mod tokens;
pub mod usage;
pub mod validate;

use std::fmt;

/// The kinds of IAM resource. The string forms name them in the change log and in access
/// bindings' `resource_type`, and are part of the stored data: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    Cloud,
    Folder,
    ServiceAccount,
    Federation,
    FederatedCredential,
    AuthorizedKey,
    AccessKey,
    ApiKey,
    AccessBinding,
    Operation,
    RevokedToken,
}

impl ResourceKind {
    /// Every kind, in the order of the hierarchy (parents before children).
    pub const ALL: [ResourceKind; 11] = [
        ResourceKind::Cloud,
        ResourceKind::Folder,
        ResourceKind::ServiceAccount,
        ResourceKind::Federation,
        ResourceKind::FederatedCredential,
        ResourceKind::AuthorizedKey,
        ResourceKind::AccessKey,
        ResourceKind::ApiKey,
        ResourceKind::AccessBinding,
        ResourceKind::Operation,
        ResourceKind::RevokedToken,
    ];

    /// The stored name: `cloud`, `folder`, `service_account`, `federation`,
    /// `federated_credential`, `authorized_key`, `api_key`, `access_key`, `access_binding`,
    /// `operation`,
    /// `revoked_token` (an entry of the revocation list, by the token's `jti`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Cloud => "cloud",
            ResourceKind::Folder => "folder",
            ResourceKind::ServiceAccount => "service_account",
            ResourceKind::Federation => "federation",
            ResourceKind::FederatedCredential => "federated_credential",
            ResourceKind::AuthorizedKey => "authorized_key",
            ResourceKind::AccessKey => "access_key",
            ResourceKind::ApiKey => "api_key",
            ResourceKind::AccessBinding => "access_binding",
            ResourceKind::Operation => "operation",
            ResourceKind::RevokedToken => "revoked_token",
        }
    }

    /// The kind named by a stored name ([`ResourceKind::as_str`]).
    pub fn parse(name: &str) -> Option<ResourceKind> {
        ResourceKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether access bindings can be set on resources of this kind. Yandex grants roles on
    /// organizations, clouds, folders and individual resources; of the kinds kept here, those
    /// are clouds, folders, service accounts and federations.
    pub const fn is_bindable(self) -> bool {
        matches!(
            self,
            ResourceKind::Cloud
                | ResourceKind::Folder
                | ResourceKind::ServiceAccount
                | ResourceKind::Federation
        )
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
