//! The directory: federations, service accounts and federated credentials, pre-indexed, in two
//! layers. The configuration files' layer is compiled whole: a reload builds a new one (see
//! [`crate::config`]) and swaps it in, or keeps the old one if the new set is invalid. The IAM
//! store's layer is kept current one change at a time by [`crate::iam::live`]. The exchange
//! reads an immutable [`Directory`] of both without locks.
//!
//! Lookups are hash-map hits whatever the number of bindings: federations by exact issuer string,
//! service accounts by id, credentials by (federation, service account, subject).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
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
    /// The RFC 8707 `resource` values an exchange through this federation may ask for: a subset
    /// of [`super::Policy::resources`] (checked at load). `None`: all of those (federations of
    /// the IAM store, and configured ones without a list).
    pub resources: Option<Vec<String>>,
}

/// A service account: the identity whose access token is minted.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub id: String,
    pub name: String,
    pub folder_id: String,
    /// A suspended account of the store: its subjects get no token until it is reactivated.
    /// Accounts of configuration files are never suspended.
    pub suspended: bool,
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

/// The directory an exchange reads: the federations, service accounts and credentials of the
/// configuration files, and those of the IAM store. The two are kept apart — a reload
/// replaces the first, the store's change log updates the second one change at a time — and
/// every lookup consults both. Cheap to clone (two `Arc`s).
#[derive(Debug, Clone, Default)]
pub struct Directory {
    config: Arc<Entries>,
    store: Arc<Entries>,
}

/// Index of a federation in [`Directory::federations_for_issuer`]: the position in its layer,
/// with [`STORE_LAYER`] set for the store's.
pub type FederationIndex = u32;

/// The bit of a [`FederationIndex`] that names the store's layer.
const STORE_LAYER: u32 = 1 << 31;

impl Directory {
    /// A directory of already-validated configuration items, with an empty store layer.
    /// Credentials naming an unknown federation are dropped (validation has refused them
    /// before this point).
    pub fn build(
        federations: Vec<Federation>,
        service_accounts: Vec<ServiceAccount>,
        credentials: Vec<FederatedCredential>,
    ) -> Directory {
        Directory::build_from_files(federations, service_accounts, credentials, Files::default())
    }

    /// [`Directory::build`] of configuration items that remember the file each came from
    /// ([`Directory::managed_by`]).
    pub fn build_from_files(
        federations: Vec<Federation>,
        service_accounts: Vec<ServiceAccount>,
        credentials: Vec<FederatedCredential>,
        files: Files,
    ) -> Directory {
        Directory {
            config: Arc::new(Entries::build(
                federations,
                service_accounts,
                credentials,
                files,
            )),
            store: Arc::default(),
        }
    }

    /// This directory's configuration items with `store` as the store's.
    pub fn with_store(&self, store: Arc<Entries>) -> Directory {
        Directory {
            config: self.config.clone(),
            store,
        }
    }

    fn layer(&self, index: FederationIndex) -> (&Entries, u32) {
        if index & STORE_LAYER == 0 {
            (&self.config, index)
        } else {
            (&self.store, index & !STORE_LAYER)
        }
    }

    pub fn federation(&self, index: FederationIndex) -> Option<&Federation> {
        let (layer, slot) = self.layer(index);
        layer.federation(slot)
    }

    /// Federations whose issuer equals `iss` exactly: the configuration's in file order, then
    /// the store's.
    pub fn federations_for_issuer(&self, iss: &str) -> Vec<FederationIndex> {
        let config = self.config.slots_for_issuer(iss);
        let store = self.store.slots_for_issuer(iss);
        let mut all = Vec::with_capacity(config.len() + store.len());
        all.extend_from_slice(config);
        all.extend(store.iter().map(|slot| slot | STORE_LAYER));
        all
    }

    /// Configured issuers that differ from `iss` only by a trailing slash or by letter case: the
    /// most common issuer misconfiguration (`docs/design.md#issuer-lookup`), reported in the
    /// error instead of a bare "unknown".
    pub fn near_issuers(&self, iss: &str) -> Vec<&str> {
        let trimmed = iss.trim_end_matches('/');
        let mut near: Vec<&str> = [&self.config, &self.store]
            .into_iter()
            .flat_map(|layer| layer.by_issuer.keys())
            .filter(|k| {
                k.as_str() != iss
                    && (k.trim_end_matches('/') == trimmed
                        || k.trim_end_matches('/').eq_ignore_ascii_case(trimmed))
            })
            .map(String::as_str)
            .collect();
        near.sort_unstable();
        near.dedup();
        near
    }

    /// A service account by id: the configuration's, else the store's.
    pub fn service_account(&self, id: &str) -> Option<&ServiceAccount> {
        self.config
            .service_accounts
            .get(id)
            .or_else(|| self.store.service_accounts.get(id))
    }

    /// The id of the credential binding `subject` of the federation to the service account.
    pub fn credential(
        &self,
        federation: FederationIndex,
        service_account: &str,
        subject: &str,
    ) -> Option<&str> {
        let (layer, slot) = self.layer(federation);
        let federation = layer.federation(slot)?;
        layer
            .credentials
            .get(&credential_key(&federation.id, service_account, subject))
            .map(|entry| &*entry.id)
    }

    /// The configuration file that defines the federation, service account or federated
    /// credential `id`, if a configuration file does. (Credentials are found by a scan: this is
    /// for the management API's refusals, not for exchanges.)
    pub fn managed_by(&self, id: &str) -> Option<&Path> {
        let config = &self.config;
        let file = match config.managed.get(id) {
            Some(file) => *file,
            None => config.credentials.find(|entry| &*entry.id == id)?.1.file,
        };
        config.files.get(usize::from(file)).map(PathBuf::as_path)
    }

    /// A federation of the configuration files, by id.
    pub fn configured_federation(&self, id: &str) -> Option<&Federation> {
        let slot = *self.config.slot_of.get(id)?;
        self.config.federation(slot)
    }

    /// The configuration files' federations and service accounts.
    pub fn configured(
        &self,
    ) -> (
        impl Iterator<Item = &Federation>,
        impl Iterator<Item = &ServiceAccount>,
    ) {
        (
            self.config.federations(),
            self.config.service_accounts.values(),
        )
    }

    /// A service account of the configuration files, by id.
    pub fn configured_service_account(&self, id: &str) -> Option<&ServiceAccount> {
        self.config.service_accounts.get(id)
    }

    /// The ids of the configuration files' federated credentials.
    pub fn configured_credential_ids(&self) -> impl Iterator<Item = &str> {
        self.config.credentials.values().map(|entry| &*entry.id)
    }

    /// A federated credential of the configuration files, by id (a scan; see
    /// [`Directory::managed_by`]).
    pub fn configured_credential(&self, id: &str) -> Option<FederatedCredential> {
        let (key, _) = self.config.credentials.find(|entry| &*entry.id == id)?;
        let mut parts = key.splitn(3, '\u{1f}');
        Some(FederatedCredential {
            id: id.to_owned(),
            federation_id: parts.next()?.to_owned(),
            service_account_id: parts.next()?.to_owned(),
            external_subject_id: parts.next()?.to_owned(),
        })
    }

    /// Every federation: the configuration's, then the store's.
    pub fn federations(&self) -> impl Iterator<Item = &Federation> {
        self.config.federations().chain(self.store.federations())
    }

    pub fn federation_count(&self) -> usize {
        self.config.federation_count() + self.store.federation_count()
    }

    pub fn service_account_count(&self) -> usize {
        self.config.service_accounts.len() + self.store.service_accounts.len()
    }

    pub fn credential_count(&self) -> usize {
        self.config.credentials.len() + self.store.credentials.len()
    }
}

/// `"{federation id}\u{1f}{service account id}\u{1f}{subject}"`. Ids never contain U+001F
/// (they are validated), so the key is unambiguous.
fn credential_key(federation: &str, service_account: &str, subject: &str) -> String {
    let mut key =
        String::with_capacity(2 + federation.len() + service_account.len() + subject.len());
    key.push_str(federation);
    key.push('\u{1f}');
    key.push_str(service_account);
    key.push('\u{1f}');
    key.push_str(subject);
    key
}

/// One layer of the directory: its federations (in slots, indexed by issuer), service
/// accounts by id, and credentials by (federation, service account, subject).
///
/// The store's layer changes one item at a time while exchanges read the published copy. The
/// follower keeps a second copy that takes the changes and is then published
/// (`docs/design.md#propagation`); when it must work on a clone of the published copy instead,
/// the clone shares everything, and a change copies only what it touches — the federation list
/// (short), and one of [`SHARDS`] shards of the service accounts or credentials — so applying
/// a change costs the same with ten credentials or a million.
#[derive(Debug, Clone, Default)]
pub struct Entries {
    federations: Vec<Option<Federation>>,
    /// Slots of removed federations, reused by the next ones added.
    free: Vec<u32>,
    slot_of: HashMap<String, u32>,
    by_issuer: HashMap<String, Vec<u32>>,
    service_accounts: Shards<ServiceAccount>,
    credentials: Shards<CredentialEntry>,
    /// Configuration layer: the files items come from, and the file of each federation and
    /// service account (credentials carry theirs).
    files: Vec<PathBuf>,
    managed: HashMap<String, u16>,
}

/// A credential as a layer keeps it: its id, and the index of its file in [`Entries::files`]
/// ([`NO_FILE`] in the store's layer).
#[derive(Debug, Clone)]
struct CredentialEntry {
    /// Shared, so that copying a shard (on a change to a published layer) allocates nothing
    /// per entry.
    id: Arc<str>,
    file: u16,
}

const NO_FILE: u16 = u16::MAX;

/// Where configuration items come from: the files, and for each federation, service account
/// and credential (in the order given to [`Directory::build_from_files`]) the index of its file.
#[derive(Debug, Clone, Default)]
pub struct Files {
    pub paths: Vec<PathBuf>,
    pub federations: Vec<u16>,
    pub service_accounts: Vec<u16>,
    pub credentials: Vec<u16>,
}

impl Entries {
    fn build(
        federations: Vec<Federation>,
        service_accounts: Vec<ServiceAccount>,
        credentials: Vec<FederatedCredential>,
        files: Files,
    ) -> Entries {
        let file = |list: &[u16], i: usize| list.get(i).copied().unwrap_or(NO_FILE);
        let mut entries = Entries::default();
        for (i, f) in federations.into_iter().enumerate() {
            entries
                .managed
                .insert(f.id.clone(), file(&files.federations, i));
            entries.put_federation(f);
        }
        for (i, a) in service_accounts.into_iter().enumerate() {
            entries
                .managed
                .insert(a.id.clone(), file(&files.service_accounts, i));
            entries.put_service_account(a);
        }
        for (i, c) in credentials.iter().enumerate() {
            if entries.slot_of.contains_key(&c.federation_id) {
                entries.put_credential_from(c, file(&files.credentials, i));
            }
        }
        entries.managed.retain(|_, file| *file != NO_FILE);
        entries.files = files.paths;
        entries
    }

    fn federation(&self, slot: u32) -> Option<&Federation> {
        self.federations.get(slot as usize)?.as_ref()
    }

    fn slots_for_issuer(&self, iss: &str) -> &[u32] {
        self.by_issuer.get(iss).map_or(&[], Vec::as_slice)
    }

    fn federations(&self) -> impl Iterator<Item = &Federation> {
        self.federations.iter().flatten()
    }

    pub fn federation_count(&self) -> usize {
        self.slot_of.len()
    }

    pub fn service_account_count(&self) -> usize {
        self.service_accounts.len()
    }

    pub fn credential_count(&self) -> usize {
        self.credentials.len()
    }

    /// Adds a federation, or replaces the one with its id.
    pub fn put_federation(&mut self, federation: Federation) {
        if let Some(&slot) = self.slot_of.get(&federation.id) {
            let old = self.federations[slot as usize].replace(federation);
            let new_issuer = self.federations[slot as usize]
                .as_ref()
                .map(|f| f.issuer.clone());
            if let (Some(old), Some(new_issuer)) = (old, new_issuer)
                && old.issuer != new_issuer
            {
                self.unindex_issuer(&old.issuer, slot);
                self.by_issuer.entry(new_issuer).or_default().push(slot);
            }
            return;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.federations.push(None);
                u32::try_from(self.federations.len() - 1).unwrap_or(!STORE_LAYER)
            }
        };
        self.slot_of.insert(federation.id.clone(), slot);
        self.by_issuer
            .entry(federation.issuer.clone())
            .or_default()
            .push(slot);
        self.federations[slot as usize] = Some(federation);
    }

    /// Removes a federation; its credentials stay until removed, but match nothing (they are
    /// keyed by the federation's id, which a new federation never has).
    pub fn remove_federation(&mut self, id: &str) -> Option<Federation> {
        let slot = self.slot_of.remove(id)?;
        let old = self.federations[slot as usize].take()?;
        self.unindex_issuer(&old.issuer, slot);
        self.free.push(slot);
        Some(old)
    }

    fn unindex_issuer(&mut self, issuer: &str, slot: u32) {
        if let Some(slots) = self.by_issuer.get_mut(issuer) {
            slots.retain(|s| *s != slot);
            if slots.is_empty() {
                self.by_issuer.remove(issuer);
            }
        }
    }

    /// Adds a service account, or replaces the one with its id.
    pub fn put_service_account(&mut self, account: ServiceAccount) {
        self.service_accounts
            .insert(account.id.as_str().into(), account);
    }

    /// A service account of this layer by id.
    pub fn service_account(&self, id: &str) -> Option<&ServiceAccount> {
        self.service_accounts.get(id)
    }

    pub fn remove_service_account(&mut self, id: &str) -> Option<ServiceAccount> {
        self.service_accounts.remove(id)
    }

    /// Adds a credential (replacing one with the same federation, account and subject), and
    /// answers the key it is kept under (for [`Entries::remove_credential_by_key`]).
    pub fn put_credential(&mut self, credential: &FederatedCredential) -> Arc<str> {
        self.put_credential_from(credential, NO_FILE)
    }

    /// The key a credential is kept under.
    pub fn credential_key(credential: &FederatedCredential) -> Arc<str> {
        credential_key(
            &credential.federation_id,
            &credential.service_account_id,
            &credential.external_subject_id,
        )
        .into()
    }

    /// Adds the credential `id` under `key` (from [`Entries::credential_key`]), replacing
    /// what the key held. Two copies of a layer given the same `key` and `id` share them.
    pub fn put_credential_keyed(&mut self, key: Arc<str>, id: Arc<str>) {
        self.credentials
            .insert(key, CredentialEntry { id, file: NO_FILE });
    }

    /// A copy that shares no shard with this layer (it shares the keys, ids and key sources),
    /// so that either can take changes without copying a shard.
    pub fn unshared_copy(&self) -> Entries {
        Entries {
            service_accounts: self.service_accounts.unshared_copy(),
            credentials: self.credentials.unshared_copy(),
            ..self.clone()
        }
    }

    fn put_credential_from(&mut self, credential: &FederatedCredential, file: u16) -> Arc<str> {
        let key = Entries::credential_key(credential);
        let entry = CredentialEntry {
            id: credential.id.as_str().into(),
            file,
        };
        self.credentials.insert(key.clone(), entry);
        key
    }

    /// Removes the credential kept under `key` if it is the one with id `id`.
    pub fn remove_credential_by_key(&mut self, key: &str, id: &str) -> bool {
        if self.credentials.get(key).map(|entry| &*entry.id) == Some(id) {
            self.credentials.remove(key);
            true
        } else {
            false
        }
    }

    /// Removes a credential if the entry for its (federation, account, subject) is its own.
    pub fn remove_credential(&mut self, credential: &FederatedCredential) -> bool {
        let key = credential_key(
            &credential.federation_id,
            &credential.service_account_id,
            &credential.external_subject_id,
        );
        self.remove_credential_by_key(&key, &credential.id)
    }
}

/// How many shards a layer's maps are split into: a change copies one shard of a shared
/// layer, about 1/1024 of the map (about a thousand entries at a million credentials), and
/// publishing a layer copies the list of shards.
pub const SHARDS: usize = 1024;

/// A string-keyed map split into [`SHARDS`] copy-on-write shards.
#[derive(Debug, Clone)]
struct Shards<V> {
    hasher: foldhash::fast::RandomState,
    /// Keys are shared: the store's follower keeps a credential's key by its id.
    shards: Vec<Arc<HashMap<Arc<str>, V, foldhash::fast::RandomState>>>,
    len: usize,
}

impl<V> Default for Shards<V> {
    fn default() -> Self {
        Shards {
            hasher: foldhash::fast::RandomState::default(),
            shards: (0..SHARDS).map(|_| Arc::new(HashMap::default())).collect(),
            len: 0,
        }
    }
}

impl<V: Clone> Shards<V> {
    fn shard(&self, key: &str) -> usize {
        // The low bits of the seeded hash are as good as any.
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    fn get(&self, key: &str) -> Option<&V> {
        self.shards[self.shard(key)].get(key)
    }

    fn insert(&mut self, key: Arc<str>, value: V) {
        let shard = self.shard(&key);
        if Arc::make_mut(&mut self.shards[shard])
            .insert(key, value)
            .is_none()
        {
            self.len += 1;
        }
    }

    fn remove(&mut self, key: &str) -> Option<V> {
        let shard = self.shard(key);
        if !self.shards[shard].contains_key(key) {
            return None;
        }
        let removed = Arc::make_mut(&mut self.shards[shard]).remove(key);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    fn len(&self) -> usize {
        self.len
    }

    /// A copy with shards of its own.
    fn unshared_copy(&self) -> Shards<V> {
        Shards {
            hasher: self.hasher.clone(),
            shards: self
                .shards
                .iter()
                .map(|shard| Arc::new(HashMap::clone(shard)))
                .collect(),
            len: self.len,
        }
    }

    fn values(&self) -> impl Iterator<Item = &V> {
        self.shards.iter().flat_map(|shard| shard.values())
    }

    /// The first entry whose value satisfies `wanted`, by a scan of every shard.
    fn find(&self, wanted: impl Fn(&V) -> bool) -> Option<(&str, &V)> {
        self.shards
            .iter()
            .flat_map(|shard| shard.iter())
            .find(|(_, value)| wanted(value))
            .map(|(key, value)| (&**key, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn federation(id: &str, issuer: &str) -> Federation {
        Federation {
            id: id.into(),
            name: id.into(),
            folder_id: "folder".into(),
            issuer: issuer.into(),
            audiences: vec!["aud".into()],
            enabled: true,
            key_source: Arc::new(KeySource::new(
                KeySourceKind::Discovery {
                    issuer: issuer.into(),
                },
                false,
                None,
            )),
            max_token_lifetime: 3600,
            resources: None,
        }
    }

    fn account(id: &str) -> ServiceAccount {
        ServiceAccount {
            id: id.into(),
            name: id.into(),
            folder_id: "folder".into(),
            suspended: false,
        }
    }

    fn credential(id: &str, federation: &str, account: &str, subject: &str) -> FederatedCredential {
        FederatedCredential {
            id: id.into(),
            federation_id: federation.into(),
            service_account_id: account.into(),
            external_subject_id: subject.into(),
        }
    }

    const ISSUER: &str = "https://issuer.example";

    #[test]
    fn lookups_consult_the_configuration_then_the_store() {
        let config = Directory::build(
            vec![federation("fed-file", ISSUER)],
            vec![account("sa-file")],
            vec![credential("cred-file", "fed-file", "sa-file", "sub")],
        );
        let mut store = Entries::default();
        store.put_federation(federation("fed-store", ISSUER));
        store.put_service_account(account("sa-store"));
        store.put_credential(&credential("cred-store", "fed-store", "sa-store", "sub"));
        let directory = config.with_store(Arc::new(store));

        let found = directory.federations_for_issuer(ISSUER);
        let ids: Vec<&str> = found
            .iter()
            .map(|i| directory.federation(*i).unwrap().id.as_str())
            .collect();
        assert_eq!(ids, ["fed-file", "fed-store"]);
        assert!(directory.service_account("sa-file").is_some());
        assert!(directory.service_account("sa-store").is_some());
        assert!(directory.service_account("sa-nobody").is_none());
        assert_eq!(
            directory.credential(found[0], "sa-file", "sub"),
            Some("cred-file")
        );
        assert_eq!(
            directory.credential(found[1], "sa-store", "sub"),
            Some("cred-store")
        );
        // A credential belongs to its federation's layer only.
        assert_eq!(directory.credential(found[0], "sa-store", "sub"), None);
        assert_eq!(directory.credential(found[1], "sa-file", "sub"), None);
        assert_eq!(
            (
                directory.federation_count(),
                directory.service_account_count(),
                directory.credential_count()
            ),
            (2, 2, 2)
        );
        // The configuration alone knows nothing of the store.
        assert_eq!(config.federations_for_issuer(ISSUER).len(), 1);
    }

    #[test]
    fn near_issuers_come_from_both_layers_once() {
        let config = Directory::build(vec![federation("a", "https://x.example/")], vec![], vec![]);
        let mut store = Entries::default();
        store.put_federation(federation("b", "https://X.example"));
        store.put_federation(federation("c", "https://x.example/"));
        let directory = config.with_store(Arc::new(store));
        assert_eq!(
            directory.near_issuers("https://x.example"),
            ["https://X.example", "https://x.example/"]
        );
    }

    #[test]
    fn a_federation_is_replaced_in_place_and_its_issuer_reindexed() {
        let mut entries = Entries::default();
        entries.put_federation(federation("fed", ISSUER));
        entries.put_federation(federation("fed", "https://other.example"));
        assert_eq!(entries.federation_count(), 1);
        assert!(entries.slots_for_issuer(ISSUER).is_empty());
        assert_eq!(entries.slots_for_issuer("https://other.example"), [0]);
        let mut disabled = federation("fed", "https://other.example");
        disabled.enabled = false;
        entries.put_federation(disabled);
        assert!(!entries.federation(0).unwrap().enabled);
        assert_eq!(entries.slots_for_issuer("https://other.example"), [0]);
    }

    #[test]
    fn a_removed_federations_slot_is_reused_without_its_credentials() {
        let mut entries = Entries::default();
        entries.put_federation(federation("fed-old", ISSUER));
        entries.put_credential(&credential("cred", "fed-old", "sa", "sub"));
        assert!(entries.remove_federation("fed-old").is_some());
        assert!(entries.remove_federation("fed-old").is_none());
        assert!(entries.slots_for_issuer(ISSUER).is_empty());
        entries.put_federation(federation("fed-new", ISSUER));
        assert_eq!(entries.federations.len(), 1, "the slot is reused");
        let directory = Directory::default().with_store(Arc::new(entries));
        let index = directory.federations_for_issuer(ISSUER)[0];
        assert_eq!(directory.federation(index).unwrap().id, "fed-new");
        assert_eq!(directory.credential(index, "sa", "sub"), None);
    }

    #[test]
    fn a_credential_is_removed_only_by_its_own_id() {
        let mut entries = Entries::default();
        entries.put_credential(&credential("cred-1", "fed", "sa", "sub"));
        assert!(!entries.remove_credential(&credential("cred-2", "fed", "sa", "sub")));
        assert_eq!(entries.credential_count(), 1);
        assert!(entries.remove_credential(&credential("cred-1", "fed", "sa", "sub")));
        assert!(!entries.remove_credential(&credential("cred-1", "fed", "sa", "sub")));
        assert_eq!(entries.credential_count(), 0);
        entries.put_service_account(account("sa"));
        entries.put_service_account(account("sa"));
        assert_eq!(entries.service_account_count(), 1);
        assert!(entries.remove_service_account("sa").is_some());
        assert!(entries.remove_service_account("sa").is_none());
        assert_eq!(entries.service_account_count(), 0);
    }

    #[test]
    fn a_published_copy_does_not_see_later_changes() {
        let mut working = Entries::default();
        for i in 0..2000 {
            working.put_credential(&credential(&format!("c{i}"), "fed", &format!("sa{i}"), "s"));
        }
        let published = working.clone();
        working.put_credential(&credential("late", "fed", "sa-late", "s"));
        assert!(working.remove_credential(&credential("c7", "fed", "sa7", "s")));
        assert_eq!(published.credential_count(), 2000);
        assert_eq!(working.credential_count(), 2000);
        assert!(
            published
                .credentials
                .get(&credential_key("fed", "sa7", "s"))
                .is_some()
        );
        assert!(
            published
                .credentials
                .get(&credential_key("fed", "sa-late", "s"))
                .is_none()
        );
        assert!(
            working
                .credentials
                .get(&credential_key("fed", "sa-late", "s"))
                .is_some()
        );
        // Only the shards a change touched were copied.
        let shared = published
            .credentials
            .shards
            .iter()
            .zip(&working.credentials.shards)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert!(shared >= SHARDS - 2, "{shared} of {SHARDS} shards shared");
    }
}
