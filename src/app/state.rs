//! The running gateway's shared state: the snapshot an exchange reads (directory, minter,
//! claim policy — swapped whole on reload), the issuer key cache, the limits, the audit sink,
//! the settings, the TLS listener's certificate with `[server.tls]`, and, with `[store]`, the IAM
//! store and the authorization policy of the IAM API.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::audit::{Audit, BootstrapEvent, SigningKeysEvent};
use crate::config::{Config, Settings};
use crate::dev_issuer::DevIssuer;
use crate::exchange::directory::Directory;
use crate::exchange::issuer_keys::KeySet;
use crate::exchange::jwks::JwksCache;
use crate::exchange::{Exchange, Policy};
use crate::iam::authz::AuthzIndex;
use crate::iam::bootstrap::{self, BootstrapError, Started};
use crate::iam::catalog::Catalog;
use crate::iam::live::{FederationDefaults, Live};
use crate::iam::own_keys::OwnKeys;
use crate::iam::sealing::SecretKeys;
use crate::iam::service::Authorize;
use crate::iam::store::{Store, StoreError};
use crate::limits::Limits;
use crate::signing::Minter;
use crate::tls::ServerTls;

/// What one exchange reads: swapped whole on reload.
#[derive(Debug)]
pub struct Snapshot {
    pub directory: Directory,
    /// The roles and permissions of downstream services.
    pub catalog: Arc<Catalog>,
    pub minter: Minter,
    pub policy: Policy,
}

/// Logs a loaded configuration's warnings (at start and on every reload).
pub(super) fn log_warnings(warnings: &[String]) {
    for warning in warnings {
        tracing::warn!(%warning, "configuration warning");
    }
}

impl Snapshot {
    /// The gateway's tokens as the management API accepts them: minted by one of `keys` (the
    /// minter's, [`AppState::own_keys`]) for the gateway's own audience, not on `live`'s
    /// revocation list. [`crate::iam::authn::OwnTokens::resources`] is left empty.
    pub fn management_tokens<'a>(
        &'a self,
        keys: &'a crate::iam::own_keys::OwnKeys,
        live: &'a crate::iam::live::Live,
    ) -> crate::iam::authn::OwnTokens<'a> {
        crate::iam::authn::OwnTokens {
            keys,
            issuer: &self.minter.issuer,
            audience: &self.minter.audience,
            leeway: self.policy.leeway,
            revoked: live.revoked(),
            resources: &[],
        }
    }
}

/// Shared server state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

struct StateInner {
    /// The configuration file, for reloads.
    config_path: std::path::PathBuf,
    audit: Audit,
    metrics: Option<PrometheusHandle>,
    snapshot: ArcSwap<Snapshot>,
    issuer_keys: JwksCache,
    dev_issuer: Option<DevIssuer>,
    limits: Limits,
    settings: Settings,
    /// The IAM store followed, when `[store]` is configured.
    live: Option<Live>,
    /// Who may call which IAM method: the authorization index the store feeds (see
    /// [`crate::iam::service`]); empty without a store.
    authorizer: Arc<dyn Authorize>,
    /// The gateway's own keys as a verifier of IAM tokens, with the key ids they were built
    /// for; rebuilt when a reload changes the keys.
    own_keys: ArcSwapOption<(Vec<String>, Arc<OwnKeys>)>,
    /// The TLS listener's rustls configuration and certificate, with `[server.tls]`; a reload
    /// swaps the certificate inside.
    tls: Option<ServerTls>,
    /// Uses of service accounts and keys not yet written to the store.
    usage: crate::iam::usage::Usage,
    /// The keys static access keys' secrets are sealed with (`[iam] secret_keys`), with a store
    /// that has some configured.
    secret_keys: Option<Arc<SecretKeys>>,
}

/// Whether `kids` are the key ids of `minter`: its published keys' then its active key's (the
/// order [`AppState::own_keys`] keeps them in), compared without copying them.
fn same_key_ids(kids: &[String], minter: &Minter) -> bool {
    let published = minter.published_keys();
    kids.len() == published.len() + 1
        && kids.iter().map(String::as_str).eq(published
            .iter()
            .map(|k| k.kid())
            .chain(std::iter::once(minter.active_key().kid())))
}

/// How long `/readyz` waits for the IAM database to answer.
const STORE_PING_TIMEOUT: Duration = Duration::from_secs(2);

impl AppState {
    /// Builds the state from a compiled config without an IAM store: loads (or, if allowed,
    /// generates) the signing keys and the dev issuer's key. A config with `[store]` needs
    /// [`AppState::start`].
    pub fn from_config(config: Config) -> Result<AppState, StartError> {
        if config.settings.store.is_some() {
            return Err(StartError::StoreNeedsStart);
        }
        AppState::build(config, None)
    }

    /// Builds the state from a compiled config, as [`AppState::from_config`] does, and with
    /// `[store]` also opens the IAM store (applying its migrations) and bootstraps it on the
    /// first start (see [`crate::iam::bootstrap`]).
    pub async fn start(config: Config) -> Result<AppState, StartError> {
        let Some(store_settings) = config.settings.store.clone() else {
            return AppState::from_config(config);
        };
        if let Some(dir) = store_settings
            .sqlite_file
            .as_deref()
            .and_then(std::path::Path::parent)
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|source| StartError::StoreDirectory {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let store = Store::open(&store_settings.url)
            .await
            .map_err(|source| StartError::Store {
                url: store_settings.redacted(),
                source,
            })?;
        tracing::info!(url = %store_settings.redacted(), backend = ?store.backend(), "IAM store open");
        let key_file = config.settings.iam.bootstrap_key_file.clone();
        let started = bootstrap::ensure(&store, &key_file, crate::time::now_unix()).await?;
        let defaults = FederationDefaults {
            max_token_lifetime: config.settings.iam.federation_max_token_lifetime,
            allow_http_to_loopback: config.settings.iam.allow_http_to_loopback,
        };
        let live = Live::load(store, defaults)
            .await
            .map_err(|source| StartError::Store {
                url: store_settings.redacted(),
                source,
            })?;
        let state = AppState::build(config, Some(live))?;
        match &started {
            Started::Bootstrapped {
                administrator,
                key_id,
                key_file,
            } => {
                let path = key_file.display().to_string();
                tracing::info!(
                    key_file = %path,
                    service_account = %administrator.service_account_id,
                    cloud = %administrator.cloud_id,
                    folder = %administrator.folder_id,
                    key_id = %key_id,
                    "IAM store bootstrapped: the administrator's authorized key is in the key file; keep it safe"
                );
                state.audit().record(
                    "iam_bootstrap",
                    BootstrapEvent {
                        cloud_id: &administrator.cloud_id,
                        folder_id: &administrator.folder_id,
                        service_account_id: &administrator.service_account_id,
                        key_id,
                        key_file: &path,
                    },
                );
            }
            Started::Existing(Some(administrator)) => {
                tracing::info!(service_account = %administrator.service_account_id, "IAM administrator");
            }
            Started::Existing(None) => {
                tracing::warn!(
                    "the IAM store has no administrator: only service accounts' own keys can be managed"
                );
            }
        }
        Ok(state)
    }

    fn build(config: Config, live: Option<Live>) -> Result<AppState, StartError> {
        let authorizer: Arc<dyn Authorize> = match &live {
            Some(live) => live.authorizer(),
            None => Arc::new(std::sync::RwLock::new(AuthzIndex::new())),
        };
        log_warnings(&config.warnings);
        crate::tls::install_default_provider();
        let settings = config.settings;
        let minter = settings.load_minter()?;
        let tls = match &settings.tls {
            Some(tls) => {
                let identity = tls.load(crate::time::now_unix())?;
                tracing::info!(cert = %tls.cert_file.display(), fingerprint = identity.fingerprint(), "TLS certificate");
                Some(ServerTls::new(identity)?)
            }
            None => None,
        };
        let dev_issuer = match &settings.dev_issuer {
            Some(dev) => Some(DevIssuer::load(dev, &settings.public_url)?),
            None => None,
        };
        let audit = Audit::start(&settings.audit).map_err(StartError::Audit)?;
        let secret_keys = match (&live, settings.iam.secret_keys.is_empty()) {
            (Some(_), false) => {
                let keys = SecretKeys::load(&settings.iam.secret_keys)?;
                tracing::info!(ids = ?keys.ids().collect::<Vec<_>>(), sealing = keys.sealing_key_id(), "secret sealing keys");
                Some(Arc::new(keys))
            }
            _ => None,
        };
        let state = AppState {
            inner: Arc::new(StateInner {
                config_path: config.path,
                audit,
                metrics: crate::telemetry::install(),
                snapshot: ArcSwap::from_pointee(Snapshot {
                    directory: config.directory,
                    catalog: config.catalog,
                    minter,
                    policy: settings.policy.clone(),
                }),
                issuer_keys: JwksCache::new(settings.jwks),
                dev_issuer,
                limits: Limits::new(&settings.limits),
                settings,
                live,
                authorizer,
                own_keys: ArcSwapOption::empty(),
                tls,
                usage: crate::iam::usage::Usage::new(),
                secret_keys,
            }),
        };
        let snapshot = state.snapshot();
        if let Some(live) = state.live() {
            live.configure(&snapshot.directory);
            live.set_catalog(snapshot.catalog.clone());
        }
        publish_signing_keys(None, &snapshot.minter);
        let (active, published) = snapshot.minter.key_ids();
        state.audit().record(
            "signing_keys",
            SigningKeysEvent {
                active: &active,
                published: &published,
                previous_active: None,
            },
        );
        Ok(state)
    }

    /// The IAM store, when `[store]` is configured.
    pub fn store(&self) -> Option<&Store> {
        self.inner.live.as_ref().map(Live::store)
    }

    /// Notes a use of a service account or key of the store (`at`: Unix seconds); written in
    /// the next batch ([`crate::iam::usage`]). Without a store, nothing is kept.
    pub fn record_use(&self, used: crate::iam::store::UsedBy, id: &str, at: i64) {
        if self.inner.live.is_some() {
            self.inner.usage.record(used, id, at);
        }
    }

    /// Writes the uses noted since the last flush; a failure keeps them for the next one.
    pub async fn flush_usage(&self) {
        if let Some(store) = self.store()
            && let Err(e) = self.inner.usage.flush(store, crate::time::now_unix()).await
        {
            tracing::warn!(error = %crate::report::error_chain(&e), "IAM store: cannot record when accounts and keys were last used; retrying at the next upkeep");
        }
    }

    /// The IAM store followed, when `[store]` is configured.
    pub fn live(&self) -> Option<&Live> {
        self.inner.live.as_ref()
    }

    /// The directory an exchange reads now: the snapshot's configuration items and the store's
    /// as last applied.
    pub fn directory(&self) -> Directory {
        self.directory_of(&self.snapshot())
    }

    /// `snapshot`'s configuration items with the store's as last applied.
    fn directory_of(&self, snapshot: &Snapshot) -> Directory {
        match self.live() {
            Some(live) => snapshot.directory.with_store(live.entries()),
            None => snapshot.directory.clone(),
        }
    }

    /// The keys static access keys' secrets are sealed with, when `[iam] secret_keys` lists
    /// some (and there is a store).
    pub fn secret_keys(&self) -> Option<&SecretKeys> {
        self.inner.secret_keys.as_deref()
    }

    /// Who may call which IAM method.
    pub fn authorizer(&self) -> &dyn Authorize {
        self.inner.authorizer.as_ref()
    }

    /// Whether the IAM database answers (within 2 s); `None` without a store.
    pub async fn store_ready(&self) -> Option<bool> {
        let store = self.store()?;
        let answered = tokio::time::timeout(STORE_PING_TIMEOUT, store.max_seq()).await;
        Some(matches!(answered, Ok(Ok(_))))
    }

    /// The gateway's own keys (active and published) of `minter` as a verifier of the IAM
    /// tokens they signed. Built once per set of keys: a new set starts with no token
    /// remembered as verified ([`OwnKeys`]).
    pub fn own_keys(&self, minter: &Minter) -> Arc<OwnKeys> {
        if let Some(cached) = self.inner.own_keys.load().as_ref()
            && same_key_ids(&cached.0, minter)
        {
            return cached.1.clone();
        }
        let (active, mut kids) = minter.key_ids();
        kids.push(active);
        let keys = match KeySet::from_jwks_json(minter.jwks().to_string().as_bytes()) {
            Ok(keys) => Arc::new(OwnKeys::from(keys)),
            Err(e) => {
                tracing::error!(error = %e, "the gateway's own JWKS does not parse; IAM tokens cannot be verified");
                Arc::new(OwnKeys::default())
            }
        };
        self.inner
            .own_keys
            .store(Some(Arc::new((kids, keys.clone()))));
        keys
    }

    /// Replaces the snapshot (a reload); exchanges in flight keep the one they started with. The
    /// issuer key cache forgets the key sources the new directory no longer names.
    pub fn swap(&self, snapshot: Snapshot) {
        if let Some(live) = self.live() {
            live.configure(&snapshot.directory);
            live.set_catalog(snapshot.catalog.clone());
        }
        self.inner.snapshot.store(Arc::new(snapshot));
        self.forget_unnamed_key_sources();
    }

    /// Drops the cached key sets of sources the current directory does not name. Run on every
    /// swap, on every upkeep round and before every scrape: an exchange that started on the
    /// previous snapshot may still touch a source after the swap, and must not leave it behind.
    pub fn forget_unnamed_key_sources(&self) {
        self.inner.issuer_keys.retain_sources(&self.directory());
    }

    pub fn config_path(&self) -> std::path::PathBuf {
        self.inner.config_path.clone()
    }

    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    /// The Prometheus text exposition of all metrics, if this process's recorder is ours.
    pub fn render_metrics(&self) -> Option<String> {
        self.forget_unnamed_key_sources();
        let mut text = self.inner.metrics.as_ref().map(PrometheusHandle::render)?;
        crate::telemetry::render_key_set_ages(&mut text, &self.inner.issuer_keys.ages());
        Some(text)
    }

    /// Runs the histogram upkeep of this process's recorder, if it is ours.
    pub fn metrics_upkeep(&self) {
        if let Some(handle) = &self.inner.metrics {
            handle.run_upkeep();
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    /// The cache of issuers' key sets.
    pub fn issuer_keys(&self) -> &JwksCache {
        &self.inner.issuer_keys
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The TLS listener's certificate, with `[server.tls]`.
    pub fn tls(&self) -> Option<&ServerTls> {
        self.inner.tls.as_ref()
    }

    pub fn dev_issuer(&self) -> Option<&DevIssuer> {
        self.inner.dev_issuer.as_ref()
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Runs one exchange on a form body against the current snapshot, with the per-subject rate
    /// limit as its gate. `now` is Unix seconds.
    pub async fn exchange(
        &self,
        form: &[u8],
        now: i64,
    ) -> Result<crate::exchange::Issued, crate::exchange::Refused> {
        let snapshot = self.snapshot();
        let directory = self.directory_of(&snapshot);
        Exchange {
            directory: &directory,
            minter: &snapshot.minter,
            keys: self.issuer_keys(),
            policy: &snapshot.policy,
            gate: self.limits(),
        }
        .run(form, now)
        .await
    }
}

/// Why the gateway cannot start with a configuration that compiled.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    SigningKeys(#[from] crate::config::settings::KeyLoadError),
    #[error("dev issuer: {0}")]
    DevIssuer(#[from] crate::dev_issuer::DevIssuerError),
    #[error("[server.tls]: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("audit output: {0}")]
    Audit(std::io::Error),
    #[error("IAM store {url}")]
    Store {
        /// The URL without its password.
        url: String,
        #[source]
        source: StoreError,
    },
    #[error("creating the IAM store's directory {}: {source}", path.display())]
    StoreDirectory {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("IAM bootstrap: {0}")]
    Bootstrap(#[from] BootstrapError),
    #[error("a configuration with [store] is started with AppState::start")]
    StoreNeedsStart,
    #[error("[iam] secret_keys: {0}")]
    SecretKeys(#[from] crate::iam::sealing::SealingError),
}

/// Publishes `wif_gateway_signing_key_info` for `current`'s keys and zeroes the (key, state)
/// pairs of `previous` that no longer hold. A key is listed only in the states it has had.
pub(super) fn publish_signing_keys(previous: Option<&Minter>, current: &Minter) {
    let states = |m: &Minter| -> Vec<(String, &'static str, &'static str)> {
        let active = m.active_key();
        std::iter::once((active.kid().to_owned(), active.alg().as_str(), "active"))
            .chain(
                m.published_keys()
                    .iter()
                    .filter(|k| k.kid() != active.kid())
                    .map(|k| (k.kid().to_owned(), k.alg().as_str(), "published")),
            )
            .collect()
    };
    let now = states(current);
    for (kid, alg, state) in previous.map(states).unwrap_or_default() {
        if !now.iter().any(|(k, _, s)| *k == kid && *s == state) {
            metrics::gauge!(crate::telemetry::SIGNING_KEYS, "kid" => kid, "alg" => alg, "state" => state).set(0.0);
        }
    }
    for (kid, alg, state) in now {
        metrics::gauge!(crate::telemetry::SIGNING_KEYS, "kid" => kid, "alg" => alg, "state" => state).set(1.0);
    }
}
