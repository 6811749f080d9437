//! `ApiKeyService`: API keys of service accounts, independent of the transport (the REST routes
//! are [`crate::http::iam_api_keys`], the gRPC service [`crate::grpc`]'s `api_keys`), and the
//! check of a presented key that the Authorize API runs from memory ([`check`]).
//!
//! **The secret** ([`super::api_key_table`]) is answered once, by `Create`, and never stored:
//! the store keeps its SHA-256 and a mask; why a plain SHA-256 is the right hash is said there.
//!
//! **Scopes.** A key with no scopes is not limited (Yandex's legacy key); one with scopes may
//! be used only for the permissions they name (`[[api_key_scopes]]`, [`Catalog::scope_permits`]),
//! and then only as far as its service account's roles allow.
//!
//! | rule | refusal |
//! |---|---|
//! | `description` ≤ 256 characters; ids ≤ 50 | INVALID_ARGUMENT |
//! | `scopes`: declared by `[[api_key_scopes]]`, each once, at most 100 (an update: 1 to 100), each ≤ 256 characters; the deprecated `scope` is one more | INVALID_ARGUMENT |
//! | `expires_at` in the future and at most 2105-12-31T23:59:59.999999999Z | INVALID_ARGUMENT |
//! | the caller holds the method's permission on the key's service account ([`Method`]) | PERMISSION_DENIED |
//! | `iam.apiKeys.count` of the account's cloud | RESOURCE_EXHAUSTED |
//!
//! **The check** ([`check`]): the presented secret's SHA-256 is looked up in the keys followed
//! into memory ([`ApiKeyTable`]); unknown → UNAUTHENTICATED (without the secret), expired →
//! UNAUTHENTICATED naming the expiry, account suspended → UNAUTHENTICATED, a permission outside
//! the key's scopes → PERMISSION_DENIED naming the key and its scopes; then the authorization
//! index's check with the key's service account as the subject. Hashes are compared, never
//! secrets, and nothing here needs the database.

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::exchange::quote;
use crate::time::rfc3339;

use super::api_key_table::{ApiKeySecret, ApiKeyTable, LiveApiKey, secret_digest};
use super::authn::Principal;
use super::authz::{AuthzIndex, NamedRefusal, PathElement, Principal as Subject, Resource};
use super::catalog::{Catalog, rules};
use super::federations_api::{ListPage, opaque};
use super::operation::{self, types};
use super::paging;
use super::quota::Quota;
use super::service::{Context, Finished, Method};
use super::status::{Code, Status};
use super::store::{
    ApiKey, ApiKeyUpdate, NewApiKey, Operation, Page, ServiceAccount, StoreError, Written,
};
use super::validate;

/// Most scopes of one key (`CreateApiKeyRequest.scopes`: size ≤ 100).
pub const MAX_SCOPES: usize = 100;
/// The latest `expires_at` the proto allows: 2105-12-31T23:59:59Z.
pub const MAX_EXPIRES_AT: i64 = 4_291_747_199;

/// A time sent as `expires_at`: seconds and nanoseconds of a `google.protobuf.Timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiresAt {
    pub seconds: i64,
    pub nanos: i32,
}

impl ExpiresAt {
    /// An RFC 3339 `expiresAt`, as REST sends it.
    pub fn parse(text: &str) -> Result<ExpiresAt, Status> {
        crate::time::parse_rfc3339_nanos(text)
            .map(|(seconds, nanos)| ExpiresAt { seconds, nanos })
            .ok_or_else(|| {
                Status::invalid_argument(
                    validate::REASON,
                    format!(
                        "expiresAt {} is not an RFC 3339 time (e.g. 2030-01-01T00:00:00Z)",
                        quote(text)
                    ),
                )
            })
    }
}

/// `expires_at` as stored: within the proto's range and after `now`.
pub fn expiry(sent: ExpiresAt, now: i64) -> Result<i64, Status> {
    let shown = || {
        if (0..=MAX_EXPIRES_AT).contains(&sent.seconds) {
            rfc3339(sent.seconds)
        } else {
            format!("{} s", sent.seconds)
        }
    };
    if !(0..1_000_000_000).contains(&sent.nanos) || !(0..=MAX_EXPIRES_AT).contains(&sent.seconds) {
        return Err(Status::invalid_argument(
            validate::REASON,
            format!(
                "expiresAt {} is outside 1970-01-01T00:00:00Z to 2105-12-31T23:59:59.999999999Z",
                shown()
            ),
        ));
    }
    if sent.seconds <= now {
        return Err(Status::invalid_argument(
            validate::REASON,
            format!(
                "expiresAt {} is not in the future (server time {})",
                shown(),
                rfc3339(now)
            ),
        ));
    }
    Ok(sent.seconds)
}

/// The scopes of a create (`scopes`, and the deprecated `scope` as one more unless it is one of
/// them) or an update (`scopes` alone, then 1 to 100 of them): each declared by `catalog`, each
/// once, at most [`MAX_SCOPES`], each at most 256 characters.
pub fn scopes(
    sent: Vec<String>,
    legacy: Option<String>,
    update: bool,
    catalog: &Catalog,
) -> Result<Vec<String>, Status> {
    let mut scopes = sent;
    if let Some(legacy) = legacy.filter(|s| !s.is_empty())
        && !scopes.contains(&legacy)
    {
        scopes.push(legacy);
    }
    let bad = |message: String| Status::invalid_argument(validate::REASON, message);
    if scopes.len() > MAX_SCOPES || (update && scopes.is_empty()) {
        let least = if update { 1 } else { 0 };
        return Err(bad(format!(
            "scopes: Number of elements must be in the range of {least} to {MAX_SCOPES} ({} given)",
            scopes.len()
        )));
    }
    for (i, scope) in scopes.iter().enumerate() {
        if scope.chars().count() > rules::MAX_SCOPE_ID_CHARS || scope.is_empty() {
            return Err(bad(format!(
                "scopes[{i}]: a scope is 1 to {} characters",
                rules::MAX_SCOPE_ID_CHARS
            )));
        }
        if scopes[..i].contains(scope) {
            return Err(bad(format!("scopes: {} is given twice", quote(scope))));
        }
        if !catalog.is_api_key_scope(scope) {
            let known: Vec<&str> = catalog.api_key_scopes().map(|(id, _)| id).collect();
            return Err(bad(format!(
                "scopes: {} is not a scope of this gateway; the scopes are {} (GET /iam/v1/apiKeyScopes)",
                quote(scope),
                if known.is_empty() {
                    "none: the configuration declares no [[api_key_scopes]]".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    Ok(scopes)
}

/// `CreateApiKeyRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateApiKey {
    /// The key's service account; `None` or empty: the caller's own.
    pub service_account_id: Option<String>,
    pub description: String,
    /// The deprecated single scope: one more scope when set.
    pub scope: Option<String>,
    pub scopes: Vec<String>,
    pub expires_at: Option<ExpiresAt>,
}

/// `UpdateApiKeyRequest`: the fields sent (`None`: not in the request) and the update mask.
/// Without a mask, the fields sent are the fields changed; with one, exactly the fields it
/// names are changed, to the value sent or the field's default (for `expires_at`: never).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateApiKey {
    pub update_mask: Option<String>,
    pub description: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub expires_at: Option<ExpiresAt>,
}

/// The fields of an API key an update may change, by proto name.
const UPDATABLE: paging::Updatable = &["description", "scopes", "expires_at"];

/// A created key and its secret, to be answered once.
#[derive(Debug)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: ApiKeySecret,
}

/// `ApiKeyService` in `ctx`, with the scopes of `catalog` (the one in force when the call
/// started).
pub struct ApiKeys<'a> {
    pub ctx: Context<'a>,
    pub catalog: Arc<Catalog>,
}

fn not_found(what: &str, id: &str) -> Status {
    Status::not_found(format!("{what} {} not found", quote(id)))
}

impl ApiKeys<'_> {
    /// The one authorization check of every key method: the service account the call concerns
    /// (NOT_FOUND if missing), then `method` on it.
    async fn account(
        &self,
        principal: &Principal,
        method: Method,
        service_account_id: &str,
    ) -> Result<ServiceAccount, Status> {
        let account = match self
            .ctx
            .store()
            .get_service_account(service_account_id)
            .await
        {
            Ok(account) => account,
            Err(StoreError::NotFound { .. }) => {
                return Err(not_found("service account", service_account_id));
            }
            Err(other) => return Err(other.into()),
        };
        self.ctx
            .authorize(principal, method, &[Resource::service_account(&account.id)])?;
        Ok(account)
    }

    /// A key, once the caller may call `method` on its service account.
    async fn key(&self, principal: &Principal, method: Method, id: &str) -> Result<ApiKey, Status> {
        validate::id("api_key_id", id)?;
        let key = match self.ctx.store().get_api_key(id).await {
            Ok(key) => key,
            Err(StoreError::NotFound { .. }) => return Err(not_found("API key", id)),
            Err(other) => return Err(other.into()),
        };
        self.account(principal, method, &key.service_account_id)
            .await?;
        Ok(key)
    }

    /// `ApiKeyService.Get`.
    pub async fn get(&self, principal: &Principal, id: &str) -> Result<ApiKey, Status> {
        self.key(principal, Method::ApiKeyGet, id).await
    }

    /// `ApiKeyService.List`: the keys of a service account (the caller's own when `None` or
    /// empty).
    pub async fn list(
        &self,
        principal: &Principal,
        service_account_id: Option<&str>,
        page: &ListPage,
    ) -> Result<Page<ApiKey>, Status> {
        let account = service_account_id
            .filter(|id| !id.is_empty())
            .unwrap_or(&principal.service_account_id);
        validate::id("service_account_id", account)?;
        let page = page.request()?;
        let account = self.account(principal, Method::ApiKeyList, account).await?;
        Ok(opaque(
            self.ctx.store().list_api_keys(&account.id, &page).await?,
        ))
    }

    /// `ApiKeyService.Create`: a new secret, answered once; the store keeps its hash. Once this
    /// answers, this replica's Authorize API accepts the key.
    pub async fn create(
        &self,
        principal: &Principal,
        request: CreateApiKey,
    ) -> Result<CreatedApiKey, Status> {
        let account = request
            .service_account_id
            .as_deref()
            .filter(|id| !id.is_empty())
            .unwrap_or(&principal.service_account_id)
            .to_owned();
        validate::id("service_account_id", &account)?;
        validate::description(&request.description)?;
        let scopes = scopes(request.scopes, request.scope, false, &self.catalog)?;
        let expires_at = request
            .expires_at
            .map(|at| expiry(at, self.ctx.now))
            .transpose()?;
        let account = self
            .account(principal, Method::ApiKeyCreate, &account)
            .await?;
        self.ctx.quota(Quota::ApiKeys, &account.cloud_id, 1).await?;
        let secret = ApiKeySecret::generate().map_err(|e| Status::internal(&e))?;
        let written = self
            .ctx
            .store()
            .create_api_key(
                &NewApiKey {
                    service_account_id: account.id,
                    description: request.description,
                    secret_hash: secret.hash(),
                    masked_secret: secret.masked(),
                    scopes,
                    expires_at,
                },
                self.ctx.now,
            )
            .await?;
        let key = self.ctx.applied(written).await;
        Ok(CreatedApiKey { key, secret })
    }

    /// `ApiKeyService.Update`: description, scopes, expiry. Answers the finished operation,
    /// whose response is the key.
    pub async fn update(
        &self,
        principal: &Principal,
        id: &str,
        request: UpdateApiKey,
    ) -> Result<Operation, Status> {
        let masked = match request.update_mask.as_deref() {
            Some(mask) if !mask.trim().is_empty() => Some(paging::update_mask(mask, UPDATABLE)?),
            _ => None,
        };
        let changes = |field: &str, sent: bool| match &masked {
            Some(fields) => fields.contains(&field),
            None => sent,
        };
        let description = changes("description", request.description.is_some())
            .then(|| request.description.unwrap_or_default());
        if let Some(description) = &description {
            validate::description(description)?;
        }
        let scopes = if changes("scopes", request.scopes.is_some()) {
            Some(scopes(
                request.scopes.unwrap_or_default(),
                None,
                true,
                &self.catalog,
            )?)
        } else {
            None
        };
        let expires_at = if changes("expires_at", request.expires_at.is_some()) {
            Some(
                request
                    .expires_at
                    .map(|at| expiry(at, self.ctx.now))
                    .transpose()?,
            )
        } else {
            None
        };
        let key = self.key(principal, Method::ApiKeyUpdate, id).await?;
        let update = ApiKeyUpdate {
            description: description.unwrap_or_else(|| key.description.clone()),
            scopes: scopes.unwrap_or_else(|| key.scopes.clone()),
            expires_at: expires_at.unwrap_or(key.expires_at),
        };
        let written = self
            .ctx
            .store()
            .update_api_key(&key.id, key.version, &update, self.ctx.now)
            .await?;
        let key = self.ctx.applied(written).await;
        self.ctx
            .finished(
                principal,
                Finished {
                    resource_id: &key.id,
                    description: "Update API key",
                    types: types::API_KEY_UPDATE,
                    metadata: &json!({"apiKeyId": key.id}),
                    response: &operation::message(&api_key_message(&key)),
                },
            )
            .await
    }

    /// `ApiKeyService.Delete`. Once it answers, this replica's Authorize API refuses the key;
    /// other replicas follow within their propagation time.
    pub async fn delete(&self, principal: &Principal, id: &str) -> Result<Operation, Status> {
        let key = self.key(principal, Method::ApiKeyDelete, id).await?;
        let seq = self
            .ctx
            .store()
            .delete_api_key(&key.id, Some(key.version), self.ctx.now)
            .await?;
        self.ctx.applied(Written { item: (), seq }).await;
        self.ctx
            .finished(
                principal,
                Finished {
                    resource_id: &key.id,
                    description: "Delete API key",
                    types: types::API_KEY_DELETE,
                    metadata: &json!({"apiKeyId": key.id}),
                    response: &json!({}),
                },
            )
            .await
    }

    /// `ApiKeyService.ListScopes`: the scopes the configuration declares, in id order; any
    /// authenticated caller may read them.
    pub fn list_scopes(
        &self,
        principal: &Principal,
        page: &ListPage,
    ) -> Result<Page<String>, Status> {
        self.ctx
            .authorize(principal, Method::ApiKeyListScopes, &[])?;
        let size = validate::page(page.size, &page.token)?;
        let after = paging::after(&page.token)?;
        let mut rest = self
            .catalog
            .api_key_scopes()
            .map(|(id, _)| id)
            .filter(|id| after.as_deref().is_none_or(|after| *id > after))
            .peekable();
        let items: Vec<String> = rest.by_ref().take(size).map(str::to_owned).collect();
        let next_page_token = match (rest.peek(), items.last()) {
            (Some(_), Some(last)) => Some(paging::page_token(last)),
            _ => None,
        };
        Ok(Page {
            items,
            next_page_token,
        })
    }
}

/// `yandex.cloud.iam.v1.ApiKey` in proto3 JSON: never the secret, only its mask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApiKey)]
pub struct ApiKeyMessage {
    pub id: String,
    pub service_account_id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub description: String,
    /// RFC 3339, UTC; absent while the key has not been used (as far as it is recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    /// The scopes the key is limited to; empty: not limited.
    #[schema(examples("yc.lockbox.payload.read"))]
    pub scopes: Vec<String>,
    /// RFC 3339, UTC; absent for a key that never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// `****` and the secret's last 6 characters.
    #[schema(pattern = r"^\*{4}[a-zA-Z0-9_]{6}$", examples("****x7Kq2Z"))]
    pub masked_secret: String,
}

pub fn api_key_message(key: &ApiKey) -> ApiKeyMessage {
    ApiKeyMessage {
        id: key.id.clone(),
        service_account_id: key.service_account_id.clone(),
        created_at: rfc3339(key.created_at),
        description: key.description.clone(),
        last_used_at: key.last_used_at.map(rfc3339),
        scopes: key.scopes.clone(),
        expires_at: key.expires_at.map(rfc3339),
        masked_secret: key.masked_secret.clone(),
    }
}

/// The refusal of a secret no key has: never echoing it.
fn unknown_key() -> Status {
    Status::unauthenticated(
        "unknown_api_key",
        "the API key is not valid: no API key of this gateway has this secret (it was never issued, or the key or its service account was deleted)",
    )
}

/// A refused key check: the refusal, and the key when the secret was known (an expired key,
/// a suspended account, a permission outside its scopes or its account's roles).
pub type KeyRefusal = (Option<Arc<LiveApiKey>>, Status);

/// The key a presented secret belongs to, if it may be used at `now`: known (by its hash),
/// not expired, its service account not suspended. Every refusal is UNAUTHENTICATED.
pub fn identify(
    secret: &str,
    table: &ApiKeyTable,
    index: &AuthzIndex,
    now: i64,
) -> Result<Arc<LiveApiKey>, KeyRefusal> {
    let Some(key) = table.get(&secret_digest(secret)) else {
        return Err((None, unknown_key()));
    };
    if let Some(expires_at) = key.expires_at
        && now >= expires_at
    {
        let refused = Status::unauthenticated(
            "api_key_expired",
            format!(
                "API key {} expired at {} (server time {}): create a new one",
                quote(&key.id),
                rfc3339(expires_at),
                rfc3339(now)
            ),
        );
        return Err((Some(key), refused));
    }
    if index.is_suspended(&key.service_account_id) {
        let refused = Status::unauthenticated(
            "service_account_suspended",
            format!(
                "API key {}'s service account {} is suspended",
                quote(&key.id),
                quote(&key.service_account_id)
            ),
        );
        return Err((Some(key), refused));
    }
    Ok(key)
}

/// Whether `key` may be used for `permission`: always when it has no scopes, otherwise when one
/// of its scopes names the permission (PERMISSION_DENIED naming the key and its scopes).
pub fn within_scopes(key: &LiveApiKey, permission: &str, catalog: &Catalog) -> Result<(), Status> {
    if key.scopes.is_empty()
        || key
            .scopes
            .iter()
            .any(|scope| catalog.scope_permits(scope, permission))
    {
        return Ok(());
    }
    Err(Status::new(
        Code::PermissionDenied,
        "api_key_out_of_scope",
        format!(
            "API key {} is limited to the scopes {}, none of which allows {}",
            quote(&key.id),
            key.scopes.join(", "),
            quote(permission)
        ),
    ))
}

/// The Authorize API's check of one presented API key: [`identify`], [`within_scopes`], then
/// [`AuthzIndex::check_path`] with the key's service account as the subject and `caller` as the
/// resource service asking. `Ok` is the subject; a refusal carries the subject when the key was
/// identified.
pub fn check(
    secret: &str,
    table: &ApiKeyTable,
    index: &AuthzIndex,
    caller: &Subject<'_>,
    permission: &str,
    path: &[PathElement<'_>],
    now: i64,
) -> Result<Arc<LiveApiKey>, KeyRefusal> {
    let key = identify(secret, table, index, now)?;
    if let Err(refused) = within_scopes(&key, permission, index.catalog()) {
        return Err((Some(key), refused));
    }
    match index.check_path(
        caller,
        &Subject::service_account(&key.service_account_id),
        permission,
        path,
    ) {
        Ok(()) => Ok(key),
        Err(refused) => {
            let status = named_refusal(refused);
            Err((Some(key), status))
        }
    }
}

/// A refused check of a permission by name as the Authorize API answers it.
pub fn named_refusal(refused: NamedRefusal) -> Status {
    match refused {
        NamedRefusal::Denied { .. } | NamedRefusal::CallerDenied { .. } => {
            Status::permission_denied(refused.to_string())
        }
        NamedRefusal::UnknownPermission(_) => {
            Status::invalid_argument("unknown_permission", refused.to_string())
        }
        NamedRefusal::BadPath(_) => {
            Status::invalid_argument("invalid_resource_path", refused.to_string())
        }
    }
}

/// The `result` label of `wif_gateway_api_key_checks_total` for the outcome of a key's check.
pub fn check_result<T>(outcome: &Result<T, Status>) -> &'static str {
    match outcome {
        Ok(_) => "allowed",
        Err(status) => match status.reason {
            "unknown_api_key" => "unknown",
            "api_key_expired" => "expired",
            "service_account_suspended" => "suspended",
            "api_key_out_of_scope" => "out_of_scope",
            _ if status.code == Code::PermissionDenied => "denied",
            _ => "invalid",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::api_key_table::hex;
    use crate::iam::catalog::ApiKeyScopeDecl;
    use crate::iam::roles::Role;

    #[test]
    fn a_secret_shows_nothing_of_itself_in_debug() {
        let created = CreatedApiKey {
            key: key(&[], None),
            secret: ApiKeySecret::generate().unwrap(),
        };
        let shown = format!("{created:?} {:?}", created.secret);
        assert!(!shown.contains(created.secret.expose()), "{shown}");
        assert!(!shown.contains(&created.secret.expose()[4..14]), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    fn catalog() -> Catalog {
        Catalog::default().with_api_key_scopes(&[
            ApiKeyScopeDecl {
                id: "yc.a".into(),
                permissions: vec!["iam.serviceAccounts.get".into()],
            },
            ApiKeyScopeDecl {
                id: "yc.b".into(),
                permissions: vec!["iam.accessService.authorize".into()],
            },
        ])
    }

    #[test]
    fn scopes_are_declared_unique_and_bounded() {
        let c = catalog();
        let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(scopes(s(&["yc.a"]), None, false, &c).unwrap(), ["yc.a"]);
        assert_eq!(
            scopes(s(&["yc.a"]), Some("yc.b".into()), false, &c).unwrap(),
            ["yc.a", "yc.b"],
            "the deprecated scope is one more"
        );
        assert_eq!(
            scopes(s(&["yc.a"]), Some("yc.a".into()), false, &c).unwrap(),
            ["yc.a"],
            "the deprecated scope naming one of them adds nothing"
        );
        assert!(scopes(Vec::new(), None, false, &c).unwrap().is_empty());
        let cases: Vec<(&str, Vec<String>, bool, &str)> = vec![
            (
                "unknown",
                s(&["yc.c"]),
                false,
                "not a scope of this gateway",
            ),
            ("twice", s(&["yc.a", "yc.a"]), false, "given twice"),
            (
                "too long",
                vec!["s".repeat(257)],
                false,
                "1 to 256 characters",
            ),
            ("empty", s(&[""]), false, "1 to 256 characters"),
            ("too many", vec!["yc.a".to_owned(); 101], false, "0 to 100"),
            // At the bounds the count and the length pass, and the next rule speaks.
            (
                "a hundred",
                vec!["yc.a".to_owned(); 100],
                false,
                "given twice",
            ),
            (
                "256 characters",
                vec!["s".repeat(256)],
                false,
                "not a scope of this gateway",
            ),
            ("none on update", Vec::new(), true, "1 to 100"),
        ];
        for (name, sent, update, expected) in cases {
            let refused = scopes(sent, None, update, &c).unwrap_err();
            assert_eq!(refused.code, Code::InvalidArgument, "{name}");
            assert!(
                refused.message.contains(expected),
                "{name}: {}",
                refused.message
            );
        }
        let unknown = scopes(s(&["yc.c"]), None, false, &c).unwrap_err();
        assert!(
            unknown.message.contains("yc.a, yc.b"),
            "{}",
            unknown.message
        );
    }

    #[test]
    fn expiry_is_in_the_future_and_within_the_proto_range() {
        let now = 1_800_000_000;
        let at = |seconds, nanos| ExpiresAt { seconds, nanos };
        assert_eq!(expiry(at(now + 1, 0), now), Ok(now + 1));
        assert_eq!(
            expiry(at(MAX_EXPIRES_AT, 999_999_999), now),
            Ok(MAX_EXPIRES_AT)
        );
        for (name, sent, expected) in [
            ("now", at(now, 0), "not in the future"),
            ("past", at(1, 0), "not in the future"),
            ("after 2105", at(MAX_EXPIRES_AT + 1, 0), "outside"),
            ("before 1970", at(-1, 0), "outside"),
            ("bad nanos", at(now + 10, 1_000_000_000), "outside"),
            ("negative nanos", at(now + 10, -1), "outside"),
        ] {
            let refused = expiry(sent, now).unwrap_err();
            assert_eq!(refused.code, Code::InvalidArgument, "{name}");
            assert!(
                refused.message.contains(expected),
                "{name}: {}",
                refused.message
            );
        }
    }

    fn key(scopes: &[&str], expires_at: Option<i64>) -> ApiKey {
        ApiKey {
            id: "ajekey".into(),
            service_account_id: "sa".into(),
            description: "d".into(),
            secret_hash: hex(&secret_digest("AQVNsecret")),
            masked_secret: "****secret".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires_at,
            last_used_at: None,
            created_at: 60,
            version: 1,
        }
    }

    #[test]
    fn messages_have_the_proto3_json_shape_and_no_secret() {
        let mut k = key(&["yc.a"], Some(120));
        assert_eq!(
            operation::message(&api_key_message(&k)),
            json!({"id": "ajekey", "serviceAccountId": "sa", "createdAt": "1970-01-01T00:01:00Z",
                   "description": "d", "scopes": ["yc.a"], "expiresAt": "1970-01-01T00:02:00Z",
                   "maskedSecret": "****secret"})
        );
        k.expires_at = None;
        k.last_used_at = Some(180);
        let message = operation::message(&api_key_message(&k));
        assert!(message.get("expiresAt").is_none());
        assert_eq!(message["lastUsedAt"], "1970-01-01T00:03:00Z");
        assert!(!message.to_string().contains(&k.secret_hash));
    }

    /// An index where `sa` holds `viewer` on folder `f` (so `iam.serviceAccounts.get` on the
    /// accounts in it) and `caller` may ask the Authorize API there.
    fn index(catalog: Catalog) -> AuthzIndex {
        let mut index = AuthzIndex::new();
        index.set_catalog(Arc::new(catalog));
        index
            .set_parent(Resource::folder("f"), Resource::cloud("c"))
            .unwrap();
        index
            .set_parent(Resource::service_account("sa"), Resource::folder("f"))
            .unwrap();
        let on = Resource::folder("f");
        assert!(index.add_binding(
            on,
            Role::Viewer,
            super::super::authz::SubjectRef::service_account("sa")
        ));
        assert!(index.add_binding(
            on,
            Role::AccessServiceAuthorizer,
            super::super::authz::SubjectRef::service_account("caller")
        ));
        index
    }

    #[test]
    fn a_presented_key_is_identified_limited_and_checked() {
        let mut index = index(catalog());
        let table = ApiKeyTable::default();
        let now = 1_000;
        for (id, scopes, expires_at, secret) in [
            ("open", &[][..], None, "AQVNopen"),
            ("scoped", &["yc.a"][..], None, "AQVNscoped"),
            ("narrow", &["yc.b"][..], None, "AQVNnarrow"),
            ("expired", &[][..], Some(now), "AQVNexpired"),
        ] {
            let mut k = key(scopes, expires_at);
            k.id = id.into();
            k.secret_hash = hex(&secret_digest(secret));
            table.insert(&k);
        }
        let caller = Subject::service_account("caller");
        let path = [PathElement {
            resource_type: "iam.serviceAccount",
            id: "sa",
        }];
        let run = |index: &AuthzIndex, secret: &str, permission: &str| {
            check(secret, &table, index, &caller, permission, &path, now)
                .map(|k| k.id.to_string())
                .map_err(|(_, s)| (s.code, s.reason, s.message))
        };
        let get = "iam.serviceAccounts.get";
        assert_eq!(run(&index, "AQVNopen", get), Ok("open".into()));
        assert_eq!(run(&index, "AQVNscoped", get), Ok("scoped".into()));
        let (code, reason, message) = run(&index, "AQVNnarrow", get).unwrap_err();
        assert_eq!(
            (code, reason),
            (Code::PermissionDenied, "api_key_out_of_scope")
        );
        assert!(
            message.contains("\"narrow\"") && message.contains("yc.b"),
            "{message}"
        );
        assert!(!message.contains("AQVN"), "{message}");
        let (code, reason, message) = run(&index, "AQVNexpired", get).unwrap_err();
        assert_eq!((code, reason), (Code::Unauthenticated, "api_key_expired"));
        assert!(message.contains("1970-01-01T00:16:40Z"), "{message}");
        let (code, reason, message) = run(&index, "AQVNwrong", get).unwrap_err();
        assert_eq!((code, reason), (Code::Unauthenticated, "unknown_api_key"));
        assert!(!message.contains("AQVNwrong"), "{message}");
        // In scope, but the account's roles do not grant it.
        let (code, _, _) = run(&index, "AQVNopen", "iam.serviceAccounts.update").unwrap_err();
        assert_eq!(code, Code::PermissionDenied);
        // Suspended: refused whatever it asks.
        index.set_suspended("sa", true);
        let (code, reason, _) = run(&index, "AQVNopen", get).unwrap_err();
        assert_eq!(
            (code, reason),
            (Code::Unauthenticated, "service_account_suspended")
        );
        // Deleted: unknown.
        index.set_suspended("sa", false);
        table.remove("open");
        assert_eq!(
            run(&index, "AQVNopen", get).unwrap_err().1,
            "unknown_api_key"
        );
        assert_eq!(run(&index, "AQVNscoped", get), Ok("scoped".into()));
    }

    #[test]
    fn results_are_labelled_by_their_rule() {
        let cases = [
            (Ok(()), "allowed"),
            (Err(unknown_key()), "unknown"),
            (
                Err(Status::unauthenticated("api_key_expired", "")),
                "expired",
            ),
            (
                Err(Status::unauthenticated("service_account_suspended", "")),
                "suspended",
            ),
            (
                Err(Status::new(
                    Code::PermissionDenied,
                    "api_key_out_of_scope",
                    "",
                )),
                "out_of_scope",
            ),
            (Err(Status::permission_denied("")), "denied"),
            (
                Err(Status::invalid_argument("unknown_permission", "")),
                "invalid",
            ),
        ];
        for (outcome, label) in cases {
            assert_eq!(check_result(&outcome), label);
        }
    }
}
