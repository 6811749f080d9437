//! The store, followed: the in-memory views the gateway decides with — the authorization
//! index ([`AuthzIndex`]) and the store's layer of the exchange directory ([`Entries`]) — kept
//! current from the store's change log (`docs/design.md#propagation`).
//!
//! - **Start**: [`Live::load`] listens for the store's notifications (so that nothing
//!   committed while it loads, or before [`Live::follow`] runs, waits for a poll), notes the
//!   log's last sequence number, then reads every followed table whole ([`Store::scan_all`]:
//!   pages on SQLite, one `COPY` on PostgreSQL), then applies the changes committed since that
//!   number. Reading a record newer than the number is
//!   harmless: a change read from the log is applied by reading the record as it is now, so
//!   applying one twice, or late, converges on the same state.
//! - **Following**: [`Live::follow`] applies the changes after the last applied one whenever
//!   the store tells of a commit (this replica's at once; other replicas' through PostgreSQL's
//!   `NOTIFY`, typically within milliseconds) and, in case a notification was lost or the
//!   database was away, every [`POLL`] anyway. A replica that was disconnected catches up from
//!   the log where it stopped.
//! - **This replica's writes**: the API calls [`Live::caught_up_to`] with the sequence number
//!   of its write before it answers, so a write is visible to this replica's exchange and
//!   authorization before the caller learns it happened.
//!
//! - **Access keys**: the static access keys are followed into [`AccessKeys`] (access key id →
//!   the key's id, service account and sealed secret), so that a signature is verified without
//!   the database; the secret stays sealed in memory and is opened only to verify.
//! - **Revocations**: the revocation list is followed into [`Revoked`], a set of `jti`s with
//!   their tokens' expiry that authentication and introspection consult. Entries are dropped
//!   [`REVOCATION_GRACE`] after their token's `exp` ([`Live::prune_revoked`]), from memory on
//!   each replica and from the store in bulk.
//! - **API keys**: followed into an [`ApiKeyTable`], the SHA-256 of each key's secret → the
//!   key's id, service account, scopes and expiry, which the Authorize API checks a presented
//!   key against ([`super::api_keys::check`]) without the database.
//!
//! Each change costs O(1): a few hash operations in the index, and in each of the directory
//! layer's two copies ([`Layer`]). Exchanges never wait for it: they read the last published
//! copy. This replica's own changes are applied from what its mutations wrote
//! ([`Store::own_changes_after`]), without reading them back.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Mutex, broadcast};

use crate::exchange::directory::{
    Directory, Entries, FederatedCredential as DirectoryCredential,
    Federation as DirectoryFederation, KeySource, KeySourceKind,
    ServiceAccount as DirectoryAccount,
};
use crate::iam::ResourceKind;
use crate::telemetry;

use super::api_key_table::ApiKeyTable;
use super::authz::{AuthzIndex, Resource as AuthzResource};
use super::catalog::Catalog;
use super::roles::Scope;
use super::store::{
    AccessKey, Change, FOLLOWED, FederatedCredential, Federation, Record, SealedSecret, Seq,
    ServiceAccountStatus, Store, StoreError,
};

/// How often the log is read even without a notification.
pub const POLL: Duration = Duration::from_secs(1);
/// How long after its token's `exp` a revocation is kept: longer than the largest leeway
/// (`[exchange] leeway_seconds` ≤ 300), so no token the gateway could still accept loses its
/// entry.
pub const REVOCATION_GRACE: i64 = 600;
/// Changes read per query while catching up; records per page while loading.
const BATCH: u32 = 1000;
const LOAD_PAGE: u32 = 10_000;

/// How the store's federations become the exchange's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FederationDefaults {
    /// Longest accepted subject-token lifetime, in seconds.
    pub max_token_lifetime: i64,
    /// Plain `http://` key sources on loopback hosts are fetched (development only).
    pub allow_http_to_loopback: bool,
}

/// The revocation list as followed: `jti` → the token's `exp`. Cheap to clone; clones share
/// the set.
#[derive(Clone, Default)]
pub struct Revoked {
    set: Arc<RwLock<HashMap<Box<str>, i64>>>,
}

impl std::fmt::Debug for Revoked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revoked")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Revoked {
    /// Whether the token `jti` was revoked.
    pub fn contains(&self, jti: &str) -> bool {
        self.read().contains_key(jti)
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Box<str>, i64>> {
        self.set.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Box<str>, i64>> {
        self.set.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, jti: &str, expires_at: i64) {
        self.write().insert(jti.into(), expires_at);
    }

    fn remove(&self, jti: &str) {
        self.write().remove(jti);
    }

    /// Drops the entries of tokens that expired before `before`; how many went.
    fn prune(&self, before: i64) -> usize {
        let mut set = self.write();
        let was = set.len();
        set.retain(|_, expires_at| *expires_at >= before);
        was - set.len()
    }
}

/// An access key as followed: what verifying a signature of it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowedAccessKey {
    /// The access key's resource id.
    pub id: String,
    pub service_account_id: String,
    /// The secret, sealed as stored; [`crate::iam::sealing::SecretKeys::open`] opens it.
    pub secret: SealedSecret,
}

/// The access keys as followed: access key id (`YC…`) → the key. Cheap to clone; clones share
/// the map.
#[derive(Clone, Default)]
pub struct AccessKeys {
    map: Arc<RwLock<HashMap<Box<str>, Arc<FollowedAccessKey>>>>,
}

impl std::fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeys")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl AccessKeys {
    /// The key whose access key id is `key_id`.
    pub fn get(&self, key_id: &str) -> Option<Arc<FollowedAccessKey>> {
        self.read().get(key_id).cloned()
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Box<str>, Arc<FollowedAccessKey>>> {
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Box<str>, Arc<FollowedAccessKey>>> {
        self.map.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The followed store. Cheap to clone.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    defaults: FederationDefaults,
    authz: Arc<RwLock<AuthzIndex>>,
    /// The store's layer of the directory as exchanges read it; the follower's [`Layer`]
    /// publishes here.
    published: Arc<ArcSwap<Entries>>,
    follower: Mutex<Follower>,
    /// The last applied sequence number, readable without the follower's lock.
    applied: std::sync::atomic::AtomicI64,
    /// The configuration files' layer of the directory, as last given to [`Live::configure`],
    /// and the parent links it put into the authorization index.
    configured: ArcSwap<Directory>,
    configured_links: std::sync::Mutex<Vec<(Scope, String, String)>>,
    revoked: Revoked,
    api_keys: ApiKeyTable,
    access_keys: AccessKeys,
    /// The store's notifications, subscribed to before the load read anything, so that a
    /// commit made while this replica loads or starts is told of; [`Live::follow`] takes
    /// them over.
    notifications: std::sync::Mutex<Option<broadcast::Receiver<Seq>>>,
}

/// What applying changes needs besides the published views.
struct Follower {
    applied: Seq,
    /// The directory layer's copies; published after each batch that changed it.
    layer: Layer,
    /// What a deletion must undo, which the log does not say: credential id → its key in the
    /// directory layer (shared with the layer). The authorization index keeps what a binding's
    /// deletion undoes itself.
    credentials: HashMap<Box<str>, Arc<str>, foldhash::fast::RandomState>,
    /// The revocation list, shared with [`Inner::revoked`]: an entry is visible as soon as it
    /// is applied.
    revoked: Revoked,
    /// The API keys, shared with [`Inner::api_keys`] the same way.
    api_keys: ApiKeyTable,
    /// The access keys, shared with [`Inner::access_keys`], and each one's access key id by
    /// its resource id (what a deletion names).
    access_keys: AccessKeys,
    access_key_ids: HashMap<Box<str>, Box<str>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("applied", &self.applied())
            .finish_non_exhaustive()
    }
}

impl Live {
    /// Loads every followed record of `store` and the changes committed meanwhile.
    pub async fn load(store: Store, defaults: FederationDefaults) -> Result<Live, StoreError> {
        let started = std::time::Instant::now();
        // Listen first: a change committed after this is told of, one committed before it is
        // in what the load reads.
        let notifications = match store.subscribe().await {
            Ok(receiver) => Some(receiver),
            Err(e) => {
                tracing::warn!(error = %e, "IAM store: cannot listen for changes yet; following the log every second until it can");
                None
            }
        };
        let published = Arc::new(ArcSwap::from_pointee(Entries::default()));
        let mut follower = Follower {
            applied: store.max_seq().await?,
            layer: Layer::loading(published.clone()),
            credentials: HashMap::default(),
            revoked: Revoked::default(),
            api_keys: ApiKeyTable::default(),
            access_keys: AccessKeys::default(),
            access_key_ids: HashMap::new(),
        };
        let mut index = AuthzIndex::new();
        for kind in FOLLOWED {
            store
                .scan_all(kind, LOAD_PAGE, &mut |record| {
                    follower.put(&mut index, record, &defaults);
                })
                .await?;
        }
        follower.layer.loaded();
        let revoked = follower.revoked.clone();
        let api_keys = follower.api_keys.clone();
        let access_keys = follower.access_keys.clone();
        let live = Live {
            inner: Arc::new(Inner {
                revoked,
                api_keys,
                access_keys,
                published,
                applied: follower.applied.0.into(),
                follower: Mutex::new(follower),
                authz: Arc::new(RwLock::new(index)),
                store,
                defaults,
                configured: ArcSwap::from_pointee(Directory::default()),
                configured_links: std::sync::Mutex::new(Vec::new()),
                notifications: std::sync::Mutex::new(notifications),
            }),
        };
        live.catch_up().await?;
        tracing::info!(
            seq = live.applied().0,
            bindings = live.authz_read(AuthzIndex::binding_count),
            federations = live.entries().federation_count(),
            federated_credentials = live.entries().credential_count(),
            ms = started.elapsed().as_millis() as u64,
            "IAM store loaded"
        );
        Ok(live)
    }

    /// Takes the configuration files' resources into account: they are read-only through the
    /// API, and their service accounts and federations sit in their folders for authorization
    /// (a role on the folder covers them), as the store's do. Called at start and on every
    /// reload.
    pub fn configure(&self, directory: &Directory) {
        let (federations, accounts) = directory.configured();
        let mut links: Vec<(Scope, String, String)> = federations
            .map(|f| (Scope::Federation, f.id.clone(), f.folder_id.clone()))
            .chain(accounts.map(|a| (Scope::ServiceAccount, a.id.clone(), a.folder_id.clone())))
            .filter(|(_, _, folder)| !folder.is_empty())
            .collect();
        links.sort();
        let mut previous = self
            .inner
            .configured_links
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        {
            let mut index = self
                .inner
                .authz
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            for (scope, id, _) in previous.iter() {
                if links
                    .binary_search_by(|(s, i, _)| (s, i).cmp(&(scope, id)))
                    .is_err()
                {
                    index.remove_parent(AuthzResource::new(*scope, id));
                }
            }
            for (scope, id, folder) in &links {
                link(
                    &mut index,
                    AuthzResource::new(*scope, id),
                    AuthzResource::folder(folder),
                );
            }
        }
        *previous = links;
        self.inner.configured.store(Arc::new(directory.clone()));
    }

    /// Takes the configuration's roles and permissions of downstream services into account
    /// (at start and on every reload): stored bindings of the roles it declares grant them from
    /// now on, those of roles it no longer declares grant nothing.
    pub fn set_catalog(&self, catalog: Arc<Catalog>) {
        let mut index = self
            .inner
            .authz
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if Arc::ptr_eq(index.catalog(), &catalog) {
            return;
        }
        index.set_catalog(catalog);
        let dormant = index.dormant_binding_count();
        if dormant > 0 {
            tracing::warn!(
                bindings = dormant,
                "IAM store: access bindings name roles neither built in nor declared by [[roles]]; they grant nothing until a configuration declares them"
            );
        }
    }

    /// The configuration files' layer, as last given to [`Live::configure`].
    pub fn configured(&self) -> Arc<Directory> {
        self.inner.configured.load_full()
    }

    /// The authorization index, as the API's [`super::service::Authorize`].
    pub fn authorizer(&self) -> Arc<RwLock<AuthzIndex>> {
        self.inner.authz.clone()
    }

    fn authz_read<T>(&self, f: impl FnOnce(&AuthzIndex) -> T) -> T {
        f(&self
            .inner
            .authz
            .read()
            .unwrap_or_else(PoisonError::into_inner))
    }

    /// The access keys, as applied.
    pub fn access_keys(&self) -> &AccessKeys {
        &self.inner.access_keys
    }

    /// The revocation list, as applied.
    pub fn revoked(&self) -> &Revoked {
        &self.inner.revoked
    }

    /// The API keys, as applied.
    pub fn api_keys(&self) -> &ApiKeyTable {
        &self.inner.api_keys
    }

    /// Drops the revocations of tokens that expired more than [`REVOCATION_GRACE`] before
    /// `now`: from memory, then from the store (every replica does both; the deletion is
    /// idempotent). Returns how many entries this replica dropped from memory.
    pub async fn prune_revoked(&self, now: i64) -> Result<usize, StoreError> {
        let before = now.saturating_sub(REVOCATION_GRACE);
        let dropped = self.inner.revoked.prune(before);
        metrics::gauge!(telemetry::IAM_REVOKED_TOKENS).set(self.inner.revoked.len() as f64);
        self.inner.store.prune_revoked_tokens(before).await?;
        Ok(dropped)
    }

    /// The store's layer of the exchange directory, as last published.
    pub fn entries(&self) -> Arc<Entries> {
        self.inner.published.load_full()
    }

    /// The last change applied.
    pub fn applied(&self) -> Seq {
        Seq(self
            .inner
            .applied
            .load(std::sync::atomic::Ordering::Acquire))
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Returns once the change `seq` is applied (reading the log if it is not yet). A failure
    /// to read leaves it to [`Live::follow`], which retries.
    pub async fn caught_up_to(&self, seq: Seq) {
        if self.applied() >= seq {
            return;
        }
        if let Err(e) = self.catch_up_to(Some(seq)).await {
            tracing::warn!(error = %e, seq = seq.0, "IAM store: a change is not applied yet; retrying in the background");
        }
    }

    /// Applies every change after the last applied one, and publishes the result.
    pub async fn catch_up(&self) -> Result<(), StoreError> {
        self.catch_up_to(None).await
    }

    /// Applies changes after the last applied one: up to `target` at least, or (`None`) every
    /// one the log holds; then publishes the result. This process's own changes come from
    /// [`Store::own_changes_after`] as they were written; when they reach `target`, the log is
    /// not read at all.
    async fn catch_up_to(&self, target: Option<Seq>) -> Result<(), StoreError> {
        let mut follower = self.inner.follower.lock().await;
        let result = self.apply_pending(&mut follower, target).await;
        // Publish what was applied even when the log could not be read to the end; the
        // directory layer only when a change touched it.
        follower.layer.publish();
        self.inner
            .applied
            .store(follower.applied.0, std::sync::atomic::Ordering::Release);
        self.record_sizes(&follower);
        result
    }

    async fn apply_pending(
        &self,
        follower: &mut Follower,
        target: Option<Seq>,
    ) -> Result<(), StoreError> {
        let store = &self.inner.store;
        loop {
            let own = store.own_changes_after(follower.applied);
            if let Some((newest, _)) = own.last() {
                note_lag(newest);
                for (change, record) in own {
                    self.apply_change(follower, &change, record);
                }
                continue;
            }
            if target.is_some_and(|target| follower.applied >= target) {
                return Ok(());
            }
            let changes = store.changes_since(follower.applied, BATCH).await?;
            let Some(newest) = changes.last() else {
                return Ok(());
            };
            note_lag(newest);
            for change in changes {
                let record = if FOLLOWED.contains(&change.kind) {
                    store.record(change.kind, &change.resource_id).await?
                } else {
                    None
                };
                self.apply_change(follower, &change, record);
            }
        }
    }

    /// Applies one change (with the record as it is now, `None` if deleted) and advances to
    /// it.
    fn apply_change(&self, follower: &mut Follower, change: &Change, record: Option<Record>) {
        if FOLLOWED.contains(&change.kind) {
            self.apply(follower, change, record);
        }
        follower.applied = change.seq;
    }

    fn apply(&self, follower: &mut Follower, change: &Change, record: Option<Record>) {
        let mut index = self
            .inner
            .authz
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match record {
            Some(record) => follower.put(&mut index, record, &self.inner.defaults),
            None => follower.remove(&mut index, change.kind, &change.resource_id),
        }
    }

    /// Follows the log until the store closes: on every notification, and every [`POLL`].
    pub async fn follow(self) {
        let mut notifications = self
            .inner
            .notifications
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let mut failing = false;
        // The change a notification named: catching up to it is enough; a poll, or a
        // notification lost to lag, reads the log to its end.
        let mut target = None;
        loop {
            if notifications.is_none() {
                notifications = self.inner.store.subscribe().await.ok();
            }
            match notifications.as_mut() {
                Some(rx) => {
                    tokio::select! {
                        received = rx.recv() => match received {
                            Ok(seq) if seq <= self.applied() => continue,
                            Ok(seq) => target = Some(seq),
                            Err(broadcast::error::RecvError::Lagged(_)) => {}
                            Err(broadcast::error::RecvError::Closed) => notifications = None,
                        },
                        () = tokio::time::sleep(POLL) => {}
                    }
                }
                None => tokio::time::sleep(POLL).await,
            }
            match self.catch_up_to(target.take()).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(
                        seq = self.applied().0,
                        "IAM store: following the change log again"
                    );
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, seq = self.applied().0, "IAM store: cannot read the change log; exchanges go on with what was applied, retrying every second");
                }
                Err(_) => {}
            }
        }
    }

    fn record_sizes(&self, follower: &Follower) {
        let entries = self.inner.published.load();
        metrics::gauge!(telemetry::IAM_DIRECTORY_SIZE, "kind" => "federation")
            .set(entries.federation_count() as f64);
        metrics::gauge!(telemetry::IAM_DIRECTORY_SIZE, "kind" => "service_account")
            .set(entries.service_account_count() as f64);
        metrics::gauge!(telemetry::IAM_DIRECTORY_SIZE, "kind" => "federated_credential")
            .set(entries.credential_count() as f64);
        metrics::gauge!(telemetry::IAM_DIRECTORY_SIZE, "kind" => "access_binding")
            .set(self.authz_read(AuthzIndex::binding_count) as f64);
        metrics::gauge!(telemetry::IAM_DIRECTORY_SIZE, "kind" => "access_key")
            .set(follower.access_keys.len() as f64);
        metrics::gauge!(telemetry::IAM_DIRECTORY_SIZE, "kind" => "api_key")
            .set(follower.api_keys.len() as f64);
        metrics::gauge!(telemetry::IAM_REVOKED_TOKENS).set(follower.revoked.len() as f64);
    }
}

/// Sets the propagation lag from the newest change of a run about to be applied.
fn note_lag(newest: &Change) {
    let lag = crate::time::now_unix().saturating_sub(newest.at);
    metrics::gauge!(telemetry::IAM_PROPAGATION_LAG).set(lag.max(0) as f64);
}

/// The store's layer of the directory in two copies, so that a change costs a few hash
/// operations rather than a copy of what it touches. Exchanges read the published copy; a
/// batch of changes goes to the other one, which is then published in its place. The copy
/// published before is the spare: the next batch first applies to it the changes it lacks
/// (those of the last batch), then its own, and publishes it in turn. A spare that a reader
/// still holds (an exchange that started before it was replaced) is not changed under it: the
/// batch then works on a copy of the published layer instead, which shares its shards and
/// copies each one it changes, as a single copy would.
struct Layer {
    /// Where the layer is published.
    published: Arc<ArcSwap<Entries>>,
    /// The copy this batch changes, once it has changed something; published at its end.
    next: Option<Arc<Entries>>,
    /// The copy published before the current one, and the changes it lacks.
    spare: Option<Arc<Entries>>,
    behind: Vec<LayerChange>,
    /// This batch's changes: what the copy published now will give the spare.
    batch: Vec<LayerChange>,
    /// While loading, changes go to `next` only: there is no spare to catch up yet.
    loading: bool,
}

/// A change to the directory layer, kept to be applied to the other copy too. Both copies
/// share what it holds (keys, ids, a federation's key source and thus its JWKS cache).
#[derive(Debug, Clone)]
enum LayerChange {
    PutAccount(DirectoryAccount),
    RemoveAccount(Box<str>),
    PutFederation(DirectoryFederation),
    RemoveFederation(Box<str>),
    /// The credential `id` under `key`, in place of its entry under `replacing` (its key
    /// before an update).
    PutCredential {
        key: Arc<str>,
        id: Arc<str>,
        replacing: Option<Arc<str>>,
    },
    RemoveCredential {
        key: Arc<str>,
        id: Box<str>,
    },
}

impl LayerChange {
    fn apply(&self, entries: &mut Entries) {
        match self {
            LayerChange::PutAccount(account) => entries.put_service_account(account.clone()),
            LayerChange::RemoveAccount(id) => {
                entries.remove_service_account(id);
            }
            LayerChange::PutFederation(federation) => entries.put_federation(federation.clone()),
            LayerChange::RemoveFederation(id) => {
                entries.remove_federation(id);
            }
            LayerChange::PutCredential { key, id, replacing } => {
                if let Some(old) = replacing {
                    entries.remove_credential_by_key(old, id);
                }
                entries.put_credential_keyed(key.clone(), id.clone());
            }
            LayerChange::RemoveCredential { key, id } => {
                entries.remove_credential_by_key(key, id);
            }
        }
    }
}

impl Layer {
    /// An empty layer that takes the records read at start.
    fn loading(published: Arc<ArcSwap<Entries>>) -> Layer {
        Layer {
            published,
            next: Some(Arc::new(Entries::default())),
            spare: None,
            behind: Vec::new(),
            batch: Vec::new(),
            loading: true,
        }
    }

    /// Ends the start: publishes what was read, and makes the spare, a copy sharing no shard.
    fn loaded(&mut self) {
        self.loading = false;
        let read = self.next.take().unwrap_or_default();
        let spare = Arc::new(read.unshared_copy());
        self.published.store(read);
        self.spare = Some(spare);
        self.behind.clear();
        self.batch.clear();
    }

    /// Applies a change to the copy this batch changes.
    fn change(&mut self, change: LayerChange) {
        let next = match &mut self.next {
            Some(next) => next,
            None => {
                // Nothing takes weak references to a layer: one strong reference is ours alone.
                let unread = self
                    .spare
                    .take()
                    .filter(|spare| Arc::strong_count(spare) == 1);
                let copy = match unread {
                    Some(mut spare) => {
                        let lagging = Arc::make_mut(&mut spare);
                        for missed in self.behind.drain(..) {
                            missed.apply(lagging);
                        }
                        spare
                    }
                    None => {
                        self.behind.clear();
                        Arc::new(Entries::clone(&self.published.load()))
                    }
                };
                self.next.insert(copy)
            }
        };
        change.apply(Arc::make_mut(next));
        if !self.loading {
            self.batch.push(change);
        }
    }

    /// Publishes the copy this batch changed, if it changed one; the one it replaces becomes
    /// the spare.
    fn publish(&mut self) {
        if self.loading {
            return;
        }
        if let Some(next) = self.next.take() {
            self.spare = Some(self.published.swap(next));
            self.behind = std::mem::take(&mut self.batch);
        }
    }
}

impl Follower {
    /// Puts a record, as it is now, into the views.
    fn put(&mut self, index: &mut AuthzIndex, record: Record, defaults: &FederationDefaults) {
        match record {
            Record::Cloud(cloud) => {
                if !cloud.organization_id.is_empty() {
                    link(
                        index,
                        AuthzResource::cloud(&cloud.id),
                        AuthzResource::organization(&cloud.organization_id),
                    );
                }
            }
            Record::Folder(folder) => link(
                index,
                AuthzResource::folder(&folder.id),
                AuthzResource::cloud(&folder.cloud_id),
            ),
            Record::ServiceAccount(account) => {
                index.set_suspended(&account.id, account.status != ServiceAccountStatus::Active);
                link(
                    index,
                    AuthzResource::service_account(&account.id),
                    AuthzResource::folder(&account.folder_id),
                );
                self.layer.change(LayerChange::PutAccount(DirectoryAccount {
                    id: account.id,
                    name: account.name,
                    folder_id: account.folder_id,
                    suspended: account.status != ServiceAccountStatus::Active,
                }));
            }
            Record::Federation(federation) => {
                link(
                    index,
                    AuthzResource::new(Scope::Federation, &federation.id),
                    AuthzResource::folder(&federation.folder_id),
                );
                self.layer
                    .change(LayerChange::PutFederation(directory_federation(
                        federation, defaults,
                    )));
            }
            Record::FederatedCredential(credential) => {
                let credential = directory_credential(credential);
                let key = Entries::credential_key(&credential);
                let replacing = self
                    .credentials
                    .insert(credential.id.as_str().into(), key.clone());
                self.layer.change(LayerChange::PutCredential {
                    key,
                    id: credential.id.as_str().into(),
                    replacing,
                });
            }
            Record::RevokedToken(token) => {
                self.revoked.insert(&token.jti, token.expires_at);
            }
            Record::AccessKey(key) => self.put_access_key(key),
            Record::ApiKey(key) => self.api_keys.insert(&key),
            Record::AccessBinding(binding) => {
                index.remove_access_binding(&binding.id);
                if let Err(e) = index.add_access_binding(&binding) {
                    tracing::warn!(binding = %binding.id, error = %e, "IAM store: an access binding is ignored");
                }
            }
        }
    }

    /// Takes a record that no longer exists out of the views.
    fn remove(&mut self, index: &mut AuthzIndex, kind: ResourceKind, id: &str) {
        match kind {
            ResourceKind::Cloud => {
                index.remove_parent(AuthzResource::cloud(id));
            }
            ResourceKind::Folder => {
                index.remove_parent(AuthzResource::folder(id));
            }
            ResourceKind::ServiceAccount => {
                index.set_suspended(id, false);
                index.remove_parent(AuthzResource::service_account(id));
                self.layer.change(LayerChange::RemoveAccount(id.into()));
            }
            ResourceKind::Federation => {
                index.remove_parent(AuthzResource::new(Scope::Federation, id));
                self.layer.change(LayerChange::RemoveFederation(id.into()));
            }
            ResourceKind::FederatedCredential => {
                if let Some(key) = self.credentials.remove(id) {
                    self.layer
                        .change(LayerChange::RemoveCredential { key, id: id.into() });
                }
            }
            ResourceKind::AccessBinding => {
                index.remove_access_binding(id);
            }
            ResourceKind::ApiKey => self.api_keys.remove(id),
            ResourceKind::RevokedToken => self.revoked.remove(id),
            ResourceKind::AccessKey => {
                if let Some(key_id) = self.access_key_ids.remove(id) {
                    self.access_keys.write().remove(&key_id);
                }
            }
            ResourceKind::AuthorizedKey | ResourceKind::Operation => {}
        }
    }

    fn put_access_key(&mut self, key: AccessKey) {
        let mut keys = self.access_keys.write();
        if let Some(old) = self.access_key_ids.get(key.id.as_str())
            && **old != *key.key_id
        {
            keys.remove(old);
        }
        self.access_key_ids.insert(
            key.id.clone().into_boxed_str(),
            key.key_id.clone().into_boxed_str(),
        );
        keys.insert(
            key.key_id.into_boxed_str(),
            Arc::new(FollowedAccessKey {
                id: key.id,
                service_account_id: key.service_account_id,
                secret: key.secret,
            }),
        );
    }
}

/// Sets a parent link the store's constraints guarantee is well formed.
fn link(index: &mut AuthzIndex, child: AuthzResource<'_>, parent: AuthzResource<'_>) {
    if let Err(e) = index.set_parent(child, parent) {
        tracing::warn!(error = %e, child = child.id, "IAM store: a parent link is ignored");
    }
}

/// A stored federation as the exchange uses it: keys from its `jwks_url`, or by OIDC discovery
/// from its issuer.
pub fn directory_federation(
    federation: Federation,
    defaults: &FederationDefaults,
) -> DirectoryFederation {
    let kind = match url::Url::parse(&federation.jwks_url) {
        Ok(url) if !federation.jwks_url.is_empty() => KeySourceKind::JwksUrl(url),
        _ => KeySourceKind::Discovery {
            issuer: federation.issuer.clone(),
        },
    };
    let fetched_from = if federation.jwks_url.is_empty() {
        &federation.issuer
    } else {
        &federation.jwks_url
    };
    let allow_http = defaults.allow_http_to_loopback
        && url::Url::parse(fetched_from).is_ok_and(|url| is_loopback_http(&url));
    DirectoryFederation {
        id: federation.id,
        name: federation.name,
        folder_id: federation.folder_id,
        issuer: federation.issuer,
        audiences: federation.audiences,
        enabled: federation.enabled,
        key_source: Arc::new(KeySource::new(kind, allow_http, None)),
        max_token_lifetime: defaults.max_token_lifetime,
        // Federations made through the API allow `[tokens] resources`, whatever a reload sets.
        resources: None,
    }
}

/// Whether `url` is plain `http://` to a loopback host.
pub fn is_loopback_http(url: &url::Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        }
}

fn directory_credential(credential: FederatedCredential) -> DirectoryCredential {
    DirectoryCredential {
        id: credential.id,
        federation_id: credential.federation_id,
        service_account_id: credential.service_account_id,
        external_subject_id: credential.external_subject_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://issuer.example";

    fn federation() -> LayerChange {
        LayerChange::PutFederation(directory_federation(
            Federation {
                id: "fed".into(),
                folder_id: "folder".into(),
                name: "fed".into(),
                issuer: ISSUER.into(),
                description: String::new(),
                enabled: true,
                audiences: vec!["aud".into()],
                jwks_url: format!("{ISSUER}/jwks"),
                labels: Default::default(),
                created_at: 0,
                version: 1,
            },
            &FederationDefaults {
                max_token_lifetime: 3600,
                allow_http_to_loopback: false,
            },
        ))
    }

    fn put(id: &str, subject: &str, replacing: Option<Arc<str>>) -> (LayerChange, Arc<str>) {
        let key = Entries::credential_key(&DirectoryCredential {
            id: id.into(),
            federation_id: "fed".into(),
            service_account_id: "sa".into(),
            external_subject_id: subject.into(),
        });
        let change = LayerChange::PutCredential {
            key: key.clone(),
            id: id.into(),
            replacing,
        };
        (change, key)
    }

    /// The credential id of each subject in `entries`, and its service accounts.
    fn seen(entries: Arc<Entries>) -> (Vec<Option<String>>, bool) {
        let directory = Directory::default().with_store(entries);
        let federation = directory.federations_for_issuer(ISSUER)[0];
        let ids = ["s1", "s2", "s3", "s4"]
            .iter()
            .map(|subject| {
                directory
                    .credential(federation, "sa", subject)
                    .map(str::to_owned)
            })
            .collect();
        (ids, directory.service_account("sa").is_some())
    }

    fn ids(list: [Option<&str>; 4]) -> Vec<Option<String>> {
        list.iter().map(|id| id.map(str::to_owned)).collect()
    }

    #[test]
    fn both_copies_of_the_layer_converge_whether_or_not_a_reader_holds_the_spare() {
        let published = Arc::new(ArcSwap::from_pointee(Entries::default()));
        let mut layer = Layer::loading(published.clone());
        layer.change(federation());
        layer.change(LayerChange::PutAccount(DirectoryAccount {
            id: "sa".into(),
            name: "sa".into(),
            folder_id: "folder".into(),
            suspended: false,
        }));
        let (c1, _) = put("c1", "s1", None);
        layer.change(c1);
        layer.publish();
        assert_eq!(
            published.load().credential_count(),
            0,
            "nothing is published while loading"
        );
        layer.loaded();
        assert!(layer.batch.is_empty() && layer.behind.is_empty());
        let at_start = published.load_full();
        assert_eq!(
            seen(at_start.clone()),
            (ids([Some("c1"), None, None, None]), true)
        );

        // The start's copy is held by a reader when the next batch begins: it is not changed.
        let (c2, c2_key) = put("c2", "s2", None);
        layer.change(c2);
        layer.publish();
        assert_eq!(
            seen(published.load_full()),
            (ids([Some("c1"), Some("c2"), None, None]), true)
        );
        let (c3, _) = put("c3", "s3", None);
        layer.change(c3);
        layer.publish();
        assert_eq!(
            seen(published.load_full()),
            (ids([Some("c1"), Some("c2"), Some("c3"), None]), true)
        );
        assert_eq!(
            seen(at_start.clone()),
            (ids([Some("c1"), None, None, None]), true),
            "a copy a reader holds never changes"
        );
        drop(at_start);

        // From here each batch catches the spare up: every change lands in both copies.
        layer.change(LayerChange::RemoveCredential {
            key: c2_key,
            id: "c2".into(),
        });
        layer.publish();
        assert_eq!(
            seen(published.load_full()),
            (ids([Some("c1"), None, Some("c3"), None]), true)
        );
        let (moved, _) = put("c1", "s4", Some(put("c1", "s1", None).1));
        layer.change(moved);
        layer.change(LayerChange::RemoveAccount("sa".into()));
        layer.publish();
        let want = (ids([None, None, Some("c3"), Some("c1")]), false);
        assert_eq!(seen(published.load_full()), want);
        // A batch with no directory change publishes nothing.
        let before = published.load_full();
        layer.publish();
        assert!(Arc::ptr_eq(&before, &published.load_full()));
        drop(before);
        // The spare, caught up, holds the same as the published copy.
        layer.change(LayerChange::RemoveFederation("nothing".into()));
        layer.publish();
        assert_eq!(seen(published.load_full()), want);
        let spare = layer.spare.clone().unwrap_or_default();
        let mut caught_up = Entries::clone(&spare);
        for missed in &layer.behind {
            missed.apply(&mut caught_up);
        }
        assert_eq!(seen(Arc::new(caught_up)), want);
    }
}
