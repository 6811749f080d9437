//! The records the store keeps and the inputs that create and update them, one set per kind of
//! resource, shaped after the Yandex messages (`resourcemanager.v1.Cloud`/`Folder`,
//! `iam.v1.ServiceAccount`/`Key`/`ApiKey`, `workload.oidc.Federation`,
//! `workload.FederatedCredential`, `access.AccessBinding`, `operation.Operation`), plus what
//! every call shares: pages, the change-log sequence number and the change records.
//!
//! Times are Unix seconds, passed in by the caller. Every record carries `version` (1 when
//! created, one more per update) for optimistic concurrency. Inputs are taken as they are:
//! validation of names, lengths and label patterns is the API layer's, and the database's
//! constraints are the last line (they answer [`super::error::StoreError::InvalidArgument`]).

use std::collections::BTreeMap;
use std::fmt;

use crate::iam::ResourceKind;

/// Labels: key → value, kept sorted.
pub type Labels = BTreeMap<String, String>;

/// A position in the change log. Sequence numbers start at 1, have no gaps, and follow
/// commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Seq(pub i64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A committed mutation: the record as written and the sequence number of its (last) change.
#[derive(Debug, Clone, PartialEq)]
pub struct Written<T> {
    pub item: T,
    pub seq: Seq,
}

/// What happened to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeOp {
    Create,
    Update,
    Delete,
}

impl ChangeOp {
    pub const fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Create => "create",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
        }
    }

    pub fn parse(name: &str) -> Option<ChangeOp> {
        [ChangeOp::Create, ChangeOp::Update, ChangeOp::Delete]
            .into_iter()
            .find(|op| op.as_str() == name)
    }
}

/// One row of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: Seq,
    pub kind: ResourceKind,
    pub resource_id: String,
    pub op: ChangeOp,
    /// The resource's version after the change; for a deletion, the version it had.
    pub version: i64,
    /// When the change was committed (the mutation's `now`).
    pub at: i64,
}

/// Page size when the caller asks for 0 (Yandex's default).
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest page (Yandex's `page_size` limit); larger requests are served this many.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Which page of a list to read. Lists are ordered by id; the token is opaque to callers (it is
/// the last id of the previous page), so a page never repeats or skips an item that existed
/// for the whole walk, whatever is created or deleted meanwhile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// 0 means [`DEFAULT_PAGE_SIZE`]; values above [`MAX_PAGE_SIZE`] mean [`MAX_PAGE_SIZE`].
    pub size: u32,
    /// `next_page_token` of the previous page; `None` (or empty) for the first page.
    pub token: Option<String>,
}

impl PageRequest {
    /// The first page, of `size` items.
    pub fn first(size: u32) -> PageRequest {
        PageRequest { size, token: None }
    }

    /// The page after the one that returned `token`.
    pub fn after(size: u32, token: impl Into<String>) -> PageRequest {
        PageRequest {
            size,
            token: Some(token.into()),
        }
    }

    /// The number of items the page holds at most.
    pub fn effective_size(&self) -> u32 {
        match self.size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        }
    }

    /// The id the page starts after ("" before every id).
    pub(crate) fn start_after(&self) -> &str {
        self.token.as_deref().unwrap_or("")
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when more items follow; pass it back in [`PageRequest::token`].
    pub next_page_token: Option<String>,
}

impl<T> Page<T> {
    /// Cuts a page from `rows`, read with a limit of `size + 1`: the extra row only tells
    /// that another page exists.
    pub(crate) fn cut(mut rows: Vec<T>, size: u32, id: impl Fn(&T) -> &str) -> Page<T> {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let more = rows.len() > size;
        rows.truncate(size);
        let next_page_token = if more {
            rows.last().map(|last| id(last).to_owned())
        } else {
            None
        };
        Page {
            items: rows,
            next_page_token,
        }
    }
}

/// A cloud (`resourcemanager.v1.Cloud`): the top of the hierarchy below an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    pub id: String,
    /// Not a reference: organizations are not kept here. Cloud names are unique within it.
    pub organization_id: String,
    pub name: String,
    pub description: String,
    pub labels: Labels,
    pub created_at: i64,
    pub version: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewCloud {
    pub organization_id: String,
    pub name: String,
    pub description: String,
    pub labels: Labels,
}

/// The mutable fields of a cloud, all replaced (the API layer applies update masks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudUpdate {
    pub name: String,
    pub description: String,
    pub labels: Labels,
}

/// A folder (`resourcemanager.v1.Folder`) in a cloud; names are unique within the cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub id: String,
    pub cloud_id: String,
    pub name: String,
    pub description: String,
    pub labels: Labels,
    pub created_at: i64,
    pub version: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewFolder {
    pub cloud_id: String,
    pub name: String,
    pub description: String,
    pub labels: Labels,
}

/// The mutable fields of a folder (a folder never moves to another cloud).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderUpdate {
    pub name: String,
    pub description: String,
    pub labels: Labels,
}

/// Whether a service account can be used (`iam.v1.ServiceAccount.Status`; the transient
/// CREATING and DELETING states never show, since each change is one transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServiceAccountStatus {
    #[default]
    Active,
    Suspended,
}

impl ServiceAccountStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ServiceAccountStatus::Active => "ACTIVE",
            ServiceAccountStatus::Suspended => "SUSPENDED",
        }
    }

    pub fn parse(name: &str) -> Option<ServiceAccountStatus> {
        match name {
            "ACTIVE" => Some(ServiceAccountStatus::Active),
            "SUSPENDED" => Some(ServiceAccountStatus::Suspended),
            _ => None,
        }
    }
}

/// A service account (`iam.v1.ServiceAccount`) in a folder. Its name is unique in its cloud,
/// across folders, as Yandex documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub id: String,
    pub folder_id: String,
    /// The folder's cloud, fixed at creation: the scope of the name's uniqueness.
    pub cloud_id: String,
    pub name: String,
    pub description: String,
    pub labels: Labels,
    pub status: ServiceAccountStatus,
    /// When a suspension with an end lifts (the upkeep reactivates the account then); `None`
    /// while active or suspended until reactivated.
    pub suspended_until: Option<i64>,
    /// When a token was last issued for the account (any route), as the usage recorder last
    /// wrote it: seconds behind at most.
    pub last_authenticated_at: Option<i64>,
    pub created_at: i64,
    pub version: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewServiceAccount {
    pub folder_id: String,
    pub name: String,
    pub description: String,
    pub labels: Labels,
}

/// The mutable fields of a service account (suspend and reactivate change `status` and
/// `suspended_until`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccountUpdate {
    pub name: String,
    pub description: String,
    pub labels: Labels,
    pub status: ServiceAccountStatus,
    pub suspended_until: Option<i64>,
}

/// An OIDC workload identity federation (`workload.oidc.Federation`) in a folder; names are
/// unique within the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Federation {
    pub id: String,
    pub folder_id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    /// Trusted values of the token's `aud`.
    pub audiences: Vec<String>,
    /// Compared with the token's `iss` exactly. Fixed at creation (Yandex has no way to
    /// update it).
    pub issuer: String,
    pub jwks_url: String,
    pub labels: Labels,
    pub created_at: i64,
    pub version: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewFederation {
    pub folder_id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub audiences: Vec<String>,
    pub issuer: String,
    pub jwks_url: String,
    pub labels: Labels,
}

/// The mutable fields of a federation: everything but the folder and the issuer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FederationUpdate {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub audiences: Vec<String>,
    pub jwks_url: String,
    pub labels: Labels,
}

/// A federated credential (`workload.FederatedCredential`): subject `external_subject_id` of
/// the federation may act as the service account. Immutable; the triple is unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedCredential {
    pub id: String,
    pub service_account_id: String,
    pub federation_id: String,
    /// Compared with the token's `sub` exactly.
    pub external_subject_id: String,
    pub created_at: i64,
    pub version: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewFederatedCredential {
    pub service_account_id: String,
    pub federation_id: String,
    pub external_subject_id: String,
}

/// The algorithm of an authorized key (`iam.v1.Key.Algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyAlgorithm {
    #[default]
    Rsa2048,
    Rsa4096,
}

impl KeyAlgorithm {
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "RSA_2048",
            KeyAlgorithm::Rsa4096 => "RSA_4096",
        }
    }

    pub fn parse(name: &str) -> Option<KeyAlgorithm> {
        match name {
            "RSA_2048" => Some(KeyAlgorithm::Rsa2048),
            "RSA_4096" => Some(KeyAlgorithm::Rsa4096),
            _ => None,
        }
    }
}

/// The public half of a service account's authorized key (`iam.v1.Key`): what verifies the
/// PS256 JWTs the account signs to get an IAM token. The private half is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedKey {
    pub id: String,
    pub service_account_id: String,
    pub description: String,
    pub key_algorithm: KeyAlgorithm,
    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub public_key: String,
    /// When the key last signed a JWT that got an IAM token, as the usage recorder last wrote
    /// it.
    pub last_used_at: Option<i64>,
    pub created_at: i64,
    pub version: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAuthorizedKey {
    pub service_account_id: String,
    pub description: String,
    pub key_algorithm: KeyAlgorithm,
    pub public_key: String,
}

/// The mutable field of an authorized key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizedKeyUpdate {
    pub description: String,
}

/// A secret as the store keeps it: sealed with AES-256-GCM under one of the configured
/// sealing keys ([`crate::iam::sealing`]), `<sealing key id>:<base64url of nonce, ciphertext
/// and tag>`. Only [`crate::iam::sealing::SecretKeys::open`] makes the secret of it again;
/// `Debug` shows the sealing key's id alone.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(String);

impl SealedSecret {
    /// The stored text, as read from the store or made by sealing.
    pub fn from_stored(text: String) -> SealedSecret {
        SealedSecret(text)
    }

    /// The stored text.
    pub fn as_stored(&self) -> &str {
        &self.0
    }

    /// The id of the key that sealed it ("" when the text names none).
    pub fn key_id(&self) -> &str {
        self.0.split_once(':').map_or("", |(id, _)| id)
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// A static access key of a service account (`awscompatibility.AccessKey`): the access key id
/// a client names in its AWS Signature Version 4 signatures, and its secret, sealed. No expiry,
/// as Yandex has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub service_account_id: String,
    pub description: String,
    /// `YC` and 23 more characters: the public half, unique.
    pub key_id: String,
    pub secret: SealedSecret,
    /// When a signature of the key last verified; `None` until then.
    pub last_used_at: Option<i64>,
    pub created_at: i64,
    pub version: i64,
}

/// An API key of a service account (`iam.v1.ApiKey`): a secret the account's callers present
/// (`Authorization: Api-Key <secret>`) to services that accept it. Only the SHA-256 of the
/// secret is kept; the secret itself is handed out once, at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub service_account_id: String,
    pub description: String,
    /// SHA-256 of the secret, lowercase hex: what a presented secret is looked up by. Unique.
    pub secret_hash: String,
    /// `****` and the secret's last 6 characters, shown in place of the secret.
    pub masked_secret: String,
    /// The scopes (ids of `[[api_key_scopes]]`) the key is limited to; empty: not limited.
    pub scopes: Vec<String>,
    /// Unix seconds after which the key is refused; `None`: it never expires.
    pub expires_at: Option<i64>,
    /// When the key was last presented, as far as it is recorded; `None`: never.
    pub last_used_at: Option<i64>,
    pub created_at: i64,
    pub version: i64,
}

/// A new access key: its id is chosen by the caller, because the sealed secret is bound to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccessKey {
    pub id: String,
    pub service_account_id: String,
    pub description: String,
    pub key_id: String,
    pub secret: SealedSecret,
}

/// The mutable field of an access key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessKeyUpdate {
    pub description: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewApiKey {
    pub service_account_id: String,
    pub description: String,
    pub secret_hash: String,
    pub masked_secret: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
}

/// The mutable fields of an API key, all replaced (the API layer applies update masks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiKeyUpdate {
    pub description: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
}

/// A resource that access bindings can be set on: a cloud, folder, service account or
/// federation ([`ResourceKind::is_bindable`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceRef {
    pub kind: ResourceKind,
    pub id: String,
}

impl ResourceRef {
    pub fn new(kind: ResourceKind, id: impl Into<String>) -> ResourceRef {
        ResourceRef {
            kind,
            id: id.into(),
        }
    }
}

/// The kind of a binding's subject (`access.Subject.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectType {
    UserAccount,
    ServiceAccount,
    FederatedUser,
    /// `allAuthenticatedUsers`, `allUsers`, `group:organization:<id>:users`, …
    System,
    Group,
}

impl SubjectType {
    pub const fn as_str(self) -> &'static str {
        match self {
            SubjectType::UserAccount => "userAccount",
            SubjectType::ServiceAccount => "serviceAccount",
            SubjectType::FederatedUser => "federatedUser",
            SubjectType::System => "system",
            SubjectType::Group => "group",
        }
    }

    pub fn parse(name: &str) -> Option<SubjectType> {
        [
            SubjectType::UserAccount,
            SubjectType::ServiceAccount,
            SubjectType::FederatedUser,
            SubjectType::System,
            SubjectType::Group,
        ]
        .into_iter()
        .find(|t| t.as_str() == name)
    }
}

/// Who a role is granted to (`access.Subject`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    pub subject_type: SubjectType,
    pub id: String,
}

/// A role granted to a subject on a resource (`access.AccessBinding`). Yandex gives bindings
/// no id; the store does, for pages and the change log. Immutable; (resource, role, subject)
/// is unique. Bindings whose *subject* is a deleted service account stay (they can never match
/// again: ids are not reused); bindings *on* a deleted resource go with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessBinding {
    pub id: String,
    pub resource: ResourceRef,
    pub role_id: String,
    pub subject: Subject,
    pub created_at: i64,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccessBinding {
    pub resource: ResourceRef,
    pub role_id: String,
    pub subject: Subject,
}

/// Whether a change grants or revokes (`access.AccessBindingAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindingAction {
    Add,
    Remove,
}

impl BindingAction {
    /// The enum value's name in proto3 JSON: `ADD`, `REMOVE`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BindingAction::Add => "ADD",
            BindingAction::Remove => "REMOVE",
        }
    }
}

/// One change of a resource's access bindings (`access.AccessBindingDelta`): grant or revoke
/// `role_id` to `subject`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BindingDelta {
    pub action: BindingAction,
    pub role_id: String,
    pub subject: Subject,
}

/// How a finished operation ended (`operation.Operation.result`): the response message or a
/// `google.rpc.Status`, as JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum OperationResult {
    Response(serde_json::Value),
    Error(serde_json::Value),
}

/// A long-running operation (`operation.Operation`), as returned by every mutating IAM call.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub id: String,
    /// The resource the operation acts on; lists of a resource's operations use it.
    pub resource_id: String,
    pub description: String,
    pub created_by: String,
    pub created_at: i64,
    pub modified_at: i64,
    pub done: bool,
    pub metadata: serde_json::Value,
    /// Present only when `done`.
    pub result: Option<OperationResult>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewOperation {
    pub resource_id: String,
    pub description: String,
    pub created_by: String,
    pub done: bool,
    pub metadata: serde_json::Value,
    pub result: Option<OperationResult>,
}

/// The mutable fields of an operation: its progress and outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationUpdate {
    pub done: bool,
    pub metadata: serde_json::Value,
    pub result: Option<OperationResult>,
}

/// What to create in an empty store. Parent references inside the inputs (`cloud_id`,
/// `folder_id`, `service_account_id`) are ignored: each item goes into the one before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBootstrap {
    pub cloud: NewCloud,
    pub folder: NewFolder,
    pub service_account: NewServiceAccount,
    /// The role the service account gets on the cloud.
    pub role_id: String,
    pub key: NewAuthorizedKey,
}

/// What [`Store::bootstrap`](super::Store::bootstrap) created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrapped {
    pub cloud: Cloud,
    pub folder: Folder,
    pub service_account: ServiceAccount,
    pub binding: AccessBinding,
    pub key: AuthorizedKey,
}

/// The kinds the views hold, parents before children, then the revocation list; authorized
/// keys and operations are read where they are used. API keys and access keys are followed so
/// that a key or a signature is checked from memory.
pub const FOLLOWED: [ResourceKind; 9] = [
    ResourceKind::Cloud,
    ResourceKind::Folder,
    ResourceKind::ServiceAccount,
    ResourceKind::Federation,
    ResourceKind::FederatedCredential,
    ResourceKind::AccessKey,
    ResourceKind::ApiKey,
    ResourceKind::AccessBinding,
    ResourceKind::RevokedToken,
];

/// A record of one of the kinds the in-memory views hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Cloud(Cloud),
    Folder(Folder),
    ServiceAccount(ServiceAccount),
    Federation(Federation),
    FederatedCredential(FederatedCredential),
    AccessKey(AccessKey),
    ApiKey(ApiKey),
    AccessBinding(AccessBinding),
    RevokedToken(RevokedToken),
}

impl Record {
    pub fn kind(&self) -> ResourceKind {
        match self {
            Record::Cloud(_) => ResourceKind::Cloud,
            Record::Folder(_) => ResourceKind::Folder,
            Record::ServiceAccount(_) => ResourceKind::ServiceAccount,
            Record::Federation(_) => ResourceKind::Federation,
            Record::FederatedCredential(_) => ResourceKind::FederatedCredential,
            Record::AccessKey(_) => ResourceKind::AccessKey,
            Record::ApiKey(_) => ResourceKind::ApiKey,
            Record::AccessBinding(_) => ResourceKind::AccessBinding,
            Record::RevokedToken(_) => ResourceKind::RevokedToken,
        }
    }

    /// The record's version.
    pub fn version(&self) -> i64 {
        match self {
            Record::Cloud(r) => r.version,
            Record::Folder(r) => r.version,
            Record::ServiceAccount(r) => r.version,
            Record::Federation(r) => r.version,
            Record::FederatedCredential(r) => r.version,
            Record::AccessKey(r) => r.version,
            Record::ApiKey(r) => r.version,
            Record::AccessBinding(r) => r.version,
            Record::RevokedToken(r) => r.version,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Record::Cloud(r) => &r.id,
            Record::Folder(r) => &r.id,
            Record::ServiceAccount(r) => &r.id,
            Record::Federation(r) => &r.id,
            Record::FederatedCredential(r) => &r.id,
            Record::AccessKey(r) => &r.id,
            Record::ApiKey(r) => &r.id,
            Record::AccessBinding(r) => &r.id,
            Record::RevokedToken(r) => &r.jti,
        }
    }
}

/// An entry of the revocation list: a token of the gateway (an IAM token or an exchanged access
/// token) refused before its expiry. Kept while the token could still be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedToken {
    /// The token's `jti`; the entry's id.
    pub jti: String,
    /// The token's `sub`: the service account it speaks for.
    pub subject_id: String,
    /// The token's `exp`: after it (and the leeway) the entry is no longer needed.
    pub expires_at: i64,
    pub revoked_at: i64,
    /// The service account that revoked it.
    pub revoked_by: String,
    pub version: i64,
}

/// What revoking a token records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeToken<'a> {
    pub jti: &'a str,
    pub subject_id: &'a str,
    pub expires_at: i64,
    pub revoked_by: &'a str,
}

/// What a reservation of a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The key was free: this call carries it out, then records its outcome
    /// ([`Store::settle_idempotency_key`]) or frees the key again
    /// ([`Store::release_idempotency_key`]).
    Fresh,
    /// A call with this key came first: what it asked for (`fingerprint`) and its outcome
    /// (empty while it runs, an operation id, or `-`).
    Taken {
        fingerprint: String,
        outcome: String,
    },
}

/// What a recorded use updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UsedBy {
    /// `service_accounts.last_authenticated_at`: a token was issued for the account.
    ServiceAccount,
    /// `authorized_keys.last_used_at`: the key signed a JWT that got an IAM token.
    AuthorizedKey,
    /// `api_keys.last_used_at`: the key passed a check of the Authorize API.
    ApiKey,
    /// `access_keys.last_used_at`: a signature of the key verified at the Authorize API.
    AccessKey,
}
