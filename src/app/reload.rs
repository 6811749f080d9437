//! Live reload. On SIGHUP, or when a watched directory changes (the config's, included ones, the
//! key files' — Kubernetes ConfigMaps and Secrets swap a `..data` symlink there), the whole
//! configuration set is loaded and validated again. A valid set replaces the snapshot in one
//! atomic swap; an invalid one is logged, counted and audited, and the old set keeps serving.
//! Exchanges in flight finish on the snapshot they started with.
//!
//! The directory, the signing keys, the TLS listener's certificate and key, token lifetime and
//! audience and the claim policy are reloaded; the public URL, the listen addresses (and whether
//! there is a TLS listener), limits, timeouts, JWKS cache settings, audit output, the dev issuer,
//! the IAM store (`[store]`) and the IAM API's settings (`[iam]`) need a restart. A new TLS
//! certificate is served to new handshakes; open connections keep the one they started with.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use super::state::{AppState, Snapshot, log_warnings, publish_signing_keys};
use crate::audit::{ConfigReloadEvent, SigningKeysEvent};
use crate::config::settings::KeyLoadError;
use crate::config::{ConfigError, Settings};
use crate::telemetry;
use crate::tls::{Identity, TlsError};

/// What a successful reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub federations: usize,
    pub service_accounts: usize,
    pub federated_credentials: usize,
    /// The signing keys changed (active or published).
    pub signing_keys_changed: bool,
    /// The TLS listener's certificate changed.
    pub tls_certificate_changed: bool,
}

/// Why a reload was refused; the previous configuration keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Keys(#[from] KeyLoadError),
    #[error("[server.tls]: {0}")]
    Tls(#[from] TlsError),
}

/// Loads the configuration again and swaps it in if it is valid. `trigger` says why (for logs).
pub fn reload(state: &AppState, trigger: &str) -> Result<Reloaded, ReloadError> {
    let settings = state.settings();
    let loaded = crate::config::load_with(&state.config_path(), Some(settings.listen))
        .map_err(ReloadError::from)
        .and_then(|mut config| {
            // The public URL is also the discovery document's and the dev issuer's: it changes
            // only with a restart, so tokens never name an issuer the gateway does not serve.
            let running = &settings.public_url;
            if &config.settings.public_url != running {
                tracing::warn!(new = %config.settings.public_url, running = %running, "public_url changes need a restart; keeping the running one");
                if config.settings.token_audience == config.settings.public_url {
                    config.settings.token_audience = running.clone();
                }
                config.settings.public_url = running.clone();
            }
            let minter = config.settings.load_minter()?;
            let tls = reload_tls(state, &config.settings)?;
            Ok((config, minter, tls))
        });
    let (config, minter, tls) = match loaded {
        Ok(ok) => ok,
        Err(error) => {
            metrics::counter!(telemetry::RELOADS, "result" => "error").increment(1);
            tracing::error!(trigger, %error, "configuration reload refused; the previous configuration keeps serving");
            state.audit().record(
                "config_reload",
                ConfigReloadEvent {
                    result: "error",
                    trigger,
                    description: Some(&error.to_string()),
                    ..ConfigReloadEvent::default()
                },
            );
            return Err(error);
        }
    };
    log_warnings(&config.warnings);
    let old = state.snapshot();
    let signing_keys_changed = old.minter.key_ids() != minter.key_ids();
    let directory = config.directory;
    let mut done = Reloaded {
        federations: directory.federation_count(),
        service_accounts: directory.service_account_count(),
        federated_credentials: directory.credential_count(),
        signing_keys_changed,
        tls_certificate_changed: false,
    };
    state.swap(Snapshot {
        directory,
        catalog: config.catalog,
        minter,
        policy: config.settings.policy.clone(),
    });
    if let (Some(server), Some(identity)) = (state.tls(), tls) {
        done.tls_certificate_changed = server.replace(identity);
    }
    let tls_certificate_changed = done.tls_certificate_changed;
    metrics::counter!(telemetry::RELOADS, "result" => "ok").increment(1);
    tracing::info!(
        trigger,
        federations = done.federations,
        federated_credentials = done.federated_credentials,
        signing_keys_changed,
        tls_certificate_changed,
        "configuration reloaded"
    );
    if let Some(server) = state.tls().filter(|_| tls_certificate_changed) {
        tracing::info!(
            fingerprint = %server.fingerprint(),
            "TLS certificate changed: new connections get the new one"
        );
    }
    state.audit().record(
        "config_reload",
        ConfigReloadEvent {
            result: "ok",
            trigger,
            federations: Some(done.federations),
            service_accounts: Some(done.service_accounts),
            federated_credentials: Some(done.federated_credentials),
            ..ConfigReloadEvent::default()
        },
    );
    if signing_keys_changed {
        let (active, published) = state.snapshot().minter.key_ids();
        tracing::info!(%active, ?published, "signing keys changed");
        let previous_active = old.minter.key_ids().0;
        state.audit().record(
            "signing_keys",
            SigningKeysEvent {
                active: &active,
                published: &published,
                previous_active: Some(&previous_active),
            },
        );
        publish_signing_keys(Some(&old.minter), &state.snapshot().minter);
    }
    Ok(done)
}

/// The TLS listener's certificate and key read again (the development CA making what is missing
/// or expired, as at start), when the gateway serves TLS and the new set still configures it.
/// The listener itself needs a restart: it keeps its address, and a `[server.tls]` added or
/// removed is logged and otherwise left for the next start.
fn reload_tls(state: &AppState, new: &Settings) -> Result<Option<Identity>, TlsError> {
    match (&state.settings().tls, &new.tls) {
        (Some(_), Some(tls)) => tls.load(crate::time::now_unix()).map(Some),
        (None, Some(_)) => {
            tracing::warn!("[server.tls] was added: the TLS listener starts with a restart");
            Ok(None)
        }
        (Some(_), None) => {
            tracing::warn!(
                "[server.tls] was removed: the TLS listener serves its certificate until a restart"
            );
            Ok(None)
        }
        (None, None) => Ok(None),
    }
}

/// Reloads on SIGHUP and on changes below the watched directories until the task is aborted.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
        #[cfg(unix)]
        {
            let tx = tx.clone();
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(mut hup) => {
                    tokio::spawn(async move {
                        while hup.recv().await.is_some() {
                            if tx.send("sighup").is_err() {
                                break;
                            }
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP"),
            }
        }
        let _watcher = watch(&state.settings().watch, relevance(&state), tx);
        let debounce = Duration::from_millis(state.settings().reload_debounce_ms);
        while let Some(mut trigger) = rx.recv().await {
            // Trailing-edge debounce: reload once the burst of events is over.
            loop {
                match tokio::time::timeout(debounce, rx.recv()).await {
                    Ok(Some(next)) => {
                        if next == "sighup" {
                            trigger = next;
                        }
                    }
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let state = state.clone();
            // Loading a large set is CPU work: keep it off the async workers.
            let _ = tokio::task::spawn_blocking(move || reload(&state, trigger)).await;
        }
    })
}

/// Which changed paths can change the configuration: the config file, key files, `*.toml` files
/// (of included directories), and Kubernetes' `..data` symlink swaps. Everything else in the
/// watched directories (logs, the audit file, editor droppings) is ignored, so that the gateway
/// never reloads because of what it writes itself.
fn relevance(state: &AppState) -> impl Fn(&std::path::Path) -> bool + Send + 'static {
    let settings = state.settings();
    let mut files = vec![state.config_path(), settings.signing_key_file.clone()];
    files.extend(settings.published_key_files.iter().cloned());
    files.extend(
        settings
            .tls
            .iter()
            .flat_map(|t| [t.cert_file.clone(), t.key_file.clone()]),
    );
    let audit = match &settings.audit {
        crate::audit::AuditTarget::File(path) => Some(path.clone()),
        _ => None,
    };
    move |path: &std::path::Path| {
        if audit.as_deref() == Some(path) {
            return false;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        files
            .iter()
            .any(|f| f == path || f.file_name() == path.file_name())
            || path.extension().is_some_and(|e| e == "toml")
            || name.starts_with("..")
    }
}

fn watch(
    dirs: &[PathBuf],
    relevant: impl Fn(&std::path::Path) -> bool + Send + 'static,
    tx: mpsc::UnboundedSender<&'static str>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher as _};
    if dirs.is_empty() {
        return None;
    }
    let mut watcher =
        match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && !event.kind.is_access()
                && event.paths.iter().any(|p| relevant(p))
            {
                let _ = tx.send("file change");
            }
        }) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the configuration; reload with SIGHUP");
                return None;
            }
        };
    for dir in dirs {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; reload with SIGHUP");
        }
    }
    Some(watcher)
}
