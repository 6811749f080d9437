//! Static access keys (AWS-compatible) of service accounts: Yandex's
//! `awscompatibility.AccessKeyService` over the followed store, independent of the transport
//! (the REST routes are [`crate::http::iam_access_keys`], the gRPC service
//! [`crate::grpc`]'s `access_keys`), and the verification of the AWS Signature Version 4
//! signatures made with them ([`verify`]), which the Authorize API offers to downstream
//! S3-compatible services.
//!
//! - **Formats** (Yandex's): the access key id is `YC` and 23 more characters, the secret `YC`
//!   and 38 more, both drawn from `A-Z a-z 0-9 - _` by the operating system's generator
//!   (`aws_lc_rs::rand`): 138 and 228 random bits. No expiry.
//! - **The secret** is answered once, by `Create`; `Get` and `List` never show it. The store
//!   keeps it sealed ([`super::sealing`]), bound to the key's id, service account and access
//!   key id ([`aad`]); without `[iam] secret_keys`, `Create` is FAILED_PRECONDITION.
//! - **Authorization**: every method is one check of its [`Method`] on the key's service
//!   account (`iam.serviceAccounts.accessKeyAdmin` and the roles that include it; viewers
//!   read). Quota `iam.accessKeys.count`, 1000 per cloud.
//! - **Propagation**: a mutation answers once this replica's view of the keys has it
//!   ([`Context::applied`]): a key deleted here verifies no signature here a moment later.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::exchange::quote;
use crate::time::rfc3339;

use super::ResourceKind;
use super::authn::Principal;
use super::authz::AuthzIndex;
use super::federations_api::{ListPage, opaque};
use super::live::AccessKeys as FollowedKeys;
use super::operation::{self, types};
use super::quota::Quota;
use super::sealing::{Secret, SecretKeys};
use super::service::{
    Context, Finished, Method, authorize_on_account, check_description, check_id, creation_target,
};
use super::sigv4::{Refusal, Signed};
use super::status::{Code, Status};
use super::store::{AccessKey, AccessKeyUpdate, NewAccessKey, Operation, Page, StoreError};

/// Length of an access key id.
pub const KEY_ID_LEN: usize = 25;
/// Length of a secret.
pub const SECRET_LEN: usize = 40;
/// The prefix of both.
pub const PREFIX: &str = "YC";
/// The characters after the prefix: 64 of them, so each random byte's low six bits pick one
/// uniformly.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The setting without which no access key can be created.
pub const SETTING: &str = "[iam] secret_keys";

/// `YC` and `len - 2` random characters.
fn random_text(len: usize) -> Result<String, Status> {
    let mut random = vec![0u8; len.saturating_sub(PREFIX.len())];
    aws_lc_rs::rand::fill(&mut random)
        .map_err(|_| Status::internal(&"the system random generator failed"))?;
    let mut text = String::with_capacity(len);
    text.push_str(PREFIX);
    text.extend(
        random
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 0x3f)])),
    );
    random.iter_mut().for_each(|b| *b = 0);
    Ok(text)
}

/// A new access key id.
pub fn generate_key_id() -> Result<String, Status> {
    random_text(KEY_ID_LEN)
}

/// A new secret.
pub fn generate_secret() -> Result<Secret, Status> {
    random_text(SECRET_LEN).map(|s| Secret::new(s.into_bytes()))
}

/// The associated data a key's secret is sealed with: its id, its service account and its
/// access key id, each led by its length, so that the sealed value opens in its own row only.
pub fn aad(id: &str, service_account_id: &str, key_id: &str) -> Vec<u8> {
    let mut out = b"wif-gateway access key".to_vec();
    for field in [id, service_account_id, key_id] {
        out.extend_from_slice(format!("\0{}:{field}", field.len()).as_bytes());
    }
    out
}

/// A created key and its secret, to be handed out once.
pub struct CreatedAccessKey {
    pub key: AccessKey,
    pub secret: Secret,
}

impl CreatedAccessKey {
    /// The secret as text. Hand it to its owner once; never store or log it.
    pub fn secret_text(&self) -> &str {
        std::str::from_utf8(self.secret.as_bytes()).unwrap_or_default()
    }
}

impl std::fmt::Debug for CreatedAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedAccessKey")
            .field("key", &self.key)
            .field("secret", &self.secret)
            .finish()
    }
}

/// `CreateAccessKeyRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateAccessKey {
    /// The key's service account; `None`: the caller's own.
    pub service_account_id: Option<String>,
    pub description: String,
}

/// `AccessKeyService` in `ctx`, sealing with `secret_keys` (`None` without
/// `[iam] secret_keys`).
pub struct AccessKeys<'a> {
    pub ctx: Context<'a>,
    pub secret_keys: Option<&'a SecretKeys>,
}

impl AccessKeys<'_> {
    /// A key, once the caller may call `method` on its service account.
    async fn authorized_key(
        &self,
        principal: &Principal,
        method: Method,
        id: &str,
    ) -> Result<AccessKey, Status> {
        check_id("accessKeyId", id)?;
        let key = match self.ctx.store().get_access_key(id).await {
            Ok(key) => key,
            Err(StoreError::NotFound { .. }) => {
                return Err(Status::not_found(format!(
                    "access key {} not found",
                    quote(id)
                )));
            }
            Err(other) => return Err(other.into()),
        };
        authorize_on_account(
            self.ctx.store(),
            self.ctx.authorizer,
            principal,
            method,
            &key.service_account_id,
        )
        .await?;
        Ok(key)
    }

    /// `AccessKeyService.Get`.
    pub async fn get(&self, principal: &Principal, id: &str) -> Result<AccessKey, Status> {
        self.authorized_key(principal, Method::AccessKeyGet, id)
            .await
    }

    /// `AccessKeyService.List`: the keys of a service account (the caller's own when `None`).
    pub async fn list(
        &self,
        principal: &Principal,
        service_account_id: Option<&str>,
        page: &ListPage,
    ) -> Result<Page<AccessKey>, Status> {
        let account_id = service_account_id.unwrap_or(&principal.service_account_id);
        check_id("serviceAccountId", account_id)?;
        let page = page.request()?;
        authorize_on_account(
            self.ctx.store(),
            self.ctx.authorizer,
            principal,
            Method::AccessKeyList,
            account_id,
        )
        .await?;
        Ok(opaque(
            self.ctx.store().list_access_keys(account_id, &page).await?,
        ))
    }

    /// `AccessKeyService.Create`: a new access key id and secret; the store keeps the secret
    /// sealed, the caller gets it once.
    pub async fn create(
        &self,
        principal: &Principal,
        request: CreateAccessKey,
    ) -> Result<CreatedAccessKey, Status> {
        let account_id = creation_target(
            principal,
            request.service_account_id.as_deref(),
            &request.description,
        )?;
        let account = authorize_on_account(
            self.ctx.store(),
            self.ctx.authorizer,
            principal,
            Method::AccessKeyCreate,
            account_id,
        )
        .await?;
        let Some(secret_keys) = self.secret_keys else {
            return Err(Status::new(
                Code::FailedPrecondition,
                "no_secret_keys",
                format!(
                    "static access keys need {SETTING}: the keys their secrets are sealed with at rest; none is configured (docs/configuration.md)"
                ),
            ));
        };
        self.ctx
            .quota(Quota::AccessKeys, &account.cloud_id, 1)
            .await?;
        let id = super::ids::generate(ResourceKind::AccessKey).map_err(|e| Status::internal(&e))?;
        let key_id = generate_key_id()?;
        let secret = generate_secret()?;
        let sealed = secret_keys
            .seal(&secret, &aad(&id, &account.id, &key_id))
            .map_err(|e| Status::internal(&e))?;
        let written = self
            .ctx
            .store()
            .create_access_key(
                &NewAccessKey {
                    id,
                    service_account_id: account.id,
                    description: request.description,
                    key_id,
                    secret: sealed,
                },
                self.ctx.now,
            )
            .await?;
        Ok(CreatedAccessKey {
            key: self.ctx.applied(written).await,
            secret,
        })
    }

    /// `AccessKeyService.Update`: replaces the description (the only mutable field). Answers
    /// the finished operation, whose response is the key.
    pub async fn update(
        &self,
        principal: &Principal,
        id: &str,
        description: String,
    ) -> Result<Operation, Status> {
        check_description(&description)?;
        let key = self
            .authorized_key(principal, Method::AccessKeyUpdate, id)
            .await?;
        let written = self
            .ctx
            .store()
            .update_access_key(
                &key.id,
                key.version,
                &AccessKeyUpdate { description },
                self.ctx.now,
            )
            .await?;
        let key = self.ctx.applied(written).await;
        self.ctx
            .finished(
                principal,
                Finished {
                    resource_id: &key.id,
                    description: "Update access key",
                    types: types::ACCESS_KEY_UPDATE,
                    metadata: &json!({"accessKeyId": key.id}),
                    response: &operation::message(&access_key_message(&key)),
                },
            )
            .await
    }

    /// `AccessKeyService.Delete`. Answers the finished operation once this replica no longer
    /// verifies the key's signatures.
    pub async fn delete(&self, principal: &Principal, id: &str) -> Result<Operation, Status> {
        let key = self
            .authorized_key(principal, Method::AccessKeyDelete, id)
            .await?;
        let seq = self
            .ctx
            .store()
            .delete_access_key(&key.id, Some(key.version), self.ctx.now)
            .await?;
        self.ctx.live.caught_up_to(seq).await;
        self.ctx
            .finished(
                principal,
                Finished {
                    resource_id: &key.id,
                    description: "Delete access key",
                    types: types::ACCESS_KEY_DELETE,
                    metadata: &json!({"accessKeyId": key.id}),
                    response: &json!({}),
                },
            )
            .await
    }

    /// Seals again, under the first of `[iam] secret_keys`, up to `limit` secrets sealed under
    /// another key (after a rotation). Returns how many were sealed again; 0 once none is left.
    pub async fn reseal(&self, limit: u32) -> Result<usize, Status> {
        let Some(secret_keys) = self.secret_keys else {
            return Ok(0);
        };
        let store = self.ctx.store();
        let stale = store
            .access_keys_sealed_under_other_keys(secret_keys.sealing_key_id(), limit)
            .await?;
        let mut done = 0;
        for key in stale {
            let aad = aad(&key.id, &key.service_account_id, &key.key_id);
            let sealed = secret_keys
                .open(&key.secret, &aad)
                .and_then(|secret| secret_keys.seal(&secret, &aad));
            match sealed {
                Ok(sealed) => {
                    match store
                        .reseal_access_key(&key.id, key.version, &sealed, self.ctx.now)
                        .await
                    {
                        Ok(_) => done += 1,
                        // Changed or deleted meanwhile: the next round sees it as it is.
                        Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => {}
                        Err(other) => return Err(other.into()),
                    }
                }
                Err(e) => {
                    tracing::warn!(access_key = %key.id, error = %e, "IAM store: an access key's secret cannot be sealed again");
                }
            }
        }
        Ok(done)
    }
}

/// Whose signature a verified one is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The access key's resource id.
    pub id: String,
    /// The access key id the signature named.
    pub key_id: String,
    pub service_account_id: String,
}

/// A refused signature as the Authorize API answers it: UNAUTHENTICATED with the rule.
pub fn refused(refusal: &Refusal) -> Status {
    Status::unauthenticated(refusal.reason(), refusal.to_string())
}

/// Verifies `signed` at `now` with the followed `keys`, whose secrets `secret_keys` opens, and
/// tells whose it is: the signature's time fits, its access key exists, the signature is the
/// one the key's secret makes, and the key's service account is not suspended (`index`).
/// Every refusal is UNAUTHENTICATED naming its rule (a secret that cannot be opened, a fault of
/// the configuration, is INTERNAL); none repeats the signature or the secret.
pub fn verify(
    signed: &Signed,
    keys: &FollowedKeys,
    secret_keys: Option<&SecretKeys>,
    index: &AuthzIndex,
    now: i64,
) -> Result<VerifiedSignature, Status> {
    signed.check_time(now).map_err(|r| refused(&r))?;
    let Some(key) = keys.get(&signed.access_key_id) else {
        return Err(Status::unauthenticated(
            "unknown_access_key",
            format!(
                "the access key id {} is not a static access key of this gateway: it was deleted, or never existed",
                quote(&signed.access_key_id)
            ),
        ));
    };
    let unopened = |detail: String| {
        tracing::warn!(access_key = %key.id, error = %detail, "an access key's secret cannot be opened");
        Status::new(
            Code::Internal,
            "secret_unavailable",
            format!(
                "the secret of access key {} cannot be opened: {detail}",
                quote(&key.id)
            ),
        )
    };
    let secret_keys =
        secret_keys.ok_or_else(|| unopened(format!("{SETTING} is not configured")))?;
    let secret = secret_keys
        .open(
            &key.secret,
            &aad(&key.id, &key.service_account_id, &signed.access_key_id),
        )
        .map_err(|e| unopened(e.to_string()))?;
    signed.verify(secret.as_bytes()).map_err(|r| refused(&r))?;
    if index.is_suspended(&key.service_account_id) {
        return Err(Status::unauthenticated(
            "service_account_suspended",
            format!(
                "the access key's service account {} is suspended",
                quote(&key.service_account_id)
            ),
        ));
    }
    Ok(VerifiedSignature {
        id: key.id.clone(),
        key_id: signed.access_key_id.clone(),
        service_account_id: key.service_account_id.clone(),
    })
}

/// `yandex.cloud.iam.v1.awscompatibility.AccessKey` in proto3 JSON (camelCase; `lastUsedAt`
/// only once the key has been used). Never the secret.
pub fn access_key_message(key: &AccessKey) -> AccessKeyMessage {
    AccessKeyMessage {
        id: key.id.clone(),
        service_account_id: key.service_account_id.clone(),
        created_at: rfc3339(key.created_at),
        description: key.description.clone(),
        key_id: key.key_id.clone(),
        last_used_at: key.last_used_at.map(rfc3339),
    }
}

/// `yandex.cloud.iam.v1.awscompatibility.AccessKey` in proto3 JSON: a static access key,
/// without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AccessKey)]
pub struct AccessKeyMessage {
    pub id: String,
    pub service_account_id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub description: String,
    /// The access key id clients name in their signatures (`YC…`, 25 characters).
    pub key_id: String,
    /// RFC 3339, UTC; absent until the key is first used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::store::SealedSecret;
    use std::collections::HashSet;

    #[test]
    fn key_ids_and_secrets_have_the_yandex_shape() {
        let ids: HashSet<String> = (0..500).map(|_| generate_key_id().unwrap()).collect();
        assert_eq!(ids.len(), 500);
        for id in &ids {
            assert_eq!(id.len(), KEY_ID_LEN, "{id}");
            assert!(id.starts_with("YC"), "{id}");
            assert!(id[2..].bytes().all(|b| ALPHABET.contains(&b)), "{id}");
        }
        let used: HashSet<u8> = ids.iter().flat_map(|id| id.bytes().skip(2)).collect();
        assert_eq!(used.len(), 64, "every character appears");
        let secret = generate_secret().unwrap();
        let text = std::str::from_utf8(secret.as_bytes()).unwrap();
        assert_eq!(text.len(), SECRET_LEN);
        assert!(text.starts_with("YC"));
        assert!(!format!("{secret:?}").contains(text));
    }

    #[test]
    fn messages_have_the_proto3_json_shape_and_no_secret() {
        let key = AccessKey {
            id: "ajekey".into(),
            service_account_id: "ajesa".into(),
            description: "d".into(),
            key_id: "YCAJEexampleexampleexampl".into(),
            secret: SealedSecret::from_stored("k1:AAAA".into()),
            last_used_at: None,
            created_at: 0,
            version: 1,
        };
        assert_eq!(
            operation::message(&access_key_message(&key)),
            json!({"id": "ajekey", "serviceAccountId": "ajesa", "createdAt": "1970-01-01T00:00:00Z",
                   "description": "d", "keyId": "YCAJEexampleexampleexampl"})
        );
        let used = AccessKey {
            last_used_at: Some(60),
            ..key
        };
        assert_eq!(
            operation::message(&access_key_message(&used))["lastUsedAt"],
            "1970-01-01T00:01:00Z"
        );
        let created = CreatedAccessKey {
            key: used,
            secret: Secret::new(b"YCsecretsecret".to_vec()),
        };
        assert_eq!(created.secret_text(), "YCsecretsecret");
        let shown = format!("{created:?}");
        assert!(
            !shown.contains("YCsecretsecret") && !shown.contains("AAAA"),
            "{shown}"
        );
    }

    #[test]
    fn the_associated_data_names_the_row() {
        assert_ne!(aad("a", "s", "k"), aad("b", "s", "k"));
        assert_ne!(aad("a", "s", "k"), aad("a", "t", "k"));
        assert_ne!(aad("a", "s", "k"), aad("a", "s", "l"));
        assert_ne!(
            aad("a", "s\0x", "k"),
            aad("a", "s", "x\0k"),
            "fields cannot slide"
        );
    }
}
