//! Everything HTTP: the shared state, the router, and the accept loop.
//!
//! | route | what |
//! |---|---|
//! | `POST /oauth/token` | the token exchange ([`token`]) |
//! | `GET /.well-known/openid-configuration`, `GET /.well-known/jwks.json` | how downstream services verify minted tokens ([`meta`]) |
//! | `GET /healthz`, `GET /readyz` | liveness and readiness ([`meta`]) |
//! | `/dev/issuer/…` | the dev issuer, only when enabled ([`dev`]) |
//!
//! [`run`] owns the accept loop (hyper-util) instead of `axum::serve`, because only that way do
//! connections get a header-read timeout (slowloris guard); every request also has a total timeout
//! and in-flight requests get a bounded drain on shutdown.

pub mod dev;
pub mod error;
pub mod limits;
pub mod meta;
pub mod token;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower::ServiceExt as _;
use tower_http::trace::TraceLayer;

use crate::audit::Audit;
use crate::config::{Config, Settings};
use crate::dev_issuer::DevIssuer;
use crate::directory::Directory;
use crate::exchange::Policy;
use crate::jwks::JwksCache;
use crate::signing::Minter;
use metrics_exporter_prometheus::PrometheusHandle;

pub use error::WebError;

/// What one exchange reads: swapped whole on reload.
#[derive(Debug)]
pub struct Snapshot {
    pub directory: Directory,
    pub minter: Minter,
    pub policy: Policy,
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
    keys: JwksCache,
    dev_issuer: Option<DevIssuer>,
    limits: limits::Limits,
    settings: Settings,
}

impl AppState {
    /// Builds the state from a compiled config: loads (or, if allowed, generates) the signing
    /// keys and the dev issuer's key.
    pub fn from_config(config: Config) -> Result<AppState, String> {
        let settings = config.settings;
        let minter = settings.load_minter()?;
        let dev_issuer = match &settings.dev_issuer {
            Some(dev) => Some(DevIssuer::load(dev, &settings.public_url)?),
            None => None,
        };
        let audit = Audit::start(&settings.audit).map_err(|e| format!("audit output: {e}"))?;
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
                keys: JwksCache::new(settings.jwks),
                dev_issuer,
                limits: limits::Limits::new(&settings.limits),
                settings,
            }),
        };
        state.publish_key_metrics(None);
        let (active, published) = state.snapshot().minter.key_ids();
        state.audit().record(
            "signing_keys",
            serde_json::json!({"active": active, "published": published}),
        );
        Ok(state)
    }

    /// Replaces the snapshot (a reload); exchanges in flight keep the one they started with.
    pub fn swap(&self, snapshot: Snapshot) {
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
        self.inner.metrics.as_ref().map(PrometheusHandle::render)
    }

    /// Sets `wif_gateway_signing_key_info` for the current keys, zeroing those of `previous`.
    pub fn publish_key_metrics(&self, previous: Option<&Minter>) {
        use crate::telemetry::SIGNING_KEYS;
        if let Some(old) = previous {
            for key in std::iter::once(old.active_key()).chain(old.published_keys()) {
                for state in ["active", "published"] {
                    metrics::gauge!(SIGNING_KEYS, "kid" => key.kid().to_owned(), "alg" => key.alg().as_str(), "state" => state).set(0.0);
                }
            }
        }
        let snapshot = self.snapshot();
        let minter = &snapshot.minter;
        let active = minter.active_key();
        metrics::gauge!(SIGNING_KEYS, "kid" => active.kid().to_owned(), "alg" => active.alg().as_str(), "state" => "active").set(1.0);
        for key in minter
            .published_keys()
            .iter()
            .filter(|k| k.kid() != active.kid())
        {
            metrics::gauge!(SIGNING_KEYS, "kid" => key.kid().to_owned(), "alg" => key.alg().as_str(), "state" => "published").set(1.0);
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    pub fn keys(&self) -> &JwksCache {
        &self.inner.keys
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn dev_issuer(&self) -> Option<&DevIssuer> {
        self.inner.dev_issuer.as_ref()
    }

    pub fn limits(&self) -> &limits::Limits {
        &self.inner.limits
    }
}

/// The application's routes and layers.
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.settings().request_timeout_seconds);
    let mut app = Router::new()
        .merge(token::routes(
            state.settings().limits.max_concurrent_requests,
        ))
        .merge(meta::routes());
    if state.dev_issuer().is_some() {
        app = app.merge(dev::routes());
    }
    app.fallback(meta::not_found)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(limits::middleware_error))
                .timeout(timeout),
        )
        .layer(
            // Only method, path and request id: a query string could carry a token.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req.extensions().get::<RequestId>().map_or("", |r| r.0.as_str());
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

/// The request's id: the caller's `X-Request-Id` when it is a sane token (1–128 visible ASCII
/// characters), otherwise a new random one. Returned in `X-Request-Id`, put in logs and audit.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

const REQUEST_ID: &str = "x-request-id";

async fn request_id(
    mut req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let given = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned);
    let id = given.unwrap_or_else(|| {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut raw = [0u8; 16];
        let _ = aws_lc_rs::rand::fill(&mut raw);
        let mut id = String::with_capacity(32);
        for b in raw {
            id.push(char::from(HEX[usize::from(b >> 4)]));
            id.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        id
    });
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(req).await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Serves `state` on `listener` until `shutdown` completes, then stops accepting and gives
/// in-flight requests `shutdown_timeout_seconds` to finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let settings = state.settings().clone();
    let app = router(state.clone());
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(settings.header_read_timeout_seconds));
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(tokio::sync::Semaphore::new(settings.limits.max_connections));
    let upkeep = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                n += 1;
                // Histograms are drained into their buckets, or they grow without bound.
                if let Some(handle) = &state.inner.metrics {
                    handle.run_upkeep();
                }
                if n.is_multiple_of(12) {
                    state.limits().retain_recent();
                }
            }
        })
    };
    let reloader = crate::reload::spawn(state.clone());
    let mut shutdown = std::pin::pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, public_url = %settings.public_url, "listening");
    }
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    upkeep.abort();
    reloader.abort();
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    let drain = Duration::from_secs(settings.shutdown_timeout_seconds);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = drain.as_secs(),
            "in-flight requests did not finish in time"
        );
    }
    let audit = state.audit().clone();
    let _ = tokio::task::spawn_blocking(move || audit.flush(Duration::from_secs(5))).await;
    Ok(())
}
