//! The running gateway's shared state: the snapshot an exchange reads (directory, minter,
//! claim policy — swapped whole on reload), the issuer key cache, the limits, the audit sink and
//! the settings.

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
pub(super) fn log_warnings(warnings: &[String]) {
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

    /// Replaces the snapshot (a reload); exchanges in flight keep the one they started with. The
    /// issuer key cache forgets the key sources the new directory no longer names.
    pub fn swap(&self, snapshot: Snapshot) {
        self.inner.snapshot.store(Arc::new(snapshot));
        self.forget_unnamed_key_sources();
    }

    /// Drops the cached key sets of sources the current directory does not name. Run on every
    /// swap, on every upkeep round and before every scrape: an exchange that started on the
    /// previous snapshot may still touch a source after the swap, and must not leave it behind.
    pub fn forget_unnamed_key_sources(&self) {
        self.inner
            .issuer_keys
            .retain_sources(&self.snapshot().directory);
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
