//! The directory: federations, service accounts and federated credentials, compiled into one
//! immutable, pre-indexed snapshot. The exchange reads it without locks; a reload builds a whole
//! new one (see [`crate::config`]) and swaps it in, or keeps the old one if the new set is invalid.
//!
//! Lookups are hash-map hits whatever the number of bindings: federations by exact issuer string,
//! service accounts by id, credentials by (federation, service account, subject).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::issuer_keys::KeySet;

/// An OIDC workload identity federation (Yandex `workload.oidc.Federation`).
#[derive(Debug, Clone)]
pub struct Federation {
    pub id: String,
    pub name: String,
    pub folder_id: String,
    /// Compared with the token's `iss` as an exact string (no normalisation, OIDC Core §3.1.3.7).
    pub issuer: String,
    /// Trusted values of the token's `aud`; at least one, any one of which must be present.
    pub audiences: Vec<String>,
    pub enabled: bool,
    /// Where this federation's keys come from; shared by federations with the same source.
    pub key_source: Arc<KeySource>,
    /// Longest accepted `exp − iat` (or `exp − now` without `iat`), in seconds.
    pub max_token_lifetime: i64,
}

/// A service account: the identity whose access token is minted.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub id: String,
    pub name: String,
    pub folder_id: String,
}

/// A federated credential: "subject S of federation F may act as service account A".
#[derive(Debug, Clone)]
pub struct FederatedCredential {
    pub id: String,
    pub federation_id: String,
    pub service_account_id: String,
    /// Compared with the token's `sub` exactly (Yandex: "Id of the external subject (exact match)").
    pub external_subject_id: String,
}

/// Where a federation's verification keys come from.
#[derive(Debug, Clone)]
pub enum KeySourceKind {
    /// A JWKS URL configured on the federation (`jwks_url`).
    JwksUrl(url::Url),
    /// OIDC discovery from the issuer: `{issuer}/.well-known/openid-configuration` → `jwks_uri`.
    Discovery { issuer: String },
    /// A JWKS written into the config: for private issuers whose endpoints nobody can reach.
    /// `digest` (SHA-256 of the document) tells different inline sets apart.
    Inline { keys: Arc<KeySet>, digest: String },
}

/// A key source with its transport options. Equal sources share one cache entry.
#[derive(Debug, Clone)]
pub struct KeySource {
    pub kind: KeySourceKind,
    /// Plain `http://` was explicitly allowed by the federation (loopback tests, dev issuer).
    pub allow_http: bool,
    /// Extra trusted roots (PEM) for this source, besides the system store.
    pub ca_bundle: Option<PathBuf>,
    /// Stable identity of the source, used as the cache key, in logs and metrics.
    pub cache_key: String,
}

impl KeySource {
    pub fn new(kind: KeySourceKind, allow_http: bool, ca_bundle: Option<PathBuf>) -> Self {
        let place = match &kind {
            KeySourceKind::JwksUrl(url) => format!("jwks:{url}"),
            KeySourceKind::Discovery { issuer } => format!("discovery:{issuer}"),
            KeySourceKind::Inline { digest, .. } => format!("inline:{digest}"),
        };
        let ca = ca_bundle
            .as_ref()
            .map(|p| format!(" ca={}", p.display()))
            .unwrap_or_default();
        let cache_key = format!("{place}{}{ca}", if allow_http { " http" } else { "" });
        KeySource {
            kind,
            allow_http,
            ca_bundle,
            cache_key,
        }
    }
}

/// The compiled directory. Build it with [`Directory::build`]; validation of the raw config (ids,
/// references, duplicates) happens in [`crate::config`] before that.
#[derive(Debug, Default)]
pub struct Directory {
    federations: Vec<Federation>,
    by_issuer: HashMap<String, Vec<u32>>,
    service_accounts: HashMap<String, ServiceAccount>,
    /// Key: `"{federation index}\u{1f}{service account id}\u{1f}{subject}"`. Ids never contain
    /// U+001F (config validation guarantees it), so the key is unambiguous; value: credential id.
    credentials: HashMap<Box<str>, Box<str>>,
    credential_count: usize,
}

fn credential_key(federation: u32, service_account: &str, subject: &str) -> String {
    use std::fmt::Write as _;
    let mut key = String::with_capacity(12 + service_account.len() + subject.len());
    let _ = write!(key, "{federation}");
    key.push('\u{1f}');
    key.push_str(service_account);
    key.push('\u{1f}');
    key.push_str(subject);
    key
}

/// The federation index of an entry in [`Directory::federations_for_issuer`].
pub type FederationIndex = u32;

impl Directory {
    /// Indexes already-validated items. Credentials naming an unknown federation are dropped
    /// (validation has refused them before this point).
    pub fn build(
        federations: Vec<Federation>,
        service_accounts: Vec<ServiceAccount>,
        credentials: Vec<FederatedCredential>,
    ) -> Directory {
        let mut by_issuer: HashMap<String, Vec<u32>> = HashMap::new();
        let mut by_id: HashMap<&str, u32> = HashMap::new();
        for (i, f) in federations.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            by_issuer.entry(f.issuer.clone()).or_default().push(i);
            by_id.insert(f.id.as_str(), i);
        }
        let mut index = HashMap::with_capacity(credentials.len());
        for c in credentials {
            if let Some(fi) = by_id.get(c.federation_id.as_str()) {
                index.insert(
                    credential_key(*fi, &c.service_account_id, &c.external_subject_id)
                        .into_boxed_str(),
                    c.id.into_boxed_str(),
                );
            }
        }
        let credential_count = index.len();
        Directory {
            service_accounts: service_accounts
                .into_iter()
                .map(|s| (s.id.clone(), s))
                .collect(),
            federations,
            by_issuer,
            credentials: index,
            credential_count,
        }
    }

    pub fn federation(&self, index: FederationIndex) -> Option<&Federation> {
        self.federations.get(index as usize)
    }

    /// Federations whose issuer equals `iss` exactly, in configuration order.
    pub fn federations_for_issuer(&self, iss: &str) -> &[FederationIndex] {
        self.by_issuer.get(iss).map_or(&[], Vec::as_slice)
    }

    /// Configured issuers that differ from `iss` only by a trailing slash or by letter case: the
    /// most common issuer misconfiguration (`docs/design.md#issuer-lookup`), reported in the
    /// error instead of a bare "unknown".
    pub fn near_issuers(&self, iss: &str) -> Vec<&str> {
        let trimmed = iss.trim_end_matches('/');
        self.by_issuer
            .keys()
            .filter(|k| {
                k.as_str() != iss
                    && (k.trim_end_matches('/') == trimmed
                        || k.trim_end_matches('/').eq_ignore_ascii_case(trimmed))
            })
            .map(String::as_str)
            .collect()
    }

    pub fn service_account(&self, id: &str) -> Option<&ServiceAccount> {
        self.service_accounts.get(id)
    }

    /// The id of the credential binding `subject` of the federation to the service account.
    pub fn credential(
        &self,
        federation: FederationIndex,
        service_account: &str,
        subject: &str,
    ) -> Option<&str> {
        self.credentials
            .get(credential_key(federation, service_account, subject).as_str())
            .map(AsRef::as_ref)
    }

    pub fn federations(&self) -> &[Federation] {
        &self.federations
    }

    pub fn service_account_count(&self) -> usize {
        self.service_accounts.len()
    }

    pub fn credential_count(&self) -> usize {
        self.credential_count
    }
}
