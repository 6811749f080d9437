//! The running gateway's state, shared by every request and background task: the snapshot an
//! exchange reads (directory, minter, claim policy — swapped whole on reload), the issuer key
//! cache, the limits, the audit sink and the settings. [`crate::http`] serves it; [`reload`] and
//! [`upkeep`] keep it current.

pub mod reload;
pub mod upkeep;

use std::sync::Arc;

use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::audit::{Audit, SigningKeysEvent};
use crate::config::{Config, Settings};
use crate::dev_issuer::DevIssuer;
use crate::exchange::directory::Directory;
use crate::exchange::jwks::JwksCache;
use crate::exchange::{Exchange, Policy};
use crate::limits::Limits;
use crate::signing::Minter;

/// What one exchange reads: swapped whole on reload.
#[derive(Debug)]
pub struct Snapshot {
    pub directory: Directory,
    pub minter: Minter,
    pub policy: Policy,
}

/// Logs a loaded configuration's warnings (at start and on every reload).
fn log_warnings(warnings: &[String]) {
    for warning in warnings {
        tracing::warn!(%warning, "configuration warning");
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
}

impl AppState {
    /// Builds the state from a compiled config: loads (or, if allowed, generates) the signing
    /// keys and the dev issuer's key.
    pub fn from_config(config: Config) -> Result<AppState, StartError> {
        log_warnings(&config.warnings);
        let settings = config.settings;
        let minter = settings.load_minter()?;
        let dev_issuer = match &settings.dev_issuer {
            Some(dev) => Some(DevIssuer::load(dev, &settings.public_url)?),
            None => None,
        };
        let audit = Audit::start(&settings.audit).map_err(StartError::Audit)?;
        let state = AppState {
            inner: Arc::new(StateInner {
                config_path: config.path,
                audit,
                metrics: crate::telemetry::install(),
                snapshot: ArcSwap::from_pointee(Snapshot {
                    directory: config.directory,
                    minter,
                    policy: settings.policy,
                }),
                issuer_keys: JwksCache::new(settings.jwks),
                dev_issuer,
                limits: Limits::new(&settings.limits),
                settings,
            }),
        };
        let snapshot = state.snapshot();
        crate::telemetry::signing_keys(None, &snapshot.minter);
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

    /// Replaces the snapshot (a reload); exchanges in flight keep the one they started with. The
    /// issuer key cache forgets the key sources the new directory no longer names.
    pub fn swap(&self, snapshot: Snapshot) {
        self.inner.issuer_keys.retain_sources(&snapshot.directory);
        self.inner.snapshot.store(Arc::new(snapshot));
    }

    pub fn config_path(&self) -> std::path::PathBuf {
        self.inner.config_path.clone()
    }

    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    /// The Prometheus text exposition of all metrics, if this process's recorder is ours.
    pub fn render_metrics(&self) -> Option<String> {
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
        Exchange {
            directory: &snapshot.directory,
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
    #[error("audit output: {0}")]
    Audit(std::io::Error),
}

/// The background tasks of a running gateway: metrics upkeep and live reload. Dropping this
/// stops them.
pub struct Tasks {
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Tasks {
    /// Starts the background tasks for `state` on the current runtime.
    pub fn start(state: &AppState) -> Tasks {
        Tasks {
            handles: vec![upkeep::spawn(state.clone()), reload::spawn(state.clone())],
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}
